// Ties the reader, layer discovery and statistics together, one layer at a time:
// only the graph and the tensor in hand are ever needed.
#pragma once
#include <functional>
#include <string>
#include <vector>

#include "common/result.hpp"
#include "graph/layers.hpp"
#include "onnx/model.hpp"
#include "onnx/tensor_data.hpp"
#include "stats/stats.hpp"

namespace ql::analysis {

struct QuantInfo {
  bool present = false;
  std::string via;         // DequantizeLinear, QLinearConv, ...
  std::string intType;     // stored integer type ("int8", "uint8", ...)
  int axis = -1;           // stored-tensor axis of per-axis parameters, -1 per-tensor
  std::vector<double> scale, zeroPoint;
};

struct LayerAnalysis {
  stats::LayerStats stats;
  QuantInfo quant;
};

// Bytes of external data for a tensor, supplied by the caller (files beside the
// model natively and in Node, user-selected files in the browser).
using ExternalResolver = std::function<Result<wire::Bytes>(const onnx::Tensor&, const onnx::ExternalRef&)>;

// Analyses one layer. `weightExternal` holds the weight's bytes when they are
// external (resolve them with onnx::externalRef first); other small tensors
// (scales, zero points) must be inline.
Result<LayerAnalysis> analyzeLayer(const graph::Layer& layer, wire::Bytes weightExternal, const stats::Options& options);

// Risk order of layers given their INT8 per-tensor SQNR (NaN for a layer that
// could not be analysed): lowest first, failed layers last, ties in graph order.
std::vector<size_t> rankByRisk(const std::vector<double>& int8PerTensorSqnr);

}  // namespace ql::analysis
