"""Job limits in production mode (app/hosting/celery_app.py) against a real redis-server:
the same ``[limits]`` as the single-process manager (jobs per session, per user and per
model), counted in Redis so every web process and worker shares them, with the same
refusal sentences; places given back when a job ends, fails, is cancelled or stopped,
and reclaimed from a worker that was killed (its lease runs out without heartbeats).

The web process's side runs in a Flask request whose client address and identity are
set the way the access guard sets them; the worker's side is the wrapper a worker runs
(``_beating``), in a thread or — for the killed worker — in a real process killed with
SIGKILL. Also here: a result the worker stores between Dash's two reads of one poll.
"""

from __future__ import annotations

import signal
import subprocess
import sys
import threading
import time
import uuid
from typing import Any

import diskcache
import flask
import pytest
from dash.exceptions import PreventUpdate

from classmap.analysis.settings import JobLimits
from classmap.app.config import Settings
from classmap.app.hosting.celery_app import (DONE, FAILED, LIVE_PREFIX, QUEUED, REFUSED,
                                             RUN_PREFIX, RUNNING, CeleryJobManager, _beating,
                                             make_celery)
from classmap.app.hosting.config import HostingConfig, Limits
from classmap.app.hosting.identity import Identity
from classmap.app.shell.job_processes import UNKNOWN_MODEL, JobManager, write_record
from tests.e2e.conftest import ROOT

pytestmark = [pytest.mark.service, pytest.mark.timeout(120)]

MODEL = "lenet-digits"  # one of the default settings' model_ids


def settings_with(tmp_path, jobs_per_user: int | None = None) -> Settings:
    return Settings.create(cache_dir=tmp_path / "cache", jobs_dir=tmp_path / "jobs",
                           environ={}, warm_default=False,
                           hosting=HostingConfig(limits=Limits(jobs_per_user=jobs_per_user)))


def manager(url: str, limits: JobLimits, settings: Any = None) -> CeleryJobManager:
    return CeleryJobManager(make_celery(url), url, limits, settings)


def job(model: str = MODEL) -> dict[str, Any]:
    return {"id": uuid.uuid4().hex, "model": model, "key": [model, "cosine", "average"],
            "requested": time.time()}


def publish(web: CeleryJobManager, request: dict, address: str = "10.0.0.1",
            user: str = "local") -> str:
    """The web process's publish path in a request from ``address`` signed in as
    ``user``: returns the task id Dash gets."""
    job_fn = web.make_job_fn(lambda request: "done", progress=False, key="k")
    app = flask.Flask("t")
    with app.test_request_context("/", environ_base={"REMOTE_ADDR": address}):
        flask.g.classmap_identity = Identity(user, "viewer")
        return web.call_job_fn(f"result-{request['id']}", job_fn, [request], {})


def state(web: CeleryJobManager, request: dict) -> str:
    return (web.record(request["id"]) or {}).get("state", "")


def local_refusal(tmp_path, limits: JobLimits, settings: Settings, live: list[dict],
                  session: str, user: str, pid: int) -> str:
    """The single-process manager's refusal for a job of ``session``/``user`` when the
    ``live`` jobs (session, user) run: the reference the Celery manager must match."""
    with diskcache.Cache(str(tmp_path / "local-jobs")) as store:
        now = time.time()
        for k, (s, u) in enumerate(live):
            write_record(store, f"j{k}", {"pid": pid, "model": MODEL, "session": s, "user": u,
                                          "state": RUNNING, "message": "", "started": now,
                                          "heartbeat": now})
        return JobManager(store, settings, limits)._refusal(MODEL, session, user)


def wait_until(condition, seconds: float = 20.0) -> None:
    deadline = time.monotonic() + seconds
    while not condition():
        assert time.monotonic() < deadline, "timed out"
        time.sleep(0.05)


# -- admission: refused over a limit, with the single-process sentence ---------------------------


def test_a_session_over_its_limit_is_refused_with_the_single_process_message(
        fresh, tmp_path, sleeper):
    limits = JobLimits(per_model=9, per_session=1, queued=1, time_limit=60,
                       heartbeat_timeout=2)
    settings = settings_with(tmp_path)
    web = manager(fresh, limits, settings)
    first, second, third = job(), job(), job()
    publish(web, first)
    publish(web, second)
    assert state(web, first) == state(web, second) == QUEUED
    task = publish(web, third)
    refused = web.record(third["id"])
    assert refused["state"] == REFUSED
    assert refused["message"] == local_refusal(
        tmp_path, limits, settings, [("address:10.0.0.1", "local")] * 2,
        "address:10.0.0.1", "local", sleeper.pid)
    assert refused["message"].startswith("this session already has 2 background jobs")
    # Dash stops polling the refused job; the page's watchdog shows why, with Retry.
    assert web.job_running(task) is False
    verdict = web.check(third["id"], third["requested"])
    assert verdict.state == "error" and verdict.message == refused["message"]
    web.terminate_job(task)  # Dash's clean-up of a refused job: nothing to revoke
    # Another client's session is not affected.
    other = job()
    publish(web, other, address="10.0.0.2")
    assert state(web, other) == QUEUED


def test_a_user_over_jobs_per_user_is_refused_whatever_the_session(fresh, tmp_path, sleeper):
    limits = JobLimits(per_model=9, per_session=9, queued=1, time_limit=60,
                       heartbeat_timeout=2)
    settings = settings_with(tmp_path, jobs_per_user=1)
    web = manager(fresh, limits, settings)
    publish(web, job(), address="10.0.0.1", user="alice")
    publish(web, job(), address="10.0.0.2", user="alice")
    third = job()
    publish(web, third, address="10.0.0.3", user="alice")
    message = web.record(third["id"])["message"]
    assert message == local_refusal(
        tmp_path, limits, settings,
        [("address:10.0.0.1", "alice"), ("address:10.0.0.2", "alice")],
        "address:10.0.0.3", "alice", sleeper.pid)
    assert message.startswith("user alice already has 2 background jobs")
    bob = job()
    publish(web, bob, address="10.0.0.3", user="bob")
    assert state(web, bob) == QUEUED


def test_a_job_naming_a_model_the_server_does_not_offer_is_refused(fresh, tmp_path):
    web = manager(fresh, JobLimits(), settings_with(tmp_path))
    forged = job(model="not-a-model")
    task = publish(web, forged)
    assert web.record(forged["id"])["message"] == UNKNOWN_MODEL
    assert web.job_running(task) is False


def test_two_web_processes_admitting_at_once_never_exceed_the_limit(fresh, tmp_path):
    """Six requests of one session at once, from three managers (three web processes'
    clients): the admission is one Lua script, so exactly per_session + queued pass."""
    limits = JobLimits(per_model=9, per_session=2, queued=1, time_limit=60)
    webs = [manager(fresh, limits, settings_with(tmp_path)) for _ in range(3)]
    requests = [job() for _ in range(6)]
    start = threading.Barrier(len(requests))

    def admit(k: int) -> None:
        start.wait()
        publish(webs[k % 3], requests[k])

    threads = [threading.Thread(target=admit, args=(k,)) for k in range(len(requests))]
    for thread in threads:
        thread.start()
    for thread in threads:
        thread.join(30)
    states = sorted(state(webs[0], r) for r in requests)
    assert states == [QUEUED] * 3 + [REFUSED] * 3


# -- places given back ----------------------------------------------------------------------------


ONE = JobLimits(per_model=9, per_session=1, queued=0, time_limit=60, heartbeat_timeout=2)


def test_a_place_is_given_back_when_a_job_ends_fails_or_is_cancelled(fresh, tmp_path):
    web, worker = manager(fresh, ONE, settings_with(tmp_path)), manager(fresh, ONE)
    first = job()
    publish(web, first)
    blocked = job()
    publish(web, blocked)
    assert state(web, blocked) == REFUSED
    assert _beating(lambda request: 42, worker)(first) == 42  # the job ends
    second = job()
    publish(web, second)
    assert state(web, second) == QUEUED

    def fail(request: dict) -> None:
        raise ValueError("boom")

    with pytest.raises(ValueError):
        _beating(fail, worker)(second)  # the job fails
    assert state(web, second) == FAILED
    third = job()
    task = publish(web, third)
    assert state(web, third) == QUEUED
    web.terminate_job(task)  # Cancel
    fourth = job()
    publish(web, fourth)
    assert state(web, fourth) == QUEUED


def test_a_job_stopped_by_the_watchdog_gives_its_place_back(fresh, tmp_path):
    web, worker = manager(fresh, ONE, settings_with(tmp_path)), manager(fresh, ONE)
    first = job()
    publish(web, first)
    assert worker.write(first["id"], "start", state=RUNNING, heartbeat=time.time())
    verdict = web.check(first["id"], first["requested"],
                        now=time.time() + ONE.heartbeat_timeout + 1)
    assert verdict.state == "error" and "stopped responding" in verdict.message
    second = job()
    publish(web, second)
    assert state(web, second) == QUEUED


WORKER = """
import sys, time
from classmap.analysis.settings import JobLimits
from classmap.app.hosting.celery_app import CeleryJobManager, _beating, make_celery
url, job_id = sys.argv[1:3]
worker = CeleryJobManager(make_celery(url), url, JobLimits(heartbeat_timeout=2))
_beating(lambda request: time.sleep(600), worker)({"id": job_id, "model": "m"})
"""


def test_a_killed_worker_s_places_are_reclaimed_once_its_heartbeat_stops(fresh, tmp_path):
    """A worker process holding the session's only place (and the model's only slot) is
    killed with SIGKILL — nothing of it runs again, no watchdog looks (the page was
    closed): its lease runs out ``heartbeat_timeout`` s after its last heartbeat. While it
    lives, its heartbeat keeps the place, however long it computes."""
    limits = JobLimits(per_model=1, per_session=1, queued=0, time_limit=600,
                       heartbeat_timeout=2)
    web = manager(fresh, limits, settings_with(tmp_path))
    first = job()
    publish(web, first)
    process = subprocess.Popen([sys.executable, "-c", WORKER, fresh, first["id"]], cwd=ROOT)
    try:
        wait_until(lambda: state(web, first) == RUNNING, 60)
        time.sleep(limits.heartbeat_timeout + 1.5)  # past a lease: the heartbeat renewed it
        held = job()
        publish(web, held)
        assert state(web, held) == REFUSED
        process.send_signal(signal.SIGKILL)
        process.wait(10)
        killed = time.monotonic()
        while True:
            again = job()
            publish(web, again)
            if state(web, again) == QUEUED:
                break
            assert time.monotonic() - killed < limits.heartbeat_timeout + 3, \
                "the killed worker's place was not reclaimed"
            time.sleep(0.2)
    finally:
        if process.poll() is None:
            process.kill()
            process.wait()
    # Its model slot too: the admitted job computes at once on another worker.
    assert _beating(lambda request: "ran", manager(fresh, limits))(again) == "ran"
    assert state(web, again) == DONE


# -- slots to compute: per model, per session ------------------------------------------------------


def test_a_job_waits_for_its_model_s_slot_and_computes_when_it_is_free(fresh, tmp_path):
    limits = JobLimits(per_model=1, per_session=9, queued=9, time_limit=60,
                       heartbeat_timeout=5)
    web = manager(fresh, limits, settings_with(tmp_path))
    first, second = job(), job()
    publish(web, first, address="10.0.0.1")
    publish(web, second, address="10.0.0.2")  # another session, the same model
    release = threading.Event()
    results: dict[str, Any] = {}

    def run(request: dict, compute) -> None:
        try:
            results[request["id"]] = _beating(compute, manager(fresh, limits))(request)
        except PreventUpdate:
            results[request["id"]] = "not run"

    first_thread = threading.Thread(target=run, args=(first, lambda r: release.wait(30)))
    first_thread.start()
    wait_until(lambda: state(web, first) == RUNNING)
    second_thread = threading.Thread(target=run, args=(second, lambda r: "second"))
    second_thread.start()
    wait_until(lambda: (web.record(second["id"]) or {}).get("message", "").startswith("Queued"))
    verdict = web.check(second["id"], second["requested"])
    assert verdict.state == QUEUED
    assert verdict.message == "Queued: waiting for 1 other job(s) of this model or session…"
    time.sleep(0.5)
    assert state(web, second) == QUEUED and second["id"] not in results
    release.set()
    first_thread.join(30)
    second_thread.join(30)
    assert results == {first["id"]: True, second["id"]: "second"}
    import redis

    client = redis.Redis.from_url(fresh)
    leftover = [k for k in client.scan_iter(match=RUN_PREFIX + "*") if client.zcard(k)]
    leftover += [k for k in client.scan_iter(match=LIVE_PREFIX + "*") if client.zcard(k)]
    assert leftover == []


def test_a_job_cancelled_while_it_waits_for_a_slot_is_not_run(fresh, tmp_path):
    limits = JobLimits(per_model=1, per_session=9, queued=9, time_limit=60,
                       heartbeat_timeout=5)
    web, worker = manager(fresh, limits, settings_with(tmp_path)), manager(fresh, limits)
    first, second = job(), job()
    publish(web, first)
    task = publish(web, second)
    assert worker.take_slot(RUN_PREFIX, [("model:" + MODEL, 1)], first["id"], 30) == (0, 0, 0)
    outcome: list[Any] = []

    def run() -> None:
        try:
            outcome.append(_beating(lambda request: "ran", worker)(second))
        except PreventUpdate:
            outcome.append("not run")

    thread = threading.Thread(target=run)
    thread.start()
    wait_until(lambda: (web.record(second["id"]) or {}).get("message", "").startswith("Queued"))
    web.terminate_job(task)
    thread.join(10)
    assert outcome == ["not run"]
