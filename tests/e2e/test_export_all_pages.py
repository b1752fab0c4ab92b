"""In a real browser (issue 14): "Export this view" in the header works on every page with a
view — Weight distributions, Samples, Clustering, Confidence (the Classes page has its own
test in test_export_view.py): a click downloads one zip named after the model, view and
selection, holding the page's CSV files, its figures as SVG and PNG, the manifest and the
URL the address bar shows. Where there is nothing to export (a data set the model cannot
read) the notice bar says so in one line and no file is downloaded; the Compare page,
whose sources are not in the URL, shows no button."""

from __future__ import annotations

import io
import json
import zipfile
from urllib.parse import parse_qsl, urlsplit

import pytest

pytestmark = [pytest.mark.e2e, pytest.mark.slow]

RENDER_TIMEOUT = 120_000
EXPORT_TIMEOUT = 180_000  # the server renders each figure twice (SVG, PNG) in Chromium
LENET = "model=lenet-digits"
DATA = "&data=digits"
# page → (path and query, what shows the view is drawn, archive name, CSV members, figure views)
PAGES = {
    "weights": (f"/weights?{LENET}&focal=3&split=full",
                "#weights-histogram-graph .barlayer .point",
                "classmap-lenet-digits-weights-focal-3-split-full.zip",
                ["class-fits.csv", "focal-histogram.csv", "focal-densities.csv",
                 "focal-split.csv"],
                ["weights-overview", "weights-scatter", "weights-scatter-r2",
                 "weights-histogram-focal-3", "weights-icicle-focal-3-split-full"]),
    "samples": (f"/samples?{LENET}{DATA}&focal=4&image=7",
                "#samples-graph .scatterlayer .trace .point",
                "classmap-lenet-digits-samples-focal-4-image-7.zip",
                ["samples.csv", "sample.csv"], ["samples"]),
    "clustering": (f"/clustering?{LENET}{DATA}&rep=softmax",
                   "#clustering-cluster-graph .scatterlayer .trace .point",
                   "classmap-lenet-digits-clustering-rep-softmax.zip",
                   ["clustering-assignments.csv", "within_class_similarity.csv",
                    "clustering_metrics.csv", "confusion.csv"],
                   ["clustering-true-rep-softmax", "clustering-cluster-rep-softmax-kmeans",
                    "clustering-cluster-rep-softmax-gmm"]),
    "confidence": (f"/confidence?{LENET}{DATA}&focal=3",
                   "#confidence-js-heatmap .heatmaplayer image",
                   "classmap-lenet-digits-confidence-focal-3.zip",
                   ["confidence-js.csv", "confusion.csv", "classes.csv", "tsne.csv"],
                   ["confidence-js-heatmap", "confidence-tsne", "confidence-confusion"]),
}
NOTICE = "#shell-notice-text"


def query(url: str) -> dict[str, str]:
    return dict(parse_qsl(urlsplit(url).query))


def test_every_page_exports_its_view(dash_server, browser, lenet_digits, artifacts_dir):
    # lenet_digits: LeNet is trained into the session cache the server reads.
    context = browser.new_context(viewport={"width": 1480, "height": 1000},
                                  accept_downloads=True, bypass_csp=True)
    try:
        page = context.new_page()
        # The model's analysis first: a link opened while it is still computing loses its
        # focal class (seen 2026-12-02; reported, not this test's subject).
        page.goto(dash_server + f"/weights?{LENET}")
        page.wait_for_selector("#weights-overview-graph .barlayer .point", timeout=RENDER_TIMEOUT)
        for name, (path, ready, filename, tables, views) in PAGES.items():
            page.goto(dash_server + path)
            try:
                page.wait_for_selector(ready, timeout=RENDER_TIMEOUT)
            finally:
                page.screenshot(path=str(artifacts_dir / f"e2e-export-{name}.png"))
            button = page.locator("#shell-export-view")
            page.wait_for_function("!document.getElementById('shell-export-view').disabled",
                                   timeout=60_000)
            with page.expect_download(timeout=EXPORT_TIMEOUT) as info:
                button.click()
            download = info.value
            assert download.suggested_filename == filename, name
            with open(download.path(), "rb") as handle:
                archive = zipfile.ZipFile(io.BytesIO(handle.read()))
            assert archive.testzip() is None
            members = archive.namelist()
            assert [m for m in members if m in tables] == tables, (name, members)
            for view in views:
                stem = f"classmap-lenet-digits-{view}"
                assert f"{stem}.svg" in members, (name, view, members)
                assert archive.read(f"{stem}.svg")[:4] == b"<svg", stem
                assert archive.read(f"{stem}.png")[:8] == b"\x89PNG\r\n\x1a\n", stem
            manifest = json.loads(archive.read("manifest.json"))
            assert manifest["view"] == name and set(manifest["file_info"]) == \
                set(members) - {"manifest.json"}
            # The URL reopens what the address bar shows.
            url = archive.read("view-url.txt").decode().splitlines()[0]
            here = page.evaluate("location.href")
            assert urlsplit(url).path == urlsplit(here).path, name
            assert query(url) == query(here), name
            assert page.locator("#shell-notice").get_attribute("class").find("error") < 0
    finally:
        context.close()


def test_nothing_to_export_is_one_line_and_compare_has_no_button(dash_server, new_page):
    page = new_page()
    downloads: list = []
    page.on("download", lambda download: downloads.append(download))
    # The digits under the ImageNet model: the page says what to pick; so does the export.
    page.goto(dash_server + "/samples?data=digits")
    page.wait_for_function("document.querySelector('#images-message')?.innerText.length > 0",
                           timeout=RENDER_TIMEOUT)
    page.click("#shell-export-view")
    page.wait_for_function(f"document.querySelector('{NOTICE}')?.innerText"
                           ".startsWith('nothing to export')", timeout=60_000)
    text = page.inner_text(NOTICE)
    assert "\n" not in text and "Traceback" not in text and "lenet-digits" in text, text
    page.wait_for_timeout(500)
    assert not downloads
    # Compare has no view export (its sources are not in the URL): no button there.
    page.goto(dash_server + "/compare")
    page.wait_for_selector(".cm-page-compare", timeout=RENDER_TIMEOUT)
    assert page.locator("#shell-export-view").is_hidden()
