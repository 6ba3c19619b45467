// The CLI as a user meets it: exit status, stdout, one-line messages on stderr.
import assert from 'node:assert/strict';
import fs from 'node:fs';
import os from 'node:os';
import path from 'node:path';
import { test } from 'node:test';
import {
  cli,
  fetchedModelFiles,
  generatedModelFiles,
  makeSkippedModel,
  root,
  run,
  runCli,
  sharedModelFiles,
} from './helpers.mjs';
import { unpackData } from '../../web/src/report.js';
import { RISK_LEVELS, riskOf } from '../../web/src/presentation.js';
import * as pb from './pb.mjs';

const tmp = fs.mkdtempSync(path.join(os.tmpdir(), 'quantlens-cli-'));
const write = (name, data) => {
  const f = path.join(tmp, name);
  fs.writeFileSync(f, data);
  return f;
};
const anyReal = [...fetchedModelFiles(), ...sharedModelFiles()][0];

test('analyze prints a table of the riskiest layers', { skip: !anyReal && 'no real model available' }, async () => {
  const r = await runCli(['analyze', anyReal, '--top', '5']);
  assert.equal(r.code, 0, r.stderr);
  assert.match(r.stdout, /INT8\/T\s+INT8\/C\s+INT4\/T\s+INT4\/C/);
  const rows = r.stdout.split('\n').filter((l) => /^\d+ {2}\S/.test(l));
  assert.equal(rows.length, 5);
  assert.match(r.stdout, /Riskiest: .+ dB INT8 per-tensor/);
  assert.match(r.stdout, /\n\d+ of \d+ layers have outlier input channels \(\d+ input channels, /);
  assert.equal(r.stderr, '');
});

test('analyze counts the outlier input channels under the table', async (t) => {
  const file = generatedModelFiles().find((f) => path.basename(f) === 'input_channels.onnx');
  if (!file) return t.skip('models/generated/input_channels.onnx missing (run tools/make_test_models.py)');
  const r = await runCli(['analyze', file]);
  assert.equal(r.code, 0, r.stderr);
  // One input channel scaled x50 in each of its three layers (tools/make_test_models.py).
  assert.match(r.stdout, /\n3 of 3 layers have outlier input channels \(3 input channels, /);
});

test(
  '--json document has the documented shape and the table agrees with it',
  { skip: !anyReal && 'no real model available' },
  async () => {
    const r = await runCli(['analyze', '--json', anyReal]);
    assert.equal(r.code, 0, r.stderr);
    const doc = JSON.parse(r.stdout);
    assert.equal(doc.schema, 'quantlens.analysis/1');
    for (const k of ['producer', 'producerVersion', 'irVersion', 'opsets', 'bytes']) assert.ok(k in doc.model, k);
    assert.equal(doc.model.bytes, fs.statSync(anyReal).size);
    const l = doc.layers[0];
    for (const k of [
      'name',
      'op',
      'weight',
      'shape',
      'dtype',
      'channelAxis',
      'groups',
      'depthwise',
      'channels',
      'tensor',
      'histogram',
      'outlierChannels',
      'sqnr',
    ])
      assert.ok(k in l, k);
    for (const k of ['min', 'max', 'mean', 'std', 'absMax']) assert.equal(l.channels[k].length, l.channels.count, k);
    assert.equal(
      l.histogram.counts.reduce((a, b) => a + b, 0),
      l.shape.reduce((a, b) => a * b, 1),
    );
    // ranking: riskiest level first (high, medium, low, failed), within a level (a float
    // model) lowest INT8 per-tensor SQNR first; worstInt8PerTensor the lowest SQNR of all
    const level = doc.summary.ranking.map((k) => RISK_LEVELS.indexOf(riskOf(doc.layers[k])));
    const s = doc.summary.ranking.map((k) => doc.layers[k].sqnr.int8PerTensor ?? Infinity);
    for (let i = 1; i < s.length; i++)
      assert.ok(level[i - 1] < level[i] || (level[i - 1] === level[i] && s[i - 1] <= s[i]), `ranking not sorted at ${i}`);
    assert.equal(doc.summary.worstInt8PerTensor.sqnr, Math.min(...s), 'worstInt8PerTensor is the lowest SQNR');
    const table = await runCli(['analyze', anyReal, '--top', '1']);
    const worst = doc.layers[doc.summary.ranking[0]];
    assert.ok(table.stdout.includes(worst.sqnr.int8PerTensor.toFixed(1)), 'table shows the worst layer SQNR');
  },
);

test('--help for the program and for analyze', async () => {
  const a = await runCli(['--help']);
  assert.equal(a.code, 0);
  assert.match(a.stdout, /Usage: quantlens <command>/);
  const b = await runCli(['analyze', '--help']);
  assert.equal(b.code, 0);
  assert.match(b.stdout, /--json/);
});

test('usage errors exit 2', async () => {
  for (const args of [
    [],
    ['frobnicate'],
    ['analyze'],
    ['analyze', 'a.onnx', 'b.onnx'],
    ['analyze', 'a.onnx', '--bogus'],
    ['analyze', 'a.onnx', '--top', '0'],
  ]) {
    const r = await runCli(args);
    assert.equal(r.code, 2, `${args.join(' ')}: ${r.stderr}`);
    assert.ok(r.stderr.length > 0);
  }
});

// Each bad input: exit 2, and the first stderr line names the problem.
const badInputs = () => {
  const real =
    [...sharedModelFiles(), ...fetchedModelFiles()].find((f) => f.includes('mnist')) ||
    [...sharedModelFiles(), ...fetchedModelFiles()][0];
  const cases = [
    ['empty file', write('empty.onnx', ''), /empty/],
    ['text file', write('notes.onnx', 'hello, this is not a model\n'), /not an ONNX model/],
    [
      'PNG image',
      write('image.onnx', Uint8Array.from([0x89, 0x50, 0x4e, 0x47, 0x0d, 0x0a, 0x1a, 0x0a, 0, 0, 0, 13])),
      /not an ONNX model/,
    ],
    ['missing file', path.join(tmp, 'nope.onnx'), /no such file/],
    ['directory', tmp, /directory/],
    [
      'graph field with the wrong wire type',
      write('wiretype.onnx', pb.concat(pb.int(1, 7), pb.int(7, 1))),
      /wire type varint, expected length-delimited/,
    ],
    [
      'length past the end',
      write('length.onnx', pb.concat(pb.int(1, 7), pb.tag(7, 2), pb.varint(1000), [1, 2, 3])),
      /length 1000 runs past the end.*at byte/,
    ],
    ['varint over 10 bytes', write('varint.onnx', Uint8Array.from([0x08, ...Array(11).fill(0xff), 0x01])), /over-long varint/],
    [
      'negative dimension',
      write('negdim.onnx', pb.convModel(pb.tensor({ name: 'w', dims: [-4, 3, 3, 3], raw: new Uint8Array(0) }))),
      /'w' has negative dimension -4/,
    ],
    [
      'dimensions overflow',
      write('overflow.onnx', pb.convModel(pb.tensor({ name: 'w', dims: [2 ** 40, 2 ** 40, 1, 1], raw: new Uint8Array(4) }))),
      /'w' has dimensions whose product overflows/,
    ],
    [
      'data size does not match dims x dtype',
      write('size.onnx', pb.convModel(pb.tensor({ name: 'w', dims: [2, 1, 1, 1], raw: pb.floatsLE([1]) }))),
      /'w' holds 4 bytes of raw_data but its 2 elements of float32 need 8/,
    ],
  ];
  // sub-graphs nested 200 deep: If -> then_branch -> If -> ...
  let g = pb.graph({ nodes: [] });
  for (let i = 0; i < 200; i++) {
    const attr = pb.concat(pb.str(1, 'then_branch'), pb.int(20, 5), pb.bytes(6, g));
    g = pb.graph({ nodes: [pb.node({ inputs: ['c'], outputs: ['o'], op: 'If', attrs: [attr] })] });
  }
  cases.push(['sub-graphs nested 200 deep', write('deep.onnx', pb.model(g)), /nested deeper than 32/]);
  // 8 million empty NodeProtos (16 MB): decoded naively they would need ~2 GB of Node structures
  const emptyNodes = new Uint8Array(8e6 * 2);
  for (let i = 0; i < emptyNodes.length; i += 2) emptyNodes[i] = 0x0a; // field 1 (node), length 0
  cases.push(['millions of empty nodes', write('nodes.onnx', pb.model(emptyNodes)), /structure would take more than 512 MB/]);
  if (real) {
    const bytes = fs.readFileSync(real);
    cases.push(['truncated real model', write('truncated.onnx', bytes.subarray(0, Math.floor(bytes.length / 2))), /at byte \d+/]);
  }
  const ext = generatedModelFiles().find((f) => path.basename(f) === 'external_data.onnx');
  if (ext)
    cases.push([
      'external data file missing',
      write('external_data.onnx', fs.readFileSync(ext)),
      /MISSING_EXTERNAL_DATA: .*external data file '.+' not found/,
    ]);
  return cases;
};

test('bad input exits 2 with one clear line', async (t) => {
  for (const [title, file, pattern] of badInputs()) {
    await t.test(title, async () => {
      const r = await runCli(['analyze', file]);
      assert.equal(r.code, 2, `exit ${r.code}; stderr: ${r.stderr}`);
      const lines = r.stderr.trim().split('\n');
      assert.equal(lines.length, 1, `one line expected: ${r.stderr}`);
      assert.match(lines[0], /^quantlens: [A-Z_]+: /);
      assert.match(lines[0], pattern);
      assert.equal(r.stdout, '');
    });
  }
});

test('a layer with an unsupported weight type is reported, the rest analysed', async () => {
  // complex64 (type 14) weights: never misread as float
  const m = pb.model(
    pb.graph({
      nodes: [
        pb.node({ inputs: ['x', 'w1'], outputs: ['y1'], name: 'complex_conv', op: 'Conv' }),
        pb.node({ inputs: ['x', 'w2'], outputs: ['y2'], name: 'float_conv', op: 'Conv' }),
      ],
      inits: [
        pb.tensor({ name: 'w1', dims: [2, 1, 1, 1], type: 14, raw: new Uint8Array(16) }),
        pb.tensor({ name: 'w2', dims: [2, 1, 1, 1], raw: pb.floatsLE([1, -3]) }),
      ],
    }),
  );
  const r = await runCli(['analyze', '--json', write('complex.onnx', m)]);
  assert.equal(r.code, 0, r.stderr);
  assert.match(r.stderr, /warning: layer complex_conv: UNSUPPORTED_DTYPE: .*'w1' has type complex64/);
  const doc = JSON.parse(r.stdout);
  assert.equal(doc.layers[0].error.code, 'UNSUPPORTED_DTYPE');
  assert.deepEqual(doc.layers[1].channels.absMax, [1, 3]);
});

// ---------------------------------------------------------------------------
// Formats, thresholds, layer selection, help and the progress bar.
const genModel = (name) => generatedModelFiles().find((f) => path.basename(f) === name);
const cleModel = genModel('cle_convnet.onnx');
const anyModel = anyReal || cleModel;
let quantizedCopy = null;
async function qdqCopy() {
  if (!quantizedCopy) {
    quantizedCopy = path.join(tmp, 'qdq-copy.onnx');
    const r = await run('/usr/bin/python3', [path.join(root, 'tools', 'reference', 'quantize_qdq.py'), anyModel, quantizedCopy]);
    assert.equal(r.code, 0, r.stderr);
  }
  return quantizedCopy;
}
const csvHeader = (text) => text.split('\r\n')[0].split(',');
const isCsv = (text, first) => {
  assert.ok(text.endsWith('\r\n'), 'CRLF records');
  assert.equal(csvHeader(text)[0], first);
};

test('every command x format exits 0 and writes its format', async () => {
  const b = await qdqCopy();
  const cases = [
    [['analyze', anyModel], (o) => assert.match(o, /INT8\/T/)],
    [['analyze', anyModel, '--format', 'table'], (o) => assert.match(o, /INT8\/T/)],
    [['analyze', anyModel, '--format', 'json'], (o) => assert.equal(JSON.parse(o).schema, 'quantlens.analysis/1')],
    [['analyze', anyModel, '--format', 'csv'], (o) => isCsv(o, 'rank')],
    [['analyze', anyModel, '--format', 'csv-channels'], (o) => isCsv(o, 'index')],
    [['analyze', anyModel, '--format', 'model-explorer'], (o) => assert.ok(Object.values(JSON.parse(o))[0].results)],
    [['equalize', cleModel], (o) => assert.match(o, /weight layers changed/)],
    [['equalize', cleModel, '--format', 'json'], (o) => assert.equal(JSON.parse(o).schema, 'quantlens.equalization/1')],
    [['equalize', cleModel, '--format', 'csv'], (o) => isCsv(o, 'layer')],
    [
      ['compare', anyModel, b],
      (o) => assert.match(o, /layer A +layer B +matched by +B quantization +max\|diff\| +RMS diff +SQNR dB/),
    ],
    [['compare', anyModel, b, '--format', 'table'], (o) => assert.match(o, /int8 per-channel/)],
    [['compare', anyModel, b, '--format', 'json'], (o) => assert.equal(JSON.parse(o).schema, 'quantlens.comparison/1')],
    [['compare', anyModel, b, '--format', 'csv'], (o) => isCsv(o, 'pair')],
    [['compare', anyModel, b, '--format', 'csv-channels'], (o) => isCsv(o, 'pair')],
  ];
  for (const [args, check] of cases) {
    const r = await runCli(args);
    assert.equal(r.code, 0, `${args.join(' ')}: ${r.stderr}`);
    check(r.stdout);
  }
  // --json is --format json
  const j = await runCli(['compare', anyModel, b, '--json']);
  const f = await runCli(['compare', anyModel, b, '--format', 'json']);
  assert.equal(j.stdout, f.stdout);
  const r = await runCli(['report', anyModel, '-o', path.join(tmp, 'r.html')]);
  assert.equal(r.code, 0, r.stderr);
  assert.match(r.stdout, /^Wrote .*r\.html/);
});

test('usage errors of the new options exit 2 and name the problem', async () => {
  const cases = [
    [['analyze', anyModel, '--format', 'xml'], /--format takes one of table, json, csv, csv-channels, model-explorer/],
    [['equalize', anyModel, '--format', 'model-explorer'], /--format takes one of table, json, csv$/m],
    [['analyze', anyModel, '--json', '--format', 'csv'], /--json and --format csv disagree/],
    [['analyze', anyModel, '--metric', 'outliers'], /--metric goes with --format model-explorer/],
    [['analyze', anyModel, '--format', 'model-explorer', '--metric', 'int2'], /--metric takes one of/],
    [['analyze', anyModel, '--fail-below-sqnr', 'abc'], /--fail-below-sqnr takes a number/],
    [['analyze', anyModel, '--fail-below-sqnr'], /needs a value/],
    [['analyze', anyModel, '--layers', '('], /--layers: /],
    [['compare', anyModel], /compare takes two models/],
    [['compare', anyModel, anyModel, anyModel], /compare takes two models/],
    [['report', anyModel, '-o', path.join(tmp, 'x.html'), '--format', 'json'], /report does not take --format/],
    [['analyze', anyModel, '--equalize'], /analyze does not take --equalize/],
    [['help', 'frobnicate'], /unknown command 'frobnicate'/],
  ];
  for (const [args, pattern] of cases) {
    const r = await runCli(args);
    assert.equal(r.code, 2, `${args.join(' ')}: ${r.stderr}`);
    assert.match(r.stderr.split('\n')[0], pattern);
    assert.equal(r.stdout, '');
  }
});

test('--fail-below-sqnr: exit 3 and the offenders on stderr, worst first; exit 0 when all pass', async () => {
  const doc = JSON.parse((await runCli(['analyze', anyModel, '--json'])).stdout);
  const dbs = doc.layers
    .map((l) => l.sqnr.int8PerTensor)
    .filter((x) => x !== null)
    .sort((x, y) => x - y);
  const threshold = (dbs[2] + dbs[3]) / 2; // three layers below
  for (const format of ['table', 'json', 'csv']) {
    const r = await runCli(['analyze', anyModel, '--format', format, '--fail-below-sqnr', String(threshold)]);
    assert.equal(r.code, 3, r.stderr);
    assert.ok(r.stdout.length > 0, 'the output is still written');
    const lines = r.stderr.trim().split('\n');
    assert.match(
      lines[0],
      new RegExp(`^quantlens: 3 of ${doc.layers.length} layers have an INT8 per-tensor SQNR below ${threshold} dB:$`),
    );
    const worst = doc.summary.ranking.slice(0, 3).map((k) => doc.layers[k]);
    assert.deepEqual(
      lines.slice(1).map((l) => l.trim().split(/\s{2,}/)),
      worst.map((l) => [l.name, `${l.sqnr.int8PerTensor.toFixed(1)} dB`]),
    );
  }
  const ok = await runCli(['analyze', anyModel, '--fail-below-sqnr', String(dbs[0] - 1)]);
  assert.equal(ok.code, 0, ok.stderr);
  assert.equal(ok.stderr, '');
  // --layers narrows what is judged
  const worstName = doc.layers[doc.summary.ranking[0]].name;
  const safe = doc.layers[doc.summary.ranking.at(-1)].name;
  const sel = await runCli(['analyze', anyModel, '--layers', `^${safe}$`, '--fail-below-sqnr', String(threshold)]);
  assert.equal(sel.code, 0, sel.stderr);
  const bad = await runCli([
    'analyze',
    anyModel,
    '--layers',
    `^${worstName}$`,
    '--fail-below-sqnr',
    String(threshold),
    '--format',
    'csv',
  ]);
  assert.equal(bad.code, 3);
  assert.match(bad.stderr, /1 of 1 layers/);
});

test('--fail-below-sqnr counts a layer that could not be analysed, and says why', async () => {
  const m = pb.model(
    pb.graph({
      nodes: [
        pb.node({ inputs: ['x', 'w1'], outputs: ['y1'], name: 'complex_conv', op: 'Conv' }),
        pb.node({ inputs: ['x', 'w2'], outputs: ['y2'], name: 'float_conv', op: 'Conv' }),
      ],
      inits: [
        pb.tensor({ name: 'w1', dims: [2, 1, 1, 1], type: 14, raw: new Uint8Array(16) }),
        pb.tensor({ name: 'w2', dims: [2, 1, 1, 1], raw: pb.floatsLE([1, -3]) }),
      ],
    }),
  );
  const r = await runCli(['analyze', write('complex2.onnx', m), '--fail-below-sqnr', '-100']);
  assert.equal(r.code, 3, r.stderr);
  assert.match(
    r.stderr,
    /1 of 2 layers have an INT8 per-tensor SQNR below -100 dB:\n\s+complex_conv\s+failed: UNSUPPORTED_DTYPE: .*complex64/,
  );
});

test(
  'equalize --fail-below-sqnr judges the equalized model; --layers selects the report rows',
  { skip: !cleModel && 'no generated models' },
  async () => {
    const eq = JSON.parse((await runCli(['equalize', cleModel, '--json'])).stdout);
    const out = path.join(tmp, 'eq.onnx');
    await runCli(['equalize', cleModel, '-o', out]);
    const after = JSON.parse((await runCli(['analyze', out, '--json'])).stdout);
    const dbs = after.layers.map((l) => l.sqnr.int8PerTensor).sort((x, y) => x - y);
    const r = await runCli(['equalize', cleModel, '--fail-below-sqnr', String((dbs[0] + dbs[1]) / 2)]);
    assert.equal(r.code, 3, r.stderr);
    assert.match(r.stderr, /^quantlens: 1 of \d+ layers of the equalized model have an INT8 per-tensor SQNR below/);
    assert.match(
      r.stderr.split('\n')[1],
      new RegExp(`^\\s+${after.layers[after.summary.ranking[0]].name}\\s+${dbs[0].toFixed(1)} dB$`),
    );
    assert.equal((await runCli(['equalize', cleModel, '--fail-below-sqnr', String(dbs[0] - 1)])).code, 0);
    const name = eq.layers[1].name;
    const sel = JSON.parse((await runCli(['equalize', cleModel, '--json', '--layers', `^${name}$`])).stdout);
    assert.deepEqual(
      sel.layers.map((l) => l.name),
      [name],
    );
    assert.equal(sel.summary.layersChanged, eq.summary.layersChanged);
    const table = await runCli(['equalize', cleModel, '--layers', `^${name}$`]);
    assert.match(table.stdout, new RegExp(`--layers \\^${name}\\$: 1 of ${eq.layers.length} changed layers shown`));
    const csv = await runCli(['equalize', cleModel, '--format', 'csv', '--layers', `^${name}$`]);
    assert.equal(csv.stdout.trim().split('\r\n').length, 2);
  },
);

test('compare: --layers selects pairs, --fail-below-sqnr lists the pairs below', async () => {
  const b = await qdqCopy();
  const doc = JSON.parse((await runCli(['compare', anyModel, b, '--json'])).stdout);
  const sorted = doc.pairs.map((p) => p.tensor.sqnr).sort((x, y) => x - y);
  const r = await runCli(['compare', anyModel, b, '--fail-below-sqnr', String((sorted[1] + sorted[2]) / 2)]);
  assert.equal(r.code, 3, r.stderr);
  assert.match(r.stderr, new RegExp(`^quantlens: 2 of ${doc.pairs.length} pairs have an SQNR \\(B against A\\) below`));
  assert.match(
    r.stderr.split('\n')[1],
    new RegExp(`^\\s+${doc.pairs[doc.summary.worst.pair].a.name}\\s+${doc.summary.worst.sqnr.toFixed(1)} dB$`),
  );
  const name = doc.pairs[0].a.name;
  const sel = JSON.parse((await runCli(['compare', anyModel, b, '--json', '--layers', `^${name}$`])).stdout);
  assert.deepEqual(
    sel.pairs.map((p) => p.a.name),
    [name],
  );
  assert.equal(sel.summary.pairs, 1);
  const csv = await runCli(['compare', anyModel, b, '--format', 'csv', '--layers', `^${name}$`]);
  assert.equal(csv.stdout.trim().split('\r\n').length, 2);
  const table = await runCli(['compare', anyModel, b, '--top', '2']);
  assert.equal(table.stdout.split('\n').filter((l) => /^\d+ {2}\S/.test(l)).length, 2);
  assert.match(table.stdout, /more pairs not shown/);
});

test('--layers on analyze (csv, model-explorer) and report selects by name', async () => {
  const doc = JSON.parse((await runCli(['analyze', anyModel, '--json'])).stdout);
  const esc = (x) => x.replace(/[.*+?^${}()|[\]\\]/g, '\\$&');
  const re = new RegExp(`^(${esc(doc.layers[0].name)}|${esc(doc.layers[1].name)})$`);
  const want = doc.layers
    .filter((l) => re.test(l.name))
    .map((l) => l.name)
    .sort();
  assert.ok(want.length >= 1 && want.length < doc.layers.length);
  const csv = await runCli(['analyze', anyModel, '--format', 'csv', '--layers', re.source]);
  assert.deepEqual(
    csv.stdout
      .trim()
      .split('\r\n')
      .slice(1)
      .map((l) => l.split(',')[2])
      .sort(),
    want,
  );
  const me = JSON.parse((await runCli(['analyze', anyModel, '--format', 'model-explorer', '--layers', re.source])).stdout);
  assert.deepEqual(Object.keys(Object.values(me)[0].results).sort(), want);
  const html = path.join(tmp, 'sel.html');
  const r = await runCli(['report', anyModel, '-o', html, '--layers', re.source]);
  assert.equal(r.code, 0, r.stderr);
  const packed = /<script id="ql-data" type="application\/octet-stream">([\s\S]*?)<\/script>/.exec(
    fs.readFileSync(html, 'utf8'),
  )[1];
  assert.deepEqual(
    unpackData(packed)
      .analysis.layers.map((l) => l.name)
      .sort(),
    want,
  );
  const none = await runCli(['analyze', anyModel, '--layers', '^no such layer$']);
  assert.equal(none.code, 0);
  assert.match(none.stderr, /warning: --layers \^no such layer\$ selected no layers/);
});

test('help for every command: --help and `help CMD` print the same text', async () => {
  const options = {
    analyze: [
      '--format',
      '--json',
      '--metric',
      '--top',
      '--bins',
      '--layers',
      '--fail-below-sqnr',
      'csv-channels',
      'model-explorer',
    ],
    equalize: [
      '-o, --output',
      '--keep-relu6',
      '--no-bias-absorption',
      '--iterations',
      '--format',
      '--json',
      '--top',
      '--layers',
      '--fail-below-sqnr',
    ],
    compare: ['--format', '--json', '--top', '--layers', '--fail-below-sqnr', 'csv-channels'],
    report: ['-o, --output', '--equalize', '--keep-relu6', '--no-bias-absorption', '--compare', '--bins', '--layers'],
  };
  for (const [cmd, opts] of Object.entries(options)) {
    const a = await runCli([cmd, '--help']);
    const b = await runCli(['help', cmd]);
    assert.equal(a.code, 0);
    assert.equal(b.code, 0);
    assert.equal(a.stdout, b.stdout);
    assert.match(a.stdout, new RegExp(`^Usage: quantlens ${cmd} `));
    for (const o of opts) assert.ok(a.stdout.includes(o), `${cmd} --help mentions ${o}`);
    assert.match(
      a.stdout,
      /Exit status: 0 done, 1 internal failure, 2 bad input or usage .*\n.*3 a --fail-below-sqnr threshold failed/,
    );
  }
  const main = await runCli(['help']);
  assert.equal(main.code, 0);
  for (const cmd of Object.keys(options)) assert.match(main.stdout, new RegExp(`^  ${cmd} `, 'm'));
});

// The progress bar, without depending on the machine's speed: QUANTLENS_PROGRESS=always
// (for tests) draws every progress event, with neither the half-second delay nor the
// 100 ms redraw limit, so a model that is analysed in 50 ms still draws its `read` and
// every `analyze` line. Under util-linux script(1) the child's stderr is a terminal.
const script = ['/usr/bin/script', '/bin/script'].find((f) => fs.existsSync(f));
const shq = (s) => `'${s.replace(/'/g, "'\\''")}'`;
// The CLI on a pseudo-terminal, stdout to /dev/null: what script(1) returns is what stderr drew.
const onTerminal = (args, env) =>
  run(script, ['-qec', `${[process.execPath, cli, ...args].map(shq).join(' ')} >/dev/null`, '/dev/null'], { env });
// The bar's draws: each is '\r' + one line + '\x1b[K' (clear to the end of the line); the erase is '\r\x1b[K'.
const draws = (out) =>
  out
    .split('\r')
    .filter(Boolean)
    .map((d) => {
      assert.ok(d.endsWith('\x1b[K'), `a draw ends by clearing the line: ${JSON.stringify(d)}`);
      return d.slice(0, -3);
    });

test('progress bar: never on a pipe, even with QUANTLENS_PROGRESS=always', async () => {
  const piped = await run(process.execPath, [cli, 'analyze', anyModel, '--json'], { env: { QUANTLENS_PROGRESS: 'always' } });
  assert.equal(piped.code, 0, piped.stderr);
  assert.equal(piped.stderr, '', 'stderr is a pipe: no progress bar');
});

test(
  'progress bar on a terminal: read, then every layer analysed, then erased',
  { skip: !script && 'script(1) (util-linux) not installed' },
  async () => {
    const doc = JSON.parse((await runCli(['analyze', anyModel, '--json'])).stdout);
    const n = doc.layers.length;
    const tty = await onTerminal(['analyze', anyModel, '--json'], { QUANTLENS_PROGRESS: 'always' });
    assert.equal(tty.code, 0, tty.stdout);
    assert.ok(tty.stdout.endsWith('\r\x1b[K'), 'the bar is erased at the end');
    const lines = draws(tty.stdout);
    assert.equal(lines.at(-1), '', 'the last draw is the erase');
    const bars = lines.slice(0, -1);
    const read = bars.filter((l) => /^read +\[[#.]+\] +\d+% [\d.]+\/[\d.]+ MB$/.test(l));
    const analysed = bars.filter((l) => /^analyze +\[[#.]+\] +\d+% \d+\/\d+ /.test(l));
    assert.ok(read.length >= 1, `a read line: ${JSON.stringify(bars.slice(0, 3))}`);
    assert.equal(read.length + analysed.length, bars.length, `only read and analyze lines: ${JSON.stringify(bars)}`);
    assert.ok(bars.indexOf(read.at(-1)) < bars.indexOf(analysed[0]), 'read before analyze');
    assert.match(read.at(-1), / 100% ([\d.]+)\/\1 MB$/, 'reading ends at 100%');
    assert.equal(analysed.length, n, 'one analyze line per layer: every event is drawn');
    analysed.forEach((l, k) =>
      assert.ok(l.includes(` ${k + 1}/${n} ${doc.layers[k].name}`) || l.length >= 79, `layer ${k + 1}: ${l}`),
    );
    assert.match(analysed.at(-1), new RegExp(`^analyze +\\[#+\\] 100% ${n}/${n} `));
  },
);

test(
  'progress bar on a terminal: each step of a report is labelled',
  { skip: !script && 'script(1) (util-linux) not installed' },
  async () => {
    const out = path.join(tmp, 'progress-report.html');
    const tty = await onTerminal(['report', anyModel, '-o', out, '--equalize'], { QUANTLENS_PROGRESS: 'always' });
    assert.equal(tty.code, 0, tty.stdout);
    const bars = draws(tty.stdout).slice(0, -1);
    const labels = [...new Set(bars.map((l) => l.split(/ +\[/)[0]))];
    assert.deepEqual(labels, ['model: read', 'model: analyze', 'equalize: read', 'equalize: equalize']);
    assert.ok(tty.stdout.endsWith('\r\x1b[K'), 'erased at the end');
  },
);

test(
  'progress bar on a terminal: =1 draws the first event at once, =0 nothing; whatever is drawn is erased',
  { skip: !script && 'script(1) (util-linux) not installed' },
  async () => {
    // =1: no half-second delay, so the first event (reading) is drawn whatever the speed; later
    // ones only 100 ms apart, so how many is not asserted.
    const one = await onTerminal(['analyze', anyModel, '--json'], { QUANTLENS_PROGRESS: '1' });
    assert.equal(one.code, 0, one.stdout);
    assert.match(draws(one.stdout)[0], /^read +\[/);
    assert.ok(one.stdout.endsWith('\r\x1b[K'));
    const off = await onTerminal(['analyze', anyModel, '--json'], { QUANTLENS_PROGRESS: '0' });
    assert.equal(off.code, 0);
    assert.equal(off.stdout, '');
    // The default (drawn only after half a second): drawn or not depends on the machine; erased if drawn.
    const plain = await onTerminal(['analyze', anyModel, '--json'], { QUANTLENS_PROGRESS: '' });
    assert.equal(plain.code, 0);
    assert.ok(plain.stdout === '' || plain.stdout.endsWith('\r\x1b[K'), JSON.stringify(plain.stdout.slice(-80)));
  },
);

// ---------------------------------------------------------------------------
// Weight nodes the core cannot analyse (analyze()'s `skipped`): never dropped without a word.
test('weight nodes not analysed: listed under the table, in the JSON, and noted on stderr by CSV and Model Explorer', async () => {
  const file = path.join(tmp, 'skipped.onnx');
  const made = await makeSkippedModel(file, { gemm: 'gemm\nwith\x1b[31m a newline' });
  assert.equal(made.code, 0, made.stderr);
  const doc = JSON.parse((await runCli(['analyze', file, '--json'])).stdout);
  // Today's core skips these two nodes; it may add others, so the list is read from the result.
  assert.ok(doc.skipped.includes('bad_conv (Conv): convolution weight of rank 2'), JSON.stringify(doc.skipped));
  assert.ok(doc.skipped.includes('gemm\nwith\x1b[31m a newline (Gemm): Gemm weight of rank 3'), JSON.stringify(doc.skipped));
  assert.deepEqual(
    doc.layers.map((l) => l.name),
    ['good_conv'],
  );
  const n = doc.skipped.length;
  const printed = doc.skipped.map((x) => `  ${x.replace(/[\u0000-\u001f\u007f-\u009f]+/g, ' ')}`);
  assert.ok(printed.includes('  gemm with [31m a newline (Gemm): Gemm weight of rank 3'), 'control characters become spaces');

  const table = await runCli(['analyze', file]);
  assert.equal(table.code, 0, table.stderr);
  const lines = table.stdout.trimEnd().split('\n');
  const at = lines.indexOf(`${n} weight nodes not analysed:`);
  assert.ok(at > 0, table.stdout);
  assert.deepEqual(lines.slice(at + 1), printed, 'one per line, after the count, to the end of the output');
  assert.equal(lines[at - 1], '', 'set apart by a blank line');
  assert.ok(!table.stdout.includes('\x1b'), 'no escape sequence reaches the terminal');

  for (const [format, where] of [
    ['csv', 'CSV'],
    ['csv-channels', 'CSV'],
    ['model-explorer', 'node data'],
  ]) {
    const r = await runCli(['analyze', file, '--format', format]);
    assert.equal(r.code, 0, r.stderr);
    const err = r.stderr.trimEnd().split('\n');
    const k = err.indexOf(`quantlens: note: ${n} weight nodes not analysed (not in the ${where}):`);
    assert.ok(k >= 0, `${format}: ${r.stderr}`);
    assert.deepEqual(err.slice(k + 1, k + 1 + n), printed, format);
    assert.ok(!r.stdout.includes('bad_conv'), `${format}: the CSV/JSON itself stays well formed, without them`);
  }
  const csv = await runCli(['analyze', file, '--format', 'csv']);
  assert.equal(csv.stdout.trim().split('\r\n').length, 2, 'header and good_conv');
  // JSON and table: nothing on stderr.
  assert.equal(table.stderr, '');
  assert.equal((await runCli(['analyze', file, '--json'])).stderr, '');
});

test('a model whose every weight node is skipped says so, and lists them', async () => {
  const file = path.join(tmp, 'all-skipped.onnx');
  // GraphProto input (11) and output (12) ValueInfoProtos name x and y: every value is defined.
  const m = pb.model(
    pb.concat(
      pb.graph({
        nodes: [pb.node({ inputs: ['x', 'w'], outputs: ['y'], name: 'flat_conv', op: 'Conv' })],
        inits: [pb.tensor({ name: 'w', dims: [2, 2], raw: pb.floatsLE([1, 2, 3, 4]) })],
      }),
      pb.msg(11, pb.str(1, 'x')),
      pb.msg(12, pb.str(1, 'y')),
    ),
  );
  fs.writeFileSync(file, m);
  const doc = JSON.parse((await runCli(['analyze', file, '--json'])).stdout);
  assert.ok(doc.skipped.includes('flat_conv (Conv): convolution weight of rank 2'), JSON.stringify(doc.skipped));
  const r = await runCli(['analyze', file]);
  assert.equal(r.code, 0, r.stderr);
  assert.match(r.stdout, /^No weight layer could be analysed\.$/m);
  assert.ok(
    r.stdout.includes(
      `${doc.skipped.length} weight ${doc.skipped.length === 1 ? 'node' : 'nodes'} not analysed:\n  flat_conv (Conv): convolution weight of rank 2`,
    ),
    r.stdout,
  );
});

test('--block-size N adds int4Block<N> to the JSON, the table and both CSVs', async () => {
  const doc = JSON.parse((await runCli(['analyze', anyModel, '--json', '--block-size', '48'])).stdout);
  assert.deepEqual(doc.schemes, [
    'int8PerTensor',
    'int8PerChannel',
    'int4PerTensor',
    'int4PerChannel',
    'int4Block32',
    'int4Block128',
    'int4Block48',
  ]);
  assert.equal(doc.options.blockSize, 48);
  const l = doc.layers.find((x) => !x.error);
  for (const k of doc.schemes) {
    assert.equal(typeof l.sqnr[k], 'number', k);
    assert.equal(l.channels.sqnr[k].length, l.channels.count, k);
  }
  const table = await runCli(['analyze', anyModel, '--block-size', '48', '--top', '1']);
  assert.match(table.stdout, /INT4\/C\s+INT4\/B32\s+INT4\/B128\s+INT4\/B48\s+outliers/);
  const worst = doc.layers[doc.summary.ranking[0]];
  const row = table.stdout.split('\n').find((x) => x.startsWith('1  '));
  const cells = row.trim().split(/\s+/);
  const at = cells.indexOf(worst.sqnr.int4PerChannel.toFixed(1));
  assert.deepEqual(
    cells.slice(at + 1, at + 4),
    ['int4Block32', 'int4Block128', 'int4Block48'].map((k) => worst.sqnr[k].toFixed(1)),
  );
  const csv = await runCli(['analyze', anyModel, '--format', 'csv', '--block-size', '48']);
  assert.match(csv.stdout.split('\r\n')[0], /,int4PerChannel,int4Block32,int4Block128,int4Block48,outliers,/);
  const ch = await runCli(['analyze', anyModel, '--format', 'csv-channels', '--block-size', '48']);
  assert.match(
    ch.stdout.split('\r\n')[0],
    /,outlier,int8PerTensor,int8PerChannel,int4PerTensor,int4PerChannel,int4Block32,int4Block128,int4Block48$/,
  );
  // without the option: the two default block schemes, no third
  const plain = JSON.parse((await runCli(['analyze', anyModel, '--json'])).stdout);
  assert.equal(plain.schemes.length, 6);
  assert.equal(plain.options.blockSize, null);
  assert.equal(plain.layers.find((x) => !x.error).sqnr.int4Block32, l.sqnr.int4Block32);
});

test('--fail-below-sqnr judges the scheme --sqnr-scheme (or SCHEME:DB) names', async () => {
  const doc = JSON.parse((await runCli(['analyze', anyModel, '--json', '--block-size', '16'])).stdout);
  for (const scheme of ['int4Block32', 'int4Block16', 'int4PerChannel']) {
    const ok = doc.layers.filter((l) => !l.error);
    const dbs = ok.map((l) => l.sqnr[scheme]).sort((x, y) => x - y);
    const threshold = (dbs[1] + dbs[2]) / 2; // two layers below
    const worst = [...ok].sort((x, y) => x.sqnr[scheme] - y.sqnr[scheme]).slice(0, 2);
    const extra = scheme === 'int4Block16' ? ['--block-size', '16'] : [];
    for (const args of [
      ['--fail-below-sqnr', String(threshold), '--sqnr-scheme', scheme],
      ['--fail-below-sqnr', `${scheme}:${threshold}`],
    ]) {
      const r = await runCli(['analyze', anyModel, ...args, ...extra]);
      assert.equal(r.code, 3, `${args.join(' ')}: ${r.stderr}`);
      const lines = r.stderr.trim().split('\n');
      const label = {
        int4Block32: 'INT4 per-block of 32',
        int4Block16: 'INT4 per-block of 16',
        int4PerChannel: 'INT4 per-channel',
      };
      assert.equal(lines[0], `quantlens: 2 of ${doc.layers.length} layers have an ${label[scheme]} SQNR below ${threshold} dB:`);
      assert.deepEqual(
        lines.slice(1).map((x) => x.trim().split(/\s{2,}/)),
        worst.map((l) => [l.name, `${l.sqnr[scheme].toFixed(1)} dB`]),
      );
    }
    const pass = await runCli(['analyze', anyModel, '--fail-below-sqnr', `${scheme}:${dbs[0] - 0.01}`, ...extra]);
    assert.equal(pass.code, 0, pass.stderr);
  }
  // equalize judges the equalized model on the named scheme too
  const eq = await runCli(['equalize', anyModel, '--fail-below-sqnr', 'int4Block32:1000']);
  assert.equal(eq.code, 3, eq.stderr);
  assert.match(eq.stderr, /layers of the equalized model have an INT4 per-block of 32 SQNR below 1000 dB/);
});

test('bad --block-size and --sqnr-scheme exit 2 and say why', async () => {
  const cases = [
    [['--block-size', '0'], /INVALID_ARGUMENT: .*block size must be a whole number from 1 to 1048576/],
    [['--block-size', '2.5'], /block size must be a whole number/],
    [['--block-size', 'abc'], /block size must be a whole number/],
    [['--block-size', ''], /block size must be a whole number/],
    [['--block-size', '1048577'], /block size must be a whole number/],
    [['--fail-below-sqnr', '3', '--sqnr-scheme', 'int4Block64'], /--sqnr-scheme int4Block64 needs --block-size 64/],
    [['--fail-below-sqnr', 'int4Block64:3', '--block-size', '32'], /needs --block-size 64/],
    [
      ['--fail-below-sqnr', '3', '--sqnr-scheme', 'int3PerTensor'],
      /--sqnr-scheme takes one of int8PerTensor, .*int4Block128 or int4Block<N>/,
    ],
    [['--fail-below-sqnr', 'int3:3'], /--sqnr-scheme takes one of/],
    [['--fail-below-sqnr', 'int4Block32:'], /--fail-below-sqnr takes a number of dB, or SCHEME:DB/],
    [['--sqnr-scheme', 'int4Block32'], /--sqnr-scheme names the scheme --fail-below-sqnr judges/],
    [['--fail-below-sqnr', 'int4Block32:3', '--sqnr-scheme', 'int8PerTensor'], /disagree/],
  ];
  for (const [args, pattern] of cases) {
    const r = await runCli(['analyze', anyModel, ...args]);
    assert.equal(r.code, 2, `${args.join(' ')}: ${r.stderr}`);
    assert.match(r.stderr.split('\n')[0], pattern, args.join(' '));
    assert.equal(r.stdout, '');
  }
  const c = await runCli(['compare', anyModel, anyModel, '--block-size', '64']);
  assert.equal(c.code, 2);
  assert.match(c.stderr, /compare does not take --block-size/);
});
