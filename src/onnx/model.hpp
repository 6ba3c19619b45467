// ONNX model structures decoded from the wire format of the official onnx.proto
// (field numbers named in onnx/fields.hpp). Every string and every
// tensor payload is a view into the caller's buffer, which must outlive the Model.
#pragma once
#include <cstdint>
#include <memory>
#include <string_view>
#include <utility>
#include <vector>

#include "common/result.hpp"
#include "onnx/fields.hpp"
#include "onnx/wire.hpp"

namespace ql::onnx {

using wire::Bytes;

// "float32", "float16", ...; "dtype 23" for values we do not know.
std::string dataTypeName(int32_t type);
// Bytes per element in raw_data, or 0 for types without a fixed size (string, unknown).
size_t dataTypeSize(int32_t type);

using StringPair = std::pair<std::string_view, std::string_view>;

struct Tensor {
  std::string_view name;
  std::string_view docString;
  std::vector<int64_t> dims;
  int32_t dataType = kUndefined;
  bool hasRawData = false;
  Bytes rawData;  // raw_data, a view
  // Typed storage: the field holding the values (fields::TensorProto::kFloatData,
  // kInt32Data, kStringData, kInt64Data, kDoubleData or kUint64Data), and how many.
  // The values are decoded on demand by re-walking `message`, so nothing is copied.
  uint32_t typedField = 0;
  uint64_t typedCount = 0;
  bool external = false;                 // data_location == EXTERNAL
  std::vector<StringPair> externalData;  // location, offset, length, checksum
  bool hasSegment = false;
  int64_t segmentBegin = 0, segmentEnd = 0;
  Bytes message;      // the whole encoded TensorProto
  size_t offset = 0;  // file offset of the TensorProto payload
  // raw_data left unread in a skimmed image (analysis::settleSkim): the caller streams it
  // from the file, and every in-memory read of it is an error instead of a read of bytes
  // that were never loaded.
  bool deferred = false;

  // Product of dims; false if a dim is negative or the product overflows 2^62.
  bool elementCount(uint64_t* out) const;
  // Value of an external_data key ("location", "offset", "length"), or empty.
  std::string_view externalValue(std::string_view key) const;
};

struct Dimension {
  bool hasValue = false;
  int64_t value = 0;
  std::string_view param;
  std::string_view denotation;
};

struct ValueInfo {
  std::string_view name;
  std::string_view docString;
  bool hasType = false;
  // For tensor types: element type and shape (the common case); other kinds of
  // TypeProto (sequence, map, optional) are recorded only by `typeCase`.
  uint32_t typeCase = 0;  // the TypeProto `value` field present: fields::TypeProto::kTensorType, kSequenceType, ...
  int32_t elemType = 0;
  bool hasShape = false;
  std::vector<Dimension> shape;
};

struct Graph;

struct Attribute {
  std::string_view name;
  std::string_view refAttrName;
  std::string_view docString;
  int32_t type = 0;  // AttributeProto.AttributeType
  bool hasF = false, hasI = false, hasS = false;
  float f = 0;
  int64_t i = 0;
  std::string_view s;
  std::unique_ptr<Tensor> t;
  std::unique_ptr<Graph> g;
  std::vector<float> floats;
  std::vector<int64_t> ints;
  std::vector<std::string_view> strings;
  std::vector<Tensor> tensors;
  std::vector<Graph> graphs;
  // Sparse tensors and type protos are kept encoded (we never need their contents).
  std::vector<Bytes> sparseTensors;  // sparse_tensor (22) then sparse_tensors (23)
  std::vector<Bytes> typeProtos;     // tp (14) then type_protos (15)
};

struct Node {
  std::vector<std::string_view> inputs;
  std::vector<std::string_view> outputs;
  std::string_view name;
  std::string_view opType;
  std::string_view domain;
  std::string_view docString;
  std::vector<Attribute> attributes;
  size_t offset = 0;

  const Attribute* attribute(std::string_view attrName) const;
  int64_t intAttr(std::string_view attrName, int64_t fallback) const;
};

struct Graph {
  std::string_view name;
  std::string_view docString;
  std::vector<Node> nodes;
  std::vector<Tensor> initializers;
  std::vector<Bytes> sparseInitializers;
  std::vector<ValueInfo> inputs;
  std::vector<ValueInfo> outputs;
  std::vector<ValueInfo> valueInfo;
  size_t quantizationAnnotations = 0;
};

struct OpsetId {
  std::string_view domain;
  int64_t version = 0;
};

struct Function {
  std::string_view name;
  std::string_view domain;
  std::string_view docString;
  std::vector<std::string_view> inputs, outputs, attributes;
  std::vector<Node> nodes;
  std::vector<OpsetId> opsets;
};

struct Model {
  int64_t irVersion = 0;
  std::vector<OpsetId> opsets;
  std::string_view producerName;
  std::string_view producerVersion;
  std::string_view domain;
  int64_t modelVersion = 0;
  std::string_view docString;
  bool hasGraph = false;
  Graph graph;
  std::vector<StringPair> metadata;
  size_t trainingInfos = 0;
  std::vector<Function> functions;
  size_t byteSize = 0;
};

struct ParseOptions {
  int maxGraphDepth = 32;  // sub-graphs nested deeper than this are rejected
  // Decoded structures (nodes, attributes, tensors, value infos) may take at most this
  // much memory: a 2-byte NodeProto becomes a ~200-byte Node, so a hostile file of
  // millions of empty messages would otherwise exhaust the 4 GB WASM heap (an abort).
  uint64_t maxStructureBytes = uint64_t{512} << 20;
};

// Decodes a ModelProto. The returned Model borrows `data`.
Result<Model> parseModel(const uint8_t* data, size_t size, const ParseOptions& options = {});

}  // namespace ql::onnx
