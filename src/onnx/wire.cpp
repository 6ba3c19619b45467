#include "onnx/wire.hpp"

#include <string>

namespace ql::wire {

const char* wireTypeName(uint32_t type) {
  switch (type) {
    case kVarint:
      return "varint";
    case kFixed64:
      return "fixed64";
    case kLen:
      return "length-delimited";
    case kStartGroup:
      return "start-group";
    case kEndGroup:
      return "end-group";
    case kFixed32:
      return "fixed32";
    default:
      return "invalid";
  }
}

bool Reader::fail(const char* what, const uint8_t* at) {
  error_ = makeError(ErrorCode::InvalidModel, what, static_cast<int64_t>(offsetOf(at)));
  p_ += left_;
  left_ = 0;
  return false;
}

bool Reader::next(Field* f) {
  const uint8_t* start = p_;
  uint64_t tag = 0;
  size_t n = readVarint(p_, left_, &tag);
  if (n == 0) return fail("truncated or over-long varint in field tag", start);
  advance(n);
  if (tag >> 32) return fail("field tag out of range", start);
  f->number = static_cast<uint32_t>(tag >> 3);
  f->type = static_cast<uint8_t>(tag & 7);
  f->offset = offsetOf(start);
  f->varint = 0;
  f->bytes = {};
  if (f->number == 0) return fail("field number 0 is not valid protobuf", start);
  switch (f->type) {
    case kVarint:
      n = readVarint(p_, left_, &f->varint);
      if (n == 0) return fail("truncated or over-long varint", p_);
      advance(n);
      return true;
    case kFixed64:
      if (left_ < 8) return fail("truncated 64-bit field", p_);
      f->bytes = {p_, 8};
      f->varint = loadU64(p_);
      advance(8);
      return true;
    case kFixed32:
      if (left_ < 4) return fail("truncated 32-bit field", p_);
      f->bytes = {p_, 4};
      f->varint = loadU32(p_);
      advance(4);
      return true;
    case kLen: {
      uint64_t len = 0;
      n = readVarint(p_, left_, &len);
      if (n == 0) return fail("truncated or over-long length varint", p_);
      advance(n);
      if (len > left_) {
        return fail(("length " + std::to_string(len) + " runs past the end of its message").c_str(), start);
      }
      f->bytes = {p_, static_cast<size_t>(len)};
      advance(static_cast<size_t>(len));
      return true;
    }
    case kStartGroup:
    case kEndGroup:
      return fail("protobuf groups (wire type 3/4) do not occur in ONNX", start);
    default:
      return fail(("invalid wire type " + std::to_string(f->type)).c_str(), start);
  }
}

bool RepeatedScalar::count(const Field& f, Kind kind, uint64_t* count, Error* err, const uint8_t* base) {
  const int64_t off = static_cast<int64_t>(f.offset);
  if (f.type == kLen) {
    if (kind == kFixed32Kind) {
      if (f.bytes.size % 4) {
        *err = makeError(ErrorCode::InvalidModel, "packed 32-bit values do not fill their length", off);
        return false;
      }
      *count += f.bytes.size / 4;
    } else if (kind == kFixed64Kind) {
      if (f.bytes.size % 8) {
        *err = makeError(ErrorCode::InvalidModel, "packed 64-bit values do not fill their length", off);
        return false;
      }
      *count += f.bytes.size / 8;
    } else {
      const uint8_t* p = f.bytes.data;
      for (size_t left = f.bytes.size; left > 0;) {
        uint64_t v;
        size_t n = readVarint(p, left, &v);
        if (n == 0) {
          *err = makeError(ErrorCode::InvalidModel, "truncated or over-long varint in packed field",
                           static_cast<int64_t>(offsetIn(base, p)));
          return false;
        }
        p += n;
        left -= n;
        ++*count;
      }
    }
    return true;
  }
  const uint8_t want = kind == kVarintKind ? kVarint : kind == kFixed32Kind ? kFixed32 : kFixed64;
  if (f.type != want) {
    *err = makeError(ErrorCode::InvalidModel,
                     std::string("field ") + std::to_string(f.number) + " has wire type " + wireTypeName(f.type) + ", expected " +
                         wireTypeName(want) + " or packed",
                     off);
    return false;
  }
  ++*count;
  return true;
}

}  // namespace ql::wire
