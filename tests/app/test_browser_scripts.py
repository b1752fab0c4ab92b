"""Which scripts the pages load: plotly.js (partial or full), with or without Dash's polyfill."""

from __future__ import annotations

import os
import re
import shutil
from pathlib import Path

import pytest

from classmap.analysis.errors import ClassmapError
from classmap.app import browser_scripts as scripts
from classmap.app.config import Settings
from classmap.app.server import create_app

APP_DIR = Path(__file__).resolve().parents[2] / "app"


def write_bundle(path: Path, version: str, traces=scripts.PLOTLY_TRACES) -> Path:
    path.write_text(scripts.bundle_header(version, tuple(traces)) + "\nwindow.Plotly={};\n")
    return path


def test_the_bundle_is_chosen_only_when_installed_and_current(tmp_path):
    current = scripts.plotlyjs_version()
    good = write_bundle(tmp_path / "good.js", current)
    stale = write_bundle(tmp_path / "stale.js", "1.0.0")
    fewer = write_bundle(tmp_path / "fewer.js", current, ("scatter", "bar"))
    stock = tmp_path / "stock.js"
    stock.write_text(f"/**\n* plotly.js (cartesian - minified) v{current}\n*/\n")
    # built before the image-size change (its header does not name it): rebuilt, not used
    older = tmp_path / "older.js"
    older.write_text(f"/**\n* plotly.js v{current}, partial bundle for Classmap: traces "
                     f"{', '.join(scripts.PLOTLY_TRACES)}\n*/\nwindow.Plotly={{}};\n")
    missing = tmp_path / "missing.js"
    assert scripts.bundle_version(good) == current
    assert scripts.choose_bundle(None, good) == "partial"
    assert scripts.choose_bundle("partial", good) == "partial"
    assert scripts.choose_bundle("full", good) == "full"
    # stale, built for other traces, not ours, or missing: the full plotly.js, never a
    # mismatched one
    for path in (stale, fewer, stock, older, missing):
        assert scripts.choose_bundle(None, path) == "full", path.name
    assert scripts.choose_bundle("partial", missing) == "full"
    with pytest.raises(ClassmapError, match="unknown plotly bundle 'gl'.*partial, full"):
        scripts.choose_bundle("gl", good)


def test_settings_read_the_environment(tmp_path):
    full = Settings.create(cache_dir=tmp_path, environ={"CLASSMAP_PLOTLY_BUNDLE": "full"})
    assert full.plotly_bundle == "full" and full.webgl
    with pytest.raises(ClassmapError, match="unknown plotly bundle"):
        Settings.create(cache_dir=tmp_path, environ={"CLASSMAP_PLOTLY_BUNDLE": "tiny"})


def test_fetch_without_npm_names_the_fix(tmp_path):
    for script in scripts.VENDOR_SCRIPTS:
        with pytest.raises(RuntimeError, match="'no-such-npm' is not installed.*Node.js with npm"):
            scripts.fetch(script, tmp_path / "file.js", npm="no-such-npm")
        assert not (tmp_path / "file.js").exists()


def test_the_lockfile_pins_the_python_packages_plotlyjs_and_the_runtime():
    locked = scripts.locked_versions()
    assert locked["plotly.js"] == scripts.plotlyjs_version()
    assert locked["regenerator-runtime"] == scripts.RUNTIME_VERSION
    assert {"esbuild", "buffer"} <= set(locked)


def test_without_npm_the_install_completes_and_pages_get_dashs_stock_scripts(tmp_path, capsys):
    vendor = tmp_path / "vendor"
    status = scripts.main(["--optional", "--npm", "no-such-npm", "--vendor-dir", str(vendor)])
    assert status == 0
    assert "warning: vendored scripts not installed: 'no-such-npm' is not installed" in (
        capsys.readouterr().err)
    assert not any(vendor.glob("*.js"))
    assert scripts.main(["--check", "--vendor-dir", str(vendor)]) == 1
    # What the server then chooses, and what the page then loads: Dash's own scripts.
    bundle = scripts.choose_bundle(None, vendor / scripts.BUNDLE_PATH.name)
    polyfill = scripts.choose_polyfill(None, vendor / scripts.RUNTIME_PATH.name)
    assert (bundle, polyfill) == ("full", "keep")
    settings = Settings.create(cache_dir=tmp_path, warm_default=False, plotly_bundle=bundle,
                               babel_polyfill=polyfill)
    html = create_app(settings).server.test_client().get("/").get_data(as_text=True)
    assert "polyfill@" in html and "plotly-classmap.min.js" not in html
    assert "regenerator-runtime.js" not in html


@pytest.mark.skipif(os.environ.get("CI") != "true" or shutil.which("npm") is None,
                    reason="make install makes them in CI where npm exists")
def test_make_install_fetched_the_current_scripts():
    assert scripts.partial_available(), "run: .venv/bin/python -m classmap.app.browser_scripts"
    assert scripts.runtime_available(), "run: .venv/bin/python -m classmap.app.browser_scripts"


def test_the_polyfill_is_dropped_only_with_the_pinned_runtime(tmp_path):
    runtime = tmp_path / "runtime.js"
    assert scripts.choose_polyfill(None, runtime) == "keep"  # missing
    runtime.write_text("regeneratorRuntime = {};\n")  # not the pinned file
    assert not scripts.runtime_available(runtime)
    assert scripts.choose_polyfill("drop", runtime) == "keep"
    with pytest.raises(ClassmapError, match="unknown babel polyfill choice 'no'.*drop, keep"):
        scripts.choose_polyfill("no", runtime)
    assert scripts.choose_polyfill("keep", scripts.RUNTIME_PATH) == "keep"
    with pytest.raises(ClassmapError, match="unknown babel polyfill"):
        Settings.create(cache_dir=tmp_path, environ={"CLASSMAP_BABEL_POLYFILL": "maybe"})
    assert scripts.assets_ignore("partial", "drop") == ""
    ignored = re.compile(scripts.assets_ignore("full", "keep"))
    assert ignored.search("vendor/plotly-classmap.min.js")
    assert ignored.search("vendor/regenerator-runtime.js")
    assert not ignored.search("classmap.js")


def test_without_polyfill_removes_only_the_polyfill_tag():
    tags = ('<script src="/_dash-component-suites/dash/deps/polyfill@7.v4_4_1m1.12.1.min.js">'
               '</script>\n<script src="/_dash-component-suites/dash/deps/react@18.v4.min.js">'
               '</script>\n<script src="/assets/classmap.js"></script>')
    kept = scripts.without_polyfill(tags)
    assert "polyfill@" not in kept and kept.count("<script") == 2 and "react@18" in kept


@pytest.mark.skipif(not scripts.runtime_available(), reason="runtime not installed")
def test_the_page_drops_the_polyfill_when_the_runtime_is_installed(tmp_path):
    for choice, dropped in (("drop", True), ("keep", False)):
        settings = Settings.create(cache_dir=tmp_path, warm_default=False, babel_polyfill=choice)
        html = create_app(settings).server.test_client().get("/").get_data(as_text=True)
        assert ("polyfill@" not in html) is dropped, choice
        assert ("regenerator-runtime.js" in html) is dropped, choice
        # The runtime is loaded before dash-renderer, whose code needs it.
        if dropped:
            assert html.index("regenerator-runtime.js") < html.index("dash_renderer")


@pytest.mark.skipif(not scripts.partial_available(), reason="bundle not installed")
def test_the_page_loads_the_chosen_bundle(tmp_path):
    for choice, expected in (("partial", True), ("full", False)):
        settings = Settings.create(cache_dir=tmp_path, warm_default=False,
                                   plotly_bundle=choice)
        html = create_app(settings).server.test_client().get("/").get_data(as_text=True)
        assert ("plotly-classmap.min.js" in html) is expected, choice


@pytest.mark.skipif(not scripts.partial_available(), reason="bundle not installed")
def test_the_built_bundle_registers_exactly_its_traces(browser):
    """The installed bundle, run in Chromium's JavaScript engine, knows the five traces."""
    page = browser.new_page()
    try:
        page.add_script_tag(content=scripts.BUNDLE_PATH.read_text())
        registered = page.evaluate("Object.keys(Plotly.PlotSchema.get().traces).sort()")
        version = page.evaluate("Plotly.version")
    finally:
        page.close()
    assert registered == sorted(scripts.PLOTLY_TRACES)
    assert version == scripts.plotlyjs_version()


def _data_uri(kind: str, size: tuple[int, int], **options) -> str:
    import base64
    import io

    import numpy as np
    from PIL import Image

    pixels = np.random.default_rng(0).integers(0, 255, (size[1], size[0], 3), dtype=np.uint8)
    buffer = io.BytesIO()
    Image.fromarray(pixels).save(buffer, format=kind, **options)
    return f"data:image/{kind.lower()};base64," + base64.b64encode(buffer.getvalue()).decode()


@pytest.mark.skipif(not scripts.partial_available(), reason="bundle not installed")
def test_the_built_bundle_sizes_images_from_their_first_bytes_or_all_of_them(browser):
    """BUNDLE_BUILD: an image trace of a large PNG is sized from its header; a JPEG whose
    size comes after a 5 kB comment (past the bytes read first) is sized from all of it."""
    page = browser.new_page()
    try:
        page.set_content("<div id=g style='width:600px;height:500px'></div>")
        page.add_script_tag(content=scripts.BUNDLE_PATH.read_text())
        sizes = {}
        for name, uri, size in (
                ("png", _data_uri("PNG", (700, 300)), (700, 300)),
                ("late jpeg", _data_uri("JPEG", (90, 40), comment=b"x" * 5000), (90, 40))):
            # the PNG's data runs far past the 4,096 characters read first (HEAD in
            # assets/npm/image-size-from-head.js)
            assert len(uri) > 100_000 or name == "late jpeg"
            sizes[name] = (page.evaluate(
                """uri => Plotly.newPlot('g', [{type: 'image', source: uri}]).then((gd) => {
                     const trace = gd.calcdata[0][0]; return [trace.w, trace.h]; })""", uri),
                size)
    finally:
        page.close()
    for name, (found, expected) in sizes.items():
        assert tuple(found) == expected, name


def test_the_bundles_build_inputs_are_never_page_scripts(tmp_path):
    # assets/npm/*.js is CommonJS for esbuild: in the page it would fail on `require`
    assert list((scripts.ASSETS_DIR / "npm").glob("*.js"))
    settings = Settings.create(cache_dir=tmp_path / "cache", jobs_dir=tmp_path / "jobs",
                               environ={}, warm_default=False)
    html = create_app(settings).server.test_client().get("/").get_data(as_text=True)
    assert "classmap.js" in html and "/npm/" not in html


def test_stale_vendor_files_are_removed(tmp_path):
    (tmp_path / "plotly-cartesian.min.js").write_text("old")
    (tmp_path / scripts.RUNTIME_PATH.name).write_text("kept")
    removed = scripts.remove_stale_files(tmp_path)
    assert [path.name for path in removed] == ["plotly-cartesian.min.js"]
    assert [path.name for path in tmp_path.iterdir()] == [scripts.RUNTIME_PATH.name]


def test_figures_use_only_the_bundles_traces_or_guarded_webgl():
    """Every trace class the app builds is in the partial bundle; WebGL ones only behind
    the ``webgl`` flag (set when the full plotly.js is served)."""
    found = {}
    for path in APP_DIR.rglob("*.py"):
        for line in path.read_text().splitlines():
            for name in re.findall(r"\bgo\.([A-Z][A-Za-z]+)\(", line):
                found.setdefault(name.lower(), []).append((path.name, line.strip()))
    found.pop("figure", None)
    assert found, "no figure builders found"
    for trace, uses in found.items():
        if trace in scripts.PLOTLY_TRACES:
            continue
        assert trace == "scattergl", f"{trace} is not in the partial plotly.js bundle: {uses}"
        assert all("if webgl" in line for _, line in uses), uses


def test_compression_is_off_by_default_and_on_when_asked(tmp_path):
    assert not Settings.create(cache_dir=tmp_path, environ={}).compress
    with pytest.raises(ClassmapError, match="CLASSMAP_COMPRESS='maybe' is not on or off"):
        Settings.create(cache_dir=tmp_path, environ={"CLASSMAP_COMPRESS": "maybe"})
    for flag, on in (("1", True), ("0", False)):
        settings = Settings.create(cache_dir=tmp_path, warm_default=False,
                                   environ={"CLASSMAP_COMPRESS": flag})
        client = create_app(settings).server.test_client()
        response = client.get("/_dash-layout", headers={"Accept-Encoding": "gzip"})
        assert (response.headers.get("Content-Encoding") == "gzip") is on, flag
        if on:
            import gzip
            import json

            assert json.loads(gzip.decompress(response.get_data()))["type"] == "Div"
