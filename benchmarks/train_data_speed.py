"""Speed of the NYU training input pipeline on the CPU: samples per second, no model.

    python -m benchmarks.train_data_speed                # 48 synthetic frames, batch 8, 2 workers
    python -m benchmarks.train_data_speed --frames 96 --batch-size 16 --workers 4

It writes a synthetic file in the exact NYU layout (``training/synthetic_nyu.py``) to a temporary
directory, once as h5py writes it by default (contiguous) and once chunked one frame per chunk
with gzip, as a compressed MATLAB v7.3 file is (the real 2.97 GB file holds ~6 GB of arrays), and
times the training split's augmented samples:

- the dataset alone, in this process with one torch thread (what one DataLoader worker does);
- a DataLoader with ``--workers`` workers, batches as ``training/train.py`` makes them;
- the same with ``preload=True`` (the split read into RAM once, halved);
- ``training/train.py``'s device pipeline (``DeviceBatches``: preloaded split, one batched
  ``augment_batch`` per batch), here on the CPU with one thread; on CUDA it runs on the GPU.
"""

from __future__ import annotations

import argparse
import tempfile
import time
from pathlib import Path

import h5py
import torch
from torch.utils.data import DataLoader

from training import nyu
from training.train import DeviceBatches
from training.synthetic_nyu import synthetic_frames, write_nyu_mat, write_splits


def rate(fn, count: int, seconds: float = 2.0) -> float:
    """Items per second of ``fn`` (which handles ``count`` items), after one warm-up call."""
    fn()
    done, start = 0, time.perf_counter()
    while time.perf_counter() - start < seconds:
        fn()
        done += count
    return done / (time.perf_counter() - start)


def gzip_copy(src: Path, dst: Path) -> None:
    """The same arrays chunked one frame per chunk with gzip, like a compressed v7.3 file."""
    with h5py.File(src, "r") as f, h5py.File(dst, "w") as g:
        for key in ("images", "depths"):
            g.create_dataset(key, data=f[key][:], chunks=(1, *f[key].shape[1:]), compression="gzip", compression_opts=3)


def loader_rate(dataset, batch: int, workers: int, batches: int) -> float:
    loader = DataLoader(dataset, batch_size=batch, shuffle=True, drop_last=True, num_workers=workers, persistent_workers=workers > 0)

    def stream():
        while True:
            yield from loader

    it = stream()
    for _ in range(max(workers, 1) * 2):  # warm-up: workers started, prefetch queues full
        next(it)
    start = time.perf_counter()
    for _ in range(batches):
        next(it)
    return batches * batch / (time.perf_counter() - start)


def main(argv: list[str] | None = None) -> None:
    p = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    p.add_argument("--frames", type=int, default=48, help="synthetic training frames")
    p.add_argument("--batch-size", type=int, default=8)
    p.add_argument("--workers", type=int, default=2)
    p.add_argument("--seconds", type=float, default=2.0, help="time each in-process row for this long")
    args = p.parse_args(argv)
    torch.set_num_threads(1)  # as in a DataLoader worker; also steadier on a shared box
    rows = []
    started = time.perf_counter()
    with tempfile.TemporaryDirectory(prefix="refocus-data-speed-") as tmp:
        plain, packed, splits = Path(tmp) / "plain.mat", Path(tmp) / "gzip.mat", Path(tmp) / "splits.mat"
        write_nyu_mat(plain, *synthetic_frames(args.frames + 2))
        write_splits(splits, train=list(range(1, args.frames + 1)), test=[args.frames + 1, args.frames + 2])
        gzip_copy(plain, packed)
        for label, path in (("contiguous", plain), ("gzip chunks", packed)):
            ds = nyu.NYUDepthV2(path, splits, "train")
            rows.append((f"h5py read only, {label}", rate(lambda: ds.read(1), 1, args.seconds)))
            rows.append((f"dataset item, {label}", rate(lambda: ds[1], 1, args.seconds)))
        ds = nyu.NYUDepthV2(packed, splits, "train")
        batches = max(4 * args.workers, 8)
        rows.append((f"DataLoader, {args.workers} workers, gzip chunks", loader_rate(ds, args.batch_size, args.workers, batches)))
        start = time.perf_counter()
        ds = nyu.NYUDepthV2(packed, splits, "train", preload=True)
        preload_s = time.perf_counter() - start
        rows.append(("dataset item, preloaded", rate(lambda: ds[1], 1, args.seconds)))
        rows.append((f"DataLoader, {args.workers} workers, preloaded", loader_rate(ds, args.batch_size, args.workers, batches)))
        device_batches = DeviceBatches(ds.frames, args.batch_size, torch.device("cpu"), True, 0, True)

        def stream():
            while True:
                yield from device_batches

        it = stream()
        rows.append(("device pipeline (batched augmentation), on CPU", rate(lambda: next(it), args.batch_size, args.seconds)))

    print(f"\nNYU input pipeline, CPU, 1 torch thread in-process, batch {args.batch_size}, {args.frames} synthetic frames\n")
    print("| path | samples / s | ms / sample |")
    print("|---|---:|---:|")
    for label, r in rows:
        print(f"| {label} | {r:.0f} | {1000 / r:.1f} |")
    value = dict(rows)
    print(f"\npreloading {args.frames} frames took {preload_s:.2f} s ({1000 * preload_s / args.frames:.1f} ms per frame, once)")
    print(f"summary: per-sample item {value['dataset item, gzip chunks']:.0f} -> {value['dataset item, preloaded']:.0f} samples/s "
          f"with --preload; DataLoader ({args.workers} workers) {value[f'DataLoader, {args.workers} workers, gzip chunks']:.0f} -> "
          f"{value[f'DataLoader, {args.workers} workers, preloaded']:.0f}; device pipeline on 1 CPU thread "
          f"{value['device pipeline (batched augmentation), on CPU']:.0f} samples/s; whole run {time.perf_counter() - started:.0f} s")


if __name__ == "__main__":
    main()
