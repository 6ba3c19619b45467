#!/usr/bin/env node
// The commands benchmark (run by `npm run bench` after the analysis benchmark, or alone):
// QuantLens analyze against the python peer (numpy_baseline.py) on an LLM-shaped model
// (make_llm.py), and the time and peak RSS of the CLI's analyze, equalize, compare and report, on
// that model and on VGG-16. See tools/bench/README.md.
//
//   node tools/bench/bench_llm.mjs [--models vgg16,llm-8x4096] [--big] [--runs N]
//
// Which core: QL_WEB_ROOT (bench.mjs passes its snapshot), else the working tree's web/.
import { spawnSync } from 'node:child_process';
import fs from 'node:fs';
import os from 'node:os';
import path from 'node:path';
import { fileURLToPath } from 'node:url';
import { blockInputText, exp, fullCheck, fx, median, sec, spread, sqnrCheck, table, SQNR_TOL_DB } from './checks.mjs';

const HERE = path.dirname(fileURLToPath(import.meta.url));
const ROOT = path.resolve(HERE, '../..');
const MODELS_DIR = path.join(HERE, 'models');
const RESULTS = path.join(HERE, 'results');
const PY = '/usr/bin/python3';
const TIME = '/usr/bin/time';
const NODE = process.execPath;
const WEB = process.env.QL_WEB_ROOT || path.join(ROOT, 'web');
const CLI = path.join(WEB, 'cli/quantlens.js');
const GB = 1e9;

// runs: measured rounds (vgg16 also gets a discarded warm-up round; the LLM files are read
// through once, untimed, to bring them into the page cache).
const MODELS = [
  { name: 'vgg16', kind: 'cnn', runs: 3 },
  { name: 'llm-8x4096', kind: 'llm', runs: 1 },
  { name: 'llm-24x4096', kind: 'llm', runs: 1, onDemand: true },
];

function die(msg, code = 1) {
  console.error(`bench_llm: ${msg}`);
  process.exit(code);
}

function parseArgs(argv) {
  const o = { models: MODELS.filter((m) => !m.onDemand).map((m) => m.name), runs: null };
  for (let i = 0; i < argv.length; i++) {
    const a = argv[i];
    if (a === '--models') o.models = argv[++i].split(',').filter(Boolean);
    else if (a === '--big') o.models = [...new Set([...o.models, 'llm-24x4096'])];
    else if (a === '--runs') o.runs = Number(argv[++i]);
    else if (a === '-h' || a === '--help') {
      console.log(`usage: node tools/bench/bench_llm.mjs [--models ${MODELS.map((m) => m.name).join(',')}] [--big] [--runs N]
  --big      add llm-24x4096 (9.7 GB of float16 weights in 4 files; generated on first use)`);
      process.exit(0);
    } else die(`unknown argument ${a}`);
  }
  for (const m of o.models) if (!MODELS.some((x) => x.name === m)) die(`unknown model ${m}`);
  if (o.runs !== null && !(Number.isInteger(o.runs) && o.runs > 0)) die('--runs takes a positive integer');
  return o;
}

const run = (cmd, args, opts = {}) => spawnSync(cmd, args, { encoding: 'utf8', maxBuffer: 1 << 30, ...opts });

// ---------------------------------------------------------------- models

function manifestOk(file) {
  const mf = `${file}.json`;
  if (!fs.existsSync(file) || !fs.existsSync(mf)) return null;
  const m = JSON.parse(fs.readFileSync(mf, 'utf8'));
  const sizes = new Map();
  for (const w of m.weights) sizes.set(w.file, Math.max(sizes.get(w.file) || 0, w.offset + w.length));
  for (const [f, size] of sizes) {
    const p = path.join(path.dirname(file), f);
    if (!fs.existsSync(p) || fs.statSync(p).size !== size) return null;
  }
  return m;
}

function freeBytes(dir) {
  const r = run('df', ['-B1', '--output=avail', dir]);
  return Number(r.stdout.trim().split('\n').pop());
}

function memAvailable() {
  const m = fs.readFileSync('/proc/meminfo', 'utf8').match(/^MemAvailable:\s+(\d+) kB/m);
  return m ? Number(m[1]) * 1024 : Infinity;
}

function ensureModel(m) {
  fs.mkdirSync(MODELS_DIR, { recursive: true });
  const file = path.join(MODELS_DIR, `${m.name}.onnx`);
  if (m.kind === 'cnn') {
    if (!fs.existsSync(file)) {
      if (run(PY, ['-c', 'import torch, torchvision']).status !== 0)
        die(
          `${m.name}.onnx is missing and ${PY} cannot import torch; install with: apt-get install -y python3-torch python3-torchvision`,
          2,
        );
      console.log(`bench_llm: exporting ${m.name} (torchvision, random seeded weights)`);
      const r = run(PY, [path.join(HERE, 'export_models.py'), MODELS_DIR, m.name], { stdio: 'inherit' });
      if (r.status !== 0) die('model export failed');
    }
    return { file, manifest: null };
  }
  let manifest = manifestOk(file);
  if (!manifest) {
    const need = { 'llm-8x4096': 3.3e9, 'llm-24x4096': 9.8e9 }[m.name] || 0;
    if (freeBytes(MODELS_DIR) < need * 1.2)
      die(`${m.name} needs ${fx(need / GB, 1)} GB in ${MODELS_DIR}; only ${fx(freeBytes(MODELS_DIR) / GB, 1)} GB free`);
    console.log(`bench_llm: generating ${m.name} into ${path.relative(ROOT, MODELS_DIR)}/ (make_llm.py --preset ${m.name})`);
    const t0 = Date.now();
    const r = run(PY, [path.join(HERE, 'make_llm.py'), file, '--preset', m.name], { stdio: 'inherit' });
    if (r.status !== 0) die(`generating ${m.name} failed`);
    console.log(`bench_llm: generated in ${fx((Date.now() - t0) / 1000, 1)} s`);
    manifest = manifestOk(file);
  }
  return { file, manifest };
}

// ---------------------------------------------------------------- measurements

// One command in a fresh process under /usr/bin/time: whole-process wall time and peak RSS
// (the largest resident set of that process, which GNU time reads from wait4's rusage).
function timed(what, cmd, args, { stdoutFile, okStatus = [0] } = {}) {
  const tf = path.join(RESULTS, `.time-${process.pid}`);
  const fd = stdoutFile ? fs.openSync(stdoutFile, 'w') : 'pipe';
  const r = spawnSync(TIME, ['-f', '%e %M', '-o', tf, cmd, ...args], {
    cwd: ROOT,
    encoding: 'utf8',
    maxBuffer: 1 << 30,
    env: { ...process.env, QL_WEB_ROOT: WEB, QUANTLENS_PROGRESS: '0' },
    stdio: ['ignore', fd, 'pipe'],
  });
  if (stdoutFile) fs.closeSync(fd);
  const [wall, rss] = fs.readFileSync(tf, 'utf8').trim().split('\n').pop().split(/\s+/).map(Number);
  fs.rmSync(tf, { force: true });
  if (!okStatus.includes(r.status)) die(`${what} failed (exit ${r.status}):\n${(r.stderr || '').slice(-3000)}`);
  return { wallMs: wall * 1000, rssKB: rss, stdout: r.stdout || '', stderr: r.stderr || '' };
}

const lastJson = (text) => JSON.parse(text.trim().split('\n').pop());

function measureOnce(method, m, ctx) {
  switch (method) {
    case 'analyze': {
      const r = timed(`QuantLens analyze() on ${m.name}`, NODE, [path.join(HERE, 'run_quantlens.mjs'), m.file]);
      const j = lastJson(r.stdout);
      return { ms: j.totalMs, rssKB: r.rssKB, wallMs: r.wallMs, weights: j.weights, layers: j.layers };
    }
    case 'numpy': {
      const args = [path.join(HERE, 'numpy_baseline.py'), m.file, ...(ctx.numpyOut ? ['--out', ctx.numpyOut] : [])];
      const r = timed(`numpy on ${m.name}`, PY, args);
      const j = lastJson(r.stdout);
      return { ms: j.total_s * 1000, rssKB: r.rssKB, wallMs: r.wallMs, load: j.load_s * 1000, json: j };
    }
    case 'cli-analyze': {
      const r = timed(`quantlens analyze --json ${m.name}`, NODE, [CLI, 'analyze', '--json', m.file], {
        stdoutFile: ctx.analyzeOut,
      });
      return { ms: r.wallMs, rssKB: r.rssKB, wallMs: r.wallMs };
    }
    case 'equalize': {
      const out = path.join(MODELS_DIR, `${m.name}.equalized.onnx`);
      const r = timed(`quantlens equalize ${m.name}`, NODE, [CLI, 'equalize', m.file, '-o', out]);
      const written = fs.existsSync(out) ? fs.statSync(out).size : 0;
      for (const f of fs.readdirSync(MODELS_DIR))
        if (f.startsWith(`${m.name}.equalized.onnx`)) fs.rmSync(path.join(MODELS_DIR, f), { force: true });
      return { ms: r.wallMs, rssKB: r.rssKB, wallMs: r.wallMs, written, summary: r.stdout.trim().split('\n')[0] };
    }
    case 'compare': {
      const r = timed(`quantlens compare ${m.name}`, NODE, [CLI, 'compare', m.file, m.file, '--top', '1']);
      return { ms: r.wallMs, rssKB: r.rssKB, wallMs: r.wallMs, summary: r.stdout.trim().split('\n')[0] };
    }
    case 'report': {
      const out = path.join(RESULTS, `${m.name}.report.html`);
      const r = timed(`quantlens report ${m.name}`, NODE, [CLI, 'report', m.file, '-o', out]);
      const written = fs.statSync(out).size;
      fs.rmSync(out, { force: true });
      return { ms: r.wallMs, rssKB: r.rssKB, wallMs: r.wallMs, summary: `${fx(written / 2 ** 20, 1)} MB of HTML` };
    }
  }
  throw new Error(method);
}

const stat = (xs) => ({ med: median(xs), min: Math.min(...xs), max: Math.max(...xs) });
const mbOf = (kb) => kb / 1024;
const BYTES = { float32: 4, float16: 2, bfloat16: 2, float64: 8 };

function machineLine() {
  const cpuinfo = fs.readFileSync('/proc/cpuinfo', 'utf8');
  const cpu = (cpuinfo.match(/^model name\s*:\s*(.*)$/m) || [])[1] || os.cpus()[0]?.model || 'unknown';
  return `${os.cpus().length} cores, ${cpu}, ${fx(os.totalmem() / 2 ** 30, 1)} GB RAM, Linux ${os.release()}, node ${process.version}`;
}

async function main() {
  const opts = parseArgs(process.argv.slice(2));
  if (!fs.existsSync(TIME)) die(`${TIME} not found; install with: apt-get install -y time`, 2);
  if (!fs.existsSync(path.join(WEB, 'dist/quantlens_core.wasm'))) die(`${WEB}/dist is not built; run npm run build`);
  fs.mkdirSync(RESULTS, { recursive: true });
  const started = new Date();
  console.log(`\nbench_llm: commands benchmark; ${machineLine()}; measuring ${path.relative(ROOT, WEB) || WEB}`);
  const results = [];
  let failed = false;
  for (const name of opts.models) {
    const spec = MODELS.find((x) => x.name === name);
    const { file, manifest } = ensureModel(spec);
    const m = { ...spec, file, runs: opts.runs ?? spec.runs };
    const bytes =
      fs.statSync(file).size +
      (manifest ? manifest.files.reduce((a, f) => a + fs.statSync(path.join(MODELS_DIR, f)).size, 0) : 0);
    const ctx = {
      numpyOut: path.join(RESULTS, `numpy_full_${name}.json`),
      analyzeOut: path.join(RESULTS, `quantlens_${name}.json`),
    };
    // The python peer holds the whole model, its copies and a float32 copy of a layer.
    const npNeed = 1.25 * bytes + 1e9;
    const withNumpy = memAvailable() > npNeed;
    const methods = ['analyze', 'cli-analyze', ...(withNumpy ? ['numpy'] : []), 'equalize', 'compare', 'report'];
    console.log(
      `\n== ${name} (${fx(bytes / GB, 2)} GB${manifest ? `, model and ${manifest.files.length} external data file(s)` : ''})${withNumpy ? '' : `: numpy skipped, it needs ~${fx(npNeed / GB, 1)} GB and ${fx(memAvailable() / GB, 1)} GB are available`}`,
    );
    const runs = Object.fromEntries(methods.map((k) => [k, []]));
    if (manifest) {
      // Untimed: bring the files into the page cache, as vgg16's warm-up round does.
      const buf = Buffer.allocUnsafe(1 << 24);
      for (const f of [file, ...manifest.files.map((x) => path.join(MODELS_DIR, x))]) {
        const fd = fs.openSync(f, 'r');
        while (fs.readSync(fd, buf, 0, buf.length, null) > 0);
        fs.closeSync(fd);
      }
    }
    const load0 = os.loadavg()[0];
    // First round: also writes both JSON outputs for the check. vgg16 gets one more,
    // discarded, warm-up round before it.
    const rounds = m.kind === 'cnn' ? m.runs + 1 : m.runs;
    for (let i = 0; i < rounds; i++) {
      const warm = m.kind === 'cnn' && i === 0;
      process.stdout.write(`   ${warm ? 'warm-up round (discarded)' : `round ${i + (m.kind === 'cnn' ? 0 : 1)}/${m.runs}`}:`);
      for (let k = 0; k < methods.length; k++) {
        const what = methods[(i + k) % methods.length];
        const r = measureOnce(what, m, i === 0 ? ctx : {});
        if (!warm) runs[what].push(r);
        process.stdout.write(` ${what} ${sec(r.ms)} s ${fx(mbOf(r.rssKB), 0)} MB;`);
      }
      process.stdout.write('\n');
    }
    const load1 = os.loadavg()[0];

    const ql = JSON.parse(fs.readFileSync(ctx.analyzeOut, 'utf8'));
    fs.rmSync(ctx.analyzeOut);
    const weightBytes = ql.layers.reduce((a, l) => a + l.shape.reduce((x, y) => x * y, 1) * (BYTES[l.dtype] || 4), 0);
    let lines = [];
    if (withNumpy) {
      const full = fullCheck(ql, JSON.parse(fs.readFileSync(ctx.numpyOut, 'utf8')));
      fs.rmSync(ctx.numpyOut);
      const sanity = sqnrCheck(ql, runs.numpy[0].json);
      if (
        !sanity.ok ||
        full.f32Mismatch ||
        full.missing.length ||
        full.histDiff ||
        full.outlierLayers ||
        full.inAbsMismatch ||
        full.inShapeMismatch ||
        full.sqnrMissing
      )
        failed = true;
      lines = [
        `check ${name}: ${sanity.ok ? 'numpy and QuantLens agree' : 'MISMATCH:'} on the INT8 per-tensor SQNR of ${sanity.layers - sanity.bad} of ${sanity.layers} layers to ${SQNR_TOL_DB} dB (max |Δ| ${exp(sanity.worst)} dB); ` +
          `${full.layers} layers matched${full.missing.length ? `, ${full.missing.length} MISSING in numpy` : ''}; float32 min/max/absMax/range ${full.f32Mismatch ? `${full.f32Mismatch} of ${full.f32Total} DIFFER` : `identical (${full.f32Total} values)`}; ` +
          `mean |Δ|/absMax ≤ ${exp(full.meanRel)}; std rel ≤ ${exp(full.stdRel)}; SQNR |Δ| ≤ ${exp(full.chSqnr)} dB per channel; ${blockInputText(full)}; histograms ${full.histDiff ? `DIFFER by ${full.histDiff}` : 'identical'}; outlier channels ${full.outlierLayers ? `DIFFER on ${full.outlierLayers} layers` : 'identical'}`,
      ];
    }
    if (manifest) {
      // The generator's planted outlier rows against QuantLens's flagged input channels.
      const planted = new Map(manifest.weights.map((w) => [w.weight, w.outlierRows.join(',')]));
      const same = ql.layers.filter((l) => (l.inputChannels?.outliers || []).join(',') === planted.get(l.weight)).length;
      lines.push(`planted outlier input rows ${name}: flagged exactly on ${same} of ${ql.layers.length} layers`);
    }
    for (const l of lines) console.log(l);
    const s = Object.fromEntries(
      methods.map((k) => [k, { t: stat(runs[k].map((r) => r.ms)), rss: median(runs[k].map((r) => r.rssKB)) * 1024 }]),
    );
    results.push({
      name,
      bytes,
      weightBytes,
      params: runs.analyze[0].weights,
      layers: runs.analyze[0].layers,
      dtype: [...new Set(ql.layers.map((l) => l.dtype))].join('/'),
      runs: m.runs,
      withNumpy,
      loadavg: [load0, load1],
      s,
      equalize: runs.equalize[0].summary,
      compare: runs.compare[0].summary,
      report: runs.report[0].summary,
      lines,
      raw: runs,
    });
  }

  // ---- report
  const analyzeT = table(
    [
      'model',
      'weights',
      'QuantLens analyze() s',
      'GB/s',
      'peak RSS MB',
      'numpy s',
      'GB/s',
      'peak RSS MB',
      'speed-up vs numpy',
      'CLI analyze --json, whole process s',
      'peak RSS MB',
    ],
    results.map((r) => [
      r.name,
      `${fx(r.params / 1e9, 2)} B ${r.dtype}, ${r.layers} layers, ${fx(r.weightBytes / GB, 2)} GB`,
      spread(r.s.analyze.t),
      fx(r.weightBytes / (r.s.analyze.t.med / 1000) / GB, 2),
      fx(r.s.analyze.rss / 2 ** 20, 0),
      r.withNumpy ? spread(r.s.numpy.t) : 'skipped',
      r.withNumpy ? fx(r.weightBytes / (r.s.numpy.t.med / 1000) / GB, 3) : '-',
      r.withNumpy ? fx(r.s.numpy.rss / 2 ** 20, 0) : '-',
      r.withNumpy ? `${fx(r.s.numpy.t.med / r.s.analyze.t.med, 2)}x` : '-',
      spread(r.s['cli-analyze'].t),
      fx(r.s['cli-analyze'].rss / 2 ** 20, 0),
    ]),
  );
  const commandsT = table(
    ['model', 'file(s) GB', 'command', 'whole process s (min–max)', 'peak RSS MB', 'peak RSS / files', 'what it did'],
    results.flatMap((r) =>
      [
        ['analyze --json', 'cli-analyze', `${r.layers} layers`],
        ['equalize -o', 'equalize', r.equalize],
        ['compare (itself)', 'compare', r.compare],
        ['report -o', 'report', r.report],
      ].map(([label, k, what]) => [
        r.name,
        fx(r.bytes / GB, 2),
        label,
        spread(r.s[k].t),
        fx(r.s[k].rss / 2 ** 20, 0),
        `${fx(r.s[k].rss / r.bytes, 2)}x`,
        (what || '').replace(/\|/g, '/').slice(0, 160),
      ]),
    ),
  );
  const finished = new Date();
  const md = `## LLM-shaped model and the commands (tools/bench/bench_llm.mjs)

Date: ${started.toISOString()} – ${finished.toISOString()}
Machine: ${machineLine()}
Load average (1 min) before → after each model: ${results.map((r) => `${r.name} ${fx(r.loadavg[0])} → ${fx(r.loadavg[1])}`).join(', ')}
Runs: ${results.map((r) => `${r.runs} for ${r.name}`).join(', ')} (medians; vgg16 after one discarded warm-up round; the LLM files read through once beforehand, untimed, to bring them into the page cache). Every figure is a fresh process; peak RSS is GNU time's maximum resident set of that process.

Analyze: QuantLens \`analyze(path)\` (run_quantlens.mjs, module loaded before the clock) against the python peer (numpy_baseline.py: onnx.load, external data included, + the statistics); GB/s = weight bytes analysed / that time.

${analyzeT}

${results.flatMap((r) => r.lines.map((l) => `- ${l}`)).join('\n')}

Commands (the CLI, \`node web/cli/quantlens.js\`, whole process under /usr/bin/time):

${commandsT}
`;
  fs.writeFileSync(path.join(RESULTS, 'llm-latest.md'), md);
  fs.writeFileSync(path.join(RESULTS, 'llm-latest.json'), JSON.stringify({ started, finished, results }, null, 1));
  console.log(`\n${analyzeT}\n\n${commandsT}\n`);
  console.log(`bench_llm: written ${path.relative(ROOT, path.join(RESULTS, 'llm-latest.md'))} (and llm-latest.json)`);
  if (failed) die('numpy and QuantLens disagree (see the check lines)');
}

main().catch((e) => die(e && e.stack ? e.stack : String(e)));
