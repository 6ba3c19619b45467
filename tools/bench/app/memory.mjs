// The resident memory of the app's processes while it analyses a model picked as Files, in
// headless Chromium: per process of this browser (from /proc, sampled every 20 ms), the
// resident memory before the pick, its peak, at the end, and after a garbage collection
// forced in the page and its workers (what was garbage at the end).
// Usage: node tools/bench/app/memory.mjs [--runs N] [--app FILE] MODEL [DATA_FILE ...]
// Needs the built app (npm run build); --app measures another build of it.
import fs from 'node:fs';
import path from 'node:path';
import { chromiumPath, serve } from '../../../tests/js/chromium.mjs';
import { root } from '../../../tests/js/helpers.mjs';

const args = process.argv.slice(2);
const option = (name, fallback) => {
  const k = args.indexOf(name);
  return k >= 0 ? args.splice(k, 2)[1] : fallback;
};
const runs = Number(option('--runs', 1));
const app = path.resolve(option('--app', path.join(root, 'web', 'dist', 'app', 'index.html')));
const files = args.map((f) => path.resolve(f));
if (!files.length) {
  console.error('usage: node tools/bench/app/memory.mjs [--runs N] [--app FILE] MODEL [DATA_FILE ...]');
  process.exit(2);
}

// This browser's processes: the one whose command line holds `tag`, and every one below it.
const tag = `--ql-memory-bench=${process.pid}`;
function processes() {
  const all = [];
  for (const d of fs.readdirSync('/proc')) {
    if (!/^\d+$/.test(d)) continue;
    try {
      const stat = fs.readFileSync(`/proc/${d}/stat`, 'utf8');
      const ppid = Number(stat.slice(stat.lastIndexOf(')') + 2).split(' ')[1]);
      const cmd = fs.readFileSync(`/proc/${d}/cmdline`, 'utf8').split(/[\0 ]/);
      all.push({ pid: Number(d), ppid, cmd });
    } catch {
      // the process ended
    }
  }
  const top = all.find((p) => p.cmd.includes(tag) && !p.cmd.some((a) => a.startsWith('--type=')));
  const out = [];
  const below = (pid) => {
    for (const p of all)
      if (p.ppid === pid) {
        out.push(p);
        below(p.pid);
      }
  };
  if (top) {
    out.push(top);
    below(top.pid);
  }
  return out.map((p) => ({ pid: p.pid, type: (p.cmd.find((a) => a.startsWith('--type=')) || '--type=browser').slice(7) }));
}
const rssMB = (pid) => {
  try {
    return Number(/VmRSS:\s+(\d+) kB/.exec(fs.readFileSync(`/proc/${pid}/status`, 'utf8'))[1]) / 1024;
  } catch {
    return NaN;
  }
};

const { chromium } = await import('playwright-core');
const browser = await chromium.launch({
  executablePath: chromiumPath,
  headless: true,
  args: ['--no-sandbox', '--disable-gpu', '--disable-quic', '--no-first-run', '--disable-background-networking'].concat([
    '--disable-component-update',
    '--disable-sync',
    '--js-flags=--expose-gc',
    tag,
  ]),
});
const server = await serve(path.dirname(app));
const url = `http://127.0.0.1:${server.address().port}/${path.basename(app)}`;
for (let r = 1; r <= runs; r++) {
  const page = await browser.newPage();
  await page.goto(url);
  await page.waitForFunction(() => document.body.dataset.state === 'idle');
  const procs = processes();
  const before = new Map(procs.map((p) => [p.pid, rssMB(p.pid)]));
  const peak = new Map(before);
  const sampler = setInterval(() => {
    for (const p of procs) peak.set(p.pid, Math.max(peak.get(p.pid), rssMB(p.pid) || 0));
  }, 20);
  const t0 = Date.now();
  await page.setInputFiles('#ql-file', files);
  await page.waitForFunction(() => ['done', 'error'].includes(document.body.dataset.state), null, {
    timeout: 3600000,
    polling: 100,
  });
  const seconds = (Date.now() - t0) / 1000;
  clearInterval(sampler);
  const end = new Map(procs.map((p) => [p.pid, rssMB(p.pid)]));
  for (const w of page.workers()) await w.evaluate(() => globalThis.gc && (globalThis.gc(), globalThis.gc()));
  await page.evaluate(() => window.gc && window.gc());
  await new Promise((resolve) => setTimeout(resolve, 500));
  const state = await page.evaluate(() => `${document.body.dataset.state} ${document.querySelector('#ql-error').textContent}`);
  console.log(`run ${r}: ${state.trim()} in ${seconds.toFixed(1)} s`);
  for (const p of procs) {
    const f = (v) => Math.round(v);
    console.log(
      `  ${p.type} ${p.pid}: ${f(before.get(p.pid))} MB before, ${f(peak.get(p.pid))} MB peak, ${f(end.get(p.pid))} MB at the end, ${f(rssMB(p.pid))} MB after gc()`,
    );
  }
  await page.close();
}
await browser.close();
server.close();
