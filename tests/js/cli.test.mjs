// The CLI as a user meets it: exit status, stdout, one-line messages on stderr.
import assert from 'node:assert/strict';
import fs from 'node:fs';
import os from 'node:os';
import path from 'node:path';
import { test } from 'node:test';
import { fetchedModelFiles, generatedModelFiles, runCli, sharedModelFiles } from './helpers.mjs';
import * as pb from './pb.mjs';

const tmp = fs.mkdtempSync(path.join(os.tmpdir(), 'quantlens-cli-'));
const write = (name, data) => { const f = path.join(tmp, name); fs.writeFileSync(f, data); return f; };
const anyReal = [...fetchedModelFiles(), ...sharedModelFiles()][0];

test('analyze prints a table of the riskiest layers', { skip: !anyReal && 'no real model available' }, async () => {
  const r = await runCli(['analyze', anyReal, '--top', '5']);
  assert.equal(r.code, 0, r.stderr);
  assert.match(r.stdout, /INT8\/T\s+INT8\/C\s+INT4\/T\s+INT4\/C/);
  const rows = r.stdout.split('\n').filter((l) => /^\d+  \S/.test(l));
  assert.equal(rows.length, 5);
  assert.match(r.stdout, /Riskiest: .+ dB INT8 per-tensor/);
  assert.equal(r.stderr, '');
});

test('--json document has the documented shape and the table agrees with it', { skip: !anyReal && 'no real model available' }, async () => {
  const r = await runCli(['analyze', '--json', anyReal]);
  assert.equal(r.code, 0, r.stderr);
  const doc = JSON.parse(r.stdout);
  assert.equal(doc.schema, 'quantlens.analysis/1');
  for (const k of ['producer', 'producerVersion', 'irVersion', 'opsets', 'bytes']) assert.ok(k in doc.model, k);
  assert.equal(doc.model.bytes, fs.statSync(anyReal).size);
  const l = doc.layers[0];
  for (const k of ['name', 'op', 'weight', 'shape', 'dtype', 'channelAxis', 'groups', 'depthwise', 'channels', 'tensor', 'histogram', 'outlierChannels', 'sqnr']) assert.ok(k in l, k);
  for (const k of ['min', 'max', 'mean', 'std', 'absMax']) assert.equal(l.channels[k].length, l.channels.count, k);
  assert.equal(l.histogram.counts.reduce((a, b) => a + b, 0), l.shape.reduce((a, b) => a * b, 1));
  // ranking: lowest INT8 per-tensor SQNR first
  const s = doc.summary.ranking.map((k) => doc.layers[k].sqnr.int8PerTensor ?? Infinity);
  for (let i = 1; i < s.length; i++) assert.ok(s[i - 1] <= s[i], `ranking not sorted at ${i}`);
  const table = await runCli(['analyze', anyReal, '--top', '1']);
  const worst = doc.layers[doc.summary.ranking[0]];
  assert.ok(table.stdout.includes(worst.sqnr.int8PerTensor.toFixed(1)), 'table shows the worst layer SQNR');
});

test('--help for the program and for analyze', async () => {
  const a = await runCli(['--help']);
  assert.equal(a.code, 0);
  assert.match(a.stdout, /Usage: quantlens <command>/);
  const b = await runCli(['analyze', '--help']);
  assert.equal(b.code, 0);
  assert.match(b.stdout, /--json/);
});

test('usage errors exit 2', async () => {
  for (const args of [[], ['frobnicate'], ['analyze'], ['analyze', 'a.onnx', 'b.onnx'], ['analyze', 'a.onnx', '--bogus'], ['analyze', 'a.onnx', '--top', '0']]) {
    const r = await runCli(args);
    assert.equal(r.code, 2, `${args.join(' ')}: ${r.stderr}`);
    assert.ok(r.stderr.length > 0);
  }
});

// Each bad input: exit 2, and the first stderr line names the problem.
const badInputs = () => {
  const real = [...sharedModelFiles(), ...fetchedModelFiles()].find((f) => f.includes('mnist')) || [...sharedModelFiles(), ...fetchedModelFiles()][0];
  const cases = [
    ['empty file', write('empty.onnx', ''), /empty/],
    ['text file', write('notes.onnx', 'hello, this is not a model\n'), /not an ONNX model/],
    ['PNG image', write('image.onnx', Uint8Array.from([0x89, 0x50, 0x4e, 0x47, 0x0d, 0x0a, 0x1a, 0x0a, 0, 0, 0, 13])), /not an ONNX model/],
    ['missing file', path.join(tmp, 'nope.onnx'), /no such file/],
    ['directory', tmp, /directory/],
    ['graph field with the wrong wire type', write('wiretype.onnx', pb.concat(pb.int(1, 7), pb.int(7, 1))), /wire type varint, expected length-delimited/],
    ['length past the end', write('length.onnx', pb.concat(pb.int(1, 7), pb.tag(7, 2), pb.varint(1000), [1, 2, 3])), /length 1000 runs past the end.*at byte/],
    ['varint over 10 bytes', write('varint.onnx', Uint8Array.from([0x08, ...Array(11).fill(0xff), 0x01])), /over-long varint/],
    ['negative dimension', write('negdim.onnx', pb.convModel(pb.tensor({ name: 'w', dims: [-4, 3, 3, 3], raw: new Uint8Array(0) }))), /'w' has negative dimension -4/],
    ['dimensions overflow', write('overflow.onnx', pb.convModel(pb.tensor({ name: 'w', dims: [2 ** 40, 2 ** 40, 1, 1], raw: new Uint8Array(4) }))), /'w' has dimensions whose product overflows/],
    ['data size does not match dims x dtype', write('size.onnx', pb.convModel(pb.tensor({ name: 'w', dims: [2, 1, 1, 1], raw: pb.floatsLE([1]) }))), /'w' holds 4 bytes of raw_data but its 2 elements of float32 need 8/],
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
  for (let i = 0; i < emptyNodes.length; i += 2) emptyNodes[i] = 0x0a;  // field 1 (node), length 0
  cases.push(['millions of empty nodes', write('nodes.onnx', pb.model(emptyNodes)), /structure would take more than 512 MB/]);
  if (real) {
    const bytes = fs.readFileSync(real);
    cases.push(['truncated real model', write('truncated.onnx', bytes.subarray(0, Math.floor(bytes.length / 2))), /at byte \d+/]);
  }
  const ext = generatedModelFiles().find((f) => path.basename(f) === 'external_data.onnx');
  if (ext) cases.push(['external data file missing', write('external_data.onnx', fs.readFileSync(ext)), /MISSING_EXTERNAL_DATA: .*external data file '.+' not found/]);
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
  const m = pb.model(pb.graph({
    nodes: [
      pb.node({ inputs: ['x', 'w1'], outputs: ['y1'], name: 'complex_conv', op: 'Conv' }),
      pb.node({ inputs: ['x', 'w2'], outputs: ['y2'], name: 'float_conv', op: 'Conv' }),
    ],
    inits: [pb.tensor({ name: 'w1', dims: [2, 1, 1, 1], type: 14, raw: new Uint8Array(16) }), pb.tensor({ name: 'w2', dims: [2, 1, 1, 1], raw: pb.floatsLE([1, -3]) })],
  }));
  const r = await runCli(['analyze', '--json', write('complex.onnx', m)]);
  assert.equal(r.code, 0, r.stderr);
  assert.match(r.stderr, /warning: layer complex_conv: UNSUPPORTED_DTYPE: .*'w1' has type complex64/);
  const doc = JSON.parse(r.stdout);
  assert.equal(doc.layers[0].error.code, 'UNSUPPORTED_DTYPE');
  assert.deepEqual(doc.layers[1].channels.absMax, [1, 3]);
});
