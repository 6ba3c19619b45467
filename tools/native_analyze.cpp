// Native driver for the core: parses a model, analyses every layer and prints one
// line per layer. Used by the sanitizer runs over real and malformed models and by
// the benchmark's native column. Usage: quantlens_native MODEL.onnx [--quiet]
#include <cstdio>
#include <cstring>
#include <fstream>
#include <string>
#include <vector>

#include "analysis/analyze.hpp"

using namespace ql;

static bool readRange(const std::string& path, uint64_t offset, uint64_t length, std::vector<uint8_t>* out) {
  std::ifstream f(path, std::ios::binary);
  if (!f) return false;
  f.seekg(0, std::ios::end);
  const uint64_t size = static_cast<uint64_t>(f.tellg());
  if (offset > size || length > size - offset) return false;
  out->resize(length);
  f.seekg(static_cast<std::streamoff>(offset));
  return length == 0 || static_cast<bool>(f.read(reinterpret_cast<char*>(out->data()), static_cast<std::streamsize>(length)));
}

int main(int argc, char** argv) {
  if (argc < 2) {
    std::fprintf(stderr, "usage: quantlens_native MODEL.onnx [--quiet]\n");
    return 1;
  }
  const std::string path = argv[1];
  const bool quiet = argc > 2 && std::strcmp(argv[2], "--quiet") == 0;
  std::vector<uint8_t> bytes;
  {
    std::ifstream f(path, std::ios::binary);
    if (!f) { std::fprintf(stderr, "quantlens: cannot open %s\n", path.c_str()); return 2; }
    bytes.assign(std::istreambuf_iterator<char>(f), {});
  }
  auto model = onnx::parseModel(bytes.data(), bytes.size());
  if (!model.ok()) {
    std::fprintf(stderr, "quantlens: %s: %s: %s\n", path.c_str(), errorCodeName(model.error().code), model.error().describe().c_str());
    return 2;
  }
  auto found = graph::findLayers(model.value());
  if (!found.ok()) { std::fprintf(stderr, "quantlens: %s\n", found.error().describe().c_str()); return 2; }
  const std::string dir = path.find('/') == std::string::npos ? "." : path.substr(0, path.rfind('/'));
  int failures = 0;
  for (const auto& L : found->layers) {
    std::vector<uint8_t> ext;
    wire::Bytes extBytes;
    if (L.weight->external) {
      auto ref = onnx::externalRef(*L.weight);
      if (!ref.ok()) { std::fprintf(stderr, "%s: %s\n", L.name.c_str(), ref.error().describe().c_str()); ++failures; continue; }
      const std::string loc(ref->location);
      if (loc.empty() || loc[0] == '/' || loc.find("..") != std::string::npos || !readRange(dir + "/" + loc, ref->offset, ref->length, &ext)) {
        std::fprintf(stderr, "%s: MISSING_EXTERNAL_DATA: cannot read %s\n", L.name.c_str(), loc.c_str());
        ++failures;
        continue;
      }
      extBytes = {ext.data(), ext.size()};
    }
    auto r = analysis::analyzeLayer(L, extBytes, {});
    if (!r.ok()) {
      std::fprintf(stderr, "%s: %s: %s\n", L.name.c_str(), errorCodeName(r.error().code), r.error().describe().c_str());
      ++failures;
      continue;
    }
    if (!quiet) {
      const auto& s = r->stats;
      std::printf("%-40s %-14s C=%-6llu int8T=%7.2f int8C=%7.2f int4T=%7.2f int4C=%7.2f outliers=%zu follower=%s\n", L.name.c_str(),
                  std::string(L.op).c_str(), static_cast<unsigned long long>(s.channels), s.sqnr[0], s.sqnr[1], s.sqnr[2], s.sqnr[3],
                  s.outliers.size(), graph::followerKindName(L.follower.kind));
    }
  }
  for (const auto& s : found->skipped) std::fprintf(stderr, "skipped: %s\n", s.c_str());
  std::printf("%zu layers, %d failed\n", found->layers.size(), failures);
  return failures ? 1 : 0;
}
