// The compression driver (issue 15): the curves of every weight layer, and the edits
// that write a plan (SVD layers split in two, bias on the second; pruned layers through
// compress/prune.hpp when it is built in).
#pragma once
#include <functional>
#include <string>
#include <vector>

#include "analysis/analyze.hpp"
#include "common/result.hpp"
#include "compress/curves.hpp"
#include "compress/plan.hpp"
#include "compress/svd.hpp"
#include "graph/layers.hpp"
#include "onnx/model.hpp"
#include "onnx/writer.hpp"

namespace ql::compress {

// Whether this build has channel pruning (compress/prune.{hpp,cpp}).
bool pruningAvailable();

// Why the writer cannot write a compressed form of the layer ("" when it can): a weight
// in a sub-graph, shared, not a main-graph initializer, reached through other ops or
// quantized, or node attributes the split does not carry (Gemm transA).
std::string writeRefusal(const onnx::Model& model, const graph::Layer& layer, const SvdFit& fit);

// Output positions of each layer (the product of the output's dims other than its
// channel axis: N·H·W for Conv, the rows of x for Gemm / MatMul), and for spatial SVD the
// first Conv's (N·H_out·W_in), from the graph inputs' static shapes propagated through
// the graph; 0 where not known.
struct Positions {
  uint64_t out = 0, mid = 0;
};
std::vector<Positions> layerPositions(const onnx::Model& model, const graph::Discovery& discovery);

// The curves of one layer: the SVD method that fits it (refused with the reason when none
// does, or when the writer could not write it), and channel pruning when `prune` and the
// build has it. `weightExternal` as for analysis::layerWeightValues.
Result<LayerCurves> layerCurves(const onnx::Model& model, const graph::Discovery& discovery, const graph::Layer& layer,
                                const Positions& positions, wire::Bytes weightExternal, bool prune);

// Adds to `edit` the split of `layer` at `rank` (its SvdFit's method): the node removed,
// two new nodes in its place (the first factor, then the second with the bias and the
// node's outputs), two new initializers, the old weight removed. `usedNames` holds every
// name in the graph and gains the new ones.
Result<bool> addSvdEdit(const onnx::Model& model, const graph::Layer& layer, int64_t rank, wire::Bytes weightExternal,
                        onnx::GraphEdit& edit, std::vector<std::string>& usedNames);

// What the written model holds in place of a compressed layer: the names of the nodes
// that compute it (an SVD layer's two new nodes, first then second; a pruned layer's own
// node, renamed never; empty when that node has no name, whose layer name would be its
// new position). The layers of the written model's analysis carry these names.
struct WrittenLayer {
  std::string layer;
  std::vector<std::string> nodes;
};

// The edits of a whole plan. `external` resolves external weights (null: all inline).
// `written`, when given, gets one entry per compressed layer, in plan order.
Result<onnx::GraphEdit> planEdit(const onnx::Model& model, const graph::Discovery& discovery, const Plan& plan,
                                 const analysis::ExternalResolver* external, std::vector<WrittenLayer>* written = nullptr);

// Every name used in the main graph (nodes, values, initializers, inputs, outputs).
std::vector<std::string> graphNames(const onnx::Model& model);

}  // namespace ql::compress
