"""The command line, end to end, in a subprocess as a user runs it."""

import subprocess
import sys

import numpy as np
from PIL import Image

from conftest import REPO, sharpness, textured_scene


def run_cli(*args: str) -> subprocess.CompletedProcess:
    return subprocess.run(
        [sys.executable, "-m", "refocus", *args], cwd=REPO, capture_output=True, text=True, timeout=300
    )


def test_cli_with_a_depth_map_focuses_where_told(tmp_path):
    image, disparity = textured_scene()
    Image.fromarray(image).save(tmp_path / "photo.jpg", quality=98)
    np.save(tmp_path / "depth.npy", 1.0 / disparity)  # metres-like depth: larger = farther
    out = tmp_path / "out.png"
    result = run_cli(
        str(tmp_path / "photo.jpg"), "-o", str(out), "--focus", "120,60", "--f-number", "1.4",
        "--depth-map", str(tmp_path / "depth.npy"), "--depth-kind", "depth", "--save-depth", str(tmp_path / "d16.png"),
    )  # fmt: skip
    assert result.returncode == 0, result.stderr
    rendered = np.asarray(Image.open(out))
    assert rendered.shape == (120, 160, 3)
    assert sharpness(rendered[:, 90:]) > 2 * sharpness(rendered[:, :70])  # the far half is in focus
    depth16 = Image.open(tmp_path / "d16.png")
    assert depth16.mode.startswith("I;16") and depth16.size == (160, 120)


def test_cli_with_a_depth_model_directory(tmp_path, tiny_model_dir):
    image, _ = textured_scene(64, 48)
    Image.fromarray(image).save(tmp_path / "photo.png")
    result = run_cli(str(tmp_path / "photo.png"), "-o", str(tmp_path / "out.png"), "--depth-model", str(tiny_model_dir),
                     "--device", "cpu", "--shape", "ring")  # fmt: skip
    assert result.returncode == 0, result.stderr
    assert Image.open(tmp_path / "out.png").size == (64, 48)


def test_cli_bad_input_exits_non_zero_with_one_sentence(tmp_path):
    (tmp_path / "bad.jpg").write_bytes(b"not a jpeg")
    result = run_cli(str(tmp_path / "bad.jpg"), "-o", str(tmp_path / "out.png"), "--depth-map", str(tmp_path / "bad.jpg"))
    assert result.returncode == 2
    assert "not an image" in result.stderr and "Traceback" not in result.stderr
    result = run_cli(str(tmp_path / "bad.jpg"), "-o", str(tmp_path / "o.png"), "--focus", "nonsense")
    assert result.returncode == 2 and "X,Y" in result.stderr


def test_cli_focus_outside_the_image(tmp_path):
    image, disparity = textured_scene(32, 24)
    Image.fromarray(image).save(tmp_path / "p.png")
    np.save(tmp_path / "d.npy", disparity)
    result = run_cli(str(tmp_path / "p.png"), "-o", str(tmp_path / "o.png"), "--depth-map", str(tmp_path / "d.npy"),
                     "--focus", "99,5")  # fmt: skip
    assert result.returncode == 2 and "outside the image" in result.stderr


def test_cli_focus_plane_keeps_a_receding_floor_sharp_along_it(tmp_path):
    """A floor receding up the frame, focused on a plane through three points of its left half:
    the left half (on the plane) stays sharp, the right half (raised off it) blurs."""
    rng = np.random.default_rng(0)
    image = (rng.random((120, 160, 3)) * 255).astype(np.uint8)
    rows = np.linspace(2.0, 0.2, 120, dtype=np.float32)[:, None]
    disparity = np.repeat(rows, 160, axis=1)
    disparity[:, 80:] += 0.6  # the right half nearer: off the plane
    Image.fromarray(image).save(tmp_path / "photo.png")
    np.save(tmp_path / "d.npy", disparity)
    out = tmp_path / "out.png"
    result = run_cli(str(tmp_path / "photo.png"), "-o", str(out), "--depth-map", str(tmp_path / "d.npy"),
                     "--f-number", "1.4", "--focus-plane", "10,10 60,60 20,110")  # fmt: skip
    assert result.returncode == 0, result.stderr
    rendered = np.asarray(Image.open(out))
    assert sharpness(rendered[:, :70]) > 3 * sharpness(rendered[:, 90:])
