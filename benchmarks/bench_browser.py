"""Issue #14 (first contact): every page's time to usable and each interaction's response,
in headless Chromium; prints a markdown table (``--out FILE`` writes it to a file too).

A real ``classmap serve`` (the embedded ImageNet Lite0 head, 1,000 classes; the image pages
on ``--model lenet-digits`` with scikit-learn's digits) is driven by Playwright in Debian's
Chromium. One untimed pass first warms the result cache and the server's memory; then
every step is repeated ``--repeats`` times, each repeat in a fresh browser context.

How the time is taken — inside the page, with ``performance.now()``:

- **usable page**: from navigation start until the page's main views are drawn (the
  condition per page is in the table) *and* no Dash callback request is in flight; the
  time reported is the first frame of a quiet stretch of ``QUIET_MS`` without a request
  (the quiet stretch itself is not counted);
- **interaction**: from the user's input event (``pointerdown``/``mousedown``/``keydown``
  captured on the window; ``mouseup`` for the zoom drag) until the DOM condition that shows
  the answer holds (checked every animation frame, so to within one frame). The wall time
  around Playwright's wait for the same condition is recorded too, as a cross-check.

Where the time goes: every ``/_dash-update-component`` request the page made inside a
step is recorded from the page's network events (Playwright's ``request.timing``: the
callback's output id, its server time = time to first byte, and its transfer), so each
step splits into *server* (some callback request in flight) and *browser* (none in
flight: JavaScript, clientside callbacks, plotly drawing). Steps over the target list
their slowest callback.

Target (issue #14): no interaction that the page answers from the cache over 300 ms.

Run: ``HF_HUB_OFFLINE=1 .venv/bin/python benchmarks/bench_browser.py [--repeats 5]
[--cache DIR] [--pages classes,weights,…]`` (needs /usr/bin/chromium and Playwright).
"""

from __future__ import annotations

import argparse
import json
import os
import platform
import statistics
import sys
import tempfile
import time
from collections.abc import Callable
from datetime import datetime, timezone
from pathlib import Path

ROOT = Path(__file__).resolve().parents[1]
for path in (ROOT, ROOT / "benchmarks"):
    if str(path) not in sys.path:
        sys.path.insert(0, str(path))
os.environ.setdefault("HF_HUB_OFFLINE", "1")

from _measure import print_table  # noqa: E402

# The end-to-end tests' helpers, imported (not copied): browser, server and plotly picks.
from tests.e2e.conftest import (  # noqa: E402
    CHROMIUM, CHROMIUM_ARGS, VIEWPORT, free_port, serve_until_done,
)
from tests.e2e.test_dashboard import GRAPH, PICK_NODE, click_at  # noqa: E402
from tests.e2e.test_image_pages import FIRST_POINT as FIRST_SAMPLE  # noqa: E402
from tests.e2e.test_weights_page import ICICLE_NODE  # noqa: E402
from tests.e2e.test_weights_page import PICK_POINT as PICK_WEIGHTS_POINT  # noqa: E402

TARGET_MS = 300
QUIET_MS = 500
TIMEOUT_MS = 60_000  # a timed step or load that takes longer fails the run
WARMUP_TIMEOUT_MS = 1_200_000  # the warm-up's loads compute what is not cached (minutes)
WARMUP_STEP_TIMEOUT_MS = 300_000  # and its steps too (t-SNE, the comparison)
DIGITS = "model=lenet-digits&data=digits"
PAGES = ("classes", "weights", "samples", "clustering", "confidence", "compare")

# In every page, before its scripts: counts Dash callback requests in flight, and offers
# the waits the benchmark uses (all times are performance.now(): ms since navigation).
INIT = """
window.__bench = {pending: 0};
const nativeFetch = window.fetch;
window.fetch = function (input, init) {
  const url = typeof input === 'string' ? input : (input && input.url) || '';
  if (!url.includes('_dash-update-component')) { return nativeFetch.apply(this, arguments); }
  window.__bench.pending++;
  const done = () => { window.__bench.pending--; };
  return nativeFetch.apply(this, arguments).then(
    (response) => response.clone().text().then(() => { done(); return response; },
                                                () => { done(); return response; }),
    (error) => { done(); throw error; });
};
// A signature of what a plotly graph shows (data, axes, shapes, images), to see it change.
window.__sig = (id) => {
  const gd = document.querySelector('#' + id + ' .js-plotly-plot');
  if (!gd || !gd.data) { return ''; }
  const tail = (s) => (typeof s === 'string' ? s.length + s.slice(-48) : s);
  const cut = (v) => (v && v.length !== undefined) ? Array.from(v).slice(0, 40) : v;
  // the first six traces and the last two (the image scatters' focal overlay and ring)
  const shown = gd.data.length > 6 ? gd.data.slice(0, 6).concat(gd.data.slice(-2)) : gd.data;
  const traces = shown.map((t) => [t.type, cut(t.x), cut(t.y), cut(t.z && t.z[0]),
    cut(t.marker && t.marker.color), cut(t.text), tail(t.source)]);
  const l = gd.layout || {};
  return JSON.stringify([traces, l.title, l.xaxis && l.xaxis.title, l.yaxis && l.yaxis.title,
    l.xaxis && l.xaxis.range, l.yaxis && l.yaxis.range,
    (l.shapes || []).map((s) => [s.name, s.x0, s.x1, s.y0, s.y1]),
    (l.images || []).map((i) => tail(i.source))]);
};
window.__hasData = (id) => {
  const gd = document.querySelector('#' + id + ' .js-plotly-plot');
  return !!(gd && gd.data && gd.data.length);
};
// Resolves with the first frame of a quiet stretch (condition true, nothing in flight).
window.__untilQuiet = (check, quietMs, timeoutMs) => new Promise((resolve) => {
  let since = null;
  const t0 = performance.now();
  const tick = () => {
    const now = performance.now();
    let ok = false;
    try { ok = !!check() && window.__bench.pending === 0; } catch (e) { ok = false; }
    if (ok) {
      if (since === null) { since = now; }
      if (now - since >= quietMs) { resolve(since); return; }
    } else { since = null; }
    if (now - t0 > timeoutMs) { resolve(-1); return; }
    requestAnimationFrame(tick);
  };
  tick();
});
// Arms a timed step: the first `events` input starts the clock, `check` stops it.
window.__arm = (events, check) => {
  const t = window.__step = {start: null, end: null, epoch: performance.timeOrigin};
  const begin = () => {
    if (t.start !== null) { return; }
    t.start = performance.now();
    const poll = () => {
      let ok = false;
      try { ok = !!check(); } catch (e) { ok = false; }
      if (ok) { t.end = performance.now(); } else { requestAnimationFrame(poll); }
    };
    poll();
  };
  for (const name of events) { window.addEventListener(name, begin, {capture: true, once: true}); }
};
"""

CLICK_EVENTS = ["pointerdown", "mousedown"]
KEY_EVENTS = ["keydown"]
UP_EVENTS = ["mouseup"]


class Recorder:
    """Every Dash callback request of a page: output id and timing (epoch ms)."""

    def __init__(self, page):
        self.requests: list[dict] = []
        page.on("requestfinished", self._finished)

    def _finished(self, request) -> None:
        if "_dash-update-component" not in request.url:
            return
        try:
            output = json.loads(request.post_data or "{}").get("output", "?")
        except ValueError:
            output = "?"
        timing = request.timing
        start = timing["startTime"]
        self.requests.append({
            "output": output if len(output) < 90 else output[:87] + "…",
            "start": start + max(timing["requestStart"], 0),
            "first_byte": start + timing["responseStart"],
            "end": start + timing["responseEnd"],
        })

    def within(self, start: float, end: float) -> list[dict]:
        """The requests that started in [start, end] (epoch ms)."""
        return [r for r in self.requests if start - 1 <= r["start"] <= end]


def in_flight_ms(requests: list[dict], start: float, end: float) -> float:
    """How long, between start and end (epoch ms), at least one request was in flight."""
    spans = sorted((max(r["start"], start), min(r["end"], end)) for r in requests)
    total, cursor = 0.0, start
    for lo, hi in spans:
        lo = max(lo, cursor)
        if hi > lo:
            total += hi - lo
            cursor = hi
    return total


class Bench:
    """The measured steps of one run; results[(page, step)] = list of samples."""

    def __init__(self, browser, url: str, repeats: int, cache_dir: str | None = None):
        self.browser, self.url, self.repeats = browser, url, repeats
        self.cache_dir = cache_dir  # the server's result cache (None: the user's default)
        self.results: dict[tuple[str, str], list[dict]] = {}
        self.conditions: dict[tuple[str, str], str] = {}
        self.recording = False
        self.version = browser.version
        self.failures: list[str] = []

    def new_page(self):
        context = self.browser.new_context(viewport=VIEWPORT, bypass_csp=True)
        context.add_init_script(INIT)
        page = context.new_page()
        page.set_default_timeout(self.timeout())
        page.recorder = Recorder(page)
        return page

    def timeout(self, load: bool = False) -> int:
        """The warm-up pass may compute (cold cache); the timed repeats must not."""
        if self.recording:
            return TIMEOUT_MS
        return WARMUP_TIMEOUT_MS if load else WARMUP_STEP_TIMEOUT_MS

    def _store(self, page_name: str, step: str, condition: str, sample: dict) -> None:
        if self.recording:
            self.results.setdefault((page_name, step), []).append(sample)
            self.conditions[(page_name, step)] = condition

    def load(self, page, page_name: str, path: str, ready_js: str, condition: str) -> None:
        """goto path; time to usable = ready_js true and no callback in flight."""
        timeout = self.timeout(load=True)
        wall = time.perf_counter()
        page.goto(self.url + path)
        usable = page.evaluate(f"() => window.__untilQuiet(() => ({ready_js}), {QUIET_MS}, "
                               f"{timeout})")
        wall = (time.perf_counter() - wall) * 1000 - QUIET_MS
        if usable < 0:
            raise RuntimeError(f"{page_name}: the page was not usable within {timeout} ms "
                               f"({condition}); page {page.url}")
        origin = page.evaluate("performance.timeOrigin")
        requests = page.recorder.within(origin, origin + usable)
        self._store(page_name, "page load → usable", condition,
                    {"ms": usable, "wall": wall, "server": in_flight_ms(requests, origin,
                                                                          origin + usable),
                     "requests": requests})

    def step(self, page, page_name: str, step: str, events: list[str],
             action: Callable[[], None], check_js: str, condition: str) -> None:
        """Time ``action`` from its first input event until ``check_js`` holds."""
        page.evaluate(f"() => window.__arm({json.dumps(events)}, () => ({check_js}))")
        wall = time.perf_counter()
        timeout = self.timeout()
        action()
        try:
            page.wait_for_function("window.__step.end !== null", timeout=timeout)
        except Exception as error:  # say which step, and whether its input event came
            started = page.evaluate("window.__step.start !== null")
            raise RuntimeError(f"{page_name} — {step}: no response ({condition}) within "
                               f"{timeout} ms; the input event was "
                               f"{'seen' if started else 'never seen'}; page {page.url}") from error
        wall = (time.perf_counter() - wall) * 1000
        step_times = page.evaluate("window.__step")
        start = step_times["epoch"] + step_times["start"]
        end = step_times["epoch"] + step_times["end"]
        requests = page.recorder.within(start, end)
        self._store(page_name, step, condition,
                    {"ms": step_times["end"] - step_times["start"], "wall": wall,
                     "server": in_flight_ms(requests, start, end), "requests": requests})
        self.idle(page)

    def idle(self, page) -> None:
        """Untimed: until no callback has been in flight for QUIET_MS."""
        page.evaluate(f"() => window.__untilQuiet(() => true, {QUIET_MS}, {self.timeout()})")


def graph(id_: str) -> str:
    return GRAPH.format(id=id_)


def pick_option(page, control: str, name: str, exact: bool = True) -> Callable[[], None]:
    """Open the dropdown ``control``; return the action that clicks option ``name``."""
    page.click(control)
    option = page.get_by_role("option", name=name, exact=exact).first
    option.wait_for()
    return option.click


# -- the pages -----------------------------------------------------------------------------


def classes_page(bench: Bench) -> None:
    page = bench.new_page()
    name = "Classes"
    bench.load(page, name, "/",
               "document.querySelector('#similarity-heatmap .imagelayer image') && "
               "document.querySelector('#dendrogram-graph .scatterlayer .trace:nth-child(2) "
               ".point') && document.querySelector('#class-map-graph .scatterlayer .trace "
               ".point') && (document.querySelector('#classes-model-summary')?.innerText || '')"
               ".includes('1,000')",
               "heatmap image, dendrogram nodes, class-map points and the model summary drawn")

    # Node click → side panel.
    page.evaluate("() => document.getElementById('dendrogram-graph')"
                  ".scrollIntoView({block: 'center'})")
    node = page.evaluate(PICK_NODE)
    bench.step(page, name, "dendrogram node click → side panel", CLICK_EVENTS,
               lambda: click_at(page, node["px"], node["py"]),
               f"document.querySelector('#classes-subtree-title')?.innerText === "
               f"'Subtree of node {node['node']}' && document.querySelectorAll("
               f"'#subtree-classes li').length === {node['size']}",
               "panel title names the node and lists its classes")

    # Zoom drag on the heatmap → the heatmap shows the region (tile redrawn).
    page.evaluate("() => document.getElementById('similarity-heatmap')"
                  ".scrollIntoView({block: 'center'})")
    box = page.locator("#similarity-heatmap .nsewdrag").first.bounding_box()
    before = page.evaluate("() => window.__sig('similarity-heatmap')")
    page.mouse.move(box["x"] + box["width"] * 0.30, box["y"] + box["height"] * 0.30)
    page.mouse.down()
    page.mouse.move(box["x"] + box["width"] * 0.36, box["y"] + box["height"] * 0.36, steps=6)
    bench.step(page, name, "heatmap zoom drag → region redrawn", UP_EVENTS, page.mouse.up,
               f"window.__sig('similarity-heatmap') !== {json.dumps(before)} && "
               f"({graph('similarity-heatmap')}.layout.xaxis.range || []).length === 2",
               "heatmap's axis range and image replaced (mouseup → redrawn)")

    # Heatmap cell click → its row's class is the focal class (neighbours drawn).
    box = page.locator("#similarity-heatmap .nsewdrag").first.bounding_box()
    x, y = box["x"] + box["width"] * 0.5, box["y"] + box["height"] * 0.5
    before = page.evaluate("() => window.__sig('neighbours-graph')")
    bench.step(page, name, "heatmap cell click → focal class", CLICK_EVENTS,
               lambda: click_at(page, x, y),
               f"window.__hasData('neighbours-graph') && "
               f"window.__sig('neighbours-graph') !== {json.dumps(before)}",
               "nearest-classes chart redrawn for the clicked row's class")

    # Class search → focal class.
    page.evaluate("() => window.scrollTo(0, 0)")
    page.locator("#focal-class").scroll_into_view_if_needed()
    page.click("#focal-class")
    bench.idle(page)
    bench.step(page, name, "class search: query typed → option offered", ["input"],
               lambda: page.keyboard.insert_text("Dungeness crab"),
               "Array.from(document.querySelectorAll('[role=option]'))"
               ".some(o => o.innerText.startsWith('Dungeness crab')) && "
               "!Array.from(document.querySelectorAll('[role=option]'))"
               ".some(o => o.innerText.startsWith('tench'))",
               "the picker lists 'Dungeness crab…' and no longer its first option "
               "'tench' (the query arrives as one input event)")
    option = page.get_by_role("option", name="Dungeness crab").first
    bench.step(page, name, "class search: pick → focal drawn", CLICK_EVENTS, option.click,
               f"({graph('neighbours-graph')}?.layout?.yaxis?.ticktext || [])[0] === 'king crab'",
               "nearest-classes chart starts with 'king crab'")

    # Top-k 10 → 20.
    click = pick_option(page, "#classes-top-k", "20")
    bench.step(page, name, "top-k 10 → 20", CLICK_EVENTS, click,
               "document.querySelectorAll('#neighbours-graph .barlayer .point').length === 20",
               "nearest-classes chart has 20 bars")

    # Cut slider: a click on the track at the "10" mark (off → 10 clusters).
    before = page.evaluate("() => [window.__sig('class-map-graph'), "
                           "window.__sig('dendrogram-graph')]")
    page.locator("#classes-cut").scroll_into_view_if_needed()
    track = page.locator("#classes-cut .dash-slider-track").first.bounding_box()
    mark = page.locator("#classes-cut .dash-slider-mark", has_text="10").first.bounding_box()
    x, y = mark["x"] + mark["width"] / 2, track["y"] + track["height"] / 2
    bench.step(page, name, "cut slider off → 10 clusters", CLICK_EVENTS,
               lambda: page.mouse.click(x, y),
               f"window.__sig('class-map-graph') !== {json.dumps(before[0])} && "
               f"window.__sig('dendrogram-graph') !== {json.dumps(before[1])}",
               "class map and dendrogram redrawn with the clusters' colours")

    # Metric cosine → Euclidean (and back, untimed). The tree is Ward's, the same for both
    # metrics: it is left as drawn (the heatmap's scores and the nearest classes change).
    before = page.evaluate("() => window.__sig('similarity-heatmap')")
    label = page.locator("#shell-metric label", has_text="Euclidean").first
    bench.step(page, name, "metric cosine → Euclidean", CLICK_EVENTS, label.click,
               f"window.__sig('similarity-heatmap') !== {json.dumps(before)} && "
               f"!(JSON.stringify({graph('neighbours-graph')}.layout.xaxis.title) || 'cosine')"
               f".includes('cosine')",
               "heatmap redrawn, nearest-classes chart in Euclidean distance (the Ward tree, "
               "the same for both metrics, is kept)")
    page.locator("#shell-metric label", has_text="cosine").first.click()
    page.wait_for_function(f"(JSON.stringify({graph('neighbours-graph')}.layout?.xaxis?.title)"
                           " || '').includes('cosine')")
    bench.idle(page)

    # Linkage Ward → average (a new tree: its analysis computed in the warm-up, held in
    # memory), and back, untimed.
    before = page.evaluate("() => [window.__sig('similarity-heatmap'), "
                           "window.__sig('dendrogram-graph')]")
    page.evaluate("() => window.scrollTo(0, 0)")
    click = pick_option(page, "#shell-linkage", "average")
    bench.step(page, name, "linkage Ward → average", CLICK_EVENTS, click,
               f"location.search.includes('linkage=average') && "
               f"window.__sig('similarity-heatmap') !== {json.dumps(before[0])} && "
               f"window.__sig('dendrogram-graph') !== {json.dumps(before[1])}",
               "heatmap and dendrogram redrawn in the average-linkage tree's order")
    pick_option(page, "#shell-linkage", "Ward (on row vectors)")()
    page.wait_for_function("location.search.includes('linkage=ward')")
    bench.idle(page)

    # Class map: PCA → t-SNE (cached after the warm-up) → PCA.
    page.locator("#class-map-graph").scroll_into_view_if_needed()
    for method, label_text in (("tsne", "t-SNE"), ("pca", "PCA")):
        before = page.evaluate("() => window.__sig('class-map-graph')")
        label = page.locator("#classes-embedding label", has_text=label_text).first
        bench.step(page, name, f"class map → {label_text}", CLICK_EVENTS, label.click,
                   f"window.__hasData('class-map-graph') && "
                   f"window.__sig('class-map-graph') !== {json.dumps(before)} && "
                   f"location.search.includes('embedding=') === {json.dumps(method != 'pca')}",
                   f"class map redrawn with the {label_text} layout")
    page.context.close()


def weights_page(bench: Bench) -> None:
    page = bench.new_page()
    name = "Weight distributions"
    bench.load(page, name, "/weights",
               "document.querySelector('#weights-scatter-graph .scatterlayer .trace .point') && "
               "document.querySelector('#weights-overview-graph .barlayer .point')",
               "overview bars and class scatter drawn")
    page.locator("#weights-scatter-graph").scroll_into_view_if_needed()
    point = page.evaluate(PICK_WEIGHTS_POINT)
    bench.step(page, name, "scatter point click → focal histogram", CLICK_EVENTS,
               lambda: click_at(page, point["px"], point["py"]),
               f"(document.querySelector('#weights-histogram-graph .js-plotly-plot')?.layout"
               f"?.title?.text || '') === 'Weights of ' + {json.dumps(point['name'])} && "
               f"window.__hasData('weights-icicle-graph')",
               "histogram titled with the class and its split icicle drawn")

    before = page.evaluate("() => window.__sig('weights-scatter-graph')")
    label = page.locator("#weights-scatter-axes label").nth(1)
    bench.step(page, name, "scatter axes κ/KS → R²", CLICK_EVENTS, label.click,
               f"window.__sig('weights-scatter-graph') !== {json.dumps(before)}",
               "scatter redrawn")

    page.wait_for_selector("#weights-icicle-graph .barlayer .point")
    page.wait_for_timeout(300)
    node = page.evaluate(ICICLE_NODE, "+")
    bench.step(page, name, "icicle node click → channels listed", CLICK_EVENTS,
               lambda: click_at(page, node["x"], node["y"]),
               "(document.querySelector('#weights-node-title')?.innerText || '')"
               ".startsWith('Node +') && document.querySelectorAll("
               "'#weights-node-channels li').length > 0",
               "node title and its channel list")

    before = page.evaluate("() => window.__sig('weights-icicle-graph')")
    label = page.locator("[id*='weights-control'][id*='split'] label").nth(1)
    bench.step(page, name, "split mode change → icicle redrawn", CLICK_EVENTS, label.click,
               f"window.__hasData('weights-icicle-graph') && "
               f"window.__sig('weights-icicle-graph') !== {json.dumps(before)}",
               "icicle redrawn")

    before = page.evaluate("() => window.__sig('weights-icicle-graph')")
    box = page.locator("[id*='weights-control'][id*='minsize']").first
    box.fill("40")
    bench.step(page, name, "min size 20 → 40 (Enter) → icicle redrawn", KEY_EVENTS,
               lambda: box.press("Enter"),
               f"window.__hasData('weights-icicle-graph') && "
               f"window.__sig('weights-icicle-graph') !== {json.dumps(before)}",
               "icicle redrawn")
    page.context.close()


SAMPLES_READY = ("document.querySelector('#samples-graph .scatterlayer .trace .point') && "
                 "(document.querySelector('#images-message')?.innerText || '').includes('images')")


def samples_page(bench: Bench) -> None:
    page = bench.new_page()
    name = "Samples"
    bench.load(page, name, "/samples?" + DIGITS, SAMPLES_READY,
               "sample scatter drawn and the data summary shown")
    point = page.evaluate(FIRST_SAMPLE)
    bench.step(page, name, "sample click → image and Grad-CAM", CLICK_EVENTS,
               lambda: click_at(page, point["px"], point["py"]),
               "(document.querySelector('#sample-cam')?.getAttribute('src') || '')"
               ".startsWith('data:image/png;base64,') && (document.querySelector("
               "'#sample-image')?.getAttribute('src') || '').startsWith('data:image/')",
               "the image and its Grad-CAM overlay shown")
    before = page.evaluate("() => window.__sig('samples-graph')")
    click = pick_option(page, "[id*='images-representation']", "Grad-CAM", exact=False)
    bench.step(page, name, "representation → Grad-CAM weights", CLICK_EVENTS, click,
               f"window.__hasData('samples-graph') && "
               f"window.__sig('samples-graph') !== {json.dumps(before)}",
               "scatter redrawn")
    before = page.evaluate("() => window.__sig('samples-graph')")
    focal = page.evaluate("new URLSearchParams(location.search).get('focal')")
    other = "7" if focal != "7" else "3"
    click = pick_option(page, "#images-focal", other)
    bench.step(page, name, f"class picker → {other}", CLICK_EVENTS, click,
               f"window.__sig('samples-graph') !== {json.dumps(before)}",
               "scatter redrawn with the class highlighted")
    page.context.close()


def clustering_page(bench: Bench) -> None:
    page = bench.new_page()
    name = "Clustering"
    bench.load(page, name, "/clustering?" + DIGITS,
               "(document.querySelector('#clustering-metrics-table')?.innerText || '')"
               ".includes('Silhouette') && document.querySelector("
               "'#clustering-cluster-graph .scatterlayer .trace .point')",
               "metrics table and cluster scatter drawn")
    labels = page.locator("[id*='clustering-algorithm'] label")
    for index in range(1, min(labels.count(), 3)):
        before = page.evaluate("() => window.__sig('clustering-cluster-graph')")
        label = labels.nth(index)
        text = label.inner_text().strip()
        bench.step(page, name, f"algorithm → {text}", CLICK_EVENTS, label.click,
                   f"window.__hasData('clustering-cluster-graph') && "
                   f"window.__sig('clustering-cluster-graph') !== {json.dumps(before)}",
                   "cluster scatter redrawn")
    before = page.evaluate("() => window.__sig('clustering-true-graph')")
    click = pick_option(page, "[id*='images-representation']", "Grad-CAM", exact=False)
    bench.step(page, name, "representation → Grad-CAM weights", CLICK_EVENTS, click,
               f"window.__hasData('clustering-true-graph') && "
               f"window.__sig('clustering-true-graph') !== {json.dumps(before)}",
               "true-class scatter redrawn")
    page.context.close()


def confidence_page(bench: Bench) -> None:
    page = bench.new_page()
    name = "Confidence"
    bench.load(page, name, "/confidence?" + DIGITS + "&focal=3",
               "document.querySelector('#confidence-js-heatmap .heatmaplayer image') && "
               "document.querySelector('#confidence-tsne-graph .scatterlayer .trace .point') && "
               "document.querySelector('#confidence-confusion-graph .heatmaplayer image')",
               "JS heatmap, t-SNE scatter and confusion matrix drawn")
    before = page.evaluate("() => window.__sig('confidence-tsne-graph')")
    click = pick_option(page, "#images-focal", "7")
    bench.step(page, name, "class picker 3 → 7", CLICK_EVENTS, click,
               f"window.__hasData('confidence-tsne-graph') && "
               f"window.__sig('confidence-tsne-graph') !== {json.dumps(before)}",
               "t-SNE scatter redrawn with the new class highlighted")
    page.context.close()


COMPARE_READY = ("document.querySelector('#compare-run') && window.__hasData !== undefined && "
                 "document.querySelector('#compare-a-model')")
COMPARE_DONE = ("document.querySelector('.cm-compare-pair') && "
                "window.__hasData('compare-tanglegram-graph')")
COMPARE_PERMUTATIONS = 99


def forget_comparison(cache_dir: str | None) -> None:
    """Drop the page's default comparison (lite0 weight cosine / Ward vs WordNet / average,
    COMPARE_PERMUTATIONS) from the server's result cache, so that Compare computes it."""
    from classmap.analysis.cache import ResultCache
    from classmap.app.config import Settings
    from classmap.app.pages.compare.callbacks import cache_key
    from classmap.app.pages.compare.layout import default_sources
    from classmap.app.shell.services import Services

    settings = Settings.create(environ=dict(os.environ), warm_default=False,
                               **({"cache_dir": cache_dir} if cache_dir else {}))
    services = Services(settings, cache=ResultCache(settings.cache_dir))
    a, b = default_sources(settings)
    key = cache_key(services, a, b, COMPARE_PERMUTATIONS)
    if key is not None:
        services.cache.delete(key)


def compare_page(bench: Bench) -> None:
    name = "Compare"
    page = bench.new_page()
    bench.load(page, name, "/compare", COMPARE_READY,
               "source pickers and the Compare button shown")
    page.fill("#compare-permutations", str(COMPARE_PERMUTATIONS))
    forget_comparison(bench.cache_dir)
    bench.step(page, name, "Compare (weights cosine vs WordNet), not cached → results",
               CLICK_EVENTS, lambda: page.click("#compare-run"), COMPARE_DONE,
               "disagreeing pairs listed and the tanglegram drawn (a background job: both "
               "sources, every measure, the permutations)")
    page.context.close()
    # The same comparison again, on a fresh page: answered from the result cache.
    page = bench.new_page()
    page.goto(bench.url + "/compare")
    page.evaluate(f"() => window.__untilQuiet(() => ({COMPARE_READY}), {QUIET_MS}, "
                  f"{bench.timeout(load=True)})")
    page.fill("#compare-permutations", str(COMPARE_PERMUTATIONS))
    bench.step(page, name, "Compare again (cached) → results", CLICK_EVENTS,
               lambda: page.click("#compare-run"), COMPARE_DONE,
               "disagreeing pairs listed and the tanglegram drawn (no job: the result cache)")
    page.context.close()


RUNNERS = {"classes": classes_page, "weights": weights_page, "samples": samples_page,
           "clustering": clustering_page, "confidence": confidence_page,
           "compare": compare_page}


# -- report ----------------------------------------------------------------------------------


def checkout() -> str:
    """The commit measured (and whether the working tree had changes), or why unknown."""
    import subprocess

    try:
        commit = subprocess.run(["git", "rev-parse", "--short", "HEAD"], cwd=ROOT, text=True,
                                capture_output=True, check=True).stdout.strip()
        dirty = subprocess.run(["git", "status", "--porcelain", "--untracked-files=no"],
                               cwd=ROOT, text=True, capture_output=True, check=True).stdout
    except (OSError, subprocess.CalledProcessError):
        return "commit unknown (not a git checkout)"
    return f"commit {commit}" + (" with uncommitted changes" if dirty.strip() else "")


def load_average() -> str:
    return " / ".join(f"{v:.2f}" for v in os.getloadavg())


def summarise(bench: Bench) -> tuple[list[tuple], list[str]]:
    rows, causes = [], []
    for (page_name, step), samples in bench.results.items():
        times = [s["ms"] for s in samples]
        median, worst = statistics.median(times), max(times)
        server = statistics.median(s["server"] for s in samples)
        wall = statistics.median(s["wall"] for s in samples)
        load = step.startswith("page load")
        verdict = "—" if load else ("yes" if median <= TARGET_MS else "**no**")
        rows.append((page_name, step, str(len(times)), f"{median:.0f}", f"{worst:.0f}", f"{server:.0f}",
                     f"{median - server:.0f}" if median >= server else "0", f"{wall:.0f}",
                     verdict))
        if not load and median > TARGET_MS or load:
            slowest = max(samples, key=lambda s: s["ms"])
            calls = sorted(slowest["requests"], key=lambda r: r["first_byte"] - r["start"],
                           reverse=True)
            listed = "; ".join(
                f"`{c['output']}` {c['first_byte'] - c['start']:.0f} ms server"
                f" + {c['end'] - c['first_byte']:.0f} ms transfer" for c in calls[:4])
            causes.append(f"- {page_name} — {step}: {len(slowest['requests'])} callback "
                          f"request(s) in the slowest repeat ({slowest['ms']:.0f} ms, "
                          f"{slowest['server']:.0f} ms with a request in flight); slowest: "
                          f"{listed or 'none (all in the browser)'}")
    return rows, causes


def report(bench: Bench, options: argparse.Namespace, started: datetime, load_start: str,
           repeats_done: int) -> None:
    """Print the table (after each repeat: a partial run still reports); --out at the end."""
    partial = "" if repeats_done == options.repeats else f" (partial: {repeats_done} done)"
    rows, causes = summarise(bench)
    header = ["page", "step", "n", "median ms", "max ms", "server ms (median)",
              "browser ms (median)", "wall ms (median)", f"≤ {TARGET_MS} ms"]
    intro = (f"Measured {started:%Y-%m-%d %H:%M} UTC: `python benchmarks/bench_browser.py "
             f"--repeats {options.repeats}`{partial} at {checkout()}; {platform.machine()}, {os.cpu_count()} cores "
             f"(shared with other jobs), load average (1/5/15 min) {load_start} at start, "
             f"{load_average()} at the end; headless Chromium {bench.version} "
             f"at {VIEWPORT['width']}×{VIEWPORT['height']}, Playwright. Classes and Weight "
             f"distributions on the embedded default (ImageNet Lite0, 1,000 classes); "
             f"Samples, Clustering, Confidence on `model=lenet-digits&data=digits`; Compare on "
             f"the default (weights cosine vs WordNet, 99 permutations). {repeats_done} "
             f"repeats after one untimed warm-up pass, each in a fresh browser context (n: the "
             f"samples a row has; a failed step ends its page's repeat, see below). "
             f"Times are performance.now() in the page: load = navigation start → views drawn "
             f"and no callback in flight; interaction = input event → the DOM condition "
             f"below. server = time with a callback request in flight; browser = the rest.")
    print(intro)
    print_table("Browser: time to usable and to each interaction's response", header, rows)
    conditions = [f"- {page} — {step}: {cond}" for (page, step), cond in bench.conditions.items()]
    print("Response conditions:\n" + "\n".join(conditions))
    print("\nSlowest callbacks (loads and steps over the target):\n" + "\n".join(causes))
    if bench.failures:
        print("\nFailed steps (not in the table's samples):\n" + "\n".join(bench.failures))
    if not options.out or repeats_done < options.repeats:
        return
    out = Path(options.out)
    lines = [intro, "", "| " + " | ".join(header) + " |", "|" + "|".join("---" for _ in header)
             + "|"]
    lines += ["| " + " | ".join(str(c) for c in row) + " |" for row in rows]
    lines += ["", "Response conditions:", *conditions, "",
              "Slowest callbacks (loads and steps over the target):", *causes, "",
              *(["Failed steps:", *bench.failures, ""] if bench.failures else [])]
    out.write_text("\n".join(lines))
    print(f"written to {out}")


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--repeats", type=int, default=5, help="timed repeats (default 5)")
    parser.add_argument("--cache", help="result cache folder (default: the user's classmap "
                                        "cache; a cold one adds minutes to the warm-up)")
    parser.add_argument("--pages", default=",".join(PAGES),
                        help=f"comma-separated subset of {', '.join(PAGES)}")
    parser.add_argument("--out", help="also write the markdown report to this file")
    options = parser.parse_args(argv)
    pages = [p.strip() for p in options.pages.split(",") if p.strip()]
    unknown = sorted(set(pages) - set(PAGES))
    if unknown:
        parser.error(f"unknown page(s) {unknown}; choose from {', '.join(PAGES)}")
    if options.repeats < 1:
        parser.error("--repeats must be at least 1")
    from playwright.sync_api import sync_playwright

    started = datetime.now(timezone.utc)
    load_start = load_average()
    with tempfile.TemporaryDirectory() as tmp:
        folder = Path(tmp)
        port = free_port()
        env = {**os.environ, "HF_HUB_OFFLINE": "1", "CLASSMAP_JOBS_DIR": str(folder / "jobs")}
        command = [sys.executable, "-m", "classmap.app.cli", "serve", "--host", "127.0.0.1",
                   "--port", str(port)]
        if options.cache:
            command += ["--cache-dir", options.cache]
        server = serve_until_done(command, ROOT, env, folder / "server.log", port)
        url = next(server)
        try:
            with sync_playwright() as playwright:
                browser = playwright.chromium.launch(executable_path=str(CHROMIUM),
                                                     args=CHROMIUM_ARGS)
                bench = Bench(browser, url, options.repeats, options.cache)
                for name in pages:  # warm-up: the cache, the server's memory, the browser
                    started_page = time.perf_counter()
                    RUNNERS[name](bench)
                    print(f"warm-up {name}: {time.perf_counter() - started_page:.1f} s",
                          flush=True)
                bench.recording = True
                for repeat in range(options.repeats):
                    for name in pages:
                        try:
                            RUNNERS[name](bench)
                        except Exception as error:  # the other pages still report
                            bench.failures.append(f"repeat {repeat + 1}: {error}")
                            print(f"FAILED {error}", flush=True)
                            for context in bench.browser.contexts:
                                context.close()
                    print(f"repeat {repeat + 1}/{options.repeats} done", flush=True)
                    if repeat + 1 < options.repeats:
                        report(bench, options, started, load_start, repeat + 1)
                browser.close()
        except BaseException:
            print((folder / "server.log").read_text()[-3000:], file=sys.stderr)
            raise
        finally:
            next(server, None)
    report(bench, options, started, load_start, repeats_done=options.repeats)
    return 0


if __name__ == "__main__":
    sys.exit(main())
