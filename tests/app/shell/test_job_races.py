"""The job record's races (app/shell/job_processes.py), each replayed in a fixed order.

Three writers race on a job's record: the job's own end (``done``/``failed``), the
watchdog's verdict (``failed``) and the user's Cancel (``cancelled``). Whichever is
written first must stand — nothing lost (no verdict overwritten), nothing stuck (a job
that may not run does not). The competing write is made between the two steps it raced
with: inside the job's callback (before ``run_job``'s final write), or between a
reader's read and its write (the reader gets the stale snapshot first). Processes are
real (``sleep`` children): "alive" and "killed" are the kernel's answers.

These tests use only names the module had before the compare-and-set (so they can be
run against that code, where they fail); the state machine's own tests are in
test_job_transitions.py.
"""

from __future__ import annotations

import os
import time
from types import SimpleNamespace

import pytest
from dash import DiskcacheManager

from classmap.analysis.settings import JobLimits
from classmap.app.shell import job_processes
from classmap.app.shell.job_processes import (CANCELLED, DONE, FAILED, QUEUED, RUNNING,
                                              JobManager, check_job, live_records,
                                              process_alive, records, run_job, write_record)

LIMITS = JobLimits(per_model=1, per_session=1, queued=1, time_limit=60, heartbeat_timeout=5)


def record(pid: int, state: str = RUNNING, beat_age: float = 0.0, **extra) -> dict:
    now = time.time()
    return {"pid": pid, "model": "m", "session": "s", "user": "u", "state": state,
            "message": "", "started": now, "heartbeat": now - beat_age, **extra}


def start_ticks(pid: int) -> float:
    """Independent reference for a process's start: field 22 of /proc/<pid>/stat (clock
    ticks after boot), read here without the module's helper."""
    with open(f"/proc/{pid}/stat") as stat:
        after_name = stat.read().rsplit(")", 1)[1].split()
    return float(after_name[22 - 3])


# -- race 1: the job's own end after the watchdog's or Cancel's verdict ----------------------


@pytest.fixture
def in_job(monkeypatch, store):
    """``run_job`` in this process on ``store``: the app it rebuilds is a stub whose only
    callback is ``callback`` (set by the test); no PDEATHSIG on the test process."""
    monkeypatch.setattr(job_processes, "_die_with_parent", lambda: None)
    monkeypatch.setattr(job_processes, "_IN_JOB", False)
    calls = []
    job = SimpleNamespace(callback=None, calls=calls)

    def registered(result_key, progress_key, args, context):
        calls.append(result_key)
        job.callback(result_key)

    fake_app = SimpleNamespace(_classmap_jobs=SimpleNamespace(func_registry={"fn": registered}))
    monkeypatch.setattr("classmap.app.server.create_app", lambda settings: fake_app)

    def run(job_id: str) -> None:
        settings = SimpleNamespace(jobs_dir=store.directory, hosting=None)
        run_job(settings, LIMITS, "fn", "result-key", "progress-key", [{"id": job_id}], {},
                job_id, os.getpid())

    job.run = run
    return job


@pytest.mark.parametrize("verdict", [
    {"state": FAILED, "message": "no heartbeat"},   # the watchdog stopped it
    {"state": CANCELLED, "message": ""},            # the user's Cancel was recorded
], ids=["watchdog failed", "cancelled"])
def test_a_job_that_ends_after_a_verdict_keeps_the_verdict(store, in_job, verdict):
    """The job's callback is still computing when the watchdog (or Cancel) writes its
    verdict; then the callback returns and ``run_job`` records its end: the verdict must
    stand (the page must not show "done" for a job it reported failed or cancelled)."""
    write_record(store, "j", record(os.getpid(), QUEUED))

    def callback(result_key):
        assert records(store)["j"]["state"] == RUNNING
        write_record(store, "j", {**records(store)["j"], **verdict})  # meanwhile
        store.set(result_key, "the job's output")  # Dash stores the result, then returns

    in_job.callback = callback
    in_job.run("j")
    assert in_job.calls == ["result-key"]
    final = records(store)["j"]
    assert (final["state"], final["message"]) == (verdict["state"], verdict["message"])


def test_a_job_cancelled_while_it_waited_for_a_slot_does_not_run(store, in_job):
    """Cancel (or the watchdog) ends a queued job before it takes a slot: when its wait
    ends it must not compute (nothing the page no longer waits for runs)."""
    write_record(store, "j", record(os.getpid(), CANCELLED))
    in_job.callback = lambda result_key: None
    in_job.run("j")
    assert in_job.calls == []
    assert records(store)["j"]["state"] == CANCELLED


@pytest.mark.parametrize("state,message", [(FAILED, "no heartbeat"), (CANCELLED, "")],
                         ids=["watchdog failed", "cancelled"])
def test_the_output_of_a_job_with_a_verdict_is_never_delivered(store, state, message):
    """The job stored its output before its end lost to the verdict: Dash's poll must get
    nothing (UNDEFINED: the page keeps the watchdog's error or the cancelled state) and
    the stored output is removed."""
    manager = JobManager(store, settings=None, limits=LIMITS)
    write_record(store, "j", record(0, state, message=message, result="result-key"))
    store.set("result-key", "the job's output")
    assert manager.get_result("result-key", None) is manager.UNDEFINED
    assert store.get("result-key") is None


# -- race 2: Cancel's read-then-write against the job's end -------------------------------------


def test_cancel_that_read_a_running_job_which_then_finished_leaves_it_done(
        store, sleeper, monkeypatch):
    """``terminate_job`` reads the record (running), the job records ``done``, then Cancel
    writes: the record stays ``done`` (Cancel may only follow queued or running)."""
    write_record(store, "j", record(sleeper.pid))
    snapshot = records(store)
    write_record(store, "j", record(sleeper.pid, DONE))  # the job ended meanwhile
    reads = []

    def racing_records(cache):  # Cancel's first read sees the old record
        reads.append(1)
        return snapshot if len(reads) == 1 else dict(cache.get(job_processes.RECORDS_KEY))

    monkeypatch.setattr(job_processes, "records", racing_records)
    monkeypatch.setattr(DiskcacheManager, "terminate_job", lambda self, job: None)
    JobManager(store, settings=None, limits=LIMITS).terminate_job(sleeper.pid)
    monkeypatch.undo()
    assert records(store)["j"]["state"] == DONE


def test_cancel_that_read_a_running_job_which_the_watchdog_then_failed_keeps_the_failure(
        store, sleeper, monkeypatch):
    write_record(store, "j", record(sleeper.pid))
    snapshot = records(store)
    write_record(store, "j", record(sleeper.pid, FAILED, message="time limit"))
    reads = []

    def racing_records(cache):
        reads.append(1)
        return snapshot if len(reads) == 1 else dict(cache.get(job_processes.RECORDS_KEY))

    monkeypatch.setattr(job_processes, "records", racing_records)
    monkeypatch.setattr(DiskcacheManager, "terminate_job", lambda self, job: None)
    JobManager(store, settings=None, limits=LIMITS).terminate_job(sleeper.pid)
    monkeypatch.undo()
    assert (records(store)["j"]["state"], records(store)["j"]["message"]) == (FAILED,
                                                                                "time limit")


# -- race 3: a pid that names another process now ---------------------------------------------


def test_the_watchdog_never_kills_a_process_that_reuses_a_dead_jobs_pid(store, sleeper):
    """The job's process ended and the kernel gave its pid to an unrelated process (here: a
    live ``sleep`` whose start differs from the one the record holds). The watchdog finds
    the job silent: it reports it stopped, and must not kill the unrelated process."""
    forged = start_ticks(sleeper.pid) - 100  # the job's process started a second earlier
    write_record(store, "j", record(sleeper.pid, beat_age=LIMITS.heartbeat_timeout + 1,
                                    born=forged))
    verdict = check_job(store, "j", None, LIMITS)
    assert verdict.state == "error" and "stopped" in verdict.message
    time.sleep(0.2)
    assert sleeper.poll() is None and process_alive(sleeper.pid)
    assert records(store)["j"]["state"] == FAILED


def test_the_watchdog_still_kills_a_silent_job_whose_pid_is_its_own(store, sleeper):
    """The control: the same record with the process's true start is the job — killed."""
    write_record(store, "j", record(sleeper.pid, beat_age=LIMITS.heartbeat_timeout + 1,
                                    born=start_ticks(sleeper.pid)))
    verdict = check_job(store, "j", None, LIMITS)
    assert verdict.state == "error" and "no heartbeat" in verdict.message
    sleeper.wait(5)
    assert sleeper.returncode is not None


def test_cancel_never_kills_a_process_that_reuses_a_dead_jobs_pid(store, sleeper):
    write_record(store, "j", record(sleeper.pid, born=start_ticks(sleeper.pid) - 100))
    JobManager(store, settings=None, limits=LIMITS).terminate_job(sleeper.pid)
    time.sleep(0.2)
    assert sleeper.poll() is None
    assert records(store)["j"]["state"] == CANCELLED


def test_a_reused_pid_holds_no_job_slot(store, sleeper):
    """A dead job whose pid now names another process is not live: it neither counts
    against the limits nor shows as running."""
    write_record(store, "j", record(sleeper.pid, born=start_ticks(sleeper.pid) - 100))
    assert live_records(store) == []
    assert check_job(store, "j", None, LIMITS).state == "error"
