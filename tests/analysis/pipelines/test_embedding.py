"""analysis/embedding.py: class maps against scikit-learn and planted structure."""

from __future__ import annotations

import sys

import numpy as np
import pytest
from sklearn.decomposition import PCA
from sklearn.manifold import trustworthiness

from classmap.analysis.methods.embedding import (
    EmbeddingParams,
    check_embedding_method,
    umap_available,
)
from classmap.analysis.pipelines.embedding import embed_classes, embedding_cached
from classmap.analysis.errors import ClassmapError
from classmap.analysis.loading.models import ModelSpec, head_from_arrays
from classmap.analysis.loading.classnames import resolve_class_names


def planted_head(groups=5, per_group=12, dim=40, seed=0):
    rng = np.random.default_rng(seed)
    centres = rng.normal(size=(groups, dim))
    rows = np.concatenate([c + 0.3 * rng.normal(size=(per_group, dim)) for c in centres])
    count = groups * per_group
    return head_from_arrays(rows.astype(np.float32), None, resolve_class_names(count),
                            ModelSpec(head="planted.npy"), "planted"), np.repeat(np.arange(groups), per_group)


def standardised(weight):
    w = weight.astype(np.float64)
    w = w - w.mean(axis=1, keepdims=True)
    return w / w.std(axis=1, ddof=1, keepdims=True)


def test_pca_matches_scikit_learn_up_to_sign():
    head, _ = planted_head()
    result = embed_classes(head, EmbeddingParams("pca"))
    reference = PCA(n_components=2).fit(standardised(head.weight))
    expected = reference.transform(standardised(head.weight))
    for axis in range(2):
        correlation = np.corrcoef(result.coords[:, axis], expected[:, axis])[0, 1]
        assert abs(correlation) > 0.9999
    np.testing.assert_allclose(result.explained, reference.explained_variance_ratio_, rtol=1e-6)
    assert result.coords.dtype == np.float32 and result.coords.shape == (60, 2)


def assert_planted_groups_apart(head, truth, coords):
    """The map is trustworthy and every group lies closer to itself than to any other."""
    assert trustworthiness(standardised(head.weight), coords, n_neighbors=5) > 0.9
    groups = int(truth.max()) + 1
    centroids = np.array([coords[truth == g].mean(axis=0) for g in range(groups)])
    spread = max(np.linalg.norm(coords[truth == g] - centroids[g], axis=1).max()
                 for g in range(groups))
    gaps = min(np.linalg.norm(centroids[a] - centroids[b])
               for a in range(groups) for b in range(a + 1, groups))
    assert gaps > spread


def test_tsne_keeps_planted_groups_apart():
    head, truth = planted_head()
    result = embed_classes(head, EmbeddingParams("tsne", seed=3))
    assert_planted_groups_apart(head, truth, result.coords)


@pytest.mark.slow
def test_umap_keeps_planted_groups_apart_and_is_deterministic():
    """UMAP (cosine) on planted groups: trustworthy, groups apart, same seed → same map."""
    head, truth = planted_head()
    result = embed_classes(head, EmbeddingParams("umap", seed=3))
    assert result.coords.shape == (60, 2) and np.isfinite(result.coords).all()
    assert_planted_groups_apart(head, truth, result.coords)
    again = embed_classes(head, EmbeddingParams("umap", seed=3))
    np.testing.assert_array_equal(result.coords, again.coords)
    tiny, _ = planted_head(groups=1, per_group=3)
    with pytest.raises(ClassmapError, match="UMAP needs at least 4 classes.*use pca"):
        embed_classes(tiny, EmbeddingParams("umap"))


def test_tsne_is_deterministic_for_a_seed_and_small_heads_work():
    head, _ = planted_head(groups=2, per_group=5)
    first = embed_classes(head, EmbeddingParams("tsne", seed=1))
    second = embed_classes(head, EmbeddingParams("tsne", seed=1))
    np.testing.assert_array_equal(first.coords, second.coords)


def test_results_are_cached(tmp_path):
    from classmap.analysis.cache import ResultCache

    cache = ResultCache(tmp_path / "cache")
    head, _ = planted_head()
    params = EmbeddingParams("pca")
    assert not embedding_cached(head, params, cache)
    computed = embed_classes(head, params, cache=cache)
    assert embedding_cached(head, params, cache)
    again = embed_classes(head, params, cache=cache)
    assert again.from_cache and not computed.from_cache
    np.testing.assert_array_equal(again.coords, computed.coords)


def test_unknown_method_lists_the_valid_ones():
    with pytest.raises(ClassmapError, match="pca, tsne, umap"):
        check_embedding_method("mds")


def test_umap_without_the_package_says_how_to_get_it(monkeypatch):
    """An environment without umap-learn (a None entry makes its import fail)."""
    assert umap_available()  # a dependency of the project
    monkeypatch.setitem(sys.modules, "umap", None)
    head, _ = planted_head()
    with pytest.raises(ClassmapError, match="pip install umap-learn"):
        embed_classes(head, EmbeddingParams("umap"))
