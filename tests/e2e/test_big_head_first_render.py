"""The first render of a head above the dense-heatmap limit (issue 12), in a real browser:
5,003 planted classes × 32 features, so the overview's last 8-class block is partial (the
21k head's case). The heatmap is drawn once (its axes match the dendrogram's, so the
browser asks for no second, identical tile), and the class map comes in a request of its
own after the views response, which carries only a placeholder for it."""

from __future__ import annotations

import json
import os
import sys

import numpy as np
import pytest

import tests.e2e.conftest as e2e
from tests.e2e.conftest import ROOT, free_port, serve_until_done

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


def test_the_first_render_draws_the_heatmap_once_and_the_class_map_after(odd_server, new_page):
    page = new_page()
    views: list[dict] = []  # the response of each request that may draw the heatmap
    maps: list[dict] = []  # the class map's own requests

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
    page.goto(odd_server + "/?model=odd")
    page.wait_for_selector("#similarity-heatmap .imagelayer image", timeout=TIMEOUT)
    page.wait_for_selector("#dendrogram-graph .scatterlayer .trace:nth-child(2) .point",
                           timeout=TIMEOUT)
    # The class map arrives by itself, with every class.
    page.wait_for_function(
        f"() => {PLOT.format(id='class-map-graph')}?._fullData?.[0]?.x?.length === {CLASSES}",
        timeout=TIMEOUT)
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
    views = drawn_views
    first_map = views[0]["response"]["classes-class-map-figure"]["data"]
    assert not any(trace.get("name") == "classes" for trace in first_map["data"])
    assert views[0]["response"]["classes-class-map-key"]["data"]["deferred"] is True
    maps = [body for body in maps if body]  # a 204: the tree's key changed, no map deferred
    assert len(maps) == 1
    drawn = maps[0]["response"]["classes-class-map-figure"]["data"]
    assert any(trace.get("name") == "classes" for trace in drawn["data"])
    assert "deferred" not in maps[0]["response"]["classes-class-map-key"]["data"]
