"""Small files in the exact layout of NYU Depth v2's labeled .mat and splits.mat.

For tests and the GPU benchmark: the real files are 2.8 GB and cannot be fetched offline. The
variable names, dtypes and axis order match the real ones (see ``training/nyu.py``).
"""

from __future__ import annotations

import os

import numpy as np

from training.nyu import FRAME_SIZE


def write_nyu_mat(path: str | os.PathLike, images: np.ndarray, depths: np.ndarray) -> None:
    """Write frames as MATLAB v7.3 would, so that h5py sees NYU's axis order.

    Args:
        path: the .mat (HDF5) file to write.
        images: (N, 480, 640, 3) uint8 sRGB.
        depths: (N, 480, 640) float32 metres.
    """
    import h5py

    if images.ndim != 4 or images.shape[1:] != (*FRAME_SIZE, 3) or images.dtype != np.uint8:
        raise ValueError(f"images must be uint8 (N, 480, 640, 3), got {images.dtype} {images.shape}")
    if depths.shape != images.shape[:3]:
        raise ValueError(f"depths must be (N, 480, 640) like the images, got {depths.shape}")
    with h5py.File(path, "w") as f:
        # MATLAB is column-major: (H, W, 3, N) there is (N, 3, W, H) here.
        f.create_dataset("images", data=images.transpose(0, 3, 2, 1))
        f.create_dataset("depths", data=depths.astype(np.float32).transpose(0, 2, 1))


def write_splits(path: str | os.PathLike, train: list[int], test: list[int]) -> None:
    """Write a ``splits.mat`` with 1-based ``trainNdxs`` / ``testNdxs`` column vectors, as NYU's."""
    import scipy.io

    column = lambda idx: np.asarray(idx, dtype=np.float64).reshape(-1, 1)  # noqa: E731 (MATLAB doubles)
    scipy.io.savemat(str(path), {"trainNdxs": column(train), "testNdxs": column(test)})


def synthetic_frames(n: int, seed: int = 0) -> tuple[np.ndarray, np.ndarray]:
    """``n`` learnable indoor-ish frames: a tilted floor-to-wall depth ramp with shaded boxes.

    The image is a function of the depth (brightness falls with distance, plus a per-frame tint
    and fixed texture), so a network can learn depth from it.

    Returns:
        images (n, 480, 640, 3) uint8 sRGB, depths (n, 480, 640) float32 metres in [0.7, 9.5].
    """
    rng = np.random.default_rng(seed)
    h, w = FRAME_SIZE
    y, x = np.mgrid[0:h, 0:w].astype(np.float32)
    images = np.empty((n, h, w, 3), np.uint8)
    depths = np.empty((n, h, w), np.float32)
    texture = rng.random((h, w), dtype=np.float32) * 0.1
    for k in range(n):
        far, near = rng.uniform(4.0, 9.0), rng.uniform(0.8, 2.0)
        tilt = rng.uniform(-0.3, 0.3)
        depth = near + (far - near) * np.clip((h - y) / h + tilt * (x / w - 0.5), 0, 1)
        for _ in range(3):  # boxes standing in the room
            y0, x0 = rng.integers(0, h - 100), rng.integers(0, w - 100)
            hh, ww = rng.integers(40, 100), rng.integers(40, 100)
            depth[y0 : y0 + hh, x0 : x0 + ww] = rng.uniform(0.7, 3.0)
        shade = np.clip(1.2 - depth / 9.5, 0, 1)[..., None] * rng.uniform(0.6, 1.0, 3) + texture[..., None]
        images[k] = np.clip(shade * 255, 0, 255).astype(np.uint8)
        depths[k] = np.clip(depth, 0.7, 9.5)
    return images, depths


def write_synthetic_nyu(data_path, splits_path, n_train: int = 4, n_test: int = 2, seed: int = 0) -> None:
    """Write a synthetic labeled file with ``n_train + n_test`` frames and its splits.mat.

    The split interleaves the frames (test takes every other one at the start), as the real
    split does, so that code which ignores the split indices is caught.
    """
    n = n_train + n_test
    images, depths = synthetic_frames(n, seed)
    write_nyu_mat(data_path, images, depths)
    order = list(range(1, n + 1))  # 1-based, as in MATLAB
    test = order[1 : 2 * n_test : 2]
    train = [i for i in order if i not in test]
    write_splits(splits_path, train, test)
