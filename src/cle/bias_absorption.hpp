// High-bias absorption (DFQ section 4.2). After a folded BatchNorm, layer 1's
// pre-activation in channel i is about N(beta_i, gamma_i^2), so it is rarely below
// c_i = max(0, beta_i - 3|gamma_i|) (scaled with the layer). Where a Relu follows,
// c_i can move into layer 2: b1 -= c, b2 += W2 c (summed over the kernel).
// That is exact for inputs above c, and applied only where it is exact in the graph:
// the link starts with a Relu (or a ReLU6 now Relu), the rest of the path holds only
// MaxPool / Identity / Dropout, and layer 2's input is not padded.
#pragma once
#include "cle/cle.hpp"
#include "cle/layers.hpp"
#include "cle/sequences.hpp"

namespace ql::cle {

// Absorbs high bias across every link of every sequence, after scaling.
void absorbHighBias(EqLayers& layers, const ModelIndex& index, const Chains& chains, Report& report);

}  // namespace ql::cle
