/* loadgen charts: small dependency-free line charts on <canvas>, shared by the live dashboard
   (dashboard.html) and the HTML report (report.html). Everything text-like goes through textContent. */
(function (root) {
  "use strict";

  var COLORS = {
    rps: "#2563eb", fps: "#dc2626", users: "#059669",
    p50: "#0891b2", p95: "#d97706", p99: "#7c3aed"
  };

  function finite(v) { return typeof v === "number" && isFinite(v); }

  function fmtNum(v, digits) {
    if (!finite(v)) { return "-"; }
    var d = digits === undefined ? (Math.abs(v) < 10 && v % 1 !== 0 ? 1 : 0) : digits;
    return v.toLocaleString("en-US", { minimumFractionDigits: d, maximumFractionDigits: d });
  }

  function fmtMs(v) {
    if (!finite(v)) { return "-"; }
    return v < 9.995 ? v.toFixed(2) : fmtNum(Math.round(v), 0);
  }

  function fmtClock(seconds) {
    var s = Math.max(0, Math.floor(finite(seconds) ? seconds : 0));
    var h = Math.floor(s / 3600), m = Math.floor((s % 3600) / 60), sec = s % 60;
    var mm = (h && m < 10 ? "0" : "") + m, ss = (sec < 10 ? "0" : "") + sec;
    return (h ? h + ":" : "") + mm + ":" + ss;
  }

  function fmtAxis(v, unit) {
    if (unit === "ms") { return v >= 1000 ? fmtNum(v / 1000, v >= 10000 ? 0 : 1) + " s" : fmtNum(v, v < 10 && v % 1 ? 1 : 0); }
    if (Math.abs(v) >= 1e6) { return fmtNum(v / 1e6, 1) + "M"; }
    if (Math.abs(v) >= 1e4) { return fmtNum(v / 1e3, 0) + "k"; }
    return fmtNum(v, v % 1 ? 1 : 0);
  }

  /* A "nice" step (1, 2, 2.5, 5 x 10^n) giving about `count` intervals over `range`. */
  function niceStep(range, count) {
    if (!(range > 0)) { return 1; }
    var raw = range / count, mag = Math.pow(10, Math.floor(Math.log10(raw))), f = raw / mag;
    var nice = f <= 1 ? 1 : f <= 2 ? 2 : f <= 2.5 ? 2.5 : f <= 5 ? 5 : 10;
    return nice * mag;
  }

  function timeStep(range, count) {
    var steps = [1, 2, 5, 10, 15, 30, 60, 120, 300, 600, 900, 1800, 3600, 7200, 10800, 21600, 43200, 86400];
    var raw = range / count;
    for (var i = 0; i < steps.length; i++) { if (steps[i] >= raw) { return steps[i]; } }
    return steps[steps.length - 1];
  }

  /* Reduce a series to at most ~2 points per pixel column, keeping each column's min and max. */
  function reduce(xs, ys, columns) {
    var n = xs.length;
    if (n <= columns * 2) { return { x: xs, y: ys }; }
    var per = n / columns, ox = [], oy = [];
    for (var c = 0; c < columns; c++) {
      var a = Math.floor(c * per), b = Math.min(n, Math.floor((c + 1) * per));
      var lo = -1, hi = -1;
      for (var i = a; i < b; i++) {
        if (!finite(ys[i])) { continue; }
        if (lo < 0 || ys[i] < ys[lo]) { lo = i; }
        if (hi < 0 || ys[i] > ys[hi]) { hi = i; }
      }
      if (lo < 0) { ox.push(xs[a]); oy.push(null); continue; }
      var first = Math.min(lo, hi), second = Math.max(lo, hi);
      ox.push(xs[first]); oy.push(ys[first]);
      if (second !== first) { ox.push(xs[second]); oy.push(ys[second]); }
    }
    return { x: ox, y: oy };
  }

  /* Draw a line chart. opts: {x: [seconds], series: [{label, color, values}], unit: "" | "ms",
     title: string}. Sets data-drawn to the number of plotted points (0 = empty); returns it. */
  function lineChart(canvas, opts) {
    var dpr = root.devicePixelRatio || 1;
    var w = canvas.clientWidth || canvas.width || 600, h = canvas.clientHeight || canvas.height || 220;
    canvas.width = Math.round(w * dpr);
    canvas.height = Math.round(h * dpr);
    var ctx = canvas.getContext("2d");
    ctx.setTransform(dpr, 0, 0, dpr, 0, 0);
    ctx.clearRect(0, 0, w, h);
    ctx.font = "11px system-ui, -apple-system, Segoe UI, Roboto, sans-serif";
    ctx.textBaseline = "middle";

    var xs = opts.x || [], series = opts.series || [];
    var left = 54, right = 12, top = 26, bottom = 22;
    var pw = Math.max(10, w - left - right), ph = Math.max(10, h - top - bottom);

    var xmin = Infinity, xmax = -Infinity, ymax = 0, points = 0;
    for (var i = 0; i < xs.length; i++) {
      if (finite(xs[i])) { xmin = Math.min(xmin, xs[i]); xmax = Math.max(xmax, xs[i]); }
    }
    series.forEach(function (s) {
      (s.values || []).forEach(function (v) { if (finite(v)) { ymax = Math.max(ymax, v); points++; } });
    });

    // legend
    var lx = left;
    series.forEach(function (s) {
      ctx.fillStyle = s.color;
      ctx.fillRect(lx, 9, 10, 10);
      ctx.fillStyle = "#334155";
      ctx.textAlign = "left";
      ctx.fillText(s.label, lx + 14, 14);
      lx += 22 + ctx.measureText(s.label).width;
    });
    if (opts.title) {
      ctx.textAlign = "right";
      ctx.fillStyle = "#64748b";
      ctx.fillText(opts.title, w - right, 14);
    }

    ctx.strokeStyle = "#cbd5e1";
    ctx.lineWidth = 1;
    ctx.strokeRect(left + 0.5, top + 0.5, pw, ph);

    if (!points || !isFinite(xmin)) {
      ctx.fillStyle = "#94a3b8";
      ctx.textAlign = "center";
      ctx.fillText("waiting for data", left + pw / 2, top + ph / 2);
      canvas.setAttribute("data-drawn", "0");
      return 0;
    }
    if (xmax - xmin < 1) { xmin = Math.max(0, xmax - 1); xmax = xmin + 1; }
    var ystep = niceStep(ymax > 0 ? ymax : 1, 4);
    var ytop = Math.max(ystep, Math.ceil((ymax * 1.05) / ystep) * ystep);
    function px(x) { return left + ((x - xmin) / (xmax - xmin)) * pw; }
    function py(y) { return top + ph - (y / ytop) * ph; }

    // grid and axis labels
    ctx.fillStyle = "#64748b";
    ctx.strokeStyle = "#e2e8f0";
    ctx.textAlign = "right";
    for (var yv = 0; yv <= ytop + ystep / 2; yv += ystep) {
      var yy = Math.round(py(yv)) + 0.5;
      ctx.beginPath(); ctx.moveTo(left, yy); ctx.lineTo(left + pw, yy); ctx.stroke();
      ctx.fillText(fmtAxis(yv, opts.unit), left - 6, yy);
    }
    var xstep = timeStep(xmax - xmin, Math.max(2, Math.floor(pw / 90)));
    ctx.textAlign = "center";
    for (var xv = Math.ceil(xmin / xstep) * xstep; xv <= xmax; xv += xstep) {
      var xx = Math.round(px(xv)) + 0.5;
      ctx.beginPath(); ctx.moveTo(xx, top); ctx.lineTo(xx, top + ph); ctx.stroke();
      ctx.fillText(fmtClock(xv), xx, top + ph + 11);
    }

    // series
    ctx.save();
    ctx.beginPath(); ctx.rect(left, top - 1, pw + 1, ph + 2); ctx.clip();
    ctx.lineWidth = 1.6;
    ctx.lineJoin = "round";
    series.forEach(function (s) {
      var r = reduce(xs, s.values || [], Math.floor(pw));
      ctx.strokeStyle = s.color;
      ctx.beginPath();
      var pen = false, lone = [];
      for (var k = 0; k < r.x.length; k++) {
        var v = r.y[k];
        if (!finite(v) || !finite(r.x[k])) { pen = false; continue; }
        var X = px(r.x[k]), Y = py(v);
        if (pen) { ctx.lineTo(X, Y); } else { ctx.moveTo(X, Y); lone.push([X, Y]); }
        pen = true;
      }
      ctx.stroke();
      ctx.fillStyle = s.color;
      if (r.x.length < 3) { lone.forEach(function (p) { ctx.fillRect(p[0] - 2, p[1] - 2, 4, 4); }); }
    });
    ctx.restore();
    canvas.setAttribute("data-drawn", String(points));
    return points;
  }

  /* The three standard charts from parallel arrays {t, rps, fps, users, p50, p95, p99}. */
  function drawStandard(canvases, data) {
    var C = COLORS;
    return [
      lineChart(canvases.throughput, { x: data.t, unit: "", title: "per second", series: [
        { label: "requests/s", color: C.rps, values: data.rps },
        { label: "failures/s", color: C.fps, values: data.fps }] }),
      lineChart(canvases.users, { x: data.t, unit: "", title: "running", series: [
        { label: "users", color: C.users, values: data.users }] }),
      lineChart(canvases.latency, { x: data.t, unit: "ms", title: "this second", series: [
        { label: "p50", color: C.p50, values: data.p50 },
        { label: "p95", color: C.p95, values: data.p95 },
        { label: "p99", color: C.p99, values: data.p99 }] })
    ];
  }

  /* Build an element; text goes through textContent (never innerHTML). */
  function el(tag, text, cls) {
    var e = root.document.createElement(tag);
    if (text !== undefined && text !== null) { e.textContent = String(text); }
    if (cls) { e.className = cls; }
    return e;
  }

  /* Replace tbody's rows: columns are [{get: row => value, cls}] */
  function fillTable(tbody, rows, columns, empty) {
    while (tbody.firstChild) { tbody.removeChild(tbody.firstChild); }
    if (!rows.length && empty) {
      var tr0 = el("tr"), td0 = el("td", empty, "empty");
      td0.colSpan = columns.length;
      tr0.appendChild(td0);
      tbody.appendChild(tr0);
      return;
    }
    rows.forEach(function (row) {
      var tr = el("tr");
      columns.forEach(function (c) { tr.appendChild(el("td", c.get(row), c.cls)); });
      tbody.appendChild(tr);
    });
  }

  root.LoadgenCharts = {
    COLORS: COLORS, lineChart: lineChart, drawStandard: drawStandard, fmtNum: fmtNum, fmtMs: fmtMs,
    fmtClock: fmtClock, el: el, fillTable: fillTable
  };
})(window);
