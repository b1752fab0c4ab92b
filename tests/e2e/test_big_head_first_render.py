"""The first render of a head above the dense-heatmap limit (issue 12), in a real browser:
5,003 planted classes × 32 features, so the overview's last 8-class block is partial (the
21k head's case). The heatmap is drawn once (its axes match the dendrogram's, so the
browser asks for no second, identical tile); the class map's points come in a request of
their own after the heatmap's; and a class map out of view is not drawn until it is
scrolled into view (assets/classmap.js, ``decodeFigure``: ≈ 1 s of SVG drawing at 21k
classes that used to freeze the page right after its first render), with the selection
made meanwhile."""

from __future__ import annotations

import base64
import json
import os
import sys

import numpy as np
import pytest

import tests.e2e.conftest as e2e
from tests.e2e.conftest import ROOT, free_port, serve_until_done
from tests.e2e.test_dashboard import PICK_NODE, click_at

pytestmark = [pytest.mark.e2e, pytest.mark.slow]

CLASSES = 5003
TIMEOUT = 60_000
PLOT = "document.querySelector('#{id} .js-plotly-plot')"


@pytest.fixture(scope="module")
def odd_server(tmp_path_factory, artifacts_dir):
    """Base URL of a server offering the 5,003-class planted head, analysed beforehand."""
    from classmap.analysis.cache import ResultCache
    from classmap.analysis.synthetic import planted_head
    from classmap.app.config import Settings
    from classmap.app.shell.services import Services

    folder = tmp_path_factory.mktemp("odd-head")
    head = planted_head(CLASSES, 32, seed=5)
    np.save(folder / "odd.npy", head.weight)
    (folder / "odd.classes.txt").write_text("\n".join(head.names) + "\n")
    models = json.dumps([{"id": "odd", "head": str(folder / "odd.npy"),
                          "classes": str(folder / "odd.classes.txt")}])
    cache = folder / "cache"
    settings = Settings.create(cache_dir=cache, jobs_dir=folder / "jobs", environ={},
                               extra_models=models, warm_default=False)
    services = Services(settings, cache=ResultCache(cache))
    assert services.view(("odd", "cosine", "ward")).ordered is None  # the pyramid path
    services.embedding("odd", "pca")
    port = free_port()
    env = {**os.environ, "HF_HUB_OFFLINE": "1", "CLASSMAP_JOBS_DIR": str(folder / "jobs"),
           "CLASSMAP_MODELS": models}
    command = [sys.executable, "-m", "classmap.app.cli", "serve", "--host", "127.0.0.1",
               "--port", str(port), "--cache-dir", str(cache)]
    # On a loaded 2-core machine the server's imports alone took over a minute.
    patience, e2e.SERVER_START_SECONDS = e2e.SERVER_START_SECONDS, max(
        e2e.SERVER_START_SECONDS, 600)
    try:
        yield from serve_until_done(command, ROOT, env, artifacts_dir / "e2e-odd-server.log",
                                    port)
    finally:
        e2e.SERVER_START_SECONDS = patience


def class_map_responses(page) -> tuple[list, list]:
    """(bodies of the responses that may draw the heatmap, bodies of the class map's own
    requests), filled as the page's responses come (None: a 204, nothing to update)."""
    views: list = []
    maps: list = []

    def record(response):
        if not response.url.split("?")[0].endswith("/_dash-update-component"):
            return
        output = (response.request.post_data_json or {}).get("output", "")
        if "classes-heatmap-figure.data" not in output and not output.startswith(
                "..classes-class-map-figure.data"):
            return
        try:
            body = response.json()
        except Exception:  # noqa: BLE001 — a 204 (nothing to update) has no body
            body = None
        (views if "classes-heatmap-figure.data" in output else maps).append(body)

    page.on("response", record)
    return views, maps


def map_points(body: dict | None) -> int | None:
    """How many classes a response's class map figure draws (None: it has no figure)."""
    figure = ((body or {}).get("response", {}).get("classes-class-map-figure") or {}).get("data")
    if not figure:
        return None
    traces = [t for t in figure.get("data", []) if t.get("name") == "classes"]
    if not traces:
        return 0  # a placeholder
    x = traces[0]["x"]
    if isinstance(x, list):
        return len(x)
    return len(base64.b64decode(x["bdata"])) // np.dtype(x["dtype"]).itemsize


def wait_for_map_response(page, maps: list) -> None:
    for _ in range(120):
        if any(map_points(body) for body in maps):
            return
        page.wait_for_timeout(500)


def first_render(page) -> None:
    page.wait_for_selector("#similarity-heatmap .imagelayer image", timeout=TIMEOUT)
    page.wait_for_selector("#dendrogram-graph .scatterlayer .trace:nth-child(2) .point",
                           timeout=TIMEOUT)


def test_the_first_render_draws_the_heatmap_once_and_the_class_map_after(odd_server, new_page):
    page = new_page()
    views, maps = class_map_responses(page)
    page.goto(odd_server + "/?model=odd")
    first_render(page)
    wait_for_map_response(page, maps)
    page.wait_for_load_state("networkidle")
    heat = PLOT.format(id="similarity-heatmap")
    tree = PLOT.format(id="dendrogram-graph")
    ranges = page.evaluate(f"() => [{heat}._fullLayout.xaxis.range, {tree}._fullLayout.xaxis.range]")
    assert ranges[0] == pytest.approx([-0.5, CLASSES - 0.5])
    assert ranges[1] == pytest.approx([-0.5, CLASSES - 0.5])

    # Responses that drew a heatmap (not the "Analysing …" message while the job ran).
    drawn_views = [body for body in views if body and body["response"].get(
        "classes-heatmap-figure", {}).get("data", {}).get("data")]
    assert len(drawn_views) == 1, f"{len(drawn_views)} responses drew the heatmap"
    # The class map's points are not in the response the heatmap and the tree wait for:
    # they come once, in a request of the class map's own.
    assert not map_points(drawn_views[0])
    assert [map_points(body) for body in maps if map_points(body)] == [CLASSES]


def test_a_class_map_out_of_view_is_drawn_when_scrolled_to(odd_server, new_page):
    page = new_page()
    page.set_viewport_size({"width": 1480, "height": 900})  # the class map well below
    views, maps = class_map_responses(page)
    page.goto(odd_server + "/?model=odd")
    first_render(page)
    wait_for_map_response(page, maps)
    assert any(map_points(body) == CLASSES for body in maps), "the class map never came"
    page.wait_for_load_state("networkidle")
    page.wait_for_timeout(500)
    class_map = PLOT.format(id="class-map-graph")
    drawn = f"() => {class_map}?._fullData?.[0]?.x?.length ?? 0"
    # Arrived, not drawn: no point in the graph, a note saying when it will be.
    assert page.evaluate(drawn) == 0
    assert page.locator("#class-map-graph .scatterlayer .point").count() == 0
    assert f"{CLASSES:,} points" in page.text_content("#class-map-graph")

    # A node selected meanwhile: its overlay goes into the held figure.
    node = page.evaluate(PICK_NODE)
    click_at(page, node["px"], node["py"])
    page.wait_for_function("/^Subtree of node \\d+$/.test(document.querySelector("
                           "'#classes-subtree-title')?.innerText || '')", timeout=TIMEOUT)
    clicked = int(page.inner_text("#classes-subtree-title").split()[-1])
    size = page.evaluate(f"() => {PLOT.format(id='dendrogram-graph')}._fullData[1].customdata"
                         f".find(d => d[0] === {clicked})[1]")
    page.wait_for_load_state("networkidle")
    page.wait_for_timeout(500)
    assert page.evaluate(drawn) == 0

    page.locator("#class-map-graph").scroll_into_view_if_needed()
    page.wait_for_function(f"() => ({drawn})() === {CLASSES}", timeout=TIMEOUT)
    rings = page.evaluate(f"() => {class_map}._fullData[1].x.length")
    assert rings == size, "the selection made before the map was drawn is not shown"
