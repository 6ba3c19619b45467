// The compare view: how far the weights of model B are from those of model A, layer by
// layer and channel by channel (for the result of compare(a, b), quantlens.comparison/1).
//
//   renderCompareView(element, comparison, { onSelect }) -> { destroy() }
//
// Contract (tests rely on it):
//   root                 div.ql-view.ql-compare
//   model names          [data-field="model-a"], [data-field="model-b"]
//   per-layer chart      g.ql-cmp-mark[data-pair="<index>"][data-sqnr] (tensor SQNR in dB as a number;
//                        "Infinity" when identical, "null" when not comparable)
//   pairs table          table.ql-cmp-table, rows tr[data-pair="<index>"] with cells td[data-col=...]:
//                        index, a, b, matched, quant-a, quant-b, max-abs-diff, rms-diff, sqnr, note;
//                        headers th[data-col] hold a button[data-sort] that sorts (again: reverses)
//   selection            clicking a row (or Enter / Space on it, or a mark of the chart) shows that
//                        pair's channels and calls onSelect(pair, index)
//   per-channel detail   .ql-cmp-detail[data-pair]; zoom buttons button[data-action="zoom-in" | "zoom-out" | "zoom-reset"]
//   unmatched            ul[data-side="a"] / ul[data-side="b"] inside .ql-cmp-unmatched
// Every string from the models (layer, weight, model names, reasons) is written with textContent.
import * as d3 from 'd3';
import {
  colors,
  palette,
  formatDb,
  formatNumber,
  formatCount,
  ensureStyles,
  tooltip,
  observeWidth,
  chartFrame,
  drawAxes,
  legend,
  riskRules,
  viewRoot,
  RISK_DB,
  channelHover,
  channelTickCount,
  channelText,
  clipped,
  finiteExtent,
  intTicks,
  normalizedText,
  quantizationText,
  riskColor,
  riskOfDb,
  visibleChannels,
} from './common.js';
import { channelRangeChart } from './channel-range.js';

const CSS = `
.ql-compare button, .ql-compare select { font: inherit; }
.ql-compare :focus-visible { outline: 2px solid ${palette.orange}; outline-offset: 1px; }
.ql-compare .ql-cmp-models { display: grid; grid-template-columns: auto 1fr; gap: 2px 10px; margin: 4px 0 6px; }
.ql-compare .ql-cmp-models .ql-cmp-side { font-weight: 700; }
.ql-compare .ql-cmp-name { font-family: ui-monospace, SFMono-Regular, Menlo, Consolas, monospace; font-size: 12px; overflow-wrap: anywhere; }
.ql-compare .ql-cmp-summary { margin: 2px 0 8px; max-width: 120ch; }
.ql-compare .ql-cmp-grid { display: grid; gap: 12px 28px; align-items: start; }
.ql-compare .ql-cmp-panel { min-width: 0; }
.ql-compare .ql-cmp-mark { cursor: pointer; }
.ql-compare .ql-cmp-mark:hover .ql-cmp-bg { fill: var(--ql-v-head); }
.ql-compare .ql-cmp-mark.ql-selected .ql-cmp-bg { fill: var(--ql-v-selected); }
.ql-compare .ql-cmp-scroll { max-height: clamp(300px, calc(100vh - 260px), 720px); overflow: auto; border: 1px solid var(--ql-v-line); }
.ql-compare table.ql-cmp-table { width: 100%; border-collapse: separate; border-spacing: 0; }
.ql-compare .ql-risk-rules text { paint-order: stroke; stroke: var(--ql-v-bg); stroke-width: 3px; stroke-linejoin: round; pointer-events: none; }
.ql-compare .ql-risk-rules line { pointer-events: none; }
.ql-compare table.ql-cmp-table td { max-width: 26ch; overflow: hidden; text-overflow: ellipsis; }
.ql-compare table.ql-cmp-table td.ql-cmp-note { max-width: 40ch; min-width: 16ch; white-space: normal; overflow-wrap: anywhere; color: var(--ql-v-bad); }
.ql-compare table.ql-cmp-table tbody tr { cursor: pointer; }
.ql-compare table.ql-cmp-table tbody tr:hover { background: var(--ql-v-head); }
.ql-compare table.ql-cmp-table tbody tr[aria-selected="true"] { background: var(--ql-v-selected); }
.ql-compare table.ql-cmp-table th button { font: inherit; font-weight: 600; border: 0; background: none; padding: 0; cursor: pointer; color: inherit; }
.ql-compare table.ql-cmp-table th[aria-sort="ascending"] button::after { content: " ▲"; font-size: 10px; }
.ql-compare table.ql-cmp-table th[aria-sort="descending"] button::after { content: " ▼"; font-size: 10px; }
.ql-compare .ql-cmp-identical { color: var(--ql-v-good); font-weight: 600; }
.ql-compare table.ql-cmp-table td.ql-cmp-note.ql-cmp-rescale { color: ${palette.blue}; }
.ql-compare .ql-cmp-rescale-note { padding: 6px 10px; background: var(--ql-v-panel); border-left: 4px solid ${palette.blue}; overflow-wrap: anywhere; }
.ql-compare .ql-cmp-risk-high { color: var(--ql-v-bad); font-weight: 600; }
.ql-compare .ql-cmp-controls { display: flex; flex-wrap: wrap; gap: 6px 10px; align-items: center; margin: 4px 0; }
.ql-compare .ql-cmp-controls button { border: 1px solid var(--ql-v-axis-line); background: var(--ql-v-bg); border-radius: 3px; padding: 0 8px; cursor: pointer; }
.ql-compare .ql-cmp-detail-meta { margin: 0 0 4px; overflow-wrap: anywhere; }
.ql-compare .ql-cmp-reason { padding: 8px 10px; background: var(--ql-v-error-bg); border-left: 4px solid ${palette.vermillion}; overflow-wrap: anywhere; }
.ql-compare .ql-cmp-unmatched { display: grid; grid-template-columns: repeat(auto-fit, minmax(280px, 1fr)); gap: 4px 28px; }
.ql-compare .ql-cmp-unmatched ul { margin: 2px 0; padding-left: 1.4em; max-height: 240px; overflow-y: auto; }
.ql-compare .ql-cmp-unmatched li { overflow-wrap: anywhere; }
.ql-compare .ql-cmp-section { margin-top: 16px; border-top: 1px solid var(--ql-v-line); padding-top: 4px; }
.ql-compare .ql-cmp-note { font-size: 12px; color: var(--ql-v-muted); margin: 2px 0 6px; }
`;

const TWO_COLUMNS = 1500; // px of view width from which the table and the channel detail sit side by side
const GAP = 28;

// SQNR of B against A for people: identical pairs say so.
export const sqnrText = (x) => (x === Infinity ? 'identical' : x === null || x === undefined ? '-' : `${formatDb(x)}`);
const sqnrOf = (p) => (p.comparable && p.tensor ? p.tensor.sqnr : null);
const sqnrColor = (db) => riskColor(riskOfDb(db));
// A pair whose B is A rescaled per channel (compare() pair.rescale): the function is kept, so
// its SQNR is no risk; drawn in the neutral colour and said so.
const isRescale = (p) => !!(p && p.rescale);
const markColor = (p, db) => (isRescale(p) ? palette.blue : sqnrColor(db));
// 'B = A × 0.21..4.8 per output channel (2 channels flipped)'.
export function rescaleText(p) {
  const f = Array.from(p.rescale?.factor || []);
  if (!f.length) return '';
  const mag = f.map(Math.abs);
  const flipped = f.filter((v) => v < 0).length;
  return `B = A × ${formatNumber(Math.min(...mag))}..${formatNumber(Math.max(...mag))} per output channel${flipped ? ` (${flipped} channels' signs flipped)` : ''}: a per-channel rescale (CLE, BatchNorm folding) keeps the function; not an error`;
}

// "int8 per-channel (QDQ)", "int8 per-channel (axis 1) (QLinearMatMul)", "float32", ...
export const quantText = (side) => (side ? quantizationText(side, { axis: true }) || 'float' : '-');

const COLUMNS = [
  { key: 'index', label: '#', num: true, value: (p, i) => i, text: (p, i) => String(i + 1) },
  { key: 'a', label: 'layer in A', value: (p) => p.a?.name ?? '', text: (p) => p.a?.name ?? '-' },
  { key: 'b', label: 'layer in B', value: (p) => p.b?.name ?? '', text: (p) => p.b?.name ?? '-' },
  { key: 'matched', label: 'matched by', value: (p) => p.matchedBy ?? '', text: (p) => p.matchedBy ?? '-' },
  { key: 'quant-a', label: 'A stored as', value: (p) => quantText(p.a), text: (p) => quantText(p.a) },
  { key: 'quant-b', label: 'B stored as', value: (p) => quantText(p.b), text: (p) => quantText(p.b) },
  {
    key: 'max-abs-diff',
    label: 'max |B − A|',
    num: true,
    value: (p) => p.tensor?.maxAbsDiff ?? null,
    text: (p) => (p.tensor ? formatNumber(p.tensor.maxAbsDiff) : '-'),
  },
  {
    key: 'rms-diff',
    label: 'RMS diff',
    num: true,
    value: (p) => p.tensor?.rmsDiff ?? null,
    text: (p) => (p.tensor ? formatNumber(p.tensor.rmsDiff) : '-'),
  },
  { key: 'sqnr', label: 'SQNR (dB)', num: true, value: sqnrOf, text: (p) => sqnrText(sqnrOf(p)) },
  {
    key: 'note',
    label: 'note',
    value: (p) => p.reason ?? (isRescale(p) ? 'rescale' : ''),
    text: (p) => (p.comparable ? (isRescale(p) ? 'rescaled per channel: function kept' : '') : p.reason || 'not comparable'),
  },
];

/**
 * @param element     where to render (the view appends its own root)
 * @param comparison  the result of compare(a, b) (typed arrays as compare() returns them)
 * @param onSelect    called with (pair, index) when a pair is chosen
 */
export function renderCompareView(element, comparison, { onSelect } = {}) {
  ensureStyles('ql-compare', CSS, element.ownerDocument);
  const root = viewRoot(element, 'ql-compare');
  const body = d3.select(root).append('div').attr('class', 'ql-cmp-body');
  const tip = tooltip(root);
  const cmp = comparison || {};
  const pairs = cmp.pairs || [];
  const state = { selected: defaultPair(cmp), sort: { key: 'index', dir: 1 }, zoom: null, width: 0 };

  function select(index, { from } = {}) {
    if (index < 0 || index >= pairs.length) return;
    if (index !== state.selected) {
      state.selected = index;
      state.zoom = null;
      render(state.width, { keepTableScroll: true });
      if (from === 'table') {
        // Stacked layout: bring the detail into view; focus stays on the row.
        const detail = root.querySelector('.ql-cmp-detail');
        const row = root.querySelector(`tr[data-pair="${index}"]`);
        if (detail && state.width < TWO_COLUMNS && detail.scrollIntoView) detail.scrollIntoView({ block: 'nearest' });
        row?.focus({ preventScroll: state.width < TWO_COLUMNS });
      }
    }
    if (typeof onSelect === 'function') onSelect(pairs[index], index);
  }

  function render(width, { keepTableScroll = false } = {}) {
    state.width = width;
    tip.hide();
    const scroll = keepTableScroll ? root.querySelector('.ql-cmp-scroll')?.scrollTop : null;
    body.selectAll('*').remove();
    header(body, cmp);
    if (pairs.length) {
      sqnrChart(body, pairs, { width, selected: state.selected, tip, onSelect: (i) => select(i) });
      const two = width >= TWO_COLUMNS;
      const leftW = two ? Math.floor((width - GAP) * 0.55) : width;
      const rightW = two ? width - GAP - leftW : width;
      const grid = body
        .append('div')
        .attr('class', 'ql-cmp-grid')
        .style('grid-template-columns', two ? `${leftW}px ${rightW}px` : '1fr');
      const tablePanel = grid.append('div').attr('class', 'ql-cmp-panel');
      const detailPanel = grid.append('div').attr('class', 'ql-cmp-panel');
      if (!two) detailPanel.lower(); // stacked: the detail right under the chart, the table after it
      pairsTable(tablePanel, pairs, {
        selected: state.selected,
        sort: state.sort,
        onSelect: (i) => select(i, { from: 'table' }),
        onSort: (key) => {
          state.sort =
            state.sort.key === key
              ? { key, dir: -state.sort.dir }
              : { key, dir: key === 'sqnr' ? 1 : COLUMNS.find((c) => c.key === key).num ? -1 : 1 };
          render(state.width, { keepTableScroll: false });
          root.querySelector(`th[data-col="${key}"] button`)?.focus();
        },
      });
      if (scroll !== null && scroll !== undefined) {
        const s = root.querySelector('.ql-cmp-scroll');
        if (s) s.scrollTop = scroll;
      }
      pairDetail(detailPanel, pairs[state.selected], state.selected, {
        width: rightW,
        tip,
        zoom: state.zoom,
        onZoom: (t) => {
          state.zoom = t;
        },
      });
    } else {
      body.append('p').attr('class', 'ql-cmp-note').text('No layer of A could be paired with a layer of B.');
    }
    unmatchedSection(body, cmp);
  }

  const observer = observeWidth(root, (w) => render(w, { keepTableScroll: true }));
  return {
    destroy() {
      observer.disconnect();
      tip.destroy();
      root.remove();
    },
  };
}

// The pair shown first: the worst comparable one (lowest SQNR), else the first.
function defaultPair(cmp) {
  const w = cmp.summary?.worst?.pair;
  if (Number.isInteger(w) && w >= 0 && w < (cmp.pairs || []).length) return w;
  let best = 0;
  let lowest = Infinity;
  (cmp.pairs || []).forEach((p, i) => {
    const s = sqnrOf(p);
    if (Number.isFinite(s) && s < lowest) {
      lowest = s;
      best = i;
    }
  });
  return best;
}

// ---------------------------------------------------------------------------
// Header: both models and the summary.

function modelLine(side, model) {
  const m = model || {};
  const producer = [m.producer, m.producerVersion].filter(Boolean).join(' ');
  const parts = [
    producer,
    m.layers !== undefined ? `${m.layers} weight layers` : '',
    m.bytes ? `${formatCount(m.bytes)}B` : '',
  ].filter(Boolean);
  return { name: m.name ?? `model ${side.toUpperCase()}`, details: parts.join(', ') };
}

function header(parent, cmp) {
  parent.append('h2').text('Weight comparison: B against A');
  const models = parent.append('div').attr('class', 'ql-cmp-models');
  for (const side of ['a', 'b']) {
    const { name, details } = modelLine(side, cmp[side]?.model);
    models.append('span').attr('class', 'ql-cmp-side').text(side.toUpperCase());
    const cell = models.append('span');
    cell.append('span').attr('class', 'ql-cmp-name').attr('data-field', `model-${side}`).text(name);
    if (details) cell.append('span').attr('class', 'ql-muted').text(` · ${details}`);
  }
  const s = cmp.summary || {};
  const p = parent.append('p').attr('class', 'ql-cmp-summary');
  const b = (field, v) =>
    p
      .append('b')
      .attr('data-field', field)
      .text(String(v ?? 0));
  b('pairs', s.pairs ?? (cmp.pairs || []).length);
  const mb = s.matchedBy || {};
  p.append('span').text(
    ` layer pairs (matched by weight name ${mb.weight ?? 0}, node name ${mb.name ?? 0}, ` +
      `${normalizedText(mb)}position ${mb.position ?? 0}); `,
  );
  b('identical', s.identical);
  p.append('span').text(' identical, ');
  const rescaled = s.rescaled ?? (cmp.pairs || []).filter(isRescale).length;
  if (rescaled) {
    b('rescaled', rescaled);
    p.append('span').text(' rescaled per channel (the function kept), ');
  }
  b('incomparable', s.incomparable);
  p.append('span').text(' not comparable; ');
  b('unmatched-a', s.unmatchedA ?? cmp.unmatched?.a?.length);
  p.append('span').text(' layers only in A, ');
  b('unmatched-b', s.unmatchedB ?? cmp.unmatched?.b?.length);
  p.append('span').text(' only in B.');
  const differing = (cmp.pairs || []).filter((q) => q.comparable && q.tensor && q.tensor.sqnr !== Infinity);
  if (differing.length && differing.every(isRescale)) {
    p.append('span')
      .attr('data-field', 'all-rescaled')
      .text(
        ' Every pair that differs is B = A rescaled per channel (as Cross Layer Equalization and BatchNorm folding rescale): the weights compute the same function, so their SQNR is no quantization risk.',
      );
  } else if (s.worst && s.worst.sqnr === Infinity) {
    p.append('span').text(' Every comparable pair is identical.');
  } else if (s.worst) {
    p.append('span').text(' Lowest SQNR: ');
    p.append('span').attr('class', 'ql-cmp-name').text(s.worst.name);
    p.append('span').text(` at ${sqnrText(s.worst.sqnr)}${s.worst.sqnr === Infinity ? '' : ' dB'}`);
    p.append('span').text(`; largest |B − A| ${formatNumber(s.maxAbsDiff)}.`);
  }
}

// ---------------------------------------------------------------------------
// SQNR of B against A per pair: one stem per pair in A's graph order.

function sqnrChart(parent, pairs, { width, selected, tip, onSelect }) {
  parent.append('h3').text('SQNR of B against A, per layer');
  legend(parent.node(), [
    { label: `≥ ${RISK_DB.medium} dB`, color: colors.risk.low, kind: 'dot' },
    { label: `${RISK_DB.high}–${RISK_DB.medium} dB`, color: colors.risk.medium, kind: 'dot' },
    { label: `< ${RISK_DB.high} dB`, color: colors.risk.high, kind: 'dot' },
    { label: 'identical (∞, top lane)', color: colors.risk.low, kind: 'square' },
    { label: 'not comparable (×)', color: colors.risk.failed, kind: 'square' },
    ...(pairs.some(isRescale)
      ? [{ label: 'rescaled per channel: function kept, no risk', color: palette.blue, kind: 'dot' }]
      : []),
  ]);
  // The threshold labels sit in the right margin ("high", "medium"): over the plot they
  // overlapped each other whenever the two rules came close.
  const margin = { top: 26, right: 60, bottom: 44, left: 62 };
  const height = 250;
  const chart = parent.append('div').attr('class', 'ql-chart').attr('data-chart', 'sqnr');
  const f = chartFrame(chart.node(), { width, height, margin });
  f.svg.attr('role', 'img').attr('aria-label', 'SQNR of B against A per layer pair');
  const values = pairs.map(sqnrOf);
  const [lo, hi] = finiteExtent(values, [0, 60]);
  const x = d3.scaleBand(d3.range(pairs.length), [0, f.width]).paddingInner(0.2);
  const y = d3.scaleLinear([Math.min(0, lo), Math.max(hi, RISK_DB.medium + 5)], [f.height, 0]).nice();
  const step = Math.max(1, Math.ceil(pairs.length / Math.max(2, f.width / 40)));
  drawAxes(f.g, {
    x,
    y,
    width: f.width,
    height: f.height,
    xLabel: "layer pair (A's graph order)",
    yLabel: 'SQNR (dB)',
    xFormat: (i) => (i % step === 0 ? String(i + 1) : ''),
  });
  f.g
    .select('.ql-axis-x')
    .selectAll('.tick')
    .filter((i) => i % step !== 0)
    .select('line')
    .remove();
  riskRules(f.g, y, f.width, { outside: true });
  const lane = -14; // the "identical" lane, above the plot
  if (values.some((v) => v === Infinity)) {
    f.g
      .append('text')
      .attr('class', 'ql-axis-label')
      .attr('x', -8)
      .attr('y', lane)
      .attr('dy', '0.35em')
      .attr('text-anchor', 'end')
      .text('∞');
  }
  const bw = x.bandwidth();
  const mark = f.g
    .append('g')
    .attr('class', 'ql-cmp-marks')
    .selectAll('g')
    .data(pairs.map((p, i) => ({ p, i, s: sqnrOf(p) })))
    .join('g')
    .attr('class', (d) => `ql-cmp-mark${d.i === selected ? ' ql-selected' : ''}`)
    .attr('data-pair', (d) => d.i)
    .attr('data-layer', (d) => d.p.a?.name ?? '')
    .attr('data-sqnr', (d) => String(d.s))
    .attr('data-rescale', (d) => (isRescale(d.p) ? 'true' : null))
    .attr('transform', (d) => `translate(${x(d.i)},0)`);
  mark
    .append('rect')
    .attr('class', 'ql-cmp-bg')
    .attr('x', (-x.step() * x.paddingInner()) / 2)
    .attr('y', lane - 8)
    .attr('width', x.step())
    .attr('height', f.height - lane + 8)
    .attr('fill', 'transparent');
  const r = Math.max(1.8, Math.min(4.5, bw / 2));
  const finite = mark.filter((d) => Number.isFinite(d.s));
  finite
    .append('line')
    .attr('x1', bw / 2)
    .attr('x2', bw / 2)
    .attr('y1', f.height)
    .attr('y2', (d) => y(d.s))
    .attr('stroke', (d) => markColor(d.p, d.s))
    .attr('stroke-width', Math.max(1, Math.min(3, bw * 0.4)));
  finite
    .append('circle')
    .attr('cx', bw / 2)
    .attr('cy', (d) => y(d.s))
    .attr('r', r)
    .attr('fill', (d) => markColor(d.p, d.s));
  mark
    .filter((d) => d.s === Infinity)
    .append('rect')
    .attr('x', bw / 2 - r)
    .attr('y', lane - r)
    .attr('width', 2 * r)
    .attr('height', 2 * r)
    .attr('fill', colors.risk.low);
  mark
    .filter((d) => d.s === null || Number.isNaN(d.s))
    .append('text')
    .attr('x', bw / 2)
    .attr('y', f.height - 6)
    .attr('text-anchor', 'middle')
    .attr('font-size', Math.max(9, Math.min(14, bw * 1.4)))
    .attr('fill', colors.risk.failed)
    .text('×');
  f.g.select('.ql-risk-rules').raise();
  mark
    .on('pointerenter', (event, d) => tip.show(event, d.p.a?.name ?? '', pairTipRows(d.p, d.i)))
    .on('pointermove', (event) => tip.move(event))
    .on('pointerleave', () => tip.hide())
    .on('click', (event, d) => onSelect(d.i));
}

function pairTipRows(p, i) {
  const rows = [
    ['pair', `#${i + 1}`],
    ['in B', p.b?.name ?? '-'],
    ['matched by', p.matchedBy ?? '-'],
  ];
  if (p.comparable && p.tensor) {
    rows.push(
      ['SQNR', `${sqnrText(p.tensor.sqnr)}${p.tensor.sqnr === Infinity ? '' : ' dB'}`],
      ['max |B − A|', formatNumber(p.tensor.maxAbsDiff)],
      ['RMS diff', formatNumber(p.tensor.rmsDiff)],
    );
    if (isRescale(p)) rows.push(['rescale', 'B = A × a factor per channel: function kept']);
  } else rows.push(['not comparable', p.reason || '']);
  rows.push(['A stored as', quantText(p.a)], ['B stored as', quantText(p.b)]);
  return rows;
}

// ---------------------------------------------------------------------------
// The table of pairs, sortable.

function compareValues(a, b) {
  const na = a === null || a === undefined || Number.isNaN(a);
  const nb = b === null || b === undefined || Number.isNaN(b);
  if (na || nb) return na && nb ? 0 : na ? 1 : -1; // missing values last, whatever the direction
  return typeof a === 'number' && typeof b === 'number' ? a - b : String(a).localeCompare(String(b));
}

function pairsTable(parent, pairs, { selected, sort, onSelect, onSort }) {
  parent.append('h3').text('Layer pairs');
  parent
    .append('p')
    .attr('class', 'ql-cmp-note')
    .text(
      'Click a column title to sort, a row (or Enter on it) to see its channels. Differences are in weight units, after dequantizing both sides.',
    );
  const wrap = parent.append('div').attr('class', 'ql-cmp-scroll');
  const table = wrap.append('table').attr('class', 'ql-table ql-cmp-table');
  const col = COLUMNS.find((c) => c.key === sort.key) || COLUMNS[0];
  const rows = pairs.map((p, i) => ({ p, i }));
  rows.sort((r1, r2) => {
    const a = col.value(r1.p, r1.i);
    const b = col.value(r2.p, r2.i);
    const missing = (v) => v === null || v === undefined || Number.isNaN(v);
    if (missing(a) || missing(b)) return compareValues(a, b) || r1.i - r2.i;
    return sort.dir * compareValues(a, b) || r1.i - r2.i;
  });
  table
    .append('thead')
    .append('tr')
    .selectAll('th')
    .data(COLUMNS)
    .join('th')
    .attr('data-col', (c) => c.key)
    .attr('class', (c) => (c.num ? 'ql-num' : null))
    .attr('aria-sort', (c) => (c.key === sort.key ? (sort.dir > 0 ? 'ascending' : 'descending') : 'none'))
    .append('button')
    .attr('type', 'button')
    .attr('data-sort', (c) => c.key)
    .text((c) => c.label)
    .on('click', (event, c) => onSort(c.key));
  const tr = table
    .append('tbody')
    .selectAll('tr')
    .data(rows)
    .join('tr')
    .attr('data-pair', (d) => d.i)
    .attr('tabindex', 0)
    .attr('aria-selected', (d) => (d.i === selected ? 'true' : 'false'))
    .on('click', (event, d) => onSelect(d.i))
    .on('keydown', (event, d) => {
      if (event.key === 'Enter' || event.key === ' ') {
        event.preventDefault();
        onSelect(d.i);
      }
      if (event.key === 'ArrowDown' || event.key === 'ArrowUp') {
        event.preventDefault();
        const next =
          event.key === 'ArrowDown' ? event.currentTarget.nextElementSibling : event.currentTarget.previousElementSibling;
        next?.focus();
      }
    });
  tr.selectAll('td')
    .data((d) => COLUMNS.map((c) => ({ c, d })))
    .join('td')
    .attr('data-col', ({ c }) => c.key)
    .attr(
      'class',
      ({ c, d }) =>
        [
          c.num ? 'ql-num' : '',
          c.key === 'note' ? 'ql-cmp-note' : '',
          c.key === 'sqnr' && sqnrOf(d.p) === Infinity ? 'ql-cmp-identical' : '',
          c.key === 'sqnr' && sqnrOf(d.p) < RISK_DB.high && !isRescale(d.p) ? 'ql-cmp-risk-high' : '',
          c.key === 'note' && isRescale(d.p) ? 'ql-cmp-rescale' : '',
        ]
          .filter(Boolean)
          .join(' ') || null,
    )
    .attr('title', ({ c, d }) =>
      c.key === 'note' && isRescale(d.p)
        ? rescaleText(d.p)
        : c.key === 'a' || c.key === 'b' || c.key === 'note'
          ? c.text(d.p, d.i)
          : null,
    )
    .text(({ c, d }) => c.text(d.p, d.i));
}

// ---------------------------------------------------------------------------
// One pair: per-channel ranges of A and B, per-channel max |diff| and SQNR; x zoomable.

function pairDetail(parent, pair, index, { width, tip, zoom, onZoom }) {
  const sec = parent.append('div').attr('class', 'ql-cmp-detail').attr('data-pair', index);
  sec.append('h3').text(`Channels of pair #${index + 1}`);
  const meta = sec.append('p').attr('class', 'ql-cmp-detail-meta');
  meta.append('span').attr('class', 'ql-muted').text('A ');
  meta
    .append('span')
    .attr('class', 'ql-cmp-name')
    .attr('data-field', 'pair-a')
    .text(pair.a?.name ?? '-');
  meta
    .append('span')
    .attr('class', 'ql-muted')
    .text(` (${quantText(pair.a)}${pair.a?.shape ? `, ${pair.a.shape.join('×')}` : ''}) · B `);
  meta
    .append('span')
    .attr('class', 'ql-cmp-name')
    .attr('data-field', 'pair-b')
    .text(pair.b?.name ?? '-');
  meta
    .append('span')
    .attr('class', 'ql-muted')
    .text(` (${quantText(pair.b)}${pair.b?.shape ? `, ${pair.b.shape.join('×')}` : ''}) · matched by ${pair.matchedBy ?? '-'}`);
  if (!pair.comparable || !pair.channels) {
    sec
      .append('p')
      .attr('class', 'ql-cmp-reason')
      .text(`Not comparable: ${pair.reason || 'no reason given'}`);
    return;
  }
  const ch = pair.channels;
  const n = ch.count ?? ch.sqnr?.length ?? 0;
  if (!n) return;
  const t = pair.tensor || {};
  sec
    .append('p')
    .attr('class', 'ql-cmp-note')
    .text(
      `Whole tensor: SQNR ${sqnrText(t.sqnr)}${t.sqnr === Infinity ? '' : ' dB'}, max |B − A| ${formatNumber(t.maxAbsDiff)}, RMS diff ${formatNumber(t.rmsDiff)}; ${n} output channels.`,
    );
  if (isRescale(pair))
    sec
      .append('p')
      .attr('class', 'ql-cmp-rescale-note')
      .attr('data-field', 'rescale')
      .text(`${rescaleText(pair)}.`);

  const controls = sec.append('div').attr('class', 'ql-cmp-controls');
  controls.append('span').attr('class', 'ql-muted').text('Channels: wheel or drag to zoom and pan (horizontally), or');
  const buttons = {};
  for (const [action, label] of [
    ['zoom-in', 'zoom in +'],
    ['zoom-out', 'zoom out −'],
    ['zoom-reset', 'reset'],
  ]) {
    buttons[action] = controls.append('button').attr('type', 'button').attr('data-action', action).text(label);
  }

  const margin = { top: 8, right: 60, bottom: 40, left: 62 }; // right: the threshold labels
  const x0 = d3.scaleLinear([-0.5, n - 0.5], [0, width - margin.left - margin.right]);
  const charts = [];
  const tipRows = (i) => [
    `${pair.a?.name ?? ''}, ${pair.a ? channelText(pair.a, i) : `channel ${i}`}`,
    [
      ['A min / max', `${formatNumber(ch.minA[i])} / ${formatNumber(ch.maxA[i])}`],
      ['B min / max', `${formatNumber(ch.minB[i])} / ${formatNumber(ch.maxB[i])}`],
      ['max |B − A|', formatNumber(ch.maxAbsDiff[i])],
      ['RMS diff', formatNumber(ch.rmsDiff[i])],
      ['SQNR', `${sqnrText(ch.sqnr[i])}${ch.sqnr[i] === Infinity ? '' : ' dB'}`],
    ],
  ];

  // 1. Ranges of A (dotted) and B (solid).
  sec.append('h3').text('Per-channel range: A dotted, B solid');
  legend(sec.node(), [
    { label: 'max', color: colors.max, kind: 'line' },
    { label: 'min', color: colors.min, kind: 'line' },
    { label: 'A (dotted)', color: colors.before, kind: 'dash' },
    { label: 'B (solid)', color: colors.before, kind: 'line' },
    { label: 'gap A ↔ B', color: colors.before, kind: 'band', opacity: 0.3 },
  ]);
  const ranges = channelRangeChart(
    { min: ch.minB, max: ch.maxB, before: { min: ch.minA, max: ch.maxA } },
    {
      width,
      height: 220,
      margin,
      points: false,
      tip,
      tipRows,
    },
  );
  sec.append('div').attr('class', 'ql-chart ql-cmp-ranges').attr('data-chart', 'ranges').node().append(ranges.svg);
  charts.push({ overlay: ranges.overlay, redraw: ranges.rescale });

  // 2. max |B - A| and RMS diff per channel.
  sec.append('h3').text('Per-channel difference |B − A|');
  legend(sec.node(), [
    { label: 'max |B − A|', color: palette.vermillion, kind: 'square' },
    { label: 'RMS diff', color: palette.black, kind: 'line' },
  ]);
  const [, dHi] = finiteExtent([...ch.maxAbsDiff, ...ch.rmsDiff], [0, 1]);
  if (!Array.prototype.some.call(ch.maxAbsDiff, (v) => v > 0)) {
    sec.append('p').attr('class', 'ql-cmp-note').text('B equals A in every channel.');
  }
  charts.push(
    channelChart(sec, {
      width,
      height: 160,
      margin,
      x0,
      n,
      yLabel: '|B − A| (weight units)',
      tip,
      tipRows,
      className: 'ql-cmp-diffs',
      domain: [0, dHi > 0 ? dHi : 1],
      draw(g, x, y) {
        const idx = visibleChannels(x, n);
        const bw = Math.max(1, Math.min(12, (x(1) - x(0)) * 0.75));
        g.append('path')
          .attr('class', 'ql-cmp-maxdiff')
          .attr('fill', palette.vermillion)
          .attr('fill-opacity', 0.85)
          .attr(
            'd',
            idx
              .filter((i) => Number.isFinite(ch.maxAbsDiff[i]))
              .map((i) => `M${x(i) - bw / 2},${y(0)}V${y(ch.maxAbsDiff[i])}h${bw}V${y(0)}Z`)
              .join(''),
          );
        g.append('path')
          .attr('class', 'ql-cmp-rms')
          .attr('fill', 'none')
          .attr('stroke', palette.black)
          .attr('stroke-width', 1.5)
          .attr(
            'd',
            d3
              .line()
              .x((i) => x(i))
              .y((i) => y(ch.rmsDiff[i]))
              .defined((i) => Number.isFinite(ch.rmsDiff[i]))(idx),
          );
      },
    }),
  );

  // 3. SQNR per channel, identical channels on a lane at the top.
  sec.append('h3').text('Per-channel SQNR of B against A');
  const [sLo, sHi] = finiteExtent(ch.sqnr, [0, 60]);
  const anyInf = Array.prototype.some.call(ch.sqnr, (v) => v === Infinity);
  charts.push(
    channelChart(sec, {
      width,
      height: 180,
      margin: { ...margin, top: anyInf ? 22 : 8 },
      x0,
      n,
      yLabel: 'SQNR (dB)',
      tip,
      tipRows,
      className: 'ql-cmp-sqnr',
      domain: [Math.min(0, sLo), Math.max(sHi, RISK_DB.medium + 5)],
      rules: true,
      draw(g, x, y) {
        const idx = visibleChannels(x, n);
        const r = Math.max(1.5, Math.min(3.5, (x(1) - x(0)) * 0.35));
        g.append('path')
          .attr('class', 'ql-cmp-sqnr-line')
          .attr('fill', 'none')
          .attr('stroke', colors.after)
          .attr('stroke-width', 1.2)
          .attr(
            'd',
            d3
              .line()
              .x((i) => x(i))
              .y((i) => y(ch.sqnr[i]))
              .defined((i) => Number.isFinite(ch.sqnr[i]))(idx),
          );
        g.append('g')
          .selectAll('circle')
          .data(idx.filter((i) => Number.isFinite(ch.sqnr[i])))
          .join('circle')
          .attr('cx', (i) => x(i))
          .attr('cy', (i) => y(ch.sqnr[i]))
          .attr('r', r)
          .attr('fill', (i) => (isRescale(pair) ? palette.blue : sqnrColor(ch.sqnr[i]))); // a rescale is no risk
        g.append('g')
          .attr('class', 'ql-cmp-identical-lane')
          .selectAll('rect')
          .data(idx.filter((i) => ch.sqnr[i] === Infinity))
          .join('rect')
          .attr('x', (i) => x(i) - r)
          .attr('y', -14 - r)
          .attr('width', 2 * r)
          .attr('height', 2 * r)
          .attr('fill', colors.risk.low);
      },
      lane: anyInf ? 'identical' : null,
    }),
  );

  // One x zoom for the three charts.
  // The zoom is kept as the channel interval shown, so it survives a re-render at another width.
  const w = x0.range()[1];
  const behaviour = d3
    .zoom()
    .scaleExtent([1, Math.max(1, n / 6)])
    .extent([
      [0, 0],
      [w, 100],
    ])
    .translateExtent([
      [0, -Infinity],
      [w, Infinity],
    ])
    .filter((event) => (!event.ctrlKey || event.type === 'wheel') && !event.button);
  function apply(t) {
    const x = t.rescaleX(x0);
    onZoom(t.k === 1 ? null : x.domain());
    for (const c of charts) {
      c.overlay.node().__zoom = t;
      c.redraw(x);
    }
  }
  for (const c of charts) c.overlay.style('cursor', 'grab').call(behaviour).on('dblclick.zoom', null);
  behaviour.on('zoom', (event) => apply(event.transform));
  const by = (k) => () => charts[0].overlay.call(behaviour.scaleBy, k, [w / 2, 0]);
  buttons['zoom-in'].on('click', by(2));
  buttons['zoom-out'].on('click', by(0.5));
  buttons['zoom-reset'].on('click', () => charts[0].overlay.call(behaviour.transform, d3.zoomIdentity));
  if (zoom) {
    const [d0, d1] = zoom;
    const k = (x0.domain()[1] - x0.domain()[0]) / (d1 - d0);
    if (Number.isFinite(k) && k > 1) charts[0].overlay.call(behaviour.transform, d3.zoomIdentity.scale(k).translate(-x0(d0), 0));
  }
}

// A chart over channels whose plot is redrawn for a new x (zoom), with the crosshair and
// tooltip of the range chart. Returns { overlay, redraw(x) }.
function channelChart(parent, { width, height, margin, x0, n, yLabel, domain, draw, tip, tipRows, className, rules, lane }) {
  const div = parent
    .append('div')
    .attr('class', `ql-chart ${className}`)
    .attr('data-chart', className.replace(/^ql-cmp-/, ''));
  const f = chartFrame(div.node(), { width, height, margin });
  const y = d3.scaleLinear(domain, [f.height, 0]).nice();
  const axes = drawAxes(f.g, {
    x: x0,
    y,
    width: f.width,
    height: f.height,
    xLabel: 'output channel',
    yLabel,
    xFormat: intTicks,
    xTicks: channelTickCount(x0, f.width),
  });
  if (rules) riskRules(f.g, y, f.width, { outside: true });
  if (lane) {
    f.g
      .append('text')
      .attr('class', 'ql-axis-label')
      .attr('x', -8)
      .attr('y', -14)
      .attr('dy', '0.35em')
      .attr('text-anchor', 'end')
      .text('∞');
  }
  const plot = clipped(f.g, { width: f.width, height: f.height, top: margin.top }).append('g').attr('class', 'ql-cmp-plot');
  f.g.select('.ql-risk-rules').raise();
  let x = x0;
  const overlay = channelHover(f, n, () => x, tip, tipRows).classed('ql-cmp-zoom', true);
  function redraw(nx) {
    x = nx;
    axes.x.call(d3.axisBottom(x).ticks(channelTickCount(x, f.width)).tickFormat(intTicks));
    plot.selectAll('*').remove();
    draw(plot, x, y);
  }
  redraw(x0);
  return { overlay, redraw };
}

// ---------------------------------------------------------------------------
// Layers with no partner on the other side.

function unmatchedSection(parent, cmp) {
  const u = cmp.unmatched || {};
  const sec = parent.append('section').attr('class', 'ql-cmp-section');
  sec.append('h3').text('Layers without a partner');
  const grid = sec.append('div').attr('class', 'ql-cmp-unmatched');
  for (const side of ['a', 'b']) {
    const list = u[side] || [];
    const col = grid.append('div');
    col.append('div').append('b').text(`Only in ${side.toUpperCase()} (${list.length})`);
    if (!list.length) col.append('p').attr('class', 'ql-muted').text('none');
    col
      .append('ul')
      .attr('data-side', side)
      .selectAll('li')
      .data(list)
      .join('li')
      .attr('class', 'ql-cmp-name')
      .text((d) => d);
  }
}
