"""Production background jobs: Dash's CeleryManager on a Redis broker and result backend.

``classmap serve --broker redis://…`` (and the WSGI factory with ``CLASSMAP_BROKER``)
builds the app with :class:`CeleryJobManager`: a background callback becomes a Celery
task, run by ``classmap worker`` processes (on this machine or others sharing the
Redis and the result cache folder). The web processes only publish tasks and poll
Redis; they never load a model, so they never initialise CUDA.

The same status protocol as the single-process mode (``app/shell/jobs.py``) holds:

* each job has a record in Redis (``classmap-job:<job id>`` → JSON ``{state, started,
  heartbeat, worker, message, task}``, kept a day), written ``queued`` by the web process
  when it publishes the task and ``running`` by the worker, which touches ``heartbeat``
  every second while it computes;
* :meth:`CeleryJobManager.check` (the page's watchdog) turns a job whose worker stopped
  beating (killed, crashed, cut off) or that ran past its limit into an error with a
  Retry — a Retry publishes a new task, which waits in Redis until a worker is back;
* Redis out of reach → a one-line :class:`~classmap.analysis.errors.ClassmapError`
  shown in the page (views already in the result cache keep being served: they never
  touch Redis).

Identical concurrent requests compute once: the analyses go through the result cache's
per-key lock (``analysis/cache.py``, a ``flock`` on the shared cache folder), so the
second worker to ask waits for the first and reads its result.
"""

from __future__ import annotations

import functools
import json
import logging
import socket
import threading
import time
from typing import Any, Callable

from dash import CeleryManager

from classmap.analysis.errors import ClassmapError
from classmap.analysis.settings import JobLimits
from classmap.app.shell.job_processes import (CANCELLED, DONE, FAILED, QUEUED, RUNNING,
                                              START_GRACE_SECONDS, JobVerdict, find_request)

log = logging.getLogger(__name__)

RECORD_PREFIX = "classmap-job:"
TASK_PREFIX = "classmap-task:"  # Celery task id → job id
RECORD_SECONDS = 86400
BEAT_SECONDS = 1.0


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
    """The one-line refusal when Redis cannot be reached."""
    host = broker.split("@")[-1].split("://")[-1]  # never the password
    return ClassmapError(f"the job queue (Redis at {host}) cannot be reached, so no new "
                         "analysis can start; views already computed still work — try again "
                         "when Redis is back")


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
        raw = self.client.get(RECORD_PREFIX + job_id)
        return json.loads(raw) if raw else None

    def write(self, job_id: str, **changes: Any) -> None:
        record = {**(self.record(job_id) or {}), **changes}
        self.client.set(RECORD_PREFIX + job_id, json.dumps(record), ex=RECORD_SECONDS)

    # -- Dash's manager interface ----------------------------------------------------------
    def make_job_fn(self, fn: Any, progress: Any, key: Any = None) -> Any:
        return super().make_job_fn(_beating(fn, self), progress, key)

    def call_job_fn(self, key: str, job_fn: Any, args: Any, context: Any) -> str:
        request = find_request(args)
        job_id = str(request.get("id") or "")

        def publish() -> str:
            if job_id:
                now = time.time()
                self.write(job_id, state=QUEUED, started=now, heartbeat=now, message="")
            task_id = super(CeleryJobManager, self).call_job_fn(key, job_fn, args, context)
            if job_id:
                self.write(job_id, task=task_id)
                self.client.set(TASK_PREFIX + task_id, job_id, ex=RECORD_SECONDS)
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
        failed (a killed worker leaves its task "started" in Celery for ever)."""

        def ask() -> Any:
            job_id = self.client.get(TASK_PREFIX + str(job)) if job else None
            if job_id:
                record = self.record(job_id.decode())
                if record and record.get("state") == FAILED:
                    return False
            return super(CeleryJobManager, self).job_running(job)

        return self._guarded(ask)

    def terminate_job(self, job: Any) -> None:
        """Cancel (and Dash's clean-up after a result): revoke the task; a job that is
        still pending or running is marked ``cancelled`` so the watchdog stays quiet."""
        if job is None:
            return
        try:
            self.handle.control.revoke(job, terminate=True)
        except self._errors:
            log.warning("could not revoke task %s: Redis unreachable", job)

    # -- the watchdog ----------------------------------------------------------------------
    def check(self, job_id: str | None, requested: float | None,
              now: float | None = None) -> JobVerdict | None:
        """The page's watchdog: None while the job is fine or finished, a queued/running
        verdict with a sentence, or an error (Redis gone, the worker stopped beating, the
        time limit passed, the job failed)."""
        if not job_id:
            return None
        now = time.time() if now is None else now
        try:
            record = self.record(job_id)
        except self._errors:
            return JobVerdict("error", str(unreachable(self.broker)))
        if record is None:
            if requested and now - requested > START_GRACE_SECONDS:
                return JobVerdict("error", "the background job never started "
                                           f"(no sign of it after {START_GRACE_SECONDS:.0f} s)")
            return None
        state = record.get("state")
        if state in (DONE, CANCELLED):
            return None
        if state == FAILED:
            return JobVerdict("error", record.get("message") or "the background job failed")
        if state == QUEUED:
            return JobVerdict(QUEUED, "Waiting for a free worker…")
        silent = now - float(record.get("heartbeat") or now)
        if silent > self.limits.heartbeat_timeout:
            self._stop(job_id, record, "no heartbeat")
            worker = record.get("worker") or "its worker"
            return JobVerdict("error", f"the background job stopped: {worker} stopped "
                                       f"responding (no heartbeat for "
                                       f"{self.limits.heartbeat_timeout:.0f} s); Retry "
                                       "once a worker runs")
        if now - float(record.get("started") or now) > self.limits.time_limit:
            self._stop(job_id, record, "time limit")
            return JobVerdict("error", f"the background job ran past its limit of "
                                       f"{self.limits.time_limit:.0f} s and was stopped")
        return JobVerdict(RUNNING)

    def _stop(self, job_id: str, record: dict[str, Any], why: str) -> None:
        self.write(job_id, state=FAILED, message=why)
        if record.get("task"):
            self.terminate_job(record["task"])


def _beating(fn: Any, manager: CeleryJobManager) -> Any:
    """``fn`` as run on a worker: its record says ``running`` with a heartbeat every
    second while it computes, then ``done`` or ``failed`` with the error's first line."""
    from dash.exceptions import PreventUpdate

    @functools.wraps(fn)
    def run(*args: Any, **kwargs: Any) -> Any:
        job_id = str(find_request([*args, *kwargs.values()]).get("id") or "")
        if not job_id:
            return fn(*args, **kwargs)
        worker = f"worker {socket.gethostname()}"
        manager.write(job_id, state=RUNNING, heartbeat=time.time(), worker=worker)
        stop = threading.Event()

        def beat() -> None:
            while not stop.wait(BEAT_SECONDS):
                try:
                    manager.write(job_id, heartbeat=time.time())
                except Exception as error:  # noqa: BLE001 — Redis gone: the page says so
                    log.warning("job %s cannot write its heartbeat: %s", job_id, error)

        threading.Thread(target=beat, daemon=True, name="classmap-heartbeat").start()
        try:
            result = fn(*args, **kwargs)
        except PreventUpdate:
            stop.set()
            manager.write(job_id, state=DONE)
            raise
        except Exception as error:
            stop.set()
            first = (str(error).strip().splitlines() or [""])[0][:200]
            manager.write(job_id, state=FAILED,
                          message=f"the background job failed ({type(error).__name__}"
                                  f"{': ' + first if first else ''})")
            raise
        stop.set()
        manager.write(job_id, state=DONE)
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
