// The checks and table formatting shared by the benchmarks (bench.mjs, bench_llm.mjs):
// QuantLens's JSON against the numpy baseline's full output, and the markdown helpers.

export const SQNR_TOL_DB = 1e-3;

// ---------------------------------------------------------------- correctness checks

const f32eq = (a, b) => (a === null || b === null ? a === b : Math.fround(a) === Math.fround(b));

// The numpy baseline's full output against QuantLens's JSON: every statistic the baseline computes,
// the SQNRs of all its schemes: the 4 per-tensor/per-channel ones (chSqnr, layerSqnr) and the
// block-wise INT4 ones, int4Block32 and int4Block128 (blockChSqnr, blockLayerSqnr; the same
// tolerance, SQNR_TOL_DB: float32 squares summed in a different order within a block of at most
// 128, double across), and each input channel's absMax (float32, exactly: a maximum of |w| has
// one right answer, whatever the order), with the input-channel count, axis and groups.
export function fullCheck(ql, np) {
  const byName = new Map(np.layers.map((l) => [l.name, l]));
  const c = {
    layers: 0,
    missing: [],
    f32Mismatch: 0,
    f32Total: 0,
    meanRel: 0,
    stdRel: 0,
    relRangeRel: 0,
    chSqnr: 0,
    layerSqnr: 0,
    blockChSqnr: 0,
    blockLayerSqnr: 0,
    blockSchemes: 0,
    inAbsMismatch: 0,
    inAbsTotal: 0,
    inShapeMismatch: 0,
    sqnrMissing: 0,
    int8T: 0,
    infMismatch: 0,
    histDiff: 0,
    outlierLayers: 0,
    tensorRel: 0,
  };
  const rel = (a, b) => (a === b ? 0 : Math.abs(a - b) / Math.max(Math.abs(a), Math.abs(b)));
  const dB = (a, b) => {
    if (a === undefined || b === undefined) {
      c.sqnrMissing++;
      return 0;
    }
    if (a === null || b === null) {
      if (a !== b) c.infMismatch++;
      return 0;
    }
    return Math.abs(a - b);
  };
  for (const l of ql.layers) {
    const n = byName.get(l.name);
    if (!n) {
      c.missing.push(l.name);
      continue;
    }
    c.layers++;
    const qc = l.channels;
    const nc = n.channels;
    // The numpy peer's schemes (one missing from QuantLens's JSON counts in sqnrMissing).
    const blockSchemes = Object.keys(n.sqnr).filter((s) => /^int4Block/.test(s));
    const chSchemes = Object.keys(n.sqnr).filter((s) => !/^int4Block/.test(s));
    for (const k of ['min', 'max', 'absMax', 'range']) {
      for (let i = 0; i < qc.count; i++) {
        c.f32Total++;
        if (!f32eq(qc[k][i], nc[k][i])) c.f32Mismatch++;
      }
    }
    for (const k of ['min', 'max', 'absMax']) {
      c.f32Total++;
      if (!f32eq(l.tensor[k], n.tensor[k])) c.f32Mismatch++;
    }
    for (let i = 0; i < qc.count; i++) {
      c.meanRel = Math.max(c.meanRel, Math.abs(qc.mean[i] - nc.mean[i]) / (qc.absMax[i] || 1));
      c.stdRel = Math.max(c.stdRel, rel(qc.std[i], nc.std[i]));
      c.relRangeRel = Math.max(c.relRangeRel, rel(qc.relativeRange[i], nc.relativeRange[i]));
      for (const s of chSchemes) c.chSqnr = Math.max(c.chSqnr, dB(qc.sqnr[s]?.[i], nc.sqnr[s][i]));
      for (const s of blockSchemes) c.blockChSqnr = Math.max(c.blockChSqnr, dB(qc.sqnr[s]?.[i], nc.sqnr[s][i]));
    }
    for (const s of chSchemes) c.layerSqnr = Math.max(c.layerSqnr, dB(l.sqnr[s], n.sqnr[s]));
    for (const s of blockSchemes) c.blockLayerSqnr = Math.max(c.blockLayerSqnr, dB(l.sqnr[s], n.sqnr[s]));
    c.blockSchemes = Math.max(c.blockSchemes, blockSchemes.length);
    const qi = l.inputChannels;
    const ni = n.inputChannels;
    if (!qi || !ni || ['count', 'axis', 'groups', 'perGroup'].some((k) => qi[k] !== ni[k])) c.inShapeMismatch++;
    else {
      for (let i = 0; i < qi.count; i++) {
        c.inAbsTotal++;
        if (!f32eq(qi.absMax[i], ni.absMax[i])) c.inAbsMismatch++;
      }
    }
    c.int8T = Math.max(c.int8T, dB(l.sqnr.int8PerTensor, n.sqnr.int8PerTensor));
    c.tensorRel = Math.max(
      c.tensorRel,
      Math.abs(l.tensor.mean - n.tensor.mean) / (l.tensor.absMax || 1),
      rel(l.tensor.std, n.tensor.std),
    );
    c.histDiff += l.histogram.counts.reduce((a, v, i) => a + Math.abs(v - n.histogram.counts[i]), 0);
    const o1 = l.outlierChannels.join(',');
    const o2 = n.outlierChannels.join(',');
    if (o1 !== o2) c.outlierLayers++;
  }
  c.extraNumpy = np.layers.length - c.layers;
  return c;
}

// fullCheck's block-wise INT4 and input-channel results, as the benchmarks' check lines print them.
export function blockInputText(c) {
  const within = (x) => (x <= SQNR_TOL_DB ? '' : ` (MORE than ${SQNR_TOL_DB})`);
  return (
    `block INT4 SQNR (${c.blockSchemes} block sizes) |Δ| ≤ ${exp(c.blockChSqnr)} dB per channel${within(c.blockChSqnr)}, ≤ ${exp(c.blockLayerSqnr)} dB per layer${within(c.blockLayerSqnr)}` +
    `${c.sqnrMissing ? `, ${c.sqnrMissing} SQNRs MISSING in QuantLens` : ''}; ` +
    `input-channel absMax ${c.inAbsMismatch ? `${c.inAbsMismatch} of ${c.inAbsTotal} DIFFER` : `identical (${c.inAbsTotal} values)`}` +
    `${c.inShapeMismatch ? `, count/axis/groups DIFFER on ${c.inShapeMismatch} layers` : ''}`
  );
}

// The required sanity line: layer-level INT8 per-tensor SQNR, timed runs' output.
export function sqnrCheck(ql, npRun) {
  const np = new Map(npRun.layers.map((l) => [l.name, l.sqnr.int8PerTensor]));
  let worst = 0;
  let bad = 0;
  for (const l of ql.layers) {
    const a = l.sqnr.int8PerTensor;
    const b = np.get(l.name);
    const d = b === undefined ? Infinity : a === null || b === null ? (a === b ? 0 : Infinity) : Math.abs(a - b);
    worst = Math.max(worst, d);
    if (!(d <= SQNR_TOL_DB)) bad++;
  }
  return { ok: bad === 0 && np.size === ql.layers.length, worst, bad, layers: ql.layers.length, numpyLayers: np.size };
}

// ---------------------------------------------------------------- formatting

export const MB = 1e6;
export const median = (xs) => {
  const s = [...xs].sort((a, b) => a - b);
  const k = s.length >> 1;
  return s.length % 2 ? s[k] : (s[k - 1] + s[k]) / 2;
};
export const fx = (x, d = 2) => (Number.isFinite(x) ? x.toFixed(d) : '-');
export const sec = (ms) => {
  const s = ms / 1000;
  return fx(s, s >= 10 ? 1 : s >= 1 ? 2 : s >= 0.01 ? 3 : 4);
};
export const spread = (s) => `${sec(s.med)} (${sec(s.min)}–${sec(s.max)})`;
const mark = (ok) => (ok ? 'pass' : 'FAIL');
export const ratioCell = (x, ok, target) => `${fx(x)}x ${mark(ok)} (${target})`;
export const exp = (x) => (x === 0 ? '0' : x.toExponential(1));

export function table(headers, rows) {
  const line = (cells) => `| ${cells.join(' | ')} |`;
  return [line(headers), line(headers.map(() => '---')), ...rows.map(line)].join('\n');
}
