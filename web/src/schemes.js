// The four fake-quantization schemes every layer is measured under, in display order
// (symmetric, one scale per tensor or per output channel).
export const SCHEMES = ['int8PerTensor', 'int8PerChannel', 'int4PerTensor', 'int4PerChannel'];
export const SCHEME_LABELS = {
  int8PerTensor: 'INT8 per-tensor',
  int8PerChannel: 'INT8 per-channel',
  int4PerTensor: 'INT4 per-tensor',
  int4PerChannel: 'INT4 per-channel',
};
