"""The real iPhone portrait refocused offline through its own depth, and the lens the file implies."""

import io
import math
import os
import subprocess
import sys

import numpy as np
import pytest
from PIL import Image

from conftest import REPO, SHARED
from refocus.depth.embedded import simulated_f_number
from refocus.errors import RefocusError
from refocus.io import Photo, load_photo
from refocus.lens import blur_strength
from refocus.refocuser import Refocuser

PUG = SHARED / "real-phone" / "iphone-portrait-pug.heic"


def sharpness(image: np.ndarray) -> float:
    """Mean absolute neighbour difference of the grey image, both directions."""
    grey = np.asarray(image, np.float32).mean(axis=2)
    return float(np.abs(np.diff(grey, axis=1)).mean() + np.abs(np.diff(grey, axis=0)).mean())


@pytest.mark.skipif(not PUG.is_file(), reason="../shared/real-phone is absent")
def test_the_iphone_portrait_refocuses_offline_with_no_model_installed(tmp_path):
    env = {**os.environ, "HF_HUB_OFFLINE": "1", "HF_HOME": str(tmp_path / "empty-hf-cache")}
    out = tmp_path / "out.png"
    result = subprocess.run(
        [sys.executable, "-m", "refocus", str(PUG), "-o", str(out), "--focus", "2350,1850", "--f-number", "1.8"],
        cwd=REPO, env=env, capture_output=True, text=True, timeout=600,
    )  # fmt: skip
    assert result.returncode == 0, result.stderr
    assert "Depth: embedded iPhone depth (768 x 576, metric)" in result.stdout
    assert not (tmp_path / "empty-hf-cache").exists()  # nothing was fetched or looked up
    before = np.asarray(Image.open(PUG).convert("RGB"), np.float32)
    after = np.asarray(Image.open(out).convert("RGB"), np.float32)
    assert after.shape == before.shape == (3024, 4032, 3)
    crops = {"eye": np.s_[1700:1850, 2300:2500], "wall": np.s_[300:800, 2000:2800], "wall right": np.s_[600:1400, 3200:3800]}
    kept = {name: sharpness(after[crop]) / sharpness(before[crop]) for name, crop in crops.items()}
    assert kept["eye"] > 0.5, kept  # the dog's face stays sharp (measured 0.72)
    assert kept["wall"] < 0.25 and kept["wall right"] < 0.25, kept  # the wall blurs (measured 0.09)


def test_forcing_embedded_depth_on_a_photo_without_it_is_a_sentence():
    photo = Photo(np.zeros((8, 8, 3), np.float32))
    with pytest.raises(RefocusError, match="carries no depth map"):
        Refocuser().prepare(photo, depth_source="embedded")
    with pytest.raises(RefocusError, match="auto, embedded, model"):
        Refocuser().prepare(photo, depth_source="phone")


def test_metric_phone_depth_gets_the_thin_lens_blur_of_its_35mm_focal_length():
    # A 26 mm-equivalent lens at f/1.8 focused at 0.3 m: a wall at 2 m is drawn with the circle of
    # confusion of the full-frame thin lens (c = f^2 |s - s_f| / (N s (s_f - f)) on a 43.27 mm
    # diagonal), within the few per cent that the f << s approximation costs.
    width, height, f_mm, n, focus_m, wall_m = 4032, 3024, 26.0, 1.8, 0.3, 2.0
    focal_px = f_mm * math.hypot(width, height) / math.hypot(36, 24)
    radius_px = blur_strength(n, width, height, focal_px) * abs(1 / wall_m - 1 / focus_m)
    f = f_mm / 1000
    coc_mm = 1000 * f**2 * abs(wall_m - focus_m) / (n * wall_m * (focus_m - f))
    thin_lens_radius_px = coc_mm / 2 * math.hypot(width, height) / math.hypot(36, 24)
    assert radius_px == pytest.approx(thin_lens_radius_px, rel=0.1)


def test_apple_simulated_aperture_is_read_from_xmp():
    xmp = (b'<x:xmpmeta xmlns:x="adobe:ns:meta/"><rdf:RDF xmlns:rdf="http://www.w3.org/1999/02/22-rdf-syntax-ns#">'
           b'<rdf:Description xmlns:depthBlurEffect="http://ns.apple.com/depthBlurEffect/1.0/" '
           b'depthBlurEffect:SimulatedAperture="4.5" depthBlurEffect:RenderingParameters="..."/></rdf:RDF></x:xmpmeta>')
    assert simulated_f_number(xmp) == 4.5
    assert simulated_f_number(b"<x:xmpmeta/>") is None and simulated_f_number(None) is None
    buffer = io.BytesIO()
    Image.new("RGB", (8, 8)).save(buffer, format="JPEG", xmp=xmp)
    assert load_photo(buffer.getvalue()).simulated_f_number == 4.5


def test_the_cli_starts_at_the_aperture_the_phone_recorded(tmp_path):
    xmp = (b'<x:xmpmeta xmlns:x="adobe:ns:meta/"><rdf:RDF xmlns:rdf="http://www.w3.org/1999/02/22-rdf-syntax-ns#">'
           b'<rdf:Description xmlns:depthBlurEffect="http://ns.apple.com/depthBlurEffect/1.0/" '
           b'depthBlurEffect:SimulatedAperture="4.5"/></rdf:RDF></x:xmpmeta>')
    Image.new("RGB", (32, 24), (90, 120, 150)).save(tmp_path / "p.jpg", xmp=xmp)
    np.save(tmp_path / "d.npy", np.ones((24, 32), np.float32))
    command = [sys.executable, "-m", "refocus", str(tmp_path / "p.jpg"), "-o", str(tmp_path / "o.png"),
               "--depth-map", str(tmp_path / "d.npy")]  # fmt: skip
    recorded = subprocess.run(command, cwd=REPO, capture_output=True, text=True, timeout=300)
    assert recorded.returncode == 0 and "f/4.5," in recorded.stdout, recorded.stderr
    chosen = subprocess.run([*command, "--f-number", "2"], cwd=REPO, capture_output=True, text=True, timeout=300)
    assert "f/2," in chosen.stdout
