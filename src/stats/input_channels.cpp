#include "stats/input_channels.hpp"

#include <algorithm>
#include <cstring>
#include <string>

#include "stats/outliers.hpp"

namespace ql::stats {

namespace {

// |x| as float32 bits, x stored as E (float32, float16 or bfloat16 little-endian).
// float16 and bfloat16 are converted as onnx::halfToFloat and onnx::bfloat16ToFloat do.
uint32_t halfAbsToFloatBits(uint32_t h) {  // h = |half| bits (sign clear)
  const uint32_t em = h << 13;
  if ((h & 0x7c00u) == 0x7c00u) return em | 0x7f800000u;
  float f;
  std::memcpy(&f, &em, 4);
  f *= 0x1p112f;  // exact: the half's value, normal or subnormal
  uint32_t u;
  std::memcpy(&u, &f, 4);
  return u;
}

struct F32 {
  static constexpr uint64_t kSize = 4;
  static uint32_t raw(const uint8_t* p) {
    uint32_t u;
    std::memcpy(&u, p, 4);
    return u & 0x7fffffffu;
  }
  static uint32_t toFloatBits(uint32_t a) { return a; }
};
struct F16 {
  static constexpr uint64_t kSize = 2;
  static uint32_t raw(const uint8_t* p) {
    uint16_t u;
    std::memcpy(&u, p, 2);
    return u & 0x7fffu;
  }
  static uint32_t toFloatBits(uint32_t a) { return halfAbsToFloatBits(a); }
};
struct BF16 {
  static constexpr uint64_t kSize = 2;
  static uint32_t raw(const uint8_t* p) {
    uint16_t u;
    std::memcpy(&u, p, 2);
    return u & 0x7fffu;
  }
  static uint32_t toFloatBits(uint32_t a) { return a << 16; }
};

// Both conversions are strictly increasing on |x| bits (NaN patterns above infinity),
// so the largest stored |x| converts to the largest float32 |x|.
template <class E>
inline uint32_t absBits(const uint8_t* p) {
  return E::toFloatBits(E::raw(p));
}

typedef int32_t v4i __attribute__((vector_size(16)));
typedef int16_t v8s __attribute__((vector_size(16)));

// The |x| bits are non-negative as signed integers of their width (the sign bit is
// cleared), so signed maxima order them: one instruction per vector in WASM SIMD
// (i32x4.max_s, i16x8.max_s) and for 16-bit lanes in SSE2 (pmaxsw).
inline v4i vmax(v4i a, v4i b) { return a > b ? a : b; }
inline v8s vmax(v8s a, v8s b) { return a > b ? a : b; }

// max |x| bits over n values: whole vectors of 16 bytes, then the tail one at a time.
template <class E>
inline uint32_t runMax(const uint8_t* p, uint64_t n) {
  constexpr uint64_t lanes = 16 / E::kSize;
  uint32_t m = 0;
  uint64_t i = 0;
  if (E::kSize == 4) {
    v4i a = {0, 0, 0, 0};
    for (; i + lanes <= n; i += lanes) {
      v4i x;
      std::memcpy(&x, p + E::kSize * i, 16);
      a = vmax(a, x & 0x7fffffff);
    }
    for (int k = 0; k < 4; ++k) m = std::max(m, static_cast<uint32_t>(a[k]));
  } else {
    v8s a = {0, 0, 0, 0, 0, 0, 0, 0};
    for (; i + lanes <= n; i += lanes) {
      v8s x;
      std::memcpy(&x, p + E::kSize * i, 16);
      a = vmax(a, x & 0x7fff);
    }
    for (int k = 0; k < 8; ++k) m = std::max(m, static_cast<uint32_t>(a[k]));
  }
  for (; i < n; ++i) m = std::max(m, E::raw(p + E::kSize * i));
  return E::toFloatBits(m);
}

// acc[i] = max(acc[i], |x_i| bits) for n float32 values: whole vectors, then the tail.
inline void elementMaxF32(uint32_t* acc, const uint8_t* p, uint64_t n) {
  uint64_t i = 0;
  for (; i + 4 <= n; i += 4) {
    v4i a, x;
    std::memcpy(&a, acc + i, 16);
    std::memcpy(&x, p + 4 * i, 16);
    a = vmax(a, x & 0x7fffffff);
    std::memcpy(acc + i, &a, 16);
  }
  for (; i < n; ++i) acc[i] = std::max(acc[i], F32::raw(p + 4 * i));
}

}  // namespace

Result<InputChannelAbsMax> InputChannelAbsMax::create(const InputChannelShape& s) {
  const int rank = static_cast<int>(s.dims.size());
  if (s.axis < 0 || s.axis >= rank || s.outputAxis < 0 || s.outputAxis >= rank || s.axis == s.outputAxis || s.groups < 1)
    return makeError(ErrorCode::InvalidArgument, "input channels: axes " + std::to_string(s.axis) + " and " +
                                                     std::to_string(s.outputAxis) + " do not fit a weight of rank " +
                                                     std::to_string(rank));
  InputChannelAbsMax a;
  a.axis_ = s.axis;
  a.n_ = 1;
  for (int k = 0; k < rank; ++k) {
    if (s.dims[k] < 0) return makeError(ErrorCode::InvalidArgument, "input channels: negative dimension");
    a.n_ *= static_cast<uint64_t>(s.dims[k]);
    if (k > s.axis) a.post_ *= static_cast<uint64_t>(s.dims[k]);
    if (k > s.outputAxis) a.strideO_ *= static_cast<uint64_t>(s.dims[k]);
  }
  a.J_ = static_cast<uint64_t>(s.dims[s.axis]);
  a.O_ = static_cast<uint64_t>(s.dims[s.outputAxis]);
  a.groups_ = static_cast<uint64_t>(s.groups);
  if (a.groups_ > 1 && (a.O_ % a.groups_ || a.O_ == 0))
    return makeError(ErrorCode::InvalidArgument, "input channels: " + std::to_string(a.O_) +
                                                     " output channels are not divisible by group " + std::to_string(a.groups_));
  if (a.n_ == 0) a.post_ = a.strideO_ = 1;
  a.acc_.assign(a.groups_ * a.J_, 0u);
  return a;
}

template <class E>
void InputChannelAbsMax::feedAs(const uint8_t* values, uint64_t first, uint64_t count) {
  if (acc_.empty()) return;
  const uint64_t end = first + count;
  uint64_t e = first;
  const uint8_t* p = values;
  uint32_t* acc = acc_.data();
  while (e < end) {
    const uint64_t j = (e / post_) % J_;
    uint64_t n;
    if (post_ == 1) {
      // The input axis is the innermost: a run of consecutive channels, one group.
      n = std::min(J_ - j, end - e);
      uint32_t* a = acc + base(e) + j;
      if (E::kSize == 4)
        elementMaxF32(a, p, n);
      else
        for (uint64_t i = 0; i < n; ++i) a[i] = std::max(a[i], absBits<E>(p + E::kSize * i));
    } else if (groups_ == 1 || strideO_ >= post_ * J_) {
      // A run of one input channel (and, grouped, one output channel's group).
      n = std::min(post_ - e % post_, end - e);
      uint32_t m = runMax<E>(p, n);
      uint32_t& a = acc[base(e) + j];
      a = std::max(a, m);
    } else {
      // Grouped, with the output-channel axis inside the input axis (a transposed
      // filter): the group changes within a run.
      n = std::min(post_ - e % post_, end - e);
      for (uint64_t i = 0; i < n; ++i) {
        uint32_t& a = acc[base(e + i) + j];
        a = std::max(a, absBits<E>(p + E::kSize * i));
      }
    }
    e += n;
    p += E::kSize * n;
  }
}

void InputChannelAbsMax::feed(const uint8_t* values, uint64_t first, uint64_t count, Storage storage) {
  // Through a table: each element type's loop stays a function of its own in the build.
  using Feed = void (InputChannelAbsMax::*)(const uint8_t*, uint64_t, uint64_t);
  static constexpr Feed kFeed[3] = {&InputChannelAbsMax::feedAs<F32>, &InputChannelAbsMax::feedAs<F16>,
                                    &InputChannelAbsMax::feedAs<BF16>};
  (this->*kFeed[static_cast<int>(storage) % 3])(values, first, count);
}

std::vector<float> InputChannelAbsMax::absMax() const {
  std::vector<float> out(acc_.size());
  if (!acc_.empty()) std::memcpy(out.data(), acc_.data(), 4 * acc_.size());
  return out;
}

Error InputChannelAbsMax::mergeMax(const std::vector<float>& absMax) {
  if (absMax.size() != acc_.size())
    return makeError(ErrorCode::InvalidArgument, "input channels: a part holds " + std::to_string(absMax.size()) +
                                                     " absMax values, the layer has " + std::to_string(acc_.size()));
  for (size_t i = 0; i < acc_.size(); ++i) {
    uint32_t u;
    std::memcpy(&u, &absMax[i], 4);
    acc_[i] = std::max(acc_[i], u);  // |x| bits: their order as integers is the magnitudes'
  }
  return {};
}

InputChannelStats InputChannelAbsMax::finish() const {
  InputChannelStats s;
  s.absMax = absMax();
  s.axis = axis_;
  s.count = acc_.size();
  s.groups = groups_;
  s.perGroup = J_;
  RelativeOutliers o = flagRelativeOutliers(s.absMax);
  s.relative = std::move(o.relative);
  s.outliers = std::move(o.flagged);
  s.q1 = o.q1;
  s.q3 = o.q3;
  s.threshold = o.threshold;
  return s;
}

}  // namespace ql::stats
