// The app as a user meets it, in headless Chromium: the built page (web/dist/app/index.html)
// served like `npm start` serves it and opened from file://; a real model opened, dropped
// and tried as the example; the numbers shown checked against the core in Node;
// equalization run and its model downloaded; a comparison; the saved report reopened from
// file:// with every request recorded; bad input, Cancel and hostile names.
// Screenshots of each view go to tests/artifacts/ (look at them).
import assert from 'node:assert/strict';
import crypto from 'node:crypto';
import fs from 'node:fs';
import os from 'node:os';
import path from 'node:path';
import { after, before, test } from 'node:test';
import { analyze, equalize, compare } from '../../web/src/index.js';
import { formatDb } from '../../web/src/format.js';
import { channelText, recurrentText } from '../../web/src/presentation.js';
import { spawn } from 'node:child_process';
import { fetchedModelFiles, generatedModelFiles, makeSkippedModel, root, run, runCli, sharedModelFiles } from './helpers.mjs';
import { guardHtmlSinks, htmlSinkHits, launch, newPage, noChromium, screenshot, serve } from './chromium.mjs';

const appFile = path.join(root, 'web', 'dist', 'app', 'index.html');
const example = fetchedModelFiles().find((f) => f.endsWith('mlsd_320x320_tiny.onnx'));
const skip = noChromium || (!fs.existsSync(appFile) ? 'app not built' : !example ? 'example model not fetched' : false);
const shared = sharedModelFiles();
const ultraface = shared.find((f) => f.endsWith('ultraface_version-RFB-320.onnx'));
const tmp = fs.mkdtempSync(path.join(os.tmpdir(), 'quantlens-app-'));

let browser;
let server;
let base;
before(async () => {
  if (skip) return;
  browser = await launch();
  server = await serve(path.dirname(appFile), { '/examples/': path.dirname(example) });
  base = `http://127.0.0.1:${server.address().port}/`;
});
after(async () => {
  if (browser) await browser.close();
  if (server) server.close();
  fs.rmSync(tmp, { recursive: true, force: true });
});

const sha256 = (bytes) => crypto.createHash('sha256').update(bytes).digest('hex');
const settled = (page) =>
  page.waitForFunction(() => !['busy', 'idle'].includes(document.body.dataset.state), null, { timeout: 120000 });

async function openApp(url = base, viewport = { width: 1280, height: 800 }) {
  const page = await newPage(browser, { viewport, acceptDownloads: true });
  page.dialogs = [];
  page.on('dialog', (d) => {
    page.dialogs.push(d.message());
    d.dismiss();
  });
  await guardHtmlSinks(page); // window.__htmlSinks: strings given to an HTML parser (none from the model may be)
  await page.goto(url);
  await page.waitForFunction(() => document.body.dataset.state === 'idle' || document.body.dataset.mode === 'report');
  return page;
}

// The model table as shown: position -> {name, outliers, int8PerTensor} per row.
async function tableRows(page) {
  return page.$$eval('table.ql-layer-table tbody tr[data-position]', (rows) =>
    rows.map((r) => ({
      position: Number(r.dataset.position),
      name: r.querySelector('td[data-col="name"]').dataset.name, // the full name (the cell shows it without the shared prefix)
      outliers: r.querySelector('td[data-col="outliers"]').textContent,
      int8PerTensor: r.querySelector('td[data-col="int8PerTensor"]').textContent,
    })),
  );
}

// Every layer of the core's analysis appears once with its outlier count and SQNR.
async function checkModelTable(page, analysis) {
  const rows = await tableRows(page);
  assert.equal(rows.length, analysis.layers.length);
  for (const row of rows) {
    const l = analysis.layers[row.position];
    assert.equal(row.name, l.name);
    if (l.error) continue;
    assert.equal(row.outliers, String(l.outlierChannels.length), `${l.name}: outlier channels`);
    assert.equal(row.int8PerTensor, formatDb(l.sqnr.int8PerTensor), `${l.name}: INT8 per-tensor SQNR`);
  }
  const withOutliers = analysis.layers.filter((l) => !l.error && l.outlierChannels.length).length;
  assert.equal(await page.textContent('[data-field="layers-with-outliers"]'), String(withOutliers));
}

async function showTab(page, tab) {
  await page.click(`#ql-tabbtn-${tab}`);
  await page.waitForSelector(`#ql-tab-${tab}:not([hidden])`);
}

async function equalizeInPage(page) {
  await showTab(page, 'equalization');
  await page.click('#ql-eq-run');
  await settled(page);
  assert.equal(await page.evaluate(() => document.body.dataset.state), 'done', await page.textContent('#ql-error'));
}

async function openExample(page) {
  await page.click('#ql-example');
  await settled(page);
  assert.equal(await page.evaluate(() => document.body.dataset.state), 'done', await page.textContent('#ql-error'));
}

const silero = fetchedModelFiles().find((f) => f.endsWith('silero_vad_legacy.onnx'));
test(
  "silero VAD's LSTMs are layers: the layer view reads each channel as gate, unit (and direction)",
  { skip: skip || (!silero && 'silero_vad_legacy.onnx was not fetched'), timeout: 300000 },
  async () => {
    const page = await openApp();
    await page.setInputFiles('#ql-file', silero);
    await settled(page);
    assert.equal(await page.evaluate(() => document.body.dataset.state), 'done', await page.textContent('#ql-error'));
    const a = await analyze(silero);
    await checkModelTable(page, a);
    // The riskiest layer is an LSTM's input weights.
    const worst = a.summary.ranking[0];
    const l = a.layers[worst];
    assert.equal(l.op, 'LSTM');
    await page.click(`table.ql-layer-table tr[data-position="${worst}"] td[data-col="name"]`);
    await page.waitForSelector('#ql-tab-layer:not([hidden]) [data-field="recurrent"]');
    assert.equal(await page.textContent('#ql-tab-layer [data-field="recurrent"]'), recurrentText(l));
    assert.match(recurrentText(l), /^input weights W of LSTM_\d+: forward, gates i o f c, 64 units each$/);
    assert.equal(
      await page.textContent('#ql-tab-layer [data-field="channel-axis"]'),
      'axes 0-1: direction × gate (i o f c) × unit',
    );
    // A channel's tooltip names its gate and unit, as presentation.js reads the index.
    const overlay = page.locator('#ql-tab-layer [data-chart="channels"] .ql-overlay');
    await overlay.scrollIntoViewIfNeeded();
    const box = await overlay.boundingBox();
    await page.mouse.move(box.x + box.width * 0.6, box.y + box.height / 2);
    await page.waitForFunction(() =>
      /^channel \d+: gate/.test(document.querySelector('.ql-tooltip:not([hidden])')?.textContent ?? ''),
    );
    const tip = await page.textContent('.ql-tooltip:not([hidden])');
    const c = Number(tip.match(/^channel (\d+)/)[1]);
    assert.ok(tip.startsWith(channelText(l, c)), `${tip} starts with ${channelText(l, c)}`);
    assert.match(tip, /^channel \d+: gate [iofc], unit \d+/);
    await screenshot(page, 'app-layer-silero-lstm');
    assert.deepEqual(page.errors, []);
    await page.close();
  },
);

test(
  'the example, a dropped model and an opened model show the numbers the core computes',
  { skip, timeout: 300000 },
  async () => {
    const page = await openApp();
    await screenshot(page, 'app-empty');
    await openExample(page);
    const mlsd = await analyze(example);
    await checkModelTable(page, mlsd);
    await screenshot(page, 'app-model-mlsd');

    // A row opens the layer view: the riskiest layer, its flagged channels as the core found them.
    const worst = mlsd.summary.ranking[0];
    await page.click(`table.ql-layer-table tr[data-position="${worst}"] td[data-col="name"]`);
    await page.waitForSelector('#ql-tab-layer:not([hidden]) [data-field="outliers"]');
    assert.equal(
      await page.textContent('#ql-tab-layer [data-field="outliers"]'),
      String(mlsd.layers[worst].outlierChannels.length),
    );
    assert.equal(await page.getAttribute('#ql-tab-layer [data-layer-name]', 'data-layer-name'), mlsd.layers[worst].name);
    await screenshot(page, 'app-layer-mlsd');

    // Dropping a file (a DataTransfer carrying a File built in the page from the model's bytes).
    const dropped = ultraface || example;
    const bytes = fs.readFileSync(dropped).toString('base64');
    await page.evaluate(
      ({ b64, name }) => {
        const s = atob(b64);
        const u8 = new Uint8Array(s.length);
        for (let i = 0; i < s.length; i++) u8[i] = s.charCodeAt(i);
        const dt = new DataTransfer();
        dt.items.add(new File([u8], name));
        document.dispatchEvent(new DragEvent('drop', { dataTransfer: dt, bubbles: true, cancelable: true }));
      },
      { b64: bytes, name: path.basename(dropped) },
    );
    await page.waitForFunction(
      (name) => document.querySelector('#ql-model strong')?.textContent === name && document.body.dataset.state === 'done',
      path.basename(dropped),
      { timeout: 120000 },
    );
    await showTab(page, 'model');
    await checkModelTable(page, await analyze(dropped));
    await page.setViewportSize({ width: 1920, height: 1080 });
    await screenshot(page, `app-model-${path.basename(dropped, '.onnx')}-wide`);

    // The file picker, for each shared real model (PyTorch and TensorFlow exports).
    for (const file of shared) {
      await page.setInputFiles('#ql-file', file);
      await settled(page);
      assert.equal(
        await page.evaluate(() => document.body.dataset.state),
        'done',
        `${path.basename(file)}: ${await page.textContent('#ql-error')}`,
      );
      await showTab(page, 'model');
      await checkModelTable(page, await analyze(file));
    }
    assert.deepEqual(page.errors, []);
    await page.close();
  },
);

test('equalization runs in the page and its model downloads byte for byte as in Node', { skip, timeout: 300000 }, async () => {
  const page = await openApp();
  await openExample(page);
  await equalizeInPage(page);
  const eq = await equalize(example);
  assert.equal(await page.textContent('#ql-tab-equalization [data-field="layers-changed"]'), String(eq.summary.layersChanged));
  const marks = await page.$$eval('#ql-tab-equalization [data-layer][data-after]', (m) =>
    m.map((x) => [x.dataset.layer, Number(x.dataset.after)]),
  );
  const afterByName = new Map(eq.layers.map((l) => [l.name, l.after.sqnr.int8PerTensor]));
  assert.ok(marks.length >= eq.layers.length);
  for (const [name, db] of marks) if (afterByName.has(name)) assert.ok(Math.abs(db - afterByName.get(name)) < 1e-9, name);
  assert.equal(await page.locator('#ql-tab-equalization [data-stop]').count(), eq.stops.length);
  await screenshot(page, 'app-equalization-mlsd');

  const [download] = await Promise.all([page.waitForEvent('download'), page.click('button[data-action="download-equalized"]')]);
  const saved = path.join(tmp, 'equalized.onnx');
  await download.saveAs(saved);
  assert.equal(sha256(fs.readFileSync(saved)), sha256(eq.bytes));
  assert.equal(download.suggestedFilename(), 'mlsd_320x320_tiny.equalized.onnx');

  // Options reach the engine: keep ReLU6 changes what is equalized.
  await page.check('#ql-eq-options input[name="keepRelu6"]');
  await page.click('#ql-eq-run');
  await settled(page);
  const kept = await equalize(example, { keepRelu6: true });
  assert.equal(await page.textContent('#ql-tab-equalization [data-field="layers-changed"]'), String(kept.summary.layersChanged));
  assert.deepEqual(page.errors, []);
  await page.close();
});

test(
  'a model with external data: equalized in the page, downloaded as the model and its data file',
  { skip, timeout: 300000 },
  async () => {
    // The example saved by python3-onnx with every initializer in two data files under data/.
    const folder = path.join(tmp, 'mlsd-external');
    fs.mkdirSync(folder, { recursive: true });
    const model = path.join(folder, 'mlsd.onnx');
    const made = await run('/usr/bin/python3', [
      path.join(root, 'tools/reference/extdata.py'),
      'save',
      example,
      model,
      '--files',
      '2',
    ]);
    assert.equal(made.code, 0, made.stderr);
    const page = await openApp();
    await page.setInputFiles('#ql-folder', folder);
    await settled(page);
    assert.equal(await page.evaluate(() => document.body.dataset.state), 'done', await page.textContent('#ql-error'));
    await equalizeInPage(page);
    const eq = await equalize(model, { dataName: 'mlsd.equalized.onnx.data' }); // Node: the files beside the model
    assert.equal(await page.textContent('#ql-tab-equalization [data-field="layers-changed"]'), String(eq.summary.layersChanged));

    assert.match(
      await page.textContent('button[data-action="download-equalized"]'),
      /^Download equalized model \(.*B\) and its data file mlsd\.equalized\.onnx\.data \(.*B\)$/,
    );
    // One click, two downloads: the model, then its data file.
    const both = new Promise((resolve) => {
      const got = [];
      page.on('download', (d) => {
        got.push(d);
        if (got.length === 2) resolve(got);
      });
    });
    await page.click('button[data-action="download-equalized"]');
    const downloads = await both;
    assert.deepEqual(
      downloads.map((d) => d.suggestedFilename()),
      ['mlsd.equalized.onnx', 'mlsd.equalized.onnx.data'],
    );
    const saved = path.join(tmp, 'mlsd-eq');
    fs.mkdirSync(saved, { recursive: true });
    for (const d of downloads) await d.saveAs(path.join(saved, d.suggestedFilename()));
    assert.equal(sha256(fs.readFileSync(path.join(saved, 'mlsd.equalized.onnx'))), sha256(eq.bytes));
    assert.equal(sha256(fs.readFileSync(path.join(saved, 'mlsd.equalized.onnx.data'))), sha256(eq.dataBytes));
    // The pair, kept together, is a model Node reads with its data beside it.
    const again = await analyze(path.join(saved, 'mlsd.equalized.onnx'));
    assert.equal(again.layers.length, eq.layersSeen);
    assert.deepEqual(page.errors, []);
    await page.close();
  },
);

// A QDQ copy of the example (int8 per-channel weights through DequantizeLinear), made by
// the project's reference quantizer.
async function qdqCopy(model) {
  const out = path.join(tmp, `${path.basename(model, '.onnx')}.qdq.onnx`);
  const r = await run('/usr/bin/python3', [path.join(root, 'tools', 'reference', 'quantize_qdq.py'), model, out]);
  assert.equal(r.code, 0, r.stderr);
  return out;
}

test(
  'a saved report reopens from file:// with its views, no request and no console error',
  { skip, timeout: 300000 },
  async () => {
    const page = await openApp();
    await openExample(page);
    await equalizeInPage(page);
    const qdq = await qdqCopy(example);
    await page.setInputFiles('#ql-file-b', qdq);
    await settled(page);
    assert.equal(await page.evaluate(() => document.body.dataset.state), 'done', await page.textContent('#ql-error'));
    const cmp = await compare(example, qdq);
    assert.equal(await page.locator('#ql-tab-compare tr[data-pair]').count(), cmp.pairs.length);
    await screenshot(page, 'app-compare-mlsd-qdq');

    const [download] = await Promise.all([page.waitForEvent('download'), page.click('#ql-save')]);
    const reportFile = path.join(tmp, 'report.html');
    await download.saveAs(reportFile);
    await page.close();
    await checkReport(reportFile, await analyze(example), { equalization: true, compare: cmp.pairs.length, name: 'app' });
  },
);

// Opens a report from file:// in a fresh context, records every request, and checks the views.
async function checkReport(file, analysis, { equalization = false, compare: pairs = 0, name }) {
  const html = fs.readFileSync(file, 'utf8');
  const csp = /http-equiv="Content-Security-Policy" content="([^"]+)"/.exec(html);
  assert.ok(csp && csp[1].includes("default-src 'none'") && !/connect-src/.test(csp[1]), 'the report forbids network access');
  assert.ok(!/<script[^>]+src=|<link[^>]+href=|<img[^>]+src=|<iframe/i.test(html), 'the report loads no other resource');
  const context = await browser.newContext({ viewport: { width: 1280, height: 800 } });
  const requests = [];
  context.on('request', (r) => requests.push(r.url()));
  // Block everything but the report itself, and record what was attempted.
  await context.route('**/*', (route) => {
    if (route.request().url() === `file://${file}`) return route.continue();
    requests.push(`blocked ${route.request().url()}`);
    return route.abort();
  });
  const page = await context.newPage();
  const errors = [];
  page.on('pageerror', (e) => errors.push(String(e)));
  page.on('console', (m) => {
    if (m.type() === 'error') errors.push(m.text());
  });
  await page.goto(`file://${file}`);
  await page.waitForFunction(() => document.body.dataset.state === 'done', null, { timeout: 30000 });
  assert.equal(await page.evaluate(() => document.body.dataset.mode), 'report');
  // When it was saved reads for people (the ISO timestamp on hover).
  assert.match(await page.textContent('.ql-saved'), /^Report saved \d{1,2} [A-Z][a-z]{2} \d{4}, \d\d:\d\d UTC by QuantLens /);
  await checkModelTable(page, analysis);
  await screenshot(page, `report-${name}-model`);
  await showTab(page, 'layer');
  assert.equal(
    await page.textContent('#ql-tab-layer [data-field="outliers"]'),
    String(analysis.layers[analysis.summary.ranking[0]].outlierChannels.length),
  );
  await screenshot(page, `report-${name}-layer`);
  await showTab(page, 'equalization');
  assert.equal(await page.locator('#ql-tab-equalization .ql-equalization').count(), equalization ? 1 : 0);
  if (equalization) {
    assert.equal(
      await page.locator('button[data-action="download-equalized"]:visible').count(),
      0,
      'a report has no model to download',
    );
    // The report says which CLE options made the equalization it shows.
    assert.match(
      await page.textContent('#ql-tab-equalization [data-field="options"]'),
      /^Options: high-bias absorption (on|off), /,
    );
    await screenshot(page, `report-${name}-equalization`);
  }
  await showTab(page, 'compare');
  assert.equal(await page.locator('#ql-tab-compare tr[data-pair]').count(), pairs);
  assert.deepEqual(
    requests.filter((u) => u !== `file://${file}`),
    [],
    'requests made by the report',
  );
  assert.deepEqual(errors, []);
  await context.close();
}

test('the CLI writes the same kind of report; it opens offline', { skip, timeout: 300000 }, async () => {
  const file = path.join(tmp, 'cli-report.html');
  const r = await runCli(['report', example, '-o', file, '--equalize']);
  assert.equal(r.code, 0, r.stderr);
  assert.match(r.stdout, /Wrote .*cli-report\.html/);
  const size = fs.statSync(file).size;
  assert.ok(size < 3e6, `report of a 2.5 MB model is ${size} bytes`);
  await checkReport(file, await analyze(example), { equalization: true, name: 'cli' });
  const usage = await runCli(['report', example]);
  assert.equal(usage.code, 2);
  assert.match(usage.stderr, /needs -o/);
});

test('bad files show an error and leave the app usable; Cancel stops the engine at once', { skip, timeout: 300000 }, async () => {
  const page = await openApp();
  const bad = path.join(tmp, 'not-a-model.onnx');
  fs.writeFileSync(bad, Buffer.from('this is not a protobuf\n'.repeat(40)));
  await page.setInputFiles('#ql-file', bad);
  await settled(page);
  assert.equal(await page.evaluate(() => document.body.dataset.state), 'error');
  assert.ok(await page.isVisible('#ql-error'));
  assert.match(await page.textContent('#ql-error'), /^INVALID_MODEL: /);
  await screenshot(page, 'app-error');

  // Cancel in the same task as the start: the job is cancelled, never completed.
  await page.evaluate(async (b64) => {
    const input = document.querySelector('#ql-file');
    const dt = new DataTransfer();
    dt.items.add(new File([Uint8Array.from(atob(b64), (c) => c.charCodeAt(0))], 'x.onnx'));
    input.files = dt.files;
    input.dispatchEvent(new Event('change'));
    document.querySelector('#ql-cancel').click();
  }, fs.readFileSync(example).toString('base64'));
  await page.waitForFunction(() => document.body.dataset.state !== 'busy');
  // back to where it was: nothing open, so idle
  assert.equal(await page.evaluate(() => document.body.dataset.state), 'idle');
  assert.equal(await page.textContent('#ql-error'), 'Cancelled.');

  // Still usable: the example opens.
  await openExample(page);
  await checkModelTable(page, await analyze(example));
  assert.deepEqual(page.errors, []);
  await page.close();
});

// A Conv model whose node, tensor and metadata strings are hostile HTML.
const HOSTILE = ['<script>window.__pwned=1</script>', '"><img src=x onerror="window.__pwned=1">'];
function hostileModel(file) {
  const py = `
import sys, numpy as np, onnx
from onnx import helper, numpy_helper, TensorProto
a, b = sys.argv[2], sys.argv[3]
w = np.random.default_rng(1).standard_normal((8, 3, 3, 3)).astype(np.float32)
w[2] *= 40
w2 = np.random.default_rng(2).standard_normal((4, 8, 1, 1)).astype(np.float32)
g = helper.make_graph(
  [helper.make_node('Conv', ['x', a + '.weight'], ['h'], name=a), helper.make_node('Relu', ['h'], ['r'], name=b + 'relu'),
   helper.make_node('Conv', ['r', b], ['y'], name=b + 'conv')],
  a + 'graph', [helper.make_tensor_value_info('x', TensorProto.FLOAT, [1, 3, 8, 8])],
  [helper.make_tensor_value_info('y', TensorProto.FLOAT, [1, 4, 6, 6])],
  [numpy_helper.from_array(w, a + '.weight'), numpy_helper.from_array(w2, b)])
m = helper.make_model(g, opset_imports=[helper.make_opsetid('', 13)], producer_name=a)
m.ir_version = 8
helper.set_model_props(m, {b: a})
onnx.checker.check_model(m)
onnx.save(m, sys.argv[1])
`;
  return run('/usr/bin/python3', ['-c', py, file, ...HOSTILE]);
}

test(
  'names holding <script> and onerror markup render as text, in the app and in its report',
  { skip, timeout: 300000 },
  async () => {
    const file = path.join(tmp, `${HOSTILE[1].slice(0, 2)}hostile.onnx`.replace(/[^a-z.]/gi, '_'));
    const made = await hostileModel(file);
    assert.equal(made.code, 0, made.stderr);
    const page = await openApp();
    await page.setInputFiles('#ql-file', file);
    await settled(page);
    assert.equal(await page.evaluate(() => document.body.dataset.state), 'done', await page.textContent('#ql-error'));
    const text = await page.evaluate(() => document.body.innerText);
    assert.ok(text.includes(HOSTILE[0]), 'the <script> name is shown as text');
    await page.click(`table.ql-layer-table tr[data-position="0"] td[data-col="name"]`);
    await page.waitForSelector('#ql-tab-layer:not([hidden]) [data-field="outliers"]');
    await equalizeInPage(page);
    await screenshot(page, 'app-hostile-equalization');
    assert.equal(await page.evaluate(() => window.__pwned), undefined);
    assert.equal(await page.locator('img[src="x"]').count(), 0);
    const [download] = await Promise.all([page.waitForEvent('download'), page.click('#ql-save')]);
    const reportFile = path.join(tmp, 'hostile-report.html');
    await download.saveAs(reportFile);
    assert.deepEqual(page.dialogs, []);
    assert.deepEqual(page.errors, []);
    await page.close();

    const report = await openApp(`file://${reportFile}`);
    await report.waitForFunction(() => document.body.dataset.state === 'done');
    assert.ok((await report.evaluate(() => document.body.innerText)).includes(HOSTILE[0]));
    for (const tab of ['layer', 'equalization', 'model']) await showTab(report, tab);
    assert.equal(await report.evaluate(() => window.__pwned), undefined);
    assert.equal(await report.locator('img[src="x"]').count(), 0);
    assert.deepEqual(report.dialogs, []);
    assert.deepEqual(report.errors, []);
    await report.close();
  },
);

// The notice of weight nodes not analysed, in the Model view and the header.
async function skippedShown(page) {
  await showTab(page, 'model');
  return page.evaluate(() => {
    const box = document.querySelector('#ql-tab-model details.ql-skipped[data-field="skipped"]');
    const header = document.querySelector('#ql-model [data-field="skipped-count"]');
    return {
      header: header ? header.textContent : null,
      count: box ? box.querySelector('[data-field="skipped-count"]').textContent : null,
      items: box ? [...box.querySelectorAll('li[data-skipped]')].map((li) => li.textContent) : [],
      visible: box ? [...box.querySelectorAll('li[data-skipped]')].every((li) => li.checkVisibility()) : false,
    };
  });
}

test(
  "weight nodes the core cannot analyse are listed, with why, in the app, its report and the CLI's report",
  { skip, timeout: 300000 },
  async () => {
    const file = path.join(tmp, 'skipped.onnx');
    const made = await makeSkippedModel(file, { conv: HOSTILE[1], gemm: HOSTILE[0] });
    assert.equal(made.code, 0, made.stderr);
    const analysis = await analyze(file);
    // What the core skips in this model today (it may report more: the list is read from the result).
    const conv = `${HOSTILE[1]} (Conv): convolution weight of rank 2`;
    const gemm = `${HOSTILE[0]} (Gemm): Gemm weight of rank 3`;
    assert.ok(analysis.skipped.includes(conv) && analysis.skipped.includes(gemm), JSON.stringify(analysis.skipped));
    const n = analysis.skipped.length;
    const want = {
      header: `${n} weight nodes not analysed`,
      count: `${n} weight nodes not analysed`,
      items: analysis.skipped,
      visible: true,
    };

    const check = async (page, what) => {
      assert.deepEqual(await skippedShown(page), want, what);
      await checkModelTable(page, analysis);
      assert.equal(await page.evaluate(() => window.__pwned), undefined, what);
      assert.equal(await page.locator('img').count(), 0, what);
      assert.deepEqual(await htmlSinkHits(page, HOSTILE), [], `${what}: names parsed as HTML`);
      assert.deepEqual(page.dialogs, [], what);
      assert.deepEqual(page.errors, [], what);
    };
    const page = await openApp();
    await page.setInputFiles('#ql-file', file);
    await settled(page);
    assert.equal(await page.evaluate(() => document.body.dataset.state), 'done', await page.textContent('#ql-error'));
    await check(page, 'app');
    await screenshot(page, 'app-model-skipped', { fullPage: false });
    await showTab(page, 'layer');
    assert.equal(
      await page.textContent('#ql-model [data-field="skipped-count"]'),
      want.header,
      'the header says it on every tab',
    );
    const [download] = await Promise.all([page.waitForEvent('download'), page.click('#ql-save')]);
    const saved = path.join(tmp, 'skipped-report.html');
    await download.saveAs(saved);
    await page.close();

    const cliReport = path.join(tmp, 'skipped-cli-report.html');
    const r = await runCli(['report', file, '-o', cliReport]);
    assert.equal(r.code, 0, r.stderr);
    for (const [report, what] of [
      [saved, 'saved report'],
      [cliReport, 'CLI report'],
    ]) {
      const rp = await openApp(`file://${report}`);
      await rp.waitForFunction(() => document.body.dataset.state === 'done');
      await check(rp, what);
      if (what === 'saved report') await screenshot(rp, 'report-app-skipped', { fullPage: false });
      await rp.close();
    }
  },
);

test('the app page itself works from file://', { skip, timeout: 120000 }, async () => {
  const page = await openApp(`file://${appFile}`);
  await page.setInputFiles('#ql-file', example);
  await settled(page);
  assert.equal(await page.evaluate(() => document.body.dataset.state), 'done', await page.textContent('#ql-error'));
  await checkModelTable(page, await analyze(example));
  // The example needs a server: from file:// its button is disabled and says why.
  assert.equal(await page.$eval('#ql-example', (b) => b.disabled), true);
  assert.match(await page.$eval('#ql-example', (b) => b.title), /served by `npm start`/);
  assert.deepEqual(page.errors, []);
  await page.close();
});

test(
  'after equalization: the verdict says what CLE brings; the equalized model is compared with the original in the page, as a rescale',
  { skip, timeout: 300000 },
  async () => {
    const page = await openApp();
    await openExample(page);
    await equalizeInPage(page);
    // The model view's verdict now counts the layers after CLE.
    await showTab(page, 'model');
    const t8 = await page.$eval('.ql-verdict-item[data-scheme="int8PerTensor"]', (e) => e.textContent);
    assert.match(t8, /^INT8 per-tensor: \d+ layers below 30 dB, CLE brings it to \d+/);
    await showTab(page, 'equalization');
    await page.click('button[data-action="compare-equalized"]');
    await settled(page);
    assert.equal(await page.evaluate(() => document.body.dataset.state), 'done', await page.textContent('#ql-error'));
    await page.waitForSelector('#ql-tab-compare:not([hidden]) [data-field="all-rescaled"]');
    const eq = await equalize(example);
    const c = await compare(example, new Uint8Array(eq.bytes));
    assert.equal(await page.textContent('#ql-tab-compare [data-field="rescaled"]'), String(c.summary.rescaled));
    await screenshot(page, 'app-compare-equalized-mlsd');
    // Dragging a file over the page frames the whole window.
    await page.evaluate(() => document.dispatchEvent(new DragEvent('dragover', { bubbles: true, cancelable: true })));
    const frame = await page.evaluate(() => {
      const s = getComputedStyle(document.body, '::after');
      return { position: s.position, top: s.top, left: s.left, right: s.right, bottom: s.bottom };
    });
    assert.deepEqual(frame, { position: 'fixed', top: '0px', left: '0px', right: '0px', bottom: '0px' });
    await screenshot(page, 'app-dragover', { fullPage: false });
    assert.deepEqual(page.errors, []);
    await page.close();
  },
);

test(
  'a model with external data opens with its data file; without it, the app names the missing file',
  { skip, timeout: 120000 },
  async () => {
    const model = generatedModelFiles().find((f) => f.endsWith('external_data.onnx'));
    if (!model) return;
    const page = await openApp();
    await page.setInputFiles('#ql-file', model);
    await settled(page);
    assert.equal(await page.evaluate(() => document.body.dataset.state), 'error');
    assert.match(await page.textContent('#ql-error'), /^MISSING_EXTERNAL_DATA: .*external_data\.bin/);
    await page.setInputFiles('#ql-file', [model, model.replace(/\.onnx$/, '.bin')]);
    await settled(page);
    assert.equal(await page.evaluate(() => document.body.dataset.state), 'done', await page.textContent('#ql-error'));
    await checkModelTable(page, await analyze(model));
    assert.deepEqual(page.errors, []);
    await page.close();
  },
);

test('the progress line says what is being done: bytes read, then layers analysed', { skip, timeout: 120000 }, async () => {
  const page = await openApp();
  await page.evaluate(() => {
    window.__progress = [];
    new MutationObserver(() => window.__progress.push(document.querySelector('#ql-progress-text').textContent)).observe(
      document.querySelector('#ql-progress-text'),
      { childList: true, characterData: true, subtree: true },
    );
  });
  const model = ultraface || example;
  await page.setInputFiles('#ql-file', model);
  await settled(page);
  const seen = await page.evaluate(() => window.__progress);
  const layers = (await analyze(model)).layers.length;
  assert.ok(
    seen.some((t) => /^Reading [\d.]+ [kM]?B of [\d.]+ MB$/.test(t)),
    seen.join(' | '),
  );
  // the last layer, with the weight bytes read
  const last = `Analysing layer ${layers} of ${layers}: ${(await analyze(model)).layers.at(-1).name}; `;
  assert.ok(
    seen.some((t) => t.startsWith(last) && / of weights read$/.test(t)),
    seen.slice(-3).join(' | '),
  );
  await page.close();
});

test("npm start's server prints its URL and serves the app and the example model", { skip, timeout: 60000 }, async () => {
  const child = spawn(process.execPath, [path.join(root, 'tools', 'serve.mjs'), '--port', '0'], {
    stdio: ['ignore', 'pipe', 'pipe'],
  });
  try {
    const url = await new Promise((resolve, reject) => {
      let out = '';
      child.stdout.on('data', (d) => {
        out += d;
        const m = /running at (http:\/\/localhost:\d+\/)/.exec(out);
        if (m) resolve(m[1]);
      });
      child.on('exit', (code) => reject(new Error(`serve exited ${code}`)));
    });
    const page = await fetch(url);
    assert.equal(page.status, 200);
    assert.equal(await page.text(), fs.readFileSync(appFile, 'utf8'));
    const model = await fetch(`${url}examples/${path.basename(example)}`);
    assert.equal(sha256(Buffer.from(await model.arrayBuffer())), sha256(fs.readFileSync(example)));
    assert.equal((await fetch(`${url}examples/..%2Fpackage.json`)).status, 404);
    assert.equal((await fetch(`${url}../package.json`)).status, 404);
  } finally {
    child.kill();
  }
});
