"""The header's busy note for a new analysis (model, metric or linkage switched): a spinner
and what is being done, from the server's answer to the switch until the page's views
are drawn for it.

The phases of a switch and what the header shows in each::

    analysis in memory      → note "Drawing the views of <model> (<metric>, <linkage>)…"
    analysis to compute     → the job's progress bar ("<model>: loading the model…",
                              "…: analysing…", with Cancel); then the note, as above
    views drawn             → nothing (the page's "drawn" store names the analysis)
    failed or cancelled     → nothing (the failure bar or the notice says why)

A page says when its views are drawn with :func:`register_views_drawn`: a store whose
``data["key"]`` is ``[model, metric, linkage]`` of what it last drew (the Classes page's
heatmap key). On a page without one the note is not shown (its own views show their
busy states). The ``*_logic`` functions are plain functions of their inputs.
"""

from __future__ import annotations

from typing import Any, Mapping, Sequence

from dash import ALL, Input, Output, State, html, no_update

from classmap.app.shell import ids
from classmap.app.shell.clientside import clientside

# Component ids (the shell's; tests rely on them).
MODEL_BUSY = "shell-model-busy"  # the note: spinner + text, hidden unless busy
MODEL_BUSY_TEXT = "shell-model-busy-text"


def busy_note() -> html.Div:
    """The note, hidden until a switch needs it (styled like the job progress)."""
    return html.Div([html.Span(className="cm-spinner"),
                     html.Span("", id=MODEL_BUSY_TEXT, className="cm-job-label")],
                    id=MODEL_BUSY, className="cm-job cm-model-busy", hidden=True,
                    role="status", **{"aria-live": "polite"})


def register_views_drawn(app: Any, page: str, store_id: str) -> None:
    """Page ``page`` (its page-query store's name) tells when its views are drawn: store
    ``store_id``'s ``data["key"]`` is the analysis key it last drew."""
    app.__dict__.setdefault("_classmap_views_drawn", {})[page] = store_id

    # In the browser (classmap.js viewsDrawn): the views' new key costs no request while
    # they are being drawn.
    clientside(app, "viewsDrawn", Output(MODEL_BUSY, "hidden", allow_duplicate=True),
               Input(store_id, "data"), State(ids.SELECTION, "data"), prevent_initial_call=True)


def pages_with_drawn(app: Any) -> frozenset[str]:
    return frozenset(app.__dict__.get("_classmap_views_drawn", {}))


def current_pages(pages: Sequence[Any] | None) -> list[str]:
    """Page names from the page-query stores' ids on the page."""
    return [item.get("page") for item in pages or () if isinstance(item, dict)]


def busy_logic(status: Mapping[str, Any] | None, job: Any, pages: Sequence[Any] | None,
               watched: frozenset[str]) -> tuple[Any, Any]:
    """The analysis' status after a switch (and the job started for it, if any) → the
    note's (hidden, text). Shown only when the analysis is ready and the page says when
    its views are drawn; a job shows its own progress bar instead."""
    if not isinstance(status, Mapping) or job not in (None, no_update):
        return True, no_update
    if status.get("state") != "ready" or not set(current_pages(pages)) & watched:
        return True, no_update
    key = status.get("key") or ["?", "?", "?"]
    return False, busy_text((list(key) + ["?", "?", "?"])[:3])


BUSY_TEXT = "Drawing the views of {0} ({1}, {2})…"  # also filled in by classmap.js


def busy_text(key: Sequence[str]) -> str:
    """The note for analysis ``key`` = [model, metric, linkage]."""
    return BUSY_TEXT.format(*key)


def register(app: Any) -> None:
    """Hide the note when the analysis fails or is cancelled (the shell's other callbacks
    show it: app/shell/callbacks.py)."""

    clientside(app, "hideOnFailure", Output(MODEL_BUSY, "hidden", allow_duplicate=True),
               Input(ids.STATUS, "data"), prevent_initial_call=True)


PAGES_STATE = State({"type": ids.PAGE_QUERY, "page": ALL}, "id")
