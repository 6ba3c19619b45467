// The outlier rule QuantLens applies to every per-channel magnitude it flags (output
// channels' ranges, input channels' absMax): AIMET's problematic-channel rule.
//
// Given one non-negative magnitude m_c per channel: relative magnitude
// r_c = m_c / (smallest non-zero m), or 0 for every channel when no m is non-zero;
// Q1 and Q3 are the 25th and 75th percentiles of r by linear interpolation (numpy's
// default, stats::quantile); channel c is flagged when r_c > Q3 + 1.5 (Q3 - Q1).
#pragma once
#include <cstdint>
#include <vector>

namespace ql::stats {

struct RelativeOutliers {
  std::vector<double> relative;   // r_c, one per channel
  std::vector<uint32_t> flagged;  // channels with r_c > threshold, ascending
  double q1 = 0, q3 = 0, threshold = 0;
};

RelativeOutliers flagRelativeOutliers(const std::vector<float>& magnitudes);

}  // namespace ql::stats
