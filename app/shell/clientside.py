"""Clientside wiring of the shared selection: every page's controls and stores join it here.

A page control joins the selection with :func:`bind_field` (two-way, in the browser,
one callback so there is no cycle); a page's views listen to page-local copies
(:func:`mirror_shared_state`, :func:`project_selection`); a page's server callbacks
that change the selection write a request store relayed in the browser
(:func:`relay_selection_requests`).
"""

from __future__ import annotations

import json
from typing import Any, Sequence

from dash import Input, Output, State

from classmap.app.shell import ids
from classmap.app.shell.selection import selection_rules


def config_script(app: Any) -> str:
    return ""


def rules_json() -> str:
    """The selection rules as a JS literal for inline clientside callbacks."""
    return json.dumps(selection_rules())


def mirror_shared_state(app: Any, selection_store: str, status_store: str | None = None) -> None:
    """Copy the shell's SELECTION (and STATUS) into a page's own stores, in the browser.

    A page's callbacks must listen to these copies, never to the shell stores next to
    an Input of the page's own: dash-renderer reports a callback whose Inputs exist
    only in part ("A nonexistent object was used in an Input") as a console error on
    every other page.
    """
    pairs = [(ids.SELECTION, selection_store)]
    if status_store is not None:
        pairs.append((ids.STATUS, status_store))
    for source, target in pairs:
        app.clientside_callback(
            """function(value, previous) {
                if (value === undefined || value === null ||
                    JSON.stringify(value) === JSON.stringify(previous)) {
                    return window.dash_clientside.no_update; }
                return value;
            }""",
            Output(target, "data"), Input(source, "data"), State(target, "data"),
        )


def bind_field(app: Any, component_id: Any, prop: str, field: str,
               selection_store: str = ids.SELECTION) -> None:
    """Two-way binding of ``component_id.prop`` and the selection's ``field``, in the browser.

    The control shows the selection's value; changing the control updates the
    selection with the registry's reset/clear rules. One callback, so no cycle.
    A page's control must pass its page-local copy as ``selection_store``
    (:func:`mirror_shared_state`); the shell's controls use the shell store.
    """
    app.clientside_callback(
        f"function(value, sel) {{ return window.classmap.bindField(value, sel, "
        f"{json.dumps(field)}, {json.dumps(prop)}, {rules_json()}); }}",
        Output(component_id, prop, allow_duplicate=True),
        Output(ids.SELECTION, "data", allow_duplicate=True),
        Input(component_id, prop),
        Input(selection_store, "data"),
        prevent_initial_call=True,
    )


def relay_selection_requests(app: Any, request_store: str) -> None:
    """Copy a page-local request store into the shared SELECTION, in the browser.

    A page's *server* callbacks that change the selection (a click that needs the
    model to name a class) write ``request_store`` — a store in the page — instead of
    SELECTION: with its Output outside the page and its Input inside, Dash would call
    such a callback when the page is inserted despite ``prevent_initial_call``, a
    round trip the page's views would wait for.
    """
    app.clientside_callback(
        "function(request) { return request ? request : window.dash_clientside.no_update; }",
        Output(ids.SELECTION, "data", allow_duplicate=True),
        Input(request_store, "data"),
        prevent_initial_call=True,
    )


def bind_picker(app: Any, component_id: Any, field: str,
                selection_store: str = ids.SELECTION) -> None:
    """:func:`bind_field` for a ``dcc.Dropdown``: a value the selection sets that is not
    among the dropdown's options comes with a provisional option in the same update.

    Dash 4's dropdown clears a value it has no option for, which would also clear the
    selection's field (say, the focal class of a shared link whose options have not
    arrived yet).
    """
    app.clientside_callback(
        f"function(value, sel, options) {{ return window.classmap.bindPicker(value, sel, "
        f"options, {json.dumps(field)}, {rules_json()}); }}",
        Output(component_id, "value", allow_duplicate=True),
        Output(component_id, "options", allow_duplicate=True),
        Output(ids.SELECTION, "data", allow_duplicate=True),
        Input(component_id, "value"),
        Input(selection_store, "data"),
        State(component_id, "options"),
        prevent_initial_call=True,
    )


def select_on(app: Any, trigger: Input, js_changes: str,
              selection_store: str = ids.SELECTION) -> None:
    """Update the selection in the browser when ``trigger`` fires.

    ``js_changes`` is a JS expression over ``value`` (the trigger's value) and
    ``sel`` giving the changes (an object) or ``null`` for none.
    """
    app.clientside_callback(
        f"function(value, sel) {{ var changes = ({js_changes}); "
        f"if (!changes) {{ return window.dash_clientside.no_update; }} "
        f"return window.classmap.update(sel, changes, {rules_json()}); }}",
        Output(ids.SELECTION, "data", allow_duplicate=True),
        trigger,
        State(selection_store, "data"),
        prevent_initial_call=True,
    )


def project_selection(app: Any, store_id: str, fields: Sequence[str],
                      selection_store: str = ids.SELECTION) -> None:
    """Keep ``store_id`` equal to the selection's ``fields``, updated only when they change.

    A view that depends on a few fields listens to this store instead of the whole
    selection, so other changes (a click in the tree) cost it no request and no redraw.
    """
    app.clientside_callback(
        f"""function(sel, previous) {{
            if (!sel) {{ return window.dash_clientside.no_update; }}
            var picked = {{}};
            {json.dumps(list(fields))}.forEach(function(name) {{
                picked[name] = sel[name] === undefined ? null : sel[name]; }});
            return JSON.stringify(picked) === JSON.stringify(previous)
                ? window.dash_clientside.no_update : picked;
        }}""",
        Output(store_id, "data"),
        Input(selection_store, "data"),
        State(store_id, "data"),
    )


