// The memory-bandwidth yardstick of the benchmark: one plain WASM SIMD pass over
// float32 weights already in the WebAssembly heap, computing max |x|. It reads each
// byte once and does the least work a statistic can do, so no per-channel analysis
// of the same bytes can beat it on one core.
//
// Built by tools/bench/bench.mjs with Debian's em++ 3.1.6 (non-ES-module output,
// -sMODULARIZE; loaded under Node with wasmBinary).
#include <emscripten/emscripten.h>
#include <wasm_simd128.h>

#include <cstdint>
#include <cstring>

extern "C" {

// max |x| over n float32 values at p (any alignment: WASM loads need none).
EMSCRIPTEN_KEEPALIVE float max_abs(const uint8_t* p, uint32_t n) {
  const v128_t mask = wasm_i32x4_splat(0x7fffffff);
  v128_t m0 = wasm_f32x4_splat(0), m1 = m0, m2 = m0, m3 = m0;
  uint32_t i = 0;
  for (; i + 16 <= n; i += 16) {  // 4 independent accumulators, 64 bytes a step
    const uint8_t* q = p + 4 * static_cast<size_t>(i);
    m0 = wasm_f32x4_pmax(m0, wasm_v128_and(wasm_v128_load(q), mask));
    m1 = wasm_f32x4_pmax(m1, wasm_v128_and(wasm_v128_load(q + 16), mask));
    m2 = wasm_f32x4_pmax(m2, wasm_v128_and(wasm_v128_load(q + 32), mask));
    m3 = wasm_f32x4_pmax(m3, wasm_v128_and(wasm_v128_load(q + 48), mask));
  }
  for (; i + 4 <= n; i += 4) m0 = wasm_f32x4_pmax(m0, wasm_v128_and(wasm_v128_load(p + 4 * static_cast<size_t>(i)), mask));
  const v128_t m = wasm_f32x4_pmax(wasm_f32x4_pmax(m0, m1), wasm_f32x4_pmax(m2, m3));
  float r = 0;
  float lanes[4];
  wasm_v128_store(lanes, m);
  for (int k = 0; k < 4; ++k) r = lanes[k] > r ? lanes[k] : r;
  for (; i < n; ++i) {
    float x;
    std::memcpy(&x, p + 4 * static_cast<size_t>(i), 4);
    x = x < 0 ? -x : x;
    r = x > r ? x : r;
  }
  return r;
}

// max |x| over several float32 ranges of the heap: ranges holds (byte offset from
// base, byte length) pairs, count pairs in all.
EMSCRIPTEN_KEEPALIVE float max_abs_ranges(const uint8_t* base, const double* ranges, uint32_t count) {
  float r = 0;
  for (uint32_t k = 0; k < count; ++k) {
    const float m = max_abs(base + static_cast<size_t>(ranges[2 * k]), static_cast<uint32_t>(ranges[2 * k + 1] / 4));
    r = m > r ? m : r;
  }
  return r;
}
}
