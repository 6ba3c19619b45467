// Compressibility (src/compress): singular values against Eigen's Jacobi SVD (an
// independent algorithm), the spatial reshape worked by hand, the factors rebuilding the
// weight (exactly at full rank, with exactly the tail's error at rank r), the plan's
// search and its rules on hand-made curves, the writer's new nodes, and every real model
// planned, written, parsed back and (with python3-onnx) passed through onnx.checker.
// Singular values against numpy on real models: tests/js/compress.test.mjs.
#include <Eigen/Dense>
#include <algorithm>
#include <catch2/catch.hpp>
#include <cmath>
#include <cstdlib>
#include <filesystem>
#include <fstream>
#include <limits>
#include <random>

#include "compress/compress.hpp"
#include "compress/plan.hpp"
#include "compress/svd.hpp"
#include "graph/layers.hpp"
#include "onnx/model.hpp"
#include "onnx/writer.hpp"
#include "pb_writer.hpp"

using namespace ql;
using namespace ql::compress;
namespace pb = pbw::onnx;
namespace fs = std::filesystem;

namespace {

std::vector<double> randomMatrix(int64_t rows, int64_t cols, uint32_t seed) {
  std::mt19937 rng(seed);
  std::normal_distribution<double> n(0, 1);
  std::vector<double> m(static_cast<size_t>(rows * cols));
  for (double& v : m) v = n(rng);
  return m;
}

using RowMajor = Eigen::Matrix<double, Eigen::Dynamic, Eigen::Dynamic, Eigen::RowMajor>;

// Rebuilds M[rows, cols] from the factors by the method's definition of the split nodes.
std::vector<double> rebuild(const SvdFit& f, const SvdFactors& s, bool conv, bool left) {
  std::vector<double> m(static_cast<size_t>(f.rows * f.cols), 0.0);
  const int64_t r = s.rank;
  if (f.method == Method::SpatialSvd) {  // W[o,i,y,x] = sum_k V2[o,k,0,x] V1[k,i,y,0]
    for (int64_t o = 0; o < f.O; ++o)
      for (int64_t i = 0; i < f.I; ++i)
        for (int64_t y = 0; y < f.kh; ++y)
          for (int64_t x = 0; x < f.kw; ++x) {
            double acc = 0;
            for (int64_t k = 0; k < r; ++k) acc += double(s.second[(o * r + k) * f.kw + x]) * s.first[(k * f.I + i) * f.kh + y];
            m[(i * f.kh + y) * f.cols + o * f.kw + x] = acc;
          }
    return m;
  }
  for (int64_t o = 0; o < f.O; ++o)
    for (int64_t i = 0; i < f.I; ++i) {
      double acc = 0;
      for (int64_t k = 0; k < r; ++k) {
        if (conv || left)  // first [r, I], second [O, r]
          acc += double(s.second[o * r + k]) * s.first[k * f.I + i];
        else  // first [I, r], second [r, O]: y = x·first·second, W[o, i] = sum_k first[i,k] second[k,o]
          acc += double(s.first[i * r + k]) * s.second[k * f.O + o];
      }
      m[o * f.I + i] = acc;
    }
  return m;
}

double sumSq(const std::vector<double>& a, const std::vector<double>* b = nullptr) {
  double s = 0;
  for (size_t i = 0; i < a.size(); ++i) {
    const double d = a[i] - (b ? (*b)[i] : 0.0);
    s += d * d;
  }
  return s;
}

struct Parsed {
  std::vector<uint8_t> bytes;
  Result<onnx::Model> model;
  explicit Parsed(std::vector<uint8_t> b) : bytes(std::move(b)), model(onnx::parseModel(bytes.data(), bytes.size())) {}
};

std::vector<uint8_t> readFile(const fs::path& p) {
  std::ifstream f(p, std::ios::binary);
  return std::vector<uint8_t>((std::istreambuf_iterator<char>(f)), std::istreambuf_iterator<char>());
}

std::vector<fs::path> realModels() {
  std::vector<fs::path> out;
  std::error_code ec;
  const char* env = std::getenv("QL_SHARED_MODELS");
  const fs::path shared = env ? fs::path(env) : fs::path(QL_SOURCE_DIR) / ".." / "shared" / "models",
                 fetched = fs::path(QL_SOURCE_DIR) / "models" / "fetched";
  for (const fs::path& dir : {shared, fetched}) {
    if (!fs::is_directory(dir, ec)) {
      WARN("skipped: " << dir.string() << " is not available");
      continue;
    }
    for (const auto& e : fs::recursive_directory_iterator(dir, ec))
      if (e.is_regular_file() && e.path().extension() == ".onnx") out.push_back(e.path());
  }
  std::sort(out.begin(), out.end());
  return out;
}

uint64_t initializerParams(const onnx::Model& m, const std::vector<std::string_view>& names) {
  uint64_t n = 0;
  for (const onnx::Tensor& t : m.graph.initializers)
    if (std::find(names.begin(), names.end(), t.name) != names.end()) {
      uint64_t c = 0;
      REQUIRE(t.elementCount(&c));
      n += c;
    }
  return n;
}

}  // namespace

TEST_CASE("compress: squared singular values match Eigen's Jacobi SVD", "[compress]") {
  for (auto [rows, cols] : std::vector<std::pair<int64_t, int64_t>>{{7, 3}, {3, 7}, {20, 20}, {64, 9}, {1, 5}, {33, 48}}) {
    const auto m = randomMatrix(rows, cols, static_cast<uint32_t>(rows * 100 + cols));
    const auto sq = squaredSingularValues(m, rows, cols);
    Eigen::Map<const RowMajor> M(m.data(), rows, cols);
    Eigen::JacobiSVD<Eigen::MatrixXd> ref(M);
    REQUIRE(sq.size() == static_cast<size_t>(std::min(rows, cols)));
    for (size_t i = 0; i < sq.size(); ++i) {
      const double s = ref.singularValues()[static_cast<Eigen::Index>(i)];
      CHECK(sq[i] == Approx(s * s).epsilon(1e-9).margin(1e-9));
    }
  }
  // Rank-deficient: zeros stay (clamped) zeros, the sum is the Frobenius norm.
  std::vector<double> m = {1, 2, 3, 2, 4, 6};  // 2 x 3, rank 1
  const auto sq = squaredSingularValues(m, 2, 3);
  CHECK(sq[0] == Approx(70.0));
  CHECK(sq[1] == Approx(0.0).margin(1e-12));
  CHECK(sq[1] >= 0.0);
}

TEST_CASE("compress: curves count parameters and SQNR by the definitions", "[compress]") {
  SvdFit f;
  f.method = Method::WeightSvd;
  f.rows = f.O = 10;
  f.cols = f.I = 6;
  const std::vector<double> sq = {16, 8, 4, 2, 1, 1};
  const Curve c = svdCurve(f, sq, 60, 5, 0);
  // r·16 < 60: r = 1, 2, 3; then the layer as it is.
  REQUIRE(c.points.size() == 4);
  CHECK(c.points[0].keep == 1);
  CHECK(c.points[0].params == 16);
  CHECK(c.points[0].macs == 80);
  CHECK(c.points[0].sqnrDb == Approx(10 * std::log10(32.0 / 16.0)));
  CHECK(c.points[2].params == 48);
  CHECK(c.points[2].sqnrDb == Approx(10 * std::log10(32.0 / 4.0)));
  CHECK(c.points[3].keep == 6);
  CHECK(c.points[3].params == 60);
  CHECK(c.points[3].macs == 300);
  CHECK(std::isinf(c.points[3].sqnrDb));
  // Spatial: MACs r·I·kh·mid + r·O·kw·out.
  SvdFit s;
  s.method = Method::SpatialSvd;
  s.O = 8, s.I = 4, s.kh = 3, s.kw = 3, s.rows = 12, s.cols = 24;
  const Curve cs = svdCurve(s, std::vector<double>(12, 1.0), 288, 100, 200);
  CHECK(cs.points[0].params == 36);
  CHECK(cs.points[0].macs == 12 * 200 + 24 * 100);
  CHECK(cs.points.size() == 7 + 1);  // 36 r < 288 for r = 1..7, then as it is
}

TEST_CASE("compress: the spatial reshape and the factors of every layout", "[compress]") {
  // Conv [O=3, I=2, 3, 2]; weight value = its flat index.
  std::vector<float> w(3 * 2 * 3 * 2);
  for (size_t i = 0; i < w.size(); ++i) w[i] = static_cast<float>(std::sin(double(i) * 1.7) + 0.1 * double(i));
  pb::GraphBuilder g;
  g.add(pb::node("Conv", {"x", "w", "b"}, {"y"}, "conv", {pb::attrInts("kernel_shape", {3, 2})}))
      .init(pb::floatTensor("w", {3, 2, 3, 2}, w))
      .init(pb::floatTensor("b", {3}, {1, 2, 3}))
      .input("x", {1, 2, 8, 8})
      .output("y", {1, 3, 6, 7});
  Parsed p(pb::toVec(pb::model(g.build())));
  REQUIRE(p.model.ok());
  auto d = graph::findLayers(p.model.value());
  REQUIRE(d.ok());
  REQUIRE(d->layers.size() == 1);
  const graph::Layer& L = d->layers[0];
  const SvdFit f = svdFit(L);
  REQUIRE(f.refused.empty());
  CHECK(f.method == Method::SpatialSvd);
  CHECK(f.rows == 2 * 3);
  CHECK(f.cols == 3 * 2);
  const auto m = svdMatrix(L, f, w);
  // M[i·kh + y, o·kw + x] = W[o, i, y, x]: W[2, 1, 2, 1] is flat (((2·2)+1)·3+2)·2+1 = 35.
  CHECK(m[(1 * 3 + 2) * 6 + 2 * 2 + 1] == Approx(w[35]));
  CHECK(m[0] == Approx(w[0]));
  // Full rank rebuilds M; rank r leaves exactly the tail.
  const auto sq = squaredSingularValues(m, f.rows, f.cols);
  for (int64_t r = 1; r <= 6; ++r) {
    const SvdFactors s = svdFactors(f, m, r, true, false);
    CHECK(s.firstDims == std::vector<int64_t>{r, 2, 3, 1});
    CHECK(s.secondDims == std::vector<int64_t>{3, r, 1, 2});
    const auto back = rebuild(f, s, true, false);
    double tail = 0;
    for (size_t i = static_cast<size_t>(r); i < sq.size(); ++i) tail += sq[i];
    CHECK(sumSq(m, &back) == Approx(tail).margin(1e-5 * sumSq(m)));
  }
  // Weight SVD, tall and wide, each written layout.
  for (auto [O, I] : std::vector<std::pair<int64_t, int64_t>>{{9, 4}, {4, 9}}) {
    SvdFit wf;
    wf.method = Method::WeightSvd;
    wf.rows = wf.O = O;
    wf.cols = wf.I = I;
    const auto mm = randomMatrix(O, I, 7);
    for (int layout = 0; layout < 3; ++layout) {
      const bool conv = layout == 0, left = layout == 1;
      const SvdFactors s = svdFactors(wf, mm, std::min(O, I), conv, left);
      const auto back = rebuild(wf, s, conv, left);
      CHECK(sumSq(mm, &back) < 1e-10 * sumSq(mm));
    }
  }
}

TEST_CASE("compress: refusals name the reason", "[compress]") {
  pb::GraphBuilder g;
  g.add(pb::node("Conv", {"x", "wd"}, {"a"}, "dw", {pb::attrInt("group", 4)}))
      .add(pb::node("Conv", {"a", "wg"}, {"b"}, "grouped", {pb::attrInt("group", 2)}))
      .add(pb::node("Conv", {"b", "w1"}, {"c"}, "pw"))
      .add(pb::node("MatMul", {"c", "wb"}, {"y"}, "batched"))
      .init(pb::floatTensor("wd", {4, 1, 3, 3}, std::vector<float>(36, 1)))
      .init(pb::floatTensor("wg", {4, 2, 3, 3}, std::vector<float>(72, 1)))
      .init(pb::floatTensor("w1", {8, 4, 1, 1}, std::vector<float>(32, 1)))
      .init(pb::floatTensor("wb", {2, 8, 3}, std::vector<float>(48, 1)))
      .input("x", {1, 4, 8, 8})
      .output("y");
  Parsed p(pb::toVec(pb::model(g.build())));
  REQUIRE(p.model.ok());
  auto d = graph::findLayers(p.model.value());
  REQUIRE(d.ok());
  REQUIRE(d->layers.size() == 4);
  CHECK(svdFit(d->layers[0]).refused == "depthwise convolution");
  CHECK(svdFit(d->layers[1]).refused == "grouped convolution (group = 2)");
  CHECK(svdFit(d->layers[2]).refused.empty());
  CHECK(svdFit(d->layers[2]).method == Method::WeightSvd);
  CHECK(svdFit(d->layers[3]).refused.find("batched") != std::string::npos);
  // MACs from the static input shape: the 1x1 conv outputs 1·6·6 positions (two 3x3 convs before it).
  const auto pos = layerPositions(p.model.value(), d.value());
  CHECK(pos[0].out == 36);
  CHECK(pos[2].out == 16);
}

namespace {

LayerCurves hand(std::string name, uint64_t params, std::vector<std::pair<uint64_t, double>> pts, Method m = Method::WeightSvd) {
  LayerCurves L;
  L.layer = std::move(name);
  L.params = params;
  Curve c;
  c.method = m;
  int64_t k = 1;
  for (auto [n, db] : pts) c.points.push_back({k++, n, 0, 0, db});
  c.points.push_back({k, params, 0, 0, std::numeric_limits<double>::infinity()});
  L.curves.push_back(c);
  return L;
}

}  // namespace

namespace {
double noiseOfDb(double db) { return std::isinf(db) ? 0.0 : std::pow(10.0, -db / 10.0); }
double planNoise(const Plan& p) {
  double n = 0;
  for (const LayerChoice& c : p.layers) n += noiseOfDb(c.sqnrDb);
  return n;
}
}  // namespace

TEST_CASE("compress: the plan minimises the summed relative noise within the target", "[compress]") {
  std::vector<LayerCurves> curves = {
      hand("a", 100, {{10, 5}, {30, 12}, {60, 20}}), hand("b", 100, {{20, 8}, {40, 15}, {80, 30}}),
      hand("c", 50, {}),  // incompressible: counted in the total
  };
  curves[2].curves[0].refused = "depthwise convolution";
  curves[2].curves[0].points.clear();
  PlanOptions o;
  o.ratio = 0.5;  // 125 of 250
  auto plan = makePlan(curves, o);
  REQUIRE(plan.ok());
  // Of the pairs within 75: a 30 (12 dB, n 0.063) + b 40 (15 dB, n 0.032) = 70 adds the least noise.
  CHECK(plan->paramsAfter == 120);
  CHECK(plan->layers[0].keep == 2);
  CHECK(plan->layers[1].keep == 2);
  CHECK(plan->thresholdDb == 12);  // the lowest SQNR taken
  CHECK_FALSE(plan->layers[2].compressed);
  CHECK(plan->layers[2].leftAlone == "weight-svd: depthwise convolution");
  // No pair of points within the target adds less noise (brute force).
  auto best = [&](const std::vector<LayerCurves>& cs, double budget) {
    double least = std::numeric_limits<double>::infinity();
    const auto& A = cs[0].curves[0].points;
    const auto& B = cs[1].curves[0].points;
    for (const Point& x : A)
      for (const Point& y : B)
        if (double(x.params + y.params) <= budget) least = std::min(least, noiseOfDb(x.sqnrDb) + noiseOfDb(y.sqnrDb));
    return least;
  };
  CHECK(planNoise(plan.value()) == Approx(best(curves, 75)));

  // Where the largest common threshold (the planner before) and the least noise differ:
  // a single point at 12 dB, b steep. Within 110 of 200 the threshold plan is a 50 + b 40
  // (t = 12 dB; t = 20 would need 140): n 0.063 + 0.010. The Lagrangian stops there too
  // (λ at a's slope), and what is left (20) moves b to 60 (30 dB): n 0.063 + 0.001.
  std::vector<LayerCurves> two = {hand("a", 100, {{50, 12}}), hand("b", 100, {{10, 10}, {40, 20}, {60, 30}})};
  o.ratio = 0.55;
  plan = makePlan(two, o);
  REQUIRE(plan.ok());
  CHECK(plan->paramsAfter == 110);
  CHECK(plan->layers[0].params == 50);
  CHECK(plan->layers[1].params == 60);
  CHECK(plan->thresholdDb == 12);
  CHECK(planNoise(plan.value()) == Approx(best(two, 110)));
  CHECK(planNoise(plan.value()) < noiseOfDb(12) + noiseOfDb(20));  // the threshold plan's
  o.ratio = 0.5;
  // Full ratio: nothing changes.
  o.ratio = 1;
  plan = makePlan(curves, o);
  REQUIRE(plan.ok());
  CHECK(plan->paramsAfter == 250);
  // Unreachable, bad ratio, MACs unknown.
  o.ratio = 0.1;
  auto bad = makePlan(curves, o);
  REQUIRE_FALSE(bad.ok());
  CHECK(bad.error().code == ErrorCode::InvalidArgument);
  CHECK(bad.error().message.find("reach 0.32 ") != std::string::npos);  // (10 + 20 + 50) / 250
  o.ratio = 0;
  CHECK_FALSE(makePlan(curves, o).ok());
  o.ratio = 0.5;
  o.by = By::Macs;
  bad = makePlan(curves, o);
  REQUIRE_FALSE(bad.ok());
  CHECK(bad.error().code == ErrorCode::Unsupported);
  CHECK(bad.error().message.find("--by params") != std::string::npos);
}

TEST_CASE("compress: a pruned layer's producer is left alone", "[compress]") {
  // b prunes cheaply (50, removing 30 of a's parameters: net 20, 20 dB) or takes its SVD
  // (70, 22 dB); a's own SVD (40, 25 dB) is also on offer.
  std::vector<LayerCurves> curves = {hand("a", 100, {{40, 25}}), hand("b", 100, {{50, 20}}, Method::ChannelPrune)};
  curves[1].curves[0].producer = "a";
  curves[1].curves[0].points[0].paramsRemovedElsewhere = 30;
  Curve svd;
  svd.method = Method::WeightSvd;
  svd.points = {{1, 70, 0, 0, 22}, {2, 100, 0, 0, std::numeric_limits<double>::infinity()}};
  curves[1].curves.push_back(svd);
  PlanOptions o;
  o.methods = {Method::WeightSvd, Method::SpatialSvd, Method::ChannelPrune};
  o.ratio = 0.55;  // 110 of 200
  auto plan = makePlan(curves, o);
  REQUIRE(plan.ok());
  // Only the cheapest points meet 110: a takes its SVD (40), so b may not prune and falls
  // back to its SVD (70): 110. (b pruned with a as it is would be 120.)
  CHECK(plan->layers[0].compressed);
  CHECK(plan->layers[1].method == Method::WeightSvd);
  CHECK(plan->paramsAfter == 110);
  // Without a's SVD, b prunes and a is left alone as its producer: 100 + 50 - 30 = 120.
  curves[0] = hand("a", 100, {});
  o.ratio = 0.6;
  plan = makePlan(curves, o);
  REQUIRE(plan.ok());
  CHECK(plan->layers[1].method == Method::ChannelPrune);
  CHECK(plan->paramsAfter == 120);
  CHECK(plan->layers[0].leftAlone.find("producer of pruned layer 'b'") != std::string::npos);
}

TEST_CASE("compress: the writer adds nodes with their attributes", "[compress][writer]") {
  pb::GraphBuilder g;
  g.add(pb::node("Relu", {"x"}, {"r"}, "relu")).add(pb::node("Relu", {"r"}, {"y"}, "relu2")).input("x").output("y");
  Parsed p(pb::toVec(pb::model(g.build())));
  REQUIRE(p.model.ok());
  onnx::GraphEdit e;
  onnx::NewNode n;
  n.after = 0;
  n.opType = "Conv";
  n.name = "new";
  n.inputs = {"r", "w"};
  n.outputs = {"z"};
  n.attributes = {onnx::NewAttribute::list("pads", {0, 1, 0, 1}), onnx::NewAttribute::integer("group", 1),
                  onnx::NewAttribute::real("alpha", 0.5f), onnx::NewAttribute::string("auto_pad", "VALID")};
  e.addNodes.push_back(n);
  e.removeNodes = {0};
  auto out = onnx::writeModel(p.bytes.data(), p.bytes.size(), p.model.value(), e);
  REQUIRE(out.ok());
  Parsed back(out.value());
  REQUIRE(back.model.ok());
  const auto& nodes = back.model->graph.nodes;
  REQUIRE(nodes.size() == 2);
  CHECK(nodes[0].name == "new");
  CHECK(nodes[0].opType == "Conv");
  CHECK(nodes[0].inputs == std::vector<std::string_view>{"r", "w"});
  CHECK(nodes[0].outputs == std::vector<std::string_view>{"z"});
  CHECK(nodes[0].attribute("pads")->ints == std::vector<int64_t>{0, 1, 0, 1});
  CHECK(nodes[0].attribute("group")->i == 1);
  CHECK(nodes[0].attribute("alpha")->f == 0.5f);
  CHECK(nodes[0].attribute("auto_pad")->s == "VALID");
  CHECK(nodes[0].attribute("pads")->type == 7);
  CHECK(nodes[1].name == "relu2");
  n.after = 5;
  e.addNodes = {n};
  CHECK_FALSE(onnx::writeModel(p.bytes.data(), p.bytes.size(), p.model.value(), e).ok());
}

TEST_CASE("compress: every real model planned at 0.5, written and read back", "[compress][real]") {
  size_t models = 0;
  const bool checker = std::system("/usr/bin/python3 -c 'import onnx' >/dev/null 2>&1") == 0;
  for (const fs::path& path : realModels()) {
    INFO(path.string());
    Parsed p(readFile(path));
    REQUIRE(p.model.ok());
    auto d = graph::findLayers(p.model.value());
    REQUIRE(d.ok());
    const auto pos = layerPositions(p.model.value(), d.value());
    std::vector<LayerCurves> curves;
    bool external = false;
    for (size_t i = 0; i < d->layers.size(); ++i) {
      if (d->layers[i].weight && d->layers[i].weight->external) external = true;
      auto c = layerCurves(p.model.value(), d.value(), d->layers[i], pos[i], {}, false);
      if (!c.ok()) {
        WARN(path.filename().string() << ": " << c.error().describe());
        external = true;
        break;
      }
      curves.push_back(std::move(c.value()));
    }
    if (external) continue;
    PlanOptions o;
    o.ratio = 0.5;
    auto plan = makePlan(curves, o);
    if (!plan.ok()) {  // too little compressible (the message says how far it goes)
      WARN(path.filename().string() << ": " << plan.error().describe());
      o.ratio = 0.9;
      plan = makePlan(curves, o);
      if (!plan.ok()) continue;
    }
    CHECK(plan->paramsAfter <= o.ratio * double(plan->paramsBefore));
    // By its own measure the plan is never worse than the uniform one at the same target.
    CHECK(planNoise(plan.value()) <= planNoise(uniformPlan(curves, o)) * (1 + 1e-12));
    std::vector<WrittenLayer> written;
    auto edit = planEdit(p.model.value(), d.value(), plan.value(), nullptr, &written);
    REQUIRE(edit.ok());
    auto out = onnx::writeModel(p.bytes.data(), p.bytes.size(), p.model.value(), edit.value());
    INFO((out.ok() ? std::string() : out.error().describe()));
    REQUIRE(out.ok());
    Parsed back(out.value());
    REQUIRE(back.model.ok());
    // The written weight layers hold the planned parameter count.
    auto d2 = graph::findLayers(back.model.value());
    REQUIRE(d2.ok());
    uint64_t after = 0;
    for (const graph::Layer& L : d2->layers) after += L.layout.elementCount();
    CHECK(after == plan->paramsAfter);
    // Each compressed layer's written nodes are layers of the written model holding the
    // planned parameters (an SVD layer: its two factors; a pruned layer: itself, narrower).
    size_t compressed = 0;
    for (const LayerChoice& c : plan->layers) {
      if (!c.compressed) continue;
      REQUIRE(compressed < written.size());
      const WrittenLayer& w = written[compressed++];
      CHECK(w.layer == c.layer);
      CHECK(w.nodes.size() == (c.method == Method::ChannelPrune ? 1u : 2u));
      uint64_t held = 0;
      for (const std::string& n : w.nodes) {
        auto it = std::find_if(d2->layers.begin(), d2->layers.end(), [&](const graph::Layer& L) { return L.name == n; });
        INFO(c.layer << " -> " << n);
        REQUIRE(it != d2->layers.end());
        held += it->layout.elementCount();
      }
      CHECK(held == c.params);
    }
    CHECK(compressed == written.size());
    ++models;
    if (checker && models <= 3) {
      const fs::path tmp = fs::temp_directory_path() / ("ql_compress_" + path.filename().string());
      std::ofstream(tmp, std::ios::binary)
          .write(reinterpret_cast<const char*>(out->data()), static_cast<std::streamsize>(out->size()));
      const std::string cmd =
          "/usr/bin/python3 -c \"import onnx,sys; onnx.checker.check_model(onnx.load(sys.argv[1]), full_check=True)\" '" +
          tmp.string() + "'";
      CHECK(std::system(cmd.c_str()) == 0);
      fs::remove(tmp);
    }
  }
  if (models == 0) WARN("skipped: no real models found");
}
