"""Train the Eigen et al. 2014 depth network on NYU Depth v2, coarse stage then fine stage.

    python -m training.train --data data/nyu/nyu_depth_v2_labeled.mat --splits data/nyu/splits.mat \\
        --stage coarse --out checkpoints/eigen-coarse
    python -m training.train --data data/nyu/nyu_depth_v2_labeled.mat --splits data/nyu/splits.mat \\
        --stage fine --init checkpoints/eigen-coarse --out checkpoints/eigen

The output directory is a ``from_pretrained`` directory (``config.json`` + ``model.safetensors``)
that ``refocus`` loads with ``--depth-model DIR``, plus ``training_state.safetensors`` and
``training_state.json`` for ``--resume``.

Recipe (Eigen et al. 2014, section 3.3): scale-invariant log loss with lambda = 0.5; SGD with
momentum 0.9, batch 32; learning rates 0.001 for coarse conv layers 1-5, 0.1 for coarse fully
connected layers 6-7, 0.001 for fine layers 1 and 3, 0.01 for fine layer 2; the coarse network is
frozen while the fine one trains; 2M samples for coarse, 1.5M for fine. The paper trained on
~120K raw frames; this script reads the 795 labeled training frames.
"""

from __future__ import annotations

import argparse
import json
import math
import os
import random
import sys
import time
from pathlib import Path

import numpy as np
import torch
import torch.nn.functional as F
from torch.utils.data import DataLoader

from refocus.depth.base import resolve_device
from refocus.depth.eigen import INPUT_SIZE, PAPER_COARSE_CHANNELS, EigenDepthNet, count_parameters
from refocus.errors import RefocusError
from training.cli import exit_status
from training.loss import scale_invariant_loss
from training.nyu import NYUDepthV2, augment_batch, centre_crop, sample_augmentations

PAPER_SAMPLES = {"coarse": 2_000_000, "fine": 1_500_000}  # training samples seen, per stage
STATE_TENSORS, STATE_JSON = "training_state.safetensors", "training_state.json"


def build_parser() -> argparse.ArgumentParser:
    p = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    p.add_argument("--data", required=True, help="nyu_depth_v2_labeled.mat")
    p.add_argument("--splits", required=True, help="splits.mat (official train/test split)")
    p.add_argument("--stage", required=True, choices=["coarse", "fine"])
    p.add_argument("--out", required=True, help="output directory (from_pretrained layout)")
    p.add_argument("--init", help="checkpoint directory to start from; required for --stage fine (the coarse one)")
    length = p.add_mutually_exclusive_group()
    length.add_argument("--epochs", type=int, help="passes over the training split")
    length.add_argument("--max-steps", type=int, help="optimiser steps (default: the paper's sample count / batch size)")
    p.add_argument("--batch-size", type=int, default=32)
    p.add_argument("--device", help="cpu, cuda, cuda:1 ... (default: cuda when available)")
    p.add_argument("--optimizer", choices=["sgd", "adam"], default="sgd")
    p.add_argument("--lr-scale", type=float, default=1.0, help="multiplies the paper's per-layer SGD rates")
    p.add_argument("--adam-lr", type=float, default=1e-4, help="learning rate of every layer with --optimizer adam")
    p.add_argument("--weight-decay", type=float, default=0.0, help="the paper does not mention any")
    p.add_argument("--lam", type=float, default=0.5, help="weight of the scale-invariant term of the loss")
    p.add_argument("--no-augment", action="store_true", help="train on centre views (overfitting checks)")
    p.add_argument("--limit", type=int, help="use only the first N training frames")
    p.add_argument("--workers", type=int, default=min(8, os.cpu_count() or 1), help="DataLoader workers (--augment-on workers)")
    p.add_argument(
        "--preload",
        action=argparse.BooleanOptionalAction,
        help="read the split's frames into RAM once, halved (~1.0 GB for the 795 training frames), instead of "
        "an h5py read per sample (default: on when twice that much RAM is available)",
    )
    p.add_argument(
        "--augment-on",
        choices=["auto", "device", "workers"],
        default="auto",
        help="device: keep the preloaded split on the training device and augment whole batches there (no "
        "DataLoader); workers: augment each sample in DataLoader workers on the CPU (default: device on CUDA "
        "when preloaded and it fits in a quarter of the free GPU memory, else workers)",
    )
    p.add_argument("--no-amp", action="store_true", help="disable mixed precision on CUDA")
    p.add_argument("--seed", type=int, default=0)
    p.add_argument("--save-every", type=int, default=2000, help="checkpoint every N steps (and at the end)")
    p.add_argument("--resume", action="store_true", help="continue the run saved in --out")
    p.add_argument("--tensorboard", metavar="LOGDIR", help="write TensorBoard scalars (needs `pip install tensorboard`)")
    p.add_argument("--push-to-hub", metavar="REPO", help="upload the final checkpoint to this hub repo")
    p.add_argument("--private", action="store_true", help="with --push-to-hub: create the repo private")
    p.add_argument("--quiet", action="store_true", help="no progress bar")
    size = p.add_argument_group("model size (new coarse runs only; defaults are the paper's)")
    size.add_argument("--coarse-channels", default=",".join(map(str, PAPER_COARSE_CHANNELS)))
    size.add_argument("--fc-dim", type=int, default=4096)
    size.add_argument("--fine-channels", type=int, default=63)
    return p


def seed_everything(seed: int) -> None:
    random.seed(seed)
    np.random.seed(seed)
    torch.manual_seed(seed)


def build_model(args) -> EigenDepthNet:
    """The network for this stage: fresh (coarse), from --init, or from --out (--resume)."""
    source = args.out if args.resume else args.init
    if source is None:
        if args.stage == "fine":
            raise RefocusError("--stage fine needs --init DIR, the coarse stage's output directory.")
        channels = [int(c) for c in args.coarse_channels.split(",")]
        return EigenDepthNet(stage="coarse", coarse_channels=channels, fc_dim=args.fc_dim, fine_channels=args.fine_channels)
    if not (Path(source) / "model.safetensors").is_file():
        raise RefocusError(f"'{source}' holds no model.safetensors to start from.")
    loaded = EigenDepthNet.from_pretrained(source)
    config = loaded.architecture()
    if args.resume and config.get("stage") != args.stage:
        raise RefocusError(f"--resume: '{source}' is a {config.get('stage')} run, not {args.stage}.")
    # A new instance, so that the saved config.json says this run's stage.
    model = EigenDepthNet(**{**config, "stage": args.stage})
    model.load_state_dict(loaded.state_dict())
    return model


def parameter_groups(model: EigenDepthNet, stage: str) -> list[dict]:
    """The paper's per-layer learning rates (SGD); the fine stage trains the fine layers only."""
    if stage == "coarse":
        return [
            {"params": list(model.coarse.features.parameters()), "lr": 0.001, "name": "coarse conv 1-5"},
            {"params": list(model.coarse.fc.parameters()), "lr": 0.1, "name": "coarse full 6-7"},
        ]
    return [
        {"params": list(model.fine.conv1.parameters()), "lr": 0.001, "name": "fine 1"},
        {"params": list(model.fine.conv2.parameters()), "lr": 0.01, "name": "fine 2"},
        {"params": list(model.fine.conv3.parameters()), "lr": 0.001, "name": "fine 3"},
    ]


def build_optimizer(model: EigenDepthNet, args) -> torch.optim.Optimizer:
    groups = parameter_groups(model, args.stage)
    if args.optimizer == "adam":
        for group in groups:
            group["lr"] = args.adam_lr
        return torch.optim.Adam(groups, weight_decay=args.weight_decay)
    for group in groups:
        group["lr"] *= args.lr_scale
    return torch.optim.SGD(groups, momentum=0.9, weight_decay=args.weight_decay)


def save_checkpoint(model, optimizer, scaler, step: int, out: Path) -> None:
    """Weights (from_pretrained layout) and the optimiser state, as safetensors + JSON.

    Files are written beside their final names and renamed, so an interrupted save leaves the
    previous checkpoint intact.
    """
    from safetensors.torch import save_file

    tmp = out / ".saving"
    model.save_pretrained(tmp)
    state = optimizer.state_dict()
    tensors = {f"{i}.{name}": t for i, s in state["state"].items() for name, t in s.items() if torch.is_tensor(t)}
    save_file({k: v.detach().cpu().contiguous() for k, v in tensors.items()}, str(tmp / STATE_TENSORS))
    meta = {
        "step": step,
        "param_groups": [{k: v for k, v in g.items() if k != "params"} for g in state["param_groups"]],
        "scaler": scaler.state_dict() if scaler is not None and scaler.is_enabled() else None,
    }
    (tmp / STATE_JSON).write_text(json.dumps(meta, indent=2))
    for file in tmp.iterdir():
        os.replace(file, out / file.name)
    tmp.rmdir()


def load_checkpoint_state(optimizer, scaler, out: Path) -> int:
    """Restore the optimiser (and AMP scaler) saved by ``save_checkpoint``; returns the step."""
    from safetensors.torch import load_file

    if not (out / STATE_JSON).is_file():
        raise RefocusError(f"--resume: '{out}' has no {STATE_JSON}; was it written by train.py?")
    meta = json.loads((out / STATE_JSON).read_text())
    tensors = load_file(str(out / STATE_TENSORS))
    state: dict[int, dict] = {}
    for key, tensor in tensors.items():
        index, name = key.split(".", 1)
        state.setdefault(int(index), {})[name] = tensor
    current = optimizer.state_dict()
    groups = [{**saved, "params": group["params"]} for saved, group in zip(meta["param_groups"], current["param_groups"])]
    optimizer.load_state_dict({"state": state, "param_groups": groups})
    if scaler is not None and meta.get("scaler"):
        scaler.load_state_dict(meta["scaler"])
    return int(meta["step"])


def open_tensorboard(logdir: str | None):
    if logdir is None:
        return None
    try:
        from torch.utils.tensorboard import SummaryWriter
    except ImportError as error:
        raise RefocusError("--tensorboard needs the tensorboard package: pip install tensorboard") from error
    return SummaryWriter(logdir)


def batches(loader):
    """Cycle over the loader forever (steps, not epochs, drive training)."""
    while True:
        yield from loader


def available_ram() -> int:
    """Bytes of RAM available to new allocations (MemAvailable; 0 where it cannot be read)."""
    try:
        with open("/proc/meminfo") as f:
            for line in f:
                if line.startswith("MemAvailable:"):
                    return int(line.split()[1]) * 1024
    except OSError:
        pass
    try:
        return os.sysconf("SC_AVPHYS_PAGES") * os.sysconf("SC_PAGE_SIZE")
    except (ValueError, OSError, AttributeError):
        return 0


class DeviceBatches:
    """One epoch of batches of a preloaded split, gathered and augmented on the training device.

    The halved frames (``NYUDepthV2.frames``) move to the device once; each batch is an index
    gather there and one batched ``augment_batch`` (the paper's augmentation, drawn per sample as
    in the DataLoader path), so the CPU does no per-sample work. Shuffled like
    ``DataLoader(shuffle=True, drop_last=...)``: a new permutation per epoch. The permutation and
    the augmentation parameters are drawn on the device too (its own generator, seeded with
    ``seed``): a host-to-device copy from pageable memory would make the CPU wait for the GPU.
    """

    def __init__(self, frames, batch_size: int, device: torch.device, augment: bool, seed: int, drop_last: bool):
        self.frames = tuple(t.to(device) for t in frames)
        self.batch_size, self.device, self.augment = batch_size, device, augment
        self.generator = torch.Generator(device=device).manual_seed(seed)
        n = self.frames[0].shape[0]
        self.starts = range(0, n - batch_size + 1 if drop_last else n, batch_size)

    def __len__(self) -> int:
        return len(self.starts)

    def __iter__(self):
        order = torch.randperm(self.frames[0].shape[0], generator=self.generator, device=self.device)
        for start in self.starts:
            index = order[start : start + self.batch_size]
            image, depth, valid = (t.index_select(0, index) for t in self.frames)
            if self.augment:
                params = sample_augmentations(len(index), self.generator, self.device)
                image, depth, valid = augment_batch(image, depth, valid, params)
            else:
                image, depth, valid = centre_crop(image, depth, valid)
            yield {"image": image.contiguous(), "depth": depth.contiguous(), "valid": valid.contiguous()}


def build_batches(args, device: torch.device):
    """The training batches as ``args`` asks: ``(dataset, loader, description)``."""
    dataset = NYUDepthV2(args.data, args.splits, "train", augment=not args.no_augment, limit=args.limit)
    need = NYUDepthV2.preload_bytes(len(dataset))
    preload = args.preload if args.preload is not None else available_ram() >= 2 * need
    on_device = args.augment_on == "device" or (
        args.augment_on == "auto" and preload and device.type == "cuda" and 4 * need <= torch.cuda.mem_get_info(device)[0]
    )
    if on_device and args.preload is False:
        raise RefocusError("--augment-on device needs the split preloaded; drop --no-preload.")
    drop_last = len(dataset) >= args.batch_size
    if on_device or preload:
        started = time.perf_counter()
        frames = dataset.read_frames()
        print(f"preloaded {len(dataset)} frames ({need / 1e9:.2f} GB) in {time.perf_counter() - started:.1f} s", file=sys.stderr)
    if on_device:  # the device holds the frames; the dataset keeps no copy in RAM
        loader = DeviceBatches(frames, args.batch_size, device, dataset.augment, args.seed, drop_last)
        return dataset, loader, f"preloaded on {device}, batched augmentation there"
    if preload:
        dataset.frames = frames  # what ``NYUDepthV2(preload=True)`` keeps
    loader = DataLoader(
        dataset,
        batch_size=args.batch_size,
        shuffle=True,
        drop_last=drop_last,
        num_workers=args.workers,
        pin_memory=device.type == "cuda",
        persistent_workers=args.workers > 0,
        generator=torch.Generator().manual_seed(args.seed),
    )
    return dataset, loader, f"{'preloaded, ' if preload else 'h5py reads, '}augmentation in {args.workers} DataLoader workers"


def mixed_precision(device: torch.device, enabled: bool = True) -> tuple[torch.dtype | None, torch.amp.GradScaler]:
    """The autocast dtype for training on ``device`` (None: float32 throughout) and its gradient scaler.

    On CUDA bf16, which needs no loss scaling, or fp16 with a ``GradScaler`` on GPUs without
    bf16; elsewhere (or not ``enabled``) float32 and a scaler that does nothing.
    """
    amp_dtype = None
    if enabled and device.type == "cuda":
        amp_dtype = torch.bfloat16 if torch.cuda.is_bf16_supported() else torch.float16
    return amp_dtype, torch.amp.GradScaler("cuda", enabled=amp_dtype == torch.float16)


def training_step(model, optimizer, scaler, batch: dict, amp_dtype: torch.dtype | None, lam: float = 0.5) -> torch.Tensor:
    """One optimiser step on ``batch`` (``image``, ``depth``, ``valid`` on the model's device).

    Returns the loss as a tensor (reading it with ``.item()`` waits for the GPU: not every step).
    """
    image = batch["image"]
    with torch.autocast(image.device.type, dtype=amp_dtype or torch.float16, enabled=amp_dtype is not None):
        log_pred = model(image)
    # The 55x74 output spans the 228x304 crop; compare at the target's resolution.
    log_pred = F.interpolate(log_pred.float(), size=INPUT_SIZE, mode="bilinear", align_corners=False)
    loss = scale_invariant_loss(log_pred, batch["depth"], batch["valid"], lam=lam)
    optimizer.zero_grad(set_to_none=True)
    scaler.scale(loss).backward()
    scaler.step(optimizer)
    scaler.update()
    return loss


def train(args) -> dict:
    """Run one stage. Returns a summary: steps, final running loss, seconds, images/s, ms/step."""
    seed_everything(args.seed)
    device = torch.device(resolve_device(args.device))
    if device.type == "cuda":
        torch.backends.cudnn.benchmark = True  # fixed input size: let cuDNN pick its fastest kernels
    out = Path(args.out)
    out.mkdir(parents=True, exist_ok=True)

    dataset, loader, pipeline = build_batches(args, device)
    if args.max_steps is not None:
        total_steps = args.max_steps
    elif args.epochs is not None:
        total_steps = args.epochs * len(loader)
    else:
        total_steps = math.ceil(PAPER_SAMPLES[args.stage] / args.batch_size)

    model = build_model(args).to(device)
    if args.stage == "fine":
        model.coarse.requires_grad_(False)  # the paper holds the coarse network fixed
    optimizer = build_optimizer(model, args)
    amp_dtype, scaler = mixed_precision(device, enabled=not args.no_amp)
    step = load_checkpoint_state(optimizer, scaler, out) if args.resume else 0
    writer = open_tensorboard(args.tensorboard)

    print(
        f"{args.stage} stage: {count_parameters(model):,} parameters, {len(dataset)} frames, "
        f"{total_steps} steps of {args.batch_size} on {device}"
        + (f" (AMP {str(amp_dtype).removeprefix('torch.')})" if amp_dtype else "")
        + f"; data: {pipeline}",
        file=sys.stderr,
    )
    from tqdm import tqdm

    progress = tqdm(total=total_steps, initial=step, disable=args.quiet, desc=args.stage, unit="step")
    running, history = None, []
    warmup = min(10, max(total_steps - step - 1, 0) // 5)  # steps left out of the timing
    timed_from, timed_images, run_steps = None, 0, 0
    model.train()
    if args.stage == "fine":
        model.coarse.eval()  # frozen: no dropout either
    data = batches(loader)
    while step < total_steps:
        if run_steps == warmup:  # start the clock once the first (slow) steps are done
            if device.type == "cuda":
                torch.cuda.synchronize(device)
            timed_from = time.perf_counter()
        batch = {key: tensor.to(device, non_blocking=True) for key, tensor in next(data).items()}
        loss = training_step(model, optimizer, scaler, batch, amp_dtype, lam=args.lam)
        step += 1
        run_steps += 1
        if timed_from is not None:
            timed_images += batch["image"].shape[0]
        if step % 10 == 0 or run_steps == 1 or step == total_steps:  # .item() syncs: not every step
            value = float(loss.item())
            history.append((step, value))
            if not math.isfinite(value):
                raise RefocusError(f"the loss became {value} at step {step}; lower --lr-scale or try --optimizer adam")
            running = value if running is None else 0.9 * running + 0.1 * value
            progress.set_postfix(loss=f"{running:.4f}")
            if writer is not None:
                writer.add_scalar(f"{args.stage}/loss", value, step)
        progress.update(1)
        if step % args.save_every == 0 and step < total_steps:
            save_checkpoint(model, optimizer, scaler, step, out)
    progress.close()
    if device.type == "cuda":
        torch.cuda.synchronize(device)
    seconds = time.perf_counter() - timed_from if timed_from is not None else float("nan")
    save_checkpoint(model, optimizer, scaler, step, out)
    if writer is not None:
        writer.close()
    if args.push_to_hub:
        push(model, args.push_to_hub, args.private)

    timed_steps = timed_images / args.batch_size
    summary = {
        "stage": args.stage,
        "steps": step,
        "loss": running,  # None when --resume found the run already finished
        "parameters": count_parameters(model),
        "timed_steps": timed_steps,
        "ms_per_step": 1000 * seconds / timed_steps if timed_steps else float("nan"),
        "images_per_s": timed_images / seconds if timed_images else float("nan"),
        "device": str(device),
        "amp": str(amp_dtype).removeprefix("torch.") if amp_dtype else None,
        "pipeline": pipeline,
        "out": str(out),
        "history": history,
    }
    print(json.dumps({k: v for k, v in summary.items() if k != "history"}), file=sys.stderr)
    return summary


def push(model: EigenDepthNet, repo: str, private: bool) -> None:
    """Upload the checkpoint (config.json, model.safetensors, model card) to the hub."""
    try:
        url = model.push_to_hub(repo, private=private, commit_message="Upload Eigen 2014 depth network (refocus)")
    except Exception as error:  # network, auth and permission errors
        raise RefocusError(
            f"Could not push to the hub repo '{repo}': {error}. Log in with `hf auth login` "
            "(or set HF_TOKEN) and check that HF_HUB_OFFLINE is not set."
        ) from error
    print(f"pushed to {url}", file=sys.stderr)


def parse_args(argv: list[str] | None = None) -> argparse.Namespace:
    """The command line, checked (argparse exits with a usage message on a bad one)."""
    parser = build_parser()
    args = parser.parse_args(argv)
    if args.batch_size < 1 or (args.max_steps is not None and args.max_steps < 1):
        parser.error("--batch-size and --max-steps must be positive")
    return args


def main(argv: list[str] | None = None) -> int:
    """Train one stage as the command line says; the exit status (1 with a message on an error)."""
    return exit_status(lambda: train(parse_args(argv)))


if __name__ == "__main__":
    sys.exit(main())
