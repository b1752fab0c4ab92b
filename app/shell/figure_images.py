"""Figures as files on the server: titled copies, rendered to SVG and PNG by plotly's
own renderer (kaleido 1.x, driving the system's Chromium; no dash here).

kaleido is started once per call of :func:`render_images` and renders every figure of
the call in that one headless browser, with plotly.js from the installed plotly package
and MathJax off, so nothing is fetched from the network.

Shapes: figures in, ``{file name: bytes}`` out.
"""

from __future__ import annotations

import asyncio
import copy
import logging
import shutil
from collections.abc import Mapping, Sequence
from typing import Any

import plotly.graph_objects as go

from classmap.analysis.errors import ClassmapError
from classmap.app.shell.figures import FONT, INK, MUTED

log = logging.getLogger(__name__)

FORMATS = ("svg", "png")
PNG_SCALE = 2  # as the modebar's PNG downloads (widgets.GRAPH_CONFIG)
WIDTH = 1200
RENDER_TIMEOUT_S = 90
CHROMIUM_NAMES = ("chromium", "chromium-browser", "google-chrome", "chrome")
TITLE_SPACE = 70  # px above the plot for the title and subtitle


def renderer_problem() -> str | None:
    """Why figures cannot be rendered on this server (one line naming the fix), or None."""
    try:
        import kaleido  # noqa: F401
    except ImportError:
        return ("figures cannot be drawn on the server: the kaleido package is missing; "
                "reinstall classmap (pip install -e .)")
    if not any(shutil.which(name) for name in CHROMIUM_NAMES):
        return ("figures cannot be drawn on the server: no Chromium found; install it "
                "(apt-get install chromium)")
    return None


def titled(figure: go.Figure, title: str, subtitle: str = "") -> go.Figure:
    """A copy of ``figure`` with ``title`` (and a smaller ``subtitle`` line) above the plot,
    a white background and a fixed width, ready to stand alone in a paper or a slide.
    Axis titles, legends and colour bars are the figure's own."""
    figure = go.Figure(copy.deepcopy(figure.to_dict()))
    title_font = dict(family=FONT, size=17, color=INK)
    heading: dict[str, Any] = dict(text=f"<b>{_escape(title)}</b>", font=title_font)
    if subtitle:
        heading["subtitle"] = dict(text=_escape(subtitle),
                                   font=dict(family=FONT, size=12, color=MUTED))
    margin = figure.layout.margin
    top = (margin.t if margin and margin.t is not None else 20) + TITLE_SPACE
    height = figure.layout.height
    figure.update_layout(
        title=dict(**heading, x=0.0, xanchor="left", y=1.0, yanchor="top", yref="container",
                   pad=dict(t=16, l=16)),
        margin=dict(t=top), paper_bgcolor="white", width=figure.layout.width or WIDTH,
        height=(height + TITLE_SPACE) if height else None,
    )
    return figure


def _escape(text: str) -> str:
    return text.replace("&", "&amp;").replace("<", "&lt;").replace(">", "&gt;")


def render_images(figures: Mapping[str, go.Figure], formats: Sequence[str] = FORMATS,
                  *, default_height: int = 600) -> dict[str, bytes]:
    """Render each figure in each format: ``{stem: figure}`` → ``{stem.fmt: bytes}``
    (stems in order, formats in ``formats`` order). PNGs at :data:`PNG_SCALE`× pixels.

    Raises ClassmapError (one line) when the renderer is missing or fails; nothing is
    returned then.
    """
    problem = renderer_problem()
    if problem is not None:
        raise ClassmapError(problem)
    for fmt in formats:
        if fmt not in FORMATS:
            raise ClassmapError(f"cannot render figures as {fmt!r}; use one of {FORMATS}")
    jobs = []
    for stem, figure in figures.items():
        width = figure.layout.width or WIDTH
        height = figure.layout.height or default_height
        for fmt in formats:
            options = {"format": fmt, "width": width, "height": height,
                       "scale": PNG_SCALE if fmt == "png" else 1}
            jobs.append((f"{stem}.{fmt}", figure, options))
    if not jobs:
        return {}
    try:
        rendered = _run(_render_all(jobs))
    except ClassmapError:
        raise
    except Exception as error:  # noqa: BLE001 — kaleido/choreographer raise many kinds
        log.warning("figure rendering failed", exc_info=error)
        raise ClassmapError(f"the figures could not be drawn on the server "
                            f"({type(error).__name__}: {str(error)[:160]}); try again, or "
                            "download each graph from its own toolbar") from error
    return dict(zip((name for name, _, _ in jobs), rendered))


async def _render_all(jobs: list[tuple[str, go.Figure, dict[str, Any]]]) -> list[bytes]:
    import kaleido

    out = []
    async with kaleido.Kaleido(n=1, timeout=RENDER_TIMEOUT_S, mathjax=False) as renderer:
        for _, figure, options in jobs:
            out.append(await renderer.calc_fig(figure, opts=options))
    return out


def _run(coroutine: Any) -> Any:
    """Run ``coroutine`` to completion from synchronous code (a web request's thread has
    no event loop; one that has, as in a notebook, gets a private thread)."""
    try:
        asyncio.get_running_loop()
    except RuntimeError:
        return asyncio.run(coroutine)
    import concurrent.futures

    with concurrent.futures.ThreadPoolExecutor(1) as pool:
        return pool.submit(asyncio.run, coroutine).result()
