"""Result cache: a diskcache index of JSON metadata plus arrays as ``.npy`` files.

Why not pickle everything into diskcache? Pickle runs code on load, and whoever can
write the cache folder could then run code in the app. So the index holds only
JSON strings (diskcache stores ``str`` natively, no pickle; a pickled value found in
the index is refused, never loaded), and arrays live in ``arrays/<key>.<token>/<name>.npy``
read with ``allow_pickle=False``. The folder is created with mode 0700.

An entry is written to a temporary folder, renamed to a folder name no other write
uses, then indexed (the old folder of that key, if any, is removed afterwards): a
crash half-way leaves no entry, never a half-written one, and two writers of one
key never collide. Each index record lists its arrays' names, shapes, dtypes, sizes
and BLAKE2b checksums; an entry that does not match them on reading (a file missing,
truncated, replaced, pickled; a record that is not JSON) is dropped with a warning
and counts as a miss, so it is recomputed. A damaged index (``index/cache.db``) is
moved aside as ``index.damaged-<time>-<pid>`` and rebuilt empty. A write that fails
(a full disk) stores nothing and is reported once; the result is still returned.

:func:`get_or_compute` computes a key once across threads and processes: a miss
takes a per-key ``flock`` in ``locks/``; whoever waited reads the result.

Keys come from :func:`make_key`: a SHA-256 over the kind of result, its code
version and every parameter, so a change in an algorithm (bump its version) or in
any input gives a new key.
"""

from __future__ import annotations

import contextlib
import contextvars
import errno
import hashlib
import io
import json
import logging
import os
import re
import secrets
import shutil
import sqlite3
import tempfile
import time
from collections.abc import Callable, Iterator, Mapping
from pathlib import Path
from typing import Any, TypeVar

import diskcache
import numpy as np

try:
    import fcntl
except ImportError:  # pragma: no cover - not POSIX: no cross-process lock
    fcntl = None  # type: ignore[assignment]

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
    """SHA-256 of a file's bytes.

    Inside :func:`file_digests_in` (``cache``) a digest is remembered in that result cache
    under the file's path, device, inode, size, modification and change times, so a
    later process opening the same unchanged file (a served model's head, 67 MB at 21k
    classes) reads the digest instead of hashing the file again. A file changed in any
    way gets a new change time (which no tool can set back), hence a new entry. As git
    does for its index, a file changed less than :data:`RACY_SECONDS` before it was
    hashed is not remembered (it could change again within the clock's resolution).
    """
    memo = _DIGEST_MEMO.get()
    if memo is None:
        return _sha256_file(path, chunk_bytes)
    path = Path(path).resolve()
    before = os.stat(path)
    key = make_key("file-digest", "1", path=str(path), **_stat_parts(before))
    with contextlib.suppress(Exception):  # the memo is an optimisation: never fail on it
        found = memo.get(key)
        digest = None if found is None else found[1].get("sha256")
        if isinstance(digest, str) and re.fullmatch(r"[0-9a-f]{64}", digest):
            return digest
    digest = _sha256_file(path, chunk_bytes)
    after = os.stat(path)
    settled = time.time_ns() - max(after.st_mtime_ns, after.st_ctime_ns) > RACY_SECONDS * 1e9
    if settled and _stat_parts(after) == _stat_parts(before):
        with contextlib.suppress(Exception):
            memo.put(key, {}, {"sha256": digest})
    return digest


RACY_SECONDS = 2.0
_DIGEST_MEMO: contextvars.ContextVar["ResultCache | None"] = contextvars.ContextVar(
    "classmap_file_digests", default=None)


@contextlib.contextmanager
def file_digests_in(cache: "ResultCache | None") -> Iterator[None]:
    """Within the block, :func:`digest_file` remembers and reuses file digests in
    ``cache`` (None: hash every time)."""
    token = _DIGEST_MEMO.set(cache)
    try:
        yield
    finally:
        _DIGEST_MEMO.reset(token)


def _stat_parts(found: os.stat_result) -> dict[str, int]:
    return {"device": found.st_dev, "inode": found.st_ino, "size": found.st_size,
            "mtime_ns": found.st_mtime_ns, "ctime_ns": found.st_ctime_ns}


def _sha256_file(path: Path, chunk_bytes: int) -> str:
    sha = hashlib.sha256()
    with open(path, "rb") as handle:
        for chunk in iter(lambda: handle.read(chunk_bytes), b""):
            sha.update(chunk)
    return sha.hexdigest()


# --------------------------------------------------------------------------------------
# entries that verify themselves

ENTRY_FORMAT = 2
_SAFE_NAME = re.compile(r"[A-Za-z0-9_][A-Za-z0-9_.-]{0,150}")
# SQLite's "database disk image is malformed" and "file is not a database".
_CORRUPT_CODES = (11, 26)


class CacheDamage(ValueError):
    """An entry (or index record) that does not match what it says it holds."""


class CacheUnavailable(sqlite3.OperationalError):
    """The index cannot be opened at all (a full disk): reads miss, writes are refused."""


def checksum(data: bytes) -> str:
    """BLAKE2b (32 bytes) of ``data``, as stored in an entry's record."""
    return hashlib.blake2b(data, digest_size=32).hexdigest()


def _read_buffer(path: Path) -> bytearray:
    """A file's bytes in one writable buffer (arrays are then views of it, no copy)."""
    with open(path, "rb", buffering=0) as handle:
        data = bytearray(os.fstat(handle.fileno()).st_size)
        filled = 0
        with memoryview(data) as view:
            while filled < len(data):
                count = handle.readinto(view[filled:])
                if not count:
                    break
                filled += count
        rest = handle.read()
    if filled < len(data):  # the file shrank while it was read: the checksum rejects it
        del data[filled:]
    return data + rest if rest else data


_NPY_HEADER_BYTES = 8 + 4 + 10_000  # magic, header length, numpy's largest header read


def npy_array(data: bytearray) -> np.ndarray:
    """The array held in ``.npy`` bytes as a view of ``data`` (writable, no copy), as
    ``np.load(…, allow_pickle=False)`` would read it.

    ``np.load`` of a ``BytesIO`` reads the payload in 256 KiB pieces and joins them:
    ≈ 4 × the time of this for a 67 MB head. Raises ValueError for object arrays (a
    pickle) or a payload shorter than its header says.
    """
    fmt = np.lib.format
    head = io.BytesIO(bytes(memoryview(data)[:_NPY_HEADER_BYTES]))
    version = fmt.read_magic(head)
    if version == (1, 0):
        shape, fortran, dtype = fmt.read_array_header_1_0(head)
    elif version == (2, 0):
        shape, fortran, dtype = fmt.read_array_header_2_0(head)
    else:  # a format this reader does not parse itself
        return np.load(io.BytesIO(data), allow_pickle=False)
    if dtype.hasobject:
        raise ValueError("the array holds Python objects (a pickle), which are never loaded")
    count = 1
    for size in shape:
        count *= int(size)
    offset = head.tell()
    if len(data) - offset < count * dtype.itemsize:
        raise ValueError(f"the payload is shorter than its shape {tuple(shape)} needs")
    flat = np.frombuffer(data, dtype=dtype, count=count, offset=offset)
    return flat.reshape(shape[::-1]).transpose() if fortran else flat.reshape(shape)


def _write_file(path: Path, data: bytes) -> None:
    """Write ``data`` to a new file ``path`` (one place, so tests can fill the disk)."""
    with open(path, "xb") as handle:
        handle.write(data)


def _is_corrupt(error: sqlite3.DatabaseError) -> bool:
    code = getattr(error, "sqlite_errorcode", None)
    return code in _CORRUPT_CODES if code is not None else type(error) is sqlite3.DatabaseError


def _safe_name(key: str) -> str:
    """``key`` itself where it is a plain file name (every make_key key), else its hash."""
    return key if _SAFE_NAME.fullmatch(key) else hashlib.sha256(key.encode()).hexdigest()


def _parse_record(raw: Any, key: str) -> dict[str, Any]:
    """The index record ``raw`` as a dict, checked field by field; else CacheDamage."""
    if not isinstance(raw, str):
        raise CacheDamage("its index record is not a JSON string")
    try:
        record = json.loads(raw)
    except ValueError as error:
        raise CacheDamage(f"its index record is not JSON ({error})") from None
    if not isinstance(record, dict) or record.get("format") != ENTRY_FORMAT:
        raise CacheDamage("its index record was written by another version of Classmap")
    folder, arrays, meta = record.get("folder"), record.get("arrays"), record.get("meta")
    if not (isinstance(folder, str) and _SAFE_NAME.fullmatch(folder)
            and folder.startswith(_safe_name(key) + ".")):
        raise CacheDamage("its index record names no valid folder")
    if not isinstance(arrays, dict) or not isinstance(meta, dict):
        raise CacheDamage("its index record lacks its arrays or metadata")
    for name, spec in arrays.items():
        if not (_SAFE_NAME.fullmatch(name) and isinstance(spec, dict)
                and isinstance(spec.get("shape"), list)
                and all(isinstance(n, int) and n >= 0 for n in spec["shape"])
                and isinstance(spec.get("dtype"), str) and isinstance(spec.get("bytes"), int)
                and isinstance(spec.get("blake2b"), str)):
            raise CacheDamage(f"its index record describes {name!r} wrongly")
    return record


def _folder_of(raw: Any, key: str) -> str:
    """The array folder a record names; the pre-checksum layout used the key itself."""
    try:
        return _parse_record(raw, key)["folder"]
    except CacheDamage:
        return _safe_name(key)


class _NoPickleDisk(diskcache.Disk):
    """diskcache's storage, refusing to unpickle a value (only JSON strings are ours)."""

    def fetch(self, mode, filename, value, read):  # noqa: ANN001 - diskcache's signature
        if mode == diskcache.core.MODE_PICKLE:
            raise CacheDamage("its index record is a pickle")
        return super().fetch(mode, filename, value, read)


def _record_or_none(index: diskcache.Cache, key: str) -> Any:
    """The raw record of ``key`` in ``index``; None if absent or a refused pickle."""
    try:
        return index.get(key)
    except CacheDamage:
        return None


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
        self._locks_dir = self.directory / "locks"
        self._locks_dir.mkdir(exist_ok=True, mode=0o700)
        self._index_dir = self.directory / "index"
        self._store_failure_reported = False
        self._index = self._open_index()

    # -- the index --------------------------------------------------------------------
    def _open_index(self) -> diskcache.Cache | None:
        """The index, or None where it cannot even be opened (a full disk: SQLite cannot
        write its journal), warned once; every later call tries again."""
        try:
            try:
                return diskcache.Cache(str(self._index_dir), disk=_NoPickleDisk)
            except sqlite3.DatabaseError as error:
                if not _is_corrupt(error):
                    raise
                self._move_index_aside(error)
                return diskcache.Cache(str(self._index_dir), disk=_NoPickleDisk)
        except (sqlite3.Error, OSError) as error:
            if not self._store_failure_reported:
                log.warning("cannot store results in the cache %s (cannot open its index: %s); "
                            "computing without the cache; free some space", self.directory,
                            getattr(error, "strerror", None) or error)
                self._store_failure_reported = True
            return None

    def _move_index_aside(self, error: Exception) -> None:
        """Rename the damaged index with a timestamp; its array folders go with it."""
        aside = self.directory / f"index.damaged-{time.strftime('%Y%m%d-%H%M%S')}-{os.getpid()}"
        with contextlib.suppress(OSError):  # another process may have moved it already
            os.replace(self._index_dir, aside)
        log.warning("cache index %s is damaged (%s); moved it to %s and started an empty one",
                    self._index_dir, error, aside.name)
        for child in self._arrays_dir.iterdir():  # nothing indexes them any more
            shutil.rmtree(child, ignore_errors=True)

    def _call(self, operation: Callable[[diskcache.Cache], T]) -> T:
        """``operation(index)``; a damaged index is moved aside, rebuilt, and tried again;
        raises :class:`CacheUnavailable` while the index cannot be opened."""
        if self._index is None:
            self._index = self._open_index()
            if self._index is None:
                raise CacheUnavailable("the cache index cannot be opened")
        try:
            return operation(self._index)
        except sqlite3.DatabaseError as error:
            if not _is_corrupt(error):
                raise
            with contextlib.suppress(Exception):
                self._index.close()
            self._move_index_aside(error)
            self._index = diskcache.Cache(str(self._index_dir), disk=_NoPickleDisk)
            return operation(self._index)

    # -- arrays ---------------------------------------------------------------------
    def get(self, key: str) -> tuple[dict[str, np.ndarray], dict[str, Any]] | None:
        """``(arrays, meta)`` stored under ``key``, or ``None`` on a miss.

        An entry that does not verify (see the module doc) is dropped with a warning
        and counts as a miss.
        """
        found = self.lookup(key)
        return None if found is None else (found[0], found[1])

    def lookup(self, key: str) -> tuple[Arrays, Meta, str] | None:
        """``(arrays, meta, record)`` for ``key``, verified, or None; ``record`` identifies
        this version of the entry for :meth:`drop`."""
        for _ in range(3):  # a concurrent put may replace the entry while we read it
            try:
                raw = self._call(lambda index: index.get(key))
            except CacheUnavailable:
                return None  # a full disk: computed, not read
            except CacheDamage as damage:
                self._call(lambda index: index.delete(key))
                log.warning("cache entry %s is damaged (%s); dropped it", key, damage)
                return None
            if raw is None:
                return None
            try:
                record = _parse_record(raw, key)
                return self._read_arrays(record), record["meta"], raw
            except CacheDamage as damage:
                if self.drop(key, raw, str(damage)):
                    return None
        return None

    def _read_arrays(self, record: dict[str, Any]) -> Arrays:
        folder = self._arrays_dir / record["folder"]
        arrays: Arrays = {}
        for name, spec in record["arrays"].items():
            try:
                data = _read_buffer(folder / f"{name}.npy")
            except OSError as error:
                raise CacheDamage(f"{name}.npy cannot be read: {error.strerror or error}") from None
            if len(data) != spec["bytes"] or checksum(data) != spec["blake2b"]:
                raise CacheDamage(f"{name}.npy does not match its checksum")
            try:
                array = npy_array(data)
            except (OSError, ValueError, EOFError) as error:
                raise CacheDamage(f"{name}.npy is not a plain array ({error})") from None
            if not isinstance(array, np.ndarray) or list(array.shape) != spec["shape"] \
                    or array.dtype.str != spec["dtype"]:
                raise CacheDamage(f"{name}.npy does not have its recorded shape and dtype")
            arrays[name] = array
        return arrays

    def drop(self, key: str, record: str, reason: str) -> bool:
        """Delete ``key`` if its index record is still ``record`` (not a newer write);
        log ``reason`` as a warning. True if it was dropped."""

        def pop_if_unchanged(index: diskcache.Cache) -> bool:
            with index.transact():
                if _record_or_none(index, key) != record:
                    return False
                index.delete(key)
                return True

        if not self._call(pop_if_unchanged):
            return False
        shutil.rmtree(self._arrays_dir / _folder_of(record, key), ignore_errors=True)
        log.warning("cache entry %s is damaged (%s); dropped it", key, reason)
        return True

    def put(
        self, key: str, arrays: Mapping[str, np.ndarray], meta: Mapping[str, Any] | None = None
    ) -> None:
        """Store ``arrays`` (numeric, no objects) and JSON ``meta`` under ``key`` atomically.

        Raises OSError (or sqlite3.Error) when the write fails, e.g. on a full disk;
        nothing of the new entry is left behind then, and an older entry stays.
        """
        files: dict[str, bytes] = {}
        specs: dict[str, dict[str, Any]] = {}
        for name, value in arrays.items():
            array = np.asarray(value)
            if array.dtype == object:
                raise TypeError(f"cache array {name!r} has dtype object; store numbers only")
            if not _SAFE_NAME.fullmatch(name):
                raise ValueError(f"cache array name {name!r} is not a plain file name")
            buffer = io.BytesIO()
            np.save(buffer, array, allow_pickle=False)
            files[name] = data = buffer.getvalue()
            specs[name] = {"shape": list(array.shape), "dtype": array.dtype.str,
                           "bytes": len(data), "blake2b": checksum(data)}
        folder = f"{_safe_name(key)}.{secrets.token_hex(8)}"
        record = json.dumps(
            {"format": ENTRY_FORMAT, "folder": folder, "arrays": specs, "meta": dict(meta or {})},
            default=str,
        )
        staging = Path(tempfile.mkdtemp(prefix=f".{_safe_name(key)}-", dir=self._arrays_dir))
        final = self._arrays_dir / folder
        try:
            for name, data in files.items():
                _write_file(staging / f"{name}.npy", data)
            os.rename(staging, final)  # a name no other write uses: nothing to replace
        except BaseException:
            shutil.rmtree(staging, ignore_errors=True)
            raise

        def swap(index: diskcache.Cache) -> Any:
            with index.transact():
                previous = _record_or_none(index, key)
                index.set(key, record)
                return previous

        try:
            previous = self._call(swap)
        except BaseException:
            shutil.rmtree(final, ignore_errors=True)
            raise
        if previous is not None:
            old = _folder_of(previous, key)
            if old != folder:
                shutil.rmtree(self._arrays_dir / old, ignore_errors=True)

    def store(
        self, key: str, arrays: Mapping[str, np.ndarray], meta: Mapping[str, Any] | None = None
    ) -> bool:
        """:meth:`put`, but a failed write (a full disk) is a warning, logged once until a
        write succeeds again, not an error. True if stored."""
        try:
            self.put(key, arrays, meta)
        except (OSError, sqlite3.Error) as error:
            reason = getattr(error, "strerror", None) or str(error)
            if not self._store_failure_reported:
                hint = "; free some space" if getattr(error, "errno", None) == errno.ENOSPC \
                    or "full" in str(error) else ""
                log.warning("cannot store results in the cache %s (%s); computing without "
                            "storing%s", self.directory, reason, hint)
                self._store_failure_reported = True
            else:
                log.info("cache write of %s failed too (%s)", key, reason)
            return False
        self._store_failure_reported = False
        return True

    def delete(self, key: str) -> None:
        """Remove ``key`` and its arrays (no error if absent)."""

        def pop(index: diskcache.Cache) -> Any:
            with index.transact():
                raw = _record_or_none(index, key)
                index.delete(key)
                return raw

        raw = self._call(pop)
        shutil.rmtree(self._arrays_dir / _folder_of(raw, key), ignore_errors=True)

    def __contains__(self, key: str) -> bool:
        try:
            return self._call(lambda index: key in index)
        except CacheUnavailable:
            return False

    @contextlib.contextmanager
    def computing(self, key: str) -> Iterator[None]:
        """Hold the per-key lock of ``key`` (across threads and processes) while inside.

        Where no lock file can be made (no ``fcntl``, a read-only or full disk) it does
        not lock: the computation may then run twice, and the last write wins.
        """
        handle = None
        if fcntl is not None:
            try:
                handle = open(self._locks_dir / f"{_safe_name(key)}.lock", "ab")
                fcntl.flock(handle.fileno(), fcntl.LOCK_EX)
            except OSError as error:
                log.info("cache lock for %s unavailable (%s); computing unlocked", key, error)
                if handle is not None:
                    handle.close()
                handle = None
        try:
            yield
        finally:
            if handle is not None:
                handle.close()  # closing releases the flock

    def clear(self) -> None:
        """Remove every entry."""
        self._call(lambda index: index.clear())
        shutil.rmtree(self._arrays_dir, ignore_errors=True)
        self._arrays_dir.mkdir(exist_ok=True, mode=0o700)

    def close(self) -> None:
        if self._index is not None:
            self._index.close()


# --------------------------------------------------------------------------------------
# the one get-or-compute sequence every pipeline uses


def read_cached(
    cache: ResultCache | None,
    key: str,
    unpack: Callable[[Arrays, Meta], T],
    validate: Callable[[T], None] | None = None,
) -> T | None:
    """The result stored under ``key``, rebuilt by ``unpack(arrays, meta)``; ``None`` on a
    miss or without a cache. Cheap: reads ``.npy`` files, computes nothing.

    An entry that ``unpack`` or ``validate(result)`` refuses (ValueError, KeyError,
    IndexError: a wrong shape, NaNs) is dropped with a warning and counts as a miss.
    """
    if cache is None:
        return None
    for _ in range(3):
        found = cache.lookup(key)
        if found is None:
            return None
        arrays, meta, record = found
        try:
            result = unpack(arrays, meta)
            if validate is not None and result is not None:
                validate(result)
        except (ValueError, KeyError, IndexError) as error:
            if cache.drop(key, record, f"its contents do not fit: {error}"):
                return None
            continue  # replaced meanwhile: read the newer entry
        return result
    return None


def get_or_compute(
    cache: ResultCache | None,
    key: str,
    compute: Callable[[], T],
    *,
    pack: Callable[[T], tuple[Mapping[str, np.ndarray], Mapping[str, Any]]],
    unpack: Callable[[Arrays, Meta], T],
    validate: Callable[[T], None] | None = None,
) -> T:
    """Serve ``key`` from ``cache``, else ``compute()`` it and store ``pack(result)``.

    Parameters
    ----------
    cache : the ResultCache, or None to always compute (and store nothing)
    key : from :func:`make_key` (kind, code version, every input)
    compute : builds the result on a miss
    pack : result → ``(arrays, meta)`` to store (numeric arrays, JSON metadata)
    unpack : ``(arrays, meta)`` → the result, marked as served from the cache; raising
        ValueError or KeyError marks the entry as damaged (dropped, recomputed)
    validate : optional check of an unpacked result; raising ValueError does the same

    The result is stored only after ``compute`` returned, so a failure half-way caches
    nothing. A miss is computed under the key's lock: a second thread or process asking
    for the same key waits, then reads the stored result. A write that fails (a full
    disk) is one warning; the computed result is returned all the same.
    """
    cached = read_cached(cache, key, unpack, validate)
    if cached is not None:
        return cached
    if cache is None:
        return compute()
    with cache.computing(key):
        cached = read_cached(cache, key, unpack, validate)
        if cached is not None:
            return cached
        result = compute()
        arrays, meta = pack(result)
        cache.store(key, arrays, meta)
    return result
