// Small SVG charts for the dashboard: a line chart over time (or any
// number) with red alert markers, and a bar chart. No dependencies.
"use strict";

(function () {
  const NS = "http://www.w3.org/2000/svg";
  const W = 600, H = 150, LEFT = 48, RIGHT = 8, TOP = 10, BOTTOM = 22;

  function el(name, attrs, parent) {
    const node = document.createElementNS(NS, name);
    for (const [k, v] of Object.entries(attrs || {})) node.setAttribute(k, v);
    if (parent) parent.appendChild(node);
    return node;
  }

  function text(parent, x, y, content, anchor) {
    const t = el("text", { x, y, "text-anchor": anchor || "start" }, parent);
    t.textContent = content;
    return t;
  }

  function fmt(v) {
    if (!isFinite(v)) return "";
    const a = Math.abs(v);
    if (a !== 0 && (a >= 1e5 || a < 1e-2)) return v.toExponential(2);
    return (Math.round(v * 100) / 100).toString();
  }

  function fmtX(v, isTime) {
    if (!isTime) return fmt(v);
    return new Date(v).toISOString().slice(11, 19);
  }

  // A chart box (title + svg) appended to `container`.
  function frame(container, title, kind) {
    const box = document.createElement("div");
    box.className = "chart";
    box.dataset.kind = kind;
    const caption = document.createElement("div");
    caption.className = "title";
    caption.textContent = title;
    box.appendChild(caption);
    const svg = el("svg", { viewBox: `0 0 ${W} ${H}`, preserveAspectRatio: "none", role: "img" });
    el("title", {}, svg).textContent = title;
    box.appendChild(svg);
    container.appendChild(box);
    return { box, svg };
  }

  function range(values) {
    let lo = Infinity, hi = -Infinity;
    for (const v of values) { if (v < lo) lo = v; if (v > hi) hi = v; }
    if (!isFinite(lo)) return [0, 1];
    if (lo === hi) { lo -= 1; hi += 1; }
    return [lo, hi];
  }

  // y range, and the x range when the x axis is numeric or time.
  function axes(svg, [ylo, yhi], xRange, isTime) {
    el("line", { class: "axis", x1: LEFT, y1: H - BOTTOM, x2: W - RIGHT, y2: H - BOTTOM }, svg);
    el("line", { class: "axis", x1: LEFT, y1: TOP, x2: LEFT, y2: H - BOTTOM }, svg);
    text(svg, LEFT - 4, TOP + 8, fmt(yhi), "end");
    text(svg, LEFT - 4, H - BOTTOM, fmt(ylo), "end");
    if (xRange) {
      text(svg, LEFT, H - 6, fmtX(xRange[0], isTime));
      text(svg, W - RIGHT, H - 6, fmtX(xRange[1], isTime), "end");
    }
  }

  // points: [{x, y}] sorted by x; markers: [{x, label}]; opts.time: x in ms.
  function line(container, title, points, markers, opts) {
    const { box, svg } = frame(container, title, "line");
    const isTime = !!(opts && opts.time);
    const good = points.filter((p) => isFinite(p.x) && isFinite(p.y));
    box.dataset.points = String(good.length);
    const [xlo, xhi] = good.length ? [good[0].x, good[good.length - 1].x] : [0, 1];
    const [ylo, yhi] = range(good.map((p) => p.y));
    const sx = (x) => LEFT + ((x - xlo) / ((xhi - xlo) || 1)) * (W - LEFT - RIGHT);
    const sy = (y) => H - BOTTOM - ((y - ylo) / (yhi - ylo)) * (H - TOP - BOTTOM);
    axes(svg, [ylo, yhi], [xlo, xhi], isTime);
    let shown = 0;
    for (const m of markers || []) {
      if (!(m.x >= xlo && m.x <= xhi)) continue;
      const x = sx(m.x);
      el("line", { class: "marker", x1: x, y1: TOP, x2: x, y2: H - BOTTOM }, svg);
      const dot = el("circle", { class: "marker-dot", cx: x, cy: TOP, r: 3 }, svg);
      el("title", {}, dot).textContent = m.label;
      shown += 1;
    }
    box.dataset.markers = String(shown);
    if (good.length === 0) {
      text(svg, W / 2, H / 2, "no data", "middle");
      return box;
    }
    const d = good.map((p, i) => `${i ? "L" : "M"}${sx(p.x).toFixed(1)},${sy(p.y).toFixed(1)}`).join("");
    el("path", { class: "line", d }, svg);
    return box;
  }

  // labels[i] / values[i]: one bar each (at most 60 shown).
  function bars(container, title, labels, values) {
    const { box, svg } = frame(container, title, "bars");
    const n = Math.min(labels.length, 60);
    box.dataset.points = String(n);
    const vals = values.slice(0, n).map(Number);
    const [lo0, hi] = range(vals.concat([0]));
    const lo = Math.min(lo0, 0);
    axes(svg, [lo, hi]);
    const step = (W - LEFT - RIGHT) / Math.max(n, 1);
    const sy = (y) => H - BOTTOM - ((y - lo) / ((hi - lo) || 1)) * (H - TOP - BOTTOM);
    for (let i = 0; i < n; i++) {
      const y0 = sy(0), y1 = sy(vals[i]);
      const bar = el("rect", {
        class: "bar", x: LEFT + i * step + 1, width: Math.max(step - 2, 1),
        y: Math.min(y0, y1), height: Math.max(Math.abs(y1 - y0), 0.5),
      }, svg);
      el("title", {}, bar).textContent = `${labels[i]}: ${fmt(vals[i])}`;
    }
    if (n > 0) {
      text(svg, LEFT, H - 6, String(labels[0]));
      text(svg, W - RIGHT, H - 6, String(labels[n - 1]), "end");
    }
    return box;
  }

  window.SpindleCharts = { line, bars };
})();
