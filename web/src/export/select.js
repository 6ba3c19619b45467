// Layer selection (AIMET's `selected_layers`) applied to results after the fact: the
// CLI's --layers REGEX for equalize, compare and report. analyze() selects while it
// reads (its `layers` option); these keep the documents' shape and recompute the
// summaries over what is kept.
import { comparisonSummary } from '../compare.js';
import { sqnrChange } from '../equalize.js';

const toTest = (select) =>
  select instanceof RegExp
    ? (name) => {
        select.lastIndex = 0;
        return select.test(name);
      }
    : select;

// compare(): pairs where A's or B's layer name matches, and the unmatched layers that
// match. Each kept pair carries `index`, its position among all pairs.
export function selectComparison(cmp, select) {
  const test = toTest(select);
  const pairs = [];
  cmp.pairs.forEach((p, k) => {
    if (test(p.a.name) || test(p.b.name)) pairs.push({ ...p, index: k });
  });
  const unmatched = { a: cmp.unmatched.a.filter((n) => test(n)), b: cmp.unmatched.b.filter((n) => test(n)) };
  return { ...cmp, pairs, unmatched, summary: comparisonSummary(pairs, unmatched) };
}

// equalize(): the changed layers whose name matches. The equalization itself (and
// the written model) always covers the whole model; sequences, stops and the counts
// of changed layers and folded BatchNorms stay as they are; `summary.layersSelected`
// counts the kept layers, and the per-tensor SQNR means and worst values
// are recomputed over the kept layers.
export function selectEqualization(eq, select) {
  const test = toTest(select);
  const layers = eq.layers.filter((l) => test(l.name));
  return {
    ...eq,
    layers,
    summary: {
      ...eq.summary,
      layersSelected: layers.length,
      int8PerTensor: sqnrChange(layers, 'int8PerTensor'),
      int4PerTensor: sqnrChange(layers, 'int4PerTensor'),
    },
  };
}
