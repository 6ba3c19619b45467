#include "compress/plan.hpp"

#include <algorithm>
#include <cmath>
#include <iomanip>
#include <limits>
#include <sstream>
#include <unordered_map>

namespace ql::compress {

const char* byName(By by) { return by == By::Macs ? "macs" : "params"; }

namespace {

std::string fraction(double x) {
  std::ostringstream o;
  o << std::setprecision(4) << x;
  return o.str();
}

constexpr double kInf = std::numeric_limits<double>::infinity();

bool allowed(const PlanOptions& o, Method m) { return std::find(o.methods.begin(), o.methods.end(), m) != o.methods.end(); }

// The cost of a point by the target's measure (pruning: net of what it removes elsewhere).
double cost(const Point& p, By by) {
  return by == By::Macs ? double(p.macs) : double(p.params) - double(p.paramsRemovedElsewhere);
}

struct Pick {
  const Curve* curve = nullptr;  // null: as it is
  const Point* point = nullptr;
};

// A point's relative noise power ‖W − Ŵ‖² / ‖W‖² = 10^(−SQNR/10): what the plan adds up.
double noiseOf(const Point& p) { return std::pow(10.0, -p.sqnrDb / 10.0); }

double wholeCost(const LayerCurves& L, By by) { return by == By::Macs ? double(L.macs) : double(L.params); }

bool usable(const Curve& c, const PlanOptions& o, bool noPrune) {
  return c.refused.empty() && allowed(o, c.method) && !(noPrune && c.method == Method::ChannelPrune);
}

// The point of the allowed methods (or the layer as it is) minimising noise + λ·cost; of
// the (near-)ties, the cheapest. λ = +inf: the cheapest point, then the least noise.
Pick argminAt(const LayerCurves& L, const PlanOptions& o, double lambda, bool noPrune) {
  const bool inf = std::isinf(lambda);
  auto better = [&](double k, double n, double bestK, double bestN) {
    if (inf) return k < bestK || (k == bestK && n < bestN);
    const double s = n + lambda * k, bestS = bestN + lambda * bestK;
    const double tol = 1e-12 * std::max(s, bestS);
    return s < bestS - tol || (s <= bestS + tol && k < bestK);
  };
  Pick best;
  double bestK = wholeCost(L, o.by), bestN = 0;
  for (const Curve& c : L.curves) {
    if (!usable(c, o, noPrune)) continue;
    for (const Point& p : c.points) {
      if (!std::isfinite(p.sqnrDb)) continue;  // the +inf point is the layer as it is
      const double k = cost(p, o.by), n = noiseOf(p);
      if (better(k, n, bestK, bestN)) {
        bestK = k;
        bestN = n;
        best = {&c, &p};
      }
    }
  }
  return best;
}

// The slopes (noise added per unit of cost saved) of a layer's lower convex hull of
// (cost, noise) over the allowed points and the layer as it is: the multipliers λ at
// which the layer's choice changes.
void hullSlopes(const LayerCurves& L, const PlanOptions& o, std::vector<double>& out) {
  std::vector<std::pair<double, double>> pts = {{wholeCost(L, o.by), 0.0}};
  for (const Curve& c : L.curves)
    if (usable(c, o, false))
      for (const Point& p : c.points)
        if (std::isfinite(p.sqnrDb)) pts.emplace_back(cost(p, o.by), noiseOf(p));
  std::sort(pts.begin(), pts.end());
  std::vector<std::pair<double, double>> hull;  // cost ascending, noise strictly descending, convex
  for (const auto& p : pts) {
    if (!hull.empty() && !(p.second < hull.back().second)) continue;  // dominated
    while (hull.size() >= 2) {
      const auto& a = hull[hull.size() - 2];
      const auto& b = hull.back();
      // Keep b only if the step a -> b buys more noise per cost than b -> p.
      if ((a.second - b.second) * (p.first - b.first) > (b.second - p.second) * (b.first - a.first)) break;
      hull.pop_back();
    }
    hull.push_back(p);
  }
  for (size_t k = 1; k < hull.size(); ++k)
    out.push_back((hull[k - 1].second - hull[k].second) / (hull[k].first - hull[k - 1].first));
}

std::string whyAlone(const LayerCurves& L, const PlanOptions& o) {
  std::string why;
  bool any = false;
  for (const Curve& c : L.curves) {
    if (!allowed(o, c.method)) continue;
    if (c.refused.empty()) {
      any = true;
      continue;
    }
    if (!why.empty()) why += "; ";
    why += std::string(methodName(c.method)) + ": " + c.refused;
  }
  if (any) return "the target is met with less weight noise without it (or no point of its curves saves anything)";
  return why.empty() ? "no allowed method applies" : why;
}

Plan assemble(const std::vector<LayerCurves>& curves, const PlanOptions& o, const std::vector<Pick>& picks,
              const std::vector<std::string>& reasons) {
  Plan plan;
  plan.ratio = o.ratio;
  plan.by = o.by;
  plan.macsKnown = !curves.empty();
  for (size_t i = 0; i < curves.size(); ++i) {
    const LayerCurves& L = curves[i];
    LayerChoice c;
    c.layer = L.layer;
    c.paramsBefore = L.params;
    c.macsBefore = L.macs;
    if (L.macs == 0 && L.params > 0) plan.macsKnown = false;
    if (picks[i].point) {
      c.compressed = true;
      c.method = picks[i].curve->method;
      c.keep = picks[i].point->keep;
      c.params = picks[i].point->params;
      c.paramsRemovedElsewhere = picks[i].point->paramsRemovedElsewhere;
      c.macs = picks[i].point->macs;
      c.sqnrDb = picks[i].point->sqnrDb;
    } else {
      c.params = L.params;
      c.macs = L.macs;
      c.sqnrDb = kInf;
      c.leftAlone = reasons[i].empty() ? whyAlone(L, o) : reasons[i];
    }
    plan.paramsBefore += c.paramsBefore;
    plan.paramsAfter += c.params;
    plan.paramsAfter -= std::min(plan.paramsAfter, c.paramsRemovedElsewhere);
    plan.macsBefore += c.macsBefore;
    plan.macsAfter += c.macs;
    plan.layers.push_back(std::move(c));
  }
  return plan;
}

// Every layer's pick at multiplier λ, with the pruning / producer rule applied: a layer
// that would prune while its producer changes its own weight takes its best non-pruning
// point at λ instead.
std::vector<Pick> picksAt(const std::vector<LayerCurves>& curves, const PlanOptions& o, double lambda,
                          const std::unordered_map<std::string, size_t>& index) {
  std::vector<Pick> picks(curves.size());
  for (size_t i = 0; i < curves.size(); ++i) picks[i] = argminAt(curves[i], o, lambda, false);
  for (size_t i = 0; i < curves.size(); ++i) {
    if (!picks[i].curve || picks[i].curve->method != Method::ChannelPrune || picks[i].curve->producer.empty()) continue;
    auto p = index.find(picks[i].curve->producer);
    if (p == index.end() || p->second == i) continue;
    if (picks[p->second].point) picks[i] = argminAt(curves[i], o, lambda, true);
  }
  return picks;
}

double costOf(const LayerCurves& L, const Pick& pick, By by) { return pick.point ? cost(*pick.point, by) : wholeCost(L, by); }

double total(const std::vector<LayerCurves>& curves, const std::vector<Pick>& picks, By by) {
  double sum = 0;
  for (size_t i = 0; i < curves.size(); ++i) sum += costOf(curves[i], picks[i], by);
  return sum;
}

// Spends what the Lagrangian plan leaves of the budget: repeatedly, the move of one
// compressed layer along its own curve (a larger rank or more channels kept, or the layer
// as it is) that removes the most noise per unit of cost and still fits.
void fill(const std::vector<LayerCurves>& curves, const PlanOptions& o, std::vector<Pick>& picks, double target) {
  double left = target - total(curves, picks, o.by);
  for (;;) {
    size_t bestI = curves.size();
    Pick bestTo;
    double bestGain = 0, bestDk = 0;
    for (size_t i = 0; i < curves.size(); ++i) {
      if (!picks[i].point) continue;
      const double k0 = cost(*picks[i].point, o.by), n0 = noiseOf(*picks[i].point);
      auto consider = [&](const Pick& to, double k, double n) {
        const double dk = k - k0;
        if (!(dk > 0) || dk > left || !(n < n0)) return;
        const double gain = (n0 - n) / dk;
        if (gain > bestGain) {
          bestGain = gain;
          bestDk = dk;
          bestI = i;
          bestTo = to;
        }
      };
      for (const Point& p : picks[i].curve->points)
        if (std::isfinite(p.sqnrDb)) consider({picks[i].curve, &p}, cost(p, o.by), noiseOf(p));
      consider(Pick{}, wholeCost(curves[i], o.by), 0.0);
    }
    if (bestI == curves.size()) return;
    picks[bestI] = bestTo;
    left -= bestDk;
  }
}

// Why each layer left alone by the picks is: the producer of a pruned layer says so.
std::vector<std::string> producerReasons(const std::vector<LayerCurves>& curves, const std::vector<Pick>& picks,
                                         const std::unordered_map<std::string, size_t>& index) {
  std::vector<std::string> reasons(curves.size());
  for (size_t i = 0; i < curves.size(); ++i) {
    if (!picks[i].curve || picks[i].curve->method != Method::ChannelPrune || picks[i].curve->producer.empty()) continue;
    auto p = index.find(picks[i].curve->producer);
    if (p == index.end() || p->second == i || picks[p->second].point) continue;
    reasons[p->second] = "producer of pruned layer '" + curves[i].layer + "' (its matching output channels go)";
  }
  return reasons;
}

}  // namespace

Result<Plan> makePlan(const std::vector<LayerCurves>& curves, const PlanOptions& o) {
  if (!(o.ratio > 0 && o.ratio <= 1))
    return makeError(ErrorCode::InvalidArgument, "the ratio must be a fraction in (0, 1], the share of parameters to keep");
  double before = 0;
  for (const LayerCurves& L : curves) {
    if (o.by == By::Macs && L.macs == 0 && L.params > 0)
      return makeError(ErrorCode::Unsupported, "layer '" + L.layer +
                                                   "' has no known MACs (its input's spatial size does not follow from "
                                                   "static input shapes): plan by parameters instead (--by params)");
    before += wholeCost(L, o.by);
  }
  const double target = o.ratio * before;
  std::unordered_map<std::string, size_t> index;
  for (size_t i = 0; i < curves.size(); ++i) index.emplace(curves[i].layer, i);
  // The multipliers worth trying: every slope of every layer's hull, ascending (the
  // total only shrinks as λ grows).
  std::vector<double> lambdas = {0.0};
  for (const LayerCurves& L : curves) hullSlopes(L, o, lambdas);
  std::sort(lambdas.begin(), lambdas.end());
  lambdas.erase(std::unique(lambdas.begin(), lambdas.end()), lambdas.end());
  auto meets = [&](double lambda) { return total(curves, picksAt(curves, o, lambda, index), o.by) <= target; };
  double lambda = 0;
  if (!meets(0)) {
    if (!meets(kInf)) {
      const double least = total(curves, picksAt(curves, o, kInf, index), o.by);
      return makeError(ErrorCode::InvalidArgument, "no plan keeps only " + fraction(o.ratio) + " of the " + byName(o.by) +
                                                       ": the allowed methods reach " +
                                                       fraction(before > 0 ? least / before : 1.0) +
                                                       " at the least; ask for a larger ratio or allow more methods");
    }
    // The smallest λ that meets the target: among the slopes, else +inf (the cheapest points).
    size_t lo = 0, hi = lambdas.size();  // meets(lambdas[lo]) fails; lambdas[hi] (or +inf) meets
    while (hi - lo > 1) {
      const size_t mid = lo + (hi - lo) / 2;
      if (meets(lambdas[mid]))
        hi = mid;
      else
        lo = mid;
    }
    lambda = hi < lambdas.size() ? lambdas[hi] : kInf;
  }
  auto picks = picksAt(curves, o, lambda, index);
  fill(curves, o, picks, target);
  Plan plan = assemble(curves, o, picks, producerReasons(curves, picks, index));
  plan.thresholdDb = kInf;
  for (const LayerChoice& c : plan.layers)
    if (c.compressed) plan.thresholdDb = std::min(plan.thresholdDb, c.sqnrDb);
  return plan;
}

Plan uniformPlan(const std::vector<LayerCurves>& curves, const PlanOptions& o) {
  // Per layer: the largest point of the allowed methods whose cost is at most q of the
  // layer's; q the largest fraction (binary search) whose total meets the target.
  auto picksFor = [&](double q) {
    std::vector<Pick> picks(curves.size());
    for (size_t i = 0; i < curves.size(); ++i) {
      const LayerCurves& L = curves[i];
      const double whole = o.by == By::Macs ? double(L.macs) : double(L.params);
      double bestCost = -1;
      for (const Curve& c : L.curves) {
        if (!c.refused.empty() || !allowed(o, c.method) || c.method == Method::ChannelPrune) continue;
        for (const Point& p : c.points) {
          const double k = cost(p, o.by);
          if (std::isinf(p.sqnrDb) || k > q * whole || k <= bestCost) continue;
          bestCost = k;
          picks[i] = {&c, &p};
        }
      }
    }
    return picks;
  };
  double before = 0;
  for (const LayerCurves& L : curves) before += o.by == By::Macs ? double(L.macs) : double(L.params);
  double lo = 0, hi = 1;
  for (int it = 0; it < 50; ++it) {
    const double mid = (lo + hi) / 2;
    if (total(curves, picksFor(mid), o.by) <= o.ratio * before)
      lo = mid;
    else
      hi = mid;
  }
  Plan plan = assemble(curves, o, picksFor(lo), std::vector<std::string>(curves.size()));
  plan.thresholdDb = lo;  // here: the per-layer fraction
  return plan;
}

}  // namespace ql::compress
