// Presenting results: JSON documents and the plain-text table the CLI prints.
import {
  followerText,
  inputOutliersText,
  layerLabel,
  normalizedText,
  quantizationText,
  quantizedText,
  riskOf,
  riskOfDb,
  storedFactsText,
} from './presentation.js';
import { schemeShort, schemesOf } from './schemes.js';

export { quantizationText };

// Shortest decimal that reads back as the same float32 (so JSON stays compact
// and exact); non-finite values become null (JSON has no Infinity).
// That is: the value of x.toPrecision(p) for the first p of 6, 7, 8 that reads back as x
// (Math.fround), else of toPrecision(9) (float32Definition). float32Text writes that
// decimal's text from integer digits, so this is its value (a CLI --json of an LLM
// formats millions of them).
export function float32Number(x) {
  return Number.isFinite(x) ? Number(float32Text(x)) : null;
}

// The definition, written out: what float32Text falls back on where double arithmetic
// cannot decide.
function float32Definition(x) {
  for (let p = 6; p < 9; p++) {
    const y = Number(x.toPrecision(p));
    if (Math.fround(y) === x) return y;
  }
  return Number(x.toPrecision(9));
}

const bits32 = new Float32Array(1);
const word32 = new Uint32Array(bits32.buffer);
// 10^k for k from -60 to 60 (float32Text's scales of 6 to 9 digits reach -33 and 53).
const POW10 = Array.from({ length: 121 }, (_, i) => 10 ** (i - 60));

/**
 * String(float32Number(x)), or 'null' for a non-finite x: the JSON text of a float32, made
 * from integer digits without a toPrecision, a parse and a String() per value (a CLI --json
 * of an LLM writes millions). For the first p of 6, 7, 8 (then 9), the nearest p-digit
 * decimal n * 10^(e - p + 1) is found in double arithmetic (n = Math.round(a * 10^(p-1-e)));
 * it reads back as x when it lies within half a float32 step of |x| and does not when it
 * lies beyond. Where the arithmetic cannot tell (the decade of log10 off, a decimal tie, a
 * distance within 2% of the bound) the definition decides (float32Definition). The text is
 * then ECMAScript's Number::toString of that decimal: its digits without trailing zeros (a
 * decimal of at most 9 digits is the shortest text of the double nearest to it), in plain or
 * exponent form.
 */
export function float32Text(x) {
  if (!Number.isFinite(x)) return 'null';
  if (x === 0) return '0';
  const a = Math.abs(x);
  const e = Math.floor(Math.log10(a));
  bits32[0] = a;
  const w = word32[0];
  word32[0] = w + 1;
  let up = bits32[0] - a; // the float32 step above a (Infinity above the largest: as below)
  word32[0] = w - 1;
  const down = a - bits32[0]; // and below (a > 0, so w - 1 is a float32 or +0)
  if (!Number.isFinite(up)) up = down; // rounding to Infinity starts half a step above the largest
  for (let p = 6; p <= 9; p++) {
    const scale = POW10[p - 1 - e + 60];
    const t = a * scale;
    if (!(t >= POW10[p - 1 + 60] && t < POW10[p + 60])) break;
    const n = Math.round(t);
    const off = n - t; // the decimal minus a, in units of 10^(e - p + 1)
    if (Math.abs(off) > 0.5 - 1e-6) break; // a tie: toPrecision's rule decides
    const half = (off >= 0 ? up : down) * scale * 0.5;
    const d = Math.abs(off);
    if (p < 9 && d > 0.98 * half) {
      if (d > 1.02 * half) continue; // p digits are too few
      break;
    }
    return decimalText(x < 0, n, e - p + 1);
  }
  return String(float32Definition(x));
}

// ECMAScript's Number::toString of the decimal n * 10^q (n a positive integer below 10^10).
function decimalText(negative, n, q) {
  while (n % 10 === 0) {
    n /= 10;
    q++;
  }
  const s = String(n);
  const k = s.length;
  const at = q + k; // the decimal point's place: the value is 0.s * 10^at
  let text;
  if (k <= at && at <= 21) text = s + '0'.repeat(at - k);
  else if (0 < at && at <= 21) text = `${s.slice(0, at)}.${s.slice(at)}`;
  else if (-6 < at && at <= 0) text = `0.${'0'.repeat(-at)}${s}`;
  else {
    const x = at - 1;
    text = `${s[0]}${k > 1 ? `.${s.slice(1)}` : ''}e${x < 0 ? '-' : '+'}${Math.abs(x)}`;
  }
  return negative ? `-${text}` : text;
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

// A value for people: 3 significant digits, no exponent between 1e-4 and 1e6.
export function formatNumber(x) {
  if (x === null || x === undefined || Number.isNaN(x)) return '-';
  if (!Number.isFinite(x)) return x > 0 ? '∞' : '-∞';
  if (x === 0) return '0';
  const a = Math.abs(x);
  if (a >= 1e-4 && a < 1e6) return String(Number(x.toPrecision(3)));
  return x.toExponential(2);
}

// 3 significant digits, with k/M/G for large counts.
export function formatCount(n) {
  const units = [
    [1e9, 'G'],
    [1e6, 'M'],
    [1e3, 'k'],
  ];
  for (const [v, u] of units) if (Math.abs(n) >= v) return `${Number((n / v).toPrecision(3))}${u}`;
  return String(n);
}

function clip(s, width) {
  if (s.length <= width) return s;
  const keep = width - 1;
  const head = Math.ceil(keep / 3);
  return `${s.slice(0, head)}…${s.slice(s.length - (keep - head))}`;
}

// `s` in at most `width` characters such that the part where it differs from `other`
// stays visible: a long name that shares a long prefix with its partner ("/stage1/.../Conv"
// vs "/stage1/.../Conv_quant") loses its start ("…" first) rather than its middle or end.
// For identical names, or when the differing part is itself too long, the usual clip
// (start and end kept).
export function clipDistinct(s, other, width) {
  if (s.length <= width) return s;
  let p = 0;
  while (p < s.length && p < other.length && s[p] === other[p]) p++;
  if (s === other || s.length - p > width - 1) return clip(s, width);
  return `…${s.slice(s.length - (width - 1))}`;
}

// Aligned columns; column 1 (the layer name) is clipped to 44 characters.
function columns(head, rows, { right, red = () => false }) {
  const widths = head.map((h, c) => Math.max(h.length, ...rows.map((row) => row[c].length)));
  widths[1] = Math.min(widths[1], 44);
  const fmt = (row) =>
    row
      .map((cell, c) => {
        const t = clip(cell, widths[c]);
        return right.has(c) ? t.padStart(widths[c]) : t.padEnd(widths[c]);
      })
      .join('  ')
      .trimEnd();
  return [fmt(head), ...rows.map((row) => (red(row) ? `\x1b[31m${fmt(row)}\x1b[0m` : fmt(row)))];
}

// A table of the riskiest layers (lowest INT8 per-tensor SQNR first).
export function formatTable(result, { top = 20, color = false } = {}) {
  const m = result.model;
  const opset = (m.opsets.find((o) => o.domain === '' || o.domain === 'ai.onnx') || {}).version;
  const producer = [m.producer, m.producerVersion].filter(Boolean).join(' ') || 'unknown producer';
  const s = result.summary;
  const lines = [];
  lines.push(
    `${m.name}: ${producer}, opset ${opset ?? '?'}, IR ${m.irVersion}; ${s.layers} weight layers, ${formatCount(s.parameters)} parameters`,
  );
  const quantizedLine = quantizedText(s.quantized);
  if (quantizedLine) lines.push(quantizedLine);
  const skipped = result.skipped || [];
  if (s.layers === 0) {
    lines.push(
      skipped.length
        ? 'No weight layer could be analysed.'
        : 'No weight-carrying layers (Conv, ConvTranspose, Gemm, MatMul with a constant weight) found.',
    );
    if (skipped.length) lines.push('', ...formatSkipped(skipped));
    return lines.join('\n');
  }
  const schemes = schemesOf(result);
  const head = ['#', 'layer', 'op', 'shape', 'ch', ...schemes.map(schemeShort), 'outliers', 'then'];
  // Weights stored quantized: what was stored, the column their rating comes from.
  const stored = !!quantizedLine;
  if (stored) head.push('stored');
  // With analyze()'s compressibility option: each layer's best weight SQNR at COMPRESS_AT kept.
  const at = result.compressibility ? result.compressibility.fractions.indexOf(COMPRESS_AT) : -1;
  const compressible = at >= 0 && !result.compressibilityError;
  if (compressible) head.push(`@${100 * COMPRESS_AT}%`);
  const rows = [];
  const shown = s.ranking.slice(0, top);
  shown.forEach((k, r) => {
    const l = result.layers[k];
    if (l.error) {
      const blank = schemes.map(() => ''); // the error code takes the first SQNR column
      const row = [String(r + 1), l.name, l.op, l.shape.join('x'), String(l.channels ?? ''), l.error.code, ...blank, ''];
      if (stored) row.push('');
      if (compressible) row.push(sqnrAtText(l, at));
      rows.push(row);
      return;
    }
    const row = [
      String(r + 1),
      layerLabel(l),
      l.op + (l.depthwise ? ' dw' : ''),
      l.shape.join('x'),
      String(l.channels.count),
      ...schemes.map((k2) => formatDb(l.sqnr[k2])),
      l.outlierChannels.length ? String(l.outlierChannels.length) : '',
      followerText(l),
    ];
    if (stored) row.push(storedFactsText(l));
    if (compressible) row.push(sqnrAtText(l, at));
    // Red is the app's high risk, judged on the SQNR itself, not on its rounded text.
    row.high = riskOf(l) === 'high';
    rows.push(row);
  });
  lines.push('');
  const right = new Set([0, 4, ...schemes.map((_, i) => 5 + i), 5 + schemes.length]);
  if (compressible) right.add(head.length - 1);
  lines.push(...columns(head, rows, { right, red: (row) => color && row.high }));
  lines.push('');
  lines.push(
    'SQNR in dB of the weights fake-quantized symmetrically (higher is better): /T one scale per tensor, /C one scale per output channel,',
    '/B32 one INT4 scale per block of 32 weights along the reduction axis of an output channel.',
  );
  if (stored)
    lines.push(
      'Weights stored quantized: the SQNR columns re-quantize the dequantized weights; their risk comes from the stored codes (stored: bits used and span are medians over channels of log2(distinct codes) and log2(highest - lowest code + 1)).',
    );
  if (compressible) {
    const m = result.compressibility.method;
    const by = m === 'svd' ? 'weight or spatial SVD' : m === 'prune' ? 'channel pruning' : 'SVD or channel pruning';
    lines.push(
      `@${100 * COMPRESS_AT}%: compressibility, the weight SQNR (dB) a layer keeps with ${100 * COMPRESS_AT}% of its parameters, compressed by ${by}`,
      '(the best method; n/a: none applies, -: none reaches that size; every method and fraction: --json).',
    );
  } else if (result.compressibilityError) {
    const e = result.compressibilityError;
    lines.push(`Compressibility not computed: ${e.code}: ${printable(e.message)}`);
  }
  if (s.ranking.length > shown.length)
    lines.push(`${s.ranking.length - shown.length} safer layers not shown (--top N, or --json for all).`);
  // The first of the ranking: a layer stored quantized is named with what was stored.
  const first = s.ranking.map((k) => result.layers[k]).find((l) => !l.error);
  if (first && first.quant) lines.push(`Riskiest: ${first.name} (${riskOf(first)} risk, stored ${storedFactsText(first)}).`);
  else if (first) lines.push(`Riskiest: ${first.name} at ${formatDb(first.sqnr.int8PerTensor)} dB INT8 per-tensor.`);
  lines.push(
    `${s.layersWithOutliers} of ${s.analysed} layers have outlier channels (${s.outlierChannels} channels, AIMET's Q3 + 1.5 IQR rule on relative ranges).`,
  );
  if (s.layersWithInputOutliers !== undefined) lines.push(inputOutliersText(s));
  if (s.failed) lines.push(`${s.failed} layers could not be analysed (see the table).`);
  if (skipped.length) lines.push('', ...formatSkipped(skipped));
  return lines.join('\n');
}

// The fraction of its parameters at which the table's compressibility column reads each
// layer's curves (one of compressibility()'s fractions).
const COMPRESS_AT = 0.5;

// A layer's compressibility cell: the best weight SQNR of its curves' points at fraction
// index j ('lossless' for a rank that loses nothing: Infinity, null once in JSON), 'n/a'
// when no method applies, '-' when none has a point that small.
function sqnrAtText(l, j) {
  const curves = (l.compressibility?.curves ?? []).filter((k) => !k.refused);
  if (!curves.length) return 'n/a';
  const db = curves.map((k) => k.points[j]).filter((p) => p.keep !== null);
  return db.length ? formatDb(Math.max(...db.map((p) => p.sqnrDb ?? Infinity))) : '-';
}

// One line for a terminal: control characters (newlines, escape sequences) become spaces.
export const printable = (s) => String(s).replace(/[\u0000-\u001f\u007f-\u009f]+/g, ' ');

// The weight nodes the core could not analyse (analyze()'s `skipped`, "name (Op): why"),
// one per line under a count: ['2 weight nodes not analysed:', '  a (Conv): why', ...].
// `suffix` goes before the colon (e.g. ' (not in the CSV)').
export function formatSkipped(skipped, { suffix = '', indent = '  ' } = {}) {
  if (!skipped || !skipped.length) return [];
  const n = skipped.length;
  return [`${n} weight ${n === 1 ? 'node' : 'nodes'} not analysed${suffix}:`, ...skipped.map((x) => `${indent}${printable(x)}`)];
}

const dbPair = (a, b) => `${formatDb(a)} -> ${formatDb(b)}`;
const scaleRange = (v) => {
  let lo = Infinity;
  let hi = -Infinity;
  for (const x of v) {
    lo = Math.min(lo, x);
    hi = Math.max(hi, x);
  }
  return v.length && (lo !== 1 || hi !== 1) ? `${Number(lo.toPrecision(3))}..${Number(hi.toPrecision(3))}` : '';
};

// What equalize() changed: the per-layer SQNR before and after, the sequences, and
// every place a sequence stopped (grouped by reason).
export function formatEqualization(r, { top = 40, color = false } = {}) {
  const s = r.summary;
  const lines = [];
  if (!s.changed) {
    lines.push(`${r.model.name}: nothing to equalize among ${r.layersSeen} weight layers; the model is unchanged.`);
  } else {
    lines.push(
      `${r.model.name}: ${s.layersChanged} of ${r.layersSeen} weight layers changed, ${s.sequences} sequences equalized; ` +
        `${s.batchNormsFolded} BatchNorm folded, ${s.relu6Replaced} ReLU6 replaced by Relu, ${s.biasAbsorptions} high-bias absorptions, ` +
        `${s.deadChannels} near-dead channels left out of balancing.`,
    );
    const t8 = s.int8PerTensor;
    const t4 = s.int4PerTensor;
    lines.push(
      `Weight SQNR per tensor over changed layers, mean (worst): INT8 ${dbPair(t8.meanBefore, t8.meanAfter)} dB ` +
        `(${dbPair(t8.worstBefore, t8.worstAfter)}), INT4 ${dbPair(t4.meanBefore, t4.meanAfter)} dB (${dbPair(t4.worstBefore, t4.worstAfter)}).`,
    );
    const head = ['#', 'layer', 'op', 'INT8/T before', 'after', 'INT4/T before', 'after', 'out scale', 'in scale', 'notes'];
    const rows = r.layers
      .slice(0, top)
      .map((l, k) => [
        String(k + 1),
        l.name,
        l.op,
        l.beforeError ? 'n/a' : formatDb(l.before.sqnr.int8PerTensor),
        formatDb(l.after.sqnr.int8PerTensor),
        l.beforeError ? 'n/a' : formatDb(l.before.sqnr.int4PerTensor),
        formatDb(l.after.sqnr.int4PerTensor),
        scaleRange(l.outScale),
        scaleRange(l.inScale),
        [l.batchNormFolded && 'bn folded', l.biasAdded && 'bias added', l.absorbed && 'bias absorbed'].filter(Boolean).join(', '),
      ]);
    lines.push('');
    lines.push(
      ...columns(head, rows, { right: new Set([0, 3, 4, 5, 6]), red: (row) => color && Number(row[4]) < Number(row[3]) }),
    );
    if (r.layers.length > rows.length)
      lines.push(`${r.layers.length - rows.length} more changed layers not shown (--json for all).`);
    lines.push(
      'SQNR in dB of the weights fake-quantized to one symmetric scale per tensor; "before" is after BatchNorm folding.',
    );
    const unknown = r.layers.filter((l) => l.beforeError);
    if (unknown.length)
      lines.push(
        `"before" is n/a for ${unknown.length} layer${unknown.length > 1 ? 's' : ''} (left out of the means): ${unknown.map((l) => l.beforeError).join('; ')}.`,
      );
    lines.push(
      'Output channel c of a layer is divided by its out scale, input channel c multiplied by its in scale (ranges shown).',
    );
    lines.push('');
    lines.push('Sequences (* = depthwise middle, balanced as a triple):');
    r.sequences.forEach((q, k) => {
      const chain = q.layers
        .map((n, i) => `${n}${q.triple[i] ? '*' : ''}${i < q.links.length ? ` -[${q.links[i] || 'direct'}]-> ` : ''}`)
        .join('');
      lines.push(
        `  ${k + 1}. ${chain} (${q.iterations} sweeps${q.converged ? '' : `, stopped with scales still changing by ${(q.lastChange * 100).toPrecision(2)}%`})`,
      );
    });
  }
  if (r.stops.length) {
    const byReason = new Map();
    for (const st of r.stops) {
      const key = st.reason;
      if (!byReason.has(key)) byReason.set(key, []);
      byReason.get(key).push(st.layer);
    }
    lines.push('');
    lines.push(`Stops (${r.stops.length}), by reason:`);
    for (const [reason, layers] of [...byReason].sort((a, b) => b[1].length - a[1].length)) {
      const names = layers.slice(0, 3).join(', ') + (layers.length > 3 ? `, +${layers.length - 3} more` : '');
      lines.push(`  ${layers.length} x ${reason}  [${names}]`);
    }
  }
  if (r.relu6Replaced.length)
    lines.push(
      `ReLU6 (Clip 0..6) replaced by Relu inside sequences: ${r.relu6Replaced.length} nodes (--keep-relu6 keeps them and ends sequences there).`,
    );
  if (r.relu6Kept.length) lines.push(`ReLU6 kept: ${r.relu6Kept.length} nodes end sequences.`);
  if (r.deadChannels.length) {
    const by = new Map();
    for (const d of r.deadChannels) by.set(d.layer, [...(by.get(d.layer) || []), d.channel]);
    lines.push(
      `Near-dead channels (range below ${r.options.deadChannelRatio} of their layer's largest), not balanced against their ~0 range: ` +
        [...by].map(([l, cs]) => `${l} [${cs.slice(0, 8).join(', ')}${cs.length > 8 ? `, +${cs.length - 8}` : ''}]`).join('; '),
    );
  }
  return lines.join('\n');
}

// compare()'s pairs as a table, lowest SQNR first (pairs that could not be compared
// first of all), then the layers left unmatched.
export function formatComparison(cmp, { top = 40, color = false } = {}) {
  const s = cmp.summary;
  const lines = [];
  const mb = s.matchedBy;
  lines.push(
    `${cmp.a.model.name} vs ${cmp.b.model.name}: ${s.pairs} layer pairs (matched by weight name ${mb.weight}, node name ${mb.name}, ` +
      `${normalizedText(mb)}position ${mb.position}); ` +
      `${s.comparable} comparable, ${s.identical} identical${s.rescaled ? `, ${s.rescaled} rescaled per channel` : ''}; ` +
      `${s.unmatchedA} layers only in A, ${s.unmatchedB} only in B.`,
  );
  if (s.pairs) {
    const key = (p) => (p.comparable ? p.tensor.sqnr : -Infinity);
    const order = cmp.pairs.map((p, k) => k).sort((i, j) => key(cmp.pairs[i]) - key(cmp.pairs[j]) || i - j);
    const head = ['#', 'layer A', 'layer B', 'matched by', 'B quantization', 'max|diff|', 'RMS diff', 'SQNR dB'];
    const rows = order.slice(0, top).map((k, r) => {
      const p = cmp.pairs[k];
      const row = [
        String(r + 1),
        clipDistinct(layerLabel(p.a), layerLabel(p.b), 44),
        layerLabel(p.b),
        p.matchedBy,
        quantizationText(p.b),
        ...(p.comparable
          ? [
              formatNumber(p.tensor.maxAbsDiff),
              formatNumber(p.tensor.rmsDiff),
              `${formatDb(p.tensor.sqnr)}${p.rescale ? ' rescaled' : ''}`,
            ]
          : [`not comparable: ${p.reason}`, '', '']),
      ];
      // A rescaled pair computes A's function: its SQNR is no risk (as in the app's view).
      row.high = p.comparable && !p.rescale && riskOfDb(p.tensor.sqnr) === 'high';
      return row;
    });
    lines.push('');
    lines.push(...columns(head, rows, { right: new Set([0, 5, 6, 7]), red: (row) => color && row.high }));
    lines.push('');
    lines.push(
      'SQNR in dB of B\'s weights (dequantized) against A\'s: 10 log10(sum a^2 / sum (b - a)^2); "lossless" when identical.',
    );
    if (order.length > rows.length)
      lines.push(`${order.length - rows.length} more pairs not shown (--top N, or --format json for all).`);
    if (s.rescaled)
      lines.push(
        `"rescaled": B = A rescaled per output channel (as Cross Layer Equalization and BatchNorm folding rescale), ` +
          `the same function: that SQNR is no quantization error.`,
      );
    // The worst pair that is not such a rescale (summary.worst counts every comparable pair).
    const worst = cmp.pairs
      .filter((p) => p.comparable && !p.rescale)
      .reduce((w, p) => (!w || p.tensor.sqnr < w.tensor.sqnr ? p : w), null);
    if (worst) {
      const db = worst.tensor.sqnr;
      lines.push(
        `Worst${s.rescaled ? ' not rescaled' : ''}: ${worst.a.name} ${db === Infinity ? 'is identical' : `at ${formatDb(db)} dB`}.`,
      );
    }
  }
  const list = (names) => names.slice(0, 10).join(', ') + (names.length > 10 ? `, +${names.length - 10} more` : '');
  if (cmp.unmatched.a.length) lines.push(`Only in A (${cmp.unmatched.a.length}): ${list(cmp.unmatched.a)}`);
  if (cmp.unmatched.b.length) lines.push(`Only in B (${cmp.unmatched.b.length}): ${list(cmp.unmatched.b)}`);
  return lines.join('\n');
}

// One line of a progress bar: `analyze [#########.........]  45%  12/27 Conv_3`.
// `done`/`total` are bytes for phase 'read' (shown in MB), counts otherwise.
export function formatProgress({ phase, done = 0, total = 0, layer } = {}, { width = 80, label } = {}) {
  const frac = total > 0 ? Math.min(1, Math.max(0, done / total)) : 0;
  const mb = (n) => `${(n / 1e6).toFixed(1)}`;
  const count = total > 0 ? (phase === 'read' ? `${mb(done)}/${mb(total)} MB` : `${done}/${total}`) : '';
  const name = `${label || phase}`.padEnd(8);
  const pct = `${String(Math.floor(frac * 100)).padStart(3)}%`;
  const barWidth = Math.max(10, Math.min(30, width - name.length - 30));
  const filled = Math.round(frac * barWidth);
  let line = `${name} [${'#'.repeat(filled)}${'.'.repeat(barWidth - filled)}] ${pct} ${count}`;
  if (layer) line += ` ${String(layer).replace(/[\u0000-\u001f\u007f]+/g, ' ')}`;
  return line.length > width - 1 ? line.slice(0, width - 1) : line;
}
