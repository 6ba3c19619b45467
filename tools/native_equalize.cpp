// Native CLE driver: equalizes a model with the core (the same code the WASM
// module runs) and prints what changed. Used by the tests under sanitizers.
//   quantlens_equalize MODEL.onnx [-o OUT.onnx] [--keep-relu6] [--no-bias-absorption]
//                      [--iterations N] [--dead-ratio R] [--no-triples] [--no-pad-pool] [--quiet]
// Exit 0 on success (also when nothing changed), 2 when the model cannot be read.
#include <cmath>
#include <cstdio>
#include <cstring>
#include <fstream>
#include <iterator>
#include <string>
#include <vector>

#include "cle/cle.hpp"

int main(int argc, char** argv) {
  if (argc < 2) {
    std::fprintf(stderr,
                 "usage: quantlens_equalize MODEL.onnx [-o OUT.onnx] [--keep-relu6] [--no-bias-absorption] [--iterations N] "
                 "[--dead-ratio R] [--no-triples] [--no-pad-pool] [--quiet] [--scales]\n");
    return 2;
  }
  ql::cle::Options opt;
  std::string out;
  bool quiet = false, scales = false;
  for (int i = 2; i < argc; ++i) {
    const std::string a = argv[i];
    if (a == "-o" && i + 1 < argc)
      out = argv[++i];
    else if (a == "--keep-relu6")
      opt.keepRelu6 = true;
    else if (a == "--no-bias-absorption")
      opt.biasAbsorption = false;
    else if (a == "--no-triples")
      opt.triples = false;
    else if (a == "--no-pad-pool")
      opt.throughPadPool = false;
    else if (a == "--iterations" && i + 1 < argc)
      opt.maxIterations = std::atoi(argv[++i]);
    else if (a == "--dead-ratio" && i + 1 < argc)
      opt.deadChannelRatio = std::atof(argv[++i]);
    else if (a == "--quiet")
      quiet = true;
    else if (a == "--scales")
      scales = true;
    else {
      std::fprintf(stderr, "unknown argument %s\n", a.c_str());
      return 2;
    }
  }
  std::ifstream f(argv[1], std::ios::binary);
  if (!f) {
    std::fprintf(stderr, "cannot open %s\n", argv[1]);
    return 2;
  }
  std::vector<uint8_t> bytes((std::istreambuf_iterator<char>(f)), std::istreambuf_iterator<char>());
  auto r = ql::cle::equalize(bytes.data(), bytes.size(), opt);
  if (!r.ok()) {
    std::fprintf(stderr, "%s: %s\n", ql::errorCodeName(r.error().code), r.error().describe().c_str());
    return 2;
  }
  const auto& rep = r->report;
  if (!quiet) {
    std::printf(
        "layers %zu, changed %zu, sequences %zu, BN folded %zu, ReLU6 replaced %zu, bias absorbed %zu, dead channels %zu, stops "
        "%zu\n",
        rep.layersSeen, rep.layers.size(), rep.sequences.size(), rep.foldedBatchNorms.size(), rep.relu6Replaced.size(),
        rep.biasAbsorptions, rep.deadChannels.size(), rep.stops.size());
    for (const auto& s : rep.sequences) {
      std::printf("  seq (%d it%s):", s.iterations, s.converged ? "" : ", not converged");
      for (size_t k = 0; k < s.layers.size(); ++k) {
        std::printf(" %s%s", rep.layers[s.layers[k]].name.c_str(), s.triple[k] ? "*" : "");
        if (k < s.links.size()) std::printf(" -[%s]->", s.links[k].c_str());
      }
      std::printf("\n");
    }
    for (const auto& s : rep.stops)
      std::printf("  stop %s at %s (%s): %s\n", s.layer.c_str(), s.node.c_str(), s.op.c_str(), s.reason.c_str());
    for (const auto& c : rep.layers) {
      if (!c.beforeError.empty()) std::printf("  warning: %s\n", c.beforeError.c_str());
    }
    for (const auto& c : rep.layers) {
      if (!scales) break;
      auto mm = [](const std::vector<float>& v) {
        float lo = INFINITY, hi = -INFINITY;
        for (float x : v) lo = std::fmin(lo, x), hi = std::fmax(hi, x);
        return std::make_pair(lo, hi);
      };
      auto o = mm(c.outScale), i = mm(c.inScale);
      std::printf("  %-60s out /[%.3g, %.3g] in *[%.3g, %.3g] int8 %.1f -> %.1f dB\n", c.name.c_str(), o.first, o.second, i.first,
                  i.second, c.before.sqnr[ql::stats::kInt8PerTensor], c.after.sqnr[ql::stats::kInt8PerTensor]);
    }
    for (const auto& d : rep.deadChannels) {
      if (scales)
        std::printf("  dead %s %s channel %u range %.3g\n", d.layer.c_str(), d.output ? "output" : "input", d.channel, d.range);
    }
    double b8 = 0, a8 = 0;
    for (const auto& c : rep.layers) {
      b8 += c.before.sqnr[ql::stats::kInt8PerTensor];
      a8 += c.after.sqnr[ql::stats::kInt8PerTensor];
    }
    if (!rep.layers.empty())
      std::printf("mean INT8 per-tensor weight SQNR over changed layers: %.2f -> %.2f dB\n", b8 / rep.layers.size(),
                  a8 / rep.layers.size());
  }
  if (!out.empty()) {
    std::ofstream o(out, std::ios::binary);
    const auto written = r->bytes(bytes.data());
    o.write(reinterpret_cast<const char*>(written.data()), static_cast<std::streamsize>(written.size()));
    if (!o) {
      std::fprintf(stderr, "cannot write %s\n", out.c_str());
      return 2;
    }
  }
  return 0;
}
