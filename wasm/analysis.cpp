// The analysis binding: one model opened (whole, or skimmed through a reader with its
// large weights left in the file), its layers analysed one at a time, whole or streamed
// by the core's plan (analysis/plan.hpp). Driven by web/src/analyze.js.
#include <emscripten/bind.h>

#include <cmath>
#include <cstdlib>
#include <limits>
#include <memory>
#include <string>

#include "analysis/analyze.hpp"
#include "analysis/plan.hpp"
#include "common/alloc.hpp"
#include "compare/compare.hpp"
#include "marshal.hpp"
#include "onnx/skim.hpp"

namespace ql::bindings {

namespace {

class Session {
 public:
  // Takes ownership of `ptr`, a malloc'ed heap buffer holding the whole model. Returns
  // the session or an error (the buffer is freed then). `slowRead`: the weights' source
  // costs more to read than fresh memory (a Blob), so the plan reads larger ones whole.
  static val open(uintptr_t ptr, double size, bool slowRead) {
    if (!fitsHeap(size)) {
      std::free(reinterpret_cast<void*>(ptr));
      return errorValue(tooLarge(size));
    }
    std::unique_ptr<Session> s(new Session(reinterpret_cast<uint8_t*>(ptr), static_cast<size_t>(size)));
    if (Error e = s->parse(); !e.ok()) return errorValue(e);
    s->plan(slowRead);
    return val(std::move(s));
  }

  // Reads the model through `reader` ((offset, length, heapPointer) => boolean) into an
  // image of the file whose large weight payloads are left unread (onnx::skimModel);
  // those are streamed by the plan, with begin/feed/endPass/finish.
  static val openReader(double size, val reader, bool slowRead) {
    if (!fitsHeap(size)) return errorValue(tooLarge(size));
    const size_t n = static_cast<size_t>(size);
    auto* image = static_cast<uint8_t*>(allocateLarge(n));
    if (!image)
      return errorValue(makeError(ErrorCode::InvalidArgument, "cannot hold " + std::to_string(n) + " bytes in the heap"));
    std::unique_ptr<Session> s(new Session(image, n));
    JsReader in(std::move(reader));
    // Everything but the layers' own large weights is read now; those are streamed.
    auto side = compare::openSkimmedSide(in, n, image, &s->skim_);
    if (!side.ok()) return errorValue(side.error());
    s->side_ = std::move(side.value());
    s->sqnr_.assign(s->layers().size(), std::nan(""));
    s->plan(slowRead);
    return val(std::move(s));
  }

  ~Session() {
    plan_.reset();
    side_ = {};  // the model views the buffer
    std::free(buffer_);
  }
  Session(const Session&) = delete;
  Session& operator=(const Session&) = delete;

  val model() const { return modelValue(*side_.model, size_); }
  val graph() const { return graphValue(graph::listNodes(side_.model->graph)); }
  size_t layerCount() const { return layers().size(); }
  val layer(size_t i) const { return i < layers().size() ? layerValue(layers()[i]) : val::null(); }

  val skipped() const {
    val a = val::array();
    for (const auto& s : side_.discovery.skipped) a.call<void>("push", s);
    return a;
  }

  // Layer indices by risk over the layers analysed so far (core's rankByRisk).
  val ranking() const {
    val out = val::array();
    for (size_t k : analysis::rankByRisk(sqnr_)) out.call<void>("push", static_cast<double>(k));
    return out;
  }

  // Where layer i's weight bytes are, by the plan: {stream: false} when the session holds
  // them; otherwise {stream: true, external: false, offset, length} (a range of the model
  // file) or {stream: true, external: true, location, path, offset, length (null when the
  // model gives none)} (external data, its location held to the rule). Or an error.
  val weight(size_t i) const {
    if (i >= layers().size()) return errorValue(noLayer(i));
    const analysis::WeightPlace& w = plan_->weight(i);
    if (!w.error.ok()) return errorValue(w.error);
    val o = val::object();
    o.set("stream", w.streamed());
    o.set("external", w.at == analysis::WeightAt::ExternalFile);
    if (w.at == analysis::WeightAt::ExternalFile) {
      o.set("location", str(w.ref.location));
      o.set("path", w.ref.path);
    }
    if (w.streamed()) {
      o.set("offset", static_cast<double>(w.offset));
      const bool known = w.at == analysis::WeightAt::ModelFile || w.ref.hasLength;
      o.set("length", known ? val(static_cast<double>(w.length)) : val::null());
    }
    return o;
  }

  // Analyses layer i, whose weight the session holds. Returns its analysis (views valid
  // until the next call) or an error.
  // `blockSize`: the extra INT4 block size, 0 for the defaults only (checked by blockSchemes).
  val analyze(size_t i, int bins, double blockSize) {
    if (i >= layers().size()) return errorValue(noLayer(i));
    return settle(i, analysis::analyzeLayer(layers()[i], {}, options(bins, blockSize)));
  }

  // Starts streaming layer i's weight: returns {byteSize, passes, pieceBytes, resident,
  // bufferBytes, firstByte (0)} (the plan's pieces and the size the one buffer must have)
  // or an error. Then feed every piece [offset, offset + pieceBytes) of each pass, endPass, finish.
  val begin(size_t i, int bins, double blockSize) {
    if (i >= layers().size()) return errorValue(noLayer(i));
    streaming_.reset();
    auto a = analysis::LayerAnalyzer::create(layers()[i], options(bins, blockSize), plan_->weight(i).length);
    if (!a.ok()) return settle(i, a.error());
    return started(i, std::move(a.value()));
  }

  // Layer i cut into `parts` parts of its output channels (LayerAnalyzer::splitLayer):
  // [{firstChannel, endChannel, firstByte, byteSize}], or why it cannot be split.
  val split(size_t i, double parts) const {
    if (i >= layers().size()) return errorValue(noLayer(i));
    if (!(parts >= 1 && parts <= kMaxParts) || std::floor(parts) != parts)
      return errorValue(
          makeError(ErrorCode::InvalidArgument, "parts must be a whole number from 1 to " + std::to_string(kMaxParts)));
    auto cuts = analysis::LayerAnalyzer::splitLayer(layers()[i], static_cast<uint64_t>(parts));
    if (!cuts.ok()) return errorValue(cuts.error());
    val out = val::array();
    for (const analysis::ChannelPart& c : cuts.value()) {
      val o = val::object();
      o.set("firstChannel", static_cast<double>(c.firstChannel));
      o.set("endChannel", static_cast<double>(c.endChannel));
      o.set("firstByte", static_cast<double>(c.firstByte));
      o.set("byteSize", static_cast<double>(c.byteSize));
      out.call<void>("push", o);
    }
    return out;
  }
  // Starts streaming a part of layer i, output channels [firstChannel, endChannel), as
  // begin does (the same plan; its pieces are of the part's bytes [firstByte, firstByte +
  // byteSize), fed at their offsets in the weight). Pass 1, then partExtremes, endPass(1,
  // the whole layer's extremes), the other passes, takePart.
  val beginPart(size_t i, int bins, double blockSize, double firstChannel, double endChannel) {
    if (i >= layers().size()) return errorValue(noLayer(i));
    streaming_.reset();
    if (!wholeNumber(firstChannel) || !wholeNumber(endChannel))
      return errorValue(makeError(ErrorCode::InvalidArgument, "a part's channels must be whole numbers"));
    auto a = analysis::LayerAnalyzer::createPart(layers()[i], options(bins, blockSize), plan_->weight(i).length,
                                                 static_cast<uint64_t>(firstChannel), static_cast<uint64_t>(endChannel));
    if (!a.ok()) return errorValue(a.error());
    return started(i, std::move(a.value()));
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
  // A part's pass 1 ends with the whole layer's extremes (combineExtremes' value); the
  // whole layer's error, when it has one (NaN weights), in every part.
  val endPass(int pass, val whole) {
    if (!streaming_) return errorValue(makeError(ErrorCode::InvalidArgument, "no layer being analysed"));
    auto x = extremesFrom(whole);
    if (!x.ok()) return errorValue(x.error());
    Error e = streaming_->endPass(pass, &x.value());
    return e.ok() ? val(streaming_->passes()) : errorValue(e);
  }
  // The part's pass-1 extremes (extremesValue), once pass 1 is fed and before it ends.
  val partExtremes() const {
    if (!streaming_) return errorValue(makeError(ErrorCode::InvalidArgument, "no layer being analysed"));
    auto x = streaming_->extremes();
    return x.ok() ? extremesValue(x.value()) : errorValue(x.error());
  }
  // The part's results once its last pass ended (partValue: views valid until the next
  // call), or an error.
  val takePart() {
    if (!streaming_) return errorValue(makeError(ErrorCode::InvalidArgument, "no layer being analysed"));
    auto p = streaming_->takePart();
    if (!p.ok()) return errorValue(p.error());  // too early: the part goes on
    streaming_.reset();
    part_ = std::move(p.value());
    return partValue(part_);
  }
  // The whole layer's extremes from every part's (an array of partExtremes' values).
  val combineExtremes(size_t i, val parts) const {
    if (i >= layers().size()) return errorValue(noLayer(i));
    if (!val::global("Array").call<bool>("isArray", parts) || parts["length"].as<double>() > kMaxParts)
      return errorValue(makeError(ErrorCode::InvalidArgument, "the extremes must be an array, one per part"));
    std::vector<stats::PassExtremes> xs;
    for (size_t k = 0, n = parts["length"].as<size_t>(); k < n; ++k) {
      auto x = extremesFrom(parts[k]);
      if (!x.ok()) return errorValue(x.error());
      xs.push_back(x.value());
    }
    auto w = stats::LayerStatsBuilder::combineExtremes(layers()[i].layout, std::move(xs));
    return w.ok() ? extremesValue(w.value()) : errorValue(w.error());
  }
  // Layer i's analysis from its parts (an array of takePart's values, any order), bit for
  // bit analyze's: as analyze returns it (its SQNR recorded for the ranking), or an error.
  val mergeParts(size_t i, int bins, double blockSize, val parts) {
    if (i >= layers().size()) return errorValue(noLayer(i));
    const graph::Layer& L = layers()[i];
    if (!val::global("Array").call<bool>("isArray", parts) || parts["length"].as<double>() > kMaxParts)
      return errorValue(makeError(ErrorCode::InvalidArgument, "the parts must be an array"));
    const stats::Options opt = options(bins, blockSize);
    // No array of a part of this layer is longer than this (its channels' accumulators and
    // block sums, its histogram, its input channels).
    const uint64_t longest = L.layout.channelCount() * (stats::kPartAccumulators + stats::blockSizes(opt).size()) +
                             L.layout.elementCount() + static_cast<uint64_t>(std::max(bins, 0));
    std::vector<analysis::LayerAnalysisPart> ps;
    for (size_t k = 0, n = parts["length"].as<size_t>(); k < n; ++k) {
      auto p = partFrom(parts[k], longest);
      if (!p.ok()) return errorValue(p.error());
      ps.push_back(std::move(p.value()));
    }
    return settle(i, analysis::LayerAnalyzer::mergeParts(L, opt, std::move(ps)));
  }
  // The streamed layer's analysis (views valid until the next call) or an error.
  val finish() {
    if (!streaming_) return errorValue(makeError(ErrorCode::InvalidArgument, "no layer being analysed"));
    auto r = streaming_->finish();
    streaming_.reset();
    return settle(streamingLayer_, std::move(r));
  }

 private:
  Session(uint8_t* buffer, size_t size) : buffer_(buffer), size_(size) {}

  const std::vector<graph::Layer>& layers() const { return side_.discovery.layers; }
  // The image of the model file is a heap buffer at the file's offsets: its size must be a size_t.
  static bool fitsHeap(double size) { return size >= 0 && size <= static_cast<double>(std::numeric_limits<size_t>::max()); }
  static Error tooLarge(double size) {
    return makeError(ErrorCode::Unsupported,
                     "the model file has " + std::to_string(static_cast<uint64_t>(size)) +
                         " bytes; a model file must be under 4 GB (keep its weights in external data files)");
  }
  static Error noLayer(size_t i) { return makeError(ErrorCode::InvalidArgument, "no layer " + std::to_string(i)); }
  // More parts than any layer is cut into (a pool's workers), and than an array of them crossing.
  static constexpr double kMaxParts = 1 << 16;
  static bool wholeNumber(double d) { return d >= 0 && d <= 9007199254740992.0 && std::floor(d) == d; }
  static stats::Options options(int bins, double blockSize) {
    stats::Options opt;
    opt.histogramBins = bins;
    opt.blockSize = static_cast<uint64_t>(blockSize);
    return opt;
  }
  // A layer (or a part) whose analyzer is made: it streams from now on; its plan for JS.
  val started(size_t i, analysis::LayerAnalyzer a) {
    streaming_ = std::make_unique<analysis::LayerAnalyzer>(std::move(a));
    streamingLayer_ = i;
    const analysis::LayerStream stream = plan_->layer(streaming_->unitBytes(), streaming_->byteSize());
    val o = val::object();
    o.set("byteSize", static_cast<double>(streaming_->byteSize()));
    o.set("passes", streaming_->passes());
    o.set("pieceBytes", static_cast<double>(stream.pieceBytes));
    o.set("resident", stream.resident);
    o.set("bufferBytes", static_cast<double>(stream.bufferBytes));
    o.set("firstByte", static_cast<double>(streaming_->firstByte()));
    return o;
  }

  // Parsed and its layers found as every feature opens a model (compare::openSide).
  Error parse() {
    auto side = compare::openSide(buffer_, size_);
    if (!side.ok()) return side.error();
    side_ = std::move(side.value());
    sqnr_.assign(layers().size(), std::nan(""));
    return Error{};
  }
  // Once the image holds everything but the weights to stream.
  void plan(bool slowRead) {
    plan_ = std::make_unique<analysis::StreamPlan>(side_.discovery, buffer_, skim_, analysis::kPieceBytes,
                                                   slowRead ? analysis::kResidentBytesSlowRead : analysis::kPieceBytes);
  }

  // The end of a layer's analysis, whole or streamed: its statistics (kept as last_ so
  // the views stay valid) with its SQNR recorded for the ranking, or the error.
  val settle(size_t i, Result<analysis::LayerAnalysis> r) {
    if (!r.ok()) {
      sqnr_[i] = std::nan("");
      return errorValue(r.error());
    }
    last_ = std::move(r.value());
    sqnr_[i] = last_.stats.sqnr[stats::kInt8PerTensor];
    return analysisValue(last_);
  }

  uint8_t* buffer_;
  size_t size_;
  onnx::Skim skim_;
  compare::Side side_;
  std::unique_ptr<analysis::StreamPlan> plan_;
  analysis::LayerAnalysis last_;
  std::vector<double> sqnr_;
  std::unique_ptr<analysis::LayerAnalyzer> streaming_;
  analysis::LayerAnalysisPart part_;  // the last part taken (its views)
  size_t streamingLayer_ = 0;
};

// The block-wise INT4 schemes measured: the names for the default block sizes, then for
// `blockSize` when `given` (and another), or an error when it is not a valid block size.
val blockSchemes(bool given, val blockSize) {
  uint64_t extra = 0;
  if (given) {
    auto b = stats::checkBlockSize(blockSize.isNumber() ? blockSize.as<double>() : std::nan(""));
    if (!b.ok()) return errorValue(b.error());
    extra = b.value();
  }
  stats::Options opt;
  opt.blockSize = extra;
  val out = val::array();
  for (uint64_t b : stats::blockSizes(opt)) out.call<void>("push", stats::blockSchemeName(b));
  return out;
}

// Positions 0..n-1, riskiest first (the core's rankByRisk), of the INT8 per-tensor SQNR
// values given (a Float64Array; NaN for a layer not analysed or failed): the ranking of
// layers analysed in several sessions (a pool of workers), merged.
val rankByRisk(val int8PerTensorSqnr) {
  const std::vector<double> sqnr = emscripten::convertJSArrayToNumberVector<double>(int8PerTensorSqnr);
  val out = val::array();
  for (size_t k : analysis::rankByRisk(sqnr)) out.call<void>("push", static_cast<double>(k));
  return out;
}

}  // namespace

EMSCRIPTEN_BINDINGS(quantlens_analysis) {
  emscripten::class_<Session>("Session")
      .function("model", &Session::model)
      .function("graph", &Session::graph)
      .function("layerCount", &Session::layerCount)
      .function("layer", &Session::layer)
      .function("skipped", &Session::skipped)
      .function("ranking", &Session::ranking)
      .function("weight", &Session::weight)
      .function("analyze", &Session::analyze)
      .function("begin", &Session::begin)
      .function("feed", &Session::feed)
      .function("endPass", emscripten::select_overload<val(int)>(&Session::endPass))
      .function("endPass", emscripten::select_overload<val(int, val)>(&Session::endPass))
      .function("finish", &Session::finish)
      .function("split", &Session::split)
      .function("beginPart", &Session::beginPart)
      .function("partExtremes", &Session::partExtremes)
      .function("takePart", &Session::takePart)
      .function("combineExtremes", &Session::combineExtremes)
      .function("mergeParts", &Session::mergeParts);
  emscripten::function("openSession", &Session::open);
  emscripten::function("blockSchemes", &blockSchemes);
  emscripten::function("rankByRisk", &rankByRisk);
  emscripten::function("openSessionReader", &Session::openReader);
}

}  // namespace ql::bindings
