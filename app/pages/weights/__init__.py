"""``/weights`` — Weight distributions: asymmetric Laplace fits and channel splits (seed 001).

Joins the shared selection (model, focal class) and adds three shareable keys of its
own (``split``, ``minsize``, ``snode``; registered in :mod:`.services`).

The package imports nothing at import time (its figures module must load without
dash); :func:`register` imports the layout and callbacks.
"""

from __future__ import annotations

from typing import Any


def register(app: Any, services: Any) -> None:
    """The page's URL and layout, and its callbacks."""
    import dash

    from classmap.app.pages.weights import callbacks, export
    from classmap.app.pages.weights.layout import layout

    dash.register_page(__name__, path="/weights", name="Weight distributions",
                       title="Classmap — weight distributions", order=1,
                       description="Asymmetric Laplace fits of each class's head weights and "
                                   "the recursive channel split",
                       layout=layout)
    callbacks.register(app, services)
    export.register(app)  # the header's "Export this view"
