// What a weight stored as integer codes says, from the file alone, about the quantization
// already done to it: the scheme (bits, signedness, granularity, zero points), and per
// output channel the codes it uses (distinct levels, the span from the lowest to the
// highest code), how many codes sit at the ends of the type's range (saturation), and
// whether the zero points lie outside the codes used or outside the type. Computed while
// the codes stream through the analysis, with a bitmap of 2^bits bits per channel
// (8-bit codes: 32 bytes per channel), so memory is bounded by the channel count.
// The definitions are written out in docs/computations.md ("Stored quantization").
#pragma once
#include <cstdint>
#include <string>
#include <vector>

#include "stats/layout.hpp"

namespace ql::analysis {

struct StoredFacts {
  bool present = false;
  int bits = 0;           // 8 (int8 / uint8) or 4 (MatMulNBits 4-bit)
  bool isSigned = false;  // int8: codes -128..127; uint8 / uint4: 0..2^bits - 1
  int64_t typeMin = 0, typeMax = 0;
  // The low end counted as saturation: typeMin, or typeMin + 1 for a signed symmetric
  // scheme (every zero point 0), whose quantizers use -(2^(bits-1) - 1)..2^(bits-1) - 1.
  int64_t lowEnd = 0;
  std::string granularity;  // "per-tensor", "per-channel" or "per-block"
  bool symmetric = false;   // every zero point at 0 (signed) or 2^(bits-1) (unsigned)
  // Per output channel.
  std::vector<double> levels;  // distinct codes used
  std::vector<double> codeMin, codeMax;
  std::vector<double> atLow, atHigh;  // codes equal to lowEnd / typeMax
  // Per layer.
  uint64_t elements = 0;
  double effectiveBits = 0;            // median over channels of log2(levels)
  double spanBits = 0;                 // median over channels of log2(codeMax - codeMin + 1)
  double lowestSpanBits = 0;           // the smallest channel's log2(codeMax - codeMin + 1)
  double saturatedFraction = 0;        // (sum atLow + atHigh) / elements
  uint64_t saturatedChannels = 0;      // channels with atLow + atHigh > max(2, 1% of the channel)
  uint64_t zeroPointsOutsideUsed = 0;  // zero points outside their channel's [codeMin, codeMax]
  uint64_t zeroPointsOutsideType = 0;  // zero points outside [typeMin, typeMax]
};

// Accumulates the codes of one layer. `channelOf` follows the layer's layout.
class StoredCodeCounter {
 public:
  // For a stored integer type (onnx data type `dataType`; bits 4 for MatMulNBits 4-bit):
  // false when the type's codes are not counted (16-bit and wider).
  bool start(int32_t dataType, int packedBits, const stats::ChannelLayout& layout);
  bool active() const { return bits_ > 0; }
  // Codes (as float32 values, exact for 8-bit and 4-bit codes) of elements [first, first + count).
  void add(const float* codes, uint64_t first, uint64_t count);
  // Codes of whole channels [firstChannel, ...), `perChannel` codes each (MatMulNBits columns).
  void addChannels(const float* codes, uint64_t firstChannel, uint64_t channels, uint64_t perChannel);
  // The facts, given the zero points (one, one per channel, or one per block of
  // `blocksPerChannel` when per-block; 0 when they run along an axis other than the
  // output channels, so they are checked against the type only) and the granularity.
  StoredFacts finish(const std::vector<double>& zeroPoints, const std::string& granularity, uint64_t blocksPerChannel = 1) const;

 private:
  void addOne(uint64_t channel, float code);
  int bits_ = 0;
  bool signed_ = false;
  stats::ChannelLayout layout_;
  std::vector<uint64_t> bitmap_;  // words per channel: words_
  uint64_t words_ = 0;
  std::vector<double> min_, max_, atMin_, atMinPlus1_, high_;
  uint64_t elements_ = 0;
};

}  // namespace ql::analysis
