// Test-only protobuf ENCODER: just enough of the wire format to build exact
// ONNX inputs (well-formed and deliberately malformed) without libprotobuf.
// Field numbers follow onnx/onnx.proto (IR version 8).
#pragma once
#include <cstdint>
#include <cstring>
#include <initializer_list>
#include <string>
#include <string_view>
#include <vector>

namespace pbw {

inline std::string varint(uint64_t v) {
  std::string out;
  while (v >= 0x80) {
    out.push_back(static_cast<char>((v & 0x7f) | 0x80));
    v >>= 7;
  }
  out.push_back(static_cast<char>(v));
  return out;
}

inline std::string le32(uint32_t v) {
  std::string out(4, '\0');
  std::memcpy(&out[0], &v, 4);
  return out;
}
inline std::string le64(uint64_t v) {
  std::string out(8, '\0');
  std::memcpy(&out[0], &v, 8);
  return out;
}
inline uint32_t bitsOf(float f) {
  uint32_t u;
  std::memcpy(&u, &f, 4);
  return u;
}
inline uint64_t bitsOf(double d) {
  uint64_t u;
  std::memcpy(&u, &d, 8);
  return u;
}

enum WireType : uint32_t { kVarint = 0, kFixed64 = 1, kLen = 2, kStartGroup = 3, kEndGroup = 4, kFixed32 = 5 };

inline std::string tag(uint32_t field, uint32_t wt) { return varint((uint64_t{field} << 3) | wt); }

// A message under construction. Every adder returns *this for chaining.
struct Msg {
  std::string b;

  Msg& raw(std::string_view bytes) {
    b.append(bytes.data(), bytes.size());
    return *this;
  }
  Msg& tagOnly(uint32_t field, uint32_t wt) {
    b += tag(field, wt);
    return *this;
  }
  Msg& u64(uint32_t field, uint64_t v) {
    b += tag(field, kVarint) + varint(v);
    return *this;
  }
  Msg& i64(uint32_t field, int64_t v) { return u64(field, static_cast<uint64_t>(v)); }
  // int32 fields are encoded sign-extended to 64 bits, as protobuf does.
  Msg& i32(uint32_t field, int32_t v) { return u64(field, static_cast<uint64_t>(static_cast<int64_t>(v))); }
  Msg& fixed32(uint32_t field, uint32_t v) {
    b += tag(field, kFixed32) + le32(v);
    return *this;
  }
  Msg& fixed64(uint32_t field, uint64_t v) {
    b += tag(field, kFixed64) + le64(v);
    return *this;
  }
  Msg& f32(uint32_t field, float v) { return fixed32(field, bitsOf(v)); }
  Msg& f64(uint32_t field, double v) { return fixed64(field, bitsOf(v)); }
  Msg& bytes(uint32_t field, std::string_view v) {
    b += tag(field, kLen) + varint(v.size());
    b.append(v.data(), v.size());
    return *this;
  }
  Msg& str(uint32_t field, std::string_view v) { return bytes(field, v); }
  Msg& msg(uint32_t field, const Msg& m) { return bytes(field, m.b); }

  // Packed repeated fields.
  Msg& packedVarints(uint32_t field, const std::vector<uint64_t>& vs) {
    std::string p;
    for (uint64_t v : vs) p += varint(v);
    return bytes(field, p);
  }
  Msg& packedInts(uint32_t field, const std::vector<int64_t>& vs) {
    std::string p;
    for (int64_t v : vs) p += varint(static_cast<uint64_t>(v));
    return bytes(field, p);
  }
  Msg& packedFloats(uint32_t field, const std::vector<float>& vs) {
    std::string p;
    for (float v : vs) p += le32(bitsOf(v));
    return bytes(field, p);
  }
  Msg& packedDoubles(uint32_t field, const std::vector<double>& vs) {
    std::string p;
    for (double v : vs) p += le64(bitsOf(v));
    return bytes(field, p);
  }
  // Unpacked repeated fields: one tagged occurrence per value.
  Msg& unpackedInts(uint32_t field, const std::vector<int64_t>& vs) {
    for (int64_t v : vs) i64(field, v);
    return *this;
  }
  Msg& unpackedFloats(uint32_t field, const std::vector<float>& vs) {
    for (float v : vs) f32(field, v);
    return *this;
  }
  Msg& unpackedDoubles(uint32_t field, const std::vector<double>& vs) {
    for (double v : vs) f64(field, v);
    return *this;
  }
  // One unknown field of every wire type (the decoder must skip them).
  Msg& unknownFields(uint32_t field = 999) {
    u64(field, 12345);
    fixed32(field + 1, 0xdeadbeef);
    fixed64(field + 2, 0x0123456789abcdefull);
    bytes(field + 3, std::string("\x08\x01\x12\x03xyz", 7));
    return *this;
  }
};

// ---- ONNX helpers -----------------------------------------------------------------

namespace onnx {

enum DataType : int32_t {
  kFloat = 1,
  kUint8 = 2,
  kInt8 = 3,
  kUint16 = 4,
  kInt16 = 5,
  kInt32 = 6,
  kInt64 = 7,
  kString = 8,
  kBool = 9,
  kFloat16 = 10,
  kDouble = 11,
  kUint32 = 12,
  kUint64 = 13,
  kComplex64 = 14,
  kComplex128 = 15,
  kBFloat16 = 16,
};

// TensorProto fields.
enum TensorField : uint32_t {
  kDims = 1,
  kDataType = 2,
  kSegment = 3,
  kFloatData = 4,
  kInt32Data = 5,
  kStringData = 6,
  kInt64Data = 7,
  kName = 8,
  kRawData = 9,
  kDoubleData = 10,
  kUint64Data = 11,
  kDocString = 12,
  kExternalData = 13,
  kDataLocation = 14,
};

inline std::string floatBytes(const std::vector<float>& vs) {
  std::string out;
  for (float v : vs) out += le32(bitsOf(v));
  return out;
}

// A TensorProto header: dims (packed) and data type; add the payload yourself.
inline Msg tensorHeader(std::string_view name, int32_t dataType, const std::vector<int64_t>& dims) {
  Msg t;
  if (!dims.empty()) t.packedInts(kDims, dims);
  t.i32(kDataType, dataType);
  t.str(kName, name);
  return t;
}

inline Msg rawTensor(std::string_view name, int32_t dataType, const std::vector<int64_t>& dims, std::string_view raw) {
  Msg t = tensorHeader(name, dataType, dims);
  t.bytes(kRawData, raw);
  return t;
}

inline Msg floatTensor(std::string_view name, const std::vector<int64_t>& dims, const std::vector<float>& values) {
  return rawTensor(name, kFloat, dims, floatBytes(values));
}

inline Msg int8Tensor(std::string_view name, const std::vector<int64_t>& dims, const std::vector<int8_t>& values) {
  return rawTensor(name, kInt8, dims, std::string(reinterpret_cast<const char*>(values.data()), values.size()));
}

// Tensor whose values live in an external file.
inline Msg externalTensor(std::string_view name, int32_t dataType, const std::vector<int64_t>& dims, std::string_view location,
                          std::string_view offset, std::string_view length) {
  Msg t = tensorHeader(name, dataType, dims);
  auto kv = [&](std::string_view k, std::string_view v) {
    Msg e;
    e.str(1, k).str(2, v);
    t.msg(kExternalData, e);
  };
  if (!location.empty()) kv("location", location);
  if (!offset.empty()) kv("offset", offset);
  if (!length.empty()) kv("length", length);
  t.i32(kDataLocation, 1);
  return t;
}

// AttributeProto.
enum AttrType : int32_t {
  kAttrFloat = 1,
  kAttrInt = 2,
  kAttrString = 3,
  kAttrTensor = 4,
  kAttrGraph = 5,
  kAttrFloats = 6,
  kAttrInts = 7,
  kAttrStrings = 8,
  kAttrTensors = 9,
  kAttrGraphs = 10
};

inline Msg attrInt(std::string_view name, int64_t v) {
  Msg a;
  a.str(1, name).i32(20, kAttrInt).i64(3, v);
  return a;
}
inline Msg attrFloat(std::string_view name, float v) {
  Msg a;
  a.str(1, name).i32(20, kAttrFloat).f32(2, v);
  return a;
}
inline Msg attrString(std::string_view name, std::string_view v) {
  Msg a;
  a.str(1, name).i32(20, kAttrString).str(4, v);
  return a;
}
inline Msg attrInts(std::string_view name, const std::vector<int64_t>& v, bool packed = true) {
  Msg a;
  a.str(1, name).i32(20, kAttrInts);
  if (packed)
    a.packedInts(8, v);
  else
    a.unpackedInts(8, v);
  return a;
}
inline Msg attrFloats(std::string_view name, const std::vector<float>& v, bool packed = true) {
  Msg a;
  a.str(1, name).i32(20, kAttrFloats);
  if (packed)
    a.packedFloats(7, v);
  else
    a.unpackedFloats(7, v);
  return a;
}
inline Msg attrTensor(std::string_view name, const Msg& t) {
  Msg a;
  a.str(1, name).i32(20, kAttrTensor).msg(5, t);
  return a;
}
inline Msg attrGraph(std::string_view name, const Msg& g) {
  Msg a;
  a.str(1, name).i32(20, kAttrGraph).msg(6, g);
  return a;
}
inline Msg attrGraphs(std::string_view name, const std::vector<Msg>& gs) {
  Msg a;
  a.str(1, name).i32(20, kAttrGraphs);
  for (const auto& g : gs) a.msg(11, g);
  return a;
}

// NodeProto.
inline Msg node(std::string_view op, const std::vector<std::string>& inputs, const std::vector<std::string>& outputs,
                std::string_view name = {}, const std::vector<Msg>& attrs = {}, std::string_view domain = {}) {
  Msg n;
  for (const auto& i : inputs) n.str(1, i);
  for (const auto& o : outputs) n.str(2, o);
  if (!name.empty()) n.str(3, name);
  n.str(4, op);
  for (const auto& a : attrs) n.msg(5, a);
  if (!domain.empty()) n.str(7, domain);
  return n;
}

// A Constant node producing `output` from tensor `t`.
inline Msg constantNode(std::string_view output, const Msg& t, std::string_view name = {}) {
  return node("Constant", {}, {std::string(output)}, name, {attrTensor("value", t)});
}

// ValueInfoProto with a float tensor type and a fixed shape.
inline Msg valueInfo(std::string_view name, int32_t elemType, const std::vector<int64_t>& shape) {
  Msg shp;
  for (int64_t d : shape) {
    Msg dim;
    dim.i64(1, d);
    shp.msg(1, dim);
  }
  Msg tt;
  tt.i32(1, elemType).msg(2, shp);
  Msg tp;
  tp.msg(1, tt);
  Msg v;
  v.str(1, name).msg(2, tp);
  return v;
}

// GraphProto.
struct GraphBuilder {
  std::string name = "g";
  std::vector<Msg> nodes, initializers, inputs, outputs;
  GraphBuilder& add(const Msg& n) {
    nodes.push_back(n);
    return *this;
  }
  GraphBuilder& init(const Msg& t) {
    initializers.push_back(t);
    return *this;
  }
  GraphBuilder& input(std::string_view n, const std::vector<int64_t>& shape = {1}) {
    inputs.push_back(valueInfo(n, kFloat, shape));
    return *this;
  }
  GraphBuilder& output(std::string_view n, const std::vector<int64_t>& shape = {1}) {
    outputs.push_back(valueInfo(n, kFloat, shape));
    return *this;
  }
  Msg build() const {
    Msg g;
    for (const auto& n : nodes) g.msg(1, n);
    g.str(2, name);
    for (const auto& t : initializers) g.msg(5, t);
    for (const auto& v : inputs) g.msg(11, v);
    for (const auto& v : outputs) g.msg(12, v);
    return g;
  }
};

// ModelProto around a graph.
inline Msg model(const Msg& graph, int64_t irVersion = 8, int64_t opset = 13) {
  Msg m;
  m.i64(1, irVersion);
  m.str(2, "pbw");
  Msg os;
  os.str(1, "").i64(2, opset);
  m.msg(8, os);
  m.msg(7, graph);
  return m;
}

inline std::vector<uint8_t> toVec(const Msg& m) { return std::vector<uint8_t>(m.b.begin(), m.b.end()); }

}  // namespace onnx
}  // namespace pbw
