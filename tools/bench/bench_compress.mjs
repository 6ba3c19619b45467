// Compressibility speed (issue 15): the curves of every layer of a model (weight SVD and
// spatial SVD, singular values only) in QuantLens (WASM under Node) against numpy's LAPACK
// SVD (numpy.linalg.svd(compute_uv=False), tools/reference/compress_ref.py --time) on the
// same matrices, in the same run.
//   node tools/bench/bench_compress.mjs MODEL.onnx [--runs N]
// QuantLens: the median over N runs (default 3, after a discarded warm-up) of the time
// spent in the core's curves() calls (reshape + Gram matrix + eigenvalues per layer; the
// model already in the heap), in one thread (workers: 1). Also end to end (compressibility()
// whole: reading, curves, plan): in one thread, and in the pool of workers it chooses
// (pool.js: one per core for a model of 16 MB or more; --workers N to set). numpy: the
// median of 3 runs of the SVDs alone (the matrices built beforehand). Also checks that the
// two agree (max |dB| difference over every rank whose tail is above 1e-9 of the total).
import { execFileSync } from 'node:child_process';
import path from 'node:path';
import { performance } from 'node:perf_hooks';
import { fileURLToPath } from 'node:url';
import { compressibility } from '../../web/src/index.js';
import { loadCore } from '../../web/src/core.js';

const root = path.resolve(path.dirname(fileURLToPath(import.meta.url)), '../..');
const model = process.argv[2];
const runsArg = process.argv.indexOf('--runs');
const runs = runsArg > 0 ? Number(process.argv[runsArg + 1]) : 3;
if (!model) {
  console.error('usage: node tools/bench/bench_compress.mjs MODEL.onnx [--runs N]');
  process.exit(2);
}

const core = await loadCore();
let coreMs = 0;
const proto = core.Compression.prototype;
const curves = proto.curves;
proto.curves = function timed(...args) {
  const t = performance.now();
  try {
    return curves.apply(this, args);
  } finally {
    coreMs += performance.now() - t;
  }
};

const workersArg = process.argv.indexOf('--workers');
const pooledWorkers = workersArg > 0 ? Number(process.argv[workersArg + 1]) : undefined;
const times = [];
const oneWall = [];
const poolWall = [];
let result = null;
for (let i = 0; i <= runs; i++) {
  coreMs = 0;
  let t = performance.now();
  result = await compressibility(model, { full: true, ratio: 1, workers: 1 });
  const wall = performance.now() - t;
  if (i > 0) (times.push(coreMs), oneWall.push(wall));
  t = performance.now();
  await compressibility(model, { full: true, ratio: 1, workers: pooledWorkers });
  if (i > 0) poolWall.push(performance.now() - t);
}
const median = (xs) => xs.slice().sort((a, b) => a - b)[Math.floor(xs.length / 2)];

const ref = JSON.parse(
  execFileSync('/usr/bin/python3', [path.join(root, 'tools', 'reference', 'compress_ref.py'), model, '--time'], {
    maxBuffer: 1 << 30,
    encoding: 'utf8',
  }),
);
let worst = 0;
const byName = new Map(result.layers.map((l) => [l.name, l]));
for (const r of ref.layers) {
  const c = byName.get(r.name)?.full.find((k) => !k.refused);
  if (!c) continue;
  const sq = r.s.map((s) => s * s);
  const total = sq.reduce((a, b) => a + b, 0);
  for (let j = 0; j < c.keep.length - 1; j++) {
    const tail = sq.slice(c.keep[j]).reduce((a, b) => a + b, 0);
    if (tail > 1e-9 * total) worst = Math.max(worst, Math.abs(c.sqnrDb[j] - 10 * Math.log10(total / tail)));
  }
}
const ql = median(times) / 1000;
const out = {
  model: path.basename(model),
  layers: ref.layers.length,
  quantlensSeconds: +ql.toFixed(3),
  quantlensRuns: times.map((t) => +(t / 1000).toFixed(3)),
  oneThreadWallSeconds: +(median(oneWall) / 1000).toFixed(3),
  pooledWallSeconds: +(median(poolWall) / 1000).toFixed(3),
  pooledWorkers: pooledWorkers ?? 'auto',
  numpySeconds: +ref.seconds.toFixed(3),
  ratio: +(ql / ref.seconds).toFixed(2),
  pooledRatio: +(median(poolWall) / 1000 / ref.seconds).toFixed(2),
  maxDbDifference: worst,
};
console.log(JSON.stringify(out));
