"""Component ids of the Compare page (all start with ``compare-``)."""

from __future__ import annotations

COMPARE_RUN = "compare-run"  # the Compare button
COMPARE_PERMUTATIONS = "compare-permutations"
COMPARE_SUMMARY = "compare-summary"
COMPARE_BK = "compare-bk-graph"
COMPARE_TANGLEGRAM = "compare-tanglegram-graph"
COMPARE_PAIRS = "compare-pairs"
# The comparison's background job (app/shell/jobs.py's status protocol).
COMPARE_STATUS = "compare-status"  # dcc.Store: the job's status
COMPARE_JOB = "compare-job"  # dcc.Store: the job's request (both sources, permutations)
COMPARE_PANEL = "compare-job-panel"
COMPARE_PROGRESS = "compare-job-progress"
COMPARE_LABEL = "compare-job-label"
COMPARE_CANCEL = "compare-job-cancel"
COMPARE_WATCHDOG = "compare-job-watchdog"
COMPARE_FAILURE = "compare-job-failure"
COMPARE_FAILURE_TEXT = "compare-job-failure-text"
COMPARE_RETRY = "compare-job-retry"


def source_control(side: str, part: str) -> str:
    """Id of a source picker: side ``a``/``b``, part ``model``/``relation``/``linkage``/
    ``data``."""
    return f"compare-{side}-{part}"
