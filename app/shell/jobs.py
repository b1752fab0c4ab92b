"""Background jobs' one status protocol, shared by every job of the app.

A job's status is a small dict in a ``dcc.Store``::

    {"key": [...], "state": "pending" | "ready" | "error" | "cancelled", "message": str}

``key`` names what the job prepares — ``[model, metric, linkage]`` for the weight
analysis (the shell), ``[model, data set]`` for the image pages. A view draws only when
the status is ``ready`` for the key it needs (:func:`is_ready_for`). The work itself
runs in a Dash background callback (another process) and reports progress through
:func:`progress_reporter`; Cancel turns a pending status into ``cancelled``
(:func:`cancelled_status`).
"""

from __future__ import annotations

from typing import Any, Callable, Sequence

from dash.exceptions import PreventUpdate

from classmap.analysis.progress import CallbackProgress

PENDING, READY, ERROR, CANCELLED = "pending", "ready", "error", "cancelled"


def job_status(key: Sequence[str], state: str, message: str = "") -> dict[str, Any]:
    """The status of the job for ``key`` (JSON-friendly)."""
    return {"key": list(key), "state": state, "message": message}


def is_for(status: dict | None, key: Sequence[str]) -> bool:
    """Whether ``status`` speaks about ``key``."""
    return bool(status) and status.get("key") == list(key)


def is_ready_for(status: dict | None, key: Sequence[str]) -> bool:
    return is_for(status, key) and status.get("state") == READY


def cancelled_status(n_clicks: int | None, status: dict | None, message: str) -> dict[str, Any]:
    """The Cancel button → a ``cancelled`` status for the pending job (else no update)."""
    if not n_clicks or not status or status.get("state") != PENDING:
        raise PreventUpdate
    return job_status(status.get("key") or [], CANCELLED, message)


def progress_reporter(report: Callable[[Any], None], label: str) -> CallbackProgress:
    """Pipeline progress → ``report((percent, "<label>: <step>…"))`` for a progress bar."""

    def forward(step: str, fraction: float) -> None:
        report((int(round(100 * fraction)), f"{label}: {step}…"))

    return CallbackProgress(forward)
