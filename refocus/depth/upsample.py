"""Edge-aware upsampling of a network's low-resolution disparity to the photo's resolution.

A depth network sees the photo shrunk to a few hundred pixels (518 px for Depth Anything).
Resizing its disparity back with bilinear interpolation smears every depth edge over several
photo pixels, and the renderer then blurs a ring of background around each sharp subject (a
halo). Here the photo itself guides the upsampling: a joint weighted median filter
(``cv2.ximgproc.weightedMedianFilter``, Zhang et al., "100+ times faster weighted median
filter", CVPR 2014) replaces each pixel's disparity by the weighted median of its
neighbourhood, weighted by colour similarity in the photo. A median picks one side of an
edge instead of averaging both, so depth edges snap to colour edges and no in-between
"floating" disparities are created.

Why the median and not a guided or joint-bilateral filter: ``benchmarks/upsample_edges.py``
shrinks the ground-truth disparity of three real NYU frames 4x and brings it back. Within 3 px
of depth edges the weighted median cut the disparity RMSE by 48 % against bilinear (pixels more
than 10 % off: 22 % -> 12 %), and by 47 % over all pixels; at 8x by 25 %. The guided and
bilateral filters are averages: they leave mixed values at edges and copy photo texture into
flat regions, and had more pixels >10 % off than bilinear. The benchmark prints all of them.

The preview (``upsample_disparity_for_preview``) takes a faster road. A 1024 px preview is only
1.3-1.5x the network's 518 px map, so the filter runs at the map's own size, guided by the
photo's luma shrunk to it, and bilinear interpolation does the last 1.3-1.5x (a ramp of at most
2 px, which the renderer's own colour-guided edge snapping, ``refocus/render/depth_edges.py``,
resolves). With a colour guide OpenCV first clusters the photo's colours (k-means), which is
most of the filter's time on a photo; the luma needs none. On the same NYU frames at 1.32x: edge
RMSE 0.035 (colour, at the preview's size, as full resolution does) -> 0.028 (bilinear 0.053),
pixels >10 % off 3.8 % -> 2.5 %; at 2x 0.054 -> 0.049; at 4x 0.059 -> 0.053; and renders with
it are closer to renders with the true depth (27.7 dB against 26.5 dB; bilinear 28.1 dB: at
this factor the renderer's edge snapping does most of the work). CPU time for a 1024 x 683
preview of the first-preview benchmark's photo: 0.53 s -> 0.11 s. What the luma cannot see is
an edge between two colours of equal brightness.

OpenCV's weighted median is not thread-safe with a colour guide: two calls at once crashed the
process or returned different maps (opencv-contrib 5.0), and the app serves its sessions from
threads, so those calls take turns (``_FILTER_LOCK``). With a one-channel guide (the preview's
luma) it clusters nothing and draws no random numbers; such calls run at once, with each other
and with colour-guided ones, and return the same maps (4 threads x 60 calls beside colour-guided
calls: no crash, every map equal to its single-threaded one): a preview's 0.1 s filter does not
wait behind another session's 3 s full-resolution filter.
"""

from __future__ import annotations

import contextlib
import functools
import math
import threading
import warnings
from typing import Literal

import cv2
import numpy as np

#: Above this many output pixels the filter runs at a reduced size and the result is resized
#: bilinearly the rest of the way: the median costs about 0.6 s per megapixel on a 2-core CPU
#: (a 12 MP photo takes 3 s capped, 12 s uncapped), and the last <= 2x of bilinear blurs an
#: edge by about one photo pixel, far below any bokeh.
DEFAULT_MAX_FILTER_PIXELS = 4_000_000

#: One colour-guided weighted median at a time, process-wide (see the module docstring).
_FILTER_LOCK = threading.Lock()


def upsample_disparity(
    disparity: np.ndarray,
    guide: np.ndarray,
    *,
    radius: int | None = None,
    sigma: float = 25.5,
    max_filter_pixels: int = DEFAULT_MAX_FILTER_PIXELS,
    filter_at: Literal["output", "input"] = "output",
) -> np.ndarray:
    """Resize a low-resolution disparity map to the guide photo's size, edges following the photo.

    Args:
        disparity: float (h, w) disparity (or any map whose edges should follow the photo's),
            finite. Usually the network's output, smaller than the photo.
        guide: the photo, (H, W, 3) or (H, W); uint8, or float in [0, 1] (sRGB-encoded).
        radius: filter radius in pixels of the size the filter runs at. Default: twice the
            upsampling factor to that size (at least 2), which reaches across the band that
            bilinear interpolation blurs (see the benchmark).
        sigma: colour-similarity scale of the weights, in 8-bit intensity levels. The default
            (OpenCV's own) scores best on the robust bench: lowres4_guided / network_like_guided
            36.37 / 35.33 dB, against 36.25 / 35.18 (8), 36.29 / 35.27 (15), 36.28 / 35.34
            (40) and 36.20 / 35.33 (80).
        max_filter_pixels: largest output size the filter runs at (see
            ``DEFAULT_MAX_FILTER_PIXELS``); ``filter_at="output"`` only.
        filter_at: ``"output"``: filter at the output's size; ``"input"``: filter at
            ``disparity``'s own size, guided by the photo shrunk to it, then resize bilinearly
            (the preview's road, see ``upsample_disparity_for_preview``).

    Returns:
        float32 (H, W). Values are medians of bilinearly interpolated input values, so they stay
        within the input's range. OpenCV quantises float input to about 256 levels of its
        range inside the filter (steps of ~0.4 % of the range).

    Example:
        >>> low = np.zeros((4, 4), np.float32); low[:, 2:] = 1.0
        >>> upsample_disparity(low, np.zeros((16, 16, 3), np.uint8)).shape
        (16, 16)
    """
    disparity = np.asarray(disparity)
    guide = np.asarray(guide)
    if disparity.ndim != 2 or disparity.size == 0:
        raise ValueError(f"disparity must be a non-empty 2-D (h, w) array, got shape {disparity.shape}")
    if guide.ndim not in (2, 3) or (guide.ndim == 3 and guide.shape[2] not in (1, 3)):
        raise ValueError(f"guide must be an (H, W, 3) or (H, W) image, got shape {guide.shape}")
    if not np.isfinite(disparity).all():
        raise ValueError("disparity contains NaN or infinite values")
    if max_filter_pixels < 1:
        raise ValueError(f"max_filter_pixels must be positive, got {max_filter_pixels}")
    if filter_at not in ("output", "input"):
        raise ValueError(f"filter_at must be 'output' or 'input', got {filter_at!r}")

    out_h, out_w = guide.shape[:2]
    low = disparity.astype(np.float32, copy=False)
    scale = max(out_h / low.shape[0], out_w / low.shape[1])
    if scale <= 1.0:
        # Nothing to recover: the map is already at least as detailed as the photo.
        return cv2.resize(low, (out_w, out_h), interpolation=cv2.INTER_AREA)

    if filter_at == "input":
        work_h, work_w = low.shape
    else:  # the full size, or smaller for very large photos
        shrink = min(1.0, math.sqrt(max_filter_pixels / (out_h * out_w)))
        work_w, work_h = max(1, round(out_w * shrink)), max(1, round(out_h * shrink))
    work_scale = max(work_h / low.shape[0], work_w / low.shape[1])

    joint = _as_uint8(guide)
    if (work_h, work_w) != (out_h, out_w):
        joint = cv2.resize(joint, (work_w, work_h), interpolation=cv2.INTER_AREA)
    start = low if low.shape == (work_h, work_w) else cv2.resize(low, (work_w, work_h), interpolation=cv2.INTER_LINEAR)
    if work_scale < 1.0:
        return cv2.resize(start, (out_w, out_h), interpolation=cv2.INTER_LINEAR)
    r = radius if radius is not None else max(1, round(2 * work_scale))
    if r < 1:
        raise ValueError(f"radius must be >= 1, got {r}")
    # A constant map has nothing to snap to; OpenCV's quantisation would divide by its zero range.
    if float(start.max()) == float(start.min()):
        filtered = start
    elif not hasattr(cv2, "ximgproc"):
        # Plain opencv-python (no contrib modules) shadows opencv-contrib when both are
        # installed; depth still works, with soft edges, rather than failing.
        _warn_no_ximgproc()
        filtered = start
    else:
        filtered = weighted_median(joint, start, r, sigma)
    if (work_h, work_w) != (out_h, out_w):
        filtered = cv2.resize(filtered, (out_w, out_h), interpolation=cv2.INTER_LINEAR)
    return filtered.astype(np.float32, copy=False)


def weighted_median(joint: np.ndarray, source: np.ndarray, radius: int, sigma: float, **options) -> np.ndarray:
    """``cv2.ximgproc.weightedMedianFilter(joint, source, radius, sigma=sigma, **options)`` (its
    fourth positional argument is ``dst``: a sigma passed there is ignored), repeatable and
    safe from threads: with a colour guide (``joint`` (h, w, 3) uint8) the filter clusters
    the guide's colours from OpenCV's random number generator, so unseeded it gives a different
    map on every call (about 0.03 of the range apart on average, as much as the filter
    changes), and two such calls at once are not safe (``_FILTER_LOCK``)."""
    with _FILTER_LOCK if joint.ndim == 3 else contextlib.nullcontext():
        cv2.setRNGSeed(0)
        return cv2.ximgproc.weightedMedianFilter(joint, source, radius, sigma=sigma, **options)


def upsample_disparity_for_preview(disparity: np.ndarray, guide: np.ndarray) -> np.ndarray:
    """``upsample_disparity`` for a preview: filtered at the map's size, guided by the photo's luma.

    About a fifth of the full-resolution road's CPU time on a 1024 px preview, and as sharp at a
    preview's 1.3-1.5x on real photos (see the module docstring).

    Args:
        disparity: float (h, w), finite, usually the network's map.
        guide: the preview, (H, W, 3) or (H, W); uint8, or float in [0, 1] (sRGB-encoded).

    Returns:
        float32 (H, W), within the input's range.
    """
    luma = _as_uint8(np.asarray(guide))
    if luma.ndim == 3 and luma.shape[2] == 3:
        luma = cv2.cvtColor(luma, cv2.COLOR_RGB2GRAY)
    return upsample_disparity(disparity, luma, filter_at="input")


def _as_uint8(image: np.ndarray) -> np.ndarray:
    """The guide as contiguous uint8 (OpenCV's weighted median takes an 8-bit joint image)."""
    if image.ndim == 3 and image.shape[2] == 1:
        image = image[:, :, 0]
    if image.dtype == np.uint8:
        return np.ascontiguousarray(image)
    if image.dtype == np.uint16:
        return (image >> 8).astype(np.uint8)
    return np.clip(np.asarray(image, np.float32) * 255.0 + 0.5, 0, 255).astype(np.uint8)


@functools.cache
def _warn_no_ximgproc() -> None:
    warnings.warn(
        "OpenCV's contrib modules (cv2.ximgproc) are missing, so depth is upsampled without edge "
        "guidance. `pip uninstall opencv-python opencv-python-headless` and "
        "`pip install --force-reinstall opencv-contrib-python-headless` fix it.",
        RuntimeWarning,
        stacklevel=3,
    )
