"""Where the focus goes: a point given in pixels, in percent or found automatically, and planes.

* ``FocusTarget`` is what a user may type for a focus point: ``640,360`` (pixels), ``50%,40%``
  (fractions of the width and height, the same spot on photos of any size) or ``auto``.
* ``auto_focus_point`` finds the subject: the nearest thick region of similar depth that is
  large enough to matter. Depth bands are used rather than one "nearer than" threshold because
  a floor or a table is nearest at the frame's bottom edge. A receding floor falls into thin
  strips, one per band, while a subject (roughly facing the camera) fills one band with a thick
  blob, so thin regions, and regions spanning the whole width, are taken only when nothing else
  is left.
* ``fit_focus_plane`` returns the plane through three points in (x, y, disparity) space. Disparity
  is an affine function of image position on any flat surface (a table top, a street, a wall:
  for a plane n . X = d in camera space, 1 / Z is linear in x / f and y / f), so three points
  on such a surface define a focal plane that keeps all of it sharp, as a tilted lens would.
  ``tilted_focus_plane`` is the same plane given by a line and a tilt, for the "miniature" look.
"""

from __future__ import annotations

import math
import re
from dataclasses import dataclass

import cv2
import numpy as np

from refocus.errors import RefocusError
from refocus.lens import focus_disparity_at
from refocus.refocuser import focus_point

AUTO_FOCUS_SIZE = 256  # long edge, px, of the copy auto focus segments: regions, not detail, matter
AUTO_FOCUS_BANDS = 12  # depth bands between the 2nd and 98th percentile of disparity
AUTO_FOCUS_MIN_AREA = 0.02  # a subject covers at least this share of the frame
AUTO_FOCUS_MAX_WIDTH = 0.9  # regions spanning more of the width are floors, walls or sky
AUTO_FOCUS_MIN_RADIUS = 0.04  # a subject holds a disc this share of the short side across
# Photographers frame subjects near the centre: a region at a corner must be this much nearer
# (in shares of the 2-98 % disparity range) to beat one at the centre. 0.5 picked the cabinet,
# not the nearer pole at the frame's edge, in NYU frame 100 (../shared/real-rgbd).
AUTO_FOCUS_CENTRE_WEIGHT = 0.5
_NUMBER = r"([-+]?(?:\d+\.?\d*|\.\d+)(?:[eE][-+]?\d+)?)"
_POINT = re.compile(rf"^{_NUMBER}\s*(%?)\s*,\s*{_NUMBER}\s*(%?)$")


@dataclass(frozen=True)
class FocusTarget:
    """A focus point as a user gave it, resolved per photo by ``point_in``.

    Attributes:
        x, y: pixels, or percent of the width / height when ``relative``; ignored when ``auto``.
        relative: x and y are percentages (0 to 100) of the photo's width and height.
        auto: focus on the subject (``auto_focus_point``).
    """

    x: float = 0.0
    y: float = 0.0
    relative: bool = False
    auto: bool = False

    @classmethod
    def parse(cls, text: str) -> "FocusTarget":
        """``"640,360"`` (pixels), ``"50%,40%"`` (percent of width, height) or ``"auto"``."""
        text = str(text).strip()
        if text.lower() == "auto":
            return cls(auto=True)
        match = _POINT.match(text)
        if match is None and text.count(",") == 1 and "%" not in text:
            return cls(*focus_point(text.split(",")))  # "nan,3", "x,3": a sentence about that number
        if match is None or bool(match.group(2)) != bool(match.group(4)):
            raise RefocusError(
                f"Expected a focus point X,Y in pixels (640,360), in percent (50%,40%) or auto; got {text[:60]!r}."
            )
        x, y = float(match.group(1)), float(match.group(3))
        relative = bool(match.group(2))
        if relative and not (0 <= x <= 100 and 0 <= y <= 100):
            raise RefocusError(f"A focus point in percent must lie within 0% to 100%, got {text!r}.")
        return cls(x, y, relative=relative)

    def point_in(
        self, disparity: np.ndarray, subject_area: tuple[float, float, float, float] | None = None
    ) -> tuple[float, float]:
        """The (x, y) pixel this target means in a photo whose disparity (H, W) is given (and,
        for ``auto``, the camera's subject area: see ``auto_focus_point``)."""
        height, width = disparity.shape
        if self.auto:
            return auto_focus_point(disparity, subject_area)
        if self.relative:
            # 100% is the last pixel, not one past it.
            return min(self.x / 100 * width, width - 1), min(self.y / 100 * height, height - 1)
        return self.x, self.y


def auto_focus_point(
    disparity: np.ndarray, subject_area: tuple[float, float, float, float] | None = None
) -> tuple[float, float]:
    """The subject's most interior pixel: where a click would focus on the subject.

    With the camera's ``subject_area`` (x0, y0, x1, y1 as fractions of the frame: where a phone
    focused), the search below runs inside that box only: the camera knew its subject, and a
    nearer surface outside the box (a bed in the corner of a pet's portrait) is not it.

    The disparity is cut into ``AUTO_FOCUS_BANDS`` bands of equal width; each band's connected
    regions covering at least ``AUTO_FOCUS_MIN_AREA`` of the frame are candidates. Among those
    narrower than ``AUTO_FOCUS_MAX_WIDTH`` of the frame and holding a disc of
    ``AUTO_FOCUS_MIN_RADIUS`` of the short side (failing that, thick ones; then any), the one
    scoring highest wins: nearness (median disparity, as a share of the range) less
    ``AUTO_FOCUS_CENTRE_WEIGHT`` times its distance from the centre (1 = a corner). If no
    region is large enough, the largest is taken. The point returned is the region's pixel
    farthest from its outline and the frame's edge, so the focus window (``focus_disparity_at``)
    lies inside it.

    Args:
        disparity: float32 (H, W), larger = nearer, any positive scale.
        subject_area: (x0, y0, x1, y1) in [0, 1], or None (the whole frame).

    Returns:
        (x, y) in pixels of ``disparity``.
    """
    if disparity.ndim != 2 or disparity.size == 0:
        raise RefocusError(f"Expected a 2-D disparity map, got shape {disparity.shape}.")
    height, width = disparity.shape
    if subject_area is not None:
        x0, y0, x1, y1 = subject_area
        left, top = int(x0 * width), int(y0 * height)
        right, bottom = max(round(x1 * width), left + 1), max(round(y1 * height), top + 1)
        x, y = auto_focus_point(disparity[top:bottom, left:right])
        return x + left, y + top
    scale = min(1.0, AUTO_FOCUS_SIZE / max(height, width))
    small = np.asarray(disparity, np.float32)
    if scale < 1.0:
        size = (max(1, round(width * scale)), max(1, round(height * scale)))
        small = cv2.resize(small, size, interpolation=cv2.INTER_AREA)
    low, high = np.percentile(small, [2, 98])
    if not high > low:  # a flat map has no subject: the centre is as good as any point
        return (width - 1) / 2, (height - 1) / 2
    bands = np.clip(((small - low) / (high - low) * AUTO_FOCUS_BANDS).astype(np.int32), 0, AUTO_FOCUS_BANDS - 1)
    # (thin, too wide, -score, -area, mask, distance to the region's outline)
    candidates: list[tuple[bool, bool, float, int, np.ndarray, np.ndarray]] = []
    centre, half_diagonal = (np.array(small.shape) - 1) / 2, math.hypot(*small.shape) / 2
    largest: tuple[int, np.ndarray, np.ndarray] | None = None
    min_radius = AUTO_FOCUS_MIN_RADIUS * min(small.shape)
    for band in range(AUTO_FOCUS_BANDS):
        in_band = (bands == band).astype(np.uint8)
        # Distance to the band's outline is distance to each region's: regions are disjoint.
        inside = cv2.distanceTransform(np.pad(in_band, 1), cv2.DIST_L2, 3)[1:-1, 1:-1]
        count, labels, stats, _ = cv2.connectedComponentsWithStats(in_band, connectivity=4)
        for label in range(1, count):
            area = int(stats[label, cv2.CC_STAT_AREA])
            # Masks only for regions that may win: a noisy map has thousands of specks.
            if largest is None or area > largest[0]:
                largest = (area, labels == label, inside)
            if area >= AUTO_FOCUS_MIN_AREA * small.size:
                mask = labels == label
                thin = bool(inside[mask].max() < min_radius)
                too_wide = bool(stats[label, cv2.CC_STAT_WIDTH] > AUTO_FOCUS_MAX_WIDTH * small.shape[1])
                nearness = (float(np.median(small[mask])) - low) / (high - low)
                middle = np.unravel_index(int(np.argmax(np.where(mask, inside, -1))), mask.shape)
                off_centre = float(np.hypot(*(np.array(middle) - centre))) / half_diagonal
                score = nearness - AUTO_FOCUS_CENTRE_WEIGHT * off_centre
                candidates.append((thin, too_wide, -score, -area, mask, inside))
    mask, inside = min(candidates, key=lambda c: c[:4])[4:] if candidates else largest[1:]
    y, x = np.unravel_index(int(np.argmax(np.where(mask, inside, -1))), mask.shape)
    # Back to the input's pixels: the centre of the small pixel, clamped into the image.
    return float(min((x + 0.5) / scale - 0.5, width - 1.0)), float(min((y + 0.5) / scale - 0.5, height - 1.0))


@dataclass(frozen=True)
class FocusPlane:
    """The focal plane ``focus(x, y) = a * x + b * y + c`` (disparity units, x, y in pixels)."""

    a: float
    b: float
    c: float

    def disparity_map(self, width: int, height: int, scale: float = 1.0) -> np.ndarray:
        """The focus disparity per pixel of an image ``scale`` times the size the plane was fit at.

        Returns:
            float32 (height, width): what ``render_bokeh`` takes as ``focus_disparity``.
        """
        # Pixel centres of the scaled image in the fitted image's pixels.
        xs = (np.arange(width, dtype=np.float64) + 0.5) / scale - 0.5
        ys = (np.arange(height, dtype=np.float64) + 0.5) / scale - 0.5
        return (self.a * xs[None, :] + self.b * ys[:, None] + self.c).astype(np.float32)


def fit_focus_plane(disparity: np.ndarray, points, scale: float = 1.0) -> FocusPlane:
    """The plane in (x, y, disparity) space through three points the user wants sharp.

    Args:
        disparity: float32 (H, W), larger = nearer, ``scale`` times the size of the image the
            points are in (a preview's map: a click need not wait for full-resolution depth).
        points: three (x, y) pixels; each one's disparity is read robustly (``focus_disparity_at``).
        scale: the map's size relative to the points' image, <= 1.

    Returns:
        The ``FocusPlane`` through them, in the points' pixels.
    """
    points = [tuple(map(float, p)) for p in points]
    if len(points) != 3:
        raise RefocusError(f"A focus plane needs exactly three points, got {len(points)}.")
    h, w = disparity.shape
    values = [focus_disparity_at(disparity, min(x * scale, w - 1), min(y * scale, h - 1)) for x, y in points]
    (x1, y1), (x2, y2), (x3, y3) = points
    # Twice the triangle's area: near zero, the points lie on a line and fix no plane.
    cross = (x2 - x1) * (y3 - y1) - (x3 - x1) * (y2 - y1)
    if abs(cross) < 0.01 * (min(disparity.shape) / scale) ** 2:
        raise RefocusError("The three focus-plane points lie (nearly) on one line; spread them out.")
    a, b, c = np.linalg.solve(np.array([[x, y, 1.0] for x, y in points]), np.array(values))
    return FocusPlane(float(a), float(b), float(c))


def focus_plane_disparity(disparity: np.ndarray, points) -> np.ndarray:
    """The per-pixel focus disparity, float32 (H, W), of the plane through three (x, y) points."""
    height, width = disparity.shape
    return fit_focus_plane(disparity, points).disparity_map(width, height)


def tilted_focus_plane(disparity: np.ndarray, through_xy, angle_deg: float, tilt: float) -> FocusPlane:
    """A focal plane tilted about a line in the image: the "miniature" (tilt-shift) look.

    The line through ``through_xy`` at ``angle_deg`` stays sharp at that point's disparity;
    across it the focus disparity changes by ``tilt`` times the photo's disparity range (2nd to
    98th percentile) per image height. On a street receding up the frame (disparity falling
    upwards) a positive tilt makes the focus rise upwards, against the scene, so blur grows
    fast on both sides of the line; a negative tilt follows the street and keeps more of it sharp.

    Args:
        disparity: float32 (H, W), larger = nearer.
        through_xy: (x, y) pixel on the sharp line.
        angle_deg: the line's angle, degrees counter-clockwise from horizontal (0 = a level band).
        tilt: focus change across the line, in disparity ranges per image height (0 = no tilt).
    """
    x0, y0 = through_xy
    d0 = focus_disparity_at(disparity, x0, y0)
    low, high = np.percentile(disparity, [2, 98])
    slope = float(tilt) * float(high - low) / disparity.shape[0]
    theta = math.radians(angle_deg)
    # Unit normal to the line, pointing "up" in the image for angle 0 (image y grows downwards).
    nx, ny = -math.sin(theta), -math.cos(theta)
    return FocusPlane(slope * nx, slope * ny, d0 - slope * (nx * x0 + ny * y0))
