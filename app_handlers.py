"""What the app does when the user acts: the handlers ``app.build_demo`` wires to its events.

Each ``Handlers`` method takes the session (``refocus.server.Session``: paths, focus, history,
its own timings) and the UI's values in the order of its event's inputs, and returns the new
values of its outputs (``gr.skip()`` for those left as they are). The arrays live in the shared,
byte-bounded caches of the Refocuser; every computation is the library's (``RefocusApp``), and
the layout is ``app.py``'s.
"""

import dataclasses
import functools
import inspect
from pathlib import Path
from typing import Callable

import cv2
import gradio as gr
import numpy as np

from app_api import lens_settings, user_errors
from refocus.animate import FocusPull
from refocus.brush import Stroke
from refocus.io import colorize_disparity, save_depth_png16
from refocus.presets import load_preset, save_preset
from refocus.refocuser import LensSettings, PreparedPhoto
from refocus.server import RefocusApp, Session, browser_copy_needed, pick_point

NO_PHOTO = "Upload a photo first, then click where it should be sharp."
NEEDS_DEPTH = "This photo needs a depth map (no depth model is installed here): upload one under “Depth map”."
MARKER_COLOURS = {"A": (255, 160, 0), "B": (0, 200, 255), "plane": (120, 255, 120)}  # RGB


def as_uint8(image: np.ndarray) -> np.ndarray:
    """float32 sRGB in [0, 1] -> uint8, as the image components show it."""
    return np.clip(np.rint(image * 255), 0, 255).astype(np.uint8)


def draw_markers(image: np.ndarray, session: Session, scale: float) -> np.ndarray:
    """uint8 copy of the preview ``image`` with the focal-plane points and the focus pull's A and B
    (photo pixels x ``scale``); the focus ring itself is drawn by the page (``app_page.js``)."""
    out = as_uint8(image)
    radius = max(4, round(0.012 * max(out.shape[:2])))
    labelled = [(str(i + 1), p, MARKER_COLOURS["plane"]) for i, p in enumerate(session.plane_points)]
    labelled += [(name, p, MARKER_COLOURS[name]) for name, p in (("A", session.pull_from), ("B", session.pull_to)) if p]
    for label, (x, y), colour in labelled:
        centre = (round(x * scale), round(y * scale))
        cv2.circle(out, centre, radius, colour, -1, cv2.LINE_AA)
        cv2.putText(out, label, (centre[0] + radius + 2, centre[1] + radius), cv2.FONT_HERSHEY_SIMPLEX,
                    radius / 10, colour, max(1, radius // 4), cv2.LINE_AA)  # fmt: skip
    return out


def control_values(settings: LensSettings) -> list:
    """``settings`` back as the values of the UI's ``controls`` (undo and redo set them)."""
    return [settings.f_number, settings.shape, settings.highlight_boost, settings.highlight_threshold,
            settings.focus_range, settings.focus_falloff]  # fmt: skip


def painted(editor: dict | None) -> np.ndarray | None:
    """Where the user painted in the brush's ``ImageEditor`` value: its layers' alpha (H, W) uint8."""
    layers = [layer for layer in (editor or {}).get("layers") or [] if layer is not None and layer.ndim == 3]
    alpha = [layer[..., 3] for layer in layers if layer.shape[2] == 4]
    return np.max(alpha, axis=0) if alpha and np.max(alpha) > 0 else None


def canvas(prepared: PreparedPhoto) -> dict:
    """A fresh brush canvas (``ImageEditor`` value) over the preview."""
    return {"background": as_uint8(prepared.preview), "layers": [], "composite": None}


def ready(session: Session | None) -> bool:
    """Whether the session has a photo with depth (it may hold only a photo waiting for a map)."""
    return session is not None and session.key is not None


def step(session: Session, focus, settings: LensSettings) -> Session:
    """``session`` focused at ``focus`` with ``settings`` remembered for undo."""
    return dataclasses.replace(session, focus=focus, history=session.history.push((focus, settings)))


def newest_settings(session: Session, settings: LensSettings, stamp: int | None) -> tuple[Session, LensSettings]:
    """The settings to render: ``settings``, sent by the page at action ``stamp``, unless the tab
    already applied newer ones; and the session remembering them. No ``stamp`` (no page script,
    direct calls): ``settings``."""
    if stamp is None:
        return session, settings
    if stamp < session.settings_stamp and session.settings is not None:
        return session, session.settings
    return dataclasses.replace(session, settings=settings, settings_stamp=stamp), settings


def in_tab_order(handler: Callable) -> Callable:
    """``handler`` (a ``Handlers`` method taking the tab's session first and returning the new one
    first, with a ``request`` parameter) run after the tab's earlier events, on the session they left.

    Why: Gradio reads a ``gr.State`` when an event starts and runs different listeners of one tab
    at the same time, so a click and the lens control its mousedown applies (or any two changes
    within a render) each started from the old session and the later to finish undid the other.
    Chosen over the lens controls also reading the page's latest click (the control's event starts
    on the mousedown, before the click exists) and over one ``always_last`` listener for every
    preview event (Gradio re-runs a deferred event as the event that was running, so an undo would
    run twice, and a new photo and the brush have listeners of their own). The lock is the tab's
    own (``TabSessions``): other tabs never wait. Direct calls without a request (tests, scripts)
    run as they are.
    """
    signature = inspect.signature(handler)
    session_name = list(signature.parameters)[1]  # after self

    @functools.wraps(handler)
    def run(*args, **kwargs):
        bound = signature.bind(*args, **kwargs)
        request = bound.arguments.get("request")
        if request is None or not request.session_hash:
            return handler(*args, **kwargs)
        with bound.arguments["self"].app.tabs.hold(request.session_hash) as record:
            if record.session is not None:
                bound.arguments[session_name] = record.session
            outputs = handler(*bound.args, **bound.kwargs)
            if isinstance(outputs[0], Session):  # not gr.skip()
                record.session = outputs[0]
            return outputs

    return run


class Handlers:
    """The UI's event handlers around one ``RefocusApp`` (shared by every user of the server)."""

    def __init__(self, app: RefocusApp):
        self.app = app

    def show(self, session: Session, settings: LensSettings, band: bool, seq: int | None = None) -> tuple:
        """The view outputs: session, preview, before/after, no stale download, status, focus marker.

        The marker is the focus as fractions of the photo; the page draws it (``app_page.js``),
        ``seq`` being the click it answers, so an older click's answer never moves it back.
        """
        app = self.app
        prepared, preview = app.render_preview(session, settings)
        shown = app.focus_band(session, settings, preview) if band else preview
        marker = {"fx": session.focus[0] / prepared.width, "fy": session.focus[1] / prepared.height, "seq": seq}
        pair = (as_uint8(prepared.preview), as_uint8(preview))
        marked = draw_markers(shown, session, prepared.preview_scale)
        return session, marked, pair, None, app.session_status(session), marker

    @user_errors
    @in_tab_order
    def on_photo(
        self, previous, path, model, depth_path, depth_kind, depth_unit, depth_source, f_number, shape, boost,
        threshold, focus_range, falloff, band, evt: gr.EventData, progress=gr.Progress(),
        request: gr.Request | None = None,
    ):  # fmt: skip
        """A new photo (or depth source): its depth, auto focus, preview, depth tab; nothing old kept.

        A depth option changed for the same photo keeps its focus and picked points. The depth
        download and legend follow in ``on_depth_file``, so the preview does not wait for depth at
        full resolution.
        """
        app = self.app
        skip = (gr.skip(),) * 14
        if previous and path and Path(path).name == previous.shown_name:
            path = previous.path  # the photo box shows our JPEG copy of a HEIC; the photo is still the HEIC
        chosen_now = getattr(evt.target, "elem_id", None) == "depth-upload"
        previous = previous or Session(None, model)
        choices = dict(
            depth_unit=depth_unit or None, depth_source=depth_source or "auto", shown_name=previous.shown_name
        )
        session = previous.next(path, model, depth_path, depth_kind or "auto", chosen_now, **choices)
        if ready(previous) and previous.same_photo(session):
            return skip  # Gradio reports one upload as two changes, and the HEIC's copy arriving: render once
        upload = None if depth_path and not session.depth_path else gr.skip()  # an earlier photo's map
        # The session is kept even without a photo: it remembers which maps were earlier photos'.
        cleared = (session, None, None, None, app.session_status(None, model), None, None, None, None, upload, None,
                   None, gr.skip(), gr.skip())  # fmt: skip
        if not path:
            return cleared
        same_photo = ready(previous) and previous.path == path
        photo = app.load_preview(path, with_depth_map=bool(session.depth_path))
        needs_model = session.depth_path is None and (photo.embedded_depth is None or session.depth_source == "model")
        if needs_model and app.model_problem(model):
            gr.Warning(NEEDS_DEPTH, duration=5)
            return (*cleared[:4], NEEDS_DEPTH, *cleared[5:])
        progress(0.1, desc="Estimating depth (once per photo)…")
        settings = lens_settings(f_number, shape, boost, threshold, focus_range, falloff)
        prepared = app.prepared(session, photo)
        f_number_update = shown = gr.skip()
        if same_photo:  # a depth option changed: the focus and the picked points stay
            kept = ("focus", "pull_from", "pull_to", "plane_points", "shown_name")
            session = dataclasses.replace(session, **{name: getattr(previous, name) for name in kept})
            focus = session.focus
        else:
            focus = app.auto_focus(session)
            if photo.simulated_f_number is not None:  # start at the aperture the phone's portrait mode used
                f_number = f_number_update = photo.simulated_f_number
                settings = dataclasses.replace(settings, f_number=f_number)
            if browser_copy_needed(path):  # HEIC, TIFF: browsers cannot show them, so show a JPEG copy
                shown = str(app.browser_copy(photo, Path(path).stem))
                session.shown_name = Path(shown).name
        session = dataclasses.replace(session, focus=focus, history=session.history.reset((focus, settings)))
        progress(0.8, desc="Rendering preview…")
        view = self.show(session, settings, band)
        depth_picture = colorize_disparity(prepared.preview_disparity)
        return (*view, depth_picture, None, None, upload, None, canvas(prepared), f_number_update, shown)

    @user_errors
    def on_depth_file(self, session):
        """The 16-bit depth download and the depth legend: depth at full resolution, after the preview."""
        if not ready(session):
            return None, None
        return self.depth_download(session, self.app.edited(session, full=True)), self.app.depth_legend(session)

    def depth_download(self, session: Session, prepared: PreparedPhoto) -> str:
        """A new 16-bit PNG of ``prepared``'s depth (the session's, at full resolution, edited)."""
        depth_file = self.app.outputs.new_file(Path(session.path).stem + "-depth16.png")
        return str(save_depth_png16(depth_file, prepared.depth.disparity))

    @user_errors
    @in_tab_order
    def on_click(
        self, session, click_mode, f_number, shape, boost, threshold, focus_range, falloff, band, click,
        evt: gr.SelectData, request: gr.Request | None = None,
    ):  # fmt: skip
        """A click on the photo or on the preview: focus there, or pick a focus pull's or plane's point
        (``click_mode``); ``click`` is the page's latest click."""
        if not ready(session):  # (the photo is not an input: Gradio would re-encode it on every click)
            gr.Warning(NEEDS_DEPTH if session and session.path else NO_PHOTO, duration=5)
            return (gr.skip(),) * 6
        prepared = self.app.prepared(session)
        if click:
            focus = (click["fx"] * prepared.width, click["fy"] * prepared.height)
        else:  # no page script (an old tab): Gradio's own position, in the clicked image's pixels
            scale = prepared.preview_scale if getattr(evt.target, "elem_id", None) == "result" else 1.0
            focus = (evt.index[0] / scale, evt.index[1] / scale)
        settings = lens_settings(f_number, shape, boost, threshold, focus_range, falloff)
        session, settings = newest_settings(session, settings, click.get("stamp") if click else None)
        if click_mode != "focus":  # a pull's end or a plane's point: the focus stays
            return self.show(pick_point(session, click_mode, focus), settings, band)
        session = pick_point(session, click_mode, focus)
        return self.show(step(session, focus, settings), settings, band, click["seq"] if click else None)

    @user_errors
    @in_tab_order
    def on_controls(
        self, session, f_number, shape, boost, threshold, focus_range, falloff, band, stamp=None,
        request: gr.Request | None = None,
    ):  # fmt: skip
        """A lens control changed: the preview with the new settings, remembered for undo; ``stamp``
        is the page's count of the user's actions when it sent them (``newest_settings``)."""
        if not ready(session):
            return (gr.skip(),) * 6
        settings = lens_settings(f_number, shape, boost, threshold, focus_range, falloff)
        session, settings = newest_settings(session, settings, stamp)
        return self.show(step(session, session.focus, settings), settings, band)

    def restore(self, session: Session, band: bool, history, stamp: int | None) -> tuple:
        """The view and the lens controls at ``history``'s current step (undo and redo, the page's
        action ``stamp``)."""
        focus, settings = history.current
        session, _ = newest_settings(dataclasses.replace(session, focus=focus, history=history), settings, stamp)
        return (*self.show(session, settings, band), *control_values(settings))

    @user_errors
    @in_tab_order
    def on_undo(self, session, band, stamp=None, request: gr.Request | None = None):
        """The focus and lens settings one step back."""
        return self.restore(session, band, session.history.undo(), stamp) if ready(session) else (gr.skip(),) * 12

    @user_errors
    @in_tab_order
    def on_redo(self, session, band, stamp=None, request: gr.Request | None = None):
        """The focus and lens settings one step forward again."""
        return self.restore(session, band, session.history.redo(), stamp) if ready(session) else (gr.skip(),) * 12

    @user_errors
    def on_full_resolution(
        self, session, f_number, shape, boost, threshold, focus_range, falloff, file_format, quality, keep_gps,
        request: gr.Request, progress=gr.Progress(),
    ):  # fmt: skip
        """The full-resolution download, with progress; ``on_cancel`` stops it between strips."""
        app = self.app
        if not ready(session):
            raise gr.Error(NO_PHOTO)
        settings = lens_settings(f_number, shape, boost, threshold, focus_range, falloff)
        prepared = app.edited(session, full=True)
        progress(0.02, desc="Decoding the photo at full resolution…")
        photo = app.load(session.path)
        size = f"{prepared.width} x {prepared.height}"

        def report(done: float) -> None:
            progress(0.05 + 0.9 * done, desc=f"Rendering {size}: {done:.0%}")

        progress(0.05, desc=f"Rendering {size}…")
        suffix = "jpg" if file_format == "jpeg" else "png"
        name = f"{Path(session.path).stem}-refocused-f{settings.f_number:g}.{suffix}"
        path = app.render_full(
            photo, prepared, session.model, session.focus, settings, name, session.timings,
            focus_plane=app.focus_plane(session), jpeg_quality=int(quality), keep_gps=bool(keep_gps),
            progress=app.render_progress(request.session_hash, report),
        )  # fmt: skip
        return str(path), app.session_status(session)

    def on_cancel(self, request: gr.Request):
        """Stop this tab's full-resolution render after its current strip."""
        self.app.cancel_render(request.session_hash)
        gr.Info("The full-resolution render was cancelled.", duration=3)

    # -- the refine brush ----------------------------------------------------------------------

    def brushed(self, session: Session, strokes: tuple, band: bool, settings: LensSettings) -> tuple:
        """The view, the edited depth's download and a fresh canvas, with ``strokes`` as the edits."""
        session = dataclasses.replace(session, strokes=strokes)
        prepared = self.app.edited(session, full=True)
        return (*self.show(session, settings, band), self.depth_download(session, prepared), canvas(prepared))

    @user_errors
    @in_tab_order
    def on_stroke(
        self, session, editor, mode, strength, softness, f_number, shape, boost, threshold, focus_range, falloff, band,
        request: gr.Request | None = None,
    ):  # fmt: skip
        """The painted mask becomes a brush stroke on the depth (``refocus.brush``)."""
        mask = painted(editor)
        if not ready(session) or mask is None:
            gr.Warning("Paint over the photo in the Refine tab first, then press Apply." if ready(session) else NO_PHOTO)
            return (gr.skip(),) * 8
        strokes = (*session.strokes, Stroke(mask, mode, strength, softness))
        return self.brushed(session, strokes, band, lens_settings(f_number, shape, boost, threshold, focus_range, falloff))

    @user_errors
    @in_tab_order
    def on_strokes(
        self, session, keep, f_number, shape, boost, threshold, focus_range, falloff, band,
        request: gr.Request | None = None,
    ):  # fmt: skip
        """Undo the last stroke (``keep`` "all but last") or clear them all."""
        if not ready(session):
            return (gr.skip(),) * 8
        strokes = session.strokes[:-1] if keep == "all but last" else ()
        return self.brushed(session, strokes, band, lens_settings(f_number, shape, boost, threshold, focus_range, falloff))

    # -- 1:1 view, focus pull and presets ------------------------------------------------------

    @user_errors
    def on_zoom(self, session, f_number, shape, boost, threshold, focus_range, falloff):
        """The 1:1 view around the focus point (rendered when its tab opens or on request)."""
        if not ready(session):
            return None
        settings = lens_settings(f_number, shape, boost, threshold, focus_range, falloff)
        x, y = session.focus
        label = f"1:1 around ({x:.0f}, {y:.0f}) at f/{settings.f_number:g}"
        return gr.Image(as_uint8(self.app.render_zoom(session, settings)), label=label)

    @user_errors
    def on_focus_pull(
        self, session, frames, fps, file_format, f_number, shape, boost, threshold, focus_range, falloff,
        progress=gr.Progress(),
    ):  # fmt: skip
        """The focus pull from A (default: the focus) to B as a video or animation to download."""
        if not ready(session):
            raise gr.Error(NO_PHOTO)
        if session.pull_to is None:
            raise gr.Error("Pick where the focus pull ends: choose \"Focus pull: end (B)\" and click the photo.")
        pull = FocusPull((session.pull_from or session.focus, session.pull_to), frames=frames)
        settings = lens_settings(f_number, shape, boost, threshold, focus_range, falloff)
        name = f"{Path(session.path).stem}-focus-pull.{file_format}"

        def frame_done(done: int, total: int) -> None:
            progress((done, total), desc="Rendering frames…")

        path = self.app.render_focus_pull(session.path, self.app.edited(session), session.model, pull, settings, name,
                                          fps=fps, progress=frame_done)  # fmt: skip
        playable = str(path) if path.suffix in (".mp4", ".webm") else None  # a GIF or WebP is a download only
        return playable, str(path)

    @user_errors
    def on_save_preset(self, f_number, shape, boost, threshold, focus_range, falloff):
        """The lens controls as a preset file (JSON) to download."""
        settings = lens_settings(f_number, shape, boost, threshold, focus_range, falloff)
        return str(save_preset(self.app.outputs.new_file("refocus-preset.json"), settings))

    @user_errors
    def on_load_preset(self, preset_path):
        """A preset file's settings as the lens controls' values."""
        return control_values(load_preset(preset_path))
