"""The Eigen et al. 2014 network, its hub round trip and its DepthModel wrapper."""

import json
import subprocess
import sys

import numpy as np
import pytest
import torch

from conftest import REPO
from refocus.depth import load_depth_model
from refocus.depth.base import DepthResult
from refocus.depth.eigen import (
    MODEL_TYPE,
    EigenDepthNet,
    count_parameters,
    is_eigen_config,
    load_eigen_depth_model,
    prepare_input,
    upsample_prediction,
)
from refocus.errors import RefocusError

TINY = dict(coarse_channels=[4, 8, 8, 8, 8], fc_dim=16, fine_channels=7)


def tiny_net(stage="fine", seed=0):
    torch.manual_seed(seed)
    return EigenDepthNet(stage=stage, **TINY).eval()


def test_paper_sized_model_shapes_and_parameter_count():
    net = EigenDepthNet().eval()  # the paper's widths
    with torch.no_grad():
        out = net(torch.rand(2, 3, 228, 304))
    assert out.shape == (2, 1, 55, 74)
    # conv 3.7M + FC 12288x4096 + FC 4096x4070 + fine 0.12M: the paper's "about 71M".
    assert count_parameters(net) == 70_877_171


def test_coarse_stage_ignores_the_fine_network():
    net = tiny_net("coarse")
    x = torch.rand(3, 3, 228, 304)
    with torch.no_grad():
        before = net(x)
        net.fine.conv3.bias += 1.0  # the fine network's output layer
        after = net(x)
        net.stage = "fine"
        fine = net(x)
    assert before.shape == (3, 1, 55, 74)
    torch.testing.assert_close(after, before)
    assert not torch.allclose(fine, before)


def test_fine_stage_reads_the_coarse_output():
    net = tiny_net("fine")
    x = torch.rand(1, 3, 228, 304)
    with torch.no_grad():
        before = net(x)
        net.coarse.fc[-1].bias += 1.0  # shift the coarse log depth everywhere
        after = net(x)
    assert not torch.allclose(before, after)


def test_forward_rejects_wrong_input_size():
    with pytest.raises(ValueError, match="228, 304"):
        tiny_net()(torch.rand(1, 3, 240, 320))


def test_save_load_round_trip_is_identical(tmp_path):
    net = tiny_net("fine", seed=3)
    net.save_pretrained(tmp_path)
    config = json.loads((tmp_path / "config.json").read_text())
    assert config["model_type"] == MODEL_TYPE and is_eigen_config(config)
    assert (tmp_path / "model.safetensors").is_file()

    loaded = EigenDepthNet.from_pretrained(tmp_path)
    x = torch.rand(2, 3, 228, 304)
    with torch.no_grad():
        assert torch.equal(net(x), loaded(x))
    assert loaded.stage == "fine" and loaded.coarse.fc[1].out_features == TINY["fc_dim"]


def test_hub_weights_are_downloaded_with_the_callers_options(tmp_path, monkeypatch):
    import huggingface_hub.hub_mixin

    from refocus.depth import eigen

    net = tiny_net("coarse", seed=4)
    net.save_pretrained(tmp_path)
    calls = []

    def fake_download(repo_id, filename, **options):  # the hub, served from tmp_path
        calls.append((repo_id, filename, options))
        return str(tmp_path / filename)

    monkeypatch.setattr(huggingface_hub.hub_mixin, "hf_hub_download", fake_download)
    monkeypatch.setattr(eigen, "hf_hub_download", fake_download)
    loaded = EigenDepthNet.from_pretrained("someone/eigen", revision="v1", token="t", local_files_only=True)
    weights = [options for repo, name, options in calls if name == "model.safetensors"]
    assert weights == [dict(revision="v1", cache_dir=None, force_download=False, local_files_only=True, token="t")]
    x = torch.rand(1, 3, 228, 304)
    with torch.no_grad():
        assert torch.equal(net(x), loaded(x))


def test_is_eigen_config_rejects_other_configs():
    assert not is_eigen_config({"model_type": "depth_anything"})
    assert not is_eigen_config({})
    assert not is_eigen_config("eigen2014")


def test_wrapper_predicts_metric_depth_at_input_resolution(tmp_path):
    tiny_net().save_pretrained(tmp_path)
    model = load_eigen_depth_model(str(tmp_path), device="cpu")
    assert model.device == "cpu" and model.name == str(tmp_path) and model.licence

    image = np.random.default_rng(0).random((97, 131, 3), dtype=np.float32)
    result = model.predict(image)
    assert isinstance(result, DepthResult) and result.is_metric and result.focal_px is None
    assert result.depth.shape == result.disparity.shape == (97, 131)
    assert result.depth.dtype == result.disparity.dtype == np.float32
    assert np.all(np.isfinite(result.disparity)) and np.all(result.disparity > 0)
    np.testing.assert_allclose(result.disparity, 1.0 / result.depth, rtol=1e-6)

    as_uint8 = model.predict((image * 255).round().astype(np.uint8))
    np.testing.assert_allclose(as_uint8.depth, result.depth, rtol=0.05)


def test_wrapper_rejects_bad_images(tmp_path):
    tiny_net().save_pretrained(tmp_path)
    model = load_eigen_depth_model(str(tmp_path), device="cpu")
    for bad in (np.zeros((10, 10), np.float32), np.zeros((10, 10, 4), np.float32), np.zeros((9, 9, 3), np.int64)):
        with pytest.raises(RefocusError):
            model.predict(bad)


def test_prediction_grid_maps_back_onto_the_centre_crop():
    # Output cell j's centre lies at x = 8 + (j + 0.5) * 304 / 74 in the 240x320 resize (pixel
    # edges at integers). With a log depth equal to the cell index, bilinear upsampling must
    # give every pixel its fractional cell position, clamped at the edges (border replication).
    ramp = torch.arange(74, dtype=torch.float32).expand(1, 1, 55, 74)
    up = upsample_prediction(ramp, (240, 320))[0, 0]
    centres = torch.arange(320) + 0.5
    expected = ((centres - 8) * 74 / 304 - 0.5).clamp(0, 73)
    torch.testing.assert_close(up[20], expected, atol=1e-4, rtol=0)
    # At another resolution the same photo position gets the same value.
    up_full = upsample_prediction(ramp, (480, 640))[0, 0]
    torch.testing.assert_close(up_full[40, 1::2], expected, atol=0.1, rtol=0)


def test_prepare_input_halves_and_centre_crops():
    image = torch.zeros(1, 3, 480, 640)
    image[:, :, 12:468, 16:624] = 1.0  # exactly the region the 228x304 crop keeps
    crop = prepare_input(image)
    assert crop.shape == (1, 3, 228, 304)
    # The antialiasing filter blends the outermost crop pixels with the dark frame outside.
    assert torch.all(crop[:, :, 1:-1, 1:-1] == 1.0) and torch.all(crop > 0.5)


def test_loader_errors_are_refocus_errors(tmp_path):
    with pytest.raises(RefocusError, match="config.json"):
        load_eigen_depth_model(str(tmp_path))
    (tmp_path / "config.json").write_text(json.dumps({"model_type": "dpt"}))
    with pytest.raises(RefocusError, match="not an Eigen"):
        load_eigen_depth_model(str(tmp_path))
    with pytest.raises(RefocusError, match="not a directory"):
        load_eigen_depth_model(str(tmp_path / "missing" / "dir"))
    with pytest.raises(RefocusError, match="HF_HUB_OFFLINE"):  # conftest sets offline mode
        load_eigen_depth_model("nobody/no-such-eigen-model")


def test_inference_does_not_import_training(tmp_path):
    tiny_net().save_pretrained(tmp_path)
    script = (
        "import sys, numpy as np; from refocus import load_depth_model; "
        f"load_depth_model({str(tmp_path)!r}, device='cpu').predict(np.zeros((8, 8, 3), np.uint8)); "
        "print(sorted(m for m in sys.modules if m.split('.')[0] == 'training'))"
    )
    result = subprocess.run([sys.executable, "-c", script], capture_output=True, text=True, timeout=120, cwd=REPO)
    assert result.returncode == 0, result.stderr
    assert result.stdout.strip().splitlines()[-1] == "[]"


def test_every_backend_checks_images_alike(tmp_path, tiny_model_dir):
    tiny_net().save_pretrained(tmp_path)
    backends = [load_eigen_depth_model(str(tmp_path), device="cpu"), load_depth_model(str(tiny_model_dir), "cpu")]
    nan = np.full((8, 8, 3), np.nan, np.float32)
    for bad in (nan, np.zeros((8, 8), np.float32), np.zeros((1, 8, 3), np.uint8), np.zeros((8, 8, 3), np.int64)):
        messages = set()
        for backend in backends:
            with pytest.raises(RefocusError) as caught:
                backend.predict(bad)
            messages.add(str(caught.value))
        assert len(messages) == 1, messages
