// Builds the app: one self-contained HTML file, web/dist/app/index.html, that works
// from any static host and from file:// with no network. Inline: the style sheet, the
// main script (app + views + d3), the worker's source (engine API + Emscripten glue)
// and the .wasm (base64). The page's Content-Security-Policy names the main script by
// its SHA-256 and allows no request but the example model ('self').
// Usage: node tools/build-app.mjs
import fs from 'node:fs';
import path from 'node:path';
import { fileURLToPath } from 'node:url';
import * as esbuild from 'esbuild';
import { pageHtml, scriptHash, scriptSafe } from '../web/src/report.js';
import { VERSION } from '../web/src/version.js';

const root = path.resolve(path.dirname(fileURLToPath(import.meta.url)), '..');
const out = path.join(root, 'web', 'dist', 'app');
const wasmFile = path.join(root, 'web', 'dist', 'quantlens_core.wasm');
if (!fs.existsSync(wasmFile)) {
  console.error('build-app: web/dist/quantlens_core.wasm is missing; run tools/build.sh first');
  process.exit(1);
}

// The worker is a classic script: Chromium refuses module workers made from blob: URLs
// on file:// pages. So the Emscripten module is bundled without its Node preamble
// (top-level await, only for Node) and without import.meta: its one use is to name the
// .wasm beside the module, which is never fetched here (the page hands the bytes over),
// so a placeholder base that cannot resolve stands in for it.
const browserCore = {
  name: 'browser-core',
  setup(build) {
    build.onLoad({ filter: /quantlens_core\.mjs$/ }, (args) => {
      const text = fs.readFileSync(args.path, 'utf8');
      const start = text.indexOf('var createQuantLensCore');
      if (start < 0) throw new Error(`${args.path}: Emscripten factory not found`);
      // `require` stays a (never set) local, so the bundler does not resolve Node's modules.
      return {
        contents: 'var require, __dirname;\n' + text.slice(start).replace(/import\.meta\.url/g, '"https://quantlens.invalid/"'),
        loader: 'js',
      };
    });
  },
};

async function bundle(entry, format) {
  const r = await esbuild.build({
    plugins: [browserCore],
    entryPoints: [path.join(root, entry)],
    bundle: true,
    format,
    platform: 'browser',
    target: 'es2022',
    minify: true,
    legalComments: 'none',
    write: false,
    logLevel: 'error',
  });
  return r.outputFiles[0].text;
}

const main = scriptSafe(await bundle('web/app/app.js', 'iife'));
const worker = scriptSafe(await bundle('web/app/worker.js', 'iife'));
const css = fs.readFileSync(path.join(root, 'web', 'app', 'app.css'), 'utf8');
const wasm = fs.readFileSync(wasmFile).toString('base64');
const policy = [
  "default-src 'none'",
  `script-src ${await scriptHash(main)} 'wasm-unsafe-eval' blob:`,
  'worker-src blob:',
  "connect-src 'self' blob: data:",
  "style-src 'unsafe-inline'",
  'img-src data: blob:',
  "base-uri 'none'",
  "form-action 'none'",
].join('; ');

const html = pageHtml({
  policy,
  title: 'QuantLens: weight ranges and quantization risk of ONNX models',
  generator: `QuantLens ${VERSION}`,
  css,
  body: [
    `<script id="ql-wasm" type="application/octet-stream">${wasm}</script>`,
    `<script id="ql-worker" type="text/plain">${worker}</script>`,
    `<script id="ql-main">${main}</script>`,
  ],
});
fs.mkdirSync(out, { recursive: true });
fs.writeFileSync(path.join(out, 'index.html'), html);
console.log(
  `build-app: web/dist/app/index.html ${(html.length / 1e6).toFixed(2)} MB (main ${(main.length / 1e3).toFixed(0)} kB, worker ${(worker.length / 1e3).toFixed(0)} kB, wasm ${(wasm.length / 1e3).toFixed(0)} kB base64)`,
);
