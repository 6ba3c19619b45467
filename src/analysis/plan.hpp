// The streaming plan: where each layer's stored weight is, and in which pieces it is fed
// to a LayerAnalyzer. Every driver that streams weights (the WASM bindings under the JS
// API, tools/native_analyze.cpp) follows this one plan, so they all feed the same pieces
// and get the same results; only the reading itself (fs, Blob, FILE*) is theirs.
//
// A weight whose payload the skim left unread (onnx::skimModel, then settleSkim) is read
// from the model file; external data from its own file; anything else is already in the
// image and analysed whole (analyzeLayer). Streamed weights go through one reused buffer,
// sized once for the largest of them up to `residentBytes` (fresh memory is costly to
// touch, reused memory is not). Pieces are whole units (LayerAnalyzer::unitBytes) of at
// most `pieceBytes`, and the same whatever the buffer's size, so results never depend on
// it; a weight that fits the buffer is read once, whole, and every pass runs over it.
#pragma once
#include <cstdint>
#include <vector>

#include "common/result.hpp"
#include "graph/layers.hpp"
#include "onnx/skim.hpp"
#include "onnx/tensor_data.hpp"

namespace ql::analysis {

enum class WeightAt {
  Image,         // in memory: analyse it whole
  ModelFile,     // a payload of the model file the skim left unread
  ExternalFile,  // external data
};

struct WeightPlace {
  WeightAt at = WeightAt::Image;
  uint64_t offset = 0;    // of the stored bytes in their file (ModelFile, ExternalFile)
  uint64_t length = 0;    // stored bytes available (0 for external data that declares no length)
  onnx::ExternalRef ref;  // ExternalFile: where, held to the location rule
  Error error;            // ExternalFile: the reference is refused (nothing above is valid then)
  bool streamed() const { return at != WeightAt::Image; }
};

// How one layer's weight is fed: pieces of `pieceBytes` (the last one shorter), and
// whether it is read once into the buffer (`resident`) or a piece at a time per pass.
struct LayerStream {
  uint64_t pieceBytes = 0;
  bool resident = false;
  uint64_t bufferBytes = 0;  // the buffer's size from now on (grown when one unit exceeds it)
};

// Default budgets: small pieces on purpose (this machine class pays ~13 us per fresh
// 4 KB page, and the buffer is reused for every piece of every layer).
constexpr uint64_t kPieceBytes = uint64_t{4} << 20;
// Where reading costs more than fresh memory (a File in a browser: about 4-7 ms per MB
// through the browser process, against 3 ms per MB of first touch), a weight of up to
// this size is read once, whole, and every pass runs over the copy.
constexpr uint64_t kResidentBytesSlowRead = uint64_t{512} << 20;

class StreamPlan {
 public:
  // `image` is the buffer the model was parsed from, `skim` what its reading left unread
  // (empty when the whole file was read).
  StreamPlan(const graph::Discovery& found, const uint8_t* image, const onnx::Skim& skim, uint64_t pieceBytes = kPieceBytes,
             uint64_t residentBytes = kPieceBytes);

  const WeightPlace& weight(size_t layer) const { return places_[layer]; }
  size_t size() const { return places_.size(); }
  // The one buffer for streamed weights: the largest of them, up to residentBytes.
  uint64_t bufferBytes() const { return bufferBytes_; }
  // The pieces of a weight of `byteSize` stored bytes in units of `unitBytes` (from the
  // layer's LayerAnalyzer). Grows the buffer to one unit when a unit is larger than it.
  LayerStream layer(uint64_t unitBytes, uint64_t byteSize);

 private:
  std::vector<WeightPlace> places_;
  uint64_t pieceBytes_;
  uint64_t bufferBytes_ = 0;
};

}  // namespace ql::analysis
