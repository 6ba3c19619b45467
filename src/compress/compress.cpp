#include "compress/compress.hpp"

#include <algorithm>
#include <cmath>
#include <map>
#include <unordered_map>
#include <unordered_set>

#include "graph/shapes.hpp"
#include "onnx/tensor_data.hpp"

#if __has_include("compress/prune.hpp")
#include "compress/prune.hpp"
#define QL_HAVE_PRUNE 1
#else
#define QL_HAVE_PRUNE 0
#endif

namespace ql::compress {

bool pruningAvailable() { return QL_HAVE_PRUNE != 0; }

namespace {

using Dims = std::vector<int64_t>;

bool isInitializer(const onnx::Graph& g, std::string_view name) {
  for (const onnx::Tensor& t : g.initializers)
    if (t.name == name) return true;
  return false;
}

// Attribute ints, or `fallback` when absent.
Dims intsAttr(const onnx::Node& n, std::string_view name, Dims fallback) {
  const onnx::Attribute* a = n.attribute(name);
  return a ? a->ints : fallback;
}

std::string_view strAttr(const onnx::Node& n, std::string_view name) {
  const onnx::Attribute* a = n.attribute(name);
  return a ? a->s : std::string_view{};
}

uint64_t product(const Dims& d, size_t from, size_t to) {
  uint64_t p = 1;
  for (size_t i = from; i < to && i < d.size(); ++i) p *= static_cast<uint64_t>(d[i]);
  return p;
}

// The attributes of a node that the new nodes copy (INT, INTS, FLOAT, STRING only).
std::vector<onnx::NewAttribute> copyAttributes(const onnx::Node& n, const std::unordered_set<std::string_view>& drop) {
  std::vector<onnx::NewAttribute> out;
  for (const onnx::Attribute& a : n.attributes) {
    if (drop.count(a.name)) continue;
    onnx::NewAttribute x;
    x.name = std::string(a.name);
    if (!a.ints.empty() || a.type == onnx::NewAttribute::kInts)
      x = onnx::NewAttribute::list(x.name, a.ints);
    else if (a.hasI)
      x = onnx::NewAttribute::integer(x.name, a.i);
    else if (a.hasF)
      x = onnx::NewAttribute::real(x.name, a.f);
    else if (a.hasS)
      x = onnx::NewAttribute::string(x.name, std::string(a.s));
    else
      continue;
    out.push_back(std::move(x));
  }
  return out;
}

std::string uniqueName(std::string base, std::vector<std::string>& used) {
  std::string name = base;
  for (int k = 2; std::find(used.begin(), used.end(), name) != used.end(); ++k) name = base + "_" + std::to_string(k);
  used.push_back(name);
  return name;
}

}  // namespace

std::vector<std::string> graphNames(const onnx::Model& model) {
  std::unordered_set<std::string> set;
  const onnx::Graph& g = model.graph;
  for (const onnx::Node& n : g.nodes) {
    set.emplace(n.name);
    for (auto s : n.inputs) set.emplace(s);
    for (auto s : n.outputs) set.emplace(s);
  }
  for (const onnx::Tensor& t : g.initializers) set.emplace(t.name);
  for (const onnx::ValueInfo& v : g.inputs) set.emplace(v.name);
  for (const onnx::ValueInfo& v : g.outputs) set.emplace(v.name);
  for (const onnx::ValueInfo& v : g.valueInfo) set.emplace(v.name);
  return {set.begin(), set.end()};
}

std::string writeRefusal(const onnx::Model& model, const graph::Layer& L, const SvdFit& /*fit*/) {
  const onnx::Graph& g = model.graph;
  if (!L.path.empty()) return "inside the sub-graph " + L.path + " (the writer edits the main graph)";
  if (L.graph != &g || !L.node) return "not in the main graph";
  if (L.quant.present) return "quantized weight (" + std::string(L.quant.via) + ")";
  if (!L.via.empty()) return "the weight reaches the layer through " + std::string(L.via.front());
  if (!isInitializer(g, L.weightName)) return "the weight is not an initializer";
  // Before IR 4 every initializer must also be a graph input; the writer adds none.
  if (model.irVersion < 4) return "IR version " + std::to_string(model.irVersion) + " (initializers must be graph inputs)";
  size_t uses = 0;
  for (const onnx::Node& n : g.nodes)
    for (auto s : n.inputs) uses += s == L.weightName;
  for (const onnx::ValueInfo& v : g.outputs) uses += v.name == L.weightName;
  if (uses != 1) return "the weight is shared (used " + std::to_string(uses) + " times)";
  if (L.weight && L.weight->dataType != onnx::kFloat)
    return "weight stored as " + onnx::dataTypeName(L.weight->dataType) + " (the writer writes float32 factors)";
  const onnx::Node& n = *L.node;
  for (const onnx::Attribute& a : n.attributes)
    if (a.t || a.g || !a.graphs.empty() || !a.tensors.empty() || !a.floats.empty() || !a.strings.empty() ||
        !a.refAttrName.empty())
      return "attribute '" + std::string(a.name) + "' of a kind the split does not carry";
  if (L.op == "Gemm" && n.intAttr("transA", 0) != 0) return "Gemm with transA = 1";
  return "";
}

std::vector<Positions> layerPositions(const onnx::Model& model, const graph::Discovery& d) {
  const graph::Shapes shapes = graph::inferShapes(model);  // the one static shape propagation
  std::vector<Positions> out(d.layers.size());
  for (size_t i = 0; i < d.layers.size(); ++i) {
    const graph::Layer& L = d.layers[i];
    if (!L.path.empty() || !L.node || L.node->outputs.empty()) continue;
    const Dims* y = shapes.of(L.node->outputs[0]);
    const Dims* x = L.node->inputs.empty() ? nullptr : shapes.of(L.node->inputs[0]);
    if (!y || y->size() < 2) continue;
    const size_t r = y->size();
    if (L.op == "Conv") {
      out[i].out = product(*y, 0, r) / static_cast<uint64_t>((*y)[1]);
      if (r == 4 && x && x->size() == 4) out[i].mid = static_cast<uint64_t>((*y)[0] * (*y)[2] * (*x)[3]);
    } else if (L.op == "Gemm" || L.op == "MatMul") {
      const size_t ch = L.weightOnLeft ? r - 2 : r - 1;
      out[i].out = product(*y, 0, r) / static_cast<uint64_t>((*y)[ch]);
    }
  }
  return out;
}

Result<LayerCurves> layerCurves(const onnx::Model& model, const graph::Discovery& discovery, const graph::Layer& L,
                                const Positions& pos, wire::Bytes weightExternal, bool prune) {
  LayerCurves lc;
  lc.layer = L.name;
  lc.params = L.layout.elementCount();
  lc.macs = pos.out ? lc.params * pos.out : 0;
  if (L.op == "Conv" && pos.out && L.groups > 1) lc.macs = lc.params * pos.out;  // params already I/g per output
  SvdFit fit = svdFit(L);
  if (fit.refused.empty()) fit.refused = writeRefusal(model, L, fit);
  Curve c;
  if (fit.refused.empty()) {
    auto values = analysis::layerWeightValues(L, weightExternal);
    if (!values.ok()) return values.error();
    const std::vector<double> m = svdMatrix(L, fit, values.value());
    c = svdCurve(fit, squaredSingularValues(m, fit.rows, fit.cols), lc.params, pos.out, pos.mid);
  } else {
    c.method =
        L.op == "Conv" && L.shape.size() == 4 && (L.shape[2] != 1 || L.shape[3] != 1) ? Method::SpatialSvd : Method::WeightSvd;
    c.refused = fit.refused;
  }
  lc.curves.push_back(std::move(c));
#if QL_HAVE_PRUNE
  if (prune) {
    Curve pc = pruneCurve(model, discovery, L);
    // The layer's MACs after are its weights kept times its output positions (as above).
    if (pos.out)
      for (Point& p : pc.points) p.macs = p.params * pos.out;
    lc.curves.push_back(std::move(pc));
  }
#else
  (void)discovery;
  (void)prune;
#endif
  return lc;
}

Result<bool> addSvdEdit(const onnx::Model& model, const graph::Layer& L, int64_t rank, wire::Bytes weightExternal,
                        onnx::GraphEdit& edit, std::vector<std::string>& used) {
  const SvdFit fit = svdFit(L);
  if (!fit.refused.empty()) return makeError(ErrorCode::Unsupported, "layer '" + L.name + "': " + fit.refused);
  const std::string why = writeRefusal(model, L, fit);
  if (!why.empty()) return makeError(ErrorCode::Unsupported, "layer '" + L.name + "' cannot be written split: " + why);
  auto values = analysis::layerWeightValues(L, weightExternal);
  if (!values.ok()) return values.error();
  const onnx::Node& n = *L.node;
  const bool conv = L.op == "Conv";
  SvdFactors f = svdFactors(fit, svdMatrix(L, fit, values.value()), rank, conv, L.weightOnLeft);
  const std::string base(L.weightName);
  onnx::TensorData t1, t2;
  t1.name = uniqueName(base + ".svd1", used);
  t2.name = uniqueName(base + ".svd2", used);
  t1.dims = f.firstDims;
  t2.dims = f.secondDims;
  t1.floats = std::move(f.first);
  t2.floats = std::move(f.second);
  const std::string mid = uniqueName(std::string(n.outputs.empty() ? L.name : n.outputs[0]) + ".svd_mid", used);
  const std::string nodeName = n.name.empty() ? L.name : std::string(n.name);
  onnx::NewNode a, b;
  a.after = b.after = L.nodeIndex;
  a.name = uniqueName(nodeName + ".svd1", used);
  b.name = uniqueName(nodeName + ".svd2", used);
  a.domain = b.domain = std::string(n.domain);
  a.outputs = {mid};
  for (auto s : n.outputs) b.outputs.emplace_back(s);
  // The node's data input: the one that is not the weight (or the bias).
  const int bias = L.spec->bias, weightInput = L.weightOnLeft ? 0 : 1, dataInput = L.weightOnLeft ? 1 : 0;
  if (n.inputs.size() < 2 || n.inputs[weightInput] != L.weightName)
    return makeError(ErrorCode::Unsupported, "layer '" + L.name + "': the weight is not the node's expected input");
  const std::string x(n.inputs[dataInput]);
  const bool hasBias = bias >= 0 && static_cast<size_t>(bias) < n.inputs.size() && !n.inputs[bias].empty();
  if (conv) {
    a.opType = b.opType = "Conv";
    a.inputs = {x, t1.name};
    b.inputs = {mid, t2.name};
    if (hasBias) b.inputs.emplace_back(n.inputs[bias]);
    if (fit.method == Method::WeightSvd) {
      a.attributes = copyAttributes(n, {"group"});
      const size_t k = L.shape.size() - 2;
      b.attributes = {onnx::NewAttribute::list("kernel_shape", Dims(k, 1))};
      if (k != 2) {  // 1-D / 3-D 1x1: factors carry the stored rank
        t1.dims.resize(2 + k, 1);
        t2.dims.resize(2 + k, 1);
      }
    } else {
      const Dims s = intsAttr(n, "strides", {1, 1}), dl = intsAttr(n, "dilations", {1, 1}), p = intsAttr(n, "pads", {0, 0, 0, 0});
      if (s.size() != 2 || dl.size() != 2 || p.size() != 4)
        return makeError(ErrorCode::Unsupported, "layer '" + L.name + "': strides, dilations or pads of an unexpected length");
      // auto_pad SAME_* pads each axis from its own size, kernel, stride and dilation, so
      // both halves carry it as it is (their other axis has kernel 1, stride 1: no pad).
      const std::string_view autoPad = strAttr(n, "auto_pad");
      const bool explicitPads = autoPad.empty() || autoPad == "NOTSET";
      auto common = [&](onnx::NewNode& nn) {
        if (!explicitPads) {
          nn.attributes.erase(std::remove_if(nn.attributes.begin(), nn.attributes.end(),
                                             [](const onnx::NewAttribute& x) { return x.name == "pads"; }),
                              nn.attributes.end());
          nn.attributes.push_back(onnx::NewAttribute::string("auto_pad", std::string(autoPad)));
        }
      };
      a.attributes = {onnx::NewAttribute::list("kernel_shape", {fit.kh, 1}), onnx::NewAttribute::list("strides", {s[0], 1}),
                      onnx::NewAttribute::list("dilations", {dl[0], 1}), onnx::NewAttribute::list("pads", {p[0], 0, p[2], 0})};
      b.attributes = {onnx::NewAttribute::list("kernel_shape", {1, fit.kw}), onnx::NewAttribute::list("strides", {1, s[1]}),
                      onnx::NewAttribute::list("dilations", {1, dl[1]}), onnx::NewAttribute::list("pads", {0, p[1], 0, p[3]})};
      common(a);
      common(b);
    }
  } else if (L.op == "Gemm") {
    a.opType = "MatMul";
    a.inputs = {x, t1.name};
    b.opType = "Gemm";
    b.inputs = {mid, t2.name};
    if (n.inputs.size() > 2 && !n.inputs[2].empty()) b.inputs.emplace_back(n.inputs[2]);
    b.attributes = copyAttributes(n, {"transA", "transB"});
  } else {  // MatMul
    a.opType = b.opType = "MatMul";
    if (L.weightOnLeft) {
      a.inputs = {t1.name, x};
      b.inputs = {t2.name, mid};
    } else {
      a.inputs = {x, t1.name};
      b.inputs = {mid, t2.name};
    }
  }
  edit.removeNodes.push_back(L.nodeIndex);
  edit.addNodes.push_back(std::move(a));
  edit.addNodes.push_back(std::move(b));
  edit.removeInitializers.emplace_back(L.weightName);
  edit.addInitializers.push_back(std::move(t1));
  edit.addInitializers.push_back(std::move(t2));
  return true;
}

Result<onnx::GraphEdit> planEdit(const onnx::Model& model, const graph::Discovery& d, const Plan& plan,
                                 const analysis::ExternalResolver* external, std::vector<WrittenLayer>* written) {
  onnx::GraphEdit edit;
  std::vector<std::string> used = graphNames(model);
  std::unordered_map<std::string_view, const graph::Layer*> byName;
  for (const graph::Layer& L : d.layers) byName.emplace(L.name, &L);
  for (const LayerChoice& c : plan.layers) {
    if (!c.compressed) continue;
    auto it = byName.find(c.layer);
    if (it == byName.end())
      return makeError(ErrorCode::InvalidArgument, "the plan names a layer the model does not have: '" + c.layer + "'");
    const graph::Layer& L = *it->second;
    wire::Bytes ext;
    if (L.weight && L.weight->external) {
      if (!external)
        return makeError(ErrorCode::MissingExternalData, "layer '" + L.name + "': its weight is in an external file");
      auto ref = onnx::externalRef(*L.weight);
      if (!ref.ok()) return ref.error();
      auto bytes = (*external)(*L.weight, ref.value());
      if (!bytes.ok()) return bytes.error();
      ext = bytes.value();
    }
    if (c.method == Method::ChannelPrune) {
#if QL_HAVE_PRUNE
      auto r = addPruneEdit(model, d, L, c.keep, edit);
      if (!r.ok()) return r.error();
      if (written) {
        WrittenLayer w{L.name, {}};
        if (L.node && !L.node->name.empty()) w.nodes.emplace_back(L.node->name);
        written->push_back(std::move(w));
      }
      continue;
#else
      return makeError(ErrorCode::Unsupported, "this build has no channel pruning (layer '" + L.name + "')");
#endif
    }
    auto r = addSvdEdit(model, L, c.keep, ext, edit, used);
    if (!r.ok()) return r.error();
    if (written) {  // addSvdEdit appends the layer's two nodes, first then second
      const size_t n = edit.addNodes.size();
      written->push_back({L.name, {edit.addNodes[n - 2].name, edit.addNodes[n - 1].name}});
    }
  }
  return edit;
}

}  // namespace ql::compress
