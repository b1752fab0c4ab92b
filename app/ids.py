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
HEATMAP = "similarity-heatmap"
HEATMAP_KEY = "classes-heatmap-key"  # what the heatmap figure was last fully drawn for
HEATMAP_TOOLTIP = "classes-heatmap-tooltip"
HEATMAP_NOTE = "classes-heatmap-note"
DENDROGRAM = "dendrogram-graph"
DENDROGRAM_KEY = "classes-dendrogram-key"
SUBTREE_CLASSES = "subtree-classes"
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
NEIGHBOURS_TABLE = "classes-neighbours-table"
CLASS_MAP = "class-map-graph"
CLASS_MAP_KEY = "classes-class-map-key"
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
