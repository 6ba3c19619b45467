// Per-output-channel weight statistics and data-free quantization error.
//
// Definitions (each lives here and only here):
//  - symmetric fake quantization to b bits: qmax = 2^(b-1) - 1, scale s = absMax / qmax
//    (float32), q(x) = clamp(roundHalfEven(x * (1/s)), -qmax, qmax) * s, all in float32;
//    a zero (or subnormal-reciprocal) scale quantizes everything to 0. (Since the
//    scale comes from the absMax of the values quantized, the clamp never binds.)
//    Per-tensor: absMax over the tensor; per-channel: absMax of the channel.
//  - SQNR = 10 log10(sum x^2 / sum (x - q(x))^2) dB; the error x - q(x) is float32,
//    squares and sums are double; +inf when nothing is lost (noise 0).
//    (The fast path squares in float32 and sums in double; channels whose absMax is
//    below 1e-12, where float32 squares would underflow, take an all-double path.)
//  - AIMET's problematic-channel rule (stats/outliers.hpp) on the channel ranges
//    max_c - min_c: relative range r_c = range_c / (smallest non-zero channel range);
//    flagged when r_c > Q3 + 1.5 (Q3 - Q1), quantiles by linear interpolation (numpy's default).
//  - block-wise symmetric INT4 (schemes "int4Block<B>"): the reduction elements of one
//    output channel (every element of that channel, in the stored tensor's memory order:
//    for layout [outer][rows][channels][inner], element (o, r, c, i) of channel
//    o*channels + c is its k-th with k = r*inner + i) are cut into blocks of B
//    consecutive k, block b holding k in [b*B, min((b+1)*B, E)), E = rows*inner (a last
//    partial block is its own block). Each block is quantized like a channel to 4 bits:
//    s = block absMax / 7 (float32), codes roundHalfEven(x * (1/s)) clamped to +-7, the
//    same zero-scale rule. Noise: the error x - q(x) in float32, its square and sums in
//    double. SQNR as above, with the channel's (or tensor's) signal sum x^2 of the
//    per-channel schemes. So for a Conv [O, I/g, kh, kw] the blocks run along the
//    flattened I/g*kh*kw; for Gemm [N, K] (transB) along K; for MatMul [K, N] along K;
//    for a grouped ConvTranspose {g, I/g, O/g, k} along the flattened I/g*k of the
//    channel's group. Block sizes 32 and 128 are always measured; Options::blockSize
//    adds one more (when it is neither).
//  - histogram: `bins` equal bins over [tensor min, tensor max];
//    bin = clamp(int((x - min) * (bins / (max - min))), 0, bins - 1), float32.
#pragma once
#include <array>
#include <cstdint>
#include <memory>
#include <string>
#include <vector>

#include "common/result.hpp"
#include "stats/layout.hpp"

namespace ql::stats {

enum Scheme : int { kInt8PerTensor = 0, kInt8PerChannel = 1, kInt4PerTensor = 2, kInt4PerChannel = 3, kSchemes = 4 };
const char* schemeName(int scheme);  // "int8PerTensor", ...
int schemeBits(int scheme);
bool schemePerChannel(int scheme);

double sqnrDb(double signal, double noise);
float symmetricScale(float absMax, int bits);
double quantile(std::vector<double> sortedOrNot, double q);  // linear interpolation

// Block-wise INT4: the block sizes always measured, and the largest one accepted.
constexpr uint64_t kDefaultBlockSizes[2] = {32, 128};
constexpr uint64_t kMaxBlockSize = uint64_t{1} << 20;
std::string blockSchemeName(uint64_t blockSize);  // "int4Block32"
// The user's block size as given (a JS number, a CLI argument): a whole number from 1
// to kMaxBlockSize, or an InvalidArgument error that says so. The one check of it.
Result<uint64_t> checkBlockSize(double blockSize);

struct Options {
  int histogramBins = 128;
  uint64_t blockSize = 0;  // one more block size to measure, 0 for only the defaults
};
// The block sizes measured under `options`: 32, 128, then blockSize when it is another.
std::vector<uint64_t> blockSizes(const Options& options);

struct BlockSqnr {
  uint64_t blockSize = 0;
  std::string scheme;              // blockSchemeName(blockSize)
  double sqnr = 0;                 // dB over the whole tensor, +inf when lossless
  std::vector<float> channelSqnr;  // dB per output channel
};

struct LayerStats {
  uint64_t channels = 0;
  uint64_t elementsPerChannel = 0;
  // per output channel
  std::vector<float> min, max, absMax, range;  // exact float32 values of the weights
  std::vector<double> mean, std, relativeRange;
  std::array<std::vector<float>, kSchemes> channelSqnr;  // dB, +inf when lossless
  // whole tensor
  float tensorMin = 0, tensorMax = 0, tensorAbsMax = 0;
  double tensorMean = 0, tensorStd = 0;
  std::array<double, kSchemes> sqnr{};
  std::vector<BlockSqnr> blockSqnr;  // one per blockSizes(options), in that order
  // histogram
  float histMin = 0, histMax = 0;
  std::vector<uint32_t> histogram;
  // outliers
  std::vector<uint32_t> outliers;
  double q1 = 0, q3 = 0, outlierThreshold = 0;
};

// How the values a builder is fed are stored: little-endian float32, IEEE float16 or
// bfloat16; the last two are converted to float32 as they are read, exactly.
enum class Storage { Float32, Float16, BFloat16 };

// `values`: float32 little-endian, laid out as `layout`; need not be aligned.
Result<LayerStats> computeLayerStats(const uint8_t* values, const ChannelLayout& layout, const Options& options = {});

// ---- one layer in parts ---------------------------------------------------------
// A layer whose output channels each lie contiguous in memory and are read as runs
// (layout rows == 1 and inner > 1: Conv [O, I/g, k...], Gemm [N, K] with transB) can be
// computed in parts over disjoint ranges of output channels [first, end), each part fed
// only its channels' elements (channel ch holds elements [ch*inner, (ch+1)*inner)), and
// the parts merged into the LayerStats a whole-layer builder computes, bit for bit:
// every per-channel value there is computed from the channel's own elements, the
// per-tensor ones only need the tensor's min and max before pass 2, and the tensor-level
// results are sums over the channels in channel order, which the merge does.
//   auto p = LayerStatsBuilder::createPart(layout, options, first, end);   // per part
//   pass 1: p->feed(1, ...) for each piece of its elements; x_i = p->extremes()
//   auto whole = LayerStatsBuilder::combineExtremes(layout, {x_1, ..., x_k});
//   p->endPass(1, &whole.value())   // the whole layer's errors (NaN, magnitude), in every part
//   passes 2 (and 3 when p->passes() says so; a part's own decision) as usual
//   parts_i = p->takePart(); LayerStatsBuilder::mergeParts(layout, options, {parts...})
// Row-mode layouts (inner == 1, or rows > 1: a channel's elements are strided) are not
// split (Unsupported).

// Pass 1's extremes over output channels [firstChannel, endChannel): the smallest of the
// channels' minima and the largest of their maxima (each the first such in channel
// order), and the count of NaN or infinite weights among them.
struct PassExtremes {
  uint64_t firstChannel = 0, endChannel = 0;
  float min = 0, max = 0;
  uint64_t nonFinite = 0;
};

// Pass 2's double sums per channel: sum (x - mean)^2, sum x^2, then the noise
// sum (x - q(x))^2 of each Scheme in order.
constexpr int kPartAccumulators = 2 + kSchemes;

// A part's results (LayerStatsBuilder::takePart), as plain arrays (they may cross
// between processes as typed arrays): per channel of [firstChannel, endChannel), in
// channel order.
struct LayerStatsPart {
  ChannelLayout layout;  // the whole layer's, and the options it was built with
  Options options;
  uint64_t firstChannel = 0, endChannel = 0;
  float tensorMin = 0, tensorMax = 0;  // the whole tensor's extremes its pass 1 ended with
  std::vector<float> min, max;         // pass 1
  std::vector<double> sum;             // pass 1: sum x per channel
  std::vector<double> acc;             // [channel][kPartAccumulators]
  std::vector<double> blockNoise;      // [block size][channel], the sizes of blockSizes(options) in order
  std::vector<uint32_t> histogram;     // options.histogramBins counts over the whole tensor's bins
};

// Whether `layout` can be computed in parts: ok, or Unsupported saying why not.
Error checkSplittable(const ChannelLayout& layout);
// Where to cut `channels` output channels into min(parts, channels) ranges of
// near-equal counts (differing by one at most): cuts[0] = 0 < cuts[1] < ... = channels;
// range i is [cuts[i], cuts[i+1]). `parts` 0 counts as 1.
std::vector<uint64_t> splitChannels(uint64_t channels, uint64_t parts);

// The same computation over a tensor that arrives in pieces (a file too large to
// hold, read a slice at a time). Pass 1 (min, max, sum) sees every piece, then pass
// 2 (deviation, quantization noise, histogram), then, only when passes() says 3,
// pass 3 (channels whose float32 squares may have underflowed, redone in double).
// Pieces hold whole units of unitElements() values, in any order within a pass.
class LayerStatsBuilder {
 public:
  static Result<LayerStatsBuilder> create(const ChannelLayout& layout, const Options& options = {});
  // A part: output channels [firstChannel, endChannel) of a layer of `layout` (see "one
  // layer in parts" above). Unsupported when checkSplittable refuses the layout,
  // InvalidArgument for an empty or out-of-range channel range.
  static Result<LayerStatsBuilder> createPart(const ChannelLayout& layout, const Options& options, uint64_t firstChannel,
                                              uint64_t endChannel);
  LayerStatsBuilder();
  ~LayerStatsBuilder();
  LayerStatsBuilder(LayerStatsBuilder&&) noexcept;
  LayerStatsBuilder& operator=(LayerStatsBuilder&&) noexcept;

  uint64_t unitElements() const;
  // The elements this builder is fed: [firstElement(), firstElement() + elementCount())
  // of the tensor (the whole tensor, or a part's channels).
  uint64_t firstElement() const;
  uint64_t elementCount() const;
  bool isPart() const;
  int passes() const;  // 2, or 3 once pass 2 has ended and found underflowing channels
  // `values` holds elements [first, first + count) of the tensor, stored as `storage`
  // (a part: the whole tensor's element indices, within its own elements, or an
  // InvalidArgument error).
  Error feed(int pass, const uint8_t* values, uint64_t first, uint64_t count, Storage storage = Storage::Float32);
  // A part ends pass 1 with the whole tensor's extremes (combineExtremes), and returns
  // the error the whole layer's builder returns there (NaN or infinite weights, weights
  // above 1e15), with the same message; without them, or a whole builder given some: an
  // InvalidArgument error.
  Error endPass(int pass, const PassExtremes* whole = nullptr);
  Result<LayerStats> finish();  // a whole builder's results (a part: InvalidArgument)

  // A part's extremes once every piece of pass 1 is fed (before endPass(1)).
  Result<PassExtremes> extremes() const;
  // The whole tensor's extremes from its parts' (any order): InvalidArgument unless they
  // cover the channels of `layout` exactly once.
  static Result<PassExtremes> combineExtremes(const ChannelLayout& layout, std::vector<PassExtremes> parts);
  // A part's results once its last pass has ended (moved out: the builder is spent).
  Result<LayerStatsPart> takePart();
  // The whole layer's statistics from its parts (any order), bit for bit those of a
  // whole-layer builder fed the same values. InvalidArgument when the parts are of
  // another layout or options, malformed, do not cover the channels exactly once, or
  // ended pass 1 with other extremes than their channels' minima and maxima give.
  static Result<LayerStats> mergeParts(const ChannelLayout& layout, const Options& options, std::vector<LayerStatsPart> parts);

 private:
  // `sweeps`: the pass-1 block arrays too (a merge runs no pass).
  static Result<LayerStatsBuilder> make(const ChannelLayout& layout, const Options& options, bool sweeps);
  struct State;
  std::unique_ptr<State> st_;
};

}  // namespace ql::stats
