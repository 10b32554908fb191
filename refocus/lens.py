"""Thin-lens maths: from the user's f-number to the renderer's blur strength, and focus picking.

Pure numpy, no torch and no depth or rendering code, so it is cheap to import and easy to test.

The renderer draws a circle of confusion of radius ``r = K * |D - D_focus|`` pixels, where ``D``
is disparity. For a thin lens focused at distance ``S`` with aperture radius ``A`` (metres) and
focal length ``f_px`` (pixels), a point at depth ``z`` has ``r = A * f_px * |1/z - 1/S|``
(the bench's and the textbook's formula, small-angle). So with ``D = 1/z`` in 1/m the blur
strength is simply ``K = A * f_px`` with ``A = f / (2 N)``.

Every photo is treated as if taken with a full-frame (36 x 24 mm) camera:

* Focal length: the model's estimate (Depth Pro), EXIF ``FocalLengthIn35mmFilm``, or else the
  *virtual camera*, a 50 mm lens. Focal lengths are 35 mm-equivalent, i.e. relative to the
  43.27 mm full-frame diagonal, so they work for any aspect ratio.
* Depth: metric models give ``D = 1/z`` in 1/m. Relative models give disparity scaled so its
  99th percentile is 1 (see ``DepthResult``), which the lens reads as "the nearest things are
  about 1 m away", a typical portrait or table-top distance.

With those assumptions a subject at 2 m against a distant background gets a background blur
radius of about 1.3 % of the image width at f/1.4, as a 50 mm f/1.4 lens on full frame does,
and under 0.12 % (about 1 px on a 1000 px wide preview) at f/16.
"""

from __future__ import annotations

import math

import numpy as np

from refocus.errors import RefocusError

FULL_FRAME_DIAGONAL_MM = math.hypot(36.0, 24.0)  # 43.27 mm
VIRTUAL_FOCAL_MM = 50.0
F_NUMBER_RANGE = (0.7, 64.0)  # outside it no photographic lens exists; refuse rather than guess


def focal_length_px(width: int, height: int, focal_mm_35: float = VIRTUAL_FOCAL_MM) -> float:
    """Focal length in pixels of a lens with the given 35 mm-equivalent focal length.

    Args:
        width, height: image size in pixels (>= 1).
        focal_mm_35: 35 mm-equivalent focal length in millimetres (> 0).

    Returns:
        The focal length in pixels, ``f_mm * image_diagonal_px / 43.27 mm``.
    """
    if width < 1 or height < 1:
        raise RefocusError(f"The image size must be at least 1x1 pixels, got {width}x{height}.")
    if not (math.isfinite(focal_mm_35) and focal_mm_35 > 0):
        raise RefocusError(f"The focal length must be a positive number of mm, got {focal_mm_35}.")
    return focal_mm_35 * math.hypot(width, height) / FULL_FRAME_DIAGONAL_MM


def blur_strength(f_number: float, width: int, height: int, focal_px: float | None = None) -> float:
    """Blur strength K (circle-of-confusion radius in px per unit of disparity in 1/m).

    Args:
        f_number: the aperture's f-number N, e.g. 1.4 or 16 (0.7 to 64).
        width, height: size in pixels of the image being rendered. K scales with it, so a preview
            and a full-resolution render of the same photo look alike.
        focal_px: focal length in pixels at *this* size, when known (Depth Pro, EXIF); else the
            virtual 50 mm full-frame lens is assumed.

    Returns:
        ``K = A * f_px`` in px*m, with the aperture radius ``A = f / (2 N)`` in metres and ``f``
        the 35 mm-equivalent focal length.

    Example:
        >>> round(blur_strength(2.0, 1000, 1000), 2)  # 50 mm f/2 on a 1000 x 1000 image
        20.43
    """
    if not (isinstance(f_number, (int, float)) and math.isfinite(f_number)):
        raise RefocusError(f"The f-number must be a number, got {f_number!r}.")
    low, high = F_NUMBER_RANGE
    if not low <= f_number <= high:
        raise RefocusError(f"The f-number must be between f/{low:g} and f/{high:g}, got f/{f_number:g}.")
    if focal_px is None:
        focal_px = focal_length_px(width, height)
    elif not (math.isfinite(focal_px) and focal_px > 0):
        raise RefocusError(f"The focal length must be a positive number of pixels, got {focal_px}.")
    focal_mm_35 = focal_px * FULL_FRAME_DIAGONAL_MM / math.hypot(width, height)
    aperture_radius_m = focal_mm_35 / (2.0 * f_number) / 1000.0
    return aperture_radius_m * focal_px


def focus_disparity_at(disparity: np.ndarray, x: float, y: float, radius: int | None = None) -> float:
    """The disparity to render sharp when the user clicks pixel (x, y).

    One pixel is a poor choice: depth maps are noisy and a click near an outline may land on
    the other object. The median of a small window is robust to both (it follows whichever
    surface covers most of the window).

    Args:
        disparity: float32 (H, W), larger = nearer.
        x, y: the clicked point in pixels of this map (0 <= x < W, 0 <= y < H).
        radius: half-size of the window in pixels; default 1 % of the shorter side, at least 1.

    Returns:
        The median disparity of the window, as a float.
    """
    if disparity.ndim != 2 or disparity.size == 0:
        raise RefocusError(f"Expected a 2-D disparity map, got shape {disparity.shape}.")
    h, w = disparity.shape
    if not (math.isfinite(x) and math.isfinite(y)):
        raise RefocusError(f"The focus point must be two numbers, got ({x}, {y}).")
    if not (0 <= x < w and 0 <= y < h):
        raise RefocusError(
            f"The focus point ({x:g}, {y:g}) is outside the image, which is {w} x {h} pixels."
        )
    if radius is None:
        radius = max(1, round(0.01 * min(h, w)))
    cx, cy = int(x), int(y)
    window = disparity[max(0, cy - radius) : cy + radius + 1, max(0, cx - radius) : cx + radius + 1]
    return float(np.median(window))
