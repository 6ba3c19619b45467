#include "cle/cle.hpp"

#include <algorithm>
#include <cmath>
#include <cstdio>
#include <cstdlib>
#include <cstring>
#include <map>
#include <set>
#include <unordered_map>
#include <unordered_set>

#include "graph/layers.hpp"
#include "graph/scope.hpp"
#include "graph/validate.hpp"
#include "onnx/model.hpp"
#include "onnx/tensor_data.hpp"
#include "onnx/writer.hpp"

namespace ql::cle {

using graph::FollowerKind;
using graph::input;
using graph::isOp;
using onnx::Node;
using onnx::Tensor;

namespace {

// A layer CLE may change: its weights as float32 in the stored layout, viewed as
// [A][B][inner]. Element (a, b) belongs to output channel out(a, b) and input channel
// in(a, b): Conv [O, I/g, k..] has out = a; ConvTranspose [I, O/g, k..], Gemm
// [K, N] and MatMul [K, N] have in = a; Gemm with transB [N, K] has out = a.
struct Work {
  const graph::Layer* layer = nullptr;
  bool convFamily = false;  // activations NC..., else channels last (Gemm, MatMul)
  uint64_t A = 0, B = 0, inner = 1, groups = 1;
  bool outIsA = true;
  uint64_t outC = 0, inC = 0;
  std::vector<float> w, b;
  bool hasBias = false, biasAdded = false, canAddBias = false;
  bool biasOwn = true;                 // the bias initializer is this layer's alone
  const Tensor* biasTensor = nullptr;
  const Node* biasNode = nullptr;      // the node whose input names the bias (the layer, or its Add)
  double alpha = 1, beta = 1;  // Gemm: Y = alpha A B + beta C; `b` holds beta C
  double biasScale = 1;        // what the stored bias is multiplied by: beta for Gemm's C, else 1
  bool padded = false;       // Conv with padding: high-bias absorption is not exact into it
  bool depthwiseMiddle = false;  // depthwise with one output per input channel
  std::string_view outValue;     // value its output goes by (after the bias Add, after a folded BN)
  const Node* outNode = nullptr; // node producing outValue (the layer, or its bias Add)
  std::vector<double> bnBeta, bnGamma;  // of a BatchNorm folded after it
  bool bnFolded = false;
  // CLE state
  std::vector<float> M;        // max |w| over the kernel per (a, b); unused for 1x1 (see mat())
  bool inSequence = false;     // its weights went through the sweeps
  std::vector<double> outDiv, inMul, absorbed;
  int prev = -1, next = -1;    // sequence links
  size_t change = SIZE_MAX;    // index in Report::layers
  uint64_t group(uint64_t a) const { return a / (A / groups); }
  uint64_t outOf(uint64_t a, uint64_t b) const { return outIsA ? a : group(a) * B + b; }
  uint64_t inOf(uint64_t a, uint64_t b) const { return outIsA ? group(a) * B + b : a; }
};

struct Link {
  std::vector<const Node*> path;
  std::vector<const Node*> relu6;  // Clip(0, 6) nodes on the path
  bool reluFirst = false;          // path starts with Relu (or a replaced ReLU6)
  bool absorbable = false;         // rest of the path commutes with subtracting a constant
};

std::string joinOps(const std::vector<const Node*>& path, const std::vector<const Node*>& relu6) {
  std::string s;
  for (const Node* n : path) {
    const bool replaced = std::find(relu6.begin(), relu6.end(), n) != relu6.end();
    s += (s.empty() ? "" : ", ") + (replaced ? std::string("ReLU6->Relu") : std::string(n->opType));
  }
  return s;
}

class Equalizer {
 public:
  Equalizer(const uint8_t* data, size_t size, const onnx::Model& model, const graph::Discovery& disc, const Options& opt)
      : data_(data), size_(size), model_(model), disc_(disc), opt_(opt) {}

  Result<Equalized> run() {
    const auto& g = model_.graph;
    scope_.index(g);
    for (const auto& o : g.outputs) graphOutputs_.insert(o.name);
    for (const auto& n : g.nodes)
      for (const auto& a : n.attributes) {
        if (a.g) capture(*a.g);
        for (const auto& sg : a.graphs) capture(sg);
      }
    for (const auto& t : g.initializers) initializers_[t.name] = &t;
    for (const auto& n : g.nodes) {
      for (auto v : n.inputs) names_.insert(std::string(v));
      for (auto v : n.outputs) names_.insert(std::string(v));
    }
    for (const auto& t : g.initializers) names_.insert(std::string(t.name));
    report_.layersSeen = disc_.layers.size();

    for (const auto& L : disc_.layers) {
      layerNodes_.insert(L.node);
      addCandidate(L);
    }
    for (auto& w : works_) foldBatchNormAfter(w);
    foldBatchNormsBefore();
    for (size_t i = 0; i < works_.size(); ++i) findLink(i);
    // Touched layers: BN folded, or in a sequence. Their "before" is after folding.
    for (auto& w : works_) {
      if (w.bnFolded || w.prev >= 0 || w.next >= 0) touch(w);
    }
    for (size_t i = 0; i < works_.size(); ++i) {
      if (works_[i].prev < 0 && works_[i].next >= 0) equalizeSequence(i);
    }
    for (auto& w : works_) applyScales(w);
    if (opt_.biasAbsorption) {
      for (auto& w : works_) {
        if (w.next >= 0) absorbHighBias(w);
      }
    }
    for (auto& w : works_) {
      if (w.change == SIZE_MAX) continue;
      auto& c = report_.layers[w.change];
      auto after = stats::computeLayerStats(reinterpret_cast<const uint8_t*>(w.w.data()), w.layer->layout, statOpts());
      if (!after.ok()) return after.error();
      c.after = std::move(after.value());
      c.outScale.assign(w.outDiv.begin(), w.outDiv.end());
      c.inScale.assign(w.inMul.begin(), w.inMul.end());
      c.absorbed.assign(w.absorbed.begin(), w.absorbed.end());
      c.biasAdded = w.biasAdded;
      c.batchNormFolded = w.bnFolded;
    }
    Equalized out;
    if (!report_.changed()) {
      out.model.assign(data_, data_ + size_);
    } else {
      auto bytes = write();
      if (!bytes.ok()) return bytes.error();
      out.model = std::move(bytes.value());
    }
    out.report = std::move(report_);
    return out;
  }

 private:
  stats::Options statOpts() const {
    stats::Options s;
    s.histogramBins = opt_.histogramBins;
    return s;
  }

  void capture(const onnx::Graph& sg) {
    for (const auto& n : sg.nodes) {
      for (auto v : n.inputs) captured_.insert(v);
      for (const auto& a : n.attributes) {
        if (a.g) capture(*a.g);
        for (const auto& s : a.graphs) capture(s);
      }
    }
  }

  size_t indexOf(const Node* n) const { return static_cast<size_t>(n - model_.graph.nodes.data()); }
  std::string nameOf(const Node* n) const { return graph::displayName(*n, indexOf(n)); }

  // Uses of a value in the main graph and sub-graphs, counting graph outputs.
  size_t uses(std::string_view v) const {
    return scope_.consumersOf(v).size() + captured_.count(v) + graphOutputs_.count(v);
  }

  void stop(const std::string& layer, const Node* at, const std::string& reason) {
    report_.stops.push_back({layer, at ? nameOf(at) : layer, at ? std::string(at->opType) : "", reason});
  }

  // The float32 contents of a main-graph initializer, or an error message.
  bool readFloats(const Tensor* t, std::vector<float>* out, std::string* why) {
    if (!t || !initializers_.count(t->name) || initializers_.at(t->name) != t) {
      *why = "is not an initializer of the main graph";
      return false;
    }
    if (t->external) {
      *why = "is stored as external data (not equalized)";
      return false;
    }
    if (t->dataType != onnx::kFloat) {
      *why = "is " + onnx::dataTypeName(t->dataType) + " (only float32 weights are equalized)";
      return false;
    }
    return readFloatData(*t, out, why);
  }

  static bool readFloatData(const Tensor& t, std::vector<float>* out, std::string* why) {
    auto v = onnx::readAsFloat(t);
    if (!v.ok()) {
      *why = v.error().message;
      return false;
    }
    *out = v->take();
    return true;
  }

  void addCandidate(const graph::Layer& L) {
    const std::string& nm = L.name;
    if (!L.path.empty()) return stop(nm, L.node, "inside a sub-graph (" + L.path + "): not equalized");
    if (L.quant.present) return stop(nm, L.node, "weights are quantized (" + std::string(L.quant.via) + "): not equalized");
    const std::string_view op = L.op;
    if (op != "Conv" && op != "ConvTranspose" && op != "Gemm" && op != "MatMul") return stop(nm, L.node, std::string(op) + " is not equalized");
    if (!L.via.empty()) return stop(nm, L.node, "weight reaches the layer through " + std::string(L.via[0]) + ": not equalized");
    Work w;
    w.layer = &L;
    const Node& n = *L.node;
    std::string why;
    if (!readFloats(L.weight, &w.w, &why)) return stop(nm, L.node, "weight " + std::string(L.weightName) + " " + why);
    if (uses(L.weightName) != 1) return stop(nm, L.node, "weight " + std::string(L.weightName) + " is shared with other nodes");
    const auto& d = L.shape;
    auto prod = [&](size_t from) {
      uint64_t p = 1;
      for (size_t i = from; i < d.size(); ++i) p *= static_cast<uint64_t>(d[i]);
      return p;
    };
    w.groups = static_cast<uint64_t>(L.groups);
    if (op == "Conv" || op == "ConvTranspose") {
      w.convFamily = true;
      w.A = static_cast<uint64_t>(d[0]);
      w.B = static_cast<uint64_t>(d[1]);
      w.inner = prod(2);
      w.outIsA = op == "Conv";
      if (w.A % w.groups) return stop(nm, L.node, "channels not divisible by group");
      w.canAddBias = true;
      if (op == "Conv") {
        const auto* pads = n.attribute("pads");
        const auto* autoPad = n.attribute("auto_pad");
        w.padded = (autoPad && autoPad->s != "NOTSET" && autoPad->s != "VALID") ||
                   (pads && std::any_of(pads->ints.begin(), pads->ints.end(), [](int64_t p) { return p != 0; }));
        w.depthwiseMiddle = L.depthwise && w.A == w.groups;
      } else {
        w.padded = true;  // not used as a target of absorption
      }
    } else {
      const bool weightLeft = op == "MatMul" && input(n, 1) != L.weightName;
      if (d.size() != 2 || weightLeft) return stop(nm, L.node, "MatMul with a weight of rank " + std::to_string(d.size()) + (weightLeft ? " on the left" : "") + ": not equalized");
      w.A = static_cast<uint64_t>(d[0]);
      w.B = static_cast<uint64_t>(d[1]);
      w.outIsA = op == "Gemm" && n.intAttr("transB", 0) != 0;
      w.groups = 1;
      w.canAddBias = op == "Gemm";
      if (op == "Gemm") {
        if (const auto* a = n.attribute("alpha"); a && a->hasF) w.alpha = a->f;
        if (const auto* a = n.attribute("beta"); a && a->hasF) w.beta = a->f;
        if (w.alpha == 0 || w.beta == 0) return stop(nm, L.node, "Gemm with alpha or beta 0: not equalized");
      }
      w.padded = op == "Gemm" && n.intAttr("transA", 0) != 0;  // as layer 2 its input would be transposed
    }
    w.outC = w.outIsA ? w.A : w.groups * w.B;
    w.inC = w.outIsA ? w.groups * w.B : w.A;
    if (w.outC == 0 || w.inC == 0) return stop(nm, L.node, "empty weight");
    w.outValue = n.outputs.empty() ? std::string_view{} : n.outputs[0];
    w.outNode = &n;
    // PyTorch's exporter shares identical biases (often zeros) between layers through
    // Identity nodes: such a layer gets a bias of its own in the written model.
    const Tensor* bias = L.bias ? L.bias : constantThroughIdentity(L.biasName);
    if (bias) {
      w.hasBias = true;
      w.biasTensor = bias;
      w.biasOwn = bias == L.bias && uses(L.biasName) == 1 && initializers_.count(bias->name) && initializers_.at(bias->name) == bias;
      if (bias->dataType != onnx::kFloat || bias->external) return stop(nm, L.node, "bias " + std::string(L.biasName) + " is not float32 stored in the file");
      if (!readFloatData(*bias, &w.b, &why)) return stop(nm, L.node, "bias " + std::string(L.biasName) + ": " + why);
      if (w.b.size() != w.outC) return stop(nm, L.node, "bias " + std::string(L.biasName) + " does not hold one value per output channel");
      w.biasNode = &n;
      if (L.biasAdd && bias == L.bias) {  // bias through an Add: that Add's output is the layer's
        w.outNode = L.biasAdd;
        w.biasNode = L.biasAdd;
        w.outValue = L.biasAdd->outputs[0];
      } else if (op == "Gemm") {
        w.biasScale = w.beta;
      }
      for (float& x : w.b) x = static_cast<float>(x * w.biasScale);
    } else if (!L.biasName.empty()) {
      return stop(nm, L.node, "bias " + std::string(L.biasName) + " is not a constant");
    } else {
      w.b.assign(w.outC, 0.0f);
    }
    w.outDiv.assign(w.outC, 1.0);
    w.inMul.assign(w.inC, 1.0);
    byNode_[L.node] = works_.size();
    works_.push_back(std::move(w));
  }

  const Tensor* constantThroughIdentity(std::string_view name) const {
    for (int step = 0; step < 16 && !name.empty(); ++step) {
      if (const Tensor* t = scope_.constant(name)) return t;
      const Node* p = scope_.producer(name);
      if (!isOp(p, "Identity")) return nullptr;
      name = input(*p, 0);
    }
    return nullptr;
  }

  // BatchNormalization parameters as per-channel f = gamma / sqrt(var + eps), plus
  // beta, gamma and mean; false (with a reason) when they cannot be folded.
  bool batchNormParams(const Node& bn, uint64_t channels, std::vector<double>* f, std::vector<double>* beta,
                       std::vector<double>* gamma, std::vector<double>* mean, std::string* why) {
    if (bn.intAttr("training_mode", 0) != 0) {
      *why = "BatchNormalization in training mode";
      return false;
    }
    if (bn.intAttr("spatial", 1) != 1) {
      *why = "BatchNormalization with spatial=0";
      return false;
    }
    for (size_t k = 1; k < bn.outputs.size(); ++k) {
      if (!bn.outputs[k].empty() && uses(bn.outputs[k])) {
        *why = "BatchNormalization's running statistics are used";
        return false;
      }
    }
    std::vector<double> p[4];
    for (int k = 0; k < 4; ++k) {
      const Tensor* t = scope_.constant(input(bn, 1 + k));
      if (!t) {
        *why = "BatchNormalization parameter " + std::string(input(bn, 1 + k)) + " is not a constant";
        return false;
      }
      auto v = onnx::readAsDouble(*t);
      if (!v.ok() || v->size() != channels) {
        *why = "BatchNormalization parameter " + std::string(t->name) + " does not hold one value per channel";
        return false;
      }
      p[k] = std::move(v.value());
    }
    double eps = 1e-5;
    if (const auto* a = bn.attribute("epsilon"); a && a->hasF) eps = a->f;
    f->resize(channels);
    for (uint64_t c = 0; c < channels; ++c) {
      const double s = std::sqrt(p[3][c] + eps);
      (*f)[c] = p[0][c] / s;
      if (!std::isfinite((*f)[c])) {
        *why = "BatchNormalization variance makes a non-finite scale";
        return false;
      }
    }
    *gamma = p[0];
    *beta = p[1];
    *mean = p[2];
    return true;
  }

  void removeBatchNorm(const Node& bn) {
    removeNodes_.push_back(indexOf(&bn));
    for (size_t k = 1; k <= 4; ++k) release(input(bn, k));
  }

  // One use of `name` goes away (a removed BatchNorm, a Clip become Relu); an
  // initializer whose every use went is removed from the written model.
  void release(std::string_view name) {
    if (name.empty() || !initializers_.count(name)) return;
    if (++released_[std::string(name)] == uses(name)) removeInits_.insert(std::string(name));
  }

  std::string newName(const std::string& base) {
    std::string n = base;
    for (int k = 1; names_.count(n); ++k) n = base + "_" + std::to_string(k);
    names_.insert(n);
    return n;
  }

  void foldBatchNormAfter(Work& w) {
    const auto& L = *w.layer;
    if (L.follower.kind != FollowerKind::BatchNorm) return;
    const Node& bn = *L.follower.node;
    std::vector<double> f, beta, gamma, mean;
    std::string why;
    if (uses(w.outValue) != 1) return stop(L.name, &bn, "BatchNormalization not folded: the layer's output is also used elsewhere");
    if (!w.hasBias && !w.canAddBias) return stop(L.name, &bn, "BatchNormalization after a MatMul without a bias Add is not folded");
    if (!batchNormParams(bn, w.outC, &f, &beta, &gamma, &mean, &why)) return stop(L.name, &bn, why + ": not folded");
    forEachIn(w, [&](uint64_t o, uint64_t, float* p, uint64_t cnt) {
      const float s = static_cast<float>(f[o]);
      for (uint64_t k = 0; k < cnt; ++k) p[k] *= s;
    });
    for (uint64_t o = 0; o < w.outC; ++o) w.b[o] = static_cast<float>(beta[o] + (w.b[o] - mean[o]) * f[o]);
    if (!w.hasBias) w.biasAdded = true;
    w.bnFolded = true;
    w.bnBeta = beta;
    w.bnGamma = gamma;
    // The producer of the layer's output now produces the BN's output.
    removeBatchNorm(bn);
    NodeEditRef(indexOf(w.outNode)).outputs = std::vector<std::string>{std::string(bn.outputs[0])};
    removeValueInfo_.insert(std::string(w.outValue));
    folded_.insert(&bn);
    w.outValue = bn.outputs[0];
    report_.foldedBatchNorms.push_back({nameOf(&bn), L.name, false});
  }

  void foldBatchNormsBefore() {
    for (const auto& bn : model_.graph.nodes) {
      if (!isOp(&bn, "BatchNormalization") || folded_.count(&bn) || bn.outputs.empty()) continue;
      const auto& cs = scope_.consumersOf(bn.outputs[0]);
      if (cs.size() != 1 || uses(bn.outputs[0]) != 1 || !byNode_.count(cs[0])) continue;
      Work& w = works_[byNode_[cs[0]]];
      const auto& L = *w.layer;
      if (input(*L.node, 0) != bn.outputs[0]) continue;
      std::string why;
      if (w.convFamily && (L.op != "Conv" || w.groups != 1 || w.padded))
        why = "BatchNormalization before a " + std::string(L.op) + (w.groups != 1 ? " with groups" : w.padded ? " with padding" : "") + " cannot be folded exactly";
      else if (L.op == "Gemm" && L.node->intAttr("transA", 0) != 0)
        why = "BatchNormalization before a Gemm with transA cannot be folded";
      else if (!w.hasBias && !w.canAddBias)
        why = "BatchNormalization before a MatMul without a bias Add is not folded";
      std::vector<double> f, beta, gamma, mean;
      if (why.empty() && !batchNormParams(bn, w.inC, &f, &beta, &gamma, &mean, &why)) why += ": not folded";
      if (!why.empty()) {
        stop(L.name, &bn, why);
        continue;
      }
      // b[o] += sum over (i, k) of W[o, i, k] * (beta_i - mean_i f_i), with W before scaling.
      std::vector<double> acc(w.outC, 0.0);
      forEachIn(w, [&](uint64_t o, uint64_t i, float* p, uint64_t cnt) {
        const double t = beta[i] - mean[i] * f[i];
        double s = 0;
        for (uint64_t k = 0; k < cnt; ++k) s += p[k];
        acc[o] += s * w.alpha * t;
        const float fi = static_cast<float>(f[i]);
        for (uint64_t k = 0; k < cnt; ++k) p[k] *= fi;
      });
      for (uint64_t o = 0; o < w.outC; ++o) w.b[o] = static_cast<float>(w.b[o] + acc[o]);
      if (!w.hasBias) w.biasAdded = true;
      w.bnFolded = true;  // its weights changed (no beta/gamma: nothing to absorb)
      removeBatchNorm(bn);
      editedInputs(w.layer->node)[0] = std::string(input(bn, 0));
      removeValueInfo_.insert(std::string(bn.outputs[0]));
      folded_.insert(&bn);
      report_.foldedBatchNorms.push_back({nameOf(&bn), L.name, true});
    }
  }

  // Calls fn(outChannel, inChannel, pointer, count) for each (a, b) run of `inner` weights.
  template <class F>
  void forEachIn(Work& w, F fn) {
    for (uint64_t a = 0; a < w.A; ++a)
      for (uint64_t b = 0; b < w.B; ++b) fn(w.outOf(a, b), w.inOf(a, b), &w.w[(a * w.B + b) * w.inner], w.inner);
  }

  // The inputs the written node will have, as edited so far (a copy of the node's to begin with).
  std::vector<std::string>& editedInputs(const Node* n) {
    auto& e = NodeEditRef(indexOf(n));
    if (!e.inputs) e.inputs.emplace(n->inputs.begin(), n->inputs.end());
    return *e.inputs;
  }

  onnx::NodeEdit& NodeEditRef(size_t index) {
    auto it = edits_.find(index);
    if (it == edits_.end()) {
      onnx::NodeEdit e;
      e.index = index;
      it = edits_.emplace(index, std::move(e)).first;
    }
    return it->second;
  }

  // Follows a layer's output through scale-commuting ops to the next layer.
  void findLink(size_t idx) {
    Work& w = works_[idx];
    const std::string& nm = w.layer->name;
    Link link;
    std::string_view v = w.outValue;
    bool first = true;
    for (int step = 0; step < 64; ++step) {
      if (v.empty()) return stop(nm, nullptr, "the layer has no output");
      if (graphOutputs_.count(v)) return stop(nm, nullptr, "its output " + std::string(v) + " is a graph output");
      if (captured_.count(v)) return stop(nm, nullptr, "its output " + std::string(v) + " is used inside a sub-graph");
      const auto& cs = scope_.consumersOf(v);
      if (cs.empty()) return stop(nm, nullptr, "its output is not used");
      if (cs.size() > 1) {
        std::string ops;
        for (const Node* c : cs) ops += (ops.empty() ? "" : ", ") + std::string(c->opType);
        return stop(nm, nullptr, "the path branches to " + std::to_string(cs.size()) + " consumers (" + ops + ")");
      }
      const Node* n = cs[0];
      if (byNode_.count(n)) {
        Work& t = works_[byNode_[n]];
        if (input(*n, 0) != v) return stop(nm, n, "reaches " + std::string(n->opType) + " other than as its data input");
        if (t.convFamily != w.convFamily) return stop(nm, n, "channel layouts differ (" + std::string(w.layer->op) + " to " + std::string(n->opType) + ")");
        if (t.inC != w.outC) return stop(nm, n, "channel counts differ (" + std::to_string(w.outC) + " to " + std::to_string(t.inC) + ")");
        if (n->opType == "Gemm" && n->intAttr("transA", 0) != 0) return stop(nm, n, "Gemm with transA");
        if (t.prev >= 0) return stop(nm, n, "the next layer already has an incoming sequence");
        for (const Node* c : link.relu6) {
          report_.relu6Replaced.push_back(nameOf(c));
          auto& e = NodeEditRef(indexOf(c));
          e.opType = std::string("Relu");
          e.inputs = std::vector<std::string>{std::string(c->inputs[0])};
          e.dropAttributes = {"min", "max"};
          for (size_t k = 1; k < c->inputs.size(); ++k) release(c->inputs[k]);
        }
        link.absorbable = link.absorbable && !t.padded && (t.hasBias || t.canAddBias);
        w.next = static_cast<int>(byNode_[n]);
        t.prev = static_cast<int>(idx);
        links_[idx] = link;
        return;
      }
      if (layerNodes_.count(n)) return stop(nm, n, "reaches " + nameOf(n) + ", a layer left out of equalization (see its own stop)");
      if (!isOp(n, n->opType)) return stop(nm, n, "custom-domain op " + std::string(n->opType));
      const std::string_view op = n->opType;
      static const std::set<std::string_view> kFollowed = {"Relu", "PRelu", "LeakyRelu", "Clip", "Identity", "Dropout", "MaxPool",
                                                           "AveragePool", "GlobalAveragePool", "GlobalMaxPool", "Pad"};
      if (!kFollowed.count(op)) {
        if (op == "Add" || op == "Sum") return stop(nm, n, std::string(op) + " (residual or branch merge) ends the sequence");
        if (op == "BatchNormalization") return stop(nm, n, "BatchNormalization that was not folded");
        return stop(nm, n, std::string(op) + " does not commute with per-channel scaling");
      }
      if (n->outputs.empty() || input(*n, 0) != v) return stop(nm, n, std::string(op) + " takes the value other than as its first input");
      for (size_t k = 1; k < n->outputs.size(); ++k) {
        if (!n->outputs[k].empty() && uses(n->outputs[k])) return stop(nm, n, std::string(op) + " has a second output in use");
      }
      bool relu = false;  // a Relu (or what becomes one): high-bias absorption can follow it
      const graph::Follower f = graph::classifyFollower(scope_, v);
      const bool padOrPool = op == "Pad" || op == "MaxPool" || op == "AveragePool" || op == "GlobalAveragePool" || op == "GlobalMaxPool";
      if (f.kind == FollowerKind::Relu || f.kind == FollowerKind::PRelu || f.kind == FollowerKind::LeakyRelu) {
        relu = f.kind == FollowerKind::Relu;
      } else if (f.kind == FollowerKind::Relu6) {
        if (opt_.keepRelu6) {
          report_.relu6Kept.push_back(nameOf(n));
          return stop(nm, n, "ReLU6 kept (keepRelu6): it does not commute with scaling");
        }
        link.relu6.push_back(n);
        relu = true;
      } else if (f.kind == FollowerKind::Clip) {
        if (!(f.clipMin == 0.0 && f.clipMax == INFINITY)) {  // Clip(0, inf) is Relu
          char buf[96];
          std::snprintf(buf, sizeof buf, "Clip(%g, %g) does not commute with scaling", f.clipMin, f.clipMax);
          return stop(nm, n, buf);
        }
        relu = true;
      } else if (padOrPool && !opt_.throughPadPool) {
        return stop(nm, n, std::string(op) + " (throughPadPool off)");
      } else if (op == "Pad") {
        std::string why = padCommutes(*n, w.convFamily);
        if (!why.empty()) return stop(nm, n, why);
      } else if (!(padOrPool || op == "Identity" || op == "Dropout")) {
        return stop(nm, n, std::string(op) + " does not commute with per-channel scaling");
      }
      // High-bias absorption needs a Relu first, then only ops that commute with
      // subtracting a constant (MaxPool pads with -inf; Identity, Dropout).
      if (first)
        link.reluFirst = link.absorbable = relu;
      else if (!(op == "MaxPool" || op == "Identity" || op == "Dropout"))
        link.absorbable = false;
      first = false;
      link.path.push_back(n);
      v = n->outputs[0];
    }
    stop(nm, nullptr, "path longer than 64 ops");
  }

  // A small constant vector: a constant tensor, or (as tf2onnx writes Pad amounts)
  // Concat / Cast / Identity / Squeeze / Unsqueeze of constants.
  // At most kMaxConstantValues values: pads and split sizes are short, and a Concat
  // that repeats its input at every level must not grow exponentially.
  static constexpr size_t kMaxConstantValues = 4096;
  bool constantValues(std::string_view name, std::vector<double>* out, int depth) {
    if (name.empty() || depth > 8 || out->size() > kMaxConstantValues) return false;
    if (const Tensor* t = scope_.constant(name)) {
      uint64_t count = 0;
      if (!t->elementCount(&count) || count > kMaxConstantValues - out->size()) return false;
      auto v = onnx::readAsDouble(*t);
      if (!v.ok()) return false;
      out->insert(out->end(), v->begin(), v->end());
      return true;
    }
    const Node* p = scope_.producer(name);
    if (isOp(p, "Concat") && p->intAttr("axis", 0) == 0) {
      for (auto in : p->inputs)
        if (!constantValues(in, out, depth + 1)) return false;
      return true;
    }
    if (isOp(p, "Split") && p->intAttr("axis", 0) == 0) {  // one piece of a split 1-D constant
      std::vector<double> all, sizes;
      if (!constantValues(input(*p, 0), &all, depth + 1)) return false;
      const size_t k = static_cast<size_t>(std::find(p->outputs.begin(), p->outputs.end(), name) - p->outputs.begin());
      if (const auto* a = p->attribute("split"); a && !a->ints.empty())
        sizes.assign(a->ints.begin(), a->ints.end());
      else if (!input(*p, 1).empty() && !constantValues(input(*p, 1), &sizes, depth + 1))
        return false;
      if (sizes.empty()) sizes.assign(p->outputs.size(), static_cast<double>(all.size() / std::max<size_t>(1, p->outputs.size())));
      if (k >= sizes.size()) return false;
      // Sizes come from the file: each must be a whole number from 0 to the input's
      // length, and the pieces before this one must fit, before anything is indexed.
      auto piece = [&](size_t i, size_t* out) {
        const double v = sizes[i];
        if (!(v >= 0 && v <= static_cast<double>(all.size())) || v != std::floor(v)) return false;
        *out = static_cast<size_t>(v);
        return true;
      };
      size_t from = 0, len = 0;
      for (size_t i = 0; i < k; ++i) {
        size_t n = 0;
        if (!piece(i, &n) || n > all.size() - from) return false;
        from += n;
      }
      if (!piece(k, &len) || len > all.size() - from) return false;
      out->insert(out->end(), all.begin() + from, all.begin() + from + len);
      return true;
    }
    if (isOp(p, "Cast") || isOp(p, "Identity") || isOp(p, "Squeeze") || isOp(p, "Unsqueeze")) return constantValues(input(*p, 0), out, depth + 1);
    return false;
  }

  // Empty when Pad keeps every channel's zero at zero and pads no channel.
  std::string padCommutes(const Node& n, bool convFamily) {
    std::string_view mode = "constant";
    if (const auto* a = n.attribute("mode"); a && a->hasS) mode = a->s;
    if (mode != "constant") return "Pad in " + std::string(mode) + " mode does not commute with scaling";
    double value = 0;
    if (const auto* a = n.attribute("value"); a && a->hasF) value = a->f;
    if (!input(n, 2).empty() && !graph::scalarConstant(scope_, input(n, 2), &value)) return "Pad value is not a constant";
    if (value != 0) return "Pad with a non-zero value does not commute with scaling";
    if (!input(n, 3).empty()) return "Pad with axes is not followed";
    std::vector<double> pads;
    if (const auto* a = n.attribute("pads"); a && !a->ints.empty()) {
      pads.assign(a->ints.begin(), a->ints.end());
    } else if (!constantValues(input(n, 1), &pads, 0)) {
      return "Pad amounts are not constant";
    }
    const size_t rank = pads.size() / 2;
    if (rank < 2 || pads.size() % 2) return "Pad amounts of odd length";
    const size_t ch = convFamily ? 1 : rank - 1;
    if (pads[ch] != 0 || pads[ch + rank] != 0) return "Pad pads the channel axis";
    return {};
  }

  void touch(Work& w) {
    if (w.change != SIZE_MAX) return;
    LayerChange c;
    c.name = w.layer->name;
    c.op = std::string(w.layer->op);
    c.weightName = std::string(w.layer->weightName);
    c.nodeIndex = w.layer->nodeIndex;
    auto before = stats::computeLayerStats(reinterpret_cast<const uint8_t*>(w.w.data()), w.layer->layout, statOpts());
    if (before.ok()) c.before = std::move(before.value());
    w.change = report_.layers.size();
    report_.layers.push_back(std::move(c));
  }

  // ---- scaling ----
  // The [A][B] matrix the sweeps work on: max|w| over the kernel; for 1x1 kernels and
  // matrices (most of a MobileNet's weights) the weights themselves, scaled in place
  // and read through fabs, which saves a copy as large as the weights.
  static bool inPlace(const Work& w) { return w.inner == 1; }
  static const float* mat(const Work& w) { return inPlace(w) ? w.w.data() : w.M.data(); }
  static float* mat(Work& w) { return inPlace(w) ? w.w.data() : w.M.data(); }
  void buildM(Work& w) {
    if (inPlace(w)) return;
    w.M.resize(w.A * w.B);
    for (uint64_t ab = 0; ab < w.A * w.B; ++ab) {
      const float* p = &w.w[ab * w.inner];
      float m = 0;
      for (uint64_t k = 0; k < w.inner; ++k) m = std::max(m, std::fabs(p[k]));
      w.M[ab] = m;
    }
  }
  // The four kernels of a sweep over a layer's range matrix M [A][B]. Row a's channel
  // mapping is fixed per row (the group of a), so the inner loops are plain runs.
  // `rowSide`: true for the side indexed by a (output for Conv and transB Gemm).
  std::vector<double> sideRange(const Work& w, bool output) const {
    const bool rowSide = output == w.outIsA;
    std::vector<float> r(output ? w.outC : w.inC, 0.0f);
    const uint64_t per = w.A / w.groups;
    for (uint64_t a = 0; a < w.A; ++a) {
      const float* m = mat(w) + a * w.B;
      if (rowSide) {
        float x = 0;
        for (uint64_t b = 0; b < w.B; ++b) x = std::max(x, std::fabs(m[b]));
        r[a] = std::max(r[a], x);
      } else {
        float* t = &r[(a / per) * w.B];
        for (uint64_t b = 0; b < w.B; ++b) t[b] = std::max(t[b], std::fabs(m[b]));
      }
    }
    return std::vector<double>(r.begin(), r.end());
  }
  std::vector<double> outRange(const Work& w) const { return sideRange(w, true); }
  std::vector<double> inRange(const Work& w) const { return sideRange(w, false); }
  // M's entries on channel c of one side times f[c].
  void scaleSide(Work& w, bool output, const std::vector<double>& f) {
    const bool rowSide = output == w.outIsA;
    const uint64_t per = w.A / w.groups;
    std::vector<float> ff(f.begin(), f.end());
    for (uint64_t a = 0; a < w.A; ++a) {
      float* m = mat(w) + a * w.B;
      if (rowSide) {
        const float x = ff[a];
        for (uint64_t b = 0; b < w.B; ++b) m[b] *= x;
      } else {
        const float* t = &ff[(a / per) * w.B];
        for (uint64_t b = 0; b < w.B; ++b) m[b] *= t[b];
      }
    }
  }
  void divideOut(Work& w, const std::vector<double>& s) {
    std::vector<double> inv(s.size());
    for (size_t o = 0; o < s.size(); ++o) {
      inv[o] = 1.0 / s[o];
      w.outDiv[o] *= s[o];
    }
    scaleSide(w, true, inv);
  }
  void multiplyIn(Work& w, const std::vector<double>& s) {
    for (size_t i = 0; i < s.size(); ++i) w.inMul[i] *= s[i];
    scaleSide(w, false, s);
  }

  // A range that takes part in balancing: finite, positive, and not near-dead within
  // its layer. Near-dead ones (zero included) are recorded once.
  bool live(const std::vector<double>& r, uint64_t i, double maxR, const Work& w, bool output) {
    const double x = r[i];
    if (std::isfinite(x) && x > 0 && x >= opt_.deadChannelRatio * maxR) return true;
    if (std::isfinite(x) && dead_.insert(w.layer->name + (output ? "/out/" : "/in/") + std::to_string(i)).second)
      report_.deadChannels.push_back({w.layer->name, static_cast<uint32_t>(i), output, static_cast<float>(x)});
    return false;
  }
  static double maxOf(const std::vector<double>& r) {
    double m = 0;
    for (double x : r)
      if (std::isfinite(x)) m = std::max(m, x);
    return m;
  }
  // The scale for a channel with a near-dead side, given T, the largest balanced range
  // of the live channels: the live side keeps its range, or is brought down to T when
  // it would set the layer's quantization grid alone. Balancing it against ~0 instead
  // would need scales of 1e10 (and a near-dead output channel's bias, divided by s,
  // would become an activation no INT8 grid holds); this bounds that growth by r / T.
  static double deadScale(double r1, bool live1, double r2, bool live2, double T) {
    if (live1 == live2 || !(T > 0) || !std::isfinite(T)) return 1;
    if (!live1) return r2 > T ? T / r2 : 1;  // layer 2's input channel shrinks (s < 1)
    return r1 > T ? r1 / T : 1;              // layer 1's output channel shrinks (s > 1)
  }

  double balancePair(Work& w1, Work& w2) {
    const auto r1 = outRange(w1), r2 = inRange(w2);
    const double m1 = maxOf(r1), m2 = maxOf(r2);
    std::vector<double> s(r1.size(), 1.0);
    std::vector<char> l1(r1.size()), l2(r1.size());
    double T = 0;
    for (uint64_t i = 0; i < s.size(); ++i) {
      l1[i] = live(r1, i, m1, w1, true);
      l2[i] = live(r2, i, m2, w2, false);
      if (l1[i] && l2[i]) {
        s[i] = std::sqrt(r1[i] / r2[i]);
        T = std::max(T, std::sqrt(r1[i] * r2[i]));
      }
    }
    double dev = 0;
    for (uint64_t i = 0; i < s.size(); ++i) {
      if (!(l1[i] && l2[i])) s[i] = deadScale(r1[i], l1[i], r2[i], l2[i], T);
      if (!std::isfinite(s[i]) || s[i] <= 0) s[i] = 1;
      dev = std::max(dev, std::fabs(s[i] - 1));
    }
    divideOut(w1, s);
    multiplyIn(w2, s);
    return dev;
  }

  double balanceTriple(Work& w0, Work& w1, Work& w2) {
    const auto r0 = outRange(w0), r1 = outRange(w1), r2 = inRange(w2);
    const double m0 = maxOf(r0), m1 = maxOf(r1), m2 = maxOf(r2);
    const uint64_t n = r0.size();
    std::vector<double> s12(n, 1.0), s23(n, 1.0);
    std::vector<char> l0(n), l1(n), l2(n);
    double T = 0;
    for (uint64_t i = 0; i < n; ++i) {
      l0[i] = live(r0, i, m0, w0, true);
      l1[i] = live(r1, i, m1, w1, true);
      l2[i] = live(r2, i, m2, w2, false);
      if (l0[i] && l1[i] && l2[i]) {
        const double c = std::cbrt(r0[i] * r1[i] * r2[i]);
        s12[i] = r0[i] / c;
        s23[i] = c / r2[i];
        T = std::max(T, c);
      }
    }
    double dev = 0;
    for (uint64_t i = 0; i < n; ++i) {
      if (!(l0[i] && l1[i] && l2[i])) {  // as two pairs, the dead side bounded by T
        s12[i] = l0[i] && l1[i] ? std::sqrt(r0[i] / r1[i]) : deadScale(r0[i], l0[i], r1[i], l1[i], T);
        const double mid = r1[i] * s12[i];
        s23[i] = l1[i] && l2[i] ? std::sqrt(mid / r2[i]) : deadScale(mid, l1[i], r2[i], l2[i], T);
      }
      if (!(std::isfinite(s12[i]) && s12[i] > 0)) s12[i] = 1;
      if (!(std::isfinite(s23[i]) && s23[i] > 0)) s23[i] = 1;
      dev = std::max({dev, std::fabs(s12[i] - 1), std::fabs(s23[i] - 1)});
    }
    divideOut(w0, s12);
    multiplyIn(w1, s12);
    divideOut(w1, s23);
    multiplyIn(w2, s23);
    return dev;
  }

  void equalizeSequence(size_t start) {
    std::vector<size_t> chain;
    for (int i = static_cast<int>(start); i >= 0; i = works_[i].next) chain.push_back(static_cast<size_t>(i));
    for (size_t i : chain) {
      buildM(works_[i]);
      works_[i].inSequence = true;
    }
    Sequence seq;
    for (size_t k = 0; k < chain.size(); ++k) {
      seq.layers.push_back(works_[chain[k]].change);
      if (k + 1 < chain.size()) seq.links.push_back(joinOps(links_[chain[k]].path, links_[chain[k]].relu6));
    }
    // A depthwise layer with a neighbour on each side is balanced as a triple.
    std::vector<bool> middle(chain.size(), false);
    for (size_t k = 1; opt_.triples && k + 1 < chain.size(); ++k) {
      if (works_[chain[k]].depthwiseMiddle && !middle[k - 1]) middle[k] = true;
    }
    seq.triple = middle;
    for (int it = 0; it < opt_.maxIterations; ++it) {
      double dev = 0;
      for (size_t k = 0; k + 1 < chain.size();) {
        if (k + 2 < chain.size() && middle[k + 1]) {
          dev = std::max(dev, balanceTriple(works_[chain[k]], works_[chain[k + 1]], works_[chain[k + 2]]));
          k += 2;
        } else {
          dev = std::max(dev, balancePair(works_[chain[k]], works_[chain[k + 1]]));
          k += 1;
        }
      }
      seq.iterations = it + 1;
      seq.lastChange = dev;
      if (dev < opt_.tolerance) {
        seq.converged = true;
        break;
      }
    }
    for (size_t i : chain) std::vector<float>().swap(works_[i].M);
    report_.sequences.push_back(std::move(seq));
  }

  void applyScales(Work& w) {
    if (w.change == SIZE_MAX) return;
    const bool identity = std::all_of(w.outDiv.begin(), w.outDiv.end(), [](double x) { return x == 1.0; }) &&
                          std::all_of(w.inMul.begin(), w.inMul.end(), [](double x) { return x == 1.0; });
    if (identity) return;
    if (!inPlace(w) || !w.inSequence) forEachIn(w, [&](uint64_t o, uint64_t i, float* p, uint64_t cnt) {
      const float f = static_cast<float>(w.inMul[i] / w.outDiv[o]);
      for (uint64_t k = 0; k < cnt; ++k) p[k] *= f;
    });
    for (uint64_t o = 0; o < w.outC; ++o) w.b[o] = static_cast<float>(w.b[o] / w.outDiv[o]);
  }

  void absorbHighBias(Work& w1) {
    const Link& link = links_[static_cast<size_t>(&w1 - works_.data())];
    if (!w1.bnFolded || w1.bnBeta.empty() || !link.reluFirst || !link.absorbable) return;
    Work& w2 = works_[static_cast<size_t>(w1.next)];
    std::vector<double> c(w1.outC, 0.0);
    bool any = false;
    for (uint64_t o = 0; o < w1.outC; ++o) {
      const double x = (w1.bnBeta[o] - 3 * std::fabs(w1.bnGamma[o])) / w1.outDiv[o];
      if (std::isfinite(x) && x > 0) {
        c[o] = x;
        any = true;
      }
    }
    if (!any) return;
    std::vector<double> add(w2.outC, 0.0);
    forEachIn(w2, [&](uint64_t o, uint64_t i, float* p, uint64_t cnt) {
      if (c[i] == 0) return;
      double s = 0;
      for (uint64_t k = 0; k < cnt; ++k) s += p[k];
      add[o] += s * w2.alpha * c[i];
    });
    for (uint64_t o = 0; o < w1.outC; ++o) w1.b[o] = static_cast<float>(w1.b[o] - c[o]);
    for (uint64_t o = 0; o < w2.outC; ++o) w2.b[o] = static_cast<float>(w2.b[o] + add[o]);
    if (!w2.hasBias) w2.biasAdded = true;
    w1.absorbed = c;
    if (!w1.hasBias) w1.biasAdded = true;
    ++report_.biasAbsorptions;
  }

  // ---- output ----
  static onnx::TensorData floatTensor(std::string name, std::vector<int64_t> dims, const std::vector<float>& v, double divide = 1) {
    onnx::TensorData t;
    t.name = std::move(name);
    t.dims = std::move(dims);
    t.dataType = onnx::kFloat;
    t.raw.resize(v.size() * 4);
    if (divide == 1) {
      std::memcpy(t.raw.data(), v.data(), t.raw.size());
    } else {
      for (size_t i = 0; i < v.size(); ++i) {
        const float x = static_cast<float>(v[i] / divide);
        std::memcpy(&t.raw[i * 4], &x, 4);
      }
    }
    return t;
  }

  Result<std::vector<uint8_t>> write() {
    onnx::GraphEdit edit;
    for (auto& w : works_) {
      if (w.change == SIZE_MAX) continue;
      edit.replaceInitializers.push_back(floatTensor(std::string(w.layer->weightName), w.layer->shape, w.w));
      if (w.hasBias && w.biasOwn) {
        edit.replaceInitializers.push_back(floatTensor(std::string(w.layer->biasName), w.biasTensor->dims, w.b, w.biasScale));
      } else if (w.hasBias) {  // shared: a copy of its own, named after the original
        const std::string name = newName(std::string(w.layer->biasName) + "_cle");
        edit.addInitializers.push_back(floatTensor(name, w.biasTensor->dims, w.b, w.biasScale));
        for (auto& i : editedInputs(w.biasNode))
          if (i == w.layer->biasName) i = name;
      } else if (w.biasAdded) {
        const std::string name = newName(std::string(w.layer->weightName) + "_bias");
        edit.addInitializers.push_back(floatTensor(name, {static_cast<int64_t>(w.outC)}, w.b, w.beta));
        auto& ins = editedInputs(w.layer->node);
        ins.resize(2);
        ins.push_back(name);
      }
      std::vector<float>().swap(w.w);
    }
    for (auto& [i, e] : edits_) edit.editNodes.push_back(std::move(e));
    edit.removeNodes = removeNodes_;
    edit.removeInitializers.assign(removeInits_.begin(), removeInits_.end());
    for (const auto& vi : model_.graph.valueInfo) {
      if (removeValueInfo_.count(std::string(vi.name))) edit.removeValueInfo.emplace_back(vi.name);
    }
    char meta[200];
    std::snprintf(meta, sizeof meta, "layers=%zu sequences=%zu bn_folded=%zu relu6_replaced=%zu bias_absorbed=%zu",
                  report_.layers.size(), report_.sequences.size(), report_.foldedBatchNorms.size(),
                  report_.relu6Replaced.size(), report_.biasAbsorptions);
    edit.metadata.push_back({"quantlens.cle", meta});
    return onnx::writeModel(data_, size_, model_, edit);
  }

  const uint8_t* data_;
  size_t size_;
  const onnx::Model& model_;
  const graph::Discovery& disc_;
  Options opt_;
  graph::Scope scope_;
  std::unordered_set<std::string_view> graphOutputs_, captured_;
  std::unordered_map<std::string_view, const Tensor*> initializers_;
  std::unordered_set<std::string> names_;
  std::vector<Work> works_;
  std::unordered_map<const Node*, size_t> byNode_;
  std::unordered_map<size_t, Link> links_;
  std::unordered_set<const Node*> folded_, layerNodes_;
  std::set<std::string> dead_;
  std::map<size_t, onnx::NodeEdit> edits_;
  std::vector<size_t> removeNodes_;
  std::set<std::string> removeInits_, removeValueInfo_;
  std::map<std::string, size_t> released_;
  Report report_;
};

}  // namespace

Result<Equalized> equalize(const uint8_t* data, size_t size, const Options& options) {
  if (options.maxIterations < 0 || !(options.tolerance >= 0) || !(options.deadChannelRatio >= 0) || options.histogramBins < 1 ||
      options.histogramBins > 4096)
    return makeError(ErrorCode::InvalidArgument, "CLE options out of range (maxIterations >= 0, tolerance >= 0, deadChannelRatio >= 0, histogramBins 1..4096)");
  auto model = onnx::parseModel(data, size);
  if (!model.ok()) return model.error();
  if (!model->hasGraph) return makeError(ErrorCode::InvalidModel, "the model has no graph");
  // A model we write must be a graph onnxruntime loads: refuse what is not one already.
  if (Error bad = graph::checkGraph(model.value()).firstError(); !bad.ok()) {
    bad.message = "not equalized: " + bad.message;
    return bad;
  }
  auto disc = graph::findLayers(model.value());
  if (!disc.ok()) return disc.error();
  Equalizer e(data, size, model.value(), disc.value(), options);
  auto out = e.run();
  if (!out.ok() || !out->report.changed()) return out;
  // And so is what we wrote, after every edit: parsed again and checked.
  auto written = onnx::parseModel(out->model.data(), out->model.size());
  Error bad = written.ok() ? graph::checkGraph(written.value()).firstError() : written.error();
  if (!bad.ok()) {
    return makeError(ErrorCode::InvalidGraph, "equalization would have written an invalid model, so nothing was written (a QuantLens bug: please report it with the model): " + bad.message);
  }
  return out;
}

}  // namespace ql::cle
