"""Component ids of the Weight distributions page.

Page ids start with the page name; the ones fixed by the spec (none) are kept as they
were. The shell's ids are in :mod:`classmap.app.shell.ids`.
"""

from __future__ import annotations

# -- weights page (weight distributions, issue 4) — owned by the weights page ---------------
WEIGHTS_KEY = "weights-key"  # dcc.Store: the selection fields the page depends on
WEIGHTS_TREE_KEY = "weights-tree-key"  # dcc.Store: the fields the split icicle depends on
WEIGHTS_MODEL_KEY = "weights-model-key"  # dcc.Store: model, metric, linkage (the overview)
WEIGHTS_FOCAL_KEY = "weights-focal-key"  # dcc.Store: … and the focal class (scatter, histogram)
WEIGHTS_STATUS = "weights-status"  # dcc.Store: the page's copy of the analysis status
WEIGHTS_SELECTION = "weights-selection"  # dcc.Store: the page's copy of the selection
WEIGHTS_SELECT = "weights-select-request"  # server clicks' new selection (relayed in the browser)
WEIGHTS_SUMMARY = "weights-summary"
WEIGHTS_OVERVIEW = "weights-overview-graph"
WEIGHTS_SCATTER = "weights-scatter-graph"
WEIGHTS_SCATTER_AXES = "weights-scatter-axes"
WEIGHTS_SCATTER_DRAWN = "weights-scatter-drawn"  # dcc.Store: [analysis key, axes] the scatter holds
WEIGHTS_SCATTER_OVERLAY = "weights-scatter-overlay"  # dcc.Store: the focal mark (a relayout)
WEIGHTS_PROBLEMS = "weights-problems"
WEIGHTS_CONTROL = "weights-control"  # pattern type: {"type": …, "field": selection field}
WEIGHTS_FOCAL_TITLE = "weights-focal-title"
WEIGHTS_HISTOGRAM = "weights-histogram-graph"
WEIGHTS_FIT_TABLE = "weights-fit-table"
WEIGHTS_ICICLE = "weights-icicle-graph"
WEIGHTS_NODE_TITLE = "weights-node-title"
WEIGHTS_NODE_CHANNELS = "weights-node-channels"
# dcc.Store: the node's channel list as text items, drawn by the browser (renderList)
WEIGHTS_NODE_ITEMS = "weights-node-items"
WEIGHTS_CAM_DATA = "weights-cam-data"  # data-set picker of the channel CAM (local, not shared)
WEIGHTS_CAM_IMAGE = "weights-cam-image"  # image picker of the channel CAM (local)
WEIGHTS_CAM_TITLE = "weights-cam-title"
WEIGHTS_CAM_VIEW = "weights-cam-view"  # the picture and the channel CAM overlay (or a message)
WEIGHTS_CAM_BOX = "weights-cam-box"  # title + view; class cm-busy while the CAM is computed
WEIGHTS_CAM_BUSY = "weights-cam-busy"  # the spinner and what is being computed
# The channel CAM's background job (issue 15): it reads the image folder when no job has
# yet, and computes the CAM, outside the request thread (app/shell/jobs.py's protocol).
WEIGHTS_CAM_STATUS = "weights-cam-status"  # dcc.Store: {key, state, message, job, requested}
WEIGHTS_CAM_JOB = "weights-cam-request"  # dcc.Store: the job's request (Input of the job)
WEIGHTS_CAM_PANEL = "weights-cam-progress-panel"  # progress bar, label and Cancel
WEIGHTS_CAM_PROGRESS = "weights-cam-progress"
WEIGHTS_CAM_LABEL = "weights-cam-progress-label"
WEIGHTS_CAM_CANCEL = "weights-cam-cancel"
WEIGHTS_CAM_WATCHDOG = "weights-cam-watchdog"  # dcc.Interval: the job's heartbeat check
WEIGHTS_CAM_FAILURE = "weights-cam-failure"  # why the job failed, with a Retry
WEIGHTS_CAM_FAILURE_TEXT = "weights-cam-failure-text"
WEIGHTS_CAM_RETRY = "weights-cam-retry"


def weights_control(field: str) -> dict[str, str]:
    """Id of a Weight-distributions control bound to the selection's ``field``."""
    return {"type": WEIGHTS_CONTROL, "field": field}
