"""The Classes page's view for "Export this view" (app/shell/export_view.py).

:func:`view_export` gathers what the page shows for a selection: the analysis's files as
``classmap export`` writes them (``classes.csv``, ``neighbours.csv``, ``tree.nwk``), the
selection's own CSVs (the same as the page's CSV buttons) and the four figures, built by
the same logic functions as the page's graphs (full figures, selection marks included),
named like the graphs' own downloads.
"""

from __future__ import annotations

from typing import Any

from classmap.analysis.errors import ClassmapError
from classmap.analysis.exports.view_archive import weight_view_files
from classmap.analysis.methods.embedding import EMBEDDING_LABELS
from classmap.app.pages.classes import ids
from classmap.app.pages.classes.callbacks import (class_map_logic, focal_index, neighbours_logic,
                                                  summarise, update_dendrogram_logic,
                                                  update_heatmap_logic)
from classmap.app.shell.analysis import ready_view
from classmap.app.shell.export_view import ExportFigure, ViewExport
from classmap.app.shell.services import METRIC_LABELS, Services
from classmap.app.shell.widgets import download_name, graph_view

VIEW = "classes"
# Fields named in the archive's file name (the graphs' own names use ids.DOWNLOAD_FIELDS).
ARCHIVE_FIELDS = ("metric", "linkage", "focal", "node", "classes", "zoom", "cut", "embedding")
SIZES = {ids.HEATMAP: (1000, 900), ids.DENDROGRAM: (1200, 420), ids.NEIGHBOURS: (900, None),
         ids.CLASS_MAP: (1000, 720)}
ORDER_AXIS = "classes in dendrogram order"


def view_export(services: Services, selection: dict, status: dict) -> ViewExport:
    """The Classes page's view of ``selection`` (needs its analysis ready)."""
    sel, view, message = ready_view(services, selection, status)
    if view is None:
        raise ClassmapError(f"nothing to export yet ({message.rstrip('…')}); wait for the "
                            "views to be drawn, then export")
    label = view.entry.label
    analysis = f"{METRIC_LABELS[sel.metric]}; {sel.linkage} linkage"
    where = []
    if sel.zoom is not None:
        where.append(f"zoomed to subtree {sel.zoom}")
    if sel.node is not None:
        where.append(f"subtree {sel.node} selected")
    if sel.classes:
        where.append(f"{len(sel.classes)} classes selected")
    context = "; ".join([analysis, *where])
    files = weight_view_files(view.analysis)
    summary = summarise(services, view, sel)
    if summary is not None:
        files["selection.csv"] = services.selection_csv(view, summary, sel.cut).encode("utf-8")
    focal = focal_index(view, sel)
    if focal is not None:
        files["focal-neighbours.csv"] = services.neighbours_csv(view, focal).encode("utf-8")

    figures: dict[str, ExportFigure] = {}

    def add(graph_id: str, figure: Any, title: str, subtitle: str) -> None:
        width, height = SIZES[graph_id]
        figure.update_layout(width=width, **({"height": height} if height else {}))
        stem = download_name(graph_view(graph_id), selection, ids.DOWNLOAD_FIELDS[graph_id])
        figures[stem] = ExportFigure(figure, title, subtitle)

    heatmap = update_heatmap_logic(services, selection, status, None, None, None)[0]
    dendrogram = update_dendrogram_logic(services, selection, status, None)[0]
    leaf_range = selection.get("range")
    if isinstance(leaf_range, (list, tuple)) and len(leaf_range) in (2, 4):
        c0, c1, *rows = (int(v) for v in leaf_range)
        r0, r1 = rows or (c0, c1)
        heatmap.update_xaxes(range=[c0 - 0.5, c1 + 0.5])
        heatmap.update_yaxes(range=[r1 + 0.5, r0 - 0.5])
        dendrogram.update_xaxes(range=[c0 - 0.5, c1 + 0.5])
        context += f"; leaf positions {c0}–{c1}" + (f" × {r0}–{r1}" if rows else "")
    heatmap.update_xaxes(title=dict(text=ORDER_AXIS))
    heatmap.update_yaxes(title=dict(text=ORDER_AXIS))
    add(ids.HEATMAP, heatmap, f"Class similarity — {label}", context)
    add(ids.DENDROGRAM, dendrogram, f"Hierarchy of the classes — {label}", context)
    if focal is not None:
        bars = neighbours_logic(services, selection, status)[0]
        add(ids.NEIGHBOURS, bars, f"Nearest classes to {view.names[focal]} — {label}",
            f"{METRIC_LABELS[sel.metric]}; top {sel.k}")
    class_map = class_map_logic(services, selection, status, None, None)
    shown = EMBEDDING_LABELS.get(sel.embedding, sel.embedding)
    note = class_map[3] or ""
    if sel.embedding != "pca" and not services.embedding_ready(sel.model, sel.embedding):
        # The page shows PCA until the method is computed (the export starts no job).
        note = f"{shown} is not computed yet; PCA shown instead"
        shown = EMBEDDING_LABELS["pca"]
    add(ids.CLASS_MAP, class_map[0], f"Class map ({shown}) — {label}", note)
    about = {"model": {"id": sel.model, "label": label}, "metric": sel.metric,
             "linkage": sel.linkage, "top_k": view.analysis.params.top_k,
             "data_files": list(files), "figures": list(figures)}
    return ViewExport(view=VIEW, fields=ARCHIVE_FIELDS, files=files, figures=figures,
                      about=about)
