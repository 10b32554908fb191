"""Render time of ``render_bokeh`` against the common approach, at 1 MP and 12 MP.

    python -m benchmarks.render_speed [--device cpu|cuda] [--sizes 1,12] [--repeats 5] [--quick]
    python -m benchmarks.render_speed --real [--sizes 1,3,12] [--scenes iphone,nyu,kitti]
    python -m benchmarks.render_speed --real --clicks 10 [--scenes iphone,nyu,kitti]

The reference is what most refocus demos (and this app's predecessor) do: a stack of
Gaussian-blurred copies of the sRGB image (cv2.GaussianBlur, sigma = r/2, levels 0.5 px apart
growing by 25 % up to 3 px apart), blended per pixel between the two levels around its CoC.
It ignores occlusion and works in sRGB, so it is a speed yardstick, not a quality one.

Scene: a synthetic 4:3 image (textured wall, a receding floor, objects at several depths, small
clipped lights) with the focus on a mid-distance object and a largest CoC of 2.5 % of the long
edge (29 px at 1 MP, 100 px at 12 MP), a strong but realistic portrait-lens blur. render_bokeh's
timing is the median of ``--repeats`` runs after one warm-up (CUDA runs are synchronised); the
reference (always on the CPU, OpenCV) is timed once.

``--real``: real photos with their real depth maps instead (``../shared``; a scene whose files
are absent is skipped). Real depth has floors, walls and ground planes, so every depth layer
spans much of the frame, unlike the compact objects above:

- iphone: the iPhone 13 Pro portrait (4032 x 3024) with its embedded depth (768 x 576, 8-bit
  uniform disparity between the metadata's d_min and d_max, 1/m; needs ``pillow-heif``),
  26 mm-equivalent lens at f/1.8, focus on the centre (the dog);
- nyu: NYU Depth V2 frame 00050 (640 x 480, Kinect depth in mm, holes filled with the nearest
  measurement), fx = 518.9 px, f/1.8, focus on the centre;
- kitti: KITTI frame 0000000050 (1242 x 375, projected LiDAR, ~20 % of pixels measured, the
  rest filled with the nearest measurement), fx = 707.0 px, f/1.4, focus on the centre.

"refocus ms" is the same render given a ``Reuse`` that already holds what does not depend
on the focus (the depth edges and the linear colour, ``refocus.render.reuse``): a click's or a
focus pull frame's cost at that size.

``--clicks N``: the app's preview instead (long edge 1024 px), refocused at N random points as
clicks do, each rendered from scratch and with the ``Reuse`` the app keeps per photo
(``refocus.render.reuse``: depth edges and linear colour computed once), interleaved.

Each is resized (photo area, depth bilinear) to about 1, 3 or 12 MP keeping its aspect; the
blur strength follows the lens (``refocus.lens.blur_strength``) at that size. Each row also
gives the number of depth layers and the pixels the renderer processes (``layer_work``: the
layers' tiles or crop boxes at full resolution, in frames, and what they are blurred and
composited over at their working resolution 1/s, "at 1/s"), the scaling of its cost.
"""

from __future__ import annotations

import argparse
import math
import statistics
import time
from pathlib import Path

import cv2
import numpy as np
import torch

from scipy import ndimage

from refocus.lens import blur_strength, focal_length_px, focus_disparity_at
from refocus.refocuser import PREVIEW_SIZE
from refocus.render import QUALITIES, NumpyOps, render_bokeh
from refocus.render.layers import plan_layers, scale, signed_coc
from refocus.render.reuse import Reuse
from refocus.render.tiles import REDUCED_TILE, TILE, Grid, occupancy, occupied_tiles, reduced_tiles

MAX_COC_FRACTION = 0.025
SIZES = {0.1: (384, 288), 1: (1152, 864), 3: (2000, 1500), 12: (4000, 3000)}
SHARED = Path(__file__).resolve().parents[2] / "shared"
REAL_RGBD = SHARED / "real-rgbd"


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


def _nearest_filled(depth: np.ndarray) -> np.ndarray:
    """Depth (H, W) with its zeros (no measurement) replaced by the nearest measurement."""
    _, (iy, ix) = ndimage.distance_transform_edt(depth <= 0, return_indices=True)
    return depth[iy, ix]


def load_real(name: str) -> tuple[np.ndarray, np.ndarray, float, float] | None:
    """(sRGB image (H, W, 3) float32, disparity in 1/m at the image's size, focal length in px
    at the image's width, f-number) of a real scene, or None where its files are absent."""
    if name == "iphone":
        path = SHARED / "real-phone" / "iphone-portrait-pug.heic"
        try:
            import pillow_heif
            from PIL import Image
        except ImportError:
            return None
        if not path.is_file():
            return None
        pillow_heif.register_heif_opener()
        with Image.open(path) as im:
            image = np.asarray(im.convert("RGB"), np.float32) / 255.0
            depth = im.info["depth_images"][0]
            meta = depth.info["metadata"]
            code = np.asarray(depth, np.float32) / 255.0
        disparity = meta["d_min"] + code * (meta["d_max"] - meta["d_min"])  # uniform disparity, 1/m
        h, w = image.shape[:2]
        disparity = cv2.resize(disparity, (w, h), interpolation=cv2.INTER_LINEAR)
        return image, disparity.astype(np.float32), focal_length_px(w, h, 26.0), 1.8
    folder, frame, fx, f_number = {"nyu": ("nyu_depth_v2_metric3d_demo", "00050", 518.8579, 1.8),
                                   "kitti": ("kitti_metric3d_demo", "0000000050", 707.0493, 1.4)}[name]
    rgb = REAL_RGBD / folder / "rgb" / (f"rgb_{frame}.jpg" if name == "nyu" else f"{frame}.png")
    dep = REAL_RGBD / folder / "depth" / (f"sync_depth_{frame}.png" if name == "nyu" else f"{frame}.png")
    if not (rgb.is_file() and dep.is_file()):
        return None
    image = cv2.cvtColor(cv2.imread(str(rgb)), cv2.COLOR_BGR2RGB).astype(np.float32) / 255.0
    depth = cv2.imread(str(dep), cv2.IMREAD_UNCHANGED).astype(np.float32) / (1000.0 if name == "nyu" else 256.0)
    disparity = 1.0 / np.maximum(_nearest_filled(depth), 0.1)
    return image, disparity.astype(np.float32), fx, f_number


def real_scene(loaded: tuple[np.ndarray, np.ndarray, float, float],
               mp: float) -> tuple[np.ndarray, np.ndarray, float, float]:
    """A loaded real scene at about ``mp`` megapixels: (image, disparity, focus, strength)."""
    image, disparity, fx, f_number = loaded
    h0, w0 = disparity.shape
    scale = math.sqrt(mp * 1e6 / (h0 * w0))
    w, h = round(w0 * scale), round(h0 * scale)
    area = cv2.INTER_AREA if scale < 1 else cv2.INTER_LINEAR
    image = np.clip(cv2.resize(image, (w, h), interpolation=area), 0, 1)
    disparity = cv2.resize(disparity, (w, h), interpolation=cv2.INTER_LINEAR)
    focus = focus_disparity_at(disparity, w / 2, h / 2)
    return image, disparity, focus, blur_strength(f_number, w, h, fx * w / w0)


def layer_work(image: np.ndarray, disparity: np.ndarray, focus: float, strength: float,
               quality: str) -> tuple[int, float, float]:
    """(occupied depth layers, the pixels the layers are stacked over at full resolution / frame
    pixels, and the pixels they are blurred and composited over at their working resolution
    1/s / frame pixels): the scaling of the cost. A layer works on its tiles where the renderer
    tiles it (``refocus/render/tiles.py``), else on its crop box."""
    ops = NumpyOps()
    fine_radius, relative_width = QUALITIES[quality]
    _, layers, cells = plan_layers(ops, signed_coc(ops, disparity, focus, strength, 0.0), relative_width)
    present = occupancy(cells, Grid(*disparity.shape))
    tiles = occupied_tiles(present, layers)
    full = reduced = 0.0
    for ly in layers:
        s = scale(ly.radius, fine_radius)
        if s == 1 and ly.k in tiles:
            full += len(tiles[ly.k][0]) * TILE ** 2
            reduced += len(tiles[ly.k][0]) * TILE ** 2
            continue
        where = reduced_tiles(present, ly, s) if s > 1 else None
        full += ly.height * ly.width if where is None else len(where[0]) * (REDUCED_TILE * s) ** 2
        reduced += ly.height * ly.width / s ** 2
    return len(layers), full / disparity.size, reduced / disparity.size


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
    ap.add_argument("--real", action="store_true", help="real photos with real depth (see above)")
    ap.add_argument("--scenes", default="iphone,nyu,kitti", help="with --real: which scenes")
    ap.add_argument("--clicks", type=int, default=0, help="with --real: time N clicks on the 1024 px preview")
    args = ap.parse_args(argv)
    if args.real and args.clicks:
        return main_clicks(args)
    if args.real:
        return main_real(args)
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


def main_clicks(args: argparse.Namespace) -> dict:
    """Clicks on the preview: per scene, the median ms of a render from scratch and of one that
    reuses the focus-independent steps, at random focus points, and the Gaussian stack's."""
    rng = np.random.default_rng(0)
    rows = []
    print(f"clicks on the {PREVIEW_SIZE} px preview, {args.clicks} random focus points, median ms")
    print(f"{'scene':>7} {'W x H':>11} {'fresh':>7} {'reuse':>7} {'ratio':>6} {'gauss-stack':>12}")
    for name in args.scenes.split(","):
        loaded = load_real(name)
        if loaded is None:
            print(f"{name:>7}  (files or pillow-heif absent: skipped)")
            continue
        h0, w0 = loaded[1].shape
        image, disparity, focus, strength = real_scene(loaded, PREVIEW_SIZE ** 2 * min(h0, w0) / max(h0, w0) / 1e6)
        h, w = disparity.shape
        reuse = Reuse()
        render_bokeh(image, disparity, focus, strength, reuse=reuse)  # the photo's first preview
        times: dict[str, list[float]] = {"fresh": [], "reuse": []}
        for _ in range(args.clicks):
            focus = focus_disparity_at(disparity, rng.uniform(0, w - 1), rng.uniform(0, h - 1))
            for label, kept in (("fresh", None), ("reuse", reuse)):
                t0 = time.perf_counter()
                render_bokeh(image, disparity, focus, strength, reuse=kept)
                times[label].append((time.perf_counter() - t0) * 1000)
        fresh, reused = statistics.median(times["fresh"]), statistics.median(times["reuse"])
        ref = time_ms(lambda: gaussian_stack(image, disparity, focus, strength), 3, False)
        rows.append({"scene": name, "fresh_ms": fresh, "reuse_ms": reused, "ref_ms": ref})
        print(f"{name:>7} {w:>5}x{h:<5} {fresh:7.0f} {reused:7.0f} {reused / fresh:6.2f} {ref:12.0f}", flush=True)
    return {"rows": rows}


def main_real(args: argparse.Namespace) -> dict:
    """The real-depth table: per scene and size, layers, processed pixels, ms and the ratio."""
    sizes = [float(v) for v in args.sizes.split(",")]
    cuda = args.device.startswith("cuda")
    rows = []
    print(f"device {args.device}  quality {args.quality}  repeats {args.repeats}  real depth")
    print(f"{'scene':>7} {'W x H':>11} {'maxCoC':>7} {'layers':>6} {'frames':>7} {'at 1/s':>7} "
          f"{'render_bokeh ms':>16} {'refocus ms':>11} {'gauss-stack ms':>15} {'ratio':>6}")
    for name in args.scenes.split(","):
        loaded = load_real(name)
        if loaded is None:
            print(f"{name:>7}  (files or pillow-heif absent: skipped)")
            continue
        for mp in sizes:
            image, disparity, focus, strength = real_scene(loaded, mp)
            h, w = disparity.shape
            layers, frames, reduced = layer_work(image, disparity, focus, strength, args.quality)
            on = ((torch.from_numpy(image).cuda(), torch.from_numpy(disparity).cuda()) if cuda
                  else (image, disparity))
            ours = time_ms(lambda: render_bokeh(*on, focus, strength, quality=args.quality), args.repeats, cuda)
            # the same render given what does not depend on the focus (a click's or a focus
            # pull frame's case): the difference is the depth edges and the linear colour
            reuse = Reuse()
            refocus = time_ms(lambda: render_bokeh(*on, focus, strength, quality=args.quality, reuse=reuse),
                              args.repeats, cuda)
            ref = (float("nan") if args.no_reference else
                   time_ms(lambda: gaussian_stack(image, disparity, focus, strength), 1, False, warm_up=False))
            max_coc = strength * float(np.abs(disparity - focus).max())
            rows.append({"scene": name, "mp": mp, "layers": layers, "frames": frames, "reduced": reduced,
                         "ours_ms": ours, "refocus_ms": refocus,
                         "ref_ms": ref, "ratio": ours / ref})
            print(f"{name:>7} {w:>5}x{h:<5} {max_coc:7.1f} {layers:6d} {frames:7.1f} {reduced:7.2f} {ours:16.1f} "
                  f"{refocus:11.1f} {ref:15.1f} {ours / ref:6.2f}", flush=True)
    return {"device": args.device, "rows": rows}


if __name__ == "__main__":
    main()
