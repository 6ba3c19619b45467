// Weights stored as float_data (onnx.helper.make_tensor without raw=True, Caffe2, some
// TensorFlow converters: one packed field of little-endian float32 values) are left in the
// file and streamed as raw_data is (onnx/skim.cpp, analysis::markDeferred), so a model of
// any size is read in bounded memory whichever field holds its weights. analyze, compare
// and equalize give on it what they give on the same model stored as raw_data.
import assert from 'node:assert/strict';
import fs from 'node:fs';
import os from 'node:os';
import path from 'node:path';
import { after, test } from 'node:test';
import { analyze, compare, equalize, toJSON } from '../../web/src/index.js';
import { bytes, concat, floatsLE, graph, int, intAttr, model, msg, node, normals, str, tensor } from './pb.mjs';

const tmp = fs.mkdtempSync(path.join(os.tmpdir(), 'ql-typed-'));
after(() => fs.rmSync(tmp, { recursive: true, force: true }));

// Gemm (transB) -> Relu -> Gemm -> Relu -> Gemm: a sequence CLE equalizes. The weights
// (96 KB, 36 KB and 6 KB) have channels of very different ranges; `typed` stores every
// weight as float_data, else as raw_data. Biases stay raw_data.
function mlp(typed) {
  const shapes = [
    [96, 256],
    [96, 96],
    [16, 96],
  ];
  const inits = [];
  const nodes = [];
  let input = 'x';
  shapes.forEach(([n, c], k) => {
    const w = normals(n * c, 11 + k);
    for (let o = 0; o < n; o++) for (let i = 0; i < c; i++) w[o * c + i] *= o % 7 === 0 ? 30 : o % 5 === 0 ? 0.02 : 1;
    const name = `fc${k}`;
    const dims = [int(1, n), int(1, c)];
    inits.push(
      typed
        ? concat(...dims, int(2, 1), str(8, `${name}.w`), bytes(4, floatsLE(w)))
        : tensor({ name: `${name}.w`, dims: [n, c], raw: floatsLE(w) }),
      tensor({ name: `${name}.b`, dims: [n], raw: floatsLE(normals(n, 99 + k)) }),
    );
    const out = k === shapes.length - 1 ? 'y' : `${name}.y`;
    nodes.push(
      node({ inputs: [input, `${name}.w`, `${name}.b`], outputs: [out], name, op: 'Gemm', attrs: [intAttr('transB', 1)] }),
    );
    if (k < shapes.length - 1) {
      nodes.push(node({ inputs: [out], outputs: [`${name}.r`], name: `${name}_relu`, op: 'Relu' }));
      input = `${name}.r`;
    }
  });
  // GraphProto input (11) and output (12), ValueInfoProto name (1) alone
  return model(concat(graph({ nodes, inits }), msg(11, str(1, 'x')), msg(12, str(1, 'y'))));
}

const files = () => {
  const raw = path.join(tmp, 'raw.onnx');
  const typed = path.join(tmp, 'typed.onnx');
  fs.writeFileSync(raw, mlp(false));
  fs.writeFileSync(typed, mlp(true));
  return { raw, typed };
};

test('analyze: float_data weights give the raw_data model’s layers, from a path (streamed) and a Blob (whole)', async () => {
  const { raw, typed } = files();
  const want = toJSON(await analyze(raw)).layers;
  assert.equal(want.length, 3);
  assert.deepEqual(toJSON(await analyze(typed)).layers, want);
  assert.deepEqual(toJSON(await analyze(new Blob([fs.readFileSync(typed)]))).layers, want);
});

test('compare: float_data weights against the same raw_data weights are identical, pair by pair', async () => {
  const { raw, typed } = files();
  const c = await compare(typed, raw);
  assert.equal(c.pairs.length, 3);
  assert.equal(c.summary.identical, 3);
});

test('equalize: float_data weights equalize to the raw_data model’s weights', async () => {
  const { raw, typed } = files();
  const a = await equalize(raw);
  const b = await equalize(typed);
  assert.equal(b.sequences.length, 1);
  assert.ok(b.layers.length >= 3, 'nothing was equalized');
  // Both written models hold the same equalized weights and biases.
  const c = await compare(a.bytes, b.bytes);
  assert.equal(c.summary.identical, 3);
  const la = toJSON(await analyze(a.bytes)).layers;
  assert.deepEqual(toJSON(await analyze(b.bytes)).layers, la);
});
