// The scales of Cross Layer Equalization (DFQ section 4.1), as pure functions of
// per-channel weight ranges r = max|w|, and the range-matrix kernels the sweeps use.
//
// Pair: layer 1's output channel i is divided by s_i and layer 2's input channel i
// multiplied by it. The paper's optimum is s_i = sqrt(r1_i r2_i) / r2_i, which is
// computed as sqrt(r1_i / r2_i) (the same in exact arithmetic); both sides end with
// the range sqrt(r1_i r2_i).
//
// Triple around a depthwise layer (layers 0, 1, 2; layer 1 depthwise): all three
// ranges end equal to c = cbrt(r0 r1 r2) in one step, with s12 = r0 / c
// and s23 = c / r2.
//
// Near-dead channels: a range below deadChannelRatio times the largest range of its
// side of the layer (zero included) is not balanced against, since that needs scales
// of 1e10 and a near-dead output channel's bias divided by 1e-10 is an activation no
// INT8 grid holds. Its live partner is only brought down to T, the largest balanced
// range of the link's live channels (deadScale).
#pragma once
#include <cstdint>
#include <vector>

#include "cle/weight_view.hpp"

namespace ql::cle {

// sqrt(r1 / r2): divides layer 1's output channel, multiplies layer 2's input channel.
double pairScale(double r1, double r2);

struct TripleScale {
  double s12 = 1;    // between layers 0 and 1
  double s23 = 1;    // between layers 1 and 2
  double range = 0;  // cbrt(r0 r1 r2): the range all three end with
};
TripleScale tripleScale(double r0, double r1, double r2);

// A range that takes part in balancing: finite, positive, and at least
// deadRatio * maxRange (the largest finite range of its side).
bool isLive(double r, double maxRange, double deadRatio);
// The largest finite value, 0 for none.
double maxFinite(const std::vector<double>& r);

// The scale for a channel whose one side is near-dead, given T: the live side keeps
// its range, or is brought down to T when above it (s < 1 when layer 2's input is
// the live side, s > 1 when layer 1's output is). 1 when both sides are live or dead
// or T is not a positive finite number.
double deadScale(double r1, bool live1, double r2, bool live2, double T);

// One balancing step of a link: the scale per channel and which channels are live.
struct PairScales {
  std::vector<double> s;
  std::vector<char> live1, live2;  // layer 1's output channel, layer 2's input channel
  double deviation = 0;            // max |s - 1|
};
// r1: layer 1's output ranges, r2: layer 2's input ranges (same length).
PairScales pairScales(const std::vector<double>& r1, const std::vector<double>& r2, double deadRatio);

struct TripleScales {
  std::vector<double> s12, s23;
  std::vector<char> live0, live1, live2;  // layer 0's output, layer 1's output, layer 2's input
  double deviation = 0;                   // max |s - 1| over both
};
// r0, r1: outputs of layers 0 and 1 (depthwise), r2: layer 2's input. A channel with
// a near-dead range is balanced as two pairs instead, the dead side bounded by T.
TripleScales tripleScales(const std::vector<double>& r0, const std::vector<double>& r1, const std::vector<double>& r2,
                          double deadRatio);

// ---- The range matrix ----
// A layer's weight reduced to [A][B]: max |w| over each run of `inner` kernel
// elements. (For 1x1 kernels and matrices the weight itself serves, read through fabs.)
std::vector<float> rangeMatrix(const std::vector<float>& w, const WeightView& view);
// Entries [first, first + count) of the range matrix into m[first ..], from x, the weight's
// elements of those runs (a piece of the weight read in whole runs).
void rangeEntries(const float* x, uint64_t first, uint64_t count, const WeightView& view, float* m);
// Per-channel max |m| of one side (output or input channels) of a range matrix.
std::vector<double> channelRanges(const float* m, const WeightView& view, bool output);
// Rows [a0, a1) of a range matrix (given from row a0 on) taken into the running maxima r of
// one side's channels (zeros to start): channelRanges over pieces of whole rows.
void takeChannelRanges(const float* rows, uint64_t a0, uint64_t a1, const WeightView& view, bool output, float* r);
// Multiplies the entries of each channel c of one side by f[c].
void scaleChannels(float* m, const WeightView& view, bool output, const std::vector<double>& f);

}  // namespace ql::cle
