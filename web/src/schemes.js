// The fake-quantization schemes every layer is measured under, in display order
// (symmetric: one scale per tensor, per output channel, or per block of B weights along
// the reduction axis of one output channel; src/stats/stats.hpp defines them). An
// analysis run with the blockSize option adds one more block scheme, int4Block<N>:
// schemesOf(analysis) lists what an analysis holds.
export const SCHEMES = ['int8PerTensor', 'int8PerChannel', 'int4PerTensor', 'int4PerChannel', 'int4Block32', 'int4Block128'];
export const SCHEME_LABELS = {
  int8PerTensor: 'INT8 per-tensor',
  int8PerChannel: 'INT8 per-channel',
  int4PerTensor: 'INT4 per-tensor',
  int4PerChannel: 'INT4 per-channel',
  int4Block32: 'INT4 per-block of 32',
  int4Block128: 'INT4 per-block of 128',
};
const BLOCK = /^int4Block([1-9][0-9]*)$/;
// The block size of a block scheme's name, or null.
export const blockSizeOf = (scheme) => (BLOCK.test(scheme) ? Number(BLOCK.exec(scheme)[1]) : null);
export const isScheme = (scheme) => SCHEMES.includes(scheme) || blockSizeOf(scheme) !== null;
export const schemeLabel = (scheme) =>
  SCHEME_LABELS[scheme] ?? (blockSizeOf(scheme) ? `INT4 per-block of ${blockSizeOf(scheme)}` : scheme);
// Short labels for table headers and legends.
export const schemeShort = (scheme) =>
  ({
    int8PerTensor: 'INT8/T',
    int8PerChannel: 'INT8/C',
    int4PerTensor: 'INT4/T',
    int4PerChannel: 'INT4/C',
  })[scheme] ?? (blockSizeOf(scheme) ? `INT4/B${blockSizeOf(scheme)}` : scheme);
// The schemes an analysis measured (its `schemes`; older documents: the first six).
export const schemesOf = (analysis) => (Array.isArray(analysis?.schemes) ? analysis.schemes : SCHEMES);
