"""Agreement of a learned tree with WordNet (METHODS.md §5) and node names, on
hand-built taxonomies with known answers and on the embedded ImageNet head."""

from __future__ import annotations

import itertools

import numpy as np
import pytest
from scipy.cluster import hierarchy

from classmap.analysis.methods.wordnet_agreement import (
    agreement,
    lca_sizes,
    name_nodes,
    nearest_in_tree,
)
from classmap.analysis.wordnet.graph import (
    WordNetGraph,
    ancestor_table,
    load_wordnet,
    wordnet_distances,
)


def _taxonomy() -> tuple[WordNetGraph, list[str]]:
    """root ─ g0, g1; g_i ─ s_i0, s_i1; s_ij ─ two leaf classes (8 classes, depth 3)."""
    names, parents = {"00000000": "root"}, {"00000000": ()}
    leaves = []
    for g in range(2):
        gid = f"0000001{g}"
        names[gid], parents[gid] = f"group{g}", ("00000000",)
        for s in range(2):
            sid = f"000001{g}{s}"
            names[sid], parents[sid] = f"sub{g}{s}", (gid,)
            for leaf in range(2):
                lid = f"00001{g}{s}{leaf}"
                names[lid], parents[lid] = f"class{g}{s}{leaf}", (sid,)
                leaves.append("n" + lid)
    return WordNetGraph(names, parents), leaves


def _matching_tree() -> np.ndarray:
    """The taxonomy's nesting as a linkage over classes 0 … 7 (pairs, quads, root)."""
    return np.array([[0, 1, 1, 2], [2, 3, 1, 2], [4, 5, 1, 2], [6, 7, 1, 2],
                     [8, 9, 2, 4], [10, 11, 2, 4], [12, 13, 3, 8]], dtype=float)


def test_lca_sizes_match_the_tree_walked_by_hand():
    rng = np.random.default_rng(1)
    linkage = hierarchy.linkage(rng.normal(size=(12, 3)), "average")
    root = hierarchy.to_tree(linkage)
    nodes = []

    def collect(node):
        nodes.append(node)
        if not node.is_leaf():
            collect(node.left)
            collect(node.right)

    collect(root)
    expected = []
    for a, b in itertools.combinations(range(12), 2):
        holding = [n for n in nodes if {a, b} <= set(n.pre_order())]
        expected.append(min(n.count for n in holding))
    np.testing.assert_array_equal(lca_sizes(linkage), expected)


def test_a_tree_nesting_like_wordnet_scores_one():
    graph, ids = _taxonomy()
    table = ancestor_table(graph, ids)
    distances = wordnet_distances(table)
    names = name_nodes(_matching_tree(), table)
    score = agreement(_matching_tree(), distances, names)
    assert score.spearman == pytest.approx(1.0)
    assert score.nn_wordnet_distance == 1.0  # every class's tree sibling is its WordNet sibling
    assert score.baseline_wordnet_distance == pytest.approx((4 * 1 + 8 * 2 + 16 * 3) / 28)
    assert names.name == ("sub00", "sub01", "sub10", "sub11", "group0", "group1", "root")
    np.testing.assert_array_equal(names.fraction, 1.0)
    np.testing.assert_array_equal(names.purity, 1.0)


def test_a_tree_pairing_across_groups_scores_below_zero():
    """Pair the classes across groups first: every tree neighbour is WordNet-far."""
    graph, ids = _taxonomy()
    distances = wordnet_distances(ancestor_table(graph, ids))
    crossed = np.array([[0, 4, 1, 2], [1, 5, 1, 2], [2, 6, 1, 2], [3, 7, 1, 2],
                        [8, 9, 2, 4], [10, 11, 2, 4], [12, 13, 3, 8]], dtype=float)
    score = agreement(crossed, distances)
    assert score.spearman < 0
    assert score.nn_wordnet_distance == 3.0 > score.baseline_wordnet_distance


def test_names_take_the_deepest_synset_over_the_fraction():
    """Three dogs and a cat: 'dog' covers 3/4, 'carnivore' all 4."""
    names = {"00000001": "carnivore", "00000002": "dog", "00000003": "cat"}
    parents = {"00000001": (), "00000002": ("00000001",), "00000003": ("00000001",)}
    for k in range(4):
        names[f"0000010{k}"] = f"animal{k}"
        parents[f"0000010{k}"] = ("00000003",) if k == 3 else ("00000002",)
    table = ancestor_table(WordNetGraph(names, parents), [f"n0000010{k}" for k in range(4)])
    linkage = np.array([[0, 1, 1, 2], [2, 4, 2, 3], [3, 5, 3, 4]], dtype=float)
    loose = name_nodes(linkage, table, min_fraction=0.75)
    assert loose.name[-1] == "dog" and loose.fraction[-1] == 0.75
    strict = name_nodes(linkage, table, min_fraction=0.8)
    assert strict.name[-1] == "carnivore" and strict.fraction[-1] == 1.0
    # purity of the root: best Jaccard is 'carnivore' (4/4) over 'dog' (3/4)
    assert strict.purity[-1] == 1.0 and strict.purity_synset[-1] == "carnivore"


def test_nearest_in_tree_is_the_sibling_subtree():
    nearest = nearest_in_tree(_matching_tree())
    assert sorted(nearest[0]) == [1] and sorted(nearest[1]) == [0]
    linkage = np.array([[0, 1, 1, 2], [2, 3, 2, 3]], dtype=float)
    assert sorted(nearest_in_tree(linkage)[2]) == [0, 1]


@pytest.fixture(scope="module")
def imagenet(lite0_head):
    from classmap.analysis.pipelines.weights import WeightParams, analyse_weights

    result = analyse_weights(lite0_head, WeightParams(), device="cpu")
    table = ancestor_table(load_wordnet(), lite0_head.classes.ids)
    return result.linkage, table, wordnet_distances(table)


def test_random_relabelling_of_a_learned_tree_scores_about_zero(imagenet):
    linkage, _table, distances = imagenet
    rng = np.random.default_rng(0)
    scores = []
    for _ in range(3):
        shuffle = rng.permutation(len(distances))
        scores.append(agreement(linkage, distances[np.ix_(shuffle, shuffle)]).spearman)
    assert abs(np.mean(scores)) < 0.02
    assert agreement(linkage, distances).spearman > 0.5  # the real tree does agree


def test_imagenet_tree_nodes_are_named_and_neighbours_are_closer(imagenet, lite0_head):
    linkage, table, distances = imagenet
    names = name_nodes(linkage, table)
    crab_row = next(r for r, (a, b) in enumerate(linkage[:, :2]) if 118 in (a, b))
    assert names.name[crab_row] == "crab"
    assert "dog" in names.name
    score = agreement(linkage, distances, names)
    assert score.nn_wordnet_distance < score.baseline_wordnet_distance / 2
    assert 0 < score.mean_purity < 1


def test_best_per_row_takes_each_row_s_last_entry_in_the_order():
    from classmap.analysis.methods.wordnet_agreement import _best_per_row

    rng = np.random.default_rng(0)
    rows = rng.integers(0, 7, size=400)
    ascending = rng.permutation(400)
    got = _best_per_row(rows, ascending, 9)
    for row in range(9):
        entries = [i for i in ascending if rows[i] == row]  # in the order
        assert got[row] == (entries[-1] if entries else -1)
