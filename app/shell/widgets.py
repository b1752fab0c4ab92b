"""Small reusable layout pieces: cards, buttons, stats, fields, job progress, graphs."""

from __future__ import annotations

import re
from typing import Any, Mapping, Sequence

from dash import dcc, html

# Plotly's modebar: keep the tools researchers use, drop the rest (the "Share chart" /
# Chart Studio upload among them). The download ("camera") button's format and file name
# are set in the browser at the click (assets/classmap.js, classmap.downloadOptions): the
# format from the header's "Images as" switch, the name from the view, the model and the
# selection (download_name), so neither needs a redraw of the graph.
GRAPH_CONFIG: dict[str, Any] = {
    "displaylogo": False,
    "showSendToCloud": False,
    "showEditInChartStudio": False,
    "modeBarButtonsToRemove": ["autoScale2d", "toggleSpikelines", "hoverClosestCartesian",
                               "hoverCompareCartesian", "sendDataToCloud", "editInChartStudio"],
    "toImageButtonOptions": {"format": "png", "scale": 2},
    "responsive": True,
}
IMAGE_FORMATS = ("png", "svg")
# Views whose graph id does not end in "-graph" (the ids fixed by the spec).
_VIEW_NAMES = {"similarity-heatmap": "heatmap"}


def graph_view(graph_id: str) -> str:
    """The view a graph's downloads are named after: its id without ``-graph``."""
    if graph_id in _VIEW_NAMES:
        return _VIEW_NAMES[graph_id]
    return graph_id[:-len("-graph")] if graph_id.endswith("-graph") else graph_id


# A split-tree node's sign path ("+", "-", "+-+") is spelt with letters: the rule below
# would turn every sign path into nothing (or "-"), one name for every node.
_SIGNS = str.maketrans({"+": "p", "-": "m"})


def _name_part(value: Any) -> str:
    return re.sub(r"[^A-Za-z0-9_.-]+", "_", str(value)).strip("_")


def _value_text(value: Any) -> str:
    """A field's value in a name: a set by its size, a sign path by letters."""
    if isinstance(value, (list, tuple)):
        return str(len(value))
    text = str(value)
    return text.translate(_SIGNS) if re.fullmatch(r"[+-]+", text) else text


def download_name(view: str, selection: Mapping[str, Any] | None = None,
                  fields: Sequence[str] = ()) -> str:
    """A download's file name without its extension (plotly adds ``.png``/``.svg``):
    ``classmap-<model>-<view>`` then ``<field>-<value>`` for each of ``fields`` that is
    set and not at its default (a set of classes by its size), e.g.
    ``classmap-lite0-imagenet-heatmap-node-1234``. Characters other than letters, digits,
    ``_``, ``.`` and ``-`` become ``_``, except in a value made of ``+`` and ``-`` only
    (a split node's sign path), spelt ``p`` and ``m``: ``snode-pmp`` for ``+-+``.
    ``assets/classmap.js`` (downloadName) applies the same rule in the browser; tests
    compare the two."""
    from classmap.app.shell.selection import FIELDS

    selection = selection or {}
    parts = ["classmap", selection.get("model"), view]
    for name in fields:
        value = selection.get(name)
        spec = FIELDS.get(name)
        if value is None or (isinstance(value, (list, tuple)) and not value):
            continue
        if spec is not None and value == spec.default:
            continue
        parts.append(f"{name}-{_value_text(value)}")
    return "-".join(_name_part(part) for part in parts if part not in (None, ""))


def card(title: str, children: Any, *, tools: Any = None, card_id: str | None = None,
         class_name: str = "", subtitle: Any = None) -> html.Section:
    """A titled panel with optional tools at the right of its header."""
    header = [html.Div([html.H2(title, className="cm-card-title"),
                        html.Div(subtitle, className="cm-card-subtitle") if subtitle else None],
                       className="cm-card-heading")]
    if tools is not None:
        header.append(html.Div(tools, className="cm-card-tools"))
    props: dict[str, Any] = {"className": f"cm-card {class_name}".strip()}
    if card_id:
        props["id"] = card_id
    return html.Section([html.Header(header, className="cm-card-header"),
                         html.Div(children, className="cm-card-body")], **props)


def button(label: str, button_id: Any, *, kind: str = "secondary", disabled: bool = False,
           title: str | None = None) -> html.Button:
    """A button; ``kind`` is ``primary``, ``secondary`` or ``ghost``."""
    return html.Button(label, id=button_id, n_clicks=0, disabled=disabled,
                       className=f"cm-button cm-button-{kind}", title=title)


def explained(label: str, explanation: str | None = None) -> list[Any]:
    """``label`` followed by an info mark whose tooltip explains it (glossary.explain, or
    ``explanation``); just the label when there is nothing to say."""
    from classmap.app.shell.glossary import explain

    text = explanation or explain(label)
    if not text:
        return [label]
    return [label, html.Span("i", className="cm-info", title=text, role="note",
                             **{"aria-label": text})]


def stat(label: str, value: Any, *, value_first: bool = False,
         explanation: str | None = None) -> html.Div:
    """A label/value pair of a summary strip (``value_first``: the number above its label,
    as in the Classes page's selection panel); the label carries its explanation."""
    from classmap.app.shell.glossary import explain

    text = explanation or explain(label)
    parts = [html.Span(explained(label, text), className="cm-stat-label", title=text),
             html.Span(value, className="cm-stat-value")]
    return html.Div(parts[::-1] if value_first else parts, className="cm-stat")


def how_to_read(*points: Any) -> html.Details:
    """A page's "How to read this page", collapsed by default: one short paragraph each."""
    return html.Details([html.Summary("How to read this page"),
                         html.Div([html.P(point) for point in points])],
                        className="cm-details cm-how-to-read")


def field(label: str, control: Any, *, class_name: str = "") -> html.Label:
    """A control with a small label above it."""
    return html.Label([html.Span(label, className="cm-field-label"), control],
                      className=f"cm-field {class_name}".strip())


def job_progress(panel_id: str, progress_id: str, label_id: str, cancel_id: str,
                 text: str) -> html.Div:
    """A hidden-until-running progress bar with a label and a cancel button."""
    return html.Div([
        html.Span(text, id=label_id, className="cm-job-label"),
        html.Progress(id=progress_id, max=100, className="cm-job-bar"),
        button("Cancel", cancel_id, kind="ghost", title="stop this computation"),
    ], id=panel_id, className="cm-job", hidden=True)


def busy_area(area_id: str, busy_id: str, text: str, children: Any) -> html.Div:
    """``children`` with a spinner and ``text`` ("Computing …") in front of them. A callback
    marks the area busy while it runs (``running=busy_running(area_id)``): the spinner
    shows and the children — the previous result — are hidden, never shown as current."""
    return html.Div([
        html.Div([html.Span(className="cm-spinner"), html.Span(text)], id=busy_id,
                 className="cm-busy-note", role="status"),
        html.Div(children, className="cm-busy-content"),
    ], id=area_id, className="cm-busy-area")


def busy_running(area_id: str) -> list[tuple[Any, Any, Any]]:
    """The ``running=`` argument that marks :func:`busy_area` ``area_id`` busy."""
    from dash import Output

    return [(Output(area_id, "className"), "cm-busy-area cm-busy", "cm-busy-area")]


def provisional_options(value: Any) -> list[dict[str, Any]]:
    """A dropdown's first options: one for ``value`` (named by itself) until the server's
    arrive. Dash 4's dropdown clears a value it has no option for when it mounts, and a
    bound picker would clear the shared selection's field with it."""
    return [] if value in (None, "") else [{"label": str(value), "value": value}]


def graph(graph_id: str, figure: Any, *, class_name: str = "", height: int | None = None,
          config: Mapping[str, Any] | None = None, **props: Any) -> dcc.Graph:
    """A dcc.Graph with the dashboard's modebar settings (``props`` go to dcc.Graph)."""
    extra: dict[str, Any] = {"style": {"height": f"{height}px"}} if height else {}
    extra.update(props)
    image_options = {**GRAPH_CONFIG["toImageButtonOptions"],
                     "filename": download_name(graph_view(graph_id))}  # until the first click
    config = {**GRAPH_CONFIG, "toImageButtonOptions": image_options, **(config or {})}
    return dcc.Graph(id=graph_id, figure=figure, config=config,
                     className=f"cm-graph {class_name}".strip(), **extra)
