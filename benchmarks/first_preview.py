"""Upload -> first refocused preview on the CPU, per stage, against the code path before issue 11.

Builds a randomly initialised network of exactly Depth Anything V2 Small's architecture and size
(DINOv2-small backbone, 24.8M parameters, the hub checkpoint's processor; the compute is the
real weights', no download), saves it with ``save_pretrained`` and loads it back through
``refocus.load_depth_model`` as the app does. For 1, 12 and 24 MP JPEGs it then times, in the
same run and alternating so both see the same machine load:

- ``before``: the path before issue 11: decode the whole JPEG, run the network on the full photo,
  upsample its depth edge-aware to full resolution, shrink photo and depth to the preview, render;
- ``staged``: ``load_photo`` + ``Refocuser.prepare`` + ``Refocuser.render_preview``: the app's
  upload handler with today's ``Refocuser`` (network on the preview, depth upsampled to the
  preview only; full-resolution depth waits until a full render or the depth download);
- ``draft``: the same with ``load_draft_photo`` (JPEG decoded at preview size, the full decode
  on demand) in place of ``load_photo``;
- ``draft-pv``: ``draft`` with the preview's depth upsampled as full-resolution depth is (colour
  guide, filtered at the preview's size), as before ``upsample_disparity_for_preview`` (luma
  guide, filtered at the network map's size).

``--depth iphone`` makes the render realistic: the randomly initialised network's map is noise
at its 14 px patch scale, so every depth layer reaches the whole frame and the preview render is
a worst case several times slower than on any real photo's depth. With ``--depth iphone`` the
photo is the real iPhone portrait in ``../shared/real-phone`` (resized to each size, as a JPEG),
the network still runs in full (its time is the real weights'), and its output is then replaced
by the phone's measured depth map (as disparity, resized to the network's output): the map a
good network gives, rendered as the app renders it.

Stages: decode, network (the processor's resize included), upsample (edge-aware), render
(preview, f/2.8 disc, focused at the centre), all wall-clock; ``cpu`` is the process's CPU time
for the whole path, steadier than wall-clock on a machine shared with other work, and ``up cpu``
the upsampling's (its thread's CPU time: the filter is single-threaded). Prints a table and a
one-line summary.

    python -m benchmarks.first_preview [--sizes 1 12 24] [--repeats 3] [--depth network|iphone]
    REFOCUS_CPU_RUNTIME=openvino python -m benchmarks.first_preview   # the network on OpenVINO
"""

from __future__ import annotations

import argparse
import io
import statistics
import tempfile
import time
from contextlib import contextmanager
from pathlib import Path

import cv2
import numpy as np
from PIL import Image

import refocus.depth.hf as hf_module
import refocus.depth.staged as staged_module
from benchmarks.render_speed import load_real
from refocus.depth import load_depth_model
from refocus.io import load_photo
from refocus.preview_decode import load_draft_photo
from refocus.refocuser import LensSettings, Refocuser

SIZES = {1: (1224, 816), 12: (4032, 3024), 24: (6000, 4000)}  # megapixels -> (width, height)
STAGES = ("decode", "network", "upsample", "render")
COLUMNS = (*STAGES, "total", "cpu", "up cpu")
PATHS = ("before", "staged", "draft-pv", "draft")


def save_small_depth_anything(folder: Path) -> Path:
    """Save a random network of Depth Anything V2 Small's architecture (24.8M parameters) in ``folder``."""
    import torch
    from transformers import DepthAnythingConfig, DepthAnythingForDepthEstimation, Dinov2Config, DPTImageProcessor

    torch.manual_seed(0)
    # depth-anything/Depth-Anything-V2-Small-hf's config.json and preprocessor_config.json.
    backbone = Dinov2Config(
        image_size=518, patch_size=14, hidden_size=384, num_hidden_layers=12, num_attention_heads=6,
        intermediate_size=1536, out_indices=[3, 6, 9, 12], reshape_hidden_states=False,
    )  # fmt: skip
    config = DepthAnythingConfig(
        backbone_config=backbone, reassemble_hidden_size=384, neck_hidden_sizes=[48, 96, 192, 384],
        fusion_hidden_size=64, head_hidden_size=32, reassemble_factors=[4, 2, 1, 0.5], depth_estimation_type="relative",
    )  # fmt: skip
    model = DepthAnythingForDepthEstimation(config)
    parameters = sum(p.numel() for p in model.parameters())
    assert abs(parameters - 24.8e6) < 0.1e6, f"expected DA-V2-Small's 24.8M parameters, built {parameters / 1e6:.2f}M"
    model.save_pretrained(folder)
    DPTImageProcessor(
        size={"height": 518, "width": 518}, keep_aspect_ratio=True, ensure_multiple_of=14, do_pad=False, resample=3
    ).save_pretrained(folder)
    return folder


def jpeg_photo(width: int, height: int) -> bytes:
    """A camera-like JPEG (quality 92): smooth shading, a near card with sharp edges, fine noise."""
    rng = np.random.default_rng(width)
    base = cv2.resize(rng.random((24, 36, 3), np.float32), (width, height), interpolation=cv2.INTER_CUBIC)
    base[height // 4 : 3 * height // 4, width // 5 : width // 2] *= 0.4
    pixels = np.clip(base * 200 + rng.normal(0, 6, (height, width, 1)), 0, 255).astype(np.uint8)
    buffer = io.BytesIO()
    Image.fromarray(pixels).save(buffer, "JPEG", quality=92)
    return buffer.getvalue()


def iphone_photo(width: int, height: int) -> tuple[bytes, np.ndarray] | None:
    """The real iPhone portrait at about ``width`` x ``height`` pixels (its own 4:3 aspect) as a
    JPEG (quality 92), and its measured disparity (float32, 1/m, 768 x 576); None when the file
    or pillow-heif is absent."""
    loaded = load_real("iphone")
    if loaded is None:
        return None
    image, disparity, _, _ = loaded
    h0, w0 = image.shape[:2]
    scale = (width * height / (w0 * h0)) ** 0.5
    size = (round(w0 * scale), round(h0 * scale))
    pixels = cv2.resize(image, size, interpolation=cv2.INTER_AREA) if scale < 1 else image
    buffer = io.BytesIO()
    Image.fromarray(np.round(pixels * 255).astype(np.uint8)).save(buffer, "JPEG", quality=92)
    return buffer.getvalue(), cv2.resize(disparity, (768, 576), interpolation=cv2.INTER_AREA)


@contextmanager
def network_predicts(model, disparity: np.ndarray | None):
    """The network runs in full, then its low-resolution output is replaced by ``disparity``
    resized to the output's shape (None: the network's own output)."""
    if disparity is None:
        yield
        return
    original = model._network_disparity

    def replaced(pixels):
        low, focal = original(pixels)
        return cv2.resize(disparity, low.shape[::-1], interpolation=cv2.INTER_AREA), focal

    model._network_disparity = replaced
    try:
        yield
    finally:
        del model._network_disparity


@contextmanager
def timed_upsampling(spent: list[float], cpu: list[float] | None = None):
    """Add the seconds every ``upsample_disparity`` call takes, from either code path, to ``spent``,
    and its CPU seconds (the calling thread's: the filter is single-threaded) to ``cpu``."""

    def timing(original):
        def timed(*args, **kwargs):
            start, cpu_start = time.perf_counter(), time.thread_time()
            try:
                return original(*args, **kwargs)
            finally:
                spent.append(time.perf_counter() - start)
                if cpu is not None:
                    cpu.append(time.thread_time() - cpu_start)

        return timed

    names = [(hf_module, "upsample_disparity"), (staged_module, "upsample_disparity"),
             (staged_module, "upsample_disparity_for_preview")]  # fmt: skip
    originals = [getattr(module, name) for module, name in names]
    for (module, name), original in zip(names, originals):
        setattr(module, name, timing(original))
    try:
        yield
    finally:
        for (module, name), original in zip(names, originals):
            setattr(module, name, original)


@contextmanager
def preview_filtered_at_its_size():
    """The preview's depth upsampled as full-resolution depth is (colour guide, at the preview's
    size), as before ``upsample_disparity_for_preview``."""
    original = staged_module.upsample_disparity_for_preview
    staged_module.upsample_disparity_for_preview = staged_module.upsample_disparity
    try:
        yield
    finally:
        staged_module.upsample_disparity_for_preview = original


def before(model, data: bytes, settings: LensSettings) -> dict[str, float]:
    """Upload -> first preview as refocus did it before issue 11 (full-resolution depth first)."""
    refocuser = Refocuser(load_model=lambda spec, device: model)
    upsampling: list[float] = []
    upsampling_cpu: list[float] = []
    start, cpu_start = time.perf_counter(), time.process_time()
    photo = load_photo(data)
    decoded = time.perf_counter()
    with timed_upsampling(upsampling, upsampling_cpu):
        depth = model.predict(photo.pixels)
    predicted = time.perf_counter()
    scale = refocuser.preview_size / max(photo.width, photo.height)
    size = (round(photo.width * scale), round(photo.height * scale))
    preview = cv2.resize(photo.pixels, size, interpolation=cv2.INTER_AREA)
    disparity = cv2.resize(depth.disparity, size, interpolation=cv2.INTER_AREA)
    refocuser.render(preview, disparity, (size[0] / 2, size[1] / 2), settings)
    end = time.perf_counter()
    return {
        "decode": decoded - start,
        "network": predicted - decoded - sum(upsampling),
        "upsample": sum(upsampling),
        "render": end - predicted,
        "total": end - start,
        "cpu": time.process_time() - cpu_start,
        "up cpu": sum(upsampling_cpu),
    }


def now(model, data: bytes, settings: LensSettings, *, draft: bool) -> dict[str, float]:
    """Upload -> first preview through ``Refocuser``, the photo decoded in full or at preview size."""
    refocuser = Refocuser(load_model=lambda spec, device: model)
    start, cpu_start = time.perf_counter(), time.process_time()
    photo = load_draft_photo(data, refocuser.preview_size) if draft else load_photo(data)
    decoded = time.perf_counter()
    upsampling_cpu: list[float] = []
    with timed_upsampling([], upsampling_cpu):
        prepared = refocuser.prepare(photo)
    prepared_at = time.perf_counter()
    lens = refocuser.preview_lens(prepared, (photo.width / 2, photo.height / 2), settings)
    refocuser.render_preview(prepared, lens, settings)
    end = time.perf_counter()
    network = refocuser.last_timings.depth_s or 0.0
    upsample = refocuser.last_timings.upsample_s or 0.0
    return {
        "decode": decoded - start,
        "network": network,
        "upsample": upsample,
        # Preview shrink and cache bookkeeping are counted with the render.
        "render": end - prepared_at + (prepared_at - decoded - network - upsample),
        "total": end - start,
        "cpu": time.process_time() - cpu_start,
        "up cpu": sum(upsampling_cpu),
    }


def draft_filtered_at_preview_size(model, data: bytes, settings: LensSettings) -> dict[str, float]:
    """``now(draft=True)`` with the preview's depth filtered at the preview's size."""
    with preview_filtered_at_its_size():
        return now(model, data, settings, draft=True)


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--sizes", type=int, nargs="+", default=list(SIZES), choices=list(SIZES))
    parser.add_argument("--repeats", type=int, default=3, help="runs per path and size; the median is shown")
    parser.add_argument("--depth", default="network", choices=("network", "iphone"),
                        help="the network's own (noise) map, or the real iPhone photo with its measured depth")
    parser.add_argument("--paths", nargs="+", default=list(PATHS), choices=list(PATHS), help="paths to time")
    args = parser.parse_args()

    with tempfile.TemporaryDirectory() as folder:
        model = load_depth_model(str(save_small_depth_anything(Path(folder))), device="cpu")
    settings = LensSettings(f_number=2.8)
    # First-call costs out of the table, for both aspect ratios (an exported network, with
    # REFOCUS_CPU_RUNTIME set, exports once per input shape).
    warm = [jpeg_photo(600, 400), jpeg_photo(640, 480)]
    paths = {
        "before": lambda data: before(model, data, settings),
        "staged": lambda data: now(model, data, settings, draft=False),
        "draft-pv": lambda data: draft_filtered_at_preview_size(model, data, settings),
        "draft": lambda data: now(model, data, settings, draft=True),
    }
    paths = {name: paths[name] for name in args.paths}
    for run in paths.values():
        for data in warm:
            run(data)

    print(f"{'photo':>6} {'path':>7} " + " ".join(f"{s:>9}" for s in COLUMNS) + "   (seconds, median)", flush=True)
    summary = []
    for megapixels in args.sizes:
        data, disparity = jpeg_photo(*SIZES[megapixels]), None
        if args.depth == "iphone":
            real = iphone_photo(*SIZES[megapixels])
            if real is None:
                raise SystemExit("--depth iphone needs ../shared/real-phone and pillow-heif")
            data, disparity = real
        runs: dict[str, list[dict[str, float]]] = {path: [] for path in paths}
        with network_predicts(model, disparity):
            for _ in range(args.repeats):
                for path, run in paths.items():
                    runs[path].append(run(data))
        medians = {path: {k: statistics.median(r[k] for r in rs) for k in rs[0]} for path, rs in runs.items()}
        for path, m in medians.items():
            print(f"{megapixels:>4}MP {path:>7} " + " ".join(f"{m[s]:9.2f}" for s in COLUMNS), flush=True)
        parts = []
        if "before" in medians and "draft" in medians:
            old, new = medians["before"], medians["draft"]
            parts.append(
                f"before -> draft {old['total']:.2f} -> {new['total']:.2f} s ({old['total'] / new['total']:.1f}x; "
                f"CPU time {old['cpu'] / new['cpu']:.1f}x)"
            )
        if "draft-pv" in medians and "draft" in medians:
            pv, new = medians["draft-pv"], medians["draft"]
            parts.append(
                f"preview depth by upsample_disparity_for_preview: upsample CPU {pv['up cpu']:.2f} -> {new['up cpu']:.2f} s "
                f"({new['up cpu'] / pv['up cpu']:.2f}x), total {pv['total']:.2f} -> {new['total']:.2f} s"
            )
        summary.append(f"{megapixels} MP " + ", ".join(parts))
    depth = "the network's own map" if args.depth == "network" else "the iPhone photo's measured depth"
    print(f"upload -> first preview, DA-V2-Small-sized network on CPU, rendering {depth}: " + "; ".join(summary))


if __name__ == "__main__":
    main()
