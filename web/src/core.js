// Loads the WASM core once per realm (page, worker or Node process). Where the .wasm
// comes from, first match wins:
//  0. a WebAssembly.Module given with configureCore({ wasmModule }) (what a pool's workers
//     receive: compiled once in the realm that starts them, its code shared);
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
let givenModule = null;
// The WebAssembly.Module this realm's core was instantiated from, once compiled here: the
// workers this realm starts receive it (coreConfig) instead of compiling the .wasm again.
// V8 shares a module's code, its optimized tier included, between the isolates it is
// posted to; each worker otherwise compiled ~1 MB of WebAssembly and tiered up its hot
// functions itself.
let compiledModule = null;

/**
 * Says where the .wasm comes from; call it before the first analyze/equalize/compare
 * (the core is loaded once per realm, later calls do not reload it).
 * @param {{ wasmBinary?: Uint8Array | ArrayBuffer, wasmUrl?: string | URL, wasmModule?: WebAssembly.Module }} options
 */
export function configureCore({ wasmBinary, wasmUrl, wasmModule } = {}) {
  if (wasmModule != null && !(wasmModule instanceof WebAssembly.Module)) {
    throw new QuantLensError('INVALID_ARGUMENT', 'configureCore: wasmModule must be a WebAssembly.Module');
  }
  if (wasmBinary != null && !(wasmBinary instanceof Uint8Array || wasmBinary instanceof ArrayBuffer)) {
    throw new QuantLensError('INVALID_ARGUMENT', 'configureCore: wasmBinary must be a Uint8Array or an ArrayBuffer');
  }
  if (wasmUrl != null && typeof wasmUrl !== 'string' && !(wasmUrl instanceof URL)) {
    throw new QuantLensError('INVALID_ARGUMENT', 'configureCore: wasmUrl must be a string or a URL');
  }
  givenWasm = wasmBinary || null;
  givenUrl = wasmUrl ? String(wasmUrl) : null;
  givenModule = wasmModule || null;
}

/**
 * Where the workers this realm starts take their core from: the module compiled here once
 * the core is loaded (a pool starts after that), else configureCore's values.
 */
export function coreConfig() {
  if (compiledModule) return { wasmModule: compiledModule };
  return { wasmBinary: givenWasm, wasmUrl: givenUrl, wasmModule: givenModule };
}

// The .wasm at `url` compiled (streaming where the server says application/wasm), or null
// when it cannot be fetched so: Emscripten's loader then tries its own ways (and names the
// URL in its error).
async function compileFrom(url) {
  try {
    const response = await fetch(url, { credentials: 'same-origin' });
    if (!response.ok) return null;
    if (typeof WebAssembly.compileStreaming === 'function') {
      try {
        return await WebAssembly.compileStreaming(response.clone());
      } catch {
        // another MIME type: compiled from the bytes below
      }
    }
    return await WebAssembly.compile(await response.arrayBuffer());
  } catch {
    return null;
  }
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
      if (givenModule) {
        // compiled already (below)
      } else if (givenWasm) {
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
        // Compiled here, so that the workers this realm starts can be given the module.
        let module = givenModule;
        if (!module && options.wasmBinary) module = await WebAssembly.compile(options.wasmBinary);
        else if (!module && from) module = await compileFrom(from);
        let instantiated = null;
        if (module) {
          let fail;
          instantiated = new Promise((_, reject) => {
            fail = reject;
          });
          instantiated.catch(() => {});
          options.instantiateWasm = (imports, receive) => {
            WebAssembly.instantiate(module, imports).then((instance) => receive(instance, module), fail);
            return {}; // the exports arrive through receive
          };
        }
        const loaded = await (instantiated
          ? Promise.race([createQuantLensCore(options), instantiated])
          : createQuantLensCore(options));
        compiledModule = module;
        return loaded;
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
