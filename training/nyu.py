"""NYU Depth v2 (labeled, 1449 frames) as a torch ``Dataset``, with the paper's augmentation.

The labeled file ``nyu_depth_v2_labeled.mat`` is MATLAB v7.3, i.e. HDF5. MATLAB stores arrays
column-major, so h5py sees every axis reversed:

    MATLAB  images (480, 640, 3, 1449) uint8     ->  h5py  images (1449, 3, 640, 480)
    MATLAB  depths (480, 640, 1449) float32 [m]  ->  h5py  depths (1449, 640, 480)

so ``images[n, c, x, y]`` is the pixel at row ``y``, column ``x``: we transpose each frame back
to (480, 640). ``splits.mat`` (MATLAB v5, read with scipy) holds the official split as 1-based
indices: ``trainNdxs`` (795) and ``testNdxs`` (654).

Training samples follow Eigen et al. 2014, section 3.3: the frame is halved to 240x320, then
scaled by s in [1, 1.5] (depths divided by s, as if the camera moved closer), rotated by
r in [-5, 5] degrees, randomly cropped to 228x304, coloured by c in [0.8, 1.2]^3 and flipped
horizontally with probability 0.5. Scale, rotation, crop and flip are one affine resampling, so
image, depth and validity mask stay aligned by construction.
"""

from __future__ import annotations

import os
from pathlib import Path

import numpy as np
import torch
import torch.nn.functional as F
from torch.utils.data import Dataset

from refocus.depth.eigen import CROP_OFFSET, HALF_SIZE, INPUT_SIZE
from refocus.errors import RefocusError

FRAME_SIZE = (480, 640)  # (H, W) of a NYU Depth v2 frame
SPLIT_KEYS = {"train": "trainNdxs", "test": "testNdxs"}


def read_split(splits_path: str | os.PathLike, split: str) -> np.ndarray:
    """Read the official split's frame indices.

    Args:
        splits_path: ``splits.mat`` from the NYU site.
        split: ``"train"`` (795 frames) or ``"test"`` (654 frames).

    Returns:
        int64 (N,) 0-based indices into the labeled file, in the file's order.
    """
    import scipy.io

    if split not in SPLIT_KEYS:
        raise ValueError(f"split must be 'train' or 'test', got {split!r}")
    if not Path(splits_path).is_file():
        raise RefocusError(f"No splits file at '{splits_path}'; `python -m training.setup_data` downloads splits.mat.")
    mat = scipy.io.loadmat(str(splits_path))
    if SPLIT_KEYS[split] not in mat:
        raise RefocusError(f"'{splits_path}' has no '{SPLIT_KEYS[split]}'; is it NYU's splits.mat?")
    indices = np.asarray(mat[SPLIT_KEYS[split]]).astype(np.int64).ravel()
    if indices.size == 0 or indices.min() < 1:
        raise RefocusError(f"'{splits_path}' {SPLIT_KEYS[split]} must hold 1-based indices (MATLAB's).")
    return indices - 1


def halve(image: torch.Tensor, depth: torch.Tensor, valid: torch.Tensor):
    """Downsample frames by two, the step from 480x640 to the paper's 240x320.

    Args:
        image: (3, H, W) or (B, 3, H, W) float sRGB in [0, 1].
        depth: (1, H, W) or (B, 1, H, W) float metres.
        valid: (1, H, W) or (B, 1, H, W) bool, where ``depth`` is a measurement.

    Returns:
        (image, depth, valid) at (H/2, W/2). The image is area-averaged; depth is averaged over
        the valid pixels of each 2x2 block (so holes do not drag it to 0), valid if any was.
    """
    single = image.dim() == 3
    if single:
        image, depth, valid = image[None], depth[None], valid[None]
    size = (image.shape[-2] // 2, image.shape[-1] // 2)
    image = F.interpolate(image, size=size, mode="area")
    weight = F.avg_pool2d(valid.float(), 2)
    depth = F.avg_pool2d(depth * valid, 2) / weight.clamp_min(1e-6)
    out = (image, depth, weight > 0)
    return tuple(t[0] for t in out) if single else out


def to_tensors(images: np.ndarray, depths: np.ndarray):
    """Frames as stored, (B, 480, 640, 3) uint8 and (B, 480, 640) float32 metres, as network tensors.

    Returns:
        image (B, 3, 480, 640) float32 in [0, 1], depth (B, 1, 480, 640) float32 metres with 0
        where it is missing, valid (B, 1, 480, 640) bool.
    """
    image = torch.from_numpy(images).permute(0, 3, 1, 2).float() / 255.0
    depth = torch.from_numpy(depths)[:, None]
    # The labeled depths are in-painted, but keep the mask general: raw frames have holes (0)
    # and some tools write NaN for missing depth.
    valid = torch.isfinite(depth) & (depth > 0)
    depth = torch.where(valid, depth, torch.zeros_like(depth))
    return image, depth, valid


def centre_crop(image: torch.Tensor, depth: torch.Tensor, valid: torch.Tensor):
    """The 228x304 centre of halved (..., 240, 320) frames: what the network sees without augmentation."""
    (top, left), (h, w) = CROP_OFFSET, INPUT_SIZE
    crop = (..., slice(top, top + h), slice(left, left + w))
    return image[crop], depth[crop], valid[crop]


def sample_augmentation(generator: torch.Generator | None = None) -> dict:
    """Draw the paper's random augmentation parameters (section 3.3 of Eigen et al. 2014).

    Returns:
        dict with ``scale`` in [1, 1.5], ``angle`` in degrees in [-5, 5], ``crop`` (fractions in
        [0, 1] of the free room for the crop's top-left corner, (y, x)), ``colour`` (3,) in
        [0.8, 1.2] and ``flip`` (bool).
    """
    u = torch.rand(8, generator=generator)
    return {
        "scale": 1.0 + 0.5 * float(u[0]),
        "angle": -5.0 + 10.0 * float(u[1]),
        "crop": (float(u[2]), float(u[3])),
        "colour": 0.8 + 0.4 * u[4:7],
        "flip": bool(u[7] < 0.5),
    }


def sample_augmentations(n: int, generator: torch.Generator | None = None, device=None) -> dict:
    """``n`` independent draws of ``sample_augmentation``, as tensors for ``augment_batch``.

    Drawn on ``device`` (the generator's), so a GPU pipeline never waits on a host-to-device copy.

    Returns:
        dict of tensors: ``scale`` (n,), ``angle`` (n,) degrees, ``crop`` (n, 2),
        ``colour`` (n, 3), ``flip`` (n,) bool; same distributions as ``sample_augmentation``.
    """
    u = torch.rand(n, 8, generator=generator, device=device)
    return {
        "scale": 1.0 + 0.5 * u[:, 0],
        "angle": -5.0 + 10.0 * u[:, 1],
        "crop": u[:, 2:4],
        "colour": 0.8 + 0.4 * u[:, 4:7],
        "flip": u[:, 7] < 0.5,
    }


def augment(image: torch.Tensor, depth: torch.Tensor, valid: torch.Tensor, params: dict):
    """Apply one draw of ``sample_augmentation`` to a 240x320 (halved) frame.

    Args:
        image: (3, 240, 320) float sRGB in [0, 1].
        depth: (1, 240, 320) float metres.
        valid: (1, 240, 320) bool.
        params: from ``sample_augmentation``.

    Returns:
        (image (3, 228, 304), depth (1, 228, 304) metres divided by the scale, valid
        (1, 228, 304) bool, false where the depth was missing or the rotation left no data).
    """
    batched = {
        "scale": torch.tensor([params["scale"]], dtype=torch.float64),
        "angle": torch.tensor([params["angle"]], dtype=torch.float64),
        "crop": torch.tensor([params["crop"]], dtype=torch.float64),
        "colour": torch.as_tensor(params["colour"]).view(1, 3),
        "flip": torch.tensor([bool(params["flip"])]),
    }
    out = augment_batch(image[None], depth[None], valid[None], batched)
    return tuple(t[0] for t in out)


def augment_batch(image: torch.Tensor, depth: torch.Tensor, valid: torch.Tensor, params: dict):
    """Apply ``sample_augmentations`` draws to a batch of 240x320 (halved) frames, on their device.

    Scale, rotation, crop and flip are one affine resampling (``grid_sample``) per frame, the
    same grid for image, depth and mask, so they stay aligned by construction.

    Args:
        image: (B, 3, 240, 320) float sRGB in [0, 1].
        depth: (B, 1, 240, 320) float metres.
        valid: (B, 1, 240, 320) bool.
        params: from ``sample_augmentations(B)`` (any device).

    Returns:
        (image (B, 3, 228, 304), depth (B, 1, 228, 304) metres divided by each frame's scale,
        valid (B, 1, 228, 304) bool, false where the depth was missing or the rotation left no data).
    """
    if tuple(image.shape[-2:]) != HALF_SIZE:
        raise ValueError(f"augment expects a halved {HALF_SIZE} frame, got {tuple(image.shape[-2:])}")
    device, n = image.device, image.shape[0]
    # The grid is computed in float64 (cheap: one 228x304 grid per frame), then sampled in float32.
    col = lambda t: t.to(device, torch.float64).view(n, 1, 1)  # noqa: E731 (per-frame scalars)
    s, theta = col(params["scale"]), torch.deg2rad(col(params["angle"]))
    (src_h, src_w), (out_h, out_w) = HALF_SIZE, INPUT_SIZE
    # The crop's top-left corner in the scaled frame (scaled size s*240 x s*320 >= the crop).
    crop = params["crop"].to(device, torch.float64)
    top = crop[:, 0].view(n, 1, 1) * (s * src_h - out_h)
    left = crop[:, 1].view(n, 1, 1) * (s * src_w - out_w)

    # For each output pixel centre, find where it comes from in the source frame (inverse map):
    # flip within the crop -> position in the scaled frame -> undo the rotation about the
    # scaled frame's centre -> undo the scale. Coordinates have pixel edges at integers.
    ys = (torch.arange(out_h, dtype=torch.float64, device=device) + 0.5).view(1, out_h, 1)
    xs = (torch.arange(out_w, dtype=torch.float64, device=device) + 0.5).view(1, 1, out_w)
    xs = torch.where(params["flip"].to(device).view(n, 1, 1), out_w - xs, xs)
    y, x = ys + top, xs + left  # (n, out_h, 1), (n, 1, out_w)
    cy, cx = s * src_h / 2, s * src_w / 2
    cos, sin = torch.cos(theta), torch.sin(theta)
    x_rot = cos * (x - cx) - sin * (y - cy) + cx  # (n, out_h, out_w)
    y_rot = sin * (x - cx) + cos * (y - cy) + cy
    grid = torch.stack([2 * x_rot / s / src_w - 1, 2 * y_rot / s / src_h - 1], dim=-1).float()

    def resample(t: torch.Tensor, mode: str) -> torch.Tensor:
        return F.grid_sample(t.float(), grid, mode=mode, padding_mode="zeros", align_corners=False)

    # Depth and mask take the nearest sample: interpolating across an object's edge would
    # invent depths that exist nowhere in the scene.
    colour = params["colour"].to(device, torch.float32).view(n, 3, 1, 1)
    out_image = resample(image, "bilinear") * colour
    out_depth = resample(depth, "nearest") / s.float().view(n, 1, 1, 1)
    out_valid = resample(valid, "nearest") > 0.5
    return out_image, out_depth, out_valid


def check_layout(data_path: Path) -> int:
    """The number of frames in ``nyu_depth_v2_labeled.mat`` after checking it holds 480x640 images and depths.

    Raises:
        RefocusError: the file is missing or is not the labeled NYU Depth v2 file.
    """
    import h5py

    if not data_path.is_file():
        raise RefocusError(f"No NYU file at '{data_path}'; `python -m training.setup_data` downloads it.")
    with h5py.File(data_path, "r") as f:
        for key in ("images", "depths"):
            if key not in f:
                raise RefocusError(f"'{data_path}' has no '{key}'; is it nyu_depth_v2_labeled.mat?")
        n = f["images"].shape[0]
        want = {"images": (n, 3, FRAME_SIZE[1], FRAME_SIZE[0]), "depths": (n, FRAME_SIZE[1], FRAME_SIZE[0])}
        for key, shape in want.items():
            if f[key].shape != shape:
                raise RefocusError(f"'{data_path}' {key} has shape {f[key].shape}, expected {shape}.")
    return n


class NYUDepthV2(Dataset):
    """The labeled NYU Depth v2 frames of one official split.

    The HDF5 file is opened lazily, once per process, so each DataLoader worker has its own
    handle (h5py handles must not cross a fork).

    Args:
        data_path: ``nyu_depth_v2_labeled.mat``.
        splits_path: ``splits.mat``.
        split: ``"train"`` or ``"test"``.
        augment: apply the paper's random augmentation (default: only for ``"train"``);
            otherwise every sample is the centre view.
        limit: keep only the split's first ``limit`` frames (smoke runs, overfitting tests).
        preload: read the split's frames once, now, and keep them halved in RAM as ``frames``
            (``preload_bytes(len(split))``: ~1.0 GB for the 795 training frames) instead of an
            h5py read, decompression and halving per item. Items are the same either way.

    Each item is a dict: ``image`` (3, 228, 304) float32 sRGB (in [0, 1] before the colour
    jitter), ``depth`` (1, 228, 304) float32 metres, ``valid`` (1, 228, 304) bool.
    """

    def __init__(
        self,
        data_path,
        splits_path,
        split: str = "train",
        augment: bool | None = None,
        limit: int | None = None,
        preload: bool = False,
    ):
        self.data_path = Path(data_path)
        self.indices = read_split(splits_path, split)
        if limit is not None:
            self.indices = self.indices[:limit]
        self.augment = split == "train" if augment is None else augment
        self._file = None
        self._pid = None
        count = check_layout(self.data_path)
        if self.indices.max() >= count:
            raise RefocusError(
                f"'{splits_path}' refers to frame {self.indices.max() + 1} but '{data_path}' holds {count} frames."
            )
        self.frames = self.read_frames() if preload else None

    @staticmethod
    def preload_bytes(count: int) -> int:
        """RAM that ``preload`` takes for ``count`` frames: halved float32 image and depth, bool mask."""
        return count * (3 * 4 + 4 + 1) * HALF_SIZE[0] * HALF_SIZE[1]

    def read_frames(self, block: int = 16) -> tuple[torch.Tensor, torch.Tensor, torch.Tensor]:
        """The split's frames, halved: image (N, 3, 240, 320), depth (N, 1, 240, 320), valid (N, 1, 240, 320).

        What ``preload`` keeps as ``frames``; ``training.train`` also reads them with this to
        move them onto the GPU without keeping a copy in RAM. The file is read in slabs of consecutive frames (whatever its chunking and compression,
        each chunk is then decompressed once) and halved a slab at a time, so the full-size
        frames never all sit in memory.
        """
        n = len(self.indices)
        image = torch.empty(n, 3, *HALF_SIZE)
        depth = torch.empty(n, 1, *HALF_SIZE)
        valid = torch.empty(n, 1, *HALF_SIZE, dtype=torch.bool)
        order = np.argsort(self.indices, kind="stable")
        f = self._handle()
        start = 0
        while start < n:
            lo = int(self.indices[order[start]])
            stop = start
            while stop < n and self.indices[order[stop]] < lo + block:
                stop += 1
            wanted = self.indices[order[start:stop]] - lo  # positions inside the slab
            hi = lo + int(wanted.max()) + 1
            images = f["images"][lo:hi][wanted].transpose(0, 3, 2, 1)  # (b, 3, W, H) -> (b, H, W, 3)
            depths = f["depths"][lo:hi][wanted].transpose(0, 2, 1).astype(np.float32)  # (b, W, H) -> (b, H, W)
            rows = torch.from_numpy(order[start:stop])
            image[rows], depth[rows], valid[rows] = halve(*to_tensors(np.ascontiguousarray(images), np.ascontiguousarray(depths)))
            start = stop
        return image, depth, valid

    def _handle(self):
        import h5py

        if self._file is None or self._pid != os.getpid():
            self._file, self._pid = h5py.File(self.data_path, "r"), os.getpid()
        return self._file

    def __getstate__(self):
        # Pickled into spawned workers: leave the open handle behind, each worker opens its own.
        return {**self.__dict__, "_file": None, "_pid": None}

    def __len__(self) -> int:
        return len(self.indices)

    def read(self, i: int) -> tuple[np.ndarray, np.ndarray]:
        """The split's ``i``-th frame as stored: (480, 640, 3) uint8 sRGB and (480, 640) float32 metres."""
        f, n = self._handle(), int(self.indices[i])
        image = np.ascontiguousarray(f["images"][n].transpose(2, 1, 0))  # (3, W, H) -> (H, W, 3)
        depth = np.ascontiguousarray(f["depths"][n].T, dtype=np.float32)  # (W, H) -> (H, W)
        return image, depth

    def halved(self, i: int):
        """The split's ``i``-th frame halved to 240x320: image (3, ...), depth (1, ...), valid (1, ...)."""
        if self.frames is not None:
            return tuple(t[i] for t in self.frames)
        image, depth = self.read(i)
        return tuple(t[0] for t in halve(*to_tensors(image[None], depth[None])))

    def __getitem__(self, i: int) -> dict:
        image, depth, valid = self.halved(i)
        if not self.augment:
            image, depth, valid = centre_crop(image, depth, valid)
        else:
            image, depth, valid = augment(image, depth, valid, sample_augmentation())
        return {"image": image.contiguous(), "depth": depth.contiguous(), "valid": valid.contiguous()}
