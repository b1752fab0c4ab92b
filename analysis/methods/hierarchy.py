"""Hierarchical clustering of classes, done right (METHODS.md §1).

Seed 000 passes the square ``C × C`` similarity matrix to scipy's ``linkage``, which
then treats its rows as observation vectors rather than as distances. Here:

- ``ward`` runs on the standardised row vectors themselves (Ward needs Euclidean
  geometry), with fastcluster's memory-saving ``linkage_vector`` (O(C·D) memory);
- ``average`` / ``complete`` / ``single`` run on the condensed distance vector:
  ``1 − cosine`` for the cosine metric, the Euclidean distance for ``euclidean``.

The result is scipy's linkage format ``[C − 1, 4]`` with leaves = class indices, so
every scipy tool (``dendrogram``, ``fcluster``, ``cophenet``) reads it.
"""

from __future__ import annotations

from collections import Counter
from collections.abc import Sequence

import fastcluster
import numpy as np
import torch
from scipy.cluster import hierarchy
from scipy.spatial.distance import squareform

from classmap.analysis.errors import ClassmapError, check_choice
from classmap.analysis.methods.similarity import check_metric, similarity_matrix

LINKAGES = ("ward", "average", "complete", "single")
DENSE_WARD_LIMIT = 5000


def check_linkage(method: str) -> str:
    """Return ``method`` if known, else raise naming the valid choices."""
    return check_choice(method, LINKAGES, "linkage")


def linkage_matrix(standardised: torch.Tensor | np.ndarray, metric: str, method: str) -> np.ndarray:
    """Agglomerative clustering of the C classes.

    Parameters
    ----------
    standardised : array of shape (C, D) — row-standardised head weights
    metric : ``cosine`` or ``euclidean`` (ignored by ``ward``, which is Euclidean)
    method : one of :data:`LINKAGES`

    Returns
    -------
    ndarray of shape (C − 1, 4), float64 — scipy linkage format, monotone heights.
    """
    check_metric(metric)
    check_linkage(method)
    vectors = torch.as_tensor(standardised).detach().cpu().numpy().astype(np.float64)
    if method == "ward":
        # Below DENSE_WARD_LIMIT the O(C²)-memory routine is ~6× faster; above it the
        # O(C·D)-memory nearest-neighbour chain keeps 21k-class heads within RAM.
        ward = fastcluster.linkage if len(vectors) <= DENSE_WARD_LIMIT else fastcluster.linkage_vector
        return np.asarray(ward(vectors, method="ward", metric="euclidean"), dtype=np.float64)
    if method == "single" and metric == "euclidean":
        return np.asarray(
            fastcluster.linkage_vector(vectors, method="single", metric="euclidean"),
            dtype=np.float64,
        )
    return np.asarray(
        fastcluster.linkage(condensed_distances(standardised, metric), method=method),
        dtype=np.float64,
    )


def condensed_distances(standardised: torch.Tensor | np.ndarray, metric: str) -> np.ndarray:
    """Condensed distance vector of length C(C−1)/2 (scipy's ``pdist`` layout).

    ``1 − cosine`` for the cosine metric, the Euclidean distance for ``euclidean``.
    """
    scores = similarity_matrix(torch.as_tensor(standardised, dtype=torch.float32), metric)
    distances = 1.0 - scores if metric == "cosine" else scores
    distances = distances.astype(np.float64)
    np.fill_diagonal(distances, 0.0)
    distances = np.maximum(distances, 0.0)
    # Symmetrise: float32 matmul can differ in the last bit between (i, j) and (j, i).
    distances = 0.5 * (distances + distances.T)
    return squareform(distances, checks=False)


def leaf_order(linkage: np.ndarray) -> np.ndarray:
    """Class indices in dendrogram order, shape (C,)."""
    return hierarchy.leaves_list(linkage).astype(np.int64)


def cut_clusters(linkage: np.ndarray, num_clusters: int) -> np.ndarray:
    """Cluster label in ``[0, k)`` of every class when the tree is cut into ``k`` clusters.

    Labels are numbered in dendrogram (leaf) order so colours follow the tree.

    Returns
    -------
    ndarray of shape (C,), int64
    """
    num_leaves = linkage.shape[0] + 1
    if not 1 <= num_clusters <= num_leaves:
        raise ClassmapError(
            f"cannot cut {num_leaves} classes into {num_clusters} clusters; "
            f"choose 1 ≤ k ≤ {num_leaves}"
        )
    raw = hierarchy.cut_tree(linkage, n_clusters=num_clusters).reshape(-1)
    order = leaf_order(linkage)
    relabel: dict[int, int] = {}
    for leaf in order:
        relabel.setdefault(int(raw[leaf]), len(relabel))
    return np.array([relabel[int(label)] for label in raw], dtype=np.int64)


def subtree_leaves(linkage: np.ndarray, node: int) -> np.ndarray:
    """Class indices under ``node`` (scipy numbering: leaves 0…C−1, merges C…2C−2)."""
    num_leaves = linkage.shape[0] + 1
    if not 0 <= node < 2 * num_leaves - 1:
        raise ClassmapError(f"tree node {node} does not exist; nodes are 0…{2 * num_leaves - 2}")
    stack, leaves = [node], []
    while stack:
        current = stack.pop()
        if current < num_leaves:
            leaves.append(current)
        else:
            row = linkage[current - num_leaves]
            stack.extend((int(row[1]), int(row[0])))
    return np.array(sorted(leaves), dtype=np.int64)


def to_newick(linkage: np.ndarray, labels: Sequence[str]) -> str:
    """The tree in Newick format with branch lengths (height differences).

    Labels are always single-quoted, with ``'`` doubled inside, so commas, colons,
    parentheses and spaces in class names survive (Newick's quoting rule). Leaf labels
    are made unique first (:func:`unique_leaf_labels`): tree tools refuse repeated names.
    """
    num_leaves = linkage.shape[0] + 1
    if len(labels) != num_leaves:
        raise ValueError(f"{len(labels)} labels for a tree of {num_leaves} leaves")
    labels = unique_leaf_labels(labels)
    heights = np.concatenate([np.zeros(num_leaves), linkage[:, 2]])
    parts: dict[int, str] = {}
    # Merges are stored bottom-up, so children are always written before parents;
    # iterative, so a 21k-leaf chain cannot hit Python's recursion limit.
    for row_index, row in enumerate(linkage):
        node = num_leaves + row_index
        children = []
        for child in (int(row[0]), int(row[1])):
            text = parts.pop(child) if child >= num_leaves else quote_newick_label(labels[child])
            length = max(heights[node] - heights[child], 0.0)
            children.append(f"{text}:{length:.6g}")
        parts[node] = f"({','.join(children)})"
    root = num_leaves * 2 - 2
    return parts[root] + ";\n"


def unique_leaf_labels(labels: Sequence[str]) -> list[str]:
    """``labels`` with every name that several leaves share suffixed by the leaf's class
    index: ImageNet's two "crane" classes become ``crane #134`` and ``crane #517`` (the
    index is ``classes.csv``'s). Unique names are kept as they are; a suffixed name that
    still collides with another label gets the index again until all are unique.
    """
    result = [str(label) for label in labels]
    counts = Counter(result)
    result = [f"{label} #{i}" if counts[label] > 1 else label for i, label in enumerate(result)]
    while len(set(result)) < len(result):
        counts = Counter(result)
        result = [f"{label} #{i}" if counts[label] > 1 else label
                  for i, label in enumerate(result)]
    return result


def quote_newick_label(label: str) -> str:
    """``label`` as a quoted Newick label (``'`` doubled)."""
    return "'" + str(label).replace("'", "''") + "'"
