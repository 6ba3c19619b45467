// 'quantlens/worker': a Web Worker script that runs analyze, equalize, compressibility, compress and compare off
// the page's main thread. Start it as a module worker (or bundle it, as the app does,
// into a classic one) and talk to it through createWorkerClient() (worker-client.js),
// or directly with these messages:
//
// In:  {cmd: 'configure', wasmBinary?, wasmUrl?, wasmModule?, pool?}   where the .wasm comes from (configureCore),
//                                               and pool workers (configurePool; default: this script)
//      {id, cmd: 'analyze' | 'equalize' | 'compressibility' | 'compress', files, options}
//      {id, cmd: 'compare', files, other, options}
//      {id, cmd: 'abort'}                           stops job `id` between slices or layers
//      ({id, cmd: 'analyze', streamLayers: true, ...}: each layer is also posted as it is finished)
// Out: {id, type: 'progress', phase, done, total, layer?, side?, bytes?, bytesTotal?}
//      {id, type: 'layer', layer, info}                 (analyze's onLayer(layer, info))
//      {id, type: 'result', result}                 (a written model's result.bytes buffer is transferred)
//      {id, type: 'error', error: {code, message, offset}}
//
// `files` is one source or an array: File, Blob, Uint8Array, ArrayBuffer, or {file, path}
// (a file of a folder picked or dropped, with its path in that folder). In an array, the
// model is the first entry whose path ends in .onnx (else the first entry) and the
// others are its external data files, found by their path relative to the model's folder
// (picked.js; files picked one by one: by location or base name, as exporters write
// locations such as "weights/x.bin"). options.externalData, an object
// {location: bytes | Blob}, is used instead when given. Jobs run one at a time, in order.
// A job that must stop at once, even inside one long core call, is stopped by terminating
// the worker (createWorkerClient's cancel()).
import { analyze } from './analyze.js';
import { compare } from './compare.js';
import { compress, compressibility } from './compress.js';
import { configureCore } from './core.js';
import { equalize } from './equalize.js';
import { QuantLensError } from './errors.js';
import { configurePool, POOL_WORKER_NAME } from './pool.js';
// The pool workers' role, served when this script is started under the pool's name.
import './pool-worker.js';
import { pickedEntries, pickedExternalData, pickedExternalDataSync } from './picked.js';

// A picked entry {file, path} (a file of a folder picked or dropped) or a bare source.
const isEntry = (f) => f && typeof f === 'object' && f.file && typeof f.path === 'string';

// `sync`: the external data read synchronously (equalize reads it so), with FileReaderSync.
function sourceOption(files, externalData, { sync = false } = {}) {
  const list = Array.isArray(files) ? files : [files];
  if (!list.length || list[0] == null) throw new QuantLensError('INVALID_ARGUMENT', 'no model given');
  // Bytes carry no name: entries are made of the named ones (File, {file, path}).
  const named = list.map((f) => (isEntry(f) ? f : f && typeof f.name === 'string' ? f : { file: f, path: '' }));
  const entries = pickedEntries(named);
  const model = entries.find((e) => /\.onnx$/i.test(e.path)) || entries[0];
  if (externalData && typeof externalData === 'object') return { model: model.file, externalData };
  if (entries.length < 2) return { model: model.file, externalData: undefined };
  const read = sync ? pickedExternalDataSync : pickedExternalData;
  return { model: model.file, externalData: read(entries, model) };
}

async function run(cmd, data, options) {
  if (cmd === 'analyze') {
    const a = sourceOption(data.files, options.externalData);
    return analyze(a.model, { ...options, externalData: a.externalData });
  }
  if (cmd === 'equalize') {
    const a = sourceOption(data.files, options.externalData, { sync: typeof FileReaderSync === 'function' });
    return equalize(a.model, { ...options, externalData: a.externalData });
  }
  if (cmd === 'compressibility' || cmd === 'compress') {
    const { externalData, ...rest } = options;
    const fn = { compressibility, compress }[cmd];
    return fn(sourceOption(data.files, externalData).model, rest);
  }
  if (cmd === 'compare') {
    // Each model's external data: options.externalData.a / .b, or the other files picked with it.
    const { externalData = {}, ...rest } = options;
    const a = sourceOption(data.files, externalData && externalData.a);
    const b = sourceOption(data.other, externalData && externalData.b);
    return compare(a.model, b.model, { ...rest, externalData: { a: a.externalData, b: b.externalData } });
  }
  throw new QuantLensError('INVALID_ARGUMENT', `unknown command ${cmd}`);
}

/** Serves requests arriving at `scope` (the worker's global scope by default). */
export function serve(scope = self) {
  const controllers = new Map(); // job id -> AbortController
  let queue = Promise.resolve();

  async function job(data) {
    const { id, cmd } = data;
    const controller = controllers.get(id);
    const post = (message, transfer) => scope.postMessage({ id, ...message }, transfer || []);
    try {
      if (controller.signal.aborted) throw new QuantLensError('ABORTED', 'cancelled');
      const onProgress = (p) => post({ type: 'progress', ...p });
      // A signal makes the API yield between slices and layers, so an 'abort' message gets in.
      const options = { ...(data.options || {}), onProgress, signal: controller.signal };
      // Each layer as it is finished, when the client asked (createWorkerClient's onLayer).
      if (cmd === 'analyze' && data.streamLayers) options.onLayer = (layer, info) => post({ type: 'layer', layer, info });
      const result = await run(cmd, data, options);
      // A written model's bytes move to the page rather than being copied.
      const moved = result ? [result.bytes, result.dataBytes].filter((b) => b instanceof Uint8Array).map((b) => b.buffer) : [];
      post({ type: 'result', result }, moved);
    } catch (e) {
      const error = {
        code: (e && e.code) || 'INTERNAL',
        message: (e && e.message) || String(e),
        offset: e && Number.isInteger(e.offset) ? e.offset : -1,
      };
      post({ type: 'error', error });
    } finally {
      controllers.delete(id);
    }
  }

  scope.onmessage = (event) => {
    const data = event.data || {};
    if (data.cmd === 'configure') {
      configureCore({ wasmBinary: data.wasmBinary, wasmUrl: data.wasmUrl, wasmModule: data.wasmModule });
      if (data.pool) configurePool(data.pool);
      return;
    }
    if (data.cmd === 'abort') {
      const c = controllers.get(data.id);
      if (c) c.abort();
      return;
    }
    controllers.set(data.id, new AbortController());
    queue = queue.then(() => job(data));
  };
}

// Whether this worker runs as a classic script (importScripts with no argument does
// nothing there; module workers have no importScripts to call).
function isClassicWorker() {
  try {
    importScripts();
    return true;
  } catch {
    return false;
  }
}

// Started as a worker: serve at once, and start the pools of workers that analyze,
// compare and compressibility use from this same script (it bundles pool-worker.js, which
// serves under the pool's name): so the pool works wherever this worker does, bundled
// as a classic script, or from a blob: URL, where pool-worker.js beside it cannot be found.
// Imported anywhere else (a page, Node): do nothing.
if (
  typeof WorkerGlobalScope !== 'undefined' &&
  typeof self !== 'undefined' &&
  self instanceof WorkerGlobalScope &&
  self.name !== POOL_WORKER_NAME
) {
  configurePool({ workerUrl: self.location.href, type: isClassicWorker() ? 'classic' : 'module' });
  serve(self);
}
