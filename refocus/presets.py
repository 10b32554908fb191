"""A look saved to a small JSON file and reused across photos (UI download/upload, CLI ``--preset``).

A preset holds the lens controls of ``LensSettings`` (every field, so a control added there is
saved too) and a format marker::

    {"refocus_preset": 1, "f_number": 1.8, "shape": "6-blade", "focus_range": 0.1, ...}

Missing controls take their defaults; unknown keys are refused, since a typo that silently
does nothing is worse than an error. Values are checked by ``LensSettings`` itself.
"""

from __future__ import annotations

import dataclasses
import json
import os
from pathlib import Path

from refocus.errors import RefocusError
from refocus.refocuser import LensSettings

PRESET_FORMAT = 1
MAX_PRESET_BYTES = 64 * 1024  # a preset is a few hundred bytes; refuse to parse anything big


def setting_names() -> list[str]:
    """The controls a preset holds, as named in ``LensSettings`` (and the CLI's option names)."""
    return [f.name for f in dataclasses.fields(LensSettings)]


def preset_to_dict(settings: LensSettings) -> dict:
    """``settings`` as a JSON-ready dict with the format marker first."""
    return {"refocus_preset": PRESET_FORMAT, **dataclasses.asdict(settings)}


def preset_from_dict(values) -> LensSettings:
    """The ``LensSettings`` a preset dict describes, or a ``RefocusError`` saying what is wrong."""
    if not isinstance(values, dict):
        raise RefocusError("A preset must be a JSON object such as {\"f_number\": 2.8}.")
    values = dict(values)
    version = values.pop("refocus_preset", PRESET_FORMAT)
    if version != PRESET_FORMAT:
        raise RefocusError(f"This preset has format {version!r}; this version of refocus reads format {PRESET_FORMAT}.")
    unknown = sorted(str(k) for k in values if k not in setting_names())
    if unknown:
        raise RefocusError(
            f"Unknown preset setting(s) {', '.join(unknown)[:200]}; known: {', '.join(setting_names())}."
        )
    return LensSettings(**values)


def preset_to_json(settings: LensSettings) -> str:
    return json.dumps(preset_to_dict(settings), indent=2) + "\n"


def preset_from_json(text: str | bytes) -> LensSettings:
    """Parse a preset file's text; bad JSON or bad values raise ``RefocusError``."""
    if len(text) > MAX_PRESET_BYTES:
        raise RefocusError(f"A preset file is at most {MAX_PRESET_BYTES // 1024} KiB; this one is larger.")
    try:
        values = json.loads(text)
    except (json.JSONDecodeError, UnicodeDecodeError) as error:
        raise RefocusError(f"The preset is not valid JSON ({error}).") from None
    return preset_from_dict(values)


def save_preset(path: str | os.PathLike, settings: LensSettings) -> Path:
    """Write ``settings`` as a preset file. Returns the path."""
    path = Path(path)
    path.write_text(preset_to_json(settings), encoding="utf-8")
    return path


def load_preset(path: str | os.PathLike) -> LensSettings:
    """Read a preset file; a missing, unreadable or invalid file raises ``RefocusError``."""
    try:
        with open(path, "rb") as file:
            data = file.read(MAX_PRESET_BYTES + 1)
    except OSError as error:
        raise RefocusError(f"Cannot read the preset {os.fspath(path)!r}: {error.strerror or error}.") from None
    try:
        return preset_from_json(data)
    except RefocusError as error:
        raise RefocusError(f"Preset {os.fspath(path)!r}: {error}") from None
