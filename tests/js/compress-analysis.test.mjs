// analyze(source, { compressibility }) (issue 15, part 5): each analysed layer gains the
// curves compressibility() computes, at its fixed fractions. Checked on real models:
// - the layers' `compressibility` equals compressibility()'s entry for the same layer;
// - every SVD point, independently: the largest saving rank r with r·(rows + cols) within the
//   fraction of the layer's rows·cols, and its SQNR from numpy.linalg.svd of the same reshape
//   (tools/reference/compress_ref.py);
// - every channel-pruning point's SQNR (method 'auto') against numpy's norms
//   (tools/reference/prune_ref.py);
// - without the option the analysis is what it was (no key added anywhere);
// - progress 'curves' arrives and an abort during it rejects with ABORTED;
// - a model whose weights are in external data files: analysed, every layer's
//   compressibility null and compressibilityError saying why;
// - the CLI's --compressibility in --json, and its table column.
import assert from 'node:assert/strict';
import fs from 'node:fs';
import os from 'node:os';
import path from 'node:path';
import { test } from 'node:test';
import { analyze, compressibility, CURVE_FRACTIONS, formatDb, QuantLensError, toJSON } from '../../web/src/index.js';
import { fetchedModelFiles, root, run, runCli, sharedModelFiles } from './helpers.mjs';

const models = () => [...sharedModelFiles(), ...fetchedModelFiles()];
const mlsd = path.join(root, 'models', 'fetched', 'mlsd_320x320_tiny.onnx');
const haveMlsd = fs.existsSync(mlsd);

async function python(script, args) {
  const r = await run('/usr/bin/python3', [path.join(root, 'tools', ...script), ...args]);
  assert.equal(r.code, 0, r.stderr);
  return JSON.parse(r.stdout);
}
const svdReference = (model) => python(['reference', 'compress_ref.py'], [model]);
const pruneReference = (model) => python(['reference', 'prune_ref.py'], [model]);

const product = (shape) => shape.reduce((a, b) => a * b, 1);

// The SVD points at the fixed fractions, from the reference's singular values alone:
// rank r stores r·(rows + cols); the saving ranks are those below min(rows, cols) that store
// fewer than rows·cols; at fraction f, the largest of them within f·rows·cols.
function expectedSvdPoints(r) {
  const whole = r.rows * r.cols;
  const sq = r.s.map((s) => s * s);
  const total = sq.reduce((a, b) => a + b, 0);
  return CURVE_FRACTIONS.map((f) => {
    let rank = 0;
    while (
      rank + 1 < Math.min(r.rows, r.cols) &&
      (rank + 1) * (r.rows + r.cols) < whole &&
      (rank + 1) * (r.rows + r.cols) <= f * whole
    )
      rank++;
    if (!rank) return { fraction: f, keep: null, params: null, sqnrDb: null };
    const tail = sq.slice(rank).reduce((a, b) => a + b, 0);
    return {
      fraction: f,
      keep: rank,
      params: rank * (r.rows + r.cols),
      sqnrDb: tail > 1e-9 * total ? 10 * Math.log10(total / tail) : undefined, // beyond 90 dB round-off shows
    };
  });
}

test('on real models: each layer carries compressibility()’s curves, and every SVD point matches numpy', async (t) => {
  const files = models();
  if (!files.length) return t.skip('no real models');
  let layers = 0;
  let points = 0;
  let nulls = 0;
  let lossless = 0;
  for (const file of files) {
    const name = path.basename(file);
    const phases = new Set();
    const a = await analyze(file, { compressibility: true, onProgress: ({ phase }) => phases.add(phase) });
    assert.ok(phases.has('curves'), `${name}: progress of phase 'curves' passes through`);
    assert.equal(a.compressibilityError, null, name);
    assert.deepEqual(a.compressibility, { fractions: CURVE_FRACTIONS, method: 'svd' });
    assert.deepEqual(a.options.compressibility, { method: 'svd' });
    const c = await compressibility(file, { ratio: 1 });
    // The same layers, in the same order: every analysed layer has its entry, as it is.
    assert.deepEqual(
      a.layers.map((l) => l.name),
      c.layers.map((l) => l.name),
    );
    a.layers.forEach((l, k) => {
      const { name: n, op, ...rest } = c.layers[k];
      assert.equal(op, l.op);
      assert.deepEqual(l.compressibility, rest, `${name} ${n}`);
    });
    // Independently: the reference finds the SVD-compressible layers on its own.
    const ref = await svdReference(file);
    const byName = new Map(a.layers.map((l) => [l.name, l]));
    const compressible = a.layers
      .filter((l) => l.compressibility.curves.some((k) => /svd/.test(k.method) && !k.refused))
      .map((l) => l.name);
    assert.deepEqual(compressible.sort(), ref.layers.map((r) => r.name).sort(), name);
    for (const r of ref.layers) {
      const l = byName.get(r.name);
      // The layer's parameters are its weight's elements (the analysis's shape), rows·cols.
      assert.equal(l.compressibility.params, product(l.shape), `${name} ${r.name}: params`);
      assert.equal(l.compressibility.params, r.rows * r.cols);
      if (l.compressibility.macs !== null) assert.equal(l.compressibility.macs, r.macs, `${name} ${r.name}: MACs`);
      const curve = l.compressibility.curves.find((k) => k.method === r.method);
      assert.ok(curve, `${name} ${r.name}: a ${r.method} curve`);
      const want = expectedSvdPoints(r);
      assert.equal(curve.points.length, want.length);
      curve.points.forEach((p, j) => {
        const w = want[j];
        const at = `${name} ${r.name} at ${w.fraction}`;
        assert.equal(p.fraction, w.fraction, at);
        assert.equal(p.keep, w.keep, `${at}: rank`);
        assert.equal(p.params, w.params, `${at}: params`);
        if (w.keep === null) {
          assert.equal(p.sqnrDb, null, at);
          nulls++;
        } else if (w.sqnrDb !== undefined) {
          assert.ok(Math.abs(p.sqnrDb - w.sqnrDb) < 1e-3, `${at}: ${p.sqnrDb} dB vs numpy ${w.sqnrDb}`);
          points++;
        } else {
          // numpy's tail is below 1e-9 of the whole: nothing measurable is lost (Infinity when none).
          assert.ok(p.sqnrDb > 80, `${at}: ${p.sqnrDb} dB where numpy loses < 1e-9`);
          lossless++;
        }
      });
      layers++;
    }
  }
  t.diagnostic(
    `${layers} layers, ${points} SVD points checked against numpy, ${lossless} lossless ones (${nulls} fractions below the first saving rank)`,
  );
  assert.ok(layers > 50 || (!sharedModelFiles().length && layers > 10));
});

test("method 'auto': channel-pruning points' SQNR against numpy's input-channel norms", async (t) => {
  const files = models();
  if (!files.length) return t.skip('no real models');
  let checked = 0;
  for (const file of files) {
    const a = await analyze(file, { compressibility: { method: 'auto' } }).catch((e) => e);
    if (a instanceof Error) throw a;
    if (a.compressibilityError) {
      // A build without channel pruning says so, with a code.
      assert.equal(a.compressibilityError.code, 'UNSUPPORTED', a.compressibilityError.message);
      return t.skip('this build has no channel pruning');
    }
    assert.deepEqual(a.compressibility.method, 'auto');
    const ref = new Map((await pruneReference(file)).layers.map((l) => [l.name, l]));
    for (const l of a.layers) {
      const curve = l.compressibility.curves.find((k) => k.method === 'channel-prune');
      if (!curve || curve.refused) continue;
      const r = ref.get(l.name);
      assert.ok(r, `${l.name}: the reference has the layer`);
      for (const p of curve.points) {
        if (p.keep === null) continue;
        const want = r.sqnr[p.keep - 1]; // null: nothing lost (the dropped channels are all zero)
        if (want === null) assert.equal(p.sqnrDb, Infinity, `${l.name} keep ${p.keep}`);
        else assert.ok(Math.abs(p.sqnrDb - want) < 1e-6, `${l.name} keep ${p.keep}: ${p.sqnrDb} vs numpy ${want}`);
        checked++;
      }
    }
  }
  t.diagnostic(`${checked} channel-pruning points checked against numpy`);
  assert.ok(checked > 0);
});

test('without the option: no compressibility anywhere, the options as before', { skip: !haveMlsd && 'no M-LSD' }, async () => {
  const a = await analyze(mlsd);
  assert.deepEqual(Object.keys(a.options), ['histogramBins', 'blockSize']);
  assert.ok(!('compressibility' in a) && !('compressibilityError' in a));
  assert.ok(a.layers.every((l) => !('compressibility' in l)));
  for (const off of [false, null, undefined]) {
    const b = await analyze(mlsd, { compressibility: off, layers: /^Conv__293$/ });
    assert.ok(!('compressibility' in b) && b.layers.every((l) => !('compressibility' in l)));
  }
});

test(
  'a layer selection: the selected layers carry theirs; workers give the same',
  { skip: !haveMlsd && 'no M-LSD' },
  async () => {
    const one = await analyze(mlsd, { compressibility: true, layers: /^Conv__(246|293)$/, workers: 1 });
    assert.deepEqual(one.layers.map((l) => l.name).sort(), ['Conv__246', 'Conv__293']);
    const c = await compressibility(mlsd, { ratio: 1 });
    for (const l of one.layers) {
      const { name, op, ...rest } = c.layers.find((x) => x.name === l.name);
      assert.equal(op, l.op, name);
      assert.deepEqual(l.compressibility, rest);
    }
    const pool = await analyze(mlsd, { compressibility: true, workers: 2 });
    const single = await analyze(mlsd, { compressibility: true, workers: 1 });
    assert.deepEqual(toJSON(pool), toJSON(single));
  },
);

test('bad options are refused before any work; an abort during the curves rejects with ABORTED', async (t) => {
  if (!haveMlsd) return t.skip('no M-LSD');
  for (const bad of [{ method: 'magic' }, { ratio: 0.5 }, 'svd', 1, []]) {
    const phases = [];
    await assert.rejects(
      analyze(mlsd, { compressibility: bad, onProgress: ({ phase }) => phases.push(phase) }),
      (e) => e instanceof QuantLensError && e.code === 'INVALID_ARGUMENT' && /compressibility/.test(e.message),
    );
    assert.deepEqual(phases, [], 'nothing read');
  }
  const controller = new AbortController();
  let curves = 0;
  await assert.rejects(
    analyze(mlsd, {
      compressibility: true,
      signal: controller.signal,
      onProgress: ({ phase }) => {
        if (phase === 'curves' && ++curves === 3) controller.abort();
      },
    }),
    (e) => e instanceof QuantLensError && e.code === 'ABORTED',
  );
  assert.equal(curves, 3, 'no layer after the abort');
});

test('weights in external data files: analysed, compressibility null with the reason', async (t) => {
  const dir = fs.mkdtempSync(path.join(os.tmpdir(), 'ql-cjson-'));
  t.after(() => fs.rmSync(dir, { recursive: true, force: true }));
  const model = path.join(dir, 'llm-tiny.onnx');
  const made = await run('/usr/bin/python3', [
    path.join(root, 'tools', 'bench', 'make_llm.py'),
    model,
    '--preset',
    'llm-tiny',
    '--files',
    '2',
  ]);
  assert.equal(made.code, 0, made.stderr);
  assert.ok(fs.existsSync(`${model}.data.1`), 'two data files');
  const a = await analyze(model, { compressibility: true });
  assert.ok(a.layers.length > 5);
  assert.ok(a.layers.every((l) => !l.error && l.compressibility === null));
  assert.equal(a.compressibilityError.code, 'MISSING_EXTERNAL_DATA');
  assert.match(a.compressibilityError.message, /external data/);
  assert.deepEqual(a.compressibility, { fractions: CURVE_FRACTIONS, method: 'svd' });
  // The analysis itself is the one without the option.
  const plain = toJSON(await analyze(model));
  const got = toJSON(a);
  for (const l of got.layers) delete l.compressibility;
  delete got.compressibility;
  delete got.compressibilityError;
  delete got.options.compressibility;
  assert.deepEqual(got, plain);
  // The CLI: the JSON says the same; the table says why there is no column.
  const r = await runCli(['analyze', model, '--compressibility', '--json']);
  assert.equal(r.code, 0, r.stderr);
  const doc = JSON.parse(r.stdout);
  assert.equal(doc.compressibilityError.code, 'MISSING_EXTERNAL_DATA');
  assert.ok(doc.layers.every((l) => l.compressibility === null));
  const table = await runCli(['analyze', model, '--compressibility']);
  assert.equal(table.code, 0, table.stderr);
  assert.match(table.stdout, /Compressibility not computed: MISSING_EXTERNAL_DATA/);
});

test('CLI: --compressibility [--method] in --json, and the table column', async (t) => {
  if (!haveMlsd) return t.skip('no M-LSD');
  const r = await runCli(['analyze', mlsd, '--compressibility', '--json']);
  assert.equal(r.code, 0, r.stderr);
  const doc = JSON.parse(r.stdout);
  const api = JSON.parse(JSON.stringify(toJSON(await analyze(mlsd, { compressibility: true }))));
  assert.deepEqual(doc.compressibility, api.compressibility);
  assert.deepEqual(
    doc.layers.map((l) => l.compressibility),
    api.layers.map((l) => l.compressibility),
  );
  const auto = await runCli(['analyze', mlsd, '--compressibility', '--method', 'auto', '--json', '--layers', '^Conv__293$']);
  assert.equal(auto.code, 0, auto.stderr);
  const autoDoc = JSON.parse(auto.stdout);
  assert.equal(autoDoc.options.compressibility.method, 'auto');
  // Without --compressibility, --method is a usage error (it would do nothing).
  const lone = await runCli(['analyze', mlsd, '--method', 'svd']);
  assert.equal(lone.code, 2);
  assert.match(lone.stderr, /--method goes with --compressibility/);
  const bad = await runCli(['analyze', mlsd, '--compressibility', '--method', 'magic']);
  assert.equal(bad.code, 2);
  // The table: a column of each layer's best weight SQNR at 50% of its parameters, explained under it.
  const table = await runCli(['analyze', mlsd, '--compressibility', '--top', '50']);
  assert.equal(table.code, 0, table.stderr);
  const lines = table.stdout.split('\n');
  assert.match(lines.find((line) => /^\s*#\s+layer/.test(line)) ?? '', /\s@50%$/);
  assert.match(table.stdout, /@50%: compressibility, the weight SQNR \(dB\) a layer keeps with 50% of its parameters/);
  const half = doc.compressibility.fractions.indexOf(0.5);
  let cells = 0;
  for (const l of doc.layers) {
    const row = lines.find((line) => line.trim().split(/\s+/)[1] === l.name);
    assert.ok(row, l.name);
    const curves = l.compressibility.curves.filter((k) => !k.refused);
    // In JSON an infinite SQNR (a rank that loses nothing) is null beside a rank.
    const db = curves.map((k) => k.points[half]).filter((p) => p.keep !== null);
    const cell = !curves.length ? 'n/a' : db.length ? formatDb(Math.max(...db.map((p) => p.sqnrDb ?? Infinity))) : '-';
    assert.equal(row.trim().split(/\s+/).at(-1), cell, `${l.name}: '${row}'`);
    cells += cell === 'n/a' || cell === '-' ? 0 : 1;
  }
  assert.ok(cells > 20, `${cells} layers with a number`);
});
