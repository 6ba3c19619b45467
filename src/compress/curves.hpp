// Compressibility (issue 15): the shared vocabulary of the compression methods, the plan
// and the writer. A method turns one layer into a curve of operating points (how many
// parameters remain, how well the weight is reconstructed); the plan picks one point per
// layer for a target; the writer applies the picked points to the model.
//
// Data-free: every figure here comes from the weights alone. The weight reconstruction
// SQNR of a point is 10·log10(‖W‖² / ‖W − Ŵ‖²) in dB (+inf when Ŵ = W, i.e. the full rank or
// every channel kept), Ŵ being the weight the compressed layer(s) compute with.
#pragma once
#include <cstdint>
#include <string>
#include <vector>

namespace ql::compress {

enum class Method {
  WeightSvd,     // W[O, I] ≈ [O, r]·[r, I] (Gemm, MatMul, 1×1 Conv): r·(O + I) parameters
  SpatialSvd,    // k×k Conv: W[O, I, kh, kw] as M[I·kh, O·kw], rank r: (kh×1, I→r) then (1×kw, r→O), r·(I·kh + O·kw)
  ChannelPrune,  // input channels ranked by the L2 norm of their weights; the producer's matching outputs go too
};
const char* methodName(Method method);  // "weight-svd", "spatial-svd", "channel-prune"

// One operating point of a method on a layer.
struct Point {
  int64_t keep = 0;     // the rank r (SVD) or the number of input channels kept (pruning)
  uint64_t params = 0;  // the layer's weight parameters after (both factors for SVD)
  // Pruning only: weight parameters removed elsewhere by this point (the producer's output
  // channels' weights; their bias and BatchNorm entries go too, but, like every bias, are
  // not counted in the weight parameters a plan targets); 0 for SVD.
  uint64_t paramsRemovedElsewhere = 0;
  uint64_t macs = 0;  // the layer's multiply-accumulates after; 0 when the spatial sizes are unknown
  double sqnrDb = 0;  // weight reconstruction SQNR (dB), +inf at the full rank / all channels
};

// The curve of one method on one layer: every rank (or kept-channel count) from the
// smallest to the full one, parameters non-decreasing. Empty with `refused` set when the
// method does not apply to the layer ("grouped convolution", "input feeds a residual Add").
struct Curve {
  Method method = Method::WeightSvd;
  std::vector<Point> points;
  std::string refused;  // why the method does not apply ("" when it does)
  // ChannelPrune only: the weight layer (graph::Layer::name) whose output channels its
  // points remove too ("" when the producer is no weight layer or unknown). The plan
  // leaves that layer as it is whenever it prunes this one (compress/plan.hpp).
  std::string producer;
};

struct LayerCurves {
  std::string layer;    // graph::Layer::name
  uint64_t params = 0;  // the weight's parameters as stored
  uint64_t macs = 0;    // the layer's MACs as it is; 0 when unknown
  std::vector<Curve> curves;
};

}  // namespace ql::compress
