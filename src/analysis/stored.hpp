// What a weight stored as integer codes says, from the file alone, about the quantization
// already done to it: the scheme (bits, signedness, granularity, zero points), and per
// output channel the codes it uses (distinct levels, the span from the lowest to the
// highest code), how many codes sit at the ends of the type's range (saturation), and
// whether the zero points lie outside the codes used or outside the type. Computed while
// the codes stream through the analysis, with a bitmap of 2^bits bits per channel
// (8-bit codes: 32 bytes per channel), so memory is bounded by the channel count.
// float8 weights (types 17-20) are counted the same way on the type's grid of values: a
// channel's "codes" are its positions among the type's distinct finite values in
// ascending order, so levels, span and the ends of the range mean what they mean for
// integers (the ends are -max and +max finite).
// The definitions are written out in docs/computations.md ("Stored quantization").
#pragma once
#include <cstdint>
#include <string>
#include <vector>

#include "stats/layout.hpp"

namespace ql::analysis {

struct StoredFacts {
  bool present = false;
  int bits = 0;                     // 8 (int8 / uint8 / float8) or 4 (int4 / uint4 / MatMulNBits 4-bit)
  bool isSigned = false;            // int8: codes -128..127; uint8 / uint4: 0..2^bits - 1; float8: signed
  bool isFloat = false;             // float8: codes are values on the type's grid (below)
  double typeMin = 0, typeMax = 0;  // integers: the codes' range; float8: -max and +max finite
  // The low end counted as saturation: typeMin, or typeMin + 1 for a signed symmetric
  // scheme (every zero point 0), whose quantizers use -(2^(bits-1) - 1)..2^(bits-1) - 1.
  double lowEnd = 0;
  std::string granularity;  // "per-tensor", "per-channel" or "per-block"
  bool symmetric = false;   // every zero point at 0 (signed) or 2^(bits-1) (unsigned)
  // Per output channel.
  std::vector<double> levels;            // distinct codes used
  std::vector<double> codeMin, codeMax;  // float8: the lowest and highest values
  std::vector<double> atLow, atHigh;     // codes equal to lowEnd / typeMax
  // Per layer.
  uint64_t elements = 0;
  double effectiveBits = 0;            // median over channels of log2(levels)
  double spanBits = 0;                 // median over channels of log2(codeMax - codeMin + 1) (float8: of
                                       // the number of grid values from codeMin to codeMax)
  double lowestSpanBits = 0;           // the smallest channel's span in bits
  double saturatedFraction = 0;        // (sum atLow + atHigh) / elements
  uint64_t saturatedChannels = 0;      // channels with atLow + atHigh > max(2, 1% of the channel)
  uint64_t zeroPointsOutsideUsed = 0;  // zero points outside their channel's [codeMin, codeMax]
  uint64_t zeroPointsOutsideType = 0;  // zero points outside [typeMin, typeMax]
};

// Accumulates the codes of one layer. `channelOf` follows the layer's layout.
class StoredCodeCounter {
 public:
  // For a stored type of 8 bits or fewer (onnx data type `dataType`: int8, uint8, int4,
  // uint4, float8; or `packedBits` 4 / 8 for MatMulNBits' unsigned codes): false when the
  // type's codes are not counted (16-bit and wider).
  bool start(int32_t dataType, int packedBits, const stats::ChannelLayout& layout);
  bool active() const { return bits_ > 0; }
  // Codes (as float32 values, exact for every counted type) of elements [first, first + count).
  void add(const float* codes, uint64_t first, uint64_t count);
  // Codes of whole channels [firstChannel, ...), `perChannel` codes each (MatMulNBits columns).
  void addChannels(const float* codes, uint64_t firstChannel, uint64_t channels, uint64_t perChannel);
  // The facts, given the zero points and the granularity. `channelOf[i]` is the output
  // channel whose codes zero point i applies to (a block's zero point: its channel), or
  // kNoChannel for one checked against the type only (zero points along another axis).
  // Without `channelOf`: one zero point is the tensor's, one per channel the channels'.
  static constexpr uint64_t kNoChannel = ~uint64_t{0};
  StoredFacts finish(const std::vector<double>& zeroPoints, const std::string& granularity,
                     const std::vector<uint64_t>& channelOf = {}) const;

 private:
  void addOne(uint64_t channel, float code);
  double valueAt(uint64_t index) const;  // the code (float8: the value) at a grid index
  int bits_ = 0;
  bool signed_ = false;
  std::vector<float> grid_;  // float8: the type's distinct finite values, ascending
  uint64_t gridSize_ = 0;    // codes of the type: 2^bits, or grid_.size()
  stats::ChannelLayout layout_;
  std::vector<uint64_t> bitmap_;  // words per channel: words_
  uint64_t words_ = 0;
  std::vector<double> min_, max_, atMin_, atMinPlus1_, high_;  // min_ / max_: grid indices
  uint64_t elements_ = 0;
};

}  // namespace ql::analysis
