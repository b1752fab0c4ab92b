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

Results are cached like every analysis: key = head digest + method parameters +
:data:`EMBEDDING_VERSION`.
"""

from __future__ import annotations

import logging
import time
from dataclasses import dataclass
from typing import Any, Callable

import numpy as np

from classmap.analysis.cache import ResultCache, make_key
from classmap.analysis.errors import ClassmapError
from classmap.analysis.loading.models import ClassifierHead
from classmap.analysis.progress import NullProgress
from classmap.analysis.methods.similarity import standardise_rows

log = logging.getLogger(__name__)

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


@dataclass(frozen=True)
class ClassEmbedding:
    """Class coordinates in the plane.

    Attributes
    ----------
    coords : ndarray of shape (C, 2), float32
    params : the EmbeddingParams used
    explained : PCA's explained-variance ratio of both axes, else None
    seconds : wall time of the computation (0 when served from the cache)
    from_cache : whether the coordinates came from the cache
    """

    coords: np.ndarray
    params: EmbeddingParams
    explained: tuple[float, float] | None = None
    seconds: float = 0.0
    from_cache: bool = False


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
    if method not in EMBEDDING_METHODS:
        raise ClassmapError(
            f"unknown embedding {method!r}; choose one of {', '.join(EMBEDDING_METHODS)}"
        )
    return method


def umap_available() -> bool:
    """Whether umap-learn can be imported (the ``umap`` method needs it)."""
    import importlib.util

    return importlib.util.find_spec("umap") is not None


def embedding_key(head: ClassifierHead, params: EmbeddingParams) -> str:
    """Cache key: head digest + method parameters + code version."""
    return make_key(
        "embedding", EMBEDDING_VERSION, head=head.digest, method=params.method,
        seed=params.seed, perplexity=params.perplexity, neighbours=params.neighbours,
    )


def embedding_cached(
    head: ClassifierHead, params: EmbeddingParams, cache: ResultCache | None
) -> bool:
    """Whether :func:`embed_classes` would answer from ``cache`` without computing."""
    return cache is not None and embedding_key(head, params) in cache


def embed_classes(
    head: ClassifierHead,
    params: EmbeddingParams = EmbeddingParams(),
    *,
    cache: ResultCache | None = None,
    progress: Any = None,
) -> ClassEmbedding:
    """Place the C classes of ``head`` in 2-D (served from ``cache`` when possible).

    Returns
    -------
    ClassEmbedding with ``coords`` of shape (C, 2), float32.
    """
    method = EMBEDDING_METHODS[check_embedding_method(params.method)]
    progress = progress or NullProgress()
    key = embedding_key(head, params)
    if cache is not None:
        hit = cache.get(key)
        if hit is not None:
            arrays, meta = hit
            explained = meta.get("explained")
            return ClassEmbedding(arrays["coords"], params,
                                  tuple(explained) if explained else None, 0.0, True)
    started = time.perf_counter()
    with progress.step(f"{params.method} map", total=1) as advance:
        rows = standardise_rows(head.weight, head.classes.names).numpy().astype(np.float64)
        coords, meta = method(rows, params)
        advance(1)
    coords = np.ascontiguousarray(coords, dtype=np.float32)
    seconds = time.perf_counter() - started
    log.info("%s map of %d classes in %.2f s", params.method, head.num_classes, seconds)
    if cache is not None:
        cache.put(key, {"coords": coords}, {**meta, "seconds": seconds})
    explained = meta.get("explained")
    return ClassEmbedding(coords, params, tuple(explained) if explained else None, seconds, False)
