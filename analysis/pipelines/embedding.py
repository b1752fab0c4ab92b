"""2-D class maps of a head, cached: :mod:`classmap.analysis.methods.embedding` on the
head's standardised rows, keyed by head digest + method parameters + code version."""

from __future__ import annotations

import logging
import time
from collections.abc import Callable
from dataclasses import dataclass, field
from typing import Any

import numpy as np

from classmap.analysis.cache import ResultCache, get_or_compute, make_key
from classmap.analysis.loading.classifier import ClassifierHead
from classmap.analysis.methods.embedding import (
    EMBEDDING_METHODS,
    EMBEDDING_VERSION,
    EmbeddingParams,
    check_embedding_method,
)
from classmap.analysis.methods.similarity import standardise_rows
from classmap.analysis.progress import NullProgress

log = logging.getLogger(__name__)


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
    meta : what the method reported (e.g. ``explained``, the capped perplexity)
    """

    coords: np.ndarray
    params: EmbeddingParams
    explained: tuple[float, float] | None = None
    seconds: float = 0.0
    from_cache: bool = False
    meta: dict[str, Any] = field(default_factory=dict, repr=False)


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
    return get_or_compute(
        cache, embedding_key(head, params),
        lambda: _compute_embedding(head, params, method, progress),
        pack=lambda result: ({"coords": result.coords},
                             {**result.meta, "seconds": result.seconds}),
        unpack=lambda arrays, meta: _embedding(arrays["coords"], params, meta, 0.0, True),
    )


def _compute_embedding(
    head: ClassifierHead, params: EmbeddingParams, method: Callable, progress: Any
) -> ClassEmbedding:
    started = time.perf_counter()
    with progress.step(f"{params.method} map", total=1) as advance:
        rows = standardise_rows(head.weight, head.classes.names).numpy().astype(np.float64)
        coords, meta = method(rows, params)
        advance(1)
    coords = np.ascontiguousarray(coords, dtype=np.float32)
    seconds = time.perf_counter() - started
    log.info("%s map of %d classes in %.2f s", params.method, head.num_classes, seconds)
    return _embedding(coords, params, meta, seconds, False)


def _embedding(
    coords: np.ndarray, params: EmbeddingParams, meta: dict[str, Any], seconds: float,
    from_cache: bool,
) -> ClassEmbedding:
    explained = meta.get("explained")
    return ClassEmbedding(coords, params, tuple(explained) if explained else None, seconds,
                          from_cache, meta)
