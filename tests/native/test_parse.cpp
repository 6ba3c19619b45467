// ModelProto decoding: exact field values from hand-built bytes, packed and
// unpacked repeated fields, every typed storage read back, zero-copy views,
// external data, Constant tensors, sub-graphs, unknown fields, unsupported types.
#include <algorithm>
#include <catch2/catch.hpp>
#include <cmath>
#include <cstring>
#include <limits>
#include <string>
#include <vector>

#include "onnx/model.hpp"
#include "onnx/tensor_data.hpp"
#include "pb_writer.hpp"

using ql::ErrorCode;
using namespace ql::onnx;
namespace pb = pbw::onnx;
using pbw::Msg;

namespace {

// Owns the bytes and the parsed model that borrows them.
struct Parsed {
  std::vector<uint8_t> bytes;
  ql::Result<Model> result;
  explicit Parsed(const Msg& m, const ParseOptions& o = {})
      : bytes(pb::toVec(m)), result(parseModel(bytes.data(), bytes.size(), o)) {}
  const Model& model() const { return result.value(); }
  bool inside(const void* p, size_t n = 0) const {
    const uint8_t* q = static_cast<const uint8_t*>(p);
    return q >= bytes.data() && q + n <= bytes.data() + bytes.size();
  }
};

// A model with one initializer tensor (and nothing else of interest).
Msg modelWithTensor(const Msg& t) {
  pb::GraphBuilder g;
  g.init(t);
  return pb::model(g.build());
}

const Tensor& onlyTensor(const Parsed& p) {
  REQUIRE(p.result.ok());
  REQUIRE(p.model().graph.initializers.size() == 1);
  return p.model().graph.initializers[0];
}

std::vector<float> floats(const FloatValues& v) {
  std::vector<float> out(v.count);
  for (uint64_t i = 0; i < v.count; ++i) out[i] = ql::wire::loadF32(v.bytes + 4 * i);
  return out;
}

uint32_t fbits(float f) {
  uint32_t u;
  std::memcpy(&u, &f, 4);
  return u;
}
float ffrom(uint32_t u) {
  float f;
  std::memcpy(&f, &u, 4);
  return f;
}

}  // namespace

TEST_CASE("parse: a hand-built model decodes with exact field values", "[parse]") {
  // value_info with a symbolic and a fixed dimension, plus a denotation
  Msg dimN, dimC, shp, tt, tp, vin;
  dimN.str(2, "N");
  dimC.i64(1, 3).str(3, "DATA_CHANNEL");
  shp.msg(1, dimN).msg(1, dimC);
  tt.i32(1, pb::kFloat).msg(2, shp);
  tp.msg(1, tt);
  vin.str(1, "x").msg(2, tp).str(3, "the input");

  Msg graph;
  graph
      .msg(1, pb::node("Conv", {"x", "W", ""}, {"y"}, "conv0",
                       {pb::attrInts("kernel_shape", {3, 3}), pb::attrInt("group", 1), pb::attrFloat("alpha", 0.25f),
                        pb::attrString("auto_pad", "SAME_UPPER"), pb::attrFloats("scales", {1.5f, -2.0f})},
                       "ai.onnx")
                  .str(6, "node doc"))
      .str(2, "main")
      .msg(5, pb::floatTensor("W", {2, 1, 1, 1}, {0.5f, -0.25f}))
      .str(10, "graph doc")
      .msg(11, vin)
      .msg(12, pb::valueInfo("y", pb::kFloat, {1, 2, 5, 5}))
      .msg(13, pb::valueInfo("mid", pb::kFloat16, {7}))
      .msg(14, Msg().str(1, "W"))
      .msg(15, Msg().u64(1, 1));
  Msg m;
  Msg os1, os2, meta;
  os1.str(1, "").i64(2, 17);
  os2.str(1, "com.microsoft").i64(2, 1);
  meta.str(1, "author").str(2, "me");
  m.i64(1, 9)
      .str(2, "qltest")
      .str(3, "1.2.3")
      .str(4, "org.example")
      .i64(5, 42)
      .str(6, "model doc")
      .msg(8, os1)
      .msg(8, os2)
      .msg(14, meta)
      .msg(7, graph)
      .msg(20, Msg().u64(1, 1))
      .msg(25, Msg()
                   .str(1, "MyFn")
                   .str(10, "custom")
                   .str(4, "a")
                   .str(5, "b")
                   .str(6, "attr1")
                   .msg(7, pb::node("Relu", {"a"}, {"b"}))
                   .msg(9, os1)
                   .str(8, "fn doc"));
  Parsed p(m);
  REQUIRE(p.result.ok());
  const Model& md = p.model();
  CHECK(md.irVersion == 9);
  CHECK(md.producerName == "qltest");
  CHECK(md.producerVersion == "1.2.3");
  CHECK(md.domain == "org.example");
  CHECK(md.modelVersion == 42);
  CHECK(md.docString == "model doc");
  REQUIRE(md.opsets.size() == 2);
  CHECK(md.opsets[0].domain.empty());
  CHECK(md.opsets[0].version == 17);
  CHECK(md.opsets[1].domain == "com.microsoft");
  CHECK(md.opsets[1].version == 1);
  REQUIRE(md.metadata.size() == 1);
  CHECK(md.metadata[0].first == "author");
  CHECK(md.metadata[0].second == "me");
  CHECK(md.trainingInfos == 1);
  CHECK(md.byteSize == p.bytes.size());
  REQUIRE(md.functions.size() == 1);
  const Function& fn = md.functions[0];
  CHECK(fn.name == "MyFn");
  CHECK(fn.domain == "custom");
  CHECK(fn.docString == "fn doc");
  CHECK(fn.inputs == std::vector<std::string_view>{"a"});
  CHECK(fn.outputs == std::vector<std::string_view>{"b"});
  CHECK(fn.attributes == std::vector<std::string_view>{"attr1"});
  REQUIRE(fn.nodes.size() == 1);
  CHECK(fn.nodes[0].opType == "Relu");
  REQUIRE(fn.opsets.size() == 1);
  CHECK(fn.opsets[0].version == 17);

  REQUIRE(md.hasGraph);
  const Graph& g = md.graph;
  CHECK(g.name == "main");
  CHECK(g.docString == "graph doc");
  CHECK(g.quantizationAnnotations == 1);
  CHECK(g.sparseInitializers.size() == 1);
  REQUIRE(g.nodes.size() == 1);
  const Node& n = g.nodes[0];
  CHECK(n.opType == "Conv");
  CHECK(n.name == "conv0");
  CHECK(n.domain == "ai.onnx");
  CHECK(n.docString == "node doc");
  CHECK(n.inputs == std::vector<std::string_view>{"x", "W", ""});
  CHECK(n.outputs == std::vector<std::string_view>{"y"});
  REQUIRE(n.attributes.size() == 5);
  CHECK(n.attribute("kernel_shape")->ints == std::vector<int64_t>{3, 3});
  CHECK(n.attribute("kernel_shape")->type == pb::kAttrInts);
  CHECK(n.intAttr("group", -1) == 1);
  CHECK(n.intAttr("missing", -7) == -7);
  CHECK(n.intAttr("alpha", -7) == -7);  // a float attribute has no int value
  CHECK(n.attribute("alpha")->hasF);
  CHECK(n.attribute("alpha")->f == 0.25f);
  CHECK(n.attribute("auto_pad")->hasS);
  CHECK(n.attribute("auto_pad")->s == "SAME_UPPER");
  CHECK(n.attribute("scales")->floats == std::vector<float>{1.5f, -2.0f});
  CHECK(n.attribute("nope") == nullptr);
  // node offset is the file offset of its payload
  CHECK(p.inside(p.bytes.data() + n.offset));
  CHECK(p.bytes[n.offset] == 0x0a);  // first field of the node: input (1, len)

  REQUIRE(g.initializers.size() == 1);
  const Tensor& w = g.initializers[0];
  CHECK(w.name == "W");
  CHECK(w.dims == std::vector<int64_t>{2, 1, 1, 1});
  CHECK(w.dataType == kFloat);
  CHECK(w.hasRawData);
  CHECK(w.rawData.size == 8);

  REQUIRE(g.inputs.size() == 1);
  const ValueInfo& x = g.inputs[0];
  CHECK(x.name == "x");
  CHECK(x.docString == "the input");
  CHECK(x.hasType);
  CHECK(x.typeCase == 1);
  CHECK(x.elemType == kFloat);
  CHECK(x.hasShape);
  REQUIRE(x.shape.size() == 2);
  CHECK_FALSE(x.shape[0].hasValue);
  CHECK(x.shape[0].param == "N");
  CHECK(x.shape[1].hasValue);
  CHECK(x.shape[1].value == 3);
  CHECK(x.shape[1].denotation == "DATA_CHANNEL");
  REQUIRE(g.outputs.size() == 1);
  CHECK(g.outputs[0].shape.size() == 4);
  CHECK(g.outputs[0].shape[3].value == 5);
  REQUIRE(g.valueInfo.size() == 1);
  CHECK(g.valueInfo[0].elemType == kFloat16);

  // Every string is a view into the input buffer.
  CHECK(p.inside(md.producerName.data(), md.producerName.size()));
  CHECK(p.inside(n.opType.data(), n.opType.size()));
  CHECK(p.inside(w.name.data(), w.name.size()));
  CHECK(p.inside(x.shape[0].param.data(), 1));
  CHECK(p.inside(w.message.data, w.message.size));
}

TEST_CASE("parse: dims, ints and floats decode the same packed or unpacked", "[parse][packed]") {
  const std::vector<int64_t> dims = {3, 1, 300, 2};
  const std::vector<int64_t> ints = {-1, 0, 1, std::numeric_limits<int64_t>::max(), std::numeric_limits<int64_t>::min(), 1 << 20};
  const std::vector<float> fl = {0.0f, -0.0f, 1e-30f, -3.5f, std::numeric_limits<float>::infinity()};
  for (int variant = 0; variant < 3; ++variant) {
    Msg t;
    if (variant == 0)
      t.packedInts(pb::kDims, dims);
    else if (variant == 1)
      t.unpackedInts(pb::kDims, dims);
    else
      t.packedInts(pb::kDims, {3, 1}).unpackedInts(pb::kDims, {300}).packedInts(pb::kDims, {2});  // mixed
    t.i32(pb::kDataType, pb::kFloat).str(pb::kName, "t").bytes(pb::kRawData, std::string(3 * 300 * 2 * 4, '\0'));
    Msg attrs = pb::attrInts("ints", ints, variant != 1);
    Msg attrf = pb::attrFloats("floats", fl, variant != 1);
    if (variant == 2) {  // mixed occurrences
      attrs = Msg()
                  .str(1, "ints")
                  .packedInts(8, {ints[0], ints[1]})
                  .unpackedInts(8, {ints[2], ints[3]})
                  .packedInts(8, {ints[4], ints[5]});
      attrf = Msg().str(1, "floats").f32(7, fl[0]).packedFloats(7, {fl[1], fl[2]}).unpackedFloats(7, {fl[3], fl[4]});
    }
    pb::GraphBuilder g;
    g.init(t).add(pb::node("Foo", {}, {"o"}, "n", {attrs, attrf}));
    Parsed p(pb::model(g.build()));
    INFO("variant " << variant);
    REQUIRE(p.result.ok());
    CHECK(p.model().graph.initializers[0].dims == dims);
    const Node& n = p.model().graph.nodes[0];
    CHECK(n.attribute("ints")->ints == ints);
    const auto& got = n.attribute("floats")->floats;
    REQUIRE(got.size() == fl.size());
    for (size_t i = 0; i < fl.size(); ++i) CHECK(fbits(got[i]) == fbits(fl[i]));
  }
}

TEST_CASE("parse: float_data packed and unpacked read back exactly", "[parse][typed]") {
  const std::vector<float> vals = {1.0f, -2.5f, 3.0e-39f /* subnormal */, 65504.0f, -0.0f, 7.0f};
  for (int packed = 0; packed < 2; ++packed) {
    Msg t = pb::tensorHeader("fd", pb::kFloat, {2, 3});
    if (packed)
      t.packedFloats(pb::kFloatData, vals);
    else
      t.unpackedFloats(pb::kFloatData, vals);
    Parsed p(modelWithTensor(t));
    const Tensor& tt = onlyTensor(p);
    CHECK(tt.typedField == 4);
    CHECK(tt.typedCount == 6);
    CHECK_FALSE(tt.hasRawData);
    auto f = readAsFloat(tt);
    REQUIRE(f.ok());
    CHECK_FALSE(f->isView());  // typed values are decoded into owned storage
    const auto got = floats(f.value());
    REQUIRE(got.size() == vals.size());
    for (size_t i = 0; i < vals.size(); ++i) CHECK(fbits(got[i]) == fbits(vals[i]));
    auto d = readAsDouble(tt);
    REQUIRE(d.ok());
    REQUIRE(d->size() == 6);
    CHECK(d.value()[1] == -2.5);
    CHECK(d.value()[2] == static_cast<double>(3.0e-39f));
  }
}

TEST_CASE("parse: int32_data holds float16, bfloat16, int8, uint8, int16, uint16, bool, int32", "[parse][typed]") {
  struct Case {
    int32_t dt;
    std::vector<int64_t> stored;  // values as written to int32_data
    std::vector<float> expect;
  };
  const Case cases[] = {
      {pb::kFloat16,
       {0x3C00, 0xC000, 0x7BFF, 0x0001, 0x8000, 0x3555},
       {1.0f, -2.0f, 65504.0f, std::ldexp(1.0f, -24), -0.0f, 0.333251953125f}},
      {pb::kBFloat16,
       {0x3F80, 0xC049, 0x0000, 0x7F7F, 0x0001, 0xBF80},
       {1.0f, -3.140625f, 0.0f, ffrom(0x7F7F0000u), ffrom(0x00010000u), -1.0f}},
      {pb::kInt8, {-128, -1, 0, 1, 127, -5}, {-128, -1, 0, 1, 127, -5}},
      {pb::kUint8, {0, 1, 128, 255, 7, 200}, {0, 1, 128, 255, 7, 200}},
      {pb::kInt16, {-32768, -1, 0, 32767, 12, -300}, {-32768, -1, 0, 32767, 12, -300}},
      {pb::kUint16, {0, 65535, 1, 40000, 2, 3}, {0, 65535, 1, 40000, 2, 3}},
      {pb::kBool, {0, 1, 1, 0, 1, 0}, {0, 1, 1, 0, 1, 0}},
      {pb::kInt32, {-2147483648LL, 2147483647LL, -1, 0, 16777217, 3}, {-2147483648.0f, 2147483648.0f, -1, 0, 16777216.0f, 3}},
  };
  for (const auto& c : cases) {
    for (int packed = 0; packed < 2; ++packed) {
      Msg t = pb::tensorHeader("i32", c.dt, {6});
      // int32 values are sign-extended to 64 bits on the wire (10-byte varints for negatives)
      std::vector<int64_t> wireVals;
      for (int64_t v : c.stored) wireVals.push_back(static_cast<int64_t>(static_cast<int32_t>(v)));
      if (packed)
        t.packedInts(pb::kInt32Data, wireVals);
      else
        t.unpackedInts(pb::kInt32Data, wireVals);
      Parsed p(modelWithTensor(t));
      INFO("dtype " << c.dt << " packed " << packed);
      const Tensor& tt = onlyTensor(p);
      CHECK(tt.typedField == 5);
      CHECK(tt.typedCount == 6);
      auto f = readAsFloat(tt);
      REQUIRE(f.ok());
      const auto got = floats(f.value());
      REQUIRE(got.size() == 6);
      for (size_t i = 0; i < 6; ++i) {
        INFO("i " << i);
        CHECK(fbits(got[i]) == fbits(c.expect[i]));
      }
      auto d = readAsDouble(tt);
      REQUIRE(d.ok());
      if (c.dt == pb::kInt32) {  // doubles hold every int32 exactly
        CHECK(d.value()[4] == 16777217.0);
        CHECK(d.value()[0] == -2147483648.0);
        CHECK(d.value()[1] == 2147483647.0);
      }
    }
  }
}

TEST_CASE("parse: raw_data of every readable type", "[parse][raw]") {
  auto raw = [](std::initializer_list<int> bytes) {
    std::string s;
    for (int b : bytes) s.push_back(static_cast<char>(b));
    return s;
  };
  struct Case {
    int32_t dt;
    std::string bytes;
    std::vector<double> expect;
  };
  const Case cases[] = {
      {pb::kFloat16, raw({0x00, 0x3C, 0x00, 0xC0, 0xFF, 0x7B, 0x00, 0x04}), {1.0, -2.0, 65504.0, std::ldexp(1.0, -14)}},
      {pb::kBFloat16, raw({0x80, 0x3F, 0x49, 0xC0, 0x80, 0x7F, 0x80, 0xFF}), {1.0, -3.140625, INFINITY, -INFINITY}},
      {pb::kInt8, raw({0x80, 0xFF, 0x00, 0x7F}), {-128, -1, 0, 127}},
      {pb::kUint8, raw({0x80, 0xFF, 0x00, 0x7F}), {128, 255, 0, 127}},
      {pb::kInt16, raw({0x00, 0x80, 0xFF, 0xFF, 0x01, 0x00, 0xFF, 0x7F}), {-32768, -1, 1, 32767}},
      {pb::kUint16, raw({0x00, 0x80, 0xFF, 0xFF, 0x01, 0x00, 0xFF, 0x7F}), {32768, 65535, 1, 32767}},
      {pb::kBool, raw({0, 1, 1, 0}), {0, 1, 1, 0}},
      {pb::kInt32, pbw::le32(0xffffffffu) + pbw::le32(5) + pbw::le32(0x80000000u) + pbw::le32(7), {-1, 5, -2147483648.0, 7}},
      {pb::kUint32,
       pbw::le32(0xffffffffu) + pbw::le32(5) + pbw::le32(0x80000000u) + pbw::le32(7),
       {4294967295.0, 5, 2147483648.0, 7}},
      {pb::kDouble,
       pbw::le64(pbw::bitsOf(0.1)) + pbw::le64(pbw::bitsOf(-1e300)) + pbw::le64(pbw::bitsOf(1e-310)) +
           pbw::le64(pbw::bitsOf(2.5)),
       {0.1, -1e300, 1e-310, 2.5}},
      {pb::kInt64,
       pbw::le64(static_cast<uint64_t>(-3)) + pbw::le64(uint64_t{1} << 53) + pbw::le64(0) + pbw::le64(9),
       {-3, 9007199254740992.0, 0, 9}},
      {pb::kUint64,
       pbw::le64(~uint64_t{0}) + pbw::le64(uint64_t{1} << 53) + pbw::le64(0) + pbw::le64(9),
       {18446744073709551615.0, 9007199254740992.0, 0, 9}},
  };
  for (const auto& c : cases) {
    Parsed p(modelWithTensor(pb::rawTensor("r", c.dt, {2, 2}, c.bytes)));
    INFO("dtype " << c.dt);
    const Tensor& t = onlyTensor(p);
    auto d = readAsDouble(t);
    REQUIRE(d.ok());
    REQUIRE(d->size() == 4);
    for (size_t i = 0; i < 4; ++i) {
      INFO("i " << i);
      CHECK(d.value()[i] == c.expect[i]);
    }
    auto f = readAsFloat(t);
    REQUIRE(f.ok());
    const auto got = floats(f.value());
    REQUIRE(got.size() == 4);
    for (size_t i = 0; i < 4; ++i) CHECK(fbits(got[i]) == fbits(static_cast<float>(c.expect[i])));
  }
}

TEST_CASE("parse: double_data and int64_data and uint64_data typed fields", "[parse][typed]") {
  const std::vector<double> dv = {0.1, -1e300, 1e-310, 2.5};
  for (int packed = 0; packed < 2; ++packed) {
    Msg t = pb::tensorHeader("dd", pb::kDouble, {4});
    if (packed)
      t.packedDoubles(pb::kDoubleData, dv);
    else
      t.unpackedDoubles(pb::kDoubleData, dv);
    Parsed p(modelWithTensor(t));
    const Tensor& tt = onlyTensor(p);
    CHECK(tt.typedField == 10);
    auto d = readAsDouble(tt);
    REQUIRE(d.ok());
    CHECK(d.value() == dv);  // exact, not via float
    auto f = readAsFloat(tt);
    REQUIRE(f.ok());
    const auto got = floats(f.value());
    CHECK(got[0] == 0.1f);
    CHECK(std::isinf(got[1]));
    CHECK(got[1] < 0);
    CHECK(got[2] == 0.0f);
    CHECK(got[3] == 2.5f);
  }
  const std::vector<int64_t> iv = {-1, (int64_t{1} << 53) + 1, 0, std::numeric_limits<int64_t>::min()};
  for (int packed = 0; packed < 2; ++packed) {
    Msg t = pb::tensorHeader("i64", pb::kInt64, {4});
    if (packed)
      t.packedInts(pb::kInt64Data, iv);
    else
      t.unpackedInts(pb::kInt64Data, iv);
    Parsed p(modelWithTensor(t));
    const Tensor& tt = onlyTensor(p);
    CHECK(tt.typedField == 7);
    auto d = readAsDouble(tt);
    REQUIRE(d.ok());
    CHECK(d.value()[0] == -1.0);
    CHECK(d.value()[1] == 9007199254740992.0);  // nearest double of 2^53 + 1
    CHECK(d.value()[3] == -9223372036854775808.0);
  }
  for (int32_t dt : {pb::kUint64, pb::kUint32}) {
    Msg t = pb::tensorHeader("u64", dt, {3});
    t.packedVarints(pb::kUint64Data, {~uint64_t{0}, 5, 0});
    Parsed p(modelWithTensor(t));
    const Tensor& tt = onlyTensor(p);
    CHECK(tt.typedField == 11);
    auto d = readAsDouble(tt);
    REQUIRE(d.ok());
    CHECK(d.value()[0] == (dt == pb::kUint64 ? 18446744073709551615.0 : 4294967295.0));
    CHECK(d.value()[1] == 5.0);
  }
}

TEST_CASE("parse: float32 raw_data is a zero-copy view into the input buffer", "[parse][raw]") {
  const std::vector<float> vals = {1.0f, 2.0f, -3.0f, 0.125f, 5.0f};
  // Name lengths shift the payload to every alignment mod 4.
  for (int shift = 0; shift < 4; ++shift) {
    const std::string name = "w" + std::string(static_cast<size_t>(shift), 'x');
    Parsed p(modelWithTensor(pb::floatTensor(name, {5}, vals)));
    const Tensor& t = onlyTensor(p);
    REQUIRE(t.hasRawData);
    CHECK(p.inside(t.rawData.data, t.rawData.size));
    CHECK(std::memcmp(t.rawData.data, pb::floatBytes(vals).data(), 20) == 0);
    auto f = readAsFloat(t);
    REQUIRE(f.ok());
    CHECK(f->isView());
    CHECK(f->bytes == t.rawData.data);
    CHECK(f->owned.empty());
    CHECK(floats(f.value()) == vals);
  }
}

TEST_CASE("parse: empty tensors and scalars", "[parse]") {
  {  // dims {0, 5}: zero elements, zero bytes
    Parsed p(modelWithTensor(pb::rawTensor("e", pb::kFloat, {0, 5}, "")));
    auto f = readAsFloat(onlyTensor(p));
    REQUIRE(f.ok());
    CHECK(f->count == 0);
    CHECK_FALSE(f->isView());
  }
  {  // no dims: a scalar with one element
    Parsed p(modelWithTensor(pb::rawTensor("s", pb::kFloat, {}, pbw::le32(pbw::bitsOf(4.5f)))));
    const Tensor& t = onlyTensor(p);
    uint64_t n = 0;
    REQUIRE(t.elementCount(&n));
    CHECK(n == 1);
    auto d = readAsDouble(t);
    REQUIRE(d.ok());
    CHECK(d.value() == std::vector<double>{4.5});
  }
  {  // elements but no values at all
    Parsed p(modelWithTensor(pb::tensorHeader("novalues", pb::kFloat, {3})));
    auto f = readAsFloat(onlyTensor(p));
    REQUIRE_FALSE(f.ok());
    CHECK(f.error().code == ErrorCode::InvalidModel);
    CHECK(f.error().message.find("novalues") != std::string::npos);
  }
  {  // no data_type
    Msg t;
    t.packedInts(pb::kDims, {1}).str(pb::kName, "untyped").bytes(pb::kRawData, "abcd");
    Parsed p(modelWithTensor(t));
    auto f = readAsFloat(onlyTensor(p));
    REQUIRE_FALSE(f.ok());
    CHECK(f.error().message.find("untyped") != std::string::npos);
    auto d = readAsDouble(onlyTensor(p));
    REQUIRE_FALSE(d.ok());
  }
}

TEST_CASE("parse: typed values in a field that does not hold the type", "[parse][typed][error]") {
  Msg t = pb::tensorHeader("wrongfield", pb::kFloat, {2});
  t.packedInts(pb::kInt32Data, {1, 2});
  Parsed p(modelWithTensor(t));
  auto f = readAsFloat(onlyTensor(p));
  REQUIRE_FALSE(f.ok());
  CHECK(f.error().code == ErrorCode::InvalidModel);
  CHECK(f.error().message.find("wrongfield") != std::string::npos);
  CHECK(f.error().message.find("field 5") != std::string::npos);
  CHECK(f.error().offset == static_cast<int64_t>(onlyTensor(p).offset));
}

TEST_CASE("parse: external data references", "[parse][external]") {
  Parsed p(modelWithTensor(pb::externalTensor("ext", pb::kFloat, {2, 3}, "weights.bin", "4096", "24")));
  const Tensor& t = onlyTensor(p);
  CHECK(t.external);
  CHECK(t.externalValue("location") == "weights.bin");
  CHECK(t.externalValue("offset") == "4096");
  CHECK(t.externalValue("length") == "24");
  CHECK(t.externalValue("checksum").empty());
  CHECK(expectedByteSize(t) == 24);
  auto ref = externalRef(t);
  REQUIRE(ref.ok());
  CHECK(ref->location == "weights.bin");
  CHECK(ref->offset == 4096);
  CHECK(ref->length == 24);
  CHECK(ref->hasLength);

  // Not provided: MISSING_EXTERNAL_DATA naming the tensor and the file.
  auto f = readAsFloat(t);
  REQUIRE_FALSE(f.ok());
  CHECK(f.error().code == ErrorCode::MissingExternalData);
  CHECK(f.error().message.find("ext") != std::string::npos);
  CHECK(f.error().message.find("weights.bin") != std::string::npos);
  auto d = readAsDouble(t);
  REQUIRE_FALSE(d.ok());
  CHECK(d.error().code == ErrorCode::MissingExternalData);

  // Provided with the right size: read as a view of those bytes.
  const std::vector<float> vals = {1, 2, 3, 4, 5, 6};
  const std::string bytes = pb::floatBytes(vals);
  auto g = readAsFloat(t, ql::wire::Bytes{reinterpret_cast<const uint8_t*>(bytes.data()), bytes.size()});
  REQUIRE(g.ok());
  CHECK(g->isView());
  CHECK(g->bytes == reinterpret_cast<const uint8_t*>(bytes.data()));
  CHECK(floats(g.value()) == vals);

  // Provided with the wrong size: an error, never a read past the end.
  for (size_t n : {size_t{0}, size_t{20}, size_t{23}, size_t{25}, size_t{28}}) {
    std::vector<uint8_t> buf(n, 0);
    auto h = readAsFloat(t, ql::wire::Bytes{buf.data(), buf.size()});
    INFO("size " << n);
    REQUIRE_FALSE(h.ok());
    CHECK(h.error().code == ErrorCode::MissingExternalData);
  }
}

TEST_CASE("parse: external data without length, bad numbers, no location", "[parse][external][error]") {
  {  // no length: the tensor's size
    Parsed p(modelWithTensor(pb::externalTensor("e", pb::kFloat16, {7}, "w.bin", "", "")));
    auto ref = externalRef(onlyTensor(p));
    REQUIRE(ref.ok());
    CHECK(ref->offset == 0);
    CHECK(ref->length == 14);
    CHECK(ref->hasLength);
  }
  {  // non-numeric offset
    Parsed p(modelWithTensor(pb::externalTensor("e", pb::kFloat, {1}, "w.bin", "12a", "4")));
    auto ref = externalRef(onlyTensor(p));
    REQUIRE_FALSE(ref.ok());
    CHECK(ref.error().code == ErrorCode::InvalidModel);
  }
  {  // offset overflowing uint64
    Parsed p(modelWithTensor(pb::externalTensor("e", pb::kFloat, {1}, "w.bin", "99999999999999999999999", "4")));
    REQUIRE_FALSE(externalRef(onlyTensor(p)).ok());
  }
  {  // negative length
    Parsed p(modelWithTensor(pb::externalTensor("e", pb::kFloat, {1}, "w.bin", "0", "-4")));
    REQUIRE_FALSE(externalRef(onlyTensor(p)).ok());
  }
  {  // a length that disagrees with the shape
    Parsed p(modelWithTensor(pb::externalTensor("e", pb::kFloat, {2}, "w.bin", "0", "12")));
    auto ref = externalRef(onlyTensor(p));
    REQUIRE_FALSE(ref.ok());
    CHECK(ref.error().message.find("12") != std::string::npos);
  }
  {  // no location: rejected by the parser
    Parsed p(modelWithTensor(pb::externalTensor("noloc", pb::kFloat, {2}, "", "0", "8")));
    REQUIRE_FALSE(p.result.ok());
    CHECK(p.result.error().message.find("noloc") != std::string::npos);
    CHECK(p.result.error().message.find("location") != std::string::npos);
  }
  {  // external string tensor: unsupported, never misread
    Parsed p(modelWithTensor(pb::externalTensor("es", pb::kString, {2}, "w.bin", "0", "")));
    auto f = readAsFloat(onlyTensor(p));
    REQUIRE_FALSE(f.ok());
    CHECK(f.error().code == ErrorCode::UnsupportedDtype);
  }
}

TEST_CASE("parse: Constant node tensors", "[parse][constant]") {
  pb::GraphBuilder g;
  g.add(pb::constantNode("c", pb::floatTensor("c_value", {3}, {1.5f, 2.5f, -1.0f}), "const0"))
      .add(pb::node("Constant", {}, {"k"}, "const1", {pb::attrFloat("value_float", 6.0f)}))
      .add(pb::node("Constant", {}, {"ints"}, "const2", {pb::attrInts("value_ints", {1, 2, 3})}));
  Parsed p(pb::model(g.build()));
  REQUIRE(p.result.ok());
  const auto& nodes = p.model().graph.nodes;
  REQUIRE(nodes.size() == 3);
  const Attribute* v = nodes[0].attribute("value");
  REQUIRE(v);
  CHECK(v->type == pb::kAttrTensor);
  REQUIRE(v->t);
  CHECK(v->t->name == "c_value");
  CHECK(v->t->dims == std::vector<int64_t>{3});
  auto f = readAsFloat(*v->t);
  REQUIRE(f.ok());
  CHECK(f->isView());
  CHECK(p.inside(f->bytes, 12));
  CHECK(floats(f.value()) == std::vector<float>{1.5f, 2.5f, -1.0f});
  CHECK(nodes[1].attribute("value_float")->f == 6.0f);
  CHECK(nodes[2].attribute("value_ints")->ints == std::vector<int64_t>{1, 2, 3});
}

TEST_CASE("parse: nested sub-graphs and tensors lists", "[parse][subgraph]") {
  pb::GraphBuilder inner;
  inner.name = "inner";
  inner.add(pb::node("Relu", {"a"}, {"b"}, "deep_relu"));
  pb::GraphBuilder thenG;
  thenG.name = "then";
  thenG.add(pb::node("Loop", {"", "", "x"}, {"y"}, "loop", {pb::attrGraph("body", inner.build())}));
  thenG.init(pb::floatTensor("then_w", {1}, {2.0f}));
  pb::GraphBuilder elseG;
  elseG.name = "else";
  pb::GraphBuilder gl0, gl1;
  gl0.name = "list0";
  gl1.name = "list1";
  gl1.add(pb::node("Neg", {"p"}, {"q"}));
  Msg tensors;
  tensors.str(1, "ts")
      .i32(20, pb::kAttrTensors)
      .msg(10, pb::floatTensor("t0", {1}, {1.0f}))
      .msg(10, pb::floatTensor("t1", {2}, {1.0f, 2.0f}));
  pb::GraphBuilder main;
  main.add(pb::node("If", {"cond"}, {"out"}, "if0",
                    {pb::attrGraph("then_branch", thenG.build()), pb::attrGraph("else_branch", elseG.build()),
                     pb::attrGraphs("branches", {gl0.build(), gl1.build()}), tensors}));
  Parsed p(pb::model(main.build()));
  REQUIRE(p.result.ok());
  const Node& ifn = p.model().graph.nodes.at(0);
  REQUIRE(ifn.attribute("then_branch"));
  const Graph* tg = ifn.attribute("then_branch")->g.get();
  REQUIRE(tg);
  CHECK(tg->name == "then");
  REQUIRE(tg->initializers.size() == 1);
  CHECK(tg->initializers[0].name == "then_w");
  const Graph* body = tg->nodes.at(0).attribute("body")->g.get();
  REQUIRE(body);
  CHECK(body->name == "inner");
  CHECK(body->nodes.at(0).name == "deep_relu");
  CHECK(ifn.attribute("else_branch")->g->name == "else");
  CHECK(ifn.attribute("else_branch")->g->nodes.empty());
  const auto& gs = ifn.attribute("branches")->graphs;
  REQUIRE(gs.size() == 2);
  CHECK(gs[0].name == "list0");
  CHECK(gs[1].nodes.at(0).opType == "Neg");
  const auto& ts = ifn.attribute("ts")->tensors;
  REQUIRE(ts.size() == 2);
  CHECK(ts[1].name == "t1");
  CHECK(ts[1].dims == std::vector<int64_t>{2});
}

TEST_CASE("parse: maxGraphDepth bounds sub-graph nesting exactly", "[parse][subgraph]") {
  auto nested = [](int levels) {
    // levels sub-graphs below the main graph
    Msg g;
    g.str(2, "leaf");
    for (int i = 0; i < levels; ++i) {
      Msg outer;
      outer.msg(1, pb::node("If", {"c"}, {"o"}, "", {pb::attrGraph("then_branch", g)}));
      g = outer;
    }
    return pb::model(g);
  };
  ParseOptions o;
  o.maxGraphDepth = 5;
  CHECK(Parsed(nested(5), o).result.ok());
  Parsed deep(nested(6), o);
  REQUIRE_FALSE(deep.result.ok());
  CHECK(deep.result.error().message.find("deeper than 5") != std::string::npos);
  CHECK(Parsed(nested(32)).result.ok());
  CHECK_FALSE(Parsed(nested(33)).result.ok());
  o.maxGraphDepth = 0;
  CHECK(Parsed(nested(0), o).result.ok());
  CHECK_FALSE(Parsed(nested(1), o).result.ok());
}

TEST_CASE("parse: unknown fields of every wire type are skipped at every level", "[parse][unknown]") {
  Msg t = pb::floatTensor("W", {2}, {1.0f, 2.0f});
  t.unknownFields(100);
  Msg attr = pb::attrInt("axis", 3);
  attr.unknownFields(200);
  Msg node = pb::node("Conv", {"x", "W"}, {"y"}, "c", {attr});
  node.unknownFields(300);
  Msg vi = pb::valueInfo("x", pb::kFloat, {4});
  vi.unknownFields(400);
  Msg g;
  g.unknownFields(500).msg(1, node).msg(5, t).msg(11, vi).str(2, "g").unknownFields(600);
  Msg m;
  m.unknownFields(700).i64(1, 8).unknownFields(15).msg(7, g).unknownFields(30);
  Parsed p(m);
  REQUIRE(p.result.ok());
  const Graph& gr = p.model().graph;
  CHECK(p.model().irVersion == 8);
  CHECK(gr.name == "g");
  REQUIRE(gr.nodes.size() == 1);
  CHECK(gr.nodes[0].intAttr("axis", 0) == 3);
  REQUIRE(gr.initializers.size() == 1);
  auto f = readAsFloat(gr.initializers[0]);
  REQUIRE(f.ok());
  CHECK(floats(f.value()) == std::vector<float>{1.0f, 2.0f});
  CHECK(gr.inputs.at(0).shape.at(0).value == 4);
}

TEST_CASE("parse: unknown fields in typed tensors do not disturb the values", "[parse][unknown][typed]") {
  Msg t = pb::tensorHeader("tv", pb::kFloat, {3});
  t.f32(pb::kFloatData, 1.0f).unknownFields(50).packedFloats(pb::kFloatData, {2.0f, 3.0f}).unknownFields(60);
  Parsed p(modelWithTensor(t));
  auto f = readAsFloat(onlyTensor(p));
  REQUIRE(f.ok());
  CHECK(floats(f.value()) == std::vector<float>{1.0f, 2.0f, 3.0f});
}

TEST_CASE("parse: unsupported dtypes give UNSUPPORTED_DTYPE naming the tensor", "[parse][dtype]") {
  struct Case {
    Msg t;
    const char* typeName;
  };
  Msg strT = pb::tensorHeader("str_tensor", pb::kString, {2});
  strT.str(pb::kStringData, "a").str(pb::kStringData, "bc");
  Msg c64 = pb::rawTensor("c64_tensor", pb::kComplex64, {2}, std::string(16, '\0'));
  Msg c64typed = pb::tensorHeader("c64_typed", pb::kComplex64, {2});
  c64typed.packedFloats(pb::kFloatData, {1, 2, 3, 4});
  Msg c128 = pb::rawTensor("c128_tensor", pb::kComplex128, {1}, std::string(16, '\0'));
  // (int4, uint4 and the float8 types are read since they are analysed: test_formats.cpp.)
  Msg f4 = pb::rawTensor("f4_tensor", 23, {4}, std::string(4, '\x12'));  // float4e2m1: not read
  Msg unknown = pb::rawTensor("dtype_99", 99, {4}, std::string(4, '\x12'));
  const std::pair<Msg, const char*> cases[] = {{strT, "string"},     {c64, "complex64"}, {c64typed, "complex64"},
                                               {c128, "complex128"}, {f4, "dtype 23"},   {unknown, "dtype 99"}};
  for (const auto& [msg, typeName] : cases) {
    Parsed p(modelWithTensor(msg));
    INFO(typeName);
    const Tensor& t = onlyTensor(p);
    auto f = readAsFloat(t);
    REQUIRE_FALSE(f.ok());
    CHECK(f.error().code == ErrorCode::UnsupportedDtype);
    CHECK(f.error().message.find(std::string(t.name)) != std::string::npos);
    CHECK(f.error().message.find(typeName) != std::string::npos);
    CHECK(f.error().offset == static_cast<int64_t>(t.offset));
    auto d = readAsDouble(t);
    REQUIRE_FALSE(d.ok());
    CHECK(d.error().code == ErrorCode::UnsupportedDtype);
    CHECK_FALSE(isReadableType(t.dataType));
  }
  CHECK(Parsed(modelWithTensor(c64typed)).model().graph.initializers[0].typedCount == 4);  // two values per element
}

TEST_CASE("dtype names and sizes", "[parse][dtype]") {
  CHECK(dataTypeName(kFloat) == "float32");
  CHECK(dataTypeName(kDouble) == "float64");
  CHECK(dataTypeName(kFloat16) == "float16");
  CHECK(dataTypeName(kBFloat16) == "bfloat16");
  CHECK(dataTypeName(22) == "int4");
  CHECK(dataTypeName(123) == "dtype 123");
  CHECK(dataTypeName(-1) == "dtype -1");
  CHECK(dataTypeSize(kFloat) == 4);
  CHECK(dataTypeSize(kFloat16) == 2);
  CHECK(dataTypeSize(kBFloat16) == 2);
  CHECK(dataTypeSize(kInt8) == 1);
  CHECK(dataTypeSize(kBool) == 1);
  CHECK(dataTypeSize(kDouble) == 8);
  CHECK(dataTypeSize(kComplex128) == 16);
  CHECK(dataTypeSize(kString) == 0);
  CHECK(dataTypeSize(22) == 0);
  CHECK(dataTypeSize(1000) == 0);
  for (int32_t dt : {1, 2, 3, 4, 5, 6, 7, 9, 10, 11, 12, 13, 16}) CHECK(isReadableType(dt));
  for (int32_t dt : {17, 18, 19, 20, 21, 22}) CHECK(isReadableType(dt));  // float8, uint4, int4 (test_formats.cpp)
  for (int32_t dt : {0, 8, 14, 15, 23, -1}) CHECK_FALSE(isReadableType(dt));
}

TEST_CASE("halfToFloat against known bit patterns", "[parse][half]") {
  struct Case {
    uint16_t h;
    uint32_t f;
  };
  const Case cases[] = {
      {0x0000, 0x00000000},                        // +0
      {0x8000, 0x80000000},                        // -0
      {0x0001, 0x33800000},                        // smallest subnormal 2^-24
      {0x8001, 0xB3800000},                        // its negative
      {0x0002, 0x34000000},                        // 2^-23
      {0x0003, 0x34400000},                        // 3 * 2^-24
      {0x0200, 0x38000000},                        // 2^-15, a subnormal with one bit
      {0x03FF, 0x387FC000},                        // largest subnormal 1023 * 2^-24
      {0x0400, 0x38800000},                        // smallest normal 2^-14
      {0x0401, 0x38802000}, {0x3BFF, 0x3F7FE000},  // largest below one
      {0x3C00, 0x3F800000},                        // 1
      {0x3C01, 0x3F802000},                        // 1 + 2^-10
      {0xC000, 0xC0000000},                        // -2
      {0x3555, 0x3EAAA000},                        // 0.333251953125
      {0x7BFF, 0x477FE000},                        // max 65504
      {0xFBFF, 0xC77FE000},                        // -65504
      {0x7C00, 0x7F800000},                        // +inf
      {0xFC00, 0xFF800000},                        // -inf
      {0x7E00, 0x7FC00000},                        // quiet NaN
      {0x7C01, 0x7F802000},                        // signalling NaN payload kept
      {0xFFFF, 0xFFFFE000},                        // negative NaN with full payload
  };
  for (const auto& c : cases) {
    INFO(std::hex << "h=0x" << c.h);
    CHECK(fbits(halfToFloat(c.h)) == c.f);
  }
}

TEST_CASE("halfToFloat matches an independent formula for all 65536 inputs", "[parse][half]") {
  for (uint32_t h = 0; h < 65536; ++h) {
    const int sign = (h >> 15) ? -1 : 1;
    const int e = static_cast<int>((h >> 10) & 0x1f);
    const int m = static_cast<int>(h & 0x3ff);
    const float got = halfToFloat(static_cast<uint16_t>(h));
    if (e == 31) {
      if (m == 0) {
        REQUIRE(std::isinf(got));
      } else {
        REQUIRE(std::isnan(got));
      }
      // the NaN's payload is kept, under float32's all-ones exponent
      uint32_t bits;
      std::memcpy(&bits, &got, 4);
      REQUIRE(bits == ((h & 0x8000u) << 16 | 0x7f800000u | static_cast<uint32_t>(m) << 13));
      REQUIRE(std::signbit(got) == (sign < 0));
      continue;
    }
    const double want = sign * (e == 0 ? std::ldexp(m, -24) : std::ldexp(1024 + m, e - 25));
    INFO("h=" << h);
    REQUIRE(static_cast<double>(got) == want);
    REQUIRE(std::signbit(got) == (sign < 0));
  }
}

// convertRaw's loops (vectorized by the compiler) give the scalar converters' bits, for
// every pattern, from any byte offset and in pieces of any size.
TEST_CASE("convertRaw of float16 and bfloat16 equals the scalar converters for all 65536 patterns", "[parse][half]") {
  std::vector<uint8_t> bytes(2 * 65536 + 1);
  for (uint32_t h = 0; h < 65536; ++h) {
    bytes[1 + 2 * h] = static_cast<uint8_t>(h);
    bytes[2 + 2 * h] = static_cast<uint8_t>(h >> 8);
  }
  std::vector<float> out(65536);
  for (int32_t type : {ql::onnx::kFloat16, ql::onnx::kBFloat16}) {
    for (uint64_t piece : {uint64_t{65536}, uint64_t{7}, uint64_t{1}, uint64_t{4099}}) {
      for (uint64_t first = 0; first < 65536; first += piece)
        ql::onnx::convertRaw(type, bytes.data() + 1 + 2 * first, std::min<uint64_t>(piece, 65536 - first), out.data() + first);
      for (uint32_t h = 0; h < 65536; ++h) {
        const float want = type == ql::onnx::kFloat16 ? halfToFloat(static_cast<uint16_t>(h))
                                                      : ql::onnx::bfloat16ToFloat(static_cast<uint16_t>(h));
        uint32_t a, b;
        std::memcpy(&a, &out[h], 4);
        std::memcpy(&b, &want, 4);
        INFO("type " << type << " h=" << h << " piece " << piece);
        REQUIRE(a == b);
      }
    }
  }
}

TEST_CASE("bfloat16ToFloat keeps the top half of a float32", "[parse][half]") {
  CHECK(fbits(bfloat16ToFloat(0x3F80)) == 0x3F800000u);
  CHECK(fbits(bfloat16ToFloat(0x8000)) == 0x80000000u);
  CHECK(fbits(bfloat16ToFloat(0x0001)) == 0x00010000u);
  CHECK(fbits(bfloat16ToFloat(0x7F80)) == 0x7F800000u);
  CHECK(std::isnan(bfloat16ToFloat(0x7FC1)));
  CHECK(bfloat16ToFloat(0x4049) == 3.140625f);
}

TEST_CASE("parse: malformed tensors are rejected with the tensor's name", "[parse][error]") {
  {  // raw and typed together
    Msg t = pb::rawTensor("both", pb::kFloat, {1}, pbw::le32(0));
    t.f32(pb::kFloatData, 1.0f);
    Parsed p(modelWithTensor(t));
    REQUIRE_FALSE(p.result.ok());
    CHECK(p.result.error().message.find("both") != std::string::npos);
  }
  {  // two typed fields
    Msg t = pb::tensorHeader("two", pb::kFloat, {2});
    t.f32(pb::kFloatData, 1.0f).i64(pb::kInt64Data, 1);
    Parsed p(modelWithTensor(t));
    REQUIRE_FALSE(p.result.ok());
    CHECK(p.result.error().message.find("two typed fields") != std::string::npos);
  }
  {  // packed floats that do not fill their length
    Msg t = pb::tensorHeader("ragged", pb::kFloat, {1});
    t.bytes(pb::kFloatData, "12345");
    Parsed p(modelWithTensor(t));
    REQUIRE_FALSE(p.result.ok());
    CHECK(p.result.error().code == ErrorCode::InvalidModel);
  }
  {  // a varint where a fixed32 belongs
    Msg t = pb::tensorHeader("wt", pb::kFloat, {1});
    t.u64(pb::kFloatData, 1);
    Parsed p(modelWithTensor(t));
    REQUIRE_FALSE(p.result.ok());
  }
  {  // a string where the data_type varint belongs
    Msg t;
    t.str(pb::kDataType, "float").str(pb::kName, "x");
    Parsed p(modelWithTensor(t));
    REQUIRE_FALSE(p.result.ok());
    CHECK(p.result.error().message.find("TensorProto") != std::string::npos);
    CHECK(p.result.error().message.find("length-delimited") != std::string::npos);
  }
}

TEST_CASE("parse: wrong wire types for known fields at each level", "[parse][error]") {
  {  // ir_version as a string
    Msg m;
    m.str(1, "8").msg(7, Msg().str(2, "g"));
    Parsed p(m);
    REQUIRE_FALSE(p.result.ok());
    CHECK(p.result.error().offset == 0);
    CHECK(p.result.error().message.find("ModelProto field 1") != std::string::npos);
  }
  {  // graph as a varint
    Msg m;
    m.i64(1, 8).u64(7, 1);
    Parsed p(m);
    REQUIRE_FALSE(p.result.ok());
    CHECK(p.result.error().offset == 2);
  }
  {  // node op_type as fixed32, the offset is absolute
    Msg n;
    n.str(1, "x").fixed32(4, 7);
    Msg g;
    g.msg(1, n);
    Msg m;
    m.i64(1, 8).msg(7, g);
    Parsed p(m);
    REQUIRE_FALSE(p.result.ok());
    // 08 08 | 3a len | 0a len | 0a 01 'x' | 25 ...
    CHECK(p.result.error().offset == 9);
    CHECK(p.result.error().message.find("NodeProto field 4") != std::string::npos);
  }
  {  // attribute f as a varint
    Msg a;
    a.str(1, "alpha").u64(2, 1);
    pb::GraphBuilder g;
    g.add(Msg().str(4, "LeakyRelu").msg(5, a));
    Parsed p(pb::model(g.build()));
    REQUIRE_FALSE(p.result.ok());
    CHECK(p.result.error().message.find("AttributeProto") != std::string::npos);
  }
  {  // packed floats in an attribute that do not fill their length
    Msg a;
    a.str(1, "fs").bytes(7, "abcdef");
    pb::GraphBuilder g;
    g.add(Msg().str(4, "Foo").msg(5, a));
    Parsed p(pb::model(g.build()));
    REQUIRE_FALSE(p.result.ok());
  }
  {  // a truncated packed varint in dims
    Msg t;
    t.bytes(pb::kDims, std::string("\x02\x83", 2)).i32(pb::kDataType, 1);
    Parsed p(modelWithTensor(t));
    REQUIRE_FALSE(p.result.ok());
    CHECK(p.result.error().message.find("TensorProto") != std::string::npos);
  }
}

TEST_CASE("parse: model-level requirements", "[parse][error]") {
  {  // no ir_version
    Msg m;
    m.msg(7, Msg().str(2, "g"));
    Parsed p(m);
    REQUIRE_FALSE(p.result.ok());
    CHECK(p.result.error().message.find("not an ONNX model") != std::string::npos);
    CHECK(p.result.error().message.find("ir_version") != std::string::npos);
  }
  {  // no graph
    Msg m;
    m.i64(1, 8).str(2, "producer");
    Parsed p(m);
    REQUIRE_FALSE(p.result.ok());
    CHECK(p.result.error().message.find("not an ONNX model") != std::string::npos);
    CHECK(p.result.error().message.find("graph") != std::string::npos);
  }
  {  // an empty graph is still a model
    Msg m;
    m.i64(1, 8).msg(7, Msg());
    Parsed p(m);
    REQUIRE(p.result.ok());
    CHECK(p.model().hasGraph);
    CHECK(p.model().graph.nodes.empty());
  }
  {  // two graph fields
    Msg m;
    m.i64(1, 8).msg(7, Msg().str(2, "a")).msg(7, Msg().str(2, "b"));
    Parsed p(m);
    REQUIRE_FALSE(p.result.ok());
    CHECK(p.result.error().message.find("more than one graph") != std::string::npos);
  }
  {  // null data
    auto r = parseModel(nullptr, 10);
    REQUIRE_FALSE(r.ok());
    CHECK(r.error().code == ErrorCode::InvalidArgument);
    auto e = parseModel(nullptr, 0);
    REQUIRE_FALSE(e.ok());
    CHECK(e.error().code == ErrorCode::InvalidModel);
  }
}

TEST_CASE("parse: tensor segment, doc string and data_location default", "[parse]") {
  Msg t = pb::floatTensor("seg", {1}, {1.0f});
  t.msg(pb::kSegment, Msg().i64(1, 3).i64(2, 9)).str(pb::kDocString, "tdoc").i32(pb::kDataLocation, 0);
  Parsed p(modelWithTensor(t));
  const Tensor& tt = onlyTensor(p);
  CHECK(tt.hasSegment);
  CHECK(tt.segmentBegin == 3);
  CHECK(tt.segmentEnd == 9);
  CHECK(tt.docString == "tdoc");
  CHECK_FALSE(tt.external);
  CHECK(p.bytes[tt.offset] == 0x0a);  // the payload begins with its first field (dims)
  CHECK(tt.message.data == p.bytes.data() + tt.offset);
}

TEST_CASE("parse: a later dim_value or dim_param replaces the earlier one", "[parse]") {
  Msg dim;
  dim.str(2, "batch").i64(1, 4);
  Msg dim2;
  dim2.i64(1, 4).str(2, "seq");
  Msg shp;
  shp.msg(1, dim).msg(1, dim2);
  Msg tt;
  tt.i32(1, 1).msg(2, shp);
  Msg tp;
  tp.msg(1, tt);
  Msg seqType;  // a sequence type: only the case is recorded
  seqType.msg(4, Msg().msg(1, tp));
  pb::GraphBuilder g;
  Msg v1, v2;
  v1.str(1, "a").msg(2, tp);
  v2.str(1, "s").msg(2, seqType);
  Msg gm = g.build();
  gm.msg(11, v1).msg(11, v2);
  Parsed p(pb::model(gm));
  REQUIRE(p.result.ok());
  const auto& ins = p.model().graph.inputs;
  REQUIRE(ins.size() == 2);
  REQUIRE(ins[0].shape.size() == 2);
  CHECK(ins[0].shape[0].hasValue);
  CHECK(ins[0].shape[0].value == 4);
  CHECK(ins[0].shape[0].param.empty());
  CHECK_FALSE(ins[0].shape[1].hasValue);
  CHECK(ins[0].shape[1].param == "seq");
  CHECK(ins[1].typeCase == 4);
  CHECK_FALSE(ins[1].hasShape);
}
