// The compression binding (issue 15): a model's compressibility curves, a plan for a
// target and the written model. Thin: the core's values as typed-array views and plain
// values. Driven by web/src/compress.js.
#include <emscripten/bind.h>

#include <cmath>
#include <memory>
#include <string>
#include <unordered_map>

#include "compress/compress.hpp"
#include "marshal.hpp"

namespace ql::bindings {

namespace {

Result<std::vector<compress::Method>> parseMethods(const std::string& m) {
  using compress::Method;
  if (m == "svd") return std::vector<Method>{Method::WeightSvd, Method::SpatialSvd};
  if (m == "prune" || m == "auto") {
    if (!compress::pruningAvailable())
      return makeError(ErrorCode::Unsupported,
                       "method '" + m + "' needs channel pruning, which this build does not have; use 'svd'");
    if (m == "prune") return std::vector<Method>{Method::ChannelPrune};
    return std::vector<Method>{Method::WeightSvd, Method::SpatialSvd, Method::ChannelPrune};
  }
  return makeError(ErrorCode::InvalidArgument, "method must be 'svd', 'prune' or 'auto' (got '" + m + "')");
}

double num(uint64_t v) { return static_cast<double>(v); }
val dbOrNull(double db) { return std::isfinite(db) ? val(db) : val::null(); }

val planValue(const compress::Plan& p) {
  val o = val::object();
  o.set("ratio", p.ratio);
  o.set("by", std::string(compress::byName(p.by)));
  o.set("thresholdDb", dbOrNull(p.thresholdDb));
  o.set("paramsBefore", num(p.paramsBefore));
  o.set("paramsAfter", num(p.paramsAfter));
  o.set("macsKnown", p.macsKnown);
  o.set("macsBefore", num(p.macsBefore));
  o.set("macsAfter", num(p.macsAfter));
  val layers = val::array();
  for (const auto& c : p.layers) {
    val l = val::object();
    l.set("name", c.layer);
    l.set("compressed", c.compressed);
    l.set("method", c.compressed ? val(std::string(compress::methodName(c.method))) : val::null());
    l.set("keep", c.compressed ? val(static_cast<double>(c.keep)) : val::null());
    l.set("paramsBefore", num(c.paramsBefore));
    l.set("params", num(c.params));
    l.set("paramsRemovedElsewhere", num(c.paramsRemovedElsewhere));
    l.set("macsBefore", num(c.macsBefore));
    l.set("macs", num(c.macs));
    l.set("sqnrDb", dbOrNull(c.sqnrDb));
    l.set("leftAlone", c.compressed ? val::null() : val(c.leftAlone));
    layers.call<void>("push", l);
  }
  o.set("layers", layers);
  return o;
}

// The model bytes at ptr (not owned: they must outlive this object), parsed, its layers
// found; curves computed a layer at a time (curves(i)), then a plan and its written file.
class Compression {
 public:
  static val open(uintptr_t ptr, double size) {
    std::unique_ptr<Compression> c(new Compression);
    c->data_ = reinterpret_cast<const uint8_t*>(ptr);
    c->size_ = static_cast<size_t>(size);
    auto m = onnx::parseModel(c->data_, c->size_);
    if (!m.ok()) return errorValue(m.error());
    c->model_ = std::make_unique<onnx::Model>(std::move(m.value()));
    auto d = graph::findLayers(*c->model_);
    if (!d.ok()) return errorValue(d.error());
    c->discovery_ = std::move(d.value());
    c->positions_ = compress::layerPositions(*c->model_, c->discovery_);
    c->curves_.resize(c->discovery_.layers.size());
    return val(std::move(c));
  }

  double layerCount() const { return static_cast<double>(discovery_.layers.size()); }
  bool pruning() const { return compress::pruningAvailable(); }

  // {name, op, params, macs (null when unknown), curves: [{method, refused, producer,
  //  keep, params, macs, sqnrDb (Float64Array views; +inf as Infinity), removedElsewhere}]}
  val curves(double index, bool prune) {
    const size_t i = static_cast<size_t>(index);
    if (i >= curves_.size()) return errorValue(makeError(ErrorCode::InvalidArgument, "no layer " + std::to_string(i)));
    const graph::Layer& L = discovery_.layers[i];
    if (L.weight && L.weight->external)
      return errorValue(makeError(ErrorCode::MissingExternalData, "layer '" + L.name +
                                                                      "': its weight is in an external data file, which "
                                                                      "compression does not read yet"));
    auto r = compress::layerCurves(*model_, discovery_, L, positions_[i], {}, prune);
    if (!r.ok()) return errorValue(r.error());
    curves_[i] = std::move(r.value());
    const compress::LayerCurves& lc = curves_[i];
    val o = val::object();
    o.set("name", lc.layer);
    o.set("op", std::string(L.op));
    o.set("params", num(lc.params));
    o.set("macs", lc.macs ? val(num(lc.macs)) : val::null());
    val cs = val::array();
    views_.emplace_back();
    for (const compress::Curve& c : lc.curves) {
      val v = val::object();
      v.set("method", std::string(compress::methodName(c.method)));
      v.set("refused", c.refused.empty() ? val::null() : val(c.refused));
      v.set("producer", c.producer.empty() ? val::null() : val(c.producer));
      std::vector<double> keep, params, macs, db, elsewhere;
      for (const compress::Point& p : c.points) {
        keep.push_back(static_cast<double>(p.keep));
        params.push_back(num(p.params));
        macs.push_back(num(p.macs));
        db.push_back(p.sqnrDb);
        elsewhere.push_back(num(p.paramsRemovedElsewhere));
      }
      auto& hold = views_.back();
      for (auto* a : {&keep, &params, &macs, &db, &elsewhere}) hold.push_back(std::move(*a));
      const size_t k = hold.size();
      v.set("keep", view(hold[k - 5]));
      v.set("params", view(hold[k - 4]));
      v.set("macs", view(hold[k - 3]));
      v.set("sqnrDb", view(hold[k - 2]));
      v.set("removedElsewhere", view(hold[k - 1]));
      cs.call<void>("push", v);
    }
    o.set("curves", cs);
    return o;
  }
  void releaseViews() { views_.clear(); }

  // Layer i's curves as another session's curves(i) gave them (a worker of the pool: the
  // same model, the same code), so that this session plans over them. The arrays may be
  // typed arrays or plain arrays. Returns true, or an error (no such layer, another name).
  val adoptCurves(double index, val v) {
    const size_t i = static_cast<size_t>(index);
    if (i >= curves_.size()) return errorValue(makeError(ErrorCode::InvalidArgument, "no layer " + std::to_string(i)));
    compress::LayerCurves lc;
    lc.layer = v["name"].as<std::string>();
    if (lc.layer != discovery_.layers[i].name)
      return errorValue(makeError(ErrorCode::InvalidArgument,
                                  "curves of '" + lc.layer + "' given for layer '" + discovery_.layers[i].name + "'"));
    lc.params = static_cast<uint64_t>(v["params"].as<double>());
    lc.macs = v["macs"].isNull() ? 0 : static_cast<uint64_t>(v["macs"].as<double>());
    const val cs = v["curves"];
    const size_t n = cs["length"].as<size_t>();
    for (size_t k = 0; k < n; ++k) {
      const val c = cs[k];
      compress::Curve curve;
      const std::string method = c["method"].as<std::string>();
      bool known = false;
      for (auto m : {compress::Method::WeightSvd, compress::Method::SpatialSvd, compress::Method::ChannelPrune})
        if (method == compress::methodName(m)) curve.method = m, known = true;
      if (!known) return errorValue(makeError(ErrorCode::InvalidArgument, "unknown method '" + method + "'"));
      curve.refused = c["refused"].isNull() ? "" : c["refused"].as<std::string>();
      curve.producer = c["producer"].isNull() ? "" : c["producer"].as<std::string>();
      const auto keep = emscripten::convertJSArrayToNumberVector<double>(c["keep"]);
      const auto params = emscripten::convertJSArrayToNumberVector<double>(c["params"]);
      const auto macs = emscripten::convertJSArrayToNumberVector<double>(c["macs"]);
      const auto db = emscripten::convertJSArrayToNumberVector<double>(c["sqnrDb"]);
      const auto elsewhere = emscripten::convertJSArrayToNumberVector<double>(c["removedElsewhere"]);
      const size_t m = keep.size();
      if (params.size() != m || macs.size() != m || db.size() != m || elsewhere.size() != m)
        return errorValue(makeError(ErrorCode::InvalidArgument, "curve arrays of different lengths"));
      for (size_t j = 0; j < m; ++j) {
        compress::Point p;
        p.keep = static_cast<int64_t>(keep[j]);
        p.params = static_cast<uint64_t>(params[j]);
        p.macs = static_cast<uint64_t>(macs[j]);
        p.sqnrDb = db[j];
        p.paramsRemovedElsewhere = static_cast<uint64_t>(elsewhere[j]);
        curve.points.push_back(p);
      }
      lc.curves.push_back(std::move(curve));
    }
    curves_[i] = std::move(lc);
    return val(true);
  }

  // A plan over the curves computed so far (every layer's, once curves(i) ran for all).
  val plan(double ratio, const std::string& by, const std::string& methods, bool uniform) {
    auto o = options(ratio, by, methods);
    if (!o.ok()) return errorValue(o.error());
    if (uniform) {
      plan_ = compress::uniformPlan(curves_, o.value());
      return planValue(plan_);
    }
    auto p = compress::makePlan(curves_, o.value());
    if (!p.ok()) return errorValue(p.error());
    plan_ = std::move(p.value());
    return planValue(plan_);
  }

  // A plan of given points: layer names and their ranks (the layer's SVD method), for
  // writing a plan edited by hand (or every layer at full rank).
  val planOf(val names, val keeps) {
    const auto n = names["length"].as<size_t>();
    std::unordered_map<std::string, int64_t> want;
    for (size_t i = 0; i < n; ++i) want[names[i].as<std::string>()] = static_cast<int64_t>(keeps[i].as<double>());
    compress::Plan p;
    p.ratio = 1;
    p.thresholdDb = NAN;
    for (size_t i = 0; i < curves_.size(); ++i) {
      const compress::LayerCurves& lc = curves_[i];
      const graph::Layer& L = discovery_.layers[i];
      compress::LayerChoice c;
      c.layer = L.name;
      c.paramsBefore = c.params = L.layout.elementCount();
      c.sqnrDb = INFINITY;
      auto it = want.find(L.name);
      if (it != want.end()) {
        const compress::SvdFit fit = compress::svdFit(L);
        if (!fit.refused.empty())
          return errorValue(makeError(ErrorCode::InvalidArgument, "layer '" + L.name + "': " + fit.refused));
        c.compressed = true;
        c.method = fit.method;
        c.keep = std::clamp<int64_t>(it->second, 1, std::min(fit.rows, fit.cols));
        c.params = compress::svdParams(fit, c.keep);
        for (const compress::Curve& cv : lc.curves)
          for (const compress::Point& pt : cv.points)
            if (cv.method == fit.method && pt.keep == c.keep) c.sqnrDb = pt.sqnrDb;
        want.erase(it);
      } else {
        c.leftAlone = "not in the given plan";
      }
      p.paramsBefore += c.paramsBefore;
      p.paramsAfter += c.params;
      p.layers.push_back(std::move(c));
    }
    if (!want.empty()) return errorValue(makeError(ErrorCode::InvalidArgument, "no layer named '" + want.begin()->first + "'"));
    plan_ = std::move(p);
    return planValue(plan_);
  }

  // Writes the last plan: the pieces of the file ({offset, length} of the input or
  // {bytes}, views valid while this object lives or until the next write) and its size.
  val write() {
    std::vector<compress::WrittenLayer> layers;
    auto e = compress::planEdit(*model_, discovery_, plan_, nullptr, &layers);
    if (!e.ok()) return errorValue(e.error());
    edit_ = std::move(e.value());
    auto w = onnx::planModel(data_, size_, *model_, edit_);
    if (!w.ok()) return errorValue(w.error());
    written_ = std::move(w.value());
    val out = piecesValue(written_);
    val r = val::object();
    r.set("pieces", out);
    r.set("size", static_cast<double>(written_.size));
    val written = val::array();  // per compressed layer: {layer, nodes} (the written model's nodes for it)
    for (const auto& w : layers) {
      val list = val::array();
      for (const auto& s : w.nodes) list.call<void>("push", s);
      val one = val::object();
      one.set("layer", w.layer);
      one.set("nodes", list);
      written.call<void>("push", one);
    }
    r.set("written", written);
    return r;
  }

 private:
  Result<compress::PlanOptions> options(double ratio, const std::string& by, const std::string& methods) {
    compress::PlanOptions o;
    o.ratio = ratio;
    if (by == "params")
      o.by = compress::By::Params;
    else if (by == "macs")
      o.by = compress::By::Macs;
    else
      return makeError(ErrorCode::InvalidArgument, "by must be 'params' or 'macs' (got '" + by + "')");
    auto m = parseMethods(methods);
    if (!m.ok()) return m.error();
    o.methods = std::move(m.value());
    return o;
  }

  const uint8_t* data_ = nullptr;
  size_t size_ = 0;
  std::unique_ptr<onnx::Model> model_;
  graph::Discovery discovery_;
  std::vector<compress::Positions> positions_;
  std::vector<compress::LayerCurves> curves_;
  std::vector<std::vector<std::vector<double>>> views_;
  compress::Plan plan_;
  onnx::GraphEdit edit_;
  onnx::WrittenModel written_;
};

}  // namespace

EMSCRIPTEN_BINDINGS(quantlens_compression) {
  emscripten::class_<Compression>("Compression")
      .function("layerCount", &Compression::layerCount)
      .function("pruning", &Compression::pruning)
      .function("curves", &Compression::curves)
      .function("releaseViews", &Compression::releaseViews)
      .function("adoptCurves", &Compression::adoptCurves)
      .function("plan", &Compression::plan)
      .function("planOf", &Compression::planOf)
      .function("write", &Compression::write);
  emscripten::function("openCompression", &Compression::open);
}

}  // namespace ql::bindings
