// The layer view (AIMET's visualize_weight_ranges and TensorFlow's single-layer views):
// per-output-channel min/max/mean with a ±std band (zoom and pan along x), mean vs std
// and min vs max per channel, the histogram of relative channel ranges with the Tukey
// threshold, the weight histogram, a summary of channel ranges, the layer's facts and
// its SQNR under every scheme (the six, and int4Block<N> when measured). Flagged (outlier) channels are marked in every chart
// in the same colour. Below the output channels, the weight's absMax per input channel
// (what SmoothQuant and AWQ rescale) with its flagged input channels.
//
// Contract: the root (div.ql-view.ql-layer-view) carries data-layer-name; the element
// [data-field="outliers"] holds the number of flagged channels; each chart
// ([data-chart="channels|mean-std|min-max|relative-range|histogram"]) holds exactly one
// .ql-flagged element per flagged channel (with data-channel). [data-field="input-outliers"]
// holds the number of flagged input channels, and [data-chart="input-channels"] one
// .ql-flagged element per flagged input channel (data-channel: the input channel). A
// failed layer shows .ql-error with its message. Model strings are written with .text() only.
import * as d3 from 'd3';
import {
  colors,
  palette,
  formatDb,
  formatNumber,
  SCHEMES,
  schemeLabel,
  ensureStyles,
  tooltip,
  observeWidth,
  chartFrame,
  cssColor,
  drawAxes,
  legend,
  layerLabel,
  followerText,
  quantizationDetail,
  channelAxisText,
  channelText,
  recurrentText,
  storedFactsText,
  resolveLayer,
  viewRoot,
  finiteExtent,
} from './common.js';
import { channelRangeChart } from './channel-range.js';
import { INPUT_OUTLIER_RULE, inputChannelText, riskOfScheme } from '../presentation.js';
import { layerWhy, worstChannel } from '../verdict.js';
import { subgraphText } from '../names.js';

const css = `
.ql-layer-view h2 { overflow-wrap: anywhere; }
.ql-layer-view .ql-layer-tables { display: flex; flex-wrap: wrap; gap: 10px 28px; align-items: flex-start; margin: 6px 0 10px; }
.ql-layer-view .ql-layer-tables table.ql-table th[scope="row"] { background: none; font-weight: 600; position: static; }
.ql-layer-view .ql-layer-tables caption { text-align: left; font-weight: 600; padding: 2px 0 4px; }
.ql-layer-view .ql-facts td { max-width: 36em; overflow: hidden; text-overflow: ellipsis; }
.ql-layer-view .ql-charts { display: grid; gap: 14px 28px; grid-template-columns: repeat(var(--ql-cols, 2), minmax(0, 1fr)); }
.ql-layer-view .ql-chart-wide { grid-column: 1 / -1; }
.ql-layer-view .ql-chart h3 { margin-top: 4px; }
.ql-layer-view .ql-chart .ql-hint { font-size: 11px; color: var(--ql-v-muted); margin-left: 8px; font-weight: normal; }
.ql-layer-view .ql-chart button { font: inherit; font-size: 11px; margin-left: 8px; padding: 0 6px; }
.ql-layer-view .ql-overlay { fill: transparent; cursor: crosshair; }
.ql-layer-view [data-chart="channels"] .ql-overlay { cursor: grab; }
.ql-layer-view .ql-why { margin: 6px 0 4px; padding: 6px 10px; background: var(--ql-v-panel); border-left: 4px solid ${palette.blue}; max-width: 110ch; overflow-wrap: anywhere; }
.ql-layer-view .ql-single { margin: 8px 0; padding: 6px 10px; background: var(--ql-v-head); border-left: 4px solid ${palette.grey}; max-width: 110ch; }
`;

// Count, mean, population std, min, Q1, median, Q3, max (quartiles by linear
// interpolation, numpy's default) of a layer's channel ranges and relative ranges:
// the one place the view computes statistics the analysis does not carry.
export function channelRangeSummary(layer) {
  const describe = (values) => {
    const v = Float64Array.from(values || [])
      .filter((x) => Number.isFinite(x))
      .sort();
    const n = v.length;
    if (!n) return { count: 0, mean: NaN, std: NaN, min: NaN, q1: NaN, median: NaN, q3: NaN, max: NaN };
    let sum = 0;
    for (const x of v) sum += x;
    const mean = sum / n;
    let ss = 0;
    for (const x of v) ss += (x - mean) * (x - mean);
    return {
      count: n,
      mean,
      std: Math.sqrt(ss / n),
      min: v[0],
      q1: d3.quantileSorted(v, 0.25),
      median: d3.quantileSorted(v, 0.5),
      q3: d3.quantileSorted(v, 0.75),
      max: v[n - 1],
    };
  };
  const ch = layer && layer.channels;
  return { range: describe(ch && ch.range), relativeRange: describe(ch && ch.relativeRange) };
}

const dims = (l) => (l.shape || []).join('×');

function flaggedSet(layer) {
  return new Set(Array.from(layer.outlierChannels || []));
}

function channelRows(l, c, flagged) {
  const ch = l.channels;
  return [
    ['min', formatNumber(ch.min[c])],
    ['max', formatNumber(ch.max[c])],
    ['mean', formatNumber(ch.mean[c])],
    ['std', formatNumber(ch.std[c])],
    ['range', formatNumber(ch.range[c])],
    ['relative range', `${formatNumber(ch.relativeRange[c])}×`],
    ...(flagged.has(c) ? [['flagged', 'outlier channel']] : []),
  ];
}

// A chart block: <div class="ql-chart" data-chart=...> with a title and a legend.
function block(parent, key, title, { wide = false, hint } = {}) {
  const div = d3.select(parent).append('div').attr('class', 'ql-chart').attr('data-chart', key).classed('ql-chart-wide', wide);
  const h = div.append('h3').text(title);
  if (hint) h.append('span').attr('class', 'ql-hint').text(hint);
  return { div, h };
}

// ---------------------------------------------------------------------------
// Per-channel min / max / mean lines and mean ± std band, with x-only zoom and pan.
function channelChart(parent, l, { width, tip, flagged, worst = -1 }) {
  const ch = l.channels;
  const C = ch.count;
  const zoomable = C >= 32;
  const { div, h } = block(parent, 'channels', 'Weight range per output channel', {
    wide: true,
    hint: zoomable ? 'scroll to zoom, drag to pan (x)' : '',
  });
  legend(div.node(), [
    { label: 'max', color: colors.max, kind: 'line' },
    { label: 'mean', color: colors.mean, kind: 'line' },
    { label: 'min', color: colors.min, kind: 'line' },
    { label: 'mean ± std', color: colors.band, kind: 'band' },
    { label: `outlier channel (${flagged.size})`, color: colors.flagged, kind: 'dot' },
    ...(worst >= 0 ? [{ label: `worst channel (${worst})`, color: '#000', kind: 'dash' }] : []),
  ]);
  const chart = channelRangeChart(
    { min: ch.min, max: ch.max, mean: ch.mean, std: ch.std, flagged, worst },
    {
      width,
      height: Math.round(Math.max(220, Math.min(340, width * 0.22))),
      margin: { top: 8, right: 16, bottom: 42, left: 62 },
      xLabel: `output channel (${channelAxisText(l)})`,
      zero: true,
      tip,
      tipRows: (c) => [channelText(l, c), channelRows(l, c, flagged)],
    },
  );
  div.node().append(chart.svg);
  if (zoomable) {
    const w = chart.x.range()[1];
    const ht = chart.y.range()[0];
    const zoom = d3
      .zoom()
      .scaleExtent([1, Math.max(2, C / 8)])
      .extent([
        [0, 0],
        [w, ht],
      ])
      .translateExtent([
        [0, 0],
        [w, ht],
      ])
      .on('zoom', (event) => {
        chart.rescale(event.transform.rescaleX(chart.x));
        tip.hide();
      });
    chart.overlay.call(zoom).on('dblclick.zoom', null);
    h.append('button')
      .attr('type', 'button')
      .text('reset zoom')
      .on('click', () => chart.overlay.call(zoom.transform, d3.zoomIdentity));
    return { zoom, overlay: chart.overlay, svg: d3.select(chart.svg) };
  }
  return { svg: d3.select(chart.svg) };
}

// absMax per input channel, drawn as the ±absMax a symmetric quantizer has to reach
// (the shared range chart), the flagged input channels marked and the Tukey threshold
// (threshold × the smallest non-zero absMax) as a dashed rule on both sides.
function inputChannelChart(parent, l, { width, tip }) {
  const ic = l.inputChannels;
  const flagged = new Set(Array.from(ic.outliers));
  const { div } = block(parent, 'input-channels', 'Weight absMax per input channel', {
    wide: true,
    hint: `${flagged.size} flagged of ${ic.count}`,
  });
  const abs = Float64Array.from(ic.absMax);
  const unit = d3.min(abs.filter((v) => v > 0));
  const limit = unit !== undefined && Number.isFinite(ic.threshold) ? ic.threshold * unit : NaN;
  legend(div.node(), [
    { label: 'absMax', color: colors.max, kind: 'line' },
    { label: '−absMax', color: colors.min, kind: 'line' },
    { label: `outlier input channel (${flagged.size})`, color: colors.flagged, kind: 'dot' },
    ...(Number.isFinite(limit)
      ? [{ label: `±threshold: ${formatNumber(ic.threshold)}× the smallest absMax`, color: palette.black, kind: 'dash' }]
      : []),
  ]);
  const group = (i) => (ic.groups > 1 ? [['group, index', `${Math.floor(i / ic.perGroup)}, ${i % ic.perGroup}`]] : []);
  const chart = channelRangeChart(
    { min: abs.map((v) => -v), max: abs, flagged },
    {
      width,
      height: Math.round(Math.max(200, Math.min(300, width * 0.2))),
      margin: { top: 8, right: 16, bottom: 42, left: 62 },
      xLabel:
        ic.groups > 1 ? `input channel (group × ${ic.perGroup} + index on axis ${ic.axis})` : `input channel (axis ${ic.axis})`,
      domain: Number.isFinite(limit) ? [-Math.max(limit, d3.max(abs)), Math.max(limit, d3.max(abs))] : undefined,
      zero: true,
      tip,
      tipRows: (i) => [
        `input channel ${i}`,
        [
          ['absMax', formatNumber(ic.absMax[i])],
          ['relative absMax', `${formatNumber(ic.relativeAbsMax[i])}×`],
          ...group(i),
          ...(flagged.has(i) ? [['flagged', 'outlier input channel']] : []),
        ],
      ],
      ariaLabel: `Weight absMax of each of ${ic.count} input channels, ${flagged.size} flagged`,
    },
  );
  div.node().append(chart.svg);
  if (Number.isFinite(limit)) {
    const g = d3.select(chart.svg).select('g');
    const [x0, x1] = chart.x.range();
    for (const v of [-limit, limit])
      g.append('line')
        .attr('class', 'ql-threshold')
        .attr('x1', x0)
        .attr('x2', x1)
        .attr('y1', chart.y(v))
        .attr('y2', chart.y(v))
        .attr('stroke', palette.black)
        .attr('stroke-width', 1.2)
        .attr('stroke-dasharray', '5 4');
  }
  div.append('p').attr('class', 'ql-muted').text(`Flagged: ${INPUT_OUTLIER_RULE}.`);
}

// A scatter of two per-channel quantities with a Delaunay hover.
function scatter(parent, l, { key, title, xs, ys, xLabel, yLabel, width, tip, flagged, reference, worst = -1 }) {
  const C = l.channels.count;
  const { div } = block(parent, key, title);
  legend(div.node(), [
    { label: 'channel', color: colors.after, kind: 'dot' },
    { label: `outlier channel (${flagged.size})`, color: colors.flagged, kind: 'dot' },
    ...(worst >= 0 ? [{ label: `worst channel (${worst})`, color: 'none', stroke: palette.black, kind: 'dot' }] : []),
    ...(reference ? [{ label: reference.label, color: palette.grey, kind: 'dash' }] : []),
  ]);
  const margin = { top: 8, right: 16, bottom: 42, left: 62 };
  const height = Math.round(Math.max(220, Math.min(320, width * 0.6)));
  const f = chartFrame(div.node(), { width, height, margin });
  const ok = (c) => Number.isFinite(xs[c]) && Number.isFinite(ys[c]);
  // A degenerate extent (all channels alike) is widened by 5% of the value, not by 1, and a
  // quantity that cannot be negative (std) keeps its axis at 0 or above.
  const ext = (v, nonNegative) => {
    const [a, b] = finiteExtent(v, [0, 1]);
    return nonNegative && a < 0 ? [0, Math.max(b, 1e-12)] : [a, b];
  };
  const x = d3.scaleLinear().domain(ext(xs)).nice().range([0, f.width]);
  const y = d3
    .scaleLinear()
    .domain(ext(ys, key === 'mean-std'))
    .nice()
    .range([f.height, 0]);
  drawAxes(f.g, { x, y, width: f.width, height: f.height, xLabel, yLabel });
  if (reference) reference.draw(f.g, x, y, f.width, f.height);
  const r = C > 2000 ? 1.6 : C > 300 ? 2.4 : 3.2;
  const normal = d3.range(C).filter((c) => !flagged.has(c) && ok(c));
  f.g
    .append('g')
    .attr('class', 'ql-points')
    .selectAll('circle')
    .data(normal)
    .join('circle')
    .attr('cx', (c) => x(xs[c]))
    .attr('cy', (c) => y(ys[c]))
    .attr('r', r)
    .attr('fill', colors.after)
    .attr('fill-opacity', 0.6);
  f.g
    .append('g')
    .selectAll('circle')
    .data([...flagged].sort((a, b) => a - b))
    .join('circle')
    .attr('class', 'ql-flagged')
    .attr('data-channel', (c) => c)
    .attr('cx', (c) => x(Number.isFinite(xs[c]) ? xs[c] : x.domain()[0]))
    .attr('cy', (c) => y(Number.isFinite(ys[c]) ? ys[c] : y.domain()[0]))
    .attr('r', r + 1.8)
    .attr('fill', colors.flagged)
    .attr('stroke', '#fff')
    .attr('stroke-width', 0.8);
  if (worst >= 0 && ok(worst))
    f.g
      .append('circle')
      .attr('class', 'ql-worst')
      .attr('data-channel', worst)
      .attr('cx', x(xs[worst]))
      .attr('cy', y(ys[worst]))
      .attr('r', r + 5)
      .attr('fill', 'none')
      .attr('stroke', palette.black)
      .attr('stroke-width', 1.5)
      .attr('stroke-dasharray', '3 2');
  const ring = f.g
    .append('circle')
    .attr('r', r + 4)
    .attr('fill', 'none')
    .attr('stroke', '#000')
    .attr('visibility', 'hidden');
  const pts = d3.range(C).filter(ok);
  const delaunay = d3.Delaunay.from(
    pts,
    (c) => x(xs[c]),
    (c) => y(ys[c]),
  );
  f.g
    .append('rect')
    .attr('class', 'ql-overlay')
    .attr('width', f.width)
    .attr('height', f.height)
    .on('mousemove', (event) => {
      const [mx, my] = d3.pointer(event);
      const c = pts.length ? pts[delaunay.find(mx, my)] : -1;
      if (!(c >= 0) || Math.hypot(x(xs[c]) - mx, y(ys[c]) - my) > 30) {
        ring.attr('visibility', 'hidden');
        tip.hide();
        return;
      }
      ring.attr('cx', x(xs[c])).attr('cy', y(ys[c])).attr('visibility', 'visible');
      tip.show(event, channelText(l, c), channelRows(l, c, flagged));
    })
    .on('mouseleave', () => {
      ring.attr('visibility', 'hidden');
      tip.hide();
    });
}

// Log-axis tick labels at 1, 2 and 5 times a power of ten only (1 per decade when the
// domain spans more than 4 decades).
const logTicks =
  ([lo, hi]) =>
  (d) => {
    const e = Math.floor(Math.log10(d) + 1e-9);
    const m = d / 10 ** e;
    const keep = Math.log10(hi / lo) > 4 ? [1] : [1, 2, 5];
    return keep.some((k) => Math.abs(m - k) < 1e-6) ? formatNumber(d) : '';
  };

// Histogram of relative channel ranges, flagged part stacked in the flagged colour,
// the Tukey threshold as a rule and a rug tick per flagged channel.
function relativeRangeChart(parent, l, { width, tip, flagged, worst = -1 }) {
  const ch = l.channels;
  const C = ch.count;
  const rel = Array.from(ch.relativeRange);
  const pos = rel.filter((v) => v > 0 && Number.isFinite(v));
  const thr = l.outlierThreshold;
  const maxV = Math.max(d3.max(pos) ?? 1, Number.isFinite(thr) ? thr : 0);
  const minV = d3.min(pos) ?? 1;
  const useLog = pos.length > 0 && maxV / minV > 100;
  const { div } = block(parent, 'relative-range', 'Relative channel ranges');
  legend(div.node(), [
    { label: 'channels', color: colors.after, kind: 'square' },
    { label: `outlier channels (${flagged.size})`, color: colors.flagged, kind: 'square' },
    { label: `Q3 + 1.5·IQR = ${formatNumber(thr)}×`, color: palette.black, kind: 'dash' },
  ]);
  const margin = { top: 8, right: 16, bottom: 42, left: 62 };
  const height = Math.round(Math.max(220, Math.min(300, width * 0.55)));
  const f = chartFrame(div.node(), { width, height, margin });
  const x = useLog ? d3.scaleLog().domain([minV, maxV]).nice() : d3.scaleLinear().domain([0, maxV]).nice();
  x.range([0, f.width]);
  const t = useLog ? Math.log10 : (v) => v;
  const [d0, d1] = x.domain().map(t);
  const nb = Math.max(5, Math.min(40, Math.round(f.width / 14), Math.ceil(Math.sqrt(C) * 2)));
  const step = (d1 - d0) / nb;
  const edges = d3.range(nb + 1).map((k) => d0 + k * step);
  const binOf = (v) => Math.max(0, Math.min(nb - 1, Math.floor((t(v) - d0) / step)));
  const bins = d3.range(nb).map((k) => ({
    k,
    lo: useLog ? 10 ** edges[k] : edges[k],
    hi: useLog ? 10 ** edges[k + 1] : edges[k + 1],
    normal: 0,
    flagged: 0,
  }));
  let dropped = 0;
  rel.forEach((v, c) => {
    if (useLog && !(v > 0)) {
      dropped++;
      return;
    }
    bins[binOf(v)][flagged.has(c) ? 'flagged' : 'normal']++;
  });
  const y = d3
    .scaleLinear()
    .domain([
      0,
      Math.max(
        1,
        d3.max(bins, (b) => b.normal + b.flagged),
      ),
    ])
    .nice()
    .range([f.height, 0]);
  // The unit of the axis, shown: a near-dead channel (range ~0) makes every other ratio huge.
  const unit = d3.min(Array.from(ch.range).filter((v) => v > 0));
  drawAxes(f.g, {
    x,
    y,
    width: f.width,
    height: f.height,
    xLabel: `relative range (× smallest non-zero channel range, ${formatNumber(unit)}${useLog ? '; log scale' : ''})`,
    yLabel: 'channels',
    xFormat: useLog ? logTicks(x.domain()) : undefined,
    yFormat: (d) => (Number.isInteger(d) ? String(d) : ''),
  });
  const bx = (b) => x(b.lo);
  const bw = (b) => Math.max(1, x(b.hi) - x(b.lo) - 1);
  const g = f.g
    .append('g')
    .selectAll('g')
    .data(bins.filter((b) => b.normal + b.flagged))
    .join('g');
  g.append('rect')
    .attr('x', bx)
    .attr('width', bw)
    .attr('y', (b) => y(b.normal))
    .attr('height', (b) => f.height - y(b.normal))
    .attr('fill', colors.after);
  g.append('rect')
    .attr('class', 'ql-flagged-bin')
    .attr('x', bx)
    .attr('width', bw)
    .attr('y', (b) => y(b.normal + b.flagged))
    .attr('height', (b) => y(b.normal) - y(b.normal + b.flagged))
    .attr('fill', colors.flagged);
  g.append('rect')
    .attr('x', bx)
    .attr('width', bw)
    .attr('y', 0)
    .attr('height', f.height)
    .attr('fill', 'transparent')
    .on('mousemove', (event, b) =>
      tip.show(event, `relative range ${formatNumber(b.lo)}×..${formatNumber(b.hi)}×`, [
        ['channels', String(b.normal + b.flagged)],
        ['outlier channels', String(b.flagged)],
      ]),
    )
    .on('mouseleave', () => tip.hide());
  // Rug: one tick per flagged channel.
  f.g
    .append('g')
    .selectAll('line')
    .data([...flagged].sort((a, b) => a - b))
    .join('line')
    .attr('class', 'ql-flagged')
    .attr('data-channel', (c) => c)
    .attr('x1', (c) => x(Math.max(x.domain()[0], rel[c])))
    .attr('x2', (c) => x(Math.max(x.domain()[0], rel[c])))
    .attr('y1', f.height + 1)
    .attr('y2', f.height + 9)
    .attr('stroke', colors.flagged)
    .attr('stroke-width', 1.5);
  if (worst >= 0 && rel[worst] > 0) worstRug(f, x(Math.max(x.domain()[0], rel[worst])), worst);
  if (Number.isFinite(thr)) {
    const tx = x(Math.max(x.domain()[0], thr));
    f.g
      .append('line')
      .attr('class', 'ql-threshold')
      .attr('x1', tx)
      .attr('x2', tx)
      .attr('y1', 0)
      .attr('y2', f.height)
      .attr('stroke', palette.black)
      .attr('stroke-width', 1.5)
      .attr('stroke-dasharray', '5 4');
    f.g
      .append('text')
      .attr('x', tx + (tx > f.width * 0.7 ? -4 : 4))
      .attr('y', 12)
      .attr('text-anchor', tx > f.width * 0.7 ? 'end' : 'start')
      .attr('font-size', 11)
      .text(`threshold ${formatNumber(thr)}×`);
  }
  if (dropped)
    div.append('p').attr('class', 'ql-muted').text(`${dropped} channel(s) with zero range not shown on the log scale.`);
}

// The weight histogram over [tensor min, tensor max], with the per-tensor INT8 grid's
// reach (±absMax) and each flagged channel's [min, max] as a rug.
// The worst channel's tick under a chart's x axis (black, longer than the flagged rug).
function worstRug(f, px, c) {
  f.g
    .append('line')
    .attr('class', 'ql-worst')
    .attr('data-channel', c)
    .attr('x1', px)
    .attr('x2', px)
    .attr('y1', f.height + 1)
    .attr('y2', f.height + 13)
    .attr('stroke', palette.black)
    .attr('stroke-width', 2);
}

function weightHistogram(parent, l, { width, tip, flagged, worst = -1 }) {
  const hgm = l.histogram;
  const counts = Array.from(hgm.counts || []);
  const n = counts.length;
  const { div } = block(parent, 'histogram', 'Weight histogram');
  legend(div.node(), [
    { label: 'weights', color: colors.before, kind: 'square' },
    { label: 'per-tensor scale reach ±max|w|', color: colors.max, kind: 'dash' },
    { label: `outlier channels' min and max (${flagged.size})`, color: colors.flagged, kind: 'rule' },
    ...(worst >= 0 ? [{ label: `worst channel's min and max (${worst})`, color: palette.black, kind: 'rule' }] : []),
  ]);
  const margin = { top: 8, right: 16, bottom: 42, left: 62 };
  const height = Math.round(Math.max(220, Math.min(300, width * 0.55)));
  const f = chartFrame(div.node(), { width, height, margin });
  const absMax = l.tensor ? l.tensor.absMax : Math.max(Math.abs(hgm.min), Math.abs(hgm.max));
  const x = d3
    .scaleLinear()
    .domain([Math.min(hgm.min, -absMax), Math.max(hgm.max, absMax)])
    .nice()
    .range([0, f.width]);
  const y = d3
    .scaleSqrt()
    .domain([0, Math.max(1, d3.max(counts) ?? 1)])
    .nice()
    .range([f.height, 0]);
  drawAxes(f.g, {
    x,
    y,
    width: f.width,
    height: f.height,
    xLabel: 'weight value',
    yLabel: 'weights per bin (√ scale)',
    yTicks: 4,
    yFormat: (d) => (Number.isInteger(d) ? formatNumber(d) : ''),
  });
  const w = n ? (hgm.max - hgm.min) / n : 0;
  const bins = counts.map((c, k) => ({ k, c, lo: hgm.min + k * w, hi: hgm.min + (k + 1) * w })).filter((b) => b.c > 0);
  f.g
    .append('g')
    .selectAll('rect')
    .data(bins)
    .join('rect')
    .attr('x', (b) => x(b.lo))
    .attr('width', (b) => Math.max(1, x(b.hi) - x(b.lo) - (f.width / n > 4 ? 0.5 : 0)))
    .attr('y', (b) => y(b.c))
    .attr('height', (b) => f.height - y(b.c))
    .attr('fill', colors.before)
    .on('mousemove', (event, b) =>
      tip.show(event, `weights in ${formatNumber(b.lo)}..${formatNumber(b.hi)}`, [['count', String(b.c)]]),
    )
    .on('mouseleave', () => tip.hide());
  for (const v of [-absMax, absMax]) {
    f.g
      .append('line')
      .attr('x1', x(v))
      .attr('x2', x(v))
      .attr('y1', 0)
      .attr('y2', f.height)
      .attr('stroke', colors.max)
      .attr('stroke-dasharray', '5 4')
      .attr('stroke-width', 1.2);
  }
  const ch = l.channels;
  if (worst >= 0) for (const k of ['min', 'max']) worstRug(f, x(ch[k][worst]), worst);
  const rug = f.g
    .append('g')
    .selectAll('g')
    .data([...flagged].sort((a, b) => a - b))
    .join('g')
    .attr('class', 'ql-flagged')
    .attr('data-channel', (c) => c);
  for (const k of ['min', 'max']) {
    rug
      .append('line')
      .attr('x1', (c) => x(ch[k][c]))
      .attr('x2', (c) => x(ch[k][c]))
      .attr('y1', f.height + 1)
      .attr('y2', f.height + 9)
      .attr('stroke', colors.flagged)
      .attr('stroke-width', 1.5);
  }
}

// ---------------------------------------------------------------------------
function keyValueTable(parent, caption, rows, className = '') {
  const table = d3.select(parent).append('table').attr('class', `ql-table ${className}`);
  table.append('caption').text(caption);
  const tr = table.append('tbody').selectAll('tr').data(rows).join('tr');
  tr.append('th')
    .attr('scope', 'row')
    .text((r) => r[0]);
  tr.append('td').each(function (r) {
    const td = d3.select(this).text(r[1]);
    if (r[2]) td.attr('data-field', r[2]);
    if (r[3]) td.attr('title', r[3]);
  });
  return table;
}

// options.scheme: the scheme whose risk, why line and worst channel are shown (the app's
// scheme selector; default INT8 per-tensor). options.after: the layer's SQNRs after
// equalization, when the app has run it (the why line then says what CLE brings).
export function renderLayerView(element, analysis, layer, { scheme = 'int8PerTensor', after = null } = {}) {
  ensureStyles('ql-layer-view', css, element.ownerDocument);
  const { position, layer: l } = resolveLayer(analysis, layer);
  const root = viewRoot(element, 'ql-layer-view');
  const R = d3.select(root);
  const tip = tooltip(root);
  if (!l) {
    R.append('div')
      .attr('class', 'ql-error')
      .text(`No layer ${typeof layer === 'string' ? `named "${layer}"` : String(layer)} in this analysis.`);
    return {
      root,
      destroy() {
        tip.destroy();
        root.remove();
      },
    };
  }
  root.setAttribute('data-layer-name', l.name);
  if (position >= 0) root.setAttribute('data-position', String(position));
  R.append('h2').text(layerLabel(l));
  const risk = riskOfScheme(l, scheme);
  const sub = R.append('div').attr('class', 'ql-muted');
  sub.append('span').attr('class', `ql-risk ql-risk-${risk}`).text(risk);
  sub
    .append('span')
    .text(
      `  ${l.op}${l.depthwise ? ' (depthwise)' : ''}, weight ${dims(l)} ${l.dtype || ''}${position >= 0 ? `, layer #${position + 1} in graph order` : ''}${
        l.path ? `, ${subgraphText(l)}` : ''
      }`,
    );
  if (!l.error) {
    // Why, and what to do, from the numbers (web/src/verdict.js).
    const w = layerWhy(l, scheme, { after });
    R.append('p').attr('class', 'ql-why').attr('data-field', 'why').attr('data-advice', w.advice.join(' ')).text(w.text);
  }
  if (l.error) {
    R.append('div')
      .attr('class', 'ql-error')
      .attr('data-field', 'error')
      .text(`${l.error.code ? `${l.error.code}: ` : ''}${l.error.message || 'this layer could not be analysed'}`);
    return {
      root,
      destroy() {
        tip.destroy();
        root.remove();
      },
    };
  }
  const flagged = flaggedSet(l);
  const tables = R.append('div').attr('class', 'ql-layer-tables').node();
  const f = l.follower || {};
  keyValueTable(
    tables,
    'Layer',
    [
      ['op', l.op + (l.depthwise ? ' (depthwise)' : '')],
      ['weight', l.weight ?? '', null, l.weight ?? ''],
      ['shape', `${dims(l)} (${l.dtype})`],
      ['channel axis', l.recurrent ? channelAxisText(l) : String(l.channelAxis), 'channel-axis'],
      ...(l.recurrent ? [['recurrent', recurrentText(l), 'recurrent']] : []),
      ['groups', String(l.groups ?? 1)],
      ['depthwise', l.depthwise ? 'yes' : 'no'],
      ['bias', l.bias ? l.bias : 'none', null, l.bias || ''],
      ['followed by', followerText(l) || 'nothing foldable', null, f.node ? `${f.op || ''} ${f.node}` : ''],
      ['quantized weight', quantizationDetail(l.quant, formatNumber)],
      ...(l.quant ? [['stored codes', storedFactsText(l), 'stored']] : []),
      ['outlier channels', String(flagged.size), 'outliers'],
      [
        'Tukey threshold',
        `${formatNumber(l.outlierThreshold)}× (Q1 ${formatNumber(l.quartiles?.[0])}×, Q3 ${formatNumber(l.quartiles?.[1])}×)`,
        'threshold',
      ],
      ...(l.inputChannels
        ? [
            ['input channels', inputChannelText(l), 'input-channels'],
            ['outlier input channels', String(l.inputChannels.outliers.length), 'input-outliers'],
            [
              'input Tukey threshold',
              `${formatNumber(l.inputChannels.threshold)}× (Q1 ${formatNumber(l.inputChannels.quartiles[0])}×, Q3 ${formatNumber(l.inputChannels.quartiles[1])}×)`,
              'input-threshold',
            ],
          ]
        : []),
    ],
    'ql-facts',
  );
  // SQNR under every scheme measured (the six, then int4Block<N> when analysed with a
  // blockSize), with the worst channel under each.
  const schemes = [...SCHEMES, ...Object.keys(l.sqnr).filter((k) => !SCHEMES.includes(k))];
  const sq = d3.select(tables).append('table').attr('class', 'ql-table ql-sqnr');
  sq.append('caption').text('Weight SQNR (dB, higher is better)');
  const sh = sq.append('thead').append('tr');
  for (const t of ['scheme', 'layer', 'worst channel'])
    sh.append('th')
      .attr('scope', 'col')
      .classed('ql-num', t !== 'scheme')
      .text(t);
  const sr = sq
    .append('tbody')
    .selectAll('tr')
    .data(schemes)
    .join('tr')
    .attr('data-scheme', (k) => k);
  sr.append('th')
    .attr('scope', 'row')
    .style('color', (k) => cssColor(colors.schemes[k] ?? palette.grey))
    .text((k) => schemeLabel(k));
  sr.append('td')
    .attr('class', 'ql-num')
    .attr('data-field', (k) => `sqnr-${k}`)
    .text((k) => formatDb(l.sqnr[k]));
  sr.append('td')
    .attr('class', 'ql-num')
    .text((k) => {
      const v = l.channels.sqnr?.[k];
      if (!v || !v.length) return '-';
      let w = 0;
      for (let c = 1; c < v.length; c++) if (v[c] < v[w]) w = c;
      return `${formatDb(v[w])} (ch ${w})`;
    });
  // Channel range summary.
  const s = channelRangeSummary(l);
  const keys = [
    ['count', 'count'],
    ['mean', 'mean'],
    ['std', 'std'],
    ['min', 'min'],
    ['q1', 'Q1'],
    ['median', 'median'],
    ['q3', 'Q3'],
    ['max', 'max'],
  ];
  const st = d3.select(tables).append('table').attr('class', 'ql-table ql-summary');
  st.append('caption').text('Channel ranges (max − min)');
  const th = st.append('thead').append('tr');
  th.append('th').text('');
  for (const [, label] of keys) th.append('th').attr('scope', 'col').attr('class', 'ql-num').text(label);
  for (const [name, row, unit] of [
    ['range', s.range, ''],
    ['relative', s.relativeRange, '×'],
  ]) {
    const tr = st.append('tbody').append('tr').attr('data-row', name);
    tr.append('th')
      .attr('scope', 'row')
      .text(name === 'range' ? 'range' : 'relative range');
    for (const [k] of keys)
      tr.append('td')
        .attr('class', 'ql-num')
        .attr('data-stat', k)
        .text(k === 'count' ? String(row.count) : `${formatNumber(row[k])}${unit}`);
  }

  if (!l.channels.count) {
    R.append('p').attr('class', 'ql-muted').text('This weight has no output channels to chart.');
    return {
      root,
      destroy() {
        tip.destroy();
        root.remove();
      },
    };
  }
  // One output channel: nothing to compare across channels (the range chart would be a lone
  // dot, the scatters one point, the relative range 1×). Said plainly; its weights still chart.
  const single = l.channels.count === 1;
  if (single)
    R.append('p')
      .attr('class', 'ql-single')
      .attr('data-field', 'single-channel')
      .text(
        `One output channel: per-channel scales are the per-tensor scale, and there are no channel ranges to compare. ` +
          `Its weights run from ${formatNumber(l.channels.min[0])} to ${formatNumber(l.channels.max[0])} (mean ${formatNumber(l.channels.mean[0])}, std ${formatNumber(l.channels.std[0])}); their histogram is below.`,
      );
  const worst = single ? -1 : worstChannel(l, scheme);
  const charts = R.append('div').attr('class', 'ql-charts').node();
  let zoomState = null;
  const resize = observeWidth(root, (width) => {
    charts.replaceChildren();
    tip.hide();
    const cols = width >= 820 ? 2 : 1;
    charts.style.setProperty('--ql-cols', String(cols));
    const full = Math.max(320, width);
    const half = cols === 2 ? Math.floor((width - 28) / 2) : full;
    const opts = { tip, flagged, worst };
    if (single) {
      if (l.inputChannels && l.inputChannels.count) inputChannelChart(charts, l, { tip, width: full });
      weightHistogram(charts, l, { ...opts, width: half });
      return;
    }
    zoomState = channelChart(charts, l, { ...opts, width: full });
    if (l.inputChannels && l.inputChannels.count) inputChannelChart(charts, l, { tip, width: full });
    scatter(charts, l, {
      ...opts,
      key: 'mean-std',
      title: 'Mean vs std per channel',
      xs: l.channels.mean,
      ys: l.channels.std,
      xLabel: 'channel mean (weight value)',
      yLabel: 'channel std (weight value)',
      width: half,
    });
    scatter(charts, l, {
      ...opts,
      key: 'min-max',
      title: 'Min vs max per channel',
      xs: l.channels.min,
      ys: l.channels.max,
      xLabel: 'channel min (weight value)',
      yLabel: 'channel max (weight value)',
      width: half,
      reference: {
        label: 'max = −min (symmetric)',
        draw(g, x, y) {
          // The segment of max = −min inside both domains.
          const [xa, xb] = x.domain();
          const [ya, yb] = y.domain();
          const v0 = Math.max(xa, -yb);
          const v1 = Math.min(xb, -ya);
          if (!(v1 > v0)) return;
          g.append('line')
            .attr('x1', x(v0))
            .attr('y1', y(-v0))
            .attr('x2', x(v1))
            .attr('y2', y(-v1))
            .attr('stroke', palette.grey)
            .attr('stroke-dasharray', '5 4');
        },
      },
    });
    relativeRangeChart(charts, l, { ...opts, width: half });
    weightHistogram(charts, l, { ...opts, width: half });
  });
  return {
    root,
    get zoom() {
      return zoomState;
    },
    destroy() {
      resize.disconnect();
      tip.destroy();
      root.remove();
    },
  };
}
