// The comparison binding: two models read whole into the heap, matched by the core's
// rules (compare/compare.hpp), compared one pair at a time. Driven by web/src/compare.js.
#include <emscripten/bind.h>

#include <cstdint>
#include <cstdlib>
#include <memory>
#include <string>

#include "compare/compare.hpp"
#include "marshal.hpp"

namespace ql::bindings {

namespace {

class Comparison {
 public:
  // Takes ownership of both malloc'ed buffers. Returns the comparison, or an error with
  // `side: 'a' | 'b'` naming the model that does not open (both buffers are freed then).
  static val open(uintptr_t ptrA, double sizeA, uintptr_t ptrB, double sizeB) {
    std::unique_ptr<Comparison> c(new Comparison(ptrA, sizeA, ptrB, sizeB));
    auto a = compare::openSide(c->bufA_, c->sizeA_);
    if (!a.ok()) return sideError(a.error(), "a");
    auto b = compare::openSide(c->bufB_, c->sizeB_);
    if (!b.ok()) return sideError(b.error(), "b");
    c->cmp_ = std::make_unique<compare::Comparison>(std::move(a.value()), std::move(b.value()));
    return val(std::move(c));
  }
  ~Comparison() {
    cmp_.reset();  // the models borrow the buffers
    std::free(bufA_);
    std::free(bufB_);
  }
  Comparison(const Comparison&) = delete;
  Comparison& operator=(const Comparison&) = delete;

  // One side's model (modelValue) and its count of weight layers.
  val model(std::string side) const {
    const compare::Side& s = side == "b" ? cmp_->b() : cmp_->a();
    val o = modelValue(*s.model, side == "b" ? sizeB_ : sizeA_);
    o.set("layers", static_cast<double>(s.discovery.layers.size()));
    return o;
  }

  size_t pairCount() const { return cmp_->matching().pairs.size(); }

  val unmatched() const {
    val o = val::object();
    val a = val::array(), b = val::array();
    for (size_t i : cmp_->matching().unmatchedA) a.call<void>("push", cmp_->a().discovery.layers[i].name);
    for (size_t j : cmp_->matching().unmatchedB) b.call<void>("push", cmp_->b().discovery.layers[j].name);
    o.set("a", a);
    o.set("b", b);
    return o;
  }

  // Pair k: {a, b: {position, layer (layerValue), quant}, matchedBy, comparable, reason?,
  // tensor, channels} with views valid until the next call, or an error.
  val pair(size_t k) {
    if (k >= pairCount()) return errorValue(makeError(ErrorCode::InvalidArgument, "no pair " + std::to_string(k)));
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
  Comparison(uintptr_t ptrA, double sizeA, uintptr_t ptrB, double sizeB)
      : bufA_(reinterpret_cast<uint8_t*>(ptrA)),
        bufB_(reinterpret_cast<uint8_t*>(ptrB)),
        sizeA_(static_cast<size_t>(sizeA)),
        sizeB_(static_cast<size_t>(sizeB)) {}

  static val sideError(const Error& e, const char* side) {
    val o = errorValue(e);
    o.set("side", std::string(side));
    return o;
  }

  static val sideValue(const graph::Layer& L, size_t position, const analysis::QuantInfo& q) {
    val o = val::object();
    o.set("position", static_cast<double>(position));
    o.set("layer", layerValue(L));
    o.set("quant", quantValue(q));
    return o;
  }

  uint8_t* bufA_;
  uint8_t* bufB_;
  size_t sizeA_, sizeB_;
  std::unique_ptr<compare::Comparison> cmp_;
  compare::PairDiff last_;
};

}  // namespace

EMSCRIPTEN_BINDINGS(quantlens_comparison) {
  emscripten::class_<Comparison>("Comparison")
      .function("model", &Comparison::model)
      .function("pairCount", &Comparison::pairCount)
      .function("unmatched", &Comparison::unmatched)
      .function("pair", &Comparison::pair);
  emscripten::function("openComparison", &Comparison::open);
}

}  // namespace ql::bindings
