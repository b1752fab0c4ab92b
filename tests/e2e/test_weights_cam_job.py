"""The channel CAM's background job in a real browser (issue 15): the Weights page opened
straight on a server whose image folder nothing has read — no Samples page first — reads
it in a background job and draws the CAM; a node's CAM can be cancelled from its progress
bar. The server gets a small two-class folder (``--data``)."""

from __future__ import annotations

import os
import sys

import numpy as np
import pytest

from tests.e2e.conftest import ROOT, free_port, serve_until_done
from tests.e2e.test_weights_page import ICICLE, ICICLE_NODE, click_at

pytestmark = [pytest.mark.e2e, pytest.mark.slow]

TIMEOUT = 180_000  # the first visit analyses lite0 and loads it in each job (a loaded CI)
KING_CRAB = "n01981276"
CAM_IMAGE = "#weights-cam-view img"


@pytest.fixture(scope="module")
def fresh_folder_server(session_cache, tmp_path_factory, artifacts_dir, browser):
    from PIL import Image

    folder = tmp_path_factory.mktemp("cam-job-data")
    rng = np.random.default_rng(15)
    for name in (KING_CRAB, "n01978287"):
        (folder / "crabs" / name).mkdir(parents=True)
        for k in range(2):
            pixels = rng.integers(0, 255, size=(96, 96, 3), dtype=np.uint8)
            Image.fromarray(pixels).save(folder / "crabs" / name / f"{k}.png")
    port = free_port()
    env = {**os.environ, "HF_HUB_OFFLINE": "1", "CLASSMAP_JOBS_DIR": str(folder / "jobs")}
    command = [sys.executable, "-m", "classmap.app.cli", "serve", "--host", "127.0.0.1",
               "--port", str(port), "--cache-dir", str(session_cache.directory),
               "--data", str(folder / "crabs")]
    yield from serve_until_done(command, ROOT, env, artifacts_dir / "e2e-cam-job-server.log",
                                port)


def test_the_cam_of_a_folder_nothing_has_read_is_drawn_by_its_jobs(fresh_folder_server,
                                                                   new_page, artifacts_dir):
    page = new_page()
    page.set_viewport_size({"width": 1280, "height": 800})
    page.goto(fresh_folder_server + f"/weights?focal={KING_CRAB}")
    # The folder is read by a job, the picker then offers its images, a job draws the CAM.
    page.wait_for_selector(CAM_IMAGE, timeout=TIMEOUT)
    title = page.inner_text("#weights-cam-title")
    assert title.startswith("Smooth Grad-CAM++ of ") and "all 1280 channels" in title, title
    assert "Samples page" not in page.inner_text("#weights-cam-box")
    assert page.is_hidden("#weights-cam-progress-panel")
    assert page.is_hidden("#weights-cam-failure")
    page.screenshot(path=str(artifacts_dir / "e2e-cam-job.png"), full_page=True)

    # A node's CAM runs as a job with a progress bar whose Cancel stops it.
    page.wait_for_function(f"{ICICLE}?._fullData?.[0]?.customdata?.length > 1",
                           timeout=TIMEOUT)
    node = page.evaluate(ICICLE_NODE, "+")
    click_at(page, node["x"], node["y"])
    page.wait_for_selector("#weights-cam-progress-panel:not([hidden])", timeout=60_000)
    page.click("#weights-cam-cancel")
    page.wait_for_function("document.getElementById('weights-cam-title')?.innerText"
                           ".startsWith('The channel CAM was cancelled')", timeout=60_000)
    page.wait_for_selector("#weights-cam-progress-panel", state="hidden", timeout=60_000)
    assert page.is_hidden("#weights-cam-failure")  # cancelled, not reported as dead
