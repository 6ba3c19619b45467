// fuzz_analyze: parse, layer discovery and the analysis on arbitrary bytes, the way
// the WASM build runs them: the model skimmed into an image whose payloads of
// `skipAtLeast` bytes or more stay unread (and poisoned: any read of them is an
// AddressSanitizer report), each layer then analysed either from the image
// (analyzeLayer) or streamed into a LayerAnalyzer in pieces (from the input for an
// unread payload, from the "external file" for external data: the input itself),
// in forward or reverse piece order. Then rankByRisk over the results.
#include <algorithm>
#include <cmath>
#include <cstdint>
#include <string>
#include <vector>

#include "analysis/analyze.hpp"
#include "common.hpp"
#include "graph/layers.hpp"

using namespace ql;

extern "C" int LLVMFuzzerTestOneInput(const uint8_t* data, size_t size) {
  if (size > qlfuzz::kMaxInput || size < 4) return 0;
  const uint64_t h = qlfuzz::hashBytes(data, std::min<size_t>(size, 64));

  onnx::SkimOptions skimOpt;
  skimOpt.skipAtLeast = 1 + data[0] % 128;
  // Sometimes a read fails part way (an I/O error, possibly inside a skipped payload).
  const uint64_t failAt = (data[1] & 0xe0) == 0xe0 ? size * data[2] / 256 : UINT64_MAX;
  qlfuzz::Skimmed s(data, size, skimOpt, failAt);
  if (!s.skim.ok()) return 0;
  auto model = onnx::parseModel(s.image.get(), size);
  if (!model.ok()) return 0;
  analysis::markDeferred(s.image.get(), s.skim.value(), &model.value());  // unread payloads are not to be read
  auto found = graph::findLayers(model.value());
  if (!found.ok()) return 0;
  // Every unread payload but the layers' weights is read now; those stay poisoned.
  if (Error e = analysis::settleSkim(s.reader, s.image.get(), &s.skim.value(), &model.value(), found.value()); !e.ok()) {
    if (failAt >= size) qlfuzz::finding("settleSkim failed although every read succeeds");
    return 0;
  }
  for (const auto& p : s.skim->skipped) {
    bool weight = false;
    for (const auto& L : found->layers)
      weight = weight ||
               (L.weight->deferred && L.weight->rawData.data == s.image.get() + p.offset && L.weight->rawData.size == p.length);
    if (!weight) qlfuzz::finding("settleSkim left unread a payload that is no deferred layer weight");
  }

  stats::Options opt;
  opt.histogramBins = (h & 0xf) == 0 ? static_cast<int>((h >> 4) % 300) : 128;  // sometimes odd, 0 included
  std::vector<double> sqnr;
  std::vector<uint8_t> buffer;
  size_t k = 0;
  for (const auto& L : found->layers) {
    ++k;
    if (!L.weight) qlfuzz::finding("a layer without a weight tensor");
    const onnx::Tensor& w = *L.weight;
    const uint8_t* src = nullptr;  // bytes of the weight outside the image
    uint64_t length = 0;
    bool external = false;
    if (w.external) {
      auto ref = onnx::externalRef(w);
      if (ref.ok() && ref->offset <= size && ref->length <= size - ref->offset) {
        src = data + ref->offset;
        length = ref->length;
        external = true;
      }
    } else if (s.unread(w)) {
      if (!w.deferred) qlfuzz::finding("an unread weight not marked deferred");
      // An in-memory read of it must be an error, not a read of unloaded bytes.
      if ((h >> 20) % 8 == 0 && analysis::analyzeLayer(L, {}, opt).ok())
        qlfuzz::finding("a deferred weight analysed from memory");
      src = data + (w.rawData.data - s.image.get());
      length = w.rawData.size;
    } else if (w.hasRawData && ((h >> (k % 32)) & 1)) {
      src = w.rawData.data;  // stream an inline weight too, from the image
      length = w.rawData.size;
    }

    Result<analysis::LayerAnalysis> r = makeError(ErrorCode::InvalidArgument, "not analysed");
    if (!src && !w.external) {
      r = analysis::analyzeLayer(L, {}, opt);
    } else if (external && ((h >> 7) & 1)) {
      r = analysis::analyzeLayer(L, {src, static_cast<size_t>(length)}, opt);
    } else if (src) {
      auto an = analysis::LayerAnalyzer::create(L, opt, length);
      if (!an.ok()) {
        r = an.error();
      } else {
        const uint64_t unit = an->unitBytes();
        if (unit == 0) qlfuzz::finding("LayerAnalyzer with zero-byte units");
        if (an->byteSize() > length) qlfuzz::finding("LayerAnalyzer larger than the bytes available");
        const uint64_t total = an->byteSize();
        const uint64_t step = unit * (1 + (h >> 12) % 5);
        const bool reverse = (h >> 16) & 1;
        Error e;
        for (int pass = 1; e.ok() && pass <= an->passes(); ++pass) {
          const uint64_t pieces = total ? (total + step - 1) / step : 0;
          for (uint64_t i = 0; e.ok() && i < pieces; ++i) {
            const uint64_t off = (reverse ? pieces - 1 - i : i) * step;
            const uint64_t n = std::min(step, total - off);
            buffer.assign(src + off, src + off + n);  // a copy, as a reader's buffer would be
            e = an->feed(pass, {buffer.data(), buffer.size()}, off);
          }
          if (e.ok()) e = an->endPass(pass);
        }
        r = e.ok() ? an->finish() : Result<analysis::LayerAnalysis>(e);
      }
    }
    if (r.ok()) {
      const auto& st = r->stats;
      if (st.min.size() != st.channels || st.channelSqnr[0].size() != st.channels)
        qlfuzz::finding("per-channel arrays of the wrong size");
      for (uint32_t o : st.outliers)
        if (o >= st.channels) qlfuzz::finding("outlier channel out of range");
      const auto& in = r->inputs;
      if (in.absMax.size() != in.count || in.relative.size() != in.count)
        qlfuzz::finding("input-channel arrays of the wrong size");
      for (uint32_t o : in.outliers)
        if (o >= in.count) qlfuzz::finding("outlier input channel out of range");
      sqnr.push_back(st.sqnr[stats::kInt8PerTensor]);
    } else {
      sqnr.push_back(NAN);
    }
  }
  auto order = analysis::rankByRisk(sqnr);
  std::vector<bool> seen(sqnr.size());
  for (size_t i : order) {
    if (i >= sqnr.size() || seen[i]) qlfuzz::finding("rankByRisk is not a permutation");
    seen[i] = true;
  }
  if (order.size() != sqnr.size()) qlfuzz::finding("rankByRisk lost layers");
  return 0;
}
