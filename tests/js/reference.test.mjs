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
  d.eq(`${where}.recurrent`, o.recurrent ?? null, r.recurrent ?? null);
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
  compareInputChannels(d, `${where}.inputChannels`, o.inputChannels, r.inputChannels);
  compareStored(d, where, o.stored, r.stored);
}

// Per-input-channel absMax (exact float32) and the flagged input channels.
function compareInputChannels(d, where, o, r) {
  if (!o || !r) {
    d.add(where, `ours ${JSON.stringify(o)} vs reference ${JSON.stringify(r)}`);
    return;
  }
  d.eq(`${where}.count`, o.count, r.count);
  d.eq(`${where}.axis`, o.axis, r.axis);
  d.arrays(`${where}.absMax`, o.absMax, r.absMax, (w, a, b) => d.f32(w, a, b));
  d.arrays(`${where}.relativeAbsMax`, o.relativeAbsMax, r.relativeAbsMax, (w, a, b) =>
    d.close(w, a, b, 1e-6 * Math.abs(b) + 1e-12),
  );
  d.eq(`${where}.outliers`, o.outliers, r.outliers);
  for (const [k, v] of [
    ['threshold', [o.threshold, r.threshold]],
    ['quartiles[0]', [o.quartiles[0], r.quartiles[0]]],
    ['quartiles[1]', [o.quartiles[1], r.quartiles[1]]],
  ])
    d.close(`${where}.${k}`, v[0], v[1], 1e-6 * Math.abs(v[1]) + 1e-12);
}

// `extra`: options given to both (e.g. ['--block-size', '48']).
export async function compareModel(file, extra = []) {
  const [ours, ref] = await Promise.all([
    runCli(['analyze', '--json', file, ...extra]),
    extra.length
      ? run('/usr/bin/python3', [path.join(root, 'tools', 'reference', 'analyze_ref.py'), file, ...extra])
      : runReference(file),
  ]);
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

// The block size option: a third block scheme, int4Block<N>, on every layer, checked against
// the reference run with the same --block-size. 48 is not a power of two (blocks straddle
// the 32/128 boundaries), 5 leaves a partial last block almost everywhere, and 1 makes every
// weight its own block.
test('--block-size N adds int4Block<N>, matching the reference', async (t) => {
  const files = [...sharedModelFiles().slice(0, 2), ...fetchedModelFiles().slice(0, 1), ...generatedModelFiles()];
  for (const [file, n] of files.map((f, i) => [f, [48, 5, 1][i % 3]])) {
    await t.test(`${path.basename(file)} --block-size ${n}`, async () => {
      const o = await compareModel(file, ['--block-size', String(n)]);
      assert.deepEqual(o.schemes.slice(-3), ['int4Block32', 'int4Block128', `int4Block${n}`]);
      for (const l of o.layers.filter((x) => !x.error)) assert.ok(`int4Block${n}` in l.sqnr, l.name);
    });
  }
});

// tools/make_test_models.py's input_channels.onnx scales one input channel of each layer
// x50: the rule must flag exactly that one (and the reference agrees, above).
test('the input-channel outlier rule flags the input channel scaled x50', async () => {
  const file = generatedModelFiles().find((f) => path.basename(f) === 'input_channels.onnx');
  assert.ok(file, 'models/generated/input_channels.onnx is missing (run tools/make_test_models.py)');
  const o = await compareModel(file);
  const flagged = Object.fromEntries(o.layers.map((l) => [l.name, l.inputChannels.outliers]));
  assert.deepEqual(flagged, {
    matmul_input_row5: [5],
    gemm_transB1_input_col17: [17],
    conv_group4_input5: [5],
  });
  const conv = o.layers.find((l) => l.name === 'conv_group4_input5').inputChannels;
  assert.deepEqual([conv.count, conv.groups, conv.perGroup, conv.axis], [8, 4, 2, 1]);
});

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
