// Per-input-channel absMax (stats/input_channels.hpp) and its outliers: against a naive
// reference that works out, element by element and from each op's own definition (not
// from graph::Layer's axes), which input channel of the layer's input every weight
// element multiplies; on every layout discovery produces, whole and streamed in pieces.
#include <algorithm>
#include <catch2/catch.hpp>
#include <cmath>
#include <cstring>
#include <functional>
#include <random>
#include <string>
#include <vector>

#include "analysis/analyze.hpp"
#include "graph/layers.hpp"
#include "onnx/model.hpp"
#include "pb_writer.hpp"
#include "stats/input_channels.hpp"
#include "stats/outliers.hpp"

using ql::graph::Layer;
using ql::stats::flagRelativeOutliers;
using ql::stats::InputChannelAbsMax;
using ql::stats::InputChannelShape;
namespace pb = pbw::onnx;
using pbw::Msg;

namespace {

using Index = std::vector<int64_t>;
// Input channel that the stored element at `idx` multiplies.
using ChannelOf = std::function<int64_t(const Index&)>;

uint64_t product(const std::vector<int64_t>& d) {
  uint64_t p = 1;
  for (int64_t x : d) p *= static_cast<uint64_t>(x);
  return p;
}

std::vector<float> randomValues(uint64_t n, uint32_t seed) {
  std::mt19937 rng(seed);
  std::normal_distribution<float> N(0.0f, 1.0f);
  std::vector<float> v(n);
  for (auto& x : v) x = N(rng);
  return v;
}

// The naive reference: every element, its multi-index, its input channel.
std::vector<float> naiveAbsMax(const std::vector<int64_t>& dims, const std::vector<float>& v, int64_t channels,
                               const ChannelOf& of) {
  std::vector<float> out(static_cast<size_t>(channels), 0.0f);
  Index idx(dims.size(), 0);
  for (size_t e = 0; e < v.size(); ++e) {
    uint64_t r = e;
    for (size_t k = dims.size(); k-- > 0;) {
      idx[k] = static_cast<int64_t>(r % static_cast<uint64_t>(dims[k]));
      r /= static_cast<uint64_t>(dims[k]);
    }
    const int64_t c = of(idx);
    REQUIRE(c >= 0);
    REQUIRE(c < channels);
    out[static_cast<size_t>(c)] = std::max(out[static_cast<size_t>(c)], std::fabs(v[e]));
  }
  return out;
}

struct Model {
  std::vector<uint8_t> bytes;
  ql::Result<ql::onnx::Model> model{ql::onnx::Model{}};
  ql::graph::Discovery d;
  explicit Model(const pb::GraphBuilder& g) : bytes(pb::toVec(pb::model(g.build()))) {
    model = ql::onnx::parseModel(bytes.data(), bytes.size());
    REQUIRE(model.ok());
    auto r = ql::graph::findLayers(model.value());
    REQUIRE(r.ok());
    d = std::move(r.value());
    INFO((d.skipped.empty() ? "" : d.skipped[0]));
    REQUIRE(d.layers.size() == 1);
  }
  const Layer& layer() const { return d.layers[0]; }
};

// The layer's analysis whole, and streamed a unit at a time in reverse order: both
// must equal the naive reference exactly.
void checkLayer(const Layer& L, const std::vector<float>& stored, int64_t channels, const ChannelOf& of) {
  const std::vector<float> expected = naiveAbsMax(L.shape, stored, channels, of);
  auto whole = ql::analysis::analyzeLayer(L, {}, {});
  INFO((whole.ok() ? "" : whole.error().describe()));
  REQUIRE(whole.ok());
  CHECK(whole->inputs.count == static_cast<uint64_t>(channels));
  CHECK(whole->inputs.axis == L.inputAxis);
  CHECK(whole->inputs.absMax == expected);

  auto an = ql::analysis::LayerAnalyzer::create(L, {}, stored.size() * 4);
  REQUIRE(an.ok());
  const auto* bytes = reinterpret_cast<const uint8_t*>(stored.data());
  const uint64_t size = an->byteSize(), unit = an->unitBytes();
  REQUIRE(size == stored.size() * 4);
  for (int pass = 1; pass <= an->passes(); ++pass) {
    for (uint64_t end = size; end > 0;) {
      const uint64_t start = end > unit ? end - unit : 0;
      REQUIRE(an->feed(pass, ql::wire::Bytes{bytes + start, end - start}, start).ok());
      end = start;
    }
    REQUIRE(an->endPass(pass).ok());
  }
  auto streamed = an->finish();
  REQUIRE(streamed.ok());
  CHECK(streamed->inputs.absMax == expected);
  CHECK(streamed->inputs.outliers == whole->inputs.outliers);
  CHECK(streamed->inputs.threshold == whole->inputs.threshold);
}

pb::GraphBuilder single(const std::string& op, const std::vector<int64_t>& dims, const std::vector<float>& values,
                        const std::vector<Msg>& attrs = {}) {
  pb::GraphBuilder g;
  g.input("x").output("y");
  g.init(pb::floatTensor("W", dims, values));
  g.add(pb::node(op, {"x", "W"}, {"y"}, "layer", attrs));
  return g;
}

}  // namespace

TEST_CASE("input channels: Conv [O, I, kh, kw]: input channel i is axis 1", "[input-channels]") {
  const std::vector<int64_t> dims = {8, 3, 3, 3};
  const auto v = randomValues(product(dims), 1);
  Model m(single("Conv", dims, v));
  checkLayer(m.layer(), v, 3, [](const Index& x) { return x[1]; });
}

TEST_CASE("input channels: grouped Conv: output channel o reads the I/g channels of group o / (O/g)", "[input-channels]") {
  // O = 6, g = 3: O/g = 2 filters per group, each over I/g = 2 of the I = 6 input channels.
  const std::vector<int64_t> dims = {6, 2, 3, 3};
  const auto v = randomValues(product(dims), 2);
  Model m(single("Conv", dims, v, {pb::attrInt("group", 3)}));
  checkLayer(m.layer(), v, 6, [](const Index& x) { return (x[0] / 2) * 2 + x[1]; });
  auto a = ql::analysis::analyzeLayer(m.layer(), {}, {});
  REQUIRE(a.ok());
  CHECK(a->inputs.groups == 3);
  CHECK(a->inputs.perGroup == 2);
}

TEST_CASE("input channels: depthwise Conv: input channel c is filter c's own", "[input-channels]") {
  const std::vector<int64_t> dims = {5, 1, 3, 3};
  const auto v = randomValues(product(dims), 3);
  Model m(single("Conv", dims, v, {pb::attrInt("group", 5)}));
  checkLayer(m.layer(), v, 5, [](const Index& x) { return x[0]; });
  auto a = ql::analysis::analyzeLayer(m.layer(), {}, {});
  REQUIRE(a.ok());
  CHECK(a->inputs.absMax == a->stats.absMax);  // one filter per channel: the output-channel absMax
}

TEST_CASE("input channels: grouped ConvTranspose [I, O/g, k...]: axis 0 is all I input channels", "[input-channels]") {
  const std::vector<int64_t> dims = {4, 3, 2, 2};
  const auto v = randomValues(product(dims), 4);
  Model m(single("ConvTranspose", dims, v, {pb::attrInt("group", 2)}));
  checkLayer(m.layer(), v, 4, [](const Index& x) { return x[0]; });
}

TEST_CASE("input channels: Gemm B [K, N], and [N, K] with transB", "[input-channels]") {
  {
    const std::vector<int64_t> dims = {7, 5};
    const auto v = randomValues(product(dims), 5);
    Model m(single("Gemm", dims, v));
    checkLayer(m.layer(), v, 7, [](const Index& x) { return x[0]; });
  }
  {
    const std::vector<int64_t> dims = {5, 7};
    const auto v = randomValues(product(dims), 6);
    Model m(single("Gemm", dims, v, {pb::attrInt("transB", 1)}));
    checkLayer(m.layer(), v, 7, [](const Index& x) { return x[1]; });
  }
}

TEST_CASE("input channels: MatMul x @ W [..., K, N] and W @ x", "[input-channels]") {
  {
    const std::vector<int64_t> dims = {9, 4};
    const auto v = randomValues(product(dims), 7);
    Model m(single("MatMul", dims, v));
    checkLayer(m.layer(), v, 9, [](const Index& x) { return x[0]; });
  }
  {  // batched: row k of every matrix multiplies input feature k
    const std::vector<int64_t> dims = {2, 3, 4};
    const auto v = randomValues(product(dims), 8);
    Model m(single("MatMul", dims, v));
    checkLayer(m.layer(), v, 3, [](const Index& x) { return x[1]; });
  }
  {  // W [M, K] @ x [K, ...]: column k multiplies x's row k
    const std::vector<int64_t> dims = {6, 9};
    const auto v = randomValues(product(dims), 9);
    pb::GraphBuilder g;
    g.input("x").output("y");
    g.init(pb::floatTensor("W", dims, v));
    g.add(pb::node("MatMul", {"W", "x"}, {"y"}, "left"));
    Model m(g);
    REQUIRE(m.layer().weightOnLeft);
    checkLayer(m.layer(), v, 9, [](const Index& x) { return x[1]; });
  }
}

TEST_CASE("input channels: through a Transpose, on the stored tensor", "[input-channels]") {
  {  // stored Wt [N=5, K=7], MatMul sees Wt^T [7, 5]: stored column k is input k
    const std::vector<int64_t> dims = {5, 7};
    const auto v = randomValues(product(dims), 10);
    pb::GraphBuilder g;
    g.input("x").output("y");
    g.init(pb::floatTensor("Wt", dims, v));
    g.add(pb::node("Transpose", {"Wt"}, {"W"}, "tr", {pb::attrInts("perm", {1, 0})}));
    g.add(pb::node("MatMul", {"x", "W"}, {"y"}, "mm"));
    Model m(g);
    checkLayer(m.layer(), v, 7, [](const Index& x) { return x[1]; });
  }
  {  // grouped Conv from HWIO [kh, kw, I/g, O] (perm to OIHW): the group is set by stored
     // axis 3, which lies inside the input axis 2
    const std::vector<int64_t> dims = {2, 2, 2, 6};
    const auto v = randomValues(product(dims), 11);
    pb::GraphBuilder g;
    g.input("x").output("y");
    g.init(pb::floatTensor("Whwio", dims, v));
    g.add(pb::node("Transpose", {"Whwio"}, {"W"}, "tr", {pb::attrInts("perm", {3, 2, 0, 1})}));
    g.add(pb::node("Conv", {"x", "W"}, {"y"}, "conv", {pb::attrInt("group", 3)}));
    Model m(g);
    checkLayer(m.layer(), v, 6, [](const Index& x) { return (x[3] / 2) * 2 + x[2]; });
  }
}

TEST_CASE("input channels: streaming pieces of any size in any order equals the whole", "[input-channels]") {
  std::mt19937 rng(12);
  for (int trial = 0; trial < 200; ++trial) {
    const int rank = 1 + static_cast<int>(rng() % 4);
    std::vector<int64_t> dims(static_cast<size_t>(rank));
    for (auto& d : dims) d = 1 + static_cast<int64_t>(rng() % 5);
    if (rank == 1) dims.push_back(1 + static_cast<int64_t>(rng() % 5));
    InputChannelShape s;
    s.dims = dims;
    s.axis = static_cast<int>(rng() % dims.size());
    s.outputAxis = static_cast<int>((s.axis + 1 + rng() % (dims.size() - 1)) % dims.size());
    const int64_t O = dims[static_cast<size_t>(s.outputAxis)];
    s.groups = O > 1 && O % 2 == 0 && rng() % 2 ? 2 : 1;
    const int64_t J = dims[static_cast<size_t>(s.axis)];
    const auto v = randomValues(product(dims), 100 + static_cast<uint32_t>(trial));
    const std::vector<float> expected = naiveAbsMax(dims, v, s.groups * J, [&](const Index& x) {
      return x[static_cast<size_t>(s.outputAxis)] / (O / s.groups) * J + x[static_cast<size_t>(s.axis)];
    });
    auto whole = InputChannelAbsMax::create(s);
    REQUIRE(whole.ok());
    whole->feed(reinterpret_cast<const uint8_t*>(v.data()), 0, v.size());
    // Random cut points, pieces fed in shuffled order.
    std::vector<uint64_t> cuts = {0, v.size()};
    for (int k = 0; k < 4; ++k) cuts.push_back(rng() % (v.size() + 1));
    std::sort(cuts.begin(), cuts.end());
    std::vector<std::pair<uint64_t, uint64_t>> pieces;
    for (size_t k = 0; k + 1 < cuts.size(); ++k) pieces.push_back({cuts[k], cuts[k + 1] - cuts[k]});
    std::shuffle(pieces.begin(), pieces.end(), rng);
    auto streamed = InputChannelAbsMax::create(s);
    REQUIRE(streamed.ok());
    for (auto [first, count] : pieces) streamed->feed(reinterpret_cast<const uint8_t*>(v.data() + first), first, count);
    INFO("trial " << trial << " rank " << rank << " axis " << s.axis << " out " << s.outputAxis << " groups " << s.groups);
    CHECK(whole->finish().absMax == expected);
    CHECK(streamed->finish().absMax == expected);
  }
}

TEST_CASE("input channels: unaligned values are read as they are", "[input-channels]") {
  const std::vector<float> v = {1.5f, -4.0f, 2.0f, -0.25f, 3.0f, -1.0f};  // [3, 2], input axis 0
  std::vector<uint8_t> buf(1 + v.size() * 4);
  std::memcpy(buf.data() + 1, v.data(), v.size() * 4);
  auto a = InputChannelAbsMax::create({{3, 2}, 0, 1, 1});
  REQUIRE(a.ok());
  a->feed(buf.data() + 1, 0, v.size());
  CHECK(a->finish().absMax == std::vector<float>{4.0f, 2.0f, 3.0f});
}

TEST_CASE("input channels: bad shapes are error values", "[input-channels]") {
  CHECK_FALSE(InputChannelAbsMax::create({{3, 2}, 2, 0, 1}).ok());   // axis out of range
  CHECK_FALSE(InputChannelAbsMax::create({{3, 2}, 0, 0, 1}).ok());   // the same axis twice
  CHECK_FALSE(InputChannelAbsMax::create({{3, 2}, 0, -1, 1}).ok());  // negative
  CHECK_FALSE(InputChannelAbsMax::create({{3, 5}, 0, 1, 2}).ok());   // 5 output channels, 2 groups
  CHECK_FALSE(InputChannelAbsMax::create({{3, 2}, 0, 1, 0}).ok());   // group 0
  auto empty = InputChannelAbsMax::create({{0, 4}, 1, 0, 1});
  REQUIRE(empty.ok());
  empty->feed(nullptr, 0, 0);
  CHECK(empty->finish().absMax == std::vector<float>(4, 0.0f));
}

TEST_CASE("input channels: the Tukey rule on absMax relative to the smallest non-zero", "[input-channels][outliers]") {
  // relatives {0, 1, 1, 1, 1, 1, 1, 20}: Q1 = Q3 = 1, threshold 1: only the 20 is flagged.
  auto o = flagRelativeOutliers({0.0f, 0.5f, 0.5f, 0.5f, 0.5f, 0.5f, 0.5f, 10.0f});
  CHECK(o.relative == std::vector<double>{0, 1, 1, 1, 1, 1, 1, 20});
  CHECK(o.q1 == 1.0);
  CHECK(o.q3 == 1.0);
  CHECK(o.threshold == 1.0);
  CHECK(o.flagged == std::vector<uint32_t>{7});
  // {1, 2, 3, 4}: Q1 = 1.75, Q3 = 3.25 (linear interpolation), threshold 5.5: none.
  auto n = flagRelativeOutliers({1.0f, 2.0f, 3.0f, 4.0f});
  CHECK(n.q1 == 1.75);
  CHECK(n.q3 == 3.25);
  CHECK(n.threshold == 5.5);
  CHECK(n.flagged.empty());
  // all zero: every relative 0, nothing flagged
  auto z = flagRelativeOutliers({0.0f, 0.0f});
  CHECK(z.relative == std::vector<double>{0, 0});
  CHECK(z.flagged.empty());
  // a MatMul whose row 3 is 50x the others: input channel 3 is flagged
  std::vector<float> w(10 * 4);
  for (size_t i = 0; i < w.size(); ++i) w[i] = 0.01f * static_cast<float>(1 + i % 7) * (i / 4 == 3 ? 50.0f : 1.0f);
  auto a = InputChannelAbsMax::create({{10, 4}, 0, 1, 1});
  REQUIRE(a.ok());
  a->feed(reinterpret_cast<const uint8_t*>(w.data()), 0, w.size());
  CHECK(a->finish().outliers == std::vector<uint32_t>{3});
}
