// The WASM core in headless Chromium: a module Web Worker imports web/src/index.js,
// analyses a real model, and must produce exactly what Node produces.
import assert from 'node:assert/strict';
import crypto from 'node:crypto';
import path from 'node:path';
import { test } from 'node:test';
import { analyze, equalize, toJSON } from '../../web/src/index.js';
import { fetchedModelFiles, generatedModelFiles, root } from './helpers.mjs';
import { launch, noChromium, serve } from './chromium.mjs';

// A fetched real model, and the generated one whose weights span several streamed pieces.
const models = [fetchedModelFiles()[0], generatedModelFiles().find((f) => f.endsWith('large_weights.onnx'))].filter(Boolean);
const model = models[0];
const skip = noChromium || (!model ? 'no fetched model' : false);

test('analyze() and equalize() in a browser Web Worker equal their results in Node', { skip, timeout: 120000 }, async () => {
  const server = await serve(root);
  let browser;
  try {
    browser = await launch();
    const page = await browser.newPage();
    const errors = [];
    page.on('pageerror', (e) => errors.push(String(e)));
    page.on('console', (m) => {
      if (m.type() === 'error') errors.push(m.text());
    });
    const base = `http://127.0.0.1:${server.address().port}`;
    await page.goto(`${base}/tests/js/fixtures/blank.html`);
    for (const file of models) {
      const modelUrl = `${base}/${path.relative(root, file)}`;
      const out = await page.evaluate(async (url) => {
        const worker = new Worker('/tests/js/fixtures/worker.mjs', { type: 'module' });
        return new Promise((resolve) => {
          worker.onmessage = (e) => {
            resolve(e.data);
            worker.terminate();
          };
          worker.onerror = (e) => resolve({ ok: false, error: e.message });
          worker.postMessage({ url });
        });
      }, modelUrl);
      assert.ok(out.ok, out.error);
      const node = toJSON(await analyze(file));
      assert.equal(out.result.layers.length, node.layers.length);
      assert.deepEqual(out.result.layers, node.layers, path.basename(file));
      assert.deepEqual(out.fromBytes.layers, node.layers, path.basename(file));
      assert.deepEqual(out.result.summary, node.summary);
      assert.ok(out.progress >= node.layers.length);
      // equalize() in the worker writes the same bytes and the same report as in Node.
      const { bytes, ...report } = await equalize(file);
      assert.equal(out.equalized.size, bytes.length);
      assert.equal(
        out.equalized.sha256,
        crypto.createHash('sha256').update(bytes).digest('hex'),
        `${path.basename(file)}: equalized bytes differ`,
      );
      assert.deepEqual({ ...out.equalized.report, model: null }, { ...toJSON(report), model: null }); // a fetched Blob has no file name
    }
    assert.deepEqual(errors, []);
  } finally {
    if (browser) await browser.close();
    server.close();
  }
});
