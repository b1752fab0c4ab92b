"""Component ids of the shell (header, notice, shared stores), present on every page.

The shell's ids start with ``shell-`` (or are the shared stores); each page's ids are in
its package (``classmap.app.pages.<page>.ids``), prefixed by the page name. Ids that
tests, benchmarks and users' bookmarks rely on never change.
"""

from __future__ import annotations

# -- shared state (in the shell, present on every page) --------------------------------
SELECTION = "selection"  # dcc.Store: the shared selection (keys only, see shell/selection.py)
STATUS = "analysis-status"  # dcc.Store: {"key", "state": ready|pending|error, "message"}
JOB_REQUEST = "analysis-job"  # dcc.Store: the analysis the background job must prepare
SETTLE_REQUEST = "analysis-settle"  # dcc.Store: a job's final status (check the selection)
ANALYSIS_KEY = "analysis-key"  # dcc.Store: [model, metric, linkage] of the selection
PAGE_QUERY = "page-query"  # pattern-matching type: {"type": PAGE_QUERY, "page": name}
URL_SYNC = "shell-url-sync"  # invisible sink of the clientside URL writer
DOWNLOADS = "shell-downloads"  # invisible sink of the clientside download namer

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
JOB_WATCHDOG = "shell-job-watchdog"  # dcc.Interval: checks a pending job's heartbeat
JOB_FAILURE = "shell-job-failure"  # why the analysis job failed, with a Retry
JOB_FAILURE_TEXT = "shell-job-failure-text"
JOB_RETRY = "shell-job-retry"
# The "Images as" switch (PNG/SVG) of every graph's modebar download; its id predates the
# shell (kept for bookmarks and tests).
FIGURE_FORMAT = "shell-figure-format"
NAV = "shell-nav"
APP = "shell-app"  # the app's root: its class names the page shown (``cm-on-<page>``)
# pattern-matching type: {"type": NAV_LINK, "path": the page's path under the URL prefix}
NAV_LINK = "shell-nav-link"
