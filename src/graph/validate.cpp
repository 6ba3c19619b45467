#include "graph/validate.hpp"

#include <unordered_map>
#include <unordered_set>

#include "graph/scope.hpp"

namespace ql::graph {

using onnx::Graph;
using onnx::Node;

namespace {

std::string q(std::string_view s) { return "'" + std::string(s) + "'"; }

// Names defined in one graph, with a link to the enclosing graph's.
struct Names {
  const Names* parent = nullptr;
  std::unordered_set<std::string_view> defined;
  bool has(std::string_view n) const {
    for (const Names* s = this; s; s = s->parent)
      if (s->defined.count(n)) return true;
    return false;
  }
};

class Checker {
 public:
  explicit Checker(GraphCheck* out) : out_(out) {}

  // Checks `g`; returns the names it reads from enclosing graphs (its free names).
  std::unordered_set<std::string_view> check(const Graph& g, const Names* parent, const std::string& path) {
    const std::string where = path.empty() ? "the main graph" : "sub-graph " + q(path);
    Names names;
    names.parent = parent;
    std::unordered_map<std::string_view, size_t> producer;  // node output -> node index
    std::unordered_set<std::string_view> inits, inputs;
    for (const auto& t : g.initializers) {
      if (!inits.insert(t.name).second) {
        out_->duplicateInitializers.push_back(where + ": initializer " + q(t.name) + " is defined twice");
      }
      names.defined.insert(t.name);
    }
    for (const auto& in : g.inputs) {
      // Old exporters list every initializer as a graph input too: that is allowed.
      if (!inputs.insert(in.name).second) out_->reassigned.push_back(where + ": graph input " + q(in.name) + " is listed twice");
      names.defined.insert(in.name);
    }
    for (size_t i = 0; i < g.nodes.size(); ++i) {
      for (auto o : g.nodes[i].outputs) {
        if (o.empty()) continue;
        const char* what = producer.count(o) ? "another node's output"
                           : inits.count(o)  ? "an initializer"
                           : inputs.count(o) ? "a graph input"
                                             : nullptr;
        if (what) {
          out_->reassigned.push_back(where + ": node " + q(displayName(g.nodes[i], i)) + " writes " + q(o) +
                                     ", which is already " + what);
        } else {
          producer[o] = i;
        }
        names.defined.insert(o);
      }
    }
    // Each node's inputs, including the outer names its sub-graphs read.
    std::unordered_set<std::string_view> free;
    std::vector<std::vector<std::string_view>> reads(g.nodes.size());
    for (size_t i = 0; i < g.nodes.size(); ++i) {
      const Node& n = g.nodes[i];
      for (auto in : n.inputs) {
        if (!in.empty()) reads[i].push_back(in);
      }
      for (const auto& a : n.attributes) {
        const std::string base = (path.empty() ? "" : path + "/") + displayName(n, i) + "/" + std::string(a.name);
        auto sub = [&](const Graph& sg, const std::string& p) {
          for (auto v : check(sg, &names, p)) reads[i].push_back(v);
        };
        if (a.g) sub(*a.g, base);
        for (size_t k = 0; k < a.graphs.size(); ++k) sub(a.graphs[k], base + "[" + std::to_string(k) + "]");
      }
      for (auto in : reads[i]) {
        if (names.defined.count(in)) continue;
        if (parent && parent->has(in)) {
          free.insert(in);
          continue;
        }
        out_->undefined.push_back(where + ": node " + q(displayName(n, i)) + " reads " + q(in) + ", which nothing defines");
      }
    }
    for (const auto& o : g.outputs) {
      if (names.defined.count(o.name)) continue;
      if (parent && parent->has(o.name)) {
        free.insert(o.name);
        continue;
      }
      out_->undefined.push_back(where + ": graph output " + q(o.name) + " is not produced by anything");
    }
    // Cycles: Kahn's algorithm over node -> node edges.
    std::vector<size_t> pending(g.nodes.size(), 0);
    std::vector<std::vector<size_t>> next(g.nodes.size());
    for (size_t i = 0; i < g.nodes.size(); ++i) {
      for (auto in : reads[i]) {
        auto it = producer.find(in);
        if (it == producer.end()) continue;
        next[it->second].push_back(i);
        ++pending[i];
      }
    }
    std::vector<size_t> ready;
    for (size_t i = 0; i < g.nodes.size(); ++i)
      if (!pending[i]) ready.push_back(i);
    size_t done = 0;
    while (!ready.empty()) {
      const size_t i = ready.back();
      ready.pop_back();
      ++done;
      for (size_t j : next[i])
        if (--pending[j] == 0) ready.push_back(j);
    }
    if (done != g.nodes.size()) {
      std::string list;
      size_t shown = 0, total = 0;
      for (size_t i = 0; i < g.nodes.size(); ++i) {
        if (!pending[i]) continue;
        ++total;
        if (shown < 5) {
          list += (shown ? ", " : "") + q(displayName(g.nodes[i], i));
          ++shown;
        }
      }
      if (total > shown) list += " and " + std::to_string(total - shown) + " more";
      out_->cycles.push_back(where + " has a cycle: " + std::to_string(total) + " nodes depend on their own outputs (" + list +
                             ")");
    }
    return free;
  }

 private:
  GraphCheck* out_;
};

}  // namespace

Error GraphCheck::firstError() const {
  for (const auto* v : {&duplicateInitializers, &reassigned, &undefined, &cycles}) {
    if (v->empty()) continue;
    std::string m = v->front();
    if (v->size() > 1) m += " (and " + std::to_string(v->size() - 1) + " more like it)";
    return makeError(ErrorCode::InvalidGraph, m);
  }
  return Error{};
}

GraphCheck checkGraph(const onnx::Model& model) {
  GraphCheck out;
  Checker c(&out);
  c.check(model.graph, nullptr, "");
  return out;
}

}  // namespace ql::graph
