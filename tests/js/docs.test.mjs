// The documentation holds together: README.md stays short, docs/README.md lists every page,
// every relative link leads to a file (and every #anchor to a heading) that exists, and the
// CLI synopses (`<!-- tested: usage -->` blocks) name exactly the options the CLI's own
// --help names. The examples themselves are run by readme.test.mjs.
import assert from 'node:assert/strict';
import fs from 'node:fs';
import path from 'node:path';
import { test } from 'node:test';
import { root, runCli } from './helpers.mjs';
import { anchorsOf, docFiles, examplesOf, linksOf, readDoc } from './docs-files.mjs';

test('README.md is a five-minute read (at most 250 lines)', () => {
  const lines = readDoc('README.md').split('\n').length;
  assert.ok(lines <= 250, `README.md has ${lines} lines`);
});

test('docs/README.md links to every page in docs/', () => {
  const listed = new Set(linksOf('docs/README.md').map((l) => path.posix.normalize(`docs/${l.target.split('#')[0]}`)));
  for (const file of docFiles().filter((f) => f.startsWith('docs/') && f !== 'docs/README.md')) {
    assert.ok(listed.has(file), `${file} is not in docs/README.md`);
  }
});

// The benchmark READMEs link into docs/ and back, so they are checked too.
for (const file of [...docFiles(), 'tools/bench/README.md', 'tools/bench/cle/README.md']) {
  test(`${file}: every relative link and anchor resolves`, () => {
    const broken = [];
    for (const { line, target } of linksOf(file)) {
      if (/^[a-z][a-z0-9+.-]*:/i.test(target)) continue; // https:, mailto: ...: not checked here
      const [rel, anchor] = target.split('#');
      const to = rel ? path.posix.normalize(path.posix.join(path.posix.dirname(file), decodeURI(rel))) : file;
      if (to.startsWith('..')) {
        broken.push(`line ${line}: ${target} leaves the repository`);
        continue;
      }
      if (!fs.existsSync(path.join(root, to))) {
        broken.push(`line ${line}: ${target}: no file ${to}`);
        continue;
      }
      if (anchor !== undefined && to.endsWith('.md') && !anchorsOf(to).has(anchor)) {
        broken.push(`line ${line}: ${target}: no heading #${anchor} in ${to}`);
      }
    }
    assert.deepEqual(broken, []);
  });
}

// The options a synopsis line names: every --long flag and every short one (-o).
const optionsIn = (text) => new Set([...text.matchAll(/(?<![\w-])(--?[a-z][a-z0-9-]*)/gi)].map((m) => m[1]));
// The options a --help text declares: the flags that begin its option lines
// ('  -o, --output FILE   ...', '  --json   ...'), not flags named in the prose.
const declaredIn = (help) =>
  new Set(
    help.split('\n').flatMap((line) => {
      const m = /^\s+((?:-[a-z], )?--[a-z][a-z0-9-]*)/i.exec(line);
      return m ? m[1].split(', ') : [];
    }),
  );

const usages = docFiles().flatMap((file) =>
  examplesOf(file)
    .filter((e) => e.kind === 'usage')
    .map((e) => ({ ...e, file })),
);

test('the docs give a synopsis of every command', () => {
  const commands = new Set(usages.flatMap((u) => [...u.code.matchAll(/^\s*quantlens (\w+)/gm)].map((m) => m[1])));
  for (const cmd of ['analyze', 'equalize', 'compare', 'report']) assert.ok(commands.has(cmd), `no synopsis of '${cmd}'`);
});

for (const u of usages) {
  test(`${u.file} line ${u.line}: the synopsis names the options of --help`, async () => {
    for (const line of u.code
      .split('\n')
      .map((l) => l.trim())
      .filter((l) => /^quantlens \w+ /.test(l))) {
      const cmd = /^quantlens (\w+)/.exec(line)[1];
      if (cmd === 'help') continue;
      const r = await runCli([cmd, '--help']);
      assert.equal(r.code, 0, r.stderr);
      const help = declaredIn(r.stdout);
      help.delete('--help');
      help.delete('-h');
      const documented = optionsIn(line);
      assert.deepEqual(
        [...documented].filter((o) => !help.has(o)),
        [],
        `${cmd}: documented, but not in --help`,
      );
      assert.deepEqual(
        [...help].filter((o) => !documented.has(o)),
        [],
        `${cmd}: in --help, but not documented`,
      );
    }
  });
}
