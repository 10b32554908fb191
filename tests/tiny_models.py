"""Tiny randomly initialised depth networks for offline tests and the load test.

Real ``transformers`` architectures with the hub checkpoints' processor settings, shrunk to a
few tens of thousands of parameters, so the real loading and inference code runs in well under
a second without any download.
"""

from __future__ import annotations

from pathlib import Path


def save_tiny_depth_anything(folder: Path) -> Path:
    """Save a ~30k-parameter Depth Anything V2 (DINOv2 backbone) with its processor in ``folder``."""
    import torch
    from transformers import DepthAnythingConfig, DepthAnythingForDepthEstimation, Dinov2Config, DPTImageProcessor

    torch.manual_seed(0)
    backbone = Dinov2Config(
        image_size=56, patch_size=14, hidden_size=32, num_hidden_layers=4, num_attention_heads=2,
        intermediate_size=64, out_features=["stage1", "stage2", "stage3", "stage4"], reshape_hidden_states=False,
    )  # fmt: skip
    config = DepthAnythingConfig(
        backbone_config=backbone, reassemble_hidden_size=32, neck_hidden_sizes=[8, 16, 32, 32],
        fusion_hidden_size=16, head_hidden_size=8,
    )  # fmt: skip
    DepthAnythingForDepthEstimation(config).save_pretrained(folder)
    # The hub checkpoint's processor settings, at 56 px instead of 518 px.
    DPTImageProcessor(
        size={"height": 56, "width": 56}, keep_aspect_ratio=True, ensure_multiple_of=14, do_pad=False, resample=3
    ).save_pretrained(folder)
    return folder
