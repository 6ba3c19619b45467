// ModelProto decoder. Field numbers are named in onnx/fields.hpp (from onnx.proto); unknown
// fields are skipped, as protobuf does, so newer files still load.
#include <string>

#include "common/bytes.hpp"
#include "onnx/model.hpp"
#include "onnx/tensor_data.hpp"

namespace ql::onnx {

using wire::Field;
using wire::Reader;
using wire::RepeatedScalar;
using namespace fields;  // ModelProto::kGraph, TensorProto::kRawData, ...

namespace {

std::string quoted(std::string_view s) {
  std::string out = "'";
  out.append(s.substr(0, 200));
  out += "'";
  return out;
}

class Parser {
 public:
  Parser(const uint8_t* base, const ParseOptions& options) : base_(base), options_(options) {}

  bool model(Bytes b, Model* m);
  const Error& error() const { return error_; }

 private:
  bool fail(ErrorCode code, std::string msg, size_t offset) {
    if (error_.ok()) error_ = makeError(code, std::move(msg), static_cast<int64_t>(offset));
    return false;
  }
  bool failReader(const Reader& r) {
    if (error_.ok()) error_ = r.error();
    return false;
  }
  bool expect(const Field& f, uint8_t type, const char* msgName) {
    if (f.type == type) return true;
    return fail(ErrorCode::InvalidModel,
                std::string(msgName) + " field " + std::to_string(f.number) + " has wire type " + wire::wireTypeName(f.type) +
                    ", expected " + wire::wireTypeName(type),
                f.offset);
  }
  size_t off(Bytes b) const { return static_cast<size_t>(offsetIn(base_, b.data)); }

  bool str(const Field& f, const char* msgName, std::string_view* out) {
    if (!expect(f, wire::kLen, msgName)) return false;
    *out = f.bytes.str();
    return true;
  }
  bool i64(const Field& f, const char* msgName, int64_t* out) {
    if (!expect(f, wire::kVarint, msgName)) return false;
    *out = static_cast<int64_t>(f.varint);
    return true;
  }
  bool i32(const Field& f, const char* msgName, int32_t* out) {
    if (!expect(f, wire::kVarint, msgName)) return false;
    *out = static_cast<int32_t>(static_cast<uint32_t>(f.varint));
    return true;
  }

  template <class T, class Fn>
  bool repeatedVarint(const Field& f, const char* msgName, std::vector<T>* out, Fn convert);
  bool repeatedFloat(const Field& f, const char* msgName, std::vector<float>* out);

  bool graph(Bytes b, Graph* g, int depth);
  bool node(Bytes b, Node* n, int depth);
  bool attribute(Bytes b, Attribute* a, int depth);
  bool tensor(Bytes b, Tensor* t);
  bool valueInfo(Bytes b, ValueInfo* v);
  bool typeProto(Bytes b, ValueInfo* v);
  bool shape(Bytes b, ValueInfo* v);
  bool opset(Bytes b, OpsetId* o);
  bool stringPair(Bytes b, StringPair* p);
  bool function(Bytes b, Function* fn, int depth);
  bool checkTensor(const Tensor& t);

  // Charges the memory of one decoded structure against options_.maxStructureBytes.
  bool charge(size_t bytes, size_t offset) {
    structureBytes_ += bytes;
    if (structureBytes_ <= options_.maxStructureBytes) return true;
    return fail(ErrorCode::InvalidModel,
                "the model's structure would take more than " + std::to_string(options_.maxStructureBytes >> 20) +
                    " MB to hold (millions of nodes or tensors); not read",
                offset);
  }

  const uint8_t* base_;
  ParseOptions options_;
  Error error_;
  uint64_t structureBytes_ = 0;
};

template <class T, class Fn>
bool Parser::repeatedVarint(const Field& f, const char* msgName, std::vector<T>* out, Fn convert) {
  if (f.type == wire::kVarint) {
    if (!charge(sizeof(T), f.offset)) return false;
    out->push_back(convert(f.varint));
    return true;
  }
  if (!expect(f, wire::kLen, msgName)) return false;
  // A packed varint takes at least one byte: charge for the most values it can hold.
  if (!charge(sizeof(T) * f.bytes.size, f.offset)) return false;
  const uint8_t* p = f.bytes.data;
  for (size_t left = f.bytes.size; left > 0;) {  // a count, not an end pointer (wire::readVarint)
    uint64_t v;
    size_t n = wire::readVarint(p, left, &v);
    if (n == 0) return fail(ErrorCode::InvalidModel, std::string("truncated varint in packed field of ") + msgName, off({p, 0}));
    out->push_back(convert(v));
    p += n;
    left -= n;
  }
  return true;
}

bool Parser::repeatedFloat(const Field& f, const char* msgName, std::vector<float>* out) {
  if (f.type == wire::kFixed32) {
    if (!charge(sizeof(float) * 2, f.offset)) return false;
    out->push_back(wire::loadF32(f.bytes.data));
    return true;
  }
  if (!expect(f, wire::kLen, msgName)) return false;
  if (f.bytes.size % 4)
    return fail(ErrorCode::InvalidModel, std::string("packed floats in ") + msgName + " do not fill their length", f.offset);
  for (size_t i = 0; i < f.bytes.size; i += 4) out->push_back(wire::loadF32(f.bytes.data + i));
  return true;
}

bool Parser::model(Bytes b, Model* m) {
  Reader r(b, base_);
  Field f;
  m->byteSize = b.size;
  while (!r.done()) {
    if (!r.next(&f)) return failReader(r);
    switch (f.number) {
      case ModelProto::kIrVersion:
        if (!i64(f, "ModelProto", &m->irVersion)) return false;
        break;
      case ModelProto::kProducerName:
        if (!str(f, "ModelProto", &m->producerName)) return false;
        break;
      case ModelProto::kProducerVersion:
        if (!str(f, "ModelProto", &m->producerVersion)) return false;
        break;
      case ModelProto::kDomain:
        if (!str(f, "ModelProto", &m->domain)) return false;
        break;
      case ModelProto::kModelVersion:
        if (!i64(f, "ModelProto", &m->modelVersion)) return false;
        break;
      case ModelProto::kDocString:
        if (!str(f, "ModelProto", &m->docString)) return false;
        break;
      case ModelProto::kGraph:
        if (!expect(f, wire::kLen, "ModelProto")) return false;
        // protobuf merges repeated occurrences of a message field; ONNX writers emit one.
        if (m->hasGraph) return fail(ErrorCode::InvalidModel, "model has more than one graph field", f.offset);
        m->hasGraph = true;
        if (!graph(f.bytes, &m->graph, 0)) return false;
        break;
      case ModelProto::kOpsetImport:
        if (!expect(f, wire::kLen, "ModelProto")) return false;
        m->opsets.emplace_back();
        if (!opset(f.bytes, &m->opsets.back())) return false;
        break;
      case ModelProto::kMetadataProps:
        if (!expect(f, wire::kLen, "ModelProto")) return false;
        m->metadata.emplace_back();
        if (!stringPair(f.bytes, &m->metadata.back())) return false;
        break;
      case ModelProto::kTrainingInfo:
        if (!expect(f, wire::kLen, "ModelProto")) return false;
        ++m->trainingInfos;
        break;
      case ModelProto::kFunctions:
        if (!expect(f, wire::kLen, "ModelProto")) return false;
        m->functions.emplace_back();
        if (!function(f.bytes, &m->functions.back(), 0)) return false;
        break;
      default:
        break;
    }
  }
  return true;
}

bool Parser::graph(Bytes b, Graph* g, int depth) {
  if (depth > options_.maxGraphDepth) {
    return fail(ErrorCode::InvalidModel, "sub-graphs nested deeper than " + std::to_string(options_.maxGraphDepth) + " levels",
                off(b));
  }
  Reader r(b, base_);
  Field f;
  while (!r.done()) {
    if (!r.next(&f)) return failReader(r);
    switch (f.number) {
      case GraphProto::kNode:
        if (!expect(f, wire::kLen, "GraphProto")) return false;
        g->nodes.emplace_back();
        if (!node(f.bytes, &g->nodes.back(), depth)) return false;
        break;
      case GraphProto::kName:
        if (!str(f, "GraphProto", &g->name)) return false;
        break;
      case GraphProto::kInitializer:
        if (!expect(f, wire::kLen, "GraphProto")) return false;
        g->initializers.emplace_back();
        if (!tensor(f.bytes, &g->initializers.back())) return false;
        break;
      case GraphProto::kDocString:
        if (!str(f, "GraphProto", &g->docString)) return false;
        break;
      case GraphProto::kInput:
      case GraphProto::kOutput:
      case GraphProto::kValueInfo: {
        if (!expect(f, wire::kLen, "GraphProto")) return false;
        auto& list = f.number == GraphProto::kInput ? g->inputs : f.number == GraphProto::kOutput ? g->outputs : g->valueInfo;
        list.emplace_back();
        if (!valueInfo(f.bytes, &list.back())) return false;
        break;
      }
      case GraphProto::kQuantizationAnnotation:
        if (!expect(f, wire::kLen, "GraphProto")) return false;
        ++g->quantizationAnnotations;
        break;
      case GraphProto::kSparseInitializer:
        if (!expect(f, wire::kLen, "GraphProto")) return false;
        g->sparseInitializers.push_back(f.bytes);
        break;
      default:
        break;
    }
  }
  return true;
}

bool Parser::node(Bytes b, Node* n, int depth) {
  if (!charge(sizeof(Node), off(b))) return false;
  Reader r(b, base_);
  Field f;
  n->offset = off(b);
  while (!r.done()) {
    if (!r.next(&f)) return failReader(r);
    switch (f.number) {
      case NodeProto::kInput:
        if (!charge(sizeof(std::string_view), f.offset) || !str(f, "NodeProto", &n->inputs.emplace_back())) return false;
        break;
      case NodeProto::kOutput:
        if (!charge(sizeof(std::string_view), f.offset) || !str(f, "NodeProto", &n->outputs.emplace_back())) return false;
        break;
      case NodeProto::kName:
        if (!str(f, "NodeProto", &n->name)) return false;
        break;
      case NodeProto::kOpType:
        if (!str(f, "NodeProto", &n->opType)) return false;
        break;
      case NodeProto::kAttribute:
        if (!expect(f, wire::kLen, "NodeProto")) return false;
        n->attributes.emplace_back();
        if (!attribute(f.bytes, &n->attributes.back(), depth)) return false;
        break;
      case NodeProto::kDocString:
        if (!str(f, "NodeProto", &n->docString)) return false;
        break;
      case NodeProto::kDomain:
        if (!str(f, "NodeProto", &n->domain)) return false;
        break;
      default:
        break;
    }
  }
  return true;
}

bool Parser::attribute(Bytes b, Attribute* a, int depth) {
  if (!charge(sizeof(Attribute), off(b))) return false;
  Reader r(b, base_);
  Field f;
  while (!r.done()) {
    if (!r.next(&f)) return failReader(r);
    switch (f.number) {
      case AttributeProto::kName:
        if (!str(f, "AttributeProto", &a->name)) return false;
        break;
      case AttributeProto::kRefAttrName:
        if (!str(f, "AttributeProto", &a->refAttrName)) return false;
        break;
      case AttributeProto::kDocString:
        if (!str(f, "AttributeProto", &a->docString)) return false;
        break;
      case AttributeProto::kType:
        if (!i32(f, "AttributeProto", &a->type)) return false;
        break;
      case AttributeProto::kF:
        if (!expect(f, wire::kFixed32, "AttributeProto")) return false;
        a->f = wire::loadF32(f.bytes.data);
        a->hasF = true;
        break;
      case AttributeProto::kI:
        if (!i64(f, "AttributeProto", &a->i)) return false;
        a->hasI = true;
        break;
      case AttributeProto::kS:
        if (!str(f, "AttributeProto", &a->s)) return false;
        a->hasS = true;
        break;
      case AttributeProto::kT:
        if (!expect(f, wire::kLen, "AttributeProto")) return false;
        a->t = std::make_unique<Tensor>();
        if (!tensor(f.bytes, a->t.get())) return false;
        break;
      case AttributeProto::kG:
        if (!expect(f, wire::kLen, "AttributeProto")) return false;
        a->g = std::make_unique<Graph>();
        if (!graph(f.bytes, a->g.get(), depth + 1)) return false;
        break;
      case AttributeProto::kFloats:
        if (!repeatedFloat(f, "AttributeProto", &a->floats)) return false;
        break;
      case AttributeProto::kInts:
        if (!repeatedVarint(f, "AttributeProto", &a->ints, [](uint64_t v) { return static_cast<int64_t>(v); })) return false;
        break;
      case AttributeProto::kStrings:
        if (!charge(sizeof(std::string_view), f.offset) || !str(f, "AttributeProto", &a->strings.emplace_back())) return false;
        break;
      case AttributeProto::kTensors:
        if (!expect(f, wire::kLen, "AttributeProto")) return false;
        a->tensors.emplace_back();
        if (!tensor(f.bytes, &a->tensors.back())) return false;
        break;
      case AttributeProto::kGraphs:
        if (!expect(f, wire::kLen, "AttributeProto")) return false;
        a->graphs.emplace_back();
        if (!graph(f.bytes, &a->graphs.back(), depth + 1)) return false;
        break;
      case AttributeProto::kTp:
      case AttributeProto::kTypeProtos:
        if (!expect(f, wire::kLen, "AttributeProto")) return false;
        a->typeProtos.push_back(f.bytes);
        break;
      case AttributeProto::kSparseTensor:
      case AttributeProto::kSparseTensors:
        if (!expect(f, wire::kLen, "AttributeProto")) return false;
        a->sparseTensors.push_back(f.bytes);
        break;
      default:
        break;
    }
  }
  return true;
}

bool Parser::tensor(Bytes b, Tensor* t) {
  if (!charge(sizeof(Tensor), off(b))) return false;
  Reader r(b, base_);
  Field f;
  t->message = b;
  t->offset = off(b);
  int64_t location = TensorProto::kLocationDefault;
  while (!r.done()) {
    if (!r.next(&f)) return failReader(r);
    switch (f.number) {
      case TensorProto::kDims:
        if (!repeatedVarint(f, "TensorProto", &t->dims, [](uint64_t v) { return static_cast<int64_t>(v); })) return false;
        break;
      case TensorProto::kDataType:
        if (!i32(f, "TensorProto", &t->dataType)) return false;
        break;
      case TensorProto::kSegment: {
        if (!expect(f, wire::kLen, "TensorProto")) return false;
        Reader sr(f.bytes, base_);
        Field sf;
        t->hasSegment = true;
        while (!sr.done()) {
          if (!sr.next(&sf)) return failReader(sr);
          if (sf.number == TensorProto::Segment::kBegin && !i64(sf, "TensorProto.Segment", &t->segmentBegin)) return false;
          if (sf.number == TensorProto::Segment::kEnd && !i64(sf, "TensorProto.Segment", &t->segmentEnd)) return false;
        }
        break;
      }
      case TensorProto::kFloatData:
      case TensorProto::kInt32Data:
      case TensorProto::kInt64Data:
      case TensorProto::kDoubleData:
      case TensorProto::kUint64Data: {
        const auto kind = f.number == TensorProto::kFloatData    ? RepeatedScalar::kFixed32Kind
                          : f.number == TensorProto::kDoubleData ? RepeatedScalar::kFixed64Kind
                                                                 : RepeatedScalar::kVarintKind;
        uint64_t count = 0;
        if (!RepeatedScalar::count(f, kind, &count, &error_, base_)) return false;
        if (count == 0) break;
        if (t->typedField != 0 && t->typedField != f.number) {
          return fail(ErrorCode::InvalidModel, "tensor " + quoted(t->name) + " stores values in two typed fields", f.offset);
        }
        t->typedField = f.number;
        t->typedCount += count;
        break;
      }
      case TensorProto::kStringData:
        if (!expect(f, wire::kLen, "TensorProto")) return false;
        if (t->typedField != 0 && t->typedField != TensorProto::kStringData) {
          return fail(ErrorCode::InvalidModel, "tensor " + quoted(t->name) + " stores values in two typed fields", f.offset);
        }
        t->typedField = TensorProto::kStringData;
        ++t->typedCount;
        break;
      case TensorProto::kName:
        if (!str(f, "TensorProto", &t->name)) return false;
        break;
      case TensorProto::kRawData:
        if (!expect(f, wire::kLen, "TensorProto")) return false;
        t->hasRawData = true;
        t->rawData = f.bytes;
        break;
      case TensorProto::kDocString:
        if (!str(f, "TensorProto", &t->docString)) return false;
        break;
      case TensorProto::kExternalData:
        if (!expect(f, wire::kLen, "TensorProto")) return false;
        t->externalData.emplace_back();
        if (!stringPair(f.bytes, &t->externalData.back())) return false;
        break;
      case TensorProto::kDataLocation:
        if (!i64(f, "TensorProto", &location)) return false;
        break;
      default:
        break;
    }
  }
  t->external = location == TensorProto::kLocationExternal;
  return checkTensor(*t);
}

bool Parser::checkTensor(const Tensor& t) {
  uint64_t count = 0;
  for (int64_t d : t.dims) {
    if (d < 0)
      return fail(ErrorCode::InvalidModel, "tensor " + quoted(t.name) + " has negative dimension " + std::to_string(d), t.offset);
  }
  if (!t.elementCount(&count)) {
    return fail(ErrorCode::InvalidModel, "tensor " + quoted(t.name) + " has dimensions whose product overflows", t.offset);
  }
  if (t.external) {
    if (t.externalValue("location").empty()) {
      return fail(ErrorCode::InvalidModel, "tensor " + quoted(t.name) + " has external data without a location", t.offset);
    }
    // A hostile location is refused for the whole model, wherever the tensor is and
    // whether or not anything would read it.
    if (Error e = checkExternalLocation(t, t.externalValue("location"), nullptr); !e.ok()) {
      if (error_.ok()) error_ = e;
      return false;
    }
    return true;
  }
  const size_t elem = dataTypeSize(t.dataType);
  if (t.hasRawData && t.typedCount > 0) {
    return fail(ErrorCode::InvalidModel, "tensor " + quoted(t.name) + " has both raw_data and typed values", t.offset);
  }
  if (t.hasRawData && elem != 0) {
    // Reject before anyone multiplies: count * elem fits since count < 2^62 and raw size is known.
    if (count > t.rawData.size / elem || count * elem != t.rawData.size) {
      return fail(ErrorCode::InvalidModel,
                  "tensor " + quoted(t.name) + " holds " + std::to_string(t.rawData.size) + " bytes of raw_data but its " +
                      std::to_string(count) + " elements of " + dataTypeName(t.dataType) + " need " +
                      (count > (1ull << 58) ? std::string("more") : std::to_string(count * elem)),
                  t.offset);
    }
  }
  if (t.hasRawData && isPacked4(t.dataType) && t.rawData.size != (count + 1) / 2) {
    return fail(ErrorCode::InvalidModel,
                "tensor " + quoted(t.name) + " holds " + std::to_string(t.rawData.size) + " bytes of 4-bit raw_data for " +
                    std::to_string(count) + " elements, which need " + std::to_string(count / 2 + count % 2) +
                    " (two per byte, an odd count padding the last byte)",
                t.offset);
  }
  if (t.typedCount > 0) {
    // complex types store two values per element; 4-bit types pack two elements per int32_data value
    const bool packed4 = isPacked4(t.dataType);
    const uint64_t perElem = (t.dataType == kComplex64 || t.dataType == kComplex128) ? 2 : 1;
    const uint64_t want = packed4 ? (count + 1) / 2 : count * perElem;
    if (count > (1ull << 61) || t.typedCount != want) {
      return fail(ErrorCode::InvalidModel,
                  "tensor " + quoted(t.name) + " holds " + std::to_string(t.typedCount) + " typed values for " +
                      std::to_string(count) + " elements",
                  t.offset);
    }
  }
  return true;
}

bool Parser::valueInfo(Bytes b, ValueInfo* v) {
  if (!charge(sizeof(ValueInfo), off(b))) return false;
  Reader r(b, base_);
  Field f;
  while (!r.done()) {
    if (!r.next(&f)) return failReader(r);
    switch (f.number) {
      case ValueInfoProto::kName:
        if (!str(f, "ValueInfoProto", &v->name)) return false;
        break;
      case ValueInfoProto::kType:
        if (!expect(f, wire::kLen, "ValueInfoProto")) return false;
        v->hasType = true;
        if (!typeProto(f.bytes, v)) return false;
        break;
      case ValueInfoProto::kDocString:
        if (!str(f, "ValueInfoProto", &v->docString)) return false;
        break;
      default:
        break;
    }
  }
  return true;
}

bool Parser::typeProto(Bytes b, ValueInfo* v) {
  Reader r(b, base_);
  Field f;
  while (!r.done()) {
    if (!r.next(&f)) return failReader(r);
    if (f.number == TypeProto::kTensorType || f.number == TypeProto::kSequenceType || f.number == TypeProto::kMapType ||
        f.number == TypeProto::kSparseTensorType || f.number == TypeProto::kOptionalType) {
      if (!expect(f, wire::kLen, "TypeProto")) return false;
      v->typeCase = f.number;
      if (f.number != TypeProto::kTensorType && f.number != TypeProto::kSparseTensorType)
        continue;  // nested element types are not needed
      Reader tr(f.bytes, base_);
      Field tf;
      while (!tr.done()) {
        if (!tr.next(&tf)) return failReader(tr);
        if (tf.number == TypeProto::Tensor::kElemType && !i32(tf, "TypeProto.Tensor", &v->elemType)) return false;
        if (tf.number == TypeProto::Tensor::kShape) {
          if (!expect(tf, wire::kLen, "TypeProto.Tensor")) return false;
          v->hasShape = true;
          if (!shape(tf.bytes, v)) return false;
        }
      }
    }
  }
  return true;
}

bool Parser::shape(Bytes b, ValueInfo* v) {
  Reader r(b, base_);
  Field f;
  while (!r.done()) {
    if (!r.next(&f)) return failReader(r);
    if (f.number != TensorShapeProto::kDim) continue;
    if (!expect(f, wire::kLen, "TensorShapeProto")) return false;
    Dimension& d = v->shape.emplace_back();
    Reader dr(f.bytes, base_);
    Field df;
    while (!dr.done()) {
      if (!dr.next(&df)) return failReader(dr);
      switch (df.number) {
        case TensorShapeProto::Dimension::kDimValue:
          if (!i64(df, "Dimension", &d.value)) return false;
          d.hasValue = true;
          d.param = {};
          break;
        case TensorShapeProto::Dimension::kDimParam:
          if (!str(df, "Dimension", &d.param)) return false;
          d.hasValue = false;
          d.value = 0;
          break;
        case TensorShapeProto::Dimension::kDenotation:
          if (!str(df, "Dimension", &d.denotation)) return false;
          break;
        default:
          break;
      }
    }
  }
  return true;
}

bool Parser::opset(Bytes b, OpsetId* o) {
  Reader r(b, base_);
  Field f;
  while (!r.done()) {
    if (!r.next(&f)) return failReader(r);
    if (f.number == OperatorSetIdProto::kDomain && !str(f, "OperatorSetIdProto", &o->domain)) return false;
    if (f.number == OperatorSetIdProto::kVersion && !i64(f, "OperatorSetIdProto", &o->version)) return false;
  }
  return true;
}

bool Parser::stringPair(Bytes b, StringPair* p) {
  Reader r(b, base_);
  Field f;
  while (!r.done()) {
    if (!r.next(&f)) return failReader(r);
    if (f.number == StringStringEntryProto::kKey && !str(f, "StringStringEntryProto", &p->first)) return false;
    if (f.number == StringStringEntryProto::kValue && !str(f, "StringStringEntryProto", &p->second)) return false;
  }
  return true;
}

bool Parser::function(Bytes b, Function* fn, int depth) {
  Reader r(b, base_);
  Field f;
  while (!r.done()) {
    if (!r.next(&f)) return failReader(r);
    switch (f.number) {
      case FunctionProto::kName:
        if (!str(f, "FunctionProto", &fn->name)) return false;
        break;
      case FunctionProto::kInput:
        if (!str(f, "FunctionProto", &fn->inputs.emplace_back())) return false;
        break;
      case FunctionProto::kOutput:
        if (!str(f, "FunctionProto", &fn->outputs.emplace_back())) return false;
        break;
      case FunctionProto::kAttribute:
        if (!str(f, "FunctionProto", &fn->attributes.emplace_back())) return false;
        break;
      case FunctionProto::kNode:
        if (!expect(f, wire::kLen, "FunctionProto")) return false;
        fn->nodes.emplace_back();
        if (!node(f.bytes, &fn->nodes.back(), depth + 1)) return false;
        break;
      case FunctionProto::kDocString:
        if (!str(f, "FunctionProto", &fn->docString)) return false;
        break;
      case FunctionProto::kOpsetImport:
        if (!expect(f, wire::kLen, "FunctionProto")) return false;
        fn->opsets.emplace_back();
        if (!opset(f.bytes, &fn->opsets.back())) return false;
        break;
      case FunctionProto::kDomain:
        if (!str(f, "FunctionProto", &fn->domain)) return false;
        break;
      default:
        break;
    }
  }
  return true;
}

}  // namespace

std::string dataTypeName(int32_t type) {
  switch (type) {
    case kFloat:
      return "float32";
    case kUint8:
      return "uint8";
    case kInt8:
      return "int8";
    case kUint16:
      return "uint16";
    case kInt16:
      return "int16";
    case kInt32:
      return "int32";
    case kInt64:
      return "int64";
    case kString:
      return "string";
    case kBool:
      return "bool";
    case kFloat16:
      return "float16";
    case kDouble:
      return "float64";
    case kUint32:
      return "uint32";
    case kUint64:
      return "uint64";
    case kComplex64:
      return "complex64";
    case kComplex128:
      return "complex128";
    case kBFloat16:
      return "bfloat16";
    case kFloat8E4M3FN:
      return "float8e4m3fn";
    case kFloat8E4M3FNUZ:
      return "float8e4m3fnuz";
    case kFloat8E5M2:
      return "float8e5m2";
    case kFloat8E5M2FNUZ:
      return "float8e5m2fnuz";
    case kUint4:
      return "uint4";
    case kInt4:
      return "int4";
    default:
      return "dtype " + std::to_string(type);
  }
}

size_t dataTypeSize(int32_t type) {
  switch (type) {
    case kFloat:
    case kInt32:
    case kUint32:
      return 4;
    case kUint8:
    case kInt8:
    case kBool:
      return 1;
    case kUint16:
    case kInt16:
    case kFloat16:
    case kBFloat16:
      return 2;
    case kInt64:
    case kDouble:
    case kUint64:
    case kComplex64:
      return 8;
    case kComplex128:
      return 16;
    case kFloat8E4M3FN:
    case kFloat8E4M3FNUZ:
    case kFloat8E5M2:
    case kFloat8E5M2FNUZ:
      return 1;
    default:
      return 0;  // string, 4-bit types (packed two per byte), unknown
  }
}

bool Tensor::elementCount(uint64_t* out) const {
  uint64_t n = 1;
  for (int64_t d : dims) {
    if (d < 0) return false;
    const uint64_t u = static_cast<uint64_t>(d);
    if (u != 0 && n > (uint64_t{1} << 62) / u) return false;
    n *= u;
  }
  *out = n;
  return true;
}

std::string_view Tensor::externalValue(std::string_view key) const {
  for (const auto& [k, v] : externalData) {
    if (k == key) return v;
  }
  return {};
}

const Attribute* Node::attribute(std::string_view attrName) const {
  for (const auto& a : attributes) {
    if (a.name == attrName) return &a;
  }
  return nullptr;
}

int64_t Node::intAttr(std::string_view attrName, int64_t fallback) const {
  const Attribute* a = attribute(attrName);
  return a && a->hasI ? a->i : fallback;
}

Result<Model> parseModel(const uint8_t* data, size_t size, const ParseOptions& options) {
  if (data == nullptr && size != 0) return makeError(ErrorCode::InvalidArgument, "no model bytes given");
  if (size == 0) return makeError(ErrorCode::InvalidModel, "the file is empty, not an ONNX model", 0);
  Parser p(data, options);
  Model m;
  if (!p.model({data, size}, &m)) {
    Error e = p.error();
    // ONNX writers emit ir_version (ModelProto::kIrVersion) first. A file that fails
    // before one was read is most likely not ONNX at all (text can run far as unknown
    // fields before it fails): say so, as the no-ir_version check below does. One that fails after
    // it is a damaged or truncated model, however early its graph field starts.
    if (m.irVersion <= 0) {
      e.message = "not an ONNX model: " + e.message;
    }
    return e;
  }
  if (!m.hasGraph) {
    return makeError(ErrorCode::InvalidModel,
                     "not an ONNX model: no graph found (ModelProto field " + std::to_string(ModelProto::kGraph) + ")", 0);
  }
  if (m.irVersion <= 0) {
    return makeError(ErrorCode::InvalidModel,
                     "not an ONNX model: no ir_version (ModelProto field " + std::to_string(ModelProto::kIrVersion) + ")", 0);
  }
  return m;
}

}  // namespace ql::onnx
