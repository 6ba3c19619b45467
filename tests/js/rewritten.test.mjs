// A model file (or an external data file beside it) rewritten while QuantLens reads it: the
// analysis reads each weight twice (its two passes), equalize copies the file through after
// reading it, compare reads the weights after the structure. Each would mix two versions of
// the file; instead it stops with an IO_ERROR naming the file (source.js checkUnchanged),
// and equalize leaves no output file.
import assert from 'node:assert/strict';
import fs from 'node:fs';
import os from 'node:os';
import path from 'node:path';
import { test } from 'node:test';
import { analyze, compare, equalize } from '../../web/src/index.js';
import { generatedModelFiles } from './helpers.mjs';

const generated = (name) => generatedModelFiles().find((f) => path.basename(f) === name);

// A fresh folder holding copies of the named generated files.
function copies(...names) {
  const dir = fs.mkdtempSync(path.join(os.tmpdir(), 'ql-rewritten-'));
  for (const name of names) fs.copyFileSync(path.join(path.dirname(generated('large_weights.onnx')), name), path.join(dir, name));
  return dir;
}

// A later modification time, as a rewrite leaves it (the bytes unchanged: the check cannot
// know whether they are; it refuses what it cannot trust).
const touch = (file) => {
  const t = new Date(Date.now() + 5000);
  fs.utimesSync(file, t, t);
};

const rewritten = (name) => (e) => {
  assert.equal(e.code, 'IO_ERROR');
  assert.match(e.message, new RegExp(`^${name.replace('.', '\\.')} was rewritten while it was read`));
  return true;
};

test('analyze: a model file rewritten between layers is an IO_ERROR naming it, with workers 1 and 2', async () => {
  const dir = copies('large_weights.onnx');
  const file = path.join(dir, 'large_weights.onnx');
  try {
    for (const workers of [1, 2]) {
      const untouched = await analyze(file, { workers });
      assert.equal(untouched.layers.length, 3);
      let seen = 0;
      await assert.rejects(
        analyze(file, { workers, onLayer: () => seen++ === 0 && touch(file) }),
        rewritten('large_weights.onnx'),
        `workers ${workers}`,
      );
    }
  } finally {
    fs.rmSync(dir, { recursive: true });
  }
});

test('analyze: the same bytes count rewritten in place (same size, other weights)', async () => {
  const dir = copies('large_weights.onnx');
  const file = path.join(dir, 'large_weights.onnx');
  try {
    const bytes = fs.readFileSync(file);
    const other = Buffer.from(bytes);
    for (let i = bytes.length - 4096; i < bytes.length; i += 4) other.writeFloatLE(1000, i); // the last weight's tail
    let seen = 0;
    await assert.rejects(
      analyze(file, { workers: 1, onLayer: () => seen++ === 0 && fs.writeFileSync(file, other) }),
      rewritten('large_weights.onnx'),
    );
    assert.equal(fs.statSync(file).size, bytes.length);
  } finally {
    fs.rmSync(dir, { recursive: true });
  }
});

test('analyze: an external data file rewritten is an IO_ERROR naming that file', async () => {
  const dir = copies('external_data.onnx', 'external_data.bin');
  try {
    let seen = 0;
    await assert.rejects(
      analyze(path.join(dir, 'external_data.onnx'), {
        workers: 1,
        onLayer: () => seen++ === 0 && touch(path.join(dir, 'external_data.bin')),
      }),
      rewritten('external_data.bin'),
    );
  } finally {
    fs.rmSync(dir, { recursive: true });
  }
});

test('equalize: a model rewritten while the output is written leaves no output file', async () => {
  const dir = copies('cle_convnet.onnx');
  const file = path.join(dir, 'cle_convnet.onnx');
  const output = path.join(dir, 'out.onnx');
  try {
    const whole = await equalize(file, { output });
    assert.equal(whole.output, output);
    fs.rmSync(output);
    // Streamed from a path: the pieces copied through are read again as the output is written.
    const touchAt = (phase) => {
      let touched = false;
      return (p) => p.phase === phase && !touched && (touched = true) && touch(file);
    };
    await assert.rejects(equalize(file, { output, onProgress: touchAt('write') }), rewritten('cle_convnet.onnx'));
    assert.deepEqual(fs.readdirSync(dir), ['cle_convnet.onnx'], 'no output file, no temporary file');
    // The bytes returned are not trusted either (no write progress for them: touched once equalized).
    await assert.rejects(equalize(file, { onProgress: touchAt('equalize') }), rewritten('cle_convnet.onnx'));
  } finally {
    fs.rmSync(dir, { recursive: true });
  }
});

test('compare: a side rewritten between pairs is an IO_ERROR naming it', async () => {
  const dir = copies('large_weights.onnx');
  const a = path.join(dir, 'large_weights.onnx');
  const b = path.join(dir, 'b.onnx');
  fs.copyFileSync(a, b);
  try {
    const same = await compare(a, b, { workers: 1 });
    assert.equal(same.pairs.length, 3);
    let seen = 0;
    const touchB = (p) => p.phase === 'compare' && seen++ === 0 && touch(b);
    await assert.rejects(compare(a, b, { workers: 1, onProgress: touchB }), rewritten('b.onnx'));
  } finally {
    fs.rmSync(dir, { recursive: true });
  }
});
