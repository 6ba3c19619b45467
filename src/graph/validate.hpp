// Whether a graph is one the ONNX spec allows, as far as anything we read or write
// depends on it: every name assigned once (initializers, graph inputs, node outputs),
// every node input defined (by the graph, an enclosing graph, or an earlier or later
// node), and no cycle. Sub-graphs are checked too, with the names of their enclosing
// graphs in scope.
#pragma once
#include <string>
#include <vector>

#include "common/result.hpp"
#include "onnx/model.hpp"

namespace ql::graph {

struct GraphCheck {
  // Initializers of one graph sharing a name ("graph 'g': initializer 'w' is defined twice").
  std::vector<std::string> duplicateInitializers;
  // Any other name assigned twice: two node outputs, a node output that is also an
  // initializer or a graph input.
  std::vector<std::string> reassigned;
  // Node inputs that nothing defines.
  std::vector<std::string> undefined;
  // Nodes on a cycle (one message naming the nodes involved).
  std::vector<std::string> cycles;
  bool ok() const { return duplicateInitializers.empty() && reassigned.empty() && undefined.empty() && cycles.empty(); }
  // The first problem as an error with code InvalidGraph (ok Error when none).
  Error firstError() const;
};

GraphCheck checkGraph(const onnx::Model& model);

}  // namespace ql::graph
