"""The exported network (ONNX Runtime / OpenVINO) gives PyTorch's disparity."""

from __future__ import annotations

import numpy as np
import pytest

from conftest import textured_scene
from refocus.depth import load_depth_model
from refocus.errors import RefocusError


@pytest.mark.parametrize("runtime", ["onnxruntime", "openvino"])
def test_the_exported_network_matches_pytorch(tiny_model_dir, tmp_path, monkeypatch, runtime):
    pytest.importorskip(runtime)
    reference = load_depth_model(str(tiny_model_dir), device="cpu")
    monkeypatch.setenv("REFOCUS_CPU_RUNTIME", runtime)
    monkeypatch.setenv("REFOCUS_ONNX_CACHE", str(tmp_path))
    exported = load_depth_model(str(tiny_model_dir), device="cpu")
    assert exported.exported is not None and reference.exported is None
    for width, height in [(240, 180), (180, 240)]:  # two input shapes, two exports
        image, _ = textured_scene(width, height)
        expected = reference.model(
            pixel_values=reference.processor(images=image, return_tensors="pt")["pixel_values"]
        ).predicted_depth.detach().numpy()
        got = exported.exported(reference.processor(images=image, return_tensors="pt")["pixel_values"]).numpy()
        assert got.shape == expected.shape
        assert np.abs(got - expected).max() <= 1e-3 * np.abs(expected).max()
        np.testing.assert_allclose(
            exported.predict_network(image).disparity, reference.predict_network(image).disparity, rtol=1e-3, atol=1e-3
        )
    assert len(list(tmp_path.rglob("*.onnx"))) == 2


def test_an_unknown_runtime_is_refused(tiny_model_dir, monkeypatch):
    monkeypatch.setenv("REFOCUS_CPU_RUNTIME", "tensorflow")
    with pytest.raises(RefocusError, match="REFOCUS_CPU_RUNTIME"):
        load_depth_model(str(tiny_model_dir), device="cpu")
