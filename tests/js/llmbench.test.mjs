// The LLM-shaped benchmark models (tools/bench/make_llm.py): `llm-small` written as float16
// with its external data split over 2 files, and as bfloat16. QuantLens's analysis of each
// must match the independent reference (tools/reference/analyze_ref.py) channel for channel
// and the bench's numpy peer (tools/bench/numpy_baseline.py) as the bench checks it, and the
// input rows the generator scaled up must be exactly the flagged input channels.
import assert from 'node:assert/strict';
import fs from 'node:fs';
import os from 'node:os';
import path from 'node:path';
import { after, test } from 'node:test';
import { fullCheck } from '../../tools/bench/checks.mjs';
import { Diff, compareStats } from './compare.mjs';
import { root, run, runCli, runReference } from './helpers.mjs';

const PY = '/usr/bin/python3';
const dir = fs.mkdtempSync(path.join(os.tmpdir(), 'ql-llmbench-'));
after(() => fs.rmSync(dir, { recursive: true, force: true }));

async function generate(name, args) {
  const file = path.join(dir, name);
  const r = await run(PY, [path.join(root, 'tools/bench/make_llm.py'), file, '--preset', 'llm-small', ...args]);
  assert.equal(r.code, 0, r.stderr);
  return { file, manifest: JSON.parse(fs.readFileSync(`${file}.json`, 'utf8')) };
}

const cases = [
  ['llm-small fp16, external data in 2 files', 'small_fp16.onnx', ['--dtype', 'fp16', '--files', '2'], 'float16'],
  ['llm-small bf16, one external data file', 'small_bf16.onnx', ['--dtype', 'bf16'], 'bfloat16'],
];

for (const [title, name, args, dtype] of cases) {
  test(title, async (t) => {
    const { file, manifest } = await generate(name, args);

    await t.test('the generator wrote what its manifest says', async () => {
      // 2 blocks x 7 projections + lm_head are MatMul weights; the embedding is read by Gather.
      assert.equal(manifest.weights.length, 16);
      const files = new Set(manifest.weights.map((w) => w.file));
      assert.deepEqual([...files].sort(), [...manifest.files].sort());
      assert.equal(manifest.files.length, args.includes('--files') ? 2 : 1);
      let bytes = 0;
      for (const w of manifest.weights) {
        assert.equal(w.length, w.shape[0] * w.shape[1] * 2, w.weight);
        const size = fs.statSync(path.join(dir, w.file)).size;
        assert.ok(w.offset + w.length <= size, `${w.weight} lies inside ${w.file}`);
        bytes += w.length;
      }
      assert.equal(bytes, manifest.weightBytes);
      const check = await run(PY, ['-c', 'import onnx, sys; onnx.checker.check_model(onnx.load(sys.argv[1]))', file]);
      assert.equal(check.code, 0, check.stderr);
    });

    const [ours, ref] = await Promise.all([runCli(['analyze', '--json', file]), runReference(file)]);
    assert.equal(ours.code, 0, ours.stderr);
    assert.equal(ref.code, 0, ref.stderr);
    const o = JSON.parse(ours.stdout);
    const r = JSON.parse(ref.stdout);

    await t.test('every layer matches the independent reference', () => {
      const d = new Diff();
      d.eq(
        'layers',
        o.layers.map((l) => `${l.name}|${l.op}|${l.weight}|${l.shape}`),
        r.layers.map((l) => `${l.name}|${l.op}|${l.weight}|${l.shape}`),
      );
      assert.equal(o.layers.length, 15, 'the 14 projections and lm_head (the Gather table is not a layer)');
      for (let i = 0; i < Math.min(o.layers.length, r.layers.length); i++) {
        const [a, b] = [o.layers[i], r.layers[i]];
        const where = `layer ${a.name}`;
        assert.equal(a.error, undefined, `${where}: ${a.error?.message}`);
        d.eq(`${where}.dtype`, a.dtype, dtype);
        d.eq(`${where}.dtype`, a.dtype, b.dtype);
        d.eq(`${where}.channelAxis`, a.channelAxis, 1);
        compareStats(d, where, a, b);
        d.arrays(`${where}.inputChannels.absMax`, a.inputChannels.absMax, b.inputChannels.absMax, (w, x, y) => d.f32(w, x, y));
        d.eq(`${where}.inputChannels.outliers`, a.inputChannels.outliers, b.inputChannels.outliers);
      }
      assert.deepEqual(d.list.slice(0, 25), [], `${d.list.length} differences from the reference`);
    });

    await t.test('the planted outlier input rows are the flagged input channels', () => {
      const planted = new Map(manifest.weights.map((w) => [w.weight, w.outlierRows]));
      for (const l of o.layers) {
        const rows = planted.get(l.weight);
        assert.ok(rows && rows.length === 3, `${l.weight} has 3 planted rows`);
        assert.deepEqual(l.inputChannels.outliers, rows, `${l.name}: flagged input channels`);
      }
      // The residual-stream weights share their planted rows, as in real LLMs.
      assert.deepEqual(planted.get('layers.0.q_proj.weight'), planted.get('layers.1.gate_proj.weight'));
    });

    await t.test("the bench's numpy peer agrees on every statistic", async () => {
      const out = path.join(dir, `${name}.numpy.json`);
      const np = await run(PY, [path.join(root, 'tools/bench/numpy_baseline.py'), file, '--out', out]);
      assert.equal(np.code, 0, np.stderr);
      const c = fullCheck(o, JSON.parse(fs.readFileSync(out, 'utf8')));
      assert.equal(c.layers, 15);
      assert.deepEqual([c.missing, c.extraNumpy], [[], 0]);
      assert.equal(c.f32Mismatch, 0, 'float32 min/max/absMax/range bit for bit');
      assert.equal(c.histDiff, 0, 'histograms');
      assert.equal(c.outlierLayers, 0, 'outlier channels');
      assert.equal(c.infMismatch, 0);
      assert.ok(c.meanRel <= 1e-6 && c.stdRel <= 1e-5 && c.tensorRel <= 1e-5, JSON.stringify(c));
      assert.ok(c.chSqnr <= 1e-3 && c.layerSqnr <= 1e-3, JSON.stringify(c));
      assert.equal(c.blockSchemes, 2, 'int4Block32 and int4Block128');
      assert.equal(c.sqnrMissing, 0);
      assert.ok(c.blockChSqnr <= 1e-3 && c.blockLayerSqnr <= 1e-3, JSON.stringify(c));
      assert.deepEqual([c.inShapeMismatch, c.inAbsMismatch], [0, 0], 'input channels: count/axis/groups, absMax bit for bit');
      assert.ok(c.inAbsTotal > 0);
    });
  });
}
