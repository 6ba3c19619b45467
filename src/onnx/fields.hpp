// Field numbers of the ONNX protobuf messages and the TensorProto element types, by
// name, as onnx/onnx.proto defines them (https://github.com/onnx/onnx/blob/main/onnx/onnx.proto;
// the numbers are stable across IR versions: protobuf fields are never renumbered).
// The reader (parse.cpp, skim.cpp), the writer and the tensor conversion all use these
// names; tests/native/crosscheck.cpp checks each against the code protoc generates
// from onnx.proto.
#pragma once
#include <cstdint>

namespace ql::onnx {

// TensorProto.DataType values.
enum DataType : int32_t {
  kUndefined = 0,
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
  // onnx 1.14 (IR version 9): 8-bit floats
  kFloat8E4M3FN = 17,
  kFloat8E4M3FNUZ = 18,
  kFloat8E5M2 = 19,
  kFloat8E5M2FNUZ = 20,
  // onnx 1.16 (IR version 10): 4-bit integers, two per byte (first element in the low nibble)
  kUint4 = 21,
  kInt4 = 22,
};

// Whether elements of `type` are packed two per byte (raw_data) or two per int32_data value.
constexpr bool isPacked4(int32_t type) { return type == kUint4 || type == kInt4; }

// Field numbers, one namespace per message, named as in onnx.proto
// (fields::TensorProto::kRawData is `bytes raw_data = 9`).
namespace fields {

namespace ModelProto {
inline constexpr uint32_t kIrVersion = 1;
inline constexpr uint32_t kProducerName = 2;
inline constexpr uint32_t kProducerVersion = 3;
inline constexpr uint32_t kDomain = 4;
inline constexpr uint32_t kModelVersion = 5;
inline constexpr uint32_t kDocString = 6;
inline constexpr uint32_t kGraph = 7;
inline constexpr uint32_t kOpsetImport = 8;
inline constexpr uint32_t kMetadataProps = 14;
inline constexpr uint32_t kTrainingInfo = 20;
inline constexpr uint32_t kFunctions = 25;
}  // namespace ModelProto

namespace StringStringEntryProto {
inline constexpr uint32_t kKey = 1;
inline constexpr uint32_t kValue = 2;
}  // namespace StringStringEntryProto

namespace OperatorSetIdProto {
inline constexpr uint32_t kDomain = 1;
inline constexpr uint32_t kVersion = 2;
}  // namespace OperatorSetIdProto

namespace TrainingInfoProto {
inline constexpr uint32_t kInitialization = 1;
inline constexpr uint32_t kAlgorithm = 2;
}  // namespace TrainingInfoProto

namespace GraphProto {
inline constexpr uint32_t kNode = 1;
inline constexpr uint32_t kName = 2;
inline constexpr uint32_t kInitializer = 5;
inline constexpr uint32_t kDocString = 10;
inline constexpr uint32_t kInput = 11;
inline constexpr uint32_t kOutput = 12;
inline constexpr uint32_t kValueInfo = 13;
inline constexpr uint32_t kQuantizationAnnotation = 14;
inline constexpr uint32_t kSparseInitializer = 15;
}  // namespace GraphProto

namespace NodeProto {
inline constexpr uint32_t kInput = 1;
inline constexpr uint32_t kOutput = 2;
inline constexpr uint32_t kName = 3;
inline constexpr uint32_t kOpType = 4;
inline constexpr uint32_t kAttribute = 5;
inline constexpr uint32_t kDocString = 6;
inline constexpr uint32_t kDomain = 7;
}  // namespace NodeProto

namespace AttributeProto {
inline constexpr uint32_t kName = 1;
inline constexpr uint32_t kF = 2;
inline constexpr uint32_t kI = 3;
inline constexpr uint32_t kS = 4;
inline constexpr uint32_t kT = 5;
inline constexpr uint32_t kG = 6;
inline constexpr uint32_t kFloats = 7;
inline constexpr uint32_t kInts = 8;
inline constexpr uint32_t kStrings = 9;
inline constexpr uint32_t kTensors = 10;
inline constexpr uint32_t kGraphs = 11;
inline constexpr uint32_t kDocString = 13;
inline constexpr uint32_t kTp = 14;
inline constexpr uint32_t kTypeProtos = 15;
inline constexpr uint32_t kType = 20;
inline constexpr uint32_t kRefAttrName = 21;
inline constexpr uint32_t kSparseTensor = 22;
inline constexpr uint32_t kSparseTensors = 23;
}  // namespace AttributeProto

namespace TensorProto {
inline constexpr uint32_t kDims = 1;
inline constexpr uint32_t kDataType = 2;
inline constexpr uint32_t kSegment = 3;
inline constexpr uint32_t kFloatData = 4;   // packed fixed32: float, complex64
inline constexpr uint32_t kInt32Data = 5;   // packed varint: int32, int16, int8, uint16, uint8, bool, float16,
                                            // bfloat16, float8, 4-bit types (two per value)
inline constexpr uint32_t kStringData = 6;  // bytes, one per element
inline constexpr uint32_t kInt64Data = 7;   // packed varint: int64
inline constexpr uint32_t kName = 8;
inline constexpr uint32_t kRawData = 9;
inline constexpr uint32_t kDoubleData = 10;  // packed fixed64: double, complex128
inline constexpr uint32_t kUint64Data = 11;  // packed varint: uint32, uint64
inline constexpr uint32_t kDocString = 12;
inline constexpr uint32_t kExternalData = 13;  // StringStringEntryProto: location, offset, length, checksum
inline constexpr uint32_t kDataLocation = 14;

namespace Segment {
inline constexpr uint32_t kBegin = 1;
inline constexpr uint32_t kEnd = 2;
}  // namespace Segment

// TensorProto.DataLocation values.
inline constexpr int64_t kLocationDefault = 0;
inline constexpr int64_t kLocationExternal = 1;
}  // namespace TensorProto

namespace ValueInfoProto {
inline constexpr uint32_t kName = 1;
inline constexpr uint32_t kType = 2;
inline constexpr uint32_t kDocString = 3;
}  // namespace ValueInfoProto

namespace TypeProto {
// The `value` oneof.
inline constexpr uint32_t kTensorType = 1;
inline constexpr uint32_t kSequenceType = 4;
inline constexpr uint32_t kMapType = 5;
inline constexpr uint32_t kSparseTensorType = 8;
inline constexpr uint32_t kOptionalType = 9;

namespace Tensor {  // TypeProto.Tensor, and TypeProto.SparseTensor (same numbers)
inline constexpr uint32_t kElemType = 1;
inline constexpr uint32_t kShape = 2;
}  // namespace Tensor
}  // namespace TypeProto

namespace TensorShapeProto {
inline constexpr uint32_t kDim = 1;

namespace Dimension {
inline constexpr uint32_t kDimValue = 1;
inline constexpr uint32_t kDimParam = 2;
inline constexpr uint32_t kDenotation = 3;
}  // namespace Dimension
}  // namespace TensorShapeProto

namespace FunctionProto {
inline constexpr uint32_t kName = 1;
inline constexpr uint32_t kInput = 4;
inline constexpr uint32_t kOutput = 5;
inline constexpr uint32_t kAttribute = 6;
inline constexpr uint32_t kNode = 7;
inline constexpr uint32_t kDocString = 8;
inline constexpr uint32_t kOpsetImport = 9;
inline constexpr uint32_t kDomain = 10;
}  // namespace FunctionProto

}  // namespace fields
}  // namespace ql::onnx
