"""analysis/pipelines/ald.py: ALD fits of a head, served from the cache when seen before."""

from __future__ import annotations

import numpy as np
from scipy import stats

from classmap.analysis.cache import ResultCache
from classmap.analysis.loading.classnames import ClassNames
from classmap.analysis.loading.models import ModelSpec, head_from_arrays
from classmap.analysis.methods.ald import AldParams
from classmap.analysis.pipelines.ald import analyse_ald


def test_analyse_ald_is_cached_by_digest_and_params(tmp_path):
    rng = np.random.default_rng(20240601)
    weight = np.asarray(
        [stats.laplace_asymmetric.rvs(0.5 + 0.1 * k, 0.0, 0.05, size=120, random_state=rng)
         for k in range(12)],
        dtype=np.float32,
    )
    names = tuple(f"c{i}" for i in range(weight.shape[0]))
    head = head_from_arrays(weight, None, ClassNames(names, names, "generic"), ModelSpec(),
                            "test")
    cache = ResultCache(tmp_path / "cache")
    first = analyse_ald(head, cache=cache, device="cpu")
    second = analyse_ald(head, cache=cache, device="cpu")
    assert not first.from_cache and second.from_cache
    for name, column in first.table.columns().items():
        np.testing.assert_array_equal(second.table.columns()[name], column, err_msg=name)
    assert second.table.status == first.table.status
    assert second.pooled == first.pooled
    other = analyse_ald(head, AldParams(derived_rel_tol=1e-3), cache=cache, device="cpu")
    assert not other.from_cache
