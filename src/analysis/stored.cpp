#include "analysis/stored.hpp"

#include <algorithm>
#include <cmath>

#include "onnx/fields.hpp"
#include "onnx/tensor_data.hpp"

namespace ql::analysis {

namespace {

double median(std::vector<double> v) {
  if (v.empty()) return 0;
  std::sort(v.begin(), v.end());
  const size_t n = v.size();
  return n % 2 ? v[n / 2] : 0.5 * (v[n / 2 - 1] + v[n / 2]);
}

}  // namespace

bool StoredCodeCounter::start(int32_t dataType, int packedBits, const stats::ChannelLayout& layout) {
  grid_.clear();
  if (packedBits == 4 || packedBits == 8) {
    bits_ = packedBits;
    signed_ = false;
  } else if (dataType == onnx::kInt8 || dataType == onnx::kUint8) {
    bits_ = 8;
    signed_ = dataType == onnx::kInt8;
  } else if (dataType == onnx::kInt4 || dataType == onnx::kUint4) {
    bits_ = 4;
    signed_ = dataType == onnx::kInt4;
  } else if (dataType >= onnx::kFloat8E4M3FN && dataType <= onnx::kFloat8E5M2FNUZ) {
    // The grid: every byte decoded, NaN and infinities dropped, -0 and +0 one value.
    uint8_t bytes[256];
    float values[256];
    for (int b = 0; b < 256; ++b) bytes[b] = static_cast<uint8_t>(b);
    onnx::convertRaw(dataType, bytes, 256, values);
    for (float v : values)
      if (std::isfinite(v)) grid_.push_back(v == 0.0f ? 0.0f : v);
    std::sort(grid_.begin(), grid_.end());
    grid_.erase(std::unique(grid_.begin(), grid_.end()), grid_.end());
    bits_ = 8;
    signed_ = true;
  } else {
    bits_ = 0;
    return false;
  }
  gridSize_ = grid_.empty() ? uint64_t{1} << bits_ : grid_.size();
  layout_ = layout;
  const uint64_t channels = layout.channelCount();
  words_ = (gridSize_ + 63) / 64;
  bitmap_.assign(channels * words_, 0);
  min_.assign(channels, INFINITY);
  max_.assign(channels, -INFINITY);
  atMin_.assign(channels, 0);
  atMinPlus1_.assign(channels, 0);
  high_.assign(channels, 0);
  elements_ = 0;
  return true;
}

double StoredCodeCounter::valueAt(uint64_t index) const {
  if (!grid_.empty()) return grid_[index];
  const int64_t lo = signed_ ? -(int64_t{1} << (bits_ - 1)) : 0;
  return static_cast<double>(lo + static_cast<int64_t>(index));
}

void StoredCodeCounter::addOne(uint64_t c, float code) {
  uint64_t bit = 0;
  if (grid_.empty()) {
    const int64_t lo = signed_ ? -(int64_t{1} << (bits_ - 1)) : 0;
    const int64_t hi = signed_ ? (int64_t{1} << (bits_ - 1)) - 1 : (int64_t{1} << bits_) - 1;
    if (!(code >= static_cast<float>(lo) && code <= static_cast<float>(hi))) return;  // not a code of the type
    bit = static_cast<uint64_t>(static_cast<int64_t>(code) - lo);
  } else {
    auto it = std::lower_bound(grid_.begin(), grid_.end(), code);
    if (it == grid_.end() || *it != code) return;  // NaN or infinity: not a finite value of the type
    bit = static_cast<uint64_t>(it - grid_.begin());
  }
  bitmap_[c * words_ + bit / 64] |= uint64_t{1} << (bit % 64);
  const double k = static_cast<double>(bit);
  min_[c] = std::min(min_[c], k);
  max_[c] = std::max(max_[c], k);
  if (bit == 0) atMin_[c] += 1;
  if (bit == 1) atMinPlus1_[c] += 1;
  if (bit == gridSize_ - 1) high_[c] += 1;
  ++elements_;
}

void StoredCodeCounter::add(const float* codes, uint64_t first, uint64_t count) {
  if (!active()) return;
  const stats::ChannelLayout& L = layout_;
  for (uint64_t i = 0; i < count; ++i) {
    const uint64_t e = first + i;
    const uint64_t c = (e / L.inner) % L.channels;
    const uint64_t o = e / (L.inner * L.channels * L.rows);
    addOne(o * L.channels + c, codes[i]);
  }
}

void StoredCodeCounter::addChannels(const float* codes, uint64_t firstChannel, uint64_t channels, uint64_t perChannel) {
  if (!active()) return;
  for (uint64_t c = 0; c < channels; ++c)
    for (uint64_t k = 0; k < perChannel; ++k) addOne(firstChannel + c, codes[c * perChannel + k]);
}

StoredFacts StoredCodeCounter::finish(const std::vector<double>& zeroPoints, const std::string& granularity,
                                      const std::vector<uint64_t>& channelOf) const {
  StoredFacts f;
  if (!active()) return f;
  f.present = true;
  f.bits = bits_;
  f.isSigned = signed_;
  f.isFloat = !grid_.empty();
  f.typeMin = valueAt(0);
  f.typeMax = valueAt(gridSize_ - 1);
  f.granularity = granularity;
  const double centre = signed_ ? 0.0 : static_cast<double>(int64_t{1} << (bits_ - 1));
  f.symmetric = !zeroPoints.empty() && std::all_of(zeroPoints.begin(), zeroPoints.end(), [&](double z) { return z == centre; });
  // A signed integer symmetric scheme uses -(2^(bits-1) - 1)..2^(bits-1) - 1: its low end
  // is one above the type's. float8's grid is symmetric already.
  const bool symmetricSigned = signed_ && f.symmetric && !f.isFloat;
  f.lowEnd = valueAt(symmetricSigned ? 1 : 0);
  const uint64_t channels = min_.size();
  f.elements = elements_;
  f.levels.resize(channels);
  f.codeMin.resize(channels);
  f.codeMax.resize(channels);
  f.atLow = symmetricSigned ? atMinPlus1_ : atMin_;
  f.atHigh = high_;
  std::vector<double> eff(channels), span(channels);
  double saturated = 0;
  f.lowestSpanBits = INFINITY;
  const double perChannelElements = channels ? static_cast<double>(elements_) / static_cast<double>(channels) : 0;
  for (uint64_t c = 0; c < channels; ++c) {
    uint64_t n = 0;
    for (uint64_t w = 0; w < words_; ++w) n += static_cast<uint64_t>(__builtin_popcountll(bitmap_[c * words_ + w]));
    f.levels[c] = static_cast<double>(n);
    f.codeMin[c] = n ? valueAt(static_cast<uint64_t>(min_[c])) : INFINITY;
    f.codeMax[c] = n ? valueAt(static_cast<uint64_t>(max_[c])) : -INFINITY;
    eff[c] = n ? std::log2(static_cast<double>(n)) : 0.0;
    span[c] = n ? std::log2(max_[c] - min_[c] + 1) : 0.0;
    f.lowestSpanBits = std::min(f.lowestSpanBits, span[c]);
    const double ends = f.atLow[c] + f.atHigh[c];
    saturated += ends;
    if (ends > std::max(2.0, 0.01 * perChannelElements)) ++f.saturatedChannels;
  }
  if (!channels) f.lowestSpanBits = 0;
  f.effectiveBits = median(eff);
  f.spanBits = median(span);
  f.saturatedFraction = elements_ ? saturated / static_cast<double>(elements_) : 0;
  // Zero points: each against the type, and against the codes of the channel it applies to.
  double lo = INFINITY, hi = -INFINITY;  // the codes the whole tensor uses
  for (uint64_t c = 0; c < channels; ++c) lo = std::min(lo, f.codeMin[c]), hi = std::max(hi, f.codeMax[c]);
  for (size_t i = 0; i < zeroPoints.size(); ++i) {
    const double z = zeroPoints[i];
    if (z < f.typeMin || z > f.typeMax) ++f.zeroPointsOutsideType;
    uint64_t c = kNoChannel;
    if (!channelOf.empty()) {
      if (channelOf.size() == zeroPoints.size()) c = channelOf[i];
    } else if (zeroPoints.size() == 1) {
      if (z < lo || z > hi) ++f.zeroPointsOutsideUsed;
      continue;
    } else if (zeroPoints.size() == channels) {
      c = i;
    }
    if (c < channels && (z < f.codeMin[c] || z > f.codeMax[c])) ++f.zeroPointsOutsideUsed;
  }
  return f;
}

}  // namespace ql::analysis
