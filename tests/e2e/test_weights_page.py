"""The Weight distributions page in a real browser: open it on the embedded default,
click a class in the scatter (it becomes the focal class, the histogram follows), click
a node of the split icicle (it is outlined, its channels are listed) — screenshot in
``test-artifacts/``."""

from __future__ import annotations

import re
from urllib.parse import parse_qs, urlparse

import pytest

from tests.e2e.test_dashboard import TICK_LABEL_OVERFLOW

pytestmark = pytest.mark.e2e

RENDER_TIMEOUT = 45_000
SCATTER = "document.querySelector('#weights-scatter-graph .js-plotly-plot')"
# The class point farthest (on screen) from every other one, and where it is.
PICK_POINT = """() => {
  const gd = """ + SCATTER + """;
  const t = gd._fullData[0], layout = gd._fullLayout, box = gd.getBoundingClientRect();
  const px = t.x.map(v => box.left + layout._size.l + layout.xaxis.l2p(v));
  const py = t.y.map(v => box.top + layout._size.t + layout.yaxis.l2p(v));
  let best = -1, bestD = -1;
  for (let i = 0; i < px.length; i++) {
    let nearest = Infinity;
    for (let j = 0; j < px.length; j++) {
      if (j !== i) { nearest = Math.min(nearest, (px[i] - px[j]) ** 2 + (py[i] - py[j]) ** 2); }
    }
    if (nearest > bestD) { bestD = nearest; best = i; }
  }
  return {id: t.customdata[best][0], name: t.text[best], px: px[best], py: py[best]};
}"""
HISTOGRAM_TITLE = ("() => document.querySelector('#weights-histogram-graph .js-plotly-plot')"
                   "?.layout?.title?.text || ''")
ICICLE = "document.querySelector('#weights-icicle-graph .js-plotly-plot')"
# Screen position of the icicle bar whose customdata (sign path) is the given one, with
# its extent in data units: a bar spans x ± width/2 and y from base to base + 1.
ICICLE_NODE = """(path) => {
  const gd = """ + ICICLE + """;
  const t = gd && gd._fullData[0];
  const i = t ? Array.from(t.customdata).indexOf(path) : -1;
  if (i < 0) { return null; }
  gd.scrollIntoView({block: "center"});
  const layout = gd._fullLayout, box = gd.getBoundingClientRect();
  const x = t.x[i], half = t.width[i] / 2, y = t.base[i] + 0.5;
  return {x: box.left + layout._size.l + layout.xaxis.l2p(x),
          y: box.top + layout._size.t + layout.yaxis.l2p(y),
          x0: x - half, x1: x + half, y0: t.base[i]};
}"""
# The icicle's outline shapes, as drawn.
ICICLE_OUTLINE = "() => (" + ICICLE + "?._fullLayout?.shapes || []).map(s => [s.x0, s.x1, s.y0])"


def query_of(url: str) -> dict[str, str]:
    return {key: values[0] for key, values in parse_qs(urlparse(url).query).items()}


def click_at(page, x: float, y: float) -> None:
    page.mouse.move(x, y)
    page.wait_for_timeout(150)
    page.mouse.click(x, y)


def test_weights_page(dash_server, new_page, artifacts_dir):
    page = new_page()
    page.goto(dash_server + "/weights")
    page.wait_for_selector("#weights-scatter-graph .scatterlayer .trace .point",
                           timeout=RENDER_TIMEOUT)
    page.wait_for_selector("#weights-overview-graph .barlayer .point", timeout=RENDER_TIMEOUT)
    assert page.inner_text("#weights-focal-title") == "No focal class"
    axes = page.evaluate(TICK_LABEL_OVERFLOW)
    assert {"weights-overview-graph", "weights-scatter-graph"} <= {a[0] for a in axes}, axes
    assert all(overflow == "allow" for *_, overflow in axes), axes

    # 1. Click a class in the scatter: it becomes the focal class, in the URL too.
    point = page.evaluate(PICK_POINT)
    click_at(page, point["px"], point["py"])
    page.wait_for_function(f"location.search.includes('focal={point['id']}')", timeout=30_000)
    page.wait_for_function(
        f"document.querySelector('#weights-focal-title')?.innerText.includes({point['id']!r})",
        timeout=30_000)
    page.wait_for_function(f"({HISTOGRAM_TITLE})() === 'Weights of ' + {point['name']!r}",
                           timeout=30_000)
    table = page.inner_text("#weights-fit-table")
    assert "MLE κ" in table and "status" in table and "nan" not in table.lower()
    # The scatter marks the class — a ring labelled with its name on its point, drawn by a
    # relayout of the scatter (the 1,000 points are not sent or drawn again).
    page.wait_for_function(f"({SCATTER}._fullLayout.shapes || []).some(s => s.name === "
                           f"'focal-mark' && s.label.text === {point['name']!r})",
                           timeout=30_000)
    ring = page.evaluate(f"""() => {{
      const gd = {SCATTER}, s = gd._fullLayout.shapes.find(s => s.name === 'focal-mark');
      const box = gd.getBoundingClientRect();
      return {{px: box.left + gd._fullLayout._size.l + gd._fullLayout.xaxis.l2p(s.xanchor),
               py: box.top + gd._fullLayout._size.t + gd._fullLayout.yaxis.l2p(s.yanchor),
               label: Array.from(gd.querySelectorAll('.shapelayer text, .layer-above text'))
                 .map(t => t.textContent)}};
    }}""")
    assert abs(ring["px"] - point["px"]) < 1 and abs(ring["py"] - point["py"]) < 1, (ring, point)
    assert point["name"] in ring["label"], ring

    # 2. Click the "+" node of the split icicle (bars): it is outlined, its channels listed.
    page.wait_for_function(
        f"{ICICLE}?.data?.[0]?.text?.[0]?.startsWith({point['name'] + '<br>'!r})",
        timeout=30_000)
    page.wait_for_selector("#weights-icicle-graph .barlayer .point", timeout=30_000)
    page.wait_for_timeout(500)  # let plotly finish drawing before clicking
    assert page.evaluate(ICICLE_OUTLINE) == []
    node = page.evaluate(ICICLE_NODE, "+")
    assert node is not None, "the icicle has no '+' node"
    click_at(page, node["x"], node["y"])
    page.wait_for_function("new URLSearchParams(location.search).get('snode')",
                           timeout=30_000)
    snode = query_of(page.url)["snode"]
    assert snode == "+"
    page.wait_for_function(f"({ICICLE_OUTLINE})().length === 1", timeout=30_000)
    assert page.evaluate(ICICLE_OUTLINE) == [[node["x0"], node["x1"], node["y0"]]]
    page.wait_for_function("document.querySelector('#weights-node-title')?.innerText"
                           ".startsWith('Node ')", timeout=30_000)
    title = page.inner_text("#weights-node-title")
    assert title.startswith(f"Node {snode}:"), (title, page.url)
    count = int(re.search(r"(\d+) channels", title).group(1))
    assert count > 0
    page.wait_for_function("document.querySelectorAll('#weights-node-channels li').length "
                           f"=== {count}", timeout=30_000)
    assert query_of(page.url)["focal"] == point["id"]
    page.mouse.move(5, 5)
    page.evaluate("window.scrollTo(0, 0)")
    page.wait_for_timeout(300)
    page.screenshot(path=str(artifacts_dir / "e2e-weights-page.png"), full_page=True)

    # 3. Another page, by the navigation link: the focal class goes along, and this
    #    page's callbacks raise no console errors there (checked at teardown).
    page.click("#shell-nav a[href^='/?'], #shell-nav a[href='/']")
    page.wait_for_function("location.pathname === '/'", timeout=30_000)
    page.wait_for_timeout(1500)
    assert query_of(page.url)["focal"] == point["id"]


def test_the_icicle_label_width_estimate_is_a_lower_bound(browser):
    """The icicle leaves out labels estimated wider than their bar (plotly would measure
    each only to hide it): the estimate must never exceed the width Chromium draws at 10 px
    in the figures' font, or a label that fits would be lost."""
    from classmap.app.pages.weights.figures import label_min_px
    from classmap.app.shell.figures import FONT

    texts = ["+", "-", "+-", "++++", "--+-", "+-+-+-", "1,280 ch.", "45 ch.", "7 ch.",
             "hair slide", "+-+- · 45 ch.", "Dungeness crab<br>1,280 ch.", "+<br>625 ch."]
    page = browser.new_page()
    drawn = page.evaluate("""([texts, font]) => {
      const svg = document.createElementNS('http://www.w3.org/2000/svg', 'svg');
      document.body.appendChild(svg);
      return texts.map((text) => Math.max(...text.split('<br>').map((line) => {
        const node = document.createElementNS('http://www.w3.org/2000/svg', 'text');
        node.setAttribute('style', 'font-family: ' + font + '; font-size: 10px');
        node.textContent = line;
        svg.appendChild(node);
        return node.getComputedTextLength();
      })));
    }""", [texts, FONT])
    page.close()
    for text, width in zip(texts, drawn):
        assert label_min_px(text) <= width, (text, label_min_px(text), width)
