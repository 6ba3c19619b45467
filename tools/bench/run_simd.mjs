// One measurement of the SIMD yardstick, in its own process:
//   node tools/bench/run_simd.mjs MODEL.onnx RANGES.json [--stream]
// RANGES.json: [[byteOffset, byteLength], ...] of the weights' raw_data in the file.
// Reads the file into the WASM heap exactly as QuantLens does (fs.readSync into
// HEAPU8, 16 MB slices), then runs max |x| over those ranges. Prints one JSON line:
// readMs, passMs (first pass over bytes already in the heap), passBestMs (best of 3
// more passes), absMax, maxRssKB.
// --stream: instead, read only the weight ranges, 16 MB at a time, into one reused
// 16 MB heap buffer, passing over each piece as it arrives (what a reader that streams
// layers through a scratch buffer would pay). Prints streamMs, absMax, maxRssKB.
import fs from 'node:fs';
import { createRequire } from 'node:module';
import { performance } from 'node:perf_hooks';

const require = createRequire(import.meta.url);
const here = new URL('.', import.meta.url).pathname;
const createSimdPass = require(`${here}build/simd_pass.js`);
const mod = await createSimdPass({ wasmBinary: fs.readFileSync(`${here}build/simd_pass.wasm`) });

const [model, rangesPath, mode] = process.argv.slice(2);
const ranges = JSON.parse(fs.readFileSync(rangesPath, 'utf8'));
const now = () => performance.now();
const SLICE = 16 << 20;

if (mode === '--stream') {
  const t0 = now();
  const fd = fs.openSync(model, 'r');
  const buf = mod._malloc(SLICE) >>> 0;
  let absMax = 0;
  let bytes = 0;
  for (const [offset, length] of ranges) {
    for (let done = 0; done < length;) {
      const len = Math.min(SLICE, length - done); // SLICE and weights are whole floats
      const n = fs.readSync(fd, mod.HEAPU8, buf, len, offset + done);
      if (n !== len) throw new Error('short read');
      absMax = Math.max(absMax, mod._max_abs(buf, len / 4));
      done += len;
      bytes += len;
    }
  }
  fs.closeSync(fd);
  console.log(JSON.stringify({ streamMs: now() - t0, bytes, absMax, maxRssKB: process.resourceUsage().maxRSS }));
  process.exit(0);
}

const rptr = mod._malloc(16 * ranges.length) >>> 0;
new Float64Array(mod.HEAPU8.buffer, rptr, 2 * ranges.length).set(ranges.flat());

const t0 = now();
const fd = fs.openSync(model, 'r');
const size = fs.fstatSync(fd).size;
const ptr = mod._malloc(size) >>> 0;
if (!ptr) throw new Error('malloc failed');
for (let done = 0; done < size;) {
  const n = fs.readSync(fd, mod.HEAPU8, ptr + done, Math.min(SLICE, size - done), done);
  if (n <= 0) throw new Error('short read');
  done += n;
}
fs.closeSync(fd);
const t1 = now();
const absMax = mod._max_abs_ranges(ptr, rptr, ranges.length);
const t2 = now();
let best = Infinity;
for (let k = 0; k < 3; k++) {
  const a = now();
  mod._max_abs_ranges(ptr, rptr, ranges.length);
  best = Math.min(best, now() - a);
}
let bytes = 0;
for (const [, len] of ranges) bytes += len;
console.log(
  JSON.stringify({
    readMs: t1 - t0,
    passMs: t2 - t1,
    readPassMs: t2 - t0,
    passBestMs: best,
    bytes,
    absMax,
    maxRssKB: process.resourceUsage().maxRSS,
  }),
);
