#include "cle/bias_absorption.hpp"

#include <cmath>

namespace ql::cle {

namespace {

void absorb(EqLayers& layers, const ModelIndex& index, EqLayer& w1, EqLayer& w2, const Link& link, Report& report) {
  if (!w1.bnFolded || w1.bnBeta.empty() || !link.reluFirst || !link.absorbable) return;
  const uint64_t n = w1.view.outC;
  std::vector<double> c(n, 0.0);
  bool any = false;
  for (uint64_t o = 0; o < n; ++o) {
    const double x = (w1.bnBeta[o] - 3 * std::fabs(w1.bnGamma[o])) / w1.outDiv[o];
    if (std::isfinite(x) && x > 0) {
      c[o] = x;
      any = true;
    }
  }
  if (!any) return;
  std::vector<double> add(w2.view.outC, 0.0);
  if (!layers.forEachRun(w2, index, [&](uint64_t o, uint64_t i, const float* p, uint64_t cnt) {
        if (c[i] == 0) return;
        double s = 0;
        for (uint64_t k = 0; k < cnt; ++k) s += p[k];
        add[o] += s * w2.alpha * c[i];
      }))
    return;
  for (uint64_t o = 0; o < n; ++o) w1.b[o] = static_cast<float>(w1.b[o] - c[o]);
  for (uint64_t o = 0; o < w2.view.outC; ++o) w2.b[o] = static_cast<float>(w2.b[o] + add[o]);
  if (!w2.hasBias) w2.biasAdded = true;
  w1.absorbed = c;
  if (!w1.hasBias) w1.biasAdded = true;
  ++report.biasAbsorptions;
}

}  // namespace

void absorbHighBias(EqLayers& layers, const ModelIndex& index, const Chains& chains, Report& report) {
  for (size_t i = 0; i < layers.items.size(); ++i) {
    if (chains.next[i] < 0) continue;
    absorb(layers, index, layers.items[i], layers.items[static_cast<size_t>(chains.next[i])], chains.links.at(i), report);
  }
}

}  // namespace ql::cle
