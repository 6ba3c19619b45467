// How results read to people: the one place for the facts every front end shows as text
// or colour (the CLI's tables, the CSV exports, the views, the saved report): a layer's
// label, what follows it, how its weight is stored, and its risk level and colour.
// format.js, export/csv.js, export/model-explorer.js, the CLI and the views import these;
// none of them restates a rule written here. No DOM and no d3, so the CLI can use it too.
import { colors } from './palette.js';

// A layer's display name: path/name for layers inside sub-graphs.
export function layerLabel(layer) {
  return (layer.path ? `${layer.path}/` : '') + layer.name;
}

// Recurrent layers (LSTM, GRU, RNN: `layer.recurrent`, types/index.d.ts): output channel c of
// `<node>/W` or `<node>/R` is unit u of gate g in direction d, with
// c = (d * gates.length + g) * hiddenSize + u (W and R are [directions, gates*hidden, ...]).
// The one place that reads a channel index that way. null for other layers.
export function recurrentChannel(layer, c) {
  const r = layer.recurrent;
  if (!r) return null;
  const perDirection = r.gates.length * r.hiddenSize;
  const g = Math.floor((c % perDirection) / r.hiddenSize);
  return { direction: Math.floor(c / perDirection), gate: r.gates[g], unit: c % r.hiddenSize };
}

// A channel in words: 'channel 17', or for a recurrent layer 'channel 81: gate o, unit 17'
// ('gate f, direction 1 (reverse), unit 17' when bidirectional: direction 0 is forward).
export function channelText(layer, c) {
  const rc = recurrentChannel(layer, c);
  if (!rc) return `channel ${c}`;
  const dir = layer.recurrent.directions > 1 ? `, direction ${rc.direction} (${rc.direction ? 'reverse' : 'forward'})` : '';
  return `channel ${c}: gate ${rc.gate}${dir}, unit ${rc.unit}`;
}

// Where the output channels lie: 'axis 0', or for a recurrent layer
// 'axes 0-1: direction × gate (i o f c) × unit'.
export function channelAxisText(layer) {
  if (!layer.recurrent) return `axis ${layer.channelAxis}`;
  return `axes 0-1: direction × gate (${layer.recurrent.gates.join(' ')}) × unit`;
}

// What a recurrent layer is, in a line: 'input weights W of LSTM_881: forward, gates i o f c,
// 64 units each' ('' for other layers).
export function recurrentText(layer) {
  const r = layer.recurrent;
  if (!r) return '';
  const what = r.part === 'W' ? 'input weights W' : 'recurrent weights R';
  return `${what} of ${r.node}: ${r.direction}, gates ${r.gates.join(' ')}, ${r.hiddenSize} units each`;
}

// The counts of a comparison's pairs matched by names once the quantizer's suffixes are
// removed, for the summary line ("matched by weight name 3, node name 0, <this>position 1"):
// '' when there are none, so comparisons without such pairs read as before.
export function normalizedText(matchedBy = {}) {
  const w = matchedBy['weight-normalized'] ?? 0;
  const n = matchedBy['name-normalized'] ?? 0;
  if (!w && !n) return '';
  return `weight name without the quantizer's suffixes ${w}, node name without them ${n}, `;
}

// What follows the layer: relu, relu6, bn+relu, silu, ... ('' for none). A follower the
// core does not classify ('other') reads as its op ('Add', 'Concat'), which it knows.
export function followerText(layer) {
  if (!layer.follower) return '';
  const f = layer.follower.kind;
  if (f === 'batchnorm' && layer.activation) return `bn+${layer.activation.kind}`;
  if (f === 'other' && layer.follower.op) return layer.follower.op;
  return f === 'none' ? '' : f;
}

// How a weight is stored, in a few words: 'int8 per-channel (DequantizeLinear)', or the
// dtype when it is not quantized. `side` is a layer or one side of a compared pair.
// { axis: true } names a channel axis other than 0: 'int8 per-channel (axis 1) (QLinearMatMul)'.
export function quantizationText(side, { axis = false } = {}) {
  const q = side.quant;
  if (!q) return side.dtype || '';
  if (q.granularity === 'per-block') return `${q.dtype} ${blockText(q)}${q.via ? ` (${q.via})` : ''}`;
  const perChannel = `per-channel${axis && q.axis !== 0 ? ` (axis ${q.axis})` : ''}`;
  return `${q.dtype} ${q.axis === null || q.axis === undefined ? 'per-tensor' : perChannel}${q.via ? ` (${q.via})` : ''}`;
}

// Block-wise weights (MatMulNBits): 'per-block of 32, symmetric'.
function blockText(q) {
  return `per-block of ${q.blockSize}, ${q.symmetric ? 'symmetric' : 'asymmetric'}`;
}

// The same in full, for one layer's facts: dtype, per-tensor or per-axis, the range of
// the scales and zero points, and the ops the weight goes through. `format` writes a number.
export function quantizationDetail(q, format) {
  if (!q) return 'none (float weights)';
  const scale = Array.from(q.scale || []);
  const zp = Array.from(q.zeroPoint || []);
  const via = Array.isArray(q.via) ? q.via.join(' → ') : q.via;
  const span = (v) => {
    const known = v.filter((x) => x !== null && x !== undefined && !Number.isNaN(x));
    return `${format(Math.min(...known))}..${format(Math.max(...known))}`;
  };
  const parts = [
    q.dtype,
    q.granularity === 'per-block' ? blockText(q) : scale.length > 1 ? `per-axis (axis ${q.axis})` : 'per-tensor',
  ];
  if (scale.length) parts.push(`scale ${scale.length > 1 ? `${span(scale)} (${scale.length})` : format(scale[0])}`);
  if (zp.length) parts.push(`zero point ${zp.length > 1 ? span(zp) : format(zp[0])}`);
  if (via) parts.push(`via ${via}`);
  if (q.scaleVia) parts.push(`weight scale applied by ${q.scaleVia}`);
  if (q.note) parts.push(q.note);
  return parts.filter(Boolean).join(', ');
}

// Input channels (docs/computations.md): the outliers SmoothQuant and AWQ rescale. What
// one is for this layer, in a few words: '24 (axis 1 of the stored weight)', or for a
// grouped Conv '8: 4 groups × 2 on axis 1 (channel = group × 2 + index)'.
export function inputChannelText(layer) {
  const ic = layer.inputChannels;
  if (!ic) return '';
  if (ic.groups > 1)
    return `${ic.count}: ${ic.groups} groups × ${ic.perGroup} on axis ${ic.axis} (channel = group × ${ic.perGroup} + index)`;
  return `${ic.count} (axis ${ic.axis} of the stored weight)`;
}

// The rule that flags input channels, as the CLI's summary and the layer view state it.
export const INPUT_OUTLIER_RULE = "AIMET's Q3 + 1.5 IQR rule on absMax relative to the smallest non-zero absMax";

// The CLI's summary line for input channels (analyze()'s summary).
export function inputOutliersText(summary) {
  return `${summary.layersWithInputOutliers} of ${summary.analysed} layers have outlier input channels (${summary.inputOutlierChannels} input channels, ${INPUT_OUTLIER_RULE}).`;
}

// How risky a layer is to quantize to INT8 with one scale per tensor: the single
// rule the app, the saved report and the CLI use.
//   high:   INT8 per-tensor weight SQNR below 30 dB (an outlier channel or a wide
//           spread of channel ranges leaves most channels a few integer levels);
//   medium: below 40 dB, or any outlier channel (AIMET's Q3 + 1.5 IQR rule);
//   low:    otherwise. Layers that could not be analysed are 'failed'.
// For calibration: symmetric 8-bit quantization of Gaussian weights whose scale is set
// by a max |w| of about 4 std gives 6.02*8 + 1.76 - 20*log10(4*sqrt(3)) ~ 38 dB.
export const RISK_DB = { high: 30, medium: 40 };
export const RISK_LEVELS = ['high', 'medium', 'low', 'failed'];

// The level of an SQNR in dB alone (no outlier rule): for a pair of compared weights or a
// single channel. NaN-safe: a NaN SQNR is high risk; Infinity (nothing lost) is low.
export function riskOfDb(db) {
  if (!(db >= RISK_DB.high)) return 'high';
  return db < RISK_DB.medium ? 'medium' : 'low';
}

export function riskOf(layer) {
  return riskOfScheme(layer, 'int8PerTensor');
}

// The same rule for any scheme (the app's scheme selector). RISK_DB is stated for 8-bit
// codes; each bit fewer costs 20·log10(2) ≈ 6.02 dB of SQNR on the same weights (the
// calibration above), so a b-bit scheme's thresholds are RISK_DB lowered by that much
// per missing bit (INT4: high below 5.9 dB, medium below 15.9 dB). Outlier channels make
// a layer medium only under one scale per tensor: per-channel and per-block scales give
// each outlier channel its own. Layers stored quantized keep their stored rating.
export const DB_PER_BIT = 20 * Math.log10(2);
export const schemeBits = (scheme) => (/^int4/.test(scheme) ? 4 : 8);
export const isPerTensor = (scheme) => /PerTensor$/.test(scheme);
export function riskDbFor(scheme) {
  const drop = DB_PER_BIT * (8 - schemeBits(scheme));
  return { high: RISK_DB.high - drop, medium: RISK_DB.medium - drop };
}
export function riskOfSchemeDb(db, scheme) {
  const t = riskDbFor(scheme);
  if (!(db >= t.high)) return 'high';
  return db < t.medium ? 'medium' : 'low';
}
export function riskOfScheme(layer, scheme = 'int8PerTensor') {
  if (layer.error || !layer.sqnr) return 'failed';
  if (layer.quant) return storedRisk(layer);
  const level = riskOfSchemeDb(layer.sqnr[scheme], scheme);
  return level === 'low' && isPerTensor(scheme) && layer.outlierChannels.length ? 'medium' : level;
}

// A weight stored quantized (QDQ, QLinearConv/QLinearMatMul, ConvInteger/MatMulInteger,
// MatMulNBits) is rated on what was stored (layer.stored: docs/computations.md, "Stored
// quantization"), not by quantizing its dequantized values again. With `bits` the
// stored codes' width and a channel's span bits log2(highest code - lowest code + 1):
//   high:   the median channel spans fewer than bits - 3 bits (int8: under 32 of its 256
//           codes, so most channels keep under 5 bits of resolution), or a zero point
//           lies outside the type's range, or at least 10% of the channels are saturated;
//   medium: some channel spans fewer than bits - 3 bits, or a channel is saturated (more
//           than max(2, 1% of its codes) at the ends of the type's range: clipping), or
//           the stored facts are not known (codes wider than 8 bits), or the weight scale
//           was not found (quant.note: the values shown are integer codes);
//   low:    otherwise.
export const STORED_RISK = { spanBitsBelowBits: 3, saturatedChannelShare: 0.1 };

export function storedRisk(layer) {
  const st = layer.stored;
  if (!st) return 'medium';
  const short = st.bits - STORED_RISK.spanBitsBelowBits;
  const channels = st.channels.levels.length || 1;
  if (st.spanBits < short || st.zeroPointsOutsideType > 0 || st.saturatedChannels >= STORED_RISK.saturatedChannelShare * channels)
    return 'high';
  if (st.lowestSpanBits < short || st.saturatedChannels > 0 || layer.quant.note) return 'medium';
  return 'low';
}

// Riskiest first (analysis summary.ranking: the CLI's table order and its 'Riskiest:' line):
// by level (high, medium, low, failed); within a level, layers stored quantized first,
// fewest span bits first, then the most codes at the ends; then float layers in
// `sqnrOrder` (the core's ranking: lowest INT8 per-tensor SQNR first). `layers` are the
// analysed layers, `sqnrOrder` positions in `layers`.
export function riskRanking(layers, sqnrOrder) {
  const place = new Map(sqnrOrder.map((k, i) => [k, i]));
  const level = layers.map((l) => RISK_LEVELS.indexOf(riskOf(l)));
  const stored = (l) => !l.error && l.quant && l.stored;
  return [...sqnrOrder].sort((a, b) => {
    if (level[a] !== level[b]) return level[a] - level[b];
    const sa = stored(layers[a]),
      sb = stored(layers[b]);
    if (!!sa !== !!sb) return sa ? -1 : 1;
    if (sa && sb) {
      const A = layers[a].stored,
        B = layers[b].stored;
      if (A.spanBits !== B.spanBits) return A.spanBits - B.spanBits;
      if (A.saturatedFraction !== B.saturatedFraction) return B.saturatedFraction - A.saturatedFraction;
    }
    return place.get(a) - place.get(b);
  });
}

// The scheme a weight is stored in, in a few words: 'int8 per-channel', 'uint8 per-tensor',
// 'uint4 per-block of 32'.
export function storedSchemeText(layer) {
  const q = layer.quant;
  if (!q) return layer.dtype || '';
  const st = layer.stored;
  if (q.granularity === 'per-block') return `${q.dtype} per-block of ${q.blockSize}`;
  const g = st ? st.granularity : q.axis === null || q.axis === undefined ? 'per-tensor' : 'per-channel';
  return `${q.dtype} ${g}`;
}

// How the quantizer is named in the model header: DequantizeLinear is 'QDQ',
// ConvInteger/MatMulInteger 'dynamic' (ONNX Runtime's quantize_dynamic), others by op.
const QUANTIZER_NAMES = { DequantizeLinear: 'QDQ', ConvInteger: 'dynamic', MatMulInteger: 'dynamic' };

// The model header's line on weights already quantized (analysis summary.quantized):
// 'quantized: 52 layers int8 per-channel (QDQ), 2 float'; '' when no weight is.
export function quantizedText(quantized) {
  if (!quantized || !quantized.layers) return '';
  const merged = new Map(); // ConvInteger and MatMulInteger both read 'dynamic'
  for (const e of quantized.schemes) {
    const key = `${e.scheme} (${QUANTIZER_NAMES[e.via] || e.via})`;
    merged.set(key, (merged.get(key) || 0) + e.layers);
  }
  const parts = [...merged].map(([key, n]) => `${n} ${n === 1 ? 'layer' : 'layers'} ${key}`);
  return `quantized: ${parts.join(', ')}, ${quantized.float} float`;
}

// A quantized layer's stored facts in one cell: 'int8 per-channel sym; 7.1 bits used, span 7.9, 0.1% at ends'.
export function storedFactsText(layer) {
  if (!layer.quant) return '';
  const st = layer.stored;
  const scheme = storedSchemeText(layer);
  if (layer.quant.note) return `${scheme}; scale not found: integer codes`;
  if (!st) return `${scheme}; codes not counted`;
  const pct = 100 * st.saturatedFraction;
  return `${scheme} ${st.symmetric ? 'sym' : 'asym'}; ${st.effectiveBits.toFixed(1)} bits used, span ${st.spanBits.toFixed(1)}, ${pct < 0.1 && pct > 0 ? '<0.1' : pct.toFixed(1)}% at ends`;
}

// When a report was saved, for people: '5 Dec 2026, 23:49 UTC' from its ISO timestamp
// (the ISO text itself when it does not parse).
export function savedAtText(iso) {
  const d = new Date(iso);
  if (!iso || Number.isNaN(d.getTime())) return String(iso ?? 'at an unknown time');
  const month = ['Jan', 'Feb', 'Mar', 'Apr', 'May', 'Jun', 'Jul', 'Aug', 'Sep', 'Oct', 'Nov', 'Dec'][d.getUTCMonth()];
  const two = (n) => String(n).padStart(2, '0');
  return `${d.getUTCDate()} ${month} ${d.getUTCFullYear()}, ${two(d.getUTCHours())}:${two(d.getUTCMinutes())} UTC`;
}

// The colour of a risk level (web/src/palette.js).
export const riskColor = (level) => colors.risk[level];
