"""Asymmetric Laplace fits (analysis/ald.py) against independent references.

References: numpy.polyfit + scikit-learn's r2_score for the seed regression (the
seed notebook's own tools), scipy.stats.laplace_asymmetric (fit, logpdf, cdf) and
scipy.stats.kstest for the maximum-likelihood fit, scipy.optimize for a brute-force
profile over locations, and draws with known parameters.
"""

from __future__ import annotations

import math

import numpy as np
import pytest
import torch
from scipy import optimize, stats
from sklearn.metrics import r2_score

from classmap.analysis.methods import ald
from classmap.analysis.methods.ald import (
    AldParams,
    derive_seed_parameters,
    fit_ald,
    fit_mle,
    fit_pooled,
)
from classmap.analysis.errors import ClassmapError

SUBSET = np.linspace(0, 999, 30).astype(int)  # 30 classes of the 1000, spread evenly


def _seed_regression(magnitudes: np.ndarray) -> tuple[float, float, float]:
    """The seed's fit_laplace with METHODS.md's q_i = i/n (i = 1..n): polyfit + r2_score."""
    y = np.log(np.sort(magnitudes.astype(np.float64)))
    q = np.arange(1, y.size + 1) / y.size
    slope, intercept = np.polyfit(q, y, 1)
    return slope, intercept, r2_score(y, np.poly1d([slope, intercept])(q))


@pytest.fixture(scope="module")
def lite0_weight(lite0_head) -> np.ndarray:
    return lite0_head.weight


@pytest.fixture(scope="module")
def lite0_table(lite0_weight):
    return fit_ald(lite0_weight, device="cpu")


@pytest.fixture(scope="module")
def mixed_head() -> np.ndarray:
    """A smaller head (24 × 150) of varied shapes: ALD, normal, uniform, Student t,
    exponential, bimodal — seeded."""
    rng = np.random.default_rng(20240601)
    rows = []
    for k in range(24):
        kind = k % 6
        if kind == 0:
            row = stats.laplace_asymmetric.rvs(0.4 + 0.15 * k, 0.01 * k, 0.05, size=150,
                                               random_state=rng)
        elif kind == 1:
            row = rng.normal(0.02 * k, 0.1, 150)
        elif kind == 2:
            row = rng.uniform(-0.3, 0.2, 150)
        elif kind == 3:
            row = 0.05 * rng.standard_t(2.5, 150)
        elif kind == 4:
            row = rng.exponential(0.1, 150) - 0.05
        else:
            row = np.concatenate([rng.normal(-0.2, 0.02, 75), rng.normal(0.3, 0.05, 75)])
        rows.append(row)
    return np.asarray(rows, dtype=np.float32)


# --------------------------------------------------------------------------------------
# (a) the seed's regression


def test_regression_matches_polyfit_and_r2_score_on_every_lite0_class(lite0_weight, lite0_table):
    w = lite0_weight.astype(np.float64)
    for k in range(w.shape[0]):
        row = w[k]
        y_pos = np.log(np.sort(row[row > 0]))
        q = np.arange(1, y_pos.size + 1) / y_pos.size
        slope, intercept = np.polyfit(q, y_pos, 1)
        assert lite0_table.slope_pos[k] == pytest.approx(slope, rel=1e-10)
        assert lite0_table.intercept_pos[k] == pytest.approx(intercept, rel=1e-10)
        y_neg = np.log(np.sort(-row[row < 0]))
        q = np.arange(1, y_neg.size + 1) / y_neg.size
        slope, intercept = np.polyfit(q, y_neg, 1)
        assert lite0_table.slope_neg[k] == pytest.approx(slope, rel=1e-10)
        assert lite0_table.intercept_neg[k] == pytest.approx(intercept, rel=1e-10)
    for k in SUBSET:  # r2_score is slow-ish; a spread subset suffices
        row = w[k]
        assert lite0_table.r2_pos[k] == pytest.approx(_seed_regression(row[row > 0])[2], rel=1e-10)
        assert lite0_table.r2_neg[k] == pytest.approx(_seed_regression(-row[row < 0])[2], rel=1e-10)
    assert np.all(lite0_table.n_pos + lite0_table.n_neg + lite0_table.n_zero == w.shape[1])
    assert set(lite0_table.status) == {"ok"}


def test_notebook_x_grid_changes_only_the_intercept(lite0_weight, lite0_table):
    """The notebook uses x = arange(n)/n (i = 0..n−1): same slope and R², b + a/n."""
    row = lite0_weight[7].astype(np.float64)
    y = np.log(np.sort(row[row > 0]))
    x = np.arange(y.size) / y.size
    slope, intercept = np.polyfit(x, y, 1)
    r2 = r2_score(y, np.poly1d([slope, intercept])(x))
    assert lite0_table.slope_pos[7] == pytest.approx(slope, rel=1e-10)
    assert lite0_table.r2_pos[7] == pytest.approx(r2, rel=1e-10)
    assert lite0_table.intercept_pos[7] + slope / y.size == pytest.approx(intercept, rel=1e-10)


def test_pooled_fit_matches_polyfit_on_all_weights(lite0_weight):
    pooled = fit_pooled(lite0_weight)
    w = lite0_weight.astype(np.float64).ravel()
    slope, intercept, r2 = _seed_regression(w[w > 0])
    assert (pooled.slope_pos, pooled.intercept_pos, pooled.r2_pos) == pytest.approx(
        (slope, intercept, r2), rel=1e-9)
    slope, intercept, r2 = _seed_regression(-w[w < 0])
    assert (pooled.slope_neg, pooled.intercept_neg, pooled.r2_neg) == pytest.approx(
        (slope, intercept, r2), rel=1e-9)
    assert (pooled.n_pos, pooled.n_neg, pooled.n_zero) == (
        int((w > 0).sum()), int((w < 0).sum()), 0)
    kappa = math.sqrt(math.exp(pooled.intercept_pos)
                      / (pooled.slope_pos - math.exp(pooled.intercept_pos)))
    assert pooled.kappa_pos == pytest.approx(kappa, rel=1e-12)
    assert pooled.lambda_pos == pytest.approx(pooled.slope_pos * kappa, rel=1e-12)
    assert pooled.mean_pos == pytest.approx(
        (1 - kappa**2) / (pooled.slope_pos * kappa * kappa), rel=1e-12)
    assert pooled.status == pooled.seed_status_pos == pooled.seed_status_neg == "ok"


def test_zero_weights_are_excluded_and_counted():
    rng = np.random.default_rng(3)
    w = rng.normal(0, 0.1, (4, 200)).astype(np.float32)
    w[1, :13] = 0.0
    w[2, ::2] = 0.0
    table = fit_ald(w, device="cpu")
    assert table.n_zero.tolist() == [0, 13, 100, 0]
    for k in range(4):
        row = w[k].astype(np.float64)
        expected = _seed_regression(row[row > 0])
        got = (table.slope_pos[k], table.intercept_pos[k], table.r2_pos[k])
        assert got == pytest.approx(expected, rel=1e-10)
        expected = _seed_regression(-row[row < 0])
        got = (table.slope_neg[k], table.intercept_neg[k], table.r2_neg[k])
        assert got == pytest.approx(expected, rel=1e-10)
    assert table.status[0] == "ok"
    assert "13 zero weight(s) excluded" in table.status[1]
    assert "100 zero weight(s) excluded" in table.status[2]
    pooled = fit_pooled(w)
    assert pooled.n_zero == 113
    assert "113 zero weight(s) excluded" in pooled.status


def test_derived_parameters_follow_the_seed_formula_and_are_guarded():
    eb = math.exp(-5.0)
    slope = np.array([3.0, eb * 0.5, eb, eb * (1 + 1e-9), eb * (1 + 1e-3), np.nan])
    intercept = np.array([-5.0, -5.0, -5.0, -5.0, -5.0, -5.0])
    derived = derive_seed_parameters(slope, intercept, rel_tol=1e-6)
    assert derived.defined.tolist() == [True, False, False, False, True, False]
    for k in (0, 4):
        kappa = math.sqrt(eb / (slope[k] - eb))
        assert derived.kappa[k] == pytest.approx(kappa, rel=1e-12)
        assert derived.lam[k] == pytest.approx(slope[k] * kappa, rel=1e-12)
        assert derived.mean[k] == pytest.approx((1 - kappa**2) / (slope[k] * kappa**2), rel=1e-12)
    undefined = ~derived.defined
    assert np.isnan(derived.kappa[undefined]).all()
    assert np.isnan(derived.lam[undefined]).all()
    assert np.isnan(derived.mean[undefined]).all()
    # The seed's unguarded mapping would print κ ≈ 3e4 for the near-equal case.
    assert np.nanmax(derived.kappa) < 1 / math.sqrt(1e-6)


def test_undefined_mapping_gets_a_status_in_the_table():
    """A side whose log-magnitudes rise slowly has a < e^b: κ is undefined, not huge."""
    rng = np.random.default_rng(5)
    row = np.concatenate([np.linspace(1.0, 1.001, 50), -rng.uniform(0.01, 0.1, 50)])
    table = fit_ald(row[None, :], device="cpu")
    assert table.slope_pos[0] < math.exp(table.intercept_pos[0])
    assert math.isnan(table.kappa_seed_pos[0])
    assert table.seed_status_pos[0].startswith("undefined: slope a =")
    assert table.seed_status_neg[0] == "ok"


# --------------------------------------------------------------------------------------
# (b) maximum likelihood


def _scipy_loglik(row: np.ndarray, params) -> float:
    return float(stats.laplace_asymmetric.logpdf(row, *params).sum())


def _edge_supremum(row: np.ndarray) -> float:
    """The likelihood's limit at κ → 0 (exponential above the minimum) or κ → ∞."""
    n = row.size
    return max(-n * (math.log(row.mean() - row.min()) + 1),
               -n * (math.log(row.max() - row.mean()) + 1))


def _check_against_scipy_fit(weight: np.ndarray, rows) -> int:
    """Compare with scipy on ``rows``; returns how many rows were flagged at the edge."""
    fit = fit_mle(weight, device="cpu")
    flagged = 0
    for k in rows:
        row = weight[k].astype(np.float64)
        ours = (fit.kappa[k], fit.loc[k], fit.scale[k])
        theirs = stats.laplace_asymmetric.fit(row)
        ll_ours = _scipy_loglik(row, ours)
        ll_theirs = _scipy_loglik(row, theirs)
        # The reported log-likelihood is that of the reported parameters.
        assert fit.loglik[k] == pytest.approx(ll_ours, rel=1e-9, abs=1e-9)
        edge = _edge_supremum(row)
        if edge > ll_ours + 1e-9 * abs(ll_ours):
            # The supremum lies at the κ → 0/∞ limit, outside the family: flagged, and
            # scipy (which may creep towards it) cannot beat that limit.
            assert fit.status[k].startswith("MLE: the likelihood rises towards"), k
            assert ll_theirs <= edge + 1e-9 * abs(edge)
            flagged += 1
        else:
            assert fit.status[k] == "ok", k
            assert ll_ours >= ll_theirs - 1e-6 * abs(ll_theirs), (k, ours, theirs)
    return flagged


def test_mle_beats_scipy_fit_on_30_lite0_classes(lite0_weight):
    assert _check_against_scipy_fit(lite0_weight, SUBSET) == 0


def test_mle_beats_scipy_fit_on_every_class_of_a_smaller_head(mixed_head):
    """Includes one-sided exponential rows, where scipy drifts to κ ≈ 0 and the
    likelihood has no maximum inside the family: those must be flagged."""
    flagged = _check_against_scipy_fit(mixed_head, range(mixed_head.shape[0]))
    assert 0 < flagged < mixed_head.shape[0] // 2


def test_mle_is_the_global_maximum_over_locations_and_parameters():
    """Brute force: at locations on a dense grid (sample points and between them),
    optimise κ and s numerically with scipy; none beats the vectorised fit."""
    rng = np.random.default_rng(11)
    row = np.round(stats.laplace_asymmetric.rvs(0.7, 0.1, 0.3, size=25, random_state=rng), 3)
    fit = fit_mle(row[None, :], device="cpu")
    ordered = np.sort(row)
    grid = np.unique(np.concatenate([ordered[1:-1], (ordered[1:-2] + ordered[2:-1]) / 2]))

    def negative_loglik(theta: np.ndarray, m: float) -> float:
        return -_scipy_loglik(row, (math.exp(theta[0]), m, math.exp(theta[1])))

    best = -math.inf
    for m in grid:
        result = optimize.minimize(negative_loglik, x0=[0.0, math.log(0.3)], args=(m,),
                                   method="Nelder-Mead", options={"xatol": 1e-10, "fatol": 1e-12})
        best = max(best, -result.fun)
    assert fit.loglik[0] >= best - 1e-7 * abs(best)
    assert fit.loc[0] in row  # the maximiser is a sample point


def test_mle_recovers_known_parameters():
    rng = np.random.default_rng(2024)
    rows = 200
    for kappa, loc, scale in [(0.6, 0.02, 0.05), (1.7, -0.1, 2.0)]:
        draws = stats.laplace_asymmetric.rvs(kappa, loc, scale, size=(rows, 2000),
                                             random_state=rng)
        fit = fit_mle(draws, device="cpu")
        for estimate, truth in [(fit.kappa, kappa), (fit.loc, loc), (fit.scale, scale)]:
            standard_error = estimate.std() / math.sqrt(rows)
            assert abs(estimate.mean() - truth) < 4 * standard_error, (truth, estimate.mean())
        # Draws from the fitted family: KS below its 1 % critical value for almost all.
        assert np.mean(fit.ks < 1.63 / math.sqrt(2000)) > 0.95


def test_ks_statistic_matches_scipy_kstest(lite0_weight, mixed_head):
    for weight, rows in [(lite0_weight, SUBSET), (mixed_head, range(mixed_head.shape[0]))]:
        fit = fit_mle(weight, device="cpu")
        for k in rows:
            fitted = stats.laplace_asymmetric(fit.kappa[k], fit.loc[k], fit.scale[k])
            expected = stats.kstest(weight[k].astype(np.float64), fitted.cdf).statistic
            assert fit.ks[k] == pytest.approx(expected, rel=1e-9, abs=1e-12)


def test_chunked_rows_give_the_same_fits(mixed_head, monkeypatch):
    whole = fit_ald(mixed_head, device="cpu")
    monkeypatch.setattr(ald, "CHUNK_ELEMENTS", 7 * mixed_head.shape[1])  # chunks of 7 rows
    chunked = fit_ald(mixed_head, device="cpu")
    for name, column in whole.columns().items():
        np.testing.assert_array_equal(chunked.columns()[name], column, err_msg=name)


@pytest.mark.skipif(not torch.cuda.is_available(), reason="no CUDA device on this machine")
def test_cuda_fits_equal_cpu_fits(lite0_weight):
    cpu = fit_mle(lite0_weight, device="cpu")
    cuda = fit_mle(lite0_weight, device="cuda")
    for name in ("kappa", "loc", "scale", "loglik", "ks"):
        np.testing.assert_allclose(getattr(cuda, name), getattr(cpu, name), rtol=1e-9,
                                   atol=1e-12, err_msg=name)


# --------------------------------------------------------------------------------------
# bad input: per-class statuses, never a crash, never an unexplained NaN

FIT_COLUMNS = ("r2_pos", "r2_neg", "slope_pos", "intercept_pos", "slope_neg", "intercept_neg",
               "kappa_mle", "loc_mle", "scale_mle", "loglik_mle", "ks_mle")


def _assert_every_nan_explained(table) -> None:
    for k in range(table.num_classes):
        has_nan = any(math.isnan(getattr(table, name)[k]) for name in FIT_COLUMNS)
        if has_nan:
            assert table.status[k] != "ok", k


def test_degenerate_rows_get_statuses_not_crashes():
    rng = np.random.default_rng(8)
    healthy = stats.laplace_asymmetric.rvs(0.8, 0.0, 0.1, size=40, random_state=rng)
    w = np.stack([
        np.zeros(40),                                        # 0 all zero
        np.full(40, 0.25),                                   # 1 constant
        np.concatenate([[0.3, 0.2], -rng.uniform(0.01, 0.2, 38)]),  # 2 two positives
        np.concatenate([np.full(20, 0.1), np.full(20, -0.1)]),  # 3 two distinct values
        np.concatenate([np.full(20, 0.1), -rng.uniform(0.01, 0.2, 20)]),  # 4 equal positives
        np.concatenate([[-0.5], np.full(38, 0.0), [0.4]]),  # 5 min/max unique, rest tied
        np.concatenate([np.full(5, -0.3), rng.normal(0, 0.1, 30), np.full(5, 0.3)]),  # 6 tied ends
        healthy,                                             # 7 fine
    ]).astype(np.float32)
    table = fit_ald(w, device="cpu")
    _assert_every_nan_explained(table)
    assert "MLE: constant row" in table.status[0]
    assert "positive side: 0 nonzero weight(s)" in table.status[0]
    assert "40 zero weight(s) excluded" in table.status[0]
    assert "MLE: constant row" in table.status[1]
    assert "positive side: all magnitudes equal, R² undefined" in table.status[1]
    assert "negative side: 0 nonzero weight(s)" in table.status[1]
    assert table.slope_pos[1] == 0.0 and table.intercept_pos[1] == pytest.approx(math.log(0.25))
    assert "positive side: 2 nonzero weight(s), need at least 3" in table.status[2]
    assert math.isnan(table.r2_pos[2]) and not math.isnan(table.r2_neg[2])
    assert not math.isnan(table.kappa_mle[2])
    assert "MLE: fewer than 3 distinct weights" in table.status[3]
    assert "positive side: all magnitudes equal" in table.status[4]
    assert table.status[5].startswith("positive side: 1 nonzero")
    assert table.loc_mle[5] == 0.0  # the only valid location: the tied middle
    assert table.status[6] == "ok"
    assert table.status[7] == "ok"
    # Tied extremes: the fit must match scipy's best, never sit on a tied min/max.
    row = w[6].astype(np.float64)
    assert -0.3 < table.loc_mle[6] < 0.3
    ll_theirs = _scipy_loglik(row, stats.laplace_asymmetric.fit(row))
    assert table.loglik_mle[6] >= ll_theirs - 1e-6 * abs(ll_theirs)


def test_too_few_features_for_any_fit():
    table = fit_ald(np.array([[0.5, -0.5], [0.1, 0.2]]), device="cpu")
    _assert_every_nan_explained(table)
    assert all("MLE: 2 weight(s) per class, need at least 3" in s for s in table.status)
    assert np.isnan(table.kappa_mle).all() and np.isnan(table.r2_pos).all()


def test_one_by_one_conv_head_is_fitted_like_a_linear_head():
    from classmap.analysis.loading.models import extract_head

    torch.manual_seed(0)
    network = torch.nn.Sequential(
        torch.nn.Conv2d(3, 48, 3), torch.nn.ReLU(), torch.nn.Conv2d(48, 6, 1),
        torch.nn.AdaptiveAvgPool2d(1), torch.nn.Flatten(),
    )
    weight, _bias = extract_head(network)
    assert weight.shape == (6, 48)
    table = fit_ald(weight, device="cpu")
    flat = network[2].weight.detach().numpy().reshape(6, 48)
    reference = fit_ald(flat, device="cpu")
    for name, column in table.columns().items():
        np.testing.assert_array_equal(reference.columns()[name], column, err_msg=name)
    assert np.isfinite(table.kappa_mle).all() and np.isfinite(table.r2_pos).all()


def test_bad_matrices_raise_one_line_errors():
    with pytest.raises(ClassmapError, match="matrix"):
        fit_ald(np.zeros(5))
    with pytest.raises(ClassmapError, match="NaN or Inf in 1 row"):
        fit_ald(np.array([[0.1, np.nan, 0.2], [0.1, 0.2, 0.3]]))
    with pytest.raises(ClassmapError, match="derived_rel_tol"):
        fit_ald(np.ones((2, 3)), AldParams(derived_rel_tol=0.0))
