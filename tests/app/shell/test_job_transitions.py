"""The local job record's state machine (app/shell/job_processes.py: ``transition``).

The expected machine is written out here, independently of the module's
``TRANSITIONS`` table, and every (state, change) pair is tried against a real job store;
then two processes race opposite writes on the same records to show that a transition
is atomic across processes (exactly one of each pair wins, and the record says which).
"""

from __future__ import annotations

import multiprocessing
import os
import time

import diskcache
import pytest

from classmap.analysis.settings import JobLimits
from classmap.app.shell.job_processes import (CANCELLED, DONE, FAILED, QUEUED, REFUSED,
                                              REUSED_ID, RUNNING, TRANSITIONS, JobManager,
                                              _wait_for_slot, job_alive, process_identity,
                                              records, transition, write_record)

LIMITS = JobLimits(per_model=1, per_session=1, queued=1, time_limit=60, heartbeat_timeout=5)
STATES = (None, QUEUED, RUNNING, DONE, FAILED, CANCELLED, REFUSED)  # None: no record yet
# docs/jobs.md's table: change → (the states it may follow, what it writes).
EXPECTED = {
    "admit": ((None,), {"state": QUEUED, "heartbeat": time.time()}),
    "slot": ((QUEUED,), {"state": RUNNING}),
    "wait": ((QUEUED,), {"message": "Queued: waiting for 1 other job(s)…"}),
    "beat": ((QUEUED, RUNNING), {"heartbeat": 123.0}),
    "finish": ((RUNNING,), {"state": DONE}),
    "fail": ((QUEUED, RUNNING), {"state": FAILED, "message": "it raised"}),
    "stop": ((QUEUED, RUNNING), {"state": FAILED, "message": "no heartbeat"}),
    "cancel": ((QUEUED, RUNNING), {"state": CANCELLED}),
    "pid": ((QUEUED, RUNNING, DONE, FAILED, CANCELLED, REFUSED), {"pid": 42, "born": 7.0}),
}


def record(state: str, pid: int = 0) -> dict:
    now = time.time()
    return {"pid": pid, "model": "m", "session": "s", "user": "u", "state": state,
            "message": "", "started": now, "heartbeat": now}


def test_the_table_covers_every_change():
    assert set(EXPECTED) == set(TRANSITIONS)


@pytest.mark.parametrize("change", sorted(EXPECTED))
@pytest.mark.parametrize("state", STATES, ids=lambda s: s or "none")
def test_a_change_happens_only_from_the_states_it_may_follow(store, change, state):
    allowed, fields = EXPECTED[change]
    if state is not None:
        write_record(store, "j", record(state))
    before = records(store).get("j")
    written = transition(store, "j", change, **fields)
    after = records(store).get("j")
    if state in allowed:
        assert written == after and {k: after[k] for k in fields} == fields
    else:
        assert written is None and after == before


@pytest.mark.parametrize("state", (DONE, FAILED, CANCELLED, REFUSED))
def test_a_terminal_state_never_changes(store, state):
    write_record(store, "j", record(state))
    for change, (_, fields) in EXPECTED.items():
        transition(store, "j", change, **fields)
        assert records(store)["j"]["state"] == state, change


def test_the_pid_is_written_once(store):
    write_record(store, "j", record(QUEUED))
    assert transition(store, "j", "pid", pid=11, born=1.0)["pid"] == 11
    assert transition(store, "j", "pid", pid=22, born=2.0) is None
    assert (records(store)["j"]["pid"], records(store)["j"]["born"]) == (11, 1.0)


def test_a_change_that_names_a_state_it_cannot_set_is_refused(store):
    write_record(store, "j", record(RUNNING))
    with pytest.raises(ValueError, match="'finish' cannot set state 'cancelled'"):
        transition(store, "j", "finish", state=CANCELLED)
    assert records(store)["j"]["state"] == RUNNING


def test_a_replayed_request_leaves_the_record_alone(store):
    """A job id that already has a record (a replayed or forged request) is not admitted
    again: a finished job is not put back in the queue."""
    write_record(store, "j", record(DONE))
    manager = JobManager(store, settings=None, limits=LIMITS)
    assert manager._admit("j", "m", "s", "u", "key") == REUSED_ID
    assert records(store)["j"]["state"] == DONE
    assert manager._admit("new", "m", "s", "u", "key") == ""
    assert records(store)["new"]["state"] == QUEUED and records(store)["new"]["result"] == "key"


def test_the_wait_for_a_slot_says_whether_the_job_may_run(store):
    write_record(store, "a", record(QUEUED))
    assert _wait_for_slot(store, "a", LIMITS) is True
    assert records(store)["a"]["state"] == RUNNING
    write_record(store, "b", record(FAILED))
    assert _wait_for_slot(store, "b", LIMITS) is False


def test_process_identity_is_the_kernels_start_and_tells_processes_apart(sleeper):
    with open(f"/proc/{sleeper.pid}/stat") as stat:
        ticks = float(stat.read().rsplit(")", 1)[1].split()[19])
    assert process_identity(sleeper.pid) == ticks
    assert process_identity(os.getpid()) != ticks or os.getpid() == sleeper.pid
    assert job_alive({"pid": sleeper.pid, "born": ticks})
    assert not job_alive({"pid": sleeper.pid, "born": ticks + 1})
    assert job_alive({"pid": sleeper.pid})  # a record from before ``born``: the pid only
    assert process_identity(0) is None


# -- get_result: Dash gets a job's output only when its record agrees --------------------------


def manager_with_result(store, state: str, result, pid: int = 0) -> JobManager:
    write_record(store, "j", {**record(state, pid), "result": "rk"})
    store.set("rk", result)
    return JobManager(store, settings=None, limits=LIMITS)


def test_the_output_of_a_done_job_is_delivered(store):
    manager = manager_with_result(store, DONE, "output")
    assert manager.get_result("rk", None) == "output"


def test_the_error_of_a_job_that_failed_by_itself_is_delivered(store):
    error = {"background_callback_error": {"msg": "boom", "tb": ""}}
    manager = manager_with_result(store, FAILED, error)
    assert manager.get_result("rk", None) == error


def test_an_output_stored_before_the_jobs_end_waits_for_its_record(store, sleeper):
    """The job stored its output and is about to record ``done``: Dash gets nothing yet
    (it polls again while the process lives) and the output is kept."""
    manager = manager_with_result(store, RUNNING, "output", pid=sleeper.pid)
    assert manager.get_result("rk", None) is manager.UNDEFINED
    assert store.get("rk") == "output"


def test_an_output_whose_job_died_before_recording_its_end_is_dropped(store):
    import subprocess

    gone = subprocess.Popen(["true"])
    gone.wait()
    manager = manager_with_result(store, RUNNING, "output", pid=gone.pid)
    assert manager.get_result("rk", None) is manager.UNDEFINED
    assert store.get("rk") is None


# -- atomic across processes ----------------------------------------------------------------


def _race(directory: str, change: str, state: str, jobs: int, start, out) -> None:
    """One racer: wait for the start, then try ``change`` on every job; report the wins."""
    with diskcache.Cache(directory) as cache:
        start.wait(30)
        won = [job for job in range(jobs)
               if transition(cache, f"j{job}", change, state=state) is not None]
    out.put((state, won))


def test_opposite_changes_from_two_processes_never_both_win(store):
    """Two processes race ``finish`` (done) and ``cancel`` (cancelled) on the same running
    records at once: each record ends with exactly one of them — the one that says it
    won — never the loser's write over the winner's."""
    jobs = 60
    for job in range(jobs):
        write_record(store, f"j{job}", record(RUNNING))
    context = multiprocessing.get_context("fork")
    start, out = context.Event(), context.Queue()
    racers = [context.Process(target=_race, args=(store.directory, change, state, jobs,
                                                  start, out))
              for change, state in (("finish", DONE), ("cancel", CANCELLED))]
    for racer in racers:
        racer.start()
    start.set()
    wins = dict(out.get(timeout=60) for _ in racers)
    for racer in racers:
        racer.join(30)
    assert not set(wins[DONE]) & set(wins[CANCELLED])
    assert sorted(wins[DONE] + wins[CANCELLED]) == list(range(jobs))
    final = records(store)
    for state, won in wins.items():
        assert all(final[f"j{job}"]["state"] == state for job in won)


def test_a_replayed_request_of_a_running_job_polls_that_job(store, sleeper):
    """Dash sends the same request again while its job runs: no second process; Dash gets
    the running job's pid to poll. Once that job has ended, a replay starts nothing."""
    import flask

    from classmap.app.shell.jobs import job_request

    job = job_request("m")
    manager = JobManager(store, settings=None, limits=LIMITS)
    write_record(store, job["id"], {**record(RUNNING, sleeper.pid), "result": "rk",
                                    "born": process_identity(sleeper.pid)})
    with flask.Flask("t").test_request_context("/"):
        assert manager.call_job_fn("rk", None, [job], {}) == sleeper.pid
        write_record(store, job["id"], {**records(store)[job["id"]], "state": DONE})
        assert manager.call_job_fn("rk", None, [job], {}) == 0
    assert records(store)[job["id"]]["state"] == DONE


# -- the watchdog's clock rule is job_verdict's ----------------------------------------------


def test_a_job_waiting_past_its_limit_is_stopped_with_the_shared_sentence(store, sleeper):
    """Waiting counts towards the time limit (docs/jobs.md); the sentence is
    job_verdict's, the one the Celery manager shows."""
    from classmap.app.shell.job_processes import check_job
    from classmap.app.shell.job_verdict import TIME_LIMIT, stopped_sentence

    queued = {**record(QUEUED, sleeper.pid), "started": time.time() - LIMITS.time_limit - 1}
    write_record(store, "j", queued)
    verdict = check_job(store, "j", None, LIMITS)
    assert verdict.message == stopped_sentence(TIME_LIMIT, LIMITS, waiting=True)
    assert "waited past its limit of 60 s" in verdict.message
    assert records(store)["j"]["state"] == FAILED
    sleeper.wait(5)
