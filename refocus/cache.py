"""A thread-safe least-recently-used cache bounded in bytes, and the content key it is used with.

Depth is the slow step, so it is computed once per image content and kept here; the UI, the API
and the CLI share one cache through ``Refocuser``. ``functools.lru_cache`` bounds entries by
count, not by memory, and cachetools' ``LRUCache(getsizeof=...)`` would do but adds a
dependency for twenty lines, so this one is written here.
"""

from __future__ import annotations

import hashlib
import threading
from collections import OrderedDict
from typing import Callable, Generic, Hashable, TypeVar

import numpy as np

V = TypeVar("V")


def content_key(array: np.ndarray) -> str:
    """A hex digest of an array's shape, dtype and bytes: equal images give equal keys."""
    digest = hashlib.blake2b(digest_size=16)
    digest.update(f"{array.shape}{array.dtype}".encode())
    digest.update(np.ascontiguousarray(array).data)
    return digest.hexdigest()


class BytesLRU(Generic[V]):
    """Map keys to values, evicting the least recently used once their total size passes a bound.

    Args:
        max_bytes: the bound on the sum of ``size_of(value)``. A value larger than the bound on
            its own is returned to the caller but not kept.
        size_of: the size in bytes of a value.
    """

    def __init__(self, max_bytes: int, size_of: Callable[[V], int]):
        if max_bytes < 0:
            raise ValueError(f"max_bytes must be >= 0, got {max_bytes}.")
        self.max_bytes = max_bytes
        self._size_of = size_of
        self._items: OrderedDict[Hashable, tuple[V, int]] = OrderedDict()
        self._bytes = 0
        self._lock = threading.Lock()
        self._key_locks: dict[Hashable, threading.Lock] = {}

    def __len__(self) -> int:
        return len(self._items)

    def __contains__(self, key: Hashable) -> bool:
        return key in self._items

    @property
    def nbytes(self) -> int:
        return self._bytes

    def get(self, key: Hashable) -> V | None:
        with self._lock:
            item = self._items.get(key)
            if item is None:
                return None
            self._items.move_to_end(key)
            return item[0]

    def put(self, key: Hashable, value: V) -> None:
        size = self._size_of(value)
        with self._lock:
            if key in self._items:
                self._bytes -= self._items.pop(key)[1]
            if size > self.max_bytes:
                return
            self._items[key] = (value, size)
            self._bytes += size
            while self._bytes > self.max_bytes:
                _, (_, evicted) = self._items.popitem(last=False)
                self._bytes -= evicted

    def get_or_compute(self, key: Hashable, compute: Callable[[], V]) -> V:
        """The cached value, or ``compute()`` stored under ``key``.

        Two threads asking for the same missing key compute it once: the second waits for the
        first (a user double-clicking must not run the depth network twice).
        """
        value = self.get(key)
        if value is not None:
            return value
        with self._lock:
            key_lock = self._key_locks.setdefault(key, threading.Lock())
        with key_lock:
            value = self.get(key)
            if value is None:
                value = compute()
                self.put(key, value)
        with self._lock:
            self._key_locks.pop(key, None)
        return value


class OnDemand(Generic[V]):
    """A value computed on first use, once, even when several threads ask at the same time.

    Args:
        compute: makes the value (called at most once, unless it raises).
        nbytes: the value's size in bytes once computed, for byte-bounded caches that hold it.
    """

    def __init__(self, compute: Callable[[], V], nbytes: int):
        self._compute: Callable[[], V] | None = compute
        self._value: V | None = None
        self._lock = threading.Lock()
        self.nbytes = nbytes

    @classmethod
    def ready(cls, value: V, nbytes: int) -> "OnDemand[V]":
        """An already computed value."""
        done = cls(lambda: value, nbytes)
        done.get()
        return done

    @property
    def computed(self) -> bool:
        return self._compute is None

    def get(self) -> V:
        with self._lock:
            if self._compute is not None:
                self._value = self._compute()
                self._compute = None  # drops what the computation held (e.g. the full photo)
            return self._value  # type: ignore[return-value]
