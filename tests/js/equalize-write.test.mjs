// equalize(model, { write: false }): the report alone, no equalized file made (issue 13's
// bounded memory: the CLI's equalize without -o and report --equalize use it), and the CLI's
// equalize --fail-below-sqnr without -o, which analyses the equalized model from a temporary
// folder it removes.
import assert from 'node:assert/strict';
import fs from 'node:fs';
import os from 'node:os';
import path from 'node:path';
import { test } from 'node:test';
import { equalize, toJSON, QuantLensError } from '../../web/src/index.js';
import { root, run } from './helpers.mjs';

const mlsd = path.join(root, 'models', 'fetched', 'mlsd_320x320_tiny.onnx');
const extdata = path.join(root, 'models', 'generated', 'external_data.onnx');
const cli = path.join(root, 'web', 'cli', 'quantlens.js');

// The report without the written file's fields.
function reportOf(r) {
  const { bytes, blob, output, dataBytes, dataBlob, dataOutput, ...rest } = r;
  return JSON.stringify(toJSON(rest));
}

test(
  'write: false gives the same report as writing, and no file',
  { skip: !fs.existsSync(mlsd) && 'no mlsd model' },
  async () => {
    const written = await equalize(mlsd);
    const none = await equalize(mlsd, { write: false });
    assert.ok(written.bytes instanceof Uint8Array && written.bytes.length === written.size);
    assert.equal(none.bytes, null);
    assert.equal(none.blob, null);
    assert.equal(none.output, null);
    assert.equal(none.size, written.size);
    assert.ok(none.layers.length > 0);
    assert.equal(reportOf(none), reportOf(written));
  },
);

test('write: false on a model with external data: no data file either', async () => {
  const written = await equalize(extdata);
  const none = await equalize(extdata, { write: false });
  assert.ok(written.dataBytes instanceof Uint8Array);
  assert.equal(none.dataBytes, null);
  assert.equal(none.dataBlob, null);
  assert.equal(none.dataOutput, null);
  assert.equal(none.dataName, written.dataName);
  assert.equal(none.dataSize, written.dataSize);
  assert.equal(reportOf(none), reportOf(written));
});

test('write: false with output or blob, or not a boolean, is INVALID_ARGUMENT', async () => {
  const out = path.join(os.tmpdir(), `quantlens-write-${process.pid}.onnx`);
  for (const options of [{ write: false, output: out }, { write: false, blob: true }, { write: 'no' }]) {
    await assert.rejects(equalize(extdata, options), (e) => e instanceof QuantLensError && e.code === 'INVALID_ARGUMENT');
  }
  assert.ok(!fs.existsSync(out));
});

test('CLI: equalize --fail-below-sqnr without -o judges the equalized model and leaves no file', async () => {
  const tmp = fs.mkdtempSync(path.join(os.tmpdir(), 'quantlens-write-test-'));
  try {
    const env = { TMPDIR: tmp };
    const outDir = fs.mkdtempSync(path.join(os.tmpdir(), 'quantlens-write-out-'));
    try {
      // A threshold no layer reaches (exit 3) and one every layer passes (exit 0), judged the
      // same with -o (the equalized model written where asked) and without it.
      for (const [threshold, code] of [
        ['200', 3],
        ['1', 0],
      ]) {
        const without = await run(process.execPath, [cli, 'equalize', extdata, '--fail-below-sqnr', threshold, '--json'], {
          env,
        });
        const withO = await run(process.execPath, [
          cli,
          'equalize',
          extdata,
          '--fail-below-sqnr',
          threshold,
          '--json',
          '-o',
          path.join(outDir, 'eq.onnx'),
        ]);
        assert.equal(without.code, code, without.stderr);
        assert.equal(withO.code, code, withO.stderr);
        const a = JSON.parse(without.stdout);
        const b = JSON.parse(withO.stdout);
        assert.equal(a.output, null);
        assert.equal(a.dataOutput, null);
        assert.equal(a.dataName, 'external_data.equalized.onnx.data'); // as without -o and a threshold
        assert.deepEqual(a.layers, b.layers);
        assert.deepEqual(a.summary, b.summary);
      }
      assert.deepEqual(fs.readdirSync(tmp), []); // the temporary folder is gone
    } finally {
      fs.rmSync(outDir, { recursive: true, force: true });
    }
  } finally {
    fs.rmSync(tmp, { recursive: true, force: true });
  }
});
