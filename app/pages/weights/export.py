"""The Weight distributions page's view for "Export this view" (app/shell/export_view.py).

:func:`view_export` gathers what the page shows for a selection:

- ``class-fits.csv`` — the per-class fit table (both fits of every class: the columns of
  :class:`~classmap.analysis.methods.ald.AldTable`, with the class's id and name);
- with a focal class: ``focal-histogram.csv`` (the histogram's bins: edges, count,
  density), ``focal-densities.csv`` (the two fitted curves as drawn) and
  ``focal-split.csv`` (the channel split's nodes, as in the icicle);
- with a split node (``snode``): ``node-channels.csv`` (its channels, largest weight first);

and the figures, built by the page's own logic functions (distributions, the class
scatter on both pairs of axes, the focal class's histogram, the split icicle), named
like the graphs' own downloads.
"""

from __future__ import annotations

from typing import Any

import numpy as np

from classmap.analysis.errors import ClassmapError
from classmap.analysis.exports.view_archive import csv_bytes
from classmap.app.pages.weights import ids
from classmap.app.pages.weights.callbacks import (distributions_logic, focal_logic, icicle_logic,
                                                  scatter_update_logic, split_params)
from classmap.app.pages.weights.services import (ald_analysis, class_distribution, class_split,
                                                 node_of_label)
from classmap.app.shell.analysis import ready_view
from classmap.app.shell.export_view import ExportFigure, ViewExport
from classmap.app.shell.services import Services
from classmap.app.shell.widgets import download_name, graph_view

VIEW = "weights"
PAGE = "weights"
ARCHIVE_FIELDS = ("focal", "split", "minsize", "snode")  # download_name spells "+-" as "pm"
# The graphs' download fields (as the page's name_downloads) and export sizes.
GRAPH_FIELDS = {ids.WEIGHTS_OVERVIEW: (), ids.WEIGHTS_SCATTER: (),
                ids.WEIGHTS_HISTOGRAM: ("focal",),
                ids.WEIGHTS_ICICLE: ("focal", "split", "minsize", "snode")}
WIDTH = 1100
AXES_TITLES = {"kappa-ks": "κ (MLE) against KS statistic",
               "r2": "R² of the regression, positive against negative side"}


def view_export(services: Services, selection: dict, status: dict) -> ViewExport:
    """The Weight distributions page's view of ``selection`` (needs its analysis ready)."""
    sel, view, message = ready_view(services, selection, status)
    if view is None:
        raise ClassmapError(f"nothing to export yet ({message.rstrip('…')}); wait for the "
                            "weight distributions to be drawn, then export")
    label = view.entry.label
    analysis = ald_analysis(services, sel.model)
    columns = analysis.table.columns()
    names = list(columns)
    files = {"class-fits.csv": csv_bytes(
        ["class_id", "class_name", *names],
        ([view.ids[k], view.names[k], *(columns[name][k].item() for name in names)]
         for k in range(view.num_classes)))}
    figures: dict[str, ExportFigure] = {}

    def add(graph_id: str, figure: Any, title: str, subtitle: str = "", suffix: str = "") -> None:
        figure.update_layout(width=WIDTH)
        stem = download_name(graph_view(graph_id), selection, GRAPH_FIELDS[graph_id]) + suffix
        figures[stem] = ExportFigure(figure, title, subtitle)

    add(ids.WEIGHTS_OVERVIEW, distributions_logic(services, selection, status)[0],
        f"Weight distributions over the classes — {label}",
        "R² of the regression (each side) and κ of the maximum-likelihood fit, one value "
        "per class")
    for axes, title in AXES_TITLES.items():
        figure = scatter_update_logic(services, selection, status, axes, set())
        add(ids.WEIGHTS_SCATTER, figure, f"Classes by their fits — {label}", title,
            "" if axes == "kappa-ks" else f"-{axes}")

    focal = view.find_class(sel.focal) if sel.focal else None
    mode, min_size = split_params(sel)
    about: dict[str, Any] = {"model": {"id": sel.model, "label": label},
                             "focal": None, "split": mode, "minsize": min_size}
    if focal is not None:
        name = view.names[focal]
        about["focal"] = {"index": focal, "id": view.ids[focal], "name": name}
        dist = class_distribution(services, view, focal)
        hist = dist.histogram
        files["focal-histogram.csv"] = csv_bytes(
            ["bin", "left", "right", "count", "density"],
            ([b, hist.edges[b], hist.edges[b + 1], hist.counts[b], hist.density[b]]
             for b in range(hist.counts.size)))
        nan = np.full(dist.x.shape, np.nan)
        mle = dist.mle_density if dist.mle_density is not None else nan
        seed = dist.seed_density if dist.seed_density is not None else nan
        files["focal-densities.csv"] = csv_bytes(
            ["weight", "mle_density", "regression_density"],
            zip(dist.x.tolist(), mle.tolist(), seed.tolist()))
        _, histogram, _ = focal_logic(services, selection, status)
        add(ids.WEIGHTS_HISTOGRAM, histogram, f"Head weights of {name} — {label}",
            f"{view.head.feature_dim:,} weights; asymmetric Laplace (MLE) and the regression's "
            "density")
        tree = class_split(view, focal, mode, min_size)
        files["focal-split.csv"] = csv_bytes(
            ["node", "path", "parent", "channels", "mean_weight", "stop"],
            ([k, tree.label[k], int(tree.parent[k]) if tree.parent[k] >= 0 else None,
              tree.size[k], tree.mean[k], tree.stop[k]] for k in range(tree.num_nodes)))
        snode = sel.extra.get("snode")
        node = node_of_label(tree, snode)
        add(ids.WEIGHTS_ICICLE, icicle_logic(services, selection, status, snode),
            f"Channel split of {name} — {label}",
            f"{mode} mode, min size {min_size}" + (f"; node {snode} outlined"
                                                   if node is not None else ""))
        if node is not None:
            channels = tree.channels[node]
            weights = view.head.weight[focal]
            order = channels[(-weights[channels]).argsort(kind="stable")]
            files["node-channels.csv"] = csv_bytes(
                ["channel", "weight"], ([int(c), float(weights[c])] for c in order))
            about["snode"] = snode
    about.update(data_files=list(files), figures=list(figures),
                 pooled_fit=analysis.pooled.to_json(),
                 note="The scatter is exported on both pairs of axes (the page's axes "
                      "toggle is not part of the URL).")
    return ViewExport(view=VIEW, fields=ARCHIVE_FIELDS, files=files, figures=figures,
                      about=about)


def register(app: Any) -> None:
    """The page's exporter, for the header's "Export this view"."""
    from classmap.app.shell.export_view import register_view_export

    register_view_export(app, PAGE, view_export)
