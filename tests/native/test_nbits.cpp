// MatMulNBits unpacking (analysis/nbits.hpp): nibble order, partial last blocks, zero
// points, and bad sizes as error values (never a read out of bounds). The expected
// values are computed here element by element from the format's definition
// (W[k][n] = (code - zp) * scale of block (n, k / block_size)), independently of the
// column-wise loop under test; tests/js/nbits.test.mjs checks the same semantics
// against onnxruntime-node.
#include <catch2/catch.hpp>
#include <cstdint>
#include <vector>

#include "analysis/analyze.hpp"
#include "analysis/nbits.hpp"
#include "compare/compare.hpp"
#include "graph/layers.hpp"
#include "onnx/model.hpp"
#include "pb_writer.hpp"

using ql::analysis::dequantizeNBitsColumns;
using ql::analysis::makeNBitsShape;
using ql::analysis::NBitsShape;
using ql::analysis::unpackNBitsZeroPoints;

namespace {

// Packs codes[n][k] (K per column) as MatMulNBits B: per column, per block of
// blockSize codes (the last one padded with `pad`), low bits first.
std::vector<uint8_t> pack(const NBitsShape& s, const std::vector<std::vector<int>>& codes, int pad) {
  std::vector<uint8_t> b(s.byteSize(), 0);
  for (uint64_t n = 0; n < s.N; ++n) {
    for (uint64_t i = 0; i < s.blocksPerCol * s.blockSize; ++i) {
      const int c = i < s.K ? codes[n][i] : pad;
      const uint64_t byte = n * s.columnBytes() + i * s.bits / 8;
      if (s.bits == 8) {
        b[byte] = static_cast<uint8_t>(c);
      } else {
        b[byte] |= static_cast<uint8_t>(c << ((i % 2) * 4));
      }
    }
  }
  return b;
}

}  // namespace

TEST_CASE("nbits: attributes are checked") {
  CHECK(makeNBitsShape(64, 3, 4, 32).ok());
  CHECK(makeNBitsShape(64, 3, 8, 16).ok());
  CHECK_FALSE(makeNBitsShape(64, 3, 2, 32).ok());  // 2 bits: not read
  CHECK_FALSE(makeNBitsShape(64, 3, 3, 32).ok());
  CHECK_FALSE(makeNBitsShape(64, 3, 4, 24).ok());  // not a power of two
  CHECK_FALSE(makeNBitsShape(64, 3, 4, 8).ok());   // below 16
  CHECK_FALSE(makeNBitsShape(0, 3, 4, 32).ok());
  CHECK_FALSE(makeNBitsShape(64, -1, 4, 32).ok());
  CHECK_FALSE(makeNBitsShape(int64_t{1} << 62, int64_t{1} << 62, 4, 32).ok());  // overflows
  auto s = makeNBitsShape(70, 3, 4, 32);
  REQUIRE(s.ok());
  CHECK(s->blocksPerCol == 3);
  CHECK(s->blobSize == 16);
  CHECK(s->byteSize() == 3 * 3 * 16);
  CHECK(s->zeroPointBytesPerColumn() == 2);
}

TEST_CASE("nbits: 4-bit codes, low nibble first, partial last block, default zero point") {
  auto s = makeNBitsShape(37, 2, 4, 16);  // 3 blocks per column, the last holds 5 codes
  REQUIRE(s.ok());
  std::vector<std::vector<int>> codes(2, std::vector<int>(37));
  for (int n = 0; n < 2; ++n)
    for (int k = 0; k < 37; ++k) codes[n][k] = (k * 7 + n * 3) % 16;
  const auto b = pack(s.value(), codes, 15);
  std::vector<double> scales = {0.5, -0.25, 2.0, 1.0, 0.125, -3.0};
  std::vector<float> out(2 * 37);
  REQUIRE(dequantizeNBitsColumns(s.value(), b.data(), b.size(), 0, 2, scales, {}, out.data()).ok());
  for (int n = 0; n < 2; ++n)
    for (int k = 0; k < 37; ++k) CHECK(out[n * 37 + k] == static_cast<float>((codes[n][k] - 8) * scales[n * 3 + k / 16]));
  // Nibble order, by hand: byte 0 of column 0 holds k = 0 (low) and k = 1 (high).
  CHECK(out[0] == static_cast<float>(((b[0] & 15) - 8) * 0.5));
  CHECK(out[1] == static_cast<float>(((b[0] >> 4) - 8) * 0.5));
  // One column at a time, from its own bytes.
  std::vector<float> one(37);
  REQUIRE(dequantizeNBitsColumns(s.value(), b.data() + s->columnBytes(), s->columnBytes(), 1, 1, scales, {}, one.data()).ok());
  for (int k = 0; k < 37; ++k) CHECK(one[k] == out[37 + k]);
}

TEST_CASE("nbits: 8-bit codes with packed zero points") {
  auto s = makeNBitsShape(40, 3, 8, 16);  // 3 blocks, last one partial
  REQUIRE(s.ok());
  std::vector<std::vector<int>> codes(3, std::vector<int>(40));
  for (int n = 0; n < 3; ++n)
    for (int k = 0; k < 40; ++k) codes[n][k] = (k * 37 + n * 101) % 256;
  const auto b = pack(s.value(), codes, 0);
  std::vector<double> scales(9), packedZp(9);
  for (int i = 0; i < 9; ++i) scales[i] = 0.01 * (i + 1), packedZp[i] = 120 + i;
  auto zp = unpackNBitsZeroPoints(s.value(), packedZp);
  REQUIRE(zp.ok());
  CHECK(zp.value() == packedZp);  // 8 bits: one byte per block
  std::vector<float> out(3 * 40);
  REQUIRE(dequantizeNBitsColumns(s.value(), b.data(), b.size(), 0, 3, scales, zp.value(), out.data()).ok());
  for (int n = 0; n < 3; ++n)
    for (int k = 0; k < 40; ++k)
      CHECK(out[n * 40 + k] == static_cast<float>(codes[n][k] - packedZp[n * 3 + k / 16]) *
                                   static_cast<float>(scales[n * 3 + k / 16]));  // in float32, as ORT computes
}

TEST_CASE("nbits: 4-bit zero points, two per byte, odd block count padded per column") {
  auto s = makeNBitsShape(48, 2, 4, 16);  // 3 blocks: 2 bytes of zero points per column
  REQUIRE(s.ok());
  // column 0: zp 1, 2, 3 -> bytes 0x21, 0x?3 (pad nibble 8); column 1: 9, 10, 11.
  std::vector<double> packed = {0x21, 0x83, 0xA9, 0x8B};
  auto zp = unpackNBitsZeroPoints(s.value(), packed);
  REQUIRE(zp.ok());
  CHECK(zp.value() == std::vector<double>{1, 2, 3, 9, 10, 11});
  CHECK_FALSE(unpackNBitsZeroPoints(s.value(), {0x21, 0x83, 0xA9}).ok());  // too short
  CHECK_FALSE(unpackNBitsZeroPoints(s.value(), {1, 2, 3, 4, 5, 6}).ok());  // the float layout's count, not packed
}

TEST_CASE("nbits: bad sizes are errors, never out-of-bounds reads") {
  auto s = makeNBitsShape(32, 2, 4, 32);
  REQUIRE(s.ok());
  std::vector<uint8_t> b(s->byteSize(), 0x88);
  std::vector<double> scales = {1.0, 1.0};
  std::vector<float> out(64);
  CHECK(dequantizeNBitsColumns(s.value(), b.data(), b.size(), 0, 2, scales, {}, out.data()).ok());
  // truncated B
  CHECK_FALSE(dequantizeNBitsColumns(s.value(), b.data(), b.size() - 1, 0, 2, scales, {}, out.data()).ok());
  // columns beyond N
  CHECK_FALSE(dequantizeNBitsColumns(s.value(), b.data(), b.size(), 1, 2, scales, {}, out.data()).ok());
  // truncated scales, wrong zero-point count
  CHECK_FALSE(dequantizeNBitsColumns(s.value(), b.data(), b.size(), 0, 2, {1.0}, {}, out.data()).ok());
  CHECK_FALSE(dequantizeNBitsColumns(s.value(), b.data(), b.size(), 0, 2, scales, {8.0}, out.data()).ok());
}

// A MatMulNBits model read end to end: discovery, the whole-weight analysis, the same
// analysis fed a column at a time in reverse order (how a streamed weight arrives), the
// dequantized values, and a compare against a float MatMul of the same square shape.

TEST_CASE("nbits: a MatMulNBits node is a layer, analysed whole or a column at a time") {
  namespace pb = pbw::onnx;
  const int64_t K = 40, N = 40, block = 16;  // square, and K is not a multiple of the block
  auto s = makeNBitsShape(K, N, 4, block);
  REQUIRE(s.ok());
  std::vector<std::vector<int>> codes(N, std::vector<int>(K));
  for (int n = 0; n < N; ++n)
    for (int k = 0; k < K; ++k) codes[n][k] = (k * 5 + n * 11 + (k * n) % 7) % 16;
  const auto b = pack(s.value(), codes, 0);
  std::vector<float> scales(N * 3);
  for (size_t i = 0; i < scales.size(); ++i) scales[i] = 0.01f * static_cast<float>(i % 9 + 1) * (i % 2 ? -1.0f : 1.0f);
  pb::GraphBuilder g;
  g.input("A", {1, K}).output("Y");
  g.init(pb::rawTensor("B", ql::onnx::kUint8, {N, 3, 8}, std::string(b.begin(), b.end())));
  g.init(pb::floatTensor("S", {N * 3}, scales));
  g.add(pb::node("MatMulNBits", {"A", "B", "S"}, {"Y"}, "q",
                 {pb::attrInt("K", K), pb::attrInt("N", N), pb::attrInt("bits", 4), pb::attrInt("block_size", block)},
                 "com.microsoft"));
  const auto bytes = pb::toVec(pb::model(g.build()));
  auto m = ql::onnx::parseModel(bytes.data(), bytes.size());
  REQUIRE(m.ok());
  auto d = ql::graph::findLayers(m.value());
  REQUIRE(d.ok());
  REQUIRE(d->layers.size() == 1);
  const auto& L = d->layers[0];
  CHECK(L.shape == std::vector<int64_t>{N, K});
  CHECK(L.channelAxis == 0);
  CHECK(L.layout.channelCount() == static_cast<uint64_t>(N));
  CHECK(L.quant.blockwise());

  auto values = ql::analysis::layerWeightValues(L, {});
  REQUIRE(values.ok());
  for (int n = 0; n < N; ++n)
    for (int k = 0; k < K; ++k)
      CHECK(values.value()[n * K + k] == static_cast<float>(codes[n][k] - 8) * scales[n * 3 + k / block]);

  const ql::stats::Options opts;
  auto whole = ql::analysis::analyzeLayer(L, {}, opts);
  REQUIRE(whole.ok());
  CHECK(whole->quant.bits == 4);
  CHECK(whole->quant.blockSize == block);
  CHECK(whole->quant.symmetric);
  CHECK(whole->quant.zeroPoint == std::vector<double>{8.0});
  auto a = ql::analysis::LayerAnalyzer::create(L, opts, b.size());
  REQUIRE(a.ok());
  CHECK(a->byteSize() == b.size());
  const uint64_t unit = a->unitBytes();
  REQUIRE(unit == s->columnBytes());
  for (int pass = 1; pass <= a->passes(); ++pass) {
    for (uint64_t off = b.size(); off > 0; off -= unit)
      REQUIRE(a->feed(pass, ql::wire::Bytes{b.data() + off - unit, unit}, off - unit).ok());
    REQUIRE(a->endPass(pass).ok());
  }
  // A piece that is not whole columns is refused.
  auto bad = ql::analysis::LayerAnalyzer::create(L, opts, b.size());
  REQUIRE(bad.ok());
  CHECK_FALSE(bad->feed(1, ql::wire::Bytes{b.data(), unit - 1}, 0).ok());
  CHECK_FALSE(bad->feed(1, ql::wire::Bytes{b.data() + 1, unit}, 1).ok());
  // Fewer bytes than B needs: an error before anything is read.
  CHECK_FALSE(ql::analysis::LayerAnalyzer::create(L, opts, b.size() - 1).ok());
  auto pieces = a->finish();
  REQUIRE(pieces.ok());
  CHECK(pieces->stats.min == whole->stats.min);
  CHECK(pieces->stats.max == whole->stats.max);
  CHECK(pieces->stats.std == whole->stats.std);
  CHECK(pieces->stats.histogram == whole->stats.histogram);

  // Against a float MatMul [K, N]: the same shape read naively, but transposed values.
  pb::GraphBuilder f;
  f.input("A", {1, K}).output("Y");
  f.init(pb::floatTensor("W", {K, N}, std::vector<float>(K * N, 0.5f)));
  f.add(pb::node("MatMul", {"A", "W"}, {"Y"}, "q"));
  const auto fbytes = pb::toVec(pb::model(f.build()));
  auto fm = ql::onnx::parseModel(fbytes.data(), fbytes.size());
  REQUIRE(fm.ok());
  auto fd = ql::graph::findLayers(fm.value());
  REQUIRE(fd.ok());
  REQUIRE(fd->layers.size() == 1);
  CHECK(ql::compare::incompatibility(L, fd->layers[0]).find("lay the values out differently") != std::string::npos);
}
