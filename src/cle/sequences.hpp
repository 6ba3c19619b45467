// Sequences (DFQ section 4.1): layers joined by a single-consumer path through ops
// that commute with a positive per-channel scale, so that layer 1's output channel i
// may be divided by s_i and layer 2's input channel i multiplied by it. Each layer's
// output path is followed to the next layer; where it cannot go on, the stop says why.
//
// Followed: Relu, PRelu, LeakyRelu, Clip(0, inf), Identity, Dropout, and (unless
// throughPadPool is off) MaxPool, AveragePool, GlobalAveragePool, GlobalMaxPool and a
// Pad in constant mode with value 0 that pads no channel. A ReLU6 (Clip(0, 6)) on the
// path becomes Relu, or with keepRelu6 ends the sequence. Anything else ends it: a
// branch, a graph output, a value used in a sub-graph, Add/Sum (residuals), a
// BatchNormalization not folded, another Clip, any other op, a layer left out, or a
// layer of another channel layout or count.
#pragma once
#include <string>
#include <unordered_map>
#include <vector>

#include "cle/cle.hpp"
#include "cle/edits.hpp"
#include "cle/layers.hpp"
#include "cle/model_index.hpp"

namespace ql::cle {

// The path from one layer to the next in a sequence.
struct Link {
  std::vector<const onnx::Node*> path;
  std::vector<const onnx::Node*> relu6;  // Clip(0, 6) nodes on the path (now Relu)
  bool reluFirst = false;                // path starts with Relu (or a replaced ReLU6)
  bool absorbable = false;               // rest of the path commutes with subtracting a constant (high-bias absorption)
  std::string ops() const;               // "Relu, MaxPool", with "ReLU6->Relu" for a replaced ReLU6; "" when direct
};

struct Chains {
  std::vector<int> prev, next;             // per layer (index in EqLayers::items): its neighbours, -1 for none
  std::unordered_map<size_t, Link> links;  // by the index of the link's first layer

  bool linked(size_t i) const { return prev[i] >= 0 || next[i] >= 0; }
  // The layers of each sequence, in graph order, sequences by their first layer.
  std::vector<std::vector<size_t>> sequences() const;
};

// Follows every layer's output to the next layer. ReLU6 nodes on a link are
// replaced by Relu (in `edits`) and reported.
Chains findSequences(const EqLayers& layers, const ModelIndex& index, const Options& options, ModelEdits& edits, Report& report);

}  // namespace ql::cle
