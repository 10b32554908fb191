"""Time to open a 12 MP iPhone HEIC and to bring its depth map to full resolution.

Usage: ``python -m benchmarks.phone_photo [--heic ../shared/real-phone/iphone-portrait-pug.heic] [--repeat 3]``

Baselines measured in the same run, so the ratios hold on a loaded machine: the same pixels as
a JPEG (quality 92) through the same ``load_photo``, and plain bilinear resizing of the depth.
Prints a table (median of the repeats) and a one-line summary.
"""

from __future__ import annotations

import argparse
import io
import statistics
import time
from pathlib import Path

import cv2
import numpy as np
from PIL import Image

from refocus.depth.embedded import embedded_depth_result
from refocus.io import load_photo

DEFAULT_HEIC = Path(__file__).resolve().parents[2] / "shared" / "real-phone" / "iphone-portrait-pug.heic"


def median_seconds(action, repeat: int) -> float:
    times = []
    for _ in range(repeat):
        start = time.perf_counter()
        action()
        times.append(time.perf_counter() - start)
    return statistics.median(times)


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--heic", type=Path, default=DEFAULT_HEIC)
    parser.add_argument("--repeat", type=int, default=3)
    args = parser.parse_args()
    heic = args.heic.read_bytes()
    photo = load_photo(heic)
    jpeg = io.BytesIO()
    Image.fromarray((photo.pixels * 255 + 0.5).astype(np.uint8)).save(jpeg, format="JPEG", quality=92)
    depth = photo.embedded_depth
    size = (photo.width, photo.height)
    rows = [
        ("open HEIC (decode + depth + metadata)", median_seconds(lambda: load_photo(heic), args.repeat)),
        ("open same pixels as JPEG q92 (baseline)", median_seconds(lambda: load_photo(jpeg.getvalue()), args.repeat)),
        (f"depth {depth.size[0]}x{depth.size[1]} -> {size[0]}x{size[1]}, guided",
         median_seconds(lambda: embedded_depth_result(depth, photo.pixels), args.repeat)),
        ("same, bilinear (baseline)",
         median_seconds(lambda: cv2.resize(depth.disparity, size, interpolation=cv2.INTER_LINEAR), args.repeat)),
    ]  # fmt: skip
    print(f"{'step':<55} {'median s':>9}")
    for name, seconds in rows:
        print(f"{name:<55} {seconds:>9.3f}")
    print(f"summary: {size[0] * size[1] / 1e6:.1f} MP HEIC opens in {rows[0][1]:.2f} s "
          f"({rows[0][1] / rows[1][1]:.2f}x the JPEG); phone depth to full resolution {rows[2][1]:.2f} s")


if __name__ == "__main__":
    main()
