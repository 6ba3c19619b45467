// Native channel-pruning driver (compress/prune.hpp, graph/shapes.hpp), for the tests that
// check the core against numpy, onnx.shape_inference and onnxruntime:
//   quantlens_prune MODEL.onnx
//       prints JSON: per weight layer of the main graph its input-channel norms and its
//       pruning curve (or why it is refused), its MACs, and the static shape of every value
//       inferShapes knows.
//   quantlens_prune MODEL.onnx --prune LAYER --keep K -o OUT.onnx
//       writes the model with LAYER pruned to K input channels (K < 0: C + K, so -1 drops
//       the smallest-norm channel) and prints {"channels": C, "dropped": [...]}.
// Exit 0 on success, 2 when the model cannot be read or pruned as asked.
#include <cmath>
#include <cstdio>
#include <cstdlib>
#include <fstream>
#include <iterator>
#include <string>
#include <vector>

#include "compress/prune.hpp"
#include "graph/shapes.hpp"
#include "onnx/writer.hpp"

namespace {

std::string jsonString(std::string_view s) {
  std::string o = "\"";
  for (unsigned char c : s) {
    if (c == '"' || c == '\\') {
      o += '\\';
      o += static_cast<char>(c);
    } else if (c < 0x20) {
      char b[8];
      std::snprintf(b, sizeof b, "\\u%04x", c);
      o += b;
    } else {
      o += static_cast<char>(c);
    }
  }
  return o + "\"";
}

std::string num(double x) {
  if (!std::isfinite(x)) return "null";
  char b[40];
  std::snprintf(b, sizeof b, "%.17g", x);
  return b;
}

int fail(const ql::Error& e) {
  std::fprintf(stderr, "%s: %s\n", ql::errorCodeName(e.code), e.describe().c_str());
  return 2;
}

}  // namespace

int main(int argc, char** argv) {
  if (argc < 2) {
    std::fprintf(stderr, "usage: quantlens_prune MODEL.onnx [--prune LAYER --keep K -o OUT.onnx]\n");
    return 2;
  }
  std::string layerName, out;
  long long keep = 0;
  bool prune = false;
  for (int i = 2; i < argc; ++i) {
    const std::string a = argv[i];
    if (a == "--prune" && i + 1 < argc) {
      layerName = argv[++i];
      prune = true;
    } else if (a == "--keep" && i + 1 < argc) {
      keep = std::atoll(argv[++i]);
    } else if (a == "-o" && i + 1 < argc) {
      out = argv[++i];
    } else {
      std::fprintf(stderr, "unknown argument %s\n", a.c_str());
      return 2;
    }
  }
  std::ifstream f(argv[1], std::ios::binary);
  if (!f) {
    std::fprintf(stderr, "cannot open %s\n", argv[1]);
    return 2;
  }
  const std::vector<uint8_t> bytes((std::istreambuf_iterator<char>(f)), std::istreambuf_iterator<char>());
  auto model = ql::onnx::parseModel(bytes.data(), bytes.size());
  if (!model.ok()) return fail(model.error());
  auto found = ql::graph::findLayers(model.value());
  if (!found.ok()) return fail(found.error());
  const ql::graph::Discovery& d = found.value();

  if (prune) {
    const ql::graph::Layer* L = nullptr;
    for (const auto& l : d.layers)
      if (l.name == layerName && l.path.empty()) L = &l;
    if (!L || out.empty()) {
      std::fprintf(stderr, "%s\n", L ? "-o OUT.onnx is required" : ("no layer named " + layerName).c_str());
      return 2;
    }
    auto norms = ql::compress::inputChannelNorms(*L);
    if (!norms.ok()) return fail(norms.error());
    const long long C = static_cast<long long>(norms->size());
    if (keep < 0) keep += C;
    ql::onnx::GraphEdit edit;
    auto r = ql::compress::addPruneEdit(model.value(), d, *L, keep, edit);
    if (!r.ok()) return fail(r.error());
    auto written = ql::onnx::writeModel(bytes.data(), bytes.size(), model.value(), edit);
    if (!written.ok()) return fail(written.error());
    std::ofstream o(out, std::ios::binary);
    o.write(reinterpret_cast<const char*>(written->data()), static_cast<std::streamsize>(written->size()));
    if (!o) {
      std::fprintf(stderr, "cannot write %s\n", out.c_str());
      return 2;
    }
    const auto order = ql::compress::pruneOrder(norms.value());
    std::printf("{\"channels\": %lld, \"dropped\": [", C);
    for (long long j = 0; j < C - keep; ++j) std::printf("%s%lld", j ? ", " : "", static_cast<long long>(order[j]));
    std::printf("]}\n");
    return 0;
  }

  const ql::graph::Shapes shapes = ql::graph::inferShapes(model.value());
  std::string s = "{\"layers\": [";
  bool first = true;
  for (const auto& L : d.layers) {
    if (!L.path.empty()) continue;
    s += first ? "\n" : ",\n";
    first = false;
    s += "{\"name\": " + jsonString(L.name) + ", \"op\": " + jsonString(L.op) +
         ", \"macs\": " + std::to_string(ql::graph::macsOf(L, shapes));
    auto norms = ql::compress::inputChannelNorms(L);
    s += ", \"norms\": ";
    if (norms.ok()) {
      s += "[";
      for (size_t i = 0; i < norms->size(); ++i) s += (i ? ", " : "") + num(norms.value()[i]);
      s += "]";
    } else {
      s += "null";
    }
    const ql::compress::Curve c = ql::compress::pruneCurve(model.value(), d, L, &shapes);
    s += ", \"refused\": " + jsonString(c.refused) + ", \"points\": [";
    for (size_t i = 0; i < c.points.size(); ++i) {
      const auto& p = c.points[i];
      s += (i ? ", " : "") + std::string("{\"keep\": ") + std::to_string(p.keep) + ", \"params\": " + std::to_string(p.params) +
           ", \"elsewhere\": " + std::to_string(p.paramsRemovedElsewhere) + ", \"macs\": " + std::to_string(p.macs) +
           ", \"sqnr\": " + num(p.sqnrDb) + "}";
    }
    s += "]}";
  }
  s += "\n], \"shapes\": {";
  first = true;
  for (const auto& n : model->graph.nodes) {
    for (auto v : n.outputs) {
      const auto* dims = shapes.of(v);
      if (!dims) continue;
      s += first ? "\n" : ",\n";
      first = false;
      s += jsonString(v) + ": [";
      for (size_t i = 0; i < dims->size(); ++i) s += (i ? ", " : "") + std::to_string((*dims)[i]);
      s += "]";
    }
  }
  s += "\n}}\n";
  std::fwrite(s.data(), 1, s.size(), stdout);
  return 0;
}
