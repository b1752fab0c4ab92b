"""Clientside callbacks: named functions of assets/classmap.js, constants in the page."""

from __future__ import annotations

import json
import re
from pathlib import Path

from classmap.app.config import Settings
from classmap.app.server import create_app
from classmap.app.shell.clientside import CONFIG_ELEMENT, NAMESPACE, browser_config
from classmap.app.shell.selection import FIELDS

ASSET = Path(__file__).resolve().parents[3] / "assets" / "classmap.js"


def build_app(tmp_path):
    settings = Settings.create(cache_dir=tmp_path / "cache", jobs_dir=tmp_path / "jobs",
                               environ={}, warm_default=False)
    return create_app(settings)


def test_every_clientside_callback_names_a_function_of_the_assets(tmp_path):
    app = build_app(tmp_path)
    source = ASSET.read_text(encoding="utf-8")
    defined = set(re.findall(r"^    (\w+): function", source, re.M))
    specs = [cb["clientside_function"] for cb in app._callback_list
             if cb.get("clientside_function")]
    assert len(specs) >= 20, "the clientside callbacks are missing"
    assert all(spec["namespace"] == NAMESPACE for spec in specs)
    functions = {spec["function_name"] for spec in specs}
    assert functions <= defined, sorted(functions - defined)


def test_the_page_carries_the_schema_and_constants(tmp_path):
    app = build_app(tmp_path)
    html = app.server.test_client().get("/weights?focal=x").get_data(as_text=True)
    match = re.search(rf'<script type="application/json" id="{CONFIG_ELEMENT}">(.*?)</script>',
                      html, re.S)
    assert match, "the page has no browser config"
    config = json.loads(match.group(1))
    assert config == json.loads(json.dumps(browser_config(app)))
    assert config["selection"]["order"] == list(FIELDS)
    # the Classes page's picker and the image pages' representation picker are bound
    assert config["callbacks"]["focal-class.value|focal-class.value"] == {"field": "focal",
                                                                          "picker": True}
    assert config["callbacks"]["images-representation.value|images-representation.value"][
        "field"] == "rep"
    assert html.index(CONFIG_ELEMENT) < html.index("classmap.js")
