"""The shared selection's plumbing, used by every page.

Flow of one page load::

    layout(**query) ─► resolve_page_query (server, in the page's layout) ─► page-query store
    page-query store ─(clientside)─► SELECTION, STATUS, JOB_REQUEST, notice
    SELECTION ─(clientside)─► ANALYSIS_KEY ─► request_analysis (only for a new analysis)
                            └► STATUS, ready at once for an analysis the last ready
                               status listed as held in memory (no request)
    JOB_REQUEST ─► prepare_analysis (background: progress bar, cancel) ─► STATUS, SETTLE_REQUEST
    SETTLE_REQUEST ─► settle_selection (drop class ids the model lacks, with a notice)
    SELECTION ─(clientside)─► address bar + navigation links

Why so much happens in the browser: every server callback between the page's insertion
and its views is a round trip the views wait for. dash-renderer holds a callback back
while any callback upstream of its Inputs is outstanding, so a page whose views listen
(through :func:`mirror_shared_state`) to SELECTION would wait for every server callback
that writes SELECTION on page load. The query is therefore resolved on the server while
the page's layout is built, and the shell adopts it in the browser; server callbacks of a
page that change the selection write a page-local request store, relayed to SELECTION in
the browser (:func:`relay_selection_requests`), because Dash ignores
``prevent_initial_call`` for a callback whose Inputs arrive with a page but whose
Output lives outside it.

Views read ``SELECTION`` and ``STATUS``; they draw only when ``STATUS`` says the
selection's analysis is ready. A page control joins the selection with
:func:`bind_field` (two-way, in the browser, one callback so there is no cycle).

The ``*_logic`` functions are plain functions of their inputs (tested without Dash);
``register`` wires them.
"""

from __future__ import annotations

import logging
from typing import Any, Callable, Mapping, Sequence

import dash
from dash import ALL, Input, Output, State, dcc, no_update
from dash.exceptions import PreventUpdate

from classmap.analysis.errors import ClassmapError
from classmap.app.hosting.redact import redact_paths
from classmap.app.shell import export_view, ids, model_busy
from classmap.app.shell.clientside import bind_fields, clientside
from classmap.app.shell.jobs import (ERROR, PENDING, READY, cancelled_status, is_for,
                                     is_ready_for, job_request, job_status, progress_reporter,
                                     retry_status, watch_jobs)
from classmap.app.shell.services import Services, current_services
from classmap.app.shell.selection import check_against_model, coerce_selection

log = logging.getLogger(__name__)

NOTICE_HIDDEN = "cm-notice cm-notice-hidden"
NOTICE_WARNING = "cm-notice cm-notice-warning"
NOTICE_MAX_CHARS = 400  # an error that quotes a client's value is cut to this


def analysis_key(selection: dict[str, Any]) -> list[str]:
    """[model, metric, linkage] of a selection dict (JSON-friendly); a value that is not
    a selection (a forged request) is refused with PreventUpdate."""
    if not isinstance(selection, dict):
        raise PreventUpdate
    key = [selection.get("model"), selection.get("metric"), selection.get("linkage")]
    if not all(isinstance(part, str) for part in key):
        raise PreventUpdate
    return key


def ready_status(key: Sequence[str], services: Services | None = None) -> dict[str, Any]:
    """A ready status for ``key``; with ``services``, it also lists (``"ready"``) every
    analysis of the same model that process holds in memory (``key`` among them), so the
    browser switches metric or linkage among them with no status request
    (``classmap.js``'s ``analysisKey``; it shows the header's busy note itself). Another
    web process that lacks one reads it from the shared result cache. A model switch
    always asks the server."""
    status = job_status(key, READY)
    if services is not None:
        status["ready"] = [list(held) for held in services.views_in_memory()
                           if held[0] == key[0]]
    return status


def notice_outputs(problems: Sequence[str]) -> tuple[str, str]:
    """(text, className) of the notice bar: hidden when there is nothing to say."""
    if not problems:
        return "", NOTICE_HIDDEN
    return "The link could not be followed exactly: " + "; ".join(problems) + ".", NOTICE_WARNING


def page_query_store(page: str, selection: Mapping[str, Any], problems: Sequence[str],
                     resolved: Mapping[str, Any] | None = None) -> dcc.Store:
    """The store a page's ``layout(**query)`` puts its resolved URL query in.

    The query is checked against the model on the server while the page is built
    (``resolve_page_query``, instant when the analysis is in memory; ``resolved`` when
    the page did it already); the shell adopts the result in the browser, so no server
    round trip stands between the page's arrival and its views' first requests.
    """
    if resolved is None:
        resolved = resolve_page_query(current_services(), dict(selection), problems)
    return dcc.Store(id={"type": ids.PAGE_QUERY, "page": page}, data=dict(resolved))


# -- logic ---------------------------------------------------------------------------------


def resolve_page_query(services: Services, selection: dict[str, Any],
                       problems: Sequence[str]) -> dict[str, Any]:
    """A page's parsed URL query → what the shell adopts when the page loads.

    Runs on the server while the page's layout is built. When the analysis is already
    in memory the class ids are checked at once; otherwise a background job is
    requested and the check happens when it is done (``settle_selection``).

    Returns ``{"selection", "status", "job" (None: no job), "notice": [text, class]}``.
    """
    selection = coerce_selection(selection, services.settings.default_model)
    problems = list(problems)
    key = analysis_key(selection)
    job: dict[str, Any] | None = None
    if services.view_ready(tuple(key)):
        selection, more = check_against_model(selection, services.view(tuple(key)))
        problems.extend(more)
        status: dict[str, Any] = ready_status(key, services)
    else:
        job = job_request(key[0], key=key)
        status = job_status(key, PENDING, job=job)
    return {"selection": selection, "status": status, "job": job,
            "notice": list(notice_outputs(problems))}


def request_analysis_logic(services: Services, key: list[str] | None,
                           status: dict | None) -> tuple:
    """The selection's analysis changed → (status, job request) — ready, or a job."""
    if not key:
        raise PreventUpdate
    key = list(services.check_key(key))  # a configured model, metric and linkage, or a notice
    if is_for(status, key) and status.get("state") in (READY, PENDING):
        raise PreventUpdate
    if services.view_ready(tuple(key)):
        return ready_status(key, services), no_update
    job = job_request(key[0], key=list(key))
    return job_status(key, PENDING, job=job), job


def retry_analysis_logic(n_clicks: int | None, status: dict | None) -> tuple:
    """Retry after a failed (or cancelled) analysis job → (pending status, a new job)."""
    return retry_status(n_clicks, status, lambda key: job_request(key[0], key=key))


def prepare_analysis_logic(services: Services, report: Callable[[Any], None],
                           request: dict | None) -> dict[str, Any]:
    """Background job: load and analyse ``request["key"]`` so the cache holds it.

    ``report((percent, label))`` drives the progress bar. A model that cannot be
    loaded gives an ``error`` status carrying the one-line reason. The status is also
    the settle request: the selection's class ids are checked once the job is done.
    """
    if not request or not request.get("key"):
        raise PreventUpdate
    key = tuple(request["key"])
    model = key[0]
    progress = progress_reporter(report, model)
    try:
        with progress.step("loading the model", total=1) as advance:
            services.head(model)
            advance(1)
        services.view(key, progress=progress)
    except ClassmapError as error:
        log.warning("model %s is not usable: %s", model, error)
        return job_status(key, ERROR, str(error))
    return ready_status(key, services)


def settle_selection_logic(services: Services, status: dict | None,
                           selection: dict | None) -> tuple:
    """When an analysis becomes ready, drop selection keys the model lacks (with a notice)."""
    if not selection or not is_ready_for(status, analysis_key(selection)):
        raise PreventUpdate
    checked, problems = check_against_model(selection, services.view(tuple(status["key"])))
    if not problems:
        raise PreventUpdate
    return (checked, *notice_outputs(problems))


def cancel_analysis_logic(n_clicks: int | None, status: dict | None) -> dict[str, Any]:
    """The cancel button → a ``cancelled`` status for the pending analysis."""
    return cancelled_status(n_clicks, status, "the analysis was cancelled; pick another model "
                                              "(or this one again) to start it again")


# -- wiring ----------------------------------------------------------------------------------


def register_page_class(app: Any) -> None:
    """The app root's class names the page shown (``cm-on-classes`` …): the header's
    page-specific controls are hidden by it in CSS. (A ``:has(.cm-page-…)`` rule on the
    root made every element inserted anywhere — each of plotly's text measurements —
    restyle more of the page: ≈ 30 ms of drawing the split icicle.) After the pages are
    registered: the browser gets their paths."""
    from classmap.app.shell.layout import page_slugs

    clientside(app, "pageClass", Output(ids.APP, "className"),
               Input("_pages_location", "pathname"), constants={"pages": page_slugs()})


def register(app: Any, services: Services) -> None:
    """Wire the shared selection, the analysis job and the URL for every page."""

    # The page's query, resolved on the server when its layout was built (the first
    # page store present; ALL because each page has its own).
    clientside(app, "adoptPageQuery",
               Output(ids.SELECTION, "data"), Output(ids.STATUS, "data"),
               Output(ids.JOB_REQUEST, "data"), Output(ids.NOTICE_TEXT, "children"),
               Output(ids.NOTICE, "className"),
               Input({"type": ids.PAGE_QUERY, "page": ALL}, "data"))

    # A new analysis key asks the server (ready at once, or a job); a key the status
    # already answers (ready or being prepared) costs no request, and neither does one
    # the status lists as held in memory (its ``ready``): the status becomes ready for it
    # in the browser, so the views redraw in one round trip.
    clientside(app, "analysisKey", Output(ids.ANALYSIS_KEY, "data"),
               Output(ids.STATUS, "data", allow_duplicate=True),
               Output(model_busy.MODEL_BUSY, "hidden", allow_duplicate=True),
               Output(model_busy.MODEL_BUSY_TEXT, "children", allow_duplicate=True),
               Input(ids.SELECTION, "data"), State(ids.STATUS, "data"),
               State(ids.ANALYSIS_KEY, "data"), model_busy.PAGES_STATE,
               constants={"busyText": model_busy.BUSY_TEXT}, prevent_initial_call=True)

    # The header's busy note (app/shell/model_busy.py) follows each new analysis.
    busy = (Output(model_busy.MODEL_BUSY, "hidden", allow_duplicate=True),
            Output(model_busy.MODEL_BUSY_TEXT, "children", allow_duplicate=True))

    @app.callback(
        Output(ids.STATUS, "data", allow_duplicate=True),
        Output(ids.JOB_REQUEST, "data", allow_duplicate=True),
        *busy,
        Input(ids.ANALYSIS_KEY, "data"),
        State(ids.STATUS, "data"),
        model_busy.PAGES_STATE,
        prevent_initial_call=True,
    )
    def request_analysis(key, status, pages):
        new_status, job = request_analysis_logic(services, key, status)
        return (new_status, job,
                *model_busy.busy_logic(new_status, job, pages, model_busy.pages_with_drawn(app)))

    @app.callback(
        Output(ids.STATUS, "data", allow_duplicate=True),
        Output(ids.SETTLE_REQUEST, "data"),
        *busy,
        Input(ids.JOB_REQUEST, "data"),
        model_busy.PAGES_STATE,
        background=True,
        progress=[Output(ids.JOB_PROGRESS, "value"), Output(ids.JOB_LABEL, "children")],
        running=[(Output(ids.JOB_PANEL, "hidden"), False, True),
                 (Output(ids.JOB_CANCEL, "disabled"), False, True)],
        cancel=[Input(ids.JOB_CANCEL, "n_clicks")],
        interval=250,
        prevent_initial_call=True,
    )
    def prepare_analysis(set_progress, request, pages):
        status = prepare_analysis_logic(services.for_background_job(), set_progress, request)
        return (status, status,
                *model_busy.busy_logic(status, None, pages, model_busy.pages_with_drawn(app)))

    # The watchdog: a pending job that died, hung, overran or could not write becomes an
    # error within seconds, shown with a Retry (its Interval runs only while a job is pending).
    watch_jobs(app, ids.STATUS, ids.JOB_REQUEST, ids.JOB_LABEL, ids.JOB_WATCHDOG, ids.JOB_FAILURE,
               ids.JOB_FAILURE_TEXT, ids.JOB_RETRY, lambda key: job_request(key[0], key=key))

    @app.callback(
        Output(ids.STATUS, "data", allow_duplicate=True),
        Input(ids.JOB_CANCEL, "n_clicks"),
        State(ids.STATUS, "data"),
        prevent_initial_call=True,
    )
    def cancel_analysis(n_clicks, status):
        return cancel_analysis_logic(n_clicks, status)

    @app.callback(
        Output(ids.SELECTION, "data", allow_duplicate=True),
        Output(ids.NOTICE_TEXT, "children", allow_duplicate=True),
        Output(ids.NOTICE, "className", allow_duplicate=True),
        Input(ids.SETTLE_REQUEST, "data"),
        State(ids.SELECTION, "data"),
        prevent_initial_call=True,
    )
    def settle_selection(status, selection):
        return settle_selection_logic(services, status, selection)

    clientside(app, "syncUrl", Output(ids.URL_SYNC, "data"),
               Output({"type": ids.NAV_LINK, "path": ALL}, "href"), Input(ids.SELECTION, "data"))

    clientside(app, "hideNotice", Output(ids.NOTICE, "className", allow_duplicate=True),
               Input(ids.NOTICE_CLOSE, "n_clicks"), constants={"className": NOTICE_HIDDEN},
               prevent_initial_call=True)

    export_view.register(app, services)
    model_busy.register(app)

    # The analysis key's controls: a switch among the analyses the server holds is made
    # ready with the selection itself (one round sooner than analysisKey).
    switch = {"busy": busy, "pages": model_busy.PAGES_STATE, "busy_text": model_busy.BUSY_TEXT}
    bind_fields(app, ((ids.MODEL_PICKER, "model"), (ids.METRIC_PICKER, "metric"),
                      (ids.LINKAGE_PICKER, "linkage")), analysis=switch)


def report_callback_error(error: Exception) -> None:
    """Global callback error handler: log it, tell the user, keep the page as it was."""
    if isinstance(error, ClassmapError):
        log.warning("callback refused input: %s", error)
        # No server paths and no client-sized text back to the browser (app/hosting).
        text = redact_paths(str(error))[:NOTICE_MAX_CHARS]
    else:
        log.error("callback failed", exc_info=error)
        text = ("Something went wrong; the view keeps its previous state — the server log "
                "has the details")
    dash.set_props(ids.NOTICE_TEXT, {"children": text})
    dash.set_props(ids.NOTICE, {"className": "cm-notice cm-notice-error"})
    return None
