"""Training speed of the Eigen network: a few hundred AMP steps on a synthetic NYU file.

    python -m benchmarks.gpu_train_check                 # CUDA: paper-sized model, batch 32
    python -m benchmarks.gpu_train_check --device cpu    # smoke check: tiny model, a few steps

It writes a synthetic file in the exact NYU layout (``training/synthetic_nyu.py``), then runs
``training/train.py``'s own code with its default data pipeline (on CUDA: the split preloaded
onto the GPU, the paper's augmentation done there on whole batches): the coarse stage from
scratch and the fine stage from it. A third row runs the coarse stage with
``--augment-on workers`` (preloaded frames, per-sample augmentation in CPU DataLoader workers),
the pipeline the CPU and ``--augment-on workers`` use; with ``--frames`` frames an epoch has only
frames / batch batches, which caps how many workers are busy at once (795 real frames: 24).
A last row times the training step alone on a fixed batch already on the device, which says
whether a run is bound by the GPU or by the data. Step times leave out the first steps (CUDA
start-up, cuDNN autotuning). On an H100 the whole script should take well under 100 s.
"""

from __future__ import annotations

import argparse
import os
import tempfile
import time
from pathlib import Path

import torch

from refocus.depth.eigen import INPUT_SIZE, EigenDepthNet
from training import train as train_script
from training.synthetic_nyu import write_synthetic_nyu

TINY = ["--coarse-channels", "4,8,8,8,8", "--fc-dim", "32", "--fine-channels", "7"]


def run(argv: list[str]) -> dict:
    """One ``training.train`` run as its command line would do it; its summary."""
    return train_script.train(train_script.parse_args(argv))


def time_fixed_batch(model: EigenDepthNet, optimizer, batch_size: int, steps: int, device: torch.device, amp: bool) -> float:
    """Milliseconds per training step on one random batch kept on the device (no data loading)."""
    depth = 0.7 + 9 * torch.rand(batch_size, 1, *INPUT_SIZE, device=device)
    batch = {"image": torch.rand(batch_size, 3, *INPUT_SIZE, device=device), "depth": depth,
             "valid": torch.ones_like(depth, dtype=torch.bool)}  # fmt: skip
    amp_dtype, scaler = train_script.mixed_precision(device, enabled=amp)
    warmup = max(steps // 10, 1)
    for i in range(warmup + steps):
        if i == warmup:
            if device.type == "cuda":
                torch.cuda.synchronize(device)
            start = time.perf_counter()
        train_script.training_step(model, optimizer, scaler, batch, amp_dtype)
    if device.type == "cuda":
        torch.cuda.synchronize(device)
    return 1000 * (time.perf_counter() - start) / steps


def main(argv: list[str] | None = None) -> None:
    p = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    p.add_argument("--device", default="cuda" if torch.cuda.is_available() else "cpu")
    p.add_argument("--steps", type=int, help="coarse steps (fine runs half); default 300 on CUDA, 4 on CPU")
    p.add_argument("--batch-size", type=int, help="default 32 on CUDA (the paper's), 2 on CPU")
    p.add_argument("--frames", type=int, help="synthetic training frames; default 256 on CUDA, 4 on CPU")
    p.add_argument("--workers", type=int, help="DataLoader workers; default min(12, CPUs) on CUDA, 0 on CPU")
    p.add_argument("--tiny", action=argparse.BooleanOptionalAction, help="tiny widths (default on CPU only)")
    args = p.parse_args(argv)
    device = torch.device(args.device)
    cuda = device.type == "cuda"
    steps = args.steps or (300 if cuda else 4)
    batch = args.batch_size or (32 if cuda else 2)
    frames = args.frames or (256 if cuda else 4)
    workers = args.workers if args.workers is not None else (min(12, os.cpu_count() or 1) if cuda else 0)
    tiny = TINY if (args.tiny if args.tiny is not None else not cuda) else []

    started = time.perf_counter()
    rows = []
    with tempfile.TemporaryDirectory(prefix="refocus-gpu-train-") as tmp:
        data, splits = Path(tmp) / "nyu_depth_v2_labeled.mat", Path(tmp) / "splits.mat"
        write_synthetic_nyu(data, splits, n_train=frames, n_test=2)
        common = ["--data", str(data), "--splits", str(splits), "--batch-size", str(batch), "--device", str(device),
                  "--workers", str(workers), "--quiet", "--save-every", str(10**9)]
        coarse = run(common + ["--stage", "coarse", "--out", f"{tmp}/coarse", "--max-steps", str(steps), *tiny])
        rows.append(("coarse, train.py (data + step)", coarse))
        fine = run(
            common + ["--stage", "fine", "--init", f"{tmp}/coarse", "--out", f"{tmp}/fine", "--max-steps", str(max(steps // 2, 2))]
        )
        rows.append(("fine, train.py (data + step)", fine))
        workers_run = run(
            common + ["--stage", "coarse", "--out", f"{tmp}/workers", "--max-steps", str(max(steps // 5, 2)),
                      "--augment-on", "workers", *tiny]
        )
        rows.append((f"coarse, train.py, --augment-on workers ({workers} workers)", workers_run))

        model = EigenDepthNet.from_pretrained(f"{tmp}/coarse").to(device)
        model.train()
        optimizer = train_script.build_optimizer(model, train_script.build_parser().parse_args(
            ["--data", "-", "--splits", "-", "--out", "-", "--stage", "coarse"]))
        ms = time_fixed_batch(model, optimizer, batch, max(steps // 3, 2), device, amp=cuda)
        rows.append(("coarse, step only (fixed batch)", {"ms_per_step": ms, "images_per_s": 1000 * batch / ms,
                                                        "parameters": coarse["parameters"], "loss": None}))

    name = torch.cuda.get_device_name(device) if cuda else "CPU"
    print(f"\nEigen 2014 training speed on {name}, batch {batch}, {'AMP ' + str(coarse['amp']) if coarse['amp'] else 'fp32'}, "
          f"{coarse['parameters']:,} parameters{' (tiny widths)' if tiny else ''}\n")
    print("| run | data pipeline | ms / step | images / s | final loss |")
    print("|---|---|---:|---:|---:|")
    for label, r in rows:
        loss = "-" if r["loss"] is None else f"{r['loss']:.3f}"  # a random fixed batch has no meaningful loss
        print(f"| {label} | {r.get('pipeline', 'none (fixed batch)')} | {r['ms_per_step']:.1f} | {r['images_per_s']:.0f} | {loss} |")
    print(f"\nsummary: coarse stage {coarse['ms_per_step']:.1f} ms/step = {coarse['images_per_s']:.0f} images/s end to end "
          f"on {name} (step alone {ms:.1f} ms; CPU-worker pipeline {workers_run['ms_per_step']:.1f} ms); "
          f"whole check {time.perf_counter() - started:.0f} s")


if __name__ == "__main__":
    main()
