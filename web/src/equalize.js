// equalize(source, options): Cross Layer Equalization in the WASM core. Returns the
// equalized ONNX file and, for every layer it changed, the weights' statistics
// before and after, the scale factors, the sequences and where they stopped.
import { copyStats, copyViews } from './analyze.js';
import { loadCore, unwrap } from './core.js';
import { QuantLensError } from './errors.js';
import { checkAbort, openSource, readWholeIntoHeap } from './source.js';

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

/**
 * @param source  path (Node), Uint8Array | ArrayBuffer, or Blob/File
 * @param options { keepRelu6 = false, biasAbsorption = true, triples = true, throughPadPool = true,
 *                  maxIterations = 50, tolerance = 1e-3, deadChannelRatio = 1e-6, histogramBins = 128,
 *                  signal: AbortSignal, onProgress({phase, done, total}) }
 * @returns { schema, model: {name, bytes}, options, bytes: Uint8Array (the equalized file),
 *            layers, sequences, stops, foldedBatchNorms, relu6Replaced, relu6Kept, deadChannels,
 *            biasAbsorptions, summary }
 */
export async function equalize(source, options = {}) {
  const { signal, onProgress } = options;
  checkAbort(signal);
  const core = await loadCore();
  const opts = coreOptions(core, options);
  const src = await openSource(core, source);
  let ptr = 0;
  let eq = null;
  try {
    ptr = await readWholeIntoHeap(core, src, { onProgress, signal });
    checkAbort(signal);
    if (onProgress) onProgress({ phase: 'equalize', done: 0, total: 1 });
    eq = unwrap(core.equalize(ptr, src.size, opts), src.name);
    const bytes = eq.modelBytes().slice();
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
      bytes,
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
