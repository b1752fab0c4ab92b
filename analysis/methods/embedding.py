"""2-D maps of the classes: each class's head row placed so similar classes sit close.

Input is the classifier head ``W [C, D]``, row-standardised exactly as for the
similarity (``classmap.analysis.methods.similarity.standardise_rows``), so the map shows the same
geometry the heatmap scores:

- ``pca``: the first two principal components of the standardised rows (fast; the
  default). Signs are fixed so each component's largest-magnitude loading is
  positive, which makes the picture deterministic across BLAS builds.
- ``tsne``: scikit-learn's Barnes–Hut t-SNE with the cosine metric, on the first
  50 principal components (the usual speed-up; cosine on standardised rows is the
  similarity the heatmap shows), PCA initialisation, a seed parameter, and a
  perplexity capped below ``(C − 1) / 3`` so small heads (10 digits) work, and
  :data:`TSNE_ITERATIONS` iterations.
- ``umap``: umap-learn with the cosine metric (a dependency; the check below keeps the
  app usable where it is missing).

Each method maps standardised rows ``[C, D]`` to ``(coords [C, 2], meta)``;
:mod:`classmap.analysis.pipelines.embedding` standardises the head and caches the map
(key = head digest + method parameters + :data:`EMBEDDING_VERSION`).
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import Any, Callable

import numpy as np

from classmap.analysis.errors import ClassmapError, check_choice

EMBEDDING_VERSION = "2"
TSNE_PCA_DIMS = 50
# Half of scikit-learn's default 1,000: the map of ~1,000 classes has settled by then
# (checked on the embedded model), and it halves a minute-long job on a 2-core machine.
TSNE_ITERATIONS = 500


@dataclass(frozen=True)
class EmbeddingParams:
    """How to place the classes in 2-D.

    method : ``pca``, ``tsne`` or ``umap``
    seed : random seed (t-SNE, UMAP; PCA is deterministic)
    perplexity : t-SNE perplexity, capped below (C − 1) / 3 for small heads
    neighbours : UMAP ``n_neighbors``, capped at C − 1
    """

    method: str = "pca"
    seed: int = 0
    perplexity: float = 30.0
    neighbours: int = 15


def _embed_pca(rows: np.ndarray, params: EmbeddingParams) -> tuple[np.ndarray, dict[str, Any]]:
    from sklearn.decomposition import PCA

    pca = PCA(n_components=2, svd_solver="full")
    coords = pca.fit_transform(rows)
    signs = np.sign(pca.components_[np.arange(2), np.abs(pca.components_).argmax(axis=1)])
    signs[signs == 0] = 1.0
    ratio = pca.explained_variance_ratio_
    return coords * signs, {"explained": [float(ratio[0]), float(ratio[1])]}


def _embed_tsne(rows: np.ndarray, params: EmbeddingParams) -> tuple[np.ndarray, dict[str, Any]]:
    from sklearn.decomposition import PCA
    from sklearn.manifold import TSNE

    count = rows.shape[0]
    if count < 4:
        raise ClassmapError(f"t-SNE needs at least 4 classes, the head has {count}; use pca")
    dims = min(TSNE_PCA_DIMS, count, rows.shape[1])
    reduced = PCA(n_components=dims, svd_solver="full").fit_transform(rows) if dims < rows.shape[1] else rows
    perplexity = float(min(params.perplexity, max((count - 1) / 3.0 - 1e-3, 1.0)))
    tsne = TSNE(
        n_components=2, perplexity=perplexity, metric="cosine", init="pca",
        random_state=params.seed, n_jobs=1, max_iter=TSNE_ITERATIONS,
    )
    return tsne.fit_transform(reduced), {"perplexity": perplexity}


def _embed_umap(rows: np.ndarray, params: EmbeddingParams) -> tuple[np.ndarray, dict[str, Any]]:
    try:
        import umap  # type: ignore[import-not-found]
    except ImportError:
        raise ClassmapError(
            "the umap method needs the umap-learn package, which is not installed; "
            "pip install umap-learn, or choose pca or tsne"
        ) from None
    count = rows.shape[0]
    if count < 4:
        raise ClassmapError(f"UMAP needs at least 4 classes, the head has {count}; use pca")
    neighbours = int(min(params.neighbours, count - 1))
    reducer = umap.UMAP(n_components=2, n_neighbors=neighbours, metric="cosine",
                        random_state=params.seed, n_jobs=1)
    # The first call in a process compiles umap's numba kernels (≈ 30 s on 2 cores; numba
    # caches them on disk for later processes, see NUMBA_CACHE_DIR in the Dockerfile).
    return reducer.fit_transform(rows), {"neighbours": neighbours}


# Methods chosen by name: one registry, whose error lists the valid names.
EMBEDDING_METHODS: dict[str, Callable[[np.ndarray, EmbeddingParams],
                                      tuple[np.ndarray, dict[str, Any]]]] = {
    "pca": _embed_pca,
    "tsne": _embed_tsne,
    "umap": _embed_umap,
}
# Shown to users next to each method.
EMBEDDING_LABELS = {"pca": "PCA", "tsne": "t-SNE", "umap": "UMAP"}


def check_embedding_method(method: str) -> str:
    """Return ``method`` if known, else raise naming the valid choices."""
    return check_choice(method, EMBEDDING_METHODS, "embedding")


def umap_available() -> bool:
    """Whether umap-learn can be imported (the ``umap`` method needs it)."""
    import importlib.util

    return importlib.util.find_spec("umap") is not None
