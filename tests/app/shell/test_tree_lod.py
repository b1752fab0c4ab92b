"""Dendrogram level of detail: clades narrower than a few pixels collapse into one shape."""

from __future__ import annotations

import numpy as np
from scipy.cluster import hierarchy

from classmap.analysis.methods.similarity import standardise_rows
from classmap.analysis.synthetic import planted_head
from classmap.app.shell.tree_layout import compute_tree_layout


def _layout(classes: int):
    z = standardise_rows(planted_head(classes, 32, seed=4, names=False).weight).numpy()
    linkage = hierarchy.linkage(z.astype(np.float64), "ward")
    return compute_tree_layout(linkage, hierarchy.leaves_list(linkage))


def test_collapsed_clades_and_drawn_links_cover_every_leaf_once():
    layout = _layout(3000)
    c = layout.num_leaves
    drawn, collapsed = layout.detail_nodes(0, c - 1, width_px=1000, min_px=3)
    sizes = layout.last - layout.first + 1
    assert (sizes[drawn] >= 9).all() and (sizes[collapsed] < 9).all()
    assert len(drawn) + len(collapsed) < (c - 1) / 2
    covered = np.zeros(c, dtype=int)
    for node in collapsed:
        covered[layout.first[node]:layout.last[node] + 1] += 1
    drawn_set = set(drawn.tolist())
    for node in drawn:
        for child in layout.children[node - c]:
            if child < c:  # a single class hanging from a drawn link
                covered[layout.position[child]] += 1
            else:  # an internal child is drawn itself or collapsed
                assert child in drawn_set or child in set(collapsed.tolist())
    assert (covered == 1).all()


def test_zooming_in_expands_a_collapsed_clade():
    layout = _layout(3000)
    c = layout.num_leaves
    _, collapsed = layout.detail_nodes(0, c - 1)
    clade = int(collapsed[np.argmax(layout.last[collapsed] - layout.first[collapsed])])
    first, last = int(layout.first[clade]), int(layout.last[clade])
    drawn, still = layout.detail_nodes(first, last)
    assert still.size == 0
    np.testing.assert_array_equal(drawn, layout.internal_nodes_within(first, last))


def test_clade_shapes_are_closed_triangles_down_to_the_leaf_interval():
    layout = _layout(200)
    node = layout.root
    xs, ys = layout.clade_shapes(np.array([node]))
    np.testing.assert_allclose([xs[0], xs[3], ys[0], ys[3]],
                               [layout.x[node], layout.x[node], layout.y[node], layout.y[node]],
                               rtol=1e-6)
    assert xs[1] < 0 < 199 < xs[2] and ys[1] == ys[2] == 0 and np.isnan(xs[4])
