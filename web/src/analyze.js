// analyze(source, options): the per-channel weight analysis of an ONNX model.
import { loadCore } from './core.js';
import { QuantLensError, fromCoreError } from './errors.js';
import { externalResolver, heapAlloc, readIntoHeap } from './source.js';

export const SCHEMA = 'quantlens.analysis/1';
export const SCHEMES = ['int8PerTensor', 'int8PerChannel', 'int4PerTensor', 'int4PerChannel'];

// Per-layer failures that make the whole model unreadable (as opposed to one
// layer we cannot analyse, e.g. NaN weights or an unsupported type).
const FATAL = new Set(['INVALID_MODEL', 'MISSING_EXTERNAL_DATA', 'INVALID_ARGUMENT']);

const copy = (view) => view.slice();  // out of the WASM heap, before the next call

function copyStats(r) {
  const ch = r.channels;
  const sqnr = {};
  for (const k of SCHEMES) sqnr[k] = copy(ch.sqnr[k]);
  return {
    channels: {
      count: ch.count,
      min: copy(ch.min), max: copy(ch.max), mean: copy(ch.mean), std: copy(ch.std),
      absMax: copy(ch.absMax), range: copy(ch.range), relativeRange: copy(ch.relativeRange), sqnr,
    },
    tensor: r.tensor,
    histogram: { min: r.histogram.min, max: r.histogram.max, counts: copy(r.histogram.counts) },
    outlierChannels: copy(r.outlierChannels),
    outlierThreshold: r.outlierThreshold,
    quartiles: r.quartiles,
    sqnr: r.sqnr,
    quant: r.quant && { ...r.quant, scale: copy(r.quant.scale), zeroPoint: copy(r.quant.zeroPoint) },
  };
}

function checkAbort(signal) {
  if (signal && signal.aborted) throw new QuantLensError('ABORTED', 'cancelled');
}

const now = () => (typeof performance !== 'undefined' ? performance.now() : Date.now());
const yieldToEventLoop = () => new Promise((resolve) => setTimeout(resolve, 0));

/**
 * @param source  path (Node), Uint8Array | ArrayBuffer, or Blob/File
 * @param options { onProgress({phase, done, total, layer}), signal: AbortSignal,
 *                  histogramBins = 128, externalData: {location: bytes|Blob} | (location, offset, length) => Promise<Uint8Array>,
 *                  layers: RegExp | (layer) => boolean  (which layers to analyse) }
 */
export async function analyze(source, options = {}) {
  const { onProgress, signal, histogramBins = 128 } = options;
  if (!Number.isInteger(histogramBins) || histogramBins < 1 || histogramBins > 1 << 20) {
    throw new QuantLensError('INVALID_ARGUMENT', `histogramBins must be an integer from 1 to ${1 << 20}`);
  }
  checkAbort(signal);
  const core = await loadCore();
  const src = await readIntoHeap(core, source, { onProgress, signal });
  const session = new core.Session(src.ptr, src.size);  // owns src.ptr from here
  try {
    const err = session.error();
    if (err) throw fromCoreError(err, src.name);
    const model = { name: src.name, ...session.model() };
    const resolve = externalResolver(options.externalData, src.dir);
    const select = typeof options.layers === 'function' ? options.layers
      : options.layers instanceof RegExp ? (l) => options.layers.test(l.name) : () => true;
    const n = session.layerCount();
    const layers = [];
    let last = now();
    for (let i = 0; i < n; i++) {
      checkAbort(signal);
      const info = session.layer(i);
      const layer = { index: i, ...info };
      delete layer.external;
      if (!select(layer)) continue;
      let extPtr = 0;
      let extSize = 0;
      try {
        if (info.external) {
          const ref = session.externalRef(i);
          if (ref.code) throw fromCoreError(ref, src.name);
          const bytes = await resolve(ref.location, ref.offset, ref.length);
          extSize = bytes.length;
          extPtr = heapAlloc(core, extSize);
          core.HEAPU8.set(bytes, extPtr);
        }
        const r = session.analyze(i, extPtr, extSize, histogramBins);
        if (r.error) {
          if (FATAL.has(r.error.code)) throw fromCoreError(r.error, src.name);
          layer.error = { code: r.error.code, message: r.error.message };
        } else {
          Object.assign(layer, copyStats(r));
        }
      } finally {
        if (extPtr) core._free(extPtr);
      }
      layers.push(layer);
      if (onProgress) onProgress({ phase: 'analyze', done: i + 1, total: n, layer: layer.name });
      if (now() - last > 30) {  // keep the page / event loop responsive; lets an abort land
        await yieldToEventLoop();
        last = now();
      }
    }
    const ranking = session.ranking();  // over all layers; keep the analysed ones
    const position = new Map(layers.map((l, k) => [l.index, k]));
    const order = ranking.filter((i) => position.has(i)).map((i) => position.get(i));
    return {
      schema: SCHEMA,
      model,
      options: { histogramBins },
      layers,
      skipped: session.skipped(),
      summary: summarize(layers, order),
    };
  } finally {
    session.delete();
  }
}

function summarize(layers, order) {
  let parameters = 0;
  let outlierChannels = 0;
  let layersWithOutliers = 0;
  let failed = 0;
  for (const l of layers) {
    if (l.error) { failed++; continue; }
    parameters += l.shape.reduce((a, b) => a * b, 1);
    outlierChannels += l.outlierChannels.length;
    if (l.outlierChannels.length) layersWithOutliers++;
  }
  const ok = order.filter((k) => !layers[k].error);
  const worst = ok.length ? layers[ok[0]] : null;
  return {
    layers: layers.length,
    analysed: layers.length - failed,
    failed,
    parameters,
    layersWithOutliers,
    outlierChannels,
    ranking: order,  // positions in `layers`, riskiest first
    worstInt8PerTensor: worst ? { layer: worst.name, index: ok[0], sqnr: worst.sqnr.int8PerTensor } : null,
  };
}
