"""Background jobs' one status protocol, shared by every job of the app.

A job's status is a small dict in a ``dcc.Store``::

    {"key": [...], "state": "pending" | "ready" | "error" | "cancelled", "message": str,
     "job": job id, "requested": seconds since the epoch}   # the last two: pending only

``key`` names what the job prepares — ``[model, metric, linkage]`` for the weight
analysis (the shell), ``[model, data set]`` for the image pages. A view draws only when
the status is ``ready`` for the key it needs (:func:`is_ready_for`). The work itself
runs in a Dash background callback (another process) and reports progress through
:func:`progress_reporter`; Cancel turns a pending status into ``cancelled``
(:func:`cancelled_status`).

A job's request (:func:`job_request`) carries a fresh ``id``: the job's process records
itself and beats a heartbeat under that id (``app/shell/job_processes.py``), and a
``dcc.Interval`` watchdog (:func:`watchdog_interval`, :func:`watch_status`) turns a job
that died, hung, ran too long or could not write into an ``error`` status within
seconds; :func:`failure_bar` shows it with a Retry (:func:`retry_logic`).
"""

from __future__ import annotations

import time
import uuid
from typing import Any, Callable, Sequence

from dash import Input, Output, State, dcc, html, no_update
from dash.exceptions import PreventUpdate

from classmap.analysis.progress import CallbackProgress
from classmap.app.shell.clientside import clientside
from classmap.app.shell.widgets import button

PENDING, READY, ERROR, CANCELLED = "pending", "ready", "error", "cancelled"


WATCH_MS = 2000  # how often a pending job's heartbeat is checked


def job_request(model: str, **fields: Any) -> dict[str, Any]:
    """A background job's request: ``{"id", "model", "requested", **fields}`` — a fresh
    id every time, so asking again (Retry, a restart after Cancel) always starts a job."""
    return {"id": uuid.uuid4().hex, "model": model, "requested": time.time(), **fields}


def job_status(key: Sequence[str], state: str, message: str = "",
               job: dict[str, Any] | None = None) -> dict[str, Any]:
    """The status of the job for ``key`` (JSON-friendly); ``job``: its request (a pending
    status names it, so the watchdog can check its heartbeat)."""
    status = {"key": list(key), "state": state, "message": message}
    if job:
        status.update(job=job.get("id"), requested=job.get("requested"))
    return status


def is_for(status: dict | None, key: Sequence[str]) -> bool:
    """Whether ``status`` speaks about ``key``."""
    return isinstance(status, dict) and status.get("key") == list(key)


def is_ready_for(status: dict | None, key: Sequence[str]) -> bool:
    return is_for(status, key) and status.get("state") == READY


def cancelled_status(n_clicks: int | None, status: dict | None, message: str) -> dict[str, Any]:
    """The Cancel button → a ``cancelled`` status for the pending job (else no update)."""
    if not n_clicks or not isinstance(status, dict) or status.get("state") != PENDING:
        raise PreventUpdate
    return job_status(status.get("key") or [], CANCELLED, message)


def progress_reporter(report: Callable[[Any], None], label: str) -> CallbackProgress:
    """Pipeline progress → ``report((percent, "<label>: <step>…"))`` for a progress bar."""

    def forward(step: str, fraction: float) -> None:
        report((int(round(100 * fraction)), f"{label}: {step}…"))

    return CallbackProgress(forward)


def watchdog_interval(interval_id: str) -> dcc.Interval:
    """The Interval that checks a pending job (off until a job is pending)."""
    return dcc.Interval(id=interval_id, interval=WATCH_MS, disabled=True)


def failure_bar(bar_id: str, text_id: str, retry_id: str) -> html.Div:
    """Hidden until a job fails: the reason and a Retry button."""
    return html.Div([
        html.Span(id=text_id, className="cm-job-label"),
        button("Retry", retry_id, kind="ghost", title="start this computation again"),
    ], id=bar_id, className="cm-job cm-job-failed", hidden=True, role="alert")


def as_status(value: Any) -> dict[str, Any] | None:
    """A status store's value as a status, or None when it is not one (a status only ever
    comes from the server as a dict; anything else is a forged request, ignored)."""
    return value if isinstance(value, dict) else None


def watch_status(verdict: Any, status: dict | None) -> tuple[Any, Any]:
    """A watchdog tick → (new status or no_update, job label or no_update).

    ``verdict``: :class:`~classmap.app.shell.job_processes.JobVerdict` or None.
    """
    status = as_status(status)
    if not status or status.get("state") != PENDING or verdict is None:
        raise PreventUpdate
    if verdict.state == ERROR:
        return job_status(status.get("key") or [], ERROR, verdict.message), no_update
    return no_update, (verdict.message or no_update)


def retry_status(n_clicks: int | None, status: dict | None,
                 make_request: Callable[[list], dict[str, Any]]) -> tuple:
    """Retry after a failed (or cancelled) job → (pending status, a new job request);
    ``make_request(key)`` builds the request (:func:`job_request` with the job's fields)."""
    status = as_status(status)
    if not n_clicks or not status or status.get("state") not in (ERROR, CANCELLED):
        raise PreventUpdate
    key = status.get("key")
    if not isinstance(key, list) or not key or not all(isinstance(k, str) for k in key):
        raise PreventUpdate
    job = make_request(key)
    return job_status(key, PENDING, job=job), job


def watch_jobs(app: Any, status_id: str, request_id: str, label_id: str, interval_id: str,
               bar_id: str, text_id: str, retry_id: str,
               make_request: Callable[[list], dict[str, Any]]) -> None:
    """Wire a status store's watchdog, failure bar and Retry (the ids of its
    :func:`watchdog_interval` and :func:`failure_bar`; ``label_id``: the job's label,
    where "Queued…" is shown). The app's job manager is ``app._classmap_jobs``."""

    # The watchdog runs only while a job is pending; an error shows in the bar. In the
    # browser (classmap.js failureControls): a status change costs no request.
    clientside(app, "failureControls", Output(interval_id, "disabled"), Output(bar_id, "hidden"),
               Output(text_id, "children"), Input(status_id, "data"))

    @app.callback(Output(status_id, "data", allow_duplicate=True),
                  Output(label_id, "children", allow_duplicate=True),
                  Input(interval_id, "n_intervals"), State(status_id, "data"),
                  prevent_initial_call=True)
    def watch(_ticks, status):
        manager = getattr(app, "_classmap_jobs", None)
        status = as_status(status)
        if manager is None or not status:
            raise PreventUpdate
        return watch_status(manager.check(status.get("job"), status.get("requested")), status)

    @app.callback(Output(status_id, "data", allow_duplicate=True),
                  Output(request_id, "data", allow_duplicate=True),
                  Input(retry_id, "n_clicks"), State(status_id, "data"),
                  prevent_initial_call=True)
    def retry(n_clicks, status):
        return retry_status(n_clicks, status, make_request)
