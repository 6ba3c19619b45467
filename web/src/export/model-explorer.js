// Node data for Google's Model Explorer (github.com/google-ai-edge/model-explorer):
// one value per weight layer, coloured by the app's risk levels, for the graph of an
// ONNX model opened with the ONNX adapter (model-explorer-onnx).
//
// The format is Model Explorer's `ModelNodeData` (model_explorer/node_data_builder.py):
//   { "<graph id>": { "results": { "<node key>": { "value": number, "bgColor"?: css color } },
//                     "thresholds": [ { "value": number, "bgColor": css color } ] } }
// A node whose value is <= thresholds[i].value (the first such i) gets thresholds[i]'s
// colour; a result's own bgColor takes precedence.
//
// Keys. The ONNX adapter gives every node the id `node.name`, and the graph the id
// `graph.name`. Model Explorer matches a result key against node ids, or against an
// output's `tensor_name` metadata, which the ONNX adapter does not set (it writes
// `__tensor_tag`): output tensor names would not attach. So the keys are node names.
// Layers of nodes without a name (QuantLens shows them as `Op#k`; the adapter cannot
// tell them apart) and layers inside sub-graphs (the adapter shows the main graph
// and functions only) are left out and listed in `skipped`. A recurrent node's two layers
// (`<node>/W`, `<node>/R`) share the node's key, which shows the worse of the two. When the graph has no
// name, the file is a single GraphNodeData ({results, thresholds}), which Model
// Explorer applies to the graph on screen.
import { colors } from '../palette.js';
import { RISK_DB, riskOf } from '../presentation.js';

// The app's risk colours (web/src/palette.js).
export const RISK_COLORS = colors.risk;

export const METRICS = [
  'int8PerTensor',
  'int8PerChannel',
  'int4PerTensor',
  'int4PerChannel',
  'int4Block32',
  'int4Block128',
  'outliers',
];

// An infinite SQNR (nothing lost) is written as this many dB: JSON has no Infinity.
export const LOSSLESS_DB = 1000;

// The largest double below x: Model Explorer's thresholds are "value <= t", the
// risk rule is "SQNR < t".
const below = (x) => {
  const f = new Float64Array([x]);
  const u = new BigInt64Array(f.buffer);
  u[0] += x > 0 ? -1n : 1n;
  return f[0];
};

// dB levels per metric: the risk rule's 30 / 40 dB for INT8; for INT4 the same levels
// less 4 bits at 6.02 dB a bit (the SQNR of a uniform quantizer grows 6.02 dB a bit).
export function levels(metric) {
  if (metric === 'outliers') return null;
  const shift = metric.startsWith('int4') ? 4 * 6.02 : 0;
  return { high: RISK_DB.high - shift, medium: RISK_DB.medium - shift };
}

function levelOf(layer, metric) {
  if (metric === 'int8PerTensor') return riskOf(layer); // the app's rule, outlier channels included
  if (metric === 'outliers') return layer.outlierChannels.length ? 'medium' : 'low';
  const t = levels(metric);
  const db = layer.sqnr[metric];
  if (!(db >= t.high)) return 'high';
  return db < t.medium ? 'medium' : 'low';
}

function valueOf(layer, metric) {
  if (metric === 'outliers') return layer.outlierChannels.length;
  const db = layer.sqnr[metric];
  if (db === Infinity) return LOSSLESS_DB;
  if (!Number.isFinite(db)) return null;
  return Math.round(db * 100) / 100;
}

// The node a layer belongs to: its name, or for a recurrent layer (`<node>/W`, `<node>/R`) the node's.
const nodeOf = (l) => (l.recurrent ? l.recurrent.node : l.name);
const syntheticName = (l) => new RegExp(`^${l.op.replace(/[^A-Za-z0-9_]/g, '\\$&')}#\\d+$`).test(nodeOf(l));

/**
 * @param analysis  analyze()'s result
 * @param options   { metric: 'int8PerTensor' (default) | 'int8PerChannel' | 'int4PerTensor' | 'int4PerChannel' |
 *                    'int4Block32' | 'int4Block128' | 'outliers' }
 * @returns { nodeData (the JSON file's object), graphId, metric, results (count), skipped: [{layer, reason}] }
 */
export function modelExplorerNodeData(analysis, { metric = 'int8PerTensor' } = {}) {
  if (!METRICS.includes(metric)) throw new TypeError(`metric must be one of ${METRICS.join(', ')}`);
  const results = {};
  const skipped = [];
  const worse = (a, b) => (metric === 'outliers' ? a > b : a < b);
  for (const l of analysis.layers) {
    if (l.path) {
      skipped.push({ layer: l.name, reason: `in sub-graph ${l.path}` });
      continue;
    }
    if (l.error) {
      skipped.push({ layer: l.name, reason: `not analysed: ${l.error.code}` });
      continue;
    }
    if (!l.name || syntheticName(l)) {
      skipped.push({ layer: l.name, reason: 'node has no name' });
      continue;
    }
    const value = valueOf(l, metric);
    if (value === null) {
      skipped.push({ layer: l.name, reason: `${metric} is not a number` });
      continue;
    }
    const key = nodeOf(l);
    const prev = results[key];
    if (prev && !worse(value, prev.value)) continue; // two weights on one node (a recurrent W and R): keep the worse
    results[key] = { value, bgColor: RISK_COLORS[levelOf(l, metric)] };
  }
  const t = levels(metric);
  const thresholds = t
    ? [
        { value: below(t.high), bgColor: RISK_COLORS.high },
        { value: below(t.medium), bgColor: RISK_COLORS.medium },
        { value: LOSSLESS_DB, bgColor: RISK_COLORS.low },
      ]
    : [
        { value: 0, bgColor: RISK_COLORS.low },
        { value: Number.MAX_VALUE, bgColor: RISK_COLORS.medium },
      ];
  const graphData = { results, thresholds };
  const graphId = analysis.model.graph || '';
  return {
    nodeData: graphId ? { [graphId]: graphData } : graphData,
    graphId,
    metric,
    results: Object.keys(results).length,
    skipped,
  };
}
