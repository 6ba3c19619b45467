#include "cle/write.hpp"

#include <cstdint>
#include <cstdio>
#include <cstring>
#include <memory>
#include <string>
#include <unordered_set>

namespace ql::cle {

namespace {

onnx::TensorData floatTensor(std::string name, std::vector<int64_t> dims, const std::vector<float>& v, double divide = 1) {
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

// A changed weight, its float32 values handed over as the raw data (no copy).
onnx::TensorData weightTensor(std::string name, std::vector<int64_t> dims, std::vector<float>&& v) {
  onnx::TensorData t;
  t.name = std::move(name);
  t.dims = std::move(dims);
  t.dataType = onnx::kFloat;
  t.floats = std::move(v);
  return t;
}

// A streamed weight (EqLayer::streamed) written as its stored bytes with its ops
// replayed, a piece at a time, as the file is written.
class ReplayOps : public onnx::PieceTransform {
 public:
  explicit ReplayOps(EqLayer& w) : view_(w.view), ops_(std::move(w.ops)), inMul_(w.inMul), outDiv_(w.outDiv) {}
  void apply(uint64_t at, uint8_t* bytes, uint64_t length) const override {
    if (reinterpret_cast<uintptr_t>(bytes) % alignof(float) == 0) {
      replayOps(view_, ops_, inMul_, outDiv_, at / 4, reinterpret_cast<float*>(bytes), length / 4);
      return;
    }
    std::vector<float> tmp(length / 4);
    std::memcpy(tmp.data(), bytes, length);
    replayOps(view_, ops_, inMul_, outDiv_, at / 4, tmp.data(), tmp.size());
    std::memcpy(bytes, tmp.data(), length);
  }

 private:
  WeightView view_;
  std::vector<EqLayer::ChannelOp> ops_;
  std::vector<double> inMul_, outDiv_;
};

onnx::TensorData streamedWeight(const ModelIndex& index, EqLayer& w) {
  const graph::Layer& L = *w.layer;
  onnx::TensorData t;
  t.name = std::string(L.weightName);
  t.dims = L.shape;
  t.dataType = onnx::kFloat;
  t.transformSize = w.view.A * w.view.B * w.view.inner * sizeof(float);
  if (!L.weight->external) t.inputOffset = index.fileOffset(L.weight);
  t.transform = std::make_shared<ReplayOps>(w);
  return t;
}

// Names not yet used by any value or initializer of the main graph.
class NewNames {
 public:
  explicit NewNames(const onnx::Graph& g) {
    for (const auto& n : g.nodes) {
      for (auto v : n.inputs) names_.insert(std::string(v));
      for (auto v : n.outputs) names_.insert(std::string(v));
    }
    for (const auto& t : g.initializers) names_.insert(std::string(t.name));
  }
  std::string operator()(const std::string& base) {
    std::string n = base;
    for (int k = 1; names_.count(n); ++k) n = base + "_" + std::to_string(k);
    names_.insert(n);
    return n;
  }

 private:
  std::unordered_set<std::string> names_;
};

}  // namespace

Result<onnx::WrittenModel> writeEqualized(const uint8_t* data, size_t size, const ModelIndex& index, EqLayers& layers,
                                          ModelEdits& edits, const Report& report, onnx::GraphEdit& edit) {
  const onnx::Model& model = index.model();
  NewNames newName(model.graph);
  for (auto& w : layers.items) {
    if (w.change == SIZE_MAX) continue;
    const graph::Layer& L = *w.layer;
    edit.replaceInitializers.push_back(w.streamed ? streamedWeight(index, w)
                                                  : weightTensor(std::string(L.weightName), L.shape, std::move(w.w)));
    if (w.hasBias && w.biasOwn) {  // the stored bias is b / biasScale (Gemm's C = b / beta)
      edit.replaceInitializers.push_back(floatTensor(std::string(L.biasName), w.biasTensor->dims, w.b, w.biasScale));
    } else if (w.hasBias) {  // shared: a copy of its own, named after the original
      const std::string name = newName(std::string(L.biasName) + "_cle");
      edit.addInitializers.push_back(floatTensor(name, w.biasTensor->dims, w.b, w.biasScale));
      for (auto& i : edits.inputsOf(index, w.biasNode))
        if (i == L.biasName) i = name;
    } else if (w.biasAdded) {
      const std::string name = newName(std::string(L.weightName) + "_bias");
      edit.addInitializers.push_back(floatTensor(name, {static_cast<int64_t>(w.view.outC)}, w.b, w.beta));
      auto& ins = edits.inputsOf(index, L.node);
      ins.resize(2);
      ins.push_back(name);
    }
    std::vector<float>().swap(w.w);  // moved into the edit: what is left is released
  }
  for (auto& [i, e] : edits.nodes) edit.editNodes.push_back(std::move(e));
  edit.removeNodes = edits.removeNodes;
  edit.removeInitializers.assign(edits.removeInitializers.begin(), edits.removeInitializers.end());
  for (const auto& vi : model.graph.valueInfo) {
    if (edits.removeValueInfo.count(std::string(vi.name))) edit.removeValueInfo.emplace_back(vi.name);
  }
  char meta[200];
  std::snprintf(meta, sizeof meta, "layers=%zu sequences=%zu bn_folded=%zu relu6_replaced=%zu bias_absorbed=%zu",
                report.layers.size(), report.sequences.size(), report.foldedBatchNorms.size(), report.relu6Replaced.size(),
                report.biasAbsorptions);
  edit.metadata.push_back({"quantlens.cle", meta});
  return onnx::planModel(data, size, model, edit);
}

}  // namespace ql::cle
