"""Celery job records against a real redis-server (app/hosting/celery_app.py): the racy
interleavings of the web process, the worker and its heartbeat thread replayed in a
fixed order, the watchdog's clock rule next to the single-process manager's, and what
a failure shows the page.

An interleaving is forced with :class:`Interleaved`, a redis client that runs a hook
(another process's write) just before the first write command that mentions a word —
i.e. between any read a writer made and its write, where a lost update would happen.
Nothing is mocked: the records live in Redis, tasks are published to it.
"""

from __future__ import annotations

import logging
import socket
import subprocess
import threading
import time
import uuid
from typing import Any, Callable

import diskcache
import pytest
from dash.exceptions import PreventUpdate
from redis.commands.core import Script

from classmap.analysis.settings import JobLimits
from classmap.app.hosting import celery_app as module
from classmap.app.hosting.celery_app import (CANCELLED, DONE, FAILED, QUEUED, RUNNING,
                                             CeleryJobManager, _beating, failure_message,
                                             make_celery, unreachable)
from classmap.app.shell.job_processes import check_job, write_record
from tests.e2e.conftest import free_port

pytestmark = [pytest.mark.service, pytest.mark.timeout(120)]

LIMITS = JobLimits(time_limit=60, heartbeat_timeout=5)
WRITES = {"set", "setex", "hset", "eval", "evalsha"}


class Interleaved:
    """A redis client (proxy of ``client``) that calls ``hook`` once, just before the
    first write command for which ``when(repr of its arguments)`` holds; ``landed`` is
    set once that command has returned."""

    def __init__(self, client: Any, when: Callable[[str], bool], hook: Callable[[], None]):
        self._client, self._when, self._hook = client, when, hook
        self.fired = False
        self.landed = threading.Event()

    def register_script(self, script: str) -> Script:
        return Script(self, script)  # its EVALSHA goes through this proxy

    def __getattr__(self, name: str) -> Any:
        attr = getattr(self._client, name)
        if name not in WRITES:
            return attr

        def call(*args: Any, **kwargs: Any) -> Any:
            mine = not self.fired and self._when(repr((args, kwargs)))
            if mine:
                self.fired = True
                self._hook()
            result = attr(*args, **kwargs)
            if mine:
                self.landed.set()
            return result

        return call


class Manager(CeleryJobManager):
    """A CeleryJobManager whose Redis client may be an :class:`Interleaved` one."""

    proxy: Interleaved | None = None

    @property
    def client(self) -> Any:
        return self.proxy or self.handle.backend.client


def manager(url: str) -> Manager:
    """One process's manager (the web process's or the worker's) on the Redis at ``url``."""
    return Manager(make_celery(url), url, LIMITS)


def request() -> dict[str, Any]:
    return {"id": uuid.uuid4().hex, "model": "m", "requested": time.time()}


def publish(web: Manager, job: dict[str, Any]) -> str:
    """The web process's real publish path: record ``queued``, task into Redis, task id."""
    job_fn = web.make_job_fn(lambda job: "done", progress=False, key="k")
    return web.call_job_fn("k", job_fn, [job], {})


def start(worker: Manager, job_id: str, heartbeat: float | None = None) -> bool:
    """The worker's first write when it takes the task (as ``_beating`` makes it)."""
    return worker.write(job_id, "start", state=RUNNING, heartbeat=heartbeat or time.time(),
                        worker=socket.gethostname())


# -- lost updates -----------------------------------------------------------------------------


def test_the_task_id_written_after_publishing_keeps_the_worker_s_running_state(fresh):
    web, worker, job = manager(fresh), manager(fresh), request()
    web.proxy = Interleaved(web.handle.backend.client, lambda a: "'task'" in a,
                            lambda: start(worker, job["id"]))
    task = publish(web, job)
    assert web.proxy.fired
    record = web.record(job["id"])
    assert record["state"] == RUNNING and record["task"] == task
    assert web.check(job["id"], job["requested"]).state == RUNNING  # not "Waiting…"


def test_a_queued_write_never_puts_a_running_job_back(fresh):
    web, worker, job = manager(fresh), manager(fresh), request()
    late_now = job["requested"] + LIMITS.time_limit + 1
    web.proxy = Interleaved(web.handle.backend.client, lambda a: "'queued'" in a,
                            lambda: start(worker, job["id"], heartbeat=late_now))
    publish(web, job)
    assert web.proxy.fired
    assert web.record(job["id"])["state"] == RUNNING
    # Its clock still runs from the request (the refused "queued" write carried "started"),
    # though its worker beats:
    late = web.check(job["id"], job["requested"], now=late_now)
    assert late.state == "error" and "limit of 60 s" in late.message


def test_a_heartbeat_in_flight_when_the_job_ends_cannot_revive_it(fresh, monkeypatch):
    monkeypatch.setattr(module, "BEAT_SECONDS", 0.05)
    worker, job = manager(fresh), request()
    in_flight, ended = threading.Event(), threading.Event()

    def hold_the_beat() -> None:  # the beat thread, paused between its read and its write
        in_flight.set()
        ended.wait(1.0)

    worker.proxy = Interleaved(worker.handle.backend.client,
                               lambda a: threading.current_thread().name
                               == "classmap-heartbeat",
                               hold_the_beat)
    manager(fresh).write(job["id"], "queue", state=QUEUED, started=time.time(),
                         heartbeat=time.time(), message="")

    def compute(request: dict) -> str:
        assert in_flight.wait(10), "no heartbeat was written while the job computed"
        return "result"

    assert _beating(compute, worker)(job) == "result"
    ended.set()
    assert worker.proxy.landed.wait(10)
    assert worker.record(job["id"])["state"] == DONE
    assert worker.check(job["id"], job["requested"], now=time.time() + 3600) is None


def test_the_watchdog_s_stop_loses_to_a_job_that_finished_meanwhile(fresh):
    web, worker, job = manager(fresh), manager(fresh), request()
    t0 = job["requested"]
    web.write(job["id"], "queue", state=QUEUED, started=t0, heartbeat=t0, message="")
    start(worker, job["id"], heartbeat=t0)
    web.proxy = Interleaved(web.handle.backend.client, lambda a: "'failed'" in a,
                            lambda: worker.write(job["id"], "finish", state=DONE, message=""))
    # The watchdog read a silent record, then the worker finished before its write:
    assert web.check(job["id"], t0, now=t0 + LIMITS.heartbeat_timeout + 1) is None
    assert web.proxy.fired and web.record(job["id"])["state"] == DONE


def test_a_job_the_watchdog_stopped_stays_failed_when_its_worker_finishes_late(fresh):
    web, worker, job = manager(fresh), manager(fresh), request()
    t0 = job["requested"]
    web.write(job["id"], "queue", state=QUEUED, started=t0, heartbeat=t0, message="")
    start(worker, job["id"], heartbeat=t0)
    verdict = web.check(job["id"], t0, now=t0 + LIMITS.heartbeat_timeout + 1)
    assert verdict.state == "error" and "stopped responding" in verdict.message
    assert not worker.write(job["id"], "finish", state=DONE, message="")
    assert not worker.write(job["id"], "beat", heartbeat=time.time())
    assert web.record(job["id"])["state"] == FAILED
    assert web.check(job["id"], t0).message == verdict.message


def test_cancel_marks_a_queued_job_and_a_worker_then_does_not_run_it(fresh):
    web, worker, job = manager(fresh), manager(fresh), request()
    task = publish(web, job)
    web.terminate_job(task)
    assert web.record(job["id"])["state"] == CANCELLED
    ran = []
    with pytest.raises(PreventUpdate):
        _beating(lambda request: ran.append(request), worker)(job)
    assert ran == [] and web.record(job["id"])["state"] == CANCELLED
    assert web.check(job["id"], job["requested"]) is None


def test_dash_s_clean_up_after_a_result_keeps_the_job_done(fresh):
    web, worker, job = manager(fresh), manager(fresh), request()
    task = publish(web, job)
    assert _beating(lambda request: 42, worker)(job) == 42
    web.terminate_job(task)  # Dash calls it after reading the result
    assert web.record(job["id"])["state"] == DONE


def test_dash_s_clean_up_after_a_result_does_not_revoke_the_finished_task(fresh):
    """Dash calls terminate_job after every result it reads; a revoke with terminate then
    reached the worker while the task was returning (its process may already run another
    task). Only a job still queued or running is revoked (Cancel)."""
    revoked: list[str] = []

    class Watched(Manager):
        def _revoke(self, task: Any) -> None:
            revoked.append(task)
            super()._revoke(task)

    web, worker = Watched(make_celery(fresh), fresh, LIMITS), manager(fresh)
    done_job, queued_job = request(), request()
    done_task = publish(web, done_job)
    _beating(lambda request: 1, worker)(done_job)
    web.terminate_job(done_task)
    assert revoked == []
    queued_task = publish(web, queued_job)
    web.terminate_job(queued_task)  # Cancel
    assert revoked == [queued_task]
    assert web.record(queued_job["id"])["state"] == CANCELLED


def test_a_result_stored_between_dash_s_two_reads_of_a_poll_still_reaches_the_page(fresh):
    """Dash's poll reads the result, then asks whether the job still runs; on "no" with
    no result it ends the polling for good. A worker that stores the result and ends
    between the two left the page waiting for ever (a new analysis that never arrived,
    its task succeeded in the worker's log). Here the worker's two writes — Dash's
    result, then Celery's SUCCESS — land exactly there."""
    web, job = manager(fresh), request()
    key = f"result-{job['id']}"
    job_fn = web.make_job_fn(lambda job: "done", progress=False, key="k")
    task = web.call_job_fn(key, job_fn, [job], {})
    assert web.get_result(key, task) is web.UNDEFINED  # the poll's first read
    web.handle.backend.set(key, '"the analysis"')  # the worker: Dash's result …
    web.handle.backend.mark_as_done(task, None)  # … then Celery's SUCCESS
    assert web.job_running(task), "Dash would stop polling with the result unread"
    # The next poll delivers it; after that the job is over.
    assert web.get_result(key, task) == "the analysis"
    assert not web.job_running(task)


def test_record_writes_survive_redis_forgetting_its_scripts(fresh):
    """A restarted Redis has no script cache: the Lua writes are loaded again (NOSCRIPT),
    not failed."""
    import redis

    web, job = manager(fresh), request()
    publish(web, job)
    redis.Redis.from_url(fresh).script_flush()
    assert web.write(job["id"], "start", state=RUNNING, heartbeat=time.time())
    redis.Redis.from_url(fresh).script_flush()
    assert web.take_slot(module.RUN_PREFIX, [("model:m", 1)], job["id"], 5) == (0, 0, 0)
    assert web.record(job["id"])["state"] == RUNNING


# -- the clock rule: the same verdicts as the single-process manager ---------------------------


@pytest.mark.parametrize("state, age, verdict", [
    (QUEUED, 10, QUEUED),
    (QUEUED, LIMITS.time_limit + 1, "error"),
    (RUNNING, 10, RUNNING),
    (RUNNING, LIMITS.time_limit + 1, "error"),
])
def test_the_time_limit_counts_waiting_as_in_the_single_process_manager(
        fresh, tmp_path, state, age, verdict):
    now = time.time()
    started = now - age
    # Single process: a live job process (it beats, also while queued).
    sleeper = subprocess.Popen(["sleep", "60"])
    try:
        with diskcache.Cache(str(tmp_path / "jobs")) as store:
            write_record(store, "j", {"pid": sleeper.pid, "model": "m", "session": "s",
                                      "state": state, "message": "", "started": started,
                                      "heartbeat": now})
            local = check_job(store, "j", started, LIMITS, now=now)
    finally:
        sleeper.kill()
        sleeper.wait()
    # Celery: the same clocks.
    web, worker, job = manager(fresh), manager(fresh), request()
    web.write(job["id"], "queue", state=QUEUED, started=started, heartbeat=started, message="")
    if state == RUNNING:
        start(worker, job["id"], heartbeat=now)
    celery = web.check(job["id"], started, now=now)
    assert (local.state, celery.state) == (verdict, verdict)
    if verdict == "error":
        assert f"limit of {LIMITS.time_limit:.0f} s" in celery.message
        assert web.record(job["id"])["state"] == FAILED


def test_a_queued_task_waits_for_a_worker_without_heartbeat_until_its_time_limit(fresh):
    web, job = manager(fresh), request()
    task = publish(web, job)
    t0 = web.record(job["id"])["started"]
    waiting = web.check(job["id"], t0, now=t0 + LIMITS.heartbeat_timeout * 10)
    assert waiting.state == QUEUED and waiting.message == "Waiting for a free worker…"
    late = web.check(job["id"], t0, now=t0 + LIMITS.time_limit + 1)
    assert late.state == "error" and "waited past its limit of 60 s" in late.message
    assert web.record(job["id"])["state"] == FAILED
    assert web.job_running(task) is False  # Dash stops polling it
    # A worker that takes the task later does not run it.
    with pytest.raises(PreventUpdate):
        _beating(lambda request: pytest.fail("ran a stopped job"), manager(fresh))(job)


# -- what the page is shown ---------------------------------------------------------------------


def test_a_failure_shows_a_fixed_sentence_and_the_first_line_without_class_paths_or_hosts(
        fresh, caplog):
    worker, job = manager(fresh), request()
    host = socket.gethostname()
    secret_path = "/srv/private/cache/r18/heads.npy"

    def compute(request: dict) -> None:
        raise OSError(f"cannot write {secret_path} on {host} (Redis 127.0.0.1:6379)\n"
                      "second line with /etc/passwd")

    with caplog.at_level(logging.ERROR, logger=module.__name__), pytest.raises(OSError):
        _beating(compute, worker)(job)
    message = worker.record(job["id"])["message"]
    assert message == "the background job failed: cannot write heads.npy on … (Redis …:6379)"
    verdict = worker.check(job["id"], job["requested"])
    assert verdict.state == "error" and verdict.message == message
    # The detail is in the worker's log.
    logged = "\n".join(r.getMessage() + str(r.exc_info) for r in caplog.records)
    assert "OSError" in logged and secret_path in logged


def test_failure_message_without_a_message_and_with_a_long_one():
    assert failure_message(KeyError()) == "the background job failed"
    long = failure_message(ValueError("x" * 500))
    assert long == "the background job failed: " + "x" * 200
    assert failure_message(RuntimeError("w1 failed"), hosts=("w1",)) == \
        "the background job failed: … failed"
    assert "RuntimeError" not in failure_message(RuntimeError("boom"))


def test_a_silent_worker_is_reported_without_its_host_name(fresh):
    web, worker, job = manager(fresh), manager(fresh), request()
    t0 = job["requested"]
    web.write(job["id"], "queue", state=QUEUED, started=t0, heartbeat=t0, message="")
    start(worker, job["id"], heartbeat=t0)
    verdict = web.check(job["id"], t0, now=t0 + LIMITS.heartbeat_timeout + 1)
    assert verdict.state == "error" and "stopped responding" in verdict.message
    assert socket.gethostname() not in verdict.message


def test_redis_out_of_reach_is_said_without_its_host():
    broker = f"redis://:hunter2@127.0.0.1:{free_port()}/0"  # nothing listens there
    assert "127.0.0.1" not in str(unreachable(broker))
    web = manager(broker)
    verdict = web.check("some-job", time.time())
    assert verdict.state == "error" and "cannot be reached" in verdict.message
    assert "127.0.0.1" not in verdict.message and "hunter2" not in verdict.message
