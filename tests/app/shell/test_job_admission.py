"""Who may start a background job (issue 15): the hosting config's per-user limit
(``[limits] jobs_per_user``) and a server whose job store cannot be opened (a full disk).

Job processes are real (``sleep`` children), so "alive" is the kernel's answer; the
per-user limit is checked through :meth:`JobManager.call_job_fn` in a Flask request whose
identity is set the way the access guard sets it.
"""

from __future__ import annotations

import logging
import threading
import time

import flask
import pytest

from classmap.analysis.errors import ClassmapError
from classmap.analysis.settings import JobLimits
from classmap.app.config import Settings
from classmap.app.hosting.config import HostingConfig, Limits, User
from classmap.app.hosting.identity import Identity
from classmap.app.shell.job_processes import (DONE, QUEUED, REFUSED, RUNNING, JOBS_DISABLED,
                                              UNKNOWN_MODEL, DisabledJobs, JobManager,
                                              _wait_for_slot, current_session, job_model,
                                              open_job_store, records, user_limit,
                                              write_record)
from classmap.app.shell.jobs import ERROR, PENDING, job_request, job_status, watch_status

# Sessions are generous here, so only the per-user limit can refuse or hold a job.
LIMITS = JobLimits(per_model=9, per_session=9, queued=1, time_limit=60, heartbeat_timeout=5)


def settings_with(tmp_path, jobs_per_user: int | None) -> Settings:
    return Settings.create(cache_dir=tmp_path / "cache", jobs_dir=tmp_path / "jobs",
                           environ={}, warm_default=False,
                           hosting=HostingConfig(limits=Limits(jobs_per_user=jobs_per_user)))


def record(pid: int, user: str, session: str, state: str = RUNNING, model: str = "m",
           age: float = 0.0) -> dict:
    now = time.time()
    return {"pid": pid, "model": model, "session": session, "user": user, "state": state,
            "message": "", "started": now - age, "heartbeat": now}


MODEL = "lenet-digits"  # one of the default settings' model_ids


def start_as(manager: JobManager, name: str, session: str, job: dict,
             address: str = "10.0.0.1") -> int:
    """``call_job_fn`` in a request of user ``name`` from ``address`` that sends a
    session cookie ``session`` (which must not matter)."""
    app = flask.Flask("t")
    with app.test_request_context("/", headers={"Cookie": f"session={session}"},
                                  environ_base={"REMOTE_ADDR": address}):
        flask.g.classmap_identity = Identity(name, "viewer")
        return manager.call_job_fn("key", None, [job], {})


def test_the_limit_comes_from_the_hosting_config(tmp_path):
    assert user_limit(settings_with(tmp_path, 3)) == 3
    assert user_limit(settings_with(tmp_path, None)) is None
    assert user_limit(None) is None


def test_a_user_over_jobs_per_user_is_refused_whatever_the_session(tmp_path, store, sleeper):
    """jobs_per_user = 1 and one waiting job: alice's third job is refused although each
    of her jobs came from another session; bob is not affected."""
    manager = JobManager(store, settings_with(tmp_path, 1), LIMITS)
    write_record(store, "a", record(sleeper.pid, "alice", "s1"))
    write_record(store, "b", record(sleeper.pid, "alice", "s2", QUEUED))
    job = job_request(MODEL)
    assert start_as(manager, "alice", "s3", job) == 0  # refused: no process started
    refused = records(store)[job["id"]]
    assert refused["state"] == REFUSED and refused["user"] == "alice"
    assert refused["message"] == (
        "user alice already has 2 background jobs running or queued (at most 2: the "
        "server's jobs_per_user limit of 1 plus 1 waiting); wait for one to finish or "
        "cancel it, then Retry")
    # The watchdog shows the refusal in the page, with Retry.
    status = job_status(["m"], PENDING, job=job)
    new_status, _ = watch_status(manager.check(job["id"], job["requested"]), status)
    assert new_status["state"] == ERROR and new_status["message"] == refused["message"]
    assert manager._refusal("m", "s3", "bob") == ""
    # Finished and dead jobs hold no slot.
    write_record(store, "a", record(sleeper.pid, "alice", "s1", DONE))
    assert manager._refusal("m", "s3", "alice") == ""


def test_without_jobs_per_user_only_the_session_limits_apply(tmp_path, store, sleeper):
    manager = JobManager(store, settings_with(tmp_path, None), LIMITS)
    for k in range(4):
        write_record(store, f"j{k}", record(sleeper.pid, "alice", f"s{k}"))
    assert manager._refusal("m", "s9", "alice") == ""


def test_a_users_second_job_waits_queued_for_the_first(store, sleeper):
    """Different models and sessions, one user, jobs_per_user = 1: the second job waits
    ("Queued … of this model, session or user") until the first ends; without the limit
    it would run at once (checked first, so the test can fail)."""
    write_record(store, "first", record(sleeper.pid, "alice", "x", model="m1"))
    write_record(store, "free", record(sleeper.pid, "alice", "y", QUEUED, model="m2"))
    _wait_for_slot(store, "free", LIMITS, None)
    assert records(store)["free"]["state"] == RUNNING
    write_record(store, "second", record(sleeper.pid, "alice", "z", QUEUED, model="m3"))
    write_record(store, "free", record(sleeper.pid, "alice", "y", DONE, model="m2"))
    waiter = threading.Thread(target=_wait_for_slot, args=(store, "second", LIMITS, 1))
    waiter.start()
    time.sleep(1.2)
    assert waiter.is_alive()
    message = records(store)["second"]["message"]
    assert message == "Queued: waiting for 1 other job(s) of this model, session or user…"
    write_record(store, "first", record(sleeper.pid, "alice", "x", DONE, model="m1"))
    waiter.join(5)
    assert not waiter.is_alive() and records(store)["second"]["state"] == RUNNING


def session_of(settings: Settings, name: str, cookie: str, address: str) -> str:
    with flask.Flask("t").test_request_context(
            "/", headers={"Cookie": f"session={cookie}"}, environ_base={"REMOTE_ADDR": address}):
        flask.g.classmap_identity = Identity(name, "viewer")
        return current_session(settings)


def test_the_session_is_the_address_without_login_and_the_user_with_it(tmp_path):
    """A session cookie (never signed nor set by the app) does not pick the session: without
    a login the client's address does; with users, the signed-in name does (a team behind
    one proxy address is not one session)."""
    open_server = settings_with(tmp_path, None)
    assert session_of(open_server, "local", "a", "10.0.0.1") == "address:10.0.0.1"
    assert session_of(open_server, "local", "b", "10.0.0.1") == "address:10.0.0.1"
    assert session_of(open_server, "local", "a", "10.0.0.2") == "address:10.0.0.2"
    users = {name: User(name, "viewer", "pbkdf2:sha256:1$x$y") for name in ("alice", "bob")}
    login = Settings.create(cache_dir=tmp_path / "cache", jobs_dir=tmp_path / "jobs",
                            environ={}, warm_default=False, hosting=HostingConfig(users=users))
    assert session_of(login, "alice", "a", "10.0.0.9") == "user:alice"
    assert session_of(login, "alice", "b", "10.0.0.8") == "user:alice"
    assert session_of(login, "bob", "a", "10.0.0.9") == "user:bob"


def test_a_fresh_cookie_per_request_does_not_escape_the_session_limit(tmp_path, store, sleeper):
    """Two live jobs of address 10.0.0.1 fill its session (1 computing + 1 waiting): a third
    request from that address with a cookie nobody used before is refused all the same."""
    limits = JobLimits(per_model=9, per_session=1, queued=1, time_limit=60, heartbeat_timeout=5)
    manager = JobManager(store, settings_with(tmp_path, None), limits)
    write_record(store, "a", record(sleeper.pid, "local", "address:10.0.0.1"))
    write_record(store, "b", record(sleeper.pid, "local", "address:10.0.0.1", QUEUED))
    job = job_request(MODEL)
    assert start_as(manager, "local", "never-seen-before", job, address="10.0.0.1") == 0
    refused = records(store)[job["id"]]
    assert refused["state"] == REFUSED and refused["session"] == "address:10.0.0.1"
    assert refused["message"].startswith("this session already has 2 background jobs")


def test_a_job_naming_a_model_the_server_does_not_offer_is_refused(tmp_path, store):
    """The per-model limit counts a model the server checked: an unknown model, or a
    ``model`` that disagrees with the model the job computes (``key``/``a``), is refused."""
    settings = settings_with(tmp_path, None)
    assert settings.model_ids == ("lite0-imagenet", "lenet-digits")
    manager = JobManager(store, settings, LIMITS)
    for job in (job_request("forged-model-1"), job_request(MODEL, key=["lite0-imagenet", "x"]),
                job_request(MODEL, a=["lite0-imagenet"], b=[MODEL]), {"id": "no-model"}):
        assert start_as(manager, "local", "s", job) == 0
        refused = records(store)[job["id"]]
        assert (refused["state"], refused["message"]) == (REFUSED, UNKNOWN_MODEL)
    assert job_model(job_request(MODEL, key=[MODEL, "cosine"]), settings.model_ids) == MODEL
    assert job_model(job_request(MODEL, a=[MODEL], b=["lite0-imagenet"]),
                     settings.model_ids) == MODEL
    assert job_model(job_request("lite0-imagenet"), settings.model_ids) == "lite0-imagenet"
    assert job_model(job_request(["not", "a", "string"]), settings.model_ids) is None


def test_a_job_store_that_cannot_be_opened_disables_jobs_with_one_warning(tmp_path, caplog):
    """The job folder cannot be made (its parent is a file; on a full disk the store's
    SQLite file cannot be written — tests/e2e/test_serve_faults.py replays that): one
    warning with the problem and the fix, and a manager that refuses every job with a
    sentence for the page (no server path in it)."""
    blocker = tmp_path / "file"
    blocker.write_text("not a folder")
    with caplog.at_level(logging.WARNING):
        assert open_job_store(blocker / "jobs") is None
    warnings = [r.getMessage() for r in caplog.records if r.levelno == logging.WARNING]
    assert len(warnings) == 1
    assert "background jobs are disabled: cannot open the job store" in warnings[0]
    assert "free some space" in warnings[0]

    manager = DisabledJobs()
    job = job_request("m")
    assert manager.call_job_fn("key", None, [job], {}) == 0
    assert not manager.job_running(0) and manager.get_result("key", 0) is manager.UNDEFINED
    status = job_status(["m"], PENDING, job=job)
    new_status, _ = watch_status(manager.check(job["id"], job["requested"]), status)
    assert new_status == job_status(["m"], ERROR, JOBS_DISABLED)
    assert "free disk space" in JOBS_DISABLED and "/" not in JOBS_DISABLED.split("(")[0]


def test_create_app_serves_without_a_job_store(tmp_path):
    """create_app on a job folder it cannot open: the app is built (no traceback) with
    jobs disabled; the pages' callbacks are all registered."""
    from classmap.app.server import create_app

    blocker = tmp_path / "file"
    blocker.write_text("x")
    settings = Settings.create(cache_dir=tmp_path / "cache", jobs_dir=blocker / "jobs",
                               environ={}, warm_default=False)
    app = create_app(settings)
    assert isinstance(app._classmap_jobs, DisabledJobs)
    assert app.server.test_client().get("/").status_code == 200


def test_an_unsafe_job_folder_is_still_refused(tmp_path):
    """A folder other users may write is a security refusal, not a full disk."""
    folder = tmp_path / "jobs"
    folder.mkdir()
    folder.chmod(0o777)
    with pytest.raises(ClassmapError, match="writable by other users"):
        open_job_store(folder)


def test_two_requests_at_once_cannot_both_take_a_sessions_last_place(tmp_path, store, sleeper,
                                                                     monkeypatch):
    """One place left in the session (1 computing + 1 waiting allowed, one live job): two
    admissions run together, each pausing 0.5 s between its count and its write (the
    window a loaded server has). Exactly one is queued, the other refused — counting and
    inserting are one transaction (without it both would see one job and both get in)."""
    limits = JobLimits(per_model=9, per_session=1, queued=1, time_limit=60, heartbeat_timeout=5)
    manager = JobManager(store, settings_with(tmp_path, None), limits)
    write_record(store, "a", record(sleeper.pid, "local", "address:10.0.0.1"))
    counting = JobManager._refusal

    def slow_refusal(self, *args):
        refusal = counting(self, *args)
        time.sleep(0.5)
        return refusal

    monkeypatch.setattr(JobManager, "_refusal", slow_refusal)
    threads = [threading.Thread(target=manager._admit,
                                args=(job_id, MODEL, "address:10.0.0.1", "local"))
               for job_id in ("x", "y")]
    for thread in threads:
        thread.start()
    for thread in threads:
        thread.join(30)
    states = sorted(records(store)[job_id]["state"] for job_id in ("x", "y"))
    assert states == [QUEUED, REFUSED]
