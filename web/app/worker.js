// The app's Web Worker: the package's worker script (web/src/worker.js), bundled by
// tools/build-app.mjs into a classic script (file:// pages cannot start module workers
// from blob: URLs). The page hands over the inline .wasm: createWorkerClient() sends
// {cmd: 'configure', wasmBinary} to each worker it starts, before any job. The same
// script, started under the pool's name from the worker's own blob: URL, is each worker
// of the pools that analyze, compare and compressibility start for large models.
import '../src/worker.js';
