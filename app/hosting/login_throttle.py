"""Failed HTTP Basic logins counted per client address and per user name, in a table of
bounded size (issue 11: a password must not be guessable by brute force).

After ``failures`` wrong passwords within ``window`` seconds from one address, or for one
user name, every request with credentials from that address or for that name is answered
429 with ``Retry-After`` — *without* checking the password, so a guess made during the
lockout learns nothing, and no scrypt hash (~50 ms of CPU) is spent on it. A request
without credentials (a browser's first one, before it asks for them) is not a failure.

Why not Flask-Limiter: it limits requests to routes, while this counts failed credential
checks made inside the access guard, which must refuse *before* the check; and its
in-memory storage (``limits.MemoryStorage``, a ``Counter`` plus an expiry dict) has no cap
on the number of keys, while every key here comes from the client (an address, a user
name) and the table must stay bounded. So: a fixed window per key in an LRU
``OrderedDict`` of at most ``max_keys`` entries (~200 bytes each). A key under attack is
touched at each failure and so is never the one evicted; only keys idle the longest go.

The table is per process: with ``--workers N`` an address gets up to N × ``failures``
guesses a window (2 guesses a minute per process at the defaults).
"""

from __future__ import annotations

import math
import threading
import time
from collections import OrderedDict
from dataclasses import dataclass
from typing import Callable, Iterable

DEFAULT_FAILURES = 10
DEFAULT_WINDOW_SECONDS = 300
DEFAULT_MAX_KEYS = 10_000
MAX_KEY_CHARS = 64  # a user name longer than any allowed one is cut (the table stays small)


@dataclass
class _Window:
    started: float
    failures: int


class LoginThrottle:
    """Counts failures per key (``("address", "10.0.0.7")``, ``("user", "alice")``).

    Parameters
    ----------
    failures : wrong passwords allowed per key within ``window``; the next request is refused
    window : seconds; a key's count starts at its first failure and is forgotten after it
    max_keys : most keys kept (least recently failed ones are dropped first)
    clock : monotonic seconds (tests pass their own)
    """

    def __init__(self, failures: int = DEFAULT_FAILURES, window: float = DEFAULT_WINDOW_SECONDS,
                 max_keys: int = DEFAULT_MAX_KEYS,
                 clock: Callable[[], float] = time.monotonic) -> None:
        if failures < 1 or window <= 0 or max_keys < 1:
            raise ValueError("failures, window and max_keys must be positive")
        self.failures = failures
        self.window = float(window)
        self.max_keys = max_keys
        self.clock = clock
        self._table: OrderedDict[tuple[str, str], _Window] = OrderedDict()
        self._lock = threading.Lock()

    def __len__(self) -> int:
        return len(self._table)

    def retry_after(self, keys: Iterable[tuple[str, str]]) -> int | None:
        """Whole seconds until the most locked of ``keys`` may try again; None when none is
        locked (the credentials may then be checked)."""
        now = self.clock()
        wait = 0.0
        with self._lock:
            for key in map(_bounded, keys):
                entry = self._table.get(key)
                if entry is None:
                    continue
                left = entry.started + self.window - now
                if left <= 0:
                    del self._table[key]  # its window is over: forgotten
                elif entry.failures >= self.failures:
                    wait = max(wait, left)
        return max(1, math.ceil(wait)) if wait > 0 else None

    def record_failure(self, keys: Iterable[tuple[str, str]]) -> None:
        """Count one wrong password against each of ``keys``."""
        now = self.clock()
        with self._lock:
            for key in map(_bounded, keys):
                entry = self._table.get(key)
                if entry is None or entry.started + self.window <= now:
                    entry = self._table[key] = _Window(now, 0)
                entry.failures += 1
                self._table.move_to_end(key)
            while len(self._table) > self.max_keys:
                self._table.popitem(last=False)


def _bounded(key: tuple[str, str]) -> tuple[str, str]:
    kind, value = key
    return kind, value[:MAX_KEY_CHARS]
