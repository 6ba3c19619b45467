#include "common/result.hpp"

namespace ql {

const char* errorCodeName(ErrorCode code) {
  switch (code) {
    case ErrorCode::Ok:
      return "OK";
    case ErrorCode::InvalidModel:
      return "INVALID_MODEL";
    case ErrorCode::UnsupportedDtype:
      return "UNSUPPORTED_DTYPE";
    case ErrorCode::MissingExternalData:
      return "MISSING_EXTERNAL_DATA";
    case ErrorCode::InvalidArgument:
      return "INVALID_ARGUMENT";
    case ErrorCode::Unsupported:
      return "UNSUPPORTED";
    case ErrorCode::UnsafeExternalData:
      return "UNSAFE_EXTERNAL_DATA";
    case ErrorCode::InvalidGraph:
      return "INVALID_GRAPH";
  }
  return "UNKNOWN";
}

std::string Error::describe() const {
  if (offset < 0) return message;
  return message + " (at byte " + std::to_string(offset) + ")";
}

}  // namespace ql
