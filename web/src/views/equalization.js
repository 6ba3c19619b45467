// The equalization view: what Cross Layer Equalization changed (AIMET's
// visualize_changes_after_optimization, for the result of equalize()).
//
//   renderEqualizationView(element, equalization, { onDownload }) -> { destroy() }
//
// Contract (tests rely on it):
//   root                      div.ql-view.ql-equalization
//   summary counts            [data-field="layers-changed"] (also sequences, batchnorms-folded,
//                             relu6-replaced, bias-absorptions, dead-channels) with the count as text
//   per-layer SQNR chart      g.ql-eq-sqnr-row[data-layer][data-after] (data-after: INT8 per-tensor SQNR
//                             after, as a number; also data-before, data-before-int4, data-after-int4)
//   layer picker              select[data-action="select-layer"]
//   download                  button[data-action="download-equalized"], only when onDownload is given
//                             and something changed; it calls onDownload() (its text names the data
//                             file too when the model has external data: dataName)
//   stops                     [data-stop] per stop, its text contains the reason
//   sequences                 li[data-sequence]
// Every string from the model (layer, node, model names) is written with textContent.
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
  viewRoot,
  RISK_DB,
  channelHover,
  channelTickCount,
  finiteExtent,
  intTicks,
} from './common.js';
import { channelRangeChart } from './channel-range.js';
import { clipMiddle, fitText, srOnly } from './text.js';
import { cleOptionsText, cleWorst, stopReasonKey, thresholdText } from '../verdict.js';
import { nameShortener } from '../names.js';
import { riskDbFor } from '../presentation.js';

const CSS = `
.ql-equalization .ql-eq-head { display: flex; flex-wrap: wrap; align-items: center; gap: 6px 16px; }
.ql-equalization .ql-eq-head h2 { margin-right: auto; overflow-wrap: anywhere; }
.ql-equalization .ql-eq-summary { margin: 2px 0 4px; max-width: 110ch; }
.ql-equalization .ql-eq-summary b { font-variant-numeric: tabular-nums; }
.ql-equalization .ql-eq-nothing { font-size: 14px; padding: 8px 10px; background: var(--ql-v-head); border-left: 4px solid ${palette.grey}; }
.ql-equalization button, .ql-equalization select { font: inherit; }
.ql-equalization .ql-eq-download { padding: 5px 12px; border: 1px solid ${palette.blue}; background: ${palette.blue}; color: #fff; border-radius: 4px; cursor: pointer; font-weight: 600; }
.ql-equalization .ql-eq-download:hover { background: #005a8c; }
.ql-equalization :focus-visible { outline: 2px solid ${palette.orange}; outline-offset: 2px; }
.ql-equalization .ql-eq-grid { display: grid; gap: 12px 28px; align-items: start; }
.ql-equalization .ql-eq-panel { min-width: 0; }
.ql-equalization .ql-eq-controls { display: flex; flex-wrap: wrap; gap: 6px 12px; align-items: center; margin: 2px 0 4px; }
.ql-equalization .ql-eq-controls select { max-width: 100%; }
.ql-equalization .ql-eq-scroll { max-height: clamp(360px, calc(100vh - 240px), 900px); overflow-y: auto; overflow-x: hidden; border-top: 1px solid var(--ql-v-line); border-bottom: 1px solid var(--ql-v-line); }
.ql-equalization .ql-eq-sqnr-row { cursor: pointer; }
.ql-equalization .ql-eq-sqnr-row text { font-size: 11.5px; fill: var(--ql-v-fg); }
.ql-equalization .ql-eq-sqnr-row:hover .ql-eq-row-bg { fill: var(--ql-v-head); }
.ql-equalization .ql-eq-sqnr-row.ql-selected .ql-eq-row-bg { fill: var(--ql-v-selected); }
.ql-equalization .ql-eq-sqnr-row.ql-selected text { font-weight: 600; }
.ql-equalization .ql-eq-meta { margin: 0 0 4px; overflow-wrap: anywhere; }
.ql-equalization table.ql-table { margin: 4px 0 6px; }
.ql-equalization .ql-eq-better { color: var(--ql-v-good); }
.ql-equalization .ql-eq-worse { color: var(--ql-v-bad); font-weight: 600; }
.ql-equalization .ql-eq-note { font-size: 12px; color: var(--ql-v-muted); margin: 2px 0 8px; }
.ql-equalization ol.ql-eq-sequences { padding-left: 2.2em; margin: 4px 0; }
.ql-equalization ol.ql-eq-sequences > li { margin: 3px 0 5px; line-height: 1.9; }
.ql-equalization .ql-eq-chip { font-size: 12px; border: 1px solid var(--ql-v-axis-line); background: var(--ql-v-bg); border-radius: 3px; padding: 0 6px; cursor: pointer;
  max-width: 30ch; overflow: hidden; text-overflow: ellipsis; white-space: nowrap; vertical-align: middle; color: var(--ql-v-fg); }
.ql-equalization .ql-eq-chip.ql-eq-triple { border: 1.5px dashed ${palette.purple}; }
.ql-equalization .ql-eq-chip[aria-pressed="true"] { background: var(--ql-v-selected); border-color: ${palette.blue}; }
.ql-equalization .ql-eq-link { font-size: 11.5px; color: var(--ql-v-muted); margin: 0 3px; white-space: nowrap; }
.ql-equalization .ql-eq-seq-meta { font-size: 12px; color: var(--ql-v-muted); margin-left: 8px; white-space: nowrap; }
.ql-equalization .ql-eq-seq-meta.ql-eq-worse { color: var(--ql-v-bad); }
.ql-equalization .ql-eq-stop-group { margin: 6px 0 10px; }
.ql-equalization .ql-eq-stop-reason { font-weight: 600; }
.ql-equalization .ql-eq-stop-reason .ql-eq-count { display: inline-block; min-width: 2.2em; padding: 0 5px; margin-right: 6px; border-radius: 3px;
  background: var(--ql-v-head); text-align: center; font-variant-numeric: tabular-nums; }
.ql-equalization ul.ql-eq-stop-list { margin: 3px 0 0; padding-left: 1.4em; column-gap: 24px; }
.ql-equalization ul.ql-eq-stop-list li { break-inside: avoid; overflow-wrap: anywhere; font-size: 12px; }
.ql-equalization .ql-eq-name { font-family: ui-monospace, SFMono-Regular, Menlo, Consolas, monospace; font-size: 11.5px; overflow-wrap: anywhere; }
.ql-equalization details { margin: 4px 0; }
.ql-equalization details summary { cursor: pointer; }
.ql-equalization ul.ql-eq-names { margin: 3px 0; padding-left: 1.4em; max-height: 240px; overflow-y: auto; }
.ql-equalization ul.ql-eq-names li { overflow-wrap: anywhere; word-break: break-all; }
.ql-equalization table.ql-eq-dead { border-collapse: separate; border-spacing: 0; }
.ql-equalization .ql-eq-dead-scroll { max-height: 340px; overflow-y: auto; display: inline-block; max-width: 100%; border-bottom: 1px solid var(--ql-v-line); }
.ql-equalization .ql-eq-section { margin-top: 18px; border-top: 1px solid var(--ql-v-line); padding-top: 4px; }
.ql-equalization .ql-sr-only { position: absolute; width: 1px; height: 1px; margin: -1px; padding: 0; border: 0; overflow: hidden; clip: rect(0 0 0 0); clip-path: inset(50%); white-space: nowrap; }
`;

const GAP = 28; // px between the two columns
const TWO_COLUMNS = 980; // px of view width from which the chart and the layer detail sit side by side

const int8 = (s) => s?.sqnr?.int8PerTensor;
const int4 = (s) => s?.sqnr?.int4PerTensor;
const gain = (l) => int8(l.after) - int8(l.before);
const arrow = (a, b) => `${formatDb(a)} → ${formatDb(b)} dB`;

/**
 * @param element       where to render (the view appends its own root)
 * @param equalization  the result of equalize() (typed arrays as equalize() returns them)
 * @param onDownload    called by the "Download equalized model" button (the app saves equalization.blob)
 * @param onSelect      called with a layer's name when the user picks a layer here (the app's one selection)
 */
export function renderEqualizationView(element, equalization, { onDownload, onAnalyze, onCompare, onSelect } = {}) {
  ensureStyles('ql-equalization', CSS, element.ownerDocument);
  const root = viewRoot(element, 'ql-equalization');
  const body = d3.select(root).append('div').attr('class', 'ql-eq-body');
  const tip = tooltip(root);
  // A layer whose statistics before scaling could not be computed has no `before` to show
  // (its zeros are not a measurement): the view reads it as absent, and says why.
  const eq = { ...(equalization || {}) };
  eq.layers = (eq.layers || []).map((l) => (l.beforeError ? { ...l, before: null } : l));
  const layers = eq.layers;
  const state = { selected: defaultLayer(layers), order: 'graph', fit: null, width: 0 };
  // Names read without the prefix every layer shares (full names on hover).
  const names = nameShortener(layers.map((l) => l.name));

  function select(index) {
    if (index === state.selected || index < 0 || index >= layers.length) return;
    state.selected = index;
    render(state.width);
    if (typeof onSelect === 'function') onSelect(layers[index].name);
  }

  function render(width) {
    state.width = width;
    tip.hide();
    // Keep the scroll position of the per-layer list across re-renders.
    const scroll = root.querySelector('.ql-eq-scroll')?.scrollTop ?? null;
    body.selectAll('*').remove();
    header(body, eq, { onDownload, onAnalyze, onCompare });
    if (layers.length) {
      const two = width >= TWO_COLUMNS;
      const leftW = two ? Math.floor((width - GAP) * 0.42) : width;
      const rightW = two ? width - GAP - leftW : width;
      const grid = body
        .append('div')
        .attr('class', 'ql-eq-grid')
        .style('grid-template-columns', two ? `${leftW}px ${rightW}px` : '1fr');
      const left = grid.append('div').attr('class', 'ql-eq-panel ql-eq-sqnr');
      sqnrPanel(left, layers, {
        names,
        width: leftW,
        selected: state.selected,
        order: state.order,
        tip,
        onSelect: select,
        onOrder: (o) => {
          state.order = o;
          render(state.width);
        },
      });
      const right = grid.append('div').attr('class', 'ql-eq-panel ql-eq-layer');
      layerPanel(right, eq, state.selected, {
        width: rightW,
        tip,
        onSelect: select,
        fit: state.fit,
        onFit: (v) => {
          state.fit = v;
          render(state.width);
        },
      });
      if (scroll !== null) {
        const s = root.querySelector('.ql-eq-scroll');
        if (s) s.scrollTop = scroll;
      }
      sequencesSection(body, eq, {
        names,
        selected: layers[state.selected]?.name,
        onSelect: (name) => select(layers.findIndex((l) => l.name === name)),
      });
    }
    stopsSection(body, eq, { names: nameShortener((eq.stops || []).map((st) => st.layer)) });
    activationsSection(body, eq);
  }

  const observer = observeWidth(root, render);
  return {
    destroy() {
      observer.disconnect();
      tip.destroy();
      root.remove();
    },
  };
}

// The layer shown first: the one whose INT8 per-tensor SQNR rose the most.
function defaultLayer(layers) {
  let best = 0;
  let bestGain = -Infinity;
  layers.forEach((l, i) => {
    const g = gain(l);
    if (Number.isFinite(g) && g > bestGain) {
      bestGain = g;
      best = i;
    }
  });
  return best;
}

// ---------------------------------------------------------------------------
// Header: model name, summary line, download button.

function header(parent, eq, { onDownload, onAnalyze, onCompare }) {
  const s = eq.summary || {};
  const changed = !!s.changed && (eq.layers || []).length > 0;
  const head = parent.append('div').attr('class', 'ql-eq-head');
  const h2 = head.append('h2');
  h2.append('span').text('Cross Layer Equalization: ');
  h2.append('span')
    .attr('data-field', 'model-name')
    .text(eq.model?.name ?? 'model');
  if (typeof onDownload === 'function' && changed) {
    const bytes = eq.size ?? eq.bytes?.length;
    const size = bytes ? ` (${formatCount(bytes)}B)` : '';
    // A model with external data downloads with its one new data file.
    const data = eq.dataName ? ` and its data file ${eq.dataName} (${formatCount(eq.dataSize)}B)` : '';
    head
      .append('button')
      .attr('type', 'button')
      .attr('class', 'ql-eq-download')
      .attr('data-action', 'download-equalized')
      .text(`Download equalized model${size}${data}`)
      .on('click', () => onDownload());
  }
  // The equalized model, opened in this page without a download: analysed as a model of its
  // own, or compared with the original (a per-channel rescale is recognised as such there).
  for (const [fn, action, text] of [
    [onAnalyze, 'analyze-equalized', 'Open the equalized model'],
    [onCompare, 'compare-equalized', 'Compare with the original'],
  ]) {
    if (typeof fn === 'function' && changed)
      head
        .append('button')
        .attr('type', 'button')
        .attr('class', 'ql-eq-chip ql-eq-action')
        .attr('data-action', action)
        .text(text)
        .on('click', () => fn());
  }
  const p = parent.append('p').attr('class', changed ? 'ql-eq-summary' : 'ql-eq-summary ql-eq-nothing');
  const count = (field, n) =>
    p
      .append('b')
      .attr('data-field', field)
      .text(String(n ?? 0));
  const seen = eq.layersSeen ?? '?';
  if (!changed) {
    count('layers-changed', 0);
    p.append('span').text(` of ${seen} weight layers changed: nothing to equalize, the model is unchanged.`);
    if ((eq.stops || []).length)
      p.append('span').text(' The places where a sequence could not start or continue are listed below, grouped by reason.');
    if (eq.options)
      parent
        .append('p')
        .attr('class', 'ql-eq-note')
        .attr('data-field', 'options')
        .text(`Options: ${cleOptionsText(eq.options)}.`);
    return;
  }
  count('layers-changed', s.layersChanged);
  p.append('span').text(` of ${seen} weight layers changed · `);
  count('sequences', s.sequences);
  p.append('span').text(' sequences equalized · ');
  count('batchnorms-folded', s.batchNormsFolded);
  p.append('span').text(' BatchNorm folded · ');
  count('relu6-replaced', s.relu6Replaced);
  p.append('span').text(' ReLU6 replaced by Relu · ');
  count('bias-absorptions', s.biasAbsorptions);
  p.append('span').text(' high-bias absorptions · ');
  count('dead-channels', s.deadChannels);
  p.append('span').text(' near-dead channels.');
  const t8 = s.int8PerTensor || {};
  const t4 = s.int4PerTensor || {};
  const q = parent.append('p').attr('class', 'ql-eq-summary');
  q.append('span').text('Mean weight SQNR per tensor over the changed layers: INT8 ');
  q.append('b').attr('data-field', 'int8-mean').text(arrow(t8.meanBefore, t8.meanAfter));
  q.append('span').text(', INT4 ');
  q.append('b').attr('data-field', 'int4-mean').text(arrow(t4.meanBefore, t4.meanAfter));
  q.append('span').text('. "Before" is after BatchNorm folding.');
  // The worst layers, each named: the worst before and the worst after are often two layers.
  const w = cleWorst(eq, 'int8PerTensor');
  if (w.before && w.after) {
    const r = parent.append('p').attr('class', 'ql-eq-summary').attr('data-field', 'worst');
    r.append('span').text('Worst INT8 per tensor before: ');
    r.append('span').attr('class', 'ql-eq-name').text(w.before.name);
    r.append('span').text(` ${arrow(w.before.before, w.before.after)}; worst after: `);
    r.append('span').attr('class', 'ql-eq-name').text(w.after.name);
    r.append('span').text(w.after.name === w.before.name ? ' (the same layer).' : ` ${arrow(w.after.before, w.after.after)}.`);
  }
  // Risk counts over the changed layers, before and after (the thresholds of presentation.js).
  const counts = parent.append('p').attr('class', 'ql-eq-summary').attr('data-field', 'risk-after');
  const parts = ['int8PerTensor', 'int4PerTensor'].map((k) => {
    const t = riskDbFor(k).high;
    const below = (side) => (eq.layers || []).filter((l) => !(l[side]?.sqnr?.[k] >= t)).length;
    return `${k === 'int8PerTensor' ? 'INT8' : 'INT4'} per tensor below ${thresholdText(t)} dB: ${below('before')} before, ${below('after')} after`;
  });
  counts.text(`Changed layers at high risk — ${parts.join('; ')}.`);
  if (eq.options)
    parent
      .append('p')
      .attr('class', 'ql-eq-note')
      .attr('data-field', 'options')
      .text(`Options: ${cleOptionsText(eq.options)}.`);
}

// ---------------------------------------------------------------------------
// Per-layer SQNR, before and after, INT8 and INT4 per tensor: one row per layer.

// A labelled <select data-action=...> of [value, text] options; returns the select.
function labelledSelect(controls, text, action, options, value, onChange) {
  const label = controls.append('label');
  label.append('span').text(text);
  const select = label
    .append('select')
    .attr('data-action', action)
    .on('change', (event) => onChange(event.target.value));
  select
    .selectAll('option')
    .data(options)
    .join('option')
    .attr('value', ([k]) => k)
    .property('selected', ([k]) => k === value)
    .text(([, t]) => t);
  return select;
}

const ORDERS = {
  graph: { label: 'graph order', sort: null },
  before: { label: 'INT8 before, worst first', sort: (a, b) => d3.ascending(int8(a.before), int8(b.before)) },
  after: { label: 'INT8 after, worst first', sort: (a, b) => d3.ascending(int8(a.after), int8(b.after)) },
  gain: { label: 'INT8 gain, largest first', sort: (a, b) => d3.descending(gain(a), gain(b)) },
};

function sqnrPanel(parent, layers, { names, width, selected, order, tip, onSelect, onOrder }) {
  parent.append('h3').text('Weight SQNR per layer, before and after');
  const controls = parent.append('div').attr('class', 'ql-eq-controls');
  labelledSelect(
    controls,
    'Sort: ',
    'sort-layers',
    Object.entries(ORDERS).map(([k, o]) => [k, o.label]),
    order,
    onOrder,
  );
  legend(parent.node(), [
    { label: 'before', color: '#fff', stroke: colors.before, kind: 'dot' },
    { label: 'after', color: colors.after, kind: 'dot' },
    { label: '● INT8 per tensor  ■ INT4 per tensor', color: 'transparent', kind: 'square' },
    { label: 'got worse', color: colors.risk.high, kind: 'line' },
    { label: `INT8 high risk below ${RISK_DB.high} dB`, color: colors.risk.high, kind: 'rule' },
  ]);
  const rows = layers.map((layer, index) => ({ layer, index }));
  const sort = ORDERS[order]?.sort;
  if (sort) rows.sort((a, b) => sort(a.layer, b.layer) || a.index - b.index);
  dotPlot(parent, rows, { names, width, selected, tip, onSelect });
  parent
    .append('p')
    .attr('class', 'ql-eq-note')
    .text(
      'SQNR of the weights fake-quantized with one symmetric scale per tensor (dB, higher is better). Click a row to see its channels.',
    );
}

function dotPlot(parent, rows, { names, width, selected, tip, onSelect }) {
  const rowH = 18;
  const labelW = Math.max(100, Math.min(210, Math.round(width * 0.36)));
  const margin = { left: labelW, right: 22 };
  const innerW = Math.max(60, width - margin.left - margin.right);
  const values = rows.flatMap(({ layer: l }) => [int8(l.before), int8(l.after), int4(l.before), int4(l.after)]);
  const [lo, hi] = finiteExtent(values, [0, 50]);
  const hasInf = values.some((v) => v === Infinity);
  const x = d3.scaleLinear([Math.min(0, lo), Math.max(hi, RISK_DB.high + 5)], [0, innerW - (hasInf ? 22 : 0)]).nice();
  const xv = (v) => (v === Infinity ? innerW - 6 : x(v));
  const ticks = Math.max(3, Math.round(innerW / 70));

  const axis = (where) => {
    const svg = parent.append('svg').attr('width', width).attr('height', 30).attr('aria-hidden', 'true');
    const g = svg.append('g').attr('transform', `translate(${margin.left},${where === 'top' ? 22 : 2})`);
    g.append('g')
      .attr('class', 'ql-axis')
      .call((where === 'top' ? d3.axisTop(x) : d3.axisBottom(x)).ticks(ticks).tickFormat((d) => formatNumber(d)));
    if (hasInf) {
      g.append('text')
        .attr('class', 'ql-axis-label')
        .attr('x', innerW - 6)
        .attr('y', where === 'top' ? -8 : 16)
        .attr('text-anchor', 'middle')
        .text('∞');
    }
    g.append('text')
      .attr('class', 'ql-axis-label')
      .attr('x', -8)
      .attr('y', where === 'top' ? -6 : 14)
      .attr('text-anchor', 'end')
      .text('SQNR (dB)');
  };
  axis('top');
  const scroll = parent.append('div').attr('class', 'ql-eq-scroll').attr('data-chart', 'sqnr');
  const height = rows.length * rowH + 2;
  const svg = scroll
    .append('svg')
    .attr('width', width)
    .attr('height', height)
    .attr('role', 'img')
    .attr('aria-label', 'Weight SQNR per layer, before and after equalization');
  const g = svg.append('g').attr('transform', `translate(${margin.left},1)`);
  g.append('g')
    .attr('class', 'ql-grid')
    .selectAll('line')
    .data(x.ticks(ticks))
    .join('line')
    .attr('x1', (d) => x(d))
    .attr('x2', (d) => x(d))
    .attr('y1', 0)
    .attr('y2', height - 2);
  g.append('line')
    .attr('x1', x(RISK_DB.high))
    .attr('x2', x(RISK_DB.high))
    .attr('y1', 0)
    .attr('y2', height - 2)
    .attr('stroke', colors.risk.high)
    .attr('stroke-width', 1)
    .attr('stroke-dasharray', '6 4')
    .attr('opacity', 0.7);

  const row = g
    .selectAll('g.ql-eq-sqnr-row')
    .data(rows)
    .join('g')
    .attr('class', (d) => `ql-eq-sqnr-row${d.index === selected ? ' ql-selected' : ''}`)
    .attr('transform', (d, i) => `translate(0,${i * rowH})`)
    .attr('data-layer', (d) => d.layer.name)
    .attr('data-index', (d) => d.index)
    .attr('data-before', (d) => String(int8(d.layer.before)))
    .attr('data-after', (d) => String(int8(d.layer.after)))
    .attr('data-before-int4', (d) => String(int4(d.layer.before)))
    .attr('data-after-int4', (d) => String(int4(d.layer.after)));
  row
    .append('rect')
    .attr('class', 'ql-eq-row-bg')
    .attr('x', -labelW)
    .attr('width', labelW + innerW + margin.right)
    .attr('height', rowH)
    .attr('fill', 'transparent');
  const maxChars = Math.floor((labelW - 10) / 6.6);
  fitText(
    row
      .append('text')
      .attr('class', 'ql-eq-row-label')
      .attr('x', -8)
      .attr('y', rowH / 2)
      .attr('dy', '0.35em')
      .attr('text-anchor', 'end')
      .text((d) => clipMiddle(names.short(d.layer.name), maxChars)),
    labelW - 12,
  );
  const cy = rowH / 2;
  for (const [key, shape] of [
    ['int4PerTensor', 'square'],
    ['int8PerTensor', 'circle'],
  ]) {
    const before = (d) => d.layer.before?.sqnr?.[key];
    const after = (d) => d.layer.after?.sqnr?.[key];
    const both = row.filter((d) => isShown(before(d)) && isShown(after(d)));
    both
      .append('line')
      .attr('class', 'ql-eq-change')
      .attr('x1', (d) => xv(before(d)))
      .attr('x2', (d) => xv(after(d)))
      .attr('y1', cy)
      .attr('y2', cy)
      .attr('stroke', (d) => (after(d) < before(d) - 0.05 ? colors.risk.high : colors.before))
      .attr('stroke-width', (d) => (after(d) < before(d) - 0.05 ? 2 : 1.3))
      .attr('stroke-dasharray', (d) => (after(d) < before(d) - 0.05 ? null : '2 2'));
    marker(
      row.filter((d) => isShown(before(d))),
      shape,
      (d) => xv(before(d)),
      cy,
      3.6,
    )
      .attr('class', 'ql-eq-before')
      .attr('fill', '#fff')
      .attr('stroke', colors.before)
      .attr('stroke-width', 1.5)
      .attr('stroke-dasharray', '2 1.2');
    marker(
      row.filter((d) => isShown(after(d))),
      shape,
      (d) => xv(after(d)),
      cy,
      4,
    )
      .attr('class', 'ql-eq-after')
      .attr('fill', colors.after)
      .attr('stroke', '#fff')
      .attr('stroke-width', 0.8);
  }
  row
    .on('pointerenter', (event, d) => tip.show(event, d.layer.name, sqnrRows(d.layer)))
    .on('pointermove', (event) => tip.move(event))
    .on('pointerleave', () => tip.hide())
    .on('click', (event, d) => onSelect(d.index));
  axis('bottom');
}

const isShown = (v) => Number.isFinite(v) || v === Infinity;

function marker(sel, shape, x, y, r) {
  if (shape === 'circle') return sel.append('circle').attr('cx', x).attr('cy', y).attr('r', r);
  return sel
    .append('rect')
    .attr('x', (d) => x(d) - r * 0.9)
    .attr('y', y - r * 0.9)
    .attr('width', r * 1.8)
    .attr('height', r * 1.8);
}

function sqnrRows(l) {
  return [
    ['INT8 per tensor', arrow(int8(l.before), int8(l.after))],
    ['INT4 per tensor', arrow(int4(l.before), int4(l.after))],
    ['INT8 per channel', arrow(l.before?.sqnr?.int8PerChannel, l.after?.sqnr?.int8PerChannel)],
    ['op', l.op],
    ...(l.beforeError ? [['before', 'not computed']] : []),
  ];
}

// ---------------------------------------------------------------------------
// One layer: picker, SQNR table, per-channel min/max/mean before and after, scales.

function layerPanel(parent, eq, index, { width, tip, onSelect, fit, onFit }) {
  const layers = eq.layers;
  const layer = layers[index];
  parent.append('h3').text('Channels of one layer');
  const controls = parent.append('div').attr('class', 'ql-eq-controls');
  labelledSelect(
    controls,
    'Layer: ',
    'select-layer',
    layers.map((d, i) => [String(i), `${d.name} (${d.op})`]),
    String(index),
    (v) => onSelect(Number(v)),
  )
    .attr('aria-label', 'Layer')
    .style('max-width', `${Math.max(160, width - 180)}px`);
  for (const [text, step] of [
    ['◀ previous', -1],
    ['next ▶', 1],
  ]) {
    controls
      .append('button')
      .attr('type', 'button')
      .attr('class', 'ql-eq-chip')
      .attr('data-action', step < 0 ? 'previous-layer' : 'next-layer')
      .property('disabled', index + step < 0 || index + step >= layers.length)
      .text(text)
      .on('click', () => onSelect(index + step));
  }
  if (!layer) return;
  const meta = parent.append('p').attr('class', 'ql-eq-meta');
  meta.append('span').attr('class', 'ql-eq-name').attr('data-field', 'layer-name').text(layer.name);
  const seq = (eq.sequences || []).findIndex((q) => q.layers.includes(layer.name));
  const notes = [
    layer.op,
    `weight ${layer.weight}`,
    `${(layer.before ?? layer.after)?.channels?.count ?? '?'} output channels`,
    seq >= 0 ? `sequence ${seq + 1}` : null,
    layer.batchNormFolded ? 'BatchNorm folded' : null,
    layer.biasAdded ? 'bias added' : null,
    layer.absorbed ? 'high bias absorbed into the next layer' : null,
  ].filter(Boolean);
  meta
    .append('span')
    .attr('class', 'ql-muted')
    .text(` · ${notes.join(' · ')}`);
  if (layer.beforeError) parent.append('p').attr('class', 'ql-eq-before-error').text(`No "before": ${layer.beforeError}.`);
  sqnrTable(parent, layer);
  channelChart(parent, layer, { width, tip, fit, onFit });
  scaleCharts(parent, layer, { width, tip });
}

function sqnrTable(parent, layer) {
  const table = parent.append('table').attr('class', 'ql-table ql-eq-sqnr-table');
  const head = table.append('thead').append('tr');
  for (const [t, num] of [
    ['weight SQNR', false],
    ['before (dB)', true],
    ['after (dB)', true],
    ['change (dB)', true],
  ]) {
    head
      .append('th')
      .attr('class', num ? 'ql-num' : null)
      .text(t);
  }
  const body = table.append('tbody');
  for (const [key, label] of [
    ['int8PerTensor', 'INT8 per tensor'],
    ['int8PerChannel', 'INT8 per channel'],
    ['int4PerTensor', 'INT4 per tensor'],
    ['int4PerChannel', 'INT4 per channel'],
  ]) {
    const b = layer.before?.sqnr?.[key];
    const a = layer.after?.sqnr?.[key];
    const d = a - b;
    const tr = body.append('tr').attr('data-scheme', key);
    tr.append('td').text(label);
    tr.append('td').attr('class', 'ql-num').attr('data-col', 'before').text(formatDb(b));
    tr.append('td').attr('class', 'ql-num').attr('data-col', 'after').text(formatDb(a));
    tr.append('td')
      .attr('class', `ql-num ${d > 0.05 ? 'ql-eq-better' : d < -0.05 ? 'ql-eq-worse' : ''}`)
      .text(Number.isFinite(d) ? `${d > 0 ? '+' : ''}${formatDb(d)}` : '-');
  }
}

function channelChart(parent, layer, { width, tip, fit, onFit }) {
  const B = layer.before?.channels;
  const A = layer.after?.channels;
  if (!B || !A || !B.count) return;
  const n = Math.min(B.count, A.count);
  // One channel far out (a spike of -60 before CLE) would flatten every other channel: the
  // robust range (Tukey's fences, 3 IQR, of the channel minima and maxima) is then the
  // default, and values beyond it are marked at the edge.
  const all = [...B.min, ...A.min, ...B.max, ...A.max];
  const full = finiteExtent(all, [-1, 1]);
  const robust = robustExtent([...B.min, ...A.min], [...B.max, ...A.max], full);
  const spiky = full[1] - full[0] > 3 * (robust[1] - robust[0]);
  fit = fit ?? (spiky ? 'robust' : 'both');
  const controls = parent.append('div').attr('class', 'ql-eq-controls');
  labelledSelect(
    controls,
    'Vertical range: ',
    'fit',
    [
      ['both', 'before and after'],
      ['robust', 'robust (outliers clipped, marked ▲▼)'],
      ['after', 'after only (before clipped)'],
    ],
    fit,
    onFit,
  );
  legend(parent.node(), [
    { label: 'max', color: colors.max, kind: 'line' },
    { label: 'mean', color: colors.mean, kind: 'line' },
    { label: 'min', color: colors.min, kind: 'line' },
    { label: 'before (dotted)', color: colors.before, kind: 'dash' },
    { label: 'after (solid)', color: colors.before, kind: 'line' },
    { label: 'gap before → after', color: colors.before, kind: 'band', opacity: 0.3 },
  ]);
  const [lo, hi] = fit === 'after' ? finiteExtent([...A.min, ...A.max], [-1, 1]) : fit === 'robust' ? robust : full;
  const pad = (hi - lo) * 0.04 || 1;
  const chart = channelRangeChart(
    { min: A.min, max: A.max, mean: A.mean, before: { min: B.min, max: B.max, mean: B.mean } },
    {
      width,
      height: Math.max(220, Math.min(320, Math.round(width * 0.42))),
      margin: { top: 8, right: 14, bottom: 40, left: 62 },
      domain: [lo - pad, hi + pad],
      points: 48,
      tip,
      clipMarks: fit !== 'both',
      ariaLabel: `Per-channel minimum, maximum and mean of ${layer.name}, before and after`,
      tipRows: (i) => [
        `${layer.name}, channel ${i}`,
        [
          ['max', `${formatNumber(B.max[i])} → ${formatNumber(A.max[i])}`],
          ['mean', `${formatNumber(B.mean[i])} → ${formatNumber(A.mean[i])}`],
          ['min', `${formatNumber(B.min[i])} → ${formatNumber(A.min[i])}`],
          ...(layer.outScale?.length > i ? [['out scale (÷)', formatNumber(layer.outScale[i])]] : []),
          ...(layer.inScale?.length > i && layer.inScale.length === n ? [['in scale (×)', formatNumber(layer.inScale[i])]] : []),
          ...(layer.absorbed?.length > i ? [['bias absorbed', formatNumber(layer.absorbed[i])]] : []),
        ],
      ],
    },
  );
  parent.append('div').attr('class', 'ql-chart').attr('data-chart', 'channels').node().append(chart.svg);
}

// [lo, hi] covering the channel minima and maxima but Tukey's far outliers (beyond 3 IQR of
// each), inside `full`.
function robustExtent(mins, maxs, full) {
  const fence = (values, side) => {
    const v = Float64Array.from(values.filter(Number.isFinite)).sort();
    if (!v.length) return full[side === 'lo' ? 0 : 1];
    const q1 = d3.quantileSorted(v, 0.25);
    const q3 = d3.quantileSorted(v, 0.75);
    const iqr = q3 - q1;
    return side === 'lo' ? Math.max(v[0], q1 - 3 * iqr) : Math.min(v[v.length - 1], q3 + 3 * iqr);
  };
  const lo = Math.min(0, fence(mins, 'lo'));
  const hi = Math.max(0, fence(maxs, 'hi'));
  return lo < hi ? [lo, hi] : full;
}

function scaleCharts(parent, layer, { width, tip }) {
  const sides = [
    {
      v: layer.outScale,
      title: 'Out scale: output channel c of the weights divided by s',
      xLabel: 'output channel',
      color: colors.after,
      key: 'out-scale',
    },
    {
      v: layer.inScale,
      title: 'In scale: input channel c of the weights multiplied by s',
      xLabel: 'input channel',
      color: palette.orange,
      key: 'in-scale',
    },
  ];
  for (const side of sides) {
    const v = side.v;
    if (!v || !v.length) continue;
    const trivial = Array.prototype.every.call(v, (s) => s === 1);
    const h = parent.append('h3').text(side.title);
    if (trivial) {
      h.append('span').attr('class', 'ql-muted').style('font-weight', 'normal').text(' — all 1: not rescaled on this side');
      continue;
    }
    scaleChart(parent, v, { width, tip, xLabel: side.xLabel, color: side.color, name: layer.name, key: side.key });
  }
}

function scaleChart(parent, v, { width, tip, xLabel, color, name, key }) {
  const n = v.length;
  const margin = { top: 6, right: 14, bottom: 40, left: 62 };
  const height = 150;
  const chart = d3.select(parent.node()).append('div').attr('class', 'ql-chart').attr('data-chart', key);
  const f = chartFrame(chart.node(), { width, height, margin });
  const positive = Array.from(v).filter((s) => s > 0 && Number.isFinite(s));
  const lo = Math.min(1, d3.min(positive) ?? 1);
  const hi = Math.max(1, d3.max(positive) ?? 1);
  const x = d3.scaleLinear([-0.5, n - 0.5], [0, f.width]);
  const y = d3.scaleLog([lo / 1.3, hi * 1.3], [f.height, 0]);
  f.svg.attr('role', 'img').attr('aria-label', `${xLabel} scale factors of ${name}`);
  drawAxes(f.g, {
    x,
    y,
    width: f.width,
    height: f.height,
    xLabel,
    yLabel: 'scale (log)',
    yTicks: 4,
    yFormat: logTickFormat(y),
    xFormat: intTicks,
    xTicks: channelTickCount(x, f.width),
  });
  f.g
    .selectAll('.ql-grid .tick')
    .filter((d) => !logTickFormat(y)(d))
    .remove();
  f.g.append('line').attr('x1', 0).attr('x2', f.width).attr('y1', y(1)).attr('y2', y(1)).attr('stroke', '#666');
  const idx = d3.range(n).filter((i) => v[i] > 0 && Number.isFinite(v[i]));
  const g = f.g.append('g').attr('class', 'ql-eq-scales');
  g.selectAll('line')
    .data(idx)
    .join('line')
    .attr('x1', (i) => x(i))
    .attr('x2', (i) => x(i))
    .attr('y1', y(1))
    .attr('y2', (i) => y(v[i]))
    .attr('stroke', color)
    .attr('stroke-width', Math.max(1, Math.min(3, (f.width / n) * 0.6)));
  if (n <= 128) {
    g.selectAll('circle')
      .data(idx)
      .join('circle')
      .attr('cx', (i) => x(i))
      .attr('cy', (i) => y(v[i]))
      .attr('r', 2.5)
      .attr('fill', color);
  }
  channelHover(
    f,
    n,
    () => x,
    tip,
    (i) => [`${name}, ${xLabel} ${i}`, [['scale', formatNumber(v[i])]]],
  );
}

// Labels for a few ticks of a log scale (1, 2, 5 times powers of ten, fewer when the
// domain spans many decades); '' for the others.
function logTickFormat(y) {
  const [a, b] = y.domain();
  const decades = Math.log10(b / a);
  const keep = decades > 3 ? [1] : decades > 1.2 ? [1, 3] : [1, 2, 5];
  return (d) => {
    const m = d / 10 ** Math.floor(Math.log10(d) + 1e-9);
    return keep.some((k) => Math.abs(m - k) < 1e-6) ? formatNumber(d) : '';
  };
}

// ---------------------------------------------------------------------------
// Sequences, stops, ReLU6 and near-dead channels.

function sequencesSection(parent, eq, { names, selected, onSelect }) {
  const seqs = eq.sequences || [];
  if (!seqs.length) return;
  const sec = parent.append('section').attr('class', 'ql-eq-section ql-eq-sequences-section');
  sec.append('h3').text(`Sequences equalized (${seqs.length})`);
  sec
    .append('p')
    .attr('class', 'ql-eq-note')
    .text(
      `Layers in graph order, with what links them; a dashed outline marks a depthwise middle layer balanced as a triple. Click a layer to see its channels.${
        names.prefix ? ` Names are shown without the prefix every layer shares, "${names.prefix}" (hover for the full name).` : ''
      }`,
    );
  const li = sec
    .append('ol')
    .attr('class', 'ql-eq-sequences')
    .selectAll('li')
    .data(seqs)
    .join('li')
    .attr('data-sequence', (d, i) => i);
  li.each(function (q) {
    const item = d3.select(this);
    q.layers.forEach((name, i) => {
      item
        .append('button')
        .attr('type', 'button')
        .attr('class', `ql-eq-chip${q.triple?.[i] ? ' ql-eq-triple' : ''}`)
        .attr('title', q.triple?.[i] ? `${name} (depthwise, balanced as a triple)` : name)
        .attr('aria-pressed', name === selected ? 'true' : 'false')
        .attr('data-name', name)
        .text(names.short(name))
        .on('click', () => onSelect(name));
      if (i < q.layers.length - 1)
        item
          .append('span')
          .attr('class', 'ql-eq-link')
          .text(`→ ${q.links?.[i] || 'direct'} →`);
    });
    const ok = q.converged;
    item
      .append('span')
      .attr('class', `ql-eq-seq-meta${ok ? '' : ' ql-eq-worse'}`)
      .text(
        `${q.iterations} sweep${q.iterations === 1 ? '' : 's'}, ${
          ok ? 'converged' : `not converged (scales still changing by ${formatNumber(q.lastChange * 100)}%)`
        }`,
      );
  });
}

function stopsSection(parent, eq, { names }) {
  const stops = eq.stops || [];
  const sec = parent.append('section').attr('class', 'ql-eq-section ql-eq-stops');
  sec.append('h3').text(`Where sequences stopped (${stops.length})`);
  if (!stops.length) {
    sec.append('p').attr('class', 'ql-muted').text('No sequence was cut short.');
    return;
  }
  // Grouped by what the reason says, with the weight, bias, output or node named in it taken
  // out (listed with each layer instead): one group per reason, not one per layer.
  const groups = d3
    .groups(
      stops.map((s, index) => ({ ...s, index, ...stopReasonKey(s.reason) })),
      (s) => s.key,
    )
    .sort((a, b) => b[1].length - a[1].length || d3.ascending(a[0], b[0]));
  for (const [reason, list] of groups) {
    const g = sec.append('div').attr('class', 'ql-eq-stop-group');
    const h = g.append('div').attr('class', 'ql-eq-stop-reason');
    h.append('span').attr('class', 'ql-eq-count').text(String(list.length));
    h.append('span').attr('data-field', 'stop-reason').text(reason);
    // Column width from the longest entry: many short names fill many columns.
    const longest = d3.max(
      list,
      (d) =>
        names.short(d.layer).length +
        (d.node && d.node !== d.layer ? d.node.length + (d.op?.length ?? 0) + 8 : 0) +
        (d.name && d.name !== d.layer ? d.name.length + 3 : 0),
    );
    const li = g
      .append('ul')
      .attr('class', 'ql-eq-stop-list')
      .style('column-width', `${Math.max(14, Math.min(56, Math.round(longest * 0.9) + 3))}ch`)
      .selectAll('li')
      .data(list)
      .join('li')
      .attr('data-stop', (d) => d.index)
      .attr('data-stop-layer', (d) => d.layer);
    li.append('span')
      .attr('class', 'ql-eq-name')
      .attr('title', (d) => d.layer)
      .text((d) => names.short(d.layer));
    li.filter((d) => d.name && d.name !== d.layer && d.name !== d.node).each(function (d) {
      const item = d3.select(this);
      item.append('span').attr('class', 'ql-muted').text(': ');
      item.append('span').attr('class', 'ql-eq-name').text(d.name);
    });
    li.filter((d) => d.node && d.node !== d.layer).each(function (d) {
      const item = d3.select(this);
      item.append('span').attr('class', 'ql-muted').text(' at ');
      item.append('span').attr('class', 'ql-eq-name').text(d.node);
      if (d.op) item.append('span').attr('class', 'ql-muted').text(` (${d.op})`);
    });
    srOnly(li, (d) => `: ${d.reason}`);
  }
}

function activationsSection(parent, eq) {
  const replaced = eq.relu6Replaced || [];
  const kept = eq.relu6Kept || [];
  const dead = eq.deadChannels || [];
  if (!replaced.length && !kept.length && !dead.length) return;
  const sec = parent.append('section').attr('class', 'ql-eq-section ql-eq-activations');
  sec.append('h3').text('ReLU6 and near-dead channels');
  const names = (title, list, field) => {
    const d = sec.append('details').attr('data-field', field);
    d.append('summary').text(title);
    d.append('ul')
      .attr('class', 'ql-eq-names')
      .selectAll('li')
      .data(list)
      .join('li')
      .attr('class', 'ql-eq-name')
      .text((s) => s);
  };
  if (replaced.length)
    names(`ReLU6 (Clip 0..6) replaced by Relu inside sequences: ${replaced.length} nodes`, replaced, 'relu6-replaced-list');
  else sec.append('p').text('No ReLU6 replaced.');
  if (kept.length) names(`ReLU6 kept (each ends its sequence): ${kept.length} nodes`, kept, 'relu6-kept-list');
  if (dead.length) {
    const ratio = eq.options?.deadChannelRatio;
    sec
      .append('p')
      .attr('class', 'ql-eq-note')
      .text(
        `${dead.length} near-dead channels in ${new Set(dead.map((d) => d.layer)).size} layers: range below ${ratio === undefined ? 'a small fraction' : formatNumber(ratio)} of their layer's largest, left out of balancing (their scale stays 1).`,
      );
    const byLayer = d3.groups(
      dead,
      (d) => d.layer,
      (d) => d.side,
    );
    const table = sec.append('div').attr('class', 'ql-eq-dead-scroll').append('table').attr('class', 'ql-table ql-eq-dead');
    const head = table.append('thead').append('tr');
    for (const [t, num] of [
      ['layer', false],
      ['side', false],
      ['channels', false],
      ['count', true],
      ['smallest range', true],
    ]) {
      head
        .append('th')
        .attr('class', num ? 'ql-num' : null)
        .text(t);
    }
    const body = table.append('tbody');
    for (const [layer, sides] of byLayer) {
      for (const [side, list] of sides) {
        const tr = body.append('tr');
        tr.append('td').attr('class', 'ql-eq-name').text(layer);
        tr.append('td').text(side);
        const ch = list.map((d) => d.channel);
        tr.append('td').text(ch.slice(0, 12).join(', ') + (ch.length > 12 ? `, +${ch.length - 12} more` : ''));
        tr.append('td').attr('class', 'ql-num').text(String(ch.length));
        tr.append('td')
          .attr('class', 'ql-num')
          .text(formatNumber(d3.min(list, (d) => d.range)));
      }
    }
  }
}
