"""Where to focus before the user clicks: a face if one is found, else the nearest large subject.

A depth map alone does not say what the subject is, but photographers frame subjects as
surfaces that face the camera and stand nearer than the background, while floors, tables and
walls that recede are ramps in disparity. So the search keeps pixels whose disparity is locally
flat (a ramp's gradient is large), and walks disparity thresholds from near to far until a
connected region of those pixels covers ``MIN_SUBJECT_AREA`` of the frame; the focus point is
that region's most interior pixel (farthest from its edges, where depth is least reliable).

Faces come first when OpenCV's bundled Haar cascade is installed (``cv2.data.haarcascades``;
nothing is downloaded): the largest face's centre.
"""

from __future__ import annotations

from pathlib import Path

import cv2
import numpy as np

WORK_SIZE = 256  # long edge, px, of the copy searched: subjects are large, so detail is not needed
MIN_SUBJECT_AREA = 0.01  # share of the frame a region must cover to count as a subject
# Largest disparity gradient (per image width, relative to the photo's disparity range) of a
# surface that faces the camera. A floor from the horizon to the frame's bottom edge measures
# about 1.5 to 3 in these units; a fronto-parallel card measures 0 inside.
MAX_FLAT_GRADIENT = 0.6
THRESHOLD_PERCENTILES = (95, 90, 80, 70, 60, 50, 40, 30)  # near to far
FACE_CASCADE = "haarcascade_frontalface_default.xml"


def auto_focus_point(disparity: np.ndarray, image: np.ndarray | None = None) -> tuple[float, float]:
    """The point to focus on before the user clicks, in the photo's pixels.

    Args:
        disparity: float (H, W), larger = nearer, any positive scale.
        image: the photo, (H', W', 3) uint8 or float in [0, 1], any size with the same aspect
            ratio as ``disparity``; when given and a face detector is installed, the largest
            face wins.

    Returns:
        ``(x, y)`` in ``disparity``'s pixels (floats): a face's centre, else the most interior
        point of the nearest large camera-facing region, else the centre of the frame.

    Example:
        >>> d = np.full((120, 160), 0.1, np.float32); d[20:60, 20:60] = 1.0
        >>> x, y = auto_focus_point(d)
        >>> 20 <= x < 60 and 20 <= y < 60
        True
    """
    disparity = np.asarray(disparity, dtype=np.float32)
    if disparity.ndim != 2 or min(disparity.shape) < 1:
        raise ValueError(f"The disparity must be a 2-D (H, W) array, got shape {disparity.shape}.")
    height, width = disparity.shape
    if image is not None:
        face = largest_face(image)
        if face is not None:
            scale_x, scale_y = width / image.shape[1], height / image.shape[0]
            return float(face[0] * scale_x), float(face[1] * scale_y)
    point = nearest_subject(disparity)
    return point if point is not None else (width / 2.0, height / 2.0)


def nearest_subject(disparity: np.ndarray) -> tuple[float, float] | None:
    """Most interior point of the nearest camera-facing region covering ``MIN_SUBJECT_AREA``, or None.

    ``disparity``: float32 (H, W), larger = nearer. Returns ``(x, y)`` in its pixels.
    """
    height, width = disparity.shape
    scale = min(1.0, WORK_SIZE / max(height, width))
    size = (max(1, round(width * scale)), max(1, round(height * scale)))
    small = cv2.resize(disparity, size, interpolation=cv2.INTER_AREA) if scale < 1 else disparity.copy()
    small = cv2.medianBlur(np.ascontiguousarray(small), 5) if min(small.shape) >= 5 else small
    finite = small[np.isfinite(small)]
    if finite.size == 0:
        return None
    low, high = np.percentile(finite, [1, 99])
    if high - low <= 1e-3 * max(abs(high), abs(low)):  # no depth structure (resampling leaves ~1e-7)
        return None
    gy, gx = np.gradient(small)
    flat = np.hypot(gx, gy) * small.shape[1] / (high - low) <= MAX_FLAT_GRADIENT
    min_area = MIN_SUBJECT_AREA * small.size
    for threshold in np.percentile(finite, THRESHOLD_PERCENTILES):
        mask = (flat & (small >= threshold)).astype(np.uint8)
        count, labels, stats, _ = cv2.connectedComponentsWithStats(mask, connectivity=8)
        areas = stats[1:, cv2.CC_STAT_AREA]
        if count > 1 and areas.max() >= min_area:
            region = (labels == 1 + int(np.argmax(areas))).astype(np.uint8)
            # Pad so the frame's border counts as an edge of the region too.
            inside = cv2.distanceTransform(np.pad(region, 1), cv2.DIST_L2, 5)[1:-1, 1:-1]
            y, x = np.unravel_index(int(np.argmax(inside)), inside.shape)
            return float((x + 0.5) / scale - 0.5), float((y + 0.5) / scale - 0.5)
    return None


def largest_face(image: np.ndarray) -> tuple[float, float] | None:
    """Centre ``(x, y)`` of the largest frontal face in ``image`` (its pixels), or None.

    ``image``: (H, W, 3) RGB, uint8 or float in [0, 1]. None also when OpenCV ships without its
    Haar cascades (the pip wheels ``opencv-python-headless`` >= 4.x include them; some builds do not).
    """
    detector = _face_detector()
    if detector is None:
        return None
    pixels = np.asarray(image)
    if pixels.dtype != np.uint8:
        pixels = np.clip(np.rint(pixels * 255.0), 0, 255).astype(np.uint8)
    scale = min(1.0, 640 / max(pixels.shape[:2]))  # Haar cascades look for faces >= 24 px anyway
    grey = cv2.cvtColor(pixels, cv2.COLOR_RGB2GRAY)
    if scale < 1:
        grey = cv2.resize(grey, None, fx=scale, fy=scale, interpolation=cv2.INTER_AREA)
    min_side = max(24, round(0.04 * min(grey.shape)))
    faces = detector.detectMultiScale(cv2.equalizeHist(grey), scaleFactor=1.1, minNeighbors=5, minSize=(min_side, min_side))
    if len(faces) == 0:
        return None
    x, y, w, h = max(faces, key=lambda f: f[2] * f[3])
    return float((x + w / 2) / scale), float((y + h / 2) / scale)


_DETECTOR: list = []  # the loaded cascade (or None when absent), loaded on first use


def _face_detector() -> cv2.CascadeClassifier | None:
    if not _DETECTOR:
        folder = getattr(getattr(cv2, "data", None), "haarcascades", None)
        path = Path(folder) / FACE_CASCADE if folder else None
        detector = cv2.CascadeClassifier(str(path)) if path and path.is_file() else None
        _DETECTOR.append(detector if detector is not None and not detector.empty() else None)
    return _DETECTOR[0]
