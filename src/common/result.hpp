// Errors as values: every fallible call in the core returns Result<T>.
#pragma once
#include <cstdint>
#include <string>
#include <utility>

namespace ql {

enum class ErrorCode : int {
  Ok = 0,
  InvalidModel,         // bytes are not a well-formed ONNX ModelProto
  UnsupportedDtype,     // a tensor type we do not read (reported, never misread)
  MissingExternalData,  // external data file or range could not be resolved
  InvalidArgument,      // a caller passed something unusable (bad option, index)
  Unsupported,          // well-formed but outside what we handle (layout, op)
  UnsafeExternalData,   // an external data location outside the model's folder (absolute, '..', drive, NUL)
  InvalidGraph,         // a graph the ONNX spec forbids: a name assigned twice, an undefined input, a cycle
};

// Stable names used by the JS API and the CLI ("INVALID_MODEL", ...).
const char* errorCodeName(ErrorCode code);

struct [[nodiscard]] Error {
  ErrorCode code = ErrorCode::Ok;
  std::string message;
  int64_t offset = -1;  // byte offset in the model file where it applies, or -1

  bool ok() const { return code == ErrorCode::Ok; }
  // "message (at byte N)" when the offset is known.
  std::string describe() const;
};

inline Error makeError(ErrorCode code, std::string message, int64_t offset = -1) {
  return Error{code, std::move(message), offset};
}

template <class T>
class [[nodiscard]] Result {
 public:
  Result(T value) : value_(std::move(value)) {}      // NOLINT: implicit by design
  Result(Error error) : error_(std::move(error)) {}  // NOLINT
  bool ok() const { return error_.ok(); }
  const Error& error() const { return error_; }
  T& value() { return value_; }
  const T& value() const { return value_; }
  T* operator->() { return &value_; }
  const T* operator->() const { return &value_; }

 private:
  T value_{};
  Error error_{};
};

}  // namespace ql
