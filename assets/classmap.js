/*
 * Classmap's browser code: every clientside callback of the app is a function of
 * window.dash_clientside.classmap (called through dash.ClientsideFunction; see
 * app/shell/clientside.py), built on the helpers of window.classmap.
 *
 * The shared selection's rules (defaults, which fields reset or clear which, how a
 * field is written in the URL) are defined once, in Python (app/shell/selection.py's
 * field registry); the server puts them in every page as JSON
 * (<script type="application/json" id="classmap-config">, with the constants each
 * callback was registered with), so the browser applies exactly the same rules
 * without a server round trip. tests/app/shell/test_url_agreement.py runs this file in
 * Chromium and checks that the server decodes every URL it writes.
 */
(function () {
  "use strict";

  var CONFIG_ELEMENT = "classmap-config";
  var configCache = null;

  /* The page's browser config {selection: schema, callbacks: {key: constants}}. */
  function config() {
    if (configCache) { return configCache; }
    var element = document.getElementById(CONFIG_ELEMENT);
    if (!element) { throw new Error("classmap: the page has no #" + CONFIG_ELEMENT + " config"); }
    configCache = JSON.parse(element.textContent);
    return configCache;
  }

  function schema(rules) { return rules || config().selection; }

  function same(a, b) {
    return JSON.stringify(a === undefined ? null : a) === JSON.stringify(b === undefined ? null : b);
  }

  function isEmpty(value, spec) {
    return value === null || value === undefined ||
      (Array.isArray(value) && value.length === 0) || same(value, spec.default);
  }

  /* ``sel`` with ``changes`` applied, plus the resets and clears they imply. */
  function applyUpdate(sel, changes, rules) {
    rules = schema(rules);
    var updated = Object.assign({}, sel || {});
    var changed = {};
    Object.keys(changes).forEach(function (name) {
      if (!same(updated[name], changes[name])) { changed[name] = true; }
      updated[name] = changes[name];
    });
    Object.keys(rules.fields).forEach(function (name) {
      if (name in changes) { return; }
      var spec = rules.fields[name];
      if (spec.resets_on.some(function (other) { return changed[other]; })) {
        updated[name] = spec.default;
      }
    });
    Object.keys(changes).forEach(function (name) {
      var spec = rules.fields[name];
      if (!spec || isEmpty(changes[name], spec)) { return; }
      spec.clears.forEach(function (cleared) {
        if (!(cleared in changes)) { updated[cleared] = rules.fields[cleared].default; }
      });
    });
    return updated;
  }

  function compactSet(values) {
    var sorted = Array.from(new Set(values.map(Number))).sort(function (a, b) { return a - b; });
    var parts = [];
    var start = null, previous = null;
    sorted.forEach(function (value) {
      if (start === null) { start = previous = value; }
      else if (value === previous + 1) { previous = value; }
      else { parts.push(start === previous ? "" + start : start + "-" + previous); start = previous = value; }
    });
    if (start !== null) { parts.push(start === previous ? "" + start : start + "-" + previous); }
    return parts.join(",");
  }

  /* The URL query of a selection: fields in registry order, defaults left out (unless
     always in the URL), sets compacted ("3-7,12"), values percent-encoded except commas.
     The server decodes it with app/shell/selection.py's parse_query. */
  function encodeQuery(sel, rules) {
    rules = schema(rules);
    var parts = [];
    rules.order.forEach(function (name) {
      var spec = rules.fields[name];
      var value = sel[name];
      if (value === undefined) { value = spec.default; }
      if (value === null || (Array.isArray(value) && value.length === 0)) { return; }
      if (same(value, spec.default) && !spec.always) { return; }
      var text;
      if (spec.set) {
        if (value.length > rules.max_query_classes) { return; }
        text = compactSet(value);
      } else {
        text = String(value);
      }
      parts.push(name + "=" + encodeURIComponent(text).replace(/%2C/g, ","));
    });
    return "?" + parts.join("&");
  }

  /* The props (after the last ".") that triggered the running clientside callback. */
  function triggeredProps() {
    var ctx = window.dash_clientside.callback_context;
    if (!ctx || !ctx.triggered) { return []; }
    return ctx.triggered.map(function (t) {
      var propId = t.prop_id || "";
      return propId.slice(propId.lastIndexOf(".") + 1);
    });
  }

  var noUpdate = function () { return window.dash_clientside.no_update; };

  var TYPED = {
    i1: Int8Array, u1: Uint8Array, u1c: Uint8ClampedArray, i2: Int16Array, u2: Uint16Array,
    i4: Int32Array, u4: Uint32Array, f4: Float32Array, f8: Float64Array,
  };

  function isSpec(value) {
    return value !== null && typeof value === "object" && !Array.isArray(value) &&
      typeof value.dtype === "string" && typeof value.bdata === "string";
  }

  /* A base64 typed-array spec {dtype, bdata, shape} → a typed array (2-D: rows of views). */
  function decodeSpec(spec) {
    var Type = TYPED[spec.dtype];
    if (!Type) { return spec; }
    var text = atob(spec.bdata);
    var bytes = new Uint8Array(text.length);
    for (var i = 0; i < text.length; i++) { bytes[i] = text.charCodeAt(i); }
    var flat = new Type(bytes.buffer);
    var shape = spec.shape === undefined ? [flat.length] : String(spec.shape).split(",").map(Number);
    if (shape.length === 1) { return flat; }
    var rows = [], width = shape[1];
    for (var r = 0; r < shape[0]; r++) { rows.push(flat.subarray(r * width, (r + 1) * width)); }
    return rows;
  }

  function decodeDeep(value) {
    if (isSpec(value)) { return decodeSpec(value); }
    if (Array.isArray(value)) { return value.map(decodeDeep); }
    if (value !== null && typeof value === "object" && !ArrayBuffer.isView(value)) {
      var out = {};
      Object.keys(value).forEach(function (key) { out[key] = decodeDeep(value[key]); });
      return out;
    }
    return value;
  }

  /* Run ``draw`` for graph ``gd`` when the page is idle (at most 400 ms later), after
     any draws queued before it for the same graph. */
  function later(gd, draw) {
    var queue = gd.__classmapQueue || (gd.__classmapQueue = []);
    queue.push(draw);
    if (queue.length > 1) { return; }
    var idle = window.requestIdleCallback || function (fn) { return setTimeout(fn, 50); };
    idle(function () {
      gd.__classmapQueue = [];
      queue.forEach(function (fn) { fn(); });
    }, {timeout: 400});
  }

  /* -- figures of many points, drawn when their graph scrolls into view ----------------------
     A figure with more than LAZY_POINTS markers (the class map of a 21k-class head: 21,843
     SVG points, ≈ 1 s of main-thread work on a 2-core machine, more under load) whose
     graph is out of view (LAZY_MARGIN px around the viewport count as in view) is held
     here, not drawn: the graph shows a one-line note, and the figure is drawn
     (dash_clientside.set_props) when the graph scrolls into view. So the first render's
     heatmap and tree are not followed by a second of frozen page for a view below the
     fold (the Classes page's class map at 1480 × 1250). Overlays that arrive meanwhile
     are written into the held figure. A graph in view is drawn at once, as before. */
  var LAZY_POINTS = 3000;
  var LAZY_MARGIN = 0;
  var held = {};  // graph id → {figure, observer}

  /* The markers a figure draws: the points of its traces whose mode has markers. */
  function markerPoints(figure) {
    return (figure.data || []).reduce(function (total, trace) {
      var mode = trace.mode || "";
      var x = trace.x;
      return total + (mode.indexOf("markers") >= 0 && x && x.length ? x.length : 0);
    }, 0);
  }

  function inView(element, margin) {
    var box = element.getBoundingClientRect();
    if (!box.width && !box.height) { return false; }  // not displayed
    var height = window.innerHeight || document.documentElement.clientHeight;
    var width = window.innerWidth || document.documentElement.clientWidth;
    return box.bottom >= -margin && box.top <= height + margin &&
      box.right >= -margin && box.left <= width + margin;
  }

  /* Forget what is held for ``graphId`` (a newer figure came). */
  function release(graphId) {
    var entry = held[graphId];
    if (!entry) { return; }
    delete held[graphId];
    if (entry.observer) { entry.observer.disconnect(); }
  }

  /* Draw the figure held for ``graphId`` now. */
  function drawHeld(graphId) {
    var entry = held[graphId];
    if (!entry) { return; }
    release(graphId);
    var props = {figure: entry.figure};
    window.dash_clientside.set_props(graphId, props);
  }

  /* Hold ``figure`` (``points`` markers) for graph element ``element`` until it scrolls
     into view; → the note the graph shows meanwhile. */
  function hold(element, figure, points) {
    var graphId = element.id;
    release(graphId);
    var entry = held[graphId] = {figure: figure, observer: null};
    if (window.IntersectionObserver) {
      entry.observer = new IntersectionObserver(function (entries) {
        if (entries.some(function (e) { return e.isIntersecting; })) { drawHeld(graphId); }
      }, {rootMargin: LAZY_MARGIN + "px"});
      entry.observer.observe(element);
    } else {  // no IntersectionObserver: draw a second later
      setTimeout(function () { drawHeld(graphId); }, 1000);
    }
    var layout = figure.layout || {};
    return {data: [], layout: {
      template: layout.template, height: layout.height, margin: {l: 10, r: 10, t: 10, b: 10},
      xaxis: {visible: false}, yaxis: {visible: false},
      annotations: [{text: points.toLocaleString("en-US") + " points: drawn when this graph " +
                           "scrolls into view…",
                     showarrow: false, x: 0.5, y: 0.5, xref: "paper", yref: "paper",
                     font: {size: 14, color: "#7b8794"}}],
    }};
  }

  /* Write overlay {traces: {index: {attr: value}}, layout} into ``figure`` (Dash's copy
     of a drawn figure, or a held one), so a later draw shows it. */
  function mergeOverlay(overlay, figure) {
    var traces = overlay.traces || {};
    if (figure && figure.data) {
      Object.keys(traces).map(Number).forEach(function (index) {
        Object.keys(traces[index]).forEach(function (attr) {
          var path = attr.split("."), target = figure.data[index];
          if (!target) { return; }
          for (var i = 0; i < path.length - 1; i++) {
            target[path[i]] = Object.assign({}, target[path[i]] || {});
            target = target[path[i]];
          }
          target[path[path.length - 1]] = traces[index][attr];
        });
      });
    }
    if (figure && overlay.layout) {
      figure.layout = Object.assign({}, figure.layout || {}, overlay.layout);
    }
  }

  /* plotly's hover on an image trace with a `source` reads the decoded pixels, which
     exist only once the browser has loaded the image; a hover before that throws
     ("reading 'el'"). Skip such hovers (a `plotly_beforehover` handler returning false
     cancels one); the next mouse move after the load hovers normally. */
  function guardImageHover(graphId) {
    // The figure can arrive before the graph's first draw has set plotly up on it.
    whenFound(function () {
      var gd = document.querySelector("#" + graphId + " .js-plotly-plot");
      return gd && gd.on ? gd : null;
    }, function (gd) {
      if (gd.__classmapHoverGuard) { return; }
      gd.__classmapHoverGuard = true;
      gd.on("plotly_beforehover", function () {
        return !(gd._fullData || []).some(function (t) { return t._hasSource && !t._canvas; });
      });
    });
  }

  function whenElement(id, fn) {
    whenFound(function () { return document.getElementById(id); }, fn);
  }

  /* Run ``fn(thing)`` once ``find()`` returns it, trying once a frame for up to ≈ 10 s. */
  function whenFound(find, fn, tries) {
    var thing = find();
    if (thing) { fn(thing); return; }
    if ((tries || 0) < 600) {
      window.requestAnimationFrame(function () { whenFound(find, fn, (tries || 0) + 1); });
    }
  }

  /* ``table`` {header, rows, code, numeric, explain} as a <table> in ``container`` (null:
     empty it); ``explain``: per column, a tooltip explaining it (or null). */
  function drawTable(container, table) {
    if (!table) { container.replaceChildren(); return; }
    var code = table.code || [], numeric = table.numeric || [];
    var element = document.createElement("table");
    var head = element.createTHead().insertRow();
    table.header.forEach(function (text, column) {
      var cell = document.createElement("th");
      cell.textContent = text;
      var explanation = (table.explain || [])[column];
      if (explanation) {  // as app/shell/widgets.py's explained(): an info mark with a tooltip
        var mark = document.createElement("span");
        mark.className = "cm-info";
        mark.textContent = "i";
        mark.title = explanation;
        mark.setAttribute("role", "note");
        mark.setAttribute("aria-label", explanation);
        cell.appendChild(mark);
        cell.title = explanation;
      }
      if (numeric.indexOf(column) >= 0) { cell.className = "cm-num"; }
      head.appendChild(cell);
    });
    var body = element.createTBody();
    table.rows.forEach(function (row) {
      var line = body.insertRow();
      row.forEach(function (text, column) {
        var cell = line.insertCell();
        if (code.indexOf(column) >= 0) {
          var inner = document.createElement("code");
          inner.textContent = text;
          cell.appendChild(inner);
        } else { cell.textContent = text; }
        if (numeric.indexOf(column) >= 0) { cell.className = "cm-num"; }
      });
    });
    container.replaceChildren(element);
  }

  /* The key of the running callback: "<first output>|<first input>", each "id.property"
     (a pattern id by its type) — as app/shell/clientside.py's callback_key. */
  function dependencyKey(list) {
    var first = list;
    while (Array.isArray(first)) { if (!first.length) { return null; } first = first[0]; }
    if (!first || first.id === undefined) { return null; }
    var id = typeof first.id === "string" ? first.id : first.id.type;
    return id + "." + String(first.property).split("@")[0];
  }

  /* The constants the running clientside callback was registered with ({} if none). */
  function constants() {
    var ctx = window.dash_clientside.callback_context || {};
    var output = dependencyKey(ctx.outputs_list), input = dependencyKey(ctx.inputs_list);
    if (output === null || input === null) { return {}; }
    return config().callbacks[output + "|" + input] || {};
  }


  /* -- downloads ---------------------------------------------------------------------------
     Every graph's modebar download ("camera") button writes the format chosen in the header
     ("Images as") under a name made of the view, the model and the selection
     (app/shell/widgets.py's download_name; each graph's view and fields are in the page's
     config, from app/shell/clientside.py's name_downloads). Both are read at the click, so
     a change applies at once to every graph without redrawing any. */
  var downloads = {selection: null, format: "png"};

  function namePart(value) {
    return String(value).replace(/[^A-Za-z0-9_.-]+/g, "_").replace(/^_+|_+$/g, "");
  }

  /* A field's value in a name (widgets.py's _value_text): a set by its size, a split
     node's sign path by letters ("+-" → "pm"). */
  function valueText(value) {
    if (Array.isArray(value)) { return String(value.length); }
    var text = String(value);
    return /^[+-]+$/.test(text) ? text.replace(/\+/g, "p").replace(/-/g, "m") : text;
  }

  /* ``classmap-<model>-<view>[-<field>-<value>…]`` for graph ``graphId`` (null: not named). */
  function downloadName(graphId, sel) {
    var spec = (config().downloads || {})[graphId];
    if (!spec) { return null; }
    sel = sel || {};
    var fields = schema().fields;
    var parts = ["classmap", sel.model, spec.view];
    spec.fields.forEach(function (name) {
      var value = sel[name];
      if (value === null || value === undefined || (Array.isArray(value) && !value.length)) { return; }
      if (fields[name] && same(value, fields[name]["default"])) { return; }
      parts.push(name + "-" + valueText(value));
    });
    return parts.filter(function (part) { return part !== null && part !== undefined && part !== ""; })
      .map(namePart).join("-");
  }

  function graphIdOf(gd) {
    var holder = gd.parentElement && gd.parentElement.closest("[id]");
    return holder ? holder.id : gd.id;
  }

  /* The modebar options of graph ``gd`` now: {format, filename, scale}. */
  function downloadOptions(gd) {
    var base = (gd._context && gd._context.toImageButtonOptions) || {};
    var name = downloadName(graphIdOf(gd), downloads.selection);
    return Object.assign({}, base, {format: downloads.format}, name ? {filename: name} : {});
  }

  function isDownloadButton(button) {
    return /^Download/.test(button.getAttribute("data-title") || "");
  }

  /* Put the current format and name into the button's tooltip and, for a click
     (``apply``), into plotly's copy of ``gd``'s config, which plotly reads in its click
     handler; restored right after: a config that differs from Dash's ``config`` prop makes
     the graph's next Plotly.react recalculate and redraw it in full (issue 14: a focal-mark
     patch redrew every class point). */
  function prepareDownload(gd, apply) {
    if (!gd._context) { return; }
    var options = downloadOptions(gd);
    if (apply) {
      var before = gd._context.toImageButtonOptions;
      gd._context.toImageButtonOptions = options;
      setTimeout(function () {
        if (gd._context && gd._context.toImageButtonOptions === options) {
          gd._context.toImageButtonOptions = before;
        }
      }, 0);
    }
    gd.querySelectorAll(".modebar-btn").forEach(function (button) {
      if (isDownloadButton(button)) {
        button.setAttribute("data-title", "Download as " + options.format.toUpperCase() +
          (options.filename ? " (" + options.filename + "." + options.format + ")" : ""));
      }
    });
  }

  /* Capture phase: runs before plotly's own click handler on the button (and a redraw may
     have rebuilt plotly's config from Dash's since the last state change). */
  function onModebarEvent(event) {
    var button = event.target && event.target.closest && event.target.closest(".modebar-btn");
    if (!button || !isDownloadButton(button)) { return; }
    var gd = button.closest(".js-plotly-plot");
    if (gd) { prepareDownload(gd, event.type === "click"); }
  }
  document.addEventListener("click", onModebarEvent, true);
  document.addEventListener("mouseover", onModebarEvent, true);


  /* -- the heatmap's and dendrogram's shared zoom ---------------------------------------------
     Both draw leaf positions on x (a leaf's cell spans position ± 0.5; the heatmap's y axis
     runs downwards). A drag-zoom in either becomes the selection's ``range`` ([first, last]
     columns, then rows when they differ: app/shell/selection.py), which is in the URL and
     which applyRange draws in both graphs. Each graph's full x range is remembered from the
     server's figure (decodeFigure) to go back to on a reset. */
  var homeRanges = {};

  function plotOf(graphId) {
    var gd = document.querySelector("#" + graphId + " .js-plotly-plot");
    return gd && gd._fullLayout ? gd : null;
  }

  /* relayoutData → [first, last(, first row, last row)] leaf positions, null (a reset) or
     undefined (not a zoom: an overlay's shapes). */
  function rangeOfRelayout(relayout, withRows) {
    if (!relayout) { return undefined; }
    if (relayout["xaxis.autorange"]) { return null; }
    var x0 = relayout["xaxis.range[0]"], x1 = relayout["xaxis.range[1]"];
    if (x0 === undefined || x1 === undefined) { return undefined; }
    var cells = function (a, b) {
      return [Math.floor(Math.min(a, b) + 0.5), Math.ceil(Math.max(a, b) - 0.5)];
    };
    var range = cells(x0, x1);
    var y0 = relayout["yaxis.range[0]"], y1 = relayout["yaxis.range[1]"];
    if (withRows && y0 !== undefined && y1 !== undefined) {
      var rows = cells(y0, y1);
      if (!same(rows, range)) { range = range.concat(rows); }
    }
    return range[1] < range[0] ? undefined : range;
  }

  function closeTo(a, b) {
    return Array.isArray(a) && Array.isArray(b) && a.length === b.length &&
      a.every(function (v, i) { return Math.abs(v - b[i]) < 0.01; });
  }

  /* Draw the selection's range (null: the whole extent) in the heatmap and the dendrogram;
     a graph already showing it is left alone (no relayout event, no loop). */
  function drawRange(range, c) {
    var home = homeRanges[c.dendrogram];
    var cols = range ? [range[0] - 0.5, range[1] + 0.5] : home;
    var rows = range ? (range.length === 4 ? [range[3] + 0.5, range[2] - 0.5]
                                           : [range[1] + 0.5, range[0] - 0.5])
                     : (home ? [home[1], home[0]] : null);
    if (!cols) { return; }
    var tree = plotOf(c.dendrogram);
    if (tree && !closeTo(tree._fullLayout.xaxis.range, cols)) {
      window.Plotly.relayout(tree, {"xaxis.range": cols});
    }
    var heat = plotOf(c.heatmap);
    if (heat && !(closeTo(heat._fullLayout.xaxis.range, cols) &&
                  closeTo(heat._fullLayout.yaxis.range, rows))) {
      // Both axes at once: the server draws a finer tile for the region (heatmapZoom).
      window.Plotly.relayout(heat, {"xaxis.range[0]": cols[0], "xaxis.range[1]": cols[1],
                                    "yaxis.range[0]": rows[0], "yaxis.range[1]": rows[1]});
    }
  }


  /* -- single-choice pickers (dcc.Dropdown) ----------------------------------------------------
     Dash's dropdown opens with the focus on the chosen option, where typed letters are lost,
     and Enter there — or on a search whose first match is the chosen class — toggles the
     choice off, clearing the current class. In an open single-choice list: a typed letter
     moves the focus to the search box (the letter goes there), and Enter on the option
     already chosen keeps it (the list closes; clearing stays the "×" button's job). */
  function openSingleChoice(target) {
    var content = target && target.closest && target.closest(".dash-dropdown-content");
    if (!content || !content.querySelector("input[type=radio]")) { return null; }
    return content;
  }

  function chosenWouldBeToggled(target, content) {
    if (target.matches("input[type=radio]")) { return target.checked; }
    if (target.matches(".dash-dropdown-search") && target.value) {
      var first = content.querySelector("input[type=radio]");
      return !!(first && first.checked);
    }
    return false;
  }

  function onPickerKey(event) {
    var content = openSingleChoice(event.target);
    if (!content) { return; }
    var search = content.querySelector(".dash-dropdown-search");
    var printable = event.key && event.key.length === 1 && !event.ctrlKey && !event.metaKey &&
      !event.altKey && event.key !== " ";
    if (event.type === "keydown" && printable && search && event.target !== search) {
      search.focus();  // the letter is typed into the search box, which now has the focus
      return;
    }
    if (event.key === "Enter" && chosenWouldBeToggled(event.target, content)) {
      event.preventDefault();
      event.stopPropagation();
      if (event.type === "keyup") {
        document.dispatchEvent(new KeyboardEvent("keydown", {key: "Escape", bubbles: true}));
        var trigger = document.querySelector("[aria-controls='" + content.id + "']");
        if (trigger && trigger.getAttribute("aria-expanded") === "true") { trigger.click(); }
      }
    }
  }
  document.addEventListener("keydown", onPickerKey, true);
  document.addEventListener("keyup", onPickerKey, true);

  /* A click that opens a searchable picker puts the focus in its search box, so what the
     user types next goes there (Dash's dropdown leaves the focus on its button, and the
     letters typed while its first key moves the focus over can be lost). */
  function focusSearchOnOpen(event) {
    var button = event.target && event.target.closest && event.target.closest("button.dash-dropdown");
    if (!button) { return; }
    var tries = 0;
    var look = function () {
      var content = document.getElementById(button.getAttribute("aria-controls") || "");
      var search = content && content.querySelector(".dash-dropdown-search");
      if (search && button.getAttribute("aria-expanded") === "true") {
        if (document.activeElement === button || document.activeElement === document.body) {
          search.focus();
        }
        return;
      }
      if (++tries < 30) { window.requestAnimationFrame(look); }
    };
    window.requestAnimationFrame(look);
  }
  document.addEventListener("click", focusSearchOnOpen, true);

  window.classmap = {
    applyUpdate: applyUpdate,
    encodeQuery: encodeQuery,

    /* A figure from the server with its typed-array specs decoded, once. Plotly decodes
       specs on every Plotly.react, so a figure that keeps them is recomputed in full
       even when a Patch changed only a shape; decoded arrays are compared by reference
       and left alone. */
    /* Apply a server-made overlay {traces: {index: {attr: value}}, layout: {attr: value}}
       to the drawn graph with Plotly.restyle / relayout (milliseconds), and write the
       same values into Dash's copy of the figure so a later redraw keeps them.
       ``deferred``: draw when the page is idle (a secondary view: a restyle of its
       points re-plots the whole graph, ≈ 100 ms, and must not hold up the views the
       user clicked in); overlays of one graph are drawn in the order they came.
       ``deferred === "soon"``: right after the current task, so graphs redrawn by the
       same response (their Plotly.react runs in this task) are drawn first. */
    applyOverlay: function (overlay, figure, graphId, deferred) {
      if (overlay && held[graphId]) {  // not drawn yet: its draw will show the overlay
        mergeOverlay(overlay, held[graphId].figure);
        return noUpdate();
      }
      var gd = document.querySelector("#" + graphId + " .js-plotly-plot");
      if (!overlay || !gd || !gd._fullLayout) { return noUpdate(); }
      var traces = overlay.traces || {};
      var indices = Object.keys(traces).map(Number);
      var draw = function () {
        // One restyle for all traces (if any), one relayout for the shapes: Plotly.update
        // and annotation changes would re-plot the whole graph (≈ 100× slower here).
        if (indices.length) {
          var update = {};
          indices.forEach(function (index, position) {
            Object.keys(traces[index]).forEach(function (attr) {
              if (!update[attr]) { update[attr] = indices.map(function () { return undefined; }); }
              update[attr][position] = traces[index][attr];
            });
          });
          window.Plotly.restyle(gd, update, indices);
        }
        if (overlay.layout) { window.Plotly.relayout(gd, overlay.layout); }
      };
      if (deferred === "soon") {
        window.setTimeout(draw, 0);
      } else if (deferred) { later(gd, draw); } else { draw(); }
      // Keep Dash's copy of the figure in step, so a later redraw keeps the overlay.
      if (figure && figure.data) {
        mergeOverlay({traces: traces}, figure);
      }
      if (figure && figure.layout && overlay.layout) { Object.assign(figure.layout, overlay.layout); }
      return noUpdate();
    },

    /* ``lazy`` (the callback's constant): true — a graph out of view is drawn when it
       scrolls into view; false — at once; undefined — lazily when the figure has more
       than LAZY_POINTS markers (see "figures of many points" above). */
    decodeFigure: function (figure, graphId, lazy) {
      if (graphId) { guardImageHover(graphId); }
      if (!figure) { return noUpdate(); }
      var xaxis = (figure.layout || {}).xaxis;
      if (graphId && xaxis && Array.isArray(xaxis.range)) { homeRanges[graphId] = xaxis.range.slice(); }
      var decoded = Object.assign({}, figure, {data: (figure.data || []).map(decodeDeep)});
      if (!graphId) { return decoded; }
      release(graphId);
      var points = markerPoints(decoded);
      var element = document.getElementById(graphId);
      if (element && (lazy === true || (lazy !== false && points > LAZY_POINTS)) &&
          !inView(element, LAZY_MARGIN)) {
        return hold(element, decoded, points);
      }
      return decoded;
    },

    /* Apply ``changes`` to the selection unless they change nothing. */
    update: function (sel, changes, rules) {
      if (!sel || !changes) { return noUpdate(); }
      var updated = applyUpdate(sel, changes, rules);
      return same(updated, sel) ? noUpdate() : updated;
    },

    /* Fill the element ``containerId`` with one <li> per item (text, never HTML). The
       element has no React children, so React leaves what is drawn here alone; as
       Dash components, hundreds of items slowed every update of the page. */
    renderList: function (items, containerId) {
      whenElement(containerId, function (container) {
        var fragment = document.createDocumentFragment();
        (items || []).forEach(function (text) {
          var item = document.createElement("li");
          item.textContent = text;
          fragment.appendChild(item);
        });
        container.replaceChildren(fragment);
      });
      return noUpdate();
    },

    /* Fill the element ``containerId`` with a table {header, rows, code, numeric}
       (``code``/``numeric``: column indices shown as code / right-aligned), or empty it. */
    renderTable: function (table, containerId) {
      whenElement(containerId, function (container) { drawTable(container, table); });
      return noUpdate();
    },

    /* Set ``prop`` of component ``componentId`` to ``value`` when the page is idle (work
       nobody sees at once, such as a closed picker's options, waits for the views). */
    setWhenIdle: function (componentId, prop, value) {
      if (value === undefined || value === null) { return noUpdate(); }
      var idle = window.requestIdleCallback || function (fn) { return setTimeout(fn, 200); };
      idle(function () {
        var props = {};
        props[prop] = value;
        window.dash_clientside.set_props(componentId, props);
      }, {timeout: 2000});
      return noUpdate();
    },

    config: config,
    constants: constants,
    downloadName: downloadName,
    downloadOptions: function (graphId) {
      var gd = document.querySelector("#" + graphId + " .js-plotly-plot");
      return gd ? downloadOptions(gd) : null;
    },
  };

  /* -- clientside callbacks: window.dash_clientside.classmap ------------------------------
     Each is registered by app/shell/clientside.py's clientside(app, name, …); values fixed
     at registration come from constants(). */

  var same2 = function (a, b) { return JSON.stringify(a) === JSON.stringify(b); };

  /* What a control bound to ``field`` shows for selection ``sel``: the field's value (its
     default when unset), or no update when ``shown`` is that already. */
  var shownValue = function (sel, field, shown, rules) {
    var wanted = sel[field] === undefined ? rules.fields[field].default : sel[field];
    return same(wanted, shown) ? noUpdate() : wanted;
  };

  /* The ready status for the selection's analysis when the status is ready for another
     analysis of the same model and lists the selection's as held in memory (its
     ``ready``, app/shell/callbacks.py ready_status), else null. */
  var heldStatus = function (sel, status) {
    if (!sel || !status || status.state !== "ready" || !Array.isArray(status.ready)) {
      return null;
    }
    var key = [sel.model, sel.metric, sel.linkage];
    if (same2(status.key, key)) { return null; }
    var held = status.ready.some(function (k) { return same2(k, key); });
    return held ? {key: key, state: "ready", message: "", ready: status.ready} : null;
  };

  /* A switch to an analysis the status lists as held → [its ready status, the busy
     note's hidden, its text] (the note shows on a page that says when its views are
     drawn, which hides it), else null. */
  var heldSwitch = function (sel, status, pages, busyText) {
    var held = heldStatus(sel, status);
    if (!held) { return null; }
    var drawn = config().viewsDrawn || [];
    var watched = (pages || []).some(function (id) {
      return id && drawn.indexOf(id.page) >= 0;
    });
    var text = busyText.replace(/\{(\d)\}/g, function (_, i) { return held.key[Number(i)]; });
    return [held, watched ? false : noUpdate(), watched ? text : noUpdate()];
  };

  /* Changes a click makes to the selection (select_on's ``change``), or null. */
  var CHANGES = {
    /* A click on a dendrogram node marker selects its subtree (again: deselects). */
    dendrogramNode: function (value, sel, c) {
      var p = value && value.points && value.points[0];
      if (!p || p.curveNumber !== c.curve || !p.customdata) { return null; }
      var node = p.customdata[0];
      return {node: sel && sel.node === node ? null : node};
    },
    /* A click on a bar whose customdata is a class id makes it the focal class. */
    focalFromCustomdata: function (value) {
      var p = value && value.points && value.points[0];
      return p && p.customdata ? {focal: p.customdata} : null;
    },
    /* A click on a point of trace ``c.curve`` whose customdata is [class id, …] makes
       that class the focal class (the Weights scatter's classes). */
    focalFromPoint: function (value, sel, c) {
      var p = value && value.points && value.points[0];
      if (!p || p.curveNumber !== c.curve || !Array.isArray(p.customdata)) { return null; }
      return p.customdata[0] ? {focal: String(p.customdata[0])} : null;
    },
  };

  window.dash_clientside = window.dash_clientside || {};
  window.dash_clientside.classmap = {
    /* The page's query, resolved by the server while the page was built (the first
       page-query store present) → SELECTION, STATUS, JOB_REQUEST, notice text and class. */
    adoptPageQuery: function (queries) {
      var nothing = noUpdate();
      var query = (queries || []).filter(function (q) { return q; })[0];
      if (!query) { return [nothing, nothing, nothing, nothing, nothing]; }
      return [query.selection, query.status, query.job || nothing,
              query.notice[0], query.notice[1]];
    },

    /* A new analysis key asks the server; a key the status already answers (ready or
       being prepared) costs no request.
       → [the analysis key to request, a status set here, the header's busy note
       (hidden, text)]. A metric or linkage the server listed as held in memory (a ready
       status's ``ready``: the same model's analyses) is ready at once, with no request;
       the busy note shows here, as request_analysis would show it, on a page that says
       when its views are drawn (which hides it). The key store keeps the last key
       asked for, never needed again then: a ready status's list always holds its own
       key, and each status made here carries the list on. */
    analysisKey: function (sel, status, previous, pages) {
      var nothing = [noUpdate(), noUpdate(), noUpdate(), noUpdate()];
      if (!sel) { return nothing; }
      var key = [sel.model, sel.metric, sel.linkage];
      var known = status && same2(status.key, key) &&
        (status.state === "ready" || status.state === "pending");
      if (known) { return nothing; }
      var held = heldSwitch(sel, status, pages, constants().busyText);
      if (held) { return [noUpdate()].concat(held); }
      return same2(key, previous) ? nothing : [key, noUpdate(), noUpdate(), noUpdate()];
    },

    /* A job status store (app/shell/jobs.py) → [its watchdog disabled, its failure bar
       hidden, the failure's text]: the watchdog ticks only while a job is pending; the
       bar shows an error's message (a text node, never markup). */
    failureControls: function (status) {
      var s = status && typeof status === "object" && !Array.isArray(status) ? status : {};
      var failed = s.state === "error";
      return [s.state !== "pending", !failed,
              failed && typeof s.message === "string" ? s.message : ""];
    },

    /* The header's busy note hides when the analysis fails or is cancelled (the failure
       bar or the notice says why). */
    hideOnFailure: function (status) {
      var state = status && typeof status === "object" ? status.state : null;
      return state === "error" || state === "cancelled" ? true : noUpdate();
    },

    /* A page drew its views for an analysis (its drawn store's ``key``) → the busy note
       hides if that is the selection's analysis; an older analysis' views leave it. */
    viewsDrawn: function (drawn, sel) {
      if (!drawn || typeof drawn !== "object" || !sel || typeof sel !== "object") {
        return noUpdate();
      }
      return same2(drawn.key, [sel.model, sel.metric, sel.linkage]) ? true : noUpdate();
    },

    hideNotice: function (clicks) {
      return clicks ? constants().className : noUpdate();
    },

    /* Write the selection into the address bar (no reload, no history entry) and
       into the navigation links, so every page link carries the same view. */
    syncUrl: function (sel) {
      if (!sel) { return [noUpdate(), noUpdate()]; }
      var query = encodeQuery(sel);
      if (window.location.search !== query) {
        window.history.replaceState(window.history.state, "", window.location.pathname + query);
      }
      var ctx = window.dash_clientside.callback_context;
      var links = (ctx.outputs_list && ctx.outputs_list[1]) || [];
      return [query, links.map(function (out) { return out.id.path + query; })];
    },

    /* A store's copy of another (unchanged values and nothing at all are not copied). */
    mirror: function (value, previous) {
      if (value === undefined || value === null || same2(value, previous)) { return noUpdate(); }
      return value;
    },

    relay: function (request) { return request ? request : noUpdate(); },

    /* Two-way binding of one control, or of every control matching a pattern, with the
       selection (bind_field). The selection wins when both changed (a page being
       inserted). A picker's value that none of its options has comes with a provisional
       option (Dash 4's dropdown clears a value that is not among its options; the
       server's options, with the class's full name, replace it). Returns
       [value(s), (options,) selection]. */
    bind: function (value, sel, options) {
      var c = constants();
      var ctx = window.dash_clientside.callback_context;
      var listed = ctx.inputs_list[0];
      var many = Array.isArray(listed);
      var controls = many ? listed : [listed];
      var values = many ? (value || []) : [value];
      var nothing = controls.map(noUpdate);
      var finish = function (shown, selection) {
        var out = [many ? shown : shown[0]];
        if (c.picker) { out.push(noUpdate()); }
        out.push(selection);
        if (c.picker && !many) {
          var wanted = shown[0];
          var known = (options || []).some(function (o) { return o && o.value === wanted; });
          if (wanted !== noUpdate() && wanted !== null && wanted !== undefined && !known) {
            out[1] = [{label: String(wanted), value: wanted}].concat(options || []);
          }
        }
        return out;
      };
      if (!sel || !controls.length) { return finish(nothing, noUpdate()); }
      var rules = schema();
      var fieldOf = function (control) {
        return control.id && control.id.field !== undefined ? control.id.field : c.field;
      };
      var store = dependencyKey(ctx.inputs_list[1]);  // "<selection store>.data"
      var fromSelection = (ctx.triggered || []).some(function (t) { return t.prop_id === store; });
      if (!fromSelection) {
        var changes = {}, any = false;
        controls.forEach(function (control, i) {
          var field = fieldOf(control), v = values[i];
          if (v !== undefined && !same(v, sel[field])) { changes[field] = v; any = true; }
        });
        return finish(nothing, any ? window.classmap.update(sel, changes) : noUpdate());
      }
      return finish(controls.map(function (control, i) {
        return shownValue(sel, fieldOf(control), values[i], rules);
      }), noUpdate());
    },

    /* bind for several controls in one callback (bind_fields): a selection change then
       costs dash-renderer one callback's work instead of one per control (it follows
       every callback that writes the selection through all that depends on it).
       Arguments: each control's value (constants.fields name their fields), the
       selection, then an analysis control's status and page stores. A control that
       fired updates the selection (the selection wins when it changed too); a changed
       selection updates the controls that differ. Returns [each control's value,
       selection, (status, note hidden, note text)]. */
    bindAll: function () {
      var c = constants();
      var n = c.fields.length;
      var values = Array.prototype.slice.call(arguments, 0, n);
      var sel = arguments[n], status = arguments[n + 1], pages = arguments[n + 2];
      var ctx = window.dash_clientside.callback_context;
      var fired = (ctx.triggered || []).map(function (t) { return t.prop_id; });
      var keys = ctx.inputs_list.map(dependencyKey);
      var nothing = values.map(noUpdate);
      var finish = function (shown, selection) {
        var out = shown.concat([selection]);
        if (c.analysis) {
          var held = selection === noUpdate() ? null :
            heldSwitch(selection, status, pages, c.busyText);
          out = out.concat(held || [noUpdate(), noUpdate(), noUpdate()]);
        }
        return out;
      };
      if (!sel) { return finish(nothing, noUpdate()); }
      if (fired.indexOf(keys[n]) < 0) {
        var changes = {}, any = false;
        c.fields.forEach(function (field, i) {
          var v = values[i];
          if (fired.indexOf(keys[i]) >= 0 && v !== undefined && !same(v, sel[field])) {
            changes[field] = v; any = true;
          }
        });
        return finish(nothing, any ? window.classmap.update(sel, changes) : noUpdate());
      }
      var rules = schema();
      return finish(c.fields.map(function (field, i) {
        return shownValue(sel, field, values[i], rules);
      }), noUpdate());
    },

    /* A click → the selection's changes (CHANGES[constants.change]), applied in the browser. */
    select: function (value, sel) {
      var c = constants();
      return window.classmap.update(sel, CHANGES[c.change](value, sel, c));
    },

    /* The selection's constants.fields, updated only when they change. */
    project: function (sel, previous) {
      if (!sel) { return noUpdate(); }
      var picked = {};
      constants().fields.forEach(function (name) {
        picked[name] = sel[name] === undefined ? null : sel[name];
      });
      return same2(picked, previous) ? noUpdate() : picked;
    },

    /* The app root's class for the page at ``pathname``: "cm-app cm-on-<page>" (the
       page's path under the URL prefix → its name: the constants' ``pages``). */
    pageClass: function (pathname) {
      var pages = constants().pages || {};
      var path = String(pathname || "/");
      var trimmed = path.length > 1 ? path.replace(/\/+$/, "") : path;
      var name = pages[path] || pages[trimmed] || pages[trimmed + "/"] || "";
      return "cm-app" + (name ? " cm-on-" + name : "");
    },

    /* A status store's model and state, updated only when they change: what a view of
       the model alone listens to (a metric or linkage switch costs it no request). */
    modelStatus: function (status, previous) {
      if (!status || typeof status !== "object") { return noUpdate(); }
      var key = Array.isArray(status.key) ? status.key : [];
      var value = {model: key[0] === undefined ? null : key[0], state: status.state || null};
      return same2(value, previous) ? noUpdate() : value;
    },

    decodeFigure: function (figure) {
      var c = constants();
      return window.classmap.decodeFigure(figure, c.graph, c.lazy);
    },

    applyOverlay: function (overlay, figure) {
      var c = constants();
      return window.classmap.applyOverlay(overlay, figure, c.graph, c.deferred);
    },

    /* A drag-zoom (or reset) of the heatmap or the dendrogram → the selection's range. */
    rangeFromZoom: function (heatRelayout, treeRelayout, sel) {
      if (!sel) { return noUpdate(); }
      var c = constants();
      var fromTree = (window.dash_clientside.callback_context.triggered || []).some(
        function (t) { return t.prop_id.indexOf(c.dendrogram + ".") === 0; });
      var range = fromTree ? rangeOfRelayout(treeRelayout, false)
                           : rangeOfRelayout(heatRelayout, true);
      if (range === undefined) { return noUpdate(); }
      var home = homeRanges[c.dendrogram];
      if (range && home && range[0] <= Math.ceil(home[0]) && range[1] >= Math.floor(home[1]) &&
          (range.length === 2 || (range[2] <= Math.ceil(home[0]) && range[3] >= Math.floor(home[1])))) {
        range = null;  // everything shown: a reset
      }
      // The tree shows columns only: the same columns keep the heatmap's own rows.
      if (fromTree && range && sel.range && same(range, sel.range.slice(0, 2))) { return noUpdate(); }
      return window.classmap.update(sel, {range: range});
    },

    /* The selection's range drawn in both graphs, also after either is redrawn. */
    applyRange: function (sel) {
      var c = constants();
      var range = sel ? sel.range || null : null;
      var draw = function () { drawRange(range, c); };
      var tree = plotOf(c.dendrogram);
      if (tree) { later(tree, draw); } else { window.requestAnimationFrame(draw); }
      return noUpdate();
    },

    /* Only zooms and resets reach the server: relayout events from drawing overlays
       (shapes) carry no axis range and stop here. */
    heatmapZoom: function (relayout) {
      if (!relayout) { return noUpdate(); }
      var keys = Object.keys(relayout).filter(function (k) {
        return k.indexOf("xaxis.range") === 0 || k.indexOf("yaxis.range") === 0 ||
          k.indexOf("autorange") >= 0;
      });
      if (!keys.length) { return noUpdate(); }
      var zoom = {};
      keys.forEach(function (k) { zoom[k] = relayout[k]; });
      return zoom;
    },

    renderList: function (items) { return window.classmap.renderList(items, constants().target); },

    renderTable: function (table) { return window.classmap.renderTable(table, constants().target); },

    /* Thumbnails (the thumbnails section below): the Samples page's grid and the Classes
       page's strips, drawn into constants().target; a click is relayed to constants().pick. */
    renderThumbGrid: function (data) {
      var c = constants();
      return window.classmap.renderThumbGrid(data, c.target, c.pick);
    },

    renderThumbStrips: function (data) {
      var c = constants();
      return window.classmap.renderThumbStrips(data, c.target, c.pick);
    },

    setWhenIdle: function (value) {
      var c = constants();
      return window.classmap.setWhenIdle(c.component, c.prop, value);
    },

    /* The shell's selection and "Images as" format → the state the download button
       reads at the click (classmap.downloadOptions); titles of the buttons follow. */
    downloadState: function (selection, format) {
      downloads.selection = selection || null;
      if (format) { downloads.format = format; }
      document.querySelectorAll(".js-plotly-plot").forEach(prepareDownload);
      return noUpdate();
    },
  };

  /* == thumbnails (issue 14: images where people would rather look than read) ============
     The Samples page's grid (renderThumbGrid) and the Classes page's strips
     (renderThumbStrips) are drawn here from a store: {image, cam: URL prefixes,
     groups/rows of {label, note, tiles: [[index, class id, title], …]}}. A thumbnail's
     URL is a prefix + its index in the data set (app/shell/thumbnails.py), never a path.
     Hovering or focusing a thumbnail lays its Grad-CAM map over it (fetched on the first
     hover); a click pins the map and writes {image, focal} into the page's pick store,
     which select_on turns into a selection change (CHANGES.pickedImage / pickedClass). */
  var THUMB_PX = 64;

  function thumbTile(tile, data, interactive) {
    var index = tile[0], classId = tile[1], title = tile[2];
    var element = document.createElement(interactive ? "button" : "span");
    if (interactive) { element.type = "button"; }
    element.className = "cm-thumb";
    element.dataset.index = String(index);
    if (classId !== undefined && classId !== null) { element.dataset.focal = classId; }
    element.title = title || "";
    element.setAttribute("aria-label", title || ("image " + index));
    var img = document.createElement("img");
    img.className = "cm-thumb-img";
    img.loading = "lazy";
    img.decoding = "async";
    img.width = THUMB_PX;
    img.height = THUMB_PX;
    img.alt = "";
    img.src = data.image + index;
    element.appendChild(img);
    return element;
  }

  function showCam(tile, data) {
    if (!tile || !data || !data.cam || tile.querySelector(".cm-thumb-cam")) { return; }
    var cam = document.createElement("img");
    cam.className = "cm-thumb-cam";
    cam.width = THUMB_PX;
    cam.height = THUMB_PX;
    cam.alt = "Grad-CAM map";
    cam.src = data.cam + tile.dataset.index;
    tile.appendChild(cam);
  }

  function markSelected(container, selected, data) {
    var wanted = selected === null || selected === undefined ? null : String(selected);
    container.querySelectorAll(".cm-thumb-selected").forEach(function (tile) {
      if (tile.dataset.index !== wanted) {
        tile.classList.remove("cm-thumb-selected");
        tile.removeAttribute("aria-pressed");
      }
    });
    if (wanted === null) { return; }
    var tile = container.querySelector('.cm-thumb[data-index="' + Number(wanted) + '"]');
    if (tile) {
      tile.classList.add("cm-thumb-selected");
      tile.setAttribute("aria-pressed", "true");
      showCam(tile, data);
    }
  }

  /* One set of listeners per container (delegated: the tiles are redrawn freely). */
  function listenToThumbs(container) {
    if (container.dataset.thumbsBound) { return; }
    container.dataset.thumbsBound = "1";
    var tileOf = function (event) {
      var tile = event.target && event.target.closest && event.target.closest(".cm-thumb");
      return tile && container.contains(tile) ? tile : null;
    };
    var hover = function (event) { showCam(tileOf(event), container.cmThumbs); };
    container.addEventListener("mouseover", hover);
    container.addEventListener("focusin", hover);
    container.addEventListener("click", function (event) {
      var tile = tileOf(event), data = container.cmThumbs;
      if (!tile || !data || !data.pick) { return; }
      var index = Number(tile.dataset.index);
      if (data.cam) { markSelected(container, index, data); }
      window.dash_clientside.set_props(data.pick, {data: {
        image: index, focal: tile.dataset.focal || null, at: Date.now()}});
    });
  }

  function thumbGroups(list, data, interactive, withHeading) {
    var fragment = document.createDocumentFragment();
    (list || []).forEach(function (group) {
      var section = document.createElement(withHeading ? "section" : "div");
      section.className = withHeading ? "cm-thumb-group" + (group.focal ? " cm-thumb-focal" : "")
                                      : "cm-thumb-strip";
      var label = document.createElement(withHeading ? "h4" : "span");
      label.className = withHeading ? "cm-thumb-heading" : "cm-thumb-strip-label";
      label.textContent = group.label;
      if (group.note) {
        var note = document.createElement("span");
        note.className = "cm-muted cm-thumb-note";
        note.textContent = withHeading ? " · " + group.note : group.note;
        label.appendChild(note);
      }
      section.appendChild(label);
      var row = document.createElement("div");
      row.className = "cm-thumb-row";
      (group.tiles || []).forEach(function (tile) {
        row.appendChild(thumbTile(tile, data, interactive));
      });
      section.appendChild(row);
      fragment.appendChild(section);
    });
    return fragment;
  }

  /* The Samples page's grid; redrawn only when its tiles change (a new selected image
     only moves the pinned map). */
  function renderThumbGrid(data, containerId, pickId) {
    whenElement(containerId, function (container) {
      listenToThumbs(container);
      container.cmThumbs = data ? Object.assign({pick: pickId}, data) : null;
      var shape = data ? JSON.stringify([data.image, data.cam, data.groups]) : "";
      if (container.cmThumbShape !== shape) {
        container.cmThumbShape = shape;
        container.replaceChildren(data ? thumbGroups(data.groups, data, true, true) : "");
      }
      markSelected(container, data ? data.selected : null, container.cmThumbs);
    });
    return noUpdate();
  }

  /* The Classes page's strips: one row of a class's first images per class. */
  function renderThumbStrips(data, containerId, pickId) {
    whenElement(containerId, function (container) {
      listenToThumbs(container);
      container.cmThumbs = data ? Object.assign({pick: pickId}, data) : null;
      container.replaceChildren(data ? thumbGroups(data.rows, data, true, false) : "");
      container.hidden = !(data && data.rows && data.rows.length);
    });
    return noUpdate();
  }

  window.classmap.renderThumbGrid = renderThumbGrid;
  window.classmap.renderThumbStrips = renderThumbStrips;
  /* A thumbnail's click: the image and its class (Samples), or its class (Classes). */
  CHANGES.pickedImage = function (value) {
    if (!value || value.image === undefined || value.image === null) { return null; }
    return value.focal ? {image: value.image, focal: value.focal} : {image: value.image};
  };
  CHANGES.pickedClass = function (value) {
    return value && value.focal ? {focal: value.focal} : null;
  };
  /* == end thumbnails ===================================================================== */
})();
