"""In a real browser (issue 14): the header's "Export this view" downloads one zip of the
Classes page's view — named after the model, the view and the selection, holding the
CSV and Newick files, each figure as SVG and PNG under the same names as the graphs'
own downloads, and the URL the address bar shows — and switching the model shows a
busy note saying what is being done until the page's views are drawn for the new model."""

from __future__ import annotations

import io
import zipfile

import pytest

from tests.e2e.test_downloads import PAGES

pytestmark = [pytest.mark.e2e, pytest.mark.slow]

RENDER_TIMEOUT = 180_000
EXPORT_TIMEOUT = 180_000  # the server renders eight images of a 1,000-class view
CLASS_MAP_POINTS = "#class-map-graph .scatterlayer .trace .point"


def test_export_this_view_downloads_one_zip_of_the_view(dash_server, browser):
    path, ready, graphs = PAGES["classes"]
    context = browser.new_context(viewport={"width": 1480, "height": 1000},
                                  accept_downloads=True, bypass_csp=True)
    try:
        page = context.new_page()
        page.goto(dash_server + path)
        page.wait_for_selector(ready, timeout=RENDER_TIMEOUT)
        page.wait_for_selector("#neighbours-graph .barlayer .point", timeout=RENDER_TIMEOUT)
        button = page.locator("#shell-export-view")
        assert button.is_visible() and button.inner_text() == "Export this view"
        with page.expect_download(timeout=EXPORT_TIMEOUT) as info:
            button.click()
        download = info.value
        assert download.suggested_filename == (
            "classmap-lite0-imagenet-classes-metric-euclidean-focal-n01981276-node-1990-"
            "zoom-1995-cut-5.zip")
        with open(download.path(), "rb") as handle:
            archive = zipfile.ZipFile(io.BytesIO(handle.read()))
        names = archive.namelist()
        figures = {f"{stem}.{fmt}" for stem in graphs.values() for fmt in ("svg", "png")}
        assert set(names) == {"classes.csv", "neighbours.csv", "tree.nwk", "selection.csv",
                              "focal-neighbours.csv", "view-url.txt", "manifest.json",
                              *figures}, names
        assert archive.testzip() is None
        assert archive.read("classes.csv").decode().splitlines()[122].startswith(
            "121,n01981276,\"king crab, Alaska crab")
        for name in figures:
            head = archive.read(name)[:8]
            assert head.startswith(b"\x89PNG" if name.endswith(".png") else b"<svg"), name
        url = archive.read("view-url.txt").decode().splitlines()[0]
        assert url == page.evaluate("location.href")
        # The button is back for the next export.
        page.wait_for_function("!document.getElementById('shell-export-view').disabled",
                               timeout=60_000)
        assert button.inner_text() == "Export this view"
    finally:
        context.close()


def test_model_switch_shows_what_is_done_until_the_views_are_drawn(dash_server, new_page,
                                                                    lenet_digits):
    # lenet_digits: LeNet is trained into the session cache the server reads before the
    # browser waits (training takes minutes on a loaded 2-core machine); the server's job
    # still loads and analyses it, with its progress bar, then the note.
    page = new_page()
    page.goto(dash_server + "/")
    page.wait_for_selector(CLASS_MAP_POINTS, timeout=RENDER_TIMEOUT)
    assert page.locator("#shell-model-busy").is_hidden()
    # Record what the header says whenever the note or the job's progress is shown.
    page.evaluate("""() => {
      window.__busySeen = [];
      const watch = id => {
        const element = document.getElementById(id);
        new MutationObserver(() => {
          if (!element.hidden) { window.__busySeen.push(element.innerText); }
        }).observe(element, {attributes: true, childList: true, subtree: true,
                             characterData: true});
      };
      watch('shell-model-busy');
      watch('shell-job');
    }""")
    page.click("#shell-model")
    page.get_by_role("option", name="lenet-digits").click()
    page.wait_for_function("window.__busySeen.some(t => t.includes('lenet-digits'))",
                           timeout=60_000)
    # The views of the new model arrive (ten classes), and then the note goes away.
    page.wait_for_function(
        "document.querySelector('#class-map-graph .js-plotly-plot')?._fullData?.[0]?.x?.length"
        " === 10", timeout=RENDER_TIMEOUT)
    page.wait_for_selector("#shell-model-busy", state="hidden", timeout=60_000)
    seen = page.evaluate("window.__busySeen")
    assert any("Drawing the views of lenet-digits" in text for text in seen), seen
    assert page.locator("#shell-job").is_hidden()
    # Back to a model whose analysis is in memory: the note shows and goes again.
    page.evaluate("window.__busySeen = []")
    page.click("#shell-model")
    page.get_by_role("option", name="lite0-imagenet").click()
    page.wait_for_function(
        "document.querySelector('#class-map-graph .js-plotly-plot')?._fullData?.[0]?.x?.length"
        " === 1000", timeout=RENDER_TIMEOUT)
    page.wait_for_selector("#shell-model-busy", state="hidden", timeout=60_000)
    assert any("Drawing the views of lite0-imagenet" in text
               for text in page.evaluate("window.__busySeen"))
