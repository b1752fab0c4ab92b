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


def coverage(xs, ys) -> tuple[dict, set]:
    """What NaN-separated polylines draw: per horizontal or vertical line, the union of
    its covered intervals (merged); and the other segments, endpoints sorted. A retraced
    segment and a link split at a point cover the same as the link drawn once."""
    lines: dict = {}
    others = set()
    points = np.c_[np.asarray(xs, dtype=np.float64), np.asarray(ys, dtype=np.float64)]
    for (x0, y0), (x1, y1) in zip(points[:-1], points[1:]):
        if np.isnan([x0, y0, x1, y1]).any() or (np.isclose(x0, x1) and np.isclose(y0, y1)):
            continue
        if np.isclose(y0, y1):
            lines.setdefault(("h", round(y0, 4)), []).append(sorted((x0, x1)))
        elif np.isclose(x0, x1):
            lines.setdefault(("v", round(x0, 4)), []).append(sorted((y0, y1)))
        else:
            others.add(tuple(np.round(sorted([(x0, y0), (x1, y1)]), 4).ravel()))
    merged = {}
    for key, spans in lines.items():
        runs: list[list[float]] = []
        for start, stop in sorted(spans):
            if runs and start <= runs[-1][1] + 1e-4:
                runs[-1][1] = max(runs[-1][1], stop)
            else:
                runs.append([start, stop])
        merged[key] = [tuple(np.round(r, 4)) for r in runs]
    return merged, others


@pytest.mark.parametrize("method", ["ward", "average", "single"])
def test_the_walk_draws_scipys_links_as_one_path(method):
    linkage = planted_linkage(method=method)
    layout = compute_tree_layout(linkage, hierarchy.leaves_list(linkage))
    xs, ys = layout.link_walk(np.arange(layout.num_leaves, layout.root + 1))
    assert not np.isnan(xs).any()  # one tree, one polyline
    # consecutive points share an x or a y: the walk never cuts across
    step = np.c_[np.diff(xs), np.diff(ys)]
    assert ((np.abs(step) < 1e-6).any(axis=1)).all()
    reference = hierarchy.dendrogram(linkage, no_plot=True)
    ref_x = np.concatenate([np.r_[(np.asarray(ic) - 5) / 10, np.nan]
                            for ic in reference["icoord"]])
    ref_y = np.concatenate([np.r_[dc, np.nan] for dc in reference["dcoord"]])
    assert coverage(xs, ys) == coverage(ref_x, ref_y)


@pytest.mark.parametrize("span,min_px", [((0, 59), 9.0), ((12, 47), 9.0), ((0, 59), 40.0),
                                         ((30, 35), 3.0)])
def test_the_walk_draws_the_level_of_detail_links_and_clades(span, min_px):
    linkage = planted_linkage(seed=3)
    layout = compute_tree_layout(linkage, hierarchy.leaves_list(linkage))
    drawn, collapsed = layout.detail_nodes(*span, width_px=60, min_px=min_px)
    xs, ys = layout.link_walk(drawn, collapsed)
    ref = [np.r_[a, b] for a, b in zip(layout.link_paths(drawn), layout.clade_shapes(collapsed))]
    assert coverage(xs, ys) == coverage(*ref)
    # one polyline per tree: a drawn or collapsed node whose parent is not drawn
    parents = {int(k) for n in drawn for k in layout.children[n - layout.num_leaves]}
    trees = len(set(np.r_[drawn, collapsed].tolist()) - parents)
    assert np.isnan(xs).sum() == trees - 1


def test_an_empty_walk():
    layout = compute_tree_layout(planted_linkage(), hierarchy.leaves_list(planted_linkage()))
    xs, ys = layout.link_walk(np.zeros(0, dtype=np.int64))
    assert xs.shape == ys.shape == (0,)


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
