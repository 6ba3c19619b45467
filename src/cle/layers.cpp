#include "cle/layers.hpp"

#include <algorithm>
#include <limits>
#include <string>

#include "common/alloc.hpp"

namespace ql::cle {

namespace {

// Reads one layer, or says (through a stop) why it is left out. The checks run in
// this order so that each layer's stop names the first reason that applies.
void collect(const graph::Layer& L, const ModelIndex& index, EqLayers& layers, Report& report) {
  const std::string& nm = L.name;
  // The stop is at the layer's own node, whose display name is the layer's name. (It is
  // not index.nameOf(L.node): a layer inside a sub-graph is no node of the main graph.)
  // A recurrent layer's node is named without the layer's "/W" or "/R".
  const std::string& node = L.recurrent.part != graph::RecurrentPart::None ? L.recurrent.node : nm;
  auto stop = [&](std::string reason) { report.stops.push_back({nm, node, std::string(L.node->opType), std::move(reason)}); };
  if (L.spec && L.spec->family == graph::OpFamily::Recurrent) return stop(kRecurrentStop);
  if (!L.path.empty()) return stop("inside a sub-graph (" + L.path + "): not equalized");
  if (L.quant.present) return stop("weights are quantized (" + std::string(L.quant.via) + "): not equalized");
  const std::string_view op = L.op;
  if (!equalizedOp(L)) return stop(std::string(op) + " is not equalized");
  if (!L.via.empty()) return stop("weight reaches the layer through " + std::string(L.via[0]) + ": not equalized");
  EqLayer w;
  w.layer = &L;
  const onnx::Node& n = *L.node;
  std::string why;
  if (!index.checkFloats(L.weight, &why)) {
    // Exporters such as paddle2onnx store every weight as a Constant node: say so, and what
    // to do, rather than only what it is not.
    if (!index.isMainInitializer(L.weight) && graph::isOp(index.scope().producer(L.weightName), "Constant"))
      why =
          "is the value of a Constant node, not an initializer: CLE rewrites initializers only (onnx-simplifier or "
          "onnxruntime's offline graph optimization turn Constant nodes into initializers)";
    return stop("weight " + std::string(L.weightName) + " " + why);
  }
  if (index.uses(L.weightName) != 1) return stop("weight " + std::string(L.weightName) + " is shared with other nodes");
  auto view = weightView(L);
  if (auto* reason = std::get_if<std::string>(&view)) return stop(*reason);
  w.view = std::get<WeightView>(view);
  using F = graph::OpFamily;
  const F family = L.spec->family;
  if (family == F::Conv) {
    const auto* pads = n.attribute("pads");
    const auto* autoPad = n.attribute("auto_pad");
    w.padded = (autoPad && autoPad->s != "NOTSET" && autoPad->s != "VALID") ||
               (pads && std::any_of(pads->ints.begin(), pads->ints.end(), [](int64_t p) { return p != 0; }));
  } else if (family == F::ConvTranspose) {
    w.padded = true;  // not used as a target of absorption
  } else {
    if (family == F::Gemm) {
      if (const auto* a = n.attribute("alpha"); a && a->hasF) w.alpha = a->f;
      if (const auto* a = n.attribute("beta"); a && a->hasF) w.beta = a->f;
      if (w.alpha == 0 || w.beta == 0) return stop("Gemm with alpha or beta 0: not equalized");
    }
    w.padded = family == F::Gemm && n.intAttr("transA", 0) != 0;  // as layer 2 its input would be transposed
  }
  const uint64_t outC = w.view.outC;
  if (outC == 0 || w.view.inC == 0) return stop("empty weight");
  w.outValue = n.outputs.empty() ? std::string_view{} : n.outputs[0];
  w.outNode = &n;
  // PyTorch's exporter shares identical biases (often zeros) between layers through
  // Identity nodes: such a layer gets a bias of its own in the written model.
  const onnx::Tensor* bias = L.bias ? L.bias : index.constantThroughIdentity(L.biasName);
  if (bias) {
    w.hasBias = true;
    w.biasTensor = bias;
    w.biasOwn = bias == L.bias && index.uses(L.biasName) == 1 && index.isMainInitializer(bias);
    if (bias->dataType != onnx::kFloat) return stop("bias " + std::string(L.biasName) + " is not float32 stored in the file");
    if (!readFloatData(index.loaded(*bias), &w.b, &why)) return stop("bias " + std::string(L.biasName) + ": " + why);
    if (w.b.size() != outC) return stop("bias " + std::string(L.biasName) + " does not hold one value per output channel");
    w.biasNode = &n;
    if (L.biasAdd && bias == L.bias) {  // bias through an Add: that Add's output is the layer's
      w.outNode = L.biasAdd;
      w.biasNode = L.biasAdd;
      w.outValue = L.biasAdd->outputs[0];
    } else if (family == F::Gemm) {
      w.biasScale = w.beta;
    }
    for (float& x : w.b) x = static_cast<float>(x * w.biasScale);
  } else if (!L.biasName.empty()) {
    return stop("bias " + std::string(L.biasName) + " is not a constant");
  } else {
    w.b.assign(outC, 0.0f);
  }
  w.outDiv.assign(outC, 1.0);
  w.inMul.assign(w.view.inC, 1.0);
  layers.byNode[L.node] = layers.items.size();
  layers.items.push_back(std::move(w));
}

}  // namespace

namespace {
// Whether a float32 copy of `bytes` can be made (checked before: a vector that cannot grow
// aborts a WebAssembly instance); else the first error says so.
bool roomFor(const graph::Layer& L, uint64_t bytes, Error* error) {
  if (bytes <= std::numeric_limits<size_t>::max() && canAllocate(static_cast<size_t>(bytes))) return true;
  if (error->ok())
    *error = makeError(ErrorCode::InvalidArgument, "cannot hold the " + std::to_string(bytes >> 20) + " MB float32 weight of " +
                                                       L.name + " to equalize it (the WebAssembly heap ends at 4 GB)");
  return false;
}

// A read of L's weight failed: the first error says why.
void readFailed(const graph::Layer& L, const std::string& why, Error* error) {
  if (error->ok())
    *error = makeError(L.weight->external ? ErrorCode::MissingExternalData : ErrorCode::InvalidModel,
                       "weight " + std::string(L.weightName) + " " + why);
}
}  // namespace

bool EqLayers::load(EqLayer& w, const ModelIndex& index) {
  if (w.loaded) return true;
  const graph::Layer& L = *w.layer;
  const uint64_t bytes = w.view.A * w.view.B * w.view.inner * sizeof(float);
  // Raw data beyond the budget for held copies is read again, a piece at a time, when needed.
  if (index.rawSlices(L.weight) && !mayHold(bytes, holdBudget)) {
    w.streamed = true;
    w.loaded = true;
    return true;
  }
  if (!roomFor(L, bytes, &error)) return false;
  std::string why;
  if (!index.readFloats(L.weight, &w.w, &why)) {
    readFailed(L, why, &error);
    return false;
  }
  heldBytes += w.w.size() * sizeof(float);
  w.loaded = true;
  return true;
}

bool EqLayers::hold(EqLayer& w, const ModelIndex& index) {
  if (!w.loaded) return false;
  if (!w.streamed) return true;
  const graph::Layer& L = *w.layer;
  const uint64_t n = w.view.A * w.view.B * w.view.inner, bytes = n * sizeof(float);
  if (!roomFor(L, bytes, &error)) return false;
  std::vector<float> held(static_cast<size_t>(n));
  if (!stream(w, index, 0, [&](uint64_t first, const float* x, uint64_t count) {
        std::copy_n(x, count, held.data() + first);
        return true;
      }))
    return false;
  w.w = std::move(held);
  heldBytes += w.w.size() * sizeof(float);
  w.streamed = false;
  w.ops.clear();
  return true;
}

namespace {
// Elements per piece read by stream(): 4 MB of float32, rounded to whole rows.
constexpr uint64_t kStreamElements = 1 << 20;

uint64_t gcd(uint64_t a, uint64_t b) {
  while (b) {
    const uint64_t t = a % b;
    a = b;
    b = t;
  }
  return a;
}
}  // namespace

bool EqLayers::stream(EqLayer& w, const ModelIndex& index, uint64_t unit,
                      const std::function<bool(uint64_t, const float*, uint64_t)>& fn) {
  const WeightView& v = w.view;
  const uint64_t n = v.A * v.B * v.inner;
  if (!w.streamed) return n == 0 || fn(0, w.w.data(), n);
  const uint64_t row = v.B * v.inner;
  if (row == 0) return true;
  uint64_t step = unit ? unit / gcd(row, unit) : 1;  // rows per piece: a multiple of this
  uint64_t rows = std::max<uint64_t>(step, kStreamElements / row / step * step);
  rows = std::min(rows, v.A);
  std::vector<float> buf(static_cast<size_t>(rows * row));
  const graph::Layer& L = *w.layer;
  for (uint64_t a = 0; a < v.A; a += rows) {
    const uint64_t first = a * row, count = std::min(rows, v.A - a) * row;
    std::string why;
    if (!index.readRaw(L.weight, first * sizeof(float), reinterpret_cast<uint8_t*>(buf.data()), count * sizeof(float), &why)) {
      readFailed(L, why, &error);
      return false;
    }
    replayOps(v, w.ops, w.inMul, w.outDiv, first, buf.data(), count);
    if (!fn(first, buf.data(), count)) return false;
  }
  return true;
}

bool EqLayers::forEachRun(EqLayer& w, const ModelIndex& index,
                          const std::function<void(uint64_t, uint64_t, const float*, uint64_t)>& fn) {
  const WeightView& v = w.view;
  return stream(w, index, v.inner, [&](uint64_t first, const float* x, uint64_t count) {
    for (uint64_t r = first / v.inner, end = (first + count) / v.inner; r < end; ++r) {
      const uint64_t a = r / v.B, b = r % v.B;
      fn(v.outOf(a, b), v.inOf(a, b), x + (r * v.inner - first), v.inner);
    }
    return true;
  });
}

void EqLayers::multiply(EqLayer& w, EqLayer::ChannelOp op) {
  if (w.streamed) {
    w.ops.push_back(std::move(op));
    return;
  }
  replayOps(w.view, {op}, w.inMul, w.outDiv, 0, w.w.data(), w.w.size());
}

void replayOps(const WeightView& v, const std::vector<EqLayer::ChannelOp>& ops, const std::vector<double>& inMul,
               const std::vector<double>& outDiv, uint64_t first, float* x, uint64_t count) {
  if (ops.empty() || count == 0) return;
  using K = EqLayer::ChannelOp;
  const uint64_t row = v.B * v.inner, end = first + count;
  for (uint64_t e = first; e < end;) {
    // One row's part: each op over it in turn (each element still takes the ops in order).
    const uint64_t a = e / row, segEnd = std::min(end, (a + 1) * row);
    float* seg = x + (e - first);
    const uint64_t segN = segEnd - e;
    for (const K& op : ops) {
      const bool rowScalar = op.kind != K::Scales && ((op.kind == K::Out) == v.outIsA);
      if (rowScalar) {
        const float s = op.f[a];
        for (uint64_t k = 0; k < segN; ++k) seg[k] *= s;
        continue;
      }
      for (uint64_t q = e; q < segEnd;) {  // run by run
        const uint64_t b = (q - a * row) / v.inner, runEnd = std::min(segEnd, a * row + (b + 1) * v.inner);
        float s;
        if (op.kind == K::Scales)
          s = static_cast<float>(inMul[v.inOf(a, b)] / outDiv[v.outOf(a, b)]);
        else
          s = op.f[op.kind == K::Out ? v.outOf(a, b) : v.inOf(a, b)];
        for (float* p = x + (q - first); p < x + (runEnd - first); ++p) *p *= s;
        q = runEnd;
      }
    }
    e = segEnd;
  }
}

EqLayers collectLayers(const graph::Discovery& discovery, const ModelIndex& index, Report& report) {
  EqLayers layers;
  for (const auto& L : discovery.layers) {
    layers.discovered.insert(L.node);
    collect(L, index, layers, report);
  }
  return layers;
}

}  // namespace ql::cle
