"""``/`` — the Classes page: weight similarity, hierarchy, neighbours and class map.
The package imports nothing at import time (its figures module must load without
dash); :func:`register` imports the layout and callbacks.
"""

from __future__ import annotations

from typing import Any


def register(app: Any, services: Any) -> None:
    """The page's URL and layout, and its callbacks."""
    import dash

    from classmap.app.pages.classes import callbacks, export, ids
    from classmap.app.pages.classes.layout import layout
    from classmap.app.shell.export_view import register_view_export
    from classmap.app.shell.model_busy import register_views_drawn

    dash.register_page(__name__, path="/", name="Classes", title="Classmap — classes", order=0,
                       description="Final-layer weight similarity of a classifier's classes",
                       layout=layout)
    callbacks.register(app, services)
    register_view_export(app, "classes", export.view_export)  # the header's "Export this view"
    register_views_drawn(app, "classes", ids.HEATMAP_KEY)  # ends the header's busy note
