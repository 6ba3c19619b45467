// Layer discovery: every weight-carrying node, where its weight is stored, which
// axis holds its output channels, and what follows it.
#pragma once
#include <cmath>
#include <cstdint>
#include <string>
#include <string_view>
#include <vector>

#include "common/result.hpp"
#include "onnx/model.hpp"
#include "stats/layout.hpp"

namespace ql::graph {

// How a layer's output is consumed. The ReLU6 test lives in classifyFollower().
enum class FollowerKind { None, Multiple, BatchNorm, Relu, Relu6, Clip, PRelu, LeakyRelu, SiLU, Other };
const char* followerKindName(FollowerKind kind);  // "none", "multiple", "batchnorm", "relu", "relu6", ...

struct Follower {
  FollowerKind kind = FollowerKind::None;
  const onnx::Node* node = nullptr;  // the consuming node (for SiLU, the Mul)
  std::string name;                  // its display name
  double clipMin = -INFINITY, clipMax = INFINITY;  // for Clip / Relu6
};

using stats::ChannelLayout;

// Weights stored as integers and dequantized by the graph
// (DequantizeLinear, QLinearConv, ConvInteger, MatMulInteger, QLinearMatMul).
struct Quantization {
  bool present = false;
  std::string_view via;                   // the op that dequantizes
  const onnx::Tensor* scale = nullptr;     // null: scale 1 (ConvInteger, MatMulInteger)
  const onnx::Tensor* zeroPoint = nullptr; // null: zero point 0
  int axis = -1;                           // axis of the stored tensor for per-axis parameters, -1 per-tensor
};

struct Layer {
  std::string name;   // node name, or "<op>#<index>" when the node has none
  std::string path;   // enclosing sub-graph ("Loop_3/body"), empty for the main graph
  std::string_view op;
  const onnx::Node* node = nullptr;
  const onnx::Graph* graph = nullptr;
  size_t nodeIndex = 0;
  const onnx::Tensor* weight = nullptr;  // the stored tensor
  std::string_view weightName;           // its name in the graph (initializer, or the Constant node's output)
  std::vector<std::string_view> via;     // ops between the stored tensor and the layer input
  std::vector<int64_t> shape;            // stored dims
  int channelAxis = 0;                   // output-channel axis in the stored tensor (for grouped ConvTranspose: the O/g axis)
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
};

struct Discovery {
  std::vector<Layer> layers;
  std::vector<std::string> skipped;  // weight-like nodes we could not analyse, and why
};

Result<Discovery> findLayers(const onnx::Model& model);

}  // namespace ql::graph
