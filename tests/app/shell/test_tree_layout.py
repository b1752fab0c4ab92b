"""Dendrogram geometry against scipy's own dendrogram and cut_tree."""

from __future__ import annotations

import numpy as np
import pytest
from scipy.cluster import hierarchy

from classmap.analysis.methods.hierarchy import cut_clusters, subtree_leaves
from classmap.app.shell.tree_layout import (
    cluster_runs,
    compute_tree_layout,
    cut_height,
    cut_labels,
    node_clusters,
)


def planted_linkage(seed: int = 0, groups: int = 5, per_group: int = 12, method: str = "ward"):
    rng = np.random.default_rng(seed)
    centres = rng.normal(scale=6.0, size=(groups, 8))
    points = np.concatenate([c + rng.normal(size=(per_group, 8)) for c in centres])
    return hierarchy.linkage(points, method=method)


@pytest.mark.parametrize("method", ["ward", "average", "single"])
def test_links_match_scipy_dendrogram(method):
    linkage = planted_linkage(method=method)
    layout = compute_tree_layout(linkage, hierarchy.leaves_list(linkage))
    reference = hierarchy.dendrogram(linkage, no_plot=True)
    assert layout.order.tolist() == reference["leaves"]
    xs, ys = layout.link_paths(np.arange(layout.num_leaves, layout.root + 1))
    ours = np.array(sorted(tuple(np.r_[10 * x[:4].astype(float) + 5, y[:4]])
                           for x, y in zip(xs.reshape(-1, 5), ys.reshape(-1, 5))))
    theirs = np.array(sorted(tuple(np.r_[ic, dc])
                             for ic, dc in zip(reference["icoord"], reference["dcoord"])))
    np.testing.assert_allclose(ours, theirs, rtol=1e-5, atol=1e-4)
    assert np.isnan(xs.reshape(-1, 5)[:, 4]).all()


def test_node_intervals_are_the_subtrees():
    linkage = planted_linkage(seed=1)
    layout = compute_tree_layout(linkage, hierarchy.leaves_list(linkage))
    for node in range(layout.root + 1):
        leaves = subtree_leaves(linkage, node)
        positions = np.sort(layout.position[leaves])
        assert positions.tolist() == list(range(layout.first[node], layout.last[node] + 1))
        inside = layout.internal_nodes_within(layout.first[node], layout.last[node])
        descendants = {n for n in range(layout.num_leaves, layout.root + 1)
                       if set(subtree_leaves(linkage, n)) <= set(leaves)}
        assert set(inside.tolist()) == descendants


@pytest.mark.parametrize("k", [1, 2, 3, 5, 9, 59, 60])
def test_cut_labels_match_cut_tree(k):
    linkage = planted_linkage(seed=2)
    layout = compute_tree_layout(linkage, hierarchy.leaves_list(linkage))
    np.testing.assert_array_equal(cut_labels(layout, k), cut_clusters(linkage, k))


def test_planted_groups_are_recovered_by_a_cut_into_five():
    linkage = planted_linkage(seed=3)
    layout = compute_tree_layout(linkage, hierarchy.leaves_list(linkage))
    labels = cut_labels(layout, 5)
    truth = np.repeat(np.arange(5), 12)
    for group in range(5):
        assert len(set(labels[truth == group])) == 1
    runs = cluster_runs(layout, labels)
    assert [label for label, _, _ in runs] == list(range(5))
    assert sum(last - first + 1 for _, first, last in runs) == 60


def test_node_clusters_and_cut_height_separate_the_merges():
    linkage = planted_linkage(seed=4)
    layout = compute_tree_layout(linkage, hierarchy.leaves_list(linkage))
    labels = cut_labels(layout, 4)
    per_node = node_clusters(layout, labels)
    height = cut_height(linkage, 4)
    internal = np.arange(layout.num_leaves, layout.root + 1)
    # Nodes below the cut belong to one cluster, nodes above it to none.
    assert (per_node[internal][layout.y[internal] < height] >= 0).all()
    assert (per_node[internal][layout.y[internal] > height] == -1).all()
    assert (per_node[:layout.num_leaves] == labels).all()
    assert cut_height(linkage, 1) is None
