"""``/confidence`` — the Confidence page: Class similarity from confidence scores (seed 003)."""

from __future__ import annotations

import dash

from classmap.app.components.images_page import build_confidence_page
from classmap.app.services_images import data_entries
from classmap.app.state import parse_query

PAGE = "confidence"

dash.register_page(__name__, path="/confidence", name="Confidence", title="Classmap — confidence",
                   order=3, description="Class similarity from confidence scores (seed 003)")


def layout(**query: str) -> dash.html.Div:
    """The page for the URL ``query`` (parsed; the data set id is checked by the callbacks)."""
    from classmap.app.server import current_services

    settings = current_services().settings
    selection, problems = parse_query(query, settings.model_ids)
    return build_confidence_page(PAGE, selection, problems, data_entries(settings.data_roots))
