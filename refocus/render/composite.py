"""Step 6 of the renderer: the composite loop, far to near, written once for every backend.

For each batch of layers (one layer on the CPU; consecutive layers sharing a downsampling
factor on a GPU): gather their premultiplied stacks, blur them, extend them behind nearer
occluders, fill what each hides in the accumulated background, and composite it *over* the
accumulation. A layer's colour never leaves its own mask before it is blurred, so an in-focus
edge stays sharp, a defocused foreground spreads over what is behind it, and what it reveals
is the filled background.
"""

from __future__ import annotations

from refocus.render.aperture import Aperture
from refocus.render.backends import Array, Ops
from refocus.render.blur import blur_stack
from refocus.render.layers import batches, layer_stack, plan_layers
from refocus.render.occlusion import extend_behind_occluders, fill_hidden


def composite_layers(ops: Ops, linear: Array, coc: Array, aperture: Aperture, fine_radius: float,
                     relative_width: float) -> Array:
    """Render linear light (H, W, 3) with signed CoC (H, W) (> 0 behind the focal plane).

    Returns the normalised linear render (H, W, 3).
    """
    H, W = coc.shape
    index, layers = plan_layers(ops, coc, relative_width)
    # colour and layer index in one (H, W, 4) array: one copy gathers a layer's crop
    source = ops.cat([linear, ops.as_float(index)[..., None]])
    acc = ops.zeros((H, W, 4))
    first = True
    for batch in batches(layers, fine_radius, ops.batch_pixels):
        stack = layer_stack(ops, source, batch)
        own = stack[..., 3]  # the unblurred masks (blur_stack changes the colour channels only)
        blurred = extend_behind_occluders(ops, blur_stack(ops, stack, batch, aperture, fine_radius, (W, H)))
        for i, ly in enumerate(batch):
            layer = blurred[i, :ly.height, :ly.width]
            under = acc[ly.y0:ly.y1, ly.x0:ly.x1]
            # a blurred layer reveals part of what it hides; nothing is behind the farthest one
            if ly.radius >= 0.5 and not first:
                under = fill_hidden(ops, under, own[i, :ly.height, :ly.width], ly.radius)
            ops.addcmul(layer, 1.0 - layer[..., 3:], under, out=acc[ly.y0:ly.y1, ly.x0:ly.x1])
            first = False
    return acc[..., :3] / acc[..., 3:].clip(1e-6, None)
