/**
 * compare(a, b, options): per-layer, per-channel differences between the weights of
 * two ONNX models (e.g. a float model and its QDQ / QLinearConv quantized copy).
 *
 * @param a, b     sources as for analyze(): a path (Node), Uint8Array | ArrayBuffer, or Blob/File.
 *                 Both are read whole into the WASM heap. External data is not supported
 *                 (such a layer is reported as a pair with comparable: false).
 * @param options  { onProgress({ phase: 'read' | 'compare', done, total, side?: 'a' | 'b', layer? }),
 *                   signal: AbortSignal (QuantLensError code ABORTED, checked between pairs) }
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
import { checkAbort, openSource, readWholeIntoHeap } from './source.js';

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
  return out;
}

// The summary of a comparison over the given pairs (also used after a --layers selection).
export function comparisonSummary(pairs, unmatched) {
  const matchedBy = { weight: 0, name: 0, position: 0, 'weight-normalized': 0, 'name-normalized': 0 };
  let comparable = 0;
  let identical = 0;
  let maxAbsDiff = 0;
  let worst = null;
  pairs.forEach((p, k) => {
    matchedBy[p.matchedBy]++;
    if (!p.comparable) return;
    comparable++;
    if (p.tensor.sqnr === Infinity) identical++;
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
    worst,
    maxAbsDiff,
  };
}

export async function compare(a, b, options = {}) {
  if (options === null || typeof options !== 'object') throw new QuantLensError('INVALID_ARGUMENT', 'options must be an object');
  const { onProgress, signal } = options;
  if (onProgress !== undefined && typeof onProgress !== 'function')
    throw new QuantLensError('INVALID_ARGUMENT', 'onProgress must be a function');
  checkAbort(signal);
  const core = await loadCore();
  const sources = [];
  let ptrA = 0;
  let ptrB = 0;
  let cmp = null;
  try {
    sources.push(await openSource(core, a));
    sources.push(await openSource(core, b));
    const [srcA, srcB] = sources;
    const progress = (side) => onProgress && ((p) => onProgress({ ...p, side }));
    ptrA = await readWholeIntoHeap(core, srcA, { onProgress: progress('a'), signal });
    ptrB = await readWholeIntoHeap(core, srcB, { onProgress: progress('b'), signal });
    checkAbort(signal);
    const opened = core.openComparison(ptrA, srcA.size, ptrB, srcB.size); // owns both buffers from here
    ptrA = 0;
    ptrB = 0;
    cmp = unwrap(opened, isCoreError(opened) && opened.side === 'b' ? srcB.name : srcA.name);
    const n = cmp.pairCount();
    const pairs = [];
    let last = now();
    for (let k = 0; k < n; k++) {
      checkAbort(signal);
      const p = copyPair(unwrap(cmp.pair(k), srcA.name));
      pairs.push(p);
      if (onProgress) onProgress({ phase: 'compare', done: k + 1, total: n, layer: p.a.name });
      if ((signal || onPageThread) && now() - last > 30) {
        await yieldToEventLoop();
        last = now();
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
    if (ptrA) core._free(ptrA);
    if (ptrB) core._free(ptrB);
    if (cmp) cmp.delete();
    for (const s of sources) s.close();
  }
}
