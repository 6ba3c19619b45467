// MatMulNBits (com.microsoft), read, dequantized and analysed. No MatMulNBits file is at
// hand, so tests/js/fixtures/nbits_models.py generates models with the packing of ONNX
// Runtime's RTN quantizer (bits 4 and 8, with and without zero points, K a multiple of
// block_size and not, block sizes 16/32/128, float and float16 scales) and their numpy
// dequantization. Checked here:
//   1. onnxruntime-node runs each model: A = the identity gives back W [K, N], equal to the
//      numpy dequantization (independent proof of the semantics both sides assume);
//   2. QuantLens's per-channel statistics equal those of the weight onnxruntime computed,
//      and all of its statistics equal the independent reference (tools/reference/analyze_ref.py);
//   3. bad files are errors with a reason, and what is not read is skipped with a reason.
import assert from 'node:assert/strict';
import fs from 'node:fs';
import os from 'node:os';
import path from 'node:path';
import { test } from 'node:test';
import { Diff, compareStats } from './compare.mjs';
import { root, run, runCli, runReference } from './helpers.mjs';
import { ort, session } from './ort.mjs';

const tmp = fs.mkdtempSync(path.join(os.tmpdir(), 'quantlens-nbits-'));
process.on('exit', () => fs.rmSync(tmp, { recursive: true, force: true }));
const made = await run('/usr/bin/python3', [path.join(root, 'tests', 'js', 'fixtures', 'nbits_models.py'), tmp]);
assert.equal(made.code, 0, made.stderr);
const expected = JSON.parse(fs.readFileSync(path.join(tmp, 'expected.json'), 'utf8'));

// float16 <-> float32 (IEEE 754 binary16), for the float16 models' input and output.
function halfToFloat(h) {
  const e = (h >> 10) & 31;
  const m = h & 1023;
  const v = e === 0 ? m * 2 ** -24 : e === 31 ? (m ? NaN : Infinity) : (1 + m / 1024) * 2 ** (e - 15);
  return h & 0x8000 ? -v : v;
}
const HALF_ONE = 0x3c00;

async function ortWeight(file, e) {
  const s = await session(file);
  const { K, N } = e;
  const n = K * K;
  const a = e.float16 ? new Uint16Array(n) : new Float32Array(n);
  for (let i = 0; i < K; ++i) a[i * K + i] = e.float16 ? HALF_ONE : 1;
  const zeros = e.float16 ? new Uint16Array(n) : new Float32Array(n);
  const type = e.float16 ? 'float16' : 'float32';
  const y = (await s.run({ A: new ort.Tensor(type, a, [K, K]) })).Y;
  const b = (await s.run({ A: new ort.Tensor(type, zeros, [K, K]) })).Y; // the bias alone (zeros without one)
  assert.deepEqual(y.dims, [K, N]);
  const val = (t, i) => (e.float16 ? halfToFloat(t.data[i]) : t.data[i]);
  return Array.from({ length: K * N }, (_, i) => val(y, i) - val(b, i));
}

for (const [name, e] of Object.entries(expected)) {
  test(`MatMulNBits ${name}: onnxruntime, the numpy reference and QuantLens agree`, async (t) => {
    const file = path.join(tmp, `${name}.onnx`);
    const { K, N, W } = e;
    // 1. onnxruntime's dequantized weight against numpy's.
    const w = await ortWeight(file, e);
    const absMax = Math.max(...W.map(Math.abs));
    // float16 outputs (and W + bias - bias) round to 11 bits; float32 ones are exact.
    const tol = e.float16 ? absMax * 2 ** -9 : 1e-6 * absMax;
    let worst = 0;
    for (let i = 0; i < K * N; ++i) worst = Math.max(worst, Math.abs(w[i] - W[i]));
    assert.ok(worst <= tol, `${name}: onnxruntime's W differs from numpy's by ${worst} (tolerance ${tol})`);
    t.diagnostic(`onnxruntime vs numpy W: max |diff| ${worst} (max |W| ${absMax})`);
    // 2. QuantLens.
    const out = await runCli(['analyze', '--json', file]);
    assert.equal(out.code, 0, out.stderr);
    const doc = JSON.parse(out.stdout);
    assert.deepEqual(doc.skipped, []);
    assert.equal(doc.layers.length, 1);
    const l = doc.layers[0];
    assert.equal(l.op, 'MatMulNBits');
    assert.deepEqual(l.shape, [N, K]);
    assert.equal(l.channelAxis, 0);
    assert.equal(l.channels.count, N);
    assert.equal(l.bias, e.bias ? 'W_bias' : null);
    assert.equal(l.quant.via, 'MatMulNBits');
    assert.equal(l.quant.granularity, 'per-block');
    assert.equal(l.quant.bits, e.bits);
    assert.equal(l.quant.blockSize, e.blockSize);
    assert.equal(l.quant.symmetric, e.symmetric);
    assert.equal(l.quant.scale.length, N * Math.ceil(K / e.blockSize));
    // Per output channel n (column n of W), from numpy's and onnxruntime's W.
    for (let c = 0; c < N; ++c) {
      const col = Array.from({ length: K }, (_, k) => W[k * N + c]);
      assert.equal(Math.fround(l.channels.min[c]), Math.fround(Math.min(...col)), `min of channel ${c}`);
      assert.equal(Math.fround(l.channels.max[c]), Math.fround(Math.max(...col)), `max of channel ${c}`);
      if (!e.float16) {
        const ortCol = Array.from({ length: K }, (_, k) => w[k * N + c]);
        assert.equal(Math.fround(l.channels.min[c]), Math.fround(Math.min(...ortCol)));
        assert.equal(Math.fround(l.channels.max[c]), Math.fround(Math.max(...ortCol)));
      }
    }
    // Every statistic against the independent reference.
    const ref = await runReference(file);
    assert.equal(ref.code, 0, ref.stderr);
    const r = JSON.parse(ref.stdout).layers[0];
    const d = new Diff();
    for (const k of ['name', 'op', 'weight', 'shape', 'dtype', 'channelAxis', 'bias']) d.eq(k, l[k], r[k]);
    d.eq(
      'quant',
      [l.quant.dtype, l.quant.bits, l.quant.blockSize, l.quant.symmetric, l.quant.zeroPoint],
      [r.quant.dtype, r.quant.bits, r.quant.blockSize, r.quant.symmetric, r.quant.zeroPoint],
    );
    d.arrays('quant.scale', l.quant.scale, r.quant.scale, (wh, a, b) => d.close(wh, a, b, 1e-7 * Math.abs(b)));
    compareStats(d, name, l, r);
    assert.deepEqual(d.list.slice(0, 25), [], `${name}: ${d.list.length} differences from the reference`);
  });
}

test('MatMulNBits: bad sizes are errors, what is not read is skipped, with a reason', async () => {
  const analyze = async (name) => {
    const out = await runCli(['analyze', '--json', path.join(tmp, `${name}.onnx`)]);
    return { code: out.code, doc: out.code === 0 ? JSON.parse(out.stdout) : null, stderr: out.stderr };
  };
  for (const [name, why] of [
    ['bad_short_scales', /scales 'W_scales' hold 7 values, expected 8/],
    ['bad_short_zero_points', /zero_points hold 3 bytes, expected 4/],
  ]) {
    const { code, stderr } = await analyze(name);
    assert.equal(code, 2, stderr); // INVALID_MODEL, as for other inconsistent quantization parameters
    assert.match(stderr, /INVALID_MODEL/);
    assert.match(stderr, why, name);
  }
  const t = await analyze('bad_truncated_B');
  assert.equal(t.doc.layers.length, 0);
  assert.match(
    t.doc.skipped[0],
    /B of shape \[4, 31\] is not \[N, ceil\(K \/ block_size\), block_size \* bits \/ 8\] = \[4, 2, 16\]/,
  );
  const g = await analyze('skip_g_idx');
  assert.equal(g.doc.layers.length, 0);
  assert.match(g.doc.skipped[0], /g_idx .* is not read/);
  const b = await analyze('skip_bits2');
  assert.equal(b.doc.layers.length, 0);
  assert.match(b.doc.skipped[0], /bits = 2 is not read/);
});
