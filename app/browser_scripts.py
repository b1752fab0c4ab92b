"""Which scripts the browser gets, and the install step that makes the lighter ones.

Every dashboard page evaluates its JavaScript before it draws anything, and on the
2-core build machine that evaluation is most of a first render. Two stock pieces cost
more than they need to:

- **plotly.js.** The full bundle that ships with the ``plotly`` Python package is
  4.8 MB; even plotly.js's own *cartesian* partial bundle (1.5 MB, twelve trace types
  and the world-calendars data) took ≈ 0.5 s of main-thread time to evaluate here.
  Classmap draws five trace types (:data:`PLOTLY_TRACES`: scatter, bar, heatmap,
  histogram, image), so the install step builds a *partial bundle of exactly those*
  from plotly.js's sources, as plotly.js documents for custom bundles (its
  ``lib/core`` plus one ``lib/<trace>`` module each, bundled and minified with esbuild):
  1.26 MB, ≈ 0.17 s to evaluate. WebGL scatter (``scattergl``) is used above a few
  thousand points only when the full bundle is served.
- **Dash's babel polyfill** (``@babel/polyfill`` 7: core-js 2 plus the regenerator
  runtime). core-js 2 judges V8's own ``String.prototype.trim`` non-compliant (U+180E
  stopped being whitespace in Unicode 6.3) and replaces it, and with it ``parseInt`` and
  ``parseFloat``, by slower JavaScript versions; plotly.js parses every point's colour
  through them. Current browsers need none of core-js; dash-renderer and
  dash-core-components need only the global ``regeneratorRuntime``. With the
  standalone ``regenerator-runtime`` installed, the page leaves the polyfill out and
  loads that instead.

Neither is part of a Python package. ``python -m classmap.app.browser_scripts`` (run by
``make install``, before ``python -m build``, and in the Dockerfile) makes them into
``assets/vendor/`` (git-ignored) from the npm packages pinned in ``assets/npm/``'s
committed ``package-lock.json``, installed with ``npm ci`` (integrity-checked, no
install scripts): the plotly.js bundle from ``plotly.js`` at the *same version* as the
full bundle of the pinned ``plotly`` Python package (a test checks the lockfile; the
bundle's header names the version and the traces, so a changed version or trace list
is rebuilt), and ``regenerator-runtime``, whose file is checked by its SHA-256. To move
plotly.js on: ``npm install --package-lock-only plotly.js@X`` in ``assets/npm``. Dash serves every script in
``assets/`` on every page, before dash-renderer: ``window.Plotly`` then exists before
the first graph mounts and dash-core-components uses it instead of loading its own.
``benchmarks/bench_dashboard.py`` measures the page with and without them.

Without a file (no npm at install time), or with ``CLASSMAP_PLOTLY_BUNDLE=full`` /
``CLASSMAP_BABEL_POLYFILL=keep``, the page gets Dash's stock script instead: slower
first render, same page.
"""

from __future__ import annotations

import argparse
import hashlib
import json
import os
import re
import shutil
import subprocess
import sys
import tempfile
from dataclasses import dataclass
from pathlib import Path
from typing import Callable

ASSETS_DIR = Path(__file__).resolve().parent.parent / "assets"
VENDOR_DIR = ASSETS_DIR / "vendor"
BUNDLE_PATH = VENDOR_DIR / "plotly-classmap.min.js"
RUNTIME_PATH = VENDOR_DIR / "regenerator-runtime.js"
# Regexes for Dash's ``assets_ignore``: leave a vendored script out of the page.
BUNDLE_IGNORE = r"plotly-classmap\.min\.js$"
RUNTIME_IGNORE = r"regenerator-runtime\.js$"
# Dash's ``assets_path_ignore``: folders of assets/ whose scripts are never page scripts —
# npm/ holds what builds the vendored ones (a CommonJS module there would run in the page
# and fail on ``require``).
ASSETS_PATH_IGNORE = [r"^npm$"]
# Dash's babel polyfill in the page's script tags (dash/_dash_renderer.py: polyfill@7.x).
POLYFILL_TAG = re.compile(r'<script src="[^"]*/polyfill@[^"]*"></script>\s*')
CHOICES = ("partial", "full")
POLYFILL_CHOICES = ("drop", "keep")
# Trace types the partial bundle holds: every type Classmap's figures use (a test reads
# app/ for them). scatter is part of plotly.js's core.
PLOTLY_TRACES = ("scatter", "bar", "heatmap", "histogram", "image")
# The npm packages that build them, pinned by a committed lockfile (``npm ci``):
# plotly.js (the Python plotly package's version), esbuild, buffer (plotly.js's image
# trace requires "buffer/") and regenerator-runtime.
NPM_DIR = ASSETS_DIR / "npm"
LOCKFILE = NPM_DIR / "package-lock.json"
HEADER = re.compile(r"plotly\.js v(?P<version>[^,\s]+), partial bundle for Classmap: "
                    r"traces (?P<traces>[a-z, ]+); (?P<build>[^\n*]+)")
# What the bundle changes in plotly.js, named in its header (an older bundle is rebuilt):
# the image trace reads an image's size from the first bytes of its data URI instead of
# decoding all of it (plotly.js decodes the whole base64 string in JavaScript on every
# draw: ≈ 40 % of redrawing the Classes page's 1,000 × 1,000 heatmap).
BUNDLE_BUILD = "image size read from the data URI's first bytes"
IMAGE_SIZE_MODULE = NPM_DIR / "image-size-from-head.js"  # the entry requires it first

RUNTIME_VERSION = "0.14.1"
RUNTIME_SHA256 = "7beda998b3fd277f3548e12b277bafc3037d243421f007032d38dffee412224c"


def plotlyjs_version() -> str:
    """Version of the full plotly.js bundled with the installed ``plotly`` package."""
    from plotly.offline import get_plotlyjs_version

    return get_plotlyjs_version()


def bundle_header(version: str, traces: tuple[str, ...] = PLOTLY_TRACES) -> str:
    """The comment that opens the partial bundle: plotly.js version and trace list."""
    return (f"/**\n* plotly.js v{version}, partial bundle for Classmap: traces "
            f"{', '.join(traces)}; {BUNDLE_BUILD}\n*/")


def bundle_version(path: Path = BUNDLE_PATH) -> str | None:
    """The plotly.js version named in the partial bundle's header, or None if absent,
    unreadable, or built for other traces than :data:`PLOTLY_TRACES` or without
    :data:`BUNDLE_BUILD`'s change."""
    try:
        with path.open("r", encoding="utf-8", errors="replace") as handle:
            head = handle.read(400)
    except OSError:
        return None
    match = HEADER.search(head)
    if match is None or tuple(t.strip() for t in match["traces"].split(",")) != PLOTLY_TRACES \
            or match["build"].strip() != BUNDLE_BUILD:
        return None
    return match["version"]


def partial_available(path: Path = BUNDLE_PATH) -> bool:
    """True when the partial bundle is built for the Python package's plotly.js version."""
    return bundle_version(path) == plotlyjs_version()


def runtime_available(path: Path = RUNTIME_PATH) -> bool:
    """True when the pinned regenerator-runtime is installed, byte for byte."""
    try:
        return hashlib.sha256(path.read_bytes()).hexdigest() == RUNTIME_SHA256
    except OSError:
        return False


def choose_bundle(requested: str | None, path: Path = BUNDLE_PATH) -> str:
    """``partial`` or ``full``: what the server will send for ``requested`` (None = default).

    The default is ``partial`` when the file is built and current, else ``full``.
    """
    if requested not in (None, "", *CHOICES):
        from classmap.analysis.errors import ClassmapError

        raise ClassmapError(f"unknown plotly bundle {requested!r}; use one of {', '.join(CHOICES)}")
    if requested == "full":
        return "full"
    return "partial" if partial_available(path) else "full"


def choose_polyfill(requested: str | None, path: Path = RUNTIME_PATH) -> str:
    """``drop`` or ``keep``: whether pages leave Dash's babel polyfill out (None = default).

    The default drops it when the standalone regenerator runtime is installed.
    """
    if requested not in (None, "", *POLYFILL_CHOICES):
        from classmap.analysis.errors import ClassmapError

        raise ClassmapError(f"unknown babel polyfill choice {requested!r}; use one of "
                            f"{', '.join(POLYFILL_CHOICES)}")
    if requested == "keep":
        return "keep"
    return "drop" if runtime_available(path) else "keep"


def assets_ignore(plotly_bundle: str, polyfill: str) -> str:
    """Dash's ``assets_ignore`` regex for these choices ("" ignores nothing)."""
    ignored = [BUNDLE_IGNORE] if plotly_bundle == "full" else []
    if polyfill == "keep":
        ignored.append(RUNTIME_IGNORE)
    return "|".join(ignored)


def without_polyfill(scripts: str) -> str:
    """The page's ``<script>`` tags (Dash's ``interpolate_index`` input) minus the polyfill."""
    return POLYFILL_TAG.sub("", scripts)


def _npm(npm: str, args: list[str], cwd: str, what: str, timeout: int = 600) -> None:
    """Run ``npm args`` in ``cwd``; RuntimeError with npm's last line when it fails."""
    if shutil.which(npm) is None:
        raise RuntimeError(f"{npm!r} is not installed; install Node.js with npm "
                           f"and run python -m classmap.app.browser_scripts")
    done = subprocess.run([npm, *args], capture_output=True, text=True, timeout=timeout,
                          cwd=cwd)
    if done.returncode != 0:
        reason = (done.stderr or done.stdout).strip().splitlines()
        raise RuntimeError(f"{what} failed: {reason[-1] if reason else 'no output'}")


def locked_versions(lockfile: Path = LOCKFILE) -> dict[str, str]:
    """``{package: version}`` of the direct dependencies pinned in ``assets/npm``'s lockfile."""
    packages = json.loads(lockfile.read_text(encoding="utf-8"))["packages"]
    direct = packages[""]["dependencies"]
    return {name: packages[f"node_modules/{name}"]["version"] for name in direct}


def install_locked_packages(work: str, npm: str) -> Path:
    """``npm ci`` of ``assets/npm`` (package.json + package-lock.json) in ``work``.

    Returns the ``node_modules`` folder. Every package is the lockfile's, checked
    against its integrity hash by npm; no install script runs.
    """
    for name in ("package.json", LOCKFILE.name):
        shutil.copyfile(NPM_DIR / name, Path(work, name))
    _npm(npm, ["ci", "--ignore-scripts", "--no-audit", "--no-fund", "--silent"],
         work, f"npm ci (packages locked in {NPM_DIR.name}/{LOCKFILE.name})")
    return Path(work, "node_modules")


def build_partial_bundle(staged: Path, node_modules: Path) -> None:
    """Build plotly.js's partial bundle of :data:`PLOTLY_TRACES` into ``staged``.

    esbuild bundles an entry that registers the traces with plotly.js's core — the
    recipe of plotly.js's CUSTOM_BUNDLE.md, without cloning it — after giving the image
    trace a getImageSize that reads the data URI's first bytes only (:data:`BUNDLE_BUILD`).
    The plotly.js it bundles is the lockfile's, which must be the Python package's
    plotly.js.
    """
    version = locked_versions()["plotly.js"]
    if version != plotlyjs_version():
        raise RuntimeError(f"{NPM_DIR.name}/{LOCKFILE.name} pins plotly.js {version} but the "
                           f"plotly package bundles {plotlyjs_version()}; in {NPM_DIR} run "
                           f"npm install --package-lock-only plotly.js@{plotlyjs_version()}")
    work = node_modules.parent
    modules = ",\n    ".join(f"require('plotly.js/lib/{trace}')" for trace in PLOTLY_TRACES
                              if trace != "scatter")
    # The image helpers' patch first: the image trace's calc module takes getImageSize
    # from them when it loads (BUNDLE_BUILD).
    shutil.copyfile(IMAGE_SIZE_MODULE, Path(work, IMAGE_SIZE_MODULE.name))
    Path(work, "entry.js").write_text(
        f"require('./{IMAGE_SIZE_MODULE.name}');\n"
        f"var Plotly = require('plotly.js/lib/core');\nPlotly.register([\n    {modules}\n]);\n"
        "module.exports = Plotly;\n")
    # The settings of plotly.js's own build (esbuild-config.js) that these traces need;
    # CSS is imported only by map traces.
    esbuild = node_modules / ".bin" / "esbuild"
    done = subprocess.run(
        [str(esbuild), "entry.js", "--bundle", "--minify", "--format=iife",
         "--global-name=Plotly", "--target=es2016", "--define:global=window",
         "--define:define.amd=false", "--define:process.env.NODE_DEBUG=false",
         "--loader:.css=empty", "--legal-comments=none", "--log-level=error",
         f"--banner:js={bundle_header(version)}", f"--outfile={staged}"],
        capture_output=True, text=True, timeout=300, cwd=work)
    if done.returncode != 0:
        reason = (done.stderr or done.stdout).strip().splitlines()
        raise RuntimeError(f"esbuild (plotly.js partial bundle) failed: "
                           f"{reason[0] if reason else 'no output'}")


def copy_installed_file(member: str) -> Callable[[Path, Path], None]:
    """A maker that copies ``node_modules/<member>`` to ``staged``."""

    def make(staged: Path, node_modules: Path) -> None:
        shutil.copyfile(node_modules / member, staged)

    return make


@dataclass(frozen=True)
class VendorScript:
    """One file made from the locked npm packages into ``assets/vendor/``."""

    label: str
    path: Path
    version: Callable[[], str]
    installed: Callable[[Path], bool]
    make: Callable[[Path, Path], None]  # (staged file, node_modules folder)
    fallback: str  # what the page does without it


VENDOR_SCRIPTS = (
    VendorScript("plotly.js partial bundle", BUNDLE_PATH, plotlyjs_version, partial_available,
                 build_partial_bundle, "the dashboard sends the full plotly.js"),
    VendorScript("regenerator runtime", RUNTIME_PATH, lambda: RUNTIME_VERSION, runtime_available,
                 copy_installed_file("regenerator-runtime/runtime.js"),
                 "the dashboard sends Dash's babel polyfill"),
)


def fetch(script: VendorScript = VENDOR_SCRIPTS[0], path: Path | None = None,
          npm: str = "npm", node_modules: Path | None = None) -> Path:
    """Make ``script`` from the locked npm packages and install its file at ``path``.

    ``node_modules``: an ``npm ci`` already done (:func:`install_locked_packages`);
    None runs one in a temporary folder. The file is checked (the plotly.js bundle: its
    header names the version and the traces; the runtime: its SHA-256) and moved into
    place atomically, so an interrupted run leaves either the old file or none. Raises
    RuntimeError naming the problem.
    """
    path = path or script.path
    if node_modules is None:
        with tempfile.TemporaryDirectory(prefix="classmap-vendor-") as work:
            return fetch(script, path, npm, install_locked_packages(work, npm))
    path.parent.mkdir(parents=True, exist_ok=True)
    staged = path.with_name(path.name + ".part")
    try:
        script.make(staged, node_modules)
        if not script.installed(staged):
            raise RuntimeError(f"the {script.label} made from the lockfile is not the expected "
                               f"v{script.version()}")
        os.replace(staged, path)
    finally:
        staged.unlink(missing_ok=True)
    return path


def remove_stale_files(folder: Path = VENDOR_DIR) -> list[Path]:
    """Delete files in ``folder`` that no current vendored script owns (Dash would serve
    every ``.js`` left there on every page, such as an earlier plotly.js bundle)."""
    wanted = {script.path.name for script in VENDOR_SCRIPTS}
    removed = [path for path in sorted(folder.glob("*"))
               if path.is_file() and path.name not in wanted]
    for path in removed:
        path.unlink()
    return removed


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description="Install the dashboard's vendored scripts "
                                                 "into assets/vendor/ (see app/browser_scripts.py).")
    parser.add_argument("--check", action="store_true",
                        help="only report whether the installed files are current")
    parser.add_argument("--optional", action="store_true",
                        help="warn instead of failing when one cannot be made")
    parser.add_argument("--npm", default="npm", help="the npm to run (default: npm on PATH)")
    parser.add_argument("--vendor-dir", type=Path, default=VENDOR_DIR,
                        help="where to install them (default: assets/vendor)")
    options = parser.parse_args(argv)
    folder: Path = options.vendor_dir
    wanted = [(script, folder / script.path.name) for script in VENDOR_SCRIPTS]
    missing = []
    for script, path in wanted:
        name = f"{script.label} v{script.version()}"
        if script.installed(path):
            print(f"{name}: installed ({path})")
        else:
            missing.append((script, path))
            if options.check:
                print(f"{name}: missing; run python -m classmap.app.browser_scripts")
    if options.check:
        return 1 if missing else 0
    if folder.is_dir():
        remove_stale_files(folder)
    if not missing:
        return 0
    print(f"making {', '.join(script.label for script, _ in missing)} from {NPM_DIR.name}/"
          f"{LOCKFILE.name} with npm ci (about half a minute)…", flush=True)
    try:
        with tempfile.TemporaryDirectory(prefix="classmap-vendor-") as work:
            node_modules = install_locked_packages(work, options.npm)
            for script, path in missing:
                fetch(script, path, options.npm, node_modules)
                print(f"{script.label} v{script.version()}: installed ({path})")
    except (RuntimeError, OSError, subprocess.SubprocessError, KeyError, ValueError) as error:
        fallback = "; ".join(script.fallback for script, path in missing
                             if not script.installed(path))
        if options.optional:
            print(f"warning: vendored scripts not installed: {error}; {fallback} (slower "
                  "first render)", file=sys.stderr)
            return 0
        print(f"error: vendored scripts not installed: {error}", file=sys.stderr)
        return 2
    return 0


if __name__ == "__main__":
    sys.exit(main())
