// Deep links, exports, keyboard and dark mode (issue 14 part 4), in headless Chromium on the
// built app (served like `npm start`) and on a saved report opened from file://:
//  - the hash holds view, layer and scheme; a link opens that view once the model is loaded,
//    Back/Forward step through what was shown, a reload with the hash comes back to it, and a
//    layer the model does not have is said, not ignored;
//  - every chart exports as a standalone SVG (parsed with DOMParser) and a PNG (signature and
//    size read from its IHDR), every table as CSV (read back by Python's csv module and
//    compared with the table's rows and with analyze() in Node);
//  - `/` focuses the filter, Escape leaves it; dark mode follows prefers-color-scheme
//    (screenshots in tests/artifacts/links-*.png: look at them).
import assert from 'node:assert/strict';
import fs from 'node:fs';
import os from 'node:os';
import path from 'node:path';
import { after, before, describe, test } from 'node:test';
import { analyze } from '../../web/src/index.js';
import { formatDb } from '../../web/src/format.js';
import { analysisLayersCsv } from '../../web/src/export/csv.js';
import { formatLink, parseLink, schemeOfSlug, schemeSlug, VIEWS } from '../../web/src/links.js';
import { SCHEMES } from '../../web/src/schemes.js';
import { fetchedModelFiles, root, run, runCli } from './helpers.mjs';
import { artifacts, launch, newPage, noChromium, screenshot, serve } from './chromium.mjs';

const appFile = path.join(root, 'web', 'dist', 'app', 'index.html');
const example = fetchedModelFiles().find((f) => f.endsWith('mlsd_320x320_tiny.onnx'));
const skip = noChromium || (!fs.existsSync(appFile) ? 'app not built' : !example ? 'example model not fetched' : false);
const tmp = fs.mkdtempSync(path.join(os.tmpdir(), 'quantlens-links-'));

describe('links: the hash format', () => {
  test('every view, layer name and scheme goes through the hash and back', () => {
    const names = ['Conv__293', 'a&b=c#d/e%f+g h', 'StatefulPartitionedCall/functional_1/conv2d/Conv2D', 'ünï/ço∂e', '', '='];
    const schemes = [...SCHEMES, 'int4Block64'];
    for (const { key } of VIEWS)
      for (const layer of names)
        for (const scheme of schemes) {
          const hash = formatLink({ view: key, layer, scheme });
          assert.match(hash, /^#view=[a-z]+&layer=[^&#]*&scheme=[a-z0-9-]+$/, hash);
          assert.deepEqual(parseLink(hash), { view: key, layer, scheme, problems: [] }, hash);
        }
    assert.equal(
      formatLink({ view: 'layer', layer: 'Conv__293', scheme: 'int8PerChannel' }),
      '#view=layer&layer=Conv__293&scheme=int8-pc',
    );
    assert.deepEqual(SCHEMES.map(schemeSlug), ['int8-pt', 'int8-pc', 'int4-pt', 'int4-pc', 'int4-b32', 'int4-b128']);
    for (const s of SCHEMES) assert.equal(schemeOfSlug(s), s); // the key itself is accepted
  });

  test('what a link names that no view or scheme is, is a problem with a message; anchors are not links', () => {
    const bad = parseLink('#view=graphs&layer=x&scheme=int3-pc');
    assert.equal(bad.view, null);
    assert.equal(bad.layer, 'x');
    assert.equal(bad.scheme, null);
    assert.deepEqual(
      bad.problems.map((p) => p.code),
      ['UNKNOWN_VIEW', 'UNKNOWN_SCHEME'],
    );
    assert.match(bad.problems[0].message, /"graphs".*model, graph, layer, equalization, compression, compare/);
    assert.equal(parseLink('#view=layer&layer=%E0%A4%A').problems[0].code, 'BAD_LINK');
    for (const h of ['', '#', '#top', '#section-2'])
      assert.deepEqual(parseLink(h), { view: null, layer: null, scheme: null, problems: [] });
    // a view another page has (the graph view, once it joins VIEWS)
    assert.equal(parseLink('#view=graph', { views: ['model', 'graph'] }).view, 'graph');
  });
});

// ---------------------------------------------------------------- in Chromium
describe('links, exports, keys and dark mode in Chromium', { skip }, () => {
  let browser;
  let server;
  let base;
  let analysis;
  let reportFile;
  before(async () => {
    if (skip) return;
    browser = await launch();
    server = await serve(path.dirname(appFile), { '/examples/': path.dirname(example) });
    base = `http://127.0.0.1:${server.address().port}/`;
    analysis = await analyze(example);
    reportFile = path.join(tmp, 'mlsd.report.html');
    // with a comparison: the model against its equalized copy (written by the CLI)
    const copy = path.join(tmp, 'mlsd.equalized.onnx');
    const e = await runCli(['equalize', example, '-o', copy]);
    assert.equal(e.code, 0, e.stderr);
    const r = await runCli(['report', example, '-o', reportFile, '--equalize', '--compare', copy]);
    assert.equal(r.code, 0, r.stderr);
  });
  after(async () => {
    if (browser) await browser.close();
    if (server) server.close();
    fs.rmSync(tmp, { recursive: true, force: true });
  });

  async function openPage(url, { colorScheme = 'light' } = {}) {
    const page = await newPage(browser, { viewport: { width: 1280, height: 900 }, acceptDownloads: true, colorScheme });
    await page.goto(url);
    await page.waitForFunction(() => document.body.dataset.state === 'idle' || document.body.dataset.mode === 'report');
    return page;
  }

  async function openExample(page) {
    await page.click('#ql-example');
    await page.waitForFunction(() => !['busy', 'idle'].includes(document.body.dataset.state), null, { timeout: 120000 });
    assert.equal(await page.evaluate(() => document.body.dataset.state), 'done', await page.textContent('#ql-error'));
  }

  // What the page shows: the tab, the layer picked in the Layer tab, the scheme, the hash.
  const shown = (page) =>
    page.evaluate(() => ({
      tab: document.querySelector('.ql-tabs [aria-selected="true"]')?.dataset.tab,
      hash: decodeURIComponent(location.hash),
      note: document.querySelector('#ql-note')?.hidden ? '' : document.querySelector('#ql-note')?.textContent,
      noteCode: document.querySelector('#ql-note')?.dataset.code || '',
    }));
  const waitTab = (page, tab) => page.waitForSelector(`#ql-tab-${tab}:not([hidden]) .ql-tab-body > *`);
  const layerShown = (page) => page.$eval('#ql-layer-select', (s) => Number(s.value));

  test(
    'a link opens the same view, layer and scheme once the model is loaded; Back and Forward; reload',
    { skip, timeout: 300000 },
    async () => {
      const k = analysis.layers.findIndex((l) => l.name === 'Conv__266');
      assert.ok(k >= 0);
      const page = await openPage(`${base}#view=layer&layer=Conv__266&scheme=int8-pc`);
      assert.equal(new URL(page.url()).hash, '#view=layer&layer=Conv__266&scheme=int8-pc'); // kept while no model is open
      await openExample(page);
      await waitTab(page, 'layer');
      assert.equal(await layerShown(page), k);
      assert.deepEqual(await shown(page), {
        tab: 'layer',
        hash: '#view=layer&layer=Conv__266&scheme=int8-pc',
        note: '',
        noteCode: '',
      });
      // the layer view's SQNR table marks the chosen scheme's row, and the model view uses it
      await page.click('#ql-tabbtn-model');
      await waitTab(page, 'model');
      assert.equal(await page.$eval('select.ql-scheme', (s) => s.value), 'int8PerChannel');
      assert.equal((await shown(page)).hash, '#view=model&layer=Conv__266&scheme=int8-pc');

      // a row opens its layer: a new history entry
      const j = analysis.summary.ranking[0];
      const lengthBefore = await page.evaluate(() => history.length);
      await page.click(`table.ql-layer-table tr[data-position="${j}"] td[data-col="name"]`);
      await waitTab(page, 'layer');
      assert.equal(await layerShown(page), j);
      assert.equal((await shown(page)).hash, `#view=layer&layer=${analysis.layers[j].name}&scheme=int8-pc`);
      assert.equal(await page.evaluate(() => history.length), lengthBefore + 1);
      // the layer picker too
      await page.selectOption('#ql-layer-select', String(k));
      await page.waitForFunction((n) => decodeURIComponent(location.hash).includes(`layer=${n}&`), 'Conv__266');

      // Back: the row's layer; Back: the model view; Forward twice: the picked layer again
      await page.goBack();
      await page.waitForFunction((n) => Number(document.querySelector('#ql-layer-select')?.value) === n, j);
      assert.equal((await shown(page)).tab, 'layer');
      await page.goBack();
      await page.waitForFunction(() => !document.querySelector('#ql-tab-model').hidden);
      assert.equal((await shown(page)).hash, '#view=model&layer=Conv__266&scheme=int8-pc');
      await page.goForward();
      await page.goForward();
      await page.waitForFunction(
        (n) => !document.querySelector('#ql-tab-layer').hidden && Number(document.querySelector('#ql-layer-select').value) === n,
        k,
      );

      // the scheme is a minor change: the hash follows without a history entry
      await page.click('#ql-tabbtn-model');
      await waitTab(page, 'model');
      const entries = await page.evaluate(() => history.length);
      await page.selectOption('select.ql-scheme', 'int4PerChannel');
      await page.waitForFunction(() => location.hash.endsWith('scheme=int4-pc'));
      assert.equal(await page.evaluate(() => history.length), entries);

      // reload with the hash, open the model again: the same view
      await page.click('#ql-tabbtn-layer');
      await waitTab(page, 'layer');
      const hash = (await shown(page)).hash;
      await page.reload();
      await page.waitForFunction(() => document.body.dataset.state === 'idle');
      await openExample(page);
      await waitTab(page, 'layer');
      assert.equal(await layerShown(page), k);
      assert.equal((await shown(page)).hash, hash);
      await page.click('#ql-tabbtn-model');
      await waitTab(page, 'model');
      assert.equal(await page.$eval('select.ql-scheme', (s) => s.value), 'int4PerChannel');
      assert.deepEqual(page.errors, []);
      await page.close();
    },
  );

  test('a link naming a layer, view or scheme the model does not have says so', { skip, timeout: 300000 }, async () => {
    const page = await openPage(`${base}#view=layer&layer=no%2Fsuch%20layer&scheme=int8-pc`);
    await openExample(page);
    await waitTab(page, 'layer');
    const s = await shown(page);
    assert.equal(s.noteCode, 'UNKNOWN_LAYER');
    assert.match(s.note, /mlsd_320x320_tiny\.onnx has no layer named "no\/such layer"; showing Conv__293 instead/);
    assert.equal(
      await layerShown(page),
      analysis.layers.findIndex((l) => l.name === 'Conv__293'),
    );
    await screenshot(page, 'links-unknown-layer');
    // the hash now says what is shown
    assert.equal(s.hash, '#view=layer&layer=Conv__293&scheme=int8-pc');

    const other = await openPage(`${base}#view=graphs&scheme=int9-pc`);
    await openExample(other);
    const o = await shown(other);
    assert.equal(o.noteCode, 'UNKNOWN_VIEW UNKNOWN_SCHEME');
    assert.match(o.note, /view "graphs", which this page does not have/);
    assert.equal(o.tab, 'model');
    assert.deepEqual([...page.errors, ...other.errors], []);
    await page.close();
    await other.close();
  });

  test('the saved report opened from file:// with a link; Back works there', { skip, timeout: 300000 }, async () => {
    const name = 'Conv__246';
    const k = analysis.layers.findIndex((l) => l.name === name);
    const page = await openPage(`file://${reportFile}#view=layer&layer=${name}&scheme=int4-pc`);
    await waitTab(page, 'layer');
    assert.equal(await layerShown(page), k);
    await page.click('#ql-tabbtn-equalization');
    await waitTab(page, 'equalization');
    assert.equal((await shown(page)).hash, `#view=equalization&layer=${name}&scheme=int4-pc`);
    await page.goBack();
    await page.waitForFunction(() => !document.querySelector('#ql-tab-layer').hidden);
    await page.click('#ql-tabbtn-model');
    await waitTab(page, 'model');
    assert.equal(await page.$eval('select.ql-scheme', (s) => s.value), 'int4PerChannel');
    const bad = await openPage(`file://${reportFile}#view=layer&layer=Conv__999`);
    await waitTab(bad, 'layer');
    assert.equal((await shown(bad)).noteCode, 'UNKNOWN_LAYER');
    assert.deepEqual([...page.errors, ...bad.errors], []);
    await page.close();
    await bad.close();
  });

  // ---------------------------------------------------------------- exports
  // Every entry of a tab's Export menu, downloaded: [{kind, key, format, file, bytes}].
  async function exportAll(page, tab) {
    await page.click(`#ql-tab-${tab} .ql-export summary`);
    await page.waitForSelector(`#ql-tab-${tab} .ql-export[open] .ql-export-list li`);
    const buttons = await page.$$eval(`#ql-tab-${tab} .ql-export-list button`, (bs) =>
      bs.map((b) => ({
        kind: b.closest('li').dataset.kind,
        key: b.closest('li').dataset.key,
        format: b.dataset.format,
        file: b.dataset.file,
      })),
    );
    const out = [];
    for (const b of buttons) {
      const [download] = await Promise.all([
        page.waitForEvent('download'),
        page.click(`#ql-tab-${tab} .ql-export-list button[data-file="${b.file}"]`),
      ]);
      assert.equal(download.suggestedFilename(), b.file);
      const file = path.join(tmp, b.file);
      await download.saveAs(file);
      out.push({ ...b, bytes: fs.readFileSync(file), path: file });
    }
    await page.click(`#ql-tab-${tab} .ql-export summary`); // closed again
    return out;
  }

  // An exported file kept in tests/artifacts/ to look at.
  function keep(files, key, format, name) {
    const f = files.find((x) => x.key === key && x.format === format);
    assert.ok(f, `${key}.${format} exported`);
    fs.mkdirSync(artifacts, { recursive: true });
    fs.copyFileSync(f.path, path.join(artifacts, name));
  }

  // An SVG parsed by the browser's DOMParser: no parser error, its size and what it holds.
  const parseSvg = (page, text) =>
    page.evaluate((t) => {
      const doc = new DOMParser().parseFromString(t, 'image/svg+xml');
      const svg = doc.documentElement;
      return {
        error: doc.querySelector('parsererror')?.textContent || null,
        tag: svg.tagName,
        ns: svg.namespaceURI,
        width: Number(svg.getAttribute('width')),
        height: Number(svg.getAttribute('height')),
        background: svg.querySelector(':scope > rect')?.getAttribute('fill'),
        font: svg.getAttribute('style'),
        title: svg.querySelector(':scope > g > text')?.textContent,
        marks: svg.querySelectorAll('circle, path, line, rect').length,
        classes: svg.querySelectorAll('[class]').length,
        styled: svg.querySelectorAll('[style]').length,
      };
    }, text);

  // A PNG: its signature, and width and height from the IHDR chunk.
  function pngSize(bytes) {
    assert.deepEqual([...bytes.subarray(0, 8)], [0x89, 0x50, 0x4e, 0x47, 0x0d, 0x0a, 0x1a, 0x0a], 'PNG signature');
    assert.equal(bytes.subarray(12, 16).toString('latin1'), 'IHDR');
    return { width: bytes.readUInt32BE(16), height: bytes.readUInt32BE(20) };
  }

  // A CSV file read back by Python's csv module (an independent RFC 4180 reader).
  async function readCsv(file) {
    const r = await run('/usr/bin/python3', [
      '-c',
      'import csv, json, sys; print(json.dumps(list(csv.reader(open(sys.argv[1], newline="", encoding="utf-8")))))',
      file,
    ]);
    assert.equal(r.code, 0, r.stderr);
    return JSON.parse(r.stdout);
  }

  async function checkCharts(page, files, { background }) {
    const charts = files.filter((f) => f.kind === 'chart');
    const keys = [...new Set(charts.map((f) => f.key))];
    for (const key of keys) {
      const svg = charts.find((f) => f.key === key && f.format === 'svg');
      const png = charts.find((f) => f.key === key && f.format === 'png');
      assert.ok(svg && png, `${key}: SVG and PNG`);
      const s = await parseSvg(page, svg.bytes.toString('utf8'));
      assert.equal(s.error, null, `${svg.file}: ${s.error}`);
      assert.equal(s.tag, 'svg');
      assert.equal(s.ns, 'http://www.w3.org/2000/svg');
      assert.ok(s.width > 100 && s.height > 60, `${svg.file}: ${s.width}x${s.height}`);
      assert.equal(s.background, background, `${svg.file}: background`);
      assert.match(s.font, /font-family:/);
      assert.ok(s.marks > 3, `${svg.file}: ${s.marks} marks`);
      assert.equal(s.classes, 0, `${svg.file}: styles are inlined, no class is left to a style sheet`);
      assert.ok(s.styled > 3);
      const p = pngSize(png.bytes);
      assert.deepEqual(p, { width: 2 * s.width, height: 2 * s.height }, `${png.file}: drawn at 2x`);
    }
    return keys;
  }

  test(
    'every chart as SVG and PNG and every table as CSV, from the app: Model and Layer tabs',
    { skip, timeout: 300000 },
    async () => {
      const page = await openPage(base);
      await openExample(page);
      await waitTab(page, 'model');
      // a filter: the CSV holds the rows shown
      await page.fill('input.ql-filter-name', 'Conv__2');
      const model = await exportAll(page, 'model');
      const keys = await checkCharts(page, model, { background: 'rgb(255, 255, 255)' });
      assert.deepEqual(keys, ['layers']);
      keep(model, 'layers', 'png', 'links-export-model-layers.png');
      assert.ok(
        model.every((f) => f.file.startsWith('mlsd_320x320_tiny.model.')),
        model.map((f) => f.file).join(' '),
      );

      const table = model.find((f) => f.kind === 'table');
      assert.equal(table.file, 'mlsd_320x320_tiny.model.layer-table.csv');
      const csv = await readCsv(table.path);
      const dom = await page.$$eval('table.ql-layer-table', ([t]) => ({
        head: [...t.tHead.rows[0].cells].map((c) => c.querySelector('span').textContent),
        rows: [...t.tBodies[0].rows]
          .filter((r) => !r.hidden)
          .map((r) => [...r.cells].map((c) => (c.dataset.col === 'name' ? c.dataset.name : c.textContent))),
        positions: [...t.tBodies[0].rows].filter((r) => !r.hidden).map((r) => Number(r.dataset.position)),
      }));
      assert.deepEqual(csv[0], dom.head);
      assert.deepEqual(csv.slice(1), dom.rows);
      const expected = analysis.layers.filter((l) => l.name.includes('Conv__2'));
      assert.equal(csv.length - 1, expected.length);
      const col = (name) => csv[0].indexOf(name);
      csv.slice(1).forEach((row, i) => {
        const l = analysis.layers[dom.positions[i]];
        assert.equal(row[col('name')], l.name);
        assert.equal(row[col('INT8/T')], formatDb(l.sqnr.int8PerTensor), l.name);
        assert.equal(row[col('outlier ch.')], String(l.outlierChannels.length), l.name);
      });
      // the full-precision data: the same bytes as analysisLayersCsv() in Node
      const data = model.find((f) => f.kind === 'data' && f.key === 'layers');
      assert.equal(data.bytes.toString('utf8'), analysisLayersCsv(analysis));

      // the Layer tab: its five charts and the input-channel chart, its tables
      await page.click('#ql-tabbtn-layer');
      await waitTab(page, 'layer');
      const layer = await exportAll(page, 'layer');
      const layerKeys = await checkCharts(page, layer, { background: 'rgb(255, 255, 255)' });
      for (const k of ['channels', 'mean-std', 'min-max', 'relative-range', 'histogram', 'input-channels'])
        assert.ok(layerKeys.includes(k), `${k} in ${layerKeys}`);
      const shownLayer = analysis.layers[await layerShown(page)].name;
      assert.ok(layer.every((f) => f.file.startsWith(`mlsd_320x320_tiny.layer.${shownLayer}.`)));
      const tables = layer.filter((f) => f.kind === 'table');
      assert.ok(tables.length >= 2, tables.map((f) => f.file).join(' '));
      for (const t of tables) {
        const rows = await readCsv(t.path);
        assert.ok(rows.length >= 2 && rows.every((r) => r.length === rows[0].length), t.file);
      }
      assert.deepEqual(page.errors, []);
      await page.close();
    },
  );

  test('exports from the saved report (file://, its CSP): every tab', { skip, timeout: 300000 }, async () => {
    const page = await openPage(`file://${reportFile}`);
    await waitTab(page, 'model');
    const model = await exportAll(page, 'model');
    await checkCharts(page, model, { background: 'rgb(255, 255, 255)' });
    const csv = await readCsv(model.find((f) => f.kind === 'table').path);
    assert.equal(csv.length - 1, analysis.layers.length);
    await page.click('#ql-tabbtn-equalization');
    await waitTab(page, 'equalization');
    const eq = await exportAll(page, 'equalization');
    const eqKeys = await checkCharts(page, eq, { background: 'rgb(255, 255, 255)' });
    for (const k of eqKeys) keep(eq, k, 'png', `links-export-report-eq-${k}.png`);
    assert.ok(eqKeys.length >= 2, eqKeys.join(' '));
    assert.ok(eq.some((f) => f.kind === 'data'));
    await page.click('#ql-tabbtn-compare');
    await waitTab(page, 'compare');
    const cmp = await exportAll(page, 'compare');
    const cmpKeys = await checkCharts(page, cmp, { background: 'rgb(255, 255, 255)' });
    for (const k of ['sqnr', 'ranges']) assert.ok(cmpKeys.includes(k), `${k} in ${cmpKeys}`);
    // the pairs table as shown: one row per pair, read back as written
    const pairs = cmp.find((f) => f.kind === 'table');
    const rows = await readCsv(pairs.path);
    const domRows = await page.$$eval('#ql-tab-compare table.ql-table', ([t]) => t.tBodies[0].rows.length);
    assert.equal(rows.length - 1, domRows);
    assert.ok(cmp.some((f) => f.kind === 'data' && f.key === 'pairs'));
    assert.deepEqual(page.errors, []);
    await page.close();
  });

  // ---------------------------------------------------------------- keyboard, dark mode
  test('`/` focuses the filter (not while typing), Escape leaves it', { skip, timeout: 300000 }, async () => {
    const page = await openPage(base);
    await openExample(page);
    await page.click('#ql-tabbtn-layer');
    await waitTab(page, 'layer');
    await page.keyboard.press('/');
    await page.waitForFunction(() => document.activeElement?.matches('input.ql-filter-name'));
    assert.equal((await shown(page)).tab, 'model'); // the Layer tab has no search box: the Model tab's
    await page.keyboard.type('Conv__29');
    assert.equal(await page.inputValue('input.ql-filter-name'), 'Conv__29'); // no '/' typed into it
    await page.keyboard.type('/'); // typing: a '/' is text
    assert.equal(await page.inputValue('input.ql-filter-name'), 'Conv__29/');
    await page.keyboard.press('Backspace');
    await page.keyboard.press('Escape');
    assert.equal(await page.evaluate(() => document.activeElement?.matches('input.ql-filter-name')), false);
    assert.equal(await page.inputValue('input.ql-filter-name'), 'Conv__29'); // the filter stays
    assert.equal(
      await page.textContent('[data-field="shown"]'),
      `${analysis.layers.filter((l) => l.name.includes('Conv__29')).length} of ${analysis.layers.length} layers`,
    );
    // Escape closes an open Export menu; so does a click elsewhere
    await page.click('#ql-tab-model .ql-export summary');
    await page.waitForSelector('#ql-tab-model .ql-export[open]');
    await page.keyboard.press('Escape');
    await page.waitForSelector('#ql-tab-model .ql-export:not([open])');
    await page.click('#ql-tab-model .ql-export summary');
    await page.waitForSelector('#ql-tab-model .ql-export[open]');
    await page.click('#ql-tab-model h2');
    await page.waitForSelector('#ql-tab-model .ql-export:not([open])');
    // in another field, '/' is text
    await page.focus('#ql-tab-model select.ql-filter-op');
    await page.keyboard.press('/');
    assert.equal(await page.evaluate(() => document.activeElement?.matches('select.ql-filter-op')), true);
    assert.deepEqual(page.errors, []);
    await page.close();
  });

  test('dark mode follows prefers-color-scheme: page, views, charts and exports', { skip, timeout: 300000 }, async () => {
    const page = await openPage(base, { colorScheme: 'dark' });
    await openExample(page);
    await waitTab(page, 'model');
    const colours = () =>
      page.evaluate(() => {
        const cs = (sel, p) => (document.querySelector(sel) ? getComputedStyle(document.querySelector(sel))[p] : null);
        return {
          body: cs('body', 'backgroundColor'),
          text: cs('.ql-view', 'color'),
          th: cs('table.ql-layer-table th', 'backgroundColor'),
          axis: cs('.ql-axis text', 'fill'),
          high: cs('.ql-risk-high', 'backgroundColor'),
        };
      });
    const dark = await colours();
    assert.equal(dark.body, 'rgb(22, 24, 27)');
    assert.equal(dark.text, 'rgb(230, 230, 230)');
    assert.equal(dark.th, 'rgb(37, 40, 44)');
    assert.equal(dark.axis, 'rgb(207, 210, 214)');
    await screenshot(page, 'links-dark-model');
    await page.click('#ql-tabbtn-layer');
    await waitTab(page, 'layer');
    // the mean line and the worst channel (palette black) turn light; the risk colours stay
    const ink = await page.$$eval('[data-chart="channels"] [stroke="#000000"], [data-chart="channels"] [stroke="#000"]', (ns) => [
      ...new Set(ns.map((n) => getComputedStyle(n).stroke)),
    ]);
    assert.deepEqual(ink, ['rgb(230, 230, 230)']);
    await screenshot(page, 'links-dark-layer');
    const files = await exportAll(page, 'layer');
    await checkCharts(page, files, { background: 'rgb(22, 24, 27)' });
    keep(files, 'channels', 'png', 'links-dark-channels-export.png'); // the dark PNG, to look at

    // light: the same page, white
    await page.emulateMedia({ colorScheme: 'light' });
    const light = await colours();
    assert.equal(light.body, 'rgb(255, 255, 255)');
    assert.equal(light.text, 'rgb(26, 26, 26)');
    assert.equal(light.high, dark.high); // risk colours are the same in both
    assert.deepEqual(page.errors, []);
    await page.close();
  });
});
