"""Uploading a head in a real browser (issue 11 item 6): the operator's form at /uploads,
then the uploaded model in the Model menu of another user's page, and its Classes page
drawn from exactly the uploaded weights."""

from __future__ import annotations

import numpy as np
import pytest
from safetensors.numpy import save_file

from classmap.app.config import Settings
from classmap.app.hosting.config import load_config
from classmap.app.server import create_app, serve_in_thread

pytestmark = [pytest.mark.e2e, pytest.mark.slow]

TIMEOUT = 60_000
NAMES = ["alpha", "beta", "gamma", "delta", "epsilon", "zeta"]


@pytest.fixture(scope="module")
def served(tmp_path_factory):
    """(base URL, folder) of a loopback instance with uploads on (no users: the local
    operator)."""
    folder = tmp_path_factory.mktemp("uploads-browser")
    (folder / "classmap.toml").write_text("[uploads]\nenabled = true\n")
    settings = Settings.create(cache_dir=folder / "cache", jobs_dir=folder / "jobs", environ={},
                               warm_default=False,
                               hosting=load_config(folder / "classmap.toml"))
    app = create_app(settings)
    app._classmap_jobs.start()
    thread = serve_in_thread(app, "127.0.0.1", 0)
    yield f"http://127.0.0.1:{thread._classmap_server.server_port}", folder, app
    thread._classmap_server.shutdown()


def test_an_operator_uploads_a_head_and_another_page_offers_and_draws_it(served, new_page):
    base, folder, app = served
    # Two planted groups of three classes: rows within a group nearly equal.
    rng = np.random.default_rng(0)
    centres = rng.normal(size=(2, 16))
    weight = np.repeat(centres, 3, axis=0) + 0.01 * rng.normal(size=(6, 16))
    head = folder / "planted.safetensors"
    save_file({"weight": weight.astype(np.float32)}, str(head))

    other = new_page()  # another user's page, opened before the upload
    other.goto(base + "/")
    other.wait_for_selector("#shell-model", timeout=TIMEOUT)

    page = new_page()
    page.goto(base + "/uploads")
    page.set_input_files("input[name=file]", str(head))
    page.fill("input[name=name]", "Planted six")
    page.fill("textarea[name=classes]", "\n".join(NAMES))
    page.click("button[type=submit]")
    page.wait_for_selector("text=Uploaded", timeout=TIMEOUT)
    model_id = page.get_attribute("text=Open it", "href").rsplit("=", 1)[1]
    # Analysed in the server's own Services before the page asks, so the page draws it
    # without a background job (their start-up under load is tested elsewhere).
    app._classmap_services.view((model_id, "cosine", "ward"))
    page.click("text=Open it")
    page.wait_for_url("**/?model=upload-*", timeout=TIMEOUT)
    page.wait_for_selector("#shell-model >> text=Planted six (uploaded)", timeout=TIMEOUT)
    page.wait_for_selector("#similarity-heatmap .main-svg", timeout=TIMEOUT)
    try:
        page.get_by_text("6 classes, every cell shown").wait_for(timeout=TIMEOUT)
    except Exception:  # noqa: BLE001 — fail with what the page says instead
        pytest.fail("the uploaded head was not drawn; the page says: "
                    + page.evaluate("document.body.innerText")[:1500])
    # Drawn from the uploaded rows: the tree's leaves, named as uploaded, keep the two
    # planted groups together.
    text = page.evaluate("document.body.innerText")
    section = text[text.index("Similarity and hierarchy"):].split()
    leaves = [word for word in section if word in NAMES][:6]
    assert sorted(leaves) == sorted(NAMES), leaves
    assert {frozenset(leaves[:3]), frozenset(leaves[3:])} == {frozenset(NAMES[:3]),
                                                              frozenset(NAMES[3:])}, leaves
    assert "could not be loaded" not in text

    # The page opened before the upload offers it after a navigation.
    other.reload()
    other.click("#shell-model")
    other.wait_for_selector("text=Planted six (uploaded)", timeout=TIMEOUT)


def test_the_header_links_to_uploads_and_a_deleted_head_leaves_the_model_menu(served,
                                                                              new_page):
    base, folder, app = served
    head = folder / "to-delete.safetensors"
    rng = np.random.default_rng(1)
    save_file({"weight": rng.normal(size=(4, 8)).astype(np.float32)}, str(head))

    page = new_page()
    page.goto(base + "/")
    link = page.locator("#shell-uploads-link")
    link.wait_for(state="visible", timeout=TIMEOUT)  # the local operator sees it
    link.click()
    page.wait_for_url("**/uploads", timeout=TIMEOUT)
    page.set_input_files("input[name=file]", str(head))
    page.fill("input[name=name]", "Short-lived head")
    page.click("button[type=submit]")
    page.wait_for_selector("text=Uploaded", timeout=TIMEOUT)

    other = new_page()  # another user's page offers it ...
    other.goto(base + "/")
    other.click("#shell-model")
    other.wait_for_selector("text=Short-lived head (uploaded)", timeout=TIMEOUT)

    page.goto(base + "/uploads")
    row = page.locator("li", has_text="Short-lived head")
    row.locator("button", has_text="Delete").click()  # a same-origin form post
    page.wait_for_url("**/uploads", timeout=TIMEOUT)
    page.wait_for_selector("h1:has-text('Upload a head')", timeout=TIMEOUT)
    assert page.locator("li", has_text="Short-lived head").count() == 0

    other.reload()  # ... and no longer after a navigation
    other.wait_for_selector("#shell-model", timeout=TIMEOUT)
    other.click("#shell-model")
    other.wait_for_timeout(1000)
    assert other.locator("text=Short-lived head (uploaded)").count() == 0
