// The scales of Cross Layer Equalization as pure functions (src/cle/scaling.hpp),
// on numbers worked out by hand: the pair and cube-root triple forms, the near-dead
// channel bound, and the range-matrix kernels with each weight layout.
#include <catch2/catch.hpp>
#include <cmath>
#include <limits>
#include <vector>

#include "cle/scaling.hpp"

using namespace ql::cle;
using Catch::Detail::Approx;

namespace {

WeightView view(uint64_t A, uint64_t B, uint64_t groups, bool outIsA) {
  WeightView v;
  v.A = A;
  v.B = B;
  v.groups = groups;
  v.outIsA = outIsA;
  v.outC = outIsA ? A : groups * B;
  v.inC = outIsA ? groups * B : A;
  return v;
}

}  // namespace

TEST_CASE("pair scale: s = sqrt(r1 r2) / r2, both ranges end at sqrt(r1 r2)", "[cle][scaling]") {
  CHECK(pairScale(4, 1) == 2);      // 4 / 2 = 2 = 1 * 2
  CHECK(pairScale(9, 4) == 1.5);    // 9 / 1.5 = 6 = 4 * 1.5
  CHECK(pairScale(1, 16) == 0.25);  // 1 / 0.25 = 4 = 16 * 0.25
  CHECK(pairScale(3, 3) == 1);
  const double r1 = 0.7, r2 = 5.3, s = pairScale(r1, r2);
  CHECK(r1 / s == Approx(std::sqrt(r1 * r2)));
  CHECK(r2 * s == Approx(std::sqrt(r1 * r2)));
}

TEST_CASE("triple scale: all three ranges end at cbrt(r0 r1 r2)", "[cle][scaling]") {
  // r0 = 8, r1 = 1, r2 = 1: c = 2, s12 = 8 / 2 = 4, s23 = 2 / 1 = 2.
  TripleScale t = tripleScale(8, 1, 1);
  CHECK(t.range == Approx(2));
  CHECK(t.s12 == Approx(4));
  CHECK(t.s23 == Approx(2));
  CHECK(8 / t.s12 == Approx(2));          // layer 0's output
  CHECK(1 * t.s12 / t.s23 == Approx(2));  // the depthwise layer, both sides scaled
  CHECK(1 * t.s23 == Approx(2));          // layer 2's input
  // r0 = 1, r1 = 27, r2 = 1: c = 3, s12 = 1/3, s23 = 3.
  t = tripleScale(1, 27, 1);
  CHECK(t.range == Approx(3));
  CHECK(t.s12 == Approx(1.0 / 3));
  CHECK(t.s23 == Approx(3));
}

TEST_CASE("live ranges: finite, positive, at least deadRatio times the largest", "[cle][scaling]") {
  CHECK(isLive(1, 4, 1e-6));
  CHECK(isLive(4e-6, 4, 1e-6));  // exactly at the bound
  CHECK_FALSE(isLive(3e-6, 4, 1e-6));
  CHECK_FALSE(isLive(0, 4, 1e-6));
  CHECK_FALSE(isLive(0, 4, 0));  // zero is dead whatever the ratio
  CHECK(isLive(1e-30, 4, 0));
  CHECK_FALSE(isLive(std::numeric_limits<double>::infinity(), 4, 1e-6));
  CHECK_FALSE(isLive(std::nan(""), 4, 1e-6));
  CHECK(maxFinite({1, std::numeric_limits<double>::infinity(), 3, std::nan("")}) == 3);
  CHECK(maxFinite({}) == 0);
}

TEST_CASE("near-dead bound: the live side keeps its range or comes down to T", "[cle][scaling]") {
  // Layer 1's output is dead: layer 2's input channel (range 10) comes down to T = 2.
  CHECK(deadScale(1e-20, false, 10, true, 2) == Approx(0.2));
  // Layer 2's input is dead: layer 1's output channel (range 10) is divided by 5.
  CHECK(deadScale(10, true, 1e-20, false, 2) == Approx(5));
  // A live side already below T keeps its range.
  CHECK(deadScale(1e-20, false, 1.5, true, 2) == 1);
  CHECK(deadScale(1.5, true, 1e-20, false, 2) == 1);
  // Both live, both dead, or no T: left alone.
  CHECK(deadScale(10, true, 1, true, 2) == 1);
  CHECK(deadScale(0, false, 0, false, 2) == 1);
  CHECK(deadScale(1e-20, false, 10, true, 0) == 1);
  CHECK(deadScale(1e-20, false, 10, true, std::numeric_limits<double>::infinity()) == 1);
}

TEST_CASE("pair scales over a link: live channels balanced, dead ones bounded by T", "[cle][scaling]") {
  const PairScales p = pairScales({4, 9}, {1, 4}, 1e-6);
  REQUIRE(p.s.size() == 2);
  CHECK(p.s[0] == 2);
  CHECK(p.s[1] == 1.5);
  CHECK(p.live1 == std::vector<char>{1, 1});
  CHECK(p.live2 == std::vector<char>{1, 1});
  CHECK(p.deviation == 1);  // |2 - 1|

  // Channel 1 of layer 1 is near-dead (1e-9 < 1e-6 * 4). T = sqrt(4 * 1) = 2, so
  // layer 2's input channel 1 (range 3) comes down to 2: s = 2/3.
  const PairScales d = pairScales({4, 1e-9}, {1, 3}, 1e-6);
  CHECK(d.live1 == std::vector<char>{1, 0});
  CHECK(d.live2 == std::vector<char>{1, 1});
  CHECK(d.s[0] == 2);
  CHECK(d.s[1] == Approx(2.0 / 3));

  // A balanced link: every scale 1, deviation 0.
  const PairScales b = pairScales({2, 3}, {2, 3}, 1e-6);
  CHECK(b.s == std::vector<double>{1, 1});
  CHECK(b.deviation == 0);

  // A non-finite range leaves its channel alone (and is not live).
  const PairScales n = pairScales({4, std::numeric_limits<double>::infinity()}, {1, 1}, 1e-6);
  CHECK(n.s[1] == 1);
  CHECK(n.live1[1] == 0);
}

TEST_CASE("triple scales: cube-root form, a dead channel as two bounded pairs", "[cle][scaling]") {
  const TripleScales t = tripleScales({8, 1}, {1, 27}, {1, 1}, 1e-6);
  CHECK(t.s12[0] == Approx(4));
  CHECK(t.s23[0] == Approx(2));
  CHECK(t.s12[1] == Approx(1.0 / 3));
  CHECK(t.s23[1] == Approx(3));
  CHECK(t.deviation == Approx(3));  // |4 - 1|

  // Channel 1 of layer 2's input is dead (range 0). Live triples give T = cbrt(8) = 2.
  // Channel 1 then: s12 = sqrt(r0 / r1) = sqrt(9 / 1) = 3 (a live pair); layer 1's
  // range becomes 1 * 3 = 3 > T, so s23 = 3 / 2 brings it down to T.
  const TripleScales d = tripleScales({8, 9}, {1, 1}, {1, 0}, 1e-6);
  CHECK(d.live2 == std::vector<char>{1, 0});
  CHECK(d.s12[1] == Approx(3));
  CHECK(d.s23[1] == Approx(1.5));
}

TEST_CASE("range matrix and channel ranges for each weight layout", "[cle][scaling]") {
  SECTION("Conv [O, I, k]: max |w| over the kernel, rows are output channels") {
    WeightView v = view(2, 2, 1, true);
    v.inner = 2;
    const std::vector<float> w = {1,  -3, 2, 0.5f,    // out 0: in 0 {1, -3}, in 1 {2, 0.5}
                                  -4, 1,  0, 0.25f};  // out 1: in 0 {-4, 1}, in 1 {0, 0.25}
    const auto m = rangeMatrix(w, v);
    CHECK(m == std::vector<float>{3, 2, 4, 0.25f});
    CHECK(channelRanges(m.data(), v, true) == std::vector<double>{3, 4});
    CHECK(channelRanges(m.data(), v, false) == std::vector<double>{4, 2});
  }
  SECTION("Gemm / MatMul [K, N]: rows are input channels") {
    const WeightView v = view(2, 3, 1, false);
    const std::vector<float> m = {1, -2, 3, -4, 5, 0};
    CHECK(channelRanges(m.data(), v, true) == std::vector<double>{4, 5, 3});
    CHECK(channelRanges(m.data(), v, false) == std::vector<double>{3, 5});
  }
  SECTION("depthwise Conv [C, 1, k] with C groups: channel c on both sides is row c") {
    const WeightView v = view(3, 1, 3, true);
    const std::vector<float> m = {1, -2, 3};
    CHECK(channelRanges(m.data(), v, true) == std::vector<double>{1, 2, 3});
    CHECK(channelRanges(m.data(), v, false) == std::vector<double>{1, 2, 3});
  }
  SECTION("grouped Conv [4, 2] with 2 groups: rows 2, 3 read input channels 2, 3") {
    const WeightView v = view(4, 2, 2, true);
    const std::vector<float> m = {1, 2, 3, 4, 5, 6, 7, 8};
    CHECK(channelRanges(m.data(), v, false) == std::vector<double>{3, 4, 7, 8});
  }
}

TEST_CASE("scaling one side of a range matrix", "[cle][scaling]") {
  SECTION("Conv: output channels are rows, input channels columns") {
    const WeightView v = view(2, 2, 1, true);
    std::vector<float> m = {1, 2, 3, 4};
    scaleChannels(m.data(), v, true, {0.5, 2});
    CHECK(m == std::vector<float>{0.5f, 1, 6, 8});
    scaleChannels(m.data(), v, false, {2, 0.25});
    CHECK(m == std::vector<float>{1, 0.25f, 12, 2});
  }
  SECTION("ConvTranspose-style [I, O/g] with 2 groups: output channel g*B + b") {
    const WeightView v = view(2, 1, 2, false);  // 2 inputs, 2 outputs, one per group
    std::vector<float> m = {1, 1};
    scaleChannels(m.data(), v, true, {2, 3});
    CHECK(m == std::vector<float>{2, 3});
  }
}
