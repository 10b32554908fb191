"""Occlusion-aware, layered bokeh renderer in linear light.

The algorithm, in the order the code runs it (MPIB's layered renderer is the model):

1. decode sRGB to linear light and estimate the energy hidden in clipped highlights;
2. compute the signed circle of confusion ``c = strength * (focus - D)`` (``c > 0`` behind the
   focal plane) and quantise it into depth layers, 1 px wide for small blurs, ~12 % wide for
   large ones;
3. from the farthest layer to the nearest: fill what the layer hides in the accumulated
   background (push-pull of the layers behind), blur the layer's premultiplied colour and alpha
   with the *same* aperture kernel of its own radius, composite it *over* the accumulation;
4. normalise by the accumulated alpha and encode back to sRGB.

Step 3 gives the physics the benchmark measures: an in-focus edge stays sharp because a
layer's colour never leaves its own mask before it is blurred (no halos, no background crossing
the edge), a defocused foreground spreads over what is behind it and turns semi-transparent at
its silhouette, and what it then reveals is a plausible continuation of the background.

Speed: a blur of radius ``r`` is computed at ``1/s`` resolution (``s`` an integer) so that
the kernel there has a radius of at most ``fine_radius`` pixels; the cost of a layer is then
independent of its radius. That softens the rims of bokeh balls by about s pixels, which shows
on lights only: a layer's energy above white is blurred at full resolution with the exact kernel
(sparse on the CPU, by FFT on CUDA). Work is cropped to each layer's bounding box. On the CPU the
convolutions and resizes go through OpenCV (an order of magnitude faster than torch's CPU conv
for these small depthwise kernels); on CUDA they are torch ops, with the blurs of consecutive
layers that share a downsampling factor batched into one grouped convolution (a GPU renderer
is bound by kernel launches, not arithmetic). Both paths compute the same thing and are checked
against each other.
"""

from __future__ import annotations

import contextlib
import math
from dataclasses import dataclass
from functools import lru_cache
from typing import Any, Callable

import cv2
import numpy as np
import torch
import torch.nn.functional as F
from scipy.fft import next_fast_len

from refocus.errors import RefocusError

__all__ = ["render_bokeh", "aperture_kernel", "Aperture", "SHAPES", "QUALITIES"]

SHAPES = ("disc", "polygon", "ring", "cats_eye")

# quality -> (largest kernel radius at the working resolution, relative layer width above 1 px).
# "high" blurs every layer at full resolution with 1 px layers: exact, slow, for tests/reference.
QUALITIES = {"preview": (3.0, 0.25), "default": (6.0, 0.12), "high": (math.inf, 0.0)}

# Inner radius of the mirror-lens ring as a fraction of the outer radius (a typical central
# obstruction of catadioptric lenses).
RING_INNER = 0.6
# Anti-aliasing: each kernel pixel's coverage is estimated from SUPERSAMPLE^2 sub-samples.
SUPERSAMPLE = 8


# ---------------------------------------------------------------------------------------------
# Colour encoding
def srgb_to_linear(x: torch.Tensor) -> torch.Tensor:
    """sRGB-encoded values in [0, 1] -> linear light in [0, 1] (IEC 61966-2-1)."""
    x = x.clamp(0.0, 1.0)
    return torch.where(x <= 0.04045, x / 12.92, ((x + 0.055) / 1.055) ** 2.4)


def linear_to_srgb(x: torch.Tensor) -> torch.Tensor:
    """Linear light -> sRGB-encoded values in [0, 1]; values above 1 clip, as a sensor does."""
    x = x.clamp(0.0, 1.0)
    return torch.where(x <= 0.0031308, 12.92 * x, 1.055 * x.clamp_min(1e-12) ** (1 / 2.4) - 0.055)


def recover_clipped_highlights(linear: torch.Tensor, srgb: torch.Tensor, gain: float) -> torch.Tensor:
    """Estimate the energy of clipped highlights (inverse tone mapping of saturated pixels).

    An 8-bit photo stores every light brighter than white as 1.0; a real lens spreads the true,
    larger energy into a bright disc. A pixel whose three channels are all saturated is taken to
    be a light source ``gain`` times the clip level (fixed prior, default 4 = 2 stops of
    highlight headroom); the gain ramps in smoothly as the darkest channel goes from 0.94 to
    0.99 so that nothing jumps. ``gain = 1`` disables it.

    Args:
        linear: (H, W, 3) linear light.
        srgb: (H, W, 3) the same image sRGB-encoded, in [0, 1].
        gain: >= 1.
    Returns:
        (H, W, 3) linear light, >= the input.
    """
    if gain == 1.0:
        return linear
    saturation = ((srgb.amin(dim=-1, keepdim=True) - 0.94) / 0.05).clamp(0.0, 1.0)
    return linear * (1.0 + (gain - 1.0) * saturation)


def boost_highlights(linear: torch.Tensor, srgb: torch.Tensor, coc: torch.Tensor,
                     boost: float, threshold: float) -> torch.Tensor:
    """Stylised extra gain for bright, out-of-focus pixels (option ``highlight_boost``).

    Pixels whose sRGB luminance exceeds ``threshold`` are multiplied by up to ``1 + boost``; the
    gain ramps in over 0.05 of luminance above the threshold and with the blur radius from 0.5
    to 1.5 px, so in-focus pixels and pixels below the threshold are untouched.
    """
    luma = srgb @ torch.tensor([0.2126, 0.7152, 0.0722], device=srgb.device, dtype=srgb.dtype)
    bright = ((luma - threshold) / 0.05).clamp(0.0, 1.0)
    defocus = (coc.abs() - 0.5).clamp(0.0, 1.0)
    return linear * (1.0 + boost * bright * defocus)[..., None]


# ---------------------------------------------------------------------------------------------
# Aperture kernels
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


# ---------------------------------------------------------------------------------------------
# Resampling and convolution of (h, w, C) tensors.
# Why two paths: torch's CPU depthwise conv2d is ~20x slower than OpenCV's filter2D for these
# kernels (measured on a 2-core laptop), while on CUDA torch is the fast path. The operations are
# defined identically: zero padding, box-average downsampling, half-pixel-centred bilinear
# upsampling.
# Set by the tests to run the CUDA code path on the CPU.
_FORCE_TORCH_OPS = False


def _use_opencv(x: torch.Tensor) -> bool:
    return x.device.type == "cpu" and not _FORCE_TORCH_OPS


def _convolve(x: torch.Tensor, kernel: np.ndarray) -> torch.Tensor:
    """Scatter each pixel of x (h, w, C) with ``kernel`` (true convolution, zero padding)."""
    if kernel.shape == (1, 1):
        return x
    if _use_opencv(x):
        gather = np.ascontiguousarray(kernel[::-1, ::-1])  # filter2D correlates
        out = cv2.filter2D(x.contiguous().numpy(), -1, gather, borderType=cv2.BORDER_CONSTANT)
        return torch.from_numpy(out.reshape(x.shape))
    k = torch.from_numpy(np.ascontiguousarray(kernel[::-1, ::-1])).to(x.device)
    c = x.shape[-1]
    n = kernel.shape[0] // 2
    y = F.conv2d(x.permute(2, 0, 1)[None], k.expand(c, 1, *k.shape), padding=n, groups=c)
    return y[0].permute(1, 2, 0)


def _tent(s: int) -> tuple[np.ndarray, int]:
    """1-D weights of the downsampling filter and the offset of its first tap from a block start.

    The filter is the adjoint of half-pixel bilinear upsampling (a tent of half-width s around
    each block centre, divided by s): every point keeps its energy *and* its centroid, so a
    small bright light blurred at reduced resolution lands where it should.
    """
    centre = (s - 1) / 2
    first = int(math.ceil(centre - s + 1e-9))
    offsets = np.arange(first, int(math.floor(centre + s - 1e-9)) + 1)
    return ((1.0 - np.abs(offsets - centre) / s) / s).astype(np.float32), first


def _downsample(x: torch.Tensor, s: int, keep_centroids: bool = True) -> torch.Tensor:
    """Reduce x (h, w, C) by an integer factor s (h and w multiples of s), zero padding.

    ``keep_centroids`` picks the tent filter (for what is blurred and shown); without it a
    plain box average, cheaper, is enough (for the smooth background fill).
    """
    if s == 1:
        return x
    h, w, c = x.shape
    if not keep_centroids:
        if _use_opencv(x):
            small = cv2.resize(x.contiguous().numpy(), (w // s, h // s), interpolation=cv2.INTER_AREA)
            return torch.from_numpy(small.reshape(h // s, w // s, c))
        return F.avg_pool2d(x.permute(2, 0, 1)[None], s)[0].permute(1, 2, 0)
    taps, first = _tent(s)
    if _use_opencv(x):
        full = cv2.sepFilter2D(x.contiguous().numpy(), -1, taps, taps, anchor=(-first, -first),
                               borderType=cv2.BORDER_CONSTANT)
        return torch.from_numpy(np.ascontiguousarray(full.reshape(h, w, c)[::s, ::s]))
    k = torch.from_numpy(taps).to(x.device)
    pad = (-first, len(taps) + first - 1)
    y = F.pad(x.permute(2, 0, 1)[None], (*pad, *pad))
    y = F.conv2d(y, k.view(1, 1, 1, -1).expand(c, 1, 1, -1), stride=(1, s), groups=c)
    y = F.conv2d(y, k.view(1, 1, -1, 1).expand(c, 1, -1, 1), stride=(s, 1), groups=c)
    return y[0].permute(1, 2, 0)


def _upsample(x: torch.Tensor, h: int, w: int) -> torch.Tensor:
    """Bilinear resize of x (h', w', C) to (h, w, C) with half-pixel centres."""
    if x.shape[:2] == (h, w):
        return x
    if _use_opencv(x):
        out = cv2.resize(x.contiguous().numpy(), (w, h), interpolation=cv2.INTER_LINEAR)
        return torch.from_numpy(out.reshape(h, w, x.shape[-1]))
    y = F.interpolate(x.permute(2, 0, 1)[None], size=(h, w), mode="bilinear", align_corners=False)
    return y[0].permute(1, 2, 0)


def _pad_to_multiple(x: torch.Tensor, s: int) -> torch.Tensor:
    h, w = x.shape[:2]
    return F.pad(x, (0, 0, 0, -w % s, 0, -h % s))


# ---------------------------------------------------------------------------------------------
# The layered renderer
def _scale(radius: float, fine_radius: float) -> int:
    """The downsampling factor s of a blur: the kernel at 1/s has a radius <= fine_radius."""
    return max(int(math.ceil(radius / fine_radius)), 1) if math.isfinite(fine_radius) else 1


def blur_layer(rgba: torch.Tensor, radius: float, aperture: Aperture, fine_radius: float,
               frame: tuple[float, float, float, float]) -> torch.Tensor:
    """Blur a premultiplied layer (h, w, C >= 4, colour first, then the 0/1 coverage) with the
    aperture kernel of the given radius.

    Radii above ``fine_radius`` are blurred at 1/s resolution (s an integer) with a kernel of
    radius radius/s: the result is smooth at that scale, so little is lost and the cost stays
    constant. Only the rim of each disc softens, by about s pixels; that shows on lights, so
    their energy above white is blurred at full resolution (``blur_lights``). ``frame`` =
    (x0, y0, W, H) places the crop in the full frame (for the cat's eye).
    """
    s = _scale(radius, fine_radius)
    h, w = rgba.shape[:2]
    lights = _lights(rgba) if s > 1 else None
    if lights is not None:
        rgba = torch.cat([rgba[..., :3] - lights, rgba[..., 3:]], dim=-1)
    small = _downsample(_pad_to_multiple(rgba, s), s)
    if not aperture.varies_over_frame:
        blurred = _convolve(small, aperture_kernel(round(radius / s, 2), aperture))
    else:
        blurred = _blur_varying(small, radius / s, aperture, frame, s)
    blurred = _upsample(blurred, small.shape[0] * s, small.shape[1] * s)[:h, :w]
    if lights is not None:
        blurred[..., :3] += blur_lights(lights, radius, aperture, frame)
    return blurred


def _lights(rgba: torch.Tensor) -> torch.Tensor | None:
    """The energy above white, (h, w, 3), of a layer (h, w, C) whose channel 3 is its 0/1
    coverage, or None where there is none (one sync on a GPU)."""
    lights = (rgba[..., :3] - rgba[..., 3:4]).clamp_min(0.0)
    return lights if bool(lights.amax() > 0.0) else None


def blur_lights(lights: torch.Tensor, radius: float, aperture: Aperture,
                frame: tuple[float, float, float, float]) -> torch.Tensor:
    """Blur (h, w, 3) linear light with the exact, full-resolution aperture kernel.

    Lights are sparse: each connected group of light pixels is blurred on its own bounding box
    grown by the kernel radius (the blur is linear, so the sum is exact even where boxes
    overlap), unless those boxes together are larger than the one box around all of them.
    OpenCV switches to a DFT for large kernels, so the cost grows with the box, not with r^2.
    """
    n = max(int(math.ceil(radius - 0.5)), 0)
    h, w = lights.shape[:2]
    lit = (lights.amax(dim=-1) > 0.0).numpy().astype(np.uint8)
    count, labels, stats, _ = cv2.connectedComponentsWithStats(lit, connectivity=8)

    def grown(x: int, y: int, bw: int, bh: int) -> tuple[int, int, int, int]:
        return max(y - n, 0), min(y + bh + n, h), max(x - n, 0), min(x + bw + n, w)

    def area(box: tuple[int, int, int, int]) -> int:
        return (box[1] - box[0]) * (box[3] - box[2])

    boxes = [grown(*stats[i, :4]) for i in range(1, count)]
    union = (min(b[0] for b in boxes), max(b[1] for b in boxes), min(b[2] for b in boxes), max(b[3] for b in boxes))
    out = torch.zeros_like(lights)
    if sum(area(b) for b in boxes) >= area(union):
        boxes, labels = [union], None
    for i, (y0, y1, x0, x1) in enumerate(boxes, start=1):
        crop = lights[y0:y1, x0:x1]
        if labels is not None:  # this group's lights only
            crop = crop * torch.from_numpy(labels[y0:y1, x0:x1] == i)[..., None]
        if not aperture.varies_over_frame:
            out[y0:y1, x0:x1] += _convolve(crop, aperture_kernel(round(radius, 2), aperture))
        else:
            fx, fy, fw, fh = frame
            out[y0:y1, x0:x1] += _blur_varying(crop, radius, aperture, (fx + x0, fy + y0, fw, fh), 1)
    return out


def _blur_varying(x: torch.Tensor, radius: float, aperture: Aperture,
                  frame: tuple[float, float, float, float], s: int) -> torch.Tensor:
    """Spatially varying kernel (cat's eye): blend the blurs with the kernels of a 3x3 grid of
    frame positions, with bilinear weights by output position."""
    x0, y0, fw, fh = frame
    h, w = x.shape[:2]
    # frame position of each output pixel, -1..1 from the centre
    px = ((x0 + (torch.arange(w, device=x.device) + 0.5) * s) / fw) * 2 - 1
    py = ((y0 + (torch.arange(h, device=x.device) + 0.5) * s) / fh) * 2 - 1
    out = torch.zeros_like(x)
    for gy in (-1.0, 0.0, 1.0):
        wy = (1 - (py - gy).abs()).clamp_min(0.0)
        for gx in (-1.0, 0.0, 1.0):
            wx = (1 - (px - gx).abs()).clamp_min(0.0)
            if wy.max() <= 0 or wx.max() <= 0:
                continue
            k = aperture_kernel(round(radius, 2), aperture, (gx, gy))
            out += _convolve(x, k) * (wy[:, None, None] * wx[None, :, None])
    return out


# Depth of the fill's push-pull pyramid (levels 1/f ... 1/(32 f), then one mean). Why a cap:
# what a blurred layer reveals lies within its blur radius (about 2 f) of its silhouette, so
# context from farther than 32 f (16 radii) is summarised by one mean instead of up to 7 more
# levels at 12 MP, each a few kernel launches per layer on a GPU. The benchmark's scores are the
# same with and without the cap (to the second decimal); with 3 levels they start to drop.
FILL_LEVELS = 6


def _fill_factor(radius: float) -> int:
    """The fill is smooth at the scale of the blur: its pyramid starts at 1/f, f ~ radius / 2."""
    return 2 ** max(int(math.log2(max(radius / 2, 1.0))), 0)


def fill_hidden(acc: torch.Tensor, mask: torch.Tensor, radius: float) -> torch.Tensor:
    """Fill the holes of the accumulated background ``acc`` (h, w, 4) under ``mask`` (h, w).

    What a layer hides in the pinhole image is unknown; when the layer is blurred, its silhouette
    turns semi-transparent and reveals some of it. The estimate here is a push-pull
    (normalised-convolution pyramid) of the visible background around it: colour from the
    nearest background, smooth at the scale of the blur radius. The pyramid starts at 1/f of
    the resolution and has at most FILL_LEVELS levels; what lies farther is summarised by the
    mean of the coarsest level.
    """
    h, w = acc.shape[:2]
    f = _fill_factor(radius)
    levels = [_downsample(_pad_to_multiple(acc, f), f, keep_centroids=False)]
    while max(levels[-1].shape[:2]) > 1 and len(levels) < FILL_LEVELS:
        levels.append(_downsample(_pad_to_multiple(levels[-1], 2), 2, keep_centroids=False))
    if max(levels[-1].shape[:2]) > 1:  # the rest of the pyramid, summarised by its mean
        levels.append(levels[-1].mean(dim=(0, 1), keepdim=True))
    # normalised colour and confidence per level; a pixel counts as known once a quarter of it
    # is covered. Where nothing at all is behind, the fill stays transparent.
    fill = _normalise(levels[-1])
    for level in reversed(levels[:-1]):
        up = _upsample(fill, *(d + d % 2 for d in level.shape[:2]))[: level.shape[0], : level.shape[1]]
        known = _normalise(level)
        fill = known + (1.0 - known[..., 3:]) * up
    fill = _upsample(fill, levels[0].shape[0] * f, levels[0].shape[1] * f)[:h, :w]
    missing = (1.0 - acc[..., 3:]).clamp_min(0.0) * mask[..., None]
    return acc + missing * fill


def _normalise(rgba: torch.Tensor) -> torch.Tensor:
    """Premultiplied (h, w, 4) -> premultiplied with confidence min(4 alpha, 1) as alpha."""
    alpha = rgba[..., 3:]
    known = (4.0 * alpha).clamp(0.0, 1.0)
    return rgba * (known / alpha.clamp_min(1e-6))  # alpha becomes `known` (where alpha > 1e-6)


def layer_edges(cmin: float, cmax: float, relative_width: float) -> torch.Tensor:
    """Boundaries of the CoC layers: 1 px wide up to |c| = 1/relative_width, then a fixed
    fraction of |c| (a radius error that is invisible relative to the blur)."""
    def side(limit: float) -> list[float]:
        edges, e = [], 0.5
        while e < limit:
            edges.append(e)
            e += max(1.0, relative_width * e)
        return edges + [e]

    pos, neg = side(max(cmax, 0.0)), side(max(-cmin, 0.0))
    return torch.tensor([-e for e in reversed(neg)] + pos, dtype=torch.float64)


def composite_layers(linear: torch.Tensor, coc: torch.Tensor, aperture: Aperture,
                     fine_radius: float, relative_width: float) -> torch.Tensor:
    """Render linear light (H, W, 3) with signed CoC (H, W) (> 0 behind the focal plane)."""
    H, W = coc.shape
    edges = layer_edges(float(coc.min()), float(coc.max()), relative_width).to(coc.device, coc.dtype)
    layer = torch.bucketize(coc, edges)  # larger index = farther
    n = len(edges) + 1
    # per layer in one pass: pixel count, mean |CoC| (the layer's blur radius), rows and columns
    count = torch.bincount(layer.flatten(), minlength=n)
    radii = (torch.bincount(layer.flatten(), coc.abs().flatten(), minlength=n) / count.clamp_min(1)).tolist()
    rows = torch.bincount((layer * H + torch.arange(H, device=coc.device)[:, None]).flatten(),
                          minlength=n * H).view(n, H) > 0
    cols = torch.bincount((layer * W + torch.arange(W, device=coc.device)).flatten(),
                          minlength=n * W).view(n, W) > 0
    if not _use_opencv(linear):
        return _composite_layers_batched(linear, layer, count.tolist(), radii, rows.cpu().numpy(),
                                         cols.cpu().numpy(), aperture, fine_radius)
    acc = torch.zeros(H, W, 4, device=linear.device, dtype=linear.dtype)
    for i, k in enumerate(count.nonzero()[:, 0].flip(0).tolist()):  # far to near
        radius = radii[k]
        # crop to the layer's bounding box grown by the blur and the fill's context
        r_idx, c_idx = rows[k].nonzero()[:, 0], cols[k].nonzero()[:, 0]
        grow = 2 * int(math.ceil(radius)) + 2
        y0, y1 = max(int(r_idx[0]) - grow, 0), min(int(r_idx[-1]) + grow + 1, H)
        x0, x1 = max(int(c_idx[0]) - grow, 0), min(int(c_idx[-1]) + grow + 1, W)
        crop = layer[y0:y1, x0:x1, None]
        # premultiplied colour, alpha, and (nearer - 1): zero padding then counts the world
        # outside the frame as an occluder, behind which the layer continues too
        stack = torch.empty(*crop.shape[:2], 5, device=linear.device, dtype=linear.dtype)
        torch.eq(crop, k, out=stack[..., 3:4])
        torch.mul(linear[y0:y1, x0:x1], stack[..., 3:4], out=stack[..., :3])
        torch.lt(crop, k, out=stack[..., 4:5])
        stack[..., 4:5] -= 1.0
        own = stack[..., 3].clone()
        blurred = extend_behind_occluders(blur_layer(stack, radius, aperture, fine_radius, (x0, y0, W, H)))
        under = acc[y0:y1, x0:x1]
        # a blurred layer reveals part of what it hides (unless the layers behind cover it all;
        # nothing is behind the farthest layer, whose fill would be zeros)
        if i > 0 and radius >= 0.5 and bool((under[..., 3] < 0.999).logical_and_(own > 0).any()):
            under = fill_hidden(under, own, radius)
        acc[y0:y1, x0:x1] = blurred + (1.0 - blurred[..., 3:]) * under
    return acc[..., :3] / acc[..., 3:].clamp_min(1e-6)


# ---------------------------------------------------------------------------------------------
# The torch (CUDA) path of the layered renderer.
# Why a second loop: on a GPU the per-layer loop above is launch bound (at 12 MP ~140 small ops
# per layer, ~8,600 kernel launches and a device sync per layer for ~27 ms of GPU work). Here
# the blur of all consecutive layers that share a downsampling factor runs as one batch
# (N layers x 5 channels as the channels of one grouped convolution), the crop bounding boxes
# are computed on the host once, the fill's pyramid is normalised in one flat buffer, and the
# "is a fill needed" test is a multiplication instead of a sync. It computes exactly what the
# loop above computes (same crops, same sampling grids, same zero padding; float round-off
# aside): the OpenCV path keeps the loop, where these batches would only cost memory.
# Largest batch of one blur (layers x padded crop pixels); a larger layer runs alone.
_BATCH_PIXELS = 1 << 25


@dataclass
class _Layer:
    """One depth layer on the torch path: index k, blur radius, crop box [y0:y1, x0:x1]."""

    k: int
    radius: float
    y0: int
    y1: int
    x0: int
    x1: int


def _composite_layers_batched(linear: torch.Tensor, layer: torch.Tensor, count: list[int],
                              radii: list[float], rows: np.ndarray, cols: np.ndarray,
                              aperture: Aperture, fine_radius: float) -> torch.Tensor:
    """composite_layers on the torch path: linear (H, W, 3), layer index (H, W) (larger =
    farther), per-layer pixel counts and radii, rows (n, H) / cols (n, W) boolean occupancy on
    the host. Returns the normalised linear render (H, W, 3)."""
    H, W = layer.shape
    layers = []
    for k in reversed(range(len(count))):  # far to near
        if count[k] == 0:
            continue
        r_idx, c_idx = np.flatnonzero(rows[k]), np.flatnonzero(cols[k])
        grow = 2 * int(math.ceil(radii[k])) + 2
        layers.append(_Layer(k, radii[k], max(int(r_idx[0]) - grow, 0), min(int(r_idx[-1]) + grow + 1, H),
                             max(int(c_idx[0]) - grow, 0), min(int(c_idx[-1]) + grow + 1, W)))
    # colour and layer index in one (4, H, W) tensor: one copy gathers a layer's crop
    source = torch.cat([linear.permute(2, 0, 1), layer[None].to(linear.dtype)])
    acc = torch.zeros(H, W, 4, device=linear.device, dtype=linear.dtype)
    first = True
    for batch in _batches(layers, fine_radius):
        blurred, own = _blur_batch(source, batch, aperture, fine_radius, (W, H))
        one_minus_alpha = 1.0 - blurred[..., 3:]
        for i, ly in enumerate(batch):
            h, w = ly.y1 - ly.y0, ly.x1 - ly.x0
            under = acc[ly.y0:ly.y1, ly.x0:ly.x1]
            # nothing is behind the farthest layer: its fill would be zeros
            if ly.radius >= 0.5 and not first:
                filled = _fill_hidden_gated(under, own[i, :h, :w], ly.radius)
            else:
                filled = under
            torch.addcmul(blurred[i, :h, :w], one_minus_alpha[i, :h, :w], filled, out=under)
            first = False
    return acc[..., :3] / acc[..., 3:].clamp_min(1e-6)


def _batches(layers: list[_Layer], fine_radius: float):
    """Consecutive layers (far to near) with the same downsampling factor, split to keep a
    batch's padded size under _BATCH_PIXELS."""
    batch: list[_Layer] = []
    for ly in layers:
        if batch:
            grown = batch + [ly]
            size = len(grown) * max(b.y1 - b.y0 for b in grown) * max(b.x1 - b.x0 for b in grown)
            if _scale(ly.radius, fine_radius) != _scale(batch[0].radius, fine_radius) or size > _BATCH_PIXELS:
                yield batch
                batch = []
        batch.append(ly)
    if batch:
        yield batch


def _blur_batch(source: torch.Tensor, batch: list[_Layer], aperture: Aperture, fine_radius: float,
                frame_size: tuple[int, int]) -> tuple[torch.Tensor, torch.Tensor]:
    """blur_layer + extend_behind_occluders for a batch of N layers with the same factor s.

    Each layer's crop sits at the top left of a common (hb, wb) canvas (padded crop, multiple of
    s) whose rest is zero, as the per-layer zero padding is; after the downsampling, rows and
    columns beyond a layer's own padded crop are zeroed too, so no layer sees another's canvas.
    Returns the premultiplied blurred layers (N, hb, wb, 4) and the unblurred masks (N, hb, wb).
    """
    device, dtype = source.device, source.dtype
    n = len(batch)
    s = _scale(batch[0].radius, fine_radius)
    hs = [-(-(ly.y1 - ly.y0) // s) * s for ly in batch]
    ws = [-(-(ly.x1 - ly.x0) // s) * s for ly in batch]
    hb, wb = max(hs), max(ws)
    taps, first = _tent(s) if s > 1 else (np.ones(1, np.float32), 0)
    pad_lo, pad_hi = -first, len(taps) + first - 1
    # canvas of [colour, layer index]; index -1 (nearer than all) makes the stack zero there
    canvas = torch.zeros(n, 4, hb + pad_lo + pad_hi, wb + pad_lo + pad_hi, device=device, dtype=dtype)
    canvas[:, 3] = -1.0
    for i, ly in enumerate(batch):
        h, w = ly.y1 - ly.y0, ly.x1 - ly.x0
        canvas[i, :, pad_lo:pad_lo + h, pad_lo:pad_lo + w] = source[:, ly.y0:ly.y1, ly.x0:ly.x1]
    # premultiplied colour, alpha, nearer - 1 (as composite_layers builds them)
    k = torch.tensor([ly.k for ly in batch], dtype=dtype).view(n, 1, 1, 1).to(device)
    ids = canvas[:, 3:4]
    stack = torch.empty(n, 5, *canvas.shape[2:], device=device, dtype=dtype)
    torch.eq(ids, k, out=stack[:, 3:4])
    torch.mul(canvas[:, :3], stack[:, 3:4], out=stack[:, :3])
    torch.lt(ids, k, out=stack[:, 4:5])
    stack[:, 4:5] -= 1.0
    own = stack[:, 3, pad_lo:pad_lo + hb, pad_lo:pad_lo + wb]
    lights = _lights(stack.movedim(1, -1)) if s > 1 else None  # (n, H', W', 3)
    if lights is not None:
        stack[:, :3] -= lights.movedim(-1, 1)
        lights = lights.movedim(-1, 1)[:, :, pad_lo:pad_lo + hb, pad_lo:pad_lo + wb]
    x = stack.view(1, n * 5, *stack.shape[2:])
    if s > 1:
        t = torch.from_numpy(taps).to(device)
        x = F.conv2d(x, t.view(1, 1, 1, -1).expand(n * 5, 1, 1, -1), stride=(1, s), groups=n * 5)
        x = F.conv2d(x, t.view(1, 1, -1, 1).expand(n * 5, 1, -1, 1), stride=(s, 1), groups=n * 5)
        inside = np.zeros((n, 1, hb // s, wb // s), np.float32)
        for i in range(n):
            inside[i, :, :hs[i] // s, :ws[i] // s] = 1.0
        x = (x.view(n, 5, hb // s, wb // s) * torch.from_numpy(inside).to(device)).view(1, n * 5, hb // s, wb // s)
    if not aperture.varies_over_frame:
        kernels = [aperture_kernel(round(ly.radius / s, 2), aperture) for ly in batch]
        x = _convolve_batch(x, kernels)
    else:
        x = _blur_varying_batch(x, batch, aperture, s, frame_size)
    if s > 1:
        # the per-layer upsampling clamps at the layer's own last row and column: repeat them
        hl, wl = hb // s, wb // s
        rows = torch.from_numpy(np.minimum(np.arange(hl)[None], np.array(hs)[:, None] // s - 1))
        cols = torch.from_numpy(np.minimum(np.arange(wl)[None], np.array(ws)[:, None] // s - 1))
        x = x.view(n, 5, hl, wl)
        x = x.gather(2, rows.to(device).view(n, 1, hl, 1).expand(n, 5, hl, wl))
        x = x.gather(3, cols.to(device).view(n, 1, 1, wl).expand(n, 5, hl, wl))
        x = F.interpolate(x.view(1, n * 5, hl, wl), size=(hb, wb), mode="bilinear", align_corners=False)
    x = x.view(n, 5, hb, wb)
    if lights is not None:  # blur_lights: the exact kernel at full resolution, by FFT
        lights = lights.reshape(1, n * 3, hb, wb)
        if not aperture.varies_over_frame:
            lights = _fft_convolve_batch(lights, [aperture_kernel(round(ly.radius, 2), aperture) for ly in batch], 3)
        else:
            lights = _blur_varying_batch(lights, batch, aperture, 1, frame_size, _fft_convolve_batch, 3)
        x[:, :3] += lights.view(n, 3, hb, wb)  # x is the upsampling's own output
    return extend_behind_occluders(x.permute(0, 2, 3, 1)), own


def _convolve_batch(x: torch.Tensor, kernels: list[np.ndarray], repeat: int = 5) -> torch.Tensor:
    """Scatter the channels of x (1, N * repeat, h, w), ``repeat`` per layer, with one kernel
    per layer (zero-padded to the largest: one grouped convolution)."""
    size = max(kk.shape[0] for kk in kernels)
    if size == 1:
        return x
    weight = np.zeros((len(kernels), size, size), np.float32)
    for i, kk in enumerate(kernels):
        o = (size - kk.shape[0]) // 2
        weight[i, o:o + kk.shape[0], o:o + kk.shape[0]] = kk[::-1, ::-1]  # conv2d correlates
    w = torch.from_numpy(np.repeat(weight, repeat, axis=0)[:, None]).to(x.device)
    return F.conv2d(x, w, padding=size // 2, groups=x.shape[1])


def _fft_convolve_batch(x: torch.Tensor, kernels: list[np.ndarray], repeat: int) -> torch.Tensor:
    """_convolve_batch by FFT (for the large kernels of full-resolution blurs): the same
    result, zero padding included, to float round-off."""
    size = max(kk.shape[0] for kk in kernels)
    n, (h, w), m = len(kernels), x.shape[2:], size // 2
    weight = np.zeros((n, size, size), np.float32)
    for i, kk in enumerate(kernels):
        o = (size - kk.shape[0]) // 2
        weight[i, o:o + kk.shape[0], o:o + kk.shape[0]] = kk  # the FFT product convolves
    # the whole linear convolution (no wrap-around), padded to a size the FFT is fast at
    full = (next_fast_len(h + 2 * m, real=True), next_fast_len(w + 2 * m, real=True))
    spectrum = torch.fft.rfft2(x.view(n, repeat, h, w), s=full)
    spectrum *= torch.fft.rfft2(torch.from_numpy(weight).to(x.device), s=full)[:, None]
    return torch.fft.irfft2(spectrum, s=full)[..., m:m + h, m:m + w].reshape(1, n * repeat, h, w)


def _blur_varying_batch(x: torch.Tensor, batch: list[_Layer], aperture: Aperture, s: int,
                        frame_size: tuple[int, int], convolve: Callable[..., torch.Tensor] = _convolve_batch,
                        repeat: int = 5) -> torch.Tensor:
    """_blur_varying for a batch (x (1, N * repeat, h, w) at 1/s): the 3x3 grid of kernels,
    blended with each layer's bilinear weights of its own frame positions."""
    fw, fh = frame_size
    n, h, w = len(batch), x.shape[2], x.shape[3]
    px = np.stack([((ly.x0 + (np.arange(w, dtype=np.float32) + 0.5) * s) / fw) * 2 - 1 for ly in batch])
    py = np.stack([((ly.y0 + (np.arange(h, dtype=np.float32) + 0.5) * s) / fh) * 2 - 1 for ly in batch])
    grid = np.array([-1.0, 0.0, 1.0], np.float32)
    wx = torch.from_numpy(np.clip(1 - np.abs(px[None] - grid[:, None, None]), 0, None)).to(x.device)
    wy = torch.from_numpy(np.clip(1 - np.abs(py[None] - grid[:, None, None]), 0, None)).to(x.device)
    out = torch.zeros(n, repeat, h, w, device=x.device, dtype=x.dtype)
    for iy, gy in enumerate(grid.tolist()):
        for ix, gx in enumerate(grid.tolist()):
            kernels = [aperture_kernel(round(ly.radius / s, 2), aperture, (gx, gy)) for ly in batch]
            weight = wy[iy][:, None, :, None] * wx[ix][:, None, None, :]
            out.addcmul_(convolve(x, kernels, repeat).view(n, repeat, h, w), weight)
    return out.view(1, n * repeat, h, w)


def _fill_hidden_gated(acc: torch.Tensor, mask: torch.Tensor, radius: float) -> torch.Tensor:
    """fill_hidden(acc (h, w, 4), mask (h, w), radius) where some masked pixel has alpha < 0.999,
    else acc unchanged: the same values as the test-then-fill of the loop, without a sync.

    The push-pull pyramid lives in one flat (P, 4) buffer so that it is normalised by five ops
    whatever its depth (the pooling writes into it, channels last).
    """
    h, w = acc.shape[:2]
    f = _fill_factor(radius)
    sizes = [(-(-h // f), -(-w // f))]
    while max(sizes[-1]) > 1 and len(sizes) < FILL_LEVELS:
        sizes.append((-(-sizes[-1][0] // 2), -(-sizes[-1][1] // 2)))
    summarised = max(sizes[-1]) > 1
    if summarised:
        sizes.append((1, 1))
    offsets = np.cumsum([0] + [a * b for a, b in sizes]).tolist()
    buf = torch.empty(offsets[-1], 4, device=acc.device, dtype=acc.dtype)

    def level(t: torch.Tensor, i: int, c: int = 4) -> torch.Tensor:  # (P, c) -> (1, c, h_i, w_i)
        return t[offsets[i]:offsets[i + 1]].view(*sizes[i], c).permute(2, 0, 1)[None]

    # zero padding to a multiple of the factor = ceil_mode with the full block as divisor
    if f == 1:
        level(buf, 0).copy_(acc.permute(2, 0, 1)[None])
    else:
        torch._C._nn.avg_pool2d(acc.permute(2, 0, 1)[None], f, f, 0, True, True, f * f, out=level(buf, 0))
    for i in range(1, len(sizes) - summarised):
        torch._C._nn.avg_pool2d(level(buf, i - 1), 2, 2, 0, True, True, 4, out=level(buf, i))
    if summarised:
        torch.mean(level(buf, len(sizes) - 2), dim=(2, 3), keepdim=True, out=level(buf, len(sizes) - 1))
    known = _normalise(buf)
    keep = 1.0 - known[:, 3:]
    fill = level(known, len(sizes) - 1).contiguous()
    for i in reversed(range(len(sizes) - 1)):
        hi, wi = sizes[i]
        up = F.interpolate(fill, size=(hi + hi % 2, wi + wi % 2), mode="bilinear",
                           align_corners=False)[..., :hi, :wi]
        fill = torch.addcmul(level(known, i), level(keep, i, 1), up,
                             out=torch.empty(1, 4, *sizes[i], device=acc.device, dtype=acc.dtype))
    if f > 1:
        fill = F.interpolate(fill, size=(sizes[0][0] * f, sizes[0][1] * f), mode="bilinear",
                             align_corners=False)
    missing = (1.0 - acc[..., 3:]).clamp_min(0.0) * mask[..., None]
    # any masked pixel with alpha < 0.999 <=> max(missing) > 1 - 0.999 (1 - alpha is exact there)
    missing *= missing.amax() > 1.0 - float(np.float32(0.999))
    return torch.addcmul(acc, missing, fill[0, :, :h, :w].permute(1, 2, 0))


def extend_behind_occluders(blurred: torch.Tensor) -> torch.Tensor:
    """(h, w, 5) blurred [colour, alpha, nearer - 1] -> premultiplied (h, w, 4) layer.

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
    colour, own, nearer = blurred[..., :3], blurred[..., 3:4].clamp(0.0, 1.0), blurred[..., 4:5] + 1.0
    seen = (4.0 * own).clamp(0.0, 1.0)
    alpha = (own / torch.maximum((1.0 - seen * nearer).clamp_min(1e-6), own)).clamp(0.0, 1.0)
    layer = torch.empty(*blurred.shape[:-1], 4, device=blurred.device, dtype=blurred.dtype)
    torch.mul(colour, alpha / own.clamp_min(1e-6), out=layer[..., :3])
    layer[..., 3:] = alpha
    return layer


def signed_coc(disparity: torch.Tensor, focus_disparity: float, strength: float,
               focus_range: float) -> torch.Tensor:
    """Signed CoC radius in pixels, > 0 behind the focal plane: the distance to the in-focus
    band ``|D - focus| <= focus_range`` times ``strength``, capped at the image's long edge."""
    d = focus_disparity - disparity
    r = strength * (d.abs() - focus_range).clamp_min(0.0)
    # strength 0 times a difference that overflowed float32 to inf is NaN; no strength, no blur.
    r = torch.nan_to_num(r, nan=0.0)
    return torch.sign(d) * r.clamp_max(float(max(disparity.shape)))


# ---------------------------------------------------------------------------------------------
# Public entry point
def render_bokeh(image: Any, disparity: Any, focus_disparity: float, strength: float, *,
                 shape: str = "disc", blades: int = 6, rotation: float = 0.0,
                 blade_curvature: float = 0.0, cats_eye: float = 0.5,
                 highlight_boost: float = 0.0, highlight_threshold: float = 0.9,
                 focus_range: float = 0.0, clipped_gain: float = 4.0,
                 quality: str = "default", device: str | torch.device | None = None) -> Any:
    """Render the shallow depth of field a real lens focused at ``focus_disparity`` would record.

    Linear light, depth layers composited back to front with the aperture kernel of each
    layer's circle of confusion (CoC) ``r = strength * max(|D - focus_disparity| - focus_range, 0)``
    pixels; occlusion-aware (no halos, sharp in-focus edges, partial occlusion by a defocused
    foreground, hidden background filled from its surroundings).

    Args:
        image: (H, W, 3) float sRGB-encoded in [0, 1] (values outside are clipped), numpy array
            or torch tensor.
        disparity: (H, W) float, any finite values, larger = nearer (same kind as image).
        focus_disparity: the disparity rendered sharp.
        strength: CoC radius in pixels per unit of disparity, >= 0.
        shape: aperture, "disc" (default), "polygon", "ring" or "cats_eye".
        blades: polygon blade count, >= 3.
        rotation: polygon rotation in degrees.
        blade_curvature: 0 straight blades ... 1 circular.
        cats_eye: 0..1, strength of the cat's-eye clipping towards the frame edges.
        highlight_boost: >= 0, extra gain (1 + boost) for out-of-focus pixels brighter than
            ``highlight_threshold`` (stylisation; 0 = off).
        highlight_threshold: sRGB luminance in [0, 1] above which a pixel is a highlight.
        focus_range: >= 0, half-width in disparity of the band around the focus that stays sharp.
        clipped_gain: >= 1, assumed brightness of fully clipped pixels relative to white (energy
            of light sources lost to clipping; 1 = off). Part of the physical default.
        quality: "preview" (fastest), "default", or "high" (every blur at full resolution with
            1 px layers; slow).
        device: "cpu", "cuda", ... to run on; default: the input tensor's device, or the CPU.
    Returns:
        (H, W, 3) float32 sRGB in [0, 1], numpy array for numpy input, torch tensor on the input's
        device for torch input.
    Raises:
        RefocusError (a ValueError): for inputs of the wrong shape, dtype or range.

    Example:
        >>> img = np.full((4, 5, 3), 0.5, np.float32)
        >>> render_bokeh(img, np.ones((4, 5), np.float32), 1.0, 10.0).shape
        (4, 5, 3)
    """
    aperture = _check_options(shape, blades, rotation, blade_curvature, cats_eye, highlight_boost,
                              highlight_threshold, focus_range, clipped_gain, quality)
    focus_disparity = _check_number("focus_disparity", focus_disparity)
    strength = _check_number("strength", strength, minimum=0.0)
    is_torch = isinstance(image, torch.Tensor)
    run_on = torch.device(device) if device is not None else (image.device if is_torch else torch.device("cpu"))
    img = _as_tensor("image", image, run_on)
    disp = _as_tensor("disparity", disparity, run_on)
    _check_arrays(img, disp)

    with torch.no_grad(), _single_torch_thread_on_cpu(run_on):
        srgb = img.clamp(0.0, 1.0)
        coc = signed_coc(disp, focus_disparity, strength, focus_range)
        linear = recover_clipped_highlights(srgb_to_linear(srgb), srgb, clipped_gain)
        if highlight_boost > 0.0:
            linear = boost_highlights(linear, srgb, coc, highlight_boost, highlight_threshold)
        fine_radius, relative_width = QUALITIES[quality]
        out = linear_to_srgb(composite_layers(linear, coc, aperture, fine_radius, relative_width))
        out = torch.nan_to_num(out, nan=0.0).clamp(0.0, 1.0)

    if is_torch:
        return out.to(image.device)
    return out.cpu().numpy()


@contextlib.contextmanager
def _single_torch_thread_on_cpu(device: torch.device):
    """Run torch's CPU ops on one thread while rendering.

    Why: the heavy CPU work here is OpenCV's (its own thread pool); torch's OpenMP workers keep
    spinning after each small elementwise op and starve OpenCV's threads. Measured on a 2-core
    CPU at 1 MP: 2.3 s with both pools, 0.35 s with torch on one thread. The previous setting
    is restored afterwards.
    """
    if device.type != "cpu":
        yield
        return
    previous = torch.get_num_threads()
    torch.set_num_threads(1)
    try:
        yield
    finally:
        torch.set_num_threads(previous)


# ---------------------------------------------------------------------------------------------
# Input checks: early, explicit, in words the user understands
def _check_number(name: str, value: Any, minimum: float | None = None, maximum: float | None = None) -> float:
    try:
        v = float(value)
    except (TypeError, ValueError):
        raise RefocusError(f"{name} must be a number, got {value!r}.") from None
    if not math.isfinite(v):
        raise RefocusError(f"{name} must be a finite number, got {value!r}.")
    if minimum is not None and v < minimum:
        raise RefocusError(f"{name} must be at least {minimum}, got {v}.")
    if maximum is not None and v > maximum:
        raise RefocusError(f"{name} must be at most {maximum}, got {v}.")
    return v


def _check_options(shape, blades, rotation, blade_curvature, cats_eye, highlight_boost,
                   highlight_threshold, focus_range, clipped_gain, quality) -> Aperture:
    if shape not in SHAPES:
        raise RefocusError(f"Unknown aperture shape {shape!r}; expected one of {', '.join(SHAPES)}.")
    if quality not in QUALITIES:
        raise RefocusError(f"Unknown quality {quality!r}; expected one of {', '.join(QUALITIES)}.")
    if isinstance(blades, bool) or not isinstance(blades, (int, np.integer)) or blades < 3:
        raise RefocusError(f"blades must be a whole number of at least 3, got {blades!r}.")
    for name, value, lo, hi in [("rotation", rotation, None, None),
                                ("blade_curvature", blade_curvature, 0.0, 1.0),
                                ("cats_eye", cats_eye, 0.0, 1.0),
                                ("highlight_boost", highlight_boost, 0.0, None),
                                ("highlight_threshold", highlight_threshold, 0.0, 1.0),
                                ("focus_range", focus_range, 0.0, None),
                                ("clipped_gain", clipped_gain, 1.0, None)]:
        _check_number(name, value, lo, hi)
    return Aperture(shape, int(blades), float(rotation), float(blade_curvature), float(cats_eye))


def _as_tensor(name: str, x: Any, device: torch.device) -> torch.Tensor:
    if isinstance(x, torch.Tensor):
        t = x.detach()
    elif isinstance(x, np.ndarray):
        t = torch.from_numpy(np.ascontiguousarray(x))
    else:
        raise RefocusError(f"{name} must be a numpy array or a torch tensor, got {type(x).__name__}.")
    if not t.is_floating_point():
        raise RefocusError(f"{name} must hold floating-point values (float32), got {t.dtype}; "
                           f"convert 8-bit images with .astype(np.float32) / 255.")
    return t.to(device=device, dtype=torch.float32).contiguous()


def _check_arrays(img: torch.Tensor, disp: torch.Tensor) -> None:
    if img.ndim != 3 or img.shape[-1] != 3:
        raise RefocusError(f"image must have shape (H, W, 3) (RGB), got {tuple(img.shape)}.")
    if img.shape[0] < 1 or img.shape[1] < 1:
        raise RefocusError(f"image is empty: shape {tuple(img.shape)}.")
    if disp.shape != img.shape[:2]:
        raise RefocusError(f"disparity must have shape (H, W) = {tuple(img.shape[:2])} to match the "
                           f"image, got {tuple(disp.shape)}.")
    # amax propagates NaN and never overflows: one cheap reduction instead of a full mask
    if not torch.isfinite(img.abs().amax()):
        raise RefocusError("image contains NaN or infinite values.")
    if not torch.isfinite(disp.abs().amax()):
        bad = int((~torch.isfinite(disp)).sum())
        raise RefocusError(f"disparity contains {bad} NaN or infinite values; replace them (e.g. "
                           f"with np.nan_to_num) before rendering.")
