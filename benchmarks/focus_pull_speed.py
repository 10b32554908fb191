"""Seconds per frame of a focus pull, at the preview size and at full resolution.

    python -m benchmarks.focus_pull_speed [--megapixels 12] [--frames 8] [--f-number 1.4] [--out DIR]

Scene: ``benchmarks/render_speed.py``'s synthetic 4:3 photo (wall, receding floor, objects at
several depths, small lights) with its depth given, so no network runs. The pull goes from the
near blue object to the far wall (the largest CoCs of the scene) through ``make_focus_pull``,
as the CLI and the app call it, into an MP4. Per frame it records the render alone
(``Refocuser.last_timings.render_s``) and the wall time between frames (render + H.264 encode).
The first frame carries one-off start-up costs, so medians are over frames 2 to N.
"""

from __future__ import annotations

import argparse
import math
import statistics
import tempfile
import time
from pathlib import Path


from benchmarks.render_speed import synthetic_scene
from refocus.animate import FocusPull, make_focus_pull
from refocus.io import Photo
from refocus.refocuser import LensSettings, Refocuser


def time_pull(refocuser: Refocuser, photo: Photo, prepared, pull: FocusPull, settings: LensSettings, path: Path,
              full_resolution: bool) -> tuple[list[float], list[float]]:  # fmt: skip
    """(render seconds per frame, wall seconds per frame) of one pull written to ``path``."""
    renders, walls, last = [], [], [time.perf_counter()]

    def progress(done: int, total: int) -> None:
        now = time.perf_counter()
        renders.append(refocuser.last_timings.render_s)
        walls.append(now - last[0])
        last[0] = now

    make_focus_pull(refocuser, photo, prepared, pull, settings, path, full_resolution=full_resolution, progress=progress)
    return renders, walls


def main(argv: list[str] | None = None) -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--megapixels", type=float, default=12.0)
    parser.add_argument("--frames", type=int, default=8)
    parser.add_argument("--f-number", type=float, default=1.4)
    parser.add_argument("--out", help="keep the MP4s in this folder (default: a temporary one)")
    args = parser.parse_args(argv)
    width = round(math.sqrt(args.megapixels * 1e6 * 4 / 3))
    height = round(width * 3 / 4)
    image, disparity, _, _ = synthetic_scene(width, height)
    photo = Photo(image)
    refocuser = Refocuser()  # depth is given: no model loads
    prepared = refocuser.prepare(photo, disparity)
    pull = FocusPull(((0.8 * width, 0.7 * height), (0.5 * width, 0.2 * height)), frames=args.frames)
    settings = LensSettings(f_number=args.f_number)
    with tempfile.TemporaryDirectory() as scratch:
        out = Path(args.out or scratch)
        out.mkdir(parents=True, exist_ok=True)
        rows = []
        for name, full in [("preview", False), ("full", True)]:
            size = (width, height) if full else prepared.preview.shape[1::-1]
            renders, walls = time_pull(refocuser, photo, prepared, pull, settings, out / f"pull-{name}.mp4", full)
            rows.append((name, size, statistics.median(renders[1:]), statistics.median(walls[1:]), walls[0]))
    print(f"{'frames':>8} {'size':>12} {'render s/frame':>15} {'+ encode s/frame':>17} {'first frame s':>14}")
    for name, (w, h), render_s, wall_s, first_s in rows:
        print(f"{name:>8} {f'{w} x {h}':>12} {render_s:15.3f} {wall_s:17.3f} {first_s:14.3f}")
    (_, _, preview_s, preview_wall, _), (_, _, full_s, full_wall, _) = rows
    print(f"focus pull at f/{args.f_number:g}, {args.frames} frames: {preview_wall:.2f} s per preview frame, "
          f"{full_wall:.2f} s per {args.megapixels:g} MP frame ({full_wall / preview_wall:.1f}x)")  # fmt: skip


if __name__ == "__main__":
    main()
