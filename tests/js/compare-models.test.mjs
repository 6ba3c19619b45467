// compare(a, b) on real models against an independent reference: each float model
// is quantized with tools/reference/quantize_qdq.py (int8 per-channel QDQ, uint8
// per-tensor QDQ with zero points, QLinearConv, and a renamed copy that only graph
// position can match), compared with the WASM core, and every pair and channel is
// checked against tools/reference/compare_ref.py (onnx + numpy, no shared code); the
// pairs themselves (and how each was matched) against compare_ref.py --match.
//
// Tolerances: both sides dequantize with the same float32 operation
// ((q - zero_point) * scale, exact in float32 per the ONNX definition) and take
// b - a in double, so the float32 min / max and max |b - a| must agree exactly.
// Sums of squares are double on both sides but in a different order (numpy sums
// pairwise, the core channel by channel in storage order): a relative difference of
// at most n * 2^-53 (n <= 2^22 values per tensor: < 5e-10), so rms and the signal /
// noise ratio are checked to a relative 1e-9 and SQNR to 1e-8 dB absolute.
import assert from 'node:assert/strict';
import fs from 'node:fs';
import os from 'node:os';
import path from 'node:path';
import { test, after } from 'node:test';
import { compare, analyze, equalize, formatComparison, QuantLensError, toJSON } from '../../web/src/index.js';
import { fetchedModelFiles, generatedModelFiles, root, run, sharedModelFiles } from './helpers.mjs';

const models = [...fetchedModelFiles(), ...sharedModelFiles()];
const tmp = fs.mkdtempSync(path.join(os.tmpdir(), 'ql-compare-'));
after(() => fs.rmSync(tmp, { recursive: true, force: true }));
const script = (name) => path.join(root, 'tools', 'reference', name);
const worst = { rms: 0, sqnrDb: 0, maxAbs: 0, minMax: 0, channels: 0, pairs: 0 };

async function quantize(model, flags) {
  const out = path.join(tmp, `${path.basename(model, '.onnx')}${flags.join('').replace(/[^a-z0-9]+/gi, '_')}.onnx`);
  const r = await run('/usr/bin/python3', [script('quantize_qdq.py'), model, out, ...flags]);
  assert.equal(r.code, 0, `quantize_qdq.py failed: ${r.stderr}`);
  return out;
}

async function reference(a, b, pairs) {
  const file = path.join(tmp, `pairs-${process.pid}-${Math.random().toString(36).slice(2)}.json`);
  fs.writeFileSync(file, JSON.stringify(pairs.map((p) => [p.a.weight, p.b.weight])));
  const r = await run('/usr/bin/python3', [script('compare_ref.py'), a, b, file]);
  assert.equal(r.code, 0, `compare_ref.py failed: ${r.stderr}`);
  return JSON.parse(r.stdout);
}

const relClose = (x, y, rel) => x === y || Math.abs(x - y) <= rel * Math.max(Math.abs(x), Math.abs(y));

// Every comparable pair, every channel, against the reference; returns the problems.
function checkPairs(result, ref) {
  const problems = [];
  const bad = (where, msg) => {
    if (problems.length < 25) problems.push(`${where}: ${msg}`);
  };
  result.pairs.forEach((p, k) => {
    const r = ref[k];
    const where = `pair ${k} ${p.a.name} / ${p.b.name}`;
    if (!p.comparable) {
      bad(where, `not comparable: ${p.reason}`);
      return;
    }
    if (r.error) {
      bad(where, `reference: ${r.error}`);
      return;
    }
    if (r.a.axis !== p.a.channelAxis) bad(where, `A channel axis ${p.a.channelAxis}, reference ${r.a.axis}`);
    assert.deepEqual(p.a.shape, r.a.shape, where);
    const rq = r.b.quant;
    if (!!rq !== !!p.b.quant) bad(where, `quantization ${JSON.stringify(p.b.quant)} vs ${JSON.stringify(rq)}`);
    if (rq && p.b.quant) {
      if (rq.via !== p.b.quant.via || rq.axis !== p.b.quant.axis)
        bad(where, `quant ${p.b.quant.via}/${p.b.quant.axis} vs ${rq.via}/${rq.axis}`);
      if (rq.scale.some((s, i) => s !== p.b.quant.scale[i])) bad(where, 'scales differ');
      if (rq.zeroPoint.some((z, i) => z !== p.b.quant.zeroPoint[i])) bad(where, 'zero points differ');
    }
    const ch = p.channels;
    if (ch.count !== r.channels) {
      bad(where, `${ch.count} channels, reference ${r.channels}`);
      return;
    }
    worst.pairs++;
    worst.channels += ch.count;
    const sq = (ours, theirs, w) => {
      if (theirs === null) {
        if (ours !== Infinity) bad(w, `SQNR ${ours}, reference +inf`);
        return;
      }
      const e = Math.abs(ours - theirs);
      worst.sqnrDb = Math.max(worst.sqnrDb, e);
      if (!(e <= 1e-8)) bad(w, `SQNR ${ours} vs ${theirs}`);
    };
    const rms = (ours, theirs, w) => {
      worst.rms = Math.max(worst.rms, theirs === 0 ? Math.abs(ours) : Math.abs(ours - theirs) / theirs);
      if (!relClose(ours, theirs, 1e-9)) bad(w, `rms ${ours} vs ${theirs}`);
    };
    for (let c = 0; c < ch.count; c++) {
      const w = `${where} channel ${c}`;
      for (const key of ['minA', 'maxA', 'minB', 'maxB']) {
        if (ch[key][c] !== r[key][c]) {
          worst.minMax++;
          bad(w, `${key} ${ch[key][c]} vs ${r[key][c]}`);
        }
      }
      if (ch.maxAbsDiff[c] !== r.maxAbsDiff[c]) {
        worst.maxAbs = Math.max(worst.maxAbs, Math.abs(ch.maxAbsDiff[c] - r.maxAbsDiff[c]));
        bad(w, `max |b - a| ${ch.maxAbsDiff[c]} vs ${r.maxAbsDiff[c]}`);
      }
      rms(ch.rmsDiff[c], r.rmsDiff[c], w);
      sq(ch.sqnr[c], r.sqnr[c], w);
    }
    if (p.tensor.maxAbsDiff !== r.tensor.maxAbsDiff)
      bad(where, `tensor max |b - a| ${p.tensor.maxAbsDiff} vs ${r.tensor.maxAbsDiff}`);
    rms(p.tensor.rmsDiff, r.tensor.rmsDiff, `${where} tensor`);
    sq(p.tensor.sqnr, r.tensor.sqnr, `${where} tensor`);
  });
  return problems;
}

function checkShape(result) {
  assert.equal(result.schema, 'quantlens.comparison/1');
  for (const p of result.pairs) {
    assert.ok(['weight', 'name', 'weight-normalized', 'name-normalized', 'position'].includes(p.matchedBy));
    if (!p.comparable) continue;
    for (const k of ['maxAbsDiff', 'rmsDiff', 'sqnr']) assert.ok(p.channels[k] instanceof Float64Array, k);
    for (const k of ['minA', 'maxA', 'minB', 'maxB']) assert.ok(p.channels[k] instanceof Float32Array, k);
    for (const k of Object.keys(p.channels)) if (k !== 'count') assert.equal(p.channels[k].length, p.channels.count);
  }
  JSON.stringify(toJSON(result)); // serializable
}

for (const model of models) {
  const name = path.basename(model);

  test(`compare: ${name} against itself: every layer matched by weight, all identical`, async () => {
    const r = await compare(model, model);
    checkShape(r);
    assert.ok(r.pairs.length > 0);
    assert.deepEqual(r.unmatched, { a: [], b: [] });
    for (const p of r.pairs) {
      assert.equal(p.matchedBy, 'weight');
      assert.equal(p.a.position, p.b.position);
      assert.ok(p.comparable, p.reason);
      assert.equal(p.tensor.sqnr, Infinity);
      assert.equal(p.tensor.maxAbsDiff, 0);
      assert.ok(p.channels.sqnr.every((x) => x === Infinity));
    }
    assert.equal(r.summary.identical, r.pairs.length);
  });

  for (const [label, flags, matchedBy] of [
    ['int8 per-channel QDQ', [], 'name'],
    ['uint8 per-tensor QDQ', ['--scheme', 'uint8-per-tensor'], 'name'],
    ['QLinearConv', ['--qlinear'], 'name'],
    ['renamed int8 QDQ (position)', ['--rename'], 'position'],
  ]) {
    test(`compare: ${name} float vs ${label}, every channel against compare_ref.py`, async (t) => {
      const a = await analyze(model);
      if (a.layers.every((l) => l.path)) {
        // silero VAD: every Conv is inside an If branch.
        t.skip('quantize_qdq.py quantizes layers of the main graph only, and every layer of this model is in a sub-graph');
        return;
      }
      const q = await quantize(model, flags);
      const r = await compare(model, q);
      checkShape(r);
      assert.equal(r.pairs.length + r.unmatched.a.length, a.layers.length);
      assert.deepEqual(r.unmatched, { a: [], b: [] }, 'every layer has its partner');
      const quantized = r.pairs.filter((p) => p.b.quant);
      assert.ok(quantized.length > 0, 'some layers are quantized');
      for (const p of quantized) {
        // a named node keeps its name; unnamed ones match by their weight's name once the
        // quantizer's suffix is cut (W -> W_quantized); in a renamed copy, by position
        const named = !/#\d+$/.test(p.a.name);
        const unnamed = matchedBy === 'position' ? 'position' : 'weight-normalized';
        assert.equal(p.matchedBy, named ? matchedBy : unnamed, `${p.a.name} -> ${p.b.name}`);
        if (flags.includes('--qlinear') && p.a.op === 'Conv') assert.equal(p.b.op, 'QLinearConv');
        if (flags.includes('--scheme')) assert.equal(p.b.quant.axis, null);
        else assert.equal(p.b.quant.axis, p.b.quant.scale.length > 1 ? p.b.channelAxis : null); // one channel: per-tensor
      }
      if (flags.includes('--qlinear') && r.pairs.some((p) => p.a.op === 'Conv'))
        assert.ok(
          r.pairs.some((p) => p.b.op === 'QLinearConv'),
          'QLinearConv layers',
        );
      // the pairing, against compare_ref.py --match (the same rules written in Python)
      const matched = await run('/usr/bin/python3', [script('compare_ref.py'), '--match', model, q]);
      assert.equal(matched.code, 0, `compare_ref.py --match failed: ${matched.stderr}`);
      assert.deepEqual(
        r.pairs.map((p) => [p.a.weight, p.b.weight, p.matchedBy]),
        JSON.parse(matched.stdout).pairs,
      );
      const ref = await reference(model, q, r.pairs);
      assert.deepEqual(checkPairs(r, ref), []);
      // B's per-channel ranges are what analyze() reports for the quantized model.
      const b = await analyze(q);
      for (const p of r.pairs) {
        const l = b.layers[p.b.position];
        assert.equal(l.weight, p.b.weight);
        if (p.b.channels === p.a.channels && p.a.channelAxis === p.b.channelAxis) {
          assert.deepEqual(l.channels.min, p.channels.minB, `${p.b.name} min`);
          assert.deepEqual(l.channels.max, p.channels.maxB, `${p.b.name} max`);
        }
      }
    });
  }
}

test('compare: real models present', { skip: models.length ? false : 'no models in models/fetched or ../shared/models' }, () => {
  assert.ok(models.length > 0);
});

test('compare: generated edge-case models against themselves: a result or a QuantLensError, never a crash', async () => {
  const files = generatedModelFiles();
  if (!files.length) return;
  for (const f of files) {
    try {
      const r = await compare(f, f);
      checkShape(r);
      for (const p of r.pairs) if (p.comparable) assert.equal(p.tensor.sqnr, Infinity, `${f} ${p.a.name}`);
      assert.equal(r.summary.pairs, r.pairs.length);
    } catch (e) {
      assert.ok(e instanceof QuantLensError, `${f}: ${e}`);
    }
  }
});

test('compare: errors name the source, progress and abort', async () => {
  const file = models[0] || generatedModelFiles()[0];
  if (!file) return;
  await assert.rejects(
    compare(file, path.join(tmp, 'missing.onnx')),
    (e) => e instanceof QuantLensError && e.code === 'IO_ERROR',
  );
  const bytes = fs.readFileSync(file);
  await assert.rejects(
    compare(file, bytes.subarray(0, 100)),
    (e) => e.code === 'INVALID_MODEL' && e.message.startsWith('model.onnx: '),
  );
  await assert.rejects(compare(new Uint8Array([0xff, 0xff, 0xff]), file), (e) => e.code === 'INVALID_MODEL');
  await assert.rejects(compare(file, file, null), (e) => e.code === 'INVALID_ARGUMENT');
  const ac = new AbortController();
  ac.abort();
  await assert.rejects(compare(file, file, { signal: ac.signal }), (e) => e.code === 'ABORTED');
  const phases = new Set();
  const sides = new Set();
  let last = 0;
  const r = await compare(bytes, new Blob([bytes]), {
    onProgress: (p) => {
      phases.add(p.phase);
      if (p.side) sides.add(p.side);
      if (p.phase === 'compare') last = p.done;
    },
  });
  assert.deepEqual([...phases], ['read', 'compare']);
  assert.deepEqual([...sides], ['a', 'b']);
  assert.equal(last, r.pairs.length);
  assert.equal(r.a.model.bytes, bytes.length);
  assert.equal(r.b.model.layers, r.pairs.length);
});

test('compare: agreement with the reference (diagnostic)', (t) => {
  t.diagnostic(
    `pairs ${worst.pairs}, channels ${worst.channels}: max relative rms difference ${worst.rms.toExponential(2)}, ` +
      `max SQNR difference ${worst.sqnrDb.toExponential(2)} dB, max |b - a| differences ${worst.maxAbs}, min/max differences ${worst.minMax}`,
  );
});

// The CLI's table of a model against its equalized copy: the rescaled pairs (the same
// function) say so, are not marked as risk, and the worst pair named is not one of them.
test('the comparison table says which pairs are rescaled, and its worst pair is not one', { timeout: 120000 }, async () => {
  const file = fetchedModelFiles().find((f) => f.includes('mlsd'));
  if (!file) return;
  const copy = path.join(tmp, 'mlsd.equalized.onnx');
  fs.writeFileSync(copy, (await equalize(file)).bytes);
  const cmp = await compare(file, copy);
  const rescaled = cmp.pairs.filter((p) => p.rescale);
  assert.ok(rescaled.length > 0 && rescaled.length === cmp.summary.rescaled);
  const text = formatComparison(cmp, { top: cmp.pairs.length, color: true });
  assert.match(text.split('\n')[0], new RegExp(`, ${rescaled.length} rescaled per channel; `));
  assert.equal((text.match(/ rescaled$/gm) || []).length, rescaled.length, 'every rescaled row is marked');
  assert.match(text, /^"rescaled": B = A rescaled per output channel .* that SQNR is no quantization error\.$/m);
  const plain = cmp.pairs.filter((p) => p.comparable && !p.rescale).sort((x, y) => x.tensor.sqnr - y.tensor.sqnr);
  const worstLine = text.split('\n').find((l) => l.startsWith('Worst'));
  if (plain.length) assert.ok(worstLine.startsWith(`Worst not rescaled: ${plain[0].a.name} `), worstLine);
  // no rescaled row is drawn in the risk colour
  for (const line of text.split('\n')) if (/ rescaled$/.test(line)) assert.ok(!line.includes('\x1b[31m'), line);
});
