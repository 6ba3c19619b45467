// How good the data-free compression plans are on the model outputs (issue 15): every real
// model onnxruntime runs with a known input range (tests/js/ort.mjs modelInputs), planned by
// SVD at each ratio by several planners, written through compress(model, { keep }) (the
// core's plan through compress(model, { ratio })), and run on N random inputs in the
// model's range. Prints, per model and ratio, each plan's output SQNR (dB, pooled over the
// inputs, against the original model), and its per-input difference from the uniform plan
// (mean ± standard error; * when worse by more than 3 of them). docs/benchmarks.md has a run.
//   node tools/bench/plan_vs_uniform.mjs [--seeds N] [--ratios 0.9,0.5] [--only REGEX]
//        [--planners core,minimax,uniform,...] [--json FILE]
// Planners (all on the core's curves; noise n = 10^(-SQNR/10) of a layer's point):
//   core      the core's plan (compress({ ratio })): the least Σ n within the target
//   rate      the same, computed here (Lagrangian over each layer's hull, then the fill):
//             a check that the two agree
//   minimax   the largest threshold t with every layer's cheapest point of SQNR >= t (the
//             core's planner before the rate allocation)
//   uniform   the same fraction of every layer (as compress({ uniform: true }))
//   params    Σ params·n;  sqrtparams  Σ sqrt(params)·n;  n2  Σ n²;  log  Σ -log(1 - n)
//   floor     Σ n, no layer below the uniform plan's lowest SQNR
import fs from 'node:fs';
import path from 'node:path';
import { compress, compressibility } from '../../web/src/index.js';
import { fetchedModelFiles, sharedModelFiles } from '../../tests/js/helpers.mjs';
import { feedsFor, modelInputs, runAll, session, sqnrDb } from '../../tests/js/ort.mjs';

const arg = (name, fallback) => {
  const i = process.argv.indexOf(`--${name}`);
  return i > 0 ? process.argv[i + 1] : fallback;
};
const seeds = Array.from({ length: Number(arg('seeds', 12)) }, (_, k) => k + 1);
const ratios = arg('ratios', '0.9,0.5').split(',').map(Number);
const only = arg('only') ? new RegExp(arg('only')) : null;
const wanted = arg('planners', 'minimax,core,uniform').split(',');
const files = [...sharedModelFiles(), ...fetchedModelFiles()].filter(
  (f) => modelInputs[path.basename(f)] && (!only || only.test(path.basename(f))),
);

async function outputs(bytesOrPath, file) {
  const s = await session(bytesOrPath);
  const out = [];
  for (const seed of seeds) out.push(await runAll(s, feedsFor(file, s, { seed })));
  await s.release?.();
  return out;
}

// Per layer its SVD points (without the layer as it is): {keep, params, db, n}.
const layersOf = (c) =>
  c.layers.map((l) => {
    const k = l.full.find((x) => (x.method === 'weight-svd' || x.method === 'spatial-svd') && !x.refused);
    const pts = [];
    if (k)
      for (let j = 0; j < k.keep.length; j++)
        if (Number.isFinite(k.sqnrDb[j]))
          pts.push({ keep: k.keep[j], params: k.params[j], db: k.sqnrDb[j], n: 10 ** (-k.sqnrDb[j] / 10) });
    return { name: l.name, params: l.params, pts };
  });

const total = (layers, pick) => layers.reduce((s, l, i) => s + (pick[i] ? pick[i].params : l.params), 0);
const budget = (layers, ratio) => ratio * layers.reduce((s, l) => s + l.params, 0);

function minimax(layers, ratio) {
  const at = (t) =>
    layers.map((l) => {
      let best = null;
      for (const p of l.pts) if (p.db >= t && p.params < (best ? best.params : l.params)) best = p;
      return best;
    });
  if (total(layers, at(Infinity)) <= budget(layers, ratio)) return at(Infinity);
  const ts = [...new Set(layers.flatMap((l) => l.pts.map((p) => p.db)))].sort((a, b) => a - b);
  let lo = 0;
  let hi = ts.length;
  while (hi - lo > 1) {
    const mid = (lo + hi) >> 1;
    if (total(layers, at(ts[mid])) <= budget(layers, ratio)) lo = mid;
    else hi = mid;
  }
  return at(ts[lo]);
}

function uniform(layers, ratio) {
  const at = (q) =>
    layers.map((l) => {
      let best = null;
      for (const p of l.pts) if (p.params <= q * l.params && (!best || p.params > best.params)) best = p;
      return best;
    });
  let lo = 0;
  let hi = 1;
  for (let i = 0; i < 50; i++) {
    const mid = (lo + hi) / 2;
    if (total(layers, at(mid)) <= budget(layers, ratio)) lo = mid;
    else hi = mid;
  }
  return at(lo);
}

// The least Σ w_l·f(n_l) within the budget: greedy down each layer's lower convex hull of
// (params, w·f(n)) from every layer as it is (the Lagrangian's path), then the fill.
function rate(layers, ratio, { w = () => 1, f = (n) => n, floorDb = -Infinity } = {}) {
  const cost = layers.map((l) => l.pts.filter((p) => p.db >= floorDb).map((p) => ({ ...p, c: w(l) * f(p.n) })));
  const hulls = layers.map((l, i) => {
    const hull = [{ params: l.params, c: 0, asIs: true }];
    for (const p of [...cost[i]].sort((a, b) => b.params - a.params)) {
      if (!(p.c > hull[hull.length - 1].c)) continue;
      while (hull.length >= 2) {
        const a = hull[hull.length - 2];
        const b = hull[hull.length - 1];
        if ((b.c - a.c) / (a.params - b.params) < (p.c - b.c) / (b.params - p.params)) break;
        hull.pop();
      }
      hull.push(p);
    }
    return hull;
  });
  const pos = layers.map(() => 0);
  let sum = layers.reduce((s, l) => s + l.params, 0);
  const target = budget(layers, ratio);
  while (sum > target) {
    let bi = -1;
    let bs = Infinity;
    hulls.forEach((h, i) => {
      if (pos[i] + 1 >= h.length) return;
      const s = (h[pos[i] + 1].c - h[pos[i]].c) / (h[pos[i]].params - h[pos[i] + 1].params);
      if (s < bs) [bs, bi] = [s, i];
    });
    if (bi < 0) return null;
    sum -= hulls[bi][pos[bi]].params - hulls[bi][pos[bi] + 1].params;
    pos[bi]++;
  }
  const pick = hulls.map((h, i) => (pos[i] ? h[pos[i]] : null));
  for (;;) {
    const left = target - total(layers, pick);
    let best = null;
    pick.forEach((cur, i) => {
      if (!cur) return;
      for (const p of [...cost[i], { params: layers[i].params, c: 0, asIs: true }]) {
        const dp = p.params - cur.params;
        const g = (cur.c - p.c) / dp;
        if (dp > 0 && dp <= left && g > 0 && (!best || g > best.g)) best = { g, i, p };
      }
    });
    if (!best) break;
    pick[best.i] = best.p.asIs ? null : best.p;
  }
  return pick;
}

const planners = {
  rate: (L, r) => rate(L, r),
  minimax,
  uniform,
  params: (L, r) => rate(L, r, { w: (l) => l.params }),
  sqrtparams: (L, r) => rate(L, r, { w: (l) => Math.sqrt(l.params) }),
  n2: (L, r) => rate(L, r, { f: (n) => n * n }),
  log: (L, r) => rate(L, r, { f: (n) => -Math.log(Math.max(1e-300, 1 - n)) }),
  floor: (L, r) =>
    rate(L, r, {
      floorDb: Math.min(
        ...uniform(L, r)
          .filter(Boolean)
          .map((p) => p.db),
      ),
    }),
};

const results = [];
const lines = [
  `| model | ratio | ${wanted.join(' | ')} | ${wanted
    .filter((m) => m !== 'uniform')
    .map((m) => `${m} − uniform`)
    .join(' | ')} |`,
  `|---|---|${wanted.map(() => '---|').join('')}${wanted
    .filter((m) => m !== 'uniform')
    .map(() => '---|')
    .join('')}`,
];
for (const file of files) {
  const name = path.basename(file);
  const layers = layersOf(await compressibility(file, { full: true, ratio: 1 }));
  const before = layers.reduce((s, l) => s + l.params, 0);
  const ref = await outputs(file, file);
  for (const ratio of ratios) {
    const row = { model: name, ratio };
    for (const m of wanted) {
      let written;
      let fraction;
      if (m === 'core') {
        written = await compress(file, { ratio });
        fraction = written.achieved.params;
      } else {
        const pick = planners[m](layers, ratio);
        if (!pick) continue;
        const keep = {};
        layers.forEach((l, i) => pick[i] && (keep[l.name] = pick[i].keep));
        written = await compress(file, { keep });
        fraction = total(layers, pick) / before;
      }
      const got = await outputs(written.bytes, file);
      row[m] = {
        db: sqnrDb(ref, got).overall,
        perInput: seeds.map((_, k) => sqnrDb([ref[k]], [got[k]]).overall),
        params: fraction,
        ranks: Object.fromEntries(written.layers.filter((l) => l.rank !== null).map((l) => [l.name, l.rank])),
      };
    }
    results.push(row);
    const cells = wanted.map((m) => (row[m] ? row[m].db.toFixed(1) : 'n/a'));
    for (const m of wanted.filter((x) => x !== 'uniform')) {
      if (!row[m] || !row.uniform) {
        cells.push('n/a');
        continue;
      }
      const d = row[m].perInput.map((x, k) => x - row.uniform.perInput[k]);
      const mean = d.reduce((a, b) => a + b, 0) / d.length;
      const se = Math.sqrt(d.reduce((a, b) => a + (b - mean) ** 2, 0) / (d.length - 1) / d.length);
      cells.push(`${mean >= 0 ? '+' : ''}${mean.toFixed(2)} ± ${se.toFixed(2)}${mean < -3 * se ? ' *' : ''}`);
    }
    lines.push(`| ${name} | ${ratio} | ${cells.join(' | ')} |`);
    console.error(lines[lines.length - 1]);
  }
}
console.log(lines.join('\n'));
if (arg('json')) fs.writeFileSync(arg('json'), JSON.stringify(results, null, 1));
