#include "cle/batchnorm.hpp"

#include <cmath>
#include <string>
#include <unordered_set>
#include <vector>

#include "onnx/tensor_data.hpp"

namespace ql::cle {

namespace {

using graph::input;

struct BatchNormParams {
  std::vector<double> f;  // gamma / sqrt(var + eps) per channel
  std::vector<double> gamma, beta, mean;
};

// The parameters of a BatchNormalization over `channels` channels; false (with a
// reason) when they cannot be folded.
bool batchNormParams(const onnx::Node& bn, uint64_t channels, const ModelIndex& index, BatchNormParams* out, std::string* why) {
  if (bn.intAttr("training_mode", 0) != 0) {
    *why = "BatchNormalization in training mode";
    return false;
  }
  if (bn.intAttr("spatial", 1) != 1) {
    *why = "BatchNormalization with spatial=0";
    return false;
  }
  for (size_t k = 1; k < bn.outputs.size(); ++k) {
    if (!bn.outputs[k].empty() && index.uses(bn.outputs[k])) {
      *why = "BatchNormalization's running statistics are used";
      return false;
    }
  }
  std::vector<double> p[4];  // scale (gamma), B (beta), input_mean, input_var
  for (int k = 0; k < 4; ++k) {
    const onnx::Tensor* t = index.scope().constant(input(bn, 1 + k));
    if (!t) {
      *why = "BatchNormalization parameter " + std::string(input(bn, 1 + k)) + " is not a constant";
      return false;
    }
    auto v = onnx::readAsDouble(index.loaded(*t));
    if (!v.ok() || v->size() != channels) {
      *why = "BatchNormalization parameter " + std::string(t->name) + " does not hold one value per channel";
      return false;
    }
    p[k] = std::move(v.value());
  }
  double eps = 1e-5;
  if (const auto* a = bn.attribute("epsilon"); a && a->hasF) eps = a->f;
  out->f.resize(channels);
  for (uint64_t c = 0; c < channels; ++c) {
    const double s = std::sqrt(p[3][c] + eps);
    out->f[c] = p[0][c] / s;
    if (!std::isfinite(out->f[c])) {
      *why = "BatchNormalization variance makes a non-finite scale";
      return false;
    }
  }
  out->gamma = std::move(p[0]);
  out->beta = std::move(p[1]);
  out->mean = std::move(p[2]);
  return true;
}

void removeBatchNorm(const onnx::Node& bn, const ModelIndex& index, ModelEdits& edits) {
  edits.removeNodes.push_back(index.indexOf(&bn));
  for (size_t k = 1; k <= 4; ++k) edits.release(index, input(bn, k));
}

// Folds the BatchNormalization that follows w's output, if it can.
bool foldAfter(EqLayers& layers, EqLayer& w, const ModelIndex& index, ModelEdits& edits, Report& report) {
  const auto& L = *w.layer;
  if (L.follower.kind != graph::FollowerKind::BatchNorm) return false;
  const onnx::Node& bn = *L.follower.node;
  auto stop = [&](std::string reason) {
    addStop(report, index, L.name, &bn, std::move(reason));
    return false;
  };
  if (index.uses(w.outValue) != 1) return stop("BatchNormalization not folded: the layer's output is also used elsewhere");
  if (!w.hasBias && !w.view.canAddBias) return stop("BatchNormalization after a MatMul without a bias Add is not folded");
  BatchNormParams p;
  std::string why;
  if (!batchNormParams(bn, w.view.outC, index, &p, &why)) return stop(why + ": not folded");
  if (!layers.load(w, index)) return false;
  layers.multiply(w, {EqLayer::ChannelOp::Out, std::vector<float>(p.f.begin(), p.f.end())});
  for (uint64_t o = 0; o < w.view.outC; ++o) w.b[o] = static_cast<float>(p.beta[o] + (w.b[o] - p.mean[o]) * p.f[o]);
  if (!w.hasBias) w.biasAdded = true;
  w.bnFolded = true;
  w.bnBeta = p.beta;
  w.bnGamma = p.gamma;
  // The producer of the layer's output now produces the BN's output.
  removeBatchNorm(bn, index, edits);
  edits.node(index.indexOf(w.outNode)).outputs = std::vector<std::string>{std::string(bn.outputs[0])};
  edits.removeValueInfo.insert(std::string(w.outValue));
  w.outValue = bn.outputs[0];
  report.foldedBatchNorms.push_back({index.nameOf(&bn), L.name, false});
  return true;
}

// Folds each BatchNormalization whose only consumer is a layer's data input, where exact.
void foldBefore(EqLayers& layers, const std::unordered_set<const onnx::Node*>& folded, const ModelIndex& index, ModelEdits& edits,
                Report& report) {
  for (const auto& bn : index.model().graph.nodes) {
    if (!graph::isOp(&bn, "BatchNormalization") || folded.count(&bn) || bn.outputs.empty()) continue;
    const auto& cs = index.scope().consumersOf(bn.outputs[0]);
    if (cs.size() != 1 || index.uses(bn.outputs[0]) != 1 || !layers.byNode.count(cs[0])) continue;
    EqLayer& w = layers.items[layers.byNode[cs[0]]];
    const auto& L = *w.layer;
    if (input(*L.node, 0) != bn.outputs[0]) continue;
    const auto groups = w.view.groups;
    std::string why;
    if (w.view.convFamily && (L.spec->family != graph::OpFamily::Conv || groups != 1 || w.padded))
      why = "BatchNormalization before a " + std::string(L.op) +
            (groups != 1 ? " with groups"
             : w.padded  ? " with padding"
                         : "") +
            " cannot be folded exactly";
    else if (L.spec->family == graph::OpFamily::Gemm && L.node->intAttr("transA", 0) != 0)
      why = "BatchNormalization before a Gemm with transA cannot be folded";
    else if (!w.hasBias && !w.view.canAddBias)
      why = "BatchNormalization before a MatMul without a bias Add is not folded";
    BatchNormParams p;
    if (why.empty() && !batchNormParams(bn, w.view.inC, index, &p, &why)) why += ": not folded";
    if (!why.empty()) {
      addStop(report, index, L.name, &bn, why);
      continue;
    }
    if (!layers.load(w, index)) continue;
    // b[o] += sum over (i, k) of W[o, i, k] * (beta_i - mean_i f_i), with W before scaling.
    std::vector<double> acc(w.view.outC, 0.0);
    if (!layers.forEachRun(w, index, [&](uint64_t o, uint64_t i, const float* q, uint64_t cnt) {
          const double t = p.beta[i] - p.mean[i] * p.f[i];
          double s = 0;
          for (uint64_t k = 0; k < cnt; ++k) s += q[k];
          acc[o] += s * w.alpha * t;
        }))
      continue;
    layers.multiply(w, {EqLayer::ChannelOp::In, std::vector<float>(p.f.begin(), p.f.end())});
    for (uint64_t o = 0; o < w.view.outC; ++o) w.b[o] = static_cast<float>(w.b[o] + acc[o]);
    if (!w.hasBias) w.biasAdded = true;
    w.bnFolded = true;  // its weights changed (no beta/gamma: nothing to absorb)
    removeBatchNorm(bn, index, edits);
    edits.inputsOf(index, w.layer->node)[0] = std::string(input(bn, 0));
    edits.removeValueInfo.insert(std::string(bn.outputs[0]));
    report.foldedBatchNorms.push_back({index.nameOf(&bn), L.name, true});
  }
}

}  // namespace

void foldBatchNorms(EqLayers& layers, const ModelIndex& index, ModelEdits& edits, Report& report) {
  std::unordered_set<const onnx::Node*> folded;  // after a layer: not folded again into the next
  for (auto& w : layers.items) {
    const onnx::Node* bn = w.layer->follower.node;
    if (foldAfter(layers, w, index, edits, report)) folded.insert(bn);
  }
  foldBefore(layers, folded, index, edits, report);
}

}  // namespace ql::cle
