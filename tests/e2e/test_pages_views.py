"""Issue 14 (no cached interaction over 300 ms): on the image pages a class change sends
only the views that show the class, and the matrices' focal frames and the scatters' marks as
patches — in a real browser, from the page's own callback requests and responses."""

from __future__ import annotations

import json

import pytest

from tests.e2e.test_image_pages import QUERY, RENDER_TIMEOUT

pytestmark = pytest.mark.e2e
# The session's first image page trains LeNet-5 and extracts the representations (minutes
# on a shared 2-core machine); later loads answer from the cache.
FIRST_RENDER_TIMEOUT = 900_000

SIG = """(id) => {
  const gd = document.querySelector('#' + id + ' .js-plotly-plot');
  return gd && gd.data ? JSON.stringify([gd.data.map((t) => [t.name, (t.x || []).length]),
                                         (gd.layout.shapes || []).map((s) => [s.y0, s.x0])]) : '';
}"""

# What a scatter's classes look like (colour, outline, drawing order): a class change
# restyles them and leaves their points.
STYLE = """(id) => {
  const gd = document.querySelector('#' + id + ' .js-plotly-plot');
  return gd && gd.data ? JSON.stringify(gd.data.map((t) => [t.name, t.zorder,
    t.marker && t.marker.color, t.marker && t.marker.line])) : '';
}"""


def record_callbacks(page) -> list[dict]:
    """Every Dash callback response of ``page``: {"output": …, "response": …}."""
    seen: list[dict] = []

    def finished(response) -> None:
        if "_dash-update-component" not in response.url:
            return
        try:
            body = response.json() if response.status == 200 else {}
        except Exception:  # 204 (PreventUpdate): no body
            body = {}
        seen.append({"output": json.loads(response.request.post_data or "{}").get("output", ""),
                     "response": body.get("response", {})})

    page.on("response", finished)
    return seen


def pick_class(page, name: str) -> None:
    page.click("#images-focal")
    option = page.get_by_role("option", name=name, exact=True).first
    option.wait_for()
    option.click()
    page.wait_for_function("location.search.includes('focal=')", timeout=30_000)


def settle(page) -> None:
    page.wait_for_timeout(2500)  # the page's callbacks answer (cached) and are drawn


def test_samples_class_change_patches_the_scatter_and_resends_no_image_detail(dash_server,
                                                                             new_page):
    page = new_page()
    page.goto(dash_server + "/samples" + QUERY)
    page.wait_for_selector("#samples-graph .scatterlayer .trace .point",
                           timeout=FIRST_RENDER_TIMEOUT)
    page.wait_for_function("document.querySelector('#images-message')?.innerText"
                           ".includes('360 images')", timeout=RENDER_TIMEOUT)
    settle(page)
    seen = record_callbacks(page)
    before = page.evaluate(STYLE, "samples-graph")
    pick_class(page, "7")
    page.wait_for_function(f"({STYLE})('samples-graph') !== {json.dumps(before)}",
                           timeout=30_000)
    settle(page)
    outputs = " ".join(item["output"] for item in seen)
    assert "samples-graph.figure" in outputs and "samples-grid-data.data" in outputs
    # the scatter gets a Patch of its marks (not every image's point again) …
    (scatter,) = [item["response"] for item in seen if item["output"] == "samples-graph.figure"]
    assert "__dash_patch_update" in json.dumps(scatter["samples-graph"]["figure"])
    # … and draws class 7 on top in full colour, every other class faded
    drawn = page.evaluate("""() => {
      const gd = document.querySelector('#samples-graph .js-plotly-plot');
      const classes = gd._fullData.slice(0, -2);
      return [classes.filter((t) => t.zorder === 1).map((t) => t.name),
              classes.filter((t) => !String(t.marker.color).startsWith('rgba')).map((t) => t.name),
              classes.find((t) => t.name === '7').x.length];
    }""")
    assert drawn[0] == ["7"] and drawn[1] == ["7"] and drawn[2] > 0
    # the selected image, the data summary: not shown by a class change, not requested
    for unrelated in ("sample-image.src", "images-message.children"):
        assert unrelated not in outputs, (unrelated, outputs)


def test_confidence_class_change_patches_the_frames_and_the_tsne(dash_server, new_page):
    page = new_page()
    page.goto(dash_server + "/confidence" + QUERY)
    page.wait_for_selector("#confidence-tsne-graph .scatterlayer .trace .point",
                           timeout=FIRST_RENDER_TIMEOUT)
    page.wait_for_selector("#confidence-confusion-graph .heatmaplayer image",
                           timeout=RENDER_TIMEOUT)
    pick_class(page, "3")
    page.wait_for_function(f"({SIG})('confidence-confusion-graph').includes('[[2.5')",
                           timeout=30_000)
    settle(page)
    seen = record_callbacks(page)
    pick_class(page, "7")
    # the confusion matrix frames row 7 (true classes 0–9 from the top)
    page.wait_for_function(f"({SIG})('confidence-confusion-graph').includes('[[6.5')",
                           timeout=30_000)
    settle(page)
    matrices = [item for item in seen if "confidence-js-heatmap.figure" in item["output"]]
    assert len(matrices) == 1, [item["output"] for item in seen]
    sent = matrices[0]["response"]
    for graph in ("confidence-js-heatmap", "confidence-confusion-graph"):
        assert "__dash_patch_update" in json.dumps(sent[graph]["figure"]), graph
    assert "confidence-class-clusters" not in sent  # unchanged: not re-sent
    (tsne,) = [item["response"] for item in seen
               if item["output"] == "confidence-tsne-graph.figure"]
    assert "__dash_patch_update" in json.dumps(tsne["confidence-tsne-graph"]["figure"])
    # the heatmap's frame moved with the class (two rectangles: row and column)
    shapes = page.evaluate("() => document.querySelector('#confidence-js-heatmap "
                           ".js-plotly-plot').layout.shapes.length")
    assert shapes == 2
