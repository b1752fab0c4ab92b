"""The watchdog's clock rule, shared by both job managers (pure: no store, no processes).

docs/jobs.md: a job may not go ``CLASSMAP_JOB_HEARTBEAT`` s without a heartbeat while
something beats for it, and may not take longer than ``CLASSMAP_JOB_TIME_LIMIT`` s from
its request, **waiting included**. The single-process manager
(``app/shell/job_processes.py``'s ``check_job``) and the Celery one
(``app/hosting/celery_app.py``'s ``CeleryJobManager.check``) differ only in who beats:
a local job's own process beats from the moment it starts (also while it waits for a
slot), a Celery task has no process until a worker takes it, so only a running one does.
"""

from __future__ import annotations

from classmap.analysis.settings import JobLimits

NO_HEARTBEAT = "no heartbeat"
TIME_LIMIT = "time limit"


def overdue(started: float, heartbeat: float, now: float, limits: JobLimits,
            *, beating: bool) -> str | None:
    """Why a queued or running job must be stopped now: :data:`NO_HEARTBEAT`,
    :data:`TIME_LIMIT`, or None while it may go on.

    started : when the job was requested (queued), seconds since the epoch — the time
        limit counts the wait for a slot or a worker
    heartbeat : its last heartbeat (same clock)
    now : the watchdog's time (same clock)
    beating : whether a process is expected to beat for the job now
    """
    if beating and now - heartbeat > limits.heartbeat_timeout:
        return NO_HEARTBEAT
    if now - started > limits.time_limit:
        return TIME_LIMIT
    return None


def stopped_sentence(reason: str, limits: JobLimits, *, waiting: bool = False) -> str:
    """The sentence the page shows for :func:`overdue`'s ``reason``; ``waiting``: the job
    had not started computing yet (it waited past the limit)."""
    if reason == NO_HEARTBEAT:
        return (f"the background job stopped responding (no heartbeat for "
                f"{limits.heartbeat_timeout:.0f} s)")
    if reason == TIME_LIMIT:
        if waiting:
            return (f"the background job waited past its limit of {limits.time_limit:.0f} s "
                    "(waiting counts towards it) and was stopped")
        return f"the background job ran past its limit of {limits.time_limit:.0f} s and was stopped"
    raise ValueError(f"unknown reason {reason!r}; expected {NO_HEARTBEAT!r} or {TIME_LIMIT!r}")
