"""The one place results are asked for: cache lookup first, computation on a miss.

Both front ends call these functions: the CLI (``classmap export``) and the web app's
services. Every result is keyed by the head's digest, the parameters and the code
version of the analysis (:data:`WEIGHT_ANALYSIS_VERSION`; bump it when the algorithm
changes so stale entries are never served).
"""

from __future__ import annotations

import functools
import logging
import time
from dataclasses import dataclass, field
from typing import Any, Callable

import numpy as np
import torch

from classmap.analysis.cache import ResultCache, get_or_compute, make_key
from classmap.analysis.errors import ClassmapError
from classmap.analysis.methods.hierarchy import (
    LinkagePlan,
    check_linkage,
    format_bytes,
    leaf_order,
    plan_linkage,
    prepare_linkage,
)
from classmap.analysis.methods.matrix_pyramid import (
    block_tile,
    check_tile,
    prefix_tile,
    tile_span,
    top_level,
    unit_prefix_sums,
)
from classmap.analysis.loading.classifier import ClassifierHead, default_device
from classmap.analysis.progress import NullProgress
from classmap.analysis.settings import MEMORY_BUDGET_ENV, RUNTIME_BYTES, memory_budget
from classmap.analysis.methods.similarity import (
    DEFAULT_CHUNK_ROWS,
    METRIC_KIND,
    Neighbours,
    check_metric,
    nearest_classes,
    similarity_matrix,
    standardise_rows,
)

log = logging.getLogger(__name__)

WEIGHT_ANALYSIS_VERSION = "2"
PYRAMID_VERSION = "1"
# Above this many classes the dense C × C matrix is neither stored nor exported.
MAX_DENSE_CLASSES = 5000
DEFAULT_TOP_K = 25


@dataclass(frozen=True)
class WeightParams:
    """Parameters of the weight-space analysis.

    metric : ``cosine`` (similarity) or ``euclidean`` (distance), of standardised rows
    linkage : ``ward``, ``average``, ``complete`` or ``single``
    top_k : neighbours kept per class, 1 ≤ k < C
    """

    metric: str = "cosine"
    linkage: str = "ward"
    top_k: int = DEFAULT_TOP_K

    def validate(self, num_classes: int) -> WeightParams:
        check_metric(self.metric)
        check_linkage(self.linkage)
        if not isinstance(self.top_k, int) or not 1 <= self.top_k < num_classes:
            raise ClassmapError(
                f"--top-k {self.top_k} is out of range for {num_classes} classes; "
                f"choose 1 ≤ k ≤ {num_classes - 1}"
            )
        return self


@dataclass(frozen=True)
class WeightAnalysis:
    """Everything seed 000 derives from a head, for one set of parameters.

    Attributes
    ----------
    head : the ClassifierHead analysed
    params : the WeightParams used
    neighbours : Neighbours — ``index``/``score`` of shape (C, top_k)
    linkage : ndarray of shape (C − 1, 4), float64 — scipy linkage format
    leaf_order : ndarray of shape (C,), int64 — classes in dendrogram order
    similarity : ndarray of shape (C, C), float32 (the metric's values), or None when
        C > MAX_DENSE_CLASSES
    seconds : wall time per step; empty when served from the cache
    from_cache : whether the arrays came from the cache
    """

    head: ClassifierHead
    params: WeightParams
    neighbours: Neighbours
    linkage: np.ndarray
    leaf_order: np.ndarray
    similarity: np.ndarray | None
    seconds: dict[str, float] = field(default_factory=dict)
    from_cache: bool = False

    @property
    def score_kind(self) -> str:
        """``similarity`` (larger = closer) or ``distance`` (smaller = closer)."""
        return METRIC_KIND[self.params.metric]


def weight_analysis_key(head: ClassifierHead, params: WeightParams) -> str:
    """Cache key of a weight analysis: head digest + parameters + code version."""
    return make_key(
        "weights", WEIGHT_ANALYSIS_VERSION, head=head.digest, metric=params.metric,
        linkage=params.linkage, top_k=params.top_k, dense=head.num_classes <= MAX_DENSE_CLASSES,
    )


def analyse_weights(
    head: ClassifierHead,
    params: WeightParams = WeightParams(),
    *,
    cache: ResultCache | None = None,
    progress: Any = None,
    device: str | torch.device | None = None,
) -> WeightAnalysis:
    """Standardise, score, find neighbours and cluster the classes of ``head``.

    Served from ``cache`` when the same head and parameters were analysed before.
    """
    progress = progress or NullProgress()
    params.validate(head.num_classes)
    check_memory(head, params)
    return get_or_compute(
        cache, weight_analysis_key(head, params),
        lambda: _compute_weights(head, params, progress, device),
        pack=_pack_weights,
        unpack=lambda arrays, _meta: _unpack_weights(head, params, arrays),
    )


def check_memory(head: ClassifierHead, params: WeightParams, budget: int | None = None) -> int:
    """Raise ClassmapError, before anything is allocated, when the analysis of ``head`` does
    not fit the memory budget (``CLASSMAP_MEMORY_BUDGET``); else return the bytes it needs.

    The budget bounds the whole process, so the estimate is its peak: the interpreter with
    its libraries (:data:`~classmap.analysis.settings.RUNTIME_BYTES`), the head's weights and
    the neighbours found, plus the largest step — the neighbour search (the float32
    standardised rows and three score blocks, and the dense matrix for small heads), the
    linkage routine (:func:`~classmap.analysis.methods.hierarchy.plan_linkage`, chosen with
    all of that reserved), or the heatmap pyramid's float64 prefix sums."""
    budget = memory_budget() if budget is None else budget
    c, d = head.weight.shape
    held = _held_bytes(head, params)
    rows = c * d * 4
    dense = c * c * 4 if c <= MAX_DENSE_CLASSES else 0
    plan = linkage_plan(head, params, budget)
    neighbours = rows + 3 * min(DEFAULT_CHUNK_ROWS, c) * c * 4 + 3 * dense
    pyramid = (c + 1) * d * 8
    need = max(plan.bytes_needed, held + neighbours, held + pyramid)
    if need > budget:
        raise ClassmapError(
            f"the analysis of {c} classes × {d} features needs {format_bytes(need)}, over the "
            f"memory budget of {format_bytes(budget)}; raise it with "
            f"{MEMORY_BUDGET_ENV}={-(-need // 1024**3)}G"
        )
    return need


def _held_bytes(head: ClassifierHead, params: WeightParams) -> int:
    """What the analysis holds throughout: the interpreter, the head, the neighbours."""
    return RUNTIME_BYTES + int(head.weight.nbytes) + head.num_classes * params.top_k * 12


def linkage_plan(head: ClassifierHead, params: WeightParams,
                 budget: int | None = None) -> LinkagePlan:
    """The linkage routine :func:`analyse_weights` runs for ``head`` (ClassmapError when
    none fits): chosen with the interpreter, the head, the neighbours and, for small heads,
    the dense matrix reserved."""
    c = head.num_classes
    dense = c * c * 4 if c <= MAX_DENSE_CLASSES else 0
    return plan_linkage(c, head.weight.shape[1], params.linkage, budget,
                        reserved=_held_bytes(head, params) + dense)


def _unpack_weights(
    head: ClassifierHead, params: WeightParams, arrays: dict[str, np.ndarray]
) -> WeightAnalysis:
    """A cached analysis, checked against ``head`` and ``params``: a wrong shape, an
    index out of range or a non-finite linkage raises ValueError (the cache then drops
    the entry and it is recomputed)."""
    c, k = head.num_classes, params.top_k
    index, score = arrays["neighbour_index"], arrays["neighbour_score"]
    linkage, order = arrays["linkage"], arrays["leaf_order"]
    similarity = arrays.get("similarity")
    expected = {"neighbour_index": (index, (c, k)), "neighbour_score": (score, (c, k)),
                "linkage": (linkage, (c - 1, 4)), "leaf_order": (order, (c,))}
    if c <= MAX_DENSE_CLASSES:
        if similarity is None:
            raise ValueError("the similarity matrix is missing")
        expected["similarity"] = (similarity, (c, c))
    for name, (array, shape) in expected.items():
        if array.shape != shape:
            raise ValueError(f"{name} has shape {array.shape}, expected {shape}")
    if not (np.issubdtype(index.dtype, np.integer) and np.issubdtype(order.dtype, np.integer)):
        raise ValueError("neighbour_index or leaf_order is not integer")
    if index.size and (index.min() < 0 or index.max() >= c):
        raise ValueError("neighbour_index is out of range")
    if not np.array_equal(np.sort(order), np.arange(c)):
        raise ValueError("leaf_order is not a permutation of the classes")
    if not np.isfinite(linkage).all():
        raise ValueError("linkage holds NaN or infinite values")
    return WeightAnalysis(
        head, params, Neighbours(index, score, params.metric), linkage, order, similarity,
        from_cache=True,
    )


def _compute_weights(
    head: ClassifierHead, params: WeightParams, progress: Any, device: str | torch.device | None
) -> WeightAnalysis:
    seconds: dict[str, float] = {}
    target = torch.device(device) if device is not None else default_device()

    started = time.perf_counter()
    with progress.step("standardise rows", total=1) as advance:
        standardised = standardise_rows(
            torch.from_numpy(head.weight).to(target), head.classes.names
        )
        advance(1)
    seconds["standardise"] = time.perf_counter() - started

    started = time.perf_counter()
    with progress.step("nearest classes", total=head.num_classes) as advance:
        neighbours = nearest_classes(standardised, params.metric, params.top_k, on_chunk=advance)
    seconds["neighbours"] = time.perf_counter() - started

    similarity = None
    if head.num_classes <= MAX_DENSE_CLASSES:
        started = time.perf_counter()
        with progress.step("similarity matrix", total=1) as advance:
            similarity = similarity_matrix(standardised, params.metric)
            advance(1)
        seconds["similarity"] = time.perf_counter() - started

    started = time.perf_counter()
    dense = similarity.nbytes if similarity is not None else 0
    run_linkage = prepare_linkage(standardised, params.metric, params.linkage,
                                  reserved=_held_bytes(head, params) + dense)
    # The float32 condensed routine needs only its own float64 copy of the rows: without
    # this reference the rows (C · D · 4 bytes) are gone before its vector fills.
    del standardised
    linkage = run_linkage(progress)
    order = leaf_order(linkage)
    seconds["linkage"] = time.perf_counter() - started

    return WeightAnalysis(
        head, params, neighbours, linkage, order, similarity, seconds, from_cache=False
    )


def _pack_weights(result: WeightAnalysis) -> tuple[dict[str, np.ndarray], dict[str, Any]]:
    arrays = {
        "neighbour_index": result.neighbours.index,
        "neighbour_score": result.neighbours.score,
        "linkage": result.linkage,
        "leaf_order": result.leaf_order,
    }
    if result.similarity is not None:
        arrays["similarity"] = result.similarity
    return arrays, {"seconds": result.seconds, "model": result.head.spec.to_json()}


def heatmap_tile(
    analysis: WeightAnalysis,
    level: int,
    row: int,
    col: int,
    *,
    cache: ResultCache | None = None,
    device: str | torch.device | None = None,
    prefix: Callable[[], np.ndarray] | None = None,
) -> np.ndarray:
    """Tile ``(level, row, col)`` of the dendrogram-ordered matrix's level-of-detail pyramid
    (:mod:`classmap.analysis.methods.matrix_pyramid`), computed on demand and cached.

    ``prefix`` — a function returning the analysis's :func:`unit_prefix_sums`, shape
    (C + 1, D), called only on a cache miss — makes a cold cosine tile a gather and one
    small product (no rows standardised per tile); without it the tile standardises its
    own rows.

    Returns
    -------
    ndarray of shape (≤ 256, ≤ 256), float32 — block means of the metric's scores.
    """
    head, params = analysis.head, analysis.params
    check_tile(head.num_classes, level, row, col)
    key = make_key("heatmap-tile", PYRAMID_VERSION, analysis=weight_analysis_key(head, params),
                   level=level, row=row, col=col)

    def compute() -> np.ndarray:
        # Standardisation is row by row: only the tile's rows and columns are needed.
        target = torch.device(device) if device is not None else default_device()
        if prefix is not None and params.metric == "cosine":
            return prefix_tile(torch.from_numpy(prefix()).to(target), level, row, col)
        order = analysis.leaf_order

        def rows(index: int) -> torch.Tensor:
            start, stop = tile_span(head.num_classes, level, index)
            return standardise_rows(torch.from_numpy(head.weight[order[start:stop]]).to(target))

        return block_tile(rows(row), rows(col), params.metric, 1 << level)

    return get_or_compute(
        cache, key, compute,
        pack=lambda z: ({"z": z}, {}),
        unpack=lambda arrays, _meta: arrays["z"],
    )


def heatmap_overview(
    analysis: WeightAnalysis,
    *,
    levels: int = 2,
    cache: ResultCache | None = None,
    progress: Any = None,
    device: str | torch.device | None = None,
) -> dict[tuple[int, int, int], np.ndarray]:
    """The top ``levels`` levels of the pyramid (1 tile, then at most 2 × 2 …), each tile
    cached: what the heatmap shows first. Returns ``{(level, row, col): tile}``."""
    progress = progress or NullProgress()
    c = analysis.head.num_classes
    top = top_level(c)
    wanted = []
    for level in range(top, max(top - levels, -1), -1):
        count = -(-c // (256 << level))
        wanted += [(level, r, k) for r in range(count) for k in range(count)]
    tiles = {}
    prefix = functools.cache(lambda: unit_prefix_sums(analysis.head.weight,
                                                      analysis.leaf_order))
    with progress.step("heatmap overview tiles", total=len(wanted)) as advance:
        for level, r, k in wanted:
            tiles[(level, r, k)] = heatmap_tile(analysis, level, r, k, cache=cache,
                                                device=device, prefix=prefix)
            advance(1)
    return tiles
