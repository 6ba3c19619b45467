// Weight SVD and spatial SVD of one layer (issue 15): the matrix each method factors,
// its singular values (for the curves) and, for the layers a plan writes, the two
// factors.
//
//   weight SVD (Gemm, MatMul with a 2-D weight, 1x1 Conv): M[O, I], O along the layer's
//     channelAxis and I along its inputAxis (graph::Layer, the one source of both axes).
//     Rank r: x -> (I -> r) -> (r -> O), r·(O + I) parameters.
//   spatial SVD (k x k Conv, AIMET's): W[O, I, kh, kw] as M[I·kh, O·kw],
//     M[i·kh + y, o·kw + x] = W[o, i, y, x]. Rank r: a (kh x 1, I -> r) Conv then a
//     (1 x kw, r -> O) Conv, r·(I·kh + O·kw) parameters.
//
// The weight reconstruction SQNR at rank r is 10·log10(Σ s² / Σ_{i>r} s²) (Eckart–Young:
// the best rank-r approximation leaves exactly the tail), +inf when the tail is 0.
#pragma once
#include <cstdint>
#include <string>
#include <vector>

#include "common/result.hpp"
#include "compress/curves.hpp"
#include "graph/layers.hpp"

namespace ql::compress {

// Which SVD method fits a layer, or why none does (`refused`, e.g. "grouped convolution
// (group = 4)", "depthwise convolution", "ConvTranspose", "batched MatMul weight").
struct SvdFit {
  Method method = Method::WeightSvd;
  std::string refused;
  // The factored matrix: rows x cols; for spatial SVD O, I, kh, kw as well.
  int64_t rows = 0, cols = 0;
  int64_t O = 0, I = 0, kh = 1, kw = 1;
};
SvdFit svdFit(const graph::Layer& layer);

// The matrix of `fit` from the layer's weight values (float32 in the stored order, as
// analysis::layerWeightValues gives them), row-major, in double.
std::vector<double> svdMatrix(const graph::Layer& layer, const SvdFit& fit, const std::vector<float>& values);

// Squared singular values of a rows x cols row-major matrix, largest first
// (min(rows, cols) of them): the eigenvalues of the smaller Gram matrix (MᵀM or MMᵀ,
// accumulated in double), negative round-off clamped to 0.
std::vector<double> squaredSingularValues(const std::vector<double>& m, int64_t rows, int64_t cols);

// Parameters of rank r under `fit`: r·(rows + cols) (both methods: rows + cols is
// O + I, or I·kh + O·kw).
uint64_t svdParams(const SvdFit& fit, int64_t rank);

// The curve: ranks 1, 2, ... while r·(rows + cols) < rows·cols (a rank counts only where
// it saves parameters), then the layer as it is (rank min(rows, cols), its stored
// parameter count, +inf dB). `macsPerPosition*` give the MACs (0 when unknown):
// weight SVD: r·(O + I)·outPositions; spatial SVD: r·I·kh·midPositions + r·O·kw·outPositions,
// midPositions being the first Conv's output positions (out rows x input columns).
Curve svdCurve(const SvdFit& fit, const std::vector<double>& squaredValues, uint64_t storedParams, uint64_t outPositions,
               uint64_t midPositions);

// The two factors at rank r, each as the weight tensor the written node takes, float32:
//   weight SVD: `first` [I, r] and `second` [r, O] for x·W layouts (MatMul(x, first) then
//     (x·first)·second); for a 1x1 Conv `first` [r, I, 1, 1] and `second` [O, r, 1, 1];
//   spatial SVD: `first` [r, I, kh, 1], `second` [O, r, 1, kw].
// The singular values are split as √s between the factors (the first factor the left
// singular vectors of M scaled by √s, the second √s times the right ones); directions
// with s ≈ 0 (below 1e-12·s_max) are carried as the exact projection.
struct SvdFactors {
  int64_t rank = 0;
  std::vector<float> first, second;
  std::vector<int64_t> firstDims, secondDims;
};
// `matmulLayout`: Gemm / MatMul written as x·first·second ([I, r] then [r, O]); false for
// Conv layouts. `weightOnLeft`: MatMul W·x, written as second·(first·x) with first [r, I]
// and second [O, r].
SvdFactors svdFactors(const SvdFit& fit, const std::vector<double>& m, int64_t rank, bool convLayout, bool weightOnLeft);

// 10·log10(signal / noise), +inf when noise <= 0.
double sqnrDb(double signal, double noise);

}  // namespace ql::compress
