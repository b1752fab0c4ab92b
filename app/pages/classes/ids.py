"""Component ids of the Classes page.

Page ids start with the page name; the ones fixed by the spec (``similarity-heatmap``, ``dendrogram-graph``, ``subtree-classes``, ``focal-class``, ``neighbours-graph``, ``class-map-graph``) are kept as they
were. The shell's ids are in :mod:`classmap.app.shell.ids`.
"""

from __future__ import annotations

# -- classes page (weight similarity) ------------------------------------------------
CLASSES_SELECTION = "classes-selection"  # page-local copies of the shared stores
CLASSES_STATUS = "classes-status"
CLASSES_MODEL_STATUS = "classes-model-status"  # {model, state} of the status (see clientside)
CLASSES_SELECT = "classes-select-request"  # server clicks' new selection (relayed in the browser)
HEATMAP = "similarity-heatmap"
HEATMAP_KEY = "classes-heatmap-key"  # what the heatmap figure was last fully drawn for
HEATMAP_FIGURE = "classes-heatmap-figure"  # full figures from the server, decoded in the browser
HEATMAP_OVERLAY = "classes-heatmap-overlay"  # shapes etc., applied in the browser
HEATMAP_TOOLTIP = "classes-heatmap-tooltip"
HEATMAP_ZOOM = "classes-heatmap-zoom"  # the user's zoom (relayoutData with axis ranges only)
HEATMAP_NOTE = "classes-heatmap-note"
RANGE_SINK = "classes-range-sink"  # invisible sink of the clientside zoom-range drawer
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
FOCAL_ALL_MODEL = "classes-focal-all-model"  # the model whose classes the picker has
NEIGHBOURS_KEY = "classes-neighbours-key"  # the selection fields the neighbours depend on
NEIGHBOURS_OVERLAY = "classes-neighbours-overlay"  # the bars' new colours (a cut: a restyle)
NEIGHBOURS_RENDERED = "classes-neighbours-rendered"  # what the chart was drawn for
# The selection fields each view reads (callbacks.MATRIX_FIELDS …), projected in the browser.
MATRIX_SELECTION = "classes-matrix-fields"  # heatmap and dendrogram
PANEL_SELECTION = "classes-panel-fields"
CLASS_MAP_SELECTION = "classes-class-map-fields"
CLASS_MAP = "class-map-graph"
CLASS_MAP_KEY = "classes-class-map-key"
CLASS_MAP_FIGURE = "classes-class-map-figure"
CLASS_MAP_OVERLAY = "classes-class-map-overlay"
CLASS_MAP_COLOURS = "classes-class-map-colours"  # the points' colours (an overlay drawn at once)
EMBEDDING_PICKER = "classes-embedding"
EMBEDDING_NOTE = "classes-embedding-note"
EMBED_JOB = "classes-embedding-job"
EMBED_PROGRESS = "classes-embedding-progress"
EMBED_LABEL = "classes-embedding-label"
EMBED_CANCEL = "classes-embedding-cancel"
EMBED_PANEL = "classes-embedding-panel"
EMBED_DONE = "classes-embedding-done"
EMBED_WATCHDOG = "classes-embedding-watchdog"  # dcc.Interval: the map job's heartbeat check
EMBED_RETRY = "classes-embedding-retry"
EMBED_FAILURE = "classes-embedding-failure"
EMBED_FAILURE_TEXT = "classes-embedding-failure-text"
MODEL_SUMMARY = "classes-model-summary"
EXPORT_NEIGHBOURS = "classes-export-neighbours"
EXPORT_SUBTREE = "classes-export-subtree"
EXPORT_NEWICK = "classes-export-newick"
DOWNLOAD = "classes-download"
# The page's graphs and the selection fields each one's download is named after.
GRAPHS = (HEATMAP, DENDROGRAM, NEIGHBOURS, CLASS_MAP)
DOWNLOAD_FIELDS = {HEATMAP: ("metric", "linkage", "zoom", "node"),
                   DENDROGRAM: ("metric", "linkage", "zoom", "node", "cut"),
                   NEIGHBOURS: ("metric", "focal", "k"),
                   CLASS_MAP: ("metric", "embedding", "cut", "node", "classes")}
