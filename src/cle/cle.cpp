// equalize(): the phases of Cross Layer Equalization in the order of the paper, each
// in its own file, passing explicit data from one to the next:
//   layers.hpp          the layers CLE may change, read as float32      -> EqLayers
//   batchnorm.hpp       BatchNorm folding                                -> EqLayers, ModelEdits
//   sequences.hpp       sequences and their stops                        -> Chains
//   balance.hpp         the sweeps, with the scales of scaling.hpp       -> EqLayer scales
//   bias_absorption.hpp high-bias absorption                             -> EqLayer biases
//   write.hpp           the written model
#include "cle/cle.hpp"

#include <algorithm>
#include <cstdlib>
#include <deque>
#include <memory>
#include <set>
#include <string>

#include "analysis/analyze.hpp"
#include "cle/balance.hpp"
#include "cle/batchnorm.hpp"
#include "cle/bias_absorption.hpp"
#include "cle/edits.hpp"
#include "cle/layers.hpp"
#include "cle/model_index.hpp"
#include "cle/sequences.hpp"
#include "cle/write.hpp"
#include "common/alloc.hpp"
#include "graph/layers.hpp"
#include "graph/validate.hpp"
#include "onnx/model.hpp"
#include "onnx/skim.hpp"
#include "onnx/tensor_data.hpp"

namespace ql::cle {

namespace {

stats::Options statOptions(const Options& opt) {
  stats::Options s;
  s.histogramBins = opt.histogramBins;
  return s;
}

// The statistics of a layer's weight as it is now, read piece by piece (EqLayers::stream)
// once per pass: the same numbers as computeLayerStats over the whole weight.
Result<stats::LayerStats> weightStats(EqLayer& w, EqLayers& layers, const ModelIndex& index, const Options& opt) {
  if (!w.streamed)
    return stats::computeLayerStats(reinterpret_cast<const uint8_t*>(w.w.data()), w.layer->layout, statOptions(opt));
  auto b = stats::LayerStatsBuilder::create(w.layer->layout, statOptions(opt));
  if (!b.ok()) return b.error();
  for (int pass = 1; pass <= b->passes(); ++pass) {
    Error e;
    if (!layers.stream(w, index, b->unitElements(), [&](uint64_t first, const float* x, uint64_t count) {
          e = b->feed(pass, reinterpret_cast<const uint8_t*>(x), first, count);
          return e.ok();
        }))
      return e.ok() ? layers.error : e;
    if (e = b->endPass(pass); !e.ok()) return e;
  }
  return b->finish();
}

// Gives a layer whose weights will change its record in the report, with the
// statistics of its weights as they are now: after BatchNorm folding, before scaling.
void touch(EqLayer& w, EqLayers& layers, const ModelIndex& index, const Options& opt, Report& report) {
  if (w.change != SIZE_MAX) return;
  LayerChange c;
  c.name = w.layer->name;
  c.op = std::string(w.layer->op);
  c.weightName = std::string(w.layer->weightName);
  c.nodeIndex = w.layer->nodeIndex;
  auto before = weightStats(w, layers, index, opt);
  if (before.ok())
    c.before = std::move(before.value());
  else  // the layer is still equalized; its record says why `before` is empty
    c.beforeError = "statistics of " + w.layer->name + " before equalization could not be computed: " + before.error().describe();
  w.change = report.layers.size();
  report.layers.push_back(std::move(c));
}

// The model's external data, made ready for CLE (ExternalIo): the main graph's external
// initializers listed for the writer, and the small ones read now and made inline in the
// parsed model (graph code reads constants such as Clip bounds and Pad amounts directly).
struct ExternalPrep {
  const ExternalIo* io = nullptr;
  std::vector<onnx::GraphEdit::ExternalTensor> tensors;
  std::deque<std::vector<uint8_t>> held;  // the small tensors' bytes
};

// External tensors read at the start: as large as the largest constant graph code reads.
constexpr uint64_t kSmallExternal = 64 << 10;

Error externalElsewhere(const onnx::Graph& g, bool main) {
  auto refuse = [](const onnx::Tensor& t, const char* where) {
    return makeError(ErrorCode::Unsupported, "tensor '" + std::string(t.name) + "' " + where +
                                                 " is stored as external data: equalize() writes the external data of the main "
                                                 "graph's initializers only (load the model with onnx and save it with those "
                                                 "tensors inline)");
  };
  if (!main)
    for (const auto& t : g.initializers)
      if (t.external) return refuse(t, "(an initializer of a sub-graph)");
  for (const auto& n : g.nodes)
    for (const auto& a : n.attributes) {
      if (a.t && a.t->external) return refuse(*a.t, "(a node attribute)");
      for (const auto& t : a.tensors)
        if (t.external) return refuse(t, "(a node attribute)");
      if (a.g)
        if (Error e = externalElsewhere(*a.g, false); !e.ok()) return e;
      for (const auto& sg : a.graphs)
        if (Error e = externalElsewhere(sg, false); !e.ok()) return e;
    }
  return {};
}

Error prepareExternal(onnx::Model& model, ExternalPrep* prep) {
  const ExternalIo& io = *prep->io;
  if (Error e = externalElsewhere(model.graph, true); !e.ok()) return e;
  for (onnx::Tensor& t : model.graph.initializers) {
    if (!t.external) continue;
    if (prep->tensors.empty()) {  // the data file's name matters only when there is one to write
      std::string normalised;
      onnx::Tensor label;
      label.name = "the equalized model's data file";
      const std::string& loc = io.dataLocation;
      if (loc.empty() || loc.find_first_of("/\\") != std::string::npos || loc == "." || loc == ".." ||
          !onnx::checkExternalLocation(label, loc, &normalised).ok() || normalised != loc)
        return makeError(ErrorCode::InvalidArgument, "the data file's name '" + loc + "' must be a plain file name (no folder)");
    }
    auto ref = onnx::externalRef(t);
    if (!ref.ok()) return ref.error();
    if (!ref->hasLength)
      return makeError(ErrorCode::Unsupported, "tensor '" + std::string(t.name) +
                                                   "' is stored as external data of unknown length (its type has no fixed size)");
    prep->tensors.push_back({std::string(t.name), ref->path, ref->offset, ref->length});
    if (ref->length > kSmallExternal) continue;
    auto& bytes = prep->held.emplace_back(ref->length);
    std::string why;
    if (!io.reader->read(ref->path, ref->offset, bytes.data(), bytes.size(), &why))
      return makeError(ErrorCode::MissingExternalData, "external data of tensor '" + std::string(t.name) + "': " + why);
    t.external = false;
    t.deferred = false;
    t.hasRawData = true;
    t.typedField = 0;
    t.rawData = {bytes.data(), bytes.size()};
  }
  return {};
}

Result<Equalized> run(const uint8_t* data, size_t size, const onnx::Model& model, const graph::Discovery& disc,
                      onnx::ByteReader* in, const ExternalPrep& ext, const Options& opt) {
  ModelIndex index(model);
  index.readFrom(in, data);
  index.readExternal(ext.io ? ext.io->reader : nullptr);
  Report report;
  report.layersSeen = disc.layers.size();
  ModelEdits edits;

  EqLayers layers = collectLayers(disc, index, report);
  layers.holdBudget = opt.holdBytes;
  foldBatchNorms(layers, index, edits, report);
  if (!layers.error.ok()) return layers.error;
  const Chains chains = findSequences(layers, index, opt, edits, report);
  // Touched layers: BN folded, or in a sequence. Their "before" is after folding. Only
  // these are read (EqLayers::load): the others stay in the file.
  for (size_t i = 0; i < layers.items.size(); ++i) {
    if (!layers.items[i].bnFolded && !chains.linked(i)) continue;
    if (!layers.load(layers.items[i], index)) return layers.error;
    touch(layers.items[i], layers, index, opt, report);
    if (!layers.error.ok()) return layers.error;
  }
  std::set<std::string> deadSeen;
  for (const auto& chain : chains.sequences())
    if (!equalizeSequence(chain, layers, index, chains, opt, deadSeen, report)) return layers.error;
  for (auto& w : layers.items) applyScales(w, layers);
  if (opt.biasAbsorption) absorbHighBias(layers, index, chains, report);
  if (!layers.error.ok()) return layers.error;

  for (auto& w : layers.items) {
    if (w.change == SIZE_MAX) continue;
    auto& c = report.layers[w.change];
    auto after = weightStats(w, layers, index, opt);
    if (!after.ok()) return after.error();
    c.after = std::move(after.value());
    c.outScale.assign(w.outDiv.begin(), w.outDiv.end());
    c.inScale.assign(w.inMul.begin(), w.inMul.end());
    c.absorbed.assign(w.absorbed.begin(), w.absorbed.end());
    c.biasAdded = w.biasAdded;
    c.batchNormFolded = w.bnFolded;
  }
  Equalized out;
  for (const auto& w : layers.items) out.heldWeightBytes += w.w.size() * sizeof(float);
  out.edit = std::make_unique<onnx::GraphEdit>();
  if (!ext.tensors.empty()) {  // the external tensors go to the new data file
    out.edit->dataLocation = ext.io->dataLocation;
    out.edit->external = ext.tensors;
  }
  if (!report.changed() && !ext.tensors.empty()) {
    auto written = onnx::planModel(data, size, model, *out.edit);
    if (!written.ok()) return written.error();
    out.written = std::move(written.value());
  } else if (!report.changed()) {
    out.written.pieces.push_back({true, 0, 0, size, nullptr});
    out.written.size = size;
  } else {
    auto written = writeEqualized(data, size, index, layers, edits, report, *out.edit);
    if (!written.ok()) return written.error();
    out.written = std::move(written.value());
  }
  out.report = std::move(report);
  return out;
}

// Reads the written file from its pieces, the input's through `input`.
class WrittenReader : public onnx::ByteReader {
 public:
  WrittenReader(const onnx::WrittenModel& w, onnx::ByteReader& input) : w_(w), input_(input) {}
  bool read(uint64_t offset, uint8_t* dst, uint64_t length) override {
    return w_.read(offset, dst, length, [&](uint64_t from, uint8_t* to, uint64_t n) { return input_.read(from, to, n); });
  }

 private:
  const onnx::WrittenModel& w_;
  onnx::ByteReader& input_;
};

// Reads bytes in memory.
class MemoryReader : public onnx::ByteReader {
 public:
  MemoryReader(const uint8_t* data, size_t size) : data_(data), size_(size) {}
  bool read(uint64_t offset, uint8_t* dst, uint64_t length) override {
    if (offset > size_ || length > size_ - offset) return false;
    std::copy_n(data_ + offset, length, dst);
    return true;
  }

 private:
  const uint8_t* data_;
  size_t size_;
};

// The written model parsed again and checked, without assembling it: its structure is
// skimmed from the pieces into an image whose large payloads stay unread (and untouched).
Error checkWritten(const onnx::WrittenModel& w, onnx::ByteReader& input) {
  std::unique_ptr<uint8_t, void (*)(void*)> image(static_cast<uint8_t*>(allocateLarge(w.size)), std::free);
  if (!image)
    return makeError(ErrorCode::InvalidArgument, "cannot hold " + std::to_string(w.size) + " bytes to check the written model");
  WrittenReader in(w, input);
  auto skim = onnx::skimModel(in, w.size, image.get());
  if (!skim.ok()) return skim.error();
  auto written = onnx::parseModel(image.get(), w.size);
  if (!written.ok()) return written.error();
  analysis::markDeferred(image.get(), skim.value(), &written.value());
  return graph::checkGraph(written.value()).firstError();
}

Error checkOptions(const Options& options) {
  // maxIterations is bounded so that a caller's typo cannot keep a sweep loop (and the tab
  // or CI job running it) busy for hours; real sequences settle in tens of sweeps.
  if (options.maxIterations < 0 || options.maxIterations > 1000000 || !(options.tolerance >= 0) ||
      !(options.deadChannelRatio >= 0) || options.histogramBins < 1 || options.histogramBins > 4096)
    return makeError(
        ErrorCode::InvalidArgument,
        "CLE options out of range (maxIterations 0..1000000, tolerance >= 0, deadChannelRatio >= 0, histogramBins 1..4096)");
  return {};
}

// Equalizes a parsed model. `data` holds the file, or its skimmed image when `in` reads
// the file (the weights CLE changes are then read through it).
Result<Equalized> equalizeParsed(const uint8_t* data, size_t size, onnx::Model& model, onnx::ByteReader& in, bool skimmed,
                                 onnx::Skim* skim, const Options& options, const ExternalIo* external) {
  if (!model.hasGraph) return makeError(ErrorCode::InvalidModel, "the model has no graph");
  ExternalPrep ext;
  if (external && external->reader) {
    ext.io = external;
    if (Error e = prepareExternal(model, &ext); !e.ok()) return e;
  }
  // A model we write must be a graph onnxruntime loads: refuse what is not one already.
  if (Error bad = graph::checkGraph(model).firstError(); !bad.ok()) {
    bad.message = "not equalized: " + bad.message;
    return bad;
  }
  auto disc = graph::findLayers(model);
  if (!disc.ok()) return disc.error();
  if (skimmed) {
    // Everything but the layers' weights (and payloads of 16 MB or more) is read now; the
    // weights are read as CLE takes them.
    if (Error e = analysis::settleSkim(in, const_cast<uint8_t*>(data), skim, &model, disc.value()); !e.ok()) return e;
  }
  auto out = run(data, size, model, disc.value(), skimmed ? &in : nullptr, ext, options);
  if (!out.ok() || (!out->report.changed() && ext.tensors.empty())) return out;
  // And so is what we wrote, after every edit: parsed again and checked.
  Error bad = checkWritten(out->written, in);
  if (!bad.ok()) {
    return makeError(ErrorCode::InvalidGraph,
                     "equalization would have written an invalid model, so nothing was written (a QuantLens bug: please report "
                     "it with the model): " +
                         bad.message);
  }
  return out;
}

}  // namespace

Result<Equalized> equalize(const uint8_t* data, size_t size, const Options& options, const ExternalIo* external) {
  if (Error e = checkOptions(options); !e.ok()) return e;
  auto model = onnx::parseModel(data, size);
  if (!model.ok()) return model.error();
  MemoryReader in(data, size);
  return equalizeParsed(data, size, model.value(), in, false, nullptr, options, external);
}

Result<Equalized> equalize(onnx::ByteReader& in, uint64_t size, uint8_t* image, const Options& options,
                           const onnx::SkimOptions& skimOptions, const ExternalIo* external) {
  if (Error e = checkOptions(options); !e.ok()) return e;
  auto skim = onnx::skimModel(in, size, image, skimOptions);
  if (!skim.ok()) return skim.error();
  auto model = onnx::parseModel(image, static_cast<size_t>(size));
  if (!model.ok()) return model.error();
  // Payloads the skim left unread are not in memory: checking the graph and finding the
  // layers must not read them.
  analysis::markDeferred(image, skim.value(), &model.value());
  return equalizeParsed(image, static_cast<size_t>(size), model.value(), in, true, &skim.value(), options, external);
}

}  // namespace ql::cle
