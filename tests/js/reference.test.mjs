// `quantlens analyze --json` (the WASM core under Node) against an independent
// reference (tools/reference/analyze_ref.py: python3-onnx + numpy, its own layer
// discovery), channel for channel, on every real and generated model we have.
import assert from 'node:assert/strict';
import fs from 'node:fs';
import path from 'node:path';
import { test } from 'node:test';
import { Diff, compareStats } from './compare.mjs';
import {
  fetchedModelFiles,
  generatedModelFiles,
  root,
  runCli,
  runReference,
  sharedModelFiles,
  sharedModels,
} from './helpers.mjs';

function compareLayer(d, where, o, r) {
  for (const k of ['name', 'path', 'op', 'weight', 'shape', 'dtype', 'channelAxis', 'groups', 'depthwise', 'bias'])
    d.eq(`${where}.${k}`, o[k], r[k]);
  d.eq(`${where}.follower.kind`, o.follower?.kind, r.follower?.kind);
  d.eq(`${where}.recurrent`, o.recurrent ?? null, r.recurrent ?? null);
  d.eq(`${where}.activation.kind`, o.activation?.kind ?? null, r.activation?.kind ?? null);
  d.eq(
    `${where}.quant`,
    o.quant ? [o.quant.via, o.quant.dtype, o.quant.axis, o.quant.zeroPoint] : null,
    r.quant ? [r.quant.via, r.quant.dtype, r.quant.axis, r.quant.zeroPoint] : null,
  );
  if (o.quant && r.quant)
    d.arrays(`${where}.quant.scale`, o.quant.scale, r.quant.scale, (w, a, b) => d.close(w, a, b, 1e-7 * Math.abs(b)));
  if (o.error) {
    d.add(where, `ours failed: ${o.error.code} ${o.error.message}`);
    return;
  }
  compareStats(d, where, o, r);
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

// Silero VAD (PyTorch 1.12): 8 LSTMs inside the branches of nested If nodes, each two
// layers (W and R), found by both sides and equal statistic for statistic (compareModel).
const silero = path.join(root, 'models', 'fetched', 'silero_vad_legacy.onnx');
test(
  'silero VAD: the W and R of all 8 LSTMs inside its If branches match the reference',
  { skip: !fs.existsSync(silero) && 'silero_vad_legacy.onnx was not fetched' },
  async () => {
    const o = await compareModel(silero);
    const lstm = o.layers.filter((l) => l.op === 'LSTM');
    assert.equal(lstm.length, 16);
    assert.equal(new Set(lstm.map((l) => `${l.path}/${l.recurrent.node}`)).size, 8);
    for (const l of lstm) {
      assert.match(l.path, /^If_25\/(then|else)_branch\/If_\d+\/(then|else)_branch$/);
      assert.equal(l.name, `${l.recurrent.node}/${l.recurrent.part}`);
      assert.deepEqual(l.shape, [1, 256, 64]);
      assert.deepEqual(l.recurrent.gates, ['i', 'o', 'f', 'c']);
      assert.equal(l.channels.count, 256);
      assert.ok(!l.error, l.error?.message);
    }
    assert.deepEqual(
      lstm.map((l) => l.recurrent.part),
      Array(8).fill(['W', 'R']).flat(),
    );
  },
);

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
