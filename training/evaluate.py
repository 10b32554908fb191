"""Evaluate any refocus depth model on the NYU Depth v2 test split, by the standard protocol.

    python -m training.evaluate --data data/nyu/nyu_depth_v2_labeled.mat --splits data/nyu/splits.mat \\
        --model checkpoints/eigen --json results/eigen.json

``--model`` takes anything ``refocus.load_depth_model`` accepts: an Eigen checkpoint directory,
a hub repo id, or an alias such as depth-anything-v2-small. Each of the 654 official test
frames (480x640) goes to ``model.predict`` whole; errors are measured inside the Eigen crop
(rows 45:471, columns 41:601) where the ground truth lies in (1 mm, 10 m], with predictions
clipped to [1 mm, 10 m], per image, then averaged over images.

Metric models (``DepthResult.is_metric``) are scored as they are. Relative models are aligned
per image by a least-squares scale and shift of their disparity to the ground truth's
(1 / depth). ``--median-scaling`` then also rescales every prediction per image so its median
matches the ground truth's (the convention for scale-ambiguous metric models).
"""

from __future__ import annotations

import argparse
import json
import sys
import time
from pathlib import Path

import numpy as np

from refocus.errors import RefocusError
from training.cli import exit_status
from training.metrics import (
    align_disparity,
    depth_metrics,
    evaluation_mask,
    markdown_table,
    mean_metrics,
    median_scale,
)
from training.nyu import NYUDepthV2


def build_parser() -> argparse.ArgumentParser:
    p = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    p.add_argument("--data", required=True, help="nyu_depth_v2_labeled.mat")
    p.add_argument("--splits", required=True, help="splits.mat (official train/test split)")
    p.add_argument("--model", required=True, help="anything refocus.load_depth_model accepts")
    p.add_argument("--json", help="write the metrics (and settings) to this JSON file")
    p.add_argument("--limit", type=int, help="evaluate only the first N test frames")
    p.add_argument("--median-scaling", action="store_true", help="rescale each prediction to the ground truth's median")
    p.add_argument("--device", help="cpu, cuda ... (default: the loader's choice)")
    p.add_argument("--quiet", action="store_true", help="no progress bar")
    return p


def predicted_depth(result, gt_depth: np.ndarray, mask: np.ndarray, median_scaling: bool) -> np.ndarray:
    """One prediction on the ground truth's footing: metric as is, relative aligned in disparity.

    Args:
        result: the model's ``DepthResult`` for the frame, at the frame's (480, 640).
        gt_depth: (480, 640) ground truth in metres.
        mask: (480, 640) bool, the pixels that are scored (alignment is fitted on them too).
        median_scaling: also rescale to the ground truth's median.

    Returns:
        (480, 640) depth in metres.
    """
    if result.disparity.shape != gt_depth.shape:
        raise RefocusError(
            f"the model returned disparity of shape {result.disparity.shape} for a {gt_depth.shape} frame; "
            "DepthResult must be at the input's resolution"
        )
    if result.is_metric:
        depth = result.depth.astype(np.float64)
    else:
        depth = align_disparity(result.disparity, gt_depth, mask)
    return median_scale(depth, gt_depth, mask) if median_scaling else depth


def evaluate(model, dataset: NYUDepthV2, median_scaling: bool = False, limit: int | None = None, quiet: bool = False) -> dict:
    """Score ``model`` (a refocus ``DepthModel``) on ``dataset``'s frames.

    Returns:
        dict with the ``METRIC_KEYS`` averaged over images, plus ``n_images``, ``is_metric``,
        ``aligned`` and ``median_scaling``, and ``seconds_per_image``.
    """
    from tqdm import tqdm

    count = len(dataset) if limit is None else min(limit, len(dataset))
    if count < 1:
        raise RefocusError("no test frames to evaluate (check --limit and the split)")
    per_image, is_metric, seconds = [], None, 0.0
    for i in tqdm(range(count), desc="evaluate", unit="img", disable=quiet):
        image, gt_depth = dataset.read(i)
        mask = evaluation_mask(gt_depth)
        start = time.perf_counter()
        result = model.predict(image)
        seconds += time.perf_counter() - start
        is_metric = result.is_metric
        per_image.append(depth_metrics(predicted_depth(result, gt_depth, mask, median_scaling), gt_depth, mask))
    return {
        **mean_metrics(per_image),
        "n_images": count,
        "is_metric": bool(is_metric),
        "aligned": "none" if is_metric else "least-squares scale and shift in disparity",
        "median_scaling": median_scaling,
        "seconds_per_image": seconds / count,
    }


def run(args: argparse.Namespace) -> dict:
    """Evaluate ``args.model`` as the command line says: print the table, write ``--json``; the results."""
    from refocus import load_depth_model  # the same loader the app uses

    dataset = NYUDepthV2(args.data, args.splits, "test", augment=False)
    model = load_depth_model(args.model, device=args.device)
    results = evaluate(model, dataset, args.median_scaling, args.limit, args.quiet)
    results = {"model": args.model, **results}
    print(markdown_table({args.model: results}))
    print(
        f"\n{results['n_images']} NYU Depth v2 test frames, Eigen crop, depth capped at 10 m; "
        f"{'metric, not aligned' if results['is_metric'] else 'relative, aligned per image'}"
        f"{', median-scaled' if args.median_scaling else ''}."
    )
    if args.json:
        Path(args.json).parent.mkdir(parents=True, exist_ok=True)
        Path(args.json).write_text(json.dumps(results, indent=2) + "\n")
    return results


def main(argv: list[str] | None = None) -> int:
    """The command line; the exit status (1 with a message on an error)."""
    return exit_status(lambda: run(build_parser().parse_args(argv)))


if __name__ == "__main__":
    sys.exit(main())
