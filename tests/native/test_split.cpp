// One layer computed in parts over disjoint ranges of output channels, then merged
// (stats.hpp, "one layer in parts"), must give the whole-layer builder's LayerStats and
// analyzeLayer's LayerAnalysis bit for bit: every field compared by bit pattern, on
// synthetic layers (float32, float16, bfloat16; outer 1 and > 1; channel counts the part
// counts do not divide; 1, 2, 3, 7 parts and parts of one channel; pieces of several
// sizes fed out of order; extra block sizes; tiny, constant and zero channels; NaN,
// infinity and huge weights) and on every splittable layer of the project's models.
// Misuse (gaps, overlaps, another layout, pieces outside a part, a part's pass 1 ended
// without the whole tensor's extremes) gives error values.
#include <algorithm>
#include <catch2/catch.hpp>
#include <cmath>
#include <cstdint>
#include <cstring>
#include <filesystem>
#include <fstream>
#include <iterator>
#include <limits>
#include <random>
#include <string>
#include <vector>

#include "analysis/analyze.hpp"
#include "graph/layers.hpp"
#include "onnx/model.hpp"
#include "onnx/tensor_data.hpp"
#include "same_stats.hpp"
#include "stats/stats.hpp"

namespace fs = std::filesystem;
using ql::ErrorCode;
using ql::stats::ChannelLayout;
using ql::stats::LayerStats;
using ql::stats::LayerStatsBuilder;
using ql::stats::LayerStatsPart;
using ql::stats::Options;
using ql::stats::PassExtremes;
using ql::stats::Storage;

namespace {

using ::requireSame;  // LayerStats (same_stats.hpp)

void requireSame(const ql::analysis::LayerAnalysis& a, const ql::analysis::LayerAnalysis& b) {
  requireSame(a.stats, b.stats);
  const auto &x = a.inputs, &y = b.inputs;
  CHECK(x.axis == y.axis);
  CHECK(x.count == y.count);
  CHECK(x.groups == y.groups);
  CHECK(x.perGroup == y.perGroup);
  CHECK(sameBits(x.absMax, y.absMax));
  CHECK(sameBits(x.relative, y.relative));
  CHECK(x.outliers == y.outliers);
  CHECK(sameBits(x.q1, y.q1));
  CHECK(sameBits(x.q3, y.q3));
  CHECK(sameBits(x.threshold, y.threshold));
  CHECK(a.quant.present == b.quant.present);
  CHECK(a.stored.present == b.stored.present);
}

// float32 -> float16 bits, truncating (any half will do: the same bytes go both ways);
// infinities and NaN kept, magnitudes beyond 65504 clamped to it.
uint16_t toHalf(float f) {
  uint32_t u;
  std::memcpy(&u, &f, 4);
  const uint16_t sign = static_cast<uint16_t>((u >> 16) & 0x8000u);
  const uint32_t ef = (u >> 23) & 0xffu, mant = u & 0x7fffffu;
  if (ef == 0xff) return sign | 0x7c00u | (mant ? 0x200u : 0u);
  const int e = static_cast<int>(ef) - 127 + 15;
  if ((u & 0x7fffffffu) == 0 || e < -10) return sign;
  if (e >= 31) return sign | 0x7bffu;
  if (e <= 0) return sign | static_cast<uint16_t>((mant | 0x800000u) >> (14 - e));
  return sign | static_cast<uint16_t>(e << 10) | static_cast<uint16_t>(mant >> 13);
}

size_t sizeOf(Storage s) { return s == Storage::Float32 ? 4 : 2; }

std::vector<uint8_t> encode(const std::vector<float>& v, Storage s) {
  std::vector<uint8_t> out(v.size() * sizeOf(s));
  for (size_t i = 0; i < v.size(); ++i) {
    if (s == Storage::Float32) {
      std::memcpy(&out[4 * i], &v[i], 4);
    } else {
      uint32_t u;
      std::memcpy(&u, &v[i], 4);
      const uint16_t h = s == Storage::Float16 ? toHalf(v[i]) : static_cast<uint16_t>(u >> 16);
      std::memcpy(&out[2 * i], &h, 2);
    }
  }
  return out;
}

// Channel kinds for the synthetic layers.
enum class Kind { Normal, Constant, Zero, Tiny, Wide };

// Values of a run-mode layout (rows 1): channel ch holds [ch*inner, (ch+1)*inner).
std::vector<float> makeValues(const ChannelLayout& L, const std::vector<Kind>& kinds, uint32_t seed) {
  std::mt19937 rng(seed);
  std::normal_distribution<float> nd(0.0f, 1.0f);
  std::uniform_real_distribution<float> ud(-3.0f, 1.0f);
  std::vector<float> v(L.elementCount());
  for (uint64_t ch = 0; ch < L.channelCount(); ++ch) {
    const Kind k = kinds[ch % kinds.size()];
    const float scale = std::pow(10.0f, ud(rng));
    for (uint64_t i = 0; i < L.inner; ++i) {
      float x = 0;
      switch (k) {
        case Kind::Normal:
          x = nd(rng) * scale;
          break;
        case Kind::Constant:
          x = 0.375f;
          break;
        case Kind::Zero:
          x = (i % 3 == 1) ? -0.0f : 0.0f;
          break;
        case Kind::Tiny:
          x = nd(rng) * 1e-20f;
          break;
        case Kind::Wide:
          x = nd(rng) * 50.0f;
          break;
      }
      v[ch * L.inner + i] = x;
    }
  }
  return v;
}

// Pieces of [a, b) (elements, whole runs of `unit`) of the sizes `sizes` (in units,
// cycled), in an order shuffled by `rng`.
std::vector<std::pair<uint64_t, uint64_t>> pieces(uint64_t a, uint64_t b, uint64_t unit, const std::vector<uint64_t>& sizes,
                                                  std::mt19937& rng) {
  std::vector<std::pair<uint64_t, uint64_t>> out;
  size_t k = 0;
  for (uint64_t at = a; at < b;) {
    const uint64_t n = std::min(b - at, sizes[k++ % sizes.size()] * unit);
    out.emplace_back(at, n);
    at += n;
  }
  std::shuffle(out.begin(), out.end(), rng);
  return out;
}

ql::Result<LayerStats> wholeStats(const ChannelLayout& L, const Options& opt, const std::vector<uint8_t>& bytes, Storage s,
                                  int* passes = nullptr) {
  auto b = LayerStatsBuilder::create(L, opt);
  REQUIRE(b.ok());
  std::mt19937 rng(7);
  for (int pass = 1; pass <= b->passes(); ++pass) {
    for (const auto& [first, count] : pieces(0, b->elementCount(), b->unitElements(), {3}, rng)) {
      ql::Error e = b->feed(pass, bytes.data() + sizeOf(s) * first, first, count, s);
      if (!e.ok()) return e;
    }
    ql::Error e = b->endPass(pass);
    if (!e.ok()) return e;
  }
  if (passes) *passes = b->passes();
  return b->finish();
}

struct SplitRun {
  ql::Result<LayerStats> stats = ql::makeError(ErrorCode::InvalidArgument, "not run");
  int withPass3 = 0, parts = 0;
};

// The layer in `k` parts (splitChannels), each fed its own elements in pieces of
// `sizes` units out of order; extremes combined and parts merged in shuffled orders.
// A refusal at the end of pass 1 must be the same in every part.
SplitRun splitStats(const ChannelLayout& L, const Options& opt, const std::vector<uint8_t>& bytes, Storage s, uint64_t k,
                    const std::vector<uint64_t>& sizes, uint32_t seed) {
  SplitRun run;
  std::mt19937 rng(seed);
  const std::vector<uint64_t> cuts = ql::stats::splitChannels(L.channelCount(), k);
  std::vector<LayerStatsBuilder> parts;
  std::vector<PassExtremes> ext;
  for (size_t i = 0; i + 1 < cuts.size(); ++i) {
    auto p = LayerStatsBuilder::createPart(L, opt, cuts[i], cuts[i + 1]);
    REQUIRE(p.ok());
    REQUIRE(p->isPart());
    REQUIRE(p->firstElement() == cuts[i] * L.inner);
    REQUIRE(p->elementCount() == (cuts[i + 1] - cuts[i]) * L.inner);
    parts.push_back(std::move(p.value()));
  }
  run.parts = static_cast<int>(parts.size());
  auto feedAll = [&](LayerStatsBuilder& p, int pass) {
    for (const auto& [first, count] :
         pieces(p.firstElement(), p.firstElement() + p.elementCount(), p.unitElements(), sizes, rng)) {
      ql::Error e = p.feed(pass, bytes.data() + sizeOf(s) * first, first, count, s);
      REQUIRE(e.ok());
    }
  };
  for (auto& p : parts) {
    feedAll(p, 1);
    auto x = p.extremes();
    REQUIRE(x.ok());
    ext.push_back(x.value());
  }
  std::shuffle(ext.begin(), ext.end(), rng);
  auto whole = LayerStatsBuilder::combineExtremes(L, ext);
  REQUIRE(whole.ok());
  ql::Error first;
  for (size_t i = 0; i < parts.size(); ++i) {
    ql::Error e = parts[i].endPass(1, &whole.value());
    if (i == 0) first = e;
    CHECK(e.code == first.code);
    CHECK(e.message == first.message);
  }
  if (!first.ok()) {
    run.stats = first;
    return run;
  }
  std::vector<LayerStatsPart> taken;
  for (auto& p : parts) {
    for (int pass = 2; pass <= p.passes(); ++pass) {
      feedAll(p, pass);
      REQUIRE(p.endPass(pass).ok());
    }
    run.withPass3 += p.passes() == 3;
    auto t = p.takePart();
    REQUIRE(t.ok());
    taken.push_back(std::move(t.value()));
  }
  std::shuffle(taken.begin(), taken.end(), rng);
  run.stats = LayerStatsBuilder::mergeParts(L, opt, std::move(taken));
  return run;
}

// Splits into every count of `counts` (and parts of one channel each) and compares.
void compareSplits(const ChannelLayout& L, const Options& opt, const std::vector<float>& values, Storage s) {
  const std::vector<uint8_t> bytes = encode(values, s);
  auto whole = wholeStats(L, opt, bytes, s);
  INFO("layout {" << L.outer << ", " << L.rows << ", " << L.channels << ", " << L.inner << "}, storage " << static_cast<int>(s)
                  << ", blockSize " << opt.blockSize);
  REQUIRE(whole.ok());
  uint32_t seed = 1;
  for (uint64_t k : {uint64_t{1}, uint64_t{2}, uint64_t{3}, uint64_t{7}, L.channelCount()}) {
    for (const std::vector<uint64_t>& sizes :
         {std::vector<uint64_t>{1}, std::vector<uint64_t>{2, 1, 5}, std::vector<uint64_t>{1000}}) {
      INFO(k << " parts, pieces of " << sizes[0] << " units first");
      SplitRun r = splitStats(L, opt, bytes, s, k, sizes, seed++);
      INFO(r.stats.error().describe());
      REQUIRE(r.stats.ok());
      CHECK(r.parts == static_cast<int>(std::min(k, L.channelCount())));
      requireSame(r.stats.value(), whole.value());
    }
  }
}

const std::vector<ChannelLayout> kLayouts = {
    {1, 1, 13, 50},  // outer 1, 13 channels: no part count divides them
    {3, 1, 5, 70},   // outer 3
    {1, 1, 7, 300},  // inner above the block sizes
    {2, 1, 4, 9},    // inner below every block size, not a multiple of 4
    {1, 1, 1, 64},   // one channel
};

std::vector<Options> options() {
  std::vector<Options> out(5);
  out[1].blockSize = 48;   // divides neither inner nor 128
  out[2].blockSize = 512;  // above inner
  out[3].blockSize = 64;   // divides 128: 128's absMax come from 64's
  out[4].blockSize = 7;
  out[4].histogramBins = 37;
  return out;
}

}  // namespace

TEST_CASE("split: parts merged give the whole layer's statistics bit for bit", "[stats][split]") {
  const std::vector<Kind> kinds = {Kind::Normal, Kind::Constant, Kind::Normal, Kind::Zero, Kind::Wide, Kind::Normal};
  uint32_t seed = 11;
  for (const ChannelLayout& L : kLayouts)
    for (const Options& opt : options())
      for (Storage s : {Storage::Float32, Storage::Float16, Storage::BFloat16})
        compareSplits(L, opt, makeValues(L, kinds, seed++), s);
}

TEST_CASE("split: tiny channels in one part redo pass 3 there only, same bits", "[stats][split]") {
  // Channel 2 alone has absMax ~1e-20: its float32 squares underflow, so the whole layer
  // and the one part holding it run pass 3 (float32 and bfloat16; float16 has no such values).
  std::vector<Kind> kinds(13, Kind::Normal);
  kinds[2] = Kind::Tiny;
  const ChannelLayout L{1, 1, 13, 50};
  uint32_t seed = 5;
  for (const Options& opt : options())
    for (Storage s : {Storage::Float32, Storage::BFloat16}) {
      const std::vector<uint8_t> bytes = encode(makeValues(L, kinds, seed++), s);
      int passes = 0;
      auto whole = wholeStats(L, opt, bytes, s, &passes);
      REQUIRE(whole.ok());
      CHECK(passes == 3);
      for (uint64_t k : {uint64_t{1}, uint64_t{2}, uint64_t{3}, uint64_t{7}, uint64_t{13}}) {
        SplitRun r = splitStats(L, opt, bytes, s, k, {2, 1}, seed++);
        INFO(k << " parts");
        REQUIRE(r.stats.ok());
        CHECK(r.withPass3 == 1);
        requireSame(r.stats.value(), whole.value());
      }
    }
  // Zero channels (+0 and -0) are redone too (their sums are 0); float16 included.
  const std::vector<Kind> zeros = {Kind::Normal, Kind::Normal, Kind::Normal, Kind::Zero, Kind::Normal};
  for (Storage s : {Storage::Float32, Storage::Float16, Storage::BFloat16}) {
    const ChannelLayout Z{1, 1, 10, 33};
    const std::vector<uint8_t> bytes = encode(makeValues(Z, zeros, 3), s);
    int passes = 0;
    auto whole = wholeStats(Z, {}, bytes, s, &passes);
    REQUIRE(whole.ok());
    CHECK(passes == 3);
    SplitRun r = splitStats(Z, {}, bytes, s, 3, {1}, 9);
    REQUIRE(r.stats.ok());
    CHECK(r.withPass3 == 2);  // channels 3 and 8, in parts [0, 4) and [7, 10)
    requireSame(r.stats.value(), whole.value());
  }
}

TEST_CASE("split: the tensor's min and max are the first extreme in channel order (+0 and -0)", "[stats][split]") {
  // Every value >= 0: channel minima +0 or -0. std::min_element over the channels keeps
  // the first of equal minima, so the tensor min's sign is channel 0's, whichever part
  // holds it and in whatever order the extremes are combined.
  const ChannelLayout L{1, 1, 6, 8};
  for (bool negativeFirst : {false, true}) {
    std::vector<float> v(L.elementCount(), 1.0f);
    v[0 * 8 + 3] = negativeFirst ? -0.0f : 0.0f;
    v[4 * 8 + 5] = negativeFirst ? 0.0f : -0.0f;
    for (Storage s : {Storage::Float32, Storage::Float16, Storage::BFloat16}) {
      const std::vector<uint8_t> bytes = encode(v, s);
      auto whole = wholeStats(L, {}, bytes, s);
      REQUIRE(whole.ok());
      CHECK(std::signbit(whole->tensorMin) == negativeFirst);
      for (uint32_t seed = 0; seed < 4; ++seed) {
        SplitRun r = splitStats(L, {}, bytes, s, 2 + seed % 2, {1}, seed);
        REQUIRE(r.stats.ok());
        requireSame(r.stats.value(), whole.value());
      }
      // The combined extremes themselves: those of one part holding every channel.
      std::vector<PassExtremes> xs;
      for (auto [a, b] : {std::pair<uint64_t, uint64_t>{3, 6}, {0, 3}, {0, 6}}) {
        auto p = LayerStatsBuilder::createPart(L, {}, a, b);
        REQUIRE(p.ok());
        REQUIRE(p->feed(1, bytes.data() + sizeOf(s) * a * 8, a * 8, (b - a) * 8, s).ok());
        xs.push_back(p->extremes().value());
      }
      auto combined = LayerStatsBuilder::combineExtremes(L, {xs[0], xs[1]});
      REQUIRE(combined.ok());
      CHECK(sameBits(combined->min, xs[2].min));
      CHECK(sameBits(combined->max, xs[2].max));
      CHECK(std::signbit(combined->min) == negativeFirst);
    }
  }
}

TEST_CASE("split: NaN, infinite and huge weights in one part are refused as the whole layer refuses them", "[stats][split]") {
  const ChannelLayout L{2, 1, 7, 20};
  const float nan = std::numeric_limits<float>::quiet_NaN(), inf = std::numeric_limits<float>::infinity();
  struct Bad {
    std::vector<std::pair<uint64_t, float>> at;
    bool halves;  // float16 can hold it
  };
  const std::vector<Bad> bads = {
      {{{37, nan}}, true},
      {{{37, -inf}}, true},
      {{{37, inf}, {250, nan}}, true},    // two, in two parts
      {{{0, inf}, {279, -inf}}, true},    // first and last element
      {{{100, 3e15f}}, false},            // above 1e15 (no float16 reaches it)
      {{{100, -2e16f}, {5, nan}}, false}  // NaN first: its refusal wins, as in the whole layer
  };
  for (const Bad& bad : bads) {
    for (Storage s : {Storage::Float32, Storage::Float16, Storage::BFloat16}) {
      if (s == Storage::Float16 && !bad.halves) continue;
      std::vector<float> v = makeValues(L, {Kind::Normal}, 2);
      for (const auto& [i, x] : bad.at) v[i] = x;
      const std::vector<uint8_t> bytes = encode(v, s);
      auto whole = wholeStats(L, {}, bytes, s);
      REQUIRE(!whole.ok());
      INFO(whole.error().message);
      for (uint64_t k : {uint64_t{1}, uint64_t{2}, uint64_t{3}, uint64_t{14}}) {
        SplitRun r = splitStats(L, {}, bytes, s, k, {1, 3}, static_cast<uint32_t>(k));
        REQUIRE(!r.stats.ok());
        CHECK(r.stats.error().code == whole.error().code);
        CHECK(r.stats.error().message == whole.error().message);
      }
    }
  }
}

TEST_CASE("split: where to cut", "[stats][split]") {
  CHECK(ql::stats::splitChannels(10, 3) == std::vector<uint64_t>{0, 4, 7, 10});
  CHECK(ql::stats::splitChannels(4096, 2) == std::vector<uint64_t>{0, 2048, 4096});
  CHECK(ql::stats::splitChannels(3, 7) == std::vector<uint64_t>{0, 1, 2, 3});
  CHECK(ql::stats::splitChannels(5, 0) == std::vector<uint64_t>{0, 5});
  CHECK(ql::stats::checkSplittable({1, 1, 8, 9}).ok());
  CHECK(ql::stats::checkSplittable({3, 1, 8, 9}).ok());
  CHECK(ql::stats::checkSplittable({1, 4, 8, 1}).code == ErrorCode::Unsupported);  // MatMul [K, N]
  CHECK(ql::stats::checkSplittable({2, 3, 4, 5}).code == ErrorCode::Unsupported);  // grouped ConvTranspose
  CHECK(ql::stats::checkSplittable({1, 1, 8, 1}).code == ErrorCode::Unsupported);  // one element per channel: row mode
  CHECK(ql::stats::checkSplittable({1, 1, 0, 9}).code == ErrorCode::Unsupported);
}

TEST_CASE("split: misuse gives error values", "[stats][split]") {
  const ChannelLayout L{1, 1, 6, 10};
  const std::vector<float> values = makeValues(L, {Kind::Normal}, 4);
  const auto* bytes = reinterpret_cast<const uint8_t*>(values.data());

  // Layouts that are not split, and channel ranges that are not parts.
  CHECK(LayerStatsBuilder::createPart({1, 4, 6, 1}, {}, 0, 3).error().code == ErrorCode::Unsupported);
  CHECK(LayerStatsBuilder::createPart({1, 1, 6, 1}, {}, 0, 3).error().code == ErrorCode::Unsupported);
  CHECK(LayerStatsBuilder::createPart(L, {}, 3, 3).error().code == ErrorCode::InvalidArgument);
  CHECK(LayerStatsBuilder::createPart(L, {}, 4, 7).error().code == ErrorCode::InvalidArgument);
  Options bad;
  bad.histogramBins = 0;
  CHECK(LayerStatsBuilder::createPart(L, bad, 0, 3).error().code == ErrorCode::InvalidArgument);

  auto p = LayerStatsBuilder::createPart(L, {}, 2, 5);  // elements [20, 50)
  REQUIRE(p.ok());
  // Pieces outside the part's elements, straddling its ends, not whole runs.
  CHECK(p->feed(1, bytes, 0, 10).code == ErrorCode::InvalidArgument);
  CHECK(p->feed(1, bytes + 4 * 10, 10, 20).code == ErrorCode::InvalidArgument);
  CHECK(p->feed(1, bytes + 4 * 40, 40, 20).code == ErrorCode::InvalidArgument);
  CHECK(p->feed(1, bytes + 4 * 50, 50, 10).code == ErrorCode::InvalidArgument);
  CHECK(p->feed(1, bytes + 4 * 25, 25, 10).code == ErrorCode::InvalidArgument);
  CHECK(p->feed(1, bytes, ~uint64_t{0} - 5, 10).code == ErrorCode::InvalidArgument);
  CHECK(p->feed(1, bytes + 4 * 20, 20, ~uint64_t{0}).code == ErrorCode::InvalidArgument);
  CHECK(p->feed(2, bytes + 4 * 20, 20, 30).code == ErrorCode::InvalidArgument);  // pass out of order
  REQUIRE(p->feed(1, bytes + 4 * 20, 20, 30).ok());
  // Its results before its passes ended; a part finished as a whole layer.
  CHECK(p->takePart().error().code == ErrorCode::InvalidArgument);
  CHECK(p->finish().error().code == ErrorCode::InvalidArgument);
  // Pass 1 ended without the whole tensor's extremes, or with a part's own.
  CHECK(p->endPass(1).code == ErrorCode::InvalidArgument);
  auto own = p->extremes();
  REQUIRE(own.ok());
  CHECK(own->firstChannel == 2);
  CHECK(own->endChannel == 5);
  CHECK(p->endPass(1, &own.value()).code == ErrorCode::InvalidArgument);

  // Extremes that do not cover the channels once.
  PassExtremes a{0, 2, -1, 1, 0}, b{2, 5, -1, 1, 0}, c{5, 6, -1, 1, 0}, d{1, 6, -1, 1, 0};
  CHECK(LayerStatsBuilder::combineExtremes(L, {a, b, c}).ok());
  CHECK(LayerStatsBuilder::combineExtremes(L, {c, a, b}).ok());
  CHECK(LayerStatsBuilder::combineExtremes(L, {a, c}).error().code == ErrorCode::InvalidArgument);  // gap
  CHECK(LayerStatsBuilder::combineExtremes(L, {a, b}).error().code == ErrorCode::InvalidArgument);  // short
  CHECK(LayerStatsBuilder::combineExtremes(L, {a, d}).error().code == ErrorCode::InvalidArgument);  // overlap
  CHECK(LayerStatsBuilder::combineExtremes(L, {a, b, b, c}).error().code == ErrorCode::InvalidArgument);
  CHECK(LayerStatsBuilder::combineExtremes(L, {}).error().code == ErrorCode::InvalidArgument);
  CHECK(LayerStatsBuilder::combineExtremes(L, {PassExtremes{0, 7, 0, 0, 0}}).error().code == ErrorCode::InvalidArgument);

  // A whole builder: no extremes taken or given, no part taken.
  auto w = LayerStatsBuilder::create(L);
  REQUIRE(w.ok());
  REQUIRE(w->feed(1, bytes, 0, 60).ok());
  CHECK(w->extremes().error().code == ErrorCode::InvalidArgument);
  auto whole = LayerStatsBuilder::combineExtremes(L, {a, b, c});
  CHECK(w->endPass(1, &whole.value()).code == ErrorCode::InvalidArgument);
  REQUIRE(w->endPass(1).ok());
  CHECK(w->takePart().error().code == ErrorCode::InvalidArgument);

  // Now end the part's pass 1 properly; extremes are no longer available.
  REQUIRE(p->endPass(1, &whole.value()).ok());
  CHECK(p->extremes().error().code == ErrorCode::InvalidArgument);
}

TEST_CASE("split: merging parts that are missing, overlap or belong elsewhere is refused", "[stats][split]") {
  const ChannelLayout L{1, 1, 6, 10};
  const std::vector<float> values = makeValues(L, {Kind::Normal, Kind::Wide}, 8);
  const auto* bytes = reinterpret_cast<const uint8_t*>(values.data());
  auto build = [&](const ChannelLayout& layout, const Options& opt, uint64_t a, uint64_t b, const PassExtremes& whole) {
    auto p = LayerStatsBuilder::createPart(layout, opt, a, b);
    REQUIRE(p.ok());
    REQUIRE(p->feed(1, bytes + 4 * p->firstElement(), p->firstElement(), p->elementCount()).ok());
    REQUIRE(p->endPass(1, &whole).ok());
    for (int pass = 2; pass <= p->passes(); ++pass) {
      REQUIRE(p->feed(pass, bytes + 4 * p->firstElement(), p->firstElement(), p->elementCount()).ok());
      REQUIRE(p->endPass(pass).ok());
    }
    auto t = p->takePart();
    REQUIRE(t.ok());
    CHECK(p->takePart().error().code == ErrorCode::InvalidArgument);  // taken once
    return t.value();
  };
  // The tensor's extremes: those of one part holding every channel.
  auto all = LayerStatsBuilder::createPart(L, {}, 0, 6);
  REQUIRE(all.ok());
  REQUIRE(all->feed(1, bytes, 0, 60).ok());
  auto whole = LayerStatsBuilder::combineExtremes(L, {all->extremes().value()});
  REQUIRE(whole.ok());
  const LayerStatsPart p0 = build(L, {}, 0, 2, whole.value()), p1 = build(L, {}, 2, 4, whole.value()),
                       p2 = build(L, {}, 4, 6, whole.value());
  const LayerStatsPart p13 = build(L, {}, 1, 3, whole.value());
  REQUIRE(LayerStatsBuilder::mergeParts(L, {}, {p2, p0, p1}).ok());
  auto code = [&](std::vector<LayerStatsPart> parts, const ChannelLayout& layout = ChannelLayout{1, 1, 6, 10},
                  const Options& opt = {}) { return LayerStatsBuilder::mergeParts(layout, opt, std::move(parts)).error().code; };
  CHECK(code({p0, p2}) == ErrorCode::InvalidArgument);          // channels [2, 4) missing
  CHECK(code({p0, p1}) == ErrorCode::InvalidArgument);          // [4, 6) missing
  CHECK(code({p0, p1, p1, p2}) == ErrorCode::InvalidArgument);  // twice
  CHECK(code({p0, p13, p1, p2}) == ErrorCode::InvalidArgument);
  CHECK(code({}) == ErrorCode::InvalidArgument);
  // A part of another layout with the same channel count, or other options.
  const ChannelLayout other{1, 1, 6, 12};
  auto otherWhole = LayerStatsBuilder::combineExtremes(other, {PassExtremes{0, 6, -100, 100, 0}});
  std::vector<float> more(72, 0.5f);
  const LayerStatsPart q1 = [&] {
    auto p = LayerStatsBuilder::createPart(other, {}, 2, 4);
    REQUIRE(p.ok());
    const auto* mb = reinterpret_cast<const uint8_t*>(more.data());
    for (int pass = 1; pass <= p->passes(); ++pass) {
      REQUIRE(p->feed(pass, mb + 4 * p->firstElement(), p->firstElement(), p->elementCount()).ok());
      REQUIRE(p->endPass(pass, pass == 1 ? &otherWhole.value() : nullptr).ok());
    }
    return p->takePart().value();
  }();
  CHECK(code({p0, q1, p2}) == ErrorCode::InvalidArgument);
  Options bins;
  bins.histogramBins = 64;
  CHECK(code({p0, p1, p2}, L, bins) == ErrorCode::InvalidArgument);
  Options block;
  block.blockSize = 16;
  CHECK(code({p0, p1, p2}, L, block) == ErrorCode::InvalidArgument);
  // Malformed arrays.
  LayerStatsPart cut = p1;
  cut.acc.pop_back();
  CHECK(code({p0, cut, p2}) == ErrorCode::InvalidArgument);
  cut = p1;
  cut.histogram.push_back(0);
  CHECK(code({p0, cut, p2}) == ErrorCode::InvalidArgument);
  cut = p1;
  cut.blockNoise.clear();
  CHECK(code({p0, cut, p2}) == ErrorCode::InvalidArgument);
  // A part whose pass 1 ended with extremes other than the tensor's: its scales and
  // bins were not the whole layer's.
  const LayerStatsPart fake = build(L, {}, 2, 4, PassExtremes{0, 6, -100, 100, 0});
  CHECK(code({p0, fake, p2}) == ErrorCode::InvalidArgument);
  PassExtremes signFlipped = whole.value();
  signFlipped.max = -signFlipped.min;
  CHECK(code({p0, build(L, {}, 2, 4, signFlipped), p2}) == ErrorCode::InvalidArgument);
  // Parts of a layout that is not split.
  CHECK(code({p0, p1, p2}, ChannelLayout{1, 10, 6, 1}) == ErrorCode::Unsupported);
}

// ---- LayerAnalyzer over the project's models ------------------------------------------

namespace {

std::vector<uint8_t> readFile(const fs::path& path) {
  std::ifstream f(path, std::ios::binary);
  if (!f) return {};
  return std::vector<uint8_t>((std::istreambuf_iterator<char>(f)), std::istreambuf_iterator<char>());
}

// models/generated, models/fetched and ../shared/models/*/ (each skipped when absent).
std::vector<fs::path> modelFiles() {
  std::vector<fs::path> out;
  std::error_code ec;
  auto add = [&](const fs::path& dir) {
    if (!fs::is_directory(dir, ec)) {
      WARN("skipped: " << dir.string() << " is not available");
      return;
    }
    for (const auto& e : fs::directory_iterator(dir, ec))
      if (e.is_regular_file() && e.path().extension() == ".onnx") out.push_back(e.path());
  };
  const fs::path root(QL_SOURCE_DIR);
  add(root / "models" / "generated");
  add(root / "models" / "fetched");
  const fs::path shared = root / ".." / "shared" / "models";
  if (fs::is_directory(shared, ec)) {
    for (const auto& e : fs::directory_iterator(shared, ec))
      if (e.is_directory()) add(e.path());
  } else {
    WARN("skipped: " << shared.string() << " is not available");
  }
  std::sort(out.begin(), out.end());
  return out;
}

// A layer's external bytes (a file beside the model), empty when inline or unreadable.
std::vector<uint8_t> externalBytes(const ql::graph::Layer& L, const fs::path& model) {
  if (!L.weight->external) return {};
  auto ref = ql::onnx::externalRef(*L.weight);
  if (!ref.ok()) return {};
  const std::vector<uint8_t> f = readFile(model.parent_path() / ref->path);
  const uint64_t len = ref->hasLength ? ref->length : (ref->offset <= f.size() ? f.size() - ref->offset : 0);
  if (ref->offset > f.size() || len > f.size() - ref->offset) return {};
  return std::vector<uint8_t>(f.begin() + static_cast<std::ptrdiff_t>(ref->offset),
                              f.begin() + static_cast<std::ptrdiff_t>(ref->offset + len));
}

using ql::analysis::LayerAnalyzer;

// The layer analysed in `k` parts, fed as analyzeLayer feeds a whole one (stored bytes
// when the float32 values are a view of them, else the converted floats), or with
// `asStored` its stored bytes always (float16 and bfloat16 converted as read, as a
// streamed layer is fed); each part in two pieces, the second first.
ql::Result<ql::analysis::LayerAnalysis> analyzeInParts(const ql::graph::Layer& L, const std::vector<uint8_t>& ext,
                                                       const Options& opt, uint64_t k, bool asStored = false) {
  const ql::onnx::Tensor& w = *L.weight;
  const ql::wire::Bytes extBytes{ext.data(), ext.size()};
  auto values = ql::onnx::readAsFloat(w, extBytes);
  if (!values.ok()) return values.error();
  const bool raw = asStored || values->isView();
  const ql::wire::Bytes stored = w.external ? extBytes : w.rawData;
  const uint64_t available = ql::onnx::storedByteSize(w.dataType, values->count);
  auto cuts = LayerAnalyzer::splitLayer(L, k);
  REQUIRE(cuts.ok());
  std::vector<LayerAnalyzer> parts;
  std::vector<PassExtremes> ext1;
  const uint64_t elem = ql::onnx::dataTypeSize(w.dataType);
  auto feed = [&](LayerAnalyzer& a, const ql::analysis::ChannelPart& c, int pass) {
    // Two pieces at a channel boundary (or one), the later one first.
    const uint64_t channelBytes = c.byteSize / (c.endChannel - c.firstChannel);
    const uint64_t mid = c.firstByte + (c.endChannel - c.firstChannel) / 2 * channelBytes, end = c.firstByte + c.byteSize;
    for (const auto& [from, to] : {std::pair<uint64_t, uint64_t>{mid, end}, std::pair<uint64_t, uint64_t>{c.firstByte, mid}}) {
      if (from == to) continue;
      ql::Error e =
          raw ? a.feed(pass, ql::wire::Bytes{stored.data + from, to - from}, from)
              : a.feedFloats(pass, reinterpret_cast<const float*>(values->bytes) + from / elem, from / elem, (to - from) / elem);
      REQUIRE(e.ok());
    }
  };
  for (const auto& c : cuts.value()) {
    auto a = LayerAnalyzer::createPart(L, opt, available, c.firstChannel, c.endChannel);
    REQUIRE(a.ok());
    REQUIRE(a->firstByte() == c.firstByte);
    REQUIRE(a->byteSize() == c.byteSize);
    feed(a.value(), c, 1);
    auto x = a->extremes();
    REQUIRE(x.ok());
    ext1.push_back(x.value());
    parts.push_back(std::move(a.value()));
  }
  auto whole = LayerStatsBuilder::combineExtremes(L.layout, ext1);
  REQUIRE(whole.ok());
  std::vector<ql::analysis::LayerAnalysisPart> taken;
  for (size_t i = 0; i < parts.size(); ++i) {
    ql::Error e = parts[i].endPass(1, &whole.value());
    if (!e.ok()) return e;
    for (int pass = 2; pass <= parts[i].passes(); ++pass) {
      feed(parts[i], cuts.value()[i], pass);
      REQUIRE(parts[i].endPass(pass).ok());
    }
    auto t = parts[i].takePart();
    REQUIRE(t.ok());
    taken.push_back(std::move(t.value()));
  }
  std::reverse(taken.begin(), taken.end());
  return LayerAnalyzer::mergeParts(L, opt, std::move(taken));
}

}  // namespace

TEST_CASE("split: every splittable layer of the project's models, in 2 and 3 parts, gives analyzeLayer's bits",
          "[analysis][split]") {
  std::vector<Options> opts(2);
  opts[1].blockSize = 48;
  opts[1].histogramBins = 37;
  size_t layers = 0, compared = 0, refused = 0, models = 0, halves = 0;
  for (const fs::path& path : modelFiles()) {
    const std::vector<uint8_t> bytes = readFile(path);
    auto model = ql::onnx::parseModel(bytes.data(), bytes.size());
    if (!model.ok()) continue;
    auto found = ql::graph::findLayers(model.value());
    if (!found.ok()) continue;
    ++models;
    for (const ql::graph::Layer& L : found->layers) {
      ++layers;
      INFO(path.string() << ": layer " << L.name);
      if (!LayerAnalyzer::checkSplittable(L).ok()) {
        CHECK(LayerAnalyzer::checkSplittable(L).code == ErrorCode::Unsupported);
        CHECK(LayerAnalyzer::splitLayer(L, 2).error().code == ErrorCode::Unsupported);
        CHECK(LayerAnalyzer::createPart(L, {}, ~uint64_t{0}, 0, 1).error().code == ErrorCode::Unsupported);
        ++refused;
        continue;
      }
      const std::vector<uint8_t> ext = externalBytes(L, path);
      for (const Options& opt : opts) {
        auto whole = ql::analysis::analyzeLayer(L, ql::wire::Bytes{ext.data(), ext.size()}, opt);
        for (uint64_t k : {uint64_t{2}, uint64_t{3}}) {
          auto split = analyzeInParts(L, ext, opt, k);
          INFO(k << " parts; whole: " << whole.error().describe() << "; split: " << split.error().describe());
          REQUIRE(split.ok() == whole.ok());
          if (!whole.ok()) {
            CHECK(split.error().message == whole.error().message);
            continue;
          }
          requireSame(split.value(), whole.value());
        }
        // float16 / bfloat16 stored bytes fed as such (analyzeLayer converts them first).
        const int32_t type = L.weight->dataType;
        if (whole.ok() && (type == ql::onnx::kFloat16 || type == ql::onnx::kBFloat16) &&
            (L.weight->hasRawData || L.weight->external)) {
          auto split = analyzeInParts(L, ext, opt, 3, true);
          INFO("3 parts fed stored bytes: " << split.error().describe());
          REQUIRE(split.ok());
          requireSame(split.value(), whole.value());
          halves += &opt == &opts[0];
        }
      }
      ++compared;
    }
  }
  WARN(compared << " of " << layers << " layers in " << models << " models compared in 2 and 3 parts (" << halves
                << " of them float16 or bfloat16 fed as stored too); " << refused << " not splittable");
  CHECK(compared > 0);
}

TEST_CASE("split: quantized and row-mode layers are not analysed in parts", "[analysis][split]") {
  const fs::path path = fs::path(QL_SOURCE_DIR) / "models" / "generated" / "qdq.onnx";
  const std::vector<uint8_t> bytes = readFile(path);
  if (bytes.empty()) {
    WARN("skipped: " << path.string() << " is not available");
    return;
  }
  auto model = ql::onnx::parseModel(bytes.data(), bytes.size());
  REQUIRE(model.ok());
  auto found = ql::graph::findLayers(model.value());
  REQUIRE(found.ok());
  size_t quantized = 0;
  for (const ql::graph::Layer& L : found->layers) {
    if (!L.quant.present) continue;
    ++quantized;
    const ql::Error e = LayerAnalyzer::checkSplittable(L);
    CHECK(e.code == ErrorCode::Unsupported);
    CHECK(e.message.find("not quantized") != std::string::npos);
    CHECK(LayerAnalyzer::mergeParts(L, {}, {}).error().code == ErrorCode::Unsupported);
  }
  CHECK(quantized > 0);
}
