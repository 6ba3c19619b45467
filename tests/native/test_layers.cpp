// Layer discovery on small hand-built graphs: which nodes carry weights, where the
// weight is stored, which stored axis holds the output channels, the channel
// layout, bias, quantization parameters and what follows each layer.
#include <catch2/catch.hpp>
#include <cmath>
#include <string>
#include <vector>

#include "analysis/analyze.hpp"
#include "graph/layers.hpp"
#include "graph/nodes.hpp"
#include "onnx/model.hpp"
#include "pb_writer.hpp"

using ql::graph::Discovery;
using ql::graph::FollowerKind;
using ql::graph::Layer;
using ql::stats::ChannelLayout;
namespace pb = pbw::onnx;
using pbw::Msg;

namespace {

struct Found {
  std::vector<uint8_t> bytes;
  ql::Result<ql::onnx::Model> model{ql::onnx::Model{}};
  Discovery d;

  explicit Found(const pb::GraphBuilder& g) : Found(pb::model(g.build())) {}
  explicit Found(const Msg& m) : bytes(pb::toVec(m)) {
    model = ql::onnx::parseModel(bytes.data(), bytes.size());
    INFO(model.error().describe());
    REQUIRE(model.ok());
    auto r = ql::graph::findLayers(model.value());
    REQUIRE(r.ok());
    d = std::move(r.value());
  }
  const Layer& only() const {
    INFO("layers found: " << d.layers.size() << (d.skipped.empty() ? "" : "; skipped: " + d.skipped[0]));
    REQUIRE(d.layers.size() == 1);
    return d.layers[0];
  }
  const Layer& named(const std::string& name) const {
    for (const auto& L : d.layers)
      if (L.name == name) return L;
    FAIL("no layer named " << name);
    return d.layers[0];
  }
};

std::vector<float> ramp(size_t n, float scale = 0.01f) {
  std::vector<float> v(n);
  for (size_t i = 0; i < n; ++i) v[i] = scale * static_cast<float>(static_cast<int>(i % 17) - 8);
  return v;
}

size_t product(const std::vector<int64_t>& d) {
  size_t p = 1;
  for (int64_t x : d) p *= static_cast<size_t>(x);
  return p;
}

Msg weight(const std::string& name, const std::vector<int64_t>& dims) { return pb::floatTensor(name, dims, ramp(product(dims))); }

bool sameLayout(const ChannelLayout& a, const ChannelLayout& b) {
  return a.outer == b.outer && a.rows == b.rows && a.channels == b.channels && a.inner == b.inner;
}
#define CHECK_LAYOUT(L, o, r, c, i)                                                                        \
  do {                                                                                                     \
    INFO("layout {" << (L).outer << ", " << (L).rows << ", " << (L).channels << ", " << (L).inner << "}"); \
    CHECK(sameLayout((L), ChannelLayout{o, r, c, i}));                                                     \
  } while (0)

// A graph with one op: x -> op(x, W, ...) -> y
pb::GraphBuilder single(const std::string& op, const std::vector<int64_t>& wdims, const std::vector<Msg>& attrs = {},
                        const std::string& name = "layer") {
  pb::GraphBuilder g;
  g.input("x").output("y");
  g.init(weight("W", wdims));
  g.add(pb::node(op, {"x", "W"}, {"y"}, name, attrs));
  return g;
}

}  // namespace

TEST_CASE("layers: Conv weight [O, I, kh, kw] has its channels on axis 0", "[layers][conv]") {
  Found f(single("Conv", {8, 3, 3, 3}));
  const Layer& L = f.only();
  CHECK(L.name == "layer");
  CHECK(L.path.empty());
  CHECK(L.op == "Conv");
  CHECK(L.channelAxis == 0);
  CHECK_LAYOUT(L.layout, 1, 1, 8, 27);
  CHECK(L.groups == 1);
  CHECK_FALSE(L.depthwise);
  CHECK(L.shape == std::vector<int64_t>{8, 3, 3, 3});
  REQUIRE(L.weight);
  CHECK(L.weight->name == "W");
  CHECK(L.via.empty());
  CHECK(L.bias == nullptr);
  CHECK(L.biasName.empty());
  CHECK(L.follower.kind == FollowerKind::None);
  CHECK_FALSE(L.quant.present);
  CHECK(L.nodeIndex == 0);
  CHECK(L.node == &f.model.value().graph.nodes[0]);
  CHECK(L.graph == &f.model.value().graph);
  CHECK(f.d.skipped.empty());
  // Conv1d and Conv3d weights
  CHECK_LAYOUT(Found(single("Conv", {4, 2, 5})).only().layout, 1, 1, 4, 10);
  CHECK_LAYOUT(Found(single("Conv", {4, 2, 3, 3, 3})).only().layout, 1, 1, 4, 54);
}

TEST_CASE("layers: Conv bias input, groups and depthwise", "[layers][conv]") {
  {
    pb::GraphBuilder g;
    g.init(weight("W", {6, 2, 3, 3})).init(weight("B", {6}));
    g.add(pb::node("Conv", {"x", "W", "B"}, {"y"}, "grouped", {pb::attrInt("group", 3)}));
    Found f(g);
    const Layer& L = f.only();
    CHECK(L.groups == 3);
    CHECK_FALSE(L.depthwise);
    CHECK_LAYOUT(L.layout, 1, 1, 6, 18);
    CHECK(L.biasName == "B");
    REQUIRE(L.bias);
    CHECK(L.bias->name == "B");
  }
  {
    Found f(single("Conv", {8, 1, 3, 3}, {pb::attrInt("group", 8)}));
    const Layer& L = f.only();
    CHECK(L.depthwise);
    CHECK(L.groups == 8);
    CHECK_LAYOUT(L.layout, 1, 1, 8, 9);
  }
  {  // group 1 with I == 1 is not depthwise
    Found f(single("Conv", {8, 1, 3, 3}));
    CHECK_FALSE(f.only().depthwise);
  }
  {  // output channels not divisible by group: skipped with a reason
    Found f(single("Conv", {7, 1, 3, 3}, {pb::attrInt("group", 2)}));
    CHECK(f.d.layers.empty());
    REQUIRE(f.d.skipped.size() == 1);
    CHECK(f.d.skipped[0].find("layer (Conv)") == 0);
    CHECK(f.d.skipped[0].find("divisible") != std::string::npos);
  }
  {  // group 0 or negative
    Found f(single("Conv", {8, 1, 3, 3}, {pb::attrInt("group", 0)}));
    CHECK(f.d.layers.empty());
    REQUIRE(f.d.skipped.size() == 1);
    CHECK(f.d.skipped[0].find("group") != std::string::npos);
    Found n(single("Conv", {8, 1, 3, 3}, {pb::attrInt("group", -4)}));
    CHECK(n.d.layers.empty());
  }
  {  // a bias name that is not a constant
    pb::GraphBuilder g;
    g.init(weight("W", {2, 2, 1, 1}));
    g.add(pb::node("Relu", {"x"}, {"b_dyn"})).add(pb::node("Conv", {"x", "W", "b_dyn"}, {"y"}, "c"));
    Found f(g);
    CHECK(f.only().biasName == "b_dyn");
    CHECK(f.only().bias == nullptr);
  }
}

TEST_CASE("layers: ConvTranspose weight [I, O/g, k...] has its channels on axis 1", "[layers][convtranspose]") {
  {
    Found f(single("ConvTranspose", {4, 6, 3, 3}));
    const Layer& L = f.only();
    CHECK(L.channelAxis == 1);
    CHECK_LAYOUT(L.layout, 1, 4, 6, 9);
    CHECK_FALSE(L.depthwise);
  }
  {  // grouped: {g, I/g, O/g, k}
    Found f(single("ConvTranspose", {4, 3, 3, 3}, {pb::attrInt("group", 2)}));
    const Layer& L = f.only();
    CHECK(L.groups == 2);
    CHECK(L.channelAxis == 1);
    CHECK_LAYOUT(L.layout, 2, 2, 3, 9);
    CHECK(L.layout.channelCount() == 6);
    CHECK_FALSE(L.depthwise);
  }
  {  // depthwise transpose: I == group, one output channel per group
    Found f(single("ConvTranspose", {4, 1, 3, 3}, {pb::attrInt("group", 4)}));
    const Layer& L = f.only();
    CHECK(L.depthwise);
    CHECK_LAYOUT(L.layout, 4, 1, 1, 9);
  }
  {  // input channels not divisible by group
    Found f(single("ConvTranspose", {5, 1, 3, 3}, {pb::attrInt("group", 2)}));
    CHECK(f.d.layers.empty());
    REQUIRE(f.d.skipped.size() == 1);
    CHECK(f.d.skipped[0].find("divisible") != std::string::npos);
  }
  {  // rank 2 is not a convolution weight
    Found f(single("ConvTranspose", {4, 6}));
    CHECK(f.d.layers.empty());
    REQUIRE(f.d.skipped.size() == 1);
    CHECK(f.d.skipped[0].find("rank 2") != std::string::npos);
  }
}

TEST_CASE("layers: Gemm transB decides the channel axis", "[layers][gemm]") {
  {
    pb::GraphBuilder g;
    g.init(weight("W", {5, 7})).init(weight("C", {5}));
    g.add(pb::node("Gemm", {"x", "W", "C"}, {"y"}, "fc", {pb::attrInt("transB", 1)}));
    Found f(g);
    const Layer& L = f.only();
    CHECK(L.channelAxis == 0);
    CHECK_LAYOUT(L.layout, 1, 1, 5, 7);
    CHECK(L.biasName == "C");
  }
  {
    Found f(single("Gemm", {7, 5}, {pb::attrInt("transB", 0)}));
    CHECK(f.only().channelAxis == 1);
    CHECK_LAYOUT(f.only().layout, 1, 7, 5, 1);
  }
  {  // default transB is 0
    Found f(single("Gemm", {7, 5}));
    CHECK(f.only().channelAxis == 1);
  }
  {  // transA does not matter
    Found f(single("Gemm", {5, 7}, {pb::attrInt("transA", 1), pb::attrInt("transB", 1)}));
    CHECK(f.only().channelAxis == 0);
  }
  {
    Found f(single("Gemm", {2, 5, 7}));
    CHECK(f.d.layers.empty());
    REQUIRE(f.d.skipped.size() == 1);
    CHECK(f.d.skipped[0].find("Gemm weight of rank 3") != std::string::npos);
  }
}

TEST_CASE("layers: MatMul uses the last axis, or axis -2 for a weight on the left", "[layers][matmul]") {
  {
    Found f(single("MatMul", {300, 37}));
    const Layer& L = f.only();
    CHECK(L.channelAxis == 1);
    CHECK_LAYOUT(L.layout, 1, 300, 37, 1);
  }
  {  // batched weight [B, K, N]
    Found f(single("MatMul", {2, 3, 4}));
    CHECK(f.only().channelAxis == 2);
    CHECK_LAYOUT(f.only().layout, 1, 6, 4, 1);
  }
  {  // W @ x: rows of W are the outputs
    pb::GraphBuilder g;
    g.init(weight("W", {6, 9}));
    g.add(pb::node("MatMul", {"W", "x"}, {"y"}, "left"));
    Found f(g);
    const Layer& L = f.only();
    CHECK(L.channelAxis == 0);
    CHECK_LAYOUT(L.layout, 1, 1, 6, 9);
    CHECK(L.weight->name == "W");
  }
  {  // batched on the left [B, M, K]: axis 1
    pb::GraphBuilder g;
    g.init(weight("W", {2, 6, 9}));
    g.add(pb::node("MatMul", {"W", "x"}, {"y"}, "left"));
    Found f(g);
    CHECK(f.only().channelAxis == 1);
    CHECK_LAYOUT(f.only().layout, 1, 2, 6, 9);
  }
  {  // activations times activations: not a layer, not skipped either (operands that
     // name nothing would be skipped: see test_untrusted.cpp)
    pb::GraphBuilder g;
    g.input("a", {2, 3}).input("b", {3, 4});
    g.add(pb::node("MatMul", {"a", "b"}, {"y"}, "mm"));
    Found f(g);
    CHECK(f.d.layers.empty());
    CHECK(f.d.skipped.empty());
  }
  {  // rank 1 weight
    Found f(single("MatMul", {9}));
    CHECK(f.d.layers.empty());
    REQUIRE(f.d.skipped.size() == 1);
    CHECK(f.d.skipped[0].find("rank 1") != std::string::npos);
  }
  {  // a scalar weight
    Found f(single("MatMul", {}));
    CHECK(f.d.layers.empty());
    REQUIRE(f.d.skipped.size() == 1);
    CHECK(f.d.skipped[0].find("scalar") != std::string::npos);
  }
}

TEST_CASE("layers: a Transpose-fed weight maps the channel axis to the stored axis", "[layers][transpose]") {
  {  // Gemm-style [N, K] stored, transposed to [K, N] for MatMul
    pb::GraphBuilder g;
    g.init(weight("Wt", {5, 7}));
    g.add(pb::node("Transpose", {"Wt"}, {"W"}, "tr", {pb::attrInts("perm", {1, 0})}));
    g.add(pb::node("MatMul", {"x", "W"}, {"y"}, "mm"));
    Found f(g);
    const Layer& L = f.only();
    CHECK(L.weight->name == "Wt");
    CHECK(L.via == std::vector<std::string_view>{"Transpose"});
    CHECK(L.channelAxis == 0);
    CHECK(L.shape == std::vector<int64_t>{5, 7});
    CHECK_LAYOUT(L.layout, 1, 1, 5, 7);
  }
  {  // default perm reverses the axes
    pb::GraphBuilder g;
    g.init(weight("Wt", {5, 7}));
    g.add(pb::node("Transpose", {"Wt"}, {"W"}));
    g.add(pb::node("MatMul", {"x", "W"}, {"y"}, "mm"));
    Found f(g);
    CHECK(f.only().channelAxis == 0);
  }
  {  // TF HWIO stored, transposed to OIHW for Conv: perm [3, 2, 0, 1]
    pb::GraphBuilder g;
    g.init(weight("Whwio", {3, 3, 4, 16}));
    g.add(pb::node("Transpose", {"Whwio"}, {"W"}, "tr", {pb::attrInts("perm", {3, 2, 0, 1})}));
    g.add(pb::node("Conv", {"x", "W"}, {"y"}, "conv"));
    Found f(g);
    const Layer& L = f.only();
    CHECK(L.channelAxis == 3);
    CHECK_LAYOUT(L.layout, 1, 36, 16, 1);
    // the analysis reads the stored tensor with that layout: channel c holds W[..., c]
    auto a = ql::analysis::analyzeLayer(L, {}, {});
    REQUIRE(a.ok());
    CHECK(a->stats.channels == 16);
    const auto vals = ramp(3 * 3 * 4 * 16);
    float mn = 1e9f, mx = -1e9f;
    for (size_t i = 5; i < vals.size(); i += 16) {
      mn = std::min(mn, vals[i]);
      mx = std::max(mx, vals[i]);
    }
    CHECK(a->stats.min[5] == mn);
    CHECK(a->stats.max[5] == mx);
  }
  {  // two Transposes compose
    pb::GraphBuilder g;
    g.init(weight("S", {2, 3, 4}));
    g.add(pb::node("Transpose", {"S"}, {"T1"}, "", {pb::attrInts("perm", {2, 0, 1})}));  // [4, 2, 3]
    g.add(pb::node("Transpose", {"T1"}, {"W"}, "", {pb::attrInts("perm", {0, 2, 1})}));  // [4, 3, 2]
    g.add(pb::node("MatMul", {"x", "W"}, {"y"}, "mm"));  // channels: W axis 2 = T1 axis 1 = S axis 0
    Found f(g);
    CHECK(f.only().channelAxis == 0);
    CHECK(f.only().via == std::vector<std::string_view>{"Transpose", "Transpose"});
    CHECK_LAYOUT(f.only().layout, 1, 1, 2, 12);
  }
  {  // a perm of the wrong length or out of range: not traced
    for (const std::vector<int64_t>& perm :
         {std::vector<int64_t>{0, 1, 2}, std::vector<int64_t>{0, 2}, std::vector<int64_t>{-1, 0}}) {
      pb::GraphBuilder g;
      g.init(weight("Wt", {5, 7}));
      g.add(pb::node("Transpose", {"Wt"}, {"W"}, "tr", {pb::attrInts("perm", perm)}));
      g.add(pb::node("MatMul", {"x", "W"}, {"y"}, "mm"));
      Found f(g);
      CHECK(f.d.layers.empty());
    }
  }
  {  // grouped ConvTranspose with a transposed weight is skipped, not misread
    pb::GraphBuilder g;
    g.init(weight("S", {3, 3, 4, 2}));
    g.add(pb::node("Transpose", {"S"}, {"W"}, "tr", {pb::attrInts("perm", {2, 3, 0, 1})}));
    g.add(pb::node("ConvTranspose", {"x", "W"}, {"y"}, "ct", {pb::attrInt("group", 2)}));
    Found f(g);
    CHECK(f.d.layers.empty());
    REQUIRE(f.d.skipped.size() == 1);
    CHECK(f.d.skipped[0].find("transposed") != std::string::npos);
  }
}

TEST_CASE("layers: Identity and Cast chains lead back to the stored tensor", "[layers][chain]") {
  pb::GraphBuilder g;
  g.init(pb::rawTensor("W16", pb::kFloat16, {4, 2, 1, 1}, std::string(16, '\x3c')));
  g.add(pb::node("Cast", {"W16"}, {"W32"}, "cast", {pb::attrInt("to", 1)}));
  g.add(pb::node("Identity", {"W32"}, {"W"}, "id"));
  g.add(pb::node("Conv", {"x", "W"}, {"y"}, "conv"));
  Found f(g);
  const Layer& L = f.only();
  CHECK(L.weight->name == "W16");
  CHECK(L.via == std::vector<std::string_view>{"Cast", "Identity"});
  CHECK(L.channelAxis == 0);
  auto a = ql::analysis::analyzeLayer(L, {}, {});
  REQUIRE(a.ok());
  CHECK(a->stats.channels == 4);
  CHECK(a->stats.min[0] == ql::onnx::halfToFloat(0x3c3c));
}

TEST_CASE("layers: a cycle of Identity nodes ends the trace", "[layers][chain]") {
  pb::GraphBuilder g;
  g.add(pb::node("Identity", {"b"}, {"a"})).add(pb::node("Identity", {"a"}, {"b"}));
  g.add(pb::node("MatMul", {"x", "a"}, {"y"}, "mm"));
  Found f(g);
  CHECK(f.d.layers.empty());
}

TEST_CASE("layers: a Constant node can hold the weight", "[layers][constant]") {
  pb::GraphBuilder g;
  g.add(pb::constantNode("W", weight("Wc", {3, 4}), "const"));
  g.add(pb::node("MatMul", {"x", "W"}, {"y"}, "mm"));
  Found f(g);
  const Layer& L = f.only();
  CHECK(L.weight->name == "Wc");
  CHECK(L.weightName == "W");  // the name the graph uses, not the tensor's own
  CHECK_LAYOUT(L.layout, 1, 3, 4, 1);
  // an initializer goes by its own name, also through a chain
  pb::GraphBuilder h;
  h.init(weight("Wi", {3, 4}));
  h.add(pb::node("Identity", {"Wi"}, {"W"}, "id"));
  h.add(pb::node("MatMul", {"x", "W"}, {"y"}, "mm"));
  Found fi(h);
  CHECK(fi.only().weightName == "Wi");
}

TEST_CASE("layers: DequantizeLinear weights, per-tensor and per-axis", "[layers][quant]") {
  const std::vector<int8_t> q = {-128, -1, 0, 1, 2, 3, 127, 4, 5, 6, 7, 8, -9, -10, 11, 12, 13, 14, 15, 16, 17, 18, 19, 20};
  {  // per-axis on the output channels of a Conv [4, 2, 3, 1]
    pb::GraphBuilder g;
    g.init(pb::int8Tensor("Wq", {4, 2, 3, 1}, q));
    g.init(pb::floatTensor("scale", {4}, {0.5f, 0.25f, 2.0f, 1.0f}));
    g.init(pb::int8Tensor("zp", {4}, {0, 1, -1, 2}));
    g.add(pb::node("DequantizeLinear", {"Wq", "scale", "zp"}, {"W"}, "dq", {pb::attrInt("axis", 0)}));
    g.add(pb::node("Conv", {"x", "W"}, {"y"}, "conv"));
    Found f(g);
    const Layer& L = f.only();
    CHECK(L.weight->name == "Wq");
    CHECK(L.via == std::vector<std::string_view>{"DequantizeLinear"});
    REQUIRE(L.quant.present);
    CHECK(L.quant.via == "DequantizeLinear");
    REQUIRE(L.quant.scale);
    CHECK(L.quant.scale->name == "scale");
    REQUIRE(L.quant.zeroPoint);
    CHECK(L.quant.zeroPoint->name == "zp");
    CHECK(L.quant.axis == 0);
    auto a = ql::analysis::analyzeLayer(L, {}, {});
    REQUIRE(a.ok());
    CHECK(a->quant.present);
    CHECK(a->quant.intType == "int8");
    CHECK(a->quant.axis == 0);
    CHECK(a->quant.scale == std::vector<double>{0.5, 0.25, 2.0, 1.0});
    CHECK(a->quant.zeroPoint == std::vector<double>{0, 1, -1, 2});
    // channel 0: (q - 0) * 0.5 over {-128, -1, 0, 1, 2, 3}
    CHECK(a->stats.min[0] == -64.0f);
    CHECK(a->stats.max[0] == 1.5f);
    // channel 1: (q - 1) * 0.25 over {127, 4, 5, 6, 7, 8}
    CHECK(a->stats.min[1] == 0.75f);
    CHECK(a->stats.max[1] == 31.5f);
    // channel 2: (q + 1) * 2 over {-9, -10, 11, 12, 13, 14}
    CHECK(a->stats.min[2] == -18.0f);
    CHECK(a->stats.max[2] == 30.0f);
    // channel 3: (q - 2) * 1 over {15 .. 20}
    CHECK(a->stats.min[3] == 13.0f);
    CHECK(a->stats.max[3] == 18.0f);
  }
  {  // per-axis on the last axis of a MatMul weight [K=6, N=4] (negative axis)
    pb::GraphBuilder g;
    g.init(pb::int8Tensor("Wq", {6, 4}, q));
    g.init(pb::floatTensor("scale", {4}, {1.0f, 2.0f, 3.0f, 4.0f}));
    g.add(pb::node("DequantizeLinear", {"Wq", "scale"}, {"W"}, "dq", {pb::attrInt("axis", -1)}));
    g.add(pb::node("MatMul", {"x", "W"}, {"y"}, "mm"));
    Found f(g);
    const Layer& L = f.only();
    CHECK(L.quant.axis == 1);
    CHECK(L.quant.zeroPoint == nullptr);
    CHECK(L.channelAxis == 1);
    auto a = ql::analysis::analyzeLayer(L, {}, {});
    REQUIRE(a.ok());
    // column 3: q[3], q[7], ... = {1, 4, 8, 12, 16, 20} * 4
    CHECK(a->stats.min[3] == 4.0f);
    CHECK(a->stats.max[3] == 80.0f);
    // column 0: {-128, 2, 7, 13, 17} ... times 1
    CHECK(a->stats.min[0] == -128.0f);
  }
  {  // per-tensor: a scalar scale and zero point
    pb::GraphBuilder g;
    g.init(pb::rawTensor("Wq", pb::kUint8, {2, 3}, std::string("\x00\x80\xff\x10\x20\x30", 6)));
    g.init(pb::floatTensor("scale", {}, {0.5f}));
    g.init(pb::rawTensor("zp", pb::kUint8, {}, std::string("\x80", 1)));
    g.add(pb::node("DequantizeLinear", {"Wq", "scale", "zp"}, {"W"}, "dq"));
    g.add(pb::node("Gemm", {"x", "W"}, {"y"}, "fc"));
    Found f(g);
    const Layer& L = f.only();
    REQUIRE(L.quant.present);
    CHECK(L.quant.axis == -1);
    auto a = ql::analysis::analyzeLayer(L, {}, {});
    REQUIRE(a.ok());
    CHECK(a->quant.intType == "uint8");
    CHECK(a->stats.tensorMin == -64.0f);
    CHECK(a->stats.tensorMax == 63.5f);
  }
  {  // axis out of range: not traced
    pb::GraphBuilder g;
    g.init(pb::int8Tensor("Wq", {6, 4}, q));
    g.init(pb::floatTensor("scale", {4}, {1.0f, 2.0f, 3.0f, 4.0f}));
    g.add(pb::node("DequantizeLinear", {"Wq", "scale"}, {"W"}, "dq", {pb::attrInt("axis", 2)}));
    g.add(pb::node("MatMul", {"x", "W"}, {"y"}, "mm"));
    CHECK(Found(g).d.layers.empty());
  }
  {  // a scale count that does not match the axis: found, but the analysis says why it fails
    pb::GraphBuilder g;
    g.init(pb::int8Tensor("Wq", {6, 4}, q));
    g.init(pb::floatTensor("scale", {3}, {1.0f, 2.0f, 3.0f}));
    g.add(pb::node("DequantizeLinear", {"Wq", "scale"}, {"W"}, "dq", {pb::attrInt("axis", 1)}));
    g.add(pb::node("MatMul", {"x", "W"}, {"y"}, "mm"));
    Found f(g);
    auto a = ql::analysis::analyzeLayer(f.only(), {}, {});
    REQUIRE_FALSE(a.ok());
    CHECK(a.error().code == ql::ErrorCode::InvalidModel);
    CHECK(a.error().message.find("expected 1 or 4") != std::string::npos);
    CHECK(a.error().message.find("scale") != std::string::npos);
  }
  {  // Transpose after DequantizeLinear: per-axis parameters would refer to another layout
    pb::GraphBuilder g;
    g.init(pb::int8Tensor("Wq", {6, 4}, q));
    g.init(pb::floatTensor("scale", {6}, {1, 2, 3, 4, 5, 6}));
    g.add(pb::node("DequantizeLinear", {"Wq", "scale"}, {"Wd"}, "dq", {pb::attrInt("axis", 0)}));
    g.add(pb::node("Transpose", {"Wd"}, {"W"}, "tr", {pb::attrInts("perm", {1, 0})}));
    g.add(pb::node("MatMul", {"x", "W"}, {"y"}, "mm"));
    CHECK(Found(g).d.layers.empty());
  }
}

TEST_CASE("layers: QLinearConv, ConvInteger and MatMulInteger", "[layers][quant]") {
  {
    pb::GraphBuilder g;
    g.init(pb::int8Tensor("w", {4, 2, 3, 1}, std::vector<int8_t>(24, 3)));
    g.init(pb::floatTensor("w_scale", {4}, {1, 2, 3, 4}));
    g.init(pb::int8Tensor("w_zp", {4}, {0, 1, 2, 3}));
    g.init(pb::rawTensor("B", pb::kInt32, {4}, std::string(16, '\0')));
    g.add(pb::node("QLinearConv", {"x", "xs", "xz", "w", "w_scale", "w_zp", "ys", "yz", "B"}, {"y"}, "qconv"));
    Found f(g);
    const Layer& L = f.only();
    CHECK(L.op == "QLinearConv");
    CHECK(L.weight->name == "w");
    CHECK(L.channelAxis == 0);
    REQUIRE(L.quant.present);
    CHECK(L.quant.via == "QLinearConv");
    CHECK(L.quant.scale->name == "w_scale");
    CHECK(L.quant.zeroPoint->name == "w_zp");
    CHECK(L.quant.axis == 0);
    CHECK(L.biasName == "B");
    auto a = ql::analysis::analyzeLayer(L, {}, {});
    REQUIRE(a.ok());
    for (int c = 0; c < 4; ++c) CHECK(a->stats.min[c] == static_cast<float>((3 - c) * (c + 1)));
  }
  {  // per-tensor scale
    pb::GraphBuilder g;
    g.init(pb::int8Tensor("w", {2, 1, 1, 1}, {1, 2}));
    g.init(pb::floatTensor("w_scale", {}, {0.5f}));
    g.init(pb::int8Tensor("w_zp", {}, {0}));
    g.add(pb::node("QLinearConv", {"x", "xs", "xz", "w", "w_scale", "w_zp", "ys", "yz"}, {"y"}, "qconv"));
    Found f(g);
    CHECK(f.only().quant.axis == -1);
    CHECK(f.only().biasName.empty());
  }
  {
    pb::GraphBuilder g;
    g.init(pb::rawTensor("w", pb::kUint8, {3, 2}, std::string("\x01\x02\x03\x04\x05\x06", 6)));
    g.init(pb::rawTensor("wz", pb::kUint8, {2}, std::string("\x01\x02", 2)));
    g.add(pb::node("MatMulInteger", {"x", "w", "xz", "wz"}, {"y"}, "mmi"));
    Found f(g);
    const Layer& L = f.only();
    CHECK(L.quant.present);
    CHECK(L.quant.scale == nullptr);
    CHECK(L.quant.zeroPoint->name == "wz");
    CHECK(L.quant.axis == 1);
    auto a = ql::analysis::analyzeLayer(L, {}, {});
    REQUIRE(a.ok());
    CHECK(a->stats.min[0] == 0.0f);  // {1, 3, 5} - 1
    CHECK(a->stats.max[1] == 4.0f);  // {2, 4, 6} - 2
  }
  {
    pb::GraphBuilder g;
    g.init(pb::int8Tensor("w", {2, 1, 2, 2}, {1, 2, 3, 4, 5, 6, 7, 8}));
    g.add(pb::node("ConvInteger", {"x", "w"}, {"y"}, "ci"));
    Found f(g);
    CHECK(f.only().quant.present);
    CHECK(f.only().quant.zeroPoint == nullptr);
    CHECK(f.only().quant.axis == -1);
  }
}

namespace {

// ONNX Runtime's quantize_dynamic pattern around one integer op (operators/conv.py,
// matmul.py): DynamicQuantizeLinear(x) -> op(xq, w, xz, wz) -> Cast(float) -> Mul(., S),
// S = Mul(x_scale, w_scale); `swap` swaps both Muls' operands. Returns the graph.
pb::GraphBuilder dynamicPattern(const std::string& op, const Msg& w, const Msg& wScale, bool swap, int castTo = 1) {
  pb::GraphBuilder g;
  g.input("x").output("z");
  g.init(w);
  g.init(pb::rawTensor("wz", pb::kUint8, {}, std::string("\x02", 1)));
  g.init(wScale);
  g.add(pb::node("DynamicQuantizeLinear", {"x"}, {"xq", "xs", "xz"}, "dq"));
  g.add(pb::node(op, {"xq", "w", "xz", "wz"}, {"y"}, "layer_quant"));
  g.add(pb::node("Cast", {"y"}, {"yc"}, "cast", {pb::attrInt("to", castTo)}));
  g.add(pb::node("Mul", swap ? std::vector<std::string>{"w_scale", "xs"} : std::vector<std::string>{"xs", "w_scale"}, {"s"},
                 "scales_mul"));
  g.add(pb::node("Mul", swap ? std::vector<std::string>{"s", "yc"} : std::vector<std::string>{"yc", "s"}, {"m"},
                 "output_scale_mul"));
  g.add(pb::node("Relu", {"m"}, {"z"}, "relu"));
  return g;
}

}  // namespace

TEST_CASE("layers: ONNX Runtime dynamic quantization, the weight scale traced after the op", "[layers][quant]") {
  const Msg w = pb::rawTensor("w", pb::kUint8, {3, 2}, std::string("\x01\x02\x03\x04\x05\x06", 6));
  for (bool swap : {false, true}) {
    INFO("swapped operands: " << swap);
    {  // per-tensor scale, MatMulInteger: W[k][n] = (code - 2) * 0.5
      Found f(dynamicPattern("MatMulInteger", w, pb::floatTensor("w_scale", {}, {0.5f}), swap));
      const Layer& L = f.only();
      CHECK(L.quant.note.empty());
      REQUIRE(L.quant.scale);
      CHECK(L.quant.scale->name == "w_scale");
      CHECK(L.quant.scaleVia == "output_scale_mul");
      CHECK(L.quant.axis == -1);
      CHECK(L.follower.kind == FollowerKind::Relu);
      auto a = ql::analysis::analyzeLayer(L, {}, {});
      REQUIRE(a.ok());
      CHECK(a->stats.min[0] == -0.5f);  // {1, 3, 5}: (1 - 2) * 0.5
      CHECK(a->stats.max[1] == 2.0f);   // {2, 4, 6}: (6 - 2) * 0.5
      CHECK(a->stored.present);
      CHECK(a->stored.levels == std::vector<double>{3, 3});
    }
    {  // per-channel scale [N]
      Found f(dynamicPattern("MatMulInteger", w, pb::floatTensor("w_scale", {2}, {0.5f, 0.25f}), swap));
      const Layer& L = f.only();
      CHECK(L.quant.note.empty());
      CHECK(L.quant.axis == 1);
      auto a = ql::analysis::analyzeLayer(L, {}, {});
      REQUIRE(a.ok());
      CHECK(a->stats.max[1] == 1.0f);  // (6 - 2) * 0.25
    }
  }
  {  // Conv: a per-channel scale must broadcast along the output's channel axis, [C, 1, 1]
    const Msg cw = pb::int8Tensor("w", {2, 1, 1, 1}, {1, 2});
    Found ok(dynamicPattern("ConvInteger", cw, pb::floatTensor("w_scale", {2, 1, 1}, {1, 2}), false));
    CHECK(ok.only().quant.note.empty());
    CHECK(ok.only().quant.axis == 0);
    Found flat(dynamicPattern("ConvInteger", cw, pb::floatTensor("w_scale", {2}, {1, 2}), false));
    CHECK(flat.only().quant.scale == nullptr);
    CHECK(flat.only().quant.note.find("weight scale not found (codes shown in integer units): ") == 0);
  }
  {  // not cast to float: not the pattern, said so, scale 1
    Found f(dynamicPattern("MatMulInteger", w, pb::floatTensor("w_scale", {}, {0.5f}), false, 10));
    CHECK(f.only().quant.scale == nullptr);
    CHECK(f.only().quant.note.find("is not cast to float") != std::string::npos);
    CHECK(f.only().follower.kind == FollowerKind::Other);  // the Cast
  }
}

TEST_CASE("stored codes: levels, span, saturation and zero points counted per channel", "[stored]") {
  // int8 [2 channels x 4]: channel 0 codes {-127, 0, 0, 127}, channel 1 {-128, -128, 5, 6}.
  ql::analysis::StoredCodeCounter c;
  REQUIRE(c.start(ql::onnx::kInt8, 0, ChannelLayout{1, 1, 2, 4}));
  const std::vector<float> codes = {-127, 0, 0, 127, -128, -128, 5, 6};
  c.add(codes.data(), 0, 4);  // in two pieces
  c.add(codes.data() + 4, 4, 4);
  {  // symmetric (zero point 0): the low end is -127
    auto f = c.finish({0}, "per-tensor");
    CHECK(f.symmetric);
    CHECK(f.lowEnd == -127);
    CHECK(f.levels == std::vector<double>{3, 3});
    CHECK(f.codeMin == std::vector<double>{-127, -128});
    CHECK(f.codeMax == std::vector<double>{127, 6});
    CHECK(f.atLow == std::vector<double>{1, 0});
    CHECK(f.atHigh == std::vector<double>{1, 0});
    CHECK(f.effectiveBits == Approx(std::log2(3.0)));
    CHECK(f.lowestSpanBits == Approx(std::log2(135.0)));  // -128..6
    CHECK(f.spanBits == Approx(0.5 * (std::log2(255.0) + std::log2(135.0))));
    CHECK(f.saturatedFraction == Approx(2.0 / 8));
    CHECK(f.saturatedChannels == 0);  // 2 at the ends is not more than max(2, 1%)
    CHECK(f.zeroPointsOutsideUsed == 0);
  }
  {  // per-channel zero points {0, 7}: asymmetric, low end -128; 7 lies outside channel 1's -128..6
    auto f = c.finish({0, 7}, "per-channel");
    CHECK_FALSE(f.symmetric);
    CHECK(f.atLow == std::vector<double>{0, 2});
    CHECK(f.zeroPointsOutsideUsed == 1);
    CHECK(f.zeroPointsOutsideType == 0);
  }
  CHECK(c.finish({300}, "per-tensor").zeroPointsOutsideType == 1);
  ql::analysis::StoredCodeCounter wide;
  CHECK_FALSE(wide.start(ql::onnx::kInt32, 0, ChannelLayout{}));
}

TEST_CASE("stored codes: int4, float8 and per-block zero points", "[stored]") {
  {  // int4 [1 channel x 4]: -8..7; symmetric (zero point 0): the low end is -7
    ql::analysis::StoredCodeCounter c;
    REQUIRE(c.start(ql::onnx::kInt4, 0, ChannelLayout{1, 1, 1, 4}));
    const std::vector<float> codes = {-8, -7, 7, 7};
    c.add(codes.data(), 0, 4);
    auto f = c.finish({0}, "per-tensor");
    CHECK(f.bits == 4);
    CHECK(f.isSigned);
    CHECK_FALSE(f.isFloat);
    CHECK(f.typeMin == -8);
    CHECK(f.typeMax == 7);
    CHECK(f.lowEnd == -7);
    CHECK(f.levels == std::vector<double>{3});
    CHECK(f.atLow == std::vector<double>{1});
    CHECK(f.atHigh == std::vector<double>{2});
    CHECK(f.spanBits == Approx(4.0));  // -8..7: 16 codes
  }
  {  // uint4: 0..15, symmetric at 8
    ql::analysis::StoredCodeCounter c;
    REQUIRE(c.start(ql::onnx::kUint4, 0, ChannelLayout{1, 1, 1, 2}));
    const std::vector<float> codes = {0, 15};
    c.add(codes.data(), 0, 2);
    auto f = c.finish({8}, "per-tensor");
    CHECK_FALSE(f.isSigned);
    CHECK(f.symmetric);
    CHECK(f.lowEnd == 0);
    CHECK(f.saturatedFraction == Approx(1.0));
  }
  {  // float8 E4M3FN: 253 finite values (256 bytes, 2 NaN, -0 = +0), ends +-448
    ql::analysis::StoredCodeCounter c;
    REQUIRE(c.start(ql::onnx::kFloat8E4M3FN, 0, ChannelLayout{1, 1, 2, 3}));
    // channel 0: {448, -448, 0} spans the whole grid; channel 1: {1, 1.125, -0} spans
    // 0, the 55 values between 0 and 1 (7 subnormals, 6 binades of 8), 1 and 1.125.
    const std::vector<float> codes = {448, -448, 0, 1, 1.125f, -0.0f};
    c.add(codes.data(), 0, 6);
    auto f = c.finish({0}, "per-tensor");
    CHECK(f.isFloat);
    CHECK(f.isSigned);
    CHECK(f.typeMin == -448);
    CHECK(f.typeMax == 448);
    CHECK(f.lowEnd == -448);
    CHECK(f.levels == std::vector<double>{3, 3});
    CHECK(f.codeMin == std::vector<double>{-448, 0});
    CHECK(f.codeMax == std::vector<double>{448, 1.125});
    CHECK(f.atLow == std::vector<double>{1, 0});
    CHECK(f.atHigh == std::vector<double>{1, 0});
    CHECK(f.lowestSpanBits == Approx(std::log2(58.0)));  // 0, 55 values in (0, 1), 1, 1.125
    CHECK(f.spanBits == Approx(0.5 * (std::log2(253.0) + std::log2(58.0))));
    const std::vector<float> nan = {NAN, INFINITY};
    c.add(nan.data(), 0, 2);  // not values of the type: not counted
    CHECK(c.finish({0}, "per-tensor").elements == 6);
  }
  {  // per-block zero points mapped to their channels: 2 channels x 2 blocks
    ql::analysis::StoredCodeCounter c;
    REQUIRE(c.start(ql::onnx::kUint8, 0, ChannelLayout{1, 1, 2, 4}));
    const std::vector<float> codes = {10, 20, 30, 40, 100, 110, 120, 130};
    c.add(codes.data(), 0, 8);
    // zero points 15, 50 (channel 0: 50 outside 10..40) and 105, 5 (channel 1: 5 outside)
    auto f = c.finish({15, 50, 105, 5}, "per-block", {0, 0, 1, 1});
    CHECK(f.zeroPointsOutsideUsed == 2);
    const uint64_t none = ql::analysis::StoredCodeCounter::kNoChannel;
    CHECK(c.finish({15, 50, 105, 5}, "per-block", {none, none, none, none}).zeroPointsOutsideUsed == 0);
    CHECK(c.finish({15, 50, 105, 300}, "per-block", {none, none, none, none}).zeroPointsOutsideType == 1);
  }
}

namespace {

// x -> Conv(W) -> t, then the follower nodes given; returns the layer.
Found withFollowers(const std::vector<Msg>& nodes, const std::vector<Msg>& inits = {}) {
  pb::GraphBuilder g;
  g.init(weight("W", {4, 2, 1, 1}));
  for (const auto& t : inits) g.init(t);
  g.add(pb::node("Conv", {"x", "W"}, {"t"}, "conv"));
  for (const auto& n : nodes) g.add(n);
  return Found(g);
}

}  // namespace

TEST_CASE("layers: follower kinds", "[layers][follower]") {
  {
    Found f = withFollowers({pb::node("Relu", {"t"}, {"y"}, "relu")});
    CHECK(f.only().follower.kind == FollowerKind::Relu);
    CHECK(f.only().follower.name == "relu");
    REQUIRE(f.only().follower.node);
    CHECK(f.only().follower.node->opType == "Relu");
  }
  {  // unnamed follower: "<op>#<index>"
    Found f = withFollowers({pb::node("Relu", {"t"}, {"y"})});
    CHECK(f.only().follower.name == "Relu#1");
  }
  {
    Found f = withFollowers({pb::node("Clip", {"t"}, {"y"}, "clip", {pb::attrFloat("min", 0), pb::attrFloat("max", 6)})});
    CHECK(f.only().follower.kind == FollowerKind::Relu6);
    CHECK(f.only().follower.clipMin == 0.0);
    CHECK(f.only().follower.clipMax == 6.0);
  }
  {
    Found f = withFollowers({pb::node("Clip", {"t"}, {"y"}, "clip", {pb::attrFloat("min", -1), pb::attrFloat("max", 1)})});
    CHECK(f.only().follower.kind == FollowerKind::Clip);
    CHECK(f.only().follower.clipMin == -1.0);
    CHECK(f.only().follower.clipMax == 1.0);
  }
  {  // opset 11+: bounds as initializer inputs
    Found f = withFollowers({pb::node("Clip", {"t", "lo", "hi"}, {"y"}, "clip")},
                            {pb::floatTensor("lo", {}, {0.0f}), pb::floatTensor("hi", {}, {6.0f})});
    CHECK(f.only().follower.kind == FollowerKind::Relu6);
  }
  {  // bounds from Constant nodes: a value tensor, and value_float
    Found f = withFollowers({pb::constantNode("lo", pb::floatTensor("lo_t", {}, {0.0f})),
                             pb::node("Constant", {}, {"hi"}, "", {pb::attrFloat("value_float", 6.0f)}),
                             pb::node("Clip", {"t", "lo", "hi"}, {"y"}, "clip")});
    CHECK(f.only().follower.kind == FollowerKind::Relu6);
  }
  {  // value_int bounds and a float16 tensor bound
    Found f = withFollowers({pb::node("Constant", {}, {"lo"}, "", {pb::attrInt("value_int", 0)}),
                             pb::constantNode("hi", pb::rawTensor("hi_t", pb::kFloat16, {1}, std::string("\x00\x46", 2))),
                             pb::node("Clip", {"t", "lo", "hi"}, {"y"}, "clip")});
    CHECK(f.only().follower.kind == FollowerKind::Relu6);
  }
  {  // only a lower bound: a Clip, not a ReLU6
    Found f = withFollowers({pb::node("Clip", {"t", "lo"}, {"y"}, "clip")}, {pb::floatTensor("lo", {}, {0.0f})});
    CHECK(f.only().follower.kind == FollowerKind::Clip);
    CHECK(f.only().follower.clipMin == 0.0);
    CHECK(std::isinf(f.only().follower.clipMax));
  }
  {  // empty min input, max given
    Found f = withFollowers({pb::node("Clip", {"t", "", "hi"}, {"y"}, "clip")}, {pb::floatTensor("hi", {}, {6.0f})});
    CHECK(f.only().follower.kind == FollowerKind::Clip);
    CHECK(f.only().follower.clipMax == 6.0);
  }
  {  // bounds that are computed, not constant
    Found f = withFollowers({pb::node("Relu", {"x"}, {"lo"}), pb::node("Clip", {"t", "lo", "hi"}, {"y"}, "clip")},
                            {pb::floatTensor("hi", {}, {6.0f})});
    CHECK(f.only().follower.kind == FollowerKind::Clip);
  }
  {  // a bound with more than one element is not a scalar
    Found f = withFollowers({pb::node("Clip", {"t", "lo", "hi"}, {"y"}, "clip")},
                            {pb::floatTensor("lo", {2}, {0.0f, 0.0f}), pb::floatTensor("hi", {}, {6.0f})});
    CHECK(f.only().follower.kind == FollowerKind::Clip);
  }
  {
    Found f = withFollowers({pb::node("PRelu", {"t", "slope"}, {"y"}, "prelu")}, {pb::floatTensor("slope", {1}, {0.1f})});
    CHECK(f.only().follower.kind == FollowerKind::PRelu);
  }
  {
    Found f = withFollowers({pb::node("LeakyRelu", {"t"}, {"y"}, "lrelu", {pb::attrFloat("alpha", 0.1f)})});
    CHECK(f.only().follower.kind == FollowerKind::LeakyRelu);
  }
  {  // SiLU: Sigmoid and a Mul of the output with it
    Found f = withFollowers({pb::node("Sigmoid", {"t"}, {"s"}, "sig"), pb::node("Mul", {"t", "s"}, {"y"}, "mul")});
    CHECK(f.only().follower.kind == FollowerKind::SiLU);
    CHECK(f.only().follower.name == "mul");
  }
  {  // order of the Mul inputs and the nodes does not matter
    Found f = withFollowers({pb::node("Mul", {"s", "t"}, {"y"}, "mul"), pb::node("Sigmoid", {"t"}, {"s"}, "sig")});
    CHECK(f.only().follower.kind == FollowerKind::SiLU);
  }
  {  // Sigmoid and a Mul that does not use it: two consumers
    Found f = withFollowers({pb::node("Sigmoid", {"t"}, {"s"}, "sig"), pb::node("Mul", {"t", "t"}, {"y"}, "mul")});
    CHECK(f.only().follower.kind == FollowerKind::Multiple);
  }
  {
    Found f = withFollowers({pb::node("Relu", {"t"}, {"y1"}), pb::node("Add", {"t", "z"}, {"y2"})});
    CHECK(f.only().follower.kind == FollowerKind::Multiple);
    CHECK(f.only().follower.node == nullptr);
  }
  {
    Found f = withFollowers({});
    CHECK(f.only().follower.kind == FollowerKind::None);
    CHECK(f.only().follower.node == nullptr);
  }
  {
    Found f = withFollowers({pb::node("MaxPool", {"t"}, {"y"}, "pool")});
    CHECK(f.only().follower.kind == FollowerKind::Other);
    CHECK(f.only().follower.name == "pool");
  }
  {  // BatchNormalization then an activation
    Found f = withFollowers(
        {pb::node("BatchNormalization", {"t", "g", "b", "m", "v"}, {"bn"}, "bn"), pb::node("Relu", {"bn"}, {"y"}, "relu")});
    CHECK(f.only().follower.kind == FollowerKind::BatchNorm);
    CHECK(f.only().follower.name == "bn");
    CHECK(f.only().activation.kind == FollowerKind::Relu);
    CHECK(f.only().activation.name == "relu");
  }
  {
    Found f = withFollowers({pb::node("BatchNormalization", {"t", "g", "b", "m", "v"}, {"bn"}, "bn"),
                             pb::node("Clip", {"bn"}, {"y"}, "clip", {pb::attrFloat("min", 0), pb::attrFloat("max", 6)})});
    CHECK(f.only().activation.kind == FollowerKind::Relu6);
  }
  {  // BatchNormalization alone
    Found f = withFollowers({pb::node("BatchNormalization", {"t", "g", "b", "m", "v"}, {"bn"}, "bn")});
    CHECK(f.only().follower.kind == FollowerKind::BatchNorm);
    CHECK(f.only().activation.kind == FollowerKind::None);
  }
  {  // without BatchNormalization there is no separate activation
    Found f = withFollowers({pb::node("Relu", {"t"}, {"y"}, "relu")});
    CHECK(f.only().activation.kind == FollowerKind::None);
  }
}

TEST_CASE("layers: follower kind names", "[layers][follower]") {
  using ql::graph::followerKindName;
  CHECK(std::string(followerKindName(FollowerKind::None)) == "none");
  CHECK(std::string(followerKindName(FollowerKind::Multiple)) == "multiple");
  CHECK(std::string(followerKindName(FollowerKind::BatchNorm)) == "batchnorm");
  CHECK(std::string(followerKindName(FollowerKind::Relu)) == "relu");
  CHECK(std::string(followerKindName(FollowerKind::Relu6)) == "relu6");
  CHECK(std::string(followerKindName(FollowerKind::Clip)) == "clip");
  CHECK(std::string(followerKindName(FollowerKind::PRelu)) == "prelu");
  CHECK(std::string(followerKindName(FollowerKind::LeakyRelu)) == "leakyrelu");
  CHECK(std::string(followerKindName(FollowerKind::SiLU)) == "silu");
  CHECK(std::string(followerKindName(FollowerKind::Other)) == "other");
}

TEST_CASE("layers: MatMul bias through a following Add", "[layers][bias]") {
  for (bool biasFirst : {false, true}) {
    pb::GraphBuilder g;
    g.init(weight("W", {6, 4})).init(weight("b", {4}));
    g.add(pb::node("MatMul", {"x", "W"}, {"t"}, "mm"));
    g.add(biasFirst ? pb::node("Add", {"b", "t"}, {"u"}, "add") : pb::node("Add", {"t", "b"}, {"u"}, "add"));
    g.add(pb::node("Relu", {"u"}, {"y"}, "relu"));
    Found f(g);
    const Layer& L = f.only();
    INFO("bias first " << biasFirst);
    CHECK(L.biasName == "b");
    REQUIRE(L.bias);
    CHECK(L.bias->name == "b");
    CHECK(L.follower.kind == FollowerKind::Relu);  // the activation after the bias Add
    CHECK(L.follower.name == "relu");
  }
  {  // an Add of a constant of the wrong size is not a bias
    pb::GraphBuilder g;
    g.init(weight("W", {6, 4})).init(weight("b", {5}));
    g.add(pb::node("MatMul", {"x", "W"}, {"t"}, "mm"));
    g.add(pb::node("Add", {"t", "b"}, {"u"}, "add"));
    g.add(pb::node("Relu", {"u"}, {"y"}, "relu"));
    Found f(g);
    CHECK(f.only().bias == nullptr);
    CHECK(f.only().biasName.empty());
    CHECK(f.only().follower.kind == FollowerKind::Other);
    CHECK(f.only().follower.name == "add");
  }
  {  // an Add of two activations is not a bias
    pb::GraphBuilder g;
    g.init(weight("W", {6, 4}));
    g.add(pb::node("MatMul", {"x", "W"}, {"t"}, "mm"));
    g.add(pb::node("Add", {"t", "z"}, {"u"}, "add"));
    Found f(g);
    CHECK(f.only().bias == nullptr);
    CHECK(f.only().follower.kind == FollowerKind::Other);
  }
  {  // the MatMul output also used elsewhere: no bias folding
    pb::GraphBuilder g;
    g.init(weight("W", {6, 4})).init(weight("b", {4}));
    g.add(pb::node("MatMul", {"x", "W"}, {"t"}, "mm"));
    g.add(pb::node("Add", {"t", "b"}, {"u"}, "add"));
    g.add(pb::node("Relu", {"t"}, {"v"}, "relu"));
    Found f(g);
    CHECK(f.only().bias == nullptr);
    CHECK(f.only().follower.kind == FollowerKind::Multiple);
  }
  {  // Conv with a bias input does not look for an Add
    pb::GraphBuilder g;
    g.init(weight("W", {4, 1, 1, 1})).init(weight("B", {4})).init(weight("b2", {4}));
    g.add(pb::node("Conv", {"x", "W", "B"}, {"t"}, "conv"));
    g.add(pb::node("Add", {"t", "b2"}, {"u"}, "add"));
    Found f(g);
    CHECK(f.only().biasName == "B");
    CHECK(f.only().follower.kind == FollowerKind::Other);
  }
}

TEST_CASE("layers: sub-graph layers are named with their path", "[layers][subgraph]") {
  pb::GraphBuilder body;
  body.name = "body";
  body.init(weight("Wb", {3, 2}));
  body.add(pb::node("MatMul", {"h", "Wb"}, {"h2"}, "inner_mm"));
  body.add(pb::node("Conv", {"h", "W_outer"}, {"h3"}));  // the outer initializer is visible; unnamed node #1

  pb::GraphBuilder deeper;
  deeper.name = "deeper";
  deeper.add(pb::node("Gemm", {"z", "W_outer2"}, {"z2"}, "deep_fc", {pb::attrInt("transB", 1)}));
  pb::GraphBuilder elseG;
  elseG.name = "else";
  elseG.add(pb::node("If", {"c2"}, {"o2"}, "if_inner", {pb::attrGraph("then_branch", deeper.build())}));

  pb::GraphBuilder br0, br1;
  br1.add(pb::node("MatMul", {"q", "Wb1"}, {"q2"}, "list_mm"));
  br1.init(weight("Wb1", {2, 2}));

  pb::GraphBuilder g;
  g.init(weight("W_outer", {4, 3, 1, 1})).init(weight("W_outer2", {5, 6}));
  g.add(pb::node("Loop", {"", "", "x"}, {"y"}, "loop", {pb::attrGraph("body", body.build())}));
  g.add(pb::node("If", {"c"}, {"o"}, "", {pb::attrGraph("else_branch", elseG.build())}));
  g.add(pb::node("Scan", {"s"}, {"so"}, "scan", {pb::attrGraphs("branches", {br0.build(), br1.build()})}));
  Found f(g);
  REQUIRE(f.d.layers.size() == 4);
  const Layer& mm = f.named("inner_mm");
  CHECK(mm.path == "loop/body");
  CHECK_LAYOUT(mm.layout, 1, 3, 2, 1);
  CHECK(mm.graph == f.model.value().graph.nodes[0].attribute("body")->g.get());
  const Layer& conv = f.named("Conv#1");
  CHECK(conv.path == "loop/body");
  CHECK(conv.weight->name == "W_outer");
  CHECK_LAYOUT(conv.layout, 1, 1, 4, 3);
  const Layer& deep = f.named("deep_fc");
  CHECK(deep.path == "If#1/else_branch/if_inner/then_branch");
  CHECK(deep.weight->name == "W_outer2");
  CHECK(deep.channelAxis == 0);
  const Layer& lm = f.named("list_mm");
  CHECK(lm.path == "scan/branches[1]");
}

TEST_CASE("layers: a sub-graph value shadows an outer constant of the same name", "[layers][subgraph]") {
  pb::GraphBuilder body;
  body.add(pb::node("Relu", {"h"}, {"W"}, "shadow"));  // computes "W" inside the body
  body.add(pb::node("MatMul", {"h", "W"}, {"h2"}, "inner_mm"));
  pb::GraphBuilder g;
  g.init(weight("W", {3, 2}));
  g.add(pb::node("Loop", {"", "", "x"}, {"y"}, "loop", {pb::attrGraph("body", body.build())}));
  g.add(pb::node("MatMul", {"x", "W"}, {"y2"}, "outer_mm"));
  Found f(g);
  REQUIRE(f.d.layers.size() == 1);
  CHECK(f.d.layers[0].name == "outer_mm");
}

TEST_CASE("layers: a sub-graph input shadows an outer constant of the same name", "[layers][subgraph]") {
  pb::GraphBuilder body;
  body.input("W", {3, 2});  // bound at run time by the Loop
  body.add(pb::node("MatMul", {"h", "W"}, {"h2"}, "inner_mm"));
  pb::GraphBuilder g;
  g.init(weight("W", {3, 2}));
  g.add(pb::node("Loop", {"", "", "W"}, {"y"}, "loop", {pb::attrGraph("body", body.build())}));
  Found f(g);
  CHECK(f.d.layers.empty());
}

TEST_CASE("layers: main-graph inputs that are also initializers are weights", "[layers]") {
  // Old exporters list every initializer among the graph inputs too.
  pb::GraphBuilder g;
  g.input("x", {1, 3}).input("W", {3, 2});
  g.init(weight("W", {3, 2}));
  g.add(pb::node("MatMul", {"x", "W"}, {"y"}, "mm"));
  Found f(g);
  CHECK(f.only().weight->name == "W");
}

TEST_CASE("layers: nodes outside the default domain are not layers", "[layers]") {
  pb::GraphBuilder g;
  g.init(weight("W", {4, 2, 1, 1}));
  g.add(pb::node("Conv", {"x", "W"}, {"y"}, "custom_conv", {}, "com.example"));
  g.add(pb::node("Conv", {"x", "W"}, {"z"}, "onnx_conv", {}, "ai.onnx"));
  Found f(g);
  REQUIRE(f.d.layers.size() == 1);
  CHECK(f.d.layers[0].name == "onnx_conv");
  CHECK(f.d.layers[0].nodeIndex == 1);
}

TEST_CASE("layers: unnamed layers and several layers keep graph order", "[layers]") {
  pb::GraphBuilder g;
  g.init(weight("W1", {4, 3, 3, 3})).init(weight("W2", {8, 4, 1, 1})).init(weight("W3", {8, 10}));
  g.add(pb::node("Conv", {"x", "W1"}, {"a"}));
  g.add(pb::node("Relu", {"a"}, {"b"}));
  g.add(pb::node("Conv", {"b", "W2"}, {"c"}));
  g.add(pb::node("Flatten", {"c"}, {"d"}));
  g.add(pb::node("MatMul", {"d", "W3"}, {"e"}));
  Found f(g);
  REQUIRE(f.d.layers.size() == 3);
  CHECK(f.d.layers[0].name == "Conv#0");
  CHECK(f.d.layers[0].follower.kind == FollowerKind::Relu);
  CHECK(f.d.layers[1].name == "Conv#2");
  CHECK(f.d.layers[1].follower.kind == FollowerKind::Other);
  CHECK(f.d.layers[2].name == "MatMul#4");
  CHECK(f.d.layers[2].follower.kind == FollowerKind::None);
  for (const auto& L : f.d.layers) {
    auto a = ql::analysis::analyzeLayer(L, {}, {});
    REQUIRE(a.ok());
    CHECK(a->stats.channels == L.layout.channelCount());
  }
}

TEST_CASE("layers: an external weight is found and its analysis asks for the data", "[layers][external]") {
  pb::GraphBuilder g;
  g.init(pb::externalTensor("W", pb::kFloat, {4, 2, 1, 1}, "w.bin", "0", "32"));
  g.add(pb::node("Conv", {"x", "W"}, {"y"}, "conv"));
  Found f(g);
  const Layer& L = f.only();
  CHECK(L.weight->external);
  auto a = ql::analysis::analyzeLayer(L, {}, {});
  REQUIRE_FALSE(a.ok());
  CHECK(a.error().code == ql::ErrorCode::MissingExternalData);
  const std::vector<float> vals = {1, 2, 3, 4, 5, 6, 7, 8};
  auto b = ql::analysis::analyzeLayer(L, ql::wire::Bytes{reinterpret_cast<const uint8_t*>(vals.data()), 32}, {});
  REQUIRE(b.ok());
  CHECK(b->stats.min == std::vector<float>{1, 3, 5, 7});
  CHECK(b->stats.max == std::vector<float>{2, 4, 6, 8});
}

TEST_CASE("layers: zero-size weights are found; analysing them is an error, not a crash", "[layers]") {
  Found f(single("Conv", {0, 3, 3, 3}));
  const Layer& L = f.only();
  CHECK(L.layout.elementCount() == 0);
  auto a = ql::analysis::analyzeLayer(L, {}, {});
  REQUIRE_FALSE(a.ok());
  CHECK(a.error().message.find("layer 'layer'") == 0);
}

TEST_CASE("layers: the input-channel axis, transB and weight-on-the-left are worked out once", "[layers][axes]") {
  auto family = [](const Layer& L) { return L.spec ? L.spec->family : ql::graph::OpFamily::None; };
  {  // Conv W [O, I, kh, kw]
    Found f(single("Conv", {8, 3, 3, 3}));
    const Layer& L = f.only();
    REQUIRE(L.spec);
    CHECK(L.spec == ql::graph::findOpSpec("", "Conv"));
    CHECK(family(L) == ql::graph::OpFamily::Conv);
    CHECK(L.channelAxis == 0);
    CHECK(L.inputAxis == 1);
    CHECK_FALSE(L.transB);
    CHECK_FALSE(L.weightOnLeft);
  }
  {  // grouped Conv: the input axis holds I/g
    Found f(single("Conv", {6, 2, 3, 3}, {pb::attrInt("group", 3)}));
    CHECK(f.only().inputAxis == 1);
  }
  {  // ConvTranspose W [I, O/g, k...], grouped or not
    CHECK(Found(single("ConvTranspose", {4, 6, 3, 3})).only().inputAxis == 0);
    Found g(single("ConvTranspose", {4, 3, 3, 3}, {pb::attrInt("group", 2)}));
    CHECK(g.only().channelAxis == 1);
    CHECK(g.only().inputAxis == 0);
    CHECK(family(g.only()) == ql::graph::OpFamily::ConvTranspose);
  }
  {  // Gemm: transB stores [N, K]
    Found t(single("Gemm", {5, 7}, {pb::attrInt("transB", 1)}));
    CHECK(t.only().transB);
    CHECK(t.only().channelAxis == 0);
    CHECK(t.only().inputAxis == 1);
    Found n(single("Gemm", {7, 5}));
    CHECK_FALSE(n.only().transB);
    CHECK(n.only().channelAxis == 1);
    CHECK(n.only().inputAxis == 0);
    CHECK(family(n.only()) == ql::graph::OpFamily::Gemm);
  }
  {  // transB on an op that has no such attribute means nothing
    Found f(single("MatMul", {7, 5}, {pb::attrInt("transB", 1)}));
    CHECK_FALSE(f.only().transB);
    CHECK(f.only().channelAxis == 1);
  }
  {  // MatMul x @ W [..., K, N]
    Found f(single("MatMul", {2, 3, 4}));
    CHECK(f.only().channelAxis == 2);
    CHECK(f.only().inputAxis == 1);
    CHECK_FALSE(f.only().weightOnLeft);
  }
  {  // W @ x: W [M, K] is [out, in]
    pb::GraphBuilder g;
    g.init(weight("W", {6, 9}));
    g.add(pb::node("MatMul", {"W", "x"}, {"y"}, "left"));
    Found f(g);
    const Layer& L = f.only();
    CHECK(L.weightOnLeft);
    CHECK(L.channelAxis == 0);
    CHECK(L.inputAxis == 1);
  }
  {  // the same weight on the right and a constant on the left: the right one is the weight
    pb::GraphBuilder g;
    g.init(weight("A", {4, 6})).init(weight("B", {6, 9}));
    g.add(pb::node("MatMul", {"A", "B"}, {"y"}, "both"));
    Found f(g);
    CHECK(f.only().weight->name == "B");
    CHECK_FALSE(f.only().weightOnLeft);
  }
  {  // through a Transpose: both axes are axes of the stored tensor
    pb::GraphBuilder g;
    g.init(weight("Wt", {5, 7}));
    g.add(pb::node("Transpose", {"Wt"}, {"W"}, "tr", {pb::attrInts("perm", {1, 0})}));
    g.add(pb::node("MatMul", {"x", "W"}, {"y"}, "mm"));
    Found f(g);
    CHECK(f.only().channelAxis == 0);
    CHECK(f.only().inputAxis == 1);
  }
  {  // TF HWIO stored, transposed to OIHW for Conv: O is stored axis 3, I axis 2
    pb::GraphBuilder g;
    g.init(weight("Whwio", {3, 3, 4, 16}));
    g.add(pb::node("Transpose", {"Whwio"}, {"W"}, "tr", {pb::attrInts("perm", {3, 2, 0, 1})}));
    g.add(pb::node("Conv", {"x", "W"}, {"y"}, "conv"));
    Found f(g);
    CHECK(f.only().channelAxis == 3);
    CHECK(f.only().inputAxis == 2);
  }
  {  // integer ops: the table's entry, and its axes
    pb::GraphBuilder g;
    g.init(pb::rawTensor("w", pb::kUint8, {3, 2}, std::string("\x01\x02\x03\x04\x05\x06", 6)));
    g.add(pb::node("MatMulInteger", {"x", "w"}, {"y"}, "mmi"));
    Found f(g);
    CHECK(f.only().spec == ql::graph::findOpSpec("", "MatMulInteger"));
    CHECK(family(f.only()) == ql::graph::OpFamily::MatMul);
    CHECK(f.only().channelAxis == 1);
    CHECK(f.only().inputAxis == 0);
  }
}

TEST_CASE("analysis: rankByRisk orders by int8 per-tensor SQNR, failures last", "[analysis]") {
  const double nan = std::nan("");
  CHECK(ql::analysis::rankByRisk({30, nan, 10, 20, nan, 10}) == std::vector<size_t>{2, 5, 3, 0, 1, 4});
  CHECK(ql::analysis::rankByRisk({}).empty());
  CHECK(ql::analysis::rankByRisk({INFINITY, 5, -INFINITY}) == std::vector<size_t>{2, 1, 0});
}

// LSTM, GRU, RNN (ONNX operator specifications): W [D, G*H, I], R [D, G*H, H], B [D, 2*G*H];
// each node is two layers, "<node>/W" and "<node>/R", channels d*G*H + g*H + u.
TEST_CASE("layers: a recurrent node is two layers, its W and its R", "[layers][recurrent]") {
  struct Case {
    const char* op;
    int64_t gates;
    const char* direction;  // nullptr: the attribute is absent (forward)
    int64_t D;
  };
  for (const Case& c : {Case{"LSTM", 4, "bidirectional", 2}, Case{"GRU", 3, "reverse", 1}, Case{"RNN", 1, nullptr, 1}}) {
    INFO(c.op);
    const int64_t H = 5, I = 3, G = c.gates;
    pb::GraphBuilder g;
    g.input("x").output("y");
    g.init(weight("W", {c.D, G * H, I})).init(weight("R", {c.D, G * H, H})).init(weight("B", {c.D, 2 * G * H}));
    std::vector<Msg> attrs = {pb::attrInt("hidden_size", H)};
    if (c.direction) attrs.push_back(pb::attrString("direction", c.direction));
    g.add(pb::node(c.op, {"x", "W", "R", "B"}, {"y"}, "rnn", attrs));
    g.add(pb::node("Relu", {"y"}, {"z"}, "act"));
    Found f(g);
    CHECK(f.d.skipped.empty());
    REQUIRE(f.d.layers.size() == 2);
    const Layer& w = f.d.layers[0];
    const Layer& r = f.d.layers[1];
    CHECK(w.name == "rnn/W");
    CHECK(r.name == "rnn/R");
    CHECK(ql::graph::recurrentLayerName("rnn", ql::graph::RecurrentPart::W) == w.name);
    for (const Layer* L : {&w, &r}) {
      CHECK(L->op == c.op);
      CHECK(L->spec->family == ql::graph::OpFamily::Recurrent);
      CHECK(L->recurrent.node == "rnn");
      CHECK(L->recurrent.directions == c.D);
      CHECK(L->recurrent.direction == (c.direction ? c.direction : "forward"));
      CHECK(L->recurrent.hiddenSize == H);
      CHECK(L->channelAxis == 1);
      CHECK(L->inputAxis == 2);
      CHECK(L->layout.channelCount() == static_cast<uint64_t>(c.D * G * H));
      CHECK(L->biasName == "B");
      REQUIRE(L->bias);
      CHECK(L->follower.kind == FollowerKind::Relu);
      CHECK(L->groups == 1);
      CHECK_FALSE(L->depthwise);
    }
    CHECK(w.recurrent.part == ql::graph::RecurrentPart::W);
    CHECK(r.recurrent.part == ql::graph::RecurrentPart::R);
    CHECK(w.weight->name == "W");
    CHECK(r.weight->name == "R");
    CHECK_LAYOUT(w.layout, static_cast<uint64_t>(c.D), 1, static_cast<uint64_t>(G * H), static_cast<uint64_t>(I));
    CHECK_LAYOUT(r.layout, static_cast<uint64_t>(c.D), 1, static_cast<uint64_t>(G * H), static_cast<uint64_t>(H));
    CHECK(w.recurrent.biasOffset == 0);
    CHECK(r.recurrent.biasOffset == static_cast<uint64_t>(G * H));
  }
}

TEST_CASE("layers: recurrent channels are direction-major, then gate, then unit", "[layers][recurrent]") {
  // Bidirectional LSTM, H = 2, I = 3: W [2, 8, 3] with W[d, c, k] = 100 d + c + k / 10, so
  // channel d*8 + c spans exactly 100 d + c .. 100 d + c + 0.2.
  const int64_t D = 2, GH = 8, I = 3;
  std::vector<float> v;
  for (int64_t d = 0; d < D; ++d)
    for (int64_t c = 0; c < GH; ++c)
      for (int64_t k = 0; k < I; ++k) v.push_back(static_cast<float>(100 * d + c) + static_cast<float>(k) / 10.0f);
  pb::GraphBuilder g;
  g.init(pb::floatTensor("W", {D, GH, I}, v)).init(weight("R", {D, GH, 2}));
  g.add(pb::node("LSTM", {"x", "W", "R"}, {"y"}, "lstm", {pb::attrString("direction", "bidirectional")}));
  Found f(g);
  REQUIRE(f.d.layers.size() == 2);
  const Layer& w = f.named("lstm/W");
  CHECK(w.recurrent.hiddenSize == 2);  // no hidden_size attribute: from W's shape
  CHECK(w.biasName.empty());
  auto a = ql::analysis::analyzeLayer(w, {}, {});
  REQUIRE(a.ok());
  REQUIRE(a->stats.channels == 16);
  for (int64_t d = 0; d < D; ++d) {
    for (int64_t c = 0; c < GH; ++c) {
      const size_t ch = static_cast<size_t>(d * GH + c);
      INFO("channel " << ch);
      CHECK(a->stats.min[ch] == static_cast<float>(100 * d + c));
      CHECK(a->stats.max[ch] == static_cast<float>(100 * d + c) + 0.2f);
    }
  }
}

TEST_CASE("layers: recurrent weights through DequantizeLinear, and parts skipped with reasons", "[layers][recurrent]") {
  {  // W quantized per output channel (axis 1 of [1, 3, 2]: the RNN's H = 3 units), R float
    pb::GraphBuilder g;
    g.init(pb::int8Tensor("Wq", {1, 3, 2}, {-4, 4, 10, -10, 1, 2}));
    g.init(pb::floatTensor("s", {3}, {0.5f, 0.25f, 2.0f}));
    g.init(weight("R", {1, 3, 3}));
    g.add(pb::node("DequantizeLinear", {"Wq", "s"}, {"W"}, "dq", {pb::attrInt("axis", 1)}));
    g.add(pb::node("RNN", {"x", "W", "R"}, {"y"}, "rnn", {pb::attrInt("hidden_size", 3)}));
    Found f(g);
    REQUIRE(f.d.layers.size() == 2);
    const Layer& w = f.named("rnn/W");
    CHECK(w.weight->name == "Wq");
    CHECK(w.via == std::vector<std::string_view>{"DequantizeLinear"});
    REQUIRE(w.quant.present);
    CHECK(w.quant.axis == 1);
    auto a = ql::analysis::analyzeLayer(w, {}, {});
    REQUIRE(a.ok());
    CHECK(a->stats.min == std::vector<float>{-2.0f, -2.5f, 2.0f});
    CHECK(a->stats.max == std::vector<float>{2.0f, 2.5f, 4.0f});
    CHECK_FALSE(f.named("rnn/R").quant.present);
  }
  {  // R computed at run time, W of the wrong shape, B of the wrong shape on another node
    pb::GraphBuilder g;
    g.input("x").input("Rin");
    g.init(weight("W", {1, 12, 3})).init(weight("Wbad", {2, 12, 3})).init(weight("R", {1, 12, 4}));
    g.init(weight("Bbad", {1, 12}));
    g.add(pb::node("GRU", {"x", "W", "Rin"}, {"y"}, "gru", {pb::attrInt("hidden_size", 4)}));
    g.add(pb::node("GRU", {"x", "Wbad", "R"}, {"y2"}, "gru2", {pb::attrInt("hidden_size", 4)}));
    g.add(pb::node("GRU", {"x", "W", "R", "Bbad"}, {"y3"}, "gru3", {pb::attrInt("hidden_size", 4)}));
    g.add(pb::node("LSTM", {"x", "W", "R"}, {"y4"}, "", {pb::attrString("direction", "sideways")}));
    Found f(g);
    REQUIRE(f.d.layers.size() == 2);
    CHECK(f.d.layers[0].name == "gru/W");
    CHECK(f.d.layers[1].name == "gru2/R");
    REQUIRE(f.d.skipped.size() == 5);
    CHECK(f.d.skipped[0] == "gru/R (GRU): weight 'Rin' is a graph input, supplied at run time (not stored in the model)");
    CHECK(f.d.skipped[1] == "gru2/W (GRU): W of shape [2, 12, 3] is not [num_directions = 1, 3 gates * hidden_size, input_size]");
    CHECK(f.d.skipped[2] == "gru3/W (GRU): B of shape [1, 12] is not [num_directions, 2 * 3 gates * hidden_size] = [1, 24]");
    CHECK(f.d.skipped[3] == "gru3/R (GRU): B of shape [1, 12] is not [num_directions, 2 * 3 gates * hidden_size] = [1, 24]");
    CHECK(f.d.skipped[4] == "LSTM#3 (LSTM): direction 'sideways' is not forward, reverse or bidirectional");
  }
  {  // a hidden_size that does not match the weights, and a Transposed R
    pb::GraphBuilder g;
    g.init(weight("W", {1, 8, 3})).init(weight("Rt", {1, 2, 8}));
    g.add(pb::node("Transpose", {"Rt"}, {"R"}, "t", {pb::attrInts("perm", {0, 2, 1})}));
    g.add(pb::node("LSTM", {"x", "W", "R"}, {"y"}, "lstm", {pb::attrInt("hidden_size", 3)}));
    g.add(pb::node("LSTM", {"x", "W", "R"}, {"y2"}, "lstm2", {pb::attrInt("hidden_size", 2)}));
    Found f(g);
    REQUIRE(f.d.layers.size() == 1);
    CHECK(f.d.layers[0].name == "lstm2/W");
    REQUIRE(f.d.skipped.size() == 3);
    CHECK(f.d.skipped[0] == "lstm/W (LSTM): W of shape [1, 8, 3] is not [num_directions = 1, 4 gates * hidden_size, input_size]");
    CHECK(f.d.skipped[1] == "lstm/R (LSTM): R is transposed on its way to the layer: not read");
    CHECK(f.d.skipped[2] == "lstm2/R (LSTM): R is transposed on its way to the layer: not read");
  }
}

TEST_CASE("nodes: every node listed with its sub-graph path and owner, in discovery order", "[nodes][subgraph]") {
  pb::GraphBuilder deeper;
  deeper.add(pb::node("Relu", {"z"}, {"z2"}, "deep_relu"));
  pb::GraphBuilder body;
  body.add(pb::node("Add", {"h", "x"}, {"h2"}));  // unnamed: "Add#0", reads the outer "x"
  body.add(pb::node("If", {"c2"}, {"o2"}, "if_inner", {pb::attrGraph("then_branch", deeper.build())}));
  pb::GraphBuilder br0, br1;
  br1.add(pb::node("Neg", {"q"}, {"q2"}, "neg"));

  pb::GraphBuilder g;
  g.init(weight("W", {4, 3, 1, 1}));
  g.add(pb::node("Conv", {"x", "W", ""}, {"y"}, "conv", {}, "com.example"));
  g.add(pb::node("Loop", {"", "", "y"}, {"l"}, "loop", {pb::attrGraph("body", body.build())}));
  g.add(pb::node("Scan", {"l"}, {"s"}, "", {pb::attrGraphs("branches", {br0.build(), br1.build()})}));
  g.input("x").input("W").output("s");  // W is an initializer too: not a graph input to draw
  const Msg m = pb::model(g.build());
  const std::vector<uint8_t> bytes = pb::toVec(m);
  auto model = ql::onnx::parseModel(bytes.data(), bytes.size());
  REQUIRE(model.ok());
  const ql::graph::NodeList list = ql::graph::listNodes(model.value().graph);
  REQUIRE(list.nodes.size() == 7);
  const auto& n = list.nodes;
  CHECK(n[0].name == "conv");
  CHECK(n[0].op == "Conv");
  CHECK(n[0].domain == "com.example");
  REQUIRE(n[0].inputs.size() == 3);
  CHECK(n[0].inputs[1] == "W");
  CHECK(n[0].inputs[2].empty());
  CHECK(n[0].outputs == std::vector<std::string_view>{"y"});
  CHECK(n[0].path.empty());
  CHECK(n[0].owner == -1);
  CHECK(n[1].name == "loop");
  CHECK(n[2].name == "Add#0");
  CHECK(n[2].path == "loop/body");
  CHECK(n[2].owner == 1);
  CHECK(n[3].name == "if_inner");
  CHECK(n[3].owner == 1);
  CHECK(n[4].name == "deep_relu");
  CHECK(n[4].path == "loop/body/if_inner/then_branch");
  CHECK(n[4].owner == 3);
  CHECK(n[5].name == "Scan#2");
  CHECK(n[5].path.empty());
  CHECK(n[6].name == "neg");  // in the Scan's second branch, listed after its owner
  CHECK(n[6].path == "Scan#2/branches[1]");
  CHECK(n[6].owner == 5);
  CHECK(list.inputs == std::vector<std::string_view>{"x"});
  CHECK(list.outputs == std::vector<std::string_view>{"s"});
}
