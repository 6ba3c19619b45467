// The comparison binding: two models opened (whole, or skimmed through a reader with
// their large weights left in their files), matched by the core's rules
// (compare/compare.hpp), compared one pair at a time: whole when both weights are in
// memory, otherwise streamed (compare::PairStream) with the weights' bytes read where
// the core's plan (analysis/plan.hpp) says. Driven by web/src/compare.js.
#include <emscripten/bind.h>

#include <cmath>
#include <cstdint>
#include <cstdlib>
#include <memory>
#include <string>

#include "analysis/plan.hpp"
#include "common/alloc.hpp"
#include "compare/compare.hpp"
#include "marshal.hpp"
#include "onnx/skim.hpp"
#include "onnx/tensor_data.hpp"

namespace ql::bindings {

namespace {

// One side's bytes: the model's image (the whole file, or a skim of it) and where its
// layers' weights are.
struct Opened {
  uint8_t* buffer = nullptr;
  size_t size = 0;
  onnx::Skim skim;
  compare::Side side;
  std::unique_ptr<analysis::StreamPlan> plan;
  ~Opened() {
    plan.reset();
    side = {};  // the model views the buffer
    std::free(buffer);
  }
};

class Comparison {
 public:
  // Each side is {size, ptr} (a malloc'ed buffer holding the whole model, owned from
  // here) or {size, read} (a reader (offset, length, heapPointer) => boolean: the model
  // is skimmed, its large weights left in the file). Returns the comparison, or an error
  // with `side: 'a' | 'b'` naming the model that does not open.
  static val open(val a, val b) {
    std::unique_ptr<Comparison> c(new Comparison());
    // Take every buffer first, so that none leaks when a side fails.
    for (auto [from, to] : {std::pair{&a, &c->a_}, std::pair{&b, &c->b_}}) {
      to->size = static_cast<size_t>(from->operator[]("size").as<double>());
      if (from->operator[]("ptr").isNumber()) to->buffer = reinterpret_cast<uint8_t*>(from->operator[]("ptr").as<uintptr_t>());
    }
    for (auto [from, to, name] : {std::tuple{&a, &c->a_, "a"}, std::tuple{&b, &c->b_, "b"}}) {
      Result<compare::Side> s = makeError(ErrorCode::InvalidArgument, "no bytes");
      if (to->buffer) {
        s = compare::openSide(to->buffer, to->size);
      } else {
        to->buffer = static_cast<uint8_t*>(allocateLarge(to->size));
        if (!to->buffer)
          return sideError(
              makeError(ErrorCode::InvalidArgument,
                        "cannot hold " + std::to_string(to->size) +
                            " bytes in the heap: the structure of both model files is held at once, at their own offsets, "
                            "and the WebAssembly heap ends at 4 GB; save large models with their weights in external data"),
              name);
        JsReader in(from->operator[]("read"));
        s = compare::openSkimmedSide(in, to->size, to->buffer, &to->skim);
      }
      if (!s.ok()) return sideError(s.error(), name);
      to->side = std::move(s.value());
      to->plan = std::make_unique<analysis::StreamPlan>(to->side.discovery, to->buffer, to->skim);
    }
    c->cmp_ = std::make_unique<compare::Comparison>(std::move(c->a_.side), std::move(c->b_.side));
    return val(std::move(c));
  }
  ~Comparison() {
    stream_.reset();
    cmp_.reset();  // the models borrow the buffers, freed by a_ and b_
  }
  Comparison(const Comparison&) = delete;
  Comparison& operator=(const Comparison&) = delete;

  // One side's model (modelValue) and its count of weight layers.
  val model(std::string side) const {
    const compare::Side& s = side == "b" ? cmp_->b() : cmp_->a();
    val o = modelValue(*s.model, side == "b" ? b_.size : a_.size);
    o.set("layers", static_cast<double>(s.discovery.layers.size()));
    return o;
  }

  size_t pairCount() const { return cmp_->matching().pairs.size(); }

  // The stored bytes pair k reads from files (both sides' streamed weights; 0 for weights
  // in memory): what a pool deals out, largest first.
  double pairBytes(size_t k) const {
    if (k >= pairCount()) return 0;
    const compare::Match& m = cmp_->matching().pairs[k];
    auto streamed = [](const analysis::StreamPlan& plan, const graph::Layer& L, size_t i) {
      const analysis::WeightPlace& w = plan.weight(i);
      if (!w.streamed() || !w.error.ok()) return 0.0;
      return static_cast<double>(w.length ? w.length : onnx::expectedByteSize(*L.weight));
    };
    return streamed(*a_.plan, cmp_->a().discovery.layers[m.a], m.a) + streamed(*b_.plan, cmp_->b().discovery.layers[m.b], m.b);
  }

  val unmatched() const {
    val o = val::object();
    val a = val::array(), b = val::array();
    for (size_t i : cmp_->matching().unmatchedA) a.call<void>("push", cmp_->a().discovery.layers[i].name);
    for (size_t j : cmp_->matching().unmatchedB) b.call<void>("push", cmp_->b().discovery.layers[j].name);
    o.set("a", a);
    o.set("b", b);
    return o;
  }

  // Starts pair k. Returns {done: true} when it is compared already (both weights in
  // memory, or shapes that cannot be compared: read it with result()), or
  // {done: false, elements, pieceElements, a, b}, each side null (nothing to read) or
  // {whole, external, location?, path?, offset, bytes, bits}: read its weight from the
  // model file or external data at `offset`, whole (`bytes` bytes, handed to hold()) or
  // a piece at a time (elements [first, first + count) are the `bits`-bit stored bytes
  // [first * bits / 8, ceil((first + count) * bits / 8)), handed to feed()). A side
  // whose bytes cannot be read is reported with fail(). Then finish(). Or an error.
  val begin(size_t k) {
    if (k >= pairCount()) return errorValue(makeError(ErrorCode::InvalidArgument, "no pair " + std::to_string(k)));
    stream_.reset();
    pair_ = k;
    const compare::Match& m = cmp_->matching().pairs[k];
    const graph::Layer& La = cmp_->a().discovery.layers[m.a];
    const graph::Layer& Lb = cmp_->b().discovery.layers[m.b];
    const analysis::WeightPlace& pa = a_.plan->weight(m.a);
    const analysis::WeightPlace& pb = b_.plan->weight(m.b);
    val done = val::object();
    done.set("done", true);
    if ((!pa.streamed() && !pb.streamed()) || !compare::incompatibility(La, Lb).empty()) {
      last_ = cmp_->pair(k);  // nothing to read: the weights are in memory or not compared
      return done;
    }
    const auto fa = compare::PairStream::feedOf(La, pa.streamed(), available(pa, La));
    const auto fb = compare::PairStream::feedOf(Lb, pb.streamed(), available(pb, Lb));
    stream_ = std::make_unique<compare::PairStream>(La, Lb, fa, fb);
    if (!pa.error.ok()) stream_->fail(0, pa.error.describe());
    if (!pb.error.ok()) stream_->fail(1, pb.error.describe());
    val o = val::object();
    o.set("done", false);
    o.set("elements", static_cast<double>(stream_->elements()));
    o.set("pieceElements", static_cast<double>(compare::PairStream::kPieceElements));
    o.set("a", place(pa, La, fa));
    o.set("b", place(pb, Lb, fb));
    return o;
  }
  // A whole side's stored bytes at ptr (side 0: A, 1: B).
  void hold(int side, uintptr_t ptr, double size) {
    if (stream_) stream_->hold(side, {reinterpret_cast<const uint8_t*>(ptr), static_cast<size_t>(size)});
  }
  void fail(int side, std::string reason) {
    if (stream_) stream_->fail(side, std::move(reason));
  }
  bool needsPieces() const { return stream_ && stream_->needsPieces(); }
  // Elements [first, first + count): each side's stored bytes (size 0 for a side read
  // otherwise). Returns null or an error.
  val feed(uintptr_t ptrA, double sizeA, uintptr_t ptrB, double sizeB, double first, double count) {
    if (!stream_) return errorValue(makeError(ErrorCode::InvalidArgument, "no pair being compared"));
    Error e = stream_->feed({reinterpret_cast<const uint8_t*>(ptrA), static_cast<size_t>(sizeA)},
                            {reinterpret_cast<const uint8_t*>(ptrB), static_cast<size_t>(sizeB)}, static_cast<uint64_t>(first),
                            static_cast<uint64_t>(count));
    return e.ok() ? val::null() : errorValue(e);
  }
  // Ends the streamed pair.
  void finish() {
    if (!stream_) return;
    last_ = stream_->finish();
    stream_.reset();
  }

  // The pair begun last: {a, b: {position, layer (layerValue), quant}, matchedBy,
  // comparable, reason?, tensor, channels} with views valid until the next call.
  val result() const {
    const compare::Match& m = cmp_->matching().pairs[pair_];
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
    if (d.rescale) {
      val r = val::object();
      r.set("factor", view(d.rescaleFactor));
      o.set("rescale", r);
    } else {
      o.set("rescale", val::null());
    }
    return o;
  }

 private:
  Comparison() = default;

  static val sideError(const Error& e, const char* side) {
    val o = errorValue(e);
    o.set("side", std::string(side));
    return o;
  }

  // The stored bytes a streamed weight has in its file: the payload's length, or the
  // length external data states (0 when it states none).
  static uint64_t available(const analysis::WeightPlace& p, const graph::Layer&) { return p.length; }

  static val place(const analysis::WeightPlace& p, const graph::Layer& L, compare::PairStream::Feed f) {
    if (f == compare::PairStream::Feed::Memory || !p.error.ok()) return val::null();
    val o = val::object();
    const bool external = p.at == analysis::WeightAt::ExternalFile;
    o.set("whole", f == compare::PairStream::Feed::Whole);
    o.set("external", external);
    if (external) {
      o.set("location", str(p.ref.location));
      o.set("path", p.ref.path);
    }
    o.set("offset", static_cast<double>(p.offset));
    // Whole: what the file has for it (external data without a length: what its shape needs).
    const uint64_t bytes = p.length ? p.length : onnx::expectedByteSize(*L.weight);
    o.set("bytes", static_cast<double>(bytes));
    o.set("bits", static_cast<double>(compare::PairStream::storedBits(L)));
    return o;
  }

  static val sideValue(const graph::Layer& L, size_t position, const analysis::QuantInfo& q) {
    val o = val::object();
    o.set("position", static_cast<double>(position));
    o.set("layer", layerValue(L));
    o.set("quant", quantValue(q));
    return o;
  }

  Opened a_, b_;
  std::unique_ptr<compare::Comparison> cmp_;
  std::unique_ptr<compare::PairStream> stream_;
  size_t pair_ = 0;
  compare::PairDiff last_;
};

}  // namespace

EMSCRIPTEN_BINDINGS(quantlens_comparison) {
  emscripten::class_<Comparison>("Comparison")
      .function("model", &Comparison::model)
      .function("pairCount", &Comparison::pairCount)
      .function("pairBytes", &Comparison::pairBytes)
      .function("unmatched", &Comparison::unmatched)
      .function("begin", &Comparison::begin)
      .function("hold", &Comparison::hold)
      .function("fail", &Comparison::fail)
      .function("needsPieces", &Comparison::needsPieces)
      .function("feed", &Comparison::feed)
      .function("finish", &Comparison::finish)
      .function("result", &Comparison::result);
  emscripten::function("openComparison", &Comparison::open);
}

}  // namespace ql::bindings
