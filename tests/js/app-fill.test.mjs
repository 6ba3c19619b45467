// The Model tab filling in as layers arrive (issue 13), in headless Chromium: what the user
// chooses while it fills (a sort, a filter typed, its caret, a layer selected, the table's
// scroll) is kept by every refresh and by the whole analysis at the end.
//
// The fill is made step by step, not by racing the clock: the page's Worker is wrapped (an
// init script) so that the messages the engine's worker sends to the page (progress, each
// finished layer, the result) are held in a queue, and the test hands them to the app a
// number at a time. Each step waits for the app to have drawn what it was given (the rows it
// says it shows, body[data-rows]), so the test passes on a machine of any speed.
import assert from 'node:assert/strict';
import fs from 'node:fs';
import path from 'node:path';
import { after, before, test } from 'node:test';
import { analyze } from '../../web/src/index.js';
import { fetchedModelFiles, root } from './helpers.mjs';
import { launch, newPage, noChromium, screenshot, serve } from './chromium.mjs';

const appFile = path.join(root, 'web', 'dist', 'app', 'index.html');
const model = fetchedModelFiles().find((f) => f.endsWith('mlsd_320x320_tiny.onnx')); // 41 weight layers
const skip = noChromium || (!fs.existsSync(appFile) ? 'app not built' : !model ? 'M-LSD tiny not fetched' : false);

let browser;
let server;
let base;
let expected;
before(async () => {
  if (skip) return;
  expected = await analyze(model);
  browser = await launch();
  server = await serve(path.dirname(appFile));
  base = `http://127.0.0.1:${server.address().port}/`;
});
after(async () => {
  if (browser) await browser.close();
  if (server) server.close();
});

// Runs in the page before its scripts: every Worker's messages to the page wait in
// window.__gate.queue until window.__gate.release(n) hands over the first n (or all).
function holdWorkerMessages() {
  const Real = window.Worker;
  const gate = { queue: [], layers: 0 }; // layers: how many 'layer' messages came, held or not
  // Hands over the queued messages up to and including the n-th 'layer' one (all: Infinity).
  gate.releaseLayers = (n) => {
    let layers = 0;
    while (gate.queue.length && layers < n) {
      const { worker, event } = gate.queue.shift();
      if (event.data && event.data.type === 'layer') layers++;
      if (worker.__handler) worker.__handler.call(worker, event);
    }
    return layers;
  };
  window.Worker = class extends Real {
    constructor(...args) {
      super(...args);
      super.onmessage = (event) => {
        if (event.data && event.data.type === 'layer') gate.layers++;
        gate.queue.push({ worker: this, event });
      };
    }
    set onmessage(f) {
      this.__handler = f;
    }
    get onmessage() {
      return this.__handler;
    }
  };
  window.__gate = gate;
}

const drawnRows = (page, n) => page.waitForFunction((k) => document.body.dataset.rows === String(k), n, { timeout: 120000 });
// Hands the app the worker's messages up to the n-th layer, and waits until it has drawn them.
async function release(page, n) {
  await queued(page, n);
  await page.evaluate((k) => window.__gate.releaseLayers(k - Number(document.body.dataset.rows || 0)), n);
  await drawnRows(page, n);
}
const queued = (page, n) => page.waitForFunction((k) => window.__gate.layers >= k, n, { timeout: 120000 });

// The table as shown: the names of the visible rows in order, and what the controls say.
const shown = (page) =>
  page.evaluate(() => {
    const view = document.querySelector('#ql-tab-model .ql-model-view');
    const input = view.querySelector('input.ql-filter-name');
    const rows = [...view.querySelectorAll('table.ql-layer-table tbody tr[data-position]')];
    const sorted = view.querySelector(
      'table.ql-layer-table th[aria-sort="ascending"], table.ql-layer-table th[aria-sort="descending"]',
    );
    return {
      visible: rows.filter((r) => !r.hidden).map((r) => r.querySelector('td[data-col="name"]').dataset.name),
      rows: rows.length,
      selected: rows
        .filter((r) => r.classList.contains('ql-selected'))
        .map((r) => r.querySelector('td[data-col="name"]').dataset.name),
      sort: sorted ? [sorted.dataset.sort, sorted.getAttribute('aria-sort')] : null,
      text: input.value,
      focused: document.activeElement === input,
      caret: [input.selectionStart, input.selectionEnd],
      scrollTop: view.querySelector('.ql-table-wrap').scrollTop,
      scrollable: view.querySelector('.ql-table-wrap').scrollHeight - view.querySelector('.ql-table-wrap').clientHeight,
    };
  });

// What the table should show: the layers so far (in graph order) whose name contains `text`,
// by INT8 per-tensor SQNR ascending (ties in graph order).
function expectedRows(layers, text) {
  return layers
    .map((l, k) => [l, k])
    .filter(([l]) => l.name.toLowerCase().includes(text.toLowerCase()))
    .sort(([a, i], [b, j]) => a.sqnr.int8PerTensor - b.sqnr.int8PerTensor || i - j)
    .map(([l]) => l.name);
}

test(
  'a sort, a filter, its caret, a selection and the scroll survive the fill and its end',
  { skip, timeout: 300000 },
  async () => {
    const page = await newPage(browser, { viewport: { width: 1280, height: 700 } });
    await page.addInitScript(holdWorkerMessages);
    await page.goto(base);
    await page.waitForFunction(() => document.body.dataset.state === 'idle');
    const layers = expected.layers;
    assert.ok(layers.length >= 30, `${layers.length} layers`);

    await page.setInputFiles('#ql-file', model);
    // The first 12 layers.
    await release(page, 12);
    assert.equal(await page.evaluate(() => document.body.dataset.state), 'busy');

    // Sort by INT8 per-tensor SQNR (ascending: the worst first), select a layer.
    await page.click('#ql-tab-model th[data-sort="int8PerTensor"]');
    const pick = expectedRows(layers.slice(0, 12), '')[1];
    await page.click(`#ql-tab-model tr[data-position] td[data-col="name"][data-name="${pick}"]`);
    // More layers, drawn: the choices hold.
    await release(page, 24);
    let s = await shown(page);
    assert.deepEqual(s.sort, ['int8PerTensor', 'ascending'], 'the sort chosen is kept as layers arrive');
    assert.deepEqual(s.visible, expectedRows(layers.slice(0, 24), ''), 'the rows that arrive are placed by it');
    assert.deepEqual(s.selected, [pick], 'the layer selected stays selected');
    // The table scrolled: it stays put as more arrive.
    assert.ok(s.scrollable > 60, `the table scrolls (${s.scrollable} px)`);
    await page.$eval('#ql-tab-model .ql-table-wrap', (w) => {
      w.scrollTop = 60;
    });
    await release(page, 28);
    s = await shown(page);
    assert.equal(s.scrollTop, 60, "the table's scroll stays put");
    assert.deepEqual(s.visible, expectedRows(layers.slice(0, 28), ''));

    // A filter typed, the caret moved back two characters.
    await page.click('#ql-tab-model input.ql-filter-name');
    await page.keyboard.type('conv__27');
    await page.keyboard.press('ArrowLeft');
    await page.keyboard.press('ArrowLeft');
    assert.deepEqual((await shown(page)).caret, [6, 6]);
    await release(page, 32);
    s = await shown(page);
    assert.equal(s.rows, 32);
    assert.deepEqual(s.sort, ['int8PerTensor', 'ascending'], 'the sort chosen is kept as layers arrive');
    assert.equal(s.text, 'conv__27', 'the filter keeps its text');
    assert.ok(s.focused, 'the filter keeps the focus');
    assert.deepEqual(s.caret, [6, 6], 'and its caret');
    assert.deepEqual(s.visible, expectedRows(layers.slice(0, 32), 'conv__27'), 'the rows that arrive are sorted and filtered');
    assert.deepEqual(s.selected, [pick], 'the layer selected stays selected');
    // Typing goes on where the caret is.
    await page.keyboard.type('9');
    assert.equal((await shown(page)).text, 'conv__927');
    await page.keyboard.press('Backspace');

    // The rest, and the result: the whole analysis shown as chosen.
    // messages sent after the last release (the result among them) are handed over as they come
    await page.waitForFunction(
      () => {
        window.__gate.releaseLayers(Infinity);
        return document.body.dataset.state !== 'busy';
      },
      null,
      { timeout: 120000, polling: 50 },
    );
    assert.equal(await page.evaluate(() => document.body.dataset.state), 'done', await page.textContent('#ql-error'));
    s = await shown(page);
    assert.equal(s.rows, layers.length);
    assert.deepEqual(s.sort, ['int8PerTensor', 'ascending'], 'the sort is kept by the whole analysis');
    assert.equal(s.text, 'conv__27', 'the filter too');
    assert.ok(s.focused, 'with the focus');
    assert.deepEqual(s.caret, [6, 6]);
    const final = expectedRows(layers, 'conv__27');
    assert.ok(final.length > 4 && final.length < layers.length, `${final.length} rows filtered`);
    assert.deepEqual(s.visible, final, 'every layer placed by the sort and the filter');
    assert.deepEqual(s.selected, [pick], 'the layer selected while layers arrived is the one selected');
    assert.equal(await page.textContent('#ql-tab-model [data-field="shown"]'), `${final.length} of ${layers.length} layers`);
    await page.mouse.move(1, 1); // no tooltip over the view
    await screenshot(page, 'app-fill-final', { fullPage: false });
    assert.deepEqual(page.errors, []);
    await page.close();
  },
);
