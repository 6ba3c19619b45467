// equalize(source, options): Cross Layer Equalization in the WASM core. Returns the
// equalized ONNX file and, for every layer it changed, the weights' statistics
// before and after, the scale factors, the sequences and where they stopped.
import { copyStats, copyViews } from './analyze.js';
import { loadCore, unwrap } from './core.js';
import { QuantLensError } from './errors.js';
import { isNode, nodeImport } from './node.js';
import {
  checkAbort,
  checkUnchanged,
  coreReader,
  externalReaderSync,
  heapAlloc,
  openSource,
  readWholeIntoHeap,
} from './source.js';

export const CLE_SCHEMA = 'quantlens.equalization/1';

// What each kind of option must be to cross into the core as it is (Embind would
// silently turn 'yes' into true and 1.5 into 1). The options, their kinds and their
// defaults are the core's (cle::Options, declared for JS in wasm/equalization.cpp);
// their ranges are checked once, by cle::equalize.
const KINDS = {
  boolean: { ok: (v) => typeof v === 'boolean', want: 'true or false' },
  integer: { ok: (v) => Number.isInteger(v) && Math.abs(v) <= 0x7fffffff, want: 'an integer' },
  number: { ok: (v) => typeof v === 'number' && Number.isFinite(v), want: 'a finite number' },
};

// The options given over the core's defaults.
function coreOptions(core, options) {
  const out = core.cleOptionDefaults();
  for (const [k, kind] of Object.entries(core.cleOptionKinds())) {
    const v = options[k];
    if (v === undefined) continue;
    if (!KINDS[kind].ok(v)) throw new QuantLensError('INVALID_ARGUMENT', `option ${k} must be ${KINDS[kind].want}`);
    out[k] = v;
  }
  return out;
}

// Bytes per write of the input copied through (and per Blob part).
const CHUNK = 16 << 20;

export const isWritable = (x) => x && typeof x === 'object' && typeof x.write === 'function' && typeof x.once === 'function';

/**
 * The written file, piece by piece: runs of the input copied through in chunks of at
 * most CHUNK bytes, and the bytes the core made, in order. `input(offset, length)`
 * resolves to a view of input bytes (valid until the next call); `put(view)` takes each
 * chunk (a view of the heap, valid only until put returns or its promise settles).
 */
export async function emitPieces(eq, input, put, { signal, onProgress } = {}) {
  const total = eq.size();
  let done = 0;
  for (const p of eq.pieces()) {
    const chunks = p.bytes ? [[p.bytes, 0, p.bytes.length]] : [[null, p.offset, p.length]];
    for (const [view, start, length] of chunks) {
      for (let at = 0; at < length; at += CHUNK) {
        checkAbort(signal);
        const n = Math.min(CHUNK, length - at);
        // p.location: a piece of an external data file (the written data file's pieces)
        const bytes = view ? view.subarray(at, at + n) : await input(start + at, n, p.location);
        // p.transform: a changed weight's stored bytes, rewritten as they are written
        // (CHUNK is a multiple of 4: whole float32 values).
        await put(p.transform === undefined ? bytes : eq.transform(p.transform, at, bytes));
        done += n;
        if (onProgress) onProgress({ phase: 'write', done, total });
      }
    }
  }
}

// Writes the pieces to a file at `path` (Node): to PATH.PID.tmp, renamed to PATH once
// whole, so a failure or a cancel leaves no output file (and removes the temporary one).
export async function writeFile(path, emit) {
  await writeFiles([[path, emit]]);
}

// Writes several files as writeFile does, each to its temporary name; all are renamed
// once every one is whole (and `verify`, when given, has not thrown), and a failure or a
// cancel removes every temporary file.
export async function writeFiles(files, verify = null) {
  const fs = await nodeImport('fs');
  const tmps = [];
  let current = null;
  try {
    for (const [path, emit] of files) {
      current = path;
      const tmp = `${path}.${process.pid}.tmp`;
      let fd;
      try {
        fd = fs.openSync(tmp, 'w');
      } catch (e) {
        throw new QuantLensError('IO_ERROR', `cannot write ${path}: ${e.message}`, { cause: e });
      }
      tmps.push(tmp);
      try {
        await emit((view) => {
          for (let off = 0; off < view.length;) off += fs.writeSync(fd, view, off, view.length - off);
        });
      } finally {
        fs.closeSync(fd);
      }
    }
    if (verify) verify();
    for (let i = 0; i < files.length; ++i) {
      current = files[i][0];
      fs.renameSync(tmps[i], files[i][0]);
      tmps[i] = null;
    }
  } catch (e) {
    for (const tmp of tmps) if (tmp) fs.rmSync(tmp, { force: true });
    if (e instanceof QuantLensError) throw e;
    throw new QuantLensError('IO_ERROR', `cannot write ${current}: ${e.message}`, { cause: e });
  }
}

// Writes the pieces to a Node Writable, waiting for 'drain' when it asks to; the stream
// is not ended (the caller owns it).
export async function writeStream(stream, emit) {
  await emit(
    (view) =>
      new Promise((resolve, reject) => {
        const failed = (e) =>
          reject(new QuantLensError('IO_ERROR', `cannot write the equalized model: ${e.message}`, { cause: e }));
        stream.once('error', failed);
        const more = stream.write(view.slice(), (e) => {
          if (e) failed(e);
        });
        const go = () => {
          stream.off('error', failed);
          resolve();
        };
        if (more) go();
        else stream.once('drain', go);
      }),
  );
}

/**
 * Delivers a written model (`written`: { size(), pieces() }, its input pieces read through
 * `input`) where the caller asked: a file path or a Writable (output), a Blob (blob: true),
 * else one Uint8Array. Returns { bytes, file }: file is the path or the Blob. Progress
 * 'write' for a file, a stream or a Blob; copying into `bytes` is not a step of its own.
 */
// `verify` (optional) throws when what was written cannot be trusted (the input rewritten
// meanwhile): a file written to a path is then not renamed into place.
export async function deliverWritten(written, input, { output, blob, signal, onProgress, verify }, data = null) {
  const emitOf =
    (w, read) =>
    (put, report = true) =>
      emitPieces(w, read, put, { signal, onProgress: report ? onProgress : null });
  const emit = emitOf(written, input);
  // data: { written, input, path } the external data file written beside the model
  const emitData = data && emitOf(data.written, data.input);
  const toBlob = async (e) => {
    let b = new Blob([], { type: 'application/octet-stream' });
    await e((view) => {
      b = new Blob([b, view], { type: 'application/octet-stream' }); // each part copied as it comes
    });
    return b;
  };
  const toBytes = async (w, e) => {
    const out = new Uint8Array(w.size());
    let at = 0;
    await e((view) => {
      out.set(view, at);
      at += view.length;
    }, false);
    return out;
  };
  let bytes = null;
  let file = null;
  let dataFile = null;
  if (typeof output === 'string') {
    // The data file first, then the model; both renamed once whole.
    await writeFiles(
      data
        ? [
            [data.path, emitData],
            [output, emit],
          ]
        : [[output, emit]],
      verify,
    );
    file = output;
    dataFile = data ? data.path : null;
  } else if (output !== undefined) {
    if (data)
      throw new QuantLensError(
        'INVALID_ARGUMENT',
        'this model has external data, written as a data file beside the model: give output as a file path, or blob: true',
      );
    await writeStream(output, emit);
  } else if (blob) {
    if (data) dataFile = await toBlob(emitData);
    file = await toBlob(emit);
  } else {
    if (data) dataFile = await toBytes(data.written, emitData);
    bytes = await toBytes(written, emit);
  }
  if (verify && typeof output !== 'string') verify();
  return { bytes, file, dataFile };
}

/**
 * @param source  path (Node), Uint8Array | ArrayBuffer, or Blob/File
 * @param options { keepRelu6 = false, biasAbsorption = true, triples = true, throughPadPool = true,
 *                  maxIterations = 50, tolerance = 1e-3, deadChannelRatio = 1e-6, histogramBins = 128,
 *                  output: path | Writable (Node: the equalized file is written there, piece by piece,
 *                          and not returned; a path is written to PATH.PID.tmp and renamed when whole),
 *                  blob: true (return the file as `blob`, a Blob built from its pieces, instead of `bytes`),
 *                  write: false (the report alone: no file is made, `bytes` is null; memory stays
 *                          bounded where `bytes` would hold the whole equalized model),
 *                  signal: AbortSignal, onProgress({phase, done, total}) }
 * @returns { schema, model: {name, bytes}, options, size (of the equalized file),
 *            bytes: Uint8Array (the equalized file; null with `output` or `blob`), blob: Blob | null,
 *            output: the path written, or null,
 *            layers, sequences, stops, foldedBatchNorms, relu6Replaced, relu6Kept, deadChannels,
 *            biasAbsorptions, summary }
 */
export async function equalize(source, options = {}) {
  const { signal, onProgress, output, blob, dataName } = options;
  if (output !== undefined && !(typeof output === 'string' && output) && !isWritable(output))
    throw new QuantLensError('INVALID_ARGUMENT', 'output must be a file path or a Node Writable stream');
  if (output !== undefined && !isNode)
    throw new QuantLensError('INVALID_ARGUMENT', 'output can only be written under Node; use blob: true');
  if (blob !== undefined && typeof blob !== 'boolean') throw new QuantLensError('INVALID_ARGUMENT', 'blob must be true or false');
  if (blob && output !== undefined) throw new QuantLensError('INVALID_ARGUMENT', 'give either output or blob, not both');
  if (options.write !== undefined && typeof options.write !== 'boolean')
    throw new QuantLensError('INVALID_ARGUMENT', 'write must be true or false');
  if (options.write === false && (output !== undefined || blob))
    throw new QuantLensError('INVALID_ARGUMENT', 'write: false makes no file: give no output and no blob with it');
  if (blob && typeof Blob !== 'function') throw new QuantLensError('INVALID_ARGUMENT', 'blob: true needs a Blob implementation');
  if (
    dataName !== undefined &&
    !(typeof dataName === 'string' && dataName && !/[/\\\0]/.test(dataName) && dataName !== '.' && dataName !== '..')
  )
    throw new QuantLensError('INVALID_ARGUMENT', 'dataName must be a plain file name (no folder)');
  checkAbort(signal);
  const core = await loadCore();
  const opts = coreOptions(core, options);
  const src = await openSource(core, source);
  const pathMod = typeof output === 'string' ? await nodeImport('path') : null;
  // The new external data file's name, beside the written model (used only when the model has external data).
  const dataLocation =
    dataName ?? (pathMod ? `${pathMod.basename(output)}.data` : `${src.name.replace(/\.onnx$/i, '')}.equalized.onnx.data`);
  const external = await externalReaderSync(core, options.externalData, src.dir);
  let ptr = 0;
  let scratch = 0;
  let eq = null;
  try {
    let input;
    if (src.sync) {
      // Streamed: the core skims the structure and reads the weights it changes through
      // this reader (progress 'read' while it does), then equalizes; the input's pieces
      // are read again, a chunk at a time, when written.
      if (onProgress) onProgress({ phase: 'read', done: 0, total: src.size });
      const reader = coreReader(src, onProgress);
      const made = core.equalizeStreamed(src.size, reader.read, opts, external.read, dataLocation);
      reader.check(made);
      external.check(made);
      eq = unwrap(made, src.name);
      if (onProgress) onProgress({ phase: 'equalize', done: 1, total: 1 });
      input = async (offset, length) => {
        await src.readInto(offset, length, scratch);
        return core.HEAPU8.subarray(scratch, scratch + length);
      };
    } else {
      // A Blob outside a worker (no synchronous reads): the file whole in the heap, and
      // the input's pieces views of it.
      ptr = await readWholeIntoHeap(core, src, { onProgress, signal });
      checkAbort(signal);
      if (onProgress) onProgress({ phase: 'equalize', done: 0, total: 1 });
      const made = core.equalize(ptr, src.size, opts, external.read, dataLocation);
      external.check(made);
      eq = unwrap(made, src.name);
      input = async (offset, length) => core.HEAPU8.subarray(ptr + offset, ptr + offset + length);
    }
    const size = eq.size();
    const hasData = eq.dataLocation() !== '';
    const transformed = (pieces) => pieces.some((p) => p.transform !== undefined);
    // One scratch buffer for the pieces copied through from the model file or a data file,
    // and for the changed weights rewritten as they are written (transform below).
    const need =
      options.write === false // no file is written: nothing is copied through
        ? 0
        : Math.min(CHUNK, Math.max(src.sync || transformed(eq.pieces()) ? src.size : 0, hasData ? eq.dataSize() : 0));
    if (need) scratch = heapAlloc(core, need);
    // A changed weight's piece, read as stored into `bytes`: rewritten in the scratch
    // buffer (where the input's reads land already, unless the model is whole in the heap).
    const transform = (data) => (k, at, bytes) => {
      if (bytes.byteOffset !== scratch || bytes.buffer !== core.HEAPU8.buffer) core.HEAPU8.set(bytes, scratch);
      if (!eq.transformPiece(data, k, at, scratch, bytes.length))
        throw new QuantLensError('INVALID_ARGUMENT', 'a changed weight could not be written (a QuantLens bug: please report it)');
      return core.HEAPU8.subarray(scratch, scratch + bytes.length);
    };
    const written = { size: () => eq.size(), pieces: () => eq.pieces(), transform: transform(false) };
    const data = hasData && {
      written: { size: () => eq.dataSize(), pieces: () => eq.dataPieces(), transform: transform(true) },
      input: async (offset, length, location) => {
        const why = external.read(location, offset, length, scratch);
        if (why) external.check(null);
        return core.HEAPU8.subarray(scratch, scratch + length);
      },
      path: pathMod ? pathMod.join(pathMod.dirname(output), eq.dataLocation()) : null,
    };
    // write: false: the report alone; the equalized file (and its data file) is not made.
    const { bytes, file, dataFile } =
      options.write === false
        ? { bytes: null, file: null, dataFile: null }
        : await deliverWritten(
            written,
            input,
            { output, blob, signal, onProgress, verify: () => checkUnchanged(src, external) },
            data || null,
          );
    const r = eq.report();
    const layers = r.layers.map((l) => {
      const [outScale, inScale, absorbed] = copyViews([l.outScale, l.inScale, l.absorbed]);
      return {
        name: l.name,
        op: l.op,
        weight: l.weight,
        node: l.node,
        batchNormFolded: l.batchNormFolded,
        biasAdded: l.biasAdded,
        // Why `before` is empty (all zeros), naming the layer; null when it was computed.
        beforeError: l.beforeError ?? null,
        before: copyStats({ ...l.before, quant: null }),
        after: copyStats({ ...l.after, quant: null }),
        outScale,
        inScale,
        absorbed: absorbed.length ? absorbed : null,
      };
    });
    const result = {
      schema: CLE_SCHEMA,
      model: { name: src.name, bytes: src.size },
      options: r.options,
      size,
      bytes,
      blob: blob ? file : null,
      output: typeof output === 'string' ? output : null,
      // Only for a model with external data: the one new data file that the written model's
      // external tensors point to, its name (beside the model), size, and the file as bytes,
      // a Blob, or the path written (the others null).
      ...(hasData
        ? {
            dataName: eq.dataLocation(),
            dataSize: eq.dataSize(),
            dataBytes: !blob && output === undefined ? dataFile : null,
            dataBlob: blob ? dataFile : null,
            dataOutput: typeof output === 'string' ? dataFile : null,
          }
        : {}),
      layersSeen: r.layersSeen,
      layers,
      sequences: r.sequences.map((s) => ({ ...s, layers: s.layers.map((k) => layers[k].name) })),
      stops: r.stops,
      foldedBatchNorms: r.foldedBatchNorms,
      relu6Replaced: r.relu6Replaced,
      relu6Kept: r.relu6Kept,
      deadChannels: r.deadChannels,
      biasAbsorptions: r.biasAbsorptions,
    };
    result.summary = summarize(result);
    return result;
  } finally {
    if (eq) eq.delete();
    if (ptr) core._free(ptr);
    if (scratch) core._free(scratch);
    external.close();
    src.close();
  }
}

// Means and worst values over the given changed layers of one scheme's per-tensor SQNR (dB).
export function sqnrChange(layers, scheme) {
  const values = (f) => layers.map(f).filter(Number.isFinite);
  const mean = (xs) => (xs.length ? xs.reduce((a, b) => a + b, 0) / xs.length : null);
  const worst = (xs) => (xs.length ? Math.min(...xs) : null);
  const before = values((l) => (l.beforeError ? NaN : l.before.sqnr[scheme]));
  const after = values((l) => l.after.sqnr[scheme]);
  return { meanBefore: mean(before), meanAfter: mean(after), worstBefore: worst(before), worstAfter: worst(after) };
}

function summarize(r) {
  return {
    changed: r.layers.length > 0,
    layersChanged: r.layers.length,
    sequences: r.sequences.length,
    batchNormsFolded: r.foldedBatchNorms.length,
    relu6Replaced: r.relu6Replaced.length,
    deadChannels: r.deadChannels.length,
    biasAbsorptions: r.biasAbsorptions,
    int8PerTensor: sqnrChange(r.layers, 'int8PerTensor'),
    int4PerTensor: sqnrChange(r.layers, 'int4PerTensor'),
  };
}
