#include "compare/compare.hpp"

#include <algorithm>
#include <cmath>
#include <cstring>
#include <limits>
#include <map>
#include <tuple>
#include <utility>

#include "graph/opspec.hpp"
#include "stats/stats.hpp"

namespace ql::compare {

namespace {

std::string shapeText(const std::vector<int64_t>& dims) {
  std::string s = "[";
  for (size_t i = 0; i < dims.size(); ++i) s += (i ? "x" : "") + std::to_string(dims[i]);
  return s + "]";
}

bool sameLayout(const stats::ChannelLayout& x, const stats::ChannelLayout& y) {
  return x.outer == y.outer && x.rows == y.rows && x.channels == y.channels && x.inner == y.inner;
}

// Pairs, among the unmatched layers, those whose key is equal and non-empty: the i-th
// layer of A with a key with the i-th layer of B with that key.
// With `unique`, only keys held by exactly one unmatched layer on each side pair.
template <class Key>
void matchByKey(const std::vector<graph::Layer>& a, const std::vector<graph::Layer>& b, std::vector<int64_t>& partnerA,
                std::vector<int64_t>& partnerB, MatchedBy by, std::vector<Match>& out, Key key, bool unique = false) {
  std::map<std::string, std::vector<size_t>> fromB;
  for (size_t j = 0; j < b.size(); ++j) {
    if (partnerB[j] >= 0) continue;
    std::string k;
    if (key(b[j], &k)) fromB[k].push_back(j);
  }
  std::map<std::string, size_t> countA;
  if (unique) {
    for (size_t i = 0; i < a.size(); ++i) {
      std::string k;
      if (partnerA[i] < 0 && key(a[i], &k)) ++countA[k];
    }
  }
  std::map<std::string, size_t> used;
  for (size_t i = 0; i < a.size(); ++i) {
    if (partnerA[i] >= 0) continue;
    std::string k;
    if (!key(a[i], &k)) continue;
    auto it = fromB.find(k);
    if (it == fromB.end()) continue;
    if (unique && (it->second.size() != 1 || countA[k] != 1)) continue;
    size_t& n = used[k];
    if (n >= it->second.size()) continue;
    const size_t j = it->second[n++];
    partnerA[i] = static_cast<int64_t>(j);
    partnerB[j] = static_cast<int64_t>(i);
    out.push_back(Match{i, j, by});
  }
}

std::string scoped(const graph::Layer& L, std::string_view name) {
  std::string k = L.path;
  k.push_back('\0');
  k.append(name.data(), name.size());
  return k;
}

// A recurrent node is two layers (W and R): node names pair W with W and R with R.
std::string part(const graph::Layer& L) {
  return L.recurrent.part == graph::RecurrentPart::None ? std::string()
                                                        : std::string("\0", 1) + graph::recurrentPartName(L.recurrent.part);
}

// Whether every value is finite: its exponent field is not all ones. No early exit, so the
// loop vectorizes (a piece is usually all finite, and read to the end either way).
bool finite(const std::vector<float>& v) {
  uint32_t nonFinite = 0;
  for (float x : v) {
    uint32_t u;
    std::memcpy(&u, &x, 4);
    nonFinite |= (u & 0x7f800000u) == 0x7f800000u;
  }
  return nonFinite == 0;
}

}  // namespace

const char* matchedByName(MatchedBy by) {
  switch (by) {
    case MatchedBy::Weight:
      return "weight";
    case MatchedBy::Name:
      return "name";
    case MatchedBy::Position:
      return "position";
    case MatchedBy::WeightNormalized:
      return "weight-normalized";
    case MatchedBy::NameNormalized:
      return "name-normalized";
  }
  return "?";
}

namespace {

bool endsWith(std::string_view s, std::string_view suffix) {
  return s.size() >= suffix.size() && s.substr(s.size() - suffix.size()) == suffix;
}

// The length of a "_Q<digits>" or "_DQ_Q<digits>" suffix of s, or 0.
size_t bitsSuffix(std::string_view s) {
  size_t i = s.size();
  while (i > 0 && s[i - 1] >= '0' && s[i - 1] <= '9') --i;
  if (i == s.size() || i < 2 || s.substr(i - 2, 2) != "_Q") return 0;
  size_t n = s.size() - (i - 2);
  if (endsWith(s.substr(0, i - 2), "_DQ")) n += 3;
  return n;
}

}  // namespace

std::string normalizedName(std::string_view name) {
  // No entry ends with another, so their order does not matter.
  static constexpr std::string_view kSuffixes[] = {
      "_DequantizeLinear_Output",
      "_QuantizeLinear_Output",
      "_QuantizeLinear_Input",
      "_DequantizeLinear",
      "_QuantizeLinear",
      "_quantized",
      "_quant",
      "_zero_points",
      "_zero_point",
      "_scales",
      "_scale",
      "_Bnb4",
      "_absmax",
  };
  std::string_view s = name;
  for (bool again = true; again;) {
    again = false;
    size_t cut = bitsSuffix(s);
    if (!cut) {
      for (std::string_view suf : kSuffixes) {
        if (endsWith(s, suf)) {
          cut = suf.size();
          break;
        }
      }
    }
    if (cut && cut < s.size()) {
      s.remove_suffix(cut);
      again = true;
    }
  }
  return std::string(s);
}

std::string_view opFamily(std::string_view op) {
  const graph::OpSpec* spec = graph::findOpSpec({}, op);
  // Recurrent ops pair only with the same op: LSTM, GRU and RNN stack different gates.
  if (!spec || !spec->analysed() || spec->family == graph::OpFamily::Recurrent) return op;
  // Gemm and MatMul both multiply by a stored matrix: the same layer exported either way pairs.
  const graph::OpFamily f = spec->family == graph::OpFamily::Gemm ? graph::OpFamily::MatMul : spec->family;
  return graph::opFamilyName(f);
}

Matching matchLayers(const std::vector<graph::Layer>& a, const std::vector<graph::Layer>& b) {
  Matching m;
  std::vector<int64_t> partnerA(a.size(), -1), partnerB(b.size(), -1);
  matchByKey(a, b, partnerA, partnerB, MatchedBy::Weight, m.pairs, [](const graph::Layer& L, std::string* k) {
    if (L.weightName.empty()) return false;
    *k = scoped(L, L.weightName);
    return true;
  });
  matchByKey(a, b, partnerA, partnerB, MatchedBy::Name, m.pairs, [](const graph::Layer& L, std::string* k) {
    if (!L.node || L.node->name.empty()) return false;  // made-up names ("Conv#3") do not count
    *k = scoped(L, L.node->name) + part(L);
    return true;
  });
  matchByKey(
      a, b, partnerA, partnerB, MatchedBy::WeightNormalized, m.pairs,
      [](const graph::Layer& L, std::string* k) {
        if (L.weightName.empty()) return false;
        *k = scoped(L, normalizedName(L.weightName));
        return true;
      },
      true);
  matchByKey(
      a, b, partnerA, partnerB, MatchedBy::NameNormalized, m.pairs,
      [](const graph::Layer& L, std::string* k) {
        if (!L.node || L.node->name.empty()) return false;
        *k = scoped(L, normalizedName(L.node->name)) + part(L);
        return true;
      },
      true);
  std::vector<size_t> restA, restB;
  for (size_t i = 0; i < a.size(); ++i)
    if (partnerA[i] < 0) restA.push_back(i);
  for (size_t j = 0; j < b.size(); ++j)
    if (partnerB[j] < 0) restB.push_back(j);
  for (size_t k = 0; k < std::min(restA.size(), restB.size()); ++k) {
    const graph::Layer &x = a[restA[k]], &y = b[restB[k]];
    if (opFamily(x.op) != opFamily(y.op) || x.recurrent.part != y.recurrent.part ||
        x.layout.elementCount() != y.layout.elementCount())
      continue;
    partnerA[restA[k]] = static_cast<int64_t>(restB[k]);
    partnerB[restB[k]] = static_cast<int64_t>(restA[k]);
    m.pairs.push_back(Match{restA[k], restB[k], MatchedBy::Position});
  }
  std::sort(m.pairs.begin(), m.pairs.end(), [](const Match& x, const Match& y) { return x.a < y.a; });
  for (size_t i = 0; i < a.size(); ++i)
    if (partnerA[i] < 0) m.unmatchedA.push_back(i);
  for (size_t j = 0; j < b.size(); ++j)
    if (partnerB[j] < 0) m.unmatchedB.push_back(j);
  return m;
}

std::string incompatibility(const graph::Layer& a, const graph::Layer& b) {
  const uint64_t na = a.layout.elementCount(), nb = b.layout.elementCount();
  if (na != nb) {
    return "weights have " + std::to_string(na) + " and " + std::to_string(nb) + " values (shapes " + shapeText(a.shape) +
           " and " + shapeText(b.shape) + ")";
  }
  // A block-wise layer (MatMulNBits) is laid out [N, K]: against a MatMul's [K, N] the
  // shapes may read the same when K == N, but the values are transposed.
  if ((a.quant.blockwise() || b.quant.blockwise()) && !sameLayout(a.layout, b.layout)) {
    return "shapes " + shapeText(a.shape) + " (channel axis " + std::to_string(a.channelAxis) + ") and " + shapeText(b.shape) +
           " (channel axis " + std::to_string(b.channelAxis) + ") lay the values out differently";
  }
  if (a.shape != b.shape && !sameLayout(a.layout, b.layout)) {
    return "shapes " + shapeText(a.shape) + " (channel axis " + std::to_string(a.channelAxis) + ") and " + shapeText(b.shape) +
           " (channel axis " + std::to_string(b.channelAxis) + ") lay the values out differently";
  }
  return {};
}

uint64_t rescaleGroups(const graph::Layer& a) {
  if (a.groups <= 1) return 1;
  const uint64_t g = static_cast<uint64_t>(a.groups);
  if (a.op == "Conv" && a.channelAxis == 0) return g;            // [O, I/g, ...]: O/g channels a group
  if (a.op == "ConvTranspose" && a.layout.outer == g) return g;  // [g x I/g, O/g, ...]: laid out by group
  return 1;
}

DiffBuilder::DiffBuilder(const stats::ChannelLayout& L, uint64_t groups) : L_(L), groups_(groups ? groups : 1) {
  d_.comparable = true;
  const uint64_t C = L.channelCount();
  d_.channels = C;
  d_.maxAbsDiff.assign(C, 0.0);
  d_.rmsDiff.assign(C, 0.0);
  d_.sqnr.assign(C, 0.0);
  const float nan = std::numeric_limits<float>::quiet_NaN();
  d_.minA.assign(C, nan);
  d_.maxA.assign(C, nan);
  d_.minB.assign(C, nan);
  d_.maxB.assign(C, nan);
  signal_.assign(C, 0.0);
  noise_.assign(C, 0.0);
  logSum_.assign(C, 0.0);
  logSq_.assign(C, 0.0);
  same_.assign(C, 0);
  flipped_.assign(C, 0);
  const float inf = std::numeric_limits<float>::infinity();
  if (L.rows * L.inner > 0) {
    std::fill(d_.minA.begin(), d_.minA.end(), inf);
    std::fill(d_.minB.begin(), d_.minB.end(), inf);
    std::fill(d_.maxA.begin(), d_.maxA.end(), -inf);
    std::fill(d_.maxB.begin(), d_.maxB.end(), -inf);
  }
}

// One channel's sums (PairDiff's per-channel numbers before finish), taken from the arrays
// and put back, with the one update of an element pair: every path below adds elements
// through add(), each channel's in stored order, so they give the same bits.
struct DiffBuilder::ChannelSums {
  double sig, noi, mx;
  float loA, hiA, loB, hiB;
  void add(float x, float y) {
    const double xd = x, diff = static_cast<double>(y) - xd;
    sig += xd * xd;
    noi += diff * diff;
    mx = std::max(mx, std::fabs(diff));
    loA = std::min(loA, x);
    hiA = std::max(hiA, x);
    loB = std::min(loB, y);
    hiB = std::max(hiB, y);
  }
};

DiffBuilder::ChannelSums DiffBuilder::sums(uint64_t ch) const {
  return {signal_[ch], noise_[ch], d_.maxAbsDiff[ch], d_.minA[ch], d_.maxA[ch], d_.minB[ch], d_.maxB[ch]};
}

void DiffBuilder::keep(uint64_t ch, const ChannelSums& s) {
  signal_[ch] = s.sig;
  noise_[ch] = s.noi;
  d_.maxAbsDiff[ch] = s.mx;
  d_.minA[ch] = s.loA;
  d_.maxA[ch] = s.hiA;
  d_.minB[ch] = s.loB;
  d_.maxB[ch] = s.hiB;
}

// One element pair of channel ch in the rescale test (PairDiff::rescale); false once the
// pattern is broken. Where y == x, log|y / x| is log(1) = +0 exactly, and adding +0 to the
// sums changes no bit: the logarithm is left out (a layer compared with itself, or left
// unchanged, takes no logarithm at all).
bool DiffBuilder::rescaleElement(float x, float y, uint64_t ch) {
  if ((x == 0) != (y == 0) || !std::isfinite(x) || !std::isfinite(y)) {
    broken_ = true;
    return false;
  }
  if (x == 0) return true;
  if (y != x) {
    const double lr = std::log(std::fabs(static_cast<double>(y) / static_cast<double>(x)));
    logSum_[ch] += lr;
    logSq_[ch] += lr * lr;
  }
  ((x > 0) == (y > 0) ? same_ : flipped_)[ch]++;
  return true;
}

// Channels last (inner == 1): the sums over `nr` rows of `C` channels from channel ch0,
// rows C elements apart, two channels at a time down the rows with their sums in registers.
void DiffBuilder::sumsRows(const float* a, const float* b, uint64_t ch0, uint64_t C, uint64_t nr) {
  uint64_t c = 0;
  for (; c + 2 <= C; c += 2) {
    ChannelSums s0 = sums(ch0 + c), s1 = sums(ch0 + c + 1);
    const float *pa = a + c, *pb = b + c;
    for (uint64_t r = 0; r < nr; ++r, pa += C, pb += C) {
      s0.add(pa[0], pb[0]);
      s1.add(pa[1], pb[1]);
    }
    keep(ch0 + c, s0);
    keep(ch0 + c + 1, s1);
  }
  if (c < C) {
    ChannelSums s = sums(ch0 + c);
    for (uint64_t r = 0; r < nr; ++r) s.add(a[r * C + c], b[r * C + c]);
    keep(ch0 + c, s);
  }
}

// The rescale test over channels ch0 .. ch0 + len of one row.
void DiffBuilder::rescaleRow(const float* a, const float* b, uint64_t ch0, uint64_t len) {
  for (uint64_t k = 0; k < len && !broken_; ++k) {
    if (!rescaleElement(a[k], b[k], ch0 + k)) return;
    if (same_[ch0 + k] && flipped_[ch0 + k]) broken_ = true;
  }
}

bool DiffBuilder::add(const float* a, const float* b, uint64_t first, uint64_t count) {
  const stats::ChannelLayout& L = L_;
  if (first != next_ || count > L.elementCount() - first) return false;
  if (count == 0) return true;
  // Element e of the stored order is [o][r][c][i]: e = ((o * rows + r) * channels + c) * inner + i.
  uint64_t i = first % L.inner, t = first / L.inner;
  uint64_t c = t % L.channels;
  t /= L.channels;
  uint64_t r = t % L.rows, o = t / L.rows;
  uint64_t e = 0;  // within the piece
  if (L.inner == 1) {
    // Channels last ([K, N] MatMul weights): a row's elements are consecutive channels, so
    // each channel's sums are updated in place, a row segment at a time (the same operations
    // in the same order per channel as one element per run below).
    const uint64_t C = L.channels;
    while (e < count) {
      const uint64_t ch0 = o * C + c;
      // Whole rows of one outer block together, else the rest of a row (a piece's ends).
      const uint64_t nr = c == 0 ? std::min((count - e) / C, L.rows - r) : 0;
      const uint64_t len = nr ? nr * C : std::min(C - c, count - e);
      sumsRows(a + e, b + e, ch0, nr ? C : len, nr ? nr : 1);
      for (uint64_t k = 0; k < len && !broken_; k += C) rescaleRow(a + e + k, b + e + k, ch0, std::min(C - c, len - k));
      e += len;
      if (nr) {
        r += nr;
      } else {
        c += len;
        if (c == C) c = 0, ++r;
      }
      if (r == L.rows) {
        r = 0;
        ++o;
      }
    }
    next_ = first + count;
    return true;
  }
  while (e < count) {
    const uint64_t ch = o * L.channels + c;
    ChannelSums s = sums(ch);
    const uint64_t runStart = e;
    for (; i < L.inner && e < count; ++i, ++e) s.add(a[e], b[e]);
    keep(ch, s);
    if (!broken_) {
      // The same elements again for the rescale test (see PairDiff::rescale).
      for (uint64_t k = runStart; k < e && rescaleElement(a[k], b[k], ch); ++k) {
      }
      if (same_[ch] && flipped_[ch]) broken_ = true;
    }
    if (i == L.inner) {  // the next channel run
      i = 0;
      if (++c == L.channels) {
        c = 0;
        if (++r == L.rows) {
          r = 0;
          ++o;
        }
      }
    }
  }
  next_ = first + count;
  return true;
}

PairDiff DiffBuilder::finish() {
  const stats::ChannelLayout& L = L_;
  PairDiff d = std::move(d_);
  const uint64_t C = d.channels;
  const double perChannel = static_cast<double>(L.rows * L.inner);
  double sig = 0, noi = 0;
  for (uint64_t ch = 0; ch < C; ++ch) {
    d.rmsDiff[ch] = perChannel > 0 ? std::sqrt(noise_[ch] / perChannel) : 0.0;
    d.sqnr[ch] = stats::sqnrDb(signal_[ch], noise_[ch]);
    d.tensorMaxAbsDiff = std::max(d.tensorMaxAbsDiff, d.maxAbsDiff[ch]);
    sig += signal_[ch];
    noi += noise_[ch];
  }
  const double n = static_cast<double>(L.elementCount());
  d.tensorRmsDiff = n > 0 ? std::sqrt(noi / n) : 0.0;
  d.tensorSqnr = stats::sqnrDb(sig, noi);
  // The rescale test: B differs from A, no element broke the pattern, and the log-ratio
  // variance of every channel with non-zero elements is the same within its group (all
  // channels are one group but in a grouped Conv), within float32 rounding of the rescaled
  // values (about 1e-7 relative per element) and a part in 1e3.
  if (!broken_ && noi > 0 && C > 0) {
    const uint64_t G = C % groups_ == 0 ? groups_ : 1;
    std::vector<std::vector<double>> var(G);
    d.rescaleFactor.assign(C, 1.0);
    bool scaled = false;
    for (uint64_t ch = 0; ch < C; ++ch) {
      const double m = static_cast<double>(same_[ch] + flipped_[ch]);
      if (m == 0) continue;
      const double mean = logSum_[ch] / m;
      var[ch / (C / G)].push_back(std::max(0.0, logSq_[ch] / m - mean * mean));
      d.rescaleFactor[ch] = (flipped_[ch] ? -1.0 : 1.0) * std::exp(mean);
      if (std::fabs(mean) > 1e-4 || flipped_[ch]) scaled = true;
    }
    bool same = false;
    for (const auto& v : var) {
      if (v.empty()) continue;
      const auto [lo, hi] = std::minmax_element(v.begin(), v.end());
      same = *hi - *lo <= 1e-6 + 1e-3 * *hi;
      if (!same) break;
    }
    d.rescale = scaled && same;
    if (!d.rescale) d.rescaleFactor.clear();
  }
  return d;
}

PairDiff diffValues(const float* a, const float* b, const stats::ChannelLayout& L, uint64_t groups) {
  DiffBuilder d(L, groups);
  d.add(a, b, 0, L.elementCount());
  return d.finish();
}

PairDiff comparePair(const graph::Layer& a, const graph::Layer& b, wire::Bytes externalA, wire::Bytes externalB) {
  PairDiff none;
  auto quantOf = [](const graph::Layer& L, analysis::QuantInfo* out) {
    auto dq = analysis::Dequantizer::create(L);
    if (dq.ok()) *out = dq->info();
  };
  quantOf(a, &none.quantA);
  quantOf(b, &none.quantB);
  none.reason = incompatibility(a, b);
  if (!none.reason.empty()) return none;
  analysis::QuantInfo qa, qb;
  auto va = analysis::layerWeightValues(a, externalA, &qa);
  if (!va.ok()) {
    none.reason = "A: " + va.error().describe();
    return none;
  }
  auto vb = analysis::layerWeightValues(b, externalB, &qb);
  if (!vb.ok()) {
    none.reason = "B: " + vb.error().describe();
    return none;
  }
  if (!finite(va.value()) || !finite(vb.value())) {
    none.reason = std::string(!finite(va.value()) ? "A" : "B") + ": the weight holds NaN or infinite values";
    return none;
  }
  PairDiff d = diffValues(va->data(), vb->data(), a.layout, rescaleGroups(a));
  d.quantA = std::move(qa);
  d.quantB = std::move(qb);
  return d;
}

namespace {

Result<Side> sideOf(onnx::Model model) {
  Side s;
  s.model = std::make_unique<onnx::Model>(std::move(model));
  auto d = graph::findLayers(*s.model);
  if (!d.ok()) return d.error();
  s.discovery = std::move(d.value());
  return s;
}

}  // namespace

Result<Side> openSide(const uint8_t* bytes, size_t size) {
  auto m = onnx::parseModel(bytes, size);
  if (!m.ok()) return m.error();
  return sideOf(std::move(m.value()));
}

Comparison::Comparison(Side a, Side b) : a_(std::move(a)), b_(std::move(b)) {
  matching_ = matchLayers(a_.discovery.layers, b_.discovery.layers);
}

PairDiff Comparison::pair(size_t k, wire::Bytes externalA, wire::Bytes externalB) const {
  if (k >= matching_.pairs.size()) {
    PairDiff d;
    d.reason = "no pair " + std::to_string(k);
    return d;
  }
  const Match& m = matching_.pairs[k];
  return comparePair(a_.discovery.layers[m.a], b_.discovery.layers[m.b], externalA, externalB);
}

Result<FullComparison> compareModels(const uint8_t* a, size_t aSize, const uint8_t* b, size_t bSize) {
  auto sa = openSide(a, aSize);
  if (!sa.ok()) {
    Error e = sa.error();
    e.message = "model A: " + e.message;
    return e;
  }
  auto sb = openSide(b, bSize);
  if (!sb.ok()) {
    Error e = sb.error();
    e.message = "model B: " + e.message;
    return e;
  }
  FullComparison out;
  out.comparison = std::make_unique<Comparison>(std::move(sa.value()), std::move(sb.value()));
  const size_t n = out.comparison->matching().pairs.size();
  out.pairs.reserve(n);
  for (size_t k = 0; k < n; ++k) out.pairs.push_back(out.comparison->pair(k));
  return out;
}

Result<Side> openSkimmedSide(onnx::ByteReader& in, uint64_t size, uint8_t* image, onnx::Skim* skim) {
  auto sk = onnx::skimModel(in, size, image);
  if (!sk.ok()) return sk.error();
  *skim = std::move(sk.value());
  auto m = onnx::parseModel(image, static_cast<size_t>(size));
  if (!m.ok()) return m.error();
  // Payloads the skim left unread are not in memory: finding the layers must not read them.
  analysis::markDeferred(image, *skim, &m.value());
  auto s = sideOf(std::move(m.value()));
  if (!s.ok()) return s.error();
  Error e = analysis::settleSkim(in, image, skim, s->model.get(), s->discovery);
  if (!e.ok()) return e;
  return s;
}

PairStream::Feed PairStream::feedOf(const graph::Layer& L, bool streamed, uint64_t available) {
  if (!streamed) return Feed::Memory;
  const onnx::Tensor& w = *L.weight;
  if (L.quant.blockwise() || L.quant.storedAs || !onnx::isReadableType(w.dataType)) return Feed::Whole;
  if (onnx::dataTypeSize(w.dataType) == 0 && !onnx::isPacked4(w.dataType)) return Feed::Whole;
  uint64_t count = 0;
  if (!w.elementCount(&count) || count != L.layout.elementCount()) return Feed::Whole;
  const uint64_t bytes = onnx::storedByteSize(w.dataType, count);
  if (available != 0 ? available != bytes : !w.external) return Feed::Whole;
  if (!analysis::Dequantizer::create(L).ok()) return Feed::Whole;
  return Feed::Pieces;
}

uint64_t PairStream::storedBits(const graph::Layer& L) {
  const int32_t t = L.weight->dataType;
  return onnx::isPacked4(t) ? 4 : 8 * onnx::dataTypeSize(t);
}

PairStream::PairStream(const graph::Layer& a, const graph::Layer& b, Feed feedA, Feed feedB)
    : a_(&a), b_(&b), diff_(a.layout, rescaleGroups(a)) {
  va_.feed = feedA;
  vb_.feed = feedB;
  for (auto [L, v, name] : {std::tuple{&a, &va_, "A: "}, std::tuple{&b, &vb_, "B: "}}) {
    auto dq = analysis::Dequantizer::create(*L);
    if (dq.ok()) v->quant = dq->info();
    if (v->feed == Feed::Memory) {
      auto values = analysis::layerWeightValues(*L, {}, &v->quant);
      if (!values.ok()) {
        v->error = name + values.error().describe();
      } else {
        v->held = std::move(values.value());
        v->finite = finite(v->held);
      }
    } else if (v->feed == Feed::Pieces) {
      v->dq = std::move(dq.value());  // feedOf checked it
      v->dataType = L->weight->dataType;
    }
  }
}

void PairStream::hold(int side, wire::Bytes stored) {
  Values& v = side == 0 ? va_ : vb_;
  const graph::Layer& L = side == 0 ? *a_ : *b_;
  if (v.feed != Feed::Whole) return;
  // The layer as if its weight's bytes were in memory: external data handed over as
  // comparePair takes it, a payload of the model file as the tensor's raw data.
  onnx::Tensor w = *L.weight;
  graph::Layer copy = L;
  copy.weight = &w;
  if (!w.external) {
    w.rawData = stored;
    w.deferred = false;
  }
  auto values = analysis::layerWeightValues(copy, w.external ? stored : wire::Bytes{}, &v.quant);
  if (!values.ok()) {
    v.error = std::string(side == 0 ? "A: " : "B: ") + values.error().describe();
    return;
  }
  v.held = std::move(values.value());
  v.finite = finite(v.held);
  v.feed = Feed::Memory;
}

void PairStream::fail(int side, std::string reason) {
  Values& v = side == 0 ? va_ : vb_;
  v.error = std::string(side == 0 ? "A: " : "B: ") + reason;
}

bool PairStream::needsPieces() const {
  return va_.error.empty() && vb_.error.empty() && diff_.next() < elements() &&
         (va_.feed == Feed::Pieces || vb_.feed == Feed::Pieces);
}

const float* PairStream::values(Values& v, wire::Bytes stored, uint64_t first, uint64_t count) {
  if (v.feed != Feed::Pieces) return v.held.data() + first;
  v.piece.resize(count);
  onnx::convertRaw(v.dataType, stored.data, count, v.piece.data());
  if (v.dq.active()) v.dq.apply(v.piece.data(), first, count, v.piece.data());
  if (v.finite && !finite(v.piece)) v.finite = false;
  return v.piece.data();
}

Error PairStream::feed(wire::Bytes a, wire::Bytes b, uint64_t first, uint64_t count) {
  if (!needsPieces()) return makeError(ErrorCode::InvalidArgument, "no pieces are expected");
  if (first != diff_.next() || count > elements() - first || (count % 2 && first + count != elements()))
    return makeError(ErrorCode::InvalidArgument,
                     "piece " + std::to_string(first) + " + " + std::to_string(count) + " does not follow the last one");
  for (auto [v, L, bytes] : {std::tuple{&va_, a_, a}, std::tuple{&vb_, b_, b}}) {
    if (v->feed != Feed::Pieces) continue;
    const uint64_t bits = storedBits(*L);
    const uint64_t need = ((first + count) * bits + 7) / 8 - first * bits / 8;
    if (bytes.size != need)
      return makeError(ErrorCode::InvalidArgument, "a piece of " + std::to_string(count) + " elements of '" + L->name +
                                                       "' needs " + std::to_string(need) + " stored bytes, not " +
                                                       std::to_string(bytes.size));
  }
  const float* x = values(va_, a, first, count);
  const float* y = values(vb_, b, first, count);
  diff_.add(x, y, first, count);
  return Error{};
}

PairDiff PairStream::finish() {
  PairDiff none;
  none.quantA = va_.quant;
  none.quantB = vb_.quant;
  if (!va_.error.empty() || !vb_.error.empty()) {
    none.reason = !va_.error.empty() ? va_.error : vb_.error;
    return none;
  }
  if (diff_.next() != elements()) {
    none.reason = "the weights were not read to the end";
    return none;
  }
  if (!va_.finite || !vb_.finite) {
    none.reason = std::string(!va_.finite ? "A" : "B") + ": the weight holds NaN or infinite values";
    return none;
  }
  PairDiff d = diff_.finish();
  d.quantA = va_.quant;
  d.quantB = vb_.quant;
  return d;
}

}  // namespace ql::compare
