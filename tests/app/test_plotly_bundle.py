"""Which plotly.js the pages load: the cartesian partial bundle, or the full one."""

from __future__ import annotations

import os
import re
from pathlib import Path

import pytest

from analysis.errors import ClassmapError
from app import plotly_bundle
from app.config import Settings
from app.server import create_app

APP_DIR = Path(__file__).resolve().parents[2] / "app"


def write_bundle(path: Path, version: str) -> Path:
    path.write_text(f"/**\n* plotly.js (cartesian - minified) v{version}\n*/\nwindow.Plotly={{}};\n")
    return path


def test_the_bundle_is_chosen_only_when_installed_and_current(tmp_path):
    current = plotly_bundle.plotlyjs_version()
    good = write_bundle(tmp_path / "good.js", current)
    stale = write_bundle(tmp_path / "stale.js", "1.0.0")
    missing = tmp_path / "missing.js"
    assert plotly_bundle.bundle_version(good) == current
    assert plotly_bundle.choose_bundle(None, good) == "cartesian"
    assert plotly_bundle.choose_bundle("cartesian", good) == "cartesian"
    assert plotly_bundle.choose_bundle("full", good) == "full"
    # a stale or missing file: the full plotly.js, never a mismatched one
    assert plotly_bundle.choose_bundle(None, stale) == "full"
    assert plotly_bundle.choose_bundle("cartesian", missing) == "full"
    with pytest.raises(ClassmapError, match="unknown plotly bundle 'gl'.*cartesian, full"):
        plotly_bundle.choose_bundle("gl", good)


def test_settings_read_the_environment(tmp_path):
    full = Settings.create(cache_dir=tmp_path, environ={"CLASSMAP_PLOTLY_BUNDLE": "full"})
    assert full.plotly_bundle == "full" and full.webgl
    with pytest.raises(ClassmapError, match="unknown plotly bundle"):
        Settings.create(cache_dir=tmp_path, environ={"CLASSMAP_PLOTLY_BUNDLE": "tiny"})


def test_fetch_without_npm_names_the_fix(tmp_path):
    with pytest.raises(RuntimeError, match="'no-such-npm' is not installed.*apt-get install npm"):
        plotly_bundle.fetch(tmp_path / "bundle.js", npm="no-such-npm")
    assert not (tmp_path / "bundle.js").exists()


@pytest.mark.skipif(os.environ.get("CI") != "true", reason="make install fetches it in CI")
def test_make_install_fetched_the_current_bundle():
    assert plotly_bundle.cartesian_available(), "run: .venv/bin/python -m app.plotly_bundle"


@pytest.mark.skipif(not plotly_bundle.cartesian_available(), reason="bundle not installed")
def test_the_page_loads_the_chosen_bundle(tmp_path):
    for choice, expected in (("cartesian", True), ("full", False)):
        settings = Settings.create(cache_dir=tmp_path, warm_default=False,
                                   plotly_bundle=choice)
        html = create_app(settings).server.test_client().get("/").get_data(as_text=True)
        assert ("plotly-cartesian.min.js" in html) is expected, choice


def test_figures_use_only_cartesian_traces_or_guarded_webgl():
    """Every trace class the app builds exists in the cartesian bundle; WebGL ones only
    behind the ``webgl`` flag (set when the full plotly.js is served)."""
    found = {}
    for path in APP_DIR.rglob("*.py"):
        for line in path.read_text().splitlines():
            for name in re.findall(r"\bgo\.([A-Z][A-Za-z]+)\(", line):
                found.setdefault(name.lower(), []).append((path.name, line.strip()))
    found.pop("figure", None)
    assert found, "no figure builders found"
    for trace, uses in found.items():
        if trace in plotly_bundle.CARTESIAN_TRACES:
            continue
        assert trace == "scattergl", f"{trace} is not in plotly.js's cartesian bundle: {uses}"
        assert all("if webgl" in line for _, line in uses), uses
