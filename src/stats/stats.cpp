#include "stats/stats.hpp"

#include <algorithm>
#include <cmath>
#include <cstring>
#include <limits>
#include <string>

#include "stats/outliers.hpp"

namespace ql::stats {

namespace {

// Portable 4-lane vectors (GCC/Clang vector extensions): SSE natively, simd128 in WASM.
typedef float v4f __attribute__((vector_size(16)));
typedef int32_t v4i __attribute__((vector_size(16)));

inline v4f splat(float x) { return v4f{x, x, x, x}; }
inline v4f vload(const float* q) {
  v4f v;
  std::memcpy(&v, q, 16);
  return v;
}
inline v4f vmin(v4f a, v4f b) { return b < a ? b : a; }
// Written as the patterns of WASM's f32x4.pmin / f32x4.pmax (one instruction each).
inline v4f vmax(v4f a, v4f b) { return a < b ? b : a; }
typedef uint32_t v4u __attribute__((vector_size(16)));
typedef uint16_t v4h __attribute__((vector_size(8)));

inline v4f asFloat(v4u u) {
  v4f v;
  std::memcpy(&v, &u, 16);
  return v;
}
inline v4u asBits(v4f f) {
  v4u u;
  std::memcpy(&u, &f, 16);
  return u;
}

// The stored element types the statistics read, each converted to float32 in
// registers as it is loaded (never through a buffer): E::load4(p) the 4 elements at p,
// E::partial(p, lanes) the first `lanes` of them zero-padded, E::load1(p) one element.
// Every conversion is exact (each float16 and bfloat16 value is a float32 value) and
// gives the bits onnx::halfToFloat and onnx::bfloat16ToFloat give.
struct F32 {
  static constexpr uint64_t kSize = 4;
  static constexpr bool kHidesNonFinite = false;
  using Exact = F32;
  static v4f load4(const uint8_t* p) {
    v4f v;
    std::memcpy(&v, p, 16);
    return v;
  }
  static v4f partial(const uint8_t* p, int lanes) {
    float t[4] = {0, 0, 0, 0};
    std::memcpy(t, p, 4 * static_cast<size_t>(lanes));
    v4f v;
    std::memcpy(&v, t, 16);
    return v;
  }
  static float load1(const uint8_t* p) { return partial(p, 1)[0]; }
};

// IEEE binary16 with infinities and NaN (F16Finite's Exact, to count those): |h|
// shifted into a float32's exponent and mantissa fields and scaled by 2^(127 - 15) is
// the value for every normal and subnormal half (one exact multiply); exponent field 31
// (infinity, NaN) becomes float32's 255 with the mantissa kept.
struct F16 {
  static v4f convert(v4u h) {
    const v4u em = (h & 0x7fffu) << 13;
    v4u bits = asBits(asFloat(em) * 0x1p112f);
    const v4u special = (h & 0x7c00u) == 0x7c00u;  // all ones where infinite or NaN
    bits = (bits & ~special) | ((em | 0x7f800000u) & special);
    return asFloat(bits | (h & 0x8000u) << 16);
  }
  static float load1(const uint8_t* p) {
    uint16_t h;
    std::memcpy(&h, p, 2);
    return convert(v4u{h, 0, 0, 0})[0];
  }
};

// float16 as the statistics read it: without F16's special case for infinities and NaN.
// The sign-extended half shifted left by 13 and masked puts the sign in bit 31 and the
// exponent and mantissa fields where F16::convert puts them; the multiply by 2^112
// keeps the sign, so every finite half gives F16's bits in 3 operations instead of 8.
// An infinity or NaN becomes a finite value of magnitude 2^16 or more, above every
// finite half (65504 at most): pass 1 finds them so in the channels' minima and maxima
// and counts them with F16 (Exact); no NaN reaches the histogram's bin index.
struct F16Finite {
  static constexpr uint64_t kSize = 2;
  static constexpr bool kHidesNonFinite = true;  // pass 1 finds them by magnitude (feedAll)
  using Exact = F16;                             // to count them
  typedef int16_t v4s __attribute__((vector_size(8)));
  static v4f convert(v4i h) {  // h: the halves sign-extended to 32 bits
    v4u u;
    std::memcpy(&u, &h, 16);
    return asFloat((u << 13) & 0x8fffe000u) * 0x1p112f;
  }
  static v4f load4(const uint8_t* p) {
    v4s h;
    std::memcpy(&h, p, 8);
    return convert(__builtin_convertvector(h, v4i));
  }
  static v4f partial(const uint8_t* p, int lanes) {
    int16_t t[4] = {0, 0, 0, 0};
    std::memcpy(t, p, 2 * static_cast<size_t>(lanes));
    return convert(v4i{t[0], t[1], t[2], t[3]});
  }
  static float load1(const uint8_t* p) { return partial(p, 1)[0]; }
};

// bfloat16: the upper 16 bits of a float32.
struct BF16 {
  static constexpr uint64_t kSize = 2;
  static constexpr bool kHidesNonFinite = false;
  using Exact = BF16;
  static v4f load4(const uint8_t* p) {
    v4h h;
    std::memcpy(&h, p, 8);
    return asFloat(__builtin_convertvector(h, v4u) << 16);
  }
  static v4f partial(const uint8_t* p, int lanes) {
    uint16_t t[4] = {0, 0, 0, 0};
    std::memcpy(t, p, 2 * static_cast<size_t>(lanes));
    return asFloat(v4u{t[0], t[1], t[2], t[3]} << 16);
  }
  static float load1(const uint8_t* p) { return partial(p, 1)[0]; }
};

// 1.5 * 2^23: adding and subtracting it rounds a float of magnitude < 2^22 to the
// nearest integer, ties to even (the default rounding mode), lane by lane.
#if !defined(__wasm_simd128__)
constexpr float kRoundMagic = 12582912.0f;
#endif

// Round half to even, lane by lane: one instruction in WASM SIMD; elsewhere adding
// and subtracting 1.5 * 2^23 rounds any float of magnitude < 2^22 in the default mode.
inline v4f roundEven(v4f y) {
#if defined(__wasm_simd128__)
  return __builtin_wasm_nearest_f32x4(y);
#else
  return (y + kRoundMagic) - kRoundMagic;
#endif
}

// The clamp to [-qmax, qmax] of the definition never binds here: the scale comes
// from the absMax of the very values quantized, so |x * (1/s)| <= qmax * (1 + 4 ulp)
// and rounds to at most qmax. Leaving it out saves two operations per scheme.
inline v4f fakeQuant(v4f x, v4f inv, v4f s) { return roundEven(x * inv) * s; }

constexpr int kFlush = 256;  // vector iterations (or rows) between float -> double flushes (even: pass2Sweep)
static_assert(kFlush % 2 == 0, "pass2Sweep's pairs of vectors end where a flush falls");
constexpr uint64_t kBlock = 1024;  // row mode: channels per column block (a multiple of 4)
constexpr uint64_t kTile = 8;      // row mode: rows per register tile (accumulators loaded and stored once per tile)

// ---- pass 1: min, max, sum ------------------------------------------------------

// The hot loops live in functions of their own, called once per run or row and never
// inlined: V8 runs a WASM function in its baseline tier (Liftoff) until a later call
// picks up the optimized code, and has no on-stack replacement, so one long call
// would stay in the slow tier.
#define QL_HOT __attribute__((noinline))

// The hot functions are called through their address read at run time (hot<&f>()), which keeps
// each a function of its own in the WASM build: binaryen (wasm-opt 108, this toolchain's)
// inlines a function with one caller whatever LLVM's noinline says, and the kernels it had
// inlined into feedAll, which V8 enters once per piece, ran each thread's first 4 MB piece
// in the baseline tier (VGG-16: 115 ms instead of 5).
template <auto F>
inline auto hot() {
  static decltype(F) const volatile address = F;
  return address;
}

template <class E>
QL_HOT void pass1Run(const uint8_t* p, uint64_t n, float* mn, float* mx, double* sum) {
  uint64_t i = 0;
  if (n >= 4) {
    v4f vmn = E::load4(p), vmx = vmn, vs = splat(0);
    double s = 0;
    int k = 0;
    for (; i + 4 <= n; i += 4) {
      v4f x = E::load4(p + E::kSize * i);
      vmn = vmin(vmn, x);
      vmx = vmax(vmx, x);
      vs += x;
      if (++k == kFlush) {
        s += double(vs[0]) + double(vs[1]) + double(vs[2]) + double(vs[3]);
        vs = splat(0);
        k = 0;
      }
    }
    s += double(vs[0]) + double(vs[1]) + double(vs[2]) + double(vs[3]);
    *mn = std::min(*mn, std::min(std::min(vmn[0], vmn[1]), std::min(vmn[2], vmn[3])));
    *mx = std::max(*mx, std::max(std::max(vmx[0], vmx[1]), std::max(vmx[2], vmx[3])));
    *sum += s;
  }
  for (; i < n; ++i) {
    const float x = E::load1(p + E::kSize * i);
    *mn = std::min(*mn, x);
    *mx = std::max(*mx, x);
    *sum += x;
  }
}

inline float hmin4(v4f v) { return std::min(std::min(v[0], v[1]), std::min(v[2], v[3])); }
inline float hmax4(v4f v) { return std::max(std::max(v[0], v[1]), std::max(v[2], v[3])); }
// The largest lane, by two vector maxima over swapped halves (no scalar compares).
inline float hmaxLanes(v4f v) {
  v = vmax(v, __builtin_shufflevector(v, v, 2, 3, 0, 1));
  v = vmax(v, __builtin_shufflevector(v, v, 1, 0, 3, 2));
  return v[0];
}

// pass1Run and the block absMax of one block size B at once (run mode), when the run
// starts 4-aligned within its blocks (k0 % 4 == 0) and B % 4 == 0, so that no vector
// straddles two blocks. Each block's min and max are kept apart and merged where it
// ends; its absMax is max(max, -min). Min and max are exact in any order and the sums
// group the values as pass1Run does (the same vectors, flushed at the same counts), so
// the results are pass1Run's and blockRun1's bits, with each value loaded once.
template <class E>
QL_HOT void pass1RunBlocks(const uint8_t* p, uint64_t n, uint64_t k0, uint64_t B, float* amax, float* mn, float* mx,
                           double* sum) {
  const float inf = std::numeric_limits<float>::infinity();
  v4f vmn = splat(inf), vmx = splat(-inf), vs = splat(0);
  double s = 0;
  int k = 0;
  uint64_t i = 0;
  // The block of position i and where it ends (relative to the run, before the clamp to
  // n), advanced a block at a time: one division per run, not one per block.
  uint64_t b = k0 / B, blockEnd = (b + 1) * B - k0;
  while (i + 4 <= n) {
    const uint64_t end = std::min(n, blockEnd);
    v4f bmn = splat(inf), bmx = splat(-inf);
    for (; i + 4 <= end; i += 4) {
      const v4f x = E::load4(p + E::kSize * i);
      bmn = vmin(bmn, x);
      bmx = vmax(bmx, x);
      vs += x;
      if (++k == kFlush) {
        s += double(vs[0]) + double(vs[1]) + double(vs[2]) + double(vs[3]);
        vs = splat(0);
        k = 0;
      }
    }
    vmn = vmin(vmn, bmn);
    vmx = vmax(vmx, bmx);
    // max(max, -min) over the lanes in registers; for finite values the same number as
    // the scalar maxima (a zero's sign aside, and amax, from +0, keeps +0 then).
    amax[b] = std::max(amax[b], hmaxLanes(vmax(bmx, -bmn)));
    ++b;
    blockEnd += B;
  }
  if (n >= 4) {
    s += double(vs[0]) + double(vs[1]) + double(vs[2]) + double(vs[3]);
    *mn = std::min(*mn, hmin4(vmn));
    *mx = std::max(*mx, hmax4(vmx));
    *sum += s;
  }
  for (; i < n; ++i) {
    const float x = E::load1(p + E::kSize * i);
    *mn = std::min(*mn, x);
    *mx = std::max(*mx, x);
    *sum += x;
    float& a = amax[(k0 + i) / B];
    a = std::max(a, std::fabs(x));
  }
}

// Row mode (inner == 1): a row holds one value of each of n consecutive channels.
// Over a tile of `nr` rows `stride` bytes apart, each group of 4 channels keeps its
// min, max and partial sums in registers down the rows: every channel sees its rows
// in the same order and through the same operations as a row at a time, so the
// results are the same bits; only the loads and stores of the accumulators go.
template <class E>
QL_HOT void pass1Rows(const uint8_t* row0, uint64_t stride, uint64_t nr, uint64_t n, float* mn, float* mx, float* ps,
                      float* amax) {
  // amax (when given): the block absMax of these rows' block, which they all lie in; a
  // tile's own min and max give it as max(max, -min), with no load of its own.
  const float inf = std::numeric_limits<float>::infinity();
  uint64_t c = 0;
  for (; c + 4 <= n; c += 4) {
    v4f a = splat(inf), b = splat(-inf), s;
    std::memcpy(&s, ps + c, 16);
    const uint8_t* p = row0 + E::kSize * c;
    for (uint64_t r = 0; r < nr; ++r, p += stride) {
      const v4f x = E::load4(p);
      a = vmin(a, x);
      b = vmax(b, x);
      s += x;
    }
    std::memcpy(ps + c, &s, 16);
    const v4f lo = vmin(vload(mn + c), a), hi = vmax(vload(mx + c), b);
    std::memcpy(mn + c, &lo, 16);
    std::memcpy(mx + c, &hi, 16);
    if (amax) {
      const v4f m = vmax(vload(amax + c), vmax(b, -a));
      std::memcpy(amax + c, &m, 16);
    }
  }
  for (; c < n; ++c) {
    const uint8_t* p = row0 + E::kSize * c;
    for (uint64_t r = 0; r < nr; ++r, p += stride) {
      const float x = E::load1(p);
      mn[c] = std::min(mn[c], x);
      mx[c] = std::max(mx[c], x);
      ps[c] += x;
      if (amax) amax[c] = std::max(amax[c], std::fabs(x));
    }
  }
}

// ---- block-wise INT4 helpers -------------------------------------------------------

typedef double v4d __attribute__((vector_size(32)));

inline v4f vabs(v4f x) { return vmax(x, -x); }
inline float hmax(v4f v) { return std::max(std::max(v[0], v[1]), std::max(v[2], v[3])); }
inline double hsum(const v4d& v) { return (v[0] + v[1]) + (v[2] + v[3]); }

// One block's quantization parameters: 4 bits, the zero-scale rule of the other schemes.
inline void blockParams(float absMax, float* inv, float* scale) {
  const float sc = symmetricScale(absMax, 4);
  float iv = sc > 0 ? 1.0f / sc : 0.0f;
  if (!std::isfinite(iv)) iv = 0.0f;
  *inv = iv;
  *scale = iv == 0.0f ? 0.0f : sc;
}

// The error of x quantized with one block's parameters. As for the other schemes
// (fakeQuant) the clamp to [-7, 7] never binds, so it is left out: the scale is the
// block's own absMax / 7, and where that is subnormal enough to be imprecise its
// inverse overflows and blockParams gives inv = 0 (every value's error is itself).
inline v4f blockError(v4f x, v4f inv, v4f s) { return x - roundEven(x * inv) * s; }

// ---- pass 2: deviation, signal, quantization noise, histogram -------------------

enum Acc { kDev = 0, kSig = 1, kNoise0 = 2, kAccs = 2 + kSchemes };

struct Pass2Params {
  float mean;
  double meanD;
  float inv[kSchemes];
  float scale[kSchemes];
};

// The histogram is counted in sub-histograms (a lane's counts apart from the others', and
// run mode's pairs of vectors apart from each other), added when it is finished.
constexpr int kSubHistograms = 8;

struct Hist {
  float lo, hs;
  int32_t last;
  uint32_t* counts;  // kSubHistograms sub-histograms: counts[k * bins + bin]
  int32_t bins;
  // The bins of 4 values. x >= lo holds for the values pass 1 saw (lo is their minimum), but
  // pass 2 reads the weight again, and a file rewritten in between may hold anything: the
  // bins are clamped at both ends (a NaN converts to 0 in WASM, to INT_MIN natively).
  inline v4i bins4(v4f x) const {
    v4f h = (x - lo) * hs;
    v4i b = __builtin_convertvector(h, v4i);
    b = b > last ? last : b;
    return b < 0 ? 0 : b;
  }
  inline void add4(v4f x) const {
    const v4i b = bins4(x);
    ++counts[b[0]];
    ++counts[bins + b[1]];
    ++counts[2 * bins + b[2]];
    ++counts[3 * bins + b[3]];
  }
  // Into sub-histograms `off` ({0, 1, 2, 3} or {4, 5, 6, 7} times bins): two vectors in a row
  // count into different ones, and the lane offsets are added in one vector operation.
  inline void add4At(v4f x, v4i off) const {
    const v4i b = bins4(x) + off;
    ++counts[b[0]];
    ++counts[b[1]];
    ++counts[b[2]];
    ++counts[b[3]];
  }
  // The first `lanes` lanes only (a zero-padded tail).
  inline void addPartial(v4f x, int lanes) const {
    const v4i b = bins4(x);
    for (int k = 0; k < lanes; ++k) ++counts[k * bins + b[k]];
  }
};

inline v4f laneMask(int lanes) { return v4f{lanes > 0 ? 1.0f : 0.0f, lanes > 1 ? 1.0f : 0.0f, lanes > 2 ? 1.0f : 0.0f, 0.0f}; }

// Squares below float32's normal range (1.2e-38) underflow or lose precision. A
// channel whose accumulated sums end below this bound may have lost such squares,
// so it is computed again with every square in double.
constexpr double kRedoBelow = 1e-24;

// Adds the squares of a step's lanes in double (the path for tiny channels).
inline void addWide(double* acc, v4f x, v4f e0, v4f e1, v4f e2, v4f e3, double meanD, int lanes) {
  for (int k = 0; k < lanes; ++k) {
    const double xd = x[k], d = xd - meanD;
    acc[kDev] += d * d;
    acc[kSig] += xd * xd;
    acc[kNoise0 + 0] += double(e0[k]) * double(e0[k]);
    acc[kNoise0 + 1] += double(e1[k]) * double(e1[k]);
    acc[kNoise0 + 2] += double(e2[k]) * double(e2[k]);
    acc[kNoise0 + 3] += double(e3[k]) * double(e3[k]);
  }
}

// Run mode, pass 2: block-wise INT4 of two sizes A and B swept together (pass2Blocks):
// A dividing B, both multiples of 4, B at most 4 * kFlush, the run starting 4-aligned
// within its blocks (k0 % 4 == 0), so that every block of A lies in one block of B at a
// 4-aligned offset and no vector straddles two blocks (a partial vector only at the
// run's end). Each size's squared errors are summed in float lanes within a block and
// added in double where it ends (B's where a block of B or the run ends), as blockRun2
// sums one size alone: the same bits.
struct RunBlocks {
  uint64_t k0, A, B;
  const float *amaxA, *amaxB;
  double *noiseA, *noiseB;
};

// Run mode, pass 2, in sweeps over the run (in cache from the first one on), each with
// few vectors live: V8 allocates 16 vector registers on x64, and one loop holding the
// moments, the four schemes, the histogram and the block pair at once (24 vectors and
// more) spilled in every iteration (a microbenchmark of the loop: 20-35% slower than
// the sweeps). Each accumulator still sees its values in the same order and is flushed
// into double at the same counts (every kFlush vectors from the run's start, and at its
// end), so the sums are the bits of one fused loop. One code path for whole vectors and
// the tail (zero-padded and masked): every element goes through the same float32 operations.
//
// Schemes [S0, S0 + NS); with Moments, the deviation and signal too; with H, the histogram.
template <class E, bool Moments, int S0, int NS, bool H>
QL_HOT void pass2Sweep(const uint8_t* p, uint64_t n, const Pass2Params& P, const Hist* hist, double* acc) {
  const v4f m = splat(P.mean);
  v4f inv[NS], sc[NS], a[NS];
  for (int k = 0; k < NS; ++k) {
    inv[k] = splat(P.inv[S0 + k]);
    sc[k] = splat(P.scale[S0 + k]);
    a[k] = splat(0);
  }
  v4f aDev = splat(0), aSig = aDev;
  auto add = [](double* to, v4f v) { *to += double(v[0]) + double(v[1]) + double(v[2]) + double(v[3]); };
  auto flush = [&] {
    if (Moments) {
      add(&acc[kDev], aDev);
      add(&acc[kSig], aSig);
      aDev = aSig = splat(0);
    }
    for (int k = 0; k < NS; ++k) {
      add(&acc[kNoise0 + S0 + k], a[k]);
      a[k] = splat(0);
    }
  };
  auto step = [&](v4f x, v4f mask) {
    if (Moments) {
      const v4f d = (x - m) * mask;  // padded lanes hold x = 0 and must not count
      aDev += d * d;
      aSig += x * x;
    }
    for (int k = 0; k < NS; ++k) {
      const v4f e = x - fakeQuant(x, inv[k], sc[k]);
      a[k] += e * e;
    }
  };
  const Hist hl = H ? *hist : Hist{};  // a local copy: the counts it stores cannot alias it
  const v4f all = splat(1.0f);
  uint64_t i = 0;
  int k = 0;
  if (H) {
    // Two vectors at a time (kFlush is even: the flushes fall where they fall one at a time).
    const v4i off0 = v4i{0, 1, 2, 3} * hl.bins, off1 = off0 + 4 * hl.bins;
    for (; i + 8 <= n; i += 8) {
      const v4f x0 = E::load4(p + E::kSize * i), x1 = E::load4(p + E::kSize * (i + 4));
      step(x0, all);
      step(x1, all);
      hl.add4At(x0, off0);
      hl.add4At(x1, off1);
      if ((k += 2) == kFlush) {
        flush();
        k = 0;
      }
    }
  }
  for (; i + 4 <= n; i += 4) {
    const v4f x = E::load4(p + E::kSize * i);
    step(x, all);
    if (H) hl.add4(x);
    if (++k == kFlush) {
      flush();
      k = 0;
    }
  }
  if (i < n) {
    const int lanes = static_cast<int>(n - i);
    const v4f x = E::partial(p + E::kSize * i, lanes);
    step(x, laneMask(lanes));
    if (H) hl.addPartial(x, lanes);
  }
  flush();
}

// Run mode, pass 2, the block-wise INT4 pair of *K (its conditions above), each value
// loaded once for both sizes.
template <class E>
QL_HOT void pass2Blocks(const uint8_t* p, uint64_t n, const RunBlocks* K) {
  v4d accA = {0, 0, 0, 0}, accB = accA;
  v4f fA = splat(0), fB = fA, viA = fA, vsA = fA, viB = fA, vsB = fA;
  // The blocks of position i and where they end (relative to the run, before the clamp
  // to n), advanced as the sweep crosses them: two divisions per run.
  uint64_t a = K->k0 / K->A, b = K->k0 / K->B;
  uint64_t endA = (a + 1) * K->A - K->k0, endB = (b + 1) * K->B - K->k0;
  auto paramsB = [&] {
    float inv, sc;
    blockParams(K->amaxB[b], &inv, &sc);
    viB = splat(inv);
    vsB = splat(sc);
  };
  paramsB();
  uint64_t i = 0;
  while (i < n) {
    // One segment: the block of A that position i is in (a block of A lies in one of B).
    const uint64_t end = std::min(n, endA);
    float inv, sc;
    blockParams(K->amaxA[a], &inv, &sc);
    viA = splat(inv);
    vsA = splat(sc);
    fA = splat(0);
    for (; i + 4 <= end; i += 4) {
      const v4f x = E::load4(p + E::kSize * i);
      v4f e = blockError(x, viA, vsA);
      fA += e * e;
      e = blockError(x, viB, vsB);
      fB += e * e;
    }
    if (i < end) {  // the run's end (zero-padded lanes add nothing to the block sums)
      const v4f x = E::partial(p + E::kSize * i, static_cast<int>(end - i));
      v4f e = blockError(x, viA, vsA);
      fA += e * e;
      e = blockError(x, viB, vsB);
      fB += e * e;
      i = end;
    }
    accA += __builtin_convertvector(fA, v4d);
    ++a;
    endA += K->A;
    if (i == n || i == endB) {  // the block of B (or the run) ends
      accB += __builtin_convertvector(fB, v4d);
      fB = splat(0);
      if (i < n) {
        ++b;
        endB += K->B;
        paramsB();
      }
    }
  }
  *K->noiseA += hsum(accA);
  *K->noiseB += hsum(accB);
}

// Run mode, pass 2 (the sweeps above; with K, the block pair's too).
template <class E>
void pass2Run(const uint8_t* p, uint64_t n, const Pass2Params& P, const Hist* hist, double* acc, const RunBlocks* K = nullptr) {
  // Measured on VGG-16 in one process, one thread, 8 rounds each: this split 0.865 s median,
  // the four schemes with the moments then the histogram alone 0.901 s, the four and the
  // histogram in one sweep 0.932 s (the histogram's scalar counting is the costly part, and
  // two schemes' vector work hides under it).
  hot<&pass2Sweep<E, true, 0, 2, false>>()(p, n, P, nullptr, acc);
  hot<&pass2Sweep<E, false, 2, 2, true>>()(p, n, P, hist, acc);
  if (K) hot<&pass2Blocks<E>>()(p, n, K);
}

// Run mode, pass 3 (the redo path for tiny channels): every square in double.
template <class E>
QL_HOT void pass2RunWide(const uint8_t* p, uint64_t n, const Pass2Params& P, double* acc) {
  const v4f i0 = splat(P.inv[0]), i1 = splat(P.inv[1]), i2 = splat(P.inv[2]), i3 = splat(P.inv[3]);
  const v4f s0 = splat(P.scale[0]), s1 = splat(P.scale[1]), s2 = splat(P.scale[2]), s3 = splat(P.scale[3]);
  for (uint64_t i = 0; i < n; i += 4) {
    const int lanes = static_cast<int>(std::min<uint64_t>(4, n - i));
    const v4f x = lanes == 4 ? E::load4(p + E::kSize * i) : E::partial(p + E::kSize * i, lanes);
    addWide(acc, x, x - fakeQuant(x, i0, s0), x - fakeQuant(x, i1, s1), x - fakeQuant(x, i2, s2), x - fakeQuant(x, i3, s3),
            P.meanD, lanes);
  }
}

// Row mode, pass 2: structure-of-arrays parameters and partial sums per channel,
// padded to whole vectors (padded lanes see x = 0 and mean 0, so add nothing).
struct RowArrays {
  const float* mean;
  const float* inv;    // [scheme][channel]
  const float* scale;  // [scheme][channel]
  float* part;         // [accumulator][channel]
  uint64_t stride;     // padded channel count
};

template <class E>
inline v4f loadRow(const uint8_t* row, uint64_t c, uint64_t n, int* lanes) {
  *lanes = static_cast<int>(std::min<uint64_t>(4, n - c));
  return *lanes == 4 ? E::load4(row + E::kSize * c) : E::partial(row + E::kSize * c, *lanes);
}

// Row mode, pass 2: block-wise INT4 of two block sizes swept with the other schemes,
// over rows that lie in one block of each: per channel the block's parameters, and the
// float sums of the squared errors (added into the double sums where a block ends).
struct RowBlocks {
  const float *invA, *scaleA, *invB, *scaleB;  // [channel]
  float *partA, *partB;                        // [channel]
};

// Row mode, pass 2, over a tile of `nr` rows `stride` bytes apart, a group of 4 channels at a
// time with its parameters and partial sums in registers down the rows: per channel
// the same operations in the same row order as a row at a time, so the same bits.
// Full groups and the last partial one are separate instantiations (Full), and the
// histogram's parameters are a local copy: the counts it stores cannot alias them, so
// they stay in registers. With Blk, the block-wise INT4 sums of two sizes too (each
// value loaded and converted once; each sum kept as blockRows2 would keep it alone).
template <class E, bool Full, bool Blk>
inline void pass2Group(const uint8_t* p, uint64_t stride, uint64_t nr, int lanes, const RowArrays& A, const RowBlocks& K,
                       uint64_t c, Hist hl, bool hist) {
  const uint64_t CP = A.stride;
  const v4f m = vload(A.mean + c);
  const v4f i0 = vload(A.inv + c), i1 = vload(A.inv + CP + c), i2 = vload(A.inv + 2 * CP + c), i3 = vload(A.inv + 3 * CP + c);
  const v4f s0 = vload(A.scale + c), s1 = vload(A.scale + CP + c), s2 = vload(A.scale + 2 * CP + c),
            s3 = vload(A.scale + 3 * CP + c);
  float* part = A.part + c;
  v4f aDev = vload(part + kDev * CP), aSig = vload(part + kSig * CP), a0 = vload(part + (kNoise0 + 0) * CP),
      a1 = vload(part + (kNoise0 + 1) * CP), a2 = vload(part + (kNoise0 + 2) * CP), a3 = vload(part + (kNoise0 + 3) * CP);
  v4f viA = splat(0), vsA = viA, viB = viA, vsB = viA, bA = viA, bB = viA;
  if (Blk) {
    viA = vload(K.invA + c), vsA = vload(K.scaleA + c), viB = vload(K.invB + c), vsB = vload(K.scaleB + c);
    bA = vload(K.partA + c), bB = vload(K.partB + c);
  }
  for (uint64_t r = 0; r < nr; ++r, p += stride) {
    const v4f x = Full ? E::load4(p) : E::partial(p, lanes);
    const v4f d = x - m;
    aDev += d * d;
    aSig += x * x;
    v4f e = x - fakeQuant(x, i0, s0);
    a0 += e * e;
    e = x - fakeQuant(x, i1, s1);
    a1 += e * e;
    e = x - fakeQuant(x, i2, s2);
    a2 += e * e;
    e = x - fakeQuant(x, i3, s3);
    a3 += e * e;
    if (Blk) {
      e = blockError(x, viA, vsA);
      bA += e * e;
      e = blockError(x, viB, vsB);
      bB += e * e;
    }
    if (hist) {
      if (Full)
        hl.add4(x);
      else
        hl.addPartial(x, lanes);
    }
  }
  std::memcpy(part + kDev * CP, &aDev, 16);
  std::memcpy(part + kSig * CP, &aSig, 16);
  std::memcpy(part + (kNoise0 + 0) * CP, &a0, 16);
  std::memcpy(part + (kNoise0 + 1) * CP, &a1, 16);
  std::memcpy(part + (kNoise0 + 2) * CP, &a2, 16);
  std::memcpy(part + (kNoise0 + 3) * CP, &a3, 16);
  if (Blk) {
    std::memcpy(K.partA + c, &bA, 16);
    std::memcpy(K.partB + c, &bB, 16);
  }
}

template <class E, bool Blk>
QL_HOT void pass2Rows(const uint8_t* row0, uint64_t stride, uint64_t nr, uint64_t n, const RowArrays& A, const RowBlocks& K,
                      Hist* h) {
  const Hist hl = h ? *h : Hist{};
  uint64_t c = 0;
  for (; c + 4 <= n; c += 4) pass2Group<E, true, Blk>(row0 + E::kSize * c, stride, nr, 4, A, K, c, hl, h != nullptr);
  if (c < n) pass2Group<E, false, Blk>(row0 + E::kSize * c, stride, nr, static_cast<int>(n - c), A, K, c, hl, h != nullptr);
}

// Every square in double, straight into acc[channel][accumulator] (the redo path).
template <class E>
QL_HOT void pass2RowWide(const uint8_t* row, uint64_t n, const RowArrays& A, const double* meanD, double* acc) {
  const uint64_t CP = A.stride;
  for (uint64_t c = 0; c < n; c += 4) {
    int lanes;
    const v4f x = loadRow<E>(row, c, n, &lanes);
    v4f e[kSchemes];
    for (int s = 0; s < kSchemes; ++s) e[s] = x - fakeQuant(x, vload(A.inv + s * CP + c), vload(A.scale + s * CP + c));
    for (int lane = 0; lane < lanes; ++lane) {
      double* a = acc + (c + lane) * kAccs;
      const double xd = x[lane], d = xd - meanD[c + lane];
      a[kDev] += d * d;
      a[kSig] += xd * xd;
      for (int s = 0; s < kSchemes; ++s) a[kNoise0 + s] += double(e[s][lane]) * double(e[s][lane]);
    }
  }
}

// ---- block-wise INT4: block absMax (pass 1), noise (pass 2) ----------------------

// Run mode: n values of one channel, its reduction elements k0, k0 + 1, ...
template <class E>
QL_HOT void blockRun1(const uint8_t* p, uint64_t n, uint64_t k0, uint64_t B, float* amax) {
  for (uint64_t i = 0; i < n;) {
    const uint64_t k = k0 + i, b = k / B, len = std::min(n - i, (b + 1) * B - k);
    v4f m = splat(0);
    uint64_t j = 0;
    for (; j + 4 <= len; j += 4) m = vmax(m, vabs(E::load4(p + E::kSize * (i + j))));
    if (j < len) m = vmax(m, vabs(E::partial(p + E::kSize * (i + j), static_cast<int>(len - j))));
    amax[b] = std::max(amax[b], hmax(m));
    i += len;
  }
}

// Every square in double (pass 3, run mode: the redo path for tiny channels, whose
// float squares may underflow).
template <class E>
QL_HOT void blockRun2Wide(const uint8_t* p, uint64_t n, uint64_t k0, uint64_t B, const float* amax, double* noise) {
  v4d acc = {0, 0, 0, 0};
  for (uint64_t i = 0; i < n;) {
    const uint64_t k = k0 + i, b = k / B, len = std::min(n - i, (b + 1) * B - k);
    float inv, sc;
    blockParams(amax[b], &inv, &sc);
    const v4f vi = splat(inv), vs = splat(sc);
    for (uint64_t j = 0; j < len; j += 4) {
      const int lanes = static_cast<int>(std::min<uint64_t>(4, len - j));
      const v4f x = lanes == 4 ? E::load4(p + E::kSize * (i + j)) : E::partial(p + E::kSize * (i + j), lanes);
      const v4d e = __builtin_convertvector(blockError(x, vi, vs), v4d);
      acc += e * e;
    }
    i += len;
  }
  *noise += hsum(acc);
}

// The squared errors of one block's values are summed in float lanes (kFlush terms at
// most, then added in double, for large block sizes) and the block's lane sums added
// in double: a conversion per block instead of per value. Segments of a block cut by a run's
// start or end are summed the same way, so the sums depend only on where the runs
// and blocks fall, not on how the tensor is split into pieces.
template <class E>
QL_HOT void blockRun2(const uint8_t* p, uint64_t n, uint64_t k0, uint64_t B, const float* amax, double* noise) {
  v4d acc = {0, 0, 0, 0};
  for (uint64_t i = 0; i < n;) {
    const uint64_t k = k0 + i, b = k / B, len = std::min(n - i, (b + 1) * B - k);
    float inv, sc;
    blockParams(amax[b], &inv, &sc);
    const v4f vi = splat(inv), vs = splat(sc);
    v4f f = splat(0);
    uint64_t j = 0;
    for (int m = 0; j + 4 <= len; j += 4) {
      const v4f e = blockError(E::load4(p + E::kSize * (i + j)), vi, vs);
      f += e * e;
      if (++m == kFlush) {
        acc += __builtin_convertvector(f, v4d);
        f = splat(0);
        m = 0;
      }
    }
    if (j < len) {  // zero-padded lanes quantize to 0 and add nothing
      const v4f e = blockError(E::partial(p + E::kSize * (i + j), static_cast<int>(len - j)), vi, vs);
      f += e * e;
    }
    acc += __builtin_convertvector(f, v4d);
    i += len;
  }
  *noise += hsum(acc);
}

// Row mode, block absMax (pass 1) and noise (pass 2), over `nr` rows `stride` bytes
// apart (all in one block), those of a group of 4 channels in registers down the
// rows: per channel the same operations in the same row order, so the same bits.
template <class E>
QL_HOT void blockRows1(const uint8_t* row0, uint64_t stride, uint64_t nr, uint64_t n, float* amax) {
  uint64_t c = 0;
  for (; c + 4 <= n; c += 4) {
    v4f a;
    std::memcpy(&a, amax + c, 16);
    const uint8_t* p = row0 + E::kSize * c;
    for (uint64_t r = 0; r < nr; ++r, p += stride) a = vmax(a, vabs(E::load4(p)));
    std::memcpy(amax + c, &a, 16);
  }
  for (; c < n; ++c) {
    const uint8_t* p = row0 + E::kSize * c;
    for (uint64_t r = 0; r < nr; ++r, p += stride) amax[c] = std::max(amax[c], std::fabs(E::load1(p)));
  }
}

// Every square in double, straight into noise (pass 3: the redo path for tiny channels).
template <class E>
QL_HOT void blockRows2Wide(const uint8_t* row0, uint64_t stride, uint64_t nr, uint64_t n, const float* inv, const float* scale,
                           double* noise) {
  for (uint64_t c = 0; c < n; c += 4) {
    const int lanes = static_cast<int>(std::min<uint64_t>(4, n - c));
    const v4f vi = vload(inv + c), vs = vload(scale + c);
    v4d a;  // `noise` is padded to whole vectors; padded lanes hold x = 0 and add 0
    std::memcpy(&a, noise + c, 32);
    const uint8_t* p = row0 + E::kSize * c;
    for (uint64_t r = 0; r < nr; ++r, p += stride) {
      const v4f x = lanes == 4 ? E::load4(p) : E::partial(p, lanes);
      const v4d e = __builtin_convertvector(blockError(x, vi, vs), v4d);
      a += e * e;
    }
    std::memcpy(noise + c, &a, 32);
  }
}

// Pass 2: the squares of a block's rows summed per channel in float, down the rows in
// order, into `part` (padded to whole vectors; padded lanes see x = 0 and add 0); the
// caller adds `part` into the double sums where a block ends.
template <class E>
QL_HOT void blockRows2(const uint8_t* row0, uint64_t stride, uint64_t nr, uint64_t n, const float* inv, const float* scale,
                       float* part) {
  for (uint64_t c = 0; c < n; c += 4) {
    const int lanes = static_cast<int>(std::min<uint64_t>(4, n - c));
    const v4f vi = vload(inv + c), vs = vload(scale + c);
    v4f a = vload(part + c);
    const uint8_t* p = row0 + E::kSize * c;
    for (uint64_t r = 0; r < nr; ++r, p += stride) {
      const v4f x = lanes == 4 ? E::load4(p) : E::partial(p, lanes);
      const v4f e = blockError(x, vi, vs);
      a += e * e;
    }
    std::memcpy(part + c, &a, 16);
  }
}

}  // namespace

const char* schemeName(int scheme) {
  static const char* names[kSchemes] = {"int8PerTensor", "int8PerChannel", "int4PerTensor", "int4PerChannel"};
  return scheme >= 0 && scheme < kSchemes ? names[scheme] : "unknown";
}
int schemeBits(int scheme) { return scheme < kInt4PerTensor ? 8 : 4; }
bool schemePerChannel(int scheme) { return scheme == kInt8PerChannel || scheme == kInt4PerChannel; }

std::string blockSchemeName(uint64_t blockSize) { return "int4Block" + std::to_string(blockSize); }

Result<uint64_t> checkBlockSize(double b) {
  if (!(b >= 1 && b <= static_cast<double>(kMaxBlockSize)) || std::floor(b) != b) {
    return makeError(ErrorCode::InvalidArgument, "the block size must be a whole number from 1 to " +
                                                     std::to_string(kMaxBlockSize) + " (weights per INT4 block)");
  }
  return static_cast<uint64_t>(b);
}

std::vector<uint64_t> blockSizes(const Options& options) {
  std::vector<uint64_t> out(std::begin(kDefaultBlockSizes), std::end(kDefaultBlockSizes));
  if (options.blockSize && std::find(out.begin(), out.end(), options.blockSize) == out.end()) out.push_back(options.blockSize);
  return out;
}

double sqnrDb(double signal, double noise) {
  if (noise <= 0) return std::numeric_limits<double>::infinity();
  return 10.0 * std::log10(signal / noise);
}

float symmetricScale(float absMax, int bits) {
  const float qmax = static_cast<float>((1 << (bits - 1)) - 1);
  return absMax / qmax;
}

double quantile(std::vector<double> v, double q) {
  if (v.empty()) return 0;
  std::sort(v.begin(), v.end());
  const double pos = q * static_cast<double>(v.size() - 1);
  const size_t lo = static_cast<size_t>(std::floor(pos));
  const size_t hi = std::min(lo + 1, v.size() - 1);
  return v[lo] + (pos - static_cast<double>(lo)) * (v[hi] - v[lo]);
}

// ---- LayerStatsBuilder -------------------------------------------------------------

static_assert(kPartAccumulators == kAccs, "a part's sums per channel are pass 2's accumulators");

struct LayerStatsBuilder::State {
  ChannelLayout L;
  Options options;
  uint64_t C = 0, N = 0, CC = 0, CP = 0;
  bool rowMode = false;
  int passes = 2;
  int done = 0;  // passes ended so far
  // A part (createPart): output channels [first, first + C) of a layer of layout `whole`
  // (N elements from element first * L.inner); L is those channels' own layout
  // {1, 1, C, inner}. A whole builder: first 0, whole == L.
  bool isPart = false, taken = false;
  uint64_t first = 0;
  ChannelLayout whole;
  uint64_t wholeN = 0;
  LayerStats S;
  // pass 1
  std::vector<float> mn, mx, ps;
  std::vector<double> sum;
  uint64_t nonFinite = 0;
  // pass 2 and 3
  std::vector<Pass2Params> P;
  std::vector<float> rowMean, rowInv, rowScale, part;  // row mode, [outer][...][CP]
  std::vector<uint32_t> sub;
  Hist hist{};
  std::vector<double> acc;
  std::vector<uint8_t> redo;
  // block-wise INT4, one per block size: block absMax, [ch][nb] in run mode and
  // [outer][nb][channels] in row mode (pass 1), then the noise per channel (pass 2)
  struct Blocks {
    uint64_t B = 0, nb = 0;
    int from = -1;  // the largest smaller size dividing B: its block absMax give these (pass 1 skips this one)
    std::vector<float> amax;
    std::vector<double> noise;
    std::vector<float> part;  // row mode, pass 2: the current block's float sums per channel [outer][CP] + 4
  };
  std::vector<Blocks> blocks;
  int fused1 = -1;  // the block size whose pass-1 absMax the min/max kernels give (the smallest swept one)
  std::vector<float> blockInv, blockScale;    // row mode: one block row's parameters [channels]
  std::vector<float> blockInv2, blockScale2;  // row mode: the second size's, when two are swept together
  template <class E>
  void feedAll(int pass, const uint8_t* values, uint64_t first, uint64_t count);
  template <class E>
  void feedBlocks(int pass, const uint8_t* values, uint64_t first, uint64_t count);
  template <class E>
  void blocksRun(int pass, const uint8_t* p, uint64_t inner, uint64_t k0, uint64_t ch, int skip);
  void deriveBlockMax();
  PassExtremes ownExtremes() const;
  Error summarizePass1(const PassExtremes& x);
  void preparePass2();
  std::vector<uint32_t> histogramCounts() const;

  RowArrays rowArrays(uint64_t o, uint64_t cb) {
    return RowArrays{rowMean.data() + o * CP + cb, rowInv.data() + o * kSchemes * CP + cb,
                     rowScale.data() + o * kSchemes * CP + cb, part.data() + o * kAccs * CP + cb, CP};
  }
  // Row mode, after rows [.., end) of outer block o: where a block of k ends there (or the
  // channels' rows do), its float sums go into the double ones. Where the ends fall
  // depends on the rows only, not on how the tensor is split into pieces.
  void flushBlock(Blocks& k, uint64_t o, uint64_t cb, uint64_t w, uint64_t end) {
    if ((end - o * L.rows) % k.B != 0 && end != (o + 1) * L.rows) return;
    for (uint64_t c = 0; c < w; ++c) {
      k.noise[o * CC + cb + c] += k.part[o * CP + cb + c];
      k.part[o * CP + cb + c] = 0;
    }
  }
  // Run mode: whether pass 2 sweeps the two block sizes together (pass2Blocks) over a run
  // starting at reduction element k0 (RunBlocks' conditions).
  bool pairRun(uint64_t k0) const {
    return blocks.size() == 2 && k0 % 4 == 0 && blocks[0].B % 4 == 0 && blocks[1].B % blocks[0].B == 0 &&
           blocks[1].B <= 4 * kFlush;
  }
  // Row mode: pass 1's float partial sums of channels [cc, cc + w) of all outer blocks'
  // flat index (o * CC + cb) into the double ones.
  void flushSums(uint64_t cc, uint64_t w) {
    for (uint64_t c = cc; c < cc + w; ++c) {
      sum[c] += ps[c];
      ps[c] = 0;
    }
  }
  void flushRow(uint64_t o, uint64_t cb, uint64_t w) {
    for (uint64_t cc = cb; cc < cb + w; ++cc)
      for (int a = 0; a < kAccs; ++a) {
        float& v = part[o * kAccs * CP + a * CP + cc];
        acc[(o * CC + cc) * kAccs + a] += v;
        v = 0;
      }
  }
};

LayerStatsBuilder::LayerStatsBuilder() = default;
LayerStatsBuilder::~LayerStatsBuilder() = default;
LayerStatsBuilder::LayerStatsBuilder(LayerStatsBuilder&&) noexcept = default;
LayerStatsBuilder& LayerStatsBuilder::operator=(LayerStatsBuilder&&) noexcept = default;

Result<LayerStatsBuilder> LayerStatsBuilder::create(const ChannelLayout& L, const Options& options) {
  return make(L, options, true);
}

Result<LayerStatsBuilder> LayerStatsBuilder::make(const ChannelLayout& L, const Options& options, bool sweeps) {
  if (options.histogramBins < 1 || options.histogramBins > (1 << 20)) {
    return makeError(ErrorCode::InvalidArgument, "histogram bins must be between 1 and 1048576");
  }
  if (options.blockSize > kMaxBlockSize) {
    return makeError(ErrorCode::InvalidArgument, "the block size must be at most " + std::to_string(kMaxBlockSize));
  }
  if (L.channelCount() == 0 || L.elementCount() == 0) return makeError(ErrorCode::Unsupported, "the weight tensor is empty");
  LayerStatsBuilder b;
  b.st_ = std::make_unique<State>();
  State& t = *b.st_;
  t.L = L;
  t.options = options;
  t.C = L.channelCount();
  t.N = L.elementCount();
  t.CC = L.channels;
  t.CP = (t.CC + 3) & ~uint64_t{3};
  t.rowMode = L.inner == 1;
  t.whole = L;
  t.wholeN = t.N;
  t.S.channels = t.C;
  t.S.elementsPerChannel = t.N / t.C;
  t.mn.assign(t.C, std::numeric_limits<float>::infinity());
  t.mx.assign(t.C, -std::numeric_limits<float>::infinity());
  t.sum.assign(t.C, 0.0);
  if (t.rowMode) t.ps.assign(t.C, 0.0f);
  const uint64_t E = t.N / t.C;  // reduction elements per channel
  for (uint64_t B : blockSizes(options)) {
    State::Blocks k;
    k.B = B;
    k.nb = (E + B - 1) / B;
    if (sweeps) k.amax.assign(t.C * k.nb, 0.0f);
    t.blocks.push_back(std::move(k));
  }
  // A block of 128 is 4 blocks of 32: its absMax is theirs, no sweep needed.
  for (State::Blocks& k : t.blocks) {
    for (size_t j = 0; j < t.blocks.size(); ++j) {
      const State::Blocks& s = t.blocks[j];
      if (s.B < k.B && k.B % s.B == 0 && (k.from < 0 || s.B > t.blocks[k.from].B)) k.from = static_cast<int>(j);
    }
  }
  for (size_t j = 0; j < t.blocks.size(); ++j) {
    if (t.blocks[j].from < 0 && (t.fused1 < 0 || t.blocks[j].B < t.blocks[t.fused1].B)) t.fused1 = static_cast<int>(j);
  }
  if (t.rowMode) {
    t.blockInv.assign(t.CP, 0.0f);
    t.blockScale.assign(t.CP, 0.0f);
    t.blockInv2.assign(t.CP, 0.0f);
    t.blockScale2.assign(t.CP, 0.0f);
  }
  return b;
}

Error checkSplittable(const ChannelLayout& L) {
  if (L.channelCount() == 0 || L.elementCount() == 0) return makeError(ErrorCode::Unsupported, "the weight tensor is empty");
  if (L.rows != 1)
    return makeError(ErrorCode::Unsupported, "a layout whose output channels are strided in memory (rows " +
                                                 std::to_string(L.rows) + " > 1) is not computed in parts");
  if (L.inner == 1)
    return makeError(ErrorCode::Unsupported,
                     "a layout of one element per output channel (inner 1, read as rows) is not computed in parts");
  return {};
}

std::vector<uint64_t> splitChannels(uint64_t channels, uint64_t parts) {
  const uint64_t k = std::max<uint64_t>(1, std::min(parts, channels));
  std::vector<uint64_t> cuts(k + 1);
  for (uint64_t i = 0; i <= k; ++i) cuts[i] = i * (channels / k) + std::min(i, channels % k);  // the first ones one more
  return cuts;
}

namespace {

// The parts' channel ranges [first, end), sorted by first: ok when they cover [0, C)
// exactly once, else an InvalidArgument error naming the first gap or overlap.
Error checkCover(uint64_t C, const std::vector<std::pair<uint64_t, uint64_t>>& sorted) {
  auto range = [](uint64_t a, uint64_t b) { return "[" + std::to_string(a) + ", " + std::to_string(b) + ")"; };
  if (sorted.empty()) return makeError(ErrorCode::InvalidArgument, "no parts of the layer were given");
  uint64_t at = 0;
  for (const auto& [a, b] : sorted) {
    if (a >= b) return makeError(ErrorCode::InvalidArgument, "a part holds no output channels: " + range(a, b));
    if (a < at)
      return makeError(ErrorCode::InvalidArgument, "parts overlap: output channels " + range(a, b) +
                                                       " and a part before them reaching " + std::to_string(at));
    if (a > at) return makeError(ErrorCode::InvalidArgument, "output channels " + range(at, a) + " are in no part");
    at = b;
  }
  if (at != C)
    return makeError(ErrorCode::InvalidArgument,
                     at < C ? "output channels " + range(at, C) + " are in no part"
                            : "parts reach output channel " + std::to_string(at) + " of a layer of " + std::to_string(C));
  return {};
}

}  // namespace

Result<LayerStatsBuilder> LayerStatsBuilder::createPart(const ChannelLayout& L, const Options& options, uint64_t firstChannel,
                                                        uint64_t endChannel) {
  if (Error e = checkSplittable(L); !e.ok()) return e;
  if (firstChannel >= endChannel || endChannel > L.channelCount())
    return makeError(ErrorCode::InvalidArgument, "output channels [" + std::to_string(firstChannel) + ", " +
                                                     std::to_string(endChannel) + ") are not a part of a layer of " +
                                                     std::to_string(L.channelCount()));
  auto b = make(ChannelLayout{1, 1, endChannel - firstChannel, L.inner}, options, true);
  if (!b.ok()) return b.error();
  State& t = *b->st_;
  t.isPart = true;
  t.first = firstChannel;
  t.whole = L;
  t.wholeN = L.elementCount();
  return b;
}

uint64_t LayerStatsBuilder::unitElements() const { return st_->rowMode ? st_->CC : st_->L.inner; }
int LayerStatsBuilder::passes() const { return st_->passes; }
uint64_t LayerStatsBuilder::firstElement() const { return st_->first * st_->L.inner; }
uint64_t LayerStatsBuilder::elementCount() const { return st_->N; }
bool LayerStatsBuilder::isPart() const { return st_->isPart; }

// The statistics' passes over a piece of stored elements of type E (checked by feed).
template <class E>
QL_HOT void LayerStatsBuilder::State::feedAll(int pass, const uint8_t* values, uint64_t first, uint64_t count) {
  State& t = *this;
  const ChannelLayout& L = t.L;
  if (!t.rowMode) {
    const uint64_t inner = L.inner;
    for (uint64_t j = first / inner, end = (first + count) / inner; j < end; ++j) {
      const uint64_t c = j % L.channels, o = j / (L.rows * L.channels), ch = o * L.channels + c;
      const uint8_t* p = values + E::kSize * ((j * inner) - first);
      const uint64_t k0 = (j / L.channels) % L.rows * inner;  // the run's first reduction element
      int skip = -1;                                          // a block size whose pass-1 sweep pass1RunBlocks did
      if (pass == 1) {
        const int f = t.fused1;
        if (f >= 0 && k0 % 4 == 0 && t.blocks[f].B % 4 == 0) {
          Blocks& k = t.blocks[f];
          hot<&pass1RunBlocks<E>>()(p, inner, k0, k.B, &k.amax[ch * k.nb], &t.mn[ch], &t.mx[ch], &t.sum[ch]);
          skip = f;
        } else {
          hot<&pass1Run<E>>()(p, inner, &t.mn[ch], &t.mx[ch], &t.sum[ch]);
        }
      } else if (pass == 2 && t.pairRun(k0)) {
        Blocks &a = t.blocks[0], &b = t.blocks[1];  // the usual pair (32 and 128), swept together after the other schemes
        const RunBlocks K{k0, a.B, b.B, &a.amax[ch * a.nb], &b.amax[ch * b.nb], &a.noise[ch], &b.noise[ch]};
        pass2Run<E>(p, inner, t.P[ch], &t.hist, &t.acc[ch * kAccs], &K);
        continue;
      } else if (pass == 2) {
        pass2Run<E>(p, inner, t.P[ch], &t.hist, &t.acc[ch * kAccs]);
      } else if (t.redo[ch]) {
        hot<&pass2RunWide<E>>()(p, inner, t.P[ch], &t.acc[ch * kAccs]);
      } else {
        continue;
      }
      // The block sweep of the same run while it is in L1 (each channel's runs still in order).
      t.blocksRun<E>(pass, p, inner, k0, ch, skip);
    }
  } else {
    // Rows [R0, R1) of the [outer * rows] x channels matrix, per outer block, in
    // column blocks of kBlock channels that keep their accumulators in L1.
    const uint64_t R0 = first / t.CC, R1 = (first + count) / t.CC;
    for (uint64_t o = R0 / L.rows; o * L.rows < R1; ++o) {
      const uint64_t ra = std::max(R0, o * L.rows), rb = std::min(R1, (o + 1) * L.rows);
      for (uint64_t cb = 0; cb < t.CC; cb += kBlock) {
        const uint64_t w = std::min<uint64_t>(kBlock, t.CC - cb);
        const uint64_t base = o * t.CC + cb;
        const RowArrays A = pass == 1 ? RowArrays{} : t.rowArrays(o, cb);
        uint64_t cachedK = ~uint64_t{0}, cachedM = ~uint64_t{0};  // the blocks whose parameters blockInv(2) hold
        // Tiles of kFlush rows counted from the outer block's first row: the float partial
        // sums go into the double ones where a tile ends (or the block's rows do), so a
        // piece that ends inside a tile leaves them for the next piece. The sums are then
        // the same, bit for bit, whatever pieces the rows arrive in (in order): a 5.6 MB
        // weight read whole or in 4 MB pieces, in a worker or not.
        for (uint64_t r = ra; r < rb;) {
          const uint64_t at = r - o * L.rows;
          const uint64_t nr = std::min<uint64_t>(kFlush - at % kFlush, rb - r);
          const bool flush = (at + nr) % kFlush == 0 || r + nr == (o + 1) * L.rows;
          const uint8_t* row = values + E::kSize * (r * t.CC + cb - first);
          if (pass == 1) {
            // Tiles cut where a block of the fused size ends, so that each lies in one block.
            Blocks* k = t.fused1 >= 0 ? &t.blocks[t.fused1] : nullptr;
            for (uint64_t i = 0; i < nr;) {
              uint64_t len = std::min(kTile, nr - i);
              float* amax = nullptr;
              if (k) {
                const uint64_t b = (r + i - o * L.rows) / k->B;
                len = std::min(len, o * L.rows + (b + 1) * k->B - (r + i));
                amax = &k->amax[(o * k->nb + b) * t.CC + cb];
              }
              hot<&pass1Rows<E>>()(row + E::kSize * t.CC * i, E::kSize * t.CC, len, w, t.mn.data() + base, t.mx.data() + base,
                                   t.ps.data() + base, amax);
              i += len;
            }
            if (flush) t.flushSums(base, w);
          } else if (pass == 2 && t.blocks.size() == 2) {
            // The usual pair of block sizes (32 and 128) with the other schemes: tiles cut
            // where a block of either size ends, whose float sums then go into the double ones.
            Blocks &k = t.blocks[0], &m = t.blocks[1];
            const RowBlocks K{t.blockInv.data(),    t.blockScale.data(),    t.blockInv2.data(),
                              t.blockScale2.data(), &k.part[o * t.CP + cb], &m.part[o * t.CP + cb]};
            for (uint64_t i = 0; i < nr;) {
              const uint64_t at = r + i - o * L.rows, bk = at / k.B, bm = at / m.B;
              const uint64_t len = std::min({kTile, nr - i, (bk + 1) * k.B - at, (bm + 1) * m.B - at});
              if (bk != cachedK) {
                const uint64_t from = (o * k.nb + bk) * t.CC + cb;
                for (uint64_t c = 0; c < w; ++c) blockParams(k.amax[from + c], &t.blockInv[c], &t.blockScale[c]);
                cachedK = bk;
              }
              if (bm != cachedM) {
                const uint64_t from = (o * m.nb + bm) * t.CC + cb;
                for (uint64_t c = 0; c < w; ++c) blockParams(m.amax[from + c], &t.blockInv2[c], &t.blockScale2[c]);
                cachedM = bm;
              }
              hot<&pass2Rows<E, true>>()(row + E::kSize * t.CC * i, E::kSize * t.CC, len, w, A, K, &t.hist);
              i += len;
              t.flushBlock(k, o, cb, w, r + i);
              t.flushBlock(m, o, cb, w, r + i);
            }
            if (flush) t.flushRow(o, cb, w);
          } else if (pass == 2) {
            for (uint64_t i = 0; i < nr; i += kTile)
              hot<&pass2Rows<E, false>>()(row + E::kSize * t.CC * i, E::kSize * t.CC, std::min(kTile, nr - i), w, A, RowBlocks{},
                                          &t.hist);
            if (flush) t.flushRow(o, cb, w);
          } else {
            for (uint64_t i = 0; i < nr; ++i)
              hot<&pass2RowWide<E>>()(row + E::kSize * t.CC * i, w, A, t.S.mean.data() + base, t.acc.data() + base * kAccs);
          }
          r += nr;
        }
      }
    }
  }
  if (t.rowMode) t.feedBlocks<E>(pass, values, first, count);
  if (pass == 1) {
    // NaN or infinite weights poison the sums (float16 ones, read as F16Finite, show as
    // magnitudes of 2^16 or more in the minima and maxima); count them where it happens.
    bool suspicious = false;
    for (double v : t.sum) suspicious = suspicious || !std::isfinite(v);
    for (float v : t.ps) suspicious = suspicious || !std::isfinite(v);  // row mode: not yet flushed
    if (E::kHidesNonFinite)
      for (uint64_t c = 0; c < t.C && !suspicious; ++c) suspicious = t.mn[c] <= -65536.0f || t.mx[c] >= 65536.0f;
    if (suspicious) {
      for (uint64_t i = 0; i < count; ++i) t.nonFinite += !std::isfinite(E::Exact::load1(values + E::kSize * i));
    }
  }
}

Error LayerStatsBuilder::feed(int pass, const uint8_t* values, uint64_t first, uint64_t count, Storage storage) {
  State& t = *st_;
  const uint64_t unit = unitElements();
  if (pass != t.done + 1 || pass > t.passes) return makeError(ErrorCode::InvalidArgument, "statistics pass out of order");
  const uint64_t at = t.first * t.L.inner;  // the first element fed (a part's)
  if (t.isPart && (first < at || first - at > t.N || count > t.N - (first - at))) {
    return makeError(ErrorCode::InvalidArgument,
                     "a piece of " + std::to_string(count) + " elements from element " + std::to_string(first) +
                         " lies outside this part's elements [" + std::to_string(at) + ", " + std::to_string(at + t.N) +
                         ") (output channels [" + std::to_string(t.first) + ", " + std::to_string(t.first + t.C) + "))");
  }
  first -= at;
  if (first % unit || count % unit || first > t.N || count > t.N - first) {
    return makeError(ErrorCode::InvalidArgument,
                     "a piece of the weight tensor must hold whole runs of " + std::to_string(unit) + " values");
  }
  // Through a table, so that the build's optimizer keeps each element type's passes a
  // function of its own (one large function holding all three ran the float32 loops slower).
  using Feed = void (State::*)(int, const uint8_t*, uint64_t, uint64_t);
  // Float16 is read as F16Finite in every pass (pass 1 finds non-finite halves by magnitude).
  static constexpr Feed kFeed[3] = {&State::feedAll<F32>, &State::feedAll<F16Finite>, &State::feedAll<BF16>};
  (t.*kFeed[static_cast<int>(storage) % 3])(pass, values, first, count);
  return {};
}

// Block-wise INT4 over one run of channel ch (run mode), its reduction elements k0,
// k0 + 1, ... Pass 3 (a channel redone) squares in double.
template <class E>
inline void LayerStatsBuilder::State::blocksRun(int pass, const uint8_t* p, uint64_t inner, uint64_t k0, uint64_t ch, int skip) {
  if (pass == 3) {
    for (Blocks& k : blocks) hot<&blockRun2Wide<E>>()(p, inner, k0, k.B, &k.amax[ch * k.nb], &k.noise[ch]);
    return;
  }
  for (Blocks& k : blocks) {
    if (pass == 1 && (k.from >= 0 || &k == &blocks[0] + skip)) continue;
    if (pass == 1)
      hot<&blockRun1<E>>()(p, inner, k0, k.B, &k.amax[ch * k.nb]);
    else
      hot<&blockRun2<E>>()(p, inner, k0, k.B, &k.amax[ch * k.nb], &k.noise[ch]);
  }
}

// Block-wise INT4 over a piece (whole rows, row mode), in its own sweep so that the other
// schemes' loops stay as they are. Pass 3 (every channel redone) squares in double.
template <class E>
QL_HOT void LayerStatsBuilder::State::feedBlocks(int pass, const uint8_t* values, uint64_t first, uint64_t count) {
  if (pass == 2 && blocks.size() == 2) return;  // the usual pair: swept with the other schemes (feedAll)
  // As the other schemes' row kernels: per outer block, column blocks of kBlock channels
  // whose parameters and sums stay in L1, rows within.
  const uint64_t R0 = first / CC, R1 = (first + count) / CC;
  for (uint64_t o = R0 / L.rows; o * L.rows < R1; ++o) {
    const uint64_t ra = std::max(R0, o * L.rows), rb = std::min(R1, (o + 1) * L.rows);
    for (uint64_t cb = 0; cb < CC; cb += kBlock) {
      const uint64_t w = std::min<uint64_t>(kBlock, CC - cb);
      for (Blocks& k : blocks) {
        if (pass == 1 && (k.from >= 0 || &k == &blocks[0] + fused1)) continue;  // derived, or swept by pass1Rows
        uint64_t cached = ~uint64_t{0};                                         // the block whose parameters blockInv holds
        for (uint64_t r = ra; r < rb;) {
          const uint8_t* row = values + E::kSize * (r * CC + cb - first);
          const uint64_t b = (r - o * L.rows) / k.B, at = (o * k.nb + b) * CC + cb;
          const uint64_t nr = std::min(rb, o * L.rows + (b + 1) * k.B) - r;  // the rows of block b
          r += nr;
          if (pass == 1) {
            for (uint64_t i = 0; i < nr; i += kTile)
              hot<&blockRows1<E>>()(row + E::kSize * CC * i, E::kSize * CC, std::min(kTile, nr - i), w, &k.amax[at]);
            continue;
          }
          if (b != cached) {  // lanes past w keep stale finite values: they see x = 0
            for (uint64_t c = 0; c < w; ++c) blockParams(k.amax[at + c], &blockInv[c], &blockScale[c]);
            cached = b;
          }
          for (uint64_t i = 0; i < nr; i += kTile) {
            const uint8_t* tile = row + E::kSize * CC * i;
            if (pass == 2)
              hot<&blockRows2<E>>()(tile, E::kSize * CC, std::min(kTile, nr - i), w, blockInv.data(), blockScale.data(),
                                    &k.part[o * CP + cb]);
            else
              hot<&blockRows2Wide<E>>()(tile, E::kSize * CC, std::min(kTile, nr - i), w, blockInv.data(), blockScale.data(),
                                        &k.noise[o * CC + cb]);
          }
          if (pass == 2) flushBlock(k, o, cb, w, r);
        }
      }
    }
  }
}

// The absMax of the blocks of a size that a smaller size divides: block b is blocks
// b*r .. b*r + r - 1 of the smaller size (fewer at a channel's end).
void LayerStatsBuilder::State::deriveBlockMax() {
  std::vector<Blocks*> bySize;  // smaller sizes first: a source may itself be derived
  for (Blocks& k : blocks) bySize.push_back(&k);
  std::sort(bySize.begin(), bySize.end(), [](const Blocks* a, const Blocks* b) { return a->B < b->B; });
  for (Blocks* kp : bySize) {
    Blocks& k = *kp;
    if (k.from < 0) continue;
    const Blocks& s = blocks[k.from];
    const uint64_t r = k.B / s.B;
    const uint64_t lines = rowMode ? L.outer : C, width = rowMode ? CC : 1;  // [line][block][width]
    for (uint64_t o = 0; o < lines; ++o)
      for (uint64_t b = 0; b < k.nb; ++b)
        for (uint64_t w = 0; w < width; ++w) {
          float m = 0;
          for (uint64_t j = b * r; j < std::min((b + 1) * r, s.nb); ++j) m = std::max(m, s.amax[(o * s.nb + j) * width + w]);
          k.amax[(o * k.nb + b) * width + w] = m;
        }
  }
}

PassExtremes LayerStatsBuilder::State::ownExtremes() const {
  PassExtremes x;
  x.firstChannel = first;
  x.endChannel = first + C;
  x.min = *std::min_element(mn.begin(), mn.end());
  x.max = *std::max_element(mx.begin(), mx.end());
  x.nonFinite = nonFinite;
  return x;
}

// The end of pass 1 given the whole tensor's extremes `x` (a whole builder's own, a
// part's from the caller, a merge's from its parts' channels): the refusals, the
// per-channel values of pass 1 and the tensor's min, max, absMax and histogram range.
Error LayerStatsBuilder::State::summarizePass1(const PassExtremes& x) {
  if (x.nonFinite) {
    return makeError(ErrorCode::Unsupported, std::to_string(x.nonFinite) + " of " + std::to_string(wholeN) +
                                                 " weights are NaN or infinite; statistics are not defined");
  }
  const double perChannel = static_cast<double>(S.elementsPerChannel);
  S.min = mn;
  S.max = mx;
  S.mean.resize(C);
  S.absMax.resize(C);
  S.range.resize(C);
  S.tensorMin = x.min;
  S.tensorMax = x.max;
  for (uint64_t c = 0; c < C; ++c) {
    S.mean[c] = sum[c] / perChannel;
    S.absMax[c] = std::max(std::fabs(mn[c]), std::fabs(mx[c]));
    S.range[c] = mx[c] - mn[c];
  }
  S.tensorAbsMax = std::max(std::fabs(S.tensorMin), std::fabs(S.tensorMax));
  if (S.tensorAbsMax > 1e15f) {
    return makeError(ErrorCode::Unsupported,
                     "weights reach " + std::to_string(S.tensorAbsMax) +
                         " in magnitude; QuantLens accumulates in float32 and does not analyse weights above 1e15");
  }
  // histogram over [tensor min, tensor max], kSubHistograms sub-histograms
  const int bins = options.histogramBins;
  S.histMin = S.tensorMin;
  S.histMax = S.tensorMax;
  sub.assign(kSubHistograms * static_cast<size_t>(bins), 0);
  hist.lo = S.histMin;
  const float width = S.histMax - S.histMin;
  hist.hs = width > 0 ? static_cast<float>(bins) / width : 0.0f;
  if (!std::isfinite(hist.hs)) hist.hs = 0.0f;
  hist.last = bins - 1;
  hist.bins = bins;
  hist.counts = sub.data();
  return {};
}

// Pass 2's parameters and sums, once pass 1 is summarized.
void LayerStatsBuilder::State::preparePass2() {
  // quantization parameters per channel and scheme
  P.resize(C);
  for (uint64_t c = 0; c < C; ++c) {
    Pass2Params& p = P[c];
    p.mean = static_cast<float>(S.mean[c]);
    p.meanD = S.mean[c];
    for (int s = 0; s < kSchemes; ++s) {
      const float am = schemePerChannel(s) ? S.absMax[c] : S.tensorAbsMax;
      const float sc = symmetricScale(am, schemeBits(s));
      float inv = sc > 0 ? 1.0f / sc : 0.0f;
      if (!std::isfinite(inv)) inv = 0.0f;
      p.inv[s] = inv;
      p.scale[s] = inv == 0.0f ? 0.0f : sc;
    }
  }
  if (rowMode) {
    const uint64_t outer = L.outer;
    rowMean.assign(outer * CP, 0.0f);
    rowInv.assign(outer * kSchemes * CP, 0.0f);
    rowScale.assign(outer * kSchemes * CP, 0.0f);
    part.assign(outer * kAccs * CP, 0.0f);
    for (uint64_t o = 0; o < outer; ++o)
      for (uint64_t c = 0; c < CC; ++c) {
        const Pass2Params& p = P[o * CC + c];
        rowMean[o * CP + c] = p.mean;
        for (int s = 0; s < kSchemes; ++s) {
          rowInv[(o * kSchemes + s) * CP + c] = p.inv[s];
          rowScale[(o * kSchemes + s) * CP + c] = p.scale[s];
        }
      }
  }
  acc.assign(C * kAccs, 0.0);
  deriveBlockMax();
  for (Blocks& k : blocks) {
    k.noise.assign(C + 4, 0.0);  // + 4: whole vectors in row mode
    if (rowMode) k.part.assign(L.outer * CP + 4, 0.0f);
  }
  mn.clear();
  mx.clear();
  ps.clear();
}

// The histogram's counts: its sub-histograms added.
std::vector<uint32_t> LayerStatsBuilder::State::histogramCounts() const {
  const int bins = options.histogramBins;
  std::vector<uint32_t> h(bins, 0);
  for (int lane = 0; lane < kSubHistograms; ++lane)
    for (int b = 0; b < bins; ++b) h[b] += sub[lane * bins + b];
  return h;
}

Error LayerStatsBuilder::endPass(int pass, const PassExtremes* whole) {
  State& t = *st_;
  if (pass != t.done + 1 || pass > t.passes) return makeError(ErrorCode::InvalidArgument, "statistics pass out of order");
  if (whole && (pass != 1 || !t.isPart))
    return makeError(ErrorCode::InvalidArgument, "only a part's pass 1 ends with the whole tensor's extremes");
  if (pass == 1 && t.isPart) {
    if (!whole)
      return makeError(ErrorCode::InvalidArgument,
                       "a part's pass 1 ends with the whole tensor's extremes (LayerStatsBuilder::combineExtremes)");
    if (whole->firstChannel != 0 || whole->endChannel != t.whole.channelCount())
      return makeError(ErrorCode::InvalidArgument, "the extremes given for pass 1 are of output channels [" +
                                                       std::to_string(whole->firstChannel) + ", " +
                                                       std::to_string(whole->endChannel) + "), not of the whole layer's " +
                                                       std::to_string(t.whole.channelCount()));
  }
  t.done = pass;
  const uint64_t C = t.C;
  if (pass == 1) {
    // Rows fed in order leave no partial sum here (each went in where its tile ended);
    // pieces fed out of order may.
    if (t.rowMode) t.flushSums(0, t.ps.size());
    Error e = t.summarizePass1(t.isPart ? *whole : t.ownExtremes());
    if (!e.ok()) return e;
    t.preparePass2();
    return {};
  }
  if (pass == 2) {
    // Rows fed in order leave nothing here (each block's sums went in at its end); pieces
    // fed out of order may.
    if (t.rowMode) {
      for (State::Blocks& k : t.blocks)
        for (uint64_t o = 0; o < t.L.outer; ++o)
          for (uint64_t c = 0; c < t.CC; ++c) k.noise[o * t.CC + c] += k.part[o * t.CP + c];
      for (uint64_t o = 0; o < t.L.outer; ++o) t.flushRow(o, 0, t.CC);
    }
    // Channels whose sums may have lost underflowed squares get a third pass in double
    // (the block-wise noise too: its squares are summed in float within a block).
    t.redo.assign(C, 0);
    bool any = false;
    for (uint64_t ch = 0; ch < C; ++ch) {
      const double* a = &t.acc[ch * kAccs];
      bool tiny = *std::min_element(a, a + kAccs) < kRedoBelow;
      for (const State::Blocks& k : t.blocks) tiny = tiny || k.noise[ch] < kRedoBelow;
      t.redo[ch] = tiny;
      any = any || tiny;
    }
    if (any && t.rowMode) std::fill(t.redo.begin(), t.redo.end(), 1);  // the row kernel does whole rows
    for (uint64_t ch = 0; ch < C; ++ch) {
      if (!t.redo[ch]) continue;
      std::fill(&t.acc[ch * kAccs], &t.acc[ch * kAccs] + kAccs, 0.0);
      for (State::Blocks& k : t.blocks) k.noise[ch] = 0;
    }
    t.passes = any ? 3 : 2;
    for (State::Blocks& k : t.blocks) {
      k.part = {};
      if (!any) k.amax = {};
    }
  }
  if (pass == 3)
    for (State::Blocks& k : t.blocks) k.amax = {};
  return {};
}

Result<LayerStats> LayerStatsBuilder::finish() {
  State& t = *st_;
  if (t.isPart) return makeError(ErrorCode::InvalidArgument, "a part's results are taken (takePart) and merged, not finished");
  if (t.done != t.passes) return makeError(ErrorCode::InvalidArgument, "statistics finished before their last pass");
  LayerStats& S = t.S;
  const uint64_t C = t.C;
  const double perChannel = static_cast<double>(S.elementsPerChannel);
  double total = 0;
  for (double v : t.sum) total += v;
  S.tensorMean = total / static_cast<double>(t.N);
  S.std.resize(C);
  for (int s = 0; s < kSchemes; ++s) S.channelSqnr[s].resize(C);
  double sig = 0, dev = 0;
  std::array<double, kSchemes> noise{};
  for (uint64_t c = 0; c < C; ++c) {
    const double* a = &t.acc[c * kAccs];
    S.std[c] = std::sqrt(a[kDev] / perChannel);
    sig += a[kSig];
    const double dm = S.mean[c] - S.tensorMean;
    dev += a[kDev] + perChannel * dm * dm;
    for (int s = 0; s < kSchemes; ++s) {
      noise[s] += a[kNoise0 + s];
      S.channelSqnr[s][c] = static_cast<float>(sqnrDb(a[kSig], a[kNoise0 + s]));
    }
  }
  S.tensorStd = std::sqrt(dev / static_cast<double>(t.N));
  for (int s = 0; s < kSchemes; ++s) S.sqnr[s] = sqnrDb(sig, noise[s]);
  for (const State::Blocks& k : t.blocks) {
    BlockSqnr out;
    out.blockSize = k.B;
    out.scheme = blockSchemeName(k.B);
    out.channelSqnr.resize(C);
    double total = 0;
    for (uint64_t c = 0; c < C; ++c) {
      total += k.noise[c];
      out.channelSqnr[c] = static_cast<float>(sqnrDb(t.acc[c * kAccs + kSig], k.noise[c]));
    }
    out.sqnr = sqnrDb(sig, total);
    S.blockSqnr.push_back(std::move(out));
  }

  S.histogram = t.histogramCounts();

  // AIMET's outlier rule, on the channels' ranges.
  RelativeOutliers flags = flagRelativeOutliers(S.range);
  S.q1 = flags.q1;
  S.q3 = flags.q3;
  S.outlierThreshold = flags.threshold;
  S.outliers = std::move(flags.flagged);
  S.relativeRange = std::move(flags.relative);
  return std::move(S);
}

Result<PassExtremes> LayerStatsBuilder::extremes() const {
  const State& t = *st_;
  if (!t.isPart || t.done != 0)
    return makeError(ErrorCode::InvalidArgument, "a part's extremes are taken after pass 1 is fed and before it ends");
  return t.ownExtremes();
}

Result<PassExtremes> LayerStatsBuilder::combineExtremes(const ChannelLayout& L, std::vector<PassExtremes> parts) {
  std::stable_sort(parts.begin(), parts.end(),
                   [](const PassExtremes& a, const PassExtremes& b) { return a.firstChannel < b.firstChannel; });
  std::vector<std::pair<uint64_t, uint64_t>> ranges;
  for (const PassExtremes& x : parts) ranges.emplace_back(x.firstChannel, x.endChannel);
  if (Error e = checkCover(L.channelCount(), ranges); !e.ok()) return e;
  // In channel order, a later part's extreme only where strictly beyond: the first such,
  // as std::min_element and std::max_element over every channel pick (-0 before 0).
  PassExtremes w = parts[0];
  for (size_t i = 1; i < parts.size(); ++i) {
    if (parts[i].min < w.min) w.min = parts[i].min;
    if (w.max < parts[i].max) w.max = parts[i].max;
    w.nonFinite += parts[i].nonFinite;
  }
  w.firstChannel = 0;
  w.endChannel = L.channelCount();
  return w;
}

Result<LayerStatsPart> LayerStatsBuilder::takePart() {
  State& t = *st_;
  if (!t.isPart) return makeError(ErrorCode::InvalidArgument, "only a part's results are taken; a whole layer's are finished");
  if (t.taken) return makeError(ErrorCode::InvalidArgument, "a part's results were taken already");
  if (t.done != t.passes) return makeError(ErrorCode::InvalidArgument, "a part's results are taken once its last pass has ended");
  t.taken = true;
  LayerStatsPart p;
  p.layout = t.whole;
  p.options = t.options;
  p.firstChannel = t.first;
  p.endChannel = t.first + t.C;
  p.tensorMin = t.S.tensorMin;
  p.tensorMax = t.S.tensorMax;
  p.min = std::move(t.S.min);
  p.max = std::move(t.S.max);
  p.sum = std::move(t.sum);
  p.acc = std::move(t.acc);
  for (const State::Blocks& k : t.blocks) p.blockNoise.insert(p.blockNoise.end(), k.noise.begin(), k.noise.begin() + t.C);
  p.histogram = t.histogramCounts();
  return p;
}

Result<LayerStats> LayerStatsBuilder::mergeParts(const ChannelLayout& L, const Options& options,
                                                 std::vector<LayerStatsPart> parts) {
  if (Error e = checkSplittable(L); !e.ok()) return e;
  auto b = make(L, options, false);
  if (!b.ok()) return b.error();
  State& t = *b->st_;
  std::stable_sort(parts.begin(), parts.end(),
                   [](const LayerStatsPart& a, const LayerStatsPart& b) { return a.firstChannel < b.firstChannel; });
  std::vector<std::pair<uint64_t, uint64_t>> ranges;
  for (const LayerStatsPart& p : parts) ranges.emplace_back(p.firstChannel, p.endChannel);
  if (Error e = checkCover(t.C, ranges); !e.ok()) return e;
  const size_t nk = t.blocks.size(), bins = static_cast<size_t>(options.histogramBins);
  for (const LayerStatsPart& p : parts) {
    const std::string which =
        "the part of output channels [" + std::to_string(p.firstChannel) + ", " + std::to_string(p.endChannel) + ")";
    const ChannelLayout& q = p.layout;
    if (q.outer != L.outer || q.rows != L.rows || q.channels != L.channels || q.inner != L.inner ||
        p.options.histogramBins != options.histogramBins || p.options.blockSize != options.blockSize)
      return makeError(ErrorCode::InvalidArgument, which + " is of another layer layout or other options");
    const uint64_t n = p.endChannel - p.firstChannel;
    if (p.min.size() != n || p.max.size() != n || p.sum.size() != n || p.acc.size() != n * kAccs ||
        p.blockNoise.size() != n * nk || p.histogram.size() != bins)
      return makeError(ErrorCode::InvalidArgument, which + " has arrays of the wrong sizes");
  }
  // Pass 1 over the parts' channels in order, summarized as a whole builder does.
  t.acc.assign(t.C * kAccs, 0.0);
  for (State::Blocks& k : t.blocks) k.noise.assign(t.C, 0.0);
  for (const LayerStatsPart& p : parts) {
    const uint64_t a = p.firstChannel, n = p.endChannel - a;
    std::copy(p.min.begin(), p.min.end(), t.mn.begin() + a);
    std::copy(p.max.begin(), p.max.end(), t.mx.begin() + a);
    std::copy(p.sum.begin(), p.sum.end(), t.sum.begin() + a);
    std::copy(p.acc.begin(), p.acc.end(), t.acc.begin() + a * kAccs);
    for (size_t j = 0; j < nk; ++j)
      std::copy(p.blockNoise.begin() + j * n, p.blockNoise.begin() + (j + 1) * n, t.blocks[j].noise.begin() + a);
  }
  if (Error e = t.summarizePass1(t.ownExtremes()); !e.ok()) return e;
  // Pass 2's per-tensor scales and histogram bins came from the extremes each part was given.
  for (const LayerStatsPart& p : parts) {
    if (std::memcmp(&p.tensorMin, &t.S.tensorMin, 4) != 0 || std::memcmp(&p.tensorMax, &t.S.tensorMax, 4) != 0)
      return makeError(ErrorCode::InvalidArgument,
                       "the part of output channels [" + std::to_string(p.firstChannel) + ", " + std::to_string(p.endChannel) +
                           ") ended pass 1 with extremes other than the whole tensor's (combineExtremes of every part's)");
  }
  // The histogram's counts in its first sub-histogram (finish adds them all).
  for (const LayerStatsPart& p : parts)
    for (size_t j = 0; j < bins; ++j) t.sub[j] += p.histogram[j];
  t.done = t.passes = 2;
  return b->finish();
}

Result<LayerStats> computeLayerStats(const uint8_t* values, const ChannelLayout& L, const Options& options) {
  auto b = LayerStatsBuilder::create(L, options);
  if (!b.ok()) return b.error();
  const uint64_t n = b->elementCount();
  for (int pass = 1; pass <= b->passes(); ++pass) {
    Error e = b->feed(pass, values, 0, n);
    if (e.ok()) e = b->endPass(pass);
    if (!e.ok()) return e;
  }
  return b->finish();
}

}  // namespace ql::stats
