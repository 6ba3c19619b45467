#include "analysis/analyze.hpp"

#include <algorithm>
#include <cmath>
#include <cstring>
#include <numeric>

namespace ql::analysis {

namespace {

Result<std::vector<double>> params(const onnx::Tensor* t, const char* what, uint64_t axisLen, const graph::Layer& L) {
  if (!t) return std::vector<double>{};
  auto v = onnx::readAsDouble(*t);
  if (!v.ok()) return v.error();
  if (v->size() != 1 && v->size() != axisLen) {
    return makeError(ErrorCode::InvalidModel,
                     "layer '" + L.name + "': " + what + " '" + std::string(t->name) + "' has " + std::to_string(v->size()) +
                         " values, expected 1 or " + std::to_string(axisLen),
                     static_cast<int64_t>(t->offset));
  }
  return v;
}

}  // namespace

Result<LayerAnalysis> analyzeLayer(const graph::Layer& L, wire::Bytes weightExternal, const stats::Options& options) {
  LayerAnalysis out;
  auto values = onnx::readAsFloat(*L.weight, weightExternal);
  if (!values.ok()) return values.error();
  onnx::FloatValues& v = values.value();
  if (v.count != L.layout.elementCount()) {
    return makeError(ErrorCode::InvalidModel, "layer '" + L.name + "': weight holds " + std::to_string(v.count) + " values, layout needs " +
                                                  std::to_string(L.layout.elementCount()));
  }
  if (L.quant.present) {
    QuantInfo& q = out.quant;
    q.present = true;
    q.via = std::string(L.quant.via);
    q.intType = onnx::dataTypeName(L.weight->dataType);
    q.axis = L.quant.axis;
    const auto& dims = L.weight->dims;
    const uint64_t axisLen = q.axis >= 0 ? static_cast<uint64_t>(dims[q.axis]) : 1;
    auto sc = params(L.quant.scale, "scale", axisLen, L);
    if (!sc.ok()) return sc.error();
    auto zp = params(L.quant.zeroPoint, "zero point", axisLen, L);
    if (!zp.ok()) return zp.error();
    // Absent parameters take their defaults (scale 1 for ConvInteger/MatMulInteger,
    // zero point 0), and are reported as such.
    q.scale = sc->empty() ? std::vector<double>{1.0} : sc.value();
    q.zeroPoint = zp->empty() ? std::vector<double>{0.0} : zp.value();
    uint64_t inner = 1;
    if (q.axis >= 0) {
      for (size_t i = static_cast<size_t>(q.axis) + 1; i < dims.size(); ++i) inner *= static_cast<uint64_t>(dims[i]);
    }
    // The integer values were converted to float exactly; dequantize in place:
    // y = (x - zero_point) * scale, as DequantizeLinear defines it.
    if (v.isView()) {  // integer types never come back as a view, but stay safe
      v.owned.resize(v.count);
      std::memcpy(v.owned.data(), v.bytes, v.count * 4);
    }
    float* x = v.owned.data();
    for (uint64_t i = 0; i < v.count; ++i) {
      const uint64_t k = q.axis >= 0 ? (i / inner) % axisLen : 0;
      const float s = static_cast<float>(q.scale.size() == 1 ? q.scale[0] : q.scale[k]);
      const float z = static_cast<float>(q.zeroPoint.size() == 1 ? q.zeroPoint[0] : q.zeroPoint[k]);
      x[i] = (x[i] - z) * s;
    }
    v.bytes = reinterpret_cast<const uint8_t*>(x);
  }
  auto st = stats::computeLayerStats(v.bytes, L.layout, options);
  if (!st.ok()) {
    Error e = st.error();
    e.message = "layer '" + L.name + "': " + e.message;
    return e;
  }
  out.stats = std::move(st.value());
  return out;
}

std::vector<size_t> rankByRisk(const std::vector<double>& sqnr) {
  std::vector<size_t> idx(sqnr.size());
  std::iota(idx.begin(), idx.end(), 0);
  std::stable_sort(idx.begin(), idx.end(), [&](size_t a, size_t b) {
    const bool fa = std::isnan(sqnr[a]), fb = std::isnan(sqnr[b]);
    if (fa || fb) return !fa && fb;
    return sqnr[a] < sqnr[b];
  });
  return idx;
}

}  // namespace ql::analysis
