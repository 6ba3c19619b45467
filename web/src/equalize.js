// equalize(source, options): Cross Layer Equalization in the WASM core. Returns the
// equalized ONNX file and, for every layer it changed, the weights' statistics
// before and after, the scale factors, the sequences and where they stopped.
import { copyStats, copyViews } from './analyze.js';
import { loadCore, unwrap } from './core.js';
import { QuantLensError } from './errors.js';
import { isNode, nodeImport } from './node.js';
import { checkAbort, coreReader, heapAlloc, openSource, readWholeIntoHeap } from './source.js';

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
        await put(view ? view.subarray(at, at + n) : await input(start + at, n));
        done += n;
        if (onProgress) onProgress({ phase: 'write', done, total });
      }
    }
  }
}

// Writes the pieces to a file at `path` (Node): to PATH.PID.tmp, renamed to PATH once
// whole, so a failure or a cancel leaves no output file (and removes the temporary one).
export async function writeFile(path, emit) {
  const fs = await nodeImport('fs');
  const tmp = `${path}.${process.pid}.tmp`;
  let fd;
  try {
    fd = fs.openSync(tmp, 'w');
  } catch (e) {
    throw new QuantLensError('IO_ERROR', `cannot write ${path}: ${e.message}`, { cause: e });
  }
  try {
    await emit((view) => {
      for (let off = 0; off < view.length;) off += fs.writeSync(fd, view, off, view.length - off);
    });
    fs.closeSync(fd);
    fd = undefined;
    fs.renameSync(tmp, path);
  } catch (e) {
    if (fd !== undefined) fs.closeSync(fd);
    fs.rmSync(tmp, { force: true });
    if (e instanceof QuantLensError) throw e;
    throw new QuantLensError('IO_ERROR', `cannot write ${path}: ${e.message}`, { cause: e });
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
export async function deliverWritten(written, input, { output, blob, signal, onProgress }) {
  const emit = (put, report = true) => emitPieces(written, input, put, { signal, onProgress: report ? onProgress : null });
  let bytes = null;
  let file = null;
  if (typeof output === 'string') {
    await writeFile(output, emit);
    file = output;
  } else if (output !== undefined) {
    await writeStream(output, emit);
  } else if (blob) {
    let b = new Blob([], { type: 'application/octet-stream' });
    await emit((view) => {
      b = new Blob([b, view], { type: 'application/octet-stream' }); // each part copied as it comes
    });
    file = b;
  } else {
    bytes = new Uint8Array(written.size());
    let at = 0;
    await emit((view) => {
      bytes.set(view, at);
      at += view.length;
    }, false);
  }
  return { bytes, file };
}

/**
 * @param source  path (Node), Uint8Array | ArrayBuffer, or Blob/File
 * @param options { keepRelu6 = false, biasAbsorption = true, triples = true, throughPadPool = true,
 *                  maxIterations = 50, tolerance = 1e-3, deadChannelRatio = 1e-6, histogramBins = 128,
 *                  output: path | Writable (Node: the equalized file is written there, piece by piece,
 *                          and not returned; a path is written to PATH.PID.tmp and renamed when whole),
 *                  blob: true (return the file as `blob`, a Blob built from its pieces, instead of `bytes`),
 *                  signal: AbortSignal, onProgress({phase, done, total}) }
 * @returns { schema, model: {name, bytes}, options, size (of the equalized file),
 *            bytes: Uint8Array (the equalized file; null with `output` or `blob`), blob: Blob | null,
 *            output: the path written, or null,
 *            layers, sequences, stops, foldedBatchNorms, relu6Replaced, relu6Kept, deadChannels,
 *            biasAbsorptions, summary }
 */
export async function equalize(source, options = {}) {
  const { signal, onProgress, output, blob } = options;
  if (output !== undefined && !(typeof output === 'string' && output) && !isWritable(output))
    throw new QuantLensError('INVALID_ARGUMENT', 'output must be a file path or a Node Writable stream');
  if (output !== undefined && !isNode)
    throw new QuantLensError('INVALID_ARGUMENT', 'output can only be written under Node; use blob: true');
  if (blob !== undefined && typeof blob !== 'boolean') throw new QuantLensError('INVALID_ARGUMENT', 'blob must be true or false');
  if (blob && output !== undefined) throw new QuantLensError('INVALID_ARGUMENT', 'give either output or blob, not both');
  if (blob && typeof Blob !== 'function') throw new QuantLensError('INVALID_ARGUMENT', 'blob: true needs a Blob implementation');
  checkAbort(signal);
  const core = await loadCore();
  const opts = coreOptions(core, options);
  const src = await openSource(core, source);
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
      const made = core.equalizeStreamed(src.size, reader.read, opts);
      reader.check(made);
      eq = unwrap(made, src.name);
      if (onProgress) onProgress({ phase: 'equalize', done: 1, total: 1 });
      scratch = heapAlloc(core, Math.min(CHUNK, src.size));
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
      eq = unwrap(core.equalize(ptr, src.size, opts), src.name);
      input = async (offset, length) => core.HEAPU8.subarray(ptr + offset, ptr + offset + length);
    }
    const size = eq.size();
    const { bytes, file } = await deliverWritten(eq, input, { output, blob, signal, onProgress });
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
