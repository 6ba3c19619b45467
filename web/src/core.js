// Loads the WASM core once per realm (page, worker or Node process). Where the .wasm
// comes from, first match wins:
//  1. bytes given with configureCore({ wasmBinary }) (the single-file app, and the
//     'quantlens/inline' entry, which carries them as base64);
//  2. a URL given with configureCore({ wasmUrl }) (fetched; under Node a file: URL or
//     path is read with fs);
//  3. Node: web/dist/quantlens_core.wasm beside this package, read with fs (Emscripten
//     3.1.6 would otherwise try to fetch a file:// URL);
//  4. browsers and workers: new URL('../dist/quantlens_core.wasm', import.meta.url),
//     written as a literal so that Vite (and webpack 5) copy the file and rewrite the
//     URL, and a static host serving the package folder serves it beside this module.
// A static import (it only defines the factory): a dynamic one would make this a
// code-splitting build, which bundlers refuse for classic workers (Vite's default
// worker format, and the app's).
import createQuantLensCore from '../dist/quantlens_core.mjs';
import { QuantLensError, fromCoreError } from './errors.js';
import { isNode, nodeImport } from './node.js';

let corePromise = null;
let givenWasm = null;
let givenUrl = null;

/**
 * Says where the .wasm comes from; call it before the first analyze/equalize/compare
 * (the core is loaded once per realm, later calls do not reload it).
 * @param {{ wasmBinary?: Uint8Array | ArrayBuffer, wasmUrl?: string | URL }} options
 */
export function configureCore({ wasmBinary, wasmUrl } = {}) {
  if (wasmBinary != null && !(wasmBinary instanceof Uint8Array || wasmBinary instanceof ArrayBuffer)) {
    throw new QuantLensError('INVALID_ARGUMENT', 'configureCore: wasmBinary must be a Uint8Array or an ArrayBuffer');
  }
  if (wasmUrl != null && typeof wasmUrl !== 'string' && !(wasmUrl instanceof URL)) {
    throw new QuantLensError('INVALID_ARGUMENT', 'configureCore: wasmUrl must be a string or a URL');
  }
  givenWasm = wasmBinary || null;
  givenUrl = wasmUrl ? String(wasmUrl) : null;
}

/** Where this realm's core comes from (configureCore's values), for the workers it starts. */
export function coreConfig() {
  return { wasmBinary: givenWasm, wasmUrl: givenUrl };
}

// Reads a wasmUrl under Node: a file: URL or a path with fs, anything else with fetch.
async function nodeRead(url) {
  if (/^[a-z][a-z0-9+.-]*:/i.test(url) && !url.startsWith('file:')) {
    const response = await fetch(url);
    if (!response.ok) throw new QuantLensError('IO_ERROR', `cannot fetch ${url}: HTTP ${response.status}`);
    return new Uint8Array(await response.arrayBuffer());
  }
  const fs = await nodeImport('fs');
  return fs.readFileSync(url.startsWith('file:') ? new URL(url) : url);
}

export function loadCore() {
  if (!corePromise) {
    corePromise = (async () => {
      const options = {};
      let from = null; // the URL fetched, named in the error if that fails
      if (givenWasm) {
        options.wasmBinary = givenWasm;
      } else if (givenUrl && isNode) {
        options.wasmBinary = await nodeRead(givenUrl);
      } else if (givenUrl) {
        from = new URL(givenUrl, globalThis.location ? globalThis.location.href : undefined).href;
        options.locateFile = () => from;
      } else if (isNode) {
        const fs = await nodeImport('fs');
        options.wasmBinary = fs.readFileSync(new URL('../dist/quantlens_core.wasm', import.meta.url));
      } else {
        from = new URL('../dist/quantlens_core.wasm', import.meta.url).href;
        options.locateFile = () => from;
      }
      try {
        return await createQuantLensCore(options);
      } catch (e) {
        if (e instanceof QuantLensError) throw e;
        const what = from ? `from ${from}` : 'from the bytes given';
        throw new QuantLensError(
          'IO_ERROR',
          `cannot load the WebAssembly core ${what} (${e && e.message ? e.message : e}); a bundler that does not copy it needs configureCore({ wasmUrl }) or the 'quantlens/inline' entry`,
          { cause: e },
        );
      }
    })();
    corePromise.catch(() => {
      corePromise = null;
    });
  }
  return corePromise;
}

// The one error convention of the bindings (wasm/marshal.hpp): a call that can fail
// returns its value or a core error {coreError: true, code, message, offset}.
export const isCoreError = (v) => v !== null && typeof v === 'object' && v.coreError === true;

// The value of a binding call, or its error thrown as a QuantLensError whose message
// starts with `context` (the file's name).
export function unwrap(v, context = '') {
  if (isCoreError(v)) throw fromCoreError(v, context);
  return v;
}
