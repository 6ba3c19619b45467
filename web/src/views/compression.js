// The compressibility view: how far each weight layer shrinks by SVD or channel pruning
// before its weights degrade (AIMET's per-layer compression curves, data-free), and the
// plan for a target size, for the result of compressibility() (web/src/compress.js).
//
//   renderCompressionView(element, compressibility, { ratio, sqnrDb, selected, onDownload,
//                         onRatio, onSelect }) -> { destroy(), setRatio(r), select(name) }
//
// compressibility: with `full: true` (every point of every curve) and `ratios` (a plan per
// target); without them the view reads the points at fixed fractions and the one plan.
//
// Contract (tests rely on it):
//   root                 div.ql-view.ql-compression
//   target slider        input[data-action="target"] (range over the plans' ratios; its
//                        value is the index) and [data-field="target"] with the target as text
//   plan summary         [data-field="achieved"] (the fraction reached), [data-field="threshold"]
//                        (the lowest weight SQNR of the plan), [data-field="uniform"] (the
//                        uniform plan's lowest layer SQNR at the same size)
//   SQNR for the ranking input[data-action="sqnr"] (dB)
//   layer table          table.ql-table.ql-cmp-layers, a tr[data-layer] per layer, ranked by
//                        data-kept (the fraction it keeps at that SQNR; absent: not compressible);
//                        data-plan-method / data-plan-fraction / data-plan-sqnr: its plan
//   curves of a layer    [data-chart="curves"][data-layer] with a path[data-method] per method,
//                        circle[data-chosen] at the plan's point, [data-refused] per method
//                        that does not apply (the reason as text)
//   download             button[data-action="download-compressed"], only with onDownload;
//                        onDownload(ratio) for the plan shown
//   risk after it        section[data-section="risk"]: button[data-action="risk"] (with onRisk:
//                        onRisk(ratio)); given a risk (options.risk or setRisk(), compressionRisk()
//                        of the plan at risk.ratio): tr[data-scheme][data-before][data-after] per
//                        scheme (layers at high risk in the whole model, before and after) and a
//                        tr[data-layer] per compressed layer with td[data-scheme][data-before]
//                        [data-after] (its SQNR; after: the worst of the layers that compute it)
// Every string from the model is written with textContent.
import * as d3 from 'd3';
import {
  chartFrame,
  drawAxes,
  ensureStyles,
  formatCount,
  formatDb,
  formatNumber,
  legend,
  observeWidth,
  palette,
  riskColor,
  schemeLabel,
  tooltip,
  viewRoot,
} from './common.js';
import { keptAt, ownFraction } from '../curves.js';
import { nameShortener } from '../names.js';

const CSS = `
.ql-compression .ql-cmp-controls { display: flex; flex-wrap: wrap; align-items: center; gap: 6px 18px; margin: 4px 0 6px; }
.ql-compression .ql-cmp-controls label { display: inline-flex; align-items: center; gap: 6px; }
.ql-compression input[type=range] { width: min(320px, 60vw); }
.ql-compression input[type=number] { width: 5em; font: inherit; }
.ql-compression button { font: inherit; }
.ql-compression .ql-cmp-download { padding: 5px 12px; border: 1px solid ${palette.blue}; background: ${palette.blue}; color: #fff; border-radius: 4px; cursor: pointer; font-weight: 600; }
.ql-compression .ql-cmp-summary { margin: 2px 0 6px; max-width: 110ch; }
.ql-compression .ql-cmp-summary b { font-variant-numeric: tabular-nums; }
.ql-compression .ql-cmp-grid { display: grid; grid-template-columns: minmax(0, 1fr) minmax(320px, 460px); gap: 12px 24px; align-items: start; }
@media (max-width: 900px) { .ql-compression .ql-cmp-grid { grid-template-columns: minmax(0, 1fr); } }
.ql-compression .ql-cmp-scroll { max-height: clamp(320px, calc(100vh - 280px), 820px); overflow: auto; border-top: 1px solid var(--ql-v-line); border-bottom: 1px solid var(--ql-v-line); }
.ql-compression table.ql-cmp-layers { border-collapse: collapse; width: 100%; font-variant-numeric: tabular-nums; font-size: 12.5px; }
.ql-compression table.ql-cmp-layers th, .ql-compression table.ql-cmp-layers td { padding: 3px 6px; border-bottom: 1px solid var(--ql-v-line); text-align: right; white-space: nowrap; }
.ql-compression table.ql-cmp-layers th { position: sticky; top: 0; background: var(--ql-v-head); font-weight: 600; }
.ql-compression table.ql-cmp-layers td.ql-cmp-name, .ql-compression table.ql-cmp-layers th.ql-cmp-name { text-align: left; max-width: 28ch; overflow: hidden; text-overflow: ellipsis; }
.ql-compression table.ql-cmp-layers td.ql-cmp-why { text-align: left; white-space: normal; color: var(--ql-v-muted); font-size: 12px; }
.ql-compression table.ql-cmp-layers tbody tr { cursor: pointer; }
.ql-compression table.ql-cmp-layers tbody tr:hover { background: var(--ql-v-hover); }
.ql-compression table.ql-cmp-layers tbody tr[aria-selected="true"] { background: var(--ql-v-selected); }
.ql-compression .ql-cmp-bar { display: inline-block; height: 8px; background: ${palette.sky}; vertical-align: middle; margin-right: 6px; }
.ql-compression .ql-cmp-refused { color: var(--ql-v-muted); margin: 2px 0; font-size: 12px; }
.ql-compression section[data-section="risk"] { margin-top: 14px; }
.ql-compression table.ql-cmp-risk { border-collapse: collapse; font-variant-numeric: tabular-nums; font-size: 12.5px; margin: 4px 0 8px; }
.ql-compression table.ql-cmp-risk th, .ql-compression table.ql-cmp-risk td { padding: 3px 8px; border-bottom: 1px solid var(--ql-v-line); text-align: right; white-space: nowrap; }
.ql-compression table.ql-cmp-risk th { background: var(--ql-v-head); font-weight: 600; }
.ql-compression table.ql-cmp-risk td.ql-cmp-name, .ql-compression table.ql-cmp-risk th.ql-cmp-name { text-align: left; max-width: 28ch; overflow: hidden; text-overflow: ellipsis; }
.ql-compression .ql-cmp-dot { display: inline-block; width: 8px; height: 8px; border-radius: 50%; margin-right: 4px; vertical-align: middle; }
.ql-compression .ql-cmp-risk-run { padding: 4px 10px; }
`;

// A method's colour and label, the same in every chart and table.
const METHODS = {
  'weight-svd': { color: palette.blue, label: 'weight SVD' },
  'spatial-svd': { color: palette.green, label: 'spatial SVD' },
  'channel-prune': { color: palette.vermillion, label: 'channel pruning' },
};
const methodLabel = (m) => (m ? METHODS[m]?.label || m : 'as it is');
const pct = (f) => (f === null || f === undefined ? '—' : `${formatNumber(100 * f)}%`);
const dbText = (x) => (x === null || x === undefined || !Number.isFinite(x) ? '—' : `${formatDb(x)} dB`);
// The fraction of its own parameters a planned layer keeps (paramFraction is net of what
// pruning removes from the producer, which can go below 0).
const ownKept = (p) => (p.paramsBefore ? p.params / p.paramsBefore : 1);

// The plans by ratio: `plans` when computed, else the one plan.
function plansOf(c) {
  if (Array.isArray(c.plans) && c.plans.length) return c.plans;
  const ratio = c.plan ? c.plan.target.ratio : 0.5;
  return [{ ratio, plan: c.plan, planError: c.planError, uniform: c.uniform }];
}

// The curve points of a layer's method, as [{fraction (of the layer's own parameters),
// sqnrDb, keep}] with a finite SQNR, from every point when there, else the fixed fractions.
function curvePoints(layer, curve) {
  const out = [];
  if (curve.params) {
    for (let j = 0; j < curve.params.length; j++) {
      if (Number.isFinite(curve.sqnrDb[j]))
        out.push({ fraction: ownFraction(curve, j, layer.params), sqnrDb: curve.sqnrDb[j], keep: curve.keep[j] });
    }
  } else {
    for (const p of curve.points)
      if (p.params !== null && Number.isFinite(p.sqnrDb))
        out.push({ fraction: p.params / layer.params, sqnrDb: p.sqnrDb, keep: p.keep });
  }
  return out.sort((a, b) => a.fraction - b.fraction);
}

function lowestSqnr(plan) {
  let lo = Infinity;
  for (const l of plan ? plan.layers : []) if (l.method && Number.isFinite(l.sqnrDb)) lo = Math.min(lo, l.sqnrDb);
  return Number.isFinite(lo) ? lo : null;
}

export function renderCompressionView(element, compression, options = {}) {
  const c = compression;
  const root = viewRoot(element, 'ql-compression');
  ensureStyles('ql-compression', CSS, element.ownerDocument);
  const doc = element.ownerDocument || document;
  const tip = tooltip(root);
  const plans = plansOf(c);
  const layers = c.layers.map((l) => ({ ...l, curves: l.full || l.curves }));
  const names = nameShortener(layers.map((l) => l.name));
  const state = {
    index: Math.max(
      0,
      plans.findIndex((p) => Math.abs(p.ratio - (options.ratio ?? c.plan?.target.ratio ?? 0.5)) < 1e-9),
    ),
    sqnrDb: options.sqnrDb ?? 30,
    selected: options.selected ?? null,
  };
  const by = c.plan?.target.by || plans.find((p) => p.plan)?.plan.target.by || 'params';
  const method = c.plan?.target.method || plans.find((p) => p.plan)?.plan.target.method || 'svd';

  const h = (tag, props = {}, ...children) => {
    const n = doc.createElement(tag);
    for (const [k, v] of Object.entries(props)) {
      if (k === 'text') n.textContent = v;
      else if (k === 'dataset') Object.assign(n.dataset, v);
      else if (v !== false && v != null) n.setAttribute(k, v === true ? '' : v);
    }
    for (const ch of children) if (ch != null) n.append(ch);
    return n;
  };

  root.append(
    h('h2', { text: `Compressibility of ${c.model.name}` }),
    h('p', {
      class: 'ql-muted',
      text: `Data-free, from the weights alone: each layer's weight reconstruction SQNR against the fraction of its parameters kept (${method === 'svd' ? 'weight and spatial SVD' : method === 'prune' ? 'channel pruning' : 'SVD and channel pruning'}), and a plan that keeps a target fraction of the model's weight-layer ${by === 'macs' ? 'MACs' : 'parameters'}.`,
    }),
  );

  // ---- the target and its plan
  const slider = h('input', {
    type: 'range',
    min: 0,
    max: plans.length - 1,
    step: 1,
    value: state.index,
    'data-action': 'target',
    'aria-label': 'target fraction to keep',
  });
  const targetText = h('b', { 'data-field': 'target' });
  const controls = h('div', { class: 'ql-cmp-controls' }, h('label', {}, h('span', { text: 'Target' }), slider, targetText));
  let download = null;
  if (options.onDownload) {
    download = h('button', { type: 'button', class: 'ql-cmp-download', 'data-action': 'download-compressed' });
    download.addEventListener('click', () => options.onDownload(plans[state.index].ratio));
    controls.append(download);
  }
  if (plans.length < 2) slider.disabled = true;
  const summary = h('p', { class: 'ql-cmp-summary' });
  root.append(controls, summary);

  // ---- the ranking SQNR
  const sqnrInput = h('input', {
    type: 'number',
    step: 1,
    min: -20,
    max: 200,
    value: state.sqnrDb,
    'data-action': 'sqnr',
    'aria-label': 'weight SQNR for the ranking (dB)',
  });
  root.append(
    h(
      'div',
      { class: 'ql-cmp-controls' },
      h(
        'label',
        {},
        h('span', { text: 'Rank layers by the fraction they keep at a weight SQNR of' }),
        sqnrInput,
        h('span', { text: 'dB' }),
      ),
    ),
  );

  const grid = h('div', { class: 'ql-cmp-grid' });
  const tablePanel = h('div', { class: 'ql-cmp-scroll' });
  const curvePanel = h('div', { class: 'ql-cmp-panel' });
  grid.append(tablePanel, curvePanel);
  root.append(grid);
  const riskSection = h('section', { 'data-section': 'risk' });
  root.append(riskSection);
  let risk = options.risk || c.risk || null; // { ratio, result: compressionRisk() } (the app keeps it on the result)

  const current = () => plans[state.index];
  const planLayer = (name) => current().plan?.layers.find((l) => l.name === name) || null;

  function renderSummary() {
    const p = current();
    targetText.textContent = `keep ${pct(p.ratio)} of ${by === 'macs' ? 'MACs' : 'parameters'}`;
    if (download) {
      download.textContent = `Download the model at ${pct(p.ratio)}`;
      download.disabled = !p.plan;
    }
    summary.replaceChildren();
    if (!p.plan) {
      summary.append(
        h('span', { 'data-field': 'plan-error', text: `No plan at this target: ${p.planError?.message || 'not planned'}.` }),
      );
      return;
    }
    const a = p.plan.achieved;
    const done = p.plan.layers.filter((l) => l.method);
    const alone = p.plan.layers.length - done.length;
    summary.append(
      'The plan keeps ',
      h('b', { 'data-field': 'achieved', text: pct(by === 'macs' && a.macs !== null ? a.macs : a.params) }),
      ` (${formatCount(a.paramsAfter)} of ${formatCount(a.paramsBefore)} parameters${a.macs !== null ? `, ${pct(a.macs)} of MACs` : ''}): ${done.length} layers compressed, ${alone} left as they are; every compressed layer keeps a weight SQNR of at least `,
      h('b', { 'data-field': 'threshold', text: dbText(p.plan.thresholdDb) }),
      '. The same fraction in every layer (uniform) at this size would leave its worst layer at ',
      h('b', { 'data-field': 'uniform', text: dbText(lowestSqnr(p.uniform)) }),
      '.',
    );
  }

  let rows = [];
  function renderTable() {
    const ranked = layers.map((l) => ({ layer: l, kept: keptAt(l, state.sqnrDb) }));
    // Most compressible first; layers no method compresses last, in model order.
    ranked.sort((a, b) => (a.kept ? a.kept.fraction : 2) - (b.kept ? b.kept.fraction : 2));
    const table = h('table', { class: 'ql-table ql-cmp-layers' });
    table.append(
      h(
        'caption',
        { class: 'ql-muted', style: 'caption-side: top; text-align: left; padding: 2px 0 4px' },
        `Layers ranked by the fraction of their parameters they keep at ${dbText(state.sqnrDb)}, and the plan at ${pct(current().ratio)}`,
      ),
    );
    const head = h('tr');
    for (const [t, cls] of [
      ['#', ''],
      ['Layer', 'ql-cmp-name'],
      ['Parameters', ''],
      [`Keeps at ${dbText(state.sqnrDb)}`, 'ql-cmp-name'],
      ['Plan', 'ql-cmp-name'],
      ['Kept', ''],
      ['SQNR', ''],
    ])
      head.append(h('th', { class: cls || null, text: t }));
    table.append(h('thead', {}, head));
    const body = h('tbody');
    rows = [];
    ranked.forEach(({ layer, kept }, k) => {
      const p = planLayer(layer.name);
      const tr = h('tr', {
        'data-layer': layer.name,
        'data-kept': kept ? String(kept.fraction) : null,
        'data-plan-method': p?.method || null,
        'data-plan-fraction': p ? String(p.paramFraction) : null,
        'data-plan-sqnr': p && Number.isFinite(p.sqnrDb) ? String(p.sqnrDb) : null,
        'aria-selected': String(layer.name === state.selected),
        tabindex: 0,
      });
      const bar = h('span', { class: 'ql-cmp-bar', style: `width: ${kept ? Math.round(40 * kept.fraction) : 0}px` });
      tr.append(
        h('td', { text: String(k + 1) }),
        h('td', { class: 'ql-cmp-name', title: `${layer.name} (${layer.op})`, text: names.short(layer.name) }),
        h('td', { text: formatCount(layer.params) }),
        h(
          'td',
          { class: 'ql-cmp-name' },
          ...(kept
            ? [
                bar,
                pct(kept.fraction),
                h('span', {
                  class: 'ql-muted',
                  text: kept.method ? ` ${methodLabel(kept.method)}` : ' (no method below full size)',
                }),
              ]
            : [h('span', { class: 'ql-muted', text: 'not compressible' })]),
        ),
      );
      if (p && p.method) {
        const what = p.keptChannels !== null ? `${p.keptChannels} channels` : `rank ${p.rank}`;
        tr.append(
          h('td', { class: 'ql-cmp-name', text: `${methodLabel(p.method)}, ${what}` }),
          h('td', {
            text: pct(ownKept(p)),
            title: p.paramsRemovedElsewhere
              ? `and ${formatCount(p.paramsRemovedElsewhere)} parameters removed from its producer`
              : null,
          }),
          h('td', { text: dbText(p.sqnrDb) }),
        );
      } else {
        tr.append(
          h('td', {
            class: 'ql-cmp-why',
            colspan: 3,
            title: p?.leftAlone || '',
            text: p ? `as it is${p.leftAlone ? `: ${p.leftAlone}` : ''}` : '—',
          }),
        );
      }
      const choose = () => select(layer.name, true);
      tr.addEventListener('click', choose);
      tr.addEventListener('keydown', (e) => {
        if (e.key === 'Enter' || e.key === ' ') {
          e.preventDefault();
          choose();
        }
      });
      rows.push(tr);
      body.append(tr);
    });
    table.append(body);
    tablePanel.replaceChildren(table);
    if (state.selected === null && ranked.length) state.selected = ranked[0].layer.name;
    for (const tr of rows) tr.setAttribute('aria-selected', String(tr.dataset.layer === state.selected));
  }

  let widthWatch = null;
  function renderCurves() {
    if (widthWatch) widthWatch.disconnect();
    curvePanel.replaceChildren();
    const layer = layers.find((l) => l.name === state.selected);
    if (!layer) return;
    const block = h('div', { class: 'ql-chart', 'data-chart': 'curves', 'data-layer': layer.name });
    block.append(h('h3', { text: `Weight SQNR against parameters kept: ${layer.name}` }));
    block.append(
      h('p', {
        class: 'ql-muted',
        text: `${layer.op}, ${formatCount(layer.params)} parameters${layer.macs ? `, ${formatCount(layer.macs)} MACs` : ''}`,
      }),
    );
    curvePanel.append(block);
    const usable = layer.curves.filter((k) => !k.refused);
    for (const k of layer.curves.filter((x) => x.refused))
      block.append(h('p', { class: 'ql-cmp-refused', 'data-refused': k.method, text: `${methodLabel(k.method)}: ${k.refused}` }));
    if (!usable.length) {
      block.append(h('p', { class: 'ql-empty', text: 'No method compresses this layer.' }));
      return;
    }
    const series = usable.map((k) => ({ method: k.method, producer: k.producer, points: curvePoints(layer, k) }));
    const chosen = planLayer(layer.name);
    const chart = h('div');
    block.append(chart);
    legend(block, [
      ...series.map((s) => ({ label: methodLabel(s.method), color: METHODS[s.method]?.color || palette.grey, kind: 'line' })),
      { label: `${dbText(state.sqnrDb)} (the ranking's SQNR)`, color: palette.grey, kind: 'dash' },
      ...(chosen && chosen.method ? [{ label: 'the plan', color: palette.black, kind: 'dot' }] : []),
    ]);
    for (const s of series)
      if (s.producer)
        block.append(
          h('p', {
            class: 'ql-muted',
            text: `${methodLabel(s.method)} removes the matching output channels of ${s.producer} too; counted net.`,
          }),
        );
    widthWatch = observeWidth(chart, (w) => drawCurves(chart, Math.max(280, Math.min(w, 640)), series, chosen));
  }

  function drawCurves(host, width, series, chosen) {
    host.replaceChildren();
    const margin = { top: 10, right: 14, bottom: 42, left: 56 };
    const f = chartFrame(host, { width, height: 260, margin });
    f.svg.attr('aria-label', `weight SQNR (dB) against the fraction of parameters kept, ${state.selected}`);
    const all = series.flatMap((s) => s.points.map((p) => p.sqnrDb));
    const hi = Math.max(state.sqnrDb + 5, d3.max(all) ?? 40);
    const lo = Math.min(0, d3.min(all) ?? 0, state.sqnrDb - 5);
    const x = d3.scaleLinear().domain([0, 1]).range([0, f.width]);
    const y = d3.scaleLinear().domain([lo, hi]).nice().range([f.height, 0]);
    drawAxes(f.g, {
      x,
      y,
      width: f.width,
      height: f.height,
      xLabel: 'fraction of the layer’s parameters kept',
      yLabel: 'weight SQNR (dB)',
      xFormat: (v) => `${Math.round(v * 100)}%`,
    });
    f.g
      .append('line')
      .attr('class', 'ql-cmp-rule')
      .attr('x1', 0)
      .attr('x2', f.width)
      .attr('y1', y(state.sqnrDb))
      .attr('y2', y(state.sqnrDb))
      .attr('stroke', palette.grey)
      .attr('stroke-dasharray', '5 4');
    const line = d3
      .line()
      .x((p) => x(p.fraction))
      .y((p) => y(p.sqnrDb));
    for (const s of series) {
      const color = METHODS[s.method]?.color || palette.grey;
      f.g
        .append('path')
        .attr('data-method', s.method)
        .attr('fill', 'none')
        .attr('stroke', color)
        .attr('stroke-width', 2)
        .attr('d', line(s.points));
      f.g
        .append('g')
        .selectAll('circle')
        .data(s.points)
        .join('circle')
        .attr('cx', (p) => x(p.fraction))
        .attr('cy', (p) => y(p.sqnrDb))
        .attr('r', s.points.length > 60 ? 1.5 : 3)
        .attr('fill', color)
        .on('mousemove', (e, p) =>
          tip.show(e, methodLabel(s.method), [
            [s.method === 'channel-prune' ? 'channels kept' : 'rank', p.keep],
            ['parameters kept', pct(p.fraction)],
            ['weight SQNR', dbText(p.sqnrDb)],
          ]),
        )
        .on('mouseleave', () => tip.hide());
    }
    if (chosen && chosen.method && Number.isFinite(chosen.sqnrDb)) {
      f.g
        .append('circle')
        .attr('data-chosen', chosen.method)
        .attr('cx', x(ownKept(chosen)))
        .attr('cy', y(chosen.sqnrDb))
        .attr('r', 6)
        .attr('fill', 'none')
        .attr('stroke', '#000')
        .attr('stroke-width', 2);
    }
  }

  function select(name, fromUser) {
    state.selected = name;
    for (const tr of rows) tr.setAttribute('aria-selected', String(tr.dataset.layer === name));
    renderCurves();
    if (fromUser && options.onSelect) options.onSelect(name);
  }

  function setRatio(r) {
    const k = plans.findIndex((p) => Math.abs(p.ratio - r) < 1e-9);
    if (k < 0) return false;
    state.index = k;
    slider.value = String(k);
    update();
    return true;
  }

  // What the plan does to quantization risk: the plan's layers analysed in the written model.
  const RISK_SCHEMES = ['int8PerTensor', 'int8PerChannel', 'int4PerChannel'];
  function renderRisk() {
    riskSection.replaceChildren(h('h3', { text: 'Quantization risk after compression' }));
    const p = current();
    const intro = h('p', { class: 'ql-muted' });
    riskSection.append(intro);
    if (options.onRisk && p.plan) {
      const run = h('button', {
        type: 'button',
        class: 'ql-cmp-risk-run',
        'data-action': 'risk',
        text: `Analyse the model compressed to ${pct(p.ratio)}`,
      });
      run.addEventListener('click', () => options.onRisk(p.ratio));
      riskSection.append(run);
    }
    if (!risk || Math.abs(risk.ratio - p.ratio) > 1e-9) {
      intro.textContent = risk
        ? `Analysed for the plan at ${pct(risk.ratio)}; move the target back there, or analyse this one.`
        : 'The layers the plan writes (an SVD layer becomes two) are quantized like any other: analyse the compressed model to see their SQNR and outlier channels beside the original layers’.';
      return;
    }
    const r = risk.result;
    const schemes = RISK_SCHEMES.filter((s) => r.schemes.includes(s));
    intro.textContent = `The model compressed to ${pct(risk.ratio)}, analysed: the layers that compute each compressed layer (the worst of an SVD layer's two) against the original layer.`;
    const sum = h('table', { class: 'ql-table ql-cmp-risk ql-cmp-risk-summary' });
    sum.append(
      h('caption', {
        class: 'ql-muted',
        style: 'caption-side: top; text-align: left',
        text: 'Layers at high risk in the whole model',
      }),
    );
    sum.append(
      h(
        'thead',
        {},
        h(
          'tr',
          {},
          h('th', { class: 'ql-cmp-name', text: 'scheme' }),
          h('th', { text: 'original' }),
          h('th', { text: 'compressed' }),
        ),
      ),
    );
    const sb = h('tbody');
    for (const s of schemes) {
      const c = r.highRisk[s];
      sb.append(
        h(
          'tr',
          { 'data-scheme': s, 'data-before': String(c.before), 'data-after': String(c.after) },
          h('td', { class: 'ql-cmp-name', text: schemeLabel(s) }),
          h('td', { text: String(c.before) }),
          h('td', { text: String(c.after) }),
        ),
      );
    }
    sum.append(sb);
    riskSection.append(sum);
    const table = h('table', { class: 'ql-table ql-cmp-risk ql-cmp-risk-layers' });
    const head = h(
      'tr',
      {},
      h('th', { class: 'ql-cmp-name', text: 'Layer' }),
      h('th', { class: 'ql-cmp-name', text: 'compressed by' }),
    );
    for (const s of schemes) head.append(h('th', { text: `${schemeLabel(s)} SQNR` }));
    head.append(h('th', { text: 'outlier channels' }));
    table.append(h('thead', {}, head));
    const body = h('tbody');
    const cell = (before, after, level) => {
      const td = h('td', {
        'data-before': before === null ? null : String(before),
        'data-after': after === null ? null : String(after),
      });
      td.append(
        h('span', { class: 'ql-cmp-dot', style: `background: ${riskColor(level)}` }),
        `${dbText(before)} → ${dbText(after)}`,
      );
      return td;
    };
    for (const l of r.layers) {
      const tr = h('tr', { 'data-layer': l.name });
      tr.append(
        h('td', { class: 'ql-cmp-name', title: l.name, text: names.short(l.name) }),
        h('td', {
          class: 'ql-cmp-name',
          title: l.nodes.join(', '),
          text: `${methodLabel(l.method)}, ${l.keptChannels !== null ? `${l.keptChannels} channels` : `rank ${l.rank}`}${l.missing.length ? ' (not found in the analysis)' : ''}`,
        }),
      );
      for (const s of schemes) {
        const td = cell(l.before ? l.before.sqnr[s] : null, l.after.sqnr[s], l.after.risk[s]);
        td.dataset.scheme = s;
        tr.append(td);
      }
      tr.append(h('td', { 'data-field': 'outliers', text: `${l.before ? l.before.outliers : '—'} → ${l.after.outliers}` }));
      body.append(tr);
    }
    table.append(body);
    riskSection.append(table);
  }

  function update() {
    renderSummary();
    renderTable();
    renderCurves();
    renderRisk();
  }

  slider.addEventListener('input', () => {
    state.index = Number(slider.value);
    update();
    if (options.onRatio) options.onRatio(plans[state.index].ratio);
  });
  sqnrInput.addEventListener('change', () => {
    const v = Number(sqnrInput.value);
    if (!Number.isFinite(v)) return;
    state.sqnrDb = v;
    renderTable();
    renderCurves();
  });
  update();

  return {
    setRatio,
    select: (name) => select(name, false),
    /** Shows { ratio, result: compressionRisk(...) } (the plan at `ratio` analysed). */
    setRisk(r) {
      risk = r;
      renderRisk();
    },
    destroy() {
      if (widthWatch) widthWatch.disconnect();
      tip.destroy();
      root.remove();
    },
  };
}
