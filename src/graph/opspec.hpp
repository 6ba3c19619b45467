// The op table: what QuantLens knows about each op that bears weights, in one place.
// Layer discovery (layers.cpp) and compare's op families read it; graph::Layer carries
// what discovery decides from it (spec, channelAxis, inputAxis, transB, weightOnLeft,
// the quantization inputs) to CLE and the dequantizer, so they need not re-derive it.
// Adding an op is one entry here plus its tests (tests/native/test_opspec.cpp walks the
// table and checks every entry; discovery tests are in test_layers.cpp).
//
// Input indices and attributes are those of the ONNX operator specifications
// (https://onnx.ai/onnx/operators/) and, for com.microsoft ops, ONNX Runtime's
// contrib operator documentation.
#pragma once
#include <array>
#include <string_view>
#include <vector>

#include "onnx/model.hpp"

namespace ql::graph {

// How an op reads its weight, which fixes the weight's axes and the layout of its output.
enum class OpFamily {
  None,           // a weight op that is not analysed yet (OpSpec::notAnalysed says why)
  Conv,           // W [O, I/group, k...]; output N, C, spatial...
  ConvTranspose,  // W [I, O/group, k...]; output N, C, spatial...
  Gemm,           // W [K, N], or [N, K] with transB; output [M, N] (channels last)
  MatMul,         // B [..., K, N]; output [..., M, N] (channels last)
  // LSTM, GRU, RNN: W [D, G*H, I] and R [D, G*H, H], B [D, 2*G*H] (the W biases, then the
  // R biases), D = 1 or 2 directions, G gates, H = hidden_size. Each node is two layers,
  // its input weights W and its recurrent weights R (graph::recurrentLayerName).
  Recurrent,
  Gather,  // an embedding table [V, H] gathered by rows (GatherBlockQuantized): one output channel per row
};
const char* opFamilyName(OpFamily family);  // "none", "conv", "convtranspose", "gemm", "matmul", "recurrent", "gather"

inline constexpr int kNoInput = -1;

struct OpSpec {
  std::string_view domain;  // "" for the standard ONNX domain (which files may also write "ai.onnx")
  std::string_view op;
  OpFamily family = OpFamily::None;

  // Inputs, by index; kNoInput when the op has none.
  int weight = kNoInput;     // the weight (B of the MatMul family)
  int bias = kNoInput;       // a per-output-channel bias
  int scale = kNoInput;      // integer ops: the weight's scale (absent: scale 1)
  int zeroPoint = kNoInput;  // integer ops: the weight's zero point (absent: 0)
  int left = kNoInput;       // MatMul family: the left operand A, where a constant is a weight on the left

  // Channel axes of the weight as the op reads it (before any Transpose between the
  // stored tensor and the op); negative counts from the end. For a grouped op the input
  // axis holds I/group channels (Conv), the output axis O/group (ConvTranspose).
  int outAxis = 0;
  int inAxis = 1;
  int minRank = 1, maxRank = 0;  // the weight ranks the op accepts (maxRank 0: no limit)
  bool grouped = false;          // a `group` attribute splits the channels
  bool weightMayBeLeft = false;  // a constant left operand is analysed: out axis -2, in axis -1 (W @ x)
  bool transBSwapsAxes = false;  // attribute transB = 1 stores the weight transposed: the axes swap
  // MatMulNBits: the weight input is block-quantized codes packed in uint8, with the
  // attributes K, N, bits, block_size and an optional g_idx input (graph::Quantization).
  bool packedBlocks = false;
  int groupIndex = kNoInput;  // g_idx, which QuantLens does not read (the layer is skipped with a reason)
  // Recurrent family: the recurrent weight R (the second layer of the node, whose `weight`
  // is W), and the gates in the order the spec stacks them along axis 1 of W, R and B,
  // one letter each ("iofc" for LSTM).
  int recurrence = kNoInput;
  std::string_view gates;
  // GatherBlockQuantized: the weight is a block-quantized table whose rows are gathered
  // (attributes gather_axis, quantize_axis, block_size, bits; graph::Quantization).
  bool gatherBlocks = false;

  // Weight ops not analysed yet (family None): why, the inputs that may hold weights,
  // and whether the op bears weights by definition (else only when one of those inputs
  // is a stored tensor or names nothing).
  std::string_view notAnalysed;
  std::array<int, 2> weights = {kNoInput, kNoInput};
  bool alwaysWeights = true;

  bool analysed() const { return family != OpFamily::None; }
  // The integer ops (QLinearConv, ConvInteger, MatMulInteger, QLinearMatMul): their weight
  // is stored quantized, with its scale or zero point as an input.
  bool integerWeights() const { return scale != kNoInput || zeroPoint != kNoInput; }
  // Output / input channel axis of a weight of rank `rank`, counted from 0, for the
  // weight on the right (or on the left) and the given transB.
  int outputAxis(size_t rank, bool onLeft = false, bool transB = false) const;
  int inputAxis(size_t rank, bool onLeft = false, bool transB = false) const;
};

// Every entry, analysed ops first.
const std::vector<OpSpec>& opTable();

// The entry for (domain, op), or null. "ai.onnx" is the standard domain "".
const OpSpec* findOpSpec(std::string_view domain, std::string_view op);
const OpSpec* findOpSpec(const onnx::Node& node);

// Ops between a stored weight and the layer that reads it, which discovery follows back.
enum class WeightPathKind {
  PassThrough,  // Identity, Cast: the same values
  Transpose,    // permutes the axes (attribute perm, default: reversed)
  Dequantize,   // (x - zero_point) * scale, per tensor or along attribute `axis`
};
struct WeightPathSpec {
  std::string_view op;  // standard domain
  WeightPathKind kind;
  int scale = kNoInput, zeroPoint = kNoInput;  // Dequantize: its parameter inputs
  int64_t defaultAxis = 1;                     // Dequantize: `axis` when the attribute is absent
};
// The entry for a standard-domain node, or null when discovery does not follow `node`.
const WeightPathSpec* findWeightPathSpec(const onnx::Node* node);

}  // namespace ql::graph
