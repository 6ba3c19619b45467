// The saved report's pieces: the packed data round-trips exactly, equal arrays are
// stored once, the script hash in the Content-Security-Policy is the script's own, and
// nothing from the model can close the data or script element.
import assert from 'node:assert/strict';
import crypto from 'node:crypto';
import fs from 'node:fs';
import { test } from 'node:test';
import { analyze } from '../../web/src/index.js';
import { packData, packedPieces, reportHtml, reportPieces, scriptSafe, unpackData } from '../../web/src/report.js';
import { VERSION } from '../../web/src/version.js';
import { fetchedModelFiles, root } from './helpers.mjs';

test('packData/unpackData round-trip every typed array type, non-finite numbers and strings exactly', () => {
  const data = {
    f32: new Float32Array([1.5, -0, NaN, Infinity, 3.4e38, 1e-45]),
    f64: new Float64Array([Math.PI, -Infinity, 5e-324]),
    ints: [
      new Int8Array([-128, 127]),
      new Uint8Array([0, 255]),
      new Int16Array([-32768]),
      new Uint16Array([65535]),
      new Int32Array([-(2 ** 31)]),
      new Uint32Array([2 ** 32 - 1]),
    ],
    sub: new Float32Array(new Float32Array([9, 8, 7, 6]).buffer, 4, 2), // a view into a larger buffer
    empty: new Float32Array(0),
    numbers: [NaN, Infinity, -Infinity, 0, -1.25],
    text: '</script><script>alert(1)</script>"\u2028é',
    nested: { $: 'not a typed array', o: 1, n: 2 },
  };
  const back = unpackData(packData(data));
  assert.deepEqual(back.f32, data.f32);
  assert.ok(Object.is(back.f32[1], -0));
  assert.deepEqual(back.f64, data.f64);
  back.ints.forEach((a, i) => assert.deepEqual(a, data.ints[i]));
  assert.deepEqual(Array.from(back.sub), [8, 7]);
  assert.equal(back.empty.length, 0);
  assert.deepEqual(back.numbers, data.numbers);
  assert.equal(back.text, data.text);
  assert.deepEqual(back.nested, data.nested);
});

test('equal arrays are stored once; unequal arrays of the same size are not merged', () => {
  const a = new Float32Array(1000).map((_, i) => i);
  const b = a.slice();
  const c = a.slice();
  c[999] = -1;
  const one = packData({ a }).length;
  const two = packData({ a, b }).length;
  const three = packData({ a, b, c }).length;
  assert.ok(two - one < 100, 'a copy costs only its reference');
  assert.ok(three - two > 4000 * 1.3, 'a different array is stored');
  const back = unpackData(packData({ a, b, c }));
  assert.deepEqual(back.b, a);
  assert.deepEqual(back.c, c);
});

test('unpackData refuses what is not report data', () => {
  assert.throws(() => unpackData(Buffer.from('hello world').toString('base64')), /not QuantLens report data/);
  const good = Buffer.from(packData({ x: 1 }), 'base64');
  assert.throws(() => unpackData(good.subarray(0, 10).toString('base64')), /truncated/);
});

test('scriptSafe keeps inline code from closing its element', () => {
  assert.equal(scriptSafe('a="</script>";b="<!--"'), 'a="<\\/script>";b="<\\!--"');
  assert.equal(scriptSafe(scriptSafe('x</SCRIPT')), 'x<\\/SCRIPT'); // idempotent
});

const example = fetchedModelFiles()[0];
test(
  'a report names its one script by SHA-256 in a CSP that forbids network access',
  { skip: !example && 'no fetched model' },
  async () => {
    const analysis = await analyze(example);
    analysis.model.name = '</script><img src=x onerror=alert(1)>.onnx';
    const html = await reportHtml({
      css: 'body{}',
      script: 'console.log("</script>")',
      data: { analysis },
      title: analysis.model.name,
    });
    const policy = /<meta http-equiv="Content-Security-Policy" content="([^"]+)">/.exec(html)[1];
    const script = /<script id="ql-main">([\s\S]*?)<\/script>/.exec(html)[1];
    const hash = crypto.createHash('sha256').update(script).digest('base64');
    assert.ok(policy.includes(`script-src 'sha256-${hash}'`), policy);
    assert.match(policy, /default-src 'none'/);
    assert.doesNotMatch(policy, /connect-src|unsafe-eval|https?:/);
    assert.equal((html.match(/<script/g) || []).length, 2, 'the data element and the one script');
    assert.match(html, /<title>&lt;\/script&gt;&lt;img src=x onerror=alert\(1\)&gt;\.onnx<\/title>/);
    const data = unpackData(/<script id="ql-data" type="application\/octet-stream">([^<]*)<\/script>/.exec(html)[1]);
    assert.equal(data.analysis.model.name, analysis.model.name);
    assert.deepEqual(data.analysis.layers[0].channels.min, analysis.layers[0].channels.min);
  },
);

test("the version shown and written into reports is package.json's", () => {
  assert.equal(VERSION, JSON.parse(fs.readFileSync(`${root}/package.json`, 'utf8')).version);
});

// The report is written a piece at a time (the CLI's report -o, the app's Save report): the
// base64 pieces of the packed data, each of whole 3-byte groups, join into packData's text,
// which reads back every array, across piece boundaries, after alignment gaps and shared
// arrays; the page's pieces join into reportHtml's text.
test('report pieces: packed data in 1 MB pieces of base64 that join into packData, and the page into reportHtml', async () => {
  let seed = 7;
  const next = () => (seed = (Math.imul(seed, 1103515245) + 12345) >>> 0) / 2 ** 32;
  const layers = [];
  for (let i = 0; i < 24; i++) {
    const T = [Float32Array, Float64Array, Uint8Array, Int16Array][i % 4];
    const a = new T(1 + Math.floor(next() * 90000));
    for (let j = 0; j < a.length; j++) a[j] = next() * 200 - 100;
    layers.push({ name: `l${i}`, a, shared: layers.length ? layers[0].a : a });
  }
  const data = { analysis: { layers, inf: -Infinity } };
  const pieces = [...packedPieces(data)];
  assert.ok(pieces.length >= 4, `${pieces.length} pieces`);
  for (const p of pieces.slice(0, -1)) assert.equal(p.length, 1 << 20);
  const text = packData(data);
  assert.equal(pieces.join(''), text);
  const back = unpackData(text);
  assert.equal(back.analysis.inf, -Infinity);
  for (let i = 0; i < layers.length; i++) {
    assert.deepEqual(back.analysis.layers[i].a, layers[i].a, `layer ${i}`);
    assert.deepEqual(back.analysis.layers[i].shared, layers[0].a);
  }
  const page = { css: 'body { color: red }', script: 'console.log("</script>")', data, title: 'T' };
  assert.equal([...(await reportPieces(page))].join(''), await reportHtml(page));
});
