// Shared pieces of the libFuzzer harnesses: a ByteReader over the input, the
// skim path with its unread payloads poisoned (AddressSanitizer then reports any
// read of a byte the skim left out), and walks that decode every tensor.
#pragma once
#include <sanitizer/asan_interface.h>

#include <cstdint>
#include <cstdlib>
#include <cstring>
#include <memory>
#include <vector>

#include "onnx/model.hpp"
#include "onnx/skim.hpp"
#include "onnx/tensor_data.hpp"

namespace qlfuzz {

// Inputs above this are skipped: every harness is linear-ish in the input, and
// libFuzzer's own -max_len keeps mutations near the seeds' sizes anyway.
constexpr size_t kMaxInput = 1 << 20;

// A finding that is not a sanitizer report: a broken invariant of the core.
[[noreturn]] inline void finding(const char* what) {
  std::fprintf(stderr, "FUZZ FINDING: %s\n", what);
  std::fflush(stderr);
  __builtin_trap();
}

// Cheap deterministic hash of the input, for choices that must not cost input bytes.
inline uint64_t hashBytes(const uint8_t* data, size_t size) {
  uint64_t h = 1469598103934665603ull ^ size;
  for (size_t i = 0; i < size; ++i) h = (h ^ data[i]) * 1099511628211ull;
  return h;
}

// Reads from the fuzz input; reads at or past `failAt` fail (an I/O error mid-file).
class MemReader : public ql::onnx::ByteReader {
 public:
  MemReader(const uint8_t* data, size_t size, uint64_t failAt = UINT64_MAX) : data_(data), size_(size), failAt_(failAt) {}
  bool read(uint64_t offset, uint8_t* dst, uint64_t length) override {
    if (offset > size_ || length > size_ - offset) finding("skim read past the end of the file");
    if (offset + length > failAt_) return false;
    ASAN_UNPOISON_MEMORY_REGION(dst, length);  // bytes read into the image are present from now on
    std::memcpy(dst, data_ + offset, length);
    return true;
  }

 private:
  const uint8_t* data_;
  size_t size_;
  uint64_t failAt_;
};

// The model image of the skim path. Skipped payloads are poisoned until read into the
// image (through `reader`, e.g. by analysis::settleSkim) or restore()d.
struct Skimmed {
  MemReader reader;
  const uint8_t* data;
  std::unique_ptr<uint8_t[]> image;
  size_t size = 0;
  ql::Result<ql::onnx::Skim> skim = ql::onnx::Skim{};

  Skimmed(const uint8_t* data, size_t n, const ql::onnx::SkimOptions& opt, uint64_t failAt = UINT64_MAX)
      : reader(data, n, failAt), data(data), image(new uint8_t[n ? n : 1]), size(n) {
    skim = ql::onnx::skimModel(reader, n, image.get(), opt);
    if (!skim.ok()) return;
    uint64_t last = 0;
    for (const auto& s : skim->skipped) {
      if (s.offset < last || s.offset > n || s.length > n - s.offset)
        finding("skim reports a skipped payload out of order or out of the file");
      last = s.offset + s.length;
      ASAN_POISON_MEMORY_REGION(image.get() + s.offset, s.length);
    }
  }
  // Makes the image equal to the file: the payloads still skipped are read in.
  void restore() {
    if (!skim.ok()) return;
    for (const auto& s : skim->skipped) {
      ASAN_UNPOISON_MEMORY_REGION(image.get() + s.offset, s.length);
      std::memcpy(image.get() + s.offset, data + s.offset, s.length);
    }
  }
  ~Skimmed() { ASAN_UNPOISON_MEMORY_REGION(image.get(), size); }
  // Whether a tensor's raw_data lies in a payload the skim left unread.
  bool unread(const ql::onnx::Tensor& t) const {
    if (!skim.ok() || !t.hasRawData || t.rawData.size == 0) return false;
    const uint8_t* b = image.get();
    if (t.rawData.data < b || t.rawData.data > b + size) return false;
    return skim->skippedRange(static_cast<uint64_t>(t.rawData.data - b), t.rawData.size);
  }
};

// Decodes one tensor every way the core can: as float32, as double, its external
// reference, its expected size. Results are consumed so nothing is optimized away.
inline void touchTensor(const ql::onnx::Tensor& t, const uint8_t* externalFile, size_t externalSize) {
  volatile float sink = 0;
  uint64_t count = 0;
  (void)t.elementCount(&count);
  (void)ql::onnx::expectedByteSize(t);
  (void)t.externalValue("location");
  ql::onnx::Bytes external{};
  if (t.external) {
    auto ref = ql::onnx::externalRef(t);
    // The "external file" is the fuzz input itself: the referenced range when it fits.
    if (ref.ok() && ref->offset <= externalSize && ref->length <= externalSize - ref->offset)
      external = {externalFile + ref->offset, static_cast<size_t>(ref->length)};
  }
  auto f = ql::onnx::readAsFloat(t, external);
  if (f.ok()) {
    if (f->count > 0 && f->bytes == nullptr) finding("readAsFloat: values without bytes");
    for (uint64_t i = 0; i < f->count; i += 1 + f->count / 64) sink = sink + ql::wire::loadF32(f->bytes + 4 * i);
    if (f->count) sink = sink + ql::wire::loadF32(f->bytes + 4 * (f->count - 1));
    auto v = f->take();
    if (v.size() != f->count && !(v.empty() && f->count == 0)) finding("FloatValues::take: wrong count");
  }
  auto d = ql::onnx::readAsDouble(t, external);
  if (d.ok() && !d->empty()) sink = sink + static_cast<float>(d->back());
  (void)sink;
}

inline void touchGraph(const ql::onnx::Graph& g, const uint8_t* file, size_t size, int depth = 0);

inline void touchAttribute(const ql::onnx::Attribute& a, const uint8_t* file, size_t size, int depth) {
  if (a.t) touchTensor(*a.t, file, size);
  for (const auto& t : a.tensors) touchTensor(t, file, size);
  if (a.g) touchGraph(*a.g, file, size, depth + 1);
  for (const auto& g : a.graphs) touchGraph(g, file, size, depth + 1);
}

inline void touchGraph(const ql::onnx::Graph& g, const uint8_t* file, size_t size, int depth) {
  if (depth > 64) finding("sub-graphs nested deeper than the parser allows");
  for (const auto& t : g.initializers) touchTensor(t, file, size);
  for (const auto& n : g.nodes) {
    (void)n.intAttr("axis", 0);
    for (const auto& a : n.attributes) touchAttribute(a, file, size, depth);
  }
}

inline void touchModel(const ql::onnx::Model& m, const uint8_t* file, size_t size) {
  touchGraph(m.graph, file, size);
  for (const auto& fn : m.functions)
    for (const auto& n : fn.nodes)
      for (const auto& a : n.attributes) touchAttribute(a, file, size, 0);
}

}  // namespace qlfuzz
