"""Focus pulls: focus moves in disparity from A to B, frames encode to MP4, WebM, GIF and WebP."""

import av
import numpy as np
import pytest
from PIL import Image

from conftest import sharpness, textured_scene
from refocus.animate import FocusPull, make_focus_pull, render_focus_pull, write_animation
from refocus.errors import RefocusError
from refocus.io import Photo
from refocus.refocuser import LensSettings, Refocuser
from test_cli import run_cli


def no_model(spec, device):
    raise AssertionError("a user's depth map needs no network")


def prepared_scene(width=160, height=120, preview_size=1024):
    image, disparity = textured_scene(width, height)
    photo = Photo(image.astype(np.float32) / 255)
    refocuser = Refocuser(load_model=no_model, preview_size=preview_size)
    return refocuser, photo, refocuser.prepare(photo, disparity)


def decode(path):
    with av.open(str(path)) as container:
        stream = container.streams.video[0]
        frames = [frame.to_ndarray(format="rgb24") for frame in container.decode(video=0)]
        return stream.codec_context.name, stream.codec_context.pix_fmt, frames


def sharp_left(frame) -> float:
    """How much sharper the near left card is than the far right wall (> 1: focused near)."""
    w = frame.shape[1]
    return sharpness(frame[:, w // 8 : 3 * w // 8]) / sharpness(frame[:, 5 * w // 8 : 7 * w // 8])


def test_focus_moves_linearly_in_disparity_through_every_point():
    disparity = np.tile(np.linspace(0.2, 1.0, 101, dtype=np.float32), (50, 1))  # a ramp along x
    pull = FocusPull(((10, 25), (90, 25), (50, 25)), frames=9, easing="linear")
    focus = pull.focus_disparities(disparity)
    assert focus[0] == pytest.approx(0.28) and focus[4] == pytest.approx(0.92) and focus[-1] == pytest.approx(0.6)
    assert np.diff(focus[:5]) == pytest.approx(np.full(4, 0.16))  # equal disparity steps per frame


def test_easing_starts_and_stops_gently_and_the_aperture_ramps_in_stops():
    pull = FocusPull(((0, 0), (1, 1)), frames=5, f_number_to=5.6)
    steps = np.diff(pull.progress())
    assert steps[0] < steps[1] and steps[-1] < steps[-2]
    assert pull.f_numbers(1.4) == pytest.approx([1.4, 1.4 * 2**0.2929, 2.8, 5.6 / 2**0.2929, 5.6], rel=1e-3)


@pytest.mark.parametrize("extension", [".mp4", ".webm"])
def test_video_is_browser_ready_with_even_size(tmp_path, extension):
    frames = [np.full((31, 45, 3), v, np.float32) for v in (0.0, 0.5, 1.0)]
    assert write_animation(tmp_path / f"a{extension}", iter(frames), fps=10) == 3
    codec, pix_fmt, decoded = decode(tmp_path / f"a{extension}")
    assert codec == {".mp4": "h264", ".webm": "vp9"}[extension] and pix_fmt == "yuv420p"
    assert len(decoded) == 3 and decoded[0].shape == (30, 44, 3)
    assert [round(f.mean()) for f in decoded] == pytest.approx([0, 128, 255], abs=3)


@pytest.mark.parametrize("extension", [".gif", ".webp"])
def test_gif_and_webp_are_animated_and_loop(tmp_path, extension):
    frames = [np.full((20, 30, 3), v, np.float32) for v in (0.0, 0.5, 1.0, 0.25)]
    write_animation(tmp_path / f"a{extension}", frames, fps=5)
    with Image.open(tmp_path / f"a{extension}") as image:
        assert image.n_frames == 4 and image.size == (30, 20) and image.info.get("loop") == 0
        image.seek(2)
        assert np.asarray(image.convert("RGB")).mean() == pytest.approx(255, abs=2)


def test_unknown_format_frame_count_and_fps_are_refused_before_rendering(tmp_path):
    refocuser, photo, prepared = prepared_scene()
    pull = FocusPull(((40, 60), (120, 60)), frames=3)
    for path, fps, match in [("a.avi", 12, "end the name with"), ("a.mp4", 0, "frame rate")]:
        with pytest.raises(RefocusError, match=match):
            make_focus_pull(refocuser, photo, prepared, pull, LensSettings(), tmp_path / path, fps=fps)
    assert list(tmp_path.iterdir()) == []
    assert FocusPull(((0, 0), (1, 1)), frames="12").frames == 12
    for frames in (1, 10_000, 2.5, "x", float("nan"), None):
        with pytest.raises(RefocusError, match="frames"):
            FocusPull(((0, 0), (1, 1)), frames=frames)
    with pytest.raises(RefocusError, match="two focus points"):
        FocusPull(((0, 0),))
    with pytest.raises(RefocusError, match="easing"):
        FocusPull(((0, 0), (1, 1)), easing="bounce")


def test_frames_render_at_preview_size_by_default_with_progress():
    refocuser, photo, prepared = prepared_scene(320, 240, preview_size=160)
    seen = []
    pull = FocusPull(((80, 120), (240, 120)), frames=3)
    frames = list(render_focus_pull(refocuser, photo, prepared, pull, LensSettings(f_number=1.4), progress=lambda *a: seen.append(a)))
    assert seen == [(1, 3), (2, 3), (3, 3)]
    assert [f.shape for f in frames] == [(120, 160, 3)] * 3
    assert sharp_left(frames[0]) > 2 and sharp_left(frames[-1]) < 0.5
    full = next(render_focus_pull(refocuser, photo, prepared, pull, LensSettings(), full_resolution=True))
    assert full.shape == (240, 320, 3)


def test_cli_focus_pull_mp4_is_sharp_at_a_first_and_at_b_last(tmp_path):
    image, disparity = textured_scene(640, 480)
    Image.fromarray(image).save(tmp_path / "photo.jpg", quality=95)
    Image.fromarray((disparity * 60000).astype(np.uint16)).save(tmp_path / "depth.png")
    common = ["--focus", "160,240", "--focus-to", "480,240", "--f-number", "1.4", "--depth-map", str(tmp_path / "depth.png")]
    result = run_cli(str(tmp_path / "photo.jpg"), "-o", str(tmp_path / "pull.mp4"), "--frames", "12", *common)
    assert result.returncode == 0, result.stderr
    assert "12/12" in result.stderr  # the progress bar counted every frame
    codec, pix_fmt, frames = decode(tmp_path / "pull.mp4")
    assert (codec, pix_fmt, len(frames), frames[0].shape) == ("h264", "yuv420p", 12, (480, 640, 3))
    assert sharp_left(frames[0]) > 3 and sharp_left(frames[-1]) < 1 / 3
    result = run_cli(str(tmp_path / "photo.jpg"), "-o", str(tmp_path / "pull.gif"), "--frames", "8", *common)
    assert result.returncode == 0, result.stderr
    with Image.open(tmp_path / "pull.gif") as gif:
        assert gif.n_frames == 8


def test_cli_animation_needs_a_second_point(tmp_path):
    image, disparity = textured_scene(32, 24)
    Image.fromarray(image).save(tmp_path / "p.png")
    np.save(tmp_path / "d.npy", disparity)
    result = run_cli(str(tmp_path / "p.png"), "-o", str(tmp_path / "o.mp4"), "--depth-map", str(tmp_path / "d.npy"))
    assert result.returncode == 2 and "--focus-to" in result.stderr and "Traceback" not in result.stderr
    result = run_cli(str(tmp_path / "p.png"), "-o", str(tmp_path / "o.png"), "--depth-map", str(tmp_path / "d.npy"),
                     "--focus-to", "5,5")  # fmt: skip
    assert result.returncode == 2 and ".mp4" in result.stderr
