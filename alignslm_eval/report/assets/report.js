// The alignslm report page. Everything from a run (model names, transcripts, judge answers) is data: it is put in
// the page with textContent and DOM properties only, never parsed as HTML. Rows of large tables come from row files
// beside the page (script files calling alignslmRows), loaded when their table is shown; the DOM holds one page of
// rows at a time, so a 10,000-sample run opens without freezing.
(function () {
  "use strict";
  var data = JSON.parse(document.getElementById("report-data").textContent);
  var waiting = {};
  var loaded = {};
  var PAGE_SIZES = [25, 50, 100, 250];

  window.alignslmRows = function (id, rows) {
    loaded[id] = rows;
    if (waiting[id]) { waiting[id](rows); delete waiting[id]; }
  };

  function el(tag, props) {
    var node = document.createElement(tag);
    if (props) {
      Object.keys(props).forEach(function (k) {
        if (k === "text") node.textContent = props[k];
        else if (k === "cls") node.className = props[k];
        else if (k === "data") Object.keys(props[k]).forEach(function (d) { node.dataset[d] = props[k][d]; });
        else node.setAttribute(k, props[k]);
      });
    }
    for (var i = 2; i < arguments.length; i++) append(node, arguments[i]);
    return node;
  }

  // append(node, child, ...): nodes as they are, anything else as text; null and undefined are skipped.
  function append(node) {
    for (var i = 1; i < arguments.length; i++) {
      var child = arguments[i];
      if (child === null || child === undefined) continue;
      if (Array.isArray(child)) { child.forEach(function (c) { append(node, c); }); continue; }
      node.appendChild(typeof child === "object" ? child : document.createTextNode(String(child)));
    }
  }

  function isNum(v) { return typeof v === "number" && isFinite(v); }

  function fmt(v, percent) {
    if (!isNum(v)) return "–";
    if (percent) return (v * 100).toFixed(2) + "%";
    if (v !== 0 && (Math.abs(v) >= 1e5 || Math.abs(v) < 1e-3)) return v.toExponential(3);
    return String(Number(v.toPrecision(4)));
  }

  function svg(tag, attrs) {
    var node = document.createElementNS("http://www.w3.org/2000/svg", tag);
    Object.keys(attrs || {}).forEach(function (k) { node.setAttribute(k, attrs[k]); });
    return node;
  }

  function svgText(x, y, text, anchor) {
    var t = svg("text", { x: x, y: y, "text-anchor": anchor || "middle" });
    t.textContent = text;
    return t;
  }

  // --- row loading --------------------------------------------------------------------------------------------
  function loadRows(tableId) {
    var info = data.tables[tableId];
    if (!info) return Promise.resolve([]);
    if (info.rows) return Promise.resolve(info.rows);
    return Promise.all(info.chunks.map(function (chunk) {
      if (loaded[chunk.id]) return Promise.resolve(loaded[chunk.id]);
      return new Promise(function (resolve, reject) {
        waiting[chunk.id] = resolve;
        var script = document.createElement("script");
        script.src = chunk.src;
        script.onerror = function () { reject(new Error("row file not found beside the page: " + chunk.src)); };
        document.body.appendChild(script);
      });
    })).then(function (parts) { return [].concat.apply([], parts); });
  }

  // --- cells --------------------------------------------------------------------------------------------------
  function audioCell(link, cutS) {
    if (!link) return el("span", { cls: "muted", text: "no audio recorded" });
    if (link.missing) return el("div", { cls: "missing", text: "missing: " + link.missing });
    var audio = el("audio", { controls: "", preload: "none" });
    // A prompt is played as the model heard it: its source file up to the cut (a media fragment).
    audio.src = link.src + (isNum(cutS) ? "#t=0," + cutS : "");
    audio.addEventListener("error", function () {
      audio.replaceWith(el("div", { cls: "missing", text: "could not be played: " + link.src.slice(0, 200) }));
    });
    return audio;
  }

  function statusBadge(status) {
    var s = String(status || "");
    var cls = s.indexOf("error") === 0 ? "status bad" : (s === "ok" ? "status" : "status warn");
    return el("span", { cls: cls, text: s });
  }

  function scoreCell(score, metric) {
    var td = el("td", { cls: "score", data: { metric: metric } });
    if (!score) { append(td, el("span", { cls: "muted", text: "not scored" })); return td; }
    if (isNum(score.value)) td.dataset.value = String(score.value);
    append(td, el("div", { cls: "num", text: fmt(score.value, false) }), statusBadge(score.status));
    if (score.answer !== undefined && score.answer !== null) {
      append(td, el("details", null, el("summary", { text: "judge answer" }),
                    el("div", { cls: "answer", text: score.answer })));
    }
    return td;
  }

  function textBlock(text, what) {
    if (text === null || text === undefined) return el("div", { cls: "muted", text: "no " + what });
    return el("div", { cls: "text", text: text === "" ? "(empty)" : text });
  }

  // --- a paged, sortable, filterable table ----------------------------------------------------------------------
  // spec: {columns: [{label, sortKey?}], filters: [name], renderRow(row, index) -> tr, sortValue(row, key)}
  function pagedTable(container, rows, spec) {
    var state = { page: 0, size: 50, filter: "all", sortKey: null, desc: false };
    var controls = el("div", { cls: "controls" });
    var table = el("table", { cls: "rows " + spec.kind, data: { table: spec.id } });
    var thead = el("thead"), tbody = el("tbody");
    var pager = el("span", { cls: "pager" });
    var counts = {};
    rows.forEach(function (r) { (r.flags || []).forEach(function (f) { counts[f] = (counts[f] || 0) + 1; }); });

    var filter = el("select", { "aria-label": "filter rows", cls: "filter" });
    append(filter, el("option", { value: "all", text: "all rows (" + rows.length + ")" }));
    spec.filters.forEach(function (f) {
      append(filter, el("option", { value: f, text: f + " (" + (counts[f] || 0) + ")" }));
    });
    filter.addEventListener("change", function () { state.filter = filter.value; state.page = 0; draw(); });
    var size = el("select", { "aria-label": "rows per page", cls: "page-size" });
    PAGE_SIZES.forEach(function (n) { append(size, el("option", { value: String(n), text: n + " per page" })); });
    size.value = "50";
    size.addEventListener("change", function () { state.size = Number(size.value); state.page = 0; draw(); });
    append(controls, el("label", { text: "show" }), filter, size, pager);

    var headRow = el("tr");
    spec.columns.forEach(function (c) {
      var th = el("th", { text: c.label });
      if (c.sortKey) {
        th.className = "sortable";
        th.dataset.sort = c.sortKey;
        th.title = "sort by " + c.label;
        th.addEventListener("click", function () {
          state.desc = state.sortKey === c.sortKey ? !state.desc : false;
          state.sortKey = c.sortKey;
          state.page = 0;
          draw();
        });
      }
      append(headRow, th);
    });
    append(thead, headRow);
    append(table, thead, tbody);
    append(container, controls, table);

    function ordered() {
      var shown = rows.map(function (r, i) { return [r, i]; });
      if (state.filter !== "all") {
        shown = shown.filter(function (p) { return (p[0].flags || []).indexOf(state.filter) >= 0; });
      }
      if (state.sortKey) {
        var sign = state.desc ? -1 : 1;
        shown.sort(function (a, b) {
          var x = spec.sortValue(a[0], state.sortKey), y = spec.sortValue(b[0], state.sortKey);
          // Rows without a value stay at the end whichever way the column is sorted.
          if (!isNum(x) || !isNum(y)) return (isNum(x) ? -1 : isNum(y) ? 1 : 0) || a[1] - b[1];
          return (x - y) * sign || a[1] - b[1];
        });
      }
      return shown;
    }

    function draw() {
      var shown = ordered();
      var pages = Math.max(1, Math.ceil(shown.length / state.size));
      state.page = Math.min(state.page, pages - 1);
      var start = state.page * state.size;
      var fragment = document.createDocumentFragment();
      shown.slice(start, start + state.size).forEach(function (p) { fragment.appendChild(spec.renderRow(p[0], p[1])); });
      tbody.replaceChildren(fragment);
      thead.querySelectorAll("th.sortable").forEach(function (th) {
        th.classList.toggle("sorted-asc", th.dataset.sort === state.sortKey && !state.desc);
        th.classList.toggle("sorted-desc", th.dataset.sort === state.sortKey && state.desc);
      });
      var prev = el("button", { type: "button", cls: "prev", text: "‹ previous" });
      var next = el("button", { type: "button", cls: "next", text: "next ›" });
      prev.disabled = state.page === 0;
      next.disabled = state.page >= pages - 1;
      prev.addEventListener("click", function () { state.page -= 1; draw(); });
      next.addEventListener("click", function () { state.page += 1; draw(); });
      var range = shown.length ? (start + 1) + "–" + Math.min(start + state.size, shown.length) : "0";
      pager.replaceChildren(prev, el("span", { cls: "range", text: " rows " + range + " of " + shown.length + " " }),
                            next);
    }
    draw();
  }

  function sampleTable(container, table, rows) {
    var metrics = table.metrics || [];
    pagedTable(container, rows, {
      id: table.id, kind: "samples",
      filters: ["failed", "unparsable", "unscored", "silent", "missing audio"],
      columns: [{ label: "prompt" }, { label: "prompt audio" }, { label: "continuation" },
                { label: "continuation audio" }].concat(metrics.map(function (m) {
        var d = (table.directions || {})[m];
        return { label: m + (d === "higher" ? " ↑" : d === "lower" ? " ↓" : ""), sortKey: m };
      })),
      sortValue: function (row, key) { var s = row.scores[key]; return s ? s.value : null; },
      renderRow: function (row) {
        var tr = el("tr", { cls: "sample", data: { key: row.prompt_id + "#" + row.sample } });
        append(tr, el("td", null, el("div", { cls: "id", text: row.prompt_id }),
                      el("div", { cls: "muted", text: "sample " + row.sample + " · " + row.units + " units" }),
                      textBlock(row.prompt_text, "prompt transcript")),
               el("td", null, audioCell(row.prompt_audio, row.cut_s)),
               el("td", null, textBlock(row.text, "transcript")),
               el("td", null, audioCell(row.audio, null)));
        metrics.forEach(function (m) { append(tr, scoreCell(row.scores[m], m)); });
        return tr;
      }
    });
  }

  function choiceTable(container, table, rows) {
    pagedTable(container, rows, {
      id: table.id, kind: "choices", filters: ["error", "tie", "missing audio"],
      columns: [{ label: "choice" }, { label: "score", sortKey: "score" },
                { label: "candidates (log-likelihood " + (table.reduction === "mean" ? "mean" : "sum") + ")" }],
      sortValue: function (row) { return row.score; },
      renderRow: function (row) {
        var tr = el("tr", { cls: "choice", data: { key: row.choice } });
        var inner = el("table", { cls: "candidates" });
        append(inner, el("tr", null, el("th", { text: "candidate" }), el("th", { text: "audio" }),
                         el("th", { text: "ll sum" }), el("th", { text: "ll mean" }), el("th", { text: "tokens" })));
        row.candidates.forEach(function (c) {
          append(inner, el("tr", { cls: c.won ? "won" : "" },
            el("td", null, el("div", { text: c.key }), c.positive ? el("div", { cls: "positive", text: "positive" }) : null,
               c.won ? el("div", { cls: "won", text: "won" }) : null),
            el("td", null, audioCell(c.audio, null)),
            el("td", { cls: "num", text: fmt(c.ll_sum) }), el("td", { cls: "num", text: fmt(c.ll_mean) }),
            el("td", { cls: "num", text: isNum(c.n_tokens) ? String(c.n_tokens) : "–" })));
        });
        append(tr, el("td", null, el("div", { text: row.choice }), el("div", { cls: "muted", text: row.meta })),
               el("td", { cls: "num", data: isNum(row.score) ? { value: String(row.score) } : {}, text: fmt(row.score) }),
               el("td", null, inner));
        return tr;
      }
    });
  }

  function pairSide(side, metrics, which) {
    var td = el("td", { cls: "pair-side " + which });
    append(td, el("div", { cls: "muted", text: which + " · sample " + side.sample }), audioCell(side.audio, null),
           textBlock(side.text, "transcript"));
    metrics.forEach(function (m) {
      var s = side.scores[m];
      append(td, el("div", null, el("span", { text: m + ": " }),
                    el("span", { cls: "num", data: s && isNum(s.value) ? { metric: m, value: String(s.value) } : {},
                                 text: s ? fmt(s.value) : "–" }), " ", s ? statusBadge(s.status) : null));
      if (s && s.answer !== undefined && s.answer !== null) {
        append(td, el("details", null, el("summary", { text: "judge answer" }), el("div", { cls: "answer", text: s.answer })));
      }
    });
    return td;
  }

  function pairTable(container, table, rows) {
    var metrics = table.metrics || [];
    pagedTable(container, rows, {
      id: table.id, kind: "pairs", filters: [],
      columns: [{ label: "prompt" }, { label: "chosen" }, { label: "rejected" }],
      sortValue: function () { return null; },
      renderRow: function (row) {
        var tr = el("tr", { cls: "pair", data: { key: String(row.pair_id) } });
        append(tr, el("td", null, el("div", { text: row.prompt_id }), audioCell(row.prompt_audio, row.cut_s),
                      textBlock(row.prompt_text, "prompt transcript")),
               pairSide(row.chosen, metrics, "chosen"), pairSide(row.rejected, metrics, "rejected"));
        return tr;
      }
    });
  }

  var TABLES = { samples: sampleTable, choices: choiceTable, pairs: pairTable };

  function tableSection(parent, table, pending) {
    var box = el("div", { cls: "table-box" }, el("p", { cls: "loading muted", text: "loading rows…" }));
    append(parent, box);
    pending.push(loadRows(table.id).then(function (rows) {
      box.replaceChildren();
      TABLES[table.type](box, table, rows);
    }, function (err) {
      box.replaceChildren(el("p", { cls: "error-box", text: String(err.message || err) }));
    }));
  }

  // --- charts -------------------------------------------------------------------------------------------------
  function histogram(values, title) {
    var W = 300, H = 150, L = 34, B = 24;
    var box = el("div", { cls: "chart histogram", data: { metric: title } });
    append(box, el("div", { cls: "caption", text: title + " · " + values.length + " scored samples" }));
    if (!values.length) return box;
    var lo = Math.min.apply(null, values), hi = Math.max.apply(null, values);
    var integers = values.every(function (v) { return Math.round(v) === v; }) && hi - lo <= 20;
    var n = integers ? hi - lo + 1 : 20, width = integers ? 1 : (hi - lo || 1) / n;
    var bins = new Array(n).fill(0);
    values.forEach(function (v) { bins[Math.min(n - 1, Math.floor((v - lo) / width + (integers ? 0.5 : 0)))] += 1; });
    var top = Math.max.apply(null, bins);
    var s = svg("svg", { width: W, height: H, viewBox: "0 0 " + W + " " + H, role: "img" });
    var bw = (W - L - 6) / n;
    bins.forEach(function (c, i) {
      var h = (H - B - 8) * c / top;
      s.appendChild(svg("rect", { x: L + i * bw + 1, y: H - B - h, width: Math.max(1, bw - 2), height: h,
                                  fill: "#4f79b8" }));
      if (integers) s.appendChild(svgText(L + (i + 0.5) * bw, H - B + 13, String(lo + i)));
    });
    if (!integers) {
      s.appendChild(svgText(L, H - B + 13, fmt(lo), "start"));
      s.appendChild(svgText(W - 6, H - B + 13, fmt(hi), "end"));
    }
    s.appendChild(svgText(L - 4, 12, String(top), "end"));
    s.appendChild(svgText(L - 4, H - B, "0", "end"));
    box.appendChild(s);
    return box;
  }

  var COLOURS = ["#2457a6", "#c2571a", "#1f7a3a", "#8a3ab9", "#b3261e", "#5d6670"];

  function lineChart(series, title, xLabel) {
    var W = 380, H = 190, L = 46, B = 30, R = 10, T = 10;
    var box = el("div", { cls: "chart line", data: { chart: title } });
    append(box, el("div", { cls: "caption", text: title }));
    var xs = [], ys = [];
    series.forEach(function (se) { se.points.forEach(function (p) { if (isNum(p.y)) { xs.push(p.x); ys.push(p.y); } }); });
    if (!xs.length) return box;
    var x0 = Math.min.apply(null, xs), x1 = Math.max.apply(null, xs);
    var y0 = Math.min.apply(null, ys), y1 = Math.max.apply(null, ys);
    if (x1 === x0) { x1 = x0 + 1; }
    if (y1 === y0) { y0 -= 0.5; y1 += 0.5; }
    function px(x) { return L + (W - L - R) * (x - x0) / (x1 - x0); }
    function py(y) { return H - B - (H - B - T) * (y - y0) / (y1 - y0); }
    var s = svg("svg", { width: W, height: H, viewBox: "0 0 " + W + " " + H, role: "img" });
    s.appendChild(svg("line", { x1: L, y1: H - B, x2: W - R, y2: H - B, stroke: "#d9dee3" }));
    s.appendChild(svg("line", { x1: L, y1: T, x2: L, y2: H - B, stroke: "#d9dee3" }));
    series.forEach(function (se, i) {
      var pts = se.points.filter(function (p) { return isNum(p.y); });
      var colour = COLOURS[i % COLOURS.length];
      s.appendChild(svg("polyline", { points: pts.map(function (p) { return px(p.x) + "," + py(p.y); }).join(" "),
                                      fill: "none", stroke: colour, "stroke-width": 1.6 }));
      pts.forEach(function (p) { s.appendChild(svg("circle", { cx: px(p.x), cy: py(p.y), r: 2.6, fill: colour })); });
      // A style, not the fill attribute: the sheet's `svg text` rule outranks presentation attributes.
      s.appendChild(svgText(W - R, T + 12 * (i + 1), se.label, "end")).style.fill = colour;
    });
    s.appendChild(svgText(L - 4, T + 8, fmt(y1), "end"));
    s.appendChild(svgText(L - 4, H - B, fmt(y0), "end"));
    s.appendChild(svgText(L, H - B + 14, fmt(x0), "start"));
    s.appendChild(svgText(W - R, H - B + 14, fmt(x1), "end"));
    s.appendChild(svgText((L + W - R) / 2, H - 4, xLabel));
    box.appendChild(s);
    return box;
  }

  // --- shared blocks ------------------------------------------------------------------------------------------
  function headerTable(pairs) {
    var t = el("table", { cls: "header-table" });
    pairs.forEach(function (p) { append(t, el("tr", null, el("th", { text: p[0] }), el("td", { text: p[1] }))); });
    return t;
  }

  function countsTable(counts, label) {
    var keys = Object.keys(counts || {});
    if (!keys.length) return null;
    var t = el("table", { cls: "counts" }, el("tr", null, el("th", { text: label }), el("th", { text: "count" })));
    keys.forEach(function (k) { append(t, el("tr", null, el("td", { text: k }), el("td", { cls: "num", text: String(counts[k]) }))); });
    return t;
  }

  function jsonDetails(label, value) {
    if (value === null || value === undefined) return null;
    return el("details", null, el("summary", { text: label }), el("pre", { text: JSON.stringify(value, null, 2) }));
  }

  function metricsTable(task) {
    var t = el("table", { cls: "metrics", data: { task: task.name } });
    append(t, el("tr", null, el("th", { text: "metric" }), el("th", { text: "value" }), el("th", { text: "± stderr" }),
                 el("th", { text: "n" })));
    task.metrics.forEach(function (m) {
      var name = m.group === null ? m.name : m.name + ": " + m.group;
      var value = el("td", { cls: "num value", text: fmt(m.value, m.percent) });
      var stderr = el("td", { cls: "num stderr", text: fmt(m.stderr, m.percent) });
      if (isNum(m.value)) value.dataset.value = String(m.value);
      if (isNum(m.stderr)) stderr.dataset.value = String(m.stderr);
      append(t, el("tr", { cls: m.headline ? "headline" : "", data: { metric: m.name, group: m.group === null ? "" : m.group } },
                   el("td", { text: name + (m.direction === "higher" ? " ↑" : m.direction === "lower" ? " ↓" : "") }),
                   value, stderr, el("td", { cls: "num", text: m.n === null || m.n === undefined ? "–" : String(m.n) })));
    });
    return t;
  }

  // --- eval runs ----------------------------------------------------------------------------------------------
  function renderRun(main, run) {
    var pending = [];
    main.replaceChildren();
    append(main, el("h2", { text: "Run" }), headerTable(run.header),
           el("p", { cls: "muted", text: "results file: " + run.file }));
    run.tasks.forEach(function (task) {
      var section = el("section", { cls: "task", data: { task: task.name } });
      append(section, el("h2", { text: task.name + (task.kind ? " (" + task.kind + ")" : "") }), metricsTable(task));
      var unscored = task.unscored || {};
      Object.keys(unscored).forEach(function (m) { append(section, countsTable(unscored[m], "why " + m + " is unscored")); });
      append(section, jsonDetails("protocol", task.protocol), jsonDetails("pipeline", task.pipeline),
             jsonDetails("dataset", task.dataset));
      if (task.note) append(section, el("p", { cls: "note", text: task.note }));
      if (task.table) {
        append(section, el("h3", { text: task.table.type === "samples" ? "samples" : "choices" }));
        tableSection(section, task.table, pending);
      }
      append(main, section);
    });
    return Promise.all(pending);
  }

  function renderEval(main) {
    var picker = document.getElementById("run-picker");
    var runs = data.runs;
    if (runs.length > 1) {
      var select = el("select", { "aria-label": "run", id: "run-select" });
      runs.forEach(function (r, i) { append(select, el("option", { value: String(i), text: r.label })); });
      select.addEventListener("change", function () { renderRun(main, runs[Number(select.value)]); });
      append(picker, el("label", { text: runs.length + " runs: " }), select);
    }
    return renderRun(main, runs[0]);
  }

  // --- training runs ------------------------------------------------------------------------------------------
  function renderTrain(main) {
    var pending = [];
    main.replaceChildren();
    append(main, el("h2", { text: "Training run" }), headerTable(data.header));
    var curve = data.eval_curve || [];
    if (curve.length) {
      append(main, el("h2", { text: "Mid-training evaluation" }));
      var charts = el("div", { cls: "charts" });
      var groups = {};
      curve.forEach(function (p) { (groups[p.task + " · " + p.metric] = groups[p.task + " · " + p.metric] || []).push(p); });
      Object.keys(groups).forEach(function (g) {
        var rounds = {};
        groups[g].forEach(function (p) { (rounds[p.round] = rounds[p.round] || []).push({ x: p.step, y: p.value }); });
        charts.appendChild(lineChart(Object.keys(rounds).map(function (k) { return { label: "round " + k, points: rounds[k] }; }),
                                     g, "DPO step"));
      });
      append(main, charts);
    }
    data.rounds.forEach(function (r) {
      var section = el("section", { cls: "round", data: { round: String(r.round) } });
      append(section, el("h2", { text: "Round " + r.round + (r.complete ? "" : " (not finished)") }));
      var rep = r.report;
      if (rep) {
        var args = Object.keys(rep.rule_args || {}).map(function (k) { return k + " " + rep.rule_args[k]; }).join(", ");
        append(section, headerTable([["prompts", String(rep.prompts)], ["samples", String(rep.samples)],
                                     ["pairs", String(rep.pairs)], ["rule", rep.rule + (args ? " (" + args + ")" : "")],
                                     ["auto-BLEU filter", rep.max_auto_bleu === null ? "off" : "≥ " + rep.max_auto_bleu + " dropped"],
                                     ["failed scorings", String(rep.failed) + (rep.allow_unscored ? " (allowed)" : "")]]));
        append(section, countsTable(rep.no_pair, "why a prompt gave no pair"));
        Object.keys(rep.unscored || {}).forEach(function (m) { append(section, countsTable(rep.unscored[m], "why " + m + " is unscored")); });
      } else {
        append(section, el("p", { cls: "note", text: "no pairs_report.json yet: the pairs stage has not run" }));
      }
      if (r.dpo) {
        append(section, headerTable(Object.keys(r.dpo).map(function (k) { return ["DPO " + k.replace(/_/g, " "), fmt(r.dpo[k])]; })));
      }
      var charts = el("div", { cls: "charts" });
      Object.keys(r.histograms || {}).forEach(function (m) { charts.appendChild(histogram(r.histograms[m], m)); });
      if ((r.dpo_log || []).length) {
        charts.appendChild(lineChart([
          { label: "loss", points: r.dpo_log.map(function (p) { return { x: p.step, y: p.loss }; }) },
          { label: "reward accuracy", points: r.dpo_log.map(function (p) { return { x: p.step, y: p.reward_accuracy }; }) }
        ], "DPO log", "step"));
      }
      append(section, charts);
      append(section, el("h3", { text: "preference pairs" }));
      tableSection(section, r.pairs_table, pending);
      if (r.samples_table) {
        append(section, el("h3", { text: "every sample" }));
        tableSection(section, r.samples_table, pending);
      } else {
        append(section, el("p", { cls: "note", text: "no continuation run in " + r.folder }));
      }
      append(main, section);
    });
    return Promise.all(pending);
  }

  document.getElementById("title").textContent = data.title;
  var main = document.getElementById("report");
  var done = data.kind === "train" ? renderTrain(main) : renderEval(main);
  done.then(function () {
    window.__alignslmReadyMs = performance.now();
    document.body.dataset.ready = "1";
  });
})();
