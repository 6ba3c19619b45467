// Layer selection (AIMET's `selected_layers`) applied to results after the fact: the
// CLI's --layers REGEX for equalize, compare and report. analyze() selects while it
// reads (its `layers` option); these keep the documents' shape and recompute the
// summaries over what is kept.
const toTest = (select) => (select instanceof RegExp ? (name) => { select.lastIndex = 0; return select.test(name); } : select);

// compare(): pairs where A's or B's layer name matches, and the unmatched layers that
// match. Each kept pair carries `index`, its position among all pairs.
export function selectComparison(cmp, select) {
  const test = toTest(select);
  const pairs = [];
  cmp.pairs.forEach((p, k) => { if (test(p.a.name) || test(p.b.name)) pairs.push({ ...p, index: k }); });
  const unmatched = { a: cmp.unmatched.a.filter((n) => test(n)), b: cmp.unmatched.b.filter((n) => test(n)) };
  return { ...cmp, pairs, unmatched, summary: comparisonSummary(pairs, unmatched) };
}

// The same summary compare() computes (web/src/compare.js), over the given pairs.
export function comparisonSummary(pairs, unmatched) {
  const matchedBy = { weight: 0, name: 0, position: 0 };
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
    pairs: pairs.length, comparable, incomparable: pairs.length - comparable,
    unmatchedA: unmatched.a.length, unmatchedB: unmatched.b.length,
    matchedBy, identical, worst, maxAbsDiff,
  };
}

// equalize(): the changed layers whose name matches. The equalization itself (and
// the written model) always covers the whole model; sequences, stops and the counts
// of changed layers and folded BatchNorms stay as they are; `summary.layersSelected`
// counts the kept layers, and the per-tensor SQNR means and worst values
// are recomputed over the kept layers.
export function selectEqualization(eq, select) {
  const test = toTest(select);
  const layers = eq.layers.filter((l) => test(l.name));
  const stat = (f, how) => {
    const xs = layers.map(f).filter(Number.isFinite);
    if (!xs.length) return null;
    return how === 'mean' ? xs.reduce((a, b) => a + b, 0) / xs.length : Math.min(...xs);
  };
  const per = (k) => ({
    meanBefore: stat((l) => l.before.sqnr[k], 'mean'), meanAfter: stat((l) => l.after.sqnr[k], 'mean'),
    worstBefore: stat((l) => l.before.sqnr[k], 'min'), worstAfter: stat((l) => l.after.sqnr[k], 'min'),
  });
  return {
    ...eq,
    layers,
    summary: { ...eq.summary, layersSelected: layers.length, int8PerTensor: per('int8PerTensor'), int4PerTensor: per('int4PerTensor') },
  };
}
