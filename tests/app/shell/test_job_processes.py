"""Job records, the watchdog's verdicts, the limits and the Cancel / Retry logic
(app/shell/job_processes.py, app/shell/jobs.py, the class map's job callbacks).

Processes are real (``sleep`` and ``true`` children) so "alive", "dead" and "killed"
are the kernel's answers, not mocks.
"""

from __future__ import annotations

import logging
import subprocess
import threading
import time

import pytest
from dash import no_update
from dash.exceptions import PreventUpdate

from classmap.analysis.errors import ClassmapError
from classmap.analysis.settings import JobLimits, job_limits
from classmap.app.pages.classes.callbacks import (cancel_embedding_logic, embed_failure_logic,
                                                  retry_embedding_logic, watch_embedding_logic)
from classmap.app.shell.callbacks import retry_analysis_logic
from classmap.app.shell import job_processes
from classmap.app.shell.job_processes import (DONE, FAILED, QUEUED, RUNNING, START_GRACE_SECONDS,
                                              JobManager, JobVerdict, _recording_failures,
                                              _wait_for_slot, check_job, find_request,
                                              process_alive, records, write_record)
from classmap.app.shell.jobs import (ERROR, PENDING, job_request, job_status,
                                     watch_status)

LIMITS = JobLimits(per_model=1, per_session=1, queued=1, time_limit=60, heartbeat_timeout=5)


def dead_pid() -> int:
    process = subprocess.Popen(["true"])
    process.wait()
    return process.pid


def record(pid: int, state: str = RUNNING, age: float = 0.0, beat_age: float = 0.0,
           model: str = "m", session: str = "s", message: str = "") -> dict:
    now = time.time()
    return {"pid": pid, "model": model, "session": session, "state": state,
            "message": message, "started": now - age, "heartbeat": now - beat_age}


def test_a_job_without_a_record_is_an_error_only_after_the_grace_period(store):
    now = time.time()
    assert check_job(store, "j", now - 1, LIMITS) is None
    verdict = check_job(store, "j", now - START_GRACE_SECONDS - 1, LIMITS)
    assert verdict.state == ERROR and "never started" in verdict.message
    assert check_job(store, None, now - 999, LIMITS) is None


def test_a_dead_job_process_is_an_error(store):
    write_record(store, "j", record(dead_pid()))
    verdict = check_job(store, "j", None, LIMITS)
    assert verdict.state == ERROR and "stopped unexpectedly" in verdict.message


def test_a_job_that_stops_beating_is_killed_and_reported(store, sleeper):
    write_record(store, "j", record(sleeper.pid, beat_age=LIMITS.heartbeat_timeout + 1))
    verdict = check_job(store, "j", None, LIMITS)
    assert verdict.state == ERROR and "no heartbeat" in verdict.message
    sleeper.wait(5)
    assert not process_alive(sleeper.pid)


def test_a_job_past_its_time_limit_is_killed_and_reported(store, sleeper):
    write_record(store, "j", record(sleeper.pid, age=LIMITS.time_limit + 1))
    verdict = check_job(store, "j", None, LIMITS)
    assert verdict.state == ERROR and "limit of 60 s" in verdict.message
    sleeper.wait(5)


def test_live_queued_finished_and_failed_jobs(store, sleeper):
    write_record(store, "run", record(sleeper.pid))
    write_record(store, "wait", record(sleeper.pid, QUEUED, message="Queued: waiting"))
    write_record(store, "done", record(dead_pid(), DONE))
    write_record(store, "bad", record(dead_pid(), "failed", message="disk full"))
    assert check_job(store, "run", None, LIMITS).state == RUNNING
    assert check_job(store, "wait", None, LIMITS) == JobVerdict(QUEUED, "Queued: waiting")
    assert check_job(store, "done", None, LIMITS) is None
    assert check_job(store, "bad", None, LIMITS).message == "disk full"


def test_a_session_over_its_limit_is_refused(store, sleeper, tmp_path):
    manager = JobManager(store, settings=None, limits=LIMITS)
    assert manager._refusal("m", "s") == ""
    write_record(store, "a", record(sleeper.pid))
    write_record(store, "b", record(sleeper.pid, QUEUED))
    assert "at most 2" in manager._refusal("m", "s")
    assert manager._refusal("m", "other session") == ""
    write_record(store, "c", record(dead_pid()))  # a dead job holds no slot
    assert "2 background jobs" in manager._refusal("m", "s")


def test_a_queued_job_waits_for_the_running_one_of_its_model(store, sleeper):
    write_record(store, "first", record(sleeper.pid, model="m", session="x"))
    write_record(store, "second", record(sleeper.pid, QUEUED, model="m", session="y"))
    waiter = threading.Thread(target=_wait_for_slot, args=(store, "second", LIMITS))
    waiter.start()
    time.sleep(1.2)
    assert waiter.is_alive()
    assert records(store)["second"]["message"].startswith("Queued")
    write_record(store, "first", record(sleeper.pid, DONE))
    waiter.join(5)
    assert not waiter.is_alive() and records(store)["second"]["state"] == RUNNING


def test_limits_come_from_the_environment_and_bad_values_are_refused():
    assert job_limits({}) == JobLimits()
    limits = job_limits({"CLASSMAP_JOBS_PER_MODEL": "3", "CLASSMAP_JOB_HEARTBEAT": "2.5",
                         "CLASSMAP_JOBS_QUEUED": "0"})
    assert (limits.per_model, limits.heartbeat_timeout, limits.queued) == (3, 2.5, 0)
    for name, value in (("CLASSMAP_JOBS_PER_SESSION", "0"), ("CLASSMAP_JOB_TIME_LIMIT", "soon"),
                        ("CLASSMAP_JOBS_PER_MODEL", "-1")):
        with pytest.raises(ClassmapError, match=name):
            job_limits({name: value})


def test_requests_are_new_jobs_and_found_among_callback_arguments():
    a, b = job_request("m", method="tsne"), job_request("m", method="tsne")
    assert a["id"] != b["id"] and a["model"] == "m" and a["method"] == "tsne"
    assert find_request([lambda: None, a]) is a and find_request({"x": b}) is b
    assert find_request([1, "x"]) == {}


def test_the_watchdog_turns_a_pending_status_into_its_error():
    job = job_request("m", key=["m", "cosine", "ward"])
    pending = job_status(["m", "cosine", "ward"], PENDING, job=job)
    assert pending["job"] == job["id"]
    status, label = watch_status(JobVerdict(ERROR, "it died"), pending)
    assert (status["state"], status["message"], label) == (ERROR, "it died", no_update)
    assert watch_status(JobVerdict(QUEUED, "Queued: 1"), pending) == (no_update, "Queued: 1")
    for verdict, status in ((None, pending), (JobVerdict(ERROR, "x"), job_status(["k"], "ready"))):
        with pytest.raises(PreventUpdate):
            watch_status(verdict, status)


def test_retry_of_a_failed_analysis_starts_a_new_job():
    failed = job_status(["m", "cosine", "ward"], ERROR, "it died")
    status, request = retry_analysis_logic(1, failed)
    assert status["state"] == PENDING and status["job"] == request["id"]
    assert request["key"] == ["m", "cosine", "ward"] and request["model"] == "m"
    assert retry_analysis_logic(1, failed)[1]["id"] != request["id"]
    with pytest.raises(PreventUpdate):
        retry_analysis_logic(1, job_status(["k"], PENDING))


def test_cancel_puts_the_map_toggle_back_and_forgets_the_request():
    """Issue 14 #1: after Cancel the selection says the method shown, and the rendered
    key no longer names the cancelled request (so asking again starts a job)."""
    job = job_request("m", method="tsne")
    rendered = {"model": "m", "shown": "pca", "requested": ["m", "tsne"]}
    selection = {"model": "m", "metric": "cosine", "linkage": "ward", "embedding": "tsne"}
    chosen, key, done = cancel_embedding_logic(1, job, None, rendered, selection)
    assert chosen["embedding"] == "pca" and key["requested"] is None
    assert done["state"] == "cancelled" and done["id"] == job["id"]
    with pytest.raises(PreventUpdate):  # the job already ended: nothing to cancel
        cancel_embedding_logic(1, job, {"id": job["id"], "state": "ready"}, rendered, selection)


def test_failed_map_job_shows_why_and_retry_names_a_new_job(store):
    job = job_request("m", method="umap")
    write_record(store, job["id"], record(dead_pid()))

    class Manager:
        def check(self, job_id, requested):
            return check_job(store, job_id, requested, LIMITS)

    done, label, disabled = watch_embedding_logic(Manager(), job, None)
    assert done["state"] == "error" and "stopped unexpectedly" in done["message"] and disabled
    hidden, text = embed_failure_logic(done)
    assert not hidden and text.startswith("UMAP failed")
    new_job, key, pending = retry_embedding_logic(1, done, {"requested": None, "shown": "pca"})
    assert new_job["id"] != job["id"] and key["requested"] == ["m", "umap"]
    assert pending == {**pending, "state": "pending", "id": new_job["id"]}
    assert watch_embedding_logic(Manager(), job, done) == (no_update, no_update, True)


@pytest.mark.parametrize("stale", [{"beat_age": LIMITS.heartbeat_timeout + 1},
                                   {"age": LIMITS.time_limit + 1}],
                         ids=["no heartbeat", "time limit"])
def test_the_watchdog_never_overwrites_a_job_that_finished_after_its_first_read(
        store, sleeper, monkeypatch, stale):
    """The watchdog reads a running record with a stale heartbeat (or past its limit); the
    job writes ``done`` before the watchdog writes: the record stays ``done``, the page gets
    no error (Dash delivers the result) and the process is not killed."""
    write_record(store, "j", record(sleeper.pid, **stale))
    snapshot = records(store)
    write_record(store, "j", record(sleeper.pid, DONE))  # the job ended meanwhile
    reads = []

    def racing_records(cache):  # the watchdog's first read sees the old record
        reads.append(1)
        return snapshot if len(reads) == 1 else records(cache)

    monkeypatch.setattr(job_processes, "records", racing_records)
    assert check_job(store, "j", None, LIMITS) is None
    monkeypatch.undo()
    assert records(store)["j"]["state"] == DONE
    assert process_alive(sleeper.pid)


def test_a_failed_job_shows_a_sentence_and_the_first_line_without_class_or_paths(store, caplog):
    """The page gets the fixed sentence and the message's first line with paths cut to
    their last part; the exception class and the full text go to the log only."""
    job = job_request("m")
    write_record(store, job["id"], record(0, QUEUED))

    def job_fn(request):
        raise OSError(28, "No space left on device: '/srv/classmap/cache/lite0/view.npz'\n"
                          "second line with /home/op/secret")

    with caplog.at_level(logging.ERROR, logger="classmap.app.shell.job_processes"):
        with pytest.raises(OSError):
            _recording_failures(job_fn, store)(job)
    failed = records(store)[job["id"]]
    assert failed["state"] == FAILED
    assert failed["message"] == ("the background job failed: [Errno 28] No space left on "
                                 "device: 'view.npz'")
    logged = [r for r in caplog.records if r.exc_info and r.exc_info[0] is OSError]
    assert logged and job["id"] in logged[0].getMessage()
    assert job_processes.page_failure(KeyError()) == "the background job failed"


def test_terminating_a_job_that_ends_meanwhile_is_not_an_error(store, sleeper, monkeypatch):
    """Dash's clean-up after a result kills the job's process tree; when the process ends
    between Dash's "does it exist" and "list its children", psutil raises NoSuchProcess —
    which must not turn the result's poll into a server error."""
    import psutil
    from dash import DiskcacheManager

    def ended_meanwhile(self, job):
        raise psutil.NoSuchProcess(int(job))

    monkeypatch.setattr(DiskcacheManager, "terminate_job", ended_meanwhile)
    write_record(store, "j", record(sleeper.pid, DONE))
    JobManager(store, settings=None, limits=LIMITS).terminate_job(sleeper.pid)
    assert records(store)["j"]["state"] == DONE
