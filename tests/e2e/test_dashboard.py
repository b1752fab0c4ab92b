"""The dashboard in a real browser: load, click the tree, search, follow a neighbour,
share the URL, and survive bad links and broken models — with screenshots of each step
in ``test-artifacts/``."""

from __future__ import annotations

import re
from urllib.parse import parse_qs, urlparse

import pytest

pytestmark = pytest.mark.e2e

RENDER_TIMEOUT = 45_000
DUNGENESS_ID = "n01978287"
KING_CRAB_ID = "n01981276"

GRAPH = "document.querySelector('#{id} .js-plotly-plot')"
SHAPES = ("((" + GRAPH.format(id="similarity-heatmap") +
          "?.layout?.shapes) || []).map(s => ({name: s.name, x0: s.x0, x1: s.x1}))")
HEATMAP_SHAPES = "() => " + SHAPES
# A tree node with 20–80 classes, the highest such (well apart from its neighbours),
# and where it is on screen.
PICK_NODE = """() => {
  const gd = """ + GRAPH.format(id="dendrogram-graph") + """;
  const t = gd._fullData[1];
  let best = null;
  for (let i = 0; i < t.x.length; i++) {
    const size = t.customdata[i][1];
    if (size >= 20 && size <= 80 && (!best || t.y[i] > best.y)) {
      best = {node: t.customdata[i][0], size: size, x: t.x[i], y: t.y[i]};
    }
  }
  const layout = gd._fullLayout, box = gd.getBoundingClientRect();
  best.px = box.left + layout._size.l + layout.xaxis.l2p(best.x);
  best.py = box.top + layout._size.t + layout.yaxis.l2p(best.y);
  return best;
}"""


# Every drawn axis with tick labels, as [graph, axis, ticklabeloverflow] (plotly's resolved
# layout: the figure's own value, else the template's, else plotly's default).
TICK_LABEL_OVERFLOW = """() => Array.from(document.querySelectorAll('.js-plotly-plot'))
  .flatMap((gd) => Object.keys(gd._fullLayout || {})
    .filter((name) => /^[xy]axis\\d*$/.test(name) && gd._fullLayout[name].showticklabels)
    .map((name) => [gd.parentElement.id, name, gd._fullLayout[name].ticklabeloverflow]))"""


def wait_for_dashboard(page) -> None:
    """Until every graph of the Classes page has drawn its data."""
    for selector in ("#similarity-heatmap .imagelayer image",
                     "#dendrogram-graph .scatterlayer .trace:nth-child(2) .point",
                     "#class-map-graph .scatterlayer .trace .point"):
        page.wait_for_selector(selector, timeout=RENDER_TIMEOUT)
    page.wait_for_function("document.querySelector('#classes-model-summary')?.innerText"
                           ".includes('1,000')", timeout=RENDER_TIMEOUT)


def click_at(page, x: float, y: float) -> None:
    # Plotly needs a hover at the spot before a click counts as a click on a point.
    page.mouse.move(x, y)
    page.wait_for_timeout(150)
    page.mouse.click(x, y)


def query_of(url: str) -> dict[str, str]:
    return {key: values[0] for key, values in parse_qs(urlparse(url).query).items()}


def test_explore_and_share(dash_server, new_page, artifacts_dir):
    page = new_page()
    page.goto(dash_server + "/")
    wait_for_dashboard(page)
    page.screenshot(path=str(artifacts_dir / "e2e-01-loaded.png"), full_page=True)
    assert "Nothing selected" in page.inner_text("#classes-subtree-title")
    assert not any(s["name"] == "selection" for s in page.evaluate(HEATMAP_SHAPES))
    # No drawn axis has plotly measure each tick label after every draw to hide the ones
    # past the graph's edge (≈ 50 ms of forced layouts on a metric switch): "allow".
    axes = page.evaluate(TICK_LABEL_OVERFLOW)
    assert "dendrogram-graph" in {graph for graph, _, _ in axes}, axes
    assert all(overflow == "allow" for _, _, overflow in axes), axes

    # 1. Click a dendrogram node: the side panel lists its classes, the heatmap outlines it.
    node = page.evaluate(PICK_NODE)
    click_at(page, node["px"], node["py"])
    page.wait_for_function(
        f"document.querySelector('#classes-subtree-title')?.innerText === "
        f"'Subtree of node {node['node']}'", timeout=10_000)
    items = page.locator("#subtree-classes li")
    assert items.count() == node["size"]
    assert all(text.strip() for text in items.all_inner_texts())
    page.wait_for_function(SHAPES + ".some(s => s.name === 'selection')",
                           timeout=10_000)
    outline = next(s for s in page.evaluate(HEATMAP_SHAPES) if s["name"] == "selection")
    assert outline["x1"] - outline["x0"] == node["size"]
    assert query_of(page.url)["node"] == str(node["node"])
    page.screenshot(path=str(artifacts_dir / "e2e-02-subtree.png"), full_page=True)

    # 2. Hover a heatmap cell: both class names and the score.
    heat = page.locator("#similarity-heatmap .nsewdrag").first.bounding_box()
    page.mouse.move(heat["x"] + heat["width"] * 0.3, heat["y"] + heat["height"] * 0.6)
    tooltip = page.locator(".cm-tooltip")
    tooltip.locator(".cm-tip-score").wait_for(timeout=10_000)
    assert tooltip.locator(".cm-tip-name").count() == 2
    assert re.search(r"cosine -?\d\.\d{4}", tooltip.inner_text())

    # 3. Search "Dungeness crab" and pick it: its nearest classes appear, crabs first.
    page.click("#focal-class")
    page.keyboard.type("Dungeness crab")
    page.get_by_role("option", name=re.compile("^Dungeness crab")).first.click()
    page.wait_for_function(
        "(" + GRAPH.format(id="neighbours-graph") + "?.layout?.yaxis?.ticktext || [])[0] === 'king crab'",
        timeout=10_000)
    assert query_of(page.url)["focal"] == DUNGENESS_ID
    neighbour_axes = [a for a in page.evaluate(TICK_LABEL_OVERFLOW) if a[0] == "neighbours-graph"]
    assert neighbour_axes and all(overflow == "allow" for *_, overflow in neighbour_axes)
    page.screenshot(path=str(artifacts_dir / "e2e-03-dungeness-crab.png"), full_page=True)

    # 4. Click its first neighbour: king crab becomes the focal class.
    crab_column = [s["x0"] for s in page.evaluate(HEATMAP_SHAPES) if s["name"] == "focal-column"]
    bar = page.locator("#neighbours-graph .barlayer .point").first.bounding_box()
    click_at(page, bar["x"] + bar["width"] / 2, bar["y"] + bar["height"] / 2)
    page.wait_for_function(f"location.search.includes('focal={KING_CRAB_ID}')", timeout=10_000)
    page.wait_for_function("document.querySelector('#focal-class')?.innerText?.includes('king crab')",
                           timeout=10_000)
    page.wait_for_function(
        "(" + GRAPH.format(id="neighbours-graph") + "?.layout?.yaxis?.ticktext || [])[0] !== 'king crab'",
        timeout=10_000)
    # The heatmap's focal cross moves off Dungeness crab's column (its overlay may land
    # after the neighbour chart on a loaded machine).
    page.wait_for_function(
        SHAPES + f".some(s => s.name === 'focal-column' && !{crab_column}.includes(s.x0))",
        timeout=10_000)
    shapes = page.evaluate(HEATMAP_SHAPES)
    assert {"focal-row", "focal-column", "selection"} <= {s["name"] for s in shapes}
    page.screenshot(path=str(artifacts_dir / "e2e-04-king-crab.png"), full_page=True)

    # 5. Open the copied URL in a fresh browser context: the same view comes back.
    shared_url = page.url
    fresh = new_page()
    fresh.goto(shared_url)
    wait_for_dashboard(fresh)
    fresh.wait_for_function(
        f"document.querySelector('#classes-subtree-title')?.innerText === "
        f"'Subtree of node {node['node']}'", timeout=10_000)
    fresh.wait_for_function("document.querySelector('#focal-class')?.innerText?.includes('king crab')",
                            timeout=10_000)
    fresh.wait_for_function(SHAPES + ".some(s => s.name === 'focal-row')",
                            timeout=10_000)
    assert fresh.locator("#subtree-classes li").all_inner_texts() == items.all_inner_texts()
    assert sorted(map(str, fresh.evaluate(HEATMAP_SHAPES))) == sorted(map(str, shapes))
    assert query_of(fresh.url) == query_of(shared_url)
    fresh.screenshot(path=str(artifacts_dir / "e2e-05-shared-url.png"), full_page=True)


def test_a_shared_link_asks_the_server_only_for_the_page_and_its_views(dash_server, new_page):
    """Nothing stands between a page's arrival and its views' requests: the URL query is
    resolved while the layout is built, and no server callback writes the shared
    selection or status on load (dash-renderer would hold every view back for it)."""
    page = new_page()
    outputs = []

    def record(request):
        if "/_dash-update-component" in request.url and request.post_data:
            import json

            outputs.append(json.loads(request.post_data)["output"])

    page.on("request", record)
    page.goto(dash_server + f"/?focal={DUNGENESS_ID}&node=1990&cut=8")
    wait_for_dashboard(page)
    page.wait_for_timeout(1500)
    assert any("_pages_content" in output for output in outputs), outputs
    shell = [output for output in outputs
             if re.search(r"(^|\.\.)(selection|analysis-status|analysis-job)\.data", output)]
    assert not shell, shell
    assert len(outputs) == len(set(outputs)), outputs  # each view asked once
    # the class picker got every option when the page was idle
    page.wait_for_function("(document.querySelector('#focal-class') !== null)")
    page.click("#focal-class")
    page.keyboard.type("n0198")
    assert page.get_by_role("option").count() > 3


def test_bad_link_loads_defaults_with_a_notice(dash_server, new_page, artifacts_dir):
    page = new_page()
    page.goto(dash_server + "/?focal=no-such-class&cut=lots&colour=red")
    wait_for_dashboard(page)
    notice = page.locator("#shell-notice")
    notice.wait_for(state="visible", timeout=10_000)
    text = notice.inner_text()
    assert "no-such-class" in text and "cut" in text and "colour" in text
    assert "focal" not in query_of(page.url)
    page.screenshot(path=str(artifacts_dir / "e2e-06-bad-link.png"), full_page=True)


def test_broken_model_says_why_and_others_still_work(dash_server, new_page, artifacts_dir):
    page = new_page()
    page.goto(dash_server + "/?model=broken")
    page.wait_for_function("document.querySelector('#classes-model-summary')?.innerText"
                           ".includes('could not be loaded')", timeout=RENDER_TIMEOUT)
    assert "rank 1" in page.inner_text("#classes-model-summary")
    page.screenshot(path=str(artifacts_dir / "e2e-07-broken-model.png"), full_page=True)
    page.click("#shell-model")
    page.get_by_role("option", name="lite0-imagenet").click()
    wait_for_dashboard(page)
    assert query_of(page.url)["model"] == "lite0-imagenet"


@pytest.mark.parametrize("method, label", [("tsne", "t-SNE"), ("umap", "UMAP")])
def test_embedding_runs_in_the_background_and_replaces_the_pca_map(
        dash_server, new_page, artifacts_dir, method, label):
    """t-SNE / UMAP from a shared link: PCA is drawn at once, then the finished job
    redraws the map (the job's reply reaches the map through its own callback)."""
    page = new_page()
    page.goto(dash_server + f"/?embedding={method}")
    wait_for_dashboard(page)
    title = ("() => document.querySelector('#class-map-graph .js-plotly-plot')"
             "?._fullLayout?.xaxis?.title?.text || ''")
    page.wait_for_function(f"['PC 1', '{label} 1'].includes(({title})())",
                           timeout=RENDER_TIMEOUT)
    page.wait_for_function(f"({title})() === '{label} 1'", timeout=180_000)
    assert label in page.inner_text("#classes-embedding-note")
    assert query_of(page.url)["embedding"] == method
    page.screenshot(path=str(artifacts_dir / f"e2e-08-{method}-map.png"), full_page=True)


def test_hover_before_the_heatmap_image_is_decoded_is_skipped(dash_server, new_page):
    """plotly reads an image trace's pixels on hover, which exist only once the browser
    has decoded the PNG; a hover in that window must not throw (console errors fail the
    test at teardown). The window is recreated by dropping the decoded pixels."""
    page = new_page()
    page.goto(dash_server + "/")
    wait_for_dashboard(page)
    page.evaluate("delete document.querySelector('#similarity-heatmap .js-plotly-plot')"
                  "._fullData[0]._canvas")
    # Count the hovers plotly considers and the ones it carries out. The guard cancels a
    # hover by returning false from plotly_beforehover, and plotly heeds only the last
    # handler's answer, so the counter goes in front of it.
    page.evaluate("""() => {
        const gd = document.querySelector('#similarity-heatmap .js-plotly-plot');
        window.__considered = 0; window.__hovered = 0;
        gd._ev.prependListener('plotly_beforehover', () => { window.__considered += 1; });
        gd.on('plotly_hover', () => { window.__hovered += 1; });
    }""")
    heat = page.locator("#similarity-heatmap .nsewdrag").first.bounding_box()
    for count, fraction in enumerate((0.3, 0.5, 0.7), start=1):
        page.mouse.move(heat["x"] + heat["width"] * fraction,
                        heat["y"] + heat["height"] * fraction)
        page.wait_for_function(f"window.__considered >= {count}", timeout=10_000)
    assert page.evaluate("window.__hovered") == 0  # every hover was skipped
    assert page.locator(".cm-tooltip .cm-tip-score").count() == 0
