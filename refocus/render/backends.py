"""The few array operations the renderer needs, on two backends.

The algorithm (``composite.py`` and the step modules) is written once over these operations;
a backend only says *how* to resample, convolve, count and take window statistics on its
arrays:

- ``NumpyOps`` (the CPU): numpy arrays, convolutions and resizes through OpenCV (an order of
  magnitude faster than torch's CPU conv for these small depthwise kernels, with its own
  thread pool), elementwise work in numpy. No torch op runs, so torch's thread pool is never
  involved and no process-wide thread setting is touched.
- ``TorchOps`` (CUDA, or any torch device): torch tensors; the layers of a batch are blurred
  by one grouped convolution (a GPU renderer is bound by kernel launches, not arithmetic),
  full-resolution blurs by FFT, and no result is read back to the host mid-render except the
  few scalars that decide the work (layer table, whether a layer holds lights).

Arrays are channels last: a layer stack is (N, h, w, C), an image (h, w, C). Both backends
define the operations identically: zero padding, tent (centroid-keeping) or box downsampling,
half-pixel-centred bilinear upsampling.
"""

from __future__ import annotations

import math
from typing import Any, Sequence

import cv2
import numpy as np
import torch
import torch.nn.functional as F
from scipy.fft import next_fast_len

Array = Any  # np.ndarray on NumpyOps, torch.Tensor on TorchOps


def tent(s: int) -> tuple[np.ndarray, int]:
    """1-D weights of the downsampling filter and the offset of its first tap from a block start.

    The filter is the adjoint of half-pixel bilinear upsampling (a tent of half-width s around
    each block centre, divided by s): every point keeps its energy *and* its centroid, so a
    small bright light blurred at reduced resolution lands where it should.
    """
    centre = (s - 1) / 2
    first = int(math.ceil(centre - s + 1e-9))
    offsets = np.arange(first, int(math.floor(centre + s - 1e-9)) + 1)
    return ((1.0 - np.abs(offsets - centre) / s) / s).astype(np.float32), first


def _padded_kernels(kernels: Sequence[np.ndarray], flip: bool) -> np.ndarray:
    """(N, n, n) float32: each kernel centred in the largest one's size (zeros around it),
    flipped when the convolution routine correlates."""
    size = max(k.shape[0] for k in kernels)
    weight = np.zeros((len(kernels), size, size), np.float32)
    for i, k in enumerate(kernels):
        o = (size - k.shape[0]) // 2
        weight[i, o:o + k.shape[0], o:o + k.shape[0]] = k[::-1, ::-1] if flip else k
    return weight


def _stacked(layers: list[np.ndarray]) -> np.ndarray:
    """(N, ...) contiguous from N per-layer results; one layer (the CPU's batches) without a copy."""
    return np.ascontiguousarray(layers[0])[None] if len(layers) == 1 else np.stack(layers)


class SameCalls:
    """The operations that are the same call in numpy and in torch, given the array module
    ``xp`` a backend sets."""

    xp: Any

    def maximum(self, a: Array, b: Array) -> Array:
        return self.xp.maximum(a, b)

    def where(self, condition: Array, a: Array, b: Array) -> Array:
        return self.xp.where(condition, a, b)

    def select(self, condition: Array, a: Array, b: Array) -> Array:
        """``where(condition, a, b)``, possibly written into ``b`` (a temporary of the
        caller's), all three of one shape."""
        return self.xp.where(condition, a, b)

    def sign(self, x: Array) -> Array:
        return self.xp.sign(x)

    def isfinite(self, x: Array) -> Array:
        return self.xp.isfinite(x)

    def log(self, x: Array) -> Array:
        return self.xp.log(x)

    def nan_to_num(self, x: Array) -> Array:
        return self.xp.nan_to_num(x, nan=0.0)

    def cat(self, xs: Sequence[Array]) -> Array:
        """Concatenated along the last (channel) axis."""
        return self.xp.concatenate(list(xs), axis=-1)


class NumpyOps(SameCalls):
    """The CPU backend: numpy arrays, OpenCV filters. Layers are blurred one at a time (a batch
    would only cost memory here), and reading a value to decide work is free."""

    xp = np

    batch_pixels = 0  # every layer is its own batch
    branch_on_values = True  # skip work after looking at the data (no device to sync)
    # bound each layer's work by the tiles its pixels reach (``tiles.py``): pays where the
    # arithmetic is the cost, as here
    tiled = True

    # --- creation and transfer
    def zeros(self, shape: tuple[int, ...]) -> np.ndarray:
        return np.zeros(shape, np.float32)

    def empty(self, shape: tuple[int, ...]) -> np.ndarray:
        return np.empty(shape, np.float32)

    def asarray(self, a: np.ndarray) -> np.ndarray:
        return np.asarray(a)

    def to_host(self, x: np.ndarray) -> np.ndarray:
        return np.asarray(x)

    def from_input(self, x: np.ndarray | torch.Tensor) -> np.ndarray:
        if isinstance(x, torch.Tensor):
            x = x.detach().cpu().numpy()
        return np.ascontiguousarray(x, dtype=np.float32)

    # --- elementwise and reductions (and those of ``SameCalls``)
    def pow(self, x: np.ndarray, p: float) -> np.ndarray:
        """x ** p for x >= 0 (OpenCV's is multi-threaded and several times numpy's speed)."""
        return cv2.pow(np.ascontiguousarray(x).reshape(-1, 1), p).reshape(x.shape)

    def select(self, condition: np.ndarray, a: np.ndarray, b: np.ndarray) -> np.ndarray:
        """``where(condition, a, b)`` written into ``b`` (a temporary of the caller's), all three
        of one shape. OpenCV's masked copy: numpy's where writes a new array and takes 10x as
        long (11 against 1 ms on a 3 MP colour image)."""
        if not (a.dtype == b.dtype == np.float32 and a.flags.c_contiguous and b.flags.c_contiguous
                and condition.flags.c_contiguous and a.shape == b.shape == condition.shape and a.ndim >= 2):
            return np.where(condition, a, b)
        rows = a.shape[0]
        cv2.copyTo(a.reshape(rows, -1), condition.reshape(rows, -1).view(np.uint8), b.reshape(rows, -1))
        return b

    def unit_clip(self, x: np.ndarray) -> np.ndarray:
        """x clipped to [0, 1], NaN to 0 (fmax and fmin drop NaN: two passes, where
        nan_to_num and a clip take five)."""
        out = np.fmax(x, np.float32(0.0))
        return np.fmin(out, np.float32(1.0), out=out)

    def min_last(self, x: np.ndarray) -> np.ndarray:
        """The minimum over the last axis, kept as size 1. Elementwise minima of the channels:
        numpy's own reduction over a short last axis is about 20x slower."""
        out = x[..., 0]
        for i in range(1, x.shape[-1]):
            out = np.minimum(out, x[..., i])
        return out[..., None]

    def mean_hw(self, x: np.ndarray) -> np.ndarray:
        return x.mean(axis=(0, 1), keepdims=True, dtype=np.float32)

    def as_float(self, x: np.ndarray) -> np.ndarray:
        return x.astype(np.float32)

    def addcmul(self, a: np.ndarray, b: np.ndarray, c: np.ndarray, out: np.ndarray | None = None) -> np.ndarray:
        """a + b * c (broadcasting), into ``out`` if given (which may be one of the inputs).
        Into c itself (the composite's ``acc = layer + (1 - alpha) acc``) in two in-place passes,
        without a temporary: about twice as fast on a crop of a large frame."""
        if out is c:
            np.multiply(c, b, out=c)
            return np.add(c, a, out=c)
        return np.add(a, b * c, out=out)

    def rows(self, xs: Sequence[np.ndarray]) -> np.ndarray:
        """Concatenate (..., C) arrays as rows of one (P, C) array."""
        return np.concatenate([x.reshape(-1, x.shape[-1]) for x in xs])

    # --- counting
    def bucketize(self, x: np.ndarray, edges: np.ndarray) -> np.ndarray:
        """Index i with edges[i - 1] < x <= edges[i] (torch.bucketize's convention)."""
        return np.searchsorted(edges, x, side="left")

    def bincount(self, idx: np.ndarray, weights: np.ndarray | None, n: int) -> np.ndarray:
        return np.bincount(idx.reshape(-1), None if weights is None else weights.reshape(-1), n)

    def arange(self, n: int) -> np.ndarray:
        return np.arange(n)

    # --- resampling and convolution
    def tent_downsample(self, x: np.ndarray, s: int, margins: bool = False) -> np.ndarray:
        """Planar (C, N, h, w) -> channels last (N, ceil(h/s), ceil(w/s), C), zero padding,
        centroids kept. Filtered plane by plane (OpenCV is fastest on contiguous single-channel
        planes), interleaved at 1/s. ``margins``: the planes are tiles whose outer pixel at 1/s
        is not used and h is a multiple of s; they are filtered as one tall image (their rows
        reach into each other's margins only)."""
        if s == 1:
            return self.interleave(x)
        taps, first = tent(s)
        c, n, h, w = x.shape
        if margins:
            tall = cv2.sepFilter2D(np.ascontiguousarray(x).reshape(-1, w), -1, taps, taps, anchor=(-first, -first),
                                   borderType=cv2.BORDER_CONSTANT)[::s, ::s]
            return self.interleave(tall.reshape(c, n, h // s, -1))
        out = np.empty((c, n, -(-h // s), -(-w // s)), np.float32)
        for i in range(c):
            for j in range(n):
                out[i, j] = cv2.sepFilter2D(np.ascontiguousarray(x[i, j]), -1, taps, taps, anchor=(-first, -first),
                                            borderType=cv2.BORDER_CONSTANT)[::s, ::s]
        return self.interleave(out)

    def box_downsample(self, x: np.ndarray, f: int) -> np.ndarray:
        """(h, w, C) -> (ceil(h/f), ceil(w/f), C): block means, zero padding. The whole blocks
        are read in place (OpenCV takes a crop of a larger frame as it is); only the partial
        last row and column of blocks are padded: a padded copy of the whole crop took 3-4x
        the time of the means at 12 MP."""
        if f == 1:
            return x
        h, w, c = x.shape
        h0, w0 = h - h % f, w - w % f  # the whole blocks
        out = np.empty((-(-h // f), -(-w // f), c), np.float32)
        if h0 and w0:
            whole = cv2.resize(x[:h0, :w0], (w0 // f, h0 // f), interpolation=cv2.INTER_AREA)
            out[:h0 // f, :w0 // f] = whole.reshape(h0 // f, w0 // f, c)
        if w0 < w:  # the last column of blocks, above the last row
            strip = np.zeros((h0, f, c), np.float32)
            strip[:, :w - w0] = x[:h0, w0:]
            out[:h0 // f, -1] = strip.reshape(h0 // f, f, f, c).mean(axis=(1, 2))
        if h0 < h:  # the last row of blocks, the corner included
            strip = np.zeros((f, out.shape[1] * f, c), np.float32)
            strip[:h - h0, :w] = x[h0:]
            out[-1] = strip.reshape(f, out.shape[1], f, c).mean(axis=(0, 2))
        return out

    def upsample(self, x: np.ndarray, h: int, w: int) -> np.ndarray:
        """Bilinear resize of (h', w', C) or (N, h', w', C) to (h, w) with half-pixel centres."""
        if x.shape[-3:-1] == (h, w):
            return x
        if x.ndim == 4:
            return _stacked([self.upsample(layer, h, w) for layer in x])
        out = cv2.resize(np.ascontiguousarray(x), (w, h), interpolation=cv2.INTER_LINEAR)
        return out.reshape(h, w, x.shape[-1])

    def convolve(self, x: np.ndarray, kernels: Sequence[np.ndarray], exact: bool = False) -> np.ndarray:
        """Scatter each layer x[i] (h, w, C) with kernels[i] (true convolution, zero padding).
        OpenCV switches to a DFT for large kernels by itself, so ``exact`` needs nothing more."""
        if all(k.shape == (1, 1) for k in kernels):
            return x
        h, w, c = x.shape[1:]
        return _stacked([cv2.filter2D(np.ascontiguousarray(layer), -1, np.ascontiguousarray(k[::-1, ::-1]),
                                      borderType=cv2.BORDER_CONSTANT).reshape(h, w, c)
                         for layer, k in zip(x, kernels)])

    def light_groups(self, lights: np.ndarray) -> tuple[int, np.ndarray, np.ndarray]:
        """Connected groups of the lit pixels of one layer's lights (1, h, w, 3): (count incl.
        the background, labels (h, w), stats as OpenCV gives them), for the sparse blur."""
        lit = (lights[0].max(axis=-1) > 0.0).astype(np.uint8)
        return cv2.connectedComponentsWithStats(lit, connectivity=8)[:3]

    # --- window statistics (the steps that look at a pixel's neighbourhood)
    def window_max(self, x: np.ndarray, r: int) -> np.ndarray:
        """(h, w): the maximum over the (2r+1)^2 window around each pixel, inside the frame.
        Wide windows as a row then a column (the same maxima: 100 against 188 ms at 12 MP for
        r = 126, the clipped-light search's on a 6304 px wide photo; slower below r = 32)."""
        x = np.ascontiguousarray(x)
        if r < 32:
            return cv2.dilate(x, np.ones((2 * r + 1, 2 * r + 1), np.uint8))
        return cv2.dilate(cv2.dilate(x, np.ones((1, 2 * r + 1), np.uint8)), np.ones((2 * r + 1, 1), np.uint8))

    def window_mean(self, x: np.ndarray, r: int) -> np.ndarray:
        """(h, w, C): the mean over the (2r+1)^2 window around each pixel, zero outside the
        frame (the divisor is always the full window)."""
        out = cv2.blur(np.ascontiguousarray(x), (2 * r + 1, 2 * r + 1), borderType=cv2.BORDER_CONSTANT)
        return out.reshape(x.shape)

    # --- planar (channels-first) work on tiles: elementwise ops with a per-pixel factor are
    # several times faster on contiguous planes than on interleaved channels in numpy
    def permute(self, x: np.ndarray, axes: tuple[int, ...]) -> np.ndarray:
        return x.transpose(axes)

    def planes(self, x: np.ndarray) -> np.ndarray:
        """(..., C) -> (C, ...), contiguous (copied channel by channel: 2 ms against 3 ms for a
        strided copy of a 4-channel megapixel)."""
        out = np.empty((x.shape[-1], *x.shape[:-1]), x.dtype)
        for c in range(x.shape[-1]):
            out[c] = x[..., c]
        return out

    def unpremultiply(self, rgba: np.ndarray) -> np.ndarray:
        """Premultiplied (H, W, 4) -> colour (H, W, 3), alpha taken as 1e-6 at least. By
        OpenCV, into the colour's copy: numpy divides by a channel that broadcasts over a short
        last axis 2x slower (0.8 MP: 5.7 against 2.8 ms)."""
        h, w = rgba.shape[:2]
        alpha = np.maximum(rgba[..., 3], np.float32(1e-6))
        colour = cv2.cvtColor(rgba, cv2.COLOR_RGBA2RGB).reshape(h, w, 3)
        return cv2.divide(colour, cv2.merge([alpha, alpha, alpha]), dst=colour).reshape(h, w, 3)

    def interleave(self, x: np.ndarray) -> np.ndarray:
        """(C, ...) -> (..., C), contiguous (OpenCV's merge: several times numpy's copy)."""
        c, w = x.shape[0], x.shape[-1]
        return cv2.merge([p.reshape(-1, w) for p in x]).reshape(*x.shape[1:], c)

    def windows(self, x: np.ndarray, size: int, step: int) -> np.ndarray:
        """A view (..., rows, cols, size, size) of the size x size windows of x (..., h, w) that
        start every ``step`` px; indexing it by (row, column) copies whole window rows."""
        return np.lib.stride_tricks.sliding_window_view(x, (size, size), axis=(-2, -1))[..., ::step, ::step, :, :]

    def convolve_planes(self, x: np.ndarray, kernel: np.ndarray) -> np.ndarray:
        """Scatter every plane of x (C, N, h, w) with one kernel (zero padding). The planes go
        through OpenCV as one tall image: a plane's rows bleed into its neighbours' only as far
        as the kernel reaches, into the halo that tiles carry for this."""
        if kernel.shape == (1, 1):
            return x
        out = cv2.filter2D(x.reshape(-1, x.shape[-1]), -1, np.ascontiguousarray(kernel[::-1, ::-1]),
                           borderType=cv2.BORDER_CONSTANT)
        return out.reshape(x.shape)


class TorchOps(SameCalls):
    """The torch backend (CUDA; also runs on the CPU, for tests and launch counts)."""

    xp = torch

    batch_pixels = 1 << 25  # largest batch of one blur (layers x crop pixels)
    branch_on_values = False  # no host syncs to decide work: multiply by a 0/1 gate instead
    # no tiles: a GPU is bound by kernel launches, and tiles take each layer out of its batch
    # (at 2000x1500, 3,467 python-level torch ops per render with them, 2,368 without)
    tiled = False

    def __init__(self, device: str | torch.device = "cpu") -> None:
        self.device = torch.device(device)

    # --- creation and transfer
    def zeros(self, shape: tuple[int, ...]) -> torch.Tensor:
        return torch.zeros(shape, device=self.device, dtype=torch.float32)

    def empty(self, shape: tuple[int, ...]) -> torch.Tensor:
        return torch.empty(shape, device=self.device, dtype=torch.float32)

    def asarray(self, a: np.ndarray) -> torch.Tensor:
        return torch.as_tensor(np.ascontiguousarray(a)).to(self.device)

    def to_host(self, x: torch.Tensor) -> np.ndarray:
        return x.cpu().numpy()

    def from_input(self, x: np.ndarray | torch.Tensor) -> torch.Tensor:
        t = x.detach() if isinstance(x, torch.Tensor) else torch.from_numpy(np.ascontiguousarray(x))
        return t.to(device=self.device, dtype=torch.float32).contiguous()

    # --- elementwise and reductions (and those of ``SameCalls``)
    def pow(self, x: torch.Tensor, p: float) -> torch.Tensor:
        return x ** p

    def unit_clip(self, x: torch.Tensor) -> torch.Tensor:
        return torch.nan_to_num(x, nan=0.0).clamp(0.0, 1.0)

    def min_last(self, x: torch.Tensor) -> torch.Tensor:
        return x.amin(dim=-1, keepdim=True)

    def mean_hw(self, x: torch.Tensor) -> torch.Tensor:
        return x.mean(dim=(0, 1), keepdim=True)

    def as_float(self, x: torch.Tensor) -> torch.Tensor:
        return x.to(torch.float32)

    def addcmul(self, a: torch.Tensor, b: torch.Tensor, c: torch.Tensor,
                out: torch.Tensor | None = None) -> torch.Tensor:
        return torch.addcmul(a, b, c) if out is None else torch.addcmul(a, b, c, out=out)

    def rows(self, xs: Sequence[torch.Tensor]) -> torch.Tensor:
        return torch.cat([x.reshape(-1, x.shape[-1]) for x in xs])

    # --- counting
    def bucketize(self, x: torch.Tensor, edges: np.ndarray) -> torch.Tensor:
        return torch.bucketize(x, torch.from_numpy(edges).to(x.device))

    def bincount(self, idx: torch.Tensor, weights: torch.Tensor | None, n: int) -> torch.Tensor:
        return torch.bincount(idx.reshape(-1), None if weights is None else weights.reshape(-1), minlength=n)

    def arange(self, n: int) -> torch.Tensor:
        return torch.arange(n, device=self.device)

    # --- resampling and convolution (channels first inside, one grouped op per batch)
    @staticmethod
    def _planes(x: torch.Tensor) -> torch.Tensor:  # (N, h, w, C) -> (1, N * C, h, w)
        n, h, w, c = x.shape
        return x.permute(0, 3, 1, 2).reshape(1, n * c, h, w)

    @staticmethod
    def _layers(y: torch.Tensor, n: int) -> torch.Tensor:  # (1, N * C, h, w) -> (N, h, w, C)
        return y.view(n, -1, *y.shape[2:]).permute(0, 2, 3, 1)

    def tent_downsample(self, x: torch.Tensor, s: int, margins: bool = False) -> torch.Tensor:
        x = x.permute(1, 2, 3, 0)  # planar (C, N, h, w) -> (N, h, w, C)
        if s == 1:
            return x.contiguous()
        taps, first = tent(s)
        n, h, w, c = x.shape
        k = torch.from_numpy(taps).to(x.device)
        y = F.pad(self._planes(x), (-first, len(taps) + first - 1 + (-w % s),
                                    -first, len(taps) + first - 1 + (-h % s)))
        y = F.conv2d(y, k.view(1, 1, 1, -1).expand(n * c, 1, 1, -1), stride=(1, s), groups=n * c)
        y = F.conv2d(y, k.view(1, 1, -1, 1).expand(n * c, 1, -1, 1), stride=(s, 1), groups=n * c)
        return self._layers(y, n)

    def box_downsample(self, x: torch.Tensor, f: int) -> torch.Tensor:
        if f == 1:
            return x
        # zero padding to a multiple of f = ceil_mode with the full block as divisor
        y = F.avg_pool2d(x.permute(2, 0, 1)[None], f, f, 0, True, True, f * f)
        return y[0].permute(1, 2, 0)

    def upsample(self, x: torch.Tensor, h: int, w: int) -> torch.Tensor:
        if tuple(x.shape[-3:-1]) == (h, w):
            return x
        batched = x if x.ndim == 4 else x[None]
        n = batched.shape[0]
        y = F.interpolate(self._planes(batched), size=(h, w), mode="bilinear", align_corners=False)
        y = self._layers(y, n)
        return y if x.ndim == 4 else y[0]

    def convolve(self, x: torch.Tensor, kernels: Sequence[np.ndarray], exact: bool = False) -> torch.Tensor:
        """One grouped convolution for the whole batch; by FFT when ``exact`` (the large kernels
        of full-resolution blurs), the same result to float round-off, zero padding included."""
        if all(k.shape == (1, 1) for k in kernels):
            return x
        n, h, w, c = x.shape
        if exact:
            weight = torch.from_numpy(_padded_kernels(kernels, flip=False)).to(x.device)
            m = weight.shape[-1] // 2
            # the whole linear convolution (no wrap-around), padded to a size the FFT is fast at
            full = (next_fast_len(h + 2 * m, real=True), next_fast_len(w + 2 * m, real=True))
            spectrum = torch.fft.rfft2(x.permute(0, 3, 1, 2), s=full)
            spectrum *= torch.fft.rfft2(weight, s=full)[:, None]
            return torch.fft.irfft2(spectrum, s=full)[..., m:m + h, m:m + w].permute(0, 2, 3, 1)
        weight = torch.from_numpy(np.repeat(_padded_kernels(kernels, flip=True), c, axis=0)[:, None])
        y = F.conv2d(self._planes(x), weight.to(x.device), padding=weight.shape[-1] // 2, groups=n * c)
        return self._layers(y, n)

    def light_groups(self, lights: torch.Tensor) -> None:
        """None: blur all lights of a batch at once (grouping them would need the host)."""
        return None

    # --- window statistics
    def window_max(self, x: torch.Tensor, r: int) -> torch.Tensor:
        y = F.max_pool2d(x[None, None], (1, 2 * r + 1), stride=1, padding=(0, r))
        return F.max_pool2d(y, (2 * r + 1, 1), stride=1, padding=(r, 0))[0, 0]

    def window_mean(self, x: torch.Tensor, r: int) -> torch.Tensor:
        y = F.avg_pool2d(x.permute(2, 0, 1)[None], (1, 2 * r + 1), stride=1, padding=(0, r))
        return F.avg_pool2d(y, (2 * r + 1, 1), stride=1, padding=(r, 0))[0].permute(1, 2, 0)

    # --- planar (channels-first) work on tiles
    def permute(self, x: torch.Tensor, axes: tuple[int, ...]) -> torch.Tensor:
        return x.permute(axes)

    def planes(self, x: torch.Tensor) -> torch.Tensor:
        return x.movedim(-1, 0).contiguous()

    def unpremultiply(self, rgba: torch.Tensor) -> torch.Tensor:
        return rgba[..., :3] / rgba[..., 3:].clamp(min=1e-6)

    def interleave(self, x: torch.Tensor) -> torch.Tensor:
        return x.movedim(0, -1).contiguous()

    def windows(self, x: torch.Tensor, size: int, step: int) -> torch.Tensor:
        return x.unfold(-2, size, step).unfold(-2, size, step)

    def convolve_planes(self, x: torch.Tensor, kernel: np.ndarray) -> torch.Tensor:
        if kernel.shape == (1, 1):
            return x
        weight = torch.from_numpy(np.ascontiguousarray(kernel[::-1, ::-1])).to(x.device)[None, None]
        y = F.conv2d(x.reshape(-1, 1, *x.shape[-2:]), weight, padding=kernel.shape[-1] // 2)
        return y.reshape(x.shape)


Ops = NumpyOps | TorchOps


def active_box(ops: Ops, mask: Array, grow: int) -> tuple[slice, slice] | None:
    """The box (rows, columns) around the true pixels of ``mask`` (h, w), grown by ``grow`` px
    and cut to the frame, for a step whose work is local to those pixels; None when no pixel is
    true. A backend that does not branch on values (no host syncs) gets the whole frame."""
    h, w = mask.shape
    if not ops.branch_on_values:
        return slice(0, h), slice(0, w)
    rows, cols = np.flatnonzero(mask.any(axis=1)), np.flatnonzero(mask.any(axis=0))
    if len(rows) == 0:
        return None
    return (slice(max(int(rows[0]) - grow, 0), min(int(rows[-1]) + grow + 1, h)),
            slice(max(int(cols[0]) - grow, 0), min(int(cols[-1]) + grow + 1, w)))


def cells_holding(mask: np.ndarray, c: int) -> np.ndarray:
    """Which c x c cells of ``mask`` (h, w) bool hold a true pixel: (ceil(h/c), ceil(w/c)) bool."""
    h, w = mask.shape
    padded = np.zeros((-(-h // c) * c, -(-w // c) * c), bool)
    padded[:h, :w] = mask
    return padded.reshape(padded.shape[0] // c, c, padded.shape[1] // c, c).any(axis=(1, 3))


def grown_cells(cells: np.ndarray, reach: int, c: int) -> np.ndarray:
    """Occupied c x c cells (h, w) bool grown by ``reach`` px (in whole cells), as uint8."""
    d = -(-reach // c)
    cells = cells.astype(np.uint8)
    return cv2.dilate(cells, np.ones((2 * d + 1, 2 * d + 1), np.uint8)) if d else cells


# Side in px of the cells in which ``active_boxes`` finds clusters.
CLUSTER_CELL = 32


def active_boxes(ops: Ops, mask: Array, grow: int) -> list[tuple[tuple[slice, slice], Array]]:
    """The clusters of the true pixels of ``mask`` (h, w) more than ``grow`` px apart, for a
    step whose work is local to those pixels: per cluster, a box (rows, columns) holding its
    pixels grown by ``grow`` px (at least; cut to the frame) and starting on even coordinates
    (multiples of CLUSTER_CELL), and its own pixels in that box ((h', w') bool: another
    cluster's may lie in the box too, without their ``grow``). Empty when no pixel is true. A
    backend that does not branch on values (no host syncs) gets the whole frame as one box."""
    h, w = mask.shape
    if not ops.branch_on_values:
        return [((slice(0, h), slice(0, w)), mask)]
    c = CLUSTER_CELL
    cells = cells_holding(mask, c)
    count, labels, stats, _ = cv2.connectedComponentsWithStats(grown_cells(cells, grow, c), connectivity=8)
    boxes = []
    for i in range(1, count):
        x, y, bw, bh = (int(v) for v in stats[i, :4])
        box = slice(y * c, min((y + bh) * c, h)), slice(x * c, min((x + bw) * c, w))
        own_cells = (labels[y:y + bh, x:x + bw] == i) & cells[y:y + bh, x:x + bw]
        own = np.repeat(np.repeat(own_cells, c, axis=0), c, axis=1)
        boxes.append((box, mask[box] & own[:box[0].stop - box[0].start, :box[1].stop - box[1].start]))
    return boxes


def ops_for(x: Array) -> Ops:
    """The backend of an array: numpy -> NumpyOps, torch tensor -> TorchOps on its device."""
    return TorchOps(x.device) if isinstance(x, torch.Tensor) else NumpyOps()


def ops_for_device(device: torch.device) -> Ops:
    """The backend for a device: the CPU renders with numpy/OpenCV, any other device with torch."""
    return NumpyOps() if device.type == "cpu" else TorchOps(device)
