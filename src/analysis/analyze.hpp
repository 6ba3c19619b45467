// Ties the reader, layer discovery and statistics together, one layer at a time:
// only the graph and the tensor in hand are ever needed.
#pragma once
#include <functional>
#include <string>
#include <vector>

#include "analysis/nbits.hpp"
#include "analysis/stored.hpp"
#include "common/result.hpp"
#include "graph/layers.hpp"
#include "onnx/model.hpp"
#include "onnx/skim.hpp"
#include "onnx/tensor_data.hpp"
#include "stats/input_channels.hpp"
#include "stats/stats.hpp"

namespace ql::analysis {

struct QuantInfo {
  bool present = false;
  std::string via;      // DequantizeLinear, QLinearConv, ...
  std::string intType;  // stored type ("int8", "uint8", "int4", "float8e4m3fn", ...)
  int axis = -1;        // stored-tensor axis of per-axis (or per-block) parameters, -1 per-tensor
  std::vector<double> scale, zeroPoint;
  // Block-wise: codes of `bits` bits, one scale (and zero point) per block of `blockSize`.
  //   MatMulNBits: blocks along K, block b of output channel n at n * ceil(K / blockSize) + b;
  //     `zeroPoint` one per block, or {2^(bits-1)} when the file has none.
  //   DequantizeLinear with block_size (opset 21): blocks along `axis` of the stored weight;
  //     `scale` and `zeroPoint` hold the parameter tensors in their stored order (the
  //     weight's shape with dims[axis] = ceil(dims[axis] / blockSize)); `zeroPoint` is {0}
  //     when the file has none. `bits` is the stored type's width (4, 8; 8 for float8).
  int bits = 0;  // 0: not block-wise
  int64_t blockSize = 0;
  // Every zero point is the stored type's centre: 2^(bits-1) for unsigned codes (uint4,
  // uint8), 0 for signed ones (int4, int8, float8), so the codes are centred on zero.
  bool symmetric = false;
  // ConvInteger / MatMulInteger: the Mul after the op that applies the traced weight scale
  // (graph::Quantization::scaleVia), and why the scale is not known when it was not found
  // (the values are then codes in integer units: scale {1}).
  std::string scaleVia, note;
};

struct LayerAnalysis {
  stats::LayerStats stats;
  QuantInfo quant;
  stats::InputChannelStats inputs;  // per input channel (stats/input_channels.hpp)
  StoredFacts stored;               // for weights stored as 8- or 4-bit codes (present false otherwise)
};

// Where a layer's input channels lie in the values the analysis sees (the stored
// tensor, or MatMulNBits' dequantized [N, K]): graph::Layer's inputAxis and
// channelAxis, and the Conv family's groups.
stats::InputChannelShape inputChannelShape(const graph::Layer& layer);

// How a layer's stored weight values become the float32 values the graph computes
// with (the one definition, shared by the analysis and the model comparison):
// DequantizeLinear's y = (x - zero_point) * scale per element, in float32, with
// per-axis parameters indexed along `quant.axis`, or per-block ones (block_size: element
// i of axis `quant.axis` uses the parameters at i / block_size on that axis, the same
// index on every other axis); absent parameters take their defaults (scale 1 for
// ConvInteger/MatMulInteger, zero point 0). A float8 weight's zero point must be 0 (the
// spec's rule), so y = x * scale. A weight that is not quantized passes through
// unchanged (active() false).
class Dequantizer {
 public:
  // Reads and checks the layer's scale / zero point (1 value, or one per step of the axis).
  static Result<Dequantizer> create(const graph::Layer& layer);
  const QuantInfo& info() const { return info_; }
  bool active() const { return info_.present; }
  // `stored` holds elements [first, first + count) of the weight converted to float32
  // (onnx::convertRaw); writes the dequantized values to `out` (may equal `stored`).
  void apply(const float* stored, uint64_t first, uint64_t count, float* out) const;
  // Block-wise packed codes (MatMulNBits): the stored bytes are whole columns, decoded
  // by applyPacked; stats see columnElements() values per column of columnBytes().
  bool packed() const { return nbitsPacked_; }
  uint64_t columnBytes() const { return nbits_.columnBytes(); }
  uint64_t columnElements() const { return nbits_.K; }
  // `stored` holds columns [firstByte / columnBytes(), ...) whole; writes their values to
  // `out` (columns * K floats).
  Error applyPacked(wire::Bytes stored, uint64_t firstByte, float* out) const;

 private:
  static Result<Dequantizer> createBlocked(const graph::Layer& layer, Dequantizer d);
  QuantInfo info_;
  NBitsShape nbits_;
  bool nbitsPacked_ = false;
  uint64_t inner_ = 1, axisLen_ = 1;     // elements per step of the quantization axis, its length
  uint64_t blockSize_ = 0, blocks_ = 0;  // DequantizeLinear block_size, ceil(axisLen_ / blockSize_)
};

// A whole layer weight as the float32 values the analysis sees (dequantized when the
// graph dequantizes it), checked against the layer's layout. `weightExternal` as for
// analyzeLayer. `quant`, when given, receives the quantization parameters.
Result<std::vector<float>> layerWeightValues(const graph::Layer& layer, wire::Bytes weightExternal, QuantInfo* quant = nullptr);

// Bytes of external data for a tensor, supplied by the caller (files beside the
// model natively and in Node, user-selected files in the browser).
using ExternalResolver = std::function<Result<wire::Bytes>(const onnx::Tensor&, const onnx::ExternalRef&)>;

// One layer analysed in parts of its output channels (stats.hpp, "one layer in parts"),
// each part fed only its channels' stored bytes, perhaps in another worker: the channels
// and the stored bytes of each part.
struct ChannelPart {
  uint64_t firstChannel = 0, endChannel = 0;
  uint64_t firstByte = 0, byteSize = 0;  // the stored bytes of the weight that hold them
};

// A part's results (LayerAnalyzer::takePart), plain arrays: the statistics' and the absMax
// per input channel over the part's elements (float32 values, every input channel of
// the layer).
struct LayerAnalysisPart {
  stats::LayerStatsPart stats;
  std::vector<float> inputAbsMax;
};

// One layer's analysis over weight bytes that arrive in pieces (a tensor read a slice
// at a time from a file too large to hold): every pass sees every piece.
//   auto a = LayerAnalyzer::create(layer, options);
//   for (int pass = 1; pass <= a->passes(); ++pass) { for each piece: a->feed(pass, piece, offset); a->endPass(pass); }
//   auto result = a->finish();
// passes() is 2, or 3 once pass 2 ends with channels to redo in double.
// In parts (a weight of float32, float16 or bfloat16 that is not quantized, of a layout
// stats::checkSplittable accepts), the same with each part's channels:
//   auto cuts = LayerAnalyzer::splitLayer(layer, k);
//   auto p = LayerAnalyzer::createPart(layer, options, availableBytes, cut.firstChannel, cut.endChannel);
//   pass 1 over the part's bytes [cut.firstByte, + cut.byteSize); x_i = p->extremes();
//   auto whole = stats::LayerStatsBuilder::combineExtremes(layer.layout, {x_1, ..., x_k});
//   p->endPass(1, &whole.value());  // every part returns the whole layer's refusal, if any
//   the other passes as above; part_i = p->takePart();
//   auto result = LayerAnalyzer::mergeParts(layer, options, {part_1, ..., part_k});
// gives analyzeLayer's LayerAnalysis bit for bit.
class LayerAnalyzer {
 public:
  // `availableBytes`: how many stored bytes of the weight the caller can supply
  // (nothing is sized from the declared shape before this check).
  static Result<LayerAnalyzer> create(const graph::Layer& layer, const stats::Options& options, uint64_t availableBytes);
  // Whether `layer` can be analysed in parts: ok, or Unsupported saying why not.
  static Error checkSplittable(const graph::Layer& layer);
  // The layer cut into min(parts, output channels) parts of near-equal channel counts
  // (stats::splitChannels), in channel order; checkSplittable's error when it cannot be.
  static Result<std::vector<ChannelPart>> splitLayer(const graph::Layer& layer, uint64_t parts);
  // A part: output channels [firstChannel, endChannel). `availableBytes` as for create:
  // the stored bytes of the whole weight. checkSplittable's error, or InvalidArgument for
  // a channel range that is not a part of the layer.
  static Result<LayerAnalyzer> createPart(const graph::Layer& layer, const stats::Options& options, uint64_t availableBytes,
                                          uint64_t firstChannel, uint64_t endChannel);
  int passes() const;
  uint64_t unitBytes() const;  // pieces hold whole units of this many stored bytes
  uint64_t firstByte() const;  // the first stored byte fed: 0, or a part's first
  uint64_t byteSize() const;   // stored bytes of the whole weight (a part: of its channels)
  // `stored` holds the raw little-endian bytes [firstByte, firstByte + size) of the weight
  // (a part: within its own bytes, or an InvalidArgument error).
  Error feed(int pass, wire::Bytes stored, uint64_t firstByte);
  // Values already converted to float32 (not yet dequantized), elements [first, first + count).
  Error feedFloats(int pass, const float* values, uint64_t first, uint64_t count);
  // `whole`: a part's pass 1 ends with the whole weight's extremes (stats::LayerStatsBuilder::endPass).
  Error endPass(int pass, const stats::PassExtremes* whole = nullptr);
  Result<LayerAnalysis> finish();  // a whole layer's (a part: InvalidArgument)
  // A part's pass-1 extremes (fed, not yet ended), and its results once its last pass ended.
  Result<stats::PassExtremes> extremes() const;
  Result<LayerAnalysisPart> takePart();
  // The layer's analysis from its parts (any order), bit for bit analyzeLayer's.
  // InvalidArgument when they do not cover the channels exactly once or are not this
  // layer's (stats::LayerStatsBuilder::mergeParts); checkSplittable's error.
  static Result<LayerAnalysis> mergeParts(const graph::Layer& layer, const stats::Options& options,
                                          std::vector<LayerAnalysisPart> parts);

 private:
  static Result<LayerAnalyzer> make(const graph::Layer& layer, const stats::Options& options, uint64_t availableBytes,
                                    const uint64_t* channels);  // channels: a part's [first, end), or null
  Error feedValues(int pass, const uint8_t* values, uint64_t first, uint64_t count,
                   stats::Storage storage = stats::Storage::Float32);
  const graph::Layer* layer_ = nullptr;
  int32_t dataType_ = 0;
  size_t elemSize_ = 4;
  bool nibbles_ = false;  // int4 / uint4: two elements per stored byte, pieces start at even elements
  Dequantizer dequant_;
  stats::LayerStatsBuilder builder_;
  stats::InputChannelAbsMax inputs_;
  LayerAnalysis out_;
  StoredCodeCounter codes_;
  std::vector<float> converted_, scratch_, codeScratch_;
};

// Analyses one layer. `weightExternal` holds the weight's bytes when they are
// external (resolve them with onnx::externalRef first); other small tensors
// (scales, zero points) must be inline.
Result<LayerAnalysis> analyzeLayer(const graph::Layer& layer, wire::Bytes weightExternal, const stats::Options& options);

// Finishes reading a skimmed model (onnx::skimModel, then parseModel and findLayers
// on its image): every payload the skim left unread is read into the image now,
// except the stored weights of discovered layers, which stay in the file to be
// streamed, and payloads of kSettleReadBelow bytes or more that are not layer weights
// (an LLM's embedding table: nothing the analysis reads is that large). Those stay
// unread and are marked Tensor::deferred, so an in-memory read of one is an error,
// never a read of bytes that were not loaded; `skim->skipped` then lists exactly them.
// So a scale, zero point, bias or constant is read like any other tensor.
constexpr uint64_t kSettleReadBelow = uint64_t{16} << 20;
Error settleSkim(onnx::ByteReader& in, uint8_t* image, onnx::Skim* skim, onnx::Model* model, const graph::Discovery& layers);
// Marks every tensor of `model` (parsed from the skimmed `image`) whose raw_data the skim
// left unread as deferred: settleSkim's last step, alone. Call it right after parseModel:
// a tensor whose one packed float_data or double_data field the skim left unread is given
// that payload as its raw data first (the same little-endian values), so that it is
// streamed, and read, as raw data.
void markDeferred(const uint8_t* image, const onnx::Skim& skim, onnx::Model* model);

// Risk order of layers given their INT8 per-tensor SQNR (NaN for a layer that
// could not be analysed): lowest first, failed layers last, ties in graph order.
std::vector<size_t> rankByRisk(const std::vector<double>& int8PerTensorSqnr);

}  // namespace ql::analysis
