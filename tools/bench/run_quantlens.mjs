// One measurement of QuantLens (WASM under Node), in its own process:
//   node tools/bench/run_quantlens.mjs MODEL.onnx [--again] -> timings of analyze(path)
//   node tools/bench/run_quantlens.mjs --baseline   -> RSS of a process that only loaded the module
// Prints one JSON line. The module is loaded (and the .wasm compiled) before the
// clock starts, so `total` is analyze(path): read into the heap + parse + every layer.
// Phases come from onProgress timestamps (end of the last 'read' event) and from
// wrapping the embind Session (constructor = parse + layer discovery; analyze() =
// the core's statistics for one layer); the rest of the 'after read' time is the JS
// side (layer info, copying result views out of the heap, event-loop yields, ranking);
// the yields (setTimeout 0, every ~30 ms) are timed on their own too.
import { performance } from 'node:perf_hooks';
import { pathToFileURL } from 'node:url';

// Which copy of web/ to measure: QL_WEB_ROOT (bench.mjs points it at a snapshot),
// else the project's own web/.
const webRoot = process.env.QL_WEB_ROOT ? pathToFileURL(`${process.env.QL_WEB_ROOT}/`) : new URL('../../web/', import.meta.url);
const { loadCore } = await import(new URL('src/core.js', webRoot));
const { analyze } = await import(new URL('src/analyze.js', webRoot));

const now = () => performance.now();
const rssKB = () => process.resourceUsage().maxRSS; // KB on Linux

const t0 = now();
const core = await loadCore();
const loadMs = now() - t0;
const arg = process.argv[2];
if (!arg || arg === '--baseline') {
  console.log(JSON.stringify({ baseline: true, loadMs, maxRssKB: rssKB() }));
  process.exit(0);
}

let parseMs = 0;
let coreMs = 0;
// Streaming sessions: fromReader() skims the structure and parses it ("parse"; it
// includes reading the structure); begin/feed/endPass/finish and analyze() are the
// core's statistics ("core"); reading the weights' pieces falls in the JS side.
const proto = core.Session.prototype;
for (const name of ['analyze', 'begin', 'feed', 'endPass', 'finish']) {
  const f = proto[name];
  proto[name] = function timed(...args) {
    const b = now();
    try {
      return f.apply(this, args);
    } finally {
      coreMs += now() - b;
    }
  };
  // An overloaded method (endPass(pass) and endPass(pass, whole)) finds its overloads on
  // the prototype's function when called.
  if (f.overloadTable) proto[name].overloadTable = f.overloadTable;
}
const fromReader = core.Session.fromReader;
core.Session.fromReader = (...args) => {
  const a = now();
  try {
    return fromReader(...args);
  } finally {
    parseMs += now() - a;
  }
};

// analyze() yields to the event loop only when an AbortSignal is passed (not here);
// any setTimeout waits are still timed.
let yieldMs = 0;
let yields = 0;
let firstYieldMs = 0;
const realSetTimeout = globalThis.setTimeout;
globalThis.setTimeout = (fn, ms, ...args) => {
  const t = now();
  return realSetTimeout(() => {
    const w = now() - t;
    if (!yields) firstYieldMs = w;
    yields++;
    yieldMs += w;
    fn(...args);
  }, ms);
};

async function measure() {
  parseMs = 0;
  coreMs = 0;
  yieldMs = 0;
  yields = 0;
  firstYieldMs = 0;
  let readEnd = 0;
  const start = now();
  const result = await analyze(arg, {
    onProgress: (p) => {
      if (p.phase === 'read') readEnd = now();
    },
  });
  const end = now();
  return {
    result,
    t: {
      totalMs: end - start,
      readMs: readEnd - start,
      afterReadMs: end - readEnd,
      parseMs,
      coreMs,
      jsMs: end - readEnd - parseMs - coreMs,
      yieldMs,
      yields,
      firstYieldMs,
    },
  };
}

const first = await measure();
const maxRssKB = rssKB(); // before anything else can allocate
// --again: analyse once more in this process; the heap then reuses memory the first
// run already touched, so this shows the steady-state cost without first-touch page
// faults (reported separately as `again`, never mixed into the main figures).
const again = process.argv.includes('--again') ? (await measure()).t : null;

let weights = 0;
let absMax = 0;
const sqnr = {};
for (const l of first.result.layers) {
  if (l.error) throw new Error(`layer ${l.name}: ${l.error.message}`);
  weights += l.shape.reduce((a, b) => a * b, 1);
  absMax = Math.max(absMax, l.tensor.absMax);
  sqnr[l.name] = l.sqnr.int8PerTensor;
}
console.log(
  JSON.stringify({
    loadMs,
    ...first.t,
    maxRssKB,
    heapBytes: core.HEAPU8.length,
    layers: first.result.layers.length,
    weights,
    absMax,
    again,
    sqnr,
  }),
);
