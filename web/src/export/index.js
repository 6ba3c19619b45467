// Exports of QuantLens results to other tools: CSV (spreadsheets, pandas) and node
// data for Google's Model Explorer. Pure functions, the same in Node and browsers.
export {
  analysisLayersCsv,
  analysisChannelsCsv,
  comparisonPairsCsv,
  comparisonChannelsCsv,
  equalizationCsv,
  csvField,
  csvNumber,
  csvFloat32,
  toCsv,
  LAYER_COLUMNS,
  CHANNEL_COLUMNS,
  PAIR_COLUMNS,
  PAIR_CHANNEL_COLUMNS,
  EQUALIZATION_COLUMNS,
} from './csv.js';
export { modelExplorerNodeData, METRICS as MODEL_EXPLORER_METRICS, RISK_COLORS, LOSSLESS_DB } from './model-explorer.js';
export { selectComparison, selectEqualization } from './select.js';
export { comparisonSummary } from '../compare.js';
