// jsonPieces / writeJSON: the text of JSON.stringify(toJSON(x)), character for character,
// written a piece at a time (the CLI's --json on models whose JSON is hundreds of MB).
import assert from 'node:assert/strict';
import { Writable } from 'node:stream';
import { test } from 'node:test';
import { analyze, compare, equalize, jsonPieces, toJSON, writeJSON } from '../../web/src/index.js';
import { fetchedModelFiles, generatedModelFiles, runCli, sharedModelFiles } from './helpers.mjs';

const text = (x) => [...jsonPieces(x)].join('');

test('edge cases: non-finite numbers, empty and long typed arrays, undefined, escapes, nesting', () => {
  const long = new Float32Array(10000).map((_, i) => (i % 7 ? Math.sin(i) * 1e-3 : i % 2 ? Infinity : NaN));
  const cases = [
    {},
    [],
    { a: undefined, b: () => 1, c: null, d: [undefined, () => 1, NaN, -Infinity, -0, 1e-320, 5e300] },
    { f32: new Float32Array([0.1, -0, NaN, 3.4e38, 1e-45]), f64: new Float64Array([0.1, Infinity, -1e-300]) },
    { i32: new Int32Array([-1, 2 ** 31 - 1]), u8: new Uint8Array(0), f32: new Float32Array(0) },
    { long, at: new Float64Array(4096).fill(1 / 3), just: new Float64Array(4097).fill(2 / 3) },
    { 's"\\\n\u2028\u0001é': 'tab\there "quoted" \\ \u0000 😀', nested: [[[{ x: [new Float32Array([1.5])] }]]] },
    'a string',
    42,
    NaN,
    true,
    null,
  ];
  for (const c of cases) assert.equal(text(c), JSON.stringify(toJSON(c)));
});

const real = [...sharedModelFiles(), ...fetchedModelFiles()];
const models = [...real.slice(0, 4), ...generatedModelFiles().filter((f) => /external|recurrent|dq_block/.test(f))];

test(
  'real analyses, a comparison and an equalization: the same text as JSON.stringify(toJSON())',
  { skip: !real.length && 'no real model available' },
  async () => {
    assert.ok(models.length >= 3);
    for (const m of models) {
      const r = await analyze(m);
      assert.equal(text(r), JSON.stringify(toJSON(r)), m);
    }
    const eq = await equalize(real[0]);
    const { bytes, ...report } = eq;
    assert.equal(text(report), JSON.stringify(toJSON(report)));
    const cmp = await compare(real[0], eq.bytes);
    assert.equal(text(cmp), JSON.stringify(toJSON(cmp)));
  },
);

test(
  'writeJSON waits for drain on a slow stream and writes the whole text and a newline',
  { skip: !real.length && 'no real model available' },
  async () => {
    const r = await analyze(real[0]);
    const chunks = [];
    let waits = 0;
    const slow = new Writable({
      highWaterMark: 1024,
      decodeStrings: false,
      write(chunk, _enc, done) {
        chunks.push(chunk);
        setImmediate(done);
      },
    });
    const write = slow.write.bind(slow);
    slow.write = (c) => {
      const ok = write(c);
      if (!ok) waits++;
      return ok;
    };
    await writeJSON(r, slow);
    await new Promise((resolve) => slow.end(resolve));
    assert.equal(chunks.join(''), `${JSON.stringify(toJSON(r))}\n`);
    assert.ok(waits > 0, 'the stream asked to wait at least once (its buffer is 1 kB)');
  },
);

test(
  'quantlens analyze --json and compare --json print that text',
  { skip: !real.length && 'no real model available' },
  async () => {
    const r = await analyze(real[0]);
    const out = await runCli(['analyze', real[0], '--json']);
    assert.equal(out.code, 0, out.stderr);
    assert.equal(out.stdout, `${JSON.stringify(toJSON(r))}\n`);
    const c = await runCli(['compare', real[0], real[0], '--json']);
    assert.equal(c.code, 0, c.stderr);
    assert.equal(c.stdout, `${JSON.stringify(toJSON(await compare(real[0], real[0])))}\n`);
  },
);
