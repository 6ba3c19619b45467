// compare() streams: a model read from a path or bytes is skimmed and each pair's weights
// are read a piece at a time (compare::PairStream); a Blob outside a worker is read whole
// into the heap and every weight compared whole (compare::comparePair). Both must give the
// same document, bit for bit, on every model. External data is read as analyze() reads it.
import assert from 'node:assert/strict';
import fs from 'node:fs';
import os from 'node:os';
import path from 'node:path';
import { test, after } from 'node:test';
import { compare } from '../../web/src/index.js';
import { fetchedModelFiles, generatedModelFiles, run, sharedModelFiles } from './helpers.mjs';

const models = [...fetchedModelFiles(), ...sharedModelFiles(), ...generatedModelFiles()];
const tmp = fs.mkdtempSync(path.join(os.tmpdir(), 'ql-compare-stream-'));
after(() => fs.rmSync(tmp, { recursive: true, force: true }));

// The pairs with the model names left out (a Blob is named 'model.onnx').
const numbers = (doc) => ({ pairs: doc.pairs, unmatched: doc.unmatched, summary: doc.summary });

test('streamed pairs equal pairs compared whole, on every model', { skip: !models.length && 'no models' }, async () => {
  let streamedModels = 0;
  for (const f of models) {
    const bytes = fs.readFileSync(f);
    if (f.endsWith('external_data.onnx')) continue; // below: a Blob has no folder to find its data in
    const streamed = await compare(f, bytes);
    const whole = await compare(new Blob([bytes]), new Blob([bytes]));
    assert.deepEqual(numbers(streamed), numbers(whole), f);
    if (bytes.length > 1 << 20) streamedModels++;
  }
  assert.ok(streamedModels >= 1 || !fetchedModelFiles().length, 'at least one model has weights large enough to stream');
});

// Pieces of 2^20 elements: a weight of more than that crosses piece boundaries mid-channel.
test('a weight larger than one piece, quantized against float, equals the whole comparison', async () => {
  const f = path.join(tmp, 'big.onnx');
  const q = path.join(tmp, 'big_q.onnx');
  const py = `
import numpy as np, onnx
from onnx import helper, TensorProto, numpy_helper
rng = np.random.default_rng(7)
w = (rng.standard_normal((1500, 1001)) * rng.uniform(0.1, 3, (1500, 1))).astype(np.float32)
w[3, 5] = 40.0
def model(nodes, inits, name):
    g = helper.make_graph(nodes, 'g', [helper.make_tensor_value_info('x', TensorProto.FLOAT, [1, 1001])],
                          [helper.make_tensor_value_info('y', TensorProto.FLOAT, [1, 1500])], inits)
    onnx.save(helper.make_model(g, opset_imports=[helper.make_opsetid('', 13)]), name)
model([helper.make_node('Gemm', ['x', 'W'], ['y'], name='fc', transB=1)], [numpy_helper.from_array(w, 'W')], '${f}')
s = (np.abs(w).max(axis=1) / 127).astype(np.float32)
codes = np.clip(np.round(w / s[:, None]), -127, 127).astype(np.int8)
model([helper.make_node('DequantizeLinear', ['Wq', 's', 'z'], ['W'], axis=0),
       helper.make_node('Gemm', ['x', 'W'], ['y'], name='fc', transB=1)],
      [numpy_helper.from_array(codes, 'Wq'), numpy_helper.from_array(s, 's'),
       numpy_helper.from_array(np.zeros(1500, np.int8), 'z')], '${q}')
`;
  const r = await run('/usr/bin/python3', ['-c', py]);
  assert.equal(r.code, 0, r.stderr);
  const streamed = await compare(f, q);
  const whole = await compare(new Blob([fs.readFileSync(f)]), new Blob([fs.readFileSync(q)]));
  assert.equal(streamed.pairs.length, 1);
  assert.ok(streamed.pairs[0].comparable && streamed.pairs[0].b.quant);
  assert.ok(streamed.pairs[0].tensor.sqnr > 20 && streamed.pairs[0].tensor.sqnr < 80);
  assert.deepEqual(numbers(streamed), numbers(whole));
});

const ext = generatedModelFiles().find((f) => path.basename(f) === 'external_data.onnx');
test('external data: read beside the model, or supplied per side', { skip: !ext && 'generated models absent' }, async () => {
  const location = path.basename(ext.replace(/\.onnx$/, '.bin'));
  const bin = fs.readFileSync(ext.replace(/\.onnx$/, '.bin'));
  const bytes = fs.readFileSync(ext);
  // An inline copy written by python onnx (which loads the external data itself), read whole.
  const inline = path.join(tmp, 'inline.onnx');
  const r = await run('/usr/bin/python3', ['-c', `import onnx; onnx.save(onnx.load('${ext}'), '${inline}')`]);
  assert.equal(r.code, 0, r.stderr);
  const inlineBlob = new Blob([fs.readFileSync(inline)]);
  const reference = await compare(inlineBlob, inlineBlob);
  const fromPath = await compare(ext, ext);
  assert.ok(fromPath.pairs.length >= 3);
  assert.equal(fromPath.summary.comparable, fromPath.pairs.length);
  assert.equal(fromPath.summary.identical, fromPath.pairs.length);
  assert.deepEqual(numbers(fromPath), numbers(reference));
  const mixed = await compare(ext, inlineBlob);
  assert.deepEqual(numbers(mixed), numbers(reference));
  const supplied = await compare(bytes, new Blob([bytes]), {
    externalData: { a: { [location]: bin }, b: { [location]: new Blob([bin]) } },
  });
  assert.deepEqual(numbers(supplied), numbers(reference));
  // Missing on one side: those pairs are not comparable, naming the side and the file.
  const missing = await compare(ext, bytes);
  const external = missing.pairs.filter((p) => !p.comparable);
  assert.ok(external.length >= 1);
  for (const p of external) assert.match(p.reason, new RegExp(`^B: .*'${location}' was not provided`));
  await assert.rejects(compare(ext, ext, { externalData: 3 }), (e) => e.code === 'INVALID_ARGUMENT');
});
