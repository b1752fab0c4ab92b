"""The weight analysis as the pages that draw it see it (Classes, Weight distributions).

``ready_view`` turns the page's copy of the selection and of the analysis status into
the analysis to draw, or into the sentence to show while there is none.
"""

from __future__ import annotations

from classmap.app.shell.selection import Selection
from classmap.app.shell.services import ModelView, Services

FOCAL_ALL_OPTIONS = 5000  # up to this many classes a class picker holds every class


def ready_view(services: Services, selection: dict | None,
               status: dict | None) -> tuple[Selection, ModelView | None, str]:
    """The selection and its analysis, or (selection, None, why nothing can be drawn yet)."""
    sel = Selection.from_store(selection, services.settings.default_model)
    if not selection or not isinstance(status, dict) or status.get("key") != list(sel.analysis_key):
        return sel, None, "Preparing the analysis…"
    state = status.get("state")
    if state == "error":
        return sel, None, f"{sel.model} could not be loaded: {status.get('message', '')}"
    if state == "cancelled":
        return sel, None, f"{sel.model}: {status.get('message', 'cancelled')}"
    if state != "ready":
        return sel, None, (f"Analysing {sel.model} ({sel.metric}, {sel.linkage} linkage)… "
                           "the first analysis of a model takes a moment")
    return sel, services.view(sel.analysis_key), ""



def focal_option(view: ModelView, index: int) -> dict[str, str]:
    """Dropdown option of a class: its full name, id and index (all searchable)."""
    return {"label": f"{view.names[index]} — {view.ids[index]} · #{index}",
            "value": view.ids[index]}
