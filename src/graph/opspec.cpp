#include "graph/opspec.hpp"

namespace ql::graph {

namespace {

// An analysed op: its family fixes the axes and ranks; the entry names its inputs.
OpSpec layer(std::string_view op, OpFamily family, int weight, int bias, int scale = kNoInput, int zeroPoint = kNoInput) {
  OpSpec s;
  s.op = op;
  s.family = family;
  s.weight = weight;
  s.bias = bias;
  s.scale = scale;
  s.zeroPoint = zeroPoint;
  switch (family) {
    case OpFamily::Conv:  // W [O, I/group, k...]
      s.outAxis = 0, s.inAxis = 1, s.minRank = 3, s.grouped = true;
      break;
    case OpFamily::ConvTranspose:  // W [I, O/group, k...]
      s.outAxis = 1, s.inAxis = 0, s.minRank = 3, s.grouped = true;
      break;
    case OpFamily::Gemm:  // Y = alpha * A' B' + beta * C, B [K, N] (transB: [N, K])
      s.outAxis = 1, s.inAxis = 0, s.minRank = 2, s.maxRank = 2, s.transBSwapsAxes = true;
      break;
    case OpFamily::MatMul:  // A [..., M, K] @ B [..., K, N], numpy semantics
      s.outAxis = -1, s.inAxis = -2, s.minRank = 2, s.left = 0;
      break;
    case OpFamily::Recurrent:  // W [D, G*H, I]: channels span axes 0 and 1, input axis 2
      s.outAxis = 1, s.inAxis = 2, s.minRank = 3, s.maxRank = 3;
      break;
    case OpFamily::Gather:  // table [V, H]: row v is what index v gathers
      s.outAxis = 0, s.inAxis = 1, s.minRank = 2, s.maxRank = 2;
      break;
    case OpFamily::None:
      break;
  }
  return s;
}

// LSTM, GRU, RNN: X, W, R, B, sequence_lens, initial_h (LSTM also initial_c, P), with the
// gates stacked along axis 1 of W, R and B in the order of the ONNX specification:
// LSTM W[iofc] (input, output, forget, cell), GRU W[zrh] (update, reset, hidden),
// RNN W[i] (one gate).
OpSpec recurrent(std::string_view op, std::string_view gates) {
  OpSpec s = layer(op, OpFamily::Recurrent, 1, 3);
  s.recurrence = 2;
  s.gates = gates;
  return s;
}

// MatMulNBits (com.microsoft): A, B (packed codes), scales, zero_points, g_idx, bias
// (ONNX Runtime's contrib operator documentation).
OpSpec matMulNBits() {
  OpSpec s = layer("MatMulNBits", OpFamily::MatMul, 1, 5, 2, 3);
  s.domain = "com.microsoft";
  s.left = kNoInput;
  s.minRank = 3, s.maxRank = 3;
  s.outAxis = 0, s.inAxis = 1;  // of the dequantized weight as QuantLens lays it out: [N, K]
  s.packedBlocks = true;
  s.groupIndex = 4;
  return s;
}

// GatherBlockQuantized (com.microsoft): data, indices, scales, zero_points (ONNX Runtime's
// contrib operator documentation). The table's rows are its output channels.
OpSpec gatherBlockQuantized() {
  OpSpec s = layer("GatherBlockQuantized", OpFamily::Gather, 0, kNoInput, 2, 3);
  s.domain = "com.microsoft";
  s.gatherBlocks = true;
  return s;
}

OpSpec withWeightOnLeft(OpSpec s) {
  s.weightMayBeLeft = true;
  return s;
}

// A weight op that is not analysed yet: listed in Discovery::skipped, never dropped silently.
OpSpec notYet(std::string_view domain, std::string_view op, std::array<int, 2> weights, std::string_view reason,
              bool always = true) {
  OpSpec s;
  s.domain = domain;
  s.op = op;
  s.notAnalysed = reason;
  s.weights = weights;
  s.alwaysWeights = always;
  return s;
}

constexpr int kNo = kNoInput;
constexpr std::string_view kMs = "com.microsoft";
constexpr std::string_view kDynamicLstm = "DynamicQuantizeLSTM (quantized recurrent) weights are not analysed yet";

}  // namespace

const char* opFamilyName(OpFamily family) {
  switch (family) {
    case OpFamily::None:
      return "none";
    case OpFamily::Conv:
      return "conv";
    case OpFamily::ConvTranspose:
      return "convtranspose";
    case OpFamily::Gemm:
      return "gemm";
    case OpFamily::Recurrent:
      return "recurrent";
    case OpFamily::MatMul:
      return "matmul";
    case OpFamily::Gather:
      return "gather";
  }
  return "none";
}

const std::vector<OpSpec>& opTable() {
  using F = OpFamily;
  static const std::vector<OpSpec> table = {
      // layer(op, family, weight input, bias input[, scale input, zero point input])
      layer("Conv", F::Conv, 1, 2),
      layer("ConvTranspose", F::ConvTranspose, 1, 2),
      layer("Gemm", F::Gemm, 1, 2),
      withWeightOnLeft(layer("MatMul", F::MatMul, 1, kNo)),
      // Integer ops carry their dequantization parameters as inputs.
      layer("QLinearConv", F::Conv, 3, 8, 4, 5),          // x, x_scale, x_zp, w, w_scale, w_zp, y_scale, y_zp, B
      layer("ConvInteger", F::Conv, 1, kNo, kNo, 3),      // x, w, x_zp, w_zp
      layer("MatMulInteger", F::MatMul, 1, kNo, kNo, 3),  // A, B, a_zp, b_zp
      layer("QLinearMatMul", F::MatMul, 3, kNo, 4, 5),    // a, a_scale, a_zp, b, b_scale, b_zp, y_scale, y_zp
      matMulNBits(),
      recurrent("LSTM", "iofc"),
      recurrent("GRU", "zrh"),
      recurrent("RNN", "i"),
      gatherBlockQuantized(),

      notYet("", "Einsum", {0, 1}, "Einsum with a stored operand is not analysed yet", false),
      notYet(kMs, "MatMulBnb4", {1, kNo}, "block-quantized weights (MatMulBnb4) are not analysed yet"),
      notYet(kMs, "Attention", {1, kNo}, "Attention weights are not analysed yet"),
      notYet(kMs, "QAttention", {1, kNo}, "QAttention weights are not analysed yet"),
      notYet(kMs, "DynamicQuantizeMatMul", {1, kNo}, "DynamicQuantizeMatMul weights are not analysed yet"),
      notYet(kMs, "MatMulIntegerToFloat", {0, 1}, "MatMulIntegerToFloat weights are not analysed yet", false),
      notYet(kMs, "QGemm", {3, kNo}, "QGemm weights are not analysed yet"),
      notYet(kMs, "QLinearConv", {3, kNo}, "com.microsoft QLinearConv (NHWC) weights are not analysed yet"),
      notYet(kMs, "NhwcConv", {1, kNo}, "NhwcConv weights are not analysed yet"),
      notYet(kMs, "FusedConv", {1, kNo}, "FusedConv weights are not analysed yet"),
      notYet(kMs, "FusedGemm", {1, kNo}, "FusedGemm weights are not analysed yet"),
      notYet(kMs, "FusedMatMul", {0, 1}, "FusedMatMul weights are not analysed yet", false),
      notYet(kMs, "DynamicQuantizeLSTM", {1, 2}, kDynamicLstm),
      notYet(kMs, "ConvTransposeWithDynamicPads", {1, kNo}, "ConvTransposeWithDynamicPads weights are not analysed yet"),
  };
  return table;
}

int OpSpec::outputAxis(size_t rank, bool onLeft, bool transB) const {
  const bool swapped = (onLeft && weightMayBeLeft) || (transB && transBSwapsAxes);
  const int a = swapped ? inAxis : outAxis;
  return a < 0 ? a + static_cast<int>(rank) : a;
}

int OpSpec::inputAxis(size_t rank, bool onLeft, bool transB) const {
  const bool swapped = (onLeft && weightMayBeLeft) || (transB && transBSwapsAxes);
  const int a = swapped ? outAxis : inAxis;
  return a < 0 ? a + static_cast<int>(rank) : a;
}

const OpSpec* findOpSpec(std::string_view domain, std::string_view op) {
  if (domain == "ai.onnx") domain = {};
  for (const OpSpec& s : opTable()) {
    if (s.domain == domain && s.op == op) return &s;
  }
  return nullptr;
}

const OpSpec* findOpSpec(const onnx::Node& node) { return findOpSpec(node.domain, node.opType); }

const WeightPathSpec* findWeightPathSpec(const onnx::Node* node) {
  using K = WeightPathKind;
  static const WeightPathSpec specs[] = {
      {"Identity", K::PassThrough},
      {"Cast", K::PassThrough},
      {"Transpose", K::Transpose},
      {"DequantizeLinear", K::Dequantize, 1, 2, 1},  // x, x_scale, x_zero_point; axis defaults to 1
  };
  if (!node || !(node->domain.empty() || node->domain == "ai.onnx")) return nullptr;
  for (const WeightPathSpec& s : specs) {
    if (s.op == node->opType) return &s;
  }
  return nullptr;
}

}  // namespace ql::graph
