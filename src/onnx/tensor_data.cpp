#include "onnx/tensor_data.hpp"

#include <cmath>
#include <cstring>
#include <string>

namespace ql::onnx {

namespace {

std::string tensorLabel(const Tensor& t) { return "tensor '" + std::string(t.name.substr(0, 200)) + "'"; }

// Calls fn(bits) for each value stored in the tensor's typed field, in order.
// The parser has already validated the encoding.
template <class Fn>
void forEachTyped(const Tensor& t, Fn fn) {
  wire::Reader r(t.message, t.message.data);
  wire::Field f;
  while (!r.done() && r.next(&f)) {
    if (f.number != t.typedField) continue;
    const bool fixed32 = t.typedField == fields::TensorProto::kFloatData;
    const bool fixed64 = t.typedField == fields::TensorProto::kDoubleData;
    if (f.type != wire::kLen) {
      fn(f.varint);
      continue;
    }
    // Counts of bytes, not end pointers (see wire::readVarint).
    const uint8_t* p = f.bytes.data;
    const size_t size = f.bytes.size;
    if (fixed32) {
      for (size_t k = 0; k + 4 <= size; k += 4) fn(wire::loadU32(p + k));
    } else if (fixed64) {
      for (size_t k = 0; k + 8 <= size; k += 8) fn(wire::loadU64(p + k));
    } else {
      for (size_t left = size; left > 0;) {
        uint64_t v;
        size_t n = wire::readVarint(p, left, &v);
        if (n == 0) return;
        fn(v);
        p += n;
        left -= n;
      }
    }
  }
}

// Which typed field holds each element type (onnx.proto comments on TensorProto).
uint32_t typedFieldFor(int32_t dt) {
  switch (dt) {
    case kFloat:
    case kComplex64:
      return fields::TensorProto::kFloatData;
    case kInt32:
    case kInt16:
    case kInt8:
    case kUint16:
    case kUint8:
    case kBool:
    case kFloat16:
    case kBFloat16:
    case kFloat8E4M3FN:
    case kFloat8E4M3FNUZ:
    case kFloat8E5M2:
    case kFloat8E5M2FNUZ:
    case kUint4:  // one byte (two 4-bit elements) per value
    case kInt4:
      return fields::TensorProto::kInt32Data;
    case kString:
      return fields::TensorProto::kStringData;
    case kInt64:
      return fields::TensorProto::kInt64Data;
    case kDouble:
    case kComplex128:
      return fields::TensorProto::kDoubleData;
    case kUint32:
    case kUint64:
      return fields::TensorProto::kUint64Data;
    default:
      return 0;
  }
}

float fromBits(int32_t dt, uint64_t bits) {
  switch (dt) {
    case kFloat: {
      uint32_t u = static_cast<uint32_t>(bits);
      float v;
      std::memcpy(&v, &u, 4);
      return v;
    }
    case kDouble: {
      double v;
      std::memcpy(&v, &bits, 8);
      return static_cast<float>(v);
    }
    case kFloat16:
      return halfToFloat(static_cast<uint16_t>(bits));
    case kBFloat16:
      return bfloat16ToFloat(static_cast<uint16_t>(bits));
    case kInt8:
      return static_cast<float>(static_cast<int8_t>(bits));
    case kUint8:
      return static_cast<float>(static_cast<uint8_t>(bits));
    case kInt16:
      return static_cast<float>(static_cast<int16_t>(bits));
    case kUint16:
      return static_cast<float>(static_cast<uint16_t>(bits));
    case kInt32:
      return static_cast<float>(static_cast<int32_t>(bits));
    case kBool:
      return bits ? 1.0f : 0.0f;
    case kInt64:
      return static_cast<float>(static_cast<int64_t>(bits));
    case kUint32:
      return static_cast<float>(static_cast<uint32_t>(bits));
    case kUint64:
      return static_cast<float>(bits);
    case kFloat8E4M3FN:
    case kFloat8E4M3FNUZ:
    case kFloat8E5M2:
    case kFloat8E5M2FNUZ:
      return float8ToFloat(dt, static_cast<uint8_t>(bits));
    default:
      return 0.0f;
  }
}

// Element i of 4-bit packed bytes: low nibble for even i, high nibble for odd i; int4
// sign-extends its nibble (two's complement, -8..7), uint4 is 0..15.
float nibble(int32_t dt, const uint8_t* p, uint64_t i) {
  const unsigned v = (i % 2 ? p[i / 2] >> 4 : p[i / 2]) & 0xFu;
  return static_cast<float>(dt == kInt4 ? static_cast<int>(v) - (v & 8u ? 16 : 0) : static_cast<int>(v));
}

double fromBitsD(int32_t dt, uint64_t bits) {
  switch (dt) {
    case kDouble: {
      double v;
      std::memcpy(&v, &bits, 8);
      return v;
    }
    case kInt64:
      return static_cast<double>(static_cast<int64_t>(bits));
    case kUint64:
      return static_cast<double>(bits);
    case kInt32:
      return static_cast<double>(static_cast<int32_t>(bits));  // exact, unlike float
    case kUint32:
      return static_cast<double>(static_cast<uint32_t>(bits));
    default:
      return fromBits(dt, bits);
  }
}

// Little-endian element at index i of raw data.
uint64_t rawBits(int32_t dt, const uint8_t* p, uint64_t i) {
  switch (dataTypeSize(dt)) {
    case 1:
      return p[i];
    case 2: {
      uint16_t v;
      std::memcpy(&v, p + 2 * i, 2);
      return v;
    }
    case 4:
      return wire::loadU32(p + 4 * i);
    case 8:
      return wire::loadU64(p + 8 * i);
    default:
      return 0;
  }
}

struct Source {
  const uint8_t* raw = nullptr;  // raw bytes (inline raw_data or external), or null for typed
  uint64_t count = 0;
};

Result<Source> locate(const Tensor& t, Bytes external) {
  uint64_t count = 0;
  if (!t.elementCount(&count)) return makeError(ErrorCode::InvalidModel, tensorLabel(t) + " has invalid dimensions", t.offset);
  if (t.dataType == kUndefined) return makeError(ErrorCode::InvalidModel, tensorLabel(t) + " has no data_type", t.offset);
  const size_t elem = dataTypeSize(t.dataType);
  if (t.external && isPacked4(t.dataType)) {
    if (external.data == nullptr && count > 0) {
      return makeError(ErrorCode::MissingExternalData,
                       tensorLabel(t) + " keeps its data in external file '" + std::string(t.externalValue("location")) +
                           "', which was not provided",
                       t.offset);
    }
    if (external.size != storedByteSize(t.dataType, count)) {
      return makeError(ErrorCode::MissingExternalData,
                       tensorLabel(t) + " needs " + std::to_string(storedByteSize(t.dataType, count)) + " bytes of " +
                           dataTypeName(t.dataType) + " external data (two elements per byte) for " + std::to_string(count) +
                           " elements but " + std::to_string(external.size) + " were provided",
                       t.offset);
    }
    return Source{external.data, count};
  }
  if (t.external) {
    if (elem == 0)
      return makeError(ErrorCode::UnsupportedDtype,
                       tensorLabel(t) + " has type " + dataTypeName(t.dataType) + ", which QuantLens does not read", t.offset);
    if (external.data == nullptr && count > 0) {
      return makeError(ErrorCode::MissingExternalData,
                       tensorLabel(t) + " keeps its data in external file '" + std::string(t.externalValue("location")) +
                           "', which was not provided",
                       t.offset);
    }
    if (count > external.size / elem || count * elem != external.size) {
      return makeError(ErrorCode::MissingExternalData,
                       tensorLabel(t) + " needs " + std::to_string(count) + " x " + std::to_string(elem) +
                           " bytes of external data but " + std::to_string(external.size) + " were provided",
                       t.offset);
    }
    return Source{external.data, count};
  }
  if (t.hasRawData) {
    if (t.deferred)
      return makeError(ErrorCode::InvalidArgument,
                       tensorLabel(t) + " was left in the file (" + std::to_string(t.rawData.size) +
                           " bytes, read piece by piece when it is a layer's weight) and is not in memory",
                       t.offset);
    if (elem == 0 && !isPacked4(t.dataType))
      return makeError(ErrorCode::UnsupportedDtype,
                       tensorLabel(t) + " has type " + dataTypeName(t.dataType) + ", which QuantLens does not read", t.offset);
    if (t.rawData.size != storedByteSize(t.dataType, count))  // the parser checked it; stated again where it is relied on
      return makeError(ErrorCode::InvalidModel,
                       tensorLabel(t) + " holds " + std::to_string(t.rawData.size) + " bytes of raw_data for " +
                           std::to_string(count) + " elements of " + dataTypeName(t.dataType) + ", which need " +
                           std::to_string(storedByteSize(t.dataType, count)),
                       t.offset);
    return Source{t.rawData.data, count};
  }
  if (count == 0) return Source{nullptr, 0};
  if (t.typedCount == 0)
    return makeError(ErrorCode::InvalidModel, tensorLabel(t) + " has " + std::to_string(count) + " elements but stores no values",
                     t.offset);
  if (t.typedField != typedFieldFor(t.dataType)) {
    return makeError(ErrorCode::InvalidModel,
                     tensorLabel(t) + " of type " + dataTypeName(t.dataType) + " stores its values in field " +
                         std::to_string(t.typedField) + ", which does not hold that type",
                     t.offset);
  }
  return Source{nullptr, count};
}

}  // namespace

// Branch-free, so that convertRaw's loops over it vectorize. A finite half's exponent and
// mantissa fields moved to float32's places (shifted left by 13) read as a float32 2^112
// times too small, a subnormal half as a float32 subnormal: one multiply by 2^112 gives the
// value exactly (no rounding: the result has at most 11 significant bits). An infinity or
// NaN keeps its mantissa (the NaN's payload) under float32's all-ones exponent.
float halfToFloat(uint16_t h) {
  const uint32_t sign = static_cast<uint32_t>(h & 0x8000) << 16;
  const uint32_t em = h & 0x7fffu;
  uint32_t bits = em << 13;
  float f;
  std::memcpy(&f, &bits, 4);
  f *= 0x1p112f;
  std::memcpy(&bits, &f, 4);
  if (em >= 0x7c00u) bits = 0x7f800000u | (em & 0x3ffu) << 13;
  bits |= sign;
  std::memcpy(&f, &bits, 4);
  return f;
}

float bfloat16ToFloat(uint16_t b) {
  const uint32_t bits = static_cast<uint32_t>(b) << 16;
  float f;
  std::memcpy(&f, &bits, 4);
  return f;
}

float float8ToFloat(int32_t type, uint8_t code) {
  // The ONNX "Float8 types" page (docs/docs/technical/float8.md): S.EEEE.MMM (E4M3) or
  // S.EEEEE.MM (E5M2). Exponent biases 7 (E4M3FN), 8 (E4M3FNUZ), 15 (E5M2), 16 (E5M2FNUZ).
  // Exponent field 0 is subnormal: mantissa / 2^m * 2^(1 - bias). Special codes:
  //   E4M3FN: S.1111.111 is NaN, no infinities (so S.1111.000-110 are normal, up to 448);
  //   E5M2:   S.11111.00 is +-infinity, S.11111.{01,10,11} NaN (IEEE 754 conventions);
  //   FNUZ types: 0x80 (the pattern of negative zero) is the only NaN; no infinities.
  const bool e4 = type == kFloat8E4M3FN || type == kFloat8E4M3FNUZ;
  const bool fnuz = type == kFloat8E4M3FNUZ || type == kFloat8E5M2FNUZ;
  const int mBits = e4 ? 3 : 2;
  const int eMax = e4 ? 15 : 31;
  const int bias = type == kFloat8E4M3FN ? 7 : type == kFloat8E4M3FNUZ ? 8 : type == kFloat8E5M2 ? 15 : 16;
  const bool negative = (code & 0x80u) != 0;
  const int exp = (code & 0x7F) >> mBits;
  const int mant = code & ((1 << mBits) - 1);
  if (fnuz && code == 0x80u) return NAN;
  if (type == kFloat8E4M3FN && exp == eMax && mant == (1 << mBits) - 1) return NAN;
  if (type == kFloat8E5M2 && exp == eMax) return mant == 0 ? (negative ? -INFINITY : INFINITY) : NAN;
  // Every other code is finite: exact in float32 (at most 3 significant bits, exponents -17..15).
  const float magnitude = exp == 0 ? std::ldexp(static_cast<float>(mant), 1 - bias - mBits)
                                   : std::ldexp(static_cast<float>(mant + (1 << mBits)), exp - bias - mBits);
  return negative ? -magnitude : magnitude;
}

uint64_t storedByteSize(int32_t type, uint64_t count) {
  if (isPacked4(type)) return count / 2 + count % 2;
  return count * dataTypeSize(type);
}

void convertRaw(int32_t dataType, const uint8_t* p, uint64_t count, float* dst) {
  switch (dataType) {
    case kInt4:
    case kUint4:
      for (uint64_t i = 0; i < count; ++i) dst[i] = nibble(dataType, p, i);
      break;
    case kFloat:
      std::memcpy(dst, p, count * 4);
      break;
    case kFloat16:
      for (uint64_t i = 0; i < count; ++i) {
        uint16_t h;
        std::memcpy(&h, p + 2 * i, 2);
        dst[i] = halfToFloat(h);
      }
      break;
    case kBFloat16:
      for (uint64_t i = 0; i < count; ++i) {
        uint16_t h;
        std::memcpy(&h, p + 2 * i, 2);
        dst[i] = bfloat16ToFloat(h);
      }
      break;
    case kInt8:
      for (uint64_t i = 0; i < count; ++i) dst[i] = static_cast<float>(static_cast<int8_t>(p[i]));
      break;
    case kUint8:
      for (uint64_t i = 0; i < count; ++i) dst[i] = static_cast<float>(p[i]);
      break;
    default:
      for (uint64_t i = 0; i < count; ++i) dst[i] = fromBits(dataType, rawBits(dataType, p, i));
      break;
  }
}

bool isReadableType(int32_t dt) {
  switch (dt) {
    case kFloat:
    case kFloat16:
    case kBFloat16:
    case kDouble:
    case kInt8:
    case kUint8:
    case kInt16:
    case kUint16:
    case kInt32:
    case kInt64:
    case kUint32:
    case kUint64:
    case kBool:
    case kFloat8E4M3FN:
    case kFloat8E4M3FNUZ:
    case kFloat8E5M2:
    case kFloat8E5M2FNUZ:
    case kUint4:
    case kInt4:
      return true;
    default:
      return false;
  }
}

std::vector<float> FloatValues::take() {
  if (!isView()) return std::move(owned);
  std::vector<float> v(count);
  std::memcpy(v.data(), bytes, count * 4);
  return v;
}

Result<FloatValues> readAsFloat(const Tensor& t, Bytes external) {
  if (!isReadableType(t.dataType) && t.dataType != kUndefined) {
    return makeError(ErrorCode::UnsupportedDtype,
                     tensorLabel(t) + " has type " + dataTypeName(t.dataType) + ", which QuantLens does not read", t.offset);
  }
  auto src = locate(t, external);
  if (!src.ok()) return src.error();
  FloatValues out;
  out.count = src->count;
  if (src->count == 0) return out;
  if (src->raw && t.dataType == kFloat) {
    out.bytes = src->raw;  // the zero-copy path: float32 little-endian as stored
    return out;
  }
  out.owned.resize(src->count);
  float* dst = out.owned.data();
  if (src->raw) {
    convertRaw(t.dataType, src->raw, src->count, dst);
  } else if (isPacked4(t.dataType)) {  // int32_data: one packed byte (two elements) per value
    uint64_t i = 0;
    forEachTyped(t, [&](uint64_t bits) {
      const uint8_t byte = static_cast<uint8_t>(bits);
      for (uint64_t k = 0; k < 2 && i < src->count; ++k, ++i) dst[i] = nibble(t.dataType, &byte, k);
    });
  } else {
    uint64_t i = 0;
    forEachTyped(t, [&](uint64_t bits) {
      if (i < src->count) dst[i++] = fromBits(t.dataType, bits);
    });
  }
  out.bytes = reinterpret_cast<const uint8_t*>(out.owned.data());
  return out;
}

Result<std::vector<double>> readAsDouble(const Tensor& t, Bytes external) {
  if (!isReadableType(t.dataType)) {
    return makeError(ErrorCode::UnsupportedDtype,
                     tensorLabel(t) + " has type " + dataTypeName(t.dataType) + ", which QuantLens does not read", t.offset);
  }
  auto src = locate(t, external);
  if (!src.ok()) return src.error();
  std::vector<double> out(src->count);
  if (isPacked4(t.dataType)) {  // small parameter tensors (zero points): through the float path, exact for 4-bit values
    auto f = readAsFloat(t, external);
    if (!f.ok()) return f.error();
    for (uint64_t i = 0; i < src->count; ++i) out[i] = f->owned[i];
  } else if (src->raw) {
    for (uint64_t i = 0; i < src->count; ++i) out[i] = fromBitsD(t.dataType, rawBits(t.dataType, src->raw, i));
  } else {
    uint64_t i = 0;
    forEachTyped(t, [&](uint64_t bits) {
      if (i < src->count) out[i++] = fromBitsD(t.dataType, bits);
    });
  }
  return out;
}

Result<ExternalRef> externalRef(const Tensor& t) {
  ExternalRef ref;
  ref.location = t.externalValue("location");
  auto parseNum = [&](std::string_view key, uint64_t* out, bool* present) -> bool {
    std::string_view v = t.externalValue(key);
    if (present) *present = !v.empty();
    if (v.empty()) return true;
    uint64_t n = 0;
    for (char c : v) {
      if (c < '0' || c > '9' || n > (UINT64_MAX - 9) / 10) return false;
      n = n * 10 + static_cast<uint64_t>(c - '0');
    }
    *out = n;
    return true;
  };
  if (!parseNum("offset", &ref.offset, nullptr) || !parseNum("length", &ref.length, &ref.hasLength)) {
    return makeError(ErrorCode::InvalidModel, tensorLabel(t) + " has a non-numeric external data offset or length", t.offset);
  }
  if (ref.location.empty())
    return makeError(ErrorCode::InvalidModel, tensorLabel(t) + " has external data without a location", t.offset);
  if (Error e = checkExternalLocation(t, ref.location, &ref.path); !e.ok()) return e;
  const uint64_t need = expectedByteSize(t);
  if (!ref.hasLength) {
    ref.length = need;
    ref.hasLength = need > 0;
  } else if (need != 0 && ref.length != need) {
    return makeError(ErrorCode::InvalidModel,
                     tensorLabel(t) + " declares " + std::to_string(ref.length) + " bytes of external data but its shape needs " +
                         std::to_string(need),
                     t.offset);
  }
  return ref;
}

Error checkExternalLocation(const Tensor& t, std::string_view location, std::string* normalised) {
  std::string shown;  // the location as printable text, cut to 200 bytes
  for (char c : location.substr(0, 200)) {
    const auto u = static_cast<unsigned char>(c);
    shown += (u < 0x20 || u == 0x7f) ? '?' : c;
  }
  if (location.size() > 200) shown += "...";
  auto refuse = [&](const std::string& why) {
    return makeError(ErrorCode::UnsafeExternalData,
                     tensorLabel(t) + " keeps its data at '" + shown + "', " + why +
                         ": external data must be a relative path inside the model's folder, so nothing was read",
                     t.offset);
  };
  if (location.empty()) return refuse("an empty location");
  if (location.find('\0') != std::string_view::npos) return refuse("a location with a NUL byte");
  const char first = location[0];
  if (first == '/' || first == '\\')
    return refuse(location.size() > 1 && location[1] == first ? "a network (UNC) path" : "an absolute path");
  if (location.size() >= 2 && location[1] == ':' && ((first >= 'A' && first <= 'Z') || (first >= 'a' && first <= 'z')))
    return refuse("a path with a drive letter");
  std::vector<std::string_view> parts;
  size_t start = 0;
  for (size_t i = 0; i <= location.size(); ++i) {
    if (i < location.size() && location[i] != '/' && location[i] != '\\') continue;
    const std::string_view part = location.substr(start, i - start);
    start = i + 1;
    if (part.empty() || part == ".") continue;
    if (part == "..") {
      if (parts.empty()) return refuse("outside the model's folder");
      parts.pop_back();
      continue;
    }
    parts.push_back(part);
  }
  if (parts.empty()) return refuse("the model's folder itself, not a file in it");
  if (normalised) {
    normalised->clear();
    for (auto p : parts) {
      if (!normalised->empty()) *normalised += '/';
      normalised->append(p.data(), p.size());
    }
  }
  return Error{};
}

uint64_t expectedByteSize(const Tensor& t) {
  uint64_t count = 0;
  const size_t elem = dataTypeSize(t.dataType);
  if (!t.elementCount(&count) || (elem == 0 && !isPacked4(t.dataType)) || count > (UINT64_MAX / 16)) return 0;
  return storedByteSize(t.dataType, count);
}

}  // namespace ql::onnx
