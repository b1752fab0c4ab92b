"""Every graph's modebar download (issue 14, defect 2), in a real browser: the "Images as"
switch in the header applies at once to every graph on the page (no redraw needed), and
each file is named after the view, the model and the selection — checked by
downloading from every graph in both formats and reading the files' first bytes."""

from __future__ import annotations

import pytest

pytestmark = [pytest.mark.e2e, pytest.mark.slow]

RENDER_TIMEOUT = 180_000  # the first image page trains LeNet and extracts digits
MAGIC = {"png": b"\x89PNG\r\n\x1a\n", "svg": b"<svg"}
LITE0 = "classmap-lite0-imagenet"
# (page URL, a graph drawn when the page is ready, {graph id: expected name without extension})
PAGES = {
    "classes": ("/?metric=euclidean&focal=n01981276&node=1990&zoom=1995&cut=5",
                "#class-map-graph .scatterlayer .trace .point",
                {"similarity-heatmap": f"{LITE0}-heatmap-metric-euclidean-zoom-1995-node-1990",
                 "dendrogram-graph":
                     f"{LITE0}-dendrogram-metric-euclidean-zoom-1995-node-1990-cut-5",
                 "neighbours-graph": f"{LITE0}-neighbours-metric-euclidean-focal-n01981276",
                 "class-map-graph": f"{LITE0}-class-map-metric-euclidean-cut-5-node-1990"}),
    "weights": ("/weights?focal=n01981276",
                "#weights-histogram-graph .barlayer .point",
                {"weights-overview-graph": f"{LITE0}-weights-overview",
                 "weights-scatter-graph": f"{LITE0}-weights-scatter",
                 "weights-histogram-graph": f"{LITE0}-weights-histogram-focal-n01981276",
                 "weights-icicle-graph": f"{LITE0}-weights-icicle-focal-n01981276"}),
    "samples": ("/samples?model=lenet-digits&data=digits&rep=softmax",
                "#samples-graph .scatterlayer .trace .point",
                {"samples-graph": "classmap-lenet-digits-samples-rep-softmax"}),
}


def download(page, graph_id: str) -> tuple[str, bytes]:
    """Click ``graph_id``'s download button; → (suggested file name, first bytes)."""
    page.locator(f"#{graph_id}").scroll_into_view_if_needed()
    page.hover(f"#{graph_id} .js-plotly-plot")
    button = page.locator(f"#{graph_id} .modebar-btn[data-title^='Download']")
    with page.expect_download(timeout=30_000) as info:
        button.first.click()
    with open(info.value.path(), "rb") as handle:
        return info.value.suggested_filename, handle.read(16)


@pytest.mark.parametrize("name", list(PAGES))
def test_every_graph_downloads_in_the_chosen_format_under_its_view_name(
        dash_server, browser, name):
    path, ready, expected = PAGES[name]
    context = browser.new_context(viewport={"width": 1280, "height": 800},
                                  accept_downloads=True)
    try:
        page = context.new_page()
        page.goto(dash_server + path)
        page.wait_for_selector(ready, timeout=RENDER_TIMEOUT)
        for graph_id in expected:
            page.wait_for_selector(f"#{graph_id} .main-svg", timeout=RENDER_TIMEOUT)
        for fmt in ("png", "svg"):
            # Switched once, with no graph redrawn since: every graph follows at once.
            page.click(f"#shell-figure-format >> text={fmt.upper()}")
            for graph_id, stem in expected.items():
                filename, head = download(page, graph_id)
                assert filename == f"{stem}.{fmt}", (graph_id, filename)
                assert head.startswith(MAGIC[fmt]), (graph_id, fmt, head)
    finally:
        context.close()
