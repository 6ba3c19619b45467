// The op table (graph/opspec.hpp): every entry is walked and checked for consistency,
// the known layouts are stated once more by hand, and lookups find exactly the entries.
// Adding an op to the table adds it to these checks; its discovery tests go beside the
// others in test_layers.cpp.
#include <catch2/catch.hpp>
#include <set>
#include <string>
#include <utility>
#include <vector>

#include "cle/weight_view.hpp"
#include "compare/compare.hpp"
#include "graph/opspec.hpp"
#include "onnx/model.hpp"

using ql::graph::findOpSpec;
using ql::graph::kNoInput;
using ql::graph::OpFamily;
using ql::graph::OpSpec;
using ql::graph::opTable;

namespace {

std::string label(const OpSpec& s) {
  return (s.domain.empty() ? std::string() : std::string(s.domain) + "::") + std::string(s.op);
}

// The ranks to try an entry's axes with: its accepted ranks, up to three of them.
std::vector<size_t> ranksOf(const OpSpec& s) {
  std::vector<size_t> r;
  const size_t last = s.maxRank ? static_cast<size_t>(s.maxRank) : static_cast<size_t>(s.minRank) + 2;
  for (size_t k = static_cast<size_t>(s.minRank); k <= last; ++k) r.push_back(k);
  return r;
}

void checkAxes(const OpSpec& s, size_t rank, bool onLeft, bool transB) {
  INFO(label(s) << " rank " << rank << (onLeft ? " on the left" : "") << (transB ? " transB" : ""));
  const int out = s.outputAxis(rank, onLeft, transB), in = s.inputAxis(rank, onLeft, transB);
  CHECK(out >= 0);
  CHECK(out < static_cast<int>(rank));
  CHECK(in >= 0);
  CHECK(in < static_cast<int>(rank));
  CHECK(out != in);
}

}  // namespace

TEST_CASE("opspec: every analysed entry is consistent", "[opspec]") {
  size_t analysed = 0;
  for (const OpSpec& s : opTable()) {
    if (!s.analysed()) continue;
    ++analysed;
    INFO(label(s));
    CHECK(s.notAnalysed.empty());
    CHECK(s.weights[0] == kNoInput);
    // The inputs it names are distinct; a scale comes with a zero point.
    REQUIRE(s.weight != kNoInput);
    std::set<int> inputs;
    int named = 0;
    for (int i : {s.weight, s.bias, s.scale, s.zeroPoint, s.left, s.recurrence}) {
      CHECK(i >= kNoInput);
      if (i == kNoInput) continue;
      ++named;
      inputs.insert(i);
    }
    CHECK(static_cast<int>(inputs.size()) == named);
    if (s.scale != kNoInput) CHECK(s.zeroPoint != kNoInput);
    // Family facts.
    const bool conv = s.family == OpFamily::Conv || s.family == OpFamily::ConvTranspose;
    CHECK(s.grouped == conv);
    if (conv) CHECK(s.minRank == 3);
    CHECK(s.transBSwapsAxes == (s.family == OpFamily::Gemm));
    // MatMulNBits has no left operand that may be a weight: its A is always the activation.
    CHECK((s.left != kNoInput) == (s.family == OpFamily::MatMul && !s.packedBlocks));
    if (s.weightMayBeLeft) CHECK(s.left != kNoInput);
    // Recurrent ops name their second weight R and their gates; no other op does.
    CHECK((s.recurrence != kNoInput) == (s.family == OpFamily::Recurrent));
    CHECK(s.gates.empty() == (s.family != OpFamily::Recurrent));
    CHECK(s.minRank >= 1);
    if (s.maxRank) CHECK(s.maxRank >= s.minRank);
    // The axes are two different axes of every accepted rank, and the layout options swap them.
    for (size_t rank : ranksOf(s)) {
      checkAxes(s, rank, false, false);
      if (s.transBSwapsAxes) {
        checkAxes(s, rank, false, true);
        CHECK(s.outputAxis(rank, false, true) == s.inputAxis(rank));
        CHECK(s.inputAxis(rank, false, true) == s.outputAxis(rank));
      } else {  // transB means nothing to other ops
        CHECK(s.outputAxis(rank, false, true) == s.outputAxis(rank));
      }
      if (s.weightMayBeLeft) {
        checkAxes(s, rank, true, false);
        CHECK(s.outputAxis(rank, true) == s.inputAxis(rank));
        CHECK(s.inputAxis(rank, true) == s.outputAxis(rank));
      } else {
        CHECK(s.outputAxis(rank, true) == s.outputAxis(rank));
      }
    }
  }
  CHECK(analysed == 13);
}

TEST_CASE("opspec: MatMulNBits reads packed block-wise codes", "[opspec]") {
  const OpSpec* s = findOpSpec("com.microsoft", "MatMulNBits");
  REQUIRE(s);
  CHECK(s->analysed());
  CHECK(s->packedBlocks);
  CHECK(s->integerWeights());  // CLE leaves it alone
  // A, B, scales, zero_points, g_idx, bias (ONNX Runtime's contrib operator documentation).
  CHECK(s->weight == 1);
  CHECK(s->scale == 2);
  CHECK(s->zeroPoint == 3);
  CHECK(s->groupIndex == 4);
  CHECK(s->bias == 5);
  for (const OpSpec& o : opTable())
    if (&o != s) CHECK_FALSE(o.packedBlocks);
}

TEST_CASE("opspec: every entry not analysed yet says why and names its weight inputs", "[opspec]") {
  for (const OpSpec& s : opTable()) {
    if (s.analysed()) continue;
    INFO(label(s));
    CHECK(s.family == OpFamily::None);
    CHECK_FALSE(s.notAnalysed.empty());
    CHECK(s.weights[0] >= 0);
    CHECK(s.weights[1] >= kNoInput);
    CHECK(s.weights[1] != s.weights[0]);
    CHECK(s.weight == kNoInput);
    CHECK(s.bias == kNoInput);
  }
}

TEST_CASE("opspec: lookup by domain and op finds each entry, and only those", "[opspec]") {
  std::set<std::pair<std::string, std::string>> seen;
  for (const OpSpec& s : opTable()) {
    INFO(label(s));
    CHECK_FALSE(s.op.empty());
    CHECK(s.domain != "ai.onnx");                                          // the standard domain is written ""
    CHECK(seen.emplace(std::string(s.domain), std::string(s.op)).second);  // one entry per (domain, op)
    CHECK(findOpSpec(s.domain, s.op) == &s);
    if (s.domain.empty()) CHECK(findOpSpec("ai.onnx", s.op) == &s);
    ql::onnx::Node n;
    n.domain = s.domain;
    n.opType = s.op;
    CHECK(findOpSpec(n) == &s);
  }
  CHECK(findOpSpec("", "Relu") == nullptr);
  CHECK(findOpSpec("", "conv") == nullptr);  // op types are case-sensitive
  CHECK(findOpSpec("", "") == nullptr);
  CHECK(findOpSpec("my.domain", "Conv") == nullptr);  // a custom op that shares a standard name is not that op
  CHECK(findOpSpec("com.microsoft", "Conv") == nullptr);
  CHECK(findOpSpec("", "MatMulNBits") == nullptr);
  // Same name, two domains, two entries.
  REQUIRE(findOpSpec("", "QLinearConv"));
  REQUIRE(findOpSpec("com.microsoft", "QLinearConv"));
  CHECK(findOpSpec("", "QLinearConv")->analysed());
  CHECK_FALSE(findOpSpec("com.microsoft", "QLinearConv")->analysed());
}

TEST_CASE("opspec: the layouts of the standard weight ops", "[opspec]") {
  auto spec = [](const char* op) {
    const OpSpec* s = findOpSpec("", op);
    REQUIRE(s);
    return *s;
  };
  // Conv W [O, I/g, kh, kw]
  for (const char* op : {"Conv", "QLinearConv", "ConvInteger"}) {
    INFO(op);
    CHECK(spec(op).family == OpFamily::Conv);
    CHECK(spec(op).outputAxis(4) == 0);
    CHECK(spec(op).inputAxis(4) == 1);
  }
  // ConvTranspose W [I, O/g, kh, kw]
  CHECK(spec("ConvTranspose").outputAxis(4) == 1);
  CHECK(spec("ConvTranspose").inputAxis(4) == 0);
  // Gemm B [K, N], with transB [N, K]
  CHECK(spec("Gemm").outputAxis(2) == 1);
  CHECK(spec("Gemm").inputAxis(2) == 0);
  CHECK(spec("Gemm").outputAxis(2, false, true) == 0);
  CHECK(spec("Gemm").inputAxis(2, false, true) == 1);
  CHECK(spec("Gemm").maxRank == 2);
  // MatMul B [..., K, N]; a constant A [..., M, K] on the left
  for (const char* op : {"MatMul", "MatMulInteger", "QLinearMatMul"}) {
    INFO(op);
    CHECK(spec(op).family == OpFamily::MatMul);
    CHECK(spec(op).outputAxis(3) == 2);
    CHECK(spec(op).inputAxis(3) == 1);
    CHECK(spec(op).left == 0);
  }
  CHECK(spec("MatMul").weightMayBeLeft);
  CHECK_FALSE(spec("MatMulInteger").weightMayBeLeft);
  CHECK_FALSE(spec("QLinearMatMul").weightMayBeLeft);
  CHECK(spec("MatMul").outputAxis(3, true) == 1);
  CHECK(spec("MatMul").inputAxis(3, true) == 2);
  // Inputs, as the operator specifications number them.
  CHECK(spec("Conv").weight == 1);
  CHECK(spec("Conv").bias == 2);
  CHECK(spec("Gemm").bias == 2);
  CHECK(spec("MatMul").bias == kNoInput);
  CHECK(spec("QLinearConv").weight == 3);
  CHECK(spec("QLinearConv").scale == 4);
  CHECK(spec("QLinearConv").zeroPoint == 5);
  CHECK(spec("QLinearConv").bias == 8);
  CHECK(spec("ConvInteger").scale == kNoInput);
  CHECK(spec("ConvInteger").zeroPoint == 3);
  CHECK(spec("MatMulInteger").zeroPoint == 3);
  CHECK(spec("QLinearMatMul").weight == 3);
  CHECK(spec("QLinearMatMul").scale == 4);
  CHECK(spec("QLinearMatMul").zeroPoint == 5);
}

TEST_CASE("opspec: LSTM, GRU and RNN read W, R and B, with their gates in the spec's order", "[opspec][recurrent]") {
  // X, W, R, B, sequence_lens, initial_h (ONNX operator specifications); W[iofc], W[zrh], W[i].
  const std::pair<const char*, const char*> ops[] = {{"LSTM", "iofc"}, {"GRU", "zrh"}, {"RNN", "i"}};
  for (const auto& [op, gates] : ops) {
    INFO(op);
    const OpSpec* s = findOpSpec("", op);
    REQUIRE(s);
    CHECK(s->family == OpFamily::Recurrent);
    CHECK(s->weight == 1);
    CHECK(s->recurrence == 2);
    CHECK(s->bias == 3);
    CHECK(s->gates == gates);
    CHECK_FALSE(s->integerWeights());
    // [D, G*H, I]: output channels on axis 1 (axis 0, the direction, is their outer part), input axis 2.
    CHECK(s->outputAxis(3) == 1);
    CHECK(s->inputAxis(3) == 2);
    CHECK(s->minRank == 3);
    CHECK(s->maxRank == 3);
  }
  REQUIRE(findOpSpec("com.microsoft", "DynamicQuantizeLSTM"));
  CHECK_FALSE(findOpSpec("com.microsoft", "DynamicQuantizeLSTM")->analysed());
}

TEST_CASE("opspec: family names, and compare's op families read from the table", "[opspec]") {
  CHECK(std::string(ql::graph::opFamilyName(OpFamily::Conv)) == "conv");
  CHECK(std::string(ql::graph::opFamilyName(OpFamily::ConvTranspose)) == "convtranspose");
  CHECK(std::string(ql::graph::opFamilyName(OpFamily::Gemm)) == "gemm");
  CHECK(std::string(ql::graph::opFamilyName(OpFamily::MatMul)) == "matmul");
  CHECK(std::string(ql::graph::opFamilyName(OpFamily::Recurrent)) == "recurrent");
  CHECK(std::string(ql::graph::opFamilyName(OpFamily::None)) == "none");
  using ql::compare::opFamily;
  for (const char* op : {"Conv", "QLinearConv", "ConvInteger"}) CHECK(opFamily(op) == "conv");
  CHECK(opFamily("ConvTranspose") == "convtranspose");
  for (const char* op : {"MatMul", "Gemm", "MatMulInteger", "QLinearMatMul"}) CHECK(opFamily(op) == "matmul");
  for (const char* op : {"LSTM", "GRU", "RNN"}) CHECK(opFamily(op) == op);  // gates differ: each pairs with itself
  CHECK(opFamily("Relu") == "Relu");
}

TEST_CASE("opspec: the ops discovery follows from a stored weight to its layer", "[opspec]") {
  using ql::graph::findWeightPathSpec;
  using ql::graph::WeightPathKind;
  auto node = [](std::string_view op, std::string_view domain = {}) {
    ql::onnx::Node n;
    n.opType = op;
    n.domain = domain;
    return n;
  };
  const auto id = node("Identity"), cast = node("Cast"), tr = node("Transpose"), dq = node("DequantizeLinear");
  REQUIRE(findWeightPathSpec(&id));
  CHECK(findWeightPathSpec(&id)->kind == WeightPathKind::PassThrough);
  REQUIRE(findWeightPathSpec(&cast));
  CHECK(findWeightPathSpec(&cast)->kind == WeightPathKind::PassThrough);
  REQUIRE(findWeightPathSpec(&tr));
  CHECK(findWeightPathSpec(&tr)->kind == WeightPathKind::Transpose);
  REQUIRE(findWeightPathSpec(&dq));
  CHECK(findWeightPathSpec(&dq)->kind == WeightPathKind::Dequantize);
  CHECK(findWeightPathSpec(&dq)->scale == 1);
  CHECK(findWeightPathSpec(&dq)->zeroPoint == 2);
  CHECK(findWeightPathSpec(&dq)->defaultAxis == 1);
  const auto std2 = node("Identity", "ai.onnx"), custom = node("Identity", "my.domain"), relu = node("Relu"),
             qdq = node("DequantizeLinear", "com.microsoft");
  CHECK(findWeightPathSpec(&std2) == findWeightPathSpec(&id));
  CHECK(findWeightPathSpec(&custom) == nullptr);
  CHECK(findWeightPathSpec(&relu) == nullptr);
  CHECK(findWeightPathSpec(&qdq) == nullptr);
  CHECK(findWeightPathSpec(nullptr) == nullptr);
}

TEST_CASE("opspec: the integer ops are those with quantization inputs, and CLE equalizes the float ones only", "[opspec]") {
  std::set<std::string> integer, floats, recurrent;
  for (const auto& s : ql::graph::opTable()) {
    if (!s.analysed()) continue;
    (s.integerWeights() ? integer : s.family == OpFamily::Recurrent ? recurrent : floats).insert(std::string(s.op));
  }
  CHECK(integer == std::set<std::string>{"QLinearConv", "ConvInteger", "MatMulInteger", "QLinearMatMul", "MatMulNBits",
                                         "GatherBlockQuantized"});
  CHECK(floats == std::set<std::string>{"Conv", "ConvTranspose", "Gemm", "MatMul"});
  CHECK(recurrent == std::set<std::string>{"LSTM", "GRU", "RNN"});  // float, but never equalized
  ql::graph::Layer layer;
  for (const auto& s : ql::graph::opTable()) {
    layer.spec = &s;
    CHECK(ql::cle::equalizedOp(layer) == (s.analysed() && floats.count(std::string(s.op)) == 1));
  }
  layer.spec = nullptr;
  CHECK_FALSE(ql::cle::equalizedOp(layer));
}
