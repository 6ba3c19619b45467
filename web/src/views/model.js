// The model view: every weight layer in graph order (AIMET's "relative weight ranges
// to identify problematic layers", for the whole model). A chart of the INT8 SQNR per
// layer with the risk thresholds and the outlier channel count per layer, and a table
// that sorts and filters. Clicking (or Enter on) a row or a chart mark calls onSelect.
//
// Contract: table.ql-layer-table; body rows tr[data-position="<position in
// analysis.layers>"]; cells td[data-col="name|op|shape|channels|range|int8PerTensor|
// int8PerChannel|int4PerTensor|int4PerChannel|int4Block32|int4Block128|[int4Block<N>]|
// outliers|risk"] (and "index" for #);
// the outliers cell's text is the count as an integer. Chart marks: g.ql-layer-mark
// [data-position]. Weight nodes the core could not analyse (analysis.skipped, strings
// "name (Op): why") are listed under the header: details.ql-skipped[data-field="skipped"]
// with one li[data-skipped="<k>"] each, whose textContent is the string itself.
// Model strings are written with .text() / textContent only.
import * as d3 from 'd3';
import {
  colors,
  palette,
  formatDb,
  formatNumber,
  formatCount,
  RISK_DB,
  RISK_LEVELS,
  SCHEMES,
  schemeLabel,
  schemeShort,
  schemesOf,
  ensureStyles,
  tooltip,
  observeWidth,
  chartFrame,
  drawAxes,
  legend,
  riskRules,
  layerLabel,
  followerText,
  quantizedText,
  viewRoot,
} from './common.js';
import { riskDbFor, riskOfScheme } from '../presentation.js';
import { nameShortener, subgraphText } from '../names.js';
import { afterByName, layerWhy, schemeVerdicts, verdictText } from '../verdict.js';

const css = `
.ql-model-view .ql-model-head { display: flex; flex-wrap: wrap; align-items: baseline; gap: 4px 16px; }
.ql-model-view .ql-model-head h2 { overflow-wrap: anywhere; }
.ql-model-view .ql-layer-mark { cursor: pointer; }
.ql-model-view .ql-layer-mark.ql-dim { opacity: 0.15; }
.ql-model-view .ql-layer-mark .ql-hit { fill: transparent; }
.ql-model-view .ql-layer-mark:hover .ql-hit, .ql-model-view .ql-layer-mark.ql-selected .ql-hit { fill: rgba(0,114,178,0.10); }
.ql-model-view .ql-filters { display: flex; flex-wrap: wrap; gap: 6px 14px; align-items: center; margin: 10px 0 6px; }
.ql-model-view .ql-filters label { display: inline-flex; gap: 5px; align-items: center; }
.ql-model-view .ql-filters input, .ql-model-view .ql-filters select { font: inherit; padding: 2px 4px; }
.ql-model-view .ql-filters input { width: 16em; }
.ql-model-view .ql-table-wrap { max-height: 70vh; overflow: auto; border: 1px solid var(--ql-v-line); }
.ql-model-view table.ql-layer-table { width: 100%; }
.ql-model-view table.ql-layer-table th[data-sort] { cursor: pointer; user-select: none; }
.ql-model-view table.ql-layer-table th[data-sort]:hover { background: var(--ql-v-hover); }
.ql-model-view table.ql-layer-table th .ql-sort-mark { display: inline-block; width: 1em; color: ${palette.blue}; }
.ql-model-view table.ql-layer-table tbody tr { cursor: pointer; }
.ql-model-view table.ql-layer-table tbody tr:hover { background: var(--ql-v-hover); }
.ql-model-view table.ql-layer-table tbody tr:focus { outline: 2px solid ${palette.blue}; outline-offset: -2px; }
.ql-model-view table.ql-layer-table tbody tr.ql-selected { background: var(--ql-v-selected); }
.ql-model-view table.ql-layer-table th, .ql-model-view table.ql-layer-table td { padding: 3px 6px; }
.ql-model-view table.ql-layer-table td[data-col="name"] { max-width: min(22em, 22vw); overflow: hidden; text-overflow: ellipsis; }
.ql-model-view table.ql-layer-table td.ql-dw::after { content: " dw"; color: var(--ql-v-muted); font-size: 11px; }
.ql-model-view table.ql-layer-table td.ql-low-db { color: ${palette.vermillion}; font-weight: 600; }
.ql-model-view table.ql-layer-table td.ql-error-cell { color: var(--ql-v-bad); }
.ql-model-view .ql-verdict { display: flex; flex-wrap: wrap; gap: 4px 12px; align-items: baseline; margin: 6px 0; padding: 6px 10px; background: var(--ql-v-panel); border-left: 4px solid ${palette.blue}; }
.ql-model-view .ql-verdict-list { display: inline; }
.ql-model-view .ql-verdict-item { margin-right: 6px; }
.ql-model-view .ql-verdict-item.ql-current { font-weight: 600; }
.ql-model-view table.ql-layer-table td[data-col="why"] { min-width: 16em; max-width: 30em; white-space: normal; color: var(--ql-v-text2); font-size: 12px; }
/* The why line wraps in its column and shows two lines at most; the whole line on hover (title) and in the layer view. */
.ql-model-view table.ql-layer-table td[data-col="why"] .ql-why-text { display: -webkit-box; -webkit-box-orient: vertical; -webkit-line-clamp: 2; line-clamp: 2; overflow: hidden; }
.ql-model-view .ql-skipped { margin: 8px 0 10px; padding: 6px 12px; border-left: 4px solid ${palette.orange}; background: var(--ql-v-warn-bg); border-radius: 0 4px 4px 0; }
.ql-model-view .ql-skipped summary { cursor: pointer; }
.ql-model-view .ql-skipped summary strong { font-weight: 600; }
.ql-model-view .ql-skipped ul { margin: 6px 0 2px; padding-left: 1.4em; max-height: 16em; overflow: auto; }
.ql-model-view .ql-skipped li { margin: 1px 0; overflow-wrap: anywhere; }
.ql-model-view .ql-skipped li code { font: 12px/1.4 ui-monospace, SFMono-Regular, Menlo, Consolas, monospace; background: var(--ql-v-bg); padding: 0 3px; border-radius: 3px; }
`;

// "name (Op): why" -> [name, op, why] for display (the first " (Op): "); null when the
// string has another shape. The parts joined back are the string itself.
function splitSkipped(text) {
  const m = /^([\s\S]*?) \(([A-Za-z_][\w.]*)\): ([\s\S]*)$/.exec(String(text));
  return m ? [m[1], m[2], m[3]] : null;
}

// The notice of weight nodes not analysed: a summary line with the count, then each node
// and why (open when there are a few). Nothing when there are none.
function skippedNotice(parent, skipped) {
  if (!skipped || !skipped.length) return null;
  const n = skipped.length;
  const box = parent
    .append('details')
    .attr('class', 'ql-skipped')
    .attr('data-field', 'skipped')
    .property('open', n <= 5);
  const summary = box.append('summary');
  summary
    .append('strong')
    .attr('data-field', 'skipped-count')
    .text(`${n} weight ${n === 1 ? 'node' : 'nodes'} not analysed`);
  summary
    .append('span')
    .attr('class', 'ql-muted')
    .text(` — ${n === 1 ? 'it is' : 'they are'} not in the chart or the table below. Why, for each:`);
  const items = box
    .append('ul')
    .selectAll('li')
    .data(skipped)
    .join('li')
    .attr('data-skipped', (d, k) => k);
  items.each(function (d) {
    const li = d3.select(this);
    const parts = splitSkipped(d);
    if (!parts) {
      li.text(String(d));
      return;
    }
    li.append('code').text(parts[0]);
    li.append('span').attr('class', 'ql-muted').text(` (${parts[1]}): `);
    li.append('span').text(parts[2]);
  });
  return box;
}

// Table columns: key (data-col), header, numeric?, value for sorting, text for the cell.
const dbValue = (l, k) => (l.error || !l.sqnr ? NaN : l.sqnr[k]);
// `risk(l)` is the level under the chosen scheme, `why(l)` its one-line reason.
const layerColumns = (schemes, { risk, why, subgraphs }) => [
  { key: 'index', head: '#', num: true, value: (l, p) => p, text: (l, p) => String(p + 1) },
  { key: 'name', head: 'name', value: (l) => layerLabel(l).toLowerCase(), text: (l) => l.name },
  ...(subgraphs
    ? [
        {
          key: 'graph',
          head: 'graph',
          title: 'the graph the layer is in: main, or a sub-graph (If branch, Loop body)',
          value: (l) => l.path || '',
          text: (l) => (l.path ? subgraphText(l).slice(3) : 'main'),
        },
      ]
    : []),
  { key: 'op', head: 'op', value: (l) => l.op, text: (l) => l.op },
  {
    key: 'shape',
    head: 'shape',
    value: (l) => (l.shape || []).reduce((a, b) => a * b, 1),
    text: (l) => (l.shape || []).join('×'),
  },
  {
    key: 'channels',
    head: 'channels',
    num: true,
    value: (l) => channelCount(l),
    text: (l) => (Number.isFinite(channelCount(l)) ? String(channelCount(l)) : ''),
  },
  {
    key: 'range',
    head: 'range (min..max)',
    title: 'weight range of the whole tensor; sorts by max − min',
    num: true,
    value: (l) => (l.tensor ? l.tensor.max - l.tensor.min : NaN),
    text: (l) => (l.tensor ? `${formatNumber(l.tensor.min)}..${formatNumber(l.tensor.max)}` : ''),
  },
  ...schemes.map((k) => ({
    key: k,
    head: schemeShort(k),
    title: `${schemeLabel(k)} weight SQNR (dB, higher is better)`,
    num: true,
    value: (l) => dbValue(l, k),
    text: (l) => (l.error ? '' : formatDb(dbValue(l, k))),
  })),
  {
    key: 'outliers',
    head: 'outlier ch.',
    title: "outlier channels (AIMET's Q3 + 1.5 IQR rule on relative ranges)",
    num: true,
    value: (l) => (l.outlierChannels ? l.outlierChannels.length : NaN),
    text: (l) => (l.outlierChannels ? String(l.outlierChannels.length) : ''),
  },
  { key: 'risk', head: 'risk', value: (l) => RISK_LEVELS.indexOf(risk(l)), text: (l) => risk(l) },
  {
    key: 'why',
    head: 'why',
    title: 'why the layer is at risk under the chosen scheme, and what to do (from the numbers)',
    value: (l) => why(l),
    text: (l) => why(l),
  },
];

const schemeColor = (k) => colors.schemes[k] ?? palette.grey;

// The pairs of schemes the chart can draw, first the default (INT8 per-tensor, then per-channel).
function chartPairs(schemes) {
  const pairs = [
    ['int8PerTensor', 'int8PerChannel'],
    ['int4PerTensor', 'int4PerChannel'],
    ['int4PerChannel', 'int4Block128'],
    ['int4PerChannel', 'int4Block32'],
  ];
  for (const k of schemes.slice(SCHEMES.length)) pairs.push(['int4PerChannel', k]);
  return pairs;
}

function channelCount(l) {
  if (l.channels && typeof l.channels === 'object') return l.channels.count;
  return typeof l.channels === 'number' ? l.channels : NaN;
}

// Ascending compare with NaN (missing) last whatever the direction.
function compareBy(col, dir, layers) {
  return (a, b) => {
    const va = col.value(layers[a], a);
    const vb = col.value(layers[b], b);
    const na = typeof va === 'number' && Number.isNaN(va);
    const nb = typeof vb === 'number' && Number.isNaN(vb);
    if (na || nb) return na === nb ? a - b : na ? 1 : -1;
    const c = va < vb ? -1 : va > vb ? 1 : 0;
    return c * dir || a - b;
  };
}

// ---------------------------------------------------------------------------
// Chart: per layer, INT8 per-tensor and per-channel SQNR (dots joined by a line: the
// gain per-channel scales buy), risk thresholds as rules; below, the outlier channel
// count per layer as bars coloured by risk.
function drawChart(container, analysis, { width, onSelect, tip, state, slots = 0 }) {
  const riskOf = (l) => riskOfScheme(l, state.scheme);
  const layers = analysis.layers;
  const n = layers.length;
  container.replaceChildren();
  if (!n) return null;
  // Room on the x axis for `slots` layers when more are coming (layers drawn as they arrive).
  const m = Math.max(n, slots);
  const margin = { top: 12, right: 56, bottom: 40, left: 62 };
  const topH = Math.round(Math.max(200, Math.min(320, width * 0.22)));
  const gap = 30;
  const botH = 90;
  const frame = chartFrame(container, { width, height: margin.top + topH + gap + botH + margin.bottom, margin });
  // The two schemes drawn (state.pair): a dot each, joined by a line (what the second buys).
  const [ka, kb] = state.pair;
  frame.svg
    .attr('role', 'img')
    .attr('aria-label', `${schemeLabel(ka)} and ${schemeLabel(kb)} weight SQNR and outlier channels per layer`);
  const g = frame.g;
  const x = d3
    .scaleBand()
    .domain(d3.range(m))
    .range([0, frame.width])
    .paddingInner(m > 200 ? 0 : 0.25)
    .paddingOuter(0.2);
  const finite = [];
  for (const l of layers) {
    if (l.error || !l.sqnr) continue;
    for (const k of [ka, kb]) if (Number.isFinite(l.sqnr[k])) finite.push(l.sqnr[k]);
  }
  // Dots, not bars: the axis need not start at 0; it shows the high-risk rule and below.
  const t = riskDbFor(state.scheme);
  const lo = Math.min(t.high - 6, (d3.min(finite) ?? t.high) - 3);
  const hi = Math.max(t.medium + 10, (d3.max(finite) ?? 50) + 4);
  const y = d3.scaleLinear().domain([lo, hi]).nice().range([topH, 0]);
  const yDb = (v) => (v === Infinity ? y.range()[1] : y(Math.max(y.domain()[0], Math.min(y.domain()[1], v))));

  const tickEvery = Math.max(1, Math.ceil(m / Math.max(2, Math.floor(frame.width / 36))));
  const xTicks = d3.range(0, m, tickEvery);
  // Upper panel (SQNR).
  const top = g.append('g').attr('class', 'ql-panel-sqnr');
  drawAxes(top, { x, y, width: frame.width, height: topH, yLabel: 'weight SQNR (dB)', xFormat: () => '' });
  top.select('.ql-axis-x').call((a) => a.selectAll('.tick').remove());
  riskRules(top, y, frame.width, { outside: true, thresholds: riskDbFor(state.scheme) }); // the chosen scheme's
  // Lower panel (outlier counts).
  const counts = layers.map((l) => (l.outlierChannels ? l.outlierChannels.length : 0));
  const yb = d3
    .scaleLinear()
    .domain([0, Math.max(1, d3.max(counts))])
    .nice()
    .range([botH, 0]);
  const bottom = g
    .append('g')
    .attr('class', 'ql-panel-outliers')
    .attr('transform', `translate(0,${topH + gap})`);
  drawAxes(bottom, {
    x,
    y: yb,
    width: frame.width,
    height: botH,
    yTicks: 3,
    xLabel: 'layer # (graph order)',
    yLabel: 'outlier ch.',
    xFormat: (d) => String(d + 1),
  });
  bottom.select('.ql-axis-x').call(
    d3
      .axisBottom(x)
      .tickValues(xTicks)
      .tickFormat((d) => String(d + 1)),
  );

  const bw = x.bandwidth();
  const cx = (p) => x(p) + bw / 2;
  const r = Math.max(2, Math.min(5, bw / 2.5));
  const marks = g
    .append('g')
    .attr('class', 'ql-marks')
    .selectAll('g')
    .data(d3.range(n))
    .join('g')
    .attr('class', 'ql-layer-mark')
    .attr('data-position', (p) => p)
    .attr('data-risk', (p) => riskOf(layers[p]));
  // A hit area covering both panels for the whole band.
  marks
    .append('rect')
    .attr('class', 'ql-hit')
    .attr('x', (p) => x(p) - (x.step() - bw) / 2)
    .attr('width', x.step())
    .attr('y', 0)
    .attr('height', topH + gap + botH);
  marks.each(function (p) {
    const l = layers[p];
    const m = d3.select(this);
    const risk = riskOf(l);
    if (risk === 'failed') {
      m.append('text')
        .attr('x', cx(p))
        .attr('y', topH - 4)
        .attr('text-anchor', 'middle')
        .attr('font-size', 12)
        .attr('fill', colors.risk.failed)
        .text('×');
      return;
    }
    const t = l.sqnr[ka];
    const c = l.sqnr[kb];
    const shown = (v) => Number.isFinite(v) || v === Infinity; // Infinity (lossless) sits at the top
    if (shown(t) && shown(c)) {
      m.append('line')
        .attr('x1', cx(p))
        .attr('x2', cx(p))
        .attr('y1', yDb(t))
        .attr('y2', yDb(c))
        .attr('stroke', '#999')
        .attr('stroke-width', 1);
    }
    if (shown(c)) {
      m.append('circle')
        .attr('class', `ql-dot-${kb}`)
        .attr('cx', cx(p))
        .attr('cy', yDb(c))
        .attr('r', r)
        .attr('fill', schemeColor(kb));
    }
    if (shown(t)) {
      m.append('circle')
        .attr('class', `ql-dot-${ka}`)
        .attr('cx', cx(p))
        .attr('cy', yDb(t))
        .attr('r', r + 0.5)
        .attr('fill', schemeColor(ka))
        .attr('stroke', '#fff')
        .attr('stroke-width', 0.8);
    }
    const cnt = counts[p];
    if (cnt > 0) {
      m.append('rect')
        .attr('class', 'ql-outlier-bar')
        .attr('x', x(p))
        .attr('width', Math.max(1, bw))
        .attr('y', topH + gap + yb(cnt))
        .attr('height', botH - yb(cnt))
        .attr('fill', colors.risk[risk]);
    }
  });
  marks
    .on('click', (event, p) => onSelect(p))
    .on('mouseenter mousemove', (event, p) => {
      const l = layers[p];
      const rows = [
        ['op', l.op + (l.depthwise ? ' (depthwise)' : '')],
        ['shape', (l.shape || []).join('×')],
      ];
      if (l.error) rows.push(['error', l.error.message ?? l.error.code]);
      else {
        for (const k of schemesOf(analysis)) rows.push([`${schemeShort(k)} (dB)`, formatDb(l.sqnr[k])]);
        rows.push(['outlier channels', `${l.outlierChannels.length} of ${l.channels.count}`]);
        rows.push(['range', `${formatNumber(l.tensor.min)}..${formatNumber(l.tensor.max)}`]);
        const f = followerText(l);
        if (f) rows.push(['then', f]);
      }
      rows.push(['risk', riskOf(l)]);
      tip.show(event, `#${p + 1} ${layerLabel(l)}`, rows);
    })
    .on('mouseleave', () => tip.hide());
  function update() {
    marks.classed('ql-dim', (p) => !state.visible.has(p)).classed('ql-selected', (p) => p === state.selected);
  }
  update();
  return { update };
}

// ---------------------------------------------------------------------------
// options: onSelect(position); slots (while layers are still arriving, how many there will
// be: the chart keeps room for them, so that it fills in from the left rather than
// rescaling); scheme (the scheme that drives risk colours, counts and sort, default INT8
// per-tensor) and onScheme(scheme) when the user picks another; equalization (the
// equalize() result, when run: the verdict says what CLE brings, and each why line);
// selected (a position marked as selected when drawn, as a layer chosen in another view);
// view (what the user chose in an earlier rendering of this view, from its viewState():
// sort, filters, chart pair, the control with focus and its caret, the table's scroll):
// the view is drawn as it was left, whatever layers it shows now (as layers arrive).
export function renderModelView(
  element,
  analysis,
  { onSelect, slots, scheme = 'int8PerTensor', onScheme, equalization = null, selected = -1, view = null } = {},
) {
  ensureStyles('ql-model-view', css, element.ownerDocument);
  const layers = analysis.layers || [];
  const schemes = schemesOf(analysis);
  const after = afterByName(equalization);
  const names = nameShortener(layers.map((l) => l.name));
  const riskOf = (l) => riskOfScheme(l, state.scheme);
  const whyCache = new Map();
  const why = (l) => {
    const key = `${state.scheme}\u0000${layers.indexOf(l)}`;
    if (!whyCache.has(key)) whyCache.set(key, layerWhy(l, state.scheme, { after: after.get(l.name) }).text);
    return whyCache.get(key);
  };
  const columns = layerColumns(schemes, { risk: (l) => riskOf(l), why, subgraphs: layers.some((l) => l.path) });
  const root = viewRoot(element, 'ql-model-view');
  const tip = tooltip(root);
  const was = view && typeof view === 'object' ? view : {};
  const state = {
    sort:
      was.sort && columns.some((c) => c.key === was.sort.key) && (was.sort.dir === 1 || was.sort.dir === -1)
        ? { key: was.sort.key, dir: was.sort.dir }
        : { key: 'index', dir: 1 },
    text: typeof was.text === 'string' ? was.text : '',
    op: typeof was.op === 'string' ? was.op : '',
    risk: RISK_LEVELS.includes(was.risk) ? was.risk : '',
    selected: Number.isInteger(selected) ? selected : -1,
    visible: new Set(d3.range(layers.length)),
    pair: ['int8PerTensor', 'int8PerChannel'],
    scheme: schemes.includes(scheme) ? scheme : 'int8PerTensor',
  };
  const select = (p) => {
    state.selected = p;
    rowSel.classed('ql-selected', (q) => q === p).attr('aria-selected', (q) => String(q === p));
    if (chart) chart.update();
    if (typeof onSelect === 'function') onSelect(p);
  };

  // Header.
  const R = d3.select(root);
  const head = R.append('div').attr('class', 'ql-model-head');
  const m = analysis.model || {};
  head.append('h2').text(m.name || 'model');
  const s = analysis.summary || {};
  const producer = [m.producer, m.producerVersion].filter(Boolean).join(' ');
  head
    .append('span')
    .attr('class', 'ql-muted')
    .text(
      `${producer ? `${producer}; ` : ''}${s.layers ?? layers.length} weight layers, ${formatCount(s.parameters ?? 0)} parameters; ` +
        `${s.layersWithOutliers ?? 0} layers with outlier channels (${s.outlierChannels ?? 0} channels)` +
        (s.failed ? `; ${s.failed} failed` : '') +
        (quantizedText(s.quantized) ? `; ${quantizedText(s.quantized)}` : ''),
    );
  const countsText = () => {
    const counts = d3.rollup(layers, (v) => v.length, riskOf);
    return `${RISK_LEVELS.filter((k) => counts.get(k))
      .map((k) => `${counts.get(k)} ${k}`)
      .join(', ')} under ${schemeLabel(state.scheme)}`;
  };
  const countsEl = head.append('span').attr('class', 'ql-muted').attr('data-field', 'risk-counts').text(countsText());

  skippedNotice(R, analysis.skipped);

  // The verdict per scheme, and the scheme that drives risk colours, counts and sort.
  const verdict = R.append('div').attr('class', 'ql-verdict');
  const schemeLabelEl = verdict.append('label').attr('class', 'ql-scheme-choice');
  schemeLabelEl.append('span').text('scheme ');
  const schemeSelect = schemeLabelEl
    .append('select')
    .attr('class', 'ql-scheme')
    .attr('data-action', 'scheme')
    .attr('aria-label', 'the quantization scheme risk is judged under');
  schemeSelect
    .selectAll('option')
    .data(schemes)
    .join('option')
    .attr('value', (k) => k)
    .property('selected', (k) => k === state.scheme)
    .text((k) => schemeLabel(k));
  const verdicts = schemeVerdicts(analysis, { equalization });
  const vlist = verdict.append('span').attr('class', 'ql-verdict-list').attr('data-field', 'verdict');
  verdicts.forEach((v, i) => {
    const item = vlist
      .append('span')
      .attr('class', 'ql-verdict-item')
      .attr('data-scheme', v.scheme)
      .attr('data-below', v.below)
      .attr('data-after-cle', v.afterCle === null ? null : v.afterCle);
    item.text(`${verdictText([v])}${i < verdicts.length - 1 ? ';' : ''}`);
  });

  if (!layers.length) {
    R.append('p').text(
      analysis.skipped && analysis.skipped.length
        ? 'No weight layer could be analysed.'
        : 'No weight-carrying layers (Conv, ConvTranspose, Gemm, MatMul with a constant weight) found.',
    );
  }

  // Chart and legend; which two schemes the chart draws (select.ql-chart-schemes, values
  // "<first>,<second>").
  const pairs = chartPairs(schemes);
  if (Array.isArray(was.pair) && pairs.some((q) => q.join(',') === was.pair.join(','))) state.pair = [...was.pair];
  const pairLabel = R.append('label').attr('class', 'ql-chart-choice');
  pairLabel.append('span').text('chart ');
  const pairSelect = pairLabel
    .append('select')
    .attr('class', 'ql-chart-schemes')
    .attr('aria-label', 'the two schemes the chart draws');
  pairSelect
    .selectAll('option')
    .data(pairs)
    .join('option')
    .attr('value', (d) => d.join(','))
    .text(([a, b]) => `${schemeLabel(a)} and ${schemeLabel(b)}`);
  pairSelect.property('value', state.pair.join(','));
  // The risk rules' legend, for the chosen scheme (INT4 thresholds are lower: presentation.js).
  function thresholdLabels() {
    const t = riskDbFor(state.scheme);
    const db = (x) => String(Number(x.toFixed(1)));
    return [`high risk (< ${db(t.high)} dB ${schemeLabel(state.scheme)})`, `medium (< ${db(t.medium)} dB or outlier channels)`];
  }
  const pairLegend = legend(root, [
    { label: `${schemeLabel(state.pair[0])} SQNR`, color: schemeColor(state.pair[0]), kind: 'dot' },
    { label: `${schemeLabel(state.pair[1])} SQNR`, color: schemeColor(state.pair[1]), kind: 'dot' },
    { label: thresholdLabels()[0], color: colors.risk.high, kind: 'dash' },
    { label: thresholdLabels()[1], color: colors.risk.medium, kind: 'dash' },
  ]);
  legend(root, [
    { label: 'outlier channels per layer (lower panel), bar colour = risk:', color: 'none', kind: 'none' },
    ...['high', 'medium', 'low'].map((k) => ({ label: k, color: colors.risk[k], kind: 'square' })),
  ]);
  const chartDiv = R.append('div').attr('class', 'ql-chart').attr('data-chart', 'layers').node();
  let chart = null;

  // Filters.
  const filters = R.append('div').attr('class', 'ql-filters');
  const textLabel = filters.append('label');
  textLabel.append('span').text('name');
  const textInput = textLabel
    .append('input')
    .attr('type', 'search')
    .attr('class', 'ql-filter-name')
    .attr('placeholder', 'filter by name')
    .attr('aria-label', 'filter layers by name');
  const opLabel = filters.append('label');
  opLabel.append('span').text('op');
  const opSelect = opLabel.append('select').attr('class', 'ql-filter-op').attr('aria-label', 'filter by op type');
  // the op chosen stays offered while no layer of it has arrived yet
  const ops = [...new Set([...layers.map((l) => l.op), ...(state.op ? [state.op] : [])])].sort();
  opSelect
    .selectAll('option')
    .data(['', ...ops])
    .join('option')
    .attr('value', (d) => d)
    .text((d) => (d ? d : 'all ops'));
  opSelect.property('value', state.op);
  const riskLabel = filters.append('label');
  riskLabel.append('span').text('risk');
  const riskSelect = riskLabel.append('select').attr('class', 'ql-filter-risk').attr('aria-label', 'filter by risk');
  riskSelect
    .selectAll('option')
    .data(['', ...RISK_LEVELS])
    .join('option')
    .attr('value', (d) => d)
    .text((d) => (d ? d : 'any risk'));
  riskSelect.property('value', state.risk);
  textInput.property('value', state.text);
  const shown = filters.append('span').attr('class', 'ql-muted').attr('data-field', 'shown');

  // Table.
  const wrap = R.append('div').attr('class', 'ql-table-wrap');
  const table = wrap.append('table').attr('class', 'ql-table ql-layer-table');
  table
    .append('caption')
    .attr('class', 'ql-muted')
    .style('caption-side', 'bottom')
    .style('text-align', 'left')
    .style('padding', '4px 8px')
    .text(
      'SQNR in dB of the weights fake-quantized symmetrically (higher is better): /T one scale per tensor, /C one scale per output channel, ' +
        '/B32 one INT4 scale per block of 32 weights along the reduction axis of an output channel. ' +
        "Outlier channels: AIMET's Q3 + 1.5 IQR rule on relative channel ranges. Click or press Enter on a row to open the layer.",
    );
  const ths = table
    .append('thead')
    .append('tr')
    .selectAll('th')
    .data(columns)
    .join('th')
    .attr('scope', 'col')
    .attr('data-sort', (c) => c.key)
    .attr('tabindex', 0)
    .attr('title', (c) => c.title || `sort by ${c.head}`)
    .classed('ql-num', (c) => !!c.num);
  ths.append('span').text((c) => c.head);
  ths.append('span').attr('class', 'ql-sort-mark').attr('aria-hidden', 'true');
  const sortBy = (c) => {
    state.sort =
      state.sort.key === c.key
        ? { key: c.key, dir: -state.sort.dir }
        : { key: c.key, dir: c.num && c.key !== 'index' && !schemes.includes(c.key) ? -1 : 1 };
    refresh();
  };
  ths
    .on('click', (event, c) => sortBy(c))
    .on('keydown', (event, c) => {
      if (event.key === 'Enter' || event.key === ' ') {
        event.preventDefault();
        sortBy(c);
      }
    });
  const tbody = table.append('tbody');
  const rowSel = tbody
    .selectAll('tr')
    .data(d3.range(layers.length))
    .join('tr')
    .attr('data-position', (p) => p)
    .attr('data-risk', (p) => riskOf(layers[p]))
    .attr('tabindex', 0)
    .classed('ql-selected', (p) => p === state.selected)
    .attr('aria-selected', (p) => String(p === state.selected));
  rowSel.each(function (p) {
    const l = layers[p];
    const tr = d3.select(this);
    for (const c of columns) {
      const td = tr.append('td').attr('data-col', c.key).classed('ql-num', !!c.num);
      if (c.key === 'risk') {
        const rk = riskOf(l);
        td.append('span').attr('class', `ql-risk ql-risk-${rk}`).text(rk);
      } else if (l.error && c.key === 'int8PerTensor') {
        td.attr('class', 'ql-error-cell')
          .attr('colspan', 1)
          .text(l.error.code || 'error')
          .attr('title', l.error.message || '');
      } else if (c.key === 'name') {
        // Without the prefix every layer shares; the full name on hover and in data-name.
        td.text(names.short(l.name)).attr('data-name', l.name);
      } else if (c.key === 'why') {
        td.append('span').attr('class', 'ql-why-text').text(c.text(l, p));
      } else {
        td.text(c.text(l, p));
      }
      if (c.key === 'name') td.attr('title', layerLabel(l));
      if (c.key === 'why') td.attr('title', c.text(l, p));
      if (c.key === 'op' && l.depthwise) td.classed('ql-dw', true).attr('title', 'depthwise');
      if (c.key === 'int8PerTensor' && !l.error && l.sqnr && l.sqnr.int8PerTensor < RISK_DB.high) td.classed('ql-low-db', true);
    }
  });
  rowSel
    .on('click', (event, p) => select(p))
    .on('keydown', (event, p) => {
      if (event.key === 'Enter' || event.key === ' ') {
        event.preventDefault();
        select(p);
      } else if (event.key === 'ArrowDown' || event.key === 'ArrowUp') {
        event.preventDefault();
        const sib = event.key === 'ArrowDown' ? nextVisibleRow(event.currentTarget, 1) : nextVisibleRow(event.currentTarget, -1);
        if (sib) sib.focus();
      }
    });
  function nextVisibleRow(tr, dir) {
    let t = dir > 0 ? tr.nextElementSibling : tr.previousElementSibling;
    while (t && t.hidden) t = dir > 0 ? t.nextElementSibling : t.previousElementSibling;
    return t;
  }

  function refresh() {
    const text = state.text.toLowerCase();
    state.visible = new Set(
      d3.range(layers.length).filter((p) => {
        const l = layers[p];
        if (text && !layerLabel(l).toLowerCase().includes(text)) return false;
        if (state.op && l.op !== state.op) return false;
        if (state.risk && riskOf(l) !== state.risk) return false;
        return true;
      }),
    );
    rowSel.property('hidden', (p) => !state.visible.has(p));
    const col = columns.find((c) => c.key === state.sort.key);
    const order = d3.range(layers.length).sort(compareBy(col, state.sort.dir, layers));
    const nodes = rowSel.nodes();
    for (const p of order) tbody.node().appendChild(nodes[p]);
    ths.attr('aria-sort', (c) => (c.key === state.sort.key ? (state.sort.dir > 0 ? 'ascending' : 'descending') : 'none'));
    ths.select('.ql-sort-mark').text((c) => (c.key === state.sort.key ? (state.sort.dir > 0 ? '▲' : '▼') : ''));
    shown.text(`${state.visible.size} of ${layers.length} layers`);
    if (chart) chart.update();
  }
  textInput.on('input', (event) => {
    state.text = event.target.value;
    refresh();
  });
  opSelect.on('change', (event) => {
    state.op = event.target.value;
    refresh();
  });
  riskSelect.on('change', (event) => {
    state.risk = event.target.value;
    refresh();
  });
  refresh();

  let chartWidth = 360;
  pairSelect.on('change', (event) => {
    state.pair = event.target.value.split(',');
    pairLegend
      .selectAll('.ql-legend-item')
      .filter((d, i) => i < 2)
      .each(function (d, i) {
        const item = d3.select(this);
        item.select('circle').attr('fill', schemeColor(state.pair[i]));
        item.select(':scope > span').text(`${schemeLabel(state.pair[i])} SQNR`);
      });
    chart = drawChart(chartDiv, analysis, { width: chartWidth, onSelect: select, tip, state, slots });
  });

  // Another scheme: risk badges, row colours, the why lines, the counts, the risk filter and
  // sort, and the chart's colours follow it.
  function applyScheme() {
    rowSel.attr('data-risk', (p) => riskOf(layers[p]));
    rowSel.each(function (p) {
      const l = layers[p];
      const tr = d3.select(this);
      const rk = riskOf(l);
      tr.select('td[data-col="risk"] span').attr('class', `ql-risk ql-risk-${rk}`).text(rk);
      const w = tr.select('td[data-col="why"]');
      if (!w.empty()) w.attr('title', why(l)).select('.ql-why-text').text(why(l));
    });
    countsEl.text(countsText());
    vlist.selectAll('.ql-verdict-item').classed('ql-current', function () {
      return this.dataset.scheme === state.scheme;
    });
    pairLegend
      .selectAll('.ql-legend-item')
      .filter((d, i) => i === 2 || i === 3)
      .each(function (d, i) {
        d3.select(this).select(':scope > span').text(thresholdLabels()[i]);
      });
    refresh();
    chart = drawChart(chartDiv, analysis, { width: chartWidth, onSelect: select, tip, state, slots });
  }
  schemeSelect.on('change', (event) => {
    state.scheme = event.target.value;
    // The chart draws a pair with the chosen scheme in it (the first that has it).
    const pair = pairs.find((q) => q.includes(state.scheme));
    if (pair && !state.pair.includes(state.scheme)) {
      pairSelect.property('value', pair.join(','));
      pairSelect.dispatch('change');
    }
    applyScheme();
    if (typeof onScheme === 'function') onScheme(state.scheme);
  });
  vlist.selectAll('.ql-verdict-item').classed('ql-current', function () {
    return this.dataset.scheme === state.scheme;
  });

  const resize = observeWidth(root, (w) => {
    chartWidth = Math.max(360, w);
    chart = drawChart(chartDiv, analysis, { width: chartWidth, onSelect: select, tip, state, slots });
  });

  // As it was left: the table's scroll, then the control that had focus (the caret too).
  const wrapNode = wrap.node();
  const scroll = was.scroll && typeof was.scroll === 'object' ? was.scroll : { top: 0, left: 0 };
  if (scroll.top || scroll.left) {
    wrapNode.scrollTop = scroll.top || 0;
    wrapNode.scrollLeft = scroll.left || 0;
  }
  const focused = focusTarget(was.focus);
  if (focused) {
    focused.focus({ preventScroll: true });
    if (focused === textInput.node() && Number.isInteger(was.focus.start)) {
      focused.setSelectionRange(was.focus.start, was.focus.end ?? was.focus.start, was.focus.direction || 'none');
    }
  }
  function focusTarget(f) {
    if (!f || typeof f !== 'object') return null;
    if (f.on === 'text') return textInput.node();
    if (f.on === 'select')
      return { op: opSelect, risk: riskSelect, scheme: schemeSelect, pair: pairSelect }[f.which]?.node() || null;
    if (f.on === 'sort') return ths.nodes().find((th) => th.dataset.sort === f.key) || null;
    if (f.on === 'row') return rowSel.nodes().find((tr) => layers[Number(tr.dataset.position)]?.name === f.name) || null;
    return null;
  }
  // What the user chose, for a later rendering of this view (the `view` option).
  function viewState() {
    const active = root.ownerDocument.activeElement;
    let focus = null;
    if (active && root.contains(active)) {
      if (active === textInput.node())
        focus = { on: 'text', start: active.selectionStart, end: active.selectionEnd, direction: active.selectionDirection };
      else if (active === opSelect.node()) focus = { on: 'select', which: 'op' };
      else if (active === riskSelect.node()) focus = { on: 'select', which: 'risk' };
      else if (active === schemeSelect.node()) focus = { on: 'select', which: 'scheme' };
      else if (active === pairSelect.node()) focus = { on: 'select', which: 'pair' };
      else if (active.matches('th[data-sort]')) focus = { on: 'sort', key: active.dataset.sort };
      else if (active.matches('tr[data-position]'))
        focus = { on: 'row', name: layers[Number(active.dataset.position)]?.name ?? null };
    }
    // a hidden table has no scroll to read: the one it was drawn with stays
    const laidOut = wrapNode.isConnected && wrapNode.getClientRects().length > 0;
    return {
      sort: { ...state.sort },
      text: state.text,
      op: state.op,
      risk: state.risk,
      pair: [...state.pair],
      focus,
      scroll: laidOut ? { top: wrapNode.scrollTop, left: wrapNode.scrollLeft } : { ...scroll },
    };
  }

  return {
    root,
    viewState,
    destroy() {
      resize.disconnect();
      tip.destroy();
      root.remove();
    },
  };
}
