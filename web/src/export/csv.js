// CSV exports (RFC 4180) of analyze(), equalize() and compare() results, for
// spreadsheets and pandas. Pure functions: a result in, the CSV text out.
//
// Format: a header row, then one row per record; fields separated by commas, records
// ended by CRLF; a field holding a comma, a double quote, CR or LF is enclosed in
// double quotes with its quotes doubled (RFC 4180 section 2). Numbers read back
// exactly: float32 quantities (per-channel min, max, absMax, range, SQNR) as the
// shortest decimal that rounds to the same float32 (float32Number), doubles as the
// shortest decimal that reads back as the same double (String(x)). Infinite values
// are written `inf` / `-inf` (an SQNR is infinite when nothing is lost), NaN and
// missing values as an empty field: Python's float(), numpy and pandas read all of
// these. Booleans are 0/1.
import { float32Text } from '../format.js';
import { followerText, quantizationText, riskOf } from '../presentation.js';
import { SCHEMES, schemesOf } from '../schemes.js';

// One field, quoted when it must be.
export function csvField(value) {
  if (value === null || value === undefined) return '';
  let s;
  if (typeof value === 'number') s = csvNumber(value);
  else if (typeof value === 'boolean') s = value ? '1' : '0';
  else s = String(value);
  return /[",\r\n]/.test(s) ? `"${s.replace(/"/g, '""')}"` : s;
}

// A double written so it reads back as the same double.
export function csvNumber(x) {
  if (x === null || x === undefined || Number.isNaN(x)) return '';
  if (x === Infinity) return 'inf';
  if (x === -Infinity) return '-inf';
  return Object.is(x, -0) ? '0' : String(x);
}

// A float32 value written as the shortest decimal that reads back as the same float32.
export function csvFloat32(x) {
  if (x === null || x === undefined || Number.isNaN(x)) return '';
  if (!Number.isFinite(x)) return x > 0 ? 'inf' : '-inf';
  return float32Text(x);
}

// Wraps a pre-formatted number so csvField does not reformat it.
class Raw {
  constructor(s) {
    this.s = s;
  }
}
const raw = (s) => new Raw(s);
// An element of a per-channel array: float32 arrays via float32Number, others exactly.
const elem = (arr, i) => raw(arr instanceof Float32Array ? csvFloat32(arr[i]) : csvNumber(arr[i]));

export function toCsv(header, rows) {
  const line = (cells) => cells.map((c) => (c instanceof Raw ? c.s : csvField(c))).join(',');
  return [line(header), ...rows.map(line)].join('\r\n') + '\r\n';
}

// Per layer: the columns of the CLI's table, every analysed layer, riskiest first. One
// SQNR column per scheme measured (SCHEMES, then int4Block<N> when analysed with blockSize).
export const layerColumns = (schemes = SCHEMES) => [
  'rank',
  'index',
  'layer',
  'path',
  'op',
  'depthwise',
  'weight',
  'shape',
  'channels',
  ...schemes,
  'outliers',
  'then',
  'risk',
  'error',
  'inputOutliers',
];
export const LAYER_COLUMNS = layerColumns();

export function analysisLayersCsv(result) {
  const schemes = schemesOf(result);
  const order = [...result.summary.ranking];
  // Layers missing from the ranking (none today) go last, in graph order.
  const ranked = new Set(order);
  result.layers.forEach((_, k) => {
    if (!ranked.has(k)) order.push(k);
  });
  const rows = order.map((k, r) => {
    const l = result.layers[k];
    const ok = !l.error;
    return [
      r + 1,
      l.index,
      l.name,
      l.path || '',
      l.op,
      !!l.depthwise,
      l.weight,
      (l.shape || []).join('x'),
      ok ? l.channels.count : typeof l.channels === 'number' ? l.channels : null,
      ...schemes.map((s) => (ok ? l.sqnr[s] : null)),
      ok ? l.outlierChannels.length : null,
      ok ? followerText(l) : '',
      riskOf(l),
      l.error ? `${l.error.code}: ${l.error.message}` : '',
      ok && l.inputChannels ? l.inputChannels.outliers.length : null,
    ];
  });
  return toCsv(layerColumns(schemes), rows);
}

// Per (layer, channel): the statistics of every output channel of every analysed layer.
export const channelColumns = (schemes = SCHEMES) => [
  'index',
  'layer',
  'path',
  'op',
  'channel',
  'min',
  'max',
  'mean',
  'std',
  'absMax',
  'range',
  'relativeRange',
  'outlier',
  ...schemes,
];
export const CHANNEL_COLUMNS = channelColumns();

export function analysisChannelsCsv(result) {
  const schemes = schemesOf(result);
  const rows = [];
  for (const l of result.layers) {
    if (l.error) continue;
    const c = l.channels;
    const outliers = new Set(l.outlierChannels);
    for (let i = 0; i < c.count; i++) {
      rows.push([
        l.index,
        l.name,
        l.path || '',
        l.op,
        i,
        elem(c.min, i),
        elem(c.max, i),
        elem(c.mean, i),
        elem(c.std, i),
        elem(c.absMax, i),
        elem(c.range, i),
        elem(c.relativeRange, i),
        outliers.has(i) ? 1 : 0,
        ...schemes.map((s) => elem(c.sqnr[s], i)),
      ]);
    }
  }
  return toCsv(channelColumns(schemes), rows);
}

// Per pair of compare(): A's and B's layer, how they were matched, B's quantization and
// the differences; then one row per unmatched layer (matchedBy 'unmatched').
export const PAIR_COLUMNS = [
  'pair',
  'layerA',
  'pathA',
  'layerB',
  'pathB',
  'op',
  'matchedBy',
  'quantizationB',
  'comparable',
  'reason',
  'maxAbsDiff',
  'rmsDiff',
  'sqnr',
];

export function comparisonPairsCsv(cmp) {
  const rows = cmp.pairs.map((p, k) => [
    p.index ?? k,
    p.a.name,
    p.a.path || '',
    p.b.name,
    p.b.path || '',
    p.a.op,
    p.matchedBy,
    quantizationText(p.b),
    p.comparable,
    p.reason || '',
    p.tensor ? p.tensor.maxAbsDiff : null,
    p.tensor ? p.tensor.rmsDiff : null,
    p.tensor ? p.tensor.sqnr : null,
  ]);
  for (const name of cmp.unmatched.a)
    rows.push([null, name, '', '', '', '', 'unmatched', '', false, 'only in A', null, null, null]);
  for (const name of cmp.unmatched.b)
    rows.push([null, '', '', name, '', '', 'unmatched', '', false, 'only in B', null, null, null]);
  return toCsv(PAIR_COLUMNS, rows);
}

// Per (pair, channel) of the comparable pairs.
export const PAIR_CHANNEL_COLUMNS = [
  'pair',
  'layerA',
  'layerB',
  'channel',
  'maxAbsDiff',
  'rmsDiff',
  'sqnr',
  'minA',
  'maxA',
  'minB',
  'maxB',
];

export function comparisonChannelsCsv(cmp) {
  const rows = [];
  cmp.pairs.forEach((p, k) => {
    if (!p.comparable || !p.channels) return;
    const c = p.channels;
    for (let i = 0; i < c.count; i++) {
      rows.push([
        p.index ?? k,
        p.a.name,
        p.b.name,
        i,
        elem(c.maxAbsDiff, i),
        elem(c.rmsDiff, i),
        elem(c.sqnr, i),
        elem(c.minA, i),
        elem(c.maxA, i),
        elem(c.minB, i),
        elem(c.maxB, i),
      ]);
    }
  });
  return toCsv(PAIR_CHANNEL_COLUMNS, rows);
}

const extent = (v) => {
  let lo = Infinity;
  let hi = -Infinity;
  for (const x of v || []) {
    lo = Math.min(lo, x);
    hi = Math.max(hi, x);
  }
  return v && v.length ? [lo, hi] : [null, null];
};

// Per changed layer of equalize(): SQNR before and after, the scale ranges and notes.
export const EQUALIZATION_COLUMNS = [
  'layer',
  'op',
  'weight',
  ...SCHEMES.flatMap((s) => [`${s}Before`, `${s}After`]),
  'outScaleMin',
  'outScaleMax',
  'inScaleMin',
  'inScaleMax',
  'batchNormFolded',
  'biasAdded',
  'biasAbsorbed',
];

export function equalizationCsv(eq) {
  const rows = eq.layers.map((l) => [
    l.name,
    l.op,
    l.weight,
    ...SCHEMES.flatMap((s) => [l.before.sqnr[s], l.after.sqnr[s]]),
    ...extent(l.outScale),
    ...extent(l.inScale),
    !!l.batchNormFolded,
    !!l.biasAdded,
    !!l.absorbed,
  ]);
  return toCsv(EQUALIZATION_COLUMNS, rows);
}
