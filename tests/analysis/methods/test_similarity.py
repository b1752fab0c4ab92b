"""Weight similarity against independent references (numpy, scikit-learn, scipy)."""

from __future__ import annotations

import numpy as np
import pytest
import torch
from scipy.spatial.distance import cdist
from sklearn.metrics.pairwise import cosine_similarity

from classmap.analysis.errors import ClassmapError
from classmap.analysis.methods.similarity import (
    nearest_classes,
    pairwise_scores,
    similarity_matrix,
    standardise_rows,
)


@pytest.fixture
def weights() -> np.ndarray:
    return np.random.default_rng(0).normal(size=(40, 16)).astype(np.float32)


def test_standardise_matches_numpy_with_unbiased_std(weights):
    expected = (weights - weights.mean(1, keepdims=True)) / weights.std(1, ddof=1, keepdims=True)
    np.testing.assert_allclose(standardise_rows(weights).numpy(), expected, rtol=1e-5, atol=1e-6)


def test_zero_variance_rows_are_named(weights):
    weights[3] = 0.5
    weights[7] = 0.0
    names = [f"name{i}" for i in range(len(weights))]
    with pytest.raises(ClassmapError, match="2 class row.*'name3', 'name7'"):
        standardise_rows(weights, names)


def test_cosine_equals_sklearn_and_pearson(weights):
    z = standardise_rows(weights)
    ours = similarity_matrix(z, "cosine")
    np.testing.assert_allclose(ours, cosine_similarity(z.numpy()), atol=1e-5)
    # Pearson correlation of the raw rows is the cosine of the standardised rows.
    np.testing.assert_allclose(ours, np.corrcoef(weights), atol=1e-5)
    assert np.all(np.diag(ours) == 1.0)


def test_euclidean_equals_scipy_cdist(weights):
    z = standardise_rows(weights)
    ours = similarity_matrix(z, "euclidean")
    np.testing.assert_allclose(ours, cdist(z.numpy(), z.numpy()), atol=2e-3)
    assert np.all(np.diag(ours) == 0.0)


def test_equal_norm_identity_gives_same_neighbour_order(weights):
    """‖a − b‖² = 2 r² (1 − cos) for rows of norm r, so the orderings agree."""
    z = standardise_rows(weights)
    r_squared = float((z[0] ** 2).sum())
    np.testing.assert_allclose((z**2).sum(1).numpy(), r_squared, rtol=1e-5)
    cos = pairwise_scores(z, z, "cosine").numpy()
    dist = pairwise_scores(z, z, "euclidean").numpy()
    np.testing.assert_allclose(dist**2, 2 * r_squared * (1 - cos), atol=2e-3)
    by_cosine = nearest_classes(z, "cosine", 10)
    by_distance = nearest_classes(z, "euclidean", 10)
    np.testing.assert_array_equal(by_cosine.index, by_distance.index)


def _reference_neighbours(scores: np.ndarray, k: int, largest: bool) -> np.ndarray:
    """Brute force: sort each row by (score, index) with self removed."""
    result = []
    for row in range(scores.shape[0]):
        candidates = [c for c in range(scores.shape[1]) if c != row]
        key = (lambda c: (-scores[row, c], c)) if largest else (lambda c: (scores[row, c], c))
        result.append(sorted(candidates, key=key)[:k])
    return np.array(result)


@pytest.mark.parametrize("metric", ["cosine", "euclidean"])
@pytest.mark.parametrize("chunk_rows", [1, 7, 1024])
def test_nearest_classes_match_brute_force_in_any_chunking(weights, metric, chunk_rows):
    z = standardise_rows(weights)
    scores = pairwise_scores(z, z, metric).numpy()
    ours = nearest_classes(z, metric, 5, chunk_rows=chunk_rows)
    expected = _reference_neighbours(scores, 5, largest=metric == "cosine")
    np.testing.assert_array_equal(ours.index, expected)
    np.testing.assert_allclose(
        ours.score, np.take_along_axis(scores, expected, axis=1), rtol=1e-6
    )


def test_ties_are_broken_by_class_index():
    # Rows 1, 2, 3 are identical, so row 0 sees three classes at exactly equal scores.
    base = np.array([[1, 2, 3, 4], [4, 3, 2, 1], [4, 3, 2, 1], [4, 3, 2, 1], [1, 3, 2, 4]],
                    dtype=np.float32)
    z = standardise_rows(base)
    result = nearest_classes(z, "cosine", 2, chunk_rows=2)
    # For row 1, classes 2 and 3 tie at cosine 1: class 2 first.
    assert result.index[1].tolist() == [2, 3]
    assert result.index[3].tolist() == [1, 2]
    # Row 0: 1, 2, 3 tie, and only two fit: the two lowest indices.
    tied = pairwise_scores(z, z, "cosine").numpy()[0, 1:4]
    assert np.ptp(tied) == 0
    assert result.index[0].tolist() == [4, 1]


@pytest.mark.parametrize("k", [0, 40, -1])
def test_top_k_out_of_range(weights, k):
    with pytest.raises(ClassmapError, match="--top-k"):
        nearest_classes(standardise_rows(weights), "cosine", k)


def test_unknown_metric_lists_choices(weights):
    with pytest.raises(ClassmapError, match="cosine, euclidean"):
        nearest_classes(standardise_rows(weights), "manhattan", 3)


def test_chunked_memory_never_builds_full_matrix(monkeypatch, weights):
    """Every scored block has at most chunk_rows rows."""
    from classmap.analysis.methods import similarity

    shapes = []
    original = similarity.pairwise_scores

    def spy(left, right, metric):
        shapes.append(tuple(left.shape))
        return original(left, right, metric)

    monkeypatch.setattr(similarity, "pairwise_scores", spy)
    similarity.nearest_classes(torch.as_tensor(weights), "cosine", 3, chunk_rows=8)
    assert max(rows for rows, _ in shapes) == 8
    assert len(shapes) == 5
