// Prepended to the Emscripten ES module. Under Node, the 3.1.6 output refers to
// CommonJS `require` and `__dirname`, which ES modules lack. It uses `__dirname` only
// to build a default .wasm path, and `require` only to read that file; web/src/core.js
// always hands the .wasm bytes over (wasmBinary), so neither is ever needed for real.
// No top-level await here: bundlers (Vite's default targets, esbuild's iife) refuse it.
// In browsers and workers this block does nothing.
// They are read by the Emscripten code this file is prepended to, which the linter cannot see.
/* eslint-disable no-unused-vars */
var require, __dirname;
if (typeof process === 'object' && process.versions && process.versions.node) {
  __dirname = '.';
  require = (name) => {
    throw new Error(
      `quantlens_core: require('${name}') is not available; load the core through web/src/core.js, which passes the .wasm bytes`,
    );
  };
}
