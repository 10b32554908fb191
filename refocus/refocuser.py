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
from refocus.lens import F_NUMBER_RANGE, blur_strength, focal_length_px, focus_disparity_at

# Bokeh shapes offered to users (UI, API, CLI), as options of ``render_bokeh``.
SHAPES: dict[str, dict] = {
    "disc": {"shape": "disc"},
    "5-blade": {"shape": "polygon", "blades": 5, "blade_curvature": 0.15},
    "6-blade": {"shape": "polygon", "blades": 6, "blade_curvature": 0.15},
    "8-blade": {"shape": "polygon", "blades": 8, "blade_curvature": 0.15},
    "cats-eye": {"shape": "cats_eye"},
    "ring": {"shape": "ring"},
}
# How the UI names each kind of ``render_bokeh`` shape (a polygon by its blade count).
_SHAPE_KIND_LABELS = {
    "disc": "Disc (round aperture)",
    "polygon": "{blades} blades",
    "cats_eye": "Cat's eye (vignetted)",
    "ring": "Ring (mirror lens)",
}
MODEL_RETRY_S = 300  # after a failed model load, seconds before loading is tried again
PREVIEW_SIZE = 1024  # long edge, px: what a screen shows, and fast to render
PROGRESS_STRIPS = 8  # a full-resolution render with progress reports (and can stop) this often
# Depth networks need a few pixels each way and a sane aspect ratio: their processors resize to
# a fixed size keeping the aspect, so a 1 x 5000 strip would shrink to nothing. A photo outside
# these bounds is stretched for the network only and its depth stretched back (such a strip has
# little depth structure to lose); every other photo goes to the network untouched.
NETWORK_MIN_SIDE = 16
NETWORK_MAX_ASPECT = 8.0
NETWORK_MAX_SIDE = 2048  # bounds the stretched copy of a 1 x 50 000 000 "photo"


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
        # Checked here, before any depth pass is spent on a request that cannot render; values
        # from the API or a form may arrive as strings or None, so they are converted too.
        if not isinstance(self.shape, str) or self.shape not in SHAPES:
            raise RefocusError(f"Unknown bokeh shape {_short(self.shape)}; choose one of {', '.join(SHAPES)}.")
        for name, attribute, (low, high) in [
            ("f-number", "f_number", F_NUMBER_RANGE),
            ("highlight boost", "highlight_boost", (0.0, 4.0)),
            ("highlight threshold", "highlight_threshold", (0.01, 1.0)),
            ("focus range", "focus_range", (0.0, 1.0)),
        ]:
            object.__setattr__(self, attribute, _check_range(name, getattr(self, attribute), low, high))

    def render_options(self) -> dict:
        return {
            **SHAPES[self.shape],
            "highlight_boost": float(self.highlight_boost),
            "highlight_threshold": float(self.highlight_threshold),
        }


def shape_choices() -> list[tuple[str, str]]:
    """``(label, name)`` for each of ``SHAPES``, for a radio button: ``("5 blades", "5-blade")``."""
    return [(_SHAPE_KIND_LABELS[options["shape"]].format(**options), name) for name, options in SHAPES.items()]


def as_number(name: str, value) -> float:
    """``value`` (a number or a numeric string) as a finite float, or a ``RefocusError``."""
    try:
        number = float(value) if not isinstance(value, bool) else math.nan
    except (TypeError, ValueError, OverflowError):
        number = math.nan
    if not math.isfinite(number):
        raise RefocusError(f"The {name} must be a finite number, got {_short(value)}.")
    return number


def focus_point(focus_xy) -> tuple[float, float]:
    """A focus point ``(x, y)`` from the UI, API or CLI as two finite floats (pixels)."""
    try:
        x, y = focus_xy
    except (TypeError, ValueError):
        raise RefocusError(f"The focus point must be two numbers x, y in pixels, got {_short(focus_xy)}.") from None
    return as_number("focus x", x), as_number("focus y", y)


def _check_range(name: str, value, low: float, high: float) -> float:
    number = as_number(name, value)
    if not low <= number <= high:
        raise RefocusError(f"The {name} must be a number from {low:g} to {high:g}, got {number:g}.")
    return number


def _short(value) -> str:
    """``repr(value)``, cut short: a hostile request must not echo megabytes back to itself."""
    text = repr(value)
    return text if len(text) <= 60 else text[:57] + "..."


def lens_at(
    disparity: np.ndarray,
    focus_xy: tuple[float, float] | None,
    settings: LensSettings,
    focal_px: float | None = None,
    focus_disparity: float | np.ndarray | None = None,
) -> tuple[float | np.ndarray, float, float]:
    """What ``render_bokeh`` needs from the lens controls for an image with this ``disparity``.

    Args:
        disparity: float32 (H, W), larger = nearer, at the size of the image to render.
        focus_xy: (x, y) in pixels of that image (ignored when ``focus_disparity`` is given).
        settings, focal_px, focus_disparity: as ``Refocuser.render`` takes them.

    Returns:
        (focus disparity, strength in CoC pixels per unit of disparity, focus range in disparity).
    """
    height, width = disparity.shape
    focus = focus_disparity
    if focus is None:
        focus = focus_disparity_at(disparity, *focus_point(focus_xy))
    strength = blur_strength(settings.f_number, width, height, focal_px)
    focus_range = 0.0
    if settings.focus_range > 0:  # a percentile costs a pass over the map: only when used
        low, high = np.percentile(disparity, [1, 99])
        focus_range = float(settings.focus_range * (high - low) / 2)
    return focus, strength, focus_range


def _network_size(width: int, height: int) -> tuple[int, int]:
    """The (width, height) to give the depth network: the photo's own, unless it is out of bounds."""
    short, long = min(width, height), max(width, height)
    if short >= NETWORK_MIN_SIDE and long <= NETWORK_MAX_ASPECT * short:
        return width, height
    long = min(long, NETWORK_MAX_SIDE)
    short = max(short, NETWORK_MIN_SIDE, math.ceil(long / NETWORK_MAX_ASPECT))
    long = max(long, short)
    return (long, short) if width >= height else (short, long)


def _predict_any_shape(model: DepthModel, image: np.ndarray) -> DepthResult:
    """``model.predict(image)``, for photos of any size from 1 x 1 up (see ``NETWORK_MIN_SIDE``)."""
    height, width = image.shape[:2]
    size = _network_size(width, height)
    if size == (width, height):
        return model.predict(image)
    result = model.predict(cv2.resize(image, size, interpolation=cv2.INTER_LINEAR))

    def back(values: np.ndarray) -> np.ndarray:
        return np.ascontiguousarray(cv2.resize(values, (width, height), interpolation=cv2.INTER_LINEAR))

    # The stretch changes the field of view per pixel, so a focal-length estimate no longer holds.
    return DepthResult(back(result.disparity), None if result.depth is None else back(result.depth), None)


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
    """Seconds spent in the last depth prediction and the last render, for a status line.

    Each session of the app keeps its own (so one user never sees another's timings) and
    passes it to ``Refocuser``'s methods; ``Refocuser.last_timings`` holds the server's last.
    """

    depth_s: float | None = None
    render_s: float | None = None


def _record(name: str, seconds: float, *timings: Timings | None) -> None:
    """Set ``name`` (``"depth_s"`` or ``"render_s"``) to ``seconds`` on every given ``Timings``."""
    for record in timings:
        if record is not None:
            setattr(record, name, seconds)


@dataclass
class Refocuser:
    """Depth once per image, renders on demand.

    Args:
        model_spec: what ``refocus.load_depth_model`` accepts (alias, hub id, local directory).
        device: "cpu", "cuda", ... or None to let the model choose.
        cache_bytes: bound of the depth cache in bytes.
        load_model: the loader, replaceable for tests.

    Its methods may be called from many threads at once (the app's sessions share one).
    """

    model_spec: str | None = None
    device: str | None = None
    cache_bytes: int = 1 << 30
    preview_size: int = PREVIEW_SIZE
    load_model: Callable[..., DepthModel] | None = None
    last_timings: Timings = field(default_factory=Timings)  # the server's last, whoever asked

    def __post_init__(self) -> None:
        self._model: DepthModel | None = None
        self._load_error: tuple[RefocusError, float] | None = None
        self._model_lock = threading.Lock()
        self._predict_lock = threading.Lock()  # one network pass at a time: bounds memory
        # Depth per image content (the network's output), and photos prepared for refocusing
        # (that depth plus preview-sized copies), each bounded to half the byte budget.
        self.cache: BytesLRU[DepthResult] = BytesLRU(self.cache_bytes // 2, lambda r: r.nbytes)
        self._prepared: BytesLRU[PreparedPhoto] = BytesLRU(self.cache_bytes // 2, lambda p: p.nbytes)

    @property
    def model(self) -> DepthModel:
        """The depth model, loaded on first use (raises ``RefocusError`` when it cannot be)."""
        with self._model_lock:
            if self._model is None:
                # An unreachable hub costs tens of seconds of retries: after a failure, answer
                # with the same error at once for a while instead of retrying on every photo.
                if self._load_error is not None and time.monotonic() - self._load_error[1] < MODEL_RETRY_S:
                    raise self._load_error[0]
                load = self.load_model
                if load is None:
                    from refocus.depth import load_depth_model as load
                try:
                    self._model = load(self.model_spec, device=self.device)
                except RefocusError as error:
                    self._load_error = (error, time.monotonic())
                    raise
            return self._model

    @property
    def model_loaded(self) -> bool:
        return self._model is not None

    def depth(self, image: np.ndarray, timings: Timings | None = None) -> DepthResult:
        """Depth of float32 (H, W, 3) sRGB ``image``, from the cache when this image was seen.

        ``timings`` (the caller's) gets the seconds of the network pass when one runs.
        """
        model = self.model
        key = (model.name, content_key(image))

        def predict() -> DepthResult:
            with self._predict_lock:
                start = time.perf_counter()
                result = _predict_any_shape(model, image)
                _record("depth_s", time.perf_counter() - start, timings, self.last_timings)
            return result

        return self.cache.get_or_compute(key, predict)

    def prepare(
        self, photo: Photo, depth_map: np.ndarray | None = None, timings: Timings | None = None
    ) -> PreparedPhoto:
        """Depth and a preview-sized copy of ``photo``, computed once per content and cached.

        Args:
            photo: the decoded photo.
            depth_map: a disparity map (H, W) to use instead of the network (the user's own,
                as ``refocus.io.load_depth_map`` returns it), or None.
            timings: the caller's, to record the depth pass in.
        """
        key = content_key(photo.pixels)
        if depth_map is not None:
            key += "+" + content_key(depth_map)
        return self._prepared.get_or_compute(key, lambda: self._prepare(photo, depth_map, key, timings))

    def prepared_photo(self, key: str | None) -> PreparedPhoto | None:
        """The photo ``prepare`` returned under ``key`` (``PreparedPhoto.key``), while still cached.

        A click on a photo shown earlier looks it up here instead of decoding it again.
        """
        return None if key is None else self._prepared.get(key)

    def _prepare(
        self, photo: Photo, depth_map: np.ndarray | None, key: str, timings: Timings | None
    ) -> PreparedPhoto:
        depth = self.depth(photo.pixels, timings) if depth_map is None else DepthResult(depth_map)
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
            key=key,
            width=photo.width,
            height=photo.height,
            depth=depth,
            focal_px=focal_px,
            preview=preview,
            preview_disparity=preview_disparity,
        )

    def render_preview(
        self,
        prepared: PreparedPhoto,
        focus_xy: tuple[float, float],
        settings: LensSettings,
        timings: Timings | None = None,
    ) -> np.ndarray:
        """Render the preview of ``prepared``, focused at ``focus_xy`` in original-image pixels."""
        focus, _, _ = self.preview_lens(prepared, focus_xy, settings)
        focal_px = None if prepared.focal_px is None else prepared.focal_px * prepared.preview_scale
        return self.render(
            prepared.preview,
            prepared.preview_disparity,
            None,
            settings,
            focal_px=focal_px,
            timings=timings,
            focus_disparity=focus,
        )

    def preview_lens(
        self, prepared: PreparedPhoto, focus_xy: tuple[float, float], settings: LensSettings
    ) -> tuple[float, float, float]:
        """``lens_at`` for ``prepared``'s preview, focused at ``focus_xy`` in original-image pixels."""
        scale = prepared.preview_scale
        x, y = focus_point(focus_xy)
        # Checked in the photo's own pixels (the preview's would confuse the user's message).
        focus_disparity_at(prepared.depth.disparity, x, y)
        h, w = prepared.preview.shape[:2]
        preview_xy = (min(x * scale, w - 1), min(y * scale, h - 1))
        focal_px = None if prepared.focal_px is None else prepared.focal_px * scale
        return lens_at(prepared.preview_disparity, preview_xy, settings, focal_px)

    def render_full(
        self,
        photo: Photo,
        prepared: PreparedPhoto,
        focus_xy: tuple[float, float],
        settings: LensSettings,
        timings: Timings | None = None,
        progress: Callable[[float], None] | None = None,
    ) -> np.ndarray:
        """Render ``photo`` at full resolution, focused at ``focus_xy`` in its pixels.

        With ``progress``, the photo is rendered in ``PROGRESS_STRIPS`` horizontal strips
        (``render_crop``) and ``progress(share done, 0..1)`` is called after each; it may raise to
        stop the render (a cancel button). Strips leave no seams: on NYU frame 100 at 2560 x 1920
        and f/1.4 they differ from one whole render by 0.0004 on average, the same at the strips'
        borders as elsewhere; a few pixels of the strongly blurred foreground differ by up to 0.4,
        where the depth layers fall differently (both are valid renders).
        """
        if progress is None:
            return self.render(
                photo.pixels, prepared.depth.disparity, focus_xy, settings, focal_px=prepared.focal_px, timings=timings
            )
        start = time.perf_counter()
        rows = np.unique(np.linspace(0, prepared.height, PROGRESS_STRIPS + 1).astype(int))
        strips = []
        for done, (top, bottom) in enumerate(zip(rows[:-1], rows[1:]), 1):
            strips.append(self.render_crop(photo, prepared, focus_xy, settings, (0, top, prepared.width, bottom)))
            progress(done / (len(rows) - 1))
        _record("render_s", time.perf_counter() - start, timings, self.last_timings)
        return np.concatenate(strips)

    def render_crop(
        self,
        photo: Photo,
        prepared: PreparedPhoto,
        focus_xy: tuple[float, float],
        settings: LensSettings,
        box: tuple[int, int, int, int],
    ) -> np.ndarray:
        """What ``render_full`` shows inside ``box`` = (x0, y0, x1, y1), rendering little more than it.

        For a 1:1 look at focus on a big photo. The lens values are the whole photo's, and the
        box is rendered grown by the largest blur radius, so light that blurs into it from
        outside is included.

        Returns:
            float32 (y1 - y0, x1 - x0, 3) sRGB in [0, 1].
        """
        from refocus.bokeh import render_bokeh
        from refocus.overlays import expand_box

        disparity = prepared.depth.disparity
        focus, strength, focus_range = lens_at(disparity, focus_xy, settings, prepared.focal_px)
        reach = max(float(disparity.max()) - focus, focus - float(disparity.min()), 0.0)
        margin = math.ceil(strength * reach) + 2
        gx0, gy0, gx1, gy1 = expand_box(box, margin, (prepared.width, prepared.height))
        rendered = render_bokeh(
            photo.pixels[gy0:gy1, gx0:gx1],
            disparity[gy0:gy1, gx0:gx1],
            focus,
            strength,
            focus_range=focus_range,
            **settings.render_options(),
        )
        x0, y0, x1, y1 = box
        return rendered[y0 - gy0 : y1 - gy0, x0 - gx0 : x1 - gx0]

    def render(
        self,
        image: np.ndarray,
        disparity: np.ndarray,
        focus_xy: tuple[float, float] | None,
        settings: LensSettings,
        *,
        focal_px: float | None = None,
        timings: Timings | None = None,
        focus_disparity: float | np.ndarray | None = None,
    ) -> np.ndarray:
        """Render ``image`` focused at ``focus_xy``.

        Args:
            image: float32 (H, W, 3) sRGB in [0, 1].
            disparity: float32 (H, W), larger = nearer (``DepthResult.disparity``).
            focus_xy: (x, y) in pixels of ``image``.
            settings: the lens controls.
            focal_px: focal length in pixels at this size, if known; else the virtual 50 mm lens.
            timings: the caller's, to record the render's seconds in.
            focus_disparity: the disparity to render sharp instead of the one at ``focus_xy``
                (a focus pull between points, a focal plane); ``focus_xy`` is then ignored.

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
        focus, strength, focus_range = lens_at(disparity, focus_xy, settings, focal_px, focus_disparity)
        start = time.perf_counter()
        rendered = render_bokeh(
            image,
            disparity,
            focus,
            strength,
            focus_range=focus_range,
            **settings.render_options(),
        )
        _record("render_s", time.perf_counter() - start, timings, self.last_timings)
        return rendered
