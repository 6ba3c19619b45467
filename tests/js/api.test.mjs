// The ES module API under Node: sources, progress, cancellation, external data, errors.
import assert from 'node:assert/strict';
import fs from 'node:fs';
import path from 'node:path';
import { test } from 'node:test';
import { analyze, QuantLensError, toJSON } from '../../web/src/index.js';
import { copyStats } from '../../web/src/analyze.js';
import { isCoreError, loadCore, unwrap } from '../../web/src/core.js';
import { fetchedModelFiles, generatedModelFiles, sharedModelFiles } from './helpers.mjs';
import { splitModel } from './pb.mjs';

const model = [...fetchedModelFiles(), ...sharedModelFiles()][0];
const skip = !model && 'no real model available';

test('path, bytes, ArrayBuffer and Blob sources give the same analysis', { skip }, async () => {
  const bytes = fs.readFileSync(model);
  const fromPath = toJSON(await analyze(model));
  const fromBytes = toJSON(await analyze(new Uint8Array(bytes)));
  const fromBuffer = toJSON(await analyze(bytes.buffer.slice(bytes.byteOffset, bytes.byteOffset + bytes.length)));
  const fromBlob = toJSON(await analyze(new Blob([bytes])));
  for (const other of [fromBytes, fromBuffer, fromBlob]) {
    assert.deepEqual(other.layers, fromPath.layers);
    assert.equal(other.model.bytes, bytes.length);
  }
  assert.ok(fromPath.layers.length > 10);
  // per-channel arrays are typed arrays in the API, plain numbers in JSON
  const r = await analyze(model, { layers: (l) => l.index === 0 });
  assert.ok(r.layers[0].channels.min instanceof Float32Array);
  assert.equal(r.layers.length, 1);
});

// Blobs (a model, its external data) are read through one reused buffer (a BYOB reader of
// Blob.stream()), never into a fresh ArrayBuffer per read: that garbage kept about 490 MB
// in Chromium's page process after VGG-16 (web/src/source.js).
test('Blobs are read through one reused buffer, not a fresh ArrayBuffer per read', { skip }, async () => {
  const bytes = fs.readFileSync(model);
  const fromBytes = toJSON(await analyze(new Uint8Array(bytes)));
  const arrayBuffer = Blob.prototype.arrayBuffer;
  let fresh = 0;
  Blob.prototype.arrayBuffer = function (...args) {
    fresh++;
    return arrayBuffer.apply(this, args);
  };
  try {
    const fromBlob = toJSON(await analyze(new Blob([bytes])));
    assert.deepEqual(fromBlob.layers, fromBytes.layers);
    const ext = generatedModelFiles().find((f) => path.basename(f) === 'external_data.onnx');
    if (ext) {
      const bin = fs.readFileSync(ext.replace(/\.onnx$/, '.bin'));
      const location = path.basename(ext.replace(/\.onnx$/, '.bin'));
      const extBytes = fs.readFileSync(ext);
      const a = toJSON(await analyze(extBytes, { externalData: { [location]: new Blob([bin]) } }));
      const b = toJSON(await analyze(extBytes, { externalData: { [location]: bin } }));
      assert.deepEqual(a.layers, b.layers);
    }
  } finally {
    Blob.prototype.arrayBuffer = arrayBuffer;
  }
  assert.equal(fresh, 0, 'Blob.arrayBuffer() calls');
});

test('onProgress reports reading then every layer', { skip }, async () => {
  const events = [];
  const r = await analyze(model, { onProgress: (e) => events.push(e) });
  const reads = events.filter((e) => e.phase === 'read');
  const layers = events.filter((e) => e.phase === 'analyze' && !e.reading);
  // Events within a layer being read say which layer (its index, not yet done) and the bytes.
  for (const e of events.filter((x) => x.phase === 'analyze' && x.reading)) {
    assert.ok(e.done < e.total && e.bytes <= e.bytesTotal, JSON.stringify(e));
  }
  assert.ok(reads.length >= 1);
  assert.equal(reads.at(-1).done, reads.at(-1).total);
  assert.equal(layers.length, r.layers.length);
  assert.deepEqual(
    layers.map((e) => e.done),
    r.layers.map((_, i) => i + 1),
  );
  assert.equal(events.indexOf(reads.at(-1)) < events.indexOf(layers[0]), true);
});

test('an AbortSignal cancels between layers, before or during', { skip }, async () => {
  const before = new AbortController();
  before.abort();
  await assert.rejects(analyze(model, { signal: before.signal }), (e) => e instanceof QuantLensError && e.code === 'ABORTED');
  const during = new AbortController();
  let seen = 0;
  await assert.rejects(
    analyze(model, {
      signal: during.signal,
      onProgress: (e) => {
        if (e.phase === 'analyze' && ++seen === 3) during.abort();
      },
    }),
    (e) => e.code === 'ABORTED',
  );
  assert.equal(seen, 3);
});

test('errors are QuantLensError values with a code, a message and a byte offset', async () => {
  await assert.rejects(analyze(new Uint8Array([0x08, 0x07, 0x3a, 0x10, 0x01])), (e) => {
    assert.ok(e instanceof QuantLensError);
    assert.equal(e.code, 'INVALID_MODEL');
    assert.match(e.message, /runs past the end/);
    assert.equal(e.offset, 2);
    return true;
  });
  await assert.rejects(analyze(42), (e) => e.code === 'INVALID_ARGUMENT');
  await assert.rejects(analyze(new Uint8Array(4), { histogramBins: 0 }), (e) => e.code === 'INVALID_ARGUMENT');
});

const ext = generatedModelFiles().find((f) => path.basename(f) === 'external_data.onnx');
test(
  'external data: beside the model in Node, or supplied as bytes / Blob / resolver',
  { skip: !ext && 'generated models absent' },
  async () => {
    const fromPath = toJSON(await analyze(ext));
    const bytes = fs.readFileSync(ext);
    const bin = fs.readFileSync(ext.replace(/\.onnx$/, '.bin'));
    const location = path.basename(ext.replace(/\.onnx$/, '.bin'));
    const fromMap = toJSON(await analyze(bytes, { externalData: { [location]: bin } }));
    const fromBlob = toJSON(await analyze(new Blob([bytes]), { externalData: { [location]: new Blob([bin]) } }));
    const asked = [];
    const fromFn = toJSON(
      await analyze(bytes, {
        externalData: async (loc, offset, length) => {
          asked.push([loc, offset, length]);
          return bin.subarray(offset, offset + length);
        },
      }),
    );
    // A resolver may answer with a Blob of just those bytes (the app's worker does).
    const fromBlobFn = toJSON(
      await analyze(bytes, { externalData: async (loc, offset, length) => new Blob([bin]).slice(offset, offset + length) }),
    );
    assert.deepEqual(fromBlobFn.layers, fromPath.layers);
    assert.ok(fromPath.layers.length >= 3);
    assert.deepEqual(fromMap.layers, fromPath.layers);
    assert.deepEqual(fromBlob.layers, fromPath.layers);
    assert.deepEqual(fromFn.layers, fromPath.layers);
    assert.ok(asked.length >= 2 && asked.every(([loc]) => loc === location));
    await assert.rejects(analyze(bytes), (e) => e.code === 'MISSING_EXTERNAL_DATA' && e.message.includes(location));
    await assert.rejects(
      analyze(bytes, { externalData: { [location]: bin.subarray(0, 10) } }),
      (e) => e.code === 'MISSING_EXTERNAL_DATA',
    );
  },
);

test('repeated analyses do not leak WASM heap', { skip }, async () => {
  const core = await loadCore();
  const bytes = fs.readFileSync(model);
  await analyze(bytes);
  const heap = core.HEAPU8.length;
  for (let i = 0; i < 15; i++) await analyze(bytes);
  assert.equal(core.HEAPU8.length, heap, 'heap grew across repeated analyses');
});

test("the package's own name resolves to the API (import { analyze } from 'quantlens')", async () => {
  const pkg = await import('quantlens');
  assert.equal(pkg.analyze, analyze);
  assert.equal(typeof pkg.QuantLensError, 'function');
});

// wasm/marshal.hpp: every binding that can fail returns its value or one error shape,
// which core.js's unwrap turns into a QuantLensError (code, message, byte offset).
test('the bindings have one error shape, and unwrap throws it as a QuantLensError', async () => {
  const { isCoreError, unwrap } = await import('../../web/src/core.js');
  const core = await loadCore();
  const junk = new Uint8Array([0x0a, 0xff, 0xff, 0xff, 0x0f, 0x01]);
  const heapCopy = (bytes) => {
    const ptr = core._malloc(bytes.length) >>> 0;
    core.HEAPU8.set(bytes, ptr);
    return ptr;
  };
  const errors = [
    core.openSession(heapCopy(junk), junk.length, false), // takes the buffer, even when it fails
    core.openSessionReader(
      junk.length,
      (offset, length, ptr) => {
        core.HEAPU8.set(junk.subarray(offset, offset + length), ptr);
        return true;
      },
      false,
    ),
    core.openComparison({ size: junk.length, ptr: heapCopy(junk) }, { size: junk.length, ptr: heapCopy(junk) }),
  ];
  const mlp = fs.readFileSync(generatedModelFiles().find((f) => f.endsWith('cle_mlp.onnx')));
  const mlpPtr = heapCopy(mlp);
  errors.push(core.equalize(mlpPtr, mlp.length, { ...core.cleOptionDefaults(), maxIterations: -1 }, null, ''));
  core._free(mlpPtr);
  const session = unwrap(core.openSession(heapCopy(mlp), mlp.length, false));
  try {
    assert.ok(!isCoreError(session) && session.layerCount() > 0);
    errors.push(
      session.weight(1e6),
      session.analyze(1e6, 128, 0),
      session.begin(1e6, 128, 0),
      session.feed(1, 0, 0, 0),
      session.endPass(1),
      session.finish(),
    );
  } finally {
    session.delete();
  }
  const cmp = unwrap(core.openComparison({ size: mlp.length, ptr: heapCopy(mlp) }, { size: mlp.length, ptr: heapCopy(mlp) }));
  try {
    errors.push(cmp.begin(1e6), cmp.feed(0, 0, 0, 0, 0, 0));
  } finally {
    cmp.delete();
  }
  errors.push(core.blockSchemes(true, 0), core.blockSchemes(true, 2.5));
  assert.equal(errors.filter(isCoreError).length, errors.length);
  assert.equal(errors[2].side, 'a');
  for (const e of errors) {
    assert.throws(
      () => unwrap(e, 'm.onnx'),
      (x) => x instanceof QuantLensError && x.code === e.code && x.message === `m.onnx: ${e.message}` && x.offset === e.offset,
    );
  }
  assert.deepEqual(
    errors.map((e) => e.code),
    ['INVALID_MODEL', 'INVALID_MODEL', 'INVALID_MODEL', ...Array(11).fill('INVALID_ARGUMENT')],
  );
  // The CLE options are the core's: every kind known, and the defaults echoed when none are given.
  assert.deepEqual(Object.keys(core.cleOptionKinds()), Object.keys(core.cleOptionDefaults()));
  const { equalize } = await import('../../web/src/index.js');
  assert.deepEqual((await equalize(mlp)).options, core.cleOptionDefaults());
});

test('blockSize: the core names the block schemes and refuses a bad size before reading anything', async () => {
  const core = await loadCore();
  assert.deepEqual(core.blockSchemes(false, 0), ['int4Block32', 'int4Block128']);
  assert.deepEqual(core.blockSchemes(true, 32), ['int4Block32', 'int4Block128']);
  assert.deepEqual(core.blockSchemes(true, 64), ['int4Block32', 'int4Block128', 'int4Block64']);
  const mlp = generatedModelFiles().find((f) => f.endsWith('cle_mlp.onnx'));
  for (const bad of [0, -3, 1.5, 2 ** 20 + 1, NaN, Infinity, '64', {}]) {
    await assert.rejects(analyze(mlp, { blockSize: bad }), (e) => {
      assert.ok(e instanceof QuantLensError);
      assert.equal(e.code, 'INVALID_ARGUMENT');
      assert.match(e.message, /^blockSize: the block size must be a whole number from 1 to 1048576/);
      return true;
    });
  }
  const a = await analyze(mlp, { blockSize: 3 });
  assert.deepEqual(a.schemes.slice(4), ['int4Block32', 'int4Block128', 'int4Block3']);
  assert.equal(a.options.blockSize, 3);
  const b = await analyze(mlp, { blockSize: undefined });
  assert.equal(b.options.blockSize, null);
  for (const [i, l] of a.layers.entries()) {
    if (l.error) continue;
    // the default schemes do not depend on the option
    for (const k of b.schemes) assert.equal(l.sqnr[k], b.layers[i].sqnr[k], `${l.name} ${k}`);
    assert.ok(l.channels.sqnr.int4Block3 instanceof Float32Array);
    assert.equal(l.channels.sqnr.int4Block3.length, l.channels.count);
  }
});

// The binding of "one layer in parts" (wasm/analysis.cpp): a layer computed in parts in one
// session merges to the whole layer's statistics, and whatever JS hands back malformed (a
// part's fields, arrays of another type or length, extremes that are not float32) is an
// error value, never an abort or an exception.
test('the core binding of a layer in parts: merged equals whole; malformed parts are error values', async () => {
  const core = await loadCore();
  const bytes = splitModel();
  const heap = (n) => core._malloc(n);
  const reader = (offset, length, ptr) => {
    core.HEAPU8.set(bytes.subarray(offset, offset + length), ptr);
    return true;
  };
  const session = unwrap(core.openSessionReader(bytes.length, reader, false));
  const held = unwrap(core.openSession(((p) => (core.HEAPU8.set(bytes, p), p))(heap(bytes.length)), bytes.length, false));
  const errors = [];
  try {
    const where = session.weight(0); // big_conv, streamed
    assert.equal(where.stream, true);
    const cuts = unwrap(session.split(0, 2));
    assert.deepEqual(
      cuts.map((c) => [c.firstChannel, c.endChannel, c.firstByte, c.byteSize]),
      [
        [0, 49, 0, 49 * 576],
        [49, 97, 49 * 576, 48 * 576],
      ],
    );
    errors.push(session.split(0, 0), session.split(0, 1.5), session.split(1e6, 2), session.beginPart(0, 128, 0, 0, 98));
    errors.push(session.beginPart(0, 128, 0, -1, 5), session.beginPart(0, 128, 0, 0.5, 5), session.partExtremes());
    const ptr = heap(where.length);
    core.HEAPU8.set(bytes.subarray(where.offset, where.offset + where.length), ptr);
    const feed = (pass, cut) => assert.equal(session.feed(pass, ptr + cut.firstByte, cut.byteSize, cut.firstByte), null);
    // Pass 1 of each part for its extremes, then each part again to its end.
    const xs = cuts.map((cut) => {
      const plan = unwrap(session.beginPart(0, 128, 0, cut.firstChannel, cut.endChannel));
      assert.deepEqual([plan.firstByte, plan.byteSize], [cut.firstByte, cut.byteSize]);
      feed(1, cut);
      const x = session.partExtremes();
      assert.ok(x instanceof Float64Array && x.length === 5);
      return x;
    });
    errors.push(
      session.combineExtremes(0, [xs[0]]), // does not cover the channels
      session.combineExtremes(0, [xs[0], xs[0]]),
      session.combineExtremes(0, 'x'),
      session.combineExtremes(0, [xs[0], Float32Array.from(xs[1])]),
      session.combineExtremes(0, [xs[0], xs[1].subarray(1)]),
      session.combineExtremes(0, [xs[0], Float64Array.from([49, 97, 0.1, 1, 0])]), // 0.1 is no float32
      session.combineExtremes(0, [xs[0], Float64Array.from([49, 97, -1, 1e300, 0])]),
      session.combineExtremes(0, [xs[0], Float64Array.from([49.5, 97, -1, 1, 0])]),
    );
    const whole = unwrap(session.combineExtremes(0, [xs[1], xs[0]]));
    const copy = (p) => ({
      ...p,
      layout: { ...p.layout },
      ...Object.fromEntries(['min', 'max', 'sum', 'acc', 'blockNoise', 'histogram', 'inputAbsMax'].map((k) => [k, p[k].slice()])),
    });
    const parts = cuts.map((cut) => {
      unwrap(session.beginPart(0, 128, 0, cut.firstChannel, cut.endChannel));
      feed(1, cut);
      errors.push(
        session.endPass(1, new Float32Array(5)),
        session.endPass(1, whole.subarray(1)),
        session.endPass(1, null),
        session.endPass(1),
        session.takePart(),
      );
      let passes = unwrap(session.endPass(1, whole));
      for (let pass = 2; pass <= passes; pass++) {
        feed(pass, cut);
        passes = unwrap(session.endPass(pass));
      }
      return copy(unwrap(session.takePart()));
    });
    const [a, b] = parts;
    assert.equal(b.min.length, 48);
    const bad = [
      [],
      [a],
      [a, a],
      [a, null],
      [a, 'x'],
      'x',
      [a, { ...b, layout: undefined }],
      [a, { ...b, layout: { ...b.layout, inner: 3 } }],
      [a, { ...b, firstChannel: -1 }],
      [a, { ...b, endChannel: '97' }],
      [a, { ...b, tensorMin: 0.1 }],
      [a, { ...b, tensorMax: b.tensorMax * 2 }],
      [a, { ...b, histogramBins: 64 }],
      [a, { ...b, histogramBins: 2 ** 40 }],
      [a, { ...b, blockSize: 64 }],
      [a, { ...b, min: b.min.subarray(1) }],
      [a, { ...b, sum: Float32Array.from(b.sum) }],
      [a, { ...b, acc: [...b.acc] }],
      [a, { ...b, histogram: undefined }],
      [a, { ...b, blockNoise: new Float64Array(b.blockNoise.length + 1) }],
      [a, { ...b, inputAbsMax: new Float32Array(1e7) }],
    ];
    for (const [k, ps] of bad.entries()) {
      const e = session.mergeParts(0, 128, 0, ps);
      assert.ok(isCoreError(e) && e.code === 'INVALID_ARGUMENT', `malformed parts ${k}: ${e.message}`);
    }
    // The merge is the whole layer's analysis, every array bit for bit (as a session holding the weight gives it).
    const merged = copyStats(unwrap(session.mergeParts(0, 128, 0, [b, a])));
    const wholeLayer = copyStats(unwrap(held.analyze(0, 128, 0)));
    assert.deepStrictEqual(merged, wholeLayer);
    core._free(ptr);
  } finally {
    session.delete();
    held.delete();
  }
  assert.ok(errors.length >= 20);
  for (const e of errors) assert.ok(isCoreError(e), JSON.stringify(e));
});
