// fuzz_compare: matching and comparing the layers of two models cut from the input.
//  - "QLC2" + little-endian uint32 n + A (n bytes) + B: two models given explicitly
//    (tools/fuzz/make_seeds.py writes such pairs);
//  - anything else: the input against a copy of itself, identical or with the bytes of
//    its initializers' raw_data perturbed (or, sometimes, any bytes: then B's
//    structure differs too), chosen from a hash of the input.
// Every matched pair is compared (compareModels), external weights again with the
// input standing in for the external file; the matching must be consistent.
#include <algorithm>
#include <cstdint>
#include <cstring>
#include <vector>

#include "common.hpp"
#include "compare/compare.hpp"

using namespace ql;

namespace {

wire::Bytes externalBytes(const graph::Layer& L, const uint8_t* file, size_t size) {
  if (!L.weight || !L.weight->external) return {};
  auto ref = onnx::externalRef(*L.weight);
  if (!ref.ok() || ref->offset > size || ref->length > size - ref->offset) return {};
  return {file + ref->offset, static_cast<size_t>(ref->length)};
}

void checkMatching(const compare::Matching& m, size_t na, size_t nb) {
  std::vector<bool> usedA(na), usedB(nb);
  size_t lastA = 0;
  for (size_t i = 0; i < m.pairs.size(); ++i) {
    const auto& p = m.pairs[i];
    if (p.a >= na || p.b >= nb || usedA[p.a] || usedB[p.b]) qlfuzz::finding("matchLayers: a pair out of range or used twice");
    if (i && p.a < lastA) qlfuzz::finding("matchLayers: pairs not in A's order");
    lastA = p.a;
    usedA[p.a] = usedB[p.b] = true;
  }
  for (size_t a : m.unmatchedA) {
    if (a >= na || usedA[a]) qlfuzz::finding("matchLayers: unmatched A out of range or also matched");
    usedA[a] = true;
  }
  for (size_t b : m.unmatchedB) {
    if (b >= nb || usedB[b]) qlfuzz::finding("matchLayers: unmatched B out of range or also matched");
    usedB[b] = true;
  }
  if (std::find(usedA.begin(), usedA.end(), false) != usedA.end() || std::find(usedB.begin(), usedB.end(), false) != usedB.end())
    qlfuzz::finding("matchLayers: a layer neither matched nor unmatched");
}

}  // namespace

extern "C" int LLVMFuzzerTestOneInput(const uint8_t* data, size_t size) {
  if (size > qlfuzz::kMaxInput) return 0;
  const uint64_t h = qlfuzz::hashBytes(data, size);

  std::vector<uint8_t> a, b;
  if (size >= 8 && std::memcmp(data, "QLC2", 4) == 0) {
    uint32_t n;
    std::memcpy(&n, data + 4, 4);
    n = static_cast<uint32_t>(std::min<uint64_t>(n, size - 8));
    a.assign(data + 8, data + 8 + n);
    b.assign(data + 8 + n, data + size);
  } else {
    a.assign(data, data + size);
    b = a;
    const int mode = static_cast<int>(h % 4);
    if (mode == 1 || mode == 2) {  // perturb weights: B's structure is A's
      auto m = onnx::parseModel(a.data(), a.size());
      if (m.ok()) {
        uint64_t x = h;
        for (const auto& t : m->graph.initializers) {
          if (!t.hasRawData || t.rawData.size == 0) continue;
          const size_t off = static_cast<size_t>(t.rawData.data - a.data());
          const size_t stride = 1 + (x >> 8) % 7;
          for (size_t j = 0; j < t.rawData.size; j += stride) b[off + j] ^= static_cast<uint8_t>(mode == 1 ? 1 << (x % 8) : x);
          x = x * 6364136223846793005ull + 1442695040888963407ull;
        }
      }
    } else if (mode == 3 && size) {  // any bytes
      uint64_t x = h;
      for (int i = 0; i < 4; ++i) {
        b[(x >> 16) % size] ^= static_cast<uint8_t>(x | 1);
        x = x * 6364136223846793005ull + 1442695040888963407ull;
      }
    }
  }

  auto full = compare::compareModels(a.data(), a.size(), b.data(), b.size());
  if (!full.ok()) return 0;
  const compare::Comparison& c = *full->comparison;
  const auto& la = c.a().discovery.layers;
  const auto& lb = c.b().discovery.layers;
  checkMatching(c.matching(), la.size(), lb.size());
  if (full->pairs.size() != c.matching().pairs.size()) qlfuzz::finding("compareModels: not one result per pair");
  for (size_t k = 0; k < c.matching().pairs.size(); ++k) {
    const auto& p = c.matching().pairs[k];
    const auto& d = full->pairs[k];
    (void)compare::opFamily(la[p.a].op);
    (void)compare::incompatibility(la[p.a], lb[p.b]);
    if (d.comparable && (d.maxAbsDiff.size() != d.channels || d.sqnr.size() != d.channels || d.minB.size() != d.channels))
      qlfuzz::finding("comparePair: per-channel arrays of the wrong size");
    const wire::Bytes ea = externalBytes(la[p.a], a.data(), a.size());
    const wire::Bytes eb = externalBytes(lb[p.b], b.data(), b.size());
    if (ea.data || eb.data) (void)c.pair(k, ea, eb);
  }
  return 0;
}
