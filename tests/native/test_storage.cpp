// Statistics fed float16 or bfloat16 bytes, converted to float32 as they are read, must
// equal the statistics of the same values converted first by the scalar converters
// (onnx::halfToFloat, onnx::bfloat16ToFloat), bit for bit: every finite half and every
// bfloat16 below the analysed magnitude, on a row-mode and a run-mode layout, fed in
// pieces of odd sizes; and a non-finite value is refused the same way.
#include <catch2/catch.hpp>
#include <cstdint>
#include <cstring>
#include <string>
#include <tuple>
#include <vector>

#include "onnx/tensor_data.hpp"
#include "same_stats.hpp"
#include "stats/input_channels.hpp"
#include "stats/stats.hpp"

using ql::stats::ChannelLayout;
using ql::stats::InputChannelAbsMax;
using ql::stats::InputChannelShape;
using ql::stats::LayerStats;
using ql::stats::LayerStatsBuilder;
using ql::stats::Storage;

namespace {

// Every pass over `bytes` (elements of `size` bytes), in pieces of `units` units.
ql::Result<LayerStats> build(const ChannelLayout& L, const uint8_t* bytes, size_t size, Storage storage, uint64_t units) {
  auto b = LayerStatsBuilder::create(L);
  REQUIRE(b.ok());
  const uint64_t n = b->elementCount(), step = b->unitElements() * units;
  for (int pass = 1; pass <= b->passes(); ++pass) {
    for (uint64_t first = 0; first < n; first += step) {
      const uint64_t count = std::min(step, n - first);
      ql::Error e = b->feed(pass, bytes + size * first, first, count, storage);
      if (!e.ok()) return e;
    }
    ql::Error e = b->endPass(pass);
    if (!e.ok()) return e;
  }
  return b->finish();
}

// The 16-bit patterns `keep` accepts, in a scrambled order (so that channels mix
// magnitudes), with their float32 values from the scalar converter.
template <class Keep, class Convert>
void patterns(Keep keep, Convert convert, std::vector<uint16_t>* bits, std::vector<float>* values) {
  for (uint32_t i = 0; i < 65536; ++i) {
    const uint16_t h = static_cast<uint16_t>((i * 40503u) & 0xffffu);  // odd multiplier: a permutation
    if (keep(h)) bits->push_back(h);
  }
  for (uint16_t h : *bits) values->push_back(convert(h));
}

void compareLayouts(const std::vector<uint16_t>& bits, const std::vector<float>& values, Storage storage, uint64_t channels) {
  const uint64_t n = bits.size();
  REQUIRE(n % channels == 0);
  const auto* raw = reinterpret_cast<const uint8_t*>(bits.data());
  const auto* f32 = reinterpret_cast<const uint8_t*>(values.data());
  const ChannelLayout row{1, n / channels, channels, 1}, run{1, 1, channels, n / channels};
  for (const ChannelLayout& L : {row, run}) {
    for (uint64_t units : {uint64_t{1}, uint64_t{37}, uint64_t{1} << 20}) {
      auto a = build(L, raw, 2, storage, units);
      auto b = build(L, f32, 4, Storage::Float32, units);
      REQUIRE(a.ok());
      REQUIRE(b.ok());
      requireSame(a.value(), b.value());
    }
  }
  // Input channels: rows of the [n / channels, channels] matrix, then its columns.
  for (int axis : {0, 1}) {
    InputChannelShape s;
    s.dims = {static_cast<int64_t>(n / channels), static_cast<int64_t>(channels)};
    s.axis = axis;
    s.outputAxis = 1 - axis;
    auto a = InputChannelAbsMax::create(s), b = InputChannelAbsMax::create(s);
    REQUIRE(a.ok());
    REQUIRE(b.ok());
    for (uint64_t first = 0; first < n; first += 1001) {
      const uint64_t count = std::min<uint64_t>(1001, n - first);
      a->feed(raw + 2 * first, first, count, storage);
      b->feed(f32 + 4 * first, first, count);
    }
    CHECK(sameBits(a->finish().absMax, b->finish().absMax));
  }
}

}  // namespace

TEST_CASE("storage: every finite float16, converted as read, gives the float32 statistics", "[stats][storage]") {
  std::vector<uint16_t> bits;
  std::vector<float> values;
  patterns([](uint16_t h) { return (h & 0x7c00) != 0x7c00; }, ql::onnx::halfToFloat, &bits, &values);
  REQUIRE(bits.size() == 63488);  // 2048 * 31
  compareLayouts(bits, values, Storage::Float16, 31);
}

TEST_CASE("storage: every bfloat16 below 1e15, converted as read, gives the float32 statistics", "[stats][storage]") {
  std::vector<uint16_t> bits;
  std::vector<float> values;
  // exponent fields below 176 (2^49 > 1e15 > 2^48 * (2 - 2^-7)): |x| < 2^49
  patterns([](uint16_t b) { return ((b >> 7) & 0xff) < 176 && ql::onnx::bfloat16ToFloat(b) < 1e15f; }, ql::onnx::bfloat16ToFloat,
           &bits, &values);
  REQUIRE(bits.size() % 11 == 0);
  compareLayouts(bits, values, Storage::BFloat16, 11);
}

TEST_CASE("storage: a non-finite float16 or bfloat16 is refused as a float32 one is", "[stats][storage]") {
  // +inf, -inf, NaN, the largest NaN patterns (float16), in row and run mode, alone and
  // with a second one in a later piece; the finite extremes +-65504 beside them.
  for (uint16_t special : {uint16_t{0x7c00}, uint16_t{0xfc00}, uint16_t{0x7e00}, uint16_t{0x7fff}, uint16_t{0xffff}}) {
    for (const ChannelLayout L : {ChannelLayout{1, 16, 4, 1}, ChannelLayout{1, 1, 4, 16}}) {
      for (bool two : {false, true}) {
        std::vector<uint16_t> bits(64, 0x3c00);  // 1.0
        bits[0] = 0x7bff;                        // 65504
        bits[1] = 0xfbff;                        // -65504
        bits[13] = special;
        if (two) bits[60] = 0x7c00;
        std::vector<float> values;
        for (uint16_t h : bits) values.push_back(ql::onnx::halfToFloat(h));
        auto a = build(L, reinterpret_cast<const uint8_t*>(bits.data()), 2, Storage::Float16, 3);
        auto b = build(L, reinterpret_cast<const uint8_t*>(values.data()), 4, Storage::Float32, 3);
        REQUIRE(!a.ok());
        REQUIRE(!b.ok());
        CHECK(a.error().message == b.error().message);
        CHECK(a.error().message.find(two ? "2 of 64" : "1 of 64") != std::string::npos);
      }
    }
  }
  std::vector<uint16_t> bf(64, 0x3f80);  // 1.0
  bf[5] = 0x7f80;                        // +inf (bfloat16)
  auto c = build(ChannelLayout{1, 1, 4, 16}, reinterpret_cast<const uint8_t*>(bf.data()), 2, Storage::BFloat16, 1);
  REQUIRE(!c.ok());
  CHECK(c.error().message.find("NaN or infinite") != std::string::npos);
}

TEST_CASE("storage: row-mode statistics do not depend on where the pieces end", "[stats][storage]") {
  // A MatMul [K, N] weight (channels last) streamed in pieces of whole rows gives the
  // statistics of the weight fed whole, bit for bit, wherever the pieces end: a weight read
  // in 4 MB pieces from a file, read whole from a Blob, or held in memory. The float
  // partial sums go into the double ones every 256 rows of the block, not at piece ends
  // (they did: a 5.6 MB fp16 gate_proj gave other means and SQNRs read from a Blob).
  uint32_t seed = 12345;
  auto next = [&seed] { return seed = seed * 1664525u + 1013904223u; };
  for (const ChannelLayout L : {ChannelLayout{1, 1000, 37, 1}, ChannelLayout{2, 300, 9, 1}, ChannelLayout{1, 700, 1030, 1}}) {
    INFO("layout {" << L.outer << ", " << L.rows << ", " << L.channels << ", " << L.inner << "}");
    const uint64_t n = L.elementCount();
    std::vector<uint16_t> half(n);
    std::vector<float> f32(n);
    for (uint64_t i = 0; i < n; ++i) {
      // finite halves of magnitudes 2^-10 .. 2^5, some channels ten times wider
      const uint32_t r = next();
      const uint32_t e = 5 + (r >> 8) % 16 + ((i % L.channels) % 5 == 2 ? 3 : 0);
      half[i] = static_cast<uint16_t>((r & 0x8000u) | (e << 10) | (r >> 20 & 0x3ffu));
      f32[i] = ql::onnx::halfToFloat(half[i]) * 1.0009765625f;  // a float32 value no half holds
    }
    for (const auto& [bytes, size, storage] : {std::tuple{reinterpret_cast<const uint8_t*>(half.data()), 2, Storage::Float16},
                                               std::tuple{reinterpret_cast<const uint8_t*>(f32.data()), 4, Storage::Float32}}) {
      auto whole = build(L, bytes, size, storage, uint64_t{1} << 40);
      REQUIRE(whole.ok());
      for (uint64_t rows :
           {uint64_t{1}, uint64_t{7}, uint64_t{255}, uint64_t{256}, uint64_t{257}, uint64_t{299}, uint64_t{300}, uint64_t{762}}) {
        INFO("pieces of " << rows << " rows, " << size << "-byte values");
        auto pieces = build(L, bytes, size, storage, rows);
        REQUIRE(pieces.ok());
        requireSame(pieces.value(), whole.value());
      }
    }
  }
}
