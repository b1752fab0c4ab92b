"""What every page's figures share: fonts, colours, the small template, message figures.

Figure modules build plotly figures from arrays and never import dash.
"""

from __future__ import annotations

import functools

import plotly.graph_objects as go

FONT = "Inter, 'Segoe UI', system-ui, -apple-system, 'Helvetica Neue', Arial, sans-serif"
INK = "#1f2933"
MUTED = "#7b8794"
GRID = "#e4e7eb"
ACCENT = "#d9480f"  # selection and focal marks (orange-red, visible on RdBu)
SELECT = "#111827"
TREE = "#52606d"
# Every figure's hover label: dark ink on white (contrast 14.7:1). Without a font colour,
# plotly writes the text in the border colour or the trace's colour (light grey or
# mid blue on white: unreadable).
HOVERLABEL = dict(bgcolor="white", bordercolor=TREE, font=dict(family=FONT, size=12, color=INK),
                  align="left")
# Tick labels past the graph's edge are left to the SVG's clip ("allow"). plotly's default
# ("hide past div") measures every tick label's box after each draw to hide the ones
# outside: a forced layout per label, ≈ 50 ms of a metric switch on the Classes page
# (the dendrogram's and the nearest-classes chart's axes). The margins are sized from
# the labels, so none is cut.
TICK_LABEL_OVERFLOW = "allow"
# A small template: plotly's default one adds ~10 kB of JSON to every figure.
TEMPLATE = go.layout.Template(layout=dict(
    font=dict(family=FONT, size=12, color=INK),
    paper_bgcolor="white", plot_bgcolor="white",
    hoverlabel=HOVERLABEL,
    xaxis=dict(showgrid=False, zeroline=False, linecolor=GRID, ticks="",
               ticklabeloverflow=TICK_LABEL_OVERFLOW),
    yaxis=dict(showgrid=False, zeroline=False, linecolor=GRID, ticks="",
               ticklabeloverflow=TICK_LABEL_OVERFLOW),
))



def allow_tick_label_overflow(figure: go.Figure) -> go.Figure:
    """Set :data:`TICK_LABEL_OVERFLOW` on every axis of ``figure`` (for figures drawn
    without :data:`TEMPLATE`, which sets it); returns ``figure``."""
    figure.update_xaxes(ticklabeloverflow=TICK_LABEL_OVERFLOW)
    figure.update_yaxes(ticklabeloverflow=TICK_LABEL_OVERFLOW)
    return figure


@functools.lru_cache(maxsize=256)
def message_figure(message: str, height: int | None = None, width: int = 64) -> go.Figure:
    """An empty figure that shows ``message`` (loading, errors, nothing selected).

    Long messages are wrapped at ``width`` characters (plotly does not wrap text).
    Built once per (message, height, width) and shared: the caller must not change it.
    (Building one took ~20 ms of plotly's validation; a page load of the Classes page
    asks for six — 17 % of its server time, benchmarks/profile_full_view.py.)
    """
    import textwrap

    lines = [line for part in message.split("<br>")
             for line in (textwrap.wrap(part, width) or [""])]
    figure = go.Figure(layout=dict(template=TEMPLATE, height=height,
                                   margin=dict(l=10, r=10, t=10, b=10)))
    figure.update_xaxes(visible=False)
    figure.update_yaxes(visible=False)
    figure.add_annotation(text="<br>".join(lines), showarrow=False, x=0.5, y=0.5, xref="paper",
                          yref="paper", font=dict(size=14, color=MUTED))
    return figure
