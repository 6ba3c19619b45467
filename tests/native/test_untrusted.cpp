// The core's rules for untrusted files (issue 10): the external data location rule,
// graph validity (single assignment, defined inputs, no cycle), weight-bearing nodes
// that are skipped with a reason instead of dropped, a skimmed model whose small
// tensors are always read, and Split sizes checked before use in CLE.
#include <catch2/catch.hpp>
#include <cstring>
#include <string>
#include <vector>

#include "analysis/analyze.hpp"
#include "cle/cle.hpp"
#include "graph/layers.hpp"
#include "graph/validate.hpp"
#include "onnx/model.hpp"
#include "onnx/skim.hpp"
#include "onnx/tensor_data.hpp"
#include "pb_writer.hpp"

namespace pb = pbw::onnx;
using pbw::Msg;
using ql::ErrorCode;

namespace {

std::vector<float> ramp(size_t n, float scale = 1) {
  std::vector<float> v(n);
  for (size_t i = 0; i < n; ++i) v[i] = scale * (static_cast<float>(i % 17) - 8.0f);
  return v;
}

ql::Error locationError(std::string_view location, std::string* normalised = nullptr) {
  ql::onnx::Tensor t;
  t.name = "W";
  return ql::onnx::checkExternalLocation(t, location, normalised);
}

}  // namespace

TEST_CASE("external data: the location rule", "[untrusted][external]") {
  for (std::string_view bad : {"../w.bin", "../../etc/passwd", "ext_subdir/../../../../etc/passwd", "a/../../w.bin",
                               "/etc/passwd", "\\\\server\\share\\w.bin", "//server/share/w.bin", "\\w.bin", "C:\\w.bin",
                               "c:w.bin", "", ".", "./", "sub/..", "..", "a\\..\\..\\w.bin"}) {
    INFO(bad);
    const ql::Error e = locationError(bad);
    CHECK(e.code == ErrorCode::UnsafeExternalData);
    CHECK(e.message.find("tensor 'W'") != std::string::npos);
  }
  const std::string nul("w.bin\0x", 7);
  CHECK(locationError(nul).code == ErrorCode::UnsafeExternalData);
  CHECK(locationError(nul).message.find("NUL") != std::string::npos);
  for (auto [good, norm] : std::vector<std::pair<std::string_view, std::string_view>>{{"w.bin", "w.bin"},
                                                                                      {"./w.bin", "w.bin"},
                                                                                      {"sub/w.bin", "sub/w.bin"},
                                                                                      {"sub/../w.bin", "w.bin"},
                                                                                      {"sub//x/./w.bin", "sub/x/w.bin"},
                                                                                      {"sub\\w.bin", "sub/w.bin"},
                                                                                      {"ab:c.bin", "ab:c.bin"},
                                                                                      {"..w.bin", "..w.bin"}}) {
    INFO(good);
    std::string out;
    CHECK(locationError(good, &out).ok());
    CHECK(out == norm);
  }
}

TEST_CASE("external data: a hostile location is refused when the model is parsed, wherever the tensor is",
          "[untrusted][external]") {
  pb::GraphBuilder g;
  g.input("x", {1, 3, 4, 4}).output("y");
  g.add(pb::node("Conv", {"x", "W", "B"}, {"y"}, "conv"));
  g.init(pb::floatTensor("W", {2, 3, 1, 1}, ramp(6)));
  g.init(pb::externalTensor("B", pb::kFloat, {2}, "../../etc/passwd", "", "8"));
  const auto bytes = pb::toVec(pb::model(g.build()));
  auto m = ql::onnx::parseModel(bytes.data(), bytes.size());
  REQUIRE_FALSE(m.ok());
  CHECK(m.error().code == ErrorCode::UnsafeExternalData);
  CHECK(m.error().message.find("'../../etc/passwd'") != std::string::npos);
  auto eq = ql::cle::equalize(bytes.data(), bytes.size());
  CHECK(eq.error().code == ErrorCode::UnsafeExternalData);
}

TEST_CASE("graph check: duplicates, reassignment, undefined inputs, cycles; sub-graphs see outer names", "[untrusted][graph]") {
  auto check = [](const pb::GraphBuilder& g) {
    static std::vector<uint8_t> bytes;
    bytes = pb::toVec(pb::model(g.build()));
    auto m = ql::onnx::parseModel(bytes.data(), bytes.size());
    REQUIRE(m.ok());
    return ql::graph::checkGraph(m.value());
  };
  pb::GraphBuilder ok;
  ok.input("x").output("y").init(pb::floatTensor("c", {1}, {1}));
  ok.add(pb::node("Add", {"x", "c"}, {"a"}, "add")).add(pb::node("Relu", {"a"}, {"y"}, "relu"));
  CHECK(check(ok).ok());

  pb::GraphBuilder dup = ok;
  dup.init(pb::floatTensor("c", {1}, {2}));
  auto d = check(dup);
  REQUIRE(d.duplicateInitializers.size() == 1);
  CHECK(d.duplicateInitializers[0].find("'c'") != std::string::npos);
  CHECK(d.firstError().code == ErrorCode::InvalidGraph);

  pb::GraphBuilder twice = ok;
  twice.add(pb::node("Neg", {"x"}, {"a"}, "neg"));
  CHECK(check(twice).reassigned.size() == 1);

  pb::GraphBuilder undefined = ok;
  undefined.add(pb::node("Add", {"a", "nowhere"}, {"z"}, "dangling"));
  REQUIRE(check(undefined).undefined.size() == 1);
  CHECK(check(undefined).undefined[0].find("'dangling' reads 'nowhere'") != std::string::npos);

  pb::GraphBuilder cycle;
  cycle.input("x").output("y");
  cycle.add(pb::node("Add", {"x", "c"}, {"b"}, "add")).add(pb::node("Relu", {"b"}, {"c"}, "relu"));
  cycle.add(pb::node("Identity", {"c"}, {"y"}, "out"));
  auto c = check(cycle);
  REQUIRE(c.cycles.size() == 1);
  CHECK(c.cycles[0].find("'add'") != std::string::npos);
  CHECK(c.undefined.empty());

  // Nodes out of order but acyclic are not a cycle.
  pb::GraphBuilder unordered;
  unordered.input("x").output("y");
  unordered.add(pb::node("Relu", {"a"}, {"y"}, "relu")).add(pb::node("Neg", {"x"}, {"a"}, "neg"));
  CHECK(check(unordered).ok());

  // A sub-graph reading an outer value is fine; one reading a name nothing defines is not.
  pb::GraphBuilder body;
  body.name = "then";
  body.output("t");
  body.add(pb::node("Neg", {"a"}, {"t"}, "inner"));
  pb::GraphBuilder withIf = ok;
  withIf.add(pb::node("If", {"x"}, {"z"}, "if",
                      {pb::attrGraph("then_branch", body.build()), pb::attrGraph("else_branch", body.build())}));
  CHECK(check(withIf).ok());
  pb::GraphBuilder badBody = body;
  badBody.add(pb::node("Neg", {"ghost"}, {"u"}, "inner2"));
  pb::GraphBuilder withBadIf = ok;
  withBadIf.add(pb::node("If", {"x"}, {"z"}, "if",
                         {pb::attrGraph("then_branch", badBody.build()), pb::attrGraph("else_branch", body.build())}));
  REQUIRE(check(withBadIf).undefined.size() == 1);
  CHECK(check(withBadIf).undefined[0].find("sub-graph 'if/then_branch'") != std::string::npos);
}

TEST_CASE("discovery: weight-bearing nodes that cannot be analysed are skipped with a reason", "[untrusted][layers]") {
  pb::GraphBuilder g;
  g.input("x", {1, 3, 4, 4}).output("y");
  g.init(pb::floatTensor("W", {2, 3, 1, 1}, ramp(6)));
  g.add(pb::node("Conv", {"x", "W"}, {"a"}, "good"));
  g.add(pb::node("Conv", {"a", "missing"}, {"b"}, "conv_missing"));
  g.add(pb::node("Conv", {"b", "x"}, {"c"}, "conv_dynamic"));
  g.add(pb::node("MatMul", {"c", "c"}, {"d"}, "attention_like"));  // two activations: not a weight node
  g.add(pb::node("MatMul", {"d", "M_missing"}, {"e"}, "matmul_missing"));
  g.add(pb::node("LSTM", {"e", "W", "W"}, {"y"}, "lstm"));
  g.add(pb::node("MatMulNBits", {"e", "W"}, {"f"}, "nbits", {}, "com.microsoft"));
  const auto bytes = pb::toVec(pb::model(g.build()));
  auto m = ql::onnx::parseModel(bytes.data(), bytes.size());
  REQUIRE(m.ok());
  auto d = ql::graph::findLayers(m.value());
  REQUIRE(d.ok());
  REQUIRE(d->layers.size() == 1);
  CHECK(d->layers[0].name == "good");
  REQUIRE(d->skipped.size() == 6);
  CHECK(d->skipped[0] == "conv_missing (Conv): weight input 'missing' names a tensor that nothing in the model defines");
  CHECK(d->skipped[1] == "conv_dynamic (Conv): weight 'x' is a graph input, supplied at run time (not stored in the model)");
  CHECK(d->skipped[2] == "matmul_missing (MatMul): weight input 'M_missing' names a tensor that nothing in the model defines");
  // LSTM is read now, as two layers (W and R), each skipped under its own name: this W is no LSTM weight.
  CHECK(d->skipped[3] == "lstm/W (LSTM): W of shape [2, 3, 1, 1] is not [num_directions = 1, 4 gates * hidden_size, input_size]");
  CHECK(d->skipped[4] ==
        "lstm/R (LSTM): R of shape [2, 3, 1, 1] is not [num_directions = 1, 4 gates * hidden_size, hidden_size]");
  // MatMulNBits is read now; this one has no block_size attribute.
  CHECK(d->skipped[5] == "nbits (MatMulNBits): block_size 0 is not a power of two of at least 16");
}

TEST_CASE("discovery: an Add is a Conv's bias only when it broadcasts along the channel axis", "[untrusted][layers]") {
  for (auto [dims, isBias] : std::vector<std::pair<std::vector<int64_t>, bool>>{
           {{2, 1, 1}, true}, {{1, 2, 1, 1}, true}, {{2}, false}, {{2, 1}, false}, {{1, 1, 2}, false}}) {
    pb::GraphBuilder g;
    g.input("x", {1, 3, 4, 4}).output("y");
    g.init(pb::floatTensor("W", {2, 3, 1, 1}, ramp(6)));
    g.init(pb::floatTensor("b", dims, {0.5f, -0.5f}));
    g.add(pb::node("Conv", {"x", "W"}, {"a"}, "conv")).add(pb::node("Add", {"a", "b"}, {"y"}, "add"));
    const auto bytes = pb::toVec(pb::model(g.build()));
    auto m = ql::onnx::parseModel(bytes.data(), bytes.size());
    REQUIRE(m.ok());
    auto d = ql::graph::findLayers(m.value());
    REQUIRE(d->layers.size() == 1);
    INFO(dims.size());
    CHECK((d->layers[0].bias != nullptr) == isBias);
    CHECK((d->layers[0].biasAdd != nullptr) == isBias);
  }
}

namespace {
class VecReader : public ql::onnx::ByteReader {
 public:
  explicit VecReader(const std::vector<uint8_t>& v) : v_(v) {}
  bool read(uint64_t offset, uint8_t* dst, uint64_t length) override {
    if (offset > v_.size() || length > v_.size() - offset) return false;
    std::memcpy(dst, v_.data() + offset, length);
    return true;
  }

 private:
  const std::vector<uint8_t>& v_;
};
}  // namespace

TEST_CASE("skim: scales of any size are read; only layer weights stay in the file, and reading them in memory is an error",
          "[untrusted][skim]") {
  const int64_t K = 4, N = 64;  // 256 B of float scales: over the 64-byte skip threshold below
  std::vector<int8_t> q(K * N);
  for (size_t i = 0; i < q.size(); ++i) q[i] = static_cast<int8_t>(static_cast<int>(i % 200) - 100);
  std::vector<float> scale(N);
  for (int64_t c = 0; c < N; ++c) scale[c] = 0.01f * static_cast<float>(c + 1);
  pb::GraphBuilder g;
  g.input("x", {1, K}).output("y");
  g.init(pb::int8Tensor("Wq", {K, N}, q)).init(pb::floatTensor("Ws", {N}, scale));
  g.add(pb::node("DequantizeLinear", {"Wq", "Ws"}, {"Wd"}, "dq", {pb::attrInt("axis", 1)}));
  g.add(pb::node("MatMul", {"x", "Wd"}, {"y"}, "mm"));
  const auto bytes = pb::toVec(pb::model(g.build()));

  VecReader in(bytes);
  std::vector<uint8_t> image(bytes.size(), 0xEE);  // unread bytes are visibly wrong
  ql::onnx::SkimOptions so;
  so.skipAtLeast = 64;
  auto skim = ql::onnx::skimModel(in, bytes.size(), image.data(), so);
  REQUIRE(skim.ok());
  REQUIRE(skim->skipped.size() == 2);  // the weight and the scales
  auto m = ql::onnx::parseModel(image.data(), image.size());
  REQUIRE(m.ok());
  auto d = ql::graph::findLayers(m.value());
  REQUIRE(d.ok());
  REQUIRE(d->layers.size() == 1);
  REQUIRE(ql::analysis::settleSkim(in, image.data(), &skim.value(), &m.value(), d.value()).ok());
  REQUIRE(skim->skipped.size() == 1);  // only the weight is left to stream
  const auto& L = d->layers[0];
  CHECK(L.weight->deferred);
  CHECK(ql::onnx::readAsFloat(*L.weight).error().code == ErrorCode::InvalidArgument);
  auto a = ql::analysis::LayerAnalyzer::create(L, {}, static_cast<uint64_t>(K * N));
  REQUIRE(a.ok());
  // The streamed analysis sees every scale as stored.
  for (int pass = 1; pass <= a->passes(); ++pass) {
    REQUIRE(a->feed(pass, {reinterpret_cast<const uint8_t*>(q.data()), q.size()}, 0).ok());
    REQUIRE(a->endPass(pass).ok());
  }
  auto r = a->finish();
  REQUIRE(r.ok());
  REQUIRE(r->quant.scale.size() == static_cast<size_t>(N));
  for (int64_t c = 0; c < N; ++c) CHECK(r->quant.scale[c] == Approx(scale[c]).epsilon(1e-7));
}

TEST_CASE("CLE: Split sizes from the file are checked before use", "[untrusted][cle]") {
  for (const std::vector<int64_t>& sizes :
       std::vector<std::vector<int64_t>>{{-1, 9}, {int64_t{1} << 62, (int64_t{1} << 62) + 8}, {9, 0}, {4, 4}, {8, 0}}) {
    pb::GraphBuilder g;
    g.input("x", {1, 2, 4, 4}).output("y");
    g.init(pb::floatTensor("W1", {2, 2, 1, 1}, {1, 0, 0, 50})).init(pb::floatTensor("W2", {2, 2, 1, 1}, {1, 2, 3, 4}));
    Msg all = pb::tensorHeader("all", pb::kInt64, {8});
    all.packedInts(7, {0, 0, 1, 1, 0, 0, 1, 1});
    g.init(all);
    Msg sz = pb::tensorHeader("sizes", pb::kInt64, {2});
    sz.packedInts(7, sizes);
    g.init(sz);
    g.add(pb::node("Conv", {"x", "W1"}, {"a"}, "c1")).add(pb::node("Relu", {"a"}, {"r"}, "relu"));
    g.add(pb::node("Split", {"all", "sizes"}, {"p", "rest"}, "split", {pb::attrInt("axis", 0)}));
    g.add(pb::node("Pad", {"r", "p"}, {"pd"}, "pad")).add(pb::node("Conv", {"pd", "W2"}, {"y"}, "c2"));
    const auto bytes = pb::toVec(pb::model(g.build()));
    auto eq = ql::cle::equalize(bytes.data(), bytes.size());
    INFO(sizes[0] << ", " << sizes[1]);
    REQUIRE(eq.ok());
    // Only the honest split that hands Pad all 8 amounts (spatial padding) lets the pair
    // through; {4, 4} gives Pad 4 amounts of which one pads the channel axis.
    CHECK(eq->report.sequences.size() == (sizes == std::vector<int64_t>{8, 0} ? 1u : 0u));
  }
}
