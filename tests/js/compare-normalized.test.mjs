// compare() pairing layers whose names differ only by a quantizer's suffixes, on real
// models. No real file quantized by onnxruntime is at hand, so the quantized copies are
// built with onnxruntime's naming: tools/reference/quantize_qdq.py writes W_quantized /
// W_scale / W_zero_point and "W_DequantizeLinear" (onnxruntime's QDQ names; QLinearConv
// keeps the node name), and tests/js/fixtures/quantizer_names.py then appends "_quant" to
// every layer node's name (onnxruntime's QOperator quantizer names QLinearConv /
// ConvInteger / QLinearMatMul / MatMulInteger nodes node.name + "_quant") and, in one
// copy, renames every weight to an unrelated "onnx::W_<k>" so that only node names can pair.
// No layer of a copy keeps its weight name or its node name, so without the normalised
// rules every pair would be by position; with them, none is (except, in the copy with
// renumbered weights, the layers of unnamed nodes: nothing but position can pair those).
//
// Checked against tools/reference/compare_ref.py: --match pairs the layers by the same
// rules (written separately in Python), and the numbers of every pair and channel are
// compared as in compare-models.test.mjs (min / max and max |b - a| exactly, rms to a
// relative 1e-9, SQNR to 1e-8 dB).
import assert from 'node:assert/strict';
import fs from 'node:fs';
import os from 'node:os';
import path from 'node:path';
import { test, after } from 'node:test';
import { compare, formatComparison } from '../../web/src/index.js';
import { clipDistinct } from '../../web/src/format.js';
import { fetchedModelFiles, root, run, sharedModelFiles } from './helpers.mjs';

const wanted = ['mlsd_320x320_tiny.onnx', 'yunet_120x160.onnx', 'ultraface_version-RFB-320.onnx'];
const models = [...fetchedModelFiles(), ...sharedModelFiles()].filter((f) => wanted.includes(path.basename(f)));
const tmp = fs.mkdtempSync(path.join(os.tmpdir(), 'ql-compare-norm-'));
after(() => fs.rmSync(tmp, { recursive: true, force: true }));
const py = async (script, args) => {
  const r = await run('/usr/bin/python3', [path.join(root, script), ...args]);
  assert.equal(r.code, 0, `${script} failed: ${r.stderr}`);
  return r.stdout;
};
const worst = { pairs: 0, channels: 0, rms: 0, sqnrDb: 0 };

const variants = [
  [
    'QOperator names (QLinearConv, node _quant, weight _quantized)',
    ['--qlinear'],
    ['--node-suffix', '_quant'],
    'weight-normalized',
  ],
  [
    'uint8 per-tensor QDQ, node _quant, weight _quantized',
    ['--scheme', 'uint8-per-tensor'],
    ['--node-suffix', '_quant'],
    'weight-normalized',
  ],
  ['QOperator names, weights renumbered', ['--qlinear'], ['--node-suffix', '_quant', '--renumber-weights'], 'name-normalized'],
];

for (const model of models) {
  const name = path.basename(model);
  for (const [label, qflags, nflags, expected] of variants) {
    test(`compare by normalised names: ${name} vs ${label}`, async () => {
      const stem = path.join(tmp, `${path.basename(model, '.onnx')}-${variants.findIndex((v) => v[0] === label)}`);
      await py('tools/reference/quantize_qdq.py', [model, `${stem}.q.onnx`, ...qflags]);
      await py('tests/js/fixtures/quantizer_names.py', [`${stem}.q.onnx`, `${stem}.onnx`, ...nflags]);
      const b = `${stem}.onnx`;
      const r = await compare(model, b);
      assert.ok(r.pairs.length > 0);
      assert.deepEqual(r.unmatched, { a: [], b: [] }, 'every layer has its partner');
      let byPosition = 0;
      for (const p of r.pairs) {
        assert.notEqual(p.a.weight, p.b.weight);
        // nodes without a name (QuantLens shows "Conv#3") have no name to pair by
        const named = !/#\d+$/.test(p.a.name);
        if (named) assert.notEqual(p.a.name, p.b.name);
        const want = named || expected === 'weight-normalized' ? expected : 'position';
        if (want === 'position') byPosition++;
        assert.equal(p.matchedBy, want, `${p.a.name} (${p.a.weight}) -> ${p.b.name} (${p.b.weight})`);
        assert.ok(p.b.quant, `${p.b.name} is quantized`);
      }
      assert.equal(r.summary.matchedBy[expected], r.pairs.length - byPosition);
      assert.equal(r.summary.matchedBy.position, byPosition);

      // the reference's own pairing
      const ref = JSON.parse(await py('tools/reference/compare_ref.py', ['--match', model, b]));
      assert.deepEqual(ref.unmatchedA, []);
      assert.deepEqual(ref.unmatchedB, []);
      assert.deepEqual(
        r.pairs.map((p) => [p.a.weight, p.b.weight, p.matchedBy]),
        ref.pairs,
      );

      // the numbers of every pair and channel
      const pairsFile = `${stem}.pairs.json`;
      fs.writeFileSync(pairsFile, JSON.stringify(r.pairs.map((p) => [p.a.weight, p.b.weight])));
      const nums = JSON.parse(await py('tools/reference/compare_ref.py', [model, b, pairsFile]));
      r.pairs.forEach((p, k) => {
        const q = nums[k];
        const where = `${p.a.name} / ${p.b.name}`;
        assert.ok(p.comparable, `${where}: ${p.reason}`);
        assert.equal(q.error, undefined, `${where}: ${q.error}`);
        assert.equal(p.channels.count, q.channels, where);
        worst.pairs++;
        worst.channels += q.channels;
        const sq = (ours, theirs, w) => {
          if (theirs === null) return assert.equal(ours, Infinity, w);
          worst.sqnrDb = Math.max(worst.sqnrDb, Math.abs(ours - theirs));
          assert.ok(Math.abs(ours - theirs) <= 1e-8, `${w}: SQNR ${ours} vs ${theirs}`);
        };
        const rms = (ours, theirs, w) => {
          const e = theirs === 0 ? Math.abs(ours) : Math.abs(ours - theirs) / theirs;
          worst.rms = Math.max(worst.rms, e);
          assert.ok(e <= 1e-9, `${w}: rms ${ours} vs ${theirs}`);
        };
        for (let c = 0; c < q.channels; c++) {
          for (const key of ['minA', 'maxA', 'minB', 'maxB', 'maxAbsDiff'])
            assert.equal(p.channels[key][c], q[key][c], `${where} channel ${c} ${key}`);
          rms(p.channels.rmsDiff[c], q.rmsDiff[c], `${where} channel ${c}`);
          sq(p.channels.sqnr[c], q.sqnr[c], `${where} channel ${c}`);
        }
        assert.equal(p.tensor.maxAbsDiff, q.tensor.maxAbsDiff, where);
        rms(p.tensor.rmsDiff, q.tensor.rmsDiff, where);
        sq(p.tensor.sqnr, q.tensor.sqnr, where);
      });

      // the table says how pairs were matched, and shows B's names
      const table = formatComparison(r, { top: 5 });
      const mb = r.summary.matchedBy;
      if (byPosition < r.pairs.length) {
        assert.ok(
          table.includes(
            `weight name without the quantizer's suffixes ${mb['weight-normalized']}, node name without them ${mb['name-normalized']}, position ${byPosition})`,
          ),
          table,
        );
        assert.match(table, new RegExp(` ${expected} `));
      } else assert.ok(!table.includes('without'), table); // nothing normalised: the line reads as before
    });
  }
}

test('compare by normalised names: real models present', { skip: models.length ? false : 'none of the models is here' }, () => {
  assert.ok(models.length > 0);
});

test('clipDistinct keeps the part of a long name that differs from its partner', () => {
  const a = '/backbone/stage1/block3/conv2/depthwise/Conv';
  const b = '/backbone/stage1/block4/conv2/depthwise/Conv';
  assert.equal(a.length, 44);
  assert.equal(clipDistinct(a, b, 44), a); // fits
  const c = clipDistinct(a, b, 30);
  assert.equal(c.length, 30);
  assert.ok(c.startsWith('…') && c.endsWith('3/conv2/depthwise/Conv'), c);
  // a suffix only: the end stays
  const long = '/model/stage1/blocks.0/attention/query_projection/MatMul';
  const d = clipDistinct(`${long}_quant`, long, 44);
  assert.equal(d.length, 44);
  assert.ok(d.startsWith('…') && d.endsWith('MatMul_quant'), d);
  assert.equal(clipDistinct(long, `${long}_quant`, 44), `…${long.slice(long.length - 43)}`);
  // identical names, or a difference too long to show whole: start and end kept (the usual clip)
  assert.equal(clipDistinct(long, long, 20), `${long.slice(0, 7)}…${long.slice(long.length - 12)}`);
  assert.equal(clipDistinct(long, 'x', 20), `${long.slice(0, 7)}…${long.slice(long.length - 12)}`);
});

test('compare by normalised names: agreement with the reference (diagnostic)', (t) => {
  t.diagnostic(
    `pairs ${worst.pairs}, channels ${worst.channels}: max relative rms difference ${worst.rms.toExponential(2)}, ` +
      `max SQNR difference ${worst.sqnrDb.toExponential(2)} dB; min / max / max |b - a| exact`,
  );
});
