// Embind bindings: marshal the core's results to JS, nothing more. Per-channel
// arrays cross as typed-array views of the WASM heap (the JS side copies them
// before the next call); strings and scalars as plain values.
#include <emscripten/bind.h>
#include <emscripten/val.h>

#include <cmath>
#include <cstdlib>
#include <memory>
#include <string>

#include "analysis/analyze.hpp"
#include "cle/cle.hpp"
#include "onnx/skim.hpp"

using emscripten::val;
using namespace ql;

namespace {

val str(std::string_view s) { return val(std::string(s)); }

val errorValue(const Error& e) {
  val o = val::object();
  o.set("code", std::string(errorCodeName(e.code)));
  o.set("message", e.describe());
  o.set("offset", static_cast<double>(e.offset));
  return o;
}

template <class T>
val view(const std::vector<T>& v) {
  return val(emscripten::typed_memory_view(v.size(), v.data()));
}

double num(double v) { return v; }

val follower(const graph::Follower& f) {
  val o = val::object();
  o.set("kind", std::string(graph::followerKindName(f.kind)));
  o.set("op", f.node ? str(f.node->opType) : val::null());
  o.set("node", f.node ? val(f.name) : val::null());
  const bool clip = f.kind == graph::FollowerKind::Clip || f.kind == graph::FollowerKind::Relu6;
  o.set("min", clip ? val(num(f.clipMin)) : val::null());
  o.set("max", clip ? val(num(f.clipMax)) : val::null());
  return o;
}

// The statistics as JS values; per-channel arrays are views of `s`.
val layerStatsValue(const stats::LayerStats& s) {
  val o = val::object();
  val ch = val::object();
  ch.set("count", static_cast<double>(s.channels));
  ch.set("min", view(s.min));
  ch.set("max", view(s.max));
  ch.set("mean", view(s.mean));
  ch.set("std", view(s.std));
  ch.set("absMax", view(s.absMax));
  ch.set("range", view(s.range));
  ch.set("relativeRange", view(s.relativeRange));
  val chs = val::object();
  for (int k = 0; k < stats::kSchemes; ++k) chs.set(stats::schemeName(k), view(s.channelSqnr[k]));
  ch.set("sqnr", chs);
  o.set("channels", ch);
  val t = val::object();
  t.set("min", s.tensorMin);
  t.set("max", s.tensorMax);
  t.set("mean", s.tensorMean);
  t.set("std", s.tensorStd);
  t.set("absMax", s.tensorAbsMax);
  o.set("tensor", t);
  val h = val::object();
  h.set("min", s.histMin);
  h.set("max", s.histMax);
  h.set("counts", view(s.histogram));
  o.set("histogram", h);
  o.set("outlierChannels", view(s.outliers));
  o.set("outlierThreshold", s.outlierThreshold);
  val q = val::array();
  q.call<void>("push", s.q1);
  q.call<void>("push", s.q3);
  o.set("quartiles", q);
  val sq = val::object();
  for (int k = 0; k < stats::kSchemes; ++k) sq.set(stats::schemeName(k), s.sqnr[k]);
  o.set("sqnr", sq);
  return o;
}

// A layer's analysis; per-channel arrays are views valid until the next call.
val statsValue(const analysis::LayerAnalysis& a) {
  val o = layerStatsValue(a.stats);
  if (a.quant.present) {
    val qi = val::object();
    qi.set("via", a.quant.via);
    qi.set("dtype", a.quant.intType);
    qi.set("axis", a.quant.axis >= 0 ? val(a.quant.axis) : val::null());
    qi.set("scale", view(a.quant.scale));
    qi.set("zeroPoint", view(a.quant.zeroPoint));
    o.set("quant", qi);
  } else {
    o.set("quant", val::null());
  }
  return o;
}

// Synchronous reads from the model file through a JS function
// (offset, length, heapPointer) => boolean: fs.readSync in Node, FileReaderSync in workers.
class JsReader : public onnx::ByteReader {
 public:
  explicit JsReader(val fn) : fn_(std::move(fn)) {}
  bool read(uint64_t offset, uint8_t* dst, uint64_t length) override {
    return fn_(static_cast<double>(offset), static_cast<double>(length), reinterpret_cast<uintptr_t>(dst)).as<bool>();
  }

 private:
  val fn_;
};

class Session {
 public:
  // Takes ownership of `ptr`, a malloc'ed heap buffer holding the model bytes.
  Session(uintptr_t ptr, size_t size) : buffer_(reinterpret_cast<uint8_t*>(ptr)), size_(size) { open(); }

  // Reads the model through `reader` ((offset, length, heapPointer) => boolean) into an
  // image of the file whose large weight payloads are left unread (onnx::skimModel);
  // analyse those layers with begin/feed/endPass/finish.
  static Session* fromReader(double size, val reader) {
    const size_t n = static_cast<size_t>(size);
    auto* image = static_cast<uint8_t*>(std::malloc(n ? n : 1));
    if (!image)
      return new Session(makeError(ErrorCode::InvalidArgument, "cannot hold " + std::to_string(n) + " bytes in the heap"));
    auto* s = new Session(reinterpret_cast<uintptr_t>(image), n, true);
    JsReader in(std::move(reader));
    auto skim = onnx::skimModel(in, n, image);
    if (!skim.ok()) {
      s->error_ = skim.error();
      return s;
    }
    s->skim_ = std::move(skim.value());
    s->open();
    // Everything but the layers' own weights is read now; those are streamed.
    if (s->error_.ok()) {
      if (Error e = analysis::settleSkim(in, image, &s->skim_, s->model_.get(), s->discovery_); !e.ok()) s->error_ = e;
    }
    return s;
  }

  ~Session() { std::free(buffer_); }

  void open() {
    auto m = onnx::parseModel(buffer_, size_);
    if (!m.ok()) {
      error_ = m.error();
      return;
    }
    model_ = std::make_unique<onnx::Model>(std::move(m.value()));
    auto d = graph::findLayers(*model_);
    if (!d.ok()) {
      error_ = d.error();
      return;
    }
    discovery_ = std::move(d.value());
    sqnr_.assign(discovery_.layers.size(), std::nan(""));
  }

  // Where layer i's weight bytes are: {stream: false} when the session holds them;
  // otherwise {stream: true, external, offset, length} (file offsets of the model, or
  // of the external file for external data, whose location comes from externalRef).
  val weightSource(size_t i) const {
    val o = val::object();
    if (i >= discovery_.layers.size()) return val::null();
    const onnx::Tensor& w = *discovery_.layers[i].weight;
    const uint64_t off = w.hasRawData ? static_cast<uint64_t>(w.rawData.data - buffer_) : 0;
    const bool unread = w.hasRawData && !w.external && skim_.skippedRange(off, w.rawData.size);
    o.set("stream", unread || w.external);
    o.set("external", w.external);
    if (unread) {
      o.set("offset", static_cast<double>(off));
      o.set("length", static_cast<double>(w.rawData.size));
    }
    return o;
  }

  // Streaming analysis of layer i over `available` bytes: returns {error} or {unitBytes, byteSize, passes}.
  val begin(size_t i, int bins, double available) {
    if (i >= discovery_.layers.size()) return failed(makeError(ErrorCode::InvalidArgument, "no layer " + std::to_string(i)));
    stats::Options opt;
    opt.histogramBins = bins;
    auto a = analysis::LayerAnalyzer::create(discovery_.layers[i], opt, static_cast<uint64_t>(available));
    if (!a.ok()) {
      streaming_.reset();
      return settle(i, a.error());
    }
    streaming_ = std::make_unique<analysis::LayerAnalyzer>(std::move(a.value()));
    streamingLayer_ = i;
    val o = val::object();
    o.set("unitBytes", static_cast<double>(streaming_->unitBytes()));
    o.set("byteSize", static_cast<double>(streaming_->byteSize()));
    o.set("passes", streaming_->passes());
    return o;
  }
  // Bytes [offset, offset + size) of the weight at ptr. Returns null or an error.
  val feed(int pass, uintptr_t ptr, double size, double offset) {
    if (!streaming_) return errorValue(makeError(ErrorCode::InvalidArgument, "no layer being analysed"));
    Error e =
        streaming_->feed(pass, {reinterpret_cast<const uint8_t*>(ptr), static_cast<size_t>(size)}, static_cast<uint64_t>(offset));
    return e.ok() ? val::null() : errorValue(e);
  }
  // Ends a pass: returns the number of passes (2, or 3 after pass 2 when needed) or an error.
  val endPass(int pass) {
    if (!streaming_) return errorValue(makeError(ErrorCode::InvalidArgument, "no layer being analysed"));
    Error e = streaming_->endPass(pass);
    return e.ok() ? val(streaming_->passes()) : errorValue(e);
  }
  val finish() {
    if (!streaming_) return failed(makeError(ErrorCode::InvalidArgument, "no layer being analysed"));
    auto r = streaming_->finish();
    streaming_.reset();
    return settle(streamingLayer_, std::move(r));
  }
  Session(const Session&) = delete;
  Session& operator=(const Session&) = delete;

  val error() const { return error_.ok() ? val::null() : errorValue(error_); }

  val model() const {
    val o = val::object();
    if (!model_) return o;
    o.set("producer", str(model_->producerName));
    o.set("producerVersion", str(model_->producerVersion));
    o.set("irVersion", static_cast<double>(model_->irVersion));
    o.set("domain", str(model_->domain));
    o.set("graph", str(model_->graph.name));
    o.set("bytes", static_cast<double>(size_));
    val opsets = val::array();
    for (const auto& op : model_->opsets) {
      val e = val::object();
      e.set("domain", str(op.domain));
      e.set("version", static_cast<double>(op.version));
      opsets.call<void>("push", e);
    }
    o.set("opsets", opsets);
    val meta = val::array();
    for (const auto& [k, v] : model_->metadata) {
      val e = val::object();
      e.set("key", str(k));
      e.set("value", str(v));
      meta.call<void>("push", e);
    }
    o.set("metadata", meta);
    o.set("nodes", static_cast<double>(model_->graph.nodes.size()));
    return o;
  }

  size_t layerCount() const { return discovery_.layers.size(); }

  // Layer indices by risk over the layers analysed so far (core's rankByRisk).
  val ranking() const {
    val out = val::array();
    for (size_t k : analysis::rankByRisk(sqnr_)) out.call<void>("push", static_cast<double>(k));
    return out;
  }

  val skipped() const {
    val a = val::array();
    for (const auto& s : discovery_.skipped) a.call<void>("push", s);
    return a;
  }

  val layer(size_t i) const {
    if (i >= discovery_.layers.size()) return val::null();
    const graph::Layer& L = discovery_.layers[i];
    val o = val::object();
    o.set("name", L.name);
    o.set("path", L.path);
    o.set("op", str(L.op));
    o.set("weight", str(L.weightName));
    val shape = val::array();
    for (int64_t d : L.shape) shape.call<void>("push", static_cast<double>(d));
    o.set("shape", shape);
    o.set("dtype", onnx::dataTypeName(L.weight->dataType));
    o.set("channelAxis", L.channelAxis);
    o.set("channels", static_cast<double>(L.layout.channelCount()));
    o.set("groups", static_cast<double>(L.groups));
    o.set("depthwise", L.depthwise);
    o.set("bias", L.biasName.empty() ? val::null() : str(L.biasName));
    val via = val::array();
    for (auto v : L.via) via.call<void>("push", str(v));
    o.set("via", via);
    o.set("follower", follower(L.follower));
    o.set("activation", L.follower.kind == graph::FollowerKind::BatchNorm ? follower(L.activation) : val::null());
    o.set("external", L.weight->external);
    return o;
  }

  // Where the weight's bytes are when stored outside the model file, or null.
  val externalRef(size_t i) const {
    if (i >= discovery_.layers.size() || !discovery_.layers[i].weight->external) return val::null();
    auto r = onnx::externalRef(*discovery_.layers[i].weight);
    if (!r.ok()) return errorValue(r.error());
    val o = val::object();
    o.set("location", str(r->location));
    o.set("path", r->path);
    o.set("offset", static_cast<double>(r->offset));
    o.set("length", r->hasLength ? val(static_cast<double>(r->length)) : val::null());
    return o;
  }

  // Analyses layer i. External weight bytes, if any, are at extPtr (not owned).
  // Returns {error} or the statistics with typed-array views valid until the next call.
  val analyze(size_t i, uintptr_t extPtr, size_t extSize, int bins) {
    if (i >= discovery_.layers.size()) return failed(makeError(ErrorCode::InvalidArgument, "no layer " + std::to_string(i)));
    stats::Options opt;
    opt.histogramBins = bins;
    return settle(i, analysis::analyzeLayer(discovery_.layers[i], {reinterpret_cast<const uint8_t*>(extPtr), extSize}, opt));
  }

 private:
  static val failed(const Error& e) {
    val o = val::object();
    o.set("error", errorValue(e));
    return o;
  }
  // The end of a layer's analysis, whole or streamed: {error}, or its statistics
  // (kept as last_ so the views stay valid), with its SQNR recorded for the ranking.
  val settle(size_t i, Result<analysis::LayerAnalysis> r) {
    if (!r.ok()) {
      sqnr_[i] = std::nan("");
      return failed(r.error());
    }
    last_ = std::move(r.value());
    sqnr_[i] = last_.stats.sqnr[stats::kInt8PerTensor];
    return statsValue(last_);
  }

  uint8_t* buffer_;
  size_t size_;
  Error error_;
  std::unique_ptr<onnx::Model> model_;
  graph::Discovery discovery_;
  analysis::LayerAnalysis last_;
  std::vector<double> sqnr_;
  onnx::Skim skim_;
  std::unique_ptr<analysis::LayerAnalyzer> streaming_;
  size_t streamingLayer_ = 0;

  Session(uintptr_t ptr, size_t size, bool) : buffer_(reinterpret_cast<uint8_t*>(ptr)), size_(size) {}
  explicit Session(Error e) : buffer_(nullptr), size_(0), error_(std::move(e)) {}
};

// Cross Layer Equalization of the model bytes at ptr (not owned). The report's
// per-channel arrays and modelBytes() are views valid while this object lives.
class Equalization {
 public:
  Equalization(uintptr_t ptr, size_t size, val options) {
    cle::Options opt;
    auto flag = [&](const char* k, bool* out) {
      if (options.hasOwnProperty(k)) *out = options[k].as<bool>();
    };
    auto number = [&](const char* k, double* out) {
      if (options.hasOwnProperty(k)) *out = options[k].as<double>();
    };
    flag("keepRelu6", &opt.keepRelu6);
    flag("biasAbsorption", &opt.biasAbsorption);
    flag("triples", &opt.triples);
    flag("throughPadPool", &opt.throughPadPool);
    double iterations = opt.maxIterations, bins = opt.histogramBins;
    number("maxIterations", &iterations);
    number("tolerance", &opt.tolerance);
    number("deadChannelRatio", &opt.deadChannelRatio);
    number("histogramBins", &bins);
    if (!(iterations >= 0 && iterations <= 1e6) || !(bins >= 1 && bins <= 4096)) {
      error_ = makeError(ErrorCode::InvalidArgument, "maxIterations must be 0..1000000 and histogramBins 1..4096");
      return;
    }
    opt.maxIterations = static_cast<int>(iterations);
    opt.histogramBins = static_cast<int>(bins);
    auto r = cle::equalize(reinterpret_cast<const uint8_t*>(ptr), size, opt);
    if (!r.ok()) {
      error_ = r.error();
      return;
    }
    result_ = std::move(r.value());
    options_ = opt;
  }

  val error() const { return error_.ok() ? val::null() : errorValue(error_); }
  val modelBytes() const { return view(result_.model); }

  val report() const {
    const cle::Report& r = result_.report;
    val o = val::object();
    val opt = val::object();  // the options in effect, defaults included
    opt.set("keepRelu6", options_.keepRelu6);
    opt.set("biasAbsorption", options_.biasAbsorption);
    opt.set("triples", options_.triples);
    opt.set("throughPadPool", options_.throughPadPool);
    opt.set("maxIterations", options_.maxIterations);
    opt.set("tolerance", options_.tolerance);
    opt.set("deadChannelRatio", options_.deadChannelRatio);
    opt.set("histogramBins", options_.histogramBins);
    o.set("options", opt);
    o.set("layersSeen", static_cast<double>(r.layersSeen));
    val layers = val::array();
    for (const auto& c : r.layers) {
      val l = val::object();
      l.set("name", c.name);
      l.set("op", c.op);
      l.set("weight", c.weightName);
      l.set("node", static_cast<double>(c.nodeIndex));
      l.set("batchNormFolded", c.batchNormFolded);
      l.set("biasAdded", c.biasAdded);
      l.set("before", layerStatsValue(c.before));
      l.set("after", layerStatsValue(c.after));
      l.set("outScale", view(c.outScale));
      l.set("inScale", view(c.inScale));
      l.set("absorbed", view(c.absorbed));
      layers.call<void>("push", l);
    }
    o.set("layers", layers);
    val seqs = val::array();
    for (const auto& s : r.sequences) {
      val q = val::object();
      val idx = val::array(), links = val::array(), triple = val::array();
      for (size_t k : s.layers) idx.call<void>("push", static_cast<double>(k));
      for (const auto& k : s.links) links.call<void>("push", k);
      for (bool t : s.triple) triple.call<void>("push", t);
      q.set("layers", idx);
      q.set("links", links);
      q.set("triple", triple);
      q.set("iterations", s.iterations);
      q.set("converged", s.converged);
      q.set("lastChange", s.lastChange);
      seqs.call<void>("push", q);
    }
    o.set("sequences", seqs);
    val stops = val::array();
    for (const auto& s : r.stops) {
      val q = val::object();
      q.set("layer", s.layer);
      q.set("node", s.node);
      q.set("op", s.op);
      q.set("reason", s.reason);
      stops.call<void>("push", q);
    }
    o.set("stops", stops);
    val bns = val::array();
    for (const auto& b : r.foldedBatchNorms) {
      val q = val::object();
      q.set("node", b.node);
      q.set("layer", b.layer);
      q.set("position", std::string(b.before ? "before" : "after"));
      bns.call<void>("push", q);
    }
    o.set("foldedBatchNorms", bns);
    val replaced = val::array(), kept = val::array();
    for (const auto& n : r.relu6Replaced) replaced.call<void>("push", n);
    for (const auto& n : r.relu6Kept) kept.call<void>("push", n);
    o.set("relu6Replaced", replaced);
    o.set("relu6Kept", kept);
    val dead = val::array();
    for (const auto& d : r.deadChannels) {
      val q = val::object();
      q.set("layer", d.layer);
      q.set("channel", d.channel);
      q.set("side", std::string(d.output ? "output" : "input"));
      q.set("range", d.range);
      dead.call<void>("push", q);
    }
    o.set("deadChannels", dead);
    o.set("biasAbsorptions", static_cast<double>(r.biasAbsorptions));
    return o;
  }

 private:
  Error error_;
  cle::Equalized result_;
  cle::Options options_;
};

}  // namespace

EMSCRIPTEN_BINDINGS(quantlens) {
  emscripten::class_<Equalization>("Equalization")
      .constructor<uintptr_t, size_t, val>()
      .function("error", &Equalization::error)
      .function("modelBytes", &Equalization::modelBytes)
      .function("report", &Equalization::report);
  emscripten::class_<Session>("Session")
      .constructor<uintptr_t, size_t>()
      .function("error", &Session::error)
      .function("model", &Session::model)
      .function("layerCount", &Session::layerCount)
      .function("layer", &Session::layer)
      .function("skipped", &Session::skipped)
      .function("externalRef", &Session::externalRef)
      .function("analyze", &Session::analyze)
      .function("ranking", &Session::ranking)
      .function("weightSource", &Session::weightSource)
      .function("begin", &Session::begin)
      .function("feed", &Session::feed)
      .function("endPass", &Session::endPass)
      .function("finish", &Session::finish)
      .class_function("fromReader", &Session::fromReader, emscripten::allow_raw_pointers());
}

// ---- Model comparison (compare/compare.hpp) ------------------------------------------

#include "compare/compare.hpp"

namespace {

val shapeValue(const std::vector<int64_t>& dims) {
  val a = val::array();
  for (int64_t d : dims) a.call<void>("push", static_cast<double>(d));
  return a;
}

// Two models read whole into the heap (both buffers owned), matched by the core's
// rules; pair(k) compares one pair and returns views valid until the next call.
class Comparison {
 public:
  Comparison(uintptr_t ptrA, size_t sizeA, uintptr_t ptrB, size_t sizeB)
      : bufA_(reinterpret_cast<uint8_t*>(ptrA)), bufB_(reinterpret_cast<uint8_t*>(ptrB)), sizeA_(sizeA), sizeB_(sizeB) {
    auto a = compare::openSide(bufA_, sizeA_);
    if (!a.ok()) {
      error_ = a.error();
      errorSide_ = "a";
      return;
    }
    auto b = compare::openSide(bufB_, sizeB_);
    if (!b.ok()) {
      error_ = b.error();
      errorSide_ = "b";
      return;
    }
    cmp_ = std::make_unique<compare::Comparison>(std::move(a.value()), std::move(b.value()));
  }
  ~Comparison() {
    cmp_.reset();  // the models borrow the buffers
    std::free(bufA_);
    std::free(bufB_);
  }
  Comparison(const Comparison&) = delete;
  Comparison& operator=(const Comparison&) = delete;

  // null, or {side: 'a' | 'b', code, message, offset}
  val error() const {
    if (error_.ok()) return val::null();
    val e = errorValue(error_);
    e.set("side", errorSide_);
    return e;
  }

  val model(std::string side) const {
    val o = val::object();
    if (!cmp_) return o;
    const compare::Side& s = side == "b" ? cmp_->b() : cmp_->a();
    const onnx::Model& m = *s.model;
    o.set("bytes", static_cast<double>(side == "b" ? sizeB_ : sizeA_));
    o.set("producer", str(m.producerName));
    o.set("producerVersion", str(m.producerVersion));
    o.set("irVersion", static_cast<double>(m.irVersion));
    val opsets = val::array();
    for (const auto& op : m.opsets) {
      val e = val::object();
      e.set("domain", str(op.domain));
      e.set("version", static_cast<double>(op.version));
      opsets.call<void>("push", e);
    }
    o.set("opsets", opsets);
    o.set("graph", str(m.graph.name));
    o.set("nodes", static_cast<double>(m.graph.nodes.size()));
    o.set("layers", static_cast<double>(s.discovery.layers.size()));
    return o;
  }

  size_t pairCount() const { return cmp_ ? cmp_->matching().pairs.size() : 0; }

  val unmatched() const {
    val o = val::object();
    val a = val::array(), b = val::array();
    if (cmp_) {
      for (size_t i : cmp_->matching().unmatchedA) a.call<void>("push", cmp_->a().discovery.layers[i].name);
      for (size_t j : cmp_->matching().unmatchedB) b.call<void>("push", cmp_->b().discovery.layers[j].name);
    }
    o.set("a", a);
    o.set("b", b);
    return o;
  }

  val pair(size_t k) {
    if (!cmp_ || k >= pairCount()) return val::null();
    const compare::Match& m = cmp_->matching().pairs[k];
    last_ = cmp_->pair(k);
    const compare::PairDiff& d = last_;
    val o = val::object();
    o.set("a", sideValue(cmp_->a().discovery.layers[m.a], m.a, d.quantA));
    o.set("b", sideValue(cmp_->b().discovery.layers[m.b], m.b, d.quantB));
    o.set("matchedBy", std::string(compare::matchedByName(m.by)));
    o.set("comparable", d.comparable);
    if (!d.comparable) {
      o.set("reason", d.reason);
      o.set("tensor", val::null());
      o.set("channels", val::null());
      return o;
    }
    val t = val::object();
    t.set("maxAbsDiff", d.tensorMaxAbsDiff);
    t.set("rmsDiff", d.tensorRmsDiff);
    t.set("sqnr", d.tensorSqnr);
    o.set("tensor", t);
    val ch = val::object();
    ch.set("count", static_cast<double>(d.channels));
    ch.set("maxAbsDiff", view(d.maxAbsDiff));
    ch.set("rmsDiff", view(d.rmsDiff));
    ch.set("sqnr", view(d.sqnr));
    ch.set("minA", view(d.minA));
    ch.set("maxA", view(d.maxA));
    ch.set("minB", view(d.minB));
    ch.set("maxB", view(d.maxB));
    o.set("channels", ch);
    return o;
  }

 private:
  static val sideValue(const graph::Layer& L, size_t position, const analysis::QuantInfo& q) {
    val o = val::object();
    o.set("position", static_cast<double>(position));
    o.set("name", L.name);
    o.set("path", L.path);
    o.set("weight", str(L.weightName));
    o.set("op", str(L.op));
    o.set("shape", shapeValue(L.shape));
    o.set("dtype", onnx::dataTypeName(L.weight->dataType));
    o.set("channelAxis", L.channelAxis);
    o.set("channels", static_cast<double>(L.layout.channelCount()));
    if (q.present) {
      val qi = val::object();
      qi.set("via", q.via);
      qi.set("dtype", q.intType);
      qi.set("axis", q.axis >= 0 ? val(q.axis) : val::null());
      qi.set("scale", view(q.scale));
      qi.set("zeroPoint", view(q.zeroPoint));
      o.set("quant", qi);
    } else {
      o.set("quant", val::null());
    }
    return o;
  }

  uint8_t* bufA_;
  uint8_t* bufB_;
  size_t sizeA_, sizeB_;
  Error error_;
  std::string errorSide_;
  std::unique_ptr<compare::Comparison> cmp_;
  compare::PairDiff last_;
};

}  // namespace

EMSCRIPTEN_BINDINGS(quantlens_compare) {
  emscripten::class_<Comparison>("Comparison")
      .constructor<uintptr_t, size_t, uintptr_t, size_t>()
      .function("error", &Comparison::error)
      .function("model", &Comparison::model)
      .function("pairCount", &Comparison::pairCount)
      .function("unmatched", &Comparison::unmatched)
      .function("pair", &Comparison::pair);
}
