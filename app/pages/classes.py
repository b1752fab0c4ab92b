"""``/`` — the Classes page: weight similarity, hierarchy, neighbours and class map."""

from __future__ import annotations

import dash

from classmap.app.components.classes_page import PAGE, build_classes_page
from classmap.app.state import parse_query

dash.register_page(__name__, path="/", name="Classes", title="Classmap — classes", order=0,
                   description="Final-layer weight similarity of a classifier's classes")


def layout(**query: str) -> dash.html.Div:
    """The page for the URL ``query`` (parsed, checked against the configured models and,
    when its analysis is in memory, against the model)."""
    from classmap.app.callbacks.classes import picker_options
    from classmap.app.callbacks.shared import resolve_page_query
    from classmap.app.server import current_services

    services = current_services()
    selection, problems = parse_query(query, services.settings.model_ids)
    resolved = resolve_page_query(services, selection, problems)
    return build_classes_page(resolved["selection"], problems, resolved=resolved,
                              focal_options=picker_options(services, resolved))


__all__ = ["PAGE", "layout"]
