"""Callbacks of the Weight distributions page (``/weights``).

The page listens to a projection of the shared selection (model, metric, linkage,
focal class and its own ``split``/``minsize``/``snode`` keys) and to the analysis
status; it draws once the shell's analysis job says the model is ready. Clicking a
scatter point sets the focal class for every page; clicking an icicle node sets
``snode`` (its sign path, stable across the chains/full modes).

The channel CAM runs in a background job (``app/shell/jobs.py``'s protocol, issue 15):
:func:`cam_request_logic` (a request thread, cheap checks only) starts it;
:func:`cam_job_logic` (the job's process) reads the image folder when no job has read it
yet — the scan step of ``ImageServices.prepare``, stored for the server — and computes
the Smooth Grad-CAM++ (:func:`channel_cam_logic`). The card shows the job's progress,
Cancel, and a failed job's reason with Retry.

The ``*_logic`` functions take plain values and return plain values, so tests call
them without a browser.
"""

from __future__ import annotations

import logging
import math
from typing import Any, Callable

import numpy as np

from dash import ALL, Input, Output, Patch, State, ctx, html, no_update, set_props
from dash.exceptions import PreventUpdate

from classmap.analysis.methods.channel_split import DEFAULT_MIN_SIZE, DEFAULT_MODE, SPLIT_MODES
from classmap.analysis.errors import ClassmapError
from classmap.app.pages.weights import figures as wfig
from classmap.app.shell import ids as shell_ids
from classmap.app.pages.weights import ids
from classmap.app.shell.analysis import FOCAL_ALL_OPTIONS, focal_option, ready_view
from classmap.app.shell.clientside import (bind_field, clientside, mirror_shared_state,
                                          name_downloads, project_selection,
                                          relay_selection_requests, select_on)
from classmap.app.shell.figures import message_figure
from classmap.app.shell.services import ModelView, Services
from classmap.app.shell.images import ImageServices, image_services_for
from classmap.app.pages.weights.services import (
    MAX_MIN_SIZE,
    ald_analysis,
    cam_data_sets,
    cam_image_choices,
    cam_unavailable,
    channel_cam_view,
    class_distribution,
    class_split,
    icicle_columns,
    node_of_label,
    prepared_dataset,
    problem_classes,
)
from classmap.app.shell.jobs import (CANCELLED, ERROR, PENDING, READY, as_status,
                                     cancelled_status, is_for, job_request, job_status,
                                     watch_jobs)
from classmap.app.shell.selection import Selection, update_selection
from classmap.app.shell.widgets import busy_running, explained, stat

log = logging.getLogger(__name__)

KEY_FIELDS = ("model", "metric", "linkage", "focal", "split", "minsize", "snode")
# What each view reads (issue 14: a change that a view does not show costs it no request
# and no redraw): the distributions and the problem list the model's analysis only; the
# scatter and the focal card the focal class too (a focal change patches the scatter's mark).
MODEL_FIELDS = ("model", "metric", "linkage")
FOCAL_FIELDS = ("model", "metric", "linkage", "focal")
TREE_FIELDS = ("model", "metric", "linkage", "focal", "split", "minsize")  # what the icicle shows
PROBLEM_LIST_LIMIT = 50
CHANNEL_LIST_LIMIT = 2000


def split_params(sel: Selection) -> tuple[str, int]:
    """(mode, min size) of a selection; malformed values fall back to the defaults."""
    mode = sel.extra.get("split") or DEFAULT_MODE
    mode = mode if isinstance(mode, str) and mode in SPLIT_MODES else DEFAULT_MODE
    size = sel.extra.get("minsize")
    valid = isinstance(size, (int, float)) and not isinstance(size, bool) and \
        math.isfinite(size) and size == int(size) and 2 <= size <= MAX_MIN_SIZE
    return mode, int(size) if valid else DEFAULT_MIN_SIZE


def _focal(view: ModelView, sel: Selection) -> int | None:
    return view.find_class(sel.focal) if sel.focal else None


# -- logic -----------------------------------------------------------------------------------


def summary_logic(services: Services, status: dict | None, selection: dict | None) -> Any:
    """The strip under the header: pooled fit and how many classes carry a status."""
    sel, view, message = ready_view(services, selection, status)
    if view is None:
        css = "cm-summary-error" if (status or {}).get("state") == "error" else "cm-muted"
        return html.Span(message, className=css)
    analysis = ald_analysis(services, sel.model)
    pooled = analysis.pooled.to_json()
    problems = problem_classes(analysis)

    return [
        html.Div([html.Span(view.entry.label, className="cm-summary-model"),
                  html.Span("weight distributions of the classifier head",
                            className="cm-summary-source")], className="cm-summary-title"),
        html.Div([
            stat("classes", f"{view.num_classes:,}"),
            stat("weights per class", f"{view.head.feature_dim:,}"),
            stat("pooled R² (+ / −)", f"{wfig.format_number(pooled['r2_pos'])} / "
                                       f"{wfig.format_number(pooled['r2_neg'])}"),
            stat("zero weights", f"{pooled['n_zero']:,}"),
            stat("classes with a status", f"{problems.size:,}"),
            stat("fits", "from the cache" if analysis.from_cache else
                 f"computed in {sum(analysis.seconds.values()):.2f} s"),
        ], className="cm-stats cm-summary-stats"),
    ]


def overview_logic(services: Services, selection: dict | None, status: dict | None,
                   axes: str | None) -> tuple:
    """→ (distributions figure, scatter figure, problem-class list); the page draws them in
    two callbacks (:func:`distributions_logic`, :func:`scatter_update_logic`)."""
    overview, listing = distributions_logic(services, selection, status)
    return overview, scatter_update_logic(services, selection, status, axes, set()), listing


def distributions_logic(services: Services, selection: dict | None,
                        status: dict | None) -> tuple:
    """→ (distributions figure, problem-class list): they depend on the model's analysis
    only (``MODEL_FIELDS``)."""
    sel, view, message = ready_view(services, selection, status)
    if view is None:
        return message_figure(message, height=300), []
    analysis = ald_analysis(services, sel.model)
    overview = wfig.overview_figure(analysis.table.columns(), analysis.pooled.to_json())
    return overview, _problem_listing(view, analysis)


def _problem_listing(view: ModelView, analysis: Any) -> Any:
    problems = problem_classes(analysis)
    if problems.size == 0:
        return "Every class has both fits (status ok)."
    status_col = analysis.table.columns()["status"]
    return [
        html.Div(f"{problems.size} classes have a status (their undefined numbers are "
                 "left out of the plots):"),
        html.Ul([html.Li([html.B(view.short_names[i]), f" ({view.ids[i]}): ",
                          str(status_col[i])])
                 for i in problems[:PROBLEM_LIST_LIMIT]], className="cm-problem-list"),
    ]


def scatter_update_logic(services: Services, key: dict | None, status: dict | None,
                         axes: str | None, triggered: set[str], drawn: bool = True) -> Any:
    """→ the class scatter, or only its focal mark when nothing but the focal class changed.

    ``key``: the selection's ``FOCAL_FIELDS``. A new focal class (a scatter click, the
    class picker, another page) gets an overlay of the mark, ``{"layout": {"shapes":
    [ring]}}``, which the browser draws with ``Plotly.relayout`` (``applyOverlay``, a few
    ms) instead of the figure with every class's point; the axes, the status or the model
    redraw it in full. (A ``Patch`` of the figure made dcc.Graph recalculate and redraw
    every point, ≈ 50 ms.) ``drawn``: the graph holds the full figure of this model and
    axes (a full draw whose response Dash dropped for a newer request — a focal class a
    cold link's settle dropped just as the analysis became ready — did not: the mark
    would go to the "computing" message figure).
    """
    key, status = (value if isinstance(value, dict) else None for value in (key, status))
    axes = axes if isinstance(axes, str) and axes in wfig.SCATTER_AXES else "kappa-ks"
    sel, view, message = ready_view(services, key, status)
    if view is None:
        return _sized_by_graph(message_figure(message, height=380))
    columns = ald_analysis(services, sel.model).table.columns()
    if triggered == {ids.WEIGHTS_FOCAL_KEY} and drawn:
        mark = wfig.scatter_focal_mark(columns, axes, view.short_names, _focal(view, sel))
        return {"layout": {"shapes": mark["shapes"]}}
    return _sized_by_graph(wfig.classes_scatter_figure(columns, axes, view.ids,
                                                       view.short_names, _focal(view, sel)))


def _sized_by_graph(figure: Any) -> Any:
    """``figure`` without a layout height: the graph's own height (its style) sizes it.
    plotly.js drops a layout height at its first resize, so a figure that kept one would
    differ from what the graph holds, and the next patch would redraw it in full."""
    figure.layout.height, figure.layout.autosize = None, True
    return figure


def fit_table(fit: dict[str, Any]) -> html.Table:
    """The focal class's numbers; undefined values read "—" and the statuses say why."""
    rows = [
        ("MLE κ", fit["kappa_mle"]), ("MLE location", fit["loc_mle"]),
        ("MLE scale", fit["scale_mle"]), ("MLE log-likelihood", fit["loglik_mle"]),
        ("KS statistic", fit["ks_mle"]),
        ("regression R² (+ / −)", (fit["r2_pos"], fit["r2_neg"])),
        ("regression slope a (+ / −)", (fit["slope_pos"], fit["slope_neg"])),
        ("regression intercept b (+ / −)", (fit["intercept_pos"], fit["intercept_neg"])),
        ("regression κ (+ / −)", (fit["kappa_seed_pos"], fit["kappa_seed_neg"])),
        ("weights + / − / 0", (fit["n_pos"], fit["n_neg"], fit["n_zero"])),
    ]
    body = []
    for label, value in rows:
        text = (" / ".join(wfig.format_number(v) for v in value) if isinstance(value, tuple)
                else wfig.format_number(value))
        body.append(html.Tr([html.Th(explained(label)), html.Td(text, className="cm-num")]))
    status = fit["status"]
    body.append(html.Tr([html.Th(explained("status")), html.Td(
        status, className="cm-status-ok" if status == "ok" else "cm-status-problem")]))
    for side in ("pos", "neg"):
        seed_status = fit[f"seed_status_{side}"]
        if seed_status != "ok":
            body.append(html.Tr([html.Th(explained(f"regression κ ({'+' if side == 'pos' else '−'})")),
                                 html.Td(seed_status, className="cm-status-problem")]))
    return html.Table(html.Tbody(body), className="cm-table cm-fit-table")


def focal_logic(services: Services, selection: dict | None, status: dict | None) -> tuple:
    """→ (title, histogram figure, fit table) of the focal class."""
    sel, view, message = ready_view(services, selection, status)
    if view is None:
        return "No focal class", message_figure(message, height=360), []
    focal = _focal(view, sel)
    if focal is None:
        return ("No focal class",
                message_figure("Pick a focal class above,<br>or click a class in the scatter",
                               height=360), [])
    dist = class_distribution(services, view, focal)
    figure = wfig.weight_histogram_figure(
        view.short_names[focal], dist.histogram.edges, dist.histogram.counts,
        dist.histogram.density, dist.x, dist.mle_density, dist.seed_density)
    title = f"{view.names[focal]} — {view.ids[focal]} · #{focal}"
    return title, figure, fit_table(dist.fit)


def _focal_split(services: Services, selection: dict | None, status: dict | None):
    """(selection, view, focal, tree, mode, min size) or (…, message) when not drawable."""
    sel, view, message = ready_view(services, selection, status)
    if view is None:
        return None, message
    focal = _focal(view, sel)
    if focal is None:
        return None, "Pick a focal class"
    mode, min_size = split_params(sel)
    return (sel, view, focal, class_split(view, focal, mode, min_size), mode, min_size), ""


def icicle_logic(services: Services, selection: dict | None, status: dict | None,
                 snode: str | None) -> Any:
    """→ the icicle of the focal class's split with node ``snode`` (a sign path) outlined."""
    found, message = _focal_split(services, selection, status)
    if found is None:
        return message_figure(message, height=380)
    _, view, focal, tree, _, _ = found
    return wfig.split_icicle_figure(icicle_columns(tree, view.short_names[focal]),
                                    node_of_label(tree, snode))


def icicle_outline_logic(services: Services, selection: dict | None,
                         status: dict | None) -> Patch:
    """→ a ``Patch`` of the icicle's ``layout.shapes``: the outline of ``snode``."""
    found, _ = _focal_split(services, selection, status)
    if found is None:
        raise PreventUpdate
    sel, view, focal, tree, _, _ = found
    patch = Patch()
    patch["layout"]["shapes"] = wfig.split_icicle_outline(
        icicle_columns(tree, view.short_names[focal]), node_of_label(tree, sel.extra.get("snode")))
    return patch


def icicle_update_logic(services: Services, tree_key: dict | None, key: dict | None,
                        status: dict | None, triggered: set[str]) -> Any:
    """→ the icicle figure, or only its outline when nothing but ``snode`` changed.

    The tree is redrawn in full when what it shows changes (model, focal, split, min
    size: ``tree_key``) or the status does; a node click changes only ``key``'s
    ``snode`` and gets a ``Patch`` of ``layout.shapes`` (a few hundred bytes instead of
    the whole figure, up to 2·D − 1 bars). The full redraw outlines ``key``'s ``snode``
    only when ``key`` describes the same tree (it may lag ``tree_key`` by one update; the
    outline patch that follows it then sets the outline).
    """
    # A store value that is not a dict never comes from the page (a forged request).
    tree_key, key, status = (value if isinstance(value, dict) else None
                             for value in (tree_key, key, status))
    if triggered == {ids.WEIGHTS_KEY}:
        return icicle_outline_logic(services, key, status)
    key = key or {}
    same = all(key.get(field) == (tree_key or {}).get(field) for field in TREE_FIELDS)
    return icicle_logic(services, tree_key, status, key.get("snode") if same else None)


def node_logic(services: Services, selection: dict | None, status: dict | None) -> tuple:
    """→ (title, channel list items as text: ``"channel 12  +0.0123"``, largest weight
    first) of the selected split node (``snode``); the browser draws the list."""
    found, message = _focal_split(services, selection, status)
    if found is None:
        return ("" if message == "Pick a focal class" else message), []
    sel, view, focal, tree, mode, min_size = found
    node = node_of_label(tree, sel.extra.get("snode"))
    if node is None:
        return (f"{tree.num_nodes} nodes ({mode}, min size {min_size}); click a node "
                "to list its channels"), []
    channels = tree.channels[node]
    weights = view.head.weight[focal]
    kind = {tree.terminal_positive: " — most discriminative channels",
            tree.terminal_negative: " — most confusing channels"}.get(node, "")
    if tree.terminal_positive == tree.terminal_negative == node:
        kind = " — the root cannot split"
    title = (f"Node {tree.label[node]}: {channels.size} channels, mean weight "
             f"{wfig.format_number(float(tree.mean[node]))}{kind}")
    order = channels[(-weights[channels]).argsort(kind="stable")][:CHANNEL_LIST_LIMIT]
    items = [f"channel {int(c)}  {float(weights[c]):+.4f}" for c in order]
    return title, items


def icicle_click_logic(click: dict | None, selection: dict | None) -> dict:
    """Click on an icicle node → its sign path becomes ``snode``."""
    points = (click or {}).get("points") or []
    path = points[0].get("customdata") if points else None
    if not path or not selection:
        raise PreventUpdate
    if isinstance(path, list):
        path = path[0]
    if selection.get("snode") == path:
        raise PreventUpdate
    return update_selection(selection, snode=str(path))


def focal_options_logic(services: Services, selection: dict | None, status: dict | None,
                        search: str | None, value: str | None, triggered: Any) -> Any:
    """Options of the page's class picker (every class up to FOCAL_ALL_OPTIONS); no_update
    while the analysis is not ready."""
    _, view, _ = ready_view(services, selection, status)
    if view is None:
        # Keep the picker's (provisional) options: without an option for its value Dash's
        # dropdown clears it, and a shared link's focal class with it (the class is
        # checked against the model once the analysis is ready: settle_selection).
        return no_update
    if view.num_classes <= FOCAL_ALL_OPTIONS:
        if triggered == ids.weights_control("focal"):
            raise PreventUpdate
        return [focal_option(view, index) for index in range(view.num_classes)]
    current = view.find_class(value) if value else None
    options = [focal_option(view, current)] if current is not None else []
    if search:
        options += [focal_option(view, i) for i in view.search_classes(search, limit=40)
                    if i != current]
    return options


def cam_data_logic(images: ImageServices, value: str | None) -> tuple[list[dict], str | None]:
    """→ (options, value) of the channel CAM's data-set picker (configured folders by id)."""
    entries = cam_data_sets(images)
    options = [{"label": entry.label, "value": entry.id} for entry in entries]
    known = [entry.id for entry in entries]
    return options, (value if value in known else (known[0] if known else None))


def cam_images_logic(services: Services, images: ImageServices, selection: dict | None,
                     status: dict | None, data_id: str | None,
                     value: int | None) -> tuple[list[dict], int | None]:
    """→ (options, value) of the image picker: the focal class's images in the data set
    (or its first images when the class has none); the current image is kept if offered."""
    sel, view, _ = ready_view(services, selection, status)
    if view is None or not data_id or cam_unavailable(images, sel.model) is not None:
        return [], None
    try:
        choices = cam_image_choices(images, sel.model, data_id, _focal(view, sel))
    except ClassmapError as error:  # shown by channel_cam_logic, which meets it too
        log.warning("channel CAM images of %s: %s", data_id, error)
        return [], None
    options = [{"label": label, "value": index} for index, label in choices]
    offered = [index for index, _ in choices]
    return options, (value if value in offered else (offered[0] if offered else None))


def channel_cam_logic(services: Services, images: ImageServices, selection: dict | None,
                      status: dict | None, data_id: str | None,
                      image_index: int | None) -> tuple[str, Any]:
    """→ (title, picture and overlay) of the focal class's Smooth Grad-CAM++ restricted to
    the selected split node's channels (every channel when no node is selected), or
    (one-line message, []) when it cannot be drawn."""
    sel, view, message = ready_view(services, selection, status)
    if view is None:
        return message, []
    why = cam_unavailable(images, sel.model)
    if why is not None:
        return why, []
    focal = _focal(view, sel)
    if focal is None:
        return "Pick a focal class to see where its channels respond in an image", []
    if not data_id:
        return "Pick a data set", []
    mode, min_size = split_params(sel)
    tree = class_split(view, focal, mode, min_size)
    node = node_of_label(tree, sel.extra.get("snode"))
    channels = tree.channels[node] if node is not None else \
        np.arange(view.head.feature_dim, dtype=np.int64)
    try:
        if image_index is None:  # opening the set says why it offers no image, if it fails
            prepared_dataset(images, sel.model, data_id)
            return "Pick an image", []
        found = channel_cam_view(images, sel.model, data_id, int(image_index), focal, channels)
    except ClassmapError as error:
        log.warning("channel CAM of %s: %s", data_id, error)
        return str(error), []
    where = (f"node {tree.label[node]} ({channels.size} channels)" if node is not None
             else f"all {channels.size} channels (no node selected)")
    title = (f"Smooth Grad-CAM++ of {view.short_names[focal]} on {found.sample_id} "
             f"({found.true_class}), restricted to {where}")
    alt = f"{found.sample_id}"

    def picture(src: str, caption: str) -> html.Figure:
        return html.Figure([html.Img(src=src, alt=f"{alt} — {caption}",
                                     style={"maxWidth": "100%"}),
                            html.Figcaption(caption, className="cm-muted")],
                           style={"margin": 0})

    return title, html.Div([picture(found.image_uri, "image"),
                            picture(found.cam_uri, f"CAM of {where}")],
                           style={"display": "flex", "gap": "1em", "flexWrap": "wrap"})


# -- the channel CAM's background job ----------------------------------------------------------

CAM_SELECTION_FIELDS = ("model", "metric", "linkage", "focal", "split", "minsize", "snode")


def cam_key(sel: Selection, data_id: str, image_index: int | None) -> list[str]:
    """What one CAM job computes, as strings (the job status's ``key``):
    ``[model, metric, linkage, focal, split, minsize, snode, data, image]`` ("" for none)."""
    mode, min_size = split_params(sel)
    return [sel.model, sel.metric, sel.linkage, str(sel.focal or ""), mode, str(min_size),
            str(sel.extra.get("snode") or ""), str(data_id),
            "" if image_index is None else str(int(image_index))]


def cam_job(key: list) -> dict[str, Any]:
    """The job's request for a :func:`cam_key` (a fresh id each time; Retry uses it)."""
    selection = dict(zip(CAM_SELECTION_FIELDS, key[:7]))
    selection["focal"] = selection["focal"] or None
    selection["snode"] = selection["snode"] or None
    selection["minsize"] = int(selection["minsize"]) if str(selection["minsize"]).isdigit() \
        else None
    return job_request(str(key[0]), selection=selection, data=str(key[7]),
                       image=int(key[8]) if str(key[8]).isdigit() else None)


def _valid_image(value: Any) -> int | None:
    """An image picker's value as an index (None when it is not a small non-negative int)."""
    if isinstance(value, bool) or not isinstance(value, int) or not 0 <= value < 10**8:
        return None
    return value


def cam_request_logic(services: Services, images: ImageServices, selection: dict | None,
                      status: dict | None, data_id: Any, image_index: Any,
                      cam_status: dict | None) -> tuple:
    """→ (CAM status, job request, title, view): a one-line message and no job when the
    CAM cannot be drawn; else a pending status and a job that reads the folder (when no
    job has read it yet) or computes the CAM. Never reads a folder or runs the network."""
    sel, view, message = ready_view(services, selection, status)
    if view is None:
        return None, no_update, message, []
    why = cam_unavailable(images, sel.model)
    if why is not None:
        return None, no_update, why, []
    if _focal(view, sel) is None:
        return None, no_update, "Pick a focal class to see where its channels respond in an image", []
    if not isinstance(data_id, str) or not data_id:
        return None, no_update, "Pick a data set", []
    try:
        images.data_entry(data_id)
        scanned = images.stored_dataset(sel.model, data_id) is not None
    except ClassmapError as error:
        return None, no_update, str(error), []
    image = _valid_image(image_index) if scanned else None
    if scanned and image is None:
        return None, no_update, "Pick an image", []
    key = cam_key(sel, data_id, image)
    if is_for(cam_status, key) and as_status(cam_status).get("state") in (
            PENDING, READY, ERROR, CANCELLED):
        raise PreventUpdate  # this CAM is computing, drawn, failed (Retry) or cancelled
    job = cam_job(key)
    # The job's progress label says what it does; a failure shows with Retry above.
    return job_status(key, PENDING, job=job), job, "", []


def _job_key(job: Any) -> list[str] | None:
    """The :func:`cam_key` a job request asks for, or None for anything malformed."""
    if not isinstance(job, dict) or not isinstance(job.get("selection"), dict):
        return None
    selection = job["selection"]
    data_id, image, model = job.get("data"), job.get("image"), job.get("model")
    if not isinstance(data_id, str) or (image is not None and _valid_image(image) is None):
        return None
    try:
        sel = Selection.from_store(selection, "")
        if not isinstance(model, str) or not model or sel.model != model:
            return None
        return cam_key(sel, data_id, image)
    except (ClassmapError, TypeError, ValueError):  # a forged request
        return None


def cam_job_logic(services: Services, images: ImageServices, report: Callable[[Any], None],
                  job: Any, offer: Callable[[str, dict], None] = set_props) -> tuple:
    """The background job → (CAM status, title, view).

    Works with fresh services of its own (nothing of the server's locks or memos). Reads
    the folder when no job has yet (the scan is stored for the server) and offers its
    images in the picker — ``offer(id, props)``, Dash's ``set_props``: a prop set that
    way starts the next callback afresh, whereas an Output would close a loop (picker →
    request → job → picker) that Dash's renderer prunes — whose first image then starts
    the CAM's job; with an image, computes the CAM through :func:`channel_cam_logic`."""
    key = _job_key(job)
    if key is None:
        raise PreventUpdate
    selection, data_id, image = job["selection"], job["data"], job.get("image")
    fresh = ImageServices(services.for_background_job(), images.params)
    sel = Selection.from_store(selection, key[0])
    analysis = {"key": list(sel.analysis_key), "state": READY, "message": ""}
    try:
        if fresh.stored_dataset(key[0], data_id) is None:
            report((5, f"Reading the images of data set '{data_id}'…"))
            fresh.scan_dataset(key[0], data_id)
        if image is None:
            options, value = cam_images_logic(fresh.services, fresh, selection, analysis,
                                              data_id, None)
            offer(ids.WEIGHTS_CAM_IMAGE, {"options": options, "value": value})
            return job_status(key, READY), "Pick an image", []
        report((50, "Computing the channel CAM (Smooth Grad-CAM++)…"))
        title, view = channel_cam_logic(fresh.services, fresh, selection, analysis, data_id,
                                        image)
    except ClassmapError as error:
        log.warning("channel CAM job on %s: %s", data_id, error)
        return job_status(key, ERROR, str(error)), str(error), []
    return job_status(key, READY), title, view


def cam_cancel_logic(n_clicks: int | None, cam_status: Any) -> tuple:
    """Cancel → (cancelled status, title, view)."""
    status = as_status(cam_status)
    key = (status or {}).get("key")
    if not isinstance(key, list) or not all(isinstance(part, str) for part in key):
        raise PreventUpdate  # not a status this page wrote (a forged request)
    status = cancelled_status(n_clicks, status, "the channel CAM was cancelled")
    return status, ("The channel CAM was cancelled; pick another image or node to compute "
                    "one"), []


# -- wiring -----------------------------------------------------------------------------------


def register(app: Any, services: Services) -> None:
    """Wire the Weight distributions page."""
    # Every callback's Inputs are all on this page or all in the shell: a callback whose
    # Inputs exist only in part is a console error on every other page. So the page
    # listens to its own copies of the selection (projected) and of the status.
    key_in = Input(ids.WEIGHTS_KEY, "data")
    status_in = Input(ids.WEIGHTS_STATUS, "data")
    project_selection(app, ids.WEIGHTS_KEY, KEY_FIELDS)
    # Server callbacks that change the selection write the page's request store.
    relay_selection_requests(app, ids.WEIGHTS_SELECT)
    mirror_shared_state(app, ids.WEIGHTS_SELECTION, ids.WEIGHTS_STATUS)
    name_downloads(app, {ids.WEIGHTS_OVERVIEW: (), ids.WEIGHTS_SCATTER: (),
                         ids.WEIGHTS_HISTOGRAM: ("focal",),
                         ids.WEIGHTS_ICICLE: ("focal", "split", "minsize", "snode")})

    @app.callback(Output(ids.WEIGHTS_SUMMARY, "children"), status_in,
                  State(ids.WEIGHTS_KEY, "data"))
    def weights_summary(status, selection):
        return summary_logic(services, status, selection)

    # Each view listens to the fields it shows (a node click redraws none of these).
    project_selection(app, ids.WEIGHTS_MODEL_KEY, MODEL_FIELDS)
    project_selection(app, ids.WEIGHTS_FOCAL_KEY, FOCAL_FIELDS)
    focal_in = Input(ids.WEIGHTS_FOCAL_KEY, "data")

    @app.callback(
        Output(ids.WEIGHTS_OVERVIEW, "figure"), Output(ids.WEIGHTS_PROBLEMS, "children"),
        Input(ids.WEIGHTS_MODEL_KEY, "data"), status_in,
    )
    def weights_overview(selection, status):
        return distributions_logic(services, selection, status)

    @app.callback(
        Output(ids.WEIGHTS_SCATTER, "figure"), Output(ids.WEIGHTS_SCATTER_DRAWN, "data"),
        Output(ids.WEIGHTS_SCATTER_OVERLAY, "data"),
        focal_in, status_in, Input(ids.WEIGHTS_SCATTER_AXES, "value"),
        State(ids.WEIGHTS_SCATTER_DRAWN, "data"),
    )
    def weights_scatter(selection, status, axes, drawn):
        triggered = {str(value) for value in ctx.triggered_prop_ids.values()}
        token = [status.get("key") if isinstance(status, dict) else None, axes]
        figure = scatter_update_logic(services, selection, status, axes, triggered,
                                      drawn=drawn == token)
        if isinstance(figure, dict):  # the focal mark alone
            return no_update, no_update, figure
        full = ready_view(services, selection, status)[1] is not None
        return figure, (token if full else None), no_update

    # The focal mark: a relayout of the scatter drawn (no new figure).
    clientside(app, "applyOverlay", Output(ids.WEIGHTS_SCATTER_OVERLAY, "modified_timestamp"),
               Input(ids.WEIGHTS_SCATTER_OVERLAY, "data"), State(ids.WEIGHTS_SCATTER, "figure"),
               constants={"graph": ids.WEIGHTS_SCATTER, "deferred": False},
               prevent_initial_call=True)

    @app.callback(
        Output(ids.WEIGHTS_FOCAL_TITLE, "children"), Output(ids.WEIGHTS_HISTOGRAM, "figure"),
        Output(ids.WEIGHTS_FIT_TABLE, "children"), focal_in, status_in,
    )
    def weights_focal(selection, status):
        return focal_logic(services, selection, status)

    project_selection(app, ids.WEIGHTS_TREE_KEY, TREE_FIELDS)

    @app.callback(
        Output(ids.WEIGHTS_ICICLE, "figure"), Input(ids.WEIGHTS_TREE_KEY, "data"), key_in,
        status_in,
    )
    def weights_icicle(tree_key, key, status):
        triggered = {str(value) for value in ctx.triggered_prop_ids.values()}
        return icicle_update_logic(services, tree_key, key, status, triggered)

    @app.callback(
        Output(ids.WEIGHTS_NODE_TITLE, "children"), Output(ids.WEIGHTS_NODE_ITEMS, "data"),
        key_in, status_in,
    )
    def weights_node(selection, status):
        return node_logic(services, selection, status)

    clientside(app, "renderList", Output(ids.WEIGHTS_NODE_ITEMS, "modified_timestamp"),
               Input(ids.WEIGHTS_NODE_ITEMS, "data"),
               constants={"target": ids.WEIGHTS_NODE_CHANNELS}, prevent_initial_call=True)

    # A click on a class in the scatter makes it the focal class — in the browser (its
    # customdata is the class id): no round trip before the views ask.
    select_on(app, Input(ids.WEIGHTS_SCATTER, "clickData"), "focalFromPoint",
              ids.WEIGHTS_SELECTION, curve=wfig.SCATTER_POINTS)

    @app.callback(
        Output(ids.WEIGHTS_SELECT, "data", allow_duplicate=True),
        Input(ids.WEIGHTS_ICICLE, "clickData"), State(shell_ids.SELECTION, "data"),
        prevent_initial_call=True,
    )
    def weights_icicle_click(click, selection):
        return icicle_click_logic(click, selection)

    @app.callback(
        Output(ids.weights_control("focal"), "options"),
        Input(ids.weights_control("focal"), "search_value"), status_in,
        State(ids.weights_control("focal"), "value"), State(ids.WEIGHTS_KEY, "data"),
    )
    def weights_focal_options(search, status, value, selection):
        return focal_options_logic(services, selection, status, search, value,
                                   ctx.triggered_id)

    # Shared with the image pages: networks and data sets load once per process.
    images = image_services_for(services)

    @app.callback(
        Output(ids.WEIGHTS_CAM_DATA, "options"), Output(ids.WEIGHTS_CAM_DATA, "value"),
        status_in, State(ids.WEIGHTS_CAM_DATA, "value"),
    )
    def weights_cam_data(status, value):
        return cam_data_logic(images, value)

    @app.callback(
        Output(ids.WEIGHTS_CAM_IMAGE, "options"), Output(ids.WEIGHTS_CAM_IMAGE, "value"),
        Input(ids.WEIGHTS_TREE_KEY, "data"), status_in, Input(ids.WEIGHTS_CAM_DATA, "value"),
        State(ids.WEIGHTS_CAM_IMAGE, "value"),
    )
    def weights_cam_images(selection, status, data_id, value):
        return cam_images_logic(services, images, selection, status, data_id, value)

    @app.callback(
        Output(ids.WEIGHTS_CAM_STATUS, "data"), Output(ids.WEIGHTS_CAM_JOB, "data"),
        Output(ids.WEIGHTS_CAM_TITLE, "children"), Output(ids.WEIGHTS_CAM_VIEW, "children"),
        key_in, status_in, Input(ids.WEIGHTS_CAM_DATA, "value"),
        Input(ids.WEIGHTS_CAM_IMAGE, "value"), State(ids.WEIGHTS_CAM_STATUS, "data"),
        # Busy from the click on (the job's own running= keeps it busy while it computes).
        running=busy_running(ids.WEIGHTS_CAM_BOX),
    )
    def weights_cam(selection, status, data_id, image_index, cam_status):
        return cam_request_logic(services, images, selection, status, data_id, image_index,
                                 cam_status)

    @app.callback(
        Output(ids.WEIGHTS_CAM_STATUS, "data", allow_duplicate=True),
        Output(ids.WEIGHTS_CAM_TITLE, "children", allow_duplicate=True),
        Output(ids.WEIGHTS_CAM_VIEW, "children", allow_duplicate=True),
        Input(ids.WEIGHTS_CAM_JOB, "data"),
        background=True,
        progress=[Output(ids.WEIGHTS_CAM_PROGRESS, "value"),
                  Output(ids.WEIGHTS_CAM_LABEL, "children")],
        # While it runs (seconds on a CPU) the previous node's map is hidden behind a
        # spinner, and the progress bar offers Cancel.
        running=[*busy_running(ids.WEIGHTS_CAM_BOX),
                 (Output(ids.WEIGHTS_CAM_PANEL, "hidden"), False, True),
                 (Output(ids.WEIGHTS_CAM_CANCEL, "disabled"), False, True)],
        cancel=[Input(ids.WEIGHTS_CAM_CANCEL, "n_clicks")],
        interval=300,
        prevent_initial_call=True,
    )
    def weights_cam_job(set_progress, job):
        return cam_job_logic(services, images, set_progress, job)

    @app.callback(
        Output(ids.WEIGHTS_CAM_STATUS, "data", allow_duplicate=True),
        Output(ids.WEIGHTS_CAM_TITLE, "children", allow_duplicate=True),
        Output(ids.WEIGHTS_CAM_VIEW, "children", allow_duplicate=True),
        Input(ids.WEIGHTS_CAM_CANCEL, "n_clicks"), State(ids.WEIGHTS_CAM_STATUS, "data"),
        prevent_initial_call=True,
    )
    def weights_cam_cancel(n_clicks, cam_status):
        return cam_cancel_logic(n_clicks, cam_status)

    # A job that died, hung, overran, could not write or was refused: why, with a Retry.
    watch_jobs(app, ids.WEIGHTS_CAM_STATUS, ids.WEIGHTS_CAM_JOB, ids.WEIGHTS_CAM_LABEL,
               ids.WEIGHTS_CAM_WATCHDOG, ids.WEIGHTS_CAM_FAILURE, ids.WEIGHTS_CAM_FAILURE_TEXT,
               ids.WEIGHTS_CAM_RETRY, cam_job)

    # Every control {"type": WEIGHTS_CONTROL, "field": F} with the selection's field F, in
    # one callback: a pattern matches nothing on the other pages, where a plain Input of
    # a control only this page has would be a "nonexistent object" console error. It
    # listens to the page's copy of the selection, so it does not run on the other pages
    # (on the shell's, every selection change there ran it for no control, and
    # dash-renderer followed it through the whole page first: ≈ 5 ms each).
    bind_field(app, {"type": ids.WEIGHTS_CONTROL, "field": ALL}, None, ids.WEIGHTS_SELECTION)
