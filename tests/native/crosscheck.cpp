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
// counts model folders that are absent. Exit status is non-zero iff M > 0.
//
// Models: ../shared/models/**/*.onnx beside the project root, every model.onnx
// under /usr/share/libonnx-testdata/data, models/fetched/*.onnx and
// models/generated/*.onnx in the project, plus files or folders named on the
// command line (with --only, just those).

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

#ifndef QL_SOURCE_DIR
#error "QL_SOURCE_DIR (the project root) must be defined by the build"
#endif

namespace fs = std::filesystem;
namespace pb = ::onnx;
namespace qo = ql::onnx;

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
    case pb::TensorProto::UINT8: case pb::TensorProto::INT8: case pb::TensorProto::BOOL: return 1;
    case pb::TensorProto::UINT16: case pb::TensorProto::INT16:
    case pb::TensorProto::FLOAT16: case pb::TensorProto::BFLOAT16: return 2;
    case pb::TensorProto::FLOAT: case pb::TensorProto::INT32: case pb::TensorProto::UINT32: return 4;
    case pb::TensorProto::DOUBLE: case pb::TensorProto::INT64: case pb::TensorProto::UINT64: return 8;
    default: return 0;
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
    case pb::TensorProto::FLOAT: e->add(rawAt<float>(raw, i)); break;
    case pb::TensorProto::DOUBLE: e->add(rawAt<double>(raw, i)); break;
    case pb::TensorProto::FLOAT16: e->add(halfToFloatRef(rawAt<uint16_t>(raw, i))); break;
    case pb::TensorProto::BFLOAT16: e->add(bfloat16ToFloatRef(rawAt<uint16_t>(raw, i))); break;
    case pb::TensorProto::INT8: e->add(rawAt<int8_t>(raw, i)); break;
    case pb::TensorProto::UINT8: e->add(rawAt<uint8_t>(raw, i)); break;
    case pb::TensorProto::INT16: e->add(rawAt<int16_t>(raw, i)); break;
    case pb::TensorProto::UINT16: e->add(rawAt<uint16_t>(raw, i)); break;
    case pb::TensorProto::INT32: e->add(rawAt<int32_t>(raw, i)); break;
    case pb::TensorProto::UINT32: e->add(rawAt<uint32_t>(raw, i)); break;
    case pb::TensorProto::INT64: e->add(rawAt<int64_t>(raw, i)); break;
    case pb::TensorProto::UINT64: e->add(rawAt<uint64_t>(raw, i)); break;
    case pb::TensorProto::BOOL: e->add(rawAt<uint8_t>(raw, i) != 0 ? 1 : 0); break;
    default: break;
  }
}

// The typed field ONNX stores an element type in, with its value count.
int typedCountFor(const pb::TensorProto& t) {
  switch (t.data_type()) {
    case pb::TensorProto::FLOAT: return t.float_data_size();
    case pb::TensorProto::DOUBLE: return t.double_data_size();
    case pb::TensorProto::INT64: return t.int64_data_size();
    case pb::TensorProto::UINT32: case pb::TensorProto::UINT64: return t.uint64_data_size();
    default: return t.int32_data_size();  // the 8/16/32-bit integer types, bool, float16, bfloat16
  }
}

void addTyped(Expected* e, const pb::TensorProto& t, int i) {
  const int32_t v32 = t.data_type() == pb::TensorProto::FLOAT || t.data_type() == pb::TensorProto::DOUBLE ||
                              t.data_type() == pb::TensorProto::INT64 || t.data_type() == pb::TensorProto::UINT32 ||
                              t.data_type() == pb::TensorProto::UINT64
                          ? 0
                          : t.int32_data(i);
  switch (t.data_type()) {
    case pb::TensorProto::FLOAT: e->add(t.float_data(i)); break;
    case pb::TensorProto::DOUBLE: e->add(t.double_data(i)); break;
    case pb::TensorProto::INT64: e->add(t.int64_data(i)); break;
    case pb::TensorProto::UINT32: e->add(static_cast<uint32_t>(t.uint64_data(i))); break;
    case pb::TensorProto::UINT64: e->add(t.uint64_data(i)); break;
    case pb::TensorProto::FLOAT16: e->add(halfToFloatRef(static_cast<uint16_t>(v32))); break;
    case pb::TensorProto::BFLOAT16: e->add(bfloat16ToFloatRef(static_cast<uint16_t>(v32))); break;
    case pb::TensorProto::INT8: e->add(static_cast<int8_t>(v32)); break;
    case pb::TensorProto::UINT8: e->add(static_cast<uint8_t>(v32)); break;
    case pb::TensorProto::INT16: e->add(static_cast<int16_t>(v32)); break;
    case pb::TensorProto::UINT16: e->add(static_cast<uint16_t>(v32)); break;
    case pb::TensorProto::INT32: e->add(v32); break;
    case pb::TensorProto::BOOL: e->add(v32 != 0 ? 1 : 0); break;
    default: break;
  }
}

// The values of a non-external tensor of a numeric type, from the protobuf
// message alone. False when the message does not determine them: negative or
// huge dims, raw_data of the wrong size, or elements missing from the typed
// field that holds its type.
bool expectedValues(const pb::TensorProto& t, Expected* e) {
  uint64_t count = 1;
  for (int64_t d : t.dims()) {
    if (d < 0 || (d != 0 && count > (uint64_t{1} << 40) / static_cast<uint64_t>(d))) return false;
    count *= static_cast<uint64_t>(d);
  }
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
    case 4: return "float_data";
    case 5: return "int32_data";
    case 6: return "string_data";
    case 7: return "int64_data";
    case 10: return "double_data";
    case 11: return "uint64_data";
    default: return "typed_data";
  }
}

int typedFieldSize(const pb::TensorProto& t, uint32_t field) {
  switch (field) {
    case 4: return t.float_data_size();
    case 5: return t.int32_data_size();
    case 6: return t.string_data_size();
    case 7: return t.int64_data_size();
    case 10: return t.double_data_size();
    case 11: return t.uint64_data_size();
    default: return 0;
  }
}

// Value i of a numeric typed field as the bits the wire holds, normalised to
// the field's width (int32 to its 32 bits, float to its IEEE bits).
uint64_t typedFieldBits(const pb::TensorProto& t, uint32_t field, int i) {
  switch (field) {
    case 4: return bitCast<uint32_t>(t.float_data(i));
    case 5: return static_cast<uint32_t>(t.int32_data(i));
    case 7: return static_cast<uint64_t>(t.int64_data(i));
    case 10: return bitCast<uint64_t>(t.double_data(i));
    case 11: return t.uint64_data(i);
    default: return 0;
  }
}

std::string showTyped(uint32_t field, uint64_t bits) {
  switch (field) {
    case 4: return show(bitCast<float>(static_cast<uint32_t>(bits)));
    case 5: return show(static_cast<int32_t>(static_cast<uint32_t>(bits)));
    case 7: return show(static_cast<int64_t>(bits));
    case 10: return show(bitCast<double>(bits));
    default: return show(bits);
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
      const uint8_t* end = p + f.bytes.size;
      while (p < end) {
        uint64_t v;
        const size_t n = ql::wire::readVarint(p, end, &v);
        if (n == 0) return false;
        numbers->push_back(o.typedField == 5 ? static_cast<uint32_t>(v) : v);
        p += n;
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
    return eq(p("ir_version"), o.irVersion, t.ir_version()) &&
           eq(p("opset_import"), o.opsets, t.opset_import()) &&
           eq(p("producer_name"), o.producerName, t.producer_name()) &&
           eq(p("producer_version"), o.producerVersion, t.producer_version()) &&
           eq(p("domain"), o.domain, t.domain()) &&
           eq(p("model_version"), o.modelVersion, t.model_version()) &&
           eq(p("doc_string"), o.docString, t.doc_string()) &&
           eq(p("metadata_props"), o.metadata, t.metadata_props()) &&
           eqCount(p("training_info"), o.trainingInfos, static_cast<uint64_t>(t.training_info_size())) &&
           eq(p("functions"), o.functions, t.functions()) &&
           eq(p("has_graph"), o.hasGraph, t.has_graph()) &&
           eq(p("graph"), o.graph, t.graph());
  }

  bool eq(const Path& p, const qo::OpsetId& o, const pb::OperatorSetIdProto& t) {
    return eq(p("domain"), o.domain, t.domain()) && eq(p("version"), o.version, t.version());
  }

  bool eq(const Path& p, const qo::StringPair& o, const pb::StringStringEntryProto& t) {
    return eq(p("key"), o.first, t.key()) && eq(p("value"), o.second, t.value());
  }

  bool eq(const Path& p, const qo::Function& o, const pb::FunctionProto& t) {
    return eq(p("name"), o.name, t.name()) &&
           eq(p("domain"), o.domain, t.domain()) &&
           eq(p("doc_string"), o.docString, t.doc_string()) &&
           eq(p("input"), o.inputs, t.input()) &&
           eq(p("output"), o.outputs, t.output()) &&
           eq(p("attribute"), o.attributes, t.attribute()) &&
           eq(p("opset_import"), o.opsets, t.opset_import()) &&
           eq(p("node"), o.nodes, t.node());
  }

  bool eq(const Path& p, const qo::Graph& o, const pb::GraphProto& t) {
    return eq(p("name"), o.name, t.name()) &&
           eq(p("doc_string"), o.docString, t.doc_string()) &&
           eq(p("input"), o.inputs, t.input()) &&
           eq(p("output"), o.outputs, t.output()) &&
           eq(p("value_info"), o.valueInfo, t.value_info()) &&
           eq(p("initializer"), o.initializers, t.initializer()) &&
           eq(p("sparse_initializer"), o.sparseInitializers, t.sparse_initializer()) &&
           eqCount(p("quantization_annotation"), o.quantizationAnnotations,
                   static_cast<uint64_t>(t.quantization_annotation_size())) &&
           eq(p("node"), o.nodes, t.node());
  }

  bool eq(const Path& p, const qo::Node& o, const pb::NodeProto& t) {
    return eq(p("name"), o.name, t.name()) &&
           eq(p("op_type"), o.opType, t.op_type()) &&
           eq(p("domain"), o.domain, t.domain()) &&
           eq(p("doc_string"), o.docString, t.doc_string()) &&
           eq(p("input"), o.inputs, t.input()) &&
           eq(p("output"), o.outputs, t.output()) &&
           eq(p("attribute"), o.attributes, t.attribute());
  }

  bool eq(const Path& p, const qo::Attribute& o, const pb::AttributeProto& t) {
    // proto2 keeps an enum value it does not know as an unknown field, so an
    // AttributeType newer than onnx.proto reads as absent on the protobuf side.
    const bool unknownType = !t.has_type() && !pb::AttributeProto_AttributeType_IsValid(o.type);
    return eq(p("name"), o.name, t.name()) &&
           eq(p("ref_attr_name"), o.refAttrName, t.ref_attr_name()) &&
           eq(p("doc_string"), o.docString, t.doc_string()) &&
           (unknownType || eq<int64_t>(p("type"), o.type, t.type())) &&
           eq(p("has_f"), o.hasF, t.has_f()) && eq(p("f"), o.f, t.f()) &&
           eq(p("has_i"), o.hasI, t.has_i()) && eq(p("i"), o.i, t.i()) &&
           eq(p("has_s"), o.hasS, t.has_s()) && eq(p("s"), o.s, t.s()) &&
           eq(p("has_t"), o.t != nullptr, t.has_t()) && (!o.t || eq(p("t"), *o.t, t.t())) &&
           eq(p("has_g"), o.g != nullptr, t.has_g()) && (!o.g || eq(p("g"), *o.g, t.g())) &&
           eq(p("floats"), o.floats, t.floats()) &&
           eq(p("ints"), o.ints, t.ints()) &&
           eq(p("strings"), o.strings, t.strings()) &&
           eq(p("tensors"), o.tensors, t.tensors()) &&
           eq(p("graphs"), o.graphs, t.graphs()) &&
           eqCount(p("sparse_tensor+sparse_tensors"), o.sparseTensors.size(),
                   static_cast<uint64_t>(t.has_sparse_tensor() + t.sparse_tensors_size())) &&
           eqCount(p("tp+type_protos"), o.typeProtos.size(),
                   static_cast<uint64_t>(t.has_tp() + t.type_protos_size()));
  }

  bool eq(const Path& p, const qo::ValueInfo& o, const pb::ValueInfoProto& t) {
    if (!eq(p("name"), o.name, t.name()) || !eq(p("doc_string"), o.docString, t.doc_string()) ||
        !eq(p("has_type"), o.hasType, t.has_type()) ||
        !eq<int64_t>(p("type")("value_case"), o.typeCase, t.type().value_case())) {
      return false;
    }
    switch (t.type().value_case()) {
      case pb::TypeProto::kTensorType: return tensorType(p("type")("tensor_type"), o, t.type().tensor_type());
      case pb::TypeProto::kSparseTensorType: return tensorType(p("type")("sparse_tensor_type"), o, t.type().sparse_tensor_type());
      default: return true;  // sequence, map, optional: the reader records only the kind
    }
  }

  template <class TensorType>  // TypeProto.Tensor or TypeProto.SparseTensor
  bool tensorType(const Path& p, const qo::ValueInfo& o, const TensorType& t) {
    return eq(p("elem_type"), o.elemType, t.elem_type()) &&
           eq(p("has_shape"), o.hasShape, t.has_shape()) &&
           eq(p("shape")("dim"), o.shape, t.shape().dim());
  }

  bool eq(const Path& p, const qo::Dimension& o, const pb::TensorShapeProto_Dimension& t) {
    return eq(p("has_dim_value"), o.hasValue, t.value_case() == pb::TensorShapeProto_Dimension::kDimValue) &&
           eq(p("dim_value"), o.value, t.dim_value()) &&
           eq(p("dim_param"), o.param, t.dim_param()) &&
           eq(p("denotation"), o.denotation, t.denotation());
  }

  bool eq(const Path& p, const qo::Tensor& o, const pb::TensorProto& t) {
    return eq(p("name"), o.name, t.name()) &&
           eq(p("doc_string"), o.docString, t.doc_string()) &&
           eq(p("data_type"), o.dataType, t.data_type()) &&
           eq(p("dims"), o.dims, t.dims()) &&
           eq(p("has_segment"), o.hasSegment, t.has_segment()) &&
           eq(p("segment")("begin"), o.segmentBegin, t.segment().begin()) &&
           eq(p("segment")("end"), o.segmentEnd, t.segment().end()) &&
           eq(p("data_location_external"), o.external, t.data_location() == pb::TensorProto::EXTERNAL) &&
           eq(p("external_data"), o.externalData, t.external_data()) &&
           eq(p("has_raw_data"), o.hasRawData, t.has_raw_data()) &&
           (!o.hasRawData || eqBytes(p("raw_data"), o.rawData, t.raw_data())) &&
           typedStorage(p, o, t) &&
           decodedValues(p, o, t) &&
           eq<uint64_t>(p("offset"), o.offset, static_cast<uint64_t>(o.message.data - begin_)) &&
           eq(p("message"), o.message, t);
  }

  // Which typed field holds values and how many, then each stored value.
  bool typedStorage(const Path& p, const qo::Tensor& o, const pb::TensorProto& t) {
    uint32_t field = 0;
    for (uint32_t f : {4u, 5u, 6u, 7u, 10u, 11u}) {
      if (typedFieldSize(t, f) == 0) continue;
      if (field != 0) return problem(p, "protobuf has values in both " + std::string(typedFieldName(field)) + " and " + typedFieldName(f) + ", which our reader accepted");
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
      if (numbers[i] != theirs) return differ(p(typedFieldName(field))[i], showTyped(field, numbers[i]), showTyped(field, theirs));
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
// Models and the driver.

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

// Empty when the reader and protobuf agree; otherwise the first difference.
std::string crosscheck(const fs::path& path) {
  std::vector<uint8_t> bytes;
  if (!readFile(path, &bytes)) return "cannot read the file";
  const uint8_t* data = bytes.data();
  const size_t size = bytes.size();

  pb::ModelProto theirs;
  const bool theirsOk = size <= static_cast<size_t>(INT_MAX) && theirs.ParseFromArray(data, static_cast<int>(size));
  auto ours = qo::parseModel(data, size);
  if (ours.ok() != theirsOk) {
    return std::string("parsers disagree: ours ") + (ours.ok() ? "accepts" : "rejects (" + ours.error().describe() + ")") +
           ", protobuf " + (theirsOk ? "accepts" : "rejects");
  }
  if (!theirsOk) return {};  // both reject: agreement
  Checker checker(data, size);
  return checker.run(ours.value(), theirs) ? std::string() : checker.difference();
}

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
      std::printf("usage: %s [--only] [model.onnx | folder]...\n", argv[0]);
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
  auto check = [&](const fs::path& path) {
    std::error_code ec;
    const auto size = fs::file_size(path, ec);
    if (!ec) totalBytes += size;
    const std::string difference = crosscheck(path);
    if (difference.empty()) {
      ++passed;
    } else {
      ++failed;
      std::printf("FAIL %s: %s\n", path.c_str(), difference.c_str());
    }
  };
  for (const Source& s : sources) {
    if (!fs::is_directory(s.dir)) {
      std::printf("skip %s: no folder %s\n", s.label.c_str(), s.dir.c_str());
      ++skipped;
      continue;
    }
    const auto models = listModels(s);
    std::printf("%s: %zu models in %s\n", s.label.c_str(), models.size(), s.dir.c_str());
    for (const auto& path : models) check(path);
  }
  for (const auto& path : explicitFiles) check(path);

  const double seconds = std::chrono::duration<double>(std::chrono::steady_clock::now() - start).count();
  std::printf("checked %.1f MB in %.2f s\n", static_cast<double>(totalBytes) / 1e6, seconds);
  std::printf("crosscheck: %d passed, %d failed", passed, failed);
  if (skipped > 0) std::printf(", %d skipped", skipped);
  std::printf("\n");
  google::protobuf::ShutdownProtobufLibrary();
  return failed > 0 ? 1 : 0;
}
