"""``classmap export --data DIR|digits``: the image-based results as files.

An export extension (``classmap.analysis.cli.EXPORT_EXTENSIONS``): with ``--data``, the export
also loads the whole network for the same model flags, extracts every image's
representations and runs every seed-002 and seed-003 analysis
(:mod:`classmap.analysis.pipelines.images`), then writes:

==============================  =====================================================
file                            content
==============================  =====================================================
``samples.csv``                 ``index,path,label,pred,confidence`` (label/pred are
                                model class indices as in ``classes.csv``; for the
                                digits, path is ``digits:<row of load_digits()>``)
``representations.npz``         ``features`` [N, K], ``softmax`` [N, C],
                                ``grad_weights`` [N, K], ``labels`` [N], ``preds`` [N]
                                (plain arrays, no pickled objects)
``within_class_similarity.csv`` per class with images: mean within-class cosine of each
                                representation and the Grad-CAM map agreement
``clustering_metrics.csv``      ``representation,algorithm,ari,nmi,silhouette``
``confidence_js.npy``           [P, P] JS divergence (base 2) of the class-mean softmax
``confusion.csv``               rows true class, columns predicted class
==============================  =====================================================

and under ``image_analysis`` / ``data`` in ``manifest.json``: the headline numbers,
parameters, the feature site, what was skipped, and the data report (skipped
non-image files, unreadable images, conversions, empty and single-image classes).
Everything is computed before the first file is written, and ``write_export`` is
atomic, so a failure leaves no partial export.
"""

from __future__ import annotations

import argparse
import csv
import math
from collections.abc import Callable
from pathlib import Path
from typing import Any

import numpy as np

from classmap.analysis.exports.folder import spreadsheet_safe
from classmap.analysis.pipelines.images import (
    CAM_DTYPE,
    DEFAULT_BATCH_SIZE,
    ImageAnalysis,
    ImageParams,
    Representations,
    analyse_images,
    extract_representations,
)
from classmap.analysis.methods.representations import CLUSTERING_ALGORITHMS, REPRESENTATIONS

Writer = Callable[[Path], dict[str, Any]]
FILES = (
    "samples.csv", "representations.npz", "within_class_similarity.csv",
    "clustering_metrics.csv", "confidence_js.npy", "confusion.csv",
)


def add_export_flags(parser: argparse.ArgumentParser) -> None:
    """``--data``, ``--batch-size``, ``--image-seed``, ``--class-clusters``."""
    group = parser.add_argument_group("image-based analyses (seeds 002 and 003)")
    group.add_argument("--data", metavar="DIR|digits",
                       help="also analyse images: a folder with one sub-folder per class "
                            "(named by the model's class names or ids), or 'digits' "
                            "(scikit-learn's held-out digits, for --model lenet-digits)")
    group.add_argument("--batch-size", type=int, default=DEFAULT_BATCH_SIZE, metavar="N",
                       help=f"images per forward/backward pass (default {DEFAULT_BATCH_SIZE})")
    group.add_argument("--image-seed", type=int, default=0, metavar="S",
                       help="seed of clustering, pair sampling and t-SNE (default 0)")
    group.add_argument("--class-clusters", type=int, metavar="K",
                       help="k of the k-means of classes on the JS divergence "
                            "(default round(sqrt(classes)))")


def export_writers(args: argparse.Namespace, head: Any, cache: Any, progress: Any) -> list[Writer]:
    """The image writer when ``--data`` is given, else nothing."""
    if not getattr(args, "data", None):
        return []
    from classmap.analysis.cli import spec_from_args
    from classmap.analysis.loading.data import load_dataset
    from classmap.analysis.loading.models import load_classifier

    with progress.step("load network", total=1) as advance:
        classifier = load_classifier(spec_from_args(args), cache, device=args.device)
        advance(1)
    with progress.step("read images", total=1) as advance:
        dataset = load_dataset(
            args.data, classifier.head.classes, channels=int(classifier.data_config["input_size"][0])
        )
        advance(1)
    representations = extract_representations(
        classifier, dataset, batch_size=args.batch_size, cache=cache, progress=progress,
        device=args.device,
    )
    params = ImageParams(seed=args.image_seed, class_clusters=args.class_clusters)
    analysis = analyse_images(representations, params, cache=cache, progress=progress)
    return [image_writer(representations, analysis, dataset.report.to_json(), dataset.digest)]


def image_writer(
    representations: Representations,
    analysis: ImageAnalysis,
    data_report: dict[str, Any],
    data_digest: str,
) -> Writer:
    """Writer of the image-based files (see the module table) and their manifest entries."""

    def write(folder: Path) -> dict[str, Any]:
        write_samples_csv(folder / "samples.csv", representations)
        np.savez(
            folder / "representations.npz",
            features=representations.features,
            softmax=representations.softmax,
            grad_weights=representations.grad_weights,
            labels=representations.labels,
            preds=representations.preds,
        )
        write_within_class_csv(folder / "within_class_similarity.csv", analysis)
        write_clustering_csv(folder / "clustering_metrics.csv", analysis)
        np.save(folder / "confidence_js.npy", analysis.js.astype(np.float64), allow_pickle=False)
        write_confusion_csv(folder / "confusion.csv", analysis)
        return {
            "image_analysis": _manifest_entry(representations, analysis),
            "data": {**data_report, "sha256": data_digest},
        }

    return write


def write_samples_csv(path: Path, representations: Representations) -> None:
    """``index,path,label,pred,confidence``, one row per image."""
    with open(path, "w", newline="", encoding="utf-8") as handle:
        writer = csv.writer(handle)
        writer.writerow(["index", "path", "label", "pred", "confidence"])
        for index, sample in enumerate(representations.sample_ids):
            writer.writerow([
                index, spreadsheet_safe(sample), int(representations.labels[index]),
                int(representations.preds[index]), f"{representations.confidence[index]:.7g}",
            ])


def write_within_class_csv(path: Path, analysis: ImageAnalysis) -> None:
    """Per class with images: cosine of each representation, Grad-CAM map agreement."""
    agreement = analysis.map_agreement
    reference = analysis.within_class[REPRESENTATIONS[0]]
    with open(path, "w", newline="", encoding="utf-8") as handle:
        writer = csv.writer(handle)
        writer.writerow(["class_index", "class", "images", "pairs", *REPRESENTATIONS,
                         "cam_pairs", "cam_cc", "cam_sim", "cam_kld", "cam_auc"])
        for row, (index, name) in enumerate(zip(analysis.classes, analysis.class_names)):
            writer.writerow([
                int(index), spreadsheet_safe(name), int(reference.image_counts[row]),
                int(reference.image_counts[row] * (reference.image_counts[row] - 1) // 2),
                *(_number(analysis.within_class[rep].per_class[row]) for rep in REPRESENTATIONS),
                int(agreement.pair_counts[row]),
                *(_number(getattr(agreement, m)[row]) for m in ("cc", "sim", "kld", "auc")),
            ])


def write_clustering_csv(path: Path, analysis: ImageAnalysis) -> None:
    """``representation,algorithm,ari,nmi,silhouette`` (empty numbers where skipped)."""
    with open(path, "w", newline="", encoding="utf-8") as handle:
        writer = csv.writer(handle)
        writer.writerow(["representation", "algorithm", "ari", "nmi", "silhouette"])
        for rep in REPRESENTATIONS:
            for algorithm in CLUSTERING_ALGORITHMS:
                result = analysis.clustering.get((rep, algorithm))
                if result is None:
                    writer.writerow([rep, algorithm, "", "", ""])
                else:
                    writer.writerow([rep, algorithm, _number(result.ari), _number(result.nmi),
                                     _number(result.silhouette)])


def write_confusion_csv(path: Path, analysis: ImageAnalysis) -> None:
    """Header ``true\\pred`` + column class names; one row per true class with images."""
    with open(path, "w", newline="", encoding="utf-8") as handle:
        writer = csv.writer(handle)
        writer.writerow(["true\\pred", *map(spreadsheet_safe, analysis.confusion_columns)])
        for name, row in zip(analysis.class_names, analysis.confusion):
            writer.writerow([spreadsheet_safe(name), *(int(v) for v in row)])


def _number(value: float) -> str:
    """Seven significant digits; NaN as an empty cell."""
    return "" if value is None or math.isnan(value) else f"{value:.7g}"


def _manifest_entry(representations: Representations, analysis: ImageAnalysis) -> dict[str, Any]:
    agreement = analysis.map_agreement
    any_clustering = next(iter(analysis.clustering.values()), None)
    return {
        "files": list(FILES),
        "num_images": representations.num_images,
        "num_classes_with_images": len(analysis.classes),
        "accuracy": float((representations.preds == representations.labels).mean()),
        "feature_site": representations.site,
        "feature_grid": list(representations.grid_size),
        "feature_dim": int(representations.features.shape[1]),
        "image_size": list(representations.image_size),
        "cam_dtype": np.dtype(CAM_DTYPE).name,
        "within_class_cosine": {
            rep: {"mean_over_pairs": _json_number(result.overall_pairs),
                  "mean_over_classes": _json_number(result.overall_classes)}
            for rep, result in analysis.within_class.items()
        },
        "cam_agreement": {
            "mean_over_pairs": {k: _json_number(v) for k, v in vars(agreement.overall_pairs).items()},
            "mean_over_classes": {
                k: _json_number(v) for k, v in vars(agreement.overall_classes).items()
            },
            "max_pairs_per_class": agreement.max_pairs_per_class,
            "kld_units": "nats, mean of both directions",
        },
        "clustering": {
            "k": len(analysis.classes),
            "silhouette_metric": any_clustering.silhouette_metric if any_clustering else None,
            "scaling": analysis.params.scaling,
        },
        "class_clusters": {
            "k": analysis.params.clusters_for(len(analysis.classes)),
            "assignment": (
                {name: int(c) for name, c in zip(analysis.class_names, analysis.class_clusters)}
                if analysis.class_clusters is not None else None
            ),
            "js_linkage": analysis.params.js_linkage,
        },
        "params": {
            "seed": analysis.params.seed,
            "max_pairs_per_class": analysis.params.max_pairs_per_class,
            "perplexity": analysis.params.perplexity,
            "class_clusters": analysis.params.class_clusters,
        },
        "skipped": [{"analysis": a, "reason": r} for a, r in analysis.skipped],
        "from_cache": {"representations": representations.from_cache,
                       "analysis": analysis.from_cache},
        "seconds": {**representations.seconds, **analysis.seconds},
    }


def _json_number(value: float) -> float | None:
    return None if value is None or math.isnan(value) else float(value)
