"""``/clustering`` — the Clustering page: Within-class similarity and clustering of image representations (seed 002)."""

from __future__ import annotations

import dash

from classmap.app.components.images_page import build_clustering_page
from classmap.app.services_images import data_entries
from classmap.app.state import parse_query

PAGE = "clustering"

dash.register_page(__name__, path="/clustering", name="Clustering", title="Classmap — clustering",
                   order=2, description="Within-class similarity and clustering of image representations (seed 002)")


def layout(**query: str) -> dash.html.Div:
    """The page for the URL ``query`` (parsed; the data set id is checked by the callbacks)."""
    from classmap.app.server import current_services

    settings = current_services().settings
    selection, problems = parse_query(query, settings.model_ids)
    return build_clustering_page(PAGE, selection, problems, data_entries(settings.data_roots))
