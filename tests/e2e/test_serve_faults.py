"""``classmap serve`` on a damaged or full result cache, and stopped by a signal (issue 15).

Each test starts a real ``classmap serve`` process (the embedded default model, warmed
at start-up so the cache is read and written before the first request, and one small
head nothing analyses) on a cache that is garbage,
truncated, or on a "full disk" (the process's file-size limit set to 0: every write to a
file fails with EFBIG, as on a full disk, root included). The server must start, serve
a page, and say what happened in one warning — no traceback. Then it is stopped with
SIGINT or SIGTERM: one line and the conventional exit code (130, 143), no traceback.

The server's output goes to a pipe, not a file: with the file-size limit at 0 a log file
could not be written either. The limit is set inside the server process just before
Classmap starts, after Python's ``tempfile`` has found its folder (it proves a folder
usable by writing a file, which torch's import needs; that is not Classmap's to handle).
"""

from __future__ import annotations

import json
import os
import signal
import subprocess
import sys
import threading
import time
import urllib.error
import urllib.request
from pathlib import Path

import numpy as np
import pytest

from classmap.analysis.cache import ResultCache
from tests.e2e.conftest import ROOT, SERVER_START_SECONDS, free_port

pytestmark = [pytest.mark.slow]


# ``python -c FULL_DISK serve …``: every later write to a file fails with EFBIG.
FULL_DISK = """
import resource, sys, tempfile
tempfile.gettempdir()
resource.setrlimit(resource.RLIMIT_FSIZE, (0, resource.RLIM_INFINITY))
from classmap.app.cli import main
sys.argv[0] = "classmap"
sys.exit(main(sys.argv[1:]))
"""


class Server:
    """A ``classmap serve`` process whose output is collected from a pipe."""

    def __init__(self, tmp_path: Path, cache: Path, full_disk: bool = False) -> None:
        head = tmp_path / "small.npy"
        np.save(head, np.random.default_rng(0).normal(size=(12, 8)).astype(np.float32))
        self.port = free_port()
        self.url = f"http://127.0.0.1:{self.port}"
        env = {**os.environ, "HF_HUB_OFFLINE": "1", "CLASSMAP_JOBS_DIR": str(tmp_path / "jobs"),
               "CLASSMAP_MODELS": json.dumps([{"id": "small", "head": str(head)}])}
        start = ["-c", FULL_DISK] if full_disk else ["-m", "classmap.app.cli"]
        self.process = subprocess.Popen(
            [sys.executable, *start, "serve", "--host", "127.0.0.1", "--port", str(self.port),
             "--cache-dir", str(cache)],
            cwd=ROOT, env=env, stdout=subprocess.PIPE, stderr=subprocess.STDOUT, text=True)
        self.lines: list[str] = []
        self.reader = threading.Thread(target=self._read, daemon=True)
        self.reader.start()

    def _read(self) -> None:
        for line in self.process.stdout:
            self.lines.append(line.rstrip("\n"))

    @property
    def output(self) -> str:
        return "\n".join(self.lines)

    def wait_for_page(self) -> bytes:
        """The body of ``/`` once it answers 200 (fails if the server exits first)."""
        deadline = time.monotonic() + SERVER_START_SECONDS
        while time.monotonic() < deadline:
            if self.process.poll() is not None:
                self.reader.join(5)
                pytest.fail(f"serve exited with {self.process.returncode}:\n{self.output}")
            try:
                with urllib.request.urlopen(f"http://127.0.0.1:{self.port}/", timeout=2) as page:
                    if page.status == 200:
                        return page.read()
            except (OSError, urllib.error.URLError):
                pass
            time.sleep(0.3)
        self.process.kill()
        pytest.fail(f"serve did not answer within {SERVER_START_SECONDS} s:\n{self.output}")

    def stop(self, signum: int) -> tuple[int, list[str]]:
        """Send ``signum``; (exit code, the lines printed after it)."""
        before = len(self.lines)
        self.process.send_signal(signum)
        try:
            code = self.process.wait(timeout=60)
        finally:
            if self.process.poll() is None:
                self.process.kill()
        self.reader.join(5)
        return code, self.lines[before:]


def warm_cache(tmp_path: Path) -> Path:
    """A cache folder whose index exists (one entry), as a server leaves it."""
    cache = tmp_path / "cache"
    ResultCache(cache).put("warm", {"x": np.arange(4.0)})
    return cache


def index_db(cache: Path) -> Path:
    return next(cache.rglob("cache.db"))


def entry_files(cache: Path) -> list[str]:
    """The cache's files but its (empty) per-key lock files and the server's secret."""
    return sorted(str(p.relative_to(cache)) for p in cache.rglob("*") if p.is_file()
                  and p.parent.name != "locks" and "secret" not in p.name)


def assert_no_traceback(server: Server) -> None:
    assert "Traceback" not in server.output, server.output
    assert not any(line.startswith("ERROR") for line in server.lines), server.output


def assert_stopped_by(after: list[str], signum: int, server: Server) -> None:
    """The server's last line says which signal stopped it, once (request log lines of
    requests still in flight may come before it)."""
    line = f"classmap: stopped by {signal.Signals(signum).name}; the server and its jobs have ended"
    assert after and after[-1] == line and after.count(line) == 1, server.output


def warnings_about(server: Server, words: str) -> list[str]:
    return [line for line in server.lines if words in line]


@pytest.mark.parametrize("damage, signum, code", [("garbage", signal.SIGINT, 130),
                                                  ("truncated", signal.SIGTERM, 143)])
def test_serve_starts_on_a_damaged_cache_index_and_warns_once(tmp_path, damage, signum, code):
    """The index is moved aside (one warning), the page is served; the signal that stops
    the server gives one line and 128 + its number."""
    cache = warm_cache(tmp_path)
    db = index_db(cache)
    if damage == "garbage":
        db.write_bytes(os.urandom(8192))
    else:
        db.write_bytes(db.read_bytes()[:100])
    server = Server(tmp_path, cache)
    try:
        assert b"_dash-config" in server.wait_for_page()
    finally:
        exit_code, after = server.stop(signum)
    assert len(warnings_about(server, "is damaged")) == 1, server.output
    assert any(p.name.startswith("index.damaged-") for p in cache.iterdir())
    assert_no_traceback(server)
    assert exit_code == code, server.output
    assert_stopped_by(after, signum, server)


def test_serve_starts_on_a_full_disk_warns_once_and_stops_on_sigterm(tmp_path, new_page):
    """Neither the result cache nor the job store can be written: the server starts with
    one warning for each (problem and fix), serves the view it computed at start-up, and
    a page that needs a background job says at once that jobs are disabled and why — no
    traceback, no "Analysing…" for ever. SIGTERM then gives one line and 143."""
    cache = warm_cache(tmp_path)
    entries = entry_files(cache)
    server = Server(tmp_path, cache, full_disk=True)
    try:
        assert b"_dash-config" in server.wait_for_page()
        page = new_page()
        # The default model (Lite0, 1,000 classes), warmed at start-up: drawn from what
        # the server computed in memory (no job needed).
        page.goto(server.url + "/")
        page.wait_for_function("document.querySelector('#classes-model-summary')?.innerText"
                               ".includes('1,000')", timeout=60_000)
        assert page.is_hidden("#shell-job-failure")
        # A model nothing has analysed: its job cannot start; the page says so with Retry.
        page.goto(server.url + "/?model=small")
        page.wait_for_selector("#shell-job-failure:not([hidden])", timeout=60_000)
        text = page.inner_text("#shell-job-failure")
        assert "background jobs are disabled on this server" in text, text
        assert "free disk space" in text and str(tmp_path) not in text, text
    finally:
        code, after = server.stop(signal.SIGTERM)
    assert len(warnings_about(server, "cannot store results in the cache")) == 1, server.output
    jobs_warnings = warnings_about(server, "background jobs are disabled")
    assert len(jobs_warnings) == 1, server.output
    assert "cannot open the job store" in jobs_warnings[0] and "free some space" in \
        jobs_warnings[0], server.output
    assert_no_traceback(server)
    assert code == 143, server.output
    assert_stopped_by(after, signal.SIGTERM, server)
    # The cache still opens and holds what it held (nothing half-written).
    cache_now = ResultCache(cache)
    assert np.array_equal(cache_now.get("warm")[0]["x"], np.arange(4.0))
    assert entry_files(cache) == entries


def test_export_on_a_full_disk_gives_one_line_and_leaves_the_cache_as_it_was(tmp_path):
    """``classmap export`` with every file write failing (EFBIG): one error line (after at
    most one cache warning), exit 2, the cache still opens with what it held, and no
    --out folder or debris is left."""
    cache = warm_cache(tmp_path)
    entries = entry_files(cache)
    head = tmp_path / "small.npy"
    np.save(head, np.random.default_rng(0).normal(size=(12, 8)).astype(np.float32))
    out = tmp_path / "exp" / "out"
    out.parent.mkdir()
    done = subprocess.run(
        [sys.executable, "-c", FULL_DISK, "export", "--head", str(head), "--top-k", "2",
         "--quiet", "--cache-dir", str(cache), "--out", str(out)],
        cwd=ROOT, env={**os.environ, "HF_HUB_OFFLINE": "1"}, capture_output=True, text=True,
        timeout=300)
    lines = [line for line in done.stderr.splitlines() if "joblib" not in line]
    assert done.returncode == 2, done.stderr
    assert "Traceback" not in done.stderr, done.stderr
    errors = [line for line in lines if line.startswith("classmap: error:")]
    assert len(errors) == 1 and "check free space" in errors[0], done.stderr
    assert len([line for line in lines if "cannot store results" in line]) <= 1, done.stderr
    assert not out.exists() and list(out.parent.iterdir()) == []
    assert np.array_equal(ResultCache(cache).get("warm")[0]["x"], np.arange(4.0))
    assert entry_files(cache) == entries
