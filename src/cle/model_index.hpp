// What every phase of CLE looks up in the model: who uses a value (in the main graph,
// in sub-graphs, as a graph output), the initializers of the main graph, node names.
// Built once from the parsed model; read-only afterwards.
#pragma once
#include <deque>
#include <string>
#include <string_view>
#include <unordered_map>
#include <unordered_set>
#include <utility>
#include <vector>

#include "cle/cle.hpp"
#include "graph/scope.hpp"
#include "onnx/model.hpp"
#include "onnx/skim.hpp"

namespace ql::cle {

class ModelIndex {
 public:
  explicit ModelIndex(const onnx::Model& model);
  ModelIndex(const ModelIndex&) = delete;
  ModelIndex& operator=(const ModelIndex&) = delete;

  const onnx::Model& model() const { return model_; }
  const graph::Scope& scope() const { return scope_; }

  // `n` must be a node of the main graph (sub-graph nodes are named by their layer).
  size_t indexOf(const onnx::Node* n) const { return static_cast<size_t>(n - model_.graph.nodes.data()); }
  std::string nameOf(const onnx::Node* n) const;

  // Uses of a value in the main graph and sub-graphs, counting graph outputs.
  size_t uses(std::string_view v) const;
  bool isGraphOutput(std::string_view v) const { return graphOutputs_.count(v) != 0; }
  bool usedInSubgraph(std::string_view v) const { return captured_.count(v) != 0; }
  bool isInitializer(std::string_view name) const { return initializers_.count(name) != 0; }
  // `t` is the main graph's initializer of its name (not a sub-graph's, not a Constant).
  bool isMainInitializer(const onnx::Tensor* t) const;

  // The float32 contents of a main-graph initializer; false with a reason when it is
  // not one, is not float32, or is external and cannot be read (readExternal). A payload a skim left unread
  // (Tensor::deferred) is read from the file through the reader given to readFrom().
  bool readFloats(const onnx::Tensor* t, std::vector<float>* out, std::string* why) const;
  // Whether readFloats(t) can succeed, with the same reason when not, without keeping a
  // copy (a payload the skim left unread is checked against its shape, not read).
  bool checkFloats(const onnx::Tensor* t, std::string* why) const;
  // Whether the float32 contents of `t` (checkFloats) are stored as raw float32 bytes
  // (raw_data, one packed float_data field that analysis::markDeferred adopted as raw
  // data, or external data) that readRaw reads a slice at a time; false for values in a
  // typed field read whole (readFloats).
  bool rawSlices(const onnx::Tensor* t) const;
  // Bytes [at, at + n) of those raw bytes; false with a reason when they cannot be read.
  bool readRaw(const onnx::Tensor* t, uint64_t at, uint8_t* dst, uint64_t n, std::string* why) const;
  // Where an inline raw payload starts in the model file.
  uint64_t fileOffset(const onnx::Tensor* t) const;
  // `t` itself or, when the skim left its payload unread (a layer's weight that something
  // else reads too: a bias, a BatchNorm parameter, a Pad constant), a copy of it whose
  // payload has been read through the reader; the same for external data (readExternal). Read failures give `t` (whose reads then
  // fail).
  const onnx::Tensor& loaded(const onnx::Tensor& t) const;
  // The model was parsed from a skimmed `image` of the file that `in` reads.
  void readFrom(onnx::ByteReader* in, const uint8_t* image) {
    in_ = in;
    image_ = image;
  }
  // External data is read through `ext` (null: external weights are not read).
  void readExternal(onnx::ExternalReader* ext) { ext_ = ext; }
  // A constant reached through a chain of Identity nodes (how PyTorch's exporter
  // shares identical biases), or null.
  const onnx::Tensor* constantThroughIdentity(std::string_view name) const;

 private:
  void capture(const onnx::Graph& sg);
  bool floats(const onnx::Tensor* t, std::vector<float>* out, std::string* why) const;  // out null: check only

  const onnx::Model& model_;
  graph::Scope scope_;
  std::unordered_set<std::string_view> graphOutputs_, captured_;
  std::unordered_map<std::string_view, const onnx::Tensor*> initializers_;
  onnx::ByteReader* in_ = nullptr;
  const uint8_t* image_ = nullptr;
  onnx::ExternalReader* ext_ = nullptr;
  mutable std::deque<std::pair<onnx::Tensor, std::vector<uint8_t>>> loaded_;  // copies made by loaded()
};

// The tensor's contents as float32, or false with the reader's message.
bool readFloatData(const onnx::Tensor& t, std::vector<float>* out, std::string* why);

// Records where a sequence ended or a layer was left out: `at` is the node that ends
// it (null: the layer itself, e.g. its output is a graph output).
void addStop(Report& report, const ModelIndex& index, const std::string& layer, const onnx::Node* at, std::string reason);

}  // namespace ql::cle
