// How long the app takes to open a model, in headless Chromium, from picking the file to
// the model table drawn; side by side in the same run with two baselines:
//   read:  a Web Worker on the same page reading the same File once, 64 MB slices with
//          FileReaderSync (the browser's floor for touching every byte);
//   node:  analyze(path) under Node (the same engine without the browser).
// Usage: node tools/bench/app/open.mjs [model.onnx ...]   (default: tools/bench/models/*)
// Needs the built app (npm run build) and, by default, the bench models (npm run bench
// exports them).
import fs from 'node:fs';
import path from 'node:path';
import { analyze } from '../../../web/src/index.js';
import { launch, newPage } from '../../../tests/js/chromium.mjs';
import { root } from '../../../tests/js/helpers.mjs';

const app = path.join(root, 'web', 'dist', 'app', 'index.html');
const dir = path.join(root, 'tools', 'bench', 'models');
const models = process.argv.slice(2).length
  ? process.argv.slice(2)
  : ['mobilenet_v2', 'resnet50', 'vgg16'].map((m) => path.join(dir, `${m}.onnx`)).filter((f) => fs.existsSync(f));
if (!models.length) {
  console.error('no models: pass paths, or run npm run bench once to export them');
  process.exit(1);
}

const READER = `self.onmessage = (e) => { const f = e.data; const r = new FileReaderSync(); const t = performance.now();
  for (let o = 0; o < f.size; o += 64 << 20) r.readAsArrayBuffer(f.slice(o, Math.min(f.size, o + (64 << 20))));
  self.postMessage(performance.now() - t); };`;

const browser = await launch();
const rows = [];
for (const model of models) {
  const page = await newPage(browser, { viewport: { width: 1280, height: 800 } });
  await page.goto(`file://${app}`);
  await page.waitForFunction(() => document.body.dataset.state === 'idle');
  // Baseline: the raw read, through an input of its own.
  await page.evaluate((src) => {
    const input = Object.assign(document.createElement('input'), { type: 'file', id: 'bench-read' });
    document.body.append(input);
    const w = new Worker(URL.createObjectURL(new Blob([src])));
    input.onchange = () => {
      w.onmessage = (e) => {
        window.__read = e.data;
      };
      w.postMessage(input.files[0]);
    };
  }, READER);
  await page.setInputFiles('#bench-read', model);
  await page.waitForFunction(() => window.__read !== undefined, null, { timeout: 600000 });
  const read = await page.evaluate(() => window.__read);
  const t0 = Date.now();
  await page.setInputFiles('#ql-file', model);
  await page.waitForFunction(() => ['done', 'error'].includes(document.body.dataset.state), null, { timeout: 600000 });
  await page.waitForSelector('table.ql-layer-table tbody tr');
  const open = Date.now() - t0;
  await page.close();
  const n0 = performance.now();
  await analyze(model);
  const node = performance.now() - n0;
  const mb = fs.statSync(model).size / 1e6;
  rows.push({ model: path.basename(model, '.onnx'), mb, open, read, node });
  console.log(
    `${path.basename(model)}: ${mb.toFixed(0)} MB, app ${(open / 1000).toFixed(2)} s, read ${(read / 1000).toFixed(2)} s, node ${(node / 1000).toFixed(2)} s`,
  );
}
await browser.close();
console.log('\n| model | file | app: pick to table | browser read of the File | analyze() in Node |\n|---|---|---|---|---|');
for (const r of rows)
  console.log(
    `| ${r.model} | ${r.mb.toFixed(0)} MB | ${(r.open / 1000).toFixed(2)} s | ${(r.read / 1000).toFixed(2)} s | ${(r.node / 1000).toFixed(2)} s |`,
  );
