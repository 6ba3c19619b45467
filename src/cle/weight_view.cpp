#include "cle/weight_view.hpp"

#include "graph/scope.hpp"

namespace ql::cle {

bool equalizedOp(std::string_view op) { return op == "Conv" || op == "ConvTranspose" || op == "Gemm" || op == "MatMul"; }

std::variant<WeightView, std::string> weightView(const graph::Layer& layer) {
  const std::string_view op = layer.op;
  const auto& d = layer.shape;
  WeightView v;
  if (op == "Conv" || op == "ConvTranspose") {
    v.convFamily = true;
    v.A = static_cast<uint64_t>(d[0]);
    v.B = static_cast<uint64_t>(d[1]);
    for (size_t i = 2; i < d.size(); ++i) v.inner *= static_cast<uint64_t>(d[i]);
    v.outIsA = op == "Conv";  // ConvTranspose stores [I, O/g, k..]
    v.groups = static_cast<uint64_t>(layer.groups);
    if (v.A % v.groups) return std::string("channels not divisible by group");
    v.canAddBias = true;
    v.depthwise = op == "Conv" && layer.depthwise && v.A == v.groups;
  } else {
    // Gemm and MatMul: a [K, N] matrix on the right of the activations (Y = X W),
    // or [N, K] for Gemm with transB. A MatMul whose weight is its first input
    // computes W X: its channels are not those of a layer in a sequence.
    const onnx::Node& n = *layer.node;
    const bool weightLeft = op == "MatMul" && graph::input(n, 1) != layer.weightName;
    if (d.size() != 2 || weightLeft)
      return "MatMul with a weight of rank " + std::to_string(d.size()) + (weightLeft ? " on the left" : "") + ": not equalized";
    v.A = static_cast<uint64_t>(d[0]);
    v.B = static_cast<uint64_t>(d[1]);
    v.outIsA = op == "Gemm" && n.intAttr("transB", 0) != 0;
    v.canAddBias = op == "Gemm";  // a MatMul's bias is a separate Add, which it may not have
  }
  v.outC = v.outIsA ? v.A : v.groups * v.B;
  v.inC = v.outIsA ? v.groups * v.B : v.A;
  return v;
}

}  // namespace ql::cle
