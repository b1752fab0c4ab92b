"""Figures of the Compare page, from numpy arrays (no Dash here)."""

from __future__ import annotations

from typing import Sequence

import numpy as np
import plotly.graph_objects as go

from classmap.app.shell.figures import ACCENT, GRID, MUTED, TEMPLATE, TREE
from classmap.app.shell.tree_layout import compute_tree_layout

TANGLE_GAP = 0.6  # horizontal room between the two trees' leaves, in tree-height units
TANGLE_HEIGHT = 860  # pixels (the page's graph has the same height)


def bk_figure(levels: np.ndarray, bk: np.ndarray, expected: np.ndarray) -> go.Figure:
    """Fowlkes–Mallows B_k of the two trees cut into k clusters, with E[B_k] for
    independent partitions of the same sizes."""
    figure = go.Figure([
        go.Scatter(x=levels, y=bk, mode="lines", name="B_k", line=dict(color=ACCENT, width=2),
                   hovertemplate="k = %{x}<br>B_k %{y:.3f}<extra></extra>"),
        go.Scatter(x=levels, y=expected, mode="lines", name="E[B_k] (unrelated trees)",
                   line=dict(color=MUTED, width=1, dash="dash"),
                   hovertemplate="k = %{x}<br>E[B_k] %{y:.3f}<extra></extra>"),
    ], layout=dict(template=TEMPLATE, height=300, margin=dict(l=56, r=16, t=30, b=48),
                   legend=dict(orientation="h", y=1.02, yanchor="bottom", x=0)))
    # A little room left of the first k and below 0, so the axes' first labels ("2" and
    # "0") do not meet in the corner; the legend sits above the plot, clear of the "1".
    x_range = None
    if len(levels):
        x_range = [float(np.log10(np.min(levels) * 0.85)), float(np.log10(np.max(levels) * 1.05))]
    figure.update_xaxes(type="log", title="clusters k (both trees cut into k)",
                        gridcolor=GRID, range=x_range)
    figure.update_yaxes(range=[-0.04, 1.04], title="B_k", gridcolor=GRID)
    return figure


def tree_coordinates(linkage: np.ndarray, order: np.ndarray) -> tuple[np.ndarray, np.ndarray]:
    """The ⊏ links of a tree whose leaves sit at y = their position in ``order`` (any
    order the tree allows) and nodes at x = merge height / the root's, as one polyline
    walked depth-first (``TreeLayout.link_walk``): one SVG path instead of one per link —
    a 1,000-leaf tanglegram's two trees were 1,998 of its ≈ 4,200 elements.
    Returns ``(x, y)`` of shape (P,), P ≈ 8 (C − 1)."""
    count = len(order)
    layout = compute_tree_layout(np.asarray(linkage, dtype=np.float64), order)
    positions, heights = layout.link_walk(np.arange(count, 2 * count - 1))
    top = float(linkage[-1, 2]) or 1.0
    return heights.astype(np.float64) / top, positions.astype(np.float64)


def tanglegram_figure(
    linkage_a: np.ndarray, order_a: np.ndarray, linkage_b: np.ndarray, order_b: np.ndarray,
    names: Sequence[str], label_a: str, label_b: str, highlight: Sequence[int] = (),
) -> go.Figure:
    """Two trees facing each other (``a`` left, ``b`` right, leaves inward), each class's
    two leaves joined by a line; ``highlight`` classes' lines drawn in the accent colour."""
    count = len(order_a)
    ax, ay = tree_coordinates(linkage_a, order_a)
    bx, by = tree_coordinates(linkage_b, order_b)
    pos_a = np.empty(count)
    pos_a[order_a] = np.arange(count)
    pos_b = np.empty(count)
    pos_b[order_b] = np.arange(count)
    link_x = np.tile([0.0, TANGLE_GAP, np.nan], count)
    link_y = np.column_stack([pos_a, pos_b, np.full(count, np.nan)]).ravel()
    traces = [
        go.Scatter(x=link_x, y=link_y, mode="lines", hoverinfo="skip", name="links",
                   line=dict(color="rgba(120,130,140,0.25)", width=0.7)),
        go.Scatter(x=-ax, y=ay, mode="lines", hoverinfo="skip", name=label_a,
                   line=dict(color=TREE, width=1)),
        go.Scatter(x=TANGLE_GAP + bx, y=by, mode="lines", hoverinfo="skip", name=label_b,
                   line=dict(color=TREE, width=1)),
        # The classes' names on hover at the left tree's leaves, with no marker drawn:
        # plotly hovers (and clicks) a trace's points whatever its mode, and 1,000 markers
        # were ≈ 40 % of drawing the tanglegram (the leaves end the trees' lines anyway).
        go.Scatter(x=np.zeros(count), y=pos_a, mode="none", name="classes",
                   hovertext=list(names), hovertemplate="%{hovertext}<extra></extra>"),
    ]
    marked = [int(c) for c in highlight]
    if marked:
        traces.append(go.Scatter(
            x=np.tile([0.0, TANGLE_GAP, np.nan], len(marked)),
            y=np.column_stack([pos_a[marked], pos_b[marked],
                               np.full(len(marked), np.nan)]).ravel(),
            mode="lines", hoverinfo="skip", name="most disagreeing",
            line=dict(color=ACCENT, width=1.5)))
    figure = go.Figure(traces, layout=dict(
        template=TEMPLATE, height=TANGLE_HEIGHT, showlegend=False,
        margin=dict(l=16, r=16, t=36, b=16), dragmode="zoom", hovermode="closest",
        annotations=[dict(text=label_a, x=-0.5, y=1.02, xref="x", yref="paper",
                          showarrow=False, font=dict(size=12)),
                     dict(text=label_b, x=TANGLE_GAP + 0.5, y=1.02, xref="x", yref="paper",
                          showarrow=False, font=dict(size=12))]))
    figure.update_xaxes(visible=False, range=[-1.05, TANGLE_GAP + 1.05])
    figure.update_yaxes(visible=False, autorange="reversed")
    return figure
