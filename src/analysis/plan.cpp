#include "analysis/plan.hpp"

#include <algorithm>

#include "common/bytes.hpp"

namespace ql::analysis {

namespace {

WeightPlace place(const graph::Layer& L, const uint8_t* image, const onnx::Skim& skim) {
  WeightPlace p;
  const onnx::Tensor& w = *L.weight;
  if (w.external) {
    p.at = WeightAt::ExternalFile;
    auto r = onnx::externalRef(w);
    if (!r.ok()) {
      p.error = r.error();
      return p;
    }
    p.ref = std::move(r.value());
    p.offset = p.ref.offset;
    p.length = p.ref.hasLength ? p.ref.length : 0;
    return p;
  }
  if (!w.hasRawData) return p;
  const uint64_t offset = offsetIn(image, w.rawData.data);
  if (!skim.skippedRange(offset, w.rawData.size)) return p;
  p.at = WeightAt::ModelFile;
  p.offset = offset;
  p.length = w.rawData.size;
  return p;
}

}  // namespace

StreamPlan::StreamPlan(const graph::Discovery& found, const uint8_t* image, const onnx::Skim& skim, uint64_t pieceBytes,
                       uint64_t residentBytes)
    : pieceBytes_(std::max<uint64_t>(pieceBytes, 1)) {
  places_.reserve(found.layers.size());
  for (const auto& L : found.layers) {
    places_.push_back(place(L, image, skim));
    if (places_.back().streamed()) bufferBytes_ = std::max(bufferBytes_, std::min(residentBytes, places_.back().length));
  }
}

LayerStream StreamPlan::layer(uint64_t unitBytes, uint64_t byteSize) {
  const uint64_t unit = std::max<uint64_t>(unitBytes, 1);
  LayerStream s;
  s.pieceBytes = std::max(unit, std::min(bufferBytes_, pieceBytes_) / unit * unit);
  bufferBytes_ = std::max(bufferBytes_, s.pieceBytes);  // a single unit larger than the buffer
  s.resident = byteSize <= bufferBytes_;
  s.bufferBytes = bufferBytes_;
  return s;
}

}  // namespace ql::analysis
