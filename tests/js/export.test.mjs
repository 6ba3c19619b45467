// Exports: CSV read back by Python's csv module gives the API's numbers exactly; Model
// Explorer node data has the documented structure (model_explorer/node_data_builder.py)
// and its keys are node names of the model, read independently with onnx in Python.
import assert from 'node:assert/strict';
import fs from 'node:fs';
import os from 'node:os';
import path from 'node:path';
import { after, test } from 'node:test';
import {
  analysisChannelsCsv,
  analysisLayersCsv,
  analyze,
  CHANNEL_COLUMNS,
  compare,
  comparisonChannelsCsv,
  comparisonPairsCsv,
  csvField,
  equalizationCsv,
  equalize,
  formatComparison,
  formatProgress,
  formatTable,
  LAYER_COLUMNS,
  LOSSLESS_DB,
  modelExplorerNodeData,
  MODEL_EXPLORER_METRICS,
  PAIR_COLUMNS,
  RISK_COLORS,
  selectComparison,
  selectEqualization,
} from '../../web/src/index.js';
import {
  followerText,
  layerLabel,
  quantizationDetail,
  quantizationText,
  RISK_DB,
  riskColor,
  riskOf,
  riskOfDb,
} from '../../web/src/presentation.js';
import { colors } from '../../web/src/views/common.js';
import { fetchedModelFiles, generatedModelFiles, root, run, runCli, sharedModelFiles } from './helpers.mjs';

const tmp = fs.mkdtempSync(path.join(os.tmpdir(), 'quantlens-export-'));
after(() => fs.rmSync(tmp, { recursive: true, force: true }));
const generated = (name) => generatedModelFiles().find((f) => path.basename(f) === name);
const mlsd = fetchedModelFiles().find((f) => path.basename(f) === 'mlsd_320x320_tiny.onnx');
const realModels = [mlsd, ...sharedModelFiles()].filter(Boolean);
const anyReal = realModels[0];

// Reads a CSV file with Python's csv module and float(): the values as JSON
// (numbers, or the strings 'inf' / '-inf' / 'nan', null for an empty field).
const READ_CSV = `
import csv, json, math, sys
def val(s):
    if s == '': return None
    try:
        x = float(s)
    except ValueError:
        return s
    if math.isinf(x): return 'inf' if x > 0 else '-inf'
    if math.isnan(x): return 'nan'
    return x
with open(sys.argv[1], newline='', encoding='utf-8') as f:
    rows = list(csv.reader(f))
print(json.dumps({'header': rows[0], 'rows': [[c if i in set(int(k) for k in sys.argv[2].split(',') if k) else val(c) for i, c in enumerate(r)] for r in rows[1:]]}))
`;
async function readCsv(text, textColumns = []) {
  const file = path.join(tmp, `t${Math.random().toString(36).slice(2)}.csv`);
  fs.writeFileSync(file, text);
  const r = await run('/usr/bin/python3', ['-c', READ_CSV, file, textColumns.join(',')]);
  assert.equal(r.code, 0, r.stderr);
  return JSON.parse(r.stdout);
}
// What Python read, as a JS number (inf back to Infinity).
const num = (v) => (v === 'inf' ? Infinity : v === '-inf' ? -Infinity : v === 'nan' ? NaN : v);
const same = (read, expected, what) => {
  if (expected === null || expected === undefined || Number.isNaN(expected)) assert.equal(read, null, what);
  else assert.ok(Object.is(num(read), expected), `${what}: read ${read}, expected ${expected}`);
};

test('csvField quotes commas, quotes and line breaks (RFC 4180) and nothing else', () => {
  assert.equal(csvField('plain'), 'plain');
  assert.equal(csvField('a,b'), '"a,b"');
  assert.equal(csvField('say "hi"'), '"say ""hi"""');
  assert.equal(csvField('two\nlines'), '"two\nlines"');
  assert.equal(csvField('cr\r'), '"cr\r"');
  assert.equal(csvField(null), '');
  assert.equal(csvField(true), '1');
  assert.equal(csvField(Infinity), 'inf');
  assert.equal(csvField(-Infinity), '-inf');
  assert.equal(csvField(NaN), '');
  assert.equal(csvField(0.1 + 0.2), '0.30000000000000004');
});

test(
  'per-channel CSV read with Python gives back every number exactly',
  { skip: !anyReal && 'no real model available' },
  async () => {
    const a = await analyze(anyReal);
    const text = analysisChannelsCsv(a);
    assert.ok(text.endsWith('\r\n'));
    const csv = await readCsv(text, [1, 2, 3]);
    assert.deepEqual(csv.header, CHANNEL_COLUMNS);
    const col = Object.fromEntries(csv.header.map((h, i) => [h, i]));
    let k = 0;
    for (const l of a.layers) {
      if (l.error) continue;
      const outliers = new Set(l.outlierChannels);
      for (let c = 0; c < l.channels.count; c++, k++) {
        const row = csv.rows[k];
        assert.equal(row[col.layer], l.name);
        assert.equal(row[col.index], l.index);
        assert.equal(row[col.channel], c);
        assert.equal(row[col.outlier], outliers.has(c) ? 1 : 0);
        for (const key of ['min', 'max', 'mean', 'std', 'absMax', 'range', 'relativeRange']) {
          const arr = l.channels[key];
          // float32 arrays: the decimal rounds to the same float32; float64 arrays: the same double
          const got = arr instanceof Float32Array ? Math.fround(num(row[col[key]])) : num(row[col[key]]);
          same(got, arr[c], `${l.name}[${c}].${key}`);
        }
        for (const s of ['int8PerTensor', 'int8PerChannel', 'int4PerTensor', 'int4PerChannel']) {
          const v = l.channels.sqnr[s][c];
          same(
            Number.isFinite(v) ? Math.fround(num(row[col[s]])) : row[col[s]] === null ? null : num(row[col[s]]),
            v,
            `${l.name}[${c}] ${s}`,
          );
        }
      }
    }
    assert.equal(csv.rows.length, k);
  },
);

test(
  "per-layer CSV: the table's columns for every layer, riskiest first, numbers exact",
  { skip: !anyReal && 'no real model available' },
  async () => {
    const a = await analyze(anyReal);
    const csv = await readCsv(analysisLayersCsv(a), [2, 3, 4, 6, 7, 16, 17, 18]);
    assert.deepEqual(csv.header, LAYER_COLUMNS);
    const col = Object.fromEntries(csv.header.map((h, i) => [h, i]));
    assert.equal(csv.rows.length, a.layers.length);
    csv.rows.forEach((row, r) => {
      const l = a.layers[a.summary.ranking[r]];
      assert.equal(row[col.rank], r + 1);
      assert.equal(row[col.layer], l.name);
      assert.equal(row[col.shape], l.shape.join('x'));
      assert.equal(row[col.outliers], l.outlierChannels.length);
      assert.equal(row[col.inputOutliers], l.inputChannels.outliers.length);
      assert.equal(row[col.risk], riskOf(l));
      for (const s of ['int8PerTensor', 'int8PerChannel', 'int4PerTensor', 'int4PerChannel', 'int4Block32', 'int4Block128'])
        same(row[col[s]], l.sqnr[s], `${l.name} ${s}`);
    });
  },
);

test('CSV of names with commas, quotes and new lines reads back as the same names', async () => {
  const file = generated('hostile_names.onnx');
  if (!file) return;
  const a = await analyze(file);
  assert.ok(
    a.layers.some((l) => /[\n"]/.test(l.name)),
    'the fixture has a name with a new line and a quote',
  );
  const csv = await readCsv(analysisLayersCsv(a), [2, 3]);
  assert.deepEqual(csv.rows.map((r) => r[2]).sort(), a.layers.map((l) => l.name).sort());
  assert.deepEqual(csv.rows.map((r) => r[3]).sort(), a.layers.map((l) => l.path).sort());
  const ch = await readCsv(analysisChannelsCsv(a), [1, 2, 3]);
  assert.equal(
    ch.rows.length,
    a.layers.reduce((n, l) => n + (l.error ? 0 : l.channels.count), 0),
  );
});

test(
  'comparison CSVs: per pair and per channel, numbers exact, unmatched layers listed',
  { skip: !anyReal && 'no real model available' },
  async () => {
    const q = path.join(tmp, 'q.onnx');
    const r = await run('/usr/bin/python3', [path.join(root, 'tools', 'reference', 'quantize_qdq.py'), anyReal, q]);
    assert.equal(r.code, 0, r.stderr);
    const cmp = await compare(anyReal, q);
    const csv = await readCsv(comparisonPairsCsv(cmp), [1, 2, 3, 4, 5, 6, 7, 9]);
    assert.deepEqual(csv.header, PAIR_COLUMNS);
    assert.equal(csv.rows.length, cmp.pairs.length + cmp.unmatched.a.length + cmp.unmatched.b.length);
    cmp.pairs.forEach((p, k) => {
      const row = csv.rows[k];
      assert.equal(row[0], k);
      assert.equal(row[1], p.a.name);
      assert.equal(row[3], p.b.name);
      assert.equal(row[6], p.matchedBy);
      assert.match(row[7], /^int8 per-channel/);
      same(row[10], p.tensor.maxAbsDiff, 'maxAbsDiff');
      same(row[11], p.tensor.rmsDiff, 'rmsDiff');
      same(row[12], p.tensor.sqnr, 'sqnr');
    });
    const ch = await readCsv(comparisonChannelsCsv(cmp), [1, 2]);
    const p0 = cmp.pairs[0];
    for (let c = 0; c < p0.channels.count; c++) {
      same(ch.rows[c][6], p0.channels.sqnr[c], `sqnr[${c}]`);
      same(Math.fround(num(ch.rows[c][7])), p0.channels.minA[c], `minA[${c}]`);
    }
    assert.equal(
      ch.rows.length,
      cmp.pairs.reduce((n, p) => n + (p.channels ? p.channels.count : 0), 0),
    );
    // unmatched rows
    const fake = { ...cmp, unmatched: { a: ['only,a'], b: ['only "b"'] } };
    const u = await readCsv(comparisonPairsCsv(fake), [1, 3, 6, 9]);
    assert.deepEqual(
      u.rows.at(-2).slice(0, 7),
      [null, 'only,a', null, '', null, null, 'unmatched'].map((x, i) => (i === 3 ? '' : x)),
    );
    assert.equal(u.rows.at(-1)[3], 'only "b"');
  },
);

test('equalization CSV has one row per changed layer with before/after SQNR', async () => {
  const file = generated('cle_convnet.onnx');
  if (!file) return;
  const eq = await equalize(file);
  const csv = await readCsv(equalizationCsv(eq), [0, 1, 2]);
  assert.equal(csv.rows.length, eq.layers.length);
  eq.layers.forEach((l, k) => {
    assert.equal(csv.rows[k][0], l.name);
    same(csv.rows[k][csv.header.indexOf('int8PerTensorAfter')], l.after.sqnr.int8PerTensor, 'after');
  });
  const sel = selectEqualization(eq, /^c1$/);
  assert.deepEqual(
    sel.layers.map((l) => l.name),
    ['c1'],
  );
  assert.equal(sel.summary.int8PerTensor.meanAfter, eq.layers[0].after.sqnr.int8PerTensor);
  assert.equal(sel.summary.layersChanged, eq.summary.layersChanged);
});

// The main graph of a model read with onnx: its name, node names, and output names.
const READ_GRAPH = `
import json, sys, onnx
m = onnx.load(sys.argv[1], load_external_data=False)
g = m.graph
print(json.dumps({'graph': g.name, 'nodes': [n.name for n in g.node], 'outputs': [o for n in g.node for o in n.output]}))
`;
async function readGraph(file) {
  const r = await run('/usr/bin/python3', ['-c', READ_GRAPH, file]);
  assert.equal(r.code, 0, r.stderr);
  return JSON.parse(r.stdout);
}

// Model Explorer's colouring (node_data_provider_extension_service.ts): the first
// threshold with value <= threshold.
const thresholdColor = (value, thresholds) => (thresholds.find((t) => value <= t.value) || {}).bgColor;

function checkNodeData(nodeData, graph, analysis, metric) {
  const hex = /^#[0-9a-fA-F]{6}$/;
  // ModelNodeData: graph id -> GraphNodeData (the graph's name is the ONNX adapter's graph id)
  let gd = nodeData;
  if (graph.graph) {
    assert.deepEqual(Object.keys(nodeData), [graph.graph]);
    gd = nodeData[graph.graph];
  }
  assert.deepEqual(Object.keys(gd).sort(), ['results', 'thresholds']);
  assert.equal(typeof gd.results, 'object');
  const names = new Set(graph.nodes.filter(Boolean));
  for (const [key, r] of Object.entries(gd.results)) {
    assert.ok(names.has(key), `key ${JSON.stringify(key)} is a node name of the main graph`);
    assert.deepEqual(Object.keys(r).sort(), ['bgColor', 'value']);
    assert.equal(typeof r.value, 'number');
    assert.ok(Number.isFinite(r.value), `${key}: ${r.value}`);
    assert.match(r.bgColor, hex);
    assert.ok(Object.values(RISK_COLORS).includes(r.bgColor));
  }
  assert.ok(Array.isArray(gd.thresholds) && gd.thresholds.length >= 2);
  for (let i = 0; i < gd.thresholds.length; i++) {
    const t = gd.thresholds[i];
    assert.deepEqual(Object.keys(t).sort(), ['bgColor', 'value']);
    assert.ok(Number.isFinite(t.value));
    assert.match(t.bgColor, hex);
    if (i) assert.ok(t.value > gd.thresholds[i - 1].value, 'thresholds increase');
  }
  // values and colours agree with the analysis
  for (const l of analysis.layers) {
    const r = gd.results[l.name];
    if (!r) continue;
    if (metric === 'outliers') {
      assert.equal(r.value, l.outlierChannels.length);
      assert.equal(thresholdColor(r.value, gd.thresholds), r.bgColor);
    } else {
      const db = l.sqnr[metric];
      assert.equal(r.value, db === Infinity ? LOSSLESS_DB : Math.round(db * 100) / 100);
      if (metric === 'int8PerTensor') assert.equal(r.bgColor, colors.risk[riskOf(l)]);
      else assert.equal(thresholdColor(Math.min(db, LOSSLESS_DB), gd.thresholds), r.bgColor, `${l.name} ${metric}`);
    }
  }
  return gd;
}

test("the node data colours are the app's risk colours and thresholds", () => {
  assert.deepEqual(RISK_COLORS, colors.risk);
  const a = { model: { graph: 'g' }, layers: [] };
  const t = modelExplorerNodeData(a).nodeData.g.thresholds;
  assert.deepEqual(
    t.map((x) => x.bgColor),
    [colors.risk.high, colors.risk.medium, colors.risk.low],
  );
  // "value <= threshold" in Model Explorer, "SQNR < 30 dB" in the risk rule
  assert.ok(t[0].value < RISK_DB.high && thresholdColor(RISK_DB.high, t) === colors.risk.medium);
  assert.ok(thresholdColor(RISK_DB.high - 1e-9, t) === colors.risk.high);
  assert.ok(t[1].value < RISK_DB.medium && thresholdColor(RISK_DB.medium, t) === colors.risk.low);
  assert.throws(() => modelExplorerNodeData(a, { metric: 'bogus' }), TypeError);
  // no graph name: a single GraphNodeData, which Model Explorer applies to the graph on screen
  assert.deepEqual(Object.keys(modelExplorerNodeData({ model: { graph: '' }, layers: [] }).nodeData).sort(), [
    'results',
    'thresholds',
  ]);
});

test('presentation: the risk rule, its levels and colours, layer labels, followers and quantization in words', () => {
  const layer = (db, outliers = 0) => ({ sqnr: { int8PerTensor: db }, outlierChannels: new Array(outliers).fill(0) });
  assert.equal(riskOf(layer(RISK_DB.high - 1e-9)), 'high');
  assert.equal(riskOf(layer(RISK_DB.high)), 'medium');
  assert.equal(riskOf(layer(RISK_DB.medium)), 'low');
  assert.equal(riskOf(layer(RISK_DB.medium, 1)), 'medium', 'an outlier channel is at least medium');
  assert.equal(riskOf(layer(RISK_DB.high - 1, 1)), 'high');
  assert.equal(riskOf(layer(NaN)), 'high', 'NaN-safe');
  assert.equal(riskOf(layer(Infinity)), 'low');
  assert.equal(riskOf({ error: { code: 'X' } }), 'failed');
  assert.deepEqual([RISK_DB.high - 1, RISK_DB.high, RISK_DB.medium, Infinity, NaN].map(riskOfDb), [
    'high',
    'medium',
    'low',
    'low',
    'high',
  ]);
  for (const level of ['high', 'medium', 'low', 'failed']) assert.equal(riskColor(level), colors.risk[level]);
  assert.equal(layerLabel({ name: 'c', path: '' }), 'c');
  assert.equal(layerLabel({ name: 'c', path: 'Loop_3/body' }), 'Loop_3/body/c');
  assert.equal(followerText({ follower: { kind: 'relu6' } }), 'relu6');
  assert.equal(followerText({ follower: { kind: 'batchnorm' }, activation: { kind: 'relu' } }), 'bn+relu');
  assert.equal(followerText({ follower: { kind: 'none' } }), '');
  const side = (quant) => ({ dtype: 'float32', quant });
  assert.equal(quantizationText(side(null)), 'float32');
  assert.equal(quantizationText(side({ dtype: 'int8', axis: null, via: 'QDQ' })), 'int8 per-tensor (QDQ)');
  assert.equal(quantizationText(side({ dtype: 'int8', axis: 1, via: 'QLinearMatMul' })), 'int8 per-channel (QLinearMatMul)');
  assert.equal(
    quantizationText(side({ dtype: 'int8', axis: 1, via: 'QLinearMatMul' }), { axis: true }),
    'int8 per-channel (axis 1) (QLinearMatMul)',
  );
  assert.equal(quantizationText(side({ dtype: 'uint8', axis: 0, via: '' }), { axis: true }), 'uint8 per-channel');
  assert.equal(quantizationDetail(null, String), 'none (float weights)');
  assert.equal(
    quantizationDetail({ dtype: 'int8', axis: 0, scale: [0.5, 0.25], zeroPoint: [0, 0], via: ['DequantizeLinear'] }, String),
    'int8, per-axis (axis 0), scale 0.25..0.5 (2), zero point 0..0, via DequantizeLinear',
  );
  // MatMulNBits: per block along K, never shown as per-tensor.
  const nbits = { dtype: 'uint4', axis: null, via: 'MatMulNBits', granularity: 'per-block', bits: 4, blockSize: 32 };
  assert.equal(quantizationText(side({ ...nbits, symmetric: true })), 'uint4 per-block of 32, symmetric (MatMulNBits)');
  assert.equal(
    quantizationDetail({ ...nbits, symmetric: false, scale: [0.5, -0.25, 1], zeroPoint: [3, 8, 9] }, String),
    'uint4, per-block of 32, asymmetric, scale -0.25..1 (3), zero point 3..9, via MatMulNBits',
  );
});

for (const file of realModels) {
  test(`Model Explorer node data for ${path.basename(file)} attaches to its nodes`, async () => {
    const graph = await readGraph(file);
    const a = await analyze(file);
    for (const metric of MODEL_EXPLORER_METRICS) {
      const me = modelExplorerNodeData(a, { metric });
      const gd = checkNodeData(me.nodeData, graph, a, metric);
      assert.equal(Object.keys(gd.results).length + me.skipped.length, a.layers.length, metric);
      // every weight layer of the main graph with a named node is there
      for (const l of a.layers) if (!l.path && !l.error && graph.nodes.includes(l.name)) assert.ok(l.name in gd.results, l.name);
    }
    // the CLI writes the same document
    const r = await runCli(['analyze', file, '--format', 'model-explorer', '--metric', 'outliers']);
    assert.equal(r.code, 0, r.stderr);
    assert.deepEqual(JSON.parse(r.stdout), modelExplorerNodeData(a, { metric: 'outliers' }).nodeData);
  });
}

test('Model Explorer node data leaves out sub-graph layers, unnamed nodes and failed layers', async () => {
  for (const name of ['hostile_names.onnx', 'subgraphs.onnx', 'followers.onnx']) {
    const file = generated(name);
    if (!file) continue;
    const graph = await readGraph(file);
    const a = await analyze(file);
    const me = modelExplorerNodeData(a);
    const gd = checkNodeData(me.nodeData, graph, a, 'int8PerTensor');
    for (const s of me.skipped)
      assert.ok(!(s.layer in gd.results) || a.layers.filter((l) => l.name === s.layer).length > 1, s.layer);
    for (const l of a.layers.filter((x) => x.path))
      assert.ok(me.skipped.some((s) => s.layer === l.name && /sub-graph/.test(s.reason)));
  }
});

test(
  'selectComparison keeps matching pairs and recomputes the summary',
  { skip: !anyReal && 'no real model available' },
  async () => {
    const cmp = await compare(anyReal, anyReal);
    const all = selectComparison(cmp, /.*/);
    assert.deepEqual(all.summary, cmp.summary);
    const one = selectComparison(cmp, new RegExp(`^${cmp.pairs[1].a.name.replace(/[.*+?^${}()|[\]\\]/g, '\\$&')}$`));
    assert.equal(one.pairs.length, 1);
    assert.equal(one.pairs[0].index, 1);
    assert.equal(one.summary.pairs, 1);
  },
);

test('formatProgress: one line, bounded width, percentage and counts', () => {
  const line = formatProgress({ phase: 'analyze', done: 5, total: 20, layer: 'conv\nname' }, { width: 60 });
  assert.ok(line.length <= 59);
  assert.match(line, /^analyze +\[#+\.+\] +25% 5\/20 conv name$/);
  assert.doesNotMatch(line, /[\u0000-\u001f]/);
  assert.match(formatProgress({ phase: 'read', done: 2e6, total: 8e6 }, { width: 80 }), /25% 2\.0\/8\.0 MB$/);
  assert.match(formatProgress({ phase: 'equalize', done: 0, total: 1 }), /0% 0\/1$/);
  assert.match(formatProgress({ phase: 'compare', done: 3, total: 3 }, { label: 'compare' }), /\[#+\] 100% 3\/3$/);
});

// On a terminal the tables colour a row red when the app calls it high risk: judged on the
// SQNR itself, so a layer at 29.96 dB (printed 30.0) is red as it is in the app.
test(
  'table rows are red exactly when the layer or pair is high risk',
  { skip: !anyReal && 'no real model available' },
  async () => {
    const red = (line) => line.startsWith('\x1b[31m');
    const r = await analyze(anyReal);
    const lines = formatTable(r, { top: 1000, color: true })
      .split('\n')
      .filter((l) => /^(\x1b\[31m)? *\d+ {2}/.test(l));
    assert.equal(lines.length, r.summary.ranking.length);
    r.summary.ranking.forEach((k, i) => assert.equal(red(lines[i]), riskOf(r.layers[k]) === 'high', r.layers[k].name));
    assert.ok(lines.some(red) || !r.layers.some((l) => riskOf(l) === 'high'));
    // A layer just below the bar whose rounded text reads 30.0.
    const l = r.layers[r.summary.ranking[0]];
    const edge = { ...r, layers: r.layers.map((x) => (x === l ? { ...x, sqnr: { ...x.sqnr, int8PerTensor: 29.96 } } : x)) };
    const first = formatTable(edge, { top: 1, color: true })
      .split('\n')
      .find((x) => x.includes(' 30.0 '));
    assert.ok(first && red(first), first);
    assert.ok(!formatTable(edge, { top: 1 }).includes('\x1b['), 'no colour unless asked');
    const cmp = await compare(anyReal, anyReal);
    const cl = formatComparison(cmp, { top: 1000, color: true })
      .split('\n')
      .filter((x) => /^(\x1b\[31m)? *\d+ {2}/.test(x));
    assert.equal(cl.length, cmp.pairs.length);
    assert.ok(!cl.some(red), 'a model against itself is lossless, never red');
  },
);
