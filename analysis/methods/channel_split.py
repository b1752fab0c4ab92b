"""The recursive channel split of one class's weights (seed 001's "internal split").

A node is a set of channels (feature indices) of one class row ``w = W[k]``. To split
a node, subtract its mean weight and divide on sign: channels with
``w_j − mean ≥ 0`` form the positive child, the others the negative child. A node
with fewer than ``min_size`` channels (the seed uses 20) is not split, nor is one
whose channels all fall on one side (a constant row), which would recurse forever.

Modes (registry :data:`SPLIT_MODES`):

- ``chains`` (default, the seed notebook): the root splits into both children, then
  only the positive child of the positive branch and the negative child of the
  negative branch are extended — two chains ``+ ++ +++ …`` and ``− −− −−− …``;
- ``full`` (the seed's figure): every node that can split does — a binary tree.

The terminal node of the positive chain holds the class's most discriminative
channels; the terminal node of the negative chain its most confusing ones. Both modes
share these chains, so both report the same terminal nodes.

Means are taken in float64 over the original weights of each node's channels; the
seed re-centres the parent's already-centred float32 values, which differs only in
rounding for channels within an ulp of a node's mean.
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import Any

import numpy as np

from classmap.analysis.errors import ClassmapError, check_choice

DEFAULT_MIN_SIZE = 20
DEFAULT_MODE = "chains"
SPLIT_MODES: dict[str, str] = {
    "chains": "extend only the positive child of the positive branch and the negative child "
              "of the negative branch (seed notebook)",
    "full": "split every node that can be split (seed figure)",
}
ROOT_LABEL = "all"

# Why a node has no children (``SplitTree.stop``).
SPLIT = "split"
BELOW_MIN_SIZE = "below min size"
ONE_SIDED = "all channels on one side of the mean"


def check_split_mode(mode: str) -> str:
    """Return ``mode`` if known, else raise naming the valid choices."""
    return check_choice(mode, SPLIT_MODES, "split mode")


def check_min_size(min_size: int) -> int:
    """Return ``min_size`` if it is an integer ≥ 2, else raise."""
    if isinstance(min_size, bool) or not isinstance(min_size, (int, np.integer)) or min_size < 2:
        raise ClassmapError(
            f"split min size {min_size!r} is invalid; give an integer ≥ 2 "
            f"(the seed uses {DEFAULT_MIN_SIZE})"
        )
    return int(min_size)


@dataclass(frozen=True, eq=False)
class SplitTree:
    """The split of one class row as parallel arrays, one entry per node (root = 0).

    Nodes are in depth-first order, positive child before negative child.

    Attributes
    ----------
    class_index : the class row that was split
    mode : ``chains`` or ``full``
    min_size : nodes with fewer channels were not split
    parent : ndarray of shape (N,), int64 — parent node id, −1 for the root
    label : tuple of N str — ``"all"`` for the root, else the sign path (``"+"``, ``"+-"`` …)
    depth : ndarray of shape (N,), int64 — 0 for the root
    size : ndarray of shape (N,), int64 — number of channels
    mean : ndarray of shape (N,), float64 — mean weight of the node's channels
    channels : tuple of N ndarrays, int64, ascending — the node's channel indices
    stop : tuple of N str — ``"split"`` or why the node has no children
    """

    class_index: int
    mode: str
    min_size: int
    parent: np.ndarray
    label: tuple[str, ...]
    depth: np.ndarray
    size: np.ndarray
    mean: np.ndarray
    channels: tuple[np.ndarray, ...]
    stop: tuple[str, ...]

    @property
    def num_nodes(self) -> int:
        return len(self.label)

    @property
    def node_id(self) -> np.ndarray:
        """ndarray of shape (N,), int64 — 0 … N−1."""
        return np.arange(self.num_nodes, dtype=np.int64)

    @property
    def terminal_positive(self) -> int:
        """Node id at the end of the positive chain (``+``, ``++`` …); the root if unsplit."""
        return self._chain_end("+")

    @property
    def terminal_negative(self) -> int:
        """Node id at the end of the negative chain (``-``, ``--`` …); the root if unsplit."""
        return self._chain_end("-")

    @property
    def discriminative_channels(self) -> np.ndarray:
        """Channels of the positive chain's terminal node, int64 ascending."""
        return self.channels[self.terminal_positive]

    @property
    def confusing_channels(self) -> np.ndarray:
        """Channels of the negative chain's terminal node, int64 ascending."""
        return self.channels[self.terminal_negative]

    def chain(self, sign: str) -> list[int]:
        """Node ids of the chain of ``sign`` (``"+"`` or ``"-"``), root first."""
        if sign not in ("+", "-"):
            raise ClassmapError(f"unknown chain sign {sign!r}; choose '+' or '-'")
        index = {label: node for node, label in enumerate(self.label)}
        nodes = [0]
        path = sign
        while path in index:
            nodes.append(index[path])
            path += sign
        return nodes

    def _chain_end(self, sign: str) -> int:
        return self.chain(sign)[-1]

    def to_icicle(self, class_name: str | None = None) -> dict[str, list[Any]]:
        """Columns for a plotly icicle/sunburst (no plotly import here).

        Returns a dict of lists, one entry per node: ``ids`` (str node ids), ``parents``
        (``""`` for the root), ``labels`` (sign path, or ``class_name`` for the root),
        ``values`` (channel counts; ``branchvalues="total"`` fits in chains mode too,
        where a node's children hold fewer channels than the node), ``mean``, ``stop``.
        """
        labels = list(self.label)
        if class_name is not None:
            labels[0] = class_name
        return {
            "ids": [str(i) for i in range(self.num_nodes)],
            "parents": ["" if p < 0 else str(int(p)) for p in self.parent],
            "labels": labels,
            "values": self.size.tolist(),
            "mean": self.mean.tolist(),
            "stop": list(self.stop),
        }


def split_class(
    row: np.ndarray,
    *,
    mode: str = DEFAULT_MODE,
    min_size: int = DEFAULT_MIN_SIZE,
    class_index: int = 0,
) -> SplitTree:
    """Recursively split the channels of one class row (see the module doc).

    Parameters
    ----------
    row : array of shape (D,), finite — the class's weights ``W[k]``
    mode : ``chains`` (default) or ``full``
    min_size : nodes with fewer channels are not split (default 20)
    class_index : recorded in the result

    Returns
    -------
    SplitTree with at most 2·D − 1 nodes.
    """
    check_split_mode(mode)
    min_size = check_min_size(min_size)
    weights = np.asarray(row, dtype=np.float64)
    if weights.ndim != 1 or weights.size == 0:
        raise ClassmapError(
            f"a class row must be a non-empty vector, got shape {tuple(weights.shape)}; "
            "pass W[k] of the head"
        )
    if not np.isfinite(weights).all():
        raise ClassmapError(
            f"class {class_index} has NaN or Inf weights; re-export the head from a healthy model"
        )
    parents: list[int] = []
    labels: list[str] = []
    channel_sets: list[np.ndarray] = []
    means: list[float] = []
    stops: list[str] = []
    # Iterative depth-first walk: a skewed row can chain as deep as D, past Python's
    # recursion limit. Each stack entry is (channels, parent id, label); the negative
    # child is pushed first so the positive child is visited first.
    stack: list[tuple[np.ndarray, int, str]] = [(np.arange(weights.size), -1, ROOT_LABEL)]
    while stack:
        channels, parent, label = stack.pop()
        node = len(labels)
        values = weights[channels]
        mean = float(values.mean())
        parents.append(parent)
        labels.append(label)
        channel_sets.append(channels)
        means.append(mean)
        if channels.size < min_size:
            stops.append(BELOW_MIN_SIZE)
            continue
        upper = values - mean >= 0
        if upper.all() or not upper.any():
            stops.append(ONE_SIDED)
            continue
        stops.append(SPLIT)
        children = _children_to_extend(label, mode)
        prefix = "" if label == ROOT_LABEL else label
        if "-" in children:
            stack.append((channels[~upper], node, prefix + "-"))
        if "+" in children:
            stack.append((channels[upper], node, prefix + "+"))
    return SplitTree(
        class_index=int(class_index),
        mode=mode,
        min_size=min_size,
        parent=np.asarray(parents, dtype=np.int64),
        label=tuple(labels),
        depth=np.asarray([0 if lab == ROOT_LABEL else len(lab) for lab in labels], dtype=np.int64),
        size=np.asarray([c.size for c in channel_sets], dtype=np.int64),
        mean=np.asarray(means, dtype=np.float64),
        channels=tuple(c.astype(np.int64) for c in channel_sets),
        stop=tuple(stops),
    )


def split_head_class(
    weight: np.ndarray,
    class_index: int,
    *,
    mode: str = DEFAULT_MODE,
    min_size: int = DEFAULT_MIN_SIZE,
) -> SplitTree:
    """:func:`split_class` of row ``class_index`` of a head matrix ``weight`` (C, D)."""
    w = np.asarray(weight)
    if w.ndim != 2:
        raise ClassmapError(
            f"head weight must be a matrix [classes, features], got shape {tuple(w.shape)}; "
            "pass the classifier head's weight"
        )
    if isinstance(class_index, bool) or not isinstance(class_index, (int, np.integer)) or not (
        0 <= class_index < w.shape[0]
    ):
        raise ClassmapError(
            f"class index {class_index!r} is out of range; choose 0 … {w.shape[0] - 1}"
        )
    return split_class(w[class_index], mode=mode, min_size=min_size, class_index=int(class_index))


def _children_to_extend(label: str, mode: str) -> str:
    """Which children of a splittable node get created: ``"+-"``, ``"+"`` or ``"-"``."""
    if mode == "full" or label == ROOT_LABEL:
        return "+-"
    # chains: a node on the positive chain only grows positive children, and so on.
    return label[-1]
