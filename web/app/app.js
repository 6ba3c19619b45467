// The QuantLens page. Two modes, one script:
//  - app: pick or drop an .onnx (with its external data files); the engine runs in a
//    Web Worker made from the page's own inline source; nothing leaves the machine.
//  - report: the page was saved with its data inline (#ql-data); it renders the same
//    views from that data, with no engine and no network.
// Strings from the model reach the page only through textContent (here and in the views).
import { renderModelView } from '../src/views/model.js';
import { renderLayerView } from '../src/views/layer.js';
import { renderEqualizationView } from '../src/views/equalization.js';
import { renderCompareView } from '../src/views/compare.js';
import { renderGraphView } from '../src/views/graph.js';
import { renderCompressionView } from '../src/views/compression.js';
import { PLAN_RATIOS } from '../src/curves.js';
import { compressionRisk } from '../src/compression-risk.js';
import { fromBase64 } from '../src/base64.js';
import { formatNumber } from '../src/format.js';
import { quantizedText, savedAtText } from '../src/presentation.js';
import { nameShortener } from '../src/names.js';
import { defaultLayer } from '../src/verdict.js';
import { unpackData } from '../src/report.js';
import { saveReportPieces } from '../src/save-report.js';
import { VERSION } from '../src/version.js';
import { createWorkerClient } from '../src/worker-client.js';
import { modelCandidates, pickedEntries } from '../src/picked.js';
import { tallyLayers } from '../src/tally.js';
import { formatLink, parseLink, VIEWS } from '../src/links.js';
import { schemesOf } from '../src/schemes.js';
import { exportFileName, exportsOf, exportTargets } from '../src/views/export.js';
import {
  analysisChannelsCsv,
  analysisLayersCsv,
  comparisonChannelsCsv,
  comparisonPairsCsv,
  equalizationCsv,
} from '../src/export/csv.js';

export const EXAMPLE = 'mlsd_320x320_tiny.onnx';

const $ = (sel) => document.querySelector(sel);
const el = (tag, props = {}, ...children) => {
  const node = document.createElement(tag);
  for (const [k, v] of Object.entries(props)) {
    if (k === 'text') node.textContent = v;
    else if (k === 'dataset') Object.assign(node.dataset, v);
    else if (k.startsWith('on')) node.addEventListener(k.slice(2), v);
    else if (v !== false && v != null) node.setAttribute(k, v === true ? '' : v);
  }
  for (const c of children) if (c != null) node.append(c);
  return node;
};
const formatBytes = (n) =>
  n >= 1e9
    ? `${formatNumber(n / 1e9)} GB`
    : n >= 1e6
      ? `${formatNumber(n / 1e6)} MB`
      : n >= 1e3
        ? `${formatNumber(n / 1e3)} kB`
        : `${n} B`;

const state = {
  mode: 'app',
  files: null, // [{file, path}]: the model first, then the other files picked with it
  analysis: null,
  partial: null, // while a model is being analysed: the layers so far, as an analysis (partialAnalysis)
  equalization: null,
  comparison: null,
  analysisB: null,
  compression: null, // compressibility() of the model: curves and a plan per target (Compression tab)
  compressionRatio: 0.5, // the target the Compression tab's slider shows
  layer: null, // position in analysis.layers shown in the layer view
  scheme: 'int8PerTensor', // the scheme risk is judged under (the model view's selector)
  tab: 'model',
  views: {}, // tab -> {destroy} of what is rendered there
  // What the user chose in the Model tab (its viewState(): sort, filters, focus, scroll), kept
  // whenever the tab is drawn again: as layers arrive, when the whole analysis replaces them,
  // after equalization. A new model starts without it.
  modelView: null,
  partialLayer: null, // the name of the layer selected while layers arrive (selected at the end)
  dirty: new Set(), // tabs whose view must be rendered again when shown
  savedAt: null,
  // A deep link (#view=...&layer=...&scheme=...) the page was opened with, applied when the
  // model's analysis arrives (web/src/links.js); until then the hash is left as it is.
  pendingLink: null,
};
// The tabs: one per view of the one table of views (web/src/links.js).
const TABS = VIEWS.map((v) => [v.key, v.label]);

// ---------------------------------------------------------------- the worker
// The engine runs in a Web Worker through the package's client (web/src/worker-client.js);
// cancel() terminates it and starts a new one, which stops the engine even inside one long
// core call.
let engine = null; // createWorkerClient(): analyze / equalize / compare in the worker

function startWorker() {
  const source = $('#ql-worker').textContent;
  const newWorker = () => {
    const url = URL.createObjectURL(new Blob([source], { type: 'text/javascript' }));
    const worker = new Worker(url, { name: 'quantlens' }); // classic: file:// pages cannot start module workers from blob: URLs
    setTimeout(() => URL.revokeObjectURL(url), 60000);
    // Its pool of workers (one per core, for a large model) starts from the same script,
    // through a blob: URL the worker makes itself: from a page opened from disk, a worker
    // may not start one from the page's blob: URLs (origin 'null').
    worker.postMessage({ cmd: 'configure', pool: { workerSource: source, type: 'classic' } });
    return worker;
  };
  // The page hands the inline .wasm to each worker it starts.
  engine = createWorkerClient(newWorker, { wasmBinary: fromBase64($('#ql-wasm').textContent.trim()) });
}

function cancel() {
  if (engine) engine.cancel(); // rejects the job with code ABORTED
}

// ---------------------------------------------------------------- status
function setBusy(what) {
  document.body.dataset.state = 'busy';
  $('#ql-progress').hidden = false;
  $('#ql-progress-bar').removeAttribute('value');
  $('#ql-progress-text').textContent = what;
  $('#ql-error').hidden = true;
  for (const b of document.querySelectorAll('[data-needs-idle]')) b.disabled = true;
}

function progressText(p) {
  // A large model is worked on by a pool of workers, one per core.
  const on = p.workers > 1 ? ` (${p.workers} workers)` : '';
  if (p.phase === 'read') return `Reading ${formatBytes(p.done)} of ${formatBytes(p.total)}`;
  if (p.phase === 'analyze') {
    const bytes = p.bytesTotal ? `; ${formatBytes(p.bytes)} of ${formatBytes(p.bytesTotal)} of weights read` : '';
    return `Analysing layer ${p.reading ? p.done + 1 : p.done} of ${p.total}${on}${p.layer ? `: ${p.layer}` : ''}${bytes}`;
  }
  if (p.phase === 'equalize') return 'Equalizing: folding BatchNorm, balancing sequences, writing the model';
  if (p.phase === 'compare') return `Comparing layer ${p.done} of ${p.total}${on}`;
  if (p.phase === 'curves') return `Compression curves of layer ${p.done} of ${p.total}${on}${p.layer ? `: ${p.layer}` : ''}`;
  if (p.phase === 'write') return 'Writing the compressed model';
  return p.phase;
}

function onProgress(p) {
  const bar = $('#ql-progress-bar');
  const box = $('#ql-progress');
  box.dataset.phase = p.phase;
  box.dataset.done = String(p.done);
  box.dataset.total = String(p.total);
  if (p.workers) box.dataset.workers = String(p.workers);
  if (p.bytesTotal) {
    // weights read: the slow part of a large model, and it moves inside one huge layer
    bar.max = p.bytesTotal;
    bar.value = p.bytes;
  } else if (p.total) {
    bar.max = p.total;
    bar.value = p.done;
  } else bar.removeAttribute('value');
  $('#ql-progress-text').textContent = progressText(p);
}

function setIdle(outcome) {
  document.body.dataset.state = outcome;
  for (const k of ['phase', 'done', 'total', 'workers']) delete $('#ql-progress').dataset[k];
  $('#ql-progress').hidden = true;
  for (const b of document.querySelectorAll('[data-needs-idle]')) b.disabled = false;
  updateControls();
}

function showError(e) {
  const box = $('#ql-error');
  box.hidden = false;
  box.textContent = e.code === 'ABORTED' ? 'Cancelled.' : `${e.code ? `${e.code}: ` : ''}${e.message}`;
  box.dataset.code = e.code || '';
}

// ---------------------------------------------------------------- layers as they arrive
// While a model is analysed, each finished layer comes from the worker (onLayer) and the
// Model tab shows the layers so far: redrawn at most once per animation frame, and less
// often when a redraw is slow (a model of thousands of layers), so that drawing never takes
// more than about a fifth of the time. The final result replaces it whole.
const partialDraw = { frame: 0, notBefore: 0 };

function partialAnalysis(info) {
  return {
    schema: 'quantlens.analysis/1',
    model: info.model,
    options: {},
    schemes: info.schemes,
    layers: [],
    positions: [],
    expected: info.layers,
    skipped: info.skipped,
    summary: null,
  };
}

function onLayer(layer, info) {
  if (!state.partial) state.partial = partialAnalysis(info);
  const p = state.partial;
  // In layer order from one worker; kept in position order whatever the arrival order.
  let k = p.positions.length;
  while (k > 0 && p.positions[k - 1] > info.position) k--;
  p.positions.splice(k, 0, info.position);
  p.layers.splice(k, 0, layer);
  schedulePartialDraw();
}

function schedulePartialDraw() {
  if (partialDraw.frame) return;
  partialDraw.frame = requestAnimationFrame(() => {
    partialDraw.frame = 0;
    if (!state.partial) return;
    if (performance.now() < partialDraw.notBefore) {
      schedulePartialDraw();
      return;
    }
    const t0 = performance.now();
    drawPartial();
    const cost = performance.now() - t0;
    partialDraw.notBefore = performance.now() + 4 * cost;
  });
}

function drawPartial() {
  const p = state.partial;
  p.summary = tallyLayers(p.layers);
  document.body.dataset.rows = String(p.layers.length);
  renderHeader();
  if (!p.drawn) {
    // the first layers: the Model tab, and every other tab drawn again when shown; the
    // previous model's choices (sort, filter, selection) are not this one's
    p.drawn = true;
    if (state.views.model) {
      state.views.model.destroy();
      delete state.views.model;
    }
    state.modelView = null;
    state.partialLayer = null;
    for (const t of TABS) state.dirty.add(t[0]);
    showTab('model', null);
  } else if (state.tab === 'model') renderTab('model');
  else state.dirty.add('model');
}

function endPartial() {
  if (partialDraw.frame) cancelAnimationFrame(partialDraw.frame);
  partialDraw.frame = 0;
  partialDraw.notBefore = 0;
  state.partial = null;
  delete document.body.dataset.rows;
}

// ---------------------------------------------------------------- actions
// Runs one job with the page busy; any failure is shown and leaves the page usable.
// Cancel returns the page to where it was: idle, or showing the model it showed before.
async function busy(label, work) {
  setBusy(label);
  try {
    await work();
    setIdle('done');
    return true;
  } catch (e) {
    const hadPartial = !!state.partial;
    endPartial();
    if (hadPartial) {
      // the layers shown so far go; what was open before comes back
      for (const [t] of TABS) {
        if (state.analysis) state.dirty.add(t);
        else renderTab(t); // emptied
      }
      renderHeader();
      showTab(state.analysis ? state.tab : 'model', null);
    }
    setIdle(e && e.code === 'ABORTED' ? (state.analysis ? 'done' : 'idle') : 'error');
    showError(e);
    return false;
  }
}

// Files picked or dropped (File, or {file, path} from a folder): the .onnx among them is
// opened, the others being its external data; with several .onnx the user chooses.
// `folder`: the files are a folder's (picked or dropped), so none at all is worth saying:
// the folder is empty, or holds only symbolic links (Chromium leaves them out of a folder
// picked or dropped; a file dialog follows a link picked itself). A file pick of nothing
// is a cancel: no message.
function openPicked(files, { folder = false } = {}) {
  const entries = pickedEntries(files);
  if (!entries.length) {
    if (!folder) return;
    setIdle(state.analysis ? 'done' : 'error');
    showError({
      code: 'NO_FILES',
      message:
        'the folder holds no file the browser gives this page: it is empty, or holds only symbolic links, which the browser does not follow (as in a Hugging Face cache snapshot); pick or drop the files themselves',
    });
    return;
  }
  $('#ql-choose').hidden = true;
  // One file picked is the model whatever its name; among several, the .onnx ones are.
  const models = entries.length === 1 ? entries : modelCandidates(entries);
  if (!models.length) {
    setIdle(state.analysis ? 'done' : 'error');
    showError({
      code: 'NO_MODEL',
      message: `none of the ${entries.length} ${entries.length === 1 ? 'file' : 'files'} picked is an .onnx model: pick the model's .onnx file with its data files, or the folder that holds them`,
    });
    return;
  }
  if (models.length === 1) {
    openModel(entries, models[0]);
    return;
  }
  // Several models picked (a folder with a model and its quantized copy, say): which one?
  const box = $('#ql-choose');
  const list = box.querySelector('ul');
  list.replaceChildren(
    ...models.map((m) =>
      el(
        'li',
        {},
        el('button', {
          'data-needs-idle': true,
          dataset: { path: m.path },
          onclick: () => {
            box.hidden = true;
            openModel(entries, m);
          },
          text: m.path,
        }),
        el('span', { class: 'ql-muted', text: ` ${formatBytes(m.file.size)}` }),
      ),
    ),
  );
  box.querySelector('p').textContent =
    `${models.length} ONNX models were picked; open which one? (The other files are its external data.)`;
  box.hidden = false;
}

async function openModel(entries, model) {
  // The worker opens the first .onnx in the list as the model.
  const files = [model, ...entries.filter((e) => e !== model)];
  const others = entries.length - 1;
  const name = model.path;
  const opened = await busy(
    `Opening ${name}${others ? ` with ${others} other ${others === 1 ? 'file' : 'files'}` : ''}`,
    async () => {
      endPartial();
      const analysis = await engine.analyze(files, { onProgress, onLayer });
      // Layers drawn as they arrived: what the user chose meanwhile (sort, filter, the
      // layer selected) holds for the whole analysis; else the view starts afresh.
      const shownPartly = !!(state.partial && state.partial.drawn);
      endPartial();
      Object.assign(state, { files, analysis, equalization: null, comparison: null, analysisB: null, compression: null });
      const chosen =
        shownPartly && state.partialLayer != null ? analysis.layers.findIndex((l) => l.name === state.partialLayer) : -1;
      state.layer = chosen >= 0 ? chosen : defaultLayer(analysis);
      if (!shownPartly) state.modelView = null;
      state.partialLayer = null;
      for (const t of TABS) state.dirty.add(t[0]);
    },
  );
  if (opened) {
    renderHeader();
    if (state.pendingLink !== null) {
      // the page was opened with a link: it is applied to the first model opened
      const link = state.pendingLink;
      state.pendingLink = null;
      applyLink(link);
      writeLink('replace');
    } else {
      showNote([]);
      showTab('model', 'replace');
    }
  }
}

async function openExample() {
  const unavailable = (why) => ({
    code: 'EXAMPLE_UNAVAILABLE',
    message: `the example model is served by \`npm start\` (${why}); here, open or drop an .onnx file instead`,
  });
  let file = null;
  await busy(`Fetching the example ${EXAMPLE}`, async () => {
    if (location.protocol === 'file:') throw unavailable('this page was opened from a file');
    let response;
    try {
      response = await fetch(`examples/${EXAMPLE}`);
      if (!response.ok) throw new Error(`HTTP ${response.status}`);
      file = new File([await response.blob()], EXAMPLE);
    } catch (e) {
      throw unavailable(e.message);
    }
  });
  if (file) openPicked([file]);
}

function equalizeOptions() {
  const form = $('#ql-eq-options');
  return {
    keepRelu6: form.keepRelu6.checked,
    biasAbsorption: form.biasAbsorption.checked,
    triples: form.triples.checked,
    throughPadPool: form.throughPadPool.checked,
    maxIterations: Number(form.maxIterations.value),
  };
}

async function runEqualization() {
  if (!state.files) return;
  const done = await busy('Equalizing', async () => {
    // The written model comes back as a Blob built from its pieces (saved by the download button).
    // A model with external data comes back with its one new data file, `dataBlob`, named
    // after the model's download name (the written model's external tensors point to it).
    state.equalization = await engine.equalize(state.files, {
      ...equalizeOptions(),
      blob: true,
      dataName: `${equalizedName()}.data`,
      onProgress,
    });
    for (const t of ['equalization', 'model', 'layer', 'graph']) state.dirty.add(t); // the verdicts say what CLE brings; the graph draws its sequences
  });
  if (done) showTab('equalization');
}

function compressionOptions() {
  const form = $('#ql-cmp-options');
  return { method: form.method.value, by: form.by.value };
}

// Every layer's curves (every point) and a plan at each target of the slider, in the worker.
async function runCompressibility() {
  if (!state.files) return;
  const done = await busy('Computing compressibility', async () => {
    state.compression = await engine.compressibility(state.files, {
      ...compressionOptions(),
      ratio: state.compressionRatio,
      ratios: PLAN_RATIOS,
      full: true,
      onProgress,
    });
    state.dirty.add('compression');
  });
  if (done) showTab('compression');
}

// The model compressed to the plan shown, written in the worker and downloaded.
async function downloadCompressed(ratio) {
  const c = state.compression;
  if (!state.files || !c) return;
  const { method, by } = c.plan ? c.plan.target : compressionOptions();
  await busy(`Compressing to ${Math.round(ratio * 100)}%`, async () => {
    const r = await engine.compress(state.files, { ratio, method, by, blob: true, onProgress });
    download(r.blob, `${stem(state.analysis.model.name)}.compressed-${Math.round(ratio * 100)}.onnx`);
  });
}

// The plan at `ratio` written and analysed in the worker: what it does to quantization risk
// (kept on the compressibility result, so the saved report has it too).
async function runCompressionRisk(ratio) {
  const c = state.compression;
  if (!state.files || !c) return;
  const { method, by } = c.plan ? c.plan.target : compressionOptions();
  await busy(`Analysing the model compressed to ${Math.round(ratio * 100)}%`, async () => {
    const written = await engine.compress(state.files, { ratio, method, by, blob: true, onProgress });
    const file = new File([written.blob], `${stem(state.analysis.model.name)}.compressed-${Math.round(ratio * 100)}.onnx`);
    const after = await engine.analyze([file], { onProgress });
    c.risk = { ratio, result: compressionRisk(state.analysis, after, written) };
    if (state.views.compression) state.views.compression.setRisk(c.risk);
  });
}

async function runCompare(picked) {
  const entries = pickedEntries(picked);
  if (!state.files || !entries.length) return;
  const model = modelCandidates(entries)[0] || entries[0];
  const files = [model, ...entries.filter((e) => e !== model)];
  const done = await busy(`Comparing with ${model.path}`, async () => {
    const analysisB = await engine.analyze(files, { onProgress });
    Object.assign(state, { analysisB, comparison: await engine.compare(state.files, files, { onProgress }) });
    state.dirty.add('compare');
  });
  if (done) showTab('compare');
}

function download(blob, name) {
  const url = URL.createObjectURL(blob);
  const a = el('a', { href: url, download: name });
  document.body.append(a);
  a.click();
  a.remove();
  setTimeout(() => URL.revokeObjectURL(url), 10000);
}

const stem = (name) => name.replace(/\.onnx$/i, '');

const equalizedName = () => `${stem(state.analysis.model.name)}.equalized.onnx`;

// The equalized model, and with external data its data file beside it: two downloads,
// to be kept in one folder.
function downloadEqualized() {
  const eq = state.equalization;
  download(eq.blob, equalizedName());
  if (eq.dataBlob) download(eq.dataBlob, eq.dataName);
}

// The equalized model without a download: opened as the model, or compared with the original.
const equalizedFiles = () => {
  const eq = state.equalization;
  const model = new File([eq.blob], equalizedName());
  return eq.dataBlob ? [model, new File([eq.dataBlob], eq.dataName)] : [model];
};
const openEqualized = () => openPicked(equalizedFiles());
const compareEqualized = () => runCompare(equalizedFiles());

// The report is built by the package's saveReport (its pieces), from this page's own style sheet
// and main script.
async function saveReportFile() {
  const { analysis, equalization, comparison, analysisB, compression } = state;
  // A Blob grown a piece at a time (a Blob of a Blob refers to its bytes, no copy): the page
  // never holds the whole text of a large report.
  let file = new Blob([], { type: 'text/html' });
  for (const piece of await saveReportPieces({ analysis, equalization, comparison, analysisB, compression }))
    file = new Blob([file, piece], { type: 'text/html' });
  download(file, `${stem(analysis.model.name)}.quantlens.html`);
}

// ---------------------------------------------------------------- exports
// Per tab, "Export": every chart shown as SVG and PNG, every table shown as CSV (the rows
// shown, in their order), and the tab's data in full precision (web/src/export/csv.js).
// Listed when opened, from what the tab shows then; files are downloaded through blob:
// URLs, which the app's and the report's policies allow, offline.
function dataExports(tab) {
  const { analysis: a, equalization: eq, comparison: cmp } = state;
  if (!a || state.partial) return [];
  if (tab === 'model')
    return [
      ['layers', 'every layer, all schemes, full precision', () => analysisLayersCsv(a)],
      ['channels', 'every output channel of every layer', () => analysisChannelsCsv(a)],
    ];
  if (tab === 'layer' && state.layer != null) {
    const l = a.layers[state.layer];
    return [['channels', `every output channel of ${l.name}`, () => analysisChannelsCsv({ ...a, layers: [l] })]];
  }
  if (tab === 'equalization' && eq) return [['layers', 'every changed layer, before and after', () => equalizationCsv(eq)]];
  if (tab === 'compare' && cmp)
    return [
      ['pairs', 'every pair of layers', () => comparisonPairsCsv(cmp)],
      ['channels', 'every channel of every pair', () => comparisonChannelsCsv(cmp)],
    ];
  return [];
}

function exportName(tab, parts, ext) {
  const a = state.analysis;
  const l = tab === 'layer' && a && state.layer != null ? a.layers[state.layer] : null;
  return exportFileName(a ? a.model.name : 'model', [tab, l ? l.name : null, ...parts], ext);
}

async function runExport(make, name) {
  try {
    download(await make(), name);
  } catch (e) {
    showError({ code: 'EXPORT_FAILED', message: `${name} could not be made: ${e.message}` });
  }
}

function exportMenu(tab) {
  const list = el('div', { class: 'ql-export-list' });
  const menu = el(
    'details',
    { class: 'ql-export', dataset: { tab } },
    el('summary', { text: 'Export', title: 'charts as SVG or PNG, tables as CSV' }),
    list,
  );
  menu.addEventListener('toggle', () => {
    if (!menu.open) return;
    const body = $(`#ql-tab-${tab} .ql-tab-body`);
    const rows = [];
    const button = (format, label, make, name) =>
      el('button', { type: 'button', dataset: { format, file: name }, onclick: () => runExport(make, name), text: label });
    for (const t of exportTargets(body)) {
      const x = exportsOf(t);
      const buttons =
        t.kind === 'chart'
          ? [
              button('svg', 'SVG', x.svg, exportName(tab, [t.key], 'svg')),
              button('png', 'PNG', x.png, exportName(tab, [t.key], 'png')),
            ]
          : [button('csv', 'CSV', x.csv, exportName(tab, [t.key], 'csv'))];
      rows.push(el('li', { dataset: { kind: t.kind, key: t.key } }, el('span', { text: t.label }), ...buttons));
    }
    for (const [key, label, make] of dataExports(tab)) {
      const name = exportName(tab, ['data', key], 'csv');
      rows.push(
        el(
          'li',
          { dataset: { kind: 'data', key } },
          el('span', { text: label }),
          button('csv', 'CSV', () => new Blob([make()], { type: 'text/csv' }), name),
        ),
      );
    }
    list.replaceChildren(
      rows.length ? el('ul', {}, ...rows) : el('p', { class: 'ql-muted', text: 'Nothing to export here yet.' }),
    );
  });
  return el('div', { class: 'ql-tab-tools' }, menu);
}

// ---------------------------------------------------------------- views
// The Model tab, one way whether the layers are still arriving or all there: drawn with what
// the user chose in it before (state.modelView), so that neither a refresh as layers arrive
// nor the final analysis undoes a sort, a filter, a selection, the focus or the scroll.
function renderModelTab(body) {
  const p = state.partial;
  // While layers arrive, the view gets the layers as they are now (more come into the live list).
  const a = p ? { ...p, layers: p.layers.slice() } : state.analysis;
  if (!a) return;
  state.views.model = renderModelView(body, a, {
    slots: p ? p.expected : 0,
    scheme: state.scheme,
    equalization: p ? null : state.equalization,
    selected: p ? a.layers.findIndex((l) => l.name === state.partialLayer) : state.layer,
    view: state.modelView,
    onScheme: (k) => {
      state.scheme = k;
      state.dirty.add('layer');
      state.dirty.add('graph');
      writeLink('replace'); // a minor change: no history entry
    },
    onSelect: (k) => {
      if (p) {
        // the other views open when the analysis ends: the layer is selected then
        state.partialLayer = a.layers[k] ? a.layers[k].name : null;
        return;
      }
      selectLayer(k, 'model');
      showTab('layer');
    },
  });
}

function renderTab(tab) {
  const host = $(`#ql-tab-${tab}`);
  host.querySelector('.ql-export')?.removeAttribute('open'); // its list names what is about to go
  // The page's scroll, which emptying the tab would lose when it is drawn again in place.
  const scrolled = [window.scrollX, window.scrollY];
  if (state.views[tab]) {
    if (tab === 'model') state.modelView = state.views.model.viewState();
    state.views[tab].destroy();
    delete state.views[tab];
  }
  const body = host.querySelector('.ql-tab-body');
  body.replaceChildren();
  if (tab === 'model') {
    renderModelTab(body);
    if (window.scrollX !== scrolled[0] || window.scrollY !== scrolled[1]) window.scrollTo(...scrolled);
    return;
  }
  if (state.partial) {
    body.append(el('p', { class: 'ql-empty', text: 'The model is still being analysed: this view opens when it ends.' }));
    return;
  }
  const a = state.analysis;
  if (!a) return;
  if (tab === 'graph') {
    state.views.graph = renderGraphView(body, a, {
      scheme: state.scheme,
      selected: state.layer,
      equalization: state.equalization,
      onScheme: (k) => {
        state.scheme = k;
        state.dirty.add('model');
        state.dirty.add('layer');
      },
      onSelect: (k) => selectLayer(k, 'graph'),
    });
  } else if (tab === 'layer') {
    if (state.layer == null) {
      body.append(el('p', { class: 'ql-empty', text: 'This model has no weight layers.' }));
      return;
    }
    body.append(layerPicker());
    const view = el('div');
    body.append(view);
    const after = state.equalization?.layers.find((l) => l.name === a.layers[state.layer].name)?.after ?? null;
    state.views.layer = renderLayerView(view, a, state.layer, { scheme: state.scheme, after });
  } else if (tab === 'equalization') {
    if (!state.equalization) {
      body.append(
        el('p', {
          class: 'ql-empty',
          text:
            state.mode === 'report'
              ? 'Equalization was not run for this report.'
              : 'Choose the options above and run Cross Layer Equalization; the model is rewritten in this page and can be downloaded.',
        }),
      );
      return;
    }
    const onSelect = (name) => {
      const k = a.layers.findIndex((l) => l.name === name);
      if (k >= 0) selectLayer(k, 'equalization');
    };
    const eqView = renderEqualizationView(
      body,
      state.equalization,
      state.mode === 'app'
        ? { onDownload: downloadEqualized, onAnalyze: openEqualized, onCompare: compareEqualized, onSelect }
        : { onSelect },
    );
    // The sequences and their stops on the graph (the Graph tab draws them too).
    const onGraph = el('section', { id: 'ql-eq-graph' }, el('h3', { text: 'Sequences and stops on the graph' }));
    body.append(onGraph);
    const graphView = renderGraphView(onGraph, a, {
      scheme: state.scheme,
      selected: state.layer,
      equalization: state.equalization,
      onSelect: (k) => selectLayer(k, 'equalization-graph'),
    });
    state.views.equalization = {
      destroy() {
        graphView.destroy();
        eqView.destroy();
      },
    };
  } else if (tab === 'compression') {
    if (!state.compression) {
      body.append(
        el('p', {
          class: 'ql-empty',
          text:
            state.mode === 'report'
              ? 'Compressibility was not computed for this report.'
              : 'Compute how far each layer shrinks by SVD (or channel pruning) before its weights degrade, and a plan for a target size; the compressed model is written in this page and can be downloaded.',
        }),
      );
      return;
    }
    state.views.compression = renderCompressionView(body, state.compression, {
      ratio: state.compressionRatio,
      onRatio: (r) => {
        state.compressionRatio = r;
      },
      onSelect: (name) => {
        const k = a.layers.findIndex((l) => l.name === name);
        if (k >= 0) selectLayer(k, 'compression');
      },
      ...(state.mode === 'app' ? { onDownload: downloadCompressed, onRisk: runCompressionRisk } : {}),
    });
  } else if (tab === 'compare') {
    if (!state.comparison) {
      body.append(
        el('p', {
          class: 'ql-empty',
          text:
            state.mode === 'report'
              ? 'No second model was compared in this report.'
              : 'Load a second model (for example this network quantized with QDQ or QLinearConv, or optimized elsewhere) to compare its weights layer by layer and channel by channel.',
        }),
      );
      return;
    }
    state.views.compare = renderCompareView(body, state.comparison);
  }
}

// The one selection: a layer chosen in any view (`from`) is the one the Layer view shows, the
// row the Model table marks and the node the Graph view reveals; the others follow when shown.
function selectLayer(k, from) {
  if (!Number.isInteger(k) || k < 0) return;
  state.layer = k;
  for (const t of ['model', 'layer']) if (t !== from) state.dirty.add(t);
  if (from === 'graph' || from === 'compression') {
    if (from === 'graph') state.graphShows = k;
    writeLink('push'); // the link names the layer picked in the graph or the compression table
  } else if (state.tab === 'graph') revealInGraph();
}

// The Graph view reveals the selected layer when it is shown (opening the groups around it).
function revealInGraph() {
  if (!state.views.graph || state.layer == null || state.graphShows === state.layer) return;
  state.graphShows = state.layer;
  state.views.graph.select(state.layer);
}

function layerPicker() {
  const a = state.analysis;
  const select = el('select', { id: 'ql-layer-select', 'aria-label': 'Layer' });
  const names = nameShortener(a.layers.map((l) => l.name)); // without the prefix all layers share
  a.layers.forEach((l, k) =>
    select.append(el('option', { value: String(k), title: l.name, text: `${k + 1}. ${names.short(l.name)} (${l.op})` })),
  );
  select.value = String(state.layer);
  select.addEventListener('change', () => {
    selectLayer(Number(select.value), 'layer');
    renderTab('layer');
    writeLink('push');
    $('#ql-layer-select')?.focus();
  });
  return el('div', { class: 'ql-picker' }, el('label', { for: 'ql-layer-select', text: 'Layer ' }), select);
}

// Shows a tab; `history` says how the hash follows: 'push' (a navigation: Back returns),
// 'replace' (the same entry) or null (the hash is left alone: applying a link, Back).
function showTab(tab, history = 'push') {
  state.tab = tab;
  for (const [t] of TABS) {
    const on = t === tab;
    $(`#ql-tab-${t}`).hidden = !on || !(state.partial || state.analysis);
    const button = $(`#ql-tabbtn-${t}`);
    button.setAttribute('aria-selected', String(on));
    button.tabIndex = on ? 0 : -1;
  }
  const shown = state.partial || state.analysis;
  $('#ql-empty').hidden = !!shown;
  $('#ql-tabs').hidden = !shown;
  if (shown && state.dirty.has(tab)) {
    state.dirty.delete(tab);
    renderTab(tab);
    if (tab === 'graph') state.graphShows = state.layer; // drawn around it
  }
  if (shown && tab === 'graph') revealInGraph();
  writeLink(history);
}

// ---------------------------------------------------------------- deep links
// The hash holds the view, the layer (its full name) and the scheme (web/src/links.js).
function currentLink() {
  const a = state.analysis;
  const l = a && state.layer != null ? a.layers[state.layer] : null;
  return formatLink({ view: state.tab, layer: l ? l.name : null, scheme: state.scheme });
}

// Writes the shown state into the hash: 'push' makes a history entry, 'replace' does not.
// Not while layers are arriving, nor while a link waits for its model.
function writeLink(how) {
  if (!how || !state.analysis || state.partial || state.pendingLink !== null) return;
  const hash = currentLink();
  if (hash === location.hash) return;
  try {
    if (how === 'push') history.pushState(null, '', hash);
    else history.replaceState(null, '', hash);
  } catch {
    // a page whose URL cannot be rewritten (a sandboxed frame): the page works without links
  }
}

// What a link asked for that this model does not have, said plainly (empty: nothing to say).
function showNote(problems) {
  const box = $('#ql-note');
  if (!box) return;
  box.hidden = !problems.length;
  box.textContent = problems.map((p) => `Link: ${p.message}.`).join(' ');
  box.dataset.code = problems.map((p) => p.code).join(' ');
}

// Shows what the link `hash` asks for, on the loaded model; what it names that the model
// does not have is said (#ql-note) and the rest is applied. The hash is not written here.
function applyLink(hash) {
  const a = state.analysis;
  if (!a) return;
  const link = parseLink(hash, { views: TABS.map((t) => t[0]) });
  const problems = [...link.problems];
  const was = { scheme: state.scheme, layer: state.layer };
  if (link.scheme) {
    if (schemesOf(a).includes(link.scheme)) state.scheme = link.scheme;
    else problems.push({ code: 'UNKNOWN_SCHEME', message: `the scheme ${link.scheme} was not measured in this analysis` });
  }
  if (link.layer !== null) {
    const k = a.layers.findIndex((l) => l.name === link.layer);
    if (k >= 0) state.layer = k;
    else {
      const shown = state.layer != null && a.layers[state.layer] ? `; showing ${a.layers[state.layer].name} instead` : '';
      problems.push({
        code: 'UNKNOWN_LAYER',
        message: `${a.model.name} has no layer named "${link.layer}"${shown}`,
      });
    }
  }
  if (state.scheme !== was.scheme) for (const t of TABS) state.dirty.add(t[0]);
  else if (state.layer !== was.layer) state.dirty.add('layer');
  showNote(problems);
  showTab(link.view || (link.layer !== null && !problems.length ? 'layer' : state.tab), null);
}

// Back and Forward: the entry's hash is shown again (nothing new is written).
function onHistory() {
  if (!state.analysis || state.partial) return;
  if (location.hash === currentLink()) return;
  applyLink(location.hash);
}

function renderHeader() {
  const info = $('#ql-model');
  info.replaceChildren();
  if (state.partial) {
    const p = state.partial;
    info.append(
      el('strong', { text: p.model.name }),
      el('span', {
        dataset: { field: 'arrived' },
        text: ` ${p.layers.length} of ${p.expected} weight layers analysed so far; ${p.summary.layersWithOutliers} with outlier channels`,
      }),
    );
    return;
  }
  const a = state.analysis;
  if (!a) return;
  const m = a.model;
  const s = a.summary;
  const producer = [m.producer, m.producerVersion].filter(Boolean).join(' ') || 'unknown producer';
  info.append(
    el('strong', { text: m.name }),
    el('span', { text: ` ${producer}, ${formatBytes(m.bytes)}; ` }),
    el('span', { dataset: { field: 'layers-with-outliers' }, text: String(s.layersWithOutliers) }),
    el('span', { text: ` of ${s.layers} weight layers with outlier channels` }),
  );
  // A model whose weights are already stored quantized says so, and how.
  const quantized = quantizedText(s.quantized);
  if (quantized) info.append(el('span', { text: '; ' }), el('span', { dataset: { field: 'quantized' }, text: quantized }));
  // Weight nodes the core could not analyse: named here on every tab, listed with their
  // reasons in the Model view.
  const skipped = (a.skipped || []).length;
  if (skipped) {
    info.append(
      el('span', { text: '; ' }),
      el('span', {
        class: 'ql-warn',
        dataset: { field: 'skipped-count' },
        title: 'listed with their reasons in the Model view',
        text: `${skipped} weight ${skipped === 1 ? 'node' : 'nodes'} not analysed`,
      }),
    );
  }
  if (state.mode === 'report') {
    info.append(
      el('div', {
        class: 'ql-saved',
        title: state.savedAt,
        text: `Report saved ${savedAtText(state.savedAt)} by QuantLens ${state.version}.`,
      }),
    );
  }
}

function updateControls() {
  const loaded = !!state.analysis;
  for (const id of ['#ql-save', '#ql-compare-button', '#ql-eq-run']) {
    const b = $(id);
    if (b) b.disabled = !loaded || document.body.dataset.state === 'busy';
  }
}

// ---------------------------------------------------------------- page
function buildPage() {
  const app = state.mode === 'app';
  const fileInput = el('input', {
    type: 'file',
    id: 'ql-file',
    multiple: true,
    accept: '.onnx,.data,.bin,.weights,application/octet-stream',
    hidden: true,
  });
  fileInput.addEventListener('change', () => {
    openPicked(fileInput.files);
    fileInput.value = '';
  });
  // A folder: every file in it, with its path in the folder (webkitRelativePath).
  const folderInput = el('input', { type: 'file', id: 'ql-folder', webkitdirectory: true, multiple: true, hidden: true });
  folderInput.addEventListener('change', () => {
    openPicked(folderInput.files, { folder: true });
    folderInput.value = '';
  });
  const otherInput = el('input', { type: 'file', id: 'ql-file-b', multiple: true, accept: '.onnx,.data,.bin', hidden: true });
  otherInput.addEventListener('change', () => {
    runCompare(otherInput.files);
    otherInput.value = '';
  });

  const header = el(
    'header',
    { class: 'ql-header' },
    el('h1', { text: 'QuantLens' }),
    app
      ? el(
          'div',
          { class: 'ql-actions' },
          el('button', { id: 'ql-open', 'data-needs-idle': true, onclick: () => fileInput.click(), text: 'Open model…' }),
          el('button', {
            id: 'ql-open-folder',
            'data-needs-idle': true,
            onclick: () => folderInput.click(),
            title: 'a model whose weights are in external data files: pick the folder that holds them',
            text: 'Open folder…',
          }),
          // From file:// the example cannot be fetched: the button says so instead of failing.
          location.protocol === 'file:'
            ? el('button', {
                id: 'ql-example',
                disabled: true,
                title: 'the example is served by `npm start`; from a file, open or drop an .onnx instead',
                text: 'Try an example',
              })
            : el('button', { id: 'ql-example', 'data-needs-idle': true, onclick: openExample, text: 'Try an example' }),
          el('button', {
            id: 'ql-compare-button',
            'data-needs-idle': true,
            onclick: () => otherInput.click(),
            text: 'Compare with…',
            disabled: true,
          }),
          el('button', { id: 'ql-save', 'data-needs-idle': true, onclick: saveReportFile, text: 'Save report', disabled: true }),
          fileInput,
          folderInput,
          otherInput,
        )
      : null,
    el('div', { id: 'ql-model', class: 'ql-model', 'aria-live': 'polite' }),
  );

  const progress = el(
    'div',
    { id: 'ql-progress', class: 'ql-progress', hidden: true, role: 'status' },
    el('progress', { id: 'ql-progress-bar' }),
    el('span', { id: 'ql-progress-text' }),
    el('button', { id: 'ql-cancel', onclick: cancel, text: 'Cancel' }),
  );
  const error = el('div', { id: 'ql-error', class: 'ql-error', role: 'alert', hidden: true });
  const note = el('div', { id: 'ql-note', class: 'ql-note', role: 'status', hidden: true });
  const choose = el('div', { id: 'ql-choose', class: 'ql-choose', hidden: true }, el('p'), el('ul'));

  const empty = el(
    'section',
    { id: 'ql-empty', class: 'ql-drop' },
    el('p', { class: 'ql-drop-title', text: 'Drop an ONNX model here, or open one.' }),
    el('p', {
      text: 'QuantLens shows which layers will not survive INT8 or INT4 quantization and why (per-channel weight ranges, outlier channels, SQNR), and what Cross Layer Equalization changes. Your model is read in this page and never uploaded.',
    }),
    el('p', {
      text: 'Models with external data (LLMs): open or drop the folder that holds the model, or select the .onnx file together with its data files. Results appear layer by layer; Cancel (or Escape) stops at once.',
    }),
  );

  const tabs = el('nav', { id: 'ql-tabs', class: 'ql-tabs', role: 'tablist', hidden: true });
  for (const [t, label] of TABS) {
    tabs.append(
      el('button', {
        id: `ql-tabbtn-${t}`,
        role: 'tab',
        'aria-controls': `ql-tab-${t}`,
        dataset: { tab: t },
        text: label,
        onclick: () => showTab(t),
      }),
    );
  }
  tabs.addEventListener('keydown', (e) => {
    const k = TABS.findIndex(([t]) => t === state.tab);
    const step = e.key === 'ArrowRight' ? 1 : e.key === 'ArrowLeft' ? -1 : 0;
    if (!step) return;
    const next = TABS[(k + step + TABS.length) % TABS.length][0];
    showTab(next);
    $(`#ql-tabbtn-${next}`).focus();
  });

  const panels = TABS.map(([t]) =>
    el('section', { id: `ql-tab-${t}`, class: 'ql-tab', role: 'tabpanel', 'aria-labelledby': `ql-tabbtn-${t}`, hidden: true }),
  );
  if (app) {
    const check = (name, label, on) => el('label', {}, el('input', { type: 'checkbox', name, checked: on }), ` ${label}`);
    const form = el(
      'form',
      {
        id: 'ql-eq-options',
        class: 'ql-eq-options',
        onsubmit: (e) => {
          e.preventDefault();
          runEqualization();
        },
      },
      check('biasAbsorption', 'high-bias absorption', true),
      check('keepRelu6', 'keep ReLU6 (end sequences there)', false),
      check('triples', 'depthwise triples', true),
      check('throughPadPool', 'through zero Pad and pools', true),
      el('label', {}, 'sweeps at most ', el('input', { type: 'number', name: 'maxIterations', min: 1, max: 1000, value: 50 })),
      el('button', { id: 'ql-eq-run', type: 'submit', 'data-needs-idle': true, text: 'Run equalization' }),
    );
    panels[TABS.findIndex(([t]) => t === 'equalization')].append(form);
    const pick = (name, label, choices) =>
      el('label', {}, `${label} `, el('select', { name }, ...choices.map(([v, text]) => el('option', { value: v, text }))));
    const cmpForm = el(
      'form',
      {
        id: 'ql-cmp-options',
        class: 'ql-eq-options',
        onsubmit: (e) => {
          e.preventDefault();
          runCompressibility();
        },
      },
      pick('method', 'methods', [
        ['svd', 'weight and spatial SVD'],
        ['prune', 'channel pruning'],
        ['auto', 'SVD or pruning, per layer'],
      ]),
      pick('by', 'target counts', [
        ['params', 'parameters'],
        ['macs', 'MACs'],
      ]),
      el('button', { id: 'ql-cmp-run', type: 'submit', 'data-needs-idle': true, text: 'Compute compressibility' }),
    );
    panels[TABS.findIndex(([t]) => t === 'compression')].append(cmpForm);
  }
  panels.forEach((p, k) => p.prepend(exportMenu(TABS[k][0])));
  for (const p of panels) p.append(el('div', { class: 'ql-tab-body' }));

  const footer = el('footer', {
    class: 'ql-footer',
    text: app
      ? `QuantLens ${VERSION}. Everything runs in this page (WebAssembly in a Web Worker); the model is never uploaded.`
      : 'Saved QuantLens report: data and code are inline; this page makes no network requests.',
  });

  document.body.append(header, progress, error, note, choose, empty, tabs, ...panels, footer);
  window.addEventListener('popstate', onHistory);
  window.addEventListener('hashchange', onHistory); // a link edited or pasted into the address bar

  if (app) {
    // Drop anywhere on the page.
    document.addEventListener('dragover', (e) => {
      e.preventDefault();
      document.body.classList.add('ql-dragging');
    });
    document.addEventListener('dragleave', (e) => {
      if (!e.relatedTarget) document.body.classList.remove('ql-dragging');
    });
    document.addEventListener('drop', (e) => {
      e.preventDefault();
      document.body.classList.remove('ql-dragging');
      if (document.body.dataset.state === 'busy' || !e.dataTransfer) return;
      droppedFiles(e.dataTransfer).then(
        (files) => openPicked(files, { folder: files.folder === true }),
        (err) => showError({ code: 'IO_ERROR', message: `the dropped files could not be read: ${err.message}` }),
      );
    });
  }
  document.addEventListener('keydown', onKey);
  // An open Export menu closes on a click elsewhere (and on Escape: onKey).
  document.addEventListener('pointerdown', (e) => {
    for (const d of document.querySelectorAll('.ql-export[open]')) if (!d.contains(e.target)) d.open = false;
  });
}

// Keys: Escape cancels what is running (as Cancel does), else leaves the search box; `/`
// (when not typing in a field) focuses the search box of the tab shown, or the Model tab's.
function onKey(e) {
  const t = e.target;
  const typing = t && t.nodeType === 1 && (t.isContentEditable || /^(input|textarea|select)$/i.test(t.tagName));
  if (e.key === 'Escape') {
    const menu = document.querySelector('.ql-export[open]');
    if (document.body.dataset.state === 'busy' && state.mode === 'app') cancel();
    else if (menu) {
      menu.open = false;
      menu.querySelector('summary').focus();
    } else if (typing && t.matches('input[type="search"]')) {
      e.preventDefault(); // keeps the filter as typed (a search field would clear itself)
      t.blur();
    }
    return;
  }
  if (e.key !== '/' || typing || e.ctrlKey || e.metaKey || e.altKey) return;
  if (!(state.analysis || state.partial)) return;
  const box = (tab) => $(`#ql-tab-${tab} .ql-tab-body input[type="search"]`);
  let input = box(state.tab);
  if (!input) {
    showTab('model');
    input = box('model');
  }
  if (!input) return;
  e.preventDefault(); // no '/' typed into it
  input.focus();
  input.select();
}

// The files of a drop, folders walked (each file with its path in the dropped folder):
// DataTransferItem.webkitGetAsEntry where present, else getAsFileSystemHandle, else the
// plain file list. The items must be taken during the drop event itself.
function droppedFiles(dt) {
  // Taken now: after the event the drop's data can no longer be read. When a walk finds
  // nothing (and walked no folder) or fails (a drop made by a script has no entries), the
  // plain list is it.
  const plain = [...(dt.files || [])];
  return walkDropped(dt).then(
    (out) => (out.length || out.folder ? out : plain),
    () => plain,
  );
}

// The dropped items as [{file, path}], walking folders: through the entries API
// (webkitGetAsEntry) where it works, else through File System Access handles. Both are
// taken during the drop event, since the items cannot be read after it: a page opened
// from disk (file://) has entries whose folders cannot be read (readEntries fails with
// EncodingError in Chromium) but handles that can. The result carries `folder: true`
// when a folder was walked.
function walkDropped(dt) {
  const items = [...(dt.items || [])].filter((i) => i.kind === 'file');
  const entries = items.map((i) => (typeof i.webkitGetAsEntry === 'function' ? i.webkitGetAsEntry() : null));
  const handles = items.map((i) => {
    if (typeof i.getAsFileSystemHandle !== 'function') return null;
    const h = i.getAsFileSystemHandle();
    if (h) h.catch(() => {}); // awaited only if the entries fail
    return h;
  });
  const viaEntries = items.length && entries.every(Boolean);
  const viaHandles = items.length && handles.every(Boolean);
  const found = (out, folder) => Object.assign(out, { folder });

  const walkEntries = async () => {
    const out = [];
    let folder = false;
    const fileOf = (entry) => new Promise((resolve, reject) => entry.file(resolve, reject));
    const readAll = (reader) =>
      new Promise((resolve, reject) => {
        const all = [];
        const next = () =>
          reader.readEntries((batch) => {
            if (!batch.length) resolve(all);
            else {
              all.push(...batch);
              next();
            }
          }, reject);
        next();
      });
    const walk = async (entry) => {
      if (entry.isFile) out.push({ file: await fileOf(entry), path: entry.fullPath });
      else if (entry.isDirectory) {
        folder = true;
        for (const child of await readAll(entry.createReader())) await walk(child);
      }
    };
    for (const entry of entries) await walk(entry);
    return found(out, folder);
  };
  const walkHandles = async () => {
    const out = [];
    let folder = false;
    const walk = async (handle, prefix) => {
      if (!handle) return;
      const path = prefix ? `${prefix}/${handle.name}` : handle.name;
      if (handle.kind === 'file') out.push({ file: await handle.getFile(), path });
      else {
        folder = true;
        for await (const child of handle.values()) await walk(child, path);
      }
    };
    for (const h of await Promise.all(handles)) await walk(h, '');
    return found(out, folder);
  };

  return (async () => {
    if (viaEntries) {
      try {
        return await walkEntries();
      } catch (err) {
        if (!viaHandles) throw err;
      }
    }
    return viaHandles ? walkHandles() : found([], false);
  })();
}

function main() {
  const data = document.getElementById('ql-data');
  if (data) {
    state.mode = 'report';
    let report;
    try {
      report = unpackData(data.textContent);
    } catch (e) {
      buildPage();
      showError({ code: 'INVALID_REPORT', message: e.message });
      return;
    }
    Object.assign(state, {
      analysis: report.analysis,
      equalization: report.equalization || null,
      comparison: report.comparison || null,
      analysisB: report.analysisB || null,
      compression: report.compression || null,
      savedAt: report.savedAt,
      version: report.version,
    });
    const a = state.analysis;
    state.layer = defaultLayer(a);
    buildPage();
    for (const t of TABS) state.dirty.add(t[0]);
    renderHeader();
    document.body.dataset.state = 'done';
    document.body.dataset.mode = 'report';
    // A report opened with a link (file:///.../model.quantlens.html#view=layer&...) shows that view.
    if (location.hash) applyLink(location.hash);
    else showTab('model', null);
    writeLink('replace');
    return;
  }
  buildPage();
  document.body.dataset.mode = 'app';
  document.body.dataset.state = 'idle';
  // A link waits for its model: applied when the analysis of the first model opened arrives.
  const link = parseLink(location.hash);
  if (link.view || link.layer !== null || link.scheme || link.problems.length) state.pendingLink = location.hash;
  showTab('model', null);
  startWorker();
}

main();
