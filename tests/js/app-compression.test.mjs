// The Compression tab as a user meets it, in headless Chromium (issue 15 part 5): a real
// model opened, compressibility computed in the page's worker, the layers ranked by how far
// they compress at a chosen weight SQNR, the plan at a target moved with the slider, a
// layer's curves, the compressed model downloaded, and the saved report reopened from
// file:// with the same tab. Every number shown is checked against compressibility() and
// compress() run in Node (whose curves tests/js/compress.test.mjs checks against numpy);
// the ranking is recomputed here from the curves' points, independently of the view's code.
import assert from 'node:assert/strict';
import crypto from 'node:crypto';
import fs from 'node:fs';
import os from 'node:os';
import path from 'node:path';
import { after, before, test } from 'node:test';
import { analyze, compress, compressibility, compressionRisk, PLAN_RATIOS } from '../../web/src/index.js';
import { fetchedModelFiles, root, runCli } from './helpers.mjs';
import { launch, newPage, noChromium, screenshot, serve } from './chromium.mjs';

const appFile = path.join(root, 'web', 'dist', 'app', 'index.html');
const model = fetchedModelFiles().find((f) => f.endsWith('mlsd_320x320_tiny.onnx'));
const skip = noChromium || (!fs.existsSync(appFile) ? 'app not built' : !model ? 'example model not fetched' : false);
const tmp = fs.mkdtempSync(path.join(os.tmpdir(), 'quantlens-appcmp-'));

let browser;
let server;
let base;
before(async () => {
  if (skip) return;
  browser = await launch();
  server = await serve(path.dirname(appFile));
  base = `http://127.0.0.1:${server.address().port}/`;
});
after(async () => {
  if (browser) await browser.close();
  if (server) server.close();
  fs.rmSync(tmp, { recursive: true, force: true });
});

const sha256 = (bytes) => crypto.createHash('sha256').update(bytes).digest('hex');
const settled = (page) =>
  page.waitForFunction(() => !['busy', 'idle'].includes(document.body.dataset.state), null, { timeout: 300000 });
const pct = (f) => `${Number((100 * f).toPrecision(3))}`;

// The smallest fraction of a layer's own parameters any method keeps with a weight SQNR of at
// least db (every point), 1 when none below full size, null when every method refuses.
function expectedKept(layer, db) {
  const usable = layer.full.filter((k) => !k.refused);
  if (!usable.length) return null;
  let best = 1;
  for (const k of usable)
    for (let j = 0; j < k.params.length; j++) if (k.sqnrDb[j] >= db) best = Math.min(best, k.params[j] / layer.params);
  return best;
}

// The rows of the layer table as shown, in order.
const rowsOf = (page, tab = '#ql-tab-compression') =>
  page.$$eval(`${tab} table.ql-cmp-layers tbody tr[data-layer]`, (rows) =>
    rows.map((r) => ({
      layer: r.dataset.layer,
      kept: r.dataset.kept === undefined ? null : Number(r.dataset.kept),
      method: r.dataset.planMethod ?? null,
      fraction: r.dataset.planFraction === undefined ? null : Number(r.dataset.planFraction),
      sqnr: r.dataset.planSqnr === undefined ? null : Number(r.dataset.planSqnr),
    })),
  );

function checkRows(rows, c, plan, db) {
  assert.equal(rows.length, c.layers.length, 'one row per weight layer');
  assert.deepEqual(new Set(rows.map((r) => r.layer)), new Set(c.layers.map((l) => l.name)));
  let last = -Infinity;
  for (const r of rows) {
    const l = c.layers.find((x) => x.name === r.layer);
    const want = expectedKept(l, db);
    if (want === null) assert.equal(r.kept, null, `${r.layer}: not compressible`);
    else assert.ok(Math.abs(r.kept - want) < 1e-12, `${r.layer}: keeps ${r.kept}, expected ${want} at ${db} dB`);
    const rank = r.kept === null ? 2 : r.kept;
    assert.ok(rank >= last, `${r.layer}: ranked by the fraction kept`);
    last = rank;
    const p = plan.layers.find((x) => x.name === r.layer);
    assert.equal(r.method, p.method, `${r.layer}: plan method`);
    assert.equal(r.fraction, p.paramFraction, `${r.layer}: plan fraction`);
    assert.equal(r.sqnr, p.method ? p.sqnrDb : null, `${r.layer}: plan SQNR`);
  }
}

async function openModel(page) {
  await page.goto(base);
  await page.waitForFunction(() => document.body.dataset.state === 'idle');
  await page.setInputFiles('#ql-file', model);
  await settled(page);
  assert.equal(await page.evaluate(() => document.body.dataset.state), 'done', await page.textContent('#ql-error'));
}

test(
  'Compression tab: ranking, plan slider, curves, the compressed model and its quantization risk match the API; the report keeps it',
  { skip, timeout: 600000 },
  async () => {
    const page = await newPage(browser, { viewport: { width: 1280, height: 900 }, acceptDownloads: true });
    await openModel(page);
    await page.click('#ql-tabbtn-compression');
    assert.match(await page.textContent('#ql-tab-compression .ql-empty'), /Compute how far each layer shrinks/);
    await page.selectOption('#ql-cmp-options select[name="method"]', 'auto');
    await page.click('#ql-cmp-run');
    await settled(page);
    assert.equal(await page.evaluate(() => document.body.dataset.state), 'done', await page.textContent('#ql-error'));
    assert.match(new URL(page.url()).hash, /^#view=compression&/);

    const c = await compressibility(model, { method: 'auto', ratio: 0.5, ratios: PLAN_RATIOS, full: true });
    const at = (r) => c.plans.find((p) => Math.abs(p.ratio - r) < 1e-9);
    assert.ok(
      c.layers.some((l) => l.full.some((k) => k.method === 'channel-prune' && !k.refused)),
      'the model has prunable layers',
    );

    // At the default target (0.5) and SQNR (30 dB).
    checkRows(await rowsOf(page), c, at(0.5).plan, 30);
    assert.equal(await page.textContent('#ql-tab-compression [data-field="achieved"]'), `${pct(at(0.5).plan.achieved.params)}%`);
    await screenshot(page, 'app-compression-mlsd');

    // The slider to 30%: the plan shown is the API's plan at 0.3.
    const k30 = PLAN_RATIOS.findIndex((r) => Math.abs(r - 0.3) < 1e-9);
    await page.$eval(
      '#ql-tab-compression input[data-action="target"]',
      (input, k) => {
        input.value = String(k);
        input.dispatchEvent(new Event('input', { bubbles: true }));
      },
      k30,
    );
    assert.match(await page.textContent('#ql-tab-compression [data-field="target"]'), /^keep 30% of parameters$/);
    checkRows(await rowsOf(page), c, at(0.3).plan, 30);
    assert.equal(await page.textContent('#ql-tab-compression [data-field="achieved"]'), `${pct(at(0.3).plan.achieved.params)}%`);
    assert.ok(at(0.3).plan.achieved.params <= 0.3 + 1e-12);

    // The ranking at another SQNR.
    await page.fill('#ql-tab-compression input[data-action="sqnr"]', '12');
    await page.press('#ql-tab-compression input[data-action="sqnr"]', 'Enter');
    await page.$eval('#ql-tab-compression input[data-action="sqnr"]', (i) =>
      i.dispatchEvent(new Event('change', { bubbles: true })),
    );
    checkRows(await rowsOf(page), c, at(0.3).plan, 12);

    // A layer's curves: one line per method that applies, the refused ones with their reason,
    // the plan's point marked when the plan compresses it.
    const pruned = at(0.3).plan.layers.find((l) => l.method === 'channel-prune') || at(0.3).plan.layers.find((l) => l.method);
    await page.click(`#ql-tab-compression tr[data-layer="${pruned.name}"]`);
    const chart = page.locator('#ql-tab-compression [data-chart="curves"]');
    assert.equal(await chart.getAttribute('data-layer'), pruned.name);
    const layer = c.layers.find((l) => l.name === pruned.name);
    const methods = await chart.locator('path[data-method]').evaluateAll((ps) => ps.map((p) => p.dataset.method));
    assert.deepEqual(
      methods,
      layer.full.filter((k) => !k.refused).map((k) => k.method),
    );
    const refused = await chart.locator('[data-refused]').evaluateAll((ps) => ps.map((p) => p.dataset.refused));
    assert.deepEqual(
      refused,
      layer.full.filter((k) => k.refused).map((k) => k.method),
    );
    assert.equal(await chart.locator('circle[data-chosen]').getAttribute('data-chosen'), pruned.method);
    // The selection is the app's one selection: the Layer tab shows it.
    assert.equal(decodeURIComponent(/layer=([^&]*)/.exec(await page.evaluate(() => location.hash))?.[1] ?? ''), pruned.name);
    await screenshot(page, 'app-compression-mlsd-30');

    // The compressed model at the target shown: the bytes compress() writes in Node.
    const [download] = await Promise.all([
      page.waitForEvent('download'),
      page.click('#ql-tab-compression button[data-action="download-compressed"]'),
    ]);
    await settled(page);
    const saved = path.join(tmp, 'compressed.onnx');
    await download.saveAs(saved);
    assert.equal(download.suggestedFilename(), 'mlsd_320x320_tiny.compressed-30.onnx');
    const node = await compress(model, { ratio: 0.3, method: 'auto' });
    assert.equal(sha256(fs.readFileSync(saved)), sha256(node.bytes));

    // What the plan does to quantization risk: the compressed model analysed in the page, as
    // compressionRisk() of the same analyses in Node (tests/js/compress-risk.test.mjs checks
    // those against the reference analysis).
    await page.click('#ql-tab-compression button[data-action="risk"]');
    await settled(page);
    assert.equal(await page.evaluate(() => document.body.dataset.state), 'done', await page.textContent('#ql-error'));
    const compressedFile = path.join(tmp, 'mlsd_320x320_tiny.compressed-30.onnx');
    fs.writeFileSync(compressedFile, node.bytes);
    const risk = compressionRisk(await analyze(model), await analyze(compressedFile), node);
    const summary = await page.$$eval('#ql-tab-compression section[data-section="risk"] tr[data-scheme]', (rows) =>
      rows.map((r) => [r.dataset.scheme, Number(r.dataset.before), Number(r.dataset.after)]),
    );
    assert.deepEqual(
      summary,
      ['int8PerTensor', 'int8PerChannel', 'int4PerChannel'].map((s) => [s, risk.highRisk[s].before, risk.highRisk[s].after]),
    );
    const shown = await page.$$eval('#ql-tab-compression section[data-section="risk"] tr[data-layer]', (rows) =>
      rows.map((r) => ({
        layer: r.dataset.layer,
        cells: [...r.querySelectorAll('td[data-scheme]')].map((td) => [
          td.dataset.scheme,
          Number(td.dataset.before),
          Number(td.dataset.after),
        ]),
      })),
    );
    assert.equal(shown.length, risk.layers.length);
    for (const [k, row] of shown.entries()) {
      const l = risk.layers[k];
      assert.equal(row.layer, l.name);
      for (const [s, b, a] of row.cells) {
        assert.equal(b, l.before.sqnr[s], `${l.name} ${s} before`);
        assert.equal(a, l.after.sqnr[s], `${l.name} ${s} after`);
      }
    }
    await screenshot(page, 'app-compression-mlsd-risk');

    // The saved report: the same tab from the report's data, offline, with no download button.
    const [rep] = await Promise.all([page.waitForEvent('download'), page.click('#ql-save')]);
    const reportFile = path.join(tmp, 'report.html');
    await rep.saveAs(reportFile);
    assert.deepEqual(page.errors, []);
    await page.close();

    const context = await browser.newContext({ viewport: { width: 1280, height: 900 } });
    const requests = [];
    await context.route('**/*', (route) => {
      if (route.request().url() === `file://${reportFile}`) return route.continue();
      requests.push(route.request().url());
      return route.abort();
    });
    const report = await context.newPage();
    const errors = [];
    report.on('pageerror', (e) => errors.push(String(e)));
    await report.goto(`file://${reportFile}#view=compression`);
    await report.waitForFunction(() => document.body.dataset.state === 'done');
    checkRows(await rowsOf(report), c, at(0.5).plan, 30);
    assert.equal(await report.locator('#ql-tab-compression button[data-action="download-compressed"]').count(), 0);
    // The risk was analysed at 30%: the report shows it there (the slider moved back to it).
    const kr = PLAN_RATIOS.findIndex((r) => Math.abs(r - 0.3) < 1e-9);
    await report.$eval(
      '#ql-tab-compression input[data-action="target"]',
      (input, k) => {
        input.value = String(k);
        input.dispatchEvent(new Event('input', { bubbles: true }));
      },
      kr,
    );
    assert.equal(
      await report.locator('#ql-tab-compression section[data-section="risk"] tr[data-layer]').count(),
      risk.layers.length,
    );
    assert.equal(await report.locator('#ql-tab-compression button[data-action="risk"]').count(), 0);
    await screenshot(report, 'report-compression-mlsd');
    assert.deepEqual(requests, []);
    assert.deepEqual(errors, []);
    await context.close();
  },
);

test(
  'quantlens report --compressibility: the report opens offline on the Compression tab the API computes',
  { skip, timeout: 600000 },
  async () => {
    const file = path.join(tmp, 'cli-report.html');
    const r = await runCli(['report', model, '-o', file, '--compressibility', '--method', 'auto']);
    assert.equal(r.code, 0, r.stderr);
    const c = await compressibility(model, { method: 'auto', ratio: 0.5, ratios: PLAN_RATIOS, full: true });
    const context = await browser.newContext({ viewport: { width: 1280, height: 900 } });
    const requests = [];
    await context.route('**/*', (route) => {
      if (route.request().url() === `file://${file}`) return route.continue();
      requests.push(route.request().url());
      return route.abort();
    });
    const page = await context.newPage();
    const errors = [];
    page.on('pageerror', (e) => errors.push(String(e)));
    await page.goto(`file://${file}#view=compression`);
    await page.waitForFunction(() => document.body.dataset.state === 'done');
    checkRows(await rowsOf(page), c, c.plans.find((p) => p.ratio === 0.5).plan, 30);
    assert.deepEqual(requests, []);
    assert.deepEqual(errors, []);
    await context.close();
    const usage = await runCli(['report', model, '-o', file, '--method', 'auto']);
    assert.equal(usage.code, 2);
    assert.match(usage.stderr, /--method goes with --compressibility/);
  },
);
