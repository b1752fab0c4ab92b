"""``/`` — the Classes page: weight similarity, hierarchy, neighbours and class map.
The package imports nothing at import time (its figures module must load without
dash); :func:`register` imports the layout and callbacks.
"""

from __future__ import annotations

from typing import Any


def register(app: Any, services: Any) -> None:
    """The page's URL and layout, and its callbacks."""
    import dash

    from classmap.app.pages.classes import callbacks
    from classmap.app.pages.classes.layout import layout

    dash.register_page(__name__, path="/", name="Classes", title="Classmap — classes", order=0,
                       description="Final-layer weight similarity of a classifier's classes",
                       layout=layout)
    callbacks.register(app, services)
