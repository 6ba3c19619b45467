// Static shapes of the main graph's values, for the MACs of weight layers (issue 15).
// Propagated from the graph inputs' static shapes (every dim a number) and the stored
// tensors through the ops whose output shape follows from their input shapes and
// attributes: Conv and ConvTranspose (pads, strides, dilations, auto_pad, output_padding,
// output_shape), MaxPool/AveragePool/LpPool (ceil_mode), the global pools, elementwise
// ops with numpy broadcasting, BatchNormalization and activations, Concat, Flatten,
// Reshape (constant shape), Transpose, Squeeze/Unsqueeze (constant axes), Pad (constant
// pads), Resize/Upsample (constant scales or sizes), Gemm and MatMul. A value whose shape
// does not follow (a symbolic dim, a computed Reshape target, an op not listed, a
// sub-graph) is unknown, and so is everything computed from it: nothing is guessed.
#pragma once
#include <cstdint>
#include <string_view>
#include <unordered_map>
#include <vector>

#include "graph/layers.hpp"
#include "onnx/model.hpp"

namespace ql::graph {

struct Shapes {
  // Value name (a view into the model) -> its dims, every one known.
  std::unordered_map<std::string_view, std::vector<int64_t>> known;
  const std::vector<int64_t>* of(std::string_view value) const {
    auto it = known.find(value);
    return it == known.end() ? nullptr : &it->second;
  }
};

// The static shapes of the main graph's values. The model must outlive the result.
Shapes inferShapes(const onnx::Model& model);

// A weight layer's multiply-accumulates per run of the model with the shapes above, 0 when
// a shape it needs is unknown (or for layers other than Conv, ConvTranspose, Gemm and
// MatMul in the main graph):
//   Conv:          |output| · |W| / O     (N·H_out·W_out · O · I/group · kh·kw)
//   ConvTranspose: |input| · |W| / I      (N·H_in·W_in · I · O/group · kh·kw)
//   Gemm, MatMul:  |output| · K           (K: the weight's input-channel axis)
uint64_t macsOf(const Layer& layer, const Shapes& shapes);

}  // namespace ql::graph
