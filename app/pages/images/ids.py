"""Component ids of the image pages (Samples, Clustering, Confidence).

Page ids start with the page name; the ones fixed by the spec (``samples-graph``, ``sample-image``, ``sample-cam``) are kept as they
were. The shell's ids are in :mod:`classmap.app.shell.ids`.
"""

from __future__ import annotations

# -- image pages (issue 5: samples, clustering, confidence) ---------------------------
# Fixed by the spec: ``samples-graph``, ``sample-image``, ``sample-cam``.
DATA_PICKER = "images-data"  # data set picker (ids of the configured data sets)
IMAGE_SELECTION = "images-selection"  # dcc.Store: page-local copy of the shared selection
IMAGE_STATUS = "images-status"  # dcc.Store: {"model", "data", "state", "message"}
# Projections of IMAGE_SELECTION (issue 14): each view listens to the fields it shows, so a
# change it does not show costs it no request and no redraw (callbacks.VIEW_FIELDS).
IMAGE_DATA_KEY = "images-data-key"  # model, data
IMAGE_FOCAL_KEY = "images-focal-key"  # model, data, focal
IMAGE_SAMPLE_KEY = "images-sample-key"  # model, data, image
IMAGE_MARKS_KEY = "images-marks-key"  # model, data, focal, image
IMAGE_REP_KEY = "images-rep-key"  # model, data, rep
IMAGE_VIEW_KEY = "images-view-key"  # model, data, rep, focal, image
IMAGE_KEYS = (IMAGE_DATA_KEY, IMAGE_FOCAL_KEY, IMAGE_SAMPLE_KEY, IMAGE_MARKS_KEY,
              IMAGE_REP_KEY, IMAGE_VIEW_KEY)
IMAGE_SELECT = "images-select-request"  # server clicks' new selection (relayed in the browser)
IMAGE_JOB = "images-job"  # dcc.Store: the (model, data) the background job must prepare
IMAGE_PANEL = "images-job-panel"
IMAGE_PROGRESS = "images-job-progress"
IMAGE_LABEL = "images-job-label"
IMAGE_CANCEL = "images-job-cancel"
IMAGE_WATCHDOG = "images-job-watchdog"  # dcc.Interval: the job's heartbeat check
IMAGE_FAILURE = "images-job-failure"  # why the job failed, with a Retry
IMAGE_FAILURE_TEXT = "images-job-failure-text"
IMAGE_RETRY = "images-job-retry"
IMAGE_MESSAGE = "images-message"  # why a page cannot draw yet (or the data summary)
IMAGE_FOCAL = "images-focal"  # class picker bound to the shared focal class
SAMPLES_GRAPH = "samples-graph"
# Controls found on some image pages only are pattern-matching ids ({"type": …, "page": …}),
# so callbacks listening to them with ALL do not fail on the pages without them.
REPRESENTATION_PICKER = "images-representation"
SAMPLE_IMAGE = "sample-image"
SAMPLE_CAM = "sample-cam"
SAMPLE_PLACEHOLDER = "sample-placeholder"  # shown until a sample is chosen
SAMPLE_FIGURES = "sample-figures"  # the two images, hidden until then
SAMPLE_DETAILS = "samples-details"
# The thumbnail grid (issue 14): drawn in the browser (classmap.renderThumbGrid) from
# SAMPLES_GRID_DATA; a click on a thumbnail writes SAMPLES_GRID_PICK ({image, focal}).
SAMPLES_GRID = "samples-grid"
SAMPLES_GRID_DATA = "samples-grid-data"
SAMPLES_GRID_PICK = "samples-grid-pick"
SAMPLES_GRID_NOTE = "samples-grid-note"
SAMPLE_BOX = "sample-detail-box"  # busy area: class cm-busy while the Grad-CAM is drawn
SAMPLE_BUSY = "sample-detail-busy"  # the spinner and what is being computed
CLUSTERING_WITHIN = "clustering-within-table"
CLUSTERING_METRICS = "clustering-metrics-table"
CLUSTERING_ALGORITHM = "clustering-algorithm"
CLUSTERING_TRUE = "clustering-true-graph"
CLUSTERING_CLUSTERS = "clustering-cluster-graph"
CONFIDENCE_HEATMAP = "confidence-js-heatmap"
CONFIDENCE_CLUSTERS = "confidence-class-clusters"
CONFIDENCE_TSNE = "confidence-tsne-graph"
CONFIDENCE_CONFUSION = "confidence-confusion-graph"
# Every graph of the three pages (their downloads are named after the model and view).
GRAPHS = (SAMPLES_GRAPH, CLUSTERING_TRUE, CLUSTERING_CLUSTERS, CONFIDENCE_HEATMAP,
          CONFIDENCE_TSNE, CONFIDENCE_CONFUSION)
# -- end image pages --------------------------------------------------------------------
