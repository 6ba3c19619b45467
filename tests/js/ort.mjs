// onnxruntime-node helpers for tests and benchmarks: sessions, deterministic random
// inputs, running a model, and comparing outputs (max relative error, SQNR).
//
//   const s = await session('model.onnx');                  // or a Uint8Array of the model
//   const feeds = randomFeeds(s, { seed: 1, low: -1, high: 1, dims: { input: [1, 3, 240, 320] } });
//   const ref = await runAll(s, feeds);                     // { name: { data: Float32Array, dims } }
//   sqnrDb(ref, test).overall; maxRelativeError(ref, test).worst;
//
// `ref`/`test` given to the comparisons may also be arrays of runAll results (one per
// input seed, same order): the sums then run over every run.
import path from 'node:path';
import * as ort from 'onnxruntime-node';

export { ort };

export async function session(bytesOrPath, options = {}) {
  return ort.InferenceSession.create(bytesOrPath, { logSeverityLevel: 3, ...options });
}

// Small seeded PRNG (mulberry32): uniform floats in [0, 1).
export function mulberry32(seed) {
  let a = seed >>> 0;
  return () => {
    a = (a + 0x6d2b79f5) >>> 0;
    let t = a;
    t = Math.imul(t ^ (t >>> 15), t | 1);
    t ^= t + Math.imul(t ^ (t >>> 7), t | 61);
    return ((t ^ (t >>> 14)) >>> 0) / 4294967296;
  };
}

// Concrete dims of an input: caller override, else the model's dims with a symbolic
// leading (batch) dim as 1. Any other symbolic dim needs an override.
function inputDims(meta, dims) {
  if (dims?.[meta.name]) return dims[meta.name].slice();
  return meta.shape.map((d, i) => {
    if (typeof d === 'number' && d > 0) return d;
    if (i === 0) return 1;
    throw new Error(`input '${meta.name}' has symbolic dim ${i} (${d}): pass dims: { '${meta.name}': [...] }`);
  });
}

// Uniform random float32 inputs in [low, high) for every model input, deterministic in
// `seed` (input k uses seed + 7919·k). low/high default to 0..1.
export function randomFeeds(sess, { seed = 1, low = 0, high = 1, dims = {} } = {}) {
  const feeds = {};
  sess.inputMetadata.forEach((meta, k) => {
    if (meta.type !== 'float32') throw new Error(`input '${meta.name}' is ${meta.type}; only float32 inputs are supported`);
    const shape = inputDims(meta, dims);
    const n = shape.reduce((a, b) => a * b, 1);
    const rand = mulberry32(seed + 7919 * k);
    const data = new Float32Array(n);
    for (let i = 0; i < n; i++) data[i] = low + (high - low) * rand();
    feeds[meta.name] = new ort.Tensor('float32', data, shape);
  });
  return feeds;
}

// randomFeeds with the range and dims of `modelInputs[basename(file)]`.
export function feedsFor(file, sess, { seed = 1 } = {}) {
  const spec = modelInputs[path.basename(file)];
  if (!spec) throw new Error(`no modelInputs entry for ${path.basename(file)}`);
  return randomFeeds(sess, { seed, ...spec });
}

// Runs the model; every output as { data: Float32Array (a copy), dims: number[] }.
export async function runAll(sess, feeds) {
  const res = await sess.run(feeds);
  const out = {};
  for (const name of sess.outputNames) {
    const t = res[name];
    out[name] = { data: Float32Array.from(t.data, Number), dims: Array.from(t.dims) };
    t.dispose?.();
  }
  return out;
}

const runs = (x) => (Array.isArray(x) ? x : [x]);
function pairsByOutput(ref, test) {
  const R = runs(ref),
    T = runs(test);
  if (R.length !== T.length) throw new Error(`${R.length} reference runs vs ${T.length} test runs`);
  const names = Object.keys(R[0]);
  return names.map((name) => [
    name,
    R.map((r, i) => {
      const a = r[name].data,
        b = T[i][name]?.data;
      if (!b || a.length !== b.length) throw new Error(`output '${name}': shapes differ or missing`);
      return [a, b];
    }),
  ]);
}

// Per output: max|ref - test| / max|ref| (over all runs); worst = the largest of them.
export function maxRelativeError(ref, test) {
  const perOutput = {};
  let worst = 0;
  for (const [name, list] of pairsByOutput(ref, test)) {
    let maxDiff = 0,
      maxRef = 0;
    for (const [a, b] of list) {
      for (let i = 0; i < a.length; i++) {
        const d = Math.abs(a[i] - b[i]);
        if (d > maxDiff || Number.isNaN(d)) maxDiff = Number.isNaN(d) ? Infinity : d;
        if (Math.abs(a[i]) > maxRef) maxRef = Math.abs(a[i]);
      }
    }
    const e = maxRef > 0 ? maxDiff / maxRef : maxDiff > 0 ? Infinity : 0;
    perOutput[name] = e;
    worst = Math.max(worst, e);
  }
  return { perOutput, worst };
}

// SQNR in dB = 10·log10(Σ ref² / Σ (ref - test)²), sums in float64.
// perOutput: each output alone (over all runs). overall: the sums taken over every
// element of every output (and run) together, so outputs with more elements or larger
// values weigh more. mean: the average of the perOutput dB values (every output counts
// the same, whatever its size or scale). Identical outputs give Infinity.
export function sqnrDb(ref, test) {
  const db = (s, n) => (n === 0 ? Infinity : 10 * Math.log10(s / n));
  const perOutput = {};
  let S = 0,
    N = 0;
  for (const [name, list] of pairsByOutput(ref, test)) {
    let s = 0,
      n = 0;
    for (const [a, b] of list) {
      for (let i = 0; i < a.length; i++) {
        const d = a[i] - b[i];
        s += a[i] * a[i];
        n += d * d;
      }
    }
    perOutput[name] = db(s, n);
    S += s;
    N += n;
  }
  const dbs = Object.values(perOutput);
  return { perOutput, overall: db(S, N), mean: dbs.reduce((a, b) => a + b, 0) / dbs.length };
}

// Elements where one side is exactly 0 and the other is not, beyond the tolerance: a
// mask (for example M-LSD's Equal(x, MaxPool(x)) peak picking) flipped by float noise;
// `ref` and `test` are arrays of runAll results (one per seed). Each flipped element of
// `test` is set to the reference value, so that it is left out of a later comparison.
export function maskFlips(ref, test, tolerance) {
  let flips = 0;
  let total = 0;
  for (let k = 0; k < ref.length; k++) {
    for (const name of Object.keys(ref[k])) {
      const a = ref[k][name].data;
      const b = test[k][name].data;
      let max = 0;
      for (const x of a) max = Math.max(max, Math.abs(x));
      total += a.length;
      for (let i = 0; i < a.length; i++) {
        if ((a[i] === 0) !== (b[i] === 0) && Math.abs(a[i] - b[i]) > tolerance * max) {
          flips++;
          b[i] = a[i]; // excluded from the error measured next
        }
      }
    }
  }
  return { flips, total };
}

// Input range and dim overrides of the real models (keyed by file basename), from the
// first ops of each graph and the preprocessing of the projects the files come from.
const PM1 = { low: -1, high: 1 };
const PIXELS = { low: 0, high: 255 };
export const modelInputs = {
  // input 'sub_7' is the output of TF's x/127.5-1 (outside the export); the source sample feeds image/127.5-1
  'deeplabv3_mobilenetv2_tfhub.onnx': PM1,
  // input 'sub_2' = BodyPix MobileNetV1 preprocessing rgb*2-1 (keijiro BodyPix preprocess coeffs (-1,-1,-1,2))
  'bodypix_mobilenet050_stride16_240x320_tf2onnx1.8.4.onnx': PM1,
  // same network and preprocessing; H, W are symbolic: use the 1.8.4 file's 240x320
  'bodypix_mobilenetv1_x050_stride16_tf2onnx1.7.2.onnx': { ...PM1, dims: { input: [1, 240, 320, 3] } },
  // OpenVINO road-segmentation-adas-0001: first op is Transpose -> Conv, no normalization; BGR pixels 0..255
  'road_segmentation_adas_0001.onnx': PIXELS,
  // YuNet: first op is Conv on the raw image; the sample feeds 0..255 pixels as float
  'yunet_120x160.onnx': PIXELS,
  // UltraFace: first op is Conv; the project feeds (img - 127) / 128, i.e. about [-1, 1]
  'ultraface_version-RFB-320.onnx': PM1,
  'ultraface_version-RFB-320_without_postprocessing.onnx': PM1,
  'ultraface_version-RFB-320_simplified_bnfolded.onnx': PM1,
  // M-LSD: graph starts with Mul(1/127.5) and Sub(1): raw RGBA pixels 0..255
  'mlsd_320x320_tiny.onnx': PIXELS,
  // BlazeFace (keijiro): first op Transpose -> Conv; the project's preprocess shader feeds rgb*2-1
  'blazeface_128x128.onnx': PM1,
  // YOLOX: first ops are the Focus slices on raw 0..255 pixels (the sample feeds unnormalized BGR)
  'yolox_nano.onnx': PIXELS,
  // Keras MNIST: Reshape -> Conv, images scaled to [0, 1]
  'mnist_keras_tf2onnx.onnx': { low: 0, high: 1 },
  // Reversi MLP: board cells, 0/1-valued planes; uniform [0, 1] as a stand-in
  'reversi_mlp_tf2onnx.onnx': { low: 0, high: 1 },
};
