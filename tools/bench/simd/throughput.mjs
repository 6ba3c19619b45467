// Statistics throughput of one or more builds of the core, side by side in one process:
//   node tools/bench/simd/throughput.mjs --core NAME=WEB_ROOT [--core ...] [--runs N] MODEL.onnx...
// For each model, each core runs analyze(path) N times, the cores taking turns (A B A B ...);
// the time inside the core's statistics calls (Session analyze/begin/feed/endPass/finish)
// is summed per run. Prints, per model and core, the minimum and median of that time and
// M parameters/s at the minimum. A measurement, not a test: it judges nothing.
import path from 'node:path';
import { performance } from 'node:perf_hooks';
import { pathToFileURL } from 'node:url';

const cores = [];
const models = [];
let runs = 5;
const argv = process.argv.slice(2);
for (let i = 0; i < argv.length; i++) {
  if (argv[i] === '--core') {
    const [name, root] = argv[++i].split('=');
    cores.push({ name, root: path.resolve(root) });
  } else if (argv[i] === '--runs') runs = Number(argv[++i]);
  else models.push(argv[i]);
}
if (!cores.length || !models.length) {
  console.error('usage: throughput.mjs --core NAME=WEB_ROOT [--core ...] [--runs N] MODEL.onnx...');
  process.exit(2);
}

let coreMs = 0;
for (const c of cores) {
  const url = pathToFileURL(`${c.root}/`);
  const { loadCore } = await import(new URL('src/core.js', url));
  c.analyze = (await import(new URL('src/analyze.js', url))).analyze;
  const core = await loadCore();
  const proto = core.Session.prototype;
  for (const name of ['analyze', 'begin', 'feed', 'endPass', 'finish']) {
    const f = proto[name];
    proto[name] = function timed(...args) {
      const b = performance.now();
      try {
        return f.apply(this, args);
      } finally {
        coreMs += performance.now() - b;
      }
    };
  }
}

const median = (v) => [...v].sort((a, b) => a - b)[Math.floor(v.length / 2)];
for (const model of models) {
  const times = cores.map(() => []);
  let params = 0;
  for (let r = 0; r <= runs; r++) {
    for (let k = 0; k < cores.length; k++) {
      coreMs = 0;
      const res = await cores[k].analyze(model);
      params = res.layers.reduce((s, l) => s + (l.error ? 0 : l.shape.reduce((a, b) => a * b, 1)), 0);
      if (r > 0) times[k].push(coreMs); // run 0 is a warm-up
    }
  }
  for (let k = 0; k < cores.length; k++) {
    const min = Math.min(...times[k]);
    console.log(
      `${path.basename(model)}\t${cores[k].name}\tcore min ${min.toFixed(0)} ms\tmedian ${median(times[k]).toFixed(0)} ms\t` +
        `${(params / 1e3 / min).toFixed(0)} M params/s`,
    );
  }
}
