#include "compress/prune.hpp"

#include <algorithm>
#include <cmath>
#include <cstring>
#include <limits>
#include <numeric>
#include <string>
#include <string_view>
#include <unordered_set>

#include "graph/scope.hpp"
#include "graph/shapes.hpp"
#include "onnx/tensor_data.hpp"

namespace ql::compress {

using graph::isOp;
using graph::Layer;
using onnx::Node;
using onnx::Tensor;

namespace {

std::string quoted(std::string_view s) { return "'" + std::string(s.substr(0, 200)) + (s.size() > 200 ? "...'" : "'"); }

// Where the channels lie in a value on the way: axis 1 (N, C, spatial... as a Conv reads and
// writes it) or the last axis (Gemm's and MatMul's A, their outputs).
enum class Pos { Axis1, Last };

// A stored tensor that loses the dropped channels along `axis`.
struct Target {
  const Tensor* tensor = nullptr;
  std::string_view name;
  int axis = 0;
};

// A constant between producer and layer, one value per channel or a scalar: which of its
// axes holds the channels is known only once the producer (the value's rank) is.
struct PendingConstant {
  const Tensor* tensor = nullptr;
  std::string_view name;
  Pos pos = Pos::Axis1;
  std::string what;  // "PRelu 'p' slope"
};

struct Plan {
  int64_t channels = 0;                   // C, the layer's input channels
  const Layer* producer = nullptr;        //
  std::vector<Target> targets;            // the producer's weight, bias, and everything between (not the layer's weight)
  std::vector<std::string_view> between;  // every value from the producer's output to the layer's input
  uint64_t elsewherePerChannel = 0;       // the producer's weight parameters removed per dropped channel
  // A producer bias read by other nodes too (or through Identity nodes): a pruned copy is
  // added and the producer reads it instead of `biasInput`.
  Target biasCopy;
  std::string_view biasInput;
};

class Planner {
 public:
  Planner(const onnx::Model& model, const graph::Discovery& discovery, const Layer& layer)
      : model_(model), discovery_(discovery), L_(layer) {
    scope_.index(model.graph);
    for (const auto& o : model.graph.outputs) outputs_.insert(o.name);
    for (const auto& n : model.graph.nodes)
      for (const auto& a : n.attributes) {
        if (a.g) collectSubgraphReads(*a.g);
        for (const auto& g : a.graphs) collectSubgraphReads(g);
      }
  }

  // "" on success (plan_ filled), else why the layer cannot be pruned.
  std::string run() {
    const Layer& L = L_;
    if (!L.path.empty()) return "the layer is inside a sub-graph (" + L.path + "): not handled";
    if (std::string why = weightLayerIssue(L, "the layer"); !why.empty()) return why;
    if (L.inputAxis < 0 || static_cast<size_t>(L.inputAxis) >= L.shape.size()) return "the weight has no input-channel axis";
    const int64_t C = L.shape[static_cast<size_t>(L.inputAxis)];
    if (C < 1) return "the weight has no input channels";
    plan_.channels = C;
    const auto family = L.spec->family;
    if (family == graph::OpFamily::Gemm && L.node->intAttr("transA", 0) != 0)
      return "Gemm with transA: its input channels lie along axis 0 of A, not followed";
    if (L.weightOnLeft) return "the weight is on the left of MatMul (W @ x): its input channels are rows of x, not followed";
    const std::string_view x = graph::input(*L.node, 0);
    if (x.empty()) return "the layer has no data input";
    Pos pos = (family == graph::OpFamily::Conv || family == graph::OpFamily::ConvTranspose) ? Pos::Axis1 : Pos::Last;
    return walk(x, pos);
  }

  const Plan& plan() const { return plan_; }

 private:
  void collectSubgraphReads(const onnx::Graph& g) {
    for (const auto& n : g.nodes) {
      for (auto i : n.inputs) subgraphReads_.insert(i);
      for (const auto& a : n.attributes) {
        if (a.g) collectSubgraphReads(*a.g);
        for (const auto& sg : a.graphs) collectSubgraphReads(sg);
      }
    }
  }

  std::string nodeLabel(const Node* n) const {
    return std::string(n->opType) + " " + quoted(graph::displayName(*n, static_cast<size_t>(n - model_.graph.nodes.data())));
  }

  bool isInitializer(const Tensor* t) const {
    const auto& inits = model_.graph.initializers;
    return !inits.empty() && t >= inits.data() && t < inits.data() + inits.size();
  }

  // Why a stored tensor that pruning rewrites cannot be rewritten ("" when it can):
  // it must be an initializer of the main graph read by `reader` alone.
  std::string storedIssue(std::string_view name, const Tensor* t, const Node* reader, const std::string& what) const {
    if (!t) return what + " " + quoted(name) + " is not a stored tensor";
    if (!isInitializer(t)) return what + " " + quoted(name) + " is held by a Constant node: not handled";
    if (outputs_.count(name)) return what + " " + quoted(name) + " is a graph output";
    if (subgraphReads_.count(name)) return what + " " + quoted(name) + " is also read inside a sub-graph";
    const auto& cs = scope_.consumersOf(name);
    for (const Node* c : cs)
      if (c != reader) return what + " " + quoted(name) + " is shared with " + nodeLabel(c);
    return {};
  }

  // What a weight layer (the layer itself or its producer) must be for its channels to go.
  std::string weightLayerIssue(const Layer& P, const std::string& who) const {
    const auto family = P.spec ? P.spec->family : graph::OpFamily::None;
    if (family != graph::OpFamily::Conv && family != graph::OpFamily::ConvTranspose && family != graph::OpFamily::Gemm &&
        family != graph::OpFamily::MatMul)
      return who + " (" + std::string(P.op) + ") is not a Conv, Gemm or MatMul: channel pruning does not apply";
    if (P.spec->integerWeights() || P.quant.present)
      return who + " (" + std::string(P.op) + ") has a quantized weight (via " + std::string(P.quant.via) + "): not handled";
    if (P.depthwise)
      return who +
             " is a depthwise convolution: removing a channel removes a depthwise filter too (and the channel before it): not "
             "handled";
    if (P.groups > 1)
      return who + " is a grouped convolution (group " + std::to_string(P.groups) +
             "): its channels are split among groups: not handled";
    // The stored weight: read by this layer alone (through its Identity/Cast/Transpose chain).
    std::string_view name = P.weightName;
    for (int step = 0; step < 32; ++step) {
      const auto& cs = scope_.consumersOf(name);
      if (outputs_.count(name)) return who + "'s weight " + quoted(P.weightName) + " is a graph output";
      if (subgraphReads_.count(name)) return who + "'s weight " + quoted(P.weightName) + " is also read inside a sub-graph";
      if (cs.size() != 1) return who + "'s weight " + quoted(P.weightName) + " is shared with other nodes";
      if (cs[0] == P.node) break;
      if (cs[0]->outputs.empty()) return who + "'s weight " + quoted(P.weightName) + " is shared with other nodes";
      name = cs[0]->outputs[0];
    }
    if (!isInitializer(P.weight)) return who + "'s weight " + quoted(P.weightName) + " is held by a Constant node: not handled";
    return {};
  }

  // A constant one value per channel along `pos` of a value of rank `rank` (0: unknown),
  // with any number of leading ones; the axis of the constant that holds the channels,
  // or -1. A single value is not per channel (-2: scalar).
  int channelAxisOf(const Tensor& t, Pos pos, size_t rank) const {
    uint64_t count = 0;
    if (!t.elementCount(&count)) return -1;
    if (count == 1) return -2;
    const auto& d = t.dims;
    const int64_t C = plan_.channels;
    if (d.empty()) return -1;
    size_t trailing = 0;
    if (pos == Pos::Axis1) {
      if (rank < 2) return -1;
      trailing = rank - 2;
    }
    if (d.size() < trailing + 1) return -1;
    const size_t c = d.size() - trailing - 1;
    for (size_t i = 0; i < d.size(); ++i)
      if (i == c ? d[i] != C : d[i] != 1) return -1;
    if (pos == Pos::Axis1 && d.size() > rank) return -1;
    return static_cast<int>(c);
  }

  // The value's consumers must be exactly `expected`.
  std::string readersIssue(std::string_view v, std::initializer_list<const Node*> expected) const {
    if (outputs_.count(v)) return quoted(v) + " is a graph output";
    if (subgraphReads_.count(v)) return quoted(v) + " is also read inside a sub-graph";
    for (const Node* c : scope_.consumersOf(v)) {
      if (std::find(expected.begin(), expected.end(), c) != expected.end()) continue;
      std::string why = quoted(v) + " also feeds " + nodeLabel(c);
      if (isOp(c, "Add") || isOp(c, "Sum")) why += " (a residual connection)";
      return why;
    }
    if (scope_.consumersOf(v).size() != expected.size()) return quoted(v) + " is read more than once by the same node";
    return {};
  }

  const Layer* layerOf(const Node* n) const {
    for (const Layer& l : discovery_.layers)
      if (l.node == n && l.path.empty()) return &l;
    return nullptr;
  }

  std::string walk(std::string_view v, Pos pos) {
    const Node* reader = L_.node;
    const Node* silu = nullptr;  // the Sigmoid of a SiLU whose Mul was `reader`
    bool needGlobalPool = false;
    const Node* flatten = nullptr;
    bool lastAsAxis1 = false;  // a BatchNormalization read the last axis as axis 1: the value must be 2-D
    std::vector<PendingConstant> constants;
    for (int step = 0; step < 1024; ++step) {
      plan_.between.push_back(v);
      if (std::string why = silu ? readersIssue(v, {reader, silu}) : readersIssue(v, {reader}); !why.empty()) return why;
      silu = nullptr;
      if (scope_.isInput(v))
        return quoted(v) + " is a graph input: no layer produces those channels (the model's input cannot be pruned)";
      const Node* p = scope_.producer(v);
      if (!p) return quoted(v) + " is a constant: no layer produces those channels";
      if (p->outputs.empty() || p->outputs[0] != v)
        return quoted(v) + " is not the first output of " + nodeLabel(p) + ": not followed";
      for (size_t k = 1; k < p->outputs.size(); ++k)
        if (!p->outputs[k].empty() && (!scope_.consumersOf(p->outputs[k]).empty() || outputs_.count(p->outputs[k])))
          return nodeLabel(p) + "'s output " + quoted(p->outputs[k]) + " is used: not followed";
      if (const Layer* P = layerOf(p)) {
        if (needGlobalPool) return nodeLabel(flatten) + " does not follow a global pool: its features are not one per channel";
        return producerFound(*P, pos, lastAsAxis1, constants);
      }
      const std::string_view op = (p->domain.empty() || p->domain == "ai.onnx") ? p->opType : std::string_view{};
      static const std::unordered_set<std::string_view> unary = {
          "Relu",     "LeakyRelu",       "Sigmoid",  "Tanh",       "HardSigmoid", "HardSwish", "Elu",  "Selu", "Celu", "Gelu",
          "Softplus", "Softsign",        "Identity", "Cast",       "Clip",        "Dropout",   "Abs",  "Neg",  "Erf",  "Exp",
          "Mish",     "ThresholdedRelu", "Sqrt",     "Reciprocal", "Floor",       "Ceil",      "Round"};
      if (unary.count(op)) {
        if (op == "Clip") {  // bounds must be constants (scalars by the spec)
          for (size_t k = 1; k < p->inputs.size(); ++k)
            if (!p->inputs[k].empty() && !scope_.constant(p->inputs[k]))
              return nodeLabel(p) + " has a computed bound: not followed";
        }
        if (op == "Dropout" && p->inputs.size() > 1) {
          for (size_t k = 1; k < p->inputs.size(); ++k)
            if (!p->inputs[k].empty() && !scope_.constant(p->inputs[k]))
              return nodeLabel(p) + " has a computed ratio or mode: not followed";
        }
        reader = p;
        v = p->inputs.empty() ? std::string_view{} : p->inputs[0];
        if (v.empty()) return nodeLabel(p) + " has no input";
        continue;
      }
      if (op == "BatchNormalization") {
        if (pos == Pos::Last) lastAsAxis1 = true;
        if (p->inputs.size() < 5) return nodeLabel(p) + " has fewer than 5 inputs";
        static const char* names[] = {"scale", "B", "mean", "var"};
        for (size_t k = 1; k <= 4; ++k) {
          const Tensor* t = scope_.constant(p->inputs[k]);
          const std::string what = nodeLabel(p) + " " + names[k - 1];
          if (std::string why = storedIssue(p->inputs[k], t, p, what); !why.empty()) return why;
          if (t->dims.size() != 1 || t->dims[0] != plan_.channels) return what + " does not hold one value per channel";
          plan_.targets.push_back({t, p->inputs[k], 0});
        }
        reader = p;
        v = p->inputs[0];
        continue;
      }
      if (op == "PRelu" || op == "Add" || op == "Mul" || op == "Sub" || op == "Div") {
        if (p->inputs.size() != 2) return nodeLabel(p) + " does not have two inputs";
        // SiLU: Mul(x, Sigmoid(x)) in either order.
        if (op == "Mul") {
          for (int k = 0; k < 2; ++k) {
            const Node* s = scope_.producer(p->inputs[k]);
            if (isOp(s, "Sigmoid") && !s->inputs.empty() && s->inputs[0] == p->inputs[1 - k] && s->outputs.size() == 1) {
              if (std::string why = readersIssue(p->inputs[k], {p}); !why.empty()) return why;
              plan_.between.push_back(p->inputs[k]);  // Sigmoid(x) has the channels too
              silu = s;
              break;
            }
          }
          if (silu) {
            reader = p;
            v = silu->inputs[0];
            continue;
          }
        }
        const Tensor* c0 = scope_.constant(p->inputs[0]);
        const Tensor* c1 = scope_.constant(p->inputs[1]);
        if (op == "PRelu" && c0) return nodeLabel(p) + " has a constant input: not followed";
        if (!c0 && !c1) {
          if (op == "Add") return quoted(v) + " comes from " + nodeLabel(p) + " of two computed values (a residual connection)";
          return quoted(v) + " comes from " + nodeLabel(p) + " of two computed values: not followed";
        }
        if (c0 && c1) return quoted(v) + " comes from " + nodeLabel(p) + " of two constants";
        const size_t ci = c0 ? 0 : 1;
        const std::string what = op == "PRelu" ? nodeLabel(p) + " slope" : nodeLabel(p) + " constant";
        const Tensor* t = ci == 0 ? c0 : c1;
        uint64_t count = 0;
        if (!t->elementCount(&count)) return what + " has a bad shape";
        if (count != 1) {
          if (std::string why = storedIssue(p->inputs[ci], t, p, what); !why.empty()) return why;
          constants.push_back({t, p->inputs[ci], pos, what});
        }
        reader = p;
        v = p->inputs[1 - ci];
        continue;
      }
      if (op == "MaxPool" || op == "AveragePool" || op == "LpPool" || op == "GlobalAveragePool" || op == "GlobalMaxPool" ||
          op == "GlobalLpPool") {
        const bool global = op.substr(0, 6) == "Global";
        if (pos == Pos::Last && !needGlobalPool)
          return nodeLabel(p) + " pools along axis 1, the layer reads channels on the last axis";
        if (needGlobalPool && !global)
          return nodeLabel(flatten) + " does not follow a global pool: its features are not one per channel";
        if (global) needGlobalPool = false;
        pos = Pos::Axis1;
        reader = p;
        v = p->inputs.empty() ? std::string_view{} : p->inputs[0];
        if (v.empty()) return nodeLabel(p) + " has no input";
        continue;
      }
      if ((op == "Flatten" || op == "Reshape") && pos == Pos::Last && !needGlobalPool) {
        if (op == "Flatten" && p->intAttr("axis", 1) != 1)
          return nodeLabel(p) + " flattens from axis " + std::to_string(p->intAttr("axis", 1)) + ": not followed";
        if (op == "Reshape") {
          const Tensor* shape = p->inputs.size() > 1 ? scope_.constant(p->inputs[1]) : nullptr;
          auto sv = shape ? onnx::readAsDouble(*shape) : Result<std::vector<double>>(Error{});
          if (!shape || !sv.ok() || sv->size() != 2 ||
              !(sv.value()[1] == -1 || sv.value()[1] == static_cast<double>(plan_.channels)) ||
              (sv.value()[1] == -1 && sv.value()[0] == -1))
            return quoted(v) + " comes from " + nodeLabel(p) + ", which is not a reshape to [N, C]: not followed";
        }
        // [N, C, 1, ...] to [N, C] keeps the channels one to one, only after a global pool.
        needGlobalPool = true;
        flatten = p;
        pos = Pos::Axis1;
        reader = p;
        v = p->inputs.empty() ? std::string_view{} : p->inputs[0];
        if (v.empty()) return nodeLabel(p) + " has no input";
        continue;
      }
      if (op == "Concat") return quoted(v) + " comes from " + nodeLabel(p) + ": channels cannot be removed through a Concat";
      if (op == "Sum") return quoted(v) + " comes from " + nodeLabel(p) + " (a residual connection)";
      return quoted(v) + " comes from " + nodeLabel(p) + ", which channel pruning does not follow";
    }
    return "the path to the producer is too long";
  }

  std::string producerFound(const Layer& P, Pos pos, bool lastAsAxis1, const std::vector<PendingConstant>& constants) {
    const std::string who = "the producer " + quoted(P.name);
    if (std::string why = weightLayerIssue(P, who); !why.empty()) {
      if (!P.path.empty()) return who + " is inside a sub-graph";
      return why;
    }
    const auto family = P.spec->family;
    if (P.weightOnLeft) return who + " has its weight on the left (W @ x): not followed";
    const bool conv = family == graph::OpFamily::Conv || family == graph::OpFamily::ConvTranspose;
    const uint64_t C = static_cast<uint64_t>(plan_.channels);
    if (P.layout.channelCount() != C)
      return who + " has " + std::to_string(P.layout.channelCount()) + " output channels, the layer reads " + std::to_string(C);
    // The producer's output: channels on axis 1 of rank R (convolutions: R = the weight's
    // rank), or on the last axis (Gemm: rank 2, where axis 1 is the last; MatMul).
    size_t rank = 0;
    if (conv)
      rank = P.shape.size();
    else if (family == graph::OpFamily::Gemm)
      rank = 2;
    if (conv && pos == Pos::Last)
      return who + " writes channels on axis 1 and the layer reads them on the last axis (a Reshape or Flatten would be needed)";
    if (!conv && family == graph::OpFamily::MatMul && (pos == Pos::Axis1 || lastAsAxis1))
      return who + " (MatMul) writes channels on the last axis and the way to the layer reads them on axis 1";
    if (!conv && pos == Pos::Axis1 && rank != 2)
      return who + " writes channels on the last axis and the layer reads them on axis 1";
    plan_.producer = &P;
    // Weight parameters only, as the plan counts them (a fraction of all weight-layer
    // weights): the producer's weight rows; its bias, BatchNorm and other per-channel
    // constants go too but are not weight parameters.
    plan_.targets.insert(plan_.targets.begin(), Target{P.weight, P.weightName, P.channelAxis});
    plan_.elsewherePerChannel = P.layout.elementCount() / C;
    const std::string_view biasIn = P.biasAdd ? std::string_view{} : graph::input(*P.node, P.spec->bias);
    if (!biasIn.empty()) {
      // The stored bias, through Identity nodes (torch.onnx.export writes equal tensors
      // once and gives each reader an Identity of it).
      std::string_view name = biasIn;
      const Tensor* t = scope_.constant(name);
      int hops = 0;
      for (; !t && hops < 32; ++hops) {
        const Node* by = scope_.producer(name);
        if (!isOp(by, "Identity") || by->inputs.empty()) break;
        name = by->inputs[0];
        t = scope_.constant(name);
      }
      if (!t) {
        const Node* by = scope_.producer(biasIn);
        return who + "'s bias " + quoted(biasIn) + " is not a stored tensor" + (by ? " (computed by " + nodeLabel(by) + ")" : "");
      }
      uint64_t count = 0;
      if (!t->elementCount(&count)) return who + "'s bias has a bad shape";
      if (count == C) {
        int axis = -1;
        for (size_t i = 0; i < t->dims.size(); ++i)
          if (static_cast<uint64_t>(t->dims[i]) == C) axis = static_cast<int>(i);
        if (axis < 0 || (count > 1 && t->dims.size() > 2)) return who + "'s bias is not one value per channel";
        if (hops == 0 && storedIssue(name, t, P.node, who + "'s bias").empty()) {
          plan_.targets.insert(plan_.targets.begin() + 1, Target{t, name, axis});
        } else {
          // Read by others too: the producer gets a pruned copy of its own; the original stays.
          if (!isInitializer(t)) return who + "'s bias " + quoted(name) + " is held by a Constant node: not handled";
          plan_.biasCopy = Target{t, name, axis};
          plan_.biasInput = biasIn;
        }
      } else if (count != 1) {
        return who + "'s bias is not one value per channel";
      }
    }
    for (const PendingConstant& k : constants) {
      const int axis = channelAxisOf(*k.tensor, k.pos, k.pos == Pos::Axis1 ? rank : 0);
      if (axis < 0) return k.what + " " + quoted(k.name) + " is neither one value nor one per channel";
      plan_.targets.push_back({k.tensor, k.name, axis});
    }
    // A tensor must be pruned once (a bias that is also the bias Add's constant, say).
    std::unordered_set<std::string_view> seen;
    for (const Target& t : plan_.targets)
      if (!seen.insert(t.name).second) return quoted(t.name) + " is used twice on the way";
    // The producer's own output (before its bias Add) changes too.
    if (!P.node->outputs.empty()) plan_.between.push_back(P.node->outputs[0]);
    return {};
  }

  const onnx::Model& model_;
  const graph::Discovery& discovery_;
  const Layer& L_;
  graph::Scope scope_;
  std::unordered_set<std::string_view> outputs_, subgraphReads_;
  Plan plan_;
};

// The stored values of `t` without the channels not in `keep` (ascending) along `axis`,
// in the tensor's own element type.
Result<onnx::TensorData> sliceAlong(const Tensor& t, std::string_view name, int axis, const std::vector<int64_t>& keep) {
  onnx::TensorData out;
  out.name = std::string(name);
  out.dims = t.dims;
  out.dataType = t.dataType;
  if (axis < 0 || static_cast<size_t>(axis) >= t.dims.size())
    return makeError(ErrorCode::InvalidArgument, "tensor " + quoted(name) + " has no axis " + std::to_string(axis));
  uint64_t outer = 1, inner = 1;
  for (int i = 0; i < axis; ++i) outer *= static_cast<uint64_t>(t.dims[static_cast<size_t>(i)]);
  for (size_t i = static_cast<size_t>(axis) + 1; i < t.dims.size(); ++i) inner *= static_cast<uint64_t>(t.dims[i]);
  const uint64_t C = static_cast<uint64_t>(t.dims[static_cast<size_t>(axis)]);
  out.dims[static_cast<size_t>(axis)] = static_cast<int64_t>(keep.size());
  const uint8_t* src = nullptr;
  size_t elem = 0;
  onnx::FloatValues fv;
  if (t.dataType == onnx::kFloat) {
    auto r = onnx::readAsFloat(t);
    if (!r.ok()) return r.error();
    fv = std::move(r.value());
    src = fv.isView() ? fv.bytes : reinterpret_cast<const uint8_t*>(fv.owned.data());
    elem = 4;
    if (fv.count != outer * C * inner)
      return makeError(ErrorCode::InvalidModel, "tensor " + quoted(name) + " holds the wrong number of values");
  } else {
    elem = onnx::dataTypeSize(t.dataType);
    if (elem == 0 || onnx::isPacked4(t.dataType))
      return makeError(ErrorCode::Unsupported,
                       "tensor " + quoted(name) + " of type " + onnx::dataTypeName(t.dataType) + " is not sliced");
    if (t.external || t.deferred)
      return makeError(ErrorCode::Unsupported,
                       "tensor " + quoted(name) + " is not in memory (external data or left in the file)");
    if (!t.hasRawData)
      return makeError(ErrorCode::Unsupported,
                       "tensor " + quoted(name) + " of type " + onnx::dataTypeName(t.dataType) + " is not stored as raw data");
    if (t.rawData.size != outer * C * inner * elem)
      return makeError(ErrorCode::InvalidModel, "tensor " + quoted(name) + " holds the wrong number of bytes");
    src = t.rawData.data;
  }
  std::vector<uint8_t> raw(outer * keep.size() * inner * elem);
  uint8_t* dst = raw.data();
  const size_t run = inner * elem;
  for (uint64_t o = 0; o < outer; ++o)
    for (int64_t c : keep) {
      std::memcpy(dst, src + (o * C + static_cast<uint64_t>(c)) * run, run);
      dst += run;
    }
  if (t.dataType == onnx::kFloat) {
    out.floats.resize(raw.size() / 4);
    std::memcpy(out.floats.data(), raw.data(), raw.size());
  } else {
    out.raw = std::move(raw);
  }
  return out;
}

}  // namespace

Result<std::vector<double>> inputChannelNorms(const Layer& layer, const float* values, uint64_t count) {
  const auto& d = layer.shape;
  if (layer.inputAxis < 0 || static_cast<size_t>(layer.inputAxis) >= d.size())
    return makeError(ErrorCode::InvalidArgument, "the layer's weight has no input-channel axis");
  const size_t a = static_cast<size_t>(layer.inputAxis);
  uint64_t outer = 1, inner = 1;
  for (size_t i = 0; i < a; ++i) outer *= static_cast<uint64_t>(d[i]);
  for (size_t i = a + 1; i < d.size(); ++i) inner *= static_cast<uint64_t>(d[i]);
  const uint64_t C = static_cast<uint64_t>(d[a]);
  if (count != outer * C * inner || (count && !values))
    return makeError(ErrorCode::InvalidArgument, "the weight " + quoted(layer.weightName) + " of " +
                                                     std::to_string(outer * C * inner) + " values was given " +
                                                     std::to_string(count));
  std::vector<double> sums(C, 0.0);
  for (uint64_t o = 0; o < outer; ++o)
    for (uint64_t c = 0; c < C; ++c) {
      const float* p = values + (o * C + c) * inner;
      double s = 0;
      for (uint64_t i = 0; i < inner; ++i) s += static_cast<double>(p[i]) * p[i];
      sums[c] += s;
    }
  for (double& s : sums) s = std::sqrt(s);
  return sums;
}

Result<std::vector<double>> inputChannelNorms(const Layer& layer) {
  if (!layer.weight) return makeError(ErrorCode::InvalidArgument, "the layer has no stored weight");
  auto r = onnx::readAsFloat(*layer.weight);
  if (!r.ok()) return r.error();
  std::vector<float> v = r->take();  // aligned float32, whatever the stored form
  return inputChannelNorms(layer, v.data(), v.size());
}

std::vector<int64_t> pruneOrder(const std::vector<double>& norms) {
  std::vector<int64_t> order(norms.size());
  std::iota(order.begin(), order.end(), 0);
  std::stable_sort(order.begin(), order.end(), [&](int64_t a, int64_t b) { return norms[a] < norms[b]; });
  return order;
}

Curve pruneCurve(const onnx::Model& model, const graph::Discovery& discovery, const Layer& layer, const graph::Shapes* shapes) {
  Curve curve;
  curve.method = Method::ChannelPrune;
  Planner planner(model, discovery, layer);
  if (std::string why = planner.run(); !why.empty()) {
    curve.refused = why;
    return curve;
  }
  auto norms = inputChannelNorms(layer);
  if (!norms.ok()) {
    curve.refused = "the weight could not be read: " + norms.error().message;
    return curve;
  }
  return pruneCurve(model, discovery, layer, norms.value(), shapes);
}

Curve pruneCurve(const onnx::Model& model, const graph::Discovery& discovery, const Layer& layer, const std::vector<double>& n,
                 const graph::Shapes* shapes) {
  Curve curve;
  curve.method = Method::ChannelPrune;
  Planner planner(model, discovery, layer);
  if (std::string why = planner.run(); !why.empty()) {
    curve.refused = why;
    return curve;
  }
  const Plan& plan = planner.plan();
  const int64_t C = plan.channels;
  if (n.size() != static_cast<size_t>(C)) {
    curve.refused = "the norms given are not one per input channel";
    return curve;
  }
  curve.producer = plan.producer->name;  // whose output channels go too: the plan leaves it alone
  uint64_t elements = 0;
  if (!layer.weight->elementCount(&elements)) elements = 0;
  const uint64_t perChannel = elements / static_cast<uint64_t>(C);
  const uint64_t macs = shapes ? graph::macsOf(layer, *shapes) : 0;
  double total = 0;
  for (double x : n) total += x * x;
  const std::vector<int64_t> order = pruneOrder(n);
  // dropped[j]: the energy of the j smallest channels, summed smallest first.
  std::vector<double> dropped(static_cast<size_t>(C) + 1, 0.0);
  for (int64_t j = 0; j < C; ++j) dropped[j + 1] = dropped[j] + n[order[j]] * n[order[j]];
  for (int64_t k = 1; k <= C; ++k) {
    Point p;
    p.keep = k;
    p.params = perChannel * static_cast<uint64_t>(k);
    p.paramsRemovedElsewhere = plan.elsewherePerChannel * static_cast<uint64_t>(C - k);
    p.macs = macs / static_cast<uint64_t>(C) * static_cast<uint64_t>(k);
    const double e = dropped[static_cast<size_t>(C - k)];
    p.sqnrDb = e > 0 ? 10 * std::log10(total / e) : INFINITY;
    curve.points.push_back(p);
  }
  return curve;
}

Result<bool> addPruneEdit(const onnx::Model& model, const graph::Discovery& discovery, const Layer& layer, int64_t keep,
                          onnx::GraphEdit& edit) {
  Planner planner(model, discovery, layer);
  if (std::string why = planner.run(); !why.empty())
    return makeError(ErrorCode::Unsupported, "channel pruning of " + quoted(layer.name) + ": " + why);
  const Plan& plan = planner.plan();
  const int64_t C = plan.channels;
  if (keep < 1 || keep > C)
    return makeError(ErrorCode::InvalidArgument, "channel pruning of " + quoted(layer.name) + ": keep " + std::to_string(keep) +
                                                     " is outside 1.." + std::to_string(C) + " (its input channels)");
  if (keep == C) return false;
  auto norms = inputChannelNorms(layer);
  if (!norms.ok()) return norms.error();
  const std::vector<int64_t> order = pruneOrder(norms.value());
  std::vector<int64_t> kept(order.begin() + (C - keep), order.end());
  std::sort(kept.begin(), kept.end());
  // Every tensor first, so a failure leaves `edit` as it was.
  std::vector<onnx::TensorData> tensors;
  auto w = sliceAlong(*layer.weight, layer.weightName, layer.inputAxis, kept);
  if (!w.ok()) return w.error();
  tensors.push_back(std::move(w.value()));
  for (const Target& t : plan.targets) {
    auto s = sliceAlong(*t.tensor, t.name, t.axis, kept);
    if (!s.ok()) return s.error();
    tensors.push_back(std::move(s.value()));
  }
  if (plan.biasCopy.tensor) {
    // A name no value, initializer or earlier addition uses.
    std::unordered_set<std::string_view> used;
    for (const auto& t : model.graph.initializers) used.insert(t.name);
    for (const auto& n : model.graph.nodes) {
      for (auto v : n.inputs) used.insert(v);
      for (auto v : n.outputs) used.insert(v);
    }
    for (const auto& in : model.graph.inputs) used.insert(in.name);
    for (const auto& t : edit.addInitializers) used.insert(t.name);
    const std::string base = std::string(plan.biasCopy.name) + "_pruned";
    std::string name = base;
    for (int k = 1; used.count(name); ++k) name = base + "_" + std::to_string(k);
    auto s = sliceAlong(*plan.biasCopy.tensor, name, plan.biasCopy.axis, kept);
    if (!s.ok()) return s.error();
    const graph::Layer& P = *plan.producer;
    onnx::NodeEdit* ne = nullptr;
    for (auto& e : edit.editNodes)
      if (e.index == P.nodeIndex) ne = &e;
    if (!ne) {
      edit.editNodes.push_back({});
      ne = &edit.editNodes.back();
      ne->index = P.nodeIndex;
    }
    if (!ne->inputs) ne->inputs = std::vector<std::string>(P.node->inputs.begin(), P.node->inputs.end());
    const size_t bi = static_cast<size_t>(P.spec->bias);
    if (bi < ne->inputs->size()) (*ne->inputs)[bi] = name;
    edit.addInitializers.push_back(std::move(s.value()));
  }
  for (auto& t : tensors) edit.replaceInitializers.push_back(std::move(t));
  std::unordered_set<std::string_view> between(plan.between.begin(), plan.between.end());
  std::unordered_set<std::string> already(edit.removeValueInfo.begin(), edit.removeValueInfo.end());
  for (const auto& vi : model.graph.valueInfo)
    if (between.count(vi.name) && already.insert(std::string(vi.name)).second) edit.removeValueInfo.emplace_back(vi.name);
  return true;
}

}  // namespace ql::compress
