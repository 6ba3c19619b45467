#pragma once
#include <cstdint>

namespace ql::stats {

// A weight tensor viewed as [outer][rows][channels][inner]; output channel
// o*channels + c owns every element with that (o, c). A single channel axis p of a
// tensor with dims d gives {1, d[0]*..*d[p-1], d[p], d[p+1]*..}; grouped
// ConvTranspose ([I, O/g, k...]) gives {g, I/g, O/g, k...}.
struct ChannelLayout {
  uint64_t outer = 1, rows = 1, channels = 1, inner = 1;
  uint64_t channelCount() const { return outer * channels; }
  uint64_t elementCount() const { return outer * rows * channels * inner; }
};

}  // namespace ql::stats
