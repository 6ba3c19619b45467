// The graph view (issue 14, part 1). analyze()'s `graph` against python3-onnx's own walk of
// every model (tools/reference/graph_nodes.py); then the view in headless Chromium on real
// and generated models: a box per node (or per shut group, whose counts add up to the
// model's nodes), each weight layer coloured by its risk under the chosen scheme as
// verdict.js's layerWhy says, its outlier count as a badge; selection both ways; search
// revealing a node inside a shut group; groups opening and shutting; If/Loop/Scan bodies;
// CLE sequences and stops; a 2,000-node model. In the app and its saved report too.
// Screenshots: tests/artifacts/graph-*.png (look at them). Times are printed as
// diagnostics, never asserted.
import assert from 'node:assert/strict';
import fs from 'node:fs';
import os from 'node:os';
import path from 'node:path';
import { after, before, describe, test } from 'node:test';
import { analyze, equalize, saveReport } from '../../web/src/index.js';
import { layerWhy } from '../../web/src/verdict.js';
import { colors } from '../../web/src/palette.js';
import { buildGraphModel } from '../../web/src/graph-model.js';
import { artifacts, bundle, guardHtmlSinks, htmlSinkHits, launch, newPage, noChromium, screenshot, serve } from './chromium.mjs';
import { fetchedModelFiles, root, run, sharedModelFiles, sharedModels } from './helpers.mjs';

const tmp = fs.mkdtempSync(path.join(os.tmpdir(), 'ql-graph-'));
const fetched = (name) => fetchedModelFiles().find((f) => f.endsWith(name));
const mlsd = fetched('mlsd_320x320_tiny.onnx');
const generatedDir = path.join(root, 'models', 'generated');
const generated = (name) => path.join(generatedDir, name);
const yolox = path.join(sharedModels, 'pytorch', 'yolox_nano.onnx');
const road = path.join(sharedModels, 'tf', 'road_segmentation_adas_0001.onnx');
const has = (f) => !!f && fs.existsSync(f);
const py = '/usr/bin/python3';

function encode(result) {
  return JSON.stringify(result, function replacer(key, v) {
    if (key === 'bytes' && v instanceof Uint8Array) return { $len: v.length };
    if (key === 'blob') return null;
    if (ArrayBuffer.isView(v)) return { $t: v.constructor.name, v: Array.from(v) };
    if (typeof v === 'number' && !Number.isFinite(v)) return { $n: String(v) };
    return v;
  });
}

async function reference(model) {
  const r = await run(py, [path.join(root, 'tools', 'reference', 'graph_nodes.py'), model]);
  assert.equal(r.code, 0, r.stderr);
  return JSON.parse(r.stdout);
}

before(async () => {
  if (!fs.existsSync(generated('subgraphs.onnx'))) {
    const r = await run(py, [path.join(root, 'tools', 'make_test_models.py'), generatedDir]);
    assert.equal(r.code, 0, r.stderr);
  }
});
after(() => fs.rmSync(tmp, { recursive: true, force: true }));

// A flat LLM-shaped graph of about 2,000 nodes (no name scopes: the view splits it in runs).
async function bigModel() {
  const file = path.join(tmp, 'llm-2000.onnx');
  if (!fs.existsSync(file)) {
    const r = await run(py, [
      path.join(root, 'tools', 'bench', 'make_llm.py'),
      file,
      '--preset',
      'llm-tiny',
      '--blocks',
      '125',
      '--d',
      '16',
      '--ff',
      '24',
    ]);
    assert.equal(r.code, 0, r.stderr);
  }
  return file;
}

describe('analyze(): the graph', () => {
  test('every node, sub-graphs included, equals python3-onnx walking the model', async () => {
    const models = [
      ...fetchedModelFiles(),
      ...['subgraphs.onnx', 'subgraph_shadowing.onnx', 'hostile_names.onnx', 'graph_inputs.onnx', 'cle_convnet.onnx']
        .map(generated)
        .filter(has),
      ...sharedModelFiles(),
    ];
    assert.ok(models.length >= 6, 'models to check');
    if (!sharedModelFiles().length) console.log(`# shared models absent (${sharedModels}): checked fetched and generated only`);
    for (const m of models) {
      const a = await analyze(m, { layers: () => false }); // the graph comes with the model's description
      const ref = await reference(m);
      assert.deepEqual(a.graph, ref, path.basename(m));
    }
  });

  test('every analysed layer is a node of the graph (by path and name), and the edges follow the tensors', async () => {
    for (const m of [mlsd, generated('subgraphs.onnx'), ...sharedModelFiles().slice(0, 4)].filter(has)) {
      const a = await analyze(m);
      const model = buildGraphModel(a);
      assert.equal(model.byLayer.size, a.layers.length, path.basename(m));
      for (const [k, id] of model.byLayer) {
        assert.equal(model.nodes[id].name, a.layers[k].name);
        assert.equal(model.nodes[id].path, a.layers[k].path || '');
      }
      // Every edge joins a tensor's producer to a node that reads it.
      for (const [from, to, t] of model.edges) {
        assert.ok(model.nodes[from].outputs.includes(t));
        assert.ok(model.nodes[to].inputs.includes(t));
      }
      // Every node is in the tree exactly once.
      const seen = new Set();
      const visit = (members) => {
        for (const mm of members) {
          if (mm.type === 'node') {
            assert.ok(!seen.has(mm.id));
            seen.add(mm.id);
          } else {
            const g = model.groups.get(mm.id);
            if (g.kind === 'subgraph') seen.add(g.node);
            visit(g.members);
          }
        }
      };
      visit(model.top);
      assert.equal(seen.size, model.nodes.length, path.basename(m));
    }
  });
});

describe(
  'graph view in Chromium',
  { skip: noChromium || (!has(mlsd) ? 'models/fetched missing (tools/bootstrap.sh)' : false), timeout: 600000 },
  () => {
    let browser;
    let server;
    let url;
    before(async () => {
      const dir = path.join(artifacts, 'views-graph');
      fs.mkdirSync(dir, { recursive: true });
      await bundle(path.join(root, 'tests', 'js', 'fixtures', 'views-graph-harness.js'), path.join(dir, 'harness.js'));
      fs.writeFileSync(
        path.join(dir, 'index.html'),
        '<!doctype html><meta charset="utf-8"><title>QuantLens graph</title>' +
          '<body style="margin:16px;background:#fff"><div id="view"></div><script type="module" src="./harness.js"></script>',
      );
      server = await serve(root);
      url = `http://127.0.0.1:${server.address().port}/tests/artifacts/views-graph/index.html`;
      browser = await launch();
    });
    after(async () => {
      await browser?.close();
      server?.close();
    });
    async function open(viewport = { width: 1400, height: 1000 }) {
      const page = await newPage(browser, { viewport });
      await guardHtmlSinks(page);
      await page.goto(url);
      await page.waitForFunction(() => !!window.QL);
      return page;
    }
    const render = (page, a, options) =>
      page.evaluate(([j, o]) => window.QL.render(j, o), [encode(a), options ? { json: encode(options) } : {}]);
    const drawn = (page) => page.waitForSelector('.ql-graph-view[data-state="drawn"]');

    // The boxes drawn: nodes and shut groups; their counts add up to the model's nodes.
    const boxes = (page) =>
      page.evaluate(() => ({
        nodes: [...document.querySelectorAll('g.ql-graph-node')].map((g) => ({
          id: Number(g.dataset.node),
          layer: g.dataset.layer === undefined ? -1 : Number(g.dataset.layer),
          risk: g.dataset.risk ?? null,
          fill: g.querySelector('rect.ql-box').getAttribute('fill'),
          badge: g.querySelector('.ql-graph-badge text')?.textContent ?? null,
          selected: g.classList.contains('ql-selected'),
          match: g.classList.contains('ql-match'),
        })),
        shut: [...document.querySelectorAll('g.ql-graph-group[data-open="false"]')].map((g) => ({
          id: g.dataset.group,
          kind: g.dataset.kind,
          count: Number(g.dataset.count),
        })),
        open: [...document.querySelectorAll('g.ql-graph-group[data-open="true"]')].map((g) => g.dataset.group),
      }));
    const covered = (b) => b.nodes.length + b.shut.reduce((s, g) => s + g.count, 0);

    function checkColours(a, b, scheme) {
      for (const n of b.nodes) {
        if (n.layer < 0) {
          assert.equal(n.risk, null);
          continue;
        }
        const l = a.layers[n.layer];
        const risk = layerWhy(l, scheme).risk;
        assert.equal(n.risk, risk, `${l.name} under ${scheme}`);
        assert.equal(n.fill, colors.risk[risk]);
        const outliers = l.error ? 0 : l.outlierChannels.length;
        assert.equal(n.badge, outliers ? String(outliers) : null, l.name);
      }
    }

    // Whether node `id`'s box lies inside the frame on screen.
    const onScreen = (page, id) =>
      page.evaluate((k) => {
        const box = document.querySelector(`g.ql-graph-node[data-node="${k}"]`)?.getBoundingClientRect();
        const frame = document.querySelector('.ql-graph-frame').getBoundingClientRect();
        return !!box && box.left >= frame.left && box.right <= frame.right && box.top >= frame.top && box.bottom <= frame.bottom;
      }, id);

    test('M-LSD: one box per node, coloured by risk under each scheme, outlier badges', async () => {
      const a = await analyze(mlsd);
      const page = await open();
      const ms = await render(page, a);
      await drawn(page);
      console.log(`# mlsd: ${a.graph.nodes.length} nodes drawn in ${Math.round(ms)} ms`);
      let b = await boxes(page);
      assert.equal(b.shut.length, 0, 'a small model opens with every group open');
      assert.equal(b.nodes.length, a.graph.nodes.length);
      assert.equal(b.nodes.filter((n) => n.layer >= 0).length, a.layers.length);
      checkColours(a, b, 'int8PerTensor');
      assert.ok(
        b.nodes.some((n) => n.badge),
        'M-LSD has layers with outlier channels',
      );
      const edges = await page.$$eval('path.ql-graph-edge', (p) => p.length);
      assert.ok(edges >= a.graph.nodes.length - 2, `edges drawn: ${edges}`);
      await screenshot(page, 'graph-mlsd-int8-per-tensor', { fullPage: false });
      for (const scheme of ['int8PerChannel', 'int4PerTensor']) {
        await page.selectOption('select[data-action="scheme"]', scheme);
        b = await boxes(page);
        checkColours(a, b, scheme);
        assert.deepEqual((await page.evaluate(() => window.__calls)).at(-1), ['scheme', scheme]);
      }
      await screenshot(page, 'graph-mlsd-int4-per-tensor', { fullPage: false });
      assert.deepEqual(page.errors, []);
      assert.deepEqual(await htmlSinkHits(page, ['Conv']), []);
      await page.close();
    });

    test('selection both ways: a click selects the layer, select() reveals and marks it', async () => {
      const a = await analyze(mlsd);
      const page = await open();
      await render(page, a);
      await drawn(page);
      const model = buildGraphModel(a);
      const k = a.layers.length - 1;
      const id = model.byLayer.get(k);
      await page.evaluate((p) => window.QL.select(p), k);
      assert.ok(await onScreen(page, id), 'the selected node is brought into view');
      let b = await boxes(page);
      assert.deepEqual(
        b.nodes.filter((n) => n.selected).map((n) => n.layer),
        [k],
      );
      assert.match(await page.textContent('[data-field="info"]'), new RegExp(a.layers[k].name));
      await screenshot(page, 'graph-mlsd-selected', { fullPage: false });
      // A click on another layer's node calls onSelect with its position and marks it.
      const other = model.byLayer.get(0);
      await page.evaluate((id) => window.QL.reveal(id), other); // brought into view first
      await page.click(`g.ql-graph-node[data-node="${other}"]`);
      assert.deepEqual((await page.evaluate(() => window.__calls)).at(-1), ['select', 0]);
      b = await boxes(page);
      assert.deepEqual(
        b.nodes.filter((n) => n.selected).map((n) => n.layer),
        [0],
      );
      // A node without weights is not a layer: no selection, a line saying what it is.
      const plain = b.nodes.find((n) => n.layer < 0);
      await page.evaluate((id) => window.QL.reveal(id), plain.id);
      const before = (await page.evaluate(() => window.__calls)).length;
      await page.click(`g.ql-graph-node[data-node="${plain.id}"]`);
      assert.equal((await page.evaluate(() => window.__calls)).length, before);
      assert.match(await page.textContent('[data-field="info"]'), /no weights analysed/);
      await page.close();
    });

    test('a 2,000-node model: opens shut in runs, the counts add up, search reveals a node inside a shut run', async () => {
      const file = await bigModel();
      const a = await analyze(file);
      assert.ok(a.graph.nodes.length >= 1900 && a.graph.nodes.length <= 2100, `${a.graph.nodes.length} nodes`);
      const page = await open();
      const ms = await render(page, a);
      await drawn(page);
      const layoutMs = await page.$eval('.ql-graph-view', (r) => r.dataset.layoutMs);
      console.log(`# ${a.graph.nodes.length}-node model: drawn ${Math.round(ms)} ms after render() (layout ${layoutMs} ms)`);
      let b = await boxes(page);
      assert.ok(b.shut.length > 0, 'opens with groups shut');
      assert.ok(b.nodes.length + b.shut.length <= 200, `${b.nodes.length + b.shut.length} boxes`);
      assert.equal(covered(b), a.graph.nodes.length);
      await screenshot(page, 'graph-2000-shut', { fullPage: false });
      // Search for a node deep in the graph: its run opens and it is centred.
      const target = a.graph.nodes.findIndex((n) => n.name === 'layers.100.down_proj');
      assert.ok(target > 0);
      await page.fill('input[data-action="search"]', 'layers.100.down_proj');
      await page.press('input[data-action="search"]', 'Enter');
      await page.waitForSelector(`g.ql-graph-node[data-node="${target}"].ql-match`);
      await drawn(page);
      assert.ok(await onScreen(page, target));
      assert.equal(await page.textContent('[data-field="search-count"]'), '1 of 1');
      b = await boxes(page);
      assert.equal(covered(b), a.graph.nodes.length);
      await screenshot(page, 'graph-2000-search', { fullPage: false });
      // Collapse all, then open one group with a click.
      await page.click('button[data-action="collapse-all"]');
      await drawn(page);
      b = await boxes(page);
      assert.equal(b.nodes.length, 0);
      assert.equal(covered(b), a.graph.nodes.length);
      const first = b.shut[0];
      await page.click(`g.ql-graph-group[data-group="${first.id}"] .ql-head`);
      await page.waitForSelector(`g.ql-graph-group[data-group="${first.id}"][data-open="true"]`);
      await drawn(page);
      b = await boxes(page);
      assert.ok(b.nodes.length > 0);
      assert.equal(covered(b), a.graph.nodes.length);
      await screenshot(page, 'graph-2000-one-open', { fullPage: false });
      assert.deepEqual(page.errors, []);
      await page.close();
    });

    test('sub-graphs: If, Loop and Scan bodies are groups, their layers coloured, revealed when selected', async () => {
      const m = generated('subgraphs.onnx');
      const a = await analyze(m);
      const page = await open();
      await render(page, a);
      await drawn(page);
      let b = await boxes(page);
      assert.equal(b.nodes.length + b.shut.length > 0, true);
      const opens = await page.$$eval('g.ql-graph-group', (gs) => gs.map((g) => [g.dataset.kind, g.dataset.open]));
      assert.ok(opens.some(([k]) => k === 'subgraph'));
      assert.ok(opens.some(([k]) => k === 'body'));
      assert.equal(covered(b), a.graph.nodes.length);
      checkColours(a, b, 'int8PerTensor');
      // Every layer in a body is drawn inside its body's box.
      const inBody = a.layers.map((l, k) => [l, k]).filter(([l]) => l.path);
      assert.ok(inBody.length > 0);
      await screenshot(page, 'graph-subgraphs-open', { fullPage: false });
      await page.click('button[data-action="collapse-all"]');
      await drawn(page);
      b = await boxes(page);
      assert.equal(covered(b), a.graph.nodes.length);
      await screenshot(page, 'graph-subgraphs-shut', { fullPage: false });
      // Selecting a layer inside a shut body opens what encloses it.
      const [l, k] = inBody.at(-1);
      await page.evaluate((p) => window.QL.select(p), k);
      await drawn(page);
      b = await boxes(page);
      const node = b.nodes.find((n) => n.layer === k);
      assert.ok(node && node.selected, l.name);
      assert.ok(await onScreen(page, node.id));
      await screenshot(page, 'graph-subgraphs-revealed', { fullPage: false });
      assert.deepEqual(page.errors, []);
      await page.close();
    });

    test('hostile names are text, never markup', async () => {
      const m = generated('hostile_names.onnx');
      if (!has(m)) return;
      const a = await analyze(m);
      const page = await open();
      await render(page, a);
      await drawn(page);
      const titles = await page.$$eval('g.ql-graph-node > title', (ts) => ts.map((t) => t.textContent));
      for (const n of a.graph.nodes.filter((x) => !x.path)) assert.ok(titles.includes(n.name));
      assert.deepEqual(await htmlSinkHits(page, ['<', 'onerror']), []);
      assert.deepEqual(page.errors, []);
      await screenshot(page, 'graph-hostile', { fullPage: false });
      await page.close();
    });

    test('equalization: sequences drawn through their layers, stops marked with their reasons', async () => {
      const a = await analyze(mlsd);
      const eq = await equalize(mlsd);
      const page = await open();
      await render(page, a, { equalization: eq });
      await drawn(page);
      const seqs = await page.$$eval('path.ql-graph-sequence', (p) => p.map((x) => Number(x.dataset.sequence)));
      const expected = eq.sequences.map((s, k) => [s, k]).filter(([s]) => s.layers.length >= 2);
      assert.deepEqual(
        seqs,
        expected.map(([, k]) => k),
      );
      const stops = await page.$$eval('g.ql-graph-stop', (gs) =>
        gs.map((g) => [g.dataset.stops, g.querySelector('title').textContent]),
      );
      const marked = stops.flatMap(([k]) => k.split(' ').map(Number));
      assert.deepEqual(
        marked.sort((x, y) => x - y),
        eq.stops.map((_, k) => k),
      );
      for (const [k, title] of stops) for (const s of k.split(' ')) assert.ok(title.includes(eq.stops[Number(s)].reason));
      await screenshot(page, 'graph-mlsd-equalization', { fullPage: false });
      assert.deepEqual(page.errors, []);
      await page.close();
    });

    for (const [label, file] of [
      ['yolox_nano', yolox],
      ['road_segmentation_adas_0001', road],
    ])
      test(
        `${label}: a real model drawn, counts add up, colours follow the analysis`,
        { skip: !has(file) && `${file} absent` },
        async () => {
          const a = await analyze(file);
          const page = await open();
          const ms = await render(page, a);
          await drawn(page);
          console.log(`# ${label}: ${a.graph.nodes.length} nodes, drawn ${Math.round(ms)} ms after render()`);
          let b = await boxes(page);
          assert.equal(covered(b), a.graph.nodes.length);
          checkColours(a, b, 'int8PerTensor');
          await screenshot(page, `graph-${label}`, { fullPage: false });
          await page.click('button[data-action="expand-all"]');
          await drawn(page);
          b = await boxes(page);
          assert.equal(b.nodes.length, a.graph.nodes.length);
          checkColours(a, b, 'int8PerTensor');
          await screenshot(page, `graph-${label}-expanded`, { fullPage: false });
          assert.deepEqual(page.errors, []);
          await page.close();
        },
      );
  },
);

describe(
  'graph in the app and its report',
  { skip: noChromium || (!has(mlsd) ? 'models/fetched missing' : false), timeout: 600000 },
  () => {
    const appFile = path.join(root, 'web', 'dist', 'app', 'index.html');
    let browser;
    before(async () => {
      browser = await launch();
    });
    after(async () => browser?.close());

    test(
      'the Graph tab: table → graph reveals, graph → Layer view; in the saved report',
      { skip: !has(appFile) && 'app not built' },
      async () => {
        const page = await newPage(browser, { viewport: { width: 1400, height: 1000 } });
        await page.goto(`file://${appFile}`);
        await page.setInputFiles('#ql-file', mlsd);
        await page.waitForSelector('body[data-state="done"]');
        const a = await analyze(mlsd);
        const model = buildGraphModel(a);
        // A row chosen in the Model table: the Layer view shows it, the Graph reveals it.
        const k = 5;
        await page.click(`table.ql-layer-table tbody tr[data-position="${k}"]`);
        await page.click('#ql-tabbtn-graph');
        await page.waitForSelector('.ql-graph-view[data-state="drawn"]');
        await page.waitForSelector(`g.ql-graph-node[data-layer="${k}"].ql-selected`);
        await screenshot(page, 'graph-app-revealed', { fullPage: false });
        // A node found by the graph's search and clicked: the Layer view shows that layer.
        const j = 12;
        await page.fill('input[data-action="search"]', a.layers[j].name);
        await page.press('input[data-action="search"]', 'Enter');
        await page.waitForSelector(`g.ql-graph-node[data-layer="${j}"].ql-match`);
        await page.click(`g.ql-graph-node[data-node="${model.byLayer.get(j)}"]`);
        await page.click('#ql-tabbtn-layer');
        assert.equal(await page.$eval('#ql-layer-select', (s) => s.value), String(j));
        await page.click('#ql-tabbtn-model');
        await page.waitForSelector(`table.ql-layer-table tbody tr[data-position="${j}"].ql-selected`);
        // Equalization run in the page: its view draws the sequences and stops on the graph.
        await page.click('#ql-tabbtn-equalization');
        await page.click('#ql-eq-run');
        await page.waitForSelector('body[data-state="done"] #ql-eq-graph .ql-graph-view[data-state="drawn"]');
        const eq = await equalize(mlsd);
        const drawnSeqs = await page.$$eval('#ql-eq-graph path.ql-graph-sequence', (p) => p.length);
        assert.equal(drawnSeqs, eq.sequences.filter((q) => q.layers.length >= 2).length);
        await page.$eval('#ql-eq-graph', (e) => e.scrollIntoView());
        await screenshot(page, 'graph-app-equalization', { fullPage: false });
        assert.deepEqual(page.errors, []);
        await page.close();

        // The saved report draws the graph offline, with no request.
        const html = await saveReport({ analysis: a });
        const file = path.join(tmp, 'mlsd.report.html');
        fs.writeFileSync(file, html);
        const report = await newPage(browser, { viewport: { width: 1400, height: 1000 } });
        const requests = [];
        await report.route('**/*', (r) => {
          if (!r.request().url().startsWith('file:')) requests.push(r.request().url());
          return r.request().url().startsWith('file:') ? r.continue() : r.abort();
        });
        await report.goto(`file://${file}`);
        await report.click('#ql-tabbtn-graph');
        await report.waitForSelector('.ql-graph-view[data-state="drawn"]');
        assert.equal(await report.$$eval('g.ql-graph-node', (g) => g.length), a.graph.nodes.length);
        await screenshot(report, 'graph-report', { fullPage: false });
        assert.deepEqual(requests, []);
        assert.deepEqual(report.errors, []);
        await report.close();
      },
    );
  },
);
