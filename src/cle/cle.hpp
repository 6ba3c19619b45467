// Cross Layer Equalization (Nagel et al. 2019, "Data-Free Quantization Through
// Weight Equalization and Bias Correction", sections 4.1 and 4.2), with the
// BatchNorm folding and ReLU6 handling it needs, writing the equalized model.
// Layers equalized: Conv, ConvTranspose, Gemm (alpha and beta not 0) and MatMul
// (weight of rank 2 on the right) of the main graph, with an unquantized float32
// weight stored in the file, used by that layer alone and not reached through other
// ops, and a bias, if any, that is a float32 constant with one value per output
// channel. Every other layer gets a stop with the reason. Each step lives in its own
// file (see cle.cpp). Recurrent layers (LSTM, GRU, RNN) are never equalized, and a
// sequence that reaches one ends there (kRecurrentStop): their gates pass W x + R h
// through sigmoid and tanh, which do not commute with a per-channel scale, and R feeds
// each step's output back into the next.
//
// Steps, in order:
//  1. BatchNormalization (inference mode, constant parameters, running statistics
//     unused) after a Conv / ConvTranspose / Gemm / MatMul(+Add) is folded:
//     W' = W*g/s per output channel, b' = beta + (b - mean)*g/s, s = sqrt(var + eps).
//     BatchNormalization before a layer is folded where exact (Conv of group 1 without
//     padding, Gemm without transA, MatMul): W'[:, i] = W[:, i]*g_i/s_i,
//     b' = b + W.(beta - mean*g/s). A MatMul without a bias Add takes neither.
//  2. Sequences: layers joined by a single-consumer path through ops that commute with
//     a positive per-channel scale (Relu, PRelu, LeakyRelu, Clip(0, inf), Identity,
//     Dropout; a zero Pad that pads no channel, MaxPool, AveragePool, GlobalAveragePool,
//     GlobalMaxPool unless throughPadPool is off; Clip(0, 6) once replaced by Relu,
//     unless keepRelu6). The next layer must have the same channel layout and count.
//     Anything else ends the sequence, and each stop is reported with its reason.
//  3. Scaling, with r = max|w| per channel: pairs s_i = sqrt(r1_i / r2_i) (layer 1's
//     output channel i divided by s_i, layer 2's input channel i multiplied by it);
//     a depthwise layer between two others takes the cube-root form
//     s12 = r0 / cbrt(r0 r1 r2), s23 = cbrt(r0 r1 r2) / r2 (unless triples is off).
//     A near-dead channel is not balanced (deadChannelRatio). Sweeps repeat until
//     every scale of a sweep is within 1 +- tolerance, or maxIterations.
//  4. High-bias absorption where a BatchNorm folded after layer 1 gives beta, gamma and
//     a Relu (or a replaced ReLU6) follows: c = max(0, beta - 3|gamma|) (scaled with
//     the layer), b1 -= c, b2 += W2 c summed over the kernel. Only where exact for
//     values above c: the path after the Relu holds only MaxPool / Identity / Dropout,
//     layer 2's input is not padded (no Conv padding, no ConvTranspose, no Gemm
//     transA), and layer 2 has a bias or can take one (not a MatMul without a bias Add).
#pragma once
#include <cstdint>
#include <memory>
#include <string>
#include <vector>

#include "common/result.hpp"
#include "onnx/skim.hpp"
#include "onnx/writer.hpp"
#include "stats/stats.hpp"

namespace ql::cle {

struct Options {
  bool keepRelu6 = false;  // true: ReLU6 ends a sequence instead of becoming Relu
  bool biasAbsorption = true;
  bool triples = true;         // cube-root form around depthwise layers
  bool throughPadPool = true;  // sequences pass through zero Pad, MaxPool, AveragePool, GlobalAveragePool, GlobalMaxPool
  // Sweeps over a sequence (each a few passes over its range matrices). 0: no scaling;
  // BatchNorm is still folded, ReLU6 replaced and high bias absorbed.
  int maxIterations = 50;
  double tolerance = 1e-3;  // a sweep with every |s - 1| below this ends the iteration
  // A channel whose range is below this fraction of the largest range of the same
  // side (output or input channels) of its layer is near-dead, and so is a range of 0
  // (real models have max|w| of 1e-12 .. 1e-20). It is not balanced against its ~0
  // range (that needs scales of 1e10, and a near-dead output channel's bias divided by
  // 1e-10 is an activation no INT8 grid holds); its live side is only brought down to
  // the largest balanced range of the link's live channels.
  double deadChannelRatio = 1e-6;
  int histogramBins = 128;
  // Float32 copies of the weights it changes that CLE may hold, in bytes: within this
  // budget a weight is read once and scaled in place; beyond it (a VGG classifier's 411 MB)
  // a weight stored as raw data is read again, a piece at a time with its scalings replayed,
  // whenever it is needed (the middle layers of sequences of 1x1 kernels or matrices are
  // held all the same). The same bytes are written either way; 0 streams every such weight.
  uint64_t holdBytes = uint64_t{128} << 20;
};

// One layer whose weights changed. `before` is after BatchNorm folding and before
// scaling: the weights a quantizer would see without equalization.
struct LayerChange {
  std::string name;  // display name of the node
  std::string op;
  std::string weightName;
  size_t nodeIndex = 0;
  bool batchNormFolded = false;
  bool biasAdded = false;  // it had no bias; folding or absorption gave it one
  stats::LayerStats before, after;
  std::vector<float> outScale;  // output channel c divided by outScale[c]
  std::vector<float> inScale;   // input channel c multiplied by inScale[c]
  std::vector<float> absorbed;  // high bias moved out of each output channel (empty: none)
  // Empty, or why `before` could not be computed (it is then all zeros); the layer is
  // equalized all the same. The message names the layer.
  std::string beforeError;
};

struct Sequence {
  std::vector<size_t> layers;      // indices into Report::layers, in graph order
  std::vector<std::string> links;  // ops between layer k and k+1, "Relu, MaxPool"; "" when direct
  std::vector<bool> triple;        // per layer: balanced as the depthwise middle of a triple
  int iterations = 0;
  bool converged = false;
  double lastChange = 0;  // largest |s - 1| of the last sweep
};

// The reason given for a recurrent layer and for a sequence that reaches one.
inline constexpr const char* kRecurrentStop =
    "recurrent layer: its gates (sigmoid, tanh) do not commute with per-channel scaling, and R feeds its output back";

// Where a sequence ended, or a layer was left out, and why.
struct Stop {
  std::string layer;  // the layer whose output path ends here
  std::string node;   // the node that ends it (may be the layer itself)
  std::string op;
  std::string reason;
};

struct FoldedBatchNorm {
  std::string node;
  std::string layer;
  bool before = false;  // folded into the layer that follows it
};

struct DeadChannel {
  std::string layer;
  uint32_t channel = 0;
  bool output = true;  // an output channel of `layer` (else an input channel)
  float range = 0;
};

struct Report {
  size_t layersSeen = 0;  // weight layers discovered in the model
  std::vector<LayerChange> layers;
  std::vector<Sequence> sequences;
  std::vector<Stop> stops;
  std::vector<FoldedBatchNorm> foldedBatchNorms;
  std::vector<std::string> relu6Replaced;  // Clip nodes now Relu
  std::vector<std::string> relu6Kept;      // Clip(0, 6) nodes that ended a sequence (keepRelu6)
  std::vector<DeadChannel> deadChannels;
  size_t biasAbsorptions = 0;  // links where high bias was absorbed
  bool changed() const { return !layers.empty(); }
};

// The equalized ONNX file, as pieces (onnx::WrittenModel): runs of the input copied
// through and the bytes written anew (edited nodes, changed tensors, length prefixes),
// which live in `edit`. When nothing changed it is one piece: the whole input.
struct Equalized {
  onnx::WrittenModel written;
  std::unique_ptr<onnx::GraphEdit> edit;  // the pieces point into it: kept where it is
  Report report;
  // The bytes of float32 weight copies CLE held (EqLayer::w) when it wrote the model (they
  // are held from when taken until then): the middle layers of sequences of 1x1 kernels
  // and matrices, and weights not stored as raw float32 data. Other weights are read again
  // a piece at a time. For tests of the memory CLE takes.
  uint64_t heldWeightBytes = 0;
  // The whole file in one buffer; `input` is the bytes given to equalize().
  std::vector<uint8_t> bytes(const uint8_t* input) const { return written.assemble(input); }
};

// A model whose initializers are stored as external data: how to read its data files,
// and the one new data file the written model's external tensors point to. With it, the
// float32 weights in external data are equalized as inline ones are (their small
// external tensors, 64 KB or less each, are read at the start; weights as CLE takes
// them), and Equalized::written.data plans the new data file: every external initializer
// of the main graph that is kept, changed ones as computed, the others copied from their
// input file, aligned as onnx::kExternalAlign* say. Inline tensors stay inline. External
// data in a sub-graph or a node attribute is UNSUPPORTED here. Without it (null), an
// external weight is not equalized (a stop says why) and external references are copied.
struct ExternalIo {
  onnx::ExternalReader* reader = nullptr;
  std::string dataLocation;  // the new data file, relative to the written model: a plain file name
};

// Equalizes the model file `data,size`. The result's input pieces are offsets in it.
Result<Equalized> equalize(const uint8_t* data, size_t size, const Options& options = {}, const ExternalIo* external = nullptr);

// The same, for a model read through `in` (`size` bytes): its structure is skimmed into
// `image` (`size` bytes, its large payloads left unread and untouched, as for analysis),
// and the weights of the layers CLE reads are read through `in` as it takes them. The
// result's input pieces are offsets in the file; it is byte for byte what the other
// form writes. `image` may be freed once this returns.
// `skim` says which payloads stay unread (tests and fuzzing use small ones).
Result<Equalized> equalize(onnx::ByteReader& in, uint64_t size, uint8_t* image, const Options& options = {},
                           const onnx::SkimOptions& skim = {}, const ExternalIo* external = nullptr);

}  // namespace ql::cle
