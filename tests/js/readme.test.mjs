// The README's examples run, so they cannot rot. A fenced block right after a
// `<!-- tested: KIND -->` comment is one example:
//   node     an ES module, run with Node from inside the package (so 'quantlens' resolves);
//   cli      shell lines `quantlens ...`, each run with the repository's CLI; a trailing
//            `# exit N` comment names the expected status (0 otherwise);
//   browser  an HTML page, served from the repository root and opened in headless Chromium;
//            it must set document.title to 'ok' (or 'error: ...').
// Paths in examples are relative to the repository root, where `npm start`/`npm test` put
// the fetched model.
import assert from 'node:assert/strict';
import fs from 'node:fs';
import path from 'node:path';
import { test } from 'node:test';
import { fetchedModelFiles, root, run } from './helpers.mjs';
import { launch, newPage, noChromium, serve } from './chromium.mjs';

const readme = fs.readFileSync(path.join(root, 'README.md'), 'utf8');
const examples = [...readme.matchAll(/<!-- tested: (\w+) -->\s*\n```\w*\n([\s\S]*?)\n```/g)]
  .map((m, k) => ({ kind: m[1], code: m[2], line: readme.slice(0, m.index).split('\n').length + 1, k }));
const work = path.join(root, 'tests', 'artifacts', 'readme');
const noModel = !fetchedModelFiles().some((f) => f.endsWith('mlsd_320x320_tiny.onnx')) && 'the example model is not fetched';

test('the README has examples of each way in', () => {
  const kinds = new Set(examples.map((e) => e.kind));
  for (const kind of ['node', 'cli', 'browser']) assert.ok(kinds.has(kind), `no tested ${kind} example`);
});

for (const ex of examples.filter((e) => e.kind === 'node')) {
  test(`README line ${ex.line}: Node example runs`, { skip: noModel, timeout: 120000 }, async () => {
    fs.mkdirSync(work, { recursive: true });
    const file = path.join(work, `example-${ex.k}.mjs`);
    fs.writeFileSync(file, ex.code);
    const r = await run(process.execPath, [file], { cwd: root });
    assert.equal(r.code, 0, `${r.stdout}\n${r.stderr}`);
  });
}

for (const ex of examples.filter((e) => e.kind === 'cli')) {
  test(`README line ${ex.line}: CLI example runs`, { skip: noModel, timeout: 300000 }, async () => {
    fs.mkdirSync(work, { recursive: true });
    const lines = ex.code.split('\n').map((l) => l.trim()).filter((l) => l.startsWith('quantlens '));
    assert.ok(lines.length, 'no quantlens command in the block');
    for (const line of lines) {
      const [, cmd, status] = /^(.*?)(?:\s+#\s*exit\s+(\d+))?\s*$/.exec(line);
      const r = await run('bash', ['-c', `quantlens() { node "${root}/web/cli/quantlens.js" "$@"; }; cd "${root}"; ${cmd}`]);
      assert.equal(r.code, Number(status ?? 0), `${cmd}\n${r.stderr.slice(0, 2000)}`);
    }
  });
}

for (const ex of examples.filter((e) => e.kind === 'browser')) {
  test(`README line ${ex.line}: browser example runs`, { skip: noChromium || noModel, timeout: 120000 }, async () => {
    fs.mkdirSync(work, { recursive: true });
    fs.writeFileSync(path.join(work, `example-${ex.k}.html`), ex.code);
    const server = await serve(root);
    const browser = await launch();
    try {
      const page = await newPage(browser);
      await page.goto(`http://127.0.0.1:${server.address().port}/tests/artifacts/readme/example-${ex.k}.html`);
      await page.waitForFunction(() => document.title === 'ok' || document.title.startsWith('error'), null, { timeout: 60000 });
      assert.equal(await page.title(), 'ok');
      assert.deepEqual(page.errors, []);
    } finally {
      await browser.close();
      server.close();
    }
  });
}
