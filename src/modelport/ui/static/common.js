// modelport's pages: what the playground and the status page share.
// Hand-written, no build step, no dependency. Every text from the server goes into the page
// as a text node (textContent); nothing here ever assigns innerHTML.
"use strict";

const MP = (() => {
  const body = document.body;
  const root = body.dataset.root || "";
  const keyRequired = body.dataset.key === "required";
  const KEY = "modelport.inference-key";
  const SVG_NS = "http://www.w3.org/2000/svg";

  function fill(node, attrs, children) {
    for (const [name, value] of Object.entries(attrs || {})) {
      if (value === null || value === undefined || value === false) continue;
      if (name.startsWith("on")) node.addEventListener(name.slice(2), value);
      else node.setAttribute(name, value === true ? "" : String(value));
    }
    for (const child of children.flat()) {
      if (child === null || child === undefined || child === false) continue;
      node.append(child instanceof Node ? child : document.createTextNode(String(child)));
    }
    return node;
  }

  /** An HTML element: el("p", {class: "x"}, "text", child, ...). Strings become text nodes. */
  const el = (tag, attrs, ...children) => fill(document.createElement(tag), attrs, children);
  /** Replace a node's children (null and false are left out, strings become text). */
  const put = (node, ...children) => {
    node.replaceChildren();
    return fill(node, {}, children);
  };
  /** An SVG element, the same way. */
  const svg = (tag, attrs, ...children) =>
    fill(document.createElementNS(SVG_NS, tag), attrs, children);

  const key = () => sessionStorage.getItem(KEY) || "";

  function authHeaders() {
    const given = key();
    return given ? { Authorization: `Bearer ${given}` } : {};
  }

  /** A request to this server; the answer's JSON (or null), status and headers. */
  async function api(path, options = {}) {
    const headers = { ...authHeaders(), ...(options.headers || {}) };
    const response = await fetch(root + path, { ...options, headers });
    let json = null;
    try {
      json = await response.json();
    } catch (_) {
      json = null;
    }
    return { ok: response.ok, status: response.status, json, headers: response.headers };
  }

  /** The message of an error answer ({error, detail, code}): its "error" names field and rule. */
  function problem(answer) {
    const body = answer.json || {};
    return `${answer.status}: ${body.error || "no answer"}`;
  }

  /** The inference key field, shown only when the server needs a key. */
  function keyField(onChange) {
    if (!keyRequired) return null;
    const input = el("input", {
      id: "inference-key", type: "password", autocomplete: "off", value: key(),
      "aria-describedby": "inference-key-help",
    });
    input.addEventListener("change", () => {
      sessionStorage.setItem(KEY, input.value.trim());
      if (onChange) onChange();
    });
    return el("div", { class: "key" },
      el("label", { for: "inference-key" }, "Inference key"), input,
      el("small", { id: "inference-key-help" },
        "This server needs an inference key; it is sent as Authorization: Bearer and kept in " +
        "this tab only."));
  }

  function header(current) {
    const title = body.dataset.title || "modelport";
    const brand = document.getElementById("brand");
    brand.textContent = title;
    brand.setAttribute("href", `${root}/`);
    const links = [["Playground", "/"], ["API docs", "/docs"], ["ReDoc", "/redoc"]];
    document.getElementById("nav").append(
      ...links.map(([text, href]) =>
        el("a", { href: root + href, "aria-current": text === current ? "page" : null }, text)));
  }

  function number(value, digits = 3) {
    if (value === null || value === undefined || Number.isNaN(value)) return "–";
    if (typeof value !== "number") return String(value);
    return Math.abs(value) >= 1000 ? value.toFixed(0) : Number(value.toPrecision(digits)).toString();
  }

  const percent = (value) => `${(value * 100).toFixed(1)} %`;

  /** Horizontal bars: rows of {label, value} with value in 0..1. */
  function bars(rows, { title, highlight } = {}) {
    const rowHeight = 24, labelWidth = 110, barWidth = 260, width = labelWidth + barWidth + 70;
    const chart = svg("svg", {
      class: "bars", role: "img", width, height: rows.length * rowHeight + 4,
      viewBox: `0 0 ${width} ${rows.length * rowHeight + 4}`, "aria-label": title || "bar chart",
    });
    rows.forEach((row, i) => {
      const y = i * rowHeight + 2;
      const length = Math.max(1, Math.round(barWidth * Math.min(1, Math.max(0, row.value))));
      const cls = String(row.label) === String(highlight) ? "bar top" : "bar";
      chart.append(
        svg("text", { x: labelWidth - 8, y: y + 15, "text-anchor": "end", class: "label" },
          String(row.label)),
        svg("rect", { x: labelWidth, y: y + 3, width: barWidth, height: 16, class: "track" }),
        svg("rect", { x: labelWidth, y: y + 3, width: length, height: 16, class: cls }),
        svg("text", { x: labelWidth + barWidth + 6, y: y + 15, class: "value" }, percent(row.value)));
    });
    return chart;
  }

  /** Points with 95 % intervals: rows of {label, value, low, high, n}, on a 0..max axis. */
  function intervals(rows, { title, max, format }) {
    const rowHeight = 34, left = 110, span = 300, width = left + span + 130;
    const height = rows.length * rowHeight + 26;
    const x = (v) => left + span * Math.min(1, Math.max(0, v / max));
    const chart = svg("svg", {
      class: "intervals", role: "img", width, height, viewBox: `0 0 ${width} ${height}`,
      "aria-label": title,
    });
    for (const tick of [0, 0.25, 0.5, 0.75, 1]) {
      chart.append(
        svg("line", { x1: x(tick * max), x2: x(tick * max), y1: 0, y2: height - 18, class: "grid" }),
        svg("text", { x: x(tick * max), y: height - 4, "text-anchor": "middle", class: "tick" },
          format(tick * max)));
    }
    rows.forEach((row, i) => {
      const y = i * rowHeight + 16;
      chart.append(svg("text", { x: left - 8, y: y + 4, "text-anchor": "end", class: "label" },
        row.label));
      if (row.value === null || row.value === undefined) {
        chart.append(svg("text", { x: left + 4, y: y + 4, class: "value" }, `no feedback yet (n=${row.n})`));
        return;
      }
      if (row.low !== null && row.low !== undefined) {
        chart.append(
          svg("line", { x1: x(row.low), x2: x(row.high), y1: y, y2: y, class: "whisker" }),
          svg("line", { x1: x(row.low), x2: x(row.low), y1: y - 6, y2: y + 6, class: "whisker" }),
          svg("line", { x1: x(row.high), x2: x(row.high), y1: y - 6, y2: y + 6, class: "whisker" }));
      }
      chart.append(
        svg("circle", { cx: x(row.value), cy: y, r: 5, class: "point" }),
        svg("text", { x: left + span + 10, y: y + 4, class: "value" },
          `${format(row.value)}  n=${row.n}`));
    });
    return chart;
  }

  /** A small line of the last values (requests per second, say). */
  function sparkline(values, { title }) {
    const width = 240, height = 40;
    const top = Math.max(1e-9, ...values);
    const points = values.map((v, i) =>
      `${(i * width) / Math.max(1, values.length - 1)},${height - 2 - ((height - 4) * v) / top}`);
    return svg("svg", { class: "spark", role: "img", width, height, viewBox: `0 0 ${width} ${height}`,
      "aria-label": title },
      svg("polyline", { points: points.join(" "), class: "line" }));
  }

  function table(headings, rows) {
    return el("table", {},
      el("thead", {}, el("tr", {}, headings.map((h) => el("th", { scope: "col" }, h)))),
      el("tbody", {}, rows.map((cells) => el("tr", {}, cells.map((c) => el("td", {}, c))))));
  }

  return { root, keyRequired, el, put, svg, api, problem, authHeaders, keyField, header, number,
    percent, bars, intervals, sparkline, table };
})();
