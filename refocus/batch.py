"""Many photos with the same settings: inputs from files, globs and folders, one result each.

Depth is computed once per photo (through ``Refocuser.prepare``); a photo that fails is reported
by name and the others still run, so a night's batch is not lost to one broken file.
"""

from __future__ import annotations

import glob
import os
from dataclasses import dataclass
from pathlib import Path
from typing import Iterator

from refocus.errors import RefocusError
from refocus.focus import FocusTarget
from refocus.io import DEFAULT_MAX_PIXELS, load_photo, save_png
from refocus.refocuser import LensSettings, Refocuser

# What a folder contributes: the formats ``load_photo`` decodes (HEIC/AVIF when a plugin is there).
PHOTO_EXTENSIONS = {".jpg", ".jpeg", ".png", ".tif", ".tiff", ".webp", ".bmp", ".heic", ".heif", ".avif"}


@dataclass(frozen=True)
class BatchResult:
    """One photo's outcome: ``output`` written, or ``error`` (a sentence) when it failed."""

    source: Path
    output: Path | None = None
    error: str | None = None

    @property
    def ok(self) -> bool:
        return self.error is None


def expand_inputs(items: list[str]) -> list[Path]:
    """Files named by ``items``: paths as given, folders' photos, and glob patterns' matches.

    A path that does not exist is kept (it fails later, by name, like any unreadable photo);
    a folder without photos or a pattern matching nothing is an error now: it is a mistake in
    the command, not in a photo. Duplicates are dropped, order kept.
    """
    paths: list[Path] = []
    for item in items:
        if os.path.isdir(item):
            found = sorted(p for p in Path(item).iterdir() if p.is_file() and p.suffix.lower() in PHOTO_EXTENSIONS)
            if not found:
                raise RefocusError(f"The folder {item!r} holds no photos ({', '.join(sorted(PHOTO_EXTENSIONS))}).")
            paths += found
        elif glob.has_magic(item) and not os.path.exists(item):
            found = sorted(Path(p) for p in glob.glob(item, recursive=True) if os.path.isfile(p))
            if not found:
                raise RefocusError(f"No files match {item!r}.")
            paths += found
        else:
            paths.append(Path(item))
    return list(dict.fromkeys(paths))


def output_paths(sources: list[Path], out_dir: Path, extension: str = ".png") -> list[Path]:
    """One output per source in ``out_dir``: ``NAME.png``; a clashing name gets ``NAME-2.png``, ..."""
    taken: set[str] = set()
    outputs = []
    for source in sources:
        name, count = source.stem + extension, 1
        while name.lower() in taken:  # lower: two names differing in case clash on some disks
            count += 1
            name = f"{source.stem}-{count}{extension}"
        taken.add(name.lower())
        outputs.append(out_dir / name)
    return outputs


def refocus_many(
    refocuser: Refocuser,
    sources: list[Path],
    out_dir: str | os.PathLike,
    focus: FocusTarget,
    settings: LensSettings,
    *,
    max_pixels: int = DEFAULT_MAX_PIXELS,
) -> Iterator[BatchResult]:
    """Refocus each photo at ``focus`` (auto, percent or pixels) and write ``out_dir/NAME.png``.

    Args:
        refocuser: predicts depth (once per photo) and renders.
        sources: photo paths (``expand_inputs``).
        out_dir: the folder for the results; created if missing.
        focus: where to focus, resolved per photo (``FocusTarget.point_in``).
        settings: the same lens settings for all.
        max_pixels: the largest photo accepted, as ``load_photo``.

    Yields:
        A ``BatchResult`` per photo, in order, as each finishes.
    """
    out_dir = Path(out_dir)
    out_dir.mkdir(parents=True, exist_ok=True)
    for source, output in zip(sources, output_paths(sources, out_dir)):
        try:
            photo = load_photo(source, max_pixels=max_pixels)
            prepared = refocuser.prepare(photo)
            point = focus.point_in(prepared.depth.disparity, prepared.subject_area)
            save_png(output, refocuser.render_full(photo, prepared, point, settings))
        except (RefocusError, OSError) as error:
            yield BatchResult(source, error=str(error))
        except Exception as error:  # noqa: BLE001 - one photo's unexpected failure must not end the batch
            yield BatchResult(source, error=f"{type(error).__name__}: {error}")
        else:
            yield BatchResult(source, output=output)
