"""Run a ``transformers`` depth network through ONNX Runtime or OpenVINO on the CPU (opt-in).

``python -m benchmarks.network_runtimes`` measured, for the DA-V2-Small-sized network on a
2-core CPU shared with other jobs, ONNX Runtime 1.9-2.0x and OpenVINO (fp32) 2.6-2.7x faster
than eager PyTorch, with outputs within 2.3e-5 and 1.1e-6 of it; on the same CPU when quiet,
1.0x and 1.2x. The traced graph fixes the input size (the model's interpolations become
constants), so one export serves one input shape: the first photo of each aspect ratio pays the
export (3 s quiet, 6-22 s loaded for ONNX Runtime; OpenVINO's compile adds 0.4-85 s). That is
why it is opt-in: set ``REFOCUS_CPU_RUNTIME=onnxruntime`` or ``openvino`` (PyTorch stays the
default, the fallback and the GPU path). Exports are kept in ``REFOCUS_ONNX_CACHE`` (default
``~/.cache/refocus/onnx``), one folder per network, so a restart does not export again.
"""

from __future__ import annotations

import hashlib
import os
import threading
import warnings
from pathlib import Path
from typing import Callable

import numpy as np
import torch

from refocus.errors import RefocusError

RUNTIMES = ("torch", "onnxruntime", "openvino")


def cpu_runtime() -> str:
    """The CPU runtime ``REFOCUS_CPU_RUNTIME`` asks for: ``"torch"`` (default) or one of ``RUNTIMES``."""
    name = os.environ.get("REFOCUS_CPU_RUNTIME", "torch").strip().lower() or "torch"
    if name not in RUNTIMES:
        raise RefocusError(f"REFOCUS_CPU_RUNTIME={name!r} is not one of {', '.join(RUNTIMES)}.")
    return name


class PredictedDepth(torch.nn.Module):
    """The model as tensor in, tensor out (what the exporter traces)."""

    def __init__(self, model: torch.nn.Module):
        super().__init__()
        self.model = model

    def forward(self, pixel_values: torch.Tensor) -> torch.Tensor:
        return self.model(pixel_values=pixel_values).predicted_depth


class ExportedNetwork:
    """``predicted_depth`` of a ``transformers`` depth model, run by ONNX Runtime or OpenVINO.

    Args:
        model: the float32 CPU model (``predicted_depth`` output: Depth Anything, DPT, ZoeDepth).
        runtime: ``"onnxruntime"`` or ``"openvino"``.
        cache_dir: where the exports live; default ``REFOCUS_ONNX_CACHE`` or
            ``~/.cache/refocus/onnx``, in a folder named after the model's weights.
    """

    def __init__(self, model: torch.nn.Module, runtime: str, cache_dir: Path | None = None):
        if runtime not in RUNTIMES[1:]:
            raise ValueError(f"runtime must be 'onnxruntime' or 'openvino', got {runtime!r}")
        self._load_session = _session_loader(runtime)  # fails early when the package is missing
        self.model = PredictedDepth(model).eval()
        self.runtime = runtime
        root = cache_dir or Path(os.environ.get("REFOCUS_ONNX_CACHE", Path.home() / ".cache" / "refocus" / "onnx"))
        self.folder = Path(root) / _weights_digest(model)
        self._sessions: dict[tuple[int, ...], Callable[[np.ndarray], np.ndarray]] = {}
        self._lock = threading.Lock()

    def __call__(self, pixel_values: torch.Tensor) -> torch.Tensor:
        """float32 (1, 3, H, W) normalised pixels -> float32 (1, H', W') ``predicted_depth``."""
        shape = tuple(pixel_values.shape)
        with self._lock:  # one export per shape, even when two photos arrive together
            run = self._sessions.get(shape)
            if run is None:
                run = self._sessions[shape] = self._load_session(self._export(pixel_values))
        return torch.from_numpy(run(pixel_values.contiguous().numpy()))

    def _export(self, example: torch.Tensor) -> Path:
        path = self.folder / f"{'x'.join(map(str, example.shape))}.onnx"
        if not path.is_file():
            self.folder.mkdir(parents=True, exist_ok=True)
            partial = path.with_suffix(f".{os.getpid()}.part")  # a crash never leaves half a file
            # The tracer warns that the interpolation sizes become constants: that is expected.
            with torch.inference_mode(), warnings.catch_warnings():
                warnings.simplefilter("ignore", torch.jit.TracerWarning)
                torch.onnx.export(
                    self.model, (example.contiguous(),), partial, input_names=["pixel_values"],
                    output_names=["predicted_depth"], opset_version=17, dynamo=False,
                )  # fmt: skip
            partial.replace(path)
        return path


def _session_loader(runtime: str) -> Callable[[Path], Callable[[np.ndarray], np.ndarray]]:
    """A function that loads an ONNX file into ``runtime`` and returns ``run(pixels) -> depth``."""
    try:
        if runtime == "onnxruntime":
            import onnxruntime

            def load(path: Path):
                session = onnxruntime.InferenceSession(str(path), providers=["CPUExecutionProvider"])
                return lambda x: session.run(None, {"pixel_values": x})[0]

        else:
            import openvino

            def load(path: Path):
                # fp32: OpenVINO would pick bf16 on CPUs that have it, 1e-2 away from PyTorch.
                network = openvino.Core().compile_model(str(path), "CPU", {"INFERENCE_PRECISION_HINT": "f32"})
                return lambda x: np.asarray(network(x)[0])

    except ImportError:
        raise RefocusError(f"REFOCUS_CPU_RUNTIME={runtime} needs `pip install {runtime}`.") from None
    return load


def _weights_digest(model: torch.nn.Module) -> str:
    """A short digest of the model's weights: an export is valid for these weights only."""
    digest = hashlib.blake2b(digest_size=8)
    for name, tensor in model.state_dict().items():
        digest.update(name.encode())
        digest.update(tensor.detach().cpu().contiguous().reshape(-1).view(torch.uint8).numpy().tobytes())
    return digest.hexdigest()
