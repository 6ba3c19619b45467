// The equalization binding: Cross Layer Equalization of model bytes in the heap, its
// written model and report. Driven by web/src/equalize.js.
#include <emscripten/bind.h>

#include <cstdint>
#include <cstdlib>
#include <memory>
#include <string>

#include "cle/cle.hpp"
#include "common/alloc.hpp"
#include "marshal.hpp"

namespace ql::bindings {

namespace {

// cle::Options, declared once for JS: the value_object that carries them both ways, and
// each one's kind. Their defaults are cle::Options{}, their ranges cle::equalize's check.
template <class F>
void forEachOption(F&& f) {
  f("keepRelu6", &cle::Options::keepRelu6);
  f("biasAbsorption", &cle::Options::biasAbsorption);
  f("triples", &cle::Options::triples);
  f("throughPadPool", &cle::Options::throughPadPool);
  f("maxIterations", &cle::Options::maxIterations);
  f("tolerance", &cle::Options::tolerance);
  f("deadChannelRatio", &cle::Options::deadChannelRatio);
  f("histogramBins", &cle::Options::histogramBins);
}

const char* kindOf(bool cle::Options::*) { return "boolean"; }
const char* kindOf(int cle::Options::*) { return "integer"; }
const char* kindOf(double cle::Options::*) { return "number"; }

// {name: 'boolean' | 'integer' | 'number'}: what a value must be to cross as that field
// (Embind converts silently: 'yes' would become true, 1.5 would become 1).
val optionKinds() {
  val o = val::object();
  forEachOption([&](const char* name, auto member) { o.set(name, std::string(kindOf(member))); });
  return o;
}

cle::Options optionDefaults() { return {}; }

// The result of equalizing the model bytes at ptr (not owned). The report's per-channel
// arrays and pieces()' made bytes are views valid while this object lives.
class Equalization {
 public:
  // `readExternal` (path, offset, length, heapPointer) => '' | why, and `dataLocation`
  // (the new data file's name): the model's external data (cle::ExternalIo); null: none.
  static val run(uintptr_t ptr, double size, const cle::Options& options, val readExternal, std::string dataLocation) {
    JsExternalReader ext(readExternal);
    cle::ExternalIo io{&ext, std::move(dataLocation)};
    auto r = cle::equalize(reinterpret_cast<const uint8_t*>(ptr), static_cast<size_t>(size), options,
                           readExternal.isNull() ? nullptr : &io);
    if (!r.ok()) return errorValue(r.error());
    return val(std::unique_ptr<Equalization>(new Equalization(std::move(r.value()), options)));
  }

  // The model read through `read` (offset, length, heapPointer) => boolean: its structure
  // skimmed into an image that is freed before this returns, and the weights CLE changes
  // read as it takes them. The pieces' input ranges are then offsets in that file.
  static val runStreamed(double size, val read, const cle::Options& options, val readExternal, std::string dataLocation) {
    const size_t n = static_cast<size_t>(size);
    std::unique_ptr<uint8_t, void (*)(void*)> image(static_cast<uint8_t*>(allocateLarge(n)), std::free);
    if (!image)
      return errorValue(
          makeError(ErrorCode::InvalidArgument, "cannot hold the structure of " + std::to_string(n) + " bytes in the heap"));
    JsReader in(std::move(read));
    JsExternalReader ext(readExternal);
    cle::ExternalIo io{&ext, std::move(dataLocation)};
    auto r = cle::equalize(in, n, image.get(), options, {}, readExternal.isNull() ? nullptr : &io);
    if (!r.ok()) return errorValue(r.error());
    return val(std::unique_ptr<Equalization>(new Equalization(std::move(r.value()), options)));
  }

  // The written file as pieces, in order: {offset, length} (bytes of the input, copied
  // through) or {bytes} (a view of bytes the core made: valid while this object lives).
  // The size of the file is the sum of their lengths (size()).
  val pieces() const { return piecesValue(result_.written); }
  double size() const { return static_cast<double>(result_.written.size); }
  // The new external data file: its name (relative to the written model; '' when the
  // model has no external data), pieces and size.
  std::string dataLocation() const { return result_.written.data.location; }
  val dataPieces() const { return dataPiecesValue(result_.written.data); }
  double dataSize() const { return static_cast<double>(result_.written.data.size); }
  // Rewrites in place the `length` bytes at `ptr` in the heap, read from the input as
  // bytes [at, at + length) of piece `k` (one with `transform`) of the model (data false)
  // or of the data file: a changed weight written piece by piece. `at` and `length` are
  // multiples of 4 (whole float32 values).
  bool transformPiece(bool data, double k, double at, uintptr_t ptr, double length) const {
    const auto& pieces = data ? result_.written.data.pieces : result_.written.pieces;
    const size_t i = static_cast<size_t>(k);
    if (i >= pieces.size() || !pieces[i].transform) return false;
    const onnx::Piece& p = pieces[i];
    const uint64_t from = static_cast<uint64_t>(at), n = static_cast<uint64_t>(length);
    const uint64_t u = p.transform->unitBytes();
    if (from % u || n % u || from > p.length || n > p.length - from) return false;
    p.transform->apply(p.transformAt + from, reinterpret_cast<uint8_t*>(ptr), n);
    return true;
  }

  val report() const {
    const cle::Report& r = result_.report;
    val o = val::object();
    o.set("options", options_);  // the options in effect, defaults included
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
      l.set("beforeError", c.beforeError.empty() ? val::null() : val(c.beforeError));
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
  Equalization(cle::Equalized result, const cle::Options& options) : result_(std::move(result)), options_(options) {}

  cle::Equalized result_;
  cle::Options options_;
};

}  // namespace

EMSCRIPTEN_BINDINGS(quantlens_equalization) {
  emscripten::value_object<cle::Options> options("CleOptions");
  forEachOption([&](const char* name, auto member) { options.field(name, member); });
  emscripten::function("cleOptionKinds", &optionKinds);
  emscripten::function("cleOptionDefaults", &optionDefaults);
  emscripten::class_<Equalization>("Equalization")
      .function("pieces", &Equalization::pieces)
      .function("size", &Equalization::size)
      .function("dataLocation", &Equalization::dataLocation)
      .function("dataPieces", &Equalization::dataPieces)
      .function("dataSize", &Equalization::dataSize)
      .function("transformPiece", &Equalization::transformPiece)
      .function("report", &Equalization::report);
  emscripten::function("equalize", &Equalization::run);
  emscripten::function("equalizeStreamed", &Equalization::runStreamed);
}

}  // namespace ql::bindings
