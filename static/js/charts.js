/* Switchyard charts: a tiny SVG time-series line chart, no dependencies.
 *
 *   var chart = Switchyard.chart(element, {format: function (v) {...}, window: 900});
 *   chart.draw({stable: [[t, v], ...], canary: [[t, v], ...]}, now, {start: t0, marks: [...]});
 *
 * With ``start`` the x axis runs from it to ``now`` (the deployment's own window) and is labelled
 * with clock times; ``marks`` ({t, label, title}) are drawn as dashed vertical lines (where a step
 * or a weight change happened), each with its short label and a tooltip.
 *
 * Times are unix seconds; a null value, or a gap longer than `gap` seconds, breaks the line.
 * The x axis is the last `window` seconds up to `now`; the y axis starts at 0 and ends at a
 * round number above the largest value (and at least `minTop`, so that noise stays small). Series are styled by CSS (.line-<name>, .dot-<name>).
 */
(function () {
  "use strict";

  var NS = "http://www.w3.org/2000/svg";

  function svg(tag, attrs) {
    var node = document.createElementNS(NS, tag);
    for (var key in attrs) {
      if (Object.prototype.hasOwnProperty.call(attrs, key)) node.setAttribute(key, attrs[key]);
    }
    return node;
  }

  // 1, 2, 2.5, 5 x 10^n at or above value
  function niceCeiling(value) {
    if (!(value > 0)) return 1;
    var power = Math.pow(10, Math.floor(Math.log10(value)));
    var steps = [1, 2, 2.5, 5, 10];
    for (var i = 0; i < steps.length; i++) {
      if (steps[i] * power >= value) return steps[i] * power;
    }
    return 10 * power;
  }

  function chart(element, options) {
    options = options || {};
    var windowSeconds = options.window || 900;
    var gap = options.gap || 10;
    var format = options.format || function (v) { return String(v); };
    var height = options.height || 140;
    var pad = { top: 8, right: 8, bottom: 18, left: 46 };
    var last = null;

    function clock(t) {
      var d = new Date(t * 1000);
      return String(d.getHours()).padStart(2, "0") + ":" + String(d.getMinutes()).padStart(2, "0") +
        ":" + String(d.getSeconds()).padStart(2, "0");
    }

    function draw(series, now, extra) {
      extra = extra || {};
      last = [series, now, extra];
      var span = extra.start != null ? Math.max(60, now - extra.start) : windowSeconds;
      var width = Math.max(200, Math.round(element.clientWidth || 320));
      var root = svg("svg", {
        viewBox: "0 0 " + width + " " + height,
        width: "100%",
        height: String(height),
        class: "chart-svg",
        role: "img",
        "aria-label": options.label || "chart"
      });
      var plotW = width - pad.left - pad.right;
      var plotH = height - pad.top - pad.bottom;
      var start = now - span;
      var max = 0;
      var names = Object.keys(series);
      names.forEach(function (name) {
        series[name].forEach(function (p) {
          if (p[1] != null && p[0] >= start && p[1] > max) max = p[1];
        });
      });
      var top = niceCeiling(Math.max(max * 1.1, options.minTop || 0));
      function x(t) { return pad.left + ((t - start) / span) * plotW; }
      function y(v) { return pad.top + plotH - (v / top) * plotH; }

      // grid and y labels: 0, half, top
      [0, top / 2, top].forEach(function (v) {
        var yy = Math.round(y(v)) + 0.5;
        root.appendChild(svg("line", { x1: pad.left, x2: width - pad.right, y1: yy, y2: yy, class: "grid" }));
        var label = svg("text", { x: pad.left - 6, y: yy + 4, class: "axis", "text-anchor": "end" });
        label.textContent = format(v);
        root.appendChild(label);
      });
      // x labels: minutes before now, or (the deployment's window) clock times
      [span, (span * 2) / 3, span / 3, 0].forEach(function (ago) {
        var label = svg("text", {
          x: x(now - ago), y: height - 4, class: "axis",
          "text-anchor": ago === span ? "start" : ago === 0 ? "end" : "middle"
        });
        if (ago === 0 && !extra.ended) label.textContent = "now";
        else if (extra.start != null) label.textContent = clock(now - ago);
        else label.textContent = "−" + Math.round(ago / 60) + " min";
        root.appendChild(label);
      });
      // marks: where a step or a weight change happened
      (extra.marks || []).forEach(function (m) {
        if (m.t < start || m.t > now) return;
        var xx = Math.round(x(m.t)) + 0.5;
        var g = svg("g", { class: "mark", "data-mark": m.label });
        var title = svg("title", {});
        title.textContent = m.title || m.label;
        g.appendChild(title);
        g.appendChild(svg("line", { x1: xx, x2: xx, y1: pad.top, y2: pad.top + plotH, class: "mark-line" }));
        var text = svg("text", { x: xx + 3, y: pad.top + 9, class: "mark-label" });
        text.textContent = m.label;
        g.appendChild(text);
        root.appendChild(g);
      });

      names.forEach(function (name) {
        var points = series[name].filter(function (p) { return p[0] >= start; });
        var path = "";
        var previous = null;
        var lastPoint = null;
        points.forEach(function (p) {
          if (p[1] == null) { previous = null; return; }
          var cmd = previous && p[0] - previous[0] <= gap ? "L" : "M";
          path += cmd + x(p[0]).toFixed(1) + " " + y(p[1]).toFixed(1) + " ";
          previous = p;
          lastPoint = p;
        });
        if (path) root.appendChild(svg("path", { d: path, class: "line line-" + name }));
        if (lastPoint) {
          root.appendChild(svg("circle", {
            cx: x(lastPoint[0]).toFixed(1), cy: y(lastPoint[1]).toFixed(1), r: 2.5, class: "dot dot-" + name
          }));
        }
      });
      element.replaceChildren(root);
    }

    if (typeof ResizeObserver === "function") {
      var width = 0;
      new ResizeObserver(function () {
        var now = element.clientWidth;
        if (last && Math.abs(now - width) > 4) {
          width = now;
          draw(last[0], last[1], last[2]);
        }
      }).observe(element);
    }
    return { draw: draw };
  }

  window.Switchyard = window.Switchyard || {};
  window.Switchyard.chart = chart;
  window.Switchyard.niceCeiling = niceCeiling;
})();
