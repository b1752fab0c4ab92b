"""Background jobs that fail visibly (issue 15 #5) and the class map's Cancel (issue 14 #1).

Each fault of the issue is replayed against a real ``classmap serve`` with its own
result cache (so every job really computes) and short limits: a job process that is
killed, one that hangs (SIGSTOP: no heartbeat), one that cannot write its results, a
second job of the same session while the first computes (queued), and a server stopped
during a job (the job ends with it and the port is free at once). The job processes are
found as the children of the server's forkserver.
"""

from __future__ import annotations

import json
import os
import signal
import socket
import sys
import time
from pathlib import Path
from urllib.parse import parse_qs, urlparse

import numpy as np
import psutil
import pytest

from tests.e2e.conftest import ROOT, free_port, serve_until_done

pytestmark = [pytest.mark.e2e, pytest.mark.slow]

TIMEOUT = 90_000
HEARTBEAT = 10  # CLASSMAP_JOB_HEARTBEAT of the servers under test (seconds)
TITLE = ("() => document.querySelector('#class-map-graph .js-plotly-plot')"
         "?._fullLayout?.xaxis?.title?.text || ''")


def server_command(port: int, cache: Path) -> list[str]:
    return [sys.executable, "-m", "classmap.app.cli", "serve", "--host", "127.0.0.1",
            "--port", str(port), "--cache-dir", str(cache)]


# One model per test, so no test finds another's map already cached: (id, classes).
MODELS = {"small": 24, "m-cancel": 600, "m-kill": 600, "m-hang": 600, "m-queue": 600,
          "m-stop": 600, "m-queue-b": 600}


def server_env(folder: Path, **extra: str) -> dict[str, str]:
    entries = []
    for seed, (model, classes) in enumerate(MODELS.items()):
        path = folder / f"{model}.npy"
        head = np.random.default_rng(seed).normal(size=(classes, 16)).astype(np.float32)
        np.save(path, head)
        entries.append({"id": model, "head": str(path)})
    return {**os.environ, "HF_HUB_OFFLINE": "1", "CLASSMAP_JOBS_DIR": str(folder / "jobs"),
            "CLASSMAP_JOB_HEARTBEAT": str(HEARTBEAT), "CLASSMAP_JOBS_PER_SESSION": "1",
            "CLASSMAP_MODELS": json.dumps(entries), **extra}


@pytest.fixture(scope="module")
def fault_server(tmp_path_factory, artifacts_dir):
    """(base URL, result cache folder) of a server with its own cache and short limits."""
    folder = tmp_path_factory.mktemp("faults")
    port = free_port()
    cache = folder / "cache"
    for url in serve_until_done(server_command(port, cache), ROOT, server_env(folder),
                                artifacts_dir / "e2e-faults-server.log", port):
        yield url, cache


def server_pid(url: str) -> int:
    port = int(urlparse(url).port)
    for conn in psutil.net_connections("tcp"):
        if conn.status == psutil.CONN_LISTEN and conn.laddr.port == port and conn.pid:
            return conn.pid
    raise AssertionError(f"no process listens on {port}")


def forkserver_of(url: str) -> psutil.Process:
    """The forkserver the server at ``url`` starts its jobs from."""
    for child in psutil.Process(server_pid(url)).children():
        if "forkserver" in " ".join(child.cmdline()):
            return child
    raise AssertionError("the server has no forkserver")


def job_processes(url: str) -> list[psutil.Process]:
    """The running jobs of the server at ``url``: its forkserver's children."""
    return forkserver_of(url).children()


def map_job(page, url: str, seconds: float = 60) -> psutil.Process:
    """The class map's job process, once the page shows it running (the newest job: the
    model's analysis job may not have ended yet)."""
    page.wait_for_selector("#classes-embedding-panel:not([hidden])", timeout=TIMEOUT)
    deadline = time.monotonic() + seconds
    while time.monotonic() < deadline:
        jobs = job_processes(url)
        if jobs:
            return max(jobs, key=lambda job: job.create_time())
        time.sleep(0.1)
    raise AssertionError("the map's job process never started")


def query_of(url: str) -> dict[str, str]:
    return {key: values[0] for key, values in parse_qs(urlparse(url).query).items()}


def open_map(page, url: str, model: str, method: str) -> None:
    page.goto(url + f"/?model={model}&embedding={method}")
    page.wait_for_selector("#class-map-graph .scatterlayer .trace .point", timeout=TIMEOUT)


def wait_for_map(page, label: str, seconds: float = 180) -> None:
    page.wait_for_function(f"({TITLE})() === '{label} 1'", timeout=int(seconds * 1000))


def test_cancel_then_restart_embedding(fault_server, new_page, artifacts_dir):
    """Issue 14 #1: t-SNE → Cancel → (the toggle and URL say PCA) → t-SNE computes."""
    url, _ = fault_server
    page = new_page()
    open_map(page, url, "m-cancel", "tsne")
    map_job(page, url)
    page.click("#classes-embedding-cancel")
    page.wait_for_function("document.querySelector('#classes-embedding input[value=pca]')"
                           ".checked", timeout=TIMEOUT)
    page.wait_for_function("!location.search.includes('embedding=tsne')", timeout=TIMEOUT)
    assert query_of(page.url).get("embedding", "pca") == "pca"
    page.wait_for_function("!document.querySelector('#classes-embedding-note').innerText"
                           ".includes('Computing')", timeout=10_000)
    assert page.evaluate(f"({TITLE})()") == "PC 1"
    page.click("#classes-embedding label:has-text('t-SNE')")
    wait_for_map(page, "t-SNE")
    assert query_of(page.url)["embedding"] == "tsne"
    page.screenshot(path=str(artifacts_dir / "e2e-jobs-cancel-restart.png"), full_page=True)


def test_killed_job_shows_its_error_with_a_retry(fault_server, new_page, artifacts_dir):
    """A job process killed mid-way: an error with Retry within seconds; Retry completes.
    The job holds no listening socket (it forked from the forkserver, not the server)."""
    url, _ = fault_server
    page = new_page()
    open_map(page, url, "m-kill", "umap")
    job = map_job(page, url)
    port = int(urlparse(url).port)
    assert not [c for c in job.net_connections("tcp") if c.status == psutil.CONN_LISTEN], \
        "the job inherited the server's listening socket"
    assert port not in {c.laddr.port for c in job.net_connections("tcp")}
    job.kill()
    start = time.monotonic()
    page.wait_for_selector("#classes-embedding-failure:not([hidden])", timeout=15_000)
    assert time.monotonic() - start < 10
    assert "stopped unexpectedly" in page.inner_text("#classes-embedding-failure")
    page.screenshot(path=str(artifacts_dir / "e2e-jobs-killed.png"), full_page=True)
    page.click("#classes-embedding-retry")
    page.wait_for_selector("#classes-embedding-failure", state="hidden", timeout=TIMEOUT)
    wait_for_map(page, "UMAP")


def test_hung_job_is_stopped_and_shown(fault_server, new_page):
    """A job that stops beating (SIGSTOP) is killed and reported after the heartbeat limit."""
    url, _ = fault_server
    page = new_page()
    open_map(page, url, "m-hang", "tsne")
    job = map_job(page, url)
    job.send_signal(signal.SIGSTOP)
    page.wait_for_selector("#classes-embedding-failure:not([hidden])",
                           timeout=(HEARTBEAT + 10) * 1000)
    assert "stopped responding" in page.inner_text("#classes-embedding-failure")
    job.wait(5)  # the watchdog killed it
    assert not psutil.pid_exists(job.pid) or job.status() == psutil.STATUS_ZOMBIE


def test_analysis_that_cannot_write_says_so_and_retry_recovers(fault_server, new_page):
    """The weight analysis of a model whose job cannot write a byte (the forkserver's file
    size limit set to 0, so every write fails with EFBIG, as on a full disk — root
    included): the page shows the failure with Retry instead of "Analysing…" forever,
    and Retry succeeds once writes work again."""
    url, _ = fault_server
    forkserver = forkserver_of(url)
    soft, hard = forkserver.rlimit(psutil.RLIMIT_FSIZE)
    forkserver.rlimit(psutil.RLIMIT_FSIZE, (0, hard))
    page = new_page()
    try:
        page.goto(url + "/?model=small")
        page.wait_for_selector("#shell-job-failure:not([hidden])", timeout=TIMEOUT)
        text = page.inner_text("#shell-job-failure")
        assert "failed" in text or "stopped" in text
    finally:
        forkserver.rlimit(psutil.RLIMIT_FSIZE, (soft, hard))
    page.click("#shell-job-retry")
    page.wait_for_selector("#shell-job-failure", state="hidden", timeout=TIMEOUT)
    page.wait_for_function("document.querySelector('#classes-model-summary')?.innerText"
                           ".includes('24')", timeout=TIMEOUT)


def test_second_job_of_a_session_waits_queued(fault_server, new_page):
    """With one job per session, a second map job of the same session says "Queued"
    until the first ends. The two jobs are for different models (m-queue, m-queue-b), so
    the per-model limit cannot be what queues the second; the two pages are tabs of one
    browser context, so they are one session whether the server keys sessions by cookie
    or by client address."""
    url, _ = fault_server
    first = new_page()
    second = first.context.new_page()  # same context: same cookies, same address
    open_map(second, url, "m-queue-b", "pca")  # its weight analysis done before the hold
    open_map(first, url, "m-queue", "umap")
    job = map_job(first, url)
    job.send_signal(signal.SIGSTOP)  # hold the slot (shorter than the heartbeat limit)
    try:
        second.click("#classes-embedding label:has-text('UMAP')")
        second.wait_for_function("document.querySelector('#classes-embedding-label')"
                                 "?.innerText.includes('Queued')", timeout=(HEARTBEAT - 1) * 1000)
    finally:
        job.send_signal(signal.SIGCONT)
    wait_for_map(first, "UMAP")
    wait_for_map(second, "UMAP")  # its own job ran once the first had ended


def test_jobs_stop_with_the_server_and_free_its_port(tmp_path, new_page, artifacts_dir):
    """A server stopped during a job: the job ends too, and a new server can bind the port."""
    port = free_port()
    command = server_command(port, tmp_path / "cache")
    env = server_env(tmp_path)
    serving = serve_until_done(command, ROOT, env, artifacts_dir / "e2e-faults-stop.log", port)
    url = next(serving)
    page = new_page()
    open_map(page, url, "m-stop", "tsne")
    jobs = [map_job(page, url)]
    page.close()
    next(serving, None)  # terminates the server
    gone, alive = psutil.wait_procs(jobs, timeout=10)
    assert not alive, f"jobs outlived the server: {[p.pid for p in alive]}"
    with socket.socket() as sock:  # as a restarted server binds it (werkzeug sets SO_REUSEADDR)
        sock.setsockopt(socket.SOL_SOCKET, socket.SO_REUSEADDR, 1)
        sock.bind(("127.0.0.1", port))
        sock.listen()
