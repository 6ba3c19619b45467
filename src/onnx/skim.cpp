#include "onnx/skim.hpp"

#include <algorithm>

#include "onnx/fields.hpp"
#include "onnx/wire.hpp"

namespace ql::onnx {

namespace {

// The message types on the way from ModelProto to a TensorProto's raw_data
// (fields named in onnx/fields.hpp). Everything else is copied without a look inside.
// kTyped: a packed float_data or double_data field, whose payload holds the values as
// raw_data would (little-endian float32 or float64, back to back).
enum Kind { kModel, kGraph, kNode, kAttribute, kTensor, kFunction, kTrainingInfo, kBlob, kTyped, kOther };

Kind child(Kind parent, uint32_t number) {
  using namespace fields;
  switch (parent) {
    case kModel:
      return number == ModelProto::kGraph          ? kGraph
             : number == ModelProto::kFunctions    ? kFunction
             : number == ModelProto::kTrainingInfo ? kTrainingInfo
                                                   : kOther;
    case kGraph:
      return number == GraphProto::kNode ? kNode : number == GraphProto::kInitializer ? kTensor : kOther;
    case kNode:
      return number == NodeProto::kAttribute ? kAttribute : kOther;
    case kAttribute:
      return (number == AttributeProto::kT || number == AttributeProto::kTensors)  ? kTensor
             : (number == AttributeProto::kG || number == AttributeProto::kGraphs) ? kGraph
                                                                                   : kOther;
    case kTensor:
      return number == TensorProto::kRawData                                             ? kBlob
             : (number == TensorProto::kFloatData || number == TensorProto::kDoubleData) ? kTyped
                                                                                         : kOther;
    case kFunction:
      return number == FunctionProto::kNode ? kNode : kOther;
    case kTrainingInfo:
      return (number == TrainingInfoProto::kInitialization || number == TrainingInfoProto::kAlgorithm) ? kGraph : kOther;
    default:
      return kOther;
  }
}

class Skimmer {
 public:
  Skimmer(ByteReader& in, uint64_t size, uint8_t* image, const SkimOptions& o) : in_(in), size_(size), image_(image), o_(o) {}

  // Makes bytes [copied_, end) present in the image, reading forward in chunks.
  bool need(uint64_t end) {
    end = std::min(end, size_);
    while (copied_ < end) {
      const uint64_t n = std::min(size_ - copied_, std::max(o_.readChunk, end - copied_));
      if (!in_.read(copied_, image_ + copied_, n)) {
        ioError_ = true;
        return false;
      }
      copied_ += n;
      out_.bytesRead += n;
    }
    return true;
  }

  // Walks [pos, end) as a message of `kind`. Returns false when the structure does
  // not hold together (the caller then reads everything).
  bool walk(uint64_t pos, uint64_t end, Kind kind, int depth) {
    if (kind != kTensor) return walkFields(pos, end, kind, depth, nullptr);
    // A TensorProto: a large packed float_data or double_data payload stays unread only
    // when it is the tensor's one store of values, of a type that field holds (what
    // analysis::markDeferred then takes as the tensor's raw data); else it is read back.
    TensorSeen seen;
    const bool ok = walkFields(pos, end, kind, depth, &seen);
    if (seen.skipped != SIZE_MAX && (!ok || !seen.typedAlone())) {
      // Its first `present` bytes came with the chunk that read its field's header.
      const SkippedPayload p = out_.skipped[seen.skipped];
      out_.skipped.erase(out_.skipped.begin() + static_cast<std::ptrdiff_t>(seen.skipped));
      const uint64_t at = p.offset + seen.present;
      if (at < p.offset + p.length && !in_.read(at, image_ + at, p.offset + p.length - at)) {
        ioError_ = true;
        return false;
      }
      out_.bytesRead += p.length - seen.present;
    }
    return ok;
  }

  // What a TensorProto holds, as far as the typed payload rule needs.
  struct TensorSeen {
    uint64_t dataType = 0;
    int typedOccurrences = 0;  // of float_data and double_data, packed or not
    int otherValues = 0;       // raw_data and the other typed fields
    uint32_t typedField = 0;
    size_t skipped = SIZE_MAX;  // its typed payload's place in Skim::skipped, when left unread
    uint64_t present = 0;       // bytes of that payload read already (with the chunk before it)
    bool typedAlone() const {
      if (typedOccurrences != 1 || otherValues != 0) return false;
      if (typedField == fields::TensorProto::kFloatData) return dataType == kFloat || dataType == kComplex64;
      return dataType == kDouble || dataType == kComplex128;
    }
  };

  bool walkFields(uint64_t pos, uint64_t end, Kind kind, int depth, TensorSeen* seen) {
    if (depth > o_.maxDepth) return false;
    while (pos < end) {
      if (!need(std::min(end, pos + 20))) return false;
      // Offsets, not pointers, and counts of bytes for readVarint (see there).
      const uint64_t lim = std::min(end, copied_);
      auto avail = [&] { return static_cast<size_t>(lim > pos ? lim - pos : 0); };
      uint64_t tag = 0;
      size_t n = wire::readVarint(image_ + pos, avail(), &tag);
      if (n == 0 || (tag >> 3) == 0) return false;
      pos += n;
      const uint32_t number = static_cast<uint32_t>(tag >> 3);
      if (seen) {
        namespace TensorProto = fields::TensorProto;
        if (number == TensorProto::kFloatData || number == TensorProto::kDoubleData) {
          ++seen->typedOccurrences;
          seen->typedField = number;
        } else if (number == TensorProto::kRawData || number == TensorProto::kInt32Data || number == TensorProto::kStringData ||
                   number == TensorProto::kInt64Data || number == TensorProto::kUint64Data) {
          ++seen->otherValues;
        }
      }
      switch (tag & 7) {
        case wire::kVarint: {
          uint64_t v;
          n = wire::readVarint(image_ + pos, avail(), &v);
          if (n == 0) return false;
          pos += n;
          if (seen && number == fields::TensorProto::kDataType) seen->dataType = v;
          break;
        }
        case wire::kFixed64:
          pos += 8;
          break;
        case wire::kFixed32:
          pos += 4;
          break;
        case wire::kLen: {
          uint64_t len = 0;
          n = wire::readVarint(image_ + pos, avail(), &len);
          if (n == 0) return false;
          pos += n;
          if (len > end - pos) return false;
          const Kind k = child(kind, number);
          if ((k == kBlob || k == kTyped) && len >= o_.skipAtLeast && (k == kBlob || skippedTyped(seen))) {
            out_.skipped.push_back({pos, len});
            if (k == kTyped) {
              seen->skipped = out_.skipped.size() - 1;
              seen->present = copied_ > pos ? std::min(len, copied_ - pos) : 0;
            }
            copied_ = std::max(copied_, pos + len);  // leave the payload unread
          } else if (k != kBlob && k != kTyped && k != kOther) {
            if (!walk(pos, pos + len, k, depth + 1)) return false;
          }
          pos += len;
          break;
        }
        default:
          return false;
      }
    }
    return pos == end;
  }

  Result<Skim> run() {
    // On malformed structure (or a file that is not ONNX) the rest is read as it is and
    // parseModel() says exactly what is wrong; payloads already skipped stay unread,
    // and the parser never reads payload bytes.
    walk(0, size_, kModel, 0);
    if (ioError_ || !need(size_)) {
      return makeError(ErrorCode::InvalidModel, "the file could not be read past byte " + std::to_string(copied_),
                       static_cast<int64_t>(copied_));
    }
    return std::move(out_);
  }

 private:
  ByteReader& in_;
  uint64_t size_;
  uint8_t* image_;
  SkimOptions o_;
  // Whether a typed payload may be skipped: the tensor's first store of values, and packed
  // (walk() reads it back if another store follows or the type is not the field's).
  static bool skippedTyped(const TensorSeen* seen) { return seen && seen->typedOccurrences == 1 && seen->otherValues == 0; }

  uint64_t copied_ = 0;
  bool ioError_ = false;
  Skim out_;
};

}  // namespace

bool Skim::skippedRange(uint64_t offset, uint64_t length) const {
  auto it = std::upper_bound(skipped.begin(), skipped.end(), offset,
                             [](uint64_t off, const SkippedPayload& s) { return off < s.offset; });
  if (it == skipped.begin()) return false;
  --it;
  return offset >= it->offset && offset + length <= it->offset + it->length && length > 0;
}

Result<Skim> skimModel(ByteReader& in, uint64_t size, uint8_t* image, const SkimOptions& options) {
  Skimmer s(in, size, image, options);
  return s.run();
}

}  // namespace ql::onnx
