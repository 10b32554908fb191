"""Depth-model loading and prediction, offline, with tiny randomly initialised networks.

The networks are real ``transformers`` architectures (Depth Anything with a tiny DINOv2
backbone, DPT) shrunk to a few thousand parameters and saved with ``save_pretrained``, so the
whole loading path (config dispatch, hub cache, processor, forward pass, upsampling) runs.
"""

from __future__ import annotations

import importlib.metadata
import shutil
import sys
import time
import types
from pathlib import Path

import cv2
import huggingface_hub.constants
import numpy as np
import pytest
import torch

from refocus.depth import (
    DEFAULT_MODEL,
    MODELS,
    download_command,
    list_models,
    checkpoints_dir,
    load_depth_model,
    model_info,
    resolve_device,
)
from refocus.depth.upsample import upsample_disparity, upsample_disparity_for_preview
from refocus.errors import RefocusError

COMMIT = "0123456789abcdef0123456789abcdef01234567"  # any 40-hex string is a valid snapshot name


@pytest.fixture(scope="module")
def tiny_dpt(tmp_path_factory):
    """A tiny ViT DPT (the Intel/dpt-large architecture), square input like its processor."""
    from transformers import DPTConfig, DPTForDepthEstimation, DPTImageProcessor

    torch.manual_seed(1)
    config = DPTConfig(
        image_size=32, patch_size=8, hidden_size=32, num_hidden_layers=4, num_attention_heads=2,
        intermediate_size=64, backbone_out_indices=[0, 1, 2, 3], neck_hidden_sizes=[8, 16, 32, 32],
        fusion_hidden_size=16, head_hidden_size=8,
    )  # fmt: skip
    path = tmp_path_factory.mktemp("tiny-dpt")
    DPTForDepthEstimation(config).save_pretrained(path)
    DPTImageProcessor(size={"height": 32, "width": 32}, keep_aspect_ratio=False).save_pretrained(path)
    return path


@pytest.fixture
def hub_cache(tmp_path, monkeypatch):
    """An empty Hugging Face hub cache that both huggingface_hub and transformers use.

    ``huggingface_hub.constants.HF_HUB_CACHE`` is read from the environment once, at import
    (conftest imports it first), and every download function reads the module attribute at call
    time; so patch the attribute, and the environment for any subprocess.
    """
    cache = tmp_path / "hub"
    cache.mkdir()
    monkeypatch.setenv("HF_HOME", str(tmp_path))
    monkeypatch.setenv("HF_HUB_CACHE", str(cache))
    monkeypatch.setattr(huggingface_hub.constants, "HF_HUB_CACHE", str(cache))
    return cache


def populate_cache(cache, repo_id: str, files_from) -> None:
    """Lay saved files out as the hub cache does: blobs are plain copies here, which it accepts."""
    repo_dir = cache / f"models--{repo_id.replace('/', '--')}"
    snapshot = repo_dir / "snapshots" / COMMIT
    shutil.copytree(files_from, snapshot)
    (repo_dir / "refs").mkdir()
    (repo_dir / "refs" / "main").write_text(COMMIT)


def two_tone_image(height=60, width=90) -> np.ndarray:
    """float32 (H, W, 3) sRGB: textured dark left half, bright right half."""
    rng = np.random.default_rng(0)
    image = rng.uniform(0.0, 1.0, (height, width, 3)).astype(np.float32)
    image[:, : width // 2] *= 0.2
    return image


def check_relative_result(result, shape):
    disparity = result.disparity
    assert disparity.shape == shape
    assert disparity.dtype == np.float32
    assert np.isfinite(disparity).all() and disparity.min() >= 0
    assert disparity.std() > 1e-4, "a non-constant image must not give a constant disparity"
    assert np.percentile(disparity, 99) == pytest.approx(1.0, rel=1e-3)
    assert result.depth is None and result.focal_px is None


def test_local_directory_loads_and_predicts_at_input_resolution(tiny_model_dir):
    model = load_depth_model(str(tiny_model_dir), device="cpu")
    assert model.device == "cpu" and model.name == str(tiny_model_dir)
    assert next(model.model.parameters()).dtype == torch.float32  # fp16 only on CUDA
    check_relative_result(model.predict(two_tone_image()), (60, 90))
    # uint8 input and an odd size (not a multiple of the patch size) work too.
    check_relative_result(model.predict((two_tone_image(37, 101) * 255).astype(np.uint8)), (37, 101))


def test_dpt_architecture_loads_from_a_local_directory(tiny_dpt):
    model = load_depth_model(str(tiny_dpt), device="cpu")
    assert model.kind == "relative"
    check_relative_result(model.predict(two_tone_image(48, 64)), (48, 64))


def test_default_hub_id_loads_from_the_local_cache(tiny_model_dir, hub_cache):
    populate_cache(hub_cache, DEFAULT_MODEL, tiny_model_dir)
    for spec in (None, DEFAULT_MODEL, "depth-anything-v2-small"):
        model = load_depth_model(spec, device="cpu")
        assert model.name == DEFAULT_MODEL and model.licence == "Apache-2.0"
        check_relative_result(model.predict(two_tone_image()), (60, 90))


def test_missing_model_offline_says_how_to_get_it(hub_cache):
    start = time.perf_counter()
    with pytest.raises(RefocusError) as caught:
        load_depth_model("nobody/no-such-depth-model", device="cpu")
    message = str(caught.value)
    assert "nobody/no-such-depth-model" in message
    assert download_command("nobody/no-such-depth-model") in message
    assert "--depth-model PATH" in message
    assert time.perf_counter() - start < 5, "offline failure must be immediate, not a retry loop"


def test_download_command_matches_the_installed_hub_client(monkeypatch):
    # huggingface_hub >= 0.34 ships the `hf` command; this environment has it.
    assert download_command("a/b") == "hf download a/b"

    def distribution_with(*scripts):
        entry_points = [types.SimpleNamespace(name=name) for name in scripts]
        return lambda name: types.SimpleNamespace(entry_points=entry_points)

    monkeypatch.setattr(importlib.metadata, "distribution", distribution_with("huggingface-cli"))
    assert download_command("a/b") == "huggingface-cli download a/b"  # an older hub client

    def missing(name):
        raise importlib.metadata.PackageNotFoundError(name)

    monkeypatch.setattr(importlib.metadata, "distribution", missing)
    assert download_command("a/b") == "pip install huggingface_hub && hf download a/b"


def test_alias_of_an_uncached_hub_model_names_the_hub_id(hub_cache):
    with pytest.raises(RefocusError, match="apple/DepthPro-hf.*hf download apple/DepthPro-hf"):
        load_depth_model("depth-pro", device="cpu")


def test_bad_local_directories_are_explained(tmp_path):
    with pytest.raises(RefocusError, match="no such directory"):
        load_depth_model(str(tmp_path / "missing"), device="cpu")
    with pytest.raises(RefocusError, match="no config.json"):
        load_depth_model(str(tmp_path), device="cpu")
    (tmp_path / "config.json").write_text('{"model_type": "dpt"}')
    with pytest.raises(RefocusError, match="could not be loaded"):
        load_depth_model(str(tmp_path), device="cpu")  # config but no weights


def test_eigen_checkpoints_go_to_the_eigen_loader(tiny_model_dir, tmp_path, monkeypatch):
    calls = []
    fake = types.ModuleType("refocus.depth.eigen")
    fake.is_eigen_config = lambda config: config.get("model_type") == "eigen2014"
    fake.load_eigen_depth_model = lambda spec, device: calls.append((spec, device)) or "eigen-model"
    monkeypatch.setitem(sys.modules, "refocus.depth.eigen", fake)
    (tmp_path / "config.json").write_text('{"model_type": "eigen2014"}')
    assert load_depth_model(str(tmp_path), device="cpu") == "eigen-model"
    assert calls == [(str(tmp_path), "cpu")]
    # transformers models never reach it, and load even when the Eigen module cannot be imported.
    monkeypatch.setitem(sys.modules, "refocus.depth.eigen", None)
    assert load_depth_model(str(tiny_model_dir), device="cpu").kind == "relative"


def test_eigen_alias_finds_its_weights_under_refocus_checkpoints(tmp_path, monkeypatch):
    monkeypatch.delenv("REFOCUS_CHECKPOINTS", raising=False)
    monkeypatch.chdir(tmp_path)  # the default is ./checkpoints, wherever refocus is installed
    assert checkpoints_dir() == Path("checkpoints")
    with pytest.raises(RefocusError, match=r"weights in /.*/checkpoints/eigen, .*REFOCUS_CHECKPOINTS"):
        load_depth_model("eigen", device="cpu")

    elsewhere = tmp_path / "weights"
    (elsewhere / "eigen").mkdir(parents=True)
    (elsewhere / "eigen" / "config.json").write_text('{"model_type": "eigen2014"}')
    monkeypatch.setenv("REFOCUS_CHECKPOINTS", str(elsewhere))
    with pytest.raises(RefocusError, match="Could not load the Eigen depth model"):  # found, but no weights
        load_depth_model("eigen", device="cpu")


def test_model_info_finds_a_model_by_alias_or_hub_id():
    assert model_info("dpt-large") is model_info("Intel/dpt-large") is MODELS["dpt-large"]
    assert model_info("someone/other-model") is None


def test_device_selection(monkeypatch):
    monkeypatch.setattr(torch.cuda, "is_available", lambda: False)
    assert resolve_device(None) == "cpu"
    assert resolve_device("CPU") == "cpu"
    with pytest.raises(RefocusError, match="CUDA is not available"):
        resolve_device("cuda")
    with pytest.raises(RefocusError, match="Unknown device"):
        resolve_device("gpu0")
    with pytest.raises(RefocusError, match="not supported"):
        resolve_device("meta")
    monkeypatch.setattr(torch.cuda, "is_available", lambda: True)
    monkeypatch.setattr(torch.cuda, "device_count", lambda: 1)
    assert resolve_device(None) == "cuda"
    assert resolve_device("cuda:0") == "cuda:0"
    with pytest.raises(RefocusError, match="does not exist"):
        resolve_device("cuda:3")


def test_aliases_are_listed_with_licences():
    models = list_models()
    assert models[0].source == DEFAULT_MODEL == "depth-anything/Depth-Anything-V2-Small-hf"
    aliases = {m.alias for m in models}
    assert {"depth-anything-v2-small", "depth-anything-v2-base", "depth-anything-v2-large", "dpt-large",
            "depth-pro", "eigen"} <= aliases  # fmt: skip
    assert all(m.licence and m.kind in ("relative", "metric") and m.description for m in models)
    assert MODELS["depth-anything-v2-large"].licence == "CC-BY-NC-4.0"
    assert MODELS["depth-pro"].kind == "metric" and "research" in MODELS["depth-pro"].licence


def test_upsampler_gives_sharper_depth_edges_than_bilinear():
    # A photo with a vertical colour edge at x = 50 (not on the 4x grid) and a disparity step there.
    height, width, factor = 64, 96, 4
    guide = np.full((height, width, 3), 0.2, np.float32)
    guide[:, 50:] = 0.8
    truth = np.where(np.arange(width) >= 50, 1.0, 0.25).astype(np.float32)[None].repeat(height, 0)
    low = cv2.resize(truth, (width // factor, height // factor), interpolation=cv2.INTER_AREA)

    ours = upsample_disparity(low, guide)
    bilinear = cv2.resize(low, (width, height), interpolation=cv2.INTER_LINEAR)
    band = slice(50 - 2 * factor, 50 + 2 * factor)
    error_ours = np.abs(ours - truth)[:, band].mean()
    error_bilinear = np.abs(bilinear - truth)[:, band].mean()
    assert ours.shape == (height, width) and ours.dtype == np.float32
    assert error_ours < 0.25 * error_bilinear, (error_ours, error_bilinear)
    # Edge width: pixels per row strictly between the two levels (bilinear smears ~2x factor).
    mixed = lambda d: ((d > 0.3) & (d < 0.95)).sum(axis=1).mean()  # noqa: E731
    assert mixed(ours) <= 1 < mixed(bilinear)
    # Values stay within the input's range (a median never invents disparities).
    assert low.min() - 1e-2 <= ours.min() and ours.max() <= low.max() + 1e-2


def preview_scene() -> tuple[np.ndarray, np.ndarray, np.ndarray]:
    """A 1024 x 683 preview: a card (right of x = 600) and a 2 px pole (x = 300) before a wall.

    Returns (uint8 photo, float32 true disparity at the preview's size, the network-like map:
    the truth softened at a quarter of the size and brought to 777 x 518, the 1.32x a 3:2
    preview is of Depth Anything's 518 px map).
    """
    height, width = 683, 1024
    photo = np.full((height, width, 3), 60, np.uint8)
    photo[:, 600:], photo[:, 300:302] = 160, 230
    truth = np.full((height, width), 0.2, np.float32)
    truth[:, 600:], truth[:, 300:302] = 0.6, 1.0
    soft = cv2.resize(truth, (256, 171), interpolation=cv2.INTER_AREA)
    return photo, truth, cv2.resize(soft, (777, 518), interpolation=cv2.INTER_LINEAR)


def test_upsampling_honours_its_colour_scale():
    """``sigma`` reaches the filter (OpenCV's fourth positional argument is the output array, where
    it was once passed and ignored)."""
    rng = np.random.default_rng(2)
    photo = cv2.GaussianBlur((rng.random((120, 160, 3)) * 255).astype(np.uint8), (0, 0), 2)
    low = rng.random((30, 40)).astype(np.float32)
    assert not np.array_equal(upsample_disparity(low, photo, sigma=4.0), upsample_disparity(low, photo))


def test_preview_upsampling_does_not_wait_for_a_colour_guided_filter():
    """A preview's luma-guided median runs while another session's colour-guided one holds the
    lock (it would wait seconds behind a 12 MP photo's), and gives the same map as alone."""
    from concurrent.futures import ThreadPoolExecutor

    from refocus.depth import upsample

    photo, _, network = preview_scene()
    alone = upsample_disparity_for_preview(network, photo)
    with ThreadPoolExecutor(1) as pool:
        with upsample._FILTER_LOCK:  # a colour-guided filter running (released if the wait times out)
            meanwhile = pool.submit(upsample_disparity_for_preview, network, photo).result(timeout=10)
    np.testing.assert_array_equal(meanwhile, alone)


def test_preview_upsampling_narrows_edges_and_keeps_thin_structures():
    photo, truth, network = preview_scene()
    fast = upsample_disparity_for_preview(network, photo)
    bilinear = cv2.resize(network, photo.shape[1::-1], interpolation=cv2.INTER_LINEAR)
    assert fast.shape == truth.shape and fast.dtype == np.float32
    # The soft edge is snapped at the map's size; only the last 1.32x of bilinear is left
    # (a ramp of at most 2 px, which the renderer's own edge snapping resolves).
    band = slice(596, 604)
    assert np.abs(fast - truth)[:, band].mean() < 0.7 * np.abs(bilinear - truth)[:, band].mean()
    ramp = lambda d: ((d > 0.25) & (d < 0.55))[:, 560:640].sum(axis=1).max()  # noqa: E731
    assert ramp(fast) <= 2 < ramp(bilinear)
    # A pole the network saw (1.5 px wide in its map) keeps its depth, guided by its brightness;
    # an unguided median of the same reach erases it.
    sharp = cv2.resize(truth, (777, 518), interpolation=cv2.INTER_AREA)
    assert upsample_disparity_for_preview(sharp, photo)[:, 300:302].mean() > 0.75
    assert cv2.resize(cv2.medianBlur(sharp, 5), photo.shape[1::-1])[:, 300:302].mean() < 0.4
    with pytest.raises(ValueError, match="filter_at"):
        upsample_disparity(network, photo, filter_at="photo")


def test_upsampler_input_checks_and_trivial_cases():
    guide = np.zeros((20, 30, 3), np.uint8)
    with pytest.raises(ValueError, match="2-D"):
        upsample_disparity(np.zeros((2, 3, 1)), guide)
    with pytest.raises(ValueError, match="NaN"):
        upsample_disparity(np.full((4, 6), np.nan), guide)
    with pytest.raises(ValueError, match="guide"):
        upsample_disparity(np.zeros((4, 6)), np.zeros((20, 30, 4)))
    assert np.all(upsample_disparity(np.full((4, 6), 0.5), guide) == 0.5)  # constant stays constant
    assert upsample_disparity(np.ones((40, 60)), guide).shape == (20, 30)  # downsizing works too


def test_upsampler_caps_the_filtered_size():
    guide = np.zeros((200, 300, 3), np.uint8)
    guide[:, 150:] = 255
    low = np.zeros((20, 30), np.float32)
    low[:, 15:] = 1.0
    out = upsample_disparity(low, guide, max_filter_pixels=100 * 150)  # filtered at half size
    assert out.shape == (200, 300)
    assert np.abs(out[:, :140]).max() < 0.05 and np.abs(out[:, 160:] - 1).max() < 0.05
