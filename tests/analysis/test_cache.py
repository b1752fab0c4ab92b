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


# --------------------------------------------------------------------------------------
# a cache that heals itself and never lies (issue 15, items 3 and 4)

import errno  # noqa: E402
import json  # noqa: E402
import logging  # noqa: E402
import subprocess  # noqa: E402
import sys  # noqa: E402
import threading  # noqa: E402
import time  # noqa: E402
from pathlib import Path  # noqa: E402

from classmap.analysis import cache as cache_module  # noqa: E402


def _counting_compute(calls):
    def compute():
        calls.append(1)
        return 2.5
    return compute


def _stored(tmp_path, value=2.5):
    cache = ResultCache(tmp_path / "cache")
    key = make_key("test", "1", n=1)
    cache.put(key, *_pack(value))
    return cache, key


def _npy(cache, key) -> Path:
    (folder,) = [p for p in (cache.directory / "arrays").iterdir() if p.name.startswith(key)]
    return folder / "x.npy"


def _recomputes_with_a_warning(cache, key, caplog):
    calls = []
    with caplog.at_level(logging.WARNING, logger="classmap.analysis.cache"):
        assert get_or_compute(cache, key, _counting_compute(calls),
                              pack=_pack, unpack=_unpack) == 2.5
    assert calls == [1]
    assert any("damaged" in r.getMessage() for r in caplog.records), caplog.text
    # healed: the next read is a verified hit
    assert read_cached(cache, key, _unpack) == ("cached", 2.5, 2.5)


@pytest.mark.parametrize("damage", ["truncated", "garbage", "missing", "same_size", "pickled"])
def test_a_damaged_array_file_is_dropped_and_recomputed(tmp_path, caplog, damage):
    cache, key = _stored(tmp_path, value=9.0)
    path = _npy(cache, key)
    data = path.read_bytes()
    if damage == "truncated":
        path.write_bytes(data[: len(data) // 2])
    elif damage == "garbage":
        path.write_bytes(b"not an npy file")
    elif damage == "missing":
        path.unlink()
    elif damage == "same_size":  # a readable array of the right size, other values
        path.write_bytes(data[:-8] + np.float64(1.0).tobytes())
    else:
        with open(path, "wb") as handle:
            np.save(handle, np.array([{"evil": 1}], dtype=object), allow_pickle=True)
    _recomputes_with_a_warning(cache, key, caplog)


def test_a_pickled_array_is_refused_even_with_a_matching_record(tmp_path, caplog):
    """Whoever rewrites the record too still cannot make the cache unpickle."""
    cache, key = _stored(tmp_path)
    path = _npy(cache, key)
    with open(path, "wb") as handle:
        np.save(handle, np.array([{"evil": 1}], dtype=object), allow_pickle=True)
    data = path.read_bytes()
    index = cache._index
    record = json.loads(index.get(key))
    record["arrays"]["x"].update(bytes=len(data), blake2b=cache_module.checksum(data),
                                 dtype="|O", shape=[1])
    index.set(key, json.dumps(record))
    _recomputes_with_a_warning(cache, key, caplog)


@pytest.mark.parametrize("raw", ["{not json", json.dumps(["a list"]),
                                 json.dumps({"format": 2, "folder": "../../etc", "arrays": {},
                                             "meta": {}})])
def test_a_corrupt_index_record_is_dropped_and_recomputed(tmp_path, caplog, raw):
    cache, key = _stored(tmp_path)
    cache._index.set(key, raw)
    _recomputes_with_a_warning(cache, key, caplog)


def test_a_pickled_index_record_is_never_unpickled(tmp_path, caplog):
    cache, key = _stored(tmp_path)
    cache._index.set(key, {"a": "dict diskcache would pickle"})
    _recomputes_with_a_warning(cache, key, caplog)


def test_validate_rejects_a_readable_but_wrong_entry(tmp_path, caplog):
    cache, key = _stored(tmp_path)
    cache.put(key, {"x": np.full(10, 2.5)}, {"value": 2.5})  # consistent, wrong shape

    def validate(result):
        if isinstance(result, tuple) and result[1] != 2.5:
            raise ValueError("wrong")

    def unpack(arrays, meta):
        if arrays["x"].shape != (3,):
            raise ValueError(f"x has shape {arrays['x'].shape}")
        return _unpack(arrays, meta)

    calls = []
    with caplog.at_level(logging.WARNING):
        assert get_or_compute(cache, key, _counting_compute(calls), pack=_pack, unpack=unpack,
                              validate=validate) == 2.5
    assert calls == [1] and "do not fit" in caplog.text
    cache.put(key, {"x": np.full(3, 7.0)}, {"value": 7.0})  # right shape, refused by validate
    assert get_or_compute(cache, key, _counting_compute(calls), pack=_pack, unpack=unpack,
                          validate=validate) == 2.5
    assert calls == [1, 1]
    assert read_cached(cache, key, unpack, validate) == ("cached", 2.5, 2.5)


def _small_head(tmp_path, classes=12):
    from classmap.analysis.loading.models import ModelSpec, load_head

    path = tmp_path / "head.npy"
    np.save(path, np.random.default_rng(0).normal(size=(classes, 20)).astype(np.float32))
    return path, load_head(ModelSpec(head=str(path)))


@pytest.mark.parametrize("damage", ["nan_linkage", "short_linkage", "small_similarity",
                                    "bad_order", "neighbour_out_of_range"])
def test_a_wrong_cached_weight_analysis_is_recomputed(tmp_path, caplog, damage):
    from classmap.analysis.pipelines.weights import (
        WeightParams, _pack_weights, analyse_weights, weight_analysis_key)

    _, head = _small_head(tmp_path)
    params = WeightParams(top_k=5)
    cache = ResultCache(tmp_path / "cache")
    right = analyse_weights(head, params, cache=cache, device="cpu")
    arrays, meta = _pack_weights(right)
    arrays = dict(arrays)
    if damage == "nan_linkage":
        arrays["linkage"] = np.full_like(right.linkage, np.nan)
    elif damage == "short_linkage":
        arrays["linkage"] = right.linkage[:-2]
    elif damage == "small_similarity":
        arrays["similarity"] = right.similarity[:10, :10]
    elif damage == "bad_order":
        arrays["leaf_order"] = np.zeros_like(right.leaf_order)
    else:
        arrays["neighbour_index"] = right.neighbours.index + 100
    key = weight_analysis_key(head, params)
    cache.put(key, arrays, meta)  # a consistent entry that lies
    with caplog.at_level(logging.WARNING):
        again = analyse_weights(head, params, cache=cache, device="cpu")
    assert not again.from_cache and "do not fit" in caplog.text
    np.testing.assert_array_equal(again.linkage, right.linkage)
    np.testing.assert_array_equal(again.similarity, right.similarity)
    assert analyse_weights(head, params, cache=cache, device="cpu").from_cache


def test_the_export_refuses_a_planted_10x10_similarity(tmp_path):
    """End to end: the CLI exports a correct 12 × 12 matrix and says why it recomputed."""
    from classmap.analysis.pipelines.weights import (
        WeightParams, _pack_weights, analyse_weights, weight_analysis_key)

    path, head = _small_head(tmp_path)
    cache = ResultCache(tmp_path / "cache")
    params = WeightParams(top_k=5)
    right = analyse_weights(head, params, cache=cache, device="cpu")
    arrays, meta = _pack_weights(right)
    cache.put(weight_analysis_key(head, params),
              {**arrays, "similarity": right.similarity[:10, :10]}, meta)
    cache.close()
    out = tmp_path / "out"
    done = subprocess.run(
        [sys.executable, "-m", "classmap.analysis.cli", "export", "--head", str(path),
         "--out", str(out), "--top-k", "5", "--quiet", "--cache-dir", str(tmp_path / "cache")],
        capture_output=True, text=True, timeout=120,
    )
    assert done.returncode == 0, done.stderr
    similarity = np.load(out / "similarity.npy", allow_pickle=False)
    np.testing.assert_allclose(similarity, right.similarity, rtol=1e-5, atol=1e-6)
    warnings = [line for line in done.stderr.splitlines() if line.startswith("WARNING")]
    assert len(warnings) == 1 and "similarity has shape (10, 10)" in warnings[0], done.stderr
    assert "Traceback" not in done.stderr


@pytest.mark.parametrize("damage", ["garbage", "truncated"])
def test_a_damaged_index_is_moved_aside_and_rebuilt(tmp_path, caplog, damage):
    cache, key = _stored(tmp_path)
    for i in range(50):
        cache.put(make_key("test", "1", n=i + 2), *_pack(float(i)))
    cache.close()
    database = tmp_path / "cache" / "index" / "cache.db"
    data = database.read_bytes()
    database.write_bytes(b"garbage " * 64 if damage == "garbage" else data[: len(data) // 3])
    with caplog.at_level(logging.WARNING):
        reopened = ResultCache(tmp_path / "cache")
        calls = []
        assert get_or_compute(reopened, key, _counting_compute(calls),
                              pack=_pack, unpack=_unpack) == 2.5
    assert calls == [1]
    warnings = [r for r in caplog.records if r.levelno >= logging.WARNING]
    assert len(warnings) == 1 and "moved it to index.damaged-" in warnings[0].getMessage()
    assert "\n" not in warnings[0].getMessage()
    assert len(list((tmp_path / "cache").glob("index.damaged-*"))) == 1
    assert read_cached(reopened, key, _unpack) == ("cached", 2.5, 2.5)
    # only the new entry's folder is left
    assert len([p for p in (tmp_path / "cache" / "arrays").iterdir()]) == 1


def test_an_index_damaged_while_open_is_rebuilt(tmp_path, caplog):
    cache, key = _stored(tmp_path)
    real = cache._index

    class Broken:
        def get(self, *args, **kwargs):
            raise cache_module.sqlite3.DatabaseError("database disk image is malformed")

        def close(self):
            real.close()

    cache._index = Broken()
    with caplog.at_level(logging.WARNING):
        assert read_cached(cache, key, _unpack) is None
    assert "moved it to index.damaged-" in caplog.text
    cache.put(key, *_pack(2.5))
    assert read_cached(cache, key, _unpack) == ("cached", 2.5, 2.5)


def test_a_full_disk_returns_the_result_without_caching_it(tmp_path, caplog, monkeypatch):
    cache = ResultCache(tmp_path / "cache")
    old_key = make_key("test", "1", n=0)
    cache.put(old_key, *_pack(1.0))

    def full(path, data):
        with open(path, "xb") as handle:
            handle.write(data[:10])
        raise OSError(errno.ENOSPC, "No space left on device")

    monkeypatch.setattr(cache_module, "_write_file", full)
    calls = []
    with caplog.at_level(logging.WARNING):
        for n in (1, 2, 3):
            key = make_key("test", "1", n=n)
            assert get_or_compute(cache, key, _counting_compute(calls),
                                  pack=_pack, unpack=_unpack) == 2.5
            assert key not in cache
    assert len(calls) == 3
    warnings = [r.getMessage() for r in caplog.records if r.levelno >= logging.WARNING]
    assert len(warnings) == 1 and "No space left on device" in warnings[0], warnings
    # consistent: what was there is still served, no half entries or staging folders
    assert read_cached(cache, old_key, _unpack) == ("cached", 1.0, 1.0)
    assert [p.name for p in (cache.directory / "arrays").iterdir()] == [
        p.name for p in (cache.directory / "arrays").iterdir() if p.name.startswith(old_key)]
    monkeypatch.undo()
    assert get_or_compute(cache, make_key("test", "1", n=1), _counting_compute(calls),
                          pack=_pack, unpack=_unpack) == 2.5
    assert read_cached(cache, make_key("test", "1", n=1), _unpack) == ("cached", 2.5, 2.5)


def test_the_export_on_a_full_disk_warns_once(tmp_path, caplog, monkeypatch, capsys):
    from classmap.analysis.cli import main

    path, _ = _small_head(tmp_path)

    def full(path, data):
        raise OSError(errno.ENOSPC, "No space left on device")

    monkeypatch.setattr(cache_module, "_write_file", full)
    out = tmp_path / "out"
    with caplog.at_level(logging.WARNING):
        code = main(["export", "--head", str(path), "--out", str(out), "--top-k", "5",
                     "--quiet", "--cache-dir", str(tmp_path / "cache")])
    assert code == 0, capsys.readouterr().err
    assert (out / "similarity.npy").exists()
    warnings = [r for r in caplog.records if r.levelno >= logging.WARNING]
    assert len(warnings) == 1, caplog.text


def test_two_puts_of_one_key_never_collide(tmp_path):
    cache = ResultCache(tmp_path / "cache")
    key = make_key("test", "1", n=1)
    errors = []

    def writer(value):
        try:
            for _ in range(20):
                cache.put(key, *_pack(value))
                hit = read_cached(cache, key, _unpack)
                assert hit is not None and hit[1] == hit[2]
        except Exception as error:  # noqa: BLE001 - collected for the assert
            errors.append(error)

    threads = [threading.Thread(target=writer, args=(float(v),)) for v in range(4)]
    for thread in threads:
        thread.start()
    for thread in threads:
        thread.join()
    assert errors == []
    assert len(list((cache.directory / "arrays").iterdir())) == 1


def _slow_compute(counter: Path):
    def compute():
        with open(counter, "a") as handle:
            handle.write("x")
        time.sleep(0.3)
        return 2.5
    return compute


def test_threads_computing_one_key_compute_once(tmp_path):
    cache = ResultCache(tmp_path / "cache")
    key = make_key("test", "1", n=1)
    counter = tmp_path / "calls"
    results, errors = [], []

    def ask():
        try:
            # each thread its own ResultCache, as the web app's callbacks may have
            results.append(get_or_compute(ResultCache(cache.directory), key,
                                          _slow_compute(counter), pack=_pack, unpack=_unpack))
        except Exception as error:  # noqa: BLE001
            errors.append(error)

    threads = [threading.Thread(target=ask) for _ in range(4)]
    for thread in threads:
        thread.start()
    for thread in threads:
        thread.join()
    assert errors == []
    assert counter.read_text() == "x"
    assert sorted(results, key=str) == sorted([2.5] + [("cached", 2.5, 2.5)] * 3, key=str)
    assert len(list((cache.directory / "arrays").iterdir())) == 1


_CHILD = """
import sys, time
from pathlib import Path
import numpy as np
from classmap.analysis.cache import ResultCache, get_or_compute
counter = Path(sys.argv[2])
def compute():
    with open(counter, "a") as handle:
        handle.write("x")
    time.sleep(0.5)
    return 2.5
result = get_or_compute(ResultCache(sys.argv[1]), "test-one-key", compute,
                        pack=lambda v: ({"x": np.full(3, v)}, {"value": v}),
                        unpack=lambda a, m: float(a["x"][0]))
print(result)
"""


def test_processes_computing_one_key_compute_once(tmp_path):
    counter = tmp_path / "calls"
    children = [
        subprocess.Popen([sys.executable, "-c", _CHILD, str(tmp_path / "cache"), str(counter)],
                         stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True)
        for _ in range(3)
    ]
    outputs = [child.communicate(timeout=60) for child in children]
    assert [child.returncode for child in children] == [0, 0, 0], outputs
    assert [out.strip() for out, _ in outputs] == ["2.5"] * 3
    assert all("Traceback" not in err and "WARNING" not in err for _, err in outputs), outputs
    assert counter.read_text() == "x"
    cache = ResultCache(tmp_path / "cache")
    assert read_cached(cache, "test-one-key", lambda a, m: float(a["x"][0])) == 2.5
    assert len(list((cache.directory / "arrays").iterdir())) == 1
