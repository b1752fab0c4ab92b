"""``/`` — the Classes page: weight similarity, hierarchy, neighbours and class map."""

from __future__ import annotations

import dash

from app.components.classes_page import PAGE, build_classes_page
from app.state import parse_query

dash.register_page(__name__, path="/", name="Classes", title="Classmap — classes", order=0,
                   description="Final-layer weight similarity of a classifier's classes")


def layout(**query: str) -> dash.html.Div:
    """The page for the URL ``query`` (parsed and checked against the configured models)."""
    from app.server import current_services

    settings = current_services().settings
    selection, problems = parse_query(query, settings.model_ids)
    return build_classes_page(selection, problems)


__all__ = ["PAGE", "layout"]
