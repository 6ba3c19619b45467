// Reading a model file without its large tensor payloads. The structure (graph,
// nodes, attributes, small tensors) is copied into `image` at the same offsets as in
// the file; the raw_data payloads of large tensors are left unread, so those pages
// of the image are never touched and the parser's views into them are never read.
// The caller then reads each weight a slice at a time (LayerAnalyzer), so a model
// is analysed with the graph plus one slice in hand.
#pragma once
#include <cstdint>
#include <string>
#include <vector>

#include "common/result.hpp"

namespace ql::onnx {

// Random-access reads from the model file (files natively and in Node, File/Blob
// slices in a browser worker). Returns false on a short read or an I/O error.
class ByteReader {
 public:
  virtual ~ByteReader() = default;
  virtual bool read(uint64_t offset, uint8_t* dst, uint64_t length) = 0;
};

// Random-access reads from a model's external data files, by the location's normalised
// path (ExternalRef::path: relative to the model, already held to checkExternalLocation).
// False on failure, with `*why` naming the file and what went wrong.
class ExternalReader {
 public:
  virtual ~ExternalReader() = default;
  virtual bool read(const std::string& path, uint64_t offset, uint8_t* dst, uint64_t length, std::string* why) = 0;
};

struct SkippedPayload {
  uint64_t offset = 0;  // first byte of the raw_data payload in the file
  uint64_t length = 0;
};

struct SkimOptions {
  uint64_t skipAtLeast = 16 << 10;  // raw_data payloads this long or longer are not read
  uint64_t readChunk = 8 << 10;     // bytes per read of structure (small: a read past a tensor header touches payload pages)
  int maxDepth = 200;               // message nesting beyond which everything is read as is
};

struct Skim {
  std::vector<SkippedPayload> skipped;  // in file order
  uint64_t bytesRead = 0;
  // Whether [offset, offset + length) lies in a skipped payload (i.e. was not read).
  bool skippedRange(uint64_t offset, uint64_t length) const;
};

// `image` must hold `size` bytes. Malformed structure is not an error here: the rest
// of the file is then read as is, and parseModel() reports the problem exactly.
Result<Skim> skimModel(ByteReader& in, uint64_t size, uint8_t* image, const SkimOptions& options = {});

}  // namespace ql::onnx
