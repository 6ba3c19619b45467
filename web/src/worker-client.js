// createWorkerClient(): analyze, equalize and compare in a Web Worker running
// 'quantlens/worker' (worker.js), with the same options and results as the functions
// themselves. cancel() ends the running job at once, even inside one long core call,
// by terminating the worker and starting a new one.
import { QuantLensError } from './errors.js';

// Written as one literal expression so that Vite (and webpack 5) bundle the worker script
// and rewrite its URL; a static host serving the package folder serves it beside this module.
const defaultWorker = () => new Worker(new URL('./worker.js', import.meta.url), { type: 'module', name: 'quantlens' });

const aborted = (message = 'cancelled') => new QuantLensError('ABORTED', message);

/**
 * @param workerOrFactory  a Worker running quantlens/worker, or a function returning a new one
 *                         (needed for the client to go on after cancel()); omitted: a module
 *                         worker from worker.js beside this module.
 * @param config           { wasmBinary?, wasmUrl? }: sent to each worker started (configureCore there)
 * @returns { analyze(files, options), equalize(files, options), compressibility(files, options),
 *            compress(files, options), compare(filesA, filesB, options), cancel(), terminate() }
 */
export function createWorkerClient(workerOrFactory, { wasmBinary, wasmUrl } = {}) {
  const factory = typeof workerOrFactory === 'function' ? workerOrFactory : workerOrFactory == null ? defaultWorker : null;
  let worker = null;
  let closed = false;
  let nextId = 1;
  const jobs = new Map(); // id -> {resolve, reject, onProgress, done()}

  function settle(id, how, value) {
    const job = jobs.get(id);
    if (!job) return;
    jobs.delete(id);
    job.done();
    job[how](value);
  }

  function failAll(error) {
    for (const id of [...jobs.keys()]) settle(id, 'reject', error);
  }

  function attach(w) {
    if (wasmBinary || wasmUrl) w.postMessage({ cmd: 'configure', wasmBinary, wasmUrl });
    w.onmessage = (event) => {
      const m = event.data || {};
      const job = jobs.get(m.id);
      if (!job) return; // a job already settled (aborted): its late messages are dropped
      if (m.type === 'progress') {
        if (job.onProgress) {
          const { id, type, ...p } = m;
          job.onProgress(p);
        }
      } else if (m.type === 'layer') {
        if (job.onLayer) job.onLayer(m.layer, m.info);
      } else if (m.type === 'result') {
        settle(m.id, 'resolve', m.result);
      } else if (m.type === 'error') {
        settle(m.id, 'reject', new QuantLensError(m.error.code, m.error.message, { offset: m.error.offset ?? -1 }));
      }
    };
    w.onerror = (event) => {
      // Never loop: a worker that fails stays down until the next job starts one.
      if (event && event.preventDefault) event.preventDefault();
      w.terminate();
      if (worker === w) worker = null;
      failAll(
        new QuantLensError(
          'INTERNAL',
          (event && event.message) || 'the QuantLens worker stopped (could its script or the .wasm not be loaded?)',
        ),
      );
    };
    return w;
  }

  function start() {
    if (closed) throw aborted('this worker client was terminated');
    if (!worker) {
      if (!factory)
        throw aborted(
          'the worker was terminated (give createWorkerClient a function that makes workers to go on after cancel())',
        );
      worker = factory();
      attach(worker);
    }
    return worker;
  }

  function stop() {
    if (worker) worker.terminate();
    worker = null;
  }

  function request(cmd, payload, options = {}) {
    return new Promise((resolve, reject) => {
      if (options === null || typeof options !== 'object')
        throw new QuantLensError('INVALID_ARGUMENT', 'options must be an object');
      const { onProgress, onLayer, signal, ...rest } = options;
      if (onProgress !== undefined && typeof onProgress !== 'function')
        throw new QuantLensError('INVALID_ARGUMENT', 'onProgress must be a function');
      if (onLayer !== undefined && typeof onLayer !== 'function')
        throw new QuantLensError('INVALID_ARGUMENT', 'onLayer must be a function');
      if (signal && signal.aborted) throw aborted();
      const w = start();
      const id = nextId++;
      const onAbort = () => {
        if (worker === w) w.postMessage({ cmd: 'abort', id });
        settle(id, 'reject', aborted());
      };
      const done = () => {
        if (signal) signal.removeEventListener('abort', onAbort);
      };
      jobs.set(id, { resolve, reject, onProgress, onLayer, done });
      if (signal) signal.addEventListener('abort', onAbort, { once: true });
      try {
        w.postMessage({ id, cmd, ...payload, ...(onLayer && cmd === 'analyze' ? { streamLayers: true } : {}), options: rest });
      } catch (e) {
        // Functions (layers: (layer) => ..., externalData: async (...) => ...) cannot reach a worker.
        settle(
          id,
          'reject',
          new QuantLensError(
            'INVALID_ARGUMENT',
            `cannot send this job to the worker (${e.message}); pass a RegExp for layers and bytes or Blobs for externalData`,
            { cause: e },
          ),
        );
      }
    });
  }

  if (factory && workerOrFactory != null)
    start(); // a factory given: start now, to be warm for the first job
  else if (!factory) {
    worker = workerOrFactory;
    attach(worker);
  }

  return {
    analyze: (files, options) => request('analyze', { files }, options),
    equalize: (files, options) => request('equalize', { files }, options),
    compressibility: (files, options) => request('compressibility', { files }, options),
    compress: (files, options) => request('compress', { files }, options),
    compare: (filesA, filesB, options) => request('compare', { files: filesA, other: filesB }, options),
    /** Ends every pending job at once (QuantLensError ABORTED) and starts a fresh worker. */
    cancel() {
      if (!jobs.size) return;
      stop();
      failAll(aborted());
      if (factory && !closed) start();
    },
    /** Ends the worker and every pending job; the client cannot be used afterwards. */
    terminate() {
      closed = true;
      stop();
      failAll(aborted('this worker client was terminated'));
    },
  };
}
