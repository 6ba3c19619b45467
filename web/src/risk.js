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

export function riskOf(layer) {
  if (layer.error || !layer.sqnr) return 'failed';
  const db = layer.sqnr.int8PerTensor;
  if (!(db >= RISK_DB.high)) return 'high';  // NaN-safe: a NaN SQNR is high risk
  if (db < RISK_DB.medium || layer.outlierChannels.length) return 'medium';
  return 'low';
}
