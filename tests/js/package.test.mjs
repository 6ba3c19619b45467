// The package as users get it: `npm pack`, the tarball's file list, then a fresh project
// that installs the tarball (offline, from npm's cache) and uses it from Node, from pages
// bundled by esbuild and by Vite, from a plain <script type="module"> page served
// statically, from a module Web Worker through createWorkerClient(), and from TypeScript.
// Every number must equal what the in-repo API computes under Node.
import assert from 'node:assert/strict';
import { spawnSync } from 'node:child_process';
import crypto from 'node:crypto';
import fs from 'node:fs';
import os from 'node:os';
import path from 'node:path';
import { after, before, test } from 'node:test';
import { analyze, compare, equalize, toJSON } from '../../web/src/index.js';
import { root } from './helpers.mjs';
import { launch, newPage, noChromium, serve } from './chromium.mjs';

const MODEL_NAME = 'mlsd_320x320_tiny.onnx';
const modelFile = path.join(root, 'models', 'fetched', MODEL_NAME);
const noModel = fs.existsSync(modelFile) ? false : `models/fetched/${MODEL_NAME} is absent (tools/fetch-models.mjs fetches it)`;
const built = [
  'web/dist/quantlens_core.mjs',
  'web/dist/quantlens_core.wasm',
  'web/dist/quantlens_core.inline.js',
  'web/dist/app/index.html',
];
const noBuild = built.every((f) => fs.existsSync(path.join(root, f))) ? false : 'web/dist is not built (bash tools/build.sh)';
const canImport = async (name) => {
  try {
    await import(name);
    return false;
  } catch {
    return `${name} is not installed`;
  }
};
const noVite = await canImport('vite');
const noTypeScript = await canImport('typescript');

// npm as a user runs it: none of the npm_* variables an enclosing `npm test` sets.
const cleanEnv = Object.fromEntries(Object.entries(process.env).filter(([k]) => !/^npm_/i.test(k)));
function sh(cmd, args, { cwd = root, allowFail = false } = {}) {
  const r = spawnSync(cmd, args, { cwd, env: cleanEnv, encoding: 'utf8', maxBuffer: 1 << 28, timeout: 180000 });
  if (!allowFail && r.status !== 0)
    throw new Error(`${cmd} ${args.join(' ')} (in ${cwd}) exited ${r.status}:\n${r.stdout}\n${r.stderr}`);
  return r;
}

let tmp; // everything this suite writes
let project; // the consumer project with the tarball installed
let pack; // npm pack --json: { filename, size, unpackedSize, entryCount, files }
let setupError = null;

before(async () => {
  if (noBuild) return;
  tmp = fs.mkdtempSync(path.join(os.tmpdir(), 'quantlens-package-'));
  try {
    [pack] = JSON.parse(sh('npm', ['pack', '--json', '--pack-destination', tmp]).stdout);
    project = path.join(tmp, 'project');
    fs.mkdirSync(project);
    fs.writeFileSync(
      path.join(project, 'package.json'),
      JSON.stringify({ name: 'quantlens-consumer', private: true, type: 'module' }, null, 2),
    );
    const install = ['install', path.join(tmp, pack.filename), '--no-audit', '--no-fund', '--no-package-lock'];
    // d3 and its packages come from npm's cache (npm ci put them there); the network only if they are not.
    const offline = sh('npm', [...install, '--offline'], { cwd: project, allowFail: true });
    if (offline.status !== 0) sh('npm', [...install, '--prefer-offline'], { cwd: project });
  } catch (e) {
    setupError = e;
  }
});

after(() => {
  if (tmp) fs.rmSync(tmp, { recursive: true, force: true });
});

const needsPackage = (t) => {
  if (setupError) throw setupError;
  assert.ok(project, 'the package was not installed');
  return t;
};

// What the in-repo API computes under Node, once.
let reference = null;
async function nodeReference() {
  if (!reference) {
    const analysis = toJSON(await analyze(modelFile));
    const { bytes, ...report } = await equalize(modelFile);
    const comparison = await compare(modelFile, bytes);
    reference = {
      analysis,
      equalized: { sha256: crypto.createHash('sha256').update(bytes).digest('hex'), size: bytes.length, report: toJSON(report) },
      comparison: toJSON(comparison.summary),
    };
  }
  return reference;
}

// ------------------------------------------------------------------ the tarball

const ALLOWED = [
  /^README\.md$/,
  /^LICENSE(\.\w+)?$/,
  /^package\.json$/,
  /^types\/[\w-]+\.d\.ts$/,
  /^web\/src\/.+\.js$/,
  /^web\/cli\/[\w-]+\.js$/,
  /^web\/dist\/quantlens_core\.(mjs|wasm|inline\.js)$/,
  /^web\/dist\/app\/index\.html$/,
  /^docs\/[\w-]+\.md$/,
];

test(
  'the tarball carries the API, worker, views, CLI, core, app page and types, and nothing else',
  { skip: noBuild, timeout: 120000 },
  () => {
    needsPackage();
    const files = pack.files.map((f) => f.path).sort();
    const stray = files.filter((f) => !ALLOWED.some((re) => re.test(f)));
    assert.deepEqual(stray, [], 'files that users do not need');
    for (const bad of [
      /^tests\//,
      /^tools\//,
      /^src\//,
      /^wasm\//,
      /^models\//,
      /\.onnx$/,
      /^build/,
      /^web\/app\//,
      /node_modules/,
    ]) {
      assert.ok(!files.some((f) => bad.test(f)), `${bad} in the tarball`);
    }
    // Every module of the API and every declaration in the repo is in it.
    const walk = (dir) =>
      fs
        .readdirSync(dir, { withFileTypes: true })
        .flatMap((d) => (d.isDirectory() ? walk(path.join(dir, d.name)) : [path.join(dir, d.name)]));
    const want = [
      ...walk(path.join(root, 'web', 'src')),
      ...walk(path.join(root, 'web', 'cli')),
      ...walk(path.join(root, 'types')),
    ]
      .map((f) => path.relative(root, f))
      .filter((f) => /\.(js|d\.ts)$/.test(f));
    // The README's links into docs/ must resolve on the package's page and in node_modules.
    const docs = fs
      .readdirSync(path.join(root, 'docs'))
      .filter((f) => f.endsWith('.md'))
      .map((f) => `docs/${f}`);
    for (const f of [...want, ...built, ...docs, 'README.md', 'package.json'])
      assert.ok(files.includes(f), `${f} is missing from the tarball`);
    // The export map and the bin point at files in it.
    const pkg = JSON.parse(fs.readFileSync(path.join(root, 'package.json'), 'utf8'));
    const targets = [
      pkg.main,
      pkg.types,
      ...Object.values(pkg.bin),
      ...Object.values(pkg.exports).flatMap((e) => (typeof e === 'string' ? [e] : Object.values(e))),
    ].map((f) => f.replace(/^\.\//, ''));
    for (const f of targets) assert.ok(files.includes(f), `${f} (package.json) is not in the tarball`);
    // Every relative import of every module resolves to a file in it.
    for (const f of files.filter((x) => /\.(m?js)$/.test(x))) {
      const text = fs.readFileSync(path.join(project, 'node_modules', 'quantlens', f), 'utf8');
      for (const m of text.matchAll(/(?:\bfrom\s*|\bimport\s*\(?\s*|new URL\(\s*)['"](\.{1,2}\/[^'"]+)['"]/g)) {
        const target = path.posix.normalize(path.posix.join(path.posix.dirname(f), m[1]));
        assert.ok(files.includes(target), `${f} refers to ${m[1]}, which is not in the tarball`);
      }
    }
    // Measured: 1.66 MB packed since the compression code (Eigen's eigen solver and SVD: the
    // .wasm went from 0.59 to 0.94 MB; it is in the tarball three times: as is, as base64 for
    // 'quantlens/inline', and inside the app page); a model slipping in would show here.
    assert.ok(pack.size < 2.5e6, `tarball ${pack.size} bytes`);
    console.log(
      `# tarball: ${pack.filename} ${(pack.size / 1e6).toFixed(2)} MB packed, ${(pack.unpackedSize / 1e6).toFixed(2)} MB unpacked, ${pack.entryCount} files`,
    );
  },
);

// ------------------------------------------------------------------ Node

// Runs a module in the consumer project (so 'quantlens' resolves to the installed copy).
function runInProject(name, source, args = []) {
  const file = path.join(project, name);
  fs.writeFileSync(file, source);
  const r = sh(process.execPath, [file, ...args], { cwd: project });
  return JSON.parse(r.stdout);
}

const nodeScript = (entry) => `
import crypto from 'node:crypto';
import * as q from '${entry}';
import * as views from 'quantlens/views';
import * as worker from 'quantlens/worker';
const { analyze, equalize, compare, saveReport, toJSON } = q;
const model = process.argv[2];
const analysis = await analyze(model);
const { bytes, ...report } = await equalize(model);
const comparison = await compare(model, bytes);
const html = await saveReport({ analysis });
console.log(JSON.stringify({
  resolved: import.meta.resolve('${entry}'),
  analysis: toJSON(analysis),
  equalized: { sha256: crypto.createHash('sha256').update(bytes).digest('hex'), size: bytes.length, report: toJSON(report) },
  comparison: toJSON(comparison.summary),
  report: { length: html.length, start: html.slice(0, 15), hasData: html.includes('ql-data') },
  exports: { main: Object.keys(q).sort(), views: Object.keys(views).sort(), worker: Object.keys(worker).sort() },
}));
`;

test(
  'Node: the installed package (quantlens and quantlens/inline) gives the in-repo results; its bin runs',
  { skip: noBuild || noModel, timeout: 120000 },
  async () => {
    needsPackage();
    const ref = await nodeReference();
    for (const entry of ['quantlens', 'quantlens/inline']) {
      const out = runInProject(`node-${entry.replace('/', '-')}.mjs`, nodeScript(entry), [modelFile]);
      assert.ok(
        out.resolved.startsWith(`file://${path.join(project, 'node_modules', 'quantlens')}/`),
        `${entry} resolved to ${out.resolved}`,
      );
      assert.deepEqual(out.analysis, ref.analysis, `${entry}: analysis`);
      assert.deepEqual(out.equalized, ref.equalized, `${entry}: equalization`);
      assert.deepEqual(out.comparison, ref.comparison, `${entry}: comparison`);
      assert.match(out.report.start, /^<!doctype html>/i);
      assert.ok(out.report.hasData && out.report.length > 100000, 'saveReport() from the installed package');
      assert.deepEqual(out.exports.views, [
        'renderCompareView',
        'renderCompressionView',
        'renderEqualizationView',
        'renderGraphView',
        'renderLayerView',
        'renderModelView',
      ]);
      assert.deepEqual(out.exports.worker, ['serve']);
    }
    const bin = path.join(project, 'node_modules', '.bin', 'quantlens');
    const help = sh(bin, ['--help'], { cwd: project });
    assert.match(help.stdout, /Usage: quantlens/);
    const table = sh(bin, ['analyze', modelFile, '--top', '3'], { cwd: project });
    assert.match(table.stdout, new RegExp(ref.analysis.summary.worstInt8PerTensor.layer));
  },
);

// ------------------------------------------------------------------ browsers

// The page side: analyze a fetched model on the main thread and draw the model view.
const pageMain = `
window.runMain = async (url, name) => {
  const file = new File([await (await fetch(url)).blob()], name);
  const analysis = await analyze(file);
  const view = document.createElement('div');
  document.body.append(view);
  renderModelView(view, analysis);
  return { analysis: toJSON(analysis), rows: view.querySelectorAll('tbody tr').length };
};
`;

// The page side of the worker client: analyze with progress, equalize, compare, cancel
// (and go on with a fresh worker), a bad file's error.
const pageWorker = `
const hex = (buf) => Array.from(new Uint8Array(buf), (b) => b.toString(16).padStart(2, '0')).join('');
window.runWorker = async (url, name) => {
  const file = new File([await (await fetch(url)).blob()], name);
  const client = window.makeClient ? window.makeClient() : createWorkerClient();
  const phases = [];
  const analysis = await client.analyze(file, { onProgress: (p) => { if (!phases.includes(p.phase)) phases.push(p.phase); } });
  const { bytes, ...report } = await client.equalize(file);
  const equalized = { sha256: hex(await crypto.subtle.digest('SHA-256', bytes)), size: bytes.length, report: toJSON(report) };
  const comparison = await client.compare(file, new File([bytes], 'equalized.onnx'));
  const pending = client.analyze(file);
  client.cancel();
  const cancelled = await pending.then(() => 'finished', (e) => ({ code: e.code, isQuantLensError: e instanceof QuantLensError }));
  const again = await client.analyze(file);
  const bad = await client.analyze(new File([new Uint8Array([8, 1, 18, 200])], 'bad.onnx')).then(() => null, (e) => ({ code: e.code, name: e.name, message: e.message }));
  const controller = new AbortController();
  const aborting = client.analyze(file, { signal: controller.signal });
  controller.abort();
  const aborted = await aborting.then(() => 'finished', (e) => e.code);
  const afterAbort = await client.analyze(file);
  client.terminate();
  const afterTerminate = await client.analyze(file).then(() => 'finished', (e) => e.code);
  return {
    analysis: toJSON(analysis), phases, equalized, comparison: toJSON(comparison.summary), cancelled,
    againSame: JSON.stringify(toJSON(again)) === JSON.stringify(toJSON(analysis)),
    afterAbortSame: JSON.stringify(toJSON(afterAbort)) === JSON.stringify(toJSON(analysis)),
    bad, aborted, afterTerminate,
  };
};
`;

const modelsMount = { '/models/': path.dirname(modelFile) + path.sep };

async function openPage(dir, pagePath, fn) {
  const server = await serve(dir, modelsMount);
  const browser = await launch();
  try {
    const page = await newPage(browser);
    page.failed = [];
    page.on('requestfailed', (r) => page.failed.push(r.url()));
    page.on('response', (r) => {
      if (r.status() >= 400) page.failed.push(`${r.status()} ${r.url()}`);
    });
    await page.goto(`http://127.0.0.1:${server.address().port}${pagePath}`);
    await page.waitForFunction(() => window.runMain || window.runWorker, null, { timeout: 30000 });
    return await fn(page);
  } finally {
    await browser.close();
    server.close();
  }
}

async function checkMain(page) {
  const ref = await nodeReference();
  const out = await page.evaluate(([url, name]) => window.runMain(url, name), [`/models/${MODEL_NAME}`, MODEL_NAME]);
  assert.deepEqual(out.analysis, ref.analysis, 'the page computes what Node computes');
  assert.equal(out.rows, ref.analysis.layers.length, 'renderModelView drew one row per layer');
}

async function checkWorker(page) {
  const ref = await nodeReference();
  const out = await page.evaluate(([url, name]) => window.runWorker(url, name), [`/models/${MODEL_NAME}`, MODEL_NAME]);
  assert.deepEqual(out.analysis, ref.analysis, 'the worker computes what Node computes');
  assert.deepEqual(out.phases, ['read', 'analyze'], 'progress through options.onProgress');
  assert.deepEqual(out.equalized, ref.equalized, 'equalize() in the worker: same file, same report');
  assert.deepEqual(out.comparison, ref.comparison, 'compare() in the worker');
  assert.deepEqual(out.cancelled, { code: 'ABORTED', isQuantLensError: true });
  assert.ok(out.againSame, 'after cancel(), a fresh worker serves the next job');
  assert.equal(out.bad.code, 'INVALID_MODEL');
  assert.equal(out.bad.name, 'QuantLensError');
  assert.equal(out.aborted, 'ABORTED', 'options.signal aborts a worker job');
  assert.ok(out.afterAbortSame, 'the worker goes on after an aborted job');
  assert.equal(out.afterTerminate, 'ABORTED', 'a terminated client refuses work');
}

function assertClean(page) {
  assert.deepEqual(page.errors, [], 'page errors');
  assert.deepEqual(page.failed, [], 'failed requests');
}

const skipBrowser = noBuild || noModel || noChromium;

test(
  'esbuild: pages bundled from the installed package (quantlens/inline; quantlens + quantlens/wasm as a file; a worker bundle) run in Chromium',
  { skip: skipBrowser, timeout: 120000 },
  async () => {
    needsPackage();
    const esbuild = await import('esbuild');
    const site = path.join(project, 'esbuild-site');
    fs.mkdirSync(site, { recursive: true });
    const entries = {
      // Zero configuration: the .wasm travels inside the bundle.
      inline: `import { analyze, toJSON } from 'quantlens/inline';\nimport { renderModelView } from 'quantlens/views';\n${pageMain}`,
      // The .wasm as a file beside the bundle, its URL handed to configureCore.
      url: `import { analyze, configureCore, toJSON } from 'quantlens';\nimport { renderModelView } from 'quantlens/views';\nimport wasmUrl from 'quantlens/wasm';\nconfigureCore({ wasmUrl });\n${pageMain}`,
      // A worker bundled from 'quantlens/inline' + 'quantlens/worker', started by the client's factory.
      'worker-entry': `import 'quantlens/inline';\nimport 'quantlens/worker';\n`,
      worker:
        `import { createWorkerClient, toJSON, QuantLensError } from 'quantlens';\n` +
        `window.makeClient = () => createWorkerClient(() => new Worker(new URL('./worker-entry.js', location.href), { type: 'module' }));\n${pageWorker}`,
    };
    for (const [name, source] of Object.entries(entries)) {
      fs.writeFileSync(path.join(project, `esbuild-${name}.js`), source);
      await esbuild.build({
        absWorkingDir: project,
        entryPoints: [`./esbuild-${name}.js`],
        outfile: path.join(site, `${name}.js`),
        bundle: true,
        format: 'esm',
        platform: 'browser',
        logLevel: 'error',
        loader: { '.wasm': 'file' },
      });
      fs.writeFileSync(
        path.join(site, `${name}.html`),
        `<!doctype html><meta charset="utf-8"><script type="module" src="./${name}.js"></script>`,
      );
    }
    const emitted = fs.readdirSync(site);
    assert.ok(
      emitted.some((f) => /^quantlens_core-\w+\.wasm$/.test(f)),
      `the file loader copied the .wasm: ${emitted}`,
    );
    for (const name of ['inline', 'url']) {
      await openPage(site, `/${name}.html`, async (page) => {
        await checkMain(page);
        assertClean(page);
      });
    }
    await openPage(site, '/worker.html', async (page) => {
      await checkWorker(page);
      assertClean(page);
    });
    // Without either, esbuild leaves the .wasm behind: the error says what to do.
    fs.writeFileSync(
      path.join(project, 'esbuild-bare.js'),
      `import { analyze } from 'quantlens';\nwindow.runMain = (url) => fetch(url).then((r) => r.arrayBuffer()).then((b) => analyze(new Uint8Array(b))).then(() => 'finished', (e) => ({ code: e.code, message: e.message }));\n`,
    );
    await esbuild.build({
      absWorkingDir: project,
      entryPoints: ['./esbuild-bare.js'],
      outfile: path.join(site, 'bare.js'),
      bundle: true,
      format: 'esm',
      platform: 'browser',
      logLevel: 'error',
    });
    fs.writeFileSync(
      path.join(site, 'bare.html'),
      '<!doctype html><meta charset="utf-8"><script type="module" src="./bare.js"></script>',
    );
    await openPage(site, '/bare.html', async (page) => {
      const out = await page.evaluate((url) => window.runMain(url), `/models/${MODEL_NAME}`);
      assert.equal(out.code, 'IO_ERROR');
      assert.match(
        out.message,
        /cannot load the WebAssembly core from http:\/\/127\.0\.0\.1:\d+\/dist\/quantlens_core\.wasm.*configureCore\(\{ wasmUrl \}\).*quantlens\/inline/,
      );
      assert.ok(
        page.errors.every((e) => /status of 404/.test(e)),
        `page errors other than the missing .wasm: ${page.errors}`,
      );
    });
  },
);

test(
  'Vite: a page built by vite build from the installed package (API, views, createWorkerClient()) runs in Chromium',
  { skip: skipBrowser || noVite, timeout: 120000 },
  async () => {
    needsPackage();
    const { build } = await import('vite');
    const app = path.join(project, 'vite-app');
    fs.mkdirSync(app, { recursive: true });
    fs.writeFileSync(
      path.join(app, 'index.html'),
      '<!doctype html><meta charset="utf-8"><script type="module" src="./main.js"></script>\n',
    );
    fs.writeFileSync(
      path.join(app, 'main.js'),
      `import { analyze, createWorkerClient, toJSON, QuantLensError } from 'quantlens';\nimport { renderModelView } from 'quantlens/views';\n${pageMain}\n${pageWorker}`,
    );
    // No configuration: Vite copies the .wasm and bundles the worker from their new URL(..., import.meta.url).
    await build({ root: app, configFile: false, logLevel: 'silent', build: { outDir: 'dist', emptyOutDir: true } });
    const assets = fs.readdirSync(path.join(app, 'dist', 'assets'));
    assert.ok(
      assets.some((f) => /^quantlens_core-[\w-]+\.wasm$/.test(f)),
      `vite copied the .wasm: ${assets}`,
    );
    assert.ok(
      assets.some((f) => /^worker-[\w-]+\.js$/.test(f)),
      `vite bundled the worker: ${assets}`,
    );
    await openPage(path.join(app, 'dist'), '/index.html', async (page) => {
      await checkMain(page);
      await checkWorker(page);
      assertClean(page);
    });
  },
);

// An import map for d3 and its packages and dagre, as installed in the project (plain pages only).
function d3ImportMap() {
  const modules = path.join(project, 'node_modules');
  const imports = {};
  for (const name of fs.readdirSync(modules)) {
    if (!/^(d3(-.+)?|internmap|delaunator|robust-predicates)$/.test(name)) continue;
    const pkg = JSON.parse(fs.readFileSync(path.join(modules, name, 'package.json'), 'utf8'));
    const e = pkg.exports;
    const entry =
      (typeof e === 'string' ? e : e && (e.default || (e['.'] && (e['.'].default || e['.'])))) || pkg.module || pkg.main;
    imports[name] = `/node_modules/${name}/${entry.replace(/^\.\//, '')}`;
  }
  // The graph view's layout: @dagrejs/dagre's ES module build (graphlib is inside it).
  const dagre = path.join(modules, '@dagrejs', 'dagre', 'package.json');
  if (fs.existsSync(dagre)) {
    const entry = JSON.parse(fs.readFileSync(dagre, 'utf8')).exports['.'].import;
    imports['@dagrejs/dagre'] = `/node_modules/@dagrejs/dagre/${entry.replace(/^\.\//, '')}`;
  }
  return imports;
}

test(
  'a plain <script type="module"> page and a module worker, served from the installed package folder',
  { skip: skipBrowser, timeout: 120000 },
  async () => {
    needsPackage();
    const q = '/node_modules/quantlens';
    const imports = { quantlens: `${q}/web/src/index.js`, 'quantlens/views': `${q}/web/src/views/index.js`, ...d3ImportMap() };
    fs.mkdirSync(path.join(project, 'plain'), { recursive: true });
    fs.writeFileSync(
      path.join(project, 'plain', 'index.html'),
      `<!doctype html><meta charset="utf-8">
<script type="importmap">${JSON.stringify({ imports })}</script>
<script type="module">
import { analyze, createWorkerClient, toJSON, QuantLensError } from 'quantlens';
import { renderModelView } from 'quantlens/views';
${pageMain}
${pageWorker}
</script>
`,
    );
    await openPage(project, '/plain/index.html', async (page) => {
      await checkMain(page);
      // createWorkerClient() with no argument: a module worker from node_modules/quantlens/web/src/worker.js.
      await checkWorker(page);
      assertClean(page);
    });
  },
);

// ------------------------------------------------------------------ TypeScript

test(
  'TypeScript: the declarations cover every runtime export and a consumer type-checks (tsc --noEmit)',
  { skip: noBuild || noTypeScript, timeout: 120000 },
  async () => {
    needsPackage();
    const runtimeExports = runInProject(
      'exports.mjs',
      `
import * as main from 'quantlens';
import * as inline from 'quantlens/inline';
import * as views from 'quantlens/views';
import * as worker from 'quantlens/worker';
const keys = (m) => Object.keys(m).sort();
console.log(JSON.stringify({ main: keys(main), inline: keys(inline), views: keys(views), worker: keys(worker) }));
`,
    );
    assert.deepEqual(runtimeExports.inline, runtimeExports.main, 'quantlens/inline exports what quantlens does');
    const { default: ts } = await import('typescript');
    // The value exports declared for each entry must be exactly the runtime exports.
    const declared = (file) => {
      const program = ts.createProgram([file], { strict: true, noEmit: true, types: [] });
      const checker = program.getTypeChecker();
      const symbol = checker.getSymbolAtLocation(program.getSourceFile(file));
      return checker
        .getExportsOfModule(symbol)
        .filter((s) => s.flags & ts.SymbolFlags.Value)
        .map((s) => s.name)
        .sort();
    };
    const types = path.join(project, 'node_modules', 'quantlens', 'types');
    assert.deepEqual(
      declared(path.join(types, 'index.d.ts')),
      runtimeExports.main,
      'types/index.d.ts vs the exports of quantlens',
    );
    assert.deepEqual(declared(path.join(types, 'views.d.ts')), runtimeExports.views, 'types/views.d.ts');
    assert.deepEqual(declared(path.join(types, 'worker.d.ts')), runtimeExports.worker, 'types/worker.d.ts');

    fs.writeFileSync(
      path.join(project, 'tsconfig.json'),
      JSON.stringify({
        compilerOptions: {
          strict: true,
          noEmit: true,
          module: 'nodenext',
          moduleResolution: 'nodenext',
          target: 'es2022',
          lib: ['es2022', 'dom'],
          types: [],
        },
        files: ['consumer.ts'],
      }),
    );
    fs.writeFileSync(
      path.join(project, 'consumer.ts'),
      `
import {
  analyze, equalize, compare, toJSON, formatTable, formatEqualization, formatDb, saveReport, configureCore,
  createWorkerClient, QuantLensError, SCHEMES, SCHEMA,
  type Analysis, type Layer, type Equalization, type Comparison, type Progress, type ErrorCode, type WorkerClient,
} from 'quantlens';
import * as all from 'quantlens';
import * as inline from 'quantlens/inline';
import { renderModelView, renderLayerView, renderEqualizationView, renderCompareView, type View } from 'quantlens/views';
import { serve } from 'quantlens/worker';
import wasmUrl from 'quantlens/wasm';

export async function use(file: File, element: HTMLElement): Promise<string> {
  configureCore({ wasmUrl });
  configureCore({ wasmBinary: new Uint8Array(8) });
  configureCore({ wasmModule: await WebAssembly.compile(new Uint8Array(8)) });
  const onProgress = (p: Progress): void => { const share: number = p.done / p.total; void share; };
  const analysis: Analysis = await analyze(file, { histogramBins: 64, layers: /Conv/, onProgress, signal: new AbortController().signal });
  await analyze('model.onnx', { layers: (layer) => layer.op === 'Conv', externalData: { 'w.bin': new Uint8Array(4) } });
  let worst = Infinity;
  for (const layer of analysis.layers as Layer[]) {
    if (layer.error) { const code: string = layer.error.code; void code; continue; }
    worst = Math.min(worst, layer.sqnr.int8PerTensor, layer.channels.sqnr.int4PerChannel[0] ?? Infinity);
    const mins: Float32Array = layer.channels.min;
    const outliers: Uint32Array = layer.outlierChannels;
    void mins; void outliers;
  }
  const first: number | undefined = analysis.summary.ranking[0];
  const equalization: Equalization = await equalize(file, { keepRelu6: true, biasAbsorption: false, maxIterations: 10 });
  const bytes: Uint8Array = equalization.bytes!; // null only with output or blob
  const asBlob: Blob | null = (await equalize(file, { blob: true })).blob;
  const withData = await equalize(file, { blob: true, dataName: 'eq.onnx.data', externalData: { 'w.bin': new Uint8Array(4) } });
  const dataBlob: Blob | null | undefined = withData.dataBlob;
  const dataName: string | undefined = withData.dataName;
  void dataBlob; void dataName;
  void asBlob;
  const comparison: Comparison = await compare(file, bytes, { onProgress });
  const sqnr: number | undefined = comparison.pairs[0]?.tensor?.sqnr;
  const html: string = await saveReport({ analysis, equalization, comparison, analysisB: analysis }, { title: 'x' });
  const view: View = renderModelView(element, analysis, { onSelect: (position: number) => { renderLayerView(element, analysis, position); } });
  view.destroy();
  renderLayerView(element, analysis, 'Conv__293').destroy();
  renderEqualizationView(element, equalization, { onDownload: () => {} });
  renderCompareView(element, comparison, { onSelect: (pair, index: number) => { void pair.matchedBy; void index; } });
  const client: WorkerClient = createWorkerClient(() => new Worker(new URL('./worker.js', import.meta.url), { type: 'module' }), { wasmUrl });
  const inWorker: Analysis = await client.analyze([file], { onProgress, layers: /Conv/ });
  await client.equalize(file, { triples: false });
  await client.compare(file, [file]);
  client.cancel();
  client.terminate();
  createWorkerClient();
  try {
    await inline.analyze(bytes);
  } catch (e) {
    if (e instanceof QuantLensError) { const code: ErrorCode | string = e.code; const offset: number = e.offset; void code; void offset; }
  }
  // @ts-expect-error histogramBins is a number
  await analyze(file, { histogramBins: 'many' });
  // @ts-expect-error a layer has statistics only once narrowed (it may have failed)
  void analysis.layers[0].sqnr;
  // @ts-expect-error functions cannot reach a worker
  await client.analyze(file, { layers: (layer: unknown) => !!layer });
  // @ts-expect-error a string is not a model source in a worker
  await client.analyze('model.onnx');
  void serve; void inWorker; void first; void sqnr; void SCHEMES; void SCHEMA; void formatDb(worst);
  ${runtimeExports.main.map((name) => `void all.${name};`).join(' ')}
  return formatTable(analysis, { top: 5 }) + formatEqualization(equalization) + JSON.stringify(toJSON(analysis)) + html;
}
`,
    );
    const tsc = spawnSync(process.execPath, [path.join(root, 'node_modules', 'typescript', 'bin', 'tsc'), '-p', project], {
      cwd: project,
      encoding: 'utf8',
    });
    assert.equal(tsc.status, 0, `tsc --noEmit:\n${tsc.stdout}${tsc.stderr}`);
  },
);
