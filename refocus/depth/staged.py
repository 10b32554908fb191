"""Depth at the size it is needed: the network's output kept at its own resolution.

A depth network answers at a few hundred pixels (518 px for Depth Anything); the photo may be
12 or 24 MP, and the edge-aware upsampler costs about 0.6 s per filtered megapixel on a 2-core
CPU. The first preview only needs depth at preview size (1024 px), so ``NetworkDepth`` keeps the
network's disparity and upsamples it to whichever photo it is asked for: the preview at once,
the full-resolution photo only when a full render or the 16-bit depth download needs it.

Relative disparity is scaled once, on the network's map (its 99th percentile becomes 1.0), so
every size is on the same scale and a click reads the same focus value from any of them.
"""

from __future__ import annotations

from dataclasses import dataclass

import numpy as np

from refocus.depth.base import DepthResult
from refocus.depth.upsample import upsample_disparity, upsample_disparity_for_preview

#: Disparity below this (1/m) is "infinity" for a lens: beyond 10 km.
MIN_METRIC_DISPARITY = 1.0 / 1e4


@dataclass(frozen=True)
class NetworkDepth:
    """A network's disparity at the network's own resolution, before upsampling.

    Attributes:
        disparity: float32 (h, w), finite and >= 0, larger = nearer. Relative models: scaled so
            its 99th percentile is 1.0 (zeros for a blank prediction); metric models: 1/m.
        metric: True when ``disparity`` is ``1 / depth`` in 1/m.
        focal_per_width: the focal length the model estimated, in units of the image width
            (Depth Pro), or None.
    """

    disparity: np.ndarray
    metric: bool = False
    focal_per_width: float | None = None

    @property
    def nbytes(self) -> int:
        return self.disparity.nbytes

    def upsample(self, guide: np.ndarray, *, preview: bool = False) -> DepthResult:
        """Depth at ``guide``'s size, its edges following the guide's (``upsample_disparity``).

        Args:
            guide: the photo at the wanted size, (H, W, 3) uint8 or float32 sRGB in [0, 1].
            preview: True for a preview: the faster road, filtered at the network map's size
                with the photo's luma (``upsample_disparity_for_preview``); False for
                full-resolution depth.

        Returns:
            ``DepthResult`` at (H, W); metric models also get ``depth`` (m) and ``focal_px``
            (pixels of this guide).
        """
        upsample = upsample_disparity_for_preview if preview else upsample_disparity
        disparity = np.maximum(upsample(self.disparity, guide), 0.0)
        if not self.metric:
            return DepthResult(disparity=disparity)
        disparity = np.maximum(disparity, MIN_METRIC_DISPARITY)
        width = guide.shape[1]
        focal_px = None if self.focal_per_width is None else self.focal_per_width * width
        return DepthResult(disparity=disparity, depth=(1.0 / disparity).astype(np.float32), focal_px=focal_px)
