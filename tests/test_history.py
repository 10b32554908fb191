"""Undo/redo history of focus and settings."""

import pytest

from refocus.history import History
from refocus.refocuser import LensSettings


def step(x: float, f: float = 2.8):
    return ((x, 10.0), LensSettings(f_number=f))


def test_undo_then_redo_walks_back_and_forth():
    h = History().push(step(1)).push(step(2)).push(step(2, 1.4))
    assert h.undo().current == step(2)
    assert h.undo().undo().current == step(1)
    assert h.undo().undo().redo().redo().current == step(2, 1.4)


def test_a_new_step_after_undo_drops_the_redo_steps():
    h = History().push(step(1)).push(step(2)).undo().push(step(3))
    assert h.current == step(3) and not h.can_redo
    assert h.undo().current == step(1)


def test_repeating_the_current_step_adds_nothing():
    h = History().push(step(1)).push(step(1))  # e.g. a slider released where it was
    assert not h.can_undo


def test_undo_and_redo_at_the_ends_change_nothing():
    h = History().push(step(1))
    assert h.undo() == h and h.redo() == h


def test_history_is_bounded_and_forgets_the_oldest():
    h = History(limit=3)
    for x in range(10):
        h = h.push(step(x))
    assert len(h.past) == 3 and h.past[0] == step(6)
    for _ in range(10):
        h = h.undo()
    assert h.current == step(6)


def test_steps_do_not_modify_the_history_they_came_from():
    h = History().push(step(1)).push(step(2))
    h.undo()
    assert h.current == step(2)


def test_reset_starts_over_for_a_new_photo():
    h = History(limit=5).push(step(1)).push(step(2)).reset(step(0))
    assert h.current == step(0) and not h.can_undo and not h.can_redo and h.limit == 5


def test_limit_must_be_positive():
    with pytest.raises(ValueError, match="at least 1"):
        History(limit=0)
