// What every view shares: one colour-blind-safe palette (web/src/palette.js), number
// formats for people, how results read (web/src/presentation.js), and small DOM helpers.
// Views write strings from the model with .text() / textContent only, never as HTML.
import * as d3 from 'd3';
import { formatNumber as fmtNumber } from '../format.js';
import { palette, colors } from '../palette.js';
import { RISK_DB as riskDb, layerLabel } from '../presentation.js';

export { formatDb, formatNumber, formatCount } from '../format.js';
export {
  channelAxisText,
  channelText,
  followerText,
  layerLabel,
  normalizedText,
  quantizationDetail,
  quantizationText,
  quantizedText,
  storedFactsText,
  recurrentText,
  riskColor,
  riskOf,
  riskOfDb,
  RISK_DB,
  RISK_LEVELS,
} from '../presentation.js';
import { SCHEMES, schemeShort } from '../schemes.js';
export { SCHEMES, SCHEME_LABELS, schemeLabel, schemeShort, schemesOf } from '../schemes.js';
export { palette, colors };

// Short scheme labels for table headers and legends.
export const SCHEME_SHORT = Object.fromEntries(SCHEMES.map((k) => [k, schemeShort(k)]));

// Inserts one <style data-ql-style="id"> per id into the document head (or `doc`),
// so a view carries its own styles into any page. Returns the <style> element.
export function ensureStyles(id, cssText, doc = globalThis.document) {
  if (!doc) return null;
  for (const s of doc.querySelectorAll('style[data-ql-style]')) {
    if (s.getAttribute('data-ql-style') === id) return s;
  }
  const style = doc.createElement('style');
  style.setAttribute('data-ql-style', id);
  style.textContent = cssText;
  (doc.head || doc.documentElement).appendChild(style);
  return style;
}

// Dark mode follows the system (prefers-color-scheme): the views' colours are the variables
// above, and the charts' black and white marks (drawn with palette.black, '#000', '#333',
// '#fff' as SVG attributes, which CSS overrides) turn light and dark. The palette's other
// colours (risk, schemes, min/max) stay as they are: each reads on the dark background.
const darkCss = `@media (prefers-color-scheme: dark) {
.ql-view, .ql-tooltip { --ql-v-fg: #e6e6e6; --ql-v-muted: #a9adb2; --ql-v-text2: #cfd2d6; --ql-v-axis-line: #7d8288; --ql-v-grid: #2f3337; --ql-v-line: #3a3e43;
  --ql-v-head: #25282c; --ql-v-panel: #1d2630; --ql-v-hover: #1f2a35; --ql-v-selected: #1f3a52; --ql-v-bg: #16181b; --ql-v-bad: #ff8a4c; --ql-v-good: #3fd1a6;
  --ql-v-error-bg: #3a2418; --ql-v-error-line: #7a4a30; --ql-v-warn-bg: #332a14; --ql-v-tip-bg: rgba(32,35,39,0.97); --ql-v-ink: #e6e6e6; }
.ql-view { color-scheme: dark; }
.ql-view svg text:not([fill]) { fill: var(--ql-v-fg); }
.ql-view svg [stroke="#000"], .ql-view svg [stroke="#000000"], .ql-view svg [stroke="#333"] { stroke: var(--ql-v-ink); }
.ql-view svg [fill="#000"], .ql-view svg [fill="#000000"] { fill: var(--ql-v-ink); }
.ql-view svg [stroke="#fff"] { stroke: var(--ql-v-bg); }
.ql-view svg [fill="#fff"] { fill: var(--ql-v-bg); }
.ql-tooltip { border-color: #5d6268; box-shadow: 0 2px 8px rgba(0,0,0,0.5); }
}`;

// The styles every view uses (root, tooltip, legend, axes, tables, risk badges).
// Views call ensureBaseStyles() before they render.
export const baseCss = `
.ql-view, .ql-tooltip { --ql-v-fg: #1a1a1a; --ql-v-muted: #555; --ql-v-text2: #333; --ql-v-axis-line: #888; --ql-v-grid: #e6e6e6; --ql-v-line: #e3e3e3;
  --ql-v-head: #f5f5f5; --ql-v-panel: #f3f6f9; --ql-v-hover: #f3f7fb; --ql-v-selected: #dcebf7; --ql-v-bg: #fff; --ql-v-bad: #a33b00; --ql-v-good: #00694d;
  --ql-v-error-bg: #fff3ec; --ql-v-error-line: #f0c4a8; --ql-v-warn-bg: #fff7e6; --ql-v-tip-bg: rgba(255,255,255,0.97); --ql-v-ink: #000; }
${darkCss}
.ql-view { font: 13px/1.4 system-ui, -apple-system, "Segoe UI", Roboto, sans-serif; color: var(--ql-v-fg); box-sizing: border-box; }
.ql-view *, .ql-view *::before, .ql-view *::after { box-sizing: inherit; }
.ql-view h2, .ql-view h3 { font-weight: 600; margin: 0.6em 0 0.3em; }
.ql-view h2 { font-size: 16px; }
.ql-view h3 { font-size: 14px; }
.ql-view .ql-muted { color: var(--ql-v-muted); }
.ql-view svg { display: block; overflow: visible; }
.ql-view .ql-chart { position: relative; }
.ql-view .ql-axis text { font-size: 11px; fill: var(--ql-v-text2); }
.ql-view .ql-axis path, .ql-view .ql-axis line { stroke: var(--ql-v-axis-line); }
.ql-view .ql-grid line { stroke: var(--ql-v-grid); }
.ql-view .ql-grid path { display: none; }
.ql-view .ql-axis-label { font-size: 12px; fill: var(--ql-v-text2); }
.ql-view .ql-legend { display: flex; flex-wrap: wrap; gap: 4px 14px; align-items: center; font-size: 12px; margin: 2px 0 6px; }
.ql-view .ql-legend-item { display: inline-flex; align-items: center; gap: 5px; white-space: nowrap; }
.ql-view .ql-legend svg { display: inline-block; }
.ql-view table.ql-table { border-collapse: collapse; font-variant-numeric: tabular-nums; }
.ql-view table.ql-table th, .ql-view table.ql-table td { padding: 3px 8px; border-bottom: 1px solid var(--ql-v-line); text-align: left; white-space: nowrap; }
.ql-view table.ql-table th { background: var(--ql-v-head); font-weight: 600; position: sticky; top: 0; z-index: 1; }
.ql-view table.ql-table td.ql-num, .ql-view table.ql-table th.ql-num { text-align: right; }
.ql-view .ql-risk { display: inline-block; padding: 0 6px; border-radius: 3px; color: #fff; font-size: 11px; font-weight: 600; text-transform: uppercase; letter-spacing: 0.03em; }
.ql-view .ql-risk-high { background: ${palette.vermillion}; }
.ql-view .ql-risk-medium { background: ${palette.orange}; color: #000; }
.ql-view .ql-risk-low { background: ${palette.green}; }
.ql-view .ql-risk-failed { background: ${palette.grey}; }
.ql-view .ql-error { color: var(--ql-v-bad); background: var(--ql-v-error-bg); border: 1px solid var(--ql-v-error-line); padding: 8px 10px; border-radius: 4px; }
.ql-tooltip { position: fixed; z-index: 10000; pointer-events: none; background: var(--ql-v-tip-bg); border: 1px solid #999;
  border-radius: 4px; padding: 5px 8px; font: 12px/1.35 system-ui, -apple-system, "Segoe UI", Roboto, sans-serif; color: var(--ql-v-fg);
  box-shadow: 0 2px 6px rgba(0,0,0,0.18); max-width: 420px; font-variant-numeric: tabular-nums; }
.ql-tooltip[hidden] { display: none; }
.ql-tooltip .ql-tooltip-title { font-weight: 600; margin-bottom: 2px; overflow-wrap: anywhere; }
.ql-tooltip table { border-collapse: collapse; }
.ql-tooltip td { padding: 0 6px 0 0; }
.ql-tooltip td + td { text-align: right; }
`;
// A palette colour for a CSS property (text, inline styles): black is the theme's ink (light
// in dark mode); SVG attributes need not this (the dark style sheet turns their black light).
export const cssColor = (c) => (c === palette.black ? 'var(--ql-v-ink, #000)' : c);

export function ensureBaseStyles(doc) {
  return ensureStyles('ql-base', baseCss, doc);
}

// A tooltip attached to `root` (removed with it). show(event, title, rows) where rows is
// [[label, value], ...]; every string is written with textContent.
export function tooltip(root) {
  const doc = root.ownerDocument || document;
  const tip = doc.createElement('div');
  tip.className = 'ql-tooltip';
  tip.setAttribute('role', 'tooltip');
  tip.hidden = true;
  root.appendChild(tip);
  function place(event) {
    const win = doc.defaultView || globalThis;
    const w = tip.offsetWidth;
    const h = tip.offsetHeight;
    let x = (event?.clientX ?? 0) + 14;
    let y = (event?.clientY ?? 0) + 14;
    if (x + w > win.innerWidth - 4) x = Math.max(4, (event?.clientX ?? 0) - w - 14);
    if (y + h > win.innerHeight - 4) y = Math.max(4, (event?.clientY ?? 0) - h - 14);
    tip.style.left = `${x}px`;
    tip.style.top = `${y}px`;
  }
  return {
    node: tip,
    show(event, title, rows = []) {
      tip.replaceChildren();
      if (title !== undefined && title !== null && title !== '') {
        const t = doc.createElement('div');
        t.className = 'ql-tooltip-title';
        t.textContent = String(title);
        tip.appendChild(t);
      }
      if (rows.length) {
        const table = doc.createElement('table');
        for (const [label, value] of rows) {
          const tr = table.insertRow();
          tr.insertCell().textContent = String(label);
          tr.insertCell().textContent = String(value);
        }
        tip.appendChild(table);
      }
      tip.hidden = false;
      place(event);
    },
    move(event) {
      if (!tip.hidden) place(event);
    },
    hide() {
      tip.hidden = true;
    },
    destroy() {
      tip.remove();
    },
  };
}

// Calls render(width) now and whenever element's content width changes (ResizeObserver,
// one call per animation frame at most). Returns { disconnect() }.
export function observeWidth(element, render) {
  let last = -1;
  let frame = 0;
  const win = element.ownerDocument?.defaultView || globalThis;
  const raf = win.requestAnimationFrame ? win.requestAnimationFrame.bind(win) : (f) => setTimeout(f, 16);
  const caf = win.cancelAnimationFrame ? win.cancelAnimationFrame.bind(win) : clearTimeout;
  const check = () => {
    frame = 0;
    const w = Math.floor(element.clientWidth);
    if (w !== last && w > 0) {
      last = w;
      render(w);
    }
  };
  check();
  if (last < 0) {
    last = 0;
    render(960);
  } // not laid out yet (detached or hidden): a sane default
  const RO = win.ResizeObserver;
  const ro = RO
    ? new RO(() => {
        if (!frame) frame = raf(check);
      })
    : null;
  if (ro) ro.observe(element);
  return {
    disconnect() {
      if (ro) ro.disconnect();
      if (frame) caf(frame);
      frame = 0;
    },
  };
}

// An <svg> of the given outer size with a <g> translated by the margins, appended to
// `parent` (detached when parent is null). margin = { top, right, bottom, left }.
// Returns { svg, g, width, height } (inner size).
export function chartFrame(parent, { width, height, margin }) {
  const svg = (parent ? d3.select(parent).append('svg') : d3.create('svg'))
    .attr('width', width)
    .attr('height', height)
    .attr('viewBox', `0 0 ${width} ${height}`);
  const g = svg.append('g').attr('transform', `translate(${margin.left},${margin.top})`);
  return { svg, g, width: width - margin.left - margin.right, height: height - margin.top - margin.bottom };
}

// Clips what is drawn in a new <g> of `g` to the plot area, width x height, widened by
// `top` px above (a lane of marks over the plot) and 1 px each side vertically (lines at
// the domain's ends stay whole). The one clip-path id scheme of the views (ids are
// unique in the page). Returns the new <g>.
let clipIds = 0;
export function clipped(g, { width, height, top = 0 }) {
  const id = `ql-clip-${++clipIds}`;
  g.append('clipPath')
    .attr('id', id)
    .append('rect')
    .attr('y', -top - 1)
    .attr('width', width)
    .attr('height', height + top + 2);
  return g.append('g').attr('clip-path', `url(#${id})`);
}

// Ticks of a channel axis: integers only, about one per 80 px, never more than the
// channels in view of the scale x.
export const intTicks = (d) => (Number.isInteger(d) ? String(d) : '');
export const channelTickCount = (x, width) =>
  Math.min(Math.max(2, Math.round(width / 80)), Math.max(1, Math.ceil(x.domain()[1] - x.domain()[0])));

// Channel indices inside the domain of the channel scale x (plus one each side, so lines
// reach the edges), of n channels.
export function visibleChannels(x, n) {
  const [a, b] = x.domain();
  const lo = Math.max(0, Math.floor(a) - 1);
  const hi = Math.min(n - 1, Math.ceil(b) + 1);
  return d3.range(lo, hi + 1);
}

// A crosshair and tooltip over a chart whose x is a channel index: a transparent overlay
// (class ql-overlay) over the inner area of the frame `f`; content(i) returns [title, rows]
// for channel i (no tooltip without `tip`, the crosshair only). `x()` gives the current x scale (it changes when the chart zooms).
// Returns the overlay (a d3 selection), for a zoom behaviour to attach to.
export function channelHover(f, n, x, tip, content) {
  const rule = f.g
    .append('line')
    .attr('class', 'ql-crosshair')
    .attr('y1', 0)
    .attr('y2', f.height)
    .attr('stroke', '#333')
    .attr('stroke-width', 1)
    .attr('opacity', 0)
    .attr('pointer-events', 'none');
  return f.g
    .append('rect')
    .attr('class', 'ql-overlay')
    .attr('width', f.width)
    .attr('height', f.height)
    .attr('fill', 'transparent')
    .on('pointermove.tip', (event) => {
      const sx = x();
      const [mx] = d3.pointer(event);
      const i = Math.max(0, Math.min(n - 1, Math.round(sx.invert(mx))));
      rule.attr('x1', sx(i)).attr('x2', sx(i)).attr('opacity', 0.5);
      if (!tip) return;
      const [title, rows] = content(i);
      tip.show(event, title, rows);
    })
    .on('pointerleave.tip', () => {
      rule.attr('opacity', 0);
      tip?.hide();
    });
}

// Bottom and left axes (ticks formatted with formatNumber unless given), light
// horizontal grid lines, and axis labels (with units) as text. `g` is the inner <g>.
export function drawAxes(g, { x, y, width, height, xLabel, yLabel, xTicks, yTicks, xFormat, yFormat, grid = true }) {
  const out = {};
  if (grid) {
    out.grid = g
      .append('g')
      .attr('class', 'ql-grid')
      .call(
        d3
          .axisLeft(y)
          .ticks(yTicks ?? Math.max(2, Math.round(height / 40)))
          .tickSize(-width)
          .tickFormat(''),
      );
  }
  out.x = g
    .append('g')
    .attr('class', 'ql-axis ql-axis-x')
    .attr('transform', `translate(0,${height})`)
    .call(
      d3
        .axisBottom(x)
        .ticks(xTicks ?? Math.max(2, Math.round(width / 80)))
        .tickFormat(xFormat ?? (x.bandwidth ? null : fmtNumber)),
    );
  out.y = g
    .append('g')
    .attr('class', 'ql-axis ql-axis-y')
    .call(
      d3
        .axisLeft(y)
        .ticks(yTicks ?? Math.max(2, Math.round(height / 40)))
        .tickFormat(yFormat ?? fmtNumber),
    );
  if (xLabel) {
    out.xLabel = g
      .append('text')
      .attr('class', 'ql-axis-label')
      .attr('x', width)
      .attr('y', height + 32)
      .attr('text-anchor', 'end')
      .text(xLabel);
  }
  if (yLabel) {
    // Left of the widest tick label, so the title never sits over the ticks (measured when
    // the chart is in the page; 46 px otherwise).
    let widest = 0;
    out.y.selectAll('.tick text').each(function () {
      const w = this.getBBox ? this.getBBox().width : 0;
      if (w > widest) widest = w;
    });
    out.yLabel = g
      .append('text')
      .attr('class', 'ql-axis-label')
      .attr('transform', 'rotate(-90)')
      .attr('x', 0)
      .attr('y', -Math.max(46, Math.ceil(widest) + 16))
      .attr('text-anchor', 'end')
      .text(yLabel);
  }
  return out;
}

// An HTML legend: items = [{ label, color, kind: 'line'|'dash'|'dot'|'band'|'rule'|'square'|'none' (text only), opacity }].
export function legend(parent, items) {
  const div = d3.select(parent).append('div').attr('class', 'ql-legend');
  for (const it of items) {
    const span = div.append('span').attr('class', 'ql-legend-item');
    const kind = it.kind || 'square';
    if (kind === 'none') {
      span.append('span').text(it.label);
      continue;
    }
    const sw = span.append('svg').attr('width', 18).attr('height', 12).attr('aria-hidden', 'true');
    if (kind === 'line' || kind === 'dash' || kind === 'rule') {
      sw.append('line')
        .attr('x1', 1)
        .attr('x2', 17)
        .attr('y1', 6)
        .attr('y2', 6)
        .attr('stroke', it.color)
        .attr('stroke-width', kind === 'rule' ? 1.5 : 2)
        .attr('stroke-dasharray', kind === 'line' ? null : '4 3');
    } else if (kind === 'dot') {
      sw.append('circle')
        .attr('cx', 9)
        .attr('cy', 6)
        .attr('r', 4)
        .attr('fill', it.color)
        .attr('stroke', it.stroke || 'none')
        .attr('stroke-width', 1.2);
    } else {
      sw.append('rect')
        .attr('x', 2)
        .attr('y', 1)
        .attr('width', 14)
        .attr('height', 10)
        .attr('fill', it.color)
        .attr('fill-opacity', it.opacity ?? (kind === 'band' ? 0.35 : 1));
    }
    span.append('span').text(it.label);
  }
  return div;
}

// [min, max] over the finite values of `values` (any iterable), or `fallback` when none.
export function finiteExtent(values, fallback = [0, 1]) {
  let lo = Infinity;
  let hi = -Infinity;
  for (const v of values) {
    if (Number.isFinite(v)) {
      if (v < lo) lo = v;
      if (v > hi) hi = v;
    }
  }
  if (lo > hi) return fallback;
  if (lo === hi) return [lo - (Math.abs(lo) || 1) * 0.05, hi + (Math.abs(hi) || 1) * 0.05];
  return [lo, hi];
}

// The risk thresholds (dB) as labelled dashed horizontal rules on a y scale in dB.
// { outside: true } puts short labels ("high", "medium") in the right margin
// (leave margin.right >= 52) instead of over the plot.
// `thresholds` ({ high, medium } in dB, presentation.js riskDbFor): another scheme's (default RISK_DB).
export function riskRules(g, y, width, { outside = false, thresholds = riskDb } = {}) {
  const t = thresholds;
  const rules = [
    { db: t.high, label: outside ? 'high' : `high risk below ${t.high} dB`, color: palette.vermillion },
    { db: t.medium, label: outside ? 'medium' : `medium below ${t.medium} dB`, color: palette.orange },
  ].filter((r) => r.db >= y.domain()[0] && r.db <= y.domain()[1]);
  const sel = g
    .append('g')
    .attr('class', 'ql-risk-rules')
    .selectAll('g')
    .data(rules)
    .join('g')
    .attr('transform', (r) => `translate(0,${y(r.db)})`);
  sel
    .append('line')
    .attr('x1', 0)
    .attr('x2', width)
    .attr('stroke', (r) => r.color)
    .attr('stroke-width', 1.5)
    .attr('stroke-dasharray', '6 4');
  sel
    .append('text')
    .attr('x', outside ? width + 4 : width - 4)
    .attr('y', outside ? 4 : -4)
    .attr('text-anchor', outside ? 'start' : 'end')
    .attr('font-size', 11)
    .attr('fill', (r) => r.color)
    .text((r) => r.label);
  return sel;
}

// `layer` as a position (number), a name (string; path/name also accepted) or the
// layer object; returns { position, layer } (position -1 and layer null if not found).
export function resolveLayer(analysis, layer) {
  const layers = analysis?.layers || [];
  let position = -1;
  if (typeof layer === 'number') position = Number.isInteger(layer) && layer >= 0 && layer < layers.length ? layer : -1;
  else if (typeof layer === 'string') {
    position = layers.findIndex((l) => l.name === layer);
    if (position < 0) position = layers.findIndex((l) => layerLabel(l) === layer);
  } else if (layer && typeof layer === 'object') {
    position = layers.indexOf(layer);
    if (position < 0) return { position: -1, layer };
  }
  return { position, layer: position >= 0 ? layers[position] : null };
}

// The root element of a view: a <div class="ql-view ..."> appended to `element`.
export function viewRoot(element, className) {
  ensureBaseStyles(element.ownerDocument);
  const doc = element.ownerDocument || document;
  const root = doc.createElement('div');
  root.className = `ql-view ${className}`;
  element.appendChild(root);
  return root;
}
