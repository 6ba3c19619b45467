// Cross Layer Equalization on hand-built graphs whose answers are worked out by
// hand: the pair and triple scales, BatchNorm folding, high-bias absorption, ReLU6
// replacement, near-dead channels, and the written model read back.
#include <catch2/catch.hpp>
#include <cmath>
#include <cstring>
#include <limits>
#include <string>
#include <vector>

#include "cle/cle.hpp"
#include "onnx/model.hpp"
#include "onnx/skim.hpp"
#include "onnx/tensor_data.hpp"
#include "pb_writer.hpp"

namespace pb = pbw::onnx;
using pbw::Msg;

namespace {

struct Run {
  std::vector<uint8_t> input;
  ql::Result<ql::cle::Equalized> r{ql::cle::Equalized{}};
  ql::Result<ql::onnx::Model> out{ql::onnx::Model{}};
  std::vector<uint8_t> written;  // the equalized file, assembled from its pieces

  Run(const pb::GraphBuilder& g, const ql::cle::Options& opt = {}, int64_t opset = 13)
      : input(pb::toVec(pb::model(g.build(), 8, opset))) {
    r = ql::cle::equalize(input.data(), input.size(), opt);
    INFO(r.error().describe());
    REQUIRE(r.ok());
    written = r->bytes(input.data());
    out = ql::onnx::parseModel(written.data(), written.size());
    INFO(out.error().describe());
    REQUIRE(out.ok());
  }
  const ql::cle::Report& report() const { return r->report; }
  std::vector<float> init(const std::string& name) const {
    for (const auto& t : out->graph.initializers) {
      if (t.name == name) {
        auto v = ql::onnx::readAsFloat(t);
        REQUIRE(v.ok());
        return v->take();
      }
    }
    FAIL("no initializer " << name << " in the written model");
    return {};
  }
  bool hasInit(const std::string& name) const {
    for (const auto& t : out->graph.initializers)
      if (t.name == name) return true;
    return false;
  }
  const ql::onnx::Node* node(const std::string& name) const {
    for (const auto& n : out->graph.nodes)
      if (n.name == name) return &n;
    return nullptr;
  }
  const ql::cle::LayerChange& layer(const std::string& name) const {
    for (const auto& c : report().layers)
      if (c.name == name) return c;
    FAIL("layer " << name << " not changed");
    return report().layers[0];
  }
};

Msg conv(const std::string& name, const std::string& x, const std::string& y, bool bias = true,
         const std::vector<Msg>& attrs = {}) {
  std::vector<std::string> ins = {x, name + ".w"};
  if (bias) ins.push_back(name + ".b");
  return pb::node("Conv", ins, {y}, name, attrs);
}

Msg vec(const std::string& name, const std::vector<float>& v) {
  return pb::floatTensor(name, {static_cast<int64_t>(v.size())}, v);
}
Msg scalar(const std::string& name, float v) { return pb::floatTensor(name, {}, {v}); }

// x -> A (1x1, 2 out) -> Relu -> B (1x1, 2 in, 1 out) -> y
pb::GraphBuilder pair(const std::vector<float>& wa, const std::vector<float>& wb, const std::string& act = "Relu") {
  pb::GraphBuilder g;
  g.input("x", {1, 1, 2, 2}).output("y", {1, 1, 2, 2});
  g.init(pb::floatTensor("A.w", {2, 1, 1, 1}, wa)).init(vec("A.b", {0.5f, -0.25f}));
  g.init(pb::floatTensor("B.w", {1, 2, 1, 1}, wb)).init(vec("B.b", {0.1f}));
  g.add(conv("A", "x", "a"));
  if (act == "Relu6") {
    g.init(scalar("lo", 0)).init(scalar("hi", 6));
    g.add(pb::node("Clip", {"a", "lo", "hi"}, {"h"}, "clip"));
  } else {
    g.add(pb::node(act, {"a"}, {"h"}, "act"));
  }
  g.add(conv("B", "h", "y"));
  return g;
}

}  // namespace

TEST_CASE("pair: s = sqrt(r1 / r2), layer 1 divided, layer 2 multiplied, biases follow", "[cle]") {
  // r1 = {4, 0.25}, r2 = {1, 1}: s = {2, 0.5}; both sides end at {2, 0.5}.
  Run run(pair({4.0f, -0.25f}, {1.0f, -1.0f}));
  const auto& rep = run.report();
  REQUIRE(rep.sequences.size() == 1);
  CHECK(rep.sequences[0].converged);
  CHECK(rep.sequences[0].links == std::vector<std::string>{"Relu"});
  auto wa = run.init("A.w"), wb = run.init("B.w"), ba = run.init("A.b"), bb = run.init("B.b");
  CHECK(wa[0] == Approx(2.0f));
  CHECK(wa[1] == Approx(-0.5f));
  CHECK(wb[0] == Approx(2.0f));
  CHECK(wb[1] == Approx(-0.5f));
  CHECK(ba[0] == Approx(0.25f));  // 0.5 / 2
  CHECK(ba[1] == Approx(-0.5f));  // -0.25 / 0.5
  CHECK(bb[0] == Approx(0.1f));   // layer 2's bias is untouched
  const auto& a = run.layer("A");
  CHECK(a.outScale[0] == Approx(2.0f));
  CHECK(a.outScale[1] == Approx(0.5f));
  CHECK(run.layer("B").inScale[1] == Approx(0.5f));
  // Before/after statistics are of the weights as written.
  CHECK(a.before.absMax[0] == 4.0f);
  CHECK(a.after.absMax[0] == Approx(2.0f));
  CHECK(a.after.absMax[0] / a.after.absMax[1] == Approx(4.0f));  // the spread of A's channels: 16 -> 4
  // Metadata records what was done; the rest of the graph is as it was.
  bool meta = false;
  for (const auto& [k, v] : run.out->metadata) meta = meta || k == "quantlens.cle";
  CHECK(meta);
  REQUIRE(run.out->graph.nodes.size() == 3);
  CHECK(run.out->graph.nodes[1].opType == "Relu");
}

TEST_CASE("triple around a depthwise layer: the cube-root form balances all three at once", "[cle]") {
  // A (2 out) -> Relu -> D (depthwise, 2) -> Relu -> C (2 in): per channel the three
  // ranges end equal to cbrt(r0 r1 r2).
  pb::GraphBuilder g;
  g.input("x", {1, 1, 2, 2}).output("y", {1, 1, 2, 2});
  g.init(pb::floatTensor("A.w", {2, 1, 1, 1}, {8.0f, 0.5f})).init(vec("A.b", {0, 0}));
  g.init(pb::floatTensor("D.w", {2, 1, 1, 1}, {1.0f, 4.0f})).init(vec("D.b", {1, 1}));
  g.init(pb::floatTensor("C.w", {1, 2, 1, 1}, {1.0f, 2.0f})).init(vec("C.b", {0}));
  g.add(conv("A", "x", "a")).add(pb::node("Relu", {"a"}, {"ra"}, "r1"));
  g.add(conv("D", "ra", "d", true, {pb::attrInt("group", 2)})).add(pb::node("Relu", {"d"}, {"rd"}, "r2"));
  g.add(conv("C", "rd", "y"));
  Run run(g);
  REQUIRE(run.report().sequences.size() == 1);
  const auto& seq = run.report().sequences[0];
  CHECK(seq.triple == std::vector<bool>{false, true, false});
  auto a = run.init("A.w"), d = run.init("D.w"), c = run.init("C.w"), db = run.init("D.b");
  const float c0 = std::cbrt(8.0f * 1.0f * 1.0f), c1 = std::cbrt(0.5f * 4.0f * 2.0f);
  CHECK(a[0] == Approx(c0));
  CHECK(d[0] == Approx(c0));
  CHECK(c[0] == Approx(c0));
  CHECK(a[1] == Approx(c1));
  CHECK(d[1] == Approx(c1));
  CHECK(c[1] == Approx(c1));
  // D's bias is divided by its output scale s23 = cbrt(r0 r1 r2) / r2.
  CHECK(db[0] == Approx(1.0f / (c0 / 1.0f)));
  CHECK(db[1] == Approx(1.0f / (c1 / 2.0f)));
  CHECK(seq.iterations <= 2);
}

TEST_CASE("BatchNorm after a conv without bias is folded, the conv takes the BN's output name and gains a bias", "[cle]") {
  pb::GraphBuilder g;
  g.input("x", {1, 1, 2, 2}).output("y", {1, 1, 2, 2});
  g.init(pb::floatTensor("A.w", {2, 1, 1, 1}, {2.0f, -1.0f}));
  g.init(vec("g", {3.0f, 0.5f})).init(vec("beta", {1.0f, 2.0f})).init(vec("mu", {0.5f, -1.0f})).init(vec("var", {3.99f, 0.24f}));
  g.add(conv("A", "x", "a", false));
  g.add(pb::node("BatchNormalization", {"a", "g", "beta", "mu", "var"}, {"bn"}, "bn", {pb::attrFloat("epsilon", 0.01f)}));
  g.add(pb::node("Sigmoid", {"bn"}, {"y"}, "sig"));  // ends the (empty) sequence
  ql::cle::Options opt;
  Run run(g, opt);
  REQUIRE(run.report().foldedBatchNorms.size() == 1);
  CHECK_FALSE(run.report().foldedBatchNorms[0].before);
  CHECK(run.node("bn") == nullptr);
  const auto* a = run.node("A");
  REQUIRE(a);
  CHECK(a->outputs[0] == "bn");
  REQUIRE(a->inputs.size() == 3);
  // f = gamma / sqrt(var + eps) = {3 / 2, 0.5 / 0.5}; W' = W f; b' = beta - mu f.
  auto w = run.init("A.w"), b = run.init(std::string(a->inputs[2]));
  CHECK(w[0] == Approx(3.0f));
  CHECK(w[1] == Approx(-1.0f));
  CHECK(b[0] == Approx(1.0f - 0.5f * 1.5f));
  CHECK(b[1] == Approx(2.0f + 1.0f));
  CHECK(run.layer("A").batchNormFolded);
  CHECK(run.layer("A").biasAdded);
  // The BN parameters, used by nothing now, are gone.
  CHECK_FALSE(run.hasInit("g"));
  CHECK_FALSE(run.hasInit("var"));
}

TEST_CASE("BatchNorm before a 1x1 conv of group 1 is folded into it", "[cle]") {
  pb::GraphBuilder g;
  g.input("x", {1, 2, 2, 2}).output("y", {1, 1, 2, 2});
  g.init(vec("g", {2.0f, 1.0f})).init(vec("beta", {1.0f, -1.0f})).init(vec("mu", {0.0f, 1.0f})).init(vec("var", {1.0f, 4.0f}));
  g.init(pb::floatTensor("B.w", {1, 2, 1, 1}, {1.0f, 3.0f})).init(vec("B.b", {0.5f}));
  g.add(pb::node("BatchNormalization", {"x", "g", "beta", "mu", "var"}, {"bn"}, "bn", {pb::attrFloat("epsilon", 0.0f)}));
  g.add(conv("B", "bn", "y"));
  Run run(g);
  REQUIRE(run.report().foldedBatchNorms.size() == 1);
  CHECK(run.report().foldedBatchNorms[0].before);
  const auto* b = run.node("B");
  REQUIRE(b);
  CHECK(b->inputs[0] == "x");
  // f = {2, 0.5}, t = beta - mu f = {1, -1.5}; W' = W f = {2, 1.5}; b' = 0.5 + 1*1 + 3*(-1.5) = -3.
  auto w = run.init("B.w"), bias = run.init("B.b");
  CHECK(w[0] == Approx(2.0f));
  CHECK(w[1] == Approx(1.5f));
  CHECK(bias[0] == Approx(-3.0f));
}

TEST_CASE("BatchNorm before a padded conv is not folded, and the report says why", "[cle]") {
  pb::GraphBuilder g;
  g.input("x", {1, 2, 2, 2}).output("y", {1, 1, 2, 2});
  g.init(vec("g", {2.0f, 1.0f})).init(vec("beta", {1.0f, -1.0f})).init(vec("mu", {0.0f, 1.0f})).init(vec("var", {1.0f, 4.0f}));
  g.init(pb::floatTensor("B.w", {1, 2, 3, 3}, std::vector<float>(18, 0.5f))).init(vec("B.b", {0.5f}));
  g.add(pb::node("BatchNormalization", {"x", "g", "beta", "mu", "var"}, {"bn"}, "bn"));
  g.add(conv("B", "bn", "y", true, {pb::attrInts("pads", {1, 1, 1, 1})}));
  Run run(g);
  CHECK(run.report().foldedBatchNorms.empty());
  CHECK_FALSE(run.report().changed());
  CHECK(run.written == run.input);  // nothing changed: the same bytes
  bool said = false;
  for (const auto& s : run.report().stops) said = said || s.reason.find("padding") != std::string::npos;
  CHECK(said);
}

TEST_CASE("high-bias absorption: c = max(0, beta - 3|gamma|) moves from layer 1 into layer 2's bias", "[cle]") {
  // A (1x1, 2 out) -> BN(gamma {1, 1}, beta {5, 1}) -> Relu -> B (1x1, 2 in, 1 out).
  // Channel 0: c = 5 - 3 = 2; channel 1: c = max(0, 1 - 3) = 0.
  pb::GraphBuilder g;
  g.input("x", {1, 1, 2, 2}).output("y", {1, 1, 2, 2});
  g.init(pb::floatTensor("A.w", {2, 1, 1, 1}, {1.0f, 1.0f})).init(vec("A.b", {0, 0}));
  g.init(vec("g", {1.0f, 1.0f})).init(vec("beta", {5.0f, 1.0f})).init(vec("mu", {0, 0})).init(vec("var", {1.0f, 1.0f}));
  g.init(pb::floatTensor("B.w", {1, 2, 1, 1}, {1.0f, 1.0f})).init(vec("B.b", {0.0f}));
  g.add(conv("A", "x", "a"));
  g.add(pb::node("BatchNormalization", {"a", "g", "beta", "mu", "var"}, {"bn"}, "bn", {pb::attrFloat("epsilon", 0.0f)}));
  g.add(pb::node("Relu", {"bn"}, {"h"}, "relu"));
  g.add(conv("B", "h", "y"));
  Run on(g);
  CHECK(on.report().biasAbsorptions == 1);
  // Ranges are equal already (s = 1), so the numbers are the formula's.
  auto ba = on.init("A.b"), bb = on.init("B.b");
  CHECK(ba[0] == Approx(5.0f - 2.0f));
  CHECK(ba[1] == Approx(1.0f));
  CHECK(bb[0] == Approx(2.0f));  // W2 . c = 1 * 2
  REQUIRE(on.layer("A").absorbed.size() == 2);
  CHECK(on.layer("A").absorbed[0] == Approx(2.0f));

  ql::cle::Options off;
  off.biasAbsorption = false;
  Run no(g, off);
  CHECK(no.report().biasAbsorptions == 0);
  CHECK(no.init("A.b")[0] == Approx(5.0f));
  CHECK(no.init("B.b")[0] == Approx(0.0f));
}

TEST_CASE("ReLU6 is replaced by Relu inside a sequence; keepRelu6 stops there instead", "[cle]") {
  const auto g = pair({4.0f, 0.25f}, {1.0f, 1.0f}, "Relu6");
  Run def(g);
  REQUIRE(def.report().relu6Replaced == std::vector<std::string>{"clip"});
  const auto* clip = def.node("clip");
  REQUIRE(clip);
  CHECK(clip->opType == "Relu");
  CHECK(clip->inputs.size() == 1);
  CHECK_FALSE(def.hasInit("lo"));  // the bounds are used by nothing now
  CHECK(def.report().sequences.size() == 1);

  ql::cle::Options keep;
  keep.keepRelu6 = true;
  Run kept(g, keep);
  CHECK(kept.report().relu6Replaced.empty());
  CHECK(kept.report().relu6Kept == std::vector<std::string>{"clip"});
  CHECK(kept.report().sequences.empty());
  CHECK(kept.written == kept.input);
}

TEST_CASE("ReLU6 as Clip attributes (opset < 11) is recognised and replaced too", "[cle]") {
  pb::GraphBuilder g;
  g.input("x", {1, 1, 2, 2}).output("y", {1, 1, 2, 2});
  g.init(pb::floatTensor("A.w", {2, 1, 1, 1}, {4.0f, 0.25f})).init(vec("A.b", {0, 0}));
  g.init(pb::floatTensor("B.w", {1, 2, 1, 1}, {1.0f, 1.0f})).init(vec("B.b", {0}));
  g.add(conv("A", "x", "a"));
  g.add(pb::node("Clip", {"a"}, {"h"}, "clip", {pb::attrFloat("min", 0.0f), pb::attrFloat("max", 6.0f)}));
  g.add(conv("B", "h", "y"));
  Run run(g, {}, 10);
  const auto* clip = run.node("clip");
  REQUIRE(clip);
  CHECK(clip->opType == "Relu");
  CHECK(clip->attributes.empty());
}

TEST_CASE("near-dead channels keep scale 1 and are reported", "[cle]") {
  Run run(pair({4.0f, 1e-20f}, {1.0f, 1.0f}));
  const auto& rep = run.report();
  REQUIRE(rep.deadChannels.size() == 1);
  CHECK(rep.deadChannels[0].layer == "A");
  CHECK(rep.deadChannels[0].channel == 1);
  CHECK(rep.deadChannels[0].output);
  CHECK(run.layer("A").outScale[1] == 1.0f);
  CHECK(run.init("A.b")[1] == -0.25f);  // not blown up by a 1e-10 scale

  ql::cle::Options naive;
  naive.deadChannelRatio = 0;
  Run raw(pair({4.0f, 1e-20f}, {1.0f, 1.0f}), naive);
  CHECK(raw.report().deadChannels.empty());
  CHECK(std::fabs(raw.init("A.b")[1]) > 1e8f);  // what the guard prevents
}

TEST_CASE("stops: branch, graph output, residual Add, non-ReLU6 Clip", "[cle]") {
  SECTION("two consumers") {
    pb::GraphBuilder g = pair({4.0f, 0.25f}, {1.0f, 1.0f});
    g.add(pb::node("Sigmoid", {"a"}, {"z"}, "other"));
    g.output("z");
    Run run(g);
    CHECK(run.report().sequences.empty());
    REQUIRE_FALSE(run.report().stops.empty());
    CHECK(run.report().stops[0].reason.find("branches to 2") != std::string::npos);
  }
  SECTION("value is a graph output") {
    pb::GraphBuilder g = pair({4.0f, 0.25f}, {1.0f, 1.0f});
    g.output("h");
    Run run(g);
    CHECK(run.report().sequences.empty());
  }
  SECTION("Clip(0, 4)") {
    pb::GraphBuilder g;
    g.input("x", {1, 1, 2, 2}).output("y", {1, 1, 2, 2});
    g.init(pb::floatTensor("A.w", {2, 1, 1, 1}, {4.0f, 0.25f})).init(vec("A.b", {0, 0}));
    g.init(pb::floatTensor("B.w", {1, 2, 1, 1}, {1.0f, 1.0f})).init(vec("B.b", {0}));
    g.init(scalar("lo", 0)).init(scalar("hi", 4));
    g.add(conv("A", "x", "a")).add(pb::node("Clip", {"a", "lo", "hi"}, {"h"}, "clip")).add(conv("B", "h", "y"));
    Run run(g);
    CHECK(run.report().sequences.empty());
    CHECK(run.report().stops[0].reason.find("Clip(0, 4)") != std::string::npos);
  }
}

TEST_CASE("bad input and bad options are errors, never crashes", "[cle]") {
  const std::vector<uint8_t> junk = {0x0a, 0xff, 0xff, 0xff, 0x0f, 0x01};
  auto r = ql::cle::equalize(junk.data(), junk.size());
  CHECK_FALSE(r.ok());
  CHECK(r.error().code == ql::ErrorCode::InvalidModel);
  const auto good = pb::toVec(pb::model(pair({4.0f, 0.25f}, {1.0f, 1.0f}).build()));
  ql::cle::Options bad;
  bad.tolerance = -1;
  auto e = ql::cle::equalize(good.data(), good.size(), bad);
  CHECK(e.error().code == ql::ErrorCode::InvalidArgument);
  // Each bound, just outside and just inside.
  auto check = [&](auto set, bool ok) {
    ql::cle::Options o;
    set(o);
    auto x = ql::cle::equalize(good.data(), good.size(), o);
    CHECK(x.ok() == ok);
    if (!ok) CHECK(x.error().code == ql::ErrorCode::InvalidArgument);
  };
  check([](auto& o) { o.maxIterations = -1; }, false);
  check([](auto& o) { o.maxIterations = 1000001; }, false);
  check([](auto& o) { o.maxIterations = 1000000; }, true);
  check([](auto& o) { o.histogramBins = 0; }, false);
  check([](auto& o) { o.histogramBins = 4097; }, false);
  check([](auto& o) { o.histogramBins = 4096; }, true);
  check([](auto& o) { o.deadChannelRatio = -1e-9; }, false);
  check([](auto& o) { o.tolerance = std::numeric_limits<double>::quiet_NaN(); }, false);
  // Every truncation of a valid model: an error or a result, nothing else.
  for (size_t n = 0; n < good.size(); ++n) {
    auto t = ql::cle::equalize(good.data(), n);
    if (t.ok()) CHECK((n == 0 || t->written.size > 0));
  }
}

TEST_CASE("recurrent layers are stops, and a sequence that reaches one ends there", "[cle][recurrent]") {
  // x -> A (Conv 1x1, 2 out) -> Relu -> LSTM (input_size 2, hidden 1): the Conv's sequence
  // ends at the LSTM, whose W and R are each stopped at the LSTM's node.
  pb::GraphBuilder g;
  g.input("x", {1, 1, 2, 2}).output("y");
  g.init(pb::floatTensor("A.w", {2, 1, 1, 1}, {4.0f, 0.25f})).init(vec("A.b", {0.5f, -0.25f}));
  g.init(pb::floatTensor("W", {1, 4, 2}, {1, 2, 3, 4, 5, 6, 7, 8})).init(pb::floatTensor("R", {1, 4, 1}, {1, 2, 3, 4}));
  g.add(conv("A", "x", "a")).add(pb::node("Relu", {"a"}, {"h"}, "act"));
  g.add(pb::node("LSTM", {"h", "W", "R"}, {"y"}, "lstm", {pb::attrInt("hidden_size", 1)}));
  Run run(g);
  CHECK(run.report().sequences.empty());
  CHECK(run.report().layers.empty());
  std::vector<std::string> seen;
  for (const auto& s : run.report().stops) {
    seen.push_back(s.layer);
    if (s.layer == "A") {
      CHECK(s.node == "lstm");
      CHECK(s.reason == std::string("reaches lstm: ") + ql::cle::kRecurrentStop);
    } else {
      CHECK(s.node == "lstm");
      CHECK(s.op == "LSTM");
      CHECK(s.reason == ql::cle::kRecurrentStop);
    }
  }
  CHECK(seen == std::vector<std::string>{"lstm/W", "lstm/R", "A"});
  CHECK(run.init("W") == std::vector<float>{1, 2, 3, 4, 5, 6, 7, 8});  // untouched
}

TEST_CASE("a layer inside a sub-graph is stopped at its own node, named as the layer", "[cle][subgraph]") {
  // The stop names the node by the layer's display name ("<op>#<index in its own
  // graph>" when unnamed): an index into the main graph's nodes would be meaningless.
  pb::GraphBuilder thenG, elseG;
  thenG.name = "then";
  thenG.init(pb::floatTensor("Wt", {2, 2}, {1, 2, 3, 4}));
  thenG.add(pb::node("Relu", {"v"}, {"r"}, "then_relu"));
  thenG.add(pb::node("MatMul", {"r", "Wt"}, {"t"}));  // unnamed: "MatMul#1"
  thenG.output("t", {1, 2});
  elseG.name = "else";
  elseG.add(pb::node("Identity", {"v"}, {"e"}, "else_id"));
  elseG.output("e", {1, 2});
  pb::GraphBuilder g = pair({4.0f, 0.25f}, {1.0f, 1.0f});
  g.input("c", {1}).input("v", {1, 2}).output("o", {1, 2});
  g.add(pb::node("If", {"c"}, {"o"}, "if",
                 {pb::attrGraph("then_branch", thenG.build()), pb::attrGraph("else_branch", elseG.build())}));
  Run run(g);
  const ql::cle::Stop* stop = nullptr;
  for (const auto& s : run.report().stops)
    if (s.layer == "MatMul#1") stop = &s;
  REQUIRE(stop != nullptr);
  CHECK(stop->node == "MatMul#1");
  CHECK(stop->op == "MatMul");
  CHECK(stop->reason.find("inside a sub-graph (if/then_branch)") != std::string::npos);
  CHECK(run.report().sequences.size() == 1);  // the main graph's pair is equalized all the same
}

TEST_CASE("statistics that cannot be computed before scaling are reported in the layer's record", "[cle]") {
  // A weight of 2e15 is above what the statistics accept (1e15); balanced against
  // layer B it ends near sqrt(2e15), which they do. The layer is equalized, and its
  // record says why `before` is empty instead of leaving zeros unexplained.
  Run run(pair({2e15f, 1.0f}, {1.0f, 1.0f}));
  const auto& a = run.layer("A");
  CHECK(a.beforeError.find("statistics of A before equalization") != std::string::npos);
  CHECK(a.beforeError.find("1e15") != std::string::npos);
  CHECK(a.after.sqnr[ql::stats::kInt8PerTensor] != 0);
  CHECK(run.layer("B").beforeError.empty());
  CHECK(run.report().sequences.size() == 1);
}

namespace {

// x -> G1 (Gemm, transB, [32, 16]) -> Relu -> G2 ([24, 32]) -> Relu -> G3 ([8, 24]) -> y,
// with uneven output channels; weights as raw data, or (typed) in the float_data field.
pb::GraphBuilder mlp(bool typed, bool withBatchNorm = false) {
  const std::vector<std::pair<int64_t, int64_t>> shapes = {{32, 16}, {24, 32}, {8, 24}};
  pb::GraphBuilder g;
  g.input("x", {1, 16}).output("y", {1, 8});
  uint32_t seed = 12345;
  auto next = [&]() {
    seed = seed * 1664525u + 1013904223u;
    return static_cast<float>(static_cast<int32_t>(seed >> 8) - (1 << 23)) / static_cast<float>(1 << 23);
  };
  std::string in = "x";
  for (size_t k = 0; k < shapes.size(); ++k) {
    const auto [n, c] = shapes[k];
    std::vector<float> w(static_cast<size_t>(n * c)), b(static_cast<size_t>(n));
    for (int64_t o = 0; o < n; ++o) {
      const float big = o % 5 == 0 ? 40.0f : o % 3 == 0 ? 0.01f : 1.0f;
      for (int64_t i = 0; i < c; ++i) w[static_cast<size_t>(o * c + i)] = next() * big;
      b[static_cast<size_t>(o)] = next();
    }
    const std::string name = "G" + std::to_string(k + 1);
    if (typed) {
      Msg t = pb::tensorHeader(name + ".w", pb::kFloat, {n, c});
      t.packedFloats(pb::kFloatData, w);
      g.init(t);
    } else {
      g.init(pb::floatTensor(name + ".w", {n, c}, w));
    }
    g.init(vec(name + ".b", b));
    const std::string out = k + 1 == shapes.size() ? "y" : name + ".y";
    std::string gemmOut = k == 0 && withBatchNorm ? name + ".g" : out;
    g.add(pb::node("Gemm", {in, name + ".w", name + ".b"}, {gemmOut}, name, {pb::attrInt("transB", 1)}));
    if (k == 0 && withBatchNorm) {
      std::vector<float> sc(static_cast<size_t>(n)), bb(static_cast<size_t>(n)), mu(static_cast<size_t>(n)),
          var(static_cast<size_t>(n));
      for (int64_t o = 0; o < n; ++o) {
        sc[static_cast<size_t>(o)] = 0.5f + std::fabs(next());
        bb[static_cast<size_t>(o)] = next() * 4;
        mu[static_cast<size_t>(o)] = next();
        var[static_cast<size_t>(o)] = 0.25f + std::fabs(next());
      }
      g.init(vec("bn.s", sc)).init(vec("bn.b", bb)).init(vec("bn.m", mu)).init(vec("bn.v", var));
      g.add(pb::node("BatchNormalization", {gemmOut, "bn.s", "bn.b", "bn.m", "bn.v"}, {out}, "bn"));
    }
    if (k + 1 < shapes.size()) {
      g.add(pb::node("Relu", {out}, {name + ".r"}, name + "_relu"));
      in = name + ".r";
    }
  }
  return g;
}

}  // namespace

TEST_CASE("a weight stored as raw data is not held: read again with its scalings replayed, the same bits", "[cle]") {
  for (bool bn : {false, true}) {
    INFO("BatchNorm folded into G1: " << bn);
    ql::cle::Options streamAll;
    streamAll.holdBytes = 0;
    Run raw(mlp(false, bn), streamAll), typed(mlp(true, bn)), small(mlp(false, bn));
    // Without a budget for held copies only the middle layer of the sequence (both sides
    // scaled in place) is held; a weight in the float_data field is read whole, as before;
    // under the default budget the small end layers are held too. The same bits each way.
    CHECK(raw.r->heldWeightBytes == 24 * 32 * sizeof(float));
    CHECK(typed.r->heldWeightBytes == (32 * 16 + 24 * 32 + 8 * 24) * sizeof(float));
    CHECK(small.r->heldWeightBytes == (32 * 16 + 24 * 32 + 8 * 24) * sizeof(float));
    CHECK(small.written == raw.written);
    REQUIRE(raw.report().sequences.size() == 1);
    CHECK(raw.report().sequences[0].layers.size() == 3);
    for (const char* name : {"G1.w", "G2.w", "G3.w", "G1.b", "G2.b", "G3.b"}) {
      INFO(name);
      const auto a = raw.init(name), b = typed.init(name);
      REQUIRE(a.size() == b.size());
      CHECK(std::memcmp(a.data(), b.data(), a.size() * sizeof(float)) == 0);
    }
    for (const char* name : {"G1", "G2", "G3"}) {
      INFO(name);
      const auto &a = raw.layer(name), &b = typed.layer(name);
      CHECK(a.before.absMax == b.before.absMax);
      CHECK(a.after.absMax == b.after.absMax);
      CHECK(a.after.mean == b.after.mean);
      CHECK(a.after.std == b.after.std);
    }
  }
}

// Skimmed from a reader (as the CLI and the app read a file), a weight stored as one packed
// float_data field is left in the file and streamed as raw data is (analysis::markDeferred
// adopts its payload): no float32 copy is held beyond the middle layer, and the written
// model is byte for byte the one written from the model read whole.
TEST_CASE("equalize from a reader: float_data weights stream as raw data, the same bytes written", "[cle]") {
  struct Reader : ql::onnx::ByteReader {
    const std::vector<uint8_t>& v;
    explicit Reader(const std::vector<uint8_t>& b) : v(b) {}
    bool read(uint64_t offset, uint8_t* dst, uint64_t length) override {
      if (offset > v.size() || length > v.size() - offset) return false;
      std::memcpy(dst, v.data() + offset, length);
      return true;
    }
  };
  ql::cle::Options streamAll;
  streamAll.holdBytes = 0;
  Run whole(mlp(true), streamAll);
  Reader in(whole.input);
  std::vector<uint8_t> image(whole.input.size());
  ql::onnx::SkimOptions so;
  so.skipAtLeast = 256;  // every weight's payload (2 KB and more) stays in the file
  auto r = ql::cle::equalize(in, whole.input.size(), image.data(), streamAll, so);
  INFO((r.ok() ? std::string() : r.error().describe()));
  REQUIRE(r.ok());
  CHECK(whole.r->heldWeightBytes == (32 * 16 + 24 * 32 + 8 * 24) * sizeof(float));  // read whole: held
  CHECK(r->heldWeightBytes == 24 * 32 * sizeof(float));                             // only the middle layer
  CHECK(r->bytes(whole.input.data()) == whole.written);
}
