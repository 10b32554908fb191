"""The refine brush: strokes a user paints change the depth the renderer sees, not the photo.

A stroke is a mask (where the user painted, any resolution with the photo's aspect ratio) and
a mode. Strokes are kept as a list and applied, in order, to the photo's original disparity at
every render (``apply_strokes``), so they survive aperture and focus changes ("keep sharp"
follows the current focus), undo is dropping the last stroke, and "clear" is an empty list.
Applying costs a resize and a blur per stroke, no network pass.

Modes, each blended in by the stroke's soft-edged weight ``w`` in [0, 1]:
    keep-sharp  D' = D + w (F - D)                 painted pixels move to the focus disparity F
    blur        D' = D + w s R sign(D - F)         moved away from F by s of the depth range R
    push        D' = D (1 - w s)                   farther (smaller disparity)
    pull        D' = D (1 + w s)                   nearer
where ``s`` is the stroke's strength in [0, 1] and R the photo's 1st-99th percentile disparity
range (so "blur" means the same on a metric map and a relative one).
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import Literal, Sequence

import cv2
import numpy as np

Mode = Literal["keep-sharp", "blur", "push", "pull"]
MODES: tuple[str, ...] = ("keep-sharp", "blur", "push", "pull")


@dataclass(frozen=True)
class Stroke:
    """One brush edit.

    Attributes:
        mask: (h, w) painted coverage, bool, uint8 (0..255, e.g. a sketch layer's alpha) or float
            in [0, 1]; any size with the photo's aspect ratio (the preview's, typically).
        mode: one of ``MODES``.
        strength: 0 (no change) to 1 (strongest); unused by "keep-sharp" beyond scaling ``w``.
        softness: feather of the stroke's edge as a share of the photo's long edge (0 = hard
            edge, 0.01 = a 1 % soft edge: 40 px on a 4000 px photo).
    """

    mask: np.ndarray
    mode: Mode = "keep-sharp"
    strength: float = 1.0
    softness: float = 0.0

    def __post_init__(self) -> None:
        if self.mode not in MODES:
            raise ValueError(f"Unknown brush mode {self.mode!r}; choose one of {', '.join(MODES)}.")
        if not 0.0 <= self.strength <= 1.0:
            raise ValueError(f"The brush strength must be from 0 to 1, got {self.strength}.")
        if not 0.0 <= self.softness <= 0.5:
            raise ValueError(f"The brush softness must be from 0 to 0.5, got {self.softness}.")
        if np.asarray(self.mask).ndim != 2:
            raise ValueError(f"A brush mask must be 2-D (H, W), got shape {np.asarray(self.mask).shape}.")


def stroke_weight(stroke: Stroke, size: tuple[int, int]) -> np.ndarray:
    """The stroke's soft-edged weight, float32 (height, width) in [0, 1], at ``size`` = (width, height)."""
    width, height = size
    mask = np.asarray(stroke.mask)
    mh, mw = mask.shape
    if abs(mw / mh - width / height) > 0.01 * width / height:
        raise ValueError(f"The brush mask is {mw} x {mh} but the photo is {width} x {height} (another shape).")
    weight = mask.astype(np.float32)
    if mask.dtype == np.uint8:
        weight /= 255.0
    weight = np.clip(weight, 0.0, 1.0)
    if (mw, mh) != (width, height):
        weight = cv2.resize(weight, (width, height), interpolation=cv2.INTER_LINEAR)
    if stroke.softness > 0:
        sigma = stroke.softness * max(width, height) / 2.0  # the edge ramps over about 2 sigma
        weight = cv2.GaussianBlur(weight, (0, 0), sigmaX=sigma, sigmaY=sigma, borderType=cv2.BORDER_REPLICATE)
    return weight


def apply_stroke(disparity: np.ndarray, stroke: Stroke, focus_disparity: float) -> np.ndarray:
    """A new disparity with ``stroke`` applied (see the module's table of modes).

    Args:
        disparity: float (H, W), larger = nearer; not modified.
        stroke: the edit.
        focus_disparity: the disparity rendered sharp now (``keep-sharp`` and ``blur`` use it).

    Returns:
        float32 (H, W), finite, >= 0.
    """
    return apply_strokes(disparity, [stroke], focus_disparity)


def apply_strokes(disparity: np.ndarray, strokes: Sequence[Stroke], focus_disparity: float) -> np.ndarray:
    """``disparity`` with every stroke applied in order; the input is returned as a copy when empty.

    Shapes and units as in ``apply_stroke``.
    """
    out = np.array(disparity, dtype=np.float32, copy=True)
    if out.ndim != 2:
        raise ValueError(f"The disparity must be 2-D (H, W), got shape {out.shape}.")
    if not strokes:
        return out
    low, high = np.percentile(out, [1, 99])
    depth_range = float(high - low) if high > low else max(float(abs(high)), 1.0)
    size = (out.shape[1], out.shape[0])
    for stroke in strokes:
        w = stroke_weight(stroke, size)
        s = stroke.strength
        if stroke.mode == "keep-sharp":
            out += w * s * (focus_disparity - out)
        elif stroke.mode == "blur":
            away = np.where(out >= focus_disparity, 1.0, -1.0).astype(np.float32)
            out += w * (s * depth_range) * away
        elif stroke.mode == "push":
            out *= 1.0 - w * s
        else:  # pull
            out *= 1.0 + w * s
        np.maximum(out, 0.0, out=out)
    return out
