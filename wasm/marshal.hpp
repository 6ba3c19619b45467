// What the bindings share: the core's values as JS values, each marshalled in one place.
// Per-channel arrays cross as typed-array views of the WASM heap, valid while the C++
// value they view lives (the JS side copies them before the next call); strings and
// scalars as plain values.
//
// The one error convention: a binding that can fail returns either its value or
// errorValue(e), an object {coreError: true, code, message, offset}; no value a binding
// returns has a `coreError` field. web/src/core.js (isCoreError, unwrap) is its one reader.
#pragma once
#include <emscripten/val.h>

#include <cstdint>
#include <string>
#include <string_view>
#include <utility>
#include <vector>

#include "analysis/analyze.hpp"
#include "common/result.hpp"
#include "graph/layers.hpp"
#include "graph/nodes.hpp"
#include "onnx/model.hpp"
#include "onnx/skim.hpp"
#include "onnx/writer.hpp"
#include "stats/stats.hpp"

namespace ql::bindings {

using emscripten::val;

inline val str(std::string_view s) { return val(std::string(s)); }

// Synchronous reads from a model file through a JS function
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

// Synchronous reads from external data files through a JS function
// (path, offset, length, heapPointer) => string: '' when read, else why not (naming the file).
class JsExternalReader : public onnx::ExternalReader {
 public:
  explicit JsExternalReader(val fn) : fn_(std::move(fn)) {}
  bool read(const std::string& path, uint64_t offset, uint8_t* dst, uint64_t length, std::string* why) override {
    *why =
        fn_(path, static_cast<double>(offset), static_cast<double>(length), reinterpret_cast<uintptr_t>(dst)).as<std::string>();
    return why->empty();
  }

 private:
  val fn_;
};

template <class T>
val view(const std::vector<T>& v) {
  return val(emscripten::typed_memory_view(v.size(), v.data()));
}

// {coreError: true, code, message, offset}: see above.
val errorValue(const Error& e);
// A written model's pieces for JS: {offset, length} (a run of the input, copied through;
// with `transform`: a changed tensor's stored bytes, to be rewritten once read by the
// result's transformPiece) or {bytes} (a view of bytes the core made: valid while `w` lives).
val piecesValue(const onnx::WrittenModel& w);
// The pieces of a written model's new external data file (WrittenModel::data) for JS:
// {location, offset, length} (a range of an input data file, `location` its normalised
// path) or {bytes} (made: a changed tensor or alignment zeros, valid while `w` lives).
val dataPiecesValue(const onnx::WrittenData& w);
// A Result's value through `marshal`, or its error.
template <class T, class F>
val valueOr(const Result<T>& r, F&& marshal) {
  return r.ok() ? marshal(r.value()) : errorValue(r.error());
}

// {producer, producerVersion, irVersion, domain, graph, bytes, opsets: [{domain, version}],
//  metadata: [{key, value}], nodes}
val modelValue(const onnx::Model& m, size_t bytes);
// {nodes: [{name, op, domain, inputs, outputs, path, owner}], inputs, outputs}: graph::listNodes
val graphValue(const graph::NodeList& g);
// {name, path, op, weight, shape, dtype, channelAxis, channels, groups, depthwise, bias,
//  via, follower, activation, external}
val layerValue(const graph::Layer& L);
// null, or {via, dtype, axis (null per-tensor), scale, zeroPoint} (views of `q`)
val quantValue(const analysis::QuantInfo& q);
// {channels: {count, min, max, mean, std, absMax, range, relativeRange, sqnr: {scheme: view}},
//  tensor, histogram, outlierChannels, outlierThreshold, quartiles, sqnr} (views of `s`)
val layerStatsValue(const stats::LayerStats& s);
// {count, axis, groups, perGroup, absMax, relativeAbsMax, outliers, threshold, quartiles}
// (views of `s`): the per-input-channel absMax and its outliers.
val inputChannelsValue(const stats::InputChannelStats& s);
// A layer's analysis: its statistics, `quant` and `inputChannels` (views of `a`).
val analysisValue(const analysis::LayerAnalysis& a);

// One layer in parts (analysis/analyze.hpp, LayerAnalyzer): what crosses between the
// workers that compute the parts, exactly (every value keeps its bits).
// A part's pass-1 extremes: a Float64Array [firstChannel, endChannel, min, max, nonFinite]
// (a copy; min and max are float32 values, so a double holds them exactly).
val extremesValue(const stats::PassExtremes& x);
// Back from JS: InvalidArgument unless it is such an array (whole numbers, float32 extremes).
Result<stats::PassExtremes> extremesFrom(const val& v);
// A part's results: {firstChannel, endChannel, tensorMin, tensorMax, layout: {outer, rows,
// channels, inner}, histogramBins, blockSize, min, max, sum, acc, blockNoise, histogram,
// inputAbsMax}, the arrays typed (Float32Array, Float64Array, Uint32Array as in the C++
// struct) and views of `p`.
val partValue(const analysis::LayerAnalysisPart& p);
// Back from JS: InvalidArgument for anything malformed (a missing field, an array of
// another type, or one longer than `maxLength`: none is copied past that bound, so a
// wrong length is an error, never an allocation the heap cannot hold). The core checks
// the rest (sizes, channel cover, layout and options: LayerAnalyzer::mergeParts).
Result<analysis::LayerAnalysisPart> partFrom(const val& v, uint64_t maxLength);

}  // namespace ql::bindings
