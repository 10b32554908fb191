"""Focus-pull animations (rack focus): the focus moves from point A to B, one render per frame.

Depth comes from the prepared photo (computed once); each frame is one render. Focus moves in
disparity, as a focus ring does: a lens's focus ring moves the image plane, and the image
distance of an object is linear in its inverse depth (1/f = 1/z_object + 1/z_image), so equal
ring steps are equal disparity steps. The optional aperture ramp moves in stops (log f-number),
as an aperture ring does.

Frames are encoded by the output's extension: ``.mp4`` (H.264, yuv420p, what browsers and phones
play), ``.webm`` (VP9) through PyAV, whose wheels carry FFmpeg; ``.gif`` and ``.webp``
(animated) through Pillow.
"""

from __future__ import annotations

import dataclasses
import math
import os
from dataclasses import dataclass
from fractions import Fraction
from pathlib import Path
from typing import Callable, Iterable, Iterator

import numpy as np
from PIL import Image

from refocus.errors import RefocusError
from refocus.io import Photo
from refocus.lens import focus_disparity_at
from refocus.refocuser import LensSettings, PreparedPhoto, Refocuser, as_number, focus_point
from refocus.render.reuse import Reuse

EASINGS: dict[str, Callable[[np.ndarray], np.ndarray]] = {
    "linear": lambda t: t,
    "ease-in-out": lambda t: 0.5 - 0.5 * np.cos(np.pi * t),  # starts and stops gently
    "ease-in": lambda t: 1 - np.cos(0.5 * np.pi * t),
    "ease-out": lambda t: np.sin(0.5 * np.pi * t),
}
# Output extension -> (PyAV container format, codec, options). CRF values keep the encoding
# visually lossless for noise-free renders at a few MB per second of 1024 px video.
VIDEO_CODECS: dict[str, tuple[str, str, dict[str, str]]] = {
    ".mp4": ("mp4", "libx264", {"crf": "20", "preset": "medium", "movflags": "+faststart"}),
    ".webm": ("webm", "libvpx-vp9", {"crf": "32", "b": "0", "deadline": "good", "cpu-used": "4"}),
}
PILLOW_FORMATS = {".gif": "GIF", ".webp": "WEBP"}
ANIMATION_EXTENSIONS = (*VIDEO_CODECS, *PILLOW_FORMATS)
MAX_FRAMES = 1000  # 40 s at 25 fps: beyond that a request is a mistake or an attack
FPS_RANGE = (1.0, 60.0)
ProgressCallback = Callable[[int, int], None]  # (frames done, frames in all)


@dataclass(frozen=True)
class FocusPull:
    """A focus pull: where the focus travels, in how many frames, and how.

    Attributes:
        points: two or more (x, y) pixels of the original photo; the focus passes through them
            in order, spending equal time between neighbours.
        frames: number of frames, 2 to ``MAX_FRAMES``.
        easing: a key of ``EASINGS``, applied to the whole pull.
        f_number_to: the f-number at the last frame (an aperture ramp from the settings'
            f-number), or None for a fixed aperture.
    """

    points: tuple[tuple[float, float], ...]
    frames: int = 24
    easing: str = "ease-in-out"
    f_number_to: float | None = None

    def __post_init__(self) -> None:
        points = tuple(focus_point(p) for p in self.points)
        if len(points) < 2:
            raise RefocusError("A focus pull needs at least two focus points (from and to).")
        object.__setattr__(self, "points", points)
        frames = as_number("number of frames", self.frames)  # forms and the API may send "12" or 12.0
        if frames != int(frames):
            raise RefocusError(f"The number of frames must be a whole number, got {frames:g}.")
        if not 2 <= frames <= MAX_FRAMES:
            raise RefocusError(f"The number of frames must be from 2 to {MAX_FRAMES}, got {int(frames)}.")
        object.__setattr__(self, "frames", int(frames))
        if self.easing not in EASINGS:
            raise RefocusError(f"Unknown easing {str(self.easing)[:40]!r}; choose one of {', '.join(EASINGS)}.")
        if self.f_number_to is not None:
            # Checked the same way as the start f-number.
            object.__setattr__(self, "f_number_to", LensSettings(f_number=self.f_number_to).f_number)

    def progress(self) -> np.ndarray:
        """Eased progress along the pull per frame, float64 (frames,) from 0 to 1."""
        return EASINGS[self.easing](np.linspace(0.0, 1.0, self.frames))

    def focus_disparities(self, disparity: np.ndarray) -> np.ndarray:
        """Focus disparity per frame, float64 (frames,), linear in disparity between the points.

        Args:
            disparity: float32 (H, W) of the original photo (the points are in its pixels).
        """
        at_points = [focus_disparity_at(disparity, x, y) for x, y in self.points]
        segments = len(at_points) - 1
        return np.interp(self.progress() * segments, np.arange(segments + 1), at_points)

    def f_numbers(self, f_number: float) -> np.ndarray:
        """F-number per frame, float64 (frames,), from ``f_number`` to ``f_number_to`` in stops."""
        end = f_number if self.f_number_to is None else self.f_number_to
        return np.exp(np.log(f_number) + self.progress() * (math.log(end) - math.log(f_number)))


def render_focus_pull(
    refocuser: Refocuser,
    photo: Photo,
    prepared: PreparedPhoto,
    pull: FocusPull,
    settings: LensSettings,
    *,
    full_resolution: bool = False,
    progress: ProgressCallback | None = None,
) -> Iterator[np.ndarray]:
    """Render the frames of a focus pull one at a time (a generator: memory holds one frame).

    Args:
        refocuser: renders; ``prepared`` came from its ``prepare(photo)``.
        photo: the decoded photo.
        prepared: its depth and preview.
        pull: the focus path; its points are in ``photo``'s pixels.
        settings: lens controls; ``settings.f_number`` is the first frame's.
        full_resolution: render at the photo's size instead of the preview's (long edge
            ``refocuser.preview_size``).
        progress: called with (frames done, frames in all) after each frame.

    Yields:
        float32 (h, w, 3) sRGB in [0, 1] frames, ``pull.frames`` of them.
    """
    focus = pull.focus_disparities(prepared.depth.disparity)
    f_numbers = pull.f_numbers(settings.f_number)
    if full_resolution:
        image, disparity, focal_px = photo.pixels, prepared.depth.disparity, prepared.focal_px
    else:
        image, disparity = prepared.preview, prepared.preview_disparity
        focal_px = None if prepared.focal_px is None else prepared.focal_px * prepared.preview_scale
    # the frames share the focus-independent steps (at the preview's size, with the clicks')
    reuse = Reuse() if full_resolution else prepared.reuse
    for index in range(pull.frames):
        frame_settings = dataclasses.replace(settings, f_number=float(f_numbers[index]))
        yield refocuser.render(
            image, disparity, None, frame_settings, focal_px=focal_px, focus=float(focus[index]), reuse=reuse
        )
        if progress is not None:
            progress(index + 1, pull.frames)


def animation_extension(path: str | os.PathLike) -> str:
    """The output's extension if it names an animation format, else a ``RefocusError``."""
    extension = Path(path).suffix.lower()
    if extension not in ANIMATION_EXTENSIONS:
        raise RefocusError(
            f"Cannot tell the animation format from {os.fspath(path)!r}; "
            f"end the name with one of {', '.join(ANIMATION_EXTENSIONS)}."
        )
    return extension


def _check_fps(fps: float) -> float:
    low, high = FPS_RANGE
    if not (isinstance(fps, (int, float)) and math.isfinite(fps) and low <= fps <= high):
        raise RefocusError(f"The frame rate must be from {low:g} to {high:g} frames per second, got {fps!r}.")
    return float(fps)


def _to_uint8(frame: np.ndarray) -> np.ndarray:
    return np.clip(np.rint(np.asarray(frame, np.float32) * 255.0), 0, 255).astype(np.uint8)


def write_animation(path: str | os.PathLike, frames: Iterable[np.ndarray], fps: float = 12.0) -> int:
    """Encode frames to ``path``, in the format its extension names (see ``ANIMATION_EXTENSIONS``).

    MP4 and WebM frames are cropped to even width and height (yuv420p stores colour per 2 x 2
    pixels; one lost row or column is invisible, a resize would soften every frame).

    Args:
        path: the output file; ``.mp4``, ``.webm``, ``.gif`` or ``.webp``.
        frames: float32 (H, W, 3) sRGB in [0, 1], all the same size, consumed one at a time.
        fps: frames per second, 1 to 60.

    Returns:
        The number of frames written.
    """
    extension = animation_extension(path)
    fps = _check_fps(fps)
    frames = (_to_uint8(frame) for frame in frames)
    if extension in VIDEO_CODECS:
        return _write_video(Path(path), frames, fps, *VIDEO_CODECS[extension])
    return _write_pillow(Path(path), frames, fps, PILLOW_FORMATS[extension])


def _write_video(path: Path, frames: Iterator[np.ndarray], fps: float, container_format: str, codec: str,
                 options: dict[str, str]) -> int:  # fmt: skip
    import av  # imported here: only animations need FFmpeg

    rate = Fraction(fps).limit_denominator(1001)
    count = 0
    with av.open(str(path), mode="w", format=container_format) as container:
        stream = None
        for frame in frames:
            height, width = (frame.shape[0] // 2) * 2, (frame.shape[1] // 2) * 2
            if stream is None:
                if width == 0 or height == 0:
                    raise RefocusError(f"A video needs frames of at least 2 x 2 pixels, got {frame.shape[1]} x {frame.shape[0]}.")
                stream = container.add_stream(codec, rate=rate, options={k: v for k, v in options.items() if k != "movflags"})
                stream.width, stream.height, stream.pix_fmt = width, height, "yuv420p"
                if "movflags" in options:  # a container option: the index first, so browsers stream it
                    container.options["movflags"] = options["movflags"]
            video_frame = av.VideoFrame.from_ndarray(np.ascontiguousarray(frame[:height, :width]), format="rgb24")
            container.mux(stream.encode(video_frame))
            count += 1
        if stream is not None:
            container.mux(stream.encode(None))  # flush the encoder's delayed frames
    return count


def _write_pillow(path: Path, frames: Iterator[np.ndarray], fps: float, pillow_format: str) -> int:
    images = [Image.fromarray(frame) for frame in frames]
    if not images:
        raise RefocusError("An animation needs at least one frame.")
    options = {"quality": 90} if pillow_format == "WEBP" else {}
    images[0].save(path, format=pillow_format, save_all=True, append_images=images[1:],
                   duration=round(1000 / fps), loop=0, **options)  # fmt: skip
    return len(images)


def make_focus_pull(
    refocuser: Refocuser,
    photo: Photo,
    prepared: PreparedPhoto,
    pull: FocusPull,
    settings: LensSettings,
    path: str | os.PathLike,
    *,
    fps: float = 12.0,
    full_resolution: bool = False,
    progress: ProgressCallback | None = None,
) -> Path:
    """Render a focus pull and encode it to ``path`` (format by extension). Returns the path.

    What the UI's ``/animate`` endpoint and the CLI call; arguments as ``render_focus_pull`` and
    ``write_animation``. The format and frame rate are checked before any frame is rendered.
    """
    animation_extension(path)
    _check_fps(fps)
    frames = render_focus_pull(refocuser, photo, prepared, pull, settings, full_resolution=full_resolution,
                               progress=progress)  # fmt: skip
    write_animation(path, frames, fps)
    return Path(path)
