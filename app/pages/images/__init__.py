"""The image pages — ``/samples``, ``/clustering``, ``/confidence`` (issue 5, seeds 002/003).

Three URLs over one (model, data set) analysis: they share the data-set picker, the
background job, the page-local copy of the selection and the callbacks that serve it,
so they live in one package (one ``layout_*`` function per URL in :mod:`.layout`).

The package imports nothing at import time (its figures module must load without
dash); :func:`register` imports the layout and callbacks.
"""

from __future__ import annotations

from typing import Any

PAGES = (
    dict(module="samples", path="/samples", name="Samples", title="Classmap — samples", order=1,
         description="Images of a data set by representation, with Grad-CAM maps",
         layout="samples_layout"),
    dict(module="clustering", path="/clustering", name="Clustering",
         title="Classmap — clustering", order=2,
         description="Within-class similarity and clustering of image representations (the gradient-similarity write-up)",
         layout="clustering_layout"),
    dict(module="confidence", path="/confidence", name="Confidence",
         title="Classmap — confidence", order=3,
         description="Class similarity from confidence scores (the confidence write-up)",
         layout="confidence_layout"),
)


def register(app: Any, services: Any) -> None:
    """The three pages' URLs and layouts, and their callbacks."""
    import dash

    from classmap.app.pages.images import callbacks, export
    from classmap.app.pages.images import layout

    for page in PAGES:
        spec = dict(page, layout=getattr(layout, page["layout"]))
        dash.register_page(f"{__name__}.{spec.pop('module')}", **spec)
    callbacks.register(app, services)
    export.register(app)  # the header's "Export this view", one exporter per page
