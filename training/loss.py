"""The scale-invariant log loss of Eigen et al. 2014 (equation 4)."""

from __future__ import annotations

import torch


def scale_invariant_loss(
    log_pred: torch.Tensor, depth: torch.Tensor, valid: torch.Tensor, lam: float = 0.5
) -> torch.Tensor:
    """L = (1/n) sum d^2 - (lam/n^2) (sum d)^2 with d = log_pred - log(depth), per image.

    With ``lam = 1`` the loss ignores a global scale of the prediction; the paper trains with
    ``lam = 0.5``, which keeps some absolute scale and gave slightly better predictions. Sums run
    over each image's valid pixels only (``n`` is that image's count); the batch loss is the
    mean over images that have any valid pixel.

    Args:
        log_pred: (B, 1, H, W) predicted natural log of depth (log metres).
        depth: (B, 1, H, W) ground truth depth in metres (anything where ``valid`` is false).
        valid: (B, 1, H, W) bool, pixels with a measurement.
        lam: the weight of the scale-invariant term, in [0, 1].

    Returns:
        Scalar tensor, float32.

    Example:
        >>> d = torch.ones(1, 1, 2, 2)
        >>> scale_invariant_loss(torch.full((1, 1, 2, 2), 0.1), d, d > 0, lam=1.0)  # pure scale
        tensor(0.)
    """
    if not (log_pred.shape == depth.shape == valid.shape) or log_pred.ndim != 4:
        raise ValueError(
            f"log_pred, depth and valid must all be (B, 1, H, W); got {tuple(log_pred.shape)}, "
            f"{tuple(depth.shape)}, {tuple(valid.shape)}"
        )
    valid = valid.bool()
    # float32 even under autocast: sums of squares over 10^4..10^5 pixels lose too much in fp16.
    d = torch.where(valid, log_pred.float() - torch.log(depth.float().clamp_min(1e-6)), 0.0)
    n = valid.flatten(1).sum(1).float()
    sum_d = d.flatten(1).sum(1)
    sum_d2 = (d * d).flatten(1).sum(1)
    has_pixels = n > 0
    n = n.clamp_min(1.0)
    per_image = sum_d2 / n - lam * sum_d**2 / n**2
    if not has_pixels.any():
        return log_pred.sum() * 0.0  # nothing to learn from; keep the graph for backward()
    return per_image[has_pixels].mean()
