"""refocus: turn one photo into a shallow-depth-of-field photo.

The public names are imported lazily so that ``import refocus`` stays cheap (torch and
transformers load only when a renderer or a depth model is first used).
"""

from __future__ import annotations

import importlib
from typing import TYPE_CHECKING

__version__ = "0.1.0"

_PUBLIC = {
    "render_bokeh": "refocus.render",
    "load_depth_model": "refocus.depth",
    "DepthResult": "refocus.depth.base",
    "RefocusError": "refocus.errors",
}

__all__ = [*_PUBLIC, "__version__"]

if TYPE_CHECKING:  # pragma: no cover - for type checkers and IDEs only
    from refocus.render import render_bokeh
    from refocus.depth import load_depth_model
    from refocus.depth.base import DepthResult
    from refocus.errors import RefocusError


def __getattr__(name: str):
    if name in _PUBLIC:
        return getattr(importlib.import_module(_PUBLIC[name]), name)
    raise AttributeError(f"module 'refocus' has no attribute {name!r}")
