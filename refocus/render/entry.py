"""The public entry point ``render_bokeh``: checks, picks the backend, runs the steps in order."""

from __future__ import annotations

from typing import Any

import numpy as np
import torch

from refocus.errors import RefocusError
from refocus.render.backends import Ops, ops_for_device
from refocus.render.checks import QUALITIES, as_array, check_arrays, check_map, check_number, check_options
from refocus.render.colour import boost_highlights, recover_clipped_highlights, srgb_to_linear
from refocus.render.depth_edges import snap_depth_edges
from refocus.render.layers import absorb_far_islands, signed_coc
from refocus.render.parts import composite_srgb
from refocus.render.reuse import Reuse


def render_bokeh(image: Any, disparity: Any, focus_disparity: Any, strength: float, *,
                 shape: str = "disc", blades: int = 6, rotation: float = 0.0,
                 blade_curvature: float = 0.0, cats_eye: float = 0.5,
                 highlight_boost: float = 0.0, highlight_threshold: float = 0.9,
                 focus_range: float = 0.0, focus_falloff: float = 0.0, clipped_gain: float = 4.0,
                 quality: str = "default", device: str | torch.device | None = None,
                 backend: Ops | None = None, reuse: Reuse | None = None) -> Any:
    """Render the shallow depth of field a real lens focused at ``focus_disparity`` would record.

    Linear light, depth layers composited back to front with the aperture kernel of each
    layer's circle of confusion (CoC) ``r = strength * max(|D - focus_disparity| - focus_range, 0)``
    pixels; occlusion-aware (no halos, sharp in-focus edges, partial occlusion by a defocused
    foreground, hidden background filled from its surroundings).

    Args:
        image: (H, W, 3) float sRGB-encoded in [0, 1] (values outside are clipped), numpy array
            or torch tensor.
        disparity: (H, W) float, any finite values, larger = nearer (same kind as image).
        focus_disparity: the disparity rendered sharp: a number, or an (H, W) array of the
            focus disparity of every pixel (a tilted focal plane, as a tilt-shift lens gives:
            a plane in (x, y, disparity) space; the CoC is computed per pixel).
        strength: CoC radius in pixels per unit of disparity, >= 0.
        shape: aperture, "disc" (default), "polygon", "ring" or "cats_eye" (the user-facing
            presets are ``refocus.render.SHAPES``).
        blades: polygon blade count, >= 3.
        rotation: polygon rotation in degrees.
        blade_curvature: 0 straight blades ... 1 circular.
        cats_eye: 0..1, strength of the cat's-eye clipping towards the frame edges.
        highlight_boost: >= 0, extra gain (1 + boost) for out-of-focus pixels brighter than
            ``highlight_threshold`` (stylisation; 0 = off).
        highlight_threshold: sRGB luminance in [0, 1] above which a pixel is a highlight.
        focus_range: >= 0, half-width in disparity of the band around the focus that stays sharp.
        focus_falloff: >= 0, disparity over which the blur eases in past the band's edges: a
            spot of ``strength * focus_falloff`` px, which the eye accepts as sharp, adds in
            quadrature to the lens's blur, so the visible blur is
            ``sqrt(r^2 + (strength * focus_falloff)^2) - strength * focus_falloff`` (quadratic
            onset, then the lens's linear growth). 0 (default) is the hard band, exactly.
        clipped_gain: >= 1, assumed brightness of fully clipped pixels relative to white (energy
            of light sources lost to clipping; 1 = off). Part of the physical default.
        quality: "preview" (fastest), "default", or "high" (every blur at full resolution with
            1 px layers; slow).
        device: "cpu", "cuda", ... to run on; default: the input tensor's device, or the CPU.
            The CPU renders with numpy and OpenCV, other devices with torch.
        backend: the array backend to run on (``refocus.render.backends.NumpyOps()`` or
            ``TorchOps(device)``); overrides ``device``. For tests and benchmarks, e.g. the
            torch code path on the CPU.
        reuse: a ``refocus.render.reuse.Reuse`` kept with this photo and depth map: the steps
            that depend on them alone (depth edges, linear colour) are computed once and
            reused while the arrays and the settings those steps read stay the same (a click
            that only moves the focus). The arrays must not be changed in place meanwhile.
    Returns:
        (H, W, 3) float32 sRGB in [0, 1], numpy array for numpy input, torch tensor on the input's
        device for torch input.
    Raises:
        RefocusError (a ValueError): for inputs of the wrong shape, dtype or range.

    Example:
        >>> img = np.full((4, 5, 3), 0.5, np.float32)
        >>> render_bokeh(img, np.ones((4, 5), np.float32), 1.0, 10.0).shape
        (4, 5, 3)
    """
    aperture = check_options(shape, blades, rotation, blade_curvature, cats_eye, highlight_boost,
                             highlight_threshold, focus_range, focus_falloff, clipped_gain, quality)
    strength = check_number("strength", strength, minimum=0.0)
    is_torch = isinstance(image, torch.Tensor)
    ops = backend if backend is not None else ops_for_device(
        torch.device(device) if device is not None else (image.device if is_torch else torch.device("cpu")))
    img = as_array("image", image, ops)
    disp = as_array("disparity", disparity, ops)
    check_arrays(ops, img, disp)
    if isinstance(focus_disparity, (np.ndarray, torch.Tensor)):
        focus = as_array("focus_disparity", focus_disparity, ops)
        check_map(ops, "focus_disparity", focus, tuple(img.shape[:2]))
    else:
        focus = check_number("focus_disparity", focus_disparity)

    with torch.no_grad():
        srgb = img.clip(0.0, 1.0)
        if reuse is None:
            reuse = Reuse()  # a fresh one computes every step
        elif not isinstance(reuse, Reuse):
            raise RefocusError(f"reuse must be a refocus.render.reuse.Reuse, got {type(reuse).__name__}.")
        inputs = (image, disparity, type(ops), getattr(ops, "device", None))
        disp = reuse.get("edges", (*inputs, strength), lambda: snap_depth_edges(disp, srgb, strength))
        coc = absorb_far_islands(ops, signed_coc(ops, disp, focus, strength, focus_range, focus_falloff))
        linear = reuse.get("linear", (*inputs, clipped_gain),
                           lambda: recover_clipped_highlights(srgb_to_linear(srgb), srgb, clipped_gain))
        if highlight_boost > 0.0:
            linear = boost_highlights(linear, srgb, coc, highlight_boost, highlight_threshold)
        fine_radius, relative_width = QUALITIES[quality]
        # linear_to_srgb's output lies in [0, 1], NaN-free (its input clipped)
        out = composite_srgb(ops, linear, coc, aperture, fine_radius, relative_width)

    if is_torch:
        return out.to(image.device) if isinstance(out, torch.Tensor) else torch.from_numpy(out).to(image.device)
    return ops.to_host(out)
