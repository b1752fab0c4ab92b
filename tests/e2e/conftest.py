"""Browser and server fixtures for the end-to-end tests.

The app under test runs as ``python -m classmap.app.cli serve`` (the real console script) in
a subprocess on 127.0.0.1 and a free port, sharing the session's result cache, with
one deliberately broken model configured. Chromium is Debian's (/usr/bin/chromium),
driven by Playwright. Without a browser the tests skip — unless ``CI=true``, where a
missing browser fails the run.

Every test's page records console errors; any error fails the test at teardown.
"""

from __future__ import annotations

import json
import os
import signal
import socket
import subprocess
import sys
import time
import urllib.request
from pathlib import Path

import numpy as np
import pytest

ROOT = Path(__file__).resolve().parents[2]
CHROMIUM = Path("/usr/bin/chromium")
CHROMIUM_ARGS = ["--headless", "--no-sandbox", "--disable-gpu", "--no-first-run",
                 "--disable-background-networking", "--disable-component-update",
                 "--disable-sync"]
VIEWPORT = {"width": 1480, "height": 1250}
SERVER_START_SECONDS = 120


def missing_browser() -> str | None:
    """Why the browser tests cannot run here, or None."""
    try:
        import playwright.sync_api  # noqa: F401
    except ImportError:
        return "the playwright package is not installed (pip install playwright)"
    if not CHROMIUM.exists():
        return f"no Chromium at {CHROMIUM} (apt-get install chromium)"
    return None


def free_port() -> int:
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        return sock.getsockname()[1]


# The session's browser is tests/conftest.py's `browser` (one per test process).


@pytest.fixture(scope="session")
def dash_server(session_cache, tmp_path_factory, artifacts_dir):
    """Base URL of ``classmap serve`` running on a free loopback port."""
    if missing_browser() is not None and os.environ.get("CI", "").lower() != "true":
        pytest.skip(missing_browser())
    folder = tmp_path_factory.mktemp("e2e")
    broken = folder / "broken.npy"
    np.save(broken, np.zeros(7, dtype=np.float32))
    port = free_port()
    env = {**os.environ, "HF_HUB_OFFLINE": "1", "CLASSMAP_JOBS_DIR": str(folder / "jobs"),
           "CLASSMAP_MODELS": json.dumps([{"id": "broken", "head": str(broken)}])}
    command = [sys.executable, "-m", "classmap.app.cli", "serve", "--host", "127.0.0.1",
               "--port", str(port), "--cache-dir", str(session_cache.directory)]
    # One log per test process (pytest-xdist runs one server in each).
    log = artifacts_dir / f"e2e-server-{os.environ.get('PYTEST_XDIST_WORKER', 'main')}.log"
    yield from serve_until_done(command, ROOT, env, log, port)


def serve_until_done(command: list[str], cwd: Path, env: dict[str, str], log_path: Path,
                     port: int, probe: str = "/"):
    """Start ``classmap serve`` (``command``), yield its base URL once ``probe`` answers
    200 (``/healthz`` for a server with users: ``/`` needs credentials), and stop it when
    the caller resumes. Fails the test if it exits or never answers."""
    with open(log_path, "w") as log:
        # Its own process group: the teardown signals the server and everything it started
        # (gunicorn's workers, the job forkserver and its jobs) at once.
        process = subprocess.Popen(command, cwd=cwd, env=env, stdout=log,
                                   stderr=subprocess.STDOUT, start_new_session=True)
    url = f"http://127.0.0.1:{port}"
    deadline = time.monotonic() + SERVER_START_SECONDS
    while True:
        if process.poll() is not None:
            stop_group(process, grace=0)  # whatever it started before it exited
            pytest.fail(f"{' '.join(command[:4])} exited with {process.returncode}; see {log_path}")
        try:
            with urllib.request.urlopen(url + probe, timeout=2) as response:
                if response.status == 200:
                    break
        except OSError:
            pass
        if time.monotonic() > deadline:
            stop_group(process, grace=0)
            pytest.fail(f"classmap serve did not answer within {SERVER_START_SECONDS} s; "
                        f"see {log_path}")
        time.sleep(0.3)
    try:
        yield url
    finally:
        stop_group(process)


STOP_GRACE_SECONDS = 5.0


def stop_group(process: subprocess.Popen, grace: float = STOP_GRACE_SECONDS) -> None:
    """Stop ``process`` (started with ``start_new_session=True``) and every process of its
    group: SIGTERM to the group, then SIGKILL to whatever is left after ``grace``
    seconds — the server itself (a gunicorn master once ignored SIGTERM for ~15 s) or a
    child that outlived it. Returns once the server has exited."""
    group = process.pid  # a new session's leader: its pid is the group id

    def signal_group(signum: int) -> bool:
        try:
            os.killpg(group, signum)
            return True
        except ProcessLookupError:  # nobody left in the group
            return False
        except PermissionError:  # the id was reused by another user's group
            return False

    if grace > 0 and signal_group(signal.SIGTERM):
        deadline = time.monotonic() + grace
        while time.monotonic() < deadline:
            if process.poll() is not None and not group_alive(group):
                break
            time.sleep(0.05)
    signal_group(signal.SIGKILL)
    process.wait(timeout=10)


def group_alive(group: int) -> bool:
    """Whether a process of ``group`` is still running (zombies — exited children whose
    parent is gone, waiting for a PID 1 that may never reap them — do not count)."""
    proc = Path("/proc")
    if not proc.is_dir():
        try:
            os.killpg(group, 0)
            return True
        except OSError:
            return False
    for entry in proc.iterdir():
        if not entry.name.isdigit():
            continue
        try:
            fields = (entry / "stat").read_text().rsplit(")", 1)[1].split()
        except OSError:
            continue
        if fields[0] != "Z" and int(fields[2]) == group:  # state, ppid, pgrp
            return True
    return False


@pytest.fixture
def console_errors():
    """Console errors seen by the test's pages; the test fails if any remain."""
    errors: list[str] = []
    yield errors
    assert not errors, "browser console errors:\n" + "\n".join(errors)


@pytest.fixture
def new_page(browser, console_errors):
    """A factory of fresh pages (each in its own context: no shared cache or storage)."""
    contexts = []

    def make():
        # bypass_csp: Playwright's wait_for_function evaluates its string in the page, which
        # the server's CSP forbids; tests/e2e/test_hostile.py checks the CSP without it.
        context = browser.new_context(viewport=VIEWPORT, bypass_csp=True)
        contexts.append(context)
        page = context.new_page()
        page.on("console", lambda message: console_errors.append(message.text)
                if message.type == "error" else None)
        page.on("pageerror", lambda error: console_errors.append(f"page error: {error}"))
        return page

    yield make
    for context in contexts:
        context.close()
