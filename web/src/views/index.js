// 'quantlens/views': the app's views, for a page to mount itself (D3; data in, DOM out;
// each returns { destroy() } and carries its own styles).
export { renderModelView } from './model.js';
export { renderLayerView } from './layer.js';
export { renderEqualizationView } from './equalization.js';
export { renderCompareView } from './compare.js';
export { renderGraphView } from './graph.js';
export { renderCompressionView } from './compression.js';
