#!/usr/bin/env node
// Behaviour fingerprint of the core and the JS API over every real and generated model:
// the analysis document, the equalization document and the equalized model's bytes, and the
// comparison of each model with its equalized copy (or the error each one gives).
//
//   node tools/equivalence.mjs record   writes tests/golden/equivalence.json
//   node tools/equivalence.mjs check    exits 1 if anything recorded changed
//
// A restructuring must leave every recorded value as it was; it may add fields. So the record
// keeps, per document, its shape (every key path, array indices collapsed to []) and a sha256
// per top-level entry (per element of a top-level array), and a check first projects the new
// document onto the recorded shape: fields added since the record are ignored, a field removed
// or a value changed is a difference, named down to the layer. Models that are absent here
// (../shared on a machine without it) are skipped and said so; a model that is present but was
// not recorded is a failure, so the record is rewritten when models are added.
// tests/js/equivalence.test.mjs runs the check.
import { createHash } from 'node:crypto';
import { existsSync, readFileSync, readdirSync, writeFileSync, mkdirSync } from 'node:fs';
import { basename, dirname, join, relative } from 'node:path';
import { fileURLToPath } from 'node:url';
import { analyze, equalize, compare, toJSON } from '../web/src/index.js';

const root = join(dirname(fileURLToPath(import.meta.url)), '..');
const GOLDEN = join(root, 'tests/golden/equivalence.json');

export function modelSets() {
  const list = (dir) =>
    existsSync(dir)
      ? readdirSync(dir)
          .filter((f) => f.endsWith('.onnx'))
          .sort()
          .map((f) => join(dir, f))
      : [];
  const shared = sharedDir();
  const sharedModels = existsSync(shared)
    ? readdirSync(shared, { withFileTypes: true })
        .filter((d) => d.isDirectory())
        .map((d) => d.name)
        .sort()
        .flatMap((d) => list(join(shared, d)))
    : [];
  return {
    shared: sharedModels,
    fetched: list(join(root, 'models/fetched')),
    generated: list(join(root, 'models/generated')),
  };
}

// ../shared/models beside the checkout; QL_SHARED_MODELS names another place (a git worktree's).
const sharedDir = () => process.env.QL_SHARED_MODELS || join(root, '../shared/models');

// The key of a model in the record: its set and file name (paths differ between machines).
export function modelKey(set, path) {
  return `${set}/${set === 'shared' ? relative(sharedDir(), path) : basename(path)}`;
}

// 64 bits of sha256: enough to tell a change, and the record stays small.
const sha = (data) => createHash('sha256').update(data).digest('hex').slice(0, 16);

function shapeOf(value, path = '', out = new Set()) {
  if (Array.isArray(value)) {
    out.add(path + '[]');
    for (const v of value) shapeOf(v, path + '[]', out);
  } else if (value !== null && typeof value === 'object') {
    for (const [k, v] of Object.entries(value)) {
      const p = `${path}.${k}`;
      out.add(p);
      shapeOf(v, p, out);
    }
  }
  return out;
}

// The value with only the key paths of the recorded shape (the fields added since are dropped).
function project(value, shape, path = '') {
  if (Array.isArray(value)) return value.map((v) => project(v, shape, path + '[]'));
  if (value !== null && typeof value === 'object') {
    const o = {};
    for (const [k, v] of Object.entries(value)) {
      const p = `${path}.${k}`;
      if (shape.has(p)) o[k] = project(v, shape, p);
    }
    return o;
  }
  return value;
}

function entries(doc) {
  const out = {};
  for (const [k, v] of Object.entries(doc)) {
    if (Array.isArray(v)) {
      out[`${k}.length`] = String(v.length);
      v.forEach((e, i) => {
        out[`${k}[${i}]${e && e.name ? ` (${e.name})` : ''}`] = sha(JSON.stringify(e));
      });
    } else {
      out[k] = sha(JSON.stringify(v));
    }
  }
  return out;
}

export function fingerprint(doc) {
  return { shape: [...shapeOf(doc)].sort(), entries: entries(doc) };
}

export function compareFingerprint(recorded, doc, label, diffs) {
  const projected = project(doc, new Set(recorded.shape));
  const now = entries(projected);
  for (const [k, h] of Object.entries(recorded.entries)) {
    if (!(k in now)) diffs.push(`${label}: ${k} is gone`);
    else if (now[k] !== h) diffs.push(`${label}: ${k} differs`);
  }
  for (const k of Object.keys(now)) if (!(k in recorded.entries)) diffs.push(`${label}: ${k} is new in a recorded array`);
}

async function settle(promise) {
  try {
    return { value: await promise };
  } catch (e) {
    if (e && e.code) return { error: { code: e.code, message: e.message } };
    throw e;
  }
}

// Everything recorded for one model.
export async function runModel(path) {
  const out = {};
  const a = await settle(analyze(path));
  out.analysis = a.error ? { error: a.error } : toJSON(a.value);
  const e = await settle(equalize(path));
  if (e.error) {
    out.equalization = { error: e.error };
  } else {
    // A model with external data is written with its one new data file (dataBytes).
    const { bytes, dataBytes, ...doc } = e.value;
    out.equalizedModel = sha(bytes);
    if (dataBytes) out.equalizedData = sha(dataBytes);
    out.equalization = toJSON(doc);
    const c = await settle(compare(path, bytes, dataBytes ? { externalData: { b: { [doc.dataName]: dataBytes } } } : {}));
    out.comparison = c.error ? { error: c.error } : toJSON(c.value);
  }
  // The options that change what is written: ReLU6 kept, no bias absorption; BatchNorm folding only.
  for (const [name, opts] of [
    ['equalizationKeepRelu6', { keepRelu6: true, biasAbsorption: false }],
    ['equalizationFoldOnly', { maxIterations: 0 }],
  ]) {
    const v = await settle(equalize(path, opts));
    if (v.error) {
      out[name] = { error: v.error };
    } else {
      const { bytes, dataBytes, ...doc } = v.value;
      out[name] = { ...toJSON(doc), writtenModel: sha(bytes), ...(dataBytes ? { writtenData: sha(dataBytes) } : {}) };
    }
  }
  return out;
}

const DOCS = ['analysis', 'equalization', 'comparison', 'equalizationKeepRelu6', 'equalizationFoldOnly'];

async function record() {
  const golden = { note: 'written by tools/equivalence.mjs record; see its header', models: {} };
  for (const [set, paths] of Object.entries(modelSets())) {
    for (const p of paths) {
      const r = await runModel(p);
      const g = { equalizedModel: r.equalizedModel ?? null, ...(r.equalizedData ? { equalizedData: r.equalizedData } : {}) };
      for (const d of DOCS) if (r[d]) g[d] = fingerprint(r[d]);
      golden.models[modelKey(set, p)] = g;
      process.stdout.write(`recorded ${modelKey(set, p)}\n`);
    }
  }
  mkdirSync(dirname(GOLDEN), { recursive: true });
  // One line per document: diffs of the record stay readable.
  const lines = Object.entries(golden.models).map(
    ([k, g]) =>
      `  ${JSON.stringify(k)}: {\n${Object.entries(g)
        .map(([d, v]) => `   ${JSON.stringify(d)}: ${JSON.stringify(v)}`)
        .join(',\n')}\n  }`,
  );
  writeFileSync(GOLDEN, `{\n "note": ${JSON.stringify(golden.note)},\n "models": {\n${lines.join(',\n')}\n }\n}\n`);
}

export async function checkModel(golden, set, path) {
  const key = modelKey(set, path);
  const g = golden.models[key];
  if (!g) return [`${key}: not in the record (run: node tools/equivalence.mjs record)`];
  const r = await runModel(path);
  const diffs = [];
  if ((r.equalizedModel ?? null) !== g.equalizedModel) diffs.push(`${key}: the equalized model's bytes differ`);
  if ((r.equalizedData ?? null) !== (g.equalizedData ?? null)) diffs.push(`${key}: the equalized model's data file differs`);
  for (const d of DOCS) {
    if (!g[d] && !r[d]) continue;
    if (!g[d] || !r[d]) {
      diffs.push(`${key}: ${d} ${g[d] ? 'is gone' : 'appeared'}`);
      continue;
    }
    compareFingerprint(g[d], r[d], `${key} ${d}`, diffs);
  }
  return diffs;
}

export function loadGolden() {
  return JSON.parse(readFileSync(GOLDEN, 'utf8'));
}

async function check() {
  const golden = loadGolden();
  let bad = 0;
  let seen = 0;
  for (const [set, paths] of Object.entries(modelSets())) {
    if (!paths.length) console.log(`note: no ${set} models here; skipped`);
    for (const p of paths) {
      const diffs = await checkModel(golden, set, p);
      seen++;
      for (const d of diffs) console.log(d);
      if (diffs.length) bad++;
    }
  }
  console.log(`${seen} models checked, ${bad} with differences`);
  return bad ? 1 : 0;
}

if (process.argv[1] && fileURLToPath(import.meta.url) === process.argv[1]) {
  const cmd = process.argv[2];
  if (cmd === 'record') await record();
  else if (cmd === 'check') process.exitCode = await check();
  else {
    console.error('usage: node tools/equivalence.mjs record|check');
    process.exitCode = 2;
  }
}
