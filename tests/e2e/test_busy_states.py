"""Busy states (issue 14, defect 6 and "busy states everywhere"), in a real browser: while
the channel CAM of a newly selected split node is computed (seconds on a CPU), the card
shows a spinner saying what is computed and hides the previous node's map; the new map
then replaces it. The server gets a small image folder (``--data``) for the CAM."""

from __future__ import annotations

import os
import sys

import numpy as np
import pytest

from tests.e2e.conftest import ROOT, free_port, serve_until_done
from tests.e2e.test_weights_page import ICICLE, ICICLE_NODE, click_at

pytestmark = [pytest.mark.e2e, pytest.mark.slow]

RENDER_TIMEOUT = 120_000
KING_CRAB = "n01981276"
CAM_IMAGE = "#weights-cam-view img"


@pytest.fixture(scope="module")
def cam_server(session_cache, tmp_path_factory, artifacts_dir, browser):
    """``classmap serve`` with a two-class folder of small photos-like images."""
    from PIL import Image

    folder = tmp_path_factory.mktemp("cam-data")
    rng = np.random.default_rng(6)
    for name in (KING_CRAB, "n01978287"):
        (folder / "photos" / name).mkdir(parents=True)
        for k in range(2):
            pixels = rng.integers(0, 255, size=(96, 96, 3), dtype=np.uint8)
            Image.fromarray(pixels).save(folder / "photos" / name / f"{k}.png")
    port = free_port()
    env = {**os.environ, "HF_HUB_OFFLINE": "1", "CLASSMAP_JOBS_DIR": str(folder / "jobs")}
    command = [sys.executable, "-m", "classmap.app.cli", "serve", "--host", "127.0.0.1",
               "--port", str(port), "--cache-dir", str(session_cache.directory),
               "--data", str(folder / "photos")]
    yield from serve_until_done(command, ROOT, env, artifacts_dir / "e2e-cam-server.log", port)


def test_channel_cam_shows_busy_and_hides_the_previous_map(cam_server, new_page,
                                                            artifacts_dir):
    page = new_page()
    page.set_viewport_size({"width": 1280, "height": 800})
    # The CAM uses the folder as the image job read it (never read in a request): the
    # Samples page opens on the --data folder and its job reads it.
    page.goto(cam_server + "/samples")
    page.wait_for_selector("#samples-graph .scatterlayer .trace .point", timeout=RENDER_TIMEOUT)
    page.goto(cam_server + f"/weights?focal={KING_CRAB}")
    page.wait_for_selector(CAM_IMAGE, timeout=RENDER_TIMEOUT)
    assert "cm-busy" not in page.get_attribute("#weights-cam-box", "class").split()
    page.wait_for_function(f"{ICICLE}?._fullData?.[0]?.customdata?.length > 1",
                           timeout=RENDER_TIMEOUT)
    page.wait_for_timeout(500)
    # Record what the card shows whenever it turns busy (it may be busy only briefly).
    page.evaluate("""() => {
      const box = document.getElementById('weights-cam-box');
      window.__busySeen = [];
      new MutationObserver(() => {
        if (!box.classList.contains('cm-busy')) { return; }
        const shown = e => !!(e && e.offsetParent !== null);
        window.__busySeen.push({
          note: shown(document.getElementById('weights-cam-busy')) &&
                document.getElementById('weights-cam-busy').innerText,
          oldMap: Array.from(box.querySelectorAll('img')).some(shown)});
      }).observe(box, {attributes: true, attributeFilter: ['class']});
    }""")
    node = page.evaluate(ICICLE_NODE, "+")
    click_at(page, node["x"], node["y"])
    page.wait_for_function("window.__busySeen.length > 0", timeout=10_000)
    seen = page.evaluate("window.__busySeen")[0]
    assert "Computing the channel CAM" in seen["note"], seen
    assert not seen["oldMap"], seen  # the previous node's map is hidden at once
    # Then the new map, and no spinner.
    page.wait_for_selector("#weights-cam-box:not(.cm-busy)", timeout=RENDER_TIMEOUT)
    assert page.locator(CAM_IMAGE).first.is_visible()
    assert not page.is_visible("#weights-cam-busy")
    assert "node +" in page.inner_text("#weights-cam-title")
