// Headless Chromium for the browser tests: Debian's /usr/bin/chromium through
// playwright-core, a static file server, an esbuild bundle of a test entry, and a
// place for screenshots (tests/artifacts/, kept out of git; look at them).
import fs from 'node:fs';
import http from 'node:http';
import path from 'node:path';
import { root } from './helpers.mjs';

export const chromiumPath = '/usr/bin/chromium';
export const noChromium = !fs.existsSync(chromiumPath) ? 'Debian chromium not installed' : false;
export const artifacts = path.join(root, 'tests', 'artifacts');

const TYPES = { '.js': 'text/javascript', '.mjs': 'text/javascript', '.wasm': 'application/wasm', '.html': 'text/html', '.onnx': 'application/octet-stream', '.css': 'text/css' };

// Serves `dir` on 127.0.0.1 (a random port). `mounts` maps URL prefixes to other folders.
export function serve(dir, mounts = {}) {
  const server = http.createServer((req, res) => {
    const url = new URL(req.url, 'http://x');
    if (url.pathname === '/favicon.ico') { res.writeHead(204); res.end(); return; }
    let base = dir;
    let rel = decodeURIComponent(url.pathname);
    for (const [prefix, folder] of Object.entries(mounts)) {
      if (rel.startsWith(prefix)) { base = folder; rel = rel.slice(prefix.length); break; }
    }
    let file = path.join(base, rel);
    if (file.startsWith(base) && fs.existsSync(file) && fs.statSync(file).isDirectory()) file = path.join(file, 'index.html');
    if (!file.startsWith(base) || !fs.existsSync(file) || fs.statSync(file).isDirectory()) { res.writeHead(404); res.end(); return; }
    res.writeHead(200, { 'content-type': TYPES[path.extname(file)] || 'application/octet-stream' });
    fs.createReadStream(file).pipe(res);
  });
  return new Promise((resolve) => server.listen(0, '127.0.0.1', () => resolve(server)));
}

export async function launch() {
  const { chromium } = await import('playwright-core');
  // Playwright gives the browser a fresh profile directory of its own.
  return chromium.launch({
    executablePath: chromiumPath,
    headless: true,
    args: ['--no-sandbox', '--disable-gpu', '--disable-quic', '--no-first-run', '--disable-background-networking',
      '--disable-component-update', '--disable-sync'],
  });
}

// A page that records uncaught errors and console errors into `errors`.
export async function newPage(browser, options = {}) {
  const page = await browser.newPage(options);
  page.errors = [];
  page.on('pageerror', (e) => page.errors.push(String(e)));
  page.on('console', (m) => { if (m.type() === 'error') page.errors.push(m.text()); });
  return page;
}

// Bundles an ES module entry (with d3 and the views) into one browser script.
export async function bundle(entry, outfile) {
  const esbuild = await import('esbuild');
  await esbuild.build({ entryPoints: [entry], outfile, bundle: true, format: 'esm', platform: 'browser', logLevel: 'error' });
  return outfile;
}

export async function screenshot(page, name, options = {}) {
  fs.mkdirSync(artifacts, { recursive: true });
  const file = path.join(artifacts, `${name}.png`);
  await page.screenshot({ path: file, fullPage: true, ...options });
  return file;
}
