"""Callbacks of the Classes page: glue between the shared selection, services and figures.

Each graph is drawn in full only when what it *shows* changes (model, metric,
linkage, zoom — remembered in a small "rendered key" store); a change of focal
class, selected subtree or cut only sends an *overlay* (a few kB of JSON), which a
client-side callback applies with ``Plotly.relayout`` / ``Plotly.restyle``
(``assets/classmap.js``, ``applyOverlay``). Why not a ``dash.Patch`` of the figure:
every figure update that goes through dcc.Graph re-runs plotly's whole calculation
step (≈ 200 ms for a 1,000 × 1,000 heatmap on a laptop), while a relayout of the
shapes takes ≈ 10 ms.

The nearest-classes chart (k bars, drawn through dcc.Graph) follows a cut the same way:
an overlay of its bar colours (``neighbours_view_logic``) instead of a new chart.

And each view's callback fires only when a selection field that view reads changes
(``MATRIX_FIELDS`` …, projected in the browser): top-k redraws the nearest classes
alone, not the heatmap; the class map (whose points depend on the model and the layout
only) follows a metric change with an overlay of its colours.

The ``*_logic`` functions take plain values and return plain values (figures,
overlays, component trees), so tests call them without a browser.
"""

from __future__ import annotations

import logging
from typing import Any, Callable

import numpy as np
from dash import Input, Output, State, ctx, dcc, html, no_update
from dash.exceptions import PreventUpdate

from classmap.analysis.methods.embedding import EMBEDDING_LABELS
from classmap.analysis.errors import ClassmapError
from classmap.analysis.progress import CallbackProgress
from classmap.analysis.methods.similarity import METRIC_KIND
from classmap.app.hosting.identity import current_identity
from classmap.app.hosting.redact import redact_paths
from classmap.app.pages.classes import figures
from classmap.app.pages.classes import ids
from classmap.app.shell import ids as shell_ids
from classmap.app.pages.classes.layout import cut_limit, cut_marks
from classmap.app.shell.clientside import (bind_field, bind_fields, clientside,
                                          mirror_shared_state,
                                          name_downloads, project_model_status,
                                          project_selection, relay_selection_requests,
                                          select_on)
from classmap.app.shell.jobs import job_request
from classmap.app.shell.widgets import provisional_options
from classmap.app.shell.analysis import FOCAL_ALL_OPTIONS, focal_option, ready_view
from classmap.app.shell.widgets import stat
from classmap.app.shell.glossary import explain
from classmap.app.shell.services import METRIC_LABELS, ModelView, SelectionSummary, Services, short_name
from classmap.app.shell.selection import Selection, update_selection
from classmap.app.shell.tree_layout import cluster_runs, cut_height, node_clusters

log = logging.getLogger(__name__)

SUBTREE_LIST_LIMIT = 2000  # classes listed in the side panel (the CSV has all)


# -- shared helpers -----------------------------------------------------------------------------


def focal_index(view: ModelView, sel: Selection) -> int | None:
    return view.find_class(sel.focal) if sel.focal else None


def valid_node(view: ModelView, node: int | None) -> int | None:
    """``node`` if it is an internal node of the tree, else None."""
    c = view.num_classes
    return node if node is not None and c <= node <= 2 * c - 2 else None


def extent(view: ModelView, sel: Selection) -> tuple[int, int]:
    """Leaf positions ``(first, last)`` shown: the zoomed subtree or everything."""
    zoom = valid_node(view, sel.zoom)
    if zoom is None:
        return 0, view.num_classes - 1
    return int(view.layout.first[zoom]), int(view.layout.last[zoom])


def summarise(services: Services, view: ModelView, sel: Selection) -> SelectionSummary | None:
    """The current subtree or lasso selection, or None."""
    node = valid_node(view, sel.node)
    if node is not None:
        return services.summarise_node(view, node)
    if sel.classes:
        kept = [i for i in sel.classes if 0 <= i < view.num_classes]
        return services.summarise_classes(view, kept) if kept else None
    return None


def position_runs(positions: np.ndarray) -> list[tuple[int, int]]:
    """Sorted leaf positions → ``(first, last)`` runs of consecutive positions."""
    if positions.size == 0:
        return []
    ordered = np.sort(positions)
    breaks = np.flatnonzero(np.diff(ordered) > 1)
    starts = np.r_[ordered[0], ordered[breaks + 1]]
    ends = np.r_[ordered[breaks], ordered[-1]]
    return [(int(a), int(b)) for a, b in zip(starts, ends)]


def clipped_runs(view: ModelView, sel: Selection, span: tuple[int, int]) -> list[tuple[int, int, int]]:
    """Cluster runs of the cut that overlap the shown positions."""
    labels = view.clusters(sel.cut)
    if labels is None:
        return []
    lo, hi = span
    return [(label, max(a, lo), min(b, hi)) for label, a, b in cluster_runs(view.layout, labels)
            if b >= lo and a <= hi]


def base_key(sel: Selection, view: ModelView) -> dict[str, Any]:
    """What a full redraw of the heatmap depends on (the rest is overlays)."""
    return {"key": list(sel.analysis_key), "zoom": valid_node(view, sel.zoom)}


def tree_base_key(sel: Selection, view: ModelView) -> dict[str, Any]:
    """What a full redraw of the dendrogram depends on: the tree, not the metric when
    the linkage ignores it (Ward) — a metric switch then redraws the heatmap alone."""
    return {"tree": list(sel.tree_key), "zoom": valid_node(view, sel.zoom)}


# -- heatmap ---------------------------------------------------------------------------------------


def heatmap_shapes_for(services: Services, view: ModelView, sel: Selection,
                       span: tuple[int, int]) -> list[dict]:
    summary = summarise(services, view, sel)
    selection_box = None
    marked: list[tuple[int, int]] = []
    if summary is not None:
        positions = view.layout.position[summary.indices]
        if summary.contiguous:
            selection_box = (int(positions.min()), int(positions.max()))
        else:
            marked = position_runs(positions)
    focal = focal_index(view, sel)
    return figures.heatmap_shapes(
        clusters=clipped_runs(view, sel, span), selection=selection_box, marked_runs=marked,
        focal=None if focal is None else int(view.layout.position[focal]), extent=span,
    )


def heatmap_region(relayout: dict | None, span: tuple[int, int]) -> tuple[tuple[int, int], tuple[int, int]] | None:
    """Leaf-position rows/cols the user zoomed to, or None for "everything shown"."""
    if not relayout:
        return None
    lo, hi = span
    try:
        x0, x1 = relayout["xaxis.range[0]"], relayout["xaxis.range[1]"]
        y0, y1 = relayout["yaxis.range[0]"], relayout["yaxis.range[1]"]
    except KeyError:
        return None
    cols = (max(lo, int(np.floor(min(x0, x1) + 0.5))), min(hi + 1, int(np.ceil(max(x0, x1) + 0.5))))
    rows = (max(lo, int(np.floor(min(y0, y1) + 0.5))), min(hi + 1, int(np.ceil(max(y0, y1) + 0.5))))
    if cols[1] <= cols[0] or rows[1] <= rows[0]:
        return None
    return rows, cols


def heatmap_note(view: ModelView, block: int, span: tuple[int, int]) -> str:
    count = span[1] - span[0] + 1
    what = METRIC_LABELS[view.metric]
    if block > 1:
        return (f"{count:,} classes: overview of {block}×{block} block means of the {what}; "
                "zoom in (drag a box) for finer blocks, down to single classes.")
    return f"{count:,} classes, every cell shown: {what}. Hover a cell for both classes and the score."


def update_heatmap_logic(services: Services, selection: dict | None, status: dict | None,
                         relayout: dict | None, rendered: dict | None,
                         triggered: str | None) -> tuple:
    """→ (full figure or no_update, overlay or no_update, rendered key, note).

    Full figures go to a store the browser decodes once (then into the graph);
    overlay changes go to the graph's overlay store (applied in the browser).
    """
    sel, view, message = ready_view(services, selection, status)
    if view is None:
        return figures.message_figure(message), no_update, None, ""
    span = extent(view, sel)
    base = base_key(sel, view)
    shapes = heatmap_shapes_for(services, view, sel, span)
    whole = ((span[0], span[1] + 1),) * 2
    if not rendered or {k: rendered.get(k) for k in base} != base:
        figure, drawn = _heatmap_figure(services, view, base, whole, shapes)
        key = {**base, **drawn, "overview_block": drawn["block"]}
        return figure, no_update, key, heatmap_note(view, drawn["block"], span)
    if triggered == ids.HEATMAP and rendered.get("overview_block", 1) > 1:
        region = heatmap_region(relayout, span)
        if region is not None or (relayout or {}).get("xaxis.autorange"):
            rows, cols = region if region is not None else whole
            tile, image = services.heatmap_image(view, rows, cols)
            if tile_extent(tile) == rendered.get("tile"):
                # The tile drawn already (the browser lining the heatmap's axes up with the
                # dendrogram's, or a zoom within one block): nothing to send.
                return no_update, no_update, no_update, no_update
            # A new tile for the region zoomed into; uirevision keeps the user's zoom.
            figure, drawn = _heatmap_figure(services, view, base, (rows, cols), shapes,
                                            (tile, image))
            return (figure, no_update, {**rendered, **drawn},
                    heatmap_note(view, drawn["block"], (rows[0], rows[1] - 1)))
    return no_update, {"layout": {"shapes": shapes}}, no_update, no_update


def tile_extent(tile: Any) -> list[int]:
    """``[row_start, row_stop, col_start, col_stop, block]`` of a MatrixTile: what a drawn
    heatmap shows (kept in its rendered key)."""
    return [int(tile.row_start), int(tile.row_stop), int(tile.col_start), int(tile.col_stop),
            int(tile.block)]


def _heatmap_figure(services: Services, view: ModelView, base: dict, region: tuple,
                    shapes: list[dict], made: tuple | None = None) -> tuple[Any, dict]:
    """→ (figure of ``region``, its rendered-key fields ``{"block", "tile"}``);
    ``made``: the region's ``(tile, image)`` when already fetched."""
    (r0, r1), (c0, c1) = region
    tile, image = made or services.heatmap_image(view, (r0, r1), (c0, c1))
    names = None
    if tile.full_resolution and r0 == c0 and r1 == c1 and r1 - r0 <= figures.TICK_LABEL_LIMIT:
        names = [view.short_names[i] for i in view.layout.order[r0:r1]]
    figure = figures.heatmap_figure(
        tile.z, view.colour_scale, row_start=tile.row_start, col_start=tile.col_start,
        block=tile.block, tick_names=names, shapes=shapes, uirevision=repr(base), source=image,
        row_stop=tile.row_stop, col_stop=tile.col_stop,
    )
    return figure, {"block": tile.block, "tile": tile_extent(tile)}


def heatmap_hover_logic(services: Services, hover: dict | None, selection: dict | None,
                        status: dict | None, rendered: dict | None) -> tuple:
    """→ (tooltip shown, bbox, children) for the hovered cell, with the exact score."""
    if not hover or not hover.get("points"):
        return False, no_update, no_update
    sel, view, _ = ready_view(services, selection, status)
    if view is None:
        return False, no_update, no_update
    point = hover["points"][0]
    block = int((rendered or {}).get("block") or 1)
    x, y = float(point["x"]), float(point["y"])
    bbox = point.get("bbox", no_update)
    label = "cosine" if view.metric == "cosine" else "distance"
    if block <= 1:
        cell = services.cell_summary(view, int(round(y)), int(round(x)))
        children = [
            html.Div(cell["row"], className="cm-tip-name"),
            html.Div(cell["col"], className="cm-tip-name"),
            html.Div([html.Span(f"{label} "), html.B(f"{cell['score']:.4f}")],
                     className="cm-tip-score"),
        ]
    else:
        r0 = int(round(y - (block - 1) / 2))
        c0 = int(round(x - (block - 1) / 2))
        first = services.cell_summary(view, r0, c0)
        last = services.cell_summary(view, r0 + block - 1, c0 + block - 1)
        children = [
            html.Div(f"rows: {short_name(first['row'])} … {short_name(last['row'])}",
                     className="cm-tip-name"),
            html.Div(f"columns: {short_name(first['col'])} … {short_name(last['col'])}",
                     className="cm-tip-name"),
            html.Div([html.Span(f"block mean {label} "),
                      html.B(f"{_block_mean(services, view, r0, c0, block):.4f}")],
                     className="cm-tip-score"),
        ]
    return True, bbox, children


def _block_mean(services: Services, view: ModelView, r0: int, c0: int, block: int) -> float:
    tile = services.heatmap_tile(view, (r0, r0 + block), (c0, c0 + block))
    return float(np.mean(tile.z)) if tile.block == 1 else float(tile.z[0, 0])


def heatmap_click_logic(services: Services, click: dict | None, selection: dict | None,
                        status: dict | None, rendered: dict | None) -> dict:
    """Click on a cell (full resolution) → its row's class becomes the focal class."""
    if not click or not click.get("points") or int((rendered or {}).get("block") or 1) > 1:
        raise PreventUpdate
    sel, view, _ = ready_view(services, selection, status)
    if view is None:
        raise PreventUpdate
    row = int(round(float(click["points"][0]["y"])))
    if not 0 <= row < view.num_classes:
        raise PreventUpdate
    focal = view.class_id(int(view.layout.order[row]))
    if focal == sel.focal:
        raise PreventUpdate
    return update_selection(selection or {}, focal=focal)


# -- WordNet (issue 13) ----------------------------------------------------------------------------


def wordnet_for(services: Services, view: ModelView) -> Any:
    """The WordNet names and agreement of the view's tree (cached, and kept with the view;
    unavailable for class sets without WordNet ids)."""
    from classmap.analysis.pipelines.compare import wordnet_for_tree

    return view.memo(("wordnet",), lambda: wordnet_for_tree(
        tuple(view.ids), view.analysis.linkage, services.cache))


def wordnet_node_text(wordnet: Any, view: ModelView, nodes: np.ndarray) -> list[str] | None:
    """``"crab (100 %)"`` per node (internal nodes; leaves get their class name)."""
    if not wordnet.available or wordnet.names is None:
        return None
    count = view.num_classes
    names = wordnet.names
    return [view.short_names[n] if n < count else
            f"{names.name[n - count]} ({names.fraction[n - count]:.0%} of its classes)"
            for n in (int(n) for n in nodes)]


def wordnet_node_labels(wordnet: Any, view: ModelView, nodes: np.ndarray,
                        sizes: np.ndarray, visible: int) -> list[str] | None:
    """Short WordNet names on the nodes that hold at least 1/20 of the visible classes
    (and ≥ 4) and are named differently from their parent (so a chain of "artifact"
    nodes is labelled once); "" elsewhere. The figure draws the largest of them that fit
    (``figures.NODE_LABELS``, none overlapping)."""
    if not wordnet.available or wordnet.names is None or len(nodes) == 0:
        return None
    count = view.num_classes
    names = wordnet.names.name
    parent = np.full(2 * count - 1, -1, dtype=np.int64)
    parent[view.layout.children.ravel()] = np.repeat(np.arange(count, 2 * count - 1), 2)

    def new_name(node: int) -> bool:
        up = int(parent[node])
        return up < 0 or names[up - count] != names[node - count]

    labels = [""] * len(nodes)
    eligible = np.flatnonzero((sizes >= max(4, visible / 20)) & (nodes >= count))
    for k in (k for k in eligible if new_name(int(nodes[k]))):
        labels[k] = short_name(names[int(nodes[k]) - count])
    return labels


def wordnet_summary(wordnet: Any) -> Any:
    """The model summary's agreement stat: ρ with a one-line explanation, or why none."""
    if not wordnet.available or wordnet.agreement is None:
        return html.Span(wordnet.reason, className="cm-muted cm-wordnet-none",
                         title="WordNet agreement needs ImageNet-style class ids")
    score = wordnet.agreement
    explain = (f"Spearman's ρ over {score.pairs:,} class pairs between the number of classes "
               "under the pair's lowest common node in this tree and the pair's WordNet 3.0 "
               "distance (hops from the deeper class up to their lowest common hypernym). "
               "1 = the tree nests classes as WordNet does; 0 = unrelated. A class's "
               f"tree neighbours are {score.nn_wordnet_distance:.2f} WordNet hops away on "
               f"average, any two classes {score.baseline_wordnet_distance:.2f}.")
    return html.Span(stat("agreement with WordNet (ρ)", f"{score.spearman:.2f}",
                          value_first=True), title=explain, className="cm-wordnet-summary")


# -- dendrogram -----------------------------------------------------------------------------------


def dendrogram_overlays_for(services: Services, view: ModelView, sel: Selection,
                            span: tuple[int, int]) -> dict[str, Any]:
    layout = view.layout
    node = valid_node(view, sel.node)
    highlight = None
    selected_node = None
    marked: list[tuple[int, int]] = []
    if node is not None:
        nodes = layout.internal_nodes_within(max(int(layout.first[node]), span[0]),
                                             min(int(layout.last[node]), span[1]))
        if layout.first[node] >= span[0] and layout.last[node] <= span[1]:
            selected_node = (float(layout.x[node]), float(layout.y[node]))
        highlight = layout.link_paths(nodes)
    elif sel.classes:
        summary = summarise(services, view, sel)
        if summary is not None:
            marked = position_runs(layout.position[summary.indices])
    focal = focal_index(view, sel)
    focal_mark = None
    if focal is not None:
        position = int(layout.position[focal])
        if span[0] <= position <= span[1]:
            focal_mark = (float(position), view.short_names[focal])
    top_node = valid_node(view, sel.zoom) or layout.root
    cut = view.clusters(sel.cut)
    return figures.dendrogram_overlays(
        highlight=highlight, selected_node=selected_node, focal=focal_mark,
        clusters=clipped_runs(view, sel, span),
        cut_y=cut_height(view.analysis.linkage, sel.cut) if cut is not None else None,
        marked_runs=marked, top=float(layout.y[top_node]),
    )


def leaf_labels_for(view: ModelView, sel: Selection, span: tuple[int, int]) -> list[str]:
    """Class names under the tree's leaves in ``span``: all of them up to
    ``figures.LEAF_LABELS``, else every k-th plus the focal class (issue 13)."""
    order = view.layout.order[span[0]:span[1] + 1]
    focal = focal_index(view, sel)
    keep = [int(view.layout.position[focal]) - span[0]] if focal is not None else []
    return figures.thinned_labels([view.short_names[i] for i in order], keep)


def node_colours_for(view: ModelView, sel: Selection, nodes: np.ndarray) -> np.ndarray | None:
    labels = view.clusters(sel.cut)
    if labels is None:
        return None
    return figures.cluster_codes(node_clusters(view.layout, labels)[nodes])


def update_dendrogram_logic(services: Services, selection: dict | None, status: dict | None,
                            rendered: dict | None) -> tuple:
    """→ (full figure or no_update, overlay or no_update, rendered key)."""
    sel, view, message = ready_view(services, selection, status)
    if view is None:
        return figures.message_figure(message), no_update, None
    layout = view.layout
    span = extent(view, sel)
    base = tree_base_key(sel, view)
    # Level of detail: clades narrower than a few pixels are one shape until zoomed into.
    drawn, collapsed = layout.detail_nodes(*span)
    nodes = np.r_[drawn, collapsed]
    overlays = dendrogram_overlays_for(services, view, sel, span)
    if not rendered or {k: rendered.get(k) for k in base} != base:
        link_x, link_y = view.memo(("links", *span), lambda: layout.link_walk(drawn, collapsed))
        sizes = layout.last[nodes] - layout.first[nodes] + 1
        positions = np.arange(span[0], span[1] + 1)
        wordnet = wordnet_for(services, view)
        figure = figures.dendrogram_figure(
            link_x, link_y, layout.x[nodes].astype(np.float32), layout.y[nodes].astype(np.float32),
            nodes, sizes, x_range=(span[0] - 0.5, span[1] + 0.5),
            top=float(layout.y[valid_node(view, sel.zoom) or layout.root]),
            node_colours=node_colours_for(view, sel, nodes),
            named=positions.size <= figures.TICK_LABEL_LIMIT and view.ordered is not None,
            overlays=overlays, uirevision=repr(base),
            wordnet_names=wordnet_node_text(wordnet, view, nodes),
            node_labels=wordnet_node_labels(wordnet, view, nodes, sizes, positions.size),
            leaf_labels=leaf_labels_for(view, sel, span),
        )
        return figure, no_update, {**base, "cut": sel.cut}
    traces: dict[int, dict[str, Any]] = {}
    overlay = {"traces": traces, "layout": overlays}
    if rendered.get("cut") != sel.cut:
        codes = node_colours_for(view, sel, nodes)
        traces[figures.DENDRO_NODES] = {"marker.color": (
            codes.tolist() if codes is not None else figures.TREE)}
        return no_update, overlay, {**rendered, "cut": sel.cut}
    return no_update, overlay, no_update


# -- selection panel --------------------------------------------------------------------------------


def selection_panel_logic(services: Services, selection: dict | None,
                          status: dict | None) -> tuple:
    """→ (title, stats, class names listed, note under the list, zoom disabled,
    whole-tree disabled, clear disabled)."""
    sel, view, message = ready_view(services, selection, status)
    if view is None:
        return html.Span(message, className="cm-muted"), [], [], "", True, True, True
    zoomed = valid_node(view, sel.zoom) is not None
    summary = summarise(services, view, sel)
    if summary is None:
        hint = "Nothing selected — click a node in the tree, or lasso points in the class map."
        return html.Span(hint, className="cm-muted"), [], [], "", True, not zoomed, True
    kind = METRIC_KIND[view.metric]
    cohesion_label = "cohesion (mean cosine within)" if kind == "similarity" else "mean distance within"
    cohesion = "—" if summary.cohesion is None else f"{summary.cohesion:.3f}"
    stats = [stat("classes", f"{summary.count:,}", value_first=True),
             stat(cohesion_label, cohesion, value_first=True)]
    if summary.node is not None:
        title = f"Subtree of node {summary.node}"
        stats.append(stat("merge height", f"{view.layout.y[summary.node]:.3g}", value_first=True))
        stats.extend(wordnet_node_stats(services, view, summary.node))
    else:
        title = "Lasso selection"
    labels = view.clusters(sel.cut)
    if labels is not None:
        stats.append(stat("clusters touched", f"{len(np.unique(labels[summary.indices]))}",
                          value_first=True))
    items = [view.names[i] for i in summary.indices[:SUBTREE_LIST_LIMIT]]
    more = (f"… and {summary.count - SUBTREE_LIST_LIMIT:,} more: download the CSV"
            if summary.count > SUBTREE_LIST_LIMIT else "")
    can_zoom = summary.node is not None and summary.node != valid_node(view, sel.zoom)
    return title, stats, items, more, not can_zoom, not zoomed, False


def wordnet_node_stats(services: Services, view: ModelView, node: int) -> list:
    """Side-panel stats of a node's WordNet name and purity (none without WordNet)."""
    wordnet = wordnet_for(services, view)
    if not wordnet.available or wordnet.names is None or node < view.num_classes:
        return []
    names, r = wordnet.names, node - view.num_classes
    return [stat("WordNet name", f"{names.name[r]} ({names.fraction[r]:.0%} of its classes)",
                 value_first=True),
            stat("purity (best match: " + names.purity_synset[r] + ")",
                 f"{names.purity[r]:.2f}", value_first=True)]


def zoom_logic(triggered: str | None, clicks: int | None, selection: dict | None) -> dict:
    """Zoom / whole tree / clear buttons → the new selection.

    ``clicks`` is the pressed button's ``n_clicks``: Dash also calls this when the page
    is inserted (with 0 clicks), which must change nothing.
    """
    if not selection or not clicks:
        raise PreventUpdate
    if triggered == ids.ZOOM_BUTTON and selection.get("node") is not None:
        return update_selection(selection, zoom=selection["node"])
    if triggered == ids.UNZOOM_BUTTON:
        return update_selection(selection, zoom=None)
    if triggered == ids.CLEAR_SELECTION:
        return update_selection(selection, node=None, classes=None)
    raise PreventUpdate


# -- nearest classes --------------------------------------------------------------------------------


def neighbours_logic(services: Services, selection: dict | None, status: dict | None) -> tuple:
    """→ (bar chart, table) of the focal class's nearest classes.

    The table is ``{"header": [...], "rows": [[rank, name, id, score], ...], "code": [2],
    "numeric": [0, 3]}`` (column indices shown as code / right-aligned), or None;
    ``classmap.renderTable`` draws it.
    """
    sel, view, message = ready_view(services, selection, status)
    if view is None:
        return figures.message_figure(message, height=300), None
    focal = focal_index(view, sel)
    if focal is None:
        return (figures.message_figure("Pick a focal class above (search by name or id),<br>"
                                       "or click a heatmap row or a class-map point", height=300),
                None)
    rows = services.neighbours(view, focal, sel.k)
    colours = neighbour_colours(view, sel, rows.indices)
    kind = METRIC_KIND[rows.metric]
    score_label = "cosine similarity" if kind == "similarity" else "Euclidean distance"
    names = [view.names[i] for i in rows.indices]
    figure = figures.neighbours_figure(
        [short_name(n) for n in names], [view.ids[i] for i in rows.indices], rows.scores,
        score_label=f"{score_label} to {view.short_names[focal]}", colours=colours,
        higher_is_closer=kind == "similarity", num_features=int(view.head.weight.shape[1]),
    )
    table = {
        "header": ["#", "class", "id", score_label],
        "explain": ["rank: 1 = the nearest class", "the neighbouring class",
                    "the class's id (WordNet id for ImageNet)", explain("score")],
        "rows": [[str(rank), name, view.ids[i], f"{float(score):.4f}"]
                 for rank, (i, name, score) in enumerate(zip(rows.indices, names, rows.scores), 1)],
        "code": [2], "numeric": [0, 3],
    }
    return figure, table


def neighbour_colours(view: ModelView, sel: Selection, indices: np.ndarray) -> list[str] | None:
    """The nearest classes' bar colours: their clusters of the cut, or None (no cut)."""
    labels = view.clusters(sel.cut)
    return None if labels is None else figures.cluster_colours(labels[indices]).tolist()


def neighbours_view_logic(services: Services, selection: dict | None, status: dict | None,
                          rendered: dict | None) -> tuple:
    """→ (bar chart or no_update, table or no_update, overlay or no_update, rendered key):
    :data:`NEIGHBOURS_OUTPUTS`.

    A change of the cut alone recolours the bars drawn (``rendered`` says for what): an
    overlay of their colours (≈ 0.3 kB, a restyle of k bars in the browser) instead of
    a new chart (≈ 4 kB, built, sent and drawn anew — ≈ 40–90 ms of the browser's time
    under load). The rows are the same then. So they are after a linkage switch (the
    scores depend on the model and the metric): a new tree only recolours the bars of a
    cut, and leaves them be without one."""
    sel, view, _message = ready_view(services, selection, status)
    focal = focal_index(view, sel) if view is not None else None
    if view is None or focal is None:
        figure, table = neighbours_logic(services, selection, status)
        return figure, table, no_update, None
    key = {"scores": [sel.model, sel.metric], "focal": view.class_id(focal), "k": sel.k}
    drawn = {**key, "cut": sel.cut, "tree": list(sel.tree_key)}
    if isinstance(rendered, dict) and {k: rendered.get(k) for k in key} == key:
        same_colours = not sel.cut or rendered.get("tree") == drawn["tree"]
        if rendered.get("cut") == sel.cut and same_colours:
            return no_update, no_update, no_update, no_update
        rows = services.neighbours(view, focal, sel.k)
        colours = neighbour_colours(view, sel, rows.indices)
        overlay = {"traces": {0: {"marker.color": colours if colours is not None
                                  else [figures.NEIGHBOUR_COLOUR] * len(rows.indices)}}}
        return no_update, no_update, overlay, drawn
    figure, table = neighbours_logic(services, selection, status)
    return figure, table, no_update, drawn


def picker_options(services: Services, resolved: dict[str, Any]) -> list[dict[str, str]]:
    """The class picker's options in the page's layout: the resolved focal class's own
    (a provisional one named by its id while the analysis is not in memory), or none."""
    selection = resolved.get("selection") or {}
    focal = selection.get("focal")
    if not focal:
        return []
    if (resolved.get("status") or {}).get("state") == "ready":
        view = services.view(tuple(resolved["status"]["key"]))
        index = view.find_class(focal)
        if index is not None:
            return [focal_option(view, index)]
    return provisional_options(focal)


def focal_options_logic(services: Services, search: str | None, value: str | None,
                        selection: dict | None, status: dict | None,
                        triggered: str | None) -> tuple[list[dict], Any]:
    """→ (options the class picker gets now, every option for the browser to add later).

    Up to FOCAL_ALL_OPTIONS classes every class is an option and the browser filters
    them as the user types (no round trip per keystroke). The picker first gets only
    the current class's option (it shows the value; Dash's dropdown drops a value that
    is not among its options); the full list goes to a store the browser hands to the
    picker when the page is idle: indexing 1,000 options (every substring of every
    word) costs the page load ≈ 0.1 s before the views are drawn otherwise. Above
    FOCAL_ALL_OPTIONS the server searches, keeping the current value's option first.
    """
    sel, view, _ = ready_view(services, selection, status)
    if view is None:
        # Keep the picker's options (the focal class's provisional one): without an option
        # for its value Dash's dropdown clears it, and the shared link's focal class with it.
        return no_update, no_update
    current = view.find_class(value or sel.focal or "") if (value or sel.focal) else None
    if view.num_classes <= FOCAL_ALL_OPTIONS:
        if triggered == ids.FOCAL:
            raise PreventUpdate  # the browser already has every option
        every = [focal_option(view, index) for index in range(view.num_classes)]
        return ([every[current]] if current is not None else []), every
    options: list[dict] = []
    if current is not None:
        options.append(focal_option(view, current))
    if search:
        for index in view.search_classes(search, limit=40):
            if index != current:
                options.append(focal_option(view, index))
    return options, no_update


def ready_model(status: dict | None) -> str | None:
    """The model of a ready analysis status, or None."""
    if not isinstance(status, dict) or status.get("state") != "ready":
        return None
    key = status.get("key")
    return key[0] if isinstance(key, list) and key and isinstance(key[0], str) else None


def focal_options_view_logic(services: Services, search: str | None, value: str | None,
                             selection: dict | None, status: dict | None,
                             triggered: str | None, sent: str | None) -> tuple:
    """→ (the picker's options, every option, the model they are of): :func:`focal_options_logic`,
    except that a new status for the model whose options the page has (``sent``: a
    metric or linkage switch) changes nothing — the classes are the model's, and sending
    them again cost the switch ≈ 80 kB and ≈ 60 ms of the browser re-indexing 1,000
    options."""
    model = ready_model(status)
    if triggered != ids.FOCAL and model is not None and model == sent:
        return no_update, no_update, no_update
    options, every = focal_options_logic(services, search, value, selection, status, triggered)
    return options, every, model if options is not no_update else no_update


# -- class map -------------------------------------------------------------------------------------


def map_colours(view: ModelView, sel: Selection) -> dict[str, Any]:
    """The class map's overlay that recolours its points for the selection's cut (a
    restyle of a few ms): sent by the heatmap's and dendrogram's callback, which reads
    the cut and the analysis the clusters come from, in the same response as the tree's
    new colours."""
    labels = view.clusters(sel.cut)
    colours = figures.cluster_codes(labels).tolist() if labels is not None else figures.MAP_COLOUR
    return {"traces": {figures.MAP_POINTS: {"marker.color": colours}}}


def class_map_logic(services: Services, selection: dict | None, status: dict | None,
                    done: dict | None, rendered: dict | None) -> tuple:
    """→ (full figure or no_update, overlay or no_update, rendered key, note, job request).

    The map's points depend on the model and the embedding shown only (not on the metric
    or the linkage): those draw it in full, coloured by the selection's cut. The
    selection's rings and the focal star are overlays; later colours come from the
    heatmap's and dendrogram's callback (:func:`map_colours`)."""
    sel, view, message = ready_view(services, selection, status)
    if view is None:
        return figures.message_figure(message), no_update, None, "", no_update
    method = sel.embedding
    job: Any = no_update
    shown = method
    note = ""
    failed = (done or {}).get("state") == "error" and done.get("model") == sel.model \
        and done.get("method") == method
    if failed:
        shown = "pca"
        note = f"{EMBEDDING_LABELS[method]} failed: {done.get('message')}; showing PCA."
    elif not services.embedding_ready(sel.model, method) and not current_identity().is_operator:
        shown = "pca"  # the server refuses the job anyway (app/hosting/access.py)
        note = (f"{EMBEDDING_LABELS[method]} is not computed yet and starting it needs the "
                "operator role; showing PCA.")
    elif not services.embedding_ready(sel.model, method):
        shown = "pca"
        note = (f"Computing {EMBEDDING_LABELS[method]} in the background (progress above); "
                "showing PCA meanwhile.")
        if (rendered or {}).get("requested") != [sel.model, method]:
            job = job_request(sel.model, method=method)
    embedding = services.embedding(sel.model, shown)
    coords = embedding.coords
    summary = summarise(services, view, sel)
    selected = summary.indices if summary is not None else None
    focal = focal_index(view, sel)
    focal_mark = None if focal is None else (float(coords[focal, 0]), float(coords[focal, 1]),
                                             view.short_names[focal])
    labels = view.clusters(sel.cut)
    colours = figures.cluster_codes(labels) if labels is not None else None
    base = {"model": sel.model, "shown": shown}
    requested = [sel.model, method] if job is not no_update else (rendered or {}).get("requested")
    if not note:
        if shown == "pca" and embedding.explained:
            a, b = embedding.explained
            note = (f"PCA of the standardised head rows: the axes explain {100 * a:.1f}% and "
                    f"{100 * b:.1f}% of the variance.")
        else:
            note = (f"{EMBEDDING_LABELS[shown]} of the standardised head rows, with cosine "
                    "distances whatever the Metric above (the map does not depend on it).")
    # What the selection's rings and the focal star show (a node's classes depend on the tree).
    marks = [sel.metric, sel.linkage, sel.node, list(sel.classes), sel.focal]
    if not rendered or {k: rendered.get(k) for k in base} != base:
        key = {**base, "marks": marks, "requested": requested}
        axes = (("PC 1", "PC 2") if shown == "pca" else
                (f"{EMBEDDING_LABELS[shown]} 1", f"{EMBEDDING_LABELS[shown]} 2"))
        figure = figures.class_map_figure(
            coords, view.names, colours=colours, selected=selected, focal=focal_mark,
            axis_titles=axes, uirevision=repr(base), webgl=services.settings.webgl,
        )
        return figure, no_update, key, note, job
    # Only what changed: new rings or a new star move points (plotly recomputes the whole
    # map, ≈ 100 ms, drawn when the page is idle).
    traces: dict[int, dict[str, Any]] = {}
    if rendered.get("marks") != marks:
        traces[figures.MAP_SELECTED] = figures.class_map_selected(coords, selected)
        traces[figures.MAP_FOCAL] = figures.class_map_focal(focal_mark)
    changes = {"marks": marks, "requested": requested}
    key: Any = no_update
    if any(rendered.get(name) != value for name, value in changes.items()):
        key = {**rendered, **changes}
    return no_update, ({"traces": traces} if traces else no_update), key, note, job


def compute_embedding_logic(services: Services, report: Any, job: dict | None) -> dict:
    """Background job: compute (and cache) the class map ``job["method"]``."""
    if not job:
        raise PreventUpdate
    model, method = job["model"], job["method"]
    label = EMBEDDING_LABELS.get(method, method)
    progress = CallbackProgress(lambda step, fraction: report(f"{label} of {model}: {step}…"))
    try:
        services.embedding(model, method, progress=progress)
    except ClassmapError as error:
        return embed_done(job, "error", str(error))
    return embed_done(job, "ready")


def embed_done(job: dict, state: str, message: str = "") -> dict:
    """The embedding job's outcome: ``{"model", "method", "id", "state", "message"}``."""
    return {"model": job.get("model"), "method": job.get("method"), "id": job.get("id"),
            "state": state, "message": message}


def cancel_embedding_logic(n_clicks: int | None, job: dict | None, done: dict | None,
                           rendered: dict | None, selection: dict | None) -> tuple:
    """Cancel of the map's job → (selection back to the map actually shown, rendered key
    that forgets the request, cancelled outcome) — so the toggle and the URL say what
    the map shows and asking for the method again starts a new job."""
    job, done, rendered = (v if isinstance(v, dict) else None for v in (job, done, rendered))
    pending = bool(job) and (done or {}).get("id") != job.get("id")
    if not n_clicks or not pending or not isinstance(selection, dict):
        raise PreventUpdate
    shown = (rendered or {}).get("shown") or "pca"
    key = {**rendered, "requested": None} if rendered else no_update
    return (update_selection(selection, embedding=shown), key,
            embed_done(job, "cancelled", "cancelled"))


def watch_embedding_logic(manager: Any, job: dict | None, done: dict | None) -> tuple:
    """A watchdog tick → (outcome or no_update, job label or no_update, interval disabled).

    A job that died, hung, overran or could not write becomes an ``error`` outcome (the
    map says why and offers Retry); a queued one says so in the job's label."""
    job, done = (v if isinstance(v, dict) else None for v in (job, done))
    # The job has ended when its outcome names it and is not "pending" (Retry's pending
    # outcome names the new job, which still needs watching).
    ended = (done or {}).get("id") == job.get("id") and (done or {}).get("state") != "pending" \
        if job else True
    if not job or ended or manager is None:
        return no_update, no_update, True
    verdict = manager.check(job.get("id"), job.get("requested"))
    if verdict is None:
        return no_update, no_update, False
    if verdict.state == "error":
        return embed_done(job, "error", verdict.message), no_update, True
    return no_update, verdict.message or no_update, False


def embed_failure_logic(done: dict | None) -> tuple[bool, str]:
    """The map job's outcome → (failure bar hidden, its text); a value that is not an
    outcome (a forged request) hides the bar."""
    if not isinstance(done, dict) or done.get("state") != "error":
        return True, ""
    method, message = done.get("method"), done.get("message", "")
    label = EMBEDDING_LABELS.get(method, method) if isinstance(method, str) else "the map"
    return False, f"{label} failed: {message if isinstance(message, str) else ''}"


def retry_embedding_logic(n_clicks: int | None, done: dict | None,
                          rendered: dict | None) -> tuple:
    """Retry after a failed map job → (a new job, rendered key naming it, pending outcome)."""
    if not n_clicks or not isinstance(done, dict) or done.get("state") != "error" or not all(
            isinstance(done.get(field), str) for field in ("model", "method")):
        raise PreventUpdate
    rendered = rendered if isinstance(rendered, dict) else None
    job = job_request(done["model"], method=done["method"])
    key = {**rendered, "requested": [done["model"], done["method"]]} if rendered else no_update
    return job, key, embed_done(job, "pending")


def lasso_logic(services: Services, selected: dict | None, selection: dict | None) -> dict:
    """Lasso/box selection in the class map → the selection's ``classes``.

    ``None`` (a double-click deselect, and also what Dash sends when the page is
    inserted) changes nothing; the panel's Clear button clears.
    """
    if not selection or not selected:
        raise PreventUpdate
    points = selected.get("points") or []
    # Points are in class order, so a point's index is its class index.
    classes = sorted({int(p["pointIndex"]) for p in points
                      if p.get("curveNumber") == figures.MAP_POINTS and "pointIndex" in p})
    if not classes:
        raise PreventUpdate
    value = classes
    if value == selection.get("classes"):
        raise PreventUpdate
    return update_selection(selection, classes=value)


def map_click_logic(services: Services, click: dict | None, selection: dict | None,
                    status: dict | None) -> dict:
    """Click on a class-map point → that class becomes the focal class."""
    points = (click or {}).get("points") or []
    if not points or points[0].get("curveNumber") != figures.MAP_POINTS:
        raise PreventUpdate
    sel, view, _ = ready_view(services, selection, status)
    if view is None:
        raise PreventUpdate
    focal = view.class_id(int(points[0]["pointIndex"]))
    if focal == sel.focal:
        raise PreventUpdate
    return update_selection(selection or {}, focal=focal)


# -- summary and exports ----------------------------------------------------------------------------


def cut_range_logic(services: Services, status: dict | None,
                    selection: dict | None) -> tuple[int, dict[int, str]]:
    """The cut slider's max and marks for the model: at most C − 1 clusters."""
    _sel, view, _message = ready_view(services, selection, status)
    if view is None:
        raise PreventUpdate
    limit = cut_limit(view.head.num_classes)
    return limit, cut_marks(limit)


def model_summary_logic(services: Services, status: dict | None,
                        selection: dict | None) -> Any:
    """The strip under the header: what model, how many classes, which analysis."""
    sel, view, message = ready_view(services, selection, status)
    if view is None:
        state = (status or {}).get("state")
        css = "cm-summary-error" if state == "error" else "cm-muted"
        return html.Span(message, className=css)
    head = view.head
    analysis = view.analysis
    timing = ("from the cache" if analysis.from_cache
              else f"computed in {sum(analysis.seconds.values()):.2f} s")
    return [
        html.Div([html.Span(view.entry.label, className="cm-summary-model"),
                  html.Span(redact_paths(head.source), className="cm-summary-source")],
                 className="cm-summary-title"),
        html.Div([
            stat("classes", f"{head.num_classes:,}", value_first=True),
            stat("features per class", f"{head.feature_dim:,}", value_first=True),
            stat("class names", head.classes.source, value_first=True),
            stat("score", METRIC_LABELS[view.metric], value_first=True),
            stat("tree", f"{sel.linkage} linkage", value_first=True),
            stat("analysis", timing, value_first=True),
            wordnet_summary(wordnet_for(services, view)),
        ], className="cm-stats cm-summary-stats"),
    ]


def export_logic(services: Services, triggered: str | None, selection: dict | None,
                 status: dict | None) -> dict:
    """Export buttons → a dcc.Download payload (CSV or Newick)."""
    sel, view, message = ready_view(services, selection, status)
    if view is None:
        raise ClassmapError(f"nothing to export yet ({message}); wait for the analysis")
    stem = f"{sel.model}_{sel.metric}_{sel.linkage}"
    if triggered == ids.EXPORT_NEIGHBOURS:
        focal = focal_index(view, sel)
        if focal is None:
            raise ClassmapError("no focal class to export neighbours of; pick a focal class first")
        return dcc.send_string(services.neighbours_csv(view, focal),
                               f"{stem}_neighbours_{_safe(view.ids[focal])}.csv")
    if triggered == ids.EXPORT_SUBTREE:
        summary = summarise(services, view, sel)
        if summary is None:
            raise ClassmapError("no classes are selected; click a tree node or lasso points first")
        suffix = f"node{summary.node}" if summary.node is not None else "lasso"
        return dcc.send_string(services.selection_csv(view, summary, sel.cut),
                               f"{stem}_{suffix}.csv")
    if triggered == ids.EXPORT_NEWICK:
        return dcc.send_string(services.newick(view), f"{stem}.nwk")
    raise PreventUpdate


def _safe(text: str) -> str:
    return "".join(ch if ch.isalnum() or ch in "-_." else "_" for ch in text)[:60]


# -- the views' callbacks ---------------------------------------------------------------------------
#
# Each view listens to the selection projected onto the fields it reads (a store that the
# browser updates only when one of them changes: project_selection), so a change costs a
# request, a response and a redraw only for the views that show it — top-k redraws the
# nearest classes alone, a new layout the class map alone, a new focal class no panel.
# The heatmap and the dendrogram read the same fields and share one request.
# tests/app/pages/classes/test_view_fields.py checks that every other field leaves each
# view's outputs as they were.
MATRIX_FIELDS = ("model", "metric", "linkage", "zoom", "node", "classes", "focal", "cut")
PANEL_FIELDS = ("model", "metric", "linkage", "zoom", "node", "classes", "cut")
# The class map's cut colours come with the tree's (map_colours); a full redraw reads the
# cut from the whole selection.
CLASS_MAP_FIELDS = ("model", "metric", "linkage", "node", "classes", "focal", "embedding")
NEIGHBOURS_FIELDS = ("model", "metric", "linkage", "focal", "k", "cut")
PANEL_OUTPUTS = ((ids.SUBTREE_TITLE, "children"), (ids.SUBTREE_STATS, "children"),
                 (ids.SUBTREE_ITEMS, "data"), (ids.SUBTREE_MORE, "children"),
                 (ids.ZOOM_BUTTON, "disabled"),
                 (ids.UNZOOM_BUTTON, "disabled"), (ids.CLEAR_SELECTION, "disabled"))
HEATMAP_OUTPUTS = ((ids.HEATMAP_FIGURE, "data"), (ids.HEATMAP_OVERLAY, "data"),
                   (ids.HEATMAP_KEY, "data"), (ids.HEATMAP_NOTE, "children"))
DENDROGRAM_OUTPUTS = ((ids.DENDROGRAM_FIGURE, "data"), (ids.DENDROGRAM_OVERLAY, "data"),
                      (ids.DENDROGRAM_KEY, "data"))
MATRIX_OUTPUTS = HEATMAP_OUTPUTS + DENDROGRAM_OUTPUTS + ((ids.CLASS_MAP_COLOURS, "data"),)
CLASS_MAP_OUTPUTS = ((ids.CLASS_MAP_FIGURE, "data"), (ids.CLASS_MAP_OVERLAY, "data"),
                     (ids.CLASS_MAP_KEY, "data"), (ids.EMBEDDING_NOTE, "children"),
                     (ids.EMBED_JOB, "data"))
VIEW_OUTPUTS = MATRIX_OUTPUTS + PANEL_OUTPUTS + CLASS_MAP_OUTPUTS
NEIGHBOURS_OUTPUTS = ((ids.NEIGHBOURS, "figure"), (ids.NEIGHBOURS_ROWS, "data"),
                      (ids.NEIGHBOURS_OVERLAY, "data"), (ids.NEIGHBOURS_RENDERED, "data"))


def status_behind(services: Services, selection: dict | None, status: dict | None) -> bool:
    """Whether the shell's status still answers another analysis than the selection's: a
    model, metric or linkage switch whose answer is on its way (one request, or a job).
    The views keep what they show until it comes — and it fires them again — instead of
    drawing "Preparing the analysis…" and then everything anew. (A switch among the
    analyses the server holds has its status made in the browser with the selection:
    ``classmap.js``'s ``analysisKey``.)"""
    if not isinstance(selection, dict) or not isinstance(status, dict) or not status.get("key"):
        return False
    sel = Selection.from_store(selection, services.settings.default_model)
    return status.get("key") != list(sel.analysis_key)


def guarded(outputs: tuple, compute: Callable[[], tuple],
            on_error: Callable[[Exception], None] | None) -> tuple:
    """``compute()``, or ``no_update`` for every output when it fails (``on_error`` is
    told; None re-raises): a failing view keeps its previous state and spares the others."""
    try:
        return tuple(compute())
    except PreventUpdate:
        return (no_update,) * len(outputs)
    except Exception as error:  # noqa: BLE001 — reported, the other views go on
        if on_error is None:
            raise
        on_error(error)
        return (no_update,) * len(outputs)


def matrix_logic(services: Services, selection: dict | None, status: dict | None,
                 zoom: dict | None, zoomed: bool, rendered: dict[str, Any],
                 on_error: Callable[[Exception], None] | None = None) -> tuple:
    """The heatmap's and the dendrogram's outputs (:data:`MATRIX_OUTPUTS`) for the
    selection's :data:`MATRIX_FIELDS`: full figures or overlays.

    ``zoomed``: the heatmap was zoomed (only it is redrawn). ``rendered``: the views'
    rendered keys (``heatmap``, ``dendrogram``). A view whose logic fails keeps its
    previous state (``on_error`` is told; None re-raises)."""
    heatmap = guarded(HEATMAP_OUTPUTS, lambda: update_heatmap_logic(
        services, selection, status, zoom, rendered.get("heatmap"),
        ids.HEATMAP if zoomed else None), on_error)
    if zoomed:
        return heatmap + (no_update,) * (len(DENDROGRAM_OUTPUTS) + 1)
    tree = guarded(DENDROGRAM_OUTPUTS, lambda: update_dendrogram_logic(
        services, selection, status, rendered.get("dendrogram")), on_error)
    # A new tree key (a new cut or a full redraw) → the class map's points recoloured too.
    colours: Any = no_update
    if tree[2] is not no_update and tree[2] is not None:
        sel, view, _ = ready_view(services, selection, status)
        if view is not None:
            colours = map_colours(view, sel)
    return heatmap + tree + (colours,)


def class_map_view_logic(services: Services, selection: dict | None, status: dict | None,
                         done: dict | None, rendered: dict | None, triggered: list[str],
                         on_error: Callable[[Exception], None] | None = None) -> tuple:
    """The class map's outputs (:data:`CLASS_MAP_OUTPUTS`) for the selection's
    :data:`CLASS_MAP_FIELDS`.

    The callback also listens to the dendrogram's rendered key, only so that
    dash-renderer sends it after the heatmap's and dendrogram's request whenever both
    are due (the first render: the map is a secondary view, ≈ 0.7 MB and ≈ 0.8 s of
    drawing at 21k classes). ``triggered``: the ``id.prop`` that fired it; the tree's
    key alone (a zoom, which the map does not show) changes nothing."""
    if triggered and set(triggered) <= {f"{ids.DENDROGRAM_KEY}.data"}:
        return (no_update,) * len(CLASS_MAP_OUTPUTS)
    return guarded(CLASS_MAP_OUTPUTS, lambda: class_map_logic(
        services, selection, status, done, rendered), on_error)


def views_logic(services: Services, selection: dict | None, status: dict | None,
                zoom: dict | None = None, zoomed: bool = False,
                rendered: dict[str, Any] | None = None,
                on_error: Callable[[Exception], None] | None = None) -> tuple:
    """Every view the selection drives, in :data:`VIEW_OUTPUTS` order, as their own
    callbacks compute them (each from its fields only): for tests and the server-side
    benchmark (benchmarks/bench_scale_app.py), which look at a render whole. ``zoomed``:
    the heatmap was zoomed (the other views are not asked)."""
    rendered = rendered or {}

    def projected(fields: tuple[str, ...]) -> dict | None:
        return None if selection is None else {name: selection.get(name) for name in fields}

    matrix = matrix_logic(services, projected(MATRIX_FIELDS), status, zoom, zoomed, rendered,
                          on_error)
    if zoomed:
        return matrix + (no_update,) * (len(VIEW_OUTPUTS) - len(MATRIX_OUTPUTS))
    return (matrix
            + guarded(PANEL_OUTPUTS, lambda: selection_panel_logic(
                services, projected(PANEL_FIELDS), status), on_error)
            + class_map_view_logic(services, selection, status,
                                   rendered.get("embed_done"), rendered.get("class_map"), [],
                                   on_error))


# -- wiring -------------------------------------------------------------------------------------------


def register(app: Any, services: Services) -> None:
    """Wire the Classes page.

    Every callback listens to the page's own copies of the shared stores (never to the
    shell's next to a page Input), so no page reports missing Inputs on another.
    """
    mirror_shared_state(app, ids.CLASSES_SELECTION, ids.CLASSES_STATUS)
    name_downloads(app, ids.DOWNLOAD_FIELDS)
    # Server callbacks that change the selection write the page's request store.
    relay_selection_requests(app, ids.CLASSES_SELECT)
    select_request = Output(ids.CLASSES_SELECT, "data", allow_duplicate=True)
    status_in = Input(ids.CLASSES_STATUS, "data")
    selection_state = State(ids.CLASSES_SELECTION, "data")
    status_state = State(ids.CLASSES_STATUS, "data")

    @app.callback(Output(ids.MODEL_SUMMARY, "children"), status_in, selection_state)
    def model_summary(status, selection):
        return model_summary_logic(services, status, selection)

    # Views of the model alone listen to its {model, state}: a metric or linkage switch
    # costs them no request.
    project_model_status(app, ids.CLASSES_MODEL_STATUS, ids.CLASSES_STATUS)
    model_status_in = Input(ids.CLASSES_MODEL_STATUS, "data")

    @app.callback(Output(ids.CUT_SLIDER, "max"), Output(ids.CUT_SLIDER, "marks"),
                  model_status_in, status_state, selection_state)
    def cut_range(_model_status, status, selection):
        return cut_range_logic(services, status, selection)

    # The class map is a secondary view: its overlays are drawn when the page is idle,
    # so a click in the tree updates the panel and the heatmap first.
    for store, graph_id in ((ids.HEATMAP_FIGURE, ids.HEATMAP),
                            (ids.DENDROGRAM_FIGURE, ids.DENDROGRAM),
                            (ids.CLASS_MAP_FIGURE, ids.CLASS_MAP)):
        clientside(app, "decodeFigure", Output(graph_id, "figure"), Input(store, "data"),
                   constants={"graph": graph_id}, prevent_initial_call=True)
    # The class map's new colours (a restyle of its points, ≈ 40–55 ms at 1,000 classes)
    # are drawn right after the heatmap and tree that came in the same response.
    for overlay, graph_id, deferred in ((ids.HEATMAP_OVERLAY, ids.HEATMAP, False),
                                        (ids.DENDROGRAM_OVERLAY, ids.DENDROGRAM, False),
                                        (ids.CLASS_MAP_OVERLAY, ids.CLASS_MAP, True),
                                        (ids.CLASS_MAP_COLOURS, ids.CLASS_MAP, "soon")):
        clientside(app, "applyOverlay", Output(overlay, "modified_timestamp"),
                   Input(overlay, "data"), State(graph_id, "figure"),
                   constants={"graph": graph_id, "deferred": deferred}, prevent_initial_call=True)

    # Heatmap zoom <-> dendrogram zoom through the selection's range (in the URL).
    zoom_graphs = {"heatmap": ids.HEATMAP, "dendrogram": ids.DENDROGRAM}
    clientside(app, "rangeFromZoom", Output(shell_ids.SELECTION, "data", allow_duplicate=True),
               Input(ids.HEATMAP, "relayoutData"), Input(ids.DENDROGRAM, "relayoutData"),
               State(ids.CLASSES_SELECTION, "data"), constants=zoom_graphs,
               prevent_initial_call=True)
    clientside(app, "applyRange", Output(ids.RANGE_SINK, "data"),
               Input(ids.CLASSES_SELECTION, "data"), Input(ids.HEATMAP, "figure"),
               Input(ids.DENDROGRAM, "figure"), constants=zoom_graphs)
    # Only zooms and resets reach the server (overlays' relayout events stop here).
    clientside(app, "heatmapZoom", Output(ids.HEATMAP_ZOOM, "data"),
               Input(ids.HEATMAP, "relayoutData"), prevent_initial_call=True)

    # The views: each listens to the selection's fields it reads (see MATRIX_FIELDS).
    for store, fields in ((ids.MATRIX_SELECTION, MATRIX_FIELDS),
                          (ids.PANEL_SELECTION, PANEL_FIELDS),
                          (ids.CLASS_MAP_SELECTION, CLASS_MAP_FIELDS)):
        project_selection(app, store, fields)

    from classmap.app.server import report_callback_error

    @app.callback(
        *(Output(component, prop) for component, prop in MATRIX_OUTPUTS),
        Input(ids.MATRIX_SELECTION, "data"), status_in, Input(ids.HEATMAP_ZOOM, "data"),
        State(ids.HEATMAP_KEY, "data"), State(ids.DENDROGRAM_KEY, "data"),
    )
    def matrix(selection, status, zoom, heatmap_key, dendrogram_key):
        if status_behind(services, selection, status):
            raise PreventUpdate
        rendered = {"heatmap": heatmap_key, "dendrogram": dendrogram_key}
        return matrix_logic(services, selection, status, zoom,
                            ctx.triggered_id == ids.HEATMAP_ZOOM, rendered, report_callback_error)

    @app.callback(*(Output(component, prop) for component, prop in PANEL_OUTPUTS),
                  Input(ids.PANEL_SELECTION, "data"), status_in)
    def selection_panel(selection, status):
        if status_behind(services, selection, status):
            raise PreventUpdate
        return selection_panel_logic(services, selection, status)

    # The tree's key as an Input: dash-renderer holds this request back while the
    # heatmap's and dendrogram's is in flight (class_map_view_logic).
    @app.callback(
        *(Output(component, prop) for component, prop in CLASS_MAP_OUTPUTS),
        Input(ids.CLASS_MAP_SELECTION, "data"), status_in, Input(ids.DENDROGRAM_KEY, "data"),
        State(ids.EMBED_DONE, "data"), State(ids.CLASS_MAP_KEY, "data"), selection_state,
    )
    def class_map(_fields, status, _tree, done, rendered, selection):
        # Fired by its fields; reads the whole selection (a full redraw's colours: the cut).
        if status_behind(services, selection, status):
            raise PreventUpdate
        triggered = [item["prop_id"] for item in ctx.triggered if item.get("prop_id") != "."]
        return class_map_view_logic(services, selection, status, done, rendered, triggered,
                                    report_callback_error)

    @app.callback(
        Output(ids.HEATMAP_TOOLTIP, "show"), Output(ids.HEATMAP_TOOLTIP, "bbox"),
        Output(ids.HEATMAP_TOOLTIP, "children"),
        Input(ids.HEATMAP, "hoverData"), selection_state,
        status_state, State(ids.HEATMAP_KEY, "data"),
        prevent_initial_call=True,
    )
    def heatmap_hover(hover, selection, status, rendered):
        return heatmap_hover_logic(services, hover, selection, status, rendered)

    @app.callback(
        select_request,
        Input(ids.HEATMAP, "clickData"), selection_state,
        status_state, State(ids.HEATMAP_KEY, "data"),
        prevent_initial_call=True,
    )
    def heatmap_click(click, selection, status, rendered):
        return heatmap_click_logic(services, click, selection, status, rendered)

    # A click on a node marker selects its subtree (again: deselects) — in the browser.
    select_on(app, Input(ids.DENDROGRAM, "clickData"), "dendrogramNode", ids.CLASSES_SELECTION,
              curve=figures.DENDRO_NODES)

    @app.callback(
        select_request,
        Input(ids.ZOOM_BUTTON, "n_clicks"), Input(ids.UNZOOM_BUTTON, "n_clicks"),
        Input(ids.CLEAR_SELECTION, "n_clicks"), selection_state,
        prevent_initial_call=True,
    )
    def zoom(zoom_clicks, unzoom_clicks, clear_clicks, selection):
        clicks = {ids.ZOOM_BUTTON: zoom_clicks, ids.UNZOOM_BUTTON: unzoom_clicks,
                  ids.CLEAR_SELECTION: clear_clicks}.get(ctx.triggered_id)
        return zoom_logic(ctx.triggered_id, clicks, selection)

    project_selection(app, ids.NEIGHBOURS_KEY, NEIGHBOURS_FIELDS)

    @app.callback(
        *(Output(component, prop) for component, prop in NEIGHBOURS_OUTPUTS),
        Input(ids.NEIGHBOURS_KEY, "data"), status_in, State(ids.NEIGHBOURS_RENDERED, "data"),
    )
    def neighbours(selection, status, rendered):
        if status_behind(services, selection, status):
            raise PreventUpdate
        return neighbours_view_logic(services, selection, status, rendered)

    # A cut's new bar colours: a restyle of the chart drawn (no new figure).
    clientside(app, "applyOverlay", Output(ids.NEIGHBOURS_OVERLAY, "modified_timestamp"),
               Input(ids.NEIGHBOURS_OVERLAY, "data"), State(ids.NEIGHBOURS, "figure"),
               constants={"graph": ids.NEIGHBOURS, "deferred": False}, prevent_initial_call=True)

    # A click on a neighbour's bar makes it the focal class — in the browser.
    select_on(app, Input(ids.NEIGHBOURS, "clickData"), "focalFromCustomdata",
              ids.CLASSES_SELECTION)

    @app.callback(
        Output(ids.FOCAL, "options"), Output(ids.FOCAL_ALL, "data"),
        Output(ids.FOCAL_ALL_MODEL, "data"),
        Input(ids.FOCAL, "search_value"), model_status_in, status_state,
        State(ids.FOCAL, "value"), selection_state, State(ids.FOCAL_ALL_MODEL, "data"),
    )
    def focal_options(search, _model_status, status, value, selection, sent):
        return focal_options_view_logic(services, search, value, selection, status,
                                         ctx.triggered_id, sent)

    # Lists drawn by the browser outside React (see classes_page.py), and the picker's
    # full option list handed over when the page is idle.
    for store, target, render in ((ids.SUBTREE_ITEMS, ids.SUBTREE_CLASSES, "renderList"),
                                  (ids.NEIGHBOURS_ROWS, ids.NEIGHBOURS_TABLE, "renderTable")):
        clientside(app, render, Output(store, "modified_timestamp"), Input(store, "data"),
                   constants={"target": target}, prevent_initial_call=True)
    clientside(app, "setWhenIdle", Output(ids.FOCAL_ALL, "modified_timestamp"),
               Input(ids.FOCAL_ALL, "data"), constants={"component": ids.FOCAL, "prop": "options"},
               prevent_initial_call=True)

    bind_field(app, ids.FOCAL, "focal", ids.CLASSES_SELECTION, picker=True)
    bind_fields(app, ((ids.CUT_SLIDER, "cut"), (ids.TOP_K, "k"),
                      (ids.EMBEDDING_PICKER, "embedding")), ids.CLASSES_SELECTION)

    # A finished background embedding redraws the map. Its own callback: with EMBED_DONE
    # as an Input of ``views`` (which requests the job), dash-renderer held the views'
    # first call back until every other callback of the page had returned (≈ 1 s).
    @app.callback(
        *(Output(component, prop, allow_duplicate=True) for component, prop in CLASS_MAP_OUTPUTS),
        Input(ids.EMBED_DONE, "data"), selection_state, status_state,
        State(ids.CLASS_MAP_KEY, "data"),
        prevent_initial_call=True,
    )
    def class_map_after_job(done, selection, status, rendered):
        return class_map_logic(services, selection, status, done, rendered)

    @app.callback(
        Output(ids.EMBED_DONE, "data"),
        Input(ids.EMBED_JOB, "data"),
        background=True,
        progress=[Output(ids.EMBED_LABEL, "children")],
        running=[(Output(ids.EMBED_PANEL, "hidden"), False, True),
                 (Output(ids.EMBED_CANCEL, "disabled"), False, True)],
        cancel=[Input(ids.EMBED_CANCEL, "n_clicks")],
        interval=400,
        prevent_initial_call=True,
    )
    def compute_embedding(set_progress, job):
        return compute_embedding_logic(services.for_background_job(), set_progress, job)

    @app.callback(
        select_request,
        Output(ids.CLASS_MAP_KEY, "data", allow_duplicate=True),
        Output(ids.EMBED_DONE, "data", allow_duplicate=True),
        Input(ids.EMBED_CANCEL, "n_clicks"), State(ids.EMBED_JOB, "data"),
        State(ids.EMBED_DONE, "data"), State(ids.CLASS_MAP_KEY, "data"), selection_state,
        prevent_initial_call=True,
    )
    def cancel_embedding(n_clicks, job, done, rendered, selection):
        return cancel_embedding_logic(n_clicks, job, done, rendered, selection)

    # The map job's watchdog: on while a job is pending (see app/shell/jobs.py).
    @app.callback(Output(ids.EMBED_WATCHDOG, "disabled", allow_duplicate=True),
                  Input(ids.EMBED_JOB, "data"), prevent_initial_call=True)
    def watch_new_embedding(job):
        return not job

    @app.callback(
        Output(ids.EMBED_DONE, "data", allow_duplicate=True),
        Output(ids.EMBED_LABEL, "children", allow_duplicate=True),
        Output(ids.EMBED_WATCHDOG, "disabled", allow_duplicate=True),
        Input(ids.EMBED_WATCHDOG, "n_intervals"), State(ids.EMBED_JOB, "data"),
        State(ids.EMBED_DONE, "data"),
        prevent_initial_call=True,
    )
    def watch_embedding(_ticks, job, done):
        return watch_embedding_logic(getattr(app, "_classmap_jobs", None), job, done)

    @app.callback(Output(ids.EMBED_FAILURE, "hidden"), Output(ids.EMBED_FAILURE_TEXT, "children"),
                  Input(ids.EMBED_DONE, "data"), prevent_initial_call=True)
    def embed_failure(done):
        return embed_failure_logic(done)

    # Retry also hides the failure bar itself: Dash holds back embed_failure (its input
    # is the running job's output) until the new job ends.
    @app.callback(
        Output(ids.EMBED_JOB, "data", allow_duplicate=True),
        Output(ids.CLASS_MAP_KEY, "data", allow_duplicate=True),
        Output(ids.EMBED_DONE, "data", allow_duplicate=True),
        Output(ids.EMBED_FAILURE, "hidden", allow_duplicate=True),
        Input(ids.EMBED_RETRY, "n_clicks"), State(ids.EMBED_DONE, "data"),
        State(ids.CLASS_MAP_KEY, "data"),
        prevent_initial_call=True,
    )
    def retry_embedding(n_clicks, done, rendered):
        return (*retry_embedding_logic(n_clicks, done, rendered), True)

    @app.callback(
        select_request,
        Input(ids.CLASS_MAP, "selectedData"), selection_state,
        prevent_initial_call=True,
    )
    def lasso(selected, selection):
        return lasso_logic(services, selected, selection)

    @app.callback(
        select_request,
        Input(ids.CLASS_MAP, "clickData"), selection_state,
        status_state,
        prevent_initial_call=True,
    )
    def map_click(click, selection, status):
        return map_click_logic(services, click, selection, status)

    @app.callback(
        Output(ids.DOWNLOAD, "data"),
        Input(ids.EXPORT_NEIGHBOURS, "n_clicks"), Input(ids.EXPORT_SUBTREE, "n_clicks"),
        Input(ids.EXPORT_NEWICK, "n_clicks"),
        selection_state, status_state,
        prevent_initial_call=True,
    )
    def export(_n, _s, _t, selection, status):
        return export_logic(services, ctx.triggered_id, selection, status)

    # Thumbnail strips of the classes' images (issue 14): their own module.
    from classmap.app.pages.classes import thumbnails
    thumbnails.register(app, services)
