#include "cle/weight_view.hpp"

namespace ql::cle {

// The float layers of the op table (graph/opspec): Conv, ConvTranspose, Gemm, MatMul. The
// integer ops of the same families (QLinearConv, ConvInteger, MatMulInteger, QLinearMatMul)
// hold quantized weights, which CLE does not rescale. Recurrent layers (LSTM, GRU, RNN)
// are never equalized (cle.hpp).
bool equalizedOp(const graph::Layer& layer) {
  return layer.spec != nullptr && layer.spec->analysed() && !layer.spec->integerWeights() &&
         layer.spec->family != graph::OpFamily::Recurrent;
}

std::variant<WeightView, std::string> weightView(const graph::Layer& layer) {
  using F = graph::OpFamily;
  const F family = layer.spec->family;
  const auto& d = layer.shape;
  WeightView v;
  // Discovery worked out the layout (graph::Layer: channelAxis and inputAxis with transB and
  // a weight on the left applied; CLE only takes weights that reach the layer unchanged, so
  // these are the stored tensor's axes). A is axis 0: it is the output axis when
  // channelAxis is 0 (Conv [O, I/g, k..], Gemm with transB [N, K]), else the input axis
  // (ConvTranspose [I, O/g, k..], Gemm and MatMul [K, N]).
  v.outIsA = layer.channelAxis == 0;
  v.canAddBias = layer.spec->bias != graph::kNoInput;  // a MatMul's bias is a separate Add, which it may not have
  if (family == F::Conv || family == F::ConvTranspose) {
    v.convFamily = true;
    v.A = static_cast<uint64_t>(d[0]);
    v.B = static_cast<uint64_t>(d[1]);
    for (size_t i = 2; i < d.size(); ++i) v.inner *= static_cast<uint64_t>(d[i]);
    v.groups = static_cast<uint64_t>(layer.groups);
    if (v.A % v.groups) return std::string("channels not divisible by group");
    v.depthwise = family == F::Conv && layer.depthwise && v.A == v.groups;
  } else {
    // Gemm and MatMul: a [K, N] matrix on the right of the activations (Y = X W), or
    // [N, K] for Gemm with transB. A MatMul whose weight is its first input computes
    // W X: its channels are not those of a layer in a sequence.
    if (d.size() != 2 || layer.weightOnLeft)
      return "MatMul with a weight of rank " + std::to_string(d.size()) + (layer.weightOnLeft ? " on the left" : "") +
             ": not equalized";
    v.A = static_cast<uint64_t>(d[0]);
    v.B = static_cast<uint64_t>(d[1]);
  }
  v.outC = v.outIsA ? v.A : v.groups * v.B;
  v.inC = v.outIsA ? v.groups * v.B : v.A;
  return v;
}

}  // namespace ql::cle
