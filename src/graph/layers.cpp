#include "graph/layers.hpp"

#include <algorithm>
#include <numeric>
#include <unordered_map>
#include <unordered_set>

#include "graph/scope.hpp"
#include "graph/validate.hpp"
#include "onnx/tensor_data.hpp"

namespace ql::graph {

using onnx::Graph;
using onnx::Node;
using onnx::Tensor;

const char* recurrentPartName(RecurrentPart part) {
  switch (part) {
    case RecurrentPart::None:
      return "";
    case RecurrentPart::W:
      return "W";
    case RecurrentPart::R:
      return "R";
  }
  return "";
}

std::string recurrentLayerName(std::string_view node, RecurrentPart part) {
  return std::string(node) + "/" + recurrentPartName(part);
}

const char* followerKindName(FollowerKind kind) {
  switch (kind) {
    case FollowerKind::None:
      return "none";
    case FollowerKind::Multiple:
      return "multiple";
    case FollowerKind::BatchNorm:
      return "batchnorm";
    case FollowerKind::Relu:
      return "relu";
    case FollowerKind::Relu6:
      return "relu6";
    case FollowerKind::Clip:
      return "clip";
    case FollowerKind::PRelu:
      return "prelu";
    case FollowerKind::LeakyRelu:
      return "leakyrelu";
    case FollowerKind::SiLU:
      return "silu";
    case FollowerKind::Other:
      return "other";
  }
  return "other";
}

void Scope::index(const Graph& g) {
  graph = &g;
  for (const auto& t : g.initializers) constants[t.name] = &t;
  // A sub-graph's inputs are bound at run time by If/Loop/Scan; main-graph inputs
  // that are also initializers are weights (old exporters list them as inputs).
  if (parent) {
    for (const auto& in : g.inputs) formals.insert(in.name);
  }
  for (const auto& in : g.inputs) inputs.insert(in.name);
  for (const auto& n : g.nodes) {
    for (auto o : n.outputs) {
      if (!o.empty()) producers[o] = &n;
    }
    if (isOp(&n, "Constant") && !n.outputs.empty()) {
      if (const auto* a = n.attribute("value"); a && a->t) constants[n.outputs[0]] = a->t.get();
    }
    for (auto i : n.inputs) {
      if (!i.empty()) consumers[i].push_back(&n);
    }
  }
}

const Tensor* Scope::constant(std::string_view name) const {
  for (const Scope* s = this; s; s = s->parent) {
    // shadowed by a computed value, or by a sub-graph's formal input
    if ((s->producers.count(name) || s->formals.count(name)) && !s->constants.count(name)) return nullptr;
    auto it = s->constants.find(name);
    if (it != s->constants.end()) return it->second;
  }
  return nullptr;
}

const Node* Scope::producer(std::string_view name) const {
  for (const Scope* s = this; s; s = s->parent) {
    auto it = s->producers.find(name);
    if (it != s->producers.end()) return it->second;
  }
  return nullptr;
}

bool Scope::defined(std::string_view name) const {
  for (const Scope* s = this; s; s = s->parent) {
    if (s->constants.count(name) || s->producers.count(name) || s->inputs.count(name)) return true;
  }
  return false;
}

bool Scope::isInput(std::string_view name) const {
  for (const Scope* s = this; s; s = s->parent) {
    if (s->producers.count(name) || s->constants.count(name)) return false;  // shadowed
    if (s->inputs.count(name)) return true;
  }
  return false;
}

const std::vector<const Node*>& Scope::consumersOf(std::string_view name) const {
  static const std::vector<const Node*> none;
  auto it = consumers.find(name);
  return it == consumers.end() ? none : it->second;
}

std::string displayName(const Node& n, size_t index) {
  if (!n.name.empty()) return std::string(n.name);
  return std::string(n.opType) + "#" + std::to_string(index);
}

std::string subgraphPath(const std::string& path, const Node& n, size_t index, std::string_view attr, int64_t k) {
  std::string base = (path.empty() ? "" : path + "/") + displayName(n, index) + "/" + std::string(attr);
  return k < 0 ? base : base + "[" + std::to_string(k) + "]";
}

bool isOp(const Node* n, std::string_view op) { return n && n->opType == op && (n->domain.empty() || n->domain == "ai.onnx"); }

std::string_view input(const Node& n, size_t i) { return i < n.inputs.size() ? n.inputs[i] : std::string_view{}; }
std::string_view input(const Node& n, int i) { return i < 0 ? std::string_view{} : input(n, static_cast<size_t>(i)); }

// A scalar constant: an initializer / Constant tensor with one element, or a
// Constant node's value_float / value_int. Returns false when not constant.
bool scalarConstant(const Scope& scope, std::string_view name, double* out) {
  if (name.empty()) return false;
  if (const Tensor* t = scope.constant(name)) {
    auto v = onnx::readAsDouble(*t);
    if (!v.ok() || v->size() != 1) return false;
    *out = v.value()[0];
    return true;
  }
  const Node* p = scope.producer(name);
  if (isOp(p, "Constant")) {
    for (const auto& a : p->attributes) {
      if (a.name == "value_float" && a.hasF) {
        *out = a.f;
        return true;
      }
      if (a.name == "value_int" && a.hasI) {
        *out = static_cast<double>(a.i);
        return true;
      }
    }
  }
  return false;
}

// Classifies the consumers of `value`. Clip(0, 6) is ReLU6 whether its bounds are
// attributes (opset < 11) or inputs (opset >= 11): the single place that decides it.
Follower classifyFollower(const Scope& scope, std::string_view value) {
  Follower f;
  const auto& cs = scope.consumersOf(value);
  if (cs.empty()) return f;
  auto name = [&](const Node* n) { return displayName(*n, static_cast<size_t>(n - scope.graph->nodes.data())); };
  if (cs.size() == 2) {
    const Node* sig = isOp(cs[0], "Sigmoid") ? cs[0] : isOp(cs[1], "Sigmoid") ? cs[1] : nullptr;
    const Node* mul = isOp(cs[0], "Mul") ? cs[0] : isOp(cs[1], "Mul") ? cs[1] : nullptr;
    if (sig && mul && !sig->outputs.empty() &&
        std::find(mul->inputs.begin(), mul->inputs.end(), sig->outputs[0]) != mul->inputs.end()) {
      f.kind = FollowerKind::SiLU;
      f.node = mul;
      f.name = name(mul);
      return f;
    }
  }
  if (cs.size() > 1) {
    f.kind = FollowerKind::Multiple;
    return f;
  }
  const Node* n = cs[0];
  f.node = n;
  f.name = name(n);
  // A custom-domain op that shares a name with a standard one is not that op.
  const std::string_view op = (n->domain.empty() || n->domain == "ai.onnx") ? n->opType : std::string_view{};
  if (op == "BatchNormalization")
    f.kind = FollowerKind::BatchNorm;
  else if (op == "Relu")
    f.kind = FollowerKind::Relu;
  else if (op == "PRelu")
    f.kind = FollowerKind::PRelu;
  else if (op == "LeakyRelu")
    f.kind = FollowerKind::LeakyRelu;
  else if (op == "Clip") {
    double lo = -INFINITY, hi = INFINITY;
    if (const auto* a = n->attribute("min"); a && a->hasF) lo = a->f;
    if (const auto* a = n->attribute("max"); a && a->hasF) hi = a->f;
    double v;
    if (scalarConstant(scope, input(*n, 1), &v)) lo = v;
    if (scalarConstant(scope, input(*n, 2), &v)) hi = v;
    f.clipMin = lo;
    f.clipMax = hi;
    f.kind = (lo == 0.0 && hi == 6.0) ? FollowerKind::Relu6 : FollowerKind::Clip;
  } else {
    f.kind = FollowerKind::Other;
  }
  return f;
}

namespace {

struct WeightTrace {
  const Tensor* tensor = nullptr;
  std::string_view name;  // the value name the stored tensor goes by in the graph
  std::vector<std::string_view> via;
  std::vector<int> axisMap;  // op axis -> stored axis
  Quantization quant;
};

// Follows a weight input back through Identity, Cast, Transpose and DequantizeLinear
// to the stored tensor. Returns false when the input is not a constant; `why` is
// then set when it is one, but reached in a way we do not analyse.
bool traceWeight(const Scope& scope, std::string_view name, WeightTrace* tr, std::string* why) {
  std::vector<const Node*> chain;
  for (int step = 0; step < 32 && !name.empty(); ++step) {
    if (const Tensor* t = scope.constant(name)) {
      tr->tensor = t;
      tr->name = name;
      break;
    }
    const Node* p = scope.producer(name);
    if (!p || p->inputs.empty()) return false;
    if (!findWeightPathSpec(p)) return false;
    chain.push_back(p);
    name = p->inputs[0];
  }
  if (!tr->tensor) return false;
  const size_t rank = tr->tensor->dims.size();
  // Walk from the stored tensor towards the layer, composing the axis map.
  // stored[k] = axis of the stored tensor that axis k of the current value came from.
  std::vector<int> stored(rank);
  std::iota(stored.begin(), stored.end(), 0);
  for (auto it = chain.rbegin(); it != chain.rend(); ++it) {
    const Node* p = *it;
    const WeightPathSpec& ps = *findWeightPathSpec(p);
    tr->via.push_back(p->opType);
    if (ps.kind == WeightPathKind::Transpose) {
      if (tr->quant.present) {  // per-axis parameters would then refer to another layout
        *why = "weight is transposed after DequantizeLinear";
        return false;
      }
      const onnx::Attribute* perm = p->attribute("perm");
      std::vector<int64_t> pv;
      if (perm && !perm->ints.empty())
        pv = perm->ints;
      else
        for (size_t i = rank; i-- > 0;) pv.push_back(static_cast<int64_t>(i));  // default: reverse
      if (pv.size() != rank) {
        *why = "Transpose perm does not match the weight's rank";
        return false;
      }
      std::vector<int> next(rank);
      for (size_t k = 0; k < rank; ++k) {
        if (pv[k] < 0 || pv[k] >= static_cast<int64_t>(rank)) {
          *why = "Transpose perm out of range";
          return false;
        }
        next[k] = stored[pv[k]];  // output axis k is input axis perm[k]
      }
      stored = next;
    } else if (ps.kind == WeightPathKind::Dequantize) {
      if (tr->quant.present || !std::is_sorted(stored.begin(), stored.end())) {
        *why = tr->quant.present ? "weight is dequantized twice" : "weight is transposed before DequantizeLinear";
        return false;
      }
      tr->quant.present = true;
      tr->quant.via = p->opType;
      tr->quant.scale = scope.constant(input(*p, ps.scale));
      tr->quant.zeroPoint = input(*p, ps.zeroPoint).empty() ? nullptr : scope.constant(input(*p, ps.zeroPoint));
      if (!tr->quant.scale) {
        *why = "DequantizeLinear scale is not a constant";
        return false;
      }
      uint64_t n = 0;
      tr->quant.dqBlockSize = p->intAttr("block_size", 0);
      if ((tr->quant.scale->elementCount(&n) && n > 1) || tr->quant.dqBlockSize != 0) {
        int64_t axis = p->intAttr("axis", ps.defaultAxis);
        if (axis < 0) axis += static_cast<int64_t>(rank);
        if (axis < 0 || axis >= static_cast<int64_t>(rank)) {
          *why = "DequantizeLinear axis out of range";
          return false;
        }
        tr->quant.axis = stored[static_cast<size_t>(axis)];
      }
    }
  }
  tr->axisMap = stored;
  return true;
}

// Whether a constant of shape `dims` is one value per channel, [C] followed by
// `trailingOnes` ones, with any number of leading ones.
bool perChannel(const std::vector<int64_t>& dims, uint64_t channels, size_t trailingOnes) {
  if (dims.size() < trailingOnes + 1) return false;
  const size_t c = dims.size() - trailingOnes - 1;
  for (size_t i = 0; i < dims.size(); ++i) {
    if (i == c) {
      if (dims[i] < 0 || static_cast<uint64_t>(dims[i]) != channels) return false;
    } else if (dims[i] != 1) {
      return false;
    }
  }
  return true;
}

std::string shortName(std::string_view s) { return "'" + std::string(s.substr(0, 200)) + (s.size() > 200 ? "...'" : "'"); }

// Why the value `name`, read as a weight, is not a stored tensor: it names nothing,
// it is a graph input, or a node computes it (followed back through the ops
// traceWeight passes through).
std::string unresolvedWeight(const Scope& scope, std::string_view name) {
  if (name.empty()) return "has no weight input";
  for (int step = 0; step < 32; ++step) {
    if (!scope.defined(name)) return "weight input " + shortName(name) + " names a tensor that nothing in the model defines";
    if (scope.isInput(name))
      return "weight " + shortName(name) + " is a graph input, supplied at run time (not stored in the model)";
    const Node* p = scope.producer(name);
    if (!p) break;
    if (findWeightPathSpec(p) && !p->inputs.empty()) {
      name = p->inputs[0];
      continue;
    }
    return "weight " + shortName(name) + " is computed at run time by " + std::string(p->opType) + " node " +
           shortName(p->name.empty() ? std::string_view(p->opType) : p->name);
  }
  return "weight " + shortName(name) + " is not a stored tensor";
}

// ONNX Runtime's dynamic quantization (python/tools/quantization/operators/conv.py and
// matmul.py, quantize_dynamic): ConvInteger / MatMulInteger(x_q, w_q, x_zp, w_zp) -> Cast
// (to float) -> Mul(cast, S), S = Mul(x_scale, w_scale), where x_q, x_scale and x_zp are
// the three outputs of DynamicQuantizeLinear(x) and w_scale is a stored tensor (a scalar,
// or one value per output channel). Either Mul may have its operands in either order.
// On success sets `scale`, `scaleVia` and `*out` (the Mul's output, the layer's output);
// otherwise returns why the weight scale could not be traced.
struct DynamicScale {
  const Tensor* scale = nullptr;
  std::string_view via;  // the Mul node's name
  std::string_view out;
};

std::string traceDynamicScale(const Scope& scope, const Node& n, uint64_t channels, size_t trailingOnes, DynamicScale* ds) {
  const std::string head = "weight scale not found (codes shown in integer units): ";
  const std::string_view y = n.outputs.empty() ? std::string_view{} : n.outputs[0];
  if (y.empty()) return head + std::string(n.opType) + " has no output";
  const auto& cs = scope.consumersOf(y);
  if (cs.size() != 1 || !isOp(cs[0], "Cast") || cs[0]->intAttr("to", 0) != onnx::kFloat || cs[0]->outputs.empty())
    return head + "the output of " + std::string(n.opType) + " is not cast to float by one Cast";
  const std::string_view castOut = cs[0]->outputs[0];
  const auto& ms = scope.consumersOf(castOut);
  if (ms.size() != 1 || !isOp(ms[0], "Mul") || ms[0]->inputs.size() != 2 || ms[0]->outputs.empty() ||
      ms[0]->inputs[0] == ms[0]->inputs[1])
    return head + "the Cast's output is not multiplied by one Mul";
  const Node& mul = *ms[0];
  const std::string_view s = mul.inputs[0] == castOut ? mul.inputs[1] : mul.inputs[0];
  const Node* sm = scope.producer(s);
  if (!isOp(sm, "Mul") || sm->inputs.size() != 2)
    return head + "the scale " + shortName(s) + " is not Mul(DynamicQuantizeLinear's scale, a stored weight scale)";
  for (int k = 0; k < 2; ++k) {
    const std::string_view xs = sm->inputs[k], ws = sm->inputs[1 - k];
    const Node* dq = scope.producer(xs);
    const Tensor* w = scope.constant(ws);
    if (!isOp(dq, "DynamicQuantizeLinear") || dq->outputs.size() < 2 || dq->outputs[1] != xs || !w) continue;
    if (dq->outputs[0] != input(n, 0))
      return head + "the scale comes from a DynamicQuantizeLinear that does not quantize this layer's input";
    uint64_t count = 0;
    if (!w->elementCount(&count) || (count != 1 && !(count == channels && perChannel(w->dims, channels, trailingOnes))))
      return head + "weight scale " + shortName(ws) +
             " holds neither one value nor one per output channel shaped along the output's channel axis";
    ds->scale = w;
    ds->via = mul.name.empty() ? std::string_view(mul.opType) : mul.name;
    ds->out = mul.outputs[0];
    return {};
  }
  return head + "the scale " + shortName(s) + " is not Mul(DynamicQuantizeLinear's scale, a stored weight scale)";
}

// `name` = Reshape(B, shape) with B a stored tensor of `channels` values and shape a
// constant [1, -1 or channels, 1, ...] of `rank` entries: a per-channel bias laid out
// along axis 1 of an N, C, spatial... output. Returns B (and its name) or null.
const Tensor* reshapedBias(const Scope& scope, std::string_view name, uint64_t channels, size_t rank,
                           std::string_view* biasName) {
  const Node* p = scope.producer(name);
  if (!isOp(p, "Reshape") || p->inputs.size() < 2) return nullptr;
  const Tensor* b = scope.constant(p->inputs[0]);
  const Tensor* shape = scope.constant(p->inputs[1]);
  uint64_t count = 0;
  if (!b || !shape || !b->elementCount(&count) || count != channels || !perChannel(b->dims, channels, 0)) return nullptr;
  auto v = onnx::readAsDouble(*shape);
  if (!v.ok() || v->size() != rank || rank < 2) return nullptr;
  for (size_t i = 0; i < rank; ++i) {
    const double d = v.value()[i];
    if (i == 1 ? !(d == -1 || d == static_cast<double>(channels)) : d != 1) return nullptr;
  }
  *biasName = p->inputs[0];
  return b;
}

class Finder {
 public:
  explicit Finder(Discovery* out) : out_(out) {}

  void walk(const Graph& g, const Scope* parent, const std::string& path) {
    Scope scope;
    scope.parent = parent;
    scope.path = path;
    scope.index(g);
    for (size_t idx = 0; idx < g.nodes.size(); ++idx) {
      const Node& n = g.nodes[idx];
      visit(scope, n, idx);
      for (const auto& a : n.attributes) {
        if (a.g) walk(*a.g, &scope, subgraphPath(path, n, idx, a.name, -1));
        for (size_t k = 0; k < a.graphs.size(); ++k)
          walk(a.graphs[k], &scope, subgraphPath(path, n, idx, a.name, static_cast<int64_t>(k)));
      }
    }
  }

 private:
  void skip(const Scope& scope, const Node& n, size_t idx, const std::string& why) {
    out_->skipped.push_back((scope.path.empty() ? "" : scope.path + "/") + displayName(n, idx) + " (" + std::string(n.opType) +
                            "): " + why);
  }

  // A stored tensor (or a name nothing defines) at input i: the node bears weights.
  static bool storedOrUndefined(const Scope& scope, const Node& n, size_t i) {
    std::string_view name = input(n, i);
    if (name.empty()) return false;
    WeightTrace tr;
    std::string why;
    if (traceWeight(scope, name, &tr, &why) || !why.empty()) return true;
    for (int step = 0; step < 32 && !name.empty(); ++step) {  // follow the pass-through ops to the end
      if (!scope.defined(name)) return true;
      const Node* p = scope.producer(name);
      if (!findWeightPathSpec(p) || p->inputs.empty()) break;
      name = p->inputs[0];
    }
    return false;
  }

  void visit(const Scope& scope, const Node& n, size_t idx) {
    const OpSpec* found = findOpSpec(n);
    if (!found) return;
    const OpSpec& spec = *found;
    if (!spec.analysed()) {
      if (spec.alwaysWeights) return skip(scope, n, idx, std::string(spec.notAnalysed));
      for (int i : spec.weights) {
        if (i != kNoInput && storedOrUndefined(scope, n, static_cast<size_t>(i)))
          return skip(scope, n, idx, std::string(spec.notAnalysed));
      }
      return;
    }
    if (spec.packedBlocks) return visitPackedBlocks(scope, n, idx, spec);
    if (spec.family == OpFamily::Recurrent) return visitRecurrent(scope, n, idx, spec);
    if (spec.gatherBlocks) return visitGatherBlocks(scope, n, idx, spec);
    const std::string_view op = n.opType;

    // A constant on the left of MatMul (W @ x) has its output rows on axis -2.
    bool weightOnLeft = false;
    WeightTrace tr;
    const std::string_view wname = input(n, spec.weight);
    std::string why;
    if (!traceWeight(scope, wname, &tr, &why)) {
      tr = WeightTrace{};
      if (!why.empty()) return skip(scope, n, idx, why);
      if (spec.weightMayBeLeft && traceWeight(scope, input(n, spec.left), &tr, &why)) {
        weightOnLeft = true;
      } else if (!why.empty()) {
        return skip(scope, n, idx, why);
      } else if (spec.left == kNoInput) {
        // Convolutions and Gemm always bear weights: say why this one has none stored.
        return skip(scope, n, idx, unresolvedWeight(scope, wname));
      } else {
        // A MatMul of two computed values is not a weight layer; one operand that is
        // stored (on the left of an integer MatMul) or that names nothing is one we
        // cannot analyse.
        if (storedOrUndefined(scope, n, static_cast<size_t>(spec.left))) {
          const std::string_view a = input(n, spec.left);
          if (!scope.defined(a)) return skip(scope, n, idx, unresolvedWeight(scope, a));
          return skip(scope, n, idx, "a stored operand on the left of " + std::string(op) + " is not analysed");
        }
        if (!wname.empty() && !scope.defined(wname)) return skip(scope, n, idx, unresolvedWeight(scope, wname));
        return;  // activations times activations
      }
    }
    const size_t rank = tr.tensor->dims.size();
    const Tensor& w = *tr.tensor;

    Layer L;
    L.name = displayName(n, idx);
    L.path = scope.path;
    L.op = op;
    L.spec = &spec;
    L.node = &n;
    L.graph = scope.graph;
    L.nodeIndex = idx;
    L.weight = &w;
    L.weightName = tr.name;
    L.via = tr.via;
    L.shape = w.dims;
    L.quant = tr.quant;
    if (spec.scale != kNoInput) {
      L.quant.present = true;
      L.quant.via = op;
      L.quant.scale = scope.constant(input(n, spec.scale));
      L.quant.zeroPoint = scope.constant(input(n, spec.zeroPoint));
      L.quant.axis = -1;
    } else if (spec.zeroPoint != kNoInput) {
      L.quant.present = true;
      L.quant.via = op;
      L.quant.zeroPoint = scope.constant(input(n, spec.zeroPoint));
      L.quant.axis = -1;
    }

    if (w.dims.empty()) {
      skip(scope, n, idx, "weight is a scalar");
      return;
    }
    const OpFamily family = spec.family;
    const bool convFamily = family == OpFamily::Conv || family == OpFamily::ConvTranspose;
    if (rank < static_cast<size_t>(spec.minRank) || (spec.maxRank && rank > static_cast<size_t>(spec.maxRank))) {
      if (convFamily) return skip(scope, n, idx, "convolution weight of rank " + std::to_string(rank));
      if (family == OpFamily::Gemm) return skip(scope, n, idx, "Gemm weight of rank " + std::to_string(rank));
      return skip(scope, n, idx, "MatMul weight of rank 1 has no channel axis");
    }
    L.groups = spec.grouped ? n.intAttr("group", 1) : 1;
    L.transB = spec.transBSwapsAxes && n.intAttr("transB", 0) != 0;
    L.weightOnLeft = weightOnLeft;
    // Channel axes in the op's view of the weight (MatMul family: B [..., K, N] -> last
    // axis; constant A [..., M, K] -> axis -2).
    const int opAxis = spec.outputAxis(rank, weightOnLeft, L.transB);
    const int opInAxis = spec.inputAxis(rank, weightOnLeft, L.transB);
    if (L.groups < 1) {
      skip(scope, n, idx, "group attribute " + std::to_string(L.groups));
      return;
    }

    const bool transposed = !std::is_sorted(tr.axisMap.begin(), tr.axisMap.end());
    // Op-space dims: op axis a has the stored dim axisMap[a].
    std::vector<int64_t> opDims(rank);
    for (size_t a = 0; a < rank; ++a) opDims[a] = w.dims[tr.axisMap[a]];
    L.channelAxis = tr.axisMap[opAxis];
    L.inputAxis = tr.axisMap[opInAxis];
    auto prod = [&](size_t from, size_t to) {
      uint64_t p = 1;
      for (size_t i = from; i < to; ++i) p *= static_cast<uint64_t>(w.dims[i]);
      return p;
    };
    const size_t p = static_cast<size_t>(L.channelAxis);
    L.layout = ChannelLayout{1, prod(0, p), static_cast<uint64_t>(w.dims[p]), prod(p + 1, rank)};
    if (family == OpFamily::ConvTranspose && L.groups > 1) {
      if (transposed) {
        skip(scope, n, idx, "grouped ConvTranspose with a transposed weight");
        return;
      }
      const uint64_t I = static_cast<uint64_t>(w.dims[0]);
      if (I % static_cast<uint64_t>(L.groups)) {
        skip(scope, n, idx, "input channels not divisible by group");
        return;
      }
      L.layout = ChannelLayout{static_cast<uint64_t>(L.groups), I / L.groups, static_cast<uint64_t>(w.dims[1]), prod(2, rank)};
    }
    if (family == OpFamily::Conv) {
      L.depthwise = L.groups > 1 && opDims[1] == 1;
      if (opDims[0] % L.groups) {
        skip(scope, n, idx, "output channels not divisible by group");
        return;
      }
    } else if (family == OpFamily::ConvTranspose) {
      L.depthwise = L.groups > 1 && opDims[0] == L.groups;
    }
    // Bias: an input, or a following Add of a constant (how MatMul layers carry it).
    std::string_view out = n.outputs.empty() ? std::string_view{} : n.outputs[0];
    if (spec.integerWeights() && spec.scale == kNoInput) {  // ConvInteger, MatMulInteger
      DynamicScale ds;
      L.quant.note = traceDynamicScale(scope, n, L.layout.channelCount(), convFamily ? rank - 2 : 0, &ds);
      if (ds.scale) {
        L.quant.scale = ds.scale;
        L.quant.scaleVia = ds.via;
        out = ds.out;
      }
    }
    if (L.quant.present && L.quant.axis == -1) {
      // Integer ops: per-channel parameters lie along the output-channel axis.
      uint64_t cnt = 0;
      const Tensor* t = L.quant.scale ? L.quant.scale : L.quant.zeroPoint;
      if (t && t->elementCount(&cnt) && cnt > 1) L.quant.axis = L.channelAxis;
      if (L.quant.scale && L.quant.zeroPoint && L.quant.scale->elementCount(&cnt) && cnt == 1 &&
          L.quant.zeroPoint->elementCount(&cnt) && cnt > 1)
        L.quant.axis = L.channelAxis;  // per-tensor scale, per-channel zero point
    }

    if (spec.bias != kNoInput && !input(n, spec.bias).empty()) {
      L.biasName = input(n, spec.bias);
      L.bias = scope.constant(L.biasName);
    } else if (!out.empty()) {
      const auto& cs = scope.consumersOf(out);
      if (cs.size() == 1 && isOp(cs[0], "Add") && cs[0]->inputs.size() == 2 && !cs[0]->outputs.empty() &&
          cs[0]->inputs[0] != cs[0]->inputs[1]) {
        const std::string_view other = cs[0]->inputs[0] == out ? cs[0]->inputs[1] : cs[0]->inputs[0];
        // Per output channel only if it broadcasts along the output's channel axis:
        // [C] (or [1, C]) for channels-last outputs (Gemm, MatMul x @ W), and
        // [C, 1, ..., 1] with one 1 per spatial axis for NC... outputs (Conv, ConvTranspose).
        // Weight-on-the-left MatMul puts channels on axis -2: [C, 1].
        const size_t trailingOnes = convFamily ? rank - 2 : weightOnLeft ? 1 : 0;
        std::string_view biasName = other;
        const Tensor* b = scope.constant(other);
        // ONNX Runtime's dynamic quantization adds a Conv's bias after the scale Mul as
        // Add(y, Reshape(B, [1, -1, 1, 1])) (operators/conv.py, ConvInteger.add_bias).
        if (!b && convFamily && !L.quant.scaleVia.empty())
          b = reshapedBias(scope, other, L.layout.channelCount(), rank, &biasName);
        if (b && (biasName != other || perChannel(b->dims, L.layout.channelCount(), trailingOnes))) {
          L.biasName = biasName;
          L.bias = b;
          L.biasAdd = cs[0];
          out = cs[0]->outputs[0];
        }
      }
    }
    if (!out.empty()) {
      L.follower = classifyFollower(scope, out);
      if (L.follower.kind == FollowerKind::BatchNorm && !L.follower.node->outputs.empty()) {
        L.activation = classifyFollower(scope, L.follower.node->outputs[0]);
      }
    }
    if (L.layout.elementCount() != 0) {
      uint64_t cnt = 0;
      if (!w.elementCount(&cnt) || cnt != L.layout.elementCount()) {
        skip(scope, n, idx, "weight layout does not add up");
        return;
      }
    }
    out_->layers.push_back(std::move(L));
  }

  // MatMulNBits (analysis/nbits.hpp has the format and its sources): B [N, n_blocks, blob]
  // uint8 codes, one scale (and zero point) per block of `block_size` along K. The layer's
  // values are the dequantized W [K, N], laid out column by column as {N, K} with the
  // output channels N on axis 0, so each column is decoded from its own bytes.
  void visitPackedBlocks(const Scope& scope, const Node& n, size_t idx, const OpSpec& spec) {
    const std::string_view bname = input(n, spec.weight);
    const Tensor* b = scope.constant(bname);
    if (!b) return skip(scope, n, idx, unresolvedWeight(scope, bname));
    if (!input(n, spec.groupIndex).empty())
      return skip(scope, n, idx, "g_idx (act-order block indices) is not read: the blocks of K cannot be placed");
    const int64_t K = n.intAttr("K", 0), N = n.intAttr("N", 0), bits = n.intAttr("bits", 4),
                  blockSize = n.intAttr("block_size", 0);
    if (bits != 4 && bits != 8)
      return skip(scope, n, idx, "bits = " + std::to_string(bits) + " is not read (QuantLens reads 4 and 8 bits)");
    if (blockSize < 16 || blockSize > (int64_t{1} << 30) || (blockSize & (blockSize - 1)))
      return skip(scope, n, idx, "block_size " + std::to_string(blockSize) + " is not a power of two of at least 16");
    if (K < 1 || N < 1 || K > (int64_t{1} << 40) || N > (int64_t{1} << 40))
      return skip(scope, n, idx, "attributes K = " + std::to_string(K) + ", N = " + std::to_string(N) + " are out of range");
    if (b->dataType != onnx::kUint8) return skip(scope, n, idx, "B is not uint8");
    const int64_t blocks = (K + blockSize - 1) / blockSize, blob = blockSize * bits / 8;
    if (b->dims != std::vector<int64_t>{N, blocks, blob})
      return skip(scope, n, idx,
                  "B of shape " + dimsText(b->dims) +
                      " is not [N, ceil(K / block_size), block_size * bits / 8] = " + dimsText({N, blocks, blob}));
    const Tensor* scales = scope.constant(input(n, spec.scale));
    if (!scales) return skip(scope, n, idx, "scales are not a stored tensor");
    const std::string_view zpName = input(n, spec.zeroPoint);
    const Tensor* zp = zpName.empty() ? nullptr : scope.constant(zpName);
    if (!zpName.empty() && !zp) return skip(scope, n, idx, "zero_points are not a stored tensor");

    Layer L;
    L.name = displayName(n, idx);
    L.path = scope.path;
    L.op = n.opType;
    L.spec = &spec;
    L.node = &n;
    L.graph = scope.graph;
    L.nodeIndex = idx;
    L.weight = b;
    L.weightName = bname;
    L.shape = {N, K};
    L.channelAxis = 0;
    L.inputAxis = 1;
    L.layout = ChannelLayout{1, 1, static_cast<uint64_t>(N), static_cast<uint64_t>(K)};
    L.quant.present = true;
    L.quant.via = n.opType;
    L.quant.scale = scales;
    L.quant.zeroPoint = zp;
    L.quant.axis = -1;
    L.quant.bits = static_cast<int>(bits);
    L.quant.blockSize = blockSize;
    L.quant.K = K;
    L.quant.N = N;
    std::string_view out = n.outputs.empty() ? std::string_view{} : n.outputs[0];
    if (!input(n, spec.bias).empty()) {
      L.biasName = input(n, spec.bias);
      L.bias = scope.constant(L.biasName);
    }
    if (!out.empty()) L.follower = classifyFollower(scope, out);
    out_->layers.push_back(std::move(L));
  }

  // LSTM, GRU, RNN (ONNX operator specifications): W [D, G*H, input_size], R [D, G*H, H],
  // B [D, 2*G*H] (Wb then Rb), D = 2 for direction "bidirectional", else 1. The `layout`
  // attribute changes the shapes of X and Y only, never those of W, R and B. Each of W and R
  // becomes a layer (recurrentLayerName), or is skipped under that name with the reason.
  void visitRecurrent(const Scope& scope, const Node& n, size_t idx, const OpSpec& spec) {
    const std::string node = displayName(n, idx);
    std::string_view direction = "forward";
    if (const auto* a = n.attribute("direction"); a && a->hasS) direction = a->s;
    if (direction != "forward" && direction != "reverse" && direction != "bidirectional")
      return skip(scope, n, idx, "direction " + shortName(direction) + " is not forward, reverse or bidirectional");
    const int64_t D = direction == "bidirectional" ? 2 : 1;
    const int64_t G = static_cast<int64_t>(spec.gates.size());
    const int64_t hiddenAttr = n.intAttr("hidden_size", 0);
    if (hiddenAttr < 0 || hiddenAttr > (int64_t{1} << 32))
      return skip(scope, n, idx, "hidden_size " + std::to_string(hiddenAttr) + " is out of range");
    for (RecurrentPart part : {RecurrentPart::W, RecurrentPart::R}) {
      const std::string name = recurrentLayerName(node, part);
      auto skipPart = [&](const std::string& why) {
        out_->skipped.push_back((scope.path.empty() ? "" : scope.path + "/") + name + " (" + std::string(n.opType) + "): " + why);
      };
      const char* what = recurrentPartName(part);
      const std::string_view wname = input(n, part == RecurrentPart::W ? spec.weight : spec.recurrence);
      WeightTrace tr;
      std::string why;
      if (!traceWeight(scope, wname, &tr, &why)) {
        skipPart(!why.empty() ? why : unresolvedWeight(scope, wname));
        continue;
      }
      const Tensor& w = *tr.tensor;
      if (!std::is_sorted(tr.axisMap.begin(), tr.axisMap.end())) {
        skipPart(std::string(what) + " is transposed on its way to the layer: not read");
        continue;
      }
      const std::vector<int64_t>& d = w.dims;
      const std::string expected = std::string("[num_directions = ") + std::to_string(D) + ", " + std::to_string(G) +
                                   " gates * hidden_size, " + (part == RecurrentPart::W ? "input_size" : "hidden_size") + "]";
      constexpr int64_t kMaxDim = int64_t{1} << 40;
      if (d.size() != 3 || d[0] != D || d[1] < 0 || d[2] < 0 || d[1] > kMaxDim || d[2] > kMaxDim || d[1] % G != 0 ||
          (hiddenAttr > 0 && d[1] != G * hiddenAttr)) {
        skipPart(std::string(what) + " of shape " + dimsText(d) + " is not " + expected);
        continue;
      }
      const int64_t H = d[1] / G;
      if (part == RecurrentPart::R && d[2] != H) {
        skipPart(std::string(what) + " of shape " + dimsText(d) + " is not " + expected);
        continue;
      }
      Layer L;
      L.name = name;
      L.path = scope.path;
      L.op = n.opType;
      L.spec = &spec;
      L.node = &n;
      L.graph = scope.graph;
      L.nodeIndex = idx;
      L.weight = &w;
      L.weightName = tr.name;
      L.via = tr.via;
      L.shape = d;
      L.quant = tr.quant;
      L.channelAxis = spec.outAxis;
      L.inputAxis = spec.inAxis;
      L.layout = ChannelLayout{static_cast<uint64_t>(D), 1, static_cast<uint64_t>(d[1]), static_cast<uint64_t>(d[2])};
      L.recurrent.part = part;
      L.recurrent.node = node;
      L.recurrent.direction = direction;
      L.recurrent.directions = D;
      L.recurrent.hiddenSize = H;
      L.recurrent.biasOffset = part == RecurrentPart::W ? 0 : static_cast<uint64_t>(G * H);
      if (n.opType == "LSTM") L.recurrent.peepholes = input(n, 7);
      const std::string_view bname = input(n, spec.bias);
      if (!bname.empty()) {
        L.biasName = bname;
        L.bias = scope.constant(bname);
        if (L.bias && L.bias->dims != std::vector<int64_t>{D, 2 * G * H}) {
          skipPart("B of shape " + dimsText(L.bias->dims) + " is not [num_directions, 2 * " + std::to_string(G) +
                   " gates * hidden_size] = " + dimsText({D, 2 * G * H}));
          continue;
        }
      }
      uint64_t cnt = 0;
      if (!w.elementCount(&cnt) || cnt != L.layout.elementCount()) {
        skipPart("weight layout does not add up");
        continue;
      }
      const std::string_view out = n.outputs.empty() ? std::string_view{} : n.outputs[0];
      if (!out.empty()) L.follower = classifyFollower(scope, out);
      out_->layers.push_back(std::move(L));
    }
  }

  // GatherBlockQuantized (com.microsoft; ONNX Runtime's contrib operator documentation,
  // checked in onnxruntime-node by tests/js/dqblock.test.mjs): `data` is a table quantized
  // in blocks of `block_size` along `quantize_axis`, with `scales` (and `zero_points`, of
  // data's type) shaped like the table with that axis divided into blocks; the op gathers
  // slices along `gather_axis`. Read here: a rank-2 table [V, H] gathered by rows
  // (gather_axis 0) and quantized along H (quantize_axis 1), data int4 / uint4 (absent
  // zero point 0), or uint8 with bits 8 or bits 4 (two uint4 codes per byte along H, low
  // nibble first; absent zero point 2^(bits-1)). Its output channels are the V rows (what
  // each index gathers), reduced along the hidden axis H.
  void visitGatherBlocks(const Scope& scope, const Node& n, size_t idx, const OpSpec& spec) {
    const std::string_view dname = input(n, spec.weight);
    const Tensor* data = scope.constant(dname);
    if (!data) return skip(scope, n, idx, unresolvedWeight(scope, dname));
    const int64_t rank = static_cast<int64_t>(data->dims.size());
    int64_t gatherAxis = n.intAttr("gather_axis", 0), quantizeAxis = n.intAttr("quantize_axis", 1);
    if (gatherAxis < 0) gatherAxis += rank;
    if (quantizeAxis < 0) quantizeAxis += rank;
    if (rank != 2 || gatherAxis != 0 || quantizeAxis != 1)
      return skip(scope, n, idx,
                  "only a rank-2 table gathered along axis 0 and quantized along axis 1 is read (data of rank " +
                      std::to_string(rank) + ", gather_axis " + std::to_string(n.intAttr("gather_axis", 0)) + ", quantize_axis " +
                      std::to_string(n.intAttr("quantize_axis", 1)) + ")");
    const int64_t bits = n.intAttr("bits", 4), blockSize = n.intAttr("block_size", 128);
    if (blockSize < 16 || blockSize > (int64_t{1} << 30) || (blockSize & (blockSize - 1)))
      return skip(scope, n, idx, "block_size " + std::to_string(blockSize) + " is not a power of two of at least 16");
    const std::string_view zpName = input(n, spec.zeroPoint);
    const Tensor* zp = zpName.empty() ? nullptr : scope.constant(zpName);
    if (!zpName.empty() && !zp) return skip(scope, n, idx, "zero_points are not a stored tensor");
    const Tensor* scales = scope.constant(input(n, spec.scale));
    if (!scales) return skip(scope, n, idx, "scales are not a stored tensor");
    Layer L;
    L.shape = data->dims;
    if (data->dataType == onnx::kUint8) {
      if (bits != 4 && bits != 8)
        return skip(scope, n, idx, "bits = " + std::to_string(bits) + " is not read (QuantLens reads 4 and 8 bits)");
      if (bits == 4 && zp) return skip(scope, n, idx, "zero points packed two per uint8 (bits = 4) are not read");
      if (bits == 4) {
        L.quant.storedAs = onnx::kUint4;
        if (data->dims[1] > (int64_t{1} << 40)) return skip(scope, n, idx, "table too wide");
        L.shape[1] = 2 * data->dims[1];
      }
      L.quant.defaultZeroPoint = static_cast<double>(int64_t{1} << (bits - 1));
    } else if (!onnx::isPacked4(data->dataType)) {
      return skip(scope, n, idx,
                  "data of type " + onnx::dataTypeName(data->dataType) + " is not read (int4, uint4 and uint8 are)");
    }
    L.name = displayName(n, idx);
    L.path = scope.path;
    L.op = n.opType;
    L.spec = &spec;
    L.node = &n;
    L.graph = scope.graph;
    L.nodeIndex = idx;
    L.weight = data;
    L.weightName = dname;
    L.channelAxis = 0;
    L.inputAxis = 1;
    L.layout = ChannelLayout{1, 1, static_cast<uint64_t>(L.shape[0]), static_cast<uint64_t>(L.shape[1])};
    L.quant.present = true;
    L.quant.via = n.opType;
    L.quant.scale = scales;
    L.quant.zeroPoint = zp;
    L.quant.axis = 1;
    L.quant.dqBlockSize = blockSize;
    if (!n.outputs.empty() && !n.outputs[0].empty()) L.follower = classifyFollower(scope, n.outputs[0]);
    out_->layers.push_back(std::move(L));
  }

  static std::string dimsText(const std::vector<int64_t>& d) {
    std::string s = "[";
    for (size_t i = 0; i < d.size(); ++i) s += (i ? ", " : "") + std::to_string(d[i]);
    return s + "]";
  }

  Discovery* out_;
};

}  // namespace

Result<Discovery> findLayers(const onnx::Model& model) {
  // Two tensors by one name make "the weight" ambiguous: refuse rather than pick one.
  const GraphCheck check = checkGraph(model);
  if (!check.duplicateInitializers.empty() || !check.reassigned.empty()) {
    GraphCheck names;
    names.duplicateInitializers = check.duplicateInitializers;
    names.reassigned = check.reassigned;
    Error e = names.firstError();
    e.message += " (the ONNX spec allows each name one definition; QuantLens will not guess which one a layer uses)";
    return e;
  }
  Discovery d;
  Finder f(&d);
  f.walk(model.graph, nullptr, "");
  return d;
}

}  // namespace ql::graph
