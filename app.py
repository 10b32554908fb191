"""refocus: the Gradio app. Drop in a photo, click what should be sharp, choose the aperture.

Layout and event wiring only; every computation lives in the ``refocus`` library, which the
CLI uses too. ``build_demo`` builds the UI without loading any model (tests import it);
``python app.py`` launches it.

No ``from __future__ import annotations`` here: ``gr.api`` reads the endpoints' type hints at
runtime to describe the API, and string annotations would hide the return types.
"""


import argparse
import atexit
import ctypes
import functools
import logging
import os
import platform
import shutil
import tempfile
import time
from pathlib import Path
from typing import Any, Callable

import cv2
import gradio as gr
import numpy as np
from gradio import FileData

import refocus
from refocus.depth import DEFAULT_MODEL, MODELS, ModelInfo
from refocus.errors import RefocusError
from refocus.io import DEFAULT_MAX_BYTES, DEFAULT_MAX_PIXELS, Photo, colorize_disparity, load_depth_map, load_photo, save_depth_png16, save_png
from refocus.refocuser import SHAPES, LensSettings, PreparedPhoto, Refocuser, focus_point

log = logging.getLogger("refocus.app")

try:  # On a ZeroGPU Space, GPU work must run inside functions decorated with spaces.GPU.
    import spaces

    gpu_task: Callable = spaces.GPU(duration=60)
except ImportError:
    gpu_task = lambda fn: fn  # noqa: E731

SHAPE_LABELS = [
    ("Disc (round aperture)", "disc"),
    ("5 blades", "5-blade"),
    ("6 blades", "6-blade"),
    ("8 blades", "8-blade"),
    ("Cat's eye (vignetted)", "cats-eye"),
    ("Ring (mirror lens)", "ring"),
]
SESSION_TTL_S = 3600  # a tab left open for an hour forgets its photo (its files stay on disk)
# Gradio copies every returned file into its own cache (which ``delete_cache`` empties), so our
# copy under ``RefocusApp.out_dir`` is needed only until the response is sent; older ones go.
OUTPUT_TTL_S = 600
# Depth passes and full-resolution renders run one at a time ("gpu" concurrency group): a 50 MP
# render peaks at about 5.3 GB of RSS on the CPU (measured, see README "Limits and hardening"),
# so two at once would already take half of a 24 GB machine. Previews are small and run beside.
HEAVY = dict(concurrency_id="gpu", concurrency_limit=1)
EXAMPLES_DIR = Path(__file__).parent / "examples"


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


def draw_focus_marker(image: np.ndarray, xy: tuple[float, float]) -> np.ndarray:
    """uint8 copy of float32 sRGB ``image`` with a ring around pixel ``xy`` (the focus point)."""
    out = np.clip(np.rint(image * 255), 0, 255).astype(np.uint8)
    radius = max(6, round(0.02 * max(out.shape[:2])))
    centre = (round(xy[0]), round(xy[1]))
    cv2.circle(out, centre, radius + 1, (0, 0, 0), 3, cv2.LINE_AA)
    cv2.circle(out, centre, radius, (255, 255, 255), 2, cv2.LINE_AA)
    return out


class RefocusApp:
    """The app's state shared by all sessions: one ``Refocuser`` per depth model, an output folder.

    Args:
        model_spec: the depth model chosen at launch (alias, hub id or local directory).
        device: "cpu", "cuda" or None (automatic).
        max_image_pixels: uploads above this are refused.
        model_choices: the models users may pick in the UI (the operator's list; API callers can
            never name a path on the server).
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
        self._cache_bytes = cache_bytes
        self._refocusers: dict[str, Refocuser] = {}
        self.out_dir = Path(tempfile.mkdtemp(prefix="refocus-"))
        atexit.register(shutil.rmtree, self.out_dir, ignore_errors=True)
        self.model_error: str | None = None

    def refocuser(self, model: str | None = None) -> Refocuser:
        model = model or self.default_model
        if model not in self.model_choices:
            raise RefocusError(f"Unknown depth model {model!r}; choose one of {', '.join(self.model_choices)}.")
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

    def model_label(self, model: str) -> str:
        """The model's name with its licence, as the UI shows it."""
        info = model_info(model)
        return f"{model} ({info.licence})" if info else model

    # -- the library calls every face shares -------------------------------------------------

    def load(self, image_path: str) -> Photo:
        return load_photo(image_path, max_pixels=self.max_image_pixels)

    @gpu_task
    def prepare(
        self,
        image: str | Photo,
        model: str | None,
        depth_map_path: str | None = None,
        depth_kind: str = "disparity",
    ) -> PreparedPhoto:
        """Depth and preview of a photo (a path, or a ``Photo`` the caller already decoded)."""
        photo = image if isinstance(image, Photo) else self.load(image)
        depth_map = None
        if depth_map_path:
            depth_map = load_depth_map(depth_map_path, (photo.width, photo.height), depth_kind)
        return self.refocuser(model).prepare(photo, depth_map)

    @gpu_task
    def render_full(
        self, image: str | Photo, prepared: PreparedPhoto, model: str | None, focus_xy, settings: LensSettings, name: str
    ) -> Path:
        """Render at full resolution into a new PNG named ``name``; returns its path."""
        photo = image if isinstance(image, Photo) else self.load(image)
        rendered = self.refocuser(model).render_full(photo, prepared, focus_xy, settings)
        return save_png(self.new_file(name), rendered)

    def new_file(self, name: str) -> Path:
        """A fresh path for an output file; outputs older than ``OUTPUT_TTL_S`` are removed."""
        self.remove_old_outputs()
        folder = Path(tempfile.mkdtemp(dir=self.out_dir))
        return folder / name

    def remove_old_outputs(self, max_age_s: float = OUTPUT_TTL_S) -> None:
        cutoff = time.time() - max_age_s
        for folder in self.out_dir.iterdir():
            try:
                if folder.stat().st_mtime < cutoff:
                    shutil.rmtree(folder, ignore_errors=True)
            except FileNotFoundError:  # another request removed it first
                pass

    def status(self, model: str | None = None) -> dict[str, Any]:
        import torch
        import transformers

        model = model or self.default_model
        refocuser = self._refocusers.get(model)
        return {
            "model": model,
            "licence": info.licence if (info := model_info(model)) else None,
            "model_loaded": bool(refocuser and refocuser.model_loaded),
            "model_error": self.model_error if model == self.default_model else None,
            "device": refocuser.model.device if refocuser and refocuser.model_loaded else (self.device or "auto"),
            "cuda_available": torch.cuda.is_available(),
            "last_depth_s": refocuser.timings.depth_s if refocuser else None,
            "last_render_s": refocuser.timings.render_s if refocuser else None,
            "versions": {
                "refocus": refocus.__version__,
                "gradio": gr.__version__,
                "torch": torch.__version__,
                "transformers": transformers.__version__,
                "python": platform.python_version(),
            },
        }

    def status_line(self, model: str | None = None) -> str:
        s = self.status(model)
        parts = [f"**Model** {self.model_label(s['model'])}", f"**device** {s['device']}"]
        if s["last_depth_s"] is not None:
            parts.append(f"depth {s['last_depth_s']:.2f} s")
        if s["last_render_s"] is not None:
            parts.append(f"last render {s['last_render_s'] * 1000:.0f} ms")
        line = " · ".join(parts)
        if s["model_error"]:
            line += f"\n\n⚠️ {s['model_error']} You can still upload a depth map under *Depth*."
        return line


def model_info(model: str) -> ModelInfo | None:
    """The catalogue entry of ``model``, given by alias or by hub id."""
    return MODELS.get(model) or next((m for m in MODELS.values() if m.source == model), None)


def settings_from(f_number, shape, highlight_boost, highlight_threshold, focus_range) -> LensSettings:
    """The lens controls as sent by the UI or an API client; ``LensSettings`` checks them."""
    return LensSettings(
        f_number=f_number,
        shape=shape,
        highlight_boost=highlight_boost,
        highlight_threshold=highlight_threshold,
        focus_range=focus_range,
    )


def build_demo(app: RefocusApp | None = None) -> gr.Blocks:
    """Build the Blocks UI around ``app`` (a default ``RefocusApp`` if None). Loads no model."""
    app = app or RefocusApp()

    # -- session logic: the state is a small dict (paths, key, focus), the arrays live in the
    # -- shared, byte-bounded caches of the Refocuser.

    def prepared_for(state: dict) -> PreparedPhoto:
        # A click must not decode the photo again: look the prepared photo up by its key, and
        # prepare it from the upload only the first time or after the cache evicted it.
        prepared = app.refocuser(state["model"]).prepared.get(state.get("key"))
        if prepared is None:
            prepared = app.prepare(
                state["path"], state["model"], state.get("depth_path"), state.get("depth_kind") or "disparity"
            )
            state["key"] = prepared.key
        return prepared

    def show(state: dict, settings: LensSettings):
        prepared = prepared_for(state)
        refocuser = app.refocuser(state["model"])
        preview = refocuser.render_preview(prepared, state["focus"], settings)
        scale = prepared.preview_scale
        marked = draw_focus_marker(preview, (state["focus"][0] * scale, state["focus"][1] * scale))
        before = np.clip(np.rint(prepared.preview * 255), 0, 255).astype(np.uint8)
        after = np.clip(np.rint(preview * 255), 0, 255).astype(np.uint8)
        return marked, (before, after), app.status_line(state["model"])

    @user_errors
    def on_photo(path, model, depth_path, depth_kind, f_number, shape, boost, threshold, focus_range, progress=gr.Progress()):
        if not path:
            return None, None, None, None, None, None, app.status_line(model)
        progress(0.1, desc="Estimating depth (once per photo)…")
        state = {"path": path, "model": model, "depth_path": depth_path, "depth_kind": depth_kind}
        prepared = prepared_for(state)
        state["focus"] = (prepared.width / 2, prepared.height / 2)
        progress(0.8, desc="Rendering preview…")
        settings = settings_from(f_number, shape, boost, threshold, focus_range)
        marked, pair, status = show(state, settings)
        depth_file = save_depth_png16(app.new_file(Path(path).stem + "-depth16.png"), prepared.depth.disparity)
        depth_view = colorize_disparity(prepared.preview_disparity)
        return state, marked, pair, depth_view, str(depth_file), None, status

    def focus_at(state, x: float, y: float, settings: LensSettings):
        if not state:
            raise gr.Error("Upload a photo first, then click where it should be sharp.")
        state = {**state, "focus": (float(x), float(y))}
        return state, *show(state, settings)

    @user_errors
    def on_photo_click(state, f_number, shape, boost, threshold, focus_range, evt: gr.SelectData):
        x, y = evt.index
        return focus_at(state, x, y, settings_from(f_number, shape, boost, threshold, focus_range))

    @user_errors
    def on_preview_click(state, f_number, shape, boost, threshold, focus_range, evt: gr.SelectData):
        if not state:
            raise gr.Error("Upload a photo first, then click where it should be sharp.")
        scale = prepared_for(state).preview_scale  # the preview is smaller than the photo
        x, y = evt.index
        return focus_at(state, x / scale, y / scale, settings_from(f_number, shape, boost, threshold, focus_range))

    @user_errors
    def on_controls(state, f_number, shape, boost, threshold, focus_range):
        if not state:
            return gr.skip(), gr.skip(), app.status_line()
        return show(state, settings_from(f_number, shape, boost, threshold, focus_range))

    @user_errors
    def on_full_resolution(state, f_number, shape, boost, threshold, focus_range, progress=gr.Progress()):
        if not state:
            raise gr.Error("Upload a photo first.")
        progress(0.1, desc="Rendering at full resolution…")
        prepared = prepared_for(state)
        settings = settings_from(f_number, shape, boost, threshold, focus_range)
        name = Path(state["path"]).stem + "-refocused.png"
        path = app.render_full(state["path"], prepared, state["model"], state["focus"], settings, name)
        return str(path), app.status_line(state["model"])

    # -- the public API (gradio_client): coordinates in original-image pixels ----------------

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
        settings = settings_from(f_number, shape, highlight_boost, highlight_threshold, focus_range)
        focus = focus_point((x, y))
        image_path = _file_path(image, "image")
        depth_path = _file_path(depth_map, "depth_map") if depth_map else None
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
        prepared = app.prepare(_file_path(image, "image"), None)
        path = save_depth_png16(app.new_file("depth16.png"), prepared.depth.disparity)
        return FileData(path=str(path), orig_name=path.name)

    def status_api() -> dict:
        """Model, device, whether CUDA is available, last timings and versions."""
        return app.status()

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
                shape = gr.Radio(SHAPE_LABELS, value="disc", label="Bokeh shape")
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
        view_outputs = [state, result, compare, status]
        photo.select(on_photo_click, [state, *controls], view_outputs, api_visibility="private")
        result.select(on_preview_click, [state, *controls], view_outputs, api_visibility="private")
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

        gr.api(refocus_api, api_name="refocus", **HEAVY)
        gr.api(depth_api, api_name="depth", **HEAVY)
        gr.api(status_api, api_name="status", queue=False)
    return demo


def _file_path(file: FileData | dict | str | None, name: str) -> str:
    """The server-side path of an uploaded file (gradio_client's ``handle_file``)."""
    path = file.get("path") if isinstance(file, dict) else getattr(file, "path", None)
    if not path:
        raise RefocusError(f"No {name} file was sent; upload one with gradio_client.handle_file(...).")
    return path


def parse_args(argv: list[str] | None = None) -> argparse.Namespace:
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


def launch_options(host: str, port: int | None) -> dict[str, Any]:
    """``demo.launch`` keywords: where to listen, and what the server may serve and accept."""
    return dict(
        server_name=host,
        server_port=port,
        allowed_paths=[str(EXAMPLES_DIR)],  # the example photos; nothing else on the server
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
    launch = launch_options(args.host, args.port)
    if args.share:
        try:
            demo.launch(share=True, **launch)
            return
        except Exception as e:  # noqa: BLE001 - no internet: keep serving locally
            log.warning("Could not create a share link (%s); serving locally only.", e)
    demo.launch(**launch)


if __name__ == "__main__":
    main()
