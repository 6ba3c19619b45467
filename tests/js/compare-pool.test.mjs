// compare()'s pool of workers (web/src/pool.js comparePairsInPool): pairs dealt out to
// worker_threads that each open both models give the document of one thread, bit for bit:
// models with themselves, a model with its equalized copy (rescaled pairs), an LLM-shaped
// model in external data files against its bfloat16 sibling, bytes in memory, a missing
// data file (a pair not comparable, with the same reason). Each pooled run must say
// (progress `workers`) that the pool ran, so no equality holds because it silently fell
// back to one thread. Errors, cancel and the CLI's --workers too.
import assert from 'node:assert/strict';
import fs from 'node:fs';
import os from 'node:os';
import path from 'node:path';
import { after, test } from 'node:test';
import { compare, equalize, toJSON } from '../../web/src/index.js';
import { fetchedModelFiles, generatedModelFiles, root, run, runCli, sharedModelFiles } from './helpers.mjs';

const tmp = fs.mkdtempSync(path.join(os.tmpdir(), 'ql-compare-pool-'));
after(() => fs.rmSync(tmp, { recursive: true, force: true }));

async function pooled(a, b, options = {}) {
  let workers = 0;
  const result = await compare(a, b, { ...options, onProgress: (p) => (workers = p.workers || workers) });
  return { json: JSON.stringify(toJSON(result)), workers, pairs: result.pairs.length, result };
}
const one = async (a, b, options = {}) => JSON.stringify(toJSON(await compare(a, b, { ...options, workers: 1 })));

async function makeLlm(file, args) {
  fs.mkdirSync(path.dirname(file), { recursive: true });
  const r = await run('/usr/bin/python3', [path.join(root, 'tools/bench/make_llm.py'), file, ...args]);
  assert.equal(r.code, 0, r.stderr);
  return JSON.parse(fs.readFileSync(`${file}.json`, 'utf8'));
}

test('workers 2 and 3 give the document of one thread, bit for bit', { timeout: 600000 }, async () => {
  const models = [...fetchedModelFiles(), ...sharedModelFiles().slice(0, 3), ...generatedModelFiles()];
  assert.ok(models.length >= 3, 'no models found');
  const pairs = models.map((m) => [m, m]);
  // a model and its equalized copy: rescaled pairs
  const mlsd = fetchedModelFiles().find((f) => f.includes('mlsd'));
  if (mlsd) {
    const eq = await equalize(mlsd);
    const copy = path.join(tmp, 'mlsd.equalized.onnx');
    fs.writeFileSync(copy, eq.bytes);
    pairs.push([mlsd, copy]);
  }
  // an LLM-shaped model in 3 external data files against its bfloat16 sibling in one
  const fp16 = path.join(tmp, 'llm', 'fp16.onnx');
  const bf16 = path.join(tmp, 'llm', 'bf16.onnx');
  await makeLlm(fp16, ['--preset', 'llm-small', '--files', '3']);
  await makeLlm(bf16, ['--preset', 'llm-small', '--dtype', 'bf16']);
  pairs.push([fp16, bf16]);
  let rescaled = 0;
  for (const [a, b] of pairs) {
    const base = await one(a, b);
    for (const n of [2, 3]) {
      const p = await pooled(a, b, { workers: n });
      if (p.pairs >= 2) assert.equal(p.workers, Math.min(n, p.pairs), `${path.basename(a)}: the pool did not run`);
      assert.ok(p.json === base, `${path.basename(a)} vs ${path.basename(b)}: workers ${n} differ from one thread`);
      if (n === 2) rescaled += p.result.summary.rescaled;
    }
  }
  if (mlsd) assert.ok(rescaled > 0, 'no rescaled pair was compared');
  // bytes in memory, on both sides
  const bytes = new Uint8Array(fs.readFileSync(mlsd || models[0]));
  const p = await pooled(bytes, bytes, { workers: 2 });
  assert.equal(p.workers, 2);
  assert.ok(p.json === (await one(bytes, bytes)), 'bytes: workers 2 differ');
});

test('a missing data file: its pairs are not comparable, with the same reasons, with workers', { timeout: 300000 }, async () => {
  const dir = path.join(tmp, 'partial');
  const model = path.join(dir, 'tiny.onnx');
  const manifest = await makeLlm(model, ['--preset', 'llm-tiny', '--files', '2']);
  fs.rmSync(path.join(dir, manifest.files[1]));
  const full = path.join(tmp, 'full', 'tiny.onnx');
  await makeLlm(full, ['--preset', 'llm-tiny']);
  const base = await one(full, model);
  const p = await pooled(full, model, { workers: 2 });
  assert.equal(p.workers, 2);
  assert.ok(p.json === base, 'workers 2 differ');
  const missing = p.result.pairs.filter((q) => !q.comparable);
  assert.ok(
    missing.length > 0 && missing.every((q) => /external data file .tiny\.onnx\.data\.1. not found/.test(q.reason)),
    JSON.stringify(missing.map((q) => q.reason)),
  );
});

test('a bad workers option is an INVALID_ARGUMENT; a model error is the same with workers', async () => {
  const file = generatedModelFiles()[0];
  for (const workers of [0, -1, 1.5, 65, '2', NaN]) {
    await assert.rejects(compare(file, file, { workers }), (e) => e.code === 'INVALID_ARGUMENT' && /workers/.test(e.message));
  }
  const bad = path.join(tmp, 'bad.onnx');
  fs.writeFileSync(bad, Buffer.from([0x08, 0x07, 0x12]));
  const errorOf = (workers) =>
    compare(file, bad, { workers }).then(
      () => null,
      (e) => ({ code: e.code, message: e.message }),
    );
  const base = await errorOf(1);
  assert.ok(base && base.code);
  assert.deepEqual(await errorOf(2), base);
});

// In a process of its own: a worker left running would keep it alive.
test('cancel: an abort during a pooled comparison rejects ABORTED and ends the workers', { timeout: 180000 }, async () => {
  const file = fetchedModelFiles().find((f) => f.includes('mlsd')) || generatedModelFiles().find((f) => f.includes('recurrent'));
  const script = `
import { compare } from ${JSON.stringify(path.join(root, 'web/src/index.js'))};
const controller = new AbortController();
let compared = 0;
let code = 'none';
try {
  await compare(${JSON.stringify(file)}, ${JSON.stringify(file)}, { workers: 2, signal: controller.signal, onProgress: (p) => {
    if (p.phase === 'compare' && ++compared === 2) controller.abort();
  } });
} catch (e) { code = e.code; }
console.log(JSON.stringify({ code, compared }));
`;
  const r = await run(process.execPath, ['--input-type=module', '-e', script], { timeout: 120000 });
  assert.equal(r.code, 0, `the process did not end by itself (workers left running?): ${r.stderr}`);
  assert.deepEqual(JSON.parse(r.stdout), { code: 'ABORTED', compared: 2 });
});

test('the CLI: compare --workers 2 writes the JSON of --workers 1; --workers 0 exits 2', { timeout: 120000 }, async () => {
  const file = fetchedModelFiles().find((f) => f.includes('mlsd')) || generatedModelFiles()[0];
  const a = await runCli(['compare', file, file, '--json', '--workers', '1']);
  const b = await runCli(['compare', file, file, '--json', '--workers', '2']);
  assert.equal(a.code, 0, a.stderr);
  assert.equal(b.code, 0, b.stderr);
  assert.ok(a.stdout === b.stdout);
  const bad = await runCli(['compare', file, file, '--workers', '0']);
  assert.equal(bad.code, 2);
  assert.match(bad.stderr, /workers/);
});
