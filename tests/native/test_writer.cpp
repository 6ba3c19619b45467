// ModelProto writer: an empty edit reproduces synthetic and real models byte for
// byte; each edit kind gives exactly the bytes stated by hand (built from the same
// encoded pieces as the input) and parses back to the intended model; bad edits and
// malformed bytes are errors. An edited real model is run through onnx.checker
// when python3-onnx is installed.
#include <algorithm>
#include <catch2/catch.hpp>
#include <cstdlib>
#include <cstring>
#include <filesystem>
#include <fstream>
#include <map>
#include <memory>
#include <string>
#include <vector>

#include "cle/cle.hpp"
#include "onnx/model.hpp"
#include "onnx/skim.hpp"
#include "onnx/tensor_data.hpp"
#include "onnx/writer.hpp"
#include "pb_writer.hpp"

using ql::ErrorCode;
using namespace ql::onnx;
namespace pb = pbw::onnx;
namespace fs = std::filesystem;
using pbw::Msg;

namespace {

// Owns bytes and the model that borrows them (not copyable: the views would dangle).
struct Parsed {
  std::vector<uint8_t> bytes;
  ql::Result<Model> result;
  explicit Parsed(std::vector<uint8_t> b) : bytes(std::move(b)), result(parseModel(bytes.data(), bytes.size())) {}
  Parsed(const Parsed&) = delete;
  const Model& model() const { return result.value(); }
  const Graph& graph() const { return result.value().graph; }
  ql::Result<std::vector<uint8_t>> write(const GraphEdit& e) const { return writeModel(bytes.data(), bytes.size(), model(), e); }
};

std::string field(uint32_t number, const Msg& m) { return Msg().msg(number, m).b; }
std::string strField(uint32_t number, std::string_view s) { return Msg().str(number, s).b; }
std::string metaField(std::string_view k, std::string_view v) { return field(14, Msg().str(1, k).str(2, v)); }

// A model as a list of whole encoded fields, so a test states the exact expected
// output by editing the list: model fields before the graph, graph fields, model fields after.
struct Pieces {
  std::vector<std::string> head = {Msg().i64(1, 8).b}, graph, tail;
  std::vector<uint8_t> bytes() const {
    Msg g, m;
    for (const auto& s : graph) g.raw(s);
    for (const auto& s : head) m.raw(s);
    m.msg(7, g);
    for (const auto& s : tail) m.raw(s);
    return pb::toVec(m);
  }
};

Msg node0() {
  Msg n;
  n.str(1, "x").str(1, "w").str(1, "b").str(2, "y").str(3, "conv0").str(4, "Conv");
  n.msg(5, pb::attrInts("kernel_shape", {1, 1})).msg(5, pb::attrInt("group", 1)).str(6, "node doc").unknownFields(900);
  return n;
}

Msg subgraph() {
  pb::GraphBuilder g;
  g.name = "then";
  g.add(pb::node("Identity", {"w"}, {"t"})).init(pb::floatTensor("w", {1}, {9})).output("t");
  return g.build();
}

// Graph pieces: 0-2 nodes, 3 name, 4-7 initializers w b e q, 8 doc, 9-11 inputs x w b,
// 12-13 outputs, 14-15 value_info y z, 16 unknown fields. Model: metadata a=1, b=2 ahead, a=3 last.
Pieces rich() {
  Pieces p;
  p.head = {Msg().i64(1, 8).b, strField(2, "pbw"), field(8, Msg().str(1, "").i64(2, 13)), metaField("a", "1"),
            metaField("b", "2")};
  Msg typed;
  typed.unpackedInts(1, {2}).i32(2, pb::kFloat).unpackedFloats(4, {0.5f, -0.5f}).str(8, "b");
  p.graph = {
      field(1, node0()),
      field(1, pb::node("Relu", {"y"}, {"z"}, "relu0")),
      field(1, pb::node("If", {"c"}, {"o"}, "if0", {pb::attrGraph("then_branch", subgraph())})),
      strField(2, "rich"),
      field(5, pb::floatTensor("w", {2, 1, 1, 1}, {1, 2})),
      field(5, typed),
      field(5, pb::externalTensor("e", pb::kFloat, {2}, "e.bin", "0", "8")),
      field(5, pb::int8Tensor("q", {2}, {-1, 1}).str(12, "q doc").unknownFields(999)),
      strField(10, "graph doc"),
      field(11, pb::valueInfo("x", pb::kFloat, {1, 1, 1, 1})),
      field(11, pb::valueInfo("w", pb::kFloat, {2, 1, 1, 1})),
      field(11, pb::valueInfo("b", pb::kFloat, {2})),
      field(12, pb::valueInfo("z", pb::kFloat, {1, 2, 1, 1})),
      field(12, pb::valueInfo("o", pb::kFloat, {1})),
      field(13, pb::valueInfo("y", pb::kFloat, {1, 2, 1, 1})),
      field(13, pb::valueInfo("z", pb::kFloat, {1, 2, 1, 1})),
      Msg().unknownFields(900).b,
  };
  p.tail = {strField(6, "model doc"), Msg().unknownFields(950).b, metaField("a", "3")};
  return p;
}

std::vector<uint8_t> floatRaw(const std::vector<float>& v) {
  const std::string s = pb::floatBytes(v);
  return std::vector<uint8_t>(s.begin(), s.end());
}

std::vector<float> floatsOf(const Tensor& t) {
  auto r = readAsFloat(t);
  REQUIRE(r.ok());
  return r->take();
}

const Tensor* initializer(const Graph& g, std::string_view name) {
  for (const Tensor& t : g.initializers)
    if (t.name == name) return &t;
  return nullptr;
}

std::vector<std::string> names(const std::vector<ValueInfo>& vs) {
  std::vector<std::string> out;
  for (const auto& v : vs) out.emplace_back(v.name);
  return out;
}

std::vector<std::string> strings(const std::vector<std::string_view>& vs) {
  return std::vector<std::string>(vs.begin(), vs.end());
}

// Writes `edit`, checks the output is exactly `expected`, and returns it parsed.
std::unique_ptr<Parsed> writeExpecting(const Parsed& in, const GraphEdit& edit, const std::vector<uint8_t>& expected) {
  REQUIRE(in.result.ok());
  auto out = in.write(edit);
  INFO(out.error().describe());
  REQUIRE(out.ok());
  CHECK(out.value() == expected);
  auto back = std::make_unique<Parsed>(out.value());
  INFO(back->result.error().describe());
  REQUIRE(back->result.ok());
  return back;
}

std::vector<uint8_t> readFile(const fs::path& path) {
  std::ifstream f(path, std::ios::binary);
  if (!f) return {};
  return std::vector<uint8_t>((std::istreambuf_iterator<char>(f)), std::istreambuf_iterator<char>());
}

// The encoded NodeProtos of the main graph (Node carries no message view).
std::vector<std::string> nodeMessages(const Parsed& p) {
  using ql::wire::Field;
  using ql::wire::Reader;
  std::vector<std::string> out;
  Reader r({p.bytes.data(), p.bytes.size()}, p.bytes.data());
  Field f, g;
  while (!r.done()) {
    REQUIRE(r.next(&f));
    if (f.number != 7) continue;
    Reader gr(f.bytes, p.bytes.data());
    while (!gr.done()) {
      REQUIRE(gr.next(&g));
      if (g.number == 1) out.emplace_back(g.bytes.str());
    }
  }
  return out;
}

// ../shared/models/*/*.onnx and models/fetched/*.onnx.
std::vector<fs::path> realModels() {
  std::vector<fs::path> out;
  std::error_code ec;
  auto add = [&](const fs::path& dir) {
    for (const auto& e : fs::directory_iterator(dir, ec))
      if (e.is_regular_file() && e.path().extension() == ".onnx") out.push_back(e.path());
  };
  const fs::path shared = fs::path(QL_SOURCE_DIR) / ".." / "shared" / "models",
                 fetched = fs::path(QL_SOURCE_DIR) / "models" / "fetched";
  if (fs::is_directory(shared, ec)) {
    for (const auto& e : fs::directory_iterator(shared, ec))
      if (e.is_directory()) add(e.path());
  } else {
    WARN("skipped: " << shared.string() << " is not available");
  }
  if (fs::is_directory(fetched, ec))
    add(fetched);
  else
    WARN("skipped: " << fetched.string() << " is not available");
  std::sort(out.begin(), out.end());
  return out;
}

}  // namespace

TEST_CASE("writer: an empty edit reproduces synthetic models byte for byte", "[writer]") {
  std::vector<std::vector<uint8_t>> models = {
      rich().bytes(),
      // graph first, then a local function and metadata
      pb::toVec(
          Msg()
              .msg(7, pb::GraphBuilder().build())
              .i64(1, 8)
              .msg(25, Msg().str(1, "f").str(4, "x").str(5, "y").msg(7, pb::node("Identity", {"x"}, {"y"})).str(10, "local"))
              .raw(metaField("k", "v"))),
      pb::toVec(pb::model(Msg())),  // empty graph
      pb::toVec(pb::model(pb::GraphBuilder().add(pb::node("Relu", {"a"}, {"b"})).input("a").output("b").build())),
  };
  for (const auto& bytes : models) {
    Parsed in(bytes);
    INFO(in.result.error().describe());
    REQUIRE(in.result.ok());
    auto out = in.write({});
    REQUIRE(out.ok());
    CHECK(out.value() == bytes);
  }
}

TEST_CASE("writer: a non-minimal graph length is re-encoded minimally", "[writer]") {
  const std::string graph = pb::GraphBuilder().add(pb::node("Relu", {"a"}, {"b"})).build().b;
  REQUIRE(graph.size() < 0x80);
  Msg m;
  m.i64(1, 8).tagOnly(7, pbw::kLen).raw(std::string{static_cast<char>(0x80 | graph.size()), '\0'}).raw(graph);
  Parsed in(pb::toVec(m));
  REQUIRE(in.result.ok());
  auto out = in.write({});
  REQUIRE(out.ok());
  CHECK(out.value() == pb::toVec(Msg().i64(1, 8).bytes(7, graph)));  // one byte shorter, otherwise identical
}

TEST_CASE("writer: an empty edit reproduces every real model byte for byte", "[writer]") {
  size_t n = 0;
  for (const fs::path& path : realModels()) {
    Parsed in(readFile(path));
    INFO(path.string());
    REQUIRE(in.result.ok());
    auto out = in.write({});
    REQUIRE(out.ok());
    // a bool, so a failure reports the first difference rather than megabytes of bytes
    const auto diff = std::mismatch(out->begin(), out->end(), in.bytes.begin(), in.bytes.end());
    INFO("sizes " << out->size() << " and " << in.bytes.size() << ", first difference at " << (diff.first - out->begin()));
    CHECK((out.value() == in.bytes));
    ++n;
  }
  if (n == 0) WARN("skipped: no real models found");
}

TEST_CASE("writer: removing nodes drops exactly those nodes", "[writer]") {
  Pieces p = rich();
  Parsed in(p.bytes());
  GraphEdit e;
  e.removeNodes = {1, 0};
  Pieces want = p;
  want.graph.erase(want.graph.begin(), want.graph.begin() + 2);
  auto back = writeExpecting(in, e, want.bytes());
  const Graph& g = back->graph();
  REQUIRE(g.nodes.size() == 1);
  CHECK(g.nodes[0].opType == "If");
  REQUIRE(g.nodes[0].attributes.size() == 1);
  REQUIRE(g.nodes[0].attributes[0].g);
  CHECK(g.nodes[0].attributes[0].g->nodes.size() == 1);
  CHECK(g.initializers.size() == 4);
}

TEST_CASE("writer: editing nodes replaces op_type, inputs, outputs and drops attributes", "[writer]") {
  Pieces p = rich();
  Parsed in(p.bytes());
  GraphEdit e;
  NodeEdit conv;
  conv.index = 0;
  conv.opType = "ConvX";
  conv.inputs = std::vector<std::string>{"x", "w"};
  conv.outputs = std::vector<std::string>{"y2"};
  conv.dropAttributes = {"group", "absent"};
  NodeEdit iff;
  iff.index = 2;
  iff.outputs = std::vector<std::string>{"o1", "o2"};
  e.editNodes = {iff, conv};

  Msg n0;  // every other field of node 0 stays, in its place
  n0.str(1, "x").str(1, "w").str(2, "y2").str(3, "conv0").str(4, "ConvX");
  n0.msg(5, pb::attrInts("kernel_shape", {1, 1})).str(6, "node doc").unknownFields(900);
  Msg n2;
  n2.str(1, "c").str(2, "o1").str(2, "o2").str(3, "if0").str(4, "If").msg(5, pb::attrGraph("then_branch", subgraph()));
  Pieces want = p;
  want.graph[0] = field(1, n0);
  want.graph[2] = field(1, n2);
  auto back = writeExpecting(in, e, want.bytes());

  const Graph& g = back->graph();
  REQUIRE(g.nodes.size() == 3);
  CHECK(g.nodes[0].opType == "ConvX");
  CHECK(strings(g.nodes[0].inputs) == std::vector<std::string>{"x", "w"});
  CHECK(strings(g.nodes[0].outputs) == std::vector<std::string>{"y2"});
  CHECK(g.nodes[0].name == "conv0");
  CHECK(g.nodes[0].docString == "node doc");
  REQUIRE(g.nodes[0].attributes.size() == 1);
  CHECK(g.nodes[0].attributes[0].name == "kernel_shape");
  CHECK(g.nodes[0].attributes[0].ints == std::vector<int64_t>{1, 1});
  CHECK(g.nodes[1].opType == "Relu");
  CHECK(strings(g.nodes[2].outputs) == std::vector<std::string>{"o1", "o2"});
  CHECK(g.nodes[2].attributes.size() == 1);
}

TEST_CASE("writer: new node inputs go where the first input was, or first", "[writer]") {
  // node 0 has no inputs; node 1 interleaves inputs with other fields
  Msg interleaved;
  interleaved.str(2, "s").str(1, "a").str(3, "add0").str(1, "b").str(4, "Add");
  Pieces p;
  p.graph = {field(1, pb::constantNode("k", pb::floatTensor("v", {1}, {1}))), field(1, interleaved)};
  Parsed in(p.bytes());
  GraphEdit e;
  NodeEdit a, b;
  a.index = 0;
  a.inputs = std::vector<std::string>{"i"};
  b.index = 1;
  b.inputs = std::vector<std::string>{"c", "d"};
  b.outputs = std::vector<std::string>{};
  e.editNodes = {a, b};
  Pieces want = p;
  want.graph[0] = field(1, Msg().str(1, "i").raw(pb::constantNode("k", pb::floatTensor("v", {1}, {1})).b));
  want.graph[1] = field(1, Msg().str(1, "c").str(1, "d").str(3, "add0").str(4, "Add"));
  auto back = writeExpecting(in, e, want.bytes());
  CHECK(strings(back->graph().nodes[0].inputs) == std::vector<std::string>{"i"});
  CHECK(strings(back->graph().nodes[1].inputs) == std::vector<std::string>{"c", "d"});
  CHECK(back->graph().nodes[1].outputs.empty());
}

TEST_CASE("writer: replaced initializers get new data and keep their other fields", "[writer]") {
  Pieces p = rich();
  Parsed in(p.bytes());
  GraphEdit e;
  e.replaceInitializers = {
      {"w", {2}, kFloat, floatRaw({3, 4})},     // raw -> raw, new shape
      {"b", {2}, kFloat, floatRaw({7, 8})},     // float_data -> raw
      {"e", {2}, kFloat, floatRaw({5, 6})},     // external -> inline
      {"q", {3}, kFloat, floatRaw({1, 2, 3})},  // int8 -> float, doc and unknown fields kept
  };
  Pieces want = p;
  want.graph[4] = field(5, pb::floatTensor("w", {2}, {3, 4}));
  want.graph[5] = field(5, pb::floatTensor("b", {2}, {7, 8}));
  want.graph[6] = field(5, pb::floatTensor("e", {2}, {5, 6}));
  want.graph[7] = field(5, pb::floatTensor("q", {3}, {1, 2, 3}).str(12, "q doc").unknownFields(999));
  want.graph[10] = field(11, pb::valueInfo("w", pb::kFloat, {2}));  // w's graph input declared {2, 1, 1, 1}; b's {2} stays
  auto back = writeExpecting(in, e, want.bytes());
  const Graph& g = back->graph();
  REQUIRE(g.initializers.size() == 4);
  CHECK(floatsOf(g.initializers[0]) == std::vector<float>{3, 4});
  CHECK(floatsOf(g.initializers[1]) == std::vector<float>{7, 8});
  CHECK(floatsOf(g.initializers[2]) == std::vector<float>{5, 6});
  CHECK_FALSE(g.initializers[2].external);
  CHECK(floatsOf(g.initializers[3]) == std::vector<float>{1, 2, 3});
  CHECK(g.initializers[3].docString == "q doc");
  CHECK(g.initializers[3].dims == std::vector<int64_t>{3});
  // main-graph edits only: the sub-graph's own "w" is untouched
  CHECK(floatsOf(g.nodes[2].attributes[0].g->initializers[0]) == std::vector<float>{9});
}

TEST_CASE("writer: a replaced initializer's graph input follows its new dims", "[writer]") {
  // Old exporters list weights as graph inputs with their shape: a runtime refuses an
  // initializer whose dims contradict it, so the declared type follows the new dims.
  Pieces p = rich();
  p.graph[10] = field(11, Msg().str(3, "w doc").raw(pb::valueInfo("w", pb::kFloat, {2, 1, 1, 1}).b).unknownFields(990));
  Parsed in(p.bytes());
  GraphEdit e;
  e.replaceInitializers = {{"w", {3, 1}, kFloat, floatRaw({1, 2, 3})}, {"b", {2}, kFloat, floatRaw({7, 8})}};
  Pieces want = p;
  want.graph[4] = field(5, pb::floatTensor("w", {3, 1}, {1, 2, 3}));
  want.graph[5] = field(5, pb::floatTensor("b", {2}, {7, 8}));
  // The doc string and unknown fields stay where they were, the type is replaced in place.
  Msg shape;
  shape.msg(1, Msg().i64(1, 3)).msg(1, Msg().i64(1, 1));
  Msg type;
  type.msg(1, Msg().i32(1, pb::kFloat).msg(2, shape));
  want.graph[10] = field(11, Msg().str(3, "w doc").str(1, "w").msg(2, type).unknownFields(990));
  auto back = writeExpecting(in, e, want.bytes());
  const auto& inputs = back->graph().inputs;
  REQUIRE(inputs.size() == 3);
  CHECK(inputs[1].name == "w");
  CHECK(inputs[1].docString == "w doc");
  REQUIRE(inputs[1].shape.size() == 2);
  CHECK(inputs[1].shape[0].value == 3);
  CHECK(inputs[1].shape[1].value == 1);
  // b's declared {2} agrees with its new dims: its bytes are the input's.
  CHECK(p.graph[11] == want.graph[11]);
}

TEST_CASE("writer: untouched nodes and initializers are byte-identical", "[writer]") {
  Parsed in(rich().bytes());
  GraphEdit e;
  e.replaceInitializers = {{"b", {1, 2}, kFloat, floatRaw({7, 8})}};
  NodeEdit relu;
  relu.index = 1;
  relu.opType = "Sigmoid";
  e.editNodes = {relu};
  auto out = in.write(e);
  REQUIRE(out.ok());
  Parsed back(out.value());
  REQUIRE(back.result.ok());
  const Graph &a = in.graph(), &b = back.graph();
  REQUIRE(b.initializers.size() == a.initializers.size());
  for (size_t i : {0, 2, 3}) CHECK(b.initializers[i].message.str() == a.initializers[i].message.str());
  CHECK(b.initializers[1].message.str() != a.initializers[1].message.str());
  CHECK(b.initializers[1].dims == std::vector<int64_t>{1, 2});
  REQUIRE(b.nodes.size() == 3);
  CHECK(b.nodes[1].opType == "Sigmoid");
  const auto nodesIn = nodeMessages(in), nodesOut = nodeMessages(back);
  REQUIRE(nodesOut.size() == 3);
  CHECK(nodesOut[0] == nodesIn[0]);
  CHECK(nodesOut[1] != nodesIn[1]);
  CHECK(nodesOut[2] == nodesIn[2]);
  CHECK(b.nodes[2].attributes[0].g->initializers[0].message.str() == a.nodes[2].attributes[0].g->initializers[0].message.str());
}

TEST_CASE("writer: removing initializers also removes their graph inputs; value_info removal", "[writer]") {
  Pieces p = rich();
  Parsed in(p.bytes());
  GraphEdit e;
  e.removeInitializers = {"b", "w"};
  e.removeValueInfo = {"y"};
  Pieces want = p;
  for (int i : {14, 11, 10, 5, 4}) want.graph.erase(want.graph.begin() + i);
  auto back = writeExpecting(in, e, want.bytes());
  const Graph& g = back->graph();
  CHECK(g.initializers.size() == 2);
  CHECK(initializer(g, "w") == nullptr);
  CHECK(initializer(g, "b") == nullptr);
  CHECK(names(g.inputs) == std::vector<std::string>{"x"});
  CHECK(names(g.valueInfo) == std::vector<std::string>{"z"});
  CHECK(names(g.outputs) == std::vector<std::string>{"z", "o"});
  // the sub-graph's initializer named "w" stays
  CHECK(g.nodes[2].attributes[0].g->initializers.size() == 1);
}

TEST_CASE("writer: added initializers follow the last initializer, or end the graph", "[writer]") {
  const std::vector<uint8_t> scalar = floatRaw({1.5f});
  const TensorData s{"s", {}, kFloat, scalar};
  const TensorData k{"k", {3}, kInt8, {0xff, 0, 1}};

  SECTION("after the last initializer") {
    Pieces p = rich();
    Parsed in(p.bytes());
    GraphEdit e;
    e.addInitializers = {s, k};
    Pieces want = p;
    want.graph.insert(want.graph.begin() + 8, {field(5, pb::rawTensor("s", pb::kFloat, {}, pb::floatBytes({1.5f}))),
                                               field(5, pb::int8Tensor("k", {3}, {-1, 0, 1}))});
    auto back = writeExpecting(in, e, want.bytes());
    const Graph& g = back->graph();
    REQUIRE(g.initializers.size() == 6);
    CHECK(g.initializers[4].name == "s");
    CHECK(g.initializers[4].dims.empty());
    CHECK(floatsOf(g.initializers[4]) == std::vector<float>{1.5f});
    CHECK(g.initializers[5].name == "k");
    CHECK(floatsOf(g.initializers[5]) == std::vector<float>{-1, 0, 1});
  }
  SECTION("in place of a removed last initializer, with a removed name reused") {
    Pieces p = rich();
    Parsed in(p.bytes());
    GraphEdit e;
    e.removeInitializers = {"q"};
    TensorData q{"q", {1}, kFloat, floatRaw({4})};
    e.addInitializers = {q};
    Pieces want = p;
    want.graph[7] = field(5, pb::floatTensor("q", {1}, {4}));
    auto back = writeExpecting(in, e, want.bytes());
    CHECK(floatsOf(*initializer(back->graph(), "q")) == std::vector<float>{4});
  }
  SECTION("at the end of a graph without initializers") {
    Pieces p;
    p.graph = {field(1, pb::node("Relu", {"a"}, {"b"})), strField(2, "g")};
    Parsed in(p.bytes());
    GraphEdit e;
    e.addInitializers = {k};
    Pieces want = p;
    want.graph.push_back(field(5, pb::int8Tensor("k", {3}, {-1, 0, 1})));
    auto back = writeExpecting(in, e, want.bytes());
    CHECK(back->graph().initializers.size() == 1);
  }
}

TEST_CASE("writer: metadata entries replace the same key or are appended", "[writer]") {
  SECTION("model with metadata") {
    Pieces p = rich();
    Parsed in(p.bytes());
    GraphEdit e;
    e.metadata = {{"c", "new"}, {"a", "x"}};
    Pieces want = p;
    want.head[3] = metaField("a", "x");    // first "a" replaced in place
    want.tail[2] = metaField("c", "new");  // later "a" dropped; new keys follow the last entry
    auto back = writeExpecting(in, e, want.bytes());
    const auto& md = back->model().metadata;
    REQUIRE(md.size() == 3);
    CHECK(md[0] == StringPair{"a", "x"});
    CHECK(md[1] == StringPair{"b", "2"});
    CHECK(md[2] == StringPair{"c", "new"});
  }
  SECTION("model without metadata") {
    Pieces p;
    p.head = {Msg().i64(1, 8).b};
    p.tail = {strField(6, "doc")};
    Parsed in(p.bytes());
    GraphEdit e;
    e.metadata = {{"quantlens", "1"}, {"", ""}};
    Pieces want = p;
    want.tail.push_back(metaField("quantlens", "1"));
    want.tail.push_back(metaField("", ""));
    auto back = writeExpecting(in, e, want.bytes());
    CHECK(back->model().metadata.size() == 2);
  }
}

TEST_CASE("writer: edits that do not fit the model are INVALID_ARGUMENT", "[writer]") {
  Parsed in(rich().bytes());
  REQUIRE(in.result.ok());
  auto expectInvalid = [&](const GraphEdit& e, const char* needle) {
    auto out = in.write(e);
    REQUIRE_FALSE(out.ok());
    CHECK(out.error().code == ErrorCode::InvalidArgument);
    CHECK_THAT(out.error().message, Catch::Contains(needle));
  };
  GraphEdit e;
  e.removeNodes = {3};
  expectInvalid(e, "cannot remove node 3");
  e = {};
  e.editNodes.push_back({});
  e.editNodes[0].index = 7;
  expectInvalid(e, "cannot edit node 7");
  e.editNodes[0].index = 1;
  e.removeNodes = {1};
  expectInvalid(e, "both removed and edited");
  e = {};
  e.editNodes.resize(2);
  expectInvalid(e, "edited twice");
  e = {};
  e.replaceInitializers = {{"nope", {1}, kFloat, floatRaw({1})}};
  expectInvalid(e, "no initializer has that name");
  e = {};
  e.removeInitializers = {"nope"};
  expectInvalid(e, "no initializer has that name");
  e = {};
  e.replaceInitializers = {{"w", {2, 2}, kFloat, floatRaw({1, 2, 3})}};
  expectInvalid(e, "12 bytes of raw data");
  e = {};
  e.replaceInitializers = {{"w", {2}, kFloat16, floatRaw({1, 2})}};
  expectInvalid(e, "need 4");
  e = {};
  e.replaceInitializers = {{"w", {-1}, kFloat, {}}};
  expectInvalid(e, "negative dimension");
  e = {};
  e.replaceInitializers = {{"w", {1}, kString, {1}}};
  expectInvalid(e, "no fixed-size raw form");
  e = {};
  e.replaceInitializers = {{"w", {1}, kFloat, floatRaw({1})}};
  e.removeInitializers = {"w"};
  expectInvalid(e, "both removed and replaced");
  e = {};
  e.addInitializers = {{"q", {1}, kFloat, floatRaw({1})}};
  expectInvalid(e, "already has that name");
  e = {};
  e.addInitializers = {{"", {1}, kFloat, floatRaw({1})}};
  expectInvalid(e, "has no name");
  e = {};
  e.removeValueInfo = {"x"};
  expectInvalid(e, "no value_info has that name");
  e = {};
  e.metadata = {{"k", "1"}, {"k", "2"}};
  expectInvalid(e, "given twice");

  // a Model parsed from other bytes
  Parsed other(pb::toVec(pb::model(pb::GraphBuilder().add(pb::node("Relu", {"a"}, {"b"})).build())));
  REQUIRE(other.result.ok());
  auto out = writeModel(in.bytes.data(), in.bytes.size(), other.model(), {});
  REQUIRE_FALSE(out.ok());
  CHECK(out.error().code == ErrorCode::InvalidArgument);
}

TEST_CASE("writer: truncated or corrupted bytes are INVALID_MODEL", "[writer]") {
  Pieces p = rich();
  Parsed in(p.bytes());
  REQUIRE(in.result.ok());
  size_t graphTag = 0, graphEnd = in.bytes.size();
  for (const auto& s : p.head) graphTag += s.size();
  for (const auto& s : p.tail) graphEnd -= s.size();
  GraphEdit edits[2];
  edits[1].removeNodes = {1};
  edits[1].replaceInitializers = {{"w", {1}, kFloat, floatRaw({1})}};
  edits[1].metadata = {{"k", "v"}};
  for (const GraphEdit& e : edits) {
    for (size_t cut = 0; cut < in.bytes.size(); ++cut) {
      // an exact-size copy, so ASan sees any read past the cut
      std::vector<uint8_t> bytes(in.bytes.begin(), in.bytes.begin() + static_cast<std::ptrdiff_t>(cut));
      auto out = writeModel(bytes.data(), bytes.size(), in.model(), e);
      INFO("cut at " << cut);
      if (cut >= graphEnd) {  // the graph is whole: a cut between fields leaves a valid model
        CHECK((out.ok() || out.error().code == ErrorCode::InvalidModel));
        continue;
      }
      REQUIRE_FALSE(out.ok());  // the graph or some of its nodes are lost
      CHECK_FALSE(out.error().message.empty());
      if (cut > graphTag) CHECK(out.error().code == ErrorCode::InvalidModel);
    }
  }
  // Bytes corrupted after parsing: an invalid wire type in a graph field's tag, and in
  // an edited node (untouched nodes are copied without being walked).
  const size_t node1 = in.graph().nodes[1].offset;
  for (size_t at : {node1 - 2, node1}) {
    std::vector<uint8_t> bytes = in.bytes;
    REQUIRE(bytes[at] == 0x0a);  // tag: field 1, length-delimited
    bytes[at] = 0x0f;            // wire type 7
    GraphEdit e;
    e.editNodes.push_back({});
    e.editNodes[0].index = 1;
    auto out = writeModel(bytes.data(), bytes.size(), in.model(), e);
    INFO("corrupt byte " << at);
    REQUIRE_FALSE(out.ok());
    CHECK(out.error().code == ErrorCode::InvalidModel);
    CHECK(out.error().offset == static_cast<int64_t>(at));
  }
}

TEST_CASE("writer: an edited real model parses back and passes onnx.checker", "[writer]") {
  const fs::path path =
      fs::path(QL_SOURCE_DIR) / ".." / "shared" / "models" / "pytorch" / "ultraface_version-RFB-320_simplified_bnfolded.onnx";
  Parsed in(readFile(path));
  if (in.bytes.empty()) {
    WARN("skipped: " << path.string() << " is not available");
    return;
  }
  REQUIRE(in.result.ok());
  const Graph& g = in.graph();
  REQUIRE(g.nodes.size() > 2);
  REQUIRE(g.nodes[0].opType == "Conv");
  REQUIRE(g.nodes[0].inputs.size() == 3);
  REQUIRE(g.nodes[1].opType == "Relu");
  REQUIRE(g.nodes[1].inputs[0] == g.nodes[0].outputs[0]);
  const std::string weight(g.nodes[0].inputs[1]), bias(g.nodes[0].inputs[2]);
  const std::string convOut(g.nodes[0].outputs[0]), reluOut(g.nodes[1].outputs[0]);
  const Tensor* w = initializer(g, weight);
  REQUIRE(w);
  // a typed (float_data) tensor other than the dropped bias, to turn into raw_data
  const Tensor* typed = nullptr;
  for (const Tensor& t : g.initializers)
    if (t.typedField == 4 && t.name != bias && !typed) typed = &t;
  REQUIRE(typed);

  // Conv without bias writes straight to the Relu's output; the Relu goes.
  GraphEdit e;
  e.removeNodes = {1};
  NodeEdit conv;
  conv.index = 0;
  conv.inputs = std::vector<std::string>{std::string(g.nodes[0].inputs[0]), weight};
  conv.outputs = std::vector<std::string>{reluOut};
  conv.dropAttributes = {"group", "dilations"};  // both at their defaults
  e.editNodes = {conv};
  e.removeInitializers = {bias};
  std::vector<float> halved = floatsOf(*w);
  for (float& v : halved) v *= 0.5f;
  e.replaceInitializers = {{weight, w->dims, kFloat, floatRaw(halved)},
                           {std::string(typed->name), typed->dims, kFloat, floatRaw(floatsOf(*typed))}};
  e.addInitializers = {{"quantlens_scale", {1}, kFloat, floatRaw({0.25f})}};
  e.removeValueInfo = {convOut};
  e.metadata = {{"quantlens", "edited"}};
  auto out = in.write(e);
  INFO(out.error().describe());
  REQUIRE(out.ok());
  Parsed back(out.value());
  REQUIRE(back.result.ok());
  const Graph& b = back.graph();
  REQUIRE(b.nodes.size() == g.nodes.size() - 1);
  CHECK(b.nodes[0].opType == "Conv");
  CHECK(strings(b.nodes[0].outputs) == std::vector<std::string>{reluOut});
  CHECK(b.nodes[0].inputs.size() == 2);
  CHECK(b.nodes[0].attribute("group") == nullptr);
  CHECK(b.nodes[0].attribute("kernel_shape") != nullptr);
  for (size_t i = 1; i < b.nodes.size(); ++i) CHECK(b.nodes[i].opType == g.nodes[i + 1].opType);
  CHECK(b.initializers.size() == g.initializers.size());  // one removed, one added
  CHECK(initializer(b, bias) == nullptr);
  CHECK(floatsOf(*initializer(b, weight)) == halved);
  CHECK(initializer(b, typed->name)->hasRawData);
  CHECK(floatsOf(*initializer(b, typed->name)) == floatsOf(*typed));
  CHECK(b.initializers.back().name == "quantlens_scale");
  CHECK(b.inputs.size() == g.inputs.size() - 1);
  for (const auto& v : b.inputs) CHECK(v.name != bias);
  CHECK(b.valueInfo.size() == g.valueInfo.size() - 1);
  REQUIRE(back.model().metadata.size() == 1);
  CHECK(back.model().metadata[0] == StringPair{"quantlens", "edited"});
  size_t same = 0;
  for (const Tensor& t : b.initializers) {
    const Tensor* o = initializer(g, t.name);
    if (o && t.name != weight && t.name != typed->name) same += o->message.str() == t.message.str();
  }
  CHECK(same == g.initializers.size() - 3);

  if (std::system("/usr/bin/python3 -c 'import onnx' >/dev/null 2>&1") != 0) {
    WARN("onnx.checker not run: python3-onnx is not installed");
    return;
  }
  const fs::path tmp =
      fs::temp_directory_path() / ("quantlens_writer_" + std::to_string(reinterpret_cast<uintptr_t>(&e)) + ".onnx");
  {
    std::ofstream f(tmp, std::ios::binary);
    f.write(reinterpret_cast<const char*>(out->data()), static_cast<std::streamsize>(out->size()));
  }
  const std::string cmd =
      "/usr/bin/python3 -c \"import onnx,sys; onnx.checker.check_model(onnx.load(sys.argv[1]), full_check=True)\" '" +
      tmp.string() + "'";
  const int rc = std::system(cmd.c_str());
  fs::remove(tmp);
  CHECK(rc == 0);
}

namespace {

// Reads from bytes in memory, counting what it was asked for.
class CountingReader : public ql::onnx::ByteReader {
 public:
  explicit CountingReader(const std::vector<uint8_t>& v) : v_(v) {}
  bool read(uint64_t offset, uint8_t* dst, uint64_t length) override {
    if (offset > v_.size() || length > v_.size() - offset) return false;
    std::copy_n(v_.data() + offset, length, dst);
    bytesRead += length;
    reads.emplace_back(offset, offset + length);
    return true;
  }
  // Bytes of [begin, end) read, counting each read that overlaps it.
  uint64_t bytesWithin(uint64_t begin, uint64_t end) const {
    uint64_t n = 0;
    for (const auto& [a, b] : reads) {
      const uint64_t lo = std::max(a, begin), hi = std::min(b, end);
      if (lo < hi) n += hi - lo;
    }
    return n;
  }
  uint64_t bytesRead = 0;
  std::vector<std::pair<uint64_t, uint64_t>> reads;

 private:
  const std::vector<uint8_t>& v_;
};

}  // namespace

TEST_CASE("written pieces: equalizing a skimmed model writes the bytes equalizing it whole writes, on every real model",
          "[writer][cle]") {
  size_t n = 0, changed = 0;
  for (const fs::path& path : realModels()) {
    const std::vector<uint8_t> bytes = readFile(path);
    INFO(path.string());
    auto whole = ql::cle::equalize(bytes.data(), bytes.size());
    CountingReader in(bytes);
    std::unique_ptr<uint8_t, void (*)(void*)> image(static_cast<uint8_t*>(std::malloc(bytes.size())), std::free);
    auto skimmed = ql::cle::equalize(in, bytes.size(), image.get());
    REQUIRE(whole.ok() == skimmed.ok());
    if (!whole.ok()) {
      CHECK(whole.error().describe() == skimmed.error().describe());
      continue;
    }
    image.reset();  // the skimmed result needs its image no more
    const std::vector<uint8_t> a = whole->bytes(bytes.data()), b = skimmed->bytes(bytes.data());
    CHECK(a.size() == whole->written.size);
    CHECK((a == b));
    // The pieces tile the file in order, and a read of any range gives the assembled bytes.
    uint64_t at = 0;
    for (const auto& p : skimmed->written.pieces) {
      CHECK(p.at == at);
      CHECK(p.length > 0);
      if (p.input) CHECK(p.offset + p.length <= bytes.size());
      at += p.length;
    }
    CHECK(at == b.size());
    const auto fromMemory = [&](uint64_t o, uint8_t* d, uint64_t len) {
      std::copy_n(bytes.data() + o, len, d);
      return true;
    };
    for (uint64_t k = 0; k < 64 && !b.empty(); ++k) {
      const uint64_t off = (k * 7919 * 104729) % b.size(), len = std::min<uint64_t>(b.size() - off, 1 + (k * 31337) % 100000);
      std::vector<uint8_t> got(len);
      REQUIRE(skimmed->written.read(off, got.data(), len, fromMemory));
      CHECK(std::equal(got.begin(), got.end(), b.begin() + static_cast<std::ptrdiff_t>(off)));
    }
    std::vector<uint8_t> past(2);
    CHECK_FALSE(skimmed->written.read(b.size() - 1, past.data(), 2, fromMemory));
    if (whole->report.changed()) ++changed;
    ++n;
  }
  if (n == 0) WARN("skipped: no real models found");
  if (n >= 3) CHECK(changed >= 2);
}

TEST_CASE("equalizing a skimmed model reads only the weights CLE changes: a layer in no sequence stays in the file",
          "[writer][cle]") {
  // x -> MatMul A -> Sigmoid -> MatMul B -> Relu -> MatMul C -> y: B and C form a sequence,
  // A is in none (Sigmoid does not commute with a per-channel scale).
  constexpr int64_t n = 256;
  std::vector<float> a(n * n), b(n * n), c(n * n);
  for (int64_t i = 0; i < n * n; ++i) {
    a[i] = static_cast<float>((i * 37 % 101) - 50) / 50.0f;
    b[i] = static_cast<float>((i * 53 % 97) - 48) / (i % n < 8 ? 2.0f : 40.0f);  // a few wide output columns
    c[i] = static_cast<float>((i * 71 % 89) - 44) / 44.0f;
  }
  pb::GraphBuilder g;
  g.input("x", {1, n}).output("y", {1, n});
  g.init(pb::floatTensor("A", {n, n}, a)).init(pb::floatTensor("B", {n, n}, b)).init(pb::floatTensor("C", {n, n}, c));
  g.add(pb::node("MatMul", {"x", "A"}, {"a"}, "mmA"));
  g.add(pb::node("Sigmoid", {"a"}, {"s"}, "sig"));
  g.add(pb::node("MatMul", {"s", "B"}, {"b"}, "mmB"));
  g.add(pb::node("Relu", {"b"}, {"r"}, "relu"));
  g.add(pb::node("MatMul", {"r", "C"}, {"y"}, "mmC"));
  const std::vector<uint8_t> bytes = pb::toVec(pb::model(g.build()));
  auto whole = ql::cle::equalize(bytes.data(), bytes.size());
  REQUIRE(whole.ok());
  // Where each weight's payload lies in the file.
  auto parsed = ql::onnx::parseModel(bytes.data(), bytes.size());
  REQUIRE(parsed.ok());
  std::map<std::string, std::pair<uint64_t, uint64_t>> payload;  // name -> [begin, end)
  for (const auto& t : parsed->graph.initializers) {
    const uint64_t at = static_cast<uint64_t>(t.rawData.data - bytes.data());
    payload[std::string(t.name)] = {at, at + t.rawData.size};
  }
  CountingReader in(bytes);
  std::unique_ptr<uint8_t, void (*)(void*)> image(static_cast<uint8_t*>(std::malloc(bytes.size())), std::free);
  auto skimmed = ql::cle::equalize(in, bytes.size(), image.get());
  REQUIRE(skimmed.ok());
  REQUIRE(skimmed->report.sequences.size() == 1);
  REQUIRE(skimmed->report.layers.size() == 2);
  CHECK(skimmed->report.layers[0].name == "mmB");
  CHECK(skimmed->report.layers[1].name == "mmC");
  CHECK((whole->bytes(bytes.data()) == skimmed->bytes(bytes.data())));
  // Of A's 256 KB no more was read than the structure reads touch (a chunk past its header,
  // once in the skim of the model and once in the skim that checks the written one), while
  // B's and C's were read whole.
  const auto readOf = [&](const std::string& name) { return in.bytesWithin(payload[name].first, payload[name].second); };
  CHECK(readOf("A") <= 2 * ql::onnx::SkimOptions{}.readChunk);
  CHECK(readOf("B") >= n * n * sizeof(float));
  CHECK(readOf("C") >= n * n * sizeof(float));
}

TEST_CASE("writer: external tensors go to one new data file, aligned, the replaced ones as their new bytes", "[writer]") {
  Pieces p;
  p.graph = {
      field(1, pb::node("Relu", {"x"}, {"y"}, "relu0")),
      field(5, pb::externalTensor("a", pb::kFloat, {2}, "x.bin", "100", "8")),
      field(5, pb::externalTensor("big", pb::kFloat, {262145}, "sub/y.bin", "0", "1048580")),  // over 1 MiB: aligned
      field(5, pb::floatTensor("c", {1}, {3})),                                                // inline: stays inline
      field(5, pb::externalTensor("d", pb::kFloat, {2}, "x.bin", "0", "8")),                   // replaced
      field(5, pb::externalTensor("r", pb::kFloat, {1}, "x.bin", "8", "4")),                   // removed
  };
  Parsed in(p.bytes());
  REQUIRE(in.result.ok());
  GraphEdit e;
  e.replaceInitializers = {{"d", {2}, kFloat, floatRaw({5, 6})}};
  e.removeInitializers = {"r"};
  e.dataLocation = "out.data";
  e.external = {{"a", "x.bin", 100, 8}, {"big", "sub/y.bin", 0, 1048580}, {"d", "x.bin", 0, 8}, {"r", "x.bin", 8, 4}};
  Pieces want = p;
  const uint64_t bigAt = kExternalAlignment, dAt = bigAt + 1048580;
  want.graph[1] = field(5, pb::externalTensor("a", pb::kFloat, {2}, "out.data", "0", "8"));
  want.graph[2] = field(5, pb::externalTensor("big", pb::kFloat, {262145}, "out.data", std::to_string(bigAt), "1048580"));
  want.graph[4] = field(5, pb::externalTensor("d", pb::kFloat, {2}, "out.data", std::to_string(dAt), "8"));
  want.graph.erase(want.graph.begin() + 5);
  auto back = writeExpecting(in, e, want.bytes());
  CHECK(back->graph().initializers.size() == 4);

  auto planned = planModel(in.bytes.data(), in.bytes.size(), in.model(), e);
  REQUIRE(planned.ok());
  const WrittenData& d = planned->data;
  CHECK(d.location == "out.data");
  CHECK(d.sources == std::vector<std::string>{"x.bin", "sub/y.bin"});
  CHECK(d.size == dAt + 8);
  REQUIRE(d.pieces.size() == 4);
  // a, copied from x.bin
  CHECK((d.pieces[0].input && d.pieces[0].at == 0 && d.pieces[0].file == 0 && d.pieces[0].offset == 100 &&
         d.pieces[0].length == 8));
  // zeros up to the alignment, then big from sub/y.bin
  CHECK((!d.pieces[1].input && d.pieces[1].at == 8 && d.pieces[1].length == bigAt - 8));
  CHECK(std::all_of(d.pieces[1].bytes, d.pieces[1].bytes + d.pieces[1].length, [](uint8_t b) { return b == 0; }));
  CHECK((d.pieces[2].input && d.pieces[2].at == bigAt && d.pieces[2].file == 1 && d.pieces[2].offset == 0));
  // d: its new bytes; r: left out
  REQUIRE((!d.pieces[3].input && d.pieces[3].at == dAt && d.pieces[3].length == 8));
  float v[2];
  std::memcpy(v, d.pieces[3].bytes, 8);
  CHECK((v[0] == 5 && v[1] == 6));

  // Without a data location the list is refused; a listed name must be an initializer.
  GraphEdit bad;
  bad.external = {{"a", "x.bin", 100, 8}};
  auto out = in.write(bad);
  REQUIRE_FALSE(out.ok());
  CHECK(out.error().code == ErrorCode::InvalidArgument);
  bad.dataLocation = "out.data";
  bad.external = {{"nope", "x.bin", 0, 8}};
  out = in.write(bad);
  REQUIRE_FALSE(out.ok());
  CHECK_THAT(out.error().message, Catch::Contains("not an initializer"));
}

namespace {
// External data files in memory, by normalised path; counts the bytes read of each.
class MapExternal : public ExternalReader {
 public:
  std::map<std::string, std::vector<uint8_t>> files;
  std::map<std::string, uint64_t> readBytes;
  std::map<std::string, std::vector<std::pair<uint64_t, uint64_t>>> reads;  // (offset, length) of each read
  bool read(const std::string& path, uint64_t offset, uint8_t* dst, uint64_t length, std::string* why) override {
    auto it = files.find(path);
    if (it == files.end() || offset + length > it->second.size()) {
      *why = "external data file '" + path + "' not found";
      return false;
    }
    std::copy_n(it->second.data() + offset, length, dst);
    readBytes[path] += length;
    reads[path].push_back({offset, length});
    return true;
  }
};
}  // namespace

TEST_CASE("equalizing external data: the weights, factors and bytes of the inline model; only what CLE reads is read",
          "[writer][cle]") {
  // x -> MatMul A -> Sigmoid -> MatMul B -> Relu -> MatMul C -> y, as above: B and C are
  // equalized, A is in no sequence. The same model with A, B, C (and a small bias) in w.bin.
  constexpr int64_t n = 256;
  std::vector<float> w[3] = {std::vector<float>(n * n), std::vector<float>(n * n), std::vector<float>(n * n)};
  for (int64_t i = 0; i < n * n; ++i) {
    w[0][i] = static_cast<float>((i * 37 % 101) - 50) / 50.0f;
    w[1][i] = static_cast<float>((i * 53 % 97) - 48) / (i % n < 8 ? 2.0f : 40.0f);
    w[2][i] = static_cast<float>((i * 71 % 89) - 44) / 44.0f;
  }
  std::vector<float> bias(n);
  for (int64_t i = 0; i < n; ++i) bias[i] = static_cast<float>(i % 7) / 7.0f;
  const char* names[3] = {"A", "B", "C"};
  auto build = [&](bool external, std::vector<uint8_t>* file) {
    pb::GraphBuilder g;
    g.input("x", {1, n}).output("y", {1, n});
    for (int k = 0; k < 3; ++k) {
      if (!external) {
        g.init(pb::floatTensor(names[k], {n, n}, w[k]));
        continue;
      }
      const std::string raw = pb::floatBytes(w[k]);
      g.init(
          pb::externalTensor(names[k], pb::kFloat, {n, n}, "./w.bin", std::to_string(file->size()), std::to_string(raw.size())));
      file->insert(file->end(), raw.begin(), raw.end());
    }
    if (external) {
      const std::string raw = pb::floatBytes(bias);
      g.init(pb::externalTensor("bias", pb::kFloat, {n}, "w.bin", std::to_string(file->size()), std::to_string(raw.size())));
      file->insert(file->end(), raw.begin(), raw.end());
    } else {
      g.init(pb::floatTensor("bias", {n}, bias));
    }
    g.add(pb::node("MatMul", {"x", "A"}, {"a"}, "mmA"));
    g.add(pb::node("Sigmoid", {"a"}, {"s"}, "sig"));
    g.add(pb::node("MatMul", {"s", "B"}, {"b0"}, "mmB"));
    g.add(pb::node("Add", {"b0", "bias"}, {"b"}, "addB"));
    g.add(pb::node("Relu", {"b"}, {"r"}, "relu"));
    g.add(pb::node("MatMul", {"r", "C"}, {"y"}, "mmC"));
    return pb::toVec(pb::model(g.build()));
  };
  std::vector<uint8_t> dataFile;
  const std::vector<uint8_t> inlineBytes = build(false, nullptr), extBytes = build(true, &dataFile);
  auto inl = ql::cle::equalize(inlineBytes.data(), inlineBytes.size());
  REQUIRE(inl.ok());
  MapExternal files;
  files.files["w.bin"] = dataFile;
  ql::cle::ExternalIo io{&files, "eq.onnx.data"};
  CountingReader in(extBytes);
  std::vector<uint8_t> image(extBytes.size());
  auto ext = ql::cle::equalize(in, extBytes.size(), image.data(), {}, {}, &io);
  INFO((ext.ok() ? "" : ext.error().describe()));
  REQUIRE(ext.ok());
  REQUIRE(ext->report.layers.size() == 2);
  for (size_t k = 0; k < 2; ++k) {
    CHECK(ext->report.layers[k].name == inl->report.layers[k].name);
    CHECK(ext->report.layers[k].outScale == inl->report.layers[k].outScale);
    CHECK(ext->report.layers[k].inScale == inl->report.layers[k].inScale);
  }
  // Read: B and C (CLE changes them; held, as small, so read once) and the small bias; A
  // stays in the file.
  CHECK(files.readBytes["w.bin"] == 2 * n * n * 4 + n * 4);
  // Without a budget for held copies, B and C are read again a piece at a time for each
  // of CLE's passes over them: still none of A, and whole passes; the same files.
  {
    MapExternal again;
    again.files["w.bin"] = dataFile;
    ql::cle::ExternalIo io0{&again, "eq.onnx.data"};
    CountingReader in0(extBytes);
    std::vector<uint8_t> image0(extBytes.size());
    ql::cle::Options streamAll;
    streamAll.holdBytes = 0;
    auto ext0 = ql::cle::equalize(in0, extBytes.size(), image0.data(), streamAll, {}, &io0);
    REQUIRE(ext0.ok());
    CHECK(again.readBytes["w.bin"] > 2 * n * n * 4 + n * 4);
    for (const auto& [offset, length] : again.reads["w.bin"]) CHECK(offset >= n * n * 4);  // none of A (bytes [0, n n 4))
    CHECK((again.readBytes["w.bin"] - n * 4) % (n * n * 4) == 0);                          // whole passes over B and C
    CHECK(ext0->bytes(extBytes.data()) == ext->bytes(extBytes.data()));
    auto assemble = [&](const ql::cle::Equalized& e) {  // the new data file, from its pieces
      std::vector<uint8_t> out(e.written.data.size);
      for (const auto& p : e.written.data.pieces) {
        if (p.input)
          std::copy_n(dataFile.data() + p.offset, p.length, out.data() + p.at);
        else
          std::copy_n(p.bytes, p.length, out.data() + p.at);
        if (p.transform) p.transform->apply(p.transformAt, out.data() + p.at, p.length);
      }
      return out;
    };
    CHECK(assemble(ext0.value()) == assemble(ext.value()));
  }
  // The new data file: A copied through, B, C and the bias as the inline model writes them.
  const WrittenData& d = ext->written.data;
  CHECK(d.location == "eq.onnx.data");
  CHECK(d.sources == std::vector<std::string>{"w.bin"});
  const std::vector<uint8_t> inlineOut = inl->bytes(inlineBytes.data());
  auto back = parseModel(inlineOut.data(), inlineOut.size());
  REQUIRE(back.ok());
  std::vector<uint8_t> data(d.size);
  for (const auto& p : d.pieces) {
    if (p.input)
      std::copy_n(dataFile.data() + p.offset, p.length, data.data() + p.at);
    else
      std::copy_n(p.bytes, p.length, data.data() + p.at);
    if (p.transform) p.transform->apply(p.transformAt, data.data() + p.at, p.length);  // a changed weight
  }
  const std::vector<uint8_t> extOut = ext->bytes(extBytes.data());
  auto extModel = parseModel(extOut.data(), extOut.size());
  REQUIRE(extModel.ok());
  for (const auto& t : back->graph.initializers) {
    const Tensor* e = initializer(extModel->graph, t.name);
    REQUIRE(e);
    INFO(std::string(t.name));
    if (!e->external) {  // a tensor CLE added stays inline
      CHECK(std::equal(t.rawData.data, t.rawData.data + t.rawData.size, e->rawData.data, e->rawData.data + e->rawData.size));
      continue;
    }
    auto ref = externalRef(*e);
    REQUIRE(ref.ok());
    CHECK(ref->location == "eq.onnx.data");
    REQUIRE(ref->offset + ref->length <= data.size());
    CHECK(std::equal(t.rawData.data, t.rawData.data + t.rawData.size, data.data() + ref->offset,
                     data.data() + ref->offset + ref->length));
  }

  // A missing data file is MISSING_EXTERNAL_DATA naming it; nothing is planned.
  MapExternal none;
  ql::cle::ExternalIo missing{&none, "eq.onnx.data"};
  CountingReader in2(extBytes);
  auto lost = ql::cle::equalize(in2, extBytes.size(), image.data(), {}, {}, &missing);
  REQUIRE_FALSE(lost.ok());
  CHECK(lost.error().code == ErrorCode::MissingExternalData);
  CHECK_THAT(lost.error().message, Catch::Contains("'w.bin'"));

  // The data file's name must be a plain file name, when there is external data to write.
  for (const char* bad : {"", "sub/eq.data", "..", "C:eq.data"}) {
    ql::cle::ExternalIo named{&files, bad};
    CountingReader in3(extBytes);
    auto refused = ql::cle::equalize(in3, extBytes.size(), image.data(), {}, {}, &named);
    REQUIRE_FALSE(refused.ok());
    CHECK(refused.error().code == ErrorCode::InvalidArgument);
  }
  ql::cle::ExternalIo unused{&files, "sub/eq.data"};
  auto inlineStill = ql::cle::equalize(inlineBytes.data(), inlineBytes.size(), {}, &unused);
  REQUIRE(inlineStill.ok());
  CHECK(inlineStill->written.data.location.empty());
  CHECK((inlineStill->bytes(inlineBytes.data()) == inl->bytes(inlineBytes.data())));
}
