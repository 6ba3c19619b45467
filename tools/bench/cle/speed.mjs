#!/usr/bin/env node
// How long equalization takes in WebAssembly (under Node), next to the plain Python
// reference (tools/reference/cle_ref.py: python3-onnx + numpy, BN folding, pairs, 20
// sweeps) on the same files in the same run. Two QuantLens times:
//  - the WASM core alone (the Equalization binding on bytes already in the heap): parse,
//    BN folding, sequences, sweeps, before/after statistics of every changed layer, and
//    writing the new model into the heap;
//  - equalize() end to end: also the bytes into the heap, the report into JS objects,
//    and the new model copied out of the heap into a fresh Uint8Array.
// The reference's time is its own (load, fold, sweeps, save), Python start-up excluded.
//
//   node tools/bench/cle/speed.mjs [--runs 7]
import { spawnSync } from 'node:child_process';
import fs from 'node:fs';
import os from 'node:os';
import path from 'node:path';
import { fileURLToPath } from 'node:url';
import { loadCore } from '../../../web/src/core.js';
import { equalize } from '../../../web/src/index.js';

const root = path.resolve(path.dirname(fileURLToPath(import.meta.url)), '../../..');
const runs = Number(process.argv[process.argv.indexOf('--runs') + 1] || 7) || 7;
const MODELS = [
  ['mobilenet_v2 (torchvision, BN folded by the exporter)', path.join(root, 'tools/bench/models/mobilenet_v2.onnx')],
  ['deeplabv3_mobilenetv2', path.resolve(root, '../shared/models/tf/deeplabv3_mobilenetv2_tfhub.onnx')],
  [
    'bodypix 1.8.4 (MobileNetV1)',
    path.resolve(root, '../shared/models/tf/bodypix_mobilenet050_stride16_240x320_tf2onnx1.8.4.onnx'),
  ],
  [
    'ultraface RFB-320 (35 BN to fold)',
    path.resolve(root, '../shared/models/pytorch/ultraface_version-RFB-320_without_postprocessing.onnx'),
  ],
  ['mlsd tiny', path.join(root, 'models/fetched/mlsd_320x320_tiny.onnx')],
];
const median = (xs) => [...xs].sort((a, b) => a - b)[xs.length >> 1];
const tmp = fs.mkdtempSync(path.join(os.tmpdir(), 'ql-cle-speed-'));
const rows = [];
for (const [name, file] of MODELS) {
  if (!fs.existsSync(file)) {
    console.error(`skip ${name}: ${file} absent`);
    continue;
  }
  const bytes = fs.readFileSync(file);
  let r = await equalize(bytes); // warm-up (compiles the module, grows the heap)
  const times = [];
  for (let i = 0; i < runs; i++) {
    const t0 = performance.now();
    r = await equalize(bytes);
    times.push(performance.now() - t0);
  }
  const core = await loadCore();
  const ptr = core._malloc(bytes.length);
  core.HEAPU8.set(bytes, ptr);
  const coreTimes = [];
  for (let i = 0; i <= runs; i++) {
    const t0 = performance.now();
    const eq = new core.Equalization(ptr, bytes.length, {});
    const t = performance.now() - t0;
    if (eq.error()) throw new Error(eq.error().message);
    eq.delete();
    if (i > 0) coreTimes.push(t);
  }
  core._free(ptr);
  const ref = [];
  for (let i = 0; i < 3; i++) {
    const p = spawnSync('/usr/bin/python3', [path.join(root, 'tools/reference/cle_ref.py'), file, path.join(tmp, 'ref.onnx')], {
      encoding: 'utf8',
    });
    const m = /; ([\d.]+)s\)/.exec(p.stderr);
    if (m) ref.push(Number(m[1]) * 1000);
  }
  rows.push({
    name,
    mb: bytes.length / 1e6,
    layers: r.layers.length,
    sequences: r.sequences.length,
    sweeps: Math.max(...r.sequences.map((s) => s.iterations), 0),
    ms: median(times),
    min: Math.min(...times),
    core: median(coreTimes),
    ref: ref.length ? median(ref) : NaN,
  });
}
fs.rmSync(tmp, { recursive: true, force: true });
const lines = [
  '| model | file MB | layers changed | sequences (most sweeps) | WASM core | equalize() end to end, median (min) | Python reference | reference ÷ end to end |',
  '|---|---|---|---|---|---|---|---|',
];
for (const x of rows) {
  lines.push(
    `| ${x.name} | ${x.mb.toFixed(1)} | ${x.layers} | ${x.sequences} (${x.sweeps}) | ${x.core.toFixed(1)} ms | ${x.ms.toFixed(1)} ms (${x.min.toFixed(1)}) | ${x.ref.toFixed(0)} ms | ${(x.ref / x.ms).toFixed(1)}x |`,
  );
}
console.log(`${runs} timed runs after a warm-up, Node ${process.version}, ${os.cpus()[0].model}`);
console.log(lines.join('\n'));
