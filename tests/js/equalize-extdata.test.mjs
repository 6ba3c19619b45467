// equalize() on models whose weights are stored as external data (issue 13): copies of real
// models saved by python3-onnx with every initializer in external data (one data file, or
// several in a sub-folder) are equalized, and the written model plus its one new data file
//   (a) load in python onnx and pass onnx.checker given the model's path,
//   (b) hold, bit for bit, the weights of equalizing the inline original (same report too),
//   (c) compute in onnxruntime what the original computes (the CLE tolerance of equalize.test.mjs).
// Also: -o into another folder (the data file is written beside OUT), the Blob and bytes
// forms, a missing data file (an error value naming it, nothing written), a cancel (nothing
// written), the alignment of large tensors, and the reads of the data files (never the
// whole file at once; before writing, only what CLE reads).
import assert from 'node:assert/strict';
import fs from 'node:fs';
import { syncBuiltinESMExports } from 'node:module';
import os from 'node:os';
import path from 'node:path';
import { test } from 'node:test';
import { equalize, toJSON, QuantLensError } from '../../web/src/index.js';
import { reportData } from '../../web/src/report.js';
import { fetchedModelFiles, root, run, runCli, sharedModels } from './helpers.mjs';
import { maskFlips, maxRelativeError, modelInputs, randomFeeds, runAll, session } from './ort.mjs';

const tmp = fs.mkdtempSync(path.join(os.tmpdir(), 'quantlens-extdata-'));
process.on('exit', () => fs.rmSync(tmp, { recursive: true, force: true }));
const python = (args) => run('/usr/bin/python3', args);
const extdata = path.join(root, 'tools', 'reference', 'extdata.py');

const TOLERANCE = 1e-4; // as equalize.test.mjs: max |ref - test| / max |ref| per output
const SEEDS = [1, 2];
const ALIGN_THRESHOLD = 1 << 20; // onnx::kExternalAlignThreshold
const ALIGNMENT = 1 << 16; // onnx::kExternalAlignment

// Real models, each with the number of data files its copy gets (0: skipped when absent).
const shared = (dir, name) => path.join(sharedModels, dir, name);
const MODELS = [
  [fetchedModelFiles().find((f) => f.endsWith('mlsd_320x320_tiny.onnx')), 1],
  [shared('tf', 'bodypix_mobilenet050_stride16_240x320_tf2onnx1.8.4.onnx'), 1],
  [shared('pytorch', 'ultraface_version-RFB-320_without_postprocessing.onnx'), 3],
  [shared('tf', 'road_segmentation_adas_0001.onnx'), 2],
  [shared('pytorch', 'yolox_nano.onnx'), 1],
].filter(([f]) => f && fs.existsSync(f));

let n = 0;
const fresh = (name) => {
  const dir = path.join(tmp, `${name}-${n++}`);
  fs.mkdirSync(dir, { recursive: true });
  return dir;
};

// An external-data copy of `file` in a folder of its own: { model, dir }.
async function externalCopy(file, files = 1, threshold = 0) {
  const dir = fresh('src');
  const model = path.join(dir, path.basename(file));
  const p = await python([extdata, 'save', file, model, '--files', String(files), '--threshold', String(threshold)]);
  assert.equal(p.code, 0, p.stderr);
  return { model, dir };
}

async function pyCheck(extModel, inlineModel, source) {
  const p = await python([extdata, 'check', extModel, inlineModel, ...(source ? [source] : [])]);
  assert.equal(p.code, 0, `${path.basename(extModel)}: ${p.stdout}${p.stderr}`);
  return JSON.parse(p.stdout);
}

// The report without what depends on where and how the model was written.
function reportOf(r) {
  const { bytes, blob, output, size, model, dataName, dataSize, dataBytes, dataBlob, dataOutput, ...rest } = r;
  return toJSON(rest);
}

function feeds(file, sess, seed) {
  const spec = modelInputs[path.basename(file)] ?? { low: -1, high: 1 };
  return randomFeeds(sess, { seed, ...spec });
}
async function outputs(modelFile, inputsFile) {
  const sess = await session(modelFile);
  const feedSession = await session(inputsFile);
  const out = [];
  for (const seed of SEEDS) out.push(await runAll(sess, feeds(inputsFile, feedSession, seed)));
  return out;
}

// Every external tensor in one data file, in order, without overlaps, large ones aligned.
function checkLayout(info, dataSize, name) {
  let end = 0;
  for (const [tensor, offset, length] of info.offsets) {
    assert.ok(offset >= end, `${name}: ${tensor} overlaps the tensor before it`);
    if (length > ALIGN_THRESHOLD) assert.equal(offset % ALIGNMENT, 0, `${name}: ${tensor} (${length} bytes) not aligned`);
    else assert.equal(offset, end, `${name}: ${tensor} (${length} bytes) does not follow the tensor before it`);
    end = offset + length;
  }
  assert.equal(end, dataSize, `${name}: the data file ends after its last tensor`);
}

for (const [file, files] of MODELS) {
  test(`an external-data copy equalizes as the inline model does: ${path.basename(file)} (${files} data file${files > 1 ? 's' : ''})`, async () => {
    const name = path.basename(file);
    const { model } = await externalCopy(file, files);
    const inlineOut = path.join(fresh('inline'), name);
    const inline = await equalize(file, { output: inlineOut });
    assert.equal(inline.dataName, undefined, `${name}: the inline model has no data file`);

    // -o into another folder, two levels down: the data file goes beside OUT.
    const outDir = path.join(fresh('out'), 'a', 'b');
    fs.mkdirSync(outDir, { recursive: true });
    const out = path.join(outDir, name.replace(/\.onnx$/, '.eq.onnx'));
    const r = await equalize(model, { output: out });
    assert.equal(r.dataName, `${path.basename(out)}.data`);
    assert.equal(r.dataOutput, path.join(outDir, r.dataName));
    assert.equal(r.bytes, null);
    assert.equal(r.dataBytes, null);
    assert.deepEqual(fs.readdirSync(outDir).sort(), [path.basename(out), r.dataName].sort(), `${name}: only the pair is written`);
    assert.equal(fs.statSync(r.dataOutput).size, r.dataSize);
    assert.equal(fs.statSync(out).size, r.size);
    assert.deepEqual(reportOf(r), reportOf(inline), `${name}: the report differs from the inline model's`);

    // (a) and (b): python onnx loads the pair, onnx.checker passes, weights bit for bit.
    const info = await pyCheck(out, inlineOut, model);
    assert.deepEqual(info.locations, [r.dataName], `${name}: every external tensor points into the one new data file`);
    assert.ok(info.external > 0, name);
    // Only the tensors CLE adds (a folded BatchNorm's new bias, a shared bias's own copy) are inline.
    assert.deepEqual(info.inlineFromSource, [], `${name}: tensors of the source's external data written inline`);
    checkLayout(info, r.dataSize, name);

    // The pair moved together elsewhere still loads (the location is relative).
    const moved = fresh('moved');
    fs.renameSync(out, path.join(moved, 'm.onnx'));
    fs.renameSync(r.dataOutput, path.join(moved, r.dataName));
    await pyCheck(path.join(moved, 'm.onnx'), inlineOut);

    // (c) onnxruntime: the same function as the original (exact options: ReLU6 kept, no
    // absorption). onnxruntime's shape inference cannot read constants (Pad amounts, Slice
    // starts) in external data, so this copy keeps those inline: tensors of 1024 bytes or
    // more external, onnx's own default.
    const { model: ortModel } = await externalCopy(file, files, 1024);
    const exactOut = path.join(fresh('exact'), name);
    const exact = await equalize(ortModel, { output: exactOut, keepRelu6: true, biasAbsorption: false });
    assert.ok(exact.dataSize > 0, name);
    if (exact.summary.changed) {
      const want = await outputs(file, file);
      const got = await outputs(exactOut, file);
      const { flips, total } = maskFlips(want, got, TOLERANCE);
      assert.ok(flips <= 1e-3 * total, `${name}: ${flips} of ${total} output elements flipped between zero and non-zero`);
      const err = maxRelativeError(want, got);
      assert.ok(err.worst <= TOLERANCE, `${name}: max relative output error ${err.worst.toExponential(2)} > ${TOLERANCE}`);
    }
  });
}

test('the Blob and the bytes forms: the model and its data file as the files written', async () => {
  const file = MODELS[0][0];
  const { model } = await externalCopy(file, 2);
  const out = path.join(fresh('out'), 'm.onnx');
  const toFile = await equalize(model, { output: out, dataName: 'weights.bin' });
  assert.equal(toFile.dataName, 'weights.bin');
  assert.equal(toFile.dataOutput, path.join(path.dirname(out), 'weights.bin'));
  const asBlob = await equalize(model, { blob: true, dataName: 'weights.bin' });
  assert.ok(asBlob.blob instanceof Blob && asBlob.dataBlob instanceof Blob);
  assert.equal(asBlob.bytes, null);
  assert.equal(asBlob.dataBytes, null);
  assert.equal(asBlob.dataOutput, null);
  assert.deepEqual(Buffer.from(await asBlob.blob.arrayBuffer()), fs.readFileSync(out));
  assert.deepEqual(Buffer.from(await asBlob.dataBlob.arrayBuffer()), fs.readFileSync(toFile.dataOutput));
  const asBytes = await equalize(model, { dataName: 'weights.bin' });
  assert.deepEqual(Buffer.from(asBytes.bytes), fs.readFileSync(out));
  assert.deepEqual(Buffer.from(asBytes.dataBytes), fs.readFileSync(toFile.dataOutput));
  assert.equal(asBytes.dataBlob, null);
  // A saved report keeps the document, not the written files.
  for (const r of [asBytes, asBlob]) {
    const data = reportData({ analysis: null, equalization: r });
    for (const k of ['bytes', 'blob', 'dataBytes', 'dataBlob']) assert.ok(!(k in data.equalization), k);
    assert.equal(data.equalization.dataName, 'weights.bin');
  }
  // The default name without output: the source's name.
  const byDefault = await equalize(model, { blob: true });
  assert.equal(byDefault.dataName, `${path.basename(model, '.onnx')}.equalized.onnx.data`);
  // The data in memory, handed over by name, reads as the files beside the model do.
  const bytesIn = await equalize(fs.readFileSync(model), {
    externalData: Object.fromEntries(
      ['data/part0.bin', 'data/part1.bin'].map((loc) => [loc, fs.readFileSync(path.join(path.dirname(model), loc))]),
    ),
    dataName: 'weights.bin',
  });
  assert.deepEqual(Buffer.from(bytesIn.dataBytes), fs.readFileSync(toFile.dataOutput));
  // A Writable cannot take the pair; a bad dataName is refused before anything is read.
  await assert.rejects(
    equalize(model, { output: new (await import('node:stream')).PassThrough() }),
    (e) => e instanceof QuantLensError && e.code === 'INVALID_ARGUMENT' && /data file/.test(e.message),
  );
  for (const bad of ['', 'a/b.data', '..', 7])
    await assert.rejects(equalize(model, { dataName: bad }), (e) => e.code === 'INVALID_ARGUMENT', String(bad));
});

test('a missing data file: an error value naming it, and nothing written', async () => {
  const file = MODELS[0][0];
  const { model } = await externalCopy(file, 1);
  const alone = path.join(fresh('alone'), 'm.onnx');
  fs.copyFileSync(model, alone); // the model without its data file
  const outDir = fresh('out');
  const dataLocation = `${path.basename(file)}.data`;
  await assert.rejects(
    equalize(alone, { output: path.join(outDir, 'eq.onnx') }),
    (e) => e instanceof QuantLensError && e.code === 'MISSING_EXTERNAL_DATA' && e.message.includes(`'${dataLocation}'`),
  );
  assert.deepEqual(fs.readdirSync(outDir), []);
  const cli = await runCli(['equalize', alone, '-o', path.join(outDir, 'eq.onnx')]);
  assert.equal(cli.code, 2, cli.stderr);
  assert.match(cli.stderr, /MISSING_EXTERNAL_DATA/);
  assert.ok(cli.stderr.includes(dataLocation), cli.stderr);
  assert.deepEqual(fs.readdirSync(outDir), []);
});

test('a cancel while writing leaves neither file', async () => {
  const { model } = await externalCopy(MODELS[0][0], 1);
  const outDir = fresh('out');
  const controller = new AbortController();
  await assert.rejects(
    equalize(model, {
      output: path.join(outDir, 'eq.onnx'),
      signal: controller.signal,
      onProgress: (p) => {
        if (p.phase === 'write') controller.abort();
      },
    }),
    (e) => e.code === 'ABORTED',
  );
  assert.deepEqual(fs.readdirSync(outDir), []);
});

test('CLI: quantlens equalize MODEL -o OUT writes OUT and OUT.data, and says so', async () => {
  const { model } = await externalCopy(MODELS[0][0], 1);
  const outDir = fresh('cli');
  const out = path.join(outDir, 'eq.onnx');
  const r = await runCli(['equalize', model, '-o', out, '--fail-below-sqnr', '0']);
  assert.equal(r.code, 0, r.stderr);
  assert.ok(r.stdout.includes(`Its external data: ${out}.data (`), r.stdout);
  assert.deepEqual(fs.readdirSync(outDir).sort(), ['eq.onnx', 'eq.onnx.data']);
  const json = await runCli(['equalize', model, '--json']);
  assert.equal(json.code, 0, json.stderr);
  const doc = JSON.parse(json.stdout);
  assert.equal(doc.dataName, `${path.basename(model, '.onnx')}.equalized.onnx.data`);
  assert.ok(!('dataBytes' in doc));
});

test('large tensors are aligned in the data file, and the gaps are zeros', async () => {
  // Conv 256x256x3x3 (2.36 MB) after a small one: over the threshold, so aligned.
  const inlineModel = path.join(fresh('big'), 'big.onnx');
  const py = `
import sys, numpy as np, onnx
from onnx import helper, numpy_helper, TensorProto
rng = np.random.default_rng(5)
w1 = (rng.standard_normal((256, 3, 3, 3)) * rng.uniform(0.01, 3, (256, 1, 1, 1))).astype(np.float32)
w2 = (rng.standard_normal((256, 256, 3, 3)) * 0.05).astype(np.float32)
w3 = (rng.standard_normal((8, 256, 1, 1)) * 0.05).astype(np.float32)
g = helper.make_graph(
  [helper.make_node('Conv', ['x', 'w1', 'b1'], ['h1'], pads=[1, 1, 1, 1]), helper.make_node('Relu', ['h1'], ['r1']),
   helper.make_node('Conv', ['r1', 'w2', 'b2'], ['h2'], pads=[1, 1, 1, 1]), helper.make_node('Relu', ['h2'], ['r2']),
   helper.make_node('Conv', ['r2', 'w3'], ['y'])],
  'big', [helper.make_tensor_value_info('x', TensorProto.FLOAT, [1, 3, 8, 8])],
  [helper.make_tensor_value_info('y', TensorProto.FLOAT, [1, 8, 8, 8])],
  [numpy_helper.from_array(w1, 'w1'), numpy_helper.from_array(rng.standard_normal(256).astype(np.float32), 'b1'),
   numpy_helper.from_array(w2, 'w2'), numpy_helper.from_array(rng.standard_normal(256).astype(np.float32), 'b2'),
   numpy_helper.from_array(w3, 'w3')])
m = helper.make_model(g, opset_imports=[helper.make_opsetid('', 13)], producer_name='quantlens-test')
m.ir_version = 8
onnx.save(m, sys.argv[1])
`;
  const made = await python(['-c', py, inlineModel]);
  assert.equal(made.code, 0, made.stderr);
  const { model } = await externalCopy(inlineModel, 1);
  const inlineOut = path.join(fresh('big-inline'), 'big.onnx');
  await equalize(inlineModel, { output: inlineOut });
  const out = path.join(fresh('big-out'), 'big.eq.onnx');
  const r = await equalize(model, { output: out });
  assert.equal(r.summary.layersChanged, 3);
  const info = await pyCheck(out, inlineOut);
  checkLayout(info, r.dataSize, 'big');
  const w2 = info.offsets.find(([t]) => t === 'w2');
  assert.ok(w2[1] > 0 && w2[1] % ALIGNMENT === 0, `w2 at ${w2[1]}`);
  const before = info.offsets.filter(([, o]) => o < w2[1]).reduce((end, [, o, l]) => Math.max(end, o + l), 0);
  assert.ok(before < w2[1], 'a gap before w2');
  const data = fs.readFileSync(r.dataOutput);
  assert.ok(
    data.subarray(before, w2[1]).every((b) => b === 0),
    'the gap is zeros',
  );
});

test('the data files are read a piece at a time: before writing, only the tensors CLE reads', async (t) => {
  // YOLOX-nano has nothing CLE changes: the core reads only the small tensors (64 KB or
  // less) before writing; writing copies every tensor through, one piece at a time.
  const file = shared('pytorch', 'yolox_nano.onnx');
  if (!fs.existsSync(file)) return t.skip('../shared/models absent');
  const { model, dir } = await externalCopy(file, 1);
  const dataFile = fs.realpathSync(path.join(dir, `${path.basename(file)}.data`));
  const dataSize = fs.statSync(dataFile).size;
  const info = await pyCheck(model, model);
  const small = info.offsets.filter(([, , l]) => l <= 64 << 10).reduce((s, [, , l]) => s + l, 0);
  const largest = Math.max(...info.offsets.map(([, , l]) => l));
  assert.ok(small < dataSize / 2, `small tensors ${small} of ${dataSize} bytes`);

  const fds = new Set();
  const reads = { before: 0, writing: 0, largest: 0 };
  let writing = false;
  const { openSync, readSync } = fs;
  fs.openSync = (p, ...rest) => {
    const fd = openSync(p, ...rest);
    if (typeof p === 'string' && fs.realpathSync(p) === dataFile) fds.add(fd);
    return fd;
  };
  fs.readSync = (fd, buffer, offset, length, position) => {
    const got = readSync(fd, buffer, offset, length, position);
    if (fds.has(fd)) {
      reads[writing ? 'writing' : 'before'] += got;
      reads.largest = Math.max(reads.largest, got);
    }
    return got;
  };
  syncBuiltinESMExports();
  let r;
  try {
    r = await equalize(model, {
      output: path.join(fresh('reads'), 'y.onnx'),
      onProgress: (p) => {
        if (p.phase === 'equalize') writing = true; // the core is done: what follows is writing
      },
    });
  } finally {
    fs.openSync = openSync;
    fs.readSync = readSync;
    syncBuiltinESMExports();
  }
  assert.ok(fds.size > 0, 'the data file was opened through fs.openSync');
  assert.equal(r.summary.changed, false);
  assert.equal(reads.before, small, 'before writing, exactly the small tensors were read');
  assert.equal(reads.writing, dataSize - 0, 'writing copies every tensor through once');
  assert.ok(reads.largest <= largest, `a read of ${reads.largest} bytes: more than the largest tensor (${largest})`);
});

test('external data in a sub-graph is refused with UNSUPPORTED, naming the tensor', async (t) => {
  // Silero VAD keeps initializers in its If branches; onnx.save_model moves them out too.
  const file = fetchedModelFiles().find((f) => f.endsWith('silero_vad_legacy.onnx'));
  if (!file) return t.skip('models/fetched/silero_vad_legacy.onnx absent');
  const { model } = await externalCopy(file, 1);
  const outDir = fresh('out');
  await assert.rejects(
    equalize(model, { output: path.join(outDir, 'eq.onnx') }),
    (e) => e.code === 'UNSUPPORTED' && /'[^']+' \(an initializer of a sub-graph\) is stored as external data/.test(e.message),
  );
  assert.deepEqual(fs.readdirSync(outDir), []);
});
