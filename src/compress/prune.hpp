// Channel pruning (issue 15), data-free: a layer's input channels ranked by the L2 norm of
// their weights, the smallest dropped first, and with them the matching output channels of
// the layer that produces its input (its weight rows and bias, and every per-channel
// parameter between: BatchNormalization's scale, B, mean and var, PRelu slopes, per-channel
// Add/Mul/Sub/Div constants), as AIMET's winnowing removes them.
//
// The graph must let a channel go: the value is followed from the layer's input back to
// its producer through ops that keep channels one to one (BatchNormalization, Relu, Clip,
// LeakyRelu, PRelu, Sigmoid/Tanh and other elementwise activations, the Sigmoid·Mul SiLU
// pattern, Add/Mul/Sub/Div by a scalar or per-channel constant, MaxPool/AveragePool/
// LpPool, GlobalAveragePool/GlobalMaxPool, and a Flatten or Reshape to [N, C] right after
// a global pool, Identity, Dropout, Cast). Refused, with the reason in Curve::refused:
// a value on the way read by anything else (a residual Add, a Concat, several consumers,
// a sub-graph) or that is a graph output; a layer input that is a graph input; a producer
// that is not a prunable weight layer; grouped or depthwise convolutions on either side;
// any other op between (Reshape, Transpose, Concat, Resize, ...); quantized or shared
// weights; layers inside sub-graphs.
#pragma once
#include <cstdint>
#include <vector>

#include "common/result.hpp"
#include "compress/curves.hpp"
#include "graph/layers.hpp"
#include "onnx/model.hpp"
#include "onnx/writer.hpp"

namespace ql::graph {
struct Shapes;
}

namespace ql::compress {

// The curve of channel pruning on `layer`: one point per kept count k = 1..C (C the layer's
// input channels), the smallest-norm channels dropped first. Point::params is the layer's
// weight after (O·k·kh·kw for a Conv), paramsRemovedElsewhere what goes from the producer
// and the ops between, sqnrDb = 10·log10(‖W‖² / Σ dropped channels' ‖·‖²) (+inf at k = C),
// macs the layer's MACs after when `shapes` knows its output size (graph::macsOf), else 0.
// Refused (no points, `refused` set) when the graph does not let a channel go, or the
// weights are not in memory (external data, a skimmed payload: use the overload below).
Curve pruneCurve(const onnx::Model& model, const graph::Discovery& discovery, const graph::Layer& layer,
                 const graph::Shapes* shapes = nullptr);

// The same from the input-channel norms (inputChannelNorms), for a caller that read the
// weight itself (streamed from a skimmed image, say). Refused when they are not C values.
Curve pruneCurve(const onnx::Model& model, const graph::Discovery& discovery, const graph::Layer& layer,
                 const std::vector<double>& norms, const graph::Shapes* shapes = nullptr);

// Writes the pruned model's changes into `edit`: the layer's weight without its C - keep
// smallest-norm input channels, the producer without the matching output channels (weight
// and bias) and every per-channel parameter between; the value_info of every value between
// them is dropped (its channel count changes). Returns false, with nothing added, when keep
// is C (nothing to write). Errors: INVALID_ARGUMENT for keep outside [1, C], UNSUPPORTED
// with the curve's reason when the layer cannot be pruned.
Result<bool> addPruneEdit(const onnx::Model& model, const graph::Discovery& discovery, const graph::Layer& layer, int64_t keep,
                          onnx::GraphEdit& edit);

// The L2 norm of each input channel of the layer's weight (along Layer::inputAxis, over
// every other axis, summed in double), in channel order; an error when the weight cannot
// be read as float32 (external data, a payload a skim left in the file).
Result<std::vector<double>> inputChannelNorms(const graph::Layer& layer);
// The same from the weight's values as float32 in its stored layout (`count` = its elements).
Result<std::vector<double>> inputChannelNorms(const graph::Layer& layer, const float* values, uint64_t count);

// Channel indices in the order pruning drops them: ascending norm, ties by index.
std::vector<int64_t> pruneOrder(const std::vector<double>& norms);

}  // namespace ql::compress
