// Big models in the app, in headless Chromium (issue 13): an LLM-shaped model whose weights
// are in several external data files, opened by picking or dropping its folder (served and
// from disk) and by picking its files; a folder with no file the browser gives (empty, or
// symbolic links only); a missing data file; several models in one folder; layers shown as they arrive;
// Cancel (Escape) in the middle of an analysis; a model file over 4 GB refused with a
// message; and, opt-in (QL_BIG_MODEL=1), a model file over 2 GB with its weights inline.
// The numbers shown are checked against analyze() in Node on the same files, and the inline
// model against the independent numpy reference. Screenshots go to tests/artifacts/.
import assert from 'node:assert/strict';
import fs from 'node:fs';
import os from 'node:os';
import path from 'node:path';
import { after, before, test } from 'node:test';
import { analyze, compare } from '../../web/src/index.js';
import { formatDb } from '../../web/src/format.js';
import { root, run, runReference } from './helpers.mjs';
import { launch, newPage, noChromium, screenshot, serve } from './chromium.mjs';

const PY = '/usr/bin/python3';
const appFile = path.join(root, 'web', 'dist', 'app', 'index.html');
const skip = noChromium || (!fs.existsSync(appFile) ? 'app not built' : false);
const tmp = fs.mkdtempSync(path.join(os.tmpdir(), 'quantlens-bigapp-'));
// QL_BIG_MODEL=1 writes the >2 GB model; QL_BIG_MODEL=FILE uses one written before by
// make_llm.py --preset llm-8x4096 --blocks 3 --dtype fp32 --inline FILE
const bigModel = process.env.QL_BIG_MODEL || '';
const big = bigModel === '1' || (bigModel !== '' && fs.existsSync(bigModel));

let browser;
let server;
let base;
// llm-small (2 blocks, d 512, fp16, 15 weight layers) with its weights in 3 data files.
const folder = path.join(tmp, 'llm-small');
const model = path.join(folder, 'llm-small.onnx');
let dataFiles;
let expected;

async function makeLlm(file, args) {
  fs.mkdirSync(path.dirname(file), { recursive: true });
  const r = await run(PY, [path.join(root, 'tools/bench/make_llm.py'), file, ...args], { timeout: 3600000 });
  assert.equal(r.code, 0, r.stderr);
  return JSON.parse(fs.readFileSync(`${file}.json`, 'utf8'));
}

before(async () => {
  if (skip) return;
  const manifest = await makeLlm(model, ['--preset', 'llm-small', '--files', '3']);
  dataFiles = manifest.files.map((f) => path.join(folder, f));
  assert.equal(dataFiles.length, 3);
  expected = await analyze(model); // Node, files beside the model
  browser = await launch();
  server = await serve(path.dirname(appFile));
  base = `http://127.0.0.1:${server.address().port}/`;
});
after(async () => {
  if (browser) await browser.close();
  if (server) server.close();
  fs.rmSync(tmp, { recursive: true, force: true });
});

async function openApp() {
  const page = await newPage(browser, { viewport: { width: 1280, height: 900 } });
  await page.goto(base);
  await page.waitForFunction(() => document.body.dataset.state === 'idle');
  return page;
}
const ended = (page) =>
  page.waitForFunction(() => ['done', 'error'].includes(document.body.dataset.state), null, { timeout: 600000 });
const state = (page) => page.evaluate(() => document.body.dataset.state);

// The model table as shown, against analyze() in Node: every layer, its outlier count and
// INT8 per-tensor SQNR as the app formats them.
async function checkTable(page, analysis) {
  const rows = await page.$$eval('table.ql-layer-table tbody tr[data-position]', (trs) =>
    trs.map((r) => ({
      position: Number(r.dataset.position),
      name: r.querySelector('td[data-col="name"]').textContent,
      outliers: r.querySelector('td[data-col="outliers"]').textContent,
      int8PerTensor: r.querySelector('td[data-col="int8PerTensor"]').textContent,
      int4Block32: r.querySelector('td[data-col="int4Block32"]').textContent,
    })),
  );
  assert.equal(rows.length, analysis.layers.length);
  for (const row of rows) {
    const l = analysis.layers[row.position];
    assert.equal(row.name, l.name);
    assert.equal(l.error, undefined, l.error && l.error.message);
    assert.equal(row.outliers, String(l.outlierChannels.length), `${l.name}: outlier channels`);
    assert.equal(row.int8PerTensor, formatDb(l.sqnr.int8PerTensor), `${l.name}: INT8 per-tensor`);
    assert.equal(row.int4Block32, formatDb(l.sqnr.int4Block32), `${l.name}: INT4 blocks of 32`);
  }
}

// After an error or a cancel: no table is left, and the page invites a pick again.
async function isEmptyAgain(page) {
  assert.equal(await page.$$eval('table.ql-layer-table', (t) => t.length), 0);
  assert.ok(await page.isVisible('#ql-empty'));
}

// Still usable: the folder opens to the end, with the table of the whole analysis.
async function opensTheFolder(page) {
  await page.setInputFiles('#ql-folder', folder);
  await ended(page);
  assert.equal(await state(page), 'done', await page.textContent('#ql-error'));
  await checkTable(page, expected);
  assert.deepEqual(page.errors, []);
}

test('a model in several external data files opens by picking its folder', { skip, timeout: 300000 }, async () => {
  const page = await openApp();
  await page.setInputFiles('#ql-folder', folder);
  await ended(page);
  assert.equal(await state(page), 'done', await page.textContent('#ql-error'));
  assert.equal(await page.textContent('#ql-model strong'), 'llm-small.onnx');
  await checkTable(page, expected);
  await screenshot(page, 'bigapp-folder-done', { fullPage: false });
  assert.deepEqual(page.errors, []);
  await page.close();
});

test('... and by picking the model with its data files', { skip, timeout: 300000 }, async () => {
  const page = await openApp();
  // the data files first: the model is found among them
  await page.setInputFiles('#ql-file', [...dataFiles, model]);
  await ended(page);
  assert.equal(await state(page), 'done', await page.textContent('#ql-error'));
  await checkTable(page, expected);
  assert.deepEqual(page.errors, []);
  await page.close();
});

test('a missing data file is an error naming it and saying what to pick', { skip, timeout: 300000 }, async () => {
  const page = await openApp();
  await page.setInputFiles('#ql-file', [model, dataFiles[0], dataFiles[1]]);
  await ended(page);
  assert.equal(await state(page), 'error');
  const text = await page.textContent('#ql-error');
  assert.match(text, /^MISSING_EXTERNAL_DATA: /);
  assert.ok(text.includes(`'${path.basename(dataFiles[2])}'`), text);
  assert.match(text, /select llm-small\.onnx together with every data file/);
  // The same from a folder without that file: the path in the folder is named.
  const partial = path.join(tmp, 'partial', 'llm');
  fs.mkdirSync(partial, { recursive: true });
  for (const f of [model, dataFiles[0], dataFiles[1]]) fs.copyFileSync(f, path.join(partial, path.basename(f)));
  await page.setInputFiles('#ql-folder', partial);
  await ended(page);
  assert.equal(await state(page), 'error');
  const again = await page.textContent('#ql-error');
  assert.match(again, /^MISSING_EXTERNAL_DATA: /);
  assert.ok(again.includes(`llm/${path.basename(dataFiles[2])}`), again);
  assert.match(again, /pick the folder that holds the model/);
  // the layers shown before the missing file was needed are gone with it
  assert.ok(await page.isHidden('#ql-tab-model'));
  await isEmptyAgain(page);
  await screenshot(page, 'bigapp-missing-data', { fullPage: false });
  // Still usable: the whole folder opens.
  await opensTheFolder(page);
  await page.close();
});

test('a folder holding two models: the user chooses which to open', { skip, timeout: 300000 }, async () => {
  const two = path.join(tmp, 'two');
  fs.mkdirSync(path.join(two, 'tiny'), { recursive: true });
  fs.cpSync(folder, two, { recursive: true });
  await makeLlm(path.join(two, 'tiny', 'tiny.onnx'), ['--preset', 'llm-tiny']);
  const page = await openApp();
  await page.setInputFiles('#ql-folder', two);
  await page.waitForSelector('#ql-choose:not([hidden])');
  const choices = await page.$$eval('#ql-choose button', (bs) => bs.map((b) => b.dataset.path));
  assert.deepEqual(choices, ['two/llm-small.onnx', 'two/tiny/tiny.onnx']);
  await screenshot(page, 'bigapp-choose', { fullPage: false });
  await page.click('#ql-choose button[data-path="two/tiny/tiny.onnx"]');
  await ended(page);
  assert.equal(await state(page), 'done', await page.textContent('#ql-error'));
  assert.equal(await page.textContent('#ql-model strong'), 'tiny.onnx');
  await checkTable(page, await analyze(path.join(two, 'tiny', 'tiny.onnx')));
  assert.ok(await page.isHidden('#ql-choose'));
  assert.deepEqual(page.errors, []);
  await page.close();
});

test('a model dropped together with its data files opens', { skip, timeout: 300000 }, async () => {
  // A drop made by a script in the page carries files, not directory entries: this checks
  // the plain list of several files (folders dropped from the desktop: dropPaths below).
  const tiny = path.join(tmp, 'drop', 'tiny.onnx');
  const manifest = await makeLlm(tiny, ['--preset', 'llm-tiny', '--files', '2']);
  const files = [tiny, ...manifest.files.map((f) => path.join(path.dirname(tiny), f))].map((f) => ({
    name: path.basename(f),
    b64: fs.readFileSync(f).toString('base64'),
  }));
  const page = await openApp();
  await page.evaluate((list) => {
    const dt = new DataTransfer();
    for (const f of list.reverse()) dt.items.add(new File([Uint8Array.from(atob(f.b64), (c) => c.charCodeAt(0))], f.name));
    document.dispatchEvent(new DragEvent('drop', { dataTransfer: dt, bubbles: true, cancelable: true }));
  }, files);
  await ended(page);
  assert.equal(await state(page), 'done', await page.textContent('#ql-error'));
  assert.equal(await page.textContent('#ql-model strong'), 'tiny.onnx');
  await checkTable(page, await analyze(tiny));
  assert.deepEqual(page.errors, []);
  await page.close();
});

// A drop from the desktop, as the browser makes it: the DevTools protocol's
// Input.dispatchDragEvent with file paths gives the page the same DataTransfer (folder
// entries and File System Access handles included) as a drag from the file manager.
async function dropPaths(page, paths) {
  const cdp = await page.context().newCDPSession(page);
  const data = { items: [], files: paths, dragOperationsMask: 1 };
  for (const type of ['dragEnter', 'dragOver', 'drop']) await cdp.send('Input.dispatchDragEvent', { type, x: 400, y: 400, data });
  await cdp.detach();
}

async function openFromDisk() {
  const page = await newPage(browser, { viewport: { width: 1280, height: 900 } });
  await page.goto(`file://${appFile}`);
  await page.waitForFunction(() => document.body.dataset.state === 'idle');
  return page;
}

// Served, the folder is walked through its entries (webkitGetAsEntry); opened from disk,
// Chromium cannot read a dropped folder's entries (readEntries fails with EncodingError on
// a file:// page), and the page walks its File System Access handles instead.
for (const [where, open] of [
  ['served', openApp],
  ['opened from disk', openFromDisk],
]) {
  test(`a folder dropped on the page opens (${where})`, { skip, timeout: 300000 }, async () => {
    const page = await open();
    await dropPaths(page, [folder]);
    await ended(page);
    assert.equal(await state(page), 'done', await page.textContent('#ql-error'));
    assert.equal(await page.textContent('#ql-model strong'), 'llm-small.onnx');
    await checkTable(page, expected);
    assert.deepEqual(page.errors, []);
    await page.close();
  });
}

test('a folder the browser gives no file of, picked or dropped, says so', { skip, timeout: 300000 }, async () => {
  // An empty folder, and one holding only symbolic links to the model and its data
  // (Chromium leaves links out of a folder picked or dropped; a Hugging Face cache's
  // snapshot folders are such links).
  const empty = path.join(tmp, 'empty');
  const links = path.join(tmp, 'links');
  fs.mkdirSync(empty, { recursive: true });
  fs.mkdirSync(links, { recursive: true });
  for (const f of [model, ...dataFiles]) fs.symlinkSync(f, path.join(links, path.basename(f)));
  const noFiles = /^NO_FILES: the folder holds no file the browser gives this page: it is empty, or holds only symbolic links/;
  for (const open of [openApp, openFromDisk])
    for (const dir of [empty, links]) {
      const page = await open();
      await dropPaths(page, [dir]);
      await page.waitForFunction(() => document.body.dataset.state === 'error');
      assert.match(await page.textContent('#ql-error'), noFiles);
      await isEmptyAgain(page);
      await page.close();
    }
  // With a model shown, it stays shown under the message; the folder input says the same
  // (Playwright gives the page no file of either folder).
  const page = await openApp();
  await opensTheFolder(page);
  await page.setInputFiles('#ql-folder', links);
  await page.waitForSelector('#ql-error[data-code="NO_FILES"]:not([hidden])');
  assert.match(await page.textContent('#ql-error'), noFiles);
  assert.equal(await state(page), 'done');
  await checkTable(page, expected);
  assert.deepEqual(page.errors, []);
  await page.close();
});

// A model large enough for a pool of workers (analyze's and compare's: 64 MB of weights or
// more), opened in the app with its data files: the app's engine worker starts the pool
// from its own script (a blob: URL it makes itself, which is what a page opened from disk
// allows), so the work goes to one worker per core. The progress line says how many;
// the numbers are analyze()'s and compare()'s in Node. On a one-core machine the pool
// has no reason to start, and the test checks that it said nothing of workers.
for (const [where, open] of [
  ['served', openApp],
  ['opened from disk', openFromDisk],
]) {
  test(`a large model is analysed and compared by a pool of workers (${where})`, { skip, timeout: 600000 }, async () => {
    const mid = path.join(tmp, 'mid', 'mid.onnx');
    if (!fs.existsSync(mid)) {
      const m = await makeLlm(mid, ['--preset', 'llm-small', '--blocks', '3', '--d', '1024', '--ff', '2752', '--files', '2']);
      assert.ok(m.weightBytes >= 64 << 20, `${m.weightBytes} bytes of weights: too few for the pool`);
    }
    const files = fs
      .readdirSync(path.dirname(mid))
      .filter((f) => !f.endsWith('.json'))
      .map((f) => path.join(path.dirname(mid), f));
    const page = await open();
    const cores = await page.evaluate(() => navigator.hardwareConcurrency);
    const workers = Math.min(cores, 8);
    await recordProgress(page);
    await page.setInputFiles('#ql-folder', path.dirname(mid));
    await ended(page);
    assert.equal(await state(page), 'done', await page.textContent('#ql-error'));
    await checkTable(page, await analyze(mid, { workers: 1 }));
    // Then compared with itself, picked as the model and its data files.
    await page.setInputFiles('#ql-file-b', files);
    await page.waitForSelector('#ql-tab-compare tr[data-pair]', { timeout: 600000 });
    await ended(page);
    assert.equal(await state(page), 'done', await page.textContent('#ql-error'));
    const cmp = await compare(mid, mid, { workers: 1 });
    assert.equal(await page.locator('#ql-tab-compare tr[data-pair]').count(), cmp.pairs.length);
    const texts = [...new Set((await page.evaluate(() => window.__seen)).map((s) => s.text))];
    for (const what of ['Analysing', 'Comparing']) {
      const said = texts.filter((t) => t.startsWith(what));
      assert.ok(said.length, `no ${what} progress: ${texts.slice(0, 8).join(' | ')}`);
      const on = said.map((t) => (/ \((\d+) workers\)/.exec(t) || [])[1]).filter(Boolean);
      if (workers > 1) assert.deepEqual([...new Set(on)], [String(workers)], `${what}: ${said.slice(0, 4).join(' | ')}`);
      else assert.deepEqual(on, []);
    }
    assert.deepEqual(page.errors, []);
    await page.close();
  });
}

// Slows the page's CPU (and its workers') so that an analysis of llm-small spans many
// frames; the assertions are on what was observed, never on a time.
async function slowDown(page, rate) {
  const cdp = await page.context().newCDPSession(page);
  await cdp.send('Emulation.setCPUThrottlingRate', { rate });
  return cdp;
}

// Records, at every change of the progress line and the table, the page state, the rows
// shown and the progress text.
function recordProgress(page) {
  return page.evaluate(() => {
    window.__seen = [];
    const note = () =>
      window.__seen.push({
        state: document.body.dataset.state,
        rows: document.querySelectorAll('table.ql-layer-table tbody tr[data-position]').length,
        text: document.querySelector('#ql-progress-text').textContent,
      });
    new MutationObserver(note).observe(document.body, { childList: true, subtree: true, characterData: true });
  });
}

test('rows appear as layers finish; the final table is the whole analysis', { skip, timeout: 600000 }, async () => {
  const page = await openApp();
  const cdp = await slowDown(page, 8);
  await recordProgress(page);
  await page.setInputFiles('#ql-folder', folder);
  // A progress state with some rows present, before the end.
  await page.waitForFunction(() => window.__seen.some((s) => s.state === 'busy' && s.rows > 0), null, { timeout: 600000 });
  await ended(page);
  await cdp.send('Emulation.setCPUThrottlingRate', { rate: 1 });
  const seen = await page.evaluate(() => window.__seen);
  const during = seen.filter((s) => s.state === 'busy' && s.rows > 0);
  assert.ok(during.length, 'rows were shown while busy');
  assert.ok(
    during.some((s) => s.rows < expected.layers.length),
    `some rows before all ${expected.layers.length}: ${[...new Set(during.map((s) => s.rows))]}`,
  );
  // the progress line said layers and bytes
  assert.ok(
    seen.some((s) => /^Analysing layer \d+ of 15: .*; [\d.]+ [kMG]?B of [\d.]+ MB of weights read$/.test(s.text)),
    [...new Set(seen.map((s) => s.text))].slice(0, 8).join(' | '),
  );
  assert.equal(await state(page), 'done', await page.textContent('#ql-error'));
  await checkTable(page, expected);
  await screenshot(page, 'bigapp-final', { fullPage: false });
  assert.deepEqual(page.errors, []);
  await page.close();
});

test('Cancel (Escape) in the middle of an analysis returns the app to idle, usable', { skip, timeout: 600000 }, async () => {
  const page = await openApp();
  const cdp = await slowDown(page, 8);
  // Escape is pressed in the page, in the same task that drew the first rows: the analysis
  // is then surely running (its result could only be handled in a later task).
  await page.evaluate(() => {
    const observer = new MutationObserver(() => {
      const rows = document.querySelectorAll('table.ql-layer-table tbody tr[data-position]').length;
      if (document.body.dataset.state === 'busy' && rows > 0) {
        observer.disconnect();
        window.__cancelledAt = rows;
        document.dispatchEvent(new KeyboardEvent('keydown', { key: 'Escape', bubbles: true }));
      }
    });
    observer.observe(document.body, { childList: true, subtree: true });
  });
  await page.setInputFiles('#ql-folder', folder);
  await page.waitForFunction(() => window.__cancelledAt !== undefined, null, { timeout: 600000 });
  await page.waitForFunction(() => document.body.dataset.state !== 'busy', null, { timeout: 600000 });
  await cdp.send('Emulation.setCPUThrottlingRate', { rate: 1 });
  assert.ok((await page.evaluate(() => window.__cancelledAt)) > 0);
  assert.equal(await state(page), 'idle');
  assert.equal(await page.textContent('#ql-error'), 'Cancelled.');
  // the partial layers are gone: the page is as before the pick
  assert.ok(await page.isHidden('#ql-tabs'));
  await isEmptyAgain(page);
  assert.ok(await page.isHidden('#ql-progress'));
  assert.equal(await page.isDisabled('#ql-open-folder'), false);
  await screenshot(page, 'bigapp-cancelled', { fullPage: false });
  // usable: the same folder opens to the end
  await opensTheFolder(page);
  await page.close();
});

test('a model file of 3.5 GiB or more is refused with what to do instead', { skip, timeout: 120000 }, async () => {
  // A sparse file: no disk blocks, no bytes read (the size is checked first).
  const huge = path.join(tmp, 'huge', 'huge.onnx');
  fs.mkdirSync(path.dirname(huge), { recursive: true });
  fs.writeFileSync(huge, fs.readFileSync(model));
  fs.truncateSync(huge, 3.5 * 2 ** 30);
  await assert.rejects(analyze(huge), (e) => e.code === 'UNSUPPORTED' && /under 3\.5 GiB/.test(e.message));
  const page = await openApp();
  await page.setInputFiles('#ql-file', huge);
  await ended(page);
  assert.equal(await state(page), 'error');
  assert.match(await page.textContent('#ql-error'), /^UNSUPPORTED: huge\.onnx is 3\.5 GiB: .*external data files/);
  assert.deepEqual(page.errors, []);
  await page.close();
});

test(
  'a model file over 2 GiB gets its heap buffer: it is read, not refused (Node and Chromium)',
  { skip, timeout: 300000 },
  async () => {
    // A real model followed by zeros up to 2 GiB + 4 KiB: the buffer for the file's image
    // (over 2 GiB, which malloc alone cannot give in wasm32) is allocated, and parsing stops
    // at the first zero byte after the model, a field number 0: INVALID_MODEL with that
    // byte's offset, not OUT_OF_MEMORY or UNSUPPORTED. The zeros are written (Chromium
    // could not read a sparse file picked in the page: NotReadableError).
    const big = path.join(tmp, 'over2g', 'over2g.onnx');
    fs.mkdirSync(path.dirname(big), { recursive: true });
    const head = fs.readFileSync(model);
    const fd = fs.openSync(big, 'w');
    fs.writeSync(fd, head);
    const zeros = Buffer.alloc(64 << 20);
    for (let left = 2 ** 31 + 4096 - head.length; left > 0; left -= zeros.length)
      fs.writeSync(fd, zeros, 0, Math.min(left, zeros.length));
    fs.closeSync(fd);
    await assert.rejects(analyze(big), (e) => {
      assert.equal(e.code, 'INVALID_MODEL', e.message);
      assert.match(e.message, new RegExp(`at byte ${head.length}\\b`));
      return true;
    });
    const page = await openApp();
    await page.setInputFiles('#ql-file', big);
    await ended(page);
    assert.equal(await state(page), 'error');
    assert.match(await page.textContent('#ql-error'), new RegExp(`^INVALID_MODEL: .*at byte ${head.length}\\b`));
    assert.deepEqual(page.errors, []);
    await page.close();
    fs.rmSync(big);
  },
);

test(
  'the inline writer of make_llm.py: onnx reads it, and the numbers match the numpy reference',
  { skip, timeout: 300000 },
  async () => {
    const file = path.join(tmp, 'inline', 'llm-small.onnx');
    await makeLlm(file, ['--preset', 'llm-small', '--inline']);
    const ours = await analyze(file);
    const ref = await runReference(file);
    assert.equal(ref.code, 0, ref.stderr);
    const r = JSON.parse(ref.stdout);
    assert.equal(ours.layers.length, 15);
    assert.deepEqual(
      ours.layers.map((l) => l.name),
      r.layers.map((l) => l.name),
    );
    for (let i = 0; i < ours.layers.length; i++) {
      for (const k of ['int8PerTensor', 'int8PerChannel', 'int4Block32']) {
        assert.ok(Math.abs(ours.layers[i].sqnr[k] - r.layers[i].sqnr[k]) <= 1e-3, `${ours.layers[i].name} ${k}`);
      }
    }
    // the same weights as the external-data copy, so the same analysis
    assert.deepEqual(
      ours.layers.map((l) => l.sqnr.int8PerTensor),
      expected.layers.map((l) => l.sqnr.int8PerTensor),
    );
  },
);

test(
  'a model file over 2 GB with its weights inline opens (opt-in: QL_BIG_MODEL=1)',
  { skip: skip || (!big && 'set QL_BIG_MODEL=1 (writes a 2.4 GB model, minutes) or QL_BIG_MODEL=FILE'), timeout: 3600000 },
  async () => {
    // 3 blocks of d 4096 in fp32: 21 MatMul layers, 606 M parameters, 2.4 GB in the .onnx itself
    let file = bigModel;
    if (bigModel === '1') {
      file = path.join(tmp, 'inline-big', 'llm-3x4096.onnx');
      await makeLlm(file, ['--preset', 'llm-8x4096', '--blocks', '3', '--dtype', 'fp32', '--inline']);
    }
    assert.ok(fs.statSync(file).size > 2 ** 31, 'over 2 GB');
    const reference = await analyze(file);
    const page = await openApp();
    await page.setInputFiles('#ql-file', file);
    await ended(page);
    assert.equal(await state(page), 'done', await page.textContent('#ql-error'));
    await checkTable(page, reference);
    assert.deepEqual(page.errors, []);
    await page.close();
  },
);
