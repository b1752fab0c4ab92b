"""Hierarchical clustering of classes, done right (METHODS.md §1), in bounded memory.

Seed 000 passes the square ``C × C`` similarity matrix to scipy's ``linkage``, which
then treats its rows as observation vectors rather than as distances. Here:

- ``ward`` runs on the Euclidean distances of the standardised row vectors (Ward needs
  Euclidean geometry);
- ``average`` / ``complete`` / ``single`` run on ``1 − cosine`` for the cosine metric,
  the Euclidean distance for ``euclidean``.

Which routine runs is chosen by speed and by the memory it needs against a budget
(``CLASSMAP_MEMORY_BUDGET``, :func:`plan_linkage`):

- ``condensed32`` (``ward`` only) for every head over :data:`FLOAT32_WARD_ABOVE` (5,000)
  classes whose float32 vector fits, and for smaller ones when the float64 vector does not
  fit: the *float32* condensed vector of squared distances (half the memory: 0.89 GiB at
  21,843 classes, 4.7 GiB at 50,000) and an exact Ward nearest-neighbour chain on it
  (:mod:`~classmap.analysis.methods.ward_chain`, which says why no library routine does
  this), with the merges done as its progress. Measured faster than the float64 routine
  above 5,000 classes (``benchmarks/bench_ward32.py``; both vectors are memory-bound, and
  this one is half the size) with the same tree on the planted 21k head (every clade in
  common, heights within 1.3e-7 relative). The caveat: heights are float32-rounded Ward
  distances (≈ 1e-7 relative, not scipy's bits), and where two candidate merges differ by
  less than that rounding (near-ties) the order of those merges may differ from scipy's —
  either tree is then equally right;
- ``condensed``: the condensed distance vector (``C(C−1)/2`` float64, 1.9 GB at 21,843
  classes) filled in row chunks by matrix products, then fastcluster's ``linkage`` on it
  in place (nearest-neighbour chain for Ward, MST for single) — for average, complete and
  single at any size, and for Ward up to 5,000 classes (scipy's heights to the last bit);
- ``vectors``: fastcluster's ``linkage_vector`` on the rows (O(C·D) memory, many times
  slower), only for ``ward`` and ``single`` when neither condensed vector fits;
- otherwise a one-line ClassmapError naming the budget and how to raise it, raised
  before anything large is allocated.

The result is scipy's linkage format ``[C − 1, 4]`` with leaves = class indices, so
every scipy tool (``dendrogram``, ``fcluster``, ``cophenet``) reads it.
"""

from __future__ import annotations

import threading
import time
from collections import Counter
from collections.abc import Callable, Sequence
from dataclasses import dataclass
from typing import Any

import fastcluster
import numpy as np
import torch
from scipy.cluster import hierarchy

from classmap.analysis.errors import ClassmapError, check_choice
from classmap.analysis.methods.similarity import check_metric
from classmap.analysis.methods.ward_chain import SquaredDistances, fill_rows, ward_chain
from classmap.analysis.progress import NullProgress
from classmap.analysis.settings import MEMORY_BUDGET_ENV, memory_budget

LINKAGES = ("ward", "average", "complete", "single")
ROUTINES = ("condensed", "condensed32", "vectors")
DEFAULT_CHUNK_ROWS = 1024
# Above this many classes Ward runs the float32 chain (``condensed32``) even when the
# float64 vector fits: measured faster there (benchmarks/bench_ward32.py — 21,843 × 768:
# 34.5–38.8 s against 41.9–63.5 s, 1.6 GiB against 4.2 GiB peak, the same tree; 5,000:
# 2.3–2.5 s against 2.5–3.8 s). At and below it the float64 routine keeps scipy's heights
# to the last bit for the small heads whose dense matrix is shown, at a cost of ~0.1 s.
FLOAT32_WARD_ABOVE = 5000
# Rough seconds per class pair of fastcluster's linkage on the condensed vector and of
# linkage_vector per pair and feature; only used to move the progress bar while the
# C routine runs (it reports nothing), never to choose a routine.
_SECONDS_PER_PAIR = {"condensed": 3e-8, "vectors": 2.5e-9}


def check_linkage(method: str) -> str:
    """Return ``method`` if known, else raise naming the valid choices."""
    return check_choice(method, LINKAGES, "linkage")


def tree_metric(metric: str, method: str) -> str | None:
    """The metric a ``method`` tree depends on: None for ``ward``, which clusters the
    standardised rows in Euclidean space whatever the metric (so both metrics give the
    same tree), else ``metric``."""
    return None if check_linkage(method) == "ward" else metric


@dataclass(frozen=True)
class LinkagePlan:
    """The clustering routine chosen for a head, and the memory it needs.

    routine : one of :data:`ROUTINES` (see the module docstring)
    bytes_needed : working memory of that routine, in bytes
    budget : the memory budget it was checked against, in bytes
    """

    routine: str
    bytes_needed: int
    budget: int


def condensed_bytes(num_classes: int, num_features: int,
                    chunk_rows: int = DEFAULT_CHUNK_ROWS) -> int:
    """Peak working memory of the ``condensed`` routine: the float64 condensed vector, a
    float64 copy of the rows, three ``chunk_rows × C`` float64 blocks, and the float32 rows
    it was given (the routine keeps them until it returns)."""
    c = num_classes
    return (c * (c - 1) // 2 * 8 + c * num_features * 8 + 3 * min(chunk_rows, c) * c * 8
            + c * num_features * 4)


def condensed32_bytes(num_classes: int, num_features: int) -> int:
    """Peak working memory of the ``condensed32`` routine, the larger of its two phases:
    preparing (the float32 rows it is given and their float64 copy in chunks), then filling
    and merging (the float32 condensed vector, one float32 distance block of ≤ 1024 rows (32 MiB
    at 50,000 classes), two float64 products against a column chunk of ≤ 4,096 rows, and the chain's
    O(C) arrays). The float32 rows are not counted in the second phase: the pipeline drops
    them before the vector fills (:func:`prepare_linkage`); a caller that keeps them holds
    ``C · D · 4`` bytes more."""
    c, d = num_classes, num_features
    rows = fill_rows(c)
    span = min(rows * max(1, 4096 // rows), c)  # SquaredDistances' column chunk
    prepare = c * d * 4 + c * d * 8
    merge = c * (c - 1) // 2 * 4 + rows * c * 4 + 2 * rows * span * 8 + 32 * c * 8
    return max(prepare, merge)


def vectors_bytes(num_classes: int, num_features: int) -> int:
    """Peak working memory of the ``vectors`` routine: the float32 rows, two float64 copies
    of them (ours and fastcluster's) and its O(C) bookkeeping."""
    return num_classes * num_features * 4 + 2 * num_classes * num_features * 8 + 64 * num_classes


def format_bytes(size: int) -> str:
    """``size`` in GiB or MiB, e.g. ``1.9 GiB``."""
    return f"{size / 1024**3:.1f} GiB" if size >= 1024**3 else f"{size / 1024**2:.0f} MiB"


def plan_linkage(
    num_classes: int, num_features: int, method: str, budget: int | None = None,
    *, reserved: int = 0,
) -> LinkagePlan:
    """The fastest routine whose memory, plus ``reserved`` bytes that the caller holds
    throughout (the interpreter, the head), fits ``budget`` (default:
    ``CLASSMAP_MEMORY_BUDGET``). ``bytes_needed`` includes ``reserved``.

    Raises ClassmapError, before any allocation, when none fits.
    """
    check_linkage(method)
    budget = memory_budget() if budget is None else int(budget)
    reserved = int(reserved)
    condensed = reserved + condensed_bytes(num_classes, num_features)
    condensed32 = reserved + condensed32_bytes(num_classes, num_features)
    if method == "ward" and num_classes > FLOAT32_WARD_ABOVE and condensed32 <= budget:
        return LinkagePlan("condensed32", condensed32, budget)  # faster there, and smaller
    if condensed <= budget:
        return LinkagePlan("condensed", condensed, budget)
    if method == "ward" and condensed32 <= budget:
        return LinkagePlan("condensed32", condensed32, budget)
    vectors = reserved + vectors_bytes(num_classes, num_features)
    if method in ("ward", "single") and vectors <= budget:
        return LinkagePlan("vectors", vectors, budget)
    need = vectors if method in ("ward", "single") else condensed
    raise ClassmapError(
        f"{method} linkage of {num_classes} classes × {num_features} features needs "
        f"{format_bytes(need)}"
        + (f" (with {format_bytes(reserved)} for the interpreter and the head)" if reserved
           else "")
        + f", over the memory budget of {format_bytes(budget)}; raise it with "
        f"{MEMORY_BUDGET_ENV}={-(-need // 1024**3)}G"
        + (" or choose --linkage ward" if method not in ("ward", "single") else "")
    )


def linkage_matrix(
    standardised: torch.Tensor | np.ndarray,
    metric: str,
    method: str,
    *,
    budget: int | None = None,
    progress: Any = None,
    chunk_rows: int = DEFAULT_CHUNK_ROWS,
) -> np.ndarray:
    """Agglomerative clustering of the C classes.

    Parameters
    ----------
    standardised : array of shape (C, D) — row-standardised head weights (any device:
        the distance blocks are computed there, the linkage on the CPU)
    metric : ``cosine`` or ``euclidean`` (ignored by ``ward``, which is Euclidean)
    method : one of :data:`LINKAGES`
    budget : memory budget in bytes (default ``CLASSMAP_MEMORY_BUDGET``), see :func:`plan_linkage`
    progress : a :mod:`classmap.analysis.progress` reporter (steps ``distances`` and the linkage)

    Returns
    -------
    ndarray of shape (C − 1, 4), float64 — scipy linkage format, monotone heights.
    """
    return prepare_linkage(standardised, metric, method, budget=budget,
                           chunk_rows=chunk_rows)(progress)


def prepare_linkage(
    standardised: torch.Tensor | np.ndarray,
    metric: str,
    method: str,
    *,
    budget: int | None = None,
    reserved: int = 0,
    chunk_rows: int = DEFAULT_CHUNK_ROWS,
) -> Callable[[Any], np.ndarray]:
    """:func:`linkage_matrix` in two steps: plan (raising before any allocation when nothing
    fits) and take what the routine needs from ``standardised``, then return ``run(progress)``
    that computes the linkage.

    For ``condensed32`` the returned function holds a float64 copy of the rows in chunks
    (:class:`~classmap.analysis.methods.ward_chain.SquaredDistances`) and no reference to
    ``standardised``: a caller that drops its own reference before calling it keeps the rows
    out of memory while the condensed vector (4.7 GiB at 50,000 classes) is resident.
    ``reserved``: bytes the caller holds besides the routine, see :func:`plan_linkage`.
    """
    check_metric(metric)
    check_linkage(method)
    rows = torch.as_tensor(standardised).detach()
    num_classes, num_features = rows.shape
    plan = plan_linkage(num_classes, num_features, method, budget, reserved=reserved)
    distance = "euclidean" if method == "ward" else metric
    if plan.routine == "condensed32":
        source = SquaredDistances(rows)
        del rows

        def run_chain(progress: Any = None) -> np.ndarray:
            progress = progress or NullProgress()
            with progress.step("pairwise distances", total=num_classes) as advance:
                squared = source.fill(on_chunk=advance)
            with progress.step(f"{method} linkage", total=num_classes - 1) as advance:
                return ward_chain(squared, num_classes, on_merges=advance)

        return run_chain

    def run(progress: Any = None) -> np.ndarray:
        progress = progress or NullProgress()
        if plan.routine == "condensed":
            with progress.step("pairwise distances", total=num_classes) as advance:
                condensed = condensed_distances(rows, distance, chunk_rows=chunk_rows,
                                                on_chunk=advance)
            estimate = _SECONDS_PER_PAIR["condensed"] * len(condensed)
            return _with_heartbeat(
                lambda: fastcluster.linkage(condensed, method=method, preserve_input=False),
                progress, f"{method} linkage", estimate,
            )
        return _vector_linkage(rows, distance, method, progress)

    return run


def _vector_linkage(rows: torch.Tensor, distance: str, method: str, progress: Any) -> np.ndarray:
    """fastcluster's ``linkage_vector`` (ward, or single on either metric).

    Single linkage depends only on the order of distances, and on unit rows
    ``1 − cos = ‖a − b‖² / 2``: the cosine tree is the Euclidean tree of the unit rows with
    heights mapped back.
    """
    vectors = rows.cpu().numpy().astype(np.float64)
    if distance == "cosine":
        vectors /= np.linalg.norm(vectors, axis=1, keepdims=True)
    c, d = vectors.shape
    estimate = _SECONDS_PER_PAIR["vectors"] * c * c / 2 * d
    linkage = _with_heartbeat(
        lambda: fastcluster.linkage_vector(vectors, method=method, metric="euclidean"),
        progress, f"{method} linkage (memory-saving)", estimate,
    )
    if distance == "cosine":
        linkage[:, 2] = linkage[:, 2] ** 2 / 2.0
    return linkage


def _with_heartbeat(
    work: Callable[[], np.ndarray], progress: Any, name: str, estimate_s: float,
    ticks: int = 1000, interval: float = 0.25,
) -> np.ndarray:
    """Run ``work`` (a C routine that releases the GIL) in a thread while a progress bar
    advances along ``estimate_s``, held at 99 % until ``work`` returns."""
    result: dict[str, Any] = {}

    def target() -> None:
        try:
            result["value"] = work()
        except BaseException as error:  # noqa: BLE001 - re-raised in the caller's thread
            result["error"] = error

    with progress.step(name, total=ticks) as advance:
        thread = threading.Thread(target=target, name=name, daemon=True)
        started, shown = time.monotonic(), 0
        thread.start()
        while thread.is_alive():
            thread.join(interval)
            due = min(int(ticks * (time.monotonic() - started) / max(estimate_s, 1e-3)),
                      ticks - 1)
            if due > shown:
                advance(due - shown)
                shown = due
        if "error" in result:
            raise result["error"]
        advance(ticks - shown)
    return np.asarray(result["value"], dtype=np.float64)


def condensed_distances(
    standardised: torch.Tensor | np.ndarray,
    metric: str,
    *,
    chunk_rows: int = DEFAULT_CHUNK_ROWS,
    on_chunk: Callable[[int], None] | None = None,
) -> np.ndarray:
    """Condensed distance vector of length C(C−1)/2 (scipy's ``pdist`` layout), float64.

    ``1 − cosine`` for the cosine metric, the Euclidean distance for ``euclidean``,
    computed in float64 blocks of ``chunk_rows × C`` on the rows' device; memory beyond
    the result is ``O(chunk_rows · C)``.
    """
    check_metric(metric)
    rows = torch.as_tensor(standardised).detach().to(torch.float64)
    c = rows.shape[0]
    squares = (rows * rows).sum(dim=1)
    out = np.empty(c * (c - 1) // 2, dtype=np.float64)
    position = 0
    for start in range(0, c, chunk_rows):
        stop = min(start + chunk_rows, c)
        # Only columns right of the block's first row are needed (upper triangle).
        dots = rows[start:stop] @ rows[start:].T
        if metric == "cosine":
            norms = squares.sqrt()
            block = (1.0 - dots / (norms[start:stop, None] * norms[None, start:])).clamp_min_(0.0)
        else:
            block = (squares[start:stop, None] + squares[None, start:] - 2.0 * dots)
            block = block.clamp_min_(0.0).sqrt_()
        block = block.cpu().numpy()
        for offset in range(stop - start):
            row = block[offset, offset + 1:]
            out[position:position + len(row)] = row
            position += len(row)
        if on_chunk is not None:
            on_chunk(stop - start)
    return out


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
