"""Eigen, Puhrsch & Fergus (NIPS 2014): "Depth Map Prediction from a Single Image using a
Multi-Scale Deep Network", as a hub-loadable network and a refocus depth backend.

The network sees a 228x304 (HxW) sRGB crop and predicts log depth (log metres) on a 55x74 grid
that spans the same crop. A coarse global network (five convolutions and two fully connected
layers) predicts the scene's layout; a fine network refines it with local detail, reading the
coarse prediction as an extra feature map. Training lives in ``training/``; this module is what
inference needs and never imports it.

Example:
    >>> net = EigenDepthNet(stage="fine")
    >>> net(torch.rand(2, 3, 228, 304)).shape
    torch.Size([2, 1, 55, 74])
"""

from __future__ import annotations

import json
import os
from pathlib import Path

import numpy as np
import torch
import torch.nn.functional as F
from huggingface_hub import PyTorchModelHubMixin, constants, hf_hub_download
from torch import nn

from refocus.depth.base import DepthResult, check_image, looks_like_path, resolve_device
from refocus.errors import RefocusError

MODEL_TYPE = "eigen2014"  # the key that tells our config.json apart from any other model's
INPUT_SIZE = (228, 304)  # network input, (H, W)
OUTPUT_SIZE = (55, 74)  # network output, (H, W): 55 * 74 = 4070 values from the last FC layer
HALF_SIZE = (240, 320)  # NYU frames are halved to this, then centre-cropped to INPUT_SIZE
CROP_OFFSET = ((HALF_SIZE[0] - INPUT_SIZE[0]) // 2, (HALF_SIZE[1] - INPUT_SIZE[1]) // 2)
PAPER_COARSE_CHANNELS = (96, 256, 384, 384, 256)
# What ``ModelHubMixin.from_pretrained`` passes to ``_from_pretrained`` for the download, with the
# same names as ``hf_hub_download``'s keywords.
HUB_DOWNLOAD_OPTIONS = ("revision", "cache_dir", "force_download", "local_files_only", "token")
_LOG_DEPTH_RANGE = (-5.0, 10.0)  # exp() of this is 7 mm .. 22 km: only guards against inf / 0

# The paper does not say how it normalises the input. Its coarse layers start from ImageNet
# weights, so we use the ImageNet statistics; the network takes sRGB in [0, 1] and normalises
# inside ``forward`` so a checkpoint is self-contained.
_IMAGENET_MEAN = (0.485, 0.456, 0.406)
_IMAGENET_STD = (0.229, 0.224, 0.225)


class EigenCoarse(nn.Module):
    """The global coarse network: (B, 3, 228, 304) normalised RGB -> (B, 1, 55, 74) log depth.

    Args:
        channels: output channels of the five convolutions (paper: 96, 256, 384, 384, 256).
        fc_dim: width of the hidden fully connected layer (paper: 4096).
        dropout: dropout probability after the hidden fully connected layer. The paper uses
            dropout there but does not give the rate; 0.5 is the usual AlexNet value.
    """

    def __init__(self, channels=PAPER_COARSE_CHANNELS, fc_dim: int = 4096, dropout: float = 0.5):
        super().__init__()
        c1, c2, c3, c4, c5 = channels
        self.features = nn.Sequential(
            nn.Conv2d(3, c1, 11, stride=4), nn.ReLU(inplace=True),  # 228x304 -> 55x74
            nn.MaxPool2d(2),  # -> 27x37
            nn.Conv2d(c1, c2, 5, padding=2), nn.ReLU(inplace=True),
            nn.MaxPool2d(2),  # -> 13x18
            nn.Conv2d(c2, c3, 3, padding=1), nn.ReLU(inplace=True),
            nn.Conv2d(c3, c4, 3, padding=1), nn.ReLU(inplace=True),
            nn.Conv2d(c4, c5, 3, padding=1), nn.ReLU(inplace=True),
            # The paper's figure has the last conv layers at 6x8 but does not say how 13x18 gets
            # there. We choose a max pool of 2x3 with stride 2 after conv 5: exactly 6x8, no
            # padding, and no parameters (so the count stays the paper's ~71M).
            nn.MaxPool2d(kernel_size=(2, 3), stride=2),  # -> 6x8
        )
        self.fc = nn.Sequential(
            nn.Flatten(),
            nn.Linear(c5 * 6 * 8, fc_dim), nn.ReLU(inplace=True),
            nn.Dropout(dropout),
            nn.Linear(fc_dim, OUTPUT_SIZE[0] * OUTPUT_SIZE[1]),  # linear output layer
        )

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        return self.fc(self.features(x)).view(-1, 1, *OUTPUT_SIZE)


class EigenFine(nn.Module):
    """The local fine network: refines the coarse log depth with image detail.

    Args:
        channels: output channels of the first convolution (paper: 63); the coarse prediction is
            appended as one more channel, so the next layers are ``channels + 1`` wide (64).
    """

    def __init__(self, channels: int = 63):
        super().__init__()
        self.conv1 = nn.Sequential(
            nn.Conv2d(3, channels, 9, stride=2), nn.ReLU(inplace=True),  # 228x304 -> 110x148
            nn.MaxPool2d(2),  # -> 55x74, the coarse output's grid
        )
        self.conv2 = nn.Sequential(nn.Conv2d(channels + 1, channels + 1, 5, padding=2), nn.ReLU(inplace=True))
        self.conv3 = nn.Conv2d(channels + 1, 1, 5, padding=2)  # linear output layer

    def forward(self, x: torch.Tensor, coarse_log_depth: torch.Tensor) -> torch.Tensor:
        features = torch.cat([self.conv1(x), coarse_log_depth], dim=1)
        return self.conv3(self.conv2(features))


class EigenDepthNet(
    nn.Module,
    PyTorchModelHubMixin,
    library_name="refocus",
    pipeline_tag="depth-estimation",
    paper_url="https://arxiv.org/abs/1406.2283",
    tags=["depth-estimation", "eigen2014", "nyu-depth-v2", "refocus"],
):
    """Eigen et al. 2014 multi-scale depth network, loadable with ``from_pretrained``.

    The constructor's arguments are the hub config (``config.json``); the defaults are the
    paper's architecture (about 71M parameters). Smaller widths exist for tests and smoke runs.

    Args:
        stage: ``"coarse"`` returns the coarse network's prediction, ``"fine"`` the refined one.
            Both sub-networks always exist, so a coarse checkpoint can seed the fine stage.
        coarse_channels: the five coarse convolutions' widths.
        fc_dim: the coarse hidden fully connected layer's width.
        fine_channels: the fine network's first convolution width.
        dropout: dropout rate after the coarse hidden fully connected layer.
        licence: licence of the trained weights, shown in the UI next to the model's name.

    Shape:
        - Input: (B, 3, 228, 304) sRGB in [0, 1].
        - Output: (B, 1, 55, 74) natural log of depth in metres, on a grid that spans the input
          (pixel-area convention, i.e. ``align_corners=False``).
    """

    def __init__(
        self,
        stage: str = "fine",
        coarse_channels: list = PAPER_COARSE_CHANNELS,
        fc_dim: int = 4096,
        fine_channels: int = 63,
        dropout: float = 0.5,
        licence: str = "unspecified (weights trained by a refocus user on NYU Depth v2)",
    ):
        super().__init__()
        if stage not in ("coarse", "fine"):
            raise ValueError(f"stage must be 'coarse' or 'fine', got {stage!r}")
        if len(coarse_channels) != 5:
            raise ValueError(f"coarse_channels needs 5 widths, got {list(coarse_channels)}")
        self.stage = stage
        self.licence = licence
        self.coarse = EigenCoarse(tuple(coarse_channels), fc_dim, dropout)
        self.fine = EigenFine(fine_channels)
        self.register_buffer("mean", torch.tensor(_IMAGENET_MEAN).view(1, 3, 1, 1), persistent=False)
        self.register_buffer("std", torch.tensor(_IMAGENET_STD).view(1, 3, 1, 1), persistent=False)

    def forward(self, image: torch.Tensor) -> torch.Tensor:
        if image.ndim != 4 or tuple(image.shape[1:]) != (3, *INPUT_SIZE):
            raise ValueError(
                f"EigenDepthNet expects (B, 3, {INPUT_SIZE[0]}, {INPUT_SIZE[1]}) sRGB in [0, 1], "
                f"got {tuple(image.shape)}; use prepare_input() to resize and crop a photo"
            )
        x = (image - self.mean) / self.std
        coarse = self.coarse(x)
        if self.stage == "coarse":
            return coarse
        return self.fine(x, coarse)

    def architecture(self) -> dict:
        """The constructor's arguments this network was built with (``config.json`` less ``model_type``).

        ``EigenDepthNet(**net.architecture())`` builds a network of the same shape.
        """
        return {k: v for k, v in (self._hub_mixin_config or {}).items() if k != "model_type"}

    def _save_pretrained(self, save_directory: Path) -> None:
        # The mixin writes config.json only when _save_pretrained did not; we write it ourselves
        # to add the model_type key that ``is_eigen_config`` (and the depth dispatcher) look for.
        super()._save_pretrained(save_directory)
        config = {**self.architecture(), "model_type": MODEL_TYPE}
        (save_directory / constants.CONFIG_NAME).write_text(json.dumps(config, sort_keys=True, indent=2))

    @classmethod
    def _from_pretrained(cls, *, model_id: str, map_location: str = "cpu", strict: bool = True, **kwargs):
        # Replaces the mixin's loader, which defaults to strict=False (silently keeping random
        # weights for missing keys) and falls back to unpickling pytorch_model.bin. The mixin
        # passes the hub's download options (revision, token, ...) beside the network's own
        # arguments; they go to ``hf_hub_download`` as they came.
        import safetensors.torch

        download = {name: kwargs.pop(name) for name in HUB_DOWNLOAD_OPTIONS}
        model = cls(**kwargs)
        if os.path.isdir(model_id):
            weights = os.path.join(model_id, constants.SAFETENSORS_SINGLE_FILE)
        else:
            weights = hf_hub_download(model_id, constants.SAFETENSORS_SINGLE_FILE, **download)
        safetensors.torch.load_model(model, weights, strict=strict, device=str(map_location))
        return model.eval()


def count_parameters(model: nn.Module) -> int:
    """Number of parameters (trainable or not) in ``model``."""
    return sum(p.numel() for p in model.parameters())


def prepare_input(image: torch.Tensor) -> torch.Tensor:
    """Resize a batch of photos to the network's input the way training saw NYU frames.

    The image is resized to 240x320 (what halving a 480x640 NYU frame gives), then the centre
    228x304 is cropped, exactly as in training, so a NYU frame is seen at the training scale. A
    photo of another aspect ratio is squeezed to 4:3 first (the network has a fixed-size fully
    connected layer, so it cannot take other shapes).

    Args:
        image: (B, 3, H, W) float sRGB in [0, 1].

    Returns:
        (B, 3, 228, 304) float sRGB in [0, 1].
    """
    if image.ndim != 4 or image.shape[1] != 3:
        raise ValueError(f"prepare_input expects (B, 3, H, W), got {tuple(image.shape)}")
    half = F.interpolate(image, size=HALF_SIZE, mode="bilinear", align_corners=False, antialias=True)
    (top, left), (h, w) = CROP_OFFSET, INPUT_SIZE
    return half[:, :, top : top + h, left : left + w]


def upsample_prediction(log_depth: torch.Tensor, size: tuple[int, int]) -> torch.Tensor:
    """Map the network's 55x74 output back onto the whole (H, W) photo ``prepare_input`` saw.

    The output covers the central 228x304 crop of the 240x320 resize; the thin border outside
    it (6 rows and 8 columns at 240x320, 2.5% per side) repeats the nearest edge value. Values
    are interpolated bilinearly in log depth, the network's native output.

    Args:
        log_depth: (B, 1, 55, 74) log depth in log metres.
        size: (H, W) of the photo.

    Returns:
        (B, 1, H, W) log depth in log metres.
    """
    height, width = size
    device, dtype = log_depth.device, log_depth.dtype
    # Continuous coordinates (pixel edges at integers) of each photo pixel's centre, first in
    # the 240x320 resize, then in the crop, then normalised to [-1, 1] over the crop.
    ys = (torch.arange(height, device=device, dtype=dtype) + 0.5) * HALF_SIZE[0] / height - CROP_OFFSET[0]
    xs = (torch.arange(width, device=device, dtype=dtype) + 0.5) * HALF_SIZE[1] / width - CROP_OFFSET[1]
    gy, gx = torch.meshgrid(2 * ys / INPUT_SIZE[0] - 1, 2 * xs / INPUT_SIZE[1] - 1, indexing="ij")
    grid = torch.stack([gx, gy], dim=-1).expand(log_depth.shape[0], height, width, 2)
    return F.grid_sample(log_depth, grid, mode="bilinear", padding_mode="border", align_corners=False)


def _image_to_tensor(image: np.ndarray) -> torch.Tensor:
    """(H, W, 3) uint8 or float sRGB -> (1, 3, H, W) float32 in [0, 1] (``check_image`` first)."""
    image = check_image(image)
    if image.dtype == np.uint8:
        array = image.astype(np.float32) / 255.0
    else:
        array = np.clip(image.astype(np.float32), 0.0, 1.0)
    return torch.from_numpy(np.ascontiguousarray(array.transpose(2, 0, 1)))[None]


class EigenDepthModel:
    """A trained ``EigenDepthNet`` as a refocus depth backend (the ``DepthModel`` protocol).

    Args:
        net: the network; it is moved to ``device`` and put in eval mode.
        name: what the user asked for (a directory or hub id), shown in the UI.
        device: ``"cpu"`` or ``"cuda[:n]"``.
    """

    def __init__(self, net: EigenDepthNet, name: str, device: str):
        self.net = net.to(device).eval()
        self.name = name
        self.licence = net.licence
        self.device = device

    @torch.inference_mode()
    def predict(self, image: np.ndarray) -> DepthResult:
        """Predict metric depth for one photo.

        Args:
            image: (H, W, 3) sRGB, float32 in [0, 1] or uint8.

        Returns:
            DepthResult with ``depth`` (H, W) float32 in metres, ``disparity = 1 / depth``
            (H, W) float32 in 1/m, and ``focal_px=None``. The scale is NYU's (a Kinect's
            field of view); for other cameras it is an estimate.
        """
        x = _image_to_tensor(image).to(self.device)
        log_depth = self.net(prepare_input(x))
        log_depth = upsample_prediction(log_depth.float(), x.shape[-2:]).clamp(*_LOG_DEPTH_RANGE)
        depth = torch.exp(log_depth)[0, 0].cpu().numpy().astype(np.float32)
        return DepthResult(disparity=(1.0 / depth).astype(np.float32), depth=depth, focal_px=None)


def is_eigen_config(config: dict) -> bool:
    """True when ``config`` (a parsed ``config.json``) was written by ``EigenDepthNet``."""
    return isinstance(config, dict) and config.get("model_type") == MODEL_TYPE


def load_eigen_depth_model(spec: str, device: str | None = None) -> EigenDepthModel:
    """Load an Eigen checkpoint (what ``python -m training.train`` or ``save_pretrained`` wrote).

    Args:
        spec: a local directory holding ``config.json`` and ``model.safetensors``, or a
            Hugging Face hub repo id. ``HF_HUB_OFFLINE=1`` restricts hub ids to the local cache.
        device: ``"cpu"``, ``"cuda"``, ``"cuda:1"``...; None picks CUDA when available
            (``refocus.depth.base.resolve_device``).

    Returns:
        An ``EigenDepthModel`` whose ``predict(image)`` returns metric depth.

    Raises:
        RefocusError: the directory or hub repo does not hold a readable Eigen checkpoint.
    """
    device = resolve_device(device)
    local = Path(spec).expanduser()
    try:
        if local.is_dir():
            source, config_path = str(local), local / constants.CONFIG_NAME
            if not config_path.is_file():
                raise RefocusError(f"'{spec}' has no config.json, so it is not a saved Eigen depth model.")
        elif looks_like_path(str(spec)):
            raise RefocusError(f"'{spec}' is not a directory (nor a hub repo id of the form owner/name).")
        else:
            source, config_path = spec, Path(hf_hub_download(repo_id=spec, filename=constants.CONFIG_NAME))
        if not is_eigen_config(json.loads(config_path.read_text())):
            raise RefocusError(f"'{spec}' holds a config.json that is not an Eigen depth model's.")
        net = EigenDepthNet.from_pretrained(source, map_location="cpu")
    except RefocusError:
        raise
    except Exception as error:  # hub, file-system and state-dict errors all mean "cannot load"
        offline = " (HF_HUB_OFFLINE is set, so only the local cache was searched)" if constants.is_offline_mode() else ""
        raise RefocusError(
            f"Could not load the Eigen depth model '{spec}'{offline}: {str(error).rstrip('.')}. Pass a directory "
            "that `python -m training.train` wrote, or a hub repo id that holds config.json and model.safetensors."
        ) from error
    return EigenDepthModel(net, name=str(spec), device=device)
