"""Layouts of the image pages (Samples, Clustering, Confidence), from the URL query only.

Every page has the same top strip — data set picker, class picker (the shared focal
class), the background job's progress and a one-line status — followed by its
cards. Figures arrive from :mod:`classmap.app.pages.images.callbacks` once the (model, data set)
analysis is ready; nothing is loaded here.
"""

from __future__ import annotations

from typing import Any, Mapping, Sequence

from dash import dcc, html

from classmap.analysis.methods.representations import CLUSTERING_ALGORITHMS, REPRESENTATIONS
from classmap.app.pages.images import ids
from classmap.app.shell.callbacks import page_query_store
from classmap.app.shell.jobs import failure_bar, watchdog_interval
from classmap.app.shell.services import current_services
from classmap.app.shell.selection import parse_query
from classmap.app.shell.widgets import (busy_area, card, field, graph, how_to_read, job_progress,
                                        provisional_options)
from classmap.app.shell.figures import message_figure
from classmap.app.shell.images import DIGITS, REPRESENTATION_LABELS, DataSetEntry, data_entries

ALGORITHM_LABELS = {"kmeans": "k-means", "gmm": "Gaussian mixture"}
IMAGE_BOX = {"width": "224px", "height": "224px", "imageRendering": "pixelated",
             "border": "1px solid #e4e7eb", "borderRadius": "4px", "background": "#f5f7fa",
             "objectFit": "contain"}
GRADCAM_NOTE = (
    "For CNNs that end in global average pooling and one linear layer (ResNets, "
    "EfficientNets) the Grad-CAM weights equal the predicted class's head row divided by "
    "H′·W′, for every image: they carry only the prediction, so their within-class "
    "similarity and clustering scores measure agreement of predictions, not of evidence. "
    "LeNet-5 reads its feature map before a max-pool and an MLP, so there the weights "
    "vary per image."
)


def representation_options() -> list[dict[str, str]]:
    return [{"label": REPRESENTATION_LABELS[r], "value": r} for r in REPRESENTATIONS]


def page_id(kind: str, page: str) -> dict[str, str]:
    """Pattern-matching id of a control that only some image pages have."""
    return {"type": kind, "page": page}


def representation_picker(page: str, selection: Mapping[str, Any]) -> html.Label:
    """The representation dropdown (bound to the shared ``rep`` field)."""
    return field("Representation", dcc.Dropdown(
        id=page_id(ids.REPRESENTATION_PICKER, page), value=selection.get("rep") or "features",
        options=representation_options(), clearable=False, searchable=False,
        style={"minWidth": "320px"}))


def image_controls(selection: Mapping[str, Any], data_sets: Sequence[DataSetEntry],
                   extra: Sequence[Any] = ()) -> html.Div:
    """Data set and class pickers, extra page controls, job progress and status line."""
    data = selection.get("data") or "digits"
    return html.Div([
        html.Div([
            field("Data set", dcc.Dropdown(
                id=ids.DATA_PICKER, value=data, clearable=False, searchable=False,
                options=[{"label": entry.label, "value": entry.id} for entry in data_sets],
                style={"minWidth": "300px"})),
            field("Class", dcc.Dropdown(
                id=ids.IMAGE_FOCAL, value=selection.get("focal"),
                options=provisional_options(selection.get("focal")), clearable=True,
                searchable=True, placeholder="Highlight a class…", className="cm-focal-picker",
                style={"minWidth": "240px"})),
            *extra,
            job_progress(ids.IMAGE_PANEL, ids.IMAGE_PROGRESS, ids.IMAGE_LABEL, ids.IMAGE_CANCEL,
                         "Extracting representations…"),
            failure_bar(ids.IMAGE_FAILURE, ids.IMAGE_FAILURE_TEXT, ids.IMAGE_RETRY),
            watchdog_interval(ids.IMAGE_WATCHDOG),
        ], className="cm-row", style={"alignItems": "flex-end", "gap": "16px",
                                       "flexWrap": "wrap"}),
        html.P("Preparing the image analysis…", id=ids.IMAGE_MESSAGE, className="cm-note"),
        dcc.Store(id=ids.IMAGE_SELECTION, storage_type="memory"),
        dcc.Store(id=ids.IMAGE_STATUS, storage_type="memory"),
        dcc.Store(id=ids.IMAGE_JOB, storage_type="memory"),
        dcc.Store(id=ids.IMAGE_SELECT, storage_type="memory"),
        *(dcc.Store(id=key, storage_type="memory") for key in ids.IMAGE_KEYS),
    ], className="cm-card", style={"padding": "12px 16px", "marginBottom": "16px"})


def build_samples_page(page: str, selection: Mapping[str, Any], problems: Sequence[str],
                       data_sets: Sequence[DataSetEntry]) -> html.Div:
    rep = representation_picker(page, selection)
    scatter = card(
        "Images by representation",
        [graph(ids.SAMPLES_GRAPH, message_figure("Loading…", height=560), height=560)],
        subtitle="PCA of each image's representation (2 components), coloured by true class. "
                 "Click an image to see it with its Grad-CAM map; its class becomes the "
                 "focal class on every page.",
    )
    grid = card(
        "Images",
        [html.P("Preparing the image analysis…", id=ids.SAMPLES_GRID_NOTE, className="cm-note"),
         # Filled in the browser (classmap.renderThumbGrid) from SAMPLES_GRID_DATA: as
         # Dash components, hundreds of thumbnails would slow every update of the page.
         html.Div(id=ids.SAMPLES_GRID, className="cm-thumb-grid"),
         dcc.Store(id=ids.SAMPLES_GRID_DATA), dcc.Store(id=ids.SAMPLES_GRID_PICK)],
        subtitle="Thumbnails by true class (the focal class first). Hover an image to see its "
                 "Grad-CAM map over it; click it to pin the map, see it large on the right "
                 "and make its class the focal class.",
    )
    detail = card(
        "Selected image",
        [busy_area(ids.SAMPLE_BOX, ids.SAMPLE_BUSY,
                   "Drawing the image and its Grad-CAM map (the predicted class's evidence)…", [
            # The images stay hidden until a sample is chosen (an <img> without a source
            # is a broken-image icon); the placeholder says what to do meanwhile.
            html.Div("No image yet: click a point in the scatter or a thumbnail.",
                     id=ids.SAMPLE_PLACEHOLDER, className="cm-muted cm-sample-placeholder"),
            html.Div([
                html.Figure([html.Img(id=ids.SAMPLE_IMAGE, alt="selected image", style=IMAGE_BOX),
                             html.Figcaption("image", className="cm-muted")],
                            style={"margin": 0}),
                html.Figure([html.Img(id=ids.SAMPLE_CAM, alt="Grad-CAM overlay", style=IMAGE_BOX),
                             html.Figcaption("Grad-CAM of the predicted class",
                                             className="cm-muted")], style={"margin": 0}),
            ], id=ids.SAMPLE_FIGURES, hidden=True, className="cm-sample-figures"),
            html.Div("Click a point in the scatter or a thumbnail.", id=ids.SAMPLE_DETAILS,
                     style={"marginTop": "10px"}),
        ])],
        subtitle="Grad-CAM: ReLU of the feature maps weighted by the gradient of the "
                 "predicted class's logit, upsampled to the input (inferno: dark = 0, "
                 "yellow = 1).",
    )
    return html.Div([
        page_query_store(page, selection, problems),
        how_to_read(*GUIDES[page]),
        image_controls(selection, data_sets, [rep]),
        html.Div([html.Div([grid, scatter], className="cm-col-side"),
                  html.Div([detail], className="cm-col-side cm-sample-side")],
                 className="cm-grid"),
    ])


def build_clustering_page(page: str, selection: Mapping[str, Any], problems: Sequence[str],
                          data_sets: Sequence[DataSetEntry]) -> html.Div:
    controls = [
        representation_picker(page, selection),
        field("Algorithm", dcc.RadioItems(
            id=page_id(ids.CLUSTERING_ALGORITHM, page), value="kmeans", inline=True,
            options=[{"label": ALGORITHM_LABELS[a], "value": a} for a in CLUSTERING_ALGORITHMS],
            className="cm-segmented")),
    ]
    tables = card(
        "Within-class similarity and clustering (method of the image-similarity write-up)",
        [
            html.Div(id=ids.CLUSTERING_WITHIN),
            html.Div(id=ids.CLUSTERING_METRICS, style={"marginTop": "14px"}),
            html.P(GRADCAM_NOTE, className="cm-note", style={"marginTop": "12px"}),
        ],
        subtitle="Mean cosine similarity of image pairs of the same true class; clustering "
                 "of the images into as many clusters as there are classes, compared with "
                 "the true classes.",
    )
    loading = message_figure("Loading…", height=460)
    scatters = html.Div([
        card("PCA, coloured by true class", [graph(ids.CLUSTERING_TRUE, loading, height=460)]),
        card("PCA, coloured by cluster", [graph(ids.CLUSTERING_CLUSTERS, loading, height=460)]),
    ], style={"display": "grid", "gridTemplateColumns": "minmax(0,1fr) minmax(0,1fr)",
              "gap": "16px", "marginTop": "16px"})
    return html.Div([
        page_query_store(page, selection, problems),
        how_to_read(*GUIDES[page]),
        image_controls(selection, data_sets, controls),
        tables,
        scatters,
    ])


def build_confidence_page(page: str, selection: Mapping[str, Any], problems: Sequence[str],
                          data_sets: Sequence[DataSetEntry]) -> html.Div:
    heatmap = card(
        "Class similarity from confidence scores (method of the confidence write-up)",
        [graph(ids.CONFIDENCE_HEATMAP, message_figure("Loading…", height=640), height=640),
         html.Div(id=ids.CONFIDENCE_CLUSTERS, style={"marginTop": "8px"})],
        subtitle="Jensen–Shannon divergence (base 2) between the mean softmax vectors of the "
                 "true classes, ordered by its dendrogram (average linkage); the strip shows "
                 "the k-means clusters of the divergence rows. Click a cell to focus its row.",
    )
    tsne = card("t-SNE of the softmax vectors",
                [graph(ids.CONFIDENCE_TSNE, message_figure("Loading…", height=460), height=460)],
                subtitle="One point per image, coloured by true class.")
    confusion = card("Confusion matrix",
                     [graph(ids.CONFIDENCE_CONFUSION, message_figure("Loading…", height=460),
                            height=460)],
                     subtitle="Rows: true class; columns: predicted class; colour: share of "
                              "the row.")
    return html.Div([
        page_query_store(page, selection, problems),
        how_to_read(*GUIDES[page]),
        image_controls(selection, data_sets),
        html.Div([heatmap, html.Div([tsne, confusion], className="cm-col-side")],
                 className="cm-grid"),
    ])


def reads_digits(settings: Any, model_id: str) -> bool:
    """Whether ``model_id`` is a digits model (LeNet-5), the only kind the built-in
    ``digits`` data set fits; any other model needs an image folder of its own classes."""
    from classmap.analysis.loading.models import LENET5_ARCH, LENET_DIGITS

    try:
        entry = settings.model(model_id)
    except Exception:  # an unknown id: parse_query has already said so
        return False
    return entry.spec.head is None and entry.spec.model_name in (LENET_DIGITS, LENET5_ARCH)


DIGITS_MISMATCH = ("The digits data set goes with a digits model: pick lenet-digits in the "
                   "Model menu above{folders}.")


def digits_mismatch(settings: Any, model_id: str, data_id: str | None) -> str | None:
    """What to do, in the page's own terms, when ``data_id`` is the digits and ``model_id``
    cannot read them (None when they fit)."""
    entries = data_entries(settings.data_roots)
    if (data_id or DIGITS) != DIGITS or reads_digits(settings, model_id):
        return None
    folders = [entry.label for entry in entries if entry.id != DIGITS]
    return DIGITS_MISMATCH.format(
        folders=f", or the image folder {folders[0]!r} in Data set" if folders else
        " (this server has no image folder of its classes: the operator adds one with "
        "'classmap serve --data DIR')")


def default_data(settings: Any, model_id: str, entries: Sequence[DataSetEntry]) -> str:
    """The data set a page opens on when its URL names none: the digits for a digits model,
    otherwise the first configured image folder (the digits when there is none)."""
    folders = [entry.id for entry in entries if entry.id != DIGITS]
    return DIGITS if reads_digits(settings, model_id) or not folders else folders[0]


GUIDES = {
    "samples": (
        "The thumbnails show the data set's images by true class; hover one to see its "
        "Grad-CAM map over it: where the evidence for the predicted class lies (dark = "
        "none, yellow = strong).",
        "In the scatter each point is one image, placed by its representation (PCA to 2-D) "
        "and coloured by its true class: images of a class that sit together are "
        "represented alike. Click a thumbnail or a point to see that image large with its "
        "map.",
    ),
    "clustering": (
        "Within-class similarity (the method of the image-similarity write-up): how alike "
        "the images of each class are, by cosine of their representations (−1 to 1, higher "
        "= more alike).",
        "The clustering scores compare clusters found without labels to the true classes "
        "(0 to 1 for most; higher = the clusters follow the classes). Numbers marked "
        "with a circled i "
        "explain themselves on hover.",
    ),
    "confidence": (
        "Class similarity from confidence scores (the method of the confidence write-up): "
        "two classes are alike when the model spreads its confidence over them alike, "
        "measured by the Jensen–Shannon divergence of their mean softmax outputs, in bits "
        "(0 to 1; lower = more alike).",
        "The confusion matrix shows, per true class (row), the share of images predicted as "
        "each class (column); a bright diagonal = a good classifier.",
    ),
}


def _page(build: Any, page: str) -> Any:
    def layout(**query: str) -> html.Div:
        """The page for the URL ``query`` (parsed; the data set id is checked by the callbacks).
        Without ``data`` in the URL the page opens on a data set the model can read."""
        settings = current_services().settings
        selection, problems = parse_query(query, settings.model_ids)
        entries = data_entries(settings.data_roots)
        if not query.get("data"):
            selection["data"] = default_data(settings, selection["model"], entries)
        return build(page, selection, problems, entries)

    layout.__name__ = f"{page}_layout"
    return layout


samples_layout = _page(build_samples_page, "samples")
clustering_layout = _page(build_clustering_page, "clustering")
confidence_layout = _page(build_confidence_page, "confidence")
