"""Real services for the production-mode tests: redis-server, Celery workers
(``classmap worker``) and gunicorn (``classmap serve --workers 2 --broker``), each on
loopback and a free port, each stopped at the end. Without redis-server the tests skip
(``CI=true``: they fail — ``.ci/run`` installs it)."""

from __future__ import annotations

import json
import os
import shutil
import signal
import subprocess
import sys
import time
from pathlib import Path

import numpy as np
import pytest

from tests.e2e.conftest import ROOT, console_errors, free_port, new_page  # noqa: F401

REDIS = shutil.which("redis-server") or "/usr/bin/redis-server"
START_SECONDS = 90
HEARTBEAT = 8  # CLASSMAP_JOB_HEARTBEAT of the servers under test (seconds)
# Heads of made-up classifiers (id → classes): each test uses its own, so none finds
# another's analysis in the cache.
MODELS = {"svc-small": 24, "svc-run": 300, "svc-kill": 600, "svc-redis": 40,
          "svc-once": 1500, "svc-cached": 30}


def missing_redis() -> str | None:
    if not Path(REDIS).exists():
        return "redis-server is not installed (apt-get install redis-server; .ci/run does)"
    return None


def require_redis() -> None:
    reason = missing_redis()
    if reason is not None:
        if os.environ.get("CI", "").lower() == "true":
            pytest.fail(f"CI=true but the service tests cannot run: {reason}")
        pytest.skip(reason)


class Redis:
    """A redis-server on ``port`` without persistence; :meth:`stop` and :meth:`start`
    simulate an outage."""

    def __init__(self, port: int, log: Path) -> None:
        self.port = port
        self.log = log
        self.process: subprocess.Popen | None = None

    @property
    def url(self) -> str:
        return f"redis://127.0.0.1:{self.port}/0"

    def start(self) -> None:
        import redis

        with open(self.log, "a") as log:
            self.process = subprocess.Popen(
                [REDIS, "--port", str(self.port), "--bind", "127.0.0.1", "--save", "",
                 "--appendonly", "no"], stdout=log, stderr=subprocess.STDOUT)
        client = redis.Redis(port=self.port, socket_connect_timeout=1)
        deadline = time.monotonic() + 20
        while True:
            try:
                client.ping()
                return
            except redis.exceptions.ConnectionError as error:
                if time.monotonic() > deadline or self.process.poll() is not None:
                    raise AssertionError(f"redis-server did not start; see {self.log}") \
                        from error
                time.sleep(0.1)

    def stop(self) -> None:
        if self.process and self.process.poll() is None:
            self.process.terminate()
            self.process.wait(10)


def service_env(folder: Path, broker: str, **extra: str) -> dict[str, str]:
    entries = []
    for seed, (model, classes) in enumerate(MODELS.items()):
        path = folder / f"{model}.npy"
        if not path.exists():
            head = np.random.default_rng(seed).normal(size=(classes, 16)).astype(np.float32)
            np.save(path, head)
        entries.append({"id": model, "head": str(path)})
    return {**os.environ, "HF_HUB_OFFLINE": "1", "CLASSMAP_JOBS_DIR": str(folder / "jobs"),
            "CLASSMAP_JOB_HEARTBEAT": str(HEARTBEAT), "CLASSMAP_BROKER": broker,
            "CLASSMAP_SECRET_KEY": "service-tests-" + "k" * 40,
            "CLASSMAP_MODELS": json.dumps(entries),
            "CLASSMAP_TEST_PUT_LOG": str(folder / "puts.log"), **extra}


class Worker:
    """``classmap worker`` (with the put counter) in its own process group."""

    def __init__(self, broker: str, cache: Path, env: dict[str, str], log: Path,
                 concurrency: int = 1) -> None:
        self.command = [sys.executable, "-m", "tests.service.counting_worker", "--broker",
                        broker, "--cache-dir", str(cache), "--device", "cpu",
                        "--concurrency", str(concurrency)]
        self.env, self.log = env, log
        self.process: subprocess.Popen | None = None

    def start(self) -> None:
        start = self.log.stat().st_size if self.log.exists() else 0
        with open(self.log, "a") as log:
            self.process = subprocess.Popen(self.command, cwd=ROOT, env=self.env, stdout=log,
                                            stderr=subprocess.STDOUT, start_new_session=True)
        deadline = time.monotonic() + START_SECONDS
        while "ready." not in self.log.read_text()[start:]:
            if self.process.poll() is not None or time.monotonic() > deadline:
                self.kill()
                raise AssertionError(f"classmap worker did not become ready; see {self.log}")
            time.sleep(0.2)

    def kill(self) -> None:
        """SIGKILL to the worker and its pool (as a crash or an OOM kill would)."""
        if self.process and self.process.poll() is None:
            os.killpg(self.process.pid, signal.SIGKILL)
            self.process.wait(10)

    def stop(self) -> None:
        if self.process and self.process.poll() is None:
            os.killpg(self.process.pid, signal.SIGTERM)
            try:
                self.process.wait(15)
            except subprocess.TimeoutExpired:
                self.kill()


def start_web(port: int, cache: Path, env: dict[str, str], log_path: Path,
              *extra: str, broker: bool = True) -> subprocess.Popen:
    """``classmap serve --workers 2 [--broker]`` on ``port``; returns once ``/`` answers."""
    import urllib.request

    command = [sys.executable, "-m", "classmap.app.cli", "serve", "--host", "127.0.0.1",
               "--port", str(port), "--cache-dir", str(cache), "--workers", "2",
               *(["--broker", env["CLASSMAP_BROKER"]] if broker else []), *extra]
    with open(log_path, "w") as log:
        process = subprocess.Popen(command, cwd=ROOT, env=env, stdout=log,
                                   stderr=subprocess.STDOUT, start_new_session=True)
    prefix = extra[extra.index("--url-prefix") + 1] if "--url-prefix" in extra else ""
    url = f"http://127.0.0.1:{port}{prefix}"
    deadline = time.monotonic() + START_SECONDS
    while True:
        if process.poll() is not None:
            raise AssertionError(f"classmap serve exited with {process.returncode}; see "
                                 f"{log_path}")
        try:
            with urllib.request.urlopen(url + "/", timeout=2) as response:
                if response.status == 200:
                    return process
        except OSError:
            pass
        if time.monotonic() > deadline:
            stop_process(process)
            raise AssertionError(f"classmap serve did not answer; see {log_path}")
        time.sleep(0.3)


def stop_process(process: subprocess.Popen) -> None:
    if process.poll() is None:
        os.killpg(process.pid, signal.SIGTERM)
        try:
            process.wait(15)
        except subprocess.TimeoutExpired:
            os.killpg(process.pid, signal.SIGKILL)
            process.wait(5)


@pytest.fixture(scope="module")
def stack(tmp_path_factory, artifacts_dir):
    """A running production stack: (base URL, Redis, Worker, folder with puts.log, the
    gunicorn master process)."""
    require_redis()
    folder = tmp_path_factory.mktemp("service")
    cache = folder / "cache"
    redis_server = Redis(free_port(), artifacts_dir / "service-redis.log")
    redis_server.start()
    env = service_env(folder, redis_server.url)
    worker = Worker(redis_server.url, cache, env, artifacts_dir / "service-worker.log",
                    concurrency=3)
    web = None
    try:
        worker.start()
        port = free_port()
        web = start_web(port, cache, env, artifacts_dir / "service-web.log")
        yield f"http://127.0.0.1:{port}", redis_server, worker, folder, web
    finally:
        if web is not None:
            stop_process(web)
        worker.stop()
        redis_server.stop()


# One redis-server per test module that asks for it (the Celery record and limit tests).
@pytest.fixture(scope="module")
def redis_url(tmp_path_factory):
    require_redis()
    server = Redis(free_port(), tmp_path_factory.mktemp("redis") / "redis.log")
    server.start()
    try:
        yield server.url
    finally:
        server.stop()


@pytest.fixture
def fresh(redis_url):
    import redis

    redis.Redis.from_url(redis_url).flushdb()
    return redis_url
