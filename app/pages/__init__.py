"""The dashboard's pages: one package per page, each with ``register(app, services)``.

A page package holds its layout (``layout.py``: ``layout(**query)`` builds the page from
the URL query), its callbacks (``callbacks.py``), figures (``figures.py``, no dash),
services and component ids (``ids.py``). What several pages share lives in
:mod:`classmap.app.shell`. Pages are registered explicitly (``dash.register_page(…,
layout=…)`` inside each package's ``register``; ``create_app`` passes
``pages_folder=""``), so Dash never scans or re-executes these modules.

A new page: a package here with ``register(app, services)``, named in :data:`PAGES`. Importing this package
loads no page (a page's figures module must import without dash).
"""

from __future__ import annotations

import importlib
from typing import Any

PAGES = ("classes", "weights", "images", "compare")  # packages under classmap.app.pages


def register_pages(app: Any, services: Any) -> None:
    """Register every page (URL, layout) and its callbacks on ``app``."""
    for name in PAGES:
        importlib.import_module(f"{__name__}.{name}").register(app, services)
