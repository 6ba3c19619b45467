// How CLE sees a layer's weight: the stored tensor as a [A][B][inner] array whose
// element (a, b) belongs to one output and one input channel.
//
// This is the one place that derives that view from graph::Layer. Today it reads
// the op name and the node's attributes (transB, the MatMul input position) itself;
// once graph::Layer carries the input-channel axis and layout from the op table,
// weightView() reads those fields instead and nothing else in CLE changes.
#pragma once
#include <cstdint>
#include <string>
#include <string_view>
#include <variant>

#include "graph/layers.hpp"

namespace ql::cle {

struct WeightView {
  // Element (a, b) belongs to output channel out(a, b) and input channel in(a, b):
  // Conv [O, I/g, k..] has out = a; ConvTranspose [I, O/g, k..], Gemm [K, N] and
  // MatMul [K, N] have in = a; Gemm with transB [N, K] has out = a.
  uint64_t A = 0, B = 0, inner = 1, groups = 1;
  bool outIsA = true;
  uint64_t outC = 0, inC = 0;
  bool convFamily = false;  // activations NC... (Conv, ConvTranspose), else channels last (Gemm, MatMul)
  bool canAddBias = false;  // the op has a bias input a folding or an absorption may give it
  bool depthwise = false;   // one output channel per input channel and group (the middle of a triple)

  uint64_t group(uint64_t a) const { return a / (A / groups); }
  uint64_t outOf(uint64_t a, uint64_t b) const { return outIsA ? a : group(a) * B + b; }
  uint64_t inOf(uint64_t a, uint64_t b) const { return outIsA ? group(a) * B + b : a; }
};

// The layers whose weights CLE changes: the float ops of the op table (Conv,
// ConvTranspose, Gemm, MatMul), read from layer.spec.
bool equalizedOp(const graph::Layer& layer);

// The view of an equalized op's weight, or why it has none CLE can use (a reason
// for the layer's stop). The caller checks equalizedOp(layer) first.
std::variant<WeightView, std::string> weightView(const graph::Layer& layer);

}  // namespace ql::cle
