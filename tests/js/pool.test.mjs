// analyze()'s pool of workers (web/src/pool.js): Node worker_threads and browser Web
// Workers give the same JSON as one worker, bit for bit; errors, selection, progress and
// cancel keep working. Each pooled run must say (progress `workers`) that it used workers,
// so an equality cannot hold because the pool silently fell back to one thread, and each
// layer computed in parts (progress `parts`) that it was, so that a split is never assumed.
import assert from 'node:assert/strict';
import fs from 'node:fs';
import os from 'node:os';
import path from 'node:path';
import { test } from 'node:test';
import { analyze, toJSON } from '../../web/src/index.js';
import { fetchedModelFiles, generatedModelFiles, root, run, runCli, sharedModelFiles } from './helpers.mjs';
import { artifacts, launch, noChromium, serve } from './chromium.mjs';
import { splitModel } from './pb.mjs';

const models = [...fetchedModelFiles(), ...sharedModelFiles(), ...generatedModelFiles()];

// `parts`: layer name -> the parts it was computed in, for each layer finished in parts;
// `tasks`: what the pool dealt (a layer whole is one task, a layer in k parts k).
async function pooled(source, options) {
  let workers = 0;
  const counts = []; // progress 'analyze': [done, total] as reported
  const parts = {};
  const result = await analyze(source, {
    ...options,
    onProgress: (p) => {
      if (p.workers) workers = p.workers;
      if (p.phase === 'analyze' && !p.reading) counts.push([p.done, p.total]);
      if (p.parts && !p.reading) parts[p.layer] = p.parts;
    },
  });
  const layers = result.layers.length;
  const tasks = layers + Object.values(parts).reduce((a, k) => a + k - 1, 0);
  return { json: JSON.stringify(toJSON(result)), workers, layers, parts, tasks, result, counts };
}

// Progress counts layers done: rising, within 1..total, ending at total (the layers not
// chosen count as done, as analysing in one thread counts by position).
function countsRise(counts, what) {
  assert.ok(counts.length > 0, `${what}: no progress`);
  let last = 0;
  for (const [done, total] of counts) {
    assert.ok(done > last && done <= total, `${what}: progress ${done} of ${total} after ${last}`);
    last = done;
  }
  assert.equal(last, counts.at(-1)[1], `${what}: progress ends at ${last} of ${counts.at(-1)[1]}`);
}

test(
  'workers 2 and 3 give the JSON of one worker, bit for bit, on every real and generated model',
  { timeout: 900000 },
  async () => {
    assert.ok(models.length >= 3, 'no models found');
    for (const file of models) {
      const one = JSON.stringify(toJSON(await analyze(file, { workers: 1 })));
      for (const n of [2, 3]) {
        const p = await pooled(file, { workers: n });
        if (p.tasks >= 2) assert.equal(p.workers, Math.min(n, p.tasks), `${path.basename(file)}: the pool did not run`);
        assert.ok(p.json === one, `${path.basename(file)}: workers ${n} differ from one worker`);
        if (p.layers) countsRise(p.counts, `${path.basename(file)}, workers ${n}`);
      }
    }
  },
);

// The split test models (pb.mjs splitModel), written as files: the pool streams the large layer.
function splitFiles() {
  const dir = fs.mkdtempSync(path.join(os.tmpdir(), 'ql-split-'));
  const files = { dir, plain: path.join(dir, 'split.onnx'), nan: path.join(dir, 'split_nan.onnx') };
  fs.writeFileSync(files.plain, splitModel());
  fs.writeFileSync(files.nan, splitModel({ nan: true }));
  return files;
}

test('a layer larger than an equal share of the bytes is computed in parts, one per worker, bit for bit', async () => {
  const files = splitFiles();
  try {
    const one = JSON.stringify(toJSON(await analyze(files.plain, { workers: 1 })));
    for (const n of [2, 3]) {
      const p = await pooled(files.plain, { workers: n });
      assert.deepEqual(p.parts, { big_conv: n }, `workers ${n}: big_conv was not split`);
      assert.equal(p.workers, n);
      assert.ok(p.json === one, `workers ${n} differ from one worker`);
    }
    // Alone, the layer still goes to workers: one layer is as many tasks as parts.
    const only = JSON.stringify(toJSON(await analyze(files.plain, { workers: 1, layers: /^big_conv$/ })));
    const p = await pooled(files.plain, { workers: 3, layers: /^big_conv$/ });
    assert.deepEqual([p.parts, p.workers, p.layers], [{ big_conv: 3 }, 3, 1]);
    assert.ok(p.json === only, 'big_conv alone: workers 3 differ');
    // A real case: large_weights' Gemm (6.0 of 17 MB) is split by 3 workers, not by 2 (a share is 8.5 MB).
    const large = generatedModelFiles().find((f) => f.endsWith('large_weights.onnx'));
    if (large) {
      assert.deepEqual((await pooled(large, { workers: 3 })).parts, { big_gemm: 3 });
      assert.deepEqual((await pooled(large, { workers: 2 })).parts, {});
    }
  } finally {
    fs.rmSync(files.dir, { recursive: true });
  }
});

test('a NaN in a layer in parts: every part gives the layer the error one worker gives', async () => {
  const files = splitFiles();
  try {
    const base = await analyze(files.nan, { workers: 1 });
    const error = base.layers.find((l) => l.name === 'big_conv').error;
    assert.match(error.message, /1 of 13968 weights are NaN or infinite/);
    const one = JSON.stringify(toJSON(base));
    for (const n of [2, 3]) {
      const p = await pooled(files.nan, { workers: n });
      assert.deepEqual(p.parts, { big_conv: n });
      assert.deepEqual(p.result.layers.find((l) => l.name === 'big_conv').error, error);
      assert.ok(p.json === one, `workers ${n} differ from one worker`);
    }
  } finally {
    fs.rmSync(files.dir, { recursive: true });
  }
});

test('bytes in memory, a RegExp and a function selecting layers, with workers', { timeout: 300000 }, async () => {
  const file = fetchedModelFiles().find((f) => f.includes('mlsd')) || models[0];
  const bytes = new Uint8Array(fs.readFileSync(file));
  const one = JSON.stringify(toJSON(await analyze(bytes, { workers: 1 })));
  const p = await pooled(bytes, { workers: 2 });
  assert.equal(p.workers, 2);
  assert.ok(p.json === one, 'bytes: workers 2 differ');
  for (const layers of [/_2|_5/, (l) => l.op === 'Conv' && l.index % 3 === 0]) {
    const base = JSON.stringify(toJSON(await analyze(file, { workers: 1, layers })));
    const q = await pooled(file, { workers: 3, layers });
    assert.ok(q.layers >= 2);
    assert.equal(q.workers, 3);
    assert.ok(q.json === base, `selection ${layers}: workers 3 differ`);
    countsRise(q.counts, `selection ${layers}`);
  }
});

test('a bad workers option is an INVALID_ARGUMENT; a model error is the same with workers', async () => {
  const file = models[0];
  for (const workers of [0, -1, 1.5, 65, '2', NaN]) {
    await assert.rejects(analyze(file, { workers }), (e) => e.code === 'INVALID_ARGUMENT' && /workers/.test(e.message));
  }
  // External data missing: the workers fail as one thread does, with its code and message.
  const ext = generatedModelFiles().find((f) => f.endsWith('external_data.onnx'));
  if (!ext) return;
  const dir = fs.mkdtempSync(path.join(os.tmpdir(), 'ql-pool-'));
  const lone = path.join(dir, 'external_data.onnx');
  fs.copyFileSync(ext, lone);
  const errorOf = (workers) =>
    analyze(lone, { workers }).then(
      () => null,
      (e) => ({ code: e.code, message: e.message }),
    );
  const one = await errorOf(1);
  assert.equal(one.code, 'MISSING_EXTERNAL_DATA');
  assert.deepEqual(await errorOf(2), one);
  fs.rmSync(dir, { recursive: true });
});

// In a process of its own: a Node worker left running would keep that process alive, so
// the process ending (rather than being killed at the generous limit) shows they all ended.
// From a module file: a script given with --input-type=module -e passes that flag on to the
// workers, which then cannot load theirs (the pool falls back to one thread).
async function runModule(script) {
  const dir = fs.mkdtempSync(path.join(os.tmpdir(), 'ql-pool-run-'));
  const file = path.join(dir, 'run.mjs');
  fs.writeFileSync(file, script);
  try {
    return await run(process.execPath, [file], { timeout: 120000 });
  } finally {
    fs.rmSync(dir, { recursive: true });
  }
}

// An LLM-shaped model of 64 MB or more, its weights in the file (what a pool takes by default).
async function makeBig(file) {
  const made = await run('/usr/bin/python3', [
    path.join(root, 'tools/bench/make_llm.py'),
    file,
    ...['--preset', 'llm-small', '--blocks', '3', '--d', '1024', '--ff', '2752', '--inline'],
  ]);
  assert.equal(made.code, 0, made.stderr);
  assert.ok(fs.statSync(file).size >= 64 << 20);
}

// Workers start beside the reading of a large model's structure (pool.js earlyWorkers): the
// pool takes them, and the ones it does not take (a model that fails to open, a choice of
// one small layer analysed in this thread) end: the process ends by itself.
test('workers started early: taken by the pool, or ended when it is not used', { timeout: 300000 }, async () => {
  const dir = fs.mkdtempSync(path.join(os.tmpdir(), 'ql-early-'));
  try {
    const file = path.join(dir, 'big.onnx');
    await makeBig(file);
    const size = fs.statSync(file).size;
    const cut = path.join(dir, 'cut.onnx'); // the same bytes, cut short in the weights
    fs.writeFileSync(cut, fs.readFileSync(file).subarray(0, size - 1000));
    const script = `
import { analyze, toJSON } from ${JSON.stringify(path.join(root, 'web/src/index.js'))};
const out = {};
let workers = 0;
const pooled = await analyze(${JSON.stringify(file)}, { onProgress: (p) => (workers = p.workers || workers) });
out.workers = workers;
out.equal = JSON.stringify(toJSON(pooled)) === JSON.stringify(toJSON(await analyze(${JSON.stringify(file)}, { workers: 1 })));
const errorOf = (options) => analyze(${JSON.stringify(cut)}, options).then(() => null, (e) => e.code + ': ' + e.message);
out.cut = await errorOf({});
out.cutOne = await errorOf({ workers: 1 });
let n = 0;
workers = 0;
const one = await analyze(${JSON.stringify(file)}, { layers: () => n++ === 0, onProgress: (p) => (workers = p.workers || workers) });
out.oneLayer = one.layers.length;
out.oneWorkers = workers;
console.log(JSON.stringify(out));
`;
    const r = await runModule(script);
    assert.equal(r.code, 0, `the process did not end by itself (workers left running?): ${r.stderr}`);
    const out = JSON.parse(r.stdout);
    const cores = os.availableParallelism ? os.availableParallelism() : os.cpus().length;
    assert.equal(out.workers, cores > 1 ? Math.min(cores, 8) : 0, 'the pool took the workers started early');
    assert.ok(out.equal, 'the pool differs from workers 1');
    assert.ok(out.cut, 'the model cut short opened');
    assert.equal(out.cut, out.cutOne);
    assert.equal(out.oneLayer, 1);
    assert.equal(out.oneWorkers, 0, 'one small layer is analysed in this thread');
  } finally {
    fs.rmSync(dir, { recursive: true, force: true });
  }
});

test('cancel: an abort during a pooled analysis rejects ABORTED and ends the workers', { timeout: 180000 }, async () => {
  const file = fetchedModelFiles().find((f) => f.includes('mlsd')) || models[0];
  const script = `
import { analyze } from ${JSON.stringify(path.join(root, 'web/src/index.js'))};
const controller = new AbortController();
let analysed = 0;
let workers = 0;
let code = 'none';
try {
  await analyze(${JSON.stringify(file)}, { workers: 2, signal: controller.signal, onProgress: (p) => {
    workers = p.workers || workers;
    if (p.phase === 'analyze' && ++analysed === 2) controller.abort();
  } });
} catch (e) { code = e.code; }
console.log(JSON.stringify({ code, analysed, workers }));
`;
  const r = await runModule(script);
  assert.equal(r.code, 0, `the process did not end by itself (workers left running?): ${r.stderr}`);
  assert.deepEqual(JSON.parse(r.stdout), { code: 'ABORTED', analysed: 2, workers: 2 }); // no layer reported after the abort
});

// The abort lands while the parts run their pass 2 (the progress event of their barrier).
test('cancel in the middle of a layer in parts rejects ABORTED and ends the workers', { timeout: 180000 }, async () => {
  const files = splitFiles();
  const script = `
import { analyze } from ${JSON.stringify(path.join(root, 'web/src/index.js'))};
const controller = new AbortController();
let after = 0;
let code = 'none';
let parts = 0;
try {
  await analyze(${JSON.stringify(files.plain)}, { workers: 2, signal: controller.signal, onProgress: (p) => {
    if (controller.signal.aborted) after++;
    else if (p.reading && p.parts) { parts = p.parts; controller.abort(); }
  } });
} catch (e) { code = e.code; }
console.log(JSON.stringify({ code, parts, after }));
`;
  try {
    const r = await runModule(script);
    assert.equal(r.code, 0, `the process did not end by itself (workers left running?): ${r.stderr}`);
    assert.deepEqual(JSON.parse(r.stdout), { code: 'ABORTED', parts: 2, after: 0 });
  } finally {
    fs.rmSync(files.dir, { recursive: true });
  }
});

// The calling thread, which has the model open, is one of the `workers`: workers N starts
// N - 1 threads; the first layer in layer order is the calling thread's, finished first.
test(
  'workers N where the caller has the model open: N - 1 threads start, the caller takes the first layer',
  { timeout: 180000 },
  async () => {
    const file = fetchedModelFiles().find((f) => f.includes('mlsd')) || models[0];
    const script = `
import { createRequire, syncBuiltinESMExports } from 'node:module';
const require = createRequire(import.meta.url);
const threads = require('node:worker_threads');
const Real = threads.Worker;
let started = 0;
threads.Worker = class extends Real { constructor(...a) { super(...a); started++; } };
syncBuiltinESMExports();
const { analyze, toJSON } = await import(${JSON.stringify(path.join(root, 'web/src/index.js'))});
const one = JSON.stringify(toJSON(await analyze(${JSON.stringify(file)}, { workers: 1 })));
const out = {};
for (const n of [2, 3]) {
  started = 0;
  let seen = 0;
  const first = [];
  const r = await analyze(${JSON.stringify(file)}, { workers: n, onProgress: (p) => (seen = p.workers || seen), onLayer: (l) => first.push(l.index) });
  out[n] = { started, seen, first: first[0], lowest: Math.min(...r.layers.map((l) => l.index)), equal: JSON.stringify(toJSON(r)) === one };
}
console.log(JSON.stringify(out));
`;
    const r = await runModule(script);
    assert.equal(r.code, 0, r.stderr);
    const out = JSON.parse(r.stdout);
    for (const n of [2, 3]) {
      assert.equal(out[n].started, n - 1, `workers ${n}: threads started`);
      assert.equal(out[n].seen, n, `workers ${n}: progress`);
      assert.equal(out[n].first, out[n].lowest, `workers ${n}: the first layer finished`);
      assert.ok(out[n].equal, `workers ${n} differ from workers 1`);
    }
  },
);

// A caller's signal may serve many calls: a pooled analysis leaves no listener on it (the
// calling thread's tasks listen through a signal of their own, unlinked at the end).
test('a signal given to pooled analyses keeps no listener after each', { timeout: 120000 }, async () => {
  const { getEventListeners } = await import('node:events');
  const file = fetchedModelFiles().find((f) => f.includes('mlsd')) || models[0];
  const controller = new AbortController();
  for (let k = 0; k < 3; k++) {
    const p = await pooled(file, { workers: 2, signal: controller.signal });
    assert.equal(p.workers, 2, 'the pool did not run');
    assert.equal(getEventListeners(controller.signal, 'abort').length, 0, `listeners left after call ${k + 1}`);
  }
});

// Pool workers are given the module their realm compiled; configureCore({ wasmModule }) is
// the public way in (and refuses anything else).
test(
  'configureCore({ wasmModule }): a compiled module loads the core; anything else is an INVALID_ARGUMENT',
  { timeout: 120000 },
  async () => {
    const file = fetchedModelFiles().find((f) => f.includes('mlsd')) || models[0];
    const script = `
import fs from 'node:fs';
import { configureCore, coreConfig, loadCore } from ${JSON.stringify(path.join(root, 'web/src/core.js'))};
import { analyze, toJSON } from ${JSON.stringify(path.join(root, 'web/src/index.js'))};
let refused = 'none';
try { configureCore({ wasmModule: new Uint8Array(8) }); } catch (e) { refused = e.code; }
const module = await WebAssembly.compile(fs.readFileSync(${JSON.stringify(path.join(root, 'web/dist/quantlens_core.wasm'))}));
configureCore({ wasmModule: module });
await loadCore();
const json = JSON.stringify(toJSON(await analyze(${JSON.stringify(file)}, { workers: 1 })));
console.log(JSON.stringify({ refused, same: coreConfig().wasmModule === module, json }));
`;
    const r = await runModule(script);
    assert.equal(r.code, 0, r.stderr);
    const out = JSON.parse(r.stdout);
    assert.equal(out.refused, 'INVALID_ARGUMENT');
    assert.ok(out.same, 'coreConfig() does not hand the workers the module given');
    assert.equal(out.json, JSON.stringify(toJSON(await analyze(file, { workers: 1 }))));
  },
);

test('the CLI: --workers 2 writes the JSON of --workers 1; --workers 0 is a usage error', { timeout: 120000 }, async () => {
  const file = fetchedModelFiles()[0] || models[0];
  const one = await runCli(['analyze', file, '--json', '--workers', '1']);
  const two = await runCli(['analyze', file, '--json', '--workers', '2']);
  assert.equal(one.code, 0, one.stderr);
  assert.equal(two.code, 0, two.stderr);
  assert.ok(one.stdout === two.stdout);
  const bad = await runCli(['analyze', file, '--workers', '0']);
  assert.equal(bad.code, 2);
  assert.match(bad.stderr, /workers/);
});

// Runs `body(page, base)` in a blank page served from the project root (Chromium), and
// requires that the page raised no error.
async function inPage(body) {
  const server = await serve(root);
  let browser;
  try {
    browser = await launch();
    const page = await browser.newPage();
    const errors = [];
    page.on('pageerror', (e) => errors.push(String(e)));
    const base = `http://127.0.0.1:${server.address().port}`;
    await page.goto(`${base}/tests/js/fixtures/blank.html`);
    await body(page, base);
    assert.deepEqual(errors, []);
  } finally {
    if (browser) await browser.close();
    server.close();
  }
}

const browserModel = fetchedModelFiles().find((f) => f.includes('mlsd'));
test(
  'in a page: analyze() of a Blob and of bytes with workers 2 equals workers 1',
  { skip: noChromium || (!browserModel && 'no fetched model'), timeout: 120000 },
  async () => {
    await inPage(async (page, base) => {
      const out = await page.evaluate(
        async (url) => {
          const { analyze, toJSON } = await import('/web/src/index.js');
          const blob = await (await fetch(url)).blob();
          const bytes = new Uint8Array(await blob.arrayBuffer());
          const run = async (source, workers) => {
            let seen = 0;
            const r = await analyze(source, { workers, onProgress: (p) => (seen = p.workers || seen) });
            return { json: JSON.stringify(toJSON(r)), seen };
          };
          const one = await run(bytes, 1);
          const blob2 = await run(blob, 2);
          const bytes2 = await run(bytes, 2);
          return {
            blobEqual: blob2.json === one.json,
            bytesEqual: bytes2.json === one.json,
            seen: [blob2.seen, bytes2.seen],
            isolated: globalThis.crossOriginIsolated === true,
          };
        },
        `${base}/${path.relative(root, browserModel)}`,
      );
      assert.deepEqual(out.seen, [2, 2], 'the pool did not run in the page');
      assert.equal(out.isolated, false); // so the bytes went to the workers as a Blob, not shared memory
      assert.ok(out.blobEqual, 'Blob: workers 2 differ from workers 1');
      assert.ok(out.bytesEqual, 'bytes: workers 2 differ from workers 1');
    });
  },
);

// Workers that cannot start (a missing script): the page thread, which has the bytes open,
// analyses every layer itself and says so (workers 1).
test(
  'in a page: bytes with workers 2 whose worker cannot start are analysed by the page thread alone, as workers 1',
  { skip: noChromium || (!browserModel && 'no fetched model'), timeout: 120000 },
  async () => {
    await inPage(async (page, base) => {
      const out = await page.evaluate(
        async (url) => {
          const { analyze, configurePool, toJSON } = await import('/web/src/index.js');
          const bytes = new Uint8Array(await (await fetch(url)).arrayBuffer());
          const one = JSON.stringify(toJSON(await analyze(bytes, { workers: 1 })));
          configurePool({ workerUrl: '/no-such-worker.js' });
          let seen = 0;
          const two = JSON.stringify(toJSON(await analyze(bytes, { workers: 2, onProgress: (p) => (seen = p.workers || seen) })));
          configurePool(null);
          return { equal: two === one, seen };
        },
        `${base}/${path.relative(root, browserModel)}`,
      );
      assert.equal(out.seen, 1, 'progress counts a worker that never started');
      assert.ok(out.equal, 'workers 2 (none started) differ from workers 1');
    });
  },
);

// The default in a page: a Blob of 64 MB or more, which the page cannot read piecewise, goes
// to one worker per core that read its structure themselves. (It once started no worker and
// never settled.)
test(
  'in a page: a Blob of 64 MB or more goes to a pool by default, and equals workers 1',
  { skip: noChromium, timeout: 300000 },
  async () => {
    fs.mkdirSync(artifacts, { recursive: true });
    const file = path.join(artifacts, 'pool-default.onnx');
    await makeBig(file);
    try {
      await inPage(async (page, base) => {
        const out = await page.evaluate(
          async (url) => {
            const { analyze, toJSON } = await import('/web/src/index.js');
            const blob = await (await fetch(url)).blob();
            let seen = 0;
            const pooledRun = await analyze(blob, { onProgress: (p) => (seen = p.workers || seen) });
            const one = await analyze(blob, { workers: 1 });
            return {
              equal: JSON.stringify(toJSON(pooledRun)) === JSON.stringify(toJSON(one)),
              seen,
              cores: navigator.hardwareConcurrency,
            };
          },
          `${base}/${path.relative(root, file)}`,
        );
        assert.equal(out.seen, out.cores > 1 ? Math.min(out.cores, 8) : 0, 'workers by default');
        assert.ok(out.equal, 'the pool differs from workers 1');
      });
    } finally {
      fs.rmSync(file, { force: true });
      fs.rmSync(`${file}.json`, { force: true });
    }
  },
);

test(
  'in a page: a layer in parts, from a Blob with workers 2, equals workers 1',
  { skip: noChromium, timeout: 120000 },
  async () => {
    fs.mkdirSync(artifacts, { recursive: true });
    const file = path.join(artifacts, 'pool-split.onnx');
    fs.writeFileSync(file, splitModel());
    try {
      await inPage(async (page, base) => {
        const out = await page.evaluate(
          async (url) => {
            const { analyze, toJSON } = await import('/web/src/index.js');
            const blob = await (await fetch(url)).blob();
            const run = async (source, workers) => {
              let seen = 0;
              let parts = 0;
              const r = await analyze(source, {
                workers,
                onProgress: (p) => {
                  seen = p.workers || seen;
                  if (p.parts && !p.reading) parts = p.parts;
                },
              });
              return { json: JSON.stringify(toJSON(r)), seen, parts };
            };
            const one = await run(new Uint8Array(await blob.arrayBuffer()), 1);
            const two = await run(blob, 2);
            return { equal: two.json === one.json, seen: two.seen, parts: two.parts };
          },
          `${base}/${path.relative(root, file)}`,
        );
        assert.deepEqual([out.seen, out.parts], [2, 2], 'the layer was not split in the page');
        assert.ok(out.equal, 'workers 2 differ from workers 1');
      });
    } finally {
      fs.rmSync(file);
    }
  },
);
