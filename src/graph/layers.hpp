// Layer discovery: every weight-carrying node, where its weight is stored, which
// axis holds its output channels, and what follows it.
#pragma once
#include <cmath>
#include <cstdint>
#include <string>
#include <string_view>
#include <vector>

#include "common/result.hpp"
#include "graph/opspec.hpp"
#include "onnx/model.hpp"
#include "stats/layout.hpp"

namespace ql::graph {

// How a layer's output is consumed. The ReLU6 test lives in classifyFollower().
enum class FollowerKind { None, Multiple, BatchNorm, Relu, Relu6, Clip, PRelu, LeakyRelu, SiLU, Other };
const char* followerKindName(FollowerKind kind);  // "none", "multiple", "batchnorm", "relu", "relu6", ...

struct Follower {
  FollowerKind kind = FollowerKind::None;
  const onnx::Node* node = nullptr;                // the consuming node (for SiLU, the Mul)
  std::string name;                                // its display name
  double clipMin = -INFINITY, clipMax = INFINITY;  // for Clip / Relu6
};

using stats::ChannelLayout;

// Weights stored as integers and dequantized by the graph: by a DequantizeLinear on the
// weight's path, or by the op itself (QLinearConv, ConvInteger, MatMulInteger,
// QLinearMatMul: the op table's scale and zeroPoint inputs). analysis::Dequantizer reads it.
struct Quantization {
  bool present = false;
  std::string_view via;                     // the op that dequantizes
  const onnx::Tensor* scale = nullptr;      // null: scale 1 (ConvInteger, MatMulInteger)
  const onnx::Tensor* zeroPoint = nullptr;  // null: zero point 0
  int axis = -1;                            // axis of the stored tensor for per-axis parameters, -1 per-tensor
  // DequantizeLinear's block_size attribute (opset 21 blocked quantization), as written:
  // 0 (absent) per-tensor / per-axis; > 0 one scale (and zero point) per block of that
  // many elements along `axis`, the parameters shaped like the weight with
  // dims[axis] = ceil(dims[axis] / block_size); < 0 is invalid (analysis::Dequantizer says so).
  int64_t dqBlockSize = 0;
  // GatherBlockQuantized: the element type the stored bytes hold when it is not the
  // tensor's data_type (uint8 data with bits = 4 packs two uint4 codes per byte, low
  // nibble first: kUint4), and the zero point when there is none (2^(bits-1) for uint8).
  int32_t storedAs = 0;
  double defaultZeroPoint = 0;
  // Block-wise codes packed in uint8, MatMulNBits (com.microsoft; analysis/nbits.hpp): the
  // weight is B [N, n_blocks, blob], `scale` holds one value per block, `zeroPoint` (may
  // be null: 2^(bits-1)) packed uint8 or one float per block. The layer's values are the
  // dequantized W [K, N] stored column by column: shape {N, K}, channel axis 0.
  int bits = 0;           // 4 or 8; 0 when not block-wise
  int64_t blockSize = 0;  // along K
  int64_t K = 0, N = 0;   // the op's attributes
  bool blockwise() const { return blockSize > 0; }
  // ConvInteger / MatMulInteger have no scale input. ONNX Runtime's dynamic quantization
  // (quantize_dynamic) applies the weight's scale after the op: Cast(to float), then Mul
  // by S = Mul(x_scale, w_scale), x_scale being DynamicQuantizeLinear's second output and
  // w_scale a stored tensor. Discovery follows that pattern and sets `scale` to w_scale
  // (`scaleVia` then names the Mul). When the pattern is not there exactly, `scale` stays
  // null and `note` says why: the values are then integer codes, not the weights.
  std::string_view scaleVia;  // the Mul that applies the weight scale, when traced
  std::string note;           // why the stored codes could not be fully dequantized ("" otherwise)
};

// A recurrent node (LSTM, GRU, RNN) is two layers: its input weights W and its recurrent
// weights R. Each is stored [D, G*H, X] (X = input_size for W, H for R): output channel
// d*G*H + g*H + u is unit u of gate g (OpSpec::gates) in direction d. `bias` is the node's B
// [D, 2*G*H], of which this layer's part is B[d, biasOffset : biasOffset + G*H].
enum class RecurrentPart { None, W, R };
const char* recurrentPartName(RecurrentPart part);  // "", "W", "R"
// The one naming rule of these layers: "<node display name>/W" and "<node display name>/R".
std::string recurrentLayerName(std::string_view node, RecurrentPart part);

struct Recurrent {
  RecurrentPart part = RecurrentPart::None;
  std::string node;            // the node's display name (the layer's name without "/W" or "/R")
  std::string_view direction;  // the attribute: "forward" (default), "reverse" or "bidirectional"
  int64_t directions = 0;      // D: 2 when bidirectional, else 1
  int64_t hiddenSize = 0;      // H
  uint64_t biasOffset = 0;     // 0 for W, G*H for R
  std::string_view peepholes;  // LSTM's P input (not analysed), when present
};

struct Layer {
  std::string name;  // node name, or "<op>#<index>" when the node has none (recurrentLayerName for LSTM, GRU, RNN)
  std::string path;  // enclosing sub-graph ("Loop_3/body"), empty for the main graph
  std::string_view op;
  const OpSpec* spec = nullptr;  // the op's entry in the op table (family, inputs, axes)
  const onnx::Node* node = nullptr;
  const onnx::Graph* graph = nullptr;
  size_t nodeIndex = 0;
  const onnx::Tensor* weight = nullptr;  // the stored tensor
  std::string_view weightName;           // its name in the graph (initializer, or the Constant node's output)
  std::vector<std::string_view> via;     // ops between the stored tensor and the layer input
  std::vector<int64_t> shape;            // stored dims
  int channelAxis = 0;                   // output-channel axis in the stored tensor (for grouped ConvTranspose: the O/g axis)
  // Input-channel axis in the stored tensor: the axis the layer's input channels are
  // multiplied along (for grouped Conv: the I/g axis; for MatMul: K). Like channelAxis it
  // already accounts for every op-specific layout below (transB, weight on the left) and
  // for Transposes between the stored tensor and the layer (`via`): readers never
  // re-derive either axis from the op or its attributes. (A stored Gemm / MatMul weight
  // is [out, in] when channelAxis == 0 — Gemm with transB, MatMul with the weight on the
  // left — and [in, out] when channelAxis == 1.)
  int inputAxis = 1;
  // MatMul with the constant on the left (W @ x, the weight is input 0, A): output rows
  // lie along its axis -2 and the layer's output has its channels on axis -2 as well.
  bool weightOnLeft = false;
  // Gemm's transB attribute (false for other ops); channelAxis and inputAxis already apply it.
  bool transB = false;
  ChannelLayout layout;
  int64_t groups = 1;
  bool depthwise = false;
  std::string_view biasName;
  const onnx::Tensor* bias = nullptr;
  // The Add that applies the bias when it is not an input of the node (MatMul, or a
  // Conv / Gemm exported without its bias input): its constant holds one value per
  // output channel, shaped to broadcast along the output's channel axis. The layer's
  // output is then that Add's output.
  const onnx::Node* biasAdd = nullptr;
  Follower follower;    // the first consumer (after a bias Add for MatMul-style layers)
  Follower activation;  // the consumer after a following BatchNormalization, if any
  Quantization quant;
  Recurrent recurrent;  // part None unless the op is of the Recurrent family
};

struct Discovery {
  std::vector<Layer> layers;
  std::vector<std::string> skipped;  // weight-like nodes we could not analyse, and why
};

Result<Discovery> findLayers(const onnx::Model& model);

}  // namespace ql::graph
