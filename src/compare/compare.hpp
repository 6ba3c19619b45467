// Comparing the weights of two models layer by layer: e.g. a float model against its
// quantized copy (QDQ, QLinearConv, ...) or against a copy optimized elsewhere.
//
// Matching (matchLayers), over the weight layers graph::findLayers finds, in order:
//  1. weight: the same stored weight tensor name (and sub-graph path). A name held by
//     several layers of a side (a shared weight) pairs its i-th user in A with its
//     i-th user in B, in graph order.
//  2. name: among layers still unmatched, the same node name (and path), same i-th
//     rule. Names QuantLens made up for unnamed nodes ("Conv#3") never match. A recurrent
//     node's two layers (graph::Recurrent) pair W with W and R with R (rules 2 to 5).
//  3. weight-normalized: among layers still unmatched, the same weight name after
//     normalizedName (the quantizer's suffixes removed), when exactly one unmatched
//     layer of each side has that normalised name; ambiguous names are not paired.
//  4. name-normalized: the same for node names.
//  5. position: the k-th still-unmatched layer of A (graph order) with the k-th
//     still-unmatched layer of B, paired only when their op family (opFamily) and
//     weight element count (and, for recurrent layers, their part W or R) agree;
//     otherwise both stay unmatched.
//  A pair found by rules 1 to 4 is kept even when the weights differ in shape; it is
//  then reported as not comparable, with the reason.
//
// Comparable (incompatibility): the element counts are equal and either the stored
// shapes or the channel layouts ([outer][rows][channels][inner]) are equal. Values are
// then compared element by element in stored order, channels by A's layout.
//
// Values: each weight as the analysis sees it (analysis::layerWeightValues: converted
// to float32 and dequantized with DequantizeLinear's float32 formula). With
// d = double(b) - double(a), per output channel of A and for the whole tensor:
//   maxAbsDiff = max |d|, rmsDiff = sqrt(sum d^2 / n),
//   sqnr = stats::sqnrDb(sum a^2, sum d^2) = 10 log10(sum a^2 / sum d^2) dB, +inf when
//   the weights are identical; squares and sums in double;
// and each side's per-channel min / max (float32). A weight that cannot be read (type,
// external data, bad quantization parameters) or holds NaN / infinity makes the
// pair not comparable, with the reason; nothing here aborts on bad input.
#pragma once
#include <cstdint>
#include <memory>
#include <string>
#include <string_view>
#include <vector>

#include "analysis/analyze.hpp"
#include "common/result.hpp"
#include "graph/layers.hpp"
#include "onnx/model.hpp"
#include "onnx/skim.hpp"
#include "stats/layout.hpp"

namespace ql::compare {

enum class MatchedBy { Weight, Name, Position, WeightNormalized, NameNormalized };
// "weight", "name", "position", "weight-normalized", "name-normalized"
const char* matchedByName(MatchedBy by);

// A tensor or node name without the suffixes quantizers append to it, removed from the
// end as long as one applies (and something is left), e.g. "conv1.weight_quantized" ->
// "conv1.weight", "/stage1/Conv_quant" -> "/stage1/Conv". The suffixes, as written by
// onnxruntime's quantization tools (onnxruntime/python/tools/quantization):
//   "_quantized" (quant_utils TENSOR_NAME_QUANT_SUFFIX: quantized initializers, QDQ and
//     QOperator), "_quant" (QLinearConv / ConvInteger / QLinearMatMul / MatMulInteger
//     nodes: node.name + "_quant"), "_QuantizeLinear", "_DequantizeLinear",
//     "_QuantizeLinear_Output", "_DequantizeLinear_Output", "_QuantizeLinear_Input"
//     (QDQ node and value names), "_scale", "_zero_point" (quantization parameters),
//   "_Q<bits>" and "_DQ_Q<bits>" (MatMulNBits weights and nodes, e.g. "_Q4"; "_DQ_Q4"
//     in its QDQ format), "_scales", "_zero_points", "_Bnb4", "_absmax" (block-wise
//     weight quantizers' tensors).
std::string normalizedName(std::string_view name);

// The family of a standard-domain op in the op table (graph/opspec.hpp), with Gemm
// counted as "matmul": "conv" (Conv, QLinearConv, ConvInteger), "convtranspose",
// "matmul" (MatMul, Gemm, MatMulInteger, QLinearMatMul); otherwise (LSTM, GRU and RNN too,
// whose gates differ) the op itself.
std::string_view opFamily(std::string_view op);

struct Match {
  size_t a = 0, b = 0;  // positions in each side's layer list
  MatchedBy by = MatchedBy::Weight;
};

struct Matching {
  std::vector<Match> pairs;                    // ordered by A's position
  std::vector<size_t> unmatchedA, unmatchedB;  // graph order
};

Matching matchLayers(const std::vector<graph::Layer>& a, const std::vector<graph::Layer>& b);

// Why two layers' weights cannot be compared element by element, or "" when they can.
std::string incompatibility(const graph::Layer& a, const graph::Layer& b);

struct PairDiff {
  bool comparable = false;
  std::string reason;  // when not comparable
  analysis::QuantInfo quantA, quantB;
  uint64_t channels = 0;  // A's output channels
  // per channel of A's layout
  std::vector<double> maxAbsDiff, rmsDiff, sqnr;
  std::vector<float> minA, maxA, minB, maxB;
  // whole tensor
  double tensorMaxAbsDiff = 0, tensorRmsDiff = 0, tensorSqnr = 0;
  // B is A rescaled per channel (what Cross Layer Equalization and BatchNorm folding do:
  // B[o, j] = A[o, j] * u_o * v_in(j), u_o of any sign, v > 0): every element of B is zero
  // exactly where A's is, each output channel keeps or flips every sign together, and the
  // log-ratios log|B/A| spread the same within every output channel (their variance is
  // the input-side factors', the same for all channels), while B is not A. `rescale` holds
  // then, with per output channel the factor exp(mean log|B/A|) (its sign: the channel's).
  // A grouped Conv's output channels read only the input channels of their group, so the
  // spreads need only agree within each group (rescaleGroups, below).
  bool rescale = false;
  std::vector<double> rescaleFactor;
};

// The numbers for two value arrays of layoutA.elementCount() floats each. `groups`: the
// groups of output channels that share input channels (a grouped Conv's; rescaleGroups).
PairDiff diffValues(const float* a, const float* b, const stats::ChannelLayout& layoutA, uint64_t groups = 1);

// The groups the rescale test compares spreads within: a grouped Conv's or ConvTranspose's
// `group` (output channels in groups of O/g, each reading its group's input channels), 1 for
// every other layer.
uint64_t rescaleGroups(const graph::Layer& a);

// diffValues over values that arrive in pieces, in stored order: each channel's sums
// take its elements in the same order whatever the pieces, so the numbers are the same,
// bit for bit (diffValues is one piece of every element).
class DiffBuilder {
 public:
  explicit DiffBuilder(const stats::ChannelLayout& layoutA, uint64_t groups = 1);
  // Elements [first, first + count) of both weights; a piece starts where the last one
  // ended (false otherwise, or past the end, and nothing is added).
  bool add(const float* a, const float* b, uint64_t first, uint64_t count);
  uint64_t next() const { return next_; }
  PairDiff finish();

 private:
  stats::ChannelLayout L_;
  uint64_t groups_ = 1;
  PairDiff d_;
  std::vector<double> signal_, noise_;
  uint64_t next_ = 0;
  // The rescale test (PairDiff::rescale): per channel, sums of log|B/A| and its square over
  // non-zero elements, and how many kept or flipped their sign; `broken_` once an element
  // rules a rescale out (then no more logarithms are taken).
  std::vector<double> logSum_, logSq_;
  std::vector<uint64_t> same_, flipped_;
  bool broken_ = false;
  struct ChannelSums;  // one channel's sums and the update of an element pair
  ChannelSums sums(uint64_t ch) const;
  void keep(uint64_t ch, const ChannelSums& s);
  bool rescaleElement(float x, float y, uint64_t ch);
  // inner == 1 (channels last): nr rows of C channels from ch0, C elements apart
  void sumsRows(const float* a, const float* b, uint64_t ch0, uint64_t C, uint64_t nr);
  void rescaleRow(const float* a, const float* b, uint64_t ch0, uint64_t len);
};

// Reads, dequantizes and compares one pair. `externalA` / `externalB`: the weight's
// bytes when stored as external data (see analysis::analyzeLayer), else empty.
PairDiff comparePair(const graph::Layer& a, const graph::Layer& b, wire::Bytes externalA = {}, wire::Bytes externalB = {});

// One parsed model and its layers. The bytes must outlive it.
struct Side {
  std::unique_ptr<onnx::Model> model;  // held by pointer: layers point into it
  graph::Discovery discovery;
};
Result<Side> openSide(const uint8_t* bytes, size_t size);

// A side read through `in` into `image` (`size` bytes, the caller's): skimmed
// (onnx::skimModel), parsed, its layers found, and everything but the layers' large
// weights read (analysis::settleSkim). `skim` receives what stayed in the file: those
// weights are then read a piece at a time (analysis::StreamPlan says where).
Result<Side> openSkimmedSide(onnx::ByteReader& in, uint64_t size, uint8_t* image, onnx::Skim* skim);

// One pair compared with weights that are not all in memory (streamed from the model
// file or from external data), with the same numbers as comparePair, bit for bit.
// Each side's values come one of three ways (feedOf):
//   Memory: in the parsed model: read whole (layerWeightValues) when the stream starts;
//   Pieces: stored bytes read a piece at a time and converted and dequantized per piece
//     (a weight of a readable element type with as many stored bytes as its layout
//     needs, dequantized per tensor, per axis or per block by DequantizeLinear);
//   Whole: anything else (MatMulNBits codes, packed 4-bit bytes, sizes that do not
//     agree): its stored bytes handed over whole (hold), read as comparePair reads them,
//     so the result, or the reason it cannot be compared, is comparePair's.
// Use: PairStream s(a, b, feedA, feedB); hold() each Whole side; while needsPieces(),
// feed() pieces of pieceElements() elements in order; finish().
class PairStream {
 public:
  enum class Feed { Memory, Pieces, Whole };
  // How a layer's weight is fed when it is `streamed` (not in memory) and its file has
  // `available` bytes for it (0: unknown, for external data that states no length).
  static Feed feedOf(const graph::Layer& L, bool streamed, uint64_t available);
  // Stored bits per element of a Pieces side (4 for int4 / uint4): elements
  // [first, first + count) are bytes [first * bits / 8, ceil((first + count) * bits / 8)).
  static uint64_t storedBits(const graph::Layer& L);
  static constexpr uint64_t kPieceElements = uint64_t{1} << 20;

  // The pair must be compatible (incompatibility(a, b) empty).
  PairStream(const graph::Layer& a, const graph::Layer& b, Feed feedA, Feed feedB);
  // A Whole side's stored bytes (side 0: A, 1: B).
  void hold(int side, wire::Bytes stored);
  // A side whose bytes could not be read: the pair is not comparable, for this reason.
  void fail(int side, std::string reason);
  bool needsPieces() const;
  uint64_t elements() const { return a_->layout.elementCount(); }
  // Elements [first, first + count): the stored bytes of each Pieces side (empty for
  // the others). Pieces come in order; count is even except for the last piece.
  Error feed(wire::Bytes a, wire::Bytes b, uint64_t first, uint64_t count);
  PairDiff finish();

 private:
  struct Values {
    Feed feed = Feed::Memory;
    std::vector<float> held;  // Memory, Whole
    std::string error;        // why the side cannot be compared ("" when it can)
    bool finite = true;
    analysis::QuantInfo quant;
    analysis::Dequantizer dq;  // Pieces
    int32_t dataType = 0;      // Pieces: the stored element type
    std::vector<float> piece;  // Pieces: the values of the piece in hand
  };
  const float* values(Values& v, wire::Bytes stored, uint64_t first, uint64_t count);
  const graph::Layer *a_, *b_;
  Values va_, vb_;
  DiffBuilder diff_;
};

// Two models, matched; compare pairs one at a time with pair(k) (or all with compareAll).
class Comparison {
 public:
  Comparison(Side a, Side b);
  const Side& a() const { return a_; }
  const Side& b() const { return b_; }
  const Matching& matching() const { return matching_; }
  PairDiff pair(size_t k, wire::Bytes externalA = {}, wire::Bytes externalB = {}) const;

 private:
  Side a_, b_;
  Matching matching_;
};

// Convenience: open both models, match, compare every pair (inline weights only).
// Errors (a model that does not parse) say which side: "model A: ...".
struct FullComparison {
  std::unique_ptr<Comparison> comparison;
  std::vector<PairDiff> pairs;  // parallel to comparison->matching().pairs
};
Result<FullComparison> compareModels(const uint8_t* a, size_t aSize, const uint8_t* b, size_t bSize);

}  // namespace ql::compare
