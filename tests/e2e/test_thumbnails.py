"""Thumbnails in a real browser (issue 14, "images where people would rather look than
read"), on lenet-digits + digits at 1280 px wide: the Samples page's grid of <img>
thumbnails that load, the Grad-CAM map over a thumbnail on hover and pinned on click
(with the detail panel's busy state while the large map is drawn), and the Classes
page's strips next to the nearest classes and in the selection panel. Screenshots go
to ``test-artifacts/``."""

from __future__ import annotations

import re
from urllib.parse import parse_qs, urlparse

import pytest

pytestmark = pytest.mark.e2e

RENDER_TIMEOUT = 60_000
# The first page also waits for the image job (extraction and analyses of the 360 digits).
JOB_TIMEOUT = 300_000
QUERY = "?model=lenet-digits&data=digits"
TILE = "#samples-grid .cm-thumb"
LOADED = """sel => {
  const imgs = Array.from(document.querySelectorAll(sel));
  return imgs.length > 0 && imgs.every(img => img.complete && img.naturalWidth > 0);
}"""
THUMB_URL = re.compile(r"^/_classmap/thumbnail\?model=lenet-digits&data=digits&kind=(image|cam)"
                       r"&index=\d+$")


def wide_page(new_page):
    page = new_page()
    page.set_viewport_size({"width": 1280, "height": 900})
    return page


def test_samples_grid_of_thumbnails_with_grad_cam_on_hover_and_click(
        dash_server, new_page, artifacts_dir, lenet_digits):  # trained in the shared cache
    page = wide_page(new_page)
    page.goto(dash_server + "/samples" + QUERY)
    page.wait_for_selector(TILE + " img.cm-thumb-img", timeout=JOB_TIMEOUT)
    assert page.locator(TILE).count() == 360  # every digit, ten groups
    assert page.locator("#samples-grid .cm-thumb-group").count() == 10
    # The first row's thumbnails (in view: not deferred by loading="lazy") load.
    first_row = "#samples-grid .cm-thumb-group:first-child .cm-thumb:nth-child(-n+8) img"
    page.wait_for_function(LOADED, arg=first_row, timeout=RENDER_TIMEOUT)
    sizes = page.evaluate(f"Array.from(document.querySelectorAll('{first_row}'))"
                          ".map(img => [img.naturalWidth, img.naturalHeight])")
    assert all(w == h == 64 for w, h in sizes), sizes
    sources = page.evaluate("Array.from(document.querySelectorAll('#samples-grid img'))"
                            ".map(img => img.getAttribute('src'))")
    assert all(THUMB_URL.match(src) for src in sources), sources[:3]

    # Hover: the tile's Grad-CAM map is fetched and shown over the picture.
    tile = page.locator(TILE).nth(2)
    tile.hover()
    cam = f"{TILE}:nth-child(3) img.cm-thumb-cam"
    page.wait_for_function(LOADED, arg=cam, timeout=RENDER_TIMEOUT)
    page.wait_for_function(f"getComputedStyle(document.querySelector('{cam}')).opacity === '1'",
                           timeout=10_000)
    assert "kind=cam" in page.get_attribute(cam, "src")
    page.screenshot(path=str(artifacts_dir / "e2e-thumbnails-hover.png"))

    # Click another: the detail panel is busy (saying what it draws), then shows the image
    # and its large Grad-CAM map; the tile keeps its map pinned; the URL names the image.
    page.evaluate("""() => {
      const box = document.getElementById('sample-detail-box');
      window.__busySeen = [];
      new MutationObserver(() => {
        if (box.classList.contains('cm-busy')) {
          window.__busySeen.push(document.getElementById('sample-detail-busy').innerText);
        }
      }).observe(box, {attributes: true, attributeFilter: ['class']});
    }""")
    clicked = page.locator(TILE).nth(5)
    index = clicked.get_attribute("data-index")
    clicked.click()
    page.wait_for_function("(document.querySelector('#sample-cam')?.getAttribute('src') || '')"
                           ".startsWith('data:image/png;base64,')", timeout=RENDER_TIMEOUT)
    page.wait_for_function("window.__busySeen.length > 0", timeout=10_000)
    assert "Grad-CAM" in page.evaluate("window.__busySeen[0]")
    page.wait_for_selector("#sample-detail-box:not(.cm-busy)", timeout=RENDER_TIMEOUT)
    assert "cm-thumb-selected" in clicked.get_attribute("class")
    page.mouse.move(5, 5)  # away from the grid: the pinned map stays
    pinned = f"{TILE}.cm-thumb-selected img.cm-thumb-cam"
    page.wait_for_function(LOADED, arg=pinned, timeout=RENDER_TIMEOUT)
    page.wait_for_function(f"getComputedStyle(document.querySelector('{pinned}')).opacity "
                           "=== '1'", timeout=10_000)
    page.wait_for_function(f"new URLSearchParams(location.search).get('image') === '{index}'",
                           timeout=10_000)
    assert "focal" in parse_qs(urlparse(page.url).query)
    # The clicked image's class comes first in the grid (the focal class).
    page.wait_for_function("document.querySelector('#samples-grid .cm-thumb-group')"
                           "?.classList.contains('cm-thumb-focal')", timeout=RENDER_TIMEOUT)
    page.wait_for_function(LOADED, arg=first_row, timeout=RENDER_TIMEOUT)
    page.screenshot(path=str(artifacts_dir / "e2e-thumbnails-samples.png"), full_page=True)


def test_classes_page_strips_of_images(dash_server, new_page, artifacts_dir, lenet_digits):
    page = wide_page(new_page)
    # node 18 is the root of the ten classes' tree: the whole tree is selected.
    page.goto(dash_server + "/?model=lenet-digits&focal=3&k=5&node=18")
    strips = "#classes-neighbour-thumbs .cm-thumb-strip"
    page.wait_for_selector(strips, timeout=JOB_TIMEOUT)
    assert page.locator(strips).count() == 6  # the focal class and its 5 nearest
    assert "(focal)" in page.inner_text(f"{strips} >> nth=0")
    page.wait_for_function(LOADED, arg="#classes-neighbour-thumbs img", timeout=RENDER_TIMEOUT)
    assert page.locator("#classes-neighbour-thumbs img").count() == 6 * 6
    page.wait_for_selector("#classes-selection-thumbs .cm-thumb-strip", timeout=RENDER_TIMEOUT)
    assert page.locator("#classes-selection-thumbs .cm-thumb-strip").count() == 10
    page.screenshot(path=str(artifacts_dir / "e2e-thumbnails-classes.png"), full_page=True)
    # A click on a neighbour's thumbnail makes its class the focal class.
    second = page.locator(f"{strips} >> nth=1").locator(".cm-thumb").first
    focal = second.get_attribute("data-focal")
    assert focal and focal != "3"
    second.click()
    page.wait_for_function(f"new URLSearchParams(location.search).get('focal') === '{focal}'",
                           timeout=RENDER_TIMEOUT)
