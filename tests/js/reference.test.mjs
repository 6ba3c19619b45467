// `quantlens analyze --json` (the WASM core under Node) against an independent
// reference (tools/reference/analyze_ref.py: python3-onnx + numpy, its own layer
// discovery), channel for channel, on every real and generated model we have.
import assert from 'node:assert/strict';
import fs from 'node:fs';
import os from 'node:os';
import path from 'node:path';
import { test } from 'node:test';
import { Diff, compareStats, compareStored } from './compare.mjs';
import {
  fetchedModelFiles,
  generatedModelFiles,
  root,
  run,
  runCli,
  runReference,
  sharedModelFiles,
  sharedModels,
} from './helpers.mjs';

function compareLayer(d, where, o, r) {
  for (const k of ['name', 'path', 'op', 'weight', 'shape', 'dtype', 'channelAxis', 'groups', 'depthwise', 'bias'])
    d.eq(`${where}.${k}`, o[k], r[k]);
  d.eq(`${where}.follower.kind`, o.follower?.kind, r.follower?.kind);
  d.eq(`${where}.activation.kind`, o.activation?.kind ?? null, r.activation?.kind ?? null);
  d.eq(
    `${where}.quant`,
    o.quant ? [o.quant.via, o.quant.dtype, o.quant.axis, o.quant.zeroPoint] : null,
    r.quant ? [r.quant.via, r.quant.dtype, r.quant.axis, r.quant.zeroPoint] : null,
  );
  if (o.quant && r.quant)
    d.arrays(`${where}.quant.scale`, o.quant.scale, r.quant.scale, (w, a, b) => d.close(w, a, b, 1e-7 * Math.abs(b)));
  d.eq(`${where}.quant.note (weight scale not found)`, !!o.quant?.note, !!r.quant?.note);
  if (o.error) {
    d.add(where, `ours failed: ${o.error.code} ${o.error.message}`);
    return;
  }
  compareStats(d, where, o, r);
  compareStored(d, where, o.stored, r.stored);
}

export async function compareModel(file) {
  const [ours, ref] = await Promise.all([runCli(['analyze', '--json', file]), runReference(file)]);
  assert.equal(ref.code, 0, `reference failed on ${file}: ${ref.stderr}`);
  const r = JSON.parse(ref.stdout);
  const name = path.basename(file);
  // Models the reference rejects outright are bad-input cases, checked elsewhere.
  assert.equal(ours.code, 0, `quantlens failed on ${name}: ${ours.stderr}`);
  const o = JSON.parse(ours.stdout);
  assert.equal(o.schema, 'quantlens.analysis/1');
  const d = new Diff();
  for (const k of ['producer', 'producerVersion', 'irVersion', 'bytes']) d.eq(`model.${k}`, o.model[k], r.model[k]);
  d.eq('model.opsets', o.model.opsets, r.model.opsets);
  const key = (l) => `${l.path}|${l.name}|${l.op}`;
  d.eq('layers (path|name|op)', o.layers.map(key), r.layers.map(key));
  const refByKey = new Map(r.layers.map((l) => [key(l), l]));
  for (const l of o.layers) {
    const rl = refByKey.get(key(l));
    if (rl) compareLayer(d, `layer '${key(l)}'`, l, rl);
  }
  assert.ok(o.layers.length > 0 || r.layers.length === 0, `${name}: no layers found`);
  assert.deepEqual(d.list.slice(0, 25), [], `${name}: ${d.list.length} differences from the reference`);
  return o;
}

const groups = [
  ['shared real models', sharedModelFiles(), `absent: ${sharedModels}`],
  ['fetched real models', fetchedModelFiles(), 'models/fetched is empty (offline?)'],
  ['generated edge-case models', generatedModelFiles(), 'models/generated is empty (run tools/make_test_models.py)'],
];
for (const [title, files, why] of groups) {
  test(`${title} match the independent reference`, { skip: files.length === 0 ? why : false }, async (t) => {
    for (const file of files) {
      await t.test(path.basename(file), async () => {
        await compareModel(file);
      });
    }
  });
}

// Quantized copies of real models, to check what QuantLens reads of stored codes (the
// dequantized statistics and the stored facts) against the reference: QDQ int8
// per-channel and uint8 per-tensor and QLinearConv copies (tools/reference/quantize_qdq.py),
// and ONNX Runtime dynamic quantization copies (tests/js/fixtures/dynamic_quant.py).
const quantizedSources = ['tf/mnist_keras_tf2onnx.onnx', 'tf/reversi_mlp_tf2onnx.onnx', 'pytorch/yunet_120x160.onnx']
  .map((f) => path.join(sharedModels, f))
  .filter((f) => fs.existsSync(f));
const COPIES = [
  ['qdq-int8-pc', 'tools/reference/quantize_qdq.py', []],
  ['qdq-uint8-pt', 'tools/reference/quantize_qdq.py', ['--scheme', 'uint8-per-tensor']],
  ['qlinear', 'tools/reference/quantize_qdq.py', ['--qlinear']],
  ['dyn-uint8', 'tests/js/fixtures/dynamic_quant.py', []],
  ['dyn-int8-pc-swapped', 'tests/js/fixtures/dynamic_quant.py', ['--weight-type', 'int8', '--per-channel', '--swap-mul']],
];
test(
  'quantized copies of real models (QDQ, QLinearConv, dynamic) match the independent reference',
  { skip: quantizedSources.length === 0 ? `absent: ${sharedModels}` : false },
  async (t) => {
    const tmp = fs.mkdtempSync(path.join(os.tmpdir(), 'ql-ref-quant-'));
    try {
      for (const src of quantizedSources) {
        for (const [tag, script, args] of COPIES) {
          const out = path.join(tmp, `${path.basename(src, '.onnx')}.${tag}.onnx`);
          const made = await run('/usr/bin/python3', [path.join(root, script), src, out, ...args]);
          assert.equal(made.code, 0, made.stderr);
          await t.test(path.basename(out), async () => {
            const o = await compareModel(out);
            const quantized = o.layers.filter((l) => l.quant);
            assert.ok(quantized.length > 0, 'no quantized layer read');
            for (const l of quantized) assert.ok(l.stored, `${l.name}: no stored facts`);
          });
        }
      }
    } finally {
      fs.rmSync(tmp, { recursive: true, force: true });
    }
  },
);
