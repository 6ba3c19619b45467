// ONNX Runtime's dynamic quantization (quantize_dynamic): ConvInteger / MatMulInteger, with
// the weight scale applied after the op (Cast to float, Mul by Mul(x_scale, w_scale)).
// No quantize_dynamic model is at hand and there is no python onnxruntime, so
// tests/js/fixtures/dynamic_quant.py writes copies of REAL float models with the graph
// quantize_dynamic writes (its docstring has the sources and the exact semantics):
// per-tensor uint8 and int8 weights, per-channel MatMul weights, both operand orders of
// the Muls. Checked here:
//   1. each copy is a valid model that onnxruntime-node runs; MNIST's output stays within
//      40 dB of the float model's (55-60 dB seen): the rebuilt graph computes the network;
//   2. QuantLens traces the scale: every quantized layer's per-channel min/max equal
//      numpy's (code - zero point) * scale (tools/reference/analyze_ref.py, independent),
//      with its stored facts, and the scale is the stored W_scale;
//   3. compare(float, copy) pairs every layer with a sane SQNR (it read codes with scale 1
//      before, below 0 dB);
//   4. a pattern that is not exactly quantize_dynamic's says so (quant.note) and keeps the
//      codes, and the layer is rated on its stored codes, not as float weights.
import assert from 'node:assert/strict';
import fs from 'node:fs';
import os from 'node:os';
import path from 'node:path';
import { test } from 'node:test';
import { analyze, compare } from '../../web/src/index.js';
import { riskOf } from '../../web/src/presentation.js';
import { Diff, compareStats, compareStored } from './compare.mjs';
import { root, run, runCli, runReference, sharedModels } from './helpers.mjs';
import { feedsFor, runAll, session, sqnrDb } from './ort.mjs';

const mnist = path.join(sharedModels, 'tf', 'mnist_keras_tf2onnx.onnx');
const reversi = path.join(sharedModels, 'tf', 'reversi_mlp_tf2onnx.onnx');
const mlsd = path.join(root, 'models', 'fetched', 'mlsd_320x320_tiny.onnx');
const skip = !fs.existsSync(mnist) ? `absent: ${sharedModels}` : !fs.existsSync(mlsd) ? 'models/fetched is empty' : false;

const tmp = fs.mkdtempSync(path.join(os.tmpdir(), 'ql-dynq-'));
process.on('exit', () => fs.rmSync(tmp, { recursive: true, force: true }));
const script = path.join(root, 'tests', 'js', 'fixtures', 'dynamic_quant.py');
async function dynamicCopy(src, tag, args = []) {
  const out = path.join(tmp, `${path.basename(src, '.onnx')}.${tag}.onnx`);
  const made = await run('/usr/bin/python3', [script, src, out, ...args]);
  assert.equal(made.code, 0, made.stderr);
  return out;
}

const CASES = [
  // source, tag, fixture options, minimum output SQNR against the float model (null: runs only)
  [mnist, 'uint8', [], 40],
  [mnist, 'int8-per-channel-swapped', ['--weight-type', 'int8', '--per-channel', '--swap-mul'], 40],
  // Reversi ends in a Softmax over logits that dynamic quantization moves by ~25 dB on
  // uniform [0, 1] boards: the probabilities differ, so only that it runs is checked.
  [reversi, 'uint8-per-channel', ['--per-channel'], null],
  [reversi, 'int8', ['--weight-type', 'int8'], null],
  // M-LSD: depthwise channel ranges 200x apart, quantized per tensor with activations
  // quantized dynamically: the outputs are far off (as with quantize_dynamic); runs only.
  [mlsd, 'uint8', [], null],
  [mlsd, 'int8-swapped', ['--weight-type', 'int8', '--swap-mul'], null],
];

for (const [src, tag, args, minDb] of CASES) {
  test(
    `dynamic quantization: ${path.basename(src)} ${tag}: runs in onnxruntime, scale traced, equal to the reference`,
    { skip },
    async (t) => {
      const file = await dynamicCopy(src, tag, args);
      // 1. A valid model, close to the float one where that is meaningful.
      const a = await session(src);
      const b = await session(file);
      const feeds = feedsFor(src, a);
      const [ra, rb] = [await runAll(a, feeds), await runAll(b, feeds)];
      for (const [name, o] of Object.entries(rb)) assert.ok(o.data.every(Number.isFinite), `${name}: non-finite outputs`);
      const db = sqnrDb(ra, rb);
      t.diagnostic(`onnxruntime output SQNR against the float model: ${db.overall.toFixed(1)} dB`);
      if (minDb !== null) assert.ok(db.overall >= minDb, `output SQNR ${db.overall} dB < ${minDb}`);

      // 2. QuantLens against the independent reference.
      const [ours, ref] = await Promise.all([runCli(['analyze', '--json', file]), runReference(file)]);
      assert.equal(ours.code, 0, ours.stderr);
      assert.equal(ref.code, 0, ref.stderr);
      const o = JSON.parse(ours.stdout);
      const r = JSON.parse(ref.stdout);
      assert.deepEqual(o.skipped, []);
      const integer = o.layers.filter((l) => l.op === 'ConvInteger' || l.op === 'MatMulInteger');
      assert.ok(integer.length > 0);
      assert.equal(integer.length, o.layers.length, 'every weight layer of the copy is ConvInteger / MatMulInteger');
      const d = new Diff();
      d.eq(
        'layers',
        o.layers.map((l) => l.name),
        r.layers.map((l) => l.name),
      );
      for (const [i, l] of o.layers.entries()) {
        const rl = r.layers[i];
        const where = `layer '${l.name}'`;
        assert.equal(l.quant.note, undefined, `${where}: ${l.quant.note}`);
        assert.ok(l.quant.scaleVia, `${where}: no scale Mul named`);
        assert.ok(l.weight.endsWith('_quantized'), l.weight);
        for (const k of ['weight', 'shape', 'dtype', 'channelAxis', 'bias']) d.eq(`${where}.${k}`, l[k], rl[k]);
        d.eq(`${where}.follower`, l.follower.kind, rl.follower.kind);
        d.eq(`${where}.quant`, [l.quant.axis, l.quant.zeroPoint], [rl.quant.axis, rl.quant.zeroPoint]);
        d.arrays(`${where}.quant.scale`, l.quant.scale, rl.quant.scale, (w, x, y) => d.f32(w, x, y));
        assert.ok(!l.quant.scale.every((s) => s === 1), `${where}: scale 1 (codes read as weights)`);
        compareStats(d, where, l, rl);
        compareStored(d, where, l.stored, rl.stored);
      }
      assert.deepEqual(d.list.slice(0, 25), [], `${d.list.length} differences from the reference`);
      // The model header says how it is quantized.
      const s = o.summary.quantized;
      assert.equal(s.layers, o.layers.length);
      assert.equal(s.float, 0);
      assert.ok(s.schemes.every((e) => e.via === 'ConvInteger' || e.via === 'MatMulInteger'));
      const table = await runCli(['analyze', file]);
      assert.match(table.stdout.split('\n')[1], /^quantized: \d+ layers? (u?int8) per-(tensor|channel) \(dynamic\)/);

      // 3. compare(float, copy): every layer paired, a quantization-sized difference.
      const c = await compare(src, file);
      assert.equal(c.pairs.length, o.layers.length);
      for (const p of c.pairs) assert.ok(p.comparable, `${p.a.name}: ${p.reason}`);
      const sq = c.pairs.map((p) => p.tensor.sqnr);
      t.diagnostic(`compare(float, copy) SQNR per layer: ${Math.min(...sq).toFixed(1)} to ${Math.max(...sq).toFixed(1)} dB`);
      for (const p of c.pairs) assert.ok(p.tensor.sqnr > 15, `${p.a.name}: compare SQNR ${p.tensor.sqnr} dB`);
    },
  );
}

test(
  "dynamic quantization: a scale pattern that is not exactly quantize_dynamic's is said, codes kept, rated on the codes",
  { skip },
  async () => {
    for (const variant of ['conv-1d-scale', 'folded-scale']) {
      const file = await dynamicCopy(mnist, variant, ['--variant', variant]);
      const res = await analyze(file);
      const convs = res.layers.filter((l) => l.op === 'ConvInteger');
      assert.equal(convs.length, 3);
      for (const l of convs) {
        assert.match(l.quant.note, /^weight scale not found \(codes shown in integer units\): /, variant);
        assert.deepEqual(Array.from(l.quant.scale), [1]);
        assert.equal(l.quant.scaleVia, undefined);
        // Integer units: the values are the codes minus the zero point.
        assert.ok(Number.isInteger(l.channels.max[0]) && Number.isInteger(l.channels.min[0]));
        assert.ok(l.stored, 'stored facts still computed from the codes');
        assert.notEqual(riskOf(l), 'low', 'a layer whose scale is unknown is never rated low');
      }
      // conv-1d-scale leaves the MatMul layers as quantize_dynamic writes them (traced);
      // folded-scale folds every layer's scale into a constant (none traced).
      for (const l of res.layers.filter((x) => x.op === 'MatMulInteger')) {
        if (variant === 'conv-1d-scale') assert.equal(l.quant.note, undefined);
        else assert.match(l.quant.note, /^weight scale not found/);
      }
      // And the reference agrees on everything it computes.
      const ref = JSON.parse((await runReference(file)).stdout);
      const d = new Diff();
      for (const [i, l] of res.layers.entries()) {
        const o = JSON.parse(JSON.stringify(l, (k, v) => (ArrayBuffer.isView(v) ? Array.from(v) : v)));
        compareStats(d, l.name, o, ref.layers[i]);
        compareStored(d, l.name, o.stored, ref.layers[i].stored);
        d.eq(`${l.name}.note`, !!l.quant.note, !!ref.layers[i].quant.note);
      }
      assert.deepEqual(d.list.slice(0, 25), [], variant);
    }
  },
);

// What a user reads: the CLI's header says the model is already quantized and how, and each
// quantized layer's `stored` cell carries its stored scheme and facts, computed from the
// same numbers the analysis gives (so a change in either shows here).
test('dynamic quantization: the CLI says the model is quantized and shows each layer stored scheme', { skip }, async () => {
  const copy = await dynamicCopy(mnist, 'cli-uint8');
  const o = await analyze(copy);
  const s = o.summary.quantized;
  assert.equal(s.layers, o.layers.length, 'every layer of the dynamic copy is stored quantized');
  assert.equal(s.float, 0);
  const cli = await runCli(['analyze', copy, '--top', String(o.layers.length)]);
  assert.equal(cli.code, 0, cli.stderr);
  const lines = cli.stdout.split('\n');
  assert.ok(lines.includes(`quantized: ${s.layers} layers uint8 per-tensor (dynamic), 0 float`), cli.stdout);
  const head = lines.find((l) => l.startsWith('#  layer'));
  assert.ok(head && /\bstored$/.test(head.trimEnd()), head);
  for (const l of o.layers) {
    assert.ok(l.stored, `${l.name}: no stored facts`);
    const st = l.stored;
    assert.equal(st.bits, 8);
    assert.equal(st.isSigned ?? st.signed, false);
    const cell = `uint8 per-tensor ${st.symmetric ? 'sym' : 'asym'}; ${st.effectiveBits.toFixed(1)} bits used, span ${st.spanBits.toFixed(1)}`;
    assert.ok(
      lines.some((x) => x.includes(cell)),
      `${l.name}: '${cell}' not in the table`,
    );
  }
  assert.ok(cli.stdout.includes('their risk comes from the stored codes'), 'the footnote on stored codes');
});
