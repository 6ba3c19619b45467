// A small protobuf wire-format reader over a borrowed byte range.
// Nothing is copied: length-delimited fields come back as views.
// Format: https://protobuf.dev/programming-guides/encoding/
#pragma once
#include <cstddef>
#include <cstdint>
#include <cstring>
#include <string_view>

#include "common/bytes.hpp"
#include "common/result.hpp"

namespace ql::wire {

struct Bytes {
  const uint8_t* data = nullptr;
  size_t size = 0;
  std::string_view str() const { return {reinterpret_cast<const char*>(data), size}; }
};

enum WireType : uint8_t { kVarint = 0, kFixed64 = 1, kLen = 2, kStartGroup = 3, kEndGroup = 4, kFixed32 = 5 };

const char* wireTypeName(uint32_t type);

struct Field {
  uint32_t number = 0;
  uint8_t type = 0;
  uint64_t varint = 0;  // kVarint, and the raw bits of kFixed64 / kFixed32
  Bytes bytes;          // kLen payload; for fixed types the encoded bytes
  size_t offset = 0;    // file offset of the field's tag
};

// Decodes one base-128 varint from the `avail` bytes at p. Returns the number of bytes
// used, 0 when the input ends first or the varint is longer than 10 bytes / overflows 64 bits.
// Callers pass a count of bytes, never an end pointer: in wasm32 a buffer may pass 2 GiB,
// and the optimizer reads `p + n` with n >= 2^31 as p minus something (an inbounds
// offset is signed), so any comparison of `end` with `p` may fold to the wrong answer
// (a 2 GiB model read as "truncated varint at byte 0"). Loops count bytes left too.
inline size_t readVarint(const uint8_t* p, size_t avail, uint64_t* out) {
  uint64_t v = 0;
  for (size_t i = 0; i < 10; ++i) {
    if (i >= avail) return 0;
    const uint8_t b = p[i];
    if (i == 9 && b > 1) return 0;  // bits beyond 64
    v |= static_cast<uint64_t>(b & 0x7f) << (7 * i);
    if (!(b & 0x80)) {
      *out = v;
      return i + 1;
    }
  }
  return 0;
}

class Reader {
 public:
  // `base` is the start of the whole file: offsets in errors are relative to it.
  // A message of the file may span more than 2 GiB (an inline model's graph): the reader
  // counts the bytes left (size_t) rather than comparing pointers (see readVarint).
  Reader(Bytes bytes, const uint8_t* base) : p_(bytes.data), left_(bytes.size), base_(base) {}

  bool done() const { return left_ == 0; }

  // Reads the next field. On malformed input returns false with error() set.
  bool next(Field* f);

  const Error& error() const { return error_; }
  size_t offsetOf(const uint8_t* p) const { return static_cast<size_t>(offsetIn(base_, p)); }

 private:
  bool fail(const char* what, const uint8_t* at);
  void advance(size_t n) {
    p_ += n;
    left_ -= n;
  }
  const uint8_t* p_;
  size_t left_;  // bytes from p_ to the end of the message
  const uint8_t* base_;
  Error error_;
};

// Iterates the values of a repeated scalar field that may be packed or not.
// Call `add` for each occurrence; it validates and counts.
struct RepeatedScalar {
  enum Kind : uint8_t { kVarintKind, kFixed32Kind, kFixed64Kind };
  // Returns false (and an error) when the occurrence has an impossible wire type
  // or a packed payload that does not divide into whole values.
  static bool count(const Field& f, Kind kind, uint64_t* count, Error* err, const uint8_t* base);
};

inline float loadF32(const uint8_t* p) {
  float v;
  std::memcpy(&v, p, 4);
  return v;
}
inline double loadF64(const uint8_t* p) {
  double v;
  std::memcpy(&v, p, 8);
  return v;
}
inline uint32_t loadU32(const uint8_t* p) {
  uint32_t v;
  std::memcpy(&v, p, 4);
  return v;
}
inline uint64_t loadU64(const uint8_t* p) {
  uint64_t v;
  std::memcpy(&v, p, 8);
  return v;
}

}  // namespace ql::wire
