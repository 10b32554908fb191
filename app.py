"""refocus: the Gradio app. Drop in a photo, click what should be sharp, choose the aperture.

Layout and event wiring only; every computation lives in the ``refocus`` library, which the
CLI uses too; the server's state, status, output files and launch options live in
``refocus.server``, and the public API endpoints in ``app_api``. ``build_demo`` builds the UI
without loading any model (tests import it); ``python app.py`` launches it.
"""

import dataclasses
import logging
from pathlib import Path

import cv2
import gradio as gr
import numpy as np

from app_api import HEAVY, add_api, lens_settings, user_errors
from refocus.animate import ANIMATION_EXTENSIONS, MAX_FRAMES, FocusPull
from refocus.brush import MODES, Stroke
from refocus.io import DEFAULT_JPEG_QUALITY, colorize_disparity, save_depth_png16
from refocus.presets import load_preset, save_preset
from refocus.refocuser import LensSettings, shape_choices
from refocus.server import (
    CLICK_MODES,
    RefocusApp,
    Session,
    browser_copy_needed,
    launch_options,
    limit_malloc_arenas,
    parse_args,
    pick_point,
)

log = logging.getLogger("refocus.app")

SESSION_TTL_S = 3600  # a tab left open for an hour forgets its photo (its files stay on disk)
EXAMPLES_DIR = Path(__file__).parent / "examples"
NO_PHOTO = "Upload a photo first, then click where it should be sharp."
NEEDS_DEPTH = "This photo needs a depth map (no depth model is installed here): upload one under “Depth map”."
# The page's own script (clicks, the focus ring, Enter in number boxes): see its opening comment.
PAGE_JS = (Path(__file__).parent / "app_page.js").read_text()
# A click event's inputs with the latest click (recorded by PAGE_JS) in the last, hidden one:
# with trigger_mode="always_last" Gradio re-runs a deferred click with the FIRST click's
# SelectData, but it runs this function again, so the re-run reads the latest position.
LAST_CLICK_JS = "(...inputs) => [...inputs.slice(0, -1), window.refocus ? window.refocus.click['{}'] : null]"
SHOW_FOCUS_JS = "(marker) => { if (window.refocus) window.refocus.show(marker); return []; }"
DEPTH_SOURCE_CHOICES = [
    ("Auto: your map, else the photo's own, else the model", "auto"),
    ("The photo's own (iPhone, Google)", "embedded"),
    ("The depth model", "model"),
]
DEPTH_KIND_CHOICES = [
    ("Auto (16-bit = millimetres)", "auto"),
    ("Disparity (bright = near)", "disparity"),
    ("Depth (bright = far)", "depth"),
    ("Metric depth (in the unit below)", "metric"),
]
DEPTH_UNITS = ["mm", "cm", "m", "1/256"]  # 1/256 m: KITTI
MARKER_COLOURS = {"A": (255, 160, 0), "B": (0, 200, 255), "plane": (120, 255, 120)}  # RGB


def as_uint8(image: np.ndarray) -> np.ndarray:
    """float32 sRGB in [0, 1] -> uint8, as the image components show it."""
    return np.clip(np.rint(image * 255), 0, 255).astype(np.uint8)


def draw_markers(image: np.ndarray, session: Session, scale: float) -> np.ndarray:
    """uint8 copy of the preview ``image`` with the focal-plane points and the focus pull's A and B
    (photo pixels x ``scale``); the focus ring itself is drawn by the page (``PAGE_JS``)."""
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


def build_demo(app: RefocusApp | None = None) -> gr.Blocks:
    """Build the Blocks UI around ``app`` (a default ``RefocusApp`` if None). Loads no model."""
    app = app or RefocusApp()
    no_model = app.no_model_notice()

    # -- the UI's events: the session is a small ``Session`` (paths, focus, history, its own
    # -- timings); the arrays live in the shared, byte-bounded caches of the Refocuser.

    def show(session: Session, settings: LensSettings, band: bool, seq: int | None = None) -> tuple:
        """The view outputs: session, preview, before/after, no stale download, status, focus marker.

        The marker is the focus as fractions of the photo; the page draws it (``PAGE_JS``),
        ``seq`` being the click it answers, so an older click's answer never moves it back.
        """
        prepared, preview = app.render_preview(session, settings)
        shown = app.focus_band(session, settings, preview) if band else preview
        marker = {"fx": session.focus[0] / prepared.width, "fy": session.focus[1] / prepared.height, "seq": seq}
        pair = (as_uint8(prepared.preview), as_uint8(preview))
        marked = draw_markers(shown, session, prepared.preview_scale)
        return session, marked, pair, None, app.session_status(session), marker

    def ready(session: Session | None) -> bool:
        """Whether the session has a photo with depth (it may hold only a photo waiting for a map)."""
        return session is not None and session.key is not None

    def step(session: Session, focus, settings: LensSettings) -> Session:
        """``session`` focused at ``focus`` with ``settings`` remembered for undo."""
        return dataclasses.replace(session, focus=focus, history=session.history.push((focus, settings)))

    @user_errors
    def on_photo(
        previous, path, model, depth_path, depth_kind, depth_unit, depth_source, f_number, shape, boost, threshold,
        focus_range, falloff, band, evt: gr.EventData, progress=gr.Progress(),
    ):  # fmt: skip
        """A new photo (or depth source): its depth, auto focus, preview, depth tab; nothing old kept.

        A depth option changed for the same photo keeps its focus and picked points. The depth
        download and legend follow in ``on_depth_file``, so the preview does not wait for depth at
        full resolution.
        """
        skip = (gr.skip(),) * 14
        if previous and path and Path(path).name == previous.shown_name:
            path = previous.path  # the photo box shows our JPEG copy of a HEIC; the photo is still the HEIC
        chosen_now = evt.target is depth_upload
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
        view = show(session, settings, band)
        depth_picture = colorize_disparity(prepared.preview_disparity)
        return (*view, depth_picture, None, None, upload, None, canvas(prepared), f_number_update, shown)

    @user_errors
    def on_depth_file(session):
        """The 16-bit depth download and the depth legend: depth at full resolution, after the preview."""
        if not ready(session):
            return None, None
        prepared = app.edited(session, full=True)
        depth_file = app.outputs.new_file(Path(session.path).stem + "-depth16.png")
        return str(save_depth_png16(depth_file, prepared.depth.disparity)), app.depth_legend(session)

    @user_errors
    def on_click(
        session, click_mode, f_number, shape, boost, threshold, focus_range, falloff, band, click, evt: gr.SelectData
    ):
        """A click on the photo or on the preview: focus there, or pick a focus pull's or plane's point
        (``click_mode``); ``click`` is the page's latest click."""
        if not ready(session):  # (the photo is not an input: Gradio would re-encode it on every click)
            gr.Warning(NEEDS_DEPTH if session and session.path else NO_PHOTO, duration=5)
            return (gr.skip(),) * 6
        prepared = app.prepared(session)
        if click:
            focus = (click["fx"] * prepared.width, click["fy"] * prepared.height)
        else:  # no page script (an old tab): Gradio's own position, in the clicked image's pixels
            scale = prepared.preview_scale if evt.target is result else 1.0
            focus = (evt.index[0] / scale, evt.index[1] / scale)
        settings = lens_settings(f_number, shape, boost, threshold, focus_range, falloff)
        if click_mode != "focus":  # a pull's end or a plane's point: the focus stays
            return show(pick_point(session, click_mode, focus), settings, band)
        session = pick_point(session, click_mode, focus)
        return show(step(session, focus, settings), settings, band, click["seq"] if click else None)

    @user_errors
    def on_controls(session, f_number, shape, boost, threshold, focus_range, falloff, band):
        if not ready(session):
            return (gr.skip(),) * 6
        settings = lens_settings(f_number, shape, boost, threshold, focus_range, falloff)
        return show(step(session, session.focus, settings), settings, band)

    def restore(session: Session, band: bool, history) -> tuple:
        """The view and the lens controls at ``history``'s current step (undo and redo)."""
        focus, settings = history.current
        session = dataclasses.replace(session, focus=focus, history=history)
        return (*show(session, settings, band), *control_values(settings))

    @user_errors
    def on_undo(session, band):
        return restore(session, band, session.history.undo()) if ready(session) else (gr.skip(),) * 12

    @user_errors
    def on_redo(session, band):
        return restore(session, band, session.history.redo()) if ready(session) else (gr.skip(),) * 12

    @user_errors
    def on_full_resolution(
        session, f_number, shape, boost, threshold, focus_range, falloff, file_format, quality, keep_gps,
        request: gr.Request, progress=gr.Progress(),
    ):  # fmt: skip
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

    def on_cancel(request: gr.Request):
        app.cancel_render(request.session_hash)
        gr.Info("The full-resolution render was cancelled.", duration=3)

    def depth_controls() -> tuple:
        """The depth source controls: the model, the photo's own depth, or the user's own map and
        what it holds: (model, depth source, map upload, map kind, map unit)."""
        # Without a model the user's map is the only way forward: then it is not tucked away.
        with gr.Accordion("Depth map", open=bool(no_model)):
            model = gr.Dropdown(
                [(app.model_label(m), m) for m in app.model_choices],
                value=app.default_model,
                label="Depth model (licence)",
            )
            depth_source = gr.Radio(DEPTH_SOURCE_CHOICES, value="auto", label="Depth from", elem_id="depth-source")
            depth_upload = gr.File(
                label="Or use your own depth map (PNG, TIFF or .npy)",
                file_types=[".png", ".tif", ".tiff", ".npy"],
                elem_id="depth-upload",
            )
            depth_kind = gr.Radio(DEPTH_KIND_CHOICES, value="auto", label="The map holds", elem_id="depth-kind")
            depth_unit = gr.Dropdown(
                DEPTH_UNITS, value="mm", allow_custom_value=True,
                label="Unit of metric depth (m, cm, mm, or metres per value such as 1/256)",
            )  # fmt: skip
        return model, depth_source, depth_upload, depth_kind, depth_unit

    def brushed(session: Session, strokes: tuple, band: bool, settings: LensSettings) -> tuple:
        """The view, the edited depth's download and a fresh canvas, with ``strokes`` as the edits."""
        session = dataclasses.replace(session, strokes=strokes)
        prepared = app.edited(session, full=True)
        depth_file = save_depth_png16(app.outputs.new_file(Path(session.path).stem + "-depth16.png"), prepared.depth.disparity)
        return (*show(session, settings, band), str(depth_file), canvas(prepared))

    def canvas(prepared) -> dict:
        return {"background": as_uint8(prepared.preview), "layers": [], "composite": None}

    @user_errors
    def on_stroke(
        session, editor, mode, strength, softness, f_number, shape, boost, threshold, focus_range, falloff, band
    ):
        """The painted mask becomes a brush stroke on the depth (``refocus.brush``)."""
        mask = painted(editor)
        if not ready(session) or mask is None:
            gr.Warning("Paint over the photo in the Refine tab first, then press Apply." if ready(session) else NO_PHOTO)
            return (gr.skip(),) * 8
        strokes = (*session.strokes, Stroke(mask, mode, strength, softness))
        return brushed(session, strokes, band, lens_settings(f_number, shape, boost, threshold, focus_range, falloff))

    @user_errors
    def on_strokes(session, keep, f_number, shape, boost, threshold, focus_range, falloff, band):
        """Undo the last stroke (``keep`` "all but last") or clear them all."""
        if not ready(session):
            return (gr.skip(),) * 8
        strokes = session.strokes[:-1] if keep == "all but last" else ()
        return brushed(session, strokes, band, lens_settings(f_number, shape, boost, threshold, focus_range, falloff))

    @user_errors
    def on_zoom(session, f_number, shape, boost, threshold, focus_range, falloff):
        """The 1:1 view around the focus point (rendered when its tab opens or on request)."""
        if not ready(session):
            return None
        settings = lens_settings(f_number, shape, boost, threshold, focus_range, falloff)
        x, y = session.focus
        label = f"1:1 around ({x:.0f}, {y:.0f}) at f/{settings.f_number:g}"
        return gr.Image(as_uint8(app.render_zoom(session, settings)), label=label)

    # -- focus pull and presets ----------------------------------------------------------------

    @user_errors
    def on_focus_pull(session, frames, fps, file_format, f_number, shape, boost, threshold, focus_range, falloff,
                      progress=gr.Progress()):  # fmt: skip
        if not ready(session):
            raise gr.Error(NO_PHOTO)
        if session.pull_to is None:
            raise gr.Error("Pick where the focus pull ends: choose \"Focus pull: end (B)\" and click the photo.")
        pull = FocusPull((session.pull_from or session.focus, session.pull_to), frames=frames)
        settings = lens_settings(f_number, shape, boost, threshold, focus_range, falloff)
        name = f"{Path(session.path).stem}-focus-pull.{file_format}"

        def frame_done(done: int, total: int) -> None:
            progress((done, total), desc="Rendering frames…")

        path = app.render_focus_pull(session.path, app.edited(session), session.model, pull, settings, name,
                                     fps=fps, progress=frame_done)  # fmt: skip
        playable = str(path) if path.suffix in (".mp4", ".webm") else None  # a GIF or WebP is a download only
        return playable, str(path)

    @user_errors
    def on_save_preset(f_number, shape, boost, threshold, focus_range, falloff):
        settings = lens_settings(f_number, shape, boost, threshold, focus_range, falloff)
        return str(save_preset(app.outputs.new_file("refocus-preset.json"), settings))

    @user_errors
    def on_load_preset(preset_path):
        return control_values(load_preset(preset_path))

    # -- layout ------------------------------------------------------------------------------

    with gr.Blocks(title="refocus: click to focus, choose the aperture", delete_cache=(3600, 7200)) as demo:
        gr.Markdown(
            "# refocus\nDrop in a photo, **click what should be sharp**, then choose the aperture. "
            "Depth is estimated once per photo; refocusing after that is instant."
        )
        if no_model:
            gr.Markdown(no_model, elem_id="no-model")
        state = gr.State(None, time_to_live=SESSION_TTL_S)
        click = gr.JSON(None, visible=False)  # the page's latest click (``LAST_CLICK_JS``)
        marker = gr.JSON(None, visible=False)  # the focus the page draws its ring at
        with gr.Row():
            with gr.Column(scale=1):
                photo = gr.Image(
                    label="Photo (click to focus)",
                    elem_id="photo",
                    type="filepath",
                    sources=["upload", "clipboard", "webcam"],
                    image_mode=None,
                    height=360,
                )
                click_mode = gr.Radio(CLICK_MODES, value="focus", label="A click sets", elem_id="click-mode")
                if no_model:  # the user's map is the only way forward: right below the photo, open
                    model, depth_source, depth_upload, depth_kind, depth_unit = depth_controls()
                f_number = gr.Slider(1.0, 22.0, value=2.8, step=0.1, label="Aperture (f-number): smaller = more blur")
                shape = gr.Radio(shape_choices(), value="disc", label="Bokeh shape")
                with gr.Row():
                    undo_button = gr.Button("↶ Undo", size="sm", elem_id="undo")
                    redo_button = gr.Button("↷ Redo", size="sm", elem_id="redo")
                    band = gr.Checkbox(False, label="Tint what is in focus", elem_id="band")
                with gr.Accordion("More lens controls", open=False):
                    focus_range = gr.Slider(0.0, 1.0, value=0.0, step=0.01, label="Focus range (depth band kept sharp)")
                    focus_falloff = gr.Slider(
                        0.0, 1.0, value=0.0, step=0.01, label="Focus falloff (how gradually blur grows; 0 = real lens)"
                    )
                    highlight_boost = gr.Slider(0.0, 4.0, value=0.0, step=0.1, label="Highlight boost (0 = physical)")
                    highlight_threshold = gr.Slider(0.5, 1.0, value=0.9, step=0.01, label="Highlight threshold")
                if not no_model:
                    model, depth_source, depth_upload, depth_kind, depth_unit = depth_controls()
                with gr.Accordion("Presets", open=False):  # the lens controls saved to and loaded from JSON
                    with gr.Row():
                        save_preset_button = gr.Button("Save settings as preset", size="sm")
                        load_preset_button = gr.UploadButton("Load preset", file_types=[".json"], size="sm")
                    preset_file = gr.File(label="Preset (JSON)", elem_id="preset-file", height=80)
            with gr.Column(scale=2):
                with gr.Tabs():
                    with gr.Tab("Refocused"):
                        result = gr.Image(
                            label="Refocused preview (click to focus)", interactive=False, format="jpeg", elem_id="result"
                        )
                    with gr.Tab("Before / after"):
                        compare = gr.ImageSlider(label="Before / after", type="numpy", format="jpeg")
                    with gr.Tab("1:1 at focus") as zoom_tab:
                        zoom = gr.Image(label="1:1 around the focus point", interactive=False, elem_id="zoom")
                        zoom_button = gr.Button("Update 1:1 view", size="sm")
                    with gr.Tab("Refine (brush)"):
                        editor = gr.ImageEditor(
                            label="Paint where the depth should change, then Apply", type="numpy", elem_id="brush",
                            sources=(), transforms=(), layers=False, eraser=False,
                            brush=gr.Brush(colors=["#ff00ff"], color_mode="fixed", default_size=24),
                        )  # fmt: skip
                        with gr.Row():
                            brush_mode = gr.Radio(list(MODES), value="keep-sharp", label="The brush")
                            brush_strength = gr.Slider(0.0, 1.0, value=1.0, step=0.05, label="Strength")
                            brush_softness = gr.Slider(0.0, 0.05, value=0.01, step=0.005, label="Softness (edge)")
                        with gr.Row():
                            apply_button = gr.Button("Apply stroke", variant="primary", size="sm", elem_id="apply-stroke")
                            unstroke_button = gr.Button("Undo stroke", size="sm", elem_id="undo-stroke")
                            clear_button = gr.Button("Clear strokes", size="sm", elem_id="clear-strokes")
                    with gr.Tab("Depth"):
                        with gr.Row():
                            depth_view = gr.Image(
                                label="Depth (bright = near)", interactive=False, elem_id="depth-view", scale=4
                            )
                            legend = gr.Image(
                                label="Legend", show_label=False, buttons=[], interactive=False,
                                elem_id="depth-legend", scale=1, min_width=110,
                            )  # fmt: skip
                    with gr.Tab("Focus pull", elem_id="focus-pull-tab"):
                        gr.Markdown(
                            "Choose *Focus pull: start (A)* and *end (B)* under the photo and click each point "
                            "(A defaults to the focus point), then make the video."
                        )
                        with gr.Row():
                            pull_frames = gr.Slider(2, min(120, MAX_FRAMES), value=24, step=1, label="Frames")
                            pull_fps = gr.Slider(
                                1, 60, value=12, step=1, label="Frames per second (duration = frames ÷ this)"
                            )
                            pull_format = gr.Dropdown(
                                [e.lstrip(".") for e in ANIMATION_EXTENSIONS], value="mp4", label="Format"
                            )
                        pull_button = gr.Button("Make focus pull", elem_id="pull-button")
                        pull_video = gr.Video(label="Focus pull", elem_id="pull-video", interactive=False)
                        pull_file = gr.File(label="Focus pull (download)", elem_id="pull-file")
                with gr.Row():
                    render_button = gr.Button("Render full resolution", variant="primary", elem_id="render", scale=3)
                    cancel_button = gr.Button("Cancel", elem_id="cancel", scale=1)
                with gr.Row():
                    full_file = gr.File(label="Refocused photo (full-resolution PNG)", elem_id="full-file")
                    depth_file = gr.File(label="Depth map (16-bit PNG)", elem_id="depth-file")
                with gr.Accordion("Download format", open=False):
                    with gr.Row():
                        file_format = gr.Radio([("PNG", "png"), ("JPEG", "jpeg")], value="png", label="Format")
                        jpeg_quality = gr.Slider(1, 100, value=DEFAULT_JPEG_QUALITY, step=1, label="JPEG quality")
                        keep_gps = gr.Checkbox(False, label="Keep the GPS position (where the photo was taken)")
                status = gr.Markdown(app.status_line(), elem_id="status")
        controls = [f_number, shape, highlight_boost, highlight_threshold, focus_range, focus_falloff]

        view = [state, result, compare, full_file, status, marker]
        photo_inputs = [state, photo, model, depth_upload, depth_kind, depth_unit, depth_source, *controls, band]
        photo_outputs = [*view, depth_view, legend, depth_file, depth_upload, zoom, editor, f_number, photo]
        # photo.change covers upload, paste, webcam, clear and the examples; the depth map's
        # upload/clear (not change) so that the photo dropping an old map does not re-run it.
        for event in (photo.change, model.change, depth_upload.upload, depth_upload.clear, depth_kind.input,
                      depth_unit.input, depth_source.input):  # fmt: skip
            event(
                on_photo, photo_inputs, photo_outputs, api_visibility="private", trigger_mode="always_last",
                show_progress_on=[result], **HEAVY,
            ).then(None, [marker], None, js=SHOW_FOCUS_JS).then(
                on_depth_file, [state], [depth_file, legend], api_visibility="private", **HEAVY
            )  # fmt: skip
        # Clicks: the page keeps the latest click (``PAGE_JS``) and each event reads it when it
        # starts, so "always_last" ends on the latest click with at most one render waiting.
        for image in (photo, result):
            image.select(
                on_click, [state, click_mode, *controls, band, click], view, js=LAST_CLICK_JS.format(image.elem_id),
                trigger_mode="always_last", api_visibility="private", show_progress_on=[result],
            ).then(None, [marker], None, js=SHOW_FOCUS_JS)  # fmt: skip
        demo.load(None, js=PAGE_JS)
        for control in [*controls, band]:
            trigger = control.release if isinstance(control, gr.Slider) else control.input
            trigger(on_controls, [state, *controls, band], view, api_visibility="private", trigger_mode="always_last")
        for button, handler in [(undo_button, on_undo), (redo_button, on_redo)]:
            button.click(handler, [state, band], [*view, *controls], api_visibility="private").then(
                None, [marker], None, js=SHOW_FOCUS_JS
            )
        brush_inputs = [state, editor, brush_mode, brush_strength, brush_softness, *controls, band]
        apply_button.click(on_stroke, brush_inputs, [*view, depth_file, editor], api_visibility="private", **HEAVY)
        for button, keep in [(unstroke_button, "all but last"), (clear_button, "none")]:
            button.click(
                on_strokes, [state, gr.State(keep, time_to_live=SESSION_TTL_S), *controls, band],
                [*view, depth_file, editor], api_visibility="private", **HEAVY,
            )  # fmt: skip
        for trigger in (zoom_tab.select, zoom_button.click):
            trigger(on_zoom, [state, *controls], [zoom], api_visibility="private", trigger_mode="always_last", **HEAVY)
        # A second press while a render runs queues one render of the settings of that moment.
        rendering = render_button.click(
            on_full_resolution, [state, *controls, file_format, jpeg_quality, keep_gps], [full_file, status],
            api_visibility="private", trigger_mode="always_last", **HEAVY,
        )  # fmt: skip
        cancel_button.click(on_cancel, None, None, cancels=[rendering], api_visibility="private", queue=False)
        pull_inputs = [state, pull_frames, pull_fps, pull_format, *controls]
        pull_button.click(on_focus_pull, pull_inputs, [pull_video, pull_file], api_visibility="private", **HEAVY)
        save_preset_button.click(on_save_preset, controls, [preset_file], api_visibility="private")
        load_preset_button.upload(on_load_preset, [load_preset_button], controls, api_visibility="private").then(
            on_controls, [state, *controls, band], view, api_visibility="private"
        )
        gr.Examples(
            [[str(p)] for p in sorted(EXAMPLES_DIR.glob("*.jpg"))],
            inputs=[photo],
            label="Example photos (click one, then click on it to focus)"
            if not no_model
            else "Example photos: these need the depth model, which is not installed here",
        )

        add_api(app)
    return demo


def main(argv: list[str] | None = None) -> None:
    logging.basicConfig(level=logging.INFO, format="%(levelname)s %(name)s: %(message)s")
    args = parse_args(argv)
    limit_malloc_arenas()
    app = RefocusApp(args.depth_model, args.device, args.max_image_pixels)
    app.try_load_default_model()  # at launch, so the first photo is quick and errors show at once
    demo = build_demo(app)
    # Heavy jobs run one at a time (``HEAVY``); previews two at a time; beyond ``queue_size``
    # waiting requests a new one is refused with "queue full" instead of piling up in memory.
    demo.queue(max_size=args.queue_size, default_concurrency_limit=2)
    launch = launch_options(args.host, args.port, allowed_paths=[EXAMPLES_DIR])  # nothing else is served
    if args.share:
        try:
            demo.launch(share=True, **launch)
            return
        except Exception as e:  # noqa: BLE001 - no internet: keep serving locally
            log.warning("Could not create a share link (%s); serving locally only.", e)
    demo.launch(**launch)


if __name__ == "__main__":
    main()
