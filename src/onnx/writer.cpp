// ModelProto writer. Each message is walked with wire::Reader; untouched fields are
// copied verbatim in runs (pieces of the input, never read here), touched ones
// re-encoded in place. A re-encoded message needs its length before its bytes, so its
// body runs twice: a size pass counting, then the emit pass producing pieces.
// Only re-encoded length prefixes (the graph's, edited nodes', ...) are written as
// minimal varints: an input that used a non-minimal length varint there comes out
// shorter, otherwise an empty edit reproduces the input byte for byte.
#include "onnx/writer.hpp"

#include <algorithm>
#include <string>
#include <string_view>
#include <unordered_map>
#include <unordered_set>
#include <utility>

#include "common/bytes.hpp"

namespace ql::onnx {

using wire::Field;
using wire::Reader;
using namespace fields;  // ModelProto::kGraph, TensorProto::kRawData, ...

namespace {

// The pieces being written: runs of the input become input pieces, large made bytes
// (a replaced tensor's raw data) are referenced where they are, small ones are gathered.
class Sink {
 public:
  static constexpr size_t kReferenceAtLeast = 4096;
  Sink(const uint8_t* base, size_t size, WrittenModel& w) : base_(base), size_(size), w_(w) {}
  void put(const uint8_t* p, size_t n) {
    if (n == 0) return;
    // Addresses compared as unsigned integers: the input may pass 2 GiB in wasm32 (bytes.hpp).
    const uintptr_t at = reinterpret_cast<uintptr_t>(p), from = reinterpret_cast<uintptr_t>(base_);
    if (base_ && at >= from && at - from < size_) {
      flushMade();
      const uint64_t off = at - from;
      if (!w_.pieces.empty() && w_.pieces.back().input && !w_.pieces.back().transform &&
          w_.pieces.back().offset + w_.pieces.back().length == off) {
        w_.pieces.back().length += n;
        w_.size += n;
      } else {
        add({true, 0, off, n, nullptr});
      }
    } else if (n >= kReferenceAtLeast) {
      flushMade();
      add({false, 0, 0, n, p});
    } else {
      cur_.insert(cur_.end(), p, p + n);
    }
  }
  // A replaced tensor's stored raw data at `offset` of the input, rewritten as written.
  void transformed(uint64_t offset, uint64_t n, const PieceTransform* t) {
    flushMade();
    Piece p{true, 0, offset, n, nullptr};
    p.transform = t;
    add(p);
  }
  void finish() { flushMade(); }

 private:
  void add(Piece piece) {
    piece.at = w_.size;
    w_.size += piece.length;
    w_.pieces.push_back(piece);
  }
  void flushMade() {
    if (cur_.empty()) return;
    w_.made.push_back(std::move(cur_));  // the buffer moves: its bytes stay where they are
    cur_ = {};
    add({false, 0, 0, w_.made.back().size(), w_.made.back().data()});
  }
  const uint8_t* base_;
  size_t size_;
  WrittenModel& w_;
  std::vector<uint8_t> cur_;
};

// Emits to `sink`, or only counts when `sink` is null (the size pass).
struct Out {
  Sink* sink = nullptr;
  size_t size = 0;
  void put(const void* p, size_t n) {
    size += n;
    if (sink) sink->put(static_cast<const uint8_t*>(p), n);
  }
  void transformed(const TensorData& t) {
    size += t.transformSize;
    if (sink) sink->transformed(t.inputOffset, t.transformSize, t.transform.get());
  }
  void varint(uint64_t v) {
    uint8_t tmp[10];
    size_t n = 0;
    for (; v >= 0x80; v >>= 7) tmp[n++] = static_cast<uint8_t>(v | 0x80);
    tmp[n++] = static_cast<uint8_t>(v);
    put(tmp, n);
  }
  void tag(uint32_t field, uint8_t type) { varint(uint64_t{field} << 3 | type); }
  void str(uint32_t field, std::string_view s) {
    tag(field, wire::kLen);
    varint(s.size());
    put(s.data(), s.size());
  }
};

// A pending run of untouched fields, copied in one piece when a touched field or the end comes.
struct Run {
  Out& o;
  const uint8_t* from = nullptr;
  void keep(const uint8_t* at) {
    if (!from) from = at;
  }
  void cut(const uint8_t* at) {
    if (from) o.put(from, static_cast<size_t>(at - from));
    from = nullptr;
  }
};

const uint8_t* endOf(wire::Bytes b) { return b.data + b.size; }

Error invalid(std::string msg) { return makeError(ErrorCode::InvalidArgument, std::move(msg)); }

Error checkTensorData(const TensorData& t, const char* what) {
  const std::string name = std::string(what) + " initializer '" + t.name + "'";
  if (t.name.empty()) return invalid(std::string(what) + " initializer has no name");
  Tensor probe;  // reuses the parser's overflow-safe element count
  probe.dims = t.dims;
  uint64_t count = 0;
  if (!probe.elementCount(&count)) return invalid(name + " has a negative dimension or too many elements");
  const bool packed4 = isPacked4(t.dataType);  // int4/uint4: two per byte
  const size_t elem = dataTypeSize(t.dataType);
  if (elem == 0 && !packed4)
    return invalid(name + " has data type " + dataTypeName(t.dataType) + ", which has no fixed-size raw form");
  if (count > (uint64_t{1} << 58)) return invalid(name + " has too many elements");
  const uint64_t want = packed4 ? (count + 1) / 2 : count * elem;  // elem <= 16: no overflow
  if (t.rawSize() != want) {
    return invalid(name + " has " + std::to_string(t.rawSize()) + " bytes of raw data; its dims and " + dataTypeName(t.dataType) +
                   " need " + std::to_string(want));
  }
  return {};
}

class Writer {
 public:
  Writer(const uint8_t* base, const Model& model, const GraphEdit& edit) : base_(base), model_(model), edit_(edit) {}

  Error validate();
  Error planData();
  bool model(wire::Bytes b, Out& o);
  const Error& error() const { return error_; }

 private:
  bool failReader(const Reader& r) {
    if (error_.ok()) error_ = r.error();
    return false;
  }
  bool mismatch(int64_t offset) {
    error_ = makeError(ErrorCode::InvalidArgument, "the model was not parsed from these bytes", offset);
    return false;
  }
  size_t off(wire::Bytes b) const { return static_cast<size_t>(offsetIn(base_, b.data)); }
  // Emits `field` as a message whose payload `body` writes; `body` runs twice.
  template <class Body>
  bool message(uint32_t field, Out& o, Body body) {
    Out count;
    if (!body(count)) return false;
    o.tag(field, wire::kLen);
    o.varint(count.size);
    return body(o);
  }
  bool stringField(wire::Bytes b, uint32_t number, std::string_view* out);
  bool graph(wire::Bytes b, Out& o);
  bool node(wire::Bytes b, const NodeEdit& e, const Node& n, Out& o);
  bool tensor(wire::Bytes b, const TensorData& t, bool withName, Out& o);
  // An input tensor kept as it is but for its external_data entries, which point into the new data file.
  bool relocated(wire::Bytes b, const std::pair<uint64_t, uint64_t>& where, Out& o);
  void externalEntries(const std::pair<uint64_t, uint64_t>& where, Out& o);
  void newNode(const NewNode& n, Out& o);
  // A graph input named like a replaced initializer whose declared shape the new dims contradict.
  const TensorData* reshapedInput(std::string_view name) const;
  bool inputWithDims(wire::Bytes b, const TensorData& t, Out& o);

  const uint8_t* base_;
  const Model& model_;
  const GraphEdit& edit_;
  Error error_;
  std::vector<const NodeEdit*> nodeEdit_;
  std::vector<bool> removedNode_;
  std::vector<std::vector<const NewNode*>> addAfter_;  // per node index: the new nodes that follow it
  std::unordered_map<std::string_view, const TensorData*> replace_;
  std::unordered_set<std::string_view> removeInit_, removeVi_;
  std::unordered_map<std::string_view, size_t> meta_;  // key -> index in edit_.metadata
  // Initializers written into the new data file: name -> (offset, length) there.
  std::unordered_map<std::string_view, std::pair<uint64_t, uint64_t>> placed_;
  const std::pair<uint64_t, uint64_t>* external_ = nullptr;  // tensor(): written as external data there
  WrittenData data_;

 public:
  WrittenData takeData() { return std::move(data_); }
};

// Zeros for the alignment gaps of the data file (a gap is shorter than the alignment).
const uint8_t* zeros() {
  static const std::vector<uint8_t> z(kExternalAlignment, 0);
  return z.data();
}

Error Writer::validate() {
  const Graph& g = model_.graph;
  const size_t n = g.nodes.size();
  nodeEdit_.assign(n, nullptr);
  removedNode_.assign(n, false);
  for (size_t i : edit_.removeNodes) {
    if (i >= n) return invalid("cannot remove node " + std::to_string(i) + ": the graph has " + std::to_string(n) + " nodes");
    removedNode_[i] = true;
  }
  for (const NodeEdit& e : edit_.editNodes) {
    if (e.index >= n)
      return invalid("cannot edit node " + std::to_string(e.index) + ": the graph has " + std::to_string(n) + " nodes");
    if (removedNode_[e.index]) return invalid("node " + std::to_string(e.index) + " is both removed and edited");
    if (nodeEdit_[e.index]) return invalid("node " + std::to_string(e.index) + " is edited twice");
    nodeEdit_[e.index] = &e;
  }
  addAfter_.assign(n, {});
  for (const NewNode& a : edit_.addNodes) {
    if (a.after >= n)
      return invalid("cannot add node '" + a.name + "' after node " + std::to_string(a.after) + ": the graph has " +
                     std::to_string(n) + " nodes");
    if (a.opType.empty()) return invalid("new node '" + a.name + "' has no op_type");
    addAfter_[a.after].push_back(&a);
  }
  std::unordered_set<std::string_view> inits, infos;
  for (const Tensor& t : g.initializers) inits.insert(t.name);
  for (const ValueInfo& v : g.valueInfo) infos.insert(v.name);
  for (const std::string& name : edit_.removeInitializers) {
    if (!inits.count(name)) return invalid("cannot remove initializer '" + name + "': no initializer has that name");
    removeInit_.insert(name);
  }
  for (const TensorData& t : edit_.replaceInitializers) {
    if (!inits.count(t.name)) return invalid("cannot replace initializer '" + t.name + "': no initializer has that name");
    if (removeInit_.count(t.name)) return invalid("initializer '" + t.name + "' is both removed and replaced");
    if (!replace_.emplace(t.name, &t).second) return invalid("initializer '" + t.name + "' is replaced twice");
    if (Error e = checkTensorData(t, "replacement"); !e.ok()) return e;
  }
  std::unordered_set<std::string_view> added;
  for (const TensorData& t : edit_.addInitializers) {
    if (Error e = checkTensorData(t, "new"); !e.ok()) return e;
    if ((inits.count(t.name) && !removeInit_.count(t.name)) || !added.insert(t.name).second)
      return invalid("cannot add initializer '" + t.name + "': an initializer already has that name");
  }
  if (!added.empty() && !model_.hasGraph) return invalid("cannot add initializers: the model has no graph");
  for (const std::string& name : edit_.removeValueInfo) {
    if (!infos.count(name)) return invalid("cannot remove value_info '" + name + "': no value_info has that name");
    removeVi_.insert(name);
  }
  for (size_t i = 0; i < edit_.metadata.size(); ++i) {
    if (!meta_.emplace(edit_.metadata[i].first, i).second)
      return invalid("metadata key '" + edit_.metadata[i].first + "' is given twice");
  }
  if (!edit_.dataLocation.empty()) return planData();
  if (!edit_.external.empty()) return invalid("external tensors given without a data location");
  return {};
}

// The new data file: the listed external initializers in the order of the model's
// initializers, each aligned (kExternalAlign*), replaced ones from their new bytes.
Error Writer::planData() {
  std::unordered_map<std::string_view, const GraphEdit::ExternalTensor*> ext;
  for (const auto& e : edit_.external) {
    if (!ext.emplace(e.name, &e).second) return invalid("external tensor '" + e.name + "' is listed twice");
  }
  std::unordered_map<std::string, uint32_t> sourceIndex;
  data_.location = edit_.dataLocation;
  size_t found = 0;
  for (const Tensor& t : model_.graph.initializers) {
    auto it = ext.find(t.name);
    if (it == ext.end()) continue;
    ++found;
    if (removeInit_.count(t.name)) continue;
    auto rep = replace_.find(t.name);
    const uint64_t length = rep != replace_.end() ? rep->second->rawSize() : it->second->length;
    uint64_t at = data_.size;
    if (length > kExternalAlignThreshold && at % kExternalAlignment) at += kExternalAlignment - at % kExternalAlignment;
    if (at > data_.size) data_.pieces.push_back({false, data_.size, 0, at - data_.size, zeros()});
    if (rep != replace_.end() && rep->second->transform) {  // its stored bytes, rewritten as written
      if (length != it->second->length)
        return invalid("initializer '" + std::string(t.name) + "' is transformed to a size other than its stored one");
      auto [s, added] = sourceIndex.emplace(it->second->path, static_cast<uint32_t>(data_.sources.size()));
      if (added) data_.sources.push_back(it->second->path);
      Piece p{true, at, it->second->offset, length, nullptr, s->second};
      p.transform = rep->second->transform.get();
      data_.pieces.push_back(p);
    } else if (rep != replace_.end()) {
      data_.pieces.push_back({false, at, 0, length, rep->second->rawData()});
    } else {
      auto [s, added] = sourceIndex.emplace(it->second->path, static_cast<uint32_t>(data_.sources.size()));
      if (added) data_.sources.push_back(it->second->path);
      data_.pieces.push_back({true, at, it->second->offset, length, nullptr, s->second});
    }
    if (!placed_.emplace(t.name, std::make_pair(at, length)).second)
      return invalid("initializer '" + std::string(t.name) + "' is given twice");
    data_.size = at + length;
  }
  if (found != ext.size()) return invalid("an external tensor listed is not an initializer of the main graph");
  return {};
}

// The string field `number` of an encoded message (the last occurrence wins, as in protobuf).
bool Writer::stringField(wire::Bytes b, uint32_t number, std::string_view* out) {
  Reader r(b, base_);
  Field f;
  *out = {};
  while (!r.done()) {
    if (!r.next(&f)) return failReader(r);
    if (f.number == number && f.type == wire::kLen) *out = f.bytes.str();
  }
  return true;
}

bool Writer::model(wire::Bytes b, Out& o) {
  // First pass: validate the framing and find the last metadata entry (new ones follow it).
  Reader scan(b, base_);
  Field f;
  const uint8_t* lastMeta = nullptr;
  while (!scan.done()) {
    if (!scan.next(&f)) return failReader(scan);
    if (f.number == ModelProto::kMetadataProps && f.type == wire::kLen) lastMeta = f.bytes.data;
  }
  std::vector<bool> metaDone(edit_.metadata.size(), false);
  auto addMeta = [&](size_t i) {
    metaDone[i] = true;
    return message(ModelProto::kMetadataProps, o, [&](Out& m) {
      m.str(StringStringEntryProto::kKey, edit_.metadata[i].first);
      m.str(StringStringEntryProto::kValue, edit_.metadata[i].second);
      return true;
    });
  };
  auto addRemainingMeta = [&] {
    for (size_t i = 0; i < metaDone.size(); ++i)
      if (!metaDone[i]) addMeta(i);
  };
  Reader r(b, base_);
  Run run{o};
  bool sawGraph = false;
  while (!r.done()) {
    if (!r.next(&f)) return failReader(r);
    const uint8_t* at = base_ + f.offset;
    if (f.number == ModelProto::kGraph && f.type == wire::kLen) {
      run.cut(at);
      sawGraph = true;
      if (!message(ModelProto::kGraph, o, [&](Out& m) { return graph(f.bytes, m); })) return false;
    } else if (f.number == ModelProto::kMetadataProps && f.type == wire::kLen) {
      std::string_view key;
      if (!stringField(f.bytes, StringStringEntryProto::kKey, &key)) return false;
      auto it = meta_.find(key);
      if (it == meta_.end()) {
        run.keep(at);
      } else {
        run.cut(at);  // the first entry with the key is replaced in place, later ones dropped
        if (!metaDone[it->second]) addMeta(it->second);
      }
      if (f.bytes.data == lastMeta) {
        run.cut(endOf(f.bytes));
        addRemainingMeta();
      }
    } else {
      run.keep(at);
    }
  }
  run.cut(endOf(b));
  if (!lastMeta) addRemainingMeta();
  if (sawGraph != model_.hasGraph) return mismatch(-1);
  return true;
}

bool Writer::graph(wire::Bytes b, Out& o) {
  const Graph& g = model_.graph;
  const uint8_t* lastInit = g.initializers.empty() ? nullptr : base_ + g.initializers.back().offset;
  auto addInits = [&] {
    for (const TensorData& t : edit_.addInitializers)
      message(GraphProto::kInitializer, o, [&](Out& m) { return tensor({}, t, true, m); });
  };
  Reader r(b, base_);
  Field f;
  Run run{o};
  size_t k = 0;
  bool added = false;
  while (!r.done()) {
    if (!r.next(&f)) return failReader(r);
    const uint8_t* at = base_ + f.offset;
    if (f.type != wire::kLen || (f.number != GraphProto::kNode && f.number != GraphProto::kInitializer &&
                                 f.number != GraphProto::kInput && f.number != GraphProto::kValueInfo)) {
      run.keep(at);
    } else if (f.number == GraphProto::kNode) {
      const size_t i = k++;
      // Indices refer to model.graph.nodes: the bytes must be the ones it was parsed from.
      if (i >= g.nodes.size() || g.nodes[i].offset != off(f.bytes)) return mismatch(static_cast<int64_t>(f.offset));
      if (removedNode_[i] || nodeEdit_[i])
        run.cut(at);
      else
        run.keep(at);
      if (nodeEdit_[i] && !message(GraphProto::kNode, o, [&](Out& m) { return node(f.bytes, *nodeEdit_[i], g.nodes[i], m); }))
        return false;
      if (!addAfter_[i].empty()) {
        run.cut(endOf(f.bytes));
        for (const NewNode* a : addAfter_[i]) {
          message(GraphProto::kNode, o, [&](Out& m) {
            newNode(*a, m);
            return true;
          });
        }
      }
    } else {
      std::string_view name;
      // an initializer's name, or a ValueInfoProto's
      const bool init = f.number == GraphProto::kInitializer;
      if (!stringField(f.bytes, init ? TensorProto::kName : ValueInfoProto::kName, &name)) return false;
      if (init) {
        auto it = replace_.find(name);
        auto placed = placed_.find(name);
        if (removeInit_.count(name) || it != replace_.end() || placed != placed_.end())
          run.cut(at);
        else
          run.keep(at);
        if (removeInit_.count(name)) {
        } else if (it != replace_.end()) {
          external_ = placed == placed_.end() ? nullptr : &placed->second;
          const bool ok = message(GraphProto::kInitializer, o, [&](Out& m) { return tensor(f.bytes, *it->second, false, m); });
          external_ = nullptr;
          if (!ok) return false;
        } else if (placed != placed_.end() &&
                   !message(GraphProto::kInitializer, o, [&](Out& m) { return relocated(f.bytes, placed->second, m); })) {
          return false;
        }
        if (f.bytes.data == lastInit) {
          run.cut(endOf(f.bytes));
          addInits();
          added = true;
        }
      } else if ((f.number == GraphProto::kInput ? removeInit_ : removeVi_).count(name)) {
        run.cut(at);  // an old exporter's weight listed as graph input, or a dropped value_info
      } else if (const TensorData* t = f.number == GraphProto::kInput ? reshapedInput(name) : nullptr) {
        // An old exporter's weight listed as a graph input, replaced with other dims: its
        // declared type follows (a runtime refuses a declared shape the initializer contradicts).
        run.cut(at);
        if (!message(GraphProto::kInput, o, [&](Out& m) { return inputWithDims(f.bytes, *t, m); })) return false;
      } else {
        run.keep(at);
      }
    }
  }
  run.cut(endOf(b));
  if (!added) addInits();
  return k == g.nodes.size() || mismatch(-1);
}

const TensorData* Writer::reshapedInput(std::string_view name) const {
  auto it = replace_.find(name);
  if (it == replace_.end()) return nullptr;
  for (const ValueInfo& in : model_.graph.inputs) {
    if (in.name != name) continue;
    if (!in.hasType || in.typeCase != TypeProto::kTensorType) return nullptr;  // nothing declared to contradict
    bool same = in.hasShape && in.shape.size() == it->second->dims.size();
    for (size_t k = 0; same && k < in.shape.size(); ++k) same = in.shape[k].hasValue && in.shape[k].value == it->second->dims[k];
    return same ? nullptr : it->second;
  }
  return nullptr;
}

bool Writer::inputWithDims(wire::Bytes b, const TensorData& t, Out& o) {
  // Every field kept but the type, which becomes a tensor type of t's element type and dims.
  Reader r(b, base_);
  Field f;
  Run run{o};
  bool typed = false;
  auto type = [&] {
    typed = true;
    return message(ValueInfoProto::kType, o, [&](Out& tp) {
      return message(TypeProto::kTensorType, tp, [&](Out& tt) {
        tt.tag(TypeProto::Tensor::kElemType, wire::kVarint);
        tt.varint(static_cast<uint64_t>(static_cast<int64_t>(t.dataType)));
        return message(TypeProto::Tensor::kShape, tt, [&](Out& sh) {
          for (int64_t d : t.dims) {
            message(TensorShapeProto::kDim, sh, [&](Out& dim) {
              dim.tag(TensorShapeProto::Dimension::kDimValue, wire::kVarint);
              dim.varint(static_cast<uint64_t>(d));
              return true;
            });
          }
          return true;
        });
      });
    });
  };
  while (!r.done()) {
    if (!r.next(&f)) return failReader(r);
    const uint8_t* at = base_ + f.offset;
    if (f.number == ValueInfoProto::kType) {
      run.cut(at);
      if (!typed && !type()) return false;
    } else {
      run.keep(at);
    }
  }
  run.cut(endOf(b));
  return typed || type();
}

bool Writer::node(wire::Bytes b, const NodeEdit& e, const Node& n, Out& o) {
  auto list = [&](uint32_t field, const std::vector<std::string>& v) {
    for (const std::string& s : v) o.str(field, s);
  };
  // New lists go where the first original entry was, or first when there was none.
  bool insDone = e.inputs && n.inputs.empty(), outsDone = e.outputs && n.outputs.empty(), opDone = false;
  if (insDone) list(NodeProto::kInput, *e.inputs);
  if (outsDone) list(NodeProto::kOutput, *e.outputs);
  Reader r(b, base_);
  Field f;
  Run run{o};
  while (!r.done()) {
    if (!r.next(&f)) return failReader(r);
    const uint8_t* at = base_ + f.offset;
    std::string_view attr;
    if (f.number == NodeProto::kAttribute && f.type == wire::kLen && !e.dropAttributes.empty() &&
        !stringField(f.bytes, AttributeProto::kName, &attr))
      return false;
    bool dropAttr = false;
    for (const std::string& d : e.dropAttributes) dropAttr |= f.number == NodeProto::kAttribute && d == attr;
    if ((f.number == NodeProto::kInput && e.inputs) || (f.number == NodeProto::kOutput && e.outputs) ||
        (f.number == NodeProto::kOpType && e.opType) || dropAttr) {
      run.cut(at);
      // The replacement is written once, at the first occurrence; later ones are dropped.
      if (f.number == NodeProto::kInput && !std::exchange(insDone, true)) list(NodeProto::kInput, *e.inputs);
      if (f.number == NodeProto::kOutput && !std::exchange(outsDone, true)) list(NodeProto::kOutput, *e.outputs);
      if (f.number == NodeProto::kOpType && !std::exchange(opDone, true)) o.str(NodeProto::kOpType, *e.opType);
    } else {
      run.keep(at);
    }
  }
  run.cut(endOf(b));
  if (e.opType && !opDone) o.str(NodeProto::kOpType, *e.opType);
  return true;
}

void Writer::newNode(const NewNode& n, Out& o) {
  for (const std::string& s : n.inputs) o.str(NodeProto::kInput, s);
  for (const std::string& s : n.outputs) o.str(NodeProto::kOutput, s);
  if (!n.name.empty()) o.str(NodeProto::kName, n.name);
  o.str(NodeProto::kOpType, n.opType);
  for (const NewAttribute& a : n.attributes) {
    message(NodeProto::kAttribute, o, [&](Out& m) {
      m.str(AttributeProto::kName, a.name);
      switch (a.type) {
        case NewAttribute::kFloat:
          m.tag(AttributeProto::kF, wire::kFixed32);
          m.put(&a.f, 4);  // little-endian hosts only (see TensorData)
          break;
        case NewAttribute::kInt:
          m.tag(AttributeProto::kI, wire::kVarint);
          m.varint(static_cast<uint64_t>(a.i));
          break;
        case NewAttribute::kString:
          m.str(AttributeProto::kS, a.s);
          break;
        case NewAttribute::kInts:
          message(AttributeProto::kInts, m, [&](Out& p) {
            for (int64_t v : a.ints) p.varint(static_cast<uint64_t>(v));
            return true;
          });
          break;
      }
      m.tag(AttributeProto::kType, wire::kVarint);
      m.varint(static_cast<uint64_t>(a.type));
      return true;
    });
  }
  if (!n.domain.empty()) o.str(NodeProto::kDomain, n.domain);
}

bool Writer::tensor(wire::Bytes b, const TensorData& t, bool withName, Out& o) {
  // New fields are written in field-number order around the kept ones, as protobuf
  // serializers do: dims and data_type first (with the name of a new tensor), raw_data
  // before the fields numbered above it.
  int stage = 0;
  auto upTo = [&](uint32_t number) {
    if (stage == 0 && number > TensorProto::kDataType) {
      if (!t.dims.empty()) {
        message(TensorProto::kDims, o, [&](Out& m) {
          for (int64_t d : t.dims) m.varint(static_cast<uint64_t>(d));
          return true;
        });
      }
      o.tag(TensorProto::kDataType, wire::kVarint);
      o.varint(static_cast<uint64_t>(static_cast<int64_t>(t.dataType)));
      if (withName) o.str(TensorProto::kName, t.name);
      stage = 1;
    }
    if (stage == 1 && number > TensorProto::kRawData) {
      if (!external_) {
        o.tag(TensorProto::kRawData, wire::kLen);
        o.varint(t.rawSize());
        if (t.transform)
          o.transformed(t);
        else
          o.put(t.rawData(), t.rawSize());
      }
      stage = 2;
    }
    if (stage == 2 && number > TensorProto::kDataLocation) {
      if (external_) {
        externalEntries(*external_, o);
        o.tag(TensorProto::kDataLocation, wire::kVarint);
        o.varint(static_cast<uint64_t>(TensorProto::kLocationExternal));
      }
      stage = 3;
    }
  };
  Reader r(b, base_);
  Field f;
  Run run{o};
  while (!r.done()) {
    if (!r.next(&f)) return failReader(r);
    const uint8_t* at = base_ + f.offset;
    // Old data and its description go: dims, data_type, segment, every typed field,
    // raw_data, external_data, data_location. An external tensor becomes inline, unless
    // it is placed in the new data file (external_), where it points to instead.
    // Kept: name, doc_string and unknown fields.
    bool dropped = false;
    switch (f.number) {
      case TensorProto::kDims:
      case TensorProto::kDataType:
      case TensorProto::kSegment:
      case TensorProto::kFloatData:
      case TensorProto::kInt32Data:
      case TensorProto::kStringData:
      case TensorProto::kInt64Data:
      case TensorProto::kRawData:
      case TensorProto::kDoubleData:
      case TensorProto::kUint64Data:
      case TensorProto::kExternalData:
      case TensorProto::kDataLocation:
        dropped = true;
        break;
      default:
        break;
    }
    if (dropped || (stage == 0 && f.number > TensorProto::kDataType) || (stage == 1 && f.number > TensorProto::kRawData) ||
        (stage == 2 && f.number > TensorProto::kDataLocation))
      run.cut(at);
    if (dropped) continue;
    upTo(f.number);
    run.keep(at);
  }
  run.cut(endOf(b));
  upTo(UINT32_MAX);
  return true;
}

void Writer::externalEntries(const std::pair<uint64_t, uint64_t>& where, Out& o) {
  // In the order onnx's set_external_data writes them.
  const std::pair<const char*, std::string> entries[] = {
      {"location", edit_.dataLocation}, {"offset", std::to_string(where.first)}, {"length", std::to_string(where.second)}};
  for (const auto& entry : entries) {
    message(TensorProto::kExternalData, o, [&](Out& m) {
      m.str(StringStringEntryProto::kKey, entry.first);
      m.str(StringStringEntryProto::kValue, entry.second);
      return true;
    });
  }
}

bool Writer::relocated(wire::Bytes b, const std::pair<uint64_t, uint64_t>& where, Out& o) {
  // Every field kept but external_data, whose new entries go where the first old one was.
  Reader r(b, base_);
  Field f;
  Run run{o};
  bool done = false;
  while (!r.done()) {
    if (!r.next(&f)) return failReader(r);
    const uint8_t* at = base_ + f.offset;
    if (f.number == TensorProto::kExternalData) {
      run.cut(at);
      if (!std::exchange(done, true)) externalEntries(where, o);
    } else {
      run.keep(at);
    }
  }
  run.cut(endOf(b));
  if (!done) externalEntries(where, o);
  return true;
}

}  // namespace

std::vector<uint8_t> WrittenModel::assemble(const uint8_t* input) const {
  std::vector<uint8_t> out(size);
  for (const Piece& p : pieces) {
    std::copy_n(p.input ? input + p.offset : p.bytes, p.length, out.data() + p.at);
    if (p.transform) p.transform->apply(p.transformAt, out.data() + p.at, p.length);
  }
  return out;
}

Result<WrittenModel> planModel(const uint8_t* data, size_t size, const Model& model, const GraphEdit& edit) {
  if (!data && size) return makeError(ErrorCode::InvalidArgument, "no model bytes");
  Writer w(data, model, edit);
  if (Error e = w.validate(); !e.ok()) return e;
  WrittenModel written;
  Sink sink(data, size, written);
  Out o{&sink};
  if (!w.model({data, size}, o)) return w.error();
  sink.finish();
  written.data = w.takeData();
  return written;
}

Result<std::vector<uint8_t>> writeModel(const uint8_t* data, size_t size, const Model& model, const GraphEdit& edit) {
  auto written = planModel(data, size, model, edit);
  if (!written.ok()) return written.error();
  return written->assemble(data);
}

}  // namespace ql::onnx
