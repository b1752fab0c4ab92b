"""The built wheel, installed where the checkout cannot be imported, is the whole product:
``classmap export`` runs, and ``classmap serve`` started outside the checkout serves every
page — assets, vendored scripts and all — in Chromium with no console errors.

The wheel is built from the checkout's files that git does not ignore (plus the built ``assets/vendor/``) with the
test environment's setuptools, and installed without dependencies into a fresh virtual
environment whose only other path is the test environment's site-packages, added by a
``.pth`` line (so the dependencies are found, but not the checkout's editable finder:
``.pth`` files are read only in site directories, not in directories they add).
"""

from __future__ import annotations

import os
import shutil
import subprocess
import sys
import sysconfig
import zipfile
from pathlib import Path

import numpy as np
import pytest

from tests.e2e.conftest import ROOT, free_port, serve_until_done

pytestmark = [pytest.mark.e2e, pytest.mark.slow]

PAGES = ("/", "/weights", "/samples", "/clustering", "/confidence")
RENDER_TIMEOUT = 60_000


def _tracked_files() -> list[str]:
    """The checkout's files a fresh clone would have (and new ones not yet committed)."""
    done = subprocess.run(["git", "ls-files", "--cached", "--others", "--exclude-standard"],
                          cwd=ROOT, capture_output=True, text=True,
                          check=True)
    return done.stdout.split()


@pytest.fixture(scope="module")
def wheel(tmp_path_factory) -> Path:
    """``classmap-*.whl`` built from a copy of the checkout's tracked files."""
    source = tmp_path_factory.mktemp("source")
    for name in _tracked_files():
        if (ROOT / name).is_file():
            (source / name).parent.mkdir(parents=True, exist_ok=True)
            shutil.copy2(ROOT / name, source / name)
    if (ROOT / "assets" / "vendor").is_dir():  # built at install time, not tracked
        shutil.copytree(ROOT / "assets" / "vendor", source / "assets" / "vendor")
    out = tmp_path_factory.mktemp("dist")
    done = subprocess.run(
        [sys.executable, "-m", "pip", "wheel", "--no-deps", "--no-build-isolation",
         "--no-index", "--quiet", "--wheel-dir", str(out), str(source)],
        capture_output=True, text=True, timeout=300)
    assert done.returncode == 0, done.stdout + done.stderr
    (built,) = out.glob("classmap-*.whl")
    return built


@pytest.fixture(scope="module")
def installed(wheel, tmp_path_factory) -> Path:
    """A fresh venv holding only the wheel; its ``bin`` folder."""
    venv = tmp_path_factory.mktemp("venv")
    subprocess.run([sys.executable, "-m", "venv", "--without-pip", str(venv)], check=True,
                   timeout=120)
    python = venv / "bin" / "python"
    site = subprocess.run([str(python), "-c", "import sysconfig; print(sysconfig.get_paths()"
                           "['purelib'])"], capture_output=True, text=True, check=True).stdout
    Path(site.strip(), "classmap-test-deps.pth").write_text(
        sysconfig.get_paths()["purelib"] + "\n")
    done = subprocess.run(
        [sys.executable, "-m", "pip", "--python", str(python), "install", "--no-deps",
         "--no-index", "--quiet", str(wheel)], capture_output=True, text=True, timeout=300)
    assert done.returncode == 0, done.stdout + done.stderr
    return venv / "bin"


def test_the_wheel_claims_only_the_classmap_import_name(wheel):
    names = zipfile.ZipFile(wheel).namelist()
    top = {name.split("/")[0] for name in names if not name.split("/")[0].endswith(
        (".dist-info", ".data"))}
    assert top == {"classmap"}
    for needed in ("classmap/app/cli.py", "classmap/analysis/cli.py",
                   "classmap/assets/classmap.js", "classmap/assets/classmap.css"):
        assert needed in names, needed
    if (ROOT / "assets" / "vendor" / "plotly-classmap.min.js").exists():
        assert "classmap/assets/vendor/plotly-classmap.min.js" in names


def test_installed_wheel_imports_from_its_own_folder_not_the_checkout(installed, tmp_path):
    code = ("import classmap.app.server as s, classmap.analysis as a; "
            "print(s.__file__); print(s.ASSETS_DIR); print(a.__version__)")
    done = subprocess.run([str(installed / "python"), "-c", code], cwd=tmp_path,
                          capture_output=True, text=True, timeout=120, check=True)
    module, assets, version = done.stdout.split()
    venv = installed.parent.resolve()
    assert Path(module).resolve().is_relative_to(venv)
    assert Path(assets).resolve().is_relative_to(venv) and Path(assets, "classmap.css").is_file()
    for generic in ("app", "analysis"):  # the checkout's folder names are not importable
        probe = subprocess.run([str(installed / "python"), "-c", f"import {generic}"],
                               cwd=tmp_path, capture_output=True, text=True, timeout=60)
        assert probe.returncode != 0, generic
    version_line = subprocess.run([str(installed / "classmap"), "--version"], cwd=tmp_path,
                                  capture_output=True, text=True, timeout=120, check=True)
    assert version_line.stdout.strip() == f"classmap {version}"


def test_installed_wheel_exports(installed, tmp_path):
    head = tmp_path / "head.npy"
    np.save(head, np.random.default_rng(0).normal(size=(12, 8)).astype(np.float32))
    out = tmp_path / "out"
    done = subprocess.run(
        [str(installed / "classmap"), "export", "--head", str(head), "--out", str(out),
         "--quiet", "--cache-dir", str(tmp_path / "cache")],
        cwd=tmp_path, capture_output=True, text=True, timeout=300,
        env={**os.environ, "HF_HUB_OFFLINE": "1"})
    assert done.returncode == 0, done.stderr
    assert {"classes.csv", "neighbours.csv", "tree.nwk", "manifest.json"} <= {
        path.name for path in out.iterdir()}


@pytest.fixture(scope="module")
def wheel_server(installed, tmp_path_factory, artifacts_dir):
    """``classmap serve`` from the installed wheel, started outside the checkout."""
    folder = tmp_path_factory.mktemp("wheel-serve")
    port = free_port()
    env = {**os.environ, "HF_HUB_OFFLINE": "1", "CLASSMAP_JOBS_DIR": str(folder / "jobs")}
    command = [str(installed / "classmap"), "serve", "--host", "127.0.0.1", "--port", str(port),
               "--cache-dir", str(folder / "cache")]
    yield from serve_until_done(command, folder, env, artifacts_dir / "wheel-server.log", port)


@pytest.mark.parametrize("path", PAGES)
def test_installed_wheel_serves_every_page(wheel_server, new_page, path, artifacts_dir):
    page = new_page()
    failed: list[str] = []
    page.on("response", lambda response: failed.append(f"{response.status} {response.url}")
            if response.status >= 400 else None)
    page.goto(wheel_server + path)
    # The page frame and the shell's stylesheet and script from the wheel's assets.
    page.wait_for_selector(".js-plotly-plot .main-svg", timeout=RENDER_TIMEOUT)
    stylesheets = page.evaluate("[...document.styleSheets].map(s => s.href || '')")
    assert any("/assets/classmap.css" in href for href in stylesheets), stylesheets
    scripts = page.evaluate("[...document.scripts].map(s => s.src)")
    assert any("/assets/classmap.js" in src for src in scripts), scripts
    if (ROOT / "assets" / "vendor" / "plotly-classmap.min.js").exists():
        assert any("/assets/vendor/plotly-classmap.min.js" in src for src in scripts), scripts
    page.wait_for_load_state("networkidle", timeout=RENDER_TIMEOUT)
    name = path.strip("/") or "classes"
    page.screenshot(path=str(artifacts_dir / f"wheel-{name}.png"))
    assert not failed, failed
