"""The photo-to-refocused-photo workflow that the app, the API and the CLI share.

``Refocuser`` owns one depth model (loaded on first use) and the depth cache, so depth is
predicted once per image content, whichever face asked for it, and every click or slider move
afterwards only renders.
"""

from __future__ import annotations

import math
import threading
import time
from dataclasses import dataclass, field
from typing import Callable

import cv2
import numpy as np

from refocus.cache import BytesLRU, content_key
from refocus.depth.base import DepthModel, DepthResult
from refocus.errors import RefocusError
from refocus.io import Photo
from refocus.lens import blur_strength, focal_length_px, focus_disparity_at

# Bokeh shapes offered to users (UI, API, CLI), as options of ``render_bokeh``.
SHAPES: dict[str, dict] = {
    "disc": {"shape": "disc"},
    "5-blade": {"shape": "polygon", "blades": 5, "blade_curvature": 0.15},
    "6-blade": {"shape": "polygon", "blades": 6, "blade_curvature": 0.15},
    "8-blade": {"shape": "polygon", "blades": 8, "blade_curvature": 0.15},
    "cats-eye": {"shape": "cats_eye"},
    "ring": {"shape": "ring"},
}
PREVIEW_SIZE = 1024  # long edge, px: what a screen shows, and fast to render


@dataclass(frozen=True)
class LensSettings:
    """What the user controls.

    Attributes:
        f_number: aperture, f/0.7 to f/64 (the UI offers f/1 to f/22).
        shape: a key of ``SHAPES``.
        highlight_boost: extra brightness of out-of-focus highlights, 0 (off, physical) to 4.
        highlight_threshold: sRGB luminance in (0, 1] above which a pixel is a highlight.
        focus_range: share of the photo's disparity range, 0 to 1, kept sharp around the focus.
    """

    f_number: float = 2.8
    shape: str = "disc"
    highlight_boost: float = 0.0
    highlight_threshold: float = 0.9
    focus_range: float = 0.0

    def __post_init__(self) -> None:
        if self.shape not in SHAPES:
            raise RefocusError(f"Unknown bokeh shape {self.shape!r}; choose one of {', '.join(SHAPES)}.")
        _check_range("highlight boost", self.highlight_boost, 0.0, 4.0)
        _check_range("highlight threshold", self.highlight_threshold, 0.01, 1.0)
        _check_range("focus range", self.focus_range, 0.0, 1.0)

    def render_options(self) -> dict:
        return {
            **SHAPES[self.shape],
            "highlight_boost": float(self.highlight_boost),
            "highlight_threshold": float(self.highlight_threshold),
        }


def _check_range(name: str, value: float, low: float, high: float) -> None:
    if not (isinstance(value, (int, float)) and math.isfinite(value) and low <= value <= high):
        raise RefocusError(f"The {name} must be a number from {low:g} to {high:g}, got {value!r}.")


@dataclass(frozen=True)
class PreparedPhoto:
    """A photo ready to refocus: its depth at full resolution and a preview-sized copy.

    Attributes:
        key: content key (same photo and depth source, same key).
        width, height: the original photo's size in pixels.
        depth: ``DepthResult`` at (height, width).
        focal_px: focal length in original pixels (model or EXIF), or None (virtual 50 mm).
        preview: float32 (h, w, 3) sRGB in [0, 1], long edge <= ``Refocuser.preview_size``.
        preview_disparity: float32 (h, w), the disparity at the preview's size.
    """

    key: str
    width: int
    height: int
    depth: DepthResult
    focal_px: float | None
    preview: np.ndarray
    preview_disparity: np.ndarray

    @property
    def preview_scale(self) -> float:
        return self.preview.shape[1] / self.width

    @property
    def nbytes(self) -> int:
        return self.depth.nbytes + self.preview.nbytes + self.preview_disparity.nbytes


@dataclass
class Timings:
    """Seconds spent in the last depth prediction and the last render (for the status line)."""

    depth_s: float | None = None
    render_s: float | None = None


@dataclass
class Refocuser:
    """Depth once per image, renders on demand.

    Args:
        model_spec: what ``refocus.load_depth_model`` accepts (alias, hub id, local directory).
        device: "cpu", "cuda", ... or None to let the model choose.
        cache_bytes: bound of the depth cache in bytes.
        load_model: the loader, replaceable for tests.
    """

    model_spec: str | None = None
    device: str | None = None
    cache_bytes: int = 1 << 30
    preview_size: int = PREVIEW_SIZE
    load_model: Callable[..., DepthModel] | None = None
    timings: Timings = field(default_factory=Timings)

    def __post_init__(self) -> None:
        self._model: DepthModel | None = None
        self._model_lock = threading.Lock()
        self._predict_lock = threading.Lock()  # one network pass at a time: bounds memory
        # Depth per image content (the network's output), and photos prepared for refocusing
        # (that depth plus preview-sized copies), each bounded to half the byte budget.
        self.cache: BytesLRU[DepthResult] = BytesLRU(self.cache_bytes // 2, lambda r: r.nbytes)
        self.prepared: BytesLRU[PreparedPhoto] = BytesLRU(self.cache_bytes // 2, lambda p: p.nbytes)

    @property
    def model(self) -> DepthModel:
        """The depth model, loaded on first use (raises ``RefocusError`` when it cannot be)."""
        with self._model_lock:
            if self._model is None:
                load = self.load_model
                if load is None:
                    from refocus.depth import load_depth_model as load
                self._model = load(self.model_spec, device=self.device)
            return self._model

    @property
    def model_loaded(self) -> bool:
        return self._model is not None

    def depth(self, image: np.ndarray) -> DepthResult:
        """Depth of float32 (H, W, 3) sRGB ``image``, from the cache when this image was seen."""
        model = self.model
        key = (model.name, content_key(image))

        def predict() -> DepthResult:
            with self._predict_lock:
                start = time.perf_counter()
                result = model.predict(image)
                self.timings.depth_s = time.perf_counter() - start
            return result

        return self.cache.get_or_compute(key, predict)

    def prepare(self, photo: Photo, depth_map: np.ndarray | None = None) -> PreparedPhoto:
        """Depth and a preview-sized copy of ``photo``, computed once per content and cached.

        Args:
            photo: the decoded photo.
            depth_map: a disparity map (H, W) to use instead of the network (the user's own,
                as ``refocus.io.load_depth_map`` returns it), or None.
        """
        key = content_key(photo.pixels)
        if depth_map is not None:
            key = (key, content_key(depth_map))
        return self.prepared.get_or_compute(key, lambda: self._prepare(photo, depth_map, key))

    def _prepare(self, photo: Photo, depth_map: np.ndarray | None, key) -> PreparedPhoto:
        depth = self.depth(photo.pixels) if depth_map is None else DepthResult(depth_map)
        scale = min(1.0, self.preview_size / max(photo.width, photo.height))
        size = (max(1, round(photo.width * scale)), max(1, round(photo.height * scale)))
        preview, preview_disparity = photo.pixels, depth.disparity
        if scale < 1.0:
            preview = cv2.resize(photo.pixels, size, interpolation=cv2.INTER_AREA)
            preview_disparity = cv2.resize(depth.disparity, size, interpolation=cv2.INTER_AREA)
        focal_px = depth.focal_px
        if focal_px is None and photo.focal_mm_35 is not None:
            focal_px = focal_length_px(photo.width, photo.height, photo.focal_mm_35)
        return PreparedPhoto(
            key=str(key),
            width=photo.width,
            height=photo.height,
            depth=depth,
            focal_px=focal_px,
            preview=preview,
            preview_disparity=preview_disparity,
        )

    def render_preview(
        self, prepared: PreparedPhoto, focus_xy: tuple[float, float], settings: LensSettings
    ) -> np.ndarray:
        """Render the preview of ``prepared``, focused at ``focus_xy`` in original-image pixels."""
        scale = prepared.preview_scale
        x, y = focus_xy
        h, w = prepared.preview.shape[:2]
        preview_xy = (min(x * scale, w - 1), min(y * scale, h - 1))
        focal_px = None if prepared.focal_px is None else prepared.focal_px * scale
        return self.render(prepared.preview, prepared.preview_disparity, preview_xy, settings, focal_px=focal_px)

    def render_full(
        self, photo: Photo, prepared: PreparedPhoto, focus_xy: tuple[float, float], settings: LensSettings
    ) -> np.ndarray:
        """Render ``photo`` at full resolution, focused at ``focus_xy`` in its pixels."""
        return self.render(photo.pixels, prepared.depth.disparity, focus_xy, settings, focal_px=prepared.focal_px)

    def render(
        self,
        image: np.ndarray,
        disparity: np.ndarray,
        focus_xy: tuple[float, float],
        settings: LensSettings,
        *,
        focal_px: float | None = None,
    ) -> np.ndarray:
        """Render ``image`` focused at ``focus_xy``.

        Args:
            image: float32 (H, W, 3) sRGB in [0, 1].
            disparity: float32 (H, W), larger = nearer (``DepthResult.disparity``).
            focus_xy: (x, y) in pixels of ``image``.
            settings: the lens controls.
            focal_px: focal length in pixels at this size, if known; else the virtual 50 mm lens.

        Returns:
            float32 (H, W, 3) sRGB in [0, 1].
        """
        from refocus.bokeh import render_bokeh

        height, width = image.shape[:2]
        if disparity.shape != (height, width):
            raise RefocusError(
                f"The depth map is {disparity.shape[1]} x {disparity.shape[0]} pixels but the photo "
                f"is {width} x {height}."
            )
        focus = focus_disparity_at(disparity, *focus_xy)
        strength = blur_strength(settings.f_number, width, height, focal_px)
        low, high = np.percentile(disparity, [1, 99])
        start = time.perf_counter()
        rendered = render_bokeh(
            image,
            disparity,
            focus,
            strength,
            focus_range=float(settings.focus_range * (high - low) / 2),
            **settings.render_options(),
        )
        self.timings.render_s = time.perf_counter() - start
        return rendered
