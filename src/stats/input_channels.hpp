// Per-input-channel absMax of a layer's weight, and its outlier input channels.
//
// An input channel is a channel of the layer's input activation: a row k of a MatMul's
// B [K, N], a column of Gemm's [N, K] with transB, axis 1 of Conv's [O, I/g, k...]. For
// a Conv with g > 1 groups, output channel o reads the I/g input channels of its group
// G = o / (O/g), so stored index j on the I/g axis of that output channel's filter is
// input channel G * (I/g) + j: there are I = g * (I/g) input channels, and each one's
// absMax is over the O/g filters of its group (for a depthwise Conv, the one filter of
// that channel). A grouped ConvTranspose [I, O/g, k...] stores all I input channels on
// axis 0 already.
//
//   absMax_i = max |w| over every element of the weight that multiplies input channel i
//   (float32, exact), after dequantization when the graph dequantizes the weight;
//   outliers: flagRelativeOutliers(absMax) (stats/outliers.hpp): absMax_i relative to the
//   smallest non-zero absMax, flagged when above Q3 + 1.5 (Q3 - Q1) of those relatives.
//
// The values arrive in pieces, in any order (pass 1 of the analysis); one value per
// input channel is held, never the weight.
#pragma once
#include <cstdint>
#include <vector>

#include "common/result.hpp"
#include "stats/stats.hpp"

namespace ql::stats {

struct InputChannelShape {
  std::vector<int64_t> dims;  // dims of the values as they arrive (row-major)
  int axis = 1;               // the input-channel axis of `dims`
  int outputAxis = 0;         // the output-channel axis of `dims`
  int64_t groups = 1;         // Conv groups (1 for every other op): see above
};

struct InputChannelStats {
  int axis = 1;           // stored axis
  uint64_t count = 0;     // input channels: groups * dims[axis]
  uint64_t groups = 1;    // input channels are G * perGroup + j
  uint64_t perGroup = 0;  // dims[axis]
  std::vector<float> absMax;
  std::vector<double> relative;    // absMax / smallest non-zero absMax
  std::vector<uint32_t> outliers;  // flagged input channels, ascending
  double q1 = 0, q3 = 0, threshold = 0;
};

class InputChannelAbsMax {
 public:
  static Result<InputChannelAbsMax> create(const InputChannelShape& shape);
  uint64_t elementCount() const { return n_; }
  // `values`: elements [first, first + count) stored as `storage` (need not be
  // aligned); the caller has checked that the range lies within the tensor.
  void feed(const uint8_t* values, uint64_t first, uint64_t count, Storage storage = Storage::Float32);
  InputChannelStats finish() const;
  // A layer analysed in parts (stats.hpp, "one layer in parts"): each part's absMax per
  // input channel over the elements it was fed (float32 values, 0 where it saw none),
  // and another part's merged into this one by max, exactly; InvalidArgument when the
  // input channel counts differ.
  std::vector<float> absMax() const;
  Error mergeMax(const std::vector<float>& absMax);

 private:
  template <class E>
  void feedAs(const uint8_t* values, uint64_t first, uint64_t count);
  int axis_ = 1;
  uint64_t n_ = 0, J_ = 1, post_ = 1, groups_ = 1, O_ = 1, strideO_ = 1;
  // |x| as float32 bit patterns: for the finite values the statistics accept, their
  // order as unsigned integers is the order of the magnitudes.
  std::vector<uint32_t> acc_;
  uint64_t base(uint64_t e) const { return groups_ == 1 ? 0 : (e / strideO_) % O_ / (O_ / groups_) * J_; }
};

}  // namespace ql::stats
