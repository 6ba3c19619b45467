// Model-output SQNR of INT8 per-tensor weight fake-quantization before and after Cross
// Layer Equalization, with per-channel INT8 as the ceiling. See README.md in this folder.
//
//   node tools/bench/cle/cle_sqnr.mjs [--quantlens] [--seeds 4] [--models deeplab,yunet] [--core] [--relu6 all|pairs]
import { execFile } from 'node:child_process';
import fs from 'node:fs';
import os from 'node:os';
import path from 'node:path';
import { fileURLToPath } from 'node:url';
import { promisify } from 'node:util';
import { session, randomFeeds, runAll, sqnrDb, maxRelativeError, modelInputs } from '../../../tests/js/ort.mjs';

const run = promisify(execFile);
const here = path.dirname(fileURLToPath(import.meta.url));
const root = path.resolve(here, '../../..');
const shared = (p) => path.resolve(root, '..', 'shared', 'models', p);
const fetched = (p) => path.join(root, 'models', 'fetched', p);
const PY = '/usr/bin/python3';
const tool = (s) => path.join(root, 'tools', 'reference', s);

const args = process.argv.slice(2);
const flag = (f) => args.includes(f);
const opt = (f, d) => (args.includes(f) ? args[args.indexOf(f) + 1] : d);
const useQuantlens = flag('--quantlens');
const nSeeds = Number(opt('--seeds', 4));
const only = opt('--models', '').split(',').filter(Boolean);
const relu6All = opt('--relu6', 'all') === 'all';

// target = the issue's numbers (before, after, per-channel ceiling); optional models have none
const MODELS = [
  { name: 'deeplabv3_mobilenetv2', file: shared('tf/deeplabv3_mobilenetv2_tfhub.onnx'), target: [10.4, 19.0, 25.2] },
  {
    name: 'bodypix 1.8.4',
    file: shared('tf/bodypix_mobilenet050_stride16_240x320_tf2onnx1.8.4.onnx'),
    target: [4.1, 26.2, 26.1],
  },
  { name: 'road_segmentation', file: shared('tf/road_segmentation_adas_0001.onnx'), target: [17.4, 19.2, 28.0] },
  { name: 'yunet', file: shared('pytorch/yunet_120x160.onnx'), target: [35.9, 38.0, 41.3] },
  {
    name: 'ultraface RFB-320',
    file: shared('pytorch/ultraface_version-RFB-320_without_postprocessing.onnx'),
    target: [35.7, 40.8, 42.3],
  },
  { name: 'mlsd tiny', file: fetched('mlsd_320x320_tiny.onnx'), target: [-2.3, 4.2, 11.4] },
  { name: 'blazeface', file: fetched('blazeface_128x128.onnx'), optional: true },
  { name: 'bodypix 1.7.2', file: shared('tf/bodypix_mobilenetv1_x050_stride16_tf2onnx1.7.2.onnx'), optional: true },
  { name: 'ultraface RFB-320 +post', file: shared('pytorch/ultraface_version-RFB-320.onnx'), optional: true },
].filter((m) =>
  only.length ? only.some((o) => m.name.includes(o) || path.basename(m.file).includes(o)) : !(flag('--core') && m.optional),
);

const tmp = fs.mkdtempSync(path.join(os.tmpdir(), 'quantlens-cle-'));
const fq = async (inp, out, perChannel = false) => {
  await run(PY, [tool('fake_quant.py'), inp, out, '--bits', '8', ...(perChannel ? ['--per-channel'] : [])]);
  return out;
};
const cle = async (inp, out, sweeps) => {
  const { stderr } = await run(PY, [
    tool('cle_ref.py'),
    inp,
    out,
    '--sweeps',
    String(sweeps),
    ...(relu6All ? ['--relu6-all'] : []),
  ]);
  return stderr
    .trim()
    .split('\n')
    .pop()
    .replace(/^cle_ref: /, '');
};

// Outputs of one model file for every seed.
async function outputs(file, spec) {
  const s = await session(file);
  const res = [];
  for (let k = 0; k < nSeeds; k++) res.push(await runAll(s, randomFeeds(s, { seed: 1 + k, ...spec })));
  await s.release?.();
  return res;
}

// SQNR of a transformed model's INT8 per-tensor version. If the transformation changed the
// float function (ReLU6 -> Relu: float outputs differ by more than 1e-3 relative), `db` is
// against the transformed model's own float output and `vsOrig` against the original's.
// With perChannel, `pc` is its INT8 per-channel SQNR against the same float reference.
async function quantized(floatFile, spec, origFloat, { perChannel = false } = {}) {
  const own = await outputs(floatFile, spec);
  const q = await outputs(await fq(floatFile, floatFile.replace(/\.onnx$/, '.int8pt.onnx')), spec);
  const floatDiff = maxRelativeError(origFloat, own).worst;
  const changed = floatDiff > 1e-3;
  const ref = changed ? own : origFloat;
  const pc = perChannel
    ? sqnrDb(ref, await outputs(await fq(floatFile, floatFile.replace(/\.onnx$/, '.int8pc.onnx'), true), spec))
    : null;
  return { db: sqnrDb(ref, q), vsOrig: sqnrDb(origFloat, q), changed, floatDiff, pc };
}

const f1 = (x) => (x === undefined || x === null ? '–' : Number.isFinite(x) ? x.toFixed(1) : String(x));

const rows = [];
for (const m of MODELS) {
  if (!fs.existsSync(m.file)) {
    console.error(`skip ${m.name}: ${path.relative(root, m.file)} is absent`);
    continue;
  }
  const spec = modelInputs[path.basename(m.file)];
  const base = path.join(tmp, path.basename(m.file, '.onnx'));
  const t0 = performance.now();
  const summary = await cle(m.file, `${base}.refcle.onnx`, 20);
  const cleMs = performance.now() - t0;
  const origFloat = await outputs(m.file, spec);
  const before = sqnrDb(origFloat, await outputs(await fq(m.file, `${base}.int8pt.onnx`), spec));
  const ceiling = sqnrDb(origFloat, await outputs(await fq(m.file, `${base}.int8pc.onnx`, true), spec));
  const refAfter = await quantized(`${base}.refcle.onnx`, spec, origFloat);
  // the same preparation without equalizing (BN folded, ReLU6 -> Relu): the issue's "before"
  let prepBefore = null;
  if (refAfter.changed) {
    await cle(m.file, `${base}.prepared.onnx`, 0);
    prepBefore = await quantized(`${base}.prepared.onnx`, spec, origFloat, { perChannel: true });
  }
  let qlAfter = null,
    qlNote = '',
    qlLayers = null;
  if (useQuantlens) {
    const out = `${base}.quantlens.onnx`;
    try {
      const t1 = performance.now();
      const { stdout } = await run(
        process.execPath,
        [path.join(root, 'web', 'cli', 'quantlens.js'), 'equalize', m.file, '-o', out, '--json'],
        { maxBuffer: 1 << 28 },
      );
      qlNote = `equalize ${((performance.now() - t1) / 1000).toFixed(2)} s`;
      const rep = JSON.parse(stdout);
      qlLayers = rep.layers.map((l) => ({
        name: l.name,
        before: l.before.sqnr.int8PerTensor,
        after: l.after.sqnr.int8PerTensor,
      }));
      qlAfter = await quantized(out, spec, origFloat);
    } catch (e) {
      qlNote = `failed: ${String(e.stderr || e.message)
        .trim()
        .split('\n')[0]
        .slice(0, 100)}`;
      console.error(`quantlens equalize on ${m.name} ${qlNote}`);
    }
  }
  const row = { m, spec, before, prepBefore, refAfter, qlAfter, qlNote, qlLayers, ceiling, cleMs, summary };
  rows.push(row);
  console.error(
    `${m.name}: mean of outputs ${f1(before.mean)} → ${f1(refAfter.db.mean)} (${f1(ceiling.mean)}); ` +
      `all outputs pooled ${f1(before.overall)} → ${f1(refAfter.db.overall)} (${f1(ceiling.overall)}) dB; ref CLE ${(cleMs / 1000).toFixed(2)} s; ${summary}`,
  );
}

// One table per SQNR flavour: 'mean' (average of per-output dB, what the issue's targets
// turned out to be) and 'overall' (all outputs' elements pooled).
function table(metric) {
  const after = (a) => (a ? `${f1(a.db[metric])}${a.changed ? ` (${f1(a.vsOrig[metric])}†)` : ''}` : '–');
  const head = [
    'model',
    'before',
    'before, ReLU6→Relu',
    'ref CLE after',
    ...(useQuantlens ? ['quantlens after'] : []),
    'per-channel ceiling',
    'target: before → after (ceiling)',
    'ref CLE time',
  ];
  const lines = [`| ${head.join(' | ')} |`, `|${head.map(() => '---').join('|')}|`];
  for (const r of rows) {
    const t = r.m.target ? `${f1(r.m.target[0])} → ${f1(r.m.target[1])} (${f1(r.m.target[2])})` : '–';
    const ql = useQuantlens ? [r.qlAfter ? after(r.qlAfter) : `skipped (${r.qlNote})`] : [];
    lines.push(
      `| ${[
        r.m.name,
        f1(r.before[metric]),
        r.prepBefore ? f1(r.prepBefore.db[metric]) : '=',
        after(r.refAfter),
        ...ql,
        f1(r.ceiling[metric]),
        t,
        `${(r.cleMs / 1000).toFixed(2)} s`,
      ].join(' | ')} |`,
    );
  }
  return lines.join('\n');
}
const tMean = table('mean'),
  tPooled = table('overall');
console.log(`SQNR (dB), mean of per-output SQNRs:\n${tMean}\n\nSQNR (dB), all outputs pooled:\n${tPooled}`);

// Per-layer INT8 per-tensor weight SQNR before and after QuantLens's equalization (from its
// report; those numbers are checked against tools/reference/analyze_ref.py by the tests).
function weightTable() {
  const lines = ['| model | layers changed | raised | mean before → after | worst before → after |', '|---|---|---|---|---|'];
  const per = [];
  for (const r of rows) {
    if (!r.qlLayers || !r.qlLayers.length) continue;
    const L = r.qlLayers.filter((l) => Number.isFinite(l.before) && Number.isFinite(l.after));
    const mean = (k) => L.reduce((a, l) => a + l[k], 0) / L.length;
    const worst = (k) => Math.min(...L.map((l) => l[k]));
    lines.push(
      `| ${r.m.name} | ${L.length} | ${L.filter((l) => l.after > l.before).length} | ${f1(mean('before'))} → ${f1(mean('after'))} | ${f1(worst('before'))} → ${f1(worst('after'))} |`,
    );
    if (/deeplab|bodypix 1.8|mlsd/.test(r.m.name))
      per.push(`- **${r.m.name}**: ${L.map((l) => `${l.name} ${f1(l.before)}→${f1(l.after)}`).join('; ')}`);
  }
  return `${lines.join('\n')}\n\nPer layer (MobileNet-style models), dB:\n\n${per.join('\n')}`;
}
const tWeights = useQuantlens ? weightTable() : '';
if (useQuantlens) console.log(`\nINT8 per-tensor weight SQNR per layer, QuantLens CLE:\n${tWeights}`);

const perOut = (s) => Object.values(s.perOutput).map(f1).join(', ');
const details = rows
  .map(
    (r) =>
      `- **${r.m.name}** \`${path.basename(r.m.file)}\`, inputs U[${r.spec.low}, ${r.spec.high}]` +
      `${r.spec.dims ? ` dims ${JSON.stringify(r.spec.dims)}` : ''}: ${r.summary}; ref CLE float vs original float: max rel. error ` +
      `${r.refAfter.floatDiff.toExponential(1)}. Per output (${Object.keys(r.before.perOutput).join(', ')}): before [${perOut(r.before)}], ` +
      `ref CLE after [${perOut(r.refAfter.db)}], ceiling [${perOut(r.ceiling)}]` +
      (r.prepBefore
        ? `; prepared (ReLU6→Relu, not equalized) vs its own float: before mean ${f1(r.prepBefore.db.mean)} / pooled ` +
          `${f1(r.prepBefore.db.overall)}, per-channel ceiling mean ${f1(r.prepBefore.pc.mean)} / pooled ${f1(r.prepBefore.pc.overall)}`
        : '') +
      (useQuantlens
        ? `. quantlens: ${r.qlNote}${r.qlAfter ? `, float max rel. error ${r.qlAfter.floatDiff.toExponential(1)}, after [${perOut(r.qlAfter.db)}]` : ''}`
        : ''),
  )
  .join('\n');

fs.writeFileSync(
  path.join(here, 'RESULTS.md'),
  `# CLE: model-output SQNR with INT8 weights (dB)

Measured ${new Date().toISOString().slice(0, 10)} by \`node tools/bench/cle/cle_sqnr.mjs${args.length ? ` ${args.join(' ')}` : ''}\`:
onnxruntime-node, ${nSeeds} seeds of uniform random inputs per model (ranges in \`tests/js/ort.mjs\`),
reference CLE = \`tools/reference/cle_ref.py --sweeps 20${relu6All ? ' --relu6-all' : ''}\`.
"before" = original model, INT8 per-tensor, vs original float. "before, ReLU6→Relu" = the reference's
preparation alone (BN folded, ReLU6 → Relu, no equalization), vs its own float ("=" when that preparation
does not change the float function). † = the model's float function changed (ReLU6 → Relu), so "after" is
against its own float output; in parentheses, against the original float model. Ceiling = original
model INT8 per-channel vs original float.

## Mean of per-output SQNRs (the issue's targets match this flavour)

${tMean}

## All outputs pooled: 10·log10(Σref² / Σerr²) over every output element

${tPooled}

${
  useQuantlens
    ? `## INT8 per-tensor weight SQNR per layer, before → after QuantLens CLE (dB)

${tWeights}

`
    : ''
}## Details

${details}
`,
);
fs.rmSync(tmp, { recursive: true, force: true });
