"""What the web app's server needs besides its UI: shared state, output files, status, launching.

It imports no ``gradio`` (the library never does): ``app.py`` turns these into a UI.

``app.py`` holds the Gradio layout and event wiring; this module holds the rest: ``RefocusApp``
(one ``Refocuser`` per depth model, shared by every session), ``Session`` (what one browser tab
remembers), ``OutputFiles`` (the PNGs handed to Gradio, removed after a while), the status the
UI and ``/status`` report, and the process settings and launch options of ``python app.py``.
"""

from __future__ import annotations

import argparse
import atexit
import contextlib
import ctypes
import dataclasses
import importlib.metadata
import logging
import os
import platform
import shutil
import tempfile
import threading
import time
from pathlib import Path
from typing import Any, Callable, Iterator

import numpy as np

import refocus
from refocus.animate import FocusPull, ProgressCallback, make_focus_pull
from refocus.brush import Stroke, apply_strokes
from refocus.cache import OnDemand
from refocus.depth import DEFAULT_MODEL, MODELS, model_info
from refocus.errors import RefocusError
from refocus.focus import FocusPlane, auto_focus_point, fit_focus_plane
from refocus.history import History
from refocus.io import DEFAULT_JPEG_QUALITY, DEFAULT_MAX_BYTES, DEFAULT_MAX_PIXELS, Photo, load_photo, save_image
from refocus.lens import focus_disparity_at
from refocus.overlays import depth_legend, focus_band_overlay, zoom_box
from refocus.preview_decode import DraftPhoto, load_draft_photo
from refocus.refocuser import PREVIEW_SIZE, LensSettings, PreparedPhoto, Refocuser, Timings
from refocus.user_depth import read_user_depth

log = logging.getLogger("refocus.server")

try:  # On a ZeroGPU Space, GPU work must run inside functions decorated with spaces.GPU.
    import spaces

    gpu_task: Callable = spaces.GPU(duration=60)
except ImportError:
    gpu_task = lambda fn: fn  # noqa: E731

# Gradio copies every returned file into its own cache (which ``delete_cache`` empties), so our
# copy is needed only until the response is sent; older ones go.
OUTPUT_TTL_S = 600
# What a click on the photo sets: (label, mode) for the UI's radio; ``pick_point`` applies them.
CLICK_MODES = [
    ("Focus point", "focus"),
    ("Focus pull: start (A)", "pull_from"),
    ("Focus pull: end (B)", "pull_to"),
    ("Focus plane: three points", "plane"),
]
# Photo formats every current browser shows; others (HEIC, HEIF, TIFF) get a JPEG copy to show.
BROWSER_FORMATS = {".jpg", ".jpeg", ".png", ".webp", ".gif", ".avif", ".bmp"}
BROWSER_COPY_QUALITY = 90
# A tab left open this long without an event forgets its photo (its files stay on disk).
SESSION_TTL_S = 3600
ZOOM_SIZE = 480  # px, the 1:1 view around the focus: about what a laptop shows of it unscaled


class OutputFiles:
    """A private temporary folder for output files, emptied of old ones and removed at exit.

    Each file gets a folder of its own, so two requests for "photo-refocused.png" never collide.
    """

    def __init__(self, max_age_s: float = OUTPUT_TTL_S):
        self.max_age_s = max_age_s
        self.folder = Path(tempfile.mkdtemp(prefix="refocus-"))
        atexit.register(shutil.rmtree, self.folder, ignore_errors=True)

    def new_file(self, name: str) -> Path:
        """A fresh path named ``name``; outputs older than ``max_age_s`` seconds are removed first."""
        self.remove_old()
        return Path(tempfile.mkdtemp(dir=self.folder)) / name

    def remove_old(self) -> None:
        cutoff = time.time() - self.max_age_s
        for folder in self.folder.iterdir():
            try:
                if folder.stat().st_mtime < cutoff:
                    shutil.rmtree(folder, ignore_errors=True)
            except FileNotFoundError:  # another request removed it first
                pass


@dataclasses.dataclass
class Session:
    """What one browser tab remembers between events (kept small: the arrays live in caches).

    Attributes:
        path: the uploaded photo's path on the server.
        model: the depth model chosen in the UI.
        depth_path, depth_kind, depth_unit: the user's depth map, if any, what it holds and in
            which unit (``refocus.user_depth.read_user_depth``'s kind and unit).
        depth_source: "auto", "embedded" or "model" (``Refocuser.prepare``).
        focus: (x, y) in the photo's pixels.
        key: the ``PreparedPhoto.key`` of the photo once prepared (a cache key).
        timings: this session's last depth and render times, for its status line.
        pull_from, pull_to: the focus pull's start and end (x, y) in the photo's pixels, or None.
        plane_points: up to three (x, y) the focal plane goes through; with three, the plane
            is rendered sharp instead of ``focus``.
        shown_name: the file name of the JPEG copy shown in place of a photo browsers cannot
            show (HEIC), or None.
        history: ``(focus, LensSettings)`` steps of this photo, for undo and redo.
        old_maps: depth maps used with earlier photos of this tab (see ``next``).
        strokes: the refine brush's edits of this photo's depth, oldest first (``refocus.brush``).
        settings, settings_stamp: the lens settings last applied and the page's count of the
            user's actions when it sent them (``app_page.js``): the web UI may start one tab's
            events out of order, and an event carrying older settings must not undo newer ones.
    """

    path: str | None
    model: str
    depth_path: str | None = None
    depth_kind: str = "auto"
    focus: tuple[float, float] = (0.0, 0.0)
    key: str | None = None
    timings: Timings = dataclasses.field(default_factory=Timings)
    depth_unit: str | None = None
    depth_source: str = "auto"
    pull_from: tuple[float, float] | None = None
    pull_to: tuple[float, float] | None = None
    plane_points: tuple[tuple[float, float], ...] = ()
    shown_name: str | None = None

    history: History = dataclasses.field(default_factory=History)
    old_maps: frozenset[str] = frozenset()
    strokes: tuple[Stroke, ...] = ()
    settings: LensSettings | None = None
    settings_stamp: int = -1

    def next(
        self, path: str, model: str, depth_path: str | None, depth_kind: str, chosen_now: bool, **choices
    ) -> Session:
        """A fresh session for ``path`` (a new photo, model or depth map) that keeps nothing stale.

        A depth map already used with an earlier photo of this tab is dropped (a new photo of the
        same size must not silently inherit it) unless the user chose it just now
        (``chosen_now``); a map uploaded before its photo is kept. Check ``depth_path`` of the
        result to see whether the map was dropped. ``choices``: the other depth fields
        (``depth_unit``, ``depth_source``, ``shown_name``).
        """
        old = set(self.old_maps)
        if self.path is not None and path != self.path and self.depth_path is not None:
            old.add(self.depth_path)
        if depth_path in old and not chosen_now:
            depth_path = None
        session = Session(path, model, depth_path, depth_kind, old_maps=frozenset(old - {depth_path}), **choices)
        if self.same_photo(session):
            session.key, session.timings = self.key, self.timings  # its depth time still holds
        return session

    def same_photo(self, other: Session) -> bool:
        """Whether ``other`` shows the same photo with the same depth source (nothing to redo)."""
        return (self.path, self.model, self.depth_path, self.depth_kind, self.depth_unit, self.depth_source) == (
            other.path, other.model, other.depth_path, other.depth_kind, other.depth_unit, other.depth_source
        )  # fmt: skip


@dataclasses.dataclass
class TabRecord:
    """One tab's latest ``Session`` (None before its first event) and when it was last used."""

    lock: threading.Lock
    session: Session | None = None
    used: float = 0.0


class TabSessions:
    """The latest ``Session`` of each browser tab, each behind a lock of its own.

    Why: the web UI hands each event the tab's session as it was when the event started, and runs
    two events of one tab at the same time (a click on the preview and the lens control that the
    click's mousedown applies), so the one that finished last would undo the other. An event that
    holds its tab's record (``hold``) waits for the tab's earlier events and starts from the session
    they left. Each tab has its own lock: different tabs never wait for one another. Records
    unused for ``ttl_s`` seconds are dropped, as the UI's own session state is.
    """

    def __init__(self, ttl_s: float = SESSION_TTL_S):
        self.ttl_s = ttl_s
        self._tabs: dict[str, TabRecord] = {}
        self._lock = threading.Lock()

    @contextlib.contextmanager
    def hold(self, tab: str) -> Iterator[TabRecord]:
        """The record of ``tab`` (a client's session id), which no other event of ``tab`` can hold
        until the block ends; store the session the event leaves in its ``session``."""
        now = time.monotonic()
        with self._lock:
            expired = [k for k, r in self._tabs.items() if now - r.used > self.ttl_s and not r.lock.locked()]
            for key in expired:
                del self._tabs[key]
            record = self._tabs.setdefault(tab, TabRecord(threading.Lock()))
            record.used = now
        with record.lock:
            yield record


def pick_point(session: Session, mode: str, xy: tuple[float, float]) -> Session:
    """``session`` after a click at ``xy`` (photo pixels) in click ``mode`` (see ``CLICK_MODES``).

    "focus" focuses there (and leaves a focal plane); "pull_from" / "pull_to" set the focus
    pull's ends; "plane" adds a focal-plane point, starting a new three after a complete one.
    """
    if mode == "focus":
        return dataclasses.replace(session, focus=xy, plane_points=())
    if mode in ("pull_from", "pull_to"):
        return dataclasses.replace(session, **{mode: xy})
    if mode == "plane":
        points = session.plane_points if len(session.plane_points) < 3 else ()
        return dataclasses.replace(session, plane_points=(*points, xy))
    raise RefocusError(f"Unknown click mode {str(mode)[:40]!r}; choose one of {', '.join(m for _, m in CLICK_MODES)}.")


def browser_copy_needed(path: str) -> bool:
    """True when browsers cannot show the photo at ``path`` (by its extension): HEIC, HEIF, TIFF."""
    return Path(path).suffix.lower() not in BROWSER_FORMATS


def with_strokes(
    prepared: PreparedPhoto, strokes: tuple[Stroke, ...], focus_xy: tuple[float, float], full: bool = True
) -> PreparedPhoto:
    """``prepared`` with the brush ``strokes`` applied to its depth (``refocus.brush``).

    Only the preview's disparity is edited unless ``full`` (full-resolution renders, the 1:1
    view, the depth download), so a click re-edits a small map, not a 12 MP one. "keep-sharp"
    strokes follow the focus at ``focus_xy`` (original pixels). An edited map has no metric depth.
    """
    if not strokes:
        return prepared
    scale, (h, w) = prepared.preview_scale, prepared.preview_disparity.shape
    x, y = focus_xy
    focus = focus_disparity_at(prepared.preview_disparity, min(x * scale, w - 1), min(y * scale, h - 1))
    full_depth = prepared.full_depth
    if full:
        depth = prepared.depth
        depth = dataclasses.replace(depth, disparity=apply_strokes(depth.disparity, strokes, focus), depth=None)
        full_depth = OnDemand.ready(depth, depth.nbytes)
    preview_disparity = apply_strokes(prepared.preview_disparity, strokes, focus)
    return dataclasses.replace(prepared, full_depth=full_depth, preview_disparity=preview_disparity)


def load_edit_mask(path: str) -> np.ndarray:
    """A brush mask from an image file: float32 (H, W) in [0, 1], its alpha if it has one, else grey."""
    from PIL import Image

    try:
        with Image.open(path) as image:
            band = image.getchannel("A") if "A" in image.getbands() else image.convert("L")
            return np.asarray(band, np.float32) / 255.0
    except (OSError, ValueError) as e:
        raise RefocusError(f"The edit mask could not be read as an image ({e}).") from None


class RefocusApp:
    """The server's state shared by all sessions: one ``Refocuser`` per depth model, output files.

    Args:
        model_spec: the depth model chosen at launch (alias, hub id or local directory).
        device: "cpu", "cuda" or None (automatic).
        max_image_pixels: uploads above this are refused.
        model_choices: the models users may pick in the UI (the operator's list; API callers can
            never name a path on the server).
        cache_bytes: the byte bound of each model's caches.
    """

    def __init__(
        self,
        model_spec: str | None = None,
        device: str | None = None,
        max_image_pixels: int = DEFAULT_MAX_PIXELS,
        model_choices: list[str] | None = None,
        cache_bytes: int = 1 << 30,
    ):
        self.default_model = model_spec or DEFAULT_MODEL
        self.device = device
        self.max_image_pixels = max_image_pixels
        choices = model_choices if model_choices is not None else list(MODELS)
        self.model_choices = list(dict.fromkeys([self.default_model, *choices]))
        self.outputs = OutputFiles()
        self.model_error: str | None = None
        self._cache_bytes = cache_bytes
        self._refocusers: dict[str, Refocuser] = {}
        self._refocusers_lock = threading.Lock()  # two first requests must not build two
        self._cancelled: set[str] = set()  # clients whose full-resolution render should stop
        self._cancel_lock = threading.Lock()
        self.tabs = TabSessions()  # each tab's latest session: its preview events apply in order

    def refocuser(self, model: str | None = None) -> Refocuser:
        model = model or self.default_model
        if model not in self.model_choices:
            raise RefocusError(f"Unknown depth model {model!r}; choose one of {', '.join(self.model_choices)}.")
        with self._refocusers_lock:
            if model not in self._refocusers:
                self._refocusers[model] = Refocuser(model, self.device, cache_bytes=self._cache_bytes)
            return self._refocusers[model]

    def try_load_default_model(self) -> None:
        """Load the launch model now, remembering (not raising) why it failed."""
        try:
            self.refocuser().model
            self.model_error = None
        except RefocusError as e:
            self.model_error = str(e)
            log.warning("%s", e)

    def model_problem(self, model: str | None = None) -> str | None:
        """Why ``model`` cannot estimate depth now (loading it if needed), or None when it can."""
        try:
            self.refocuser(model).model
        except RefocusError as e:
            return str(e)
        return None

    def no_model_notice(self) -> str | None:
        """One plain paragraph for the page when the launch model failed to load, else None."""
        if not self.model_error:
            return None
        return (
            "**No depth model is installed here, so refocus works on photos that come with depth:** a "
            "phone photo that carries its own depth map (iPhone portrait HEIC, Google Camera portrait "
            "JPEG), or any photo with its depth map uploaded beside it (PNG, TIFF or .npy). To refocus "
            "any photo, download the model "
            "(see the README, *Running offline with local weights*) and start the app with "
            "`--depth-model` pointing at it."
        )

    def model_label(self, model: str) -> str:
        """The model's name with its licence, as the UI shows it."""
        info = model_info(model)
        return f"{model} ({info.licence})" if info else model

    # -- the library calls every face shares -------------------------------------------------

    def load(self, image_path: str) -> Photo:
        return load_photo(image_path, max_pixels=self.max_image_pixels)

    def load_preview(self, image_path: str, with_depth_map: bool = False) -> Photo | DraftPhoto:
        """The photo as the first preview needs it: a large JPEG decoded at preview size, the full
        decode on demand (``load_draft_photo``); in full when a depth map of the user's comes with
        it (its holes are filled guided by the full photo) and for other formats."""
        if with_depth_map:
            return self.load(image_path)
        return load_draft_photo(image_path, PREVIEW_SIZE, max_pixels=self.max_image_pixels)

    @gpu_task
    def prepare(
        self,
        image: str | Photo,
        model: str | None,
        depth_map_path: str | None = None,
        depth_kind: str = "auto",
        timings: Timings | None = None,
        *,
        depth_unit: str | None = None,
        depth_source: str = "auto",
    ) -> PreparedPhoto:
        """Depth and preview of a photo (a path, or a ``Photo`` the caller already decoded).

        Depth from the user's map at ``depth_map_path`` (read as ``depth_kind`` in
        ``depth_unit``), else as ``depth_source`` says (see ``Refocuser.prepare``); the result's
        ``depth_source`` says which, with how the user's map was read.
        """
        photo = image if isinstance(image, (Photo, DraftPhoto)) else self.load(image)
        depth_map, note = None, ""
        if depth_map_path:
            photo = photo.full.get() if isinstance(photo, DraftPhoto) else photo
            user = read_user_depth(depth_map_path, photo.pixels, depth_kind, depth_unit or None,
                                   max_pixels=self.max_image_pixels)  # fmt: skip
            depth_map, note = user.disparity, user.interpretation
        return self.refocuser(model).prepare(photo, depth_map, depth_source, timings, depth_note=note)

    def prepared(self, session: Session, photo: Photo | DraftPhoto | None = None) -> PreparedPhoto:
        """The session's prepared photo: from the cache, else prepared from its upload (sets ``key``).

        A click must not decode the photo again; only the first event, or one after the cache
        evicted the photo, pays for decoding (and depth, unless that is still cached). ``photo``,
        when the caller already decoded the upload, saves decoding it here.
        """
        prepared = self.refocuser(session.model).prepared_photo(session.key)
        if prepared is None:
            prepared = self.prepare(photo or session.path, session.model, session.depth_path, session.depth_kind,
                                    session.timings, depth_unit=session.depth_unit,
                                    depth_source=session.depth_source)  # fmt: skip
            session.key = prepared.key
        return prepared

    def browser_copy(self, photo: Photo, stem: str) -> Path:
        """A full-size JPEG of ``photo`` that browsers show, with its colour profile; returns its path.

        Full size, so a click on it lands on the same pixel of the photo.
        """
        path = self.outputs.new_file(f"{stem}-shown.jpg")
        return save_image(path, photo.pixels, photo=photo, quality=BROWSER_COPY_QUALITY)

    def focus_plane(self, session: Session) -> FocusPlane | None:
        """The focal plane through the session's three plane points, or None (point focus).

        Fitted on the preview's depth, as a click's focus value is (``Refocuser.focus_value``): a
        click or slider move never waits for full-resolution depth.
        """
        if len(session.plane_points) != 3:
            return None
        prepared = self.edited(session)
        return fit_focus_plane(prepared.preview_disparity, session.plane_points, prepared.preview_scale)

    def edited(self, session: Session, full: bool = False) -> PreparedPhoto:
        """The session's prepared photo with its brush strokes applied (``with_strokes``)."""
        return with_strokes(self.prepared(session), session.strokes, session.focus, full)

    def render_preview(self, session: Session, settings: LensSettings) -> tuple[PreparedPhoto, np.ndarray]:
        """The session's photo and its preview rendered at the session's focus (or plane) with ``settings``."""
        prepared = self.edited(session)
        refocuser = self.refocuser(session.model)
        lens = refocuser.preview_lens(prepared, session.focus, settings, self.focus_plane(session))
        return prepared, refocuser.render_preview(prepared, lens, settings, session.timings)

    @gpu_task
    def render_full(
        self,
        image: str | Photo,
        prepared: PreparedPhoto,
        model: str | None,
        focus_xy: tuple[float, float],
        settings: LensSettings,
        name: str,
        timings: Timings | None = None,
        *,
        focus_plane: FocusPlane | None = None,
        jpeg_quality: int = DEFAULT_JPEG_QUALITY,
        keep_gps: bool = False,
        progress: Callable[[float], None] | None = None,
    ) -> Path:
        """Render at full resolution into a new file named ``name``; returns its path.

        ``name``'s suffix picks PNG or JPEG (``jpeg_quality``); the photo's colour profile and
        EXIF are kept, its GPS position only when ``keep_gps`` (``refocus.io.save_image``).
        ``progress`` as ``Refocuser.render_full`` takes it (share done; it may raise to stop).
        """
        photo = image if isinstance(image, Photo) else self.load(image)
        rendered = self.refocuser(model).render_full(
            photo, prepared, focus_xy, settings, timings, focus_plane=focus_plane, progress=progress
        )
        return save_image(self.outputs.new_file(name), rendered, photo=photo, quality=jpeg_quality, keep_gps=keep_gps)

    @gpu_task
    def render_focus_pull(
        self,
        image: str | Photo,
        prepared: PreparedPhoto,
        model: str | None,
        pull: FocusPull,
        settings: LensSettings,
        name: str,
        *,
        fps: float = 12.0,
        progress: ProgressCallback | None = None,
    ) -> Path:
        """Render ``pull`` at the preview's size into a new animation named ``name`` (format by suffix)."""
        photo = image if isinstance(image, Photo) else self.load(image)
        path = self.outputs.new_file(name)
        return make_focus_pull(self.refocuser(model), photo, prepared, pull, settings, path, fps=fps, progress=progress)

    def auto_focus(self, session: Session) -> tuple[float, float]:
        """The subject's point in the session's photo (original pixels), from the preview's depth."""
        prepared = self.prepared(session)
        x, y = auto_focus_point(prepared.preview_disparity, prepared.subject_area)
        return x / prepared.preview_scale, y / prepared.preview_scale

    def focus_band(self, session: Session, settings: LensSettings, preview: np.ndarray) -> np.ndarray:
        """``preview`` (float32 sRGB, the preview's size) with the depth band that renders sharp tinted."""
        prepared = self.edited(session)
        lens = self.refocuser(session.model).preview_lens(prepared, session.focus, settings, self.focus_plane(session))
        return focus_band_overlay(
            preview, prepared.preview_disparity, lens.focus, lens.strength, focus_range=lens.focus_range
        )

    @gpu_task
    def render_zoom(self, session: Session, settings: LensSettings, size: int = ZOOM_SIZE) -> np.ndarray:
        """float32 sRGB: a ``size``-pixel square of the full-resolution render around the focus, 1:1."""
        prepared = self.edited(session, full=True)
        box = zoom_box(session.focus, (prepared.width, prepared.height), size)
        plane = self.focus_plane(session)
        focus = None if plane is None else plane.disparity_map(prepared.width, prepared.height)
        return self.refocuser(session.model).render_crop(
            self.load(session.path), prepared, session.focus, settings, box, focus=focus
        )

    def depth_legend(self, session: Session) -> np.ndarray:
        """uint8 colour bar for the session's depth picture, in metres when the source is metric."""
        depth = self.edited(session, full=True).depth
        return depth_legend(depth.disparity, depth.depth)

    def render_progress(self, client: str, report: Callable[[float], None]) -> Callable[[float], None]:
        """A ``progress`` for ``render_full``: passes the share done to ``report``; stops on cancel.

        ``client`` names the caller (a browser tab); once ``cancel_render(client)`` is called the
        render stops at its next strip with a ``RefocusError``.
        """
        with self._cancel_lock:
            self._cancelled.discard(client)

        def progress(done: float) -> None:
            with self._cancel_lock:
                if client in self._cancelled:
                    self._cancelled.discard(client)
                    raise RefocusError("The full-resolution render was cancelled.")
            report(done)

        return progress

    def cancel_render(self, client: str) -> None:
        """Stop ``client``'s running full-resolution render (see ``render_progress``)."""
        with self._cancel_lock:
            self._cancelled.add(client)

    # -- status ------------------------------------------------------------------------------

    def status(self, model: str | None = None) -> dict[str, Any]:
        """What ``/status`` reports: model, device, CUDA, the server's last timings, versions."""
        import torch

        model = model or self.default_model
        with self._refocusers_lock:
            refocuser = self._refocusers.get(model)
        loaded = bool(refocuser and refocuser.model_loaded)
        return {
            "model": model,
            "licence": info.licence if (info := model_info(model)) else None,
            "model_loaded": loaded,
            "model_error": self.model_error if model == self.default_model else None,
            "device": refocuser.model.device if loaded else (self.device or "auto"),
            "cuda_available": torch.cuda.is_available(),
            "last_depth_s": refocuser.last_timings.depth_s if refocuser else None,
            "last_render_s": refocuser.last_timings.render_s if refocuser else None,
            "versions": {
                "refocus": refocus.__version__,
                # Asked of the installed distributions: the library never imports gradio.
                "gradio": importlib.metadata.version("gradio"),
                "torch": torch.__version__,
                "transformers": importlib.metadata.version("transformers"),
                "python": platform.python_version(),
            },
        }

    def status_line(self, model: str | None = None, timings: Timings | None = None, source: str | None = None) -> str:
        """The UI's status line (Markdown): the depth source in use, device, the session's ``timings``.

        ``source``: where the photo's depth came from (``PreparedPhoto.depth_source``); without
        it the line names the model. The depth time shows only when a network ran.
        """
        s = self.status(model)
        network = source is None or source.startswith("model:")
        if source is None or network:
            source = f"estimated by {self.model_label(s['model'])}"
        parts = [f"**Depth** {source}", f"**device** {s['device']}"]
        if timings is not None and timings.depth_s is not None and network:
            parts.append(f"depth {timings.depth_s:.2f} s")
        if timings is not None and timings.render_s is not None:
            parts.append(f"last render {timings.render_s * 1000:.0f} ms")
        return " · ".join(parts)

    def session_status(self, session: Session | None, model: str | None = None) -> str:
        """``status_line`` for ``session`` (its depth source and timings), or the server's alone."""
        if session is None:
            return self.status_line(model)
        prepared = self.refocuser(session.model).prepared_photo(session.key)
        return self.status_line(session.model, session.timings, prepared.depth_source if prepared else None)


# -- the process: command line, memory, launch ------------------------------------------------


def parse_args(argv: list[str] | None = None) -> argparse.Namespace:
    """``python app.py``'s options (environment variables give the defaults where noted)."""
    parser = argparse.ArgumentParser(description="Launch the refocus web app.")
    parser.add_argument("--host", default=os.environ.get("GRADIO_SERVER_NAME", "127.0.0.1"), help="address to listen on")
    parser.add_argument("--port", type=int, default=int(os.environ.get("GRADIO_SERVER_PORT", 7860)))
    parser.add_argument("--share", action="store_true", help="also serve through a public gradio.live link")
    parser.add_argument(
        "--depth-model",
        default=os.environ.get("REFOCUS_DEPTH_MODEL", DEFAULT_MODEL),
        help="alias, Hugging Face hub id or local directory (env REFOCUS_DEPTH_MODEL)",
    )
    parser.add_argument("--device", default=None, help="cpu, cuda or cuda:N (default: cuda when available)")
    parser.add_argument("--max-image-pixels", type=int, default=DEFAULT_MAX_PIXELS, help="refuse larger uploads")
    parser.add_argument("--queue-size", type=int, default=64, help="requests waiting beyond this are refused")
    return parser.parse_args(argv)


def launch_options(host: str, port: int | None, allowed_paths: list[Path]) -> dict[str, Any]:
    """``demo.launch`` keywords: where to listen, and what the server may serve and accept.

    Args:
        host, port: where to listen.
        allowed_paths: the only folders whose files may be served (the example photos).
    """
    return dict(
        server_name=host,
        server_port=port,
        allowed_paths=[str(path) for path in allowed_paths],
        max_file_size=DEFAULT_MAX_BYTES,  # uploads beyond what load_photo accepts never reach the disk
    )


def limit_malloc_arenas(arenas: int = 2) -> None:
    """Make glibc share ``arenas`` malloc arenas between all threads (call before they start).

    Why: by default each of Gradio's worker threads gets its own arena, and arenas keep the
    freed buffers of full-resolution images instead of returning them, so RSS climbs for a
    while under load. In the load test (8 users x 30 calls) it grew 23 % after the warm-up by
    default and 12 % with two arenas, at no cost in latency. A no-op where libc is not glibc.
    """
    try:
        ctypes.CDLL("libc.so.6").mallopt(-8, arenas)  # -8 is M_ARENA_MAX in malloc.h
    except (OSError, AttributeError):
        pass
