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

const TYPES = {
  '.js': 'text/javascript',
  '.mjs': 'text/javascript',
  '.wasm': 'application/wasm',
  '.html': 'text/html',
  '.onnx': 'application/octet-stream',
  '.css': 'text/css',
};

// Serves `dir` on 127.0.0.1 (a random port). `mounts` maps URL prefixes to other folders.
export function serve(dir, mounts = {}) {
  const server = http.createServer((req, res) => {
    const url = new URL(req.url, 'http://x');
    if (url.pathname === '/favicon.ico') {
      res.writeHead(204);
      res.end();
      return;
    }
    let base = dir;
    let rel = decodeURIComponent(url.pathname);
    for (const [prefix, folder] of Object.entries(mounts)) {
      if (rel.startsWith(prefix)) {
        base = folder;
        rel = rel.slice(prefix.length);
        break;
      }
    }
    let file = path.join(base, rel);
    if (file.startsWith(base) && fs.existsSync(file) && fs.statSync(file).isDirectory()) file = path.join(file, 'index.html');
    if (!file.startsWith(base) || !fs.existsSync(file) || fs.statSync(file).isDirectory()) {
      res.writeHead(404);
      res.end();
      return;
    }
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
    args: [
      '--no-sandbox',
      '--disable-gpu',
      '--disable-quic',
      '--no-first-run',
      '--disable-background-networking',
      '--disable-component-update',
      '--disable-sync',
    ],
  });
}

// A page that records uncaught errors and console errors into `errors`.
export async function newPage(browser, options = {}) {
  const page = await browser.newPage(options);
  page.errors = [];
  page.on('pageerror', (e) => page.errors.push(String(e)));
  page.on('console', (m) => {
    if (m.type() === 'error') page.errors.push(m.text());
  });
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

// Waits until the page has rendered `n` more frames: a ResizeObserver notification is
// delivered in the frame after a resize, and the views redraw in the frame after that
// (web/src/views/common.js observeWidth), so 3 frames cover "a resize has been handled".
export function frames(page, n = 3) {
  return page.evaluate(
    (k) =>
      new Promise((resolve) => {
        const step = () => (k-- > 0 ? requestAnimationFrame(step) : resolve());
        step();
      }),
    n,
  );
}

// Before the page's own scripts: records every string handed to an HTML parser
// (innerHTML, outerHTML, insertAdjacentHTML, document.write, createContextualFragment,
// DOMParser, setHTMLUnsafe) in window.__htmlSinks. The views and the app write model
// strings with textContent only, so a hostile name reaching one of these is a failure
// found at once, without waiting to see whether some injected script runs.
export function guardHtmlSinks(page) {
  return page.addInitScript(() => {
    const seen = [];
    Object.defineProperty(window, '__htmlSinks', { value: seen });
    const setter = (proto, prop) => {
      const d = proto && Object.getOwnPropertyDescriptor(proto, prop);
      if (!d || !d.set) return;
      Object.defineProperty(proto, prop, {
        ...d,
        set(v) {
          seen.push(`${prop}: ${v}`);
          d.set.call(this, v);
        },
      });
    };
    const method = (proto, name, arg) => {
      const f = proto && proto[name];
      if (typeof f !== 'function') return;
      proto[name] = function wrapped(...args) {
        seen.push(`${name}: ${args[arg]}`);
        return f.apply(this, args);
      };
    };
    setter(Element.prototype, 'innerHTML');
    setter(Element.prototype, 'outerHTML');
    setter(ShadowRoot.prototype, 'innerHTML');
    method(Element.prototype, 'insertAdjacentHTML', 1);
    method(Element.prototype, 'setHTMLUnsafe', 0);
    method(Document.prototype, 'write', 0);
    method(Document.prototype, 'writeln', 0);
    method(Range.prototype, 'createContextualFragment', 0);
    method(DOMParser.prototype, 'parseFromString', 0);
  });
}

// The strings recorded by guardHtmlSinks() that hold any of `needles`.
export function htmlSinkHits(page, needles) {
  return page.evaluate(
    (ns) =>
      (window.__htmlSinks || ['guardHtmlSinks() was not installed']).filter(
        (s) => ns.some((n) => s.includes(n)) || s.startsWith('guardHtmlSinks'),
      ),
    needles,
  );
}
