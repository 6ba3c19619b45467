// The app's answers (web/src/verdict.js, names.js, presentation.js), computed from the
// analysis numbers, checked against independent computations on real models: the channels a
// "why" line names and their factors against the numpy reference (tools/reference/analyze_ref.py),
// the per-scheme counts against the reference's SQNRs, "CLE brings it to N" against an analysis
// of the equalized model the core wrote, the shared name prefix, the stop groups, and the
// compare() rescale signature against numpy's ratios of the two files' weights (and that it does
// not fire for a quantized copy or another model).
import assert from 'node:assert/strict';
import fs from 'node:fs';
import os from 'node:os';
import path from 'node:path';
import { after, test } from 'node:test';
import { analyze, compare, equalize } from '../../web/src/index.js';
import { followerText, riskDbFor, riskOf, riskOfScheme, savedAtText } from '../../web/src/presentation.js';
import { nameShortener, sharedPrefix, subgraphText } from '../../web/src/names.js';
import {
  cleOptionsText,
  cleWorst,
  defaultLayer,
  layerWhy,
  median,
  schemeVerdicts,
  stopReasonKey,
  verdictText,
  worstChannel,
} from '../../web/src/verdict.js';
import { fetchedModelFiles, root, run, runReference, sharedModels } from './helpers.mjs';

const fetched = (name) => fetchedModelFiles().find((f) => f.endsWith(name));
const mlsd = fetched('mlsd_320x320_tiny.onnx');
const blazeface = fetched('blazeface_128x128.onnx');
const silero = fetched('silero_vad_legacy.onnx');
const yolox = path.join(sharedModels, 'pytorch', 'yolox_nano.onnx');
const deeplab = path.join(sharedModels, 'tf', 'deeplabv3_mobilenetv2_tfhub.onnx');
const missing = (f, what) => (f && fs.existsSync(f) ? false : `${what} not present`);
const tmp = fs.mkdtempSync(path.join(os.tmpdir(), 'ql-verdict-'));
after(() => fs.rmSync(tmp, { recursive: true, force: true }));

const reference = async (file) => {
  const r = await runReference(file);
  assert.equal(r.code, 0, r.stderr);
  return JSON.parse(r.stdout);
};

test('riskOfScheme is riskOf under INT8 per-tensor, and INT4 thresholds are 6.02 dB per bit lower', () => {
  assert.deepEqual(riskDbFor('int8PerTensor'), { high: 30, medium: 40 });
  const t4 = riskDbFor('int4PerChannel');
  assert.ok(Math.abs(t4.high - (30 - 4 * 20 * Math.log10(2))) < 1e-12);
  assert.ok(Math.abs(t4.medium - t4.high - 10) < 1e-12);
});

test(
  'why lines name the outlier channels of the reference and their range over the median range',
  { skip: missing(mlsd, 'mlsd'), timeout: 240000 },
  async () => {
    const a = await analyze(mlsd);
    const ref = await reference(mlsd);
    const refBy = new Map(ref.layers.map((l) => [l.weight, l]));
    let checked = 0;
    for (const l of a.layers) {
      assert.equal(riskOfScheme(l, 'int8PerTensor'), riskOf(l), `${l.name}: riskOfScheme = riskOf`);
      const r = refBy.get(l.weight);
      assert.ok(r, `${l.name} in the reference`);
      const w = layerWhy(l, 'int8PerTensor');
      const flagged = r.outlierChannels ?? r.channels.outliers;
      if (!flagged.length) {
        assert.match(w.why, /^no outlier channel/);
        continue;
      }
      // The channels named are the reference's outlier channels (up to 8 listed).
      const m = /channels? ([\d, ]+)(?: and (\d+) more)?$/.exec(w.why);
      assert.ok(m, `${l.name}: ${w.why}`);
      const named = m[1].split(', ').map(Number);
      assert.deepEqual(named, flagged.slice(0, 8), `${l.name}: named channels`);
      assert.equal(Number(m[2] ?? 0), Math.max(0, flagged.length - 8));
      // Their range in units of the median channel range, from numpy's ranges.
      const ranges = r.channels.max.map((hi, c) => hi - r.channels.min[c]).sort((x, y) => x - y);
      const h = (ranges.length - 1) / 2;
      const med = ranges[Math.floor(h)] + (ranges[Math.ceil(h)] - ranges[Math.floor(h)]) * (h - Math.floor(h));
      const factors = flagged.map((c) => (r.channels.max[c] - r.channels.min[c]) / med);
      const fmt = (x) => (x >= 10 ? `${Math.round(x)}×` : `${x.toFixed(1)}×`);
      const lo = fmt(Math.min(...factors));
      const hi = fmt(Math.max(...factors));
      assert.ok(w.why.includes(lo === hi ? hi : `${lo.slice(0, -1)}-${hi}`), `${l.name}: ${w.why} has ${lo}..${hi}`);
      // The advice follows the numbers: per-channel scales only where per-channel INT8 clears the threshold.
      const pcOk = r.sqnr.int8PerChannel >= riskDbFor('int8PerChannel').high;
      if (riskOf(l) !== 'low') assert.equal(w.advice.includes('per-channel'), pcOk, `${l.name}: ${w.text}`);
      checked++;
    }
    assert.ok(checked >= 5, `${checked} layers with outlier channels checked`);
    // The worst channel under a scheme is the reference's lowest per-channel SQNR.
    const l = a.layers[a.summary.ranking[0]];
    const r = refBy.get(l.weight);
    const v = r.channels.sqnr.int8PerTensor;
    assert.equal(v[worstChannel(l, 'int8PerTensor')], Math.min(...v.filter((x) => x !== null)));
  },
);

test(
  'per-scheme counts match the reference, and "CLE brings it to N" is the count on the written model',
  { skip: missing(mlsd, 'mlsd'), timeout: 240000 },
  async () => {
    const a = await analyze(mlsd);
    const ref = await reference(mlsd);
    const verdicts = schemeVerdicts(a);
    for (const v of verdicts) {
      const t = riskDbFor(v.scheme).high;
      const want = ref.layers.filter((l) => !(l.sqnr[v.scheme] >= t)).length;
      assert.equal(v.below, want, `${v.scheme}: below ${t}`);
      assert.equal(v.afterCle, null);
    }
    assert.ok(verdicts.find((v) => v.scheme === 'int8PerTensor').below >= 7, 'mlsd has layers below 30 dB per tensor');
    const eq = await equalize(mlsd);
    const written = path.join(tmp, 'mlsd.equalized.onnx');
    fs.writeFileSync(written, eq.bytes);
    const b = await analyze(written);
    const withCle = schemeVerdicts(a, { equalization: eq });
    for (const v of withCle) {
      const t = riskDbFor(v.scheme).high;
      const want = b.layers.filter((l) => !l.error && !(l.sqnr[v.scheme] >= t)).length;
      assert.equal(v.afterCle, want, `${v.scheme}: after CLE, counted on the written model`);
    }
    const text = verdictText(withCle);
    const t8 = withCle.find((v) => v.scheme === 'int8PerTensor');
    assert.ok(text.includes(`INT8 per-tensor: ${t8.below} layers below 30 dB, CLE brings it to ${t8.afterCle}`), text);
    // The worst layers before and after are named, each with its own numbers.
    const w = cleWorst(eq);
    const before = Math.min(...eq.layers.map((l) => l.before.sqnr.int8PerTensor));
    const afterMin = Math.min(...eq.layers.map((l) => l.after.sqnr.int8PerTensor));
    assert.equal(w.before.before, before);
    assert.equal(w.after.after, afterMin);
    assert.equal(eq.summary.int8PerTensor.worstBefore, before);
    assert.notEqual(w.before.name, w.after.name, 'on mlsd the worst before and the worst after are two layers');
    assert.equal(
      cleOptionsText(eq.options),
      'high-bias absorption on, ReLU6 replaced by Relu inside sequences, depthwise triples on, through zero Pad and pools on, at most 50 sweeps',
    );
  },
);

test(
  'names: the prefix every layer shares is dropped at a scope, never the end; sub-graphs named',
  { skip: missing(blazeface, 'blazeface'), timeout: 120000 },
  async () => {
    const a = await analyze(blazeface);
    const names = a.layers.map((l) => l.name);
    const s = nameShortener(names);
    assert.equal(s.prefix, 'StatefulPartitionedCall/functional_1/');
    const shorts = names.map(s.short);
    for (let k = 0; k < names.length; k++) {
      assert.ok(names[k].endsWith(shorts[k].slice(1)), `${shorts[k]} is the end of ${names[k]}`);
      assert.ok(shorts[k].length < names[k].length);
    }
    assert.equal(new Set(shorts).size, new Set(names).size, 'names that differ stay different');
    // What follows: 'other' reads as the op the analysis knows.
    const add = a.layers.find((l) => l.follower.kind === 'other' && l.follower.op === 'Add');
    assert.equal(followerText(add), 'Add');
    assert.equal(sharedPrefix(['Conv__293', 'Conv__246']), '', 'no scope shared: nothing dropped');
    assert.equal(sharedPrefix(['/a/b/c', '/a/b']), '/a/', 'every name keeps something of its own');
    if (silero) {
      const v = await analyze(silero);
      const inIf = v.layers.find((l) => l.path);
      assert.match(subgraphText(inIf), /^in If_\d+ › (then|else)_branch/);
      assert.equal(subgraphText(v.layers.find((l) => !l.path) ?? {}), '');
      // The default layer has more than one output channel to chart.
      const k = defaultLayer(v);
      assert.ok(v.layers[k].channels.count > 1);
    }
  },
);

test('stops group by reason with the names taken out', { skip: missing(yolox, 'yolox_nano'), timeout: 240000 }, async () => {
  assert.deepEqual(stopReasonKey('weight conv2d_0.w_0 is the value of a Constant node, not an initializer'), {
    key: 'weight … is the value of a Constant node, not an initializer',
    name: 'conv2d_0.w_0',
  });
  assert.deepEqual(stopReasonKey('reaches LSTM_12: recurrent layer'), { key: 'reaches …: recurrent layer', name: 'LSTM_12' });
  assert.deepEqual(stopReasonKey('Add (residual or branch merge) ends the sequence'), {
    key: 'Add (residual or branch merge) ends the sequence',
    name: '',
  });
  const eq = await equalize(yolox);
  assert.equal(eq.summary.changed, false);
  const keys = new Set(eq.stops.map((s) => stopReasonKey(s.reason).key));
  assert.ok(keys.size <= 5 && eq.stops.length > 100, `${eq.stops.length} stops in ${keys.size} groups`);
});

test('savedAtText reads an ISO timestamp for people', () => {
  assert.equal(savedAtText('2026-12-05T23:49:07.123Z'), '5 Dec 2026, 23:49 UTC');
  assert.equal(savedAtText('not a date'), 'not a date');
});

// numpy: per output channel of each pair, exp(mean log|B/A|) over non-zero weights, and
// whether signs and zeros agree; for the first `n` pairs of the two files.
async function numpyRatios(fileA, fileB, pairs) {
  const py = `
import json, sys, numpy as np, onnx
from onnx import numpy_helper
def weights(f):
    m = onnx.load(f)
    w = {t.name: numpy_helper.to_array(t).astype(np.float64) for t in m.graph.initializer}
    for n in m.graph.node:
        if n.op_type == 'Constant':
            w[n.output[0]] = numpy_helper.to_array(n.attribute[0].t).astype(np.float64)
    return w
A, B = weights(sys.argv[1]), weights(sys.argv[2])
out = []
for wa, wb, axis in json.loads(sys.argv[3]):
    a = np.moveaxis(A[wa], axis, 0).reshape(A[wa].shape[axis], -1)
    b = np.moveaxis(B[wb], axis, 0).reshape(B[wb].shape[axis], -1)
    zeros = bool(np.all((a == 0) == (b == 0)))
    nz = a != 0
    f = []
    signs = True
    for c in range(a.shape[0]):
        k = nz[c]
        r = b[c][k] / a[c][k]
        if len(r) and not (np.all(r > 0) or np.all(r < 0)): signs = False
        f.append(float(np.sign(r[0]) * np.exp(np.mean(np.log(np.abs(r))))) if len(r) else 1.0)
    out.append({"zeros": zeros, "signs": signs, "factor": f})
print(json.dumps(out))
`;
  const r = await run('/usr/bin/python3', ['-c', py, fileA, fileB, JSON.stringify(pairs)]);
  assert.equal(r.code, 0, r.stderr);
  return JSON.parse(r.stdout);
}

test(
  'compare() recognises an equalized copy as a per-channel rescale (factors as numpy computes them), not a quantized copy or another model',
  { skip: missing(mlsd, 'mlsd') || missing(blazeface, 'blazeface'), timeout: 300000 },
  async () => {
    const eq = await equalize(mlsd);
    const written = path.join(tmp, 'mlsd.eq.onnx');
    fs.writeFileSync(written, eq.bytes);
    const c = await compare(mlsd, written);
    const differing = c.pairs.filter((p) => p.comparable && p.tensor.sqnr !== Infinity);
    assert.ok(differing.length >= 30, `${differing.length} pairs differ`);
    assert.ok(
      differing.every((p) => p.rescale),
      `not recognised: ${differing.filter((p) => !p.rescale).map((p) => p.a.name)}`,
    );
    assert.equal(c.summary.rescaled, differing.length);
    assert.ok(
      differing.some((p) => p.tensor.sqnr < 30),
      'some pairs read as high risk by SQNR alone',
    );
    // The factors against numpy's, on every differing pair.
    const want = await numpyRatios(
      mlsd,
      written,
      differing.map((p) => [p.a.weight, p.b.weight, p.a.channelAxis]),
    );
    differing.forEach((p, k) => {
      assert.ok(want[k].zeros && want[k].signs, `${p.a.name}: numpy sees zeros and signs kept`);
      const f = Array.from(p.rescale.factor);
      assert.equal(f.length, want[k].factor.length);
      f.forEach((v, i) =>
        assert.ok(
          Math.abs(v - want[k].factor[i]) <= 1e-5 * Math.abs(want[k].factor[i]),
          `${p.a.name} ch ${i}: ${v} vs ${want[k].factor[i]}`,
        ),
      );
    });
    // A quantized copy (int8 per channel, QDQ) is no rescale.
    const qdq = path.join(tmp, 'mlsd.qdq.onnx');
    const q = await run('/usr/bin/python3', [path.join(root, 'tools', 'reference', 'quantize_qdq.py'), mlsd, qdq]);
    assert.equal(q.code, 0, q.stderr);
    const cq = await compare(mlsd, qdq);
    assert.ok(cq.pairs.filter((p) => p.comparable && p.tensor.sqnr !== Infinity).length > 30);
    assert.equal(cq.pairs.filter((p) => p.rescale).length, 0, 'a quantized copy is not a rescale');
    assert.equal(cq.summary.rescaled, 0);
    // Nor is another model (pairs matched by position where op and size agree).
    const other = await compare(mlsd, blazeface);
    assert.equal(other.pairs.filter((p) => p.rescale).length, 0, 'another model is not a rescale');
    // Nor a model against itself (identical, nothing rescaled).
    const self = await compare(mlsd, mlsd);
    assert.equal(self.pairs.filter((p) => p.rescale).length, 0);
  },
);

const cleConvnet = path.join(root, 'models', 'generated', 'cle_convnet.onnx');
test(
  'a grouped Conv (group 4, 4 input channels per group) equalized: recognised as a rescale, factors as numpy computes them',
  { skip: missing(cleConvnet, 'models/generated/cle_convnet.onnx'), timeout: 300000 },
  async () => {
    const a = await analyze(cleConvnet);
    const grouped = a.layers.find((l) => l.name === 'c4_grouped');
    assert.ok(grouped && grouped.op === 'Conv' && grouped.groups === 4 && !grouped.depthwise);
    const eq = await equalize(cleConvnet);
    const written = path.join(tmp, 'cle_convnet.eq.onnx');
    fs.writeFileSync(written, eq.bytes);
    const c = await compare(cleConvnet, written);
    const p = c.pairs.find((q) => q.a.name === 'c4_grouped');
    assert.ok(p.comparable && p.tensor.sqnr < 30, `c4_grouped changed by CLE (${p.tensor.sqnr} dB)`);
    assert.ok(p.rescale, 'the grouped Conv reads as a rescale');
    const [want] = await numpyRatios(cleConvnet, written, [[p.a.weight, p.b.weight, p.a.channelAxis]]);
    assert.ok(want.zeros && want.signs);
    const f = Array.from(p.rescale.factor);
    assert.equal(f.length, 16);
    f.forEach((v, i) =>
      assert.ok(Math.abs(v - want.factor[i]) <= 1e-5 * Math.abs(want.factor[i]), `ch ${i}: ${v} vs ${want.factor[i]}`),
    );
    // so is the grouped ConvTranspose (group 2), and every pair CLE changed in this model
    assert.ok(c.pairs.find((q) => q.a.name === 'c7_convT').rescale);
    const differing = c.pairs.filter((q) => q.comparable && q.tensor.sqnr !== Infinity);
    assert.deepEqual(
      differing.filter((q) => !q.rescale).map((q) => q.a.name),
      [],
    );
  },
);

test(
  'deeplab: equalized copy (BatchNorm already folded by tf2onnx, ReLU6 replaced) recognised as rescaled',
  { skip: missing(deeplab, 'deeplabv3'), timeout: 300000 },
  async () => {
    const eq = await equalize(deeplab);
    const written = path.join(tmp, 'deeplab.eq.onnx');
    fs.writeFileSync(written, eq.bytes);
    const c = await compare(deeplab, written);
    const differing = c.pairs.filter((p) => p.comparable && p.tensor.sqnr !== Infinity);
    assert.ok(differing.length > 10);
    assert.deepEqual(
      differing.filter((p) => !p.rescale).map((p) => p.a.name),
      [],
    );
  },
);

test('median', () => {
  assert.equal(median([3, 1, 2]), 2);
  assert.equal(median([4, 1, 2, 3]), 2.5);
  assert.ok(Number.isNaN(median([])));
});
