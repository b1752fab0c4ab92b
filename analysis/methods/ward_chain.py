"""Exact Ward linkage on a float32 condensed matrix: half the memory of scipy's/fastcluster's.

Why this module exists: every maintained Ward routine that runs on a condensed distance
matrix takes it in float64 — scipy's ``linkage`` converts ``y`` to float64, fastcluster's
``linkage`` works in C ``double`` (so does its R twin), scikit-learn's ``ward_tree``
calls scipy's ``ward`` on the rows (float64 ``pdist``), and genieclust has no Ward at all.
At 50,000 classes that float64 vector is 9.3 GiB; the only bounded-memory alternative,
fastcluster's ``linkage_vector``, keeps O(C·D) memory but needs over an hour on two
cores. The float32 condensed vector is 4.7 GiB at 50,000 classes, and the algorithm on it
is the one scipy and fastcluster use for Ward: the nearest-neighbour chain (Murtagh 1983;
Müllner 2011, arXiv:1109.2378, §3.2), exact for Ward because Ward's distance is
*reducible* (merging two clusters never brings the result closer to a third than the
nearer of the two).

When it runs (``hierarchy.plan_linkage``): for Ward on every head over 5,000 classes whose
float32 vector fits the memory budget, and on smaller heads when the float64 one does not.
Measured against fastcluster's float64 ``linkage`` (``benchmarks/bench_ward32.py``,
alternating fresh processes, 2 shared cores): at 21,843 × 768 34.5–38.8 s against
41.9–63.5 s with a 1.6 GiB peak against 4.2 GiB, and the same tree (every clade in common,
heights within 1.3e-7 relative, ARI 1 at the planted levels); both loops stream a C²
vector and this one is half the size. Up to 5,000 classes fastcluster's C loop is as fast
or faster and keeps scipy's heights to the last bit, so it stays there.

Memory: :class:`SquaredDistances` takes a float64 copy of the rows in column chunks and no
reference to the rows themselves; its :meth:`~SquaredDistances.fill` frees each chunk once
the blocks have passed it. The pipeline drops its float32 rows before the fill
(``hierarchy.prepare_linkage``), so at the peak the process holds the interpreter, the
head, this vector and O(C) arrays: 50,000 × 768 needs 4.66 GiB for the vector.

How it runs: the vector holds *squared* Ward distances (for singletons the squared
Euclidean distance), updated by Lance–Williams in that form, which needs no square root
and has one subtraction::

    d²(i∪j, k) = ((nᵢ + nₖ) d²(i, k) + (nⱼ + nₖ) d²(j, k) − nₖ d²(i, j)) / (nᵢ + nⱼ + nₖ)

Every chain step gathers one cluster's row of distances to the clusters still active
(one vectorised numpy gather over the condensed layout) and takes its argmin; every merge
computes the merged row in float64 from the two rows and scatters it back as float32.
There are about 2–3·C chain steps and C − 1 merges, each O(active clusters), so the
Python-level loop costs O(C) numpy calls and O(C²) element work in total — the same
order as fastcluster's C loop. Being Python, the loop can be interrupted (Ctrl-C, a
cancelled job) between any two steps, and it reports the merges done as its progress.

Heights are recorded as scipy records Ward's: the Ward distance (the square root of the
stored value). The result is scipy's linkage format: rows sorted by height (stable, so a
merge stays after its children), cluster ids assigned as scipy's ``label`` step does
(leaves 0…C−1, the i-th row creates C + i, smaller id first). Float32 storage rounds each
distance to 7 significant digits: heights agree with scipy's float64 Ward within ~1e-5
relative, and the tree is scipy's except where two candidate merges differ by less than
that rounding (near-ties, where either tree is equally right). Ties are broken toward the
chain's previous cluster, so the chain never cycles.
"""

from __future__ import annotations

from collections.abc import Callable

import numpy as np
import torch

DEFAULT_BLOCK_BYTES = 64 * 1024**2


MAX_BLOCK_ROWS = 1024


def fill_rows(num_classes: int, block_bytes: int = DEFAULT_BLOCK_BYTES) -> int:
    """Rows per distance block: at most 1024, and one ``rows × C`` float64 block at most
    about ``block_bytes`` (167 rows at 50,000 classes)."""
    return max(1, min(num_classes, MAX_BLOCK_ROWS, block_bytes // (8 * max(num_classes, 1))))


def condensed_squared_float32(
    rows: torch.Tensor | np.ndarray,
    *,
    block_rows: int | None = None,
    column_rows: int = 4096,
    on_chunk: Callable[[int], None] | None = None,
) -> np.ndarray:
    """Squared Euclidean distances of the rows, condensed (scipy's ``pdist`` layout), float32.

    ``SquaredDistances(rows, …).fill(on_chunk)``: see :class:`SquaredDistances`. A caller
    that can drop its own reference to ``rows`` should make the :class:`SquaredDistances`,
    drop the rows, then fill, so that the rows are not resident beside the full vector.

    Returns
    -------
    ndarray of shape (C(C−1)/2,), float32
    """
    return SquaredDistances(rows, block_rows=block_rows, column_rows=column_rows).fill(on_chunk)


class SquaredDistances:
    """The rows, ready to fill the float32 condensed vector of their squared distances.

    Made from the rows, it holds a float64 copy of them in column chunks of about
    ``column_rows`` rows (whole blocks) and no reference to ``rows`` itself. :meth:`fill`
    computes the distances in float64 on the rows' device, ``block_rows`` rows at a time
    (default: at most 1024 rows and about 64 MiB) against those chunks, each value rounded
    once to float32 as it is stored, and frees each chunk once the blocks have passed it:
    the copy shrinks while the condensed vector's pages fill, so the peak is the vector plus
    a few blocks. :meth:`fill` runs once.
    """

    def __init__(self, rows: torch.Tensor | np.ndarray, *, block_rows: int | None = None,
                 column_rows: int = 4096) -> None:
        source = torch.as_tensor(rows).detach()
        self.num_classes = c = int(source.shape[0])
        self.block_rows = block_rows or fill_rows(c)
        self.span = self.block_rows * max(1, column_rows // self.block_rows)
        self.chunks: list[torch.Tensor | None] = [
            source[first:first + self.span].to(torch.float64) for first in range(0, c, self.span)
        ]
        self.squares = (torch.cat([(chunk * chunk).sum(dim=1) for chunk in self.chunks])
                        if c else None)

    def fill(self, on_chunk: Callable[[int], None] | None = None) -> np.ndarray:
        """The condensed float32 vector of squared distances; frees the chunks as it goes."""
        c, span, chunks, squares = self.num_classes, self.span, self.chunks, self.squares
        if c and chunks[0] is None:
            raise RuntimeError("SquaredDistances.fill runs once (its rows are freed as it fills)")
        out = np.empty(c * (c - 1) // 2, dtype=np.float32)
        position = 0
        for start in range(0, c, self.block_rows):
            stop = min(start + self.block_rows, c)
            home = start // span
            left = chunks[home][start - home * span:stop - home * span]
            block = np.empty((stop - start, c - start), dtype=np.float32)
            for index in range(home, len(chunks)):
                first = max(index * span, start)
                right = chunks[index][first - index * span:]
                dots = left @ right.T
                dots.mul_(-2.0).add_(squares[start:stop, None]).add_(
                    squares[None, first:first + right.shape[0]]).clamp_min_(0.0)
                block[:, first - start:first - start + right.shape[0]] = dots.to(
                    torch.float32).cpu().numpy()
            for offset in range(stop - start):
                row = block[offset, offset + 1:]
                out[position:position + len(row)] = row
                position += len(row)
            if stop % span == 0 or stop == c:
                chunks[home] = None  # every later block starts past it
            if on_chunk is not None:
                on_chunk(stop - start)
        self.squares = None
        return out


def ward_chain(
    squared: np.ndarray, num_classes: int, on_merges: Callable[[int], None] | None = None,
    report_every: int | None = None,
) -> np.ndarray:
    """Ward linkage of ``num_classes`` points from their squared distances (float32, condensed).

    Parameters
    ----------
    squared : ndarray of shape (C(C−1)/2,), float32 — squared Euclidean distances in
        scipy's condensed layout; **overwritten** (it becomes the working matrix)
    num_classes : C
    on_merges : called with the number of merges done since the last call (progress)
    report_every : merges between two ``on_merges`` calls (default C / 1000)

    Returns
    -------
    ndarray of shape (C − 1, 4), float64 — scipy linkage format, heights non-decreasing.
    """
    n = int(num_classes)
    if squared.dtype != np.float32 or squared.ndim != 1 or len(squared) != n * (n - 1) // 2:
        raise ValueError(f"expected a float32 condensed vector of {n * (n - 1) // 2} values, "
                         f"got {squared.dtype} of shape {squared.shape}")
    if n < 2:
        return np.empty((0, 4), dtype=np.float64)
    report_every = report_every or max(1, n // 1000)
    ids = np.arange(n, dtype=np.int64)
    # d(i, j), i < j, is squared[start[i] + j].
    start = ids * n - ids * (ids + 1) // 2 - ids - 1
    active = ids.copy()              # cluster representatives still active, ascending
    active_start = start.copy()      # start[active]
    active_size = np.ones(n)         # sizes of the active clusters, float64
    size = np.ones(n)                # by representative
    height = np.zeros(n)             # height of the cluster each representative stands for
    merges = np.empty((n - 1, 4))
    chain: list[int] = []
    pending = 0

    def row(x: int) -> tuple[np.ndarray, int]:
        """Squared distances of cluster ``x`` to every active cluster (inf to itself)."""
        p = int(np.searchsorted(active, x))
        values = np.empty(len(active), dtype=np.float32)
        np.take(squared, active_start[:p] + x, out=values[:p])
        np.take(squared, start[x] + active[p + 1:], out=values[p + 1:])
        values[p] = np.inf
        return values, p

    for step in range(n - 1):
        if not chain:
            chain.append(int(active[0]))
        while True:
            x = chain[-1]
            values, _ = row(x)
            y = int(active[int(np.argmin(values))])
            if len(chain) > 1:
                previous = chain[-2]
                if values[int(np.searchsorted(active, previous))] <= values[
                        int(np.searchsorted(active, y))]:
                    y = previous  # a tie goes to the chain's previous cluster: no cycles
                if y == previous:
                    break
            chain.append(y)
        chain.pop()
        chain.pop()
        px = int(np.searchsorted(active, x))
        py = int(np.searchsorted(active, y))
        other, _ = row(y)
        between = float(values[py])  # d²(x, y)
        nx, ny = size[x], size[y]
        total = active_size + (nx + ny)
        merged = ((nx + active_size) * values + (ny + active_size) * other
                  - active_size * between) / total
        # The merged cluster keeps the larger representative (as scipy's nn_chain does).
        keep, drop, pk, pd = (y, x, py, px) if y > x else (x, y, px, py)
        merged32 = merged.astype(np.float32)
        squared[active_start[:pk] + keep] = merged32[:pk]
        squared[start[keep] + active[pk + 1:]] = merged32[pk + 1:]
        low, high = min(x, y), max(x, y)
        level = max(np.sqrt(between), height[x], height[y])  # float32 rounding: stay monotone
        merges[step] = (low, high, level, nx + ny)
        size[keep] = nx + ny
        height[keep] = level
        active_size[pk] = nx + ny
        active = np.delete(active, pd)
        active_start = np.delete(active_start, pd)
        active_size = np.delete(active_size, pd)
        pending += 1
        if on_merges is not None and pending >= report_every:
            on_merges(pending)
            pending = 0
    if on_merges is not None and pending:
        on_merges(pending)
    return scipy_labels(merges, n)


def scipy_labels(merges: np.ndarray, num_leaves: int) -> np.ndarray:
    """Merges by representative (any order, heights monotone along each path) → scipy's
    linkage: sorted by height (stable), the i-th row's cluster numbered ``C + i``, the
    smaller id first, as scipy's ``linkage`` numbers its nearest-neighbour-chain result."""
    order = np.argsort(merges[:, 2], kind="stable")
    result = merges[order].copy()
    parent = np.arange(2 * num_leaves - 1)

    def find(node: int) -> int:
        root = node
        while parent[root] != root:
            root = int(parent[root])
        while parent[node] != root:  # path compression
            parent[node], node = root, int(parent[node])
        return root

    for i in range(num_leaves - 1):
        a, b = find(int(result[i, 0])), find(int(result[i, 1]))
        result[i, 0], result[i, 1] = min(a, b), max(a, b)
        parent[a] = parent[b] = num_leaves + i
    return result
