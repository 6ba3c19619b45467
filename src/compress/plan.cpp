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

// The cheapest point of the allowed methods with SQNR >= t (pruning excluded when `noPrune`).
Pick cheapest(const LayerCurves& L, const PlanOptions& o, double t, bool noPrune) {
  Pick best;
  double bestCost = o.by == By::Macs ? double(L.macs) : double(L.params);
  for (const Curve& c : L.curves) {
    if (!c.refused.empty() || !allowed(o, c.method) || (noPrune && c.method == Method::ChannelPrune)) continue;
    for (const Point& p : c.points) {
      if (!(p.sqnrDb >= t) || std::isinf(p.sqnrDb)) continue;  // the +inf point is the layer as it is
      const double k = cost(p, o.by);
      if (k < bestCost) {
        bestCost = k;
        best = {&c, &p};
      }
    }
  }
  return best;
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
  if (any) return "every point of its curves is below the threshold or saves nothing";
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

// Every layer's pick at threshold t, with the pruning / producer rule applied.
std::vector<Pick> picksAt(const std::vector<LayerCurves>& curves, const PlanOptions& o, double t,
                          std::vector<std::string>* reasons) {
  std::vector<Pick> picks(curves.size());
  std::unordered_map<std::string, size_t> index;
  for (size_t i = 0; i < curves.size(); ++i) index.emplace(curves[i].layer, i);
  for (size_t i = 0; i < curves.size(); ++i) picks[i] = cheapest(curves[i], o, t, false);
  if (reasons) reasons->assign(curves.size(), "");
  for (size_t i = 0; i < curves.size(); ++i) {
    if (!picks[i].curve || picks[i].curve->method != Method::ChannelPrune || picks[i].curve->producer.empty()) continue;
    auto p = index.find(picks[i].curve->producer);
    if (p == index.end() || p->second == i) continue;
    if (picks[p->second].point) {  // the producer changes its own weight: no pruning here
      picks[i] = cheapest(curves[i], o, t, true);
    } else if (reasons) {
      (*reasons)[p->second] = "producer of pruned layer '" + curves[i].layer + "' (its matching output channels go)";
    }
  }
  return picks;
}

double total(const std::vector<LayerCurves>& curves, const std::vector<Pick>& picks, By by) {
  double sum = 0;
  for (size_t i = 0; i < curves.size(); ++i) {
    if (picks[i].point)
      sum += cost(*picks[i].point, by);
    else
      sum += by == By::Macs ? double(curves[i].macs) : double(curves[i].params);
  }
  return sum;
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
    before += o.by == By::Macs ? double(L.macs) : double(L.params);
  }
  const double target = o.ratio * before;
  // The thresholds worth trying: every finite SQNR of an allowed point, ascending.
  std::vector<double> ts;
  for (const LayerCurves& L : curves)
    for (const Curve& c : L.curves)
      if (c.refused.empty() && allowed(o, c.method))
        for (const Point& p : c.points)
          if (std::isfinite(p.sqnrDb)) ts.push_back(p.sqnrDb);
  std::sort(ts.begin(), ts.end());
  ts.erase(std::unique(ts.begin(), ts.end()), ts.end());
  auto meets = [&](double t) { return total(curves, picksAt(curves, o, t, nullptr), o.by) <= target; };
  double t = kInf;
  if (!meets(kInf)) {
    if (ts.empty() || !meets(-kInf)) {
      const double least = total(curves, picksAt(curves, o, -kInf, nullptr), o.by);
      return makeError(ErrorCode::InvalidArgument, "no plan keeps only " + fraction(o.ratio) + " of the " + byName(o.by) +
                                                       ": the allowed methods reach " +
                                                       fraction(before > 0 ? least / before : 1.0) +
                                                       " at the least; ask for a larger ratio or allow more methods");
    }
    // The largest t in ts that meets the target (meets(ts[0]) holds: every point of a curve is >= ts[0]).
    size_t lo = 0, hi = ts.size();  // meets(ts[lo]) holds; ts[hi] (if any) does not
    while (hi - lo > 1) {
      const size_t mid = lo + (hi - lo) / 2;
      if (meets(ts[mid]))
        lo = mid;
      else
        hi = mid;
    }
    t = ts[lo];
  }
  std::vector<std::string> reasons;
  auto picks = picksAt(curves, o, t, &reasons);
  Plan plan = assemble(curves, o, picks, reasons);
  plan.thresholdDb = t;
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
