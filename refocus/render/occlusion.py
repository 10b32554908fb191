"""Step 5 of the renderer: occlusion and fill.

A blurred layer must not let the layers behind shine through where something nearer hides it
(``extend_behind_occluders``), and where its blurred silhouette turns semi-transparent it
reveals a plausible continuation of the background (``fill_hidden``).
"""

from __future__ import annotations

import math

import numpy as np

from refocus.render.backends import Array, Ops

# Depth of the fill's push-pull pyramid (levels 1/f ... 1/(32 f), then one mean). Why a cap:
# what a blurred layer reveals lies within its blur radius (about 2 f) of its silhouette, so
# context from farther than 32 f (16 radii) is summarised by one mean instead of up to 7 more
# levels at 12 MP, each a few kernel launches per layer on a GPU. The benchmark's scores are the
# same with and without the cap (to the second decimal); with 3 levels they start to drop.
FILL_LEVELS = 6
# A masked pixel needs a fill where the background's alpha is below this.
OPAQUE = 0.999


def extend_behind_occluders(ops: Ops, blurred: Array) -> Array:
    """(..., 5) blurred [colour, alpha, nearer - 1] -> the premultiplied layer [colour, alpha, 0],
    written over ``blurred`` and returned. (The fifth channel, zero, lets the composite carry a
    transmittance through the same multiply-add as the colour.)

    A surface does not end where something nearer hides it (or where the frame cuts it): near
    such an edge its blur must average its own colour only, at full opacity, or the layers
    behind would shine through (a dark floor turning bright below an in-focus object, borders
    darkening). The layer's opacity is therefore its share of the part of the kernel that
    nearer pixels leave visible, ``own / (1 - nearer)``: what the nearer pixels hide is taken
    to hold the same mix as what is seen around it. Inside a surface this is 1. Where the
    nearer pixels are the same surface a little nearer (a sphere's centre, a floor's next
    depth layer), compositing them over this layer then adds up their coverages exactly,
    instead of counting the rim twice. The hidden part counts only as far as the layer is
    really seen nearby (fully once it covers a quarter of the kernel), so a layer that is
    barely present is not blown up to full opacity behind an occluder.
    """
    colour, own, nearer = blurred[..., :3], blurred[..., 3:4].clip(0.0, 1.0), blurred[..., 4:5] + 1.0
    seen = (4.0 * own).clip(0.0, 1.0)
    alpha = (own / ops.maximum((1.0 - seen * nearer).clip(1e-6, None), own)).clip(0.0, 1.0)
    colour *= alpha / own.clip(1e-6, None)
    blurred[..., 3:4] = alpha
    blurred[..., 4:] = 0.0
    return blurred


def fill_factor(radius: float) -> int:
    """The fill is smooth at the scale of the blur: its pyramid starts at 1/f, f ~ radius / 2,
    and at 1/2 at least: for small blurs a full-resolution level costs several passes over the
    layer's crop and changes nothing (bench scores equal to the fourth digit; from 1/4, -0.01 dB)."""
    return 2 ** max(int(math.log2(max(radius / 2, 1.0))), 1)


def fill_hidden(ops: Ops, acc: Array, mask: Array, radius: float) -> None:
    """Fill the holes of the accumulated background ``acc`` (h, w, 4) under ``mask`` (h, w), in
    place.

    What a layer hides in the pinhole image is unknown; when the layer is blurred, its silhouette
    turns semi-transparent and reveals some of it. The estimate here is a push-pull
    (normalised-convolution pyramid) of the visible background around it: colour from the
    nearest background, smooth at the scale of the blur radius. The pyramid starts at 1/f of
    the resolution and has at most FILL_LEVELS levels; what lies farther is summarised by the
    mean of the coarsest level. Where the background under the mask is already opaque, ``acc``
    is left unchanged.
    """
    missing = (1.0 - acc[..., 3:]).clip(0.0, None) * mask[..., None]
    # any masked pixel with alpha < OPAQUE <=> max(missing) > 1 - OPAQUE (1 - alpha is exact there)
    hole = missing.max() > 1.0 - float(np.float32(OPAQUE))
    if ops.branch_on_values:
        if not bool(hole):
            return
    else:  # the same values without a host sync
        missing = missing * hole
    h, w = acc.shape[:2]
    f = fill_factor(radius)
    levels = [ops.box_downsample(acc, f)]
    while max(levels[-1].shape[:2]) > 1 and len(levels) < FILL_LEVELS:
        levels.append(ops.box_downsample(levels[-1], 2))
    if max(levels[-1].shape[:2]) > 1:  # the rest of the pyramid, summarised by its mean
        levels.append(ops.mean_hw(levels[-1]))
    # normalised colour and confidence per level, all levels at once (one buffer: a few ops
    # whatever the pyramid's depth); a pixel counts as known once a quarter of it is covered.
    # Where nothing at all is behind, the fill stays transparent.
    known = normalise(ops.rows(levels))
    keep = 1.0 - known[:, 3:]
    offsets = np.cumsum([0] + [lv.shape[0] * lv.shape[1] for lv in levels]).tolist()

    def level(t: Array, i: int) -> Array:  # rows of level i -> (h_i, w_i, C)
        return t[offsets[i]:offsets[i + 1]].reshape(*levels[i].shape[:2], t.shape[-1])

    fill = level(known, len(levels) - 1)
    for i in reversed(range(len(levels) - 1)):
        hi, wi = levels[i].shape[:2]
        up = ops.upsample(fill, hi + hi % 2, wi + wi % 2)[:hi, :wi]
        fill = ops.addcmul(level(known, i), level(keep, i), up)
    fill = ops.upsample(fill, levels[0].shape[0] * f, levels[0].shape[1] * f)[:h, :w]
    ops.addcmul(acc, missing, fill, out=acc)

def normalise(rgba: Array) -> Array:
    """Premultiplied (h, w, 4) -> premultiplied with confidence min(4 alpha, 1) as alpha."""
    alpha = rgba[..., 3:]
    known = (4.0 * alpha).clip(0.0, 1.0)
    return rgba * (known / alpha.clip(1e-6, None))  # alpha becomes `known` (where alpha > 1e-6)
