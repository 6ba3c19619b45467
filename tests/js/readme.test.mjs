// The examples in README.md and in every docs/*.md run, so they cannot rot. A fenced block
// right after a `<!-- tested: KIND -->` comment is one example:
//   node     an ES module, run with Node from inside the package (so 'quantlens' resolves);
//   cli      shell lines `quantlens ...`, each run with the repository's CLI; a trailing
//            `# exit N` comment names the expected status (0 otherwise);
//   browser  an HTML page, served from the repository root and opened in headless Chromium;
//            it must set document.title to 'ok' (or 'error: ...').
// (docs.test.mjs checks the `usage` blocks, the links and the table of contents.)
// Paths in examples are relative to the repository root, where `npm start`/`npm test` put
// the fetched model and the generated ones.
import assert from 'node:assert/strict';
import fs from 'node:fs';
import path from 'node:path';
import { test } from 'node:test';
import { fetchedModelFiles, root, run } from './helpers.mjs';
import { launch, newPage, noChromium, serve } from './chromium.mjs';
import { docFiles, examplesOf } from './docs-files.mjs';

const work = path.join(root, 'tests', 'artifacts', 'readme');
const noModel = !fetchedModelFiles().some((f) => f.endsWith('mlsd_320x320_tiny.onnx')) && 'the example model is not fetched';
const KINDS = new Set(['node', 'cli', 'browser', 'usage']);

test('the README has examples of each way in', () => {
  const kinds = new Set(examplesOf('README.md').map((e) => e.kind));
  for (const kind of ['node', 'cli', 'browser']) assert.ok(kinds.has(kind), `no tested ${kind} example`);
});

test('every tested block is of a known kind', () => {
  for (const file of docFiles()) {
    for (const ex of examplesOf(file)) assert.ok(KINDS.has(ex.kind), `${file}:${ex.line}: unknown kind '${ex.kind}'`);
  }
});

for (const file of docFiles()) {
  const examples = examplesOf(file);
  // One name per file for the artifacts: README.md -> README, docs/cli.md -> docs-cli.
  const stem = file.replace(/\.md$/, '').replace(/[\\/]/g, '-');

  for (const ex of examples.filter((e) => e.kind === 'node')) {
    test(`${file} line ${ex.line}: Node example runs`, { skip: noModel, timeout: 120000 }, async () => {
      fs.mkdirSync(work, { recursive: true });
      const script = path.join(work, `${stem}-example-${ex.k}.mjs`);
      fs.writeFileSync(script, ex.code);
      const r = await run(process.execPath, [script], { cwd: root });
      assert.equal(r.code, 0, `${r.stdout}\n${r.stderr}`);
    });
  }

  for (const ex of examples.filter((e) => e.kind === 'cli')) {
    test(`${file} line ${ex.line}: CLI example runs`, { skip: noModel, timeout: 300000 }, async () => {
      fs.mkdirSync(work, { recursive: true });
      const lines = ex.code
        .split('\n')
        .map((l) => l.trim())
        .filter((l) => l.startsWith('quantlens '));
      assert.ok(lines.length, 'no quantlens command in the block');
      for (const line of lines) {
        const [, cmd, status] = /^(.*?)(?:\s+#\s*exit\s+(\d+))?\s*$/.exec(line);
        const r = await run('bash', ['-c', `quantlens() { node "${root}/web/cli/quantlens.js" "$@"; }; cd "${root}"; ${cmd}`]);
        assert.equal(r.code, Number(status ?? 0), `${cmd}\n${r.stderr.slice(0, 2000)}`);
      }
    });
  }

  for (const ex of examples.filter((e) => e.kind === 'browser')) {
    test(`${file} line ${ex.line}: browser example runs`, { skip: noChromium || noModel, timeout: 120000 }, async () => {
      fs.mkdirSync(work, { recursive: true });
      const page = `${stem}-example-${ex.k}.html`;
      fs.writeFileSync(path.join(work, page), ex.code);
      const server = await serve(root);
      const browser = await launch();
      try {
        const tab = await newPage(browser);
        await tab.goto(`http://127.0.0.1:${server.address().port}/tests/artifacts/readme/${page}`);
        await tab.waitForFunction(() => document.title === 'ok' || document.title.startsWith('error'), null, { timeout: 60000 });
        assert.equal(await tab.title(), 'ok');
        assert.deepEqual(tab.errors, []);
      } finally {
        await browser.close();
        server.close();
      }
    });
  }
}
