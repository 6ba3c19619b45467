// QuantLens public API (ES module; the same in Node, browsers and Web Workers).
export { analyze, SCHEMA, SCHEMES } from './analyze.js';
export { equalize, CLE_SCHEMA } from './equalize.js';
export { compare, COMPARISON_SCHEMA } from './compare.js';
export { compress, compressibility, COMPRESSION_SCHEMA, CURVE_FRACTIONS, PLAN_RATIOS } from './compress.js';
export { compressionRisk } from './compression-risk.js';
export { QuantLensError } from './errors.js';
export { toJSON, formatTable, formatEqualization, formatDb, float32Number } from './format.js';
export { jsonPieces, writeJSON } from './json-stream.js';
export { saveReport } from './save-report.js';
export { formatComparison, formatProgress, quantizationText } from './format.js';
export * from './export/index.js';
export { configureCore } from './core.js';
export { configurePool } from './pool.js';
export { createWorkerClient } from './worker-client.js';
