// Exports of what a view shows, in the browser: every chart as a standalone SVG (its
// computed styles written into it, the font named, the theme's background behind it, its
// title and legend drawn above it) or as a PNG drawn from that SVG (an Image on a canvas,
// 2x), and every table as CSV (the rows shown, in the order shown; the CSV writer is
// web/src/export/csv.js). The app and the saved report offer them for each tab
// (web/app/app.js); they are not among the package's entry points ('quantlens/views') yet.
import { toCsv } from '../export/csv.js';

const SVG_NS = 'http://www.w3.org/2000/svg';

// The styles that decide how an SVG element looks, with their initial values (a value
// equal to its initial one is not written).
const PAINT = {
  fill: 'rgb(0, 0, 0)',
  'fill-opacity': '1',
  stroke: 'none',
  'stroke-width': '1px',
  'stroke-opacity': '1',
  'stroke-dasharray': 'none',
  'stroke-linecap': 'butt',
  'stroke-linejoin': 'miter',
  opacity: '1',
  visibility: 'visible',
};
const FONT = ['font-family', 'font-size', 'font-weight', 'font-style', 'text-anchor', 'dominant-baseline', 'letter-spacing'];

// The charts and tables inside `container`, in page order: [{ kind: 'chart'|'table', key,
// label, node }]. Charts are the <svg>s that are not legend swatches or icons (nor inside
// another svg); keys are the chart's data-chart (or its class) and unique in the list.
export function exportTargets(container) {
  const out = [];
  const used = new Map();
  const unique = (key) => {
    const n = (used.get(key) || 0) + 1;
    used.set(key, n);
    return n === 1 ? key : `${key}-${n}`;
  };
  for (const node of container.querySelectorAll('svg, table.ql-table')) {
    if (node.closest('[hidden]') || node.closest('.ql-tooltip')) continue;
    if (node.tagName.toLowerCase() === 'svg') {
      if (node.parentElement.closest('svg') || node.closest('.ql-legend')) continue;
      const box = node.getBoundingClientRect();
      if (box.width < 60 || box.height < 40) continue; // an icon or a swatch
      const block = node.closest('[data-chart]') || node.closest('.ql-chart') || node.parentElement;
      const key = block?.dataset.chart || className(node) || className(block) || 'chart';
      out.push({ kind: 'chart', key: unique(slug(key)), label: chartLabel(node, block), node });
    } else {
      const key = className(node, ['ql-table']) || 'table';
      out.push({ kind: 'table', key: unique(slug(key)), label: tableLabel(node), node });
    }
  }
  return out;
}

const className = (node, skip = []) =>
  [...(node?.classList || [])].find((c) => c.startsWith('ql-') && !skip.includes(c) && c !== 'ql-chart')?.slice(3) || '';
const slug = (s) =>
  String(s)
    .replace(/[^A-Za-z0-9._-]+/g, '-')
    .replace(/^-+|-+$/g, '')
    .slice(0, 60) || 'x';
const text = (node) => (node ? node.textContent.replace(/\s+/g, ' ').trim() : '');

// A chart's title: its block's heading (inside it, else the nearest heading before it with no
// other chart between), without hints and buttons; else its aria-label.
function chartLabel(svg, block) {
  let h = block?.querySelector(':scope > h3, :scope > h4');
  for (let n = block?.previousElementSibling; !h && n; n = n.previousElementSibling) {
    if (/^H[34]$/.test(n.tagName)) h = n;
    else if (n.querySelector('svg:not(.ql-legend svg)') && !n.classList.contains('ql-legend')) break;
  }
  const copy = h?.cloneNode(true);
  for (const n of copy ? copy.querySelectorAll('.ql-hint, button') : []) n.remove();
  return text(copy) || svg.getAttribute('aria-label') || 'chart';
}

function tableLabel(table) {
  const caption = text(table.querySelector('caption'));
  if (caption) return caption.length > 70 ? `${caption.slice(0, 69)}…` : caption;
  const heads = [...table.querySelectorAll('thead th')].map(text).filter(Boolean);
  return heads.length ? `table: ${heads.slice(0, 4).join(', ')}${heads.length > 4 ? ', …' : ''}` : 'table';
}

// A file name for an export: model stem, view, what (each cleaned to [A-Za-z0-9._-]).
export function exportFileName(modelName, parts, ext) {
  const stem = String(modelName || 'model').replace(/\.onnx$/i, '');
  return `${[stem, ...parts].filter(Boolean).map(slug).join('.')}.${ext}`;
}

// The colour behind `node`: the first ancestor whose background is not transparent (white
// when none is).
function backgroundOf(node) {
  for (let n = node; n && n.nodeType === 1; n = n.parentElement) {
    const c = getComputedStyle(n).backgroundColor;
    if (c && c !== 'transparent' && !/rgba\(.*,\s*0\)$/.test(c)) return c;
  }
  return 'rgb(255, 255, 255)';
}

// Copies into `copy` (a clone of `live`) the computed styles of every element, so the SVG
// looks the same outside the page; elements not displayed are dropped.
function inlineStyles(live, copy) {
  const a = [live, ...live.querySelectorAll('*')];
  const b = [copy, ...copy.querySelectorAll('*')];
  const drop = [];
  for (let i = 0; i < a.length; i++) {
    const cs = getComputedStyle(a[i]);
    const el = b[i];
    if (cs.display === 'none' && a[i].tagName.toLowerCase() !== 'clippath' && !a[i].closest('defs, clipPath')) {
      drop.push(el);
      continue;
    }
    el.removeAttribute('class');
    el.removeAttribute('tabindex');
    const style = [];
    for (const [p, initial] of Object.entries(PAINT)) {
      const v = cs.getPropertyValue(p);
      if (v && v !== initial) style.push(`${p}:${v}`);
    }
    const tag = a[i].tagName.toLowerCase();
    if (tag === 'text' || tag === 'tspan' || i === 0)
      for (const p of FONT) {
        const v = cs.getPropertyValue(p);
        if (v && v !== 'normal' && v !== 'auto' && v !== 'start') style.push(`${p}:${v.replace(/"/g, "'")}`);
      }
    if (style.length) el.setAttribute('style', style.join(';'));
    else el.removeAttribute('style');
  }
  for (const el of drop) el.remove();
}

// Text width in px for the legend's layout (a canvas measures it without layout).
let measurer = null;
function textWidth(s, font) {
  measurer ||= document.createElement('canvas').getContext('2d');
  measurer.font = font;
  return measurer.measureText(s).width;
}

/**
 * The chart `svg` (live, in the page) as a standalone SVG file: its computed styles inlined,
 * the page's font family named, a background rect of the theme's colour, and above the chart
 * its `title` and the items of its HTML `legends` (.ql-legend elements: each item's swatch
 * and label). Returns { text, width, height }.
 */
export function standaloneSvg(svg, { title = '', legends = [] } = {}) {
  const doc = svg.ownerDocument;
  const box = svg.getBoundingClientRect();
  const w = Math.ceil(Number(svg.getAttribute('width')) || box.width);
  const h = Math.ceil(Number(svg.getAttribute('height')) || box.height);
  const cs = getComputedStyle(svg);
  const fontFamily = cs.fontFamily.replace(/"/g, "'");
  const ink = cs.color || 'rgb(0, 0, 0)';
  const copy = svg.cloneNode(true);
  inlineStyles(svg, copy);

  // The title and the legend, laid out in rows above the chart.
  const head = doc.createElementNS(SVG_NS, 'g');
  let y = 0;
  const pad = 8;
  if (title) {
    const t = doc.createElementNS(SVG_NS, 'text');
    t.setAttribute('x', pad);
    t.setAttribute('y', 18);
    t.setAttribute('style', `font-family:${fontFamily};font-size:14px;font-weight:600;fill:${ink}`);
    t.textContent = title;
    head.append(t);
    y = 26;
  }
  const items = legends.flatMap((l) => [...l.querySelectorAll('.ql-legend-item')]);
  if (items.length) {
    const font = `12px ${cs.fontFamily}`;
    let x = pad;
    y += 4;
    for (const item of items) {
      const swatch = item.querySelector('svg');
      const label = text(item.querySelector(':scope > span'));
      const sw = swatch ? 22 : 0;
      const iw = sw + textWidth(label, font) + 16;
      if (x > pad && x + iw > w - pad) {
        x = pad;
        y += 18;
      }
      if (swatch) {
        const s = swatch.cloneNode(true);
        inlineStyles(swatch, s);
        s.setAttribute('x', x);
        s.setAttribute('y', y + 2);
        head.append(s);
      }
      const t = doc.createElementNS(SVG_NS, 'text');
      t.setAttribute('x', x + sw);
      t.setAttribute('y', y + 12);
      t.setAttribute('style', `font-family:${fontFamily};font-size:12px;fill:${ink}`);
      t.textContent = label;
      head.append(t);
      x += iw;
    }
    y += 20;
  }
  const top = Math.ceil(y);

  const out = doc.createElementNS(SVG_NS, 'svg');
  out.setAttribute('xmlns', SVG_NS);
  out.setAttribute('width', w);
  out.setAttribute('height', h + top);
  out.setAttribute('viewBox', `0 0 ${w} ${h + top}`);
  out.setAttribute('style', `font-family:${fontFamily}`);
  const label = svg.getAttribute('aria-label') || title;
  if (label) {
    const t = doc.createElementNS(SVG_NS, 'title');
    t.textContent = label;
    out.append(t);
  }
  const bg = doc.createElementNS(SVG_NS, 'rect');
  bg.setAttribute('width', '100%');
  bg.setAttribute('height', '100%');
  bg.setAttribute('fill', backgroundOf(svg));
  out.append(bg, head);
  // The chart itself, nested at its own size under the header (its viewBox kept).
  copy.setAttribute('x', 0);
  copy.setAttribute('y', top);
  copy.setAttribute('width', w);
  copy.setAttribute('height', h);
  copy.removeAttribute('role');
  copy.style.overflow = 'visible';
  out.append(copy);
  return { text: new XMLSerializer().serializeToString(out), width: w, height: h + top };
}

/** A standalone SVG's text drawn as a PNG (an Image on a canvas, `scale` times its size). */
export async function svgToPng(svgText, width, height, scale = 2) {
  const url = URL.createObjectURL(new Blob([svgText], { type: 'image/svg+xml' }));
  try {
    const img = new Image();
    await new Promise((resolve, reject) => {
      img.onload = resolve;
      img.onerror = () => reject(new Error('the chart could not be drawn as an image'));
      img.src = url;
    });
    const canvas = document.createElement('canvas');
    canvas.width = Math.round(width * scale);
    canvas.height = Math.round(height * scale);
    const ctx = canvas.getContext('2d');
    ctx.scale(scale, scale);
    ctx.drawImage(img, 0, 0, width, height);
    return await new Promise((resolve, reject) =>
      canvas.toBlob((b) => (b ? resolve(b) : reject(new Error('the canvas could not be encoded as PNG'))), 'image/png'),
    );
  } finally {
    URL.revokeObjectURL(url);
  }
}

// A cell's text for the CSV: its full value where the cell keeps one (data-name: a layer's
// full name where the cell shows it shortened; data-csv), else the text shown, without
// marks for the eye only (aria-hidden, the sort arrows).
function cellText(cell) {
  if (cell.dataset.csv !== undefined) return cell.dataset.csv;
  if (cell.dataset.name !== undefined) return cell.dataset.name;
  const copy = cell.cloneNode(true);
  for (const n of copy.querySelectorAll('[aria-hidden="true"], .ql-sort-mark')) n.remove();
  return copy.textContent.replace(/\s+/g, ' ').trim();
}

/** The rows of `table` as shown (hidden rows left out, in the order shown): { header, rows }. */
export function tableRows(table) {
  const row = (tr) => {
    const cells = [];
    for (const c of tr.cells) {
      cells.push(cellText(c));
      for (let k = 1; k < (c.colSpan || 1); k++) cells.push('');
    }
    return cells;
  };
  const headRows = table.tHead ? [...table.tHead.rows] : [];
  const header = headRows.length ? row(headRows[headRows.length - 1]) : [];
  const rows = [];
  for (const body of table.tBodies) for (const tr of body.rows) if (!tr.hidden) rows.push(row(tr));
  if (!headRows.length && !table.tBodies.length) for (const tr of table.rows) rows.push(row(tr));
  return { header, rows };
}

/** The table as CSV (RFC 4180, web/src/export/csv.js): its header, then the rows shown. */
export function tableCsv(table) {
  const { header, rows } = tableRows(table);
  return header.length ? toCsv(header, rows) : toCsv(rows[0] || [], rows.slice(1));
}

/**
 * What a target exports as: for a chart { svg: () => Blob, png: () => Promise<Blob> }, for a
 * table { csv: () => Blob }. The chart's title and legend are those of its block.
 */
export function exportsOf(target) {
  if (target.kind === 'table') return { csv: () => new Blob([tableCsv(target.node)], { type: 'text/csv' }) };
  const block = target.node.closest('[data-chart]') || target.node.closest('.ql-chart') || target.node.parentElement;
  const legends = legendsFor(block);
  const make = () => standaloneSvg(target.node, { title: target.label, legends });
  return {
    svg: () => new Blob([make().text], { type: 'image/svg+xml' }),
    png: () => {
      const s = make();
      return svgToPng(s.text, s.width, s.height, 2);
    },
  };
}

// The legends that belong to a chart: those inside its block, else those just before the
// block (its preceding siblings that are legends; the model view's two).
function legendsFor(block) {
  if (!block) return [];
  const inside = [...block.querySelectorAll('.ql-legend')];
  if (inside.length) return inside;
  const out = [];
  for (let n = block.previousElementSibling; n && !/^H[234]$/.test(n.tagName); n = n.previousElementSibling) {
    if (n.classList.contains('ql-legend')) out.unshift(n);
    else if (n.querySelector('svg')) break; // another chart
  }
  return out;
}
