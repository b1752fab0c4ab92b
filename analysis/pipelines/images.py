"""Image-based class relationships (seeds 002 and 003): extract once, analyse, cache both.

Two cached steps, the same for the CLI (``classmap export --data``) and the web app:

1. :func:`extract_representations` — every image of an :class:`~analysis.data.ImageDataset`
   through the classifier once (:mod:`classmap.analysis.methods.gradcam`: one forward and one
   backward per batch) → :class:`Representations` (features, logits, softmax,
   Grad-CAM weights and maps). Cached under the digest of **every** tensor of the
   network (not only the head), the data set's digest, the preprocessing, the feature
   site and :data:`REPRESENTATIONS_VERSION`.
2. :func:`analyse_images` — every seed-002 and seed-003 measure on those arrays →
   :class:`ImageAnalysis`. Cached under the representations' key, the parameters,
   scikit-learn's version and :data:`IMAGE_ANALYSIS_VERSION`.

Results are computed completely in memory and stored with one ``cache.put`` at the
end, so a failure half-way stores nothing.

Classes. Labels index the model's C classes, but a folder may hold only P of them
(ten ImageNet classes of a 1,000-class model). The analyses run on the P classes
present, in model order (:attr:`ImageAnalysis.classes`); clustering uses k = P; a
class's mean softmax is still a distribution over all C classes; the confusion
matrix has a last column "(other)" for predictions outside the P classes when P < C.

For a web page: :func:`load_cached_representations` / :func:`load_cached_analysis` take
only a key (what a ``dcc.Store`` holds), :func:`sample_cam` returns one image's map and
:func:`sample_summary` its label, prediction and top classes.
"""

from __future__ import annotations

import dataclasses
import hashlib
import logging
import math
import time
from collections.abc import Mapping
from concurrent.futures import ThreadPoolExecutor
from dataclasses import dataclass, field
from typing import Any

import numpy as np
import torch

from classmap.analysis.methods.gradcam import BatchActivations, extract_batch, find_feature_site
from classmap.analysis.cache import ResultCache, get_or_compute, make_key, read_cached
from classmap.analysis.methods.confidence import (
    JS_LINKAGES,
    class_mean_softmax,
    cluster_classes_kmeans,
    confusion,
    js_divergence_matrix,
    js_linkage,
    tsne_softmax,
)
from classmap.analysis.loading.data import ImageDataset
from classmap.analysis.errors import ClassmapError
from classmap.analysis.progress import NullProgress
from classmap.analysis.methods.representations import (
    CLUSTERING_ALGORITHMS,
    REPRESENTATIONS,
    ClusteringResult,
    PcaProjection,
    WithinClassSimilarity,
    check_representation,
    check_scaling,
    cluster_representation,
    project_pca,
    within_class_cosine,
)
from classmap.analysis.methods.saliency import MapAgreement, MapAgreementTable, within_class_map_agreement

log = logging.getLogger(__name__)

REPRESENTATIONS_VERSION = "1"
IMAGE_ANALYSIS_VERSION = "1"
DEFAULT_BATCH_SIZE = 32
# Grad-CAM maps are stored as float16: values in [0, 1] keep an absolute error below
# 2.5e-4 (half a float16 step at 1.0), and the memory halves (N × 224 × 224 maps).
CAM_DTYPE = np.float16
OTHER_COLUMN = "(other)"
# Above this many model classes the class means are computed for the present classes
# only (class_mean_softmax builds a dense C × C matrix).
MAX_DENSE_CLASS_MEANS = 5000


# --------------------------------------------------------------------------------------
# step 1: representations


@dataclass(frozen=True, eq=False)  # holds arrays: identity equality
class Representations:
    """Per-image arrays of one model on one data set.

    Attributes
    ----------
    features : ndarray of shape (N, K), float32 — last feature map averaged over space
    logits : ndarray of shape (N, C), float32
    softmax : ndarray of shape (N, C), float32
    grad_weights : ndarray of shape (N, K), float32 — Grad-CAM weights of the max class
    cams : ndarray of shape (N, H, W), float16 in [0, 1] — Grad-CAM maps at input size
    labels : ndarray of shape (N,), int64 — true class (model index)
    preds : ndarray of shape (N,), int64 — predicted (max) class
    confidence : ndarray of shape (N,), float32 — softmax of the predicted class
    class_names : the model's C class names
    sample_ids : N ids (``digits:<row>`` or the path relative to the data folder)
    site : where the feature map was read (e.g. ``forward_features``)
    grid_size : (H', W') of the feature map
    key : cache key of these arrays
    seconds : wall time per step (empty when served from the cache)
    from_cache : whether the arrays came from the cache
    """

    features: np.ndarray
    logits: np.ndarray
    softmax: np.ndarray
    grad_weights: np.ndarray
    cams: np.ndarray
    labels: np.ndarray
    preds: np.ndarray
    confidence: np.ndarray
    class_names: tuple[str, ...]
    sample_ids: tuple[str, ...]
    site: str
    grid_size: tuple[int, int]
    key: str
    seconds: dict[str, float] = field(default_factory=dict)
    from_cache: bool = False

    @property
    def num_images(self) -> int:
        return int(self.labels.shape[0])

    @property
    def num_classes(self) -> int:
        return len(self.class_names)

    @property
    def image_size(self) -> tuple[int, int]:
        return int(self.cams.shape[1]), int(self.cams.shape[2])

    def vectors(self, representation: str) -> np.ndarray:
        """The ``(N, D)`` array of a representation named in :data:`REPRESENTATIONS`."""
        return getattr(self, check_representation(representation))


_REPRESENTATION_ARRAYS = (
    "features", "logits", "softmax", "grad_weights", "cams", "labels", "preds", "confidence",
)


def network_digest(network: torch.nn.Module) -> str:
    """SHA-256 over the name, dtype, shape and bytes of every tensor of ``state_dict()``."""
    sha = hashlib.sha256()
    for name, tensor in network.state_dict().items():
        data = tensor.detach().to("cpu").contiguous()
        sha.update(f"{name}\0{data.dtype}\0{tuple(data.shape)}\0".encode())
        sha.update(data.reshape(-1).view(torch.uint8).numpy().tobytes())
    return sha.hexdigest()


def representations_key(classifier: Any, dataset: ImageDataset) -> str:
    """Cache key of :func:`extract_representations` for this classifier and data set."""
    site = find_feature_site(classifier.network, classifier.family)
    config = {k: str(v) for k, v in sorted(classifier.data_config.items())}
    return make_key(
        "image-representations", REPRESENTATIONS_VERSION,
        network=network_digest(classifier.network), site=site.name, data=dataset.digest,
        preprocess=config, cam_dtype=np.dtype(CAM_DTYPE).name,
    )


def extract_representations(
    classifier: Any,
    dataset: ImageDataset,
    *,
    batch_size: int = DEFAULT_BATCH_SIZE,
    cache: ResultCache | None = None,
    progress: Any = None,
    device: str | torch.device | None = None,
) -> Representations:
    """Run every image of ``dataset`` through ``classifier`` once, batched; cached.

    Parameters
    ----------
    classifier : a LoadedClassifier (``network`` in eval mode, ``preprocess``, ``family``)
    dataset : ImageDataset whose labels index the classifier's classes
    batch_size : images per forward/backward pass (results do not depend on it)
    device : where to compute; default the classifier's device

    Returns
    -------
    Representations
    """
    if isinstance(batch_size, bool) or not isinstance(batch_size, int) or batch_size < 1:
        raise ClassmapError(f"--batch-size {batch_size!r} is invalid; pass a positive integer")
    if dataset.num_classes != classifier.head.num_classes:
        raise ClassmapError(
            f"the data set is labelled with {dataset.num_classes} classes but the model has "
            f"{classifier.head.num_classes}; open the data with the model's classes"
        )
    progress = progress or NullProgress()
    started = time.perf_counter()
    key = representations_key(classifier, dataset)
    digest_seconds = time.perf_counter() - started
    return get_or_compute(
        cache, key,
        lambda: _extract(classifier, dataset, key, batch_size, progress, device,
                         {"digest": digest_seconds}),
        pack=lambda result: _pack_representations(result, dataset),
        unpack=lambda arrays, meta: _unpack_representations(key, arrays, meta),
    )


def _extract(
    classifier: Any,
    dataset: ImageDataset,
    key: str,
    batch_size: int,
    progress: Any,
    device: str | torch.device | None,
    seconds: dict[str, float],
) -> Representations:
    target = torch.device(device) if device is not None else _network_device(classifier.network)
    if _network_device(classifier.network) != target:
        log.info("moving the network to %s", target)
        classifier.network.to(target)
        classifier.device = target
    site = find_feature_site(classifier.network, classifier.family)

    started = time.perf_counter()
    parts: list[BatchActivations] = []
    waited = 0.0
    ranges = [range(start, min(start + batch_size, len(dataset)))
              for start in range(0, len(dataset), batch_size)]
    # One worker decodes and preprocesses the next batch while this one runs through the
    # network (Pillow releases the GIL while decoding); order and results are unchanged.
    with progress.step("features, gradients and Grad-CAM", total=len(dataset)) as advance, \
            ThreadPoolExecutor(max_workers=1, thread_name_prefix="classmap-decode") as pool:
        pending = pool.submit(_preprocessed_batch, classifier, dataset, ranges[0])
        for number, indices in enumerate(ranges):
            tick = time.perf_counter()
            images = pending.result()
            waited += time.perf_counter() - tick
            if number + 1 < len(ranges):
                pending = pool.submit(_preprocessed_batch, classifier, dataset, ranges[number + 1])
            parts.append(extract_batch(site, images, device=target))
            advance(len(indices))
    seconds["extract"] = time.perf_counter() - started
    seconds["waiting_for_images"] = waited

    softmax = np.concatenate([p.softmax for p in parts])
    preds = np.concatenate([p.preds for p in parts])
    return Representations(
        features=np.concatenate([p.features for p in parts]),
        logits=np.concatenate([p.logits for p in parts]),
        softmax=softmax,
        grad_weights=np.concatenate([p.grad_weights for p in parts]),
        cams=np.concatenate([p.cams.astype(CAM_DTYPE) for p in parts]),
        labels=np.asarray(dataset.labels, dtype=np.int64),
        preds=preds,
        confidence=softmax[np.arange(len(preds)), preds].astype(np.float32),
        class_names=tuple(dataset.class_names),
        sample_ids=tuple(dataset.sample_ids),
        site=site.name,
        grid_size=parts[0].grid_size,
        key=key,
        seconds=seconds,
    )


def _pack_representations(
    result: Representations, dataset: ImageDataset
) -> tuple[dict[str, np.ndarray], dict[str, Any]]:
    return (
        {name: getattr(result, name) for name in _REPRESENTATION_ARRAYS},
        {
            "class_names": list(result.class_names),
            "sample_ids": list(result.sample_ids),
            "site": result.site,
            "grid_size": list(result.grid_size),
            "seconds": result.seconds,
            "data": dataset.source,
        },
    )


def _unpack_representations(
    key: str, arrays: dict[str, np.ndarray], meta: dict[str, Any]
) -> Representations:
    return Representations(
        **{name: arrays[name] for name in _REPRESENTATION_ARRAYS},
        class_names=tuple(meta["class_names"]),
        sample_ids=tuple(meta["sample_ids"]),
        site=meta["site"],
        grid_size=(int(meta["grid_size"][0]), int(meta["grid_size"][1])),
        key=key,
        from_cache=True,
    )


def load_cached_representations(cache: ResultCache, key: str) -> Representations | None:
    """The representations stored under ``key``, or None (cheap: reads ``.npy`` files)."""
    return read_cached(cache, key, lambda arrays, meta: _unpack_representations(key, arrays, meta))


def sample_cam(representations: Representations, index: int) -> np.ndarray:
    """Grad-CAM map of image ``index``: ndarray of shape (H, W), float32 in [0, 1]."""
    _check_index(representations, index)
    return representations.cams[index].astype(np.float32)


@dataclass(frozen=True)
class SampleSummary:
    """One image at a glance: ids, true and predicted class, top classes."""

    index: int
    sample_id: str
    label: int
    label_name: str
    pred: int
    pred_name: str
    confidence: float
    top_classes: tuple[int, ...]
    top_scores: tuple[float, ...]


def sample_summary(representations: Representations, index: int, top_k: int = 5) -> SampleSummary:
    """Label, prediction and the ``top_k`` classes of image ``index``."""
    _check_index(representations, index)
    scores = representations.softmax[index]
    top = np.argsort(-scores, kind="stable")[: max(1, min(top_k, len(scores)))]
    names = representations.class_names
    label, pred = int(representations.labels[index]), int(representations.preds[index])
    return SampleSummary(
        index=index,
        sample_id=representations.sample_ids[index],
        label=label,
        label_name=names[label],
        pred=pred,
        pred_name=names[pred],
        confidence=float(representations.confidence[index]),
        top_classes=tuple(int(c) for c in top),
        top_scores=tuple(float(scores[c]) for c in top),
    )


def _check_index(representations: Representations, index: int) -> None:
    if isinstance(index, bool) or not isinstance(index, (int, np.integer)) or not (
        0 <= index < representations.num_images
    ):
        raise ClassmapError(
            f"sample index {index!r} is out of range; choose 0 … {representations.num_images - 1}"
        )


def _network_device(network: torch.nn.Module) -> torch.device:
    first = next(network.parameters(), None)
    return first.device if first is not None else torch.device("cpu")


def _preprocessed_batch(classifier: Any, dataset: ImageDataset, indices: range) -> torch.Tensor:
    tensors = [classifier.preprocess(dataset.load_image(i)) for i in indices]
    shapes = {tuple(t.shape) for t in tensors}
    if len(shapes) != 1:
        raise ClassmapError(
            f"the model's preprocessing gave images of different sizes {sorted(shapes)[:3]}; "
            "use a model whose preprocessing resizes to one input size"
        )
    return torch.stack(tensors)


# --------------------------------------------------------------------------------------
# step 2: analyses


@dataclass(frozen=True)
class ImageParams:
    """Parameters of :func:`analyse_images`.

    seed : seed of every random step (k-means, GMM, pair sampling, PCA, t-SNE)
    max_pairs_per_class : Grad-CAM map pairs scored per class (None = all pairs)
    perplexity : t-SNE perplexity (clipped to (N − 1) / 3 for small sets)
    class_clusters : k of the k-means of classes on the JS matrix; None = round(√P),
        at least 2 and at most P
    js_linkage : linkage of the hierarchical clustering of classes on the JS divergence
    scaling : scaling of the representations before clustering (see representations.py)
    """

    seed: int = 0
    max_pairs_per_class: int | None = 200
    perplexity: float = 30.0
    class_clusters: int | None = None
    js_linkage: str = "average"
    scaling: str = "global"

    def validate(self) -> ImageParams:
        if isinstance(self.seed, bool) or not isinstance(self.seed, int) or self.seed < 0:
            raise ClassmapError(f"seed {self.seed!r} is invalid; pass a non-negative integer")
        if self.js_linkage not in JS_LINKAGES:
            raise ClassmapError(
                f"linkage {self.js_linkage!r} is not available for the JS divergence; "
                f"choose one of {', '.join(JS_LINKAGES)}"
            )
        check_scaling(self.scaling)
        if self.class_clusters is not None and (
            isinstance(self.class_clusters, bool)
            or not isinstance(self.class_clusters, int)
            or self.class_clusters < 1
        ):
            raise ClassmapError(
                f"--class-clusters {self.class_clusters!r} is invalid; pass a positive integer"
            )
        return self

    def clusters_for(self, num_classes: int) -> int:
        """k for the k-means of ``num_classes`` classes."""
        if self.class_clusters is not None:
            if self.class_clusters > num_classes:
                raise ClassmapError(
                    f"--class-clusters {self.class_clusters} is more than the {num_classes} "
                    f"classes with images; choose 1 … {num_classes}"
                )
            return self.class_clusters
        return int(min(num_classes, max(2, round(math.sqrt(num_classes)))))


@dataclass(frozen=True, eq=False)  # holds arrays: identity equality
class ImageAnalysis:
    """Every seed-002 and seed-003 result for one Representations and ImageParams.

    Attributes
    ----------
    classes : ndarray of shape (P,), int64 — model indices of the classes with images
    class_names : P names
    within_class : representation → WithinClassSimilarity over the P classes
    clustering : (representation, algorithm) → ClusteringResult with k = P
    pca : representation → PcaProjection, coordinates of shape (N, 2)
    map_agreement : MapAgreementTable of the Grad-CAM maps over the P classes
    class_mean_softmax : ndarray of shape (P, C), float64 — mean softmax per true class
    js : ndarray of shape (P, P), float64 — JS divergence (base 2) of those rows
    class_clusters : ndarray of shape (P,), int64 — k-means of the rows of ``js``
    js_linkage : ndarray of shape (P − 1, 4), float64 — scipy linkage on condensed ``js``
    tsne : ndarray of shape (N, 2), float64 — t-SNE of the softmax vectors
    confusion : ndarray of shape (P, P) or (P, P + 1), int64 — rows true, columns predicted
        (last column: predictions outside the P classes, when P < C)
    confusion_columns : names of the confusion matrix's columns
    skipped : ``(analysis, reason)`` for each analysis the data could not support
    params : the ImageParams used
    key : cache key of this analysis
    seconds : wall time per step (empty when served from the cache)
    from_cache : whether it came from the cache
    """

    classes: np.ndarray
    class_names: tuple[str, ...]
    within_class: Mapping[str, WithinClassSimilarity]
    clustering: Mapping[tuple[str, str], ClusteringResult]
    pca: Mapping[str, PcaProjection]
    map_agreement: MapAgreementTable
    class_mean_softmax: np.ndarray
    js: np.ndarray
    class_clusters: np.ndarray | None
    js_linkage: np.ndarray | None
    tsne: np.ndarray | None
    confusion: np.ndarray
    confusion_columns: tuple[str, ...]
    skipped: tuple[tuple[str, str], ...]
    params: ImageParams
    key: str
    seconds: dict[str, float] = field(default_factory=dict)
    from_cache: bool = False


def image_analysis_key(representations: Representations, params: ImageParams) -> str:
    """Cache key of :func:`analyse_images`."""
    import sklearn

    return make_key(
        "image-analysis", IMAGE_ANALYSIS_VERSION, representations=representations.key,
        params=dataclasses.asdict(params), sklearn=sklearn.__version__,
    )


def analyse_images(
    representations: Representations,
    params: ImageParams = ImageParams(),
    *,
    cache: ResultCache | None = None,
    progress: Any = None,
) -> ImageAnalysis:
    """Run every seed-002 and seed-003 analysis on ``representations``; cached.

    Seed 002, per representation (grad_weights, softmax, features): within-class
    cosine similarity, k-means and GMM with k = P scored by ARI/NMI/Silhouette, PCA;
    and the within-class agreement of the Grad-CAM maps (CC, SIM, KLD, AUC).
    Seed 003: class-mean softmax, JS divergence, k-means and hierarchical clustering
    of the classes, t-SNE of the softmax vectors, confusion matrix.
    """
    params.validate()
    progress = progress or NullProgress()
    key = image_analysis_key(representations, params)
    return get_or_compute(
        cache, key, lambda: _analyse(representations, params, key, progress),
        pack=_pack_analysis,
        unpack=lambda arrays, meta: _unpack_analysis(key, arrays, meta),
    )


def _analyse(
    representations: Representations, params: ImageParams, key: str, progress: Any
) -> ImageAnalysis:
    reps = representations
    classes = np.unique(reps.labels).astype(np.int64)
    num_present = len(classes)
    labels = np.searchsorted(classes, reps.labels).astype(np.int64)
    names = tuple(reps.class_names[c] for c in classes)
    seconds: dict[str, float] = {}
    skipped: list[tuple[str, str]] = []

    started = time.perf_counter()
    within: dict[str, WithinClassSimilarity] = {}
    with progress.step("within-class similarity", total=len(REPRESENTATIONS)) as advance:
        for name in REPRESENTATIONS:
            within[name] = within_class_cosine(reps.vectors(name), labels, num_present)
            advance(1)
    seconds["within_class"] = time.perf_counter() - started

    started = time.perf_counter()
    clustering: dict[tuple[str, str], ClusteringResult] = {}
    pca: dict[str, PcaProjection] = {}
    steps = len(REPRESENTATIONS) * (len(CLUSTERING_ALGORITHMS) + 1)
    with progress.step("clustering and PCA", total=steps) as advance:
        for name in REPRESENTATIONS:
            vectors = reps.vectors(name)
            reason = _clustering_obstacle(vectors, num_present)
            for algorithm in CLUSTERING_ALGORITHMS:
                if reason is None:
                    clustering[(name, algorithm)] = cluster_representation(
                        vectors, labels, num_present, algorithm,
                        seed=params.seed, scaling=params.scaling,
                    )
                else:
                    skipped.append((f"{algorithm} on {name}", reason))
                advance(1)
            if len(vectors) >= 2:
                pca[name] = project_pca(vectors, min(2, *vectors.shape), seed=params.seed)
            else:
                skipped.append((f"PCA of {name}", "needs at least 2 images"))
            advance(1)
    seconds["clustering"] = time.perf_counter() - started

    started = time.perf_counter()
    with progress.step("Grad-CAM map agreement", total=1) as advance:
        agreement = within_class_map_agreement(
            reps.cams, labels, num_present,
            max_pairs_per_class=params.max_pairs_per_class, seed=params.seed,
        )
        advance(1)
    seconds["map_agreement"] = time.perf_counter() - started

    started = time.perf_counter()
    with progress.step("confidence: JS divergence, clusters, t-SNE", total=4) as advance:
        means = _class_means(reps.softmax, reps.labels, classes, reps.num_classes)
        js = js_divergence_matrix(means)
        advance(1)
        class_clusters = cluster_classes_kmeans(js, params.clusters_for(num_present),
                                                seed=params.seed)
        tree = js_linkage(js, params.js_linkage) if num_present >= 2 else None
        if tree is None:
            skipped.append(("JS hierarchical clustering", "needs at least 2 classes"))
        advance(1)
        if reps.num_images >= 3:
            tsne = tsne_softmax(reps.softmax, seed=params.seed, perplexity=params.perplexity)
        else:
            tsne = None
            skipped.append(("t-SNE", "needs at least 3 images"))
        advance(1)
        matrix, columns = _present_confusion(reps, classes, labels, names)
        advance(1)
    seconds["confidence"] = time.perf_counter() - started

    return ImageAnalysis(
        classes=classes,
        class_names=names,
        within_class=within,
        clustering=clustering,
        pca=pca,
        map_agreement=agreement,
        class_mean_softmax=means,
        js=js,
        class_clusters=class_clusters,
        js_linkage=tree,
        tsne=tsne,
        confusion=matrix,
        confusion_columns=columns,
        skipped=tuple(skipped),
        params=params,
        key=key,
        seconds=seconds,
    )


def load_cached_analysis(cache: ResultCache, key: str) -> ImageAnalysis | None:
    """The ImageAnalysis stored under ``key``, or None."""
    return read_cached(cache, key, lambda arrays, meta: _unpack_analysis(key, arrays, meta))


def _clustering_obstacle(vectors: np.ndarray, num_present: int) -> str | None:
    """Why k = P clustering cannot run on these vectors, or None."""
    if num_present < 2:
        return "needs at least 2 classes"
    if len(vectors) <= num_present:
        return f"needs more images ({len(vectors)}) than classes ({num_present})"
    if np.all(vectors == vectors[:1]):
        return "every image has the same vector"
    return None


def _class_means(
    softmax: np.ndarray, labels: np.ndarray, classes: np.ndarray, num_classes: int
) -> np.ndarray:
    """Mean softmax of the images of each present class: (P, C), float64."""
    if num_classes <= MAX_DENSE_CLASS_MEANS:
        return class_mean_softmax(softmax, labels, num_classes)[classes]
    present = np.searchsorted(classes, labels)
    sums = np.zeros((len(classes), softmax.shape[1]))
    np.add.at(sums, present, softmax.astype(np.float64))
    return sums / np.bincount(present, minlength=len(classes))[:, None]


def _present_confusion(
    reps: Representations, classes: np.ndarray, labels: np.ndarray, names: tuple[str, ...]
) -> tuple[np.ndarray, tuple[str, ...]]:
    """Confusion over the P present classes (+ an "(other)" column when P < C)."""
    num_present = len(classes)
    position = np.searchsorted(classes, reps.preds)
    inside = (position < num_present) & (classes[np.minimum(position, num_present - 1)] == reps.preds)
    preds = np.where(inside, position, num_present)
    matrix = confusion(labels, preds, num_present + 1)[:num_present]
    if num_present == reps.num_classes:
        return matrix[:, :num_present], names
    return matrix, (*names, OTHER_COLUMN)


# --------------------------------------------------------------------------------------
# cache (de)serialisation: arrays → .npy, everything else → JSON metadata


def _pack(obj: Any, prefix: str, arrays: dict[str, np.ndarray]) -> dict[str, Any]:
    meta: dict[str, Any] = {}
    for item in dataclasses.fields(obj):
        value = getattr(obj, item.name)
        if isinstance(value, np.ndarray):
            arrays[f"{prefix}.{item.name}"] = value
        elif dataclasses.is_dataclass(value):
            meta[item.name] = dataclasses.asdict(value)
        elif isinstance(value, tuple):
            meta[item.name] = list(value)
        else:
            meta[item.name] = value
    return meta


def _unpack(
    cls: type, prefix: str, arrays: Mapping[str, np.ndarray], meta: Mapping[str, Any],
    nested: Mapping[str, type] | None = None,
) -> Any:
    values: dict[str, Any] = {}
    for item in dataclasses.fields(cls):
        array_name = f"{prefix}.{item.name}"
        if array_name in arrays:
            values[item.name] = arrays[array_name]
        elif nested and item.name in nested:
            values[item.name] = nested[item.name](**meta[item.name])
        elif isinstance(meta[item.name], list):
            values[item.name] = tuple(meta[item.name])
        else:
            values[item.name] = meta[item.name]
    return cls(**values)


def _pack_analysis(result: ImageAnalysis) -> tuple[dict[str, np.ndarray], dict[str, Any]]:
    arrays: dict[str, np.ndarray] = {
        "classes": result.classes,
        "class_mean_softmax": result.class_mean_softmax,
        "js": result.js,
        "confusion": result.confusion,
    }
    for name in ("class_clusters", "js_linkage", "tsne"):
        value = getattr(result, name)
        if value is not None:
            arrays[name] = value
    meta: dict[str, Any] = {
        "class_names": list(result.class_names),
        "confusion_columns": list(result.confusion_columns),
        "skipped": [list(pair) for pair in result.skipped],
        "params": dataclasses.asdict(result.params),
        "seconds": result.seconds,
        "within_class": {
            name: _pack(value, f"within.{name}", arrays)
            for name, value in result.within_class.items()
        },
        "clustering": {
            f"{rep}/{algorithm}": _pack(value, f"clustering.{rep}.{algorithm}", arrays)
            for (rep, algorithm), value in result.clustering.items()
        },
        "pca": {name: _pack(value, f"pca.{name}", arrays) for name, value in result.pca.items()},
        "map_agreement": _pack(result.map_agreement, "map_agreement", arrays),
    }
    return arrays, meta


def _unpack_analysis(
    key: str, arrays: Mapping[str, np.ndarray], meta: Mapping[str, Any]
) -> ImageAnalysis:
    clustering = {}
    for joined, value in meta["clustering"].items():
        rep, algorithm = joined.split("/")
        clustering[(rep, algorithm)] = _unpack(
            ClusteringResult, f"clustering.{rep}.{algorithm}", arrays, value
        )
    return ImageAnalysis(
        classes=arrays["classes"],
        class_names=tuple(meta["class_names"]),
        within_class={
            name: _unpack(WithinClassSimilarity, f"within.{name}", arrays, value)
            for name, value in meta["within_class"].items()
        },
        clustering=clustering,
        pca={
            name: _unpack(PcaProjection, f"pca.{name}", arrays, value)
            for name, value in meta["pca"].items()
        },
        map_agreement=_unpack(
            MapAgreementTable, "map_agreement", arrays, meta["map_agreement"],
            nested={"overall_pairs": MapAgreement, "overall_classes": MapAgreement},
        ),
        class_mean_softmax=arrays["class_mean_softmax"],
        js=arrays["js"],
        class_clusters=arrays.get("class_clusters"),
        js_linkage=arrays.get("js_linkage"),
        tsne=arrays.get("tsne"),
        confusion=arrays["confusion"],
        confusion_columns=tuple(meta["confusion_columns"]),
        skipped=tuple((a, b) for a, b in meta["skipped"]),
        params=ImageParams(**meta["params"]),
        key=key,
        from_cache=True,
    )
