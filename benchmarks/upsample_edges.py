"""How much better than bilinear is the edge-aware disparity upsampling, on real photos?

Protocol, on the three NYU Depth V2 frames in ``../shared/real-rgbd`` (640x480, Kinect depth in
mm, 0 = no measurement):

1. ground-truth depth -> disparity (1/m);
2. shrink it by ``--factor`` to play the network's output: Depth Anything sees 518 px, so a
   ~2000 px photo is upsampled about 4x (the default: 160x120 here), a 12 MP photo about 8x,
   and the 1024 px preview 1.3-1.5x (``--factor 1.32``: 485x364).
   The shrink averages valid pixels only; cells with no measurement are inpainted, since a
   network predicts everywhere;
3. bring it back to 640x480 with each method, guided by the RGB photo;
4. score on valid pixels: near depth edges (within ``--band`` px of a place where the true
   disparity jumps by > ``--jump`` (25 %) between neighbours) and everywhere. ``bad%`` is the share of
   pixels whose disparity is off by more than 10 %.

The low-resolution input is exact ground truth, so this isolates the upsampling step: a real
network's output is softer at edges, which leaves less to recover.

Methods: bilinear, a guided and a joint-bilateral filter (averages), an unguided 5 x 5 median
at the map's size (sharp edges, but blind to the photo: it erases structures under 3 map pixels
wide, see ``tests/test_depth_models.py``), refocus's colour-guided weighted median at the
output's size (full-resolution depth) and at the map's size, and the preview's road
(``upsample_disparity_for_preview``: luma-guided, at the map's size).

With ``--render`` it also renders each frame (``render_bokeh``, largest blur 12 px, focused near
and far: the 90th and 30th percentiles of the true disparity) with each method's map and with
the true map (holes inpainted), and prints the PSNR between them: what a viewer sees, after the
renderer's own depth-edge snapping (``refocus/render/depth_edges.py``).

Usage: ``python -m benchmarks.upsample_edges [--factor 4] [--band 3] [--render]``. Reads the photos in
place; writes nothing (the NYU frames are research-only data: never commit them or outputs
derived from them).
"""

from __future__ import annotations

import argparse
import time
from pathlib import Path

import cv2
import numpy as np

from refocus.depth.upsample import upsample_disparity, upsample_disparity_for_preview

REPO = Path(__file__).resolve().parents[1]
NYU = REPO.parent / "shared" / "real-rgbd" / "nyu_depth_v2_metric3d_demo"


def load_frame(index: str) -> tuple[np.ndarray, np.ndarray, np.ndarray]:
    """(uint8 RGB (H, W, 3), float32 disparity in 1/m (H, W), bool valid (H, W))."""
    rgb = cv2.cvtColor(cv2.imread(str(NYU / "rgb" / f"rgb_{index}.jpg")), cv2.COLOR_BGR2RGB)
    depth_mm = cv2.imread(str(NYU / "depth" / f"sync_depth_{index}.png"), cv2.IMREAD_UNCHANGED)
    valid = depth_mm > 0
    disparity = np.where(valid, 1000.0 / np.maximum(depth_mm, 1), 0.0).astype(np.float32)
    return rgb, disparity, valid


def shrink(disparity: np.ndarray, valid: np.ndarray, factor: float) -> np.ndarray:
    """Area-average valid disparities into a (H/factor, W/factor) map; inpaint empty cells."""
    size = (round(disparity.shape[1] / factor), round(disparity.shape[0] / factor))
    total = cv2.resize(disparity * valid, size, interpolation=cv2.INTER_AREA)
    coverage = cv2.resize(valid.astype(np.float32), size, interpolation=cv2.INTER_AREA)
    low = np.where(coverage > 0.25, total / np.maximum(coverage, 1e-6), 0.0).astype(np.float32)
    holes = (coverage <= 0.25).astype(np.uint8)
    return cv2.inpaint(low, holes, 3, cv2.INPAINT_TELEA) if holes.any() else low


def edge_band(disparity: np.ndarray, valid: np.ndarray, band: int, jump: float) -> np.ndarray:
    """Valid pixels within ``band`` px of a depth edge (a relative ``jump`` between neighbours).

    Edges are found on the ground truth with its holes inpainted: a Kinect leaves an unmeasured
    "shadow" beside most occlusion boundaries, so on the raw map the foreground's outline would
    mostly border a hole and go unnoticed. Only measured pixels are scored.
    """
    holes = (~valid).astype(np.uint8)
    filled = cv2.inpaint(disparity, holes, 3, cv2.INPAINT_TELEA) if holes.any() else disparity
    kernel = np.ones((3, 3), np.uint8)
    edges = cv2.dilate(filled, kernel) - cv2.erode(filled, kernel) > jump * filled
    return valid & (cv2.dilate(edges.astype(np.uint8), np.ones((2 * band + 1,) * 2, np.uint8)) > 0)


def methods(factor: float):
    """name -> function(low disparity, uint8 photo) -> full-resolution disparity."""

    def bilinear(low, rgb):
        return cv2.resize(low, rgb.shape[1::-1], interpolation=cv2.INTER_LINEAR)

    def guided(low, rgb):  # He et al.'s guided filter on the bilinear map, same reach as ours
        return cv2.ximgproc.guidedFilter(rgb, bilinear(low, rgb), round(2 * factor), 1e-4 * float(low.max()) ** 2)

    def joint_bilateral(low, rgb):
        start = bilinear(low, rgb)
        return cv2.ximgproc.jointBilateralFilter(
            rgb.astype(np.float32) / 255, start, round(4 * factor) + 1, 0.1, 2 * factor
        )

    def unguided_median(low, rgb):
        return bilinear(cv2.medianBlur(low, 5), rgb)

    def colour_at_map_size(low, rgb):
        return upsample_disparity(low, rgb, filter_at="input")

    return {
        "bilinear": bilinear,
        "guided filter": guided,
        "joint bilateral": joint_bilateral,
        "unguided median at map size": unguided_median,
        "refocus (weighted median)": upsample_disparity,
        "weighted median at map size": colour_at_map_size,
        "refocus preview (luma, map size)": upsample_disparity_for_preview,
    }


class RenderScore:
    """PSNR (dB) of renders with a predicted map against renders with the true map, one frame."""

    BLUR_PX = 12.0  # largest circle-of-confusion radius in the frame
    FOCUS_PERCENTILES = (90, 30)  # near and far focus, percentiles of the true disparity

    def __init__(self, rgb: np.ndarray, truth: np.ndarray, valid: np.ndarray):
        from refocus import render_bokeh

        self.render = render_bokeh
        holes = (~valid).astype(np.uint8)
        filled = cv2.inpaint(truth, holes, 3, cv2.INPAINT_TELEA) if holes.any() else truth
        self.image = rgb.astype(np.float32) / 255
        self.strength = self.BLUR_PX / float(filled.max() - filled.min())
        self.focus = [float(np.percentile(filled, q)) for q in self.FOCUS_PERCENTILES]
        self.references = [self.render(self.image, filled, f, self.strength) for f in self.focus]

    def __call__(self, predicted: np.ndarray) -> float:
        errors = [
            np.mean((self.render(self.image, predicted, f, self.strength) - reference) ** 2)
            for f, reference in zip(self.focus, self.references)
        ]
        return float(10 * np.log10(1 / np.mean(errors)))


def score(predicted: np.ndarray, truth: np.ndarray, mask: np.ndarray) -> tuple[float, float]:
    """(RMSE in 1/m, % of pixels off by > 10 %) over ``mask``."""
    error = predicted[mask] - truth[mask]
    return float(np.sqrt(np.mean(error**2))), float(100 * np.mean(np.abs(error) > 0.1 * truth[mask]))


def format_row(row) -> str:
    """edge RMSE, edge bad%, all RMSE, all bad%, ms[, render dB] as the table's columns."""
    text = f"{row[0]:10.4f} {row[1]:10.1f} {row[2]:9.4f} {row[3]:9.1f} {row[4]:6.0f}"
    return text + (f" {row[5]:9.2f}" if len(row) > 5 else "")


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    parser.add_argument("--factor", type=float, default=4, help="downscale factor playing the network (default 4)")
    parser.add_argument("--band", type=int, default=3, help="edge band half-width in px (default 3)")
    parser.add_argument(
        "--jump", type=float, default=0.25,
        help="relative disparity jump between neighbours that makes a depth edge (default 0.25: occlusion "
        "boundaries, where halos appear; 0.1 also counts creases and sensor noise)",
    )  # fmt: skip
    parser.add_argument("--render", action="store_true", help="also score renders against the true map's (slower)")
    args = parser.parse_args()
    if not NYU.is_dir():
        print(f"skipped: {NYU} is absent (the shared real-rgbd data is not on this machine)")
        return 0

    indices = sorted(p.stem.removeprefix("rgb_") for p in (NYU / "rgb").glob("rgb_*.jpg"))
    table = {name: [] for name in methods(args.factor)}
    print(f"NYU Depth V2, {len(indices)} frames, 640x480, disparity shrunk {args.factor}x and brought back")
    header = f"{'frame':7} {'method':32} {'edge RMSE':>10} {'edge bad%':>10} {'all RMSE':>9} {'all bad%':>9} {'ms':>6}"
    print(header + (f" {'render dB':>9}" if args.render else ""))
    for index in indices:
        rgb, truth, valid = load_frame(index)
        low = shrink(truth, valid, args.factor)
        near_edges = edge_band(truth, valid, args.band, args.jump)
        rendered = RenderScore(rgb, truth, valid) if args.render else None
        for name, upsample in methods(args.factor).items():
            start = time.perf_counter()
            predicted = upsample(low, rgb)
            elapsed_ms = 1000 * (time.perf_counter() - start)
            row = (*score(predicted, truth, near_edges), *score(predicted, truth, valid), elapsed_ms)
            row += (rendered(predicted),) if rendered else ()
            table[name].append(row)
            print(f"{index:7} {name:32} " + format_row(row))
    print("mean over frames:")
    means = {name: np.mean(rows, axis=0) for name, rows in table.items()}
    for name, m in means.items():
        print(f"{'':7} {name:32} " + format_row(m))
    ours, base = means["refocus (weighted median)"], means["bilinear"]
    fast = means["refocus preview (luma, map size)"]
    change = lambda new, old: f"{old:.3f} -> {new:.3f} ({100 * (new - old) / old:+.0f}%)"  # noqa: E731
    print(
        f"summary: {args.factor}x upsampling, weighted median vs bilinear: near depth edges (+-{args.band} px, jumps > "
        f"{args.jump:.0%}) disparity RMSE {change(ours[0], base[0])} 1/m, pixels >10% off {base[1]:.1f}% -> "
        f"{ours[1]:.1f}%; all valid pixels RMSE {change(ours[2], base[2])}, >10% off {base[3]:.1f}% -> {ours[3]:.1f}%. "
        f"Preview (luma-guided at the map's size) vs weighted median: edge RMSE {change(fast[0], ours[0])}, "
        f"time {ours[4]:.0f} -> {fast[4]:.0f} ms."
    )
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
