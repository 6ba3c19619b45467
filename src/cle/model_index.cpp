#include "cle/model_index.hpp"

#include <algorithm>
#include <string>

#include "common/bytes.hpp"
#include "graph/layers.hpp"
#include "onnx/tensor_data.hpp"

namespace ql::cle {

ModelIndex::ModelIndex(const onnx::Model& model) : model_(model) {
  const auto& g = model.graph;
  scope_.index(g);
  for (const auto& o : g.outputs) graphOutputs_.insert(o.name);
  for (const auto& n : g.nodes)
    for (const auto& a : n.attributes) {
      if (a.g) capture(*a.g);
      for (const auto& sg : a.graphs) capture(sg);
    }
  for (const auto& t : g.initializers) initializers_[t.name] = &t;
}

void ModelIndex::capture(const onnx::Graph& sg) {
  for (const auto& n : sg.nodes) {
    for (auto v : n.inputs) captured_.insert(v);
    for (const auto& a : n.attributes) {
      if (a.g) capture(*a.g);
      for (const auto& s : a.graphs) capture(s);
    }
  }
}

std::string ModelIndex::nameOf(const onnx::Node* n) const { return graph::displayName(*n, indexOf(n)); }

size_t ModelIndex::uses(std::string_view v) const {
  return scope_.consumersOf(v).size() + captured_.count(v) + graphOutputs_.count(v);
}

bool ModelIndex::isMainInitializer(const onnx::Tensor* t) const {
  auto it = t ? initializers_.find(t->name) : initializers_.end();
  return it != initializers_.end() && it->second == t;
}

bool ModelIndex::checkFloats(const onnx::Tensor* t, std::string* why) const { return floats(t, nullptr, why); }

bool ModelIndex::readFloats(const onnx::Tensor* t, std::vector<float>* out, std::string* why) const {
  return floats(t, out, why);
}

bool ModelIndex::floats(const onnx::Tensor* t, std::vector<float>* out, std::string* why) const {
  if (!isMainInitializer(t)) {
    *why = "is not an initializer of the main graph";
    return false;
  }
  if (t->dataType != onnx::kFloat) {
    *why = "is " + onnx::dataTypeName(t->dataType) + " (only float32 weights are equalized)";
    return false;
  }
  if (t->external) {
    if (!ext_) {
      *why = "is stored as external data, and its data file was not given (not equalized)";
      return false;
    }
    auto ref = onnx::externalRef(*t);
    uint64_t count = 0;
    if (!ref.ok()) {
      *why = "has unusable external data: " + ref.error().message;
      return false;
    }
    if (!t->elementCount(&count) || !ref->hasLength || count * sizeof(float) != ref->length) {
      *why = "has " + std::to_string(ref->length) + " bytes of external data, which do not fit its shape";
      return false;
    }
    if (!out) return true;
    out->resize(count);
    if (!ext_->read(ref->path, ref->offset, reinterpret_cast<uint8_t*>(out->data()), ref->length, why)) {
      std::vector<float>().swap(*out);
      return false;
    }
    return true;
  }
  if (t->deferred && in_ && t->hasRawData) {
    uint64_t count = 0;
    if (!t->elementCount(&count) || count * sizeof(float) != t->rawData.size) {
      *why = "has " + std::to_string(t->rawData.size) + " bytes of raw data, which do not fit its shape";
      return false;
    }
    if (!out) return true;
    const uint64_t offset = offsetIn(image_, t->rawData.data);
    out->resize(count);
    if (!in_->read(offset, reinterpret_cast<uint8_t*>(out->data()), t->rawData.size)) {
      std::vector<float>().swap(*out);
      *why = "could not be read from the file at byte " + std::to_string(offset);
      return false;
    }
    return true;
  }
  if (out) return readFloatData(*t, out, why);
  std::vector<float> probe;  // in memory already: the copy is dropped at once
  return readFloatData(*t, &probe, why);
}

bool ModelIndex::rawSlices(const onnx::Tensor* t) const {
  std::string why;
  if (!checkFloats(t, &why)) return false;
  if (t->external) return true;  // checkFloats: its length fits the shape
  uint64_t count = 0;
  return t->hasRawData && t->typedField == 0 && t->elementCount(&count) && count * sizeof(float) == t->rawData.size;
}

bool ModelIndex::readRaw(const onnx::Tensor* t, uint64_t at, uint8_t* dst, uint64_t n, std::string* why) const {
  if (t->external) {
    auto ref = onnx::externalRef(*t);
    if (!ref.ok() || !ext_ || at > ref->length || n > ref->length - at) {
      *why = "has external data that cannot be read";
      return false;
    }
    return ext_->read(ref->path, ref->offset + at, dst, n, why);
  }
  if (at > t->rawData.size || n > t->rawData.size - at) {
    *why = "read past its raw data";
    return false;
  }
  if (t->deferred && in_) {
    const uint64_t offset = offsetIn(image_, t->rawData.data) + at;
    if (!in_->read(offset, dst, n)) {
      *why = "could not be read from the file at byte " + std::to_string(offset);
      return false;
    }
    return true;
  }
  std::copy_n(t->rawData.data + at, n, dst);
  return true;
}

uint64_t ModelIndex::fileOffset(const onnx::Tensor* t) const { return offsetIn(image_, t->rawData.data); }

const onnx::Tensor& ModelIndex::loaded(const onnx::Tensor& t) const {
  const bool external = t.external && ext_;
  if (!external && (!t.deferred || !in_ || !t.hasRawData)) return t;
  for (const auto& [copy, bytes] : loaded_)
    if (copy.message.data == t.message.data) return copy;
  std::vector<uint8_t> bytes;
  if (external) {
    auto ref = onnx::externalRef(t);
    std::string why;
    if (!ref.ok() || !ref->hasLength || ref->length > (uint64_t{1} << 32)) return t;
    bytes.resize(ref->length);
    if (!ext_->read(ref->path, ref->offset, bytes.data(), bytes.size(), &why)) return t;
  } else {
    bytes.resize(t.rawData.size);
    if (!in_->read(offsetIn(image_, t.rawData.data), bytes.data(), bytes.size())) return t;
  }
  onnx::Tensor copy = t;
  copy.deferred = false;
  copy.external = false;
  copy.hasRawData = true;
  copy.typedField = 0;
  auto& entry = loaded_.emplace_back(std::move(copy), std::move(bytes));
  entry.first.rawData.data = entry.second.data();
  entry.first.rawData.size = entry.second.size();
  return entry.first;
}

const onnx::Tensor* ModelIndex::constantThroughIdentity(std::string_view name) const {
  for (int step = 0; step < 16 && !name.empty(); ++step) {
    if (const onnx::Tensor* t = scope_.constant(name)) return t;
    const onnx::Node* p = scope_.producer(name);
    if (!graph::isOp(p, "Identity")) return nullptr;
    name = graph::input(*p, 0);
  }
  return nullptr;
}

bool readFloatData(const onnx::Tensor& t, std::vector<float>* out, std::string* why) {
  auto v = onnx::readAsFloat(t);
  if (!v.ok()) {
    *why = v.error().message;
    return false;
  }
  *out = v->take();
  return true;
}

void addStop(Report& report, const ModelIndex& index, const std::string& layer, const onnx::Node* at, std::string reason) {
  report.stops.push_back({layer, at ? index.nameOf(at) : layer, at ? std::string(at->opType) : "", std::move(reason)});
}

}  // namespace ql::cle
