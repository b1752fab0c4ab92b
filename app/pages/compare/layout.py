"""Layout of the Compare page: two source pickers, the measures, the tanglegram and the
most disagreeing pairs. Figures arrive from :mod:`classmap.app.pages.compare.callbacks`."""

from __future__ import annotations

from typing import Any

from dash import dcc, html

from classmap.analysis.methods.compare import DEFAULT_PERMUTATIONS
from classmap.analysis.methods.hierarchy import LINKAGES
from classmap.app.pages.compare import figures, ids
from classmap.app.shell.figures import message_figure
from classmap.app.shell.images import image_services_for
from classmap.app.shell.jobs import failure_bar, watchdog_interval
from classmap.app.shell.services import current_services
from classmap.app.shell.widgets import card, field, graph, job_progress

RELATION_OPTIONS = [
    {"label": "weight cosine", "value": "cosine"},
    {"label": "weight Euclidean", "value": "euclidean"},
    {"label": "WordNet", "value": "wordnet"},
    {"label": "confidence JS (images)", "value": "confidence"},
    {"label": "feature means (images)", "value": "features"},
    {"label": "Grad-CAM weight means (images)", "value": "gradcam"},
]


def source_picker(side: str, models: tuple[str, ...], model: str, relation: str,
                  linkage: str, data_sets: list[dict[str, str]]) -> html.Div:
    """Model, relation, linkage and (for the image relations) data set of one source."""
    return html.Div([
        html.H3(f"Source {side.upper()}", className="cm-selection-title"),
        field("Model", dcc.Dropdown(id=ids.source_control(side, "model"), value=model,
                                    options=list(models), clearable=False)),
        field("Relation", dcc.RadioItems(id=ids.source_control(side, "relation"),
                                         value=relation, options=RELATION_OPTIONS, inline=True,
                                         className="cm-segmented cm-segmented-small "
                                                   "cm-segmented-grid")),
        field("Linkage", dcc.Dropdown(id=ids.source_control(side, "linkage"), value=linkage,
                                      options=list(LINKAGES), clearable=False)),
        field("Data set (image relations)", dcc.Dropdown(
            id=ids.source_control(side, "data"), value=data_sets[0]["value"],
            options=data_sets, clearable=False)),
    ], className="cm-compare-source")


def default_sources(settings: Any) -> tuple[tuple[str, str, str], tuple[str, str, str]]:
    """The sources the page starts with: (model, relation, linkage) of A and B — the first
    model's weight cosine / ward and WordNet / average."""
    first = settings.model_ids[0]
    return (first, "cosine", "ward"), (first, "wordnet", "average")


def layout(**query: str) -> html.Div:
    """The page; both sources start on the default model (weight cosine / ward vs WordNet)."""
    services = current_services()
    models = services.settings.model_ids
    data_sets = [{"label": entry.label, "value": entry.id}
                 for entry in image_services_for(services).data_sets]
    a, b = default_sources(services.settings)
    sources = card(
        "Sources",
        [html.Div([source_picker("a", models, *a, data_sets),
                   source_picker("b", models, *b, data_sets)],
                  className="cm-grid"),
         html.Div([
             field("Mantel permutations", dcc.Input(
                 id=ids.COMPARE_PERMUTATIONS, type="number", min=0, max=9999, step=1,
                 value=DEFAULT_PERMUTATIONS, className="cm-number-input",
                 style={"width": "6em"})),
             html.Button("Compare", id=ids.COMPARE_RUN, n_clicks=0,
                         className="cm-button cm-button-primary"),
             job_progress(ids.COMPARE_PANEL, ids.COMPARE_PROGRESS, ids.COMPARE_LABEL,
                          ids.COMPARE_CANCEL, "Comparing…"),
             failure_bar(ids.COMPARE_FAILURE, ids.COMPARE_FAILURE_TEXT, ids.COMPARE_RETRY),
             watchdog_interval(ids.COMPARE_WATCHDOG),
             dcc.Store(id=ids.COMPARE_STATUS, storage_type="memory"),
             dcc.Store(id=ids.COMPARE_JOB, storage_type="memory"),
         ], className="cm-card-tools")],
        subtitle="Two ways of relating the same classes: a model's head weights (cosine or "
                 "Euclidean of standardised rows) or WordNet 3.0, each clustered into a tree. "
                 "Two models with the same classes (lite0 vs lite1 vs lite2) compare the same "
                 "way. WordNet needs ImageNet-style class ids; ward is not offered on WordNet "
                 "distances or the JS divergence (not Euclidean). The image relations — "
                 "confidence JS of the class-mean softmax, cosine of the class means of image "
                 "features or Grad-CAM weights — use the data set's cached image analysis "
                 "(run the Samples page first) and cover only the classes with images; "
                 "sources are compared over the classes both cover. The comparison runs in "
                 "the background (progress and Cancel beside the button); starting it needs "
                 "the operator role on a shared server.",
    )
    waiting = message_figure("Pick two sources and press Compare", height=300)
    results = card("Agreement", [
        html.Div(id=ids.COMPARE_SUMMARY, className="cm-stats cm-summary-stats"),
        graph(ids.COMPARE_BK, waiting, height=300),
    ], subtitle="Spearman's ρ over all class pairs of the two distance matrices; the Mantel "
                "test's Pearson r with its permutation p-value; the cophenetic correlation of "
                "the two trees; Fowlkes–Mallows B_k of the two trees cut into k clusters "
                "against its value for unrelated trees.")
    tangle = card("Tanglegram", [graph(ids.COMPARE_TANGLEGRAM, message_figure(
        "Pick two sources and press Compare", height=figures.TANGLE_HEIGHT),
        height=figures.TANGLE_HEIGHT)],
        subtitle="Source A's tree on the left, B's on the right, each class's two leaves "
                 "joined; B's subtrees are turned to follow A's order (untangling). The most "
                 "disagreeing pairs' links are drawn in orange.")
    pairs = card("Where they disagree", [html.Div(id=ids.COMPARE_PAIRS)],
                 subtitle="Class pairs whose distance ranks differ most (0 = the closest "
                          "pair of all, 1 = the farthest; a pair opens the Classes page with "
                          "both classes selected), and the classes whose 10 nearest classes "
                          "overlap least between the two sources (Jaccard).")
    return html.Div([
        html.Div([html.Div([sources, results], className="cm-col-main"),
                  html.Div([pairs], className="cm-col-side")], className="cm-grid"),
        html.Div([tangle], className="cm-grid-wide"),
    ], className="cm-page cm-page-compare")
