"""Callbacks of the Compare page: the button → one comparison → figures and the table.

:func:`compare_logic` takes plain values and returns plain values, so tests call it
without a browser.
"""

from __future__ import annotations

from typing import Any
from urllib.parse import urlencode

import numpy as np
from dash import Input, Output, State, dcc, html

from classmap.analysis.errors import ClassmapError
from classmap.app.pages.compare import figures, ids
from classmap.app.shell.figures import message_figure
from classmap.app.shell.services import Services, short_name
from classmap.app.shell.widgets import stat

MAX_PERMUTATIONS = 9999
PLACED_DIFFERENTLY = 20  # classes listed whose nearest classes differ most between sources


def compare_logic(services: Services, a: tuple[str, str, str], b: tuple[str, str, str],
                  permutations: Any) -> tuple:
    """``(model, relation, linkage)`` of both sources → (summary, B_k figure, tanglegram,
    pairs table). Bad input → a one-line message in place of the results."""
    from classmap.analysis.pipelines.compare import compare_relations, relation_from_head

    try:
        count = check_sources(services, a, b, permutations)
        if a[1] == "wordnet" and a[2] == "ward" or b[1] == "wordnet" and b[2] == "ward":
            raise ClassmapError("ward needs Euclidean geometry, which WordNet distances lack; "
                                "pick average, complete or single for WordNet")
        sources = []
        for model, relation, linkage in (a, b):
            head = services.head(model)
            label = f"{model} {'WordNet' if relation == 'wordnet' else relation} / {linkage}"
            sources.append(relation_from_head(head, relation, linkage, services.cache,
                                              services.settings.device, label))
        result = compare_relations(sources[0], sources[1], permutations=count)
    except ClassmapError as error:
        text = html.Span(str(error), className="cm-summary-error")
        return text, message_figure(str(error), height=300), message_figure("—"), []
    first = sources[0]
    names = [short_name(n) for n in first.class_names]
    summary = [
        stat("Spearman ρ (all pairs)", f"{result.spearman:.3f}", value_first=True),
        stat(f"Mantel r (p, {count} permutations)",
             f"{result.mantel_statistic:.3f} (p = {result.mantel_p_value:.3g})",
             value_first=True),
        stat("cophenetic correlation", f"{result.cophenetic_pearson:.3f}", value_first=True),
        stat("mean B_k", f"{result.fowlkes_mallows.mean():.3f}", value_first=True),
        stat("tanglegram crossings", f"{result.crossings:,} (from {result.crossings_before:,})",
             value_first=True),
    ]
    highlight = sorted({int(c) for pair in result.pairs[:10] for c in pair})
    tangle = figures.tanglegram_figure(
        first.relation.linkage, result.order_a, sources[1].relation.linkage, result.order_b,
        names, result.a, result.b, highlight)
    bk = figures.bk_figure(result.cut_levels, result.fowlkes_mallows,
                           result.expected_fowlkes_mallows)
    return summary, bk, tangle, html.Div([
        pairs_table(a[0], first.class_ids, names, result),
        html.H3("Classes placed most differently", className="cm-selection-title"),
        classes_table(a[0], first.class_ids, names, result),
    ])


def check_sources(services: Services, a: Any, b: Any, permutations: Any) -> int:
    """The permutation count, once both sources name a configured model, a relation and a
    linkage; else a ClassmapError that does not repeat the values (they come from the
    browser)."""
    from classmap.analysis.methods.hierarchy import LINKAGES
    from classmap.analysis.pipelines.compare import RELATIONS

    models = services.settings.model_ids
    for source in (a, b):
        if not (isinstance(source, tuple) and len(source) == 3
                and all(isinstance(part, str) for part in source)
                and source[0] in models and source[1] in RELATIONS and source[2] in LINKAGES):
            raise ClassmapError("pick a configured model, a relation and a linkage for both "
                                "sources")
    if isinstance(permutations, str) and permutations.strip().isdigit():
        permutations = int(permutations)
    if isinstance(permutations, bool) or not isinstance(permutations, int) \
            or not 0 <= permutations <= MAX_PERMUTATIONS:
        raise ClassmapError(f"Mantel permutations must be a whole number from 0 to "
                            f"{MAX_PERMUTATIONS}; 999 gives p down to 0.001")
    return permutations


def pairs_table(model: str, class_ids: tuple[str, ...], names: list[str], result: Any) -> Any:
    """The most disagreeing pairs; each row links to the Classes page with both selected."""
    rows = [html.Tr([html.Th("pair"), html.Th("rank in A"), html.Th("rank in B")])]
    for (i, j), (ra, rb) in zip(result.pairs, result.pair_ranks):
        query = urlencode({"model": model, "focal": class_ids[i], "classes": f"{i},{j}"})
        rows.append(html.Tr([
            html.Td(dcc.Link(f"{names[i]} — {names[j]}", href=f"/?{query}",
                             className="cm-compare-pair")),
            html.Td(f"{ra:.3f}"), html.Td(f"{rb:.3f}"),
        ]))
    return html.Table(rows, className="cm-table cm-compare-pairs")


def classes_table(model: str, class_ids: tuple[str, ...], names: list[str],
                  result: Any) -> Any:
    """The classes whose 10 nearest classes overlap least between the sources; each links
    to the Classes page with that class as the focal class."""
    overlap = result.neighbour_overlap
    rows = [html.Tr([html.Th("class"), html.Th("nearest-10 overlap")])]
    for c in np.argsort(overlap, kind="stable")[:PLACED_DIFFERENTLY]:
        query = urlencode({"model": model, "focal": class_ids[c]})
        rows.append(html.Tr([
            html.Td(dcc.Link(names[c], href=f"/?{query}", className="cm-compare-class")),
            html.Td(f"{overlap[c]:.2f}"),
        ]))
    return html.Table(rows, className="cm-table cm-compare-classes")


def register(app: Any, services: Services) -> None:
    """The Compare button's callback."""
    controls = [State(ids.source_control(side, part), "value")
                for side in ("a", "b") for part in ("model", "relation", "linkage")]

    @app.callback(
        Output(ids.COMPARE_SUMMARY, "children"), Output(ids.COMPARE_BK, "figure"),
        Output(ids.COMPARE_TANGLEGRAM, "figure"), Output(ids.COMPARE_PAIRS, "children"),
        Input(ids.COMPARE_RUN, "n_clicks"), *controls, State(ids.COMPARE_PERMUTATIONS, "value"),
        prevent_initial_call=True,
    )
    def run(_clicks, model_a, relation_a, linkage_a, model_b, relation_b, linkage_b,
            permutations):
        return compare_logic(services, (model_a, relation_a, linkage_a),
                             (model_b, relation_b, linkage_b), permutations)
