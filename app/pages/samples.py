"""``/samples`` — the Samples page: Images of a data set by representation, with Grad-CAM maps."""

from __future__ import annotations

import dash

from classmap.app.components.images_page import build_samples_page
from classmap.app.services_images import data_entries
from classmap.app.state import parse_query

PAGE = "samples"

dash.register_page(__name__, path="/samples", name="Samples", title="Classmap — samples",
                   order=1, description="Images of a data set by representation, with Grad-CAM maps")


def layout(**query: str) -> dash.html.Div:
    """The page for the URL ``query`` (parsed; the data set id is checked by the callbacks)."""
    from classmap.app.server import current_services

    settings = current_services().settings
    selection, problems = parse_query(query, settings.model_ids)
    return build_samples_page(PAGE, selection, problems, data_entries(settings.data_roots))
