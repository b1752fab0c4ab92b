"""Callbacks of the Compare page: the button → one comparison → figures and the table.

:func:`compare_logic` takes plain values and returns plain values, so tests call it
without a browser.
"""

from __future__ import annotations

import json
import logging
from typing import Any, Callable
from urllib.parse import urlencode

import numpy as np
from dash import Input, Output, State, dcc, html, no_update
from dash.exceptions import PreventUpdate

from classmap.analysis.errors import ClassmapError
from classmap.app.hosting.identity import current_identity
from classmap.app.pages.compare import figures, ids
from classmap.app.shell.figures import message_figure
from classmap.app.shell.jobs import (
    ERROR,
    PENDING,
    READY,
    cancelled_status,
    job_request,
    job_status,
    progress_reporter,
    watch_jobs,
)
from classmap.app.shell.services import Services, short_name
from classmap.app.shell.widgets import stat

log = logging.getLogger(__name__)

MAX_PERMUTATIONS = 9999
PLACED_DIFFERENTLY = 20  # classes listed whose nearest classes differ most between sources


def compare_logic(services: Services, a: tuple, b: tuple, permutations: Any,
                  progress: Any = None) -> tuple:
    """``(model, relation, linkage[, data set id])`` of both sources → (summary, B_k figure,
    tanglegram, pairs table). Bad input → a one-line message in place of the results."""
    try:
        return run_comparison(services, a, b, permutations, progress)
    except ClassmapError as error:
        return failed_outputs(str(error))


def failed_outputs(message: str) -> tuple:
    """The results' places when there are none: ``message`` in the summary and the figure."""
    text = html.Span(message, className="cm-summary-error")
    return text, message_figure(message, height=300), message_figure("—"), []


def run_comparison(services: Services, a: tuple, b: tuple, permutations: Any,
                   progress: Any = None) -> tuple:
    """:func:`compare_logic`'s results; a bad choice raises ClassmapError. ``progress``:
    an :mod:`classmap.analysis.progress` reporter (the background job's), or None."""
    from classmap.analysis.pipelines.compare import compare_sources
    from classmap.analysis.progress import NullProgress

    progress = progress or NullProgress()
    count = check_sources(services, a, b, permutations)
    sources = []
    for side, source in zip("AB", (a, b)):
        with progress.step(f"source {side}: {source[0]}, {source[1]}", total=1) as advance:
            sources.append(page_source(services, *source[:3], _data(source)))
            advance(1)
    with progress.step(f"the measures ({count} Mantel permutations)", total=1) as advance:
        compared = compare_sources(sources[0], sources[1], permutations=count,
                                   cache=services.cache, key=cache_key(services, a, b, count))
        advance(1)
    return comparison_outputs(services, a, count, compared)


def cache_key(services: Services, a: tuple, b: tuple, count: int) -> str | None:
    """The result cache's key of the comparison of two checked sources, or None for an
    image source (its relation comes from a data set's image analysis; not cached)."""
    from classmap.analysis.pipelines.compare import (
        IMAGE_RELATIONS,
        comparison_key,
        head_source_fingerprint,
        source_label,
    )

    if a[1] in IMAGE_RELATIONS or b[1] in IMAGE_RELATIONS:
        return None
    return comparison_key(
        tuple(head_source_fingerprint(services.head(s[0]), s[1], s[2]) for s in (a, b)),
        tuple(source_label(s[0], s[1], s[2]) for s in (a, b)), count)


def cached_outputs(services: Services, a: tuple, b: tuple, count: int) -> tuple | None:
    """:func:`compare_logic`'s results when this comparison is in the result cache (no
    source is built, nothing computed), else None."""
    from classmap.analysis.pipelines.compare import cached_comparison

    key = cache_key(services, a, b, count)
    found = cached_comparison(services.cache, key) if key is not None else None
    return None if found is None else comparison_outputs(services, a, count, found)


def comparison_outputs(services: Services, a: tuple, count: int, compared: Any) -> tuple:
    """(summary, B_k figure, tanglegram, tables) of a SourceComparison whose source A is
    ``a``."""
    result = compared.result
    names = [short_name(n) for n in compared.class_names]
    position = {c: i for i, c in enumerate(services.head(a[0]).classes.ids)}
    model_index = [position[c] for c in compared.class_ids]
    summary = [
        stat("Spearman ρ (all pairs)", f"{result.spearman:.3f}", value_first=True),
        stat(f"Mantel r (p, {count} permutations)",
             f"{result.mantel_statistic:.3f} (p = {result.mantel_p_value:.3g})",
             value_first=True),
        stat("cophenetic correlation", f"{result.cophenetic_pearson:.3f}", value_first=True),
        stat("mean B_k", f"{result.fowlkes_mallows.mean():.3f}", value_first=True),
        stat("tanglegram crossings", f"{result.crossings:,} (from {result.crossings_before:,})",
             value_first=True),
        html.Span(f"Compared over {compared.coverage}.", className="cm-compare-coverage"),
    ]
    highlight = sorted({int(c) for pair in result.pairs[:10] for c in pair})
    tangle = figures.tanglegram_figure(
        compared.linkage_a, result.order_a, compared.linkage_b, result.order_b,
        names, result.a, result.b, highlight)
    bk = figures.bk_figure(result.cut_levels, result.fowlkes_mallows,
                           result.expected_fowlkes_mallows)
    return summary, bk, tangle, html.Div([
        pairs_table(a[0], compared.class_ids, names, result, model_index),
        html.H3("Classes placed most differently", className="cm-selection-title"),
        classes_table(a[0], compared.class_ids, names, result),
    ])


def _data(source: tuple) -> str | None:
    return source[3] if len(source) > 3 else None


def page_source(services: Services, model: str, relation: str, linkage: str,
                data: str | None) -> Any:
    """One checked source as a SourceRelation: the head's weights or WordNet, or — for an
    image relation — the data set's image analysis when it is already cached (the page
    starts no image job; the Samples page does)."""
    from classmap.analysis.pipelines.compare import (
        IMAGE_RELATIONS,
        check_source,
        relation_from_head,
        relation_from_images,
        source_label,
    )
    from classmap.app.shell.images import image_services_for

    image = relation in IMAGE_RELATIONS
    check_source(relation, linkage, data if image else None)
    label = source_label(model, relation, linkage, data if image else None)
    if not image:
        return relation_from_head(services.head(model), relation, linkage, services.cache,
                                  services.settings.device, label)
    images = image_services_for(services)
    if not images.ready(model, data):
        raise ClassmapError(f"the images of {data} have not been analysed with {model} yet; "
                            "run the Samples page (or classmap export --data) first")
    found = images.result(model, data)
    return relation_from_images(found.representations, found.analysis,
                                tuple(services.head(model).classes.ids), relation, linkage,
                                label)


def check_sources(services: Services, a: Any, b: Any, permutations: Any) -> int:
    """The permutation count, once both sources name a configured model, a relation, a
    linkage and (optionally) a configured data set; else a ClassmapError that does not
    repeat the values (they come from the browser)."""
    from classmap.analysis.methods.hierarchy import LINKAGES
    from classmap.analysis.pipelines.compare import IMAGE_RELATIONS, RELATIONS, check_source
    from classmap.app.shell.images import image_services_for

    models = services.settings.model_ids
    for source in (a, b):
        if not (isinstance(source, tuple) and len(source) in (3, 4)
                and all(isinstance(part, str) for part in source)
                and source[0] in models and source[1] in RELATIONS and source[2] in LINKAGES):
            raise ClassmapError("pick a configured model, a relation and a linkage for both "
                                "sources")
        if len(source) == 4 and source[3] not in image_services_for(services).data_ids:
            raise ClassmapError("pick a configured data set for both sources")
    for source in (a, b):  # the choices' own rules (no ward on WordNet …), before any job
        check_source(source[1], source[2],
                     _data(source) if source[1] in IMAGE_RELATIONS else None)
    if isinstance(permutations, str) and permutations.strip().isdigit():
        permutations = int(permutations)
    if isinstance(permutations, bool) or not isinstance(permutations, int) \
            or not 0 <= permutations <= MAX_PERMUTATIONS:
        raise ClassmapError(f"Mantel permutations must be a whole number from 0 to "
                            f"{MAX_PERMUTATIONS}; 999 gives p down to 0.001")
    return permutations


def classes_page_href(query: str) -> str:
    """The Classes page with ``query``, under the app's URL prefix (``/`` when no Dash app
    is set up in this process, as in plain-function tests)."""
    import dash

    try:
        root = dash.get_relative_path("/")
    except AttributeError:  # no app: Dash's config has no prefix yet
        root = "/"
    return f"{root}?{query}"


def pairs_table(model: str, class_ids: tuple[str, ...], names: list[str], result: Any,
                model_index: list[int] | None = None) -> Any:
    """The most disagreeing pairs; each row links to the Classes page with both selected
    (``model_index``: each compared class's index in ``model``, when the comparison covers
    only some of its classes)."""
    index = model_index if model_index is not None else list(range(len(class_ids)))
    rows = [html.Tr([html.Th("pair"), html.Th("rank in A"), html.Th("rank in B")])]
    for (i, j), (ra, rb) in zip(result.pairs, result.pair_ranks):
        query = urlencode({"model": model, "focal": class_ids[i],
                           "classes": f"{index[i]},{index[j]}"})
        rows.append(html.Tr([
            html.Td(dcc.Link(f"{names[i]} — {names[j]}", href=classes_page_href(query),
                             className="cm-compare-pair")),
            html.Td(f"{ra:.3f}"), html.Td(f"{rb:.3f}"),
        ]))
    return html.Table(rows, className="cm-table cm-compare-pairs")


def classes_table(model: str, class_ids: tuple[str, ...], names: list[str],
                  result: Any) -> Any:
    """The classes whose 10 nearest classes overlap least between the sources; each links
    to the Classes page with that class as the focal class."""
    overlap = result.neighbour_overlap
    rows = [html.Tr([html.Th("class"), html.Th("nearest-10 overlap")])]
    for c in np.argsort(overlap, kind="stable")[:PLACED_DIFFERENTLY]:
        query = urlencode({"model": model, "focal": class_ids[c]})
        rows.append(html.Tr([
            html.Td(dcc.Link(names[c], href=classes_page_href(query), className="cm-compare-class")),
            html.Td(f"{overlap[c]:.2f}"),
        ]))
    return html.Table(rows, className="cm-table cm-compare-classes")


# -- the background job -------------------------------------------------------------------------


def compare_key(a: Any, b: Any, permutations: Any) -> list[str]:
    """The job status key of one comparison: ``["compare", JSON of (a, b, permutations)]``."""
    return ["compare", json.dumps([list(a), list(b), permutations])]


def compare_job(key: list) -> dict[str, Any]:
    """The job's request for a status ``key`` (a fresh id each time; Retry uses it)."""
    a, b, permutations = json.loads(key[1])
    return job_request(str(a[0]), a=a, b=b, permutations=permutations)


def request_compare_logic(services: Services, a: tuple, b: tuple, permutations: Any) -> tuple:
    """The Compare button → (summary, B_k figure, tanglegram, tables, status, job request):
    a comparison in the result cache is answered at once (for viewers too: nothing is
    computed); another checked choice starts the background job (operators only; the
    server refuses the job to viewers anyway) and leaves the results as they are until it
    ends; a bad choice says why in one line."""
    unchanged = (no_update,) * 3
    try:
        count = check_sources(services, a, b, permutations)
        cached = cached_outputs(services, a, b, count)
    except ClassmapError as error:
        return failed_outputs(str(error))[0], *unchanged, no_update, no_update
    key = compare_key(a, b, count)
    if cached is not None:
        return (*cached, job_status(key, READY), no_update)
    if not current_identity().is_operator:
        message = "comparing starts a computation, which needs the operator role; ask an operator"
        return failed_outputs(message)[0], *unchanged, job_status(key, ERROR, message), no_update
    job = compare_job(key)
    return (html.Span("Comparing… (progress beside the button)", className="cm-compare-coverage"),
            *unchanged, job_status(key, PENDING, job=job), job)


def compare_job_logic(services: Services, report: Callable[[Any], None],
                      job: dict | None) -> tuple:
    """Background job: both sources and every measure → (the four results, the status)."""
    if not isinstance(job, dict) or not isinstance(job.get("a"), list) \
            or not isinstance(job.get("b"), list):
        raise PreventUpdate
    a, b, permutations = tuple(job["a"]), tuple(job["b"]), job.get("permutations")
    key = compare_key(a, b, permutations)
    try:
        outputs = run_comparison(services, a, b, permutations,
                                 progress_reporter(report, "Comparing"))
    except ClassmapError as error:
        log.warning("comparison failed: %s", error)
        return (*failed_outputs(str(error)), job_status(key, ERROR, str(error)))
    return (*outputs, job_status(key, READY))


def register(app: Any, services: Services) -> None:
    """The Compare button's request, the comparison's background job, Cancel and the
    watchdog (failure with a Retry)."""
    controls = [State(ids.source_control(side, part), "value")
                for side in ("a", "b") for part in ("model", "relation", "linkage", "data")]
    results = [Output(ids.COMPARE_SUMMARY, "children", allow_duplicate=True),
               Output(ids.COMPARE_BK, "figure", allow_duplicate=True),
               Output(ids.COMPARE_TANGLEGRAM, "figure", allow_duplicate=True),
               Output(ids.COMPARE_PAIRS, "children", allow_duplicate=True)]

    @app.callback(
        Output(ids.COMPARE_SUMMARY, "children"), *results[1:],
        Output(ids.COMPARE_STATUS, "data"), Output(ids.COMPARE_JOB, "data"),
        Input(ids.COMPARE_RUN, "n_clicks"), *controls, State(ids.COMPARE_PERMUTATIONS, "value"),
        prevent_initial_call=True,
    )
    def run(_clicks, model_a, relation_a, linkage_a, data_a, model_b, relation_b, linkage_b,
            data_b, permutations):
        return request_compare_logic(services, (model_a, relation_a, linkage_a, data_a),
                                     (model_b, relation_b, linkage_b, data_b), permutations)

    @app.callback(
        *results, Output(ids.COMPARE_STATUS, "data", allow_duplicate=True),
        Input(ids.COMPARE_JOB, "data"),
        background=True,
        progress=[Output(ids.COMPARE_PROGRESS, "value"), Output(ids.COMPARE_LABEL, "children")],
        running=[(Output(ids.COMPARE_PANEL, "hidden"), False, True),
                 (Output(ids.COMPARE_CANCEL, "disabled"), False, True),
                 (Output(ids.COMPARE_RUN, "disabled"), True, False)],
        cancel=[Input(ids.COMPARE_CANCEL, "n_clicks")],
        interval=300,
        prevent_initial_call=True,
    )
    def compare(set_progress, job):
        return compare_job_logic(services.for_background_job(), set_progress, job)

    @app.callback(
        Output(ids.COMPARE_STATUS, "data", allow_duplicate=True),
        Output(ids.COMPARE_SUMMARY, "children", allow_duplicate=True),
        Input(ids.COMPARE_CANCEL, "n_clicks"), State(ids.COMPARE_STATUS, "data"),
        prevent_initial_call=True,
    )
    def cancel(n_clicks, status):
        message = "The comparison was cancelled; press Compare to start it again."
        return (cancelled_status(n_clicks, status, message),
                html.Span(message, className="cm-summary-error"))

    # A job that died, hung, overran or could not write: its error and a Retry, in seconds.
    watch_jobs(app, ids.COMPARE_STATUS, ids.COMPARE_JOB, ids.COMPARE_LABEL, ids.COMPARE_WATCHDOG,
               ids.COMPARE_FAILURE, ids.COMPARE_FAILURE_TEXT, ids.COMPARE_RETRY, compare_job)
