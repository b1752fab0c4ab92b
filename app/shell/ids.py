"""Every component id of the dashboard, in one place.

Ids that tests, benchmarks and users' bookmarks rely on are fixed by the spec:
``similarity-heatmap``, ``dendrogram-graph``, ``subtree-classes``, ``focal-class``,
``neighbours-graph``, ``class-map-graph``. Page-specific ids start with the page
name; the shell's ids start with ``shell-`` (or are the shared stores).
"""

from __future__ import annotations

# -- shared state (in the shell, present on every page) --------------------------------
SELECTION = "selection"  # dcc.Store: the shared selection (keys only, see app/state.py)
STATUS = "analysis-status"  # dcc.Store: {"key", "state": ready|pending|error, "message"}
JOB_REQUEST = "analysis-job"  # dcc.Store: the analysis the background job must prepare
SETTLE_REQUEST = "analysis-settle"  # dcc.Store: a job's final status (check the selection)
ANALYSIS_KEY = "analysis-key"  # dcc.Store: [model, metric, linkage] of the selection
PAGE_QUERY = "page-query"  # pattern-matching type: {"type": PAGE_QUERY, "page": name}
URL_SYNC = "shell-url-sync"  # invisible sink of the clientside URL writer

# -- shell widgets -------------------------------------------------------------------
MODEL_PICKER = "shell-model"
METRIC_PICKER = "shell-metric"
LINKAGE_PICKER = "shell-linkage"
NOTICE = "shell-notice"
NOTICE_TEXT = "shell-notice-text"
NOTICE_CLOSE = "shell-notice-close"
JOB_PANEL = "shell-job"
JOB_PROGRESS = "shell-job-progress"
JOB_LABEL = "shell-job-label"
JOB_CANCEL = "shell-job-cancel"
NAV = "shell-nav"
NAV_LINK = "shell-nav-link"  # pattern-matching type: {"type": NAV_LINK, "path": path}
FIGURE_FORMAT = "shell-figure-format"

# -- classes page (weight similarity) ------------------------------------------------
CLASSES_SELECTION = "classes-selection"  # page-local copies of the shared stores
CLASSES_STATUS = "classes-status"
CLASSES_SELECT = "classes-select-request"  # server clicks' new selection (relayed in the browser)
HEATMAP = "similarity-heatmap"
HEATMAP_KEY = "classes-heatmap-key"  # what the heatmap figure was last fully drawn for
HEATMAP_FIGURE = "classes-heatmap-figure"  # full figures from the server, decoded in the browser
HEATMAP_OVERLAY = "classes-heatmap-overlay"  # shapes etc., applied in the browser
HEATMAP_TOOLTIP = "classes-heatmap-tooltip"
HEATMAP_ZOOM = "classes-heatmap-zoom"  # the user's zoom (relayoutData with axis ranges only)
HEATMAP_NOTE = "classes-heatmap-note"
DENDROGRAM = "dendrogram-graph"
DENDROGRAM_KEY = "classes-dendrogram-key"
DENDROGRAM_FIGURE = "classes-dendrogram-figure"
DENDROGRAM_OVERLAY = "classes-dendrogram-overlay"
SUBTREE_CLASSES = "subtree-classes"  # <ol>: one <li> per class, filled by the browser
SUBTREE_ITEMS = "classes-subtree-items"  # dcc.Store: the class names the list shows
SUBTREE_MORE = "classes-subtree-more"  # note under the list when it is cut short
SUBTREE_PANEL = "classes-subtree-panel"
SUBTREE_TITLE = "classes-subtree-title"
SUBTREE_STATS = "classes-subtree-stats"
ZOOM_BUTTON = "classes-zoom-subtree"
UNZOOM_BUTTON = "classes-zoom-reset"
CLEAR_SELECTION = "classes-clear-selection"
CUT_SLIDER = "classes-cut"
FOCAL = "focal-class"
TOP_K = "classes-top-k"
NEIGHBOURS = "neighbours-graph"
NEIGHBOURS_TABLE = "classes-neighbours-table"  # <div>: a table filled by the browser
NEIGHBOURS_ROWS = "classes-neighbours-rows"  # dcc.Store: the table's header and rows
FOCAL_ALL = "classes-focal-all"  # dcc.Store: every option of the class picker (added when idle)
NEIGHBOURS_KEY = "classes-neighbours-key"  # the selection fields the neighbours depend on
CLASS_MAP = "class-map-graph"
CLASS_MAP_KEY = "classes-class-map-key"
CLASS_MAP_FIGURE = "classes-class-map-figure"
CLASS_MAP_OVERLAY = "classes-class-map-overlay"
EMBEDDING_PICKER = "classes-embedding"
EMBEDDING_NOTE = "classes-embedding-note"
EMBED_JOB = "classes-embedding-job"
EMBED_PROGRESS = "classes-embedding-progress"
EMBED_LABEL = "classes-embedding-label"
EMBED_CANCEL = "classes-embedding-cancel"
EMBED_PANEL = "classes-embedding-panel"
EMBED_DONE = "classes-embedding-done"
MODEL_SUMMARY = "classes-model-summary"
EXPORT_NEIGHBOURS = "classes-export-neighbours"
EXPORT_SUBTREE = "classes-export-subtree"
EXPORT_NEWICK = "classes-export-newick"
DOWNLOAD = "classes-download"

# The figures every page's "figure format" control applies to.
GRAPHS = (HEATMAP, DENDROGRAM, NEIGHBOURS, CLASS_MAP)

# -- image pages (issue 5: samples, clustering, confidence) ---------------------------
# Fixed by the spec: ``samples-graph``, ``sample-image``, ``sample-cam``.
DATA_PICKER = "images-data"  # data set picker (ids of the configured data sets)
IMAGE_SELECTION = "images-selection"  # dcc.Store: page-local copy of the shared selection
IMAGE_STATUS = "images-status"  # dcc.Store: {"model", "data", "state", "message"}
IMAGE_SELECT = "images-select-request"  # server clicks' new selection (relayed in the browser)
IMAGE_JOB = "images-job"  # dcc.Store: the (model, data) the background job must prepare
IMAGE_PANEL = "images-job-panel"
IMAGE_PROGRESS = "images-job-progress"
IMAGE_LABEL = "images-job-label"
IMAGE_CANCEL = "images-job-cancel"
IMAGE_MESSAGE = "images-message"  # why a page cannot draw yet (or the data summary)
IMAGE_FOCAL = "images-focal"  # class picker bound to the shared focal class
SAMPLES_GRAPH = "samples-graph"
# Controls found on some image pages only are pattern-matching ids ({"type": …, "page": …}),
# so callbacks listening to them with ALL do not fail on the pages without them.
REPRESENTATION_PICKER = "images-representation"
SAMPLE_IMAGE = "sample-image"
SAMPLE_CAM = "sample-cam"
SAMPLE_DETAILS = "samples-details"
CLUSTERING_WITHIN = "clustering-within-table"
CLUSTERING_METRICS = "clustering-metrics-table"
CLUSTERING_ALGORITHM = "clustering-algorithm"
CLUSTERING_TRUE = "clustering-true-graph"
CLUSTERING_CLUSTERS = "clustering-cluster-graph"
CONFIDENCE_HEATMAP = "confidence-js-heatmap"
CONFIDENCE_CLUSTERS = "confidence-class-clusters"
CONFIDENCE_TSNE = "confidence-tsne-graph"
CONFIDENCE_CONFUSION = "confidence-confusion-graph"
# -- end image pages --------------------------------------------------------------------

# -- weights page (weight distributions, issue 4) — owned by the weights page ---------------
WEIGHTS_KEY = "weights-key"  # dcc.Store: the selection fields the page depends on
WEIGHTS_TREE_KEY = "weights-tree-key"  # dcc.Store: the fields the split icicle depends on
WEIGHTS_STATUS = "weights-status"  # dcc.Store: the page's copy of the analysis status
WEIGHTS_SELECT = "weights-select-request"  # server clicks' new selection (relayed in the browser)
WEIGHTS_SUMMARY = "weights-summary"
WEIGHTS_OVERVIEW = "weights-overview-graph"
WEIGHTS_SCATTER = "weights-scatter-graph"
WEIGHTS_SCATTER_AXES = "weights-scatter-axes"
WEIGHTS_PROBLEMS = "weights-problems"
WEIGHTS_CONTROL = "weights-control"  # pattern type: {"type": …, "field": selection field}
WEIGHTS_FOCAL_TITLE = "weights-focal-title"
WEIGHTS_HISTOGRAM = "weights-histogram-graph"
WEIGHTS_FIT_TABLE = "weights-fit-table"
WEIGHTS_ICICLE = "weights-icicle-graph"
WEIGHTS_NODE_TITLE = "weights-node-title"
WEIGHTS_NODE_CHANNELS = "weights-node-channels"
WEIGHTS_CAM_DATA = "weights-cam-data"  # data-set picker of the channel CAM (local, not shared)
WEIGHTS_CAM_IMAGE = "weights-cam-image"  # image picker of the channel CAM (local)
WEIGHTS_CAM_TITLE = "weights-cam-title"
WEIGHTS_CAM_VIEW = "weights-cam-view"  # the picture and the channel CAM overlay (or a message)


def weights_control(field: str) -> dict[str, str]:
    """Id of a Weight-distributions control bound to the selection's ``field``."""
    return {"type": WEIGHTS_CONTROL, "field": field}
