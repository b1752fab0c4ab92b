"""Reading a big head back from the cache hashes it once (issue #12): arrays are views of
the file's bytes (checked against ``np.load``), file digests are remembered by stat, and
the head's digest is stored with its entry."""

from __future__ import annotations

import hashlib
import io

import numpy as np
import pytest

import classmap.analysis.cache as cache_module
from classmap.analysis.cache import (
    ResultCache,
    digest_arrays,
    digest_file,
    file_digests_in,
    npy_array,
)


@pytest.mark.parametrize("array", [
    np.arange(12.0).reshape(3, 4),
    np.asfortranarray(np.arange(24, dtype=np.float32).reshape(2, 3, 4)),
    np.zeros((0, 5), dtype=np.int64),
    np.array(3.5),
    np.arange(7, dtype=">i4"),
    np.array([True, False]),
    np.zeros((3,), dtype=[("a", "<f4"), ("b", "<i2")]),
], ids=["c-order", "fortran", "empty", "0-d", "big-endian", "bool", "structured"])
def test_npy_array_reads_what_np_load_reads(array):
    buffer = io.BytesIO()
    np.save(buffer, array)
    ours = npy_array(bytearray(buffer.getvalue()))
    reference = np.load(io.BytesIO(buffer.getvalue()), allow_pickle=False)
    assert ours.dtype == reference.dtype and ours.shape == reference.shape
    assert ours.tobytes(order="A") == reference.tobytes(order="A")
    assert ours.flags.writeable


def test_npy_array_refuses_objects_and_short_payloads():
    buffer = io.BytesIO()
    np.save(buffer, np.array([1, "x"], dtype=object), allow_pickle=True)
    with pytest.raises(ValueError, match="never loaded"):
        npy_array(bytearray(buffer.getvalue()))
    buffer = io.BytesIO()
    np.save(buffer, np.arange(10.0))
    with pytest.raises(ValueError, match="shorter"):
        npy_array(bytearray(buffer.getvalue()[:-8]))


def test_a_cached_array_comes_back_equal_and_writable(tmp_path):
    cache = ResultCache(tmp_path / "cache")
    weight = np.random.default_rng(0).normal(size=(300, 17)).astype(np.float32)
    cache.put("k", {"weight": weight, "order": np.arange(5)}, {"x": 1})
    arrays, meta = ResultCache(tmp_path / "cache").get("k")
    np.testing.assert_array_equal(arrays["weight"], weight)
    np.testing.assert_array_equal(arrays["order"], np.arange(5))
    arrays["weight"][0, 0] = 7.0  # writable, as np.load's arrays are
    assert meta == {"x": 1}


@pytest.fixture()
def counted_hashes(monkeypatch):
    """Count the files :func:`digest_file` reads through; nothing counts as racy."""
    calls: list[str] = []
    real = cache_module._sha256_file

    def counting(path, chunk_bytes):
        calls.append(str(path))
        return real(path, chunk_bytes)

    monkeypatch.setattr(cache_module, "_sha256_file", counting)
    monkeypatch.setattr(cache_module, "RACY_SECONDS", 0.0)
    return calls


def test_a_file_digest_is_remembered_until_the_file_changes(tmp_path, counted_hashes):
    path = tmp_path / "head.bin"
    path.write_bytes(b"a" * 1000)
    cache = ResultCache(tmp_path / "cache")
    with file_digests_in(cache):
        first = digest_file(path)
    with file_digests_in(ResultCache(tmp_path / "cache")):  # another process's handle
        again = digest_file(path)
    assert first == again == hashlib.sha256(b"a" * 1000).hexdigest()
    assert len(counted_hashes) == 1
    assert digest_file(path) == first and len(counted_hashes) == 2  # no memo outside
    path.write_bytes(b"b" * 1000)  # same size; a new change time
    with file_digests_in(cache):
        changed = digest_file(path)
    assert changed == hashlib.sha256(b"b" * 1000).hexdigest() and len(counted_hashes) == 3


def test_a_file_changed_just_now_is_not_remembered(tmp_path, counted_hashes, monkeypatch):
    monkeypatch.setattr(cache_module, "RACY_SECONDS", 3600.0)
    path = tmp_path / "head.bin"
    path.write_bytes(b"c" * 10)
    cache = ResultCache(tmp_path / "cache")
    with file_digests_in(cache):
        digest_file(path)
        digest_file(path)
    assert len(counted_hashes) == 2


def test_a_reopened_head_is_hashed_once(tmp_path, counted_hashes, monkeypatch):
    """The second load (a fresh cache handle, as in another process) reads the file's
    digest from the memo and the head's digest from its entry: neither the file nor the
    arrays are hashed again (the entry's checksum is the one pass over the bytes)."""
    import classmap.analysis.loading.models as models
    from classmap.analysis.loading.classifier import ModelSpec

    weight = np.random.default_rng(1).normal(size=(40, 8)).astype(np.float32)
    np.save(tmp_path / "head.npy", weight)
    spec = ModelSpec(head=str(tmp_path / "head.npy"))
    first = models.load_head(spec, ResultCache(tmp_path / "cache"))
    hashed = len(counted_hashes)
    assert hashed == 1 and first.digest == digest_arrays(weight, None)

    def no_rehash(*arrays):
        raise AssertionError("the head's arrays were hashed again")

    monkeypatch.setattr(models, "digest_arrays", no_rehash)
    again = models.load_head(spec, ResultCache(tmp_path / "cache"))
    assert len(counted_hashes) == hashed
    assert again.digest == first.digest
    np.testing.assert_array_equal(again.weight, weight)
