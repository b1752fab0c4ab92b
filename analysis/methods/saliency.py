"""Agreement between two saliency maps — the saliency-benchmark measures (METHODS.md §3).

Seed 002 compares the Grad-CAM maps of two images of the same class with four
measures from the saliency benchmarks. No library ships them, so they are written
once here:

- **CC** — Pearson correlation of the two maps' pixel values;
- **SIM** — each map normalised to sum 1, then the sum of the element-wise minima
  (1 = identical distributions, 0 = disjoint support);
- **KLD** — Kullback–Leibler divergence (natural log, nats) between the maps
  normalised to sum 1 after adding a small ε to every pixel and renormalising
  (``ε = 1e-7``), which is ``scipy.stats.entropy(p + ε, q + ε)``; it is asymmetric,
  so the reported value is the mean of both directions;
- **AUC** — ROC AUC of one map's pixel values as scores for the binary target
  "the other map's pixel is in its top 20 %"; ties in the scores count one half
  (the Mann–Whitney form, as ``sklearn.metrics.roc_auc_score``); the reported
  value is the mean of both directions.

Defined behaviour on degenerate maps (a Grad-CAM map is all zero when the ReLU
removes everything):

- a map that is constant (all pixels equal, all-zero included) has no variance, so
  **CC is NaN** for any pair containing it;
- a map summing to zero is treated as the **uniform distribution** for SIM and KLD
  (no saliency = no preference): SIM of two all-zero maps is 1, their KLD is 0;
- the "top 20 %" set of a map holds ``k = ⌈0.2·n⌉`` pixels of its n; pixels tied
  with the k-th largest value go all in or all out, whichever leaves the set nearer
  to k pixels (in on a draw), and the set may be neither empty nor the whole map.
  A constant map has no such set, so **AUC is NaN** when the target map is
  constant; as the score map, a constant map gives AUC 0.5 (all ties). The
  symmetric AUC is NaN when either direction is.

Maps must be non-negative (SIM and KLD treat them as distributions).
"""

from __future__ import annotations

import math
from dataclasses import dataclass

import numpy as np
from scipy.stats import rankdata

from classmap.analysis.errors import ClassmapError
from classmap.analysis.methods.representations import check_labels

DEFAULT_EPS = 1e-7
DEFAULT_TOP = 0.2
DEFAULT_MAX_PAIRS_PER_CLASS = 200
# Pixels handled at once when SIM (element-wise minima) runs over many pairs.
_SIM_CHUNK_ELEMENTS = 1 << 22


@dataclass(frozen=True)
class MapAgreement:
    """The four agreement measures between two maps (symmetric versions).

    cc : Pearson correlation in [−1, 1] (NaN if a map is constant)
    sim : histogram intersection in [0, 1]
    kld : mean of KL(a‖b) and KL(b‖a), nats, ≥ 0
    auc : mean of both directions' top-fraction ROC AUC, in [0, 1] (NaN if a map is constant)
    """

    cc: float
    sim: float
    kld: float
    auc: float


# ----------------------------------------------------------------- single pairs


def correlation_coefficient(a: np.ndarray, b: np.ndarray) -> float:
    """Pearson correlation of two maps of shape (H, W); NaN if either map is constant."""
    stack = _check_pair(a, b, non_negative=False)
    z, constant = _standardise(stack)
    if constant.any():
        return math.nan
    return float(np.clip(z[0] @ z[1] / stack.shape[1], -1.0, 1.0))


def similarity_intersection(a: np.ndarray, b: np.ndarray) -> float:
    """SIM: sum of element-wise minima of the two maps (H, W), each normalised to sum 1.

    An all-zero map counts as uniform; the result lies in [0, 1].
    """
    dist = _distribution(_check_pair(a, b))
    return float(np.minimum(dist[0], dist[1]).sum())


def kl_divergence(p: np.ndarray, q: np.ndarray, eps: float = DEFAULT_EPS) -> float:
    """KL(p‖q) in nats between two maps (H, W) normalised to sum 1, smoothed by ``eps``.

    Each map is normalised to sum 1 (an all-zero map counts as uniform), ``eps`` is
    added to every pixel and the map renormalised: the result equals
    ``scipy.stats.entropy(p_norm + eps, q_norm + eps)``. Asymmetric.
    """
    _check_eps(eps)
    smooth = _smoothed(_distribution(_check_pair(p, q)), eps)
    log = np.log(smooth)
    return max(float(smooth[0] @ (log[0] - log[1])), 0.0)


def symmetric_kl_divergence(a: np.ndarray, b: np.ndarray, eps: float = DEFAULT_EPS) -> float:
    """Mean of KL(a‖b) and KL(b‖a), nats; maps of shape (H, W)."""
    return 0.5 * (kl_divergence(a, b, eps) + kl_divergence(b, a, eps))


def auc_top_fraction(a: np.ndarray, b: np.ndarray, top: float = DEFAULT_TOP) -> float:
    """ROC AUC of ``a``'s pixel values for the target "``b``'s pixel is in its top ``top``".

    Maps of shape (H, W). NaN when ``b`` is constant (no top set); 0.5 when ``a`` is
    constant (every score tied). See the module docstring for the tie rule.
    """
    _check_top(top)
    stack = _check_pair(a, b, non_negative=False)
    masks, valid = _top_masks(stack, top)
    if not valid[1]:
        return math.nan
    return float(_auc_from_ranks(_ranks(stack[:1]), masks[1:])[0, 0])


def symmetric_auc_top_fraction(a: np.ndarray, b: np.ndarray, top: float = DEFAULT_TOP) -> float:
    """Mean of :func:`auc_top_fraction` in both directions; NaN if either is undefined."""
    return 0.5 * (auc_top_fraction(a, b, top) + auc_top_fraction(b, a, top))


def map_agreement(
    a: np.ndarray, b: np.ndarray, *, eps: float = DEFAULT_EPS, top: float = DEFAULT_TOP
) -> MapAgreement:
    """All four measures (symmetric versions) between two non-negative maps of shape (H, W)."""
    _check_eps(eps)
    _check_top(top)
    stack = _check_pair(a, b)
    prepared = _prepare(stack, eps, top)
    pairs = np.array([[0, 1]])
    cc, sim, kld, auc = _pair_measures(prepared, pairs)
    return MapAgreement(cc=float(cc[0]), sim=float(sim[0]), kld=float(kld[0]), auc=float(auc[0]))


# ------------------------------------------------------------------ per class


@dataclass(frozen=True)
class MapAgreementTable:
    """Mean map agreement between images of the same class.

    Attributes
    ----------
    cc, sim, kld, auc : ndarray of shape (C,), float64 — the class's mean over its
        evaluated pairs (CC and AUC over the pairs where they are defined); NaN where
        the class has fewer than 2 images or the measure is undefined for every pair
    pair_counts : ndarray of shape (C,), int64 — pairs evaluated (after the cap)
    image_counts : ndarray of shape (C,), int64 — images of the class
    cc_defined, auc_defined : ndarray of shape (C,), int64 — pairs where CC / AUC are
        defined (both maps non-constant)
    status : one line per class: ``"ok"`` or why a value is NaN or what was left out
    overall_pairs : MapAgreement averaged over every evaluated pair, pooled
    overall_classes : MapAgreement averaging the per-class means over classes
        where they are defined
    max_pairs_per_class : the cap used (None = all pairs)
    seed : seed of the pair sampling
    """

    cc: np.ndarray
    sim: np.ndarray
    kld: np.ndarray
    auc: np.ndarray
    pair_counts: np.ndarray
    image_counts: np.ndarray
    cc_defined: np.ndarray
    auc_defined: np.ndarray
    status: tuple[str, ...]
    overall_pairs: MapAgreement
    overall_classes: MapAgreement
    max_pairs_per_class: int | None
    seed: int


def within_class_map_agreement(
    maps: np.ndarray,
    labels: np.ndarray,
    num_classes: int,
    *,
    max_pairs_per_class: int | None = DEFAULT_MAX_PAIRS_PER_CLASS,
    seed: int = 0,
    eps: float = DEFAULT_EPS,
    top: float = DEFAULT_TOP,
) -> MapAgreementTable:
    """Mean CC / SIM / KLD / AUC over pairs of images of each class.

    Parameters
    ----------
    maps : array of shape (N, H, W) — non-negative saliency maps (Grad-CAM, in [0, 1])
    labels : array of shape (N,) — true class of each image, in ``[0, C)``
    num_classes : C
    max_pairs_per_class : a class with more unordered pairs than this is scored on a
        uniform sample of that many pairs, drawn with ``numpy.random.default_rng((seed,
        class))`` so each class's sample does not depend on the others; None = all pairs
    seed : non-negative seed of the sampling
    eps, top : as in :func:`kl_divergence` and :func:`auc_top_fraction`

    Returns
    -------
    MapAgreementTable

    Notes
    -----
    Each map is prepared once (standardised, normalised, smoothed, ranked, top set), so
    CC, KLD and AUC for all pairs of a class come from three matrix products; only SIM
    (element-wise minima) loops over pairs, in chunks.
    """
    stack = _check_maps(maps)
    classes = check_labels(labels, stack.shape[0], num_classes)
    _check_eps(eps)
    _check_top(top)
    if max_pairs_per_class is not None and (
        isinstance(max_pairs_per_class, bool)
        or not isinstance(max_pairs_per_class, (int, np.integer))
        or max_pairs_per_class < 1
    ):
        raise ClassmapError(
            f"max_pairs_per_class is {max_pairs_per_class!r}; pass a positive integer or None"
        )
    if isinstance(seed, bool) or not isinstance(seed, (int, np.integer)) or seed < 0:
        raise ClassmapError(f"seed must be a non-negative integer, got {seed!r}; pass e.g. 0")

    means = np.full((4, num_classes), np.nan)
    pair_counts = np.zeros(num_classes, dtype=np.int64)
    cc_defined = np.zeros(num_classes, dtype=np.int64)
    auc_defined = np.zeros(num_classes, dtype=np.int64)
    image_counts = np.bincount(classes, minlength=num_classes).astype(np.int64)
    pooled: list[np.ndarray] = []
    for c in range(num_classes):
        members = np.flatnonzero(classes == c)
        pairs = _class_pairs(len(members), max_pairs_per_class, seed, c)
        if len(pairs) == 0:
            continue
        # Prepare only the images that appear in a sampled pair.
        used, local = np.unique(pairs, return_inverse=True)
        prepared = _prepare(stack[members[used]].astype(np.float64), eps, top)
        values = np.stack(_pair_measures(prepared, local.reshape(pairs.shape)))  # [4, P]
        pooled.append(values)
        pair_counts[c] = len(pairs)
        cc_defined[c] = int(np.count_nonzero(~np.isnan(values[0])))
        auc_defined[c] = int(np.count_nonzero(~np.isnan(values[3])))
        means[:, c] = _nanmean_rows(values)

    status = tuple(
        _class_status(
            int(image_counts[c]), int(pair_counts[c]), int(cc_defined[c]), int(auc_defined[c])
        )
        for c in range(num_classes)
    )
    all_pairs = np.concatenate(pooled, axis=1) if pooled else np.full((4, 0), np.nan)
    return MapAgreementTable(
        cc=means[0],
        sim=means[1],
        kld=means[2],
        auc=means[3],
        pair_counts=pair_counts,
        image_counts=image_counts,
        cc_defined=cc_defined,
        auc_defined=auc_defined,
        status=status,
        overall_pairs=MapAgreement(*(float(v) for v in _nanmean_rows(all_pairs))),
        overall_classes=MapAgreement(*(float(v) for v in _nanmean_rows(means))),
        max_pairs_per_class=None if max_pairs_per_class is None else int(max_pairs_per_class),
        seed=int(seed),
    )


def _class_pairs(members: int, cap: int | None, seed: int, class_index: int) -> np.ndarray:
    """Unordered pairs (i < j) of a class's images, shape (P, 2), sampled down to ``cap``."""
    first, second = np.triu_indices(members, k=1)
    pairs = np.stack([first, second], axis=1).astype(np.int64)
    if cap is not None and len(pairs) > cap:
        rng = np.random.default_rng((int(seed), int(class_index)))
        pairs = pairs[np.sort(rng.choice(len(pairs), size=cap, replace=False))]
    return pairs


def _class_status(images: int, pairs: int, cc_ok: int, auc_ok: int) -> str:
    if images == 0:
        return "no images"
    if pairs == 0:
        return "1 image: no pair"
    notes = []
    if cc_ok < pairs:
        notes.append(
            f"CC undefined for {pairs - cc_ok} of {pairs} pairs (a constant map), left out"
        )
    if auc_ok < pairs:
        notes.append(
            f"AUC undefined for {pairs - auc_ok} of {pairs} pairs (a constant map), left out"
        )
    return "; ".join(["ok", *notes])


def _nanmean_rows(values: np.ndarray) -> np.ndarray:
    """Mean of each row over its non-NaN entries; NaN for a row with none. (R, P) → (R,)."""
    finite = ~np.isnan(values)
    counts = finite.sum(axis=1)
    sums = np.where(finite, values, 0.0).sum(axis=1)
    return np.where(counts > 0, sums / np.maximum(counts, 1), np.nan)


# --------------------------------------------------------------- preparation


@dataclass(frozen=True)
class _PreparedMaps:
    """Per-map quantities every pair measure needs; m maps of n pixels each."""

    z: np.ndarray  # (m, n) standardised values (population std); 0 for constant maps
    constant: np.ndarray  # (m,) bool
    dist: np.ndarray  # (m, n) normalised to sum 1 (uniform if all zero)
    smooth: np.ndarray  # (m, n) (dist + eps) renormalised
    log_smooth: np.ndarray  # (m, n)
    neg_entropy: np.ndarray  # (m,) Σ smooth · log smooth
    ranks: np.ndarray  # (m, n) average ranks of the values within the map
    masks: np.ndarray  # (m, n) bool, top-fraction set
    top_valid: np.ndarray  # (m,) bool, whether a top set exists


def _prepare(stack: np.ndarray, eps: float, top: float) -> _PreparedMaps:
    z, constant = _standardise(stack)
    dist = _distribution(stack)
    smooth = _smoothed(dist, eps)
    log_smooth = np.log(smooth)
    masks, valid = _top_masks(stack, top)
    return _PreparedMaps(
        z=z,
        constant=constant,
        dist=dist,
        smooth=smooth,
        log_smooth=log_smooth,
        neg_entropy=np.einsum("mn,mn->m", smooth, log_smooth),
        ranks=_ranks(stack),
        masks=masks,
        top_valid=valid,
    )


def _pair_measures(
    prepared: _PreparedMaps, pairs: np.ndarray
) -> tuple[np.ndarray, np.ndarray, np.ndarray, np.ndarray]:
    """Symmetric CC, SIM, KLD, AUC for index pairs of shape (P, 2); each (P,)."""
    first, second = pairs[:, 0], pairs[:, 1]
    n = prepared.z.shape[1]

    correlation = np.clip(prepared.z @ prepared.z.T / n, -1.0, 1.0)
    cc = correlation[first, second]
    cc = np.where(prepared.constant[first] | prepared.constant[second], np.nan, cc)

    # KL(i‖j) = Σ s_i log s_i − Σ s_i log s_j, for every ordered pair at once.
    cross = prepared.smooth @ prepared.log_smooth.T
    kl = np.maximum(prepared.neg_entropy[:, None] - cross, 0.0)
    kld = 0.5 * (kl[first, second] + kl[second, first])

    auc_matrix = _auc_from_ranks(prepared.ranks, prepared.masks)
    auc_matrix[:, ~prepared.top_valid] = np.nan
    auc = 0.5 * (auc_matrix[first, second] + auc_matrix[second, first])

    sim = np.empty(len(pairs))
    chunk = max(1, _SIM_CHUNK_ELEMENTS // n)
    for start in range(0, len(pairs), chunk):
        stop = start + chunk
        sim[start:stop] = np.minimum(
            prepared.dist[first[start:stop]], prepared.dist[second[start:stop]]
        ).sum(axis=1)
    return cc, sim, kld, auc


def _standardise(stack: np.ndarray) -> tuple[np.ndarray, np.ndarray]:
    """Z-scores of each row (population std) and which rows are constant; (m, n), (m,)."""
    # A constant map is detected exactly (max == min): its computed std can be 1e-17.
    constant = np.ptp(stack, axis=1) == 0
    centred = stack - stack.mean(axis=1, keepdims=True)
    std = np.sqrt(np.mean(centred * centred, axis=1, keepdims=True))
    z = np.divide(centred, std, out=np.zeros_like(centred), where=~constant[:, None])
    return z, constant


def _distribution(stack: np.ndarray) -> np.ndarray:
    """Rows normalised to sum 1; an all-zero row becomes uniform. (m, n) → (m, n)."""
    totals = stack.sum(axis=1, keepdims=True)
    uniform = np.full_like(stack, 1.0 / stack.shape[1])
    return np.divide(stack, totals, out=uniform, where=totals > 0)


def _smoothed(dist: np.ndarray, eps: float) -> np.ndarray:
    smooth = dist + eps
    return smooth / smooth.sum(axis=1, keepdims=True)


def _ranks(stack: np.ndarray) -> np.ndarray:
    """Average ranks (1 … n, ties share their mean rank) within each row."""
    return rankdata(stack, method="average", axis=1)


def _top_masks(stack: np.ndarray, top: float) -> tuple[np.ndarray, np.ndarray]:
    """Each row's top-fraction set and whether it exists; (m, n) bool, (m,) bool.

    k = ⌈top·n⌉ pixels; the pixels tied with the k-th largest value go all in
    (``≥``) or all out (``>``), whichever count is nearer to k (in on a draw); a set
    that is empty or the whole row is not allowed.
    """
    n = stack.shape[1]
    k = min(max(math.ceil(top * n - 1e-9), 1), n)
    kth = -np.partition(-stack, k - 1, axis=1)[:, k - 1 : k]
    inclusive = stack >= kth
    strict = stack > kth
    n_inclusive = inclusive.sum(axis=1)
    n_strict = strict.sum(axis=1)
    inclusive_ok = n_inclusive < n
    strict_ok = n_strict > 0
    use_strict = ~inclusive_ok | (strict_ok & (np.abs(n_strict - k) < np.abs(n_inclusive - k)))
    masks = np.where(use_strict[:, None], strict, inclusive)
    return masks, inclusive_ok | strict_ok


def _auc_from_ranks(ranks: np.ndarray, masks: np.ndarray) -> np.ndarray:
    """AUC[i, j] of map i's values for map j's top set (Mann–Whitney U / (P·N)).

    ranks : (m, n) average ranks of the scoring maps; masks : (r, n) bool target sets.
    Returns (m, r); columns whose mask is empty or full are meaningless (caller masks).
    """
    n = ranks.shape[1]
    positives = masks.sum(axis=1).astype(np.float64)
    negatives = n - positives
    rank_sums = ranks @ masks.T.astype(np.float64)
    with np.errstate(invalid="ignore", divide="ignore"):
        auc = (rank_sums - positives * (positives + 1) / 2) / (positives * negatives)
    return auc


# ---------------------------------------------------------------- validation


def _check_map(array: np.ndarray, name: str) -> None:
    if array.dtype.kind not in "iuf":
        raise ClassmapError(f"{name} has dtype {array.dtype}; pass real-valued maps")
    if not np.all(np.isfinite(array)):
        raise ClassmapError(
            f"{name} contains NaN or infinite values; re-run the Grad-CAM extraction"
        )


def _check_pair(a: np.ndarray, b: np.ndarray, *, non_negative: bool = True) -> np.ndarray:
    """Two maps of equal shape (H, W) → float64 array of shape (2, H·W)."""
    left, right = np.asarray(a), np.asarray(b)
    if left.ndim != 2 or left.shape != right.shape or left.size < 2:
        raise ClassmapError(
            f"maps have shapes {left.shape} and {right.shape}; "
            "pass two 2-D maps of the same shape (H, W) with at least 2 pixels"
        )
    for name, array in (("first map", left), ("second map", right)):
        _check_map(array, name)
        if non_negative and array.min() < 0:
            raise ClassmapError(
                f"{name} has negative values (min {array.min():.3g}); "
                "saliency maps must be non-negative (apply the ReLU / scale to [0, 1])"
            )
    return np.stack([left.reshape(-1), right.reshape(-1)]).astype(np.float64)


def _check_maps(maps: np.ndarray) -> np.ndarray:
    """Maps of shape (N, H, W) → array of shape (N, H·W) (dtype kept; cast per class)."""
    array = np.asarray(maps)
    if array.ndim != 3 or array.shape[1] * array.shape[2] < 2:
        raise ClassmapError(
            f"maps have shape {array.shape}; pass an array of shape (images, H, W) with H·W ≥ 2"
        )
    _check_map(array, "maps")
    if array.size and array.min() < 0:
        raise ClassmapError(
            f"maps have negative values (min {array.min():.3g}); "
            "saliency maps must be non-negative (apply the ReLU / scale to [0, 1])"
        )
    return array.reshape(array.shape[0], -1)


def _check_eps(eps: float) -> None:
    if (
        not isinstance(eps, (int, float, np.floating))
        or not (0 < eps < 1)
        or not math.isfinite(eps)
    ):
        raise ClassmapError(f"eps is {eps!r}; pass a small positive number such as 1e-7")


def _check_top(top: float) -> None:
    if not isinstance(top, (int, float, np.floating)) or not 0 < top < 1:
        raise ClassmapError(f"top is {top!r}; pass a fraction strictly between 0 and 1, e.g. 0.2")
