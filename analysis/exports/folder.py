"""Writing results as files, atomically: all of them or none.

:func:`write_export` creates a temporary folder beside ``out``, lets each writer fill
it, and renames it into place only when every writer succeeded. An existing ``out``
folder is replaced only if it is empty or was itself written by Classmap (it has a
``manifest.json``), so a typo in ``--out`` cannot wipe someone's data.

Writers are plain functions ``writer(folder: Path) -> dict`` returning manifest
entries; other analyses (ALD fits, image-based results) add their own writers.
"""

from __future__ import annotations

import csv
import io
import json
import os
import platform
import shutil
import tempfile
from collections.abc import Callable, Iterable
from pathlib import Path
from typing import Any

import numpy as np

from classmap.analysis import __version__
from classmap.analysis.errors import ClassmapError
from classmap.analysis.methods.hierarchy import to_newick
from classmap.analysis.pipelines.weights import MAX_DENSE_CLASSES, WeightAnalysis

Writer = Callable[[Path], dict[str, Any]]
MANIFEST = "manifest.json"


def check_output_dir(out: str | Path) -> Path:
    """Validate ``--out`` before any work: its nearest existing ancestor must be a
    writable folder, and an existing ``out`` must be empty or a previous Classmap export."""
    target = Path(out).expanduser().absolute()
    if target.exists() and not target.is_dir():
        raise ClassmapError(f"--out {target} exists and is a file; give a folder path")
    if target.is_dir() and any(target.iterdir()) and not (target / MANIFEST).exists():
        raise ClassmapError(
            f"--out {target} is a non-empty folder that is not a Classmap export; "
            "give a new or empty folder"
        )
    ancestor = target.parent
    while not ancestor.exists() and ancestor != ancestor.parent:
        ancestor = ancestor.parent
    if not ancestor.is_dir():
        raise ClassmapError(
            f"--out {target} cannot be created because {ancestor} is a file; choose another path"
        )
    if not os.access(ancestor, os.W_OK | os.X_OK):
        raise ClassmapError(f"--out {target} is not writable (no permission on {ancestor}); "
                            "choose a folder you can write to")
    return target


def write_export(out: str | Path, writers: Iterable[Writer], manifest: dict[str, Any]) -> Path:
    """Run every writer into a temporary folder, add ``manifest.json``, move into place.

    Returns the final folder. On any error the temporary folder is removed and
    ``out`` is left exactly as it was.
    """
    target = check_output_dir(out)
    try:
        target.parent.mkdir(parents=True, exist_ok=True)
        staging = Path(tempfile.mkdtemp(prefix=f".{target.name}.partial-", dir=target.parent))
    except OSError as error:
        raise ClassmapError(f"--out {target} could not be created ({error.strerror}); "
                            "choose a folder you can write to") from None
    try:
        full_manifest = dict(manifest)
        for writer in writers:
            full_manifest.update(writer(staging))
        # The list of files is what is really there, whichever writers ran.
        full_manifest["files"] = sorted(path.name for path in staging.iterdir())
        (staging / MANIFEST).write_text(json.dumps(full_manifest, indent=2, default=str) + "\n")
        os.chmod(staging, 0o755)
        if target.exists():
            backup = Path(tempfile.mkdtemp(prefix=f".{target.name}.old-", dir=target.parent))
            os.replace(target, backup / "old")
            os.replace(staging, target)
            shutil.rmtree(backup, ignore_errors=True)
        else:
            os.replace(staging, target)
    except OSError as error:
        shutil.rmtree(staging, ignore_errors=True)
        raise ClassmapError(f"--out {target} could not be written ({error.strerror or error}); "
                            "check free space and permissions") from None
    except BaseException:
        shutil.rmtree(staging, ignore_errors=True)
        raise
    return target


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
    """``index,id,name`` rows, csv-quoted."""
    with open(path, "w", newline="", encoding="utf-8") as handle:
        writer = csv.writer(handle)
        writer.writerow(["index", "id", "name"])
        for index, (class_id, name) in enumerate(zip(ids, names)):
            writer.writerow([index, class_id, name])


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


def versions() -> dict[str, str]:
    """Versions that determine the numbers: classmap, torch, timm, numpy, scipy, python."""
    import scipy
    import timm
    import torch

    return {
        "classmap": __version__,
        "torch": torch.__version__,
        "timm": timm.__version__,
        "numpy": np.__version__,
        "scipy": scipy.__version__,
        "python": platform.python_version(),
    }
