// Byte offsets within one buffer, for buffers of up to 4 GB in wasm32: the difference of
// two pointers is a ptrdiff_t, 32 bits signed there, which overflows past 2 GB; the
// difference of their addresses as unsigned integers does not.
#pragma once
#include <cstdint>

namespace ql {

// The offset of `p` from `base` (p >= base, both in one buffer).
inline uint64_t offsetIn(const uint8_t* base, const uint8_t* p) {
  return static_cast<uint64_t>(reinterpret_cast<uintptr_t>(p) - reinterpret_cast<uintptr_t>(base));
}

}  // namespace ql
