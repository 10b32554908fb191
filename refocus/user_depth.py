"""A depth map the user uploads, read in its real units, its holes filled from the photo.

A map holds one of three things, and the blur is only right when refocus knows which:

- ``"disparity"``: relative disparity, larger = nearer (a network's output, refocus's own
  16-bit depth PNG). No scale: read like a relative model's output (99th percentile = 1, which
  the lens model takes as "the nearest things are about 1 m away").
- ``"depth"``: relative depth, larger = farther, no unit; inverted, then as above.
- ``"metric"``: depth with a unit, given as metres per stored value: ``"m"``, ``"cm"``,
  ``"mm"``, or a scale such as ``"1/256"`` (KITTI stores metres x 256). Disparity is then
  ``1 / depth`` in 1/m, so f/8 blurs like f/8 at the real distances.
- ``"auto"``: a 16-bit PNG/TIFF is metric millimetres (NYU, Kinect, RealSense, iPhone exports),
  unless refocus wrote it (a PNG text marker says relative disparity); anything else is relative
  disparity. The returned ``interpretation`` says what was assumed and the depth range it implies
  ("metric depth in millimetres: 0.7 m to 8.3 m"), so a wrong guess is visible.

Pixels without a measurement (0 in depth maps, as NYU and KITTI mark them; NaN, infinities,
negatives) are filled from their own surface: a weighted median of the valid values nearby,
weighted by colour similarity in the photo (``cv2.ximgproc.weightedMedianFilter`` with a
mask), grown outwards with a radius x4 per pass until every hole is reached. Copying the nearest
valid pixel instead draws straight streaks through large holes (KITTI's sky has no LiDAR at all)
and lets a thin pole's depth run up into the sky above it.
"""

from __future__ import annotations

import io
import os
import re
from dataclasses import dataclass
from fractions import Fraction
from pathlib import Path
from typing import Literal

import cv2
import numpy as np
from PIL import Image

from refocus.depth.upsample import upsample_disparity, weighted_median
from refocus.errors import RefocusError
from refocus.io import (
    DEFAULT_MAX_BYTES,
    DEFAULT_MAX_PIXELS,
    DEPTH_PNG_MARKER,
    check_depth_aspect,
    read_depth_values,
    relative_disparity_of,
)

UserDepthKind = Literal["auto", "disparity", "depth", "metric"]
USER_DEPTH_KINDS: tuple[str, ...] = ("auto", "disparity", "depth", "metric")
_UNIT_NAMES = {"m": (1.0, "metres"), "cm": (0.01, "centimetres"), "mm": (0.001, "millimetres")}
# Nearer than 1 cm or farther than 100 km is no camera's depth: clipped so 1/depth stays finite.
METRIC_DEPTH_RANGE_M = (0.01, 100_000.0)
FILL_SIGMA = 25.5  # colour similarity scale of the fill's weights, 8-bit levels (as the upsampler)


@dataclass(frozen=True)
class UserDepth:
    """A user's depth map, ready for the renderer.

    Attributes:
        disparity: float32 (H, W) at the photo's size, larger = nearer; 1/m when ``metric``,
            else relative (99th percentile 1).
        metric: True when the map's unit was known (kind ``"metric"``).
        interpretation: one sentence for people: what the map was read as and the depth range
            that implies, e.g. ``"metric depth in millimetres: 0.7 m to 8.3 m"``.
        depth_range_m: (nearest, farthest) valid depth in metres when metric, else None.
        filled_share: share of the map's pixels that had no value and were filled, 0 to 1.
    """

    disparity: np.ndarray
    metric: bool
    interpretation: str
    depth_range_m: tuple[float, float] | None
    filled_share: float


def parse_unit(unit: str | float) -> tuple[float, str]:
    """A depth unit -> (metres per stored value, name for people).

    Accepts ``"m"``, ``"cm"``, ``"mm"``, a number of metres (``0.001``) or a fraction
    (``"1/256"``, ``"1/256 m"``).
    """
    text = str(unit).strip().lower()
    if text in _UNIT_NAMES:
        return _UNIT_NAMES[text]
    number = re.sub(r"\s*(m|metres?|meters?)$", "", text)
    try:
        scale = float(Fraction(number))
    except (ValueError, ZeroDivisionError):
        scale = float("nan")
    if not (np.isfinite(scale) and scale > 0):
        raise RefocusError(f"The depth unit must be m, cm, mm or metres per value such as 1/256; got {unit!r}.")
    return scale, f"units of {number} m"


def read_user_depth(
    source: str | os.PathLike | bytes | np.ndarray,
    photo_pixels: np.ndarray,
    kind: UserDepthKind = "auto",
    unit: str | float | None = None,
    *,
    max_bytes: int = DEFAULT_MAX_BYTES,
    max_pixels: int = DEFAULT_MAX_PIXELS,
) -> UserDepth:
    """Read a user's depth map for ``photo_pixels`` in the units it holds.

    Args:
        source: PNG/TIFF/.npy path or bytes, or an array (h, w). Any size with the photo's aspect
            ratio (within 1 %); a smaller map is brought up edge-aware, guided by the photo.
        photo_pixels: float32 (H, W, 3) sRGB in [0, 1], the photo the map belongs to.
        kind: see the module docstring.
        unit: for ``"metric"`` (and ``"auto"`` when it finds metric depth): metres per stored
            value; default millimetres.
        max_bytes, max_pixels: larger files or maps are refused.

    Returns:
        A ``UserDepth``.
    """
    if kind not in USER_DEPTH_KINDS:
        raise RefocusError(f"The depth map kind must be one of {', '.join(USER_DEPTH_KINDS)}, got {kind!r}.")
    raw = read_depth_values(source, max_bytes, max_pixels)
    height, width = photo_pixels.shape[:2]
    check_depth_aspect((raw.shape[1], raw.shape[0]), (width, height))
    if kind == "auto":
        saved_by_refocus = _has_refocus_marker(source)
        kind = "metric" if raw.dtype == np.uint16 and not saved_by_refocus else "disparity"
    values = raw.astype(np.float64)
    invalid = ~np.isfinite(values) | (values < 0) | ((values == 0) if kind != "disparity" else False)
    if invalid.all():
        raise RefocusError("The depth map has no valid values (all are NaN, infinite, negative or zero).")
    guide = cv2.resize(np.asarray(photo_pixels, np.float32), (raw.shape[1], raw.shape[0]), interpolation=cv2.INTER_AREA)
    if invalid.any():
        values = fill_invalid(values, invalid, guide)
    filled_share = float(invalid.mean())
    depth_range = None
    if kind == "metric":
        scale, unit_name = parse_unit("mm" if unit is None else unit)
        depth_m = np.clip(values * scale, *METRIC_DEPTH_RANGE_M)
        valid_depth = depth_m[~invalid]
        depth_range = (float(valid_depth.min()), float(valid_depth.max()))
        disparity = (1.0 / depth_m).astype(np.float32)
        text = f"metric depth in {unit_name}: {_metres(depth_range[0])} to {_metres(depth_range[1])}"
    else:
        disparity = relative_disparity_of(values, kind)
        text = {
            "disparity": "relative disparity (bright = near), no unit: the nearest part is read as about 1 m",
            "depth": "relative depth (bright = far), no unit: the nearest part is read as about 1 m",
        }[kind]
    if filled_share > 0:
        text += f"; {filled_share:.0%} of pixels had no value and were filled from the photo"
    full = upsample_disparity(disparity, photo_pixels) if disparity.shape != (height, width) else disparity
    return UserDepth(np.ascontiguousarray(full, np.float32), kind == "metric", text, depth_range, filled_share)


def _metres(value: float) -> str:
    return f"{value:.2g} m" if value < 1 else f"{value:.1f} m"


def _has_refocus_marker(source) -> bool:
    """True for a PNG that ``refocus.io.save_depth_png16`` wrote (relative disparity)."""
    if isinstance(source, np.ndarray):
        return False
    try:
        data = source if isinstance(source, (bytes, bytearray)) else Path(source).read_bytes()
        with Image.open(io.BytesIO(data)) as im:
            return getattr(im, "text", {}).get(DEPTH_PNG_MARKER[0]) == DEPTH_PNG_MARKER[1]
    except Exception:  # noqa: BLE001 - not a PNG Pillow reads: no marker
        return False


def fill_invalid(values: np.ndarray, invalid: np.ndarray, guide: np.ndarray) -> np.ndarray:
    """Fill ``invalid`` pixels of a depth map from their own surface, guided by the photo.

    Each pass replaces the holes within ``radius`` of known pixels by the colour-weighted
    median of the known pixels around them (OpenCV's weighted median with a mask ignores the
    unknown ones); the radius grows 4x per pass (2, 8, 32, ... px), so a hole of any size closes in
    ``log4(size)`` passes, from its rim inwards, following the photo's colours.

    Args:
        values: float64 (h, w); the invalid pixels' values are ignored.
        invalid: bool (h, w), True where there is no measurement; not all True.
        guide: the photo at the map's size, (h, w, 3) float in [0, 1] or uint8.

    Returns:
        float64 (h, w): ``values`` where valid, filled elsewhere.
    """
    known = ~invalid
    filled = np.where(known, values, 0.0)
    low, high = float(filled[known].min()), float(filled[known].max())
    if high == low:  # one value: nothing to choose between
        return np.where(known, filled, low)
    joint = np.clip(np.asarray(guide, np.float32) * 255.0 + 0.5, 0, 255).astype(np.uint8) if guide.dtype != np.uint8 else guide
    # The filter quantises its input to 256 levels of the range: work in [0, 1] float32.
    work = ((filled - low) / (high - low)).astype(np.float32)
    radius = 2
    while not known.all():
        reach = cv2.dilate(known.astype(np.uint8), cv2.getStructuringElement(cv2.MORPH_RECT, (2 * radius + 1,) * 2))
        median = weighted_median(joint, np.where(known, work, 0).astype(np.float32), radius, FILL_SIGMA,
                                 weightType=cv2.ximgproc.WMF_EXP, mask=known.astype(np.uint8))
        new = (reach > 0) & ~known
        work[new] = median[new]
        known = known | new
        radius *= 4
    return np.where(invalid, low + work.astype(np.float64) * (high - low), values)
