"""What a render computes from the photo and its depth map alone, kept for the next render.

A click moves the focus and nothing else: the photo, its depth map and the aperture stay. Two
steps of ``render_bokeh`` depend on those alone: the depth edges snapped to the photo's
(``depth_edges``, which reads the blur strength) and the photo in linear light with its
clipped highlights recovered (``colour``). On the app's 1024 px preview of the iPhone portrait
they are about a fifth of the render. ``Reuse`` keeps the latest result of each, for renders
of the same two arrays with the same settings.
"""

from __future__ import annotations

import threading
from typing import Any, Callable

Array = Any  # a numpy array or torch tensor (no import here: ``refocuser`` loads this without torch)


class Reuse:
    """Results of the focus-independent steps for one photo and depth map.

    Keyed by the identity of the arrays passed to ``render_bokeh`` (so a new depth map, e.g.
    after a brush stroke, is a new key) and by the settings each step reads; holds the latest
    result of each step. The arrays must not be changed in place while a ``Reuse`` serves
    them. Safe to share between threads (a result computed twice at once is the same).
    """

    def __init__(self) -> None:
        self._latest: dict[str, tuple[tuple, Array]] = {}
        self._lock = threading.Lock()

    def get(self, step: str, key: tuple[Any, ...], compute: Callable[[], Array]) -> Array:
        """``step``'s result for ``key`` (the input arrays first, then settings): the kept one
        when the key matches the latest (arrays by identity, settings by value), else
        ``compute()``, kept."""
        with self._lock:
            kept = self._latest.get(step)
        if kept is not None and _same(kept[0], key):
            return kept[1]
        result = compute()
        with self._lock:
            self._latest[step] = (key, result)
        return result


def _same(a: tuple, b: tuple) -> bool:
    """Arrays compared by identity, everything else by value."""
    return len(a) == len(b) and all(x is y if hasattr(x, "shape") else x == y for x, y in zip(a, b))
