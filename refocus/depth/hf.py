"""Depth networks in ``transformers`` format: Depth Anything (V1/V2), DPT/MiDaS, Depth Pro, ...

One class, ``HFDepthModel``, runs any checkpoint that ``AutoModelForDepthEstimation`` and
``AutoImageProcessor`` can load (a hub repo id, cached or downloadable, or a local directory).
The processor shrinks the photo to the network's working size; the network's disparity is
brought back to the photo's full resolution by ``refocus.depth.upsample`` so depth edges follow
the photo's edges. ``trust_remote_code`` stays off: only architectures that ship with
``transformers`` run.
"""

from __future__ import annotations

import numpy as np
import torch
from transformers.modeling_outputs import DepthEstimatorOutput

from refocus.depth.base import DepthResult, check_image
from refocus.depth.runtime import ExportedNetwork, cpu_runtime
from refocus.depth.staged import MIN_METRIC_DISPARITY, NetworkDepth
from refocus.depth.upsample import upsample_disparity

#: Depth (m) below this is treated as this: keeps ``1 / depth`` finite for degenerate outputs.
_MIN_DEPTH_M = 1e-3


def memory_format(device: str) -> torch.memory_format:
    """The tensor layout the network runs in on ``device``.

    On the CPU, channels-last lets oneDNN run the patch embedding and the DPT head's
    convolutions without layout conversions: the same output, 1.1x faster on a quiet 2-core CPU
    and 1.5x on a loaded one (``python -m benchmarks.network_runtimes``). The GPU path is kept.
    """
    return torch.channels_last if device == "cpu" else torch.preserve_format


class HFDepthModel:
    """A ``transformers`` depth-estimation network and its image processor, ready to predict.

    Build it with ``load_hf_depth_model`` (or ``refocus.load_depth_model``). Attributes
    ``name``, ``licence`` and ``device`` are shown by the UI; ``kind`` is ``"relative"`` (the
    network predicts affine-invariant disparity) or ``"metric"`` (depth in metres).
    """

    def __init__(self, model, processor, *, name: str, licence: str, device: str):
        self.model = model
        self.processor = processor
        self.name = name
        self.licence = licence
        self.device = device
        self.output = output_kind(model.config)
        self.kind = "relative" if self.output == "relative" else "metric"
        # ONNX Runtime / OpenVINO in place of the PyTorch forward pass (``refocus.depth.runtime``).
        self.exported: ExportedNetwork | None = None

    def __repr__(self) -> str:
        return f"HFDepthModel(name={self.name!r}, kind={self.kind!r}, device={self.device!r})"

    def predict(self, image: np.ndarray) -> DepthResult:
        """Predict depth for one photo.

        Args:
            image: (H, W, 3) sRGB photo, float32 in [0, 1] or uint8.

        Returns:
            ``DepthResult`` at (H, W). Relative models: ``disparity`` float32 >= 0 with its 99th
            percentile at 1.0, ``depth`` and ``focal_px`` None. Metric models: ``depth`` in
            metres, ``disparity = 1 / depth`` in 1/m, and for Depth Pro ``focal_px``, the focal
            length in pixels of this (H, W) image estimated from the predicted field of view.
        """
        pixels = _as_uint8_rgb(image)
        low, focal_per_width = self._network_disparity(pixels)
        width = pixels.shape[1]
        focal_px = None if focal_per_width is None else focal_per_width * width
        disparity = np.maximum(upsample_disparity(low, pixels), 0.0)
        if self.kind == "relative":
            return DepthResult(disparity=normalise_relative_disparity(disparity))
        disparity = np.maximum(disparity, MIN_METRIC_DISPARITY)
        return DepthResult(disparity=disparity, depth=(1.0 / disparity).astype(np.float32), focal_px=focal_px)

    def predict_network(self, image: np.ndarray) -> NetworkDepth:
        """The network's disparity at its own resolution, to upsample to any size later.

        ``predict(image)`` upsamples straight to the image's size; this keeps the low-resolution
        map, so a preview can be answered first and full resolution only when needed (see
        ``refocus.depth.staged``). Relative disparity is scaled on the low-resolution map.

        Args:
            image: (H, W, 3) sRGB photo, float32 in [0, 1] or uint8 (a preview-sized copy is
                enough: the network sees a few hundred pixels either way).
        """
        low, focal_per_width = self._network_disparity(_as_uint8_rgb(image))
        if self.kind == "relative":
            return NetworkDepth(normalise_relative_disparity(low))
        return NetworkDepth(low, metric=True, focal_per_width=focal_per_width)

    def _network_disparity(self, pixels: np.ndarray) -> tuple[np.ndarray, float | None]:
        """Run the network on uint8 (H, W, 3) ``pixels``.

        Returns:
            (disparity, focal_per_width): float32 (h, w) finite disparity at the network's
            resolution (relative: >= 0, any scale; metric: 1/m), and Depth Pro's focal length in
            units of the image width (None for other models).
        """
        # uint8 in, so the processor's own rescale-to-[0, 1] and normalisation apply unchanged.
        inputs = self.processor(images=pixels, return_tensors="pt")
        pixel_values = inputs["pixel_values"].to(
            self.device, dtype=self.model.dtype, memory_format=memory_format(self.device)
        )
        with torch.inference_mode():
            if self.exported is not None:
                outputs = DepthEstimatorOutput(predicted_depth=self.exported(pixel_values))
            else:
                outputs = self.model(pixel_values=pixel_values)

        # Everything below works on the network's low-resolution output; the upsampler brings
        # disparity (not depth: near/far edges are steps in both, but disparity is what the
        # renderer blurs by) to the wanted resolution, guided by the photo.
        focal_per_width = None
        net_h, net_w = outputs.predicted_depth.shape[-2:]
        if self.output == "depth_pro":
            # The processor's post-processing turns Depth Pro's canonical inverse depth and field
            # of view into metric depth; at the network's size, then the focal length is rescaled
            # to the photo's width (the ratio width / focal is what sets the metric scale).
            post = self.processor.post_process_depth_estimation(outputs, target_sizes=[(net_h, net_w)])[0]
            depth_low = post["predicted_depth"].float()
            if post["focal_length"] is not None:
                focal_per_width = float(post["focal_length"]) / net_w
            disparity_low = 1.0 / depth_low.clamp(min=_MIN_DEPTH_M)
        elif self.output == "metric":
            depth_low = outputs.predicted_depth[0].float()
            disparity_low = 1.0 / depth_low.clamp(min=_MIN_DEPTH_M)
        else:
            disparity_low = outputs.predicted_depth[0].float().clamp(min=0.0)

        low = disparity_low.cpu().numpy().astype(np.float32)
        return np.nan_to_num(low, nan=0.0, posinf=0.0, neginf=0.0), focal_per_width


def output_kind(config) -> str:
    """What a ``transformers`` depth network predicts, from its config.

    Returns:
        ``"depth_pro"`` (metric depth plus field of view), ``"metric"`` (depth in metres: ZoeDepth,
        Depth Anything's metric fine-tunes) or ``"relative"`` (affine-invariant disparity:
        Depth Anything, DPT/MiDaS).
    """
    if config.model_type == "depth_pro":
        # Without its field-of-view head Depth Pro's output has no metric scale.
        return "depth_pro" if getattr(config, "use_fov_model", True) else "relative"
    if config.model_type == "zoedepth" or getattr(config, "depth_estimation_type", None) == "metric":
        return "metric"
    return "relative"


def normalise_relative_disparity(disparity: np.ndarray) -> np.ndarray:
    """Scale a relative disparity so its 99th percentile is 1.0 (the ``DepthResult`` convention).

    Args:
        disparity: float (H, W), >= 0, any scale.

    Returns:
        float32 (H, W), >= 0. A map that is zero at the 99th percentile (a blank prediction) is
        returned as zeros rather than divided by zero.
    """
    p99 = float(np.percentile(disparity, 99))
    if not np.isfinite(p99) or p99 <= 0:
        return np.zeros_like(disparity, dtype=np.float32)
    return (np.clip(disparity, 0.0, None) / p99).astype(np.float32)


def load_hf_depth_model(source: str, device: str, *, name: str | None = None, licence: str = "unknown") -> HFDepthModel:
    """Load a ``transformers`` depth-estimation checkpoint and its image processor.

    Args:
        source: hub repo id (resolved through the local cache first, honouring
            ``HF_HUB_OFFLINE``) or a local directory in ``transformers`` format.
        device: ``"cpu"`` or ``"cuda[:n]"`` (already resolved by ``refocus.depth.base.resolve_device``).
            On CUDA the weights run in float16 (half the memory, several times faster, and depth
            needs no more precision); on CPU in float32.
        name: what the UI shows; default ``source``.
        licence: licence of the weights, shown next to the name.

    Raises:
        OSError: files missing locally and not downloadable (the dispatcher explains it).
    """
    from transformers import AutoImageProcessor, AutoModelForDepthEstimation

    dtype = torch.float16 if device.startswith("cuda") else torch.float32
    model = AutoModelForDepthEstimation.from_pretrained(source, dtype=dtype, trust_remote_code=False)
    model.to(device, memory_format=memory_format(device)).eval()
    processor = AutoImageProcessor.from_pretrained(source, trust_remote_code=False)
    depth_model = HFDepthModel(model, processor, name=name or source, licence=licence, device=device)
    runtime = cpu_runtime() if device == "cpu" else "torch"
    # Depth Pro's field-of-view head needs the whole output object: it stays on PyTorch.
    if runtime != "torch" and depth_model.output != "depth_pro":
        depth_model.exported = ExportedNetwork(model, runtime)
    return depth_model


def _as_uint8_rgb(image: np.ndarray) -> np.ndarray:
    """A photo (``check_image`` first) as contiguous uint8 (H, W, 3)."""
    image = check_image(image)
    if image.dtype == np.uint8:
        return np.ascontiguousarray(image)
    return np.clip(image * 255.0 + 0.5, 0, 255).astype(np.uint8)
