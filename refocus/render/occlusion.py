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
    blurred[..., 3:4] = extend(ops, blurred[..., :3], blurred[..., 3:4], blurred[..., 4:5])
    blurred[..., 4:] = 0.0
    return blurred


def extend(ops: Ops, colour: Array, own: Array, nearer_1: Array) -> Array:
    """``extend_behind_occluders`` on the channels apart, in any layout: blurred colour (3
    channels, scaled in place to the extended layer's colour), own coverage and nearer - 1 (one
    channel each, broadcasting against the colour). Returns the extended layer's alpha."""
    own, nearer = own.clip(0.0, 1.0), nearer_1 + 1.0
    seen = (4.0 * own).clip(None, 1.0)
    # in [0, 1] without a clip: own in [0, 1] over at least itself and at least 1e-6
    alpha = own / ops.maximum((1.0 - seen * nearer).clip(1e-6, None), own)
    colour *= alpha / own.clip(1e-6, None)
    return alpha


def fill_factor(radius: float) -> int:
    """The fill is smooth at the scale of the blur: its pyramid starts at 1/f, f ~ radius / 2,
    and at 1/2 at least: for small blurs a full-resolution level costs several passes over the
    layer's crop and changes nothing (bench scores equal to the fourth digit; from 1/4, -0.01 dB)."""
    return 2 ** max(int(math.log2(max(radius / 2, 1.0))), 1)


def fill_hidden(ops: Ops, acc: Array, mask: Array, radius: float) -> None:
    """Fill the holes of the accumulated background ``acc`` (h, w, 4) under ``mask`` (h, w), in
    place.

    What a layer hides in the pinhole image is unknown; when the layer is blurred, its silhouette
    turns semi-transparent and reveals some of it. The estimate (``fill_estimate``) is a smooth
    continuation of the visible background around it. Where the background under the mask is
    already opaque, ``acc`` is left unchanged.
    """
    missing = hidden(ops, acc[..., 3:], mask[..., None])
    if missing is not None:
        small, f = fill_estimate(ops, acc, radius)
        h, w = acc.shape[:2]
        ops.addcmul(acc, missing, ops.upsample(small, small.shape[0] * f, small.shape[1] * f)[:h, :w], out=acc)


def hidden(ops: Ops, alpha: Array, mask: Array) -> Array | None:
    """How much of the background is missing under a layer, (1 - alpha) mask, from the
    accumulation's alpha and the layer's mask (the same shape, any layout); None when no masked
    pixel needs a fill (on a backend that branches on values; the other gets zeros, without a
    host sync)."""
    missing = (1.0 - alpha).clip(0.0, None) * mask
    # any masked pixel with alpha < OPAQUE <=> max(missing) > 1 - OPAQUE (1 - alpha is exact there)
    hole = missing.max() > 1.0 - float(np.float32(OPAQUE))
    if ops.branch_on_values:
        return missing if bool(hole) else None
    return missing * hole


def fill_estimate(ops: Ops, acc: Array, radius: float) -> tuple[Array, int]:
    """The background's continuation, premultiplied, from the accumulation (h, w, 4): at 1/f,
    (ceil(h/f), ceil(w/f), 4), and f; bilinear upsampling by f (half-pixel centres) gives it at
    full resolution.

    A push-pull (normalised-convolution pyramid) of the visible background: colour from the
    nearest background, smooth at the scale of the blur radius. The pyramid starts at 1/f of
    the resolution and has at most FILL_LEVELS levels; what lies farther is summarised by the
    mean of the coarsest level.
    """
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
    return fill, f


def normalise(rgba: Array) -> Array:
    """Premultiplied (h, w, 4) -> premultiplied with confidence min(4 alpha, 1) as alpha."""
    alpha = rgba[..., 3:]
    known = (4.0 * alpha).clip(0.0, 1.0)
    return rgba * (known / alpha.clip(1e-6, None))  # alpha becomes `known` (where alpha > 1e-6)
