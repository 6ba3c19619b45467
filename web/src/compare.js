/**
 * compare(a, b, options): per-layer, per-channel differences between the weights of
 * two ONNX models (e.g. a float model and its QDQ / QLinearConv quantized copy).
 *
 * @param a, b     sources as for analyze(): a path (Node), Uint8Array | ArrayBuffer, or Blob/File.
 *                 Read as analyze() reads them: the structure first, then the weights of one
 *                 pair at a time, in pieces (a Blob outside a worker is read whole). External
 *                 data is read as analyze() reads it: beside a model read from a path (Node), or
 *                 from options.externalData; a weight whose external data is missing or refused
 *                 makes its pair not comparable, with the reason.
 * @param options  { onProgress({ phase: 'read' | 'compare', done, total, side?: 'a' | 'b', layer?, workers? }),
 *                   signal: AbortSignal (QuantLensError code ABORTED, checked between pairs and pieces),
 *                   externalData: { a?, b? } (each side's, as analyze()'s externalData),
 *                   workers: as analyze()'s: pairs dealt out largest first to a pool of workers, each
 *                   opening both models itself (by default when the pairs read 64 MB or more from
 *                   files; the result is the one of one thread, bit for bit; `workers` in
 *                   progress says the pool ran) }
 *
 * @returns  (document `quantlens.comparison/1`)
 * {
 *   schema: 'quantlens.comparison/1',
 *   a: { model: { name, bytes, producer, producerVersion, irVersion, opsets: [{domain, version}],
 *                 graph, nodes, layers (count of weight layers found) } },
 *   b: { model: { ...same } },
 *   pairs: [ {                              // in A's graph order
 *     a: { position,                        // index among A's weight layers (analyze()'s layer index)
 *          name, path, weight, op, shape: [], dtype, channelAxis, channels, recurrent? (LSTM, GRU, RNN, as analyze()'s),
 *          quant: null | { via, dtype, axis (null per-tensor), scale: Float64Array, zeroPoint: Float64Array } },
 *     b: { ...same for B },
 *     matchedBy: 'weight' | 'name' | 'weight-normalized' | 'name-normalized' | 'position',
 *                                           // how the pair was found: the same weight tensor name, node name,
 *                                           // the same names once the quantizer's suffixes are removed
 *                                           // ("_quantized", "_quant", "_DequantizeLinear", ...), graph position
 *     comparable: boolean,
 *     reason?: string,                      // only when !comparable (shape/layout mismatch, unreadable weight, NaN, ...)
 *     tensor:   null | { maxAbsDiff, rmsDiff, sqnr },   // null when !comparable; sqnr in dB, Infinity when identical
 *     rescale:  null | { factor: Float64Array },        // B is A rescaled per output channel (and per input
 *                                                       // channel, positively): what CLE and BatchNorm folding
 *                                                       // do, keeping the function; factor: B/A per output channel
 *     channels: null | {                    // per output channel of A's layout; null when !comparable
 *       count,
 *       maxAbsDiff: Float64Array,           // max |b - a|
 *       rmsDiff:    Float64Array,           // sqrt(mean (b - a)^2)
 *       sqnr:       Float64Array,           // 10 log10(sum a^2 / sum (b - a)^2) dB, Infinity when identical
 *       minA: Float32Array, maxA: Float32Array, minB: Float32Array, maxB: Float32Array,  // dequantized values
 *     },
 *   } ],
 *   unmatched: { a: [layer names], b: [layer names] },  // layers of each side with no partner, graph order
 *   summary: {
 *     pairs, comparable, incomparable, unmatchedA, unmatchedB,
 *     matchedBy: { weight, name, position, 'weight-normalized', 'name-normalized' },  // counts
 *     identical,                                         // comparable pairs with tensor.sqnr === Infinity
 *     rescaled,                                          // comparable pairs whose B is A rescaled per channel
 *     worst: null | { pair (index in pairs), name (A's layer name), sqnr },  // lowest tensor SQNR
 *     maxAbsDiff,                                        // over all comparable pairs (0 when none)
 *   },
 * }
 *
 * Values: both weights are dequantized to float32 exactly as analyze() does
 * (y = (x - zero_point) * scale in float32); differences, squares and sums are double.
 * Matching (the core's rule, src/compare/compare.hpp): 1. same weight tensor name,
 * 2. same node name, 3. k-th still-unmatched layer of A with the k-th of B in graph
 * order, paired only when their op family and weight element count agree.
 * Pairs are comparable when the element counts are equal and either the stored shapes
 * or the channel layouts are equal; values are then compared in stored order.
 * toJSON() turns Infinity into null, as for analyze().
 */
import { copyViews } from './analyze.js';
import { isCoreError, loadCore, unwrap } from './core.js';
import { QuantLensError } from './errors.js';
import { checkWorkers, comparePairsInPool, comparePoolSize } from './pool.js';
import { checkAbort, checkUnchanged, coreReader, externalFiles, heapAlloc, openSource, readWholeIntoHeap } from './source.js';

export const COMPARISON_SCHEMA = 'quantlens.comparison/1';

const now = () => (typeof performance !== 'undefined' ? performance.now() : Date.now());
const yieldToEventLoop =
  typeof setImmediate === 'function'
    ? () => new Promise((resolve) => setImmediate(resolve))
    : () =>
        new Promise((resolve) => {
          const ch = new MessageChannel();
          ch.port1.onmessage = () => resolve();
          ch.port2.postMessage(0);
        });
const onPageThread = typeof window === 'object' && typeof document === 'object';

// One side of a pair as the document has it, its quantization parameters copied out of the heap.
function copySide({ position, layer: l, quant }) {
  const side = {
    position,
    name: l.name,
    path: l.path,
    weight: l.weight,
    op: l.op,
    shape: l.shape,
    dtype: l.dtype,
    channelAxis: l.channelAxis,
    channels: l.channels,
    quant,
  };
  if (l.recurrent) side.recurrent = l.recurrent; // LSTM, GRU, RNN: how the channels read (presentation.js channelText)
  if (!quant) return side;
  const [scale, zeroPoint] = copyViews([quant.scale, quant.zeroPoint]);
  side.quant = { ...quant, scale, zeroPoint };
  return side;
}

// One side's model as the document has it.
function modelDoc(name, m) {
  return {
    name,
    bytes: m.bytes,
    producer: m.producer,
    producerVersion: m.producerVersion,
    irVersion: m.irVersion,
    opsets: m.opsets,
    graph: m.graph,
    nodes: m.nodes,
    layers: m.layers,
  };
}

function copyPair(p) {
  const out = { a: copySide(p.a), b: copySide(p.b), matchedBy: p.matchedBy, comparable: p.comparable };
  if (!p.comparable) {
    out.reason = p.reason;
    out.tensor = null;
    out.channels = null;
    out.rescale = null;
    return out;
  }
  const ch = p.channels;
  const [maxAbsDiff, rmsDiff, sqnr, minA, maxA, minB, maxB] = copyViews([
    ch.maxAbsDiff,
    ch.rmsDiff,
    ch.sqnr,
    ch.minA,
    ch.maxA,
    ch.minB,
    ch.maxB,
  ]);
  out.tensor = { maxAbsDiff: p.tensor.maxAbsDiff, rmsDiff: p.tensor.rmsDiff, sqnr: p.tensor.sqnr };
  out.channels = { count: ch.count, maxAbsDiff, rmsDiff, sqnr, minA, maxA, minB, maxB };
  // B is A rescaled per channel (the core's test, src/compare/compare.hpp PairDiff::rescale):
  // the function is kept, the differences are no error.
  out.rescale = p.rescale ? { factor: copyViews([p.rescale.factor])[0] } : null;
  return out;
}

// The summary of a comparison over the given pairs (also used after a --layers selection).
export function comparisonSummary(pairs, unmatched) {
  const matchedBy = { weight: 0, name: 0, position: 0, 'weight-normalized': 0, 'name-normalized': 0 };
  let comparable = 0;
  let identical = 0;
  let rescaled = 0;
  let maxAbsDiff = 0;
  let worst = null;
  pairs.forEach((p, k) => {
    matchedBy[p.matchedBy]++;
    if (!p.comparable) return;
    comparable++;
    if (p.tensor.sqnr === Infinity) identical++;
    if (p.rescale) rescaled++;
    maxAbsDiff = Math.max(maxAbsDiff, p.tensor.maxAbsDiff);
    if (!worst || p.tensor.sqnr < worst.sqnr) worst = { pair: k, name: p.a.name, sqnr: p.tensor.sqnr };
  });
  return {
    pairs: pairs.length,
    comparable,
    incomparable: pairs.length - comparable,
    unmatchedA: unmatched.a.length,
    unmatchedB: unmatched.b.length,
    matchedBy,
    identical,
    rescaled,
    worst,
    maxAbsDiff,
  };
}

// Reading external data failed in a way that belongs to the pair, not to the model file.
const PAIR_READ_ERRORS = new Set(['MISSING_EXTERNAL_DATA', 'UNSAFE_EXTERNAL_DATA']);

// Opens one side for the core: skimmed through a synchronous reader when the source
// allows it (its large weights stay in the file), else read whole into the heap.
async function openSide(core, src, { onProgress, signal }) {
  // Progress starts at 0 for each side in turn: a skimmed side is read when the core opens
  // both, after a side read whole.
  if (onProgress) onProgress({ phase: 'read', done: 0, total: src.size });
  if (!src.sync) return { size: src.size, ptr: await readWholeIntoHeap(core, src, { onProgress, signal }) };
  const reader = coreReader(src, onProgress);
  return { size: src.size, read: reader.read, reader };
}

// Compares pair k whose weights are not all in memory: each side's weight read whole or
// a piece at a time into one reused heap buffer per side, as the core's plan says.
async function streamPair(core, cmp, plan, readers, scratch, signal) {
  const sides = [plan.a, plan.b];
  const read = (s, off, len, ptr) => {
    const w = sides[s];
    return w.external
      ? readers[s].external.readInto(w, w.offset + off, len, ptr)
      : readers[s].src.readInto(w.offset + off, len, ptr);
  };
  // Runs a read; a missing or refused external file makes the pair not comparable.
  const tryRead = async (s, fn) => {
    try {
      await fn();
      return true;
    } catch (e) {
      if (!(e instanceof QuantLensError) || !PAIR_READ_ERRORS.has(e.code)) throw e;
      cmp.fail(s, e.message);
      return false;
    }
  };
  for (let s = 0; s < 2; s++) {
    const w = sides[s];
    if (!w || !w.whole) continue;
    const ptr = heapAlloc(core, w.bytes);
    try {
      if (await tryRead(s, () => read(s, 0, w.bytes, ptr))) cmp.hold(s, ptr, w.bytes);
    } finally {
      core._free(ptr);
    }
  }
  const { elements, pieceElements } = plan;
  const range = (w, first, count) => {
    const start = Math.floor((first * w.bits) / 8);
    return [start, Math.ceil(((first + count) * w.bits) / 8) - start];
  };
  for (let first = 0; first < elements && cmp.needsPieces(); first += pieceElements) {
    checkAbort(signal);
    const count = Math.min(pieceElements, elements - first);
    const piece = [
      [0, 0],
      [0, 0],
    ];
    let ok = true;
    for (let s = 0; s < 2 && ok; s++) {
      const w = sides[s];
      if (!w || w.whole) continue;
      const [start, len] = range(w, first, count);
      if (scratch[s].size < len) {
        if (scratch[s].ptr) core._free(scratch[s].ptr);
        scratch[s] = { ptr: 0, size: 0 };
        scratch[s] = { ptr: heapAlloc(core, len), size: len };
      }
      ok = await tryRead(s, () => read(s, start, len, scratch[s].ptr));
      piece[s] = [scratch[s].ptr, len];
    }
    if (!ok) break;
    unwrap(cmp.feed(piece[0][0], piece[0][1], piece[1][0], piece[1][1], first, count), 'compare');
  }
  cmp.finish();
}

// Both sides opened for the core, with their readers: what compare() and a pool worker
// compare pairs with. close() frees everything.
export async function openComparison(core, a, b, externalData, { onProgress, signal } = {}) {
  const sources = [];
  const externals = [];
  const scratch = [
    { ptr: 0, size: 0 },
    { ptr: 0, size: 0 },
  ];
  const opened = [];
  let cmp = null;
  const close = async () => {
    for (const o of opened) if (o.ptr) core._free(o.ptr);
    for (const s of scratch) if (s.ptr) core._free(s.ptr);
    if (cmp) cmp.delete();
    for (const e of externals) await e.close();
    for (const s of sources) s.close();
  };
  try {
    sources.push(await openSource(core, a));
    sources.push(await openSource(core, b));
    const [srcA, srcB] = sources;
    externals.push(externalFiles(core, externalData.a, srcA.dir), externalFiles(core, externalData.b, srcB.dir));
    const progress = (side) => onProgress && ((p) => onProgress({ ...p, side }));
    opened.push(await openSide(core, srcA, { onProgress: progress('a'), signal }));
    opened.push(await openSide(core, srcB, { onProgress: progress('b'), signal }));
    checkAbort(signal);
    const [sideA, sideB] = opened;
    const made = core.openComparison(sideA, sideB); // owns both buffers from here
    opened.length = 0;
    for (const side of [sideA, sideB]) if (side.reader) side.reader.check(made);
    cmp = unwrap(made, isCoreError(made) && made.side === 'b' ? srcB.name : srcA.name);
    const readers = [
      { src: srcA, external: externals[0] },
      { src: srcB, external: externals[1] },
    ];
    return { core, cmp, srcA, srcB, readers, scratch, close };
  } catch (e) {
    await close();
    throw e;
  }
}

// Pair k of an opened comparison, as the document has it (its arrays copied out of the heap).
export async function comparePairAt(c, k, signal) {
  const plan = unwrap(c.cmp.begin(k), c.srcA.name);
  if (!plan.done) await streamPair(c.core, c.cmp, plan, c.readers, c.scratch, signal);
  for (const r of c.readers) checkUnchanged(r.src, r.external); // read after the structure, from the same files
  return copyPair(c.cmp.result());
}

export async function compare(a, b, options = {}) {
  if (options === null || typeof options !== 'object') throw new QuantLensError('INVALID_ARGUMENT', 'options must be an object');
  const { onProgress, signal } = options;
  if (onProgress !== undefined && typeof onProgress !== 'function')
    throw new QuantLensError('INVALID_ARGUMENT', 'onProgress must be a function');
  const externalData = options.externalData ?? {};
  if (externalData === null || typeof externalData !== 'object')
    throw new QuantLensError('INVALID_ARGUMENT', 'externalData must be an object { a, b }');
  const requested = checkWorkers(options.workers);
  checkAbort(signal);
  const core = await loadCore();
  const c = await openComparison(core, a, b, externalData, { onProgress, signal });
  try {
    const { cmp, srcA, srcB } = c;
    const n = cmp.pairCount();
    const bytes = Array.from({ length: n }, (_, k) => cmp.pairBytes(k));
    const job = { a, b, externalData, signal };
    const count = await comparePoolSize(job, bytes, requested);
    let pairs = null;
    let done = 0;
    const arrived = (p) => {
      done++;
      if (onProgress) onProgress({ phase: 'compare', done, total: n, layer: p.a.name, ...(count > 1 && { workers: count }) });
    };
    if (count > 1) pairs = await comparePairsInPool({ ...job, onResult: (k, p) => arrived(p) }, count, bytes);
    if (!pairs) {
      pairs = [];
      let last = now();
      for (let k = 0; k < n; k++) {
        checkAbort(signal);
        const p = await comparePairAt(c, k, signal);
        pairs.push(p);
        arrived(p);
        if ((signal || onPageThread) && now() - last > 30) {
          await yieldToEventLoop();
          last = now();
        }
      }
    }
    const unmatched = cmp.unmatched();
    return {
      schema: COMPARISON_SCHEMA,
      a: { model: modelDoc(srcA.name, cmp.model('a')) },
      b: { model: modelDoc(srcB.name, cmp.model('b')) },
      pairs,
      unmatched,
      summary: comparisonSummary(pairs, unmatched),
    };
  } finally {
    await c.close();
  }
}
