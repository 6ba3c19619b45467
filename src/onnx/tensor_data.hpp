// Reading tensor values: a zero-copy view for float32 raw data, a converted
// float32 copy of one tensor for every other supported storage.
#pragma once
#include <cstdint>
#include <vector>

#include "common/result.hpp"
#include "onnx/model.hpp"

namespace ql::onnx {

// Float32 values, little-endian, possibly unaligned (read with wire::loadF32 or
// memcpy). Either a view into the model / external bytes or `owned` storage.
struct FloatValues {
  const uint8_t* bytes = nullptr;
  uint64_t count = 0;
  std::vector<float> owned;
  bool isView() const { return owned.empty() && count > 0; }
  // The values as a vector of their own: `owned` moved out, or the view copied.
  std::vector<float> take();
};

// Where a tensor's bytes are, for external data: the caller resolves
// (location, offset, length) to bytes and passes them here.
// For tensors stored in the file, pass an empty Bytes.
// Supported element types: float32, float16, bfloat16, float64, int8, uint8, int16,
// uint16, int32, the four float8 types, int4 and uint4 (two per byte, first element in
// the low nibble; in int32_data one packed byte per value), and int64/uint32/uint64 for
// small parameter tensors. Others give UNSUPPORTED_DTYPE naming the tensor and its type.
Result<FloatValues> readAsFloat(const Tensor& t, Bytes external = {});

// Small tensors (scales, zero points, clip bounds) as doubles.
Result<std::vector<double>> readAsDouble(const Tensor& t, Bytes external = {});

// Converts `count` little-endian raw elements of a readable type to float32. For int4 /
// uint4, `src` starts at an element of even index (the low nibble of its first byte).
void convertRaw(int32_t dataType, const uint8_t* src, uint64_t count, float* dst);

// Bytes that `count` elements take in raw_data or external data: count * dataTypeSize,
// or ceil(count / 2) for the 4-bit types (an odd count pads the last byte's high nibble).
uint64_t storedByteSize(int32_t dataType, uint64_t count);

// Whether the element type is one readAsFloat understands.
bool isReadableType(int32_t dataType);

// external_data: parsed offset and length (length 0 when absent: "to end of file").
struct ExternalRef {
  std::string_view location;  // as written in the model
  std::string path;           // the same location normalised: '/'-separated, no '.' or empty parts
  uint64_t offset = 0;
  uint64_t length = 0;
  bool hasLength = false;
};
// Checks the location rule below and parses offset and length.
Result<ExternalRef> externalRef(const Tensor& t);

// The one rule for external data locations (ONNX's own fix for CVE-2022-25882 states
// the same): a location is a relative path that, normalised, stays inside the model's
// folder. Refused: empty, a NUL byte, an absolute path ('/x', '\\x'), a drive letter
// ('C:'), a UNC path ('\\\\host\\share', '//host/share'), and any '..' part that
// climbs above the folder ('a/../b' is the folder's 'b'; '../b' is refused). Both '/'
// and '\\' separate parts. On success `*normalised` is the location with '/' between
// parts and no '.' or empty parts. Callers that open files must open the normalised
// path and still refuse symbolic links that lead out of the folder (the core opens no
// files; web/src/source.js does that check).
Error checkExternalLocation(const Tensor& t, std::string_view location, std::string* normalised);

// Bytes a tensor's data needs, by dims and type (0 when unknown).
uint64_t expectedByteSize(const Tensor& t);

float halfToFloat(uint16_t h);
float bfloat16ToFloat(uint16_t b);
// One float8 code of `type` (kFloat8E4M3FN, kFloat8E4M3FNUZ, kFloat8E5M2, kFloat8E5M2FNUZ)
// as float32 (exact: every finite float8 value is a float32), NaN and +-infinity included.
float float8ToFloat(int32_t type, uint8_t code);

}  // namespace ql::onnx
