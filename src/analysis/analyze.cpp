#include "analysis/analyze.hpp"

#include <algorithm>
#include <cmath>
#include <cstring>
#include <numeric>

#include "common/bytes.hpp"

namespace ql::analysis {

namespace {

Result<std::vector<double>> params(const onnx::Tensor* t, const char* what, uint64_t axisLen, const graph::Layer& L) {
  if (!t) return std::vector<double>{};
  auto v = onnx::readAsDouble(*t);
  if (!v.ok()) return v.error();
  if (v->size() != 1 && v->size() != axisLen) {
    return makeError(ErrorCode::InvalidModel,
                     "layer '" + L.name + "': " + what + " '" + std::string(t->name) + "' has " + std::to_string(v->size()) +
                         " values, expected 1 or " + std::to_string(axisLen) +
                         (L.quant.via == "DequantizeLinear" && v->size() > axisLen
                              ? " (parameters per block need DequantizeLinear's block_size attribute, opset 21)"
                              : ""),
                     static_cast<int64_t>(t->offset));
  }
  return v;
}

Error withLayer(const graph::Layer& L, Error e) {
  e.message = "layer '" + L.name + "': " + e.message;
  return e;
}

bool isFloat8(int32_t t) {
  return t == onnx::kFloat8E4M3FN || t == onnx::kFloat8E4M3FNUZ || t == onnx::kFloat8E5M2 || t == onnx::kFloat8E5M2FNUZ;
}

// DequantizeLinear on float8 (opset 19+): the zero point, of the weight's float8 type,
// must be 0 (y = x * scale).
Error checkFloat8ZeroPoint(const graph::Layer& L, const QuantInfo& q) {
  if (!isFloat8(L.weight->dataType)) return Error{};
  for (double z : q.zeroPoint) {
    if (z != 0.0)
      return makeError(ErrorCode::InvalidModel,
                       "layer '" + L.name + "': the zero point of a " + onnx::dataTypeName(L.weight->dataType) +
                           " weight must be 0 (the ONNX spec's rule for float8 DequantizeLinear), but '" +
                           std::string(L.quant.zeroPoint ? L.quant.zeroPoint->name.substr(0, 200) : "") + "' holds " +
                           std::to_string(z),
                       L.quant.zeroPoint ? static_cast<int64_t>(L.quant.zeroPoint->offset) : -1);
  }
  return Error{};
}

// MatMulNBits: scales one per block; zero points packed uint8 or one float per block.
Result<Dequantizer> createPacked(const graph::Layer& L, Dequantizer d, QuantInfo* q, NBitsShape* shape) {
  auto s = makeNBitsShape(L.quant.K, L.quant.N, L.quant.bits, L.quant.blockSize);
  if (!s.ok()) return withLayer(L, s.error());
  *shape = s.value();
  q->via = std::string(L.quant.via);
  q->intType = L.quant.bits == 4 ? "uint4" : "uint8";
  q->axis = -1;
  q->bits = L.quant.bits;
  q->blockSize = L.quant.blockSize;
  const uint64_t blocks = shape->N * shape->blocksPerCol;
  auto sc = onnx::readAsDouble(*L.quant.scale);
  if (!sc.ok()) return withLayer(L, sc.error());
  if (sc->size() != blocks)
    return makeError(ErrorCode::InvalidModel,
                     "layer '" + L.name + "': scales '" + std::string(L.quant.scale->name) + "' hold " +
                         std::to_string(sc->size()) + " values, expected " + std::to_string(blocks) +
                         " (N * ceil(K / block_size))",
                     static_cast<int64_t>(L.quant.scale->offset));
  q->scale = std::move(sc.value());
  const double defaultZp = static_cast<double>(1u << (L.quant.bits - 1));
  if (!L.quant.zeroPoint) {
    q->zeroPoint = {defaultZp};
  } else {
    auto zp = onnx::readAsDouble(*L.quant.zeroPoint);
    if (!zp.ok()) return withLayer(L, zp.error());
    if (L.quant.zeroPoint->dataType == onnx::kUint8) {
      auto un = unpackNBitsZeroPoints(*shape, zp.value());
      if (!un.ok()) return withLayer(L, un.error());
      q->zeroPoint = std::move(un.value());
    } else if (zp->size() == blocks) {  // float zero points, the type of the scales
      q->zeroPoint = std::move(zp.value());
    } else {
      return makeError(ErrorCode::InvalidModel,
                       "layer '" + L.name + "': zero_points '" + std::string(L.quant.zeroPoint->name) + "' hold " +
                           std::to_string(zp->size()) + " values, expected " + std::to_string(blocks),
                       static_cast<int64_t>(L.quant.zeroPoint->offset));
    }
  }
  q->symmetric = std::all_of(q->zeroPoint.begin(), q->zeroPoint.end(), [&](double z) { return z == defaultZp; });
  return d;
}

}  // namespace

Result<Dequantizer> Dequantizer::create(const graph::Layer& L) {
  Dequantizer d;
  if (!L.quant.present) return d;
  if (L.quant.blockwise()) {
    d.info_.present = true;
    d.nbitsPacked_ = true;
    auto r = createPacked(L, Dequantizer{}, &d.info_, &d.nbits_);
    if (!r.ok()) return r.error();
    return d;
  }
  const onnx::Tensor& w = *L.weight;
  // The weight's shape as the layer reads it (GatherBlockQuantized's uint8 table of packed
  // codes is twice as wide as stored); the stored one when a caller left it unset.
  const std::vector<int64_t>& dims = L.shape.empty() ? w.dims : L.shape;
  QuantInfo& q = d.info_;
  q.present = true;
  q.via = std::string(L.quant.via);
  q.scaleVia = std::string(L.quant.scaleVia);
  q.note = L.quant.note;
  q.intType = onnx::dataTypeName(L.quant.storedAs ? L.quant.storedAs : w.dataType);
  q.axis = L.quant.axis;
  if (q.axis >= static_cast<int>(dims.size())) {
    return makeError(ErrorCode::InvalidModel, "layer '" + L.name + "': quantization axis " + std::to_string(q.axis) +
                                                  " is out of range for a weight of rank " + std::to_string(dims.size()));
  }
  d.axisLen_ = q.axis >= 0 ? static_cast<uint64_t>(dims[q.axis]) : 1;
  if (q.axis >= 0) {
    for (size_t i = static_cast<size_t>(q.axis) + 1; i < dims.size(); ++i) d.inner_ *= static_cast<uint64_t>(dims[i]);
  }
  if (L.quant.dqBlockSize != 0) return createBlocked(L, std::move(d));
  auto sc = params(L.quant.scale, "scale", d.axisLen_, L);
  if (!sc.ok()) return sc.error();
  auto zp = params(L.quant.zeroPoint, "zero point", d.axisLen_, L);
  if (!zp.ok()) return zp.error();
  // Absent parameters take their defaults (scale 1 for ConvInteger/MatMulInteger,
  // zero point 0), and are reported as such.
  q.scale = sc->empty() ? std::vector<double>{1.0} : sc.value();
  q.zeroPoint = zp->empty() ? std::vector<double>{0.0} : zp.value();
  if (Error e = checkFloat8ZeroPoint(L, q); !e.ok()) return e;
  return d;
}

Result<Dequantizer> Dequantizer::createBlocked(const graph::Layer& L, Dequantizer d) {
  const onnx::Tensor& w = *L.weight;
  const std::vector<int64_t>& dims = L.shape.empty() ? w.dims : L.shape;
  QuantInfo& q = d.info_;
  const int64_t bs = L.quant.dqBlockSize;
  auto fail = [&](const std::string& why, const onnx::Tensor* t = nullptr) {
    return makeError(ErrorCode::InvalidModel, "layer '" + L.name + "': DequantizeLinear " + why,
                     t ? static_cast<int64_t>(t->offset) : -1);
  };
  if (bs < 0)
    return fail("block_size " + std::to_string(bs) +
                " is negative: it must be 0 (per-tensor or per-axis parameters) or the number of elements per block");
  if (q.axis < 0) return fail("has a block_size but no valid axis");
  d.blockSize_ = static_cast<uint64_t>(bs);
  d.blocks_ = d.axisLen_ / d.blockSize_ + (d.axisLen_ % d.blockSize_ ? 1 : 0);
  // The parameters have the weight's shape with dims[axis] = ceil(dims[axis] / block_size).
  std::vector<int64_t> want = dims;
  want[static_cast<size_t>(q.axis)] = static_cast<int64_t>(d.blocks_);
  auto shapeText = [](const std::vector<int64_t>& v) {
    std::string s = "[";
    for (size_t i = 0; i < v.size(); ++i) s += (i ? ", " : "") + std::to_string(v[i]);
    return s + "]";
  };
  auto read = [&](const onnx::Tensor* t, const char* what, std::vector<double>* out) -> Error {
    if (t->dims != want)
      return fail(std::string(what) + " '" + std::string(t->name.substr(0, 200)) + "' has shape " + shapeText(t->dims) +
                      ", but block_size " + std::to_string(bs) + " on axis " + std::to_string(q.axis) + " of a weight of shape " +
                      shapeText(dims) + " needs " + shapeText(want) + " (the weight's shape with that axis divided into ceil(" +
                      std::to_string(d.axisLen_) + " / " + std::to_string(bs) + ") = " + std::to_string(d.blocks_) + " blocks)",
                  t);
    auto v = onnx::readAsDouble(*t);
    if (!v.ok()) return withLayer(L, v.error());
    *out = std::move(v.value());
    return Error{};
  };
  if (Error e = read(L.quant.scale, "scale", &q.scale); !e.ok()) return e;
  if (L.quant.zeroPoint) {
    if (Error e = read(L.quant.zeroPoint, "zero point", &q.zeroPoint); !e.ok()) return e;
  } else {
    q.zeroPoint = {L.quant.defaultZeroPoint};
  }
  if (Error e = checkFloat8ZeroPoint(L, q); !e.ok()) return e;
  q.blockSize = bs;
  const int32_t type = L.quant.storedAs ? L.quant.storedAs : w.dataType;
  q.bits = onnx::isPacked4(type) ? 4 : static_cast<int>(8 * onnx::dataTypeSize(type));
  const bool unsignedCodes = type == onnx::kUint4 || type == onnx::kUint8 || type == onnx::kUint16;
  const double centre = unsignedCodes ? static_cast<double>(uint64_t{1} << (q.bits - 1)) : 0.0;
  q.symmetric = std::all_of(q.zeroPoint.begin(), q.zeroPoint.end(), [&](double z) { return z == centre; });
  return d;
}

void Dequantizer::apply(const float* stored, uint64_t first, uint64_t count, float* out) const {
  if (!info_.present) {
    if (out != stored) std::memmove(out, stored, count * sizeof(float));
    return;
  }
  // y = (x - zero_point) * scale, as DequantizeLinear defines it, per element.
  const QuantInfo& q = info_;
  if (blockSize_ > 0) {  // the parameters of element (outer, a, in) are at (outer, a / block_size, in)
    const bool oneZp = q.zeroPoint.size() == 1;
    for (uint64_t i = 0; i < count; ++i) {
      const uint64_t e = first + i, in = e % inner_, a = (e / inner_) % axisLen_, outer = e / inner_ / axisLen_;
      const uint64_t k = (outer * blocks_ + a / blockSize_) * inner_ + in;
      out[i] = (stored[i] - static_cast<float>(oneZp ? q.zeroPoint[0] : q.zeroPoint[k])) * static_cast<float>(q.scale[k]);
    }
    return;
  }
  for (uint64_t i = 0; i < count; ++i) {
    const uint64_t k = q.axis >= 0 ? ((first + i) / inner_) % axisLen_ : 0;
    const float s = static_cast<float>(q.scale.size() == 1 ? q.scale[0] : q.scale[k]);
    const float z = static_cast<float>(q.zeroPoint.size() == 1 ? q.zeroPoint[0] : q.zeroPoint[k]);
    out[i] = (stored[i] - z) * s;
  }
}

Error Dequantizer::applyPacked(wire::Bytes stored, uint64_t firstByte, float* out) const {
  const uint64_t cb = nbits_.columnBytes();
  if (cb == 0 || firstByte % cb || stored.size % cb)
    return makeError(ErrorCode::InvalidArgument, "a piece of a MatMulNBits weight must hold whole columns");
  const std::vector<double> none;
  return dequantizeNBitsColumns(nbits_, stored.data, stored.size, firstByte / cb, stored.size / cb, info_.scale,
                                info_.zeroPoint.size() == 1 && nbits_.N * nbits_.blocksPerCol != 1 ? none : info_.zeroPoint, out);
}

namespace {

// A packed weight's stored bytes (raw data, external bytes, or int32_data converted),
// checked against the size its attributes give.
Result<std::vector<uint8_t>> packedBytes(const graph::Layer& L, wire::Bytes weightExternal, uint64_t expected) {
  const onnx::Tensor& w = *L.weight;
  auto values = onnx::readAsFloat(w, weightExternal);
  if (!values.ok()) return values.error();
  if (values->count != expected)
    return makeError(ErrorCode::InvalidModel, "layer '" + L.name + "': " + (L.quant.storedAs ? "data" : "B") + " holds " +
                                                  std::to_string(values->count) + " bytes, expected " + std::to_string(expected));
  std::vector<uint8_t> bytes(values->count);
  const float* f = reinterpret_cast<const float*>(values->bytes);
  for (uint64_t i = 0; i < values->count; ++i) bytes[i] = static_cast<uint8_t>(f[i]);
  return bytes;
}

}  // namespace

Result<std::vector<float>> layerWeightValues(const graph::Layer& L, wire::Bytes weightExternal, QuantInfo* quant) {
  const onnx::Tensor& w = *L.weight;
  if (L.quant.blockwise()) {
    auto dq = Dequantizer::create(L);
    if (!dq.ok()) return dq.error();
    auto bytes = packedBytes(L, weightExternal, dq->columnBytes() * L.layout.channelCount());
    if (!bytes.ok()) return bytes.error();
    std::vector<float> v(L.layout.elementCount());
    Error e = dq->applyPacked(wire::Bytes{bytes->data(), bytes->size()}, 0, v.data());
    if (!e.ok()) return withLayer(L, e);
    if (quant) *quant = dq->info();
    return v;
  }
  if (L.quant.storedAs) {  // uint8 bytes holding two 4-bit codes each (GatherBlockQuantized bits = 4)
    auto dq = Dequantizer::create(L);
    if (!dq.ok()) return dq.error();
    const uint64_t n = L.layout.elementCount();
    auto bytes = packedBytes(L, weightExternal, onnx::storedByteSize(L.quant.storedAs, n));
    if (!bytes.ok()) return bytes.error();
    std::vector<float> v(n);
    onnx::convertRaw(L.quant.storedAs, bytes->data(), n, v.data());
    dq->apply(v.data(), 0, n, v.data());
    if (quant) *quant = dq->info();
    return v;
  }
  auto values = onnx::readAsFloat(w, weightExternal);
  if (!values.ok()) return values.error();
  if (values->count != L.layout.elementCount()) {
    return makeError(ErrorCode::InvalidModel, "layer '" + L.name + "': weight of " + std::to_string(values->count) +
                                                  " values does not match its layout (" +
                                                  std::to_string(L.layout.elementCount()) + ")");
  }
  auto dq = Dequantizer::create(L);
  if (!dq.ok()) return dq.error();
  std::vector<float> v = values->take();
  dq->apply(v.data(), 0, v.size(), v.data());
  if (quant) *quant = dq->info();
  return v;
}

stats::InputChannelShape inputChannelShape(const graph::Layer& L) {
  stats::InputChannelShape s;
  s.dims = L.shape;
  s.axis = L.inputAxis;
  s.outputAxis = L.channelAxis;
  // Conv's grouped filters [O, I/g, k...] hold I/g of the I input channels each; a
  // grouped ConvTranspose's input axis is all of I.
  s.groups = L.spec && L.spec->family == graph::OpFamily::Conv ? L.groups : 1;
  return s;
}

Result<LayerAnalyzer> LayerAnalyzer::create(const graph::Layer& L, const stats::Options& options, uint64_t availableBytes) {
  return make(L, options, availableBytes, nullptr);
}

Error LayerAnalyzer::checkSplittable(const graph::Layer& L) {
  const int32_t type = L.weight->dataType;
  if (L.quant.present || L.quant.storedAs || (type != onnx::kFloat && type != onnx::kFloat16 && type != onnx::kBFloat16))
    return withLayer(L, makeError(ErrorCode::Unsupported,
                                  "only weights stored as float32, float16 or bfloat16 and not quantized are analysed in parts"));
  Error e = stats::checkSplittable(L.layout);
  return e.ok() ? e : withLayer(L, e);
}

Result<std::vector<ChannelPart>> LayerAnalyzer::splitLayer(const graph::Layer& L, uint64_t parts) {
  if (Error e = checkSplittable(L); !e.ok()) return e;
  const uint64_t bytesPerChannel = L.layout.inner * onnx::dataTypeSize(L.weight->dataType);  // rows == 1
  const std::vector<uint64_t> cuts = stats::splitChannels(L.layout.channelCount(), parts);
  std::vector<ChannelPart> out;
  for (size_t i = 0; i + 1 < cuts.size(); ++i)
    out.push_back({cuts[i], cuts[i + 1], cuts[i] * bytesPerChannel, (cuts[i + 1] - cuts[i]) * bytesPerChannel});
  return out;
}

Result<LayerAnalyzer> LayerAnalyzer::createPart(const graph::Layer& L, const stats::Options& options, uint64_t availableBytes,
                                                uint64_t firstChannel, uint64_t endChannel) {
  if (Error e = checkSplittable(L); !e.ok()) return e;
  const uint64_t channels[2] = {firstChannel, endChannel};
  return make(L, options, availableBytes, channels);
}

Result<LayerAnalyzer> LayerAnalyzer::make(const graph::Layer& L, const stats::Options& options, uint64_t availableBytes,
                                          const uint64_t* channels) {
  LayerAnalyzer a;
  a.layer_ = &L;
  const onnx::Tensor& w = *L.weight;
  a.dataType_ = L.quant.storedAs ? L.quant.storedAs : w.dataType;  // the elements the stored bytes hold
  a.elemSize_ = onnx::dataTypeSize(a.dataType_);
  a.nibbles_ = onnx::isPacked4(a.dataType_);
  if (!onnx::isReadableType(w.dataType) || (a.elemSize_ == 0 && !a.nibbles_)) {
    return makeError(
        ErrorCode::UnsupportedDtype,
        "tensor '" + std::string(w.name) + "' has type " + onnx::dataTypeName(w.dataType) + ", which QuantLens does not read",
        static_cast<int64_t>(w.offset));
  }
  if (L.quant.blockwise()) {  // MatMulNBits: stored bytes are packed codes, fed whole columns at a time
    auto dq = Dequantizer::create(L);
    if (!dq.ok()) return dq.error();
    a.dequant_ = std::move(dq.value());
    a.out_.quant = a.dequant_.info();
    uint64_t stored = 0;
    if (!w.elementCount(&stored) || stored != a.dequant_.columnBytes() * L.layout.channelCount() || stored > availableBytes)
      return makeError(ErrorCode::InvalidModel, "layer '" + L.name + "': B of " + std::to_string(stored) +
                                                    " bytes does not match N * ceil(K / block_size) * block_size * bits / 8 = " +
                                                    std::to_string(a.dequant_.columnBytes() * L.layout.channelCount()) +
                                                    " or the " + std::to_string(availableBytes) + " bytes available");
    auto b = stats::LayerStatsBuilder::create(L.layout, options);
    if (!b.ok()) return withLayer(L, b.error());
    a.builder_ = std::move(b.value());
    auto in = stats::InputChannelAbsMax::create(inputChannelShape(L));
    if (!in.ok()) return withLayer(L, in.error());
    a.inputs_ = std::move(in.value());
    a.codes_.start(w.dataType, L.quant.bits, L.layout);
    return a;
  }
  uint64_t count = 0;
  bool counted = w.elementCount(&count);
  if (counted && L.quant.storedAs) {  // uint8 bytes of packed codes: count bytes hold the layout's elements
    counted = count == onnx::storedByteSize(a.dataType_, L.layout.elementCount());
    count = L.layout.elementCount();
  }
  if (!counted || count != L.layout.elementCount() ||
      (a.nibbles_ ? onnx::storedByteSize(a.dataType_, count) > availableBytes : count > availableBytes / a.elemSize_)) {
    return makeError(ErrorCode::InvalidModel, "layer '" + L.name + "': weight of " + std::to_string(count) +
                                                  " values does not match its layout (" +
                                                  std::to_string(L.layout.elementCount()) + ") or the " +
                                                  std::to_string(availableBytes) + " bytes available");
  }
  auto dq = Dequantizer::create(L);
  if (!dq.ok()) return dq.error();
  a.dequant_ = std::move(dq.value());
  a.out_.quant = a.dequant_.info();
  auto b = channels ? stats::LayerStatsBuilder::createPart(L.layout, options, channels[0], channels[1])
                    : stats::LayerStatsBuilder::create(L.layout, options);
  if (!b.ok()) return withLayer(L, b.error());
  a.builder_ = std::move(b.value());
  auto in = stats::InputChannelAbsMax::create(inputChannelShape(L));
  if (!in.ok()) return withLayer(L, in.error());
  a.inputs_ = std::move(in.value());
  if (a.out_.quant.present) a.codes_.start(a.dataType_, 0, L.layout);
  return a;
}

int LayerAnalyzer::passes() const { return builder_.passes(); }
uint64_t LayerAnalyzer::unitBytes() const {
  if (dequant_.packed()) {  // whole columns, as many as make whole units of the statistics
    const uint64_t per = dequant_.columnElements(), unit = builder_.unitElements();
    const uint64_t cols = unit % per == 0 ? unit / per : (per % unit == 0 ? 1 : unit);
    return cols * dequant_.columnBytes();
  }
  if (nibbles_) {  // an even number of elements, so that every piece starts on a byte
    const uint64_t unit = builder_.unitElements();
    return unit % 2 ? unit : unit / 2;
  }
  return builder_.unitElements() * elemSize_;
}
uint64_t LayerAnalyzer::firstByte() const { return builder_.firstElement() * elemSize_; }  // parts: neither packed nor nibbles
uint64_t LayerAnalyzer::byteSize() const {
  if (dequant_.packed()) return builder_.elementCount() / dequant_.columnElements() * dequant_.columnBytes();
  if (nibbles_) return onnx::storedByteSize(dataType_, builder_.elementCount());
  return builder_.elementCount() * elemSize_;
}

Error LayerAnalyzer::feedFloats(int pass, const float* values, uint64_t first, uint64_t count) {
  const uint8_t* bytes = reinterpret_cast<const uint8_t*>(values);
  if (pass == 1) codes_.add(values, first, count);  // the stored codes, before dequantization
  if (dequant_.active()) {
    scratch_.resize(count);
    dequant_.apply(values, first, count, scratch_.data());
    bytes = reinterpret_cast<const uint8_t*>(scratch_.data());
  }
  return feedValues(pass, bytes, first, count);
}

// The statistics, and in pass 1 the input channels, once the statistics have checked the range.
Error LayerAnalyzer::feedValues(int pass, const uint8_t* values, uint64_t first, uint64_t count, stats::Storage storage) {
  Error e = builder_.feed(pass, values, first, count, storage);
  if (!e.ok()) return withLayer(*layer_, e);
  if (pass == 1) inputs_.feed(values, first, count, storage);
  return e;
}

Error LayerAnalyzer::feed(int pass, wire::Bytes stored, uint64_t firstByte) {
  if (dequant_.packed()) {
    const uint64_t cb = dequant_.columnBytes(), K = dequant_.columnElements();
    if (cb == 0 || firstByte % cb || stored.size % cb)
      return withLayer(*layer_, makeError(ErrorCode::InvalidArgument, "a piece of a MatMulNBits weight must hold whole columns"));
    scratch_.resize(stored.size / cb * K);
    if (pass == 1 && codes_.active()) {  // the codes: K per column, low bits of a byte first
      const int bits = dequant_.info().bits;
      codeScratch_.resize(stored.size / cb * K);
      for (uint64_t c = 0; c < stored.size / cb; ++c) {
        const uint8_t* col = stored.data + c * cb;
        for (uint64_t k = 0; k < K; ++k)
          codeScratch_[c * K + k] = static_cast<float>(bits == 8 ? col[k] : (col[k / 2] >> ((k % 2) * 4)) & 15);
      }
      codes_.addChannels(codeScratch_.data(), firstByte / cb, stored.size / cb, K);
    }
    Error e = dequant_.applyPacked(stored, firstByte, scratch_.data());
    if (!e.ok()) return withLayer(*layer_, e);
    return feedValues(pass, reinterpret_cast<const uint8_t*>(scratch_.data()), firstByte / cb * K, stored.size / cb * K);
  }
  if (nibbles_) {  // bytes [firstByte, ...) hold elements 2 * firstByte, ...; the last byte's high nibble may be padding
    const uint64_t total = builder_.elementCount(), first = 2 * firstByte;
    if (firstByte > total || first > total)
      return withLayer(*layer_, makeError(ErrorCode::InvalidArgument, "a piece of the weight lies beyond its elements"));
    const uint64_t count = std::min<uint64_t>(2 * stored.size, total - first);
    converted_.resize(count);
    onnx::convertRaw(dataType_, stored.data, count, converted_.data());
    return feedFloats(pass, converted_.data(), first, count);
  }
  if (firstByte % elemSize_ || stored.size % elemSize_) {
    return withLayer(*layer_, makeError(ErrorCode::InvalidArgument, "a piece of the weight must hold whole elements"));
  }
  const uint64_t first = firstByte / elemSize_, count = stored.size / elemSize_;
  if (!out_.quant.present) {  // zero copy: the statistics read the stored bytes (float16 and bfloat16 converted as read)
    if (dataType_ == onnx::kFloat) return feedValues(pass, stored.data, first, count);
    if (dataType_ == onnx::kFloat16) return feedValues(pass, stored.data, first, count, stats::Storage::Float16);
    if (dataType_ == onnx::kBFloat16) return feedValues(pass, stored.data, first, count, stats::Storage::BFloat16);
  }
  converted_.resize(count);
  onnx::convertRaw(dataType_, stored.data, count, converted_.data());
  return feedFloats(pass, converted_.data(), first, count);
}

Error LayerAnalyzer::endPass(int pass, const stats::PassExtremes* whole) {
  Error e = builder_.endPass(pass, whole);
  return e.ok() ? e : withLayer(*layer_, e);
}

Result<stats::PassExtremes> LayerAnalyzer::extremes() const {
  auto x = builder_.extremes();
  if (!x.ok()) return withLayer(*layer_, x.error());
  return x;
}

Result<LayerAnalysisPart> LayerAnalyzer::takePart() {
  auto s = builder_.takePart();
  if (!s.ok()) return withLayer(*layer_, s.error());
  LayerAnalysisPart p;
  p.stats = std::move(s.value());
  p.inputAbsMax = inputs_.absMax();
  return p;
}

Result<LayerAnalysis> LayerAnalyzer::mergeParts(const graph::Layer& L, const stats::Options& options,
                                                std::vector<LayerAnalysisPart> parts) {
  if (Error e = checkSplittable(L); !e.ok()) return e;
  auto in = stats::InputChannelAbsMax::create(inputChannelShape(L));
  if (!in.ok()) return withLayer(L, in.error());
  std::vector<stats::LayerStatsPart> statsParts;
  for (LayerAnalysisPart& p : parts) {
    if (Error e = in->mergeMax(p.inputAbsMax); !e.ok()) return withLayer(L, e);
    statsParts.push_back(std::move(p.stats));
  }
  auto s = stats::LayerStatsBuilder::mergeParts(L.layout, options, std::move(statsParts));
  if (!s.ok()) return withLayer(L, s.error());
  LayerAnalysis out;  // not quantized: no QuantInfo, no stored codes (checkSplittable)
  out.stats = std::move(s.value());
  out.inputs = in->finish();
  return out;
}

namespace {

// The output channel of each zero point of a blocked DequantizeLinear (zero points shaped
// like the weight with dims[axis] = ceil(dims[axis] / block_size)): its index on the
// layer's channel axis. kNoChannel for all of them where a zero point is not within one
// channel (blocks along the channel axis, or a layout whose channels span two axes), or
// where the file has one zero point (the default 0, checked against the tensor's codes).
std::vector<uint64_t> blockZeroPointChannels(const graph::Layer& L, const QuantInfo& q) {
  constexpr uint64_t kNone = StoredCodeCounter::kNoChannel;
  const auto& dims = L.weight->dims;
  const int rank = static_cast<int>(dims.size());
  std::vector<uint64_t> none(q.zeroPoint.size(), kNone);
  if (q.zeroPoint.size() <= 1) return {};
  if (q.axis < 0 || q.axis >= rank || q.axis == L.channelAxis || L.channelAxis < 0 || L.channelAxis >= rank ||
      L.layout.outer != 1 || static_cast<uint64_t>(dims[L.channelAxis]) != L.layout.channels)
    return none;
  uint64_t stride = 1, total = 1;  // of the channel axis in the zero points' shape
  for (int d = rank - 1; d >= 0; --d) {
    const uint64_t n = d == q.axis ? (static_cast<uint64_t>(dims[d]) + static_cast<uint64_t>(q.blockSize) - 1) /
                                         static_cast<uint64_t>(q.blockSize)
                                   : static_cast<uint64_t>(dims[d]);
    if (d > L.channelAxis) stride *= n;
    total *= n;
  }
  if (total != q.zeroPoint.size()) return none;
  std::vector<uint64_t> channelOf(total);
  for (uint64_t i = 0; i < total; ++i) channelOf[i] = (i / stride) % L.layout.channels;
  return channelOf;
}

}  // namespace

Result<LayerAnalysis> LayerAnalyzer::finish() {
  auto s = builder_.finish();
  if (!s.ok()) return withLayer(*layer_, s.error());
  out_.stats = std::move(s.value());
  out_.inputs = inputs_.finish();
  if (codes_.active()) {
    const QuantInfo& q = out_.quant;
    const uint64_t channels = layer_->layout.channelCount();
    constexpr uint64_t kNone = StoredCodeCounter::kNoChannel;
    if (dequant_.packed()) {  // MatMulNBits: zero points per block of a column, in column order
      const uint64_t blocks =
          (dequant_.columnElements() + static_cast<uint64_t>(q.blockSize) - 1) / static_cast<uint64_t>(q.blockSize);
      std::vector<uint64_t> channelOf(q.zeroPoint.size() > 1 ? q.zeroPoint.size() : 0);  // one: the tensor's
      for (size_t i = 0; i < channelOf.size(); ++i) channelOf[i] = i / blocks;
      out_.stored = codes_.finish(q.zeroPoint, "per-block", channelOf);
    } else if (q.blockSize > 0) {  // blocked DequantizeLinear: zero points shaped like the weight, blocks along `axis`
      out_.stored = codes_.finish(q.zeroPoint, "per-block", blockZeroPointChannels(*layer_, q));
    } else {
      const bool perAxis = q.scale.size() > 1 || q.zeroPoint.size() > 1;
      const bool alongChannels =
          !perAxis || (q.axis == layer_->channelAxis && (q.zeroPoint.size() == 1 || q.zeroPoint.size() == channels));
      out_.stored = codes_.finish(q.zeroPoint,
                                  !perAxis        ? "per-tensor"
                                  : alongChannels ? "per-channel"
                                                  : "per-axis",
                                  alongChannels ? std::vector<uint64_t>{} : std::vector<uint64_t>(q.zeroPoint.size(), kNone));
    }
  }
  return std::move(out_);
}

Result<LayerAnalysis> analyzeLayer(const graph::Layer& L, wire::Bytes weightExternal, const stats::Options& options) {
  const onnx::Tensor& w = *L.weight;
  if (L.quant.blockwise()) {
    uint64_t stored = 0;
    if (!w.elementCount(&stored)) return makeError(ErrorCode::InvalidModel, "layer '" + L.name + "': B has an invalid shape");
    auto bytes = packedBytes(L, weightExternal, stored);
    if (!bytes.ok()) return bytes.error();
    auto a = LayerAnalyzer::create(L, options, bytes->size());
    if (!a.ok()) return a.error();
    for (int pass = 1; pass <= a->passes(); ++pass) {
      Error e = a->feed(pass, wire::Bytes{bytes->data(), bytes->size()}, 0);
      if (e.ok()) e = a->endPass(pass);
      if (!e.ok()) return e;
    }
    return a->finish();
  }
  if (L.quant.storedAs) {  // uint8 bytes holding two 4-bit codes each: fed as stored bytes
    uint64_t stored = 0;
    if (!w.elementCount(&stored)) return makeError(ErrorCode::InvalidModel, "layer '" + L.name + "': data has an invalid shape");
    auto bytes = packedBytes(L, weightExternal, stored);
    if (!bytes.ok()) return bytes.error();
    auto a = LayerAnalyzer::create(L, options, bytes->size());
    if (!a.ok()) return a.error();
    for (int pass = 1; pass <= a->passes(); ++pass) {
      Error e = a->feed(pass, wire::Bytes{bytes->data(), bytes->size()}, 0);
      if (e.ok()) e = a->endPass(pass);
      if (!e.ok()) return e;
    }
    return a->finish();
  }
  // readAsFloat validates the bytes against the shape before anything is sized by it;
  // float32 raw data comes back as a view, typed fields and other types converted once.
  auto values = onnx::readAsFloat(w, weightExternal);
  if (!values.ok()) return values.error();
  auto a = LayerAnalyzer::create(L, options, onnx::storedByteSize(w.dataType, values->count));
  if (!a.ok()) return a.error();
  LayerAnalyzer& an = a.value();
  const bool raw = values->isView();
  const wire::Bytes stored = w.external ? weightExternal : w.rawData;
  for (int pass = 1; pass <= an.passes(); ++pass) {
    Error e =
        raw ? an.feed(pass, stored, 0) : an.feedFloats(pass, reinterpret_cast<const float*>(values->bytes), 0, values->count);
    if (e.ok()) e = an.endPass(pass);
    if (!e.ok()) return e;
  }
  return an.finish();
}

namespace {

template <class F>
void forEachTensor(onnx::Graph& g, F& fn);

template <class F>
void forEachTensorIn(std::vector<onnx::Node>& nodes, F& fn) {
  for (auto& n : nodes) {
    for (auto& a : n.attributes) {
      if (a.t) fn(*a.t);
      for (auto& t : a.tensors) fn(t);
      if (a.g) forEachTensor(*a.g, fn);
      for (auto& sg : a.graphs) forEachTensor(sg, fn);
    }
  }
}

template <class F>
void forEachTensor(onnx::Graph& g, F& fn) {
  for (auto& t : g.initializers) fn(t);
  forEachTensorIn(g.nodes, fn);
}

}  // namespace

Error settleSkim(onnx::ByteReader& in, uint8_t* image, onnx::Skim* skim, onnx::Model* model, const graph::Discovery& layers) {
  if (skim->skipped.empty()) return Error{};
  // Payload offsets of the weights to stream.
  std::vector<uint64_t> streamed;
  for (const auto& L : layers.layers) {
    const onnx::Tensor& w = *L.weight;
    if (!w.hasRawData || w.external || w.rawData.size == 0) continue;
    const uint64_t off = offsetIn(image, w.rawData.data);
    if (skim->skippedRange(off, w.rawData.size)) streamed.push_back(off);
  }
  std::sort(streamed.begin(), streamed.end());
  std::vector<onnx::SkippedPayload> keep;
  for (const auto& p : skim->skipped) {
    if (std::binary_search(streamed.begin(), streamed.end(), p.offset) || p.length >= kSettleReadBelow) {
      keep.push_back(p);
      continue;
    }
    if (!in.read(p.offset, image + p.offset, p.length))
      return makeError(ErrorCode::InvalidModel, "the file could not be read at byte " + std::to_string(p.offset),
                       static_cast<int64_t>(p.offset));
    skim->bytesRead += p.length;
  }
  skim->skipped = std::move(keep);
  markDeferred(image, *skim, model);
  return Error{};
}

// A tensor whose values are one packed float_data or double_data field that the skim left
// unread (it leaves only such a field unread, of a type the field holds: onnx/skim.cpp) is
// given that payload as its raw data: the same little-endian float32 or float64 values,
// back to back, so it is streamed and read as raw data is. `typedField` says no more then.
namespace {
void adoptTypedPayload(const uint8_t* image, const onnx::Skim& skim, onnx::Tensor& t) {
  namespace TensorProto = onnx::fields::TensorProto;
  if (t.hasRawData || t.external || t.typedCount == 0) return;
  if (t.typedField != TensorProto::kFloatData && t.typedField != TensorProto::kDoubleData) return;
  const uint64_t begin = offsetIn(image, t.message.data), end = begin + t.message.size;
  auto it = std::upper_bound(skim.skipped.begin(), skim.skipped.end(), end,
                             [](uint64_t off, const onnx::SkippedPayload& p) { return off < p.offset; });
  if (it == skim.skipped.begin()) return;
  --it;
  const uint64_t elem = t.typedField == TensorProto::kFloatData ? 4 : 8;
  if (it->offset < begin || it->offset + it->length > end || it->length != t.typedCount * elem) return;
  t.hasRawData = true;
  t.rawData = wire::Bytes{image + it->offset, static_cast<size_t>(it->length)};
  t.typedField = 0;
  t.typedCount = 0;
}
}  // namespace

void markDeferred(const uint8_t* image, const onnx::Skim& skim, onnx::Model* model) {
  // Every tensor whose raw_data is still unread is deferred, whoever refers to it.
  auto mark = [&](onnx::Tensor& t) {
    adoptTypedPayload(image, skim, t);
    if (!t.hasRawData || t.external || t.rawData.size == 0) return;
    t.deferred = skim.skippedRange(offsetIn(image, t.rawData.data), t.rawData.size);
  };
  forEachTensor(model->graph, mark);
  for (auto& f : model->functions) forEachTensorIn(f.nodes, mark);
}

std::vector<size_t> rankByRisk(const std::vector<double>& sqnr) {
  std::vector<size_t> idx(sqnr.size());
  std::iota(idx.begin(), idx.end(), 0);
  std::stable_sort(idx.begin(), idx.end(), [&](size_t a, size_t b) {
    const bool fa = std::isnan(sqnr[a]), fb = std::isnan(sqnr[b]);
    if (fa || fb) return !fa && fb;
    return sqnr[a] < sqnr[b];
  });
  return idx;
}

}  // namespace ql::analysis
