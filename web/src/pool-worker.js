// One worker of analyze()'s, compare()'s and compressibility()'s pools (pool.js): a Node
// worker_threads worker or a Web Worker named 'quantlens-pool' (a module worker of this
// script, or of any script that bundles it: quantlens/worker, the app's worker), with its
// own WebAssembly core and its own reading of the model.
//
// Out: {type: 'started'}                         listening
// In:  {type: 'init', wasm, source, externalData, histogramBins, blockSize, describe}
// Out: {type: 'ready', described?}               the model opened (described: describeSession's)
// In:  {type: 'layer', index}
// Out: {type: 'layer', index, layer}             analyzeLayerAt's layer (its arrays' buffers transferred)
// A layer in parts (analyze.js startPart, finishPart, mergeLayer), each part in another worker:
// In:  {type: 'part', index, part, parts}        part `part` of `parts`: its pass 1
// Out: {type: 'extremes', index, part, extremes} its extremes (a Float64Array), or `error` (a core error)
// In:  {type: 'whole', index, part, extremes}    every part's extremes: the rest of this part
// Out: {type: 'part', index, part, value}        its results (buffers transferred), or a core error
// In:  {type: 'merge', index, parts}             every part's value, in part order
// Out: {type: 'layer', index, layer}             the layer, as analyzeLayerAt gives it
// In:  {type: 'init', kind: 'curves', wasm, source}   (compressibility: the model read whole)
// Out: {type: 'ready'}
// In:  {type: 'curves', index, prune}
// Out: {type: 'curves', index, value}            layerCurvesAt's value (its arrays' buffers transferred)
// In:  {type: 'init', kind: 'compare', wasm, a, b, externalData: {a, b}}   (compare: both models opened)
// Out: {type: 'ready'}
// In:  {type: 'pair', index}
// Out: {type: 'pair', index, value}              comparePairAt's pair (its arrays' buffers transferred)
// Out: {type: 'error', error: {code, message, offset}}   the model cannot be read
import { describeSession, layerTasks, openAnalysisSession } from './analyze.js';
import { comparePairAt, openComparison } from './compare.js';
import { layerCurvesAt } from './compress.js';
import { configureCore, loadCore, unwrap } from './core.js';
import { isNode, nodeImport } from './node.js';
import { fromPicked } from './picked.js';
import { POOL_WORKER_NAME, buffersOf } from './pool.js';
import { externalFiles, openSource, readWholeIntoHeap } from './source.js';

// `externalData` as the pool sends it (pool.js externalForWorkers): the files picked with
// the model become picked.js's function again; anything else is as given.
const revived = (externalData) =>
  externalData && typeof externalData === 'object' && externalData.picked ? fromPicked(externalData.picked) : externalData;

function serve(post) {
  let state = null;
  let queue = Promise.resolve();
  const fail = (e) =>
    post({
      type: 'error',
      error: {
        code: (e && e.code) || 'INTERNAL',
        message: (e && e.message) || String(e),
        offset: e && Number.isInteger(e.offset) ? e.offset : -1,
      },
    });

  async function handle(m) {
    if (m.type === 'init' && m.kind === 'curves') {
      configureCore(m.wasm || {});
      const core = await loadCore();
      const src = await openSource(core, m.source);
      const ptr = await readWholeIntoHeap(core, src, {});
      // Held until the pool terminates this worker: the heap goes with it.
      state = { compression: unwrap(core.openCompression(ptr, src.size), src.name), name: src.name };
      post({ type: 'ready' });
    } else if (m.type === 'curves') {
      const value = layerCurvesAt(state.compression, m.index, m.prune, state.name);
      post({ type: 'curves', index: m.index, value }, [...buffersOf(value)]);
    } else if (m.type === 'init' && m.kind === 'compare') {
      configureCore(m.wasm || {});
      const core = await loadCore();
      // Held until the pool terminates this worker.
      const { a, b } = m.externalData || {};
      state = { comparison: await openComparison(core, m.a, m.b, { a: revived(a), b: revived(b) }) };
      post({ type: 'ready' });
    } else if (m.type === 'pair') {
      const value = await comparePairAt(state.comparison, m.index, null);
      post({ type: 'pair', index: m.index, value }, [...buffersOf(value)]);
    } else if (m.type === 'init') {
      configureCore(m.wasm || {});
      const core = await loadCore();
      const src = await openSource(core, m.source);
      const external = externalFiles(core, revived(m.externalData), src.dir);
      const session = await openAnalysisSession(core, src);
      const ctx = {
        src,
        external,
        histogramBins: m.histogramBins,
        blockSize: m.blockSize,
        signal: null,
        scratch: { ptr: 0, size: 0 },
      };
      state = { run: layerTasks(core, session, ctx) };
      post({ type: 'ready', described: m.describe ? describeSession(session, src.name) : null });
    } else {
      // layer, part, whole, merge: analyze.js layerTasks, as the calling thread runs them
      const reply = await state.run(m);
      post(reply, [...buffersOf(reply)]);
    }
  }
  // One message at a time, in order; the pool terminates the worker when it is done.
  return (m) => {
    queue = queue.then(() => handle(m)).catch(fail);
  };
}

// No top-level await: bundlers (Vite's default) make classic workers, which cannot have it.
if (isNode) {
  nodeImport('worker_threads').then(({ parentPort, workerData }) => {
    if (!parentPort || workerData !== POOL_WORKER_NAME) return;
    const onMessage = serve((m, transfer) => parentPort.postMessage(m, transfer));
    parentPort.on('message', onMessage);
    parentPort.postMessage({ type: 'started' });
  });
} else if (
  typeof WorkerGlobalScope !== 'undefined' &&
  typeof self !== 'undefined' &&
  self instanceof WorkerGlobalScope &&
  self.name === POOL_WORKER_NAME
) {
  // Only under the pool's name: bundled into quantlens/worker (worker.js), this script
  // shares a worker script with the engine's own messages, which serve every other name.
  const onMessage = serve((m, transfer) => self.postMessage(m, transfer || []));
  self.onmessage = (event) => onMessage(event.data);
  self.postMessage({ type: 'started' });
}
