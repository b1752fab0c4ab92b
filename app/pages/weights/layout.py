"""Layout of the Weight distributions page, built from the parsed URL query only.

Figures arrive from :mod:`classmap.app.pages.weights.callbacks`.
"""

from __future__ import annotations

from typing import Any, Mapping, Sequence

from dash import dcc, html

import classmap.app.pages.weights.services  # noqa: F401 — registers the page's selection fields
from classmap.analysis.methods.channel_split import SPLIT_MODES
from classmap.app.pages.weights import ids
from classmap.app.shell.callbacks import page_query_store
from classmap.app.shell.services import current_services
from classmap.app.shell.jobs import failure_bar, watchdog_interval
from classmap.app.shell.widgets import (busy_area, card, field, graph, how_to_read, job_progress,
                                         provisional_options)
from classmap.app.shell.figures import message_figure
from classmap.app.pages.weights.services import MAX_MIN_SIZE
from classmap.app.shell.selection import parse_query

PAGE = "weights"


def build_weights_page(selection: Mapping[str, Any], problems: Sequence[str]) -> html.Div:
    """The page for ``selection`` (already parsed from the URL)."""
    loading = message_figure("Loading…")
    overview = card(
        "All classes",
        [graph(ids.WEIGHTS_OVERVIEW, loading, height=300),
         graph(ids.WEIGHTS_SCATTER, loading, height=380),
         html.Div(id=ids.WEIGHTS_PROBLEMS, className="cm-note")],
        tools=[field("Scatter", dcc.RadioItems(
            id=ids.WEIGHTS_SCATTER_AXES, value="kappa-ks", inline=True,
            options=[{"label": "κ vs KS", "value": "kappa-ks"},
                     {"label": "R²₊ vs R²₋", "value": "r2"}],
            className="cm-segmented cm-segmented-small"))],
        subtitle="Each class's head row fitted two ways: the straight-line regression of the "
                 "weight-distribution write-up (log of sorted weights against rank) "
                 "(R² per side) and maximum likelihood (κ, KS). Click a point to make that "
                 "class the focal class.",
    )
    focal = card(
        "Focal class",
        [
            field("Focal class", dcc.Dropdown(
                id=ids.weights_control("focal"), value=selection.get("focal"),
                options=provisional_options(selection.get("focal")),
                searchable=True, clearable=True, placeholder="Search a class by name or id…",
                optionHeight=44, maxHeight=360)),
            html.H3(id=ids.WEIGHTS_FOCAL_TITLE, className="cm-selection-title",
                    children="No focal class"),
            graph(ids.WEIGHTS_HISTOGRAM, message_figure("Pick a focal class", height=360),
                  height=360),
            html.Div(id=ids.WEIGHTS_FIT_TABLE),
        ],
        subtitle="Histogram of the class's weights with the MLE asymmetric Laplace density "
                 "and the density implied by the write-up's regression lines.",
    )
    split = card(
        "Channel split",
        [
            graph(ids.WEIGHTS_ICICLE, message_figure("Pick a focal class", height=380),
                  height=380),
            html.Div(id=ids.WEIGHTS_NODE_TITLE, className="cm-selection-title",
                     children="Click a node to list its channels"),
            # Filled by the browser from WEIGHTS_NODE_ITEMS: as Dash components, a node's
            # ~1,900 list items took dash-renderer tens of seconds to build.
            dcc.Store(id=ids.WEIGHTS_NODE_ITEMS),
            html.Ol(id=ids.WEIGHTS_NODE_CHANNELS, className="cm-class-list cm-channel-list",
                    style={"display": "grid",
                           "gridTemplateColumns": "repeat(auto-fill, minmax(12em, 1fr))",
                           "maxHeight": "22em", "overflowY": "auto",
                           "listStylePosition": "inside"}),
        ],
        tools=[
            field("Split", dcc.RadioItems(
                id=ids.weights_control("split"), value=selection.get("split") or "chains",
                inline=True, options=[{"label": name, "value": name, "title": text}
                                      for name, text in SPLIT_MODES.items()],
                className="cm-segmented cm-segmented-small")),
            field("Min size", dcc.Input(
                id=ids.weights_control("minsize"), type="number", min=2, max=MAX_MIN_SIZE, step=1,
                value=selection.get("minsize") or 20, debounce=True,
                className="cm-number-input", style={"width": "5.5em"})),
        ],
        subtitle="Each node splits its channels at their mean weight (+ above, − below); "
                 "nodes under the min size stay whole. The end of the + chain holds the most "
                 "discriminative channels, the end of the − chain the most confusing.",
    )
    cam = card(
        "Channel CAM",
        [
            # The CAM's background job: reads the image folder if no job has, then computes.
            job_progress(ids.WEIGHTS_CAM_PANEL, ids.WEIGHTS_CAM_PROGRESS, ids.WEIGHTS_CAM_LABEL,
                         ids.WEIGHTS_CAM_CANCEL, "Preparing the channel CAM…"),
            failure_bar(ids.WEIGHTS_CAM_FAILURE, ids.WEIGHTS_CAM_FAILURE_TEXT,
                        ids.WEIGHTS_CAM_RETRY),
            watchdog_interval(ids.WEIGHTS_CAM_WATCHDOG),
            busy_area(ids.WEIGHTS_CAM_BOX, ids.WEIGHTS_CAM_BUSY,
                      "Computing the channel CAM (Smooth Grad-CAM++ of the focal class on "
                      "the node's channels)…",
                      [html.Div(id=ids.WEIGHTS_CAM_TITLE, className="cm-selection-title",
                                children="Loading…"),
                       html.Div(id=ids.WEIGHTS_CAM_VIEW)]),
        ],
        tools=[
            field("Data", dcc.Dropdown(id=ids.WEIGHTS_CAM_DATA, options=[], clearable=False,
                                       placeholder="No image folder configured",
                                       style={"minWidth": "14em"})),
            field("Image", dcc.Dropdown(id=ids.WEIGHTS_CAM_IMAGE, options=[], clearable=False,
                                        searchable=True, placeholder="Pick an image…",
                                        style={"minWidth": "18em"})),
        ],
        subtitle="Where the selected node's channels respond in an image: Smooth Grad-CAM++ "
                 "of the focal class restricted to the node's channels (all channels when "
                 "no node is selected). Needs a CNN whose head reads its last conv stage.",
    )
    guide = how_to_read(
        "Each class's weights (one head row) are treated as a sample. Two fits describe "
        "their shape: the straight-line regression of the weight-distribution write-up "
        "(log of sorted weights against rank; R² near 1 = a good line) and a maximum-"
        "likelihood asymmetric Laplace density (κ = asymmetry, KS = misfit, lower is better).",
        "The two κ differ: the regression's κ is derived from the line's slope and intercept, "
        "the MLE κ from the density itself; they need not agree.",
        "The channel split divides a class's channels at their mean weight, again and again; "
        "the channel CAM shows where the selected node's channels respond in an image.",
        "Numbers marked with a circled i explain themselves on hover.")
    return html.Div([
        page_query_store(PAGE, selection, problems),
        guide,
        html.Div(id=ids.WEIGHTS_SUMMARY, className="cm-summary",
                 children=html.Span("Loading the model…", className="cm-muted")),
        html.Div([
            html.Div([overview], className="cm-col-main"),
            html.Div([focal], className="cm-col-side"),
        ], className="cm-grid"),
        html.Div([split], className="cm-grid-wide"),
        html.Div([cam], className="cm-grid-wide"),
        dcc.Store(id=ids.WEIGHTS_KEY), dcc.Store(id=ids.WEIGHTS_TREE_KEY),
        dcc.Store(id=ids.WEIGHTS_MODEL_KEY), dcc.Store(id=ids.WEIGHTS_FOCAL_KEY),
        dcc.Store(id=ids.WEIGHTS_SCATTER_DRAWN), dcc.Store(id=ids.WEIGHTS_SCATTER_OVERLAY),
        dcc.Store(id=ids.WEIGHTS_STATUS), dcc.Store(id=ids.WEIGHTS_SELECTION),
        dcc.Store(id=ids.WEIGHTS_SELECT),
        dcc.Store(id=ids.WEIGHTS_CAM_STATUS), dcc.Store(id=ids.WEIGHTS_CAM_JOB),
    ], className="cm-page cm-page-weights")


def layout(**query: str) -> html.Div:
    """The page for the URL ``query`` (parsed and checked against the configured models)."""
    settings = current_services().settings
    selection, problems = parse_query(query, settings.model_ids)
    return build_weights_page(selection, problems)


__all__ = ["PAGE", "build_weights_page", "layout"]
