// Compression, then quantization (issue 15 part 6): compressionRisk() of a real model's plan,
// checked against the independent reference analysis (tools/reference/analyze_ref.py:
// python3-onnx + numpy, sharing no code with the core) of the original and of the written
// compressed model: each compressed layer's written nodes are layers of the compressed model
// holding the planned parameters, their SQNR (the worst per scheme) and outlier channels are
// the reference's, and the counts of high-risk layers are the reference's under the
// thresholds stated in docs/computations.md (INT8: high below 30 dB; INT4 6.02 dB per bit lower).
import assert from 'node:assert/strict';
import fs from 'node:fs';
import os from 'node:os';
import path from 'node:path';
import { after, test } from 'node:test';
import { analyze, compress, compressionRisk, toJSON } from '../../web/src/index.js';
import { fetchedModelFiles, root, run, runCli, sharedModelFiles } from './helpers.mjs';

const tmp = fs.mkdtempSync(path.join(os.tmpdir(), 'quantlens-cmprisk-'));
after(() => fs.rmSync(tmp, { recursive: true, force: true }));

const reference = async (file) => {
  const r = await run('/usr/bin/python3', [path.join(root, 'tools', 'reference', 'analyze_ref.py'), file]);
  assert.equal(r.code, 0, r.stderr);
  return JSON.parse(r.stdout);
};
const HIGH_DB = {
  int8PerTensor: 30,
  int8PerChannel: 30,
  int4PerTensor: 30 - 4 * 20 * Math.log10(2),
  int4PerChannel: 30 - 4 * 20 * Math.log10(2),
};
const high = (layers, s) => layers.filter((l) => !l.error && l.sqnr && !(l.sqnr[s] >= HIGH_DB[s])).length;
const close = (a, b, where) => {
  if (a === null || b === null) assert.equal(a, b, where);
  else assert.ok(Math.abs(a - b) <= 1e-3 || a === b, `${where}: ${a} vs reference ${b}`);
};

const cases = [
  ['mlsd_320x320_tiny.onnx', fetchedModelFiles, 'auto', 0.5],
  ['ultraface_version-RFB-320.onnx', sharedModelFiles, 'auto', 0.7],
  ['mnist_keras_tf2onnx.onnx', sharedModelFiles, 'svd', 0.5],
];

for (const [name, list, method, ratio] of cases) {
  test(
    `${name}: the plan at ${ratio} (${method}) against the reference analysis of both models`,
    { timeout: 600000 },
    async (t) => {
      const model = list().find((f) => f.endsWith(name));
      if (!model) return t.skip(`${name} not present`);
      const written = await compress(model, { ratio, method });
      const out = path.join(tmp, name.replace(/\.onnx$/, '.compressed.onnx'));
      fs.writeFileSync(out, written.bytes);
      const before = await analyze(model);
      const afterAnalysis = await analyze(out);
      const r = compressionRisk(before, afterAnalysis, written);
      const [refBefore, refAfter] = await Promise.all([reference(model), reference(out)]);
      const refB = new Map(refBefore.layers.map((l) => [l.name, l]));
      const refA = new Map(refAfter.layers.map((l) => [l.name, l]));

      const compressed = written.layers.filter((l) => l.method);
      assert.ok(compressed.length > 0, 'the plan compresses something');
      assert.deepEqual(
        r.layers.map((l) => l.name),
        compressed.map((l) => l.name),
      );
      for (const l of r.layers) {
        const plan = compressed.find((c) => c.name === l.name);
        assert.deepEqual(l.missing, [], `${l.name}: every written node is a layer of the compressed model`);
        assert.equal(l.nodes.length, l.method === 'channel-prune' ? 1 : 2, `${l.name}: nodes`);
        // The nodes hold the planned parameters (the reference's shapes).
        const held = l.nodes.reduce((n, x) => n + refA.get(x).shape.reduce((a, b) => a * b, 1), 0);
        assert.equal(held, plan.params, `${l.name}: parameters of ${l.nodes.join(', ')}`);
        for (const s of r.schemes.filter((x) => HIGH_DB[x] !== undefined)) {
          close(l.before.sqnr[s], refB.get(l.name).sqnr[s], `${l.name} before ${s}`);
          const worst = Math.min(...l.nodes.map((x) => refA.get(x).sqnr[s]));
          close(l.after.sqnr[s], worst, `${l.name} after ${s}`);
        }
        assert.equal(l.before.outliers, refB.get(l.name).outlierChannels.length, `${l.name}: outliers before`);
        const outliers = l.nodes.reduce((n, x) => n + refA.get(x).outlierChannels.length, 0);
        assert.equal(l.after.outliers, outliers, `${l.name}: outliers after`);
      }
      for (const s of r.schemes.filter((x) => HIGH_DB[x] !== undefined)) {
        assert.equal(r.highRisk[s].before, high(refBefore.layers, s), `${s}: high-risk layers before`);
        assert.equal(r.highRisk[s].after, high(refAfter.layers, s), `${s}: high-risk layers after`);
      }
      const h = r.highRisk.int8PerTensor;
      const worse = r.layers.filter((l) => l.after.sqnr.int8PerChannel < l.before.sqnr.int8PerChannel).length;
      t.diagnostic(
        `${name} at ${ratio}: ${r.layers.length} layers compressed; INT8 per-tensor high-risk layers ${h.before} -> ${h.after}; ` +
          `${worse} compressed layers lose INT8 per-channel SQNR`,
      );
    },
  );
}

test(
  'quantlens compress --risk: the JSON holds compressionRisk() of the same plan; the table says it',
  { timeout: 600000 },
  async (t) => {
    const model = fetchedModelFiles().find((f) => f.endsWith('mlsd_320x320_tiny.onnx'));
    if (!model) return t.skip('M-LSD not fetched');
    const out = path.join(tmp, 'cli.compressed.onnx');
    const r = await runCli(['compress', model, '--ratio', '0.6', '--method', 'auto', '--risk', '--json', '-o', out]);
    assert.equal(r.code, 0, r.stderr);
    const json = JSON.parse(r.stdout);
    const written = await compress(model, { ratio: 0.6, method: 'auto' });
    assert.deepEqual(fs.readFileSync(out), Buffer.from(written.bytes));
    const risk = compressionRisk(await analyze(model), await analyze(out), written);
    assert.deepEqual(json.risk, toJSON(risk));
    const table = await runCli(['compress', model, '--ratio', '0.6', '--method', 'auto', '--risk', '--top', '3']);
    assert.equal(table.code, 0, table.stderr);
    const h = risk.highRisk.int8PerTensor;
    assert.match(table.stdout, new RegExp(`INT8 per-tensor: ${h.before} -> ${h.after} layers at high risk`));
    assert.match(table.stdout, /No -o given: nothing written\./);
  },
);
