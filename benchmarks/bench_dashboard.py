"""Dashboard speed and payload, measured in headless Chromium; prints a markdown table.

What is measured (embedded default model, 1,000 classes, after the server is warm):

- first full render: navigation start → heatmap, dendrogram, nearest-classes chart,
  class map and subtree panel all drawn (URL with a focal class and a subtree), in a
  fresh browser context (nothing cached) and on a reload (HTTP cache warm);
- click on a dendrogram node → side panel lists the subtree and the heatmap shows its
  outline (mousedown → both visible, timed inside the page);
- initial payload: bytes the page downloads — data (HTML, layout, callback replies)
  and static libraries (Dash, React, plotly.js; cacheable) separately.

Baselines, measured in the same run:

- "Dash floor": a minimal Dash app in the same browser showing one empty dcc.Graph —
  the cost of Dash + plotly.js on this machine, which any Dash dashboard pays;
- "stock scripts": the same Classmap page served with ``CLASSMAP_PLOTLY_BUNDLE=full``
  (the 4.8 MB bundle dash-core-components loads by itself) and Dash's babel polyfill
  (``CLASSMAP_BABEL_POLYFILL=keep``) instead of the partial bundle and the regenerator
  runtime — Dash's stock scripts;
- "naive redraw": the same click answered the naive way, by sending whole figures
  (float heatmap + ``plotly.figure_factory.create_dendrogram``) instead of a Patch;
- payload and build time of those naive figures.

Usage: ``python benchmarks/bench_dashboard.py [--runs N]`` (needs /usr/bin/chromium).
"""

from __future__ import annotations

import argparse
import json
import os
import socket
import statistics
import subprocess
import sys
import tempfile
import threading
import time
import urllib.request
from pathlib import Path

os.environ.setdefault("HF_HUB_OFFLINE", "1")
ROOT = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(ROOT))

CHROMIUM = "/usr/bin/chromium"
ARGS = ["--headless", "--no-sandbox", "--disable-gpu", "--no-first-run",
        "--disable-background-networking", "--disable-component-update", "--disable-sync"]
VIEWPORT = {"width": 1480, "height": 1250}
QUERY = "?focal=n01978287&node=1990&cut=8"

# Marks the time (performance.now(), ms since navigation) each view first shows data.
MARKS = """
window.__marks = {};
const wanted = {
  heatmap: '#similarity-heatmap .imagelayer image',
  dendrogram: '#dendrogram-graph .scatterlayer .trace:nth-child(2) .point',
  neighbours: '#neighbours-graph .barlayer .point',
  classmap: '#class-map-graph .scatterlayer .trace .point',
  panel: '#subtree-classes li',
  floor: '#floor .main-svg',
  naive: '#naive-heat .heatmaplayer image',
};
new MutationObserver(() => {
  for (const [name, selector] of Object.entries(wanted)) {
    if (!(name in window.__marks) && document.querySelector(selector)) {
      window.__marks[name] = performance.now();
    }
  }
}).observe(document, {subtree: true, childList: true});
"""
PAGE_VIEWS = ("heatmap", "dendrogram", "neighbours", "classmap", "panel")

# Bytes the page downloaded (decoded body sizes): static libraries vs data.
SIZES = """() => {
  const sizes = {static: 0, data: 0, static_wire: 0, data_wire: 0};
  for (const e of performance.getEntriesByType('navigation')
                  .concat(performance.getEntriesByType('resource'))) {
    const path = new URL(e.name).pathname;
    const kind = path.startsWith('/_dash-component-suites/') || path.startsWith('/assets/')
      ? 'static' : 'data';
    sizes[kind] += e.decodedBodySize || 0;
    sizes[kind + '_wire'] += e.encodedBodySize || 0;  // as sent: compressed when it was
  }
  return sizes;
}"""

# Times a click inside the page: mousedown → panel lists `node` and heatmap outlines it.
ARM_CLICK = """(node) => {
  window.__click = {};
  document.addEventListener('mousedown', () => { window.__click.start = performance.now(); },
                            {capture: true, once: true});
  const heat = document.querySelector('#similarity-heatmap .js-plotly-plot');
  const check = () => {
    const title = document.querySelector('#classes-subtree-title')?.innerText || '';
    const outlined = (heat.layout.shapes || []).some(s => s.name === 'selection');
    if (title === 'Subtree of node ' + node && outlined) {
      window.__click.end = performance.now();
    } else { requestAnimationFrame(check); }
  };
  requestAnimationFrame(check);
}"""
NODES = """() => {
  const gd = document.querySelector('#dendrogram-graph .js-plotly-plot');
  const t = gd._fullData[1], layout = gd._fullLayout, box = gd.getBoundingClientRect();
  const found = [];
  for (let i = 0; i < t.x.length; i++) {
    const size = t.customdata[i][1];
    if (size >= 10 && size <= 120) {
      found.push({node: t.customdata[i][0], y: t.y[i],
                  px: box.left + layout._size.l + layout.xaxis.l2p(t.x[i]),
                  py: box.top + layout._size.t + layout.yaxis.l2p(t.y[i])});
    }
  }
  found.sort((a, b) => b.y - a.y);
  return found.slice(0, 12);
}"""


def free_port() -> int:
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        return sock.getsockname()[1]


def wait_for(url: str, process: subprocess.Popen | None = None, seconds: float = 180) -> None:
    deadline = time.monotonic() + seconds
    while time.monotonic() < deadline:
        if process is not None and process.poll() is not None:
            raise SystemExit(f"server exited with {process.returncode}")
        try:
            with urllib.request.urlopen(url, timeout=2):
                return
        except OSError:
            time.sleep(0.3)
    raise SystemExit(f"{url} did not answer in {seconds} s")


def start_classmap(cache_dir: Path, stock: bool = False,
                   compress: bool = False) -> tuple[subprocess.Popen, str]:
    """``classmap serve`` on a free port (warm: the default model is analysed at start).

    ``stock``: serve Dash's stock scripts (full plotly.js, babel polyfill) instead of the
    vendored ones (app/browser_scripts.py). ``compress``: CLASSMAP_COMPRESS=1.
    """
    port = free_port()
    env = {**os.environ, "CLASSMAP_JOBS_DIR": str(cache_dir / "jobs")}
    if stock:
        env.update(CLASSMAP_PLOTLY_BUNDLE="full", CLASSMAP_BABEL_POLYFILL="keep")
    env["CLASSMAP_COMPRESS"] = "1" if compress else "0"
    process = subprocess.Popen(
        [sys.executable, "-m", "classmap.app.cli", "serve", "--port", str(port), "--cache-dir",
         str(cache_dir)], cwd=ROOT, env=env, stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL)
    url = f"http://127.0.0.1:{port}"
    wait_for(url + "/", process)
    return process, url


def build_naive_figures():
    """Whole figures as a naive implementation sends them, and their build time (s)."""
    import plotly.figure_factory as ff
    import plotly.graph_objects as go

    from classmap.analysis.cache import ResultCache
    from classmap.analysis.loading.models import ModelSpec, load_head
    from classmap.analysis.pipelines.weights import WeightParams, analyse_weights

    cache = ResultCache(Path(tempfile.mkdtemp(prefix="classmap-bench-")))
    head = load_head(ModelSpec(), cache)
    analysis = analyse_weights(head, WeightParams(), cache=cache)
    order = analysis.leaf_order
    started = time.perf_counter()
    heat = go.Figure(go.Heatmap(z=analysis.similarity[the_ix(order)], zmid=0,
                                colorscale="RdBu_r"))
    heat_seconds = time.perf_counter() - started
    started = time.perf_counter()
    standardised = head.weight - head.weight.mean(axis=1, keepdims=True)
    dendro = ff.create_dendrogram(standardised, linkagefun=lambda _: analysis.linkage)
    dendro_seconds = time.perf_counter() - started
    return heat, dendro, heat_seconds, dendro_seconds, analysis


def the_ix(order):
    import numpy as np

    return np.ix_(order, order)


def start_baseline(heat, dendro, plotly_bundle: Path | None = None) -> str:
    """A minimal Dash app: one empty graph (the floor) and a naive whole-figure redraw.

    ``plotly_bundle``: a plotly.js file served from the app's assets (defines
    ``window.Plotly`` first, as Classmap does with its partial bundle); None: dcc's own.
    """
    import shutil

    import dash
    from dash import Input, Output, dcc, html
    from werkzeug.serving import make_server

    import logging

    logging.getLogger("werkzeug").setLevel(logging.ERROR)
    assets = Path(tempfile.mkdtemp())
    if plotly_bundle is not None:
        shutil.copy(plotly_bundle, assets / plotly_bundle.name)
    app = dash.Dash(__name__, assets_folder=str(assets))
    app.layout = html.Div([
        dcc.Graph(id="floor", figure={"data": [], "layout": {"height": 300}}),
        html.Button("redraw", id="redraw"),
        dcc.Graph(id="naive-dendro"), dcc.Graph(id="naive-heat"),
    ])

    @app.callback(Output("naive-dendro", "figure"), Output("naive-heat", "figure"),
                  Input("redraw", "n_clicks"), prevent_initial_call=True)
    def redraw(_clicks):
        return dendro, heat

    port = free_port()
    server = make_server("127.0.0.1", port, app.server, threaded=True)
    threading.Thread(target=server.serve_forever, daemon=True).start()
    url = f"http://127.0.0.1:{port}/"
    wait_for(url)
    return url


def measure_render(browser, url: str, views: tuple[str, ...], runs: int,
                   reuse_context: bool, wire: list[int] | None = None,
                   ) -> tuple[list[float], list[int], list[int]]:
    """(ms to the last of ``views``, data bytes, static bytes) per run; ``wire`` gets the
    bytes as sent (compressed when the server compresses) of each run."""
    from playwright.sync_api import TimeoutError as PlaywrightTimeout

    times, data_bytes, static_bytes = [], [], []
    context = browser.new_context(viewport=VIEWPORT) if reuse_context else None
    if context is not None:  # prime the HTTP cache once
        page = context.new_page()
        page.goto(url)
        page.wait_for_timeout(6000)
        page.close()
    for _ in range(runs):
        own = context or browser.new_context(viewport=VIEWPORT)
        page = own.new_page()
        page.add_init_script(MARKS)
        page.goto(url)
        try:
            page.wait_for_function(
                f"{json.dumps(list(views))}.every(v => v in window.__marks)", timeout=60_000)
        except PlaywrightTimeout:
            drawn = page.evaluate("window.__marks")
            shot = Path(tempfile.gettempdir()) / f"bench-dashboard-timeout-{len(times)}.png"
            page.screenshot(path=str(shot), full_page=True)
            print(f"warning: {url}: {sorted(set(views) - set(drawn))} not drawn in 60 s "
                  f"(screenshot {shot}); this load is left out", file=sys.stderr)
            page.close()
            if context is None:
                own.close()
            continue
        marks = page.evaluate("window.__marks")
        page.wait_for_timeout(1500)  # let late replies (class map, options) arrive
        # Bytes from the page's own Resource Timing entries (not by reading every response
        # body through the driver, which loads the browser while it renders).
        sizes = page.evaluate(SIZES)
        times.append(max(marks[v] for v in views))
        data_bytes.append(sizes["data"])
        static_bytes.append(sizes["static"])
        if wire is not None:
            wire.append(sizes["data_wire"] + sizes["static_wire"])
        page.close()
        if context is None:
            own.close()
    if context is not None:
        context.close()
    return times, data_bytes, static_bytes


def measure_clicks(browser, url: str, clicks: int) -> list[float]:
    context = browser.new_context(viewport=VIEWPORT)
    page = context.new_page()
    page.goto(url)
    page.wait_for_selector("#dendrogram-graph .scatterlayer .trace:nth-child(2) .point",
                           timeout=60_000)
    page.wait_for_timeout(2500)
    candidates = page.evaluate(NODES)
    times = []
    for i in range(clicks):
        target = candidates[i % len(candidates)]
        page.mouse.move(target["px"], target["py"])
        page.wait_for_timeout(250)
        page.evaluate(ARM_CLICK, target["node"])
        page.mouse.click(target["px"], target["py"])
        page.wait_for_function("window.__click.end !== undefined", timeout=20_000)
        result = page.evaluate("window.__click")
        times.append(result["end"] - result["start"])
        page.wait_for_timeout(400)
    context.close()
    return times


def measure_naive_click(browser, url: str, runs: int) -> list[float]:
    times = []
    for _ in range(runs):
        context = browser.new_context(viewport=VIEWPORT)
        page = context.new_page()
        page.goto(url)
        page.wait_for_selector("#floor .main-svg", timeout=60_000)
        page.wait_for_timeout(500)
        page.evaluate("""() => { window.__naive = {};
          document.addEventListener('mousedown', () => { window.__naive.start = performance.now(); },
                                    {capture: true, once: true});
          const check = () => {
            const heat = document.querySelector('#naive-heat .heatmaplayer image');
            const tree = document.querySelectorAll('#naive-dendro .scatterlayer .trace').length;
            if (heat && tree > 100) { window.__naive.end = performance.now(); }
            else { requestAnimationFrame(check); } };
          requestAnimationFrame(check); }""")
        page.click("#redraw")
        page.wait_for_function("window.__naive.end !== undefined", timeout=120_000)
        result = page.evaluate("window.__naive")
        times.append(result["end"] - result["start"])
        context.close()
    return times


def median(values):
    return statistics.median(values)


def main(argv=None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--runs", type=int, default=5, help="page loads per measurement")
    parser.add_argument("--clicks", type=int, default=10, help="dendrogram clicks")
    options = parser.parse_args(argv)
    if not Path(CHROMIUM).exists():
        raise SystemExit(f"no Chromium at {CHROMIUM}; apt-get install chromium")
    from playwright.sync_api import sync_playwright
    from plotly.io.json import to_json_plotly

    from classmap.app.browser_scripts import choose_bundle, choose_polyfill

    cache_dir = Path(tempfile.mkdtemp(prefix="classmap-bench-cache-"))
    bundle = choose_bundle(None)
    process, url = start_classmap(cache_dir)
    full_process, full_url = start_classmap(cache_dir, stock=True)
    zipped_process, zipped_url = start_classmap(cache_dir, compress=True)
    heat, dendro, heat_build, dendro_build, _ = build_naive_figures()
    naive_bytes = len(to_json_plotly(heat)) + len(to_json_plotly(dendro))
    baseline_url = start_baseline(heat, dendro)
    from classmap.app.browser_scripts import BUNDLE_PATH

    partial_floor_url = (start_baseline(heat, dendro, BUNDLE_PATH)
                         if bundle == "partial" else None)

    from classmap.app.pages.classes.figures import dendrogram_figure
    from classmap.app.shell.tree_layout import compute_tree_layout
    import numpy as np

    _, _, _, _, analysis = build_naive_figures()
    started = time.perf_counter()
    layout = compute_tree_layout(analysis.linkage, analysis.leaf_order)
    nodes = np.arange(1000, 1999)
    xs, ys = layout.link_paths(nodes)
    ours = dendrogram_figure(xs, ys, layout.x[nodes], layout.y[nodes], nodes,
                             layout.last[nodes] - layout.first[nodes] + 1,
                             x_range=(-0.5, 999.5), top=float(layout.y[-1]))
    ours_build = time.perf_counter() - started
    ours_dendro_bytes = len(to_json_plotly(ours))

    try:
        with sync_playwright() as playwright:
            browser = playwright.chromium.launch(executable_path=CHROMIUM, args=ARGS)
            fresh, data, static = measure_render(browser, url + "/" + QUERY, PAGE_VIEWS,
                                                 options.runs, reuse_context=False)
            full_fresh, _, full_static = measure_render(
                browser, full_url + "/" + QUERY, PAGE_VIEWS, options.runs, reuse_context=False)
            cached, _, _ = measure_render(browser, url + "/" + QUERY, PAGE_VIEWS, options.runs,
                                          reuse_context=True)
            plain_wire: list[int] = []
            zipped_wire: list[int] = []
            measure_render(browser, url + "/" + QUERY, PAGE_VIEWS, 2, reuse_context=False,
                           wire=plain_wire)
            zipped, _, _ = measure_render(browser, zipped_url + "/" + QUERY, PAGE_VIEWS,
                                          options.runs, reuse_context=False, wire=zipped_wire)
            floor_fresh, _, _ = measure_render(
                browser, baseline_url, ("floor",), options.runs, reuse_context=False)
            floor_cached, _, _ = measure_render(browser, baseline_url, ("floor",), options.runs,
                                                reuse_context=True)
            partial_floor = (measure_render(browser, partial_floor_url, ("floor",),
                                              options.runs, reuse_context=False)[0]
                             if partial_floor_url else [])
            clicks = measure_clicks(browser, url + "/?cut=8", options.clicks)
            naive_clicks = measure_naive_click(browser, baseline_url, max(2, options.runs // 2))
            browser.close()
    finally:
        for server in (process, full_process, zipped_process):
            server.terminate()
            server.wait(timeout=10)

    mb = 1e6
    rows = [
        ("first full render, fresh browser (ms)", median(fresh), median(floor_fresh),
         "≤ 2000", "Dash floor: one empty graph"),
        ("first full render, cached browser (ms)", median(cached), median(floor_cached),
         "≤ 2000", "Dash floor: one empty graph"),
        ("first full render, fresh browser (ms)", median(fresh), median(full_fresh),
         "≤ 2000", "same page, Dash's stock scripts"),
        ("first full render, fresh browser (ms)", median(fresh),
         median(partial_floor) if partial_floor else 0, "≤ 2000",
         "Dash floor with the partial plotly.js"),
        ("dendrogram click → panel + outline (ms)", median(clicks), median(naive_clicks),
         "≤ 200", "naive: resend whole figures"),
        ("dendrogram click, slowest of runs (ms)", max(clicks), max(naive_clicks), "", ""),
        ("initial data payload (MB)", median(data) / mb, naive_bytes / mb, "≤ 3",
         "naive float heatmap + create_dendrogram"),
        ("static libraries, cacheable (MB)", median(static) / mb, median(full_static) / mb, "",
         "same page, Dash's stock scripts"),
        ("fresh load over the wire, compression on (MB)", median(zipped_wire) / mb,
         median(plain_wire) / mb, "≤ 3", "same page, compression off (default)"),
        ("first full render, fresh browser, compression on (ms)", median(zipped),
         median(fresh), "≤ 2000", "same page, compression off (default)"),
        ("dendrogram figure build, 1,000 leaves (ms)", 1000 * ours_build, 1000 * dendro_build,
         "", "create_dendrogram"),
        ("dendrogram figure JSON (MB)", ours_dendro_bytes / mb, len(to_json_plotly(dendro)) / mb,
         "", "create_dendrogram"),
    ]
    print(f"\nClassmap dashboard, embedded default (1,000 classes); {options.runs} page loads, "
          f"{options.clicks} clicks; medians unless noted; {os.cpu_count()} CPU cores; "
          f"plotly.js bundle: {bundle}; babel polyfill: {choose_polyfill(None)}\n")
    print("| measurement | Classmap | baseline | ratio | target | baseline is |")
    print("|---|---:|---:|---:|---|---|")
    for name, value, base, target, what in rows:
        ratio = f"{value / base:.2f}×" if base else "—"
        print(f"| {name} | {value:,.2f} | {base:,.2f} | {ratio} | {target} | {what} |")
    print(f"\nper-run first render, fresh (ms): {', '.join(f'{t:.0f}' for t in fresh)}")
    print(f"per-run first render, cached (ms): {', '.join(f'{t:.0f}' for t in cached)}")
    print(f"per-run first render, stock scripts (ms): "
          f"{', '.join(f'{t:.0f}' for t in full_fresh)}")
    print(f"per-click (ms): {', '.join(f'{t:.0f}' for t in clicks)}")
    print(f"naive heatmap figure build: {1000 * heat_build:.0f} ms")
    return 0


if __name__ == "__main__":
    sys.exit(main())
