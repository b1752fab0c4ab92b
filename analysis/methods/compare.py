"""Comparing two class-relationship sources over one class set (METHODS.md §5).

A source is a :class:`Relation`: a symmetric distance matrix ``[C, C]`` (0 on the
diagonal) and a tree (scipy linkage ``[C − 1, 4]``) over the same classes in the same
order. The measures:

- **spearman**: Spearman's ρ between the two condensed distance vectors (all pairs);
- **mantel**: scikit-bio's Mantel test of the two matrices (Pearson's statistic by
  default, so it adds the linear view to the rank one above; Spearman's on request —
  then it equals ``spearman``), with its permutation p-value (two-sided);
- **cophenetic correlation**: Pearson's r between the trees' cophenetic distances
  (scipy ``cophenet``); merge heights of different sources are on different scales,
  so a rank version (Spearman) is reported too;
- **Fowlkes–Mallows B_k**: for each cut of both trees into k clusters (scipy
  ``cut_tree``), sklearn's ``fowlkes_mallows_score`` of the two partitions, with its
  expectation under independent partitions of the same sizes (Fowlkes & Mallows 1983);
- **disagreeing pairs**: the class pairs whose distance ranks (as fractions of all
  pairs) differ most between the two sources;
- **classes placed differently**: per class, the overlap (Jaccard) of its k nearest
  classes in the two sources — low for a class the two place in different company;
- **tanglegram** orders: each tree's leaf order after an untangling step (the second
  tree's subtrees turned to follow the first's order), and the number of crossing links.

Sources over different class sets (an image set holds only some of a model's classes)
are compared over the classes both cover: :func:`restrict` keeps those rows of each
distance matrix and the subtree they induce. :func:`class_mean_relation` makes a source
from per-image vectors (cosine distance of the class means).
"""

from __future__ import annotations

from dataclasses import dataclass, field

import numpy as np
from scipy.cluster import hierarchy
from scipy.spatial.distance import squareform

from classmap.analysis.errors import ClassmapError

DEFAULT_PERMUTATIONS = 999
DEFAULT_TOP_PAIRS = 50
DEFAULT_NEIGHBOURS = 10
MAX_CUT_LEVELS = 200


@dataclass(frozen=True)
class Relation:
    """One class-relationship source.

    name : how reports name it, e.g. ``lite0-imagenet weight cosine / ward``
    distance : ndarray ``[C, C]``, symmetric, zero diagonal (smaller = more related)
    linkage : scipy linkage ``[C − 1, 4]`` over the same classes
    """

    name: str
    distance: np.ndarray
    linkage: np.ndarray

    @property
    def num_classes(self) -> int:
        return int(self.distance.shape[0])

    def condensed(self) -> np.ndarray:
        return squareform(np.asarray(self.distance, dtype=np.float64), checks=False)


@dataclass(frozen=True)
class Comparison:
    """Every measure between two relations ``a`` and ``b`` (see the module docstring).

    cut_levels : k values ``[L]``; fowlkes_mallows, expected_fowlkes_mallows ``[L]``
    pairs : ``[P, 2]`` class indices of the most disagreeing pairs; pair_ranks ``[P, 2]``
        their distance ranks in ``a`` and ``b`` as fractions in [0, 1] (0 = closest)
    order_a, order_b : leaf orders for a tanglegram (b untangled against a)
    crossings, crossings_before : crossing links after / before untangling
    neighbour_overlap : ``[C]`` Jaccard overlap of each class's k nearest classes in a and b
    """

    a: str
    b: str
    spearman: float
    mantel_statistic: float
    mantel_p_value: float
    mantel_method: str
    permutations: int
    cophenetic_pearson: float
    cophenetic_spearman: float
    cut_levels: np.ndarray
    fowlkes_mallows: np.ndarray
    expected_fowlkes_mallows: np.ndarray
    pairs: np.ndarray
    pair_ranks: np.ndarray
    order_a: np.ndarray
    order_b: np.ndarray
    crossings: int
    crossings_before: int
    neighbour_overlap: np.ndarray = field(default_factory=lambda: np.zeros(0))
    seconds: dict[str, float] = field(default_factory=dict)

    def summary(self) -> dict:
        """The scalar measures, JSON-ready."""
        return {
            "a": self.a, "b": self.b, "classes": int(len(self.order_a)),
            "spearman": self.spearman,
            "mantel": {"statistic": self.mantel_statistic, "p_value": self.mantel_p_value,
                       "method": self.mantel_method, "permutations": self.permutations},
            "cophenetic_correlation": {"pearson": self.cophenetic_pearson,
                                       "spearman": self.cophenetic_spearman},
            "fowlkes_mallows_mean": float(np.mean(self.fowlkes_mallows)),
            "tanglegram_crossings": {"before_untangling": self.crossings_before,
                                     "after_untangling": self.crossings},
            "mean_neighbour_overlap": float(np.mean(self.neighbour_overlap))
            if len(self.neighbour_overlap) else None,
        }


def check_pair(a: Relation, b: Relation) -> None:
    """Both relations cover the same number of classes, with well-formed arrays."""
    for relation in (a, b):
        count = relation.num_classes
        if relation.distance.shape != (count, count) or relation.linkage.shape != (count - 1, 4):
            raise ClassmapError(
                f"source {relation.name!r} has a {relation.distance.shape} matrix and a tree of "
                f"{relation.linkage.shape[0] + 1} leaves; give a square matrix and its tree"
            )
    if a.num_classes != b.num_classes:
        raise ClassmapError(
            f"sources cover {a.num_classes} and {b.num_classes} classes; compare sources over "
            "the same class set (e.g. two ImageNet-1k models)"
        )
    if a.num_classes < 3:
        raise ClassmapError("comparing sources needs at least 3 classes")


def mantel(
    a: np.ndarray, b: np.ndarray, method: str = "pearson",
    permutations: int = DEFAULT_PERMUTATIONS, seed: int = 0,
) -> tuple[float, float]:
    """scikit-bio's Mantel test of two distance matrices: ``(statistic, p_value)``."""
    from skbio.stats.distance import mantel as skbio_mantel

    statistic, p_value, _ = skbio_mantel(
        _hollow(a), _hollow(b), method=method, permutations=permutations, seed=seed,
        strict=True,
    )
    return float(statistic), float(p_value)


def _hollow(matrix: np.ndarray) -> np.ndarray:
    out = np.array(matrix, dtype=np.float64, copy=True)
    out = (out + out.T) / 2  # float32 round-off can leave it barely asymmetric
    np.fill_diagonal(out, 0.0)
    return out


def cophenetic_correlations(a: np.ndarray, b: np.ndarray) -> tuple[float, float]:
    """Pearson's and Spearman's correlation of two trees' cophenetic distances."""
    ca, cb = hierarchy.cophenet(a), hierarchy.cophenet(b)
    from scipy import stats  # lazy: scipy.stats costs a fresh server 0.5–5 s (see wordnet_for)

    return float(stats.pearsonr(ca, cb).statistic), float(stats.spearmanr(ca, cb).statistic)


def cut_levels(num_classes: int, most: int = MAX_CUT_LEVELS) -> np.ndarray:
    """k = 2 … C − 1, thinned to at most ``most`` levels (denser at small k)."""
    top = num_classes - 1
    if top - 1 <= most:
        return np.arange(2, top + 1)
    levels = np.unique(np.round(np.geomspace(2, top, most)).astype(int))
    return levels


def fowlkes_mallows_curve(
    a: np.ndarray, b: np.ndarray, levels: np.ndarray
) -> tuple[np.ndarray, np.ndarray]:
    """``(B_k, E[B_k])`` for each k in ``levels``: sklearn's Fowlkes–Mallows index of the
    two trees cut into k clusters, and its expectation for independent partitions of the
    same cluster sizes (Fowlkes & Mallows 1983, eq. for E(B_k))."""
    from sklearn.metrics import fowlkes_mallows_score

    cuts_a = hierarchy.cut_tree(a, n_clusters=levels)
    cuts_b = hierarchy.cut_tree(b, n_clusters=levels)
    count = cuts_a.shape[0]
    n_pairs = count * (count - 1) / 2
    scores, expected = [], []
    for k in range(len(levels)):
        scores.append(fowlkes_mallows_score(cuts_a[:, k], cuts_b[:, k]))
        p = _same_cluster_pairs(cuts_a[:, k])
        q = _same_cluster_pairs(cuts_b[:, k])
        expected.append(np.sqrt(p * q) / n_pairs)
    return np.asarray(scores), np.asarray(expected)


def _same_cluster_pairs(labels: np.ndarray) -> float:
    sizes = np.bincount(labels).astype(np.float64)
    return float((sizes * (sizes - 1) / 2).sum())


def disagreeing_pairs(
    a: np.ndarray, b: np.ndarray, top: int = DEFAULT_TOP_PAIRS
) -> tuple[np.ndarray, np.ndarray]:
    """The ``top`` pairs whose distance ranks differ most: ``(pairs [P, 2], ranks [P, 2])``.

    Ranks are average ranks of the condensed distances scaled to [0, 1] (0 = the closest
    pair); ties in the difference go to the earlier pair.
    """
    ra, rb = _rank_fraction(a), _rank_fraction(b)
    gap = np.abs(ra - rb)
    top = min(top, len(gap))
    chosen = np.argsort(-gap, kind="stable")[:top]
    count = int(round((1 + np.sqrt(1 + 8 * len(a))) / 2))
    rows, cols = np.triu_indices(count, k=1)
    pairs = np.stack([rows[chosen], cols[chosen]], axis=1)
    return pairs, np.stack([ra[chosen], rb[chosen]], axis=1)


def _rank_fraction(condensed: np.ndarray) -> np.ndarray:
    from scipy import stats

    ranks = stats.rankdata(condensed)
    return (ranks - 1) / max(len(condensed) - 1, 1)


def neighbour_overlap(a: np.ndarray, b: np.ndarray, k: int = DEFAULT_NEIGHBOURS) -> np.ndarray:
    """``[C]``: Jaccard overlap of each class's ``k`` nearest classes (self excluded, ties
    by class index) under distance matrices ``a`` and ``b``."""
    count = a.shape[0]
    k = min(k, count - 1)
    sets = []
    for matrix in (a, b):
        masked = np.array(matrix, dtype=np.float64, copy=True)
        np.fill_diagonal(masked, np.inf)
        sets.append(np.argsort(masked, axis=1, kind="stable")[:, :k])
    out = np.empty(count)
    for c in range(count):
        shared = len(np.intersect1d(sets[0][c], sets[1][c]))
        out[c] = shared / (2 * k - shared)
    return out


def untangle(a: np.ndarray, b: np.ndarray) -> tuple[np.ndarray, np.ndarray]:
    """Leaf orders for a tanglegram: ``a``'s dendrogram order, and ``b``'s with every
    internal node's two subtrees turned so that the one whose leaves sit higher in
    ``a`` (smaller mean position) comes first — one top-down barycentre pass."""
    order_a = hierarchy.leaves_list(a)
    count = len(order_a)
    position = np.empty(count, dtype=np.float64)
    position[order_a] = np.arange(count)
    total = np.concatenate([position, np.zeros(count - 1)])
    size = np.concatenate([np.ones(count), b[:, 3]])
    children = b[:, :2].astype(np.int64)
    for r, (x, y) in enumerate(children):
        total[count + r] = total[x] + total[y]
    order: list[int] = []
    stack = [2 * count - 2]
    while stack:
        node = stack.pop()
        if node < count:
            order.append(node)
            continue
        x, y = children[node - count]
        if total[x] / size[x] > total[y] / size[y]:
            x, y = y, x
        stack.extend([y, x])  # x is visited first
    return order_a, np.asarray(order, dtype=np.int64)


def crossings(order_a: np.ndarray, order_b: np.ndarray) -> int:
    """Crossing links of a tanglegram: pairs of classes in opposite orders (inversions)."""
    position = np.empty(len(order_b), dtype=np.int64)
    position[order_b] = np.arange(len(order_b))
    sequence = position[order_a]
    return _inversions(sequence)


def _inversions(sequence: np.ndarray) -> int:
    """Number of i < j with sequence[i] > sequence[j] (Fenwick tree, O(n log n))."""
    n = len(sequence)
    tree = np.zeros(n + 1, dtype=np.int64)
    count = 0
    for seen, value in enumerate(sequence):
        i, below = int(value) + 1, 0
        while i > 0:
            below += tree[i]
            i -= i & -i
        count += seen - below
        i = int(value) + 1
        while i <= n:
            tree[i] += 1
            i += i & -i
    return int(count)


def compare(
    a: Relation, b: Relation, permutations: int = DEFAULT_PERMUTATIONS,
    method: str = "pearson", top_pairs: int = DEFAULT_TOP_PAIRS, seed: int = 0,
) -> Comparison:
    """Every measure of the module docstring between ``a`` and ``b``."""
    import time

    from scipy import stats

    check_pair(a, b)
    seconds: dict[str, float] = {}
    clock = time.perf_counter()
    ca, cb = a.condensed(), b.condensed()
    rho = float(stats.spearmanr(ca, cb).statistic)
    seconds["spearman"] = time.perf_counter() - clock
    clock = time.perf_counter()
    statistic, p_value = mantel(a.distance, b.distance, method, permutations, seed)
    seconds["mantel"] = time.perf_counter() - clock
    clock = time.perf_counter()
    pearson, spearman = cophenetic_correlations(a.linkage, b.linkage)
    seconds["cophenetic"] = time.perf_counter() - clock
    clock = time.perf_counter()
    levels = cut_levels(a.num_classes)
    bk, expected = fowlkes_mallows_curve(a.linkage, b.linkage, levels)
    seconds["fowlkes_mallows"] = time.perf_counter() - clock
    clock = time.perf_counter()
    pairs, ranks = disagreeing_pairs(ca, cb, top_pairs)
    seconds["pairs"] = time.perf_counter() - clock
    clock = time.perf_counter()
    order_a, order_b = untangle(a.linkage, b.linkage)
    before = crossings(order_a, hierarchy.leaves_list(b.linkage))
    after = crossings(order_a, order_b)
    seconds["tanglegram"] = time.perf_counter() - clock
    clock = time.perf_counter()
    overlap = neighbour_overlap(a.distance, b.distance)
    seconds["neighbour_overlap"] = time.perf_counter() - clock
    return Comparison(
        a.name, b.name, rho, statistic, p_value, method, permutations, pearson, spearman,
        levels, bk, expected, pairs, ranks, order_a, order_b, after, before, overlap, seconds,
    )


def restrict(relation: Relation, keep: np.ndarray | list[int]) -> Relation:
    """``relation`` over the classes ``keep`` (indices, in the order given).

    The distance matrix is the ``[K, K]`` sub-matrix; the tree is the subtree the kept
    leaves induce, with the original merge heights: single linkage on the kept
    classes' cophenetic distances (an ultrametric, which single linkage reproduces
    exactly), so the two sources are compared on their own trees, not on trees rebuilt
    from fewer classes.
    """
    index = np.asarray(keep, dtype=np.int64)
    if len(index) < 3:
        raise ClassmapError("comparing sources needs at least 3 shared classes")
    distance = np.asarray(relation.distance, dtype=np.float64)[np.ix_(index, index)]
    cophenetic = squareform(hierarchy.cophenet(relation.linkage))[np.ix_(index, index)]
    tree = hierarchy.linkage(squareform(cophenetic, checks=False), method="single")
    return Relation(relation.name, distance, np.asarray(tree, dtype=np.float64))


def class_mean_relation(
    name: str, vectors: np.ndarray, labels: np.ndarray, classes: np.ndarray, linkage: str
) -> Relation:
    """A relation from the mean vector of each class's images.

    Parameters
    ----------
    vectors : ``[N, K]`` per-image vectors (image features, Grad-CAM weights)
    labels : ``[N]`` true class of each image (model indices)
    classes : ``[P]`` the model indices to describe, each with at least one image
    linkage : scipy method; ``ward`` runs on the unit-length class means (their
        Euclidean distance is √(2 · cosine distance), so the tree follows cosine)

    Returns
    -------
    Relation whose distance is the cosine distance ``1 − cos`` of the class means
    ``[P, P]`` (in [0, 2]) and whose tree is built on it.
    """
    x = np.asarray(vectors, dtype=np.float64)
    y = np.asarray(labels)
    means = np.stack([x[y == c].mean(axis=0) for c in classes])
    norms = np.linalg.norm(means, axis=1, keepdims=True)
    if np.any(norms == 0):
        raise ClassmapError(f"{name}: a class's mean vector is zero, so it has no direction; "
                            "use another relation for this data set")
    unit = means / norms
    distance = np.clip(1.0 - unit @ unit.T, 0.0, 2.0)
    distance = (distance + distance.T) / 2
    np.fill_diagonal(distance, 0.0)
    if linkage == "ward":
        tree = hierarchy.linkage(unit, method="ward")
    else:
        tree = hierarchy.linkage(squareform(distance, checks=False), method=linkage)
    return Relation(name, distance, np.asarray(tree, dtype=np.float64))
