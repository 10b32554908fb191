"""The app's public API (``gradio_client``), and what the UI shares with it.

``add_api`` adds the named endpoints ``/refocus``, ``/animate``, ``/depth`` and ``/status`` to the
Blocks ``app.build_demo`` builds; coordinates are in original-image pixels. ``user_errors`` turns
a user's mistake into a sentence (never a stack trace), ``lens_settings`` is the one place the
lens controls' values become ``LensSettings``, and ``HEAVY`` is the concurrency group of the work
that must run one at a time.

No ``from __future__ import annotations`` here: ``gr.api`` reads the endpoints' type hints at
runtime to describe the API, and string annotations would hide the return types.
"""

import functools
import logging
import time
from pathlib import Path
from typing import Callable

import gradio as gr
from gradio import FileData

from refocus.animate import ANIMATION_EXTENSIONS, FocusPull
from refocus.brush import Stroke
from refocus.errors import RefocusError
from refocus.focus import FocusTarget, fit_focus_plane
from refocus.io import DEFAULT_JPEG_QUALITY, save_depth_png16
from refocus.presets import load_preset
from refocus.refocuser import LensSettings, as_number, focus_point
from refocus.server import RefocusApp, load_edit_mask, with_strokes

log = logging.getLogger("refocus.app")

# Depth passes and full-resolution renders run one at a time ("gpu" concurrency group): a 50 MP
# render peaks at about 5.3 GB of RSS on the CPU (measured, see README "Limits and hardening"),
# so two at once would already take half of a 24 GB machine. Previews are small and run beside.
HEAVY = dict(concurrency_id="gpu", concurrency_limit=1)


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


def file_path(file: FileData | dict | str | None, name: str) -> str:
    """The server-side path of an uploaded file (gradio_client's ``handle_file``)."""
    path = file.get("path") if isinstance(file, dict) else getattr(file, "path", None)
    if not path:
        raise RefocusError(f"No {name} file was sent; upload one with gradio_client.handle_file(...).")
    return path


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
        disparity, area = prepared.depth.disparity, prepared.subject_area
        return [FocusTarget.parse(point).point_in(disparity, area) for point in str(text).split()]

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
        edit_mask: FileData | None = None,
        edit_mode: str = "keep-sharp",
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
        edit_mask (optional) is an image whose alpha (or grey) marks where the refine brush acts,
        with edit_mode one of keep-sharp, blur, push, pull. details["depth_source"] says where
        the depth came from.
        """
        # Every argument is checked before the depth pass, so a bad request costs nothing.
        settings = lens_or_preset(preset, f_number, shape, highlight_boost, highlight_threshold, focus_range,
                                  focus_falloff)  # fmt: skip
        focus = focus_point((x, y))
        if output_format not in ("png", "jpeg"):
            raise RefocusError(f"The output format must be png or jpeg, got {str(output_format)[:40]!r}.")
        try:
            strokes = (Stroke(load_edit_mask(file_path(edit_mask, "edit_mask")), edit_mode),) if edit_mask else ()
        except ValueError as e:  # a brush mode or mask the brush cannot use
            raise RefocusError(str(e)) from None
        image_path, photo, prepared = prepare_request(image, depth_map, depth_kind, depth_unit, depth_source)
        prepared = with_strokes(prepared, strokes, focus)
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
