// Names visible in one graph (producers, consumers, constants) and the one place
// that classifies what consumes a value: layer discovery and CLE both use it.
#pragma once
#include <string>
#include <string_view>
#include <unordered_map>
#include <unordered_set>
#include <vector>

#include "graph/layers.hpp"
#include "onnx/model.hpp"

namespace ql::graph {

// A sub-graph's scope sees its parents' names too.
struct Scope {
  const Scope* parent = nullptr;
  const onnx::Graph* graph = nullptr;
  std::string path;
  std::unordered_map<std::string_view, const onnx::Tensor*> constants;
  std::unordered_map<std::string_view, const onnx::Node*> producers;
  std::unordered_map<std::string_view, std::vector<const onnx::Node*>> consumers;
  std::unordered_set<std::string_view> formals;  // a sub-graph's inputs: values at run time
  std::unordered_set<std::string_view> inputs;   // every graph input (main graph too)

  void index(const onnx::Graph& g);  // set `parent` first
  const onnx::Tensor* constant(std::string_view name) const;
  const onnx::Node* producer(std::string_view name) const;
  const std::vector<const onnx::Node*>& consumersOf(std::string_view name) const;
  // Whether anything in this graph or an enclosing one defines `name` (an initializer,
  // a node output, a graph input).
  bool defined(std::string_view name) const;
  bool isInput(std::string_view name) const;  // a graph input here or in an enclosing graph
};

std::string displayName(const onnx::Node& n, size_t index);  // name, or "<op>#<index>"
bool isOp(const onnx::Node* n, std::string_view op);         // standard-domain op of that type
std::string_view input(const onnx::Node& n, size_t i);       // empty when absent
std::string_view input(const onnx::Node& n, int i);          // empty when absent or kNoInput
// The path of a sub-graph held by attribute `attr` of node n (at `index` in the graph at
// `path`): "<path>/<node>/<attr>", with "[k]" for the k-th of a list of graphs (k >= 0).
std::string subgraphPath(const std::string& path, const onnx::Node& n, size_t index, std::string_view attr, int64_t k);

// A scalar constant: a one-element initializer / Constant tensor, or a Constant
// node's value_float / value_int. False when the value is not constant.
bool scalarConstant(const Scope& scope, std::string_view name, double* out);

// Classifies the consumers of `value` (BatchNorm, Relu, Relu6, Clip, SiLU, ...).
// Clip(0, 6) is ReLU6 whether its bounds are attributes (opset < 11) or inputs.
Follower classifyFollower(const Scope& scope, std::string_view value);

}  // namespace ql::graph
