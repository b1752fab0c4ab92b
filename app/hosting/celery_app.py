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
"""

from __future__ import annotations

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
from classmap.app.shell.job_processes import (CANCELLED, DONE, FAILED, QUEUED, RUNNING,
                                              START_GRACE_SECONDS, JobVerdict, find_request)
from classmap.app.shell.job_verdict import NO_HEARTBEAT, overdue, stopped_sentence

log = logging.getLogger(__name__)

RECORD_PREFIX = "classmap-job:"
TASK_PREFIX = "classmap-task:"  # Celery task id → job id
RESULT_PREFIX = "classmap-result:"  # Celery task id → Dash's result key of its callback
RECORD_SECONDS = 86400
BEAT_SECONDS = 1.0
JOIN_SECONDS = 15.0  # at most this long for the heartbeat thread to end (a Redis timeout)
NEW = "-"  # a transition's "from" state meaning: no record yet
FINAL = (DONE, FAILED, CANCELLED)
# Each write → the states the record may be in for it to happen (else it is dropped).
TRANSITIONS: dict[str, tuple[str, ...]] = {
    "queue": (NEW,),                      # the web process, before publishing
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
    ``limits``: :class:`~classmap.analysis.settings.JobLimits` (heartbeat, time limit).
    """

    def __init__(self, celery_app: Any, broker: str, limits: JobLimits) -> None:
        super().__init__(celery_app)
        self.broker = broker
        self.limits = limits
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

    def hosts(self) -> tuple[str, ...]:
        """Host names a page must not see: this machine's and Redis'."""
        return (socket.gethostname(), broker_host(self.broker))

    # -- Dash's manager interface ----------------------------------------------------------
    def make_job_fn(self, fn: Any, progress: Any, key: Any = None) -> Any:
        return super().make_job_fn(_beating(fn, self), progress, key)

    def call_job_fn(self, key: str, job_fn: Any, args: Any, context: Any) -> str:
        request = find_request(args)
        job_id = str(request.get("id") or "")

        def publish() -> str:
            if job_id:
                now = time.time()
                self.write(job_id, "queue", state=QUEUED, started=now, heartbeat=now,
                           message="")
            task_id = super(CeleryJobManager, self).call_job_fn(key, job_fn, args, context)
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
        running is marked ``cancelled`` (so the watchdog stays quiet) and its task is
        revoked. A job that has ended keeps its state and its task
        is left alone: Dash calls this after every result it reads, and a revoke with
        ``terminate`` then reached the worker while the task was returning — or, once the
        worker's process had gone on to another task, could stop that one."""
        if job is None:
            return
        try:
            job_id = self.client.get(TASK_PREFIX + str(job))
            if job_id:
                if not self.write(_text(job_id), "cancel", state=CANCELLED):
                    return
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
            if state == FAILED:
                return JobVerdict("error", record.get("message") or FAILED_SENTENCE)
            # A record the worker made (its "start" came first) has no "started": the
            # page's request time stands in for it.
            started = record.get("started", requested or now)
            reason = overdue(float(started),
                             float(record.get("heartbeat", now)), now, self.limits,
                             beating=state == RUNNING)
            if reason is None:
                if state == QUEUED:
                    return JobVerdict(QUEUED, "Waiting for a free worker…")
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
        if record.get("task"):
            try:
                self._revoke(record["task"])
            except self._errors:
                log.warning("could not revoke task %s: Redis unreachable", record["task"])
        return True


def _text(value: Any) -> str:
    return value.decode() if isinstance(value, bytes) else str(value)


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
        if not manager.write(job_id, "start", state=RUNNING, heartbeat=time.time(),
                             worker=worker):
            log.warning("job %s was cancelled or stopped before a worker took it; not run",
                        job_id)
            raise PreventUpdate
        stop = threading.Event()

        def beat() -> None:
            while not stop.wait(BEAT_SECONDS):
                try:
                    manager.write(job_id, "beat", heartbeat=time.time())
                except Exception as error:  # noqa: BLE001 — Redis gone: the page says so
                    log.warning("job %s cannot write its heartbeat: %s", job_id, error)

        beating = threading.Thread(target=beat, daemon=True, name="classmap-heartbeat")
        beating.start()

        def finish(state: str, message: str = "") -> None:
            stop.set()
            beating.join(JOIN_SECONDS)  # no heartbeat write may land after this one
            manager.write(job_id, "finish", state=state, message=message)

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
    manager = CeleryJobManager(celery_app, broker, job_limits())
    dash_app = create_app(settings, manager=manager, url_prefix=url_prefix)
    return celery_app, dash_app
