// Re-emits a parsed ONNX model with edits to its main graph. Everything not
// edited is copied byte for byte from the original file, in its original order.
#pragma once
#include <cstddef>
#include <cstdint>
#include <optional>
#include <string>
#include <utility>
#include <vector>

#include "common/result.hpp"
#include "onnx/model.hpp"

namespace ql::onnx {

struct NodeEdit {
  size_t index = 0;                                 // index in model.graph.nodes
  std::optional<std::string> opType;                // new op_type
  std::optional<std::vector<std::string>> inputs;   // replaces all inputs
  std::optional<std::vector<std::string>> outputs;  // replaces all outputs
  std::vector<std::string> dropAttributes;          // attribute names to remove
};

// New contents for an initializer, or a new initializer.
struct TensorData {
  std::string name;
  std::vector<int64_t> dims;
  int32_t dataType = kFloat;
  std::vector<uint8_t> raw;  // little-endian raw_data bytes
};

// Edits to the main graph (sub-graphs in node attributes are copied as they are).
struct GraphEdit {
  std::vector<size_t> removeNodes;              // node indices to drop
  std::vector<NodeEdit> editNodes;              // at most one per node
  std::vector<TensorData> replaceInitializers;  // by name: same TensorProto, dims, data_type and raw_data replaced
  std::vector<TensorData> addInitializers;      // appended after the last existing initializer
  std::vector<std::string> removeInitializers;  // by name; also removes a graph input of the same name
  std::vector<std::string> removeValueInfo;     // value_info entries to drop by name
  // metadata_props: the first entry with the same key is replaced in place (later ones
  // dropped); other keys are appended after the last existing entry.
  std::vector<std::pair<std::string, std::string>> metadata;
};

// Writes the edited model. `data,size` are the bytes `model` was parsed from.
// Errors: INVALID_ARGUMENT for an edit that does not fit the model (an unknown node
// index, initializer or value_info name, a wrong raw size, ...) or a model parsed from
// other bytes; INVALID_MODEL for malformed bytes.
Result<std::vector<uint8_t>> writeModel(const uint8_t* data, size_t size, const Model& model, const GraphEdit& edit);

}  // namespace ql::onnx
