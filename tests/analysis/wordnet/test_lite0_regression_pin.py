"""Regression pin: lite0's WordNet agreement (the README / docs/comparison.md table).

This is NOT an independent reference: the expected value is what
``benchmarks/bench_wordnet_models.py`` measured with this project's own pipeline
(2026-12-02: ρ = 0.67784 for lite0-imagenet, weight cosine / ward). It only tells when a
change to loading, the weight analysis, the tree or the WordNet agreement moves the
published number; the correctness of each step is tested against hand-computed cases in
``tests/analysis/methods/`` and ``tests/analysis/wordnet/``. When a change moves it on
purpose, re-run the benchmark, update the README and docs table, then this pin.
"""

from __future__ import annotations

import pytest

LITE0_WORDNET_SPEARMAN = 0.67784  # measured (see above), not derived
TOLERANCE = 0.005


@pytest.mark.slow
def test_lite0_wordnet_spearman_is_the_published_value(lite0_head, session_cache):
    from classmap.analysis.pipelines.compare import wordnet_for_tree
    from classmap.analysis.pipelines.weights import WeightParams, analyse_weights

    result = analyse_weights(lite0_head, WeightParams(), cache=session_cache, device="cpu")
    view = wordnet_for_tree(tuple(lite0_head.classes.ids), result.linkage, session_cache)
    assert view.agreement is not None, view.reason
    assert view.agreement.spearman == pytest.approx(LITE0_WORDNET_SPEARMAN, abs=TOLERANCE)
