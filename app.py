"""refocus: the Gradio app. Drop in a photo, click what should be sharp, choose the aperture.

Layout and event wiring only; every computation lives in the ``refocus`` library, which the
CLI uses too, and the server's state, status, output files and launch options live in
``refocus.server``. ``build_demo`` builds the UI without loading any model (tests import it);
``python app.py`` launches it.

No ``from __future__ import annotations`` here: ``gr.api`` reads the endpoints' type hints at
runtime to describe the API, and string annotations would hide the return types.
"""


import dataclasses
import functools
import logging
import time
from pathlib import Path
from typing import Callable

import cv2
import gradio as gr
import numpy as np
from gradio import FileData

from refocus.animate import ANIMATION_EXTENSIONS, MAX_FRAMES, FocusPull
from refocus.errors import RefocusError
from refocus.focus import FocusTarget, fit_focus_plane
from refocus.io import DEFAULT_JPEG_QUALITY, colorize_disparity, save_depth_png16
from refocus.presets import load_preset, save_preset
from refocus.refocuser import LensSettings, as_number, focus_point, shape_choices
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
# Depth passes and full-resolution renders run one at a time ("gpu" concurrency group): a 50 MP
# render peaks at about 5.3 GB of RSS on the CPU (measured, see README "Limits and hardening"),
# so two at once would already take half of a 24 GB machine. Previews are small and run beside.
HEAVY = dict(concurrency_id="gpu", concurrency_limit=1)
EXAMPLES_DIR = Path(__file__).parent / "examples"
NO_PHOTO = "Upload a photo first, then click where it should be sharp."
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


def user_errors(fn: Callable) -> Callable:
    """Show ``RefocusError`` messages to the user; log anything else and show a short sentence.

    A stack trace never reaches the browser or an API client.
    """

    @functools.wraps(fn)
    def wrapper(*args, **kwargs):
        try:
            return fn(*args, **kwargs)
        except gr.Error:
            raise
        except RefocusError as e:
            raise gr.Error(str(e), print_exception=False) from None
        except Exception as e:  # noqa: BLE001
            log.exception("Unexpected error in %s", fn.__name__)
            raise gr.Error(f"Something went wrong ({type(e).__name__}); the server log has details.") from None

    return wrapper


def as_uint8(image: np.ndarray) -> np.ndarray:
    """float32 sRGB in [0, 1] -> uint8, as the image components show it."""
    return np.clip(np.rint(image * 255), 0, 255).astype(np.uint8)


def draw_focus_marker(image: np.ndarray, xy: tuple[float, float]) -> np.ndarray:
    """uint8 copy of float32 sRGB ``image`` with a ring around pixel ``xy`` (the focus point)."""
    out = as_uint8(image)
    radius = max(6, round(0.02 * max(out.shape[:2])))
    centre = (round(xy[0]), round(xy[1]))
    cv2.circle(out, centre, radius + 1, (0, 0, 0), 3, cv2.LINE_AA)
    cv2.circle(out, centre, radius, (255, 255, 255), 2, cv2.LINE_AA)
    return out


def draw_markers(image: np.ndarray, session: Session, scale: float) -> np.ndarray:
    """uint8 copy of the preview ``image`` with the session's points marked (photo pixels x ``scale``).

    The focus ring (or the three focal-plane points), and the focus pull's A and B.
    """
    if len(session.plane_points) == 3:
        out = as_uint8(image)
    else:
        out = draw_focus_marker(image, (session.focus[0] * scale, session.focus[1] * scale))
    radius = max(4, round(0.012 * max(out.shape[:2])))
    labelled = [(str(i + 1), p, MARKER_COLOURS["plane"]) for i, p in enumerate(session.plane_points)]
    labelled += [(name, p, MARKER_COLOURS[name]) for name, p in (("A", session.pull_from), ("B", session.pull_to)) if p]
    for label, (x, y), colour in labelled:
        centre = (round(x * scale), round(y * scale))
        cv2.circle(out, centre, radius, colour, -1, cv2.LINE_AA)
        cv2.putText(out, label, (centre[0] + radius + 2, centre[1] + radius), cv2.FONT_HERSHEY_SIMPLEX,
                    radius / 10, colour, max(1, radius // 4), cv2.LINE_AA)  # fmt: skip
    return out


def lens_settings(
    f_number, shape, highlight_boost, highlight_threshold, focus_range, focus_falloff=0.0
) -> LensSettings:
    """The lens controls, in the order of the UI's ``controls`` list or as an API client sends them.

    ``LensSettings`` checks them (a bad value raises ``RefocusError`` before any work is done).
    """
    return LensSettings(
        f_number=f_number,
        shape=shape,
        highlight_boost=highlight_boost,
        highlight_threshold=highlight_threshold,
        focus_range=focus_range,
        focus_falloff=focus_falloff,
    )


def lens_values(settings: LensSettings) -> list:
    """``settings`` as values for the UI's ``controls`` list (the inverse of ``lens_settings``)."""
    return [settings.f_number, settings.shape, settings.highlight_boost, settings.highlight_threshold,
            settings.focus_range, settings.focus_falloff]  # fmt: skip


def file_path(file: FileData | dict | str | None, name: str) -> str:
    """The server-side path of an uploaded file (gradio_client's ``handle_file``)."""
    path = file.get("path") if isinstance(file, dict) else getattr(file, "path", None)
    if not path:
        raise RefocusError(f"No {name} file was sent; upload one with gradio_client.handle_file(...).")
    return path


def build_demo(app: RefocusApp | None = None) -> gr.Blocks:
    """Build the Blocks UI around ``app`` (a default ``RefocusApp`` if None). Loads no model."""
    app = app or RefocusApp()

    # -- the UI's events: the session is a small ``Session`` (paths, focus, cache key, its own
    # -- timings); the arrays live in the shared, byte-bounded caches of the Refocuser.

    def show(session: Session, settings: LensSettings):
        """The preview outputs: the preview with its markers, the before/after pair, status (with the depth)."""
        prepared, preview = app.render_preview(session, settings)
        marked = draw_markers(preview, session, prepared.preview_scale)
        status = f"{app.depth_line(prepared)} · {app.status_line(session.model, session.timings)}"
        return marked, (as_uint8(prepared.preview), as_uint8(preview)), status

    @user_errors
    def on_photo(session, path, model, depth_path, depth_kind, depth_unit, depth_source, f_number, shape, boost,
                 threshold, focus_range, falloff, progress=gr.Progress()):  # fmt: skip
        depth = dict(model=model, depth_path=depth_path, depth_kind=depth_kind or "auto",
                     depth_unit=depth_unit or None, depth_source=depth_source or "auto")  # fmt: skip
        if session and path and Path(path).name == session.shown_name:
            path = session.path  # the photo box shows our JPEG copy of a HEIC; the photo is still the HEIC
            if all(getattr(session, name) == value for name, value in depth.items()):
                return (gr.skip(),) * 9  # the copy arriving in the photo box: nothing changed
        if not path:
            return None, None, None, None, None, None, app.status_line(model), gr.skip(), gr.skip()
        progress(0.1, desc="Estimating depth (once per photo)…")
        shown = f_number_update = gr.skip()
        if session and path == session.path:  # a depth option changed: the focus and picked points stay
            session = dataclasses.replace(session, key=None, **depth)
            prepared = app.prepared(session)
        else:
            photo = app.load(path)
            session = Session(path, **depth)
            prepared = app.prepared(session, photo)
            session.focus = (prepared.width / 2, prepared.height / 2)
            if photo.simulated_f_number is not None:  # start at the aperture the phone's portrait mode used
                f_number = f_number_update = photo.simulated_f_number
            if browser_copy_needed(path):  # HEIC, TIFF: browsers cannot show them, so show a JPEG copy
                shown = str(app.browser_copy(photo, Path(path).stem))
                session.shown_name = Path(shown).name
        progress(0.8, desc="Rendering preview…")
        marked, pair, status = show(session, lens_settings(f_number, shape, boost, threshold, focus_range, falloff))
        depth_file = save_depth_png16(app.outputs.new_file(Path(path).stem + "-depth16.png"), prepared.depth.disparity)
        depth_view_image = colorize_disparity(prepared.preview_disparity)
        return session, marked, pair, depth_view_image, str(depth_file), None, status, f_number_update, shown

    @user_errors
    def on_click(session, click_mode, f_number, shape, boost, threshold, focus_range, falloff, evt: gr.SelectData):
        """A click on the photo or on the preview: focus there (or pick a pull or plane point)."""
        if not session:
            raise gr.Error(NO_PHOTO)
        x, y = evt.index
        # The preview is smaller than the photo; the focus is kept in the photo's pixels.
        scale = app.prepared(session).preview_scale if evt.target is result else 1.0
        session = pick_point(session, click_mode, (float(x) / scale, float(y) / scale))
        return session, *show(session, lens_settings(f_number, shape, boost, threshold, focus_range, falloff))

    @user_errors
    def on_controls(session, f_number, shape, boost, threshold, focus_range, falloff):
        if not session:
            return gr.skip(), gr.skip(), app.status_line()
        return show(session, lens_settings(f_number, shape, boost, threshold, focus_range, falloff))

    @user_errors
    def on_full_resolution(session, f_number, shape, boost, threshold, focus_range, falloff, file_format, quality,
                           keep_gps, progress=gr.Progress()):  # fmt: skip
        if not session:
            raise gr.Error("Upload a photo first.")
        progress(0.1, desc="Rendering at full resolution…")
        settings = lens_settings(f_number, shape, boost, threshold, focus_range, falloff)
        name = Path(session.path).stem + "-refocused." + ("jpg" if file_format == "jpeg" else "png")
        prepared = app.prepared(session)
        path = app.render_full(session.path, prepared, session.model, session.focus, settings, name, session.timings,
                               focus_plane=app.focus_plane(session), jpeg_quality=int(quality),
                               keep_gps=bool(keep_gps))  # fmt: skip
        return str(path), app.status_line(session.model, session.timings)

    # -- focus pull and presets: their own events, beside the ones above ---------------------

    @user_errors
    def on_focus_pull(session, frames, fps, file_format, f_number, shape, boost, threshold, focus_range, falloff,
                      progress=gr.Progress()):  # fmt: skip
        if not session:
            raise gr.Error(NO_PHOTO)
        if session.pull_to is None:
            raise gr.Error("Pick where the focus pull ends: choose \"Focus pull: end (B)\" and click the photo.")
        pull = FocusPull((session.pull_from or session.focus, session.pull_to), frames=frames)
        settings = lens_settings(f_number, shape, boost, threshold, focus_range, falloff)
        name = f"{Path(session.path).stem}-focus-pull.{file_format}"
        def frame_done(done: int, total: int) -> None:
            progress((done, total), desc="Rendering frames…")

        path = app.render_focus_pull(session.path, app.prepared(session), session.model, pull, settings, name,
                                     fps=fps, progress=frame_done)  # fmt: skip
        playable = str(path) if path.suffix in (".mp4", ".webm") else None  # a GIF or WebP is a download only
        return playable, str(path)

    @user_errors
    def on_save_preset(f_number, shape, boost, threshold, focus_range, falloff):
        settings = lens_settings(f_number, shape, boost, threshold, focus_range, falloff)
        return str(save_preset(app.outputs.new_file("refocus-preset.json"), settings))

    @user_errors
    def on_load_preset(preset_path):
        return lens_values(load_preset(preset_path))

    # -- layout ------------------------------------------------------------------------------

    with gr.Blocks(title="refocus: click to focus, choose the aperture", delete_cache=(3600, 7200)) as demo:
        gr.Markdown(
            "# refocus\nDrop in a photo, **click what should be sharp**, then choose the aperture. "
            "Depth is estimated once per photo; refocusing after that is instant."
        )
        state = gr.State(None, time_to_live=SESSION_TTL_S)
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
                f_number = gr.Slider(1.0, 22.0, value=2.8, step=0.1, label="Aperture (f-number): smaller = more blur")
                shape = gr.Radio(shape_choices(), value="disc", label="Bokeh shape")
                with gr.Accordion("More lens controls", open=False):
                    focus_range = gr.Slider(0.0, 1.0, value=0.0, step=0.01, label="Focus range (depth band kept sharp)")
                    focus_falloff = gr.Slider(
                        0.0, 1.0, value=0.0, step=0.01, label="Focus falloff (how gradually blur grows; 0 = real lens)"
                    )
                    highlight_boost = gr.Slider(0.0, 4.0, value=0.0, step=0.1, label="Highlight boost (0 = physical)")
                    highlight_threshold = gr.Slider(0.5, 1.0, value=0.9, step=0.01, label="Highlight threshold")
                with gr.Accordion("Depth", open=False):
                    model = gr.Dropdown(
                        [(app.model_label(m), m) for m in app.model_choices],
                        value=app.default_model,
                        label="Depth model (licence)",
                    )
                    depth_source = gr.Radio(
                        DEPTH_SOURCE_CHOICES, value="auto", label="Depth from", elem_id="depth-source"
                    )
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
                    with gr.Tab("Depth"):
                        depth_view = gr.Image(label="Depth (bright = near)", interactive=False)
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
                    render_button = gr.Button("Render full resolution", variant="primary")
                    full_file = gr.File(label="Refocused photo (full-resolution PNG)")
                    depth_file = gr.File(label="Depth map (16-bit PNG)")
                with gr.Accordion("Download format", open=False):
                    with gr.Row():
                        file_format = gr.Radio([("PNG", "png"), ("JPEG", "jpeg")], value="png", label="Format")
                        jpeg_quality = gr.Slider(1, 100, value=DEFAULT_JPEG_QUALITY, step=1, label="JPEG quality")
                        keep_gps = gr.Checkbox(False, label="Keep the GPS position (where the photo was taken)")
                status = gr.Markdown(app.status_line())
        controls = [f_number, shape, highlight_boost, highlight_threshold, focus_range, focus_falloff]

        photo_inputs = [state, photo, model, depth_upload, depth_kind, depth_unit, depth_source, *controls]
        photo_outputs = [state, result, compare, depth_view, depth_file, full_file, status, f_number, photo]
        # .change covers upload, paste, webcam, clear and the examples.
        for event in (photo.change, model.change, depth_upload.change, depth_kind.change, depth_unit.change,
                      depth_source.change):  # fmt: skip
            event(on_photo, photo_inputs, photo_outputs, api_visibility="private", trigger_mode="always_last", **HEAVY)
        for clickable in (photo, result):
            clickable.select(
                on_click, [state, click_mode, *controls], [state, result, compare, status], api_visibility="private"
            )
        for control in controls:
            trigger = control.release if isinstance(control, gr.Slider) else control.change
            trigger(
                on_controls,
                [state, *controls],
                [result, compare, status],
                api_visibility="private",
                trigger_mode="always_last",
            )
        render_button.click(
            on_full_resolution,
            [state, *controls, file_format, jpeg_quality, keep_gps],
            [full_file, status],
            api_visibility="private",
            **HEAVY,
        )
        pull_button.click(
            on_focus_pull,
            [state, pull_frames, pull_fps, pull_format, *controls],
            [pull_video, pull_file],
            api_visibility="private",
            **HEAVY,
        )
        save_preset_button.click(on_save_preset, controls, [preset_file], api_visibility="private")
        load_preset_button.upload(on_load_preset, [load_preset_button], controls, api_visibility="private").then(
            on_controls, [state, *controls], [result, compare, status], api_visibility="private"
        )
        gr.Examples(
            [[str(p)] for p in sorted(EXAMPLES_DIR.glob("*.jpg"))],
            inputs=[photo],
            label="Example photos (click one, then click on it to focus)",
        )

        add_api(app)
    return demo


def add_api(app: RefocusApp) -> None:
    """The public API (``gradio_client``), coordinates in original-image pixels; call inside the Blocks."""

    def lens_or_preset(preset: FileData | None, *lens) -> LensSettings:
        """The preset's settings when one is sent (they replace the lens arguments), else the arguments."""
        return load_preset(file_path(preset, "preset")) if preset else lens_settings(*lens)

    def prepare_request(image: FileData, depth_map, depth_kind, depth_unit, depth_source):
        """Decode the photo once (for depth and render) and prepare its depth: (path, photo, prepared)."""
        image_path = file_path(image, "image")
        depth_path = file_path(depth_map, "depth_map") if depth_map else None
        photo = app.load(image_path)
        prepared = app.prepare(photo, None, depth_path, depth_kind, depth_unit=depth_unit or None,
                               depth_source=depth_source)  # fmt: skip
        return image_path, photo, prepared

    def points(text: str, prepared) -> list[tuple[float, float]]:
        """``"X1,Y1 X2,Y2 ..."`` (pixels or percent) as (x, y) pixels of the prepared photo."""
        return [FocusTarget.parse(point).point_in(prepared.depth.disparity) for point in str(text).split()]

    @user_errors
    def refocus_api(
        image: FileData,
        x: float,
        y: float,
        f_number: float = 2.8,
        shape: str = "disc",
        highlight_boost: float = 0.0,
        highlight_threshold: float = 0.9,
        focus_range: float = 0.0,
        depth_map: FileData | None = None,
        depth_kind: str = "auto",
        depth_unit: str = "",
        depth_source: str = "auto",
        focus_falloff: float = 0.0,
        focus_plane: str = "",
        output_format: str = "png",
        jpeg_quality: int = DEFAULT_JPEG_QUALITY,
        keep_gps: bool = False,
        preset: FileData | None = None,
    ) -> tuple[FileData, dict]:
        """Refocus a photo at pixel (x, y); returns the full-resolution image and the lens details.

        shape is one of disc, 5-blade, 6-blade, 8-blade, cats-eye, ring. depth_map (optional) is a
        PNG/TIFF/.npy depth map used instead of the network; depth_kind says what it holds: auto,
        disparity (larger = nearer), depth (larger = farther) or metric (depth in depth_unit: m,
        cm, mm or metres per value such as 1/256; default mm). depth_source: auto (the map, else
        the photo's own depth, else the model), embedded or model. focus_plane "X1,Y1 X2,Y2 X3,Y3"
        keeps the plane through three points sharp instead of (x, y). output_format png or jpeg
        (jpeg_quality 1-100); the photo's colour profile and EXIF are kept, GPS only with
        keep_gps. preset (a JSON file saved by the app or the CLI) replaces the lens arguments.
        details["depth_source"] says where the depth came from.
        """
        # Every argument is checked before the depth pass, so a bad request costs nothing.
        settings = lens_or_preset(preset, f_number, shape, highlight_boost, highlight_threshold, focus_range,
                                  focus_falloff)  # fmt: skip
        focus = focus_point((x, y))
        if output_format not in ("png", "jpeg"):
            raise RefocusError(f"The output format must be png or jpeg, got {str(output_format)[:40]!r}.")
        image_path, photo, prepared = prepare_request(image, depth_map, depth_kind, depth_unit, depth_source)
        plane = fit_focus_plane(prepared.depth.disparity, points(focus_plane, prepared)) if focus_plane else None
        start = time.perf_counter()
        name = Path(image_path).stem + "-refocused." + ("jpg" if output_format == "jpeg" else "png")
        quality = int(as_number("JPEG quality", jpeg_quality))
        path = app.render_full(photo, prepared, None, focus, settings, name, focus_plane=plane, jpeg_quality=quality,
                               keep_gps=bool(keep_gps))  # fmt: skip
        source = prepared.depth_source
        details = {
            "width": prepared.width,
            "height": prepared.height,
            "focus": list(focus),
            "f_number": settings.f_number,
            "model": source.removeprefix("model:") if source.startswith("model:") else None,
            "depth_source": source,
            "render_seconds": round(time.perf_counter() - start, 3),
        }
        return FileData(path=str(path), orig_name=path.name), details

    @user_errors
    def animate_api(
        image: FileData,
        x_from: float,
        y_from: float,
        x_to: float,
        y_to: float,
        frames: int = 24,
        f_number: float = 2.8,
        shape: str = "disc",
        depth_map: FileData | None = None,
        depth_kind: str = "auto",
        depth_unit: str = "",
        depth_source: str = "auto",
        output_format: str = "mp4",
        fps: float = 12.0,
        easing: str = "ease-in-out",
        f_number_to: float | None = None,
        focus_range: float = 0.0,
        focus_falloff: float = 0.0,
        preset: FileData | None = None,
    ) -> tuple[FileData, dict]:
        """A focus pull from (x_from, y_from) to (x_to, y_to): a video at the preview's size (long edge 1024).

        frames 2-1000 at fps; output_format mp4 (H.264), webm, gif or webp; easing linear,
        ease-in-out, ease-in or ease-out; f_number_to ramps the aperture. depth_* and preset as
        for /refocus. Returns the animation and details (frames, size, depth_source, seconds).
        """
        settings = lens_or_preset(preset, f_number, shape, 0.0, 0.9, focus_range, focus_falloff)
        pull = FocusPull(((x_from, y_from), (x_to, y_to)), frames=frames, easing=easing, f_number_to=f_number_to)
        if "." + str(output_format) not in ANIMATION_EXTENSIONS:
            raise RefocusError(f"The output format must be one of {', '.join(e[1:] for e in ANIMATION_EXTENSIONS)}.")
        image_path, photo, prepared = prepare_request(image, depth_map, depth_kind, depth_unit, depth_source)
        start = time.perf_counter()
        name = f"{Path(image_path).stem}-focus-pull.{output_format}"
        path = app.render_focus_pull(photo, prepared, None, pull, settings, name, fps=fps)
        details = {
            "frames": pull.frames,
            "width": prepared.preview.shape[1],
            "height": prepared.preview.shape[0],
            "depth_source": prepared.depth_source,
            "seconds": round(time.perf_counter() - start, 3),
        }
        return FileData(path=str(path), orig_name=path.name), details

    @user_errors
    def depth_api(image: FileData) -> FileData:
        """Depth of a photo as a 16-bit grey PNG at the photo's size (brighter = nearer)."""
        prepared = app.prepare(file_path(image, "image"), None)
        path = save_depth_png16(app.outputs.new_file("depth16.png"), prepared.depth.disparity)
        return FileData(path=str(path), orig_name=path.name)

    def status_api() -> dict:
        """Model, device, whether CUDA is available, the server's last timings, and versions."""
        return app.status()

    gr.api(refocus_api, api_name="refocus", **HEAVY)
    gr.api(depth_api, api_name="depth", **HEAVY)
    gr.api(animate_api, api_name="animate", **HEAVY)
    gr.api(status_api, api_name="status", queue=False)


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
