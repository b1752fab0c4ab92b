"""Result cache: a diskcache index of JSON metadata plus arrays as ``.npy`` files.

Why not pickle everything into diskcache? Pickle runs code on load, and whoever can
write the cache folder could then run code in the app. So the index holds only
JSON strings (diskcache stores ``str`` natively, no pickle), and arrays live in
``arrays/<key>/<name>.npy`` read with ``allow_pickle=False``. The folder is created
with mode 0700.

An entry is written to a temporary folder and renamed into place, then indexed:
a crash half-way leaves no entry, never a half-written one.

Keys come from :func:`make_key`: a SHA-256 over the kind of result, its code
version and every parameter, so a change in an algorithm (bump its version) or in
any input gives a new key.
"""

from __future__ import annotations

import hashlib
import json
import logging
import os
import shutil
import tempfile
from collections.abc import Callable, Mapping
from pathlib import Path
from typing import Any, TypeVar

import diskcache
import numpy as np

from classmap.analysis.settings import default_cache_dir

log = logging.getLogger(__name__)

T = TypeVar("T")
Arrays = dict[str, np.ndarray]
Meta = dict[str, Any]

def make_key(kind: str, version: str, **parts: Any) -> str:
    """A stable hex key for a result of ``kind`` computed by code ``version`` from ``parts``.

    ``parts`` must be JSON-serialisable (strings, numbers, lists, dicts).
    """
    payload = json.dumps({"kind": kind, "version": version, **parts}, sort_keys=True, default=str)
    return f"{kind}-{hashlib.sha256(payload.encode()).hexdigest()[:32]}"


def digest_arrays(*arrays: np.ndarray | None) -> str:
    """SHA-256 over the dtype, shape and bytes of each array (``None`` counts as absent)."""
    sha = hashlib.sha256()
    for array in arrays:
        if array is None:
            sha.update(b"none")
            continue
        contiguous = np.ascontiguousarray(array)
        sha.update(f"{contiguous.dtype.str}{contiguous.shape}".encode())
        sha.update(contiguous.tobytes())
    return sha.hexdigest()


def digest_file(path: Path, chunk_bytes: int = 1 << 22) -> str:
    """SHA-256 of a file's bytes."""
    sha = hashlib.sha256()
    with open(path, "rb") as handle:
        for chunk in iter(lambda: handle.read(chunk_bytes), b""):
            sha.update(chunk)
    return sha.hexdigest()


class ResultCache:
    """Arrays and JSON metadata under one private folder.

    Parameters
    ----------
    directory : path of the cache folder; created with mode 0700 if missing.
    """

    def __init__(self, directory: Path | str | None = None) -> None:
        self.directory = Path(directory) if directory is not None else default_cache_dir()
        self.directory.mkdir(parents=True, exist_ok=True, mode=0o700)
        self._arrays_dir = self.directory / "arrays"
        self._arrays_dir.mkdir(exist_ok=True, mode=0o700)
        self._index = diskcache.Cache(str(self.directory / "index"))

    # -- arrays ---------------------------------------------------------------------
    def get(self, key: str) -> tuple[dict[str, np.ndarray], dict[str, Any]] | None:
        """``(arrays, meta)`` stored under ``key``, or ``None`` on a miss.

        An entry whose files went missing is treated as a miss and dropped.
        """
        raw = self._index.get(key)
        if raw is None:
            return None
        entry = json.loads(raw)
        folder = self._arrays_dir / key
        try:
            arrays = {
                name: np.load(folder / f"{name}.npy", allow_pickle=False)
                for name in entry["arrays"]
            }
        except (OSError, ValueError) as error:
            log.warning("cache entry %s is damaged (%s); recomputing", key, error)
            self.delete(key)
            return None
        return arrays, entry["meta"]

    def put(
        self, key: str, arrays: Mapping[str, np.ndarray], meta: Mapping[str, Any] | None = None
    ) -> None:
        """Store ``arrays`` (numeric, no objects) and JSON ``meta`` under ``key`` atomically."""
        for name, array in arrays.items():
            if np.asarray(array).dtype == object:
                raise TypeError(f"cache array {name!r} has dtype object; store numbers only")
        staging = Path(tempfile.mkdtemp(prefix=f".{key}-", dir=self._arrays_dir))
        try:
            for name, array in arrays.items():
                np.save(staging / f"{name}.npy", np.asarray(array), allow_pickle=False)
            final = self._arrays_dir / key
            if final.exists():
                shutil.rmtree(final)
            os.replace(staging, final)
        except BaseException:
            shutil.rmtree(staging, ignore_errors=True)
            raise
        entry = {"arrays": sorted(arrays), "meta": dict(meta or {})}
        self._index.set(key, json.dumps(entry, default=str))

    def delete(self, key: str) -> None:
        """Remove ``key`` and its arrays (no error if absent)."""
        self._index.pop(key, None)
        shutil.rmtree(self._arrays_dir / key, ignore_errors=True)

    def __contains__(self, key: str) -> bool:
        return key in self._index

    def clear(self) -> None:
        """Remove every entry."""
        self._index.clear()
        shutil.rmtree(self._arrays_dir, ignore_errors=True)
        self._arrays_dir.mkdir(exist_ok=True, mode=0o700)

    def close(self) -> None:
        self._index.close()


# --------------------------------------------------------------------------------------
# the one get-or-compute sequence every pipeline uses


def read_cached(
    cache: ResultCache | None, key: str, unpack: Callable[[Arrays, Meta], T]
) -> T | None:
    """The result stored under ``key``, rebuilt by ``unpack(arrays, meta)``; ``None`` on a
    miss or without a cache. Cheap: reads ``.npy`` files, computes nothing."""
    if cache is None:
        return None
    hit = cache.get(key)
    return None if hit is None else unpack(*hit)


def get_or_compute(
    cache: ResultCache | None,
    key: str,
    compute: Callable[[], T],
    *,
    pack: Callable[[T], tuple[Mapping[str, np.ndarray], Mapping[str, Any]]],
    unpack: Callable[[Arrays, Meta], T],
) -> T:
    """Serve ``key`` from ``cache``, else ``compute()`` it and store ``pack(result)``.

    Parameters
    ----------
    cache : the ResultCache, or None to always compute (and store nothing)
    key : from :func:`make_key` (kind, code version, every input)
    compute : builds the result on a miss
    pack : result → ``(arrays, meta)`` to store (numeric arrays, JSON metadata)
    unpack : ``(arrays, meta)`` → the result, marked as served from the cache

    The result is stored only after ``compute`` returned, so a failure half-way caches
    nothing.
    """
    cached = read_cached(cache, key, unpack)
    if cached is not None:
        return cached
    result = compute()
    if cache is not None:
        arrays, meta = pack(result)
        cache.put(key, arrays, meta)
    return result
