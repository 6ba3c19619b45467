// The answers the app gives, computed from the analysis numbers alone: per scheme, how many
// layers fall below the high-risk threshold (and where Cross Layer Equalization brings that
// count); per layer, one line saying why it is at risk and the advice that follows (per-channel
// scales, CLE, keep in higher precision). The thresholds and levels are presentation.js's
// (riskDbFor, riskOfScheme); nothing here restates a number. No DOM, no d3.
import { isPerTensor, riskDbFor, riskOfScheme, riskOfSchemeDb, storedFactsText } from './presentation.js';
import { schemeLabel, schemesOf } from './schemes.js';

const finiteSorted = (values) =>
  Float64Array.from(values || [])
    .filter((v) => Number.isFinite(v))
    .sort();

// The median (linear interpolation, numpy's default) of the finite values.
export function median(values) {
  const v = finiteSorted(values);
  if (!v.length) return NaN;
  const h = (v.length - 1) / 2;
  const lo = Math.floor(h);
  return v[lo] + (v[Math.ceil(h)] - v[lo]) * (h - lo);
}

// A factor for people: '31x' from 10 on, '9.4x' below.
export const factorText = (x) => (!Number.isFinite(x) ? '∞×' : x >= 10 ? `${Math.round(x)}×` : `${x.toFixed(1)}×`);
const dbText = (x) => (x === Infinity ? 'lossless' : Number.isFinite(x) ? `${x.toFixed(1)} dB` : '-');

// The per-channel (or per-block) scheme of the same width as `scheme`: what one scale per
// output channel buys over one per tensor.
export const perChannelOf = (scheme) => scheme.replace(/PerTensor$/, 'PerChannel');

// The channel with the lowest SQNR under `scheme` (layer.channels.sqnr), or -1.
export function worstChannel(layer, scheme = 'int8PerTensor') {
  const v = layer?.channels?.sqnr?.[scheme];
  if (!v || !v.length) return -1;
  let w = -1;
  for (let c = 0; c < v.length; c++) if (Number.isFinite(v[c]) && (w < 0 || v[c] < v[w])) w = c;
  return w < 0 ? 0 : w;
}

// The channels whose range is an outlier, with their range as a multiple of the median
// channel range: [{ channel, factor }] in channel order.
export function outlierFactors(layer) {
  const ch = layer.channels;
  const med = median(ch.range);
  return Array.from(layer.outlierChannels || [], (c) => ({ channel: c, factor: ch.range[c] / med }));
}

const listChannels = (cs, max = 8) =>
  cs.length <= max ? cs.join(', ') : `${cs.slice(0, max).join(', ')} and ${cs.length - max} more`;

/**
 * Why a layer is (or is not) at risk under `scheme`, and what to do: { risk, why, advice, text }.
 * `advice` is a list of codes: 'per-channel' (one scale per output channel fixes it),
 * 'cle' (Cross Layer Equalization brings it above the threshold: needs `after`, the layer's
 * SQNRs after equalization), 'higher-precision' (even per-channel scales stay below the
 * threshold), 'per-block' (INT4 per-block scales clear it where per-channel does not).
 * `text` is the one line the app shows: why, then the advice in words.
 */
export function layerWhy(layer, scheme = 'int8PerTensor', { after = null } = {}) {
  const risk = riskOfScheme(layer, scheme);
  if (risk === 'failed') return { risk, why: 'not analysed', advice: [], text: layer.error?.message || 'not analysed' };
  if (layer.quant) {
    const text = `stored quantized: ${storedFactsText(layer)}`;
    return { risk, why: text, advice: [], text };
  }
  const ch = layer.channels;
  const C = ch.count;
  const db = layer.sqnr[scheme];
  let why;
  if (C === 1) why = 'one output channel: per-channel scales are the per-tensor scale';
  else if (layer.outlierChannels.length) {
    const f = outlierFactors(layer);
    const lo = Math.min(...f.map((x) => x.factor));
    const hi = Math.max(...f.map((x) => x.factor));
    const range =
      lo === hi || factorText(lo) === factorText(hi) ? factorText(hi) : `${factorText(lo).slice(0, -1)}-${factorText(hi)}`;
    const n = f.length;
    why = `${n} output channel${n === 1 ? '' : 's'} ${range} the median range: channel${n === 1 ? '' : 's'} ${listChannels(f.map((x) => x.channel))}`;
  } else {
    const med = median(ch.range);
    let widest = 0;
    for (let c = 1; c < C; c++) if (ch.range[c] > ch.range[widest]) widest = c;
    why = `no outlier channel; the widest (channel ${widest}) is ${factorText(ch.range[widest] / med)} the median range`;
  }
  const advice = [];
  const words = [];
  const t = riskDbFor(scheme);
  if (risk === 'low') words.push(`${dbText(db)} under ${schemeLabel(scheme)}: nothing to do`);
  else {
    const pc = perChannelOf(scheme);
    const pcDb = layer.sqnr[pc];
    if (isPerTensor(scheme) && C > 1 && riskOfSchemeDb(pcDb, pc) !== 'high') {
      advice.push('per-channel');
      words.push(`per-channel scales fix it (${dbText(pcDb)})`);
    }
    const cleDb = after?.sqnr?.[scheme];
    if (Number.isFinite(cleDb) && cleDb >= t.high && cleDb > db) {
      advice.push('cle');
      words.push(`CLE brings it to ${dbText(cleDb)}`);
    }
    const pcHigh = riskOfSchemeDb(isPerTensor(scheme) ? pcDb : db, pc) === 'high';
    if (pcHigh) {
      const block = /^int4/.test(scheme)
        ? schemesOf(null)
            .filter((k) => /^int4Block/.test(k))
            .find((k) => riskOfSchemeDb(layer.sqnr[k], k) !== 'high')
        : null;
      if (block) {
        advice.push('per-block');
        words.push(`${schemeLabel(block)} scales clear it (${dbText(layer.sqnr[block])})`);
      } else if (!advice.includes('cle')) {
        advice.push('higher-precision');
        words.push(`even ${schemeLabel(pc)} is ${dbText(isPerTensor(scheme) ? pcDb : db)}: keep this layer in higher precision`);
      }
    }
    if (!words.length) words.push(`${dbText(db)} under ${schemeLabel(scheme)}, below ${t.medium.toFixed(0)} dB`);
  }
  return { risk, why, advice, text: `${why}; ${words.join('; ')}` };
}

// The layers' SQNRs after equalization by layer name (the equalize() result's changed
// layers; the others are unchanged), for layerWhy's `after` and the counts below.
export function afterByName(equalization) {
  const m = new Map();
  for (const l of equalization?.layers || []) if (l.after) m.set(l.name, l.after);
  return m;
}

// Per scheme, how many analysed float layers fall below its high-risk threshold, and with
// an equalization, how many after it: [{ scheme, label, threshold, below, levels, afterCle }].
// `levels` counts every level (riskOfScheme); afterCle is null without an equalization.
export function schemeVerdicts(analysis, { equalization = null, schemes = schemesOf(analysis) } = {}) {
  const layers = analysis?.layers || [];
  const after = equalization ? afterByName(equalization) : null;
  return schemes.map((scheme) => {
    const t = riskDbFor(scheme);
    const levels = { high: 0, medium: 0, low: 0, failed: 0 };
    let below = 0;
    let belowAfter = 0;
    for (const l of layers) {
      levels[riskOfScheme(l, scheme)]++;
      if (l.error || !l.sqnr || l.quant) continue;
      if (!(l.sqnr[scheme] >= t.high)) below++;
      const a = after?.get(l.name)?.sqnr?.[scheme];
      if (!((a ?? l.sqnr[scheme]) >= t.high)) belowAfter++;
    }
    return { scheme, label: schemeLabel(scheme), threshold: t.high, below, levels, afterCle: after ? belowAfter : null };
  });
}

// A threshold in dB for people: '30', '5.9'.
export const thresholdText = (db) => (Math.abs(db - Math.round(db)) < 0.05 ? String(Math.round(db)) : db.toFixed(1));

// The header's sentence: 'INT8 per-channel: 0 layers below 30 dB; INT8 per-tensor: 11 below 30 dB, CLE brings it to 2; ...'.
export function verdictText(verdicts) {
  return verdicts
    .map((v) => {
      const cle =
        v.afterCle !== null && v.afterCle !== undefined && v.afterCle !== v.below ? `, CLE brings it to ${v.afterCle}` : '';
      return `${v.label}: ${v.below} ${v.below === 1 ? 'layer' : 'layers'} below ${thresholdText(v.threshold)} dB${cle}`;
    })
    .join('; ');
}

// The layer the app shows first: the riskiest (analysis summary.ranking) that has something
// to chart, that is more than one output channel; else the riskiest analysed; else the first.
export function defaultLayer(analysis) {
  const layers = analysis?.layers || [];
  if (!layers.length) return null;
  const ranking = analysis.summary?.ranking ?? layers.map((l, k) => k);
  const ok = (k) => layers[k] && !layers[k].error;
  return ranking.find((k) => ok(k) && layers[k].channels?.count > 1) ?? ranking.find(ok) ?? 0;
}

// The layers at the two ends of an equalization, each named, so a summary never joins two
// layers' numbers into one arrow: { before: { name, before, after }, after: { name, before, after } }
// for the layer worst before and the layer worst after, under `scheme` (nulls when none).
export function cleWorst(equalization, scheme = 'int8PerTensor') {
  let wb = null;
  let wa = null;
  for (const l of equalization?.layers || []) {
    const b = l.before?.sqnr?.[scheme];
    const a = l.after?.sqnr?.[scheme];
    const row = { name: l.name, before: b, after: a };
    if (Number.isFinite(b) && (!wb || b < wb.before)) wb = row;
    if (Number.isFinite(a) && (!wa || a < wa.after)) wa = row;
  }
  return { before: wb, after: wa };
}

// Why a stop happened, with the names of the weight, bias, output or node taken out, so the
// stops group by what they say (the names are listed inside the group):
// 'weight conv2d_0.w_0 is the value of a Constant node ...' -> 'weight … is the value of a Constant node ...'.
// Returns { key, name } (name: what was taken out, or '').
export function stopReasonKey(reason) {
  const r = String(reason ?? '');
  let m = /^(weight|bias) (\S+)(:? [\s\S]*)$/.exec(r);
  if (m) return { key: `${m[1]} …${m[3]}`, name: m[2] };
  m = /^(its output) (\S+)( is [\s\S]*)$/.exec(r);
  if (m) return { key: `${m[1]} …${m[3]}`, name: m[2] };
  m = /^reaches ([^:,]+)([:,] [\s\S]*)$/.exec(r);
  if (m) return { key: `reaches …${m[2]}`, name: m[1] };
  return { key: r, name: '' };
}

// The options an equalization ran with, in words: 'high-bias absorption on, ReLU6 replaced by
// Relu, depthwise triples on, through zero Pad and pools on, at most 50 sweeps'.
export function cleOptionsText(options) {
  const o = options || {};
  const onOff = (v) => (v ? 'on' : 'off');
  return [
    `high-bias absorption ${onOff(o.biasAbsorption)}`,
    o.keepRelu6 ? 'ReLU6 kept (ends sequences)' : 'ReLU6 replaced by Relu inside sequences',
    `depthwise triples ${onOff(o.triples)}`,
    `through zero Pad and pools ${onOff(o.throughPadPool)}`,
    ...(o.maxIterations ? [`at most ${o.maxIterations} sweeps`] : []),
  ].join(', ');
}
