// The layers CLE may change, read once from the discovered layers: each one's weight
// and bias as float32 (the copies every later phase edits), how its channels lie in
// the weight (weight_view.hpp), and what it is joined to. A layer left out gets a stop
// with the reason.
#pragma once
#include <cstdint>
#include <functional>
#include <string_view>
#include <unordered_map>
#include <unordered_set>
#include <vector>

#include "cle/cle.hpp"
#include "cle/model_index.hpp"
#include "cle/weight_view.hpp"
#include "common/result.hpp"
#include "graph/layers.hpp"

namespace ql::cle {

struct EqLayer {
  const graph::Layer* layer = nullptr;
  WeightView view;
  // The weight in its stored layout, made ready by EqLayers::load() when a phase first
  // needs it (a BatchNorm folded into it, a sequence it is in): a layer CLE leaves alone
  // is never read. A weight stored as raw float32 bytes beyond the budget for held copies
  // (Options::holdBytes) is not held (`streamed`): it is the
  // stored tensor, read again a piece at a time when needed (EqLayers::stream), followed by
  // `ops`, the float32 multiplications made to it so far, replayed per element in order,
  // so every element goes through the same roundings as on a held copy (one packed
  // float_data field left in the file by the skim counts as raw bytes: markDeferred adopts
  // it). Otherwise (a typed field read whole, or held on purpose: EqLayers::hold) `w` holds it and the
  // multiplications are made to `w` as they come.
  std::vector<float> w;
  bool loaded = false;
  bool streamed = false;
  struct ChannelOp {
    enum Kind { Out, In, Scales } kind = Out;  // Scales: float(inMul[i] / outDiv[o]) per (o, i)
    std::vector<float> f;                      // per output (Out) or input (In) channel
  };
  std::vector<ChannelOp> ops;
  std::vector<float> b;  // one bias per output channel, as added to the output (Gemm: beta C); zeros when it has none
  bool hasBias = false;
  bool biasAdded = false;  // it had no bias; folding or absorption gave it one
  bool biasOwn = true;     // the bias initializer is this layer's alone
  const onnx::Tensor* biasTensor = nullptr;
  const onnx::Node* biasNode = nullptr;  // the node whose input names the bias (the layer, or its Add)
  double alpha = 1, beta = 1;            // Gemm: Y = alpha A B + beta C
  double biasScale = 1;                  // what the stored bias is multiplied by: beta for Gemm's C, else 1
  bool padded = false;  // a padded Conv, a ConvTranspose, a Gemm with transA: BN before it and absorption into it are not exact
  std::string_view outValue;            // value its output goes by (after the bias Add, after a folded BN)
  const onnx::Node* outNode = nullptr;  // node producing outValue (the layer, or its bias Add)

  // BatchNorm folding (batchnorm.hpp)
  bool bnFolded = false;                // its weights changed by a folded BatchNorm, before or after it
  std::vector<double> bnBeta, bnGamma;  // of a BatchNorm folded after it: what high-bias absorption reads

  // Scaling (balance.hpp): W'[o, i] = W[o, i] * inMul[i] / outDiv[o]
  std::vector<double> outDiv, inMul;
  bool sweptInPlace = false;     // the sweeps scaled `w` itself (1x1 kernels), so only the bias is left to scale
  std::vector<double> absorbed;  // high bias moved out of each output channel (bias_absorption.hpp)

  size_t change = SIZE_MAX;  // index in Report::layers once touched

  // Calls fn(outChannel, inChannel, pointer, count) for each (a, b) run of `inner` weights.
  template <class F>
  void forEachRun(F fn) {
    const WeightView& v = view;
    for (uint64_t a = 0; a < v.A; ++a)
      for (uint64_t b = 0; b < v.B; ++b) fn(v.outOf(a, b), v.inOf(a, b), &w[(a * v.B + b) * v.inner], v.inner);
  }
};

struct EqLayers {
  std::vector<EqLayer> items;                            // in discovery order
  std::unordered_map<const onnx::Node*, size_t> byNode;  // layer node -> index in items
  std::unordered_set<const onnx::Node*> discovered;      // every discovered layer's node, left out or not
  // Reads w's weight if it is not read yet. False when it cannot be read or held (the
  // first such error is kept in `error`; the phase leaves the layer as it is and the
  // caller returns the error).
  bool load(EqLayer& w, const ModelIndex& index);
  // Makes a loaded weight held in `w` (read with its ops replayed), as load() did before
  // weights were streamed. False (error set) when it cannot be read or held.
  bool hold(EqLayer& w, const ModelIndex& index);
  // Calls fn(firstElement, values, count) over the weight as it is now, in stored order,
  // in pieces of whole rows (A) whose element counts are multiples of `unit` (0: any), the
  // values in a buffer fn may not keep. False (error set) when a read fails.
  bool stream(EqLayer& w, const ModelIndex& index, uint64_t unit,
              const std::function<bool(uint64_t, const float*, uint64_t)>& fn);
  // Calls fn(outChannel, inChannel, pointer, count) for each (a, b) run of `inner` weights,
  // in order (EqLayer::forEachRun, read through stream()).
  bool forEachRun(EqLayer& w, const ModelIndex& index, const std::function<void(uint64_t, uint64_t, const float*, uint64_t)>& fn);
  // Multiplies output (Out) or input (In) channel c of the weight by f[c] (rounded to
  // float32 per element, as `x *= f[c]`), or each (o, i) run by float(inMul[i] / outDiv[o])
  // (Scales): made to `w` when held, recorded in `ops` when streamed.
  void multiply(EqLayer& w, EqLayer::ChannelOp op);
  // Whether a weight of `bytes` float32 bytes may be held, the copies held staying
  // within `budget` (Options::holdBytes: a ResNet's 1x1 layers, not a VGG classifier's 411 MB).
  bool mayHold(uint64_t bytes, uint64_t budget) const { return heldBytes + bytes <= budget; }
  uint64_t heldBytes = 0;   // float32 copies held in the layers' `w`
  uint64_t holdBudget = 0;  // Options::holdBytes: load() holds a weight while heldBytes stays within it
  Error error;
};

// Replays `ops` on elements [first, first + count) of a weight of view `v` (as stored),
// in place; `inMul`, `outDiv` serve the Scales op.
void replayOps(const WeightView& v, const std::vector<EqLayer::ChannelOp>& ops, const std::vector<double>& inMul,
               const std::vector<double>& outDiv, uint64_t first, float* x, uint64_t count);

// Reads every layer CLE can change; the others get a stop with the reason.
EqLayers collectLayers(const graph::Discovery& discovery, const ModelIndex& index, Report& report);

}  // namespace ql::cle
