"""The weight-space analysis as files: classes.csv, neighbours.csv, similarity.npy,
linkage.npy and tree.nwk (the files every ``classmap export`` writes)."""

from __future__ import annotations

import csv
import io
from collections.abc import Iterable
from pathlib import Path
from typing import Any

import numpy as np

from classmap.analysis.exports.folder import Writer, spreadsheet_safe
from classmap.analysis.methods.hierarchy import to_newick
from classmap.analysis.pipelines.weights import MAX_DENSE_CLASSES, WeightAnalysis


def weight_writer(result: WeightAnalysis) -> Writer:
    """Writer of the foundation's files: classes, neighbours, similarity, linkage, tree."""

    def write(folder: Path) -> dict[str, Any]:
        head = result.head
        write_classes_csv(folder / "classes.csv", head.classes.ids, head.classes.names)
        write_neighbours_csv(folder / "neighbours.csv", result)
        if result.similarity is not None:
            np.save(folder / "similarity.npy", result.similarity.astype(np.float32),
                    allow_pickle=False)
        np.save(folder / "linkage.npy", result.linkage.astype(np.float64), allow_pickle=False)
        (folder / "tree.nwk").write_text(to_newick(result.linkage, head.classes.names),
                                         encoding="utf-8")
        return {
            "model": {**head.spec.to_json(), "source": head.source,
                      "class_names_from": head.classes.source, "head_sha256": head.digest},
            "num_classes": head.num_classes,
            "feature_dim": head.feature_dim,
            "metric": result.params.metric,
            "score_kind": result.score_kind,
            "similarity_npy": (
                "written" if result.similarity is not None
                else f"omitted: more than {MAX_DENSE_CLASSES} classes"
            ),
            "standardisation": "rows: (w - mean) / std, unbiased std (ddof=1)",
            "linkage": result.params.linkage,
            "linkage_input": (
                "standardised row vectors (Euclidean)" if result.params.linkage == "ward"
                else ("condensed 1 - cosine" if result.params.metric == "cosine"
                      else "condensed Euclidean distance")
            ),
            "top_k": result.params.top_k,
            "from_cache": result.from_cache,
        }

    return write


def write_classes_csv(path: Path, ids: Iterable[str], names: Iterable[str]) -> None:
    """``index,id,name`` rows, csv-quoted; an id or name a spreadsheet would run as a
    formula gets a leading ``'`` (:func:`spreadsheet_safe`)."""
    with open(path, "w", newline="", encoding="utf-8") as handle:
        writer = csv.writer(handle)
        writer.writerow(["index", "id", "name"])
        for index, (class_id, name) in enumerate(zip(ids, names)):
            writer.writerow(
                [index, spreadsheet_safe(class_id), spreadsheet_safe(name)]
            )


def write_neighbours_csv(path: Path, result: WeightAnalysis) -> None:
    """``class_index,rank,neighbour_index,score`` with rank 1 = nearest, self excluded."""
    index = result.neighbours.index
    score = result.neighbours.score
    num_classes, top_k = index.shape
    buffer = io.StringIO()
    buffer.write("class_index,rank,neighbour_index,score\n")
    ranks = [str(r) for r in range(1, top_k + 1)]
    for row in range(num_classes):
        row_text = str(row)
        neighbours = index[row].tolist()
        scores = score[row].tolist()
        buffer.writelines(
            f"{row_text},{ranks[r]},{neighbours[r]},{scores[r]:.7g}\n" for r in range(top_k)
        )
    path.write_text(buffer.getvalue(), encoding="utf-8")
