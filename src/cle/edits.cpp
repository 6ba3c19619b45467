#include "cle/edits.hpp"

namespace ql::cle {

onnx::NodeEdit& ModelEdits::node(size_t index) {
  auto it = nodes.find(index);
  if (it == nodes.end()) {
    onnx::NodeEdit e;
    e.index = index;
    it = nodes.emplace(index, std::move(e)).first;
  }
  return it->second;
}

std::vector<std::string>& ModelEdits::inputsOf(const ModelIndex& index, const onnx::Node* n) {
  auto& e = node(index.indexOf(n));
  if (!e.inputs) e.inputs.emplace(n->inputs.begin(), n->inputs.end());
  return *e.inputs;
}

void ModelEdits::release(const ModelIndex& index, std::string_view name) {
  if (name.empty() || !index.isInitializer(name)) return;
  if (++released[std::string(name)] == index.uses(name)) removeInitializers.insert(std::string(name));
}

}  // namespace ql::cle
