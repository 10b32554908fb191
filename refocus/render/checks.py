"""Input checks of ``render_bokeh``: early, explicit, in words the user understands."""

from __future__ import annotations

import math
from typing import Any

import numpy as np
import torch

from refocus.errors import RefocusError
from refocus.render.aperture import APERTURES, Aperture
from refocus.render.backends import Array, Ops

# quality -> (largest kernel radius at the working resolution, relative layer width above 1 px).
# "high" blurs every layer at full resolution with 1 px layers: exact, slow, for tests/reference.
# Default layer width 20 %: on the dev bench 36.86 dB / 32.64 dB edge / SSIM 0.9826 against
# 36.79 / 32.51 / 0.9827 at 12 %, with a quarter fewer layers on real depth (iPhone 12 MP: 31
# instead of 41); 25 % scores 36.88 / 32.66 but SSIM 0.9822. A minimum width above 1 px costs
# 0.6 dB (1.5 px) to 1.1 dB (2 px).
QUALITIES = {"preview": (3.0, 0.25), "default": (6.0, 0.2), "high": (math.inf, 0.0)}


def check_number(name: str, value: Any, minimum: float | None = None, maximum: float | None = None) -> float:
    try:
        v = float(value)
    except (TypeError, ValueError):
        raise RefocusError(f"{name} must be a number, got {value!r}.") from None
    if not math.isfinite(v):
        raise RefocusError(f"{name} must be a finite number, got {value!r}.")
    if minimum is not None and v < minimum:
        raise RefocusError(f"{name} must be at least {minimum}, got {v}.")
    if maximum is not None and v > maximum:
        raise RefocusError(f"{name} must be at most {maximum}, got {v}.")
    return v


def check_options(shape, blades, rotation, blade_curvature, cats_eye, highlight_boost,
                  highlight_threshold, focus_range, focus_falloff, clipped_gain, quality) -> Aperture:
    if shape not in APERTURES:
        raise RefocusError(f"Unknown aperture shape {shape!r}; expected one of {', '.join(APERTURES)}.")
    if quality not in QUALITIES:
        raise RefocusError(f"Unknown quality {quality!r}; expected one of {', '.join(QUALITIES)}.")
    if isinstance(blades, bool) or not isinstance(blades, (int, np.integer)) or blades < 3:
        raise RefocusError(f"blades must be a whole number of at least 3, got {blades!r}.")
    for name, value, lo, hi in [("rotation", rotation, None, None),
                                ("blade_curvature", blade_curvature, 0.0, 1.0),
                                ("cats_eye", cats_eye, 0.0, 1.0),
                                ("highlight_boost", highlight_boost, 0.0, None),
                                ("highlight_threshold", highlight_threshold, 0.0, 1.0),
                                ("focus_range", focus_range, 0.0, None),
                                ("focus_falloff", focus_falloff, 0.0, None),
                                ("clipped_gain", clipped_gain, 1.0, None)]:
        check_number(name, value, lo, hi)
    return Aperture(shape, int(blades), float(rotation), float(blade_curvature), float(cats_eye))


def as_array(name: str, x: Any, ops: Ops) -> Array:
    """A float32 array of the backend from a numpy array or torch tensor of floats."""
    if isinstance(x, torch.Tensor):
        floating, dtype = x.is_floating_point(), x.dtype
    elif isinstance(x, np.ndarray):
        floating, dtype = np.issubdtype(x.dtype, np.floating), x.dtype
    else:
        raise RefocusError(f"{name} must be a numpy array or a torch tensor, got {type(x).__name__}.")
    if not floating:
        raise RefocusError(f"{name} must hold floating-point values (float32), got {dtype}; "
                           f"convert 8-bit images with .astype(np.float32) / 255.")
    return ops.from_input(x)


def check_arrays(ops: Ops, img: Array, disp: Array) -> None:
    if img.ndim != 3 or img.shape[-1] != 3:
        raise RefocusError(f"image must have shape (H, W, 3) (RGB), got {tuple(img.shape)}.")
    if img.shape[0] < 1 or img.shape[1] < 1:
        raise RefocusError(f"image is empty: shape {tuple(img.shape)}.")
    check_map(ops, "disparity", disp, tuple(img.shape[:2]))
    # max of |x| propagates NaN and never overflows: one cheap reduction instead of a full mask
    if not math.isfinite(float(abs(img).max())):
        raise RefocusError("image contains NaN or infinite values.")


def check_map(ops: Ops, name: str, values: Array, size: tuple[int, int]) -> None:
    """A per-pixel map (disparity, focus disparity) must be (H, W) and finite."""
    if tuple(values.shape) != size:
        raise RefocusError(f"{name} must have shape (H, W) = {size} to match the image, "
                           f"got {tuple(values.shape)}.")
    if not math.isfinite(float(abs(values).max())):
        bad = int((~ops.isfinite(values)).sum())
        raise RefocusError(f"{name} contains {bad} NaN or infinite values; replace them (e.g. "
                           f"with np.nan_to_num) before rendering.")
