"""The photo-to-refocused-photo workflow that the app, the API and the CLI share.

``Refocuser`` owns one depth model (loaded on first use) and the depth cache, so depth is
predicted once per image content, whichever face asked for it, and every click or slider move
afterwards only renders.
"""

from __future__ import annotations

import functools
import math
import threading
import time
from dataclasses import dataclass, field
from typing import TYPE_CHECKING, Callable, Literal, NamedTuple

import cv2
import numpy as np

from refocus.cache import BytesLRU, OnDemand, content_key
from refocus.depth.base import DepthModel, DepthResult
from refocus.depth.embedded import EmbeddedDepth, embedded_depth_result
from refocus.errors import RefocusError
from refocus.io import Photo
from refocus.lens import F_NUMBER_RANGE, blur_strength, focal_length_px, focus_disparity_at
from refocus.parallel import run_all
from refocus.preview_decode import DraftPhoto
from refocus.render.aperture import SHAPES
from refocus.render.reuse import Reuse

if TYPE_CHECKING:  # refocus.focus imports this module
    from refocus.focus import FocusPlane

# How the UI names each kind of ``render_bokeh`` shape (a polygon by its blade count).
_SHAPE_KIND_LABELS = {
    "disc": "Disc (round aperture)",
    "polygon": "{blades} blades",
    "cats_eye": "Cat's eye (vignetted)",
    "ring": "Ring (mirror lens)",
}
MODEL_RETRY_S = 300  # after a failed model load, seconds before loading is tried again
PREVIEW_SIZE = 1024  # long edge, px: what a screen shows, and fast to render
# A full-resolution render is made in horizontal strips of about STRIP_PIXELS each, at most
# PROGRESS_STRIPS (``Refocuser.render_full``): it reports progress and can stop after each, and
# needs half the memory. The iPhone portrait (12 MP, f/1.8, embedded depth) as a process's
# first render (the CLI's case): 5.6 s and +0.8 GB peak memory in 8 strips, against 8.9 s and
# +1.7 GB for the whole frame at once. Each strip is rendered with a margin of the largest
# blur, which a small photo does not pay back: NYU frame 50 at 0.3 MP took 210 ms in 8 strips
# against 100 ms whole, at 1 MP 656 against 544 ms; at 3 MP two strips pay.
STRIP_PIXELS = 1_500_000
PROGRESS_STRIPS = 8
# Strips of up to this many pixels render two at a time (``refocus.parallel``; each larger one
# still splits its composite and depth edges over the cores inside): the iPhone portrait's CLI
# run at 12 MP (1.5 MP strips) 8.7 -> 6.9 s, peak memory 1.5 -> 2.0 GB; at 50 MP (6.25 MP
# strips) two at a time took 24.7 s and 5.8 GB, one at a time 3.4 GB.
PARALLEL_STRIP_PIXELS = 3_000_000
# Depth networks need a few pixels each way and a sane aspect ratio: their processors resize to
# a fixed size keeping the aspect, so a 1 x 5000 strip would shrink to nothing. A photo outside
# these bounds is stretched for the network only and its depth stretched back (such a strip has
# little depth structure to lose); every other photo goes to the network untouched.
NETWORK_MIN_SIDE = 16
NETWORK_MAX_ASPECT = 8.0
NETWORK_MAX_SIDE = 2048  # bounds the stretched copy of a 1 x 50 000 000 "photo"
DepthSource = Literal["auto", "embedded", "model"]
DEPTH_SOURCES: tuple[str, ...] = ("auto", "embedded", "model")


@dataclass(frozen=True)
class LensSettings:
    """What the user controls.

    Attributes:
        f_number: aperture, f/0.7 to f/64 (the UI offers f/1 to f/22).
        shape: a key of ``SHAPES``.
        highlight_boost: extra brightness of out-of-focus highlights, 0 (off, physical) to 4.
        highlight_threshold: sRGB luminance in (0, 1] above which a pixel is a highlight.
        focus_range: share of the photo's disparity range, 0 to 1, kept sharp around the focus.
        focus_falloff: share of the photo's disparity range, 0 to 1, over which blur eases in
            past the sharp band's edges (``render_bokeh``'s ``focus_falloff``: a spot the eye
            still accepts as sharp grows into the lens's blur); 0 = the hard edge of a real lens.
    """

    f_number: float = 2.8
    shape: str = "disc"
    highlight_boost: float = 0.0
    highlight_threshold: float = 0.9
    focus_range: float = 0.0
    focus_falloff: float = 0.0

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
            ("focus falloff", "focus_falloff", (0.0, 1.0)),
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


class Lens(NamedTuple):
    """What ``render_bokeh`` needs from the lens controls (``lens_at``)."""

    focus: float | np.ndarray  # the disparity kept sharp, or an (H, W) map of them (a focal plane)
    strength: float  # CoC radius in pixels per unit of disparity
    focus_range: float  # half-width in disparity of the band kept sharp
    focus_falloff: float  # in disparity: how gradually blur grows past the band


def lens_at(
    disparity: np.ndarray,
    focus_xy: tuple[float, float] | None,
    settings: LensSettings,
    focal_px: float | None = None,
    focus: float | np.ndarray | None = None,
) -> Lens:
    """What ``render_bokeh`` needs from the lens controls for an image with this ``disparity``.

    Args:
        disparity: float32 (H, W), larger = nearer, at the size of the image to render.
        focus_xy: (x, y) in pixels of that image (ignored when ``focus`` is given).
        settings, focal_px, focus: as ``Refocuser.render`` takes them.
    """
    height, width = disparity.shape
    if focus is None:
        focus = focus_disparity_at(disparity, *focus_point(focus_xy))
    strength = blur_strength(settings.f_number, width, height, focal_px)
    focus_range = focus_falloff = 0.0
    if settings.focus_range > 0 or settings.focus_falloff > 0:  # a percentile costs a pass: only when used
        low, high = np.percentile(disparity, [1, 99])
        focus_range = float(settings.focus_range * (high - low) / 2)
        focus_falloff = float(settings.focus_falloff * (high - low))
    return Lens(focus, strength, focus_range, focus_falloff)


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
    """A photo ready to refocus: a preview-sized copy with its depth, and full-resolution depth.

    Attributes:
        key: content key (same photo and depth source, same key).
        width, height: the original photo's size in pixels.
        full_depth: ``DepthResult`` at (height, width), computed on first use (``depth``): the
            first preview does not wait for the full-resolution upsampling.
        focal_px: focal length in original pixels (model or EXIF), or None (virtual 50 mm).
        preview: float32 (h, w, 3) sRGB in [0, 1], long edge <= ``Refocuser.preview_size``.
        preview_disparity: float32 (h, w), the disparity at the preview's size, on the same
            scale as ``depth.disparity``.
        depth_source: where the depth came from, for people: ``"uploaded depth map"``,
            ``"embedded iPhone depth (768 x 576, metric)"`` or ``"model:<name>"``.
        subject_area: the camera's subject area (``Photo.subject_area``), where auto focus looks.
        reuse: what preview renders compute from the preview and its map alone (edges,
            linear colour), kept for the next click (``refocus.render.reuse``). A copy made
            with a new map (``dataclasses.replace``) may share it: it is keyed by the arrays.
    """

    key: str
    width: int
    height: int
    full_depth: OnDemand[DepthResult]
    focal_px: float | None
    preview: np.ndarray
    preview_disparity: np.ndarray
    depth_source: str = ""
    subject_area: tuple[float, float, float, float] | None = None
    reuse: Reuse = field(default_factory=Reuse, repr=False, compare=False)

    @property
    def depth(self) -> DepthResult:
        """Depth at (height, width), computed now if no full render or download needed it yet."""
        return self.full_depth.get()

    @property
    def preview_scale(self) -> float:
        return self.preview.shape[1] / self.width

    @property
    def nbytes(self) -> int:
        # the preview and its map, and as much again in ``reuse``
        return self.full_depth.nbytes + 2 * (self.preview.nbytes + self.preview_disparity.nbytes)


@dataclass
class Timings:
    """Seconds spent in the last depth prediction, upsampling and render, for a status line.

    Each session of the app keeps its own (so one user never sees another's timings) and
    passes it to ``Refocuser``'s methods; ``Refocuser.last_timings`` holds the server's last.
    """

    depth_s: float | None = None
    render_s: float | None = None
    upsample_s: float | None = None  # the last edge-aware upsampling of network depth


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
        self,
        photo: Photo | DraftPhoto,
        depth_map: np.ndarray | None = None,
        depth_source: DepthSource = "auto",
        timings: Timings | None = None,
        depth_note: str = "",
    ) -> PreparedPhoto:
        """Depth and a preview-sized copy of ``photo``, computed once per content and cached.

        Depth comes from, in order: ``depth_map``, the map the file carries
        (``photo.embedded_depth``), the network.

        Args:
            photo: the decoded photo, or one decoded at preview size with its full decode on
                demand (``refocus.preview_decode.load_draft_photo``: the faster first preview).
            depth_map: a disparity map (H, W) to use instead of the network (the user's own,
                ``refocus.user_depth.UserDepth.disparity``), or None.
            depth_source: ``"auto"`` (the order above), ``"embedded"`` (the file's map; an
                error when it has none) or ``"model"`` (the network, ignoring the file's map).
            timings: the caller's, to record the depth pass in.
            depth_note: how ``depth_map`` was read, for people (``UserDepth.interpretation``);
                ``depth_source`` of the result then reads ``"uploaded depth map (<note>)"``.
        """
        if depth_source not in DEPTH_SOURCES:
            raise RefocusError(f"The depth source must be one of {', '.join(DEPTH_SOURCES)}, got {_short(depth_source)}.")
        if depth_source == "embedded" and photo.embedded_depth is None:
            raise RefocusError("This photo carries no depth map of its own; use the depth model instead.")
        embedded = photo.embedded_depth if depth_source != "model" and depth_map is None else None
        if isinstance(photo, DraftPhoto):
            key = f"{content_key(photo.draft.pixels)}:{photo.width}x{photo.height}"
        else:
            key = content_key(photo.pixels)
        if depth_map is not None:
            key += "+" + content_key(depth_map)
        elif embedded is not None:
            key += "+embedded:" + content_key(embedded.disparity)
        return self._prepared.get_or_compute(
            key, lambda: self._prepare(photo, depth_map, key, embedded, timings, depth_note)
        )

    def prepared_photo(self, key: str | None) -> PreparedPhoto | None:
        """The photo ``prepare`` returned under ``key`` (``PreparedPhoto.key``), while still cached.

        A click on a photo shown earlier looks it up here instead of decoding it again.
        """
        return None if key is None else self._prepared.get(key)

    def _prepare(
        self,
        photo: Photo | DraftPhoto,
        depth_map: np.ndarray | None,
        key: str,
        embedded: EmbeddedDepth | None,
        timings: Timings | None,
        depth_note: str = "",
    ) -> PreparedPhoto:
        scale = min(1.0, self.preview_size / max(photo.width, photo.height))
        size = (max(1, round(photo.width * scale)), max(1, round(photo.height * scale)))
        if isinstance(photo, DraftPhoto):
            pixels, full_pixels = photo.draft.pixels, lambda: photo.full.get().pixels
        else:
            pixels, full_pixels = photo.pixels, lambda: photo.pixels
        preview = pixels
        if pixels.shape[:2] != (size[1], size[0]):
            preview = cv2.resize(pixels, size, interpolation=cv2.INTER_AREA)
        if depth_map is not None:
            depth, source = DepthResult(depth_map), "uploaded depth map" + (f" ({depth_note})" if depth_note else "")
            full_depth, focal_px, preview_disparity = OnDemand.ready(depth, depth.nbytes), None, depth.disparity
            if scale < 1.0:
                preview_disparity = cv2.resize(depth.disparity, size, interpolation=cv2.INTER_AREA)
        elif embedded is not None:
            full_depth, preview_depth = self._staged_embedded_depth(embedded, preview, full_pixels, timings)
            focal_px, preview_disparity, source = None, preview_depth.disparity, f"embedded {embedded.source}"
        elif _network_size(*size) == size and hasattr(self.model, "predict_network"):
            full_depth, preview_depth = self._staged_depth(preview, (photo.height, photo.width), full_pixels, timings)
            # The preview's focal length in the photo's pixels.
            focal_px = None if preview_depth.focal_px is None else preview_depth.focal_px * photo.width / size[0]
            preview_disparity, source = preview_depth.disparity, f"model:{self.model.name}"
        else:  # a backend without the staged interface, or a photo the network needs stretched
            depth = self.depth(full_pixels(), timings)
            full_depth, focal_px, preview_disparity = OnDemand.ready(depth, depth.nbytes), depth.focal_px, depth.disparity
            if scale < 1.0:
                preview_disparity = cv2.resize(depth.disparity, size, interpolation=cv2.INTER_AREA)
            source = f"model:{self.model.name}"
        if focal_px is None and photo.focal_mm_35 is not None:
            focal_px = focal_length_px(photo.width, photo.height, photo.focal_mm_35)
        return PreparedPhoto(
            key=key,
            width=photo.width,
            height=photo.height,
            full_depth=full_depth,
            focal_px=focal_px,
            preview=preview,
            preview_disparity=preview_disparity,
            depth_source=source,
            subject_area=photo.subject_area,
        )

    def _staged_depth(
        self,
        preview: np.ndarray,
        full_shape: tuple[int, int],
        full_pixels: Callable[[], np.ndarray],
        timings: Timings | None,
    ) -> tuple[OnDemand[DepthResult], DepthResult]:
        """Network depth upsampled to the preview now, to the full photo on demand.

        The network sees the preview (it shrinks any photo to a few hundred pixels anyway), so a
        12 MP photo costs the network no more than its preview does.

        Args:
            preview: float32 (h, w, 3), the photo at preview size.
            full_shape: (height, width) of the photo.
            full_pixels: the photo's float32 (H, W, 3) pixels (called once, when needed).
            timings: the caller's, to record the network and upsampling seconds in.

        Returns:
            (full-resolution depth on demand, depth at the preview's size).
        """
        model = self.model
        with self._predict_lock:
            start = time.perf_counter()
            network = model.predict_network(preview)
            _record("depth_s", time.perf_counter() - start, timings, self.last_timings)
        start = time.perf_counter()
        preview_depth = network.upsample(preview, preview=True)  # the faster road, as sharp here
        _record("upsample_s", time.perf_counter() - start, timings, self.last_timings)
        if preview.shape[:2] == full_shape:
            return OnDemand.ready(preview_depth, preview_depth.nbytes), preview_depth
        # Counted as the depth maps plus the float32 photo (held until the depth is computed,
        # unless the photo is decoded on demand too).
        pixels = full_shape[0] * full_shape[1]
        pending_bytes = pixels * (12 + 4 * (2 if network.metric else 1))
        return OnDemand(lambda: network.upsample(full_pixels()), pending_bytes), preview_depth

    def _staged_embedded_depth(
        self,
        embedded: EmbeddedDepth,
        preview: np.ndarray,
        full_pixels: Callable[[], np.ndarray],
        timings: Timings | None,
    ) -> tuple[OnDemand[DepthResult], DepthResult]:
        """The file's own depth map brought to the preview now, to the full photo on demand.

        A phone's map is about 5x smaller than the photo; the edge-aware upsampling to 12 MP
        costs seconds that the first preview does not need. Both sizes are in 1/m.
        """
        start = time.perf_counter()
        preview_depth = embedded_depth_result(embedded, preview, preview=True)
        _record("upsample_s", time.perf_counter() - start, timings, self.last_timings)
        height, width = preview.shape[:2]
        pending_bytes = embedded.disparity.nbytes * 4 + height * width * 4
        return OnDemand(lambda: embedded_depth_result(embedded, full_pixels()), pending_bytes), preview_depth

    def focus_value(self, prepared: PreparedPhoto, focus_xy: tuple[float, float]) -> float:
        """The disparity to keep sharp for a click at ``focus_xy`` (original-image pixels).

        Read from the preview's disparity, the map the user saw and clicked on, so the preview
        and the full-resolution render focus on the same value whichever was rendered first.
        """
        x, y = focus_point(focus_xy)
        if not (0 <= x < prepared.width and 0 <= y < prepared.height):
            # Checked in the photo's own pixels (the preview's would confuse the user's message).
            raise RefocusError(
                f"The focus point ({x:g}, {y:g}) is outside the image, which is {prepared.width} x "
                f"{prepared.height} pixels."
            )
        h, w = prepared.preview.shape[:2]
        scale = prepared.preview_scale
        return focus_disparity_at(prepared.preview_disparity, min(x * scale, w - 1), min(y * scale, h - 1))

    def render_preview(
        self, prepared: PreparedPhoto, lens: Lens, settings: LensSettings, timings: Timings | None = None
    ) -> np.ndarray:
        """Render the preview of ``prepared`` with ``lens``, which ``preview_lens`` gives for a
        focus point or plane (the caller may need it too, e.g. to tint what is in focus).

        ``settings`` give the bokeh's shape and highlights; ``timings`` records the seconds.
        """
        return self._render_lens(prepared.preview, prepared.preview_disparity, lens, settings, timings, prepared.reuse)

    def preview_lens(
        self,
        prepared: PreparedPhoto,
        focus_xy: tuple[float, float],
        settings: LensSettings,
        focus_plane: FocusPlane | None = None,
    ) -> Lens:
        """``lens_at`` for ``prepared``'s preview, focused at ``focus_xy`` in original-image pixels
        (or on ``focus_plane``)."""
        scale = prepared.preview_scale
        focus = self.focus_value(prepared, focus_xy)
        h, w = prepared.preview.shape[:2]
        x, y = focus_point(focus_xy)
        preview_xy = (min(x * scale, w - 1), min(y * scale, h - 1))
        focal_px = None if prepared.focal_px is None else prepared.focal_px * scale
        plane = None if focus_plane is None else focus_plane.disparity_map(w, h, scale)
        return lens_at(prepared.preview_disparity, preview_xy, settings, focal_px, focus if plane is None else plane)

    def render_full(
        self,
        photo: Photo,
        prepared: PreparedPhoto,
        focus_xy: tuple[float, float],
        settings: LensSettings,
        timings: Timings | None = None,
        focus_plane: FocusPlane | None = None,
        progress: Callable[[float], None] | None = None,
    ) -> np.ndarray:
        """Render ``photo`` at full resolution, focused at ``focus_xy`` in its pixels (or ``focus_plane``).

        A large photo is rendered in horizontal strips (``render_crop``; one per STRIP_PIXELS,
        at most PROGRESS_STRIPS), two at a time on two cores where each holds up to
        PARALLEL_STRIP_PIXELS (``refocus.parallel``), which takes less memory than the whole
        frame at once; a photo of up to 1.5 x STRIP_PIXELS renders in one piece. ``progress(share done, 0..1)``, if given, is called as strips finish and may
        raise to stop the render (a cancel button). Strips leave no seams: on NYU frame 100 at
        2560 x 1920 and f/1.4 they differ from one whole render (``render``) by 0.0004 on
        average, the same at the strips' borders as elsewhere; a few pixels of the strongly
        blurred foreground differ by up to 0.4, where the depth layers fall differently (both
        are valid renders).
        """
        plane = None if focus_plane is None else focus_plane.disparity_map(photo.width, photo.height)
        focus = self.focus_value(prepared, focus_xy) if plane is None else plane
        start = time.perf_counter()
        count = min(max(round(prepared.width * prepared.height / STRIP_PIXELS), 1), PROGRESS_STRIPS)
        rows = np.unique(np.linspace(0, prepared.height, count + 1).astype(int))
        count = len(rows) - 1
        strips = run_all(
            [functools.partial(self.render_crop, photo, prepared, focus_xy, settings, (0, top, prepared.width, bottom),
                               focus=focus) for top, bottom in zip(rows[:-1], rows[1:])],
            None if progress is None else lambda done: progress(done / count),
            at_once=2 if prepared.width * prepared.height / count <= PARALLEL_STRIP_PIXELS else 1,
        )  # fmt: skip
        _record("render_s", time.perf_counter() - start, timings, self.last_timings)
        return np.concatenate(strips)

    def render_crop(
        self,
        photo: Photo,
        prepared: PreparedPhoto,
        focus_xy: tuple[float, float],
        settings: LensSettings,
        box: tuple[int, int, int, int],
        focus: float | np.ndarray | None = None,
    ) -> np.ndarray:
        """What ``render_full`` shows inside ``box`` = (x0, y0, x1, y1), rendering little more than it.

        For a 1:1 look at focus on a big photo. The lens values are the whole photo's, and the
        box is rendered grown by the largest blur radius, so light that blurs into it from
        outside is included. ``focus`` as ``render`` takes it (a value or the photo's (H, W) map).

        Returns:
            float32 (y1 - y0, x1 - x0, 3) sRGB in [0, 1].
        """
        from refocus.overlays import expand_box
        from refocus.render import depth_edges, render_bokeh

        disparity = prepared.depth.disparity
        if focus is None:
            focus = self.focus_value(prepared, focus_xy)
        lens = lens_at(disparity, focus_xy, settings, prepared.focal_px, focus)
        reach = max(float(disparity.max()) - float(np.min(lens.focus)), float(np.max(lens.focus)) - float(disparity.min()), 0.0)
        # the blur's reach, and that of the depth-edge decisions the blur then spreads
        margin = math.ceil(lens.strength * reach) + 2 + depth_edges.REACH
        gx0, gy0, gx1, gy1 = expand_box(box, margin, (prepared.width, prepared.height))
        gx0, gy0 = gx0 // 2 * 2, gy0 // 2 * 2  # the depth edges' 2 x 2 cells as the whole photo's
        crop_focus = lens.focus[gy0:gy1, gx0:gx1] if isinstance(lens.focus, np.ndarray) else lens.focus
        rendered = render_bokeh(
            photo.pixels[gy0:gy1, gx0:gx1],
            disparity[gy0:gy1, gx0:gx1],
            crop_focus,
            lens.strength,
            focus_range=lens.focus_range,
            focus_falloff=lens.focus_falloff,
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
        focus: float | np.ndarray | None = None,
        reuse: Reuse | None = None,
    ) -> np.ndarray:
        """Render ``image`` focused at ``focus_xy``.

        Args:
            image: float32 (H, W, 3) sRGB in [0, 1].
            disparity: float32 (H, W), larger = nearer (``DepthResult.disparity``).
            focus_xy: (x, y) in pixels of ``image``.
            settings: the lens controls.
            focal_px: focal length in pixels at this size, if known; else the virtual 50 mm lens.
            timings: the caller's, to record the render's seconds in.
            focus: the disparity to keep sharp, when the caller knows it already: the click's
                value read by ``focus_value``, a focus pull's frame, or an (H, W) map (a focal
                plane); ``focus_xy`` is then ignored and may be None. Default: read from
                ``disparity`` at ``focus_xy``.
            reuse: kept between renders of the same ``image`` and ``disparity`` (e.g. a focus
                pull's frames): their focus-independent steps are computed once
                (``refocus.render.reuse``).

        Returns:
            float32 (H, W, 3) sRGB in [0, 1].
        """
        height, width = image.shape[:2]
        if disparity.shape != (height, width):
            raise RefocusError(
                f"The depth map is {disparity.shape[1]} x {disparity.shape[0]} pixels but the photo "
                f"is {width} x {height}."
            )
        lens = lens_at(disparity, focus_xy, settings, focal_px, focus)
        return self._render_lens(image, disparity, lens, settings, timings, reuse)

    def _render_lens(
        self, image: np.ndarray, disparity: np.ndarray, lens: Lens, settings: LensSettings, timings: Timings | None,
        reuse: Reuse | None = None,
    ) -> np.ndarray:
        """``render_bokeh`` of ``image`` with ``lens`` and ``settings``' options, its seconds recorded."""
        from refocus.render import render_bokeh

        start = time.perf_counter()
        rendered = render_bokeh(
            image,
            disparity,
            lens.focus,
            lens.strength,
            focus_range=lens.focus_range,
            focus_falloff=lens.focus_falloff,
            reuse=reuse,
            **settings.render_options(),
        )
        _record("render_s", time.perf_counter() - start, timings, self.last_timings)
        return rendered
