"""Component ids of the Compare page (all start with ``compare-``)."""

from __future__ import annotations

COMPARE_RUN = "compare-run"  # the Compare button
COMPARE_PERMUTATIONS = "compare-permutations"
COMPARE_SUMMARY = "compare-summary"
COMPARE_BK = "compare-bk-graph"
COMPARE_TANGLEGRAM = "compare-tanglegram-graph"
COMPARE_PAIRS = "compare-pairs"


def source_control(side: str, part: str) -> str:
    """Id of a source picker: side ``a``/``b``, part ``model``/``relation``/``linkage``/
    ``data``."""
    return f"compare-{side}-{part}"
