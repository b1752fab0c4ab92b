"""Production mode against real services (issue 11 #4, #7): gunicorn web processes with
``--broker``, a Celery worker (``classmap worker``) and redis-server, driven by Chromium.

Each test uses its own made-up model (tests/service/conftest.py), so it never finds
another test's result in the cache.
"""

from __future__ import annotations

import collections
import time

import pytest

from tests.service.conftest import HEARTBEAT, MODELS

pytestmark = [pytest.mark.e2e, pytest.mark.slow, pytest.mark.service, pytest.mark.timeout(300)]

TIMEOUT = 90_000
SUMMARY = "document.querySelector('#classes-model-summary')?.innerText || ''"
TITLE = ("() => document.querySelector('#class-map-graph .js-plotly-plot')"
         "?._fullLayout?.xaxis?.title?.text || ''")
# Every text the analysis job's label showed (its progress reaching the page).
RECORD_LABELS = """
window.__labels = [];
new MutationObserver(() => {
  const label = document.querySelector('#shell-job-label');
  if (label && label.innerText) window.__labels.push(label.innerText);
}).observe(document, {subtree: true, childList: true, characterData: true});
"""


def wait_summary(page, model: str) -> None:
    page.wait_for_function(f"({SUMMARY}).includes('{MODELS[model]}')", timeout=TIMEOUT)


def puts(folder) -> list[tuple[int, str]]:
    """(pid, key) of every result-cache write the workers made."""
    path = folder / "puts.log"
    if not path.exists():
        return []
    return [(int(pid), key) for pid, key in
            (line.split(" ", 1) for line in path.read_text().splitlines())]


def job_records(redis_server) -> list[dict]:
    import redis

    client = redis.Redis(port=redis_server.port, decode_responses=True)
    return [client.hgetall(key) for key in client.scan_iter("classmap-job:*")]


def test_background_analysis_runs_on_the_worker_and_its_progress_reaches_the_page(
        stack, new_page):
    url, _, worker, folder, _ = stack
    before = len(puts(folder))
    page = new_page()
    page.add_init_script(RECORD_LABELS)
    page.goto(url + "/?model=svc-run")
    wait_summary(page, "svc-run")
    written = puts(folder)[before:]
    assert written, "the worker wrote nothing: the analysis did not run on it"
    pool = {child.pid for child in __import__("psutil").Process(worker.process.pid).children()}
    assert {pid for pid, _ in written} <= pool | {worker.process.pid}
    labels = page.evaluate("window.__labels")
    assert any("…" in label for label in labels), labels


def test_killed_worker_shows_the_failure_and_retry_succeeds_on_a_new_worker(stack, new_page):
    url, redis_server, worker, _, _ = stack
    page = new_page()
    page.goto(url + "/?model=svc-kill&embedding=umap")
    page.wait_for_selector("#class-map-graph .scatterlayer .trace .point", timeout=TIMEOUT)
    deadline = time.monotonic() + 180  # a loaded 2-core machine: the map job follows the analysis
    while not any(r.get("state") == "running" for r in job_records(redis_server)):
        assert time.monotonic() < deadline, "the map job never started on the worker"
        time.sleep(0.1)
    worker.kill()
    start = time.monotonic()
    page.wait_for_selector("#classes-embedding-failure:not([hidden])",
                           timeout=(HEARTBEAT + 10) * 1000)
    assert time.monotonic() - start < HEARTBEAT + 8
    assert "stopped responding" in page.inner_text("#classes-embedding-failure")
    worker.start()
    page.click("#classes-embedding-retry")
    page.wait_for_selector("#classes-embedding-failure", state="hidden", timeout=TIMEOUT)
    page.wait_for_function(f"({TITLE})() === 'UMAP 1'", timeout=180_000)


def test_redis_outage_is_said_cached_views_still_work_and_it_recovers(stack, new_page):
    url, redis_server, _, _, _ = stack
    page = new_page()
    page.goto(url + "/?model=svc-cached")
    wait_summary(page, "svc-cached")
    redis_server.stop()
    try:
        cached = new_page()
        cached.goto(url + "/?model=svc-cached")
        wait_summary(cached, "svc-cached")  # from the result cache: no Redis needed
        fresh = new_page()
        fresh.goto(url + "/?model=svc-redis")
        fresh.wait_for_function("document.body.innerText.includes('cannot be reached')",
                                timeout=30_000)
    finally:
        redis_server.start()
    again = new_page()
    again.goto(url + "/?model=svc-redis")
    wait_summary(again, "svc-redis")


# Runs last, after the killed-worker and Redis-outage tests: a new analysis must still
# reach every page once a worker was killed and Redis restarted.
def test_five_sessions_asking_for_the_same_analysis_compute_it_once(stack, new_page):
    url, _, _, folder, _ = stack
    before = len(puts(folder))
    pages = [new_page() for _ in range(5)]
    for page in pages:  # all five load at once
        page.goto(url + "/?model=svc-once", wait_until="commit")
    for page in pages:
        wait_summary(page, "svc-once")
    counts = collections.Counter(key for _, key in puts(folder)[before:])
    assert counts, "nothing was computed"
    assert set(counts.values()) == {1}, counts
