"""Layout of the Classes page: heatmap + dendrogram, nearest classes, selection, class map.

Built from the parsed URL query only (no model loading here — Dash Pages calls
``layout()`` once at start-up, and the figures arrive from callbacks).
"""

from __future__ import annotations

from typing import Any, Mapping, Sequence

from dash import dcc, html

from classmap.analysis.methods.embedding import EMBEDDING_LABELS, EMBEDDING_METHODS, umap_available
from classmap.app.pages.classes import ids
from classmap.app.pages.classes.thumbnails import neighbour_strips, selection_strips
from classmap.app.shell.callbacks import page_query_store, resolve_page_query
from classmap.app.shell.jobs import failure_bar, watchdog_interval
from classmap.app.shell.services import current_services
from classmap.app.shell.widgets import button, card, field, graph, how_to_read, job_progress
from classmap.app.pages.classes.figures import DENDROGRAM_HEIGHT, message_figure
from classmap.app.shell.selection import MAX_CUT, MAX_TOP_K, parse_query

PAGE = "classes"


def cut_limit(num_classes: int | None) -> int:
    """The most clusters the cut slider offers: C − 1 (C clusters are the classes
    themselves), at most :data:`MAX_CUT`; unknown C → MAX_CUT."""
    return MAX_CUT if num_classes is None else max(1, min(MAX_CUT, int(num_classes) - 1))


def cut_marks(limit: int) -> dict[int, str]:
    """The cut slider's marks up to ``limit``: off, 5, 10, 20, 40 where they fit (not
    crowding the last), and ``limit`` itself."""
    marks = {0: "off"}
    marks.update({k: str(k) for k in (5, 10, 20, 40) if k <= 0.88 * limit})
    marks[limit] = str(limit)
    return marks


def build_classes_page(selection: Mapping[str, Any], problems: Sequence[str], *,
                       resolved: Mapping[str, Any] | None = None,
                       focal_options: Sequence[Mapping[str, str]] = ()) -> html.Div:
    """The page for ``selection`` (parsed from the URL; ``resolved``: as the shell will
    adopt it). ``focal_options``: the class picker's first options, which must hold the
    focal class (Dash's dropdown clears a value it has no option for)."""
    cut = int(selection.get("cut") or 0)
    k = int(selection.get("k") or 10)
    embedding = selection.get("embedding") or "pca"
    loading = message_figure("Loading…")
    tree_tools = [
        field("Clusters", dcc.Slider(
            id=ids.CUT_SLIDER, min=0, max=MAX_CUT, step=1, value=cut,
            marks=cut_marks(MAX_CUT),
            tooltip={"placement": "bottom", "always_visible": False}, updatemode="mouseup",
        ), class_name="cm-field-slider"),
    ]
    matrix = card(
        "Similarity and hierarchy",
        [
            graph(ids.DENDROGRAM, loading, class_name="cm-dendrogram", height=DENDROGRAM_HEIGHT),
            graph(ids.HEATMAP, loading, class_name="cm-heatmap", height=660,
                  clear_on_unhover=True),
            dcc.Tooltip(id=ids.HEATMAP_TOOLTIP, direction="right", className="cm-tooltip"),
            html.P(id=ids.HEATMAP_NOTE, className="cm-note"),
        ],
        tools=tree_tools,
        subtitle="Classes in dendrogram order. Click a tree node to select its subtree; "
                 "click a cell to make its row the focal class; drag to zoom.",
        class_name="cm-card-matrix",
    )
    neighbours = card(
        "Nearest classes",
        [
            html.Div([
                field("Focal class", dcc.Dropdown(
                    id=ids.FOCAL, options=list(focal_options), value=selection.get("focal"),
                    searchable=True,
                    clearable=True,
                    placeholder="Search a class by name or id…", className="cm-focal-picker",
                    optionHeight=44, maxHeight=360,
                ), class_name="cm-grow"),
                field("Top", dcc.Dropdown(
                    id=ids.TOP_K, value=k, clearable=False, searchable=False,
                    options=[{"label": str(v), "value": v} for v in (5, 10, 15, 20, MAX_TOP_K)],
                    className="cm-topk-picker")),
            ], className="cm-row"),
            graph(ids.NEIGHBOURS, message_figure("Pick a focal class", height=300),
                  class_name="cm-neighbours", config={"displayModeBar": "hover"}),
            *neighbour_strips(),  # images of the classes (thumbnails.py)
            # Filled in the browser (classmap.renderTable) from NEIGHBOURS_ROWS: a
            # dcc.Markdown here loaded 465 kB of Markdown and highlight.js per page.
            html.Details([html.Summary("Table"),
                          html.Div(id=ids.NEIGHBOURS_TABLE, className="cm-table")],
                         className="cm-details"),
        ],
        tools=[button("CSV", ids.EXPORT_NEIGHBOURS, kind="ghost",
                      title="download the focal class's neighbours as CSV")],
        subtitle="Click a bar to make that class the focal class.",
    )
    subtree = card(
        "Selection",
        [
            html.Div(id=ids.SUBTREE_TITLE, className="cm-selection-title",
                     children="Nothing selected"),
            html.Div(id=ids.SUBTREE_STATS, className="cm-stats"),
            html.Div([
                button("Zoom to subtree", ids.ZOOM_BUTTON, kind="primary", disabled=True,
                       title="draw the heatmap and dendrogram for this subtree only"),
                button("Whole tree", ids.UNZOOM_BUTTON, disabled=True),
                button("Clear", ids.CLEAR_SELECTION, kind="ghost", disabled=True),
            ], className="cm-row cm-buttons"),
            # The browser fills the list (classmap.renderList, one <li> per class) from
            # SUBTREE_ITEMS: as Dash components, hundreds of items slowed every update,
            # and a dcc.Markdown loaded 465 kB of Markdown and highlight.js per page.
            html.Div([html.Ol(id=ids.SUBTREE_CLASSES),
                      html.P(id=ids.SUBTREE_MORE)], className="cm-class-list"),
            *selection_strips(),  # images of the classes (thumbnails.py)
        ],
        tools=[button("CSV", ids.EXPORT_SUBTREE, kind="ghost",
                      title="download the selected classes as CSV"),
               button("Newick", ids.EXPORT_NEWICK, kind="ghost",
                      title="download the whole tree in Newick format")],
        subtitle="A subtree (click a node) or a lasso selection in the class map.",
        card_id=ids.SUBTREE_PANEL,
    )
    methods = [
        {"label": EMBEDDING_LABELS[name], "value": name,
         "disabled": name == "umap" and not umap_available()}
        for name in EMBEDDING_METHODS
    ]
    class_map = card(
        "Class map",
        [
            job_progress(ids.EMBED_PANEL, ids.EMBED_PROGRESS, ids.EMBED_LABEL, ids.EMBED_CANCEL,
                         "Computing the map…"),
            failure_bar(ids.EMBED_FAILURE, ids.EMBED_FAILURE_TEXT, ids.EMBED_RETRY),
            watchdog_interval(ids.EMBED_WATCHDOG),
            graph(ids.CLASS_MAP, loading, class_name="cm-class-map", height=480),
            html.P(id=ids.EMBEDDING_NOTE, className="cm-note"),
        ],
        tools=[field("Layout", dcc.RadioItems(id=ids.EMBEDDING_PICKER, options=methods,
                                              value=embedding, inline=True,
                                              className="cm-segmented cm-segmented-small"))],
        subtitle="Each point is a class's head row; colours follow the cut. "
                 "Lasso points to select them.",
        class_name="cm-card-map",
    )
    summary = html.Div(id=ids.MODEL_SUMMARY, className="cm-summary",
                       children=html.Span("Loading the model…", className="cm-muted"))
    guide = how_to_read(
        "Every class is one row of the classifier's last layer (its head). Rows are "
        "standardised, then compared: cosine (−1 to 1, higher = more alike) or Euclidean "
        "distance (lower = more alike) — the Metric control above.",
        "The heatmap shows every pair of classes in the dendrogram's order, so groups of "
        "alike classes form dark blocks on the diagonal; the tree above joins classes and "
        "groups from the most alike (low merges) up. Drag on either to zoom both.",
        "Nearest classes lists the focal class's closest classes; a longer bar is closer. "
        "The class map places classes in 2-D so that alike classes sit near each other; its "
        "axes have no units.",
        "Numbers marked with a circled i explain themselves on hover. The method follows the "
        "weight-similarity write-up, with its clustering done on the rows themselves.")
    return html.Div([
        page_query_store(PAGE, selection, problems, resolved),
        guide,
        summary,
        html.Div([
            html.Div([matrix], className="cm-col-main"),
            html.Div([neighbours, subtree], className="cm-col-side"),
        ], className="cm-grid"),
        html.Div([class_map], className="cm-grid-wide"),
        dcc.Store(id=ids.CLASSES_SELECTION), dcc.Store(id=ids.CLASSES_STATUS),
        dcc.Store(id=ids.CLASSES_MODEL_STATUS),
        dcc.Store(id=ids.CLASSES_SELECT),
        dcc.Store(id=ids.HEATMAP_KEY), dcc.Store(id=ids.DENDROGRAM_KEY),
        dcc.Store(id=ids.CLASS_MAP_KEY), dcc.Store(id=ids.EMBED_JOB),
        dcc.Store(id=ids.HEATMAP_FIGURE), dcc.Store(id=ids.DENDROGRAM_FIGURE),
        dcc.Store(id=ids.CLASS_MAP_FIGURE), dcc.Store(id=ids.NEIGHBOURS_KEY),
        dcc.Store(id=ids.MATRIX_SELECTION), dcc.Store(id=ids.PANEL_SELECTION),
        dcc.Store(id=ids.CLASS_MAP_SELECTION),
        dcc.Store(id=ids.HEATMAP_OVERLAY), dcc.Store(id=ids.DENDROGRAM_OVERLAY),
        dcc.Store(id=ids.HEATMAP_ZOOM), dcc.Store(id=ids.RANGE_SINK),
        dcc.Store(id=ids.CLASS_MAP_OVERLAY), dcc.Store(id=ids.CLASS_MAP_COLOURS),
        dcc.Store(id=ids.EMBED_DONE), dcc.Download(id=ids.DOWNLOAD),
        dcc.Store(id=ids.SUBTREE_ITEMS), dcc.Store(id=ids.NEIGHBOURS_ROWS),
        dcc.Store(id=ids.FOCAL_ALL), dcc.Store(id=ids.FOCAL_ALL_MODEL),
        dcc.Store(id=ids.NEIGHBOURS_OVERLAY), dcc.Store(id=ids.NEIGHBOURS_RENDERED),
    ], className="cm-page cm-page-classes")


def layout(**query: str) -> html.Div:
    """The page for the URL ``query`` (parsed, checked against the configured models and,
    when its analysis is in memory, against the model)."""
    from classmap.app.pages.classes.callbacks import picker_options

    services = current_services()
    selection, problems = parse_query(query, services.settings.model_ids)
    resolved = resolve_page_query(services, selection, problems)
    return build_classes_page(resolved["selection"], problems, resolved=resolved,
                              focal_options=picker_options(services, resolved))
