"""Comparison measures between two class-relationship sources, against independent
computations (numpy permutations, pair counting, brute force) and known answers."""

from __future__ import annotations

import itertools

import numpy as np
import pytest
from scipy.cluster import hierarchy
from scipy.spatial.distance import pdist, squareform

from classmap.analysis.errors import ClassmapError
from classmap.analysis.methods.compare import (
    Relation,
    compare,
    crossings,
    cut_levels,
    disagreeing_pairs,
    fowlkes_mallows_curve,
    mantel,
    untangle,
)


def _relation(points: np.ndarray, name: str, method: str = "average") -> Relation:
    condensed = pdist(points)
    return Relation(name, squareform(condensed), hierarchy.linkage(condensed, method))


@pytest.fixture(scope="module")
def planted():
    """Four planted groups of 10 classes, seen by two noisy sources."""
    rng = np.random.default_rng(0)
    centres = rng.normal(scale=5, size=(4, 6))
    truth = np.repeat(centres, 10, axis=0)
    a = _relation(truth + rng.normal(size=truth.shape), "a")
    b = _relation(truth + rng.normal(size=truth.shape), "b")
    noise = _relation(rng.normal(size=truth.shape), "noise")
    return a, b, noise


def _independent_mantel(x, y, permutations, rng):
    cx, cy = squareform(x, checks=False), squareform(y, checks=False)
    statistic = np.corrcoef(cx, cy)[0, 1]
    hits = 0
    for _ in range(permutations):
        p = rng.permutation(len(x))
        r = np.corrcoef(squareform(x[np.ix_(p, p)], checks=False), cy)[0, 1]
        hits += abs(r) >= abs(statistic)
    return statistic, (hits + 1) / (permutations + 1)


def test_mantel_matches_an_independent_permutation_test(planted):
    a, b, noise = planted
    rng = np.random.default_rng(5)
    for x, y in ((a, b), (a, noise)):
        statistic, p_value = mantel(x.distance, y.distance, "pearson", 999, seed=1)
        expected, expected_p = _independent_mantel(x.distance, y.distance, 999, rng)
        assert statistic == pytest.approx(expected, abs=1e-10)
        assert p_value == pytest.approx(expected_p, abs=0.06)
    assert mantel(a.distance, b.distance, "pearson", 999)[1] == pytest.approx(1 / 1000)


def test_a_source_against_itself_scores_one(planted):
    a, _b, _noise = planted
    result = compare(a, a, permutations=99)
    assert result.spearman == pytest.approx(1.0)
    assert result.mantel_statistic == pytest.approx(1.0)
    assert result.cophenetic_pearson == pytest.approx(1.0)
    np.testing.assert_allclose(result.fowlkes_mallows, 1.0)
    assert result.crossings == result.crossings_before == 0


def test_unrelated_sources_score_about_zero(planted):
    a, _b, noise = planted
    result = compare(a, noise, permutations=199)
    assert abs(result.spearman) < 0.15 and result.mantel_p_value > 0.01
    assert np.mean(result.fowlkes_mallows - result.expected_fowlkes_mallows) < 0.1


def test_fowlkes_mallows_by_pair_counting(planted):
    a, b, _noise = planted
    levels = np.array([2, 4, 7])
    scores, expected = fowlkes_mallows_curve(a.linkage, b.linkage, levels)
    for k, score, mean in zip(levels, scores, expected):
        la = hierarchy.fcluster(a.linkage, k, "maxclust")
        lb = hierarchy.fcluster(b.linkage, k, "maxclust")
        same_a = np.array([la[i] == la[j] for i, j in itertools.combinations(range(40), 2)])
        same_b = np.array([lb[i] == lb[j] for i, j in itertools.combinations(range(40), 2)])
        tp = np.sum(same_a & same_b)
        assert score == pytest.approx(tp / np.sqrt(same_a.sum() * same_b.sum()))
        assert mean == pytest.approx(np.sqrt(same_a.sum() * same_b.sum()) / len(same_a))
    assert scores[1] == pytest.approx(1.0)  # both recover the four planted groups


def test_expected_fowlkes_mallows_matches_shuffled_partitions():
    rng = np.random.default_rng(2)
    points = rng.normal(size=(30, 2))
    a = hierarchy.linkage(points, "ward")
    b = hierarchy.linkage(rng.normal(size=(30, 2)), "ward")
    _scores, expected = fowlkes_mallows_curve(a, b, np.array([5]))
    from sklearn.metrics import fowlkes_mallows_score

    la = hierarchy.cut_tree(a, 5).ravel()
    lb = hierarchy.cut_tree(b, 5).ravel()
    shuffled = [fowlkes_mallows_score(la, rng.permutation(lb)) for _ in range(4000)]
    assert np.mean(shuffled) == pytest.approx(expected[0], abs=0.01)


def test_most_disagreeing_pair_is_found():
    rng = np.random.default_rng(3)
    base = squareform(pdist(rng.normal(size=(15, 3))))
    other = base.copy()
    i, j = np.unravel_index(np.argmax(base + np.eye(15) * -1), base.shape)
    other[i, j] = other[j, i] = 1e-3  # the farthest pair becomes the closest
    pairs, ranks = disagreeing_pairs(squareform(base, checks=False),
                                     squareform(other, checks=False), top=3)
    assert sorted(pairs[0]) == sorted([i, j])
    assert ranks[0, 0] == 1.0 and ranks[0, 1] == 0.0


def test_crossings_count_inversions_by_brute_force():
    rng = np.random.default_rng(4)
    a, b = rng.permutation(40), rng.permutation(40)
    position = {leaf: k for k, leaf in enumerate(b)}
    expected = sum(position[a[i]] > position[a[j]] for i, j in itertools.combinations(range(40), 2))
    assert crossings(a, b) == expected


def test_untangling_a_rotated_copy_removes_every_crossing(planted):
    a, _b, _noise = planted
    rotated = a.linkage.copy()
    rotated[:, [0, 1]] = rotated[:, [1, 0]]  # every node's children swapped
    order_a, order_b = untangle(a.linkage, rotated)
    assert crossings(order_a, hierarchy.leaves_list(rotated)) > 0
    assert crossings(order_a, order_b) == 0
    assert sorted(order_b) == list(range(40))


def test_untangling_does_not_add_crossings_on_planted_sources(planted):
    a, b, noise = planted
    for other in (b, noise):
        order_a, order_b = untangle(a.linkage, other.linkage)
        assert crossings(order_a, order_b) <= crossings(order_a,
                                                        hierarchy.leaves_list(other.linkage))


def test_cut_levels_are_thinned_for_large_class_sets():
    assert list(cut_levels(6)) == [2, 3, 4, 5]
    levels = cut_levels(1000)
    assert len(levels) <= 200 and levels[0] == 2 and levels[-1] == 999


def test_sources_over_different_class_counts_are_refused(planted):
    a, _b, _noise = planted
    small = _relation(np.random.default_rng(0).normal(size=(5, 2)), "small")
    with pytest.raises(ClassmapError, match="cover 40 and 5 classes"):
        compare(a, small)


def test_neighbour_overlap_by_hand():
    from classmap.analysis.methods.compare import neighbour_overlap

    line = squareform(pdist(np.arange(6, dtype=float)[:, None]))  # classes on a line
    same = neighbour_overlap(line, line, k=2)
    np.testing.assert_array_equal(same, 1.0)
    moved = line.copy()
    moved[0, 5] = moved[5, 0] = 0.1  # class 5 becomes class 0's nearest
    overlap = neighbour_overlap(line, moved, k=2)
    # class 0: {1, 2} vs {5, 1} → 1 shared of 3; class 5: {4, 3} vs {0, 4} → 1 of 3
    assert overlap[0] == pytest.approx(1 / 3) and overlap[5] == pytest.approx(1 / 3)
    np.testing.assert_array_equal(overlap[1:5], 1.0)


def test_restrict_keeps_the_induced_subtree_and_sub_matrix(planted):
    from classmap.analysis.methods.compare import restrict

    a = planted[0]
    keep = [3, 17, 0, 25, 39, 12, 8]
    sub = restrict(a, keep)
    np.testing.assert_array_equal(sub.distance, a.distance[np.ix_(keep, keep)])
    # The kept leaves' cophenetic distances (merge heights) are those of the full tree.
    full = squareform(hierarchy.cophenet(a.linkage))[np.ix_(keep, keep)]
    np.testing.assert_allclose(squareform(hierarchy.cophenet(sub.linkage)), full)
    with pytest.raises(ClassmapError, match="at least 3 shared"):
        restrict(a, [0, 1])


def test_class_mean_relation_is_the_cosine_of_class_means():
    from classmap.analysis.methods.compare import class_mean_relation

    rng = np.random.default_rng(1)
    labels = np.repeat([0, 2, 3, 5], 6)
    vectors = rng.normal(size=(len(labels), 5)) + labels[:, None]
    classes = np.array([0, 2, 3, 5])
    built = class_mean_relation("m", vectors, labels, classes, "average")
    means = np.stack([vectors[labels == c].mean(axis=0) for c in classes])
    np.testing.assert_allclose(built.distance, squareform(pdist(means, "cosine")), atol=1e-12)
    ward = class_mean_relation("m", vectors, labels, classes, "ward")
    # Independent construction: for unit-length means ‖u − v‖² = 2(1 − cos), so ward on
    # the unit means is ward on the Euclidean matrix √(2 · cosine distance) of the raw
    # means (scipy's Lance–Williams update on a condensed matrix, no normalising here).
    euclidean = np.sqrt(2.0 * pdist(means, "cosine"))
    np.testing.assert_allclose(ward.linkage, hierarchy.linkage(euclidean, "ward"), atol=1e-10)
    # The raw means' norms differ (offsets 0–5), so ward on them is another tree: the
    # check above can tell a missing normalisation.
    assert not np.allclose(ward.linkage[:, 2], hierarchy.linkage(means, "ward")[:, 2])
