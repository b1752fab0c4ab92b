"""Class similarity from final-layer weights (seed 000, METHODS.md §1).

Rows of the head ``W [C, D]`` are standardised as in the seed
(``(W_i − mean(W_i)) / std(W_i)``, with torch's default unbiased std), then compared
by cosine similarity or Euclidean distance. Pearson correlation of the raw rows *is*
the cosine of standardised rows, so it is not offered as a separate metric.

Because every standardised row has the same norm ``r = sqrt(D − 1)``,
``‖a − b‖² = 2 r² (1 − cos(a, b))``: both metrics give the same neighbour order.

Nearest classes are computed in row chunks, so memory is ``O(chunk · C)``, never
``C × C``; this is what lets a 21k-class head run on a laptop.
"""

from __future__ import annotations

from collections.abc import Callable, Sequence
from dataclasses import dataclass

import numpy as np
import torch

from classmap.analysis.errors import ClassmapError, check_choice

METRICS = ("cosine", "euclidean")
# A metric's scores are similarities (larger = closer) or distances (smaller = closer).
METRIC_KIND = {"cosine": "similarity", "euclidean": "distance"}
DEFAULT_CHUNK_ROWS = 1024


def check_metric(metric: str) -> str:
    """Return ``metric`` if known, else raise naming the valid choices."""
    return check_choice(metric, METRICS, "metric")


def standardise_rows(
    weight: np.ndarray | torch.Tensor, class_names: Sequence[str] | None = None
) -> torch.Tensor:
    """Standardise each row to mean 0 and (unbiased) std 1.

    Parameters
    ----------
    weight : array of shape (C, D)
    class_names : names of the C rows, used to name zero-variance rows in the error.

    Returns
    -------
    Tensor of shape (C, D), float32, on ``weight``'s device.

    Raises
    ------
    ClassmapError if any row has zero variance (it has no direction to compare).
    """
    w = torch.as_tensor(weight, dtype=torch.float32)
    # The mean sums D values: a row near float32's limit (3.4e38) would overflow to
    # inf, then NaN. Standardising is scale-free, so such rows are first divided by
    # their largest |value|; ordinary rows are left bit-for-bit as they were.
    peak = w.abs().amax(dim=1, keepdim=True)
    risky = peak * w.shape[1] > 1e36
    w = torch.where(risky, w / peak.clamp_min(torch.finfo(torch.float32).tiny), w)
    centred = w - w.mean(dim=1, keepdim=True)
    std = centred.std(dim=1, keepdim=True)
    flat = torch.nonzero(std.squeeze(1) <= torch.finfo(torch.float32).tiny).flatten().tolist()
    if flat:
        names = [class_names[i] if class_names is not None else f"class_{i}" for i in flat]
        shown = ", ".join(repr(n) for n in names[:5]) + (" …" if len(names) > 5 else "")
        raise ClassmapError(
            f"{len(flat)} class row(s) have zero variance and cannot be standardised: {shown}; "
            "remove those classes from the head or check the checkpoint"
        )
    return centred / std


def pairwise_scores(
    left: torch.Tensor, right: torch.Tensor, metric: str
) -> torch.Tensor:
    """Scores between standardised rows.

    Parameters
    ----------
    left : Tensor of shape (m, D); right : Tensor of shape (n, D)

    Returns
    -------
    Tensor of shape (m, n): cosine similarity, or Euclidean distance.
    """
    check_metric(metric)
    dots = left @ right.T
    left_sq = (left * left).sum(dim=1, keepdim=True)
    right_sq = (right * right).sum(dim=1)
    if metric == "cosine":
        return dots / torch.sqrt(left_sq * right_sq.unsqueeze(0))
    squared = (left_sq + right_sq.unsqueeze(0) - 2.0 * dots).clamp_min_(0.0)
    return squared.sqrt_()


def similarity_matrix(standardised: torch.Tensor, metric: str) -> np.ndarray:
    """The full ``[C, C]`` float32 matrix of ``metric`` (only for moderate C).

    The diagonal is exactly 1 (cosine) or 0 (Euclidean).
    """
    scores = pairwise_scores(standardised, standardised, metric)
    scores.fill_diagonal_(1.0 if metric == "cosine" else 0.0)
    if metric == "cosine":
        scores.clamp_(-1.0, 1.0)
    return scores.cpu().numpy().astype(np.float32, copy=False)


@dataclass(frozen=True)
class Neighbours:
    """Top-k nearest classes of every class.

    Attributes
    ----------
    index : ndarray of shape (C, k), int64 — neighbour class indices, nearest first
    score : ndarray of shape (C, k), float32 — similarity (cosine) or distance (euclidean)
    metric : the metric used
    """

    index: np.ndarray
    score: np.ndarray
    metric: str


def nearest_classes(
    standardised: torch.Tensor,
    metric: str,
    top_k: int,
    *,
    chunk_rows: int = DEFAULT_CHUNK_ROWS,
    on_chunk: Callable[[int], None] | None = None,
) -> Neighbours:
    """Top-k nearest classes of every class, self excluded, ties broken by class index.

    Parameters
    ----------
    standardised : Tensor of shape (C, D) from :func:`standardise_rows` (any device)
    top_k : 1 ≤ top_k < C
    chunk_rows : rows scored at once; peak memory ≈ ``chunk_rows · C · 4`` bytes × 3
    on_chunk : called with the number of rows finished after each chunk (progress)
    """
    check_metric(metric)
    num_classes = standardised.shape[0]
    if not 1 <= top_k < num_classes:
        raise ClassmapError(
            f"--top-k {top_k} is out of range for {num_classes} classes; "
            f"choose 1 ≤ k ≤ {num_classes - 1}"
        )
    largest = metric == "cosine"
    index = np.empty((num_classes, top_k), dtype=np.int64)
    score = np.empty((num_classes, top_k), dtype=np.float32)
    worst = -torch.inf if largest else torch.inf
    for start in range(0, num_classes, chunk_rows):
        stop = min(start + chunk_rows, num_classes)
        block = pairwise_scores(standardised[start:stop], standardised, metric)
        rows = torch.arange(stop - start, device=block.device)
        block[rows, rows + start] = worst  # exclude self
        chunk_index, chunk_score = _top_k_stable(block, top_k, largest)
        index[start:stop] = chunk_index
        score[start:stop] = chunk_score
        if on_chunk is not None:
            on_chunk(stop - start)
    return Neighbours(index, score, metric)


def _top_k_stable(
    block: torch.Tensor, k: int, largest: bool
) -> tuple[np.ndarray, np.ndarray]:
    """Top-k of each row with ties broken by column index (torch.topk does not promise it).

    torch.topk gives the k best values; any row where more than k columns reach the
    k-th value has a tie at the boundary and is re-sorted stably in full.
    """
    values, columns = torch.topk(block, k, dim=1, largest=largest, sorted=True)
    kth = values[:, -1:]
    reaching = (block >= kth) if largest else (block <= kth)
    boundary_ties = torch.nonzero(reaching.sum(dim=1) > k).flatten()
    values_np = values.cpu().numpy()
    columns_np = columns.cpu().numpy()
    # Within the k found: order by (score, column) — equal scores by column index.
    primary = -values_np if largest else values_np
    order = np.lexsort((columns_np, primary), axis=1)
    columns_np = np.take_along_axis(columns_np, order, axis=1)
    values_np = np.take_along_axis(values_np, order, axis=1)
    for row in boundary_ties.tolist():
        full = block[row].cpu().numpy()
        ranked = np.argsort(-full if largest else full, kind="stable")[:k]
        columns_np[row] = ranked
        values_np[row] = full[ranked]
    return columns_np, values_np.astype(np.float32, copy=False)
