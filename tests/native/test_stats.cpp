// Per-channel statistics and data-free SQNR against a naive, independent scalar
// implementation of the definitions in src/stats/stats.hpp (double where they say
// double, float32 where they say float32), on every layout the core produces.
#include <algorithm>
#include <array>
#include <catch2/catch.hpp>
#include <cmath>
#include <cstring>
#include <limits>
#include <random>
#include <string>
#include <vector>

#include "stats/stats.hpp"

using ql::ErrorCode;
using ql::stats::ChannelLayout;
using ql::stats::computeLayerStats;
using ql::stats::kSchemes;
using ql::stats::LayerStats;
using ql::stats::Options;

namespace {

constexpr double kInf = std::numeric_limits<double>::infinity();

// ---- the naive reference -----------------------------------------------------------

// Channel owning flat element i of a tensor laid out as [outer][rows][channels][inner].
uint64_t channelOf(uint64_t i, const ChannelLayout& L) {
  uint64_t t = i / L.inner;
  const uint64_t c = t % L.channels;
  t /= L.channels;
  const uint64_t o = t / L.rows;
  return o * L.channels + c;
}

int qmaxOf(int scheme) { return scheme == 0 || scheme == 1 ? 127 : 7; }
bool perChannel(int scheme) { return scheme == 1 || scheme == 3; }

enum class Rounding { HalfEven, HalfAway };

// q(x) exactly as the definition states it, in float32.
float refQuant(float x, float absMax, int qmaxInt, Rounding rounding = Rounding::HalfEven) {
  const float qmax = static_cast<float>(qmaxInt);
  const float s = absMax / qmax;
  const float inv = s > 0 ? 1.0f / s : 0.0f;
  if (inv == 0.0f || !std::isfinite(inv)) return 0.0f;
  const float y = x * inv;
  float r = rounding == Rounding::HalfEven ? std::nearbyint(y) : std::round(y);
  r = std::min(std::max(r, -qmax), qmax);
  return r * s;
}

double refSqnr(double sig, double noise) { return noise <= 0 ? kInf : 10.0 * std::log10(sig / noise); }

double refQuantile(std::vector<double> v, double q) {
  if (v.empty()) return 0;
  std::sort(v.begin(), v.end());
  const double pos = q * static_cast<double>(v.size() - 1);
  const double lo = std::floor(pos);
  const size_t i = static_cast<size_t>(lo);
  const size_t j = std::min(i + 1, v.size() - 1);
  return v[i] + (pos - lo) * (v[j] - v[i]);
}

struct Ref {
  std::vector<float> mn, mx, absMax, range;
  std::vector<double> mean, stdev, meanAbs;
  std::array<std::vector<double>, kSchemes> chSqnr;
  std::array<double, kSchemes> sqnr{};
  float tMin = 0, tMax = 0, tAbsMax = 0;
  double tMean = 0, tStd = 0, tMeanAbs = 0;
  std::vector<uint32_t> hist;
  std::vector<double> rel;
  double q1 = 0, q3 = 0, thr = 0;
  std::vector<uint32_t> outliers;
  // block-wise INT4, one per block size
  std::vector<uint64_t> blockSizes;
  std::vector<std::vector<double>> blockChSqnr;
  std::vector<double> blockSqnr;
};

// Block-wise INT4 as stats.hpp defines it, walked by coordinates: channel (o, c) takes
// its elements (r, i) in the order k = r * inner + i; block b holds k in [b*B, (b+1)*B);
// each block is fake-quantized to 4 bits with its own absMax; squares in double.
void referenceBlocks(Ref* R, const std::vector<float>& w, const ChannelLayout& L, const std::vector<uint64_t>& sizes) {
  const uint64_t E = L.rows * L.inner;
  for (uint64_t B : sizes) {
    std::vector<double> ch;
    double sigAll = 0, noiseAll = 0;
    for (uint64_t o = 0; o < L.outer; ++o)
      for (uint64_t c = 0; c < L.channels; ++c) {
        std::vector<float> x(E);  // the channel's reduction elements, in k order
        for (uint64_t r = 0; r < L.rows; ++r)
          for (uint64_t i = 0; i < L.inner; ++i) x[r * L.inner + i] = w[((o * L.rows + r) * L.channels + c) * L.inner + i];
        double sig = 0, noise = 0;
        for (uint64_t b0 = 0; b0 < E; b0 += B) {
          const uint64_t b1 = std::min(E, b0 + B);
          float am = 0;
          for (uint64_t k = b0; k < b1; ++k) am = std::max(am, std::fabs(x[k]));
          for (uint64_t k = b0; k < b1; ++k) {
            const double e = x[k] - refQuant(x[k], am, 7);
            noise += e * e;
            sig += static_cast<double>(x[k]) * x[k];
          }
        }
        ch.push_back(refSqnr(sig, noise));
        sigAll += sig;
        noiseAll += noise;
      }
    R->blockSizes.push_back(B);
    R->blockChSqnr.push_back(ch);
    R->blockSqnr.push_back(refSqnr(sigAll, noiseAll));
  }
}

// floatSquares: square in float32 (as the core does) before summing in double; the
// tie tests need agreement far below float32 rounding of the squares.
Ref reference(const std::vector<float>& w, const ChannelLayout& L, int bins, Rounding rounding = Rounding::HalfEven,
              bool floatSquares = false) {
  const uint64_t C = L.channelCount();
  const uint64_t N = w.size();
  REQUIRE(N == L.elementCount());
  const double n = static_cast<double>(N / C);
  Ref R;
  R.mn.assign(C, kInf);
  R.mx.assign(C, -kInf);
  R.mean.assign(C, 0);
  R.meanAbs.assign(C, 0);
  R.stdev.assign(C, 0);
  for (uint64_t i = 0; i < N; ++i) {
    const uint64_t c = channelOf(i, L);
    R.mn[c] = std::min(R.mn[c], w[i]);
    R.mx[c] = std::max(R.mx[c], w[i]);
    R.mean[c] += w[i];
    R.meanAbs[c] += std::fabs(w[i]);
  }
  R.tMin = *std::min_element(R.mn.begin(), R.mn.end());
  R.tMax = *std::max_element(R.mx.begin(), R.mx.end());
  R.tAbsMax = std::max(std::fabs(R.tMin), std::fabs(R.tMax));
  for (uint64_t c = 0; c < C; ++c) {
    R.tMean += R.mean[c];
    R.tMeanAbs += R.meanAbs[c];
    R.mean[c] /= n;
    R.meanAbs[c] /= n;
    R.absMax.push_back(std::max(std::fabs(R.mn[c]), std::fabs(R.mx[c])));
    R.range.push_back(R.mx[c] - R.mn[c]);
  }
  R.tMean /= static_cast<double>(N);
  R.tMeanAbs /= static_cast<double>(N);
  std::vector<double> sig(C, 0);
  std::array<std::vector<double>, kSchemes> noise;
  for (auto& v : noise) v.assign(C, 0);
  for (uint64_t i = 0; i < N; ++i) {
    const uint64_t c = channelOf(i, L);
    const double x = w[i];
    R.stdev[c] += (x - R.mean[c]) * (x - R.mean[c]);
    R.tStd += (x - R.tMean) * (x - R.tMean);
    sig[c] += floatSquares ? static_cast<double>(w[i] * w[i]) : x * x;
    for (int s = 0; s < kSchemes; ++s) {
      const float am = perChannel(s) ? R.absMax[c] : R.tAbsMax;
      const float e = w[i] - refQuant(w[i], am, qmaxOf(s), rounding);
      noise[s][c] += floatSquares ? static_cast<double>(e * e) : static_cast<double>(e) * static_cast<double>(e);
    }
  }
  for (uint64_t c = 0; c < C; ++c) R.stdev[c] = std::sqrt(R.stdev[c] / n);
  R.tStd = std::sqrt(R.tStd / static_cast<double>(N));
  double sigAll = 0;
  for (double s : sig) sigAll += s;
  for (int s = 0; s < kSchemes; ++s) {
    double nAll = 0;
    for (uint64_t c = 0; c < C; ++c) {
      R.chSqnr[s].push_back(refSqnr(sig[c], noise[s][c]));
      nAll += noise[s][c];
    }
    R.sqnr[s] = refSqnr(sigAll, nAll);
  }
  // histogram, float32 as defined
  R.hist.assign(static_cast<size_t>(bins), 0);
  const float width = R.tMax - R.tMin;
  const float hs = width > 0 ? static_cast<float>(bins) / width : 0.0f;
  for (float x : w) {
    const float h = (x - R.tMin) * hs;
    long b = static_cast<long>(h);
    b = std::min<long>(std::max<long>(b, 0), bins - 1);
    ++R.hist[static_cast<size_t>(b)];
  }
  // AIMET's rule
  double smallest = kInf;
  for (float r : R.range)
    if (r > 0) smallest = std::min(smallest, static_cast<double>(r));
  for (uint64_t c = 0; c < C; ++c) R.rel.push_back(std::isfinite(smallest) ? R.range[c] / smallest : 0.0);
  R.q1 = refQuantile(R.rel, 0.25);
  R.q3 = refQuantile(R.rel, 0.75);
  R.thr = R.q3 + 1.5 * (R.q3 - R.q1);
  for (uint64_t c = 0; c < C; ++c)
    if (R.rel[c] > R.thr) R.outliers.push_back(static_cast<uint32_t>(c));
  referenceBlocks(&R, w, L, {32, 128});
  return R;
}

// ---- helpers --------------------------------------------------------------------------

const uint8_t* bytesOf(const std::vector<float>& v) { return reinterpret_cast<const uint8_t*>(v.data()); }

LayerStats run(const std::vector<float>& w, const ChannelLayout& L, int bins = 128) {
  Options o;
  o.histogramBins = bins;
  auto r = computeLayerStats(bytesOf(w), L, o);
  INFO(r.error().message);
  REQUIRE(r.ok());
  return r.value();
}

// dB values: 1e-6 relative, but never tighter than 1e-5 dB. Near 0 dB (noise ~ signal)
// a relative error d of the float32-accumulated sums moves the result by 4.3 d dB.
bool sqnrNear(double got, double want, double relTol = 1e-6) {
  if (std::isinf(want) || std::isinf(got)) return got == want;
  return std::fabs(got - want) <= relTol * std::max(10.0, std::fabs(want));
}

// Block-wise INT4: the same sizes, in order, and SQNRs within sqnrNear.
void compareBlocks(const LayerStats& S, const Ref& R, const ChannelLayout& L) {
  REQUIRE(S.blockSqnr.size() == R.blockSizes.size());
  for (size_t k = 0; k < R.blockSizes.size(); ++k) {
    const auto& b = S.blockSqnr[k];
    INFO("block size " << R.blockSizes[k] << " got " << b.sqnr << " want " << R.blockSqnr[k]);
    CHECK(b.blockSize == R.blockSizes[k]);
    CHECK(b.scheme == "int4Block" + std::to_string(R.blockSizes[k]));
    CHECK(sqnrNear(b.sqnr, R.blockSqnr[k]));
    REQUIRE(b.channelSqnr.size() == L.channelCount());
    int bad = 0;
    for (uint64_t c = 0; c < L.channelCount() && bad < 10; ++c) {
      if (!sqnrNear(b.channelSqnr[c], R.blockChSqnr[k][c])) {
        ++bad;
        INFO("channel " << c);
        CHECK(b.channelSqnr[c] == Approx(R.blockChSqnr[k][c]).epsilon(1e-6).margin(1e-5));
      }
    }
    CHECK(bad == 0);
  }
}

// Compares everything the core computes with the naive reference.
void compare(const LayerStats& S, const Ref& R, const ChannelLayout& L) {
  const uint64_t C = L.channelCount();
  REQUIRE(S.channels == C);
  REQUIRE(S.elementsPerChannel == L.elementCount() / C);
  REQUIRE(S.min.size() == C);
  REQUIRE(S.max.size() == C);
  REQUIRE(S.mean.size() == C);
  REQUIRE(S.std.size() == C);
  REQUIRE(S.absMax.size() == C);
  REQUIRE(S.range.size() == C);
  REQUIRE(S.relativeRange.size() == C);
  int bad = 0;
  for (uint64_t c = 0; c < C && bad < 10; ++c) {
    INFO("channel " << c);
    // exact
    if (S.min[c] != R.mn[c] || S.max[c] != R.mx[c] || S.absMax[c] != R.absMax[c] || S.range[c] != R.range[c]) {
      ++bad;
      CHECK(S.min[c] == R.mn[c]);
      CHECK(S.max[c] == R.mx[c]);
      CHECK(S.absMax[c] == R.absMax[c]);
      CHECK(S.range[c] == R.range[c]);
    }
    // mean: float32 partial sums over up to 1024 values, so relative to the channel's
    // magnitude; std: relative
    const double meanTol = 1e-6 * std::max(std::fabs(R.mean[c]), R.meanAbs[c]);
    if (!(std::fabs(S.mean[c] - R.mean[c]) <= meanTol)) {
      ++bad;
      CHECK(S.mean[c] == Approx(R.mean[c]).epsilon(1e-6));
    }
    // a mean off by d moves a zero std to |d|: allow the mean's tolerance too
    if (!(std::fabs(S.std[c] - R.stdev[c]) <= 1e-6 * R.stdev[c] + meanTol)) {
      ++bad;
      CHECK(S.std[c] == Approx(R.stdev[c]).epsilon(1e-6));
    }
    for (int s = 0; s < kSchemes; ++s) {
      if (!sqnrNear(S.channelSqnr[s][c], R.chSqnr[s][c])) {
        ++bad;
        INFO("scheme " << ql::stats::schemeName(s));
        CHECK(S.channelSqnr[s][c] == Approx(R.chSqnr[s][c]).epsilon(1e-6).margin(1e-5));
      }
    }
    if (S.relativeRange[c] != R.rel[c]) {  // double(range_c) / double(smallest range): exact
      ++bad;
      CHECK(S.relativeRange[c] == R.rel[c]);
    }
  }
  CHECK(bad == 0);
  CHECK(S.tensorMin == R.tMin);
  CHECK(S.tensorMax == R.tMax);
  CHECK(S.tensorAbsMax == R.tAbsMax);
  CHECK(std::fabs(S.tensorMean - R.tMean) <= 1e-6 * std::max(std::fabs(R.tMean), R.tMeanAbs));
  CHECK(std::fabs(S.tensorStd - R.tStd) <= 1e-6 * (R.tStd + R.tMeanAbs));
  for (int s = 0; s < kSchemes; ++s) {
    INFO("scheme " << ql::stats::schemeName(s) << " got " << S.sqnr[s] << " want " << R.sqnr[s]);
    CHECK(sqnrNear(S.sqnr[s], R.sqnr[s]));
  }
  CHECK(S.histMin == R.tMin);
  CHECK(S.histMax == R.tMax);
  CHECK(S.histogram == R.hist);
  uint64_t total = 0;
  for (uint32_t h : S.histogram) total += h;
  CHECK(total == L.elementCount());
  CHECK(S.q1 == Approx(R.q1).epsilon(1e-12));
  CHECK(S.q3 == Approx(R.q3).epsilon(1e-12));
  CHECK(S.outlierThreshold == Approx(R.thr).epsilon(1e-12));
  CHECK(S.outliers == R.outliers);
  compareBlocks(S, R, L);
}

// Deterministic pseudo-random weights: per-channel scale and offset, a few large
// values so that some channels are outliers and per-tensor scales hurt.
std::vector<float> randomWeights(const ChannelLayout& L, uint32_t seed) {
  std::mt19937 rng(seed);
  auto uni = [&] { return static_cast<float>(rng() >> 8) * (1.0f / 16777216.0f); };  // [0, 1)
  const uint64_t C = L.channelCount();
  std::vector<float> scale(C), offset(C);
  for (uint64_t c = 0; c < C; ++c) {
    scale[c] = 0.02f * std::exp2(6.0f * uni() - 3.0f);
    if (c % 7 == 3) scale[c] *= 25.0f;  // outlier channels
    offset[c] = (uni() - 0.5f) * scale[c];
  }
  std::vector<float> w(L.elementCount());
  for (uint64_t i = 0; i < w.size(); ++i) {
    const uint64_t c = channelOf(i, L);
    const float g = (uni() + uni() + uni() - 1.5f) * 2.0f;  // roughly bell-shaped in [-3, 3)
    w[i] = offset[c] + scale[c] * g;
    if (rng() % 997 == 0) w[i] *= 8.0f;  // sparse spikes
  }
  return w;
}

void checkLayout(const ChannelLayout& L, uint32_t seed, int bins = 128) {
  INFO("layout {" << L.outer << ", " << L.rows << ", " << L.channels << ", " << L.inner << "} bins " << bins);
  const auto w = randomWeights(L, seed);
  const LayerStats S = run(w, L, bins);
  compare(S, reference(w, L, bins), L);

  // Unaligned input gives bit-identical results.
  std::vector<uint8_t> shifted(w.size() * 4 + 3);
  std::memcpy(shifted.data() + 3, w.data(), w.size() * 4);
  Options o;
  o.histogramBins = bins;
  auto u = computeLayerStats(shifted.data() + 3, L, o);
  REQUIRE(u.ok());
  CHECK(u->min == S.min);
  CHECK(u->mean == S.mean);
  CHECK(u->std == S.std);
  for (int s = 0; s < kSchemes; ++s) CHECK(u->channelSqnr[s] == S.channelSqnr[s]);
  CHECK(u->sqnr == S.sqnr);
  CHECK(u->histogram == S.histogram);
  REQUIRE(u->blockSqnr.size() == S.blockSqnr.size());
  for (size_t k = 0; k < S.blockSqnr.size(); ++k) {
    CHECK(u->blockSqnr[k].sqnr == S.blockSqnr[k].sqnr);
    CHECK(u->blockSqnr[k].channelSqnr == S.blockSqnr[k].channelSqnr);
  }
}

std::vector<float> channelsWithRanges(const std::vector<float>& ranges, uint64_t perChannel) {
  // Layout {1, 1, C, perChannel}: channel c holds 0, range, and values in between.
  std::vector<float> w;
  for (float r : ranges) {
    for (uint64_t k = 0; k < perChannel; ++k) {
      if (k == 0)
        w.push_back(-r / 2);
      else if (k == 1)
        w.push_back(r / 2);
      else
        w.push_back(r * (static_cast<float>(k % 5) / 10.0f - 0.2f));
    }
  }
  return w;
}

}  // namespace

TEST_CASE("stats: Conv weights [O, I, k, k] in run mode", "[stats][random]") {
  checkLayout({1, 1, 16, 8 * 3 * 3}, 1);
  checkLayout({1, 1, 12, 5 * 3 * 3}, 2);  // runs of 45: vector body and scalar tail
  checkLayout({1, 1, 5, 3}, 3);           // runs shorter than a vector
  checkLayout({1, 1, 3, 5000}, 4);        // runs longer than a flush block (1024)
  checkLayout({1, 1, 64, 2 * 7 * 7}, 5, 7);
}

TEST_CASE("stats: MatMul weights [K, N] in row mode", "[stats][random]") {
  checkLayout({1, 300, 37, 1}, 11);  // N not a multiple of 4, rows > 256: flushes
  checkLayout({1, 600, 3, 1}, 12);   // fewer channels than a vector
  checkLayout({1, 257, 4, 1}, 13);   // one row past a flush
  checkLayout({1, 513, 1, 1}, 14);   // a single channel
  checkLayout({1, 1100, 64, 1}, 15, 33);
  checkLayout({1, 2, 10, 1}, 16);
  checkLayout({1, 300, 150, 1}, 17);  // several column blocks and a ragged last one
  checkLayout({1, 5, 129, 1}, 18);
}

TEST_CASE("stats: depthwise [C, 1, 3, 3]", "[stats][random]") {
  checkLayout({1, 1, 10, 9}, 21);
  checkLayout({1, 1, 96, 9}, 22);
}

TEST_CASE("stats: grouped ConvTranspose {g, I/g, O/g, k}", "[stats][random]") {
  checkLayout({3, 4, 5, 9}, 31);     // run mode with outer > 1
  checkLayout({2, 300, 6, 1}, 32);   // 1x1 kernel: row mode with outer > 1 and flushes
  checkLayout({4, 2, 1, 16}, 33);    // depthwise transpose: one channel per group
  checkLayout({2, 260, 70, 1}, 34);  // row mode, outer > 1, more channels than a block
}

TEST_CASE("stats: channel axis in the middle {1, rows, C, inner}", "[stats][random]") {
  checkLayout({1, 6, 7, 5}, 41);
  checkLayout({1, 3, 8, 4}, 42);
}

TEST_CASE("stats: histogram bin counts", "[stats][histogram]") {
  checkLayout({1, 1, 4, 50}, 51, 1);
  checkLayout({1, 1, 4, 50}, 52, 2);
  checkLayout({1, 1, 4, 50}, 53, 1000);
  // Hand-made: [0, 10] in 10 bins; the maximum lands in the last bin, not past it.
  std::vector<float> w = {0, 0.5f, 1, 9.99f, 10, 5, 5, 2.5f};
  const LayerStats S = run(w, {1, 1, 1, 8}, 10);
  CHECK(S.histogram == std::vector<uint32_t>{2, 1, 1, 0, 0, 2, 0, 0, 0, 2});
  const LayerStats S1 = run(w, {1, 1, 1, 8}, 1);
  CHECK(S1.histogram == std::vector<uint32_t>{8});
  auto big = computeLayerStats(bytesOf(w), {1, 1, 1, 8}, Options{1 << 20});
  REQUIRE(big.ok());
  CHECK(big->histogram == reference(w, {1, 1, 1, 8}, 1 << 20).hist);
  CHECK(big->histogram.back() == 1);  // only 10 itself: 9.99 falls in bin 1047527
  CHECK(big->histogram[1047527] == 1);
}

TEST_CASE("stats: the channel layout assigns every element to the right channel", "[stats][layout]") {
  // Element value encodes its channel: channel ch holds values in [100 ch, 100 ch + 99].
  const ChannelLayout L{2, 3, 4, 5};
  std::vector<float> w(L.elementCount());
  for (uint64_t o = 0; o < L.outer; ++o)
    for (uint64_t r = 0; r < L.rows; ++r)
      for (uint64_t c = 0; c < L.channels; ++c)
        for (uint64_t k = 0; k < L.inner; ++k) {
          const uint64_t i = ((o * L.rows + r) * L.channels + c) * L.inner + k;
          w[i] = static_cast<float>(100 * (o * L.channels + c) + r * L.inner + k);
        }
  const LayerStats S = run(w, L);
  REQUIRE(S.channels == 8);
  CHECK(S.elementsPerChannel == 15);
  for (uint64_t ch = 0; ch < 8; ++ch) {
    CHECK(S.min[ch] == 100.0f * ch);
    CHECK(S.max[ch] == 100.0f * ch + 14);
    CHECK(S.mean[ch] == 100.0f * ch + 7);
    CHECK(S.range[ch] == 14.0f);
  }
  CHECK(S.tensorMean == Approx(357.0).epsilon(1e-12));
}

TEST_CASE("stats: an all-zero channel is lossless", "[stats][special]") {
  const ChannelLayout L{1, 1, 4, 9};
  auto w = randomWeights(L, 61);
  for (int k = 0; k < 9; ++k) w[2 * 9 + k] = 0.0f;
  const LayerStats S = run(w, L);
  compare(S, reference(w, L, 128), L);
  for (int s = 0; s < kSchemes; ++s) {
    CHECK(std::isinf(S.channelSqnr[s][2]));
    CHECK(S.channelSqnr[s][2] > 0);
    CHECK(std::isfinite(S.sqnr[s]));
  }
  CHECK(S.min[2] == 0.0f);
  CHECK(S.max[2] == 0.0f);
  CHECK(S.std[2] == 0.0f);
  CHECK(S.relativeRange[2] == 0.0f);
  // the same in row mode
  const ChannelLayout R{1, 9, 4, 1};
  std::vector<float> v(36);
  for (int r = 0; r < 9; ++r)
    for (int c = 0; c < 4; ++c) v[r * 4 + c] = c == 1 ? 0.0f : 0.1f * static_cast<float>(r - c);
  const LayerStats SR = run(v, R);
  compare(SR, reference(v, R, 128), R);
  CHECK(std::isinf(SR.channelSqnr[0][1]));
}

TEST_CASE("stats: an all-zero tensor", "[stats][special]") {
  for (const ChannelLayout L : {ChannelLayout{1, 1, 3, 8}, ChannelLayout{1, 8, 3, 1}, ChannelLayout{1, 1, 1, 1}}) {
    std::vector<float> w(L.elementCount(), 0.0f);
    w[0] = -0.0f;
    const LayerStats S = run(w, L, 16);
    for (int s = 0; s < kSchemes; ++s) {
      CHECK(std::isinf(S.sqnr[s]));
      for (float v : S.channelSqnr[s]) CHECK(std::isinf(v));
    }
    CHECK(S.tensorMin == 0.0f);
    CHECK(S.tensorMax == 0.0f);
    CHECK(S.tensorStd == 0.0);
    CHECK(S.tensorMean == 0.0);
    CHECK(S.histogram[0] == L.elementCount());
    CHECK(S.outliers.empty());
    for (double r : S.relativeRange) CHECK(r == 0.0);
    CHECK(S.q1 == 0.0);
    CHECK(S.q3 == 0.0);
  }
}

TEST_CASE("stats: an all-equal tensor puts everything in bin 0", "[stats][special]") {
  for (const ChannelLayout L : {ChannelLayout{1, 1, 3, 10}, ChannelLayout{1, 10, 3, 1}}) {
    for (float value : {0.75f, -3.0f, 1e-12f}) {
      std::vector<float> w(L.elementCount(), value);
      const LayerStats S = run(w, L, 64);
      INFO("value " << value);
      CHECK(S.histogram[0] == L.elementCount());
      compare(S, reference(w, L, 64), L);
      CHECK(S.std[0] <= 1e-6f * std::fabs(value));  // exactly 0 unless the float32 mean rounds
      CHECK(S.mean[1] == Approx(value).epsilon(1e-6));
      CHECK(S.range[2] == 0.0f);
      CHECK(S.outliers.empty());
    }
  }
}

TEST_CASE("stats: a single element", "[stats][special]") {
  for (float value : {-3.5f, 2.0f, 1e-30f, 0.1f}) {
    std::vector<float> w = {value};
    const ChannelLayout L{1, 1, 1, 1};
    const LayerStats S = run(w, L);
    compare(S, reference(w, L, 128), L);
    CHECK(S.min[0] == value);
    CHECK(S.max[0] == value);
    CHECK(S.mean[0] == value);
    CHECK(S.std[0] == 0.0f);
    CHECK(S.histogram[0] == 1);
    CHECK(S.elementsPerChannel == 1);
  }
}

TEST_CASE("stats: NaN and infinite weights give an error, not a crash", "[stats][special][error]") {
  const float bads[] = {std::numeric_limits<float>::quiet_NaN(), std::numeric_limits<float>::infinity(),
                        -std::numeric_limits<float>::infinity()};
  const ChannelLayout layouts[] = {{1, 1, 3, 37}, {1, 37, 3, 1}, {1, 10, 8, 1}, {1, 1, 1, 1}, {2, 3, 4, 5}};
  for (const auto& L : layouts) {
    const uint64_t N = L.elementCount();
    for (float bad : bads) {
      for (uint64_t pos : {uint64_t{0}, N / 2, N - 1}) {
        auto w = randomWeights(L, 71);
        w[pos] = bad;
        auto r = computeLayerStats(bytesOf(w), L);
        INFO("bad " << bad << " at " << pos << " of " << N);
        REQUIRE_FALSE(r.ok());
        CHECK(r.error().code == ErrorCode::Unsupported);
        CHECK(r.error().message.find("1 of " + std::to_string(N)) != std::string::npos);
        CHECK(r.error().message.find("NaN") != std::string::npos);
      }
    }
    // +inf and -inf together (their sum is NaN)
    auto w = randomWeights(L, 72);
    w[0] = bads[1];
    w[N - 1] = bads[2];
    auto r = computeLayerStats(bytesOf(w), L);
    REQUIRE_FALSE(r.ok());
    if (N > 1) CHECK(r.error().message.find("2 of") != std::string::npos);
  }
}

TEST_CASE("stats: huge finite weights are rejected, even when their sums overflow", "[stats][special][error]") {
  for (float big : {1e16f, 3.0e38f, -std::numeric_limits<float>::max()}) {
    for (const ChannelLayout L : {ChannelLayout{1, 1, 2, 16}, ChannelLayout{1, 16, 2, 1}}) {
      std::vector<float> w(L.elementCount(), big);
      auto r = computeLayerStats(bytesOf(w), L);
      INFO("value " << big);
      REQUIRE_FALSE(r.ok());
      CHECK(r.error().code == ErrorCode::Unsupported);
      CHECK_FALSE(r.error().message.empty());
    }
  }
  // 1e15 itself is still analysed
  std::vector<float> w = {1e15f, -1e15f, 1.0f, 0.0f};
  auto r = computeLayerStats(bytesOf(w), {1, 1, 1, 4});
  CHECK(r.ok());
}

TEST_CASE("stats: bad options and empty layouts", "[stats][error]") {
  std::vector<float> w(8, 1.0f);
  for (int bins : {0, -1, (1 << 20) + 1, std::numeric_limits<int>::min()}) {
    auto r = computeLayerStats(bytesOf(w), {1, 1, 2, 4}, Options{bins});
    REQUIRE_FALSE(r.ok());
    CHECK(r.error().code == ErrorCode::InvalidArgument);
  }
  for (const ChannelLayout L : {ChannelLayout{1, 1, 0, 4}, ChannelLayout{1, 0, 4, 1}, ChannelLayout{0, 1, 4, 4},
                                ChannelLayout{1, 1, 4, 0}, ChannelLayout{1, 0, uint64_t{1} << 40, 1}}) {
    auto r = computeLayerStats(bytesOf(w), L);
    REQUIRE_FALSE(r.ok());
    CHECK(r.error().code == ErrorCode::Unsupported);
  }
}

namespace {

// A tie is a float x with x * (1/s) == k + 0.5 exactly in float32. For even k,
// half-to-even gives k and half-away gives k + 1; the two errors differ only because
// s is inexact, so keep the ties where half-to-even is clearly better, and pick the
// absMax (among a fixed list) that has the most of them.
struct TieSet {
  float absMax = 0;
  std::vector<float> ties;  // +x and -x for each
};

TieSet findTies(int qmaxInt, double minGain) {
  TieSet best;
  const float qmax = static_cast<float>(qmaxInt);
  for (int i = 0; i < 60; ++i) {
    TieSet cur;
    cur.absMax = 0.5f + 0.0173f * static_cast<float>(i);
    const float s = cur.absMax / qmax;
    const float inv = 1.0f / s;
    for (int k = qmaxInt - 1; k >= 0; --k) {
      if (k % 2) continue;
      const float t = static_cast<float>(k) + 0.5f;
      float x = t * s;
      for (int j = 0; j < 64; ++j) x = std::nextafter(x, 0.0f);
      for (int j = 0; j < 128; ++j, x = std::nextafter(x, cur.absMax)) {
        if (x * inv != t || !(x < cur.absMax)) continue;
        const float even = x - static_cast<float>(k) * s;
        const float away = x - static_cast<float>(k + 1) * s;
        if (static_cast<double>(even * even) < (1 - minGain) * static_cast<double>(away * away)) {
          cur.ties.push_back(x);
          cur.ties.push_back(-x);
        }
      }
    }
    if (cur.ties.size() > best.ties.size()) best = cur;
  }
  return best;
}

// Every channel starts with +-absMax (so per-channel and per-tensor scales agree);
// every other element is a tie.
std::vector<float> tieTensor(const TieSet& T, const ChannelLayout& L) {
  std::vector<float> w(L.elementCount());
  std::vector<uint64_t> seen(L.channelCount(), 0);
  size_t next = 0;
  for (uint64_t i = 0; i < w.size(); ++i) {
    const uint64_t c = channelOf(i, L);
    w[i] = seen[c]++ == 0 ? (c % 2 ? -T.absMax : T.absMax) : T.ties[next++ % T.ties.size()];
  }
  return w;
}

void checkTies(int qmax, double minGain, const std::vector<ChannelLayout>& layouts, double tolDb, double minDiffDb) {
  const TieSet T = findTies(qmax, minGain);
  INFO("qmax " << qmax << " absMax " << T.absMax << " ties " << T.ties.size());
  REQUIRE(T.ties.size() >= 6);
  const int perT = qmax == 127 ? 0 : 2, perC = qmax == 127 ? 1 : 3;
  for (const auto& L : layouts) {
    INFO("layout {" << L.outer << ", " << L.rows << ", " << L.channels << ", " << L.inner << "}");
    const auto w = tieTensor(T, L);
    const Ref even = reference(w, L, 8, Rounding::HalfEven, true);
    const Ref away = reference(w, L, 8, Rounding::HalfAway, true);
    // The test can tell the two roundings apart ...
    REQUIRE(std::fabs(even.sqnr[perT] - away.sqnr[perT]) > minDiffDb);
    REQUIRE(std::fabs(even.sqnr[perC] - away.sqnr[perC]) > minDiffDb);
    const LayerStats S = run(w, L, 8);
    // ... and the core rounds half to even.
    INFO("core " << S.sqnr[perT] << " even " << even.sqnr[perT] << " away " << away.sqnr[perT]);
    CHECK(std::fabs(S.sqnr[perT] - even.sqnr[perT]) <= tolDb);
    CHECK(std::fabs(S.sqnr[perC] - even.sqnr[perC]) <= tolDb);
    CHECK(std::fabs(S.sqnr[perT] - away.sqnr[perT]) > minDiffDb - tolDb);
  }
}

}  // namespace

TEST_CASE("stats: ties at k + 0.5 round half to even (int8)", "[stats][ties]") {
  // Float32 partial sums over a few dozen values: agreement to ~1e-6 dB; the two
  // roundings differ by ~1e-4 dB.
  const uint64_t N = 96;
  checkTies(127, 1e-5,
            {ChannelLayout{1, 1, 1, N}, ChannelLayout{1, N, 1, 1}, ChannelLayout{1, N / 4, 4, 1}, ChannelLayout{1, 1, 4, N / 4},
             ChannelLayout{1, N / 3, 3, 1}, ChannelLayout{1, 1, 24, 4}},
            5e-6, 5e-5);
}

TEST_CASE("stats: ties at k + 0.5 round half to even (int4)", "[stats][ties]") {
  // int4 ties differ by ~1e-6 relative only: use layouts whose sums are exact in
  // double (runs of at most one vector), so the core agrees to ~1e-12 dB.
  checkTies(7, 3e-7, {ChannelLayout{1, 1, 40, 2}, ChannelLayout{1, 1, 40, 3}, ChannelLayout{1, 1, 40, 4}}, 1e-10, 1e-7);
}

TEST_CASE("stats: exact lossless cases", "[stats][quant]") {
  // Integers up to 127 with absMax 127: scale 1, no error at all for int8.
  std::vector<float> w;
  for (int i = -127; i <= 127; ++i) w.push_back(static_cast<float>(i));
  const LayerStats S = run(w, {1, 1, 1, w.size()});
  CHECK(std::isinf(S.sqnr[0]));
  CHECK(std::isinf(S.sqnr[1]));
  CHECK(std::isfinite(S.sqnr[2]));
  // Multiples of absMax / 7 quantize exactly in int4 as well: 0, +-1 ... +-7 with absMax 7.
  std::vector<float> v = {-7, -6, -5, -4, -3, -2, -1, 0, 1, 2, 3, 4, 5, 6, 7, 0};
  const LayerStats T = run(v, {1, 16, 1, 1});
  CHECK(std::isinf(T.sqnr[2]));
  CHECK(std::isinf(T.sqnr[3]));
  CHECK(std::isfinite(T.sqnr[0]));  // 7 / 127 does not divide the integers
  // 0.5 with absMax 7: int4 scale 1, 0.5 -> 0 (even), noise 0.25 per value
  std::vector<float> u = {7, 0.5f, 0.5f, 0.5f};
  const LayerStats U = run(u, {1, 1, 1, 4});
  const double sig = 49 + 3 * 0.25;
  CHECK(U.sqnr[2] == Approx(10 * std::log10(sig / 0.75)).epsilon(1e-12));
  // 1.5 and 2.5 -> 2 and 2: noise 0.25 each (tie to even either way)
  std::vector<float> t = {7, 1.5f, 2.5f, -2.5f};
  const LayerStats T2 = run(t, {1, 1, 1, 4});
  CHECK(T2.sqnr[2] == Approx(10 * std::log10((49 + 2.25 + 6.25 + 6.25) / 0.75)).epsilon(1e-12));
}

TEST_CASE("stats: per-tensor versus per-channel scale", "[stats][quant]") {
  // Channel 0 is tiny next to channel 1: per-tensor int8 rounds it all to zero.
  std::vector<float> w = {0.001f, -0.002f, 0.0015f, 0.0005f, 10.0f, -7.0f, 3.0f, 1.0f};
  const ChannelLayout L{1, 1, 2, 4};
  const LayerStats S = run(w, L);
  compare(S, reference(w, L, 128), L);
  CHECK(S.channelSqnr[0][0] == Approx(0.0).margin(1e-6));  // signal == noise
  CHECK(S.channelSqnr[1][0] > 30.0f);
  CHECK(S.channelSqnr[1][0] > S.channelSqnr[0][0]);
  CHECK(S.sqnr[1] > S.sqnr[0]);
  CHECK(S.sqnr[3] > S.sqnr[2]);
  CHECK(S.sqnr[0] > S.sqnr[2]);
}

TEST_CASE("stats: relative range, quantiles and outliers by hand", "[stats][outliers]") {
  struct Case {
    std::vector<float> ranges;
    std::vector<double> rel;
    double q1, q3, thr;
    std::vector<uint32_t> outliers;
  };
  const Case cases[] = {
      {{1, 1, 1, 1, 1, 1, 1, 10}, {1, 1, 1, 1, 1, 1, 1, 10}, 1, 1, 1, {7}},
      {{2, 4, 6, 8}, {1, 2, 3, 4}, 1.75, 3.25, 5.5, {}},
      {{0, 2, 4, 6, 40}, {0, 1, 2, 3, 20}, 1, 3, 6, {4}},
      {{3, 0.5f, 1.5f, 0.5f, 30, 0.5f}, {6, 1, 3, 1, 60, 1}, 1, 5.25, 11.625, {4}},
      {{4}, {1}, 1, 1, 1, {}},
  };
  for (const auto& c : cases) {
    const uint64_t C = c.ranges.size();
    for (const uint64_t per : {uint64_t{2}, uint64_t{7}}) {
      const auto w = channelsWithRanges(c.ranges, per);
      const ChannelLayout L{1, 1, C, per};
      const LayerStats S = run(w, L);
      INFO("C " << C << " per " << per);
      for (uint64_t k = 0; k < C; ++k) {
        CHECK(S.range[k] == c.ranges[k]);
        CHECK(S.relativeRange[k] == c.rel[k]);
      }
      CHECK(S.q1 == c.q1);
      CHECK(S.q3 == c.q3);
      CHECK(S.outlierThreshold == c.thr);
      CHECK(S.outliers == c.outliers);
    }
  }
}

TEST_CASE("stats: quantile is numpy's linear interpolation", "[stats][outliers]") {
  using ql::stats::quantile;
  CHECK(quantile({1, 2, 3, 4}, 0.25) == 1.75);
  CHECK(quantile({1, 2, 3, 4}, 0.5) == 2.5);
  CHECK(quantile({1, 2, 3, 4}, 0.75) == 3.25);
  CHECK(quantile({4, 3, 2, 1}, 0.0) == 1);
  CHECK(quantile({4, 3, 2, 1}, 1.0) == 4);
  CHECK(quantile({3, 1, 2}, 0.5) == 2);
  CHECK(quantile({7}, 0.25) == 7);
  CHECK(quantile({7}, 1.0) == 7);
  CHECK(quantile({10, 20}, 0.3) == Approx(13).epsilon(1e-15));
  CHECK(quantile({1, 2, 3, 4, 5, 6, 7, 8, 9, 100}, 0.9) == Approx(18.1).epsilon(1e-14));
  CHECK(quantile({1, 2, 3, 4, 5}, 0.75) == 4);
  CHECK(quantile({0, 0, 0, 10}, 0.75) == 2.5);
  CHECK(quantile({}, 0.5) == 0);
}

TEST_CASE("stats: scheme helpers and SQNR in dB", "[stats]") {
  using namespace ql::stats;
  CHECK(std::string(schemeName(0)) == "int8PerTensor");
  CHECK(std::string(schemeName(1)) == "int8PerChannel");
  CHECK(std::string(schemeName(2)) == "int4PerTensor");
  CHECK(std::string(schemeName(3)) == "int4PerChannel");
  CHECK(std::string(schemeName(4)) == "unknown");
  CHECK(std::string(schemeName(-1)) == "unknown");
  CHECK(schemeBits(0) == 8);
  CHECK(schemeBits(1) == 8);
  CHECK(schemeBits(2) == 4);
  CHECK(schemeBits(3) == 4);
  CHECK_FALSE(schemePerChannel(0));
  CHECK(schemePerChannel(1));
  CHECK_FALSE(schemePerChannel(2));
  CHECK(schemePerChannel(3));
  CHECK(sqnrDb(100, 1) == Approx(20).epsilon(1e-15));
  CHECK(sqnrDb(1, 10) == Approx(-10).epsilon(1e-15));
  CHECK(std::isinf(sqnrDb(1, 0)));
  CHECK(std::isinf(sqnrDb(0, 0)));
  CHECK(symmetricScale(127, 8) == 1.0f);
  CHECK(symmetricScale(7, 4) == 1.0f);
  CHECK(symmetricScale(1, 8) == 1.0f / 127.0f);
  CHECK(symmetricScale(0, 8) == 0.0f);
}

TEST_CASE("stats: a subnormal absMax quantizes everything to zero", "[stats][special]") {
  // absMax / 127 underflows to 0: q(x) = 0, so the noise is the signal: 0 dB.
  const float tiny = std::numeric_limits<float>::denorm_min() * 8;
  std::vector<float> w = {tiny, -tiny, tiny / 2, 0};
  for (const ChannelLayout L : {ChannelLayout{1, 1, 1, 4}, ChannelLayout{1, 4, 1, 1}, ChannelLayout{1, 1, 2, 2}}) {
    const LayerStats S = run(w, L);
    compare(S, reference(w, L, 128), L);
    for (int s = 0; s < kSchemes; ++s) CHECK(S.sqnr[s] == Approx(0.0).margin(1e-12));
  }
}

TEST_CASE("stats: channels too small for float32 squares", "[stats][special]") {
  // Values around 1e-20 square to 1e-40, below float32's normal range: the definition
  // squares in double, so the SQNR must match the double reference anyway.
  for (const ChannelLayout L :
       {ChannelLayout{1, 1, 4, 9}, ChannelLayout{1, 9, 4, 1}, ChannelLayout{1, 300, 5, 1}, ChannelLayout{2, 3, 2, 7}}) {
    INFO("layout {" << L.outer << ", " << L.rows << ", " << L.channels << ", " << L.inner << "}");
    auto w = randomWeights(L, 81);
    // scale channel 1 (and, for the second pass, every channel) down to ~1e-20
    for (int all = 0; all < 2; ++all) {
      auto v = w;
      for (uint64_t i = 0; i < v.size(); ++i)
        if (all || channelOf(i, L) == 1) v[i] *= 1e-18f;
      const LayerStats S = run(v, L);
      compare(S, reference(v, L, 128), L);
      for (int s = 0; s < kSchemes; ++s) CHECK(std::isfinite(S.channelSqnr[s][1]));
    }
  }
}

// ---- block-wise INT4 ---------------------------------------------------------------

namespace {

LayerStats runBlocks(const std::vector<float>& w, const ChannelLayout& L, uint64_t blockSize) {
  Options o;
  o.blockSize = blockSize;
  auto r = computeLayerStats(bytesOf(w), L, o);
  INFO(r.error().message);
  REQUIRE(r.ok());
  return r.value();
}

// Checks 32, 128 and `B` (when another) against the naive reference.
void checkBlocks(const std::vector<float>& w, const ChannelLayout& L, uint64_t B) {
  INFO("layout {" << L.outer << ", " << L.rows << ", " << L.channels << ", " << L.inner << "} block " << B);
  Ref R;
  std::vector<uint64_t> sizes = {32, 128};
  if (B != 32 && B != 128) sizes.push_back(B);
  referenceBlocks(&R, w, L, sizes);
  compareBlocks(runBlocks(w, L, B), R, L);
}

}  // namespace

TEST_CASE("stats: block-wise INT4 of channels too small for float32 squares", "[stats][blocks][special]") {
  // The block sums are float32 within a block: values around 1e-20 (squares 1e-40) must be
  // redone in double, in run mode and in row mode, with and without the two sizes swept
  // together (a third size), and whatever the pieces the tensor arrives in.
  for (const ChannelLayout L : {ChannelLayout{1, 1, 4, 300}, ChannelLayout{1, 9, 4, 1}, ChannelLayout{1, 300, 5, 1},
                                ChannelLayout{2, 3, 2, 7}, ChannelLayout{1, 1, 6, 72}}) {
    INFO("layout {" << L.outer << ", " << L.rows << ", " << L.channels << ", " << L.inner << "}");
    const auto w = randomWeights(L, 82);
    for (int all = 0; all < 2; ++all) {
      auto v = w;
      for (uint64_t i = 0; i < v.size(); ++i)
        if (all || channelOf(i, L) == 1) v[i] *= 1e-18f;
      for (uint64_t B : {uint64_t{32}, uint64_t{16}}) {
        checkBlocks(v, L, B);
        const LayerStats S = runBlocks(v, L, B);
        for (const auto& b : S.blockSqnr) CHECK(std::isfinite(b.channelSqnr[1]));
      }
    }
  }
}

TEST_CASE("stats: block-wise INT4 against the naive reference, every layout and block size", "[stats][blocks]") {
  const std::vector<ChannelLayout> layouts = {
      {1, 1, 16, 8 * 3 * 3},  // Conv [O, I, 3, 3]: blocks along the flattened I*3*3 (72: a partial last block)
      {1, 1, 6, 300},         // Gemm transB [N, K]: along K, in run mode
      {1, 300, 37, 1},        // MatMul [K, N]: along K, in row mode
      {1, 70, 150, 1},        // row mode, several column blocks
      {3, 4, 5, 9},           // grouped ConvTranspose {g, I/g, O/g, k}: along I/g*k, across rows
      {2, 260, 7, 1},         // grouped ConvTranspose with a 1x1 kernel: row mode, outer > 1
      {1, 6, 4, 10},          // channel axis in the middle: k = r * inner + i crosses runs
      {1, 1, 3, 5},           // runs shorter than a vector
  };
  uint32_t seed = 100;
  for (const ChannelLayout& L : layouts) {
    const auto w = randomWeights(L, ++seed);
    const uint64_t E = L.rows * L.inner;
    for (uint64_t B : {uint64_t{1}, uint64_t{2}, uint64_t{3}, uint64_t{5}, uint64_t{7}, uint64_t{16}, uint64_t{32}, uint64_t{64},
                       uint64_t{100}, E, E + 1, uint64_t{1} << 20})
      checkBlocks(w, L, B);
  }
}

TEST_CASE("stats: block-wise INT4 by hand", "[stats][blocks]") {
  // One channel of 6: blocks of 4 ([7, -3.5, 1, 0.5] with scale 1) and a partial last
  // block of 2 ([0, 0], lossless): codes 7, -4 (tie -3.5 to even), 1, 0 (tie 0.5 to even).
  std::vector<float> w = {7, -3.5f, 1, 0.5f, 0, 0};
  const LayerStats S = runBlocks(w, {1, 1, 1, 6}, 4);
  REQUIRE(S.blockSqnr.size() == 3);
  CHECK(S.blockSqnr[2].scheme == "int4Block4");
  const double sig = 49 + 12.25 + 1 + 0.25, noise = 0.25 + 0.25;
  CHECK(S.blockSqnr[2].sqnr == Approx(10 * std::log10(sig / noise)).epsilon(1e-12));
  CHECK(S.blockSqnr[2].channelSqnr[0] == Approx(10 * std::log10(sig / noise)).epsilon(1e-6));
  // Block size 1: every value is its own block's absMax and quantizes to +-7 * (|x| / 7).
  const LayerStats one = runBlocks({0.3f, -2.0f, 5.0f, 0.0f}, {1, 1, 1, 4}, 1);
  CHECK(one.blockSqnr[2].sqnr > 120);
  // Integers in blocks that each hold a 7 or -7 (scale 1) are lossless under blocks of 3
  // and of 32 or 128 (one block); an all-zero tensor too (+inf, as for the other schemes).
  const LayerStats grid = runBlocks({7, 1, 2, -7, 3, -4, 7, 5}, {1, 8, 1, 1}, 3);
  for (const auto& b : grid.blockSqnr) CHECK(std::isinf(b.sqnr));
  const LayerStats zero = runBlocks(std::vector<float>(64, 0.0f), {1, 4, 4, 4}, 5);
  for (const auto& b : zero.blockSqnr) CHECK(std::isinf(b.sqnr));
  // A zero block inside a channel adds no noise: [0 x 32 | v x 32] under blocks of 32
  // equals the channel [v x 32] alone.
  std::vector<float> half(64, 0.0f), v(32);
  for (int i = 0; i < 32; ++i) v[i] = half[32 + i] = 0.01f * static_cast<float>((i * 37) % 23) - 0.1f;
  CHECK(runBlocks(half, {1, 1, 1, 64}, 0).blockSqnr[0].sqnr ==
        Approx(runBlocks(v, {1, 1, 1, 32}, 0).blockSqnr[0].sqnr).epsilon(1e-12));
}

TEST_CASE("stats: block-wise INT4 walks MatMul [K, N] and Gemm transB [N, K] both along K", "[stats][blocks]") {
  // The same matrix W [K, N], stored as MatMul's [K, N] (row mode) and transposed as
  // Gemm transB's [N, K] (run mode), gives the same block SQNR per output channel.
  const uint64_t K = 200, N = 13;
  const auto w = randomWeights({1, K, N, 1}, 7);
  std::vector<float> t(w.size());
  for (uint64_t k = 0; k < K; ++k)
    for (uint64_t n = 0; n < N; ++n) t[n * K + k] = w[k * N + n];
  for (uint64_t B : {uint64_t{32}, uint64_t{48}}) {
    const LayerStats a = runBlocks(w, {1, K, N, 1}, B), b = runBlocks(t, {1, 1, N, K}, B);
    for (size_t s = 0; s < a.blockSqnr.size(); ++s) {
      // the signal is summed in float32 pieces whose order differs between the two modes
      CHECK(a.blockSqnr[s].sqnr == Approx(b.blockSqnr[s].sqnr).epsilon(1e-6));
      for (uint64_t n = 0; n < N; ++n)
        CHECK(a.blockSqnr[s].channelSqnr[n] == Approx(b.blockSqnr[s].channelSqnr[n]).epsilon(1e-6));
    }
  }
}

// A weight read twice (pass 1, then pass 2 from the file again) may have changed in between
// (a model rewritten while it is analysed). Values outside pass 1's range then reach pass 2:
// the histogram counts them in its first or last bin, never outside its counts (ASan would
// see the write); the numbers are wrong, but nothing else is touched.
TEST_CASE("stats: pass 2 values outside pass 1's range stay inside the histogram", "[stats][histogram][special]") {
  for (const ChannelLayout L : {ChannelLayout{1, 1, 4, 64}, ChannelLayout{1, 64, 4, 1}}) {
    INFO("layout {" << L.outer << ", " << L.rows << ", " << L.channels << ", " << L.inner << "}");
    const uint64_t n = L.elementCount();
    std::vector<float> first(n), second(n);
    for (uint64_t i = 0; i < n; ++i) {
      first[i] = static_cast<float>(i % 7) / 7.0f;                                // [0, 1)
      second[i] = i % 3 == 0 ? -1e6f : i % 3 == 1 ? 1e6f : -1.0f - float(i % 5);  // below and above it
    }
    auto b = ql::stats::LayerStatsBuilder::create(L, Options{16});
    REQUIRE(b.ok());
    REQUIRE(b->feed(1, bytesOf(first), 0, n).ok());
    REQUIRE(b->endPass(1).ok());
    for (int pass = 2; pass <= b->passes(); ++pass) {
      REQUIRE(b->feed(pass, bytesOf(second), 0, n).ok());
      REQUIRE(b->endPass(pass).ok());
    }
    auto S = b->finish();
    REQUIRE(S.ok());
    REQUIRE(S->histogram.size() == 16);
    const uint64_t above = (n + 1) / 3;  // i % 3 == 1
    CHECK(S->histogram.back() == above);
    CHECK(S->histogram.front() == n - above);
  }
}

TEST_CASE("stats: block-wise INT4 streamed in pieces equals whole", "[stats][blocks]") {
  for (const ChannelLayout L :
       {ChannelLayout{1, 1, 9, 100}, ChannelLayout{1, 300, 11, 1}, ChannelLayout{2, 3, 4, 25}, ChannelLayout{2, 90, 5, 1}}) {
    INFO("layout {" << L.outer << ", " << L.rows << ", " << L.channels << ", " << L.inner << "}");
    const auto w = randomWeights(L, 55);
    Options o;
    o.blockSize = 20;
    const LayerStats whole = runBlocks(w, L, 20);
    for (int reverse = 0; reverse < 2; ++reverse) {
      auto b = ql::stats::LayerStatsBuilder::create(L, o);
      REQUIRE(b.ok());
      const uint64_t unit = b->unitElements(), n = b->elementCount();
      for (int pass = 1; pass <= b->passes(); ++pass) {
        for (uint64_t p = 0; p < n / unit; ++p) {
          const uint64_t first = (reverse ? n / unit - 1 - p : p) * unit;
          REQUIRE(b->feed(pass, bytesOf(w) + 4 * first, first, unit).ok());
        }
        REQUIRE(b->endPass(pass).ok());
      }
      auto S = b->finish();
      REQUIRE(S.ok());
      REQUIRE(S->blockSqnr.size() == 3);
      // Block noise is summed in float within a block (its rows fed in reverse here, so the
      // float sums go into the double ones at other rows), and the signal's float32
      // partial sums are flushed at piece ends too: equal to float32 rounding.
      for (size_t k = 0; k < 3; ++k) {
        CHECK(S->blockSqnr[k].sqnr == Approx(whole.blockSqnr[k].sqnr).epsilon(1e-6));
        for (uint64_t c = 0; c < L.channelCount(); ++c)
          CHECK(S->blockSqnr[k].channelSqnr[c] == Approx(whole.blockSqnr[k].channelSqnr[c]).epsilon(1e-6));
      }
    }
  }
}

TEST_CASE("stats: block size option: checked once, defaults always measured", "[stats][blocks][error]") {
  using namespace ql::stats;
  for (double bad : {0.0, -1.0, 1.5, 32.000001, static_cast<double>(kMaxBlockSize) + 1, 1e300,
                     std::numeric_limits<double>::infinity(), std::nan("")}) {
    INFO(bad);
    auto r = checkBlockSize(bad);
    REQUIRE_FALSE(r.ok());
    CHECK(r.error().code == ErrorCode::InvalidArgument);
    CHECK(r.error().message.find("block size") != std::string::npos);
  }
  CHECK(checkBlockSize(1).value() == 1);
  CHECK(checkBlockSize(64).value() == 64);
  CHECK(checkBlockSize(static_cast<double>(kMaxBlockSize)).value() == kMaxBlockSize);
  CHECK(blockSizes(Options{}) == std::vector<uint64_t>{32, 128});
  CHECK(blockSizes(Options{128, 32}) == std::vector<uint64_t>{32, 128});
  CHECK(blockSizes(Options{128, 128}) == std::vector<uint64_t>{32, 128});
  CHECK(blockSizes(Options{128, 64}) == std::vector<uint64_t>{32, 128, 64});
  CHECK(blockSchemeName(32) == "int4Block32");
  std::vector<float> w(8, 1.0f);
  auto r = computeLayerStats(bytesOf(w), {1, 1, 2, 4}, Options{128, kMaxBlockSize + 1});
  REQUIRE_FALSE(r.ok());
  CHECK(r.error().code == ErrorCode::InvalidArgument);
}

TEST_CASE("stats: the two default block sizes swept together give the bits of one size at a time", "[stats][blocks]") {
  // Row mode sweeps blocks of 32 and 128 in one pass when they are the only sizes; with a
  // third size every size has its own sweep. Both must give the same bits: per channel the
  // same squares added in the same row order. Layouts: rows not a multiple of 32 or 128,
  // outer > 1, several column blocks of 1024 channels, a channel count not a multiple of 4.
  for (const ChannelLayout L : {ChannelLayout{1, 300, 37, 1}, ChannelLayout{2, 161, 6, 1}, ChannelLayout{1, 129, 2051, 1},
                                ChannelLayout{1, 31, 5, 1}, ChannelLayout{3, 256, 9, 1}}) {
    INFO("layout {" << L.outer << ", " << L.rows << ", " << L.channels << ", " << L.inner << "}");
    const auto w = randomWeights(L, 77);
    const LayerStats together = runBlocks(w, L, 0), apart = runBlocks(w, L, 20);
    REQUIRE(together.blockSqnr.size() == 2);
    REQUIRE(apart.blockSqnr.size() == 3);
    for (size_t k = 0; k < 2; ++k) {
      CHECK(together.blockSqnr[k].blockSize == apart.blockSqnr[k].blockSize);
      CHECK(std::memcmp(&together.blockSqnr[k].sqnr, &apart.blockSqnr[k].sqnr, sizeof(double)) == 0);
      REQUIRE(together.blockSqnr[k].channelSqnr.size() == apart.blockSqnr[k].channelSqnr.size());
      CHECK(std::memcmp(together.blockSqnr[k].channelSqnr.data(), apart.blockSqnr[k].channelSqnr.data(),
                        4 * apart.blockSqnr[k].channelSqnr.size()) == 0);
    }
  }
}

TEST_CASE("stats: a channel's (or block's) absMax quantizes to +-qmax, never past it", "[stats][blocks][special]") {
  // The kernels leave out the clamp of the codes to [-qmax, qmax] because it never binds:
  // absMax * (1 / (absMax / qmax)) rounds to qmax at most. Were it to round to qmax + 1
  // for some absMax, a channel of +-absMax would have an error of a whole step (INT4
  // about 17 dB, INT8 about 42 dB) instead of almost none. Every exponent of float32,
  // subnormals included, up to 2^49 (larger weights are refused), in run mode and row
  // mode; where the scale's inverse overflows, everything quantizes to 0 (0 dB), as for
  // a subnormal absMax above.
  int checked = 0;
  for (uint32_t u = 1; u < 0x58000000u; u = u < 64 ? u + 1 : u + (u >> 7) + 4321) {
    float a;
    std::memcpy(&a, &u, 4);
    std::vector<float> w(32);
    for (int i = 0; i < 32; ++i) w[i] = i % 3 ? a : -a;
    for (const ChannelLayout L : {ChannelLayout{1, 1, 1, 32}, ChannelLayout{1, 32, 1, 1}}) {
      const LayerStats S = run(w, L);
      auto fine = [&](double db) { return db >= 100 || std::fabs(db) < 1e-9; };
      INFO("absMax " << a << " rows " << L.rows);
      CHECK(fine(S.channelSqnr[ql::stats::kInt8PerChannel][0]));
      CHECK(fine(S.channelSqnr[ql::stats::kInt4PerChannel][0]));
      CHECK(fine(S.sqnr[ql::stats::kInt8PerTensor]));
      CHECK(fine(S.sqnr[ql::stats::kInt4PerTensor]));
      for (const auto& b : S.blockSqnr) CHECK(fine(b.sqnr));
      ++checked;
    }
  }
  CHECK(checked > 2000);  // absMax values times two layouts
}
