// The streaming plan (analysis/plan.hpp): where each weight's bytes are, the one
// buffer, and pieces of whole units that do not depend on the buffer's size.
#include <catch2/catch.hpp>
#include <cstring>
#include <vector>

#include "analysis/analyze.hpp"
#include "analysis/plan.hpp"
#include "graph/layers.hpp"
#include "onnx/model.hpp"
#include "onnx/skim.hpp"
#include "pb_writer.hpp"

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
  for (int pass = 1; pass <= a->passes(); ++pass) {
    for (uint64_t off = 0; off < a->byteSize(); off += s.pieceBytes) {
      const uint64_t n = std::min(s.pieceBytes, a->byteSize() - off);
      REQUIRE(a->feed(pass, {bytes.data() + p1.offset + off, n}, off).ok());
    }
    REQUIRE(a->endPass(pass).ok());
  }
  auto streamed = a->finish();
  REQUIRE(streamed.ok());
  auto direct = ql::analysis::analyzeLayer(dw->layers[0], {}, {});
  REQUIRE(direct.ok());
  CHECK(streamed->stats.min == direct->stats.min);
  CHECK(streamed->stats.max == direct->stats.max);
  CHECK(streamed->stats.histogram == direct->stats.histogram);
}
