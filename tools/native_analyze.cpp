// Native driver for the core, reading a model the way the WASM build does: the
// structure skimmed into an image whose large payloads stay unread, then each weight
// streamed through a reused buffer, piece by piece, pass by pass. Used by the
// sanitizer runs over real and malformed models.
//   quantlens_native MODEL.onnx [--quiet] [--piece BYTES] [--skip-at-least BYTES] [--check]
// --check also analyses every layer from whole bytes and requires the same results.
#include <climits>
#include <cmath>
#include <cstdio>
#include <cstdlib>
#include <cstring>
#include <memory>
#include <string>
#include <vector>

#include "analysis/analyze.hpp"
#include "analysis/plan.hpp"
#include "onnx/skim.hpp"

using namespace ql;

namespace {

class FileReader : public onnx::ByteReader {
 public:
  explicit FileReader(const std::string& path) : f_(std::fopen(path.c_str(), "rb")) {}
  ~FileReader() override {
    if (f_) std::fclose(f_);
  }
  bool ok() const { return f_ != nullptr; }
  uint64_t size() {
    if (!f_ || fseeko(f_, 0, SEEK_END) != 0) return 0;
    return static_cast<uint64_t>(ftello(f_));
  }
  bool read(uint64_t offset, uint8_t* dst, uint64_t length) override {
    if (!f_ || fseeko(f_, static_cast<off_t>(offset), SEEK_SET) != 0) return false;
    return std::fread(dst, 1, length, f_) == length;
  }

 private:
  std::FILE* f_;
};

std::string printable(const std::string& s) {
  std::string out;
  for (char c : s) out += (static_cast<unsigned char>(c) < 0x20 || c == 0x7f) ? '?' : c;
  return out;
}

// Pieces fed in order give the whole bytes' results bit for bit (the float partial sums
// go into the double ones at the same elements whatever the pieces): equal, or both NaN.
bool same(double a, double b) { return a == b || (std::isnan(a) && std::isnan(b)); }

// Compares the streamed and whole-bytes results of one layer.
std::string differ(const stats::LayerStats& a, const stats::LayerStats& b) {
  if (a.min != b.min || a.max != b.max || a.absMax != b.absMax || a.histogram != b.histogram || a.outliers != b.outliers) {
    return "min/max/absMax/histogram/outliers";
  }
  for (size_t c = 0; c < a.mean.size(); ++c) {
    if (!same(a.mean[c], b.mean[c]) || !same(a.std[c], b.std[c])) {
      return "mean/std of channel " + std::to_string(c);
    }
  }
  for (int s = 0; s < stats::kSchemes; ++s) {
    if (!same(a.sqnr[s], b.sqnr[s])) return std::string("sqnr ") + stats::schemeName(s);
    for (size_t c = 0; c < a.channelSqnr[s].size(); ++c) {
      if (!same(a.channelSqnr[s][c], b.channelSqnr[s][c])) return std::string("channel sqnr ") + stats::schemeName(s);
    }
  }
  if (a.blockSqnr.size() != b.blockSqnr.size()) return "block schemes";
  for (size_t k = 0; k < a.blockSqnr.size(); ++k) {
    const auto &x = a.blockSqnr[k], &y = b.blockSqnr[k];
    if (x.blockSize != y.blockSize || !same(x.sqnr, y.sqnr)) return "sqnr " + y.scheme;
    for (size_t c = 0; c < x.channelSqnr.size(); ++c) {
      if (!same(x.channelSqnr[c], y.channelSqnr[c])) return "channel sqnr " + y.scheme;
    }
  }
  return "";
}

}  // namespace

int main(int argc, char** argv) {
  if (argc < 2) {
    std::fprintf(stderr, "usage: quantlens_native MODEL.onnx [--quiet] [--piece BYTES] [--skip-at-least BYTES] [--check]\n");
    return 1;
  }
  const std::string path = argv[1];
  bool quiet = false, check = false;
  uint64_t piece = 1 << 20;
  onnx::SkimOptions skimOptions;
  for (int i = 2; i < argc; ++i) {
    if (!std::strcmp(argv[i], "--quiet"))
      quiet = true;
    else if (!std::strcmp(argv[i], "--check"))
      check = true;
    else if (!std::strcmp(argv[i], "--piece") && i + 1 < argc)
      piece = std::stoull(argv[++i]);
    else if (!std::strcmp(argv[i], "--skip-at-least") && i + 1 < argc)
      skimOptions.skipAtLeast = std::stoull(argv[++i]);
  }
  FileReader file(path);
  if (!file.ok()) {
    std::fprintf(stderr, "quantlens: cannot open %s\n", path.c_str());
    return 2;
  }
  const uint64_t size = file.size();
  // Uninitialised on purpose: pages of skipped payloads are never touched.
  std::unique_ptr<uint8_t[]> image(new uint8_t[size ? size : 1]);
  auto skim = onnx::skimModel(file, size, image.get(), skimOptions);
  if (!skim.ok()) {
    std::fprintf(stderr, "quantlens: %s: %s\n", path.c_str(), skim.error().describe().c_str());
    return 2;
  }
  auto model = onnx::parseModel(image.get(), size);
  if (!model.ok()) {
    std::fprintf(stderr, "quantlens: %s: %s: %s\n", path.c_str(), errorCodeName(model.error().code),
                 model.error().describe().c_str());
    return 2;
  }
  analysis::markDeferred(image.get(), skim.value(), &model.value());  // unread payloads are not to be read
  auto found = graph::findLayers(model.value());
  if (!found.ok()) {
    std::fprintf(stderr, "quantlens: %s\n", found.error().describe().c_str());
    return 2;
  }
  if (Error e = analysis::settleSkim(file, image.get(), &skim.value(), &model.value(), found.value()); !e.ok()) {
    std::fprintf(stderr, "quantlens: %s: %s\n", path.c_str(), e.describe().c_str());
    return 2;
  }
  const std::string dir = path.find('/') == std::string::npos ? "." : path.substr(0, path.rfind('/'));
  // The core's streaming plan (analysis/plan.hpp), as the WASM build follows it: which
  // bytes of which file hold each weight, the one buffer, and the pieces.
  analysis::StreamPlan plan(found.value(), image.get(), skim.value(), piece, piece);
  int failures = 0;
  std::vector<uint8_t> buffer;
  for (size_t i = 0; i < found->layers.size(); ++i) {
    const graph::Layer& L = found->layers[i];
    const onnx::Tensor& w = *L.weight;
    const analysis::WeightPlace& where = plan.weight(i);
    // Where the weight's bytes are: a skipped payload of the model file, an external file, or the image.
    std::unique_ptr<FileReader> ext;
    FileReader* src = nullptr;
    if (where.at == analysis::WeightAt::ExternalFile) {
      if (!where.error.ok()) {  // the location rule (inside the model's folder) refused it
        std::fprintf(stderr, "%s: %s: %s\n", printable(L.name).c_str(), errorCodeName(where.error.code),
                     where.error.describe().c_str());
        ++failures;
        continue;
      }
      const std::string loc = where.ref.path;
      // Symbolic links may not lead out of the folder either.
      char realDir[PATH_MAX], realFile[PATH_MAX];
      const std::string full = dir + "/" + loc;
      if (realpath(dir.c_str(), realDir) && realpath(full.c_str(), realFile) &&
          std::string(realFile).rfind(std::string(realDir) + "/", 0) != 0) {
        std::fprintf(stderr, "%s: UNSAFE_EXTERNAL_DATA: '%s' leads outside the model's folder\n", printable(L.name).c_str(),
                     loc.c_str());
        ++failures;
        continue;
      }
      ext = std::make_unique<FileReader>(full);
      if (!ext->ok() || ext->size() < where.offset + where.length) {
        std::fprintf(stderr, "%s: MISSING_EXTERNAL_DATA: cannot read %s\n", printable(L.name).c_str(), loc.c_str());
        ++failures;
        continue;
      }
      src = ext.get();
    } else if (where.at == analysis::WeightAt::ModelFile) {
      src = &file;
    }
    const uint64_t base = where.offset, length = where.length;
    Result<analysis::LayerAnalysis> r = makeError(ErrorCode::InvalidArgument, "not analysed");
    if (!src) {
      r = analysis::analyzeLayer(L, {}, {});
    } else {
      auto an = analysis::LayerAnalyzer::create(L, {}, length);
      if (!an.ok()) {
        r = an.error();
      } else {
        const uint64_t size = an->byteSize();
        const analysis::LayerStream stream = plan.layer(an->unitBytes(), size);
        Error e;
        // A resident weight is read once and every pass runs over the buffer.
        if (stream.resident) {
          buffer.resize(size);
          if (!src->read(base, buffer.data(), size)) e = makeError(ErrorCode::MissingExternalData, "short read");
        }
        for (int pass = 1; e.ok() && pass <= an->passes(); ++pass) {
          for (uint64_t off = 0; e.ok() && off < size; off += stream.pieceBytes) {
            const uint64_t n = std::min(stream.pieceBytes, size - off);
            if (stream.resident) {
              e = an->feed(pass, {buffer.data() + off, n}, off);
              continue;
            }
            buffer.resize(n);
            if (!src->read(base + off, buffer.data(), n)) e = makeError(ErrorCode::MissingExternalData, "short read");
            if (e.ok()) e = an->feed(pass, {buffer.data(), n}, off);
          }
          if (e.ok()) e = an->endPass(pass);
        }
        r = e.ok() ? an->finish() : Result<analysis::LayerAnalysis>(e);
      }
      if (check && r.ok()) {
        std::vector<uint8_t> whole(length);
        if (src->read(base, whole.data(), length)) {
          wire::Bytes bytes{whole.data(), whole.size()};
          // Analyse the same bytes in one piece: as an external tensor, or as a copy of
          // the deferred tensor whose raw_data is those bytes.
          onnx::Tensor inMemory = w;
          graph::Layer whole1 = L;
          if (!w.external) {
            inMemory.deferred = false;
            inMemory.rawData = bytes;
            whole1.weight = &inMemory;
          }
          auto r2 = analysis::analyzeLayer(whole1, w.external ? bytes : wire::Bytes{}, {});
          std::string d = r2.ok() ? differ(r->stats, r2->stats) : "whole-bytes analysis failed";
          if (d.empty() && (r->inputs.absMax != r2->inputs.absMax || r->inputs.outliers != r2->inputs.outliers))
            d = "input-channel absMax/outliers";
          if (!d.empty()) {
            std::fprintf(stderr, "%s: streamed and whole-bytes results differ: %s\n", printable(L.name).c_str(), d.c_str());
            return 3;
          }
        }
      }
    }
    if (!r.ok()) {
      std::fprintf(stderr, "%s: %s: %s\n", printable(L.name).c_str(), errorCodeName(r.error().code),
                   r.error().describe().c_str());
      ++failures;
      continue;
    }
    if (!quiet) {
      const auto& s = r->stats;
      std::printf("%-40s %-14s C=%-6llu int8T=%7.2f int8C=%7.2f int4T=%7.2f int4C=%7.2f outliers=%zu follower=%s\n",
                  printable(L.name).c_str(), std::string(L.op).c_str(), static_cast<unsigned long long>(s.channels), s.sqnr[0],
                  s.sqnr[1], s.sqnr[2], s.sqnr[3], s.outliers.size(), graph::followerKindName(L.follower.kind));
    }
  }
  for (const auto& s : found->skipped) std::fprintf(stderr, "skipped: %s\n", printable(s).c_str());
  std::printf("%zu layers, %d failed; read %llu of %llu bytes of structure, %zu payloads streamed\n", found->layers.size(),
              failures, static_cast<unsigned long long>(skim->bytesRead), static_cast<unsigned long long>(size),
              skim->skipped.size());
  return failures ? 1 : 0;
}
