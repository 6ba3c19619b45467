// equalize(): the phases of Cross Layer Equalization in the order of the paper, each
// in its own file, passing explicit data from one to the next:
//   layers.hpp          the layers CLE may change, read as float32      -> EqLayers
//   batchnorm.hpp       BatchNorm folding                                -> EqLayers, ModelEdits
//   sequences.hpp       sequences and their stops                        -> Chains
//   balance.hpp         the sweeps, with the scales of scaling.hpp       -> EqLayer scales
//   bias_absorption.hpp high-bias absorption                             -> EqLayer biases
//   write.hpp           the written model
#include "cle/cle.hpp"

#include <set>
#include <string>

#include "cle/balance.hpp"
#include "cle/batchnorm.hpp"
#include "cle/bias_absorption.hpp"
#include "cle/edits.hpp"
#include "cle/layers.hpp"
#include "cle/model_index.hpp"
#include "cle/sequences.hpp"
#include "cle/write.hpp"
#include "graph/layers.hpp"
#include "graph/validate.hpp"
#include "onnx/model.hpp"

namespace ql::cle {

namespace {

stats::Options statOptions(const Options& opt) {
  stats::Options s;
  s.histogramBins = opt.histogramBins;
  return s;
}

Result<stats::LayerStats> weightStats(const EqLayer& w, const Options& opt) {
  return stats::computeLayerStats(reinterpret_cast<const uint8_t*>(w.w.data()), w.layer->layout, statOptions(opt));
}

// Gives a layer whose weights will change its record in the report, with the
// statistics of its weights as they are now: after BatchNorm folding, before scaling.
void touch(EqLayer& w, const Options& opt, Report& report) {
  if (w.change != SIZE_MAX) return;
  LayerChange c;
  c.name = w.layer->name;
  c.op = std::string(w.layer->op);
  c.weightName = std::string(w.layer->weightName);
  c.nodeIndex = w.layer->nodeIndex;
  auto before = weightStats(w, opt);
  if (before.ok())
    c.before = std::move(before.value());
  else  // the layer is still equalized; its record says why `before` is empty
    c.beforeError = "statistics of " + w.layer->name + " before equalization could not be computed: " + before.error().describe();
  w.change = report.layers.size();
  report.layers.push_back(std::move(c));
}

Result<Equalized> run(const uint8_t* data, size_t size, const onnx::Model& model, const graph::Discovery& disc,
                      const Options& opt) {
  const ModelIndex index(model);
  Report report;
  report.layersSeen = disc.layers.size();
  ModelEdits edits;

  EqLayers layers = collectLayers(disc, index, report);
  foldBatchNorms(layers, index, edits, report);
  const Chains chains = findSequences(layers, index, opt, edits, report);
  // Touched layers: BN folded, or in a sequence. Their "before" is after folding.
  for (size_t i = 0; i < layers.items.size(); ++i) {
    if (layers.items[i].bnFolded || chains.linked(i)) touch(layers.items[i], opt, report);
  }
  std::set<std::string> deadSeen;
  for (const auto& chain : chains.sequences()) equalizeSequence(chain, layers, chains, opt, deadSeen, report);
  for (auto& w : layers.items) applyScales(w);
  if (opt.biasAbsorption) absorbHighBias(layers, chains, report);

  for (auto& w : layers.items) {
    if (w.change == SIZE_MAX) continue;
    auto& c = report.layers[w.change];
    auto after = weightStats(w, opt);
    if (!after.ok()) return after.error();
    c.after = std::move(after.value());
    c.outScale.assign(w.outDiv.begin(), w.outDiv.end());
    c.inScale.assign(w.inMul.begin(), w.inMul.end());
    c.absorbed.assign(w.absorbed.begin(), w.absorbed.end());
    c.biasAdded = w.biasAdded;
    c.batchNormFolded = w.bnFolded;
  }
  Equalized out;
  if (!report.changed()) {
    out.model.assign(data, data + size);
  } else {
    auto bytes = writeEqualized(data, size, index, layers, edits, report);
    if (!bytes.ok()) return bytes.error();
    out.model = std::move(bytes.value());
  }
  out.report = std::move(report);
  return out;
}

}  // namespace

Result<Equalized> equalize(const uint8_t* data, size_t size, const Options& options) {
  // maxIterations is bounded so that a caller's typo cannot keep a sweep loop (and the tab
  // or CI job running it) busy for hours; real sequences settle in tens of sweeps.
  if (options.maxIterations < 0 || options.maxIterations > 1000000 || !(options.tolerance >= 0) ||
      !(options.deadChannelRatio >= 0) || options.histogramBins < 1 || options.histogramBins > 4096)
    return makeError(
        ErrorCode::InvalidArgument,
        "CLE options out of range (maxIterations 0..1000000, tolerance >= 0, deadChannelRatio >= 0, histogramBins 1..4096)");
  auto model = onnx::parseModel(data, size);
  if (!model.ok()) return model.error();
  if (!model->hasGraph) return makeError(ErrorCode::InvalidModel, "the model has no graph");
  // A model we write must be a graph onnxruntime loads: refuse what is not one already.
  if (Error bad = graph::checkGraph(model.value()).firstError(); !bad.ok()) {
    bad.message = "not equalized: " + bad.message;
    return bad;
  }
  auto disc = graph::findLayers(model.value());
  if (!disc.ok()) return disc.error();
  auto out = run(data, size, model.value(), disc.value(), options);
  if (!out.ok() || !out->report.changed()) return out;
  // And so is what we wrote, after every edit: parsed again and checked.
  auto written = onnx::parseModel(out->model.data(), out->model.size());
  Error bad = written.ok() ? graph::checkGraph(written.value()).firstError() : written.error();
  if (!bad.ok()) {
    return makeError(ErrorCode::InvalidGraph,
                     "equalization would have written an invalid model, so nothing was written (a QuantLens bug: please report "
                     "it with the model): " +
                         bad.message);
  }
  return out;
}

}  // namespace ql::cle
