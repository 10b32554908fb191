"""Work shared between the CPU's cores: independent tasks run at once on threads.

numpy's and OpenCV's loops release the GIL, so the renderer's pieces of a frame run in parallel
on threads of one process (no copies, no start-up cost). The earlier, finer splits (a layer's
tiles, the colour conversion beside the depth edges) gained nothing on the 2-core CPU, their
threads contending for the memory bus; horizontal parts of a frame do (see ``README.md``).
"""

from __future__ import annotations

import os
import threading
from collections.abc import Callable, Sequence
from concurrent.futures import ThreadPoolExecutor
from typing import TypeVar

T = TypeVar("T")

# Threads at work at once, the caller's included. At most two: the machines this was measured
# on have two cores, and more pieces at once also hold more memory at once.
WORKERS = min(len(os.sched_getaffinity(0)) if hasattr(os, "sched_getaffinity") else os.cpu_count() or 1, 2)
_pool = ThreadPoolExecutor(max(WORKERS - 1, 1), thread_name_prefix="refocus")  # threads start on first use


def run_all(tasks: Sequence[Callable[[], T]], finished: Callable[[int], None] | None = None,
            at_once: int = WORKERS) -> list[T]:
    """The results of ``tasks`` (callables without arguments), in order.

    The caller's thread and threads of a shared pool, ``min(at_once, WORKERS)`` in all, take
    the tasks in order, each the next one not yet taken, so uneven tasks even out. A helper
    that has not started when the caller runs out of tasks is dropped, so a task may itself
    call ``run_all`` (and several callers may share the pool) without waiting forever.

    ``finished(count)``, if given, is called in the caller's thread once per task done, with
    the count so far (1, 2, ... in order; a helper's task is counted after the caller's next
    one, or at the end), and may raise to stop the rest. The first exception stops the taking
    and is raised once no task of this call still runs.
    """
    n = len(tasks)
    results: list = [None] * n
    order, lock, failed = iter(range(n)), threading.Lock(), threading.Event()
    done, told = [0], [0]  # tasks done, and the count told to ``finished``

    def tell() -> None:
        while finished is not None and told[0] < done[0]:
            told[0] += 1
            finished(told[0])

    def take(caller: bool) -> None:
        while not failed.is_set():
            with lock:
                i = next(order, None)
            if i is None:
                return
            try:
                results[i] = tasks[i]()
                with lock:
                    done[0] += 1
                if caller:
                    tell()
            except BaseException:
                failed.set()
                raise

    helpers = [_pool.submit(take, False) for _ in range(min(at_once, WORKERS, n) - 1)]
    try:
        take(True)
    finally:
        for helper in helpers:
            if not helper.cancel():
                helper.result()  # waits for it; raises its exception
    tell()
    return results
