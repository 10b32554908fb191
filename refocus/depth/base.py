"""What every depth backend returns, the small contract it implements, and the checks it shares.

Every backend checks its input with ``check_image``, runs on the device ``resolve_device``
picks, and tells a path from a hub repo id with ``looks_like_path``: one rule for each,
whichever backend loads the model. (Offline mode is huggingface_hub's own
``constants.is_offline_mode()``, asked where a message needs it.)
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import Protocol

import numpy as np

from refocus.errors import RefocusError


@dataclass(frozen=True)
class DepthResult:
    """One image's depth, at the resolution of the image it was predicted from.

    Attributes:
        disparity: float32 (H, W), finite and >= 0, larger = nearer. For metric models it is
            ``1 / depth`` in 1/m. For relative (affine-invariant) models it is scaled so that its
            99th percentile is 1.0, which the lens model reads as "the nearest things are about
            1 m away" (see ``refocus.lens``).
        depth: float32 (H, W) metric depth in metres, or None for relative models.
        focal_px: the focal length in pixels the model estimated (Depth Pro), or None.
    """

    disparity: np.ndarray
    depth: np.ndarray | None = None
    focal_px: float | None = None

    @property
    def is_metric(self) -> bool:
        return self.depth is not None

    @property
    def nbytes(self) -> int:
        return self.disparity.nbytes + (0 if self.depth is None else self.depth.nbytes)


class DepthModel(Protocol):
    """A loaded depth network. ``load_depth_model`` returns one of these."""

    name: str  # what the user asked for / the hub id, shown in the UI
    licence: str  # licence of the weights, shown next to the name
    device: str  # "cpu" or "cuda[:n]"

    def predict(self, image: np.ndarray) -> DepthResult:
        """Predict depth for float32 (H, W, 3) sRGB in [0, 1] (uint8 is accepted too)."""
        ...


def check_image(image) -> np.ndarray:
    """Check a photo handed to ``DepthModel.predict`` and return it as an array.

    Args:
        image: (H, W, 3) sRGB, uint8 or float in [0, 1], at least 2 x 2 pixels.

    Returns:
        The same pixels as a numpy array (not copied, not converted).

    Raises:
        RefocusError: not an (H, W, 3) array, too small, another dtype, or (float) holding NaN
            or infinite values. Such values come from a caller's bug, not from a photo file
            (``refocus.io`` never produces them), so they are refused rather than guessed at.
    """
    if not isinstance(image, np.ndarray):
        raise RefocusError(f"Expected the image as a numpy array, got {type(image).__name__}.")
    if image.ndim != 3 or image.shape[2] != 3:
        raise RefocusError(f"Expected an RGB image of shape (H, W, 3), got {image.shape}.")
    if image.shape[0] < 2 or image.shape[1] < 2:
        raise RefocusError(f"The image is too small for depth prediction: {image.shape[1]}x{image.shape[0]} px.")
    if image.dtype != np.uint8 and not np.issubdtype(image.dtype, np.floating):
        raise RefocusError(f"Expected a uint8 image or a float image in [0, 1], got dtype {image.dtype}.")
    if image.dtype != np.uint8 and not np.isfinite(image).all():
        raise RefocusError("The image contains NaN or infinite values.")
    return image


def resolve_device(device: str | None = None) -> str:
    """The torch device string to run on.

    Args:
        device: ``None`` (CUDA if available, else CPU), ``"cpu"``, ``"cuda"`` or ``"cuda:N"``.

    Raises:
        RefocusError: unknown device, or CUDA asked for but not available.
    """
    import torch

    if device is None or device == "":
        return "cuda" if torch.cuda.is_available() else "cpu"
    device = device.strip().lower()
    try:
        parsed = torch.device(device)
    except (RuntimeError, ValueError):
        raise RefocusError(f"Unknown device {device!r}: use 'cpu', 'cuda' or 'cuda:N'.") from None
    if parsed.type == "cpu":
        return "cpu"
    if parsed.type != "cuda":
        raise RefocusError(f"Device {device!r} is not supported: use 'cpu', 'cuda' or 'cuda:N'.")
    if not torch.cuda.is_available():
        raise RefocusError(f"Device {device!r} was requested but CUDA is not available here; use --device cpu.")
    if parsed.index is not None and parsed.index >= torch.cuda.device_count():
        raise RefocusError(f"Device {device!r} does not exist: this machine has {torch.cuda.device_count()} GPU(s).")
    return device


def looks_like_path(spec: str) -> bool:
    """Whether a model spec that is not an existing directory was meant as a path.

    ``./x``, ``/x``, ``~/x``, anything with a backslash or more than one ``/`` is a path; a
    hub repo id is ``owner/name`` (or a bare ``name``).
    """
    return spec.startswith((".", "/", "~")) or "\\" in spec or spec.count("/") > 1

