"""Level-of-detail tiles of the dendrogram-ordered class matrix, without the ``C × C`` matrix.

Tiles in the manner of HiGlass: every tile is ``TILE × TILE`` cells; at level 0 a cell
is one class pair, at level ``L`` a cell is the mean over a ``2^L × 2^L`` block of
pairs (the last block of a row or column may be smaller), so each level aggregates the
one below. The top level (:func:`top_level`) is one tile holding the whole matrix.

A tile is computed on demand from the standardised rows in leaf order:

- cosine: the mean cosine over a block of pairs is the dot product of the mean unit
  rows of the two blocks (``mean_a mean_b cos(a, b) = ā · b̄`` for unit rows), so any
  tile costs ``O(C · D + TILE² · D)`` whatever its level;
- euclidean: the mean distance does not factor, so the region's distances are computed
  in row chunks and block-averaged (``O(region² · D)``; the top level costs one pass
  over all pairs, once, then the tile is cached by the caller).

Cold cosine tiles need not standardise their rows again: :func:`unit_prefix_sums` (the
running sums of the unit rows in leaf order, computed once per analysis) gives every
block's mean unit row as a difference of two prefix rows, so a tile of any level is a
gather and one ``TILE × D × TILE`` product (:func:`prefix_tile`).
"""

from __future__ import annotations

import math

import numpy as np
import torch

from classmap.analysis.errors import ClassmapError
from classmap.analysis.methods.similarity import check_metric, pairwise_scores, standardise_rows

TILE = 256
_CHUNK_ROWS = 1024


def top_level(num_classes: int, tile: int = TILE) -> int:
    """The level whose single tile covers all ``num_classes`` leaves."""
    return max(0, math.ceil(math.log2(max(num_classes, 1) / tile)))


def tile_span(num_classes: int, level: int, index: int, tile: int = TILE) -> tuple[int, int]:
    """Leaf positions ``[start, stop)`` covered by tile ``index`` of ``level`` along one axis."""
    width = tile << level
    return min(index * width, num_classes), min((index + 1) * width, num_classes)


def check_tile(num_classes: int, level: int, row: int, col: int, tile: int = TILE) -> None:
    """Raise ClassmapError unless ``(level, row, col)`` names a tile of the matrix."""
    top = top_level(num_classes, tile)
    count = math.ceil(num_classes / (tile << level)) if 0 <= level <= top else 0
    if not (0 <= level <= top and 0 <= row < count and 0 <= col < count):
        raise ClassmapError(
            f"tile ({level}, {row}, {col}) does not exist for {num_classes} classes; "
            f"levels are 0…{top} and level L has ⌈C / ({tile}·2^L)⌉ tiles per side"
        )


def block_mean_rows(rows: torch.Tensor, block: int) -> torch.Tensor:
    """Means of consecutive ``block``-row groups, shape (⌈n / block⌉, D)."""
    n = rows.shape[0]
    starts = torch.arange(0, n, block, device=rows.device)
    group = torch.arange(n, device=rows.device) // block
    sums = torch.zeros((len(starts), rows.shape[1]), dtype=rows.dtype, device=rows.device)
    sums.index_add_(0, group, rows)
    counts = torch.bincount(group, minlength=len(starts)).to(rows.dtype)
    return sums / counts[:, None]


def pyramid_tile(
    ordered: torch.Tensor, metric: str, level: int, row: int, col: int, tile: int = TILE
) -> np.ndarray:
    """One tile of the level-of-detail pyramid.

    Parameters
    ----------
    ordered : Tensor of shape (C, D) — standardised rows in dendrogram (leaf) order
    metric : ``cosine`` (mean similarity) or ``euclidean`` (mean distance)
    level, row, col : the tile (see :func:`check_tile`)

    Returns
    -------
    ndarray of shape (≤ tile, ≤ tile), float32 — cell (i, j) is the mean over the block of
    class pairs it covers (the diagonal's self-pairs included).
    """
    check_metric(metric)
    c = ordered.shape[0]
    check_tile(c, level, row, col, tile)
    r0, r1 = tile_span(c, level, row, tile)
    c0, c1 = tile_span(c, level, col, tile)
    return block_tile(ordered[r0:r1], ordered[c0:c1], metric, 1 << level)


def block_tile(left: torch.Tensor, right: torch.Tensor, metric: str, block: int) -> np.ndarray:
    """Means of the metric over ``block × block`` squares of pairs (left row, right row).

    Parameters
    ----------
    left : Tensor of shape (R, D); right : Tensor of shape (K, D) — standardised rows

    Returns
    -------
    ndarray of shape (⌈R / block⌉, ⌈K / block⌉), float32
    """
    check_metric(metric)
    left, right = left.to(torch.float64), right.to(torch.float64)
    if metric == "cosine":
        unit_l = left / left.norm(dim=1, keepdim=True)
        unit_r = right / right.norm(dim=1, keepdim=True)
        z = block_mean_rows(unit_l, block) @ block_mean_rows(unit_r, block).T
        return z.clamp_(-1.0, 1.0).cpu().numpy().astype(np.float32)
    return _mean_distances(left, right, block)


def _mean_distances(left: torch.Tensor, right: torch.Tensor, block: int) -> np.ndarray:
    """Mean Euclidean distance over ``block × block`` squares of pairs, in row chunks."""
    right_sq = (right * right).sum(dim=1)
    col_group = torch.arange(right.shape[0], device=right.device) // block
    n_cols = int(col_group[-1]) + 1
    col_counts = torch.bincount(col_group, minlength=n_cols).to(right.dtype)
    n_rows = math.ceil(left.shape[0] / block)
    sums = torch.zeros((n_rows, n_cols), dtype=torch.float64, device=left.device)
    row_counts = torch.zeros(n_rows, dtype=torch.float64, device=left.device)
    step = max(block, (_CHUNK_ROWS // block) * block)
    for start in range(0, left.shape[0], step):
        part = left[start:start + step]
        squared = (part * part).sum(dim=1)[:, None] + right_sq[None, :] - 2.0 * part @ right.T
        distances = squared.clamp_min_(0.0).sqrt_()
        by_col = torch.zeros((len(part), n_cols), dtype=torch.float64, device=left.device)
        by_col.index_add_(1, col_group, distances)
        row_group = (torch.arange(len(part), device=left.device) + start) // block
        sums.index_add_(0, row_group, by_col)
        row_counts.index_add_(0, row_group, torch.ones(len(part), dtype=torch.float64,
                                                        device=left.device))
    means = sums / (row_counts[:, None] * col_counts[None, :])
    return means.cpu().numpy().astype(np.float32)


def unit_prefix_sums(weight: np.ndarray, order: np.ndarray, chunk: int = 4096) -> np.ndarray:
    """Running sums of the unit standardised rows in leaf order.

    Parameters
    ----------
    weight : ndarray of shape (C, D) — the head
    order : ndarray of shape (C,) — leaf order (class index at each position)

    Returns
    -------
    ndarray of shape (C + 1, D), float64 — row ``p`` is the sum of the first ``p`` unit
    rows; a run ``[a, b)`` sums to ``prefix[b] − prefix[a]``.
    """
    prefix = np.zeros((len(order) + 1, weight.shape[1]))
    running = np.zeros(weight.shape[1])
    for start in range(0, len(order), chunk):
        rows = standardise_rows(weight[order[start:start + chunk]]).double()
        rows /= rows.norm(dim=1, keepdim=True)
        part = prefix[start + 1:start + 1 + len(rows)]
        np.cumsum(rows.numpy(), axis=0, out=part)
        part += running
        running = part[-1].copy()
    return prefix


def prefix_block_means(prefix: torch.Tensor, start: int, stop: int, block: int) -> torch.Tensor:
    """Mean unit rows of the ``block``-row groups of positions ``[start, stop)``, from
    :func:`unit_prefix_sums`; shape (⌈(stop − start) / block⌉, D), float64."""
    edges = torch.arange(start, stop, block, device=prefix.device)
    ends = torch.clamp(edges + block, max=stop)
    counts = (ends - edges).to(prefix.dtype)
    return (prefix[ends] - prefix[edges]) / counts[:, None]


def prefix_tile(prefix: torch.Tensor, level: int, row: int, col: int, tile: int = TILE) -> np.ndarray:
    """Cosine tile ``(level, row, col)`` from the unit rows' prefix sums (see
    :func:`pyramid_tile`; same values); ``prefix`` is (C + 1, D) float64.

    Returns
    -------
    ndarray of shape (≤ tile, ≤ tile), float32 — mean cosine over each block of pairs.
    """
    c = prefix.shape[0] - 1
    check_tile(c, level, row, col, tile)
    block = 1 << level
    left = prefix_block_means(prefix, *tile_span(c, level, row, tile), block)
    right = prefix_block_means(prefix, *tile_span(c, level, col, tile), block)
    return (left @ right.T).clamp_(-1.0, 1.0).cpu().numpy().astype(np.float32)


def sampled_scores(weight: np.ndarray, metric: str, sample: int = 1000) -> np.ndarray:
    """The metric among ``sample`` evenly spaced classes of the head ``weight [C, D]``
    (standardised here, row by row), shape (n, n), float32, diagonal included: enough
    for robust colour limits of a matrix too large to hold."""
    c = weight.shape[0]
    picked = standardise_rows(weight[np.linspace(0, c - 1, min(sample, c)).round().astype(np.int64)])
    return pairwise_scores(picked, picked, metric).cpu().numpy().astype(np.float32)
