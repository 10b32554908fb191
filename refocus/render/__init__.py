"""Occlusion-aware, layered bokeh renderer in linear light.

The algorithm, one module per step, in the order ``render_bokeh`` (``entry.py``) runs it
(MPIB's layered renderer is the model):

1. ``colour``: decode sRGB to linear light and estimate the energy hidden in clipped
   highlights (small lights only);
2. ``aperture``: the kernel of one defocused point (disc, blades, ring, cat's eye);
3. ``depth_edges``: give each pixel at a depth discontinuity the disparity of one side, by its
   colour (a real map ramps across its edges; the ramp's pixels are not surfaces); then
   ``layers``: the signed circle of confusion ``c = strength * (focus - D)`` (``c > 0`` behind
   the focal plane), small far islands given the CoC of the surface around them (a hole in a
   nearer layer would show what lies behind the island), quantised into depth layers, 1 px
   wide for small blurs, ~20 % wide for large ones, each with its crop box;
4. ``blur``: blur each layer's premultiplied colour and alpha with the aperture kernel of its
   own radius, at 1/s resolution for large radii (lights above white at full resolution);
5. ``occlusion``: extend each blurred layer behind nearer occluders, and fill what it hides in
   the accumulated background (push-pull of the layers behind);
6. ``composite``: from the farthest layer to the nearest, composite each *over* the
   accumulation (a layer blurred at 1/s also at 1/s, with the run of layers sharing s, laid
   over the full-resolution accumulation once); normalise by the accumulated alpha and encode
   back to sRGB.

The loop is written once over the small set of array operations in ``backends``: numpy and
OpenCV on the CPU, torch (grouped convolutions of batched layers) on CUDA.
"""

from __future__ import annotations

import importlib
from typing import TYPE_CHECKING

# Imported lazily (as ``refocus`` does) so that the shape table in ``aperture`` loads without
# torch: the CLI's ``--help`` and the settings checks need it, not the renderer.
_PUBLIC = {
    "render_bokeh": "refocus.render.entry",
    "SHAPES": "refocus.render.aperture",
    "APERTURES": "refocus.render.aperture",
    "Aperture": "refocus.render.aperture",
    "aperture_kernel": "refocus.render.aperture",
    "QUALITIES": "refocus.render.checks",
    "srgb_to_linear": "refocus.render.colour",
    "linear_to_srgb": "refocus.render.colour",
    "NumpyOps": "refocus.render.backends",
    "TorchOps": "refocus.render.backends",
}
__all__ = list(_PUBLIC)

if TYPE_CHECKING:  # pragma: no cover - for type checkers and IDEs only
    from refocus.render.aperture import APERTURES, SHAPES, Aperture, aperture_kernel
    from refocus.render.backends import NumpyOps, TorchOps
    from refocus.render.checks import QUALITIES
    from refocus.render.colour import linear_to_srgb, srgb_to_linear
    from refocus.render.entry import render_bokeh


def __getattr__(name: str):
    if name in _PUBLIC:
        return getattr(importlib.import_module(_PUBLIC[name]), name)
    raise AttributeError(f"module 'refocus.render' has no attribute {name!r}")
