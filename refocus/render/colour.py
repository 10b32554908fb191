"""Step 1 of the renderer: colour. sRGB decoding to linear light (where light adds up), the
energy hidden in clipped highlights, the optional highlight boost, and encoding back.

The functions take numpy arrays or torch tensors and return the same kind.
"""

from __future__ import annotations

import numpy as np

from refocus.render.backends import Array, active_box, ops_for


def srgb_to_linear(x: Array) -> Array:
    """sRGB-encoded values in [0, 1] -> linear light in [0, 1] (IEC 61966-2-1)."""
    ops = ops_for(x)
    x = x.clip(0.0, 1.0)
    # in place where possible: each new frame-sized array costs about as much as a pass
    power = x * (1 / 1.055)
    power += 0.055 / 1.055
    x *= 1 / 12.92
    return ops.select(x <= 0.04045 / 12.92, x, ops.pow(power, 2.4))


def linear_to_srgb(x: Array) -> Array:
    """Linear light -> sRGB-encoded values in [0, 1]; values above 1 clip, as a sensor does
    (NaN encodes as 0)."""
    ops = ops_for(x)
    x = ops.unit_clip(x)
    power = ops.pow(x.clip(1e-12, None), 1 / 2.4)
    power *= 1.055
    power -= 0.055
    x *= 12.92
    return ops.select(x <= 0.0031308 * 12.92, x, power)


# Clipped pixels are lights (worth ``clipped_gain``) only where they are sparse: they fill less
# than half of the square around them whose side is this fraction of the image's long edge
# (relative, so a preview looks like the full render), fully so below a quarter. Street lamps,
# candles and glints through leaves are; a blown sky or window (also where seen through
# foliage) is not: it is lit little above the clip level, and given 4x it glows over all around
# it when blurred (+3-4 % mean brightness on the KITTI frames at f/1.4).
LIGHT_SIZE = 0.04


def recover_clipped_highlights(linear: Array, srgb: Array, gain: float) -> Array:
    """Estimate the energy of clipped highlights (inverse tone mapping of saturated pixels).

    An 8-bit photo stores every light brighter than white as 1.0; a real lens spreads the true,
    larger energy into a bright disc. A pixel whose three channels are all saturated is taken
    to be a light source ``gain`` times the clip level (fixed prior, default 4 = 2 stops of
    highlight headroom) where saturated pixels are sparse near it (``LIGHT_SIZE``): a small
    light, not a large clipped area such as a sky, which keeps the clip level so that opening
    the aperture does not brighten the photo. The gain ramps in smoothly as the darkest
    channel goes from 0.94 to 0.99 and as the saturated share of the surroundings falls from
    1/2 to 1/4, so that nothing jumps. ``gain = 1`` disables it.

    Args:
        linear: (H, W, 3) linear light.
        srgb: (H, W, 3) the same image sRGB-encoded, in [0, 1].
        gain: >= 1.
    Returns:
        (H, W, 3) linear light, >= the input.
    """
    if gain == 1.0:
        return linear
    ops = ops_for(srgb)
    saturation = ((ops.min_last(srgb) - 0.94) / 0.05).clip(0.0, 1.0)  # (H, W, 1)
    r = max(int(LIGHT_SIZE * max(saturation.shape) / 2), 1)
    box = active_box(ops, saturation[..., 0] > 0.0, 2 * r)  # all that the two windows reach
    if box is None:
        return linear
    sat = saturation[box]
    # saturated share of the square around each pixel, inside the frame; the largest share of
    # the squares that hold the pixel, so that a large area's rim and corners count as large too
    share = ops.window_mean(sat, r)[..., 0] / ops.window_mean(sat * 0.0 + 1.0, r)[..., 0].clip(1e-6, None)
    sparse = (2.0 - 4.0 * ops.window_max(share, r)[..., None]).clip(0.0, 1.0)
    out = linear * 1.0  # a copy, on either backend
    out[box] = linear[box] * (1.0 + (gain - 1.0) * sat * sparse)
    return out


def boost_highlights(linear: Array, srgb: Array, coc: Array, boost: float, threshold: float) -> Array:
    """Stylised extra gain for bright, out-of-focus pixels (option ``highlight_boost``).

    Pixels whose sRGB luminance exceeds ``threshold`` are multiplied by up to ``1 + boost``; the
    gain ramps in over 0.05 of luminance above the threshold and with the blur radius from 0.5
    to 1.5 px, so in-focus pixels and pixels below the threshold are untouched.
    """
    luma = srgb @ ops_for(srgb).asarray(np.array([0.2126, 0.7152, 0.0722], np.float32))
    bright = ((luma - threshold) / 0.05).clip(0.0, 1.0)
    defocus = (abs(coc) - 0.5).clip(0.0, 1.0)
    return linear * (1.0 + boost * bright * defocus)[..., None]
