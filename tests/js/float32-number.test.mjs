// float32Number (web/src/format.js), the one formatting of float32 values in JSON: the value
// of x.toPrecision(p) for the first p of 6, 7, 8 that reads back as x, else toPrecision(9).
// Its arithmetic shortcut (float32Text: the decimal found and written from integer digits,
// toPrecision only where the margins cannot decide) must give exactly what that definition
// gives, here written out as the reference: on every exponent, on random bit patterns, and
// next to the decimals and powers where the shortcut's margins are thinnest. float32Text's
// text must be String() of that value on the same inputs.
import assert from 'node:assert/strict';
import { test } from 'node:test';
import { float32Number, float32Text } from '../../web/src/format.js';

function reference(x) {
  if (!Number.isFinite(x)) return null;
  if (x === 0) return 0;
  for (let p = 6; p < 9; p++) {
    const y = Number(x.toPrecision(p));
    if (Math.fround(y) === x) return y;
  }
  return Number(x.toPrecision(9));
}

const f32 = new Float32Array(1);
const u32 = new Uint32Array(f32.buffer);
const fromBits = (b) => {
  u32[0] = b;
  return f32[0];
};
const bitsOf = (x) => {
  f32[0] = x;
  return u32[0];
};

// Same result, as the same number (Object.is: -0 and 0 differ), for x and its neighbours.
function agree(x, counts) {
  const b = bitsOf(x);
  for (let d = -3; d <= 3; d++) {
    const v = fromBits((b + d) >>> 0);
    const got = float32Number(v);
    const want = reference(v);
    if (!Object.is(got, want)) assert.fail(`float32Number(${v}) = ${got}, the definition gives ${want} (bits ${b + d})`);
    // float32Text: the JSON text of that value, made without it
    const text = float32Text(v);
    if (text !== (want === null ? 'null' : String(want)))
      assert.fail(`float32Text(${v}) = ${text}, JSON of the definition's value: ${want} (bits ${b + d})`);
    counts.n++;
  }
}

test('float32Number gives the definition’s value on random bit patterns of every exponent', () => {
  let seed = 0x9e3779b9;
  const next = () => {
    seed ^= seed << 13;
    seed ^= seed >>> 17;
    seed ^= seed << 5;
    return seed >>> 0;
  };
  const counts = { n: 0 };
  for (let exp = 0; exp < 255; exp++)
    for (let k = 0; k < 400; k++) agree(fromBits(((next() & 0x807fffff) | (exp << 23)) >>> 0), counts);
  assert.ok(counts.n > 700000);
});

test('... next to decimals of 6, 7 and 8 digits, decimal ties, powers of ten and two, and the extremes', () => {
  const counts = { n: 0 };
  for (let e = -45; e <= 38; e++)
    for (const p of [6, 7, 8])
      for (let k = 0; k < 60; k++) {
        // a p-digit decimal, its half-way point to the next one, and powers of ten
        const m = 10 ** (p - 1) + Math.floor(((k * 7919) % 9000) * 10 ** (p - 4));
        for (const v of [m, m + 0.5]) {
          const x = Math.fround(v * 10 ** (e - p + 1));
          if (Number.isFinite(x) && x !== 0) {
            agree(x, counts);
            agree(-x, counts);
          }
        }
      }
  for (let e = -45; e <= 38; e++) agree(Math.fround(10 ** e), counts);
  for (let e = -149; e <= 127; e++) agree(Math.fround(2 ** e), counts);
  for (const x of [1e-45, 1.1754942e-38, 1.17549435e-38, 3.4028235e38, 0.1, 1 / 3, 2 / 3, 65504, 0.3])
    agree(Math.fround(x), counts);
  assert.ok(counts.n > 100000);
  assert.equal(float32Number(0), 0);
  assert.ok(Object.is(float32Number(-0), 0)); // as the definition: x === 0 gives 0
  assert.equal(float32Number(NaN), null);
  assert.equal(float32Number(Infinity), null);
  for (const [x, text] of [
    [0, '0'],
    [-0, '0'],
    [NaN, 'null'],
    [-Infinity, 'null'],
    [Math.fround(1e-7), '1e-7'],
    [Math.fround(-1.5e-7), '-1.5e-7'],
    [Math.fround(1e21), '1e+21'],
    [Math.fround(123456789), '123456790'],
    [0.5, '0.5'],
    [Math.fround(0.000001), '0.000001'],
  ])
    assert.equal(float32Text(x), text, `float32Text(${x})`);
});
