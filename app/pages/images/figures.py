"""Plotly figures of the image pages (Samples, Clustering, Confidence). No dash here.

Every builder takes plain arrays and names and returns a ``go.Figure``; the shapes
are stated in each docstring. Points carry the sample index in ``customdata[0]`` so
a click names the image. The focal class (a model class index) is drawn on top in
full colour with a dark outline, the other classes faded, so the same class stands out on
every page.
"""

from __future__ import annotations

from typing import Sequence

import numpy as np
import plotly.graph_objects as go
from plotly.subplots import make_subplots
from scipy.cluster.hierarchy import dendrogram

from classmap.app.shell.figures import (
    ACCENT, FONT, GRID, HOVERLABEL, INK, TREE, allow_tick_label_overflow, message_figure,
)

__all__ = ["message_figure", "class_palette", "sample_scatter", "js_heatmap", "confusion_figure",
           "js_focal_shapes", "confusion_focal_shapes", "selected_ring", "focal_overlay",
           "class_opacity", "class_styles"]

# Qualitative palette (Tableau 10 + 10 lighter companions): readable for up to 20 classes.
PALETTE = (
    "#4e79a7", "#f28e2b", "#e15759", "#76b7b2", "#59a14f", "#edc948", "#b07aa1", "#ff9da7",
    "#9c755f", "#bab0ac", "#1f77b4", "#aec7e8", "#ff7f0e", "#98df8a", "#d62728", "#9467bd",
    "#c5b0d5", "#8c564b", "#e377c2", "#17becf",
)
WEBGL_POINTS = 3000
LEGEND_LIMIT = 40  # classes listed in a legend; above this one trace with a colour scale
LEGEND_CHAR_PX = 7.4  # a 12 px legend label's character, on the wide side (sizes the margin)
FADED = 0.18  # opacity of the classes that are not focal
SHOWN = 0.85  # opacity of the class traces


def class_palette(index: int) -> str:
    """Colour of class (or cluster) ``index``."""
    return PALETTE[int(index) % len(PALETTE)]


def _layout(height: int, **extra) -> dict:
    return dict(
        height=height, font=dict(family=FONT, size=12, color=INK), paper_bgcolor="white",
        plot_bgcolor="white", margin=dict(l=50, r=10, t=30, b=40), hoverlabel=HOVERLABEL,
        **extra,
    )


def _axes(figure: go.Figure, titles: tuple[str, str]) -> None:
    figure.update_xaxes(title=titles[0], gridcolor=GRID, zeroline=False, showline=True,
                        linecolor=GRID)
    figure.update_yaxes(title=titles[1], gridcolor=GRID, zeroline=False, showline=True,
                        linecolor=GRID)
    allow_tick_label_overflow(figure)


def sample_scatter(
    coords: np.ndarray,
    groups: np.ndarray,
    group_names: Sequence[str],
    *,
    hover: Sequence[str],
    focal: int | None = None,
    selected: int | None = None,
    axis_titles: tuple[str, str] = ("PC 1", "PC 2"),
    title: str | None = None,
    height: int = 520,
    uirevision: str | None = None,
    legend_title: str = "true class",
    webgl: bool = False,
) -> go.Figure:
    """Scatter of N images, one trace per group (true class or cluster).

    Parameters
    ----------
    coords : ndarray of shape (N, 2)
    groups : ndarray of shape (N,), int — index into ``group_names``
    group_names : G names (legend entries)
    hover : N hover texts
    focal : a group drawn on top in full colour while the others fade, or None
    selected : a sample index marked with a ring, or None
    webgl : WebGL above ``WEBGL_POINTS`` images (only with the full plotly.js in the page)

    Traces, in a fixed order that does not depend on ``focal`` or ``selected`` (so a
    change of either is a small ``dash.Patch``, see :func:`class_styles`,
    :func:`focal_overlay` and :func:`selected_ring`): one per group present, in group order
    (``customdata`` = [[sample index]] …) — or, above ``LEGEND_LIMIT`` groups, one trace of
    every point — then the focal overlay, then the selected-sample ring (possibly empty).

    With a trace per group the focal group is marked by *style* only (its trace in full
    colour with a dark outline and ``zorder`` 1, the other groups' colours faded): a focal
    change then changes no trace's data, and plotly.js restyles the points instead of
    recalculating and redrawing every trace. The overlay (the focal group's points again,
    on top) is used only by the one trace of every point, which cannot style one group;
    it is empty otherwise.
    """
    coords = np.asarray(coords, dtype=np.float64)
    groups = np.asarray(groups, dtype=np.int64)
    n = len(groups)
    kind = go.Scattergl if webgl and n > WEBGL_POINTS else go.Scatter
    figure = go.Figure(layout=_layout(height, title=dict(text=title, x=0.01, font_size=13)
                                      if title else None,
                       legend=dict(title=dict(text=legend_title), itemsizing="constant"),
                       uirevision=uirevision, dragmode="zoom", hovermode="closest"))
    present = np.unique(groups)
    show_legend = len(present) <= LEGEND_LIMIT
    hover_array = np.asarray(hover, dtype=object)
    if not show_legend:  # many classes: one trace of every point
        everyone = np.arange(n)
        figure.add_trace(kind(
            x=coords[:, 0], y=coords[:, 1], mode="markers", name="classes",
            showlegend=False, customdata=[[int(i)] for i in everyone],
            text=hover_array.tolist(), hovertemplate="%{text}<extra></extra>",
            marker=dict(color=[class_palette(g) for g in groups], size=6,
                        opacity=class_opacity(focal, many=True)),
        ))
    for g, style in zip(present if show_legend else [], class_styles(groups, focal)):
        mask = np.flatnonzero(groups == g)
        figure.add_trace(kind(
            x=coords[mask, 0], y=coords[mask, 1], mode="markers",
            name=str(group_names[g]), legendgroup=str(g), legendrank=int(g) + 1,
            showlegend=True,
            customdata=[[int(i)] for i in mask], text=hover_array[mask].tolist(),
            hovertemplate="%{text}<extra></extra>", zorder=style["zorder"],
            marker=dict(size=7, **style["marker"]),
        ))
    overlay = focal_overlay(coords, groups, group_names, hover, focal)
    colour = overlay.pop("marker")["color"]
    figure.add_trace(kind(
        mode="markers", showlegend=False, hovertemplate="%{text}<extra></extra>",
        marker=dict(color=colour, size=9, opacity=0.85, line=dict(width=1.2, color=INK)),
        **overlay))
    ring = selected_ring(coords, selected)
    figure.add_trace(go.Scatter(
        x=ring["x"], y=ring["y"], mode="markers", name="selected image",
        showlegend=False, hoverinfo="skip", customdata=ring["customdata"],
        marker=dict(symbol="circle-open", size=18, color=ACCENT, line=dict(width=3)),
    ))
    _axes(figure, axis_titles)
    if show_legend:
        # The legend's room is given: with the margin left to expand, plotly measured the
        # legend after drawing and drew the whole scatter again (``doAutoMargin``, ≈ 35 ms
        # a graph).
        longest = max([len(str(group_names[g])) for g in present] + [len(legend_title)])
        figure.update_layout(margin=dict(r=int(64 + LEGEND_CHAR_PX * longest),
                                         autoexpand=False))
    return figure


def class_opacity(focal: int | None, many: bool = False) -> float:
    """The opacity of :func:`sample_scatter`'s one trace of every point (``many``, above
    ``LEGEND_LIMIT`` groups; faded when a group is focal) or of its class traces (constant:
    their colours fade, :func:`class_styles`)."""
    if not many:
        return SHOWN
    return FADED if focal is not None else 0.8


def _faded(colour: str) -> str:
    """``colour`` (#rrggbb) at ``FADED / SHOWN`` alpha: ``FADED`` under the traces' opacity."""
    r, g, b = (int(colour[i:i + 2], 16) for i in (1, 3, 5))
    return f"rgba({r},{g},{b},{FADED / SHOWN:.3f})"


def class_styles(groups: np.ndarray, focal: int | None) -> list[dict]:
    """``marker`` (colour, opacity, outline) and ``zorder`` of each class trace of
    :func:`sample_scatter` (groups present, in order; none above ``LEGEND_LIMIT`` groups):
    without a focal group every group in full colour with a thin white outline; with one,
    the focal group in full colour with a dark outline on top (``zorder`` 1), the others'
    colours faded without an outline. Only style attributes in plotly.js's sense
    (``editType`` style; ``zorder``: plot), so that a ``dash.Patch`` of them redraws no
    trace's data."""
    present = np.unique(np.asarray(groups, dtype=np.int64))
    if len(present) > LEGEND_LIMIT:
        return []
    styles = []
    for g in present:
        colour = class_palette(g)
        if focal is None:
            marker = dict(color=colour, opacity=SHOWN, line=dict(width=0.4, color="white"))
        elif int(g) == focal:
            marker = dict(color=colour, opacity=SHOWN, line=dict(width=1.2, color=INK))
        else:
            marker = dict(color=_faded(colour), opacity=SHOWN, line=dict(width=0, color="white"))
        styles.append(dict(marker=marker, zorder=1 if focal is not None and int(g) == focal
                           else 0))
    return styles


def focal_overlay(coords: np.ndarray, groups: np.ndarray, group_names: Sequence[str],
                  hover: Sequence[str], focal: int | None) -> dict:
    """``x``, ``y``, ``customdata``, ``text``, ``name`` and ``marker.color`` of
    :func:`sample_scatter`'s focal overlay (its second-to-last trace): group ``focal``'s
    points above ``LEGEND_LIMIT`` groups (one trace of every point), else none (the class
    traces' style marks the focal group) — what a ``dash.Patch`` of that trace sets when
    the focal class changes."""
    coords = np.asarray(coords, dtype=np.float64)
    groups = np.asarray(groups, dtype=np.int64)
    many = len(np.unique(groups)) > LEGEND_LIMIT
    mask = (np.flatnonzero(groups == focal) if focal is not None and many
            else np.zeros(0, np.int64))
    hover_array = np.asarray(hover, dtype=object)
    return {"x": coords[mask, 0].tolist(), "y": coords[mask, 1].tolist(),
            "customdata": [[int(i)] for i in mask], "text": hover_array[mask].tolist(),
            "name": str(group_names[focal]) if mask.size else "focal class",
            "marker": {"color": class_palette(focal) if mask.size else ACCENT}}


def _leaf_order(linkage: np.ndarray | None, p: int) -> tuple[dict | None, np.ndarray]:
    """(scipy's dendrogram of ``linkage``, its leaf order), or (None, model order)."""
    if linkage is not None and p >= 2:
        tree = dendrogram(np.asarray(linkage, dtype=np.float64), no_plot=True)
        return tree, np.asarray(tree["leaves"], dtype=np.int64)
    return None, np.arange(p)


def js_focal_shapes(linkage: np.ndarray | None, p: int, focal: int | None) -> list[dict]:
    """``layout.shapes`` of :func:`js_heatmap`: the frame of row and column ``focal`` (a
    row of the P × P matrix) in the matrix's subplot; none without a focal class.

    Separate from the figure so that a change of the focal class sends only this (a
    ``dash.Patch``)."""
    _, order = _leaf_order(linkage, p)
    if focal is None or focal not in order:
        return []
    pos = int(np.flatnonzero(order == focal)[0])
    return [dict(type="rect", xref="x3", yref="y3", line=dict(color=ACCENT, width=2), **kw)
            for kw in (dict(x0=-0.5, x1=p - 0.5, y0=pos - 0.5, y1=pos + 0.5),
                       dict(x0=pos - 0.5, x1=pos + 0.5, y0=-0.5, y1=p - 0.5))]


def confusion_focal_shapes(p: int, q: int, focal_row: int | None) -> list[dict]:
    """``layout.shapes`` of :func:`confusion_figure` (P × Q): the frame of ``focal_row``."""
    if focal_row is None or not 0 <= focal_row < p:
        return []
    return [dict(type="rect", xref="x", yref="y", x0=-0.5, x1=q - 0.5, y0=focal_row - 0.5,
                 y1=focal_row + 0.5, line=dict(color=ACCENT, width=2))]


def selected_ring(coords: np.ndarray, selected: int | None) -> dict[str, list]:
    """``x``, ``y``, ``customdata`` of :func:`sample_scatter`'s last trace (the ring around
    sample ``selected``; empty for None or an index out of range) — what a ``dash.Patch``
    of that trace sets when only the selected image changes."""
    coords = np.asarray(coords, dtype=np.float64)
    ring = [] if selected is None or not 0 <= selected < len(coords) else [int(selected)]
    return {"x": coords[ring, 0].tolist(), "y": coords[ring, 1].tolist(),
            "customdata": [[i] for i in ring]}


def js_heatmap(
    js: np.ndarray,
    linkage: np.ndarray | None,
    names: Sequence[str],
    clusters: np.ndarray | None = None,
    *,
    focal: int | None = None,
    height: int = 620,
) -> go.Figure:
    """JS divergence ``[P, P]`` in the leaf order of ``linkage`` ``[P − 1, 4]``, tree on top.

    ``clusters`` (shape (P,)) colours a strip between tree and matrix; ``focal`` (a row
    of ``js``) gets a frame. Without a linkage the classes stay in model order.
    Rows/columns of the heatmap trace are leaf positions; ``customdata`` holds the
    class row indices ``[i, j]``.
    """
    js = np.asarray(js, dtype=np.float64)
    p = js.shape[0]
    tree, order = _leaf_order(linkage, p)
    labels = [str(names[i]) for i in order]
    figure = make_subplots(rows=3, cols=1, shared_xaxes=True, vertical_spacing=0.01,
                           row_heights=[0.2, 0.035, 0.765])
    if tree is not None:
        xs, ys = [], []
        for icoord, dcoord in zip(tree["icoord"], tree["dcoord"]):
            xs += [(x - 5) / 10 for x in icoord] + [None]
            ys += list(dcoord) + [None]
        figure.add_trace(go.Scatter(x=xs, y=ys, mode="lines", line=dict(color=TREE, width=1.3),
                                    hoverinfo="skip", showlegend=False), row=1, col=1)
    if clusters is not None:
        cl = np.asarray(clusters, dtype=np.int64)[order]
        k = int(cl.max()) + 1
        scale = [[0, class_palette(0)], [1, class_palette(0)]] if k == 1 else [
            [pos, class_palette(c)] for c in range(k)
            for pos in (c / k, (c + 1) / k - 1e-9 if c < k - 1 else 1.0)]
        figure.add_trace(go.Heatmap(
            z=[cl.tolist()], x=list(range(p)), y=["cluster"], zmin=-0.5, zmax=k - 0.5,
            colorscale=scale, showscale=False, xgap=1,
            text=[[f"{labels[j]}: cluster {cl[j] + 1}" for j in range(p)]],
            hovertemplate="%{text}<extra></extra>"), row=2, col=1)
    ordered = js[np.ix_(order, order)]
    hover = [[f"{labels[i]} vs {labels[j]}<br>JS divergence {ordered[i, j]:.4f}"
              for j in range(p)] for i in range(p)]
    figure.add_trace(go.Heatmap(
        z=ordered, x=list(range(p)), y=list(range(p)), colorscale="Viridis_r", zmin=0,
        zmax=float(np.nanmax(ordered)) if p > 1 and np.isfinite(ordered).any() else 1.0,
        text=hover, hovertemplate="%{text}<extra></extra>",
        customdata=[[[int(a), int(b)] for b in order] for a in order],
        colorbar=dict(title=dict(text="JS (bits)", side="right"), thickness=12, len=0.75,
                      y=0.38),
    ), row=3, col=1)
    figure.update_layout(shapes=js_focal_shapes(linkage, p, focal))
    ticks = dict(tickmode="array", tickvals=list(range(p)), ticktext=labels) if p <= 60 else {}
    figure.update_layout(**_layout(height), showlegend=False)
    figure.update_xaxes(showgrid=False, zeroline=False, showticklabels=False, row=1, col=1)
    figure.update_yaxes(showgrid=False, zeroline=False, title="distance", row=1, col=1,
                        title_font_size=11)
    figure.update_xaxes(showticklabels=False, row=2, col=1)
    figure.update_yaxes(showticklabels=False, row=2, col=1)
    figure.update_xaxes(range=[-0.5, p - 0.5], **ticks, row=3, col=1, tickangle=0 if p <= 12
                        else -60, title="class (dendrogram order)")
    figure.update_yaxes(range=[p - 0.5, -0.5], **ticks, row=3, col=1, title="class")
    return allow_tick_label_overflow(figure)


def confusion_figure(
    confusion: np.ndarray, row_names: Sequence[str], column_names: Sequence[str], *,
    focal_row: int | None = None, height: int = 520,
) -> go.Figure:
    """Confusion counts ``[P, P(+1)]`` (rows true, columns predicted) with counts in cells.

    Colours are row-normalised (share of the true class's images), so large and small
    classes read alike; the text is the count.
    """
    counts = np.asarray(confusion, dtype=np.int64)
    totals = counts.sum(axis=1, keepdims=True).clip(min=1)
    share = counts / totals
    p, q = counts.shape
    text = [[str(v) if v else "" for v in row] for row in counts]
    hover = [[f"true {row_names[i]} → predicted {column_names[j]}: {counts[i, j]} "
              f"({100 * share[i, j]:.1f}% of the class)" for j in range(q)] for i in range(p)]
    figure = go.Figure(go.Heatmap(
        z=share, x=list(range(q)), y=list(range(p)), colorscale="Blues", zmin=0, zmax=1,
        text=text, texttemplate="%{text}" if p * q <= 900 else None, customdata=hover,
        hovertemplate="%{customdata}<extra></extra>",
        colorbar=dict(title=dict(text="share of row", side="right"), thickness=12),
    ), layout=_layout(height))
    ticks_x = dict(tickmode="array", tickvals=list(range(q)), ticktext=list(column_names))
    ticks_y = dict(tickmode="array", tickvals=list(range(p)), ticktext=list(row_names))
    figure.update_xaxes(title="predicted class", **(ticks_x if q <= 60 else {}), side="bottom")
    figure.update_yaxes(title="true class", autorange="reversed", **(ticks_y if p <= 60 else {}))
    figure.update_layout(shapes=confusion_focal_shapes(p, q, focal_row))
    return allow_tick_label_overflow(figure)

