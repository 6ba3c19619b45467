// Static shapes (graph/shapes.hpp) on hand-built graphs: every op's output size worked
// out by hand from the ONNX operator definitions; unknown inputs stay unknown. Real models
// are compared with onnx.shape_inference by tests/js/prune.test.mjs.
#include <catch2/catch.hpp>
#include <cstdint>
#include <string>
#include <vector>

#include "graph/layers.hpp"
#include "graph/shapes.hpp"
#include "onnx/model.hpp"
#include "pb_writer.hpp"

namespace pb = pbw::onnx;
using pbw::Msg;
using Dims = std::vector<int64_t>;

namespace {

struct Inferred {
  std::vector<uint8_t> bytes;
  ql::Result<ql::onnx::Model> model{ql::onnx::Model{}};
  ql::graph::Shapes shapes;
  explicit Inferred(const pb::GraphBuilder& g) : bytes(pb::toVec(pb::model(g.build()))) {
    model = ql::onnx::parseModel(bytes.data(), bytes.size());
    REQUIRE(model.ok());
    shapes = ql::graph::inferShapes(model.value());
  }
  Dims of(const std::string& v) const {
    const Dims* d = shapes.of(v);
    return d ? *d : Dims{-1};
  }
};

// x [1, 3, H, W] -> one node `n` -> "y".
Inferred one(const Msg& n, Dims x, const std::vector<Msg>& inits = {}) {
  pb::GraphBuilder g;
  g.input("x", x);
  for (const auto& t : inits) g.init(t);
  g.add(n);
  g.output("y");
  return Inferred(g);
}

Msg weight(const std::string& name, const Dims& d) {
  size_t n = 1;
  for (int64_t x : d) n *= static_cast<size_t>(x);
  return pb::floatTensor(name, d, std::vector<float>(n, 0.5f));
}
Msg ints64(const std::string& name, const std::vector<int64_t>& v) {
  std::string raw;
  for (int64_t x : v) raw += pbw::le64(static_cast<uint64_t>(x));
  return pb::rawTensor(name, pb::kInt64, {static_cast<int64_t>(v.size())}, raw);
}

}  // namespace

TEST_CASE("shapes: Conv output sizes", "[shapes]") {
  const Msg w = weight("w", {8, 3, 3, 3});
  // floor((in + pads - ((k - 1) * d + 1)) / s) + 1
  CHECK(one(pb::node("Conv", {"x", "w"}, {"y"}), {1, 3, 10, 12}, {w}).of("y") == Dims{1, 8, 8, 10});
  CHECK(one(pb::node("Conv", {"x", "w"}, {"y"}, "", {pb::attrInts("pads", {1, 1, 1, 1}), pb::attrInts("strides", {2, 2})}),
            {1, 3, 10, 11}, {w})
            .of("y") == Dims{1, 8, 5, 6});
  CHECK(one(pb::node("Conv", {"x", "w"}, {"y"}, "", {pb::attrInts("dilations", {2, 3}), pb::attrInts("pads", {0, 1, 2, 3})}),
            {1, 3, 10, 12}, {w})
            .of("y") == Dims{1, 8, 8, 10});  // H: 10+2-5+1 = 8; W: 12+4-7+1 = 10
  CHECK(one(pb::node("Conv", {"x", "w"}, {"y"}, "", {pb::attrString("auto_pad", "SAME_UPPER"), pb::attrInts("strides", {2, 2})}),
            {1, 3, 7, 8}, {w})
            .of("y") == Dims{1, 8, 4, 4});
  CHECK(one(pb::node("Conv", {"x", "w"}, {"y"}, "", {pb::attrString("auto_pad", "VALID"), pb::attrInts("strides", {2, 2})}),
            {1, 3, 7, 8}, {w})
            .of("y") == Dims{1, 8, 3, 3});
  // grouped: W [8, 1, 3, 3] with group 3 does not fit 3 input channels... 8 % 3: the spec's
  // channel check is C = W[1] * group.
  CHECK(one(pb::node("Conv", {"x", "wg"}, {"y"}, "", {pb::attrInt("group", 3)}), {1, 3, 5, 5}, {weight("wg", {6, 1, 3, 3})})
            .of("y") == Dims{1, 6, 3, 3});
  CHECK(one(pb::node("Conv", {"x", "w"}, {"y"}), {1, 4, 5, 5}, {w}).of("y") == Dims{-1});  // channels do not match
  // Hostile attributes (models/generated/hostile_split_pads.onnx's pads of 2^62): unknown,
  // without a signed overflow (UndefinedBehaviorSanitizer found one here).
  const int64_t huge = int64_t{1} << 62;
  CHECK(one(pb::node("Conv", {"x", "w"}, {"y"}, "", {pb::attrInts("pads", {huge, huge, huge, huge})}), {1, 3, 10, 12}, {w})
            .of("y") == Dims{-1});
  CHECK(one(pb::node("Conv", {"x", "w"}, {"y"}, "", {pb::attrInts("dilations", {huge, 1})}), {1, 3, 10, 12}, {w}).of("y") ==
        Dims{-1});
  CHECK(one(pb::node("Reshape", {"x", "s"}, {"y"}), {1, 3, 10, 12}, {ints64("s", {huge, huge, -1})}).of("y") == Dims{-1});
  // 1-D convolution
  CHECK(one(pb::node("Conv", {"x", "w1"}, {"y"}, "", {pb::attrInts("strides", {3})}), {2, 3, 16}, {weight("w1", {5, 3, 4})})
            .of("y") == Dims{2, 5, 5});
  // ConvTranspose: s * (in - 1) + output_padding + (k - 1) * d + 1 - pads
  CHECK(
      one(pb::node("ConvTranspose", {"x", "wt"}, {"y"}, "",
                   {pb::attrInts("strides", {2, 2}), pb::attrInts("pads", {1, 1, 1, 1}), pb::attrInts("output_padding", {1, 0})}),
          {1, 3, 5, 6}, {weight("wt", {3, 4, 3, 3})})
          .of("y") == Dims{1, 4, 10, 11});
}

TEST_CASE("shapes: a symbolic or missing input dim stays unknown downstream", "[shapes]") {
  pb::GraphBuilder g;
  Msg shp;
  for (int k = 0; k < 4; ++k) {
    Msg dim;
    if (k == 0)
      dim.str(2, "batch");
    else
      dim.i64(1, 8);
    shp.msg(1, dim);
  }
  Msg tt;
  tt.i32(1, pb::kFloat).msg(2, shp);
  Msg tp;
  tp.msg(1, tt);
  Msg vi;
  vi.str(1, "x").msg(2, tp);
  g.inputs.push_back(vi);
  g.init(weight("w", {4, 8, 1, 1}));
  g.add(pb::node("Conv", {"x", "w"}, {"c"}));
  g.add(pb::node("Relu", {"c"}, {"y"}));
  g.output("y");
  Inferred s(g);
  CHECK(s.of("c") == Dims{-1});
  CHECK(s.of("y") == Dims{-1});
  CHECK(s.of("w") == Dims{4, 8, 1, 1});
}

TEST_CASE("shapes: pools, elementwise, Concat, Resize, Flatten, Reshape, Gemm, MatMul", "[shapes]") {
  CHECK(one(pb::node("MaxPool", {"x"}, {"y"}, "", {pb::attrInts("kernel_shape", {3, 3}), pb::attrInts("strides", {2, 2})}),
            {1, 3, 8, 9})
            .of("y") == Dims{1, 3, 3, 4});
  CHECK(one(pb::node("MaxPool", {"x"}, {"y"}, "",
                     {pb::attrInts("kernel_shape", {3, 3}), pb::attrInts("strides", {2, 2}), pb::attrInt("ceil_mode", 1)}),
            {1, 3, 8, 9})
            .of("y") == Dims{1, 3, 4, 4});
  CHECK(one(pb::node("AveragePool", {"x"}, {"y"}, "",
                     {pb::attrInts("kernel_shape", {2, 2}), pb::attrString("auto_pad", "SAME_LOWER")}),
            {1, 3, 7, 8})
            .of("y") == Dims{1, 3, 7, 8});
  CHECK(one(pb::node("GlobalAveragePool", {"x"}, {"y"}), {2, 3, 7, 8}).of("y") == Dims{2, 3, 1, 1});
  CHECK(one(pb::node("Add", {"x", "b"}, {"y"}), {2, 3, 7, 8}, {weight("b", {3, 1, 1})}).of("y") == Dims{2, 3, 7, 8});
  CHECK(one(pb::node("Mul", {"x", "b"}, {"y"}), {1, 3, 1, 8}, {weight("b", {5, 1})}).of("y") == Dims{1, 3, 5, 8});
  CHECK(one(pb::node("Add", {"x", "b"}, {"y"}), {1, 3, 7, 8}, {weight("b", {4})}).of("y") == Dims{-1});  // not broadcastable
  CHECK(one(pb::node("Concat", {"x", "z"}, {"y"}, "", {pb::attrInt("axis", 1)}), {1, 3, 4, 4}, {weight("z", {1, 5, 4, 4})})
            .of("y") == Dims{1, 8, 4, 4});
  CHECK(one(pb::node("Concat", {"x", "z"}, {"y"}, "", {pb::attrInt("axis", -1)}), {1, 3, 4, 4}, {weight("z", {1, 3, 4, 2})})
            .of("y") == Dims{1, 3, 4, 6});
  // Resize (opset 11+: X, roi, scales) with constant scales; Upsample with a scales input.
  CHECK(one(pb::node("Resize", {"x", "", "sc"}, {"y"}), {1, 3, 5, 6}, {pb::floatTensor("sc", {4}, {1, 1, 2, 1.5f})}).of("y") ==
        Dims{1, 3, 10, 9});
  CHECK(one(pb::node("Resize", {"x", "", "", "sz"}, {"y"}), {1, 3, 5, 6}, {ints64("sz", {1, 3, 7, 9})}).of("y") ==
        Dims{1, 3, 7, 9});
  CHECK(one(pb::node("Upsample", {"x", "sc"}, {"y"}), {1, 3, 5, 6}, {pb::floatTensor("sc", {4}, {1, 1, 2, 2})}).of("y") ==
        Dims{1, 3, 10, 12});
  CHECK(one(pb::node("Resize", {"x", "", "sc"}, {"y"}), {1, 3, 5, 6}).of("y") == Dims{-1});  // computed scales: unknown
  CHECK(one(pb::node("Flatten", {"x"}, {"y"}), {2, 3, 4, 5}).of("y") == Dims{2, 60});
  CHECK(one(pb::node("Flatten", {"x"}, {"y"}, "", {pb::attrInt("axis", 3)}), {2, 3, 4, 5}).of("y") == Dims{24, 5});
  CHECK(one(pb::node("Reshape", {"x", "s"}, {"y"}), {2, 3, 4, 5}, {ints64("s", {0, -1})}).of("y") == Dims{2, 60});
  CHECK(one(pb::node("Reshape", {"x", "s"}, {"y"}), {2, 3, 4, 5}, {ints64("s", {6, -1, 2})}).of("y") == Dims{6, 10, 2});
  CHECK(one(pb::node("Reshape", {"x", "s"}, {"y"}), {2, 3, 4, 5}, {ints64("s", {7, -1})}).of("y") == Dims{-1});
  CHECK(one(pb::node("Transpose", {"x"}, {"y"}, "", {pb::attrInts("perm", {0, 2, 3, 1})}), {2, 3, 4, 5}).of("y") ==
        Dims{2, 4, 5, 3});
  CHECK(one(pb::node("Squeeze", {"x", "ax"}, {"y"}), {2, 3, 1, 1}, {ints64("ax", {2, 3})}).of("y") == Dims{2, 3});
  CHECK(one(pb::node("Unsqueeze", {"x", "ax"}, {"y"}), {2, 3}, {ints64("ax", {0, -1})}).of("y") == Dims{1, 2, 3, 1});
  CHECK(one(pb::node("Pad", {"x", "p"}, {"y"}), {1, 3, 4, 5}, {ints64("p", {0, 0, 1, 2, 0, 0, 3, 4})}).of("y") ==
        Dims{1, 3, 8, 11});
  CHECK(one(pb::node("Gemm", {"x", "w"}, {"y"}, "", {pb::attrInt("transB", 1)}), {2, 6}, {weight("w", {4, 6})}).of("y") ==
        Dims{2, 4});
  CHECK(one(pb::node("Gemm", {"x", "w"}, {"y"}, "", {pb::attrInt("transA", 1)}), {6, 2}, {weight("w", {6, 4})}).of("y") ==
        Dims{2, 4});
  CHECK(one(pb::node("MatMul", {"x", "w"}, {"y"}), {2, 7, 6}, {weight("w", {6, 4})}).of("y") == Dims{2, 7, 4});
  CHECK(one(pb::node("MatMul", {"x", "w"}, {"y"}), {7, 6}, {weight("w", {3, 6, 4})}).of("y") == Dims{3, 7, 4});
  CHECK(one(pb::node("MatMul", {"x", "w"}, {"y"}), {6}, {weight("w", {6, 4})}).of("y") == Dims{4});
  CHECK(one(pb::node("MatMul", {"x", "w"}, {"y"}), {2, 5}, {weight("w", {6, 4})}).of("y") == Dims{-1});
  CHECK(one(pb::node("Relu", {"x"}, {"y"}), {2, 5}).of("y") == Dims{2, 5});
  // Slice: clamped starts and ends, negative indices and steps, INT64_MAX as "to the end".
  const int64_t kEnd = INT64_MAX;
  CHECK(one(pb::node("Slice", {"x", "s", "e", "a", "st"}, {"y"}), {1, 12, 10, 10},
            {ints64("s", {0, 1}), ints64("e", {kEnd, kEnd}), ints64("a", {2, 3}), ints64("st", {2, 2})})
            .of("y") == Dims{1, 12, 5, 5});
  CHECK(one(pb::node("Slice", {"x", "s", "e"}, {"y"}), {4, 10}, {ints64("s", {1, -3}), ints64("e", {100, -1})}).of("y") ==
        Dims{3, 2});
  CHECK(one(pb::node("Slice", {"x", "s", "e", "a", "st"}, {"y"}), {4, 10},
            {ints64("s", {-1}), ints64("e", {-kEnd}), ints64("a", {1}), ints64("st", {-3})})
            .of("y") == Dims{4, 4});  // 9, 6, 3, 0
  CHECK(one(pb::node("Slice", {"x"}, {"y"}, "",
                     {pb::attrInts("starts", {2}), pb::attrInts("ends", {5}), pb::attrInts("axes", {0})}),
            {8, 3})
            .of("y") == Dims{3, 3});  // opset < 10: attributes
  CHECK(one(pb::node("ConstantOfShape", {"s"}, {"y"}), {1}, {ints64("s", {1, 4, 6, 6})}).of("y") == Dims{1, 4, 6, 6});
  CHECK(one(pb::node("Identity", {"c"}, {"y"}), {1}).of("y") == Dims{-1});
  {
    pb::GraphBuilder g;
    g.input("x", {2, 9, 4});
    g.init(ints64("sp", {2, 3, 4}));
    g.add(pb::constantNode("k", weight("kv", {3, 1, 5})));
    g.add(pb::node("Split", {"x", "sp"}, {"p", "q", "r"}, "", {pb::attrInt("axis", 1)}));
    g.add(pb::node("Split", {"x"}, {"u", "v"}, "", {pb::attrInt("axis", -1)}));
    g.add(pb::node("Split", {"x"}, {"a", "b", "c"}, "", {pb::attrInt("axis", 1), pb::attrInts("split", {1, 1, 1})}));
    g.output("p");
    Inferred s(g);
    CHECK(s.of("k") == Dims{3, 1, 5});
    CHECK(s.of("p") == Dims{2, 2, 4});
    CHECK(s.of("q") == Dims{2, 3, 4});
    CHECK(s.of("r") == Dims{2, 4, 4});
    CHECK(s.of("u") == Dims{2, 9, 2});
    CHECK(s.of("v") == Dims{2, 9, 2});
    CHECK(s.of("a") == Dims{-1});  // the sizes do not add up to 9
  }
  CHECK(one(pb::node("NoSuchOp", {"x"}, {"y"}), {2, 5}).of("y") == Dims{-1});
}

TEST_CASE("shapes: macsOf for Conv, ConvTranspose, Gemm and MatMul", "[shapes]") {
  pb::GraphBuilder g;
  g.input("x", {2, 3, 10, 10});
  g.init(weight("w", {8, 3, 3, 3}));
  g.init(weight("wd", {8, 1, 3, 3}));
  g.init(weight("wt", {8, 4, 2, 2}));
  g.init(weight("wf", {5, 4 * 16 * 16}));
  g.init(weight("wm", {5, 6}));
  g.add(pb::node("Conv", {"x", "w"}, {"a"}, "conv", {pb::attrInts("pads", {1, 1, 1, 1})}));
  g.add(pb::node("Conv", {"a", "wd"}, {"b"}, "dw",
                 {pb::attrInt("group", 8), pb::attrInts("strides", {2, 2}), pb::attrInts("pads", {1, 1, 1, 1})}));
  g.add(pb::node("ConvTranspose", {"b", "wt"}, {"c"}, "up", {pb::attrInts("strides", {2, 2})}));
  g.add(pb::node("Flatten", {"c"}, {"f"}));
  g.add(pb::node("Gemm", {"f", "wf"}, {"h"}, "fc", {pb::attrInt("transB", 1)}));
  g.add(pb::node("MatMul", {"h", "wm"}, {"y"}, "mm"));
  g.output("y", {2, 6});
  Inferred s(g);
  auto found = ql::graph::findLayers(s.model.value());
  REQUIRE(found.ok());
  auto macs = [&](const std::string& name) {
    for (const auto& L : found->layers)
      if (L.name == name) return ql::graph::macsOf(L, s.shapes);
    FAIL("no layer " << name);
    return uint64_t{0};
  };
  CHECK(s.of("b") == Dims{2, 8, 5, 5});
  CHECK(s.of("c") == Dims{2, 4, 10, 10});
  CHECK(macs("conv") == uint64_t{2} * 10 * 10 * 8 * 3 * 9);
  CHECK(macs("dw") == uint64_t{2} * 5 * 5 * 8 * 1 * 9);
  CHECK(macs("up") == uint64_t{2} * 5 * 5 * 8 * 4 * 4);  // each input pixel times the whole kernel
  CHECK(s.of("f") == Dims{2, 400});
  CHECK(s.of("h") == Dims{-1});  // 400 features, not the 1024 wf reads: unknown, never guessed
  CHECK(macs("fc") == 0);
  CHECK(macs("mm") == 0);
}
