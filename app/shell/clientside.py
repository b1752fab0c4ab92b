"""Clientside (browser) callbacks: every one calls a named function in ``assets/*.js``.

No JavaScript lives in Python strings. :func:`clientside` registers
``dash.ClientsideFunction("classmap", name)``; a function that needs values fixed at
registration (a field name, a target element) reads them from the page's browser
config, where :func:`config_script` puts them next to the selection schema
(``selection_schema()``, generated from the field registry), keyed by the callback's
first Output and first Input (:func:`callback_key`; ``assets/classmap.js`` computes the
same key from ``callback_context``).

The shared selection's wiring, used by the shell and every page:

- :func:`bind_field` — two-way binding of a control (or every control matching a
  pattern) and a selection field, in the browser, one callback so there is no cycle;
- :func:`mirror_shared_state` / :func:`project_selection` — page-local copies that a
  page's callbacks listen to;
- :func:`relay_selection_requests` — a page's server callbacks that change the
  selection write a page-local request store, copied into SELECTION here;
- :func:`select_on` — a click that changes the selection in the browser.
"""

from __future__ import annotations

import json
from typing import Any, Mapping, Sequence

from dash import ALL, ClientsideFunction, Input, Output, State

from classmap.app.shell import ids
from classmap.app.shell.selection import selection_schema

NAMESPACE = "classmap"  # window.dash_clientside.classmap (assets/classmap.js)
CONFIG_ELEMENT = "classmap-config"  # <script type="application/json" id=…> in every page


def _key(dependency: Any) -> str:
    component = dependency.component_id
    name = component if isinstance(component, str) else component["type"]
    return f"{name}.{dependency.component_property}"


def callback_key(dependencies: Sequence[Any]) -> str:
    """``<first Output>|<first Input>``, each ``id.property`` (a pattern id by its type)."""
    flat: list[Any] = []
    for dependency in dependencies:
        flat.extend(dependency if isinstance(dependency, (list, tuple)) else [dependency])
    output = next(d for d in flat if isinstance(d, Output))
    first_input = next(d for d in flat if isinstance(d, Input))
    return f"{_key(output)}|{_key(first_input)}"


def clientside(app: Any, function: str, *dependencies: Any,
               constants: Mapping[str, Any] | None = None, **kwargs: Any) -> None:
    """``app.clientside_callback`` of ``window.dash_clientside.classmap[function]``.

    ``constants`` (JSON) reach the function through ``classmap.constants()``.
    """
    app.clientside_callback(ClientsideFunction(NAMESPACE, function), *dependencies, **kwargs)
    if constants is not None:
        table = app.__dict__.setdefault("_classmap_constants", {})
        key = callback_key(dependencies)
        if key in table and table[key] != dict(constants):
            raise ValueError(f"two clientside callbacks share the key {key!r}")
        table[key] = dict(constants)


def browser_config(app: Any) -> dict[str, Any]:
    """What ``assets/classmap.js`` reads: the selection schema, the callbacks' constants,
    each graph's download view and name fields (:func:`name_downloads`) and the pages
    that say when their views are drawn (``model_busy.register_views_drawn``)."""
    from classmap.app.shell.model_busy import pages_with_drawn

    return {"selection": selection_schema(),
            "callbacks": dict(app.__dict__.get("_classmap_constants", {})),
            "downloads": dict(app.__dict__.get("_classmap_downloads", {})),
            "viewsDrawn": sorted(pages_with_drawn(app))}


def config_script(app: Any) -> str:
    """:func:`browser_config` as a JSON data block (not executed) for the page's HTML."""
    text = json.dumps(browser_config(app), separators=(",", ":")).replace("</", "<\\/")
    return f'<script type="application/json" id="{CONFIG_ELEMENT}">{text}</script>'


def mirror_shared_state(app: Any, selection_store: str | None, status_store: str | None = None,
                        source: str = ids.SELECTION) -> None:
    """Copy the shell's SELECTION (and STATUS) into a page's own stores, in the browser.

    A page's callbacks must listen to these copies, never to the shell stores next to
    an Input of the page's own: dash-renderer reports a callback whose Inputs exist
    only in part ("A nonexistent object was used in an Input") as a console error on
    every other page.
    """
    pairs = [] if selection_store is None else [(source, selection_store)]
    if status_store is not None:
        pairs.append((ids.STATUS, status_store))
    for origin, target in pairs:
        clientside(app, "mirror", Output(target, "data"), Input(origin, "data"),
                   State(target, "data"))


def bind_field(app: Any, component_id: Any, field: str | None,
               selection_store: str = ids.SELECTION, *, prop: str = "value",
               picker: bool = False) -> None:
    """Two-way binding of ``component_id.prop`` and the selection's ``field``, in the browser.

    The control shows the selection's value; changing the control updates the selection
    with the registry's reset/clear rules; when both changed, the selection wins. One
    callback, so no cycle. A page's control must pass its page-local copy as
    ``selection_store`` (:func:`mirror_shared_state`); the shell's controls use the
    shell store.

    ``component_id`` may be a pattern (``{"type": …, "page": ALL}``): every matching
    control is bound, and on pages without one the callback changes nothing (a page's
    control as a plain Input would be a "nonexistent object" console error on every
    other page). With ``{"type": …, "field": ALL}`` each control names its own field
    (``field=None``).

    ``picker``: a ``dcc.Dropdown`` — a value the selection sets that is not among its
    options comes with a provisional option in the same update (Dash 4's dropdown clears
    a value it has no option for, which would clear the selection's field too).
    """
    outputs = [Output(component_id, prop, allow_duplicate=True)]
    states = []
    if picker:
        outputs.append(Output(component_id, "options", allow_duplicate=True))
        states.append(State(component_id, "options"))
    clientside(app, "bind", *outputs, Output(ids.SELECTION, "data", allow_duplicate=True),
               Input(component_id, prop), Input(selection_store, "data"), *states,
               constants={"field": field, "picker": picker}, prevent_initial_call=True)


def name_downloads(app: Any, graphs: Mapping[str, Sequence[str]] | Sequence[str]) -> None:
    """Name each graph's modebar download after its view, the model and the selection's
    ``fields`` (widgets.download_name), in the format of the header's "Images as" switch.

    ``graphs``: graph id → the selection fields its name shows (a plain sequence of ids:
    none). The browser reads this table from the page's config and sets the format and
    name when the download button is clicked (assets/classmap.js), so a change of either
    needs no redraw and applies at once to every graph on the page. One shell callback
    keeps the browser's copy of the selection and the format.
    """
    from classmap.app.shell.widgets import graph_view

    table = app.__dict__.setdefault("_classmap_downloads", {})
    items = graphs.items() if isinstance(graphs, Mapping) else ((g, ()) for g in graphs)
    for graph_id, fields in items:
        table[graph_id] = {"view": graph_view(graph_id), "fields": list(fields)}
    if not app.__dict__.get("_classmap_download_state"):
        app.__dict__["_classmap_download_state"] = True
        clientside(app, "downloadState", Output(ids.DOWNLOADS, "data"),
                   Input(ids.SELECTION, "data"), Input(ids.FIGURE_FORMAT, "value"))


def relay_selection_requests(app: Any, request_store: str) -> None:
    """Copy a page-local request store into the shared SELECTION, in the browser.

    A page's *server* callbacks that change the selection (a click that needs the
    model to name a class) write ``request_store`` — a store in the page — instead of
    SELECTION: with its Output outside the page and its Input inside, Dash would call
    such a callback when the page is inserted despite ``prevent_initial_call``, a
    round trip the page's views would wait for.
    """
    clientside(app, "relay", Output(ids.SELECTION, "data", allow_duplicate=True),
               Input(request_store, "data"), prevent_initial_call=True)


def bind_fields(app: Any, controls: Sequence[tuple[str, str]],
                selection_store: str = ids.SELECTION, *,
                analysis: dict[str, Any] | None = None) -> None:
    """:func:`bind_field` for several plain controls (``(component id, field)`` pairs,
    each bound by its ``value``) in one callback (``bindAll`` in classmap.js).

    dash-renderer follows every callback a change fires through everything downstream of
    its outputs before it runs any; a callback that writes the selection reaches the whole
    page, so each bound control cost every selection change ≈ 5 ms of the browser's time
    before the views could ask the server. One callback for a panel's controls costs that
    once.

    ``analysis``: the controls are the analysis key's (the shell's model, metric and
    linkage), given as ``{"busy": (note Output, text Output), "pages": the page stores'
    State, "busy_text": the note's sentence}``. A switch to an analysis the status lists
    as held in memory then makes its ready status and the header's busy note in the same
    callback as the selection, a round before ``analysisKey`` would
    (app/shell/callbacks.py): the page's views ask the server a round sooner.
    """
    outputs = [Output(control, "value", allow_duplicate=True) for control, _ in controls]
    after: list[Any] = []
    states: list[Any] = []
    if analysis is not None:
        after = [Output(ids.STATUS, "data", allow_duplicate=True), *analysis["busy"]]
        states = [State(ids.STATUS, "data"), analysis["pages"]]
    clientside(app, "bindAll", *outputs, Output(ids.SELECTION, "data", allow_duplicate=True),
               *after, *(Input(control, "value") for control, _ in controls),
               Input(selection_store, "data"), *states,
               constants={"fields": [field for _, field in controls],
                          **({"analysis": True, "busyText": analysis["busy_text"]}
                             if analysis is not None else {})},
               prevent_initial_call=True)


def select_on(app: Any, trigger: Input, change: str, selection_store: str = ids.SELECTION,
              **constants: Any) -> None:
    """Update the selection in the browser when ``trigger`` fires.

    ``change`` names a function of ``classmap.changes`` (assets/classmap.js) that turns
    the trigger's value into the changes (or null); ``constants`` are passed to it.
    """
    clientside(app, "select", Output(ids.SELECTION, "data", allow_duplicate=True), trigger,
               State(selection_store, "data"), constants={"change": change, **constants},
               prevent_initial_call=True)


def project_selection(app: Any, store_id: str, fields: Sequence[str],
                      selection_store: str = ids.SELECTION) -> None:
    """Keep ``store_id`` equal to the selection's ``fields``, updated only when they change.

    A view that depends on a few fields listens to this store instead of the whole
    selection, so other changes (a click in the tree) cost it no request and no redraw.
    Pages project the shell's selection (the default), not their copy of it: the
    projection then comes in the same round as the page's copies of the selection and
    the status (:func:`mirror_shared_state`), and the views it fires ask the server a
    round sooner. Its one Input is the shell's store, so no callback mixes the two.
    """
    clientside(app, "project", Output(store_id, "data"), Input(selection_store, "data"),
               State(store_id, "data"), constants={"fields": list(fields)})


def project_model_status(app: Any, store_id: str, status_store: str) -> None:
    """Keep ``store_id`` equal to ``{"model", "state"}`` of the status in ``status_store``,
    updated only when they change: views of the model alone (the class picker's options,
    the cut slider's range) listen to it, so a metric or linkage switch costs them no
    request."""
    clientside(app, "modelStatus", Output(store_id, "data"), Input(status_store, "data"),
               State(store_id, "data"))


__all__ = ["ALL", "bind_field", "bind_fields", "browser_config", "callback_key", "clientside",
           "config_script", "mirror_shared_state", "name_downloads", "project_model_status",
           "project_selection", "relay_selection_requests", "select_on"]
