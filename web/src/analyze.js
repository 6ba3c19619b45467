// analyze(source, options): the per-channel weight analysis of an ONNX model.
import { isCoreError, loadCore, unwrap } from './core.js';
import { QuantLensError } from './errors.js';
import { riskRanking, storedSchemeText } from './presentation.js';
import { SCHEMES, blockSizeOf } from './schemes.js';
import { tallyLayers } from './tally.js';
import { analyzeInPool, blobPoolSize, checkWorkers, earlyWorkers, poolSize } from './pool.js';
import { checkAbort, checkUnchanged, coreReader, externalFiles, heapAlloc, openSource, readWholeIntoHeap } from './source.js';
import { compressibility as layerCurves, CURVE_FRACTIONS, METHODS } from './compress.js';

export { SCHEMES };
export const SCHEMA = 'quantlens.analysis/1';

// Per-layer failures that make the whole model unreadable (as opposed to one
// layer we cannot analyse, e.g. NaN weights or an unsupported type).
const FATAL = new Set([
  'INVALID_MODEL',
  'INVALID_GRAPH',
  'UNSAFE_EXTERNAL_DATA',
  'MISSING_EXTERNAL_DATA',
  'INVALID_ARGUMENT',
  'IO_ERROR',
]);

// Copies the per-channel views out of the WASM heap (before the next call) into one
// ArrayBuffer per layer: one allocation instead of a dozen small ones.
export function copyViews(views) {
  let bytes = 0;
  for (const v of views) bytes += (v.byteLength + 7) & ~7;
  const buffer = new ArrayBuffer(bytes);
  let offset = 0;
  return views.map((v) => {
    const out = new v.constructor(buffer, offset, v.length);
    out.set(v);
    offset += (v.byteLength + 7) & ~7;
    return out;
  });
}

export function copyStats(r) {
  const ch = r.channels;
  const schemes = Object.keys(ch.sqnr); // the core's, in its order (SCHEMES, then any extra block size)
  const q = r.quant;
  const ic = r.inputChannels; // absent from an equalization's statistics
  const st = r.stored;
  const storedKeys = ['levels', 'codeMin', 'codeMax', 'atLow', 'atHigh'];
  const views = [
    ch.min,
    ch.max,
    ch.mean,
    ch.std,
    ch.absMax,
    ch.range,
    ch.relativeRange,
    ...schemes.map((k) => ch.sqnr[k]),
    r.histogram.counts,
    r.outlierChannels,
    ...(ic ? [ic.absMax, ic.relativeAbsMax, ic.outliers] : []),
    ...(q ? [q.scale, q.zeroPoint] : []),
    ...(st ? storedKeys.map((k) => st.channels[k]) : []),
  ];
  const copies = copyViews(views);
  const [min, max, mean, std, absMax, range, relativeRange] = copies;
  const sqnr = Object.fromEntries(schemes.map((k, i) => [k, copies[7 + i]]));
  let rest = copies.slice(7 + schemes.length);
  const [counts, outliers] = rest;
  rest = rest.slice(2);
  const [inAbsMax, inRelative, inOutliers] = ic ? rest.slice(0, 3) : [];
  if (ic) rest = rest.slice(3);
  const [scale, zeroPoint] = q ? rest.slice(0, 2) : [];
  if (q) rest = rest.slice(2);
  const storedViews = st ? rest.slice(0, storedKeys.length) : [];
  return {
    channels: { count: ch.count, min, max, mean, std, absMax, range, relativeRange, sqnr },
    tensor: r.tensor,
    histogram: { min: r.histogram.min, max: r.histogram.max, counts },
    outlierChannels: outliers,
    outlierThreshold: r.outlierThreshold,
    quartiles: r.quartiles,
    sqnr: r.sqnr,
    quant: q && { ...q, scale, zeroPoint },
    ...(ic && {
      inputChannels: {
        count: ic.count,
        axis: ic.axis,
        groups: ic.groups,
        perGroup: ic.perGroup,
        absMax: inAbsMax,
        relativeAbsMax: inRelative,
        outliers: inOutliers,
        quartiles: ic.quartiles,
        threshold: ic.threshold,
      },
    }),
    stored: st ? { ...st, channels: Object.fromEntries(storedKeys.map((k, i) => [k, storedViews[i]])) } : null,
  };
}

const now = () => (typeof performance !== 'undefined' ? performance.now() : Date.now());
// Lets other work run (an abort, a page repaint). setImmediate in Node, a message
// round trip in browsers: setTimeout would add its 1-4 ms clamp, and more.
export const yieldToEventLoop =
  typeof setImmediate === 'function'
    ? () => new Promise((resolve) => setImmediate(resolve))
    : () =>
        new Promise((resolve) => {
          const ch = new MessageChannel();
          ch.port1.onmessage = () => resolve();
          ch.port2.postMessage(0);
        });
// How often a long analysis yields (ms): for an abort to land, a page to repaint; and, where
// this thread takes part in a pool, for the workers' messages (a worker ready, a part's
// extremes, a result) to be answered soon, since the pool waits on them.
const YIELD_MS = 30;
const POOL_YIELD_MS = 4;
// Yield only where something can be waiting: an AbortSignal, or a browser page's main thread.
const onPageThread = typeof window === 'object' && typeof document === 'object';

/**
 * @param source  path (Node), Uint8Array | ArrayBuffer, or Blob/File
 * @param options { onProgress({phase, done, total, layer}), signal: AbortSignal,
 *                  histogramBins = 128, blockSize (one more INT4 block size to measure: a whole number
 *                  from 1 to 1048576; 32 and 128 always are), externalData: {location: bytes|Blob} | (location, offset, length) => Promise<Uint8Array | Blob of those bytes>,
 *                  layers: RegExp | (layer) => boolean  (which layers to analyse),
 *                  workers (how many workers analyse layers in parallel: pool.js),
 *                  onLayer(layer, {model, schemes, skipped, layers, position}): each layer as it is finished
 *                  (in layer order in one thread; as they finish with workers); `layers`: how many
 *                  will be reported, `position`: this one's place in the result's `layers`,
 *                  compressibility: true | {method: 'svd' | 'prune' | 'auto'} (each layer's
 *                  compressibility curves too, from compressibility(): addCompressibility below) }
 * Progress of phase 'analyze' also says the weight bytes read (`bytes`, of `bytesTotal`:
 * the chosen layers' weights), during a layer as well as after it.
 */
export async function analyze(source, options = {}) {
  const { onProgress, signal, histogramBins = 128 } = options;
  if (!Number.isInteger(histogramBins) || histogramBins < 1 || histogramBins > 1 << 20) {
    throw new QuantLensError('INVALID_ARGUMENT', `histogramBins must be an integer from 1 to ${1 << 20}`);
  }
  const requested = checkWorkers(options.workers);
  const curves = compressibilityOption(options.compressibility);
  checkAbort(signal);
  const core = await loadCore();
  // The core checks the block size (once, for every caller) and names the block schemes.
  const given = options.blockSize !== undefined && options.blockSize !== null;
  const blockSchemes = unwrap(core.blockSchemes(given, given ? options.blockSize : 0), 'blockSize');
  const blockSize = given ? options.blockSize : 0;
  const src = await openSource(core, source);
  const external = externalFiles(core, options.externalData, src.dir);
  const select =
    typeof options.layers === 'function'
      ? options.layers
      : options.layers instanceof RegExp
        ? (l) => options.layers.test(l.name)
        : () => true;
  const job = { source, externalData: options.externalData, histogramBins, blockSize, signal, onProgress };
  job.choose = (described) => chooseLayers(described, select);
  const schemes = [...SCHEMES.filter((k) => blockSizeOf(k) === null), ...blockSchemes];
  if (typeof options.onLayer === 'function') {
    // described: {model, skipped, chosen}; position: the layer's place among the chosen.
    job.onLayer = (layer, described) =>
      options.onLayer(layer, {
        model: described.model,
        schemes,
        skipped: described.skipped,
        layers: described.chosen.length,
        position: described.chosen.findIndex((l) => l.index === layer.index),
      });
  }
  let session = null;
  let result;
  const ctx = { src, external, histogramBins, blockSize, signal, scratch: { ptr: 0, size: 0 }, lastYield: now() };
  job.early = null;
  try {
    // A model read here piecewise: the workers a pool would use start now, beside the reading
    // of its structure (the ones the pool does not take are terminated below).
    if (src.sync && requested !== 1) job.early = await earlyWorkers(job, src.size, requested);
    let described;
    let layers;
    const blobWorkers = requested !== 1 && !src.sync ? await blobPoolSize(job, src.size, requested) : 1;
    if (blobWorkers > 1) {
      // The structure can only be read whole here (a Blob on a page): the workers read it.
      // (null when no worker could start: then as one.)
      ({ described, layers } = (await analyzeInPool(job, blobWorkers, null)) || {});
    }
    if (!layers) {
      session = await openAnalysisSession(core, src, { onProgress, signal });
      described = describeSession(session, src.name);
      const chosen = chooseLayers(described, select);
      const workers = requested === 1 ? 1 : await poolSize(job, chosen, requested);
      // The model is open here: this thread takes part in the pool (pool.js), its tasks
      // stopping at `stop` and yielding to the event loop between pieces, so that the
      // workers' messages are answered while it computes.
      let unlink = null;
      job.localTasks = (stop) => {
        if (signal) ({ signal: ctx.signal, unlink } = eitherSignal(signal, stop));
        else ctx.signal = stop;
        ctx.yieldMs = POOL_YIELD_MS;
        return layerTasks(core, session, ctx);
      };
      if (workers > 1) {
        try {
          layers = (await analyzeInPool(job, workers, { ...described, chosen }))?.layers;
        } finally {
          ctx.signal = signal; // the pool aborted its own when it finished
          ctx.yieldMs = YIELD_MS;
          if (unlink) unlink();
        }
      }
      if (!layers) {
        const onLayer = job.onLayer && ((layer) => job.onLayer(layer, { ...described, chosen }));
        layers = await analyzeInThread(core, session, chosen, described.count, ctx, onProgress, onLayer);
      }
    }
    result = {
      schema: SCHEMA,
      model: described.model,
      options: { histogramBins, blockSize: given ? blockSize : null },
      schemes,
      layers,
      skipped: described.skipped,
      graph: described.graph, // every node, sub-graphs included: what the graph view draws
      summary: summarize(layers, rankLayers(core, layers, described.count)),
    };
  } finally {
    if (job.early) job.early.release();
    if (ctx.scratch.ptr) core._free(ctx.scratch.ptr);
    if (session) session.delete();
    await external.close();
    src.close();
  }
  // After the analysis has let go of its session: compressibility() reads the model whole.
  if (curves) await addCompressibility(result, source, curves, { signal, onProgress, workers: options.workers });
  return result;
}

// analyze()'s `compressibility` option: null when not asked for, else {method}. Checked
// before the analysis runs, so that a bad option costs nothing.
function compressibilityOption(v) {
  if (v === undefined || v === null || v === false) return null;
  if (v === true) return { method: 'svd' };
  if (typeof v === 'object' && !Array.isArray(v)) {
    const other = Object.keys(v).filter((k) => k !== 'method');
    if (other.length)
      throw new QuantLensError('INVALID_ARGUMENT', `compressibility takes {method} only, not ${other.join(', ')}`);
    const method = v.method ?? 'svd';
    if (!METHODS.includes(method))
      throw new QuantLensError('INVALID_ARGUMENT', `compressibility.method must be one of ${METHODS.join(', ')}`);
    return { method };
  }
  throw new QuantLensError('INVALID_ARGUMENT', "compressibility must be true or {method: 'svd' | 'prune' | 'auto'}");
}

// Each analysed layer's compressibility: compressibility()'s entry for it (the same layer
// discovery, so its layer i is the analysis's layer of index i; the names are checked)
// without name and op. When compressibility() cannot read the model (weights in external
// files, a model too large to hold whole), every layer's is null and compressibilityError
// says why; an abort is thrown, as everywhere.
async function addCompressibility(result, source, { method }, { signal, onProgress, workers }) {
  let c = null;
  let error = null;
  try {
    // ratio 1: the plan compressibility() makes as well is then trivial; it is not reported.
    // `workers` as for the analysis (compressibility() deals layers to a pool where it has one).
    c = await layerCurves(source, { method, ratio: 1, signal, onProgress, workers });
  } catch (e) {
    if (!(e instanceof QuantLensError) || e.code === 'ABORTED') throw e;
    error = { code: e.code, message: e.message };
  }
  const unmatched = [];
  for (const layer of result.layers) {
    const entry = c ? c.layers[layer.index] : undefined;
    if (entry && entry.name === layer.name) {
      layer.compressibility = { params: entry.params, macs: entry.macs, curves: entry.curves };
    } else {
      layer.compressibility = null;
      if (c) unmatched.push(layer.name);
    }
  }
  if (unmatched.length)
    error = {
      code: 'INTERNAL',
      message: `compressibility() did not list ${unmatched.length} analysed layers where analyze() found them: ${unmatched.slice(0, 5).join(', ')}${unmatched.length > 5 ? ', ...' : ''}`,
    };
  result.options.compressibility = { method };
  result.compressibility = { fractions: [...(c ? c.fractions : CURVE_FRACTIONS)], method };
  result.compressibilityError = error;
}

// Opens an analysis session over an open source: streaming when it can be read
// synchronously (the core reads the structure and leaves large weights in the file; progress
// is the position reached in the file, skipped weights counting as passed), else read whole.
export async function openAnalysisSession(core, src, { onProgress, signal } = {}) {
  // Which pieces of which file are read for each weight is the core's streaming plan
  // (src/analysis/plan.hpp); a slowly read source (a Blob) reads larger weights whole.
  const slowRead = !!src.slowRead;
  if (!src.sync) {
    const ptr = await readWholeIntoHeap(core, src, { onProgress, signal });
    return unwrap(core.openSession(ptr, src.size, slowRead), src.name); // owns ptr from here
  }
  const reader = coreReader(src, onProgress);
  const session = core.openSessionReader(src.size, reader.read, slowRead);
  reader.check(session);
  unwrap(session, src.name);
  return session;
}

// What analyze() reports of layer i before its statistics.
function layerInfo(session, i) {
  const layer = { index: i, ...session.layer(i) };
  delete layer.external;
  return layer;
}

// The model, every layer's description with the bytes of its weight and the most parts it
// can be cut into (to deal the layers out by size), and the weight nodes skipped.
export function describeSession(session, name) {
  const count = session.layerCount();
  const all = [];
  for (let i = 0; i < count; i++) {
    const info = layerInfo(session, i);
    const where = session.weight(i);
    const elements = info.shape ? info.shape.reduce((a, b) => a * b, 1) : 0;
    const bytes = !isCoreError(where) && where.stream && where.length != null ? where.length : elements * 4;
    all.push({ info, bytes, maxParts: maxParts(session, i) });
  }
  return { model: { name, ...session.model() }, count, all, skipped: session.skipped(), graph: session.graph() };
}

// The layers `select` keeps: [{index, name, bytes, maxParts}], in layer order.
export function chooseLayers(described, select) {
  return described.all
    .filter((l) => select(l.info))
    .map((l) => ({ index: l.info.index, name: l.info.name, bytes: l.bytes, maxParts: l.maxParts }));
}

// Layer i whole: its description and statistics, or `error` when this one layer cannot be
// analysed (NaN weights, an unsupported type). A failure that makes the model unreadable
// throws. `ctx`: {src, external, histogramBins, blockSize, signal, scratch: {ptr, size}}
// (one heap buffer reused for every streamed weight; the caller frees it).
export async function analyzeLayerAt(core, session, i, ctx) {
  const { src, histogramBins, blockSize } = ctx;
  const layer = layerInfo(session, i);
  const where = unwrap(session.weight(i), src.name);
  let r;
  if (!where.stream) {
    r = session.analyze(i, histogramBins, blockSize);
  } else {
    const plan = session.begin(i, histogramBins, blockSize);
    r = isCoreError(plan) ? plan : (await runPasses(await openStream(core, session, where, plan, ctx), 1)) || session.finish();
  }
  return settleLayer(layer, r, src.name);
}

// `layer` (layerInfo's, taken before the analysis: the core's views must be copied before
// it allocates again) with its statistics `r`, or with `error` when the core refused this
// one layer; a failure that makes the model unreadable throws.
function settleLayer(layer, r, name) {
  if (isCoreError(r)) {
    if (FATAL.has(r.code)) unwrap(r, name);
    layer.error = { code: r.code, message: r.message };
  } else {
    Object.assign(layer, copyStats(r));
  }
  return layer;
}

// A streamed weight, or a part of it, being fed: the plan begin or beginPart made (bytes
// [firstByte, firstByte + byteSize) of the weight, in pieces of pieceBytes, `resident`:
// read once and every pass run over the copy), its reads (offsets in the weight) and the
// one heap buffer every piece passes through.
async function openStream(core, session, where, plan, ctx) {
  const { src, external } = ctx;
  const read = where.external
    ? (off, len, ptr) => external.readInto(where, where.offset + off, len, ptr)
    : (off, len, ptr) => src.readInto(where.offset + off, len, ptr);
  // One heap buffer for every streamed weight, as large as the plan says (fresh memory is
  // costly to touch; reused memory is not).
  if (ctx.scratch.size < plan.bufferBytes || !ctx.scratch.ptr) {
    if (ctx.scratch.ptr) core._free(ctx.scratch.ptr);
    ctx.scratch = { ptr: 0, size: 0 };
    ctx.scratch = { ptr: heapAlloc(core, plan.bufferBytes), size: plan.bufferBytes };
  }
  // `fraction`: how far through these reads (0..1), for ctx.onPiece: the one read of a
  // resident weight, else the pieces of every pass.
  const s = { session, plan, read, ptr: ctx.scratch.ptr, passes: plan.passes, fraction: 0, ctx };
  if (plan.resident) {
    await read(plan.firstByte, plan.byteSize, s.ptr);
    reached(s, 1);
  }
  return s;
}

function reached(s, f) {
  s.fraction = Math.max(s.fraction, Math.min(1, f));
  if (s.ctx.onPiece) s.ctx.onPiece(s.fraction);
}

// Feeds every piece of pass `pass`: null, or the core's error.
async function feedPass(s, pass) {
  const { firstByte, byteSize, pieceBytes, resident } = s.plan;
  const { signal } = s.ctx;
  for (let off = 0; off < byteSize; off += pieceBytes) {
    checkAbort(signal);
    if (signal && now() - s.ctx.lastYield > (s.ctx.yieldMs ?? YIELD_MS)) {
      // lets an abort land even inside one huge weight
      await yieldToEventLoop();
      s.ctx.lastYield = now();
      checkAbort(signal);
    }
    const len = Math.min(pieceBytes, byteSize - off);
    if (!resident) {
      await s.read(firstByte + off, len, s.ptr);
      reached(s, (pass - 1 + (off + len) / byteSize) / s.passes);
    }
    const e = s.session.feed(pass, resident ? s.ptr + off : s.ptr, len, firstByte + off);
    if (e) return e;
  }
  return null;
}

// Ends pass `pass` (`whole`: a part's pass 1 ends with the whole layer's extremes): null,
// or the core's error. The core may add a pass (3) then.
function endPass(s, pass, whole) {
  const p = whole ? s.session.endPass(pass, whole) : s.session.endPass(pass);
  if (isCoreError(p)) return p;
  s.passes = p;
  return null;
}

// Passes `from` to the last, each fed then ended: null, or the core's error. Throws when the
// files read were rewritten meanwhile (the passes would have read two versions).
async function runPasses(s, from) {
  for (let pass = from; pass <= s.passes; pass++) {
    const e = (await feedPass(s, pass)) || endPass(s, pass);
    if (e) return e;
  }
  checkUnchanged(s.ctx.src, s.ctx.external);
  return null;
}

// ---- one layer in parts (a pool's workers: pool.js) ---------------------------------
// A layer too large for one worker (VGG-16's fc6) is computed in parts of its output
// channels, each by another worker, and merged bit for bit (the core's "one layer in
// parts", src/analysis/analyze.hpp): pass 1 of every part (startPart), then, once every
// part's extremes are in, the rest of each (finishPart), then the merge (mergeLayer).

// The most parts layer i can be cut into for a pool: its output channels when the core
// can split it and its weight is streamed (a weight the session holds is small: below the
// size the skim leaves in the file), else 1.
export function maxParts(session, i) {
  const where = session.weight(i);
  if (isCoreError(where) || !where.stream) return 1;
  const one = session.split(i, 1);
  return isCoreError(one) ? 1 : one[0].endChannel - one[0].firstChannel;
}

// Part `part` of layer i cut into `parts`: pass 1 over its bytes. Resolves to {stream,
// extremes} (partExtremes': a Float64Array) or to the core's error for this layer; a
// failure that makes the model unreadable throws.
export async function startPart(core, session, i, part, parts, ctx) {
  const { src, histogramBins, blockSize } = ctx;
  const where = unwrap(session.weight(i), src.name);
  if (!where.stream)
    throw new QuantLensError('INTERNAL', `layer ${i} is held whole by the session: only a streamed weight is split`);
  const cuts = session.split(i, parts);
  if (isCoreError(cuts)) return fatalOr(cuts, src.name);
  const cut = cuts[part];
  if (!cut) throw new QuantLensError('INTERNAL', `layer ${i} has no part ${part} of ${parts}`);
  const plan = session.beginPart(i, histogramBins, blockSize, cut.firstChannel, cut.endChannel);
  if (isCoreError(plan)) return fatalOr(plan, src.name);
  const stream = await openStream(core, session, where, plan, ctx);
  const e = await feedPass(stream, 1);
  if (e) return fatalOr(e, src.name);
  const extremes = session.partExtremes();
  return isCoreError(extremes) ? fatalOr(extremes, src.name) : { stream, extremes };
}

// The rest of a started part, given every part's extremes (`all`, any order): its results
// (takePart's, copied out of the heap) or the core's error (the whole layer's, when its
// weights hold a NaN: every part then gives it).
export async function finishPart(session, i, stream, all, name) {
  const whole = session.combineExtremes(i, all);
  if (isCoreError(whole)) return fatalOr(whole, name);
  const e = endPass(stream, 1, whole) || (await runPasses(stream, 2));
  if (e) return fatalOr(e, name);
  const p = session.takePart();
  if (isCoreError(p)) return fatalOr(p, name);
  const keys = ['min', 'max', 'sum', 'acc', 'blockNoise', 'histogram', 'inputAbsMax'];
  const copies = copyViews(keys.map((k) => p[k]));
  return { ...p, layout: { ...p.layout }, ...Object.fromEntries(keys.map((k, j) => [k, copies[j]])) };
}

// Layer i from its parts' results in part order (finishPart's values): as analyzeLayerAt
// gives it, bit for bit; the first part's error (in channel order) when any failed.
export function mergeLayer(session, i, results, ctx) {
  const layer = layerInfo(session, i);
  const failed = results.find(isCoreError);
  return settleLayer(layer, failed || session.mergeParts(i, ctx.histogramBins, ctx.blockSize, results), ctx.src.name);
}

// A signal that aborts when either does, and `unlink()`, which takes its listeners off
// them (a caller's signal may serve many calls).
function eitherSignal(a, b) {
  const c = new AbortController();
  const abort = () => c.abort();
  for (const x of [a, b]) {
    if (x.aborted) c.abort();
    else x.addEventListener('abort', abort, { once: true });
  }
  return { signal: c.signal, unlink: () => [a, b].forEach((x) => x.removeEventListener('abort', abort)) };
}

// The analysis tasks a pool deals out (pool.js), carried out on one open session: the
// same code in a pool worker (pool-worker.js) and in the calling thread when it takes part.
// Returns `run(m)`: {type: 'layer', index} -> {type: 'layer', index, layer}; a layer in
// parts: {type: 'part', index, part, parts} -> {type: 'extremes', ...}, {type: 'whole',
// index, part, extremes} -> {type: 'part', index, part, value}, {type: 'merge', index,
// parts} -> {type: 'layer', index, layer}. The pool sends nothing else until a part is
// finished (or abandoned: another part failed), so the session's one streamed part and the
// heap buffer wait for it.
export function layerTasks(core, session, ctx) {
  let started = null; // the part whose pass 1 ran here: {index, part, stream}
  return async function run(m) {
    if (m.type === 'layer') return { type: 'layer', index: m.index, layer: await analyzeLayerAt(core, session, m.index, ctx) };
    if (m.type === 'part') {
      const r = await startPart(core, session, m.index, m.part, m.parts, ctx);
      started = isCoreError(r) ? null : { index: m.index, part: m.part, stream: r.stream };
      return { type: 'extremes', index: m.index, part: m.part, ...(isCoreError(r) ? { error: r } : { extremes: r.extremes }) };
    }
    if (m.type === 'whole') {
      const p = started;
      if (!p || p.index !== m.index || p.part !== m.part)
        throw new Error(`no part ${m.part} of layer ${m.index} was started here`);
      started = null;
      const value = await finishPart(session, m.index, p.stream, m.extremes, ctx.src.name);
      return { type: 'part', index: m.index, part: m.part, value };
    }
    if (m.type === 'merge') return { type: 'layer', index: m.index, layer: mergeLayer(session, m.index, m.parts, ctx) };
    throw new Error(`no analysis task '${m.type}'`);
  };
}

// A core error that makes the model unreadable throws; any other is returned.
function fatalOr(e, name) {
  if (FATAL.has(e.code)) unwrap(e, name);
  return e;
}

// The chosen layers, one after the other, in this thread. Progress: after each layer, and
// during a layer's reads at most every PIECE_PROGRESS_MS, with the weight bytes read.
const PIECE_PROGRESS_MS = 50;
async function analyzeInThread(core, session, chosen, count, ctx, onProgress, onLayer) {
  const { signal } = ctx;
  const layers = [];
  const bytesTotal = chosen.reduce((a, l) => a + l.bytes, 0);
  let bytesBefore = 0;
  let lastPiece = 0;
  for (const { index, bytes, name } of chosen) {
    checkAbort(signal);
    if (onProgress) {
      ctx.onPiece = (fraction) => {
        if (now() - lastPiece < PIECE_PROGRESS_MS) return;
        lastPiece = now();
        const read = bytesBefore + Math.round(bytes * fraction);
        // `reading`: `layer` is the one being read (layer index + 1 of total), not one finished
        onProgress({ phase: 'analyze', done: index, total: count, layer: name, bytes: read, bytesTotal, reading: true });
      };
    }
    const layer = await analyzeLayerAt(core, session, index, ctx);
    layers.push(layer);
    bytesBefore += bytes;
    if (onLayer) onLayer(layer);
    if (onProgress)
      onProgress({ phase: 'analyze', done: index + 1, total: count, layer: layer.name, bytes: bytesBefore, bytesTotal });
    if ((signal || onPageThread) && now() - ctx.lastYield > (ctx.yieldMs ?? YIELD_MS)) {
      // keep the page responsive; lets an abort land
      await yieldToEventLoop();
      ctx.lastYield = now();
    }
  }
  ctx.onPiece = null;
  return layers;
}

// The riskiest first, as positions in `layers` (analysed in one session or in several):
// the core's ranking of every layer by INT8 per-tensor SQNR, a layer not analysed or
// failed counting as NaN, kept to the analysed ones.
function rankLayers(core, layers, count) {
  const sqnr = new Float64Array(count).fill(NaN);
  for (const l of layers) if (!l.error) sqnr[l.index] = l.sqnr.int8PerTensor;
  const position = new Map(layers.map((l, k) => [l.index, k]));
  return core
    .rankByRisk(sqnr)
    .filter((i) => position.has(i))
    .map((i) => position.get(i));
}

function summarize(layers, order) {
  const counts = tallyLayers(layers);
  // The core's order (lowest INT8 per-tensor SQNR first) gives the worst SQNR; the
  // ranking puts it in risk order, quantized layers judged on their stored codes.
  const ok = order.filter((k) => !layers[k].error);
  const worst = ok.length ? layers[ok[0]] : null;
  const ranking = riskRanking(layers, order);
  // Weights already stored quantized, by scheme ('int8 per-channel' and the op that
  // dequantizes them), for the header: "quantized: 52 layers int8 per-channel (QDQ), 2 float".
  const schemes = new Map();
  let quantizedLayers = 0;
  for (const l of layers) {
    if (l.error || !l.quant) continue;
    quantizedLayers++;
    const key = `${storedSchemeText(l)}\u0000${l.quant.via}`;
    const e = schemes.get(key) || { scheme: storedSchemeText(l), via: l.quant.via, layers: 0 };
    e.layers++;
    schemes.set(key, e);
  }
  return {
    ...counts,
    ranking, // positions in `layers`, riskiest first (presentation.js riskRanking)
    worstInt8PerTensor: worst ? { layer: worst.name, index: ok[0], sqnr: worst.sqnr.int8PerTensor } : null,
    quantized: {
      layers: quantizedLayers,
      float: counts.analysed - quantizedLayers,
      schemes: [...schemes.values()].sort((a, b) => b.layers - a.layers),
    },
  };
}
