"""The processes background jobs run in: forkserver, heartbeat, limits, stop with the server.

Dash's stock ``DiskcacheManager`` forks the whole server (``multiprocess``'s default) for
every job: the child inherits every lock some server thread held at that instant (one
such child deadlocked inside SQLite) and the listening socket (a restarted server then
fails with "Address already in use" until the job ends). :class:`JobManager` keeps
Dash's result protocol (the same diskcache keys, so Dash's polling is unchanged) and
changes how a job is started and watched:

* **forkserver** — jobs fork from a small single-threaded server process that
  :mod:`multiprocessing` starts with ``exec`` and only the file descriptors it needs, so
  a job holds no server thread's lock and no listening socket. The job rebuilds the app
  from the (picklable) settings and looks its callback up by Dash's own function key;
  nothing of the server's memory is shared.
* **stop with the server** — a job is a daemon child, killed when its forkserver dies
  (``PR_SET_PDEATHSIG``), and its heartbeat thread ends it when the server's process is
  gone; ``JobManager.stop_all`` (at exit) kills the ones still running.
* **heartbeat and record** — each job has a record in the job store (``RECORDS_KEY``:
  job id → ``{pid, born, model, session, user, state, started, heartbeat, message,
  result}``); the job
  touches ``heartbeat`` every second. :func:`check_job` (called by the page's watchdog
  interval) turns a job that died, stopped beating, ran past its limit or could not
  write into an error the page shows, with a Retry.
* **limits** — at most ``per_model`` jobs compute at once for one model (one of the
  server's ``model_ids``: a request naming another model is refused),
  ``per_session`` for one session (:func:`current_session`: the signed-in user when the
  server requires a login, else the client's address) and, when the hosting config sets
  ``[limits] jobs_per_user``, that many for one signed-in user (the name from
  :func:`classmap.app.hosting.identity.current_identity`); later ones wait in state
  ``queued`` (first come, first served) and more than ``queued`` waiting jobs of a
  session, or of a user, are refused. The Celery manager
  (:mod:`classmap.app.hosting.celery_app`) enforces the same limits, counted in Redis, with
  the same sentences (:func:`session_refusal`, :func:`user_refusal`,
  :func:`waiting_message`).

**The record's state machine.** Every write to a record is a compare-and-set
(:func:`transition`): in one job-store transaction (diskcache's ``transact``, an SQLite
``BEGIN IMMEDIATE``, so atomic across the server's threads, the job processes and other
server processes sharing the store) it reads the record as stored and writes only when
the record is in a state the write may follow (:data:`TRANSITIONS`); else the write is
dropped and the caller told so::

    (none) ──admit──▶ queued ──slot──▶ running ──finish──▶ done
    (none) ──admit──▶ refused
    queued, running ──stop (the watchdog) or fail (the job raised)──▶ failed
    queued, running ──cancel (Cancel)──▶ cancelled

``done``, ``failed``, ``cancelled`` and ``refused`` are terminal: nothing changes their
state, so whichever of the job's own end, the watchdog's verdict and the user's Cancel
is written first stands — a job that ends after the watchdog stopped it, or after it was
cancelled, keeps that verdict, and :meth:`JobManager.get_result` drops the output it
stored (the page never shows a result of a job it reported failed or cancelled). A
job whose record left ``queued`` while it waited does not run. Fields that are not the
state: the heartbeat and the "Queued: …" message only while the job is live, the pid and
``born`` (when the process started, :func:`process_identity`) only while none is set.
The watchdog and Cancel kill a job's pid only while that pid still names the job's
process (same ``born``): never a later process the kernel gave the pid to.

A job's request (the Input of its background callback) is a dict made by
:func:`classmap.app.shell.jobs.job_request`: it carries the job ``id`` and ``model``.
"""

from __future__ import annotations

import atexit
import contextlib
import ctypes
import logging
import multiprocessing
import os
import shutil
import signal
import sys
import threading
import time
import uuid
from dataclasses import dataclass
from pathlib import Path
from typing import Any, Iterable

import diskcache
import psutil
from dash import DiskcacheManager
from dash.background_callback.managers import BaseBackgroundCallbackManager

from classmap.analysis.settings import JobLimits
from classmap.app.shell.job_verdict import NO_HEARTBEAT, overdue, stopped_sentence

log = logging.getLogger(__name__)

RECORDS_KEY = "classmap-job-records"
QUEUED, RUNNING, DONE, FAILED, REFUSED, CANCELLED = (
    "queued", "running", "done", "failed", "refused", "cancelled")
NEW = "-"  # a transition's "from" state meaning: no record yet
FINAL = (DONE, FAILED, CANCELLED, REFUSED)  # terminal: a record in one never changes state
LIVE = (QUEUED, RUNNING)
# Each write (a change) → the states the record must be in for it to happen (else it is
# dropped), and the states it may set. The state machine of the module docstring.
TRANSITIONS: dict[str, tuple[str, ...]] = {
    "admit": (NEW,),           # the server: a new job, queued or refused
    "pid": (*LIVE, *FINAL),    # the server / the job: its process (only while none is set)
    "wait": (QUEUED,),         # the job, waiting for a slot: its "Queued: …" message
    "slot": (QUEUED,),         # the job takes a slot → running
    "beat": LIVE,              # the job's heartbeat (it beats while it waits, too)
    "finish": (RUNNING,),      # the job ends by itself: done
    "fail": LIVE,              # the job raised: failed
    "stop": LIVE,              # the watchdog: failed (died, no heartbeat, time limit)
    "cancel": LIVE,            # Cancel (terminate_job): cancelled
}
NEXT_STATES: dict[str, tuple[str, ...]] = {
    "admit": (QUEUED, REFUSED), "pid": (), "wait": (), "slot": (RUNNING,), "beat": (),
    "finish": (DONE,), "fail": (FAILED,), "stop": (FAILED,), "cancel": (CANCELLED,),
}
BEAT_SECONDS = 1.0
START_GRACE_SECONDS = 20.0  # a request whose job has no record after this never started
LOW_DISK_BYTES = 16 * 2**20
_PR_SET_PDEATHSIG = 1
_IN_JOB = False  # True inside a job's process (create_app then starts no forkserver)


def in_job_process() -> bool:
    """Whether this process is a background job (see :func:`run_job`)."""
    return _IN_JOB


@dataclass(frozen=True)
class JobVerdict:
    """What the watchdog says about a pending job: ``state`` is ``queued``, ``running``
    or ``error``; ``message`` is the sentence to show."""

    state: str
    message: str = ""


class _JobFn:
    """Dash's job function for one callback, plus the key that names it in a job's process."""

    def __init__(self, key: str, job_fn: Any) -> None:
        self.key = key
        self.job_fn = job_fn

    def __call__(self, *args: Any) -> None:
        self.job_fn(*args)


class JobManager(DiskcacheManager):
    """A DiskcacheManager whose jobs run in forkserver processes with a heartbeat, a time
    limit and per-model / per-session limits (see the module docstring).

    ``settings`` : the app's Settings (rebuilt into an app in each job's process);
    ``limits`` : :class:`~classmap.analysis.settings.JobLimits`.
    """

    def __init__(self, cache: diskcache.Cache, settings: Any, limits: JobLimits) -> None:
        super().__init__(cache)
        self.settings = settings
        self.limits = limits
        self.per_user = user_limit(settings)
        self._context = multiprocessing.get_context("forkserver")
        self._processes: dict[int, Any] = {}
        self._lock = threading.Lock()
        self._started = False

    # -- processes ---------------------------------------------------------------------------
    def start(self) -> None:
        """Start the forkserver now, with the heavy modules imported once, and arrange for
        running jobs to be killed when this process exits."""
        if self._started:
            return
        self._started = True
        # Every Classmap module this server has imported (its pages pull in scikit-learn,
        # timm, …): imported once in the forkserver, not again by every job.
        loaded = sorted(name for name in list(sys.modules) if name.startswith("classmap."))
        self._context.set_forkserver_preload(
            ["classmap.app.shell.job_processes", "classmap.app.server", *loaded])
        from multiprocessing import forkserver

        forkserver.ensure_running()
        atexit.register(self.stop_all)

    def make_job_fn(self, fn: Any, progress: Any, key: Any = None) -> _JobFn:
        return _JobFn(key, super().make_job_fn(_recording_failures(fn, self.handle), progress,
                                               key))

    def call_job_fn(self, key: str, job_fn: Any, args: Any, context: Any) -> int:
        """Start the job (or queue it, or refuse it); returns its pid (0 when refused)."""
        self.start()
        request = find_request(args)
        job_id = str(request.get("id") or uuid.uuid4().hex)
        model = job_model(request, getattr(self.settings, "model_ids", None))
        refusal = self._admit(job_id, model, current_session(self.settings), current_user(), key)
        if refusal == REUSED_ID:  # a replayed request: poll its job while it runs
            existing = records(self.handle).get(job_id, {})
            return int(existing.get("pid") or 0) if existing.get("state") in LIVE \
                and existing.get("result") == key and job_alive(existing) else 0
        if refusal:
            return 0
        process = self._context.Process(
            target=run_job, name=f"classmap-job-{job_id[:8]}", daemon=True,
            args=(self.settings, self.limits, job_fn.key, key, self._make_progress_key(key),
                  args, dict(context), job_id, os.getpid()))
        process.start()
        # The job writes its own pid and start (run_job) — unless it has not yet.
        transition(self.handle, job_id, "pid", pid=process.pid,
                   born=process_identity(process.pid))
        with self._lock:
            self._processes[process.pid] = process
            self._reap()
        return process.pid

    def _admit(self, job_id: str, model: str | None, session: str, user: str,
               result_key: str | None = None) -> str:
        """Record the job ``queued`` (pid 0 until its process starts) or ``refused``; the
        count of live jobs and the write are one transaction, so two requests at once
        cannot both take a session's or user's last place. Returns the refusal ("": queued).
        ``model`` None: not one the server offers (:func:`job_model`). A job id that has a
        record already is refused and its record left as it is (a replayed request: ids
        are fresh, :func:`~classmap.app.shell.jobs.job_request`). ``result_key``: where
        Dash reads the job's result (:meth:`get_result` checks the record first)."""
        with self.handle.transact():
            refusal = UNKNOWN_MODEL if model is None else self._refusal(model, session, user)
            now = time.time()
            admitted = transition(self.handle, job_id, "admit", pid=0, model=model or "",
                                  session=session, user=user,
                                  state=REFUSED if refusal else QUEUED, message=refusal,
                                  started=now, heartbeat=now, result=result_key)
        if admitted is None:  # a request naming a job id that already has a record
            return REUSED_ID
        return refusal

    def _refusal(self, model: str, session: str, user: str | None = None) -> str:
        """Why a new job of ``session`` (and ``user``) is refused, or ""."""
        live = live_records(self.handle)
        mine = [r for r in live if r.get("session") == session]
        if len(mine) >= self.limits.per_session + self.limits.queued:
            return session_refusal(len(mine), self.limits)
        if self.per_user is not None and user is not None:
            theirs = [r for r in live if r.get("user") == user]
            if len(theirs) >= self.per_user + self.limits.queued:
                return user_refusal(user, len(theirs), self.per_user, self.limits)
        return ""

    def _reap(self) -> None:
        for pid, process in list(self._processes.items()):
            if not process.is_alive():
                process.join(0)
                self._processes.pop(pid, None)

    def terminate_job(self, job: Any) -> None:
        """Dash's Cancel (and its clean-up after a result): the record says ``cancelled``
        first (compare-and-set from queued or running: a job that ended meanwhile keeps its
        ``done`` or ``failed``), so the watchdog does not call a cancelled job dead; then
        the process is killed unless its pid now names another process."""
        if job is None:
            return
        pid = int(job)
        mine = [(job_id, record) for job_id, record in records(self.handle).items()
                if record.get("pid") == pid]
        for job_id, record in mine:
            if record.get("state") in LIVE:
                transition(self.handle, job_id, "cancel", state=CANCELLED)
        latest = max((record for _, record in mine), key=lambda r: r.get("started", 0),
                     default=None)
        if pid and (latest is None or job_alive(latest)):
            # Dash checks the pid exists, then lists its children: a job that ends between
            # the two (its result was just read) raised NoSuchProcess into the poll (a 500).
            with contextlib.suppress(psutil.NoSuchProcess):
                super().terminate_job(pid)
        with self._lock:
            self._reap()

    def get_result(self, key: str, job: Any) -> Any:
        """Dash's result of ``key``, delivered only when the job's record agrees: ``done``
        (or ``failed`` by the job itself, whose error Dash reports). A result of a job
        the watchdog stopped or the user cancelled is dropped (the page shows the verdict,
        never that job's output); one written by a job that has not yet recorded its end
        waits for that write (Dash polls again while the process lives)."""
        record = self._record_of_result(key)
        if record is None or record.get("state") == DONE:
            return super().get_result(key, job)
        result = self.handle.get(key, self.UNDEFINED)
        if result is self.UNDEFINED:
            return result
        if record.get("state") == FAILED and isinstance(result, dict) \
                and "background_callback_error" in result:
            return super().get_result(key, job)
        if record.get("state") in LIVE and job_alive(record):
            return self.UNDEFINED  # its "done" is being written
        self.clear_cache_entry(key)
        self.clear_cache_entry(self._make_progress_key(key))
        return self.UNDEFINED

    def _record_of_result(self, key: str) -> dict[str, Any] | None:
        """The newest record of a job whose result Dash reads at ``key`` (None: none)."""
        return max((r for r in records(self.handle).values() if r.get("result") == key),
                   key=lambda r: r.get("started", 0), default=None)

    def stop_all(self) -> None:
        """Kill every job this process started that still runs (the server is stopping)."""
        with self._lock:
            for process in self._processes.values():
                if process.is_alive():
                    process.kill()
            for process in self._processes.values():
                process.join(2)
            self._processes.clear()

    def check(self, job_id: str | None, requested: float | None) -> JobVerdict | None:
        return check_job(self.handle, job_id, requested, self.limits,
                         disk_folders=(Path(self.handle.directory), self.settings.cache_dir))


def session_refusal(live: int, limits: JobLimits) -> str:
    """Why a session's new job is refused: it has ``live`` jobs running or queued, at least
    ``per_session + queued`` (both job managers say it this way)."""
    allowed = limits.per_session + limits.queued
    return (f"this session already has {live} background jobs running or queued "
            f"(at most {allowed}); wait for one to finish or cancel it, then Retry")


def user_refusal(user: str, live: int, per_user: int, limits: JobLimits) -> str:
    """Why a user's new job is refused: ``live`` jobs running or queued, at least the
    hosting config's ``jobs_per_user`` plus ``queued``."""
    allowed = per_user + limits.queued
    return (f"user {user} already has {live} background jobs running or "
            f"queued (at most {allowed}: the server's jobs_per_user limit of "
            f"{per_user} plus {limits.queued} waiting); wait for one to "
            "finish or cancel it, then Retry")


def waiting_message(waiting: int, per_user: int | None) -> str:
    """The label of a job waiting for a slot behind ``waiting`` others."""
    whose = "this model, session or user" if per_user is not None else "this model or session"
    return f"Queued: waiting for {waiting} other job(s) of {whose}…"


REUSED_ID = ("this job request was already started once (a replayed request); reload the page "
             "or press Retry to start a new job")
UNKNOWN_MODEL = ("this job names a model this server does not offer (a stale page or a forged "
                 "request); reload the page, choose one of the server's models, then Retry")
JOBS_DISABLED = ("background jobs are disabled on this server: its job store could not be "
                 "opened at start-up (a full or read-only disk); views already computed are "
                 "still served — ask the operator to free disk space and restart classmap serve")


def open_job_store(folder: Path) -> diskcache.Cache | None:
    """The job store (a diskcache) in ``folder``, or None when it cannot be opened or
    written — a full or read-only disk — after one warning line naming the problem and
    the fix. A folder that is unsafe (another user's, writable by others) still raises
    :class:`~classmap.analysis.errors.ClassmapError`: that is refused, not worked around."""
    import sqlite3

    from classmap.app.config import ensure_private_dir

    try:
        store = diskcache.Cache(str(ensure_private_dir(folder)))
        store.set("classmap-job-store-check", time.time())  # opening alone may not write
        return store
    except (OSError, sqlite3.Error) as error:
        reason = (str(error).strip().splitlines() or [type(error).__name__])[0][:200]
        log.warning("background jobs are disabled: cannot open the job store %s (%s); views "
                    "already in the cache are served, nothing new is computed — free some "
                    "space on its disk (or set CLASSMAP_JOBS_DIR to a writable folder) and "
                    "restart classmap serve", folder, reason)
        return None


class DisabledJobs(BaseBackgroundCallbackManager):
    """The background-callback manager of a server whose job store cannot be opened (a
    full disk at start-up): the server still starts and serves what needs no job; every
    job is refused at once (nothing is started, Dash's polling ends) and the page's
    watchdog (:meth:`check`) shows ``message`` with a Retry, within seconds.

    Same interface as :class:`JobManager` for the app: ``start``, ``stop_all``, ``check``.
    """

    def __init__(self, message: str = JOBS_DISABLED) -> None:
        super().__init__(None)
        self.message = message
        self._refused: dict[str, float] = {}  # job id → when it was refused (bounded)
        self._lock = threading.Lock()

    def start(self) -> None:
        """Nothing to start: no job ever runs."""

    def stop_all(self) -> None:
        """Nothing to stop."""

    def make_job_fn(self, fn: Any, progress: Any, key: Any = None) -> Any:
        return fn

    def call_job_fn(self, key: str, job_fn: Any, args: Any, context: Any) -> int:
        """Refuse the job (pid 0: Dash stops polling); the watchdog says why."""
        job_id = str(find_request(args).get("id") or "")
        with self._lock:
            if job_id:
                self._refused[job_id] = time.time()
            while len(self._refused) > 10_000:
                self._refused.pop(next(iter(self._refused)))
        return 0

    def check(self, job_id: str | None, requested: float | None) -> JobVerdict | None:
        """Every pending job's verdict: refused, with :attr:`message`."""
        return JobVerdict("error", self.message) if job_id else None

    def job_running(self, job: Any) -> bool:
        return False

    def terminate_job(self, job: Any) -> None:
        return None

    def terminate_unhealthy_job(self, job: Any) -> bool:
        return False

    def get_progress(self, key: str) -> Any:
        return None

    def result_ready(self, key: str) -> bool:
        return False

    def get_result(self, key: str, job: Any) -> Any:
        return self.UNDEFINED

    def get_updated_props(self, key: str) -> dict:
        return {}


# -- records --------------------------------------------------------------------------------------


def records(cache: diskcache.Cache) -> dict[str, dict[str, Any]]:
    """Every job record: job id → record (a snapshot: read, do not write it back)."""
    return dict(cache.get(RECORDS_KEY, {}) or {})


def _stored(cache: diskcache.Cache) -> dict[str, dict[str, Any]]:
    """The records as stored now (what a transition compares against; never a snapshot
    read earlier)."""
    return dict(cache.get(RECORDS_KEY, {}) or {})


def write_record(cache: diskcache.Cache, job_id: str, record: dict[str, Any]) -> None:
    """Put ``record`` as it is, whatever was there (tests and forged records only: the app
    changes a record through :func:`transition`)."""
    with cache.transact():
        everything = _stored(cache)
        everything[job_id] = record
        cache.set(RECORDS_KEY, _pruned(everything))


def _pruned(everything: dict[str, dict[str, Any]]) -> dict[str, dict[str, Any]]:
    cutoff = time.time() - 86400  # forget records of a day ago
    return {k: v for k, v in everything.items() if v.get("heartbeat", 0) > cutoff}


def transition(cache: diskcache.Cache, job_id: str, change: str,
               **fields: Any) -> dict[str, Any] | None:
    """Compare-and-set: write ``fields`` into the record of ``job_id`` only if it is in a
    state ``change`` (a key of :data:`TRANSITIONS`) may follow, in one job-store
    transaction (SQLite ``BEGIN IMMEDIATE``: atomic across every process that opens the
    store). Returns the record written, or None when the write was dropped (the record
    is in another state, e.g. a job that ended meanwhile, or has no record)."""
    allowed = TRANSITIONS[change]
    state = fields.get("state")
    if state is not None and state not in NEXT_STATES[change]:
        raise ValueError(f"transition {change!r} cannot set state {state!r}; it sets "
                         f"{' or '.join(NEXT_STATES[change])} (see TRANSITIONS)")
    with cache.transact():
        everything = _stored(cache)
        record = everything.get(job_id)
        before = NEW if record is None else record.get("state")
        if before not in allowed or (change == "pid" and record.get("pid")):
            log.info("job %s: %s dropped (record is %s)", job_id, change, before)
            return None
        record = {**(record or {}), **fields}
        everything[job_id] = record
        cache.set(RECORDS_KEY, _pruned(everything) if change == "admit" else everything)
    return record


def process_identity(pid: int) -> float | None:
    """When process ``pid`` started, to tell it from a later process that got the same pid:
    on Linux its start time in clock ticks since boot (``/proc/<pid>/stat`` field 22:
    exact, and not moved by changes of the wall clock), elsewhere psutil's
    ``create_time``. None when there is no such process."""
    if not pid:
        return None
    if sys.platform.startswith("linux"):
        try:
            with open(f"/proc/{int(pid)}/stat", "rb") as stat:
                fields = stat.read().rsplit(b")", 1)[1].split()
            return float(fields[19])  # field 22; fields[0] is field 3 (after "(comm)")
        except FileNotFoundError:
            return None
        except (OSError, IndexError, ValueError):
            pass  # /proc unreadable: psutil's answer
    try:
        return psutil.Process(pid).create_time()
    except psutil.Error:
        return None


def process_alive(pid: int) -> bool:
    """Whether ``pid`` is a running (not zombie) process."""
    if not pid:
        return False
    try:
        return psutil.Process(pid).status() != psutil.STATUS_ZOMBIE
    except psutil.NoSuchProcess:
        return False


def job_alive(record: dict[str, Any]) -> bool:
    """Whether the process of ``record`` still runs: its pid is alive and, when the
    record has the process's start (``born``, :func:`process_identity`), it is the same
    process — not a later one that reuses the pid after the job's process ended."""
    pid = int(record.get("pid") or 0)
    if not process_alive(pid):
        return False
    born = record.get("born")
    return born is None or process_identity(pid) == born


def live_records(cache: diskcache.Cache) -> list[dict[str, Any]]:
    """Records of jobs queued or running whose process is alive (or not yet started)."""
    now = time.time()
    return [r for r in records(cache).values() if r.get("state") in (QUEUED, RUNNING)
            and (job_alive(r)
                 or (not r.get("pid") and now - r.get("started", 0) < START_GRACE_SECONDS))]


def _kill(record: dict[str, Any]) -> bool:
    """Kill the process of ``record`` if it is still the job's (:func:`job_alive`: never a
    later process that got its pid); whether a signal was sent."""
    pid = int(record.get("pid") or 0)
    if not pid:
        return False
    try:
        # psutil's Process keeps this process's create time and checks it again before
        # the signal: a pid reused after the identity check below is not signalled either.
        process = psutil.Process(pid)
        if not job_alive(record):
            log.warning("job process %s is gone (its pid now names another process): "
                        "not killed", pid)
            return False
        process.kill()
        return True
    except psutil.NoSuchProcess:
        return False


def _low_disk(folders: Iterable[Path]) -> str:
    for folder in folders:
        try:
            free = shutil.disk_usage(folder).free
        except OSError:
            continue
        if free < LOW_DISK_BYTES:
            return f" — the disk of {folder} is full ({free // 2**20} MiB free)"
    return ""


def _stop_live(cache: diskcache.Cache, job_id: str, message: str) -> bool:
    """Mark the job ``failed`` with ``message`` (compare-and-set: only if its record is
    still queued or running); whether it did (False: the job ended meanwhile)."""
    return transition(cache, job_id, "stop", state=FAILED, message=message) is not None


def _stopped(cache: diskcache.Cache, job_id: str, record: dict[str, Any],
             message: str) -> JobVerdict | None:
    """The watchdog stops the job of ``record`` (read before): ``failed`` with ``message``
    by compare-and-set, then its process is killed (if it is still the job's) — or,
    when the job reached another state since the read (it finished, was cancelled), that
    state's verdict and nothing is killed."""
    if not _stop_live(cache, job_id, message):
        return _settled(cache, job_id)  # it ended between the two reads
    _kill(record)
    return JobVerdict("error", message)


def _settled(cache: diskcache.Cache, job_id: str) -> JobVerdict | None:
    """The verdict on a job that ended by itself: None when done or cancelled (Dash
    delivers its result), else its failure."""
    record = records(cache).get(job_id, {})
    if record.get("state") in (DONE, CANCELLED):
        return None
    return JobVerdict("error", record.get("message") or FAILED_SENTENCE)


def check_job(cache: diskcache.Cache, job_id: str | None, requested: float | None,
              limits: JobLimits, now: float | None = None,
              disk_folders: Iterable[Path] = ()) -> JobVerdict | None:
    """The watchdog's verdict on the pending job ``job_id`` (requested at ``requested``,
    seconds since the epoch): None while it is fine or finished (Dash delivers its
    result), ``queued``/``running`` with a sentence, or ``error`` with the reason — its
    process died, it stopped beating for ``limits.heartbeat_timeout`` s (it is killed),
    it ran past ``limits.time_limit`` s (it is killed), or it never started."""
    if not job_id:
        return None
    now = time.time() if now is None else now
    record = records(cache).get(job_id)
    if record is None:
        if requested and now - requested > START_GRACE_SECONDS:
            return JobVerdict("error", "the background job never started "
                                       f"(no sign of it after {START_GRACE_SECONDS:.0f} s)")
        return None
    state, pid = record.get("state"), int(record.get("pid") or 0)
    if state in (DONE, CANCELLED):
        return None
    if state in (REFUSED, FAILED):
        return JobVerdict("error", record.get("message") or FAILED_SENTENCE)
    if not pid:
        if now - record.get("started", now) > START_GRACE_SECONDS:
            return _stopped(cache, job_id, record,
                            "the background job's process never started")
        return JobVerdict(QUEUED, "Starting…")
    if not job_alive(record):  # ended, or its pid now names another process
        return _stopped(cache, job_id, record, "the background job stopped unexpectedly"
                        f"{_low_disk(disk_folders)}")
    # The clock rule shared with the Celery manager; a local job beats from its start.
    reason = overdue(record.get("started", now), record.get("heartbeat", now), now, limits,
                     beating=True)
    if reason is not None:
        message = stopped_sentence(reason, limits, waiting=state == QUEUED)
        if reason == NO_HEARTBEAT:
            message += _low_disk(disk_folders)
        return _stopped(cache, job_id, record, message)
    if state == QUEUED:
        return JobVerdict(QUEUED, record.get("message") or "Queued…")
    return JobVerdict(RUNNING)


# -- in the job's process ----------------------------------------------------------------------


def _recording_failures(fn: Any, cache: diskcache.Cache) -> Any:
    """``fn`` that, when it raises (a full disk, a bug), records the job as failed before
    Dash stores the error — so the watchdog turns the page's pending status into it."""
    import functools

    from dash.exceptions import PreventUpdate

    @functools.wraps(fn)
    def run(*args: Any, **kwargs: Any) -> Any:
        try:
            return fn(*args, **kwargs)
        except PreventUpdate:
            raise
        except Exception as error:
            job_id = find_request([*args, *kwargs.values()]).get("id")
            log.error("job %s failed", job_id, exc_info=error)
            if job_id:
                with contextlib.suppress(Exception):  # the store may be unwritable too
                    transition(cache, str(job_id), "fail", state=FAILED,
                               message=page_failure(error))
            raise

    return run



FAILED_SENTENCE = "the background job failed"


def page_failure(error: BaseException) -> str:
    """What the page shows for a job that raised ``error``: the fixed sentence and the first
    line of its message, paths cut to their last part, no exception class (the detail goes
    to the log). The Celery manager's :func:`~classmap.app.hosting.celery_app.failure_message`
    (imported here, not at the top: that module imports this one)."""
    from classmap.app.hosting.celery_app import failure_message

    return failure_message(error)


def find_request(args: Any) -> dict[str, Any]:
    """The job request dict among a background callback's arguments (``{}`` if none)."""
    values = args.values() if isinstance(args, dict) else (
        args if isinstance(args, (list, tuple)) else [args])
    for value in values:
        if isinstance(value, dict) and "id" in value:
            return value
    return {}


def user_limit(settings: Any) -> int | None:
    """The hosting config's ``[limits] jobs_per_user`` of ``settings`` (None: no limit)."""
    limits = getattr(getattr(settings, "hosting", None), "limits", None)
    value = getattr(limits, "jobs_per_user", None)
    return int(value) if isinstance(value, int) and not isinstance(value, bool) else None


def current_user() -> str:
    """The name of the request's user (the access guard's identity; ``local`` on a
    loopback server without users, and outside requests)."""
    from classmap.app.hosting.identity import current_identity

    return current_identity().name


def current_session(settings: Any = None) -> str:
    """The session the per-session limits count the current request's job in: the
    signed-in user (``user:NAME``, the access guard's identity) when ``settings``'
    hosting config requires a login, else the client's address (``address:IP``; without
    a login everyone is the local operator, so the address is all that tells clients
    apart). Nothing the client chooses (no cookie) picks it. ``address:local`` outside
    requests."""
    import flask

    hosting = getattr(settings, "hosting", None)
    if getattr(hosting, "requires_login", False):
        return f"user:{current_user()}"
    address = flask.request.remote_addr if flask.has_request_context() else None
    return f"address:{address or 'local'}"


def job_model(request: dict[str, Any], model_ids: Iterable[str] | None) -> str | None:
    """The model a job request computes, as the per-model limit counts it: its ``model``
    when that is one of ``model_ids`` and agrees with the first part of its ``key`` (the
    weight analysis) or ``a`` (Compare) list, which those jobs compute; None otherwise (a
    stale or forged request, refused). ``model_ids`` None (no settings): not checked."""
    model = request.get("model")
    if not isinstance(model, str) or not model:
        return None
    if model_ids is not None and model not in tuple(model_ids):
        return None
    for field in ("key", "a"):
        value = request.get(field)
        if isinstance(value, (list, tuple)) and value and value[0] != model:
            return None
    return model


def _die_with_parent() -> None:
    """Linux: the kernel kills this process when its parent (the forkserver) dies."""
    if sys.platform.startswith("linux"):
        try:
            ctypes.CDLL(None, use_errno=True).prctl(_PR_SET_PDEATHSIG, signal.SIGKILL)
        except (OSError, AttributeError):
            pass


def _beat(cache: diskcache.Cache, job_id: str, server_pid: int, stop: threading.Event) -> None:
    """Touch the record every second; end the process when the server is gone or the
    record cannot be written (the watchdog then reports it)."""
    while not stop.wait(BEAT_SECONDS):
        if not process_alive(server_pid):
            os._exit(0)
        try:
            beaten = transition(cache, job_id, "beat", heartbeat=time.time())
        except Exception as error:  # noqa: BLE001 — a job that cannot write must end
            log.error("job %s cannot write its heartbeat: %s", job_id, error)
            os._exit(3)
        if beaten is None:
            return  # the job ended, was stopped or cancelled: nothing to beat for


def _wait_for_slot(cache: diskcache.Cache, job_id: str, limits: JobLimits,
                   per_user: int | None = None) -> bool:
    """Wait until fewer than the limits' jobs compute for this job's model and session
    (and, with ``per_user``, its user) and no older queued job shares any of them; then
    mark this one running. Returns whether it runs: False when its record left ``queued``
    otherwise meanwhile (cancelled, stopped by the watchdog) — the job must not run."""
    while True:
        with cache.transact():  # the count and the write: one transaction (nested ones join it)
            everything = _stored(cache)
            mine = everything.get(job_id, {})
            if mine.get("state") != QUEUED:
                return mine.get("state") == RUNNING
            live = [(k, r) for k, r in everything.items() if k != job_id
                    and r.get("state") in LIVE and job_alive(r)]
            same_model = [r for _, r in live if r.get("model") == mine.get("model")]
            same_session = [r for _, r in live if r.get("session") == mine.get("session")]
            same_user = [r for _, r in live if per_user is not None
                         and r.get("user") == mine.get("user")]
            running_model = sum(r.get("state") == RUNNING for r in same_model)
            running_session = sum(r.get("state") == RUNNING for r in same_session)
            running_user = sum(r.get("state") == RUNNING for r in same_user)
            # One job counts once, though it may share the model, session and user.
            ahead = len({id(r) for r in same_model + same_session + same_user
                         if r.get("state") == QUEUED
                         and r.get("started", 0) < mine.get("started", 0)})
            user_free = per_user is None or running_user < per_user
            if running_model < limits.per_model and running_session < limits.per_session \
                    and user_free and not ahead:
                return transition(cache, job_id, "slot", state=RUNNING, message="") is not None
            waiting = len({id(r) for r in same_model + same_session + same_user
                           if r.get("state") == RUNNING}) + ahead
            transition(cache, job_id, "wait", message=waiting_message(waiting, per_user))
        time.sleep(0.5)


def run_job(settings: Any, limits: JobLimits, function_key: str, result_key: str,
            progress_key: str, args: Any, context: dict, job_id: str, server_pid: int) -> None:
    """A job's process: heartbeat, wait for a slot, rebuild the app, run Dash's job
    function (which stores the result where Dash's polling reads it), record the end.

    Every write is a :func:`transition`: the end (``done``) is recorded only from
    ``running``, so a job the watchdog marked ``failed`` or the user cancelled meanwhile
    keeps that verdict (and :meth:`JobManager.get_result` drops its result); a job whose
    record left ``queued`` while it waited does not run at all."""
    global _IN_JOB
    _IN_JOB = True
    _die_with_parent()
    cache = diskcache.Cache(str(settings.jobs_dir))
    me = os.getpid()
    transition(cache, job_id, "pid", pid=me, born=process_identity(me))  # if not yet set
    stop = threading.Event()
    threading.Thread(target=_beat, args=(cache, job_id, server_pid, stop), daemon=True,
                     name="classmap-heartbeat").start()
    try:
        if not _wait_for_slot(cache, job_id, limits, user_limit(settings)):
            return  # cancelled or stopped while it waited
        from classmap.app.server import create_app

        app = create_app(settings)
        job_fn = app._classmap_jobs.func_registry[function_key]  # type: ignore[attr-defined]
        from dash._utils import AttributeDict

        job_fn(result_key, progress_key, args, AttributeDict(**context))
        transition(cache, job_id, "finish", state=DONE)
    except BaseException as error:  # noqa: BLE001 — recorded for the watchdog, then re-raised
        stop.set()
        log.error("job %s failed", job_id, exc_info=error)
        try:
            transition(cache, job_id, "fail", state=FAILED, message=page_failure(error))
        except Exception:  # noqa: BLE001 — the store itself is unwritable: the pid tells
            pass
        raise
    finally:
        stop.set()
