// equalize()'s written model as a stream of pieces: to a file (Node, through a temporary
// file renamed when whole), to a Writable, as a Blob built from parts, or as bytes; all
// must be the same file on every real and generated model. A cancel or a failed write
// leaves no output file. Bad `output`/`blob` options are INVALID_ARGUMENT.
import assert from 'node:assert/strict';
import crypto from 'node:crypto';
import fs from 'node:fs';
import os from 'node:os';
import path from 'node:path';
import { Writable } from 'node:stream';
import { test } from 'node:test';
import { equalize, QuantLensError } from '../../web/src/index.js';
import { fetchedModelFiles, generatedModelFiles, runCli, sharedModelFiles } from './helpers.mjs';

const tmp = fs.mkdtempSync(path.join(os.tmpdir(), 'quantlens-eqstream-'));
process.on('exit', () => fs.rmSync(tmp, { recursive: true, force: true }));

const sha = (b) => crypto.createHash('sha256').update(b).digest('hex');
const realModels = [...sharedModelFiles(), ...fetchedModelFiles()];
const cleModels = generatedModelFiles().filter((f) => path.basename(f).startsWith('cle_'));

// A Writable that keeps what it is given, asking for 'drain' every other write.
function collector() {
  const parts = [];
  let calls = 0;
  const stream = new Writable({
    highWaterMark: 1,
    write(chunk, _enc, cb) {
      parts.push(Buffer.from(chunk));
      calls++;
      if (calls % 2) setImmediate(cb);
      else cb();
    },
  });
  return { stream, bytes: () => Buffer.concat(parts) };
}

test('the file written piece by piece, the Writable, the Blob and the bytes are the same file', async (t) => {
  if (!sharedModelFiles().length) t.diagnostic('../shared/models is absent: only the fetched and generated models');
  let changed = 0;
  for (const file of [...realModels, ...cleModels]) {
    const name = path.basename(file);
    const whole = await equalize(file);
    assert.ok(whole.bytes instanceof Uint8Array, name);
    assert.equal(whole.size, whole.bytes.length, name);
    assert.equal(whole.blob, null);
    assert.equal(whole.output, null);
    if (whole.summary.changed) changed++;
    // Nothing changed: the input itself.
    if (!whole.summary.changed) assert.equal(sha(whole.bytes), sha(fs.readFileSync(file)), name);

    const out = path.join(tmp, `${name}.eq.onnx`);
    const toFile = await equalize(file, { output: out });
    assert.equal(toFile.bytes, null, name);
    assert.equal(toFile.output, out);
    assert.equal(toFile.size, whole.size, name);
    assert.equal(sha(fs.readFileSync(out)), sha(whole.bytes), `${name}: file differs from bytes`);
    assert.deepEqual(
      fs.readdirSync(tmp).filter((f) => f.endsWith('.tmp')),
      [],
      'no temporary file left',
    );

    const c = collector();
    const toStream = await equalize(file, { output: c.stream });
    assert.equal(toStream.output, null);
    assert.equal(sha(c.bytes()), sha(whole.bytes), `${name}: Writable differs from bytes`);

    const asBlob = await equalize(file, { blob: true });
    assert.equal(asBlob.bytes, null);
    assert.ok(asBlob.blob instanceof Blob, name);
    assert.equal(asBlob.blob.size, whole.size, name);
    assert.equal(sha(new Uint8Array(await asBlob.blob.arrayBuffer())), sha(whole.bytes), `${name}: Blob differs from bytes`);
    // The documents are the same apart from where the file went.
    const strip = ({ bytes, blob, output, ...doc }) => JSON.stringify(doc, (k, v) => (ArrayBuffer.isView(v) ? [...v] : v));
    assert.equal(strip(toFile), strip(whole), name);
  }
  assert.ok(changed >= 3, `at least three models are changed by CLE (got ${changed})`);
});

test('the CLI writes -o piece by piece: the same file as equalize().bytes, and its size in the message', async () => {
  const model = fetchedModelFiles().find((f) => f.includes('mlsd'));
  assert.ok(model, 'models/fetched has M-LSD (run tools/bootstrap.sh)');
  const out = path.join(tmp, 'cli-mlsd.onnx');
  const r = await runCli(['equalize', model, '-o', out]);
  assert.equal(r.code, 0, r.stderr);
  const { bytes } = await equalize(model);
  assert.equal(sha(fs.readFileSync(out)), sha(bytes));
  assert.match(r.stdout, new RegExp(`Wrote ${out.replace(/[.*+?^${}()|[\]\\]/g, '\\$&')} \\(${bytes.length} bytes\\)`));
  // --fail-below-sqnr judges the written file.
  const gate = await runCli(['equalize', model, '-o', out, '--fail-below-sqnr', '25']);
  assert.equal(gate.code, 0, gate.stdout + gate.stderr);
});

test('a cancel while writing leaves no output file and no temporary file', async () => {
  const model = fetchedModelFiles().find((f) => f.includes('mlsd'));
  const out = path.join(tmp, 'cancelled.onnx');
  const controller = new AbortController();
  let sawTmp = false;
  await assert.rejects(
    equalize(model, {
      output: out,
      signal: controller.signal,
      onProgress: (p) => {
        if (p.phase !== 'write' || controller.signal.aborted) return;
        // The file is being written under its temporary name when the cancel comes.
        sawTmp = fs.readdirSync(tmp).some((f) => f.startsWith('cancelled.onnx.') && f.endsWith('.tmp'));
        controller.abort();
      },
    }),
    (e) => e instanceof QuantLensError && e.code === 'ABORTED',
  );
  assert.ok(sawTmp, 'the temporary file existed while writing');
  assert.ok(!fs.existsSync(out), 'no output file');
  assert.deepEqual(
    fs.readdirSync(tmp).filter((f) => f.startsWith('cancelled')),
    [],
  );
  // An earlier output at that path is left as it was.
  fs.writeFileSync(out, 'before');
  const again = new AbortController();
  await assert.rejects(
    equalize(model, { output: out, signal: again.signal, onProgress: (p) => p.phase === 'write' && again.abort() }),
    (e) => e.code === 'ABORTED',
  );
  assert.equal(fs.readFileSync(out, 'utf8'), 'before');
});

test('a write that fails is IO_ERROR, naming the path, and leaves nothing behind', async () => {
  const model = fetchedModelFiles().find((f) => f.includes('mlsd'));
  const out = path.join(tmp, 'no-such-dir', 'out.onnx');
  await assert.rejects(equalize(model, { output: out }), (e) => e.code === 'IO_ERROR' && e.message.includes(out));
  assert.ok(!fs.existsSync(path.dirname(out)));
  // A Writable that fails part way.
  let n = 0;
  const failing = new Writable({
    write(_c, _e, cb) {
      cb(++n > 1 ? new Error('disk full') : null);
    },
  });
  failing.on('error', () => {});
  await assert.rejects(
    equalize(model, { output: failing }),
    (e) => e instanceof QuantLensError && e.code === 'IO_ERROR' && /disk full/.test(e.message),
  );
  assert.ok(n >= 2, 'the stream was written to before it failed');
});

test('bad output options are INVALID_ARGUMENT', async () => {
  const model = fetchedModelFiles().find((f) => f.includes('mlsd'));
  for (const options of [{ output: 42 }, { output: '' }, { output: {} }, { blob: 'yes' }, { blob: true, output: 'x.onnx' }]) {
    await assert.rejects(
      equalize(model, options),
      (e) => e instanceof QuantLensError && e.code === 'INVALID_ARGUMENT',
      JSON.stringify(options),
    );
  }
});

test('a truncated or damaged model is an error value, streamed or whole, and no output file is written', async () => {
  const model = fetchedModelFiles().find((f) => f.includes('mlsd'));
  const bytes = fs.readFileSync(model);
  const out = path.join(tmp, 'truncated.eq.onnx');
  let n = 0;
  for (const cut of [1, 100, 4096, bytes.length >> 1, bytes.length - 1000, bytes.length - 1]) {
    const file = path.join(tmp, `truncated-${cut}.onnx`);
    fs.writeFileSync(file, bytes.subarray(0, cut));
    for (const source of [file, new Uint8Array(bytes.subarray(0, cut))]) {
      const e = await equalize(source, { output: out }).then(
        () => null,
        (err) => err,
      );
      assert.ok(e instanceof QuantLensError, `cut at ${cut}: ${e}`);
      assert.equal(e.code, 'INVALID_MODEL', `cut at ${cut}: ${e.message}`);
      assert.match(e.message, /truncated|runs past the end/, `cut at ${cut}`);
      assert.ok(!fs.existsSync(out), `cut at ${cut}: no output file`);
      n++;
    }
  }
  assert.equal(n, 12);
});

test('weights in external data are equalized as inline ones, and written with a data file of their own', async () => {
  // A small real model with its weights moved to external data by python onnx (its default
  // threshold: tensors under 1024 bytes stay inline). equalize-extdata.test.mjs checks more.
  const model = fetchedModelFiles().find((f) => f.includes('mlsd'));
  const dir = fs.mkdtempSync(path.join(tmp, 'ext-'));
  const ext = path.join(dir, 'mlsd_ext.onnx');
  const py = `import onnx\nm = onnx.load(${JSON.stringify(model)})\nonnx.save(m, ${JSON.stringify(ext)}, save_as_external_data=True, all_tensors_to_one_file=True, location='mlsd_ext.onnx.data', size_threshold=1024)`;
  const { execFileSync } = await import('node:child_process');
  execFileSync('/usr/bin/python3', ['-c', py]);
  const out = path.join(dir, 'out.onnx');
  const r = await equalize(ext, { output: out });
  const inline = await equalize(model);
  assert.equal(r.summary.layersChanged, inline.summary.layersChanged);
  assert.ok(r.summary.changed);
  assert.ok(!r.stops.some((s) => /external data/.test(s.reason)));
  assert.deepEqual(
    r.layers.map((l) => [l.name, Array.from(l.outScale), l.after.sqnr.int8PerTensor]),
    inline.layers.map((l) => [l.name, Array.from(l.outScale), l.after.sqnr.int8PerTensor]),
  );
  assert.equal(r.dataOutput, `${out}.data`);
  assert.equal(fs.statSync(r.dataOutput).size, r.dataSize);
});
