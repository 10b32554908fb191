"""Step 4 of the renderer: blur each layer with the aperture kernel of its own radius.

Radii above ``fine_radius`` are blurred at 1/s resolution (s an integer) with a kernel of
radius radius/s: the result is smooth at that scale, so little is lost and the cost of a layer
is independent of its radius. Only the rim of each disc softens, by about s pixels; that shows
on lights, so a layer's energy above white is blurred at full resolution with the exact kernel
(``blur_lights``: sparse on the CPU, by FFT on a GPU).
"""

from __future__ import annotations

import math

import numpy as np

from refocus.render.aperture import Aperture, aperture_kernel
from refocus.render.backends import Array, Ops
from refocus.render.layers import Layer


def downsample_stack(ops: Ops, stack: Array, batch: list[Layer], s: int,
                     lit: bool = True) -> tuple[Array, Array | None]:
    """The premultiplied stacks, planar (C, N, hb, wb), of a batch of layers at 1/s, (N,
    ceil(hb/s), ceil(wb/s), C), and, where s > 1 and some layer holds energy above white, that
    energy apart at full resolution, (N, hb, wb, 3) (else None); the stacks at 1/s then hold
    the rest. ``lit``: whether the batch may hold energy above white (False skips looking for
    it).
    """
    n = stack.shape[1]
    lights = None
    if s > 1 and lit:  # energy above white, blurred apart at full resolution
        lights = (stack[:3] - stack[3:4]).clip(0.0, None)
        if bool(lights.max() > 0.0):
            stack[:3] -= lights
            lights = ops.interleave(lights)
        else:
            lights = None
    small = ops.tent_downsample(stack, s)
    if n > 1 and s > 1:
        # rows and columns beyond a layer's own padded crop are zeroed, so no layer sees the
        # tent taps that reached into another's canvas
        inside = np.zeros((n, *small.shape[1:3], 1), np.float32)
        for i, ly in enumerate(batch):
            inside[i, :-(-ly.height // s), :-(-ly.width // s)] = 1.0
        small = small * ops.asarray(inside)
    return small, lights


def blur_stack(ops: Ops, small: Array, lights: Array | None, batch: list[Layer], aperture: Aperture, s: int,
               frame_size: tuple[int, int]) -> tuple[Array, Array | None]:
    """Blur the stacks at 1/s of a batch of layers (N, h, w, C) (``downsample_stack``), each
    with the aperture kernel of its radius, and their lights (if any) at full resolution with
    the exact kernel. ``frame_size`` = (W, H) of the full frame (the cat's eye varies over it).
    """
    x = blur(ops, small, batch, [(ly.x0, ly.y0) for ly in batch], aperture, s, frame_size)
    if lights is not None:
        lights = blur_lights(ops, lights, batch, aperture, frame_size)
    return x, lights


def blur(ops: Ops, x: Array, batch: list[Layer], origins: list[tuple[int, int]], aperture: Aperture,
         s: int, frame_size: tuple[int, int], exact: bool = False) -> Array:
    """Blur x (N, h, w, C) at 1/s resolution, layer i with the kernel of radius batch[i].radius / s.

    ``origins`` (x0, y0) place each layer's crop in the full frame. A kernel that varies over
    the frame (cat's eye) is the blend of the blurs with the kernels of a 3x3 grid of frame
    positions, with bilinear weights by output position.
    """
    if not aperture.varies_over_frame:
        return ops.convolve(x, [aperture_kernel(round(ly.radius / s, 2), aperture) for ly in batch], exact)
    fw, fh = frame_size
    h, w = x.shape[1:3]
    # frame position of each output pixel, -1..1 from the centre, and its grid weights; the
    # padding of a reduced-resolution crop can reach past the frame: it takes the edge's kernel
    px = np.stack([((x0 + (np.arange(w, dtype=np.float32) + 0.5) * s) / fw) * 2 - 1 for x0, _ in origins])
    py = np.stack([((y0 + (np.arange(h, dtype=np.float32) + 0.5) * s) / fh) * 2 - 1 for _, y0 in origins])
    px, py = px.clip(-1.0, 1.0), py.clip(-1.0, 1.0)
    grid = np.array([-1.0, 0.0, 1.0], np.float32)
    wx = np.clip(1 - np.abs(px[None] - grid[:, None, None]), 0, None)  # (3, N, w)
    wy = np.clip(1 - np.abs(py[None] - grid[:, None, None]), 0, None)  # (3, N, h)
    out = None
    for iy, gy in enumerate(grid.tolist()):
        for ix, gx in enumerate(grid.tolist()):
            if wy[iy].max() <= 0 or wx[ix].max() <= 0:
                continue
            kernels = [aperture_kernel(round(ly.radius / s, 2), aperture, (gx, gy)) for ly in batch]
            weight = ops.asarray(wy[iy][:, :, None, None]) * ops.asarray(wx[ix][:, None, :, None])
            term = ops.convolve(x, kernels, exact) * weight
            out = term if out is None else out + term
    return out


def blur_lights(ops: Ops, lights: Array, batch: list[Layer], aperture: Aperture,
                frame_size: tuple[int, int]) -> Array:
    """Blur (N, h, w, 3) linear light with the exact, full-resolution aperture kernels.

    On the CPU lights are sparse: each connected group of light pixels is blurred on its own
    bounding box grown by the kernel radius (the blur is linear, so the sum is exact even where
    boxes overlap), unless those boxes together are larger than the one box around all of
    them; OpenCV switches to a DFT for large kernels, so the cost grows with the box, not with
    r^2. A backend without groups blurs the whole batch at once.
    """
    groups = ops.light_groups(lights)
    origins = [(ly.x0, ly.y0) for ly in batch]
    if groups is None:
        return blur(ops, lights, batch, origins, aperture, 1, frame_size, exact=True)
    count, labels, stats = groups  # one layer
    n = max(int(math.ceil(batch[0].radius - 0.5)), 0)
    h, w = lights.shape[1:3]

    def grown(x: int, y: int, bw: int, bh: int) -> tuple[int, int, int, int]:
        return max(y - n, 0), min(y + bh + n, h), max(x - n, 0), min(x + bw + n, w)

    def area(box: tuple[int, int, int, int]) -> int:
        return (box[1] - box[0]) * (box[3] - box[2])

    boxes = [grown(*stats[i, :4]) for i in range(1, count)]
    union = (min(b[0] for b in boxes), max(b[1] for b in boxes), min(b[2] for b in boxes), max(b[3] for b in boxes))
    out = ops.zeros(lights.shape)
    if sum(area(b) for b in boxes) >= area(union):
        boxes, labels = [union], None
    (fx, fy), = origins
    for i, (y0, y1, x0, x1) in enumerate(boxes, start=1):
        crop = lights[:, y0:y1, x0:x1]
        if labels is not None:  # this group's lights only
            crop = crop * ops.asarray(labels[None, y0:y1, x0:x1, None] == i)
        out[:, y0:y1, x0:x1] += blur(ops, crop, batch, [(fx + x0, fy + y0)], aperture, 1, frame_size, exact=True)
    return out
