"""Saliency-map agreement against hand-computed cases and independent references.

References: scipy.stats.pearsonr (CC), scipy.stats.entropy (KL),
sklearn.metrics.roc_auc_score (AUC), and a plain per-pair loop (the per-class table).
"""

from __future__ import annotations

import math

import numpy as np
import pytest
from scipy.stats import entropy, pearsonr
from sklearn.metrics import roc_auc_score

from classmap.analysis.errors import ClassmapError
from classmap.analysis.methods.saliency import (
    MapAgreement,
    auc_top_fraction,
    correlation_coefficient,
    kl_divergence,
    map_agreement,
    similarity_intersection,
    symmetric_auc_top_fraction,
    symmetric_kl_divergence,
    within_class_map_agreement,
)

RNG = np.random.default_rng(7)


def _random_map(shape=(12, 10), zeros: float = 0.3) -> np.ndarray:
    """A Grad-CAM-like map: non-negative, some exact zeros (after ReLU)."""
    values = RNG.random(shape)
    values[RNG.random(shape) < zeros] = 0.0
    return values


# ------------------------------------------------------------- hand-computed


def test_hand_computed_orthogonal_maps():
    a = np.array([[1.0, 0.0], [0.0, 1.0]])
    b = np.array([[1.0, 1.0], [0.0, 0.0]])
    # centred a = ½[1, −1, −1, 1], centred b = ½[1, 1, −1, −1]: orthogonal.
    assert correlation_coefficient(a, b) == pytest.approx(0.0, abs=1e-12)
    # P = [½, 0, 0, ½], Q = [½, ½, 0, 0] → Σ min = ½
    assert similarity_intersection(a, b) == pytest.approx(0.5)


def test_hand_computed_graded_map_against_single_peak():
    a = np.array([[4.0, 3.0], [2.0, 1.0]])
    b = np.array([[1.0, 0.0], [0.0, 0.0]])
    # centred a = [1.5, .5, −.5, −1.5], centred b = [.75, −.25, −.25, −.25]
    # CC = 1.5 / sqrt(5 · 0.75)
    assert correlation_coefficient(a, b) == pytest.approx(1.5 / math.sqrt(3.75))
    # P = [.4, .3, .2, .1], Q = [1, 0, 0, 0] → Σ min = .4
    assert similarity_intersection(a, b) == pytest.approx(0.4)
    # Top 20 % of 4 pixels = 1 pixel, the top-left one in both maps; it holds the
    # highest score in both directions, so both AUCs are 1.
    assert auc_top_fraction(a, b) == 1.0
    assert auc_top_fraction(b, a) == 1.0
    # Reversed scores rank the target pixel last: AUC 0.
    assert auc_top_fraction(5.0 - a, b) == 0.0


def test_hand_computed_kl_divergence_and_asymmetry():
    a = np.ones((2, 2))
    b = np.array([[3.0, 1.0], [3.0, 1.0]])
    # P = ¼ each, Q = [.375, .125, .375, .125]
    forward = 0.5 * math.log(0.25 / 0.375) + 0.5 * math.log(0.25 / 0.125)  # = ½ ln(4/3)
    backward = 0.75 * math.log(1.5) + 0.25 * math.log(0.5)
    assert kl_divergence(a, b) == pytest.approx(forward, abs=1e-6)
    assert kl_divergence(b, a) == pytest.approx(backward, abs=1e-6)
    assert forward != pytest.approx(backward, abs=1e-3)
    assert symmetric_kl_divergence(a, b) == pytest.approx(0.5 * (forward + backward), abs=1e-6)


def test_auc_hand_computed_with_tied_scores():
    # Target: b's top pixel is (0, 0). Scores a tie the target with one negative:
    # pairs (pos vs 3 negatives) = 1 win, 1 tie, 1 win → (2 + ½) / 3.
    a = np.array([[2.0, 2.0], [1.0, 0.0]])
    b = np.array([[9.0, 1.0], [2.0, 3.0]])
    assert auc_top_fraction(a, b) == pytest.approx(2.5 / 3)


# --------------------------------------------------------------- identities


def test_identities_of_a_map_with_itself():
    a = RNG.random((9, 11))  # continuous: no ties
    assert correlation_coefficient(a, a) == pytest.approx(1.0)
    assert similarity_intersection(a, a) == pytest.approx(1.0)
    assert kl_divergence(a, a) == pytest.approx(0.0, abs=1e-12)
    assert auc_top_fraction(a, a) == 1.0
    agreement = map_agreement(a, a)
    assert agreement == MapAgreement(
        cc=pytest.approx(1.0), sim=pytest.approx(1.0), kld=pytest.approx(0.0, abs=1e-12), auc=1.0
    )


def test_map_agreement_is_symmetric_and_matches_the_single_functions():
    a, b = _random_map(), _random_map()
    forward, backward = map_agreement(a, b), map_agreement(b, a)
    for name in ("cc", "sim", "kld", "auc"):
        assert getattr(forward, name) == pytest.approx(getattr(backward, name), abs=1e-12)
    assert forward.cc == pytest.approx(correlation_coefficient(a, b), abs=1e-12)
    assert forward.sim == pytest.approx(similarity_intersection(a, b), abs=1e-12)
    assert forward.kld == pytest.approx(symmetric_kl_divergence(a, b), abs=1e-10)
    assert forward.auc == pytest.approx(symmetric_auc_top_fraction(a, b), abs=1e-12)


# --------------------------------------------------------------- references


@pytest.mark.parametrize("trial", range(4))
def test_cc_equals_scipy_pearsonr(trial):
    a, b = _random_map(), _random_map()
    assert correlation_coefficient(a, b) == pytest.approx(
        pearsonr(a.ravel(), b.ravel())[0], abs=1e-12
    )


@pytest.mark.parametrize("eps", [1e-7, 1e-3])
def test_kl_equals_scipy_entropy_of_smoothed_maps(eps):
    a, b = _random_map(), _random_map()
    p, q = a.ravel() / a.sum(), b.ravel() / b.sum()
    assert kl_divergence(a, b, eps) == pytest.approx(entropy(p + eps, q + eps), rel=1e-10)


def test_sim_equals_numpy_definition():
    a, b = _random_map(), _random_map()
    expected = np.minimum(a / a.sum(), b / b.sum()).sum()
    assert similarity_intersection(a, b) == pytest.approx(expected, abs=1e-12)


@pytest.mark.parametrize("quantise", [False, True])
def test_auc_equals_sklearn_roc_auc(quantise):
    a = RNG.random((16, 15))
    b = RNG.random((16, 15))  # continuous target: its top 20 % is exactly ⌈0.2·n⌉ pixels
    if quantise:
        a = np.round(a * 4) / 4  # many tied scores
    k = math.ceil(0.2 * b.size)
    target = b.ravel() >= np.sort(b.ravel())[-k]
    assert target.sum() == k
    assert auc_top_fraction(a, b) == pytest.approx(roc_auc_score(target, a.ravel()), abs=1e-12)


def test_auc_top_fraction_parameter():
    a, b = RNG.random((10, 10)), RNG.random((10, 10))
    target = b.ravel() >= np.sort(b.ravel())[-50]
    assert auc_top_fraction(a, b, top=0.5) == pytest.approx(roc_auc_score(target, a.ravel()))


# ----------------------------------------------------------- degenerate maps


def test_ties_at_the_threshold_go_where_the_set_stays_nearest_k():
    # b: 15 % at 1.0, 60 % at 0.5, 25 % at 0 over 20 pixels; k = 4 → the 4th largest
    # is 0.5: "≥" would take 15 pixels, ">" takes 3 → the set is the 3 pixels at 1.0.
    b = np.array([1.0] * 3 + [0.5] * 12 + [0.0] * 5).reshape(4, 5)
    indicator = (b == 1.0).astype(float)
    assert auc_top_fraction(indicator, b) == 1.0
    # A mostly-zero Grad-CAM map: 2 non-zero of 20 pixels; "≥ 0" would be everything,
    # so the top set is the 2 non-zero pixels.
    sparse = np.zeros((4, 5))
    sparse[0, :2] = [0.3, 0.8]
    assert auc_top_fraction((sparse > 0).astype(float), sparse) == 1.0


def test_constant_maps_are_defined_where_possible():
    zero = np.zeros((3, 3))
    a = RNG.random((3, 3))
    assert math.isnan(correlation_coefficient(zero, a))
    assert math.isnan(correlation_coefficient(np.full((3, 3), 0.7), a))
    # Two all-zero maps: both uniform → identical distributions.
    assert similarity_intersection(zero, zero) == 1.0
    assert kl_divergence(zero, zero) == pytest.approx(0.0, abs=1e-15)
    # All-zero vs a map: uniform vs its normalisation.
    assert similarity_intersection(zero, a) == pytest.approx(np.minimum(1 / 9, a / a.sum()).sum())
    # Constant target: no top set → NaN; constant scores: every pair tied → 0.5.
    assert math.isnan(auc_top_fraction(a, zero))
    assert auc_top_fraction(zero, a) == 0.5
    assert math.isnan(symmetric_auc_top_fraction(a, zero))
    agreement = map_agreement(zero, zero)
    assert math.isnan(agreement.cc) and math.isnan(agreement.auc)
    assert agreement.sim == 1.0 and agreement.kld == pytest.approx(0.0, abs=1e-15)


@pytest.mark.parametrize(
    ("a", "b", "match"),
    [
        (np.ones((2, 2)), np.ones((2, 3)), "same shape"),
        (np.ones(4), np.ones(4), "2-D"),
        (np.ones((1, 1)), np.ones((1, 1)), "at least 2 pixels"),
        (np.array([[1.0, np.nan]]), np.ones((1, 2)), "NaN"),
        (np.array([[1.0, -0.5]]), np.ones((1, 2)), "negative"),
    ],
)
def test_bad_maps_are_refused(a, b, match):
    with pytest.raises(ClassmapError, match=match):
        map_agreement(a, b)


def test_bad_parameters_are_refused():
    a = np.ones((2, 2))
    with pytest.raises(ClassmapError, match="eps"):
        kl_divergence(a, a, eps=0.0)
    with pytest.raises(ClassmapError, match="fraction"):
        auc_top_fraction(a, a, top=1.0)


# -------------------------------------------------------------- per class


def _loop_reference(maps, labels, num_classes):
    """Per-class and pooled means from map_agreement over every pair (plain loop)."""
    per_class, pooled = [], []
    for c in range(num_classes):
        members = np.flatnonzero(labels == c)
        values = [
            map_agreement(maps[i], maps[j])
            for pos, i in enumerate(members)
            for j in members[pos + 1 :]
        ]
        pooled.extend(values)
        per_class.append(values)
    return per_class, pooled


def _nanmean(xs):
    xs = [x for x in xs if not math.isnan(x)]
    return sum(xs) / len(xs) if xs else math.nan


def test_table_equals_a_loop_over_pairs_and_explains_nan():
    maps = np.stack([_random_map((6, 7)) for _ in range(13)])
    maps[4] = 0.0  # an all-zero Grad-CAM in class 1
    labels = np.array([0, 0, 0, 0, 1, 1, 1, 1, 1, 2, 0, 1, 4])  # class 3 empty, 2 and 4 single
    num_classes = 5
    table = within_class_map_agreement(maps, labels, num_classes, max_pairs_per_class=None)
    per_class, pooled = _loop_reference(maps, labels, num_classes)

    np.testing.assert_array_equal(table.image_counts, [5, 6, 1, 0, 1])
    np.testing.assert_array_equal(table.pair_counts, [10, 15, 0, 0, 0])
    for c, values in enumerate(per_class):
        for name in ("cc", "sim", "kld", "auc"):
            expected = _nanmean([getattr(v, name) for v in values])
            got = getattr(table, name)[c]
            if math.isnan(expected):
                assert math.isnan(got)
            else:
                assert got == pytest.approx(expected, abs=1e-10), (c, name)
    for name in ("cc", "sim", "kld", "auc"):
        assert getattr(table.overall_pairs, name) == pytest.approx(
            _nanmean([getattr(v, name) for v in pooled]), abs=1e-10
        )
        assert getattr(table.overall_classes, name) == pytest.approx(
            _nanmean(list(getattr(table, name))), abs=1e-12
        )
    # The all-zero map makes CC and AUC undefined for its 5 pairs, and the status says so.
    assert table.cc_defined[1] == 10 and table.auc_defined[1] == 10
    assert table.status[0] == "ok"
    assert "CC undefined for 5 of 15 pairs" in table.status[1]
    assert table.status[2] == "1 image: no pair" and table.status[3] == "no images"
    assert np.isnan(table.sim[2:]).all()


def test_pair_cap_samples_deterministically():
    maps = np.stack([_random_map((5, 5)) for _ in range(12)])
    labels = np.zeros(12, dtype=np.int64)  # 66 pairs
    first = within_class_map_agreement(maps, labels, 1, max_pairs_per_class=10, seed=3)
    again = within_class_map_agreement(maps, labels, 1, max_pairs_per_class=10, seed=3)
    other = within_class_map_agreement(maps, labels, 1, max_pairs_per_class=10, seed=4)
    full = within_class_map_agreement(maps, labels, 1, max_pairs_per_class=66)
    everything = within_class_map_agreement(maps, labels, 1, max_pairs_per_class=None)
    assert first.pair_counts[0] == 10 and full.pair_counts[0] == 66
    assert first.sim[0] == again.sim[0]
    assert first.sim[0] != other.sim[0]
    assert full.sim[0] == everything.sim[0]


def test_planted_shared_blob_agrees_more_within_than_across_classes():
    yy, xx = np.mgrid[0:16, 0:16]

    def blob(cy, cx):
        return np.exp(-((yy - cy) ** 2 + (xx - cx) ** 2) / 8.0)

    maps = [np.clip(blob(4, 4) + 0.05 * RNG.random((16, 16)), 0, None) for _ in range(5)]
    maps += [np.clip(blob(11, 11) + 0.05 * RNG.random((16, 16)), 0, None) for _ in range(5)]
    maps = np.stack(maps)
    within = within_class_map_agreement(maps, np.repeat([0, 1], 5), 2)
    across = within_class_map_agreement(maps, np.tile([0, 1], 5), 2)
    assert within.overall_pairs.cc > 0.95 and within.overall_pairs.auc > 0.95
    assert across.overall_pairs.cc < within.overall_pairs.cc - 0.3
    assert across.overall_pairs.sim < within.overall_pairs.sim
    assert across.overall_pairs.kld > within.overall_pairs.kld


@pytest.mark.parametrize(
    ("kwargs", "match"),
    [
        ({"maps": np.ones((3, 4))}, "images, H, W"),
        ({"labels": np.array([0, 1])}, "labels"),
        ({"labels": np.array([0, 1, 5])}, "0 … 2"),
        ({"max_pairs_per_class": 0}, "positive integer"),
        ({"seed": -1}, "seed"),
        ({"maps": -np.ones((3, 2, 2))}, "negative"),
    ],
)
def test_table_validates_inputs(kwargs, match):
    arguments = {"maps": np.ones((3, 2, 2)), "labels": np.array([0, 1, 1]), "num_classes": 3}
    arguments.update(kwargs)
    maps, labels, num_classes = (
        arguments.pop("maps"),
        arguments.pop("labels"),
        arguments.pop("num_classes"),
    )
    with pytest.raises(ClassmapError, match=match):
        within_class_map_agreement(maps, labels, num_classes, **arguments)
