"""CPU runtimes for the depth network: eager PyTorch, channels-last, torch.compile, ONNX Runtime, OpenVINO.

Runs the DA-V2-Small-sized random network (``benchmarks.first_preview``) on the input the
processor makes of a 3:2 and a 4:3 photo (518 px short side: the network's input does not grow
with the photo, so one shape stands for 1, 12 and 24 MP alike), interleaving the runtimes so
they share the machine's load. Prints, per runtime, the one-off cost (export / compile), the
median forward time, its ratio to eager fp32, and the largest difference to eager fp32 relative
to the output's range (the bar is 1e-3).

    python -m benchmarks.network_runtimes [--repeats 5] [--compile]
"""

from __future__ import annotations

import argparse
import statistics
import tempfile
import time
from pathlib import Path
from typing import Callable

import numpy as np
import torch

from benchmarks.first_preview import save_small_depth_anything
from refocus.depth.runtime import PredictedDepth

SHAPES = {"3:2": (518, 777), "4:3": (518, 686)}  # (height, width) the processor gives the network


def runtimes(model: torch.nn.Module, example: torch.Tensor, folder: Path, compile_too: bool):
    """(name, one-off seconds, run(x) -> numpy) per runtime; exports are for ``example``'s shape."""
    wrapped = PredictedDepth(model).eval()
    found: list[tuple[str, float, Callable[[torch.Tensor], np.ndarray]]] = []

    def eager(x: torch.Tensor) -> np.ndarray:
        with torch.inference_mode():
            return wrapped(x).numpy()

    found.append(("torch eager fp32", 0.0, eager))
    channels_last = PredictedDepth(model).eval().to(memory_format=torch.channels_last)

    def eager_cl(x: torch.Tensor) -> np.ndarray:
        with torch.inference_mode():
            return channels_last(x.contiguous(memory_format=torch.channels_last)).numpy()

    found.append(("torch channels-last", 0.0, eager_cl))

    def eager_bf16(x: torch.Tensor) -> np.ndarray:
        with torch.inference_mode(), torch.autocast("cpu", dtype=torch.bfloat16):
            return wrapped(x).float().numpy()

    found.append(("torch bf16 autocast", 0.0, eager_bf16))
    if compile_too:
        compiled = torch.compile(wrapped)
        start = time.perf_counter()
        with torch.inference_mode():
            compiled(example)
        found.append(("torch.compile", time.perf_counter() - start, lambda x: _no_grad(compiled, x)))

    onnx_path = folder / "depth.onnx"
    start = time.perf_counter()
    # The traced graph fixes the input size (the model's interpolations become constants), so an
    # export serves one input shape.
    torch.onnx.export(wrapped, (example,), onnx_path, input_names=["pixel_values"], opset_version=17, dynamo=False)
    exported = time.perf_counter() - start
    try:
        import onnxruntime

        start = time.perf_counter()
        session = onnxruntime.InferenceSession(str(onnx_path), providers=["CPUExecutionProvider"])
        found.append(
            ("onnxruntime", exported + time.perf_counter() - start, lambda x: session.run(None, {"pixel_values": x.numpy()})[0])
        )
    except ImportError:
        print("onnxruntime is not installed: skipped")
    try:
        import openvino

        core = openvino.Core()
        for precision in ("f32", "bf16"):
            start = time.perf_counter()
            network = core.compile_model(str(onnx_path), "CPU", {"INFERENCE_PRECISION_HINT": precision})
            found.append(
                (f"openvino {precision}", exported + time.perf_counter() - start, lambda x, n=network: n(x.numpy())[0])
            )
    except ImportError:
        print("openvino is not installed: skipped")
    return found


def _no_grad(function, x: torch.Tensor) -> np.ndarray:
    with torch.inference_mode():
        return function(x).numpy()


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--repeats", type=int, default=5)
    parser.add_argument("--compile", action="store_true", help="also time torch.compile (minutes to compile)")
    args = parser.parse_args()
    print(f"torch threads: {torch.get_num_threads()}")
    with tempfile.TemporaryDirectory() as folder:
        from transformers import AutoModelForDepthEstimation

        model = AutoModelForDepthEstimation.from_pretrained(str(save_small_depth_anything(Path(folder)))).eval()
        print(f"{'input':>11} {'runtime':>20} {'one-off s':>10} {'forward s':>10} {'vs eager':>9} {'max rel diff':>13}")
        for aspect, shape in SHAPES.items():
            example = torch.randn(1, 3, *shape, generator=torch.Generator().manual_seed(0))
            found = runtimes(model, example, Path(folder), args.compile)
            reference = found[0][2](example)
            times: dict[str, list[float]] = {name: [] for name, _, _ in found}
            outputs = {}
            for _ in range(args.repeats):
                for name, _, run in found:
                    start = time.perf_counter()
                    outputs[name] = run(example)
                    times[name].append(time.perf_counter() - start)
            eager_s = statistics.median(times[found[0][0]])
            span = float(reference.max() - reference.min())
            for name, one_off, _ in found:
                median = statistics.median(times[name])
                difference = float(np.abs(outputs[name].reshape(reference.shape) - reference).max()) / span
                print(
                    f"{aspect + ' ' + 'x'.join(map(str, shape)):>11} {name:>20} {one_off:10.1f} {median:10.2f} "
                    f"{eager_s / median:8.2f}x {difference:13.1e}",
                    flush=True,
                )


if __name__ == "__main__":
    main()
