"""The byte-bounded LRU cache that keeps depth once per image."""

import threading
import time

import numpy as np

from refocus.cache import BytesLRU, content_key


def test_evicts_least_recently_used_beyond_the_byte_bound():
    cache = BytesLRU(max_bytes=300, size_of=len)
    cache.put("a", b"x" * 100)
    cache.put("b", b"x" * 100)
    cache.put("c", b"x" * 100)
    cache.get("a")  # now b is the least recently used
    cache.put("d", b"x" * 100)
    assert "b" not in cache and {"a", "c", "d"} <= {k for k in ("a", "c", "d") if k in cache}
    assert cache.nbytes == 300


def test_a_value_larger_than_the_bound_is_not_kept():
    cache = BytesLRU(max_bytes=10, size_of=len)
    assert cache.get_or_compute("big", lambda: b"x" * 11) == b"x" * 11
    assert len(cache) == 0 and cache.nbytes == 0


def test_compute_runs_once_for_concurrent_requests_of_the_same_key():
    cache = BytesLRU(max_bytes=1000, size_of=len)
    calls = []

    def slow():
        calls.append(1)
        time.sleep(0.2)
        return b"value"

    threads = [threading.Thread(target=cache.get_or_compute, args=("k", slow)) for _ in range(4)]
    for t in threads:
        t.start()
    for t in threads:
        t.join()
    assert len(calls) == 1


def test_content_key_depends_on_content_shape_and_dtype():
    a = np.zeros((4, 4), np.float32)
    assert content_key(a) == content_key(a.copy())
    b = a.copy()
    b[0, 0] = 1e-6
    assert content_key(a) != content_key(b)
    assert content_key(a) != content_key(a.reshape(2, 8))
    assert content_key(a) != content_key(a.astype(np.float64))
