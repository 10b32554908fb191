"""Test-wide settings. The hub must never be contacted: set offline mode before any import."""

import os
from pathlib import Path

os.environ["HF_HUB_OFFLINE"] = "1"
os.environ["TRANSFORMERS_OFFLINE"] = "1"
os.environ.setdefault("GRADIO_ANALYTICS_ENABLED", "False")

REPO = Path(__file__).resolve().parents[1]  # on sys.path through pyproject's pytest ``pythonpath``

# ../shared holds read-only reference data (benchmark scenes, real photos); tests that use it
# skip cleanly where it is absent.
SHARED = REPO.parent / "shared"

import numpy as np  # noqa: E402
import pytest  # noqa: E402


@pytest.fixture(scope="session")
def tiny_model_dir(tmp_path_factory):
    """A tiny randomly initialised Depth Anything V2 saved in ``transformers`` format."""
    from tiny_models import save_tiny_depth_anything

    return save_tiny_depth_anything(tmp_path_factory.mktemp("tiny-depth-anything"))


def textured_scene(width: int = 160, height: int = 120, seed: int = 0):
    """A photo whose left half is a near textured card and right half a far textured wall.

    Returns (uint8 image (H, W, 3), float32 disparity (H, W): 1.0 on the left, 0.1 on the right).
    """
    rng = np.random.default_rng(seed)
    image = (rng.random((height, width, 3)) * 255).astype(np.uint8)
    disparity = np.full((height, width), 0.1, np.float32)
    disparity[:, : width // 2] = 1.0
    return image, disparity


def sharpness(image: np.ndarray) -> float:
    """Mean absolute difference between horizontal neighbours (high = sharp, for noise textures)."""
    grey = np.asarray(image, np.float32).mean(axis=2)
    return float(np.abs(np.diff(grey, axis=1)).mean())


@pytest.fixture(scope="session")
def server(tiny_model_dir):
    """The app launched on 127.0.0.1 with the tiny model: (RefocusApp, base URL)."""
    import socket

    import app as app_module

    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        port = s.getsockname()[1]
    refocus_app = app_module.RefocusApp(str(tiny_model_dir), device="cpu", max_image_pixels=4_000_000)
    demo = app_module.build_demo(refocus_app)
    demo.queue(max_size=16)
    demo.launch(server_name="127.0.0.1", server_port=port, prevent_thread_lock=True, quiet=True)
    yield refocus_app, f"http://127.0.0.1:{port}/"
    demo.close()


@pytest.fixture(scope="session")
def client(server):
    from gradio_client import Client

    return Client(server[1], verbose=False)


@pytest.fixture(scope="session")
def browser():
    """Debian's chromium driven by Playwright, shared by the browser tests (skips when absent)."""
    from browser import CHROMIUM, chromium

    if not Path(CHROMIUM).exists():
        pytest.skip("Debian's chromium is not installed (apt-get install chromium)")
    with chromium() as instance:
        yield instance
