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

from refocus.errors import RefocusError
from refocus.io import colorize_disparity, save_depth_png16
from refocus.refocuser import LensSettings, focus_point, shape_choices
from refocus.server import RefocusApp, Session, launch_options, limit_malloc_arenas, parse_args

log = logging.getLogger("refocus.app")

SESSION_TTL_S = 3600  # a tab left open for an hour forgets its photo (its files stay on disk)
# Depth passes and full-resolution renders run one at a time ("gpu" concurrency group): a 50 MP
# render peaks at about 5.3 GB of RSS on the CPU (measured, see README "Limits and hardening"),
# so two at once would already take half of a 24 GB machine. Previews are small and run beside.
HEAVY = dict(concurrency_id="gpu", concurrency_limit=1)
EXAMPLES_DIR = Path(__file__).parent / "examples"
NO_PHOTO = "Upload a photo first, then click where it should be sharp."


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


def lens_settings(f_number, shape, highlight_boost, highlight_threshold, focus_range) -> LensSettings:
    """The lens controls, in the order of the UI's ``controls`` list or as an API client sends them.

    ``LensSettings`` checks them (a bad value raises ``RefocusError`` before any work is done).
    """
    return LensSettings(
        f_number=f_number,
        shape=shape,
        highlight_boost=highlight_boost,
        highlight_threshold=highlight_threshold,
        focus_range=focus_range,
    )


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
        """The preview outputs: the preview with its focus marker, the before/after pair, status."""
        prepared, preview = app.render_preview(session, settings)
        scale = prepared.preview_scale
        marked = draw_focus_marker(preview, (session.focus[0] * scale, session.focus[1] * scale))
        return marked, (as_uint8(prepared.preview), as_uint8(preview)), app.status_line(session.model, session.timings)

    @user_errors
    def on_photo(path, model, depth_path, depth_kind, f_number, shape, boost, threshold, focus_range, progress=gr.Progress()):
        if not path:
            return None, None, None, None, None, None, app.status_line(model)
        progress(0.1, desc="Estimating depth (once per photo)…")
        session = Session(path, model, depth_path, depth_kind or "disparity")
        prepared = app.prepared(session)
        session.focus = (prepared.width / 2, prepared.height / 2)
        progress(0.8, desc="Rendering preview…")
        marked, pair, status = show(session, lens_settings(f_number, shape, boost, threshold, focus_range))
        depth_file = save_depth_png16(app.outputs.new_file(Path(path).stem + "-depth16.png"), prepared.depth.disparity)
        return session, marked, pair, colorize_disparity(prepared.preview_disparity), str(depth_file), None, status

    @user_errors
    def on_click(session, f_number, shape, boost, threshold, focus_range, evt: gr.SelectData):
        """A click on the photo or on the preview: focus there."""
        if not session:
            raise gr.Error(NO_PHOTO)
        x, y = evt.index
        # The preview is smaller than the photo; the focus is kept in the photo's pixels.
        scale = app.prepared(session).preview_scale if evt.target is result else 1.0
        session = dataclasses.replace(session, focus=(float(x) / scale, float(y) / scale))
        return session, *show(session, lens_settings(f_number, shape, boost, threshold, focus_range))

    @user_errors
    def on_controls(session, f_number, shape, boost, threshold, focus_range):
        if not session:
            return gr.skip(), gr.skip(), app.status_line()
        return show(session, lens_settings(f_number, shape, boost, threshold, focus_range))

    @user_errors
    def on_full_resolution(session, f_number, shape, boost, threshold, focus_range, progress=gr.Progress()):
        if not session:
            raise gr.Error("Upload a photo first.")
        progress(0.1, desc="Rendering at full resolution…")
        settings = lens_settings(f_number, shape, boost, threshold, focus_range)
        name = Path(session.path).stem + "-refocused.png"
        prepared = app.prepared(session)
        path = app.render_full(session.path, prepared, session.model, session.focus, settings, name, session.timings)
        return str(path), app.status_line(session.model, session.timings)

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
                f_number = gr.Slider(1.0, 22.0, value=2.8, step=0.1, label="Aperture (f-number): smaller = more blur")
                shape = gr.Radio(shape_choices(), value="disc", label="Bokeh shape")
                with gr.Accordion("More lens controls", open=False):
                    focus_range = gr.Slider(0.0, 1.0, value=0.0, step=0.01, label="Focus range (depth band kept sharp)")
                    highlight_boost = gr.Slider(0.0, 4.0, value=0.0, step=0.1, label="Highlight boost (0 = physical)")
                    highlight_threshold = gr.Slider(0.5, 1.0, value=0.9, step=0.01, label="Highlight threshold")
                with gr.Accordion("Depth", open=False):
                    model = gr.Dropdown(
                        [(app.model_label(m), m) for m in app.model_choices],
                        value=app.default_model,
                        label="Depth model (licence)",
                    )
                    depth_upload = gr.File(
                        label="Or use your own depth map (PNG, TIFF or .npy)",
                        file_types=[".png", ".tif", ".tiff", ".npy"],
                        elem_id="depth-upload",
                    )
                    depth_kind = gr.Radio(
                        [("Disparity (bright = near)", "disparity"), ("Depth (bright = far)", "depth")],
                        value="disparity",
                        label="The map holds",
                    )
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
                with gr.Row():
                    render_button = gr.Button("Render full resolution", variant="primary")
                    full_file = gr.File(label="Refocused photo (full-resolution PNG)")
                    depth_file = gr.File(label="Depth map (16-bit PNG)")
                status = gr.Markdown(app.status_line())
        controls = [f_number, shape, highlight_boost, highlight_threshold, focus_range]

        photo_inputs = [photo, model, depth_upload, depth_kind, *controls]
        photo_outputs = [state, result, compare, depth_view, depth_file, full_file, status]
        # .change covers upload, paste, webcam, clear and the examples.
        for event in (photo.change, model.change, depth_upload.change, depth_kind.change):
            event(on_photo, photo_inputs, photo_outputs, api_visibility="private", trigger_mode="always_last", **HEAVY)
        for clickable in (photo, result):
            clickable.select(on_click, [state, *controls], [state, result, compare, status], api_visibility="private")
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
            on_full_resolution, [state, *controls], [full_file, status], api_visibility="private", **HEAVY
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
        depth_kind: str = "disparity",
    ) -> tuple[FileData, dict]:
        """Refocus a photo at pixel (x, y); returns the full-resolution PNG and the lens details.

        shape is one of disc, 5-blade, 6-blade, 8-blade, cats-eye, ring. depth_map (optional) is a
        PNG/TIFF/.npy depth map used instead of the network; depth_kind says whether it holds
        disparity (larger = nearer) or depth (larger = farther).
        """
        # Every argument is checked before the depth pass, so a bad request costs nothing.
        settings = lens_settings(f_number, shape, highlight_boost, highlight_threshold, focus_range)
        focus = focus_point((x, y))
        image_path = file_path(image, "image")
        depth_path = file_path(depth_map, "depth_map") if depth_map else None
        photo = app.load(image_path)  # decoded once for both the depth pass and the render
        prepared = app.prepare(photo, None, depth_path, depth_kind)
        start = time.perf_counter()
        path = app.render_full(photo, prepared, None, focus, settings, Path(image_path).stem + "-refocused.png")
        details = {
            "width": prepared.width,
            "height": prepared.height,
            "focus": list(focus),
            "f_number": settings.f_number,
            "model": app.default_model if depth_path is None else "user depth map",
            "render_seconds": round(time.perf_counter() - start, 3),
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
