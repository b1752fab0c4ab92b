"""Hierarchical clustering against scipy, and planted-structure recovery."""

from __future__ import annotations

import re

import numpy as np
import pytest
from scipy.cluster import hierarchy
from scipy.spatial.distance import pdist
from sklearn.metrics import adjusted_rand_score

from classmap.analysis.errors import ClassmapError
from classmap.analysis.methods.hierarchy import (
    condensed_bytes,
    condensed_distances,
    cut_clusters,
    leaf_order,
    linkage_matrix,
    plan_linkage,
    subtree_leaves,
    to_newick,
    tree_metric,
    unique_leaf_labels,
    vectors_bytes,
)
from classmap.analysis.methods.similarity import nearest_classes, standardise_rows


def planted_head(
    rng: np.random.Generator, groups: int = 6, per_group: int = 5, dim: int = 64
) -> tuple[np.ndarray, np.ndarray, np.ndarray]:
    """A head generated from a random two-level tree of classes.

    Returns weight [C, D], the planted group of each class [C] and the planted
    sub-group ("sibling pairs") of each class [C].
    """
    rows, group_of, pair_of = [], [], []
    pair_id = 0
    for group in range(groups):
        centre = rng.normal(0, 4.0, dim)
        for start in range(0, per_group, 2):
            sub_centre = centre + rng.normal(0, 1.0, dim)
            for _ in range(min(2, per_group - start)):
                rows.append(sub_centre + rng.normal(0, 0.2, dim))
                group_of.append(group)
                pair_of.append(pair_id)
            pair_id += 1
    return np.array(rows, np.float32), np.array(group_of), np.array(pair_of)


@pytest.mark.parametrize("seed", [0, 1, 2])
def test_ward_recovers_planted_groups_and_siblings(seed):
    weight, groups, pairs = planted_head(np.random.default_rng(seed))
    z = standardise_rows(weight)
    linkage = linkage_matrix(z, "cosine", "ward")
    labels = cut_clusters(linkage, len(np.unique(groups)))
    assert adjusted_rand_score(groups, labels) == 1.0
    nearest = nearest_classes(z, "cosine", 1).index[:, 0]
    for cls, neighbour in enumerate(nearest):
        siblings = np.flatnonzero(pairs == pairs[cls])
        if len(siblings) > 1:  # singleton sub-groups have no sibling to find
            assert pairs[neighbour] == pairs[cls]


def test_ward_matches_scipy_on_the_standardised_vectors():
    weight = np.random.default_rng(3).normal(size=(60, 20)).astype(np.float32)
    z = standardise_rows(weight).numpy().astype(np.float64)
    ours = linkage_matrix(z, "cosine", "ward")
    reference = hierarchy.linkage(z, "ward")
    np.testing.assert_allclose(ours[:, 2], reference[:, 2], rtol=1e-4)
    np.testing.assert_allclose(
        hierarchy.cophenet(ours), hierarchy.cophenet(reference), rtol=1e-4
    )


def test_only_ward_trees_do_not_depend_on_the_metric():
    """The dashboard keeps the tree drawn across a metric switch when ``tree_metric`` says
    the linkage ignores the metric: Ward's trees of both metrics are identical (scipy's
    Ward on the standardised rows), an average-linkage tree is not."""
    z = standardise_rows(np.random.default_rng(5).normal(size=(40, 12)).astype(np.float32))
    assert tree_metric("cosine", "ward") is tree_metric("euclidean", "ward") is None
    np.testing.assert_array_equal(linkage_matrix(z, "cosine", "ward"),
                                  linkage_matrix(z, "euclidean", "ward"))
    for method in ("average", "complete", "single"):
        assert [tree_metric(m, method) for m in ("cosine", "euclidean")] == ["cosine", "euclidean"]
    assert not np.array_equal(linkage_matrix(z, "cosine", "average"),
                              linkage_matrix(z, "euclidean", "average"))
    with pytest.raises(ClassmapError, match="linkage"):
        tree_metric("cosine", "centroid")


def test_ward_over_the_budget_uses_the_memory_saving_routine(monkeypatch):
    import classmap.analysis.methods.hierarchy as module

    called = []
    original = module.fastcluster.linkage_vector
    monkeypatch.setattr(
        module.fastcluster, "linkage_vector",
        lambda *a, **k: called.append(1) or original(*a, **k),
    )
    weight = np.random.default_rng(4).normal(size=(30, 8)).astype(np.float32)
    z = standardise_rows(weight).numpy().astype(np.float64)
    budget = vectors_bytes(30, 8)  # neither condensed vector fits
    assert plan_linkage(30, 8, "ward", budget).routine == "vectors"
    np.testing.assert_allclose(
        linkage_matrix(z, "cosine", "ward", budget=budget)[:, 2],
        hierarchy.linkage(z, "ward")[:, 2], rtol=1e-4,
    )
    assert called


def test_the_fastest_routine_is_chosen_when_it_fits():
    # Ward over 5,000 classes: the float32 chain (measured faster, half the memory).
    assert plan_linkage(21843, 768, "ward", 6 * 1024**3).routine == "condensed32"
    assert plan_linkage(21843, 768, "ward", 64 * 1024**3).routine == "condensed32"
    assert plan_linkage(5000, 768, "ward", 64 * 1024**3).routine == "condensed"
    assert plan_linkage(21843, 768, "average", 6 * 1024**3).routine == "condensed"
    assert plan_linkage(50000, 768, "ward", 6 * 1024**3).routine == "condensed32"
    assert plan_linkage(50000, 768, "ward", int(4.5 * 1024**3)).routine == "vectors"
    assert plan_linkage(50000, 768, "single", 6 * 1024**3).routine == "vectors"


@pytest.mark.parametrize("method", ["average", "complete"])
def test_a_linkage_over_the_budget_is_refused_in_one_line_naming_budget_and_fix(method):
    with pytest.raises(ClassmapError) as caught:
        plan_linkage(50000, 768, method, 6 * 1024**3)
    message = str(caught.value)
    assert "\n" not in message
    assert "over the memory budget of 6.0 GiB" in message
    assert "CLASSMAP_MEMORY_BUDGET=11G" in message
    with pytest.raises(ClassmapError, match="memory budget of 1 MiB"):
        plan_linkage(2000, 768, "ward", 1024**2)


def test_single_cosine_over_the_budget_matches_scipy():
    """The vectors routine runs single linkage on unit rows and maps heights back to 1 − cos."""
    weight = np.random.default_rng(9).normal(size=(40, 12)).astype(np.float32)
    z = standardise_rows(weight).numpy().astype(np.float64)
    ours = linkage_matrix(z, "cosine", "single", budget=condensed_bytes(40, 12) - 1)
    reference = hierarchy.linkage(pdist(z, "cosine"), "single")
    np.testing.assert_allclose(ours[:, 2], reference[:, 2], rtol=1e-6, atol=1e-9)
    np.testing.assert_allclose(hierarchy.cophenet(ours), hierarchy.cophenet(reference),
                               rtol=1e-6, atol=1e-9)


def test_condensed_distances_match_pdist_across_chunks():
    z = standardise_rows(np.random.default_rng(10).normal(size=(37, 9))).numpy()
    for metric in ("cosine", "euclidean"):
        seen = []
        ours = condensed_distances(z, metric, chunk_rows=5, on_chunk=seen.append)
        np.testing.assert_allclose(ours, pdist(z.astype(np.float64), metric), atol=1e-10)
        assert sum(seen) == 37 and len(seen) == 8


def test_linkage_reports_progress_for_distances_and_the_linkage():
    from classmap.analysis.progress import CallbackProgress

    reports = []
    z = standardise_rows(np.random.default_rng(11).normal(size=(60, 8)))
    linkage_matrix(z, "cosine", "ward", progress=CallbackProgress(
        lambda name, fraction: reports.append((name, fraction))))
    names = [name for name, _ in reports]
    assert "pairwise distances" in names and "ward linkage" in names
    assert ("ward linkage", 1.0) in reports


@pytest.mark.parametrize("method", ["average", "complete", "single"])
@pytest.mark.parametrize("metric,scipy_metric", [("cosine", "cosine"), ("euclidean", "euclidean")])
def test_other_linkages_run_on_condensed_distances(method, metric, scipy_metric):
    weight = np.random.default_rng(5).normal(size=(50, 12)).astype(np.float32)
    z = standardise_rows(weight).numpy().astype(np.float64)
    ours = linkage_matrix(z, metric, method)
    reference = hierarchy.linkage(pdist(z, scipy_metric), method)
    np.testing.assert_allclose(ours[:, 2], reference[:, 2], rtol=1e-4, atol=1e-5)
    np.testing.assert_allclose(
        condensed_distances(z, metric), pdist(z, scipy_metric), rtol=1e-4, atol=1e-5
    )


def test_the_seeds_call_is_not_what_we_compute():
    """Seed 000 passed the square matrix: scipy then clusters its rows as vectors."""
    weight = np.random.default_rng(6).normal(size=(30, 10)).astype(np.float32)
    z = standardise_rows(weight).numpy().astype(np.float64)
    square = 1 - np.corrcoef(z)
    seeds = hierarchy.linkage(square, "average")
    ours = linkage_matrix(z, "cosine", "average")
    assert not np.allclose(seeds[:, 2], ours[:, 2])


def test_cut_matches_fcluster_partition_and_follows_leaf_order():
    weight = np.random.default_rng(7).normal(size=(40, 10)).astype(np.float32)
    linkage = linkage_matrix(standardise_rows(weight), "cosine", "average")
    for k in (1, 2, 5, 40):
        ours = cut_clusters(linkage, k)
        reference = hierarchy.fcluster(linkage, k, "maxclust")
        assert adjusted_rand_score(reference, ours) == 1.0
        assert len(np.unique(ours)) == k
        first_seen = [ours[leaf] for leaf in leaf_order(linkage)]
        assert first_seen[0] == 0
        assert sorted(set(first_seen)) == list(range(k))
    with pytest.raises(ClassmapError, match="1 ≤ k ≤ 40"):
        cut_clusters(linkage, 41)


def test_subtree_leaves_match_scipy_tree():
    weight = np.random.default_rng(8).normal(size=(25, 6)).astype(np.float32)
    linkage = linkage_matrix(standardise_rows(weight), "cosine", "ward")
    _root, nodes = hierarchy.to_tree(linkage, rd=True)
    for node in nodes:
        assert subtree_leaves(linkage, node.id).tolist() == sorted(node.pre_order())
    with pytest.raises(ClassmapError):
        subtree_leaves(linkage, 49)


def test_newick_hand_computed_three_leaves_with_quoting():
    # Leaves 0 and 1 merge at height 1, then with leaf 2 at height 3.
    linkage = np.array([[0, 1, 1.0, 2], [2, 3, 3.0, 3]], dtype=np.float64)
    text = to_newick(linkage, ["crab, king", "it's", "lobster (American)"])
    assert text == "('lobster (American)':3,('crab, king':1,'it''s':1):2);\n"


def test_newick_of_a_large_tree_has_every_leaf_once():
    weight = np.random.default_rng(9).normal(size=(3000, 4)).astype(np.float32)
    linkage = linkage_matrix(standardise_rows(weight), "euclidean", "single")
    labels = [f"c{i}" for i in range(3000)]
    text = to_newick(linkage, labels)
    assert text.count("'") == 2 * 3000
    assert text.count("(") == text.count(")") == 2999


def newick_leaves(text: str) -> list[str]:
    """The leaf labels of a Newick tree whose leaves (only) are single-quoted."""
    return [match.replace("''", "'") for match in re.findall(r"'((?:[^']|'')*)'", text)]


def test_newick_leaf_labels_are_unique_when_class_names_repeat():
    linkage = np.array([[0, 1, 1.0, 2], [2, 3, 2.0, 2], [4, 5, 3.0, 4]], dtype=np.float64)
    names = ["crane", "crab", "crane", "crane #0"]  # the last collides with a suffixed one
    leaves = newick_leaves(to_newick(linkage, names))
    assert len(leaves) == 4 and len(set(leaves)) == 4
    assert "crab" in leaves  # a unique name is kept as it is
    assert set(leaves) == {"crane #0 #0", "crab", "crane #2", "crane #0 #3"}
    assert unique_leaf_labels(["a", "b"]) == ["a", "b"]


def test_newick_of_the_embedded_default_has_unique_leaves(lite0_head):
    names = list(lite0_head.classes.names)
    assert len(set(names)) < len(names)  # ImageNet-1k's two "crane" classes, …
    weight = np.asarray(lite0_head.weight, dtype=np.float32)
    linkage = linkage_matrix(standardise_rows(weight), "euclidean", "ward")
    leaves = newick_leaves(to_newick(linkage, names))
    assert len(leaves) == len(names) == len(set(leaves))
    crane = [i for i, name in enumerate(names) if name == "crane"]
    assert {f"crane #{i}" for i in crane} <= set(leaves)
