// The edits to the graph that the phases of CLE decide on (a BatchNorm removed, a
// Clip become Relu, a node's inputs or outputs renamed), gathered until the model is
// written (write.hpp). New and replaced initializers are decided at writing.
#pragma once
#include <map>
#include <set>
#include <string>
#include <string_view>
#include <vector>

#include "cle/model_index.hpp"
#include "onnx/writer.hpp"

namespace ql::cle {

struct ModelEdits {
  std::map<size_t, onnx::NodeEdit> nodes;  // by node index: at most one edit per node, written in node order
  std::vector<size_t> removeNodes;
  std::set<std::string> removeInitializers, removeValueInfo;
  std::map<std::string, size_t> released;  // uses of an initializer that went away so far

  // The edit of node `index` (an empty one to begin with).
  onnx::NodeEdit& node(size_t index);
  // The inputs the written node will have, as edited so far (a copy of the node's to begin with).
  std::vector<std::string>& inputsOf(const ModelIndex& index, const onnx::Node* n);
  // One use of `name` goes away (a removed BatchNorm, a Clip become Relu); an
  // initializer whose every use went is removed from the written model.
  void release(const ModelIndex& index, std::string_view name);
};

}  // namespace ql::cle
