// Channel pruning (compress/prune.hpp) on hand-built graphs: a producer Conv, the ops
// between, and the pruned Conv. Norms, SQNRs and parameter counts against values worked
// out here from the weights; every op that keeps channels one to one, and every refusal,
// with its reason; the written model's tensors, sliced on both sides, read back.
#include <algorithm>
#include <catch2/catch.hpp>
#include <cmath>
#include <string>
#include <vector>

#include "compress/prune.hpp"
#include "graph/layers.hpp"
#include "graph/shapes.hpp"
#include "onnx/model.hpp"
#include "onnx/tensor_data.hpp"
#include "onnx/writer.hpp"
#include "pb_writer.hpp"

using ql::ErrorCode;
using ql::compress::addPruneEdit;
using ql::compress::Curve;
using ql::compress::pruneCurve;
using ql::graph::Discovery;
using ql::graph::Layer;
namespace pb = pbw::onnx;
using pbw::Msg;

namespace {

constexpr int64_t kIn = 2, kC = 4, kO = 3;  // model input channels, pruned channels, consumer outputs

struct Net {
  std::vector<uint8_t> bytes;
  ql::Result<ql::onnx::Model> model{ql::onnx::Model{}};
  Discovery d;
  explicit Net(const Msg& m) : bytes(pb::toVec(m)) {
    model = ql::onnx::parseModel(bytes.data(), bytes.size());
    INFO(model.error().describe());
    REQUIRE(model.ok());
    auto r = ql::graph::findLayers(model.value());
    REQUIRE(r.ok());
    d = std::move(r.value());
  }
  const Layer& named(const std::string& name) const {
    for (const auto& L : d.layers)
      if (L.name == name) return L;
    FAIL("no layer named " << name);
    return d.layers[0];
  }
  Curve curve(const std::string& name = "c") const { return pruneCurve(model.value(), d, named(name)); }
};

// The consumer's weight wc [kO, kC, 1, 1]: input channel c scaled by kScale[c], so the
// norms order is 1, 3, 0, 2 (smallest first).
const float kScale[kC] = {0.5f, 0.1f, 0.9f, 0.3f};
std::vector<float> consumerWeight() {
  std::vector<float> w;
  for (int64_t o = 0; o < kO; ++o)
    for (int64_t c = 0; c < kC; ++c) w.push_back(kScale[c] * static_cast<float>(o + 1) * (o % 2 ? -1.f : 1.f));
  return w;
}
std::vector<float> seq(size_t n, float base) {
  std::vector<float> v(n);
  for (size_t i = 0; i < n; ++i) v[i] = base + 0.01f * static_cast<float>(i);
  return v;
}

// x [1, kIn, 8, 8] -> Conv p (wp [kC, kIn, 3, 3], bp) -> "a" -> `middle` -> "m" -> Conv c (wc) -> "y".
pb::GraphBuilder chain(const std::vector<Msg>& middle, const std::vector<Msg>& inits = {}, bool producerBias = true) {
  pb::GraphBuilder g;
  g.input("x", {1, kIn, 8, 8});
  g.init(pb::floatTensor("wp", {kC, kIn, 3, 3}, seq(kC * kIn * 9, 0.1f)));
  if (producerBias) g.init(pb::floatTensor("bp", {kC}, {0.1f, 0.2f, 0.3f, 0.4f}));
  g.init(pb::floatTensor("wc", {kO, kC, 1, 1}, consumerWeight()));
  for (const auto& t : inits) g.init(t);
  std::vector<std::string> pin = {"x", "wp"};
  if (producerBias) pin.push_back("bp");
  g.add(pb::node("Conv", pin, {"a"}, "p", {pb::attrInts("pads", {1, 1, 1, 1})}));
  for (const auto& n : middle) g.add(n);
  g.add(pb::node("Conv", {middle.empty() ? "a" : "m", "wc"}, {"y"}, "c"));
  g.output("y", {1, kO, 8, 8});
  return g;
}

Net net(const pb::GraphBuilder& g) { return Net(pb::model(g.build())); }

std::vector<float> floatsOf(const ql::onnx::Tensor& t) {
  auto r = ql::onnx::readAsFloat(t);
  REQUIRE(r.ok());
  return r->take();
}
const ql::onnx::Tensor* initializer(const ql::onnx::Graph& g, std::string_view name) {
  for (const auto& t : g.initializers)
    if (t.name == name) return &t;
  return nullptr;
}

// Norms of wc's input channels and the SQNR of dropping the j smallest, from the weight.
struct Expect {
  double norm2[kC] = {};
  double total = 0;
  Expect() {
    const auto w = consumerWeight();
    for (int64_t o = 0; o < kO; ++o)
      for (int64_t c = 0; c < kC; ++c) norm2[c] += static_cast<double>(w[o * kC + c]) * w[o * kC + c];
    for (double x : norm2) total += x;
  }
};

void requireRefused(const Curve& c, const std::string& part) {
  INFO("refused: '" << c.refused << "', expected to mention '" << part << "'");
  CHECK(c.points.empty());
  CHECK(c.refused.find(part) != std::string::npos);
}

void requirePrunable(const Curve& c, uint64_t elsewherePerChannel) {
  INFO("refused: " << c.refused);
  REQUIRE(c.refused.empty());
  REQUIRE(c.points.size() == static_cast<size_t>(kC));
  for (int64_t k = 1; k <= kC; ++k) {
    const auto& p = c.points[static_cast<size_t>(k - 1)];
    CHECK(p.keep == k);
    CHECK(p.params == static_cast<uint64_t>(kO * k));
    CHECK(p.paramsRemovedElsewhere == elsewherePerChannel * static_cast<uint64_t>(kC - k));
  }
}

}  // namespace

TEST_CASE("prune: input-channel norms, order and SQNR of the curve", "[prune]") {
  Net n = net(chain({pb::node("Relu", {"a"}, {"m"})}));
  const Layer& L = n.named("c");
  auto norms = ql::compress::inputChannelNorms(L);
  REQUIRE(norms.ok());
  Expect e;
  for (int64_t c = 0; c < kC; ++c) CHECK(norms.value()[c] == Approx(std::sqrt(e.norm2[c])).epsilon(1e-12));
  CHECK(ql::compress::pruneOrder(norms.value()) == std::vector<int64_t>{1, 3, 0, 2});
  CHECK(ql::compress::pruneOrder({2, 1, 1, 0}) == std::vector<int64_t>{3, 1, 2, 0});  // ties by index

  const Curve c = n.curve();
  CHECK(c.method == ql::compress::Method::ChannelPrune);
  CHECK(c.producer == "p");     // the plan leaves the producer alone where it prunes (compress/plan.cpp)
  requirePrunable(c, kIn * 9);  // a producer output channel: its 2x3x3 weights (its bias goes too, not counted)
  const double d1 = e.norm2[1], d2 = d1 + e.norm2[3], d3 = d2 + e.norm2[0];
  CHECK(c.points[0].sqnrDb == Approx(10 * std::log10(e.total / d3)));
  CHECK(c.points[1].sqnrDb == Approx(10 * std::log10(e.total / d2)));
  CHECK(c.points[2].sqnrDb == Approx(10 * std::log10(e.total / d1)));
  CHECK(std::isinf(c.points[3].sqnrDb));
  CHECK(c.points[3].macs == 0);  // no shapes given

  // The same curve from norms the caller read; norms of the wrong length are refused.
  const Curve fromNorms = pruneCurve(n.model.value(), n.d, L, norms.value());
  REQUIRE(fromNorms.points.size() == c.points.size());
  for (size_t k = 0; k < c.points.size(); ++k) CHECK(fromNorms.points[k].sqnrDb == c.points[k].sqnrDb);
  requireRefused(pruneCurve(n.model.value(), n.d, L, std::vector<double>{1, 2}), "not one per input channel");
  const auto wc = consumerWeight();
  auto again = ql::compress::inputChannelNorms(L, wc.data(), wc.size());
  REQUIRE(again.ok());
  CHECK(again.value() == norms.value());
  CHECK_FALSE(ql::compress::inputChannelNorms(L, wc.data(), wc.size() - 1).ok());

  // Without a producer bias: the same count (biases are not weight parameters).
  requirePrunable(net(chain({pb::node("Relu", {"a"}, {"m"})}, {}, false)).curve(), kIn * 9);
}

TEST_CASE("prune: MACs follow the static output size", "[prune][shapes]") {
  Net n = net(chain({pb::node("Relu", {"a"}, {"m"})}));
  const ql::graph::Shapes s = ql::graph::inferShapes(n.model.value());
  const Layer& L = n.named("c");
  CHECK(ql::graph::macsOf(L, s) == static_cast<uint64_t>(8 * 8 * kO * kC));
  CHECK(ql::graph::macsOf(n.named("p"), s) == static_cast<uint64_t>(8 * 8 * kC * kIn * 9));
  const Curve c = pruneCurve(n.model.value(), n.d, L, &s);
  REQUIRE(c.points.size() == static_cast<size_t>(kC));
  for (int64_t k = 1; k <= kC; ++k) CHECK(c.points[static_cast<size_t>(k - 1)].macs == static_cast<uint64_t>(8 * 8 * kO * k));
}

TEST_CASE("prune: every op that keeps channels one to one is followed", "[prune]") {
  const uint64_t base = kIn * 9;  // the producer weight rows only: bias, BN and per-channel constants are not weight parameters
  SECTION("unary activations, Identity, Dropout, Cast, Clip with constant bounds") {
    for (const char* op : {"Relu", "LeakyRelu", "Sigmoid", "Tanh", "HardSwish", "Elu", "Identity", "Dropout", "Softplus"}) {
      INFO(op);
      requirePrunable(net(chain({pb::node(op, {"a"}, {"m"})})).curve(), base);
    }
    requirePrunable(net(chain({pb::node("Cast", {"a"}, {"m"}, "", {pb::attrInt("to", 1)})})).curve(), base);
    requirePrunable(
        net(chain({pb::node("Clip", {"a", "lo", "hi"}, {"m"})}, {pb::floatTensor("lo", {}, {0}), pb::floatTensor("hi", {}, {6})}))
            .curve(),
        base);
  }
  SECTION("BatchNormalization: its four parameters per channel go too") {
    requirePrunable(
        net(chain({pb::node("BatchNormalization", {"a", "s", "b", "mu", "var"}, {"n"}), pb::node("Relu", {"n"}, {"m"})},
                  {pb::floatTensor("s", {kC}, {1, 2, 3, 4}), pb::floatTensor("b", {kC}, {1, 2, 3, 4}),
                   pb::floatTensor("mu", {kC}, {1, 2, 3, 4}), pb::floatTensor("var", {kC}, {1, 2, 3, 4})}))
            .curve(),
        base);
  }
  SECTION("PRelu: a per-channel slope goes too, a single one stays") {
    requirePrunable(
        net(chain({pb::node("PRelu", {"a", "sl"}, {"m"})}, {pb::floatTensor("sl", {kC, 1, 1}, {.1f, .2f, .3f, .4f})})).curve(),
        base);
    requirePrunable(net(chain({pb::node("PRelu", {"a", "sl"}, {"m"})}, {pb::floatTensor("sl", {1}, {.1f})})).curve(), base);
  }
  SECTION("SiLU: Mul(x, Sigmoid(x)) in either order") {
    requirePrunable(net(chain({pb::node("Sigmoid", {"a"}, {"s"}), pb::node("Mul", {"a", "s"}, {"m"})})).curve(), base);
    requirePrunable(net(chain({pb::node("Sigmoid", {"a"}, {"s"}), pb::node("Mul", {"s", "a"}, {"m"})})).curve(), base);
  }
  SECTION("Add/Mul/Sub/Div by a scalar or a per-channel constant") {
    requirePrunable(net(chain({pb::node("Mul", {"a", "k"}, {"m"})}, {pb::floatTensor("k", {}, {2})})).curve(), base);
    requirePrunable(net(chain({pb::node("Add", {"k", "a"}, {"m"})}, {pb::floatTensor("k", {1, kC, 1, 1}, {1, 2, 3, 4})})).curve(),
                    base);
    requirePrunable(net(chain({pb::node("Div", {"a", "k"}, {"m"})}, {pb::floatTensor("k", {kC, 1, 1}, {1, 2, 3, 4})})).curve(),
                    base);
    // [kC] broadcasts along the last (spatial) axis of an N, C, H, W value: not per channel.
    requireRefused(net(chain({pb::node("Sub", {"a", "k"}, {"m"})}, {pb::floatTensor("k", {kC}, {1, 2, 3, 4})})).curve(),
                   "neither one value nor one per channel");
  }
  SECTION("pools") {
    requirePrunable(net(chain({pb::node("MaxPool", {"a"}, {"m"}, "", {pb::attrInts("kernel_shape", {2, 2})})})).curve(), base);
    requirePrunable(net(chain({pb::node("AveragePool", {"a"}, {"m"}, "",
                                        {pb::attrInts("kernel_shape", {3, 3}), pb::attrInts("pads", {1, 1, 1, 1})})}))
                        .curve(),
                    base);
    requirePrunable(net(chain({pb::node("GlobalAveragePool", {"a"}, {"m"})})).curve(), base);
  }
}

namespace {
// x -> Conv p -> GlobalAveragePool -> `flatten` (Flatten / Reshape) -> Gemm fc (wf [kO, kC], transB).
pb::GraphBuilder head(const std::vector<Msg>& between, const std::vector<Msg>& inits = {}) {
  pb::GraphBuilder g;
  g.input("x", {1, kIn, 8, 8});
  g.init(pb::floatTensor("wp", {kC, kIn, 3, 3}, seq(kC * kIn * 9, 0.1f)));
  g.init(pb::floatTensor("wf", {kO, kC}, consumerWeight()));
  g.init(pb::floatTensor("bf", {kO}, {1, 2, 3}));
  for (const auto& t : inits) g.init(t);
  g.add(pb::node("Conv", {"x", "wp"}, {"a"}, "p"));
  for (const auto& n : between) g.add(n);
  g.add(pb::node("Gemm", {"f", "wf", "bf"}, {"y"}, "fc", {pb::attrInt("transB", 1)}));
  g.output("y", {1, kO});
  return g;
}
}  // namespace

TEST_CASE("prune: a classifier head, global pool then Flatten or Reshape to [N, C]", "[prune]") {
  requirePrunable(net(head({pb::node("GlobalAveragePool", {"a"}, {"g"}), pb::node("Flatten", {"g"}, {"f"})})).curve("fc"),
                  kIn * 9);
  requirePrunable(
      net(head({pb::node("Relu", {"a"}, {"r"}), pb::node("GlobalMaxPool", {"r"}, {"g"}), pb::node("Reshape", {"g", "sh"}, {"f"})},
               {pb::int8Tensor("unused", {1}, {0}), pb::rawTensor("sh", pb::kInt64, {2}, pbw::le64(1) + pbw::le64(-1))}))
          .curve("fc"),
      kIn * 9);
  // Without the pool the features of a channel are its H*W pixels: refused.
  requireRefused(net(head({pb::node("Flatten", {"a"}, {"f"})})).curve("fc"), "does not follow a global pool");
  requireRefused(net(head({pb::node("MaxPool", {"a"}, {"g"}, "", {pb::attrInts("kernel_shape", {2, 2})}),
                           pb::node("Flatten", {"g"}, {"f"})}))
                     .curve("fc"),
                 "does not follow a global pool");
  requireRefused(
      net(head({pb::node("GlobalAveragePool", {"a"}, {"g"}), pb::node("Flatten", {"g"}, {"f"}, "", {pb::attrInt("axis", 2)})}))
          .curve("fc"),
      "flattens from axis 2");
  // Channels on axis 1 of the Conv's output, read on the last axis by the Gemm.
  pb::GraphBuilder g = head({});
  g.nodes.back() = pb::node("Gemm", {"a", "wf", "bf"}, {"y"}, "fc", {pb::attrInt("transB", 1)});
  requireRefused(net(g).curve("fc"), "writes channels on axis 1");
}

TEST_CASE("prune: a Gemm producer and a MatMul with its bias Add", "[prune]") {
  pb::GraphBuilder g;
  g.input("x", {2, 5});
  g.init(pb::floatTensor("w1", {5, kC}, seq(5 * kC, 0.2f)));  // MatMul B [K, N]
  g.init(pb::floatTensor("b1", {kC}, {1, 2, 3, 4}));
  g.init(pb::floatTensor("w2", {kC, kO}, {}));
  std::vector<float> w2;  // [kC, kO]: input channel c is row c
  const auto wc = consumerWeight();
  for (int64_t c = 0; c < kC; ++c)
    for (int64_t o = 0; o < kO; ++o) w2.push_back(wc[o * kC + c]);
  g.initializers.back() = pb::floatTensor("w2", {kC, kO}, w2);
  g.add(pb::node("MatMul", {"x", "w1"}, {"h"}, "m1"));
  g.add(pb::node("Add", {"h", "b1"}, {"hb"}));
  g.add(pb::node("Relu", {"hb"}, {"r"}));
  g.add(pb::node("MatMul", {"r", "w2"}, {"y"}, "m2"));
  g.output("y", {2, kO});
  Net n = net(g);
  const Curve c = n.curve("m2");
  requirePrunable(c, 5);  // m1's weight column (its bias Add's constant goes too, not counted)
  Expect e;
  CHECK(c.points[2].sqnrDb == Approx(10 * std::log10(e.total / e.norm2[1])));

  ql::onnx::GraphEdit edit;
  auto r = addPruneEdit(n.model.value(), n.d, n.named("m2"), 2, edit);
  REQUIRE(r.ok());
  CHECK(r.value());
  auto out = ql::onnx::writeModel(n.bytes.data(), n.bytes.size(), n.model.value(), edit);
  REQUIRE(out.ok());
  auto back = ql::onnx::parseModel(out->data(), out->size());
  REQUIRE(back.ok());
  const auto& bg = back->graph;
  // Kept: channels 0 and 2 (1 and 3 have the smallest norms).
  CHECK(initializer(bg, "w1")->dims == std::vector<int64_t>{5, 2});
  CHECK(floatsOf(*initializer(bg, "b1")) == std::vector<float>{1, 3});
  CHECK(initializer(bg, "w2")->dims == std::vector<int64_t>{2, kO});
  const auto w1 = seq(5 * kC, 0.2f), nw1 = floatsOf(*initializer(bg, "w1"));
  for (int k = 0; k < 5; ++k) {
    CHECK(nw1[k * 2] == w1[k * kC + 0]);
    CHECK(nw1[k * 2 + 1] == w1[k * kC + 2]);
  }
  const auto nw2 = floatsOf(*initializer(bg, "w2"));
  CHECK(std::vector<float>(nw2.begin(), nw2.begin() + kO) == std::vector<float>(w2.begin(), w2.begin() + kO));
  CHECK(std::vector<float>(nw2.begin() + kO, nw2.end()) == std::vector<float>(w2.begin() + 2 * kO, w2.begin() + 3 * kO));
}

TEST_CASE("prune: refusals say why", "[prune]") {
  SECTION("a residual Add, a Concat, a second consumer") {
    pb::GraphBuilder g = chain({pb::node("Relu", {"a"}, {"r"}), pb::node("Add", {"r", "x2"}, {"m"})});
    g.input("x2", {1, kC, 8, 8});
    requireRefused(net(g).curve(), "residual connection");
    pb::GraphBuilder h = chain({pb::node("Concat", {"a", "a"}, {"m"}, "cat", {pb::attrInt("axis", 1)})});
    requireRefused(net(h).curve(), "cannot be removed through a Concat");
    pb::GraphBuilder k = chain({pb::node("Relu", {"a"}, {"m"}), pb::node("Sigmoid", {"a"}, {"z"})});
    k.output("z", {1, kC, 8, 8});
    requireRefused(net(k).curve(), "'a' also feeds Sigmoid");
    pb::GraphBuilder s = chain({pb::node("Relu", {"a"}, {"m"}), pb::node("Add", {"m", "m"}, {"z"}, "skip")});
    s.output("z", {1, kC, 8, 8});
    requireRefused(net(s).curve(), "also feeds Add 'skip' (a residual connection)");
  }
  SECTION("a graph output on the way, a graph input as the layer's input") {
    pb::GraphBuilder g = chain({pb::node("Relu", {"a"}, {"m"})});
    g.output("a", {1, kC, 8, 8});
    requireRefused(net(g).curve(), "'a' is a graph output");
    requireRefused(net(chain({})).curve("p"), "'x' is a graph input");
  }
  SECTION("depthwise and grouped convolutions on either side") {
    pb::GraphBuilder g = chain({pb::node("Conv", {"a", "wd"}, {"m"}, "dw", {pb::attrInt("group", kC)})},
                               {pb::floatTensor("wd", {kC, 1, 3, 3}, seq(kC * 9, 0.5f))});
    Net n = net(g);
    requireRefused(n.curve(), "the producer 'dw' is a depthwise convolution: removing a channel removes a depthwise filter");
    requireRefused(n.curve("dw"), "the layer is a depthwise convolution");
    pb::GraphBuilder h = chain({pb::node("Conv", {"a", "wg"}, {"m"}, "gc", {pb::attrInt("group", 2)})},
                               {pb::floatTensor("wg", {kC, 2, 1, 1}, seq(kC * 2, 0.5f))});
    requireRefused(net(h).curve(), "the producer 'gc' is a grouped convolution (group 2)");
    requireRefused(net(h).curve("gc"), "the layer is a grouped convolution");
  }
  SECTION("Reshape, Transpose, Resize between") {
    requireRefused(net(chain({pb::node("Transpose", {"a"}, {"m"}, "t", {pb::attrInts("perm", {0, 1, 3, 2})})})).curve(),
                   "comes from Transpose 't', which channel pruning does not follow");
    requireRefused(net(chain({pb::node("Reshape", {"a", "sh"}, {"m"}, "rs")},
                             {pb::rawTensor("sh", pb::kInt64, {4}, pbw::le64(1) + pbw::le64(4) + pbw::le64(64) + pbw::le64(1))}))
                       .curve(),
                   "Reshape 'rs'");
  }
  SECTION("shared weights and parameters, Constant-node weights") {
    pb::GraphBuilder g = chain({pb::node("Relu", {"a"}, {"m"}), pb::node("Conv", {"m", "wt"}, {"z"}, "twin")},
                               {pb::floatTensor("wt", {kO, kC, 1, 1}, consumerWeight())});
    g.output("z", {1, kO, 8, 8});
    requireRefused(net(g).curve(), "'m' also feeds Conv 'twin'");
    pb::GraphBuilder h = chain({pb::node("PRelu", {"a", "sl"}, {"m"}), pb::node("Mul", {"x", "sl"}, {"z"})},
                               {pb::floatTensor("sl", {kC, 1, 1}, {1, 2, 3, 4})});
    h.output("z", {1, kC, 8, 8});
    requireRefused(net(h).curve(), "slope 'sl' is shared with Mul");
    pb::GraphBuilder k = chain({pb::node("Relu", {"a"}, {"m"}), pb::node("Conv", {"x", "wp"}, {"z"}, "again")});
    k.output("z", {1, kC, 6, 6});
    requireRefused(net(k).curve(), "the producer 'p''s weight 'wp' is shared with other nodes");
  }
  SECTION("a producer bias computed at run time, or shared through Identity nodes") {
    // torch.onnx.export writes equal biases once, each Conv reading it through an Identity.
    pb::GraphBuilder g = chain({pb::node("Relu", {"a"}, {"m"})});
    g.nodes.insert(g.nodes.begin(), pb::node("Identity", {"bp"}, {"bp_id"}, "Identity_28"));
    g.nodes[1] = pb::node("Conv", {"x", "wp", "bp_id"}, {"a"}, "p", {pb::attrInts("pads", {1, 1, 1, 1})});
    // ... or a bias that another node reads: the producer gets a pruned copy of its own,
    // not counted as removed (the original stays).
    requirePrunable(net(g).curve(), kIn * 9);
    pb::GraphBuilder h = chain({pb::node("Relu", {"a"}, {"m"}), pb::node("Add", {"x", "bp"}, {"z"}, "other")});
    h.output("z", {1, kC, 8, 8});
    requirePrunable(net(h).curve(), kIn * 9);
    for (const pb::GraphBuilder* b : {&g, &h}) {
      Net n = net(*b);
      const size_t producer = b == &g ? 1 : 0;
      ql::onnx::GraphEdit edit;
      ql::onnx::NodeEdit other;  // an edit of the producer's node already there is merged into
      other.index = producer;
      other.dropAttributes = {"unused"};
      edit.editNodes.push_back(other);
      auto r = addPruneEdit(n.model.value(), n.d, n.named("c"), 3, edit);
      REQUIRE(r.ok());
      REQUIRE(edit.editNodes.size() == 1);
      CHECK(edit.editNodes[0].dropAttributes == std::vector<std::string>{"unused"});
      REQUIRE(edit.editNodes[0].inputs);
      CHECK(*edit.editNodes[0].inputs == std::vector<std::string>{"x", "wp", "bp_pruned"});
      REQUIRE(edit.addInitializers.size() == 1);
      CHECK(edit.addInitializers[0].name == "bp_pruned");
      CHECK(edit.addInitializers[0].floats == std::vector<float>{.1f, .3f, .4f});
      auto out = ql::onnx::writeModel(n.bytes.data(), n.bytes.size(), n.model.value(), edit);
      REQUIRE(out.ok());
      auto back = ql::onnx::parseModel(out->data(), out->size());
      REQUIRE(back.ok());
      CHECK(floatsOf(*initializer(back->graph, "bp")) == std::vector<float>{.1f, .2f, .3f, .4f});  // the original stays
      CHECK(back->graph.nodes[producer].inputs[2] == "bp_pruned");
    }
    // A bias computed by anything else is refused.
    pb::GraphBuilder k = g;
    k.nodes[0] = pb::node("Relu", {"bp"}, {"bp_id"}, "r0");
    requireRefused(net(k).curve(), "the producer 'p''s bias 'bp_id' is not a stored tensor (computed by Relu 'r0')");
  }
  SECTION("a quantized weight") {
    pb::GraphBuilder g = chain({pb::node("Relu", {"a"}, {"m"})});
    g.initializers[2] = pb::int8Tensor("wcq", {kO, kC, 1, 1}, std::vector<int8_t>(kO * kC, 3));
    g.init(pb::floatTensor("sc", {}, {0.5f}));
    g.nodes.insert(g.nodes.begin(), pb::node("DequantizeLinear", {"wcq", "sc"}, {"wc"}));
    requireRefused(net(g).curve(), "quantized weight");
  }
  SECTION("inside a sub-graph, or read by one") {
    pb::GraphBuilder body;
    body.name = "body";
    body.add(pb::node("Identity", {"m"}, {"o"}));
    body.output("o", {1, kC, 8, 8});
    pb::GraphBuilder g = chain({pb::node("Relu", {"a"}, {"m"})}, {pb::rawTensor("cond", pb::kBool, {}, std::string(1, '\1'))});
    g.add(pb::node("If", {"cond"}, {"z"}, "if",
                   {pb::attrGraph("then_branch", body.build()), pb::attrGraph("else_branch", body.build())}));
    g.output("z", {1, kC, 8, 8});
    requireRefused(net(g).curve(), "'m' is also read inside a sub-graph");

    pb::GraphBuilder inner = chain({pb::node("Relu", {"a"}, {"m"})});
    inner.name = "inner";
    inner.inputs.clear();
    pb::GraphBuilder outer;
    outer.input("x", {1, kIn, 8, 8});
    outer.init(pb::rawTensor("cond", pb::kBool, {}, std::string(1, '\1')));
    outer.add(pb::node("If", {"cond"}, {"y"}, "if",
                       {pb::attrGraph("then_branch", inner.build()), pb::attrGraph("else_branch", inner.build())}));
    outer.output("y", {1, kO, 8, 8});
    Net n = net(outer);
    int seen = 0;
    for (const Layer& L : n.d.layers) {
      if (L.name != "c") continue;
      CHECK_FALSE(L.path.empty());
      requireRefused(pruneCurve(n.model.value(), n.d, L), "inside a sub-graph");
      ++seen;
    }
    CHECK(seen == 2);  // one in each branch
  }
}

TEST_CASE("prune: addPruneEdit slices both sides and everything between", "[prune][writer]") {
  Msg vi = pb::valueInfo("n", pb::kFloat, {1, kC, 8, 8});
  pb::GraphBuilder g =
      chain({pb::node("BatchNormalization", {"a", "s", "b", "mu", "var"}, {"n"}), pb::node("PRelu", {"n", "sl"}, {"m"})},
            {pb::floatTensor("s", {kC}, {1, 2, 3, 4}), pb::floatTensor("b", {kC}, {5, 6, 7, 8}),
             pb::floatTensor("mu", {kC}, {9, 10, 11, 12}), pb::floatTensor("var", {kC}, {13, 14, 15, 16}),
             pb::floatTensor("sl", {1, kC, 1, 1}, {.1f, .2f, .3f, .4f})});
  Msg gm = g.build();
  gm.msg(13, vi);  // value_info of a value between: its channel count changes
  gm.msg(13, pb::valueInfo("y", pb::kFloat, {1, kO, 8, 8}));
  Net n(pb::model(gm));
  const Layer& L = n.named("c");
  ql::onnx::GraphEdit edit;

  auto none = addPruneEdit(n.model.value(), n.d, L, kC, edit);
  REQUIRE(none.ok());
  CHECK_FALSE(none.value());
  CHECK(edit.replaceInitializers.empty());
  for (int64_t bad : {int64_t{0}, kC + 1, int64_t{-3}}) {
    auto r = addPruneEdit(n.model.value(), n.d, L, bad, edit);
    REQUIRE_FALSE(r.ok());
    CHECK(r.error().code == ErrorCode::InvalidArgument);
  }
  auto r = addPruneEdit(n.model.value(), n.d, L, 3, edit);  // drops channel 1, the smallest
  REQUIRE(r.ok());
  CHECK(r.value());
  CHECK(edit.removeValueInfo == std::vector<std::string>{"n"});
  auto out = ql::onnx::writeModel(n.bytes.data(), n.bytes.size(), n.model.value(), edit);
  REQUIRE(out.ok());
  auto back = ql::onnx::parseModel(out->data(), out->size());
  REQUIRE(back.ok());
  const auto& bg = back->graph;
  CHECK(floatsOf(*initializer(bg, "s")) == std::vector<float>{1, 3, 4});
  CHECK(floatsOf(*initializer(bg, "b")) == std::vector<float>{5, 7, 8});
  CHECK(floatsOf(*initializer(bg, "mu")) == std::vector<float>{9, 11, 12});
  CHECK(floatsOf(*initializer(bg, "var")) == std::vector<float>{13, 15, 16});
  CHECK(floatsOf(*initializer(bg, "sl")) == std::vector<float>{.1f, .3f, .4f});
  CHECK(initializer(bg, "sl")->dims == std::vector<int64_t>{1, 3, 1, 1});
  CHECK(floatsOf(*initializer(bg, "bp")) == std::vector<float>{.1f, .3f, .4f});
  const auto wp = seq(kC * kIn * 9, 0.1f), nwp = floatsOf(*initializer(bg, "wp"));
  CHECK(initializer(bg, "wp")->dims == std::vector<int64_t>{3, kIn, 3, 3});
  const size_t row = kIn * 9;
  CHECK(std::vector<float>(nwp.begin(), nwp.begin() + row) == std::vector<float>(wp.begin(), wp.begin() + row));
  CHECK(std::vector<float>(nwp.begin() + row, nwp.end()) == std::vector<float>(wp.begin() + 2 * row, wp.end()));
  const auto wc = consumerWeight(), nwc = floatsOf(*initializer(bg, "wc"));
  CHECK(initializer(bg, "wc")->dims == std::vector<int64_t>{kO, 3, 1, 1});
  for (int64_t o = 0; o < kO; ++o) {
    CHECK(nwc[o * 3 + 0] == wc[o * kC + 0]);
    CHECK(nwc[o * 3 + 1] == wc[o * kC + 2]);
    CHECK(nwc[o * 3 + 2] == wc[o * kC + 3]);
  }
  REQUIRE(bg.valueInfo.size() == 1);
  CHECK(bg.valueInfo[0].name == "y");
  // The pruned model's own curve: 3 channels left.
  auto d2 = ql::graph::findLayers(back.value());
  REQUIRE(d2.ok());
  for (const Layer& l : d2->layers)
    if (l.name == "c") CHECK(pruneCurve(back.value(), d2.value(), l).points.size() == 3);

  // A refused layer is an UNSUPPORTED error naming the reason; the edit is left as it was.
  ql::onnx::GraphEdit e2;
  auto bad = addPruneEdit(n.model.value(), n.d, n.named("p"), 1, e2);
  REQUIRE_FALSE(bad.ok());
  CHECK(bad.error().code == ErrorCode::Unsupported);
  CHECK(bad.error().message.find("graph input") != std::string::npos);
  CHECK(e2.replaceInitializers.empty());
}
