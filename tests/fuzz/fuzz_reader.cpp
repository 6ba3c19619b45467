// fuzz_reader: the ONNX reader on arbitrary bytes.
//  1. parseModel on the whole input, then every tensor decoded (tensor_data.hpp).
//  2. The skim path: skimModel through a ByteReader over the input with a small
//     skipAtLeast and readChunk (chosen from the input's first bytes), sometimes with
//     a read failing part way; the skipped payloads are poisoned, so the parser
//     touching any of them is an AddressSanitizer report; then parseModel on the
//     image must agree with the whole-bytes parse, and every tensor is decoded again
//     from the image once the payloads are copied in.
#include <cstdint>
#include <cstdio>
#include <string>

#include "common.hpp"
#include "onnx/model.hpp"

using namespace ql;

namespace {

size_t countNodes(const onnx::Graph& g) {
  size_t n = g.nodes.size() + g.initializers.size();
  for (const auto& node : g.nodes)
    for (const auto& a : node.attributes) {
      if (a.g) n += countNodes(*a.g);
      for (const auto& sg : a.graphs) n += countNodes(sg);
    }
  return n;
}

}  // namespace

extern "C" int LLVMFuzzerTestOneInput(const uint8_t* data, size_t size) {
  if (size > qlfuzz::kMaxInput) return 0;

  auto whole = onnx::parseModel(data, size);
  if (whole.ok()) qlfuzz::touchModel(whole.value(), data, size);

  onnx::SkimOptions opt;
  uint64_t failAt = UINT64_MAX;
  if (size >= 2) {
    opt.skipAtLeast = 1 + data[0] % 64;                             // skip almost every payload
    opt.readChunk = uint64_t{1} << (data[1] % 14);                  // 1 byte .. 8 KB reads
    if ((data[0] & 0xc0) == 0xc0) failAt = (size * data[1]) / 256;  // an I/O error part way
  }
  qlfuzz::Skimmed s(data, size, opt, failAt);
  if (!s.skim.ok()) {
    if (failAt >= size) qlfuzz::finding("skimModel failed although every read succeeds");
    return 0;
  }
  if (s.skim->bytesRead > size) qlfuzz::finding("skim read more bytes than the file holds");
  {
    auto fromImage = onnx::parseModel(s.image.get(), size);
    if (fromImage.ok() != whole.ok()) qlfuzz::finding("parseModel of the skimmed image disagrees with the whole-bytes parse");
    if (whole.ok()) {
      if (countNodes(fromImage->graph) != countNodes(whole->graph)) qlfuzz::finding("skimmed image parses to a different graph");
    } else if (whole.error().code != fromImage.error().code || whole.error().offset != fromImage.error().offset) {
      qlfuzz::finding("skimmed image fails with a different error");
    }
    // Every raw_data the image's model points at is either read or a skipped payload.
    s.restore();
    if (fromImage.ok()) qlfuzz::touchModel(fromImage.value(), s.image.get(), size);
  }
  return 0;
}
