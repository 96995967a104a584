// vmmap HTML report: draws the data embedded in #vmmap-data. No framework
// and nothing loaded from anywhere: the file is the whole report.
"use strict";
(function () {
  const D = JSON.parse(document.getElementById("vmmap-data").textContent);
  const $ = (id) => document.getElementById(id);
  const T = D.types;
  const AU = BigInt(D.au);
  const FREE = T.findIndex((t) => t.id === "free");
  const PT = T.findIndex((t) => t.id === "page_table");
  const SVGNS = "http://www.w3.org/2000/svg";

  // ---- formatting ---------------------------------------------------
  const UNITS = ["K", "M", "G", "T", "P", "E"];
  /** Bytes as the CLI prints them (units.rs, the same rounding): 4K,
   * 132K, 1.2M; zero is blank. */
  function size(v) {
    if (v === null || v === undefined) return "n/a";
    if (v === 0) return "";
    const a = Math.abs(v);
    let s;
    if (a < 1024) s = a + "B";
    else {
      let u = 0;
      while (u < UNITS.length - 1 && Math.floor((a + Math.pow(2, 10 * (u + 1) - 1)) / Math.pow(2, 10 * (u + 1))) >= 1024) u++;
      const div = Math.pow(2, 10 * (u + 1));
      const tenths = Math.floor((a * 10 + div / 2) / div);
      s = tenths < 100 && a % div !== 0 ? Math.floor(tenths / 10) + "." + (tenths % 10) + UNITS[u] : Math.floor((a + div / 2) / div) + UNITS[u];
    }
    return v < 0 ? "\u2212" + s : s;
  }
  function signed(v) {
    if (v === null || v === undefined) return "n/a";
    return v > 0 ? "+" + size(v) : size(v);
  }
  function hex(units) {
    return "0x" + (BigInt(units) * AU).toString(16).padStart(12, "0");
  }
  function el(tag, attrs, ...kids) {
    const e = document.createElement(tag);
    if (attrs) for (const k in attrs) {
      if (k === "text") e.textContent = attrs[k];
      else if (k === "class") e.className = attrs[k];
      else if (k.startsWith("on")) e.addEventListener(k.slice(2), attrs[k]);
      else e.setAttribute(k, attrs[k]);
    }
    for (const k of kids) if (k !== null && k !== undefined) e.append(k);
    return e;
  }
  function swatch(t) {
    return el("span", { class: "swatch", style: "background:" + T[t].colour, "aria-hidden": "true" });
  }
  function when(ms) {
    return new Date(ms).toISOString().replace("T", " ").replace(/\.\d+Z$/, " UTC");
  }
  function perms(p) {
    return (p & 1 ? "r" : "-") + (p & 2 ? "w" : "-") + (p & 4 ? "x" : "-") + (p & 8 ? "s" : "p");
  }

  // ---- decoding -----------------------------------------------------
  const cache = new Map();
  const DET_IDS = D.det_cols;
  /** A column table to fill. */
  function table(top) {
    const t = { start: [], z: [], y: [], p: [], d: [], f: DET_IDS.map(() => []) };
    if (top) { t.k = []; t.m = []; }
    return t;
  }
  function copyRow(to, from, i, start) {
    to.start.push(start);
    to.z.push(from.z[i]); to.y.push(from.y[i]); to.p.push(from.p[i]); to.d.push(from.d[i]);
    for (let c = 0; c < to.f.length; c++) to.f[c].push(from.f[c][i]);
    if (to.k) { to.k.push(from.k[i]); to.m.push(from.m[i]); }
  }
  /** A snapshot's regions, decoded: absolute starts (in address units),
   * and the rows it copies from the previous snapshot put in place. */
  function snap(i) {
    if (cache.has(i)) return cache.get(i);
    const S = D.snaps[i], R = S.r, SB = S.s;
    const r = table(true), s = table(false), subOff = [];
    let cur = 0, li = 0, ls = 0;
    const literal = (count) => {
      for (let q = 0; q < count; q++, li++) {
        const st = cur + R.a[li];
        copyRow(r, R, li, st);
        subOff.push(s.z.length);
        let c = st;
        for (let j = 0; j < R.k[li]; j++, ls++) {
          const sst = c + SB.a[ls];
          copyRow(s, SB, ls, sst);
          c = sst + SB.z[ls];
        }
        cur = st + R.z[li];
      }
    };
    const copy = (count, from) => {
      const P = snap(i - 1);
      for (let q = 0; q < count; q++) {
        const j = from + q;
        copyRow(r, P.r, j, P.r.start[j]);
        subOff.push(s.z.length);
        for (let b = P.subOff[j]; b < P.subOff[j + 1]; b++) copyRow(s, P.s, b, P.s.start[b]);
        cur = P.r.start[j] + P.r.z[j];
      }
    };
    if (!S.x) literal(R.z.length);
    else for (let q = 0; q < S.x.length; q++) {
      if (S.x[q] > 0) literal(S.x[q]);
      else { copy(-S.x[q], S.x[q + 1]); q++; }
    }
    subOff.push(s.z.length);
    const v = { S, n: r.z.length, r, s, start: r.start, subOff, sstart: s.start };
    cache.set(i, v);
    return v;
  }

  // ---- state --------------------------------------------------------
  const st = {
    snap: D.snaps.length - 1,
    type: null,          // Summary filter: a type index or null
    search: "",
    sort: { key: "addr", dir: 1 },
    open: new Set(),      // expanded groups (top-level indices)
    cursor: 0,            // keyboard row in the view
    view: new Int32Array(0), // rows shown: i >= 0 top-level, ~j sub-block j
  };

  // ---- header -------------------------------------------------------
  function header() {
    const p = D.process;
    $("title").textContent = "vmmap report: " + (p.name || "process") + " (pid " + p.pid + ")";
    const bits = [];
    if (p.cmdline && p.cmdline.length) bits.push(p.cmdline.join(" "));
    if (p.user) bits.push("user " + p.user);
    if (p.kernel) bits.push("Linux " + p.kernel);
    bits.push(D.snaps.length + (D.snaps.length === 1 ? " snapshot" : " snapshots"));
    if (D.timeline.length > D.snaps.length) bits.push((D.timeline.length - D.snaps.length) + " samples");
    bits.push("from " + D.source);
    $("meta").textContent = bits.join(" \u00b7 ");
    const nav = $("nav");
    const secs = [["overview", "Overview"], ["summary", "Summary"], ["details", "Details"]];
    if (D.timeline.length > 1) secs.push(["timeline", "Timeline"]);
    if (D.snaps.length > 1) secs.push(["compare", "Compare"]);
    secs.push(["fragmentation", "Fragmentation"]);
    if (D.tree) secs.push(["trace", "Allocations"]);
    for (const [id, name] of secs) nav.append(el("a", { href: "#" + id, text: name }));
    if (D.snaps.length > 1) {
      $("snap-pick").hidden = false;
      const sel = $("snap-select");
      fillSnapSelect(sel);
      sel.value = String(st.snap);
      sel.addEventListener("change", () => showSnapshot(Number(sel.value)));
    }
  }
  function fillSnapSelect(sel) {
    D.snaps.forEach((s, i) => sel.append(el("option", { value: String(i), text: "#" + (i + 1) + "  " + when(s.t) })));
  }

  // ---- bar graphs ---------------------------------------------------
  function bars() {
    const S = D.snaps[st.snap];
    const box = $("bars");
    box.replaceChildren();
    // Summary columns: size committed private total_ws ...
    const cols = [["Committed", 1], ["Private", 2], ["Working Set", 3]];
    const max = Math.max(1, ...cols.map(([, c]) => S.sum[T.length][c] || 0));
    for (const [name, c] of cols) {
      const bar = el("div", { class: "bar", role: "img" });
      const parts = [];
      for (let t = 0; t < T.length; t++) {
        if (t === FREE) continue;
        const v = S.sum[t][c] || 0;
        if (v <= 0) continue;
        parts.push(T[t].name + " " + size(v));
        bar.append(el("span", { style: "width:" + (100 * v / max) + "%;background:" + T[t].colour, title: T[t].name + ": " + size(v) }));
      }
      bar.setAttribute("aria-label", name + ": " + (parts.join(", ") || "nothing"));
      box.append(el("div", { class: "bar-label", text: name }), bar, el("div", { class: "bar-total", text: size(S.sum[T.length][c]) || "0" }));
    }
    const lg = $("legend");
    lg.replaceChildren();
    T.forEach((t, i) => { if (i !== FREE) lg.append(el("span", null, swatch(i), t.name)); });
  }

  // ---- Summary ------------------------------------------------------
  const SUM_HEAD = { size: "Size", committed: "Committed", private: "Private", total_ws: "Total WS", private_ws: "Private WS", shareable_ws: "Shareable WS", shared_ws: "Shared WS", locked_ws: "Locked WS", blocks: "Blocks", largest: "Largest" };
  function summary() {
    const S = D.snaps[st.snap];
    const tab = $("summary-table");
    tab.replaceChildren();
    const hr = el("tr", null, el("th", { class: "l", scope: "col", text: "Type" }));
    for (const c of D.sum_cols) hr.append(el("th", { scope: "col", text: SUM_HEAD[c] || c }));
    tab.append(el("thead", null, hr));
    const body = el("tbody");
    const rowOf = (t) => {
      const vals = S.sum[t];
      const tr = el("tr", { tabindex: "0", "data-type": t < T.length ? T[t].id : "total" });
      if (t === T.length) tr.className = "total";
      tr.append(el("td", { class: "l" }, t < T.length ? swatch(t) : null, t < T.length ? T[t].name : "Total"));
      D.sum_cols.forEach((c, k) => tr.append(el("td", { class: "n", text: c === "blocks" ? (vals[k] === null ? "n/a" : vals[k] ? vals[k].toLocaleString("en") : "") : size(vals[k]) })));
      const pick = () => setType(t === T.length || st.type === t ? null : t);
      tr.addEventListener("click", pick);
      tr.addEventListener("keydown", (e) => { if (e.key === "Enter" || e.key === " ") { e.preventDefault(); pick(); } });
      tr.setAttribute("aria-selected", String(st.type === t));
      return tr;
    };
    for (let t = 0; t < T.length; t++) body.append(rowOf(t));
    body.append(rowOf(T.length));
    if (S.ag) {
      // A traced run's agent: its own regions, in no row above.
      const tr = el("tr", { class: "agent", "data-type": "vmmap-agent" });
      tr.append(el("td", { class: "l", text: "vmmap agent" }));
      D.sum_cols.forEach((c, k) => tr.append(el("td", { class: "n", text: c === "blocks" ? (S.ag[k] === null ? "n/a" : S.ag[k] ? S.ag[k].toLocaleString("en") : "") : size(S.ag[k]) })));
      body.append(tr);
    }
    tab.append(body);
  }
  function setType(t) {
    st.type = t;
    for (const tr of $("summary-table").querySelectorAll("tbody tr")) {
      const id = tr.getAttribute("data-type");
      tr.setAttribute("aria-selected", String(t !== null && T[t].id === id));
    }
    const chip = $("filter-chip");
    if (t === null) chip.hidden = true;
    else {
      chip.hidden = false;
      chip.replaceChildren(swatch(t), "Type: " + T[t].name, el("button", { type: "button", "aria-label": "Show all types", title: "Show all types", text: "\u2715", onclick: () => setType(null) }));
    }
    st.cursor = 0;
    rebuild();
  }

  // ---- Details ------------------------------------------------------
  // Columns: key, header, value getter (for sort), cell text.
  const DET = D.det_cols;
  const figCol = (id) => DET.indexOf(id);
  function detailColumns() {
    const cols = [
      { key: "addr", head: "Address", l: true },
      { key: "type", head: "Type", l: true },
      { key: "size", head: "Size" },
    ];
    const heads = { committed: "Committed", private: "Private", total_ws: "Total WS", private_ws: "Private WS", shareable_ws: "Shareable WS", shared_ws: "Shared WS", locked_ws: "Locked WS", swap: "Swap" };
    for (const id of DET) cols.push({ key: id, head: heads[id] || id, fig: figCol(id) });
    cols.push({ key: "blocks", head: "Blocks" }, { key: "prot", head: "Protection", l: true }, { key: "details", head: "Details", l: true });
    return cols;
  }
  const COLS = detailColumns();
  const WIDTH = { addr: 150, type: 128, committed: 86, shareable_ws: 84, prot: 96, blocks: 60 };

  function sortValue(v, key, i) {
    const r = v.r;
    switch (key) {
      case "addr": return v.start[i];
      case "type": return T[r.y[i]].name;
      case "size": return r.z[i];
      case "blocks": return r.k[i];
      case "prot": return perms(r.p[i]);
      case "details": return D.strings[r.d[i]];
      default: return r.f[figCol(key)][i];
    }
  }

  function rebuild() {
    const v = snap(st.snap), r = v.r;
    const q = st.search.trim().toLowerCase();
    let rows = [];
    for (let i = 0; i < v.n; i++) {
      if (st.type !== null && r.y[i] !== st.type) continue;
      if (q && !(D.strings[r.d[i]].toLowerCase().includes(q) || hex(v.start[i]).includes(q))) continue;
      rows.push(i);
    }
    const { key, dir } = st.sort;
    if (key !== "addr" || dir !== 1) {
      const vals = new Map();
      for (const i of rows) vals.set(i, sortValue(v, key, i));
      rows.sort((a, b) => {
        const x = vals.get(a), y = vals.get(b);
        const c = typeof x === "string" ? x.localeCompare(y) : x - y;
        return c !== 0 ? dir * c : v.start[a] - v.start[b];
      });
    }
    const out = [];
    for (const i of rows) {
      out.push(i);
      if (r.k[i] && st.open.has(i)) for (let j = v.subOff[i]; j < v.subOff[i + 1]; j++) out.push(~j);
    }
    st.view = Int32Array.from(out);
    if (st.cursor >= out.length) st.cursor = Math.max(0, out.length - 1);
    $("details-count").textContent = rows.length.toLocaleString("en") + " of " + v.n.toLocaleString("en") + " regions";
    drawDetails(true);
  }

  function detailsHead() {
    const tab = $("details-table");
    tab.replaceChildren();
    const cg = el("colgroup");
    // Details takes what the fixed columns leave.
    for (const c of COLS) cg.append(c.key === "details" ? el("col") : el("col", { style: "width:" + (WIDTH[c.key] || 72) + "px" }));
    const hr = el("tr");
    for (const c of COLS) {
      const th = el("th", { scope: "col", class: c.l ? "l" : "", "aria-sort": "none", "data-key": c.key });
      th.append(el("button", { type: "button", text: c.head, onclick: () => {
        st.sort = st.sort.key === c.key ? { key: c.key, dir: -st.sort.dir } : { key: c.key, dir: c.l ? 1 : -1 };
        markSort();
        rebuild();
      } }));
      hr.append(th);
    }
    tab.append(cg, el("thead", null, hr), el("tbody", { id: "details-body" }));
    markSort();
  }
  function markSort() {
    for (const th of $("details-table").querySelectorAll("th")) {
      const k = th.getAttribute("data-key");
      th.setAttribute("aria-sort", k === st.sort.key ? (st.sort.dir > 0 ? "ascending" : "descending") : "none");
    }
  }

  const ROW = 24;
  /** The sticky header's height: rows start below it. */
  function headHeight() {
    const h = $("details-table").tHead;
    return h ? h.offsetHeight : 28;
  }
  let lastWindow = "";
  function drawDetails(force) {
    const box = $("details-scroll");
    const body = $("details-body");
    const v = snap(st.snap), S = v.S;
    const n = st.view.length;
    const headH = headHeight();
    const first = Math.max(0, Math.floor((box.scrollTop - headH) / ROW) - 10);
    // Before the first rows exist the box has no height yet: the window's
    // height bounds what it can show.
    const count = Math.ceil(Math.max(box.clientHeight, window.innerHeight) / ROW) + 20;
    const last = Math.min(n, first + count);
    const key = first + ":" + last + ":" + st.cursor;
    if (!force && key === lastWindow) return;
    lastWindow = key;
    const frag = document.createDocumentFragment();
    const ncol = COLS.length;
    frag.append(el("tr", { class: "spacer", "aria-hidden": "true" }, el("td", { colspan: String(ncol), style: "height:" + first * ROW + "px" })));
    const na = S.na;
    for (let k = first; k < last; k++) {
      const e = st.view[k];
      const sub = e < 0;
      const j = sub ? ~e : e;
      const t = sub ? v.s : v.r;
      const start = sub ? v.sstart[j] : v.start[j];
      const tr = el("tr", { "data-row": String(k), "data-start": hex(start) });
      if (sub) tr.className = "sub";
      if (k === st.cursor) tr.className += " cur";
      const ac = el("td", { class: "addr l" });
      if (!sub && v.r.k[j]) {
        const open = st.open.has(j);
        tr.setAttribute("aria-expanded", String(open));
        ac.append(el("button", { type: "button", class: "tog", tabindex: "-1", "aria-label": open ? "Collapse" : "Expand", text: open ? "\u25BE" : "\u25B8", onclick: (ev) => { ev.stopPropagation(); st.cursor = k; toggle(j); } }));
      } else if (!sub) ac.append(el("span", { class: "tog-none" }));
      ac.append(hex(start));
      tr.append(ac);
      tr.append(el("td", { class: "l" }, swatch(t.y[j]), T[t.y[j]].name));
      tr.append(el("td", { class: "n", text: size(t.z[j] * D.au) }));
      DET.forEach((id, c) => tr.append(el("td", { class: "n", text: na & (1 << c) ? "n/a" : size(t.f[c][j] * D.fu) })));
      tr.append(el("td", { class: "n", text: sub ? "" : v.r.k[j] ? String(v.r.k[j]) : "" }));
      tr.append(el("td", { class: "l addr", text: perms(t.p[j]) }));
      const det = D.strings[t.d[j]];
      tr.append(el("td", { class: "l", text: det, title: det }));
      tr.addEventListener("click", () => { st.cursor = k; drawDetails(true); });
      frag.append(tr);
    }
    frag.append(el("tr", { class: "spacer", "aria-hidden": "true" }, el("td", { colspan: String(ncol), style: "height:" + (n - last) * ROW + "px" })));
    body.replaceChildren(frag);
  }
  function toggle(i) {
    if (st.open.has(i)) st.open.delete(i); else st.open.add(i);
    rebuild();
  }
  function detailsKeys(e) {
    const n = st.view.length;
    if (!n) return;
    const box = $("details-scroll");
    const page = Math.max(1, Math.floor(box.clientHeight / ROW) - 2);
    let c = st.cursor;
    const e0 = st.view[c];
    switch (e.key) {
      case "ArrowDown": c++; break;
      case "ArrowUp": c--; break;
      case "PageDown": c += page; break;
      case "PageUp": c -= page; break;
      case "Home": c = 0; break;
      case "End": c = n - 1; break;
      case "Enter": case " ": case "ArrowRight": case "ArrowLeft":
        if (e0 >= 0 && snap(st.snap).r.k[e0]) {
          const open = st.open.has(e0);
          if (e.key === "ArrowRight" && open) return;
          if (e.key === "ArrowLeft" && !open) return;
          e.preventDefault();
          toggle(e0);
        }
        return;
      default: return;
    }
    e.preventDefault();
    st.cursor = Math.max(0, Math.min(n - 1, c));
    const head = headHeight();
    const top = head + st.cursor * ROW;
    if (top < box.scrollTop + head) box.scrollTop = top - head;
    else if (top + ROW > box.scrollTop + box.clientHeight) box.scrollTop = top + ROW - box.clientHeight;
    drawDetails(true);
  }

  // ---- timeline -----------------------------------------------------
  function axisTicks(max, n) {
    if (max <= 0) return [0];
    const raw = max / n;
    const p = Math.pow(2, Math.ceil(Math.log2(raw)));
    const out = [];
    for (let v = 0; ; v += p) {
      out.push(v);
      if (v >= max) return out;
    }
  }
  function timeline() {
    const P = D.timeline;
    if (P.length < 2) return;
    $("timeline").hidden = false;
    const metric = Number($("timeline-metric").value);
    const W = 1100, H = 320, L = 70, R = 20, TP = 14, B = 36;
    const t0 = P[0].t, t1 = Math.max(P[P.length - 1].t, t0 + 1);
    const full = P.filter((p) => p.b);
    let max = 1;
    for (const p of P) max = Math.max(max, p.rss || 0);
    for (const p of full) max = Math.max(max, p.b.reduce((a, x) => a + x[metric], 0));
    const ticks = axisTicks(max, 5);
    max = ticks[ticks.length - 1] || max;
    const x = (t) => L + (W - L - R) * (t - t0) / (t1 - t0);
    const y = (v) => TP + (H - TP - B) * (1 - v / max);
    const svg = document.createElementNS(SVGNS, "svg");
    const add = (parent, tag, attrs, text) => {
      const e = document.createElementNS(SVGNS, tag);
      for (const k in attrs) e.setAttribute(k, attrs[k]);
      if (text !== undefined) e.textContent = text;
      parent.append(e);
      return e;
    };
    svg.setAttribute("viewBox", "0 0 " + W + " " + H);
    svg.setAttribute("width", String(W));
    svg.setAttribute("role", "img");
    svg.setAttribute("aria-label", "Memory over time, stacked by type");
    for (const v of ticks) {
      add(svg, "line", { x1: L, x2: W - R, y1: y(v), y2: y(v), stroke: "#e5e9ee" });
      add(svg, "text", { x: L - 6, y: y(v) + 4, "text-anchor": "end", fill: "#5f6b76" }, size(v) || "0");
    }
    // Relative time in a unit chosen by the span (ms under 2 s, s under
    // 2 min, min under 2 h, else h), as the terminal's timeline: a run of
    // 13 ms reads +2.6ms, +5.2ms... rather than +0.0s five times.
    const span = t1 - t0;
    const [unit, suffix] = span < 2e3 ? [1, "ms"] : span < 12e4 ? [1e3, "s"] : span < 72e5 ? [6e4, "min"] : [36e5, "h"];
    const spanUnits = span / unit;
    for (let k = 0; k <= 5; k++) {
      const t = t0 + span * k / 5;
      const label = k === 0 ? "0" : "+" + (spanUnits * k / 5).toFixed(spanUnits < 50 ? 1 : 0) + suffix;
      add(svg, "text", { x: x(t), y: H - 14, "text-anchor": "middle", fill: "#5f6b76" }, label);
    }
    add(svg, "line", { x1: L, x2: L, y1: TP, y2: H - B, stroke: "#8a96a3" });
    // Stacked areas between full snapshots, one per type.
    if (full.length) {
      const base = full.map(() => 0);
      for (let t = 0; t < full[0].b.length; t++) {
        const top = full.map((p, i) => base[i] + p.b[t][metric]);
        if (top.every((v, i) => v === base[i])) continue;
        let d = "";
        full.forEach((p, i) => { d += (i ? "L" : "M") + x(p.t).toFixed(1) + "," + y(top[i]).toFixed(1); });
        if (full.length === 1) d += "L" + (x(full[0].t) + 4) + "," + y(top[0]).toFixed(1);
        for (let i = full.length - 1; i >= 0; i--) d += "L" + x(full[i].t).toFixed(1) + "," + y(base[i]).toFixed(1);
        add(add(svg, "path", { d: d + "Z", fill: T[t].colour, "fill-opacity": "0.85", stroke: "none" }), "title", {}, T[t].name);
        top.forEach((v, i) => { base[i] = v; });
      }
    }
    const rss = P.filter((p) => p.rss !== null);
    if (rss.length) {
      let d = "";
      rss.forEach((p, i) => { d += (i ? "L" : "M") + x(p.t).toFixed(1) + "," + y(p.rss).toFixed(1); });
      add(svg, "path", { d, fill: "none", stroke: "#1d2329", "stroke-width": "1.5" });
    }
    for (const p of full) {
      const total = p.b.reduce((a, v) => a + v[metric], 0);
      const c = add(svg, "circle", { cx: x(p.t), cy: y(total), r: 5, fill: "#fff", stroke: "#1d2329", "stroke-width": "1.5", class: "dot" + (p.s === st.snap ? " sel" : ""), tabindex: "0", role: "button", "data-snap": String(p.s), "aria-label": "Snapshot " + (p.s + 1) });
      add(c, "title", {}, "Snapshot " + (p.s + 1) + " at +" + ((p.t - t0) / unit).toFixed(1) + suffix + ": " + size(total));
      const go = () => showSnapshot(p.s);
      c.addEventListener("click", go);
      c.addEventListener("keydown", (e) => { if (e.key === "Enter" || e.key === " ") { e.preventDefault(); go(); } });
    }
    $("timeline-chart").replaceChildren(svg);
  }

  // ---- diff ---------------------------------------------------------
  function compareSetup() {
    if (D.snaps.length < 2) return;
    $("compare").hidden = false;
    const a = $("diff-a"), b = $("diff-b");
    fillSnapSelect(a);
    fillSnapSelect(b);
    a.value = "0";
    b.value = String(D.snaps.length - 1);
    const run = () => compare(Number(a.value), Number(b.value));
    $("diff-run").addEventListener("click", run);
    a.addEventListener("change", run);
    b.addEventListener("change", run);
  }
  function regionAt(v, i) {
    const r = v.r;
    return { start: v.start[i], size: r.z[i], type: r.y[i], p: r.p[i], d: r.d[i], f: DET.map((_, c) => r.f[c][i]) };
  }
  function compare(ia, ib) {
    const A = snap(ia), B = snap(ib);
    const out = $("diff-out");
    out.replaceChildren();
    out.append(el("p", { class: "figures", text: "From snapshot " + (ia + 1) + " (" + when(A.S.t) + ") to snapshot " + (ib + 1) + " (" + when(B.S.t) + "), " + ((B.S.t - A.S.t) / 1000).toFixed(1) + " s later." }));
    // By type: the Summaries' differences.
    out.append(el("h3", { text: "By type" }));
    const bt = el("table", { class: "num-table", id: "diff-types" });
    const hr = el("tr", null, el("th", { class: "l", scope: "col", text: "Type" }));
    for (const c of D.sum_cols) hr.append(el("th", { scope: "col", text: "\u0394 " + (SUM_HEAD[c] || c) }));
    bt.append(el("thead", null, hr));
    const body = el("tbody");
    for (let t = 0; t <= T.length; t++) {
      const a = A.S.sum[t], b = B.S.sum[t];
      if (t < T.length && a.every((x, k) => x === b[k])) continue;
      const tr = el("tr", { "data-type": t < T.length ? T[t].id : "total" });
      if (t === T.length) tr.className = "total";
      tr.append(el("td", { class: "l" }, t < T.length ? swatch(t) : null, t < T.length ? T[t].name : "Total"));
      D.sum_cols.forEach((c, k) => {
        const d = a[k] === null || b[k] === null ? null : b[k] - a[k];
        tr.append(el("td", { class: "n " + (d > 0 ? "pos" : d < 0 ? "neg" : ""), "data-col": c, "data-delta": d === null ? "" : String(d), text: c === "blocks" ? (d ? (d > 0 ? "+" : "\u2212") + Math.abs(d) : "") : signed(d) }));
      });
      body.append(tr);
    }
    bt.append(body);
    out.append(el("div", { class: "scroll-x" }, bt));
    // By region: regions matched by track.
    const byTrack = new Map();
    for (let i = 0; i < A.n; i++) byTrack.set(A.r.m[i], i);
    const changes = [];
    const seen = new Set();
    const ci = figCol("committed"), wi = figCol("total_ws"), pi = figCol("private"), si = figCol("swap");
    for (let j = 0; j < B.n; j++) {
      const i = byTrack.get(B.r.m[j]);
      const b = regionAt(B, j);
      if (i === undefined) { changes.push({ kinds: ["new"], a: null, b }); continue; }
      seen.add(i);
      const a = regionAt(A, i);
      const kinds = [];
      if (b.size > a.size) kinds.push("grown");
      if (b.size < a.size) kinds.push("shrunk");
      if (b.start !== a.start) kinds.push("moved");
      if ((a.p & 7) !== (b.p & 7)) kinds.push("protection changed");
      if (a.type !== b.type) kinds.push("type changed");
      if (a.d !== b.d) kinds.push("renamed");
      if ([ci, wi, pi, si].some((c) => c >= 0 && a.f[c] !== b.f[c])) kinds.push("figures changed");
      if (kinds.length) changes.push({ kinds, a, b });
    }
    for (let i = 0; i < A.n; i++) if (!seen.has(i)) changes.push({ kinds: ["removed"], a: regionAt(A, i), b: null });
    changes.sort((x, y) => (x.b || x.a).start - (y.b || y.a).start || (x.b ? 1 : 0) - (y.b ? 1 : 0));
    out.append(el("h3", { text: "By region: " + changes.length + (changes.length === 1 ? " change" : " changes") }));
    const rt = el("table", { class: "num-table", id: "diff-regions" });
    const rh = el("tr");
    for (const [h, l] of [["Change", 1], ["Address", 1], ["Type", 1], ["Size", 0], ["\u0394 Size", 0], ["\u0394 Committed", 0], ["\u0394 Total WS", 0], ["\u0394 Private", 0], ["Details", 1]]) rh.append(el("th", { scope: "col", class: l ? "l" : "", text: h }));
    rt.append(el("thead", null, rh));
    const rb = el("tbody");
    rt.append(rb);
    const fu = D.fu, au = D.au;
    const delta = (c) => (x) => ((x.b ? x.b.f[c] : 0) - (x.a ? x.a.f[c] : 0)) * fu;
    const dc = delta(ci), dw = delta(wi), dp = delta(pi);
    let shown = 0;
    const more = el("button", { type: "button", text: "Show more" });
    const page = () => {
      const end = Math.min(changes.length, shown + 500);
      for (; shown < end; shown++) {
        const x = changes[shown], cur = x.b || x.a;
        const label = x.kinds.find((k) => ["new", "removed", "grown", "shrunk"].includes(k)) || "changed";
        const tr = el("tr", { "data-kind": label });
        tr.append(el("td", { class: "l", title: x.kinds.join(", ") }, el("span", { class: "kind " + label, text: label })));
        tr.append(el("td", { class: "l addr", text: hex(cur.start) }));
        tr.append(el("td", { class: "l" }, swatch(cur.type), T[cur.type].name));
        tr.append(el("td", { class: "n", text: size(cur.size * au) }));
        for (const d of [((x.b ? x.b.size : 0) - (x.a ? x.a.size : 0)) * au, dc(x), dw(x), dp(x)]) tr.append(el("td", { class: "n " + (d > 0 ? "pos" : d < 0 ? "neg" : ""), text: signed(d) }));
        tr.append(el("td", { class: "l", text: D.strings[cur.d] }));
        rb.append(tr);
      }
      more.hidden = shown >= changes.length;
      more.textContent = "Show more (" + (changes.length - shown) + " left)";
    };
    more.addEventListener("click", page);
    out.append(el("div", { class: "scroll-x" }, rt), more);
    page();
  }

  // ---- fragmentation map --------------------------------------------
  /** The axis length of a stretch, as layout.rs computes it. */
  function units(bytes) {
    const page = D.process.page || 4096;
    const pages = Math.max(1, Math.ceil(bytes / page));
    const k = Math.floor(Math.log2(pages));
    const base = Math.pow(2, k);
    return 16 * (1 + k) + Math.floor(16 * (pages - base) / base);
  }
  let fragSegs = [];
  function fragmentation() {
    const v = snap(st.snap), S = v.S, r = v.r;
    const f = S.frag;
    $("frag-figures").textContent = v.n.toLocaleString("en") + " regions, " + f.gaps.toLocaleString("en") + " free gaps holding " + size(f.free) + "; largest free block " + size(f.largest) + (f.largest_at ? " at " + f.largest_at : "") + "; reserved (PROT_NONE) " + (size(f.reserved) || "0") + ".";
    // Regions and gaps in address order.
    const segs = [];
    let cur = S.lo;
    let pos = 0;
    const push = (start, len, type, reserved, idx) => {
      const u = units(len * D.au);
      segs.push({ start, len, type, reserved, idx, pos, u });
      pos += u;
    };
    // A region as the text and SVG maps cut it: one stretch per run of
    // sub-blocks (VMAs) that are all PROT_NONE or all accessible, so that
    // an arena's or a Java heap's reserved tail is hatched, not solid.
    const none = (p) => (p & 7) === 0;
    const region = (i) => {
      const a = v.subOff[i], b = v.subOff[i + 1], end = v.start[i] + r.z[i];
      if (a === b) { push(v.start[i], r.z[i], r.y[i], none(r.p[i]), i); return; }
      for (let k = a; k < b;) {
        const res = none(v.s.p[k]);
        let e = k;
        while (e < b && none(v.s.p[e]) === res) e++;
        const from = k === a ? v.start[i] : v.sstart[k];
        push(from, (e < b ? v.sstart[e] : end) - from, r.y[i], res, i);
        k = e;
      }
    };
    for (let i = 0; i < v.n; i++) {
      const s = v.start[i];
      if (s >= S.hi) { region(i); continue; }
      if (s > cur) push(cur, s - cur, FREE, false, -1);
      region(i);
      cur = Math.max(cur, s + r.z[i]);
    }
    if (S.hi > cur) {
      // The top gap goes before any region above the limit.
      const tail = segs.filter((x) => x.start >= S.hi && x.idx >= 0);
      const keep = segs.filter((x) => !(x.start >= S.hi && x.idx >= 0));
      segs.length = 0;
      pos = keep.length ? keep[keep.length - 1].pos + keep[keep.length - 1].u : 0;
      segs.push(...keep);
      push(cur, S.hi - cur, FREE, false, -1);
      for (const x of tail) { x.pos = pos; pos += x.u; segs.push(x); }
    }
    fragSegs = segs;
    const canvas = $("frag-canvas");
    const W = Math.max(600, Math.min(1400, $("fragmentation").clientWidth || 1100));
    const ROWH = 18, GAP = 6;
    // 1024 units a row, as the SVG of `vmmap map`; a map of tens of
    // thousands of regions gets longer rows instead of a canvas taller than
    // browsers draw (every region still at least a pixel wide).
    const MAXROWS = 48;
    const perRow = Math.max(1024, Math.ceil(pos / MAXROWS));
    const rows = Math.max(1, Math.ceil(pos / perRow));
    const H = rows * (ROWH + GAP);
    const dpr = window.devicePixelRatio || 1;
    canvas.width = W * dpr; canvas.height = H * dpr;
    canvas.style.width = W + "px"; canvas.style.height = H + "px";
    const g = canvas.getContext("2d");
    g.scale(dpr, dpr);
    g.clearRect(0, 0, W, H);
    const sx = W / perRow;
    const hatch = document.createElement("canvas");
    hatch.width = hatch.height = 6;
    const hg = hatch.getContext("2d");
    hg.strokeStyle = "rgba(0,0,0,0.45)";
    hg.beginPath(); hg.moveTo(0, 6); hg.lineTo(6, 0); hg.stroke();
    const pattern = g.createPattern(hatch, "repeat");
    // One path per colour (and one for the hatching): 60,000 separate
    // fills with a style change each took half a second.
    const paths = T.map(() => new Path2D());
    const hatched = new Path2D();
    for (const s of segs) {
      let p = s.pos, left = s.u;
      while (left > 0) {
        const row = Math.floor(p / perRow), off = p - row * perRow;
        const w = Math.min(left, perRow - off);
        const x0 = off * sx, y0 = row * (ROWH + GAP);
        paths[s.type].rect(x0, y0, Math.max(1, w * sx - (s.idx >= 0 ? 0.5 : 0)), ROWH);
        if (s.reserved) hatched.rect(x0, y0, Math.max(1, w * sx), ROWH);
        p += w; left -= w;
      }
    }
    // Free first, so that a region drawn over a gap's edge stays on top.
    g.fillStyle = T[FREE].colour;
    g.fill(paths[FREE]);
    paths.forEach((path, t) => { if (t !== FREE) { g.fillStyle = T[t].colour; g.fill(path); } });
    g.fillStyle = pattern;
    g.fill(hatched);
    canvas.onmousemove = (e) => {
      const rect = canvas.getBoundingClientRect();
      const mx = e.clientX - rect.left, my = e.clientY - rect.top;
      const row = Math.floor(my / (ROWH + GAP));
      const u = row * perRow + mx / sx;
      let lo = 0, hi = segs.length - 1;
      while (lo < hi) { const m = (lo + hi + 1) >> 1; if (segs[m].pos <= u) lo = m; else hi = m - 1; }
      const s = segs[lo];
      const tip = $("frag-tip");
      if (!s || my % (ROWH + GAP) > ROWH) { tip.hidden = true; return; }
      const name = s.idx >= 0 ? T[s.type].name + (s.reserved ? " (reserved)" : "") : "Free";
      tip.textContent = hex(s.start) + "\u2013" + hex(s.start + s.len) + "\n" + name + ", " + size(s.len * D.au) + (s.idx >= 0 && D.strings[r.d[s.idx]] ? "\n" + D.strings[r.d[s.idx]] : "");
      tip.hidden = false;
      tip.style.left = Math.min(mx + 12, W - 260) + "px";
      tip.style.top = (my + 14) + "px";
    };
    canvas.onmouseleave = () => { $("frag-tip").hidden = true; };
    canvas.setAttribute("role", "img");
    const reserved = segs.filter((x) => x.reserved).length;
    canvas.setAttribute("aria-label", "Fragmentation map of " + segs.length + " stretches, " + reserved + " of them reserved (PROT_NONE, hatched)");
    // The key: each type drawn (Page Table is not in the address space)
    // and the hatching.
    const key = $("frag-legend");
    key.replaceChildren();
    T.forEach((t, i) => { if (i !== PT) key.append(el("span", null, swatch(i), t.name)); });
    key.append(el("span", null, el("span", { class: "swatch hatched", "aria-hidden": "true" }), "hatched: reserved (PROT_NONE), in its type's colour"));
  }

  // ---- flame graph and call tree ------------------------------------
  // Tree nodes: [name, location, bytes, count, live, children].
  let flameRoot = null;
  function flame() {
    if (!D.tree) return;
    $("trace").hidden = false;
    const metric = Number($("flame-metric").value);
    const root = flameRoot || D.tree;
    const box = $("flame");
    const W = box.clientWidth || 1100;
    const ROWH = 20;
    const frag = document.createDocumentFragment();
    let depth = 0;
    const label = (n) => D.strings[n[0]];
    const hue = (s) => { let h = 0; for (let i = 0; i < s.length; i++) h = (h * 31 + s.charCodeAt(i)) >>> 0; return h; };
    const draw = (n, x, w, d) => {
      if (w < 1) return;
      depth = Math.max(depth, d + 1);
      const h = hue(label(n));
      const div = el("div", {
        class: "fr", role: "treeitem", tabindex: "0", "aria-level": String(d + 1),
        style: "left:" + x.toFixed(2) + "px;width:" + w.toFixed(2) + "px;top:" + d * ROWH + "px;background:hsl(" + (10 + h % 40) + "," + (60 + h % 30) + "%," + (62 + h % 16) + "%)",
        title: label(n) + (n[1] >= 0 ? "  " + D.strings[n[1]] : "") + "\n" + measure(n, metric),
        text: w > 30 ? label(n) : "",
      });
      div.addEventListener("click", () => { flameRoot = n === flameRoot ? null : n; flame(); });
      div.addEventListener("keydown", (e) => { if (e.key === "Enter" || e.key === " ") { e.preventDefault(); flameRoot = n === flameRoot ? null : n; flame(); } });
      frag.append(div);
      const total = n[metric] || 0;
      let cx = x;
      for (const c of n[5]) {
        const cw = total > 0 ? w * (c[metric] || 0) / total : 0;
        draw(c, cx, cw, d + 1);
        cx += cw;
      }
    };
    // Above a zoomed frame, its callers, full width: a click goes back up.
    const path = [];
    const find = (n) => {
      if (n === root) return true;
      for (const c of n[5]) if (find(c)) { path.unshift(c); return true; }
      return false;
    };
    if (root !== D.tree) { find(D.tree); path.unshift(D.tree); path.pop(); }
    path.forEach((n, d) => {
      depth = d + 1;
      const div = el("div", { class: "fr anc", role: "treeitem", tabindex: "0", "aria-level": String(d + 1), style: "left:0;width:" + W + "px;top:" + d * ROWH + "px", title: label(n) + "\n" + measure(n, metric), text: label(n) });
      const up = () => { flameRoot = n === D.tree ? null : n; flame(); };
      div.addEventListener("click", up);
      div.addEventListener("keydown", (e) => { if (e.key === "Enter" || e.key === " ") { e.preventDefault(); up(); } });
      frag.append(div);
    });
    draw(root, 0, W, path.length);
    box.style.height = depth * ROWH + "px";
    box.replaceChildren(frag);
    $("flame-path").textContent = flameRoot ? "Zoomed into " + label(flameRoot) : "";
  }
  function measure(n, metric) {
    return metric === 3 ? n[3].toLocaleString("en") + " allocations" : size(n[metric]) + (metric === 4 ? " live" : " allocated");
  }
  const treeOpen = new Set();
  function callTree() {
    if (!D.tree) return;
    const tab = $("calltree");
    tab.replaceChildren();
    const hr = el("tr");
    for (const [h, l] of [["Function", 1], ["Bytes", 0], ["%", 0], ["Allocations", 0], ["Live", 0]]) hr.append(el("th", { scope: "col", class: l ? "l" : "", text: h }));
    tab.append(el("thead", null, hr));
    const body = el("tbody");
    const total = D.tree[2] || 1;
    const walk = (n, d, path) => {
      const kids = n[5].length > 0;
      const open = treeOpen.has(path);
      const tr = el("tr", { tabindex: "0", "aria-level": String(d + 1), "data-path": path });
      if (kids) tr.setAttribute("aria-expanded", String(open));
      const name = el("td", { class: "l", style: "padding-left:" + (8 + d * 16) + "px" });
      const flip = () => { if (treeOpen.has(path)) treeOpen.delete(path); else treeOpen.add(path); callTree(); const again = tab.querySelector('tr[data-path="' + path + '"]'); if (again) again.focus(); };
      name.append(kids ? el("button", { type: "button", class: "tog", tabindex: "-1", "aria-label": open ? "Collapse" : "Expand", text: open ? "\u25BE" : "\u25B8", onclick: flip }) : el("span", { class: "tog-none" }));
      name.append(D.strings[n[0]]);
      if (n[1] >= 0) name.append(el("span", { class: "loc", text: D.strings[n[1]] }));
      tr.append(name, el("td", { class: "n", text: size(n[2]) || "0" }), el("td", { class: "n", text: (100 * n[2] / total).toFixed(1) }), el("td", { class: "n", text: n[3].toLocaleString("en") }), el("td", { class: "n", text: size(n[4]) || "0" }));
      tr.addEventListener("keydown", (e) => {
        if (!kids) return;
        if (e.key === "Enter" || e.key === " " || (e.key === "ArrowRight" && !open) || (e.key === "ArrowLeft" && open)) { e.preventDefault(); flip(); }
      });
      body.append(tr);
      if (open) n[5].forEach((c, i) => walk(c, d + 1, path + "." + i));
    };
    walk(D.tree, 0, "0");
    tab.append(body);
  }

  // ---- wiring -------------------------------------------------------
  function showSnapshot(i) {
    st.snap = i;
    st.open.clear();
    st.cursor = 0;
    if (D.snaps.length > 1) $("snap-select").value = String(i);
    bars();
    summary();
    setType(st.type);
    fragmentation();
    timeline();
  }
  function footer() {
    const warn = D.snaps[D.snaps.length - 1].warnings;
    $("footer").textContent = "Made by " + D.generator + " from " + D.source + ": " + D.snaps.length + (D.snaps.length === 1 ? " snapshot" : " snapshots") + ". This file is self-contained and loads nothing from the network." + (warn.length ? " Warnings: " + warn.join("; ") : "");
  }

  if (D.v !== 1) {
    document.querySelector("main").textContent = "This report's data has version " + D.v + ", which this page cannot read.";
    return;
  }
  header();
  detailsHead();
  $("details-scroll").addEventListener("scroll", () => drawDetails(false), { passive: true });
  $("details-scroll").addEventListener("keydown", detailsKeys);
  $("details-search").addEventListener("input", (e) => { st.search = e.target.value; st.cursor = 0; rebuild(); });
  $("expand-all").addEventListener("click", () => { const v = snap(st.snap); for (let i = 0; i < v.n; i++) if (v.r.k[i]) st.open.add(i); rebuild(); });
  $("collapse-all").addEventListener("click", () => { st.open.clear(); rebuild(); });
  $("timeline-metric").addEventListener("change", timeline);
  $("flame-metric").addEventListener("change", flame);
  $("flame-reset").addEventListener("click", () => { flameRoot = null; flame(); });
  compareSetup();
  showSnapshot(st.snap);
  if (D.snaps.length > 1) compare(0, D.snaps.length - 1);
  flame();
  callTree();
  footer();
  window.addEventListener("resize", () => { fragmentation(); flame(); drawDetails(true); });
  document.documentElement.setAttribute("data-ready", "1");
})();
