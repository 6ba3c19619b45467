// Opening a big model in the app by picking its folder, in headless Chromium: the time from
// the pick (the input's change event) to the first table row drawn and to the end, and the
// peak resident memory of the browser (every Chromium process of this run, sampled from
// /proc every 100 ms) next to its resident memory before the pick.
// Usage: node tools/bench/app/big.mjs [--screenshots DIR] FOLDER [FOLDER ...]   (a folder holding one .onnx
// and its data files, e.g. written by tools/bench/make_llm.py --preset llm-8x4096; real files:
// the browser leaves symbolic links out of a picked folder, and the app then says NO_FILES)
// Needs the built app (npm run build).
import fs from 'node:fs';
import path from 'node:path';
import { launch, newPage } from '../../../tests/js/chromium.mjs';
import { root } from '../../../tests/js/helpers.mjs';

const app = path.join(root, 'web', 'dist', 'app', 'index.html');
const args = process.argv.slice(2);
// --screenshots DIR: the page when its first rows are drawn (the progress state) and at the end
const shotAt = args.indexOf('--screenshots');
const shots = shotAt >= 0 ? args.splice(shotAt, 2)[1] : null;
const folders = args;
if (!folders.length) {
  console.error('usage: node tools/bench/app/big.mjs FOLDER [FOLDER ...]');
  process.exit(2);
}

// Resident bytes of `pid` and every process below it.
function treeRss(pid) {
  const children = new Map();
  for (const d of fs.readdirSync('/proc')) {
    if (!/^\d+$/.test(d)) continue;
    try {
      const stat = fs.readFileSync(`/proc/${d}/stat`, 'utf8');
      const ppid = Number(stat.slice(stat.lastIndexOf(')') + 2).split(' ')[1]);
      if (!children.has(ppid)) children.set(ppid, []);
      children.get(ppid).push(Number(d));
    } catch {
      // the process ended
    }
  }
  let rss = 0;
  const stack = [pid];
  while (stack.length) {
    const p = stack.pop();
    try {
      const m = /VmRSS:\s+(\d+) kB/.exec(fs.readFileSync(`/proc/${p}/status`, 'utf8'));
      if (m) rss += Number(m[1]) * 1024;
    } catch {
      // ended
    }
    stack.push(...(children.get(p) || []));
  }
  return rss;
}

const sizeOf = (dir) =>
  fs
    .readdirSync(dir, { withFileTypes: true })
    .reduce((a, e) => a + (e.isFile() ? fs.statSync(path.join(dir, e.name)).size : 0), 0);

for (const folder of folders) {
  const browser = await launch();
  // Every process below this one but this one itself: the browser and its renderers, GPU and
  // utility processes (other Chromium instances on the machine are not counted).
  const ownRss = () => {
    const m = /VmRSS:\s+(\d+) kB/.exec(fs.readFileSync('/proc/self/status', 'utf8'));
    return Number(m[1]) * 1024;
  };
  const pid = process.pid;
  const browserRss = () => treeRss(pid) - ownRss();
  const page = await newPage(browser, { viewport: { width: 1280, height: 900 } });
  await page.goto(`file://${app}`);
  await page.waitForFunction(() => document.body.dataset.state === 'idle');
  await page.evaluate(() => {
    window.__t = {};
    document.querySelector('#ql-folder').addEventListener('change', () => (window.__t.pick = performance.now()), {
      capture: true,
    });
    new MutationObserver(() => {
      const t = window.__t;
      if (t.first === undefined && document.querySelector('table.ql-layer-table tbody tr[data-position]')) {
        t.first = performance.now();
        t.firstRows = document.querySelectorAll('table.ql-layer-table tbody tr[data-position]').length;
      }
      if (t.end === undefined && ['done', 'error'].includes(document.body.dataset.state)) t.end = performance.now();
    }).observe(document.body, { childList: true, subtree: true, attributes: true });
  });
  const before = browserRss();
  let peak = before;
  const sampler = setInterval(() => (peak = Math.max(peak, browserRss())), 100);
  await page.setInputFiles('#ql-folder', folder);
  const name = path.basename(folder);
  if (shots) {
    fs.mkdirSync(shots, { recursive: true });
    await page.waitForFunction(() => window.__t.first !== undefined || window.__t.end !== undefined, null, { timeout: 3600000 });
    await page.screenshot({ path: path.join(shots, `${name}-progress.png`) });
  }
  await page.waitForFunction(() => ['done', 'error'].includes(document.body.dataset.state), null, { timeout: 3600000 });
  if (shots) await page.screenshot({ path: path.join(shots, `${name}-done.png`) });
  clearInterval(sampler);
  const t = await page.evaluate(() => window.__t);
  const state = await page.evaluate(() => document.body.dataset.state);
  const rows = await page.$$eval('table.ql-layer-table tbody tr[data-position]', (r) => r.length);
  const jsHeap = await page.evaluate(() => (performance.memory ? performance.memory.usedJSHeapSize : null));
  const error = state === 'error' ? await page.textContent('#ql-error') : null;
  console.log(
    JSON.stringify({
      folder,
      bytes: sizeOf(folder),
      state,
      error,
      rows,
      firstRowSeconds: +((t.first - t.pick) / 1000).toFixed(3),
      rowsAtFirst: t.firstRows,
      endSeconds: +((t.end - t.pick) / 1000).toFixed(3),
      browserRssBeforeMB: Math.round(before / 1e6),
      browserRssPeakMB: Math.round(peak / 1e6),
      pageJsHeapMB: jsHeap && Math.round(jsHeap / 1e6),
    }),
  );
  await browser.close();
}
