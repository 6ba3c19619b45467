// Model comparison on small hand-built models: the matching rules, hand-worked
// differences (float vs float, per-axis and per-tensor QDQ, QLinearConv), identical
// weights (+inf dB), pairs that cannot be compared and why, and bad input.
#include <algorithm>
#include <catch2/catch.hpp>
#include <cmath>
#include <filesystem>
#include <fstream>
#include <iterator>
#include <limits>
#include <string>
#include <vector>

#include "compare/compare.hpp"
#include "pb_writer.hpp"

using ql::compare::MatchedBy;
using ql::compare::PairDiff;
namespace pb = pbw::onnx;
using pbw::Msg;

namespace {

const double kInf = std::numeric_limits<double>::infinity();

struct Compared {
  std::vector<uint8_t> a, b;
  ql::Result<ql::compare::FullComparison> r{ql::compare::FullComparison{}};
  Compared(const pb::GraphBuilder& ga, const pb::GraphBuilder& gb)
      : a(pb::toVec(pb::model(ga.build()))), b(pb::toVec(pb::model(gb.build()))) {
    r = ql::compare::compareModels(a.data(), a.size(), b.data(), b.size());
    INFO(r.error().describe());
    REQUIRE(r.ok());
  }
  const ql::compare::Matching& m() const { return r->comparison->matching(); }
  const ql::graph::Layer& layerA(size_t i) const { return r->comparison->a().discovery.layers.at(i); }
  const ql::graph::Layer& layerB(size_t i) const { return r->comparison->b().discovery.layers.at(i); }
  // The pair whose A layer is named `name`.
  size_t pairOf(const std::string& name) const {
    for (size_t k = 0; k < m().pairs.size(); ++k)
      if (layerA(m().pairs[k].a).name == name) return k;
    FAIL("no pair for " << name);
    return 0;
  }
  const PairDiff& diff(const std::string& name) const { return r->pairs.at(pairOf(name)); }
  MatchedBy by(const std::string& name) const { return m().pairs.at(pairOf(name)).by; }
};

pb::GraphBuilder io() {
  pb::GraphBuilder g;
  g.input("x").output("y");
  return g;
}

double db(double ratio) { return 10.0 * std::log10(ratio); }

}  // namespace

TEST_CASE("compare: identical models give +inf SQNR and zero differences", "[compare]") {
  auto g = io();
  g.init(pb::floatTensor("W", {2, 1, 1, 2}, {1.0f, -2.0f, 3.0f, 0.5f}));
  g.add(pb::node("Conv", {"x", "W"}, {"y"}, "conv"));
  Compared c(g, g);
  REQUIRE(c.m().pairs.size() == 1);
  CHECK(c.m().pairs[0].by == MatchedBy::Weight);
  CHECK(c.m().unmatchedA.empty());
  CHECK(c.m().unmatchedB.empty());
  const PairDiff& d = c.r->pairs[0];
  REQUIRE(d.comparable);
  CHECK(d.reason.empty());
  CHECK(d.channels == 2);
  CHECK(d.tensorSqnr == kInf);
  CHECK(d.tensorMaxAbsDiff == 0.0);
  CHECK(d.tensorRmsDiff == 0.0);
  CHECK(d.sqnr == std::vector<double>{kInf, kInf});
  CHECK(d.maxAbsDiff == std::vector<double>{0, 0});
  CHECK(d.minA == std::vector<float>{-2.0f, 0.5f});
  CHECK(d.maxA == std::vector<float>{1.0f, 3.0f});
  CHECK(d.minB == d.minA);
  CHECK(d.maxB == d.maxA);
  CHECK_FALSE(d.quantA.present);
}

TEST_CASE("compare: hand-worked float differences", "[compare]") {
  auto ga = io(), gb = io();
  ga.init(pb::floatTensor("W", {2, 1, 1, 2}, {1.0f, 2.0f, 3.0f, 4.0f}));
  gb.init(pb::floatTensor("W", {2, 1, 1, 2}, {1.0f, 2.5f, 3.0f, 3.0f}));
  ga.add(pb::node("Conv", {"x", "W"}, {"y"}, "conv"));
  gb.add(pb::node("Conv", {"x", "W"}, {"y"}, "conv"));
  Compared c(ga, gb);
  const PairDiff& d = c.diff("conv");
  REQUIRE(d.comparable);
  // channel 0: a {1, 2}, d {0, 0.5}: sum a^2 5, sum d^2 0.25
  CHECK(d.maxAbsDiff[0] == 0.5);
  CHECK(d.rmsDiff[0] == Approx(std::sqrt(0.125)).epsilon(1e-15));
  CHECK(d.sqnr[0] == Approx(db(20)).epsilon(1e-14));
  // channel 1: a {3, 4}, d {0, -1}: 25 / 1
  CHECK(d.maxAbsDiff[1] == 1.0);
  CHECK(d.rmsDiff[1] == Approx(std::sqrt(0.5)).epsilon(1e-15));
  CHECK(d.sqnr[1] == Approx(db(25)).epsilon(1e-14));
  // tensor: 30 / 1.25 over 4 values
  CHECK(d.tensorMaxAbsDiff == 1.0);
  CHECK(d.tensorRmsDiff == Approx(std::sqrt(1.25 / 4)).epsilon(1e-15));
  CHECK(d.tensorSqnr == Approx(db(24)).epsilon(1e-14));
  CHECK(d.minA == std::vector<float>{1, 3});
  CHECK(d.maxA == std::vector<float>{2, 4});
  CHECK(d.minB == std::vector<float>{1, 3});
  CHECK(d.maxB == std::vector<float>{2.5f, 3});
}

TEST_CASE("compare: per-axis int8 QDQ against float", "[compare][quant]") {
  auto ga = io(), gb = io();
  // channel 0: {0.5, -1, 0.375} at scale 0.25 -> q {2, -4, 2 (1.5 rounds to even)} -> {0.5, -1, 0.5}
  // channel 1: {2, 0.125, -0.75} at scale 0.5 -> q {4, 0, -2 (-1.5 to even)} -> {2, 0, -1}
  ga.init(pb::floatTensor("W", {2, 1, 1, 3}, {0.5f, -1.0f, 0.375f, 2.0f, 0.125f, -0.75f}));
  ga.add(pb::node("Conv", {"x", "W"}, {"y"}, "conv"));
  gb.init(pb::int8Tensor("W_quantized", {2, 1, 1, 3}, {2, -4, 2, 4, 0, -2}));
  gb.init(pb::floatTensor("W_scale", {2}, {0.25f, 0.5f}));
  gb.init(pb::int8Tensor("W_zero_point", {2}, {0, 0}));
  gb.add(pb::node("DequantizeLinear", {"W_quantized", "W_scale", "W_zero_point"}, {"W_dq"}, "W_DequantizeLinear",
                  {pb::attrInt("axis", 0)}));
  gb.add(pb::node("Conv", {"x", "W_dq"}, {"y"}, "conv"));
  Compared c(ga, gb);
  REQUIRE(c.m().pairs.size() == 1);
  CHECK(c.by("conv") == MatchedBy::Name);  // the weight names differ
  const PairDiff& d = c.diff("conv");
  REQUIRE(d.comparable);
  CHECK_FALSE(d.quantA.present);
  REQUIRE(d.quantB.present);
  CHECK(d.quantB.via == "DequantizeLinear");
  CHECK(d.quantB.intType == "int8");
  CHECK(d.quantB.axis == 0);
  CHECK(d.quantB.scale == std::vector<double>{0.25, 0.5});
  // channel 0: d {0, 0, 0.125}; sum a^2 = 0.25 + 1 + 0.140625
  CHECK(d.maxAbsDiff[0] == 0.125);
  CHECK(d.rmsDiff[0] == Approx(std::sqrt(0.015625 / 3)).epsilon(1e-15));
  CHECK(d.sqnr[0] == Approx(db(1.390625 / 0.015625)).epsilon(1e-14));  // 89
  // channel 1: d {0, -0.125, -0.25}; sum a^2 = 4 + 0.015625 + 0.5625
  CHECK(d.maxAbsDiff[1] == 0.25);
  CHECK(d.sqnr[1] == Approx(db(4.578125 / 0.078125)).epsilon(1e-14));
  CHECK(d.tensorMaxAbsDiff == 0.25);
  CHECK(d.tensorSqnr == Approx(db(5.96875 / 0.09375)).epsilon(1e-14));
  CHECK(d.tensorRmsDiff == Approx(std::sqrt(0.09375 / 6)).epsilon(1e-15));
  CHECK(d.minB == std::vector<float>{-1.0f, -1.0f});
  CHECK(d.maxB == std::vector<float>{0.5f, 2.0f});
}

TEST_CASE("compare: per-tensor uint8 QDQ with a zero point, Gemm columns", "[compare][quant]") {
  auto ga = io(), gb = io();
  // Gemm without transB: W [K=2, N=2], channels are columns.
  ga.init(pb::floatTensor("W", {2, 2}, {1.0f, -0.5f, 0.25f, 2.0f}));
  ga.add(pb::node("Gemm", {"x", "W"}, {"y"}, "fc"));
  // scale 0.5, zero point 128: q = round(a / 0.5) + 128 = {130, 127, 128 (0.5 to even: 0), 132}
  gb.init(pb::rawTensor("Wq", pb::kUint8, {2, 2}, std::string("\x82\x7f\x80\x84", 4)));
  gb.init(pb::floatTensor("s", {}, {0.5f}));
  gb.init(pb::rawTensor("z", pb::kUint8, {}, std::string("\x80", 1)));
  gb.add(pb::node("DequantizeLinear", {"Wq", "s", "z"}, {"Wd"}, "dq"));
  gb.add(pb::node("Gemm", {"x", "Wd"}, {"y"}, "fc"));
  Compared c(ga, gb);
  const PairDiff& d = c.diff("fc");
  REQUIRE(d.comparable);
  CHECK(d.quantB.intType == "uint8");
  CHECK(d.quantB.axis == -1);
  CHECK(d.quantB.zeroPoint == std::vector<double>{128});
  // column 0: a {1, 0.25} -> {1, 0}: 1.0625 / 0.0625 = 17
  CHECK(d.sqnr[0] == Approx(db(17)).epsilon(1e-14));
  CHECK(d.maxAbsDiff[0] == 0.25);
  // column 1: a {-0.5, 2} exact
  CHECK(d.sqnr[1] == kInf);
  CHECK(d.maxAbsDiff[1] == 0.0);
  CHECK(d.tensorSqnr == Approx(db(85)).epsilon(1e-14));  // 5.3125 / 0.0625
  CHECK(d.minB == std::vector<float>{0.0f, -0.5f});
}

TEST_CASE("compare: QLinearConv weights, matched by position", "[compare][quant]") {
  auto ga = io(), gb = io();
  ga.init(pb::floatTensor("W", {2, 1, 1, 2}, {0.5f, -0.25f, 3.0f, 1.0f}));
  ga.add(pb::node("Conv", {"x", "W"}, {"y"}, "conv"));
  // channel 0: scale 0.25, zp 0 -> q {2, -1}, exact; channel 1: scale 1.5, zp 1:
  // 3 / 1.5 = 2 -> q 3 -> 3; 1 / 1.5 = 0.67 -> q 2 -> 1.5
  gb.init(pb::int8Tensor("w_q", {2, 1, 1, 2}, {2, -1, 3, 2}));
  gb.init(pb::floatTensor("w_scale", {2}, {0.25f, 1.5f}));
  gb.init(pb::int8Tensor("w_zp", {2}, {0, 1}));
  gb.add(pb::node("QLinearConv", {"x", "xs", "xz", "w_q", "w_scale", "w_zp", "ys", "yz"}, {"y"}, "qconv"));
  Compared c(ga, gb);
  REQUIRE(c.m().pairs.size() == 1);
  CHECK(c.by("conv") == MatchedBy::Position);
  const PairDiff& d = c.diff("conv");
  REQUIRE(d.comparable);
  CHECK(d.quantB.via == "QLinearConv");
  CHECK(d.quantB.axis == 0);
  CHECK(d.sqnr[0] == kInf);
  CHECK(d.maxAbsDiff[1] == 0.5);
  CHECK(d.sqnr[1] == Approx(db(10 / 0.25)).epsilon(1e-14));
  CHECK(d.tensorSqnr == Approx(db(10.3125 / 0.25)).epsilon(1e-14));
  CHECK(d.minB == std::vector<float>{-0.25f, 1.5f});
  CHECK(d.maxB == std::vector<float>{0.5f, 3.0f});
}

TEST_CASE("compare: matching rules and mismatches", "[compare][match]") {
  auto ga = io(), gb = io();
  auto w = [](const std::string& name, std::vector<int64_t> dims) {
    size_t n = 1;
    for (int64_t x : dims) n *= static_cast<size_t>(x);
    std::vector<float> v(n);
    for (size_t i = 0; i < n; ++i) v[i] = 0.5f * static_cast<float>(i + 1);
    return pb::floatTensor(name, dims, v);
  };
  // node 0: the same weight name, different node names -> weight
  ga.init(w("W0", {2, 1, 1, 1})).add(pb::node("Conv", {"x", "W0"}, {"y0"}, "a"));
  gb.init(w("W0", {2, 1, 1, 1})).add(pb::node("Conv", {"x", "W0"}, {"y0"}, "x"));
  // node 1: the same node name -> name
  ga.init(w("W1", {4, 1, 1, 1})).add(pb::node("Conv", {"x", "W1"}, {"y1"}, "b"));
  gb.init(w("V1", {4, 1, 1, 1})).add(pb::node("Conv", {"x", "V1"}, {"y1"}, "b"));
  // node 2: Gemm [2, 3] vs MatMul [3, 2]: same family, 6 values -> position; the
  // layouts differ ({1,2,3,1}: columns of [2, 3]... ) -> checked below
  ga.init(w("W2", {2, 3})).add(pb::node("Gemm", {"x", "W2"}, {"y2"}, "c", {pb::attrInt("transB", 1)}));
  gb.init(w("V2", {3, 2})).add(pb::node("MatMul", {"x", "V2"}, {"y2"}, "y"));
  // node 3: same family, 3 vs 5 values -> both unmatched
  ga.init(w("W3", {3, 1, 1, 1})).add(pb::node("Conv", {"x", "W3"}, {"y3"}, "d"));
  gb.init(w("V3", {5, 1, 1, 1})).add(pb::node("Conv", {"x", "V3"}, {"y3"}, "z"));
  // node 4: unnamed on both sides: made-up names ("MatMul#4") do not match -> position
  ga.init(w("W4", {2, 2})).add(pb::node("MatMul", {"x", "W4"}, {"y4"}));
  gb.init(w("V4", {2, 2})).add(pb::node("MatMul", {"x", "V4"}, {"y4"}));
  // node 5: same name, 4 values each, different shapes and layouts -> not comparable
  ga.init(w("W5", {2, 1, 1, 2})).add(pb::node("Conv", {"x", "W5"}, {"y5"}, "e"));
  gb.init(w("V5", {4, 1, 1, 1})).add(pb::node("Conv", {"x", "V5"}, {"y5"}, "e"));
  // node 6: same name, different element counts -> not comparable
  ga.init(w("W6", {2, 2, 1, 1})).add(pb::node("Conv", {"x", "W6"}, {"y6"}, "f"));
  gb.init(w("V6", {3, 1, 1, 1})).add(pb::node("Conv", {"x", "V6"}, {"y6"}, "f"));
  // node 7: same name, same layout {1,1,4,2} from different shapes -> comparable
  ga.init(w("W7", {4, 2, 1, 1})).add(pb::node("Conv", {"x", "W7"}, {"y7"}, "g"));
  gb.init(w("V7", {4, 1, 2, 1})).add(pb::node("Conv", {"x", "V7"}, {"y7"}, "g"));
  Compared c(ga, gb);
  CHECK(c.layerA(4).name == "MatMul#4");
  CHECK(c.layerB(4).name == "MatMul#4");
  REQUIRE(c.m().pairs.size() == 7);
  for (size_t k = 1; k < c.m().pairs.size(); ++k) CHECK(c.m().pairs[k - 1].a < c.m().pairs[k].a);
  CHECK(c.by("a") == MatchedBy::Weight);
  CHECK(c.by("b") == MatchedBy::Name);
  CHECK(c.by("c") == MatchedBy::Position);
  CHECK(c.by("MatMul#4") == MatchedBy::Position);
  CHECK(c.by("e") == MatchedBy::Name);
  CHECK(c.by("f") == MatchedBy::Name);
  CHECK(c.by("g") == MatchedBy::Name);
  CHECK(c.m().unmatchedA == std::vector<size_t>{3});
  CHECK(c.m().unmatchedB == std::vector<size_t>{3});
  CHECK(c.diff("a").tensorSqnr == kInf);
  CHECK(c.diff("b").tensorSqnr == kInf);
  CHECK(c.diff("MatMul#4").tensorSqnr == kInf);
  // Gemm transB [2, 3] (channels = rows) vs MatMul [3, 2] (channels = columns)
  CHECK_FALSE(c.diff("c").comparable);
  CHECK(c.diff("c").reason.find("lay the values out differently") != std::string::npos);
  CHECK_FALSE(c.diff("e").comparable);
  CHECK(c.diff("e").reason.find("[2x1x1x2]") != std::string::npos);
  CHECK(c.diff("e").sqnr.empty());
  CHECK_FALSE(c.diff("f").comparable);
  CHECK(c.diff("f").reason == "weights have 4 and 3 values (shapes [2x2x1x1] and [3x1x1x1])");
  REQUIRE(c.diff("g").comparable);
  CHECK(c.diff("g").tensorSqnr == kInf);
  CHECK(c.diff("g").channels == 4);
}

TEST_CASE("compare: normalizedName removes the quantizers' suffixes", "[compare][match]") {
  using ql::compare::normalizedName;
  // onnxruntime quantize_static / quantize_dynamic (QOperator): weight initializer W ->
  // W + "_quantized" (with W + "_scale", W + "_zero_point"); QLinearConv / ConvInteger /
  // MatMulInteger node N -> N + "_quant".
  CHECK(normalizedName("conv_in.weight_quantized") == "conv_in.weight");
  CHECK(normalizedName("/stage1/block0/conv/Conv_quant") == "/stage1/block0/conv/Conv");
  CHECK(normalizedName("conv_in.weight_scale") == "conv_in.weight");
  CHECK(normalizedName("conv_in.weight_zero_point") == "conv_in.weight");
  // its QDQ format: W + "_DequantizeLinear" (node), + "_DequantizeLinear_Output" (value),
  // activations + "_QuantizeLinear", "_QuantizeLinear_Output", "_QuantizeLinear_Input"
  CHECK(normalizedName("onnx::Conv_123_DequantizeLinear") == "onnx::Conv_123");
  CHECK(normalizedName("onnx::Conv_123_DequantizeLinear_Output") == "onnx::Conv_123");
  CHECK(normalizedName("input_QuantizeLinear") == "input");
  CHECK(normalizedName("input_QuantizeLinear_Output") == "input");
  CHECK(normalizedName("input_QuantizeLinear_Input") == "input");
  // MatMulNBits quantizer: B + "_Q4" / "_Q8" (QOperator), B + "_DQ_Q4" (QDQ), B + "_scales",
  // B + "_zero_points"; bnb4: B + "_Bnb4", B + "_absmax"
  CHECK(normalizedName("model.layers.0.mlp.down_proj.MatMul.weight_Q4") == "model.layers.0.mlp.down_proj.MatMul.weight");
  CHECK(normalizedName("/model/layers.0/attn/MatMul_Q8") == "/model/layers.0/attn/MatMul");
  CHECK(normalizedName("onnx::MatMul_99_DQ_Q4") == "onnx::MatMul_99");
  CHECK(normalizedName("B_scales") == "B");
  CHECK(normalizedName("B_zero_points") == "B");
  CHECK(normalizedName("B_Bnb4") == "B");
  CHECK(normalizedName("B_absmax") == "B");
  // repeated suffixes go one after the other
  CHECK(normalizedName("W_quantized_DequantizeLinear_Output") == "W");
  // unchanged: no suffix, a suffix that is the whole name, look-alikes
  CHECK(normalizedName("conv1.weight") == "conv1.weight");
  CHECK(normalizedName("_quantized") == "_quantized");
  CHECK(normalizedName("_Q4") == "_Q4");
  CHECK(normalizedName("") == "");
  CHECK(normalizedName("W_Q") == "W_Q");
  CHECK(normalizedName("layer_quantizer") == "layer_quantizer");
  CHECK(normalizedName("x_Quant") == "x_Quant");
  CHECK(normalizedName("conv_DequantizeLinear_Output_1") == "conv_DequantizeLinear_Output_1");
}

TEST_CASE("compare: names that differ by the quantizer's suffixes pair after normalisation", "[compare][match]") {
  auto ga = io(), gb = io();
  auto w = [](const std::string& name, int64_t o) {
    std::vector<float> v(static_cast<size_t>(o));
    for (size_t i = 0; i < v.size(); ++i) v[i] = 0.25f * static_cast<float>(i + 1);
    return pb::floatTensor(name, {o, 1, 1, 1}, v);
  };
  // layer 0: weight "s1.weight" / "s1.weight_quantized", nodes "/s1/Conv" / "/s1/Conv_quant":
  // weight-normalized (the weight rule comes first)
  ga.init(w("s1.weight", 2)).add(pb::node("Conv", {"x", "s1.weight"}, {"y0"}, "/s1/Conv"));
  gb.init(w("s1.weight_quantized", 2)).add(pb::node("Conv", {"x", "s1.weight_quantized"}, {"y0"}, "/s1/Conv_quant"));
  // layer 1: weights unrelated, nodes "/s2/Conv" / "/s2/Conv_quant": name-normalized
  ga.init(w("W1", 3)).add(pb::node("Conv", {"x", "W1"}, {"y1"}, "/s2/Conv"));
  gb.init(w("V1", 3)).add(pb::node("Conv", {"x", "V1"}, {"y1"}, "/s2/Conv_quant"));
  // layers 2 and 3: in B, "t" and "t_quant" both normalise to "t": ambiguous, not paired by
  // that rule; the weights' normalised names "k2" / "k3" are unique and pair them
  ga.init(w("k2", 4)).add(pb::node("Conv", {"x", "k2"}, {"y2"}, "t"));
  ga.init(w("k3", 5)).add(pb::node("Conv", {"x", "k3"}, {"y3"}, "u"));
  gb.init(w("k3_quantized", 5)).add(pb::node("Conv", {"x", "k3_quantized"}, {"y3"}, "t_quant"));
  gb.init(w("k2_quantized", 4)).add(pb::node("Conv", {"x", "k2_quantized"}, {"y2"}, "t_DequantizeLinear"));
  // layers 4 and 5: A's weights "m" and "m_quantized" both normalise to "m", B's node
  // names are unrelated: no normalised rule applies; position pairs them (same counts)
  ga.init(w("m", 6)).add(pb::node("Conv", {"x", "m"}, {"y4"}, "p4"));
  ga.init(w("m_quantized", 7)).add(pb::node("Conv", {"x", "m_quantized"}, {"y5"}, "p5"));
  gb.init(w("m_Q4", 6)).add(pb::node("Conv", {"x", "m_Q4"}, {"y4"}, "q4"));
  gb.init(w("n_Q4", 7)).add(pb::node("Conv", {"x", "n_Q4"}, {"y5"}, "q5"));
  // layer 6: exact node name beats a normalised weight name elsewhere
  ga.init(w("e", 8)).add(pb::node("Conv", {"x", "e"}, {"y6"}, "exact"));
  gb.init(w("e_quantized", 8)).add(pb::node("Conv", {"x", "e_quantized"}, {"y6"}, "exact"));
  Compared c(ga, gb);
  REQUIRE(c.m().pairs.size() == 7);
  CHECK(c.m().unmatchedA.empty());
  CHECK(c.m().unmatchedB.empty());
  CHECK(c.by("/s1/Conv") == MatchedBy::WeightNormalized);
  CHECK(c.by("/s2/Conv") == MatchedBy::NameNormalized);
  CHECK(c.by("t") == MatchedBy::WeightNormalized);
  CHECK(c.layerB(c.m().pairs[c.pairOf("t")].b).name == "t_DequantizeLinear");
  CHECK(c.by("u") == MatchedBy::WeightNormalized);
  CHECK(c.layerB(c.m().pairs[c.pairOf("u")].b).name == "t_quant");
  CHECK(c.by("p4") == MatchedBy::Position);
  CHECK(c.by("p5") == MatchedBy::Position);
  CHECK(c.by("exact") == MatchedBy::Name);
  for (const PairDiff& d : c.r->pairs) CHECK(d.tensorSqnr == kInf);
  CHECK(std::string(ql::compare::matchedByName(MatchedBy::WeightNormalized)) == "weight-normalized");
  CHECK(std::string(ql::compare::matchedByName(MatchedBy::NameNormalized)) == "name-normalized");
}

TEST_CASE("compare: an ambiguous normalised node name pairs nothing", "[compare][match]") {
  auto ga = io(), gb = io();
  // A: "c" and "c_quant" (both "c" once normalised); B: "c_Q4" with a 3-value weight.
  // A's "c" has 2 values, "c_quant" 3: the name rule must not guess; position pairs
  // A's first layer (2 values) with B's (3 values) only if the counts agreed: they do not.
  ga.init(pb::floatTensor("W0", {2, 1, 1, 1}, {1, 2})).add(pb::node("Conv", {"x", "W0"}, {"y0"}, "c"));
  ga.init(pb::floatTensor("W1", {3, 1, 1, 1}, {1, 2, 3})).add(pb::node("Conv", {"x", "W1"}, {"y1"}, "c_quant"));
  gb.init(pb::floatTensor("V1", {3, 1, 1, 1}, {1, 2, 3})).add(pb::node("Conv", {"x", "V1"}, {"y1"}, "c_Q4"));
  Compared c(ga, gb);
  CHECK(c.m().pairs.empty());
  CHECK(c.m().unmatchedA == std::vector<size_t>{0, 1});
  CHECK(c.m().unmatchedB == std::vector<size_t>{0});
}

TEST_CASE("compare: a shared weight pairs its users in order", "[compare][match]") {
  auto ga = io(), gb = io();
  ga.init(pb::floatTensor("W", {1, 1, 1, 1}, {2.0f}));
  gb.init(pb::floatTensor("W", {1, 1, 1, 1}, {2.0f}));
  ga.add(pb::node("Conv", {"x", "W"}, {"y1"}, "p")).add(pb::node("Conv", {"y1", "W"}, {"y"}, "q"));
  gb.add(pb::node("Conv", {"x", "W"}, {"y1"}, "r")).add(pb::node("Conv", {"y1", "W"}, {"y2"}, "s"));
  gb.add(pb::node("Conv", {"y2", "W"}, {"y"}, "t"));
  Compared c(ga, gb);
  REQUIRE(c.m().pairs.size() == 2);
  CHECK(c.m().pairs[0].a == 0);
  CHECK(c.m().pairs[0].b == 0);
  CHECK(c.m().pairs[1].a == 1);
  CHECK(c.m().pairs[1].b == 1);
  CHECK(c.m().unmatchedB == std::vector<size_t>{2});
}

TEST_CASE("compare: grouped ConvTranspose layout, channels of A", "[compare]") {
  // the numbers over a layout with outer > 1: channel o * channels + c
  const std::vector<float> a = {1, 2, 3, 4}, b = {1, 2, 3, 5};
  PairDiff d = ql::compare::diffValues(a.data(), b.data(), ql::stats::ChannelLayout{2, 1, 2, 1});
  REQUIRE(d.channels == 4);
  CHECK(d.sqnr[0] == kInf);
  CHECK(d.sqnr[2] == kInf);
  CHECK(d.sqnr[3] == Approx(db(16)).epsilon(1e-14));
  CHECK(d.maxA == std::vector<float>{1, 2, 3, 4});
  CHECK(d.maxB == std::vector<float>{1, 2, 3, 5});
  // an empty tensor: nothing to lose
  PairDiff e = ql::compare::diffValues(nullptr, nullptr, ql::stats::ChannelLayout{1, 0, 2, 1});
  CHECK(e.channels == 2);
  CHECK(e.tensorSqnr == kInf);
  CHECK(e.tensorRmsDiff == 0.0);
}

TEST_CASE("compare: unreadable weights make the pair not comparable", "[compare][bad]") {
  auto ga = io();
  ga.init(pb::floatTensor("W", {2, 1, 1, 1}, {1.0f, 2.0f}));
  ga.add(pb::node("Conv", {"x", "W"}, {"y"}, "conv"));
  {  // a scale count that does not fit the axis
    auto gb = io();
    gb.init(pb::int8Tensor("Wq", {2, 1, 1, 1}, {1, 2}));
    gb.init(pb::floatTensor("s", {3}, {1, 1, 1}));
    gb.add(pb::node("DequantizeLinear", {"Wq", "s"}, {"Wd"}, "dq", {pb::attrInt("axis", 0)}));
    gb.add(pb::node("Conv", {"x", "Wd"}, {"y"}, "conv"));
    Compared c(ga, gb);
    const PairDiff& d = c.diff("conv");
    CHECK_FALSE(d.comparable);
    CHECK(d.reason.rfind("B: ", 0) == 0);
    CHECK(d.reason.find("expected 1 or 2") != std::string::npos);
  }
  {  // NaN
    auto gb = io();
    gb.init(pb::floatTensor("W", {2, 1, 1, 1}, {1.0f, std::nanf("")}));
    gb.add(pb::node("Conv", {"x", "W"}, {"y"}, "conv"));
    Compared c(ga, gb);
    CHECK_FALSE(c.diff("conv").comparable);
    CHECK(c.diff("conv").reason == "B: the weight holds NaN or infinite values");
  }
  {  // an unsupported type
    auto gb = io();
    gb.init(pb::rawTensor("W", pb::kComplex64, {2, 1, 1, 1}, std::string(16, '\0')));
    gb.add(pb::node("Conv", {"x", "W"}, {"y"}, "conv"));
    Compared c(ga, gb);
    CHECK_FALSE(c.diff("conv").comparable);
    CHECK(c.diff("conv").reason.find("complex64") != std::string::npos);
  }
  {  // external data that nobody supplied
    auto gb = io();
    gb.init(pb::externalTensor("W", pb::kFloat, {2, 1, 1, 1}, "w.bin", "0", "8"));
    gb.add(pb::node("Conv", {"x", "W"}, {"y"}, "conv"));
    Compared c(ga, gb);
    CHECK_FALSE(c.diff("conv").comparable);
    CHECK(c.diff("conv").reason.rfind("B: ", 0) == 0);
  }
  {  // raw data shorter than the shape: the parser already rejects the model
    auto gb = io();
    gb.init(pb::rawTensor("W", pb::kFloat, {2, 1, 1, 1}, std::string(4, '\0')));
    gb.add(pb::node("Conv", {"x", "W"}, {"y"}, "conv"));
    const auto a = pb::toVec(pb::model(ga.build())), b = pb::toVec(pb::model(gb.build()));
    auto r = ql::compare::compareModels(a.data(), a.size(), b.data(), b.size());
    REQUIRE_FALSE(r.ok());
    CHECK(r.error().message.rfind("model B: tensor 'W'", 0) == 0);
  }
}

TEST_CASE("compare: truncated and malformed models are errors naming the side", "[compare][bad]") {
  auto g = io();
  g.init(pb::floatTensor("W", {2, 1, 1, 2}, {1.0f, 2.0f, 3.0f, 4.0f}));
  g.init(pb::int8Tensor("Wq", {2, 1, 1, 2}, {1, 2, 3, 4}));
  g.init(pb::floatTensor("s", {2}, {0.5f, 0.25f}));
  g.add(pb::node("DequantizeLinear", {"Wq", "s"}, {"Wd"}, "dq", {pb::attrInt("axis", 0)}));
  g.add(pb::node("Conv", {"x", "W"}, {"y1"}, "conv"));
  g.add(pb::node("Conv", {"y1", "Wd"}, {"y"}, "conv2"));
  const std::vector<uint8_t> full = pb::toVec(pb::model(g.build()));
  {
    auto r = ql::compare::compareModels(full.data(), full.size(), full.data(), full.size() - 3);
    REQUIRE_FALSE(r.ok());
    CHECK(r.error().code == ql::ErrorCode::InvalidModel);
    CHECK(r.error().message.rfind("model B: ", 0) == 0);
  }
  {
    const uint8_t junk[] = {0xff, 0xff, 0xff, 0xff, 0x0f};
    auto r = ql::compare::compareModels(junk, sizeof junk, full.data(), full.size());
    REQUIRE_FALSE(r.ok());
    CHECK(r.error().message.rfind("model A: ", 0) == 0);
  }
  // Every truncation of either side: an error or a result, never a crash (ASan build).
  size_t errors = 0;
  for (size_t n = 0; n < full.size(); ++n) {
    std::vector<uint8_t> cut(full.begin(), full.begin() + static_cast<std::ptrdiff_t>(n));  // own buffer: ASan sees overruns
    auto r1 = ql::compare::compareModels(full.data(), full.size(), cut.data(), cut.size());
    auto r2 = ql::compare::compareModels(cut.data(), cut.size(), full.data(), full.size());
    errors += !r1.ok() + !r2.ok();
    if (r1.ok()) {
      for (const auto& d : r1->pairs)
        if (d.comparable) CHECK(d.sqnr.size() == d.channels);
    }
  }
  CHECK(errors > 0);
  // One flipped byte at a time.
  for (size_t i = 0; i < full.size(); ++i) {
    std::vector<uint8_t> bad = full;
    bad[i] ^= 0x5a;
    auto r = ql::compare::compareModels(full.data(), full.size(), bad.data(), bad.size());
    if (r.ok()) CHECK(r->pairs.size() == r->comparison->matching().pairs.size());
  }
}

// The whole compare path over every real and generated model we have (sanitized in
// build/asan): each model against itself, and each against the next one in the list.
TEST_CASE("compare: real and generated models, against themselves and each other", "[compare][models]") {
  namespace fs = std::filesystem;
  const fs::path root = QL_SOURCE_DIR;
  std::vector<fs::path> files;
  for (const fs::path dir : {root / "models" / "fetched", root / "models" / "generated",
                             root / ".." / "shared" / "models" / "pytorch", root / ".." / "shared" / "models" / "tf"}) {
    std::error_code ec;
    for (const auto& e : fs::directory_iterator(dir, ec))
      if (e.path().extension() == ".onnx") files.push_back(e.path());
  }
  std::sort(files.begin(), files.end());
  if (files.empty()) {
    WARN("no models found: skipped");
    return;
  }
  auto read = [](const fs::path& p) {
    std::ifstream f(p, std::ios::binary);
    return std::vector<uint8_t>((std::istreambuf_iterator<char>(f)), std::istreambuf_iterator<char>());
  };
  size_t compared = 0;
  for (size_t i = 0; i < files.size(); ++i) {
    INFO(files[i].string());
    const auto a = read(files[i]);
    const auto b = read(files[(i + 1) % files.size()]);
    auto self = ql::compare::compareModels(a.data(), a.size(), a.data(), a.size());
    if (self.ok()) {
      const auto& m = self->comparison->matching();
      CHECK(m.unmatchedA.empty());
      CHECK(m.unmatchedB.empty());
      for (size_t k = 0; k < self->pairs.size(); ++k) {
        CHECK(m.pairs[k].by == MatchedBy::Weight);
        if (self->pairs[k].comparable) {
          CHECK(self->pairs[k].tensorSqnr == kInf);
          ++compared;
        }
      }
    }
    auto other = ql::compare::compareModels(a.data(), a.size(), b.data(), b.size());
    if (other.ok()) {
      const auto& m = other->comparison->matching();
      CHECK(m.pairs.size() + m.unmatchedA.size() == other->comparison->a().discovery.layers.size());
      CHECK(m.pairs.size() + m.unmatchedB.size() == other->comparison->b().discovery.layers.size());
    }
  }
  CHECK(compared > 0);
}

TEST_CASE("compare: a recurrent node's W pairs with W and R with R, never across", "[compare][match][recurrent]") {
  // I = H = 1: W [1, 4, 1] and R [1, 4, 1] have the same size, so only the part tells them apart.
  pb::GraphBuilder a = io();
  a.init(pb::floatTensor("Wa", {1, 4, 1}, {1, 2, 3, 4})).init(pb::floatTensor("Ra", {1, 4, 1}, {5, 6, 7, 8}));
  a.add(pb::node("LSTM", {"x", "Wa", "Ra"}, {"y"}, "lstm"));
  {  // B's W is a graph input (no layer): its R pairs with A's R by node name; A's W stays alone.
    pb::GraphBuilder b = io();
    b.input("w_in");
    b.init(pb::floatTensor("Rb", {1, 4, 1}, {5, 6, 7, 9}));
    b.add(pb::node("LSTM", {"x", "w_in", "Rb"}, {"y"}, "lstm"));
    Compared c(a, b);
    REQUIRE(c.m().pairs.size() == 1);
    CHECK(c.layerA(c.m().pairs[0].a).name == "lstm/R");
    CHECK(c.layerB(c.m().pairs[0].b).name == "lstm/R");
    CHECK(c.by("lstm/R") == MatchedBy::Name);
    CHECK(c.diff("lstm/R").tensorMaxAbsDiff == 1.0);
    CHECK(c.m().unmatchedA == std::vector<size_t>{0});
  }
  {  // Renamed node and weights: by position, A's W (first) would meet B's R (first): not paired.
    pb::GraphBuilder b = io();
    b.input("w_in");
    b.init(pb::floatTensor("Rb", {1, 4, 1}, {5, 6, 7, 8}));
    b.add(pb::node("LSTM", {"x", "w_in", "Rb"}, {"y"}, "other"));
    Compared c(a, b);
    CHECK(c.m().pairs.empty());
    CHECK(c.m().unmatchedA.size() == 2);
    CHECK(c.m().unmatchedB.size() == 1);
  }
  {  // A GRU with the same sizes is another op: never paired with the LSTM by position.
    CHECK(ql::compare::opFamily("GRU") != ql::compare::opFamily("LSTM"));
  }
}

TEST_CASE("compare: a grouped Conv rescaled per channel is recognised within its groups", "[compare][rescale]") {
  // A: Conv [4 out, 2 in per group, 1, 1], group 2: output channels 0-1 read input channels
  // 0-1, channels 2-3 read 2-3. B[o][j] = A[o][j] * u_o * v_(group(o) * 2 + j), u = {2, -0.5,
  // 1, 3}, v = {1, 4, 1, 9}: the log-ratios spread (ln 4 / 2)^2 in group 0 and (ln 9 / 2)^2 in
  // group 1, so they agree within each group only.
  const std::vector<float> a = {1.0f, -2.0f, 0.5f, 3.0f, 2.0f, 1.0f, -1.0f, 0.5f};
  const std::vector<float> b = {2.0f, -16.0f, -0.25f, -6.0f, 2.0f, 9.0f, -3.0f, 13.5f};
  ql::stats::ChannelLayout L{1, 1, 4, 2};
  SECTION("as one group (what a plain test sees): not a rescale") {
    CHECK_FALSE(ql::compare::diffValues(a.data(), b.data(), L).rescale);
  }
  SECTION("in its two groups: a rescale, with each channel's factor") {
    PairDiff d = ql::compare::diffValues(a.data(), b.data(), L, 2);
    REQUIRE(d.rescale);
    REQUIRE(d.rescaleFactor.size() == 4);
    // exp(mean log|B/A|): sqrt(2 * 8) = 4, -sqrt(0.5 * 2) = -1, sqrt(1 * 9) = 3, sqrt(3 * 27) = 9
    CHECK(d.rescaleFactor[0] == Approx(4.0).epsilon(1e-12));
    CHECK(d.rescaleFactor[1] == Approx(-1.0).epsilon(1e-12));
    CHECK(d.rescaleFactor[2] == Approx(3.0).epsilon(1e-12));
    CHECK(d.rescaleFactor[3] == Approx(9.0).epsilon(1e-12));
  }
  SECTION("spreads that differ inside a group: not a rescale") {
    auto q = b;
    q[3] = -12.0f;  // channel 1's ratios {-0.5, -4}: group 0 no longer agrees
    CHECK_FALSE(ql::compare::diffValues(a.data(), q.data(), L, 2).rescale);
  }
  SECTION("over pieces, the same answer") {
    ql::compare::DiffBuilder builder(L, 2);
    REQUIRE(builder.add(a.data(), b.data(), 0, 5));
    REQUIRE(builder.add(a.data() + 5, b.data() + 5, 5, 3));
    CHECK(builder.finish().rescale);
  }
}

// DiffBuilder takes the values in pieces (compare() streams weights a piece at a time):
// against a naive reference written here (each element's channel worked out from its
// index, sums per channel in stored order, the same operations), for pieces of every
// size, splitting channel runs anywhere; bit for bit.
TEST_CASE("compare: a per-channel rescale is recognised, hand-worked", "[compare][rescale]") {
  // A: Conv [2 out, 2 in, 1, 1]. B[o][i] = A[o][i] * u_o * v_i with u = {2, -0.5}, v = {1, 4}:
  // output channel 1 flips every sign, the input-side factor 4 spreads the log-ratios of both
  // channels alike (variance (ln 4 / 2)^2 each).
  const std::vector<float> a = {1.0f, -2.0f, 0.5f, 3.0f};
  const std::vector<float> b = {2.0f, -16.0f, -0.25f, -6.0f};
  ql::stats::ChannelLayout L{1, 1, 2, 2};
  PairDiff d = ql::compare::diffValues(a.data(), b.data(), L);
  REQUIRE(d.rescale);
  REQUIRE(d.rescaleFactor.size() == 2);
  // exp(mean log|B/A|): channel 0 sqrt(2 * 8) = 4, channel 1 -sqrt(0.5 * 2) = -1.
  CHECK(d.rescaleFactor[0] == Approx(4.0).epsilon(1e-12));
  CHECK(d.rescaleFactor[1] == Approx(-1.0).epsilon(1e-12));
  SECTION("identical: not a rescale") { CHECK_FALSE(ql::compare::diffValues(a.data(), a.data(), L).rescale); }
  SECTION("a zero where A has none: not a rescale (what quantizing small weights does)") {
    auto q = b;
    q[2] = 0.0f;
    CHECK_FALSE(ql::compare::diffValues(a.data(), q.data(), L).rescale);
  }
  SECTION("one sign flipped inside a channel: not a rescale") {
    auto q = b;
    q[0] = -2.0f;
    CHECK_FALSE(ql::compare::diffValues(a.data(), q.data(), L).rescale);
  }
  SECTION("log-ratios that spread differently across channels: not a rescale") {
    auto q = b;
    q[1] = -4.0f;  // channel 0 ratios {2, 2}, channel 1 {-0.5, -2}
    CHECK_FALSE(ql::compare::diffValues(a.data(), q.data(), L).rescale);
  }
  SECTION("over pieces, the same answer") {
    ql::compare::DiffBuilder builder(L);
    REQUIRE(builder.add(a.data(), b.data(), 0, 3));
    REQUIRE(builder.add(a.data() + 3, b.data() + 3, 3, 1));
    PairDiff p = builder.finish();
    CHECK(p.rescale);
    CHECK(p.rescaleFactor == d.rescaleFactor);
  }
}

TEST_CASE("compare: DiffBuilder over pieces equals a naive per-element reference", "[compare][stream]") {
  const ql::stats::ChannelLayout layouts[] = {{1, 1, 5, 7}, {2, 3, 4, 5}, {3, 2, 1, 1}, {1, 6, 3, 1}, {1, 1, 1, 1}};
  for (const auto& L : layouts) {
    const uint64_t n = L.elementCount(), C = L.channelCount();
    std::vector<float> a(n), b(n);
    uint32_t seed = 12345;
    auto next = [&] {
      seed = seed * 1664525u + 1013904223u;
      return static_cast<float>(static_cast<int32_t>(seed >> 8) - (1 << 23)) / static_cast<float>(1 << 20);
    };
    for (uint64_t e = 0; e < n; ++e) {
      a[e] = next();
      b[e] = a[e] + next() / 64;
    }
    // The reference.
    std::vector<double> sig(C, 0), noi(C, 0), mx(C, 0);
    std::vector<float> loA(C, INFINITY), hiA(C, -INFINITY), loB(C, INFINITY), hiB(C, -INFINITY);
    for (uint64_t e = 0; e < n; ++e) {
      const uint64_t c = (e / L.inner) % L.channels, o = e / (L.inner * L.channels * L.rows);
      const uint64_t ch = o * L.channels + c;
      const double d = static_cast<double>(b[e]) - static_cast<double>(a[e]);
      sig[ch] += static_cast<double>(a[e]) * static_cast<double>(a[e]);
      noi[ch] += d * d;
      mx[ch] = std::max(mx[ch], std::fabs(d));
      loA[ch] = std::min(loA[ch], a[e]);
      hiA[ch] = std::max(hiA[ch], a[e]);
      loB[ch] = std::min(loB[ch], b[e]);
      hiB[ch] = std::max(hiB[ch], b[e]);
    }
    for (uint64_t piece = 1; piece <= n; ++piece) {
      INFO("layout " << L.outer << "x" << L.rows << "x" << L.channels << "x" << L.inner << ", pieces of " << piece);
      ql::compare::DiffBuilder builder(L);
      CHECK_FALSE(builder.add(a.data(), b.data(), 1, 1));  // not where the last piece ended: refused
      ql::compare::DiffBuilder d(L);
      for (uint64_t first = 0; first < n; first += piece) {
        const uint64_t count = std::min(piece, n - first);
        REQUIRE(d.add(a.data() + first, b.data() + first, first, count));
      }
      CHECK_FALSE(d.add(a.data(), b.data(), n, 1));  // past the end
      const PairDiff r = d.finish();
      REQUIRE(r.channels == C);
      double s = 0, q = 0;
      for (uint64_t ch = 0; ch < C; ++ch) {
        CHECK(r.maxAbsDiff[ch] == mx[ch]);
        CHECK(r.minA[ch] == loA[ch]);
        CHECK(r.maxA[ch] == hiA[ch]);
        CHECK(r.minB[ch] == loB[ch]);
        CHECK(r.maxB[ch] == hiB[ch]);
        CHECK(r.rmsDiff[ch] == std::sqrt(noi[ch] / static_cast<double>(L.rows * L.inner)));
        CHECK(r.sqnr[ch] == db(sig[ch] / noi[ch]));
        s += sig[ch];
        q += noi[ch];
      }
      CHECK(r.tensorSqnr == db(s / q));
      CHECK(r.tensorRmsDiff == std::sqrt(q / static_cast<double>(n)));
      const PairDiff whole = ql::compare::diffValues(a.data(), b.data(), L);
      CHECK(whole.sqnr == r.sqnr);
      CHECK(whole.tensorSqnr == r.tensorSqnr);
    }
  }
}
