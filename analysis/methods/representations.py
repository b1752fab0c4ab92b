"""Measures on per-image representations (seed 002, METHODS.md §3): arrays in, arrays out.

Each image of a labelled set has three representations, extracted elsewhere
(``analysis/activations.py``):

- ``grad_weights`` — the Grad-CAM channel weights of the predicted class, ``[N, K]``;
- ``softmax`` — the predicted scores, ``[N, C]``;
- ``features`` — the last feature map averaged over space, ``[N, K]``.

For each representation this module computes the within-class cosine similarity
(the seed's table), a clustering with k = number of classes scored against the true
labels (ARI, NMI, Silhouette), and a PCA projection for the scatter plots.

Choices where METHODS.md is silent (also in ``docs/image-analyses.md``):

- Within-class cosine: all unordered pairs of distinct images of a class. Two
  summaries: ``overall_pairs`` pools every same-class pair (classes with more
  images weigh more) and ``overall_classes`` averages the per-class means. A zero
  vector has no direction: it is left out of the pairs and counted per class.
- Clustering runs on the representation after ``scaling="global"`` by default:
  centre and divide by one scalar (the root-mean-square norm of the centred rows).
  That keeps the geometry — k-means assignments and the Silhouette are the same as
  on the raw vectors — while making the Gaussian mixture's fixed covariance floor
  (``reg_covar``) meaningful for gradient weights of size ~1e-4. ``"columns"``
  z-scores each dimension instead; ``"none"`` uses the raw vectors.
- The Gaussian mixture uses ``covariance_type="diag"``: with N ≈ 360 images and
  K up to 1280 dimensions a full covariance (K² parameters per component) is
  singular, while diagonal keeps 2K + 1 parameters per component.
- The Silhouette is computed with the Euclidean metric on the representation that
  was clustered (after scaling), from the cluster assignments.
"""

from __future__ import annotations

from dataclasses import dataclass

import numpy as np
from sklearn.cluster import KMeans
from sklearn.decomposition import PCA
from sklearn.metrics import adjusted_rand_score, normalized_mutual_info_score, silhouette_score
from sklearn.mixture import GaussianMixture

from classmap.analysis.errors import ClassmapError, check_choice

REPRESENTATIONS = ("grad_weights", "softmax", "features")
CLUSTERING_ALGORITHMS = ("kmeans", "gmm")
SCALINGS = ("global", "columns", "none")
SILHOUETTE_METRIC = "euclidean"
KMEANS_N_INIT = 10
GMM_N_INIT = 3
GMM_COVARIANCE_TYPE = "diag"


def check_representation(name: str) -> str:
    """Return ``name`` if it is one of :data:`REPRESENTATIONS`, else raise naming them."""
    return check_choice(name, REPRESENTATIONS, "representation")


def check_clustering_algorithm(name: str) -> str:
    """Return ``name`` if it is one of :data:`CLUSTERING_ALGORITHMS`, else raise naming them."""
    return check_choice(name, CLUSTERING_ALGORITHMS, "clustering algorithm")


def check_scaling(name: str) -> str:
    """Return ``name`` if it is one of :data:`SCALINGS`, else raise naming them."""
    return check_choice(name, SCALINGS, "scaling")


def check_labels(labels: np.ndarray, num_images: int | None, num_classes: int) -> np.ndarray:
    """Validate true class labels of ``num_images`` images.

    Parameters
    ----------
    labels : array of shape (N,), integers in ``[0, num_classes)``
    num_images : the N the labels must match (None: any length)
    num_classes : C ≥ 1

    Returns
    -------
    ndarray of shape (N,), int64
    """
    if isinstance(num_classes, bool) or not isinstance(num_classes, (int, np.integer)):
        raise ClassmapError(f"num_classes must be an integer, got {num_classes!r}; pass C ≥ 1")
    if num_classes < 1:
        raise ClassmapError(f"num_classes is {num_classes}; pass the number of classes (≥ 1)")
    array = np.asarray(labels)
    if array.ndim != 1:
        raise ClassmapError(
            f"labels have shape {array.shape}; pass a 1-D array with one integer label per image"
        )
    if num_images is not None and array.shape[0] != num_images:
        raise ClassmapError(
            f"there are {array.shape[0]} labels but {num_images} images; "
            "pass one integer label per image"
        )
    if array.dtype.kind not in "iu":
        raise ClassmapError(
            f"labels have dtype {array.dtype}; pass integer class indices (0 … C − 1)"
        )
    array = array.astype(np.int64, copy=False)
    if array.size and (array.min() < 0 or array.max() >= num_classes):
        raise ClassmapError(
            f"labels range over {array.min()} … {array.max()} but there are {num_classes} "
            f"classes; labels must lie in 0 … {num_classes - 1}"
        )
    return array


def check_vectors(x: np.ndarray, name: str = "representation", *, min_rows: int = 1) -> np.ndarray:
    """Validate a matrix of per-image vectors: shape (N, D), finite; returned as float64."""
    array = np.asarray(x)
    if array.ndim != 2 or array.shape[1] == 0:
        raise ClassmapError(
            f"{name} has shape {array.shape}; pass a 2-D array of shape (images, dimensions)"
        )
    if array.shape[0] < min_rows:
        raise ClassmapError(
            f"{name} has {array.shape[0]} rows; this needs at least {min_rows} images"
        )
    if array.dtype.kind not in "iuf":
        raise ClassmapError(f"{name} has dtype {array.dtype}; pass real numbers")
    array = array.astype(np.float64, copy=False)
    if not np.all(np.isfinite(array)):
        bad = int((~np.isfinite(array)).any(axis=1).sum())
        raise ClassmapError(
            f"{name} has {bad} row(s) with NaN or infinite values; "
            "re-run the extraction or drop those images"
        )
    return array


# ---------------------------------------------------------------------------- cosine


@dataclass(frozen=True)
class WithinClassSimilarity:
    """Mean cosine similarity between images of the same class.

    Attributes
    ----------
    per_class : ndarray of shape (C,), float64 — mean over the class's unordered pairs
        of distinct images; NaN where the class has fewer than 2 usable vectors
    pair_counts : ndarray of shape (C,), int64 — pairs averaged, ``m (m − 1) / 2``
    image_counts : ndarray of shape (C,), int64 — images of the class
    zero_vector_counts : ndarray of shape (C,), int64 — all-zero vectors left out
    overall_pairs : mean over every same-class pair, pooled (NaN if there is none)
    overall_classes : mean of ``per_class`` over the classes where it is defined
    status : one line per class: ``"ok"`` or why its value is NaN / what was left out
    """

    per_class: np.ndarray
    pair_counts: np.ndarray
    image_counts: np.ndarray
    zero_vector_counts: np.ndarray
    overall_pairs: float
    overall_classes: float
    status: tuple[str, ...]


def within_class_cosine(
    x: np.ndarray, labels: np.ndarray, num_classes: int
) -> WithinClassSimilarity:
    """Mean cosine similarity over all pairs of distinct images of each class.

    Parameters
    ----------
    x : array of shape (N, D) — one representation per image
    labels : array of shape (N,) — true class of each image, in ``[0, C)``
    num_classes : C

    Returns
    -------
    WithinClassSimilarity with per-class arrays of shape (C,).

    Notes
    -----
    With unit rows ``u_i``, the sum of cosines over the pairs of a class is
    ``(‖Σ u_i‖² − Σ ‖u_i‖²) / 2`` — the off-diagonal half of the class's Gram matrix —
    so the cost is O(N·D) however many images a class has. Zero vectors are left out.
    """
    vectors = check_vectors(x)
    classes = check_labels(labels, vectors.shape[0], num_classes)
    norms = np.linalg.norm(vectors, axis=1)
    nonzero = norms > 0.0
    units = vectors[nonzero] / norms[nonzero, None]
    kept = classes[nonzero]

    sums = np.zeros((num_classes, vectors.shape[1]))
    np.add.at(sums, kept, units)
    squared = np.bincount(kept, weights=np.einsum("nd,nd->n", units, units), minlength=num_classes)
    usable = np.bincount(kept, minlength=num_classes).astype(np.int64)
    image_counts = np.bincount(classes, minlength=num_classes).astype(np.int64)
    zero_counts = image_counts - usable

    pair_sums = 0.5 * (np.einsum("cd,cd->c", sums, sums) - squared)
    pair_counts = usable * (usable - 1) // 2
    with np.errstate(invalid="ignore", divide="ignore"):
        per_class = np.where(pair_counts > 0, pair_sums / np.maximum(pair_counts, 1), np.nan)
    per_class = np.clip(per_class, -1.0, 1.0)
    total_pairs = int(pair_counts.sum())
    overall_pairs = float(pair_sums[pair_counts > 0].sum() / total_pairs) if total_pairs else np.nan
    defined = ~np.isnan(per_class)
    overall_classes = float(per_class[defined].mean()) if defined.any() else np.nan
    status = tuple(
        _pair_status(int(image_counts[c]), int(usable[c]), int(zero_counts[c]))
        for c in range(num_classes)
    )
    return WithinClassSimilarity(
        per_class=per_class,
        pair_counts=pair_counts,
        image_counts=image_counts,
        zero_vector_counts=zero_counts,
        overall_pairs=overall_pairs,
        overall_classes=overall_classes,
        status=status,
    )


def _pair_status(images: int, usable: int, zeros: int) -> str:
    if images == 0:
        return "no images"
    left_out = f"{zeros} zero vector(s) left out (cosine undefined)" if zeros else ""
    if usable < 2:
        reason = f"{usable} usable image(s): no pair"
        return f"{reason}; {left_out}" if left_out else reason
    return f"ok; {left_out}" if left_out else "ok"


# ------------------------------------------------------------------------ clustering


@dataclass(frozen=True)
class ClusteringResult:
    """A clustering of the images of one representation, scored against the true labels.

    Attributes
    ----------
    assignments : ndarray of shape (N,), int64 — cluster ids in ``[0, k)``, numbered in
        order of first appearance (so equal partitions give equal arrays)
    ari : adjusted Rand index against the true labels (1 = identical partition)
    nmi : normalised mutual information (arithmetic normalisation, scikit-learn's default)
    silhouette : mean Silhouette of ``assignments``; NaN when fewer than 2 clusters are
        found or every image is its own cluster
    algorithm : ``"kmeans"`` or ``"gmm"``
    silhouette_metric : the metric of the Silhouette (``"euclidean"``, on the scaled vectors)
    scaling : the scaling applied before clustering (see :data:`SCALINGS`)
    num_clusters : k asked for
    clusters_found : distinct clusters in ``assignments`` (a mixture can leave some empty)
    seed : the random seed used
    """

    assignments: np.ndarray
    ari: float
    nmi: float
    silhouette: float
    algorithm: str
    silhouette_metric: str
    scaling: str
    num_clusters: int
    clusters_found: int
    seed: int


def scale_representation(x: np.ndarray, scaling: str = "global") -> np.ndarray:
    """Scale vectors before clustering.

    Parameters
    ----------
    x : array of shape (N, D)
    scaling : ``"global"`` — centre the columns and divide everything by one scalar, the
        root-mean-square norm of the centred rows (geometry kept: distances scale
        uniformly); ``"columns"`` — z-score each column (a constant column becomes 0);
        ``"none"`` — unchanged.

    Returns
    -------
    ndarray of shape (N, D), float64
    """
    check_scaling(scaling)
    vectors = check_vectors(x)
    if scaling == "none":
        return vectors
    centred = vectors - vectors.mean(axis=0, keepdims=True)
    if scaling == "global":
        rms = float(np.sqrt(np.mean(np.einsum("nd,nd->n", centred, centred))))
        if rms == 0.0:
            raise ClassmapError(
                f"all {len(vectors)} vectors are identical; there is nothing to cluster "
                "— check the extraction"
            )
        return centred / rms
    std = centred.std(axis=0)
    return np.divide(centred, std, out=np.zeros_like(centred), where=std > 0)


def cluster_representation(
    x: np.ndarray,
    labels: np.ndarray,
    num_clusters: int,
    algorithm: str,
    *,
    seed: int = 0,
    scaling: str = "global",
) -> ClusteringResult:
    """Cluster the images' vectors into k groups and score the partition.

    Parameters
    ----------
    x : array of shape (N, D) — one representation per image
    labels : array of shape (N,), int — true classes, used only for ARI and NMI
    num_clusters : k, with 2 ≤ k ≤ N − 1 (the seed uses k = number of classes)
    algorithm : ``"kmeans"`` (k-means++, ``n_init=10``) or ``"gmm"`` (Gaussian mixture,
        diagonal covariances, ``n_init=3``, k-means initialisation)
    seed : random state of the algorithm
    scaling : see :func:`scale_representation`; ``"global"`` by default

    Returns
    -------
    ClusteringResult
    """
    check_clustering_algorithm(algorithm)
    check_scaling(scaling)
    vectors = check_vectors(x, min_rows=3)
    n = vectors.shape[0]
    truth = _check_true_labels(labels, n)
    _check_count("num_clusters", num_clusters, 2, n - 1, f"for {n} images")
    _check_seed(seed)
    scaled = scale_representation(vectors, scaling)
    if algorithm == "kmeans":
        model = KMeans(n_clusters=num_clusters, n_init=KMEANS_N_INIT, random_state=seed)
        raw = model.fit_predict(scaled)
    else:
        model = GaussianMixture(
            n_components=num_clusters,
            covariance_type=GMM_COVARIANCE_TYPE,
            n_init=GMM_N_INIT,
            random_state=seed,
        )
        raw = model.fit(scaled).predict(scaled)
    assignments = relabel_by_first_appearance(raw)
    found = int(assignments.max()) + 1
    silhouette = (
        float(silhouette_score(scaled, assignments, metric=SILHOUETTE_METRIC))
        if 2 <= found <= n - 1
        else np.nan
    )
    return ClusteringResult(
        assignments=assignments,
        ari=float(adjusted_rand_score(truth, assignments)),
        nmi=float(normalized_mutual_info_score(truth, assignments)),
        silhouette=silhouette,
        algorithm=algorithm,
        silhouette_metric=SILHOUETTE_METRIC,
        scaling=scaling,
        num_clusters=int(num_clusters),
        clusters_found=found,
        seed=int(seed),
    )


def relabel_by_first_appearance(assignments: np.ndarray) -> np.ndarray:
    """Renumber cluster ids 0, 1, 2 … in order of first appearance; shape (N,), int64."""
    raw = np.asarray(assignments)
    _, first, inverse = np.unique(raw, return_index=True, return_inverse=True)
    rank = np.empty(len(first), dtype=np.int64)
    rank[np.argsort(first, kind="stable")] = np.arange(len(first))
    return rank[inverse.reshape(-1)]


# ------------------------------------------------------------------------------- PCA


@dataclass(frozen=True)
class PcaProjection:
    """Images projected on the leading principal components.

    Attributes
    ----------
    coordinates : ndarray of shape (N, n_components), float64
    explained_variance_ratio : ndarray of shape (n_components,), float64
    """

    coordinates: np.ndarray
    explained_variance_ratio: np.ndarray


def project_pca(x: np.ndarray, n_components: int = 2, *, seed: int = 0) -> PcaProjection:
    """Project the vectors on their first principal components (scikit-learn PCA).

    Parameters
    ----------
    x : array of shape (N, D), N ≥ 2
    n_components : 1 ≤ n ≤ min(N, D)
    seed : random state of the randomised SVD scikit-learn picks for large inputs
        (the output is deterministic either way; component signs follow scikit-learn's
        ``svd_flip`` convention)

    Returns
    -------
    PcaProjection with ``coordinates`` of shape (N, n_components).
    """
    vectors = check_vectors(x, min_rows=2)
    _check_count(
        "n_components", n_components, 1, min(vectors.shape), f"for data of shape {vectors.shape}"
    )
    _check_seed(seed)
    pca = PCA(n_components=n_components, random_state=seed)
    coordinates = pca.fit_transform(vectors)
    return PcaProjection(
        coordinates=np.asarray(coordinates, dtype=np.float64),
        explained_variance_ratio=np.asarray(pca.explained_variance_ratio_, dtype=np.float64),
    )


# ------------------------------------------------------------------------- helpers


def _check_count(name: str, value: int, low: int, high: int, context: str) -> None:
    if isinstance(value, bool) or not isinstance(value, (int, np.integer)):
        raise ClassmapError(f"{name} must be an integer, got {value!r}; pass {low} … {high}")
    if not low <= value <= high:
        raise ClassmapError(f"{name} {value} is out of range {context}; choose {low} … {high}")


def _check_true_labels(labels: np.ndarray, num_images: int) -> np.ndarray:
    """Labels of shape (N,) for ARI/NMI, where the number of classes is not given."""
    array = np.asarray(labels)
    if array.ndim == 1 and array.dtype.kind in "iu" and array.size and array.min() < 0:
        raise ClassmapError(
            f"labels contain {array.min()}; pass non-negative integer class indices"
        )
    upper = (
        int(array.max()) + 1 if array.ndim == 1 and array.size and array.dtype.kind in "iu" else 1
    )
    return check_labels(array, num_images, upper)


def _check_seed(seed: int) -> None:
    if isinstance(seed, bool) or not isinstance(seed, (int, np.integer)) or seed < 0:
        raise ClassmapError(f"seed must be a non-negative integer, got {seed!r}; pass e.g. 0")
