// Loads the WASM core once per realm (page, worker or Node process).
// Node: the .wasm bytes are read with fs and handed to the factory (Emscripten
// 3.1.6 would otherwise try to fetch a file:// URL). Browsers and workers: the
// factory fetches quantlens_core.wasm next to the module.
const isNode = typeof process === 'object' && !!(process.versions && process.versions.node);

let corePromise = null;

export function loadCore() {
  if (!corePromise) {
    corePromise = (async () => {
      const { default: createQuantLensCore } = await import('../dist/quantlens_core.mjs');
      const wasmUrl = new URL('../dist/quantlens_core.wasm', import.meta.url);
      const options = {};
      if (isNode) {
        const fsName = 'fs';
        const fs = await import(/* @vite-ignore */ fsName);
        options.wasmBinary = fs.readFileSync(wasmUrl);
      } else {
        options.locateFile = (file) => new URL(`../dist/${file}`, import.meta.url).href;
      }
      return createQuantLensCore(options);
    })();
    corePromise.catch(() => { corePromise = null; });
  }
  return corePromise;
}
