"""refocus.parallel.run_all: tasks at once on the CPU's cores, results in order, no deadlock when
tasks nest or callers share the pool, errors and progress as a caller expects."""

from __future__ import annotations

import threading
import time

import pytest

from refocus import parallel
from refocus.parallel import run_all


@pytest.fixture
def two_workers(monkeypatch):
    """Two threads at work even on a one-core machine (the shared pool has at least one)."""
    monkeypatch.setattr(parallel, "WORKERS", 2)


def test_results_come_in_order_from_two_threads_at_once(two_workers):
    threads, both = set(), threading.Barrier(2, timeout=10)

    def task(i):
        threads.add(threading.get_ident())
        if i < 2:
            both.wait()  # the first two run at once, or this times out
        time.sleep(0.01 * (5 - i))  # uneven, finishing out of order
        return i * i

    assert run_all([lambda i=i: task(i) for i in range(5)]) == [0, 1, 4, 9, 16]
    assert len(threads) == 2


def test_nested_calls_and_a_busy_pool_do_not_wait_forever(two_workers):
    """Each task splits itself again (the full-resolution strips whose render splits into
    parts), while another caller keeps the pool's one thread busy."""
    release, out = threading.Event(), []
    busy = parallel._pool.submit(release.wait, 60)
    caller = threading.Thread(target=lambda: out.append(
        run_all([lambda i=i: run_all([lambda j=j: 10 * i + j for j in range(3)]) for i in range(3)])), daemon=True)
    caller.start()
    caller.join(10)  # a deadlock fails here instead of hanging the suite
    finished = not caller.is_alive()
    release.set()
    busy.result()
    assert finished and out == [[[0, 1, 2], [10, 11, 12], [20, 21, 22]]]


def test_progress_counts_every_task_in_the_callers_thread_and_can_stop_the_rest(two_workers):
    caller, seen = threading.get_ident(), []

    def finished(count):
        assert threading.get_ident() == caller  # e.g. a Gradio progress bar
        seen.append(count)

    run_all([lambda: time.sleep(0.01)] * 6, finished)
    assert seen == [1, 2, 3, 4, 5, 6]

    ran = []

    def stop(count):
        raise RuntimeError("cancelled")

    with pytest.raises(RuntimeError, match="cancelled"):
        run_all([lambda i=i: ran.append(i) or time.sleep(0.02) for i in range(8)], stop)
    assert len(ran) < 8  # stopped early; nothing of this call still runs now
    count = len(ran)
    time.sleep(0.1)
    assert len(ran) == count


def test_a_task_error_is_raised_and_stops_the_taking(two_workers):
    ran = []

    def task(i):
        ran.append(i)
        if i == 1:
            raise ValueError("bad strip")
        time.sleep(0.02)

    with pytest.raises(ValueError, match="bad strip"):
        run_all([lambda i=i: task(i) for i in range(10)])
    assert len(ran) < 10


def test_at_once_caps_the_threads_of_one_call(two_workers):
    """(Large strips of a full-resolution render go one at a time, for memory.)"""
    threads = set()
    run_all([lambda: threads.add(threading.get_ident()) or time.sleep(0.01)] * 4, at_once=1)
    assert threads == {threading.get_ident()}
