"""Download NYU Depth v2's labeled frames and the official train/test split.

    python -m training.setup_data --data-dir data/nyu

fetches, from the dataset's official site (Silberman et al., ECCV 2012):
  nyu_depth_v2_labeled.mat  about 2.97 GB (2.8 GiB): 1449 aligned RGB + depth frames,
                            480x640, MATLAB v7.3 (HDF5), depth in metres (in-painted)
  splits.mat                a few kB: the official split, 795 train / 654 test frames

A partial download (``NAME.part``) resumes where it stopped; a finished file is checked against
the size the server announced and opened once to check its contents.

Larger alternatives, not used by ``training.train``: the raw dataset (``nyu_depth_v2_raw.zip``,
about 428 GB, or per-scene parts on the same site) holds the ~400K unsynchronised video frames.
Eigen et al. 2014 trained on ~120K frames sampled from the raw training scenes, and later work
(BTS, AdaBins, ...) uses a "sync" subset of ~24-50K frames extracted from the raw scenes with the
NYU toolbox. Those pipelines need the raw data and the toolbox's projection code; the 795
labeled training frames are what this project trains on, so expect worse numbers than the paper.
"""

from __future__ import annotations

import argparse
import http.client
import os
import socket
import sys
import urllib.error
import urllib.request
from pathlib import Path

from refocus.errors import RefocusError
from training.cli import exit_status

SITE = "http://horatio.cs.nyu.edu/mit/silberman"
LABELED_URL = f"{SITE}/nyu_depth_v2/nyu_depth_v2_labeled.mat"
SPLITS_URL = f"{SITE}/indoor_seg_sup/splits.mat"
# Sanity floors, in case a server sends no length (or an HTML error page with status 200).
MIN_BYTES = {"nyu_depth_v2_labeled.mat": 2_500_000_000, "splits.mat": 1_000}
CHUNK = 1 << 20


def _remote_total(response, offset: int) -> int | None:
    """The full file size the server announced: from Content-Range on a 206, else Content-Length."""
    content_range = response.headers.get("Content-Range")  # "bytes START-END/TOTAL"
    if response.status == 206 and content_range and "/" in content_range:
        total = content_range.rsplit("/", 1)[1].strip()
        return int(total) if total.isdigit() else None
    length = response.headers.get("Content-Length")
    return int(length) + (offset if response.status == 206 else 0) if length and length.isdigit() else None


def download(url: str, dest: str | os.PathLike, min_bytes: int = 0, timeout: float = 30.0, quiet: bool = False) -> Path:
    """Download ``url`` to ``dest``, resuming ``dest.part`` if an earlier run was interrupted.

    Args:
        url: http(s) address.
        dest: the final file; the data goes to ``dest + ".part"`` until it is complete.
        min_bytes: reject a finished file smaller than this (a sanity floor).
        timeout: seconds to wait for the server on connect and on each read.
        quiet: no progress bar.

    Returns:
        ``dest`` as a Path.

    Raises:
        RefocusError: the server is unreachable, answers with an error, or the file's size is
            not what it announced (the ``.part`` file is kept so a rerun resumes).
    """
    from tqdm import tqdm

    dest = Path(dest)
    part = dest.with_name(dest.name + ".part")
    offset = part.stat().st_size if part.exists() else 0
    request = urllib.request.Request(url, headers={"User-Agent": "refocus-setup-data"})
    if offset:
        request.add_header("Range", f"bytes={offset}-")
    try:
        response = urllib.request.urlopen(request, timeout=timeout)
    except urllib.error.HTTPError as error:
        if error.code == 416 and offset:  # range not satisfiable: the .part is already whole
            response = None
        else:
            raise RefocusError(f"{url} answered HTTP {error.code} ({error.reason}).") from error
    except (urllib.error.URLError, socket.timeout, ConnectionError) as error:
        reason = getattr(error, "reason", error)
        raise RefocusError(
            f"Could not reach {url} ({reason}). Check the network (a proxy may need HTTP_PROXY), or "
            f"download the file by hand into {dest.parent}; a rerun resumes a partial download."
        ) from error

    total = offset
    if response is not None:
        with response:
            if offset and response.status != 206:  # the server ignored Range: start over
                offset = 0
            total = _remote_total(response, offset)
            with open(part, "ab" if offset else "wb") as f, tqdm(
                total=total, initial=offset, unit="B", unit_scale=True, desc=dest.name, disable=quiet
            ) as bar:
                try:
                    while chunk := response.read(CHUNK):
                        f.write(chunk)
                        bar.update(len(chunk))
                except (OSError, http.client.HTTPException) as error:  # connection dropped mid-way
                    raise RefocusError(
                        f"The download of {url} stopped at {part.stat().st_size:,} bytes ({error}); "
                        "run the command again to resume."
                    ) from error
    size = part.stat().st_size
    if total is not None and size != total:
        raise RefocusError(
            f"{dest.name}: got {size:,} bytes but the server announced {total:,}; run the command again to resume "
            f"(or delete {part} to start over)."
        )
    if size < min_bytes:
        raise RefocusError(
            f"{dest.name} is only {size:,} bytes, expected at least {min_bytes:,}: the server sent something else "
            f"(an error page?). Delete {part} and try again, or fetch the file by hand."
        )
    os.replace(part, dest)
    return dest


def check_files(labeled: Path, splits: Path) -> str:
    """Open both files as the training code will; returns a one-line description."""
    from training.nyu import check_layout, read_split

    train, test = read_split(splits, "train"), read_split(splits, "test")
    frames = check_layout(labeled)
    return f"{frames} frames, split {len(train)} train / {len(test)} test"


def fetch(args: argparse.Namespace) -> None:
    """Download what is missing of both files into ``args.data_dir`` and check them."""
    data_dir = Path(args.data_dir)
    data_dir.mkdir(parents=True, exist_ok=True)
    paths = {}
    for name, url in (("splits.mat", args.splits_url), ("nyu_depth_v2_labeled.mat", args.labeled_url)):
        dest = data_dir / name
        if dest.is_file() and dest.stat().st_size >= MIN_BYTES[name]:
            print(f"{dest} is already here", file=sys.stderr)
        else:
            download(url, dest, MIN_BYTES[name], args.timeout, args.quiet)
        paths[name] = dest
    summary = check_files(paths["nyu_depth_v2_labeled.mat"], paths["splits.mat"])
    print(f"NYU Depth v2 ready in {data_dir}: {summary}")


def main(argv: list[str] | None = None) -> int:
    """Download and check both files; the exit status (1 with a message on an error)."""
    p = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    p.add_argument("--data-dir", default="data/nyu", help="where to put the files (default: data/nyu)")
    p.add_argument("--labeled-url", default=LABELED_URL, help="mirror of nyu_depth_v2_labeled.mat")
    p.add_argument("--splits-url", default=SPLITS_URL, help="mirror of splits.mat")
    p.add_argument("--timeout", type=float, default=30.0, help="seconds to wait for the server")
    p.add_argument("--quiet", action="store_true")
    return exit_status(lambda: fetch(p.parse_args(argv)))


if __name__ == "__main__":
    sys.exit(main())
