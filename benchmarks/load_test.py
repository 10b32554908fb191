"""Load test: many gradio_client sessions calling ``/refocus`` at once against a local server.

Starts ``python app.py`` on 127.0.0.1 (loopback only) with a depth model (by default a tiny,
randomly initialised Depth Anything V2 built here, so it runs offline in seconds and the
measurement is about the app, not the network), then runs ``--users`` concurrent sessions that
each make ``--calls`` ``/refocus`` calls on their own generated photos with random focus points,
f-numbers and bokeh shapes. Each user first refocuses each of its photos once (the warm-up: it
fills the depth and prepared-photo caches as real use does); the server's RSS is read from
``/proc/PID/status`` before the first call, after the warm-up and at the end.

Prints one line per user, the latency table and a one-line summary; exits non-zero when any call
failed, the run hit its time limit, or RSS grew by more than ``--max-growth`` after the warm-up.

    .venv/bin/python -m benchmarks.load_test --users 20 --calls 50
    .venv/bin/python -m benchmarks.load_test --users 4 --calls 5       # a quick smoke run
"""

from __future__ import annotations

import argparse
import os
import random
import socket
import subprocess
import sys
import tempfile
import threading
import time
import urllib.request
from pathlib import Path

import numpy as np
from PIL import Image

REPO = Path(__file__).resolve().parents[1]


def parse_args(argv: list[str] | None = None) -> argparse.Namespace:
    p = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    p.add_argument("--users", type=int, default=20, help="concurrent gradio_client sessions (1-64)")
    p.add_argument("--calls", type=int, default=50, help="/refocus calls per session (1-500)")
    p.add_argument("--photos", type=int, default=5, help="distinct photos per session")
    p.add_argument("--min-size", type=int, nargs=2, default=(320, 240), metavar=("W", "H"))
    p.add_argument("--max-size", type=int, nargs=2, default=(640, 480), metavar=("W", "H"))
    p.add_argument("--depth-model", help="model spec for the server (default: a tiny random Depth Anything V2)")
    p.add_argument("--max-seconds", type=float, default=3600, help="stop the whole run after this long")
    p.add_argument("--call-timeout", type=float, default=300, help="one call may take this long")
    p.add_argument("--max-growth", type=float, default=0.20, help="allowed RSS growth after the warm-up")
    p.add_argument("--seed", type=int, default=0)
    args = p.parse_args(argv)
    if not (1 <= args.users <= 64 and 1 <= args.calls <= 500 and 1 <= args.photos <= args.calls):
        p.error("keep to 1-64 users, 1-500 calls each, and 1 <= photos <= calls")
    return args


def tiny_depth_anything(folder: Path) -> Path:
    """A ~30k-parameter random Depth Anything V2 in transformers format (the tests' own)."""
    from tests.tiny_models import save_tiny_depth_anything

    return save_tiny_depth_anything(folder)


def free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return s.getsockname()[1]


def rss_mib(pid: int) -> float:
    """Resident set size of process ``pid`` in MiB, from /proc (no psutil needed)."""
    for line in Path(f"/proc/{pid}/status").read_text().splitlines():
        if line.startswith("VmRSS:"):
            return int(line.split()[1]) / 1024
    raise RuntimeError(f"no VmRSS for process {pid}")


def start_server(model: str, port: int, log_path: Path) -> subprocess.Popen:
    env = {**os.environ, "HF_HUB_OFFLINE": "1", "TRANSFORMERS_OFFLINE": "1", "GRADIO_ANALYTICS_ENABLED": "False"}
    command = [sys.executable, str(REPO / "app.py"), "--host", "127.0.0.1", "--port", str(port),
               "--depth-model", model, "--device", "cpu"]  # fmt: skip
    return subprocess.Popen(command, cwd=REPO, env=env, stdout=log_path.open("w"), stderr=subprocess.STDOUT)


def wait_until_up(url: str, server: subprocess.Popen, timeout: float = 180) -> None:
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        if server.poll() is not None:
            raise RuntimeError(f"the server exited with status {server.returncode}")
        try:
            urllib.request.urlopen(url, timeout=5).read(1)
            return
        except OSError:
            time.sleep(0.5)
    raise RuntimeError(f"the server did not answer within {timeout:.0f} s")


def make_photos(folder: Path, user: int, args: argparse.Namespace) -> list[tuple[Path, int, int]]:
    """``args.photos`` distinct noisy gradient photos of random sizes for one user."""
    rng = np.random.default_rng(args.seed * 1000 + user)
    photos = []
    for k in range(args.photos):
        width = int(rng.integers(args.min_size[0], args.max_size[0] + 1))
        height = int(rng.integers(args.min_size[1], args.max_size[1] + 1))
        ramp = np.linspace(0, 1, width, dtype=np.float32)[None, :, None]
        pixels = 0.6 * ramp + 0.4 * rng.random((height, width, 3), dtype=np.float32)
        path = folder / f"user{user:02d}-photo{k}.jpg"
        Image.fromarray((pixels * 255).astype(np.uint8)).save(path, quality=90)
        photos.append((path, width, height))
    return photos


class Results:
    def __init__(self) -> None:
        self.lock = threading.Lock()
        self.latencies: list[float] = []  # after the warm-up
        self.warmup_latencies: list[float] = []
        self.errors: list[str] = []
        self.done = 0


def run_user(user: int, url: str, photos, args, results: Results, warmed: threading.Barrier, stop_at: float) -> None:
    from gradio_client import Client, handle_file

    rng = random.Random(args.seed * 1000 + user)
    try:
        client = Client(url, verbose=False)
    except Exception as e:  # noqa: BLE001 - a benchmark reports every failure and carries on
        with results.lock:
            results.errors.append(f"user {user}: could not connect: {e}")
        warmed.abort()
        return
    for call in range(args.calls):
        if call == len(photos):
            try:
                warmed.wait(timeout=max(1.0, stop_at - time.monotonic()))
            except threading.BrokenBarrierError:
                pass
        if time.monotonic() > stop_at:
            with results.lock:
                results.errors.append(f"user {user}: stopped at call {call}: time limit")
            break
        path, width, height = photos[call] if call < len(photos) else rng.choice(photos)
        kwargs = dict(
            x=rng.uniform(0, width - 1), y=rng.uniform(0, height - 1), f_number=rng.choice([1.4, 2.0, 2.8, 5.6, 11]),
            shape=rng.choice(["disc", "6-blade", "ring", "cats-eye"]),
        )  # fmt: skip
        start = time.perf_counter()
        try:
            job = client.submit(handle_file(str(path)), api_name="/refocus", **kwargs)
            png, details = job.result(timeout=args.call_timeout)
            if (details["width"], details["height"]) != (width, height) or Image.open(png).size != (width, height):
                raise RuntimeError(f"wrong size back: {details}")
        except Exception as e:  # noqa: BLE001
            with results.lock:
                results.errors.append(f"user {user} call {call}: {type(e).__name__}: {e}")
            continue
        elapsed = time.perf_counter() - start
        with results.lock:
            (results.warmup_latencies if call < len(photos) else results.latencies).append(elapsed)
            results.done += 1
    if args.calls <= len(photos):  # never reached the warm-up barrier above
        try:
            warmed.wait(timeout=max(1.0, stop_at - time.monotonic()))
        except threading.BrokenBarrierError:
            pass


def percentile(values: list[float], q: float) -> float:
    return float(np.percentile(values, q)) if values else float("nan")


def main(argv: list[str] | None = None) -> int:
    args = parse_args(argv)
    work = Path(tempfile.mkdtemp(prefix="refocus-load-"))
    model = args.depth_model or str(tiny_depth_anything(work / "tiny-depth-anything"))
    port = free_port()
    url = f"http://127.0.0.1:{port}/"
    server = start_server(model, port, work / "server.log")
    rss: dict[str, float] = {}
    try:
        wait_until_up(url, server)
        photos = [make_photos(work, user, args) for user in range(args.users)]
        rss["start"] = rss_mib(server.pid)
        results = Results()
        warm_rss: list[float] = []
        warmed = threading.Barrier(args.users, action=lambda: warm_rss.append(rss_mib(server.pid)))
        stop_at = time.monotonic() + args.max_seconds
        started = time.perf_counter()
        threads = [
            threading.Thread(target=run_user, args=(u, url, photos[u], args, results, warmed, stop_at), daemon=True)
            for u in range(args.users)
        ]
        for t in threads:
            t.start()
        timeline = []  # (seconds, RSS MiB) every 5 s: a leak climbs, fragmentation levels off
        while any(t.is_alive() for t in threads) and time.monotonic() < stop_at + args.call_timeout:
            timeline.append((time.perf_counter() - started, rss_mib(server.pid)))
            for t in threads:
                t.join(timeout=5.0 / len(threads))
        wall = time.perf_counter() - started
        rss["warm"] = warm_rss[0] if warm_rss else float("nan")
        rss["end"] = rss_mib(server.pid)
    finally:
        server.terminate()
        try:
            server.wait(timeout=30)
        except subprocess.TimeoutExpired:
            server.kill()

    growth = rss["end"] / rss["warm"] - 1.0
    total = args.users * args.calls
    lat = results.latencies
    print(f"server: python app.py --host 127.0.0.1 --port {port} --depth-model {model} --device cpu")
    print(f"photos: {args.photos} per user, {args.min_size[0]}x{args.min_size[1]} .. {args.max_size[0]}x{args.max_size[1]} px")
    print()
    print("| phase             | calls | p50 s | p95 s | max s |")
    print("|-------------------|------:|------:|------:|------:|")
    for name, values in [("warm-up", results.warmup_latencies), ("after warm-up", lat)]:
        if values:
            print(f"| {name:<17} | {len(values):5d} | {percentile(values, 50):5.2f} | {percentile(values, 95):5.2f} "
                  f"| {max(values):5.2f} |")  # fmt: skip
    print()
    print(f"server RSS: {rss['start']:.0f} MiB before, {rss['warm']:.0f} MiB after warm-up, {rss['end']:.0f} MiB at the end "
          f"(growth after warm-up {growth:+.1%})")  # fmt: skip
    step = max(1, len(timeline) // 12)
    print("RSS timeline (s: MiB): " + ", ".join(f"{t:.0f}: {m:.0f}" for t, m in timeline[::step]))
    for error in results.errors[:20]:
        print("ERROR", error)
    if len(results.errors) > 20:
        print(f"... and {len(results.errors) - 20} more errors")
    ok = not results.errors and results.done == total and growth < args.max_growth
    print(
        f"SUMMARY {args.users} users x {args.calls} calls: {results.done}/{total} ok, {len(results.errors)} errors, "
        f"p50 {percentile(lat, 50):.2f} s, p95 {percentile(lat, 95):.2f} s, {results.done / wall:.1f} calls/s, "
        f"RSS growth after warm-up {growth:+.1%} (limit {args.max_growth:.0%}): {'PASS' if ok else 'FAIL'}"
    )
    print(f"(server log: {work / 'server.log'})")
    return 0 if ok else 1


if __name__ == "__main__":
    sys.exit(main())
