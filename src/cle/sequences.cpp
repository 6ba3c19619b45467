#include "cle/sequences.hpp"

#include <algorithm>
#include <cmath>
#include <cstdio>
#include <set>
#include <string_view>

#include "onnx/tensor_data.hpp"

namespace ql::cle {

namespace {

using graph::FollowerKind;
using graph::input;
using graph::isOp;
using onnx::Node;

// A small constant vector: a constant tensor, or (as tf2onnx writes Pad amounts)
// Concat / Cast / Identity / Squeeze / Unsqueeze of constants.
// At most kMaxConstantValues values: pads and split sizes are short, and a Concat
// that repeats its input at every level must not grow exponentially.
constexpr size_t kMaxConstantValues = 4096;
bool constantValues(const graph::Scope& scope, std::string_view name, std::vector<double>* out, int depth) {
  if (name.empty() || depth > 8 || out->size() > kMaxConstantValues) return false;
  if (const onnx::Tensor* t = scope.constant(name)) {
    uint64_t count = 0;
    if (!t->elementCount(&count) || count > kMaxConstantValues - out->size()) return false;
    auto v = onnx::readAsDouble(*t);
    if (!v.ok()) return false;
    out->insert(out->end(), v->begin(), v->end());
    return true;
  }
  const Node* p = scope.producer(name);
  if (isOp(p, "Concat") && p->intAttr("axis", 0) == 0) {
    for (auto in : p->inputs)
      if (!constantValues(scope, in, out, depth + 1)) return false;
    return true;
  }
  if (isOp(p, "Split") && p->intAttr("axis", 0) == 0) {  // one piece of a split 1-D constant
    std::vector<double> all, sizes;
    if (!constantValues(scope, input(*p, 0), &all, depth + 1)) return false;
    const size_t k = static_cast<size_t>(std::find(p->outputs.begin(), p->outputs.end(), name) - p->outputs.begin());
    if (const auto* a = p->attribute("split"); a && !a->ints.empty())
      sizes.assign(a->ints.begin(), a->ints.end());
    else if (!input(*p, 1).empty() && !constantValues(scope, input(*p, 1), &sizes, depth + 1))
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
  if (isOp(p, "Cast") || isOp(p, "Identity") || isOp(p, "Squeeze") || isOp(p, "Unsqueeze"))
    return constantValues(scope, input(*p, 0), out, depth + 1);
  return false;
}

// Empty when Pad keeps every channel's zero at zero and pads no channel.
std::string padCommutes(const graph::Scope& scope, const Node& n, bool convFamily) {
  std::string_view mode = "constant";
  if (const auto* a = n.attribute("mode"); a && a->hasS) mode = a->s;
  if (mode != "constant") return "Pad in " + std::string(mode) + " mode does not commute with scaling";
  double value = 0;
  if (const auto* a = n.attribute("value"); a && a->hasF) value = a->f;
  if (!input(n, 2).empty() && !graph::scalarConstant(scope, input(n, 2), &value)) return "Pad value is not a constant";
  if (value != 0) return "Pad with a non-zero value does not commute with scaling";
  if (!input(n, 3).empty()) return "Pad with axes is not followed";
  std::vector<double> pads;
  if (const auto* a = n.attribute("pads"); a && !a->ints.empty()) {
    pads.assign(a->ints.begin(), a->ints.end());
  } else if (!constantValues(scope, input(n, 1), &pads, 0)) {
    return "Pad amounts are not constant";
  }
  const size_t rank = pads.size() / 2;
  if (rank < 2 || pads.size() % 2) return "Pad amounts of odd length";
  const size_t ch = convFamily ? 1 : rank - 1;
  if (pads[ch] != 0 || pads[ch + rank] != 0) return "Pad pads the channel axis";
  return {};
}

class LinkFinder {
 public:
  LinkFinder(const EqLayers& layers, const ModelIndex& index, const Options& options, ModelEdits& edits, Report& report)
      : layers_(layers), index_(index), opt_(options), edits_(edits), report_(report) {
    chains_.prev.assign(layers.items.size(), -1);
    chains_.next.assign(layers.items.size(), -1);
  }

  Chains find() {
    for (size_t i = 0; i < layers_.items.size(); ++i) follow(i);
    return std::move(chains_);
  }

 private:
  void stop(const std::string& layer, const Node* at, std::string reason) {
    addStop(report_, index_, layer, at, std::move(reason));
  }

  // Follows layer idx's output through scale-commuting ops to the next layer.
  void follow(size_t idx) {
    const EqLayer& w = layers_.items[idx];
    const std::string& nm = w.layer->name;
    Link link;
    std::string_view v = w.outValue;
    bool first = true;
    for (int step = 0; step < 64; ++step) {
      if (v.empty()) return stop(nm, nullptr, "the layer has no output");
      if (index_.isGraphOutput(v)) return stop(nm, nullptr, "its output " + std::string(v) + " is a graph output");
      if (index_.usedInSubgraph(v)) return stop(nm, nullptr, "its output " + std::string(v) + " is used inside a sub-graph");
      const auto& cs = index_.scope().consumersOf(v);
      if (cs.empty()) return stop(nm, nullptr, "its output is not used");
      if (cs.size() > 1) {
        std::string ops;
        for (const Node* c : cs) ops += (ops.empty() ? "" : ", ") + std::string(c->opType);
        return stop(nm, nullptr, "the path branches to " + std::to_string(cs.size()) + " consumers (" + ops + ")");
      }
      const Node* n = cs[0];
      if (auto it = layers_.byNode.find(n); it != layers_.byNode.end()) return reach(idx, it->second, n, v, link);
      if (const graph::OpSpec* spec = graph::findOpSpec(*n); spec && spec->family == graph::OpFamily::Recurrent)
        return stop(nm, n, "reaches " + index_.nameOf(n) + ": " + std::string(kRecurrentStop));
      if (layers_.discovered.count(n))
        return stop(nm, n, "reaches " + index_.nameOf(n) + ", a layer left out of equalization (see its own stop)");
      if (!isOp(n, n->opType)) return stop(nm, n, "custom-domain op " + std::string(n->opType));
      const std::string_view op = n->opType;
      static const std::set<std::string_view> kFollowed = {
          "Relu",    "PRelu",       "LeakyRelu",         "Clip",          "Identity", "Dropout",
          "MaxPool", "AveragePool", "GlobalAveragePool", "GlobalMaxPool", "Pad"};
      if (!kFollowed.count(op)) {
        if (op == "Add" || op == "Sum") return stop(nm, n, std::string(op) + " (residual or branch merge) ends the sequence");
        if (op == "BatchNormalization") return stop(nm, n, "BatchNormalization that was not folded");
        return stop(nm, n, std::string(op) + " does not commute with per-channel scaling");
      }
      if (n->outputs.empty() || input(*n, 0) != v)
        return stop(nm, n, std::string(op) + " takes the value other than as its first input");
      for (size_t k = 1; k < n->outputs.size(); ++k) {
        if (!n->outputs[k].empty() && index_.uses(n->outputs[k]))
          return stop(nm, n, std::string(op) + " has a second output in use");
      }
      bool relu = false;  // a Relu (or what becomes one): high-bias absorption can follow it
      const graph::Follower f = graph::classifyFollower(index_.scope(), v);
      const bool padOrPool =
          op == "Pad" || op == "MaxPool" || op == "AveragePool" || op == "GlobalAveragePool" || op == "GlobalMaxPool";
      if (f.kind == FollowerKind::Relu || f.kind == FollowerKind::PRelu || f.kind == FollowerKind::LeakyRelu) {
        relu = f.kind == FollowerKind::Relu;
      } else if (f.kind == FollowerKind::Relu6) {
        if (opt_.keepRelu6) {
          report_.relu6Kept.push_back(index_.nameOf(n));
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
        std::string why = padCommutes(index_.scope(), *n, w.view.convFamily);
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

  // Layer idx's path reached layer `to` (node n) through value v: joins them, or says why not.
  void reach(size_t idx, size_t to, const Node* n, std::string_view v, Link& link) {
    const EqLayer& w = layers_.items[idx];
    const EqLayer& t = layers_.items[to];
    const std::string& nm = w.layer->name;
    if (input(*n, 0) != v) return stop(nm, n, "reaches " + std::string(n->opType) + " other than as its data input");
    if (t.view.convFamily != w.view.convFamily)
      return stop(nm, n, "channel layouts differ (" + std::string(w.layer->op) + " to " + std::string(n->opType) + ")");
    if (t.view.inC != w.view.outC)
      return stop(nm, n, "channel counts differ (" + std::to_string(w.view.outC) + " to " + std::to_string(t.view.inC) + ")");
    if (n->opType == "Gemm" && n->intAttr("transA", 0) != 0) return stop(nm, n, "Gemm with transA");
    if (chains_.prev[to] >= 0) return stop(nm, n, "the next layer already has an incoming sequence");
    for (const Node* c : link.relu6) {
      report_.relu6Replaced.push_back(index_.nameOf(c));
      auto& e = edits_.node(index_.indexOf(c));
      e.opType = std::string("Relu");
      e.inputs = std::vector<std::string>{std::string(c->inputs[0])};
      e.dropAttributes = {"min", "max"};
      for (size_t k = 1; k < c->inputs.size(); ++k) edits_.release(index_, c->inputs[k]);
    }
    link.absorbable = link.absorbable && !t.padded && (t.hasBias || t.view.canAddBias);
    chains_.next[idx] = static_cast<int>(to);
    chains_.prev[to] = static_cast<int>(idx);
    chains_.links[idx] = std::move(link);
  }

  const EqLayers& layers_;
  const ModelIndex& index_;
  const Options& opt_;
  ModelEdits& edits_;
  Report& report_;
  Chains chains_;
};

}  // namespace

std::string Link::ops() const {
  std::string s;
  for (const Node* n : path) {
    const bool replaced = std::find(relu6.begin(), relu6.end(), n) != relu6.end();
    s += (s.empty() ? "" : ", ") + (replaced ? std::string("ReLU6->Relu") : std::string(n->opType));
  }
  return s;
}

std::vector<std::vector<size_t>> Chains::sequences() const {
  std::vector<std::vector<size_t>> out;
  for (size_t i = 0; i < prev.size(); ++i) {
    if (prev[i] >= 0 || next[i] < 0) continue;
    std::vector<size_t> chain;
    for (int k = static_cast<int>(i); k >= 0; k = next[static_cast<size_t>(k)]) chain.push_back(static_cast<size_t>(k));
    out.push_back(std::move(chain));
  }
  return out;
}

Chains findSequences(const EqLayers& layers, const ModelIndex& index, const Options& options, ModelEdits& edits, Report& report) {
  return LinkFinder(layers, index, options, edits, report).find();
}

}  // namespace ql::cle
