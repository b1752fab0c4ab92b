"""Class similarity from confidence scores (seed 003, METHODS.md §4): arrays in, arrays out.

Input: the softmax vector of **every** held-out image (the seed's code kept only
the last test batch — a bug; extraction lives in ``analysis/activations.py``) and the
images' true labels.

- For each true class c, the mean softmax over its images is a distribution ``p_c``
  over the C classes (:func:`class_mean_softmax`).
- Jensen–Shannon divergence, base 2, in [0, 1], between every pair of rows
  (:func:`js_divergence_matrix`). ``scipy.spatial.distance.jensenshannon`` returns
  its square root (a metric); this module works with the divergence itself, as
  METHODS.md states.
- Classes are clustered by k-means on the rows of the divergence matrix, as the seed
  does (:func:`cluster_classes_kmeans`), and hierarchically on the condensed
  divergence (:func:`js_linkage`) — never the square matrix passed as observations.
  Ward is refused: it assumes Euclidean distances, which the divergence is not.
- A t-SNE of the images' softmax vectors (:func:`tsne_softmax`) and the confusion
  matrix (:func:`confusion`) go on the same page.
"""

from __future__ import annotations

from dataclasses import dataclass

import numpy as np
from scipy.cluster import hierarchy
from scipy.spatial.distance import squareform
from sklearn.cluster import KMeans
from sklearn.manifold import TSNE

from classmap.analysis.errors import ClassmapError
from classmap.analysis.methods.representations import check_labels, check_vectors, relabel_by_first_appearance

JS_LINKAGES = ("average", "complete", "single", "weighted")
KMEANS_N_INIT = 10
# A softmax row may drift from 1 by float32 rounding; beyond this it is not a softmax.
SOFTMAX_SUM_TOLERANCE = 1e-3
# Elements of the (rows, C, C) temporary in one chunk of the JS computation (~64 MB).
_JS_CHUNK_ELEMENTS = 1 << 23


@dataclass(frozen=True)
class ClassCoverage:
    """How many images each class has, and what that means for its mean softmax row.

    counts : ndarray of shape (C,), int64
    status : one line per class — ``"ok"`` or ``"no images: row is NaN"``
    """

    counts: np.ndarray
    status: tuple[str, ...]


def count_class_images(labels: np.ndarray, num_classes: int) -> ClassCoverage:
    """Images per true class; labels of shape (N,) in ``[0, C)``."""
    classes = check_labels(labels, None, num_classes)
    counts = np.bincount(classes, minlength=num_classes).astype(np.int64)
    status = tuple("ok" if count else "no images: row is NaN" for count in counts)
    return ClassCoverage(counts=counts, status=status)


def class_mean_softmax(softmax: np.ndarray, labels: np.ndarray, num_classes: int) -> np.ndarray:
    """Mean softmax vector of the images of each true class.

    Parameters
    ----------
    softmax : array of shape (N, C) — rows non-negative, summing to 1 (± 1e-3)
    labels : array of shape (N,) — true class of each image, in ``[0, C)``
    num_classes : C (must equal ``softmax.shape[1]``)

    Returns
    -------
    ndarray of shape (C, C), float64 — row c is the mean over the images of class c;
    a class with no image has a row of NaN (see :func:`count_class_images` for the
    per-class status).
    """
    scores = check_softmax(softmax)
    classes = check_labels(labels, scores.shape[0], num_classes)
    if scores.shape[1] != num_classes:
        raise ClassmapError(
            f"softmax has {scores.shape[1]} columns but num_classes is {num_classes}; "
            "pass the scores over all C classes"
        )
    sums = np.zeros((num_classes, num_classes))
    np.add.at(sums, classes, scores)
    counts = np.bincount(classes, minlength=num_classes)
    with np.errstate(invalid="ignore", divide="ignore"):
        means = sums / counts[:, None]
    means[counts == 0] = np.nan
    return means


def js_divergence_matrix(p: np.ndarray) -> np.ndarray:
    """Jensen–Shannon divergence (base 2) between every pair of rows.

    Parameters
    ----------
    p : array of shape (R, C) — each row a distribution (non-negative, positive sum;
        rows are renormalised to sum 1, as scipy does). A row that is entirely NaN
        (a class with no images) gives NaN in its row and column.

    Returns
    -------
    ndarray of shape (R, R), float64 — symmetric, zero diagonal, values in [0, 1];
    equals ``scipy.spatial.distance.jensenshannon(p_a, p_b, base=2) ** 2``.

    Notes
    -----
    ``JS(a, b) = H(m) − (H(a) + H(b)) / 2`` with ``m = (a + b) / 2`` and H the Shannon
    entropy in bits; the (rows, R, C) temporary is built in row chunks.
    """
    rows = np.asarray(p)
    if rows.ndim != 2 or rows.shape[0] == 0 or rows.shape[1] == 0:
        raise ClassmapError(
            f"distributions have shape {rows.shape}; pass a 2-D array, one distribution per row"
        )
    if rows.dtype.kind not in "iuf":
        raise ClassmapError(f"distributions have dtype {rows.dtype}; pass real numbers")
    rows = rows.astype(np.float64)
    missing = np.isnan(rows).all(axis=1)
    present = rows[~missing]
    if not np.all(np.isfinite(present)):
        raise ClassmapError(
            "distributions contain NaN or infinite values outside whole-NaN rows; "
            "check the softmax scores"
        )
    if present.size and present.min() < 0:
        raise ClassmapError(
            f"distributions have negative entries (min {present.min():.3g}); "
            "pass probabilities (softmax), not logits"
        )
    totals = present.sum(axis=1, keepdims=True)
    if np.any(totals <= 0):
        raise ClassmapError("a distribution sums to 0; every row needs positive mass")
    present = present / totals

    count = len(present)
    entropy = _entropy_bits(present)  # (R',)
    js = np.zeros((count, count))
    chunk = max(1, _JS_CHUNK_ELEMENTS // max(count * present.shape[1], 1))
    for start in range(0, count, chunk):
        block = present[start : start + chunk]
        middle = 0.5 * (block[:, None, :] + present[None, :, :])  # (b, R', C)
        js[start : start + chunk] = _entropy_bits(middle) - 0.5 * (
            entropy[start : start + chunk, None] + entropy[None, :]
        )
    # Exact symmetry and diagonal, and rounding kept inside [0, 1].
    js = np.clip(0.5 * (js + js.T), 0.0, 1.0)
    np.fill_diagonal(js, 0.0)

    full = np.full((len(rows), len(rows)), np.nan)
    keep = np.flatnonzero(~missing)
    full[np.ix_(keep, keep)] = js
    return full


def cluster_classes_kmeans(js: np.ndarray, num_clusters: int, *, seed: int = 0) -> np.ndarray:
    """k-means on the rows of the divergence matrix, as seed 003 does.

    Each class is described by its vector of divergences to all classes.

    Parameters
    ----------
    js : array of shape (C, C) — from :func:`js_divergence_matrix`, no NaN
    num_clusters : 1 ≤ k ≤ C
    seed : random state (k-means++, ``n_init=10``)

    Returns
    -------
    ndarray of shape (C,), int64 — cluster ids numbered by first appearance
    (class 0 is in cluster 0).
    """
    matrix = _check_divergence(js)
    _check_int("num_clusters", num_clusters, 1, len(matrix), f"for {len(matrix)} classes")
    _check_int("seed", seed, 0, 2**32 - 1, "")
    raw = KMeans(n_clusters=num_clusters, n_init=KMEANS_N_INIT, random_state=seed).fit_predict(
        matrix
    )
    return relabel_by_first_appearance(raw)


def js_linkage(js: np.ndarray, method: str = "average") -> np.ndarray:
    """Hierarchical clustering of the classes on the condensed JS divergence.

    Parameters
    ----------
    js : array of shape (C, C), C ≥ 2 — symmetric divergence matrix, no NaN
    method : one of :data:`JS_LINKAGES`; ``ward`` (and ``centroid``/``median``) need
        Euclidean distances and are refused

    Returns
    -------
    ndarray of shape (C − 1, 4), float64 — scipy linkage format
    """
    if method not in JS_LINKAGES:
        why = (
            " (it needs Euclidean distances; the JS divergence is not one)"
            if method in ("ward", "centroid", "median")
            else ""
        )
        raise ClassmapError(
            f"linkage {method!r} cannot be used on the JS divergence{why}; "
            f"choose one of {', '.join(JS_LINKAGES)}"
        )
    matrix = _check_divergence(js)
    if len(matrix) < 2:
        raise ClassmapError("a tree needs at least 2 classes; pass a divergence matrix with C ≥ 2")
    condensed = squareform(matrix, checks=False)
    return np.asarray(hierarchy.linkage(condensed, method=method), dtype=np.float64)


def tsne_softmax(softmax: np.ndarray, *, seed: int = 0, perplexity: float = 30.0) -> np.ndarray:
    """2-D t-SNE of the images' softmax vectors (scikit-learn, Euclidean, PCA init).

    Parameters
    ----------
    softmax : array of shape (N, C), N ≥ 3
    seed : random state; the embedding is deterministic for a given seed
    perplexity : clipped to ``(N − 1) / 3`` for small N (scikit-learn needs it < N)

    Returns
    -------
    ndarray of shape (N, 2), float64
    """
    scores = check_softmax(softmax, min_rows=3)
    _check_int("seed", seed, 0, 2**32 - 1, "")
    if not isinstance(perplexity, (int, float, np.floating)) or not perplexity > 0:
        raise ClassmapError(f"perplexity is {perplexity!r}; pass a positive number such as 30")
    used = min(float(perplexity), (len(scores) - 1) / 3.0)
    embedding = TSNE(
        n_components=2, perplexity=used, init="pca", random_state=seed, learning_rate="auto"
    ).fit_transform(scores)
    return np.asarray(embedding, dtype=np.float64)


def confusion(labels: np.ndarray, preds: np.ndarray, num_classes: int) -> np.ndarray:
    """Confusion matrix: rows true class, columns predicted class.

    Parameters
    ----------
    labels, preds : arrays of shape (N,), integers in ``[0, C)``
    num_classes : C

    Returns
    -------
    ndarray of shape (C, C), int64 — entry (i, j) counts images of class i predicted j.
    """
    truth = check_labels(labels, None, num_classes)
    predicted = check_labels(preds, len(truth), num_classes)
    flat = np.bincount(truth * num_classes + predicted, minlength=num_classes * num_classes)
    return flat.reshape(num_classes, num_classes).astype(np.int64)


def check_softmax(softmax: np.ndarray, *, min_rows: int = 1) -> np.ndarray:
    """Validate softmax scores of shape (N, C): finite, non-negative, rows summing to 1."""
    scores = check_vectors(softmax, "softmax", min_rows=min_rows)
    if scores.min() < 0:
        raise ClassmapError(
            f"softmax has negative values (min {scores.min():.3g}); "
            "pass probabilities (apply softmax to the logits)"
        )
    drift = np.abs(scores.sum(axis=1) - 1.0)
    if drift.max() > SOFTMAX_SUM_TOLERANCE:
        raise ClassmapError(
            f"{int((drift > SOFTMAX_SUM_TOLERANCE).sum())} softmax row(s) do not sum to 1 "
            f"(worst off by {drift.max():.3g}); pass probabilities (apply softmax to the logits)"
        )
    return scores


def _entropy_bits(p: np.ndarray) -> np.ndarray:
    """Shannon entropy in bits along the last axis, with 0 · log 0 = 0."""
    logs = np.log2(p, out=np.zeros_like(p), where=p > 0)
    return -np.einsum("...c,...c->...", p, logs)


def _check_divergence(js: np.ndarray) -> np.ndarray:
    matrix = np.asarray(js)
    if matrix.ndim != 2 or matrix.shape[0] != matrix.shape[1] or matrix.shape[0] == 0:
        raise ClassmapError(
            f"divergence matrix has shape {matrix.shape}; pass a square (C, C) matrix "
            "from js_divergence_matrix"
        )
    if matrix.dtype.kind not in "iuf":
        raise ClassmapError(f"divergence matrix has dtype {matrix.dtype}; pass real numbers")
    matrix = matrix.astype(np.float64)
    if not np.all(np.isfinite(matrix)):
        # A class without images has NaN in its whole row (and in every row's column).
        empty = np.isnan(matrix).all(axis=1)
        rows = np.flatnonzero(empty if empty.any() else ~np.isfinite(matrix).all(axis=1))
        shown = ", ".join(str(r) for r in rows[:10]) + (" …" if len(rows) > 10 else "")
        raise ClassmapError(
            f"divergence matrix has NaN for class(es) {shown} (no images?); "
            "drop those classes or add held-out images for them"
        )
    if not np.allclose(matrix, matrix.T, rtol=0.0, atol=1e-9) or np.any(np.diag(matrix) != 0):
        raise ClassmapError(
            "divergence matrix is not symmetric with a zero diagonal; "
            "pass the output of js_divergence_matrix"
        )
    return matrix


def _check_int(name: str, value: int, low: int, high: int, context: str) -> None:
    if isinstance(value, bool) or not isinstance(value, (int, np.integer)):
        raise ClassmapError(f"{name} must be an integer, got {value!r}; pass {low} … {high}")
    if not low <= value <= high:
        where = f" {context}" if context else ""
        raise ClassmapError(f"{name} {value} is out of range{where}; choose {low} … {high}")
