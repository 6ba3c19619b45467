// Re-emits a parsed ONNX model with edits to its main graph. Everything not
// edited is copied byte for byte from the original file, in its original order.
#pragma once
#include <algorithm>
#include <cstddef>
#include <cstdint>
#include <memory>
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

// An attribute of a new node: one of FLOAT, INT, STRING or INTS (AttributeProto.AttributeType).
struct NewAttribute {
  enum Type : int32_t { kFloat = 1, kInt = 2, kString = 3, kInts = 7 };
  std::string name;
  Type type = kInt;
  float f = 0;
  int64_t i = 0;
  std::string s;
  std::vector<int64_t> ints;
  static NewAttribute integer(std::string n, int64_t v) { return {std::move(n), kInt, 0, v, {}, {}}; }
  static NewAttribute real(std::string n, float v) { return {std::move(n), kFloat, v, 0, {}, {}}; }
  static NewAttribute string(std::string n, std::string v) { return {std::move(n), kString, 0, 0, std::move(v), {}}; }
  static NewAttribute list(std::string n, std::vector<int64_t> v) { return {std::move(n), kInts, 0, 0, {}, std::move(v)}; }
};

// A node added to the main graph, written right after node `after` of model.graph.nodes
// (whether that node is kept, edited or removed; several new nodes after the same node
// keep their order in GraphEdit::addNodes). Fields are written in NodeProto's order:
// inputs, outputs, name, op_type, attributes, domain (when not empty).
struct NewNode {
  size_t after = 0;
  std::string opType, name, domain;
  std::vector<std::string> inputs, outputs;
  std::vector<NewAttribute> attributes;
};

// Rewrites a replaced tensor's stored bytes into its new ones, a piece at a time, as the
// written file is produced: the new raw data is never held whole (TensorData::transform).
class PieceTransform {
 public:
  virtual ~PieceTransform() = default;
  // Bytes [at, at + length) of the tensor's raw data, read as stored, rewritten in place.
  // `at` and `length` are multiples of unitBytes().
  virtual void apply(uint64_t at, uint8_t* bytes, uint64_t length) const = 0;
  virtual uint64_t unitBytes() const { return 4; }
};

// New contents for an initializer, or a new initializer.
struct TensorData {
  std::string name;
  std::vector<int64_t> dims;
  int32_t dataType = kFloat;
  std::vector<uint8_t> raw;  // little-endian raw_data bytes
  // Or, when `raw` is empty, float32 values whose bytes are raw_data as they lie in
  // memory (the core runs little-endian only: x86, ARM, WebAssembly): a changed weight
  // handed over without a copy.
  std::vector<float> floats;
  // Or, when `transform` is set: the tensor's stored raw data (at `inputOffset` of the input
  // file when it is inline there; at its external location when it is written to the new
  // data file), `transformSize` bytes, rewritten by `transform` piece by piece as the file is
  // written (Piece::transform). Only for a replaced initializer whose stored raw data has
  // the new size.
  std::shared_ptr<const PieceTransform> transform;
  uint64_t inputOffset = 0, transformSize = 0;
  const uint8_t* rawData() const { return raw.empty() ? reinterpret_cast<const uint8_t*>(floats.data()) : raw.data(); }
  size_t rawSize() const {
    return transform ? static_cast<size_t>(transformSize) : raw.empty() ? floats.size() * sizeof(float) : raw.size();
  }
};

// Edits to the main graph (sub-graphs in node attributes are copied as they are).
struct GraphEdit {
  std::vector<size_t> removeNodes;  // node indices to drop
  std::vector<NodeEdit> editNodes;  // at most one per node
  std::vector<NewNode> addNodes;    // new nodes, each after an existing one
  // By name: same TensorProto, dims, data_type and raw_data replaced. A graph input of the
  // same name (an old exporter's weight listed as input) whose declared tensor shape the new
  // dims contradict gets a tensor type of the new element type and dims; otherwise it is kept.
  std::vector<TensorData> replaceInitializers;
  std::vector<TensorData> addInitializers;      // appended after the last existing initializer
  std::vector<std::string> removeInitializers;  // by name; also removes a graph input of the same name
  std::vector<std::string> removeValueInfo;     // value_info entries to drop by name
  // metadata_props: the first entry with the same key is replaced in place (later ones
  // dropped); other keys are appended after the last existing entry.
  std::vector<std::pair<std::string, std::string>> metadata;
  // External data written to one new file. When `dataLocation` is not empty, every
  // initializer named in `external` (an initializer of the main graph stored as external
  // data in the input) is written with data_location EXTERNAL and external_data
  // {location: dataLocation, offset, length} into that file: its bytes copied from the
  // input data file `path` (normalised, relative to the model) at `offset`, or, when it is
  // replaced, its new raw data. Removed ones are left out; other tensors stay as they are
  // (inline ones inline). WrittenModel::data plans that file.
  struct ExternalTensor {
    std::string name;
    std::string path;
    uint64_t offset = 0, length = 0;
  };
  std::string dataLocation;
  std::vector<ExternalTensor> external;
};

// How the new data file aligns its tensors (as the onnx-ir / onnxscript writer and
// onnxruntime's align_offset do, for mmap): a tensor of more than kAlignThreshold bytes
// starts at a multiple of kAlignment; smaller ones follow the previous one directly, as
// onnx.save_model(save_as_external_data=True) writes them. The gaps are zeros.
inline constexpr uint64_t kExternalAlignThreshold = 1 << 20;
inline constexpr uint64_t kExternalAlignment = 1 << 16;

// A written model as a stream of pieces, in order: runs of the input copied through,
// and bytes the writer made (edited nodes, re-encoded tensors, length prefixes). Its
// size is known before any byte is emitted: the writer runs a size pass over every
// re-encoded message before its emit pass.
struct Piece {
  bool input = true;    // true: bytes [offset, offset + length) of the input
  uint64_t at = 0;      // where the piece starts in the written file
  uint64_t offset = 0;  // input pieces only
  uint64_t length = 0;
  const uint8_t* bytes = nullptr;  // made pieces: the bytes (in WrittenModel::made, or a TensorData's raw of the edit)
  uint32_t file = 0;               // input pieces of WrittenData: index in WrittenData::sources
  // Input pieces only: the input bytes are bytes [transformAt, transformAt + length) of a
  // replaced tensor's stored raw data, written as `transform` rewrites them (never merged
  // with a neighbouring piece).
  const PieceTransform* transform = nullptr;
  uint64_t transformAt = 0;
};

// The new external data file (GraphEdit::dataLocation), as pieces: input pieces are
// ranges of the input data files `sources[file]`, made pieces a replaced tensor's raw
// data or zeros (alignment).
struct WrittenData {
  std::string location;  // empty: no data file
  std::vector<std::string> sources;
  std::vector<Piece> pieces;
  uint64_t size = 0;
};

struct WrittenModel {
  std::vector<Piece> pieces;
  uint64_t size = 0;                       // the sum of the pieces' lengths
  std::vector<std::vector<uint8_t>> made;  // small made bytes that the pieces point into
  WrittenData data;                        // the external data file, when GraphEdit::dataLocation is set
  // The whole file: the input's pieces taken from `input` (the bytes the model was parsed from;
  // transformed pieces need the model's raw data inline there).
  std::vector<uint8_t> assemble(const uint8_t* input) const;
  // Copies [offset, offset + length) of the written file to dst, input pieces through `readInput`
  // (offset, dst, length) -> bool. False when a read fails or the range is past the end.
  template <class ReadInput>
  bool read(uint64_t offset, uint8_t* dst, uint64_t length, ReadInput&& readInput) const;
};

// Plans the edited model as pieces. `data,size` are the bytes `model` was parsed from
// (only the parsed structure is read: the payloads of unedited tensors may be absent, as
// in a skimmed image). The pieces point into `edit` (replaced and added tensors' raw
// bytes), which must outlive the result.
// Errors: INVALID_ARGUMENT for an edit that does not fit the model (an unknown node
// index, initializer or value_info name, a wrong raw size, ...) or a model parsed from
// other bytes; INVALID_MODEL for malformed bytes.
Result<WrittenModel> planModel(const uint8_t* data, size_t size, const Model& model, const GraphEdit& edit);

// The edited model in one buffer (planModel, assembled). Same errors.
Result<std::vector<uint8_t>> writeModel(const uint8_t* data, size_t size, const Model& model, const GraphEdit& edit);

template <class ReadInput>
bool WrittenModel::read(uint64_t offset, uint8_t* dst, uint64_t length, ReadInput&& readInput) const {
  if (offset > size || length > size - offset) return false;
  // The last piece that starts at or before `offset`.
  auto it = std::upper_bound(pieces.begin(), pieces.end(), offset, [](uint64_t o, const Piece& p) { return o < p.at; });
  size_t k = it == pieces.begin() ? 0 : static_cast<size_t>(it - pieces.begin()) - 1;
  uint64_t at = k < pieces.size() ? pieces[k].at : 0;
  while (length > 0 && k < pieces.size()) {
    const Piece& p = pieces[k];
    const uint64_t skip = offset - at, n = std::min(length, p.length - skip);
    if (p.input && p.transform) {
      // Whole units of the tensor, rewritten, then the part asked for.
      const uint64_t u = p.transform->unitBytes(), from = (p.transformAt + skip) / u * u;
      const uint64_t to = std::min((p.transformAt + skip + n + u - 1) / u * u, p.transformAt + p.length);
      const bool aligned = from == p.transformAt + skip && to == from + n;
      std::vector<uint8_t> tmp(aligned ? 0 : to - from);
      uint8_t* buf = aligned ? dst : tmp.data();
      if (!readInput(p.offset + (from - p.transformAt), buf, to - from)) return false;
      p.transform->apply(from, buf, to - from);
      if (!aligned) std::copy_n(buf + (p.transformAt + skip - from), n, dst);
    } else if (p.input) {
      if (!readInput(p.offset + skip, dst, n)) return false;
    } else {
      std::copy(p.bytes + skip, p.bytes + skip + n, dst);
    }
    dst += n;
    offset += n;
    length -= n;
    at += p.length;
    ++k;
  }
  return length == 0;
}

}  // namespace ql::onnx
