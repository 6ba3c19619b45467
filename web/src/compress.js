// Compressibility (issue 15): how far each weight layer compresses by weight SVD and
// spatial SVD (and channel pruning, in builds that have it), a plan for a target size,
// and the compressed model written. Data-free: everything comes from the weights.
import { yieldToEventLoop } from './analyze.js';
import { loadCore, unwrap } from './core.js';
import { deliverWritten, isWritable } from './equalize.js';
import { QuantLensError } from './errors.js';
import { isNode } from './node.js';
import { checkAbort, openSource, readWholeIntoHeap } from './source.js';

export const COMPRESSION_SCHEMA = 'quantlens.compression/1';
// The fractions of a layer's parameters at which compressibility() reports its curves.
export const CURVE_FRACTIONS = [0.05, 0.1, 0.2, 0.3, 0.4, 0.5, 0.6, 0.7, 0.8, 0.9];
export const METHODS = ['svd', 'prune', 'auto'];
const BY = ['params', 'macs'];

function checkOptions({ ratio, by = 'params', method = 'svd', keep }, needRatio) {
  if (keep !== undefined) {
    if (!keep || typeof keep !== 'object' || Array.isArray(keep))
      throw new QuantLensError('INVALID_ARGUMENT', 'keep must be an object {layerName: rank}');
    for (const [k, v] of Object.entries(keep))
      if (!Number.isInteger(v) || v < 1) throw new QuantLensError('INVALID_ARGUMENT', `keep['${k}'] must be a rank >= 1`);
  } else if (needRatio || ratio !== undefined) {
    if (typeof ratio !== 'number' || !(ratio > 0 && ratio <= 1))
      throw new QuantLensError(
        'INVALID_ARGUMENT',
        'ratio must be a number in (0, 1]: the fraction of parameters (or MACs) to keep',
      );
  }
  if (!BY.includes(by)) throw new QuantLensError('INVALID_ARGUMENT', `by must be one of ${BY.join(', ')}`);
  if (!METHODS.includes(method)) throw new QuantLensError('INVALID_ARGUMENT', `method must be one of ${METHODS.join(', ')}`);
  return { ratio, by, method, keep };
}

const now = () => (typeof performance !== 'undefined' ? performance.now() : Date.now());

// Opens the model in the core and computes every layer's curves (progress 'curves').
async function session(source, opts, { signal, onProgress }, use) {
  checkAbort(signal);
  const core = await loadCore();
  const src = await openSource(core, source);
  let ptr = 0;
  let c = null;
  try {
    ptr = await readWholeIntoHeap(core, src, { onProgress, signal });
    c = unwrap(core.openCompression(ptr, src.size), src.name);
    const prune = opts.method !== 'svd';
    if (prune && !c.pruning())
      throw new QuantLensError(
        'UNSUPPORTED',
        `method '${opts.method}' needs channel pruning, which this build does not have; use --method svd`,
      );
    const count = c.layerCount();
    const layers = [];
    let lastYield = now();
    for (let i = 0; i < count; i++) {
      checkAbort(signal);
      const v = unwrap(c.curves(i, prune), src.name);
      layers.push({
        name: v.name,
        op: v.op,
        params: v.params,
        macs: v.macs,
        curves: v.curves.map((k) => ({
          method: k.method,
          refused: k.refused,
          producer: k.producer,
          keep: Array.from(k.keep),
          params: Array.from(k.params),
          macs: Array.from(k.macs),
          sqnrDb: Array.from(k.sqnrDb),
          removedElsewhere: Array.from(k.removedElsewhere),
        })),
      });
      c.releaseViews();
      if (onProgress) onProgress({ phase: 'curves', done: i + 1, total: count, layer: v.name });
      if (now() - lastYield > 30) {
        await yieldToEventLoop(); // lets an abort land, keeps a page responsive
        lastYield = now();
      }
    }
    return await use(core, c, src, ptr, layers);
  } finally {
    if (c) c.delete();
    if (ptr) core._free(ptr);
    src.close();
  }
}

const finite = (x) => (Number.isFinite(x) ? x : null);

// The plan as the schema's JSON: target, achieved fractions, per layer its choice.
function planJSON(p, method) {
  const macs = p.macsKnown;
  return {
    target: { ratio: p.ratio, by: p.by, method },
    thresholdDb: finite(p.thresholdDb),
    achieved: {
      params: p.paramsBefore ? p.paramsAfter / p.paramsBefore : 1,
      macs: macs && p.macsBefore ? p.macsAfter / p.macsBefore : null,
      paramsBefore: p.paramsBefore,
      paramsAfter: p.paramsAfter,
      macsBefore: macs ? p.macsBefore : null,
      macsAfter: macs ? p.macsAfter : null,
    },
    layers: p.layers.map((l) => ({
      name: l.name,
      method: l.method,
      rank: l.compressed && l.method !== 'channel-prune' ? l.keep : null,
      keptChannels: l.compressed && l.method === 'channel-prune' ? l.keep : null,
      paramFraction: l.paramsBefore ? (l.params - l.paramsRemovedElsewhere) / l.paramsBefore : 1,
      params: l.params,
      paramsBefore: l.paramsBefore,
      paramsRemovedElsewhere: l.paramsRemovedElsewhere,
      macFraction: macs && l.macsBefore ? l.macs / l.macsBefore : null,
      sqnrDb: finite(l.sqnrDb),
      leftAlone: l.leftAlone,
    })),
  };
}

// A layer's curves at the fixed fractions: per fraction, the point with the most
// parameters within it (its SQNR the best the method reaches at that budget), or null.
function atFractions(layer) {
  return layer.curves.map((k) => ({
    method: k.method,
    refused: k.refused,
    producer: k.producer,
    points: CURVE_FRACTIONS.map((f) => {
      let best = -1;
      for (let j = 0; j < k.params.length; j++) {
        const net = k.params[j] - k.removedElsewhere[j];
        if (
          !Number.isNaN(k.sqnrDb[j]) &&
          net <= f * layer.params &&
          (best < 0 || net > k.params[best] - k.removedElsewhere[best])
        )
          best = j;
      }
      if (best < 0) return { fraction: f, keep: null, params: null, sqnrDb: null };
      return { fraction: f, keep: k.keep[best], params: k.params[best], sqnrDb: k.sqnrDb[best] };
    }),
  }));
}

/**
 * The compressibility of every weight layer, and a plan for a target.
 * @param source  path (Node), Uint8Array | ArrayBuffer, or Blob/File
 * @param options { ratio = 0.5, by = 'params' | 'macs', method = 'svd' | 'prune' | 'auto',
 *                  full: true (each curve's every point too), signal, onProgress({phase, done, total}) }
 * @returns { schema, model: {name, bytes}, fractions, layers: [{name, op, params, macs,
 *            curves: [{method, refused, producer, points: [{fraction, keep, params, sqnrDb}]}]}],
 *            plan (the quantlens.compression/1 plan at `ratio`; null with the reason in planError),
 *            uniform (the same fraction in every layer at that size, for comparison) }
 */
export async function compressibility(source, options = {}) {
  const { signal, onProgress, full = false } = options;
  const opts = checkOptions({ ratio: 0.5, ...options }, true);
  return session(source, opts, { signal, onProgress }, async (core, c, src, ptr, layers) => {
    let plan = null;
    let planError = null;
    const p = c.plan(opts.ratio, opts.by, opts.method, false);
    if (p && p.coreError) planError = { code: p.code, message: p.message };
    else plan = planJSON(p, opts.method);
    const u = plan
      ? planJSON(unwrap(c.plan(opts.ratio, opts.by, opts.method === 'prune' ? 'svd' : opts.method, true)), opts.method)
      : null;
    return {
      schema: COMPRESSION_SCHEMA,
      model: { name: src.name, bytes: src.size },
      fractions: CURVE_FRACTIONS,
      layers: layers.map((l) => ({
        name: l.name,
        op: l.op,
        params: l.params,
        macs: l.macs,
        curves: atFractions(l),
        ...(full ? { full: l.curves } : {}),
      })),
      plan,
      planError,
      uniform: u,
    };
  });
}

/**
 * The model compressed to a target: planned as compressibility() plans, then written
 * (SVD layers split in two, bias on the second).
 * @param options { ratio, by = 'params', method = 'svd', keep: {layer: rank} (write these
 *                  ranks instead of a plan: every other layer as it is), uniform: true (the
 *                  same fraction in every layer instead of the plan),
 *                  output: path | Writable (Node), blob: true, signal, onProgress }
 * @returns { schema, model: {name, bytes}, size, bytes | null, blob | null, output | null,
 *            ...the plan (target, thresholdDb, achieved, layers) }
 */
export async function compress(source, options = {}) {
  const { signal, onProgress, output, blob, uniform = false } = options;
  const opts = checkOptions(options, options.keep === undefined);
  if (output !== undefined && !(typeof output === 'string' && output) && !isWritable(output))
    throw new QuantLensError('INVALID_ARGUMENT', 'output must be a file path or a Node Writable stream');
  if (output !== undefined && !isNode)
    throw new QuantLensError('INVALID_ARGUMENT', 'output can only be written under Node; use blob: true');
  if (blob && output !== undefined) throw new QuantLensError('INVALID_ARGUMENT', 'give either output or blob, not both');
  return session(source, opts, { signal, onProgress }, async (core, c, src, ptr) => {
    const p = opts.keep
      ? unwrap(c.planOf(Object.keys(opts.keep), Object.values(opts.keep)), src.name)
      : unwrap(c.plan(opts.ratio, opts.by, opts.method, uniform), src.name);
    const w = unwrap(c.write(), src.name);
    const written = { size: () => w.size, pieces: () => w.pieces };
    const input = async (offset, length) => core.HEAPU8.subarray(ptr + offset, ptr + offset + length);
    const { bytes, file } = await deliverWritten(written, input, { output, blob, signal, onProgress });
    return {
      schema: COMPRESSION_SCHEMA,
      model: { name: src.name, bytes: src.size },
      size: w.size,
      bytes,
      blob: blob ? file : null,
      output: typeof output === 'string' ? output : null,
      ...planJSON(p, opts.keep ? 'svd' : opts.method),
    };
  });
}
