"""ALD fits of a classifier head, cached: the per-class table and the pooled fit.

The fits themselves are :mod:`classmap.analysis.methods.ald`; this module keys them by
the head's digest, the parameters and :data:`~classmap.analysis.methods.ald.ALD_VERSION`.
"""

from __future__ import annotations

import time
from dataclasses import dataclass, field, fields
from typing import Any

import numpy as np
import torch

from classmap.analysis.cache import ResultCache, get_or_compute, make_key
from classmap.analysis.loading.classifier import ClassifierHead
from classmap.analysis.methods.ald import (
    ALD_VERSION,
    TABLE_COLUMNS,
    AldParams,
    AldTable,
    PooledFit,
    fit_ald,
    fit_pooled,
)
from classmap.analysis.progress import NullProgress


@dataclass(frozen=True, eq=False)
class AldAnalysis:
    """Per-class table and pooled fit of one head, as the pipeline serves them.

    seconds : wall time per step (empty when served from the cache)
    """

    table: AldTable
    pooled: PooledFit
    params: AldParams
    seconds: dict[str, float] = field(default_factory=dict)
    from_cache: bool = False


def ald_key(digest: str, params: AldParams) -> str:
    """Cache key of an ALD analysis: head digest + parameters + code version."""
    return make_key("ald", ALD_VERSION, head=digest, derived_rel_tol=params.derived_rel_tol)


def analyse_ald(
    head: ClassifierHead,
    params: AldParams = AldParams(),
    *,
    cache: ResultCache | None = None,
    progress: Any = None,
    device: str | torch.device | None = None,
) -> AldAnalysis:
    """Per-class fits and the pooled fit of a ClassifierHead, served from ``cache`` if there.

    Parameters
    ----------
    head : ClassifierHead (``.weight`` of shape (C, D), ``.digest``)
    """
    params.validate()
    progress = progress or NullProgress()
    return get_or_compute(
        cache, ald_key(head.digest, params),
        lambda: _compute_ald(head.weight, params, progress, device),
        pack=_pack_ald,
        unpack=lambda arrays, meta: AldAnalysis(
            _table_from_cache(arrays, meta), PooledFit(**meta["pooled"]), params,
            from_cache=True,
        ),
    )


def _compute_ald(
    weight: np.ndarray, params: AldParams, progress: Any, device: str | torch.device | None
) -> AldAnalysis:
    seconds: dict[str, float] = {}
    started = time.perf_counter()
    table = fit_ald(weight, params, device=device, progress=progress)
    seconds["ald_classes"] = time.perf_counter() - started
    started = time.perf_counter()
    with progress.step("ALD pooled fit", total=1) as advance:
        pooled = fit_pooled(weight, params.derived_rel_tol)
        advance(1)
    seconds["ald_pooled"] = time.perf_counter() - started
    return AldAnalysis(table, pooled, params, seconds, from_cache=False)


def _pack_ald(result: AldAnalysis) -> tuple[dict[str, np.ndarray], dict[str, Any]]:
    table, pooled = result.table, result.pooled
    arrays = {name: getattr(table, name) for name in TABLE_COLUMNS}
    meta = {
        "status": list(table.status),
        "seed_status_pos": list(table.seed_status_pos),
        "seed_status_neg": list(table.seed_status_neg),
        # NaN survives the cache's JSON round trip (Python's json reads it back).
        "pooled": {item.name: getattr(pooled, item.name) for item in fields(pooled)},
        "seconds": result.seconds,
    }
    return arrays, meta


def _table_from_cache(arrays: dict[str, np.ndarray], meta: dict[str, Any]) -> AldTable:
    return AldTable(
        **{name: arrays[name] for name in TABLE_COLUMNS},
        status=tuple(meta["status"]),
        seed_status_pos=tuple(meta["seed_status_pos"]),
        seed_status_neg=tuple(meta["seed_status_neg"]),
    )
