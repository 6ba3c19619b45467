#!/usr/bin/env node
// The benchmarks' full check (checks.mjs fullCheck) alone, without timing anything: for each
// model given, the numpy peer's full output (numpy_baseline.py --out) against QuantLens's JSON
// (quantlens analyze --json), one line per model, then the worst of every difference.
// Usage: node tools/bench/check_peer.mjs MODEL.onnx... (build first: bash tools/build.sh)
import { spawnSync } from 'node:child_process';
import fs from 'node:fs';
import os from 'node:os';
import path from 'node:path';
import { fileURLToPath } from 'node:url';
import { blockInputText, exp, fullCheck } from './checks.mjs';

const HERE = path.dirname(fileURLToPath(import.meta.url));
const CLI = path.resolve(HERE, '../../web/cli/quantlens.js');
const out = path.join(fs.mkdtempSync(path.join(os.tmpdir(), 'ql-peer-')), 'numpy.json');
const run = (cmd, args) => spawnSync(cmd, args, { encoding: 'utf8', maxBuffer: 1 << 30 });

const worst = {};
let failed = 0;
for (const file of process.argv.slice(2)) {
  const np = run('/usr/bin/python3', [path.join(HERE, 'numpy_baseline.py'), file, '--out', out]);
  if (np.status !== 0) {
    console.log(`${path.basename(file)}: numpy peer failed: ${(np.stderr || '').trim().split('\n').pop()}`);
    continue;
  }
  const ql = run(process.execPath, [CLI, 'analyze', '--json', file]);
  if (ql.status !== 0) {
    console.log(`${path.basename(file)}: quantlens analyze failed: ${(ql.stderr || '').trim().split('\n').pop()}`);
    continue;
  }
  const c = fullCheck(JSON.parse(ql.stdout), JSON.parse(fs.readFileSync(out, 'utf8')));
  for (const [k, v] of Object.entries(c)) {
    const x = Array.isArray(v) ? v.length : v;
    if (k !== 'layers' && !k.endsWith('Total')) worst[k] = Math.max(worst[k] ?? 0, x);
  }
  if (c.f32Mismatch || c.inAbsMismatch || c.inShapeMismatch || c.sqnrMissing || c.infMismatch || c.missing.length) failed++;
  console.log(
    `${path.basename(file)}: ${c.layers} layers${c.missing.length ? `, ${c.missing.length} MISSING in numpy` : ''}${c.extraNumpy ? `, ${c.extraNumpy} extra in numpy` : ''}; ` +
      `float32 min/max/absMax/range ${c.f32Mismatch ? `${c.f32Mismatch} of ${c.f32Total} DIFFER` : 'identical'}; ` +
      `SQNR |Δ| ≤ ${exp(c.chSqnr)} dB per channel, ≤ ${exp(c.layerSqnr)} per layer${c.infMismatch ? ` (${c.infMismatch} lossless/finite DISAGREE)` : ''}; ` +
      `${blockInputText(c)}; histograms ${c.histDiff ? `DIFFER by ${c.histDiff}` : 'identical'}`,
  );
}
fs.rmSync(path.dirname(out), { recursive: true, force: true });
console.log(
  `worst: ${Object.entries(worst)
    .map(([k, v]) => `${k} ${Number.isInteger(v) ? v : exp(v)}`)
    .join(', ')}`,
);
if (failed) process.exit(1);
