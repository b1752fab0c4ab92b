"""Plotly figures of the Classes page, built from numpy arrays (no Dash here).

Every builder takes arrays and plain values and returns a ``go.Figure``; the parts
that change with the selection (outlines, highlighted links, the focal class) are
separate functions returning plain dicts/lists, so a callback can send them alone in
a ``dash.Patch`` instead of the whole figure.

Payload matters (the heatmap of 1,000 classes is a million cells): arrays go in as
numpy arrays, which plotly ships as base64 typed arrays. The similarity heatmap is an
``image`` trace holding a palette PNG of 8-bit colour codes (the colour scale has 255
steps anyway): about half the bytes of the codes as a typed array, and the browser
decodes it natively instead of plotly colouring a million cells in JavaScript (≈ 60 ms
instead of ≈ 300 ms to draw). Exact scores are shown on hover from the server.
"""

from __future__ import annotations

from functools import lru_cache
from typing import Any, Sequence

import numpy as np
import plotly.graph_objects as go
from classmap.app.shell.figures import ACCENT, GRID, INK, MUTED, SELECT, TEMPLATE as _TEMPLATE, TREE, message_figure
from classmap.app.shell.matrix_tiles import CODE_MAX, SCALES, ColourScale as Scale, codes_png, encode_codes

_TEMPLATE_JSON = _TEMPLATE.to_plotly_json()


def _figure(data: list[dict[str, Any]], layout: dict[str, Any]) -> go.Figure:
    """A ``go.Figure`` of plain ``data`` and ``layout`` dicts, not validated.

    plotly.py's validation (every property checked, every list copied) was most of a
    full view's server time — ≈ 45 ms of a 1,000-leaf dendrogram's ≈ 55 ms, ≈ 15 ms of
    the nearest-classes chart (benchmarks/profile_full_view.py) — for figures built
    here from known-good values; tests/app/pages/classes/test_figures.py checks that
    each builder's JSON is what the validated figure gave. Keys whose value is None
    are left out, and so is an empty list of shapes (as validation does)."""
    def clean(value: Any) -> Any:
        if isinstance(value, dict):
            return {k: clean(v) for k, v in value.items() if v is not None}
        return value

    layout = clean(layout)
    if not layout.get("shapes", True):
        del layout["shapes"]
    return go.Figure({"data": [clean(trace) for trace in data], "layout": layout},
                     _validate=False)


@lru_cache(maxsize=None)
def _colour_scale_stops(name: str) -> tuple[tuple[float, str], ...]:
    """A named plotly.py colour scale (``"RdBu_r"``) as ``(position, colour)`` stops:
    plotly.js knows neither the ``_r`` names nor all of plotly.py's; validation used to
    expand them."""
    return tuple((float(p), str(c))
                 for p, c in go.scatter.Marker(colorscale=name).to_plotly_json()["colorscale"])


def _colour_scale(scale: Any) -> Any:
    """``scale`` as plotly.js takes it: stops as lists (a name expanded)."""
    if isinstance(scale, str):
        return [list(stop) for stop in _colour_scale_stops(scale)]
    return scale

# Strong hues first, then their light partners, so neighbouring clusters differ in hue;
# grey is kept for "above the cut".
BASE_PALETTE = (
    "#1f77b4", "#ff7f0e", "#2ca02c", "#d62728", "#9467bd", "#8c564b", "#e377c2", "#bcbd22",
    "#17becf", "#aec7e8", "#ffbb78", "#98df8a", "#ff9896", "#c5b0d5", "#c49c94", "#f7b6d2",
    "#dbdb8d", "#9edae5",
)
GREY = "#9aa5b1"  # above the cut
CLUSTER_COLOURS = 60  # the largest cut the page offers (shell.selection.MAX_CUT)


def distinct_palette(size: int, base: Sequence[str] = BASE_PALETTE) -> tuple[str, ...]:
    """``base``, then colours spread round the hue circle (golden-ratio steps, three
    lightness/saturation levels in turn) until ``size`` distinct colours: a cut into
    ``size`` clusters never repeats a colour."""
    import colorsys

    def rgb(colour: str) -> np.ndarray:
        return np.array([int(colour[i:i + 2], 16) for i in (1, 3, 5)], dtype=float)

    colours = list(base[:size])
    points = [rgb(c) for c in colours + [GREY]]
    levels = ((0.42, 0.70), (0.62, 0.60), (0.30, 0.55), (0.52, 0.85))  # (lightness, saturation)
    step, gap = 0, 48.0  # the least RGB distance to every colour so far (and grey)
    while len(colours) < size:
        hue = (0.11 + step * 0.618033988749895) % 1.0
        lightness, saturation = levels[step % len(levels)]
        step += 1
        if step % 500 == 0:
            gap *= 0.8  # the hue circle is full at this distance: accept closer colours
        colour = "#{:02x}{:02x}{:02x}".format(
            *(round(255 * v) for v in colorsys.hls_to_rgb(hue, lightness, saturation)))
        point = rgb(colour)
        if min(np.linalg.norm(point - p) for p in points) >= gap:
            points.append(point)
            colours.append(colour)
    return tuple(colours)


CLUSTER_PALETTE = distinct_palette(CLUSTER_COLOURS)
TICK_LABEL_LIMIT = 100  # axes with at most this many classes get class-name ticks (issue 13)
# The tree's leaves (≈ 400–900 px wide, 9 px labels at −60°) name at most this many
# classes: all up to it, else every k-th; the heatmap below names every column up to
# TICK_LABEL_LIMIT.
LEAF_LABELS = 50
LEAF_LABEL_CHARS = 16
TICK_LABEL_CHARS = 24
TICK_CHAR_PX = 6.3  # width of a character of an 11 px tick label (sizes margins)


def thinned_labels(names: Sequence[str], keep: Sequence[int] = (),
                   most: int = LEAF_LABELS) -> list[str]:
    """Labels for consecutive leaf positions: every name when at most ``most``, else
    every k-th (k = ⌈n / most⌉) and the positions in ``keep`` (selected classes); ""
    for the others."""
    count = len(names)
    if count <= most:
        return list(names)
    step = -(-count // most)
    shown = set(range(0, count, step)) | {k for k in keep if 0 <= k < count}
    return [names[k] if k in shown else "" for k in range(count)]


def matrix_margins(named: bool) -> dict[str, int]:
    """Margins shared by the dendrogram and the heatmap, so their x axes line up.

    ``named``: the heatmap labels its rows with class names (few classes shown).
    The right margin holds the heatmap's colour bar.
    """
    return dict(l=175 if named else 56, r=96, t=8, b=8)

def cluster_colour(label: int) -> str:
    """Colour of cluster ``label`` (palette cycled past :data:`CLUSTER_COLOURS`; −1 → grey,
    above the cut)."""
    if label < 0:
        return "#9aa5b1"
    return CLUSTER_PALETTE[label % len(CLUSTER_PALETTE)]


def cluster_colours(labels: np.ndarray) -> np.ndarray:
    """Hex colour of each label, shape like ``labels``."""
    palette = np.array(CLUSTER_PALETTE + ("#9aa5b1",))
    index = np.where(labels < 0, len(CLUSTER_PALETTE), labels % len(CLUSTER_PALETTE))
    return palette[index]


GREY_CODE = len(CLUSTER_PALETTE)  # colour code of "above the cut"


def cluster_codes(labels: np.ndarray) -> np.ndarray:
    """Colour code of each label (uint8: palette index, cycled; −1 → :data:`GREY_CODE`).

    Big traces carry these codes with :func:`cluster_marker` instead of one colour string
    per point: plotly.py validates each string (≈ 10 ms per 1,000 points) where it takes
    a numeric array whole, and the codes travel as a typed array.
    """
    labels = np.asarray(labels)
    return np.where(labels < 0, GREY_CODE, labels % len(CLUSTER_PALETTE)).astype(np.uint8)


def cluster_colorscale() -> list[list]:
    """A step colour scale mapping code ``k`` (with cmin −0.5, cmax GREY_CODE + 0.5) to
    the palette's ``k``-th colour and GREY_CODE to grey — same colours as
    :func:`cluster_colours`."""
    colours = CLUSTER_PALETTE + ("#9aa5b1",)
    steps = len(colours)
    scale = []
    for k, colour in enumerate(colours):
        scale += [[k / steps, colour], [(k + 1) / steps, colour]]
    return scale


def cluster_marker(codes: np.ndarray | None, plain: str) -> dict[str, Any]:
    """``marker`` colour settings: ``codes`` through the cluster scale, or ``plain``.

    The scale is set either way, so an overlay can switch between ``plain`` (a colour)
    and codes (a list) by restyling ``marker.color`` alone.
    """
    return dict(color=plain if codes is None else codes, colorscale=cluster_colorscale(),
                cmin=-0.5, cmax=GREY_CODE + 0.5, showscale=False)


# -- heatmap -------------------------------------------------------------------------------


def colour_bar(scale: Scale) -> dict[str, Any]:
    """A colour bar labelled in score units (the trace holds codes), ends marked ≤ / ≥."""
    values = np.linspace(scale.low, scale.high, 5)
    if scale.kind == "diverging":
        values[2] = 0.0
    codes = (values - scale.low) * (CODE_MAX / ((scale.high - scale.low) or 1.0))
    text = [f"{v:.2f}" if abs(v) >= 0.005 else "0" for v in values]
    text[0] = "≤ " + text[0]
    text[-1] = "≥ " + text[-1]
    return dict(title=dict(text=scale.label, side="right"), tickvals=codes.tolist(),
                ticktext=text, thickness=12, len=0.85, outlinewidth=0, x=1.0, xanchor="left",
                xpad=10)


def heatmap_figure(
    z: np.ndarray,
    scale: Scale,
    *,
    row_start: int,
    col_start: int,
    block: int,
    tick_names: Sequence[str] | None = None,
    shapes: Sequence[dict] = (),
    uirevision: str = "",
    height: int | None = None,
    source: str | None = None,
    row_stop: int | None = None,
    col_stop: int | None = None,
) -> go.Figure:
    """The ordered similarity matrix (or a block-averaged overview of it).

    Parameters
    ----------
    z : ndarray of shape (rows, cols) — scores (block means when ``block`` > 1)
    scale : colour mapping (diverging centred at 0 for similarities)
    row_start, col_start : leaf position of the first row / column
    block : leaf positions per cell (1 = every class)
    tick_names : names of the covered positions when few enough to label the axes
    shapes : overlay shapes (:func:`heatmap_shapes`)
    height : pixels, or None to fill the graph's container. A Dash graph with a CSS
        height must get None: a layout height that differs from the container makes
        every later update a full re-plot.
    source : the cells' PNG when already made (``codes_png(encode_codes(z, scale), …)``,
        kept by Services), else made here
    row_stop, col_stop : one past the last leaf position covered (``MatrixTile``'s), or
        None for ``start + cells · block``. The axes end there: the last block of an
        overview may cover fewer than ``block`` positions, and an axis reaching past the
        last class would differ from the dendrogram's, which the browser then zooms to
        (a second request for the same tile).

    Traces: 0 — the cells, an ``image`` whose pixel (r, c) is cell (r, c) as a palette
    PNG of :func:`encode_codes` (hover and click events carry the cell's x, y in leaf
    positions); 1 — an empty scatter that only carries the colour bar (image traces
    have none).
    """
    rows, cols = z.shape
    offset = (block - 1) / 2.0
    cells = dict(
        type="image", source=source or codes_png(encode_codes(z, scale), scale.kind),
        x0=col_start + offset, dx=block,
        y0=row_start + offset, dy=block, hoverinfo="none", name="scores",
    )
    colour_key = dict(
        type="scatter", x=[None], y=[None], mode="markers", hoverinfo="skip", showlegend=False,
        name="colour scale",
        marker=dict(color=[0], cmin=0, cmax=CODE_MAX, colorscale=_colour_scale(SCALES[scale.kind]),
                    showscale=True, colorbar=colour_bar(scale)),
    )
    named = tick_names is not None and len(tick_names) <= TICK_LABEL_LIMIT and block == 1
    small = tick_names is not None and len(tick_names) > 60
    margin = matrix_margins(named)
    if named:
        margin["b"] = 150
    col_end = col_start + cols * block if col_stop is None else col_stop
    row_end = row_start + rows * block if row_stop is None else row_stop
    # scaleanchor=False: an image trace would otherwise force square cells, and the
    # heatmap's x axis must line up with the dendrogram's above it.
    xaxis: dict[str, Any] = dict(range=[col_start - 0.5, col_end - 0.5], showticklabels=False,
                                 title={}, automargin=False)
    yaxis: dict[str, Any] = dict(range=[row_end - 0.5, row_start - 0.5], showticklabels=False,
                                 title={}, automargin=False, scaleanchor=False)
    if named:
        assert tick_names is not None
        labels = [_shorten(name, TICK_LABEL_CHARS) for name in tick_names]
        font = dict(size=8 if small else 10)
        xaxis.update(showticklabels=True, tickvals=np.arange(col_start, col_start + cols),
                     ticktext=labels, tickangle=-60, tickfont=font)
        yaxis.update(showticklabels=True, tickvals=np.arange(row_start, row_start + rows),
                     ticktext=labels, tickfont=dict(font))
    return _figure([cells, colour_key], dict(
        template=_TEMPLATE_JSON, height=height, uirevision=uirevision, margin=margin,
        shapes=list(shapes), dragmode="zoom", xaxis=xaxis, yaxis=yaxis,
    ))


def heatmap_shapes(
    *,
    clusters: Sequence[tuple[int, int, int]] = (),
    selection: tuple[int, int] | None = None,
    marked_runs: Sequence[tuple[int, int]] = (),
    focal: int | None = None,
    extent: tuple[int, int] | None = None,
) -> list[dict[str, Any]]:
    """Overlay shapes of the heatmap, in leaf positions.

    clusters : ``(label, first, last)`` of each cluster — coloured diagonal squares
    selection : ``(first, last)`` of a selected subtree — a bold square outline
    marked_runs : ``(first, last)`` runs of a lasso selection — bars along both edges
    focal : position of the focal class — a thin cross-hair through its row and column
    extent : ``(first, last)`` positions shown (cross-hair and bars span it)
    """
    shapes: list[dict[str, Any]] = []
    lo, hi = extent if extent is not None else (0, 0)
    for label, first, last in clusters:
        shapes.append(dict(type="rect", x0=first - 0.5, x1=last + 0.5, y0=first - 0.5,
                           y1=last + 0.5, line=dict(color=cluster_colour(label), width=1.5),
                           fillcolor="rgba(0,0,0,0)", layer="above", name="cluster"))
    if focal is not None:
        line = dict(color=ACCENT, width=1, dash="dot")
        shapes.append(dict(type="line", x0=lo - 0.5, x1=hi + 0.5, y0=focal, y1=focal, line=line,
                           layer="above", name="focal-row"))
        shapes.append(dict(type="line", x0=focal, x1=focal, y0=lo - 0.5, y1=hi + 0.5, line=line,
                           layer="above", name="focal-column"))
    for first, last in marked_runs:
        shapes.append(dict(type="rect", x0=first - 0.5, x1=last + 0.5, y0=lo - 0.5,
                           y1=lo - 0.5 + max(1.0, (hi - lo) / 60), fillcolor=SELECT,
                           line=dict(width=0), layer="above", name="lasso"))
        shapes.append(dict(type="rect", y0=first - 0.5, y1=last + 0.5, x0=lo - 0.5,
                           x1=lo - 0.5 + max(1.0, (hi - lo) / 60), fillcolor=SELECT,
                           line=dict(width=0), layer="above", name="lasso"))
    if selection is not None:
        first, last = selection
        shapes.append(dict(type="rect", x0=first - 0.5, x1=last + 0.5, y0=first - 0.5,
                           y1=last + 0.5, line=dict(color=SELECT, width=2.5),
                           fillcolor="rgba(0,0,0,0)", layer="above", name="selection"))
    return shapes


# -- dendrogram ---------------------------------------------------------------------------

DENDRO_LINKS, DENDRO_NODES, DENDRO_LABELS = range(3)
FOCAL_STRIP = 0.12  # fraction of the tree's height drawn below the leaves
DENDROGRAM_HEIGHT = 250  # px, the Classes page's tree (layout.py)
NODE_LABELS = 12  # at most this many nodes carry their name (the largest first)
# Node names are placed only where they cannot overlap. Their boxes are estimated in
# pixels for the narrowest tree the page draws: 444 px of plot at a 1,101 px window (at
# 1,100 px and below the cards stack and the tree is wider). A 10 px label character is
# ≈ 5.1 px wide in DejaVu Sans ("instrumentality": 76 px), 6.3 in short words ("dog"),
# so 5.6 per character plus a 4 px gap; a line is 11 px tall, drawn 3 px above its node.
NARROWEST_TREE_PX = 440
NODE_LABEL_CHAR_PX = 5.6
NODE_LABEL_PAD_PX = 4
NODE_LABEL_LINE_PX = 11
NODE_LABEL_RAISE_PX = 3


def apart_labels(x: np.ndarray, y: np.ndarray, texts: Sequence[str], *,
                 x_range: tuple[float, float], y_range: tuple[float, float],
                 plot_px: tuple[float, float], most: int = NODE_LABELS) -> list[int]:
    """Which labels to draw so that none overlaps another: greedy, in the given order.

    x, y : ndarrays of shape (n,) — each label's anchor (a node) in data coordinates;
        the label is centred above it ("top center")
    texts : the n labels, in order of priority
    x_range, y_range : the axes' ranges; plot_px : (width, height) of the plot in px
    Returns the indices of the kept labels (at most ``most``), in priority order.
    """
    sx = plot_px[0] / (x_range[1] - x_range[0])
    sy = plot_px[1] / (y_range[1] - y_range[0])
    kept: list[int] = []
    boxes: list[tuple[float, float, float, float]] = []
    for k, text in enumerate(texts):
        half = (NODE_LABEL_CHAR_PX * len(text) + NODE_LABEL_PAD_PX) / 2
        cx, bottom = (float(x[k]) - x_range[0]) * sx, (float(y[k]) - y_range[0]) * sy
        box = (cx - half, cx + half, bottom + NODE_LABEL_RAISE_PX,
               bottom + NODE_LABEL_RAISE_PX + NODE_LABEL_LINE_PX)
        if all(box[1] <= b[0] or b[1] <= box[0] or box[3] <= b[2] or b[3] <= box[2]
               for b in boxes):
            kept.append(k)
            boxes.append(box)
            if len(kept) == most:
                break
    return kept


def dendrogram_figure(
    link_x: np.ndarray,
    link_y: np.ndarray,
    node_x: np.ndarray,
    node_y: np.ndarray,
    node_ids: np.ndarray,
    node_sizes: np.ndarray,
    *,
    x_range: tuple[float, float],
    top: float,
    node_colours: np.ndarray | None = None,
    named: bool = False,
    overlays: dict[str, Any] | None = None,
    uirevision: str = "",
    height: int | None = None,
    wordnet_names: Sequence[str] | None = None,
    node_labels: Sequence[str] | None = None,
    leaf_labels: Sequence[str] | None = None,
) -> go.Figure:
    """A dendrogram as one line trace, one clickable marker per internal node and, when
    nodes are named, a text trace of their names.

    Parameters
    ----------
    link_x, link_y : ndarrays of shape (P,) — the links as polylines (TreeLayout.link_walk:
        one per tree, so the browser draws one SVG path instead of one per link)
    node_x, node_y, node_ids, node_sizes : ndarrays of shape (m,) — internal nodes
    x_range : leaf positions shown (aligned with the heatmap's columns)
    top : height of the highest node shown
    node_colours : ndarray of shape (m,) of cluster colour codes (:func:`cluster_codes`), or None
    named : whether the heatmap below labels its rows (sets the shared margins)
    overlays : layout parts from :func:`dendrogram_overlays` (selection, focal, clusters)
    wordnet_names : shape (m,) — each node's WordNet name ("crab (100 %)"), shown on
        hover; None when the classes have no WordNet ids
    node_labels : shape (m,) — a node's name to draw above it ("" for none); at most
        :data:`NODE_LABELS` are drawn, the largest nodes first, and none where it would
        overlap one already placed (:func:`apart_labels`, at the narrowest tree drawn)
    leaf_labels : one per leaf position of ``x_range`` ("" for none, :func:`thinned_labels`)
        — class names under the leaves (then the bottom margin grows to hold them)

    Everything that follows the selection is a layout shape or annotation, so it is
    redrawn without touching the two (large) traces.
    """
    overlays = overlays or dendrogram_overlays(top=top)
    nodes: dict[str, Any] = dict(
        type="scatter", x=node_x, y=node_y, mode="markers", name="nodes",
        marker=dict(size=6, line=dict(width=0), opacity=0.8,
                    **cluster_marker(node_colours, TREE)),
        # Plain JSON, not a typed array: Dash drops typed-array customdata from click
        # events (a list of [id, size] pairs).
        customdata=np.stack([node_ids, node_sizes], axis=1).astype(object),
        hovertemplate="node %{customdata[0]}: %{customdata[1]} classes"
                      + ("<br>WordNet: %{hovertext}" if wordnet_names is not None else "")
                      + "<br>height %{y:.3g}<extra></extra>",
    )
    if wordnet_names is not None:
        nodes.update(hovertext=list(wordnet_names))
    traces = [
        # The walk retraces links: plotly's line simplification is not asked to judge that.
        dict(type="scatter", x=link_x, y=link_y, mode="lines",
             line=dict(color=TREE, width=1, simplify=False), hoverinfo="skip", name="links",
             connectgaps=False),
        nodes,
    ]
    margin = matrix_margins(named)
    leaves_named = leaf_labels is not None and any(leaf_labels)
    if leaves_named:
        margin["b"] = int(12 + TICK_CHAR_PX * LEAF_LABEL_CHARS * 0.8)
    y_range = (-FOCAL_STRIP * top, 1.04 * top)
    if node_labels is not None and any(node_labels):
        # Their own trace of the few named nodes: as the markers' text, plotly made an
        # (empty) text element for every node — a thousand more elements to redraw.
        # The 20 × NODE_LABELS largest named nodes are tried (a chained 21k-class tree
        # has thousands of large nodes).
        candidates = [i for i in np.argsort(-np.asarray(node_sizes), kind="stable")
                      if node_labels[i]][:20 * NODE_LABELS]
        plot_px = (NARROWEST_TREE_PX,
                   (height or DENDROGRAM_HEIGHT) - margin["t"] - margin["b"])
        named_nodes = [candidates[k] for k in apart_labels(
            np.asarray(node_x)[candidates], np.asarray(node_y)[candidates],
            [node_labels[i] for i in candidates], x_range=x_range, y_range=y_range,
            plot_px=plot_px)]
        traces.append(dict(
            type="scatter", mode="text", name="labels", x=np.asarray(node_x)[named_nodes],
            y=np.asarray(node_y)[named_nodes], text=[node_labels[i] for i in named_nodes],
            textposition="top center", textfont=dict(size=10, color=MUTED), cliponaxis=False,
            hoverinfo="skip", showlegend=False))
    xaxis: dict[str, Any] = dict(range=list(x_range), showticklabels=False, automargin=False)
    if leaves_named:
        first = int(np.ceil(x_range[0]))
        shown = [(first + k, _shorten(t, LEAF_LABEL_CHARS))
                 for k, t in enumerate(leaf_labels) if t]
        xaxis.update(showticklabels=True, tickvals=[p for p, _ in shown],
                     ticktext=[t for _, t in shown], tickangle=-60,
                     tickfont=dict(size=9, color=MUTED), ticks="")
    # A strip below the leaves holds the focal marker and lasso bars.
    yaxis = dict(title=dict(text="merge height", font=dict(size=11, color=MUTED), standoff=4),
                 range=list(y_range), showgrid=True, gridcolor=GRID,
                 tickfont=dict(size=10), automargin=False, zeroline=True, zerolinecolor=GRID)
    return _figure(traces, dict(
        template=_TEMPLATE_JSON, height=height, showlegend=False, uirevision=uirevision,
        margin=margin, dragmode="zoom", hovermode="closest", clickmode="event",
        xaxis=xaxis, yaxis=yaxis, **overlays,
    ))


def link_path(xs: np.ndarray, ys: np.ndarray) -> str | None:
    """SVG path of NaN-separated ⊓ links (TreeLayout.link_paths), in data coordinates."""
    xs = np.asarray(xs, dtype=np.float64).reshape(-1, 5)[:, :4]
    ys = np.asarray(ys, dtype=np.float64).reshape(-1, 5)[:, :4]
    if xs.size == 0:
        return None
    return "".join(
        f"M{x[0]:.2f},{y[0]:.4g}V{y[1]:.4g}H{x[2]:.2f}V{y[3]:.4g}" for x, y in zip(xs, ys)
    )


def dendrogram_overlays(
    *,
    highlight: tuple[np.ndarray, np.ndarray] | None = None,
    selected_node: tuple[float, float] | None = None,
    focal: tuple[float, str] | None = None,
    clusters: Sequence[tuple[int, int, int]] = (),
    cut_y: float | None = None,
    marked_runs: Sequence[tuple[int, int]] = (),
    top: float = 1.0,
) -> dict[str, Any]:
    """The selection-dependent parts of the dendrogram: ``{"shapes": [...]}``.

    highlight : (xs, ys) links of the selected subtree — one bold path
    selected_node : (x, y) of the selected node — a ring
    focal : (x position, label) of the focal class — a marker under the leaves, labelled
    clusters : ``(label, first, last)`` runs — shaded bands below the cut
    cut_y : height of the cut line
    marked_runs : ``(first, last)`` runs of a lasso selection — bars under the leaves
    top : height of the tree (sizes the bands and the strip under the leaves)

    Only shapes (the focal label is a shape label): relayouting shapes redraws just
    them, while changing annotations re-plots the whole graph.
    """
    shapes: list[dict[str, Any]] = []
    band_top = cut_y if cut_y is not None else top
    for label, first, last in clusters:
        shapes.append(dict(type="rect", x0=first - 0.5, x1=last + 0.5, y0=0, y1=band_top,
                           fillcolor=cluster_colour(label), opacity=0.13, line=dict(width=0),
                           layer="below", name="cluster"))
    if cut_y is not None:
        shapes.append(dict(type="line", xref="paper", x0=0, x1=1, y0=cut_y, y1=cut_y,
                           line=dict(color=MUTED, width=1, dash="dash"), name="cut"))
    for first, last in marked_runs:
        shapes.append(dict(type="rect", x0=first - 0.5, x1=last + 0.5, y0=-0.035 * top, y1=0,
                           fillcolor=SELECT, line=dict(width=0), name="lasso"))
    path = link_path(*highlight) if highlight is not None else None
    if path:
        shapes.append(dict(type="path", path=path, line=dict(color=SELECT, width=2.2),
                           layer="above", name="selected-subtree"))
    if selected_node is not None:
        x, y = selected_node
        shapes.append(dict(type="circle", xsizemode="pixel", ysizemode="pixel", xanchor=x,
                           yanchor=y, x0=-7, x1=7, y0=-7, y1=7, layer="above",
                           line=dict(color=SELECT, width=2.2), name="selected-node"))
    if focal is not None:
        x, label = focal
        y = -0.075 * top
        shapes.append(dict(type="circle", xsizemode="pixel", ysizemode="pixel", xanchor=x,
                           yanchor=y, x0=-5, x1=5, y0=-5, y1=5, fillcolor=ACCENT,
                           line=dict(color="white", width=1), layer="above", name="focal",
                           label=dict(text=label, textposition="middle right",
                                      font=dict(color=ACCENT, size=11), padding=10)))
    return {"shapes": shapes}


# -- nearest classes -------------------------------------------------------------------------


def unrelated_distance(num_features: int) -> float:
    """Euclidean distance between two standardised rows of ``num_features`` weights that
    are unrelated (cosine 0): each has norm sqrt(D − 1) (mean 0, unbiased std 1), so
    ‖a − b‖ = sqrt(2 (D − 1)) — the reference the nearest-classes bars are measured from."""
    return float(np.sqrt(2.0 * max(int(num_features) - 1, 0)))


NEIGHBOUR_COLOUR = "#3e7cb1"  # the nearest classes' bars without a cut


def neighbours_figure(
    names: Sequence[str],
    ids: Sequence[str],
    scores: np.ndarray,
    *,
    score_label: str,
    colours: Sequence[str] | None = None,
    higher_is_closer: bool = True,
    num_features: int | None = None,
) -> go.Figure:
    """Top-k nearest classes as horizontal bars, nearest at the top; a longer bar is a
    closer class with either metric.

    Parameters
    ----------
    names, ids : the k neighbours' names and ids (ids ride along as click data)
    scores : ndarray of shape (k,) — similarity (``higher_is_closer``) or distance to the
        focal class; each bar's number is this score, written right of the bar
    colours : a colour per bar (clusters of the cut) or None
    num_features : D, the head's row length; with distances the bars show the closeness
        ``unrelated_distance(D) − distance`` (how much nearer than an unrelated class), so
        the axis reads left to right from 0 and nearly equal distances differ visibly
    """
    k = len(names)
    ranks = np.arange(k)
    scores = np.asarray(scores, dtype=np.float64)
    bar_colours = list(colours) if colours is not None else [NEIGHBOUR_COLOUR] * k
    labels = [_shorten(n, 28) for n in names]
    # A left margin sized from the labels: plotly's automargin would measure them and
    # draw the chart a second time (≈ 40 ms of a page load).
    left = int(12 + TICK_CHAR_PX * max((len(label) for label in labels), default=0))
    floor = 0.0  # where the bars start, in the axis's units
    if higher_is_closer:
        # Negative similarities (a small head's standardised rows): the bars start at −1,
        # the lowest cosine, so a longer bar is still a closer class and every number
        # lies right of its bar, clear of the class names.
        floor = -1.0 if k and float(scores.min()) < 0 else 0.0
        lengths = scores - floor
        axis_title = score_label
        hover = "%{hovertext}<br>" + score_label + " %{text}<extra></extra>"
    else:
        reference = unrelated_distance(num_features or 0)
        lengths = reference - scores
        # two lines: one is wider than the chart in a 1280 px window
        axis_title = (f"nearer than an unrelated class by ({reference:.1f} − distance)<br>"
                      "numbers: distance")
        hover = ("%{hovertext}<br>" + score_label + " %{text}"
                 "<br>closeness %{x:.3f} (longer bar = closer)<extra></extra>")
    low = floor + (min(0.0, float(lengths.min())) if k else 0.0)  # closeness may be < 0
    high = float(lengths.max()) if k else 1.0
    numbers = [f"{s:.3f}" for s in scores]
    bars = dict(
        type="bar", x=lengths.astype(np.float32), y=ranks, orientation="h",
        **({"base": floor} if floor else {}),
        marker=dict(color=bar_colours, line=dict(width=0)),
        customdata=np.array(list(ids), dtype=object),
        text=numbers, textposition="none", hovertext=list(names),
        hovertemplate=hover, name="neighbours",
    )
    # Each number right of its bar's end (left of a bar that ends below the floor), as a
    # text trace: plotly measures every bar's own text to place it (≈ 20 ms of forced
    # layouts per draw), a text point not.
    ends = floor + lengths
    gap = "\u2002"  # an en space between the bar and its number
    labels_trace = dict(
        type="scatter", mode="text", x=ends.astype(np.float32), y=ranks,
        text=[gap + n if length >= 0 else n + gap for n, length in zip(numbers, lengths)],
        textposition=["middle right" if length >= 0 else "middle left" for length in lengths],
        textfont=dict(size=11, color=INK), cliponaxis=False, hoverinfo="skip",
        showlegend=False, name="numbers",
    )
    return _figure([bars, labels_trace], dict(
        template=_TEMPLATE_JSON, height=max(220, 26 * k + 60) + (0 if higher_is_closer else 16),
        bargap=0.25,
        margin=dict(l=left, r=56, t=30, b=40 if higher_is_closer else 56),
        clickmode="event", dragmode=False,
        showlegend=False,
        yaxis=dict(tickvals=ranks, ticktext=labels, autorange="reversed",
                   tickfont=dict(size=11), automargin=False),
        xaxis=dict(title=dict(text=axis_title, font=dict(size=11, color=MUTED)),
                   showgrid=True, gridcolor=GRID, zeroline=True, zerolinecolor=MUTED,
                   range=[low, floor + (high * 1.02 if high > 0 else 1.0)],
                   autorange=False),
    ))


# -- class map -------------------------------------------------------------------------------

MAP_POINTS, MAP_SELECTED, MAP_FOCAL = range(3)
MAP_COLOUR = "#3e7cb1"  # the class map's points without a cut
WEBGL_POINTS = 3000


def class_map_figure(
    coords: np.ndarray,
    names: Sequence[str],
    *,
    colours: np.ndarray | None = None,
    selected: np.ndarray | None = None,
    focal: tuple[float, float, str] | None = None,
    axis_titles: tuple[str, str] = ("", ""),
    uirevision: str = "",
    height: int | None = None,
    webgl: bool = False,
) -> go.Figure:
    """Classes as points in 2-D; lasso-select is the default drag mode.

    Parameters
    ----------
    coords : ndarray of shape (C, 2) — the embedding
    names : the C class names (hover)
    colours : ndarray of shape (C,) of cluster colour codes (:func:`cluster_codes`), or None
    selected : class indices to ring (a subtree or lasso selection), or None
    focal : (x, y, label) of the focal class
    webgl : draw more than ``WEBGL_POINTS`` classes with WebGL (only when the page has the
        full plotly.js; the partial bundle has no WebGL traces)

    The selection is its own small trace (rings), so changing it redraws only those
    points, not all C of them.
    """
    count = coords.shape[0]
    # SVG up to a few thousand points: WebGL's start-up costs more than it saves there.
    kind = "scattergl" if webgl and count > WEBGL_POINTS else "scatter"
    points = dict(
        type=kind, x=coords[:, 0], y=coords[:, 1], mode="markers", name="classes",
        marker=dict(size=6 if count > 300 else 9, opacity=0.85, line=dict(width=0),
                    **cluster_marker(colours, MAP_COLOUR)),
        customdata=np.arange(count), hovertext=np.asarray(list(names), dtype=object),
        # no <extra> box: plotly writes it in the point's colour (unreadable on white)
        hovertemplate="%{hovertext}<br>#%{customdata}<extra></extra>",
    )
    selection = dict(
        type="scatter", mode="markers", name="selection", hoverinfo="skip",
        marker=dict(size=11 if count > 300 else 15, color="rgba(0,0,0,0)",
                    line=dict(color=SELECT, width=1.5)),
        **class_map_selected(coords, selected),
    )
    focal_star = dict(
        type="scatter", mode="markers+text", name="focal class", hoverinfo="skip",
        marker=dict(symbol="star", size=16, color=ACCENT, line=dict(color="white", width=1)),
        textposition="top center", textfont=dict(color=ACCENT, size=12),
        **class_map_focal(focal),
    )
    return _figure([points, selection, focal_star], dict(
        template=_TEMPLATE_JSON, height=height, showlegend=False, uirevision=uirevision,
        margin=dict(l=30, r=10, t=10, b=36), dragmode="lasso", hovermode="closest",
        clickmode="event",
        xaxis=dict(title=dict(text=axis_titles[0], font=dict(size=11, color=MUTED)),
                   showticklabels=False, showgrid=True, gridcolor=GRID),
        yaxis=dict(title=dict(text=axis_titles[1], font=dict(size=11, color=MUTED)),
                   showticklabels=False, showgrid=True, gridcolor=GRID),
    ))


def class_map_selected(coords: np.ndarray, selected: np.ndarray | None) -> dict[str, list]:
    """The selection trace's data: a ring on every selected class (plain lists)."""
    if selected is None or len(selected) == 0:
        return {"x": [], "y": []}
    chosen = coords[np.asarray(selected, dtype=np.int64)]
    return {"x": np.round(chosen[:, 0].astype(float), 5).tolist(),
            "y": np.round(chosen[:, 1].astype(float), 5).tolist()}


def class_map_focal(focal: tuple[float, float, str] | None) -> dict[str, list]:
    """The focal-class trace's data: one star with a label, or nothing."""
    if focal is None:
        return {"x": [], "y": [], "text": []}
    return {"x": [focal[0]], "y": [focal[1]], "text": [focal[2]]}


def _shorten(text: str, limit: int) -> str:
    return text if len(text) <= limit else text[: limit - 1] + "…"


__all__ = [
    "Scale", "message_figure", "encode_codes", "colour_bar", "heatmap_figure", "heatmap_shapes",
    "dendrogram_figure", "dendrogram_overlays", "neighbours_figure", "class_map_figure",
    "class_map_selected", "class_map_focal", "cluster_colour", "cluster_colours",
    "cluster_codes", "cluster_colorscale", "cluster_marker",
]
