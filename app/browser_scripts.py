"""Which scripts the browser gets, and the install step that fetches the lighter ones.

Every dashboard page evaluates its JavaScript before it draws anything, and on the
2-core build machine that evaluation is most of a first render. Two stock pieces cost
more than they need to:

- **plotly.js.** The full bundle that ships with the ``plotly`` Python package is 4.8 MB;
  plotly.js's *cartesian* partial bundle (1.5 MB: scatter, bar, heatmap, histogram,
  box, violin, contour, image, pie, …) evaluates in about a third of the time, and every
  figure Classmap draws uses only those traces, except WebGL scatter (``scattergl``),
  which is used above a few thousand points only when the full bundle is served.
- **Dash's babel polyfill** (``@babel/polyfill`` 7: core-js 2 plus the regenerator
  runtime). core-js 2 judges V8's own ``String.prototype.trim`` non-compliant (U+180E
  stopped being whitespace in Unicode 6.3) and replaces it, and with it ``parseInt`` and
  ``parseFloat``, by slower JavaScript versions; plotly.js parses every point's colour
  through them. Current browsers need none of core-js; dash-renderer and
  dash-core-components need only the global ``regeneratorRuntime``. With the
  standalone ``regenerator-runtime`` installed, the page leaves the polyfill out and
  loads that instead (measured by ``benchmarks/bench_dashboard.py``).

Neither replacement is part of a Python package. ``python -m app.browser_scripts`` (run
by ``make install`` and the Dockerfile) fetches them with ``npm pack`` into
``assets/vendor/`` (git-ignored): ``plotly.js-cartesian-dist-min`` at the *same version*
as the full bundle of the installed ``plotly`` package, and ``regenerator-runtime`` at a
pinned version whose file is checked by its SHA-256. Dash serves every script in
``assets/`` on every page, before dash-renderer: ``window.Plotly`` then exists before
the first graph mounts and dash-core-components uses it instead of loading its own.

Without a file (no npm at install time), or with ``CLASSMAP_PLOTLY_BUNDLE=full`` /
``CLASSMAP_BABEL_POLYFILL=keep``, the page gets Dash's stock script instead: slower
first render, same page.
"""

from __future__ import annotations

import argparse
import hashlib
import os
import re
import shutil
import subprocess
import sys
import tarfile
import tempfile
from dataclasses import dataclass
from pathlib import Path
from typing import Callable

ASSETS_DIR = Path(__file__).resolve().parent.parent / "assets"
VENDOR_DIR = ASSETS_DIR / "vendor"
BUNDLE_PATH = VENDOR_DIR / "plotly-cartesian.min.js"
RUNTIME_PATH = VENDOR_DIR / "regenerator-runtime.js"
# Regexes for Dash's ``assets_ignore``: leave a vendored script out of the page.
BUNDLE_IGNORE = r"plotly-cartesian\.min\.js$"
RUNTIME_IGNORE = r"regenerator-runtime\.js$"
# Dash's babel polyfill in the page's script tags (dash/_dash_renderer.py: polyfill@7.x).
POLYFILL_TAG = re.compile(r'<script src="[^"]*/polyfill@[^"]*"></script>\s*')
CHOICES = ("cartesian", "full")
POLYFILL_CHOICES = ("drop", "keep")
# Trace types the cartesian bundle registers (plotly.js lib/index-cartesian.js).
CARTESIAN_TRACES = frozenset({
    "bar", "box", "contour", "heatmap", "histogram", "histogram2d", "histogram2dcontour",
    "image", "pie", "scatter", "scatterternary", "violin",
})
RUNTIME_VERSION = "0.14.1"
RUNTIME_SHA256 = "7beda998b3fd277f3548e12b277bafc3037d243421f007032d38dffee412224c"


def plotlyjs_version() -> str:
    """Version of the full plotly.js bundled with the installed ``plotly`` package."""
    from plotly.offline import get_plotlyjs_version

    return get_plotlyjs_version()


def bundle_version(path: Path = BUNDLE_PATH) -> str | None:
    """The version written in the bundle's header comment, or None if absent/unreadable."""
    try:
        with path.open("r", encoding="utf-8", errors="replace") as handle:
            head = handle.read(300)
    except OSError:
        return None
    for line in head.splitlines():
        if "plotly.js" in line and " v" in line:
            return line.rsplit(" v", 1)[-1].strip()
    return None


def cartesian_available(path: Path = BUNDLE_PATH) -> bool:
    """True when the partial bundle is installed and matches the Python package's plotly.js."""
    return bundle_version(path) == plotlyjs_version()


def runtime_available(path: Path = RUNTIME_PATH) -> bool:
    """True when the pinned regenerator-runtime is installed, byte for byte."""
    try:
        return hashlib.sha256(path.read_bytes()).hexdigest() == RUNTIME_SHA256
    except OSError:
        return False


def choose_bundle(requested: str | None, path: Path = BUNDLE_PATH) -> str:
    """``cartesian`` or ``full``: what the server will send for ``requested`` (None = default).

    The default is ``cartesian`` when the file is installed and current, else ``full``.
    """
    if requested not in (None, "", *CHOICES):
        from analysis.errors import ClassmapError

        raise ClassmapError(f"unknown plotly bundle {requested!r}; use one of {', '.join(CHOICES)}")
    if requested == "full":
        return "full"
    return "cartesian" if cartesian_available(path) else "full"


def choose_polyfill(requested: str | None, path: Path = RUNTIME_PATH) -> str:
    """``drop`` or ``keep``: whether pages leave Dash's babel polyfill out (None = default).

    The default drops it when the standalone regenerator runtime is installed.
    """
    if requested not in (None, "", *POLYFILL_CHOICES):
        from analysis.errors import ClassmapError

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


@dataclass(frozen=True)
class VendorScript:
    """One file fetched from an npm package into ``assets/vendor/``."""

    label: str
    package: str
    member: str  # the file inside the package tarball
    path: Path
    version: Callable[[], str]
    installed: Callable[[Path], bool]
    fallback: str  # what the page does without it


VENDOR_SCRIPTS = (
    VendorScript("plotly.js cartesian bundle", "plotly.js-cartesian-dist-min",
                 "package/plotly-cartesian.min.js", BUNDLE_PATH, plotlyjs_version,
                 cartesian_available, "the dashboard sends the full plotly.js"),
    VendorScript("regenerator runtime", "regenerator-runtime", "package/runtime.js",
                 RUNTIME_PATH, lambda: RUNTIME_VERSION, runtime_available,
                 "the dashboard sends Dash's babel polyfill"),
)


def fetch(script: VendorScript = VENDOR_SCRIPTS[0], path: Path | None = None,
          npm: str = "npm") -> Path:
    """Fetch ``script`` with ``npm pack`` and install its file at ``path`` (its own path).

    The file is checked (plotly.js: its header names the version; the runtime: its
    SHA-256) and moved into place atomically, so an interrupted fetch leaves either the
    old file or none. Raises RuntimeError naming the problem.
    """
    path = path or script.path
    version = script.version()
    if shutil.which(npm) is None:
        raise RuntimeError(f"{npm!r} is not installed; install npm (apt-get install npm) "
                           f"and run python -m app.browser_scripts")
    path.parent.mkdir(parents=True, exist_ok=True)
    with tempfile.TemporaryDirectory(prefix="classmap-vendor-") as work:
        done = subprocess.run(
            [npm, "pack", f"{script.package}@{version}", "--silent", "--pack-destination", work],
            capture_output=True, text=True, timeout=300, cwd=work,
        )
        tarballs = sorted(Path(work).glob("*.tgz"))
        if done.returncode != 0 or not tarballs:
            reason = (done.stderr or done.stdout).strip().splitlines()
            raise RuntimeError(f"npm pack {script.package}@{version} failed: "
                               f"{reason[-1] if reason else 'no tarball'}")
        with tarfile.open(tarballs[0], "r:gz") as archive:
            source = archive.extractfile(archive.getmember(script.member))
            if source is None:
                raise RuntimeError(f"{script.member} is missing from {tarballs[0].name}")
            staged = path.with_name(path.name + ".part")
            with staged.open("wb") as target:
                shutil.copyfileobj(source, target)
        if not script.installed(staged):
            staged.unlink(missing_ok=True)
            raise RuntimeError(f"{tarballs[0].name} does not hold the expected "
                               f"{script.label} v{version}")
        os.replace(staged, path)
    return path


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description="Install the dashboard's vendored scripts "
                                                 "into assets/vendor/ (see app/browser_scripts.py).")
    parser.add_argument("--check", action="store_true",
                        help="only report whether the installed files are current")
    parser.add_argument("--optional", action="store_true",
                        help="warn instead of failing when one cannot be fetched")
    options = parser.parse_args(argv)
    status = 0
    for script in VENDOR_SCRIPTS:
        name = f"{script.label} v{script.version()}"
        if script.installed(script.path):
            print(f"{name}: installed ({script.path})")
            continue
        if options.check:
            print(f"{name}: missing; run python -m app.browser_scripts")
            status = 1
            continue
        try:
            fetch(script)
        except (RuntimeError, OSError, subprocess.SubprocessError, KeyError,
                tarfile.TarError) as error:
            if options.optional:
                print(f"warning: {name} not installed: {error}; {script.fallback} (slower "
                      "first render)", file=sys.stderr)
                continue
            print(f"error: {name} not installed: {error}", file=sys.stderr)
            return 2
        print(f"{name}: installed ({script.path})")
    return status


if __name__ == "__main__":
    sys.exit(main())
