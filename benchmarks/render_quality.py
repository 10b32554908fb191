"""Score ``refocus.render_bokeh`` on the refocus benchmark (``../shared/refocus-bench``).

    python -m benchmarks.render_quality [--quality default] [score.py options, e.g. --depth aa]

The benchmark gives z-depth z (m), a focus distance S (m) and K = aperture radius * focal length
(px m), with CoC radius r = K |1/z - 1/S|. That is exactly render_bokeh's model with
disparity = 1/z, focus_disparity = 1/S and strength = K, so the wrapper below only converts.
The bench's own scorer prints the per-image table and the summary line. Exits cleanly with a
message when the benchmark folder is absent.
"""

from __future__ import annotations

import argparse
import os
import subprocess
import sys
from pathlib import Path

import numpy as np

from refocus.render import render_bokeh

REPO = Path(__file__).resolve().parents[1]
BENCH = REPO.parent / "shared" / "refocus-bench"


def render_dof(image: np.ndarray, depth: np.ndarray, S: float, K: float) -> np.ndarray:
    """The bench's renderer interface on top of render_bokeh (no per-scene settings)."""
    disparity = 1.0 / np.maximum(depth, 1e-6)
    quality = os.environ.get("REFOCUS_QUALITY", "default")
    return render_bokeh(image, disparity.astype(np.float32), 1.0 / S, K, quality=quality)


def main() -> int:
    ap = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    ap.add_argument("--quality", default="default", help="render_bokeh quality (preview/default/high)")
    ap.add_argument("--bench", default=str(BENCH), help="folder holding score.py and scenes/")
    args, rest = ap.parse_known_args()
    score = Path(args.bench) / "score.py"
    if not score.is_file():
        print(f"refocus benchmark not found at {args.bench}; skipping the quality benchmark.")
        return 0
    env = dict(os.environ, REFOCUS_QUALITY=args.quality,
               PYTHONPATH=os.pathsep.join([str(REPO), os.environ.get("PYTHONPATH", "")]))
    cmd = [sys.executable, str(score), "benchmarks.render_quality:render_dof", *rest]
    return subprocess.call(cmd, cwd=REPO, env=env)


if __name__ == "__main__":
    sys.exit(main())
