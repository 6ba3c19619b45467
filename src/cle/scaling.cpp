#include "cle/scaling.hpp"

#include <algorithm>
#include <cmath>

namespace ql::cle {

double pairScale(double r1, double r2) { return std::sqrt(r1 / r2); }

TripleScale tripleScale(double r0, double r1, double r2) {
  const double c = std::cbrt(r0 * r1 * r2);
  return {r0 / c, c / r2, c};
}

bool isLive(double r, double maxRange, double deadRatio) { return std::isfinite(r) && r > 0 && r >= deadRatio * maxRange; }

double maxFinite(const std::vector<double>& r) {
  double m = 0;
  for (double x : r)
    if (std::isfinite(x)) m = std::max(m, x);
  return m;
}

double deadScale(double r1, bool live1, double r2, bool live2, double T) {
  if (live1 == live2 || !(T > 0) || !std::isfinite(T)) return 1;
  if (!live1) return r2 > T ? T / r2 : 1;  // layer 2's input channel shrinks (s < 1)
  return r1 > T ? r1 / T : 1;              // layer 1's output channel shrinks (s > 1)
}

namespace {
// A scale that is not a positive finite number leaves its channel as it is.
double sane(double s) { return std::isfinite(s) && s > 0 ? s : 1; }
}  // namespace

PairScales pairScales(const std::vector<double>& r1, const std::vector<double>& r2, double deadRatio) {
  const size_t n = r1.size();
  const double m1 = maxFinite(r1), m2 = maxFinite(r2);
  PairScales p;
  p.s.assign(n, 1.0);
  p.live1.resize(n);
  p.live2.resize(n);
  double T = 0;
  for (size_t i = 0; i < n; ++i) {
    p.live1[i] = isLive(r1[i], m1, deadRatio);
    p.live2[i] = isLive(r2[i], m2, deadRatio);
    if (p.live1[i] && p.live2[i]) {
      p.s[i] = pairScale(r1[i], r2[i]);
      T = std::max(T, std::sqrt(r1[i] * r2[i]));
    }
  }
  for (size_t i = 0; i < n; ++i) {
    if (!(p.live1[i] && p.live2[i])) p.s[i] = deadScale(r1[i], p.live1[i], r2[i], p.live2[i], T);
    p.s[i] = sane(p.s[i]);
    p.deviation = std::max(p.deviation, std::fabs(p.s[i] - 1));
  }
  return p;
}

TripleScales tripleScales(const std::vector<double>& r0, const std::vector<double>& r1, const std::vector<double>& r2,
                          double deadRatio) {
  const size_t n = r0.size();
  const double m0 = maxFinite(r0), m1 = maxFinite(r1), m2 = maxFinite(r2);
  TripleScales t;
  t.s12.assign(n, 1.0);
  t.s23.assign(n, 1.0);
  t.live0.resize(n);
  t.live1.resize(n);
  t.live2.resize(n);
  double T = 0;
  for (size_t i = 0; i < n; ++i) {
    t.live0[i] = isLive(r0[i], m0, deadRatio);
    t.live1[i] = isLive(r1[i], m1, deadRatio);
    t.live2[i] = isLive(r2[i], m2, deadRatio);
    if (t.live0[i] && t.live1[i] && t.live2[i]) {
      const TripleScale s = tripleScale(r0[i], r1[i], r2[i]);
      t.s12[i] = s.s12;
      t.s23[i] = s.s23;
      T = std::max(T, s.range);
    }
  }
  for (size_t i = 0; i < n; ++i) {
    const bool l0 = t.live0[i], l1 = t.live1[i], l2 = t.live2[i];
    if (!(l0 && l1 && l2)) {  // as two pairs, the dead side bounded by T
      t.s12[i] = l0 && l1 ? pairScale(r0[i], r1[i]) : deadScale(r0[i], l0, r1[i], l1, T);
      const double mid = r1[i] * t.s12[i];  // layer 1's range after the first pair
      t.s23[i] = l1 && l2 ? pairScale(mid, r2[i]) : deadScale(mid, l1, r2[i], l2, T);
    }
    t.s12[i] = sane(t.s12[i]);
    t.s23[i] = sane(t.s23[i]);
    t.deviation = std::max({t.deviation, std::fabs(t.s12[i] - 1), std::fabs(t.s23[i] - 1)});
  }
  return t;
}

void rangeEntries(const float* x, uint64_t first, uint64_t count, const WeightView& v, float* m) {
  for (uint64_t ab = first; ab < first + count; ++ab) {
    const float* p = x + (ab - first) * v.inner;
    float y = 0;
    for (uint64_t k = 0; k < v.inner; ++k) y = std::max(y, std::fabs(p[k]));
    m[ab] = y;
  }
}

std::vector<float> rangeMatrix(const std::vector<float>& w, const WeightView& v) {
  std::vector<float> m(v.A * v.B);
  rangeEntries(w.data(), 0, v.A * v.B, v, m.data());
  return m;
}

// Row a's channel mapping is fixed per row (the group of a), so the inner loops are
// plain runs. The "row side" is the side indexed by a (output for Conv and transB Gemm).
void takeChannelRanges(const float* rows, uint64_t a0, uint64_t a1, const WeightView& v, bool output, float* r) {
  const bool rowSide = output == v.outIsA;
  const uint64_t per = v.A / v.groups;
  for (uint64_t a = a0; a < a1; ++a) {
    const float* row = rows + (a - a0) * v.B;
    if (rowSide) {
      float x = 0;
      for (uint64_t b = 0; b < v.B; ++b) x = std::max(x, std::fabs(row[b]));
      r[a] = std::max(r[a], x);
    } else {
      float* t = &r[(a / per) * v.B];
      for (uint64_t b = 0; b < v.B; ++b) t[b] = std::max(t[b], std::fabs(row[b]));
    }
  }
}

std::vector<double> channelRanges(const float* m, const WeightView& v, bool output) {
  std::vector<float> r(output ? v.outC : v.inC, 0.0f);
  takeChannelRanges(m, 0, v.A, v, output, r.data());
  return std::vector<double>(r.begin(), r.end());
}

void scaleChannels(float* m, const WeightView& v, bool output, const std::vector<double>& f) {
  const bool rowSide = output == v.outIsA;
  const uint64_t per = v.A / v.groups;
  std::vector<float> ff(f.begin(), f.end());
  for (uint64_t a = 0; a < v.A; ++a) {
    float* row = m + a * v.B;
    if (rowSide) {
      const float x = ff[a];
      for (uint64_t b = 0; b < v.B; ++b) row[b] *= x;
    } else {
      const float* t = &ff[(a / per) * v.B];
      for (uint64_t b = 0; b < v.B; ++b) row[b] *= t[b];
    }
  }
}

}  // namespace ql::cle
