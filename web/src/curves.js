// Reading a layer's compressibility curves (compressibility(): web/src/compress.js), pure
// functions with no core, shared by the API and the views. A curve's point j keeps
// params[j] parameters in the layer and removes removedElsewhere[j] more from its producer
// (channel pruning): the plan counts it net of that.

// The fractions of a layer's parameters at which compressibility() reports its curves.
export const CURVE_FRACTIONS = [0.05, 0.1, 0.2, 0.3, 0.4, 0.5, 0.6, 0.7, 0.8, 0.9];
// The targets the app's slider steps through (compressibility's `ratios`): 5% to 100%.
export const PLAN_RATIOS = Array.from({ length: 20 }, (_, k) => (k + 1) / 20);

/**
 * Per fraction f of `fractions`: the point with the most parameters within f of the layer's
 * (its SQNR the best the method reaches at that budget; +inf for a lossless rank below
 * full size, which the full-size point, at fraction 1, never is), or nulls. `curve` has every point
 * (keep, params, sqnrDb, removedElsewhere arrays).
 */
export function pointsAt(curve, layerParams, fractions) {
  const net = (j) => curve.params[j] - (curve.removedElsewhere ? curve.removedElsewhere[j] : 0);
  return fractions.map((f) => {
    let best = -1;
    for (let j = 0; j < curve.params.length; j++) {
      if (!Number.isNaN(curve.sqnrDb[j]) && net(j) <= f * layerParams && (best < 0 || net(j) > net(best))) best = j;
    }
    if (best < 0) return { fraction: f, keep: null, params: null, sqnrDb: null };
    return { fraction: f, keep: curve.keep[best], params: curve.params[best], sqnrDb: curve.sqnrDb[best] };
  });
}

/** The fraction of the layer's own parameters that point j of the curve keeps. */
export const ownFraction = (curve, j, layerParams) => (layerParams ? curve.params[j] / layerParams : 1);

/**
 * How far a layer compresses at a weight SQNR of at least `db`: over its curves (every
 * point: layer.full; else the points at fixed fractions, layer.curves), the smallest
 * fraction of the layer's own parameters kept whose SQNR is >= db, with its method and rank
 * (or kept channels). Own, not net: pruning a small layer's input channels can remove more
 * from its producer than the layer holds (a net fraction below 0); the plan counts that.
 * Returns { fraction, method, keep, sqnrDb } or null when no method compresses the layer
 * at all (every curve refused); fraction 1 (method null) when none reaches db below full size.
 */
export function keptAt(layer, db) {
  const curves = layer.full || layer.curves || [];
  const usable = curves.filter((k) => !k.refused);
  if (!usable.length) return null;
  let best = { fraction: 1, method: null, keep: null, sqnrDb: Infinity };
  for (const k of usable) {
    if (k.points) {
      for (const p of k.points) {
        if (p.params === null || !(p.sqnrDb >= db)) continue;
        const f = p.params / layer.params;
        if (f < best.fraction) best = { fraction: f, method: k.method, keep: p.keep, sqnrDb: p.sqnrDb };
      }
      continue;
    }
    for (let j = 0; j < k.params.length; j++) {
      if (!(k.sqnrDb[j] >= db)) continue; // a lossless rank below full size (+inf) counts too
      const f = ownFraction(k, j, layer.params);
      if (f < best.fraction) best = { fraction: f, method: k.method, keep: k.keep[j], sqnrDb: k.sqnrDb[j] };
    }
  }
  return best;
}
