"""The failed-login limit holds across web processes (issue 11): ``classmap serve
--workers 3`` with users, the configured number of wrong passwords in total — whichever
workers answer them — and the next requests are 429 with ``Retry-After``, with no
password checked (counted in every process by tests/service/hash_trap); the user is not
locked out at another address. Without a broker the count is in the cache folder's
table; with ``--broker`` (service marker) it is in Redis."""

from __future__ import annotations

import base64
import http.client
import os
import sys
import time
from pathlib import Path

import pytest

from classmap.app.hosting.config import add_user
from tests.e2e.conftest import ROOT, free_port, serve_until_done
from tests.service.conftest import service_env

FAILURES = 6
WINDOW = 120
TRAP_DIR = Path(__file__).resolve().parent / "hash_trap"
PASSWORD = "alice-secret-1"


def request(port: int, password: str, source: str = "127.0.0.1") -> http.client.HTTPResponse:
    """One request on a fresh connection (gunicorn hands each to whichever worker accepts)
    from ``source`` (any 127.x address reaches the loopback server)."""
    connection = http.client.HTTPConnection("127.0.0.1", port, timeout=30,
                                            source_address=(source, 0))
    token = base64.b64encode(f"alice:{password}".encode()).decode()
    connection.request("GET", "/_dash-layout", headers={"Authorization": f"Basic {token}",
                                                        "Connection": "close"})
    response = connection.getresponse()
    response.body = response.read()
    connection.close()
    return response


def checks(trap: Path) -> list[str]:
    return trap.read_text().split() if trap.exists() else []


def served(folder: Path, artifacts_dir: Path, broker: str | None, name: str):
    config = folder / "classmap.toml"
    config.write_text(f"[limits]\nlogin_failures = {FAILURES}\n"
                      f"login_window_seconds = {WINDOW}\n")
    add_user(config, "alice", PASSWORD, "operator")
    trap = folder / "hash-checks.log"
    env = service_env(folder, broker or "")
    if not broker:
        env.pop("CLASSMAP_BROKER")
    env.update(CLASSMAP_HASH_TRAP=str(trap),
               PYTHONPATH=os.pathsep.join([str(TRAP_DIR), str(ROOT),
                                           env.get("PYTHONPATH", "")]).rstrip(os.pathsep))
    port = free_port()
    command = [sys.executable, "-m", "classmap.app.cli", "serve", "--host", "127.0.0.1",
               "--port", str(port), "--cache-dir", str(folder / "cache"), "--workers", "3",
               "--config", str(config), *(["--broker", broker] if broker else [])]
    for _ in serve_until_done(command, ROOT, env, artifacts_dir / f"{name}.log", port,
                              probe="/healthz"):
        yield port, trap


def assert_limit_holds_across_workers(port: int, trap: Path) -> None:
    assert checks(trap) == []  # the trap is armed in the workers, and nothing checked yet
    for _ in range(FAILURES):
        assert request(port, "wrong-password").status == 401
    checked = checks(trap)
    assert len(checked) == FAILURES  # one hash check per wrong password
    # The guesses reached several workers: with a table per process none would be
    # locked now (each saw fewer than FAILURES).
    assert len(set(checked)) >= 2, f"all {FAILURES} guesses reached one worker: {checked}"
    for _ in range(6):  # whichever workers answer: locked, even with the right password
        response = request(port, PASSWORD)
        assert response.status == 429, response.status
        assert 1 <= int(response.headers["Retry-After"]) <= WINDOW
        assert response.body.startswith(b"too many failed logins")
    assert checks(trap) == checked  # no password was checked during the lockout
    # The user is not locked out at another address.
    assert request(port, PASSWORD, source="127.0.0.2").status == 200


@pytest.mark.slow
def test_the_login_limit_holds_across_gunicorn_workers(tmp_path, artifacts_dir):
    for port, trap in served(tmp_path, artifacts_dir, None, "login-throttle-gunicorn"):
        assert_limit_holds_across_workers(port, trap)
    assert (tmp_path / "cache" / "login-failures").is_dir()


@pytest.mark.service
@pytest.mark.slow
@pytest.mark.timeout(180)
def test_the_login_limit_holds_across_workers_counted_in_redis(tmp_path, artifacts_dir,
                                                               fresh):
    import redis

    client = redis.Redis.from_url(fresh)
    for port, trap in served(tmp_path, artifacts_dir, fresh, "login-throttle-redis"):
        assert_limit_holds_across_workers(port, trap)
        # Two keys (the pair, the address), each counted by all workers, each expiring.
        keys = client.keys("classmap-login:*")
        assert sorted(int(client.get(key)) for key in keys) == [FAILURES, FAILURES]
        assert all(0 < client.pttl(key) <= WINDOW * 1000 for key in keys)
    import diskcache

    with diskcache.Cache(str(tmp_path / "cache" / "login-failures")) as disk:
        assert len(disk) == 0  # the fallback table was not needed


@pytest.mark.service
def test_processes_share_the_count_in_redis_and_fall_back_to_the_disk_without_it(
        fresh, tmp_path, caplog):
    from classmap.app.hosting.login_throttle import DiskStore, LoginThrottle, RedisStore

    first = LoginThrottle(3, 60, RedisStore(fresh), DiskStore(tmp_path / "a"))
    second = LoginThrottle(3, 60, RedisStore(fresh), DiskStore(tmp_path / "b"))
    first.record_failure("10.0.0.1", "alice")
    second.record_failure("10.0.0.1", "alice")
    assert first.retry_after("10.0.0.1", "alice") is None
    first.record_failure("10.0.0.1", "alice")
    assert second.retry_after("10.0.0.1", "alice") == 60
    # Redis out of reach: counted in the instance's disk table instead, with a warning.
    gone = LoginThrottle(2, 60, RedisStore(f"redis://127.0.0.1:{free_port()}/0"),
                         DiskStore(tmp_path / "c"))
    started = time.monotonic()
    for _ in range(2):
        gone.record_failure("10.0.0.2", "bob")
    assert gone.retry_after("10.0.0.2", "bob") == 60
    assert time.monotonic() - started < 5  # no waiting on the missing Redis per request
    assert "RedisStore" in caplog.text and len(gone.fallback) == 2
