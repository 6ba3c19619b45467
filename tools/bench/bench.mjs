#!/usr/bin/env node
// QuantLens benchmark (`npm run bench`): QuantLens (WASM under Node) against a
// vectorised python3-onnx + numpy baseline computing the same statistics and a
// plain WASM SIMD pass over the same weight bytes, on torchvision mobilenet_v2,
// resnet50 and vgg16 (random seeded weights). Every measurement runs in a fresh
// process; see tools/bench/README.md.
//
//   node tools/bench/bench.mjs [--models a,b] [--runs N] [--no-build] [--rev REV]
//                              [--llm a,b | --no-llm | --llm-only] [--big]
// Then, with the same core, bench_llm.mjs: the LLM-shaped model against the python peer and
// the time and peak RSS of analyze, equalize and compare (on vgg16 and llm-8x4096 by default).
import { spawnSync } from 'node:child_process';
import crypto from 'node:crypto';
import fs from 'node:fs';
import os from 'node:os';
import path from 'node:path';
import { fileURLToPath } from 'node:url';
import { initializerRanges } from './onnx_ranges.mjs';
import {
  SQNR_TOL_DB,
  MB,
  median,
  fx,
  sec,
  spread,
  ratioCell,
  exp,
  table,
  fullCheck,
  sqnrCheck,
  blockInputText,
} from './checks.mjs';

const HERE = path.dirname(fileURLToPath(import.meta.url));
const ROOT = path.resolve(HERE, '../..');
const MODELS_DIR = path.join(HERE, 'models');
const RESULTS = path.join(HERE, 'results');
const BUILD = path.join(HERE, 'build');
const PY = '/usr/bin/python3';
const NODE = process.execPath;

// N measured runs per method (after one discarded warm-up run per method).
const MODELS = [
  { name: 'mobilenet_v2', runs: 5 },
  { name: 'resnet50', runs: 5 },
  { name: 'vgg16', runs: 3 },
];
const TARGET = { speedup: 5, simd: 3, memory: 1.3 };

// ---------------------------------------------------------------- arguments

function parseArgs(argv) {
  const o = { models: MODELS.map((m) => m.name), runs: null, build: true, rev: null, llm: ['vgg16', 'llm-8x4096'] };
  for (let i = 0; i < argv.length; i++) {
    const a = argv[i];
    if (a === '--models') o.models = argv[++i].split(',').filter(Boolean);
    else if (a === '--runs') o.runs = Number(argv[++i]);
    else if (a === '--no-build') o.build = false;
    else if (a === '--rev') o.rev = argv[++i];
    else if (a === '--llm') o.llm = argv[++i].split(',').filter(Boolean);
    else if (a === '--no-llm') o.llm = [];
    else if (a === '--llm-only') o.models = [];
    else if (a === '--big') o.llm = [...new Set([...o.llm, 'llm-24x4096'])];
    else if (a === '-h' || a === '--help') {
      console.log(`usage: node tools/bench/bench.mjs [--models mobilenet_v2,resnet50,vgg16] [--runs N] [--no-build] [--rev REV]
                                   [--llm vgg16,llm-8x4096 | --no-llm | --llm-only] [--big]
  --llm MODELS  the models of the commands benchmark (bench_llm.mjs), run after the analysis one
  --no-llm      skip it; --llm-only: run only it
  --big         add llm-24x4096 (9.7 GB of float16 weights, generated on first use) to it
  --rev REV   measure the core of git revision REV, exported and built apart in tools/bench/build/
              (default: the working tree's web/, rebuilt by tools/build.sh when stale, then snapshotted)`);
      process.exit(0);
    } else die(`unknown argument ${a}`);
  }
  for (const m of o.models) if (!MODELS.some((x) => x.name === m)) die(`unknown model ${m}`);
  if (o.runs !== null && !(Number.isInteger(o.runs) && o.runs > 0)) die('--runs takes a positive integer');
  return o;
}

function die(msg, code = 1) {
  console.error(`bench: ${msg}`);
  process.exit(code);
}

// ---------------------------------------------------------------- setup

function run(cmd, args, opts = {}) {
  return spawnSync(cmd, args, { encoding: 'utf8', maxBuffer: 1 << 30, ...opts });
}

function checkPython(modules, pkgs) {
  if (!fs.existsSync(PY)) die(`${PY} not found; install with: apt-get install -y python3 ${pkgs}`, 2);
  const r = run(PY, ['-c', `import ${modules}`]);
  if (r.status !== 0) {
    die(
      `${PY} cannot import ${modules} (${(r.stderr || '').trim().split('\n').pop()}); install with:\n  apt-get install -y ${pkgs}`,
      2,
    );
  }
}

function ensureModels(names) {
  const missing = names.filter((n) => !fs.existsSync(path.join(MODELS_DIR, `${n}.onnx`)));
  if (!missing.length) return;
  checkPython('torch, torchvision', 'python3-torch python3-torchvision');
  console.log(
    `bench: exporting ${missing.join(', ')} to ${path.relative(ROOT, MODELS_DIR)}/ (torchvision, random seeded weights)`,
  );
  const r = run(PY, [path.join(HERE, 'export_models.py'), MODELS_DIR, ...missing], { stdio: 'inherit' });
  if (r.status !== 0) die('model export failed');
}

function newestMtime(p) {
  const st = fs.statSync(p);
  if (!st.isDirectory()) return st.mtimeMs;
  let t = 0;
  for (const e of fs.readdirSync(p)) t = Math.max(t, newestMtime(path.join(p, e)));
  return t;
}

function ensureCore(build) {
  const wasm = path.join(ROOT, 'web/dist/quantlens_core.wasm');
  const mjs = path.join(ROOT, 'web/dist/quantlens_core.mjs');
  const sources = ['src', 'wasm', 'CMakeLists.txt'].map((p) => path.join(ROOT, p));
  const built = fs.existsSync(wasm) && fs.existsSync(mjs) ? Math.min(fs.statSync(wasm).mtimeMs, fs.statSync(mjs).mtimeMs) : 0;
  const stale = sources.some((s) => newestMtime(s) > built);
  if (!stale) return 'up to date';
  if (!build) {
    if (!built) die('web/dist is missing; run npm run build (or drop --no-build)');
    console.warn('bench: warning: web/dist is older than src/; measuring it anyway (--no-build)');
    return 'STALE (--no-build)';
  }
  console.log('bench: web/dist is stale or missing; running tools/build.sh');
  const r = run('bash', [path.join(ROOT, 'tools/build.sh')], { stdio: 'inherit', cwd: ROOT });
  if (r.status !== 0) die('tools/build.sh failed');
  return 'rebuilt by bench';
}

const sha256 = (file) => crypto.createHash('sha256').update(fs.readFileSync(file)).digest('hex');
const git = (...args) => run('git', ['-C', ROOT, ...args]);

function copyDir(from, to) {
  fs.mkdirSync(to, { recursive: true });
  for (const e of fs.readdirSync(from, { withFileTypes: true })) {
    const a = path.join(from, e.name);
    const b = path.join(to, e.name);
    if (e.isDirectory()) copyDir(a, b);
    else fs.copyFileSync(a, b);
  }
}

// Loads the module from webRoot once in a fresh process: catches a .mjs/.wasm pair
// copied in the middle of someone else's rebuild.
function coreLoads(webRoot) {
  const r = run(NODE, [path.join(HERE, 'run_quantlens.mjs'), '--baseline'], { env: { ...process.env, QL_WEB_ROOT: webRoot } });
  return r.status === 0;
}

// The copy of web/ every measurement uses, fixed for the whole run, so that a
// concurrent rebuild of web/dist cannot change the core halfway through.
function prepareCore(opts) {
  const head = git('rev-parse', '--short=12', 'HEAD').stdout.trim();
  if (opts.rev) {
    const sha = git('rev-parse', '--verify', `${opts.rev}^{commit}`).stdout.trim();
    if (!sha) die(`--rev ${opts.rev}: not a commit`);
    const dir = path.join(BUILD, `rev-${sha.slice(0, 12)}`);
    const wasm = path.join(dir, 'web/dist/quantlens_core.wasm');
    if (!fs.existsSync(wasm)) {
      console.log(`bench: exporting ${sha.slice(0, 12)} (git archive) and building its core in ${path.relative(ROOT, dir)}/`);
      fs.rmSync(dir, { recursive: true, force: true });
      fs.mkdirSync(dir, { recursive: true });
      const a = spawnSync('bash', ['-c', `git -C "${ROOT}" archive "${sha}" | tar -x -C "${dir}"`], { stdio: 'inherit' });
      if (a.status !== 0) die('git archive failed');
      const env = { ...process.env, NODE_PATH: ['/usr/share/nodejs', process.env.NODE_PATH].filter(Boolean).join(':') };
      const b = path.join(dir, 'build-wasm');
      let r = run(
        'emcmake',
        ['cmake', '-S', dir, '-B', b, '-DCMAKE_BUILD_TYPE=Release', '-DEigen3_DIR=/usr/share/eigen3/cmake'],
        { env, stdio: ['ignore', 'ignore', 'inherit'] },
      );
      if (r.status === 0)
        r = run('cmake', ['--build', b, '-j', String(os.cpus().length), '--target', 'quantlens_wasm'], {
          env,
          stdio: ['ignore', 'ignore', 'inherit'],
        });
      if (r.status !== 0 || !fs.existsSync(wasm)) die(`building the core of ${sha.slice(0, 12)} failed`);
    }
    const webRoot = path.join(dir, 'web');
    if (!coreLoads(webRoot)) die(`the core built from ${sha.slice(0, 12)} does not load`);
    return {
      webRoot,
      what: `git ${sha.slice(0, 12)}${opts.rev !== sha ? ` (${opts.rev})` : ''}, exported with git archive and built apart`,
      wasmSha: sha256(wasm),
    };
  }
  const state = ensureCore(opts.build);
  const dirty = git('status', '--porcelain', '--', 'src', 'wasm', 'web', 'CMakeLists.txt').stdout.trim();
  const snap = path.join(BUILD, 'snapshot');
  for (let attempt = 0; ; attempt++) {
    fs.rmSync(snap, { recursive: true, force: true });
    for (const d of ['src', 'cli', 'dist']) copyDir(path.join(ROOT, 'web', d), path.join(snap, 'web', d));
    fs.writeFileSync(path.join(snap, 'package.json'), '{ "type": "module" }\n');
    if (coreLoads(path.join(snap, 'web'))) break;
    if (attempt === 5) die('web/dist does not load (a build in progress?); try again later');
    console.log('bench: web/dist did not load (a rebuild in progress?); retrying in 10 s');
    spawnSync('sleep', ['10']);
  }
  return {
    webRoot: path.join(snap, 'web'),
    what: `working tree at ${head}${dirty ? ' WITH UNCOMMITTED CHANGES in src/, wasm/ or web/' : ''}; web/dist ${state}, snapshotted to tools/bench/build/snapshot`,
    wasmSha: sha256(path.join(snap, 'web/dist/quantlens_core.wasm')),
  };
}

function ensureSimd() {
  const src = path.join(HERE, 'simd_pass.cpp');
  const js = path.join(BUILD, 'simd_pass.js');
  const wasm = path.join(BUILD, 'simd_pass.wasm');
  fs.mkdirSync(BUILD, { recursive: true });
  // The package is "type": "module"; this folder holds Emscripten's CommonJS output.
  fs.writeFileSync(path.join(BUILD, 'package.json'), '{ "type": "commonjs" }\n');
  const srcTime = Math.max(fs.statSync(src).mtimeMs, fs.statSync(fileURLToPath(import.meta.url)).mtimeMs);
  if (fs.existsSync(js) && fs.existsSync(wasm) && Math.min(fs.statSync(js).mtimeMs, fs.statSync(wasm).mtimeMs) > srcTime) return;
  if (run('em++', ['--version']).status !== 0) die('em++ not found; install with: apt-get install -y emscripten', 2);
  console.log('bench: compiling tools/bench/simd_pass.cpp (em++ -O3 -msimd128)');
  const env = { ...process.env, NODE_PATH: ['/usr/share/nodejs', process.env.NODE_PATH].filter(Boolean).join(':') };
  const r = run(
    'em++',
    [
      '-O3',
      '-msimd128',
      '-std=c++17',
      src,
      '-o',
      js,
      '-sMODULARIZE=1',
      '-sEXPORT_NAME=createSimdPass',
      '-sENVIRONMENT=node',
      '-sALLOW_MEMORY_GROWTH=1',
      '-sMAXIMUM_MEMORY=4GB',
      '-sINITIAL_MEMORY=32MB',
      '-sFILESYSTEM=0',
      '-sEXPORTED_FUNCTIONS=_malloc,_free,_max_abs,_max_abs_ranges',
      '-sEXPORTED_RUNTIME_METHODS=HEAPU8',
    ],
    { env, stdio: 'inherit' },
  );
  if (r.status !== 0) die('em++ failed to build simd_pass.cpp');
}

function machine() {
  const cpuinfo = fs.readFileSync('/proc/cpuinfo', 'utf8');
  const cpu = (cpuinfo.match(/^model name\s*:\s*(.*)$/m) || [])[1] || os.cpus()[0]?.model || 'unknown';
  const family = (cpuinfo.match(/^cpu family\s*:\s*(.*)$/m) || [])[1];
  const model = (cpuinfo.match(/^model\s*:\s*(.*)$/m) || [])[1];
  const first = (r) => (r.stdout || r.stderr || '').trim().split('\n')[0];
  const py = run(PY, ['-c', 'import sys, numpy, onnx; print(sys.version.split()[0], numpy.__version__, onnx.__version__)'])
    .stdout.trim()
    .split(' ');
  return {
    nproc: first(run('nproc', [])),
    cpu: `${cpu}${family ? ` (family ${family}, model ${model})` : ''}`,
    memGB: (os.totalmem() / 2 ** 30).toFixed(1),
    kernel: os.release(),
    node: process.version,
    emcc: first(run('emcc', ['--version'])).replace(/\s*\(\)\s*$/, ''),
    python: py[0],
    numpy: py[1],
    onnx: py[2],
  };
}

// ---------------------------------------------------------------- measurements

let childEnv = process.env;
const trimLines = (text) =>
  text
    .split('\n')
    .map((l) => (l.length > 300 ? `${l.slice(0, 300)} …` : l))
    .join('\n');

function child(cmd, args, what) {
  const t0 = process.hrtime.bigint();
  const r = run(cmd, args, { cwd: ROOT, env: childEnv });
  const wallMs = Number(process.hrtime.bigint() - t0) / 1e6;
  if (r.status !== 0) die(`${what} failed (exit ${r.status}):\n${trimLines(r.stderr || '')}`);
  const line = r.stdout.trim().split('\n').pop();
  return { ...JSON.parse(line), wallMs };
}

const measure = {
  baseline: () => child(NODE, [path.join(HERE, 'run_quantlens.mjs'), '--baseline'], 'node baseline'),
  quantlens: (m) => child(NODE, [path.join(HERE, 'run_quantlens.mjs'), m.file, '--again'], `QuantLens on ${m.name}`),
  numpy: (m, out) =>
    child(PY, [path.join(HERE, 'numpy_baseline.py'), m.file, '--again', ...(out ? ['--out', out] : [])], `numpy on ${m.name}`),
  simd: (m) => child(NODE, [path.join(HERE, 'run_simd.mjs'), m.file, m.rangesFile], `SIMD pass on ${m.name}`),
  stream: (m) =>
    child(NODE, [path.join(HERE, 'run_simd.mjs'), m.file, m.rangesFile, '--stream'], `streamed SIMD pass on ${m.name}`),
};

const pick = (runs, f) => runs.map(f);
const stat = (runs, f) => {
  const v = pick(runs, f);
  return { med: median(v), min: Math.min(...v), max: Math.max(...v) };
};

// ---------------------------------------------------------------- main

async function main() {
  const opts = parseArgs(process.argv.slice(2));
  checkPython('onnx, numpy', 'python3-onnx python3-numpy');
  const models = MODELS.filter((m) => opts.models.includes(m.name)).map((m) => ({
    ...m,
    runs: opts.runs ?? m.runs,
    file: path.join(MODELS_DIR, `${m.name}.onnx`),
  }));
  ensureModels(models.map((m) => m.name));
  const core = prepareCore(opts);
  childEnv = { ...process.env, QL_WEB_ROOT: core.webRoot };
  if (!models.length) return commandsBench(opts, core);
  const CLI = path.join(core.webRoot, 'cli/quantlens.js');
  ensureSimd();
  fs.mkdirSync(RESULTS, { recursive: true });
  const mach = machine();
  const started = new Date();
  console.log(
    `bench: ${mach.nproc} cores, ${mach.cpu}; node ${mach.node}; ${mach.emcc}; load average ${os
      .loadavg()
      .map((x) => x.toFixed(2))
      .join(' ')}`,
  );
  console.log(`bench: measuring QuantLens from ${core.what}`);

  const results = [];
  const sanityLines = [];
  let sanityFailed = false;
  for (const m of models) {
    const bytes = fs.statSync(m.file).size;
    console.log(`\n== ${m.name} (${fx(bytes / MB, 1)} MB): correctness checks`);
    // QuantLens's own JSON through the CLI, as a user would get it (not timed).
    const cli = run(NODE, [CLI, 'analyze', '--json', m.file], { cwd: ROOT });
    if (cli.status !== 0) die(`quantlens analyze --json ${m.file} failed:\n${trimLines(cli.stderr || '')}`);
    const ql = JSON.parse(cli.stdout);
    // The weight bytes for the SIMD pass: each analysed layer's raw_data in the file.
    const ranges = initializerRanges(m.file);
    const rangeList = ql.layers.map((l) => {
      const r = ranges.get(l.weight);
      if (!r || r.dataType !== 1) die(`${m.name}: weight ${l.weight} is not a float32 raw_data initializer`);
      return [r.offset, r.length];
    });
    m.rangesFile = path.join(RESULTS, `ranges_${m.name}.json`);
    fs.writeFileSync(m.rangesFile, JSON.stringify(rangeList));
    const weightBytes = rangeList.reduce((a, r) => a + r[1], 0);

    // Warm-up round (discarded): also writes numpy's full output for the check.
    const fullOut = path.join(RESULTS, `numpy_full_${m.name}.json`);
    console.log(`   warm-up round (discarded)`);
    measure.baseline();
    measure.quantlens(m);
    const npWarm = measure.numpy(m, fullOut);
    measure.simd(m);
    measure.stream(m);
    const full = fullCheck(ql, JSON.parse(fs.readFileSync(fullOut, 'utf8')));
    fs.rmSync(fullOut);

    // N measured rounds; the order of the methods rotates each round so that no
    // method always follows the same one (a process that just freed a lot of memory
    // changes what the next one pays for fresh pages on some VMs).
    const order = ['baseline', 'quantlens', 'numpy', 'simd', 'stream'];
    const runs = { baseline: [], quantlens: [], numpy: [], simd: [], stream: [] };
    const load0 = os.loadavg()[0];
    for (let i = 0; i < m.runs; i++) {
      process.stdout.write(`   round ${i + 1}/${m.runs}:`);
      for (let k = 0; k < order.length; k++) {
        const what = order[(i + k) % order.length];
        const r = measure[what](m);
        runs[what].push(r);
        const t =
          what === 'baseline'
            ? r.maxRssKB / 1024
            : what === 'quantlens'
              ? r.totalMs
              : what === 'numpy'
                ? r.total_s * 1000
                : what === 'stream'
                  ? r.streamMs
                  : r.passMs;
        process.stdout.write(` ${what} ${what === 'baseline' ? `${fx(t, 0)} MB` : `${sec(t)} s`};`);
      }
      process.stdout.write('\n');
    }
    const load1 = os.loadavg()[0];

    const sanity = sqnrCheck(ql, runs.numpy[0]);
    const sanityWarm = sqnrCheck(ql, npWarm);
    const line =
      sanity.ok && sanityWarm.ok
        ? `sanity ${m.name}: numpy and QuantLens (quantlens analyze --json) agree on the layer-level INT8 per-tensor SQNR of all ${sanity.layers} layers to ${SQNR_TOL_DB} dB (max |Δ| ${exp(sanity.worst)} dB)`
        : `sanity ${m.name}: MISMATCH: INT8 per-tensor SQNR differs by more than ${SQNR_TOL_DB} dB on ${sanity.bad} of ${sanity.layers} layers (numpy found ${sanity.numpyLayers}; max |Δ| ${exp(sanity.worst)} dB)`;
    if (!(sanity.ok && sanityWarm.ok)) sanityFailed = true;
    const fullLine =
      `full check ${m.name}: ${full.layers} layers matched${full.missing.length ? `, ${full.missing.length} MISSING in numpy` : ''}${full.extraNumpy ? `, ${full.extraNumpy} extra in numpy` : ''}; ` +
      `float32 min/max/absMax/range ${full.f32Mismatch ? `${full.f32Mismatch} of ${full.f32Total} DIFFER` : `identical (${full.f32Total} values)`}; ` +
      `mean |Δ|/absMax ≤ ${exp(full.meanRel)}; std rel ≤ ${exp(full.stdRel)}; tensor mean/std ≤ ${exp(full.tensorRel)}; relative range rel ≤ ${exp(full.relRangeRel)}; ` +
      `SQNR |Δ| ≤ ${exp(full.chSqnr)} dB per channel, ≤ ${exp(full.layerSqnr)} dB per layer${full.infMismatch ? ` (${full.infMismatch} lossless/finite DISAGREE)` : ''}; ` +
      `${blockInputText(full)}; ` +
      `histograms ${full.histDiff ? `DIFFER by ${full.histDiff} counts` : 'identical'}; outlier channels ${full.outlierLayers ? `DIFFER on ${full.outlierLayers} layers` : 'identical'}`;
    console.log(line);
    console.log(fullLine);
    sanityLines.push(line, fullLine);

    const rssBase = median(pick(runs.baseline, (r) => r.maxRssKB)) * 1024;
    const r = {
      name: m.name,
      bytes,
      weightBytes,
      runs: m.runs,
      weights: runs.quantlens[0].weights,
      layers: runs.quantlens[0].layers,
      loadavg: [load0, load1],
      ql: {
        total: stat(runs.quantlens, (x) => x.totalMs),
        read: stat(runs.quantlens, (x) => x.readMs),
        after: stat(runs.quantlens, (x) => x.afterReadMs),
        parse: stat(runs.quantlens, (x) => x.parseMs),
        core: stat(runs.quantlens, (x) => x.coreMs),
        js: stat(runs.quantlens, (x) => x.jsMs),
        yield: stat(runs.quantlens, (x) => x.yieldMs),
        firstYield: stat(runs.quantlens, (x) => x.firstYieldMs),
        load: stat(runs.quantlens, (x) => x.loadMs),
        wall: stat(runs.quantlens, (x) => x.wallMs),
        rss: median(pick(runs.quantlens, (x) => x.maxRssKB)) * 1024,
        againAfter: stat(runs.quantlens, (x) => x.again.afterReadMs),
        againCore: stat(runs.quantlens, (x) => x.again.coreMs),
        againTotal: stat(runs.quantlens, (x) => x.again.totalMs),
      },
      rssBase,
      np: {
        total: stat(runs.numpy, (x) => x.total_s * 1000),
        load: stat(runs.numpy, (x) => x.load_s * 1000),
        compute: stat(runs.numpy, (x) => x.compute_s * 1000),
        copy: stat(runs.numpy, (x) => x.raw_data_copy_s * 1000),
        stats: stat(runs.numpy, (x) => x.stats_s * 1000),
        againStats: stat(runs.numpy, (x) => x.again.stats_s * 1000),
        againCopy: stat(runs.numpy, (x) => x.again.copy_s * 1000),
        wall: stat(runs.numpy, (x) => x.wallMs),
        rss: median(pick(runs.numpy, (x) => x.max_rss_kb)) * 1024,
        rssBase: median(pick(runs.numpy, (x) => x.max_rss_kb_after_imports)) * 1024,
      },
      simd: {
        read: stat(runs.simd, (x) => x.readMs),
        pass: stat(runs.simd, (x) => x.passMs),
        readPass: stat(runs.simd, (x) => x.readPassMs),
        warm: stat(runs.simd, (x) => x.passBestMs),
        rss: median(pick(runs.simd, (x) => x.maxRssKB)) * 1024,
        absMax: runs.simd[0].absMax,
        stream: stat(runs.stream, (x) => x.streamMs),
        streamRss: median(pick(runs.stream, (x) => x.maxRssKB)) * 1024,
        streamAbsMax: runs.stream[0].absMax,
      },
      qlAbsMax: runs.quantlens[0].absMax,
      sanity,
      full,
      raw: runs,
    };
    results.push(r);
  }

  // ---- report
  const rows = [];
  const notes = [];
  for (const r of results) {
    const speedup = r.np.total.med / r.ql.total.med;
    const simdRatio = r.ql.after.med / r.simd.pass.med;
    const memRaw = r.ql.rss / r.bytes;
    const memAbove = (r.ql.rss - r.rssBase) / r.bytes;
    r.verdict = { speedup, simdRatio, memRaw, memAbove };
    rows.push([
      r.name,
      fx(r.bytes / MB, 1),
      fx(r.weights / 1e6, 1),
      sec(r.ql.total.med),
      sec(r.ql.after.med),
      sec(r.np.total.med),
      sec(r.simd.pass.med),
      ratioCell(speedup, speedup >= TARGET.speedup, `≥${TARGET.speedup}x`),
      ratioCell(simdRatio, simdRatio <= TARGET.simd, `≤${TARGET.simd}x`),
      ratioCell(memRaw, memRaw <= TARGET.memory, `≤${TARGET.memory}x`),
      ratioCell(memAbove, memAbove <= TARGET.memory, `≤${TARGET.memory}x`),
    ]);
    for (const [what, s] of [
      ['QuantLens end-to-end', r.ql.total],
      ['numpy', r.np.total],
      ['SIMD pass', r.simd.pass],
    ]) {
      if ((s.max - s.min) / s.med > 0.15)
        notes.push(
          `${r.name}: ${what} varied ${sec(s.min)}–${sec(s.max)} s over ${r.runs} runs (noisy; load average ${fx(r.loadavg[0])} → ${fx(r.loadavg[1])})`,
        );
    }
    if (Math.fround(r.simd.streamAbsMax) !== Math.fround(r.qlAbsMax))
      notes.push(`${r.name}: streamed SIMD pass max |x| ${r.simd.streamAbsMax} differs from QuantLens's ${r.qlAbsMax}`);
    if (Math.fround(r.simd.absMax) !== Math.fround(r.qlAbsMax))
      notes.push(`${r.name}: SIMD pass max |x| ${r.simd.absMax} differs from QuantLens's largest tensor absMax ${r.qlAbsMax}`);
  }
  const main = table(
    [
      'model',
      'file MB',
      'weights (M)',
      'QuantLens end-to-end s',
      'QuantLens analysis-only s',
      'numpy s',
      'SIMD pass s',
      'speed-up vs numpy (end-to-end)',
      'analysis-only / SIMD pass',
      'peak mem / file (raw RSS)',
      'peak mem / file (above baseline)',
    ],
    rows,
  );
  const phases = table(
    [
      'model',
      'end-to-end (min–max)',
      'read into heap',
      'parse + layers',
      'core stats',
      'JS side',
      'of which event-loop yields (first one)',
      'module load (not in e2e)',
      'whole process',
      'peak RSS MB',
      'baseline RSS MB',
    ],
    results.map((r) => [
      r.name,
      spread(r.ql.total),
      sec(r.ql.read.med),
      sec(r.ql.parse.med),
      sec(r.ql.core.med),
      sec(r.ql.js.med),
      `${sec(r.ql.yield.med)} (${sec(r.ql.firstYield.med)})`,
      sec(r.ql.load.med),
      sec(r.ql.wall.med),
      fx(r.ql.rss / 2 ** 20, 0),
      fx(r.rssBase / 2 ** 20, 0),
    ]),
  );
  const numpyT = table(
    [
      'model',
      'onnx.load + compute (min–max)',
      'onnx.load',
      'compute',
      'of which raw_data copies',
      'of which statistics',
      'whole process',
      'peak RSS MB',
      'RSS after imports MB',
      'peak / file (raw)',
      'peak / file (above imports)',
    ],
    results.map((r) => [
      r.name,
      spread(r.np.total),
      sec(r.np.load.med),
      sec(r.np.compute.med),
      sec(r.np.copy.med),
      sec(r.np.stats.med),
      sec(r.np.wall.med),
      fx(r.np.rss / 2 ** 20, 0),
      fx(r.np.rssBase / 2 ** 20, 0),
      `${fx(r.np.rss / r.bytes)}x`,
      `${fx((r.np.rss - r.np.rssBase) / r.bytes)}x`,
    ]),
  );
  const simdT = table(
    [
      'model',
      'weight MB',
      'read into heap',
      'pass (min–max)',
      'pass GB/s',
      'read + pass',
      'pass again, best of 3',
      'again GB/s',
      'peak RSS MB',
      'streamed read + pass (16 MB buffer)',
      'streamed peak RSS MB',
      'max |x| = QuantLens?',
    ],
    results.map((r) => [
      r.name,
      fx(r.weightBytes / MB, 1),
      sec(r.simd.read.med),
      spread(r.simd.pass),
      fx(r.weightBytes / r.simd.pass.med / 1e6, 2),
      sec(r.simd.readPass.med),
      sec(r.simd.warm.med),
      fx(r.weightBytes / r.simd.warm.med / 1e6, 1),
      fx(r.simd.rss / 2 ** 20, 0),
      spread(r.simd.stream),
      fx(r.simd.streamRss / 2 ** 20, 0),
      Math.fround(r.simd.absMax) === Math.fround(r.qlAbsMax) && Math.fround(r.simd.streamAbsMax) === Math.fround(r.qlAbsMax)
        ? 'yes'
        : 'NO',
    ]),
  );
  const steady = table(
    [
      'model',
      'QuantLens end-to-end',
      'QuantLens analysis-only',
      'of which core stats',
      'numpy statistics only',
      'numpy raw_data copies',
      'SIMD pass',
      'QuantLens core stats / SIMD pass',
      'numpy statistics / QuantLens core stats',
    ],
    results.map((r) => [
      r.name,
      sec(r.ql.againTotal.med),
      sec(r.ql.againAfter.med),
      sec(r.ql.againCore.med),
      sec(r.np.againStats.med),
      sec(r.np.againCopy.med),
      sec(r.simd.warm.med),
      `${fx(r.ql.againCore.med / r.simd.warm.med, 1)}x`,
      `${fx(r.np.againStats.med / r.ql.againCore.med, 1)}x`,
    ]),
  );

  const finished = new Date();
  const md = `# QuantLens benchmark

Date: ${started.toISOString()} – ${finished.toISOString()}
Machine: ${mach.nproc} cores, ${mach.cpu}, ${mach.memGB} GB RAM, Linux ${mach.kernel}
Tools: node ${mach.node}; ${mach.emcc}; Python ${mach.python}, numpy ${mach.numpy}, onnx ${mach.onnx}
QuantLens core measured: ${core.what}; quantlens_core.wasm sha256 ${core.wasmSha.slice(0, 16)}…
Load average (1 min) before → after each model's measured rounds: ${results.map((r) => `${r.name} ${fx(r.loadavg[0])} → ${fx(r.loadavg[1])}`).join(', ')}

Protocol: each figure is the median of N measured runs (N = ${results.map((r) => `${r.runs} for ${r.name}`).join(', ')}), each run a fresh process,
after one discarded warm-up run per method; methods interleaved, their order rotating each round.
Times in seconds. See tools/bench/README.md for what each column measures.

## Summary

Targets: at least ${TARGET.speedup}x faster than numpy (end-to-end vs onnx.load + compute), analysis-only within ${TARGET.simd}x of
the SIMD pass over the same bytes (both right after the read), peak memory at most ${TARGET.memory}x the file size.

${main}

${sanityLines.map((l) => `- ${l}`).join('\n')}
${notes.length ? `\nNotes:\n${notes.map((n) => `- ${n}`).join('\n')}\n` : ''}
## QuantLens phases (median; analysis-only = parse + layers + core stats + JS side)

${phases}

## numpy baseline

${numpyT}

## SIMD pass (max |x| over the weights' raw_data, WASM SIMD, in the heap)

${simdT}

## Steady state: a second run in the same process (memory already touched; not the protocol above)

Each QuantLens and numpy process above also computes everything once more after its measured
run (and after its peak RSS is taken), and the SIMD process repeats its pass 3 times. Those
second runs reuse memory the process has already touched, so they show the compute cost
without the price of first touching fresh pages (large on some VMs; compare the read and
first-pass columns above with this table).

${steady}
`;
  fs.writeFileSync(path.join(RESULTS, 'latest.md'), md);
  // A copy named after the run, for comparing runs later.
  const id = opts.rev ? git('rev-parse', '--short=12', `${opts.rev}^{commit}`).stdout.trim() : 'worktree';
  fs.writeFileSync(path.join(RESULTS, `${started.toISOString().replace(/[:.]/g, '-')}_${id}.md`), md);
  fs.writeFileSync(
    path.join(RESULTS, 'latest.json'),
    JSON.stringify({ machine: mach, started, finished, core, results }, null, 1),
  );

  console.log(`\n${main}\n`);
  for (const n of notes) console.log(`note: ${n}`);
  console.log(
    `\nQuantLens phases:\n${phases}\n\nnumpy:\n${numpyT}\n\nSIMD pass:\n${simdT}\n\nsteady state (2nd run in the same process):\n${steady}\n`,
  );
  console.log(`bench: written ${path.relative(ROOT, path.join(RESULTS, 'latest.md'))} (and latest.json)`);
  commandsBench(opts, core);
  if (sanityFailed) die('numpy and QuantLens disagree (see the sanity lines)');
}

// The commands benchmark (bench_llm.mjs) on the same snapshot of the core.
function commandsBench(opts, core) {
  if (!opts.llm.length) return;
  const r = spawnSync(NODE, [path.join(HERE, 'bench_llm.mjs'), '--models', opts.llm.join(',')], {
    stdio: 'inherit',
    env: { ...process.env, QL_WEB_ROOT: core.webRoot },
  });
  if (r.status !== 0) die('the commands benchmark (bench_llm.mjs) failed');
}

main().catch((e) => die(e && e.stack ? e.stack : String(e)));
