"""A head above the dense-heatmap limit (issue 12) in a real browser: 6,000 planted classes
× 64 features — the 21k case scaled down to what CI can analyse. The page draws the
heatmap from the tile pyramid and a collapsed (level-of-detail) dendrogram; a node click
opens the side panel, a zoom step redraws the heatmap, the class search finds a class,
and the first load's responses stay within 5 MB."""

from __future__ import annotations

import json
import os
import re
import sys
import time

import numpy as np
import pytest

from tests.e2e.conftest import ROOT, free_port, serve_until_done
from tests.e2e.test_dashboard import PICK_NODE, click_at

pytestmark = [pytest.mark.e2e, pytest.mark.slow]

CLASSES = 6000
RENDER_TIMEOUT = 60_000
PAYLOAD_LIMIT = 5 * 1024 * 1024
NODES = ("() => document.querySelector('#dendrogram-graph .js-plotly-plot')"
         "._fullData[1].x.length")
NODE_SIZE = ("(id) => document.querySelector('#dendrogram-graph .js-plotly-plot')._fullData[1]"
             ".customdata.find(d => d[0] === id)[1]")
HEATMAP_SOURCE = ("() => document.querySelector('#similarity-heatmap .imagelayer image')"
                  "?.getAttribute('href') || ''")


@pytest.fixture(scope="module")
def big_server(tmp_path_factory, artifacts_dir):
    """(base URL, class names) of a server offering the 6,000-class planted head, its analysis cached
    beforehand (the cold analysis, timed, is in the server log folder's e2e-big-head.txt)."""
    from classmap.analysis.cache import ResultCache
    from classmap.analysis.synthetic import planted_head
    from classmap.app.config import Settings
    from classmap.app.shell.services import Services

    folder = tmp_path_factory.mktemp("big-head")
    head = planted_head(CLASSES, 64, seed=3)
    np.save(folder / "big.npy", head.weight)
    (folder / "big.classes.txt").write_text("\n".join(head.names) + "\n")
    models = json.dumps([{"id": "big", "head": str(folder / "big.npy"),
                          "classes": str(folder / "big.classes.txt")}])
    cache = folder / "cache"
    settings = Settings.create(cache_dir=cache, jobs_dir=folder / "jobs", environ={},
                               extra_models=models, warm_default=False)
    started = time.perf_counter()
    view = Services(settings, cache=ResultCache(cache)).view(("big", "cosine", "ward"))
    assert view.ordered is None  # above the dense limit: the pyramid path
    (artifacts_dir / "e2e-big-head.txt").write_text(
        f"cold analysis of {CLASSES} x 64: {time.perf_counter() - started:.1f} s\n")
    port = free_port()
    env = {**os.environ, "HF_HUB_OFFLINE": "1",
           "CLASSMAP_JOBS_DIR": str(folder / "jobs"), "CLASSMAP_MODELS": models}
    command = [sys.executable, "-m", "classmap.app.cli", "serve", "--host", "127.0.0.1",
               "--port", str(port), "--cache-dir", str(cache)]
    for url in serve_until_done(command, ROOT, env, artifacts_dir / "e2e-big-server.log", port):
        yield url, head.names


def test_a_head_above_the_dense_limit_renders_zooms_and_searches(big_server, new_page,
                                                                   artifacts_dir):
    url, names = big_server
    page = new_page()
    received = []

    def count(response):
        try:
            received.append(len(response.body()))
        except Exception:  # redirects and aborted requests have no body
            pass

    page.on("response", count)
    page.goto(url + "/?model=big")
    page.wait_for_selector("#similarity-heatmap .imagelayer image", timeout=RENDER_TIMEOUT)
    page.wait_for_selector("#dendrogram-graph .scatterlayer .trace:nth-child(2) .point",
                           timeout=RENDER_TIMEOUT)
    page.wait_for_function("document.querySelector('#classes-model-summary')?.innerText"
                           ".includes('6,000')", timeout=RENDER_TIMEOUT)
    page.wait_for_load_state("networkidle")
    payload = sum(received)
    page.screenshot(path=str(artifacts_dir / "e2e-big-01-loaded.png"), full_page=True)
    assert payload <= PAYLOAD_LIMIT, f"first load received {payload:,} bytes"
    # Collapsed: far fewer clickable nodes than the C − 1 of the whole tree.
    assert 0 < page.evaluate(NODES) < CLASSES // 4

    # A node click opens the side panel with that node's classes (the markers of a
    # 6,000-leaf tree sit close together: whichever node the click hit).
    node = page.evaluate(PICK_NODE)
    click_at(page, node["px"], node["py"])
    page.wait_for_function("/^Subtree of node \\d+$/.test(document.querySelector("
                           "'#classes-subtree-title')?.innerText || '')", timeout=60_000)
    clicked = int(page.inner_text("#classes-subtree-title").split()[-1])
    size = page.evaluate(NODE_SIZE, clicked)
    assert f"node={clicked}" in page.url
    page.wait_for_function(f"document.querySelectorAll('#subtree-classes li').length === {size}",
                           timeout=60_000)

    # A zoom step (drag on the heatmap) redraws it at a finer level.
    before = page.evaluate(HEATMAP_SOURCE)
    page.evaluate("() => document.getElementById('similarity-heatmap')"
                  ".scrollIntoView({block: 'center'})")
    box = page.locator("#similarity-heatmap .nsewdrag").first.bounding_box()
    page.mouse.move(box["x"] + box["width"] * 0.2, box["y"] + box["height"] * 0.2)
    page.mouse.down()
    page.mouse.move(box["x"] + box["width"] * 0.3, box["y"] + box["height"] * 0.3, steps=6)
    page.mouse.up()
    page.wait_for_function(f"() => ({HEATMAP_SOURCE})() !== {json.dumps(before)}",
                           timeout=60_000)
    page.wait_for_function("/[?&]range=/.test(location.search)", timeout=60_000)
    page.screenshot(path=str(artifacts_dir / "e2e-big-02-zoomed.png"), full_page=True)

    # The class search finds a class among the 6,000 names and makes it the focal class.
    wanted = names[4321]
    page.click("#focal-class")
    # Type once the list's search box has the focus (the list opens in a portal; keys
    # typed while the focus moves from the button to the box can be lost).
    page.wait_for_function("document.activeElement?.matches('.dash-dropdown-search')",
                           timeout=60_000)
    page.keyboard.type(wanted, delay=20)
    option = page.get_by_role("option", name=re.compile("^" + re.escape(wanted))).first
    option.wait_for(timeout=60_000)
    option.click()
    page.wait_for_function("/[?&]focal=/.test(location.search)", timeout=60_000)
    page.wait_for_function(f"document.querySelector('#focal-class')?.innerText?.includes("
                           f"{json.dumps(wanted)})", timeout=60_000)
