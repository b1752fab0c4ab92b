"""Heatmap zoom ↔ dendrogram zoom (issue 14, defect 5), in a real browser: a drag-zoom in
either graph zooms the other to the same leaf positions and writes ``range`` into the URL;
a shared link with a range opens zoomed; a double click goes back to the whole tree."""

from __future__ import annotations

import re

import pytest

pytestmark = pytest.mark.e2e

RENDER_TIMEOUT = 60_000
RANGES = """() => ['similarity-heatmap', 'dendrogram-graph'].map(id => {
  const gd = document.querySelector('#' + id + ' .js-plotly-plot');
  return gd._fullLayout.xaxis.range.concat(gd._fullLayout.yaxis.range);
})"""


def ready(page):
    page.wait_for_selector("#dendrogram-graph .scatterlayer .trace .point", timeout=RENDER_TIMEOUT)
    page.wait_for_selector("#similarity-heatmap .layer-above image, #similarity-heatmap image",
                           state="attached", timeout=RENDER_TIMEOUT)
    page.wait_for_timeout(800)


def drag(page, graph_id, start, end):
    """Drag inside ``graph_id``'s plot area from ``start`` to ``end`` (fractions of it)."""
    page.evaluate(f"() => document.getElementById('{graph_id}')"
                  ".scrollIntoView({block: 'center'})")
    box = page.locator(f"#{graph_id} .nsewdrag").first.bounding_box()
    page.mouse.move(box["x"] + box["width"] * start[0], box["y"] + box["height"] * start[1])
    page.mouse.down()
    page.mouse.move(box["x"] + box["width"] * end[0], box["y"] + box["height"] * end[1],
                    steps=6)
    page.mouse.up()


def url_range(page):
    match = re.search(r"[?&]range=([\d,]+)", page.url)
    return [int(v) for v in match.group(1).split(",")] if match else None


def wait_for_url_range(page, present=True):
    page.wait_for_function("(present) => /[?&]range=/.test(location.search) === present",
                           arg=present, timeout=60_000)
    page.wait_for_timeout(600)


def test_heatmap_and_dendrogram_zoom_together_and_the_url_reopens_it(
        dash_server, new_page, artifacts_dir):
    page = new_page()
    page.set_viewport_size({"width": 1280, "height": 800})
    page.goto(dash_server + "/")
    ready(page)
    full = page.evaluate(RANGES)[1][:2]

    drag(page, "similarity-heatmap", (0.2, 0.2), (0.4, 0.4))
    wait_for_url_range(page)
    heat, tree = page.evaluate(RANGES)
    first, last = url_range(page)[:2]
    assert heat[:2] == pytest.approx([first - 0.5, last + 0.5])
    assert tree[:2] == pytest.approx(heat[:2])  # the tree's columns are the heatmap's
    assert full[0] < first < last < full[1]

    drag(page, "dendrogram-graph", (0.3, 0.5), (0.7, 0.9))
    page.wait_for_function(f"() => !location.search.includes('range={first},{last}')",
                           timeout=60_000)
    page.wait_for_timeout(600)
    heat, tree = page.evaluate(RANGES)
    zoomed = url_range(page)
    assert len(zoomed) == 2 and first <= zoomed[0] < zoomed[1] <= last
    assert tree[:2] == pytest.approx([zoomed[0] - 0.5, zoomed[1] + 0.5])
    assert heat[:2] == pytest.approx(tree[:2])
    assert heat[2:] == pytest.approx([zoomed[1] + 0.5, zoomed[0] - 0.5])  # rows follow
    page.screenshot(path=str(artifacts_dir / "e2e-zoom-linked.png"))

    shared = new_page()
    shared.set_viewport_size({"width": 1280, "height": 800})
    shared.goto(page.url)
    ready(shared)
    shared.wait_for_timeout(1000)
    shared_heat, shared_tree = shared.evaluate(RANGES)
    assert shared_heat == pytest.approx(heat)
    assert shared_tree[:2] == pytest.approx(tree[:2])

    page.evaluate("() => document.getElementById('dendrogram-graph')"
                  ".scrollIntoView({block: 'center'})")
    box = page.locator("#dendrogram-graph .nsewdrag").first.bounding_box()
    page.mouse.dblclick(box["x"] + 3, box["y"] + 3)  # a corner: no node there
    wait_for_url_range(page, present=False)
    # Both graphs redraw on the full range (they may land after the URL on a loaded machine).
    page.wait_for_function(
        f"() => ({RANGES})().every(r => Math.abs(r[0] - ({full[0]})) < 1e-3 && "
        f"Math.abs(r[1] - ({full[1]})) < 1e-3)", timeout=60_000)
    heat, tree = page.evaluate(RANGES)
    assert tree[:2] == pytest.approx(full) and heat[:2] == pytest.approx(full)


def test_a_range_beyond_the_model_is_clamped_with_a_notice(dash_server, new_page):
    page = new_page()
    page.goto(dash_server + "/?range=900,5000")
    ready(page)
    assert "range=900,999" in page.url
    assert "clamped" in page.inner_text("#shell-notice")
    assert page.evaluate(RANGES)[1][:2] == pytest.approx([899.5, 999.5])
