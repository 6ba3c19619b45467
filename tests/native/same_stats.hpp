// Bit-for-bit comparison of statistics in native tests: floats by bit pattern (so
// NaN-aware, and -0 is not 0), every field of LayerStats.
#pragma once
#include <catch2/catch.hpp>
#include <cstring>
#include <vector>

#include "stats/stats.hpp"

template <class T>
bool sameBits(const std::vector<T>& a, const std::vector<T>& b) {
  return a.size() == b.size() && (a.empty() || std::memcmp(a.data(), b.data(), a.size() * sizeof(T)) == 0);
}
template <class T>
bool sameBits(const T& a, const T& b) {
  return std::memcmp(&a, &b, sizeof(T)) == 0;
}

inline void requireSame(const ql::stats::LayerStats& a, const ql::stats::LayerStats& b) {
  CHECK(a.channels == b.channels);
  CHECK(a.elementsPerChannel == b.elementsPerChannel);
  CHECK(sameBits(a.min, b.min));
  CHECK(sameBits(a.max, b.max));
  CHECK(sameBits(a.absMax, b.absMax));
  CHECK(sameBits(a.range, b.range));
  CHECK(sameBits(a.mean, b.mean));
  CHECK(sameBits(a.std, b.std));
  CHECK(sameBits(a.relativeRange, b.relativeRange));
  for (int s = 0; s < ql::stats::kSchemes; ++s) CHECK(sameBits(a.channelSqnr[s], b.channelSqnr[s]));
  CHECK(sameBits(a.tensorMin, b.tensorMin));
  CHECK(sameBits(a.tensorMax, b.tensorMax));
  CHECK(sameBits(a.tensorAbsMax, b.tensorAbsMax));
  CHECK(sameBits(a.tensorMean, b.tensorMean));
  CHECK(sameBits(a.tensorStd, b.tensorStd));
  CHECK(sameBits(a.sqnr, b.sqnr));
  REQUIRE(a.blockSqnr.size() == b.blockSqnr.size());
  for (size_t k = 0; k < a.blockSqnr.size(); ++k) {
    CHECK(a.blockSqnr[k].blockSize == b.blockSqnr[k].blockSize);
    CHECK(a.blockSqnr[k].scheme == b.blockSqnr[k].scheme);
    CHECK(sameBits(a.blockSqnr[k].sqnr, b.blockSqnr[k].sqnr));
    CHECK(sameBits(a.blockSqnr[k].channelSqnr, b.blockSqnr[k].channelSqnr));
  }
  CHECK(sameBits(a.histMin, b.histMin));
  CHECK(sameBits(a.histMax, b.histMax));
  CHECK(a.histogram == b.histogram);
  CHECK(a.outliers == b.outliers);
  CHECK(sameBits(a.q1, b.q1));
  CHECK(sameBits(a.q3, b.q3));
  CHECK(sameBits(a.outlierThreshold, b.outlierThreshold));
}
