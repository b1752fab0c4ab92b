"""Production background jobs: Dash's CeleryManager on a Redis broker and result backend.

``classmap serve --broker redis://…`` (and the WSGI factory with ``CLASSMAP_BROKER``)
builds the app with :class:`CeleryJobManager`: a background callback becomes a Celery
task, run by ``classmap worker`` processes (on this machine or others sharing the
Redis and the result cache folder). The web processes only publish tasks and poll
Redis; they never load a model, so they never initialise CUDA.

The same status protocol as the single-process mode (``app/shell/jobs.py``) holds:

* each job has a record in Redis, a hash ``classmap-job:<job id>`` with the fields
  ``state, started, heartbeat, worker, message, task`` (kept a day), written ``queued`` by
  the web process before it publishes the task and ``running`` by the worker, which
  touches ``heartbeat`` every second while it computes;
* every write is one field-wise ``HSET`` done by a Lua script only when the record is in
  one of the states the write may follow (:data:`TRANSITIONS`): ``queued`` only on a new
  record, ``running`` only from ``queued``, a heartbeat only while ``running``, and
  nothing after ``done``, ``failed`` or ``cancelled`` — so no two writers can undo each
  other's state, whatever the order they reach Redis in;
* :meth:`CeleryJobManager.check` (the page's watchdog) applies the single-process
  manager's rule (:mod:`classmap.app.shell.job_verdict`): a running job whose worker
  stopped beating (killed, crashed, cut off), or any job older than the time limit —
  waiting for a worker included — becomes an error with a Retry; a Retry publishes a
  new task, which waits in Redis until a worker is back;
* the page sees fixed sentences: a job's exception is logged on the worker and the
  page gets its first line with paths and host names cut out; Redis out of reach → a
  one-line :class:`~classmap.analysis.errors.ClassmapError` without the Redis host
  (views already in the result cache keep being served: they never touch Redis).

Identical concurrent requests compute once: the analyses go through the result cache's
per-key lock (``analysis/cache.py``, a ``flock`` on the shared cache folder), so the
second worker to ask waits for the first and reads its result.

Job limits — the single-process manager's ``[limits]``, counted in Redis so every web
process and worker shares them, with the same sentences:

* **admission** (web process, :meth:`CeleryJobManager._admit`): a session may have
  ``per_session + queued`` jobs queued or running, a signed-in user ``jobs_per_user +
  queued`` (when the hosting config sets it); more are refused (record ``refused``, no
  task published; the watchdog shows why, with Retry), and so is a job naming a model the
  server does not offer;
* **slots** (worker, :meth:`CeleryJobManager.wait_for_slot`): at most ``per_model`` jobs
  compute at once for one model, ``per_session`` for one session and ``jobs_per_user`` for
  one user (the limits the web process recorded); a job over them waits on its worker,
  ``queued`` with "Queued: waiting for …" and a heartbeat;
* each place is a member of a Redis sorted set per scope (``classmap-live:…``,
  ``classmap-run:…``) whose score is the deadline of a lease; one Lua script drops the
  expired leases, counts and adds, so two web processes cannot both take a last place. A
  queued job's lease lasts its time limit (nothing beats for it yet), a worker's job is
  renewed by its heartbeat for ``heartbeat_timeout`` s. A job that ends, fails, is
  cancelled or stopped by the watchdog gives its places back at once; a killed worker's
  expire ``heartbeat_timeout`` s after its last heartbeat.
"""

from __future__ import annotations

import contextlib
import functools
import logging
import re
import socket
import threading
import time
from typing import Any, Callable, Iterable
from urllib.parse import urlsplit

from dash import CeleryManager

from classmap.analysis.errors import ClassmapError
from classmap.analysis.settings import JobLimits
from classmap.app.hosting.redact import redact_paths
from classmap.app.shell.job_processes import (CANCELLED, DONE, FAILED, QUEUED, REFUSED, RUNNING,
                                              START_GRACE_SECONDS, UNKNOWN_MODEL, JobVerdict,
                                              current_session, current_user, find_request,
                                              job_model, session_refusal, user_limit,
                                              user_refusal, waiting_message)
from classmap.app.shell.job_verdict import NO_HEARTBEAT, overdue, stopped_sentence

log = logging.getLogger(__name__)

RECORD_PREFIX = "classmap-job:"
TASK_PREFIX = "classmap-task:"  # Celery task id → job id
RESULT_PREFIX = "classmap-result:"  # Celery task id → Dash's result key of its callback
RECORD_SECONDS = 86400
BEAT_SECONDS = 1.0
JOIN_SECONDS = 15.0  # at most this long for the heartbeat thread to end (a Redis timeout)
NEW = "-"  # a transition's "from" state meaning: no record yet
FINAL = (DONE, FAILED, CANCELLED, REFUSED)
# Job limits: one sorted set per scope ("session:…", "user:…", "model:…"), job id → the
# deadline of its lease (seconds since the epoch). LIVE: jobs queued or running (what a new
# request is admitted against); RUN: jobs holding a slot to compute.
LIVE_PREFIX = "classmap-live:"
RUN_PREFIX = "classmap-run:"
WAIT_SECONDS = 0.5  # how often a worker's job waiting for a slot asks again
REFUSED_TASK = "refused-"  # the "task id" Dash gets for a refused job (no task exists)
# Each write → the states the record may be in for it to happen (else it is dropped).
TRANSITIONS: dict[str, tuple[str, ...]] = {
    "queue": (NEW,),                      # the web process, before publishing
    "refuse": (NEW,),                     # the web process: over a limit, not published
    "wait": (QUEUED,),                    # the worker, while the job waits for a slot
    "task": (QUEUED, RUNNING, *FINAL),    # the web process, after publishing: the task id
    "start": (NEW, QUEUED),               # the worker takes the task
    "beat": (RUNNING,),                   # the worker's heartbeat
    "finish": (RUNNING,),                 # the worker: done / failed
    "stop": (QUEUED, RUNNING),            # the watchdog: failed (no heartbeat, time limit)
    "cancel": (QUEUED, RUNNING),          # Cancel
}
# KEYS[1] the record; ARGV[1] seconds to keep it, ARGV[2] " "-joined states it may be in
# ("-": none yet), then field, value, … → {1 if written else 0, the state it was in}.
_TRANSITION_LUA = """
local state = redis.call('HGET', KEYS[1], 'state') or '-'
if not string.find(' ' .. ARGV[2] .. ' ', ' ' .. state .. ' ', 1, true) then
  return {0, state}
end
redis.call('HSET', KEYS[1], unpack(ARGV, 3))
redis.call('EXPIRE', KEYS[1], ARGV[1])
return {1, state}
"""
# KEYS: the scopes' sorted sets; ARGV[1] now, ARGV[2] the lease's deadline, ARGV[3] the job
# id, ARGV[4] seconds to keep the sets, then each set's limit. Drops the expired leases;
# when every set holds fewer other jobs than its limit, adds (or renews) the job in all of
# them → {0, 0, 0}; else adds nothing → {the first full set's number (from 1), its other
# jobs, the other jobs of all full sets (each once)}.
_SLOT_LUA = """
local job = ARGV[3]
local full, count, seen, blocking = 0, 0, {}, 0
for i, key in ipairs(KEYS) do
  redis.call('ZREMRANGEBYSCORE', key, '-inf', ARGV[1])
  local members = redis.call('ZRANGE', key, 0, -1)
  local others = 0
  for _, member in ipairs(members) do
    if member ~= job then others = others + 1 end
  end
  if others >= tonumber(ARGV[4 + i]) then
    if full == 0 then full, count = i, others end
    for _, member in ipairs(members) do
      if member ~= job and not seen[member] then
        seen[member] = true
        blocking = blocking + 1
      end
    end
  end
end
if full > 0 then return {full, count, blocking} end
for _, key in ipairs(KEYS) do
  redis.call('ZADD', key, ARGV[2], job)
  redis.call('EXPIRE', key, ARGV[4])
end
return {0, 0, 0}
"""
FAILED_SENTENCE = "the background job failed"


def make_celery(broker: str) -> Any:
    """A Celery app whose broker and result backend are the Redis at ``broker``.

    Tasks are acknowledged when a worker takes them and a worker takes one at a time:
    a job whose worker dies is lost (the page's watchdog reports it and offers Retry),
    never run twice behind the user's back.
    """
    from celery import Celery

    if not broker.startswith(("redis://", "rediss://", "unix://")):
        raise ClassmapError(f"broker {broker!r} is not a Redis URL; give e.g. "
                            "--broker redis://localhost:6379/0")
    app = Celery("classmap", broker=broker, backend=broker)
    app.conf.update(
        task_acks_late=False,
        worker_prefetch_multiplier=1,
        task_publish_retry=False,  # Redis down: refuse at once (the page says so)
        broker_connection_retry_on_startup=True,
        result_expires=RECORD_SECONDS,
        redis_socket_connect_timeout=2,
        redis_socket_timeout=5,
        broker_transport_options={"socket_connect_timeout": 2, "max_retries": 1},
        worker_hijack_root_logger=False,
    )
    return app


def unreachable(broker: str) -> ClassmapError:
    """The one-line refusal when Redis cannot be reached (no host: the callers log the
    error, which names it)."""
    return ClassmapError("the job queue (Redis) cannot be reached, so no new analysis can "
                         "start; views already computed still work — try again when Redis "
                         "is back")


def broker_host(broker: str) -> str:
    """The host name of ``broker`` ("" for a Unix socket or an unreadable URL)."""
    try:
        return urlsplit(broker).hostname or ""
    except ValueError:
        return ""


def failure_message(error: BaseException, hosts: Iterable[str] = ()) -> str:
    """What the page shows for a job that raised ``error``: a fixed sentence plus the first
    line of its message, without the exception's class, absolute paths or ``hosts``
    (whole words; the worker's and Redis' host names), at most 200 characters of it."""
    first = (str(error).strip().splitlines() or [""])[0]
    first = redact_paths(first)
    for host in sorted({h for h in hosts if h}, key=len, reverse=True):
        first = re.sub(rf"(?<![\w.-]){re.escape(host)}(?![\w-])", "…", first,
                       flags=re.IGNORECASE)
    first = first.strip()[:200]
    return f"{FAILED_SENTENCE}: {first}" if first else FAILED_SENTENCE


def _redis_errors() -> tuple[type[BaseException], ...]:
    import kombu.exceptions
    import redis.exceptions

    return (redis.exceptions.ConnectionError, redis.exceptions.TimeoutError,
            kombu.exceptions.OperationalError, ConnectionError)


class CeleryJobManager(CeleryManager):
    """Dash's CeleryManager plus job records, a heartbeat watchdog and a clear message
    when Redis is out of reach (see the module docstring).

    ``celery_app``: from :func:`make_celery`; ``broker``: its URL (for messages);
    ``limits``: :class:`~classmap.analysis.settings.JobLimits` (heartbeat, time limit, jobs
    per model and session); ``settings``: the app's Settings (its ``model_ids`` and the
    hosting config's ``jobs_per_user``; None: any model, no per-user limit).
    """

    def __init__(self, celery_app: Any, broker: str, limits: JobLimits,
                 settings: Any = None) -> None:
        super().__init__(celery_app)
        self.broker = broker
        self.limits = limits
        self.settings = settings
        self.per_user = user_limit(settings)
        self.model_ids = getattr(settings, "model_ids", None) if settings is not None else None
        self._errors = _redis_errors()

    # -- the single-process manager's interface (nothing to start or stop here) ----------
    def start(self) -> None:
        """Nothing to start: the workers are other processes."""

    def stop_all(self) -> None:
        """Nothing to stop: a worker's jobs end with the worker."""

    @property
    def client(self) -> Any:
        """The redis-py client of the result backend."""
        return self.handle.backend.client

    def _guarded(self, call: Callable[[], Any]) -> Any:
        try:
            return call()
        except self._errors as error:
            log.warning("Redis unreachable: %s", error)
            raise unreachable(self.broker) from None

    # -- records -------------------------------------------------------------------------
    def record(self, job_id: str) -> dict[str, Any] | None:
        """The record of ``job_id`` (one ``HGETALL``: a consistent snapshot) with
        ``started`` and ``heartbeat`` as floats, or None."""
        raw = self.client.hgetall(RECORD_PREFIX + job_id)
        if not raw:
            return None
        record = {_text(k): _text(v) for k, v in raw.items()}
        for name in ("started", "heartbeat"):
            if name in record:
                record[name] = float(record[name])
        return record

    def write(self, job_id: str, change: str, **fields: Any) -> bool:
        """Set ``fields`` of the record atomically if it is in a state ``change`` (a key
        of :data:`TRANSITIONS`) may follow; returns whether it was written."""
        allowed = TRANSITIONS[change]
        args: list[Any] = [RECORD_SECONDS, " ".join(allowed)]
        for name, value in fields.items():
            args += [name, repr(value) if isinstance(value, float) else str(value)]
        script = self.client.register_script(_TRANSITION_LUA)
        written, before = script(keys=[RECORD_PREFIX + job_id], args=args)
        if not written:
            log.info("job %s: %s dropped (record is %s)", job_id, change, _text(before))
        return bool(written)

    # -- limits (see "Job limits" in the module docstring) --------------------------------
    def take_slot(self, prefix: str, scopes: list[tuple[str, int]], job_id: str,
                  lease: float, now: float | None = None) -> tuple[int, int, int]:
        """Add ``job_id`` to the sorted set ``prefix + scope`` of every ``(scope, limit)``
        with a lease of ``lease`` seconds, if each holds fewer than ``limit`` other jobs
        with a live lease (one Lua script: atomic). Returns (0, 0, 0) when taken, else
        (the first full scope's number from 1, its other jobs, the distinct other jobs
        of all full scopes)."""
        if not scopes:
            return 0, 0, 0
        now = time.time() if now is None else now
        script = self.client.register_script(_SLOT_LUA)
        full, count, blocking = script(
            keys=[prefix + scope for scope, _ in scopes],
            args=[repr(now), repr(now + lease), job_id, RECORD_SECONDS,
                  *(limit for _, limit in scopes)])
        return int(full), int(count), int(blocking)

    def renew(self, job_id: str, record: dict[str, Any] | None, lease: float) -> None:
        """Extend the leases ``job_id`` holds (queued/running and slot) to ``lease`` seconds
        from now; a lease it no longer holds is not taken again (``ZADD XX``)."""
        keys = _limit_keys(record)
        if keys:
            deadline = time.time() + lease
            with self.client.pipeline(transaction=False) as pipe:
                for key in keys:
                    pipe.zadd(key, {job_id: deadline}, xx=True)
                pipe.execute()

    def release(self, job_id: str, record: dict[str, Any] | None = None) -> None:
        """Give back every place ``job_id`` holds (it ended, failed, was cancelled or
        stopped); ``record``: its record if already read."""
        record = self.record(job_id) if record is None else record
        keys = _limit_keys(record)
        if keys:
            with self.client.pipeline(transaction=False) as pipe:
                for key in keys:
                    pipe.zrem(key, job_id)
                pipe.execute()

    def _admit(self, job_id: str, request: dict[str, Any]) -> str:
        """The web process: record the job ``queued`` with its place among the session's
        (and user's) live jobs, or ``refused`` with the reason the single-process manager
        gives; returns the reason ("": admitted). A queued job's lease lasts its time limit
        (no process beats for it until a worker takes it; the watchdog stops it then)."""
        model = job_model(request, self.model_ids)
        session, user = current_session(self.settings), current_user()
        limits = self.limits
        now = time.time()
        fields = {"model": model or "", "session": session, "user": user,
                  "per_model": limits.per_model, "per_session": limits.per_session,
                  "per_user": "" if self.per_user is None else self.per_user}
        refusal = ""
        if model is None:
            refusal = UNKNOWN_MODEL
        else:
            scopes = [("session:" + session, limits.per_session + limits.queued)]
            if self.per_user is not None:
                scopes.append(("user:" + user, self.per_user + limits.queued))
            full, count, _ = self.take_slot(LIVE_PREFIX, scopes, job_id,
                                            limits.time_limit + START_GRACE_SECONDS, now)
            if full == 1:
                refusal = session_refusal(count, limits)
            elif full == 2:
                refusal = user_refusal(user, count, self.per_user or 0, limits)
        if refusal:
            log.info("job %s refused: %s", job_id, refusal)
            self.write(job_id, "refuse", state=REFUSED, message=refusal, started=now,
                       heartbeat=now, **fields)
            return refusal
        self.write(job_id, "queue", state=QUEUED, started=now, heartbeat=now, message="",
                   **fields)
        return ""

    def wait_for_slot(self, job_id: str, record: dict[str, Any] | None, worker: str) -> bool:
        """The worker, before it computes: wait until the job's model, session and user
        each have fewer than their limits of jobs computing (the limits the web process
        recorded), then hold a slot (its lease renewed by the heartbeat). While waiting
        the record stays ``queued`` with a "Queued: waiting for …" message and a
        heartbeat. Returns False when the job was cancelled or stopped meanwhile."""
        scopes = _run_scopes(record)
        blocked = False
        while True:
            full, _, blocking = self.take_slot(RUN_PREFIX, scopes, job_id,
                                               self.limits.heartbeat_timeout)
            if not full:
                return True
            if not self.write(job_id, "wait", heartbeat=time.time(), worker=worker,
                              message=waiting_message(blocking, _number(record, "per_user"))):
                return False
            if not blocked:
                log.info("job %s waits for %d job(s) of its model, session or user", job_id,
                         blocking)
                blocked = True
            self.renew(job_id, record, self.limits.heartbeat_timeout)
            time.sleep(WAIT_SECONDS)

    def hosts(self) -> tuple[str, ...]:
        """Host names a page must not see: this machine's and Redis'."""
        return (socket.gethostname(), broker_host(self.broker))

    # -- Dash's manager interface ----------------------------------------------------------
    def make_job_fn(self, fn: Any, progress: Any, key: Any = None) -> Any:
        return super().make_job_fn(_beating(fn, self), progress, key)

    def call_job_fn(self, key: str, job_fn: Any, args: Any, context: Any) -> str:
        """Admit the job (:meth:`_admit`: record it queued, or refused over a limit) and
        publish its task; returns the task id (a refused job: a name no task has, for which
        :meth:`job_running` is False at once, so Dash stops polling and the watchdog shows
        the reason)."""
        request = find_request(args)
        job_id = str(request.get("id") or "")

        def publish() -> str:
            if job_id and self._admit(job_id, request):
                return REFUSED_TASK + job_id
            try:
                task_id = super(CeleryJobManager, self).call_job_fn(key, job_fn, args,
                                                                    context)
            except BaseException:
                if job_id:  # not published: its place is free again (if Redis answers)
                    with contextlib.suppress(*self._errors):
                        self.release(job_id)
                raise
            with self.client.pipeline(transaction=False) as pipe:
                pipe.set(RESULT_PREFIX + task_id, key, ex=RECORD_SECONDS)
                if job_id:
                    pipe.set(TASK_PREFIX + task_id, job_id, ex=RECORD_SECONDS)
                pipe.execute()
            if job_id:
                self.write(job_id, "task", task=task_id)
            return task_id

        return self._guarded(publish)

    def result_ready(self, key: str) -> bool:
        return self._guarded(lambda: super(CeleryJobManager, self).result_ready(key))

    def get_progress(self, key: str) -> Any:
        return self._guarded(lambda: super(CeleryJobManager, self).get_progress(key))

    def get_result(self, key: str, job: Any) -> Any:
        return self._guarded(lambda: super(CeleryJobManager, self).get_result(key, job))

    def get_updated_props(self, key: str) -> Any:
        return self._guarded(lambda: super(CeleryJobManager, self).get_updated_props(key))

    def job_running(self, job: Any) -> Any:
        """Whether Dash should keep polling ``job``: not once the watchdog has declared it
        failed (a killed worker leaves its task "started" in Celery for ever); yes while
        Celery says it runs, and also once it has ended while its result is still unread.

        Dash's poll reads the result first and asks this second; on False with no result
        it ends the polling for good. A worker that stores the result and ends between
        the two (more likely on a loaded machine and with several jobs ending at once)
        made the page wait for ever for a result sitting in Redis: the task's result key
        (recorded when it was published) says whether one more poll will find it."""

        if str(job).startswith(REFUSED_TASK):
            return False

        def ask() -> Any:
            job_id = self.client.get(TASK_PREFIX + str(job)) if job else None
            if job_id:
                record = self.record(job_id.decode())
                if record and record.get("state") == FAILED:
                    return False
            if super(CeleryJobManager, self).job_running(job):
                return True
            key = self.client.get(RESULT_PREFIX + str(job)) if job else None
            return bool(key) and self.handle.backend.get(_text(key)) is not None

        return self._guarded(ask)

    def terminate_job(self, job: Any) -> None:
        """Cancel (and Dash's clean-up after a result): a job that is still queued or
        running is marked ``cancelled`` (so the watchdog stays quiet), gives its places
        back and its task is revoked. A job that has ended keeps its state and its task
        is left alone: Dash calls this after every result it reads, and a revoke with
        ``terminate`` then reached the worker while the task was returning — or, once the
        worker's process had gone on to another task, could stop that one."""
        if job is None or str(job).startswith(REFUSED_TASK):
            return
        try:
            job_id = self.client.get(TASK_PREFIX + str(job))
            if job_id:
                if not self.write(_text(job_id), "cancel", state=CANCELLED):
                    return
                self.release(_text(job_id))
            self._revoke(job)
        except self._errors:
            log.warning("could not revoke task %s: Redis unreachable", job)

    def _revoke(self, task: Any) -> None:
        """Revoke ``task``: not run if still waiting, stopped (SIGTERM) if running."""
        self.handle.control.revoke(task, terminate=True)

    # -- the watchdog ----------------------------------------------------------------------
    def check(self, job_id: str | None, requested: float | None,
              now: float | None = None) -> JobVerdict | None:
        """The page's watchdog: None while the job is fine or finished, a queued/running
        verdict with a sentence, or an error (Redis gone, the worker stopped beating, the
        time limit passed — waiting for a worker included —, the job failed).

        The clock rule is the single-process manager's (:func:`job_verdict.overdue`); only
        a running job has a worker that beats."""
        if not job_id:
            return None
        now = time.time() if now is None else now
        for _ in range(4):  # states only move forward: a dropped stop settles in ≤ 3 reads
            try:
                record = self.record(job_id)
            except self._errors:
                return JobVerdict("error", str(unreachable(self.broker)))
            if record is None:
                if requested and now - requested > START_GRACE_SECONDS:
                    return JobVerdict("error", "the background job never started (no sign "
                                               f"of it after {START_GRACE_SECONDS:.0f} s)")
                return None
            state = record.get("state")
            if state in (DONE, CANCELLED):
                return None
            if state in (FAILED, REFUSED):
                return JobVerdict("error", record.get("message") or FAILED_SENTENCE)
            # A record the worker made (its "start" came first) has no "started": the
            # page's request time stands in for it. A queued job a worker has taken (it
            # waits for a slot there) beats like a running one.
            started = record.get("started", requested or now)
            reason = overdue(float(started),
                             float(record.get("heartbeat", now)), now, self.limits,
                             beating=state == RUNNING or bool(record.get("worker")))
            if reason is None:
                if state == QUEUED:
                    return JobVerdict(QUEUED, record.get("message")
                                      or "Waiting for a free worker…")
                return JobVerdict(RUNNING)
            sentence = stopped_sentence(reason, self.limits, waiting=state == QUEUED)
            if state == QUEUED:
                sentence += "; Retry once a worker is free"
            elif reason == NO_HEARTBEAT:
                sentence += "; its worker may have stopped — Retry once a worker runs"
            log.warning("job %s stopped by the watchdog (%s; %s, task %s)", job_id, reason,
                        record.get("worker") or "no worker", record.get("task") or "?")
            try:
                if self._stop(job_id, record, sentence):
                    return JobVerdict("error", sentence)
            except self._errors:
                return JobVerdict("error", str(unreachable(self.broker)))
            # The record moved on meanwhile (taken by a worker, finished): look again.
        return None

    def _stop(self, job_id: str, record: dict[str, Any], message: str) -> bool:
        """Mark the job failed with ``message`` (only if it is still queued or running) and
        revoke its task; returns whether this call stopped it."""
        if not self.write(job_id, "stop", state=FAILED, message=message):
            return False
        self.release(job_id, record)
        if record.get("task"):
            try:
                self._revoke(record["task"])
            except self._errors:
                log.warning("could not revoke task %s: Redis unreachable", record["task"])
        return True


def _text(value: Any) -> str:
    return value.decode() if isinstance(value, bytes) else str(value)


def _number(record: dict[str, Any] | None, name: str) -> int | None:
    """``record[name]`` as an int (a limit the web process recorded), or None."""
    try:
        return int((record or {}).get(name) or "")
    except ValueError:
        return None


def _scopes(record: dict[str, Any] | None) -> dict[str, str]:
    """The limit scopes of a job's record: {"model": "model:m", "session": …, "user": …}
    for the fields it has (a record the web process did not write has none)."""
    record = record or {}
    return {name: f"{name}:{record[name]}" for name in ("model", "session", "user")
            if record.get(name)}


def _run_scopes(record: dict[str, Any] | None) -> list[tuple[str, int]]:
    """(scope, limit) of the slots a job must hold to compute: its model's and session's
    (and, with a per-user limit, its user's), from the limits its record carries."""
    scopes = _scopes(record)
    result = []
    for name, limit_field in (("model", "per_model"), ("session", "per_session"),
                              ("user", "per_user")):
        limit = _number(record, limit_field)
        if name in scopes and limit is not None:
            result.append((scopes[name], limit))
    return result


def _limit_keys(record: dict[str, Any] | None) -> list[str]:
    """Every sorted-set key a job with ``record`` may hold a place in."""
    scopes = _scopes(record)
    keys = [LIVE_PREFIX + scopes[name] for name in ("session", "user") if name in scopes]
    keys += [RUN_PREFIX + scope for scope in scopes.values()]
    return keys


def _beating(fn: Any, manager: CeleryJobManager) -> Any:
    """``fn`` as run on a worker: its record says ``running`` with a heartbeat every
    second while it computes, then ``done`` or ``failed`` (with :func:`failure_message`;
    the exception itself goes to the worker's log). The heartbeat thread has ended before
    that last write. A task whose job was cancelled or stopped while it waited is not run."""
    from dash.exceptions import PreventUpdate

    @functools.wraps(fn)
    def run(*args: Any, **kwargs: Any) -> Any:
        job_id = str(find_request([*args, *kwargs.values()]).get("id") or "")
        if not job_id:
            return fn(*args, **kwargs)
        worker = socket.gethostname()
        record = manager.record(job_id)
        if not manager.wait_for_slot(job_id, record, worker) or not manager.write(
                job_id, "start", state=RUNNING, heartbeat=time.time(), worker=worker):
            log.warning("job %s was cancelled or stopped before a worker took it; not run",
                        job_id)
            manager.release(job_id, record)
            raise PreventUpdate
        stop = threading.Event()

        def beat() -> None:
            while not stop.wait(BEAT_SECONDS):
                try:
                    if manager.write(job_id, "beat", heartbeat=time.time()):
                        manager.renew(job_id, record, manager.limits.heartbeat_timeout)
                except Exception as error:  # noqa: BLE001 — Redis gone: the page says so
                    log.warning("job %s cannot write its heartbeat: %s", job_id, error)

        beating = threading.Thread(target=beat, daemon=True, name="classmap-heartbeat")
        beating.start()

        def finish(state: str, message: str = "") -> None:
            stop.set()
            beating.join(JOIN_SECONDS)  # no heartbeat write may land after this one
            manager.write(job_id, "finish", state=state, message=message)
            manager.release(job_id, record)

        try:
            result = fn(*args, **kwargs)
        except PreventUpdate:
            finish(DONE)
            raise
        except Exception as error:
            log.error("job %s failed on worker %s", job_id, worker, exc_info=error)
            finish(FAILED, failure_message(error, manager.hosts()))
            raise
        finish(DONE)
        return result

    return run


def build_celery_app(settings: Any, broker: str, url_prefix: str | None = None) -> Any:
    """The Celery app with every background callback of the Dash app registered as a
    task (a worker needs them; the web processes publish them): returns (celery, dash)."""
    from classmap.analysis.settings import job_limits
    from classmap.app.server import create_app

    celery_app = make_celery(broker)
    manager = CeleryJobManager(celery_app, broker, job_limits(), settings)
    dash_app = create_app(settings, manager=manager, url_prefix=url_prefix)
    return celery_app, dash_app
