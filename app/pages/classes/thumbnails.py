"""Thumbnail strips on the Classes page (issue 14): a row of each class's first images
next to the nearest classes and under the selection panel's list, when the model has
images (the digits for a digits model, or an image folder of its classes).

Kept apart from the page's layout and callbacks: :func:`neighbour_strips` and
:func:`selection_strips` are the layout's two hooks, :func:`register` the callbacks'.
One server callback fills both strips' stores when the fields they depend on change
(:data:`STRIP_FIELDS`, projected in the browser); the browser draws them
(``classmap.renderThumbStrips``). A click on a thumbnail makes its class the focal
class. Thumbnails are named by (model, data set, index) — app/shell/thumbnails.py —
never by path; an image folder is never read here (only a scan the image pages'
background job stored is used).
"""

from __future__ import annotations

from typing import Any, Callable, Sequence

import numpy as np
from dash import Input, Output, dcc, html
from dash.exceptions import PreventUpdate

from classmap.analysis.errors import ClassmapError
from classmap.analysis.loading.data import DIGITS
from classmap.app.pages.classes import ids
from classmap.app.shell.analysis import ready_view
from classmap.app.shell.clientside import clientside, project_selection, select_on
from classmap.app.shell.services import Services, short_name
from classmap.app.shell.thumbnails import reads_digits, register_thumbnail_route, thumbnail_url

NEIGHBOUR_THUMBS = "classes-neighbour-thumbs"  # <div>: strips drawn by the browser
NEIGHBOUR_THUMBS_DATA = "classes-neighbour-thumbs-data"  # dcc.Store: the strips' data
SELECTION_THUMBS = "classes-selection-thumbs"
SELECTION_THUMBS_DATA = "classes-selection-thumbs-data"
THUMBS_KEY = "classes-thumbs-key"  # dcc.Store: the selection fields the strips depend on
THUMBS_PICK = "classes-thumbs-pick"  # dcc.Store: a clicked thumbnail ({image, focal})
STRIP_FIELDS = ("model", "metric", "linkage", "focal", "k", "node", "classes", "data")
STRIP_IMAGES = 6  # thumbnails per class
STRIP_ROWS = 10  # classes with a strip, per list


def neighbour_strips() -> list[Any]:
    """The nearest-classes card's strips (hidden until there are images) and the stores."""
    return [html.Div(id=NEIGHBOUR_THUMBS, className="cm-thumb-strips", hidden=True),
            dcc.Store(id=NEIGHBOUR_THUMBS_DATA), dcc.Store(id=SELECTION_THUMBS_DATA),
            dcc.Store(id=THUMBS_KEY), dcc.Store(id=THUMBS_PICK)]


def selection_strips() -> list[Any]:
    """The selection panel's strips (hidden until there are images)."""
    return [html.Div(id=SELECTION_THUMBS, className="cm-thumb-strips", hidden=True)]


def strip_data_id(images: Any, model_id: str, data_id: str | None) -> str | None:
    """The data set whose images the strips show for ``model_id``: the selection's when it
    fits the model, else the first image folder for a network that is not a digits one;
    None when the model has no network (a bare head) or nothing fits."""
    settings = images.services.settings
    try:
        if settings.model(model_id).spec.head is not None:
            return None  # a head file only: no network, no data set of its own
    except Exception:
        return None
    digits = reads_digits(settings, model_id)
    folders = [entry.id for entry in images.data_sets if entry.id != DIGITS]
    if data_id and data_id in images.data_ids and (data_id != DIGITS or digits):
        return data_id
    return DIGITS if digits else (folders[0] if folders else None)


def class_strips(dataset: Any, classes: Sequence[int], names: Sequence[str],
                 class_ids: Sequence[str], limit: int = STRIP_IMAGES) -> list[dict[str, Any]]:
    """One strip per class of ``classes`` (model indices): ``{"label", "note", "tiles":
    [[image index, class id, title], …]}`` with the class's first ``limit`` images."""
    labels = np.asarray(dataset.labels)
    rows = []
    for c in classes:
        members = np.flatnonzero(labels == int(c))
        name = short_name(str(names[c]))
        tiles = [[int(i), class_ids[c], f"{name}: image #{int(i)}"] for i in members[:limit]]
        rows.append({"label": name, "tiles": tiles,
                     "note": f"{len(members)} image{'s' if len(members) != 1 else ''}"
                     if len(members) else "no images"})
    return rows


def strips_logic(services: Services, images: Any, selection: dict | None, status: dict | None,
                 url: Callable[[str, str], str]) -> tuple[Any, Any]:
    """(nearest-classes strips, selection strips) for ``classmap.renderThumbStrips``:
    ``{"image": URL prefix, "rows": [strip, …]}`` or None (no images: hidden).

    The nearest-classes strips are the focal class's and its ``k`` nearest (at most
    :data:`STRIP_ROWS`); the selection's, its first :data:`STRIP_ROWS` classes."""
    from classmap.app.pages.classes.callbacks import focal_index, summarise

    sel, view, _ = ready_view(services, selection, status)
    if view is None:
        return None, None
    data_id = strip_data_id(images, sel.model, (selection or {}).get("data"))
    if data_id is None:
        return None, None
    try:
        dataset = images.stored_dataset(sel.model, data_id)
    except ClassmapError:  # the model cannot read it (its classes do not match)
        return None, None
    if dataset is None:  # an image folder no job has read yet
        return None, None
    prefix = url(sel.model, data_id)
    neighbours = None
    focal = focal_index(view, sel)
    if focal is not None:
        rows = services.neighbours(view, focal, sel.k)
        order = [focal] + [int(i) for i in rows.indices][:STRIP_ROWS - 1]
        neighbours = {"image": prefix,
                      "rows": class_strips(dataset, order, view.names, view.ids)}
        neighbours["rows"][0]["label"] += " (focal)"
    chosen = None
    summary = summarise(services, view, sel)
    if summary is not None:
        picked = [int(i) for i in summary.indices][:STRIP_ROWS]
        chosen = {"image": prefix, "rows": class_strips(dataset, picked, view.names, view.ids)}
        if summary.count > len(picked):
            chosen["rows"].append({"label": f"… {summary.count - len(picked)} more classes",
                                   "note": "", "tiles": []})
    return neighbours, chosen


def register(app: Any, services: Services) -> None:
    """The strips' callbacks, the thumbnail route (once per app) and the click."""
    from classmap.app.shell.images import image_services_for

    register_thumbnail_route(app, services)
    images = image_services_for(services)
    project_selection(app, THUMBS_KEY, STRIP_FIELDS)

    def url(model: str, data: str) -> str:
        return thumbnail_url(app, model, data, "image")

    @app.callback(Output(NEIGHBOUR_THUMBS_DATA, "data"), Output(SELECTION_THUMBS_DATA, "data"),
                  Input(THUMBS_KEY, "data"), Input(ids.CLASSES_STATUS, "data"))
    def class_thumbnails(selection, status):
        if not selection:
            raise PreventUpdate
        return strips_logic(services, images, selection, status, url)

    for store, target in ((NEIGHBOUR_THUMBS_DATA, NEIGHBOUR_THUMBS),
                          (SELECTION_THUMBS_DATA, SELECTION_THUMBS)):
        clientside(app, "renderThumbStrips", Output(store, "modified_timestamp"),
                   Input(store, "data"), constants={"target": target, "pick": THUMBS_PICK},
                   prevent_initial_call=True)
    select_on(app, Input(THUMBS_PICK, "data"), "pickedClass", ids.CLASSES_SELECTION)
