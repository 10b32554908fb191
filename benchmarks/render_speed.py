"""Render time of ``render_bokeh`` against the common approach, at 1 MP and 12 MP.

    python benchmarks/render_speed.py [--device cpu|cuda] [--sizes 1,12] [--repeats 5] [--quick]

The reference is what most refocus demos (and this app's predecessor) do: a stack of
Gaussian-blurred copies of the sRGB image (cv2.GaussianBlur, sigma = r/2, levels 0.5 px apart
growing by 25 % up to 3 px apart), blended per pixel between the two levels around its CoC.
It ignores occlusion and works in sRGB, so it is a speed yardstick, not a quality one.

Scene: a synthetic 4:3 image (textured wall, a receding floor, objects at several depths, small
clipped lights) with the focus on a mid-distance object and a largest CoC of 2.5 % of the long
edge (29 px at 1 MP, 100 px at 12 MP), a strong but realistic portrait-lens blur. render_bokeh's
timing is the median of ``--repeats`` runs after one warm-up (CUDA runs are synchronised); the
reference (always on the CPU, OpenCV) is timed once.
"""

from __future__ import annotations

import argparse
import statistics
import sys
import time
from pathlib import Path

import cv2
import numpy as np
import torch

sys.path.insert(0, str(Path(__file__).resolve().parents[1]))
from refocus.render import render_bokeh  # noqa: E402

MAX_COC_FRACTION = 0.025
SIZES = {0.1: (384, 288), 1: (1152, 864), 12: (4000, 3000)}


def synthetic_scene(width: int, height: int, seed: int = 0) -> tuple[np.ndarray, np.ndarray, float, float]:
    """(image sRGB (H, W, 3), disparity (H, W), focus disparity, strength) of a test scene."""
    rng = np.random.default_rng(seed)
    y, x = np.mgrid[0:height, 0:width].astype(np.float32)
    u, v = x / width, y / height
    stripes = 0.5 + 0.5 * np.sin(40 * (u + 0.6 * v))[..., None]
    image = 0.2 + 0.5 * stripes * np.array([0.8, 0.5, 0.9], np.float32)
    disparity = np.full((height, width), 0.1, np.float32)  # wall, far
    floor = v > 0.6
    disparity[floor] = (0.1 + 2.0 * (v[floor] - 0.6)).astype(np.float32)  # floor comes nearer
    checker = ((np.floor(x / (width / 24)) + np.floor(y / (height / 18))) % 2)[..., None]
    image[floor] = (0.35 + 0.3 * checker * np.array([0.6, 0.9, 0.7], np.float32))[floor]
    for cx, cy, rad, disp, col in [(0.25, 0.55, 0.12, 0.5, (0.9, 0.3, 0.2)),
                                   (0.55, 0.5, 0.1, 0.35, (0.2, 0.7, 0.3)),
                                   (0.8, 0.7, 0.15, 0.9, (0.2, 0.3, 0.9))]:
        inside = (u - cx) ** 2 + ((v - cy) * height / width) ** 2 < rad ** 2
        image[inside] = np.array(col, np.float32) * (0.7 + 0.3 * np.sin(60 * u[inside]))[:, None]
        disparity[inside] = disp
    for _ in range(12):  # small clipped lights on the wall
        lx, ly = int(rng.uniform(0.05, 0.95) * width), int(rng.uniform(0.05, 0.4) * height)
        cv2.circle(image, (lx, ly), max(width // 400, 1), (1.0, 1.0, 1.0), -1)
    image += rng.normal(0, 0.01, image.shape).astype(np.float32)
    focus = 0.35
    strength = MAX_COC_FRACTION * max(width, height) / float(np.abs(disparity - focus).max())
    return np.clip(image, 0, 1).astype(np.float32), disparity, focus, strength


def gaussian_stack(image: np.ndarray, disparity: np.ndarray, focus: float, strength: float) -> np.ndarray:
    """The common approach: per-pixel Gaussian blur of the sRGB image from a stack of blurs."""
    r = strength * np.abs(disparity - focus)
    levels = [0.0]
    step = 0.5
    while levels[-1] < r.max():
        levels.append(levels[-1] + step)
        step = min(step * 1.25, 3.0)
    levels = np.asarray(levels, np.float32)
    idx = np.clip(np.searchsorted(levels, r, side="right") - 1, 0, len(levels) - 2)
    t = np.clip((r - levels[idx]) / (levels[idx + 1] - levels[idx]), 0, 1).astype(np.float32)
    out = np.zeros_like(image)
    for i, level in enumerate(levels):
        weight = np.where(idx == i, 1 - t, 0) + np.where(idx + 1 == i, t, 0)
        if not weight.any():
            continue
        blurred = image if level == 0 else cv2.GaussianBlur(image, (0, 0), level / 2, borderType=cv2.BORDER_REFLECT)
        out += blurred * weight[..., None].astype(np.float32)
    return out


def time_ms(fn, repeats: int, cuda: bool, warm_up: bool = True) -> float:
    if warm_up:
        fn()  # kernel caches, CUDA context
    times = []
    for _ in range(repeats):
        if cuda:
            torch.cuda.synchronize()
        t0 = time.perf_counter()
        fn()
        if cuda:
            torch.cuda.synchronize()
        times.append((time.perf_counter() - t0) * 1000)
    return statistics.median(times)


def main(argv: list[str] | None = None) -> dict:
    ap = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    ap.add_argument("--device", default="cpu", help="cpu or cuda")
    ap.add_argument("--sizes", default="1,12", help="comma-separated megapixels out of 0.1, 1, 12")
    ap.add_argument("--repeats", type=int, default=5)
    ap.add_argument("--quality", default="default")
    ap.add_argument("--quick", action="store_true", help="smoke run: 0.1 MP, one repeat")
    ap.add_argument("--no-reference", action="store_true",
                    help="skip the Gaussian-stack reference (it takes minutes at 12 MP on a laptop)")
    args = ap.parse_args(argv)
    sizes = [0.1] if args.quick else [float(s) if "." in s else int(s) for s in args.sizes.split(",")]
    repeats = 1 if args.quick else args.repeats
    cuda = args.device.startswith("cuda")
    if cuda and not torch.cuda.is_available():
        raise SystemExit("--device cuda asked for, but CUDA is not available.")

    rows = []
    print(f"device {args.device}  quality {args.quality}  repeats {repeats}  "
          f"max CoC {100 * MAX_COC_FRACTION:.1f}% of the long edge")
    print(f"{'size':>6} {'W x H':>11} {'maxCoC':>7} {'render_bokeh ms':>16} {'gauss-stack ms':>15} {'ratio':>6}")
    for mp in sizes:
        w, h = SIZES[mp]
        image, disparity, focus, strength = synthetic_scene(w, h)
        if cuda:  # data already on the device, as the app keeps it between slider moves
            img_t = torch.from_numpy(image).cuda()
            disp_t = torch.from_numpy(disparity).cuda()
            ours = time_ms(lambda: render_bokeh(img_t, disp_t, focus, strength, quality=args.quality),
                           repeats, True)
        else:
            ours = time_ms(lambda: render_bokeh(image, disparity, focus, strength, quality=args.quality),
                           repeats, False)
        # OpenCV has nothing to warm up; one timed run of the (slow) reference is enough
        ref = (float("nan") if args.no_reference else
               time_ms(lambda: gaussian_stack(image, disparity, focus, strength), 1, False, warm_up=False))
        max_coc = strength * float(np.abs(disparity - focus).max())
        rows.append({"mp": mp, "ours_ms": ours, "ref_ms": ref, "ratio": ours / ref})
        print(f"{mp:>5}M {w:>5}x{h:<5} {max_coc:7.1f} {ours:16.1f} {ref:15.1f} {ours / ref:6.2f}", flush=True)
    summary = ", ".join(f"{r['mp']} MP {r['ours_ms']:.0f} ms"
                        + ("" if np.isnan(r["ratio"]) else f" ({r['ratio']:.2f}x the Gaussian stack)")
                        for r in rows)
    print(f"render_bokeh on {args.device}: {summary}")
    return {"device": args.device, "rows": rows}


if __name__ == "__main__":
    main()
