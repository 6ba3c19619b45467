// Prepended to the Emscripten ES module. Under Node, the 3.1.6 output expects
// CommonJS `require` and `__dirname`, which ES modules lack: provide them.
// In browsers and workers this block does nothing (and imports nothing).
var require, __dirname;
if (typeof process === 'object' && process.versions && process.versions.node) {
  // The name arrives as an argument so that bundlers leave this import alone.
  const nodeImport = (name) => import(/* @vite-ignore */ /* webpackIgnore: true */ name);
  const { createRequire } = await nodeImport('module');
  require = createRequire(import.meta.url);
  __dirname = require('path').dirname(require('url').fileURLToPath(import.meta.url));
}
