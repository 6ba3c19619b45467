// A pool of workers for analyze(): Node worker_threads or Web Workers (pool-worker.js),
// each with its own WebAssembly core, each opening the model itself and reading its own
// byte ranges (Node: its own file descriptor; browsers: slices of the File/Blob, which
// cross to a worker without being copied). The layers are dealt out largest first, one at
// a time to whichever worker is free, except that a layer larger than an equal share of the
// bytes is cut into parts of its output channels, one per worker, merged bit for bit (the
// core's "one layer in parts": dealPlan); the results are put back in layer order and the
// ranking and summary computed once, so the result is the one of one worker, bit for bit.
// No SharedArrayBuffer is needed: bytes given in memory go to the workers in one
// SharedArrayBuffer where the platform has it (Node; a page served cross-origin
// isolated) and as one Blob elsewhere.
import { coreConfig } from './core.js';
import { QuantLensError } from './errors.js';
import { isNode, nodeImport } from './node.js';

export const MAX_WORKERS = 64;
// The name a browser pool worker is started with: a script serving both quantlens/worker's
// messages and the pool's (the app's worker, quantlens/worker) takes the pool's role under it.
export const POOL_WORKER_NAME = 'quantlens-pool';
// The most workers chosen by default, whatever the number of cores.
const MAX_AUTO = 8;
// While the workers start, the calling thread takes whole layers of at most 1/SHORT of the
// bytes (pool.js dispatch).
const SHORT = 32;
// By default, weights below this size are analysed in the calling thread: starting a
// worker (a V8 isolate, a WebAssembly instance, the graph read again) costs more than
// the analysis of a small model.
const AUTO_MIN_BYTES = 64 << 20;

/** `workers` as given: null (choose), or a whole number from 1 to MAX_WORKERS. */
export function checkWorkers(workers) {
  if (workers === undefined || workers === null) return null;
  if (!Number.isInteger(workers) || workers < 1 || workers > MAX_WORKERS)
    throw new QuantLensError('INVALID_ARGUMENT', `workers must be a whole number from 1 to ${MAX_WORKERS}`);
  return workers;
}

// The script that browser pool workers start from, when not pool-worker.js beside this
// module (configurePool).
let givenWorker = null;

/**
 * Where this realm's browser pool workers come from: a script serving pool-worker.js's
 * messages when started with the name 'quantlens-pool' (pool-worker.js itself, or any
 * bundle that includes it, such as quantlens/worker), given as `workerUrl` or as its text
 * (`workerSource`: a blob: URL is made of it here, in this realm, which is what works in
 * a worker of a page opened from file://, whose opaque origin may not start a worker
 * from the page's blob: URLs), started as `type` ('module' or 'classic'). Without it,
 * pool-worker.js beside this module, as a module worker; a quantlens/worker gives its own
 * script (worker.js), so a bundled worker's pool needs nothing. `null`: the default again.
 */
export function configurePool(options) {
  if (options === null || options === undefined) {
    givenWorker = null;
    return;
  }
  const { workerUrl, workerSource, type = 'module' } = options;
  if (type !== 'module' && type !== 'classic')
    throw new QuantLensError('INVALID_ARGUMENT', "configurePool: type must be 'module' or 'classic'");
  if (typeof workerSource === 'string') {
    givenWorker = { url: URL.createObjectURL(new Blob([workerSource], { type: 'text/javascript' })), type };
    return;
  }
  if (typeof workerUrl !== 'string' && !(workerUrl instanceof URL))
    throw new QuantLensError('INVALID_ARGUMENT', 'configurePool: give workerUrl (a string or a URL) or workerSource (a string)');
  givenWorker = { url: String(workerUrl), type };
}

const isBlob = (x) => x && typeof x === 'object' && typeof x.slice === 'function' && typeof x.size === 'number';

async function cores() {
  if (isNode) {
    const os = await nodeImport('os');
    return os.availableParallelism ? os.availableParallelism() : os.cpus().length;
  }
  return (typeof navigator === 'object' && navigator.hardwareConcurrency) || 1;
}

// Whether workers can take this job at all: a function cannot cross to a worker (but the
// files picked with a model can: picked.js pickedExternalData), and a Node worker reads a
// Blob only whole.
function canPool(job) {
  if (typeof job.externalData === 'function' && !job.externalData.picked) return false;
  if (isNode) return !isBlob(job.source);
  return typeof Worker === 'function';
}

/** How many workers for these chosen layers ([{bytes, maxParts}]): 1 means the calling thread. */
export async function poolSize(job, chosen, requested) {
  if (!canPool(job)) return 1;
  // As many as there are tasks when the most workers allowed deal them (a layer in parts
  // is a task per part: VGG-16 is worth two workers for its fc6 alone).
  const most = requested ?? Math.min(await cores(), MAX_AUTO);
  return sizeFor(
    dealPlan(chosen, most).reduce((a, t) => a + t.parts, 0),
    chosen.reduce((a, l) => a + l.bytes, 0),
    requested,
    AUTO_MIN_BYTES,
  );
}

/**
 * How `count` workers take the chosen layers ([{index, bytes, maxParts}]): [{index, bytes,
 * parts}], largest first (ties in layer order). A layer is dealt whole (parts 1), unless it
 * is larger than an equal share of all the bytes and the core can split it (maxParts > 1):
 * then its parts, one per worker (at most one per output channel), run side by side. Dealt
 * whole, such a layer is the pool's critical path (VGG-16's fc6: 411 of 553 MB).
 */
export function dealPlan(chosen, count) {
  const bytes = chosen.reduce((a, l) => a + l.bytes, 0);
  const parts = (l) => (count > 1 && l.bytes * count > bytes ? Math.min(count, l.maxParts || 1) : 1);
  return [...chosen]
    .sort((a, b) => b.bytes - a.bytes || a.index - b.index)
    .map((l) => ({ index: l.index, bytes: l.bytes, parts: parts(l) }));
}

// The buffers behind a value's typed arrays (to transfer them; pool-worker.js too).
export function buffersOf(value, out = new Set()) {
  if (ArrayBuffer.isView(value)) out.add(value.buffer);
  else if (value && typeof value === 'object') for (const v of Object.values(value)) buffersOf(v, out);
  return out;
}

// The pool's size for `tasks` tasks reading `bytes` in all, once workers can take the job:
// as requested (at most one per task), else the calling thread below `minBytes`, else
// one worker per core, at most MAX_AUTO.
async function sizeFor(tasks, bytes, requested, minBytes) {
  if (requested !== null) return Math.min(requested, tasks);
  if (bytes < minBytes) return 1;
  return Math.min(await cores(), MAX_AUTO, tasks);
}

/**
 * How many workers take a source that this thread cannot read piecewise (a Blob on a page),
 * before its layers are known (the first worker reads them): 1 means this thread.
 */
export async function blobPoolSize(job, size, requested) {
  if (!canPool(job) || isNode) return 1;
  if (requested !== null) return requested;
  return size >= AUTO_MIN_BYTES ? Math.min(await cores(), MAX_AUTO) : 1;
}

// Bytes in memory as the workers receive them: shared where the platform allows, else a Blob.
function forWorkers(data) {
  const bytes =
    data instanceof ArrayBuffer
      ? new Uint8Array(data)
      : ArrayBuffer.isView(data)
        ? new Uint8Array(data.buffer, data.byteOffset, data.byteLength)
        : null;
  if (!bytes) return data; // a path or a Blob
  const hasShared = typeof SharedArrayBuffer === 'function';
  if (hasShared && bytes.buffer instanceof SharedArrayBuffer) return bytes;
  if (hasShared && (isNode || globalThis.crossOriginIsolated === true)) {
    const shared = new Uint8Array(new SharedArrayBuffer(bytes.length));
    shared.set(bytes);
    return shared;
  }
  return new Blob([bytes]);
}

function externalForWorkers(externalData) {
  if (typeof externalData === 'function') return { picked: externalData.picked }; // pool-worker.js makes the function again
  if (!externalData || typeof externalData !== 'object') return externalData;
  return Object.fromEntries(Object.entries(externalData).map(([k, v]) => [k, forWorkers(v)]));
}

let nodeWorkers = null; // Node's worker_threads, once imported

// One worker, Node's or the browser's, behind one interface.
async function startWorker(onMessage, onFailure) {
  if (isNode) {
    const { Worker } = nodeWorkers || (nodeWorkers = await nodeImport('worker_threads'));
    const w = new Worker(new URL('./pool-worker.js', import.meta.url), { workerData: POOL_WORKER_NAME });
    w.on('message', onMessage);
    w.on('error', (e) => onFailure(e && e.message));
    w.on('exit', (code) => onFailure(`a worker exited (status ${code})`));
    return { post: (m, transfer) => w.postMessage(m, transfer), terminate: () => w.terminate() };
  }
  const w = givenWorker
    ? new Worker(givenWorker.url, { type: givenWorker.type, name: POOL_WORKER_NAME })
    : // One literal expression, so that bundlers (Vite, webpack 5) bundle the worker script.
      new Worker(new URL('./pool-worker.js', import.meta.url), { type: 'module', name: POOL_WORKER_NAME });
  w.onmessage = (event) => onMessage(event.data);
  w.onerror = (event) => {
    if (event && event.preventDefault) event.preventDefault();
    onFailure(event && event.message);
  };
  w.onmessageerror = () => onFailure('a message from a worker could not be read');
  return { post: (m, transfer) => w.postMessage(m, transfer), terminate: () => w.terminate() };
}

/**
 * Workers started before a pool needs them (analyze(): while this thread reads the model's
 * structure, their start - an isolate, the modules, an instance - runs beside it): as many as
 * the pool would start for a source of `bytes` (this thread being one of its participants),
 * none below AUTO_MIN_BYTES. Each is handed to the pool (`take`: its messages, the ones that
 * came before included, and its failure go to the pool's handlers from then on) or
 * terminated (`release`, for the ones not taken). null when there would be none.
 */
export async function earlyWorkers(job, bytes, requested) {
  if (!canPool(job) || requested === 1 || bytes < AUTO_MIN_BYTES) return null;
  const count = (requested ?? Math.min(await cores(), MAX_AUTO)) - 1;
  if (count < 1) return null;
  // Imported first: startWorker then makes each worker before this returns (a dynamic import
  // settles only through the event loop, after the caller's next synchronous stretch: the
  // reading of the structure).
  if (isNode) nodeWorkers ??= await nodeImport('worker_threads');
  const slots = [];
  for (let k = 0; k < count; k++) {
    const slot = { to: null, before: [], failed: null };
    let handle;
    try {
      handle = startWorker(
        (m) => (slot.to ? slot.to.message(m) : slot.before.push(m)),
        (why) => (slot.to ? slot.to.failure(why) : (slot.failed ??= why || 'a worker failed to start')),
      );
    } catch (e) {
      handle = Promise.reject(e);
    }
    slot.handle = handle;
    handle.catch((e) => (slot.failed ??= (e && e.message) || 'a worker failed to start'));
    slots.push(slot);
  }
  return {
    take(message, failure) {
      const slot = slots.shift();
      if (!slot) return null;
      // What came before goes once the pool holds the handle (its handler posts to it): a
      // task later than the promise's own continuation; until then new messages queue too.
      return slot.handle.then((h) => {
        setTimeout(() => {
          slot.to = { message, failure };
          for (const m of slot.before.splice(0)) message(m);
          if (slot.failed) failure(slot.failed);
        });
        return h;
      });
    },
    release() {
      for (const slot of slots.splice(0))
        slot.handle.then(
          (h) => h.terminate(),
          () => {},
        );
    },
  };
}

// The calling thread as one of a pool's participants: `run` (analyze.js layerTasks, on the
// session open here) carries out the tasks posted to it one at a time, and its replies
// reach `onMessage` as a worker's messages do. `stopped()` settles once the task under way
// has stopped (it uses the caller's session and heap buffer).
function localParticipant(run, onMessage) {
  let last = Promise.resolve();
  let stopped = false;
  return {
    post(m) {
      last = last.then(async () => {
        if (stopped) return;
        let reply;
        try {
          reply = await run(m);
        } catch (e) {
          reply = { type: 'error', thrown: e };
        }
        if (!stopped) onMessage(reply);
      });
    },
    terminate() {
      stopped = true;
    },
    stopped: () => last,
  };
}

/**
 * Analyses the chosen layers with `count` participants. `described`: the model as this
 * thread read it (describeSession, with `chosen`), or null to have the first worker read it
 * (then job.choose(described) chooses). With the model open here (job.localTasks), this
 * thread is one of the participants and count - 1 workers start: it takes the first layer
 * at once (shown while the workers start) and then its share like any worker, and no
 * worker's start (its isolate, its instance, the model read again) is paid for a thread
 * that would wait. Resolves to {described, layers} (layers in layer order), or to null when
 * no worker could start and this thread is not a participant (the caller analyses alone).
 */
export function analyzeInPool(job, count, described) {
  const { signal, onProgress } = job;
  const init = {
    type: 'init',
    wasm: coreConfig(),
    source: forWorkers(job.source),
    externalData: externalForWorkers(job.externalData),
    histogramBins: job.histogramBins,
    blockSize: job.blockSize,
  };
  return new Promise((resolve, reject) => {
    const workers = [];
    let settled = false;
    let anyReady = false;
    let failedToStart = 0;
    let queue = null; // dealPlan's layers not yet dealt out, largest first
    let results = null; // index -> layer
    let remaining = 0;
    let total = 0;
    let bytesDone = 0;
    let bytesTotal = 0;
    let bytesReading = 0; // of layers in parts whose pass 1 is read, not yet finished
    const readingOf = new Map(); // index -> its share of bytesReading
    const idle = [];
    // index -> a layer being computed in parts: {parts, workers (part j's), extremes, values,
    // arrived}. Every part waits at one barrier (all their extremes) before its pass 2.
    const splits = new Map();
    const partsOf = new Map(); // index -> how many parts a layer was computed in (for progress)

    // This thread's part: its tasks stop at their next piece once `stop` aborts (the pool
    // finished: cancelled, or a worker failed).
    const stop = job.localTasks ? new AbortController() : null;
    const local = stop ? { handle: null, ready: true, local: true, first: true } : null;
    if (local) local.handle = localParticipant(job.localTasks(stop.signal), (m) => message(local, m));
    function finish(how, value) {
      if (settled) return;
      settled = true;
      if (signal) signal.removeEventListener('abort', onAbort);
      if (stop) stop.abort();
      for (const w of workers) if (w.handle) w.handle.terminate();
      // Not before this thread's own task has stopped: the caller then uses (or frees) the
      // session and the heap buffer it reads into. It stops at the next piece.
      Promise.resolve(local && local.handle.stopped()).then(() => (how === 'resolve' ? resolve(value) : reject(value)));
    }
    function onAbort() {
      finish('reject', new QuantLensError('ABORTED', 'cancelled'));
    }
    // Deals the next layers to the idle participants, workers before this thread. A layer in
    // parts takes `parts` of them at once: each part waits at the barrier for the others, so
    // all must be running. Until that many are idle, the idle ones wait; the busy ones finish
    // without waiting on anything (a whole layer, or the parts of one layer dealt together),
    // so that many will be. This thread's first task is the first layer in layer order, shown
    // while the workers start (not a layer in parts); until a worker has started (or every one
    // failed) it then takes only short layers, and leaves each worker a task: so the workers
    // always take their share of the model, and this thread, which otherwise finishes a small
    // model before any worker has started, does not make the pool one thread in disguise.
    function dispatch() {
      if (local && local.first && idle.includes(local)) {
        local.first = false;
        const first = queue.reduce((a, t) => (t.parts === 1 && (!a || t.index < a.index) ? t : a), null);
        if (first) {
          queue.splice(queue.indexOf(first), 1);
          idle.splice(idle.indexOf(local), 1);
          local.handle.post({ type: 'layer', index: first.index });
        }
      }
      const waiting = local && !anyReady && failedToStart < workers.length - 1;
      if (waiting && idle.includes(local)) {
        // Meanwhile it takes a short whole layer (at most 1/SHORT of the bytes: it is soon
        // free for a layer in parts), the largest such, while each worker starting keeps a task.
        const starting = workers.length - 1 - failedToStart;
        const tasks = queue.reduce((a, t) => a + t.parts, 0);
        const short = queue.find((t) => t.parts === 1 && t.bytes * SHORT <= bytesTotal);
        if (short && tasks - 1 >= starting) {
          queue.splice(queue.indexOf(short), 1);
          idle.splice(idle.indexOf(local), 1);
          local.handle.post({ type: 'layer', index: short.index });
        }
      }
      for (;;) {
        const ready = idle.filter((w) => !w.local);
        if (local && !waiting && idle.includes(local)) ready.push(local);
        if (!queue.length || !ready.length) break;
        const next = queue[0];
        const parts = Math.min(next.parts, workers.length - failedToStart);
        if (ready.length < parts) break;
        queue.shift();
        const taking = ready.slice(0, parts);
        for (const w of taking) idle.splice(idle.indexOf(w), 1);
        if (parts <= 1) {
          taking[0].handle.post({ type: 'layer', index: next.index });
          continue;
        }
        const split = { parts, workers: taking, extremes: [], values: [], arrived: 0 };
        splits.set(next.index, split);
        partsOf.set(next.index, parts);
        split.workers.forEach((w, part) => w.handle.post({ type: 'part', index: next.index, part, parts }));
      }
      if (!queue.length && !remaining)
        finish('resolve', { described, layers: described.chosen.map((l) => results.get(l.index)) });
    }
    function free(w) {
      if (settled) return; // an abort in onProgress
      idle.push(w);
      dispatch();
    }
    function begin(chosen) {
      queue = dealPlan(chosen, count);
      results = new Map();
      remaining = chosen.length;
      total = described.count;
      bytesTotal = chosen.reduce((a, l) => a + l.bytes, 0);
      if (!remaining) return finish('resolve', { described, layers: [] });
      dispatch();
    }
    // A part's extremes (or error) arrived: once all have, every part goes on with all of
    // them (each worker combines them itself: the same whole, bit for bit), or, when one
    // failed, the parts are abandoned and the layer takes its error (mergeLayer).
    function extremes(m) {
      const split = splits.get(m.index);
      split.extremes[m.part] = m.error || m.extremes;
      if (++split.arrived < split.parts) return;
      const errors = split.extremes.filter((x) => !ArrayBuffer.isView(x));
      if (!errors.length) {
        split.arrived = 0;
        split.workers.forEach((w, part) => w.handle.post({ type: 'whole', index: m.index, part, extremes: split.extremes }));
        reading(m.index, split.parts);
        return;
      }
      splits.delete(m.index);
      split.workers[0].handle.post({ type: 'merge', index: m.index, parts: errors });
      for (const w of split.workers.slice(1)) free(w);
    }
    // A part's results arrived: the last one's worker merges them, the others are free.
    function part(w, m) {
      const split = splits.get(m.index);
      split.values[m.part] = m.value;
      if (++split.arrived < split.parts) return free(w);
      splits.delete(m.index);
      w.handle.post({ type: 'merge', index: m.index, parts: split.values }, [...buffersOf(split.values)]);
    }
    // Progress within a layer in parts, as one thread gives it within a large layer: its
    // pass 1 is read (half of its reads, counted as two passes), nothing is finished yet.
    function reading(index, parts) {
      const chosen = described.chosen.find((l) => l.index === index);
      readingOf.set(index, Math.round(chosen.bytes / 2));
      bytesReading += readingOf.get(index);
      if (!onProgress) return;
      onProgress({
        phase: 'analyze',
        done: total - remaining, // finished, the ones not chosen counted as done; `remaining` holds the queued ones too
        total,
        layer: chosen.name,
        workers: workers.length - failedToStart, // this thread (when it takes part) and the workers that did not fail to start
        parts,
        bytes: bytesDone + bytesReading,
        bytesTotal,
        reading: true,
      });
    }
    function layer(w, m) {
      results.set(m.index, m.layer);
      remaining--;
      const chosen = described.chosen.find((l) => l.index === m.index);
      const parts = partsOf.get(m.index);
      bytesDone += chosen ? chosen.bytes : 0;
      bytesReading -= readingOf.get(m.index) || 0;
      readingOf.delete(m.index);
      if (job.onLayer) job.onLayer(m.layer, described);
      if (onProgress) {
        // The layers finished, the ones not chosen counted as done (as the thread counts by
        // position); `remaining` holds the queued ones too.
        const done = total - remaining;
        onProgress({
          phase: 'analyze',
          done,
          total,
          layer: m.layer.name,
          workers: workers.length - failedToStart,
          ...(parts > 1 && { parts }),
          bytes: bytesDone + bytesReading,
          bytesTotal,
        });
      }
      free(w);
    }
    function failure(w, message) {
      if (settled || w.dead) return;
      if (!w.ready && !anyReady) {
        // Could not start (a bundle without the worker script, a page that forbids workers).
        w.dead = true;
        if (w.handle) w.handle.terminate();
        if (++failedToStart === workers.length) finish('resolve', null);
        else if (queue) dispatch(); // a layer in parts waits for fewer workers now
        return;
      }
      finish('reject', new QuantLensError('INTERNAL', `a QuantLens worker stopped: ${message || 'unknown error'}`));
    }
    function message(w, m) {
      if (settled) return;
      if (m.type === 'started') {
        w.handle.post({ ...init, describe: !described && w === workers[0] });
      } else if (m.type === 'ready') {
        w.ready = true;
        anyReady = true;
        if (m.described) {
          described = { ...m.described, chosen: job.choose(m.described) };
          idle.push(w);
          begin(described.chosen);
        } else if (queue) {
          free(w);
        } else {
          idle.push(w);
        }
      } else if (m.type === 'extremes') {
        extremes(m);
      } else if (m.type === 'part') {
        part(w, m);
      } else if (m.type === 'layer') {
        layer(w, m);
      } else if (m.type === 'error') {
        // This thread's tasks throw their own errors; a worker's come as {code, message, offset}.
        finish('reject', m.thrown || new QuantLensError(m.error.code, m.error.message, { offset: m.error.offset ?? -1 }));
      }
    }
    if (signal) {
      if (signal.aborted) return onAbort();
      signal.addEventListener('abort', onAbort, { once: true });
    }
    if (local) {
      workers.push(local);
      idle.push(local);
    }
    for (let k = local ? 1 : 0; k < count; k++) {
      const w = { handle: null, ready: false };
      workers.push(w);
      let handle;
      const onMessage = (m) => message(w, m);
      const onFailure = (why) => failure(w, why);
      try {
        handle = (job.early && job.early.take(onMessage, onFailure)) || startWorker(onMessage, onFailure);
      } catch (e) {
        handle = Promise.reject(e);
      }
      handle.then(
        (h) => {
          w.handle = h;
          if (settled) h.terminate();
        },
        (e) => failure(w, e && e.message),
      );
    }
    // With the model already read here, the layers are dealt out as workers become ready.
    if (described) {
      const chosen = described.chosen;
      described = { ...described };
      begin(chosen);
    }
  });
}

/** How many workers compare() uses for pairs reading `bytes` (per pair) from files: 1 means the calling thread. */
export async function comparePoolSize(job, bytes, requested) {
  const sides = [
    { source: job.a, externalData: job.externalData.a },
    { source: job.b, externalData: job.externalData.b },
  ];
  if (!sides.every(canPool)) return 1;
  return sizeFor(
    bytes.length,
    bytes.reduce((x, y) => x + y, 0),
    requested,
    AUTO_MIN_BYTES,
  );
}

/**
 * compare()'s pairs in `count` workers: each worker opens both models itself (as compare()
 * opens them: the structure, then each pair's weights a piece at a time) and compares the
 * pairs dealt to it, largest first (`bytes`: what each pair reads) to whichever is free.
 * Every pair is computed as in one thread, so the result is the same, bit for bit.
 * Resolves to the pairs in pair order, or to null when no worker could start.
 * job: { a, b, externalData: {a, b}, signal, onResult(index, pair) }.
 */
export function comparePairsInPool(job, count, bytes) {
  const init = {
    type: 'init',
    kind: 'compare',
    wasm: coreConfig(),
    a: forWorkers(job.a),
    b: forWorkers(job.b),
    externalData: { a: externalForWorkers(job.externalData.a), b: externalForWorkers(job.externalData.b) },
  };
  const order = bytes.map((_, k) => k).sort((x, y) => bytes[y] - bytes[x] || x - y);
  let next = 0;
  let remaining = bytes.length;
  const pairs = new Array(bytes.length);
  if (!remaining) return Promise.resolve(pairs);
  return runPool(count, job.signal, init, {
    deal: () => (next < order.length ? { type: 'pair', index: order[next++] } : null),
    result(m) {
      pairs[m.index] = m.value;
      remaining--;
      if (job.onResult) job.onResult(m.index, m.value);
      return remaining === 0 ? pairs : undefined;
    },
  });
}

/**
 * The compressibility curves of layers 0..layerCount-1 in `count` workers (compress.js):
 * each worker opens the model itself (job.source, read whole into its own heap) and computes
 * the curves of the layers dealt to it, one at a time, in layer order to whichever is free.
 * Resolves to the curves by layer index (each as the core's curves(i) gives it, its arrays
 * copied), or to null when no worker could start (the caller computes them itself).
 * job: { source, prune, signal, onResult(index, value) }.
 */
export function curvesInPool(job, count, layerCount) {
  const init = { type: 'init', kind: 'curves', wasm: coreConfig(), source: forWorkers(job.source) };
  let next = 0;
  let remaining = layerCount;
  const results = new Array(layerCount);
  return runPool(count, job.signal, init, {
    deal: () => (next < layerCount ? { type: 'curves', index: next++, prune: job.prune } : null),
    result(m) {
      results[m.index] = m.value;
      remaining--;
      if (job.onResult) job.onResult(m.index, m.value);
      return remaining === 0 ? results : undefined;
    },
  });
}

// Starts `count` workers, sends each `init`, then hands each free worker the next task
// (tasks.deal(): a message, or null when none is left) until tasks.result(message) returns
// the final value. Resolves to it, or to null when no worker could start; rejects with the
// first error a worker reports, or ABORTED when `signal` aborts. Every worker is terminated
// at the end.
function runPool(count, signal, init, tasks) {
  return new Promise((resolve, reject) => {
    const workers = [];
    let settled = false;
    let anyReady = false;
    let failedToStart = 0;
    function finish(how, value) {
      if (settled) return;
      settled = true;
      if (signal) signal.removeEventListener('abort', onAbort);
      for (const w of workers) if (w.handle) w.handle.terminate();
      if (how === 'resolve') resolve(value);
      else reject(value);
    }
    function onAbort() {
      finish('reject', new QuantLensError('ABORTED', 'cancelled'));
    }
    function deal(w) {
      const task = tasks.deal();
      if (task) w.handle.post(task);
    }
    function failure(w, message) {
      if (settled || w.dead) return;
      if (!w.ready && !anyReady) {
        w.dead = true;
        if (w.handle) w.handle.terminate();
        if (++failedToStart === workers.length) finish('resolve', null);
        return;
      }
      finish('reject', new QuantLensError('INTERNAL', `a QuantLens worker stopped: ${message || 'unknown error'}`));
    }
    function message(w, m) {
      if (settled) return;
      if (m.type === 'started') w.handle.post(init);
      else if (m.type === 'ready') {
        w.ready = true;
        anyReady = true;
        deal(w);
      } else if (m.type === 'error') {
        finish('reject', new QuantLensError(m.error.code, m.error.message, { offset: m.error.offset ?? -1 }));
      } else {
        const done = tasks.result(m);
        if (done !== undefined) finish('resolve', done);
        else deal(w);
      }
    }
    if (signal) {
      if (signal.aborted) return onAbort();
      signal.addEventListener('abort', onAbort, { once: true });
    }
    for (let k = 0; k < count; k++) {
      const w = { handle: null, ready: false };
      workers.push(w);
      let handle;
      try {
        handle = startWorker(
          (m) => message(w, m),
          (why) => failure(w, why),
        );
      } catch (e) {
        handle = Promise.reject(e);
      }
      handle.then(
        (h) => {
          w.handle = h;
          if (settled) h.terminate();
        },
        (e) => failure(w, e && e.message),
      );
    }
  });
}

/** How many workers for the curves of a model of `bytes` with `layers` layers (1: the calling thread). */
export async function curvesPoolSize(job, bytes, layers, requested) {
  if (!canPool(job)) return 1;
  return sizeFor(layers, bytes, requested, CURVES_AUTO_MIN_BYTES);
}
// Below this model size the curves are computed in the calling thread by default (a
// worker reads the whole model again; M-LSD tiny's curves take 0.4 s in one thread).
const CURVES_AUTO_MIN_BYTES = 16 << 20;
