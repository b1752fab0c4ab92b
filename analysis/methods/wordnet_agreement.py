"""How well a learned class tree agrees with WordNet (METHODS.md §5), and node names.

All trees are scipy linkages ``Z [C − 1, 4]`` (leaves = class indices, node ``C + r``
is row ``r``). The WordNet side is an :class:`~classmap.analysis.wordnet.graph.AncestorTable`
and its distance matrix (:func:`~classmap.analysis.wordnet.graph.wordnet_distances`).

Measures
--------
- **spearman**: over all class pairs, Spearman's ρ between the number of classes under
  the pair's lowest common ancestor in the learned tree and the pair's WordNet
  distance (hop definition of METHODS.md §5, not ImageNet-H's). 1: the tree nests
  classes exactly as WordNet does; ≈ 0: no relation (a random relabelling).
- **nn_wordnet_distance**: the mean WordNet distance from each class to its nearest
  neighbours *in the learned tree* (the other classes of the smallest subtree holding
  it: its sibling subtree), averaged over classes; **baseline_wordnet_distance** is the
  mean over all pairs. A tree that groups like WordNet has the first far below the second.
- **purity** of a subtree: its best Jaccard overlap with the classes under one WordNet
  synset, ``|S ∩ W_h| / |S ∪ W_h|`` (1: the subtree is exactly a WordNet category).
- **node names**: the deepest WordNet ancestor (longest path to the root) shared by at
  least ``min_fraction`` of the subtree's classes, with that fraction.
"""

from __future__ import annotations

from dataclasses import dataclass

import numpy as np
from scipy import sparse
from scipy.cluster import hierarchy
from scipy.spatial.distance import squareform

from classmap.analysis.errors import ClassmapError
from classmap.analysis.wordnet.graph import AncestorTable

DEFAULT_MIN_FRACTION = 0.75
# Sum of subtree sizes the node-membership matrix may hold (chain-like trees are O(C²)).
MAX_MEMBERSHIP_ENTRIES = 50_000_000


def lca_sizes(linkage: np.ndarray) -> np.ndarray:
    """Condensed ``[C(C−1)/2]``: classes under each pair's lowest common ancestor.

    A node's size grows towards the root, so scipy's ``cophenet`` on the linkage with
    sizes as merge heights returns, for each pair, the size at their merge.
    """
    sized = np.array(linkage, dtype=np.float64, copy=True)
    sized[:, 2] = sized[:, 3]
    return hierarchy.cophenet(sized)


def subtree_ranges(linkage: np.ndarray) -> tuple[np.ndarray, np.ndarray, np.ndarray]:
    """Each node's classes as a contiguous range of the dendrogram leaf order.

    Returns ``(order [C], start [2C − 1], size [2C − 1])``: the classes under node
    ``n`` are ``order[start[n] : start[n] + size[n]]`` (leaves are nodes ``0 … C − 1``).
    """
    order = hierarchy.leaves_list(linkage)
    count = len(order)
    start = np.empty(2 * count - 1, dtype=np.int64)
    size = np.ones(2 * count - 1, dtype=np.int64)
    start[order] = np.arange(count)
    for r, (a, b) in enumerate(linkage[:, :2].astype(np.int64)):
        start[count + r] = min(start[a], start[b])
        size[count + r] = size[a] + size[b]
    return order, start, size


def node_membership(linkage: np.ndarray) -> sparse.csr_matrix:
    """[C − 1, C] 0/1: internal node ``r`` (row ``r`` of the linkage) holds class ``c``."""
    order, start, size = subtree_ranges(linkage)
    count = len(order)
    internal_start, internal_size = start[count:], size[count:]
    total = int(internal_size.sum())
    if total > MAX_MEMBERSHIP_ENTRIES:
        raise ClassmapError(
            f"this tree's subtrees hold {total} class memberships (over "
            f"{MAX_MEMBERSHIP_ENTRIES}); use a balanced linkage such as ward or average"
        )
    indptr = np.concatenate([[0], np.cumsum(internal_size)])
    offsets = np.arange(total) - np.repeat(indptr[:-1], internal_size)
    indices = order[np.repeat(internal_start, internal_size) + offsets]
    data = np.ones(total, dtype=np.int32)
    return sparse.csr_matrix((data, indices, indptr), shape=(count - 1, count))


@dataclass(frozen=True)
class NodeNames:
    """WordNet names and purity of the internal nodes (row ``r`` = node ``C + r``).

    name : deepest synset shared by ≥ ``min_fraction`` of the node's classes ``[C − 1]``
    synset : its offset ``[C − 1]``
    fraction : share of the node's classes under it ``[C − 1]``
    purity : best Jaccard overlap of the node with one synset's classes ``[C − 1]``
    purity_synset : the name of that synset ``[C − 1]``
    size : classes under the node ``[C − 1]``
    """

    name: tuple[str, ...]
    synset: tuple[str, ...]
    fraction: np.ndarray
    purity: np.ndarray
    purity_synset: tuple[str, ...]
    size: np.ndarray


def name_nodes(
    linkage: np.ndarray, table: AncestorTable, min_fraction: float = DEFAULT_MIN_FRACTION
) -> NodeNames:
    """Name every internal node of ``linkage`` after WordNet (see the module docstring)."""
    if not 0 < min_fraction <= 1:
        raise ClassmapError(f"min_fraction {min_fraction} is outside (0, 1]; use e.g. 0.75")
    members = table.members
    counts = (node_membership(linkage) @ members).tocoo()
    size = np.asarray(linkage[:, 3], dtype=np.int64)
    per_synset = np.asarray(members.sum(axis=0)).ravel()
    rows, cols, shared = counts.row, counts.col, counts.data.astype(np.float64)
    fraction = shared / size[rows]
    jaccard = shared / (size[rows] + per_synset[cols] - shared)
    nodes = len(size)
    # Name: the deepest synset over the fraction threshold; ties → larger fraction.
    ok = fraction >= min_fraction - 1e-12
    pick = _best_per_row(rows[ok], np.lexsort((fraction[ok], table.depth[cols[ok]])), nodes)
    name_col = np.where(pick >= 0, cols[ok][np.maximum(pick, 0)], -1)
    name_frac = np.where(pick >= 0, fraction[ok][np.maximum(pick, 0)], 0.0)
    # Purity: the best Jaccard; ties → the deeper synset.
    best = _best_per_row(rows, np.lexsort((table.depth[cols], jaccard)), nodes)
    return NodeNames(
        name=tuple(table.names[c] if c >= 0 else "" for c in name_col),
        synset=tuple(table.synsets[c] if c >= 0 else "" for c in name_col),
        fraction=name_frac,
        purity=jaccard[best],
        purity_synset=tuple(table.names[c] for c in cols[best]),
        size=size,
    )


def _best_per_row(rows: np.ndarray, ascending: np.ndarray, nodes: int) -> np.ndarray:
    """Index (into ``rows``) of each row's last entry in the ``ascending`` order; -1 if none."""
    # Rank of each entry in the order; per row the highest rank wins (np.maximum.at is
    # defined for repeated rows, where a fancy-index assignment's winner is not).
    rank = np.full(nodes, -1, dtype=np.int64)
    np.maximum.at(rank, rows[ascending], np.arange(len(ascending), dtype=np.int64))
    return np.where(rank >= 0, ascending[np.maximum(rank, 0)], -1)


@dataclass(frozen=True)
class Agreement:
    """A learned tree against WordNet (see the module docstring for each field).

    spearman : ρ over all class pairs (LCA size vs WordNet distance)
    nn_wordnet_distance : mean WordNet distance to each class's nearest tree neighbours
    baseline_wordnet_distance : mean WordNet distance over all pairs
    nn_distance_per_class : ``[C]``
    mean_purity : mean purity over internal nodes of at least ``min_size`` classes
    pairs : number of class pairs
    """

    spearman: float
    nn_wordnet_distance: float
    baseline_wordnet_distance: float
    nn_distance_per_class: np.ndarray
    mean_purity: float
    pairs: int

    def to_json(self) -> dict:
        return {
            "spearman": self.spearman,
            "nn_wordnet_distance": self.nn_wordnet_distance,
            "baseline_wordnet_distance": self.baseline_wordnet_distance,
            "mean_purity": self.mean_purity,
            "pairs": self.pairs,
        }


def agreement(
    linkage: np.ndarray,
    distances: np.ndarray,
    names: NodeNames | None = None,
    min_size: int = 2,
) -> Agreement:
    """Score ``linkage`` against the WordNet ``distances`` ``[C, C]`` (same class order)."""
    count = distances.shape[0]
    if linkage.shape != (count - 1, 4):
        raise ClassmapError(
            f"tree has {linkage.shape[0] + 1} leaves but the WordNet distances {count} classes; "
            "score a tree over the same class set"
        )
    # Imported here: reading a cached WordNet view (the Classes page) needs this module
    # but not scipy.stats, whose import costs a fresh process 0.5–5 s.
    from scipy import stats

    wordnet = squareform(distances.astype(np.float64), checks=False)
    lca = lca_sizes(linkage)
    rho = float(stats.spearmanr(lca, wordnet).statistic)
    nearest = nearest_in_tree(linkage)
    per_class = np.asarray([distances[c, nearest[c]].mean() for c in range(count)])
    purity = names.purity[names.size >= min_size] if names is not None else np.array([])
    return Agreement(
        spearman=rho,
        nn_wordnet_distance=float(per_class.mean()),
        baseline_wordnet_distance=float(wordnet.mean()),
        nn_distance_per_class=per_class,
        mean_purity=float(purity.mean()) if purity.size else float("nan"),
        pairs=int(wordnet.size),
    )


def nearest_in_tree(linkage: np.ndarray) -> list[np.ndarray]:
    """Each class's nearest tree neighbours: the classes of its sibling subtree."""
    order, start, size = subtree_ranges(linkage)
    count = len(order)
    sibling = np.empty(2 * count - 1, dtype=np.int64)
    for a, b in linkage[:, :2].astype(np.int64):
        sibling[a], sibling[b] = b, a
    return [order[start[sibling[c]] : start[sibling[c]] + size[sibling[c]]] for c in range(count)]
