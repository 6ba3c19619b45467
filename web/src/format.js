// Presenting results: JSON documents and the plain-text table the CLI prints.
import { SCHEMES } from './analyze.js';

// Shortest decimal that reads back as the same float32 (so JSON stays compact
// and exact); non-finite values become null (JSON has no Infinity).
export function float32Number(x) {
  if (!Number.isFinite(x)) return null;
  if (x === 0) return 0;
  for (let p = 6; p < 9; p++) {
    const y = Number(x.toPrecision(p));
    if (Math.fround(y) === x) return y;
  }
  return Number(x.toPrecision(9));
}
const finite = (x) => (Number.isFinite(x) ? x : null);

function plain(value) {
  if (value instanceof Float32Array) return Array.from(value, float32Number);
  if (ArrayBuffer.isView(value)) return Array.from(value, finite);
  if (Array.isArray(value)) return value.map(plain);
  if (value && typeof value === 'object') {
    const out = {};
    for (const [k, v] of Object.entries(value)) out[k] = plain(v);
    return out;
  }
  return typeof value === 'number' ? finite(value) : value;
}

// The analysis as a JSON-ready object (schema quantlens.analysis/1).
export function toJSON(result) {
  return plain(result);
}

export function formatDb(x) {
  if (x === null || x === undefined || Number.isNaN(x)) return '-';
  if (x === Infinity) return 'lossless';
  return x.toFixed(1);
}

// 3 significant digits, with k/M/G for large counts.
export function formatCount(n) {
  const units = [[1e9, 'G'], [1e6, 'M'], [1e3, 'k']];
  for (const [v, u] of units) if (Math.abs(n) >= v) return `${Number((n / v).toPrecision(3))}${u}`;
  return String(n);
}

function clip(s, width) {
  if (s.length <= width) return s;
  const keep = width - 1;
  const head = Math.ceil(keep / 3);
  return `${s.slice(0, head)}…${s.slice(s.length - (keep - head))}`;
}

function followerText(l) {
  if (!l.follower) return '';
  const f = l.follower.kind;
  if (f === 'batchnorm' && l.activation) return `bn+${l.activation.kind}`;
  return f === 'none' ? '' : f;
}

// A table of the riskiest layers (lowest INT8 per-tensor SQNR first).
export function formatTable(result, { top = 20, color = false } = {}) {
  const m = result.model;
  const opset = (m.opsets.find((o) => o.domain === '' || o.domain === 'ai.onnx') || {}).version;
  const producer = [m.producer, m.producerVersion].filter(Boolean).join(' ') || 'unknown producer';
  const s = result.summary;
  const lines = [];
  lines.push(`${m.name}: ${producer}, opset ${opset ?? '?'}, IR ${m.irVersion}; ${s.layers} weight layers, ${formatCount(s.parameters)} parameters`);
  if (s.layers === 0) {
    lines.push('No weight-carrying layers (Conv, ConvTranspose, Gemm, MatMul with a constant weight) found.');
    return lines.join('\n');
  }
  const head = ['#', 'layer', 'op', 'shape', 'ch', 'INT8/T', 'INT8/C', 'INT4/T', 'INT4/C', 'outliers', 'then'];
  const rows = [];
  const shown = s.ranking.slice(0, top);
  shown.forEach((k, r) => {
    const l = result.layers[k];
    if (l.error) {
      rows.push([String(r + 1), l.name, l.op, l.shape.join('x'), String(l.channels ?? ''), l.error.code, '', '', '', '', '']);
      return;
    }
    rows.push([
      String(r + 1),
      (l.path ? `${l.path}/` : '') + l.name,
      l.op + (l.depthwise ? ' dw' : ''),
      l.shape.join('x'),
      String(l.channels.count),
      ...SCHEMES.map((k2) => formatDb(l.sqnr[k2])),
      l.outlierChannels.length ? String(l.outlierChannels.length) : '',
      followerText(l),
    ]);
  });
  const widths = head.map((h, c) => Math.max(h.length, ...rows.map((row) => row[c].length)));
  widths[1] = Math.min(widths[1], 44);
  const right = new Set([0, 4, 5, 6, 7, 8, 9]);
  const fmt = (row) => row.map((cell, c) => {
    const t = clip(cell, widths[c]);
    return right.has(c) ? t.padStart(widths[c]) : t.padEnd(widths[c]);
  }).join('  ').trimEnd();
  lines.push('');
  lines.push(fmt(head));
  for (const row of rows) {
    const line = fmt(row);
    lines.push(color && Number(row[5]) < 30 ? `\x1b[31m${line}\x1b[0m` : line);
  }
  lines.push('');
  lines.push('SQNR in dB of the weights fake-quantized symmetrically (higher is better): /T one scale per tensor, /C one scale per output channel.');
  if (s.ranking.length > shown.length) lines.push(`${s.ranking.length - shown.length} safer layers not shown (--top N, or --json for all).`);
  const w = s.worstInt8PerTensor;
  if (w) lines.push(`Riskiest: ${w.layer} at ${formatDb(w.sqnr)} dB INT8 per-tensor.`);
  lines.push(`${s.layersWithOutliers} of ${s.analysed} layers have outlier channels (${s.outlierChannels} channels, AIMET's Q3 + 1.5 IQR rule on relative ranges).`);
  if (s.failed) lines.push(`${s.failed} layers could not be analysed (see the table).`);
  if (result.skipped.length) lines.push(`Skipped: ${result.skipped.join('; ')}`);
  return lines.join('\n');
}
