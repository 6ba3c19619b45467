// Writing the equalized model: the changed weights and biases replace their
// initializers (a shared bias becomes a copy of the layer's own, a layer that gained
// a bias gets a new initializer and input), the gathered node edits are applied, and
// the metadata key quantlens.cle summarizes the report. Everything else is written
// byte for byte (onnx/writer.hpp).
#pragma once
#include <cstdint>
#include <vector>

#include "cle/cle.hpp"
#include "cle/edits.hpp"
#include "cle/layers.hpp"
#include "cle/model_index.hpp"
#include "common/result.hpp"

namespace ql::cle {

// Fills `edit` (the changed tensors' bytes and the node edits) and plans the written
// model as pieces pointing into it. Each changed weight's float32 values move into
// `edit` as they are (no copy).
Result<onnx::WrittenModel> writeEqualized(const uint8_t* data, size_t size, const ModelIndex& index, EqLayers& layers,
                                          ModelEdits& edits, const Report& report, onnx::GraphEdit& edit);

}  // namespace ql::cle
