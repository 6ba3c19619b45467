#include "cle/balance.hpp"

#include <algorithm>
#include <cmath>

#include "cle/scaling.hpp"

namespace ql::cle {

namespace {

// One layer of a sequence during the sweeps, in one of three forms:
//  - its [A][B] range matrix (kernels of more than one element);
//  - for 1x1 kernels and matrices (most of a MobileNet's weights), the weight itself,
//    held and scaled in place and read through fabs, which saves a copy as large as the
//    weights. Only a layer inside the sequence (both sides scaled) is held so: those are
//    small in practice (VGG-16's fc7 is 4096x4096, 67 MB);
//  - for such a layer at an end of the sequence (one side scaled: the first layer's
//    output channels, the last one's input channels), that side's channel ranges alone.
//    For a positive finite factor f, rounding being monotonic, the largest fl(|w| f)
//    of a channel is fl(max|w| f): the ranges scale exactly as the elements would, and
//    each scaling is recorded (EqLayers::multiply) to be replayed on the elements when
//    they are read again. A factor that is not positive and finite (0 * inf is NaN,
//    which max ignores) makes the layer held first, as above.
struct SweepLayer {
  EqLayer* layer = nullptr;
  EqLayers* layers = nullptr;
  const ModelIndex* index = nullptr;
  std::vector<float> ranges;  // max |w| over the kernel per (a, b); empty when in place
  bool vector = false;        // `side` holds the channel ranges of the one side scaled
  std::vector<float> side;

  float* matrix() { return ranges.empty() ? layer->w.data() : ranges.data(); }
  std::vector<double> outRanges() {
    if (vector) return std::vector<double>(side.begin(), side.end());
    return channelRanges(matrix(), layer->view, true);
  }
  std::vector<double> inRanges() {
    if (vector) return std::vector<double>(side.begin(), side.end());
    return channelRanges(matrix(), layer->view, false);
  }
  void divideOut(const std::vector<double>& s) {
    std::vector<double> inv(s.size());
    for (size_t o = 0; o < s.size(); ++o) {
      inv[o] = 1.0 / s[o];
      layer->outDiv[o] *= s[o];
    }
    scale(true, inv);
  }
  void multiplyIn(const std::vector<double>& s) {
    for (size_t i = 0; i < s.size(); ++i) layer->inMul[i] *= s[i];
    scale(false, s);
  }

 private:
  void scale(bool output, const std::vector<double>& f) {
    if (vector) {
      std::vector<float> ff(f.begin(), f.end());
      const bool exact = std::all_of(ff.begin(), ff.end(), [](float x) { return x > 0 && std::isfinite(x); });
      if (exact) {
        for (size_t c = 0; c < ff.size(); ++c) side[c] *= ff[c];
        layers->multiply(*layer, {output ? EqLayer::ChannelOp::Out : EqLayer::ChannelOp::In, std::move(ff)});
        return;
      }
      vector = false;
      std::vector<float>().swap(side);
      if (!layers->hold(*layer, *index)) {
        // Cannot be held (the error is returned once the sweeps end): the factor is
        // recorded as it is, the layer's result is not used.
        layers->multiply(*layer, {output ? EqLayer::ChannelOp::Out : EqLayer::ChannelOp::In, std::move(ff)});
        vector = true;
        side.assign(output ? layer->view.outC : layer->view.inC, 0.0f);
        return;
      }
    }
    scaleChannels(matrix(), layer->view, output, f);
  }
};

// The range matrix of a weight, read through EqLayers::stream.
std::vector<float> streamedRangeMatrix(EqLayer& w, EqLayers& layers, const ModelIndex& index) {
  const WeightView& v = w.view;
  std::vector<float> m(v.A * v.B);
  layers.stream(w, index, v.inner, [&](uint64_t first, const float* x, uint64_t count) {
    rangeEntries(x, first / v.inner, count / v.inner, v, m.data());
    return true;
  });
  return m;
}

// The channel ranges of one side of a 1x1 weight (channelRanges of the weight itself),
// read through EqLayers::stream.
std::vector<float> streamedSideRanges(EqLayer& w, EqLayers& layers, const ModelIndex& index, bool output) {
  const WeightView& v = w.view;
  std::vector<float> r(output ? v.outC : v.inC, 0.0f);
  layers.stream(w, index, 0, [&](uint64_t first, const float* x, uint64_t count) {
    takeChannelRanges(x, first / v.B, (first + count) / v.B, v, output, r.data());
    return true;
  });
  return r;
}

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

bool equalizeSequence(const std::vector<size_t>& chain, EqLayers& layers, const ModelIndex& index, const Chains& chains,
                      const Options& options, std::set<std::string>& deadSeen, Report& report) {
  std::vector<SweepLayer> sl(chain.size());
  for (size_t k = 0; k < chain.size(); ++k) {
    EqLayer& w = layers.items[chain[k]];
    sl[k].layer = &w;
    sl[k].layers = &layers;
    sl[k].index = &index;
    if (w.view.inner == 1) {
      w.sweptInPlace = true;
      const bool first = k == 0, last = k + 1 == chain.size();
      if (w.streamed && first != last) {  // one side scaled: its ranges stand for the weight
        sl[k].vector = true;
        sl[k].side = streamedSideRanges(w, layers, index, first);
      } else if (!layers.hold(w, index)) {
        return false;
      }
    } else {
      sl[k].ranges = streamedRangeMatrix(w, layers, index);
    }
    if (!layers.error.ok()) return false;
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
  return layers.error.ok();
}

void applyScales(EqLayer& w, EqLayers& layers) {
  if (w.change == SIZE_MAX) return;
  const bool identity = std::all_of(w.outDiv.begin(), w.outDiv.end(), [](double x) { return x == 1.0; }) &&
                        std::all_of(w.inMul.begin(), w.inMul.end(), [](double x) { return x == 1.0; });
  if (identity) return;
  if (!w.sweptInPlace) layers.multiply(w, {EqLayer::ChannelOp::Scales, {}});
  for (uint64_t o = 0; o < w.view.outC; ++o) w.b[o] = static_cast<float>(w.b[o] / w.outDiv[o]);
}

}  // namespace ql::cle
