// Recurrent layers (LSTM, GRU, RNN): each node is two layers, `<node>/W` and `<node>/R`.
// The generated models (tools/make_test_models.py: recurrent.onnx, recurrent_gates.onnx) run
// in onnxruntime-node; the channel labels QuantLens gives (gate, direction, unit) are checked
// against what onnxruntime computes with those weights; CLE stops at them and leaves the
// model's function unchanged; compare() pairs W with W and R with R, and its numbers equal
// those of the numpy quantizer that wrote the quantized copy (tests/js/fixtures/recurrent_copies.py).
// Statistics against the independent reference are in reference.test.mjs.
import assert from 'node:assert/strict';
import fs from 'node:fs';
import os from 'node:os';
import path from 'node:path';
import { test } from 'node:test';
import { analyze, compare, equalize } from '../../web/src/index.js';
import { channelText, recurrentChannel } from '../../web/src/presentation.js';
import { modelExplorerNodeData } from '../../web/src/export/model-explorer.js';
import { root, run, runCli } from './helpers.mjs';
import { maxRelativeError, randomFeeds, runAll, session } from './ort.mjs';

const generated = path.join(root, 'models', 'generated');
const model = path.join(generated, 'recurrent.onnx');
const gates = path.join(generated, 'recurrent_gates.onnx');
const missing = !fs.existsSync(model) && 'models/generated is empty (run tools/make_test_models.py)';
const tmp = fs.mkdtempSync(path.join(os.tmpdir(), 'quantlens-recurrent-'));
process.on('exit', () => fs.rmSync(tmp, { recursive: true, force: true }));

const NODES = [
  ['lstm_bidirectional', 'LSTM', 2, ['i', 'o', 'f', 'c'], 8, 6],
  ['gru_lbr0', 'GRU', 1, ['z', 'r', 'h'], 7, 6],
  ['gru_lbr1', 'GRU', 1, ['z', 'r', 'h'], 5, 6],
  ['rnn_forward', 'RNN', 1, ['i'], 4, 6],
  ['lstm_dq', 'LSTM', 1, ['i', 'o', 'f', 'c'], 4, 6],
  ['lstm_after_matmul', 'LSTM', 1, ['i', 'o', 'f', 'c'], 3, 10],
];

test(
  'the generated recurrent models run in onnxruntime-node, with the output shapes of the spec',
  { skip: missing },
  async () => {
    const s = await session(model);
    const out = await runAll(s, randomFeeds(s, { seed: 3, low: -1, high: 1 }));
    // Y is [seq_length, num_directions, batch_size, hidden_size] (layout 0).
    assert.deepEqual(out.lstm_Y.dims, [5, 2, 2, 8]);
    assert.deepEqual(out.lstm_Yc.dims, [2, 2, 8]);
    assert.deepEqual(out.gru_lbr0_Y.dims, [5, 1, 2, 7]);
    assert.deepEqual(out.gru_lbr1_Y.dims, [5, 1, 2, 5]);
    assert.deepEqual(out.rnn_relu.dims, [5, 1, 2, 4]);
    assert.deepEqual(out.lstm_dq_Y.dims, [5, 1, 2, 4]);
    assert.deepEqual(out.lstm_mm_Y.dims, [5, 1, 2, 3]);
    for (const [name, o] of Object.entries(out)) {
      assert.ok(o.data.every(Number.isFinite), `${name} finite`);
      assert.ok(
        o.data.some((v) => v !== 0),
        `${name} not all zero`,
      );
    }
    const g = await session(gates);
    const gout = await runAll(g, randomFeeds(g, { seed: 4, low: -1, high: 1 }));
    assert.deepEqual(gout.gate_lstm_Y.dims, [1, 2, 1, 1]);
  },
);

test('every recurrent node is two layers, W and R, with its gates, directions and bias', { skip: missing }, async () => {
  const a = await analyze(model);
  assert.deepEqual(a.skipped, []);
  const names = a.layers.map((l) => l.name);
  const expected = [];
  for (const [node] of NODES) {
    if (node === 'lstm_after_matmul') expected.push('matmul_before_lstm');
    expected.push(`${node}/W`, `${node}/R`);
  }
  assert.deepEqual(names, expected);
  for (const [node, op, D, g, H, I] of NODES) {
    for (const part of ['W', 'R']) {
      const l = a.layers.find((x) => x.name === `${node}/${part}`);
      assert.equal(l.op, op);
      assert.ok(!l.error, l.error?.message);
      assert.deepEqual(l.shape, [D, g.length * H, part === 'W' ? I : H]);
      assert.equal(l.channels.count, D * g.length * H);
      assert.equal(l.channelAxis, 1);
      assert.equal(l.recurrent.node, node);
      assert.equal(l.recurrent.part, part);
      assert.equal(l.recurrent.directions, D);
      assert.deepEqual(l.recurrent.gates, g);
      assert.equal(l.recurrent.hiddenSize, H);
      assert.equal(l.recurrent.biasOffset, part === 'W' ? 0 : g.length * H);
    }
  }
  const lstmW = a.layers.find((l) => l.name === 'lstm_bidirectional/W');
  assert.equal(lstmW.bias, 'lstm_B');
  assert.equal(lstmW.recurrent.direction, 'bidirectional');
  assert.equal(lstmW.recurrent.peepholes, 'lstm_P');
  assert.equal(a.layers.find((l) => l.name === 'gru_lbr1/R').recurrent.direction, 'reverse');
  assert.equal(a.layers.find((l) => l.name === 'rnn_forward/W').bias, null);
  assert.equal(a.layers.find((l) => l.name === 'rnn_forward/W').follower.kind, 'relu');
  // The quantized LSTM's weights are followed through DequantizeLinear, one scale per gate row.
  for (const part of ['W', 'R']) {
    const l = a.layers.find((x) => x.name === `lstm_dq/${part}`);
    assert.equal(l.weight, `lstm_dq_${part}q`);
    assert.deepEqual(l.via, ['DequantizeLinear']);
    assert.equal(l.quant.dtype, 'int8');
    assert.equal(l.quant.axis, 1);
    assert.equal(l.quant.scale.length, 16);
    // Row 6 holds the full int8 range (the generator's outlier): gate o, unit 2.
    assert.ok(l.outlierChannels.includes(6), `${l.name} flags channel 6`);
    assert.equal(channelText(l, 6), 'channel 6: gate o, unit 2');
  }
  // Channel labels: direction-major, then gate, then unit.
  assert.deepEqual(recurrentChannel(lstmW, 0), { direction: 0, gate: 'i', unit: 0 });
  assert.deepEqual(recurrentChannel(lstmW, 8 * 2 + 3), { direction: 0, gate: 'f', unit: 3 });
  assert.deepEqual(recurrentChannel(lstmW, 32 + 8 * 3 + 7), { direction: 1, gate: 'c', unit: 7 });
  assert.equal(channelText(lstmW, 32 + 17), 'channel 49: gate f, direction 1 (reverse), unit 1');
  assert.equal(
    recurrentChannel(
      a.layers.find((l) => l.name === 'matmul_before_lstm'),
      3,
    ),
    null,
  );
  // Model Explorer keys a recurrent node's two layers by its node name, with the worse value.
  const me = modelExplorerNodeData(a);
  const gru = a.layers.filter((l) => l.recurrent?.node === 'gru_lbr0');
  assert.equal(
    me.nodeData.recurrent.results.gru_lbr0.value,
    Math.round(Math.min(...gru.map((l) => l.sqnr.int8PerTensor)) * 100) / 100,
  );
  assert.equal(me.nodeData.recurrent.results['gru_lbr0/W'], undefined);
});

// The spec's equations (ONNX LSTM, GRU, RNN; default activations: f = sigmoid, g = h = tanh),
// one step, no bias, for one unit: each gate's input is W[gate] x + R[gate] h0, where
// W[gate] is read from QuantLens's channel of that gate (I = H = 1: one element each).
const sigmoid = (v) => 1 / (1 + Math.exp(-v));
function expected(op, gate, { x, h0, c0, lbr }) {
  const pre = (g) => gate(g).w * x + gate(g).r * h0;
  if (op === 'RNN') return Math.tanh(pre('i'));
  if (op === 'GRU') {
    const z = sigmoid(pre('z'));
    const r = sigmoid(pre('r'));
    const h = Math.tanh(gate('h').w * x + (lbr ? r * (gate('h').r * h0) : gate('h').r * (r * h0)));
    return (1 - z) * h + z * h0;
  }
  const c = sigmoid(pre('f')) * c0 + sigmoid(pre('i')) * Math.tanh(pre('c'));
  return sigmoid(pre('o')) * Math.tanh(c);
}

test(
  "channel labels name the gates onnxruntime computes with: the spec's equations on labelled weights equal its outputs",
  { skip: missing },
  async () => {
    const a = await analyze(gates);
    const s = await session(gates);
    const cases = [
      ['gate_lstm', 'LSTM', 2, 0],
      ['gate_gru0', 'GRU', 1, 0],
      ['gate_gru1', 'GRU', 1, 1],
      ['gate_rnn', 'RNN', 1, 0],
    ];
    for (const seed of [5, 6, 7]) {
      const feeds = randomFeeds(s, { seed, low: -1.5, high: 1.5 });
      const out = await runAll(s, feeds);
      for (const [node, op, D, lbr] of cases) {
        const W = a.layers.find((l) => l.name === `${node}/W`);
        const R = a.layers.find((l) => l.name === `${node}/R`);
        assert.equal(W.channels.count, D * W.recurrent.gates.length);
        // One element per channel: min is the weight.
        for (const l of [W, R]) assert.deepEqual(Array.from(l.channels.min), Array.from(l.channels.max));
        // Labelled values: gate name -> weight, per direction, by recurrentChannel().
        const labelled = (order, d) => (g) => {
          const pick = (l) => {
            for (let c = 0; c < l.channels.count; c++) {
              const rc = recurrentChannel(l, c);
              if (rc.direction === d && order[l.recurrent.gates.indexOf(rc.gate)] === g) return l.channels.min[c];
            }
            throw new Error(`no channel for gate ${g}`);
          };
          return { w: pick(W), r: pick(R) };
        };
        for (let d = 0; d < D; d++) {
          const args = { x: feeds.x.data[0], h0: feeds[`${node}_h0`].data[d], c0: feeds[`${node}_c0`]?.data[d], lbr };
          const got = out[`${node}_Y`].data[d];
          const want = expected(op, labelled(W.recurrent.gates, d), args);
          assert.ok(Math.abs(got - want) < 1e-6, `${node} direction ${d} seed ${seed}: onnxruntime ${got}, labels ${want}`);
          // The check has teeth: the gates in another order give another output.
          if (W.recurrent.gates.length > 1) {
            const shifted = [...W.recurrent.gates.slice(1), W.recurrent.gates[0]];
            const wrong = expected(op, labelled(shifted, d), args);
            assert.ok(Math.abs(got - wrong) > 1e-4, `${node}: gates ${shifted.join('')} also fit (${wrong})`);
          }
        }
      }
    }
  },
);

test(
  'CLE: recurrent layers are stops, a MatMul feeding an LSTM ends there, and the model computes the same',
  { skip: missing },
  async () => {
    const eq = await equalize(model);
    const stops = new Map(eq.stops.map((s) => [s.layer, s]));
    const reason = /^recurrent layer: its gates \(sigmoid, tanh\) do not commute with per-channel scaling/;
    for (const [node, op] of NODES) {
      for (const part of ['W', 'R']) {
        const s = stops.get(`${node}/${part}`);
        assert.ok(s, `${node}/${part} has a stop`);
        assert.equal(s.node, node);
        assert.equal(s.op, op);
        assert.match(s.reason, reason);
      }
    }
    const mm = stops.get('matmul_before_lstm');
    assert.equal(mm.node, 'lstm_after_matmul');
    assert.match(mm.reason, /^reaches lstm_after_matmul: recurrent layer/);
    assert.equal(eq.summary.layersChanged, 0);
    const file = path.join(tmp, 'recurrent.equalized.onnx');
    fs.writeFileSync(file, eq.bytes);
    const [s0, s1] = [await session(model), await session(file)];
    const feeds = randomFeeds(s0, { seed: 8, low: -1, high: 1 });
    assert.equal(maxRelativeError(await runAll(s0, feeds), await runAll(s1, feeds)).worst, 0);
  },
);

test(
  'compare: W pairs with W and R with R, by weight, node name or position; a QDQ copy differs as numpy says',
  { skip: missing },
  async () => {
    const made = await run('/usr/bin/python3', [path.join(root, 'tests', 'js', 'fixtures', 'recurrent_copies.py'), model, tmp]);
    assert.equal(made.code, 0, made.stderr);
    const ref = JSON.parse(made.stdout);
    const recurrentPairs = (c) => c.pairs.filter((p) => p.a.op !== 'MatMul');
    for (const [file, by] of [
      [model, 'weight'],
      [path.join(tmp, 'renamed_weights.onnx'), 'name'],
      [path.join(tmp, 'renamed_all.onnx'), 'position'],
    ]) {
      const c = await compare(model, file);
      assert.equal(c.summary.unmatchedA + c.summary.unmatchedB, 0, path.basename(file));
      assert.equal(recurrentPairs(c).length, 12);
      for (const p of recurrentPairs(c)) {
        assert.equal(p.matchedBy, by, `${p.a.name} ~ ${p.b.name}`);
        assert.equal(p.b.name.slice(-2), p.a.name.slice(-2), `${p.a.name} ~ ${p.b.name}: W with W, R with R`);
        assert.equal(p.tensor.sqnr, Infinity, p.a.name);
      }
    }
    // The QDQ copy: every float W and R quantized per gate row.
    const qdq = path.join(tmp, 'qdq.onnx');
    const c = await compare(model, qdq);
    assert.equal(c.summary.unmatchedA + c.summary.unmatchedB, 0);
    let checked = 0;
    for (const p of recurrentPairs(c)) {
      assert.equal(p.b.name, p.a.name);
      const r = ref[p.a.weight];
      if (!r) {
        assert.equal(p.a.name.startsWith('lstm_dq/'), true); // already quantized: the same in both
        assert.equal(p.tensor.sqnr, Infinity);
        continue;
      }
      assert.equal(p.b.weight, `${p.a.weight}_quantized`);
      assert.equal(p.b.quant.axis, 1);
      assert.ok(Math.abs(p.tensor.sqnr - r.sqnr) < 1e-6, `${p.a.name}: ${p.tensor.sqnr} vs numpy ${r.sqnr}`);
      assert.equal(p.tensor.maxAbsDiff, r.maxAbsDiff, p.a.name);
      checked++;
    }
    assert.equal(checked, 10);
    // The quantized copy is a valid model that computes nearly the same.
    const [s0, s1] = [await session(model), await session(qdq)];
    const feeds = randomFeeds(s0, { seed: 9, low: -1, high: 1 });
    assert.ok(maxRelativeError(await runAll(s0, feeds), await runAll(s1, feeds)).worst < 0.05);
  },
);

test('the CLI table lists the W and R layers of each recurrent node', { skip: missing }, async () => {
  const r = await runCli(['analyze', model, '--top', '20']);
  assert.equal(r.code, 0, r.stderr);
  for (const [node] of NODES) for (const part of ['W', 'R']) assert.ok(r.stdout.includes(`${node}/${part}`), `${node}/${part}`);
  assert.match(r.stdout, /13 weight layers/);
});
