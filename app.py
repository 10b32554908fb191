"""refocus: the Gradio app. Drop in a photo, click what should be sharp, choose the aperture.

Layout and event wiring only, readable top to bottom: what runs on each event is in
``app_handlers``, every computation in the ``refocus`` library (which the CLI uses too), the
server's state, status, output files and launch options in ``refocus.server``, the public API
endpoints in ``app_api`` and the page's own script in ``app_page.js``. ``build_demo`` builds the UI
without loading any model (tests import it); ``python app.py`` launches it.
"""

import logging
from pathlib import Path

import gradio as gr

from app_api import HEAVY, add_api
from app_handlers import Handlers
from refocus.animate import ANIMATION_EXTENSIONS, MAX_FRAMES
from refocus.brush import MODES
from refocus.io import DEFAULT_JPEG_QUALITY
from refocus.refocuser import shape_choices
from refocus.server import CLICK_MODES, SESSION_TTL_S, RefocusApp, launch_options, limit_malloc_arenas, parse_args

log = logging.getLogger("refocus.app")

EXAMPLES_DIR = Path(__file__).parent / "examples"
# The page's own script (clicks, the focus ring, Enter in number boxes): see its opening comment.
PAGE_JS = (Path(__file__).parent / "app_page.js").read_text()
# A click event's inputs with the latest click (recorded by PAGE_JS) in the last, hidden one:
# with trigger_mode="always_last" Gradio re-runs a deferred click with the FIRST click's
# SelectData, but it runs this function again, so the re-run reads the latest position. The click
# is stamped with the page's count of preview events, as STAMP_JS stamps the other preview events
# (the lens controls, undo, redo): the server keeps the lens settings of the latest
# (``app_handlers.newest_settings``), whatever order it starts them in.
LAST_CLICK_JS = (
    "(...inputs) => { const r = window.refocus, c = r && r.click['IMAGE'];"
    " return [...inputs.slice(0, -1), c ? { ...c, stamp: ++r.stamp } : null]; }"
)
STAMP_JS = "(...inputs) => [...inputs.slice(0, -1), window.refocus ? ++window.refocus.stamp : null]"
SHOW_FOCUS_JS = "(marker) => { if (window.refocus) window.refocus.show(marker); return []; }"
# The preview's re-renders (a click, a lens control, undo) show only Gradio's small timer, never
# its "full" cover over the preview: that cover takes the clicks, so a click on the preview while
# one renders (or as its mousedown makes a number box apply its value) would be lost. The long jobs
# (depth, brush, full resolution, focus pull) keep their progress bars.
PREVIEW = {"show_progress": "minimal"}
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


def depth_controls(app: RefocusApp, expanded: bool) -> tuple:
    """The depth source controls, in an accordion open when ``expanded``: the model, the photo's
    own depth, or the user's own map and what it holds: (model, depth source, map upload, map
    kind, map unit)."""
    with gr.Accordion("Depth map", open=expanded):
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


def build_demo(app: RefocusApp | None = None) -> gr.Blocks:
    """Build the Blocks UI around ``app`` (a default ``RefocusApp`` if None). Loads no model."""
    app = app or RefocusApp()
    no_model = app.no_model_notice()
    ui = Handlers(app)  # what runs on each event (``app_handlers``)

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
        stamp = gr.JSON(None, visible=False)  # the page's count of preview events (``STAMP_JS``)
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
                    model, depth_source, depth_upload, depth_kind, depth_unit = depth_controls(app, expanded=True)
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
                    model, depth_source, depth_upload, depth_kind, depth_unit = depth_controls(app, expanded=False)
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
                                label="Depth (bright = near)", interactive=False, elem_id="depth-view", scale=4,
                                format="jpeg",  # Gradio's default WebP encode took 45-80 ms per photo
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

        # -- events: each runs a ``Handlers`` method with these inputs, in this order ----------
        controls = [f_number, shape, highlight_boost, highlight_threshold, focus_range, focus_falloff]
        view = [state, result, compare, full_file, status, marker]  # what ``Handlers.show`` returns
        photo_inputs = [state, photo, model, depth_upload, depth_kind, depth_unit, depth_source, *controls, band]
        photo_outputs = [*view, depth_view, legend, depth_file, depth_upload, zoom, editor, f_number, photo]
        # photo.change covers upload, paste, webcam, clear and the examples; the depth map's
        # upload/clear (not change) so that the photo dropping an old map does not re-run it.
        for event in (photo.change, model.change, depth_upload.upload, depth_upload.clear, depth_kind.input,
                      depth_unit.input, depth_source.input):  # fmt: skip
            event(
                ui.on_photo, photo_inputs, photo_outputs, api_visibility="private", trigger_mode="always_last",
                show_progress_on=[result], **HEAVY,
            ).then(None, [marker], None, js=SHOW_FOCUS_JS).then(
                ui.on_depth_file, [state], [depth_file, legend], api_visibility="private", **HEAVY
            )  # fmt: skip
        # Clicks: the page keeps the latest click (``PAGE_JS``) and each event reads it when it
        # starts, so "always_last" ends on the latest click with at most one render waiting.
        for image in (photo, result):
            image.select(
                ui.on_click, [state, click_mode, *controls, band, click], view,
                js=LAST_CLICK_JS.replace("IMAGE", image.elem_id),
                trigger_mode="always_last", api_visibility="private", show_progress_on=[result], **PREVIEW,
            ).then(None, [marker], None, js=SHOW_FOCUS_JS)  # fmt: skip
        demo.load(None, js=PAGE_JS)
        # A click, a lens control, undo and the brush run at the same time in different listeners;
        # each waits for its tab's earlier ones and starts from the session they left
        # (``app_handlers.in_tab_order``), so a click never loses to the control its mousedown applies;
        # lens settings sent before ones already applied are ignored (``newest_settings``).
        for control in [*controls, band]:
            trigger = control.release if isinstance(control, gr.Slider) else control.input
            trigger(
                ui.on_controls, [state, *controls, band, stamp], view, js=STAMP_JS, api_visibility="private",
                trigger_mode="always_last", **PREVIEW,
            )  # fmt: skip
        for button, handler in [(undo_button, ui.on_undo), (redo_button, ui.on_redo)]:
            button.click(
                handler, [state, band, stamp], [*view, *controls], js=STAMP_JS, api_visibility="private", **PREVIEW
            ).then(None, [marker], None, js=SHOW_FOCUS_JS)
        brush_inputs = [state, editor, brush_mode, brush_strength, brush_softness, *controls, band]
        apply_button.click(ui.on_stroke, brush_inputs, [*view, depth_file, editor], api_visibility="private", **HEAVY)
        for button, keep in [(unstroke_button, "all but last"), (clear_button, "none")]:
            button.click(
                ui.on_strokes, [state, gr.State(keep, time_to_live=SESSION_TTL_S), *controls, band],
                [*view, depth_file, editor], api_visibility="private", **HEAVY,
            )  # fmt: skip
        for trigger in (zoom_tab.select, zoom_button.click):
            trigger(ui.on_zoom, [state, *controls], [zoom], api_visibility="private", trigger_mode="always_last", **HEAVY)
        # A second press while a render runs queues one render of the settings of that moment.
        rendering = render_button.click(
            ui.on_full_resolution, [state, *controls, file_format, jpeg_quality, keep_gps], [full_file, status],
            api_visibility="private", trigger_mode="always_last", **HEAVY,
        )  # fmt: skip
        cancel_button.click(ui.on_cancel, None, None, cancels=[rendering], api_visibility="private", queue=False)
        pull_inputs = [state, pull_frames, pull_fps, pull_format, *controls]
        pull_button.click(ui.on_focus_pull, pull_inputs, [pull_video, pull_file], api_visibility="private", **HEAVY)
        save_preset_button.click(ui.on_save_preset, controls, [preset_file], api_visibility="private")
        load_preset_button.upload(ui.on_load_preset, [load_preset_button], controls, api_visibility="private").then(
            ui.on_controls, [state, *controls, band, stamp], view, js=STAMP_JS, api_visibility="private", **PREVIEW
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
