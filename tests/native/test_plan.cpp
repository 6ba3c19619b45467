// The streaming plan (analysis/plan.hpp): where each weight's bytes are, the one
// buffer, and pieces of whole units that do not depend on the buffer's size.
#include <algorithm>
#include <catch2/catch.hpp>
#include <cstring>
#include <vector>

#include "analysis/analyze.hpp"
#include "analysis/plan.hpp"
#include "common/bytes.hpp"
#include "graph/layers.hpp"
#include "onnx/model.hpp"
#include "onnx/skim.hpp"
#include "onnx/tensor_data.hpp"
#include "pb_writer.hpp"
#include "same_stats.hpp"

namespace pb = pbw::onnx;
using ql::analysis::StreamPlan;
using ql::analysis::WeightAt;

namespace {

class BytesReader : public ql::onnx::ByteReader {
 public:
  explicit BytesReader(const std::vector<uint8_t>& v) : v_(v) {}
  bool read(uint64_t offset, uint8_t* dst, uint64_t length) override {
    if (offset > v_.size() || length > v_.size() - offset) return false;
    std::memcpy(dst, v_.data() + offset, length);
    return true;
  }

 private:
  const std::vector<uint8_t>& v_;
};

std::vector<float> values(size_t n) {
  std::vector<float> v(n);
  for (size_t i = 0; i < n; ++i) v[i] = static_cast<float>(i % 13) - 6.0f;
  return v;
}

// Feeds every pass of `a` the weight at `offset` in `file`, in pieces of `pieceBytes`.
void feedAll(ql::analysis::LayerAnalyzer& a, const std::vector<uint8_t>& file, uint64_t offset, uint64_t pieceBytes) {
  for (int pass = 1; pass <= a.passes(); ++pass) {
    for (uint64_t off = 0; off < a.byteSize(); off += pieceBytes) {
      const uint64_t n = std::min(pieceBytes, a.byteSize() - off);
      REQUIRE(a.feed(pass, {file.data() + offset + off, n}, off).ok());
    }
    REQUIRE(a.endPass(pass).ok());
  }
}

}  // namespace

TEST_CASE("plan: pieces are whole units of at most the piece size; the buffer grows to one unit", "[plan]") {
  ql::graph::Discovery none;
  StreamPlan plan(none, nullptr, {}, 100, 100);
  CHECK(plan.bufferBytes() == 0);
  auto s = plan.layer(12, 480);  // no buffer yet: one unit per piece, and the buffer holds one
  CHECK(s.pieceBytes == 12);
  CHECK(s.bufferBytes == 12);
  CHECK_FALSE(s.resident);
  s = plan.layer(12, 12);
  CHECK(s.resident);
  s = plan.layer(300, 600);  // a unit larger than the buffer
  CHECK(s.pieceBytes == 300);
  CHECK(s.bufferBytes == 300);
  s = plan.layer(12, 480);  // now up to the piece size, whole units
  CHECK(s.pieceBytes == 96);
  CHECK_FALSE(s.resident);
  s = plan.layer(12, 288);
  CHECK(s.resident);
}

TEST_CASE("plan: skimmed weights are ranges of the model file, read ones stay in the image, external ones name their file",
          "[plan]") {
  const int64_t K = 8, N = 16;  // W1: 512 bytes, W2: 128 bytes, W3: 64 bytes (external)
  const auto w1 = values(K * N), w2 = values(N * 2);
  pb::GraphBuilder g;
  g.input("x", {1, K}).output("z");
  g.init(pb::floatTensor("W1", {K, N}, w1)).init(pb::floatTensor("W2", {N, 2}, w2));
  g.init(pb::externalTensor("W3", pb::kFloat, {2, 8}, "w3.bin", "16", "64"));
  g.add(pb::node("MatMul", {"x", "W1"}, {"y"}, "m1"));
  g.add(pb::node("MatMul", {"y", "W2"}, {"y2"}, "m2"));
  g.add(pb::node("MatMul", {"y2", "W3"}, {"z"}, "m3"));
  const auto bytes = pb::toVec(pb::model(g.build()));

  BytesReader in(bytes);
  std::vector<uint8_t> image(bytes.size(), 0xEE);
  ql::onnx::SkimOptions so;
  so.skipAtLeast = 256;  // W1 stays in the file, W2 is read
  auto skim = ql::onnx::skimModel(in, bytes.size(), image.data(), so);
  REQUIRE(skim.ok());
  auto m = ql::onnx::parseModel(image.data(), image.size());
  INFO((m.ok() ? std::string() : m.error().describe()));
  REQUIRE(m.ok());
  auto d = ql::graph::findLayers(m.value());
  REQUIRE(d.ok());
  REQUIRE(d->layers.size() == 3);
  REQUIRE(ql::analysis::settleSkim(in, image.data(), &skim.value(), &m.value(), d.value()).ok());

  StreamPlan plan(d.value(), image.data(), skim.value(), 100, 300);
  const auto& p1 = plan.weight(0);
  CHECK(p1.at == WeightAt::ModelFile);
  REQUIRE(p1.length == w1.size() * 4);
  CHECK(std::memcmp(bytes.data() + p1.offset, w1.data(), p1.length) == 0);
  CHECK(plan.weight(1).at == WeightAt::Image);
  CHECK_FALSE(plan.weight(1).streamed());
  const auto& p3 = plan.weight(2);
  CHECK(p3.at == WeightAt::ExternalFile);
  CHECK(p3.error.ok());
  CHECK(p3.ref.path == "w3.bin");
  CHECK(p3.offset == 16);
  CHECK(p3.length == 64);
  CHECK(plan.bufferBytes() == 300);  // the largest streamed weight, up to residentBytes

  // The same model read whole: nothing to stream but external data.
  auto whole = ql::onnx::parseModel(bytes.data(), bytes.size());
  REQUIRE(whole.ok());
  auto dw = ql::graph::findLayers(whole.value());
  REQUIRE(dw.ok());
  StreamPlan wholePlan(dw.value(), bytes.data(), {}, 100, 300);
  CHECK(wholePlan.weight(0).at == WeightAt::Image);
  CHECK(wholePlan.weight(2).at == WeightAt::ExternalFile);
  CHECK(wholePlan.bufferBytes() == 64);

  // Streaming W1 by the plan gives what analysing it whole gives.
  auto a = ql::analysis::LayerAnalyzer::create(d->layers[0], {}, p1.length);
  REQUIRE(a.ok());
  const auto s = plan.layer(a->unitBytes(), a->byteSize());
  CHECK(s.pieceBytes % a->unitBytes() == 0);
  CHECK(s.pieceBytes <= 100);
  feedAll(a.value(), bytes, p1.offset, s.pieceBytes);
  auto streamed = a->finish();
  REQUIRE(streamed.ok());
  auto direct = ql::analysis::analyzeLayer(dw->layers[0], {}, {});
  REQUIRE(direct.ok());
  CHECK(streamed->stats.min == direct->stats.min);
  CHECK(streamed->stats.max == direct->stats.max);
  CHECK(streamed->stats.histogram == direct->stats.histogram);
}

namespace {

// A TensorProto whose values are float_data, packed in `parts` occurrences (each a share),
// or unpacked (one fixed32 field per value) when `parts` is 0.
pbw::Msg floatDataTensor(std::string_view name, int32_t dataType, const std::vector<int64_t>& dims, const std::vector<float>& v,
                         int parts = 1) {
  pbw::Msg t = pb::tensorHeader(name, dataType, dims);
  if (parts == 0) return t.unpackedFloats(pb::kFloatData, v);
  const size_t share = (v.size() + parts - 1) / parts;
  for (size_t at = 0; at < v.size(); at += share)
    t.packedFloats(pb::kFloatData, std::vector<float>(v.begin() + at, v.begin() + std::min(v.size(), at + share)));
  return t;
}

struct Skimmed {
  std::vector<uint8_t> image;
  ql::onnx::Skim skim;
  ql::onnx::Model model;
};

Skimmed skimmed(const std::vector<uint8_t>& bytes, uint64_t skipAtLeast) {
  BytesReader in(bytes);
  Skimmed s;
  s.image.assign(bytes.size(), 0xEE);
  ql::onnx::SkimOptions so;
  so.skipAtLeast = skipAtLeast;
  auto skim = ql::onnx::skimModel(in, bytes.size(), s.image.data(), so);
  REQUIRE(skim.ok());
  s.skim = std::move(skim.value());
  auto m = ql::onnx::parseModel(s.image.data(), s.image.size());
  INFO((m.ok() ? std::string() : m.error().describe()));
  REQUIRE(m.ok());
  s.model = std::move(m.value());
  ql::analysis::markDeferred(s.image.data(), s.skim, &s.model);
  return s;
}

const ql::onnx::Tensor& initializer(const ql::onnx::Model& m, std::string_view name) {
  for (const auto& t : m.graph.initializers)
    if (t.name == name) return t;
  FAIL("no initializer " << name);
  return m.graph.initializers.front();
}

}  // namespace

// An exporter that writes float_data (onnx.helper.make_tensor without raw=True, Caffe2,
// some TensorFlow converters) stores a weight's values as one packed field: little-endian
// float32 values back to back, as raw_data holds them. The skim leaves that payload in the
// file as it leaves raw_data, and the analysis streams it, with the statistics of the
// whole model read at once; any other typed store is read into memory as before.
TEST_CASE("skim: one packed float_data or double_data field stays in the file and streams as raw data", "[plan]") {
  const int64_t K = 16, N = 32;  // W1: 2 KB of float_data, one packed field
  const auto w1 = values(K * N);
  pb::GraphBuilder g;
  g.input("x", {1, K}).output("y");
  g.init(floatDataTensor("W1", pb::kFloat, {K, N}, w1));
  // Not layer weights: a float64 table as one packed double_data field (adopted too), and
  // float_data in two packed fields, unpacked, and beside raw_data (all read back).
  std::vector<double> d(64);
  for (size_t i = 0; i < d.size(); ++i) d[i] = 0.25 * static_cast<double>(i) - 3.0;
  pbw::Msg dt = pb::tensorHeader("D", pb::kDouble, {64});
  dt.packedDoubles(pb::kDoubleData, d);
  g.init(dt);
  g.init(floatDataTensor("Split", pb::kFloat, {K, N}, w1, 2));
  g.init(floatDataTensor("Unpacked", pb::kFloat, {K, N}, w1, 0));
  g.init(floatDataTensor("Complex", pb::kComplex64, {K, N / 2}, w1));  // float_data holds complex64 too: adopted
  g.add(pb::node("MatMul", {"x", "W1"}, {"y"}, "m1"));
  const auto bytes = pb::toVec(pb::model(g.build()));

  auto s = skimmed(bytes, 256);
  const auto& t1 = initializer(s.model, "W1");
  CHECK(t1.hasRawData);
  CHECK(t1.typedField == 0);
  CHECK(t1.deferred);
  REQUIRE(t1.rawData.size == w1.size() * 4);
  const uint64_t at = ql::offsetIn(s.image.data(), t1.rawData.data);
  CHECK(std::memcmp(bytes.data() + at, w1.data(), t1.rawData.size) == 0);  // the payload in the file
  const auto& td = initializer(s.model, "D");
  CHECK(td.hasRawData);
  CHECK(td.deferred);
  CHECK(td.rawData.size == d.size() * 8);
  CHECK(initializer(s.model, "Complex").hasRawData);
  // Read back into the image: their values decode as the parser found them.
  for (const char* name : {"Split", "Unpacked"}) {
    INFO(name);
    const auto& t = initializer(s.model, name);
    CHECK_FALSE(t.hasRawData);
    CHECK_FALSE(t.deferred);
    CHECK(t.typedField == pb::kFloatData);
    auto v = ql::onnx::readAsFloat(t, {});
    REQUIRE(v.ok());
    REQUIRE(v->count == w1.size());
    CHECK(std::memcmp(v->bytes, w1.data(), w1.size() * 4) == 0);
  }
  // Exactly W1's, D's and Complex's payloads are left unread; no byte is counted twice.
  CHECK(s.skim.skipped.size() == 3);
  CHECK(s.skim.bytesRead <= bytes.size());

  // The plan streams W1 from the model file; streamed, it gives what the model read whole gives.
  auto d1 = ql::graph::findLayers(s.model);
  REQUIRE(d1.ok());
  REQUIRE(d1->layers.size() == 1);
  BytesReader in(bytes);
  REQUIRE(ql::analysis::settleSkim(in, s.image.data(), &s.skim, &s.model, d1.value()).ok());
  StreamPlan plan(d1.value(), s.image.data(), s.skim, 100, 300);
  const auto& p1 = plan.weight(0);
  REQUIRE(p1.at == WeightAt::ModelFile);
  CHECK(p1.offset == at);
  auto a = ql::analysis::LayerAnalyzer::create(d1->layers[0], {}, p1.length);
  REQUIRE(a.ok());
  const auto piece = plan.layer(a->unitBytes(), a->byteSize());
  feedAll(a.value(), bytes, p1.offset, piece.pieceBytes);
  auto streamed = a->finish();
  REQUIRE(streamed.ok());
  auto whole = ql::onnx::parseModel(bytes.data(), bytes.size());
  REQUIRE(whole.ok());
  CHECK(initializer(whole.value(), "W1").typedField == pb::kFloatData);  // read whole, the parser's view stays typed
  auto dw = ql::graph::findLayers(whole.value());
  REQUIRE(dw.ok());
  auto direct = ql::analysis::analyzeLayer(dw->layers[0], {}, {});
  REQUIRE(direct.ok());
  requireSame(streamed->stats, direct->stats);
}

// A typed payload is left unread only for a type its field holds: float_data of a float16
// tensor is an error the parser names, with every byte read.
TEST_CASE("skim: float_data of a type it does not hold is read, and the parser's error stands", "[plan]") {
  const auto w = values(256);
  pb::GraphBuilder g;
  g.input("x", {1, 16}).output("y");
  g.init(floatDataTensor("W", pb::kFloat16, {16, 16}, w));
  g.add(pb::node("MatMul", {"x", "W"}, {"y"}, "m"));
  const auto bytes = pb::toVec(pb::model(g.build()));
  BytesReader in(bytes);
  std::vector<uint8_t> image(bytes.size(), 0xEE);
  ql::onnx::SkimOptions so;
  so.skipAtLeast = 64;
  auto skim = ql::onnx::skimModel(in, bytes.size(), image.data(), so);
  REQUIRE(skim.ok());
  CHECK(skim->skipped.empty());
  CHECK(image == bytes);
  CHECK(skim->bytesRead == bytes.size());  // each byte once (a payload's head may come with the chunk before it)
  auto m = ql::onnx::parseModel(image.data(), image.size());
  REQUIRE(m.ok());
  auto v = ql::onnx::readAsFloat(initializer(m.value(), "W"), {});
  REQUIRE_FALSE(v.ok());
  CHECK(v.error().describe().find("field 4") != std::string::npos);
}
