"""One view of the dashboard as one zip archive ("Export this view").

The archive holds the analysis's files exactly as ``classmap export`` writes them (the
same writers: :func:`weight_view_files`, :func:`image_view_files`), the view's own files
(CSV tables of what the page shows — :func:`csv_bytes`, :func:`matrix_csv` — and figures,
made by the app, which owns plotly), a text file with the URL that reopens the view, and
``manifest.json`` listing every member with its size and SHA-256.

Everything is built in memory and the archive's bytes are returned only when every
member is ready, so an error never leaves a half-written archive behind: the caller
either gets the whole zip or a :class:`~classmap.analysis.errors.ClassmapError`.
"""

from __future__ import annotations

import csv
import hashlib
import io
import json
import math
import re
import tempfile
import time
import zipfile
from collections.abc import Iterable, Mapping, Sequence
from pathlib import Path
from typing import Any

import numpy as np

from classmap.analysis import __version__
from classmap.analysis.errors import ClassmapError
from classmap.analysis.exports.folder import MANIFEST, TOOL, spreadsheet_safe
from classmap.analysis.exports.images import (write_clustering_csv, write_confusion_csv,
                                              write_within_class_csv)
from classmap.analysis.exports.weights import write_classes_csv, write_neighbours_csv
from classmap.analysis.methods.hierarchy import to_newick
from classmap.analysis.pipelines.images import ImageAnalysis
from classmap.analysis.pipelines.weights import WeightAnalysis

URL_FILE = "view-url.txt"
ARCHIVE_FORMAT = 1
# Member names: one flat level, letters, digits, "_", ".", "-" (no folders, no "..").
_MEMBER_NAME = re.compile(r"[A-Za-z0-9_][A-Za-z0-9_.-]{0,199}")
WEIGHT_FILES = ("classes.csv", "neighbours.csv", "tree.nwk")
IMAGE_FILES = ("within_class_similarity.csv", "clustering_metrics.csv", "confusion.csv")


def weight_view_files(result: WeightAnalysis) -> dict[str, bytes]:
    """The analysis's ``classes.csv``, ``neighbours.csv`` and ``tree.nwk``, byte for byte
    as ``classmap export`` writes them for the same model, metric, linkage and top-k
    (the same writers, into a temporary folder that is then read back and removed).

    Returns ``{file name: bytes}`` in :data:`WEIGHT_FILES` order.
    """
    head = result.head
    with tempfile.TemporaryDirectory(prefix="classmap-view-") as folder:
        root = Path(folder)
        write_classes_csv(root / "classes.csv", head.classes.ids, head.classes.names)
        write_neighbours_csv(root / "neighbours.csv", result)
        (root / "tree.nwk").write_text(to_newick(result.linkage, head.classes.names),
                                       encoding="utf-8")
        return {name: (root / name).read_bytes() for name in WEIGHT_FILES}


def image_view_files(analysis: ImageAnalysis) -> dict[str, bytes]:
    """The image analysis's ``within_class_similarity.csv``, ``clustering_metrics.csv`` and
    ``confusion.csv``, byte for byte as ``classmap export --data`` writes them (the same
    writers, into a temporary folder read back and removed), in :data:`IMAGE_FILES` order."""
    writers = {"within_class_similarity.csv": write_within_class_csv,
               "clustering_metrics.csv": write_clustering_csv,
               "confusion.csv": write_confusion_csv}
    with tempfile.TemporaryDirectory(prefix="classmap-view-") as folder:
        root = Path(folder)
        for name in IMAGE_FILES:
            writers[name](root / name, analysis)
        return {name: (root / name).read_bytes() for name in IMAGE_FILES}


def csv_cell(value: Any) -> Any:
    """One CSV cell of a view's table: floats as ``repr`` (the shortest text that reads back
    to the same float64), NaN and None as an empty cell, text made spreadsheet-safe."""
    if value is None:
        return ""
    if isinstance(value, (bool, np.bool_)):
        return "true" if value else "false"
    if isinstance(value, (int, np.integer)):
        return int(value)
    if isinstance(value, (float, np.floating)):
        return "" if not math.isfinite(float(value)) else repr(float(value))
    return spreadsheet_safe(str(value))


def csv_bytes(header: Sequence[str], rows: Iterable[Sequence[Any]]) -> bytes:
    """A CSV file (``\\n`` line ends, UTF-8) of ``header`` and ``rows``, cells by :func:`csv_cell`.

    Raises ClassmapError when a row's length differs from the header's."""
    buffer = io.StringIO()
    writer = csv.writer(buffer, lineterminator="\n")
    writer.writerow([csv_cell(name) for name in header])
    for number, row in enumerate(rows, start=1):
        row = list(row)
        if len(row) != len(header):
            raise ClassmapError(f"row {number} of a view's table has {len(row)} cells for "
                                f"{len(header)} columns; this is a bug, please report it")
        writer.writerow([csv_cell(value) for value in row])
    return buffer.getvalue().encode("utf-8")


def matrix_csv(corner: str, row_names: Sequence[str], column_names: Sequence[str],
               matrix: Any) -> bytes:
    """A labelled matrix ``[R, K]`` as CSV: header ``corner`` + the column names, then one
    row per row name."""
    values = np.asarray(matrix)
    if values.shape != (len(row_names), len(column_names)):
        raise ClassmapError(f"a matrix of shape {values.shape} does not fit {len(row_names)} "
                            f"row and {len(column_names)} column names; this is a bug, "
                            "please report it")
    return csv_bytes([corner, *column_names],
                     ([name, *row] for name, row in zip(row_names, values.tolist())))


def check_member_name(name: str) -> str:
    """``name`` if it is a plain file name fit for the archive; a one-line error if not."""
    if not isinstance(name, str) or not _MEMBER_NAME.fullmatch(name) or ".." in name:
        raise ClassmapError(f"archive member name {name!r} is not a plain file name; "
                            "use letters, digits, '_', '.' and '-' only")
    if name == MANIFEST:
        raise ClassmapError(f"archive member name {MANIFEST!r} is reserved for the manifest; "
                            "choose another name")
    return name


def build_archive(members: Mapping[str, bytes], url: str,
                  about: Mapping[str, Any] | None = None) -> bytes:
    """The zip archive of ``members`` (file name → bytes), :data:`URL_FILE` (``url`` and a
    line saying what it is) and ``manifest.json``.

    ``about`` goes into the manifest as it is (model, metric, linkage, selection…). The
    manifest lists each member's size and SHA-256 under ``file_info``, like the folder
    exports' manifest. Members are stored in the order given, deflated.

    Raises ClassmapError on an empty member set, a bad member name or a member that is
    not bytes; nothing is returned then.
    """
    if not members:
        raise ClassmapError("nothing to put in the archive; wait for the view to be drawn")
    if not isinstance(url, str) or not url.startswith(("http://", "https://")):
        raise ClassmapError(f"the view's URL {url!r} is not an http(s) address; "
                            "reload the page and export again")
    files: dict[str, bytes] = {}
    for name, data in members.items():
        check_member_name(name)
        if name == URL_FILE:
            raise ClassmapError(f"archive member name {URL_FILE!r} is reserved for the URL; "
                                "choose another name")
        if not isinstance(data, (bytes, bytearray)):
            raise ClassmapError(f"archive member {name!r} is {type(data).__name__}, not bytes; "
                                "encode it first")
        files[name] = bytes(data)
    files[URL_FILE] = (f"{url}\n\n# Open this address in a browser to reopen the view "
                       "(on the server that exported it).\n").encode("utf-8")
    manifest = {
        "tool": TOOL,
        "version": __version__,
        "archive_format": ARCHIVE_FORMAT,
        "kind": "view",
        "url": url,
        **dict(about or {}),
        "files": list(files),
        "file_info": {name: {"bytes": len(data), "sha256": hashlib.sha256(data).hexdigest()}
                      for name, data in files.items()},
    }
    files[MANIFEST] = (json.dumps(manifest, indent=2, sort_keys=False) + "\n").encode("utf-8")
    stamp = time.localtime()[:6]
    buffer = io.BytesIO()
    with zipfile.ZipFile(buffer, "w", compression=zipfile.ZIP_DEFLATED) as archive:
        for name, data in files.items():
            info = zipfile.ZipInfo(name, date_time=stamp)
            info.compress_type = zipfile.ZIP_DEFLATED
            info.external_attr = 0o644 << 16
            archive.writestr(info, data)
    return buffer.getvalue()
