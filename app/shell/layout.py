"""The frame around every page: header with the analysis controls, notices, stores.

The shell holds the shared state (``ids.SELECTION``, ``ids.STATUS``) so it survives
navigation between pages; each page's ``layout(**query)`` only adds its own widgets
and a :func:`~classmap.app.shell.callbacks.page_query_store` with its parsed URL query.
"""

from __future__ import annotations

import dash
from dash import dcc, html

from classmap.analysis.methods.hierarchy import LINKAGES
from classmap.app.shell import export_view, ids, model_busy
from classmap.app.shell.widgets import button, field, job_progress
from classmap.app.shell.jobs import failure_bar, watchdog_interval
from classmap.app.config import Settings
from classmap.app.hosting import uploads

METRIC_OPTIONS = [
    {"label": "cosine", "value": "cosine",
     "title": "cosine of standardised rows — identical to Pearson correlation of the raw rows"},
    {"label": "Euclidean", "value": "euclidean",
     "title": "Euclidean distance of standardised rows (same neighbour order as cosine)"},
]
LINKAGE_LABELS = {"ward": "Ward (on row vectors)", "average": "average", "complete": "complete",
                  "single": "single"}


def page_slugs() -> dict[str, str]:
    """Each registered page's path under the URL prefix → its short name (the module's
    last part: ``classes``, ``weights``, ``samples`` …), for the app root's class."""
    return {page["relative_path"]: page["module"].rsplit(".", 1)[-1]
            for page in dash.page_registry.values()}


def build_shell(settings: Settings) -> html.Div:
    """The app layout: header, notice bar, page container, shared stores."""
    models = [{"label": entry.label, "value": entry.id} for entry in settings.models]
    nav = [
        dcc.Link(page["name"], href=page["relative_path"], className="cm-nav-link",
                 id={"type": ids.NAV_LINK, "path": page["relative_path"]})
        for page in sorted(dash.page_registry.values(), key=lambda p: (p.get("order") or 0,
                                                                       p["path"]))
    ]
    header = html.Header([
        html.Div([
            html.Span("Classmap", className="cm-brand-name"),
            html.Span("how a classifier relates its classes", className="cm-brand-tag"),
        ], className="cm-brand"),
        html.Nav(nav + uploads.header_link(settings), id=ids.NAV, className="cm-nav"),
        html.Div([
            field("Model", dcc.Dropdown(id=ids.MODEL_PICKER, options=models,
                                        value=settings.default_model, clearable=False,
                                        searchable=False, className="cm-model-picker")),
            model_busy.busy_note(),
            field("Metric", dcc.RadioItems(id=ids.METRIC_PICKER, options=METRIC_OPTIONS,
                                           value="cosine", inline=True,
                                           className="cm-segmented"),
                  class_name="cm-classes-only"),
            field("Linkage", dcc.Dropdown(
                id=ids.LINKAGE_PICKER, clearable=False, searchable=False, value="ward",
                options=[{"label": LINKAGE_LABELS[name], "value": name} for name in LINKAGES],
                className="cm-linkage-picker"), class_name="cm-classes-only"),
            field("Images as", dcc.RadioItems(
                id=ids.FIGURE_FORMAT, value="png", inline=True, persistence=True,
                persistence_type="local",
                options=[{"label": "PNG", "value": "png",
                          "title": "graphs' download button writes PNG pictures"},
                         {"label": "SVG", "value": "svg",
                          "title": "graphs' download button writes SVG (vector) drawings"}],
                className="cm-segmented cm-segmented-small")),
            html.Div([
                button(export_view.BUTTON_LABEL, export_view.EXPORT_VIEW,
                       title="download one zip: the view's data (CSV; Newick on Classes), its "
                             "figures (SVG and PNG, titled) and the URL that reopens it"),
                dcc.Download(id=export_view.EXPORT_DOWNLOAD),
            ], className="cm-field cm-export-view"),
            job_progress(ids.JOB_PANEL, ids.JOB_PROGRESS, ids.JOB_LABEL, ids.JOB_CANCEL,
                         "Preparing the analysis…"),
            failure_bar(ids.JOB_FAILURE, ids.JOB_FAILURE_TEXT, ids.JOB_RETRY),
            watchdog_interval(ids.JOB_WATCHDOG),
        ], className="cm-controls"),
    ], className="cm-header")
    notice = html.Div([
        html.Span(id=ids.NOTICE_TEXT, className="cm-notice-text"),
        button("×", ids.NOTICE_CLOSE, kind="ghost", title="dismiss"),
    ], id=ids.NOTICE, className="cm-notice cm-notice-hidden", role="status")
    return html.Div([
        header,
        notice,
        html.Main(dash.page_container, className="cm-main"),
        html.Footer([
            "Classmap · scores are computed from the classifier head's weights "
            "(rows standardised); every view is shareable — copy the URL.",
        ], className="cm-footer"),
        dcc.Store(id=ids.SELECTION, storage_type="memory"),
        dcc.Store(id=ids.STATUS, storage_type="memory"),
        dcc.Store(id=ids.JOB_REQUEST, storage_type="memory"),
        dcc.Store(id=ids.SETTLE_REQUEST, storage_type="memory"),
        dcc.Store(id=ids.ANALYSIS_KEY, storage_type="memory"),
        dcc.Store(id=ids.URL_SYNC, storage_type="memory"),
        dcc.Store(id=ids.DOWNLOADS, storage_type="memory"),
    ], id=ids.APP, className="cm-app")
