#include "analysis/stored.hpp"

#include <algorithm>
#include <cmath>

#include "onnx/fields.hpp"

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
  if (packedBits == 4 || packedBits == 8) {
    bits_ = packedBits;
    signed_ = false;
  } else if (dataType == onnx::kInt8 || dataType == onnx::kUint8) {
    bits_ = 8;
    signed_ = dataType == onnx::kInt8;
  } else {
    bits_ = 0;
    return false;
  }
  layout_ = layout;
  const uint64_t channels = layout.channelCount();
  words_ = (uint64_t{1} << bits_) / 64 ? (uint64_t{1} << bits_) / 64 : 1;
  bitmap_.assign(channels * words_, 0);
  min_.assign(channels, INFINITY);
  max_.assign(channels, -INFINITY);
  atMin_.assign(channels, 0);
  atMinPlus1_.assign(channels, 0);
  high_.assign(channels, 0);
  elements_ = 0;
  return true;
}

void StoredCodeCounter::addOne(uint64_t c, float code) {
  const int64_t lo = signed_ ? -(int64_t{1} << (bits_ - 1)) : 0;
  const int64_t hi = signed_ ? (int64_t{1} << (bits_ - 1)) - 1 : (int64_t{1} << bits_) - 1;
  if (!(code >= static_cast<float>(lo) && code <= static_cast<float>(hi))) return;  // not a code of the type
  const int64_t k = static_cast<int64_t>(code);
  const uint64_t bit = static_cast<uint64_t>(k - lo);
  bitmap_[c * words_ + bit / 64] |= uint64_t{1} << (bit % 64);
  min_[c] = std::min(min_[c], static_cast<double>(k));
  max_[c] = std::max(max_[c], static_cast<double>(k));
  if (k == lo) atMin_[c] += 1;
  if (k == lo + 1) atMinPlus1_[c] += 1;
  if (k == hi) high_[c] += 1;
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
                                      uint64_t blocksPerChannel) const {
  StoredFacts f;
  if (!active()) return f;
  f.present = true;
  f.bits = bits_;
  f.isSigned = signed_;
  f.typeMin = signed_ ? -(int64_t{1} << (bits_ - 1)) : 0;
  f.typeMax = signed_ ? (int64_t{1} << (bits_ - 1)) - 1 : (int64_t{1} << bits_) - 1;
  f.granularity = granularity;
  const double centre = signed_ ? 0.0 : static_cast<double>(int64_t{1} << (bits_ - 1));
  f.symmetric = !zeroPoints.empty() && std::all_of(zeroPoints.begin(), zeroPoints.end(), [&](double z) { return z == centre; });
  const bool symmetricSigned = signed_ && f.symmetric;
  f.lowEnd = symmetricSigned ? f.typeMin + 1 : f.typeMin;
  const uint64_t channels = min_.size();
  f.elements = elements_;
  f.levels.resize(channels);
  f.codeMin = min_;
  f.codeMax = max_;
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
  // Zero points: one for the tensor, one per channel, or one per block of each channel.
  for (size_t i = 0; i < zeroPoints.size(); ++i) {
    const double z = zeroPoints[i];
    if (z < static_cast<double>(f.typeMin) || z > static_cast<double>(f.typeMax)) ++f.zeroPointsOutsideType;
    if (zeroPoints.size() == 1) {
      // per-tensor: outside the codes the whole tensor uses
      double lo = INFINITY, hi = -INFINITY;
      for (uint64_t c = 0; c < channels; ++c) lo = std::min(lo, min_[c]), hi = std::max(hi, max_[c]);
      if (z < lo || z > hi) ++f.zeroPointsOutsideUsed;
    } else if (blocksPerChannel > 0) {  // 0: the zero points run along another axis than the channels
      const uint64_t c = blocksPerChannel > 1 ? i / blocksPerChannel : i;
      if (c < channels && (z < min_[c] || z > max_[c])) ++f.zeroPointsOutsideUsed;
    }
  }
  return f;
}

}  // namespace ql::analysis
