"""The Classes page redraws only the views a change shows (issue #14: ≤ 300 ms per
interaction answered from the cache), in a real browser: which Dash callback requests a
change makes, and what their responses carry.

Before, one callback drew every view for any selection change: top-k re-sent the
heatmap's, the tree's and the class map's overlays and the selection panel; a metric
change re-sent the class map's 1,000 points.
"""

from __future__ import annotations

import json

import pytest

from tests.e2e.test_dashboard import DUNGENESS_ID, GRAPH, wait_for_dashboard

pytestmark = pytest.mark.e2e

TIMEOUT = 60_000
# Outputs of the page's view callbacks (a multi-output callback's "output" lists them all).
HEATMAP = "classes-heatmap-figure.data"
HEATMAP_OVERLAY = "classes-heatmap-overlay.data"
TREE = "classes-dendrogram-figure.data"
PANEL = "classes-subtree-title.children"
CLASS_MAP = "classes-class-map-figure.data"
NEIGHBOURS = "neighbours-graph.figure"


class Calls:
    """Every /_dash-update-component request of a page: its outputs and its response."""

    def __init__(self, page):
        self.calls: list[dict] = []
        self.pending = 0
        page.on("request", self._started)
        page.on("requestfailed", self._failed)
        page.on("requestfinished", self._finished)

    @staticmethod
    def _ours(request) -> bool:
        return "/_dash-update-component" in request.url and bool(request.post_data)

    def _started(self, request) -> None:
        self.pending += self._ours(request)

    def _failed(self, request) -> None:
        self.pending -= self._ours(request)

    def _finished(self, request) -> None:
        if not self._ours(request):
            return
        self.pending -= 1
        response = request.response()
        try:
            body = response.json() if response is not None and response.status == 200 else {}
        except Exception:  # noqa: BLE001 — a 204 (nothing to update) has no body
            body = {}
        self.calls.append({"output": json.loads(request.post_data)["output"],
                           "response": body.get("response", {})})

    def clear(self) -> None:
        self.calls.clear()

    def asked(self, output: str) -> list[dict]:
        return [call for call in self.calls if output in call["output"]]

    def sent(self, component: str, prop: str) -> bool:
        """Whether some response updated ``component.prop``."""
        return any(prop in call["response"].get(component, {}) for call in self.calls)


def idle(page, calls: Calls, quiet_ms: int = 1000) -> None:
    """Until no callback request has been in flight for ``quiet_ms`` (the clientside
    callbacks that a response fires may start more)."""
    quiet, waited = 0, 0
    while quiet < quiet_ms:
        page.wait_for_timeout(100)
        waited += 100
        quiet = 0 if calls.pending else quiet + 100
        assert waited < TIMEOUT, "callback requests still in flight after 60 s"


def test_top_k_cut_focal_and_metric_redraw_only_the_views_that_show_them(dash_server, new_page):
    page = new_page()
    calls = Calls(page)
    page.goto(dash_server + f"/?focal={DUNGENESS_ID}&node=1990")
    wait_for_dashboard(page)
    page.wait_for_selector("#neighbours-graph .barlayer .point", timeout=TIMEOUT)
    idle(page, calls)

    # Top-k 10 → 20: the nearest classes alone (no heatmap, tree, panel or class map).
    calls.clear()
    page.click("#classes-top-k")
    page.get_by_role("option", name="20", exact=True).first.click()
    page.wait_for_function("document.querySelectorAll('#neighbours-graph .barlayer .point')"
                           ".length === 20", timeout=TIMEOUT)
    idle(page, calls)
    assert calls.asked(NEIGHBOURS), [c["output"] for c in calls.calls]
    for view in (HEATMAP, HEATMAP_OVERLAY, TREE, PANEL, CLASS_MAP):
        assert not calls.asked(view), f"top-k asked for {view}: {[c['output'] for c in calls.calls]}"

    # Cut off → 10 clusters: overlays only — the heatmap, the tree and the class map are
    # not sent again (the map's colours and the tree's bands are restyled in the browser).
    calls.clear()
    before = page.evaluate(f"() => JSON.stringify({GRAPH.format(id='class-map-graph')}"
                           ".data[0].marker.color)")
    page.locator("#classes-cut").scroll_into_view_if_needed()
    track = page.locator("#classes-cut .dash-slider-track").first.bounding_box()
    mark = page.locator("#classes-cut .dash-slider-mark", has_text="10").first.bounding_box()
    page.mouse.click(mark["x"] + mark["width"] / 2, track["y"] + track["height"] / 2)
    page.wait_for_function("new URLSearchParams(location.search).get('cut') !== null",
                           timeout=TIMEOUT)
    page.wait_for_function(f"() => JSON.stringify({GRAPH.format(id='class-map-graph')}"
                           f".data[0].marker.color) !== {json.dumps(before)}", timeout=TIMEOUT)
    idle(page, calls)
    assert calls.asked(HEATMAP_OVERLAY) and calls.asked(PANEL)
    assert calls.sent("classes-heatmap-overlay", "data")
    # The map's new colours come with the tree's (a restyle, drawn at once); the class
    # map's own callback (fired by the tree's new key alone) sends nothing.
    assert any("classes-class-map-colours" in call["response"] for call in calls.asked(TREE))
    assert not any(call["response"] for call in calls.asked(CLASS_MAP)), calls.asked(CLASS_MAP)
    for store in ("classes-heatmap-figure", "classes-dendrogram-figure",
                  "classes-class-map-figure"):
        assert not calls.sent(store, "data"), f"a cut change re-sent {store}"
    # The nearest classes' bars: recoloured by an overlay of their colours (a restyle of
    # 20 bars), not a new chart built, sent and drawn.
    assert calls.sent("classes-neighbours-overlay", "data")
    assert not calls.sent("neighbours-graph", "figure"), "a cut change re-sent the chart"
    page.wait_for_function(f"new Set(Array.from({GRAPH.format(id='neighbours-graph')}"
                           ".data[0].marker.color)).size > 1", timeout=TIMEOUT)
    assert page.locator("#neighbours-graph .barlayer .point").count() == 20

    # A new focal class (a click on a neighbour's bar): no selection panel.
    calls.clear()
    bar = page.locator("#neighbours-graph .barlayer .point").first.bounding_box()
    page.mouse.move(bar["x"] + bar["width"] / 2, bar["y"] + bar["height"] / 2)
    page.wait_for_timeout(150)
    page.mouse.click(bar["x"] + bar["width"] / 2, bar["y"] + bar["height"] / 2)
    page.wait_for_function(f"!location.search.includes('focal={DUNGENESS_ID}')",
                           timeout=TIMEOUT)
    idle(page, calls)
    assert calls.asked(HEATMAP_OVERLAY) and calls.asked(CLASS_MAP)
    assert not calls.asked(PANEL), [c["output"] for c in calls.calls]

    # Metric cosine → Euclidean (its analysis computed and in memory: once there and back
    # first): the heatmap is drawn anew; the tree (Ward's: the same for both metrics) and
    # the class map (which does not depend on the metric) are left as drawn.
    for metric in ("Euclidean", "cosine", "Euclidean"):
        calls.clear()
        page.evaluate("""() => {
          window.__busySeen = [];
          const note = document.getElementById('shell-model-busy');
          new MutationObserver(() => { if (!note.hidden) { window.__busySeen.push(note.innerText); } })
            .observe(note, {attributes: true, childList: true, subtree: true, characterData: true});
        }""")
        page.locator("#shell-metric label", has_text=metric).first.click()
        page.wait_for_function(f"location.search.includes('metric={metric.lower()}')",
                               timeout=TIMEOUT)
        page.wait_for_function(
            f"(JSON.stringify({GRAPH.format(id='neighbours-graph')}?.layout?.xaxis?.title) "
            f"|| '').includes('cosine') === {json.dumps(metric == 'cosine')}", timeout=TIMEOUT)
        page.wait_for_selector("#class-map-graph .scatterlayer .trace .point", timeout=TIMEOUT)
        idle(page, calls)
    outputs = [(c["output"][:60], list(c["response"])) for c in calls.calls]
    assert calls.sent("classes-heatmap-figure", "data"), outputs
    # The analysis is held in memory, and the last ready status said so: the browser made
    # the status ready itself (no response carries one), and the heatmap and the tree
    # came in one response — not a first one discarded when the status arrived.
    assert not calls.sent("analysis-status", "data"), outputs
    # The header's busy note showed for the switch and went once the views were drawn.
    assert any("Drawing the views of lite0-imagenet (euclidean, ward)" in text
               for text in page.evaluate("window.__busySeen"))
    page.wait_for_selector("#shell-model-busy", state="hidden", timeout=TIMEOUT)
    assert len([c for c in calls.calls if "classes-heatmap-figure" in c["response"]]) == 1, \
        outputs
    assert not calls.sent("classes-dendrogram-figure", "data"), "the same tree was re-sent"
    assert not calls.sent("classes-class-map-colours", "data"), outputs  # the same clusters
    assert not calls.sent("classes-class-map-figure", "data"), "the class map was re-sent"
    # The class picker keeps its options (the model's classes, ≈ 80 kB).
    assert not calls.sent("classes-focal-all", "data"), "the picker's options were re-sent"
    assert not calls.sent("focal-class", "options"), "the picker's options were re-sent"
