#include "marshal.hpp"

#include <emscripten/emscripten.h>

#include <cmath>
#include <limits>

#include "common/alloc.hpp"

namespace ql::bindings {

namespace {

val follower(const graph::Follower& f) {
  val o = val::object();
  o.set("kind", std::string(graph::followerKindName(f.kind)));
  o.set("op", f.node ? str(f.node->opType) : val::null());
  o.set("node", f.node ? val(f.name) : val::null());
  const bool clip = f.kind == graph::FollowerKind::Clip || f.kind == graph::FollowerKind::Relu6;
  o.set("min", clip ? val(static_cast<double>(f.clipMin)) : val::null());
  o.set("max", clip ? val(static_cast<double>(f.clipMax)) : val::null());
  return o;
}

}  // namespace

val errorValue(const Error& e) {
  val o = val::object();
  o.set("coreError", true);
  o.set("code", std::string(errorCodeName(e.code)));
  o.set("message", e.describe());
  o.set("offset", static_cast<double>(e.offset));
  return o;
}

namespace {
// A written file's pieces: runs of an input file (named by `sources` when there are
// several, as for a data file) or bytes in the heap.
val piecesOf(const std::vector<onnx::Piece>& pieces, const std::vector<std::string>* sources) {
  val out = val::array();
  for (size_t k = 0; k < pieces.size(); ++k) {
    const onnx::Piece& p = pieces[k];
    val o = val::object();
    if (p.input) {
      if (sources) o.set("location", (*sources)[p.file]);
      o.set("offset", static_cast<double>(p.offset));
      o.set("length", static_cast<double>(p.length));
      // Bytes to be rewritten once read (onnx::Piece::transform): by transformPiece(k, ...).
      if (p.transform) o.set("transform", static_cast<double>(k));
    } else {
      o.set("bytes", val(emscripten::typed_memory_view(static_cast<size_t>(p.length), p.bytes)));
    }
    out.call<void>("push", o);
  }
  return out;
}
}  // namespace

val piecesValue(const onnx::WrittenModel& w) { return piecesOf(w.pieces, nullptr); }

val dataPiecesValue(const onnx::WrittenData& w) { return piecesOf(w.pieces, &w.sources); }

val modelValue(const onnx::Model& m, size_t bytes) {
  val o = val::object();
  o.set("producer", str(m.producerName));
  o.set("producerVersion", str(m.producerVersion));
  o.set("irVersion", static_cast<double>(m.irVersion));
  o.set("domain", str(m.domain));
  o.set("graph", str(m.graph.name));
  o.set("bytes", static_cast<double>(bytes));
  val opsets = val::array();
  for (const auto& op : m.opsets) {
    val e = val::object();
    e.set("domain", str(op.domain));
    e.set("version", static_cast<double>(op.version));
    opsets.call<void>("push", e);
  }
  o.set("opsets", opsets);
  val meta = val::array();
  for (const auto& [k, v] : m.metadata) {
    val e = val::object();
    e.set("key", str(k));
    e.set("value", str(v));
    meta.call<void>("push", e);
  }
  o.set("metadata", meta);
  o.set("nodes", static_cast<double>(m.graph.nodes.size()));
  return o;
}

namespace {
val strings(const std::vector<std::string_view>& v) {
  val a = val::array();
  for (auto s : v) a.call<void>("push", str(s));
  return a;
}
}  // namespace

val graphValue(const graph::NodeList& g) {
  val nodes = val::array();
  for (const auto& n : g.nodes) {
    val o = val::object();
    o.set("name", n.name);
    o.set("op", str(n.op));
    o.set("domain", str(n.domain));
    o.set("inputs", strings(n.inputs));
    o.set("outputs", strings(n.outputs));
    o.set("path", n.path);
    o.set("owner", static_cast<double>(n.owner));
    nodes.call<void>("push", o);
  }
  val o = val::object();
  o.set("nodes", nodes);
  o.set("inputs", strings(g.inputs));
  o.set("outputs", strings(g.outputs));
  return o;
}

val layerValue(const graph::Layer& L) {
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
  if (L.recurrent.part != graph::RecurrentPart::None) {  // LSTM, GRU, RNN (graph::Recurrent)
    const graph::Recurrent& r = L.recurrent;
    val rec = val::object();
    rec.set("node", r.node);
    rec.set("part", std::string(graph::recurrentPartName(r.part)));
    rec.set("direction", str(r.direction));
    rec.set("directions", static_cast<double>(r.directions));
    val gates = val::array();
    for (char g : L.spec->gates) gates.call<void>("push", std::string(1, g));
    rec.set("gates", gates);
    rec.set("hiddenSize", static_cast<double>(r.hiddenSize));
    rec.set("biasOffset", static_cast<double>(r.biasOffset));
    rec.set("peepholes", r.peepholes.empty() ? val::null() : str(r.peepholes));
    o.set("recurrent", rec);
  }
  return o;
}

val quantValue(const analysis::QuantInfo& q) {
  if (!q.present) return val::null();
  val o = val::object();
  o.set("via", q.via);
  o.set("dtype", q.intType);
  o.set("axis", q.axis >= 0 ? val(q.axis) : val::null());
  o.set("scale", view(q.scale));
  o.set("zeroPoint", view(q.zeroPoint));
  if (q.bits > 0) {  // block-wise (MatMulNBits): one scale and zero point per block along K
    o.set("granularity", str("per-block"));
    o.set("bits", q.bits);
    o.set("blockSize", static_cast<double>(q.blockSize));
    o.set("symmetric", q.symmetric);
  }
  if (!q.scaleVia.empty()) o.set("scaleVia", q.scaleVia);
  if (!q.note.empty()) o.set("note", q.note);
  return o;
}

// What the stored codes say (analysis/stored.hpp); null for weights not stored as codes.
val storedValue(const analysis::StoredFacts& f) {
  if (!f.present) return val::null();
  val o = val::object();
  o.set("bits", f.bits);
  o.set("signed", f.isSigned);
  o.set("float", f.isFloat);
  o.set("typeMin", static_cast<double>(f.typeMin));
  o.set("typeMax", static_cast<double>(f.typeMax));
  o.set("lowEnd", static_cast<double>(f.lowEnd));
  o.set("granularity", f.granularity);
  o.set("symmetric", f.symmetric);
  o.set("elements", static_cast<double>(f.elements));
  o.set("effectiveBits", f.effectiveBits);
  o.set("spanBits", f.spanBits);
  o.set("lowestSpanBits", f.lowestSpanBits);
  o.set("saturatedFraction", f.saturatedFraction);
  o.set("saturatedChannels", static_cast<double>(f.saturatedChannels));
  o.set("zeroPointsOutsideUsed", static_cast<double>(f.zeroPointsOutsideUsed));
  o.set("zeroPointsOutsideType", static_cast<double>(f.zeroPointsOutsideType));
  val ch = val::object();
  ch.set("levels", view(f.levels));
  ch.set("codeMin", view(f.codeMin));
  ch.set("codeMax", view(f.codeMax));
  ch.set("atLow", view(f.atLow));
  ch.set("atHigh", view(f.atHigh));
  o.set("channels", ch);
  return o;
}

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
  for (const auto& b : s.blockSqnr) chs.set(b.scheme, view(b.channelSqnr));
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
  for (const auto& b : s.blockSqnr) sq.set(b.scheme, b.sqnr);
  o.set("sqnr", sq);
  return o;
}

val inputChannelsValue(const stats::InputChannelStats& s) {
  val o = val::object();
  o.set("count", static_cast<double>(s.count));
  o.set("axis", s.axis);
  o.set("groups", static_cast<double>(s.groups));
  o.set("perGroup", static_cast<double>(s.perGroup));
  o.set("absMax", view(s.absMax));
  o.set("relativeAbsMax", view(s.relative));
  o.set("outliers", view(s.outliers));
  o.set("threshold", s.threshold);
  val q = val::array();
  q.call<void>("push", s.q1);
  q.call<void>("push", s.q3);
  o.set("quartiles", q);
  return o;
}

val analysisValue(const analysis::LayerAnalysis& a) {
  val o = layerStatsValue(a.stats);
  o.set("quant", quantValue(a.quant));
  o.set("inputChannels", inputChannelsValue(a.inputs));
  o.set("stored", storedValue(a.stored));
  return o;
}

namespace {

Error badPart(const std::string& what) { return makeError(ErrorCode::InvalidArgument, "a layer part: " + what); }

// A JS number that is a whole number from 0 to 2^53 (every count and index that crosses).
bool wholeNumber(const val& v, uint64_t* out) {
  if (!v.isNumber()) return false;
  const double d = v.as<double>();
  if (!(d >= 0 && d <= 9007199254740992.0) || std::floor(d) != d) return false;
  *out = static_cast<uint64_t>(d);
  return true;
}

// A JS number that is a float32 value (checked before the cast: out of range it is undefined).
bool float32Number(double d, float* out) {
  if (std::isnan(d)) {
    *out = static_cast<float>(d);
    return true;
  }
  if (std::isfinite(d) && std::fabs(d) > static_cast<double>(std::numeric_limits<float>::max())) return false;
  *out = static_cast<float>(d);
  return static_cast<double>(*out) == d;
}

bool isObject(const val& v) { return v.typeOf().as<std::string>() == "object" && !v.isNull(); }

// A typed array of `type` (its bytes copied as they are), at most `maxLength` long.
template <class T>
Error typedArray(const val& part, const char* key, const char* type, uint64_t maxLength, std::vector<T>* out) {
  const val v = part[key];
  if (!v.instanceof (val::global(type))) return badPart(std::string(key) + " is not a " + type);
  const double n = v["length"].as<double>();
  if (n > static_cast<double>(maxLength))
    return badPart(std::string(key) + " has " + std::to_string(static_cast<uint64_t>(n)) +
                   " values, more than this layer's parts hold");
  out->resize(static_cast<size_t>(n));
  val(emscripten::typed_memory_view(out->size(), out->data())).call<void>("set", v);
  return Error{};
}

Error number(const val& obj, const char* key, uint64_t* out) {
  return wholeNumber(obj[key], out) ? Error{} : badPart(std::string(key) + " is not a whole number");
}

}  // namespace

val extremesValue(const stats::PassExtremes& x) {
  const double a[5] = {static_cast<double>(x.firstChannel), static_cast<double>(x.endChannel), x.min, x.max,
                       static_cast<double>(x.nonFinite)};
  return val(emscripten::typed_memory_view(5, a)).call<val>("slice");
}

Result<stats::PassExtremes> extremesFrom(const val& v) {
  if (!v.instanceof (val::global("Float64Array")) || v["length"].as<double>() != 5)
    return badPart("extremes are a Float64Array [firstChannel, endChannel, min, max, nonFinite]");
  stats::PassExtremes x;
  if (!wholeNumber(v[0], &x.firstChannel) || !wholeNumber(v[1], &x.endChannel) || !wholeNumber(v[4], &x.nonFinite))
    return badPart("the extremes' channels and count are not whole numbers");
  if (!float32Number(v[2].as<double>(), &x.min) || !float32Number(v[3].as<double>(), &x.max))
    return badPart("the extremes' min and max are not float32 values");
  return x;
}

val partValue(const analysis::LayerAnalysisPart& p) {
  const stats::LayerStatsPart& s = p.stats;
  val o = val::object();
  o.set("firstChannel", static_cast<double>(s.firstChannel));
  o.set("endChannel", static_cast<double>(s.endChannel));
  o.set("tensorMin", s.tensorMin);
  o.set("tensorMax", s.tensorMax);
  val layout = val::object();
  layout.set("outer", static_cast<double>(s.layout.outer));
  layout.set("rows", static_cast<double>(s.layout.rows));
  layout.set("channels", static_cast<double>(s.layout.channels));
  layout.set("inner", static_cast<double>(s.layout.inner));
  o.set("layout", layout);
  o.set("histogramBins", s.options.histogramBins);
  o.set("blockSize", static_cast<double>(s.options.blockSize));
  o.set("min", view(s.min));
  o.set("max", view(s.max));
  o.set("sum", view(s.sum));
  o.set("acc", view(s.acc));
  o.set("blockNoise", view(s.blockNoise));
  o.set("histogram", view(s.histogram));
  o.set("inputAbsMax", view(p.inputAbsMax));
  return o;
}

Result<analysis::LayerAnalysisPart> partFrom(const val& v, uint64_t maxLength) {
  if (!isObject(v) || !isObject(v["layout"])) return badPart("not an object with a layout");
  analysis::LayerAnalysisPart p;
  stats::LayerStatsPart& s = p.stats;
  uint64_t bins = 0;
  const val layout = v["layout"];
  for (Error e : {number(v, "firstChannel", &s.firstChannel), number(v, "endChannel", &s.endChannel),
                  number(layout, "outer", &s.layout.outer), number(layout, "rows", &s.layout.rows),
                  number(layout, "channels", &s.layout.channels), number(layout, "inner", &s.layout.inner),
                  number(v, "histogramBins", &bins), number(v, "blockSize", &s.options.blockSize)})
    if (!e.ok()) return e;
  if (bins > static_cast<uint64_t>(std::numeric_limits<int>::max())) return badPart("histogramBins is too large");
  s.options.histogramBins = static_cast<int>(bins);
  if (!v["tensorMin"].isNumber() || !v["tensorMax"].isNumber() || !float32Number(v["tensorMin"].as<double>(), &s.tensorMin) ||
      !float32Number(v["tensorMax"].as<double>(), &s.tensorMax))
    return badPart("tensorMin and tensorMax are not float32 values");
  for (Error e :
       {typedArray(v, "min", "Float32Array", maxLength, &s.min), typedArray(v, "max", "Float32Array", maxLength, &s.max),
        typedArray(v, "sum", "Float64Array", maxLength, &s.sum), typedArray(v, "acc", "Float64Array", maxLength, &s.acc),
        typedArray(v, "blockNoise", "Float64Array", maxLength, &s.blockNoise),
        typedArray(v, "histogram", "Uint32Array", maxLength, &s.histogram),
        typedArray(v, "inputAbsMax", "Float32Array", maxLength, &p.inputAbsMax)})
    if (!e.ok()) return e;
  return p;
}

}  // namespace ql::bindings

// The JS side's one way to allocate a large heap buffer (a model file's image): the
// core's allocateLarge, which reaches past 2 GiB where malloc alone does not.
extern "C" EMSCRIPTEN_KEEPALIVE void* ql_alloc_large(size_t size) { return ql::allocateLarge(size); }
