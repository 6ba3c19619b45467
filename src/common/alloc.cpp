#include "common/alloc.hpp"

#include <cstdint>
#include <cstdlib>

namespace ql {

void* allocateLarge(size_t size) {
  if (size == 0) size = 1;
  void* p = std::malloc(size);
#if defined(__EMSCRIPTEN__)
  constexpr size_t kStep = size_t{1} << 30;  // 1 GiB: well under sbrk's 2 GiB limit
  if (!p && size >= kStep) {
    // Grow the heap by the size plus a step, in steps; freeing the steps merges them
    // into one free chunk at the top of the heap, from which `size` is then taken.
    // (A fixed array: an allocation for the list itself could land between two steps.)
    void* steps[8] = {};
    size_t n = 0;
    for (size_t held = 0; held < size + kStep && n < 8; held += kStep) {
      steps[n] = std::malloc(kStep);
      if (!steps[n]) break;
      ++n;
    }
    for (size_t i = 0; i < n; ++i) std::free(steps[i]);
    p = std::malloc(size);
  }
#endif
  return p;
}

bool canAllocate(size_t size) {
  void* p = std::malloc(size ? size : 1);
  std::free(p);
  return p != nullptr;
}

}  // namespace ql
