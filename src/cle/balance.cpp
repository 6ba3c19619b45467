#include "cle/balance.hpp"

#include <algorithm>
#include <cmath>

#include "cle/scaling.hpp"

namespace ql::cle {

namespace {

// One layer of a sequence during the sweeps: its [A][B] range matrix. For 1x1
// kernels and matrices (most of a MobileNet's weights) that is the weight itself,
// scaled in place and read through fabs, which saves a copy as large as the weights.
struct SweepLayer {
  EqLayer* layer = nullptr;
  std::vector<float> ranges;  // max |w| over the kernel per (a, b); empty when in place

  float* matrix() { return ranges.empty() ? layer->w.data() : ranges.data(); }
  std::vector<double> outRanges() { return channelRanges(matrix(), layer->view, true); }
  std::vector<double> inRanges() { return channelRanges(matrix(), layer->view, false); }
  void divideOut(const std::vector<double>& s) {
    std::vector<double> inv(s.size());
    for (size_t o = 0; o < s.size(); ++o) {
      inv[o] = 1.0 / s[o];
      layer->outDiv[o] *= s[o];
    }
    scaleChannels(matrix(), layer->view, true, inv);
  }
  void multiplyIn(const std::vector<double>& s) {
    for (size_t i = 0; i < s.size(); ++i) layer->inMul[i] *= s[i];
    scaleChannels(matrix(), layer->view, false, s);
  }
};

class Sweeper {
 public:
  Sweeper(const Options& options, std::set<std::string>& deadSeen, Report& report)
      : opt_(options), deadSeen_(deadSeen), report_(report) {}

  double pair(SweepLayer& w1, SweepLayer& w2) {
    const auto r1 = w1.outRanges(), r2 = w2.inRanges();
    const PairScales p = pairScales(r1, r2, opt_.deadChannelRatio);
    for (size_t i = 0; i < r1.size(); ++i) {
      if (!p.live1[i]) dead(*w1.layer, true, i, r1[i]);
      if (!p.live2[i]) dead(*w2.layer, false, i, r2[i]);
    }
    w1.divideOut(p.s);
    w2.multiplyIn(p.s);
    return p.deviation;
  }

  double triple(SweepLayer& w0, SweepLayer& w1, SweepLayer& w2) {
    const auto r0 = w0.outRanges(), r1 = w1.outRanges(), r2 = w2.inRanges();
    const TripleScales t = tripleScales(r0, r1, r2, opt_.deadChannelRatio);
    for (size_t i = 0; i < r0.size(); ++i) {
      if (!t.live0[i]) dead(*w0.layer, true, i, r0[i]);
      if (!t.live1[i]) dead(*w1.layer, true, i, r1[i]);
      if (!t.live2[i]) dead(*w2.layer, false, i, r2[i]);
    }
    w0.divideOut(t.s12);
    w1.multiplyIn(t.s12);
    w1.divideOut(t.s23);
    w2.multiplyIn(t.s23);
    return t.deviation;
  }

 private:
  // Records a near-dead channel once (a non-finite range is left alone, not reported).
  void dead(const EqLayer& w, bool output, size_t i, double range) {
    const std::string& name = w.layer->name;
    if (std::isfinite(range) && deadSeen_.insert(name + (output ? "/out/" : "/in/") + std::to_string(i)).second)
      report_.deadChannels.push_back({name, static_cast<uint32_t>(i), output, static_cast<float>(range)});
  }

  const Options& opt_;
  std::set<std::string>& deadSeen_;
  Report& report_;
};

}  // namespace

void equalizeSequence(const std::vector<size_t>& chain, EqLayers& layers, const Chains& chains, const Options& options,
                      std::set<std::string>& deadSeen, Report& report) {
  std::vector<SweepLayer> sl(chain.size());
  for (size_t k = 0; k < chain.size(); ++k) {
    EqLayer& w = layers.items[chain[k]];
    sl[k].layer = &w;
    if (w.view.inner == 1)
      w.sweptInPlace = true;
    else
      sl[k].ranges = rangeMatrix(w.w, w.view);
  }
  Sequence seq;
  for (size_t k = 0; k < chain.size(); ++k) {
    seq.layers.push_back(layers.items[chain[k]].change);
    if (k + 1 < chain.size()) seq.links.push_back(chains.links.at(chain[k]).ops());
  }
  // A depthwise layer with a neighbour on each side is balanced as a triple.
  std::vector<bool> middle(chain.size(), false);
  for (size_t k = 1; options.triples && k + 1 < chain.size(); ++k) {
    if (layers.items[chain[k]].view.depthwise && !middle[k - 1]) middle[k] = true;
  }
  seq.triple = middle;
  Sweeper sweep(options, deadSeen, report);
  for (int it = 0; it < options.maxIterations; ++it) {
    double dev = 0;
    for (size_t k = 0; k + 1 < chain.size();) {
      if (k + 2 < chain.size() && middle[k + 1]) {
        dev = std::max(dev, sweep.triple(sl[k], sl[k + 1], sl[k + 2]));
        k += 2;
      } else {
        dev = std::max(dev, sweep.pair(sl[k], sl[k + 1]));
        k += 1;
      }
    }
    seq.iterations = it + 1;
    seq.lastChange = dev;
    if (dev < options.tolerance) {
      seq.converged = true;
      break;
    }
  }
  report.sequences.push_back(std::move(seq));
}

void applyScales(EqLayer& w) {
  if (w.change == SIZE_MAX) return;
  const bool identity = std::all_of(w.outDiv.begin(), w.outDiv.end(), [](double x) { return x == 1.0; }) &&
                        std::all_of(w.inMul.begin(), w.inMul.end(), [](double x) { return x == 1.0; });
  if (identity) return;
  if (!w.sweptInPlace)
    w.forEachRun([&](uint64_t o, uint64_t i, float* p, uint64_t cnt) {
      const float f = static_cast<float>(w.inMul[i] / w.outDiv[o]);
      for (uint64_t k = 0; k < cnt; ++k) p[k] *= f;
    });
  for (uint64_t o = 0; o < w.view.outC; ++o) w.b[o] = static_cast<float>(w.b[o] / w.outDiv[o]);
}

}  // namespace ql::cle
