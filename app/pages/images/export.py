"""The image pages' views for "Export this view" (app/shell/export_view.py).

One exporter per page, each over the (model, data set) image analysis the page shows —
only when it is ready (in memory or in the result cache: the export starts no job):

- **Samples** — ``samples.csv`` (every image: true and predicted class, confidence and its
  2-D PCA coordinates of the chosen representation), with a selected image
  ``sample.csv`` (its top classes) and ``sample-image.png`` / ``sample-gradcam.png`` (the
  picture and its Grad-CAM overlay, as the page shows them); the scatter.
- **Clustering** — ``clustering-assignments.csv`` (every image's cluster under each
  representation and algorithm, with its PCA coordinates), ``within_class_similarity.csv``
  and ``clustering_metrics.csv`` (as ``classmap export --data`` writes them); the PCA
  scatters by true class and by cluster (each algorithm).
- **Confidence** — ``confidence-js.csv`` (the class × class Jensen–Shannon matrix),
  ``confusion.csv``, ``class-clusters.csv``, ``tsne.csv``; the heatmap, t-SNE and
  confusion matrix.

Figures come from the pages' own logic functions, named like the graphs' downloads.
"""

from __future__ import annotations

import base64
from typing import Any, Callable

import numpy as np

from classmap.analysis.errors import ClassmapError
from classmap.analysis.exports.view_archive import (csv_bytes, image_view_files, matrix_csv)
from classmap.analysis.methods.representations import CLUSTERING_ALGORITHMS, REPRESENTATIONS
from classmap.app.pages.images import callbacks as cb
from classmap.app.pages.images import ids
from classmap.app.pages.images.layout import default_data, digits_mismatch
from classmap.app.shell.export_view import ExportFigure, ViewExport
from classmap.app.shell.images import REPRESENTATION_LABELS, ImageResult, image_services_for
from classmap.app.shell.jobs import READY, job_status
from classmap.app.shell.selection import coerce_selection
from classmap.app.shell.services import Services
from classmap.app.shell.widgets import download_name, graph_view

GRAPH_FIELDS = ("data", "rep")  # the graphs' download fields (the pages' name_downloads)
ARCHIVE_FIELDS = ("data", "rep", "focal", "image")
WIDTH = 1100


class _View:
    """One image page's view: the selection (``data`` filled in), its ready result and
    the status the pages' logic functions read."""

    def __init__(self, services: Services, selection: dict) -> None:
        self.images = image_services_for(services)
        sel = coerce_selection(selection, services.settings.default_model)
        model = str(sel["model"])
        data = sel.get("data") or default_data(services.settings, model,
                                               self.images.data_sets)
        self.selection = {**sel, "data": data}
        mismatch = digits_mismatch(services.settings, model, data)
        if mismatch:
            raise ClassmapError(f"nothing to export: {mismatch.rstrip('.')}")
        try:
            self.images.data_entry(data)
            ready = self.images.ready(model, data)
        except ClassmapError as error:
            raise ClassmapError(f"nothing to export: {str(error).rstrip('.')}") from None
        if not ready:
            raise ClassmapError(f"nothing to export yet: the image analysis of {model} on "
                                f"{data} is not computed; wait for the page's progress bar "
                                "to finish, then export")
        self.status = job_status((model, data), READY)
        self.result: ImageResult = self.images.result(model, data)
        self.label = services.model_entry(model).label
        self.class_ids = services.head(model).classes.ids
        self.figures: dict[str, ExportFigure] = {}

    @property
    def rep(self) -> str:
        rep = self.selection.get("rep") or "features"
        return rep if rep in REPRESENTATIONS else "features"

    def add(self, graph_id: str, figure: Any, title: str, subtitle: str = "",
            suffix: str = "") -> None:
        figure.update_layout(width=WIDTH)
        stem = download_name(graph_view(graph_id), self.selection, GRAPH_FIELDS) + suffix
        self.figures[stem] = ExportFigure(figure, title, subtitle)

    def heading(self) -> str:
        return f"{self.label} on {self.result.data}"

    def about(self, files: dict[str, bytes], **extra: Any) -> dict[str, Any]:
        reps = self.result.representations
        return {"model": {"id": self.result.model, "label": self.label},
                "data": self.result.data, "images": int(reps.num_images),
                "classes_with_images": len(self.result.analysis.classes),
                "skipped": [list(item) for item in self.result.analysis.skipped],
                **extra, "data_files": list(files), "figures": list(self.figures)}

    def sample_rows(self) -> tuple[list[str], list[list[Any]]]:
        """Every image: index, id, true / predicted class, confidence."""
        reps = self.result.representations
        names = reps.class_names
        header = ["index", "sample_id", "true_index", "true_id", "true_name", "pred_index",
                  "pred_name", "confidence"]
        rows = [[i, reps.sample_ids[i], int(reps.labels[i]), self.class_ids[int(reps.labels[i])],
                 names[int(reps.labels[i])], int(reps.preds[i]), names[int(reps.preds[i])],
                 float(reps.confidence[i])] for i in range(reps.num_images)]
        return header, rows


def _png(uri: str) -> bytes:
    prefix = "data:image/png;base64,"
    if not isinstance(uri, str) or not uri.startswith(prefix):
        raise ClassmapError("the selected image could not be drawn; pick it again, then export")
    return base64.b64decode(uri[len(prefix):])


def samples_export(services: Services, selection: dict, status: dict) -> ViewExport:
    """The Samples page: every image's projection and labels, the selected image."""
    view = _View(services, selection)
    rep, result = view.rep, view.result
    pca = result.analysis.pca.get(rep)
    if pca is None:
        raise ClassmapError(f"this data set has no PCA of {rep}; pick another representation, "
                            "then export")
    coords = np.asarray(pca.coordinates, dtype=np.float64)
    header, rows = view.sample_rows()
    files = {"samples.csv": csv_bytes(
        [*header, "pc1", "pc2"], ([*row, coords[i, 0], coords[i, 1]]
                                  for i, row in enumerate(rows)))}
    ratio = [float(v) for v in pca.explained_variance_ratio]
    view.add(ids.SAMPLES_GRAPH, cb.samples_figure_logic(view.images, view.selection,
                                                        view.status),
             f"Images by {REPRESENTATION_LABELS[rep].split(' (')[0]} (PCA) — {view.heading()}",
             f"one point per image, coloured by true class; PC 1 and PC 2 explain "
             f"{100 * sum(ratio[:2]):.1f}% of the variance")
    extra: dict[str, Any] = {"representation": rep, "explained_variance_ratio": ratio[:2]}
    image = view.selection.get("image")
    if isinstance(image, int) and not isinstance(image, bool):
        sample = view.images.sample(result, image)
        s = sample.summary
        names = result.representations.class_names
        files["sample.csv"] = csv_bytes(
            ["rank", "class_index", "class_id", "class_name", "softmax"],
            ([rank, int(c), view.class_ids[int(c)], names[int(c)], float(p)]
             for rank, (c, p) in enumerate(zip(s.top_classes, s.top_scores), start=1)))
        files["sample-image.png"] = _png(sample.image_uri)
        files["sample-gradcam.png"] = _png(sample.cam_uri)
        extra["sample"] = {"index": s.index, "sample_id": s.sample_id,
                           "true_class": s.label_name, "predicted_class": s.pred_name,
                           "confidence": float(s.confidence),
                           "gradcam": "Grad-CAM of the predicted class (ReLU of the feature "
                                      "maps weighted by the gradient of its logit), inferno "
                                      "colours: dark = 0, yellow = 1"}
    return ViewExport(view="samples", fields=ARCHIVE_FIELDS, files=files,
                      figures=view.figures, about=view.about(files, **extra))


def clustering_export(services: Services, selection: dict, status: dict) -> ViewExport:
    """The Clustering page: assignments of every clustering, the scores, both scatters."""
    view = _View(services, selection)
    rep, analysis = view.rep, view.result.analysis
    header, rows = view.sample_rows()
    done = [(r, a) for r in REPRESENTATIONS for a in CLUSTERING_ALGORITHMS
            if (r, a) in analysis.clustering]
    assignments = [np.asarray(analysis.clustering[key].assignments) for key in done]
    coords = np.asarray(analysis.pca[rep].coordinates, dtype=np.float64) \
        if rep in analysis.pca else None
    columns = [f"cluster_{r}_{a}" for r, a in done]
    files = {"clustering-assignments.csv": csv_bytes(
        [*header, *(["pc1", "pc2"] if coords is not None else []), *columns],
        ([*row, *(coords[i].tolist() if coords is not None else []),
          *(int(values[i]) + 1 for values in assignments)] for i, row in enumerate(rows)))}
    files.update(image_view_files(analysis))
    rep_name = REPRESENTATION_LABELS[rep].split(" (")[0]
    for algorithm in CLUSTERING_ALGORITHMS:
        true, clusters = cb.clustering_figures_logic(view.images, view.selection, view.status,
                                                     algorithm)
        if algorithm == CLUSTERING_ALGORITHMS[0]:
            view.add(ids.CLUSTERING_TRUE, true, f"Images by {rep_name} (PCA), coloured by "
                     f"true class — {view.heading()}", "one point per image")
        view.add(ids.CLUSTERING_CLUSTERS, clusters,
                 f"{cb.ALGORITHM_LABELS[algorithm]} clusters of {rep_name} — {view.heading()}",
                 f"k = {len(analysis.classes)} clusters, shown on the PCA of {rep_name}",
                 f"-{algorithm}")
    extra = {"representation": rep, "clusters_numbered_from": 1,
             "note": "Both algorithms are exported (the page's algorithm toggle is not part "
                     "of the URL); cluster numbers are those of the page's legend."}
    return ViewExport(view="clustering", fields=ARCHIVE_FIELDS, files=files,
                      figures=view.figures, about=view.about(files, **extra))


def confidence_export(services: Services, selection: dict, status: dict) -> ViewExport:
    """The Confidence page: the JS matrix, confusion, class clusters, t-SNE; three figures."""
    view = _View(services, selection)
    analysis = view.result.analysis
    names = list(analysis.class_names)
    files = {"confidence-js.csv": matrix_csv("class", names, names, analysis.js),
             "confusion.csv": image_view_files(analysis)["confusion.csv"]}
    classes = [int(c) for c in analysis.classes]
    files["classes.csv"] = csv_bytes(
        ["row", "class_index", "class_id", "class_name", "kmeans_cluster"],
        ([row, c, view.class_ids[c], names[row],
          None if analysis.class_clusters is None else int(analysis.class_clusters[row]) + 1]
         for row, c in enumerate(classes)))
    if analysis.tsne is not None:
        header, rows = view.sample_rows()
        tsne = np.asarray(analysis.tsne, dtype=np.float64)
        files["tsne.csv"] = csv_bytes([*header, "tsne1", "tsne2"],
                                      ([*row, *tsne[i].tolist()] for i, row in enumerate(rows)))
    heatmap, _, tsne_figure, confusion = cb.confidence_figures_logic(
        view.images, view.selection, view.status)
    view.add(ids.CONFIDENCE_HEATMAP, heatmap,
             f"Class similarity from confidence scores — {view.heading()}",
             "Jensen–Shannon divergence (base 2) between the classes' mean softmax vectors; "
             "average-linkage order")
    view.add(ids.CONFIDENCE_TSNE, tsne_figure, f"t-SNE of the softmax vectors — {view.heading()}",
             "one point per image, coloured by true class")
    view.add(ids.CONFIDENCE_CONFUSION, confusion, f"Confusion matrix — {view.heading()}",
             "rows: true class; columns: predicted class; colour: share of the row")
    return ViewExport(view="confidence", fields=ARCHIVE_FIELDS, files=files,
                      figures=view.figures, about=view.about(files))


EXPORTERS: dict[str, Callable[[Services, dict, dict], ViewExport]] = {
    "samples": samples_export, "clustering": clustering_export,
    "confidence": confidence_export}


def register(app: Any) -> None:
    """The three pages' exporters, for the header's "Export this view"."""
    from classmap.app.shell.export_view import register_view_export

    for page, exporter in EXPORTERS.items():
        register_view_export(app, page, exporter)
