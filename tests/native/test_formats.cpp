// Weight formats beyond the byte-aligned integers: float8 (the four ONNX types), int4 /
// uint4 (two per byte), DequantizeLinear with block_size (opset 21), and their bad forms
// as error values. Expected values are worked out here from the specifications' words
// (the ONNX "Float8 types" page, onnx.proto's packing rule, DequantizeLinear's definition);
// tests/js/dqblock.test.mjs checks the same against onnxruntime on all 256 float8 codes and
// on real weights.
#include <algorithm>
#include <catch2/catch.hpp>
#include <cmath>
#include <cstdint>
#include <string>
#include <vector>

#include "analysis/analyze.hpp"
#include "graph/layers.hpp"
#include "onnx/model.hpp"
#include "onnx/tensor_data.hpp"
#include "pb_writer.hpp"

using ql::ErrorCode;
using namespace ql::onnx;
namespace pb = pbw::onnx;
using pbw::Msg;

namespace {

struct Parsed {
  std::vector<uint8_t> bytes;
  ql::Result<Model> m;
  explicit Parsed(const Msg& model) : bytes(pb::toVec(model)), m(parseModel(bytes.data(), bytes.size())) {}
};

Msg modelWith(const Msg& t) {
  pb::GraphBuilder g;
  g.init(t);
  return pb::model(g.build(), 10, 21);
}

// x -> MatMul(x, DequantizeLinear(W, s[, z])) with the given attributes.
Msg dqMatMul(const Msg& w, const Msg& s, const Msg* z, const std::vector<Msg>& attrs) {
  pb::GraphBuilder g;
  g.init(w).init(s);
  std::vector<std::string> in = {"W", "S"};
  if (z) {
    g.init(*z);
    in.push_back("Z");
  }
  g.add(pb::node("DequantizeLinear", in, {"Wd"}, "dq", attrs));
  g.add(pb::node("MatMul", {"x", "Wd"}, {"y"}, "mm"));
  return pb::model(g.build(), 10, 21);
}

std::string packNibbles(const std::vector<int>& v) {
  std::string out((v.size() + 1) / 2, '\0');
  for (size_t i = 0; i < v.size(); ++i) out[i / 2] = static_cast<char>(out[i / 2] | ((v[i] & 15) << (i % 2 ? 4 : 0)));
  return out;
}

}  // namespace

TEST_CASE("float8: codes decoded as the ONNX spec's Float8 page gives them", "[formats][float8]") {
  // {type, code, value}: by hand, sign * 2^(e - bias) * (1 + m / 2^M), subnormal when e = 0.
  struct C {
    int32_t type;
    unsigned code;
    float value;
  };
  const C cases[] = {
      {kFloat8E4M3FN, 0x00, 0.0f},       {kFloat8E4M3FN, 0x38, 1.0f},         // e = 7 = bias
      {kFloat8E4M3FN, 0x7E, 448.0f},     {kFloat8E4M3FN, 0xFE, -448.0f},      // the largest: 2^8 * 1.75
      {kFloat8E4M3FN, 0x01, 0x1p-9f},    {kFloat8E4M3FN, 0x07, 7 * 0x1p-9f},  // subnormals: m/8 * 2^-6
      {kFloat8E4M3FN, 0x08, 0x1p-6f},    {kFloat8E4M3FN, 0x78, 256.0f},       // S.1111.000 is a number
      {kFloat8E4M3FNUZ, 0x40, 1.0f},     {kFloat8E4M3FNUZ, 0x7F, 240.0f},     // bias 8: 2^7 * 1.875
      {kFloat8E4M3FNUZ, 0x01, 0x1p-10f}, {kFloat8E4M3FNUZ, 0xC0, -1.0f},      //
      {kFloat8E5M2, 0x3C, 1.0f},         {kFloat8E5M2, 0x7B, 57344.0f},       // 2^15 * 1.75
      {kFloat8E5M2, 0x01, 0x1p-16f},     {kFloat8E5M2, 0x04, 0x1p-14f},       // subnormal m/4 * 2^-14
      {kFloat8E5M2FNUZ, 0x40, 1.0f},     {kFloat8E5M2FNUZ, 0x7F, 57344.0f},   // bias 16: e = 31 is a number
      {kFloat8E5M2FNUZ, 0x01, 0x1p-17f}, {kFloat8E5M2FNUZ, 0xFF, -57344.0f},  //
      {kFloat8E5M2, 0x7C, INFINITY},     {kFloat8E5M2, 0xFC, -INFINITY},      // IEEE-style infinities
      {kFloat8E4M3FN, 0x80, -0.0f},      {kFloat8E5M2, 0x80, -0.0f},          // negative zero exists
  };
  for (const C& c : cases) {
    INFO(dataTypeName(c.type) << " code " << c.code);
    const float v = float8ToFloat(c.type, static_cast<uint8_t>(c.code));
    CHECK(v == c.value);
    CHECK(std::signbit(v) == std::signbit(c.value));
  }
  // NaN: S.1111.111 (E4M3FN), S.11111.{01,10,11} (E5M2), 0x80 alone (FNUZ: no negative zero).
  for (unsigned code : {0x7Fu, 0xFFu}) CHECK(std::isnan(float8ToFloat(kFloat8E4M3FN, static_cast<uint8_t>(code))));
  for (unsigned code : {0x7Du, 0x7Eu, 0x7Fu, 0xFDu, 0xFEu, 0xFFu})
    CHECK(std::isnan(float8ToFloat(kFloat8E5M2, static_cast<uint8_t>(code))));
  for (int32_t t : {kFloat8E4M3FNUZ, kFloat8E5M2FNUZ}) {
    int nans = 0;
    for (unsigned code = 0; code < 256; ++code) nans += std::isnan(float8ToFloat(t, static_cast<uint8_t>(code)));
    CHECK(nans == 1);
    CHECK(std::isnan(float8ToFloat(t, 0x80)));
  }
  // Counts over all 256 codes: NaNs and infinities per type.
  auto count = [](int32_t t, bool (*pred)(float)) {
    int n = 0;
    for (unsigned code = 0; code < 256; ++code) n += pred(float8ToFloat(t, static_cast<uint8_t>(code)));
    return n;
  };
  auto isNan = [](float v) { return std::isnan(v); };
  auto isInf = [](float v) { return std::isinf(v); };
  CHECK(count(kFloat8E4M3FN, isNan) == 2);
  CHECK(count(kFloat8E5M2, isNan) == 6);
  CHECK(count(kFloat8E5M2, isInf) == 2);
  CHECK(count(kFloat8E4M3FN, isInf) + count(kFloat8E4M3FNUZ, isInf) + count(kFloat8E5M2FNUZ, isInf) == 0);
}

TEST_CASE("float8: tensors in raw_data and int32_data read as float", "[formats][float8]") {
  Parsed raw(modelWith(pb::rawTensor("f", kFloat8E4M3FN, {3}, std::string("\x38\xC0\x7E", 3))));
  REQUIRE(raw.m.ok());
  auto v = readAsFloat(raw.m->graph.initializers[0]);
  REQUIRE(v.ok());
  CHECK(v->take() == std::vector<float>{1.0f, -2.0f, 448.0f});
  Msg typed = pb::tensorHeader("f", kFloat8E5M2, {2});
  typed.packedVarints(pb::kInt32Data, {0x3C, 0xBC});
  Parsed t(modelWith(typed));
  REQUIRE(t.m.ok());
  auto d = readAsDouble(t.m->graph.initializers[0]);
  REQUIRE(d.ok());
  CHECK(d.value() == std::vector<double>{1.0, -1.0});
}

TEST_CASE("int4 / uint4: two per byte, low nibble first, odd counts padded", "[formats][int4]") {
  // int4 -8..7 in two's complement; element 2i in the low nibble of byte i.
  const std::vector<int> vals = {-8, 7, -1, 0, 3};  // 5 elements: 3 bytes, the last high nibble is padding
  std::string bytes = packNibbles(vals);
  bytes[2] = static_cast<char>(bytes[2] | 0xF0);  // padding holds anything
  Parsed p(modelWith(pb::rawTensor("w", kInt4, {5}, bytes)));
  REQUIRE(p.m.ok());
  const Tensor& t = p.m->graph.initializers[0];
  CHECK(storedByteSize(kInt4, 5) == 3);
  CHECK(expectedByteSize(t) == 3);
  auto v = readAsFloat(t);
  REQUIRE(v.ok());
  CHECK(v->take() == std::vector<float>{-8, 7, -1, 0, 3});
  Parsed u(modelWith(pb::rawTensor("u", kUint4, {4}, std::string("\xF0\x9A", 2))));
  REQUIRE(u.m.ok());
  auto uv = readAsDouble(u.m->graph.initializers[0]);
  REQUIRE(uv.ok());
  CHECK(uv.value() == std::vector<double>{0, 15, 10, 9});
  // int32_data: one packed byte per value, (count + 1) / 2 values.
  Msg typed = pb::tensorHeader("w", kInt4, {3});
  typed.packedVarints(pb::kInt32Data, {0x9F, 0x05});  // -1, -7 | 5, (pad)
  Parsed ty(modelWith(typed));
  REQUIRE(ty.m.ok());
  auto tv = readAsFloat(ty.m->graph.initializers[0]);
  REQUIRE(tv.ok());
  CHECK(tv->take() == std::vector<float>{-1, -7, 5});
  // convertRaw from a byte boundary (how streamed pieces are decoded).
  float out[2];
  convertRaw(kInt4, reinterpret_cast<const uint8_t*>(bytes.data()) + 1, 2, out);
  CHECK(out[0] == -1.0f);
  CHECK(out[1] == 0.0f);
}

TEST_CASE("int4: bad sizes are errors, never reads past the data", "[formats][int4][bad]") {
  // raw_data one byte short of ceil(5 / 2), or one too long.
  for (size_t n : {size_t{2}, size_t{4}}) {
    Parsed p(modelWith(pb::rawTensor("w", kInt4, {5}, std::string(n, '\x11'))));
    REQUIRE_FALSE(p.m.ok());
    CHECK(p.m.error().code == ErrorCode::InvalidModel);
    CHECK(p.m.error().message.find("which need 3 (two per byte") != std::string::npos);
  }
  // int32_data with the wrong number of packed values.
  Msg typed = pb::tensorHeader("w", kUint4, {5});
  typed.packedVarints(pb::kInt32Data, {1, 2});
  CHECK_FALSE(Parsed(modelWith(typed)).m.ok());
  // External data of the wrong size.
  Parsed e(modelWith(pb::externalTensor("w", kInt4, {5}, "w.bin", "0", "3")));
  REQUIRE(e.m.ok());
  const uint8_t two[2] = {0x11, 0x22};
  auto r = readAsFloat(e.m->graph.initializers[0], Bytes{two, 2});
  REQUIRE_FALSE(r.ok());
  CHECK(r.error().code == ErrorCode::MissingExternalData);
  CHECK(r.error().message.find("needs 3 bytes") != std::string::npos);
  const uint8_t three[3] = {0x11, 0x22, 0x03};
  auto ok = readAsFloat(e.m->graph.initializers[0], Bytes{three, 3});
  REQUIRE(ok.ok());
  CHECK(ok->take() == std::vector<float>{1, 1, 2, 2, 3});
}

TEST_CASE("DequantizeLinear block_size: per-block parameters, whole and streamed", "[formats][blocked]") {
  // W int4 [K = 5, N = 3] (MatMul: output channels on axis 1), blocks of 2 along axis 0:
  // scale and zero point [ceil(5 / 2) = 3, 3]; element (k, n) uses (k / 2, n).
  const int K = 5, N = 3, B = 2;
  std::vector<int> codes(K * N);
  for (int i = 0; i < K * N; ++i) codes[i] = (i * 5) % 16 - 8;
  std::vector<float> scales(3 * N);
  for (int i = 0; i < 3 * N; ++i) scales[i] = 0.25f * static_cast<float>(i + 1);
  const std::vector<int> zps = {0, 1, -1, 2, 0, 0, -3, 4, 1};
  Msg w = pb::rawTensor("W", kInt4, {K, N}, packNibbles(codes));
  Msg s = pb::floatTensor("S", {3, N}, scales);
  Msg z = pb::rawTensor("Z", kInt4, {3, N}, packNibbles(zps));
  Parsed p(dqMatMul(w, s, &z, {pb::attrInt("axis", 0), pb::attrInt("block_size", B)}));
  REQUIRE(p.m.ok());
  auto d = ql::graph::findLayers(p.m.value());
  REQUIRE(d.ok());
  REQUIRE(d->layers.size() == 1);
  const auto& L = d->layers[0];
  CHECK(L.quant.dqBlockSize == B);
  CHECK(L.quant.axis == 0);
  CHECK(L.channelAxis == 1);
  ql::analysis::QuantInfo q;
  auto v = ql::analysis::layerWeightValues(L, {}, &q);
  REQUIRE(v.ok());
  for (int k = 0; k < K; ++k)
    for (int n = 0; n < N; ++n) {
      const int b = (k / B) * N + n;
      INFO("k " << k << " n " << n);
      CHECK(v.value()[k * N + n] == static_cast<float>(codes[k * N + n] - zps[b]) * scales[b]);
    }
  CHECK(q.bits == 4);
  CHECK(q.blockSize == B);
  CHECK(q.intType == "int4");
  CHECK_FALSE(q.symmetric);
  CHECK(q.scale.size() == 9);
  CHECK(q.zeroPoint.size() == 9);

  // Streamed in pieces of unitBytes() (whole bytes, so an even number of elements), in order
  // (as the drivers feed them; sums over rows run in piece order).
  const ql::stats::Options opts;
  auto whole = ql::analysis::analyzeLayer(L, {}, opts);
  REQUIRE(whole.ok());
  const Tensor& wt = *L.weight;
  auto a = ql::analysis::LayerAnalyzer::create(L, opts, wt.rawData.size);
  REQUIRE(a.ok());
  CHECK(a->byteSize() == 8);  // ceil(15 / 2)
  const uint64_t unit = a->unitBytes();
  REQUIRE(unit > 0);
  for (int pass = 1; pass <= a->passes(); ++pass) {
    std::vector<uint64_t> starts;
    for (uint64_t off = 0; off < wt.rawData.size; off += unit) starts.push_back(off);
    for (auto it = starts.begin(); it != starts.end(); ++it) {
      const uint64_t len = std::min<uint64_t>(unit, wt.rawData.size - *it);
      REQUIRE(a->feed(pass, Bytes{wt.rawData.data + *it, len}, *it).ok());
    }
    REQUIRE(a->endPass(pass).ok());
  }
  auto pieces = a->finish();
  REQUIRE(pieces.ok());
  CHECK(pieces->stats.min == whole->stats.min);
  CHECK(pieces->stats.max == whole->stats.max);
  CHECK(pieces->stats.histogram == whole->stats.histogram);
  // Sums of rows (channels last) run in piece order: the same to rounding, as the native
  // driver requires of every streamed layer.
  for (size_t c = 0; c < whole->stats.std.size(); ++c) CHECK(pieces->stats.std[c] == Approx(whole->stats.std[c]).epsilon(1e-6));
  // Fewer stored bytes than the weight needs: an error before anything is read.
  CHECK_FALSE(ql::analysis::LayerAnalyzer::create(L, opts, wt.rawData.size - 1).ok());
}

TEST_CASE("DequantizeLinear block_size: bad parameters are errors with a reason", "[formats][blocked][bad]") {
  Msg w = pb::rawTensor("W", kInt4, {4, 2}, packNibbles({1, 2, 3, 4, 5, 6, 7, -8}));
  auto analyse = [](const Msg& model) {
    Parsed p(model);
    REQUIRE(p.m.ok());
    auto d = ql::graph::findLayers(p.m.value());
    REQUIRE(d.ok());
    REQUIRE(d->layers.size() == 1);
    return ql::analysis::analyzeLayer(d->layers[0], {}, {}).error();
  };
  {  // scale of the per-axis shape, not the blocked one [2, 2]
    Msg s = pb::floatTensor("S", {4, 2}, std::vector<float>(8, 1.0f));
    auto e = analyse(dqMatMul(w, s, nullptr, {pb::attrInt("axis", 0), pb::attrInt("block_size", 2)}));
    CHECK(e.code == ErrorCode::InvalidModel);
    CHECK(e.message.find("has shape [4, 2], but block_size 2 on axis 0 of a weight of shape [4, 2] needs [2, 2]") !=
          std::string::npos);
  }
  {  // a zero point whose shape differs from the scale's
    Msg s = pb::floatTensor("S", {2, 2}, std::vector<float>(4, 1.0f));
    Msg z = pb::rawTensor("Z", kInt4, {1, 2}, packNibbles({0, 0}));
    auto e = analyse(dqMatMul(w, s, &z, {pb::attrInt("axis", 0), pb::attrInt("block_size", 2)}));
    CHECK(e.code == ErrorCode::InvalidModel);
    CHECK(e.message.find("zero point 'Z' has shape [1, 2]") != std::string::npos);
  }
  {  // negative block_size
    Msg s = pb::floatTensor("S", {2, 2}, std::vector<float>(4, 1.0f));
    auto e = analyse(dqMatMul(w, s, nullptr, {pb::attrInt("axis", 0), pb::attrInt("block_size", -2)}));
    CHECK(e.code == ErrorCode::InvalidModel);
    CHECK(e.message.find("block_size -2 is negative") != std::string::npos);
  }
  {  // block_size 0 (the default: per-axis) with one scale per block of 2 along axis 1
    Msg s = pb::floatTensor("S", {2, 2}, std::vector<float>(4, 1.0f));
    auto e = analyse(dqMatMul(w, s, nullptr, {pb::attrInt("axis", 1), pb::attrInt("block_size", 0)}));
    CHECK(e.code == ErrorCode::InvalidModel);
    CHECK(e.message.find("has 4 values, expected 1 or 2 (parameters per block need DequantizeLinear's block_size") !=
          std::string::npos);
    // 4 values along an axis of 4 are per-axis parameters: valid.
    CHECK(analyse(dqMatMul(w, s, nullptr, {pb::attrInt("axis", 0), pb::attrInt("block_size", 0)})).ok());
  }
  {  // float8 with a nonzero zero point
    Msg f8 = pb::rawTensor("W", kFloat8E4M3FN, {2, 2}, std::string("\x38\x38\x38\x38", 4));
    Msg s = pb::floatTensor("S", {}, {0.5f});
    Msg z = pb::rawTensor("Z", kFloat8E4M3FN, {}, std::string("\x38", 1));
    auto e = analyse(dqMatMul(f8, s, &z, {}));
    CHECK(e.code == ErrorCode::InvalidModel);
    CHECK(e.message.find("zero point of a float8e4m3fn weight must be 0") != std::string::npos);
    Msg z0 = pb::rawTensor("Z", kFloat8E4M3FN, {}, std::string("\x00", 1));
    CHECK(analyse(dqMatMul(f8, s, &z0, {})).ok());
  }
}

TEST_CASE("GatherBlockQuantized: a table of rows, uint8 packing two codes per byte", "[formats][gather]") {
  // uint8 data [V = 2, 16] with bits = 4 holds a [2, 32] table of uint4 codes, low nibble
  // first along each row; scales [2, 32 / 16]; no zero points: 2^(4-1) = 8.
  const int V = 2, H = 32, B = 16;
  std::vector<int> codes(V * H);
  for (int i = 0; i < V * H; ++i) codes[i] = (i * 7 + 3) % 16;
  const std::vector<float> scales = {0.5f, -0.25f, 2.0f, 0.125f};
  auto table = [&](const std::vector<Msg>& attrs, int32_t type = kUint8) {
    pb::GraphBuilder g;
    g.init(pb::rawTensor("data", type, {V, H / 2}, packNibbles(codes))).init(pb::floatTensor("scales", {V, H / B}, scales));
    g.add(pb::node("GatherBlockQuantized", {"data", "ids", "scales"}, {"rows"}, "gbq", attrs, "com.microsoft"));
    return pb::model(g.build(), 10, 21);
  };
  Parsed p(table({pb::attrInt("bits", 4), pb::attrInt("block_size", B)}));
  REQUIRE(p.m.ok());
  auto d = ql::graph::findLayers(p.m.value());
  REQUIRE(d.ok());
  REQUIRE(d->layers.size() == 1);
  const auto& L = d->layers[0];
  CHECK(L.shape == std::vector<int64_t>{V, H});
  CHECK(L.channelAxis == 0);
  CHECK(L.layout.channelCount() == static_cast<uint64_t>(V));
  ql::analysis::QuantInfo q;
  auto v = ql::analysis::layerWeightValues(L, {}, &q);
  REQUIRE(v.ok());
  for (int r = 0; r < V; ++r)
    for (int h = 0; h < H; ++h) CHECK(v.value()[r * H + h] == static_cast<float>(codes[r * H + h] - 8) * scales[r * 2 + h / B]);
  CHECK(q.intType == "uint4");
  CHECK(q.bits == 4);
  CHECK(q.blockSize == B);
  CHECK(q.symmetric);
  CHECK(q.zeroPoint == std::vector<double>{8.0});
  auto whole = ql::analysis::analyzeLayer(L, {}, {});
  REQUIRE(whole.ok());
  CHECK(whole->stats.min[0] == *std::min_element(v->begin(), v->begin() + H));

  // What is not read is skipped with the reason.
  auto skipped = [&](const Msg& model) {
    Parsed s(model);
    REQUIRE(s.m.ok());
    auto f = ql::graph::findLayers(s.m.value());
    REQUIRE(f.ok());
    CHECK(f->layers.empty());
    REQUIRE(f->skipped.size() == 1);
    return f->skipped[0];
  };
  CHECK(skipped(table({pb::attrInt("bits", 4), pb::attrInt("block_size", B), pb::attrInt("gather_axis", 1)}))
            .find("gathered along axis 0 and quantized along axis 1") != std::string::npos);
  CHECK(skipped(table({pb::attrInt("bits", 4), pb::attrInt("block_size", 24)})).find("block_size 24 is not a power of two") !=
        std::string::npos);
  CHECK(skipped(table({pb::attrInt("bits", 2), pb::attrInt("block_size", B)})).find("bits = 2 is not read") != std::string::npos);
  CHECK(skipped(table({pb::attrInt("block_size", B)}, kInt8)).find("data of type int8 is not read") != std::string::npos);
}
