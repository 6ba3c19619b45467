// fuzz_equalize: Cross Layer Equalization and the model writer on arbitrary bytes.
// Options are the defaults for most inputs and varied (from a hash of the input, so
// no input byte is spent on them) for the rest. When equalize succeeds:
//  - nothing changed: the output is the input, byte for byte;
//  - the output parses again with parseModel, and its layers are found again;
//  - if the input passes graph::checkGraph, so must the output (a written graph with
//    a dangling input, a duplicate name or a cycle is a finding).
#include <cmath>
#include <cstdint>
#include <cstdio>
#include <cstring>
#include <memory>
#include <string>

#include "cle/cle.hpp"
#include "common.hpp"
#include "graph/layers.hpp"
#include "graph/validate.hpp"

using namespace ql;

extern "C" int LLVMFuzzerTestOneInput(const uint8_t* data, size_t size) {
  if (size > qlfuzz::kMaxInput) return 0;
  const uint64_t h = qlfuzz::hashBytes(data, size);

  cle::Options opt;
  if ((h & 3) == 0) {  // a quarter of the inputs: other options
    opt.keepRelu6 = (h >> 2) & 1;
    opt.biasAbsorption = (h >> 3) & 1;
    opt.triples = (h >> 4) & 1;
    opt.throughPadPool = (h >> 5) & 1;
    opt.maxIterations = static_cast<int>((h >> 6) % 8);  // 0 folds BatchNorm only
    static const double tolerances[] = {1e-3, 0, 0.5, 1e-9};
    opt.tolerance = tolerances[(h >> 9) & 3];
    static const double dead[] = {1e-6, 0, 1, 0.5};
    opt.deadChannelRatio = dead[(h >> 11) & 3];
    static const int bins[] = {128, 1, 2, 255};
    opt.histogramBins = bins[(h >> 13) & 3];
  }

  auto r = cle::equalize(data, size, opt);
  if (!r.ok()) return 0;

  const auto out = r->bytes(data);
  {
    // The same model read through a reader and skimmed (the image poisoned until the
    // reader fills it) must give the same bytes. Default skim options: with smaller ones a
    // layer weight that is also a Pad's amounts would be left unread and end a sequence
    // (graph::Scope reads constants from memory), a difference only such a graph shows.
    qlfuzz::MemReader in(data, size);
    std::unique_ptr<uint8_t[]> image(new uint8_t[size ? size : 1]);
    ASAN_POISON_MEMORY_REGION(image.get(), size);
    onnx::SkimOptions so;
    so.readChunk = 256;
    auto s = cle::equalize(in, size, image.get(), opt, so);
    ASAN_UNPOISON_MEMORY_REGION(image.get(), size);
    if (!s.ok()) {
      std::fprintf(stderr, "skimmed: %s\n", s.error().describe().c_str());
      qlfuzz::finding("equalize of the skimmed model failed where the whole model did not");
    } else if (s->bytes(data) != out) {
      qlfuzz::finding("equalize of the skimmed model wrote other bytes");
    }
  }
  if (!r->report.changed() && (out.size() != size || (size && std::memcmp(out.data(), data, size) != 0)))
    qlfuzz::finding("equalize changed nothing but wrote different bytes");
  for (const auto& seq : r->report.sequences)
    for (size_t l : seq.layers)
      if (l >= r->report.layers.size()) qlfuzz::finding("a sequence names a layer out of range");

  auto written = onnx::parseModel(out.data(), out.size());
  if (!written.ok()) {
    std::fprintf(stderr, "written model does not parse: %s\n", written.error().describe().c_str());
    qlfuzz::finding("equalize wrote a model that parseModel rejects");
  }
  auto relaid = graph::findLayers(written.value());
  if (!relaid.ok()) {
    std::fprintf(stderr, "written model: %s\n", relaid.error().describe().c_str());
    qlfuzz::finding("equalize wrote a model whose layers cannot be found");
  }

  auto input = onnx::parseModel(data, size);
  if (!input.ok()) qlfuzz::finding("equalize accepted a model that parseModel rejects");
  if (graph::checkGraph(input.value()).ok()) {
    auto check = graph::checkGraph(written.value());
    if (!check.ok()) {
      std::fprintf(stderr, "written graph: %s\n", check.firstError().describe().c_str());
      qlfuzz::finding("equalize turned a valid graph into an invalid one");
    }
  }
  return 0;
}
