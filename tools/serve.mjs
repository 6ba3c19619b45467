// `npm start`: serves the app (web/dist/app/index.html) on localhost and the example
// model the set-up fetched (models/fetched/) under /examples/. Prints the URL.
// Usage: node tools/serve.mjs [--port N]   (default 8080, or the next free port)
import fs from 'node:fs';
import http from 'node:http';
import path from 'node:path';
import { fileURLToPath } from 'node:url';

const root = path.resolve(path.dirname(fileURLToPath(import.meta.url)), '..');
const app = path.join(root, 'web', 'dist', 'app');
const examples = path.join(root, 'models', 'fetched');
const arg = process.argv.indexOf('--port');
let port = arg > 0 ? Number(process.argv[arg + 1]) : Number(process.env.PORT || 8080);

if (!fs.existsSync(path.join(app, 'index.html'))) {
  console.error('serve: web/dist/app/index.html is missing; run `npm run build` first');
  process.exit(1);
}

const TYPES = { '.html': 'text/html; charset=utf-8', '.onnx': 'application/octet-stream' };
const server = http.createServer((req, res) => {
  const url = new URL(req.url, 'http://localhost');
  let file = null;
  if (url.pathname === '/' || url.pathname === '/index.html') file = path.join(app, 'index.html');
  else if (url.pathname.startsWith('/examples/')) {
    const name = path.basename(decodeURIComponent(url.pathname));
    if (name.endsWith('.onnx')) file = path.join(examples, name);
  }
  if (!file || !fs.existsSync(file)) {
    res.writeHead(404, { 'content-type': 'text/plain' });
    res.end('not found\n');
    return;
  }
  res.writeHead(200, { 'content-type': TYPES[path.extname(file)] || 'application/octet-stream', 'cache-control': 'no-cache' });
  fs.createReadStream(file).pipe(res);
});

server.on('error', (e) => {
  if (e.code === 'EADDRINUSE' && arg < 0 && port < 8100) {
    port++;
    server.listen(port, '127.0.0.1');
    return;
  } // the next free port
  console.error(`serve: ${e.message}`);
  process.exit(1);
});
server.on('listening', () => {
  console.log(`QuantLens is running at http://localhost:${server.address().port}/  (Ctrl+C to stop)`);
  console.log(
    'Open it in a browser; "Try an example" loads models/fetched/mlsd_320x320_tiny.onnx. The page also works saved as a file, offline.',
  );
});
server.listen(port, '127.0.0.1');
