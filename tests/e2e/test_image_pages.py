"""The image pages in a real browser, on the offline default lenet-digits + digits:
click an image on Samples and see its Grad-CAM map; Confidence draws its heatmap;
Clustering shows the seed-002 tables. Screenshots go to ``test-artifacts/``."""

from __future__ import annotations

from urllib.parse import parse_qs, urlparse

import pytest

from tests.e2e.test_dashboard import TICK_LABEL_OVERFLOW

pytestmark = pytest.mark.e2e

RENDER_TIMEOUT = 60_000
QUERY = "?model=lenet-digits&data=digits"
GRAPH = "document.querySelector('#{id} .js-plotly-plot')"
# Screen position of the first point of the first class trace of the samples scatter.
FIRST_POINT = """() => {
  const gd = """ + GRAPH.format(id="samples-graph") + """;
  const t = gd._fullData[0], layout = gd._fullLayout, box = gd.getBoundingClientRect();
  return {index: t.customdata[0][0],
          px: box.left + layout._size.l + layout.xaxis.l2p(t.x[0]),
          py: box.top + layout._size.t + layout.yaxis.l2p(t.y[0])};
}"""


def query_of(url: str) -> dict[str, str]:
    return {key: values[0] for key, values in parse_qs(urlparse(url).query).items()}


def test_samples_click_shows_grad_cam(dash_server, new_page, artifacts_dir):
    page = new_page()
    page.goto(dash_server + "/samples" + QUERY)
    page.wait_for_selector("#samples-graph .scatterlayer .trace .point", timeout=RENDER_TIMEOUT)
    page.wait_for_function("document.querySelector('#images-message')?.innerText"
                           ".includes('360 images')", timeout=RENDER_TIMEOUT)
    assert not page.get_attribute("#sample-cam", "src")
    point = page.evaluate(FIRST_POINT)
    page.mouse.move(point["px"], point["py"])
    page.wait_for_timeout(150)
    page.mouse.click(point["px"], point["py"])
    page.wait_for_function("(document.querySelector('#sample-cam')?.getAttribute('src') || '')"
                           ".startsWith('data:image/png;base64,')", timeout=20_000)
    assert len(page.get_attribute("#sample-cam", "src")) > 1000
    assert page.get_attribute("#sample-image", "src").startswith("data:image/png;base64,")
    assert "confidence" in page.inner_text("#samples-details")
    query = query_of(page.url)
    assert query["image"] == str(point["index"]) and "focal" in query
    page.wait_for_function(  # the other classes faded; the clicked image's class on top
        "(" + GRAPH.format(id="samples-graph") + "?._fullData || []).filter("
        "t => t.marker && String(t.marker.color).startsWith('rgba')).length === 9 && (" +
        GRAPH.format(id="samples-graph") + "._fullData.find(t => t.zorder === 1)?.customdata"
        f" || []).some(c => c[0] === {point['index']})", timeout=20_000)
    page.screenshot(path=str(artifacts_dir / "e2e-images-01-samples.png"), full_page=True)


def test_confidence_heatmap_and_clustering_render(dash_server, new_page, artifacts_dir):
    page = new_page()
    page.goto(dash_server + "/confidence" + QUERY + "&focal=3")
    page.wait_for_selector("#confidence-js-heatmap .heatmaplayer image", timeout=RENDER_TIMEOUT)
    page.wait_for_selector("#confidence-tsne-graph .scatterlayer .trace .point",
                           timeout=RENDER_TIMEOUT)
    page.wait_for_selector("#confidence-confusion-graph .heatmaplayer image",
                           timeout=RENDER_TIMEOUT)
    ticks = page.evaluate("(" + GRAPH.format(id="confidence-js-heatmap") +
                          ".layout.xaxis3.ticktext || [])")
    assert sorted(ticks) == [str(d) for d in range(10)]
    axes = page.evaluate(TICK_LABEL_OVERFLOW)
    assert {"confidence-js-heatmap", "confidence-confusion-graph"} <= {a[0] for a in axes}, axes
    assert all(overflow == "allow" for *_, overflow in axes), axes
    assert "k = " in page.inner_text("#confidence-class-clusters")
    page.screenshot(path=str(artifacts_dir / "e2e-images-02-confidence.png"), full_page=True)

    page.goto(dash_server + "/clustering" + QUERY)
    page.wait_for_function("document.querySelector('#clustering-metrics-table')?.innerText"
                           ".includes('Silhouette')", timeout=RENDER_TIMEOUT)
    page.wait_for_selector("#clustering-cluster-graph .scatterlayer .trace .point",
                           timeout=RENDER_TIMEOUT)
    assert "mean over classes" in page.inner_text("#clustering-within-table")
    # The scatters' legends fit in the room the figures give them (the margins do not
    # grow after drawing: no second draw), long names ("cluster 10") included.
    boxes = page.evaluate("""() => ['clustering-true-graph', 'clustering-cluster-graph']
      .map((id) => {
        const root = document.querySelector('#' + id + ' .js-plotly-plot');
        const legend = root.querySelector('.legend').getBoundingClientRect();
        const svg = root.querySelector('.main-svg').getBoundingClientRect();
        return [legend.right, svg.right, root._fullLayout.margin.autoexpand];
      })""")
    for legend_right, svg_right, autoexpand in boxes:
        assert legend_right <= svg_right and autoexpand is False, boxes
    page.screenshot(path=str(artifacts_dir / "e2e-images-03-clustering.png"), full_page=True)
