// A compression plan for a target (issue 15): per layer one operating point, chosen
// data-free from the curves. The target is a fraction of ALL weight-layer parameters
// (or MACs), the layers no method compresses included.
//
// The allocation (rate allocation, as in AIMET's greedy compression-ratio selection, with
// a data-free score): the plan minimises the sum over layers of the relative noise power
// n = 10^(-SQNR/10) = ‖W − Ŵ‖² / ‖W‖² of the point it takes (0 for a layer as it is), under
// the budget. It is solved as a Lagrangian: for a multiplier λ every layer takes the point
// minimising n + λ·cost (of the near-ties, the cheapest), and the plan is the one of the
// smallest λ that meets the target (a binary search over the slopes of the layers' lower
// convex hulls of (cost, n), where the choices change; the total only shrinks as λ grows).
// What that leaves of the budget is then spent greedily: the move of one compressed layer
// along its own curve that removes the most noise per unit of cost and still fits, until
// none fits. A minimax plan (the largest SQNR threshold met by every layer, this planner
// before) was worse than the uniform plan on the model outputs in 10 of 26 real cases;
// README.md#compression has the measurements.
//
// Pruning and its producer: pruning a layer's input channels removes its producer's
// matching output channels as well (Curve::producer), which only works while the
// producer keeps its weight as it is. So, at a given λ, a layer whose best point prunes
// keeps that point only when its producer is left as it is; otherwise it falls back to
// its best non-pruning point at λ (SVD, or as it is). Producers are never changed on a
// consumer's behalf: the conflict is resolved in favour of the producer's own choice.
#pragma once
#include <cstdint>
#include <optional>
#include <string>
#include <vector>

#include "common/result.hpp"
#include "compress/curves.hpp"

namespace ql::compress {

enum class By { Params, Macs };
const char* byName(By by);  // "params", "macs"

struct PlanOptions {
  double ratio = 0.5;  // fraction to keep, (0, 1]
  By by = By::Params;
  // Methods the plan may use (svd: WeightSvd + SpatialSvd; prune: ChannelPrune; auto: all).
  std::vector<Method> methods = {Method::WeightSvd, Method::SpatialSvd};
};

struct LayerChoice {
  std::string layer;
  bool compressed = false;  // false: left as it is (`leftAlone` says why)
  Method method = Method::WeightSvd;
  int64_t keep = 0;                       // rank or kept input channels (compressed only)
  uint64_t paramsBefore = 0, params = 0;  // params: the layer's after (as before when left alone)
  uint64_t paramsRemovedElsewhere = 0;    // pruning: the producer's parameters removed too
  uint64_t macsBefore = 0, macs = 0;      // 0 when unknown
  double sqnrDb = 0;                      // +inf when left alone
  std::string leftAlone;
};

struct Plan {
  double ratio = 0;
  By by = By::Params;
  double thresholdDb = 0;  // the lowest weight SQNR of a compressed layer (+inf: every layer as it is)
  uint64_t paramsBefore = 0, paramsAfter = 0;
  bool macsKnown = false;  // every layer's MACs known (else the MAC figures are meaningless)
  uint64_t macsBefore = 0, macsAfter = 0;
  std::vector<LayerChoice> layers;  // in the curves' order
  double paramFraction() const { return paramsBefore ? double(paramsAfter) / double(paramsBefore) : 1.0; }
  double macFraction() const { return macsBefore ? double(macsAfter) / double(macsBefore) : 1.0; }
};

// Errors: INVALID_ARGUMENT for a ratio outside (0, 1] or one no allowed point reaches
// (the message gives the smallest reachable fraction); UNSUPPORTED for --by macs when a
// layer's MACs are unknown (named in the message).
Result<Plan> makePlan(const std::vector<LayerCurves>& curves, const PlanOptions& options);

// The plan with the same fraction in every layer ("uniform"): in each layer the point of
// the allowed methods whose parameters are closest to, and not above, `ratio` of the
// layer's (the layer as it is when none is); for comparisons with makePlan.
Plan uniformPlan(const std::vector<LayerCurves>& curves, const PlanOptions& options);

}  // namespace ql::compress
