// Comparing QuantLens statistics with the independent reference's, channel by channel.
export const SCHEMES = ['int8PerTensor', 'int8PerChannel', 'int4PerTensor', 'int4PerChannel'];
// The block-wise INT4 schemes always measured (analyze_ref.py adds int4Block<N> for --block-size N).
export const BLOCK_SCHEMES = ['int4Block32', 'int4Block128'];
const f32 = Math.fround;

export class Diff {
  constructor() {
    this.list = [];
  }
  add(where, what) {
    this.list.push(`${where}: ${what}`);
  }
  eq(where, a, b) {
    if (JSON.stringify(a) !== JSON.stringify(b)) this.add(where, `ours ${JSON.stringify(a)} vs reference ${JSON.stringify(b)}`);
  }
  // float32 values must be the same float32
  f32(where, a, b) {
    if (!(a === null && b === null) && f32(a) !== f32(b)) this.add(where, `ours ${a} vs reference ${b}`);
  }
  close(where, a, b, tol) {
    if (a === null || b === null) {
      if (a !== b) this.add(where, `ours ${a} vs reference ${b}`);
      return;
    }
    if (!(Math.abs(a - b) <= tol)) this.add(where, `ours ${a} vs reference ${b} (tolerance ${tol.toExponential(1)})`);
  }
  arrays(where, a, b, check) {
    if (!Array.isArray(a) || !Array.isArray(b) || a.length !== b.length) {
      this.add(where, `lengths ${a?.length} vs ${b?.length}`);
      return;
    }
    for (let i = 0; i < a.length; i++) check(`${where}[${i}]`, a[i], b[i], i);
  }
}

const DB_TOL = 1e-3; // dB
const relTol = (ref, scale) => 1e-5 * Math.abs(ref ?? 0) + 1e-6 * scale;

// Per-channel and whole-tensor statistics of one layer: ours (`o`) vs the reference's (`r`).
export function compareStats(d, where, o, r) {
  const oc = o.channels;
  const rc = r.channels;
  d.eq(`${where}.channels.count`, oc.count, rc.count);
  for (const k of ['min', 'max', 'absMax', 'range'])
    d.arrays(`${where}.channels.${k}`, oc[k], rc[k], (w, a, b) => d.f32(w, a, b));
  for (const k of ['mean', 'std'])
    d.arrays(`${where}.channels.${k}`, oc[k], rc[k], (w, a, b, i) => d.close(w, a, b, relTol(b, rc.absMax[i])));
  d.arrays(`${where}.channels.relativeRange`, oc.relativeRange, rc.relativeRange, (w, a, b) =>
    d.close(w, a, b, 1e-6 * Math.abs(b) + 1e-12),
  );
  // Every scheme the reference measured (the four, the block schemes, any extra block size),
  // and the reference must have measured the block schemes.
  for (const s of BLOCK_SCHEMES) d.eq(`${where}: the reference measured ${s}`, s in r.sqnr, true);
  for (const s of new Set([...SCHEMES, ...Object.keys(r.sqnr)])) {
    d.arrays(`${where}.channels.sqnr.${s}`, oc.sqnr[s], rc.sqnr[s], (w, a, b) => d.close(w, a, b, DB_TOL));
    d.close(`${where}.sqnr.${s}`, o.sqnr[s], r.sqnr[s], DB_TOL);
  }
  for (const k of ['min', 'max', 'absMax']) d.f32(`${where}.tensor.${k}`, o.tensor[k], r.tensor[k]);
  for (const k of ['mean', 'std'])
    d.close(`${where}.tensor.${k}`, o.tensor[k], r.tensor[k], relTol(r.tensor[k], r.tensor.absMax));
  d.f32(`${where}.histogram.min`, o.histogram.min, r.histogram.min);
  d.f32(`${where}.histogram.max`, o.histogram.max, r.histogram.max);
  d.eq(`${where}.histogram.counts`, o.histogram.counts, r.histogram.counts);
  d.eq(`${where}.outlierChannels`, o.outlierChannels, r.outlierChannels);
  d.close(`${where}.outlierThreshold`, o.outlierThreshold, r.outlierThreshold, 1e-6 * Math.abs(r.outlierThreshold) + 1e-12);
}

// The facts of a weight stored as integer codes (analysis `stored`): ours vs the
// reference's. Counts and code values exactly; bits (log2 of counts, medians) to 1e-9.
export function compareStored(d, where, o, r) {
  if (!o || !r) {
    d.eq(`${where}.stored`, o ? 'present' : null, r ? 'present' : null);
    return;
  }
  for (const k of ['bits', 'signed', 'float', 'typeMin', 'typeMax', 'lowEnd', 'granularity', 'symmetric', 'elements'])
    d.eq(`${where}.stored.${k}`, o[k], r[k]);
  for (const k of ['saturatedChannels', 'zeroPointsOutsideUsed', 'zeroPointsOutsideType'])
    d.eq(`${where}.stored.${k}`, o[k], r[k]);
  for (const k of ['effectiveBits', 'spanBits', 'lowestSpanBits', 'saturatedFraction'])
    d.close(`${where}.stored.${k}`, o[k], r[k], 1e-9);
  for (const k of ['levels', 'codeMin', 'codeMax', 'atLow', 'atHigh'])
    d.eq(`${where}.stored.channels.${k}`, o.channels[k], r.channels[k]);
}
