// Every node of a model, sub-graphs included, as a flat list in the order layer discovery
// walks them (a node, then the sub-graphs of its attributes, depth first): what the graph
// view draws. Names and tensor names are views into the model; nothing is computed.
#pragma once
#include <cstdint>
#include <string>
#include <string_view>
#include <vector>

#include "onnx/model.hpp"

namespace ql::graph {

struct NodeEntry {
  std::string name;                      // displayName: the node's name, or "<op>#<index in its graph>"
  std::string_view op, domain;           // op type and domain ("" for the standard one)
  std::vector<std::string_view> inputs;  // tensor names as written ("" for an absent optional input)
  std::vector<std::string_view> outputs;
  std::string path;    // enclosing sub-graph ("loop/body"), as graph::Layer::path; empty in the main graph
  int64_t owner = -1;  // position in the list of the node whose attribute holds this sub-graph; -1 in the main graph
};

struct NodeList {
  std::vector<NodeEntry> nodes;
  std::vector<std::string_view> inputs;   // the main graph's inputs that are not initializers
  std::vector<std::string_view> outputs;  // the main graph's outputs
};

NodeList listNodes(const onnx::Graph& main);

}  // namespace ql::graph
