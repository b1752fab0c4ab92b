"""Failed HTTP Basic logins, counted in a table every web process of the instance shares
(issue 11: a password must not be guessable by brute force, and ``--workers N`` must not
multiply the guesses by N).

Buckets. Each wrong password counts against two keys:

* the pair (client address, user name): after ``failures`` wrong passwords for one name
  from one address within ``window`` seconds, that name is locked *for that address*;
* the client address alone, with a cap of :data:`ADDRESS_FACTOR` × ``failures``: one
  address cannot try many names either.

A request with credentials whose pair or address is locked is answered 429 with
``Retry-After`` — *without* checking the password, so a guess made during the lockout
learns nothing, and no scrypt hash (~50 ms of CPU) is spent on it. A request without
credentials (a browser's first one, before it asks for them) is not a failure. There is
no key for a user name alone: a guesser at one address cannot lock the name's owner out
at another (the lockout by name was a denial of service). What this does not stop —
guessing spread over many addresses — is in docs/threat-model.md.

Addresses: the peer's, or behind a trusted proxy the one the proxy appended to
``X-Forwarded-For`` (decided by :mod:`.access`); an IPv6 address counts as its /64 (one
host usually holds a whole /64). Keys are ``classmap-login:{pair|addr}:<sha-256 prefix>``:
fixed length whatever the client sends.

Stores (one per instance, picked by :func:`shared_throttle`):

* **Redis** — production mode (``--broker redis://…``): one key per bucket, a counter
  that expires ``window`` seconds after its first failure (a Lua script increments and
  sets the expiry in one step), so every web process on every machine sharing the Redis
  counts together, and the table is bounded by the failures of one window (each costs
  the guesser a full scrypt check: a few thousand keys at most).
* **diskcache** under the cache folder (``<cache dir>/login-failures``) — otherwise:
  every gunicorn worker of ``serve --workers N`` (and the single-process server) opens
  the same SQLite file. Chosen because it is already a pinned dependency (the result
  cache's index), is safe across processes (SQLite transactions: a read-count-write is
  one ``transact()``), expires keys itself and culls the least recently stored ones past
  a size limit (:data:`DISK_SIZE_LIMIT`), while a key under attack is rewritten at each
  failure and so is never the one culled. A file lock and JSON file would need all of
  that written by hand; a ``multiprocessing.Manager`` needs a server process gunicorn
  does not have.
* **memory** — an LRU ``OrderedDict`` of at most ``max_keys`` keys: only when the shared
  store fails (Redis out of reach, the disk full), for :data:`RETRY_SECONDS` at a time,
  with a warning — the limit is then per process again rather than refusing every login.

Why not Flask-Limiter: it limits requests to routes, while this counts failed credential
checks made inside the access guard, which must refuse *before* the check; and its
in-memory storage has no cap on the number of keys.
"""

from __future__ import annotations

import hashlib
import ipaddress
import logging
import math
import sqlite3
import threading
import time
from collections import OrderedDict
from pathlib import Path
from typing import Any, Callable, Protocol

import diskcache

log = logging.getLogger(__name__)

DEFAULT_FAILURES = 10
DEFAULT_WINDOW_SECONDS = 300
ADDRESS_FACTOR = 3  # wrong passwords one address may send in a window, over all names: × failures
DEFAULT_MAX_KEYS = 10_000  # the in-memory fallback's bound
DISK_SIZE_LIMIT = 8 << 20  # bytes of the shared SQLite table before it culls the oldest keys
RETRY_SECONDS = 10.0  # after the shared store failed: count in memory this long, then retry
KEY_PREFIX = "classmap-login:"
DISK_FOLDER = "login-failures"

Key = tuple[str, int]  # (store key, failures it may hold before it locks)


class Store(Protocol):
    """Where failures are counted: ``read`` gives (failures, seconds left in the window)
    per key (0, 0 when absent or over); ``add`` counts one failure against each key,
    starting a window of ``window`` seconds for a key that has none."""

    errors: tuple[type[BaseException], ...]

    def read(self, keys: list[str]) -> list[tuple[int, float]]: ...

    def add(self, keys: list[str], window: float) -> None: ...


def address_bucket(address: str) -> str:
    """The address failures are counted against: an IPv6 address's /64, an IPv4-mapped
    address's IPv4 form, any other address itself."""
    try:
        parsed = ipaddress.ip_address(address)
    except ValueError:
        return address[:100]
    if isinstance(parsed, ipaddress.IPv6Address):
        if parsed.ipv4_mapped is not None:
            return str(parsed.ipv4_mapped)
        return str(ipaddress.IPv6Network(f"{parsed}/64", strict=False))
    return str(parsed)


def _digest(text: str) -> str:
    return hashlib.sha256(text.encode("utf-8", "replace")).hexdigest()[:32]


class LoginThrottle:
    """Counts wrong passwords per (address, user name) and per address.

    Parameters
    ----------
    failures : wrong passwords allowed for one name from one address within ``window``
        (one address: ``ADDRESS_FACTOR`` × as many, over all names); the next is refused
    window : seconds; a key's count starts at its first failure and is forgotten after it
    store : the shared :class:`Store` (None: a :class:`MemoryStore`, this process only)
    fallback : used while ``store`` fails (then, or without it, this process's memory)
    """

    def __init__(self, failures: int = DEFAULT_FAILURES, window: float = DEFAULT_WINDOW_SECONDS,
                 store: Store | None = None, fallback: Store | None = None) -> None:
        if failures < 1 or window <= 0:
            raise ValueError("failures and window must be positive")
        self.failures = failures
        self.window = float(window)
        self.store: Store = store if store is not None else MemoryStore()
        self.fallback = fallback
        self.memory = MemoryStore()  # the last resort: this process only
        self._down_until: dict[int, float] = {}

    def keys(self, address: str, user: str) -> list[Key]:
        """The keys a wrong password for ``user`` from ``address`` counts against."""
        bucket = address_bucket(address)
        return [(f"{KEY_PREFIX}pair:{_digest(bucket + chr(0) + user)}", self.failures),
                (f"{KEY_PREFIX}addr:{_digest(bucket)}", self.failures * ADDRESS_FACTOR)]

    def retry_after(self, address: str, user: str) -> int | None:
        """Whole seconds until ``user`` may try again from ``address``; None when neither
        key is locked (the credentials may then be checked)."""
        keys = self.keys(address, user)
        counts = self._use("read", [key for key, _ in keys])
        wait = max((left for (count, left), (_, most) in zip(counts, keys) if count >= most),
                   default=0.0)
        return max(1, math.ceil(wait)) if wait > 0 else None

    def record_failure(self, address: str, user: str) -> None:
        """Count one wrong password for ``user`` from ``address``."""
        self._use("add", [key for key, _ in self.keys(address, user)], self.window)

    def _use(self, operation: str, *args: Any) -> Any:
        """``operation`` on the first store that works: the shared one, the fallback (each
        skipped for :data:`RETRY_SECONDS` after it failed), else this process's memory."""
        for store in (self.store, self.fallback):
            if store is None or time.monotonic() < self._down_until.get(id(store), 0.0):
                continue
            try:
                return getattr(store, operation)(*args)
            except store.errors as error:
                self._down_until[id(store)] = time.monotonic() + RETRY_SECONDS
                log.warning("the table of failed logins (%s) failed: %s; trying the next for "
                            "%d s", type(store).__name__,
                            (str(error).splitlines() or [type(error).__name__])[0][:200],
                            RETRY_SECONDS)
        return getattr(self.memory, operation)(*args)


# -- stores ------------------------------------------------------------------------------------


class MemoryStore:
    """This process's table: an LRU of at most ``max_keys`` keys (a key under attack is
    touched at each failure and so is never the one dropped)."""

    errors: tuple[type[BaseException], ...] = ()

    def __init__(self, max_keys: int = DEFAULT_MAX_KEYS,
                 clock: Callable[[], float] = time.monotonic) -> None:
        if max_keys < 1:
            raise ValueError("max_keys must be positive")
        self.max_keys = max_keys
        self.clock = clock
        self._table: OrderedDict[str, list[float]] = OrderedDict()  # key → [ends, failures]
        self._lock = threading.Lock()

    def __len__(self) -> int:
        return len(self._table)

    def read(self, keys: list[str]) -> list[tuple[int, float]]:
        now = self.clock()
        out = []
        with self._lock:
            for key in keys:
                entry = self._table.get(key)
                if entry is not None and entry[0] <= now:
                    del self._table[key]  # its window is over: forgotten
                    entry = None
                out.append((int(entry[1]), entry[0] - now) if entry else (0, 0.0))
        return out

    def add(self, keys: list[str], window: float) -> None:
        now = self.clock()
        with self._lock:
            for key in keys:
                entry = self._table.get(key)
                if entry is None or entry[0] <= now:
                    entry = self._table[key] = [now + window, 0]
                entry[1] += 1
                self._table.move_to_end(key)
            while len(self._table) > self.max_keys:
                self._table.popitem(last=False)


class DiskStore:
    """The instance's table in a diskcache (SQLite) folder every web process opens.

    Values are ``"<window end> <failures>"`` strings (stored as text, never pickled; a
    pickle found there is ignored). ``clock``: wall-clock seconds (processes share it).
    """

    def __init__(self, directory: Path | str, clock: Callable[[], float] = time.time,
                 size_limit: int = DISK_SIZE_LIMIT) -> None:
        self.errors = (sqlite3.Error, OSError, diskcache.Timeout)
        self.clock = clock
        Path(directory).mkdir(parents=True, exist_ok=True, mode=0o700)
        self.cache = diskcache.Cache(
            str(directory), disk=_TextOnlyDisk, timeout=2, size_limit=size_limit,
            eviction_policy="least-recently-stored", cull_limit=10, statistics=False,
            tag_index=False)

    def __len__(self) -> int:
        return len(self.cache)

    def _entry(self, key: str, now: float) -> tuple[float, int] | None:
        raw = self.cache.get(key)
        try:
            ends, failures = str(raw).split(" ")
            entry = float(ends), int(failures)
        except ValueError:
            return None
        return entry if entry[0] > now else None

    def read(self, keys: list[str]) -> list[tuple[int, float]]:
        now = self.clock()
        out = []
        for key in keys:
            entry = self._entry(key, now)
            out.append((entry[1], entry[0] - now) if entry else (0, 0.0))
        return out

    def add(self, keys: list[str], window: float) -> None:
        now = self.clock()
        with self.cache.transact():  # one writer at a time across processes
            for key in keys:
                ends, failures = self._entry(key, now) or (now + window, 0)
                # diskcache drops the key itself once its window is over (+1 s of slack).
                self.cache.set(key, f"{ends!r} {failures + 1}", expire=ends - now + 1)


class RedisStore:
    """The instance's table in Redis: per key a counter that expires ``window`` seconds
    after its first failure."""

    _ADD = """
for _, key in ipairs(KEYS) do
  redis.call('INCR', key)
  if redis.call('PTTL', key) < 0 then redis.call('PEXPIRE', key, ARGV[1]) end
end
return 1
"""

    def __init__(self, url: str, client: Any = None) -> None:
        import redis

        self.errors = (redis.exceptions.RedisError, OSError)
        # Short timeouts: a login must not hang on a Redis that went away.
        self.client = client or redis.Redis.from_url(url, socket_connect_timeout=1,
                                                     socket_timeout=1)
        self._add = self.client.register_script(self._ADD)

    def read(self, keys: list[str]) -> list[tuple[int, float]]:
        pipe = self.client.pipeline(transaction=False)
        for key in keys:
            pipe.get(key)
            pipe.pttl(key)
        values = pipe.execute()
        out = []
        for count, ttl in zip(values[::2], values[1::2]):
            try:
                failures = int(count) if count is not None else 0
            except ValueError:
                failures = 0
            out.append((failures, ttl / 1000) if failures and ttl and ttl > 0 else (0, 0.0))
        return out

    def add(self, keys: list[str], window: float) -> None:
        self._add(keys=keys, args=[max(1, int(window * 1000))])


class _TextOnlyDisk(diskcache.Disk):
    """diskcache's storage that never unpickles (only our text values are read)."""

    def fetch(self, mode, filename, value, read):  # noqa: ANN001 — diskcache's signature
        if mode == diskcache.core.MODE_PICKLE:
            return None
        return super().fetch(mode, filename, value, read)


def shared_throttle(failures: int, window: float, cache_dir: Path | str | None,
                    broker: str | None = None) -> LoginThrottle:
    """The instance's throttle: counted in Redis when ``broker`` is a Redis URL, else in
    ``<cache_dir>/login-failures``; in this process's memory when neither can be opened
    (warned). Falls back to the disk, then memory, while the shared store fails."""
    disk: Store | None = None
    if cache_dir is not None:
        try:
            disk = DiskStore(Path(cache_dir) / DISK_FOLDER)
        except (sqlite3.Error, OSError) as error:
            log.warning("cannot open the table of failed logins under %s (%s); counting them "
                        "in each web process", cache_dir, error)
    if broker and broker.startswith(("redis://", "rediss://", "unix://")):
        return LoginThrottle(failures, window, RedisStore(broker), disk)
    return LoginThrottle(failures, window, disk)
