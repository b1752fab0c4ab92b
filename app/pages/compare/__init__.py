"""``/compare`` — two class-relationship sources (or two models) over one class set.

Pick two sources — a configured model with its weight cosine / Euclidean relation,
WordNet, or an image relation of a configured data set (confidence JS, feature or
Grad-CAM weight class means; from the cached image analysis), each with a linkage — and
see Spearman and Mantel statistics between their distance matrices, the cophenetic
correlation of their trees, the Fowlkes–Mallows B_k curve, a tanglegram and the class
pairs on which they disagree most (each a link that opens the Classes page with the pair
selected), over the classes both sources cover. The numbers come from
:mod:`classmap.analysis.pipelines.compare` (the same as ``classmap compare``).

The package imports nothing at import time; :func:`register` imports layout and callbacks.
"""

from __future__ import annotations

from typing import Any


def register(app: Any, services: Any) -> None:
    """The page's URL and layout, and its callbacks."""
    import dash

    from classmap.app.pages.compare import callbacks
    from classmap.app.pages.compare.layout import layout

    dash.register_page(__name__, path="/compare", name="Compare", title="Classmap — compare",
                       order=9, description="Two class-relationship sources or two models "
                       "over one class set: Mantel, cophenetic correlation, B_k, tanglegram",
                       layout=layout)
    callbacks.register(app, services)
