// Opens vmmap's HTML reports in headless Chromium (Debian's package,
// driven by playwright-core), clicks through them as a person would,
// validates the HTML, records every network request, and saves a
// screenshot of each step. Run by the Rust integration test
// `report::reports_work_in_a_browser`, which gives the reports and checks
// the figures this script reads off the page against vmmap's own JSON.
//
// Usage: node report.mjs CONFIG.json
//   CONFIG: { chromium, shots, out, live, recording, big, tree,
//             filter_type, diff_pair: [a, b] }   (paths; snapshot indices from 0)
// Writes OUT (JSON observations) and exits non-zero on the first failure.

import fs from "node:fs";
import os from "node:os";
import path from "node:path";
import { pathToFileURL } from "node:url";
import { chromium } from "playwright-core";
import { HtmlValidate } from "html-validate";

const cfg = JSON.parse(fs.readFileSync(process.argv[2], "utf8"));
const out = {};
let passed = 0;

function check(cond, what) {
  if (!cond) throw new Error("FAILED: " + what);
  passed++;
  console.log("ok - " + what);
}

async function shot(page, name) {
  const file = path.join(cfg.shots, name + ".png");
  await page.screenshot({ path: file, fullPage: false });
  console.log("screenshot " + file);
}

async function validate(file) {
  const html = new HtmlValidate({
    extends: ["html-validate:recommended"],
    rules: {
      // Inline style is the point of a single-file report (and the
      // virtual scrolling sets row heights).
      "no-inline-style": "off",
    },
  });
  const report = await html.validateString(fs.readFileSync(file, "utf8"), file);
  const msgs = report.results.flatMap((r) => r.messages.map((m) => `${m.line}:${m.column} ${m.ruleId}: ${m.message}`));
  check(report.valid, `${path.basename(file)} validates as HTML (${msgs.slice(0, 5).join("; ") || "no messages"})`);
}

/** Opens a report; every request and script error is recorded. */
async function open(ctx, file) {
  const page = await ctx.newPage();
  const requests = [];
  const errors = [];
  page.on("request", (r) => requests.push(r.url()));
  page.on("pageerror", (e) => errors.push(String(e)));
  page.on("console", (m) => { if (m.type() === "error") errors.push(m.text()); });
  await page.goto(pathToFileURL(file).href);
  await page.waitForSelector("html[data-ready='1']", { timeout: 60000 });
  return { page, requests, errors, url: pathToFileURL(file).href };
}

function closeCheck(name, o) {
  check(o.errors.length === 0, `${name}: no script errors (${o.errors.join(" | ")})`);
  const other = o.requests.filter((u) => u !== o.url);
  check(other.length === 0, `${name}: no request but the file itself (${other.join(", ")})`);
}

/** The Details rows the page has drawn, with their cells. */
function drawnRows(page) {
  return page.$$eval("#details-body tr:not(.spacer)", (trs) => trs.map((tr) => ({
    start: tr.getAttribute("data-start"),
    sub: tr.classList.contains("sub"),
    expanded: tr.getAttribute("aria-expanded"),
    cells: [...tr.children].map((td) => td.textContent),
  })));
}

async function live(ctx) {
  const o = await open(ctx, cfg.live);
  const { page } = o;
  await shot(page, "live-1-loaded");
  const summary = await page.$$eval("#summary-table tbody tr", (trs) => trs.map((tr) => ({
    type: tr.getAttribute("data-type"),
    cells: [...tr.children].map((td) => td.textContent),
  })));
  out.live_summary = summary;
  const all = await page.textContent("#details-count");
  // Click a type in the Summary: Details shows only that type.
  await page.click(`#summary-table tr[data-type='${cfg.filter_type}']`);
  await page.waitForSelector("#filter-chip:not([hidden])");
  const rows = await drawnRows(page);
  const name = summary.find((r) => r.type === cfg.filter_type).cells[0];
  check(rows.length > 0 && rows.every((r) => r.cells[1] === name), `live: Details shows only ${name} after a click on it in Summary`);
  out.live_filtered = rows.map((r) => r.start);
  out.live_filtered_count = await page.textContent("#details-count");
  check(out.live_filtered_count !== all, "live: the region count changed with the filter");
  await shot(page, "live-2-filtered");
  // A second click clears the filter.
  await page.click(`#summary-table tr[data-type='${cfg.filter_type}']`);
  check((await page.textContent("#details-count")) === all, "live: a second click shows every region again");
  // Filter to Image and expand the first group.
  await page.click("#summary-table tr[data-type='image']");
  const group = await page.$("#details-body tr[aria-expanded='false']");
  check(group !== null, "live: an image group can be expanded");
  const gstart = await group.getAttribute("data-start");
  await (await group.$("button.tog")).click();
  await page.waitForSelector("#details-body tr.sub");
  const after = await drawnRows(page);
  const gi = after.findIndex((r) => r.start === gstart);
  const subs = [];
  for (let i = gi + 1; i < after.length && after[i].sub; i++) subs.push(after[i].start);
  check(after[gi].expanded === "true" && subs.length > 0, `live: group ${gstart} expanded into ${subs.length} sub-blocks`);
  out.live_group = { start: gstart, subs, blocks: after[gi].cells[11] };
  await page.locator("#details").scrollIntoViewIfNeeded();
  await shot(page, "live-3-expanded");
  // Keyboard: the table scrolls with the arrow keys and Enter collapses.
  await page.focus("#details-scroll");
  await page.keyboard.press("Home");
  await page.keyboard.press("Enter");
  const collapsed = await page.$$eval("#details-body tr.sub", (t) => t.length);
  check(collapsed === 0, "live: Enter on the focused group collapses it");
  // Sort by Size, largest first.
  await page.click("#summary-table tr.total");
  await page.click("#details-table th[data-key='size'] button");
  const sorted = await drawnRows(page);
  out.live_sorted_first = sorted[0].start;
  check(await page.getAttribute("#details-table th[data-key='size']", "aria-sort") === "descending", "live: Size sorts descending on the first click");
  await shot(page, "live-4-sorted");
  await page.locator("#fragmentation").scrollIntoViewIfNeeded();
  await shot(page, "live-5-fragmentation");
  closeCheck("live", o);
  await page.close();
}

async function recording(ctx) {
  const o = await open(ctx, cfg.recording);
  const { page } = o;
  await shot(page, "recording-1-loaded");
  out.rec_dots = await page.$$eval("#timeline-chart circle.dot", (c) => c.map((e) => Number(e.getAttribute("data-snap"))));
  await page.locator("#timeline").scrollIntoViewIfNeeded();
  await shot(page, "recording-2-timeline");
  // Select a snapshot on the timeline: the page shows it.
  await page.click(`#timeline-chart circle[data-snap='0']`);
  check((await page.inputValue("#snap-select")) === "0", "recording: a dot on the timeline selects its snapshot");
  // Pick two snapshots and compare.
  const [a, b] = cfg.diff_pair;
  await page.selectOption("#diff-a", String(a));
  await page.selectOption("#diff-b", String(b));
  await page.click("#diff-run");
  await page.waitForSelector("#diff-types");
  out.diff_types = await page.$$eval("#diff-types tbody tr", (trs) => trs.map((tr) => ({
    type: tr.getAttribute("data-type"),
    deltas: Object.fromEntries([...tr.querySelectorAll("td[data-col]")].map((td) => [td.getAttribute("data-col"), td.getAttribute("data-delta") === "" ? null : Number(td.getAttribute("data-delta"))])),
  })));
  out.diff_regions = await page.$$eval("#diff-regions tbody tr", (trs) => trs.map((tr) => ({
    kind: tr.getAttribute("data-kind"),
    start: tr.children[1].textContent,
    cells: [...tr.children].map((td) => td.textContent),
  })));
  check(out.diff_types.length > 0, `recording: snapshots ${a + 1} and ${b + 1} compared (${out.diff_regions.length} region changes)`);
  await page.locator("#compare").scrollIntoViewIfNeeded();
  await shot(page, "recording-3-diff");
  // Every snapshot's Details (most rows copied from the one before).
  out.rec_rows = [];
  for (let i = 0; i < out.rec_dots.length; i++) {
    await page.selectOption("#snap-select", String(i));
    out.rec_rows.push((await drawnRows(page)).map((r) => r.start));
  }
  closeCheck("recording", o);
  await page.close();
}

async function big(ctx) {
  const o = await open(ctx, cfg.big);
  const { page } = o;
  out.big_count = await page.textContent("#details-count");
  const drawn = await page.$$eval("#details-body tr:not(.spacer)", (t) => t.length);
  check(drawn > 0 && drawn < 200, `big: only a window of rows is drawn (${drawn})`);
  await page.locator("#details").scrollIntoViewIfNeeded();
  await shot(page, "big-1-top");
  // Scroll to the end: the last regions are drawn, and still only a window.
  await page.$eval("#details-scroll", (e) => { e.scrollTop = e.scrollHeight; });
  await page.waitForFunction(() => {
    const rows = document.querySelectorAll("#details-body tr:not(.spacer)");
    return rows.length && Number(rows[rows.length - 1].getAttribute("data-row")) > 1000;
  });
  const end = await drawnRows(page);
  out.big_last = end[end.length - 1].start;
  check(end.length < 200, `big: after scrolling to the end, still a window (${end.length} rows)`);
  await shot(page, "big-2-end");
  // The middle, by keyboard.
  await page.focus("#details-scroll");
  await page.keyboard.press("Home");
  for (let i = 0; i < 3; i++) await page.keyboard.press("PageDown");
  const mid = await drawnRows(page);
  check(mid.length < 200 && mid[0].start !== end[0].start, "big: PageDown moves the window");
  closeCheck("big", o);
  await page.close();
}

async function tree(ctx) {
  const o = await open(ctx, cfg.tree);
  const { page } = o;
  await page.locator("#trace").scrollIntoViewIfNeeded();
  await shot(page, "tree-1-flame");
  const frames = await page.$$eval("#flame .fr", (f) => f.map((e) => ({ title: e.getAttribute("title"), width: parseFloat(e.style.width), text: e.textContent })));
  out.tree_frames = frames.map((f) => f.title.split("\n")[0].trim());
  const full = frames[0].width;
  // Click a frame: it takes the whole width.
  const target = cfg.zoom_frame;
  const idx = frames.findIndex((f) => f.title.startsWith(target));
  check(idx > 0 && frames[idx].width < full, `tree: frame ${target} is narrower than the root before zooming`);
  await page.locator("#flame .fr").nth(idx).click();
  const zoomed = await page.$$eval("#flame .fr:not(.anc)", (f) => f.map((e) => ({ title: e.getAttribute("title"), width: parseFloat(e.style.width) })));
  check(zoomed[0].title.startsWith(target) && Math.abs(zoomed[0].width - full) < 1, `tree: after a click ${target} fills the width`);
  out.tree_callers = await page.$$eval("#flame .fr.anc", (f) => f.map((e) => e.textContent));
  out.tree_zoom_path = await page.textContent("#flame-path");
  await shot(page, "tree-2-zoomed");
  // Call tree: expand the root and its first child by keyboard.
  await page.focus("#calltree tbody tr[data-path='0']");
  await page.keyboard.press("Enter");
  await page.focus("#calltree tbody tr[data-path='0.0']");
  await page.keyboard.press("ArrowRight");
  out.tree_rows = await page.$$eval("#calltree tbody tr", (trs) => trs.map((tr) => [...tr.children].map((td) => td.textContent)));
  check(out.tree_rows.length > 2, `tree: the call tree expanded to ${out.tree_rows.length} rows`);
  await page.locator("#calltree").scrollIntoViewIfNeeded();
  await shot(page, "tree-3-calltree");
  closeCheck("tree", o);
  await page.close();
}

const profile = fs.mkdtempSync(path.join(os.tmpdir(), "vmmap-chromium-"));
fs.mkdirSync(cfg.shots, { recursive: true });
for (const f of [cfg.live, cfg.recording, cfg.big, cfg.tree]) await validate(f);
const ctx = await chromium.launchPersistentContext(profile, {
  executablePath: cfg.chromium,
  headless: true,
  viewport: { width: 1400, height: 900 },
  args: ["--headless", "--no-sandbox", "--disable-gpu", "--disable-quic", "--no-first-run", "--disable-background-networking", "--disable-component-update", "--disable-sync"],
});
let failed = null;
try {
  await live(ctx);
  await recording(ctx);
  await big(ctx);
  await tree(ctx);
} catch (e) {
  failed = e;
} finally {
  await ctx.close();
  fs.rmSync(profile, { recursive: true, force: true });
}
fs.writeFileSync(cfg.out, JSON.stringify(out, null, 1));
if (failed) {
  console.error(failed.stack || String(failed));
  console.log(`browser: ${passed} passed, 1 failed`);
  process.exit(1);
}
console.log(`browser: ${passed} passed, 0 failed`);
