#include "onnx/skim.hpp"

#include <algorithm>

#include "onnx/fields.hpp"
#include "onnx/wire.hpp"

namespace ql::onnx {

namespace {

// The message types on the way from ModelProto to a TensorProto's raw_data
// (fields named in onnx/fields.hpp). Everything else is copied without a look inside.
enum Kind { kModel, kGraph, kNode, kAttribute, kTensor, kFunction, kTrainingInfo, kBlob, kOther };

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
      return number == TensorProto::kRawData ? kBlob : kOther;
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
      switch (tag & 7) {
        case wire::kVarint: {
          uint64_t v;
          n = wire::readVarint(image_ + pos, avail(), &v);
          if (n == 0) return false;
          pos += n;
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
          const Kind k = child(kind, static_cast<uint32_t>(tag >> 3));
          if (k == kBlob && len >= o_.skipAtLeast) {
            out_.skipped.push_back({pos, len});
            copied_ = std::max(copied_, pos + len);  // leave the payload unread
          } else if (k != kBlob && k != kOther) {
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
