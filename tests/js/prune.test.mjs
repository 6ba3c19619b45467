// Channel pruning and static shapes (issue 15) against independent references, through the
// native driver build/native/quantlens_prune (the core's compress/prune and graph/shapes;
// nothing of it is exposed to JS yet):
// - every layer's input-channel norms and pruning curve SQNRs equal numpy's
//   (tools/reference/prune_ref.py) on every real model;
// - every Conv output shape that onnx.shape_inference infers equals the core's;
// - a model pruned by one channel (the smallest-norm one) runs in onnxruntime-node and
//   computes what the original computes with that channel's weights in the pruned layer
//   set to zero (numpy), within 1e-4: the right channel went, on both sides.
import assert from 'node:assert/strict';
import fs from 'node:fs';
import os from 'node:os';
import path from 'node:path';
import { test } from 'node:test';
import { fetchedModelFiles, root, run, sharedModelFiles } from './helpers.mjs';
import { modelInputs, randomFeeds, runAll, session } from './ort.mjs';

const bin = path.join(root, 'build', 'native', 'quantlens_prune');
const refScript = path.join(root, 'tools', 'reference', 'prune_ref.py');
const tmp = fs.mkdtempSync(path.join(os.tmpdir(), 'quantlens-prune-'));
process.on('exit', () => fs.rmSync(tmp, { recursive: true, force: true }));

const realModels = [...sharedModelFiles(), ...fetchedModelFiles()];
const TOLERANCE = 1e-4; // max |ref - test| / max |ref| per output
const PER_MODEL = 4; // pruned layers run in onnxruntime per model

async function core(args) {
  const r = await run(bin, args);
  assert.equal(r.code, 0, `quantlens_prune ${args.join(' ')}: ${r.stderr}`);
  return JSON.parse(r.stdout);
}
async function reference(args) {
  const r = await run('/usr/bin/python3', [refScript, ...args]);
  assert.equal(r.code, 0, `prune_ref.py ${args.join(' ')}: ${r.stderr}`);
  return args.includes('-o') ? null : JSON.parse(r.stdout);
}

test('the native driver is built', () => {
  assert.ok(fs.existsSync(bin), `${bin} is missing: run bash tools/build.sh`);
});

test('norms and curves equal numpy on every real model', { skip: realModels.length === 0 && 'no real models' }, async () => {
  let layers = 0,
    prunable = 0;
  const reasons = new Map();
  for (const file of realModels) {
    const [c, r] = await Promise.all([core([file]), reference([file])]);
    const byName = new Map(c.layers.map((l) => [l.name, l]));
    for (const rl of r.layers) {
      const cl = byName.get(rl.name);
      assert.ok(cl, `${path.basename(file)}: the core has no layer ${rl.name}`);
      assert.equal(cl.norms.length, rl.norms.length, `${rl.name}: channel count`);
      for (let i = 0; i < rl.norms.length; i++) {
        const a = cl.norms[i],
          b = rl.norms[i];
        assert.ok(Math.abs(a - b) <= 1e-9 * Math.max(Math.abs(b), 1e-30), `${rl.name} channel ${i}: norm ${a} vs numpy ${b}`);
      }
      layers++;
      if (cl.points.length === 0) {
        assert.ok(cl.refused.length > 0, `${rl.name}: no points and no reason`);
        const key = cl.refused.replace(/'[^']*'/g, "'…'");
        reasons.set(key, (reasons.get(key) ?? 0) + 1);
        continue;
      }
      prunable++;
      assert.equal(cl.points.length, rl.sqnr.length, `${rl.name}: one point per kept count`);
      for (let k = 0; k < rl.sqnr.length; k++) {
        const a = cl.points[k].sqnr,
          b = rl.sqnr[k];
        assert.equal(cl.points[k].keep, k + 1);
        if (b === null) assert.equal(a, null, `${rl.name} k=${k + 1}: +inf expected`);
        else assert.ok(Math.abs(a - b) <= 1e-9, `${rl.name} k=${k + 1}: SQNR ${a} vs numpy ${b}`);
        if (k > 0) assert.ok(cl.points[k].params >= cl.points[k - 1].params);
      }
    }
  }
  console.log(`# ${layers} layers checked against numpy, ${prunable} prunable; refusals:`);
  for (const [why, n] of [...reasons].sort((a, b) => b[1] - a[1])) console.log(`#   ${n} x ${why}`);
  assert.ok(prunable > 0, 'no prunable layer in the real models');
});

test(
  'Conv output shapes equal onnx.shape_inference on every real model',
  { skip: realModels.length === 0 && 'no real models' },
  async () => {
    let compared = 0;
    for (const file of realModels) {
      const [c, r] = await Promise.all([core([file]), reference([file])]);
      for (const [value, dims] of Object.entries(r.convShapes)) {
        assert.deepEqual(c.shapes[value], dims, `${path.basename(file)}: Conv output ${value}`);
        compared++;
      }
      // MACs wherever the Conv output is known: |output| * |W| / O, checked from onnx's shapes
      // only through the shapes above; here every Conv with a known output has MACs.
      for (const l of c.layers) if (l.op === 'Conv' && l.points.length) assert.ok(l.points[0].macs <= l.macs);
    }
    console.log(`# ${compared} Conv output shapes equal onnx.shape_inference's`);
    assert.ok(compared > 100);
  },
);

function feedsOf(file, sess) {
  const spec = modelInputs[path.basename(file)] ?? { low: -1, high: 1 };
  return randomFeeds(sess, { seed: 1, ...spec });
}

// max |a - b| / max |a| per output over the elements that are zero in both or in neither,
// and how many flipped between zero and non-zero: M-LSD's `scores` are masked by
// Equal(x, MaxPool(x)), so float noise (the pruned Conv sums fewer terms) can move a peak;
// up to 0.1% of the elements may flip, as in equalize.test.mjs.
function compareMasked(want, got) {
  let worst = 0,
    flips = 0,
    total = 0;
  for (const name of Object.keys(want)) {
    const a = want[name].data,
      b = got[name].data;
    assert.equal(a.length, b.length, `output ${name}: sizes differ`);
    let maxDiff = 0,
      maxRef = 0;
    for (let i = 0; i < a.length; i++) {
      maxRef = Math.max(maxRef, Math.abs(a[i]));
      if ((a[i] === 0) !== (b[i] === 0)) {
        flips++;
        continue;
      }
      const d = Math.abs(a[i] - b[i]);
      maxDiff = Number.isNaN(d) ? Infinity : Math.max(maxDiff, d);
    }
    total += a.length;
    worst = Math.max(worst, maxRef > 0 ? maxDiff / maxRef : maxDiff);
  }
  return { worst, flips, total };
}

async function checkPruned(file, layer) {
  const base = path.join(tmp, `${path.basename(file, '.onnx')}.${layer.replace(/[^A-Za-z0-9_.-]/g, '_')}`);
  const pruned = `${base}.pruned.onnx`,
    zeroed = `${base}.zeroed.onnx`;
  const { channels, dropped } = await core([file, '--prune', layer, '--keep', '-1', '-o', pruned]);
  assert.equal(dropped.length, 1);
  await reference([file, '--zero', layer, String(dropped[0]), '-o', zeroed]);
  const sz = await session(zeroed),
    sp = await session(pruned);
  const feeds = feedsOf(file, sz);
  const want = await runAll(sz, feeds),
    got = await runAll(sp, feeds);
  const { worst, flips, total } = compareMasked(want, got);
  const what = `${path.basename(file)} ${layer} (${channels} -> ${channels - 1})`;
  assert.ok(worst <= TOLERANCE, `${what}: max relative error ${worst}`);
  assert.ok(flips <= 1e-3 * total, `${what}: ${flips} of ${total} elements flipped between zero and non-zero`);
  // The pruned layer really lost a channel.
  const after = await core([pruned]);
  const l = after.layers.find((x) => x.name === layer);
  assert.equal(l.norms.length, channels - 1);
  return worst;
}

test(
  'a model pruned by one channel computes what the original does with that channel zeroed',
  { skip: realModels.length === 0 && 'no real models' },
  async () => {
    let checked = 0,
      worstSeen = 0;
    for (const file of realModels) {
      const c = await core([file]);
      const ok = c.layers.filter((l) => l.points.length > 1).map((l) => l.name);
      if (ok.length === 0) continue;
      // Spread over the network: first, last, and evenly between.
      const pick = [
        ...new Set(
          Array.from(
            { length: Math.min(PER_MODEL, ok.length) },
            (_, i) => ok[Math.round((i * (ok.length - 1)) / Math.max(1, PER_MODEL - 1))],
          ),
        ),
      ];
      for (const layer of pick) {
        worstSeen = Math.max(worstSeen, await checkPruned(file, layer));
        checked++;
      }
    }
    console.log(`# ${checked} pruned layers run in onnxruntime; worst max relative error ${worstSeen.toExponential(2)}`);
    assert.ok(checked > 5);
  },
);

test('every op on the way, in onnxruntime: BatchNormalization, PRelu, SiLU, pools, a classifier head', async () => {
  const file = path.join(tmp, 'ops.onnx');
  const py = `
import sys, numpy as np, onnx
from onnx import helper, numpy_helper, TensorProto
rng = np.random.default_rng(5)
def w(name, *shape, scale=0.3):
    return numpy_helper.from_array((rng.standard_normal(shape) * scale).astype(np.float32), name)
C = 6
inits = [w('w1', C, 3, 3, 3), w('b1', C), w('bn_s', C), w('bn_b', C), w('bn_m', C),
         numpy_helper.from_array(rng.uniform(0.5, 2, C).astype(np.float32), 'bn_v'),
         w('slope', C, 1, 1), w('w2', C, C, 1, 1), w('b2', C), w('k', 1, C, 1, 1),
         w('w3', C, C, 3, 3), w('wf', 4, C), w('bf', 4)]
nodes = [
  helper.make_node('Conv', ['x', 'w1', 'b1'], ['a'], name='c1', pads=[1, 1, 1, 1]),
  helper.make_node('BatchNormalization', ['a', 'bn_s', 'bn_b', 'bn_m', 'bn_v'], ['n']),
  helper.make_node('PRelu', ['n', 'slope'], ['p']),
  helper.make_node('MaxPool', ['p'], ['mp'], kernel_shape=[2, 2], strides=[2, 2]),
  helper.make_node('Conv', ['mp', 'w2', 'b2'], ['c'], name='c2'),
  helper.make_node('Sigmoid', ['c'], ['s']),
  helper.make_node('Mul', ['c', 's'], ['silu']),
  helper.make_node('Mul', ['silu', 'k'], ['scaled']),
  helper.make_node('Conv', ['scaled', 'w3'], ['d'], name='c3', pads=[1, 1, 1, 1]),
  helper.make_node('Relu', ['d'], ['r']),
  helper.make_node('GlobalAveragePool', ['r'], ['g']),
  helper.make_node('Flatten', ['g'], ['f']),
  helper.make_node('Gemm', ['f', 'wf', 'bf'], ['y'], name='fc', transB=1),
]
g = helper.make_graph(nodes, 'ops', [helper.make_tensor_value_info('x', TensorProto.FLOAT, [1, 3, 8, 8])],
                      [helper.make_tensor_value_info('y', TensorProto.FLOAT, [1, 4])], inits)
m = helper.make_model(g, opset_imports=[helper.make_opsetid('', 13)])
m.ir_version = 8
m = onnx.shape_inference.infer_shapes(m)  # value_info for every value: the pruned ones must go
onnx.checker.check_model(m, full_check=True)
onnx.save(m, sys.argv[1])
`;
  const made = await run('/usr/bin/python3', ['-c', py, file]);
  assert.equal(made.code, 0, made.stderr);
  const c = await core([file]);
  const byName = Object.fromEntries(c.layers.map((l) => [l.name, l]));
  assert.equal(byName.c1.refused, "'x' is a graph input: no layer produces those channels (the model's input cannot be pruned)");
  for (const name of ['c2', 'c3', 'fc']) assert.equal(byName[name].refused, '', `${name}: ${byName[name].refused}`);
  // Weight parameters only: c1's weight row (27) per channel (its bias, BatchNormalization's
  // 4 values and the PRelu slope go too, but are not weight parameters).
  assert.equal(byName.c2.points[0].elsewhere, 27 * 5);
  // c3's: c2's weight row (6) (its bias and the per-channel Mul constant go too).
  assert.equal(byName.c3.points[0].elsewhere, 6 * 5);
  assert.equal(byName.fc.points[0].elsewhere, 6 * 9 * 5); // c3 has no bias
  assert.equal(byName.c2.macs, 4 * 4 * 6 * 6);
  assert.equal(byName.fc.macs, 4 * 6);
  for (const name of ['c2', 'c3', 'fc']) await checkPruned(file, name);
  // A few channels more: keep 2 of 6 in c3 still runs, and the output shape is unchanged.
  const pruned = path.join(tmp, 'ops.keep2.onnx');
  await core([file, '--prune', 'c3', '--keep', '2', '-o', pruned]);
  const s = await session(pruned);
  const out = await runAll(s, randomFeeds(s, { seed: 3, low: -1, high: 1 }));
  assert.deepEqual(out.y.dims, [1, 4]);
});
