"""Per-representation measures against hand-computed cases, planted structure and sklearn."""

from __future__ import annotations

import math

import numpy as np
import pytest
from sklearn.decomposition import PCA
from sklearn.metrics import adjusted_rand_score, normalized_mutual_info_score, silhouette_score
from sklearn.metrics.pairwise import cosine_similarity
from sklearn.preprocessing import StandardScaler

from classmap.analysis.errors import ClassmapError
from classmap.analysis.methods.representations import (
    CLUSTERING_ALGORITHMS,
    REPRESENTATIONS,
    check_representation,
    cluster_representation,
    project_pca,
    relabel_by_first_appearance,
    scale_representation,
    within_class_cosine,
)


def _planted_blobs(
    num_classes: int = 4, per_class: int = 15, dims: int = 8, radius: float = 10.0, seed: int = 0
) -> tuple[np.ndarray, np.ndarray]:
    """Gaussian blobs (std 1) whose centres point in random directions at ``radius``."""
    rng = np.random.default_rng(seed)
    directions = rng.normal(size=(num_classes, dims))
    centres = radius * directions / np.linalg.norm(directions, axis=1, keepdims=True)
    labels = np.repeat(np.arange(num_classes), per_class)
    return centres[labels] + rng.normal(size=(len(labels), dims)), labels


# ------------------------------------------------------------------- cosine


def test_within_class_cosine_hand_computed():
    x = np.array(
        [
            [1.0, 0.0],  # class 0
            [0.0, 1.0],  # class 0
            [1.0, 1.0],  # class 0
            [2.0, 0.0],  # class 1, alone
            [0.0, 0.0],  # class 2, zero vector
            [3.0, 0.0],  # class 2
            [0.0, -2.0],  # class 2
        ]
    )
    labels = np.array([0, 0, 0, 1, 2, 2, 2])
    result = within_class_cosine(x, labels, 4)
    # class 0: cos = 0, 1/√2, 1/√2 → mean √2 / 3; class 2: the zero vector is left out,
    # the remaining pair is orthogonal → 0.
    assert result.per_class[0] == pytest.approx(math.sqrt(2) / 3)
    assert result.per_class[2] == pytest.approx(0.0, abs=1e-15)
    assert np.isnan(result.per_class[1]) and np.isnan(result.per_class[3])
    np.testing.assert_array_equal(result.pair_counts, [3, 0, 1, 0])
    np.testing.assert_array_equal(result.image_counts, [3, 1, 3, 0])
    np.testing.assert_array_equal(result.zero_vector_counts, [0, 0, 1, 0])
    assert result.overall_pairs == pytest.approx((math.sqrt(2) + 0.0) / 4)
    assert result.overall_classes == pytest.approx((math.sqrt(2) / 3 + 0.0) / 2)
    assert result.status[0] == "ok"
    assert result.status[1] == "1 usable image(s): no pair"
    assert "1 zero vector(s) left out" in result.status[2]
    assert result.status[3] == "no images"


def test_within_class_cosine_equals_sklearn_gram_means():
    rng = np.random.default_rng(1)
    x = rng.normal(size=(50, 9))
    labels = rng.integers(0, 5, size=50)
    result = within_class_cosine(x, labels, 5)
    pair_values = []
    for c in range(5):
        members = x[labels == c]
        gram = cosine_similarity(members)
        upper = gram[np.triu_indices(len(members), k=1)]
        pair_values.extend(upper)
        assert result.per_class[c] == pytest.approx(upper.mean(), abs=1e-12)
        assert result.pair_counts[c] == len(upper)
    assert result.overall_pairs == pytest.approx(np.mean(pair_values), abs=1e-12)
    assert result.overall_classes == pytest.approx(result.per_class.mean(), abs=1e-12)


def test_planted_classes_are_more_similar_within_than_shuffled():
    x, labels = _planted_blobs()
    planted = within_class_cosine(x, labels, 4)
    shuffled = within_class_cosine(x, np.random.default_rng(0).permutation(labels), 4)
    assert planted.overall_pairs > 0.9
    assert shuffled.overall_pairs < planted.overall_pairs - 0.4


# --------------------------------------------------------------- clustering


@pytest.mark.parametrize("algorithm", CLUSTERING_ALGORITHMS)
def test_planted_blobs_are_recovered(algorithm):
    x, labels = _planted_blobs()
    result = cluster_representation(x, labels, 4, algorithm, seed=0)
    assert result.ari == pytest.approx(1.0)
    assert result.nmi == pytest.approx(1.0)
    assert result.silhouette > 0.5
    assert result.algorithm == algorithm and result.silhouette_metric == "euclidean"
    assert result.clusters_found == 4
    # Scores equal scikit-learn's on the returned assignments and the scaled vectors.
    scaled = scale_representation(x, "global")
    assert result.ari == adjusted_rand_score(labels, result.assignments)
    assert result.nmi == normalized_mutual_info_score(labels, result.assignments)
    assert result.silhouette == pytest.approx(silhouette_score(scaled, result.assignments))


def test_global_scaling_keeps_geometry_for_tiny_gradient_weights():
    """Gradient weights are ~1e-4; the global scaling keeps k-means and the Silhouette
    of the raw vectors, and lets the mixture cluster them."""
    x, labels = _planted_blobs(seed=2)
    tiny = 1e-4 * x
    raw = cluster_representation(x, labels, 4, "kmeans", scaling="none")
    scaled = cluster_representation(tiny, labels, 4, "kmeans", scaling="global")
    np.testing.assert_array_equal(raw.assignments, scaled.assignments)
    assert raw.silhouette == pytest.approx(scaled.silhouette, rel=1e-9)
    assert cluster_representation(tiny, labels, 4, "gmm").ari == pytest.approx(1.0)


def test_scalings_against_references():
    x, _ = _planted_blobs(seed=3)
    x[:, 5] = 2.0  # a constant column
    np.testing.assert_allclose(
        scale_representation(x, "columns"), StandardScaler().fit_transform(x), atol=1e-12
    )
    scaled = scale_representation(x, "global")
    assert np.mean(np.sum(scaled**2, axis=1)) == pytest.approx(1.0)
    np.testing.assert_allclose(scaled.mean(axis=0), 0.0, atol=1e-12)
    np.testing.assert_array_equal(scale_representation(x, "none"), x)


def test_assignments_are_numbered_by_first_appearance():
    np.testing.assert_array_equal(
        relabel_by_first_appearance(np.array([7, 7, 2, 9, 2])), [0, 0, 1, 2, 1]
    )


def test_clustering_is_deterministic_for_a_seed():
    x, labels = _planted_blobs(radius=1.5, seed=4)  # overlapping: the result depends on the seed
    first = cluster_representation(x, labels, 4, "gmm", seed=5)
    again = cluster_representation(x, labels, 4, "gmm", seed=5)
    np.testing.assert_array_equal(first.assignments, again.assignments)


@pytest.mark.parametrize(
    ("kwargs", "match"),
    [
        ({"algorithm": "spectral"}, "choose one of kmeans, gmm"),
        ({"num_clusters": 1}, "num_clusters 1 is out of range"),
        ({"num_clusters": 60}, "num_clusters 60 is out of range"),
        ({"scaling": "minmax"}, "choose one of global, columns, none"),
        ({"labels": np.zeros(59, dtype=int)}, "labels"),
        ({"labels": np.zeros(60)}, "integer"),
        ({"seed": -3}, "seed"),
    ],
)
def test_clustering_validates_inputs(kwargs, match):
    x, labels = _planted_blobs()
    arguments = {"labels": labels, "num_clusters": 4, "algorithm": "kmeans"}
    arguments.update(kwargs)
    with pytest.raises(ClassmapError, match=match):
        cluster_representation(
            x,
            arguments.pop("labels"),
            arguments.pop("num_clusters"),
            arguments.pop("algorithm"),
            **arguments,
        )


def test_non_finite_vectors_are_refused():
    x = np.ones((5, 3))
    x[2, 1] = np.nan
    with pytest.raises(ClassmapError, match="1 row"):
        within_class_cosine(x, np.zeros(5, dtype=int), 1)
    with pytest.raises(ClassmapError, match="identical"):
        cluster_representation(np.ones((5, 3)), np.arange(5), 2, "kmeans")


# ----------------------------------------------------------------------- PCA


def test_pca_equals_sklearn_full_svd_up_to_sign():
    x, _ = _planted_blobs(dims=40, per_class=30)
    projection = project_pca(x, 2, seed=0)
    reference = PCA(n_components=2, svd_solver="full").fit(x)
    expected = reference.transform(x)
    signs = np.sign(np.sum(projection.coordinates * expected, axis=0))
    np.testing.assert_allclose(projection.coordinates * signs, expected, atol=1e-8)
    np.testing.assert_allclose(
        projection.explained_variance_ratio, reference.explained_variance_ratio_, rtol=1e-8
    )
    assert projection.coordinates.shape == (len(x), 2)


def test_pca_validates_components():
    with pytest.raises(ClassmapError, match="n_components 5 is out of range"):
        project_pca(np.random.default_rng(0).normal(size=(4, 3)), 5)


def test_representation_registry():
    assert REPRESENTATIONS == ("grad_weights", "softmax", "features")
    assert check_representation("softmax") == "softmax"
    with pytest.raises(ClassmapError, match="choose one of grad_weights, softmax, features"):
        check_representation("logits")
