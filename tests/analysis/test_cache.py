"""analysis/cache.py: the one get-or-compute sequence every pipeline uses."""

from __future__ import annotations

import numpy as np
import pytest

from classmap.analysis.cache import ResultCache, get_or_compute, make_key, read_cached


def _pack(value: float):
    return {"x": np.full(3, value)}, {"value": value}


def _unpack(arrays, meta):
    return ("cached", float(arrays["x"][0]), meta["value"])


def test_a_miss_computes_once_and_a_hit_is_unpacked(tmp_path):
    cache = ResultCache(tmp_path)
    key = make_key("test", "1", n=1)
    calls = []

    def compute():
        calls.append(1)
        return 2.5

    assert get_or_compute(cache, key, compute, pack=_pack, unpack=_unpack) == 2.5
    assert get_or_compute(cache, key, compute, pack=_pack, unpack=_unpack) == (
        "cached", 2.5, 2.5)
    assert len(calls) == 1
    assert read_cached(cache, key, _unpack) == ("cached", 2.5, 2.5)
    assert read_cached(cache, make_key("test", "1", n=2), _unpack) is None


def test_without_a_cache_every_call_computes():
    calls = []

    def compute():
        calls.append(1)
        return 1.0

    for _ in range(2):
        assert get_or_compute(None, "k", compute, pack=_pack, unpack=_unpack) == 1.0
    assert len(calls) == 2
    assert read_cached(None, "k", _unpack) is None


def test_a_failed_computation_stores_nothing(tmp_path):
    cache = ResultCache(tmp_path)

    def broken():
        raise RuntimeError("half-way")

    with pytest.raises(RuntimeError):
        get_or_compute(cache, "k", broken, pack=_pack, unpack=_unpack)
    assert "k" not in cache
