// One large buffer (a model file's image), from malloc.
#pragma once
#include <cstddef>

namespace ql {

// malloc(size), or null. Under WebAssembly (wasm32, Emscripten's dlmalloc), a single
// malloc of 2 GiB or more fails even where the heap may grow to 4 GB: the allocator asks
// sbrk for the whole growth at once, and sbrk takes a signed 32-bit increment. This
// grows the heap in steps of under 2 GiB first (blocks taken and freed again, so they
// join the allocator's free top chunk), then takes the buffer from it. Elsewhere it is
// plain malloc. Free the result with std::free.
void* allocateLarge(size_t size);

// Whether `size` bytes can be allocated now (a block taken and freed again). Under
// WebAssembly a std::vector that cannot grow aborts the instance: check first.
bool canAllocate(size_t size);

}  // namespace ql
