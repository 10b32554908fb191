"""How many torch ops one render launches on the torch (CUDA) code path.

    python -m benchmarks.render_launches [--device cpu|cuda] [--sizes 1000x750,2000x1500] [--repeats 3]

Why: on a GPU the renderer is launch bound (at 12 MP a few ms of kernels behind hundreds of ms
of Python and dispatch), so the number of ops per render, not the pixel count, sets its speed.
On the CPU the torch backend is asked for (``backend=TorchOps("cpu")``, as the tests do), so the op
count can be measured without a GPU; it depends on the number of depth layers, not on pixels.

Scene: random sRGB, disparity ``0.2 + 0.8 x`` below the top 30 % of the frame (x = 0..1 left to
right) and 0.2 above, focus 0.6, strength 125 (largest CoC 50 px radius). By default the
strength is the same at every size, so a 1000x750 render has the same depth layers and
downsampling factors as the 4000x3000 one and launches about as many ops (only the fill's
pyramid is two levels shorter); ``--relative`` scales it with the width instead.

Prints per size: aten ops (every dispatched op, nested ones included); python-level ops (the
outermost ops, views left out: what the renderer asks for, the same on CPU and CUDA); work ops
(leaf ops, views left out: about one kernel launch each; on the CPU this includes copies that
CPU kernels make internally, e.g. inside avg_pool2d and upsample_bilinear2d, which CUDA's do not);
cudaLaunchKernel calls on CUDA; and the time of one render (median of ``--repeats``, outside the
profiler; on the CPU the torch path computes too, so this is not launch overhead alone).
"""

from __future__ import annotations

import argparse

import torch
from torch.profiler import ProfilerActivity, profile

from benchmarks import render_speed

from refocus.render import QUALITIES, TorchOps, render_bokeh
from refocus.render.layers import layer_edges, signed_coc

# ops that only make views or read metadata: no kernel behind them
VIEW_OPS = {"aten::view", "aten::permute", "aten::as_strided", "aten::slice", "aten::select",
            "aten::expand", "aten::unsqueeze", "aten::squeeze", "aten::reshape", "aten::alias",
            "aten::t", "aten::transpose", "aten::flip_view", "aten::_reshape_alias", "aten::unbind",
            "aten::narrow", "aten::split", "aten::chunk", "aten::detach", "detach", "aten::lift_fresh",
            "aten::empty", "aten::empty_strided", "aten::empty_like", "aten::resolve_conj",
            "aten::resolve_neg", "aten::result_type", "aten::item", "aten::is_nonzero",
            "aten::_local_scalar_dense", "aten::view_as", "aten::expand_as", "aten::squeeze_",
            "aten::unsqueeze_", "aten::_unsafe_view", "aten::contiguous", "aten::flatten",
            "aten::numpy_T", "aten::lift", "aten::set_"}


def scene(width: int, height: int, device: str, relative: bool) -> tuple[torch.Tensor, torch.Tensor, float, float]:
    g = torch.Generator().manual_seed(0)
    img = torch.rand(height, width, 3, generator=g)
    yy, xx = torch.meshgrid(torch.linspace(0, 1, height), torch.linspace(0, 1, width), indexing="ij")
    disparity = 0.2 + 0.8 * xx * (yy > 0.3)
    return img.to(device), disparity.to(device), 0.6, 125.0 * (width / 4000 if relative else 1.0)


def count(fn, cuda: bool) -> dict:
    activities = [ProfilerActivity.CPU] + ([ProfilerActivity.CUDA] if cuda else [])
    with profile(activities=activities) as prof:
        fn()
        if cuda:
            torch.cuda.synchronize()
    events = prof.events()
    aten = [e for e in events if e.name.startswith("aten::")]
    work = [e for e in aten if e.name not in VIEW_OPS
            and not any(c.name.startswith("aten::") and c.name not in VIEW_OPS for c in e.cpu_children)]
    # ops called from Python (outermost); their internal copies differ between CPU and CUDA
    top = [e for e in aten if e.name not in VIEW_OPS
           and (e.cpu_parent is None or not e.cpu_parent.name.startswith("aten::"))]
    launches = sum(1 for e in events if e.name in ("cudaLaunchKernel", "cuLaunchKernel", "cudaLaunchKernelExC"))
    by_name: dict[str, int] = {}
    for e in work:
        by_name[e.name] = by_name.get(e.name, 0) + 1
    return {"aten": len(aten), "top": len(top), "work": len(work), "launches": launches,
            "frequent": sorted(by_name.items(), key=lambda kv: -kv[1])[:12]}


def main(argv: list[str] | None = None) -> dict:
    ap = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    ap.add_argument("--device", default="cpu", help="cpu (torch path forced) or cuda")
    ap.add_argument("--sizes", default="500x375,1000x750", help="comma-separated WxH")
    ap.add_argument("--relative", action="store_true", help="scale the strength with the width")
    ap.add_argument("--repeats", type=int, default=3)
    ap.add_argument("--top", action="store_true", help="also print the most frequent ops")
    args = ap.parse_args(argv)
    cuda = args.device.startswith("cuda")
    if cuda and not torch.cuda.is_available():
        raise SystemExit("--device cuda asked for, but CUDA is not available.")
    if not cuda:
        # torch's CPU ops run here only because the torch path is asked for; its OpenMP workers
        # spin between these small ops, so time them on one thread (set once, for this script)
        torch.set_num_threads(1)
    rows = [measure(size, args, cuda) for size in args.sizes.split(",")]
    summary = ", ".join(f"{r['size']} ({r['layers']} layers) {r['top']} python-level ops / {r['work']} work ops"
                        + (f" / {r['launches']} kernel launches" if cuda else "") + f", {r['ms']:.0f} ms"
                        for r in rows)
    print(f"render_launches on {args.device} (torch path): {summary}")
    return {"device": args.device, "rows": rows}


def measure(size: str, args: argparse.Namespace, cuda: bool) -> dict:
    """Op counts and time of one render at ``size`` ("WxH"); prints one row."""
    w, h = (int(v) for v in size.lower().split("x"))
    img, disparity, focus, strength = scene(w, h, args.device, args.relative)
    ops = TorchOps(args.device)  # on the CPU too: the CUDA code path
    render = lambda: render_bokeh(img, disparity, focus, strength, backend=ops)  # noqa: E731
    render()  # warm-up: kernel caches, CUDA context
    stats = count(render, cuda)
    ms = render_speed.time_ms(render, args.repeats, cuda, warm_up=False)
    coc = signed_coc(ops, disparity, focus, strength, 0.0)
    edges = layer_edges(float(coc.min()), float(coc.max()), QUALITIES["default"][1])
    layers = int((torch.bincount(ops.bucketize(coc, edges).flatten()) > 0).sum())
    stats.update(size=f"{w}x{h}", ms=ms, layers=layers)
    print(f"{w:>5}x{h:<5} max CoC {strength * 0.4:5.1f} px  {layers:3d} layers  aten ops {stats['aten']:6d}  "
          f"python-level ops {stats['top']:5d}  work ops {stats['work']:5d}"
          + (f"  cudaLaunchKernel {stats['launches']:5d}" if cuda else "")
          + f"  render {stats['ms']:8.1f} ms", flush=True)
    if args.top:
        print("    " + ", ".join(f"{n[6:]} {c}" for n, c in stats["frequent"]))
    return stats


if __name__ == "__main__":
    main()
