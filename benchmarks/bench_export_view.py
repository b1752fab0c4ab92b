"""Issue #14: "Export this view" on the Classes page of the embedded 1,000-class model.

Times, through the same function the button's callback calls (``export_view_logic``),
with the analysis already in memory: the whole export (data files, figures built,
eight images rendered by kaleido in one headless Chromium, zip), and apart from it the
data files alone (``weight_view_files``) and the rendering alone; prints the archive's
size. The selection is the one a researcher would share: Euclidean, a focal class, a
selected subtree, a cut.

Run: ``HF_HUB_OFFLINE=1 .venv/bin/python benchmarks/bench_export_view.py [--repeat 3]``
"""

from __future__ import annotations

import argparse
import base64
import statistics
import tempfile
import time
from pathlib import Path


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--repeat", type=int, default=3)
    parser.add_argument("--cache-dir", default=None, help="result cache (default: a new one)")
    args = parser.parse_args()

    from classmap.analysis.cache import ResultCache
    from classmap.analysis.exports.view_archive import weight_view_files
    from classmap.app.config import Settings
    from classmap.app.pages.classes.export import view_export
    from classmap.app.shell.export_view import export_view_logic
    from classmap.app.shell.figure_images import render_images, titled
    from classmap.app.shell.selection import default_selection, update_selection
    from classmap.app.shell.services import Services

    cache_dir = Path(args.cache_dir or tempfile.mkdtemp(prefix="bench-export-view-"))
    settings = Settings.create(cache_dir=cache_dir, jobs_dir=tempfile.mkdtemp(),
                               environ={}, warm_default=False)
    services = Services(settings, cache=ResultCache(cache_dir))
    key = ("lite0-imagenet", "euclidean", "ward")
    started = time.perf_counter()
    view = services.view(key)
    print(f"analysis ready in {time.perf_counter() - started:.1f} s (not counted below)")
    selection = update_selection(default_selection(key[0]), metric="euclidean")
    selection = update_selection(selection, focal="n01981276", node=1990, cut=5)
    status = {"key": list(key), "state": "ready", "message": ""}
    pages = [{"type": "page-query", "page": "classes"}]
    href = "http://127.0.0.1:8050/"

    totals, sizes, data, render = [], [], [], []
    for _ in range(args.repeat):
        t0 = time.perf_counter()
        payload = export_view_logic(services, {"classes": view_export}, pages, selection,
                                    status, href)
        totals.append(time.perf_counter() - t0)
        sizes.append(len(base64.b64decode(payload["content"])))
        t0 = time.perf_counter()
        weight_view_files(view.analysis)
        data.append(time.perf_counter() - t0)
        export = view_export(services, selection, status)
        figures = {stem: titled(f.figure, f.title, f.subtitle)
                   for stem, f in export.figures.items()}
        t0 = time.perf_counter()
        render_images(figures)
        render.append(time.perf_counter() - t0)
    print(f"file: {payload['filename']}")
    print(f"| step | median of {args.repeat} (s) | min (s) |")
    print("|---|---|---|")
    for name, values in (("whole export (click → zip bytes)", totals),
                         ("data files (classes, neighbours, tree)", data),
                         ("8 images rendered (kaleido + Chromium)", render)):
        print(f"| {name} | {statistics.median(values):.2f} | {min(values):.2f} |")
    print(f"archive size: {statistics.median(sizes) / 1024:.0f} kB")


if __name__ == "__main__":
    main()
