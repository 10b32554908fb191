"""One-shot GPU check of the renderer (for a lent CUDA machine; about a minute).

    python -m benchmarks.gpu_render_check            # asserts CUDA
    python -m benchmarks.gpu_render_check --cpu-smoke  # the same steps, tiny, without a GPU

1. CPU vs CUDA agreement: the same scene rendered on both, for every aperture shape; prints
   the mean and max absolute sRGB difference (must be < 2e-3 mean).
2. render_speed on CUDA at 1 MP (with the CPU Gaussian-stack reference) and at 12 MP (CUDA
   only; the reference would take minutes): warm-up, torch.cuda.synchronize, median of 5.
3. render_launches on CUDA at 12 MP: torch ops and cudaLaunchKernel calls of one render (the
   renderer is launch bound on a GPU, so this count is what sets its speed).
"""

from __future__ import annotations

import argparse
import time

import numpy as np
import torch

from benchmarks import render_launches
from benchmarks import render_speed

from refocus.render import SHAPES, render_bokeh


def agreement(device: str, size: tuple[int, int]) -> float:
    image, disparity, focus, strength = render_speed.synthetic_scene(*size)
    worst = 0.0
    for shape, options in SHAPES.items():
        cpu = render_bokeh(image, disparity, focus, strength, **options)
        dev = render_bokeh(torch.from_numpy(image).to(device), torch.from_numpy(disparity).to(device),
                           focus, strength, **options)
        assert dev.device.type == torch.device(device).type, "output left the input's device"
        diff = np.abs(dev.cpu().numpy() - cpu)
        print(f"agreement {shape:<9} mean |cpu - {device}| {diff.mean():.2e}  max {diff.max():.2e}")
        worst = max(worst, float(diff.mean()))
    return worst


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    ap.add_argument("--cpu-smoke", action="store_true", help="run the steps on the CPU, tiny")
    args = ap.parse_args()
    t0 = time.perf_counter()
    if args.cpu_smoke:
        device, speed_args = "cpu", ["--device", "cpu", "--quick"]
    else:
        assert torch.cuda.is_available(), "CUDA is not available: this check needs a GPU"
        device, speed_args = "cuda", ["--device", "cuda", "--sizes", "1", "--repeats", "5"]
        print(f"GPU: {torch.cuda.get_device_name(0)}, torch {torch.__version__}")
    worst = agreement(device, (384, 288))
    assert worst < 2e-3, f"CPU and {device} renders disagree (mean |diff| {worst:.2e})"
    print(f"CPU/{device} agreement OK (worst mean |diff| {worst:.2e})")
    render_speed.main(speed_args)
    if not args.cpu_smoke:  # the CPU reference takes minutes at 12 MP: CUDA timing only
        result = render_speed.main(["--device", "cuda", "--sizes", "12", "--repeats", "5", "--no-reference"])
        twelve = result["rows"][0]["ours_ms"]
        print(f"12 MP on CUDA: {twelve:.1f} ms (target < 100 ms): {'OK' if twelve < 100 else 'SLOWER'}")
        render_launches.main(["--device", "cuda", "--sizes", "4000x3000", "--repeats", "3"])
    else:
        render_launches.main(["--device", "cpu", "--sizes", "500x375", "--repeats", "1"])
    print(f"gpu_render_check finished in {time.perf_counter() - t0:.0f} s")


if __name__ == "__main__":
    main()
