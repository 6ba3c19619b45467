#include "graph/shapes.hpp"

#include <algorithm>
#include <cmath>
#include <optional>
#include <string>
#include <unordered_set>

#include "graph/scope.hpp"
#include "onnx/tensor_data.hpp"

namespace ql::graph {

using onnx::Node;
using onnx::Tensor;
using Dims = std::vector<int64_t>;

namespace {

constexpr int64_t kMaxDim = int64_t{1} << 40;

bool sane(const Dims& d) {
  for (int64_t x : d)
    if (x < 0 || x > kMaxDim) return false;
  return true;
}

// Attribute and constant values past these bounds leave a shape unknown, so that no sum
// or product below can overflow (a hostile file's pads of 2^62, say).
bool within(const Dims& v, int64_t lo, int64_t hi) {
  for (int64_t x : v)
    if (x < lo || x > hi) return false;
  return true;
}
constexpr int64_t kMaxWindow = int64_t{1} << 20;  // kernel, stride, dilation

// The product of dims, or -1 past kMaxDim.
int64_t productOr(const Dims& d) {
  int64_t p = 1;
  for (int64_t x : d) {
    if (x < 0 || (x > 0 && p > kMaxDim / x)) return -1;
    p *= x;
  }
  return p;
}

std::optional<std::vector<int64_t>> intsAttr(const Node& n, std::string_view name) {
  const onnx::Attribute* a = n.attribute(name);
  if (!a) return std::nullopt;
  return a->ints;
}

class Inference {
 public:
  explicit Inference(const onnx::Model& model) : g_(model.graph) {
    scope_.index(g_);
    for (const auto& in : g_.inputs) {
      if (!in.hasType || !in.hasShape) continue;
      Dims d;
      bool ok = true;
      for (const auto& dim : in.shape) {
        if (!dim.hasValue || dim.value < 0) ok = false;
        d.push_back(dim.value);
      }
      if (ok && sane(d)) out_.known[in.name] = d;
    }
    for (const auto& t : g_.initializers)
      if (sane(t.dims)) out_.known[t.name] = t.dims;
    for (const auto& n : g_.nodes) {
      if (!isOp(&n, "Constant") || n.outputs.empty()) continue;
      if (const auto* a = n.attribute("value"); a && a->t && sane(a->t->dims)) out_.known[n.outputs[0]] = a->t->dims;
      for (const char* scalar : {"value_float", "value_int", "value_string"})
        if (n.attribute(scalar)) out_.known[n.outputs[0]] = Dims{};
      if (const auto* a = n.attribute("value_floats")) out_.known[n.outputs[0]] = Dims{static_cast<int64_t>(a->floats.size())};
      if (const auto* a = n.attribute("value_ints")) out_.known[n.outputs[0]] = Dims{static_cast<int64_t>(a->ints.size())};
    }
  }

  Shapes run() {
    // Nodes are in topological order in a valid graph; a few passes settle any that are not.
    for (int pass = 0; pass < 4; ++pass) {
      bool changed = false;
      for (const Node& n : g_.nodes) {
        if (n.outputs.empty() || n.outputs[0].empty() || out_.known.count(n.outputs[0])) continue;
        if (isOp(&n, "Split")) {
          std::vector<Dims> parts = split(n);
          for (size_t k = 0; k < parts.size() && k < n.outputs.size(); ++k)
            if (!n.outputs[k].empty() && sane(parts[k])) out_.known[n.outputs[k]] = parts[k];
          changed |= !parts.empty();
          continue;
        }
        std::optional<Dims> d = infer(n);
        if (d && sane(*d)) {
          out_.known[n.outputs[0]] = *d;
          changed = true;
        }
      }
      if (!changed) break;
    }
    return std::move(out_);
  }

 private:
  const Dims* shape(std::string_view v) const { return v.empty() ? nullptr : out_.of(v); }

  // Constant integer values of an input (shape tensors, axes, pads).
  std::optional<std::vector<int64_t>> constInts(std::string_view v) const {
    if (v.empty()) return std::nullopt;
    const Tensor* t = scope_.constant(v);
    if (!t) return std::nullopt;
    auto r = onnx::readAsDouble(*t);
    if (!r.ok()) return std::nullopt;
    std::vector<int64_t> out;
    for (double x : r.value()) {
      if (std::isnan(x)) return std::nullopt;
      // Slice's "to the end" is INT64_MAX; past ±2^62 every use here clamps or refuses.
      constexpr double kBig = 4.6e18;
      out.push_back(x >= kBig ? int64_t{1} << 62 : x <= -kBig ? -(int64_t{1} << 62) : static_cast<int64_t>(x));
    }
    return out;
  }
  std::optional<std::vector<double>> constDoubles(std::string_view v) const {
    if (v.empty()) return std::nullopt;
    const Tensor* t = scope_.constant(v);
    if (!t) return std::nullopt;
    auto r = onnx::readAsDouble(*t);
    if (!r.ok()) return std::nullopt;
    return r.value();
  }

  static std::optional<Dims> broadcast(const std::vector<const Dims*>& ins) {
    size_t rank = 0;
    for (const Dims* d : ins) {
      if (!d) return std::nullopt;
      rank = std::max(rank, d->size());
    }
    Dims out(rank, 1);
    for (const Dims* d : ins) {
      const size_t off = rank - d->size();
      for (size_t i = 0; i < d->size(); ++i) {
        const int64_t x = (*d)[i];
        int64_t& o = out[off + i];
        if (x == o || x == 1) continue;
        if (o == 1) {
          o = x;
          continue;
        }
        return std::nullopt;  // not broadcastable
      }
    }
    return out;
  }

  // Spatial output sizes of a convolution or pool over `x` (N, C, spatial...).
  std::optional<Dims> windowed(const Node& n, const Dims& x, const Dims& kernel, bool ceilMode) const {
    const size_t sp = x.size() - 2;
    if (kernel.size() != sp) return std::nullopt;
    const Dims strides = intsAttr(n, "strides").value_or(Dims(sp, 1));
    const Dims dilations = intsAttr(n, "dilations").value_or(Dims(sp, 1));
    Dims pads = intsAttr(n, "pads").value_or(Dims(2 * sp, 0));
    if (strides.size() != sp || dilations.size() != sp || pads.size() != 2 * sp) return std::nullopt;
    if (!within(strides, 1, kMaxWindow) || !within(dilations, 1, kMaxWindow) || !within(kernel, 1, kMaxWindow) ||
        !within(pads, 0, kMaxDim))
      return std::nullopt;
    std::string_view autoPad = "NOTSET";
    if (const auto* a = n.attribute("auto_pad"); a && a->hasS) autoPad = a->s;
    Dims out;
    for (size_t i = 0; i < sp; ++i) {
      const int64_t in = x[2 + i], s = strides[i], dl = dilations[i], k = kernel[i];
      if (s < 1 || dl < 1 || k < 1) return std::nullopt;
      const int64_t eff = (k - 1) * dl + 1;
      int64_t o;
      if (autoPad == "SAME_UPPER" || autoPad == "SAME_LOWER") {
        o = (in + s - 1) / s;
      } else if (autoPad == "VALID") {
        if (in < eff) return std::nullopt;
        o = (in - eff) / s + 1;
      } else if (autoPad == "NOTSET" || autoPad.empty()) {
        const int64_t span = in + pads[i] + pads[i + sp] - eff;
        if (span < 0) return std::nullopt;
        o = (ceilMode ? (span + s - 1) / s : span / s) + 1;
      } else {
        return std::nullopt;
      }
      out.push_back(o);
    }
    return out;
  }

  // Split: `split` (attribute before opset 13, input after), else num_outputs / the number
  // of outputs equal parts (the last one smaller when they do not divide evenly, opset 18).
  std::vector<Dims> split(const Node& n) const {
    const Dims* x = shape(input(n, size_t{0}));
    if (!x || n.outputs.empty()) return {};
    const int64_t r = static_cast<int64_t>(x->size());
    int64_t axis = n.intAttr("axis", 0);
    if (axis < 0) axis += r;
    if (axis < 0 || axis >= r) return {};
    const int64_t total = (*x)[static_cast<size_t>(axis)];
    std::optional<Dims> sizes = intsAttr(n, "split");
    if (!sizes && n.inputs.size() > 1 && !n.inputs[1].empty()) {
      sizes = constInts(n.inputs[1]);
      if (!sizes) return {};
    }
    if (sizes && !within(*sizes, 0, kMaxDim)) return {};
    const int64_t parts = static_cast<int64_t>(n.outputs.size());
    if (!sizes) {
      const int64_t each = (total + parts - 1) / parts;
      sizes = Dims{};
      for (int64_t k = 0, left = total; k < parts; ++k, left -= each)
        sizes->push_back(std::min(each, std::max<int64_t>(left, 0)));
    }
    int64_t sum = 0;
    for (int64_t v : *sizes) sum += v < 0 ? total + 1 : v;
    if (sum != total || static_cast<int64_t>(sizes->size()) != parts) return {};
    std::vector<Dims> out;
    for (int64_t v : *sizes) {
      Dims d = *x;
      d[static_cast<size_t>(axis)] = v;
      out.push_back(d);
    }
    return out;
  }

  // Slice with constant starts, ends, axes and steps (inputs from opset 10, attributes before).
  std::optional<Dims> slice(const Node& n, const Dims& x) const {
    std::optional<Dims> starts, ends, axes, steps;
    if (n.inputs.size() > 1) {
      starts = constInts(input(n, size_t{1}));
      ends = constInts(input(n, size_t{2}));
      if (!input(n, size_t{3}).empty() && !(axes = constInts(input(n, size_t{3})))) return std::nullopt;
      if (!input(n, size_t{4}).empty() && !(steps = constInts(input(n, size_t{4})))) return std::nullopt;
    } else {
      starts = intsAttr(n, "starts");
      ends = intsAttr(n, "ends");
      axes = intsAttr(n, "axes");
    }
    if (!starts || !ends || starts->size() != ends->size()) return std::nullopt;
    const int64_t r = static_cast<int64_t>(x.size());
    if (!axes) {
      axes = Dims{};
      for (size_t i = 0; i < starts->size(); ++i) axes->push_back(static_cast<int64_t>(i));
    }
    if (!steps) steps = Dims(starts->size(), 1);
    if (axes->size() != starts->size() || steps->size() != starts->size()) return std::nullopt;
    Dims out = x;
    for (size_t i = 0; i < starts->size(); ++i) {
      int64_t a = (*axes)[i];
      if (a < 0) a += r;
      if (a < 0 || a >= r) return std::nullopt;
      const int64_t dim = x[static_cast<size_t>(a)], step = (*steps)[i];
      if (step == 0) return std::nullopt;
      // The operator's definition: clamp start and end, then count the steps.
      auto clampIndex = [&](int64_t v, int64_t lo, int64_t hi) {
        if (v < 0) v += dim;
        return std::max(lo, std::min(hi, v));
      };
      int64_t len;
      if (step > 0) {
        const int64_t s = clampIndex((*starts)[i], 0, dim), e = clampIndex((*ends)[i], 0, dim);
        len = e > s ? (e - s + step - 1) / step : 0;
      } else {
        const int64_t s = clampIndex((*starts)[i], 0, dim - 1), e = clampIndex((*ends)[i], -1, dim - 1);
        len = s > e ? (s - e + (-step) - 1) / (-step) : 0;
      }
      out[static_cast<size_t>(a)] = len;
    }
    return out;
  }

  std::optional<Dims> infer(const Node& n) const {
    if (!(n.domain.empty() || n.domain == "ai.onnx")) return std::nullopt;
    const std::string_view op = n.opType;
    const Dims* x = shape(input(n, size_t{0}));
    static const std::unordered_set<std::string_view> same = {"Relu",
                                                              "LeakyRelu",
                                                              "PRelu",
                                                              "Sigmoid",
                                                              "Tanh",
                                                              "HardSigmoid",
                                                              "HardSwish",
                                                              "Elu",
                                                              "Selu",
                                                              "Celu",
                                                              "Gelu",
                                                              "Softplus",
                                                              "Softsign",
                                                              "Identity",
                                                              "Cast",
                                                              "Clip",
                                                              "Dropout",
                                                              "Abs",
                                                              "Neg",
                                                              "Erf",
                                                              "Exp",
                                                              "Log",
                                                              "Mish",
                                                              "ThresholdedRelu",
                                                              "Sqrt",
                                                              "Reciprocal",
                                                              "Floor",
                                                              "Ceil",
                                                              "Round",
                                                              "Softmax",
                                                              "LogSoftmax",
                                                              "BatchNormalization",
                                                              "InstanceNormalization",
                                                              "LRN",
                                                              "LayerNormalization",
                                                              "Not",
                                                              "Sign",
                                                              "Sin",
                                                              "Cos",
                                                              "IsNaN",
                                                              "QuantizeLinear",
                                                              "DequantizeLinear"};
    if (same.count(op)) {
      if (op == "PRelu") {  // the slope broadcasts to X (and may not widen it, by the spec)
        const Dims* s = shape(input(n, size_t{1}));
        auto b = broadcast({x, s});
        return b && x && *b == *x ? b : std::nullopt;
      }
      if (!x) return std::nullopt;
      return *x;
    }
    static const std::unordered_set<std::string_view> binary = {"Add",  "Sub",   "Mul",  "Div",     "Pow", "Max", "Min",  "Sum",
                                                                "Mean", "Equal", "Less", "Greater", "And", "Or",  "Where"};
    if (binary.count(op)) {
      std::vector<const Dims*> ins;
      for (auto i : n.inputs) ins.push_back(shape(i));
      if (ins.empty()) return std::nullopt;
      return broadcast(ins);
    }
    if (op == "Conv" || op == "ConvTranspose") {
      const Dims* w = shape(input(n, size_t{1}));
      if (!x || !w || x->size() < 3 || w->size() != x->size()) return std::nullopt;
      const int64_t group = n.intAttr("group", 1);
      if (group < 1) return std::nullopt;
      Dims kernel(w->begin() + 2, w->end());
      if (auto ks = intsAttr(n, "kernel_shape"); ks && *ks != kernel) return std::nullopt;
      if (op == "Conv") {
        if ((*x)[1] != (*w)[1] * group) return std::nullopt;
        auto sp = windowed(n, *x, kernel, false);
        if (!sp) return std::nullopt;
        Dims out = {(*x)[0], (*w)[0]};
        out.insert(out.end(), sp->begin(), sp->end());
        return out;
      }
      // ConvTranspose: W [C, M/group, k...]
      if ((*x)[1] != (*w)[0]) return std::nullopt;
      const size_t sp = x->size() - 2;
      Dims out = {(*x)[0], (*w)[1] * group};
      if (auto os = intsAttr(n, "output_shape")) {
        if (os->size() == sp) {
          out.insert(out.end(), os->begin(), os->end());
          return out;
        }
        if (os->size() == sp + 2) return Dims(os->begin(), os->end());
        return std::nullopt;
      }
      const Dims strides = intsAttr(n, "strides").value_or(Dims(sp, 1));
      const Dims dilations = intsAttr(n, "dilations").value_or(Dims(sp, 1));
      const Dims outPad = intsAttr(n, "output_padding").value_or(Dims(sp, 0));
      const Dims pads = intsAttr(n, "pads").value_or(Dims(2 * sp, 0));
      if (strides.size() != sp || dilations.size() != sp || outPad.size() != sp || pads.size() != 2 * sp) return std::nullopt;
      if (!within(strides, 1, kMaxWindow) || !within(dilations, 1, kMaxWindow) || !within(kernel, 1, kMaxWindow) ||
          !within(pads, 0, kMaxDim) || !within(outPad, 0, kMaxDim))
        return std::nullopt;
      std::string_view autoPad = "NOTSET";
      if (const auto* a = n.attribute("auto_pad"); a && a->hasS) autoPad = a->s;
      for (size_t i = 0; i < sp; ++i) {
        const int64_t in = (*x)[2 + i];
        if (autoPad == "SAME_UPPER" || autoPad == "SAME_LOWER") {
          out.push_back(in * strides[i]);
        } else if (autoPad == "NOTSET" || autoPad.empty() || autoPad == "VALID") {
          const bool valid = autoPad == "VALID";
          out.push_back(strides[i] * (in - 1) + outPad[i] + (kernel[i] - 1) * dilations[i] + 1 -
                        (valid ? 0 : pads[i] + pads[i + sp]));
        } else {
          return std::nullopt;
        }
      }
      return out;
    }
    if (op == "MaxPool" || op == "AveragePool" || op == "LpPool") {
      if (!x || x->size() < 3) return std::nullopt;
      auto ks = intsAttr(n, "kernel_shape");
      if (!ks) return std::nullopt;
      auto sp = windowed(n, *x, *ks, n.intAttr("ceil_mode", 0) != 0);
      if (!sp) return std::nullopt;
      Dims out = {(*x)[0], (*x)[1]};
      out.insert(out.end(), sp->begin(), sp->end());
      return out;
    }
    if (op == "GlobalAveragePool" || op == "GlobalMaxPool" || op == "GlobalLpPool") {
      if (!x || x->size() < 3) return std::nullopt;
      Dims out = {(*x)[0], (*x)[1]};
      out.resize(x->size(), 1);
      return out;
    }
    if (op == "Concat") {
      const int64_t r = x ? static_cast<int64_t>(x->size()) : 0;
      int64_t axis = n.intAttr("axis", 1);
      if (axis < 0) axis += r;
      if (!x || axis < 0 || axis >= r) return std::nullopt;
      Dims out = *x;
      out[static_cast<size_t>(axis)] = 0;
      for (auto i : n.inputs) {
        const Dims* d = shape(i);
        if (!d || d->size() != x->size()) return std::nullopt;
        for (size_t k = 0; k < d->size(); ++k)
          if (static_cast<int64_t>(k) != axis && (*d)[k] != (*x)[k]) return std::nullopt;
        out[static_cast<size_t>(axis)] += (*d)[static_cast<size_t>(axis)];
      }
      return out;
    }
    if (op == "Flatten") {
      if (!x) return std::nullopt;
      const int64_t r = static_cast<int64_t>(x->size());
      int64_t axis = n.intAttr("axis", 1);
      if (axis < 0) axis += r;
      if (axis < 0 || axis > r) return std::nullopt;
      const int64_t a = productOr(Dims(x->begin(), x->begin() + axis)), b = productOr(Dims(x->begin() + axis, x->end()));
      if (a < 0 || b < 0) return std::nullopt;
      return Dims{a, b};
    }
    if (op == "Reshape") {
      auto target = constInts(input(n, size_t{1}));
      if (!x || !target) return std::nullopt;
      const bool allowZero = n.intAttr("allowzero", 0) != 0;
      const int64_t total = productOr(*x);
      int64_t known = 1;
      if (total < 0 || !within(*target, -1, kMaxDim)) return std::nullopt;
      Dims out;
      int minus = -1;
      for (size_t i = 0; i < target->size(); ++i) {
        int64_t d = (*target)[i];
        if (d == 0 && !allowZero) {
          if (i >= x->size()) return std::nullopt;
          d = (*x)[i];
        }
        if (d == -1) {
          if (minus >= 0) return std::nullopt;
          minus = static_cast<int>(i);
          out.push_back(1);
          continue;
        }
        if (d < 0 || (d > 0 && known > kMaxDim / d)) return std::nullopt;
        known *= d;
        out.push_back(d);
      }
      if (minus >= 0) {
        if (known == 0 || total % known) return std::nullopt;
        out[static_cast<size_t>(minus)] = total / known;
      } else if (known != total) {
        return std::nullopt;
      }
      return out;
    }
    if (op == "Transpose") {
      if (!x) return std::nullopt;
      Dims perm = intsAttr(n, "perm").value_or(Dims{});
      if (perm.empty())
        for (size_t i = x->size(); i-- > 0;) perm.push_back(static_cast<int64_t>(i));
      if (perm.size() != x->size()) return std::nullopt;
      Dims out;
      for (int64_t p : perm) {
        if (p < 0 || p >= static_cast<int64_t>(x->size())) return std::nullopt;
        out.push_back((*x)[static_cast<size_t>(p)]);
      }
      return out;
    }
    if (op == "Squeeze" || op == "Unsqueeze") {
      if (!x) return std::nullopt;
      std::optional<Dims> axes = intsAttr(n, "axes");
      if (!axes && n.inputs.size() > 1) axes = constInts(n.inputs[1]);
      if (op == "Squeeze") {
        Dims out;
        const int64_t r = static_cast<int64_t>(x->size());
        std::unordered_set<int64_t> drop;
        if (axes) {
          for (int64_t a : *axes) {
            if (a < 0) a += r;
            if (a < 0 || a >= r || (*x)[static_cast<size_t>(a)] != 1) return std::nullopt;
            drop.insert(a);
          }
        }
        for (int64_t i = 0; i < r; ++i) {
          const int64_t d = (*x)[static_cast<size_t>(i)];
          if (axes ? drop.count(i) != 0 : d == 1) continue;
          out.push_back(d);
        }
        return out;
      }
      if (!axes) return std::nullopt;
      const int64_t r = static_cast<int64_t>(x->size() + axes->size());
      std::vector<bool> inserted(static_cast<size_t>(r), false);
      for (int64_t a : *axes) {
        if (a < 0) a += r;
        if (a < 0 || a >= r || inserted[static_cast<size_t>(a)]) return std::nullopt;
        inserted[static_cast<size_t>(a)] = true;
      }
      Dims out;
      size_t k = 0;
      for (int64_t i = 0; i < r; ++i) out.push_back(inserted[static_cast<size_t>(i)] ? 1 : (*x)[k++]);
      return out;
    }
    if (op == "Pad") {
      if (!x) return std::nullopt;
      std::optional<Dims> pads = intsAttr(n, "pads");
      if (!pads && n.inputs.size() > 1) pads = constInts(n.inputs[1]);
      if (!pads || pads->size() != 2 * x->size() || (n.inputs.size() > 3 && !input(n, size_t{3}).empty()) ||
          !within(*pads, -kMaxDim, kMaxDim))
        return std::nullopt;
      Dims out = *x;
      for (size_t i = 0; i < x->size(); ++i) out[i] += (*pads)[i] + (*pads)[i + x->size()];
      return out;
    }
    if (op == "Resize" || op == "Upsample") {
      if (!x) return std::nullopt;
      std::optional<std::vector<double>> scales;
      if (op == "Upsample") {
        if (const auto* a = n.attribute("scales"); a && !a->floats.empty())
          scales = std::vector<double>(a->floats.begin(), a->floats.end());
        else if (n.inputs.size() > 1)
          scales = constDoubles(n.inputs[1]);
      } else {
        // opset 10: (X, scales); opset 11+: (X, roi, scales, sizes)
        if (n.inputs.size() == 2) {
          scales = constDoubles(n.inputs[1]);
        } else {
          if (auto sizes = constInts(input(n, size_t{3})); sizes && !sizes->empty()) {
            if (sizes->size() != x->size() || n.attribute("axes")) return std::nullopt;
            return *sizes;
          }
          scales = constDoubles(input(n, size_t{2}));
        }
        if (n.attribute("axes")) return std::nullopt;
      }
      if (!scales || scales->size() != x->size()) return std::nullopt;
      Dims out;
      for (size_t i = 0; i < x->size(); ++i) {
        const double s = (*scales)[i];
        const double v = std::floor(static_cast<double>((*x)[i]) * s);
        if (!(s > 0) || !std::isfinite(s) || !(v <= static_cast<double>(kMaxDim))) return std::nullopt;
        out.push_back(static_cast<int64_t>(v));
      }
      return out;
    }
    if (op == "Slice") return x ? slice(n, *x) : std::nullopt;
    if (op == "ConstantOfShape") {
      auto dims = constInts(input(n, size_t{0}));
      if (!dims) return std::nullopt;
      return *dims;
    }
    if (op == "Gemm") {
      const Dims* b = shape(input(n, size_t{1}));
      if (!x || !b || x->size() != 2 || b->size() != 2) return std::nullopt;
      const bool ta = n.intAttr("transA", 0) != 0, tb = n.intAttr("transB", 0) != 0;
      const int64_t M = ta ? (*x)[1] : (*x)[0], K = ta ? (*x)[0] : (*x)[1];
      const int64_t K2 = tb ? (*b)[1] : (*b)[0], N = tb ? (*b)[0] : (*b)[1];
      if (K != K2) return std::nullopt;
      return Dims{M, N};
    }
    if (op == "MatMul") {
      const Dims* b = shape(input(n, size_t{1}));
      if (!x || !b || x->empty() || b->empty()) return std::nullopt;
      Dims a2 = *x, b2 = *b;
      const bool aVec = a2.size() == 1, bVec = b2.size() == 1;
      if (aVec) a2.insert(a2.begin(), 1);
      if (bVec) b2.push_back(1);
      if (a2.back() != b2[b2.size() - 2]) return std::nullopt;
      const Dims ab(a2.begin(), a2.end() - 2), bb(b2.begin(), b2.end() - 2);
      auto batch = broadcast({&ab, &bb});
      if (!batch) return std::nullopt;
      Dims out = *batch;
      if (!aVec) out.push_back(a2[a2.size() - 2]);
      if (!bVec) out.push_back(b2.back());
      return out;
    }
    return std::nullopt;
  }

  const onnx::Graph& g_;
  Scope scope_;
  Shapes out_;
};

uint64_t product(const Dims& d) {
  uint64_t p = 1;
  for (int64_t x : d) p *= static_cast<uint64_t>(x);
  return p;
}

}  // namespace

Shapes inferShapes(const onnx::Model& model) {
  if (!model.hasGraph) return {};
  return Inference(model).run();
}

uint64_t macsOf(const Layer& layer, const Shapes& shapes) {
  if (!layer.path.empty() || !layer.spec || !layer.node || !layer.weight || layer.quant.blockwise()) return 0;
  const OpFamily family = layer.spec->family;
  uint64_t w = 0;
  if (!layer.weight->elementCount(&w) || w == 0 || layer.shape.empty()) return 0;
  const std::string_view out = layer.node->outputs.empty() ? std::string_view{} : layer.node->outputs[0];
  if (family == OpFamily::Conv) {
    const Dims* y = shapes.of(out);
    const uint64_t O = layer.layout.channelCount();
    if (!y || O == 0) return 0;
    return product(*y) / O * w;
  }
  if (family == OpFamily::ConvTranspose) {
    const Dims* x = shapes.of(input(*layer.node, size_t{0}));
    if (!x || layer.inputAxis < 0 || static_cast<size_t>(layer.inputAxis) >= layer.shape.size() ||
        layer.shape[static_cast<size_t>(layer.inputAxis)] <= 0)
      return 0;
    return product(*x) / static_cast<uint64_t>(layer.shape[static_cast<size_t>(layer.inputAxis)]) * w;
  }
  if (family == OpFamily::Gemm || family == OpFamily::MatMul) {
    const Dims* y = shapes.of(out);
    if (!y || layer.inputAxis < 0 || static_cast<size_t>(layer.inputAxis) >= layer.shape.size()) return 0;
    return product(*y) * static_cast<uint64_t>(layer.shape[static_cast<size_t>(layer.inputAxis)]);
  }
  return 0;
}

}  // namespace ql::graph
