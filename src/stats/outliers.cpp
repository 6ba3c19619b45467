#include "stats/outliers.hpp"

#include <algorithm>
#include <cmath>
#include <limits>

#include "stats/stats.hpp"

namespace ql::stats {

RelativeOutliers flagRelativeOutliers(const std::vector<float>& m) {
  RelativeOutliers out;
  float smallest = std::numeric_limits<float>::infinity();
  for (float v : m) {
    if (v > 0) smallest = std::min(smallest, v);
  }
  out.relative.assign(m.size(), 0.0);
  if (std::isfinite(smallest)) {
    for (size_t c = 0; c < m.size(); ++c) out.relative[c] = static_cast<double>(m[c]) / static_cast<double>(smallest);
  }
  out.q1 = quantile(out.relative, 0.25);
  out.q3 = quantile(out.relative, 0.75);
  out.threshold = out.q3 + 1.5 * (out.q3 - out.q1);
  for (size_t c = 0; c < m.size(); ++c) {
    if (out.relative[c] > out.threshold) out.flagged.push_back(static_cast<uint32_t>(c));
  }
  return out;
}

}  // namespace ql::stats
