// Compression, then quantization (issue 15 part 6): what a compression plan does to the
// quantization risk of the layers it rewrites. The compressed model is analysed like any
// other (analyze() of compress()'s bytes); each compressed layer of the original is matched
// to the layers that compute it in the written model by the node names the writer reports
// (compress() layers[].nodes: an SVD layer's two new nodes, a pruned layer's own node), and
// its SQNR per scheme and its outlier channels are set beside the original's. The risk
// levels are presentation.js's (one rule everywhere). Pure: no core, no DOM.
import { riskOfScheme } from './presentation.js';
import { schemesOf } from './schemes.js';

/**
 * @param before      analyze() of the original model
 * @param after       analyze() of the compressed model (compress()'s bytes)
 * @param compressed  compress()'s result (its layers[] with nodes)
 * @returns { schemes, layers: [{ name, method, rank, keptChannels, sqnrDb (the weight SQNR of
 *            the compression), nodes, missing (node names the analysis of the compressed model
 *            has no layer for), before: { sqnr: {scheme: dB}, outliers, risk: {scheme: level} },
 *            after: { sqnr (the worst of its layers per scheme), outliers (their sum), risk,
 *            layers: [{ name, sqnr, outliers }] } }],
 *            highRisk: { scheme: { before, after } } (layers at high risk in each whole model) }
 */
export function compressionRisk(before, after, compressed) {
  const schemes = schemesOf(before).filter((s) => schemesOf(after).includes(s));
  const beforeByName = new Map(before.layers.map((l) => [l.name, l]));
  const afterByName = new Map(after.layers.map((l) => [l.name, l]));
  const side = (layers) => {
    const sqnr = {};
    const risk = {};
    for (const s of schemes) {
      let worst = null;
      let level = 'low';
      for (const l of layers) {
        const v = l.error || !l.sqnr ? null : l.sqnr[s];
        if (typeof v === 'number' && !Number.isNaN(v) && (worst === null || v < worst)) worst = v;
        const r = riskOfScheme(l, s);
        if (RANK[r] < RANK[level]) level = r;
      }
      sqnr[s] = worst;
      risk[s] = layers.length ? level : 'failed';
    }
    const outliers = layers.reduce((n, l) => n + (l.error ? 0 : l.outlierChannels.length), 0);
    return { sqnr, outliers, risk };
  };
  const layers = [];
  for (const c of compressed.layers) {
    if (!c.method) continue;
    const orig = beforeByName.get(c.name);
    const nodes = c.nodes || [];
    const found = nodes.map((n) => afterByName.get(n)).filter(Boolean);
    layers.push({
      name: c.name,
      method: c.method,
      rank: c.rank,
      keptChannels: c.keptChannels,
      sqnrDb: c.sqnrDb,
      nodes,
      missing: nodes.filter((n) => !afterByName.has(n)),
      before: orig ? side([orig]) : null,
      after: {
        ...side(found),
        layers: found.map((l) => ({ name: l.name, sqnr: l.sqnr || null, outliers: l.error ? null : l.outlierChannels.length })),
      },
    });
  }
  const highRisk = {};
  for (const s of schemes) {
    const count = (a) => a.layers.filter((l) => riskOfScheme(l, s) === 'high').length;
    highRisk[s] = { before: count(before), after: count(after) };
  }
  return { schemes, layers, highRisk };
}

// The worse level first: 'failed' and 'high' before 'medium' before 'low'.
const RANK = { failed: 0, high: 1, medium: 2, low: 3 };
