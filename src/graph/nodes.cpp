#include "graph/nodes.hpp"

#include <unordered_set>

#include "graph/scope.hpp"

namespace ql::graph {

namespace {

void walk(const onnx::Graph& g, const std::string& path, int64_t owner, NodeList* out) {
  for (size_t idx = 0; idx < g.nodes.size(); ++idx) {
    const onnx::Node& n = g.nodes[idx];
    const int64_t self = static_cast<int64_t>(out->nodes.size());
    NodeEntry e;
    e.name = displayName(n, idx);
    e.op = n.opType;
    e.domain = n.domain;
    e.inputs = n.inputs;
    e.outputs = n.outputs;
    e.path = path;
    e.owner = owner;
    out->nodes.push_back(std::move(e));
    for (const auto& a : n.attributes) {
      if (a.g) walk(*a.g, subgraphPath(path, n, idx, a.name, -1), self, out);
      for (size_t k = 0; k < a.graphs.size(); ++k)
        walk(a.graphs[k], subgraphPath(path, n, idx, a.name, static_cast<int64_t>(k)), self, out);
    }
  }
}

}  // namespace

NodeList listNodes(const onnx::Graph& main) {
  NodeList out;
  walk(main, "", -1, &out);
  std::unordered_set<std::string_view> stored;
  for (const auto& t : main.initializers) stored.insert(t.name);
  for (const auto& v : main.inputs)
    if (!stored.count(v.name)) out.inputs.push_back(v.name);
  for (const auto& v : main.outputs) out.outputs.push_back(v.name);
  return out;
}

}  // namespace ql::graph
