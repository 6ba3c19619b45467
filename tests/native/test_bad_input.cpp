// Malformed input: truncations and byte mutations of a real model and of a small
// hand-built one, plus specific malformations. Whatever the bytes, parse +
// findLayers + analyzeLayer on every layer must succeed or return an error with a
// message; never crash, abort, hang or read out of bounds (run under ASan/UBSan:
// every buffer handed to the parser is an exact-size heap block).
#include <catch2/catch.hpp>
#include <cmath>
#include <cstring>
#include <fstream>
#include <limits>
#include <random>
#include <string>
#include <vector>

#include "analysis/analyze.hpp"
#include "cle/cle.hpp"
#include "graph/layers.hpp"
#include "onnx/model.hpp"
#include "onnx/skim.hpp"
#include "onnx/tensor_data.hpp"
#include "pb_writer.hpp"

using ql::ErrorCode;
namespace pb = pbw::onnx;
using pbw::Msg;

namespace {

const char* const kRealModel = QL_SOURCE_DIR "/../shared/models/tf/mnist_keras_tf2onnx.onnx";

std::vector<uint8_t> readFile(const std::string& path) {
  std::ifstream f(path, std::ios::binary);
  if (!f) return {};
  return std::vector<uint8_t>((std::istreambuf_iterator<char>(f)), std::istreambuf_iterator<char>());
}

// The real model's bytes, or empty with a warning when ../shared is absent (the test then skips).
std::vector<uint8_t> realModel() {
  auto bytes = readFile(kRealModel);
  if (bytes.empty()) WARN("skipped: " << kRealModel << " is not available");
  return bytes;
}

std::vector<uint8_t> bytesOf(const std::string& s) { return std::vector<uint8_t>(s.begin(), s.end()); }

// What happened to a batch of inputs, and every broken promise.
struct Tally {
  size_t inputs = 0, parsed = 0, rejected = 0, layers = 0, analysed = 0, layerErrors = 0;
  std::vector<std::string> problems;
  void problem(const std::string& what, const std::string& where) {
    if (problems.size() < 20) problems.push_back(where + ": " + what);
  }
};

bool errorIsSound(const ql::Error& e, size_t size) {
  return e.code != ErrorCode::Ok && !e.message.empty() && e.offset >= -1 && e.offset <= static_cast<int64_t>(size);
}

void collectTensors(const ql::onnx::Graph& g, std::vector<const ql::onnx::Tensor*>* out, int depth = 0) {
  for (const auto& t : g.initializers) out->push_back(&t);
  for (const auto& n : g.nodes)
    for (const auto& a : n.attributes) {
      if (a.t) out->push_back(a.t.get());
      for (const auto& t : a.tensors) out->push_back(&t);
      if (a.g) collectTensors(*a.g, out, depth + 1);
      for (const auto& sg : a.graphs) collectTensors(sg, out, depth + 1);
    }
}

// Layers of the unmutated model whose analysis is known to succeed: a mutant whose
// layer reads exactly the same float32 bytes with the same layout would repeat it bit
// for bit, so the (slow, under sanitizers) statistics are skipped for it.
struct KnownLayers {
  struct Key {
    size_t offset, size;
    ql::stats::ChannelLayout layout;
  };
  std::vector<Key> keys;
  std::vector<size_t> touched;  // byte positions changed in the current mutant
};

bool sameLayout(const ql::stats::ChannelLayout& a, const ql::stats::ChannelLayout& b) {
  return a.outer == b.outer && a.rows == b.rows && a.channels == b.channels && a.inner == b.inner;
}

bool plainFloat(const ql::graph::Layer& L) {
  return !L.quant.present && !L.weight->external && L.weight->hasRawData && L.weight->dataType == ql::onnx::kFloat;
}

// Runs the whole pipeline on `buf` (which must be an exact-size allocation).
// Reads from an in-memory file, as the WASM build reads from a file or a Blob.
class MemoryReader : public ql::onnx::ByteReader {
 public:
  explicit MemoryReader(const std::vector<uint8_t>& b) : b_(b) {}
  bool read(uint64_t offset, uint8_t* dst, uint64_t length) override {
    if (offset > b_.size() || length > b_.size() - offset) return false;
    std::memcpy(dst, b_.data() + offset, length);
    return true;
  }

 private:
  const std::vector<uint8_t>& b_;
};

// The skimmed image (large payloads unread, here left as 0xAB) must parse to the same
// verdict as the whole file: the skimmer may never hide or invent a problem.
void skimAgrees(const std::vector<uint8_t>& buf, const ql::Result<ql::onnx::Model>& direct, Tally& t, const std::string& where) {
  MemoryReader in(buf);
  std::vector<uint8_t> image(buf.size(), 0xAB);
  ql::onnx::SkimOptions o;
  o.skipAtLeast = 8;  // skip nearly every payload, to exercise the skimmer
  o.readChunk = 1;    // and read no further ahead than each step needs
  auto skim = ql::onnx::skimModel(in, buf.size(), image.data(), o);
  if (!skim.ok()) {
    t.problem("skim failed on a readable file: " + skim.error().describe(), where);
    return;
  }
  auto m = ql::onnx::parseModel(image.data(), image.size());
  if (m.ok() != direct.ok() ||
      (!m.ok() && (m.error().message != direct.error().message || m.error().offset != direct.error().offset))) {
    t.problem("skimmed image parses differently: '" + (m.ok() ? std::string("ok") : m.error().describe()) + "' vs '" +
                  (direct.ok() ? std::string("ok") : direct.error().describe()) + "'",
              where);
  }
}

void exercise(const std::vector<uint8_t>& buf, Tally& t, const std::string& where, const KnownLayers* known = nullptr) {
  ++t.inputs;
  auto m = ql::onnx::parseModel(buf.data(), buf.size());
  skimAgrees(buf, m, t, where);
  if (!m.ok()) {
    ++t.rejected;
    if (!errorIsSound(m.error(), buf.size())) t.problem("unsound parse error '" + m.error().describe() + "'", where);
    return;
  }
  ++t.parsed;
  const uint8_t* lo = buf.data();
  const uint8_t* hi = buf.data() + buf.size();
  // Every tensor: read as float (and small ones as double) or fail with a message.
  std::vector<const ql::onnx::Tensor*> tensors;
  collectTensors(m->graph, &tensors);
  for (const auto* tp : tensors) {
    auto f = ql::onnx::readAsFloat(*tp);
    if (!f.ok()) {
      if (!errorIsSound(f.error(), buf.size())) t.problem("unsound readAsFloat error '" + f.error().describe() + "'", where);
    } else if (f->isView() && (f->bytes < lo || f->bytes + 4 * f->count > hi)) {
      t.problem("a float view outside the input", where);
    }
    uint64_t n = 0;
    if (tp->elementCount(&n) && n <= 4096) {
      auto d = ql::onnx::readAsDouble(*tp);
      if (!d.ok() && !errorIsSound(d.error(), buf.size())) t.problem("unsound readAsDouble error", where);
      if (d.ok() && d->size() != n) t.problem("readAsDouble returned the wrong count", where);
    }
    if (tp->external) {
      auto r = ql::onnx::externalRef(*tp);
      if (!r.ok() && !errorIsSound(r.error(), buf.size())) t.problem("unsound externalRef error", where);
    }
  }
  // Cross Layer Equalization: an error value, or a model that parses again.
  {
    ql::cle::Options co;
    co.histogramBins = 8;
    auto e = ql::cle::equalize(buf.data(), buf.size(), co);
    if (!e.ok()) {
      if (!errorIsSound(e.error(), buf.size())) t.problem("unsound equalize error '" + e.error().describe() + "'", where);
    } else if (e->report.changed()) {
      const auto written = e->bytes(buf.data());
      auto again = ql::onnx::parseModel(written.data(), written.size());
      if (!again.ok()) t.problem("equalized model does not parse: " + again.error().describe(), where);
    } else if (e->bytes(buf.data()) != buf) {
      t.problem("nothing equalized, yet the bytes changed", where);
    }
  }
  auto d = ql::graph::findLayers(m.value());
  if (!d.ok()) {
    if (!errorIsSound(d.error(), buf.size())) t.problem("unsound findLayers error", where);
    return;
  }
  ql::stats::Options opts;
  opts.histogramBins = 32;
  for (const auto& L : d->layers) {
    ++t.layers;
    if (L.weight == nullptr) {
      t.problem("layer without a weight", where);
      continue;
    }
    if (known && plainFloat(L)) {
      const size_t off = static_cast<size_t>(L.weight->rawData.data - buf.data());
      const size_t size = L.weight->rawData.size;
      bool same = false;
      for (const auto& k : known->keys) same = same || (k.offset == off && k.size == size && sameLayout(k.layout, L.layout));
      for (size_t p : known->touched) same = same && !(p >= off && p < off + size);
      if (same) {
        ++t.analysed;
        continue;
      }
    }
    auto a = ql::analysis::analyzeLayer(L, {}, opts);
    if (!a.ok()) {
      ++t.layerErrors;
      if (!errorIsSound(a.error(), buf.size())) t.problem("unsound analyzeLayer error '" + a.error().describe() + "'", where);
      continue;
    }
    ++t.analysed;
    const auto& s = a->stats;
    uint64_t total = 0;
    for (uint32_t h : s.histogram) total += h;
    if (s.channels != L.layout.channelCount() || total != L.layout.elementCount() || s.min.size() != s.channels) {
      t.problem("inconsistent statistics for layer " + L.name, where);
    }
    for (int k = 0; k < ql::stats::kSchemes; ++k)
      if (std::isnan(s.sqnr[k])) t.problem("NaN SQNR for layer " + L.name, where);
  }
}

void requireClean(const Tally& t) {
  INFO("inputs " << t.inputs << ", parsed " << t.parsed << ", rejected " << t.rejected << ", layers " << t.layers << ", analysed "
                 << t.analysed << ", layer errors " << t.layerErrors);
  for (const auto& p : t.problems) UNSCOPED_INFO(p);
  CHECK(t.problems.empty());
}

std::vector<float> ramp(size_t n, float scale = 0.05f, int period = 13) {
  std::vector<float> v(n);
  for (size_t i = 0; i < n; ++i)
    v[i] = scale * static_cast<float>(static_cast<int>(i % static_cast<size_t>(period)) - period / 2);
  return v;
}

// A small model with most of what the decoder and the layer finder handle.
Msg richModel() {
  pb::GraphBuilder g;
  g.name = "rich";
  g.input("x", {1, 3, 8, 8}).output("y", {1, 6});
  // Conv + BatchNormalization + Relu
  g.init(pb::floatTensor("conv_w", {4, 3, 3, 3}, ramp(108)));
  g.init(pb::floatTensor("conv_b", {4}, {0.1f, -0.1f, 0.2f, 0.0f}));
  for (const char* n : {"bn_s", "bn_b", "bn_m", "bn_v"}) g.init(pb::floatTensor(n, {4}, {1, 1, 1, 1}));
  g.add(pb::node("Conv", {"x", "conv_w", "conv_b"}, {"c1"}, "conv1",
                 {pb::attrInts("kernel_shape", {3, 3}), pb::attrInt("group", 1)}));
  g.add(pb::node("BatchNormalization", {"c1", "bn_s", "bn_b", "bn_m", "bn_v"}, {"b1"}, "bn1", {pb::attrFloat("epsilon", 1e-5f)}));
  g.add(pb::node("Relu", {"b1"}, {"r1"}, "relu1"));
  // depthwise Conv on float16 weights through a Cast, then Clip(0, 6) from Constant nodes
  std::string halfs;
  for (int i = 0; i < 36; ++i)
    halfs += std::string(1, static_cast<char>(i * 7)) + std::string(1, static_cast<char>(0x30 + i % 8));
  g.init(pb::rawTensor("dw_w16", pb::kFloat16, {4, 1, 3, 3}, halfs));
  g.add(pb::node("Cast", {"dw_w16"}, {"dw_w"}, "cast", {pb::attrInt("to", 1)}));
  g.add(pb::node("Conv", {"r1", "dw_w"}, {"c2"}, "dw", {pb::attrInt("group", 4)}));
  g.add(pb::constantNode("lo", pb::floatTensor("lo_t", {}, {0.0f}), "const_lo"));
  g.add(pb::node("Constant", {}, {"hi"}, "const_hi", {pb::attrFloat("value_float", 6.0f)}));
  g.add(pb::node("Clip", {"c2", "lo", "hi"}, {"r2"}, "clip"));
  // int8 weights with per-axis DequantizeLinear
  std::vector<int8_t> q(16);
  for (int i = 0; i < 16; ++i) q[static_cast<size_t>(i)] = static_cast<int8_t>(i * 17 - 120);
  g.init(pb::int8Tensor("q_w", {4, 4, 1, 1}, q));
  g.init(pb::floatTensor("q_s", {4}, {0.01f, 0.02f, 0.03f, 0.04f}));
  g.init(pb::int8Tensor("q_z", {4}, {0, 1, -1, 2}));
  g.add(pb::node("DequantizeLinear", {"q_w", "q_s", "q_z"}, {"dq_w"}, "dq", {pb::attrInt("axis", 0)}));
  g.add(pb::node("Conv", {"r2", "dq_w"}, {"c3"}, "qconv"));
  // QLinearConv with per-channel scale
  g.init(pb::int8Tensor("ql_w", {2, 4, 1, 1}, {1, 2, 3, 4, -1, -2, -3, -4}));
  g.init(pb::floatTensor("ql_s", {2}, {0.5f, 0.25f}));
  g.init(pb::int8Tensor("ql_z", {2}, {0, 0}));
  g.add(pb::node("QLinearConv", {"c3", "xs", "xz", "ql_w", "ql_s", "ql_z", "ys", "yz"}, {"c4"}, "qlconv"));
  // grouped ConvTranspose
  g.init(pb::floatTensor("ct_w", {4, 2, 2, 2}, ramp(32)));
  g.add(pb::node("ConvTranspose", {"r1", "ct_w"}, {"ct"}, "deconv", {pb::attrInt("group", 2)}));
  // Flatten -> MatMul on a Transpose of typed float_data, bias Add, SiLU
  g.add(pb::node("Flatten", {"c3"}, {"f"}, "flat"));
  Msg wt = pb::tensorHeader("fc_wt", pb::kFloat, {6, 8});
  wt.packedFloats(pb::kFloatData, ramp(48));
  g.init(wt);
  g.add(pb::node("Transpose", {"fc_wt"}, {"fc_w"}, "tr", {pb::attrInts("perm", {1, 0})}));
  g.add(pb::node("MatMul", {"f", "fc_w"}, {"mm"}, "fc"));
  g.init(pb::floatTensor("fc_b", {6}, ramp(6)));
  g.add(pb::node("Add", {"mm", "fc_b"}, {"y0"}, "fc_add"));
  g.add(pb::node("Sigmoid", {"y0"}, {"sg"}, "sig"));
  g.add(pb::node("Mul", {"y0", "sg"}, {"y1"}, "mul"));
  // Gemm on float64 weights in double_data
  Msg gd = pb::tensorHeader("gemm_w", pb::kDouble, {6, 6});
  std::vector<double> dv(36);
  for (int i = 0; i < 36; ++i) dv[static_cast<size_t>(i)] = 0.01 * (i % 11) - 0.05;
  gd.packedDoubles(pb::kDoubleData, dv);
  g.init(gd);
  g.add(pb::node("Gemm", {"y1", "gemm_w"}, {"y2"}, "gemm", {pb::attrInt("transB", 1)}));
  // an If whose branch has a Gemm on float16 weights in int32_data and uses an outer initializer
  pb::GraphBuilder thenG;
  thenG.name = "then";
  Msg gw = pb::tensorHeader("sub_w", pb::kFloat16, {6, 6});
  std::vector<int64_t> hv(36);
  for (int i = 0; i < 36; ++i) hv[static_cast<size_t>(i)] = 0x3000 + i * 3;
  gw.packedInts(pb::kInt32Data, hv);
  thenG.init(gw);
  thenG.add(pb::node("Gemm", {"y2", "sub_w"}, {"t_out"}, "sub_gemm", {pb::attrInt("transB", 1)}));
  thenG.add(pb::node("MatMul", {"t_out", "gemm_w"}, {"t2"}, "sub_mm"));
  pb::GraphBuilder elseG;
  elseG.name = "else";
  elseG.add(pb::node("Identity", {"y2"}, {"e_out"}, "id"));
  g.add(pb::node("If", {"cond"}, {"y"}, "branch",
                 {pb::attrGraph("then_branch", thenG.build()), pb::attrGraph("else_branch", elseG.build())}));
  // a weight kept in an external file
  g.init(pb::externalTensor("ext_w", pb::kFloat, {2, 4, 1, 1}, "ext.bin", "0", "32"));
  g.add(pb::node("Conv", {"r1", "ext_w"}, {"e"}, "extconv"));
  Msg m = pb::model(g.build(), 8, 13);
  Msg meta;
  meta.str(1, "k").str(2, "v");
  m.msg(14, meta).str(6, "doc");
  return m;
}

// Byte ranges of tensor values (raw_data and packed typed fields), to aim most
// mutations at the structure around them.
std::vector<std::pair<size_t, size_t>> payloadRanges(const std::vector<uint8_t>& buf) {
  std::vector<std::pair<size_t, size_t>> out;
  auto m = ql::onnx::parseModel(buf.data(), buf.size());
  if (!m.ok()) return out;
  std::vector<const ql::onnx::Tensor*> ts;
  collectTensors(m->graph, &ts);
  for (const auto* t : ts) {
    ql::wire::Reader r(t->message, buf.data());
    ql::wire::Field f;
    while (!r.done() && r.next(&f)) {
      const bool values = f.number == 9 || f.number == 4 || f.number == 5 || f.number == 7 || f.number == 10 || f.number == 11;
      if (values && f.type == ql::wire::kLen && f.bytes.size > 16) {
        const size_t b = static_cast<size_t>(f.bytes.data - buf.data());
        out.emplace_back(b, b + f.bytes.size);
      }
    }
  }
  return out;
}

bool inRanges(const std::vector<std::pair<size_t, size_t>>& ranges, size_t p) {
  for (const auto& r : ranges)
    if (p >= r.first && p < r.second) return true;
  return false;
}

// Single-byte replacement values tried at every position.
uint8_t mutateByte(uint8_t b, int kind) {
  switch (kind) {
    case 0:
      return 0x00;
    case 1:
      return 0xff;
    case 2:
      return 0x80;
    case 3:
      return 0x7f;
    case 4:
      return static_cast<uint8_t>(b ^ 0x01);
    case 5:
      return static_cast<uint8_t>(b ^ 0x80);  // a varint's continuation bit
    case 6:
      return static_cast<uint8_t>(b + 1);  // lengths and dims off by one
    default:
      return static_cast<uint8_t>(b ^ 0x07);  // the wire type bits
  }
}

// `count` random mutants: 1-4 changed bytes each, mostly outside weight payloads;
// every tenth one also inserts or deletes bytes. Each mutant is its own exact-size buffer
// only when its size changes; otherwise `buf` is mutated in place and restored.
void randomMutants(std::vector<uint8_t> buf, size_t count, uint32_t seed, Tally& t, const char* label, bool skipKnown = false) {
  const auto ranges = payloadRanges(buf);
  KnownLayers known;
  if (skipKnown) {
    auto m = ql::onnx::parseModel(buf.data(), buf.size());
    REQUIRE(m.ok());
    auto d = ql::graph::findLayers(m.value());
    for (const auto& L : d->layers) {
      if (!plainFloat(L) || !ql::analysis::analyzeLayer(L, {}, {}).ok()) continue;
      known.keys.push_back({static_cast<size_t>(L.weight->rawData.data - buf.data()), L.weight->rawData.size, L.layout});
    }
    REQUIRE(!known.keys.empty());
  }
  auto inPayload = [&](size_t p) { return inRanges(ranges, p); };
  std::mt19937 rng(seed);
  const size_t n = buf.size();
  for (size_t i = 0; i < count; ++i) {
    const std::string where = std::string(label) + " mutant " + std::to_string(i) + " (seed " + std::to_string(seed) + ")";
    const int edits = 1 + static_cast<int>(rng() % 4);
    std::vector<std::pair<size_t, uint8_t>> saved;
    known.touched.clear();
    for (int e = 0; e < edits; ++e) {
      size_t p = rng() % n;
      // three in four edits land outside the weight payloads
      for (int tries = 0; tries < 64 && rng() % 4 != 0 && inPayload(p); ++tries) p = rng() % n;
      saved.emplace_back(p, buf[p]);
      known.touched.push_back(p);
      const uint32_t r = rng();
      buf[p] = (r & 0x100) ? static_cast<uint8_t>(r) : static_cast<uint8_t>(buf[p] ^ (1u << (r % 8)));
    }
    if (i % 10 == 9) {
      std::vector<uint8_t> edited = buf;
      const size_t p = rng() % n;
      const size_t len = 1 + rng() % 8;
      if (rng() % 2)
        edited.erase(edited.begin() + static_cast<long>(p), edited.begin() + static_cast<long>(std::min(n, p + len)));
      else
        edited.insert(edited.begin() + static_cast<long>(p), len, static_cast<uint8_t>(rng()));
      edited.shrink_to_fit();
      std::vector<uint8_t> exact(edited.begin(), edited.end());
      exercise(exact, t, where + " +indel");  // offsets shift: no shortcuts
    } else {
      exercise(buf, t, where, skipKnown ? &known : nullptr);
    }
    for (auto it = saved.rbegin(); it != saved.rend(); ++it) buf[it->first] = it->second;
  }
}

}  // namespace

TEST_CASE("bad input: the hand-built model is sound to begin with", "[bad]") {
  const auto buf = pb::toVec(richModel());
  auto m = ql::onnx::parseModel(buf.data(), buf.size());
  REQUIRE(m.ok());
  auto d = ql::graph::findLayers(m.value());
  REQUIRE(d.ok());
  CHECK(d->skipped.empty());
  std::vector<std::string> names;
  for (const auto& L : d->layers) names.push_back(L.name);
  CHECK(names ==
        std::vector<std::string>{"conv1", "dw", "qconv", "qlconv", "deconv", "fc", "gemm", "sub_gemm", "sub_mm", "extconv"});
  for (const auto& L : d->layers) {
    auto a = ql::analysis::analyzeLayer(L, {}, {});
    INFO(L.name);
    if (L.name == "extconv") {
      REQUIRE_FALSE(a.ok());
      CHECK(a.error().code == ErrorCode::MissingExternalData);
    } else {
      REQUIRE(a.ok());
    }
  }
  Tally t;
  exercise(buf, t, "original");
  requireClean(t);
  CHECK(t.analysed == 9);
}

TEST_CASE("bad input: every truncation of the hand-built model", "[bad][truncate]") {
  const auto full = pb::toVec(richModel());
  Tally t;
  for (size_t cut = 0; cut <= full.size(); ++cut) {
    std::vector<uint8_t> buf(full.begin(), full.begin() + static_cast<long>(cut));
    exercise(buf, t, "cut " + std::to_string(cut));
  }
  requireClean(t);
  CHECK(t.parsed >= 1);  // the whole model (and cuts on top-level field boundaries)
  CHECK(t.rejected > full.size() / 2);
}

TEST_CASE("bad input: every truncation of the hand-built graph, lengths fixed up", "[bad][truncate]") {
  // Cut inside the graph while keeping the outer lengths consistent, so that the
  // truncation is met by the nested readers (node, attribute, tensor, sub-graph).
  Msg m = richModel();
  const auto buf = pb::toVec(m);
  auto parsed = ql::onnx::parseModel(buf.data(), buf.size());
  REQUIRE(parsed.ok());
  // Rebuild the model around a prefix of the encoded graph.
  const std::string graphBytes = [&] {
    ql::wire::Reader r({buf.data(), buf.size()}, buf.data());
    ql::wire::Field f;
    while (r.next(&f))
      if (f.number == 7) return std::string(f.bytes.str());
    return std::string();
  }();
  REQUIRE(!graphBytes.empty());
  Tally t;
  for (size_t cut = 0; cut <= graphBytes.size(); ++cut) {
    Msg mm;
    mm.i64(1, 8).bytes(7, graphBytes.substr(0, cut));
    std::vector<uint8_t> b = pb::toVec(mm);
    exercise(b, t, "graph cut " + std::to_string(cut));
  }
  requireClean(t);
  CHECK(t.rejected > 0);
  CHECK(t.parsed > 0);
}

TEST_CASE("bad input: every single-byte mutation of the hand-built model", "[bad][mutate]") {
  auto buf = pb::toVec(richModel());
  const auto values = payloadRanges(buf);
  REQUIRE(values.size() >= 5);
  Tally t;
  for (size_t p = 0; p < buf.size(); ++p) {
    const uint8_t orig = buf[p];
    // every kind on the structure; inside tensor values, one (sign / exponent / varint bit)
    for (int kind : inRanges(values, p) ? std::vector<int>{5} : std::vector<int>{0, 1, 5, 6, 7}) {
      buf[p] = mutateByte(orig, kind);
      if (buf[p] == orig) continue;
      exercise(buf, t, "byte " + std::to_string(p) + " kind " + std::to_string(kind));
    }
    buf[p] = orig;
  }
  requireClean(t);
  CHECK(t.parsed > 0);
  CHECK(t.rejected > 0);
  CHECK(t.layerErrors > 0);
}

TEST_CASE("bad input: random mutations of the hand-built model", "[bad][mutate]") {
  Tally t;
  randomMutants(pb::toVec(richModel()), 3000, 12345, t, "hand-built");
  requireClean(t);
  CHECK(t.parsed > 0);
  CHECK(t.rejected > 0);
}

TEST_CASE("bad input: truncations of a real model", "[bad][truncate][real]") {
  const auto full = realModel();
  if (full.empty()) return;
  Tally t;
  auto cutAt = [&](size_t cut) {
    std::vector<uint8_t> buf(full.begin(), full.begin() + static_cast<long>(cut));
    exercise(buf, t, "cut " + std::to_string(cut));
    if (!buf.empty() && cut < full.size()) {
      // a truncated ONNX file is a broken model, not something else
      auto m = ql::onnx::parseModel(buf.data(), buf.size());
      // (a cut on a field boundary before the graph leaves a model without one: that
      // is reported as "no graph found" and is fine)
      if (!m.ok() && cut > 2 && m.error().message.find("not an ONNX model") != std::string::npos &&
          m.error().message.find("no graph") == std::string::npos)
        t.problem("truncated real model reported as not ONNX: " + m.error().message, "cut " + std::to_string(cut));
    }
  };
  for (size_t cut = 0; cut < std::min<size_t>(4096, full.size()); ++cut) cutAt(cut);
  for (size_t cut = 4096; cut < full.size(); cut += 997) cutAt(cut);
  for (size_t cut = full.size() - std::min<size_t>(64, full.size()); cut <= full.size(); ++cut) cutAt(cut);
  requireClean(t);
  CHECK(t.parsed >= 1);
  CHECK(t.analysed >= 5);
}

TEST_CASE("bad input: truncations inside a real model's graph, lengths fixed up", "[bad][truncate][real]") {
  const auto full = realModel();
  if (full.empty()) return;
  std::string head, graphBytes;
  {
    ql::wire::Reader r({full.data(), full.size()}, full.data());
    ql::wire::Field f;
    while (r.next(&f)) {
      if (f.number == 7)
        graphBytes = std::string(f.bytes.str());
      else if (f.number == 1)
        head += pbw::tag(1, 0) + pbw::varint(f.varint);
    }
  }
  REQUIRE(!graphBytes.empty());
  Tally t;
  auto cutAt = [&](size_t cut) {
    Msg mm;
    mm.raw(head).bytes(7, graphBytes.substr(0, cut));
    std::vector<uint8_t> b = pb::toVec(mm);
    exercise(b, t, "graph cut " + std::to_string(cut));
  };
  for (size_t cut = 0; cut < std::min<size_t>(2048, graphBytes.size()); ++cut) cutAt(cut);
  for (size_t cut = 2048; cut < graphBytes.size(); cut += 613) cutAt(cut);
  cutAt(graphBytes.size());
  requireClean(t);
  CHECK(t.parsed > 0);
  CHECK(t.rejected > 0);
}

TEST_CASE("bad input: random mutations of a real model", "[bad][mutate][real]") {
  const auto full = realModel();
  if (full.empty()) return;
  Tally t;
  randomMutants(full, 3000, 777, t, "mnist", true);
  requireClean(t);
  CHECK(t.parsed > 0);
  CHECK(t.rejected > 0);
  CHECK(t.analysed > 0);
}

// ---- specific malformations ------------------------------------------------------------

namespace {

struct Parse {
  std::vector<uint8_t> bytes;
  ql::Result<ql::onnx::Model> r;
  explicit Parse(const Msg& m) : bytes(pb::toVec(m)), r(ql::onnx::parseModel(bytes.data(), bytes.size())) {}
  explicit Parse(std::vector<uint8_t> b) : bytes(std::move(b)), r(ql::onnx::parseModel(bytes.data(), bytes.size())) {}
  std::string message() const { return r.ok() ? std::string() : r.error().message; }
};

Msg modelWith(const Msg& tensor) {
  pb::GraphBuilder g;
  g.init(tensor);
  g.add(pb::node("MatMul", {"x", "T"}, {"y"}, "mm"));
  return pb::model(g.build());
}

}  // namespace

TEST_CASE("bad input: negative dimensions", "[bad][dims]") {
  for (const std::vector<int64_t>& dims :
       {std::vector<int64_t>{-1, 3}, std::vector<int64_t>{3, -1}, std::vector<int64_t>{std::numeric_limits<int64_t>::min()},
        std::vector<int64_t>{0, -5}}) {
    Parse p(modelWith(pb::rawTensor("T", pb::kFloat, dims, "")));
    REQUIRE_FALSE(p.r.ok());
    CHECK(p.r.error().code == ErrorCode::InvalidModel);
    CHECK(p.message().find("'T'") != std::string::npos);
    CHECK(p.message().find("negative dimension") != std::string::npos);
    CHECK(p.r.error().offset > 0);
  }
  {  // unpacked, and in a Constant node's tensor inside a sub-graph
    Msg t;
    t.i64(pb::kDims, 2).i64(pb::kDims, -2).i32(pb::kDataType, 1).str(pb::kName, "neg");
    pb::GraphBuilder sub;
    sub.add(pb::constantNode("c", t));
    pb::GraphBuilder g;
    g.add(pb::node("Loop", {}, {"o"}, "loop", {pb::attrGraph("body", sub.build())}));
    Parse p(pb::model(g.build()));
    REQUIRE_FALSE(p.r.ok());
    CHECK(p.message().find("'neg' has negative dimension -2") != std::string::npos);
  }
}

TEST_CASE("bad input: dimensions whose product overflows", "[bad][dims]") {
  const int64_t big = int64_t{1} << 31;
  for (const std::vector<int64_t>& dims :
       {std::vector<int64_t>{big, big, 4}, std::vector<int64_t>{int64_t{1} << 62, 2},
        std::vector<int64_t>{std::numeric_limits<int64_t>::max(), 2},
        std::vector<int64_t>{3, std::numeric_limits<int64_t>::max()}, std::vector<int64_t>{65536, 65536, 65536, 65536}}) {
    Parse p(modelWith(pb::rawTensor("T", pb::kFloat, dims, std::string(16, '\0'))));
    REQUIRE_FALSE(p.r.ok());
    CHECK(p.message().find("'T'") != std::string::npos);
    CHECK(p.message().find("overflows") != std::string::npos);
  }
  {  // a zero dimension makes the product 0 however large the others
    Parse p(modelWith(pb::rawTensor("T", pb::kFloat, {0, int64_t{1} << 62, int64_t{1} << 62}, "")));
    REQUIRE(p.r.ok());
    auto d = ql::graph::findLayers(p.r.value());
    REQUIRE(d.ok());
    for (const auto& L : d->layers) {
      auto a = ql::analysis::analyzeLayer(L, {}, {});
      CHECK_FALSE(a.ok());
    }
  }
  {  // 2^62 elements declared, nothing stored: an error, never an allocation
    Parse p(modelWith(pb::tensorHeader("T", pb::kFloat, {big, big})));
    REQUIRE(p.r.ok());
    auto d = ql::graph::findLayers(p.r.value());
    REQUIRE(d.ok());
    REQUIRE(d->layers.size() == 1);
    auto a = ql::analysis::analyzeLayer(d->layers[0], {}, {});
    REQUIRE_FALSE(a.ok());
    CHECK(a.error().message.find("stores no values") != std::string::npos);
    // the same tensor kept externally
    Parse e(modelWith(pb::externalTensor("T", pb::kFloat, {big, big}, "w.bin", "0", "")));
    REQUIRE(e.r.ok());
    auto de = ql::graph::findLayers(e.r.value());
    REQUIRE(de->layers.size() == 1);
    auto ae = ql::analysis::analyzeLayer(de->layers[0], {}, {});
    REQUIRE_FALSE(ae.ok());
    CHECK(ae.error().code == ErrorCode::MissingExternalData);
    std::vector<uint8_t> few(64, 0);
    auto af = ql::analysis::analyzeLayer(de->layers[0], ql::wire::Bytes{few.data(), few.size()}, {});
    REQUIRE_FALSE(af.ok());
    CHECK(af.error().code == ErrorCode::MissingExternalData);
  }
}

TEST_CASE("bad input: raw_data whose size does not match dims x dtype", "[bad][raw]") {
  struct Case {
    int32_t dt;
    std::vector<int64_t> dims;
    size_t bytes;
  };
  const Case cases[] = {
      {pb::kFloat, {2, 3}, 20},
      {pb::kFloat, {2, 3}, 28},
      {pb::kFloat, {2, 3}, 0},
      {pb::kFloat16, {3}, 5},
      {pb::kInt8, {4}, 3},
      {pb::kDouble, {2}, 12},
      {pb::kFloat, {int64_t{1} << 31, int64_t{1} << 31}, 16},
      {pb::kFloat, {}, 3},
      {pb::kBFloat16, {2, 2}, 9},
  };
  for (const auto& c : cases) {
    Parse p(modelWith(pb::rawTensor("T", c.dt, c.dims, std::string(c.bytes, '\x01'))));
    INFO("dtype " << c.dt << " bytes " << c.bytes);
    REQUIRE_FALSE(p.r.ok());
    CHECK(p.r.error().code == ErrorCode::InvalidModel);
    CHECK(p.message().find("'T'") != std::string::npos);
    CHECK(p.message().find(std::to_string(c.bytes) + " bytes of raw_data") != std::string::npos);
  }
}

TEST_CASE("bad input: typed value counts that do not match the dims", "[bad][typed]") {
  {
    Msg t = pb::tensorHeader("T", pb::kFloat, {4});
    t.packedFloats(pb::kFloatData, {1, 2, 3});
    Parse p(modelWith(t));
    REQUIRE_FALSE(p.r.ok());
    CHECK(p.message().find("3 typed values for 4 elements") != std::string::npos);
  }
  {
    Msg t = pb::tensorHeader("T", pb::kFloat, {4});
    t.packedFloats(pb::kFloatData, {1, 2, 3}).f32(pb::kFloatData, 4).f32(pb::kFloatData, 5);
    Parse p(modelWith(t));
    REQUIRE_FALSE(p.r.ok());
    CHECK(p.message().find("5 typed values for 4 elements") != std::string::npos);
  }
  {
    Msg t = pb::tensorHeader("T", pb::kFloat16, {2, 2});
    t.packedInts(pb::kInt32Data, {0x3c00, 0x3c00, 0x3c00});
    Parse p(modelWith(t));
    REQUIRE_FALSE(p.r.ok());
  }
  {  // complex64 needs two floats per element
    Msg t = pb::tensorHeader("T", pb::kComplex64, {2});
    t.packedFloats(pb::kFloatData, {1, 2, 3});
    Parse p(modelWith(t));
    REQUIRE_FALSE(p.r.ok());
  }
  {  // a count of 2^62 elements against a handful of values
    Msg t = pb::tensorHeader("T", pb::kInt64, {int64_t{1} << 31, int64_t{1} << 31});
    t.packedInts(pb::kInt64Data, {1, 2});
    Parse p(modelWith(t));
    REQUIRE_FALSE(p.r.ok());
  }
}

TEST_CASE("bad input: sub-graphs nested 1000 deep are rejected by the depth limit", "[bad][depth]") {
  for (int levels : {33, 1000}) {
    // Build from the inside out; each level is a node with a graph attribute.
    std::string g = pb::GraphBuilder().build().b;
    for (int i = 0; i < levels; ++i) {
      Msg attr;
      attr.str(1, "body").i32(20, pb::kAttrGraph).bytes(6, g);
      Msg node;
      node.str(4, "Loop").msg(5, attr);
      Msg outer;
      outer.msg(1, node);
      g = std::move(outer.b);
    }
    Msg m;
    m.i64(1, 8).bytes(7, g);
    Parse p(m);
    INFO("levels " << levels);
    REQUIRE_FALSE(p.r.ok());
    CHECK(p.r.error().code == ErrorCode::InvalidModel);
    CHECK(p.message().find("nested deeper than 32") != std::string::npos);
  }
  {  // the same through the repeated `graphs` attribute (field 11)
    std::string g = pb::GraphBuilder().build().b;
    for (int i = 0; i < 1000; ++i) {
      Msg attr;
      attr.str(1, "branches").i32(20, pb::kAttrGraphs).bytes(11, g);
      Msg outer;
      outer.msg(1, Msg().str(4, "X").msg(5, attr));
      g = std::move(outer.b);
    }
    Parse p(Msg().i64(1, 8).bytes(7, g));
    REQUIRE_FALSE(p.r.ok());
    CHECK(p.message().find("nested deeper") != std::string::npos);
  }
  {  // and inside a FunctionProto's nodes
    std::string g = pb::GraphBuilder().build().b;
    for (int i = 0; i < 1000; ++i) {
      Msg attr;
      attr.str(1, "body").bytes(6, g);
      Msg outer;
      outer.msg(1, Msg().str(4, "Loop").msg(5, attr));
      g = std::move(outer.b);
    }
    Msg fn;
    fn.str(1, "f").msg(7, Msg().str(4, "Loop").msg(5, Msg().str(1, "body").bytes(6, g)));
    Parse p(Msg().i64(1, 8).msg(7, Msg()).msg(25, fn));
    REQUIRE_FALSE(p.r.ok());
    CHECK(p.message().find("nested deeper") != std::string::npos);
  }
}

TEST_CASE("bad input: text and other file formats are not ONNX models", "[bad][format]") {
  const std::string texts[] = {
      "hello world\n",
      "This is a plain text file. It is not a model.\n",
      "batch_size: 32\nlearning_rate: 0.001\nepochs: 100\n",
      "banana bread recipe: take three ripe bananas and mash them well, then add flour and sugar, stir, and bake "
      "for an hour at 180 degrees until golden brown on top and done in the middle.\n",
      "{\"name\": \"model\", \"layers\": [1, 2, 3]}",
      "a,b,c\n1,2,3\n4,5,6\n",
      "#!/usr/bin/env python3\nimport onnx\nprint(onnx.__version__)\n",
      "<?xml version=\"1.0\"?><model/>",
      "\xef\xbb\xbfUTF-8 with a byte order mark",
  };
  for (const auto& t : texts) {
    Parse p(bytesOf(t));
    INFO("text: " << t);
    REQUIRE_FALSE(p.r.ok());
    CHECK(p.r.error().code == ErrorCode::InvalidModel);
    CHECK(p.message().find("not an ONNX model") == 0);
  }
  // This project's own sources and docs as text files.
  for (const char* rel : {"/CMakeLists.txt", "/src/onnx/parse.cpp", "/src/stats/stats.hpp", "/tests/native/test_bad_input.cpp"}) {
    auto b = readFile(std::string(QL_SOURCE_DIR) + rel);
    if (b.empty()) continue;
    Parse p(std::move(b));
    INFO("file " << rel);
    REQUIRE_FALSE(p.r.ok());
    CHECK(p.message().find("not an ONNX model") == 0);
  }
  const std::string binaries[] = {
      std::string("\x89PNG\r\n\x1a\n", 8),
      std::string("\x89PNG\r\n\x1a\n\x00\x00\x00\x0dIHDR\x00\x00\x01\x00\x00\x00\x01\x00\x08\x06\x00\x00\x00\x1f\x15\xc4\x89",
                  33),
      std::string("PK\x03\x04\x14\x00\x00\x00\x08\x00", 10),        // zip (PyTorch .pt)
      std::string("\xff\xd8\xff\xe0\x00\x10JFIF\x00\x01", 12),      // JPEG
      std::string("%PDF-1.4\n%\xe2\xe3\xcf\xd3\n", 15),             // PDF
      std::string("\x1f\x8b\x08\x00\x00\x00\x00\x00\x00\x03", 10),  // gzip
      std::string("\x1c\x00\x00\x00TFL3\x00\x00\x00\x00", 12),      // TFLite flatbuffer
      std::string("GGUF\x03\x00\x00\x00", 8),                       // GGUF
      std::string("\x93NUMPY\x01\x00v\x00", 10),                    // .npy
      std::string("\x00", 1),
      std::string("\x00\x00\x00\x00", 4),
      std::string(64, '\xff'),
  };
  for (const auto& b : binaries) {
    Parse p(bytesOf(b));
    INFO("binary of " << b.size() << " bytes");
    REQUIRE_FALSE(p.r.ok());
    CHECK(p.r.error().code == ErrorCode::InvalidModel);
    CHECK(p.message().find("not an ONNX model") == 0);
  }
}

TEST_CASE("bad input: empty file", "[bad][format]") {
  std::vector<uint8_t> empty;
  auto r = ql::onnx::parseModel(empty.data(), 0);
  REQUIRE_FALSE(r.ok());
  CHECK(r.error().code == ErrorCode::InvalidModel);
  CHECK(r.error().message.find("empty") != std::string::npos);
  CHECK(r.error().message.find("not an ONNX model") != std::string::npos);
  const uint8_t one = 0;
  auto r2 = ql::onnx::parseModel(&one, 0);
  REQUIRE_FALSE(r2.ok());
  CHECK(r2.error().message.find("empty") != std::string::npos);
}

TEST_CASE("bad input: two graph fields", "[bad][format]") {
  pb::GraphBuilder g;
  g.init(pb::floatTensor("W", {2, 2}, {1, 2, 3, 4}));
  g.add(pb::node("MatMul", {"x", "W"}, {"y"}, "mm"));
  Msg m = pb::model(g.build());
  m.msg(7, g.build());
  Parse p(m);
  REQUIRE_FALSE(p.r.ok());
  CHECK(p.r.error().code == ErrorCode::InvalidModel);
  CHECK(p.message().find("more than one graph") != std::string::npos);
  CHECK(p.r.error().offset > 0);
  // not "not an ONNX model": it is one, just a malformed one
  CHECK(p.message().find("not an ONNX model") == std::string::npos);
}

TEST_CASE("bad input: a truncated real-looking model is not called 'not ONNX'", "[bad][format]") {
  const auto full = pb::toVec(richModel());
  for (size_t cut : {size_t{20}, full.size() / 2, full.size() - 1}) {
    std::vector<uint8_t> b(full.begin(), full.begin() + static_cast<long>(cut));
    Parse p(std::move(b));
    INFO("cut " << cut);
    REQUIRE_FALSE(p.r.ok());
    CHECK(p.message().find("not an ONNX model") == std::string::npos);
    CHECK(p.message().find("past the end") != std::string::npos);
  }
}

TEST_CASE("bad input: lengths and varints that claim too much", "[bad][format]") {
  {  // graph length 2^63
    std::string s = pbw::tag(1, 0) + pbw::varint(8) + pbw::tag(7, 2) + pbw::varint(uint64_t{1} << 63) + "abc";
    Parse p(bytesOf(s));
    REQUIRE_FALSE(p.r.ok());
    CHECK(p.r.error().offset == 2);
  }
  {  // an initializer whose length runs past its graph but not past the file
    Msg g;
    g.raw(pbw::tag(5, 2) + pbw::varint(100) + "xx");
    Msg m;
    m.i64(1, 8).msg(7, g).str(2, std::string(200, 'p'));
    Parse p(m);
    REQUIRE_FALSE(p.r.ok());
    CHECK(p.message().find("length 100") != std::string::npos);
  }
}

TEST_CASE("bad input: NaN and infinite weights fail their layer with a message", "[bad][values]") {
  const float nan = std::numeric_limits<float>::quiet_NaN();
  const float inf = std::numeric_limits<float>::infinity();
  for (float bad : {nan, inf, -inf}) {
    pb::GraphBuilder g;
    g.init(pb::floatTensor("W", {4, 2, 1, 1}, {1, 2, 3, bad, 5, 6, 7, 8}));
    g.init(pb::floatTensor("W2", {2, 2}, {1, 2, 3, 4}));
    g.add(pb::node("Conv", {"x", "W"}, {"y"}, "bad_conv"));
    g.add(pb::node("MatMul", {"y", "W2"}, {"z"}, "good_mm"));
    Parse p(pb::model(g.build()));
    REQUIRE(p.r.ok());
    auto d = ql::graph::findLayers(p.r.value());
    REQUIRE(d->layers.size() == 2);
    auto a = ql::analysis::analyzeLayer(d->layers[0], {}, {});
    REQUIRE_FALSE(a.ok());
    CHECK(a.error().message.find("layer 'bad_conv'") == 0);
    CHECK(a.error().message.find("NaN or infinite") != std::string::npos);
    CHECK(ql::analysis::analyzeLayer(d->layers[1], {}, {}).ok());  // other layers still work
  }
  {  // float16 infinities and NaN reach the same check
    pb::GraphBuilder g;
    g.init(pb::rawTensor("W", pb::kFloat16, {2, 2}, std::string("\x00\x3c\x00\x7c\x00\x3c\x01\x7e", 8)));
    g.add(pb::node("MatMul", {"x", "W"}, {"y"}, "h"));
    Parse p(pb::model(g.build()));
    REQUIRE(p.r.ok());
    auto d = ql::graph::findLayers(p.r.value());
    auto a = ql::analysis::analyzeLayer(d->layers.at(0), {}, {});
    REQUIRE_FALSE(a.ok());
    CHECK(a.error().message.find("2 of 4") != std::string::npos);
  }
}

TEST_CASE("bad input: quantization parameters that cannot be read", "[bad][quant]") {
  {  // a string scale
    Msg scale = pb::tensorHeader("s", pb::kString, {});
    scale.str(pb::kStringData, "0.5");
    pb::GraphBuilder g;
    g.init(pb::int8Tensor("Wq", {2, 2}, {1, 2, 3, 4})).init(scale);
    g.add(pb::node("DequantizeLinear", {"Wq", "s"}, {"W"}, "dq"));
    g.add(pb::node("MatMul", {"x", "W"}, {"y"}, "mm"));
    Parse p(pb::model(g.build()));
    REQUIRE(p.r.ok());
    auto d = ql::graph::findLayers(p.r.value());
    REQUIRE(d->layers.size() == 1);
    auto a = ql::analysis::analyzeLayer(d->layers[0], {}, {});
    REQUIRE_FALSE(a.ok());
    CHECK(a.error().code == ErrorCode::UnsupportedDtype);
    CHECK(a.error().message.find("'s'") != std::string::npos);
  }
  {  // an external zero point with no data
    pb::GraphBuilder g;
    g.init(pb::int8Tensor("Wq", {2, 2}, {1, 2, 3, 4}))
        .init(pb::floatTensor("s", {}, {0.5f}))
        .init(pb::externalTensor("z", pb::kInt8, {}, "z.bin", "0", "1"));
    g.add(pb::node("DequantizeLinear", {"Wq", "s", "z"}, {"W"}, "dq"));
    g.add(pb::node("MatMul", {"x", "W"}, {"y"}, "mm"));
    Parse p(pb::model(g.build()));
    REQUIRE(p.r.ok());
    auto d = ql::graph::findLayers(p.r.value());
    auto a = ql::analysis::analyzeLayer(d->layers.at(0), {}, {});
    REQUIRE_FALSE(a.ok());
    CHECK(a.error().code == ErrorCode::MissingExternalData);
  }
  {  // a scale of NaN makes NaN weights: an error, not NaN statistics
    pb::GraphBuilder g;
    g.init(pb::int8Tensor("Wq", {2, 2}, {1, 2, 3, 4})).init(pb::floatTensor("s", {}, {std::nanf("")}));
    g.add(pb::node("DequantizeLinear", {"Wq", "s"}, {"W"}, "dq"));
    g.add(pb::node("MatMul", {"x", "W"}, {"y"}, "mm"));
    Parse p(pb::model(g.build()));
    REQUIRE(p.r.ok());
    auto d = ql::graph::findLayers(p.r.value());
    auto a = ql::analysis::analyzeLayer(d->layers.at(0), {}, {});
    REQUIRE_FALSE(a.ok());
  }
}
