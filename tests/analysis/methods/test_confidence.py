"""Confidence-score class similarity against scipy / scikit-learn and planted groups."""

from __future__ import annotations

import numpy as np
import pytest
from scipy.cluster import hierarchy
from scipy.sparse.csgraph import minimum_spanning_tree
from scipy.spatial.distance import jensenshannon
from sklearn.metrics import adjusted_rand_score, confusion_matrix

from classmap.analysis.methods.confidence import (
    JS_LINKAGES,
    class_mean_softmax,
    cluster_classes_kmeans,
    confusion,
    count_class_images,
    js_divergence_matrix,
    js_linkage,
    tsne_softmax,
)
from classmap.analysis.errors import ClassmapError

GROUPS = np.array([0, 0, 0, 1, 1, 1])  # classes 0–2 and 3–5 confuse among themselves


def _planted_softmax(per_class: int = 10, seed: int = 0) -> tuple[np.ndarray, np.ndarray]:
    """Images whose softmax mass stays inside their class's group (6 classes, 2 groups)."""
    rng = np.random.default_rng(seed)
    labels = np.repeat(np.arange(6), per_class)
    concentration = np.where(GROUPS[labels][:, None] == GROUPS[None, :], 2.0, 0.05)
    concentration[np.arange(len(labels)), labels] += 6.0
    return np.stack([rng.dirichlet(alpha) for alpha in concentration]), labels


# ---------------------------------------------------------------- class means


def test_class_mean_softmax_equals_a_loop_and_marks_empty_classes():
    rng = np.random.default_rng(1)
    softmax = rng.dirichlet(np.ones(4), size=20)
    labels = rng.choice([0, 1, 3], size=20)  # class 2 has no image
    means = class_mean_softmax(softmax, labels, 4)
    for c in (0, 1, 3):
        np.testing.assert_allclose(means[c], softmax[labels == c].mean(axis=0), atol=1e-15)
    assert np.isnan(means[2]).all()
    coverage = count_class_images(labels, 4)
    np.testing.assert_array_equal(coverage.counts, np.bincount(labels, minlength=4))
    assert coverage.status[2] == "no images: row is NaN" and coverage.status[0] == "ok"


@pytest.mark.parametrize(
    ("softmax", "labels", "match"),
    [
        (np.array([[2.0, -1.0]]), np.array([0]), "negative"),
        (np.array([[0.7, 0.7]]), np.array([0]), "do not sum to 1"),
        (np.array([[0.5, 0.5]]), np.array([0, 1]), "labels"),
        (np.array([[0.5, 0.5]]), np.array([2]), "0 … 1"),
        (np.array([[0.2, 0.3, 0.5]]), np.array([0]), "3 columns"),
    ],
)
def test_class_mean_softmax_validates(softmax, labels, match):
    with pytest.raises(ClassmapError, match=match):
        class_mean_softmax(softmax, labels, 2)


# --------------------------------------------------------------- JS divergence


def test_js_hand_computed():
    js = js_divergence_matrix(np.array([[1.0, 0.0], [0.0, 1.0], [0.5, 0.5], [1.0, 0.0]]))
    assert js[0, 1] == 1.0  # disjoint supports: the maximum, 1 bit
    assert js[0, 3] == 0.0  # identical
    # [1, 0] vs [½, ½]: m = [¾, ¼]; H(m) − ½(0 + 1)
    h_m = -(0.75 * np.log2(0.75) + 0.25 * np.log2(0.25))
    assert js[0, 2] == pytest.approx(h_m - 0.5)


def test_js_equals_scipy_jensenshannon_squared():
    rng = np.random.default_rng(2)
    p = rng.dirichlet(np.full(7, 0.5), size=9)
    p[3, :4] = 0.0  # exact zeros
    p[3] /= p[3].sum()
    js = js_divergence_matrix(p)
    expected = np.array([[jensenshannon(a, b, base=2) ** 2 for b in p] for a in p])
    np.testing.assert_allclose(js, expected, atol=1e-12)
    np.testing.assert_array_equal(js, js.T)
    assert np.all(np.diag(js) == 0.0) and js.min() >= 0.0 and js.max() <= 1.0


def test_js_of_rows_not_summing_to_one_normalises_like_scipy():
    p = np.array([[2.0, 1.0, 1.0], [1.0, 1.0, 6.0]])
    assert js_divergence_matrix(p)[0, 1] == pytest.approx(jensenshannon(p[0], p[1], base=2) ** 2)


def test_js_propagates_nan_rows_of_empty_classes():
    p = np.array([[0.9, 0.1, 0.0], [np.nan] * 3, [0.1, 0.1, 0.8]])
    js = js_divergence_matrix(p)
    assert np.isnan(js[1]).all() and np.isnan(js[:, 1]).all()
    assert js[0, 2] == pytest.approx(jensenshannon(p[0], p[2], base=2) ** 2)
    with pytest.raises(ClassmapError, match="class\\(es\\) 1 "):
        cluster_classes_kmeans(js, 2)


def test_js_refuses_logits_and_partial_nan():
    with pytest.raises(ClassmapError, match="negative"):
        js_divergence_matrix(np.array([[1.5, -0.5], [0.5, 0.5]]))
    with pytest.raises(ClassmapError, match="NaN"):
        js_divergence_matrix(np.array([[np.nan, 1.0], [0.5, 0.5]]))


# --------------------------------------------------------- clustering classes


def test_planted_groups_are_recovered_by_kmeans_and_every_linkage():
    softmax, labels = _planted_softmax()
    js = js_divergence_matrix(class_mean_softmax(softmax, labels, 6))
    assignments = cluster_classes_kmeans(js, 2, seed=0)
    assert adjusted_rand_score(GROUPS, assignments) == 1.0
    assert assignments[0] == 0  # numbered by first appearance
    for method in JS_LINKAGES:
        tree = js_linkage(js, method)
        assert tree.shape == (5, 4)
        cut = hierarchy.fcluster(tree, 2, criterion="maxclust")
        assert adjusted_rand_score(GROUPS, cut) == 1.0, method


def test_single_linkage_heights_are_the_minimum_spanning_tree_of_the_divergence():
    """Independent reference: single-linkage merge heights = MST edge weights."""
    rng = np.random.default_rng(3)
    js = js_divergence_matrix(rng.dirichlet(np.ones(8), size=8))
    tree = js_linkage(js, "single")
    mst = minimum_spanning_tree(js).toarray()
    np.testing.assert_allclose(np.sort(tree[:, 2]), np.sort(mst[mst > 0]), atol=1e-12)
    # Average linkage: the first merge is the closest pair, at its divergence.
    average = js_linkage(js, "average")
    off = js + np.diag(np.full(8, np.inf))
    i, j = np.unravel_index(np.argmin(off), off.shape)
    assert set(average[0, :2].astype(int)) == {i, j}
    assert average[0, 2] == pytest.approx(off[i, j])


def test_ward_is_refused_with_the_valid_methods():
    js = js_divergence_matrix(np.eye(3) * 0.7 + 0.1)
    with pytest.raises(ClassmapError, match="Euclidean.*choose one of average, complete, single"):
        js_linkage(js, "ward")


@pytest.mark.parametrize(
    ("js", "k", "match"),
    [
        (np.zeros((3, 3)), 4, "num_clusters 4 is out of range"),
        (np.zeros((3, 3)), 0, "num_clusters 0 is out of range"),
        (np.zeros((3, 2)), 2, "square"),
        (np.array([[0.0, 0.2], [0.3, 0.0]]), 1, "symmetric"),
    ],
)
def test_kmeans_validates(js, k, match):
    with pytest.raises(ClassmapError, match=match):
        cluster_classes_kmeans(js, k)


# ------------------------------------------------------------------ t-SNE


def test_tsne_is_deterministic_and_keeps_planted_groups_apart():
    softmax, labels = _planted_softmax(per_class=8)
    first = tsne_softmax(softmax, seed=0, perplexity=10.0)
    again = tsne_softmax(softmax, seed=0, perplexity=10.0)
    assert first.shape == (len(labels), 2)
    np.testing.assert_array_equal(first, again)
    distances = np.linalg.norm(first[:, None] - first[None], axis=-1)
    np.fill_diagonal(distances, np.inf)
    nearest = distances.argmin(axis=1)
    assert np.mean(GROUPS[labels[nearest]] == GROUPS[labels]) > 0.9


def test_tsne_clips_perplexity_for_few_images():
    softmax, _ = _planted_softmax(per_class=1)  # 6 images, perplexity 30 ≥ N
    assert tsne_softmax(softmax).shape == (6, 2)
    with pytest.raises(ClassmapError, match="at least 3"):
        tsne_softmax(softmax[:2])


# --------------------------------------------------------------- confusion


def test_confusion_equals_sklearn():
    rng = np.random.default_rng(4)
    labels = rng.integers(0, 5, size=200)
    preds = np.where(rng.random(200) < 0.7, labels, rng.integers(0, 5, size=200))
    preds[preds == 4] = 3  # class 4 never predicted: its column must still exist
    ours = confusion(labels, preds, 6)
    assert ours.dtype == np.int64 and ours.shape == (6, 6)
    np.testing.assert_array_equal(ours, confusion_matrix(labels, preds, labels=range(6)))


def test_confusion_validates():
    with pytest.raises(ClassmapError, match="labels"):
        confusion(np.array([0, 1]), np.array([0]), 2)
    with pytest.raises(ClassmapError, match="0 … 1"):
        confusion(np.array([0, 1]), np.array([0, 2]), 2)
