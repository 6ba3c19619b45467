// BatchNorm folding (DFQ section 4.1 assumes it done): a BatchNormalization after a
// layer, and where exact one before it, becomes part of the layer's weight and bias.
//   After:  W' = W*g/s per output channel, b' = beta + (b - mean)*g/s, s = sqrt(var + eps).
//   Before: W'[:, i] = W[:, i]*g_i/s_i, b' = b + W.(beta - mean*g/s); exact only where
//           the layer's input is not padded (Conv of group 1 without padding, Gemm
//           without transA, MatMul).
// The folded BatchNorm nodes are removed, their parameters released; a BatchNorm
// after a layer keeps beta and gamma on the layer for high-bias absorption.
#pragma once
#include "cle/cle.hpp"
#include "cle/edits.hpp"
#include "cle/layers.hpp"
#include "cle/model_index.hpp"

namespace ql::cle {

void foldBatchNorms(EqLayers& layers, const ModelIndex& index, ModelEdits& edits, Report& report);

}  // namespace ql::cle
