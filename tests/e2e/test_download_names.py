"""Server and browser name a download alike (issue 14, defect 2): the real assets/classmap.js
runs in Chromium (downloadName) on the same selections as widgets.download_name —
split-node sign paths ("+", "-", "+-") included, which must give distinct names."""

from __future__ import annotations

import json
from pathlib import Path

import pytest

import classmap.app.pages.weights.services  # noqa: F401 — registers split/minsize/snode
from classmap.app.shell.clientside import CONFIG_ELEMENT
from classmap.app.shell.selection import default_selection, selection_schema, update_selection
from classmap.app.shell.widgets import download_name

pytestmark = pytest.mark.e2e

ASSETS = Path(__file__).resolve().parents[2] / "assets"
GRAPHS = {"weights-icicle-graph": ("weights-icicle", ("focal", "split", "minsize", "snode")),
          "class-map-graph": ("class-map", ("metric", "cut", "node", "classes"))}


@pytest.fixture(scope="module")
def browser_name(browser):
    """``name(graph id, selection)`` by the real assets/classmap.js's downloadName."""
    page = browser.new_page()
    errors: list[str] = []
    page.on("pageerror", lambda error: errors.append(str(error)))
    downloads = {graph: {"view": view, "fields": list(fields)}
                 for graph, (view, fields) in GRAPHS.items()}
    config = json.dumps({"selection": selection_schema(), "callbacks": {},
                         "downloads": downloads}).replace("</", "<\\/")
    page.set_content(f'<script type="application/json" id="{CONFIG_ELEMENT}">{config}</script>')
    page.add_script_tag(path=str(ASSETS / "classmap.js"))
    assert not errors, errors

    def name(graph: str, selection: dict) -> str:
        return page.evaluate("([g, s]) => window.classmap.downloadName(g, s)", [graph, selection])

    yield name
    page.close()


def test_sign_paths_get_the_same_distinct_names_in_the_browser(browser_name):
    base = update_selection(default_selection("lenet-digits"), focal="3", split="full")
    names = {}
    for path in ("all", "+", "-", "+-", "-+", "++-", "+-+-+"):
        selection = update_selection(base, snode=path)
        view, fields = GRAPHS["weights-icicle-graph"]
        server = download_name(view, selection, fields)
        assert browser_name("weights-icicle-graph", selection) == server
        names[path] = server
    assert names["+-"] == "classmap-lenet-digits-weights-icicle-focal-3-split-full-snode-pm"
    assert len(set(names.values())) == len(names)


def test_other_fields_get_the_same_names_in_the_browser(browser_name):
    selections = [update_selection(default_selection("my model/ü&x"), metric="euclidean",
                                   cut=4, node=1990),
                  update_selection(default_selection("lite0-imagenet"), classes=[3, 4, 9])]
    view, fields = GRAPHS["class-map-graph"]
    for selection in selections:
        assert browser_name("class-map-graph", selection) == download_name(view, selection, fields)
