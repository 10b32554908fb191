"""Step 2 of the renderer: the aperture, i.e. the shape of one out-of-focus point (a bokeh ball).

``Aperture`` describes the lens opening, ``aperture_kernel`` turns it into the anti-aliased,
energy-conserving kernel of a given radius, and ``SHAPES`` is the one table of the bokeh shapes
offered to users (UI, API, CLI), each a set of ``render_bokeh`` options.
"""

from __future__ import annotations

import math
from dataclasses import dataclass
from functools import lru_cache

import numpy as np

# The aperture kinds ``render_bokeh(shape=...)`` accepts.
APERTURES = ("disc", "polygon", "ring", "cats_eye")

# Bokeh shapes offered to users (UI, API, CLI): user-facing name -> ``render_bokeh`` options.
SHAPES: dict[str, dict] = {
    "disc": {"shape": "disc"},
    "5-blade": {"shape": "polygon", "blades": 5, "blade_curvature": 0.15},
    "6-blade": {"shape": "polygon", "blades": 6, "blade_curvature": 0.15},
    "8-blade": {"shape": "polygon", "blades": 8, "blade_curvature": 0.15},
    "cats-eye": {"shape": "cats_eye"},
    "ring": {"shape": "ring"},
}

# Inner radius of the mirror-lens ring as a fraction of the outer radius (a typical central
# obstruction of catadioptric lenses).
RING_INNER = 0.6
# Anti-aliasing: each kernel pixel's coverage is estimated from SUPERSAMPLE^2 sub-samples.
SUPERSAMPLE = 8


@dataclass(frozen=True)
class Aperture:
    """The shape of the lens opening, i.e. of one out-of-focus point (a bokeh ball).

    Attributes:
        shape: "disc", "polygon" (``blades`` straight or curved blades), "ring" (mirror lens,
            inner radius ``RING_INNER`` of the outer) or "cats_eye" (the disc clipped by a second,
            shifted disc towards the frame edges, as optical vignetting does).
        blades: number of blades of the polygon, >= 3.
        rotation: polygon rotation in degrees.
        blade_curvature: 0 straight blades ... 1 a circle.
        cats_eye: 0 no vignetting ... 1 strongest clipping (at the frame corners the two discs
            are offset by one radius).
    """

    shape: str = "disc"
    blades: int = 6
    rotation: float = 0.0
    blade_curvature: float = 0.0
    cats_eye: float = 0.5

    @property
    def varies_over_frame(self) -> bool:
        return self.shape == "cats_eye" and self.cats_eye > 0.0

    def inside(self, x: np.ndarray, y: np.ndarray, radius: float, offset: tuple[float, float]) -> np.ndarray:
        """Boolean mask of the points (x, y) (pixels, relative to the centre) inside the aperture.

        ``offset`` is the position in the frame, (-1..1, -1..1) from the centre to the corners;
        it matters only for the cat's eye.
        """
        rho2 = x * x + y * y
        if self.shape == "disc":
            return rho2 <= radius * radius
        if self.shape == "ring":
            return (rho2 <= radius * radius) & (rho2 >= (RING_INNER * radius) ** 2)
        if self.shape == "polygon":
            sector = 2 * math.pi / self.blades
            theta = np.mod(np.arctan2(y, x) - math.radians(self.rotation), sector) - sector / 2
            # distance from the centre to a straight blade at angle theta (vertices on the circle)
            straight = radius * math.cos(sector / 2) / np.cos(theta)
            edge = (1.0 - self.blade_curvature) * straight + self.blade_curvature * radius
            return rho2 <= edge * edge
        # cats_eye: intersection of two discs offset along the radial direction of the frame
        ox, oy = offset
        shift = self.cats_eye * min(math.hypot(ox, oy) / math.sqrt(2), 1.0) * radius
        angle = math.atan2(oy, ox)
        dx, dy = 0.5 * shift * math.cos(angle), 0.5 * shift * math.sin(angle)
        return (((x - dx) ** 2 + (y - dy) ** 2) <= radius * radius) & (
            ((x + dx) ** 2 + (y + dy) ** 2) <= radius * radius)


@lru_cache(maxsize=512)
def aperture_kernel(radius: float, aperture: Aperture = Aperture(),
                    offset: tuple[float, float] = (0.0, 0.0)) -> np.ndarray:
    """Anti-aliased, energy-conserving kernel of one defocused point.

    Args:
        radius: CoC radius in pixels, >= 0 (0 gives the 1x1 identity kernel).
        aperture: the aperture shape.
        offset: position in the frame (-1..1 each, centre = 0), for the cat's eye.
    Returns:
        float32 (2n+1, 2n+1) array, n = ceil(radius - 0.5), summing to 1. This is the
        *scatter* footprint: entry [n + dy, n + dx] is the share of a point's light that lands
        dy rows below and dx columns right of it.
    """
    n = max(int(math.ceil(radius - 0.5)), 0)
    sub = (np.arange(SUPERSAMPLE) + 0.5) / SUPERSAMPLE - 0.5
    grid = (np.arange(-n, n + 1)[:, None] + sub[None, :]).ravel()
    yy, xx = np.meshgrid(grid, grid, indexing="ij")
    cover = aperture.inside(xx, yy, radius, offset).astype(np.float64)
    kernel = cover.reshape(2 * n + 1, SUPERSAMPLE, 2 * n + 1, SUPERSAMPLE).mean(axis=(1, 3))
    if kernel.sum() <= 0.0:  # sub-pixel aperture: all of the point stays in its pixel
        kernel = np.zeros_like(kernel)
        kernel[n, n] = 1.0
    return (kernel / kernel.sum()).astype(np.float32)
