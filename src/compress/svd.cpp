#include "compress/svd.hpp"

#include <Eigen/Dense>
#include <algorithm>
#include <cmath>
#include <limits>

namespace ql::compress {

namespace {

using RowMajor = Eigen::Matrix<double, Eigen::Dynamic, Eigen::Dynamic, Eigen::RowMajor>;

SvdFit refuse(std::string why) {
  SvdFit f;
  f.refused = std::move(why);
  return f;
}

// Row-major strides of the stored dims.
std::vector<uint64_t> strides(const std::vector<int64_t>& dims) {
  std::vector<uint64_t> s(dims.size(), 1);
  for (size_t d = dims.size(); d-- > 1;) s[d - 1] = s[d] * static_cast<uint64_t>(dims[d]);
  return s;
}

// The Gram matrix of the smaller side, lower triangle: MᵀM (cols <= rows) or MMᵀ.
Eigen::MatrixXd gram(const std::vector<double>& m, int64_t rows, int64_t cols) {
  Eigen::Map<const RowMajor> M(m.data(), rows, cols);
  const int64_t k = std::min(rows, cols);
  Eigen::MatrixXd G = Eigen::MatrixXd::Zero(k, k);
  if (cols <= rows)
    G.selfadjointView<Eigen::Lower>().rankUpdate(M.transpose());
  else
    G.selfadjointView<Eigen::Lower>().rankUpdate(M);
  return G;
}

}  // namespace

double sqnrDb(double signal, double noise) {
  if (!(noise > 0)) return std::numeric_limits<double>::infinity();
  return 10.0 * std::log10(signal / noise);
}

SvdFit svdFit(const graph::Layer& L) {
  const std::string op(L.op);
  if (op != "Conv" && op != "Gemm" && op != "MatMul") return refuse(op + ": SVD applies to Conv, Gemm and MatMul");
  if (L.recurrent.part != graph::RecurrentPart::None) return refuse("recurrent layer");
  if (L.quant.blockwise() || L.quant.storedAs) return refuse("block-quantized weight");
  const auto& d = L.shape;
  const int rank = static_cast<int>(d.size());
  for (int64_t v : d)
    if (v <= 0) return refuse("weight has an empty or unknown dimension");
  if (L.channelAxis < 0 || L.inputAxis < 0 || L.channelAxis >= rank || L.inputAxis >= rank || L.channelAxis == L.inputAxis)
    return refuse("weight axes unknown");
  if (op == "Conv") {
    if (L.depthwise) return refuse("depthwise convolution");
    if (L.groups != 1) return refuse("grouped convolution (group = " + std::to_string(L.groups) + ")");
  }
  SvdFit f;
  f.O = d[L.channelAxis];
  f.I = d[L.inputAxis];
  bool onesElsewhere = true;
  for (int a = 0; a < rank; ++a)
    if (a != L.channelAxis && a != L.inputAxis && d[a] != 1) onesElsewhere = false;
  if (onesElsewhere && (op != "Conv" || rank >= 3)) {
    f.method = Method::WeightSvd;
    f.rows = f.O;
    f.cols = f.I;
    return f;
  }
  if (op != "Conv") return refuse("batched " + op + " weight (" + std::to_string(rank) + "-D)");
  if (rank != 4) return refuse(std::to_string(rank - 2) + "-D convolution: spatial SVD needs a 2-D kernel");
  if (!L.via.empty() || L.channelAxis != 0 || L.inputAxis != 1)
    return refuse("kernel not stored as [O, I, kh, kw] (it reaches the Conv through " +
                  (L.via.empty() ? std::string("a layout") : std::string(L.via.front())) + ")");
  f.method = Method::SpatialSvd;
  f.kh = d[2];
  f.kw = d[3];
  f.rows = f.I * f.kh;
  f.cols = f.O * f.kw;
  return f;
}

std::vector<double> svdMatrix(const graph::Layer& L, const SvdFit& f, const std::vector<float>& values) {
  std::vector<double> m(static_cast<size_t>(f.rows * f.cols));
  if (f.method == Method::WeightSvd) {
    const auto s = strides(L.shape);
    const uint64_t so = s[L.channelAxis], si = s[L.inputAxis];
    for (int64_t o = 0; o < f.O; ++o)
      for (int64_t i = 0; i < f.I; ++i) m[o * f.I + i] = values[o * so + i * si];
  } else {  // W[o, i, y, x] -> M[i·kh + y, o·kw + x]
    const int64_t kh = f.kh, kw = f.kw;
    size_t at = 0;
    for (int64_t o = 0; o < f.O; ++o)
      for (int64_t i = 0; i < f.I; ++i)
        for (int64_t y = 0; y < kh; ++y)
          for (int64_t x = 0; x < kw; ++x) m[(i * kh + y) * f.cols + o * kw + x] = values[at++];
  }
  return m;
}

std::vector<double> squaredSingularValues(const std::vector<double>& m, int64_t rows, int64_t cols) {
  Eigen::SelfAdjointEigenSolver<Eigen::MatrixXd> es(gram(m, rows, cols), Eigen::EigenvaluesOnly);
  const auto& ev = es.eigenvalues();  // ascending
  std::vector<double> out(static_cast<size_t>(ev.size()));
  for (Eigen::Index i = 0; i < ev.size(); ++i) out[static_cast<size_t>(i)] = std::max(0.0, ev[ev.size() - 1 - i]);
  return out;
}

uint64_t svdParams(const SvdFit& f, int64_t rank) { return static_cast<uint64_t>(rank) * static_cast<uint64_t>(f.rows + f.cols); }

Curve svdCurve(const SvdFit& f, const std::vector<double>& sq, uint64_t storedParams, uint64_t outPositions,
               uint64_t midPositions) {
  Curve c;
  c.method = f.method;
  if (!f.refused.empty()) {
    c.refused = f.refused;
    return c;
  }
  const int64_t full = std::min(f.rows, f.cols);
  // Tail sums from the smallest value up, so a small tail keeps its digits.
  std::vector<double> tail(sq.size() + 1, 0.0);
  for (size_t i = sq.size(); i-- > 0;) tail[i] = tail[i + 1] + sq[i];
  const double total = tail[0];
  auto macs = [&](int64_t r) -> uint64_t {
    if (outPositions == 0) return 0;
    const uint64_t R = static_cast<uint64_t>(r);
    if (f.method == Method::WeightSvd) return R * static_cast<uint64_t>(f.O + f.I) * outPositions;
    if (midPositions == 0) return 0;
    return R * static_cast<uint64_t>(f.I * f.kh) * midPositions + R * static_cast<uint64_t>(f.O * f.kw) * outPositions;
  };
  const uint64_t whole = static_cast<uint64_t>(f.rows) * static_cast<uint64_t>(f.cols);
  for (int64_t r = 1; r < full && svdParams(f, r) < whole; ++r) {
    Point p;
    p.keep = r;
    p.params = svdParams(f, r);
    p.macs = macs(r);
    p.sqnrDb = sqnrDb(total, static_cast<size_t>(r) < tail.size() ? tail[static_cast<size_t>(r)] : 0.0);
    c.points.push_back(p);
  }
  Point as;  // the layer as it is
  as.keep = full;
  as.params = storedParams;
  as.macs = outPositions ? storedParams * outPositions : 0;
  as.sqnrDb = std::numeric_limits<double>::infinity();
  c.points.push_back(as);
  return c;
}

SvdFactors svdFactors(const SvdFit& f, const std::vector<double>& m, int64_t rank, bool convLayout, bool weightOnLeft) {
  const int64_t rows = f.rows, cols = f.cols, k = std::min(rows, cols);
  rank = std::clamp<int64_t>(rank, 1, k);
  Eigen::Map<const RowMajor> M(m.data(), rows, cols);
  Eigen::SelfAdjointEigenSolver<Eigen::MatrixXd> es(gram(m, rows, cols), Eigen::ComputeEigenvectors);
  // Top `rank` eigenvectors (the solver sorts ascending) and √s for each.
  Eigen::MatrixXd Q(k, rank);
  std::vector<double> root(static_cast<size_t>(rank));
  const double smax = std::sqrt(std::max(0.0, es.eigenvalues()[k - 1]));
  for (int64_t j = 0; j < rank; ++j) {
    Q.col(j) = es.eigenvectors().col(k - 1 - j);
    const double s = std::sqrt(std::max(0.0, es.eigenvalues()[k - 1 - j]));
    root[static_cast<size_t>(j)] = s > 1e-12 * smax && s > 0 ? std::sqrt(s) : 1.0;
  }
  // M ≈ A·B, A [rows, rank], B [rank, cols].
  Eigen::MatrixXd A(rows, rank), B(rank, cols);
  if (cols <= rows) {  // Q = V: B = √S Vᵀ, A = M V / √S
    A = M * Q;
    for (int64_t j = 0; j < rank; ++j) {
      A.col(j) /= root[j];
      B.row(j) = Q.col(j).transpose() * root[j];
    }
  } else {  // Q = U: A = U √S, B = Uᵀ M / √S
    B = Q.transpose() * M;
    for (int64_t j = 0; j < rank; ++j) {
      A.col(j) = Q.col(j) * root[j];
      B.row(j) /= root[j];
    }
  }
  SvdFactors out;
  out.rank = rank;
  const int64_t r = rank;
  auto put = [](std::vector<float>& v, const Eigen::MatrixXd& x, bool transposed) {
    // row-major of x (or of xᵀ)
    const int64_t R = transposed ? x.cols() : x.rows(), C = transposed ? x.rows() : x.cols();
    v.resize(static_cast<size_t>(R * C));
    for (int64_t i = 0; i < R; ++i)
      for (int64_t j = 0; j < C; ++j) v[i * C + j] = static_cast<float>(transposed ? x(j, i) : x(i, j));
  };
  if (f.method == Method::WeightSvd) {  // rows = O, cols = I: A [O, r], B [r, I]
    if (convLayout) {
      put(out.first, B, false);
      put(out.second, A, false);
      out.firstDims = {r, f.I, 1, 1};
      out.secondDims = {f.O, r, 1, 1};
    } else if (weightOnLeft) {
      put(out.first, B, false);
      put(out.second, A, false);
      out.firstDims = {r, f.I};
      out.secondDims = {f.O, r};
    } else {
      put(out.first, B, true);   // [I, r]
      put(out.second, A, true);  // [r, O]
      out.firstDims = {f.I, r};
      out.secondDims = {r, f.O};
    }
  } else {  // A [I·kh, r] -> V1[k, i, y, 0]; B [r, O·kw] -> V2[o, k, 0, x]
    const int64_t kh = f.kh, kw = f.kw;
    out.first.resize(static_cast<size_t>(r * f.I * kh));
    out.second.resize(static_cast<size_t>(f.O * r * kw));
    for (int64_t j = 0; j < r; ++j)
      for (int64_t i = 0; i < f.I; ++i)
        for (int64_t y = 0; y < kh; ++y) out.first[(j * f.I + i) * kh + y] = static_cast<float>(A(i * kh + y, j));
    for (int64_t o = 0; o < f.O; ++o)
      for (int64_t j = 0; j < r; ++j)
        for (int64_t x = 0; x < kw; ++x) out.second[(o * r + j) * kw + x] = static_cast<float>(B(j, o * kw + x));
    out.firstDims = {r, f.I, kh, 1};
    out.secondDims = {f.O, r, 1, kw};
  }
  return out;
}

}  // namespace ql::compress
