"""Callbacks of the image pages (Samples, Clustering, Confidence).

Flow::

    SELECTION (model, data) ─► request_images ─► IMAGE_STATUS ready | pending + IMAGE_JOB
    IMAGE_JOB ─► prepare_images (background: progress bar, cancel) ─► IMAGE_STATUS
    SELECTION + IMAGE_STATUS(ready) ─► each page's figures and tables

Clicking an image (Samples), a heatmap cell or a t-SNE point (Confidence) sets the
shared focal class, so the class is highlighted on every page, the Classes page
included. The ``*_logic`` functions are plain functions (tested without a browser).
"""

from __future__ import annotations

import logging
import math
from typing import Any, Callable, Sequence

import numpy as np
from dash import ALL, Input, Output, Patch, State, ctx, html, no_update
from dash.exceptions import PreventUpdate

from classmap.analysis.loading.data import DIGITS
from classmap.analysis.errors import ClassmapError
from classmap.analysis.methods.representations import CLUSTERING_ALGORITHMS, REPRESENTATIONS
from classmap.app.hosting.identity import current_identity
from classmap.app.pages.images import figures as figs
from classmap.app.pages.images import ids
from classmap.app.shell.jobs import (ERROR, PENDING, READY, cancelled_status, is_for, job_request,
                                     job_status, progress_reporter, watch_jobs)
from classmap.app.pages.images.layout import digits_mismatch
from classmap.app.shell.widgets import busy_running, explained
from classmap.app.shell.clientside import (bind_field, clientside, mirror_shared_state,
                                          name_downloads, project_selection,
                                          relay_selection_requests, select_on)
from classmap.app.shell.thumbnails import register_thumbnail_route, thumbnail_url
from classmap.app.shell.services import Services
from classmap.app.shell.images import (
    REPRESENTATION_LABELS,
    ImageResult,
    ImageServices,
    class_index,
    image_services_for,
)
from classmap.app.shell.selection import coerce_selection, update_selection

log = logging.getLogger(__name__)

ALGORITHM_LABELS = {"kmeans": "k-means", "gmm": "Gaussian mixture"}
# The selection fields each projection store holds (issue 14): a view listens to the store
# of the fields it shows. Data summary, tables, JS heatmap, confusion: model and data; their
# focal frames: + focal; the selected image: + image; the grid and the t-SNE: + focal,
# image; the PCA scatters: + rep, focal, image. The scatters also listen to the fields they
# are drawn from (model, data and for PCA rep): a change of only the focal class or the
# image is then a Patch of their marks (``scatter_marks_patch``).
VIEW_FIELDS = {
    ids.IMAGE_DATA_KEY: ("model", "data"),
    ids.IMAGE_FOCAL_KEY: ("model", "data", "focal"),
    ids.IMAGE_SAMPLE_KEY: ("model", "data", "image"),
    ids.IMAGE_MARKS_KEY: ("model", "data", "focal", "image"),
    ids.IMAGE_REP_KEY: ("model", "data", "rep"),
    ids.IMAGE_VIEW_KEY: ("model", "data", "rep", "focal", "image"),
}


# -- shared -----------------------------------------------------------------------------


def image_key(services: Services, selection: dict | None) -> tuple[str, str]:
    """(model id, data set id) of a selection dict."""
    sel = coerce_selection(selection, services.settings.default_model)
    return str(sel["model"]), str(sel.get("data") or DIGITS)


def request_images_logic(images: ImageServices, selection: dict | None,
                         status: dict | None) -> tuple[dict, Any]:
    """(model, data) of the selection → (status, job request): ready, error, or a job."""
    if not selection:
        raise PreventUpdate
    key = image_key(images.services, selection)
    if is_for(status, key) and status.get("state") in (READY, PENDING, ERROR):
        raise PreventUpdate
    try:
        images.data_entry(key[1])
        if images.ready(*key):
            return job_status(key, READY), no_update
    except ClassmapError as error:
        return job_status(key, ERROR, str(error)), no_update
    if not current_identity().is_operator:  # the server refuses the job anyway (access.py)
        return job_status(key, ERROR, "this image analysis is not computed yet and starting "
                                      "it needs the operator role; ask an operator"), no_update
    job = image_job(key)
    return job_status(key, PENDING, job=job), job


def image_job(key: Sequence[str]) -> dict[str, Any]:
    """The background job's request for (model, data) (a fresh id each time)."""
    return job_request(key[0], data=key[1])


def prepare_images_logic(images: ImageServices, report: Callable[[Any], None],
                         job: dict | None) -> dict[str, Any]:
    """Background job: extract and analyse ``job``'s (model, data) so the cache holds them."""
    if not job:
        raise PreventUpdate
    key = (str(job["model"]), str(job["data"]))

    # The job runs in a forked process: locks that another server thread held at the
    # fork stay locked in the copy, so the job works with fresh services of its own.
    # It (not a request thread) reads an image folder, and stores the scan for the server.
    fresh = ImageServices(images.services.for_background_job(), images.params)
    try:
        fresh.prepare(*key, progress=progress_reporter(report, f"{key[0]} on {key[1]}"))
    except ClassmapError as error:
        log.warning("image analysis of %s on %s failed: %s", key[0], key[1], error)
        return job_status(key, ERROR, str(error))
    return job_status(key, READY)


def ready_result(images: ImageServices, selection: dict | None,
                 status: dict | None) -> tuple[ImageResult | None, str]:
    """The selection's result when its status is ready, else (None, what to say)."""
    if not selection or not status:
        return None, "Preparing the image analysis…"
    key = image_key(images.services, selection)
    if not is_for(status, key):
        return None, "Preparing the image analysis…"
    state = status.get("state")
    if state == "error":
        return None, status.get("message") or "the image analysis failed"
    if state == "cancelled":
        return None, "The image analysis was cancelled; pick the data set again to restart it."
    if state != READY:
        return None, "Extracting representations and running the analyses (progress above)…"
    return images.result(*key), ""


def message_logic(images: ImageServices, selection: dict | None, status: dict | None) -> str:
    """The status line: why nothing is drawn, or a one-line summary of the data."""
    result, why = ready_result(images, selection, status)
    if result is None:
        mismatch = digits_mismatch(images.services.settings, (selection or {}).get("model"),
                                   (selection or {}).get("data")) if selection else None
        return mismatch or why
    reps, analysis = result.representations, result.analysis
    accuracy = float((reps.preds == reps.labels).mean())
    skipped = "; ".join(f"{name}: {reason}" for name, reason in analysis.skipped)
    return (f"{result.model} on {result.data}: {reps.num_images:,} images of "
            f"{len(analysis.classes)} classes · accuracy {100 * accuracy:.1f}% · feature map "
            f"{reps.site} ({reps.features.shape[1]} channels, {reps.grid_size[0]}×"
            f"{reps.grid_size[1]})" + (f" · skipped: {skipped}" if skipped else ""))


def focal_options_logic(images: ImageServices, selection: dict | None,
                        status: dict | None) -> list[dict[str, str]]:
    """The class picker's options: the classes with images, by id."""
    result, _ = ready_result(images, selection, status)
    if result is None:
        # Keep the (provisional) options: Dash's dropdown clears a value it has no option
        # for, and the shared link's focal class with it.
        return no_update
    ids_ = images.services.head(result.model).classes.ids
    return [{"label": name, "value": ids_[int(index)]}
            for index, name in zip(result.analysis.classes, result.analysis.class_names)]


def focal_of(images: ImageServices, result: ImageResult, selection: dict) -> int | None:
    """Model class index of the selection's focal class, or None."""
    return class_index(result, images.services, selection.get("focal"))


def _hover(result: ImageResult) -> list[str]:
    reps = result.representations
    names = reps.class_names
    return [f"#{i} {reps.sample_ids[i]}<br>true {names[reps.labels[i]]} · predicted "
            f"{names[reps.preds[i]]} ({100 * reps.confidence[i]:.1f}%)"
            for i in range(reps.num_images)]


def _pca_titles(result: ImageResult, rep: str) -> tuple[str, str]:
    ratio = result.analysis.pca[rep].explained_variance_ratio
    return (f"PC 1 ({100 * ratio[0]:.1f}% of variance)",
            f"PC 2 ({100 * ratio[1]:.1f}% of variance)" if len(ratio) > 1 else "PC 2")


# -- Samples -------------------------------------------------------------------------------


def samples_figure_logic(images: ImageServices, selection: dict | None, status: dict | None):
    """The Samples scatter: PCA of the chosen representation, coloured by true class."""
    result, why = ready_result(images, selection, status)
    if result is None:
        return figs.message_figure(why, height=560)
    assert selection is not None
    rep = selection.get("rep") or "features"
    if rep not in result.analysis.pca:
        return figs.message_figure(f"No PCA of {rep} for this data set.", height=560)
    reps = result.representations
    sample = selection.get("image")
    return figs.sample_scatter(
        result.analysis.pca[rep].coordinates, reps.labels, reps.class_names,
        hover=_hover(result), focal=focal_of(images, result, selection),
        selected=int(sample) if sample is not None else None,
        axis_titles=_pca_titles(result, rep), height=560,
        uirevision=f"{result.model}|{result.data}|{rep}", webgl=images.services.settings.webgl,
        title=f"PCA of {REPRESENTATION_LABELS[rep]}",
    )


def samples_update_logic(images: ImageServices, view_key: dict | None,
                         status: dict | None, triggered: set[str]) -> Any:
    """→ the Samples scatter, or only its marks when neither the data nor the
    representation changed (``triggered`` is only ``IMAGE_VIEW_KEY``: ``IMAGE_REP_KEY``
    and the status did not change) — a ``Patch`` of the focal overlay, the selected-image
    ring and the classes' opacity (:func:`scatter_marks_patch`) instead of every image's
    point."""
    view_key, status = (value if isinstance(value, dict) else None
                        for value in (view_key, status))
    if triggered == {ids.IMAGE_VIEW_KEY}:
        result, _ = ready_result(images, view_key, status)
        rep = (view_key or {}).get("rep") or "features"
        if result is not None and rep in result.analysis.pca:
            return scatter_marks_patch(images, result, result.analysis.pca[rep].coordinates,
                                       view_key)
    return samples_figure_logic(images, view_key, status)


def ring_patch(coords: np.ndarray, sample: Any, patch: Patch | None = None) -> Patch:
    """A ``Patch`` of a sample scatter's last trace: the ring around ``sample``."""
    patch = Patch() if patch is None else patch
    ring = figs.selected_ring(coords, int(sample) if isinstance(sample, int) else None)
    for name, value in ring.items():
        patch["data"][-1][name] = value
    return patch


def scatter_marks_patch(images: ImageServices, result: ImageResult, coords: np.ndarray,
                        key: dict, focal: bool = True) -> Patch:
    """A ``Patch`` of a :func:`figs.sample_scatter` by true class (``coords`` (N, 2)) for
    ``key``'s focal class and image: the class traces' style (:func:`figs.class_styles`;
    above ``LEGEND_LIMIT`` classes the focal overlay and the one trace's opacity) and the
    selected-image ring; ``focal=False``: the ring only (a scatter with no focal class,
    e.g. by cluster)."""
    patch = ring_patch(coords, key.get("image"))
    if not focal:
        return patch
    reps = result.representations
    index = focal_of(images, result, key)
    styles = figs.class_styles(reps.labels, index)
    if styles:  # a trace per class: their style only (no trace's data changes)
        for trace, style in enumerate(styles):
            for name in ("color", "line"):
                patch["data"][trace]["marker"][name] = style["marker"][name]
            patch["data"][trace]["zorder"] = style["zorder"]
        return patch
    overlay = figs.focal_overlay(coords, reps.labels, reps.class_names, _hover(result), index)
    marker = overlay.pop("marker")
    for name, value in overlay.items():
        patch["data"][-2][name] = value
    patch["data"][-2]["marker"]["color"] = marker["color"]
    patch["data"][0]["marker"]["opacity"] = figs.class_opacity(index, many=True)
    return patch


def sample_click_logic(images: ImageServices, click: dict | None, selection: dict | None,
                       status: dict | None) -> dict:
    """A click on an image → the selection's ``image`` and its true class as focal class."""
    if not click or not selection:
        raise PreventUpdate
    result, _ = ready_result(images, selection, status)
    if result is None:
        raise PreventUpdate
    point = (click.get("points") or [{}])[0]
    custom = point.get("customdata")
    if custom is None:
        raise PreventUpdate
    index = int(custom[0] if isinstance(custom, (list, tuple)) else custom)
    label = int(result.representations.labels[index])
    focal = images.services.head(result.model).classes.ids[label]
    return update_selection(selection, image=index, focal=focal)


def sample_detail_logic(images: ImageServices, selection: dict | None,
                        status: dict | None) -> tuple[Any, Any, Any]:
    """(image src, Grad-CAM src, details) of the selection's sample."""
    result, why = ready_result(images, selection, status)
    if result is None or selection is None:
        return None, None, why
    sample = selection.get("image")
    if sample is None:
        return None, None, ("Click a point in the scatter or a thumbnail to see that image and "
                            "its Grad-CAM map.")
    view = images.sample(result, int(sample))
    s = view.summary
    names = result.representations.class_names
    verdict = "correct" if s.label == s.pred else "wrong"
    rows = [html.Tr([html.Td(names[c]), html.Td(f"{100 * p:.1f}%", className="cm-num")])
            for c, p in zip(s.top_classes, s.top_scores)]
    details = html.Div([
        html.Div([html.B(f"#{s.index} "), html.Span(s.sample_id, className="cm-mono")]),
        html.Div(["true class ", html.B(s.label_name), " · predicted ", html.B(s.pred_name),
                  f" ({verdict}) · confidence {100 * s.confidence:.1f}%"]),
        html.Table([html.Thead(html.Tr([html.Th("top classes"), html.Th("softmax")])),
                    html.Tbody(rows)], className="cm-table"),
    ])
    return view.image_uri, view.cam_uri, details


GRID_TILES = 480  # thumbnails in the grid at most (the focal class's first)
GRID_FOCAL = 240  # of which the focal class's at most
GRID_GROUPS = 100  # classes shown in the grid at most


def grid_logic(images: ImageServices, selection: dict | None, status: dict | None,
               urls: Callable[[str, str], tuple[str, str]]) -> tuple[Any, str]:
    """The thumbnail grid's data for ``classmap.renderThumbGrid`` and the note above it.

    Data: ``{"image": URL prefix, "cam": URL prefix, "selected": index or None,
    "groups": [{"label", "note", "focal": bool, "tiles": [[index, class id, title], …]}]}``
    — by true class, the focal class first; a URL prefix + the index names a thumbnail
    (``urls(model, data)`` gives the two prefixes). No image path is in it.
    """
    result, why = ready_result(images, selection, status)
    if result is None or selection is None:
        mismatch = digits_mismatch(images.services.settings, (selection or {}).get("model"),
                                   (selection or {}).get("data")) if selection else None
        return None, mismatch or why
    reps = result.representations
    class_ids = images.services.head(result.model).classes.ids
    names = reps.class_names
    focal = focal_of(images, result, selection)
    present = [int(c) for c in np.unique(reps.labels)]
    order = ([focal] if focal in present else []) + [c for c in present if c != focal]
    # The focal class's images first (at most GRID_FOCAL); the rest of the budget is shared.
    focal_count = (min(GRID_FOCAL, int((reps.labels == focal).sum())) if focal in present
                   else 0)
    others = min(len(order), GRID_GROUPS) - (1 if focal_count else 0)
    rest = max(1, (GRID_TILES - focal_count) // max(1, others))
    groups, shown = [], 0
    for c in order[:GRID_GROUPS]:
        members = np.flatnonzero(reps.labels == c)
        limit = GRID_FOCAL if c == focal else rest
        tiles = [[int(i), class_ids[c],
                  f"#{int(i)} · true {names[c]} · predicted {names[int(reps.preds[i])]} "
                  f"({100 * float(reps.confidence[i]):.1f}%)"] for i in members[:limit]]
        shown += len(tiles)
        groups.append({"label": str(names[c]), "focal": c == focal, "tiles": tiles,
                       "note": (f"{len(members)} images" if len(members) <= limit
                                else f"{limit} of {len(members)} images")})
    image_url, cam_url = urls(result.model, result.data)
    sample = selection.get("image")
    data = {"image": image_url, "cam": cam_url, "groups": groups,
            "selected": int(sample) if sample is not None else None}
    more = (f"; {len(order) - GRID_GROUPS} more classes not shown"
            if len(order) > GRID_GROUPS else "")
    note = (f"{shown:,} of {reps.num_images:,} images of {len(present)} classes"
            + (" (pick a class above to see more of its images)" if shown < reps.num_images
               else "") + more + ". Hover: Grad-CAM map; click: pin it and show it large.")
    return data, note


# -- Clustering ------------------------------------------------------------------------------


def _fmt(value: float | None, digits: int = 3) -> str:
    return "—" if value is None or (isinstance(value, float) and math.isnan(value)) \
        else f"{value:.{digits}f}"


def within_table_logic(images: ImageServices, selection: dict | None,
                       status: dict | None) -> Any:
    """Per-class and overall within-class cosine of each representation (+ Grad-CAM CC)."""
    result, why = ready_result(images, selection, status)
    if result is None or selection is None:
        return html.P(why, className="cm-muted")
    analysis = result.analysis
    focal = focal_of(images, result, selection)
    reps = [r for r in REPRESENTATIONS if r in analysis.within_class]
    header = html.Tr([html.Th(explained("class")), html.Th(explained("images")),
                      *(html.Th(explained(REPRESENTATION_LABELS[r].split(" (")[0]))
                        for r in reps),
                      html.Th(explained("Grad-CAM map CC"))])
    rows = []
    counts = analysis.within_class[reps[0]].image_counts if reps else []
    for row, (index, name) in enumerate(zip(analysis.classes, analysis.class_names)):
        style = {"background": "#fff4e6", "fontWeight": 600} if focal == int(index) else None
        rows.append(html.Tr([
            html.Td(name), html.Td(int(counts[row]), className="cm-num"),
            *(html.Td(_fmt(float(analysis.within_class[r].per_class[row])), className="cm-num")
              for r in reps),
            html.Td(_fmt(float(analysis.map_agreement.cc[row])), className="cm-num"),
        ], style=style))
    rows.append(html.Tr([
        html.Td(html.B("mean over pairs")), html.Td(""),
        *(html.Td(html.B(_fmt(analysis.within_class[r].overall_pairs)), className="cm-num")
          for r in reps),
        html.Td(html.B(_fmt(analysis.map_agreement.overall_pairs.cc)), className="cm-num"),
    ]))
    rows.append(html.Tr([
        html.Td(html.B("mean over classes")), html.Td(""),
        *(html.Td(html.B(_fmt(analysis.within_class[r].overall_classes)), className="cm-num")
          for r in reps),
        html.Td(html.B(_fmt(analysis.map_agreement.overall_classes.cc)), className="cm-num"),
    ]))
    return html.Div([
        html.H3("Within-class similarity (mean cosine of same-class image pairs)",
                style={"fontSize": "13px", "margin": "0 0 4px"}),
        html.Div(html.Table([html.Thead(header), html.Tbody(rows)], className="cm-table"),
                 style={"maxHeight": "360px", "overflowY": "auto"}),
    ])


def metrics_table_logic(images: ImageServices, selection: dict | None,
                        status: dict | None) -> Any:
    """K-means and GMM ARI / NMI / Silhouette per representation."""
    result, why = ready_result(images, selection, status)
    if result is None:
        return None
    analysis = result.analysis
    any_result = next(iter(analysis.clustering.values()), None)
    metric = any_result.silhouette_metric if any_result is not None else "euclidean"
    k = len(analysis.classes)
    rows = []
    for rep in REPRESENTATIONS:
        for algorithm in CLUSTERING_ALGORITHMS:
            found = analysis.clustering.get((rep, algorithm))
            cells = ([_fmt(found.ari), _fmt(found.nmi), _fmt(found.silhouette)]
                     if found is not None else ["—", "—", "—"])
            rows.append(html.Tr([html.Td(REPRESENTATION_LABELS[rep].split(" (")[0]),
                                 html.Td(ALGORITHM_LABELS[algorithm]),
                                 *(html.Td(c, className="cm-num") for c in cells)]))
    skipped = [f"{name}: {reason}" for name, reason in analysis.skipped if "cluster" in name]
    return html.Div([
        html.H3(f"Clustering into k = {k} clusters vs the true classes",
                style={"fontSize": "13px", "margin": "0 0 4px"}),
        html.Table([html.Thead(html.Tr([
            html.Th(explained("representation")), html.Th(explained("algorithm")),
            html.Th(explained("ARI")), html.Th(explained("NMI")),
            html.Th(explained(f"Silhouette ({metric}, {analysis.params.scaling} scaling)"))])),
            html.Tbody(rows)], className="cm-table"),
        html.P("ARI: adjusted Rand index; NMI: normalised mutual information (both 1 = the "
               "clusters are the classes); Silhouette of the clusters found, "
               f"{metric} distance on the scaled vectors (−1 … 1)."
               + (" Skipped: " + "; ".join(skipped) if skipped else ""), className="cm-note"),
    ])


def clustering_update_logic(images: ImageServices, view_key: dict | None,
                            status: dict | None, algorithm: str | None,
                            triggered: set[str]) -> tuple:
    """→ the two Clustering scatters, or only their marks when neither the data, the
    representation nor the algorithm changed (``triggered`` is only ``IMAGE_VIEW_KEY``):
    ``Patch``es of the true-class scatter's focal overlay and ring, and of the cluster
    scatter's ring (it shows no focal class)."""
    view_key, status = (value if isinstance(value, dict) else None
                        for value in (view_key, status))
    if triggered == {ids.IMAGE_VIEW_KEY}:
        result, _ = ready_result(images, view_key, status)
        rep = (view_key or {}).get("rep") or "features"
        if result is not None and rep in result.analysis.pca:
            coords = result.analysis.pca[rep].coordinates
            algorithm = algorithm if algorithm in CLUSTERING_ALGORITHMS else "kmeans"
            clusters = (ring_patch(coords, view_key.get("image"))
                        if (rep, algorithm) in result.analysis.clustering else no_update)
            return scatter_marks_patch(images, result, coords, view_key), clusters
    return clustering_figures_logic(images, view_key, status, algorithm)


def clustering_figures_logic(images: ImageServices, selection: dict | None,
                             status: dict | None, algorithm: str | None) -> tuple:
    """(PCA coloured by true class, PCA coloured by cluster) for the chosen representation."""
    result, why = ready_result(images, selection, status)
    if result is None or selection is None:
        empty = figs.message_figure(why, height=460)
        return empty, empty
    rep = selection.get("rep") or "features"
    algorithm = algorithm if algorithm in CLUSTERING_ALGORITHMS else "kmeans"
    reps = result.representations
    coords = result.analysis.pca[rep].coordinates
    hover = _hover(result)
    titles = _pca_titles(result, rep)
    focal = focal_of(images, result, selection)
    sample = selection.get("image")
    selected = int(sample) if sample is not None else None
    true = figs.sample_scatter(coords, reps.labels, reps.class_names, hover=hover, focal=focal,
                               selected=selected, axis_titles=titles, height=460,
                               uirevision=f"{result.model}|{result.data}|{rep}",
                               webgl=images.services.settings.webgl)
    found = result.analysis.clustering.get((rep, algorithm))
    if found is None:
        reason = next((r for name, r in result.analysis.skipped if rep in name), "not computed")
        return true, figs.message_figure(f"No {ALGORITHM_LABELS[algorithm]} clustering of "
                                         f"{rep}: {reason}", height=460)
    clusters = np.asarray(found.assignments, dtype=np.int64)
    names = [f"cluster {c + 1}" for c in range(int(clusters.max()) + 1)]
    by_cluster = figs.sample_scatter(
        coords, clusters, names, hover=[f"{h}<br>cluster {c + 1}" for h, c in zip(hover, clusters)],
        selected=selected, axis_titles=titles, height=460, legend_title="cluster",
        uirevision=f"{result.model}|{result.data}|{rep}|{algorithm}", webgl=images.services.settings.webgl,
        title=f"{ALGORITHM_LABELS[algorithm]}: ARI {_fmt(found.ari)}, NMI {_fmt(found.nmi)}")
    return true, by_cluster


# -- Confidence -------------------------------------------------------------------------------


def confidence_figures_logic(images: ImageServices, selection: dict | None,
                             status: dict | None, tsne: bool = True) -> tuple:
    """(JS heatmap with tree and cluster strip, cluster list, t-SNE, confusion matrix);
    ``tsne=False``: None for the t-SNE (the page draws it in its own callback)."""
    result, why = ready_result(images, selection, status)
    if result is None or selection is None:
        return (figs.message_figure(why, height=640), None, figs.message_figure(why, height=460),
                figs.message_figure(why, height=460))
    analysis = result.analysis
    focal = focal_of(images, result, selection)
    classes = [int(c) for c in analysis.classes]
    focal_row = classes.index(focal) if focal in classes else None
    heatmap = figs.js_heatmap(analysis.js, analysis.js_linkage, analysis.class_names,
                              analysis.class_clusters, focal=focal_row, height=640)
    cluster_list = None
    if analysis.class_clusters is not None:
        groups: dict[int, list[str]] = {}
        for name, c in zip(analysis.class_names, analysis.class_clusters):
            groups.setdefault(int(c), []).append(name)
        cluster_list = html.Div([
            html.Span(f"k-means of the divergence rows, k = {len(groups)}: ",
                      className="cm-muted"),
            *(html.Span([html.Span("■ ", style={"color": figs.class_palette(c)}),
                         f"{c + 1}: {', '.join(members)}"],
                        style={"marginRight": "14px", "whiteSpace": "nowrap"})
              for c, members in sorted(groups.items())),
        ], className="cm-note")
    tsne_figure = tsne_logic(images, selection, status) if tsne else None
    confusion = figs.confusion_figure(analysis.confusion, analysis.class_names,
                                      analysis.confusion_columns, focal_row=focal_row, height=460)
    return heatmap, cluster_list, tsne_figure, confusion


def confidence_matrices_logic(images: ImageServices, key: dict | None, status: dict | None,
                              triggered: set[str]) -> tuple:
    """→ (JS heatmap, cluster list, confusion matrix); when only the focal class changed
    (``triggered`` is only ``IMAGE_FOCAL_KEY``), ``Patch``es of the two figures' focal
    frames (``layout.shapes``) and no new cluster list."""
    key, status = (value if isinstance(value, dict) else None for value in (key, status))
    if triggered == {ids.IMAGE_FOCAL_KEY}:
        result, _ = ready_result(images, key, status)
        if result is not None:
            analysis = result.analysis
            classes = [int(c) for c in analysis.classes]
            focal = focal_of(images, result, key)
            row = classes.index(focal) if focal in classes else None
            heatmap, confusion = Patch(), Patch()
            heatmap["layout"]["shapes"] = figs.js_focal_shapes(analysis.js_linkage,
                                                               len(classes), row)
            counts = np.asarray(analysis.confusion)
            confusion["layout"]["shapes"] = figs.confusion_focal_shapes(*counts.shape, row)
            return heatmap, no_update, confusion
    heatmap, cluster_list, _, confusion = confidence_figures_logic(images, key, status,
                                                                   tsne=False)
    return heatmap, cluster_list, confusion


def tsne_update_logic(images: ImageServices, key: dict | None, status: dict | None,
                      triggered: set[str]) -> Any:
    """→ the t-SNE, or a ``Patch`` of its marks (focal overlay, ring, classes' opacity) when
    only the focal class or the image changed (``triggered`` is only ``IMAGE_MARKS_KEY``:
    ``IMAGE_DATA_KEY`` and the status did not change)."""
    key, status = (value if isinstance(value, dict) else None for value in (key, status))
    if triggered == {ids.IMAGE_MARKS_KEY}:
        result, _ = ready_result(images, key, status)
        if result is not None and result.analysis.tsne is not None:
            return scatter_marks_patch(images, result, result.analysis.tsne, key)
    return tsne_logic(images, key, status)


def tsne_logic(images: ImageServices, key: dict | None, status: dict | None) -> Any:
    """The Confidence page's t-SNE of the images (focal class and selected image marked)."""
    result, why = ready_result(images, key, status)
    if result is None or key is None:
        return figs.message_figure(why, height=460)
    analysis = result.analysis
    if analysis.tsne is None:
        reason = next((r for name, r in analysis.skipped if "tsne" in name.lower()), "skipped")
        return figs.message_figure(f"No t-SNE: {reason}", height=460)
    sample = key.get("image")
    return figs.sample_scatter(
        analysis.tsne, result.representations.labels, result.representations.class_names,
        hover=_hover(result), focal=focal_of(images, result, key),
        selected=int(sample) if sample is not None else None,
        axis_titles=("t-SNE 1", "t-SNE 2"), height=460,
        uirevision=f"{result.model}|{result.data}|tsne", webgl=images.services.settings.webgl)


def heatmap_click_logic(images: ImageServices, click: dict | None, selection: dict | None,
                        status: dict | None) -> dict:
    """A click on a JS cell → its row's class becomes the focal class."""
    if not click or not selection:
        raise PreventUpdate
    result, _ = ready_result(images, selection, status)
    if result is None:
        raise PreventUpdate
    point = (click.get("points") or [{}])[0]
    custom = point.get("customdata")
    if not isinstance(custom, (list, tuple)) or len(custom) != 2:
        raise PreventUpdate
    row = int(custom[0])
    index = int(result.analysis.classes[row])
    focal = images.services.head(result.model).classes.ids[index]
    return update_selection(selection, focal=focal)


# -- wiring -------------------------------------------------------------------------------------


def register(app: Any, services: Services) -> None:
    """Wire the image pages."""
    images = image_services_for(services)
    # Every callback below listens only to components of the image pages (never to the
    # shell's SELECTION directly), so none of them has a missing Input on another page:
    # to projections (VIEW_FIELDS) of the page-local copy of the selection.
    # Server callbacks that change the selection write the page's request store.
    relay_selection_requests(app, ids.IMAGE_SELECT)
    status_in = Input(ids.IMAGE_STATUS, "data")
    mirror_shared_state(app, ids.IMAGE_SELECTION)
    for store, fields in VIEW_FIELDS.items():
        project_selection(app, store, fields)

    def key_in(store: str) -> Input:
        return Input(store, "data")

    def triggered() -> set[str]:
        return {str(value) for value in ctx.triggered_prop_ids.values()}
    name_downloads(app, {graph: ("data", "rep") for graph in ids.GRAPHS})

    @app.callback(
        Output(ids.IMAGE_STATUS, "data"), Output(ids.IMAGE_JOB, "data"),
        key_in(ids.IMAGE_DATA_KEY), State(ids.IMAGE_STATUS, "data"),
    )
    def request_images(selection, status):
        return request_images_logic(images, selection, status)

    @app.callback(
        Output(ids.IMAGE_STATUS, "data", allow_duplicate=True),
        Input(ids.IMAGE_JOB, "data"),
        background=True,
        progress=[Output(ids.IMAGE_PROGRESS, "value"), Output(ids.IMAGE_LABEL, "children")],
        running=[(Output(ids.IMAGE_PANEL, "hidden"), False, True),
                 (Output(ids.IMAGE_CANCEL, "disabled"), False, True)],
        cancel=[Input(ids.IMAGE_CANCEL, "n_clicks")],
        interval=300,
        prevent_initial_call=True,
    )
    def prepare_images(set_progress, job):
        return prepare_images_logic(images, set_progress, job)

    @app.callback(
        Output(ids.IMAGE_STATUS, "data", allow_duplicate=True),
        Input(ids.IMAGE_CANCEL, "n_clicks"), State(ids.IMAGE_STATUS, "data"),
        prevent_initial_call=True,
    )
    def cancel_images(n_clicks, status):
        return cancelled_status(n_clicks, status, "the image analysis was cancelled")

    # A job that died, hung, overran or could not write: its error and a Retry, in seconds.
    watch_jobs(app, ids.IMAGE_STATUS, ids.IMAGE_JOB, ids.IMAGE_LABEL, ids.IMAGE_WATCHDOG,
               ids.IMAGE_FAILURE, ids.IMAGE_FAILURE_TEXT, ids.IMAGE_RETRY, image_job)

    @app.callback(Output(ids.IMAGE_MESSAGE, "children"), key_in(ids.IMAGE_DATA_KEY), status_in)
    def message(selection, status):
        return message_logic(images, selection, status)

    @app.callback(Output(ids.IMAGE_FOCAL, "options"), status_in, State(ids.IMAGE_SELECTION, "data"))
    def focal_options(status, selection):
        return focal_options_logic(images, selection, status)

    bind_field(app, ids.DATA_PICKER, "data", ids.IMAGE_SELECTION)
    # The class picker: a value it has no option for comes with a provisional one.
    bind_field(app, ids.IMAGE_FOCAL, "focal", ids.IMAGE_SELECTION, picker=True)
    # On the pages that have one (the pattern matches nothing on the others).
    bind_field(app, {"type": ids.REPRESENTATION_PICKER, "page": ALL}, "rep", ids.IMAGE_SELECTION)

    # Samples
    # The scatters also listen to what they are drawn from (IMAGE_REP_KEY, IMAGE_DATA_KEY):
    # when that did not change, the focal class or image is a Patch of their marks.
    @app.callback(Output(ids.SAMPLES_GRAPH, "figure"), key_in(ids.IMAGE_VIEW_KEY),
                  key_in(ids.IMAGE_REP_KEY), status_in)
    def samples_figure(selection, _rep, status):
        return samples_update_logic(images, selection, status, triggered())

    @app.callback(
        Output(ids.IMAGE_SELECT, "data", allow_duplicate=True),
        Input(ids.SAMPLES_GRAPH, "clickData"), State(ids.IMAGE_SELECTION, "data"),
        State(ids.IMAGE_STATUS, "data"), prevent_initial_call=True,
    )
    def sample_click(click, selection, status):
        return sample_click_logic(images, click, selection, status)

    @app.callback(
        Output(ids.SAMPLE_IMAGE, "src"), Output(ids.SAMPLE_CAM, "src"),
        Output(ids.SAMPLE_DETAILS, "children"), Output(ids.SAMPLE_FIGURES, "hidden"),
        Output(ids.SAMPLE_PLACEHOLDER, "hidden"), key_in(ids.IMAGE_SAMPLE_KEY), status_in,
        # While it runs the previous image and map are hidden behind a spinner.
        running=busy_running(ids.SAMPLE_BOX),
    )
    def sample_detail(selection, status):
        image, cam, details = sample_detail_logic(images, selection, status)
        shown = bool(image)
        return image, cam, details, not shown, shown

    # The thumbnail grid (drawn in the browser) and its clicks (applied in the browser).
    register_thumbnail_route(app, services)

    def grid_urls(model: str, data: str) -> tuple[str, str]:
        return thumbnail_url(app, model, data, "image"), thumbnail_url(app, model, data, "cam")

    @app.callback(Output(ids.SAMPLES_GRID_DATA, "data"), Output(ids.SAMPLES_GRID_NOTE, "children"),
                  key_in(ids.IMAGE_MARKS_KEY), status_in)
    def samples_grid(selection, status):
        return grid_logic(images, selection, status, grid_urls)

    clientside(app, "renderThumbGrid", Output(ids.SAMPLES_GRID_DATA, "modified_timestamp"),
               Input(ids.SAMPLES_GRID_DATA, "data"),
               constants={"target": ids.SAMPLES_GRID, "pick": ids.SAMPLES_GRID_PICK},
               prevent_initial_call=True)
    select_on(app, Input(ids.SAMPLES_GRID_PICK, "data"), "pickedImage", ids.IMAGE_SELECTION)

    # Clustering
    @app.callback(Output(ids.CLUSTERING_WITHIN, "children"),
                  Output(ids.CLUSTERING_METRICS, "children"), key_in(ids.IMAGE_DATA_KEY),
                  status_in)
    def clustering_tables(selection, status):
        return (within_table_logic(images, selection, status),
                metrics_table_logic(images, selection, status))

    @app.callback(Output(ids.CLUSTERING_TRUE, "figure"), Output(ids.CLUSTERING_CLUSTERS, "figure"),
                  key_in(ids.IMAGE_VIEW_KEY), key_in(ids.IMAGE_REP_KEY), status_in,
                  Input({"type": ids.CLUSTERING_ALGORITHM, "page": ALL}, "value"))
    def clustering_figures(selection, _rep, status, algorithm):
        return clustering_update_logic(images, selection, status, algorithm[0] if isinstance(
            algorithm, list) and algorithm else None, triggered())

    # Confidence
    @app.callback(
        Output(ids.CONFIDENCE_HEATMAP, "figure"), Output(ids.CONFIDENCE_CLUSTERS, "children"),
        Output(ids.CONFIDENCE_CONFUSION, "figure"), key_in(ids.IMAGE_DATA_KEY),
        key_in(ids.IMAGE_FOCAL_KEY), status_in,
    )
    def confidence_matrices(_data, selection, status):
        return confidence_matrices_logic(images, selection, status, triggered())

    @app.callback(Output(ids.CONFIDENCE_TSNE, "figure"), key_in(ids.IMAGE_MARKS_KEY),
                  key_in(ids.IMAGE_DATA_KEY), status_in)
    def confidence_tsne(selection, _data, status):
        return tsne_update_logic(images, selection, status, triggered())

    @app.callback(
        Output(ids.IMAGE_SELECT, "data", allow_duplicate=True),
        Input(ids.CONFIDENCE_HEATMAP, "clickData"), State(ids.IMAGE_SELECTION, "data"),
        State(ids.IMAGE_STATUS, "data"), prevent_initial_call=True,
    )
    def heatmap_click(click, selection, status):
        return heatmap_click_logic(images, click, selection, status)

    @app.callback(
        Output(ids.IMAGE_SELECT, "data", allow_duplicate=True),
        Input(ids.CONFIDENCE_TSNE, "clickData"), State(ids.IMAGE_SELECTION, "data"),
        State(ids.IMAGE_STATUS, "data"), prevent_initial_call=True,
    )
    def tsne_click(click, selection, status):
        return sample_click_logic(images, click, selection, status)
