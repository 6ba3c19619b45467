// Compressibility (issue 15): how far each weight layer compresses by weight SVD and
// spatial SVD (and channel pruning, in builds that have it), a plan for a target size,
// and the compressed model written. Data-free: everything comes from the weights.
import { yieldToEventLoop } from './analyze.js';
import { loadCore, unwrap } from './core.js';
import { CURVE_FRACTIONS, PLAN_RATIOS, pointsAt } from './curves.js';
import { deliverWritten, isWritable } from './equalize.js';
import { QuantLensError } from './errors.js';
import { isNode } from './node.js';
import { checkAbort, openSource, readWholeIntoHeap } from './source.js';
import { checkWorkers, curvesInPool, curvesPoolSize } from './pool.js';

export const COMPRESSION_SCHEMA = 'quantlens.compression/1';
export { CURVE_FRACTIONS, PLAN_RATIOS };
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

const ARRAYS = ['keep', 'params', 'macs', 'sqnrDb', 'removedElsewhere'];

/**
 * Layer i's curves from an open compression session `c`, copied out of the heap (each
 * array a Float64Array of its own): what the pool's workers send, and what the calling
 * thread computes itself. Throws the core's error.
 */
export function layerCurvesAt(c, i, prune, context) {
  const v = unwrap(c.curves(i, prune), context);
  const out = {
    name: v.name,
    op: v.op,
    params: v.params,
    macs: v.macs,
    curves: v.curves.map((k) => ({
      method: k.method,
      refused: k.refused,
      producer: k.producer,
      ...Object.fromEntries(ARRAYS.map((a) => [a, Float64Array.from(k[a])])),
    })),
  };
  c.releaseViews();
  return out;
}

// A layer's curves as the API gives them (plain arrays).
const plainCurves = (v) => ({
  ...v,
  curves: v.curves.map((k) => ({ ...k, ...Object.fromEntries(ARRAYS.map((a) => [a, Array.from(k[a])])) })),
});

// Opens the model in the core and computes every layer's curves (progress 'curves'): in a
// pool of workers when the model is large enough and there are cores (pool.js), else here.
async function session(source, opts, { signal, onProgress, workers }, use) {
  checkAbort(signal);
  const requested = checkWorkers(workers);
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
    const layers = new Array(count);
    let done = 0;
    const progress = (v, pool) => {
      done++;
      if (onProgress) onProgress({ phase: 'curves', done, total: count, layer: v.name, ...(pool > 1 && { workers: pool }) });
    };
    const job = { source, prune, signal };
    const n = count > 1 ? await curvesPoolSize(job, src.size, count, requested) : 1;
    const pooled = n > 1 ? await curvesInPool({ ...job, onResult: (i, v) => progress(v, n) }, n, count) : null;
    if (pooled) {
      // The workers' curves, adopted by this session for the plan (the same code made them).
      for (let i = 0; i < count; i++) {
        unwrap(c.adoptCurves(i, pooled[i]), src.name);
        layers[i] = plainCurves(pooled[i]);
      }
    } else {
      let lastYield = now();
      for (let i = 0; i < count; i++) {
        checkAbort(signal);
        const v = layerCurvesAt(c, i, prune, src.name);
        layers[i] = plainCurves(v);
        progress(v);
        if (now() - lastYield > 30) {
          await yieldToEventLoop(); // lets an abort land, keeps a page responsive
          lastYield = now();
        }
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

// A layer's curves at the fixed fractions (curves.js pointsAt).
const atFractions = (layer) =>
  layer.curves.map((k) => ({
    method: k.method,
    refused: k.refused,
    producer: k.producer,
    points: pointsAt(k, layer.params, CURVE_FRACTIONS),
  }));

/**
 * The compressibility of every weight layer, and a plan for a target.
 * @param source  path (Node), Uint8Array | ArrayBuffer, or Blob/File
 * @param options { ratio = 0.5, by = 'params' | 'macs', method = 'svd' | 'prune' | 'auto',
 *                  full: true (each curve's every point too), ratios: [fractions] (a plan at
 *                  each too, e.g. PLAN_RATIOS), signal, onProgress({phase, done, total}) }
 * @returns { schema, model: {name, bytes}, fractions, layers: [{name, op, params, macs,
 *            curves: [{method, refused, producer, points: [{fraction, keep, params, sqnrDb}]}]}],
 *            plan (the quantlens.compression/1 plan at `ratio`; null with the reason in planError),
 *            uniform (the same fraction in every layer at that size, for comparison),
 *            plans (with `ratios`): [{ratio, plan, planError, uniform}] }
 */
export async function compressibility(source, options = {}) {
  const { signal, onProgress, full = false, ratios } = options;
  const opts = checkOptions({ ratio: 0.5, ...options }, true);
  if (ratios !== undefined) {
    if (!Array.isArray(ratios) || !ratios.length)
      throw new QuantLensError('INVALID_ARGUMENT', 'ratios must be a non-empty array of fractions in (0, 1]');
    for (const r of ratios) checkOptions({ ...opts, ratio: r }, true);
  }
  return session(source, opts, { signal, onProgress, workers: options.workers }, async (core, c, src, ptr, layers) => {
    // The plan at one ratio, and the uniform plan at the same size; the planner is the core's.
    const planAt = (ratio) => {
      const p = c.plan(ratio, opts.by, opts.method, false);
      if (p && p.coreError) return { plan: null, planError: { code: p.code, message: p.message }, uniform: null };
      const u = c.plan(ratio, opts.by, opts.method === 'prune' ? 'svd' : opts.method, true);
      return { plan: planJSON(p, opts.method), planError: null, uniform: planJSON(unwrap(u), opts.method) };
    };
    const { plan, planError, uniform: u } = planAt(opts.ratio);
    const plans = ratios ? ratios.map((ratio) => ({ ratio, ...planAt(ratio) })) : undefined;
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
      ...(plans ? { plans } : {}),
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
 *            ...the plan (target, thresholdDb, achieved, layers; each layer's `nodes`: the
 *            written model's node names that compute it, null when left as it is) }
 */
export async function compress(source, options = {}) {
  const { signal, onProgress, output, blob, uniform = false } = options;
  const opts = checkOptions(options, options.keep === undefined);
  if (output !== undefined && !(typeof output === 'string' && output) && !isWritable(output))
    throw new QuantLensError('INVALID_ARGUMENT', 'output must be a file path or a Node Writable stream');
  if (output !== undefined && !isNode)
    throw new QuantLensError('INVALID_ARGUMENT', 'output can only be written under Node; use blob: true');
  if (blob && output !== undefined) throw new QuantLensError('INVALID_ARGUMENT', 'give either output or blob, not both');
  return session(source, opts, { signal, onProgress, workers: options.workers }, async (core, c, src, ptr) => {
    const p = opts.keep
      ? unwrap(c.planOf(Object.keys(opts.keep), Object.values(opts.keep)), src.name)
      : unwrap(c.plan(opts.ratio, opts.by, opts.method, uniform), src.name);
    const w = unwrap(c.write(), src.name);
    const written = { size: () => w.size, pieces: () => w.pieces };
    const input = async (offset, length) => core.HEAPU8.subarray(ptr + offset, ptr + offset + length);
    const { bytes, file } = await deliverWritten(written, input, { output, blob, signal, onProgress });
    // Per compressed layer, the written model's node names that compute it (the core's writer).
    const nodes = new Map(Array.from(w.written, (x) => [x.layer, Array.from(x.nodes)]));
    const plan = planJSON(p, opts.keep ? 'svd' : opts.method);
    for (const l of plan.layers) l.nodes = nodes.get(l.name) ?? null;
    return {
      schema: COMPRESSION_SCHEMA,
      model: { name: src.name, bytes: src.size },
      size: w.size,
      bytes,
      blob: blob ? file : null,
      output: typeof output === 'string' ? output : null,
      ...plan,
    };
  });
}
