"""A shared link opened while its model's analysis is still being computed (issue 14, "First
contact"): every server here starts on an empty result cache, so the link's page arrives
before the model is trained and analysed. The link's focal class (and tree node) must
survive until the analysis is ready, be checked then, and stay selected and in the URL —
an earlier weights page dropped it with no notice because its class picker got no options
while the class list was unknown."""

from __future__ import annotations

import os
import sys
import time
from urllib.parse import parse_qs, urlparse

import pytest

from tests.e2e.conftest import ROOT, free_port, serve_until_done

pytestmark = [pytest.mark.e2e, pytest.mark.slow]

# The cold model (LeNet-5 on the digits) is trained and analysed while the page waits.
COLD_TIMEOUT = 240_000


@pytest.fixture
def cold_server(tmp_path, artifacts_dir, request):
    """Base URL of ``classmap serve`` on an empty cache directory of its own."""
    port = free_port()
    env = {**os.environ, "HF_HUB_OFFLINE": "1", "CLASSMAP_JOBS_DIR": str(tmp_path / "jobs")}
    command = [sys.executable, "-m", "classmap.app.cli", "serve", "--host", "127.0.0.1",
               "--port", str(port), "--cache-dir", str(tmp_path / "cache")]
    log = artifacts_dir / f"e2e-cold-{request.node.name.replace('/', '_')}.log"
    yield from serve_until_done(command, ROOT, env, log, port)


def query(page) -> dict[str, list[str]]:
    return parse_qs(urlparse(page.url).query)


def open_cold(page, url: str) -> float:
    started = time.monotonic()
    page.goto(url)
    return started


def test_weights_link_keeps_its_focal_class_through_a_cold_analysis(cold_server, new_page,
                                                                     artifacts_dir):
    page = new_page()
    open_cold(page, cold_server + "/weights?model=lenet-digits&focal=3")
    # The page is there before the analysis: the job panel shows, the link's class is kept.
    page.wait_for_selector("#weights-focal-title", timeout=60_000)
    assert query(page).get("focal") == ["3"], page.url
    # Ready (the class scatter is drawn whatever the focal class): the class is still in
    # the URL, and its histogram is drawn …
    page.wait_for_selector("#weights-scatter-graph .scatterlayer .trace .point",
                           timeout=COLD_TIMEOUT)
    page.wait_for_timeout(1_000)  # a late clear of the picker would show in the URL now
    assert query(page).get("focal"), f"the link's focal class was dropped: {page.url}"
    page.wait_for_selector("#weights-histogram-graph .barlayer .point", timeout=60_000)
    page.wait_for_function(
        "() => !document.querySelector('#weights-focal-title').textContent"
        ".startsWith('No focal')", timeout=60_000)
    page.screenshot(path=str(artifacts_dir / "e2e-cold-weights.png"))
    # … for class #3, which is still selected in the picker and still in the URL.
    title = page.inner_text("#weights-focal-title")
    assert title.endswith("· #3"), title
    focal = query(page).get("focal")
    assert focal is not None and len(focal) == 1, page.url
    picker = page.inner_text("[id*='weights-control'][id*='focal']")
    assert focal[0] in title and focal[0] in picker, (title, picker)


def test_classes_link_keeps_its_focal_class_and_node_through_a_cold_analysis(
        cold_server, new_page, artifacts_dir):
    page = new_page()
    # lenet-digits has 10 classes: internal tree nodes are 10…18; 18 is the root.
    open_cold(page, cold_server + "/?model=lenet-digits&focal=3&node=17")
    page.wait_for_selector("#focal-class", timeout=60_000)
    assert query(page).get("focal") == ["3"] and query(page).get("node") == ["17"], page.url
    page.wait_for_selector("#class-map-graph .scatterlayer .trace .point", timeout=COLD_TIMEOUT)
    page.wait_for_selector("#neighbours-graph .barlayer .point", timeout=60_000)
    page.screenshot(path=str(artifacts_dir / "e2e-cold-classes.png"))
    state = query(page)
    assert state.get("node") == ["17"], page.url
    focal = state.get("focal")
    assert focal is not None and len(focal) == 1, page.url
    assert focal[0] in page.inner_text("#focal-class"), page.inner_text("#focal-class")


def test_samples_link_keeps_its_focal_class_through_a_cold_analysis(cold_server, new_page,
                                                                    artifacts_dir):
    page = new_page()
    open_cold(page, cold_server + "/samples?model=lenet-digits&data=digits&focal=3")
    page.wait_for_selector("#samples-graph", timeout=60_000)
    assert query(page).get("focal") == ["3"], page.url
    page.wait_for_selector("#samples-graph .scatterlayer .trace .point", timeout=COLD_TIMEOUT)
    page.wait_for_timeout(2_000)  # a late clear of the picker would show in the URL now
    page.screenshot(path=str(artifacts_dir / "e2e-cold-samples.png"))
    focal = query(page).get("focal")
    assert focal is not None and len(focal) == 1, page.url


def test_weights_link_with_an_unknown_class_says_so_once_the_analysis_is_ready(
        cold_server, new_page):
    page = new_page()
    open_cold(page, cold_server + "/weights?model=lenet-digits&focal=no-such-class")
    page.wait_for_selector("#weights-focal-title", timeout=60_000)
    assert query(page).get("focal") == ["no-such-class"], page.url  # kept until checked
    page.wait_for_selector("#weights-scatter-graph .scatterlayer .trace .point",
                           timeout=COLD_TIMEOUT)
    page.wait_for_function("() => !new URL(location.href).searchParams.has('focal')",
                           timeout=60_000)
    notice = page.inner_text("#shell-notice-text")
    assert "'no-such-class' is not a class of lenet-digits" in notice, notice
    assert page.inner_text("#weights-focal-title") == "No focal class"
