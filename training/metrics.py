"""The standard NYU Depth v2 error metrics, and how a prediction is put on the ground truth's scale.

Protocol (Eigen et al. 2014, as used by later work such as BTS and AdaBins): pixels inside the
Eigen crop (rows 45:471, columns 41:601 of a 480x640 frame) whose ground truth lies in
(1 mm, 10 m]; predictions clipped to [1 mm, 10 m]; metrics computed per image, then averaged over
images.
"""

from __future__ import annotations

import numpy as np

EIGEN_CROP = (slice(45, 471), slice(41, 601))  # (rows, columns) of a 480x640 frame
MIN_DEPTH, MAX_DEPTH = 1e-3, 10.0  # metres
METRIC_KEYS = ("abs_rel", "sq_rel", "rmse", "rmse_log", "log10", "silog", "delta1", "delta2", "delta3")
HIGHER_IS_BETTER = {"delta1", "delta2", "delta3"}


def evaluation_mask(gt_depth: np.ndarray) -> np.ndarray:
    """Pixels that count: inside the Eigen crop, ground truth finite and in (1 mm, 10 m].

    Args:
        gt_depth: (480, 640) ground truth in metres.

    Returns:
        (480, 640) bool.
    """
    if gt_depth.shape != (480, 640):
        raise ValueError(f"the Eigen crop is defined on 480x640 frames, got {gt_depth.shape}")
    mask = np.zeros(gt_depth.shape, bool)
    mask[EIGEN_CROP] = True
    with np.errstate(invalid="ignore"):
        return mask & np.isfinite(gt_depth) & (gt_depth > MIN_DEPTH) & (gt_depth <= MAX_DEPTH)


def align_disparity(disparity: np.ndarray, gt_depth: np.ndarray, mask: np.ndarray) -> np.ndarray:
    """Put a relative (affine-invariant) disparity on the ground truth's scale.

    Solves ``min_{s,t} sum_mask (s * disparity + t - 1 / gt_depth)^2`` (least squares in disparity
    space, as MiDaS and Depth Anything evaluate), then returns ``1 / (s * disparity + t)`` with
    the aligned disparity floored at ``1 / MAX_DEPTH`` so depth stays finite and <= 10 m.

    Args:
        disparity: (H, W) predicted disparity, any scale and shift, larger = nearer.
        gt_depth: (H, W) ground truth in metres.
        mask: (H, W) bool, the pixels to fit on (at least 2).

    Returns:
        (H, W) float64 depth in metres.
    """
    x = disparity[mask].astype(np.float64)
    y = 1.0 / gt_depth[mask].astype(np.float64)
    if x.size < 2:
        raise ValueError("alignment needs at least two valid ground-truth pixels")
    design = np.stack([x, np.ones_like(x)], axis=1)
    (scale, shift), *_ = np.linalg.lstsq(design, y, rcond=None)
    aligned = scale * disparity.astype(np.float64) + shift
    return 1.0 / np.maximum(aligned, 1.0 / MAX_DEPTH)


def median_scale(depth: np.ndarray, gt_depth: np.ndarray, mask: np.ndarray) -> np.ndarray:
    """Scale ``depth`` so that its median over ``mask`` equals the ground truth's."""
    return depth * (np.median(gt_depth[mask]) / np.median(depth[mask]))


def depth_metrics(depth: np.ndarray, gt_depth: np.ndarray, mask: np.ndarray) -> dict[str, float]:
    """Errors of one image's predicted depth against the ground truth, over ``mask``.

    Args:
        depth: (H, W) predicted depth in metres (clipped here to [1 mm, 10 m]).
        gt_depth: (H, W) ground truth in metres.
        mask: (H, W) bool, the pixels to score (at least one).

    Returns:
        dict with ``abs_rel`` mean(|p - g| / g), ``sq_rel`` mean((p - g)^2 / g), ``rmse`` (m),
        ``rmse_log`` (natural log), ``log10`` mean |log10 p - log10 g|, ``silog`` =
        100 * sqrt(mean(e^2) - mean(e)^2) with e = ln p - ln g (the modern convention; Eigen's
        "RMSE (log, scale invariant)" is ``silog / 100``), and ``delta1..3``, the fraction of
        pixels with max(p / g, g / p) < 1.25, 1.25^2, 1.25^3.
    """
    if not mask.any():
        raise ValueError("no valid ground-truth pixels to evaluate")
    p = np.clip(depth[mask].astype(np.float64), MIN_DEPTH, MAX_DEPTH)
    g = gt_depth[mask].astype(np.float64)
    ratio = np.maximum(p / g, g / p)
    e = np.log(p) - np.log(g)
    return {
        "abs_rel": float(np.mean(np.abs(p - g) / g)),
        "sq_rel": float(np.mean((p - g) ** 2 / g)),
        "rmse": float(np.sqrt(np.mean((p - g) ** 2))),
        "rmse_log": float(np.sqrt(np.mean(e**2))),
        "log10": float(np.mean(np.abs(np.log10(p) - np.log10(g)))),
        "silog": float(100.0 * np.sqrt(max(np.mean(e**2) - np.mean(e) ** 2, 0.0))),
        "delta1": float(np.mean(ratio < 1.25)),
        "delta2": float(np.mean(ratio < 1.25**2)),
        "delta3": float(np.mean(ratio < 1.25**3)),
    }


def mean_metrics(per_image: list[dict[str, float]]) -> dict[str, float]:
    """Average per-image metrics over images (each image weighs the same)."""
    if not per_image:
        raise ValueError("no images were evaluated")
    return {key: float(np.mean([m[key] for m in per_image])) for key in METRIC_KEYS}


def markdown_table(rows: dict[str, dict[str, float]]) -> str:
    """A markdown table with one row per model name and one column per metric."""
    header = "| model | " + " | ".join(
        f"{k} {'↑' if k in HIGHER_IS_BETTER else '↓'}" for k in METRIC_KEYS
    ) + " |"
    rule = "|---|" + "---:|" * len(METRIC_KEYS)
    body = [f"| {name} | " + " | ".join(f"{m[k]:.3f}" for k in METRIC_KEYS) + " |" for name, m in rows.items()]
    return "\n".join([header, rule, *body])
