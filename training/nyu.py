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

import math
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
        raise RefocusError(f"No splits file at '{splits_path}'; training/setup_data.py downloads splits.mat.")
    mat = scipy.io.loadmat(str(splits_path))
    if SPLIT_KEYS[split] not in mat:
        raise RefocusError(f"'{splits_path}' has no '{SPLIT_KEYS[split]}'; is it NYU's splits.mat?")
    indices = np.asarray(mat[SPLIT_KEYS[split]]).astype(np.int64).ravel()
    if indices.size == 0 or indices.min() < 1:
        raise RefocusError(f"'{splits_path}' {SPLIT_KEYS[split]} must hold 1-based indices (MATLAB's).")
    return indices - 1


def halve(image: torch.Tensor, depth: torch.Tensor, valid: torch.Tensor):
    """Downsample a frame by two, the step from 480x640 to the paper's 240x320.

    Args:
        image: (3, H, W) float sRGB in [0, 1].
        depth: (1, H, W) float metres.
        valid: (1, H, W) bool, where ``depth`` is a measurement.

    Returns:
        (image, depth, valid) at (H/2, W/2). The image is area-averaged; depth is averaged over
        the valid pixels of each 2x2 block (so holes do not drag it to 0), valid if any was.
    """
    size = (image.shape[-2] // 2, image.shape[-1] // 2)
    image = F.interpolate(image[None], size=size, mode="area")[0]
    weight = F.avg_pool2d(valid[None].float(), 2)[0]
    depth = F.avg_pool2d((depth * valid)[None], 2)[0] / weight.clamp_min(1e-6)
    return image, depth, weight > 0


def centre_view(image: torch.Tensor, depth: torch.Tensor, valid: torch.Tensor):
    """The network's view of a frame without augmentation: halve, then centre-crop 228x304.

    Shapes as in ``halve``; the input must be 480x640.
    """
    image, depth, valid = halve(image, depth, valid)
    (top, left), (h, w) = CROP_OFFSET, INPUT_SIZE
    crop = (slice(None), slice(top, top + h), slice(left, left + w))
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
    if tuple(image.shape[-2:]) != HALF_SIZE:
        raise ValueError(f"augment expects a halved {HALF_SIZE} frame, got {tuple(image.shape[-2:])}")
    s, theta = params["scale"], math.radians(params["angle"])
    (src_h, src_w), (out_h, out_w) = HALF_SIZE, INPUT_SIZE
    # The crop's top-left corner in the scaled frame (scaled size s*240 x s*320 >= the crop).
    top = params["crop"][0] * (s * src_h - out_h)
    left = params["crop"][1] * (s * src_w - out_w)

    # For each output pixel centre, find where it comes from in the source frame (inverse map):
    # flip within the crop -> position in the scaled frame -> undo the rotation about the
    # scaled frame's centre -> undo the scale. Coordinates have pixel edges at integers.
    ys = torch.arange(out_h, dtype=torch.float32) + 0.5
    xs = torch.arange(out_w, dtype=torch.float32) + 0.5
    if params["flip"]:
        xs = out_w - xs
    y, x = torch.meshgrid(ys + top, xs + left, indexing="ij")
    cy, cx = s * src_h / 2, s * src_w / 2
    cos, sin = math.cos(theta), math.sin(theta)
    x_rot = cos * (x - cx) - sin * (y - cy) + cx
    y_rot = sin * (x - cx) + cos * (y - cy) + cy
    grid = torch.stack([2 * x_rot / s / src_w - 1, 2 * y_rot / s / src_h - 1], dim=-1)[None]

    def resample(t: torch.Tensor, mode: str) -> torch.Tensor:
        return F.grid_sample(t[None].float(), grid, mode=mode, padding_mode="zeros", align_corners=False)[0]

    # Depth and mask take the nearest sample: interpolating across an object's edge would
    # invent depths that exist nowhere in the scene.
    out_image = resample(image, "bilinear") * params["colour"].view(3, 1, 1)
    out_depth = resample(depth, "nearest") / s
    out_valid = resample(valid, "nearest") > 0.5
    return out_image, out_depth, out_valid


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

    Each item is a dict: ``image`` (3, 228, 304) float32 sRGB (in [0, 1] before the colour
    jitter), ``depth`` (1, 228, 304) float32 metres, ``valid`` (1, 228, 304) bool.
    """

    def __init__(self, data_path, splits_path, split: str = "train", augment: bool | None = None, limit: int | None = None):
        self.data_path = Path(data_path)
        self.indices = read_split(splits_path, split)
        if limit is not None:
            self.indices = self.indices[:limit]
        self.augment = split == "train" if augment is None else augment
        self._file = None
        self._pid = None
        count = self._check_layout()
        if self.indices.max() >= count:
            raise RefocusError(
                f"'{splits_path}' refers to frame {self.indices.max() + 1} but '{data_path}' holds {count} frames."
            )

    def _check_layout(self) -> int:
        import h5py

        if not self.data_path.is_file():
            raise RefocusError(f"No NYU file at '{self.data_path}'; training/setup_data.py downloads it.")
        with h5py.File(self.data_path, "r") as f:
            for key in ("images", "depths"):
                if key not in f:
                    raise RefocusError(f"'{self.data_path}' has no '{key}'; is it nyu_depth_v2_labeled.mat?")
            n = f["images"].shape[0]
            want = {"images": (n, 3, FRAME_SIZE[1], FRAME_SIZE[0]), "depths": (n, FRAME_SIZE[1], FRAME_SIZE[0])}
            for key, shape in want.items():
                if f[key].shape != shape:
                    raise RefocusError(f"'{self.data_path}' {key} has shape {f[key].shape}, expected {shape}.")
        return n

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

    def __getitem__(self, i: int) -> dict:
        image, depth = self.read(i)
        image = torch.from_numpy(image).permute(2, 0, 1).float() / 255.0
        depth = torch.from_numpy(depth)[None]
        # The labeled depths are in-painted, but keep the mask general: raw frames have holes (0)
        # and some tools write NaN for missing depth.
        valid = torch.isfinite(depth) & (depth > 0)
        depth = torch.where(valid, depth, torch.zeros_like(depth))
        if not self.augment:
            image, depth, valid = centre_view(image, depth, valid)
        else:
            image, depth, valid = augment(*halve(image, depth, valid), sample_augmentation())
        return {"image": image.contiguous(), "depth": depth.contiguous(), "valid": valid.contiguous()}
