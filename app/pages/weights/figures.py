"""Plotly figures of the Weight distributions page (no Dash here).

Every builder takes plain arrays and returns a ``go.Figure``; numbers that are not
defined (NaN) are never drawn as numbers — points are left out and counted, table
cells read "—" with the status next to them.
"""

from __future__ import annotations

import math
from typing import Any, Mapping, Sequence

import numpy as np
import plotly.graph_objects as go
from plotly.colors import get_colorscale, sample_colorscale, unlabel_rgb
from plotly.subplots import make_subplots

from classmap.app.shell.figures import (
    ACCENT, FONT, GRID, HOVERLABEL, INK, MUTED, SELECT, allow_tick_label_overflow,
)

POS = "#c2410c"  # positive side / MLE curve
NEG = "#1d4ed8"  # negative side
SEED = "#15803d"  # seed regression curve
BAR = "#9aa5b1"
PROBLEM = "#b91c1c"

SCATTER_AXES: dict[str, tuple[tuple[str, str], tuple[str, str]]] = {
    "kappa-ks": (("kappa_mle", "κ (MLE)"), ("ks_mle", "KS statistic (MLE fit)")),
    "r2": (("r2_pos", "R² positive side (the write-up's regression)"),
           ("r2_neg", "R² negative side (the write-up's regression)")),
}
SCATTER_POINTS = 0  # curve number of the class points (the scatter's only trace)
FOCAL_MARK = "focal-mark"  # name of the focal class's ring (a layout shape) and label


def _layout(**extra: Any) -> dict[str, Any]:
    layout = dict(font=dict(family=FONT, size=12, color=INK), paper_bgcolor="white",
                  plot_bgcolor="white", margin=dict(l=56, r=16, t=40, b=48),
                  hoverlabel=HOVERLABEL)
    layout.update(extra)
    return layout


def _axes(figure: go.Figure) -> None:
    figure.update_xaxes(gridcolor=GRID, zeroline=False, linecolor=GRID, ticks="outside",
                        tickcolor=GRID)
    figure.update_yaxes(gridcolor=GRID, zeroline=False, linecolor=GRID)
    allow_tick_label_overflow(figure)


def format_number(value: Any, digits: int = 4) -> str:
    """A table cell: ``—`` for NaN/None/inf, integers as is, floats with ``digits`` digits."""
    if value is None:
        return "—"
    if isinstance(value, (int, np.integer)) and not isinstance(value, bool):
        return f"{int(value):,}"
    number = float(value)
    if not math.isfinite(number):
        return "—"
    if number != 0 and (abs(number) < 1e-3 or abs(number) >= 1e5):
        return f"{number:.{digits - 1}e}"
    return f"{number:.{digits}g}" if abs(number) >= 1 else f"{number:.{digits}f}"


def overview_figure(columns: Mapping[str, np.ndarray], pooled: Mapping[str, Any] | None = None,
                    height: int = 300) -> go.Figure:
    """Distributions over classes of R² (both sides, seed regression) and κ (MLE).

    ``columns``: the ALD table's columns (arrays of shape (C,)); NaNs are left out and
    counted in the panel titles.
    """
    r2_pos, r2_neg = np.asarray(columns["r2_pos"]), np.asarray(columns["r2_neg"])
    kappa = np.asarray(columns["kappa_mle"])

    def finite(values: np.ndarray) -> tuple[np.ndarray, str]:
        kept = values[np.isfinite(values)]
        missing = values.size - kept.size
        return kept, (f" · {missing} undefined" if missing else "")

    pos, pos_note = finite(r2_pos)
    neg, neg_note = finite(r2_neg)
    kap, kap_note = finite(kappa)
    figure = make_subplots(rows=1, cols=2, horizontal_spacing=0.1, subplot_titles=(
        f"R² of the write-up's regression, per class{pos_note or neg_note}",
        f"κ of the MLE fit, per class{kap_note}"))
    figure.add_trace(go.Histogram(x=pos, name="R² positive side", marker_color=POS,
                                  opacity=0.6, nbinsx=50,
                                  hovertemplate="positive side<br>R² %{x}<br>%{y} classes<extra></extra>"),
                     row=1, col=1)
    figure.add_trace(go.Histogram(x=neg, name="R² negative side", marker_color=NEG,
                                  opacity=0.6, nbinsx=50,
                                  hovertemplate="negative side<br>R² %{x}<br>%{y} classes<extra></extra>"),
                     row=1, col=1)
    figure.add_trace(go.Histogram(x=kap, name="κ (MLE)", marker_color=SEED, opacity=0.75,
                                  nbinsx=50, showlegend=False,
                                  hovertemplate="κ %{x}<br>%{y} classes<extra></extra>"),
                     row=1, col=2)
    if pooled:
        for key, colour in (("r2_pos", POS), ("r2_neg", NEG)):
            value = pooled.get(key)
            if value is not None and math.isfinite(value):
                figure.add_vline(x=value, line=dict(color=colour, dash="dot", width=1.5),
                                 row=1, col=1)
    # The label goes on the side of the κ = 1 line with more of the axis: left of it
    # when the κs lie below 1 (ImageNet's), right of it when most lie above (LeNet's),
    # where on the left it ran over the axis's tick labels.
    low, high = (min(float(kap.min()), 1.0), max(float(kap.max()), 1.0)) if kap.size else (0, 1)
    figure.add_vline(x=1.0, line=dict(color=MUTED, dash="dash", width=1), row=1, col=2,
                     annotation_text="κ = 1 (symmetric)", annotation_font_color=MUTED,
                     annotation_position="top left" if 1.0 - low >= (high - low) / 2
                     else "top right")
    figure.update_layout(**_layout(height=height, barmode="overlay",
                                   # below the R² axis title, not on it
                                   legend=dict(orientation="h", y=-0.3, x=0, yanchor="top"),
                                   margin=dict(l=48, r=16, t=36, b=84)))
    figure.update_yaxes(title_text="classes", row=1, col=1)
    figure.update_xaxes(title_text="R² (dotted: pooled fit)", row=1, col=1)
    figure.update_xaxes(title_text="κ", row=1, col=2)
    figure.update_annotations(font=dict(size=12, color=INK))
    _axes(figure)
    return figure


LABEL_EDGE_SHARE = 0.2  # the focal label turns inwards in the outer 20 % of the x range
LABEL_EDGE_SHARE_TOP = 0.85  # and goes below the ring in the top 15 % of the y range


def scatter_focal_mark(columns: Mapping[str, np.ndarray], axes: str, names: Sequence[str],
                       focal: int | None) -> dict[str, list[dict]]:
    """The scatter's focal-class mark as ``layout`` items: ``{"shapes": [ring]}`` at the
    class's point, the class's name as the ring's label, or no shape when there is no
    focal class or one of its coordinates is undefined.

    A shape, not a trace or an annotation: a change of the focal class sends only this (a
    ``dash.Patch`` of ``layout.shapes``), which plotly.js draws without recalculating or
    redrawing the 1,000 class points — a trace's data change makes it recompute and redraw
    the whole plot, and so does an annotation (they may widen the axes: ≈ 50 ms of the
    scatter click, issue 14). The ring is 14 px across whatever the zoom (``sizemode``
    pixel); the axes' ranges are fixed (:func:`scatter_ranges`), so the mark cannot
    change them either.
    """
    if focal is None:
        return {"shapes": []}
    (x_key, _), (y_key, _) = SCATTER_AXES[axes]
    x, y = float(columns[x_key][focal]), float(columns[y_key][focal])
    if not (math.isfinite(x) and math.isfinite(y)):
        return {"shapes": []}
    # The label stays inside the plot (plotly clips a shape's label to it): below the ring
    # near the top, towards the middle near the left and right edges.
    xs, ys = np.asarray(columns[x_key], float), np.asarray(columns[y_key], float)
    finite = np.isfinite(xs) & np.isfinite(ys)
    (x_lo, x_hi), (y_lo, y_hi) = scatter_ranges(xs[finite], ys[finite])
    across, up = (x - x_lo) / (x_hi - x_lo), (y - y_lo) / (y_hi - y_lo)
    vertical = "bottom" if up > LABEL_EDGE_SHARE_TOP else "top"
    side = "left" if across < LABEL_EDGE_SHARE else "right" if across > 1 - LABEL_EDGE_SHARE else "center"
    ring = dict(type="circle", xref="x", yref="y", xsizemode="pixel", ysizemode="pixel",
                xanchor=x, yanchor=y, x0=-7, x1=7, y0=-7, y1=7, name=FOCAL_MARK,
                line=dict(color=ACCENT, width=2.5), fillcolor="rgba(0,0,0,0)", layer="above",
                label=dict(text=str(names[focal]), textposition=f"{vertical} {side}",
                           yanchor="top" if vertical == "bottom" else "bottom", xanchor=side,
                           font=dict(color=ACCENT, size=12), padding=4))
    return {"shapes": [ring]}


def scatter_ranges(x: np.ndarray, y: np.ndarray) -> tuple[list[float], list[float]]:
    """Fixed axis ranges of the scatter: the points' span with 6 % padding each side (a
    single value or none: ±1 around it, or [0, 1])."""
    def span(values: np.ndarray) -> list[float]:
        if not values.size:
            return [0.0, 1.0]
        lo, hi = float(values.min()), float(values.max())
        pad = 0.06 * (hi - lo) if hi > lo else 1.0
        return [lo - pad, hi + pad]
    return span(x), span(y)


def classes_scatter_figure(columns: Mapping[str, np.ndarray], axes: str, ids: Sequence[str],
                           names: Sequence[str], focal: int | None,
                           height: int = 380) -> go.Figure:
    """One point per class with both coordinates defined; click target.

    Points carry ``customdata = [class id, class index]``; classes with a NaN
    coordinate are left out and counted in the title. ``focal`` is marked
    (:func:`scatter_focal_mark`).
    """
    (x_key, x_label), (y_key, y_label) = SCATTER_AXES[axes]
    x, y = np.asarray(columns[x_key], float), np.asarray(columns[y_key], float)
    keep = np.flatnonzero(np.isfinite(x) & np.isfinite(y))
    left_out = x.size - keep.size
    custom = [[ids[i], int(i)] for i in keep]
    text = [names[i] for i in keep]
    figure = go.Figure()
    figure.add_trace(go.Scatter(
        # Lists, not arrays: plotly.py sends an array base64-encoded, and plotly.js decodes
        # it afresh on every Plotly.react, so that even a layout-only change (the focal
        # mark's patch) counts as new data and recalculates and redraws the plot (issue 14).
        x=x[keep].tolist(), y=y[keep].tolist(), mode="markers", customdata=custom, text=text, name="classes",
        marker=dict(size=6, color=POS if axes == "kappa-ks" else NEG, opacity=0.55,
                    line=dict(width=0)),
        hovertemplate=f"%{{text}}<br>{x_label} %{{x:.4f}}<br>{y_label} %{{y:.4f}}<extra></extra>",
    ))
    note = f" · {left_out} classes left out (undefined)" if left_out else ""
    figure.update_layout(**_layout(
        height=height, showlegend=False, clickmode="event", hovermode="closest",
        title=dict(text=f"Classes: {y_label} against {x_label}{note}", font=dict(size=13),
                   x=0.01),
        **scatter_focal_mark(columns, axes, names, focal)))
    x_range, y_range = scatter_ranges(x[keep], y[keep])
    # The type given (plotly.js writes the guessed one into the graph's layout, so a
    # patched figure without it would differ and recalculate).
    figure.update_xaxes(title_text=x_label, range=x_range, type="linear")
    figure.update_yaxes(title_text=y_label, range=y_range, type="linear")
    _axes(figure)
    return figure


def weight_histogram_figure(name: str, edges: np.ndarray, counts: np.ndarray,
                            density: np.ndarray, x: np.ndarray,
                            mle_density: np.ndarray | None, seed_density: np.ndarray | None,
                            height: int = 360) -> go.Figure:
    """Histogram of one class's weights (as a density) with the two fitted densities.

    ``edges`` (B+1,), ``counts``/``density`` (B,); ``x`` (P,) with the curves (P,) or None.
    """
    centres = 0.5 * (edges[:-1] + edges[1:])
    figure = go.Figure()
    figure.add_trace(go.Bar(
        x=centres, y=density, width=np.diff(edges), name=f"weights ({int(counts.sum()):,})",
        marker=dict(color=BAR, line=dict(width=0)), customdata=counts,
        hovertemplate="%{x:.4f}: %{customdata} weights<br>density %{y:.3f}<extra></extra>",
    ))
    if mle_density is not None:
        figure.add_trace(go.Scatter(x=x, y=mle_density, mode="lines",
                                    name="asymmetric Laplace (MLE)",
                                    line=dict(color=POS, width=2.2)))
    if seed_density is not None:
        figure.add_trace(go.Scatter(x=x, y=seed_density, mode="lines",
                                    name="write-up regression (implied density)",
                                    line=dict(color=SEED, width=2, dash="dash"),
                                    connectgaps=False))
    figure.update_layout(**_layout(
        height=height, bargap=0, hovermode="x unified",
        title=dict(text=f"Weights of {name}", font=dict(size=14), x=0.01),
        # below the x axis title: at the top it covered the title on narrow cards
        legend=dict(orientation="h", y=-0.3, x=0, yanchor="top", font=dict(size=11)),
        margin=dict(l=56, r=16, t=40, b=90)))
    # The seed's implied density is 1/(a|w|) and peaks at the smallest magnitude it
    # covers; the axis follows the histogram and the MLE curve (the peak runs off the top).
    top = float(np.max(density)) if density.size else 1.0
    if mle_density is not None and np.isfinite(mle_density).any():
        top = max(top, float(np.nanmax(mle_density)))
    figure.update_xaxes(title_text="weight")
    figure.update_yaxes(title_text="density", range=[0, 1.2 * top if top > 0 else 1.0])
    _axes(figure)
    return figure


def icicle_boxes(icicle: Mapping[str, list]) -> tuple[np.ndarray, np.ndarray]:
    """Each node's left edge (in channels, the root spans ``[0, root size]``) and depth.

    A node spans its channel count; its children are laid side by side from its left
    edge, in the columns' order (positive child first), so in chains mode the part of a
    node that no child holds stays empty on the right. ``icicle``: ``SplitTree.to_icicle``
    columns, whose depth-first order lists every parent before its children.
    """
    sizes = np.asarray(icicle["values"], dtype=float)
    row = {node_id: i for i, node_id in enumerate(icicle["ids"])}
    left, depth = np.zeros(sizes.size), np.zeros(sizes.size, dtype=np.int64)
    used = np.zeros(sizes.size)  # channels of each node already given to its children
    for i, parent in enumerate(icicle["parents"]):
        if parent == "":
            continue
        p = row[parent]
        left[i], depth[i] = left[p] + used[p], depth[p] + 1
        used[p] += sizes[i]
    return left, depth


def split_icicle_outline(icicle: Mapping[str, list], selected: int | None) -> list[dict]:
    """``layout.shapes`` of the icicle: a rectangle around node ``selected`` (none: ``[]``).

    Separate from the figure so that a click sends only this (a ``dash.Patch``).
    """
    if selected is None:
        return []
    left, depth = icicle_boxes(icicle)
    size, row = float(icicle["values"][selected]), int(depth[selected])
    x0 = float(left[selected])
    return [dict(type="rect", xref="x", yref="y", x0=x0, x1=x0 + size, y0=-row - 1,
                 y1=-row, line=dict(color=SELECT, width=3), fillcolor="rgba(0,0,0,0)",
                 layer="above", name="selected-node")]


ICICLE_SCALE = get_colorscale("RdBu_r")  # the icicle's bar colours: mean weight, 0 centred
ICICLE_MAX_LABELS = 60  # a bar narrower than 1/60 of the tree (≈ 28 px of 1,700) is unlabelled
ICICLE_WIDEST_PX = 1700  # the icicle's plot width in a wide window
# Advance widths at 10 px (the labels' smallest size, ``uniformtext.minsize``) of the
# glyphs labels use, as Chromium draws them in the figures' font here (DejaVu Sans, the
# fallback), and for any other glyph the narrowest letter's ("i"); the estimate takes
# 15 % off. A label estimated wider than its bar on the widest plot cannot fit at any
# width, and plotly would measure it only to hide it (a forced layout each, ≈ 1 ms in the
# page). tests/e2e/test_weights_page.py checks it stays below what Chromium draws.
_GLYPH_PX = {**dict.fromkeys("0123456789", 6.36), "+": 8.38, "-": 3.6, " ": 3.18, ".": 3.18,
             ",": 3.18, "·": 3.18}
_GLYPH_PX_OTHER = 2.78
_LABEL_PAD_PX = 6  # plotly's padding inside a bar, both sides


def label_min_px(text: str) -> float:
    """A lower estimate of ``text``'s width at 10 px (its widest ``<br>`` line), in px."""
    return 0.85 * max(sum(_GLYPH_PX.get(ch, _GLYPH_PX_OTHER) for ch in line)
                      for line in text.split("<br>"))


def _luminance(rgb: str) -> float:
    """WCAG relative luminance of an ``rgb(r, g, b)`` colour."""
    channels = np.asarray(unlabel_rgb(rgb), dtype=float) / 255.0
    linear = np.where(channels <= 0.03928, channels / 12.92, ((channels + 0.055) / 1.055) ** 2.4)
    return float(linear @ [0.2126, 0.7152, 0.0722])


def bar_colours(means: np.ndarray, limit: float) -> list[str]:
    """Each bar's colour: ``means`` on ``ICICLE_SCALE`` from −limit (0) to limit (1)."""
    if not len(means):
        return []
    positions = np.clip((np.asarray(means, dtype=float) / limit + 1.0) / 2.0, 0.0, 1.0)
    return sample_colorscale(ICICLE_SCALE, positions.tolist())


def label_colours(means: np.ndarray, limit: float) -> list[str]:
    """Per bar: black or white, whichever contrasts more with the bar's colour
    (:func:`bar_colours`) — at least 4.58:1 for any colour (WCAG AA needs 4.5)."""
    colours = []
    for fill in bar_colours(means, limit):
        lum = _luminance(fill)
        colours.append("white" if 1.05 / (lum + 0.05) >= (lum + 0.05) / 0.05 else "black")
    return colours


def split_icicle_figure(icicle: Mapping[str, list], selected: int | None,
                        height: int = 380) -> go.Figure:
    """The channel split tree as an icicle drawn with one bar per node (cartesian traces only).

    ``icicle``: ``SplitTree.to_icicle`` columns plus ``paths`` (sign paths). Row ``d``
    (root 0, at the top) spans y ∈ [−d−1, −d]; a node's bar spans its channels on the
    x axis (see :func:`icicle_boxes`). Bars are coloured by mean weight (RdBu_r centred at
    0), labelled "label<br>N ch." (one line when the rows are thin) where the text fits
    at 10 px or more (``uniformtext`` hides the rest), and carry ``customdata`` = sign
    path (the click target). The whole tree is drawn; ``selected`` is outlined
    (:func:`split_icicle_outline`). Axes are hidden and fixed (no zoom).
    """
    sizes = np.asarray(icicle["values"], dtype=float)
    means = np.asarray(icicle["mean"], dtype=float)
    limit = float(np.max(np.abs(means))) if means.size else 1.0
    limit = limit if limit > 0 else 1.0
    paths = list(icicle.get("paths") or icicle["labels"])
    left, depth = icicle_boxes(icicle)
    rows = int(depth.max()) + 1 if depth.size else 1
    total = float(sizes[0]) if sizes.size else 1.0
    margin = dict(l=8, r=8, t=12, b=8)
    # two lines of 10 px text need ≈ 34 px rows; deep trees (small min size) get one line
    sep = "<br>" if (height - margin["t"] - margin["b"]) / rows >= 34 else " · "
    hover = [f"<b>{path}</b><br>{int(size):,} channels<br>mean {format_number(float(mean))}"
             f"<br>{stop}" for path, size, mean, stop in zip(paths, sizes, means, icicle["stop"])]
    # Bars too narrow for their label at 10 px on the widest plot carry none: plotly
    # measures every label it is given (hundreds in "full" mode at a small min size), in
    # the page a forced layout each, then hides those that do not fit.
    labels = [f"{label}{sep}{int(size):,} ch." for label, size in zip(icicle["labels"], sizes)]
    bar_px = sizes / total * ICICLE_WIDEST_PX
    labelled = [size >= total / ICICLE_MAX_LABELS and px >= label_min_px(text) + _LABEL_PAD_PX
                for size, px, text in zip(sizes, bar_px, labels)]
    figure = go.Figure(go.Bar(
        x=left + sizes / 2, width=sizes, base=-(depth + 1.0), y=np.ones(sizes.size),
        customdata=paths, hovertext=hover, hovertemplate="%{hovertext}<extra></extra>",
        text=[text if keep else "" for text, keep in zip(labels, labelled)],
        textposition="inside", insidetextanchor="middle", textangle=0,
        # The label colour is given (the more readable of black and white on each bar): left
        # to plotly it warns once per bar with a console trace on every draw (seconds).
        insidetextfont=dict(color=label_colours(means, limit)),
        # Colours as given (the colour scale sampled here): with numbers and a colour scale
        # plotly.js warns once per bar on every draw ("Invalid color specifier"), seconds
        # for a tree of a few hundred nodes.
        marker=dict(color=bar_colours(means, limit), line=dict(color="white", width=1)),
    ))
    # The colour bar, on a trace with no visible point (never a click target).
    figure.add_trace(go.Scatter(
        x=[None], y=[None], mode="markers", hoverinfo="skip", showlegend=False,
        name="mean weight", marker=dict(
            color=[-limit, limit], colorscale=ICICLE_SCALE, cmin=-limit, cmax=limit,
            showscale=True, colorbar=dict(title=dict(text="mean<br>weight", side="top"),
                                          thickness=10, len=0.8))))
    pad = 0.004 * total  # room for the outline of nodes on the plot's edges
    figure.update_layout(**_layout(
        height=height, margin=margin, showlegend=False, bargap=0,
        hovermode="closest", clickmode="event", dragmode=False,
        uniformtext=dict(minsize=10, mode="hide"), shapes=split_icicle_outline(icicle, selected),
        xaxis=dict(visible=False, fixedrange=True, range=[-pad, total + pad]),
        yaxis=dict(visible=False, fixedrange=True, range=[-rows - 0.04, 0.04])))
    return figure
