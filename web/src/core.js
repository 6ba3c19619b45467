// Loads the WASM core once per realm (page, worker or Node process).
// Node: the .wasm bytes are read with fs and handed to the factory (Emscripten
// 3.1.6 would otherwise try to fetch a file:// URL). Browsers and workers: the
// factory fetches quantlens_core.wasm next to the module, unless the bytes were
// given with configureCore() (the single-file app carries them inline).
import { isNode, nodeImport } from './node.js';

let corePromise = null;
let givenWasm = null;

// Supplies the .wasm bytes (before the first call that needs the core).
export function configureCore({ wasmBinary } = {}) {
  givenWasm = wasmBinary || null;
}

export function loadCore() {
  if (!corePromise) {
    corePromise = (async () => {
      const { default: createQuantLensCore } = await import('../dist/quantlens_core.mjs');
      const options = {};
      if (givenWasm) {
        options.wasmBinary = givenWasm;
      } else if (isNode) {
        const fs = await nodeImport('fs');
        options.wasmBinary = fs.readFileSync(new URL('../dist/quantlens_core.wasm', import.meta.url));
      } else {
        options.locateFile = (file) => new URL(`../dist/${file}`, import.meta.url).href;
      }
      return createQuantLensCore(options);
    })();
    corePromise.catch(() => { corePromise = null; });
  }
  return corePromise;
}
