"""Undo and redo of the user's focus and lens settings: a short, bounded history.

``History`` is immutable: every step returns a new one, so a UI can keep it in per-session state
and an event that fails half-way leaves the stored history as it was. Entries are any values the
caller compares with ``==``, typically ``(focus_xy, LensSettings)``.
"""

from __future__ import annotations

from dataclasses import dataclass, replace
from typing import Any

DEFAULT_LIMIT = 50  # steps kept: a session's worth of clicks, a few kB per session


@dataclass(frozen=True)
class History:
    """Past entries, the current one, and entries undone (redo-able).

    Attributes:
        past: older entries, oldest first (at most ``limit``).
        current: the entry shown now, or None before the first ``push``.
        future: undone entries, the next one to redo first.
        limit: how many past entries are kept; the oldest are forgotten.

    Example:
        >>> h = History().push("a").push("b")
        >>> h.undo().current, h.undo().redo().current
        ('a', 'b')
    """

    past: tuple[Any, ...] = ()
    current: Any = None
    future: tuple[Any, ...] = ()
    limit: int = DEFAULT_LIMIT

    def __post_init__(self) -> None:
        if self.limit < 1:
            raise ValueError(f"A history must keep at least 1 step, got limit={self.limit}.")

    def push(self, entry: Any) -> History:
        """``entry`` becomes current; the redo steps are dropped. Pushing the current one is a no-op."""
        if self.current is None:
            return replace(self, current=entry, future=())
        if entry == self.current:
            return self
        past = (*self.past, self.current)[-self.limit :]
        return replace(self, past=past, current=entry, future=())

    def reset(self, entry: Any) -> History:
        """A fresh history starting at ``entry`` (a new photo: its settings are not the old photo's)."""
        return History(current=entry, limit=self.limit)

    @property
    def can_undo(self) -> bool:
        return bool(self.past)

    @property
    def can_redo(self) -> bool:
        return bool(self.future)

    def undo(self) -> History:
        """One step back (unchanged when there is nothing to undo)."""
        if not self.past:
            return self
        return replace(self, past=self.past[:-1], current=self.past[-1], future=(self.current, *self.future))

    def redo(self) -> History:
        """One undone step forward again (unchanged when there is nothing to redo)."""
        if not self.future:
            return self
        return replace(self, past=(*self.past, self.current)[-self.limit :], current=self.future[0], future=self.future[1:])
