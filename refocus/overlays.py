"""Pictures that help people judge focus: the in-focus band, a depth legend, a zoom.

All take and return numpy arrays; none renders bokeh. Images are sRGB-encoded, either float32
in [0, 1] or uint8; each function says which it returns.
"""

from __future__ import annotations

import cv2
import numpy as np

from refocus.io import colorize_disparity

BAND_TINT = (0.2, 1.0, 0.3)  # green: reads as "go / in focus" and is rare in skin and sky
BAND_OPACITY = 0.45


def focus_band_overlay(
    image: np.ndarray,
    disparity: np.ndarray,
    focus_disparity: float,
    strength: float,
    *,
    focus_range: float = 0.0,
    sharp_px: float = 1.0,
    tint: tuple[float, float, float] = BAND_TINT,
    opacity: float = BAND_OPACITY,
) -> np.ndarray:
    """``image`` with the pixels that render sharp tinted (Lightroom's "visualize depth").

    A pixel is sharp when its circle of confusion ``strength * max(0, |D - focus| - focus_range)``
    is at most ``sharp_px``; the tint fades out linearly to none at ``2 * sharp_px`` so the band's
    edge shows how fast sharpness falls off.

    Args:
        image: (H, W, 3) sRGB, float in [0, 1] or uint8.
        disparity: float (H, W), larger = nearer.
        focus_disparity: the disparity rendered sharp.
        strength: CoC radius in pixels of ``image`` per unit of disparity (``blur_strength`` at
            this image's size).
        focus_range: half-width in disparity of the band kept sharp (``render_bokeh``'s option).
        sharp_px: the largest CoC radius, in pixels, still called sharp.
        tint: RGB in [0, 1]; opacity: 0 (no tint) to 1 (solid tint) in the sharp band.

    Returns:
        float32 (H, W, 3) sRGB in [0, 1].
    """
    pixels = _as_float(image)
    if disparity.shape != pixels.shape[:2]:
        raise ValueError(f"The disparity is {disparity.shape} but the image is {pixels.shape[:2]}.")
    if sharp_px <= 0 or strength < 0:
        raise ValueError(f"sharp_px must be > 0 and strength >= 0, got {sharp_px} and {strength}.")
    coc = strength * np.maximum(np.abs(disparity.astype(np.float32) - focus_disparity) - focus_range, 0.0)
    weight = opacity * np.clip(2.0 - coc / sharp_px, 0.0, 1.0)[..., None]
    return (pixels * (1.0 - weight) + np.asarray(tint, np.float32) * weight).astype(np.float32)


def depth_legend(
    disparity: np.ndarray,
    depth_m: np.ndarray | None = None,
    *,
    height: int = 256,
    width: int = 110,
    ticks: int = 5,
) -> np.ndarray:
    """A vertical colour bar for ``refocus.io.colorize_disparity``'s picture, labelled in depth units.

    The colours are the same mapping (the map's min..max over the inferno colour map), nearest at
    the top. Labels are metres when ``depth_m`` is given (metric depth sources), else relative
    disparity ("near" 1.00 ... "far" 0.00), since a relative map has no unit.

    Args:
        disparity: float (H, W), larger = nearer: the map being shown.
        depth_m: float (H, W) metric depth in metres of the same pixels, or None.
        height, width: size of the legend in pixels; ticks: number of labelled values (>= 2).

    Returns:
        uint8 (height, width, 3) RGB: the bar on the left, labels on a white ground to its right.
    """
    if ticks < 2 or height < 2 * ticks or width < 40:
        raise ValueError(f"A legend needs ticks >= 2 and room for them, got {ticks} ticks in {width} x {height}.")
    low, high = float(np.min(disparity)), float(np.max(disparity))
    ramp = np.linspace(high, low, height, dtype=np.float32)  # top = nearest
    colours = colorize_disparity(ramp[:, None])  # the ramp spans low..high: the map's own mapping
    bar_width = width // 4
    legend = np.full((height, width, 3), 255, np.uint8)
    legend[:, :bar_width] = colours
    for i in range(ticks):
        row = round(i * (height - 1) / (ticks - 1))
        value = float(ramp[row])
        text = _depth_label(value, disparity, depth_m) if depth_m is not None else f"{_relative(value, low, high):.2f}"
        if depth_m is None and i in (0, ticks - 1):
            text += " near" if i == 0 else " far"
        y = min(max(row + 4, 10), height - 3)
        cv2.line(legend, (bar_width, row), (bar_width + 4, row), (0, 0, 0), 1)
        cv2.putText(legend, text, (bar_width + 7, y), cv2.FONT_HERSHEY_SIMPLEX, 0.36, (0, 0, 0), 1, cv2.LINE_AA)
    return legend


def _relative(value: float, low: float, high: float) -> float:
    return (value - low) / (high - low) if high > low else 1.0


def _depth_label(value: float, disparity: np.ndarray, depth_m: np.ndarray) -> str:
    # The median metric depth of the 0.1 % of pixels whose disparity is nearest this tick's:
    # right for any monotonic relation between the two maps, not only depth = c / disparity.
    step = max(1, disparity.size // 100_000)  # a sample is plenty for a label
    sample_d, sample_z = disparity.ravel()[::step], depth_m.ravel()[::step]
    count = max(1, sample_d.size // 1000)
    nearest = np.argpartition(np.abs(sample_d - value), count - 1)[:count]
    metres = float(np.median(sample_z[nearest]))
    return f"{metres:.1f} m" if metres < 100 else f"{metres:.0f} m"


def zoom_box(xy: tuple[float, float], image_size: tuple[int, int], size: int = 384) -> tuple[int, int, int, int]:
    """The 1:1 crop ``(x0, y0, x1, y1)`` of a ``size``-pixel square centred on ``xy``, kept inside the image.

    ``image_size`` is ``(width, height)``; a crop never exceeds it. To show a refocused 1:1 zoom,
    render ``expand_box(box, margin)`` (margin = the largest blur radius, so light from outside
    the crop that blurs into it is included) and cut the crop out of that render.
    """
    width, height = image_size
    w, h = min(size, width), min(size, height)
    x0 = int(np.clip(round(xy[0] - w / 2), 0, width - w))
    y0 = int(np.clip(round(xy[1] - h / 2), 0, height - h))
    return x0, y0, x0 + w, y0 + h


def expand_box(
    box: tuple[int, int, int, int], margin: int, image_size: tuple[int, int]
) -> tuple[int, int, int, int]:
    """``box`` grown by ``margin`` pixels on every side, clipped to ``image_size`` = ``(width, height)``."""
    x0, y0, x1, y1 = box
    width, height = image_size
    return max(0, x0 - margin), max(0, y0 - margin), min(width, x1 + margin), min(height, y1 + margin)


def _as_float(image: np.ndarray) -> np.ndarray:
    pixels = np.asarray(image)
    return pixels.astype(np.float32) / 255.0 if pixels.dtype == np.uint8 else pixels.astype(np.float32)
