// Cross Layer Equalization end to end: the equalized models run in onnxruntime-node
// and must compute what the originals compute; the statistics the report shows for the
// written weights must match the independent reference's reading of the written file;
// BatchNorm folding must match the UltraFace authors' own folded model.
import assert from 'node:assert/strict';
import fs from 'node:fs';
import os from 'node:os';
import path from 'node:path';
import { test } from 'node:test';
import { equalize } from '../../web/src/index.js';
import { Diff, compareStats } from './compare.mjs';
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
import { maskFlips, maxRelativeError, randomFeeds, runAll, session, sqnrDb, modelInputs } from './ort.mjs';

const tmp = fs.mkdtempSync(path.join(os.tmpdir(), 'quantlens-cle-'));
process.on('exit', () => fs.rmSync(tmp, { recursive: true, force: true }));
const python = (args) => run('/usr/bin/python3', args);

const realModels = [...sharedModelFiles(), ...fetchedModelFiles()];
const cleModels = generatedModelFiles().filter((f) => path.basename(f).startsWith('cle_'));
const SEEDS = [1, 2];
const TOLERANCE = 1e-4; // max |ref - test| / max |ref| per output

// Inputs of a model: the ranges in ort.mjs for the real models, U[-1, 1] for ours.
function feeds(file, sess, seed) {
  const spec = modelInputs[path.basename(file)] ?? { low: -1, high: 1 };
  return randomFeeds(sess, { seed, ...spec });
}

async function outputs(modelFile, inputsFile) {
  const sess = await session(modelFile);
  const feedSession = inputsFile === modelFile ? sess : await session(inputsFile);
  const out = [];
  for (const seed of SEEDS) out.push(await runAll(sess, feeds(inputsFile, feedSession, seed)));
  return out;
}

async function checkPreserved(file, options) {
  const name = path.basename(file);
  const r = await equalize(file, options);
  if (!r.summary.changed) return { name, changed: false };
  const out = path.join(tmp, name.replace(/\.onnx$/, '.eq.onnx'));
  fs.writeFileSync(out, r.bytes);
  // Where ReLU6 became Relu, the function to reproduce is the original with exactly
  // those nodes replaced (written by python3-onnx, not by us).
  let reference = file;
  if (r.relu6Replaced.length) {
    reference = path.join(tmp, name.replace(/\.onnx$/, '.relu.onnx'));
    const p = await python([path.join(root, 'tools/reference/replace_relu6.py'), file, reference, ...r.relu6Replaced]);
    assert.equal(p.code, 0, p.stderr);
  }
  const want = await outputs(reference, file);
  const got = await outputs(out, file);
  const { flips, total } = maskFlips(want, got, TOLERANCE);
  const err = maxRelativeError(want, got);
  return { name, changed: true, r, err, flips, total, out };
}

for (const file of [...realModels, ...cleModels]) {
  test(`equalized model computes the same function: ${path.basename(file)}`, async () => {
    const res = await checkPreserved(file, { biasAbsorption: false });
    if (!res.changed) return;
    assert.ok(
      res.flips <= 1e-3 * res.total,
      `${res.name}: ${res.flips} of ${res.total} output elements flipped between zero and non-zero`,
    );
    assert.ok(
      res.err.worst <= TOLERANCE,
      `${res.name}: max relative output error ${res.err.worst.toExponential(2)} > ${TOLERANCE} (${JSON.stringify(res.err.perOutput)})`,
    );
  });
}

test('the real models without ReLU6 or absorbable biases are unchanged in function under the default options too', async (t) => {
  if (!realModels.length) return t.skip('no real models (../shared/models absent and nothing fetched)');
  for (const file of realModels) {
    const r = await equalize(file);
    if (!r.summary.changed || r.relu6Replaced.length || r.biasAbsorptions) continue;
    const res = await checkPreserved(file, {});
    assert.ok(res.err.worst <= TOLERANCE || res.flips > 0, `${res.name}: ${res.err.worst}`);
  }
});

test('high-bias absorption is approximate by design and stays close: UltraFace', async (t) => {
  const file = path.join(sharedModels, 'pytorch', 'ultraface_version-RFB-320_without_postprocessing.onnx');
  if (!fs.existsSync(file)) return t.skip('../shared/models absent');
  const res = await checkPreserved(file, {});
  assert.ok(res.r.biasAbsorptions > 0, 'expected absorptions on UltraFace (Conv+BN+Relu into 1x1 convs)');
  const orig = await outputs(file, file);
  const got = await outputs(res.out, file);
  const s = sqnrDb(orig, got);
  // ReLU(x - c) = ReLU(x) - c only where x >= c = beta - 3|gamma|: uniform random inputs
  // are not the data the BN statistics describe, so some values fall below c.
  assert.ok(s.overall > 30, `output SQNR vs the original ${s.overall.toFixed(1)} dB`);
  for (const l of res.r.layers) if (l.absorbed) for (const c of l.absorbed) assert.ok(c >= 0);
});

test("BatchNorm folding matches the UltraFace authors' own folded model", async (t) => {
  const unfolded = path.join(sharedModels, 'pytorch', 'ultraface_version-RFB-320_without_postprocessing.onnx');
  const folded = path.join(sharedModels, 'pytorch', 'ultraface_version-RFB-320_simplified_bnfolded.onnx');
  if (!fs.existsSync(unfolded) || !fs.existsSync(folded)) return t.skip('../shared/models absent');
  const r = await equalize(unfolded, { maxIterations: 0, biasAbsorption: false });
  assert.equal(r.foldedBatchNorms.length, 35);
  const ours = path.join(tmp, 'ultraface.folded.onnx');
  fs.writeFileSync(ours, r.bytes);
  // Conv weights and biases, in graph order, read by python3-onnx from both files.
  const script = `
import json, sys, onnx, numpy as np
from onnx import numpy_helper
def convs(f):
    g = onnx.load(f).graph
    init = {i.name: numpy_helper.to_array(i) for i in g.initializer}
    out = []
    for n in g.node:
        if n.op_type == 'Conv':
            out.append((init[n.input[1]], init[n.input[2]] if len(n.input) > 2 else None))
    return out
a, b = convs(sys.argv[1]), convs(sys.argv[2])
worst_w = max(float(np.abs(x[0] - y[0]).max() / np.abs(y[0]).max()) for x, y in zip(a, b))
worst_b = max(float(np.abs(x[1] - y[1]).max() / max(np.abs(y[1]).max(), 1e-12)) for x, y in zip(a, b))
print(json.dumps({"n": [len(a), len(b)], "shapes": all(x[0].shape == y[0].shape for x, y in zip(a, b)),
                  "bias": all(x[1] is not None for x in a), "w": worst_w, "b": worst_b}))`;
  const p = await python(['-c', script, ours, folded]);
  assert.equal(p.code, 0, p.stderr);
  const cmp = JSON.parse(p.stdout);
  assert.deepEqual(cmp.n, [52, 52]);
  assert.ok(cmp.shapes && cmp.bias);
  assert.ok(cmp.w < 1e-5, `weights differ from the authors' folding by ${cmp.w} (relative to the layer's max)`);
  assert.ok(cmp.b < 1e-5, `biases differ by ${cmp.b}`);
  // And the outputs agree with the authors' folded model.
  const s = maxRelativeError(await outputs(folded, unfolded), await outputs(ours, unfolded));
  assert.ok(s.worst < TOLERANCE, JSON.stringify(s.perOutput));
});

test("the report's statistics after equalization are those of the written weights (independent reference)", async () => {
  const files = [...cleModels, ...realModels.filter((f) => /mlsd|deeplab|ultraface_version-RFB-320_without/.test(f))];
  for (const file of files) {
    const r = await equalize(file);
    if (!r.summary.changed) continue;
    const out = path.join(tmp, path.basename(file).replace(/\.onnx$/, '.stats.onnx'));
    fs.writeFileSync(out, r.bytes);
    const ref = await runReference(out);
    assert.equal(ref.code, 0, ref.stderr);
    const byWeight = new Map(JSON.parse(ref.stdout).layers.map((l) => [l.weight, l]));
    const d = new Diff();
    for (const l of r.layers) {
      const rl = byWeight.get(l.weight);
      if (!rl) {
        d.add(l.name, 'not found by the reference in the written model');
        continue;
      }
      const plain = JSON.parse(
        JSON.stringify(l.after, (k, v) =>
          ArrayBuffer.isView(v)
            ? Array.from(v, (x) => (Number.isFinite(x) ? x : null))
            : typeof v === 'number' && !Number.isFinite(v)
              ? null
              : v,
        ),
      );
      compareStats(d, `${path.basename(file)} ${l.name} after`, plain, rl);
    }
    assert.deepEqual(d.list.slice(0, 20), [], `${d.list.length} differences`);
  }
});

test('CLI: equalize writes a model, reports, and handles bad input with exit 2', async () => {
  const model = cleModels.find((f) => f.endsWith('cle_convnet.onnx'));
  assert.ok(model, 'models/generated/cle_convnet.onnx missing (run tools/make_test_models.py)');
  const out = path.join(tmp, 'cli.onnx');
  let r = await runCli(['equalize', model, '-o', out]);
  assert.equal(r.code, 0, r.stderr);
  assert.match(r.stdout, /8 of 8 weight layers changed, 1 sequences equalized; 2 BatchNorm folded, 1 ReLU6 replaced by Relu/);
  assert.match(r.stdout, /c1 -\[Relu\]-> c2_dw\* -\[ReLU6->Relu\]-> c3 -\[Relu, MaxPool, Pad\]-> c4_grouped/);
  assert.ok(fs.statSync(out).size > 0);

  r = await runCli(['equalize', model, '--json', '--keep-relu6', '--no-bias-absorption']);
  assert.equal(r.code, 0, r.stderr);
  const j = JSON.parse(r.stdout);
  assert.equal(j.schema, 'quantlens.equalization/1');
  assert.equal(j.options.keepRelu6, true);
  assert.equal(j.options.biasAbsorption, false);
  assert.deepEqual(j.relu6Replaced, []);
  assert.deepEqual(j.relu6Kept, ['relu6_2']);
  assert.equal(j.output, null);
  assert.ok(j.stops.some((s) => /ReLU6 kept/.test(s.reason)));
  assert.equal(typeof j.layers[0].before.sqnr.int8PerTensor, 'number');

  // Nothing to equalize is not an error.
  const yolox = path.join(sharedModels, 'pytorch', 'yolox_nano.onnx');
  if (fs.existsSync(yolox)) {
    r = await runCli(['equalize', yolox]);
    assert.equal(r.code, 0, r.stderr);
    assert.match(r.stdout, /nothing to equalize among 113 weight layers/);
    assert.match(r.stdout, /Mul does not commute|Sigmoid/);
  }

  const junk = path.join(tmp, 'junk.onnx');
  fs.writeFileSync(junk, Buffer.from([0x0a, 0xff, 0xff, 0xff, 0x0f, 0x01]));
  r = await runCli(['equalize', junk, '-o', path.join(tmp, 'x.onnx')]);
  assert.equal(r.code, 2);
  assert.match(r.stderr, /INVALID_MODEL/);
  assert.ok(!fs.existsSync(path.join(tmp, 'x.onnx')));
  r = await runCli(['equalize', path.join(tmp, 'missing.onnx')]);
  assert.equal(r.code, 2);
  r = await runCli(['equalize', model, '--iterations', '-1']);
  assert.equal(r.code, 2);
});

test('API: bad options are INVALID_ARGUMENT; the same call twice gives the same bytes', async () => {
  const model = cleModels.find((f) => f.endsWith('cle_mlp.onnx'));
  await assert.rejects(equalize(model, { maxIterations: -1 }), { code: 'INVALID_ARGUMENT' });
  await assert.rejects(equalize(model, { keepRelu6: 'yes' }), { code: 'INVALID_ARGUMENT' });
  const bytes = fs.readFileSync(model);
  const a = await equalize(bytes);
  const b = await equalize(new Uint8Array(bytes).buffer);
  assert.deepEqual(a.bytes, b.bytes);
  assert.equal(a.foldedBatchNorms[0].position, 'before');
  assert.equal(a.sequences[0].layers.join(' '), 'g1 g2 m3 m4');
});

// A weight of 2e15 is beyond what the statistics accept (1e15), so its "before" cannot be
// computed; balanced against the next layer it ends near sqrt(2e15), which they accept.
// The layer is still equalized, its record says why "before" is missing, the summary
// leaves it out, and the CLI table prints n/a instead of the zeros it holds.
test('a layer whose statistics before scaling cannot be computed says so everywhere', async () => {
  const file = path.join(tmp, 'huge_before.onnx');
  const made = await python([
    '-c',
    `
import numpy as np, onnx, sys
from onnx import TensorProto, helper, numpy_helper
a = numpy_helper.from_array(np.array([2e15, 1.0], np.float32).reshape(2, 1, 1, 1), 'wa')
b = numpy_helper.from_array(np.array([1.0, 0.3], np.float32).reshape(1, 2, 1, 1), 'wb')
g = helper.make_graph([
    helper.make_node('Conv', ['x', 'wa'], ['h'], name='A'),
    helper.make_node('Relu', ['h'], ['r'], name='relu'),
    helper.make_node('Conv', ['r', 'wb'], ['y'], name='B')],
  'huge', [helper.make_tensor_value_info('x', TensorProto.FLOAT, [1, 1, 4, 4])],
  [helper.make_tensor_value_info('y', TensorProto.FLOAT, [1, 1, 4, 4])], [a, b])
m = helper.make_model(g, opset_imports=[helper.make_opsetid('', 13)])
onnx.checker.check_model(m)
onnx.save(m, sys.argv[1])
`,
    file,
  ]);
  assert.equal(made.code, 0, made.stderr);
  const r = await equalize(file);
  const a = r.layers.find((l) => l.name === 'A');
  const b = r.layers.find((l) => l.name === 'B');
  assert.match(a.beforeError, /statistics of A before equalization could not be computed: .*1e15/);
  assert.equal(b.beforeError, null);
  assert.ok(Number.isFinite(a.after.sqnr.int8PerTensor) && a.after.sqnr.int8PerTensor !== 0);
  assert.equal(r.summary.int8PerTensor.worstBefore, b.before.sqnr.int8PerTensor, 'A is left out of the before summary');
  const cli = await runCli(['equalize', file]);
  assert.equal(cli.code, 0, cli.stderr);
  const row = cli.stdout.split('\n').find((l) => /^ *\d+ {2}A /.test(l));
  assert.match(row, /^ *1 {2}A +Conv +n\/a +\d/, row);
  assert.match(cli.stdout, /"before" is n\/a for 1 layer \(left out of the means\): statistics of A before equalization/);
});
