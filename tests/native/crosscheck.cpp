// Cross-check of the zero-copy ONNX reader against libprotobuf.
//
// Every model is decoded twice: by ql::onnx::parseModel and by the C++ classes
// protoc generates from the official onnx.proto (namespace ::onnx). Both must
// accept or both reject the file, and when both accept they must agree on every
// field the reader decodes, down to each tensor byte. Typed tensor values are
// compared twice: as stored (our message view re-walked vs the protobuf repeated
// field) and as readAsDouble / readAsFloat return them, against a conversion of
// the protobuf fields written independently here.
//
// One line per failing model names the first difference as a path, e.g.
//   graph.node[12].attribute[3].ints[2]: ours 5, protobuf 7
// and the last line is `crosscheck: N passed, M failed[, K skipped]`, where K
// counts absent model folders (and the self-test when it cannot run). Exit
// status is non-zero iff M > 0.
//
// Models: synthetic ones built here (every field, wire-level variants, edge
// cases; these must parse), ../shared/models/**/*.onnx beside the project
// root, every model.onnx under /usr/share/libonnx-testdata/data,
// models/fetched/*.onnx and models/generated/*.onnx in the project, plus files
// or folders named on the command line (with --only, just those). A self-test
// plants differences on either side and checks each is reported at its path.

#include <algorithm>
#include <chrono>
#include <cinttypes>
#include <climits>
#include <cmath>
#include <cstdio>
#include <cstring>
#include <filesystem>
#include <fstream>
#include <memory>
#include <string>
#include <string_view>
#include <type_traits>
#include <vector>

#include "onnx.pb.h"
#include "onnx/model.hpp"
#include "onnx/tensor_data.hpp"
#include "onnx/wire.hpp"
#include "pb_writer.hpp"

#ifndef QL_SOURCE_DIR
#error "QL_SOURCE_DIR (the project root) must be defined by the build"
#endif

namespace fs = std::filesystem;
namespace pb = ::onnx;
namespace qo = ql::onnx;

// ---------------------------------------------------------------------------
// The field numbers and element types named in onnx/fields.hpp, each checked at
// compile time against the code protoc generates from onnx.proto. Element types
// newer than this onnx.proto (17-22, onnx 1.14 and 1.16) cannot be checked here.
#define QL_SAME_FIELD(ours, theirs, name) \
  static_assert(qo::fields::ours::k##name == pb::theirs::k##name##FieldNumber, #ours "::k" #name)
QL_SAME_FIELD(ModelProto, ModelProto, IrVersion);
QL_SAME_FIELD(ModelProto, ModelProto, ProducerName);
QL_SAME_FIELD(ModelProto, ModelProto, ProducerVersion);
QL_SAME_FIELD(ModelProto, ModelProto, Domain);
QL_SAME_FIELD(ModelProto, ModelProto, ModelVersion);
QL_SAME_FIELD(ModelProto, ModelProto, DocString);
QL_SAME_FIELD(ModelProto, ModelProto, Graph);
QL_SAME_FIELD(ModelProto, ModelProto, OpsetImport);
QL_SAME_FIELD(ModelProto, ModelProto, MetadataProps);
QL_SAME_FIELD(ModelProto, ModelProto, TrainingInfo);
QL_SAME_FIELD(ModelProto, ModelProto, Functions);
QL_SAME_FIELD(StringStringEntryProto, StringStringEntryProto, Key);
QL_SAME_FIELD(StringStringEntryProto, StringStringEntryProto, Value);
QL_SAME_FIELD(OperatorSetIdProto, OperatorSetIdProto, Domain);
QL_SAME_FIELD(OperatorSetIdProto, OperatorSetIdProto, Version);
QL_SAME_FIELD(TrainingInfoProto, TrainingInfoProto, Initialization);
QL_SAME_FIELD(TrainingInfoProto, TrainingInfoProto, Algorithm);
QL_SAME_FIELD(GraphProto, GraphProto, Node);
QL_SAME_FIELD(GraphProto, GraphProto, Name);
QL_SAME_FIELD(GraphProto, GraphProto, Initializer);
QL_SAME_FIELD(GraphProto, GraphProto, DocString);
QL_SAME_FIELD(GraphProto, GraphProto, Input);
QL_SAME_FIELD(GraphProto, GraphProto, Output);
QL_SAME_FIELD(GraphProto, GraphProto, ValueInfo);
QL_SAME_FIELD(GraphProto, GraphProto, QuantizationAnnotation);
QL_SAME_FIELD(GraphProto, GraphProto, SparseInitializer);
QL_SAME_FIELD(NodeProto, NodeProto, Input);
QL_SAME_FIELD(NodeProto, NodeProto, Output);
QL_SAME_FIELD(NodeProto, NodeProto, Name);
QL_SAME_FIELD(NodeProto, NodeProto, OpType);
QL_SAME_FIELD(NodeProto, NodeProto, Attribute);
QL_SAME_FIELD(NodeProto, NodeProto, DocString);
QL_SAME_FIELD(NodeProto, NodeProto, Domain);
QL_SAME_FIELD(AttributeProto, AttributeProto, Name);
QL_SAME_FIELD(AttributeProto, AttributeProto, F);
QL_SAME_FIELD(AttributeProto, AttributeProto, I);
QL_SAME_FIELD(AttributeProto, AttributeProto, S);
QL_SAME_FIELD(AttributeProto, AttributeProto, T);
QL_SAME_FIELD(AttributeProto, AttributeProto, G);
QL_SAME_FIELD(AttributeProto, AttributeProto, Floats);
QL_SAME_FIELD(AttributeProto, AttributeProto, Ints);
QL_SAME_FIELD(AttributeProto, AttributeProto, Strings);
QL_SAME_FIELD(AttributeProto, AttributeProto, Tensors);
QL_SAME_FIELD(AttributeProto, AttributeProto, Graphs);
QL_SAME_FIELD(AttributeProto, AttributeProto, DocString);
QL_SAME_FIELD(AttributeProto, AttributeProto, Tp);
QL_SAME_FIELD(AttributeProto, AttributeProto, TypeProtos);
QL_SAME_FIELD(AttributeProto, AttributeProto, Type);
QL_SAME_FIELD(AttributeProto, AttributeProto, RefAttrName);
QL_SAME_FIELD(AttributeProto, AttributeProto, SparseTensor);
QL_SAME_FIELD(AttributeProto, AttributeProto, SparseTensors);
QL_SAME_FIELD(TensorProto, TensorProto, Dims);
QL_SAME_FIELD(TensorProto, TensorProto, DataType);
QL_SAME_FIELD(TensorProto, TensorProto, Segment);
QL_SAME_FIELD(TensorProto, TensorProto, FloatData);
QL_SAME_FIELD(TensorProto, TensorProto, Int32Data);
QL_SAME_FIELD(TensorProto, TensorProto, StringData);
QL_SAME_FIELD(TensorProto, TensorProto, Int64Data);
QL_SAME_FIELD(TensorProto, TensorProto, Name);
QL_SAME_FIELD(TensorProto, TensorProto, RawData);
QL_SAME_FIELD(TensorProto, TensorProto, DoubleData);
QL_SAME_FIELD(TensorProto, TensorProto, Uint64Data);
QL_SAME_FIELD(TensorProto, TensorProto, DocString);
QL_SAME_FIELD(TensorProto, TensorProto, ExternalData);
QL_SAME_FIELD(TensorProto, TensorProto, DataLocation);
QL_SAME_FIELD(TensorProto::Segment, TensorProto_Segment, Begin);
QL_SAME_FIELD(TensorProto::Segment, TensorProto_Segment, End);
QL_SAME_FIELD(ValueInfoProto, ValueInfoProto, Name);
QL_SAME_FIELD(ValueInfoProto, ValueInfoProto, Type);
QL_SAME_FIELD(ValueInfoProto, ValueInfoProto, DocString);
QL_SAME_FIELD(TypeProto, TypeProto, TensorType);
QL_SAME_FIELD(TypeProto, TypeProto, SequenceType);
QL_SAME_FIELD(TypeProto, TypeProto, MapType);
QL_SAME_FIELD(TypeProto, TypeProto, SparseTensorType);
QL_SAME_FIELD(TypeProto, TypeProto, OptionalType);
QL_SAME_FIELD(TypeProto::Tensor, TypeProto_Tensor, ElemType);
QL_SAME_FIELD(TypeProto::Tensor, TypeProto_Tensor, Shape);
QL_SAME_FIELD(TypeProto::Tensor, TypeProto_SparseTensor, ElemType);
QL_SAME_FIELD(TypeProto::Tensor, TypeProto_SparseTensor, Shape);
QL_SAME_FIELD(TensorShapeProto, TensorShapeProto, Dim);
QL_SAME_FIELD(TensorShapeProto::Dimension, TensorShapeProto_Dimension, DimValue);
QL_SAME_FIELD(TensorShapeProto::Dimension, TensorShapeProto_Dimension, DimParam);
QL_SAME_FIELD(TensorShapeProto::Dimension, TensorShapeProto_Dimension, Denotation);
QL_SAME_FIELD(FunctionProto, FunctionProto, Name);
QL_SAME_FIELD(FunctionProto, FunctionProto, Input);
QL_SAME_FIELD(FunctionProto, FunctionProto, Output);
QL_SAME_FIELD(FunctionProto, FunctionProto, Attribute);
QL_SAME_FIELD(FunctionProto, FunctionProto, Node);
QL_SAME_FIELD(FunctionProto, FunctionProto, DocString);
QL_SAME_FIELD(FunctionProto, FunctionProto, OpsetImport);
QL_SAME_FIELD(FunctionProto, FunctionProto, Domain);
#undef QL_SAME_FIELD
static_assert(qo::fields::TensorProto::kLocationDefault == pb::TensorProto_DataLocation_DEFAULT);
static_assert(qo::fields::TensorProto::kLocationExternal == pb::TensorProto_DataLocation_EXTERNAL);
#define QL_SAME_TYPE(ours, theirs) \
  static_assert(static_cast<int>(qo::ours) == static_cast<int>(pb::TensorProto_DataType_##theirs), #ours)
QL_SAME_TYPE(kUndefined, UNDEFINED);
QL_SAME_TYPE(kFloat, FLOAT);
QL_SAME_TYPE(kUint8, UINT8);
QL_SAME_TYPE(kInt8, INT8);
QL_SAME_TYPE(kUint16, UINT16);
QL_SAME_TYPE(kInt16, INT16);
QL_SAME_TYPE(kInt32, INT32);
QL_SAME_TYPE(kInt64, INT64);
QL_SAME_TYPE(kString, STRING);
QL_SAME_TYPE(kBool, BOOL);
QL_SAME_TYPE(kFloat16, FLOAT16);
QL_SAME_TYPE(kDouble, DOUBLE);
QL_SAME_TYPE(kUint32, UINT32);
QL_SAME_TYPE(kUint64, UINT64);
QL_SAME_TYPE(kComplex64, COMPLEX64);
QL_SAME_TYPE(kComplex128, COMPLEX128);
QL_SAME_TYPE(kBFloat16, BFLOAT16);
#undef QL_SAME_TYPE

namespace {

// ---------------------------------------------------------------------------
// Field paths, built on the stack while recursing and turned into text only
// when a difference is reported. A Path refers to its parent: pass chained
// paths as arguments (p("graph")("node")[3]), never store them.
class Path {
 public:
  Path() = default;
  Path operator()(const char* field) const { return Path(this, field, -1); }
  Path operator[](size_t index) const { return Path(this, nullptr, static_cast<int64_t>(index)); }

  std::string str() const {
    std::string s = parent_ ? parent_->str() : std::string();
    if (field_) {
      if (!s.empty()) s += '.';
      s += field_;
    } else if (index_ >= 0) {
      s += '[' + std::to_string(index_) + ']';
    }
    return s;
  }

 private:
  Path(const Path* parent, const char* field, int64_t index) : parent_(parent), field_(field), index_(index) {}
  const Path* parent_ = nullptr;
  const char* field_ = nullptr;
  int64_t index_ = -1;
};

// ---------------------------------------------------------------------------
// Showing and comparing scalar values. Floating-point values compare bitwise.

template <class T>
std::string show(const T& v) {
  char buf[64];
  if constexpr (std::is_same_v<T, bool>) {
    return v ? "true" : "false";
  } else if constexpr (std::is_same_v<T, float>) {
    uint32_t b;
    std::memcpy(&b, &v, 4);
    std::snprintf(buf, sizeof buf, "%.9g (0x%08" PRIx32 ")", static_cast<double>(v), b);
    return buf;
  } else if constexpr (std::is_same_v<T, double>) {
    uint64_t b;
    std::memcpy(&b, &v, 8);
    std::snprintf(buf, sizeof buf, "%.17g (0x%016" PRIx64 ")", v, b);
    return buf;
  } else {
    return std::to_string(v);
  }
}

std::string show(std::string_view s) {
  constexpr size_t kMax = 80;
  std::string out = "\"";
  for (char c : s.substr(0, kMax)) {
    const auto u = static_cast<unsigned char>(c);
    if (u >= 0x20 && u < 0x7f && c != '"' && c != '\\') {
      out += c;
    } else {
      char buf[8];
      std::snprintf(buf, sizeof buf, "\\x%02x", u);
      out += buf;
    }
  }
  out += '"';
  if (s.size() > kMax) out += "... (" + std::to_string(s.size()) + " bytes)";
  return out;
}

template <class T>
bool same(const T& a, const T& b) {
  if constexpr (std::is_floating_point_v<T>) {
    return std::memcmp(&a, &b, sizeof(T)) == 0;
  } else {
    return a == b;
  }
}

template <class To, class From>
To bitCast(const From& v) {
  static_assert(sizeof(To) == sizeof(From));
  To out;
  std::memcpy(&out, &v, sizeof(To));
  return out;
}

// ---------------------------------------------------------------------------
// Independent element conversions, for checking readAsFloat / readAsDouble.

// IEEE 754 binary16 to binary32 by value (ldexp), not by moving bit fields as
// the reader does; infinities and NaNs keep sign and payload.
float halfToFloatRef(uint16_t h) {
  const bool negative = h & 0x8000;
  const int exponent = (h >> 10) & 0x1f;
  const int mantissa = h & 0x3ff;
  if (exponent == 0x1f) {
    return bitCast<float>(static_cast<uint32_t>(negative) << 31 | 0x7f800000u | static_cast<uint32_t>(mantissa) << 13);
  }
  const float magnitude = exponent == 0 ? std::ldexp(static_cast<float>(mantissa), -24)
                                        : std::ldexp(static_cast<float>(1024 + mantissa), exponent - 25);
  return negative ? -magnitude : magnitude;
}

float bfloat16ToFloatRef(uint16_t b) { return bitCast<float>(static_cast<uint32_t>(b) << 16); }

// The values of one tensor in both precisions, each converted directly from the
// stored value (so an int64 is rounded once to float, not via double).
struct Expected {
  std::vector<double> d;
  std::vector<float> f;
  template <class V>
  void add(V v) {
    d.push_back(static_cast<double>(v));
    f.push_back(static_cast<float>(v));
  }
};

size_t rawElementSize(int dt) {
  switch (dt) {
    case pb::TensorProto::UINT8:
    case pb::TensorProto::INT8:
    case pb::TensorProto::BOOL:
      return 1;
    case pb::TensorProto::UINT16:
    case pb::TensorProto::INT16:
    case pb::TensorProto::FLOAT16:
    case pb::TensorProto::BFLOAT16:
      return 2;
    case pb::TensorProto::FLOAT:
    case pb::TensorProto::INT32:
    case pb::TensorProto::UINT32:
      return 4;
    case pb::TensorProto::DOUBLE:
    case pb::TensorProto::INT64:
    case pb::TensorProto::UINT64:
      return 8;
    default:
      return 0;
  }
}

template <class V>
V rawAt(const std::string& raw, size_t i) {
  V v;
  std::memcpy(&v, raw.data() + i * sizeof(V), sizeof(V));
  return v;
}

// Element i of raw_data (little-endian, as ONNX specifies and this host is).
void addRaw(Expected* e, int dt, const std::string& raw, size_t i) {
  switch (dt) {
    case pb::TensorProto::FLOAT:
      e->add(rawAt<float>(raw, i));
      break;
    case pb::TensorProto::DOUBLE:
      e->add(rawAt<double>(raw, i));
      break;
    case pb::TensorProto::FLOAT16:
      e->add(halfToFloatRef(rawAt<uint16_t>(raw, i)));
      break;
    case pb::TensorProto::BFLOAT16:
      e->add(bfloat16ToFloatRef(rawAt<uint16_t>(raw, i)));
      break;
    case pb::TensorProto::INT8:
      e->add(rawAt<int8_t>(raw, i));
      break;
    case pb::TensorProto::UINT8:
      e->add(rawAt<uint8_t>(raw, i));
      break;
    case pb::TensorProto::INT16:
      e->add(rawAt<int16_t>(raw, i));
      break;
    case pb::TensorProto::UINT16:
      e->add(rawAt<uint16_t>(raw, i));
      break;
    case pb::TensorProto::INT32:
      e->add(rawAt<int32_t>(raw, i));
      break;
    case pb::TensorProto::UINT32:
      e->add(rawAt<uint32_t>(raw, i));
      break;
    case pb::TensorProto::INT64:
      e->add(rawAt<int64_t>(raw, i));
      break;
    case pb::TensorProto::UINT64:
      e->add(rawAt<uint64_t>(raw, i));
      break;
    case pb::TensorProto::BOOL:
      e->add(rawAt<uint8_t>(raw, i) != 0 ? 1 : 0);
      break;
    default:
      break;
  }
}

// The typed field ONNX stores an element type in, with its value count.
int typedCountFor(const pb::TensorProto& t) {
  switch (t.data_type()) {
    case pb::TensorProto::FLOAT:
      return t.float_data_size();
    case pb::TensorProto::DOUBLE:
      return t.double_data_size();
    case pb::TensorProto::INT64:
      return t.int64_data_size();
    case pb::TensorProto::UINT32:
    case pb::TensorProto::UINT64:
      return t.uint64_data_size();
    default:
      return t.int32_data_size();  // the 8/16/32-bit integer types, bool, float16, bfloat16
  }
}

void addTyped(Expected* e, const pb::TensorProto& t, int i) {
  auto i32 = [&] { return t.int32_data(i); };  // the 8/16/32-bit types, bool, float16, bfloat16
  switch (t.data_type()) {
    case pb::TensorProto::FLOAT:
      e->add(t.float_data(i));
      break;
    case pb::TensorProto::DOUBLE:
      e->add(t.double_data(i));
      break;
    case pb::TensorProto::INT64:
      e->add(t.int64_data(i));
      break;
    case pb::TensorProto::UINT32:
      e->add(static_cast<uint32_t>(t.uint64_data(i)));
      break;
    case pb::TensorProto::UINT64:
      e->add(t.uint64_data(i));
      break;
    case pb::TensorProto::FLOAT16:
      e->add(halfToFloatRef(static_cast<uint16_t>(i32())));
      break;
    case pb::TensorProto::BFLOAT16:
      e->add(bfloat16ToFloatRef(static_cast<uint16_t>(i32())));
      break;
    case pb::TensorProto::INT8:
      e->add(static_cast<int8_t>(i32()));
      break;
    case pb::TensorProto::UINT8:
      e->add(static_cast<uint8_t>(i32()));
      break;
    case pb::TensorProto::INT16:
      e->add(static_cast<int16_t>(i32()));
      break;
    case pb::TensorProto::UINT16:
      e->add(static_cast<uint16_t>(i32()));
      break;
    case pb::TensorProto::INT32:
      e->add(i32());
      break;
    case pb::TensorProto::BOOL:
      e->add(i32() != 0 ? 1 : 0);
      break;
    default:
      break;
  }
}

// The values of a non-external tensor of a numeric type, from the protobuf
// message alone. False when the message does not determine them: negative or
// huge dims, raw_data of the wrong size, or elements missing from the typed
// field that holds its type.
// float8 (types 17-20) by value from the ONNX Float8 page's table of properties: exponent
// bits E (4 or 5), bias (7, 8, 15, 16), subnormal when the exponent field is 0; NaN and
// infinity codes named one by one.
float float8Ref(int dt, unsigned code) {
  const int E = dt <= 18 ? 4 : 5, M = 7 - E, bias = dt == 17 ? 7 : dt == 18 ? 8 : dt == 19 ? 15 : 16;
  const unsigned mag = code & 0x7F;
  const bool fnuz = dt == 18 || dt == 20;
  if (fnuz && code == 0x80) return NAN;
  if (dt == 17 && mag == 0x7F) return NAN;
  if (dt == 19 && mag >= 0x7C) return mag == 0x7C ? ((code & 0x80) ? -INFINITY : INFINITY) : NAN;
  const int e = static_cast<int>(mag >> M), m = static_cast<int>(mag & ((1u << M) - 1));
  const double v = e == 0 ? std::ldexp(m, 1 - bias - M) : std::ldexp((1 << M) + m, e - bias - M);
  return static_cast<float>((code & 0x80) ? -v : v);
}

// int4 / uint4 (types 22 / 21) and float8: one byte per value (raw_data), or an int32_data
// value per byte; 4-bit types hold two elements per byte, the first in the low 4 bits.
bool expectedSmallTypes(const pb::TensorProto& t, uint64_t count, Expected* e) {
  const int dt = t.data_type();
  const bool four = dt == 21 || dt == 22;
  std::vector<unsigned> bytes;
  if (t.has_raw_data()) {
    for (unsigned char c : t.raw_data()) bytes.push_back(c);
  } else {
    for (int i = 0; i < t.int32_data_size(); ++i) bytes.push_back(static_cast<unsigned>(t.int32_data(i)) & 0xFFu);
  }
  if (bytes.size() != (four ? (count + 1) / 2 : count)) return false;
  for (uint64_t i = 0; i < count; ++i) {
    if (!four) {
      const float v = float8Ref(dt, bytes[i]);
      e->d.push_back(v);
      e->f.push_back(v);
      continue;
    }
    const int nib = static_cast<int>((i % 2 ? bytes[i / 2] >> 4 : bytes[i / 2]) & 0xFu);
    e->add(dt == 22 && nib >= 8 ? nib - 16 : nib);
  }
  return true;
}

bool expectedValues(const pb::TensorProto& t, Expected* e) {
  uint64_t count = 1;
  for (int64_t d : t.dims()) {
    if (d < 0 || (d != 0 && count > (uint64_t{1} << 40) / static_cast<uint64_t>(d))) return false;
    count *= static_cast<uint64_t>(d);
  }
  if (t.data_type() >= 17 && t.data_type() <= 22) return expectedSmallTypes(t, count, e);
  if (t.has_raw_data()) {
    const size_t elem = rawElementSize(t.data_type());
    if (elem == 0 || t.raw_data().size() != count * elem) return false;
    for (size_t i = 0; i < count; ++i) addRaw(e, t.data_type(), t.raw_data(), i);
    return true;
  }
  if (count == 0) return true;
  if (static_cast<uint64_t>(typedCountFor(t)) != count) return false;
  for (int i = 0; i < static_cast<int>(count); ++i) addTyped(e, t, i);
  return true;
}

// ---------------------------------------------------------------------------
// Typed fields as stored: TensorProto fields 4, 5, 6, 7, 10, 11.

const char* typedFieldName(uint32_t field) {
  switch (field) {
    case 4:
      return "float_data";
    case 5:
      return "int32_data";
    case 6:
      return "string_data";
    case 7:
      return "int64_data";
    case 10:
      return "double_data";
    case 11:
      return "uint64_data";
    default:
      return "typed_data";
  }
}

int typedFieldSize(const pb::TensorProto& t, uint32_t field) {
  switch (field) {
    case 4:
      return t.float_data_size();
    case 5:
      return t.int32_data_size();
    case 6:
      return t.string_data_size();
    case 7:
      return t.int64_data_size();
    case 10:
      return t.double_data_size();
    case 11:
      return t.uint64_data_size();
    default:
      return 0;
  }
}

// Value i of a numeric typed field as the bits the wire holds, normalised to
// the field's width (int32 to its 32 bits, float to its IEEE bits).
uint64_t typedFieldBits(const pb::TensorProto& t, uint32_t field, int i) {
  switch (field) {
    case 4:
      return bitCast<uint32_t>(t.float_data(i));
    case 5:
      return static_cast<uint32_t>(t.int32_data(i));
    case 7:
      return static_cast<uint64_t>(t.int64_data(i));
    case 10:
      return bitCast<uint64_t>(t.double_data(i));
    case 11:
      return t.uint64_data(i);
    default:
      return 0;
  }
}

std::string showTyped(uint32_t field, uint64_t bits) {
  switch (field) {
    case 4:
      return show(bitCast<float>(static_cast<uint32_t>(bits)));
    case 5:
      return show(static_cast<int32_t>(static_cast<uint32_t>(bits)));
    case 7:
      return show(static_cast<int64_t>(bits));
    case 10:
      return show(bitCast<double>(bits));
    default:
      return show(bits);
  }
}

// Our typed values: the tensor keeps only (typedField, typedCount) and its own
// encoded message, so walk that view for the field, packed or not.
bool walkTyped(const qo::Tensor& o, std::vector<uint64_t>* numbers, std::vector<std::string_view>* strings) {
  ql::wire::Reader r(o.message, o.message.data);
  ql::wire::Field f;
  while (!r.done()) {
    if (!r.next(&f)) return false;
    if (f.number != o.typedField) continue;
    if (o.typedField == 6) {
      strings->push_back(f.bytes.str());
    } else if (f.type != ql::wire::kLen) {
      numbers->push_back(o.typedField == 5 ? static_cast<uint32_t>(f.varint) : f.varint);
    } else if (o.typedField == 4 || o.typedField == 10) {
      const size_t w = o.typedField == 4 ? 4 : 8;
      for (size_t i = 0; i + w <= f.bytes.size; i += w) {
        numbers->push_back(w == 4 ? ql::wire::loadU32(f.bytes.data + i) : ql::wire::loadU64(f.bytes.data + i));
      }
    } else {
      const uint8_t* p = f.bytes.data;
      for (size_t left = f.bytes.size; left > 0;) {
        uint64_t v;
        const size_t n = ql::wire::readVarint(p, left, &v);
        if (n == 0) return false;
        numbers->push_back(o.typedField == 5 ? static_cast<uint32_t>(v) : v);
        p += n;
        left -= n;
      }
    }
  }
  return true;
}

// ---------------------------------------------------------------------------
// The recursive comparer: eq(path, ours, protobuf) for every pair of types,
// stopping at the first difference, which difference() then describes.

class Checker {
 public:
  Checker(const uint8_t* data, size_t size) : begin_(data), end_(data + size) {}
  bool run(const qo::Model& ours, const pb::ModelProto& theirs) { return eq(Path(), ours, theirs); }
  const std::string& difference() const { return difference_; }

 private:
  bool differ(const Path& p, const std::string& ours, const std::string& theirs) {
    difference_ = p.str() + ": ours " + ours + ", protobuf " + theirs;
    return false;
  }
  bool problem(const Path& p, const std::string& what) {
    difference_ = p.str() + ": " + what;
    return false;
  }
  bool inside(const void* p, size_t n) const {
    const auto a = reinterpret_cast<uintptr_t>(p);
    const auto b = reinterpret_cast<uintptr_t>(begin_), e = reinterpret_cast<uintptr_t>(end_);
    return a >= b && a <= e && n <= e - a;
  }
  bool view(const Path& p, const void* data, size_t size) {
    if (inside(data, size)) return true;
    return problem(p, "our view of " + std::to_string(size) + " bytes is not inside the model buffer (not zero-copy)");
  }

  // Scalars of the same type on both sides.
  template <class T>
  bool eq(const Path& p, const T& ours, const T& theirs) {
    return same(ours, theirs) || differ(p, show(ours), show(theirs));
  }
  bool eqCount(const Path& p, uint64_t ours, uint64_t theirs, const char* unit = "count") {
    if (ours == theirs) return true;
    difference_ = p.str() + " (" + unit + "): ours " + std::to_string(ours) + ", protobuf " + std::to_string(theirs);
    return false;
  }
  // Strings: our views must point into the model buffer.
  bool eq(const Path& p, std::string_view ours, const std::string& theirs) {
    if (!ours.empty() && !view(p, ours.data(), ours.size())) return false;
    return ours == theirs || differ(p, show(ours), show(std::string_view(theirs)));
  }
  // Repeated fields: count, then each element.
  template <class O, class R>
  bool eq(const Path& p, const std::vector<O>& ours, const R& theirs) {
    if (!eqCount(p, ours.size(), static_cast<uint64_t>(theirs.size()))) return false;
    for (size_t i = 0; i < ours.size(); ++i) {
      if (!eq(p[i], ours[i], theirs[static_cast<int>(i)])) return false;
    }
    return true;
  }
  // Bytes we keep encoded (sparse initializers, the tensor message): the view
  // must decode to the message protobuf holds (compared re-serialised).
  bool eq(const Path& p, qo::Bytes ours, const google::protobuf::MessageLite& theirs) {
    if (!view(p, ours.data, ours.size)) return false;
    std::unique_ptr<google::protobuf::MessageLite> decoded(theirs.New());
    if (!decoded->ParseFromArray(ours.data, static_cast<int>(ours.size))) {
      return problem(p, "our view of " + std::to_string(ours.size) + " bytes does not parse as " + theirs.GetTypeName());
    }
    if (decoded->SerializeAsString() != theirs.SerializeAsString()) {
      return problem(p, "our view of " + std::to_string(ours.size) + " bytes holds a different " + theirs.GetTypeName());
    }
    return true;
  }
  bool eqBytes(const Path& p, qo::Bytes ours, const std::string& theirs) {
    if (!view(p, ours.data, ours.size) || !eqCount(p, ours.size, theirs.size(), "bytes")) return false;
    if (ours.size == 0 || std::memcmp(ours.data, theirs.data(), ours.size) == 0) return true;
    const auto* theirsBytes = reinterpret_cast<const uint8_t*>(theirs.data());
    const size_t i = static_cast<size_t>(std::mismatch(ours.data, ours.data + ours.size, theirsBytes).first - ours.data);
    char a[8], b[8];
    std::snprintf(a, sizeof a, "0x%02x", ours.data[i]);
    std::snprintf(b, sizeof b, "0x%02x", theirsBytes[i]);
    return differ(p[i], a, b);
  }

  bool eq(const Path& p, const qo::Model& o, const pb::ModelProto& t) {
    return eq(p("ir_version"), o.irVersion, t.ir_version()) && eq(p("opset_import"), o.opsets, t.opset_import()) &&
           eq(p("producer_name"), o.producerName, t.producer_name()) &&
           eq(p("producer_version"), o.producerVersion, t.producer_version()) && eq(p("domain"), o.domain, t.domain()) &&
           eq(p("model_version"), o.modelVersion, t.model_version()) && eq(p("doc_string"), o.docString, t.doc_string()) &&
           eq(p("metadata_props"), o.metadata, t.metadata_props()) &&
           eqCount(p("training_info"), o.trainingInfos, static_cast<uint64_t>(t.training_info_size())) &&
           eq(p("functions"), o.functions, t.functions()) && eq(p("has_graph"), o.hasGraph, t.has_graph()) &&
           eq(p("graph"), o.graph, t.graph());
  }

  bool eq(const Path& p, const qo::OpsetId& o, const pb::OperatorSetIdProto& t) {
    return eq(p("domain"), o.domain, t.domain()) && eq(p("version"), o.version, t.version());
  }

  bool eq(const Path& p, const qo::StringPair& o, const pb::StringStringEntryProto& t) {
    return eq(p("key"), o.first, t.key()) && eq(p("value"), o.second, t.value());
  }

  bool eq(const Path& p, const qo::Function& o, const pb::FunctionProto& t) {
    return eq(p("name"), o.name, t.name()) && eq(p("domain"), o.domain, t.domain()) &&
           eq(p("doc_string"), o.docString, t.doc_string()) && eq(p("input"), o.inputs, t.input()) &&
           eq(p("output"), o.outputs, t.output()) && eq(p("attribute"), o.attributes, t.attribute()) &&
           eq(p("opset_import"), o.opsets, t.opset_import()) && eq(p("node"), o.nodes, t.node());
  }

  bool eq(const Path& p, const qo::Graph& o, const pb::GraphProto& t) {
    return eq(p("name"), o.name, t.name()) && eq(p("doc_string"), o.docString, t.doc_string()) &&
           eq(p("input"), o.inputs, t.input()) && eq(p("output"), o.outputs, t.output()) &&
           eq(p("value_info"), o.valueInfo, t.value_info()) && eq(p("initializer"), o.initializers, t.initializer()) &&
           eq(p("sparse_initializer"), o.sparseInitializers, t.sparse_initializer()) &&
           eqCount(p("quantization_annotation"), o.quantizationAnnotations,
                   static_cast<uint64_t>(t.quantization_annotation_size())) &&
           eq(p("node"), o.nodes, t.node());
  }

  bool eq(const Path& p, const qo::Node& o, const pb::NodeProto& t) {
    return eq(p("name"), o.name, t.name()) && eq(p("op_type"), o.opType, t.op_type()) && eq(p("domain"), o.domain, t.domain()) &&
           eq(p("doc_string"), o.docString, t.doc_string()) && eq(p("input"), o.inputs, t.input()) &&
           eq(p("output"), o.outputs, t.output()) && eq(p("attribute"), o.attributes, t.attribute());
  }

  bool eq(const Path& p, const qo::Attribute& o, const pb::AttributeProto& t) {
    // proto2 keeps an enum value it does not know as an unknown field, so an
    // AttributeType newer than onnx.proto reads as absent on the protobuf side.
    const bool unknownType = !t.has_type() && !pb::AttributeProto_AttributeType_IsValid(o.type);
    return eq(p("name"), o.name, t.name()) && eq(p("ref_attr_name"), o.refAttrName, t.ref_attr_name()) &&
           eq(p("doc_string"), o.docString, t.doc_string()) && (unknownType || eq<int64_t>(p("type"), o.type, t.type())) &&
           eq(p("has_f"), o.hasF, t.has_f()) && eq(p("f"), o.f, t.f()) && eq(p("has_i"), o.hasI, t.has_i()) &&
           eq(p("i"), o.i, t.i()) && eq(p("has_s"), o.hasS, t.has_s()) && eq(p("s"), o.s, t.s()) &&
           eq(p("has_t"), o.t != nullptr, t.has_t()) && (!o.t || eq(p("t"), *o.t, t.t())) &&
           eq(p("has_g"), o.g != nullptr, t.has_g()) && (!o.g || eq(p("g"), *o.g, t.g())) &&
           eq(p("floats"), o.floats, t.floats()) && eq(p("ints"), o.ints, t.ints()) && eq(p("strings"), o.strings, t.strings()) &&
           eq(p("tensors"), o.tensors, t.tensors()) && eq(p("graphs"), o.graphs, t.graphs()) &&
           eqCount(p("sparse_tensor+sparse_tensors"), o.sparseTensors.size(),
                   static_cast<uint64_t>(t.has_sparse_tensor() + t.sparse_tensors_size())) &&
           eqCount(p("tp+type_protos"), o.typeProtos.size(), static_cast<uint64_t>(t.has_tp() + t.type_protos_size()));
  }

  bool eq(const Path& p, const qo::ValueInfo& o, const pb::ValueInfoProto& t) {
    if (!eq(p("name"), o.name, t.name()) || !eq(p("doc_string"), o.docString, t.doc_string()) ||
        !eq(p("has_type"), o.hasType, t.has_type()) || !eq<int64_t>(p("type")("value_case"), o.typeCase, t.type().value_case())) {
      return false;
    }
    switch (t.type().value_case()) {
      case pb::TypeProto::kTensorType:
        return tensorType(p("type")("tensor_type"), o, t.type().tensor_type());
      case pb::TypeProto::kSparseTensorType:
        return tensorType(p("type")("sparse_tensor_type"), o, t.type().sparse_tensor_type());
      default:
        return true;  // sequence, map, optional: the reader records only the kind
    }
  }

  template <class TensorType>  // TypeProto.Tensor or TypeProto.SparseTensor
  bool tensorType(const Path& p, const qo::ValueInfo& o, const TensorType& t) {
    return eq(p("elem_type"), o.elemType, t.elem_type()) && eq(p("has_shape"), o.hasShape, t.has_shape()) &&
           eq(p("shape")("dim"), o.shape, t.shape().dim());
  }

  bool eq(const Path& p, const qo::Dimension& o, const pb::TensorShapeProto_Dimension& t) {
    return eq(p("has_dim_value"), o.hasValue, t.value_case() == pb::TensorShapeProto_Dimension::kDimValue) &&
           eq(p("dim_value"), o.value, t.dim_value()) && eq(p("dim_param"), o.param, t.dim_param()) &&
           eq(p("denotation"), o.denotation, t.denotation());
  }

  bool eq(const Path& p, const qo::Tensor& o, const pb::TensorProto& t) {
    return eq(p("name"), o.name, t.name()) && eq(p("doc_string"), o.docString, t.doc_string()) &&
           eq(p("data_type"), o.dataType, t.data_type()) && eq(p("dims"), o.dims, t.dims()) &&
           eq(p("has_segment"), o.hasSegment, t.has_segment()) &&
           eq(p("segment")("begin"), o.segmentBegin, t.segment().begin()) &&
           eq(p("segment")("end"), o.segmentEnd, t.segment().end()) &&
           eq(p("data_location_external"), o.external, t.data_location() == pb::TensorProto::EXTERNAL) &&
           eq(p("external_data"), o.externalData, t.external_data()) && eq(p("has_raw_data"), o.hasRawData, t.has_raw_data()) &&
           (!o.hasRawData || eqBytes(p("raw_data"), o.rawData, t.raw_data())) && typedStorage(p, o, t) &&
           decodedValues(p, o, t) && eq<uint64_t>(p("offset"), o.offset, static_cast<uint64_t>(o.message.data - begin_)) &&
           eq(p("message"), o.message, t);
  }

  // Which typed field holds values and how many, then each stored value.
  bool typedStorage(const Path& p, const qo::Tensor& o, const pb::TensorProto& t) {
    uint32_t field = 0;
    for (uint32_t f : {4u, 5u, 6u, 7u, 10u, 11u}) {
      if (typedFieldSize(t, f) == 0) continue;
      if (field != 0) {
        return problem(p, "protobuf has values in both " + std::string(typedFieldName(field)) + " and " + typedFieldName(f) +
                              ", which our reader accepted");
      }
      field = f;
    }
    if (!eq(p("typed_field"), o.typedField, field)) return false;
    if (field == 0) return eqCount(p("typed_data"), o.typedCount, 0);
    if (!eqCount(p(typedFieldName(field)), o.typedCount, static_cast<uint64_t>(typedFieldSize(t, field)))) return false;
    std::vector<uint64_t> numbers;
    std::vector<std::string_view> strings;
    if (!walkTyped(o, &numbers, &strings)) return problem(p("message"), "our tensor message view does not re-read");
    if (field == 6) return eq(p("string_data"), strings, t.string_data());
    if (!eqCount(p(typedFieldName(field)), numbers.size(), static_cast<uint64_t>(typedFieldSize(t, field)))) return false;
    for (size_t i = 0; i < numbers.size(); ++i) {
      const uint64_t theirs = typedFieldBits(t, field, static_cast<int>(i));
      if (numbers[i] != theirs)
        return differ(p(typedFieldName(field))[i], showTyped(field, numbers[i]), showTyped(field, theirs));
    }
    return true;
  }

  // readAsDouble / readAsFloat against values converted from the protobuf
  // fields here: both succeed exactly when the message determines the values.
  bool decodedValues(const Path& p, const qo::Tensor& o, const pb::TensorProto& t) {
    if (o.external || !qo::isReadableType(o.dataType)) return true;
    Expected want;
    const bool determined = expectedValues(t, &want);
    auto asDouble = qo::readAsDouble(o);
    auto asFloat = qo::readAsFloat(o);
    if (!checkOutcome(p("readAsDouble"), asDouble.ok(), asDouble.error(), determined) ||
        !checkOutcome(p("readAsFloat"), asFloat.ok(), asFloat.error(), determined)) {
      return false;
    }
    if (!determined) return true;
    const std::vector<double>& d = asDouble.value();
    if (!eqCount(p("readAsDouble"), d.size(), want.d.size())) return false;
    for (size_t i = 0; i < d.size(); ++i) {
      if (!eq(p("readAsDouble")[i], d[i], want.d[i])) return false;
    }
    const qo::FloatValues& fv = asFloat.value();
    if (!eqCount(p("readAsFloat"), fv.count, want.f.size())) return false;
    for (size_t i = 0; i < want.f.size(); ++i) {
      if (!eq(p("readAsFloat")[i], ql::wire::loadF32(fv.bytes + 4 * i), want.f[i])) return false;
    }
    if (o.hasRawData && o.dataType == qo::kFloat && fv.count > 0 && (!fv.isView() || fv.bytes != o.rawData.data)) {
      return problem(p("readAsFloat"), "float32 raw_data came back as a copy, not as a view of raw_data");
    }
    return true;
  }

  bool checkOutcome(const Path& p, bool ok, const ql::Error& error, bool determined) {
    if (ok == determined) return true;
    if (!ok) return problem(p, "failed (" + error.describe() + ") but the protobuf tensor determines its values");
    return problem(p, "succeeded but the protobuf tensor does not determine its values (missing or miscounted data)");
  }

  const uint8_t* begin_;
  const uint8_t* end_;
  std::string difference_;
};

// ---------------------------------------------------------------------------
// Checking one model.

// Empty when the reader and protobuf agree on these bytes; otherwise the first
// difference. Both rejecting the file is agreement, unless `valid` says it must parse.
std::string crosscheckBytes(const uint8_t* data, size_t size, bool valid = false) {
  pb::ModelProto theirs;
  const bool theirsOk = size <= static_cast<size_t>(INT_MAX) && theirs.ParseFromArray(data, static_cast<int>(size));
  auto ours = qo::parseModel(data, size);
  if (ours.ok() != theirsOk) {
    return std::string("parsers disagree: ours ") + (ours.ok() ? "accepts" : "rejects (" + ours.error().describe() + ")") +
           ", protobuf " + (theirsOk ? "accepts" : "rejects");
  }
  if (!theirsOk) return valid ? "both parsers reject a model built to be valid: " + ours.error().describe() : std::string();
  Checker checker(data, size);
  return checker.run(ours.value(), theirs) ? std::string() : checker.difference();
}

bool readFile(const fs::path& path, std::vector<uint8_t>* out) {
  std::ifstream in(path, std::ios::binary);
  if (!in) return false;
  in.seekg(0, std::ios::end);
  const std::streamoff size = in.tellg();
  if (size < 0) return false;
  in.seekg(0);
  out->resize(static_cast<size_t>(size));
  return size == 0 || static_cast<bool>(in.read(reinterpret_cast<char*>(out->data()), size));
}

std::string crosscheckFile(const fs::path& path) {
  std::vector<uint8_t> bytes;
  if (!readFile(path, &bytes)) return "cannot read the file";
  return crosscheckBytes(bytes.data(), bytes.size());
}

std::string crosscheckValid(const std::string& bytes) {
  return crosscheckBytes(reinterpret_cast<const uint8_t*>(bytes.data()), bytes.size(), true);
}

// ---------------------------------------------------------------------------
// Synthetic models. The corpora leave out much of what the reader decodes
// (functions, metadata, sparse and external tensors, float16 / bfloat16 /
// double / uint64 / string / complex typed values, most attribute types), so
// one model built here holds all of it; a second is written at the wire level
// with encodings protobuf's own serializer never produces.

template <class V>
std::string rawOf(std::initializer_list<V> values) {
  std::string out(values.size() * sizeof(V), '\0');
  std::memcpy(out.data(), values.begin(), out.size());
  return out;
}

pb::TensorProto* setTensor(pb::TensorProto* t, const char* name, int dataType, std::initializer_list<int64_t> dims) {
  t->set_name(name);
  t->set_data_type(dataType);
  for (int64_t d : dims) t->add_dims(d);
  return t;
}

const float kNaNPayload = bitCast<float>(0x7fc00123u);
const double kNaNPayloadD = bitCast<double>(0x7ff8000000000123ull);

// One tensor per element type and storage, with edge values.
void addInitializers(pb::GraphProto* g) {
  using T = pb::TensorProto;
  auto add = [g](const char* name, int dt, std::initializer_list<int64_t> dims) {
    return setTensor(g->add_initializer(), name, dt, dims);
  };
  add("f32_raw", T::FLOAT, {2, 3})->set_raw_data(rawOf<float>({1.5f, -0.0f, kNaNPayload, INFINITY, 1e-45f, 3.4e38f}));
  auto* f32 = add("f32_typed", T::FLOAT, {5});
  for (float v : {0.25f, -0.0f, kNaNPayload, -INFINITY, 1e-45f}) f32->add_float_data(v);
  add("f32_scalar", T::FLOAT, {})->add_float_data(42.0f);
  add("f32_empty", T::FLOAT, {0});
  add("f32_empty_raw", T::FLOAT, {2, 0})->set_raw_data("");
  // float16 bit patterns: zeros, subnormals, normals, max, infinities, NaNs; one sign-extended as int16.
  auto* h = add("f16_typed", T::FLOAT16, {13});
  for (int32_t v : {0x0000, 0x8000, 0x0001, 0x03ff, 0x0400, 0x3c00, 0x7bff, 0x7c00, 0xfc00, 0x7e00, 0x7c01, 0xc000, -16384}) {
    h->add_int32_data(v);
  }
  add("f16_raw", T::FLOAT16, {6})->set_raw_data(rawOf<uint16_t>({0x0001, 0x8001, 0x3555, 0x7bff, 0xfe01, 0x0000}));
  auto* bf = add("bf16_typed", T::BFLOAT16, {4});
  for (int32_t v : {0x3f80, 0xff80, 0x7fc1, 0x0001}) bf->add_int32_data(v);
  add("bf16_raw", T::BFLOAT16, {3})->set_raw_data(rawOf<uint16_t>({0x4049, 0x8000, 0xff81}));
  auto* i8 = add("i8_typed", T::INT8, {4});
  for (int32_t v : {-128, -1, 0, 127}) i8->add_int32_data(v);
  add("i8_raw", T::INT8, {3})->set_raw_data(rawOf<int8_t>({-128, -1, 127}));
  auto* u8 = add("u8_typed", T::UINT8, {2});
  for (int32_t v : {0, 255}) u8->add_int32_data(v);
  add("u8_raw", T::UINT8, {2})->set_raw_data(rawOf<uint8_t>({0, 255}));
  auto* i16 = add("i16_typed", T::INT16, {2});
  for (int32_t v : {-32768, 32767}) i16->add_int32_data(v);
  add("i16_raw", T::INT16, {2})->set_raw_data(rawOf<int16_t>({-32768, 32767}));
  add("u16_typed", T::UINT16, {1})->add_int32_data(65535);
  add("u16_raw", T::UINT16, {1})->set_raw_data(rawOf<uint16_t>({65535}));
  auto* i32 = add("i32_typed", T::INT32, {3});
  for (int32_t v : {INT32_MIN, -1, INT32_MAX}) i32->add_int32_data(v);
  add("i32_raw", T::INT32, {2})->set_raw_data(rawOf<int32_t>({INT32_MIN, INT32_MAX}));
  auto* b = add("bool_typed", T::BOOL, {2});
  for (int32_t v : {0, 1}) b->add_int32_data(v);
  add("bool_raw", T::BOOL, {2})->set_raw_data(rawOf<uint8_t>({1, 0}));
  auto* i64 = add("i64_typed", T::INT64, {4});
  for (int64_t v : {INT64_MIN, int64_t{-1}, (int64_t{1} << 53) + 1, INT64_MAX}) i64->add_int64_data(v);
  add("i64_raw", T::INT64, {2})->set_raw_data(rawOf<int64_t>({INT64_MIN, (int64_t{1} << 24) + 1}));
  auto* u32 = add("u32_typed", T::UINT32, {2});
  for (uint64_t v : {uint64_t{0}, uint64_t{UINT32_MAX}}) u32->add_uint64_data(v);
  add("u32_raw", T::UINT32, {1})->set_raw_data(rawOf<uint32_t>({UINT32_MAX}));
  auto* u64 = add("u64_typed", T::UINT64, {3});
  for (uint64_t v : {uint64_t{0}, UINT64_MAX, (uint64_t{1} << 53) + 1}) u64->add_uint64_data(v);
  add("u64_raw", T::UINT64, {1})->set_raw_data(rawOf<uint64_t>({UINT64_MAX}));
  auto* d = add("f64_typed", T::DOUBLE, {5});
  for (double v : {kNaNPayloadD, -0.0, 1e308, 5e-324, 0.1}) d->add_double_data(v);
  add("f64_raw", T::DOUBLE, {2})->set_raw_data(rawOf<double>({0.1, -1e-310}));
  auto* str = add("string_typed", T::STRING, {4});
  for (const char* v : {"", "a", "\xff\x01"}) str->add_string_data(v);
  str->add_string_data(std::string("\0z", 2));
  auto* c64 = add("c64_typed", T::COMPLEX64, {2});
  for (float v : {1.0f, 2.0f, -3.0f, kNaNPayload}) c64->add_float_data(v);
  auto* c128 = add("c128_typed", T::COMPLEX128, {1});
  for (double v : {1.0, -2.0}) c128->add_double_data(v);
  add("c64_raw", T::COMPLEX64, {1})->set_raw_data(rawOf<float>({1.0f, -1.0f}));
  auto* f8 = add("f8e4m3_typed", 17, {2});  // FLOAT8E4M3FN: one value per int32 (IR 9)
  for (int32_t v : {0x38, 0xff}) f8->add_int32_data(v);
  add("undefined_empty", T::UNDEFINED, {0});
  auto* ext = add("external", T::FLOAT, {4});
  ext->set_data_location(T::EXTERNAL);
  for (auto [k, v] : {std::pair{"location", "weights.bin"}, {"offset", "4096"}, {"length", "16"}, {"checksum", ""}}) {
    auto* e = ext->add_external_data();
    e->set_key(k);
    e->set_value(v);
  }
  auto* seg = add("segmented", T::FLOAT, {2});
  seg->set_raw_data(rawOf<float>({1.0f, 2.0f}));
  seg->mutable_segment()->set_begin(-1);
  seg->mutable_segment()->set_end(INT64_MAX);
  seg->set_doc_string("segment of a larger tensor");
}

void setTensorType(pb::TypeProto* tp, int elemType, std::initializer_list<const char*> dims) {
  auto* tt = tp->mutable_tensor_type();
  tt->set_elem_type(elemType);
  auto* shape = tt->mutable_shape();
  for (const char* d : dims) {
    auto* dim = shape->add_dim();
    if (d == nullptr) continue;  // neither value nor param
    if (d[0] >= '0' && d[0] <= '9')
      dim->set_dim_value(std::atoll(d));
    else if (d[0] == '-')
      dim->set_dim_value(std::atoll(d));
    else
      dim->set_dim_param(d);
  }
}

void addValueInfos(pb::GraphProto* g) {
  auto* x = g->add_input();
  x->set_name("x");
  x->set_doc_string("input x");
  setTensorType(x->mutable_type(), pb::TensorProto::FLOAT, {"1", "N", nullptr, "-1", "0"});
  x->mutable_type()->mutable_tensor_type()->mutable_shape()->mutable_dim(2)->set_denotation("DATA_CHANNEL");
  auto* seq = g->add_input();
  seq->set_name("seq");
  setTensorType(seq->mutable_type()->mutable_sequence_type()->mutable_elem_type(), pb::TensorProto::INT64, {"3"});
  auto* map = g->add_input();
  map->set_name("map");
  map->mutable_type()->mutable_map_type()->set_key_type(pb::TensorProto::STRING);
  setTensorType(map->mutable_type()->mutable_map_type()->mutable_value_type(), pb::TensorProto::FLOAT, {});
  auto* opt = g->add_input();
  opt->set_name("opt");
  setTensorType(opt->mutable_type()->mutable_optional_type()->mutable_elem_type(), pb::TensorProto::FLOAT16, {"2"});
  auto* sp = g->add_input();
  sp->set_name("sparse");
  auto* st = sp->mutable_type()->mutable_sparse_tensor_type();
  st->set_elem_type(pb::TensorProto::FLOAT);
  st->mutable_shape()->add_dim()->set_dim_value(8);
  g->add_input()->set_name("untyped");
  auto* noShape = g->add_input();
  noShape->set_name("no_shape");
  noShape->mutable_type()->mutable_tensor_type()->set_elem_type(pb::TensorProto::BFLOAT16);
  auto* scalar = g->add_input();
  scalar->set_name("scalar");
  setTensorType(scalar->mutable_type(), pb::TensorProto::DOUBLE, {});
  scalar->mutable_type()->set_denotation("TENSOR");
  auto* y = g->add_output();
  y->set_name("y");
  setTensorType(y->mutable_type(), pb::TensorProto::FLOAT, {"batch", "7"});
  auto* vi = g->add_value_info();
  vi->set_name("t0");
  setTensorType(vi->mutable_type(), 23, {"-5"});  // an element type newer than onnx.proto
}

void setSparse(pb::SparseTensorProto* s, float first) {
  auto* values = setTensor(s->mutable_values(), "sv", pb::TensorProto::FLOAT, {2});
  values->add_float_data(first);
  values->add_float_data(-first);
  auto* indices = setTensor(s->mutable_indices(), "si", pb::TensorProto::INT64, {2});
  indices->add_int64_data(0);
  indices->add_int64_data(3);
  s->add_dims(4);
}

// A graph holding a node with a tensor attribute and, `depth` more times, a
// graph attribute holding the same.
void setSubgraph(pb::GraphProto* g, const std::string& name, int depth) {
  g->set_name(name);
  setTensor(g->add_initializer(), (name + "_w").c_str(), pb::TensorProto::FLOAT16, {2})
      ->set_raw_data(rawOf<uint16_t>({0x3c00, 0xbc00}));
  auto* n = g->add_node();
  n->set_op_type(depth > 0 ? "If" : "Constant");
  n->add_output(name + "_out");
  auto* t = n->add_attribute();
  t->set_name("value");
  t->set_type(pb::AttributeProto::TENSOR);
  setTensor(t->mutable_t(), "c", pb::TensorProto::INT64, {2})->set_raw_data(rawOf<int64_t>({-1, 1}));
  if (depth > 0) {
    auto* a = n->add_attribute();
    a->set_name("then_branch");
    a->set_type(pb::AttributeProto::GRAPH);
    setSubgraph(a->mutable_g(), name + "_then", depth - 1);
  }
  auto* out = g->add_output();
  out->set_name(name + "_out");
}

pb::AttributeProto* addAttribute(pb::NodeProto* n, const char* name, pb::AttributeProto::AttributeType type) {
  auto* a = n->add_attribute();
  a->set_name(name);
  a->set_type(type);
  return a;
}

// A node with one attribute of every type.
void addAttributeNode(pb::GraphProto* g) {
  using A = pb::AttributeProto;
  auto* n = g->add_node();
  n->set_name("every_attribute");
  n->set_op_type("Custom");
  n->set_domain("ai.quantlens.test");
  n->set_doc_string("a node with one attribute of every type");
  for (const char* in : {"x", "", "f32_raw"}) n->add_input(in);
  n->add_output("t0");
  addAttribute(n, "f", A::FLOAT)->set_f(-1.5f);
  addAttribute(n, "f_nan", A::FLOAT)->set_f(kNaNPayload);
  addAttribute(n, "i", A::INT)->set_i(INT64_MIN);
  auto* s = addAttribute(n, "s", A::STRING);
  s->set_s(std::string("bytes\0\xff", 7));
  s->set_doc_string("attribute doc");
  setTensor(addAttribute(n, "t", A::TENSOR)->mutable_t(), "t", pb::TensorProto::FLOAT16, {3})->add_int32_data(0x7c00);
  n->mutable_attribute(n->attribute_size() - 1)->mutable_t()->add_int32_data(0x0001);
  n->mutable_attribute(n->attribute_size() - 1)->mutable_t()->add_int32_data(0x8400);
  setSubgraph(addAttribute(n, "g", A::GRAPH)->mutable_g(), "g", 2);
  auto* floats = addAttribute(n, "floats", A::FLOATS);
  for (float v : {1.0f, -0.0f, kNaNPayload, INFINITY}) floats->add_floats(v);
  auto* ints = addAttribute(n, "ints", A::INTS);
  for (int64_t v : {int64_t{-1}, int64_t{0}, INT64_MAX}) ints->add_ints(v);
  auto* strings = addAttribute(n, "strings", A::STRINGS);
  for (const char* v : {"a", "", "\xff"}) strings->add_strings(v);
  auto* tensors = addAttribute(n, "tensors", A::TENSORS);
  setTensor(tensors->add_tensors(), "t1", pb::TensorProto::DOUBLE, {1})->add_double_data(2.5);
  setTensor(tensors->add_tensors(), "t2", pb::TensorProto::UINT8, {2})->set_raw_data(rawOf<uint8_t>({7, 9}));
  auto* graphs = addAttribute(n, "graphs", A::GRAPHS);
  setSubgraph(graphs->add_graphs(), "gs0", 0);
  setSubgraph(graphs->add_graphs(), "gs1", 1);
  setSparse(addAttribute(n, "sparse_tensor", A::SPARSE_TENSOR)->mutable_sparse_tensor(), 1.0f);
  auto* sparseTensors = addAttribute(n, "sparse_tensors", A::SPARSE_TENSORS);
  setSparse(sparseTensors->add_sparse_tensors(), 2.0f);
  setSparse(sparseTensors->add_sparse_tensors(), 3.0f);
  setTensorType(addAttribute(n, "tp", A::TYPE_PROTO)->mutable_tp(), pb::TensorProto::INT8, {"4"});
  auto* typeProtos = addAttribute(n, "type_protos", A::TYPE_PROTOS);
  setTensorType(typeProtos->add_type_protos(), pb::TensorProto::INT8, {"1"});
  setTensorType(typeProtos->add_type_protos(), pb::TensorProto::UINT8, {"N"});
  addAttribute(n, "undefined", A::UNDEFINED);
}

pb::ModelProto fullModel() {
  pb::ModelProto m;
  m.set_ir_version(8);
  m.set_producer_name("quantlens-crosscheck");
  m.set_producer_version("1.0");
  m.set_domain("ai.quantlens");
  m.set_model_version(-3);
  m.set_doc_string(std::string("model doc \0 with a NUL", 22));
  for (auto [domain, version] : {std::pair{"", 13}, {"com.microsoft", 1}, {"ai.quantlens.test", 0}}) {
    auto* o = m.add_opset_import();
    o->set_domain(domain);
    o->set_version(version);
  }
  for (auto [k, v] : {std::pair{"author", "test"}, {"", ""}}) {
    auto* e = m.add_metadata_props();
    e->set_key(k);
    e->set_value(v);
  }
  m.add_training_info()->mutable_algorithm()->set_name("train");
  auto* fn = m.add_functions();
  fn->set_name("Scaled");
  fn->set_domain("ai.quantlens.test");
  fn->set_doc_string("x * alpha");
  fn->add_input("x");
  fn->add_output("z");
  fn->add_attribute("alpha");
  fn->add_attribute("unused");
  auto* fo = fn->add_opset_import();
  fo->set_version(13);
  auto* fnode = fn->add_node();
  fnode->set_op_type("Constant");
  fnode->add_output("a");
  auto* ref = fnode->add_attribute();
  ref->set_name("value_float");
  ref->set_ref_attr_name("alpha");
  ref->set_type(pb::AttributeProto::FLOAT);
  auto* mul = fn->add_node();
  mul->set_op_type("Mul");
  for (const char* in : {"x", "a"}) mul->add_input(in);
  mul->add_output("z");

  auto* g = m.mutable_graph();
  g->set_name("main");
  g->set_doc_string("main graph");
  addValueInfos(g);
  addAttributeNode(g);
  auto* call = g->add_node();
  call->set_op_type("Scaled");
  call->set_domain("ai.quantlens.test");
  call->add_input("t0");
  call->add_output("y");
  addAttribute(call, "alpha", pb::AttributeProto::FLOAT)->set_f(0.5f);
  addInitializers(g);
  setSparse(g->add_sparse_initializer(), 4.0f);
  setSparse(g->add_sparse_initializer(), 5.0f);
  g->add_quantization_annotation()->set_tensor_name("f32_raw");
  return m;
}

// A graph nested `levels` deep through If.then_branch, with a tensor attribute
// in the innermost graph: the reader's default maxGraphDepth is 32.
std::string nestedModel(int levels) {
  pb::ModelProto m;
  m.set_ir_version(8);
  setSubgraph(m.mutable_graph(), "n", levels);
  return m.SerializeAsString();
}

// An int4 tensor stored in int32_data the way onnx.proto (IR 10) specifies:
// "uint4 and int4 values must be packed to 4bitx2", so 3 elements take 2 values.
std::string int4TypedModel() {
  pb::ModelProto m;
  m.set_ir_version(10);
  auto* t = setTensor(m.mutable_graph()->add_initializer(), "w_int4", 22, {3});
  t->add_int32_data(0x21);
  t->add_int32_data(0x03);
  return m.SerializeAsString();
}

// The highest legal field number, as one more unknown field (pbw::Msg::
// unknownFields() adds one field of each wire type).
constexpr uint32_t kMaxField = 536870911;

// An int64 as the varint protobuf writes for it (ten bytes when negative).
uint64_t asVarint(int64_t v) { return static_cast<uint64_t>(v); }

// Valid protobuf that protobuf's serializer never writes: packed fields written
// unpacked or split, unpacked fields packed, singular fields repeated (last one
// wins, messages merge), oneof members switched, unknown fields of every wire
// type at every level, an AttributeType newer than onnx.proto.
std::string wireVariantsModel() {
  using T = pb::TensorProto;
  pbw::Msg floats;  // float_data unpacked, packed, empty packed, unpacked again; dims unpacked
  floats.unknownFields()
      .u64(1, 2)
      .u64(1, 3)
      .u64(2, T::FLOAT)
      .bytes(8, "old name")
      .bytes(8, "floats")
      .fixed32(4, bitCast<uint32_t>(1.5f))
      .packedFloats(4, {-2.0f, kNaNPayload})
      .bytes(4, "")
      .packedFloats(4, {0.0f, -0.0f})
      .fixed32(4, bitCast<uint32_t>(1e-45f))
      .msg(3, pbw::Msg().u64(1, 1))
      .msg(3, pbw::Msg().u64(2, 7));  // segment merged from two occurrences
  pbw::Msg int8s;                     // int32_data negative values as 10-byte varints, packed and not
  int8s.packedVarints(1, {4})
      .u64(2, T::INT8)
      .bytes(8, "int8s")
      .u64(5, asVarint(-5))
      .packedVarints(5, {asVarint(-128), 127})
      .u64(5, 0)
      .unknownFields();
  pbw::Msg int64s;
  int64s.bytes(8, "int64s").u64(2, T::INT64).u64(1, 3).packedVarints(7, {asVarint(INT64_MIN)}).u64(7, asVarint(-1)).u64(7, 1);
  pbw::Msg doubles;
  doubles.bytes(8, "doubles")
      .u64(2, T::DOUBLE)
      .u64(1, 3)
      .fixed64(10, bitCast<uint64_t>(0.1))
      .packedDoubles(10, {kNaNPayloadD, -0.0});
  pbw::Msg uint64s;
  uint64s.bytes(8, "uint64s").u64(2, T::UINT64).packedVarints(1, {2}).u64(11, UINT64_MAX).packedVarints(11, {1});
  pbw::Msg f16;  // float16 with one value given as a sign-extended int16
  f16.bytes(8, "f16").u64(2, T::FLOAT16).u64(1, 2).u64(5, asVarint(-16384)).u64(5, 0x3c00);

  pbw::Msg dims;  // dim_value then dim_param (param wins), param then value (value wins), denotation
  dims.msg(1, pbw::Msg().u64(1, 4).bytes(2, "N").bytes(3, "DATA_BATCH").unknownFields())
      .msg(1, pbw::Msg().bytes(2, "M").u64(1, asVarint(-1)));
  pbw::Msg tensorType;
  tensorType.u64(1, T::FLOAT).msg(2, dims).unknownFields();
  pbw::Msg valueInfo;  // type given twice: protobuf merges, so the shape is both dims lists
  const pbw::Msg moreDims = pbw::Msg().msg(1, pbw::Msg().u64(1, 9));
  valueInfo.bytes(1, "x")
      .msg(2, pbw::Msg().msg(1, tensorType))
      .msg(2, pbw::Msg().msg(1, pbw::Msg().msg(2, moreDims)))
      .unknownFields();
  pbw::Msg switched;  // tensor_type then sequence_type: the oneof ends as sequence_type
  switched.bytes(1, "switched").msg(2, pbw::Msg().msg(1, tensorType).msg(4, pbw::Msg()).bytes(6, "denotation"));

  pbw::Msg ints;  // repeated int64 (unpacked in proto2) written packed and mixed
  ints.bytes(1, "ints")
      .u64(20, pb::AttributeProto::INTS)
      .packedVarints(8, {1, asVarint(-1)})
      .u64(8, 5)
      .packedVarints(8, {})
      .unknownFields();
  pbw::Msg fl;
  fl.bytes(1, "floats")
      .u64(20, pb::AttributeProto::FLOATS)
      .packedFloats(7, {1.0f, kNaNPayload})
      .fixed32(7, bitCast<uint32_t>(-0.0f));
  pbw::Msg future;  // AttributeType 99: protobuf keeps it as an unknown field
  future.bytes(1, "future").u64(20, 99).u64(3, 3).bytes(13, "doc");
  pbw::Msg twice;  // singular fields repeated: last wins
  twice.bytes(1, "first")
      .bytes(1, "twice")
      .u64(20, pb::AttributeProto::STRING)
      .bytes(4, "a")
      .bytes(4, "b")
      .u64(20, pb::AttributeProto::INT)
      .u64(3, 1)
      .u64(3, asVarint(-2))
      .fixed32(2, bitCast<uint32_t>(3.0f));
  pbw::Msg tensorAttr;
  tensorAttr.bytes(1, "t").u64(20, pb::AttributeProto::TENSOR).msg(5, f16);

  pbw::Msg node;  // fields interleaved out of field-number order
  node.msg(5, ints)
      .bytes(1, "x")
      .bytes(2, "y")
      .msg(5, fl)
      .bytes(4, "Custom")
      .bytes(1, "")
      .msg(5, future)
      .bytes(3, "n0")
      .msg(5, twice)
      .bytes(7, "test")
      .msg(5, tensorAttr)
      .bytes(6, "doc")
      .unknownFields();
  pbw::Msg graph;
  graph.unknownFields()
      .bytes(2, "old")
      .msg(1, node)
      .msg(5, floats)
      .msg(11, valueInfo)
      .msg(5, int8s)
      .msg(5, int64s)
      .bytes(2, "wire_variants")
      .msg(5, doubles)
      .msg(5, uint64s)
      .msg(12, switched)
      .msg(5, f16)
      .msg(13, valueInfo)
      .bytes(10, "graph doc");
  pbw::Msg model;
  model.unknownFields()
      .u64(kMaxField, 1)
      .msg(8, pbw::Msg().bytes(1, "").u64(2, 13).unknownFields())
      .u64(1, 7)
      .msg(7, graph)
      .bytes(2, "producer")
      .u64(1, 8)
      .msg(14, pbw::Msg().bytes(1, "k").bytes(2, "v").unknownFields())
      .unknownFields();
  return model.b;
}

struct SyntheticCase {
  const char* name;
  std::string bytes;
};

std::vector<SyntheticCase> syntheticCases() {
  return {
      {"every-field", fullModel().SerializeAsString()},
      {"wire-variants", wireVariantsModel()},
      {"nested-32-graphs", nestedModel(32)},
      {"int4-packed-int32_data", int4TypedModel()},
  };
}

// ---------------------------------------------------------------------------
// Self-test: the comparer must find a difference planted on either side, at
// the right path. Without this a comparer that checks nothing would pass.

int indexOf(const google::protobuf::RepeatedPtrField<pb::TensorProto>& list, std::string_view name) {
  for (int i = 0; i < list.size(); ++i) {
    if (list[i].name() == name) return i;
  }
  return -1;
}

int indexOf(const google::protobuf::RepeatedPtrField<pb::AttributeProto>& list, std::string_view name) {
  for (int i = 0; i < list.size(); ++i) {
    if (list[i].name() == name) return i;
  }
  return -1;
}

std::string at(const char* field, int i) { return std::string(field) + "[" + std::to_string(i) + "]"; }

struct Mutation {
  const char* what;
  // Plants one difference (in protobuf's model, ours, or both) and returns the path it must be reported at.
  std::string (*plant)(pb::ModelProto& theirs, qo::Model& ours);
};

// Storage outside the model buffer, for the zero-copy checks.
const std::string kOutside = "every_attribute";

const Mutation kMutations[] = {
    {"ir_version",
     [](pb::ModelProto& t, qo::Model&) -> std::string {
       t.set_ir_version(9);
       return "ir_version";
     }},
    {"metadata value",
     [](pb::ModelProto& t, qo::Model&) -> std::string {
       t.mutable_metadata_props(0)->set_value("other");
       return "metadata_props[0].value";
     }},
    {"function node op_type",
     [](pb::ModelProto& t, qo::Model&) -> std::string {
       t.mutable_functions(0)->mutable_node(1)->set_op_type("Add");
       return "functions[0].node[1].op_type";
     }},
    {"dim_param",
     [](pb::ModelProto& t, qo::Model&) -> std::string {
       t.mutable_graph()->mutable_input(0)->mutable_type()->mutable_tensor_type()->mutable_shape()->mutable_dim(1)->set_dim_param(
           "M");
       return "graph.input[0].type.tensor_type.shape.dim[1].dim_param";
     }},
    {"attribute ints element",
     [](pb::ModelProto& t, qo::Model&) -> std::string {
       auto* n = t.mutable_graph()->mutable_node(0);
       const int a = indexOf(n->attribute(), "ints");
       n->mutable_attribute(a)->set_ints(2, 7);
       return "graph.node[0]." + at("attribute", a) + ".ints[2]";
     }},
    {"attribute float NaN payload",
     [](pb::ModelProto& t, qo::Model&) -> std::string {
       auto* n = t.mutable_graph()->mutable_node(0);
       const int a = indexOf(n->attribute(), "floats");
       n->mutable_attribute(a)->set_floats(2, bitCast<float>(0x7fc00124u));
       return "graph.node[0]." + at("attribute", a) + ".floats[2]";
     }},
    {"attribute removed",
     [](pb::ModelProto& t, qo::Model&) -> std::string {
       t.mutable_graph()->mutable_node(0)->mutable_attribute()->RemoveLast();
       return "graph.node[0].attribute (count)";
     }},
    {"raw_data byte",
     [](pb::ModelProto& t, qo::Model&) -> std::string {
       const int i = indexOf(t.graph().initializer(), "f32_raw");
       (*t.mutable_graph()->mutable_initializer(i)->mutable_raw_data())[5] ^= 1;
       return "graph." + at("initializer", i) + ".raw_data[5]";
     }},
    {"float16 in int32_data",
     [](pb::ModelProto& t, qo::Model&) -> std::string {
       const int i = indexOf(t.graph().initializer(), "f16_typed");
       t.mutable_graph()->mutable_initializer(i)->set_int32_data(3, 0x03fe);
       return "graph." + at("initializer", i) + ".int32_data[3]";
     }},
    {"string_data",
     [](pb::ModelProto& t, qo::Model&) -> std::string {
       const int i = indexOf(t.graph().initializer(), "string_typed");
       t.mutable_graph()->mutable_initializer(i)->set_string_data(3, "z");
       return "graph." + at("initializer", i) + ".string_data[3]";
     }},
    {"external_data value",
     [](pb::ModelProto& t, qo::Model&) -> std::string {
       const int i = indexOf(t.graph().initializer(), "external");
       t.mutable_graph()->mutable_initializer(i)->mutable_external_data(1)->set_value("0");
       return "graph." + at("initializer", i) + ".external_data[1].value";
     }},
    {"sparse initializer",
     [](pb::ModelProto& t, qo::Model&) -> std::string {
       t.mutable_graph()->mutable_sparse_initializer(1)->set_dims(0, 5);
       return "graph.sparse_initializer[1]";
     }},
    {"nested sub-graph tensor",
     [](pb::ModelProto& t, qo::Model&) -> std::string {
       auto* n = t.mutable_graph()->mutable_node(0);
       const int a = indexOf(n->attribute(), "g");
       auto* inner = n->mutable_attribute(a)->mutable_g()->mutable_node(0)->mutable_attribute(1)->mutable_g();
       inner->mutable_node(0)->mutable_attribute(0)->mutable_t()->set_name("d");
       return "graph.node[0]." + at("attribute", a) + ".g.node[0].attribute[1].g.node[0].attribute[0].t.name";
     }},
    {"our name not a view",
     [](pb::ModelProto&, qo::Model& o) -> std::string {
       o.graph.nodes[0].name = kOutside;
       return "graph.node[0].name";
     }},
    {"our raw_data not a view",
     [](pb::ModelProto& t, qo::Model& o) -> std::string {
       const int i = indexOf(t.graph().initializer(), "f32_raw");
       static std::string copy;
       copy = t.graph().initializer(i).raw_data();
       o.graph.initializers[static_cast<size_t>(i)].rawData = {reinterpret_cast<const uint8_t*>(copy.data()), copy.size()};
       return "graph." + at("initializer", i) + ".raw_data";
     }},
    {"our typed values",
     [](pb::ModelProto& t, qo::Model& o) -> std::string {
       const int i = indexOf(t.graph().initializer(), "i64_typed");
       o.graph.initializers[static_cast<size_t>(i)].typedCount = 3;
       return "graph." + at("initializer", i) + ".int64_data";
     }},
    {"readAsDouble path",
     [](pb::ModelProto& t, qo::Model& o) -> std::string {
       // Same stored bits read as another type on our side only: caught at data_type.
       const int i = indexOf(t.graph().initializer(), "i16_typed");
       o.graph.initializers[static_cast<size_t>(i)].dataType = qo::kUint16;
       return "graph." + at("initializer", i) + ".data_type";
     }},
};

// Empty when every planted difference is found where expected; "skip: ..."
// when the unchanged model already differs (reported as synthetic:every-field),
// since a planted difference behind that one cannot be located.
std::string selfTest() {
  // The reference conversion itself, on values known by heart.
  const std::pair<uint16_t, float> halves[] = {{0x0001, 5.9604645e-08f}, {0x03ff, 6.0975552e-05f}, {0x3c00, 1.0f},
                                               {0x7bff, 65504.0f},       {0xc000, -2.0f},          {0x8000, -0.0f}};
  for (auto [h, f] : halves) {
    if (!same(halfToFloatRef(h), f)) return "halfToFloatRef(" + std::to_string(h) + ") is " + show(halfToFloatRef(h));
  }
  const std::string bytes = fullModel().SerializeAsString();
  const auto* data = reinterpret_cast<const uint8_t*>(bytes.data());
  if (!crosscheckValid(bytes).empty()) return "skip: the unchanged every-field model already differs";
  for (const Mutation& m : kMutations) {
    pb::ModelProto theirs;
    auto ours = qo::parseModel(data, bytes.size());
    if (!theirs.ParseFromString(bytes) || !ours.ok()) return "the every-field model does not parse";
    const std::string path = m.plant(theirs, ours.value());
    Checker checker(data, bytes.size());
    if (checker.run(ours.value(), theirs)) return std::string("planted difference not found: ") + m.what;
    const std::string& got = checker.difference();
    if (got.compare(0, path.size(), path) != 0 || (got[path.size()] != ':' && got[path.size()] != ' ')) {
      return std::string("planted difference '") + m.what + "' expected at " + path + ", reported as " + got;
    }
  }
  return {};
}

// ---------------------------------------------------------------------------
// Model folders and the driver.

struct Source {
  std::string label;
  fs::path dir;
  bool recursive;
  const char* fileName;  // match this exact name, or any *.onnx when null
};

std::vector<fs::path> listModels(const Source& s) {
  std::vector<fs::path> out;
  auto take = [&](const fs::directory_entry& e) {
    if (!e.is_regular_file()) return;
    const fs::path& p = e.path();
    if (s.fileName ? p.filename() == s.fileName : p.extension() == ".onnx") out.push_back(p);
  };
  if (s.recursive) {
    for (const auto& e : fs::recursive_directory_iterator(s.dir)) take(e);
  } else {
    for (const auto& e : fs::directory_iterator(s.dir)) take(e);
  }
  std::sort(out.begin(), out.end());
  return out;
}

}  // namespace

int main(int argc, char** argv) {
  GOOGLE_PROTOBUF_VERIFY_VERSION;
  const fs::path root = QL_SOURCE_DIR;
  std::vector<Source> sources;
  std::vector<fs::path> explicitFiles;
  bool only = false;
  for (int i = 1; i < argc; ++i) {
    const std::string arg = argv[i];
    if (arg == "--only") {
      only = true;
    } else if (arg == "-h" || arg == "--help") {
      std::printf(
          "usage: %s [--only] [model.onnx | folder]...\n"
          "Checks the built-in synthetic models and the model folders, plus the given files and folders\n"
          "(--only: just those).\n",
          argv[0]);
      return 0;
    } else if (fs::is_directory(arg)) {
      sources.push_back({arg, arg, true, nullptr});
    } else {
      explicitFiles.push_back(arg);  // a missing file fails below, it is not skipped
    }
  }
  if (!only) {
    sources.push_back({"../shared/models", (root / ".." / "shared" / "models").lexically_normal(), true, nullptr});
    sources.push_back({"libonnx-testdata", "/usr/share/libonnx-testdata/data", true, "model.onnx"});
    sources.push_back({"models/fetched", root / "models" / "fetched", false, nullptr});
    sources.push_back({"models/generated", root / "models" / "generated", false, nullptr});
  }

  int passed = 0, failed = 0, skipped = 0;
  uint64_t totalBytes = 0;
  const auto start = std::chrono::steady_clock::now();
  auto record = [&](const std::string& label, const std::string& difference) {
    if (difference.empty()) {
      ++passed;
    } else {
      ++failed;
      std::printf("FAIL %s: %s\n", label.c_str(), difference.c_str());
    }
  };

  if (!only) {
    const std::string selfTestResult = selfTest();
    if (selfTestResult.rfind("skip", 0) == 0) {
      std::printf("%s self-test: %s\n", "skip", selfTestResult.c_str() + 6);
      ++skipped;
    } else {
      record("self-test", selfTestResult);
    }
    const auto cases = syntheticCases();
    for (const SyntheticCase& c : cases) {
      totalBytes += c.bytes.size();
      record(std::string("synthetic:") + c.name, crosscheckValid(c.bytes));
    }
    std::printf("synthetic: %zu models and a self-test of %zu planted differences\n", cases.size(), std::size(kMutations));
  }
  for (const Source& s : sources) {
    if (!fs::is_directory(s.dir)) {
      std::printf("skip %s: no folder %s\n", s.label.c_str(), s.dir.c_str());
      ++skipped;
      continue;
    }
    const auto models = listModels(s);
    std::printf("%s: %zu models in %s\n", s.label.c_str(), models.size(), s.dir.c_str());
    for (const auto& path : models) {
      std::error_code ec;
      const auto size = fs::file_size(path, ec);
      if (!ec) totalBytes += size;
      record(path.string(), crosscheckFile(path));
    }
  }
  for (const auto& path : explicitFiles) record(path.string(), crosscheckFile(path));

  const double seconds = std::chrono::duration<double>(std::chrono::steady_clock::now() - start).count();
  std::printf("checked %.1f MB in %.2f s\n", static_cast<double>(totalBytes) / 1e6, seconds);
  std::printf("crosscheck: %d passed, %d failed", passed, failed);
  if (skipped > 0) std::printf(", %d skipped", skipped);
  std::printf("\n");
  google::protobuf::ShutdownProtobufLibrary();
  return failed > 0 ? 1 : 0;
}
