"""The float32 Ward nearest-neighbour chain (``condensed32``) against scipy's float64 Ward."""

from __future__ import annotations

import numpy as np
import pytest
import torch
from scipy.cluster import hierarchy
from scipy.spatial.distance import pdist
from sklearn.metrics import adjusted_rand_score

from classmap.analysis.errors import ClassmapError
from classmap.analysis.methods.hierarchy import (
    condensed32_bytes,
    condensed_bytes,
    linkage_matrix,
    plan_linkage,
    vectors_bytes,
)
from classmap.analysis.methods.similarity import standardise_rows
from classmap.analysis.methods.ward_chain import condensed_squared_float32, ward_chain
from classmap.analysis.progress import CallbackProgress
from classmap.analysis.synthetic import planted_head


def _rows(seed: int, classes: int = 240, features: int = 24, duplicates: bool = False):
    weight = np.random.default_rng(seed).normal(size=(classes, features)).astype(np.float32)
    if duplicates:  # exact ties: classes 0, 9, 18, … share one row, 5 and 6 another
        weight[::9] = weight[0]
        weight[6] = weight[5]
    return standardise_rows(weight).numpy().astype(np.float64)


def _float32_budget(classes: int, features: int) -> int:
    budget = condensed32_bytes(classes, features)
    assert budget < condensed_bytes(classes, features)
    return budget


@pytest.mark.parametrize("seed", [0, 1, 2, 3])
def test_float32_chain_gives_scipys_ward_tree_on_data_without_ties(seed):
    z = _rows(seed)
    ours = ward_chain(condensed_squared_float32(z), len(z))
    reference = hierarchy.linkage(z, "ward")
    np.testing.assert_allclose(ours[:, 2], reference[:, 2], rtol=1e-4)
    # Same merges, same cluster ids and sizes: the tree scipy builds, numbered as scipy does.
    np.testing.assert_array_equal(ours[:, [0, 1, 3]], reference[:, [0, 1, 3]])
    assert hierarchy.is_valid_linkage(ours) and hierarchy.is_monotonic(ours)
    correlation, _ = hierarchy.cophenet(ours, pdist(z))
    reference_correlation, _ = hierarchy.cophenet(reference, pdist(z))
    assert correlation == pytest.approx(reference_correlation, rel=1e-6)
    assert np.corrcoef(hierarchy.cophenet(ours), hierarchy.cophenet(reference))[0, 1] > 1 - 1e-9
    for k in (2, 5, 17, 60):
        assert adjusted_rand_score(hierarchy.fcluster(reference, k, "maxclust"),
                                   hierarchy.fcluster(ours, k, "maxclust")) == 1.0
    assert hierarchy.dendrogram(ours, no_plot=True)["leaves"] == \
        hierarchy.dendrogram(reference, no_plot=True)["leaves"]


@pytest.mark.parametrize("seed", [4, 5, 6])
def test_float32_chain_with_duplicate_rows_matches_scipys_heights_and_partitions(seed):
    z = _rows(seed, duplicates=True)
    ours = ward_chain(condensed_squared_float32(z), len(z))
    reference = hierarchy.linkage(z, "ward")
    # Duplicates merge at height 0 (scipy) or within float rounding of it (ours).
    np.testing.assert_allclose(ours[:, 2], reference[:, 2], rtol=1e-4, atol=1e-5)
    assert hierarchy.is_valid_linkage(ours) and hierarchy.is_monotonic(ours)
    np.testing.assert_allclose(hierarchy.cophenet(ours), hierarchy.cophenet(reference),
                               rtol=1e-4, atol=1e-5)
    distinct = len(np.unique(z, axis=0))
    for k in (2, 7, 30, distinct):
        assert adjusted_rand_score(hierarchy.fcluster(reference, k, "maxclust"),
                                   hierarchy.fcluster(ours, k, "maxclust")) == 1.0


def test_squared_float32_distances_match_pdist_across_blocks():
    z = _rows(7, classes=37, features=9)
    seen = []
    ours = condensed_squared_float32(z, block_rows=5, column_rows=10, on_chunk=seen.append)
    assert ours.dtype == np.float32
    np.testing.assert_allclose(ours, pdist(z, "sqeuclidean"), rtol=1e-6, atol=1e-5)
    assert sum(seen) == 37 and len(seen) == 8


def test_ward_chain_refuses_a_vector_of_the_wrong_type_or_length():
    with pytest.raises(ValueError, match="float32 condensed vector of 3 values"):
        ward_chain(np.zeros(3), 3)
    with pytest.raises(ValueError, match="float32 condensed vector of 6 values"):
        ward_chain(np.zeros(3, np.float32), 4)


def test_up_to_5000_classes_float32_is_chosen_only_when_float64_does_not_fit():
    c, d = 500, 32
    float32 = condensed32_bytes(c, d)
    assert plan_linkage(c, d, "ward", condensed_bytes(c, d)).routine == "condensed"
    assert plan_linkage(c, d, "ward", float32).routine == "condensed32"
    assert plan_linkage(c, d, "ward", float32 - 1).routine == "vectors"
    assert plan_linkage(c, d, "single", float32).routine == "vectors"  # Ward only
    with pytest.raises(ClassmapError, match="over the memory budget"):
        plan_linkage(c, d, "average", float32)
    assert vectors_bytes(c, d) < float32


def test_over_5000_classes_ward_runs_the_float32_chain_whenever_it_fits():
    for c in (5001, 21843):
        d = 768
        assert plan_linkage(c, d, "ward", condensed_bytes(c, d)).routine == "condensed32"
        assert plan_linkage(c, d, "ward", condensed32_bytes(c, d)).routine == "condensed32"
        assert plan_linkage(c, d, "average", condensed_bytes(c, d)).routine == "condensed"
        assert plan_linkage(c, d, "single", condensed_bytes(c, d)).routine == "condensed"
    assert plan_linkage(5000, 768, "ward", condensed_bytes(5000, 768)).routine == "condensed"


def test_the_50k_head_runs_the_float32_chain_in_6g_counting_the_interpreter():
    from classmap.analysis.settings import DEFAULT_MEMORY_BUDGET, RUNTIME_BYTES

    c, d = 50000, 768
    head = c * d * 4
    # The float32 vector (4.66 GiB) dominates; the float64 rows are gone by then.
    assert condensed32_bytes(c, d) < c * (c - 1) // 2 * 4 + 64 * 1024**2
    plan = plan_linkage(c, d, "ward", 6 * 1024**3, reserved=RUNTIME_BYTES + head)
    assert plan.routine == "condensed32"
    assert plan.bytes_needed == RUNTIME_BYTES + head + condensed32_bytes(c, d)
    assert plan_linkage(c, d, "ward", reserved=RUNTIME_BYTES + head).routine == "condensed32"
    assert DEFAULT_MEMORY_BUDGET == 6 * 1024**3
    assert plan_linkage(c, d, "ward", int(4.5 * 1024**3)).routine == "vectors"
    # What the routine alone fits is refused once the interpreter is counted.
    alone = condensed32_bytes(c, d)
    assert plan_linkage(c, d, "ward", alone).routine == "condensed32"
    assert plan_linkage(c, d, "ward", alone, reserved=RUNTIME_BYTES).routine == "vectors"


def test_a_head_over_the_budget_with_the_interpreter_is_refused_in_one_line():
    from classmap.analysis.settings import RUNTIME_BYTES

    with pytest.raises(ClassmapError) as caught:
        plan_linkage(50000, 768, "average", 6 * 1024**3, reserved=RUNTIME_BYTES)
    message = str(caught.value)
    assert "\n" not in message
    assert "(with 768 MiB for the interpreter and the head)" in message
    assert "over the memory budget of 6.0 GiB" in message and "CLASSMAP_MEMORY_BUDGET=" in message


def test_linkage_matrix_runs_the_float32_chain_under_its_budget(monkeypatch):
    import classmap.analysis.methods.hierarchy as module

    monkeypatch.setattr(module.fastcluster, "linkage", lambda *a, **k: pytest.fail("float64"))
    monkeypatch.setattr(module.fastcluster, "linkage_vector",
                        lambda *a, **k: pytest.fail("vectors"))
    z = _rows(8, classes=300, features=16)
    ours = linkage_matrix(z, "cosine", "ward", budget=_float32_budget(300, 16))
    reference = hierarchy.linkage(z, "ward")
    np.testing.assert_allclose(ours[:, 2], reference[:, 2], rtol=1e-4)
    np.testing.assert_array_equal(ours[:, [0, 1, 3]], reference[:, [0, 1, 3]])


def test_float32_chain_finds_the_planted_groups_exactly():
    planted = planted_head(1500, 768, seed=2, names=False)
    z = standardise_rows(planted.weight)
    linkage = linkage_matrix(z, "cosine", "ward", budget=_float32_budget(1500, 768))
    found = hierarchy.fcluster(linkage, planted.num_groups, "maxclust")
    assert adjusted_rand_score(planted.group, found) == 1.0


def test_float32_chain_reports_its_merges_as_progress():
    reports = []
    z = _rows(9, classes=3000, features=8)
    linkage_matrix(z, "cosine", "ward", budget=_float32_budget(3000, 8),
                   progress=CallbackProgress(lambda name, done: reports.append((name, done))))
    merges = [done for name, done in reports if name == "ward linkage"]
    assert merges[0] == 0.0 and merges[-1] == 1.0
    assert len(merges) > 100  # advanced along the merges, not only at the end
    assert merges == sorted(merges)
    assert merges[-2] == pytest.approx(1.0)  # the merges counted add up to C − 1


def test_float32_chain_stops_when_interrupted():
    calls = []

    def cancel(merged: int) -> None:
        calls.append(merged)
        if len(calls) == 3:
            raise KeyboardInterrupt

    z = _rows(10, classes=400, features=8)
    with pytest.raises(KeyboardInterrupt):
        ward_chain(condensed_squared_float32(z), 400, on_merges=cancel, report_every=10)
    assert calls == [10, 10, 10]


@pytest.mark.parametrize("classes", [1, 2, 3, 4])
def test_float32_chain_on_the_smallest_heads(classes):
    z = _rows(11, classes=classes, features=5)
    ours = ward_chain(condensed_squared_float32(z), classes)
    assert ours.shape == (classes - 1, 4)
    if classes > 1:
        reference = hierarchy.linkage(z, "ward")
        np.testing.assert_allclose(ours[:, 2], reference[:, 2], rtol=1e-4)
        np.testing.assert_array_equal(ours[:, [0, 1, 3]], reference[:, [0, 1, 3]])


def test_the_prepared_float32_linkage_holds_no_reference_to_the_rows():
    """The pipeline drops its rows before the vector fills: the prepared routine must not
    keep them alive (at 50,000 × 768 they are 0.14 GiB beside the 4.66 GiB vector)."""
    import gc
    import weakref

    import torch

    from classmap.analysis.methods.hierarchy import prepare_linkage

    z = _rows(12, classes=300, features=16)
    rows = torch.from_numpy(z.astype(np.float32))
    run = prepare_linkage(rows, "cosine", "ward", budget=_float32_budget(300, 16))
    alive = weakref.ref(rows)
    del rows
    gc.collect()
    assert alive() is None
    ours = run(None)
    reference = hierarchy.linkage(z.astype(np.float32).astype(np.float64), "ward")
    np.testing.assert_allclose(ours[:, 2], reference[:, 2], rtol=1e-4)
    np.testing.assert_array_equal(ours[:, [0, 1, 3]], reference[:, [0, 1, 3]])


def test_squared_distances_free_their_float64_chunks_as_they_fill_and_fill_once():
    from scipy.spatial.distance import pdist

    from classmap.analysis.methods.ward_chain import SquaredDistances

    z = _rows(13, classes=70, features=6)
    source = SquaredDistances(z, block_rows=8, column_rows=16)
    assert len(source.chunks) == 5 and all(c.dtype == torch.float64 for c in source.chunks)
    live = []
    squared = source.fill(on_chunk=lambda n: live.append(sum(c is not None
                                                                for c in source.chunks)))
    assert live[0] == 5 and live[-1] == 0 and live == sorted(live, reverse=True)
    np.testing.assert_allclose(squared, pdist(z, "sqeuclidean"), rtol=1e-6, atol=1e-5)
    with pytest.raises(RuntimeError, match="runs once"):
        source.fill()
