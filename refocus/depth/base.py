"""What every depth backend returns and the small contract it implements."""

from __future__ import annotations

from dataclasses import dataclass
from typing import Protocol

import numpy as np


@dataclass(frozen=True)
class DepthResult:
    """One image's depth, at the resolution of the image it was predicted from.

    Attributes:
        disparity: float32 (H, W), finite and >= 0, larger = nearer. For metric models it is
            ``1 / depth`` in 1/m. For relative (affine-invariant) models it is scaled so that its
            99th percentile is 1.0, which the lens model reads as "the nearest things are about
            1 m away" (see ``refocus.lens``).
        depth: float32 (H, W) metric depth in metres, or None for relative models.
        focal_px: the focal length in pixels the model estimated (Depth Pro), or None.
    """

    disparity: np.ndarray
    depth: np.ndarray | None = None
    focal_px: float | None = None

    @property
    def is_metric(self) -> bool:
        return self.depth is not None

    @property
    def nbytes(self) -> int:
        return self.disparity.nbytes + (0 if self.depth is None else self.depth.nbytes)


class DepthModel(Protocol):
    """A loaded depth network. ``load_depth_model`` returns one of these."""

    name: str  # what the user asked for / the hub id, shown in the UI
    licence: str  # licence of the weights, shown next to the name
    device: str  # "cpu" or "cuda[:n]"

    def predict(self, image: np.ndarray) -> DepthResult:
        """Predict depth for float32 (H, W, 3) sRGB in [0, 1] (uint8 is accepted too)."""
        ...
