// Protobuf wire reader: varints, tags, fixed and length-delimited fields, and
// every way they can be malformed (with the byte offset each error names).
#include <algorithm>
#include <catch2/catch.hpp>
#include <cstdint>
#include <cstring>
#include <limits>
#include <string>
#include <vector>

#include "onnx/wire.hpp"
#include "pb_writer.hpp"

using ql::ErrorCode;
using ql::wire::Bytes;
using ql::wire::Field;
using ql::wire::Reader;
using ql::wire::readVarint;
using ql::wire::RepeatedScalar;

namespace {

std::vector<uint8_t> bytesOf(const std::string& s) { return std::vector<uint8_t>(s.begin(), s.end()); }
std::vector<uint8_t> bytesOf(std::initializer_list<int> l) {
  std::vector<uint8_t> v;
  for (int x : l) v.push_back(static_cast<uint8_t>(x));
  return v;
}

// Reads every field of `buf`; returns the fields read before the first error.
struct ReadAll {
  std::vector<Field> fields;
  bool ok = true;
  ql::Error error;
};
ReadAll readAll(const std::vector<uint8_t>& buf) {
  ReadAll out;
  Reader r(Bytes{buf.data(), buf.size()}, buf.data());
  Field f;
  int guard = 0;
  while (!r.done()) {
    REQUIRE(++guard < 100000);
    if (!r.next(&f)) {
      out.ok = false;
      out.error = r.error();
      REQUIRE(r.done());  // a failed reader stops: loops over it terminate
      break;
    }
    out.fields.push_back(f);
  }
  return out;
}

}  // namespace

TEST_CASE("varint: every length from 1 to 10 bytes, at both ends of its range", "[wire][varint]") {
  for (int n = 1; n <= 10; ++n) {
    const uint64_t smallest = n == 1 ? 0 : uint64_t{1} << (7 * (n - 1));
    const uint64_t largest = n == 10 ? std::numeric_limits<uint64_t>::max() : (uint64_t{1} << (7 * n)) - 1;
    for (uint64_t v : {smallest, smallest + 1, largest - 1, largest}) {
      const std::vector<uint8_t> enc = bytesOf(pbw::varint(v));
      INFO("n=" << n << " v=" << v);
      REQUIRE(enc.size() == static_cast<size_t>(n));
      uint64_t out = 0xabcdef;
      REQUIRE(readVarint(enc.data(), enc.size(), &out) == static_cast<size_t>(n));
      CHECK(out == v);
      // Trailing bytes are not consumed.
      std::vector<uint8_t> longer = enc;
      longer.push_back(0x7f);
      longer.push_back(0x01);
      out = 0;
      REQUIRE(readVarint(longer.data(), longer.size(), &out) == static_cast<size_t>(n));
      CHECK(out == v);
    }
  }
}

TEST_CASE("varint: known encodings", "[wire][varint]") {
  struct Case {
    std::vector<uint8_t> enc;
    uint64_t value;
  };
  const Case cases[] = {
      {bytesOf({0x00}), 0},
      {bytesOf({0x01}), 1},
      {bytesOf({0x7f}), 127},
      {bytesOf({0x80, 0x01}), 128},
      {bytesOf({0xac, 0x02}), 300},
      {bytesOf({0x96, 0x01}), 150},
      {bytesOf({0xff, 0xff, 0xff, 0xff, 0x0f}), 0xffffffffull},
      // -1 as int64: ten bytes
      {bytesOf({0xff, 0xff, 0xff, 0xff, 0xff, 0xff, 0xff, 0xff, 0xff, 0x01}), std::numeric_limits<uint64_t>::max()},
      // 2^63: the highest bit lives in the 10th byte
      {bytesOf({0x80, 0x80, 0x80, 0x80, 0x80, 0x80, 0x80, 0x80, 0x80, 0x01}), uint64_t{1} << 63},
      // Non-canonical (padded) encodings are valid protobuf.
      {bytesOf({0x80, 0x00}), 0},
      {bytesOf({0x81, 0x80, 0x80, 0x00}), 1},
      {bytesOf({0xff, 0x80, 0x80, 0x80, 0x80, 0x80, 0x80, 0x80, 0x80, 0x00}), 127},
  };
  for (const auto& c : cases) {
    uint64_t out = 0;
    INFO("value " << c.value);
    REQUIRE(readVarint(c.enc.data(), c.enc.size(), &out) == c.enc.size());
    CHECK(out == c.value);
  }
}

TEST_CASE("varint: the 10th byte may only carry one bit", "[wire][varint]") {
  for (int last = 2; last <= 0xff; ++last) {
    std::vector<uint8_t> enc(9, 0xff);
    enc.push_back(static_cast<uint8_t>(last));
    enc.push_back(0x00);  // would terminate an over-long varint
    uint64_t out = 77;
    INFO("10th byte " << last);
    CHECK(readVarint(enc.data(), enc.size(), &out) == 0);
    CHECK(out == 77);  // untouched on failure
  }
  // 0 and 1 are fine in the 10th byte.
  for (int last : {0, 1}) {
    std::vector<uint8_t> enc(9, 0x80);
    enc.push_back(static_cast<uint8_t>(last));
    uint64_t out = 77;
    CHECK(readVarint(enc.data(), enc.size(), &out) == 10);
    CHECK(out == (last ? uint64_t{1} << 63 : 0));
  }
}

TEST_CASE("varint: 11 bytes or more are rejected", "[wire][varint]") {
  for (int n = 11; n <= 16; ++n) {
    std::vector<uint8_t> enc(static_cast<size_t>(n - 1), 0x80);
    enc.push_back(0x00);
    uint64_t out = 0;
    INFO("length " << n);
    CHECK(readVarint(enc.data(), enc.size(), &out) == 0);
  }
}

TEST_CASE("varint: every truncation is rejected", "[wire][varint]") {
  const uint64_t values[] = {128, 300, 0xffffffffull, std::numeric_limits<uint64_t>::max(), uint64_t{1} << 62};
  for (uint64_t v : values) {
    const std::vector<uint8_t> enc = bytesOf(pbw::varint(v));
    for (size_t cut = 0; cut < enc.size(); ++cut) {
      // Copy the prefix to an exact-size heap block so a read past it is caught by ASan.
      std::vector<uint8_t> prefix(enc.begin(), enc.begin() + static_cast<long>(cut));
      uint64_t out = 0;
      INFO("v=" << v << " cut=" << cut);
      CHECK(readVarint(prefix.data(), prefix.size(), &out) == 0);
    }
  }
  uint64_t out = 0;
  const uint8_t one = 1;
  CHECK(readVarint(&one, 0, &out) == 0);  // no bytes
}

TEST_CASE("reader: decodes each wire type with number, type, value and offset", "[wire][reader]") {
  pbw::Msg m;
  m.u64(1, 150)                           // offset 0: 08 96 01
      .fixed32(2, 0x11223344)             // offset 3: 15 + 4
      .fixed64(3, 0x0102030405060708ull)  // offset 8: 19 + 8
      .bytes(4, "hello")                  // offset 17: 22 05 + 5
      .bytes(5, "")                       // offset 24: 2a 00
      .u64(536870911, 7);                 // max field number 2^29-1, 5-byte tag
  const auto buf = bytesOf(m.b);
  const ReadAll all = readAll(buf);
  REQUIRE(all.ok);
  REQUIRE(all.fields.size() == 6);
  const auto& f = all.fields;
  CHECK(f[0].number == 1);
  CHECK(f[0].type == ql::wire::kVarint);
  CHECK(f[0].varint == 150);
  CHECK(f[0].offset == 0);
  CHECK(f[1].number == 2);
  CHECK(f[1].type == ql::wire::kFixed32);
  CHECK(f[1].varint == 0x11223344);
  CHECK(f[1].offset == 3);
  CHECK(f[1].bytes.data == buf.data() + 4);
  CHECK(f[1].bytes.size == 4);
  CHECK(f[2].number == 3);
  CHECK(f[2].type == ql::wire::kFixed64);
  CHECK(f[2].varint == 0x0102030405060708ull);
  CHECK(f[2].offset == 8);
  CHECK(f[2].bytes.size == 8);
  CHECK(f[3].number == 4);
  CHECK(f[3].type == ql::wire::kLen);
  CHECK(f[3].offset == 17);
  CHECK(f[3].bytes.str() == "hello");
  CHECK(f[3].bytes.data == buf.data() + 19);  // a view into the input, not a copy
  CHECK(f[3].varint == 0);
  CHECK(f[4].number == 5);
  CHECK(f[4].bytes.size == 0);
  CHECK(f[4].offset == 24);
  CHECK(f[5].number == 536870911u);
  CHECK(f[5].varint == 7);
  CHECK(f[5].offset == 26);
}

TEST_CASE("reader: offsets are relative to the file base, not the sub-range", "[wire][reader]") {
  pbw::Msg inner;
  inner.u64(1, 5).bytes(2, "ab");
  pbw::Msg outer;
  outer.bytes(9, "xyz").msg(3, inner);
  const auto buf = bytesOf(outer.b);
  // inner payload starts after 0x4a 03 'xyz' 0x1a len: offset 7
  Reader r(Bytes{buf.data() + 7, buf.size() - 7}, buf.data());
  Field f;
  REQUIRE(r.next(&f));
  CHECK(f.offset == 7);
  REQUIRE(r.next(&f));
  CHECK(f.offset == 9);
  CHECK(f.bytes.str() == "ab");
  CHECK(r.done());

  // And an error inside the sub-range names the absolute offset.
  auto bad = buf;
  bad.push_back(0x00);  // field number 0 at absolute offset buf.size()
  Reader r2(Bytes{bad.data() + 7, bad.size() - 7}, bad.data());
  int n = 0;
  while (r2.next(&f)) ++n;
  CHECK(n == 2);
  CHECK(r2.error().offset == static_cast<int64_t>(buf.size()));
  CHECK(r2.error().code == ErrorCode::InvalidModel);
}

TEST_CASE("reader: truncated varint value names the value's offset", "[wire][reader][error]") {
  for (int cut = 1; cut <= 4; ++cut) {
    pbw::Msg m;
    m.u64(1, 3).u64(2, 0xffffffffull);  // 08 03 | 10 ff ff ff ff 0f
    std::string s = m.b.substr(0, m.b.size() - static_cast<size_t>(cut));
    const ReadAll all = readAll(bytesOf(s));
    INFO("cut " << cut);
    REQUIRE_FALSE(all.ok);
    CHECK(all.fields.size() == 1);
    CHECK(all.error.code == ErrorCode::InvalidModel);
    CHECK(all.error.offset == 3);  // the value starts after the tag at 2
    CHECK_FALSE(all.error.message.empty());
  }
  // A tag varint cut short names the tag's own offset.
  const auto tagOnly = bytesOf({0x08, 0x01, 0x80});
  const ReadAll t = readAll(tagOnly);
  REQUIRE_FALSE(t.ok);
  CHECK(t.error.offset == 2);
  CHECK(t.error.message.find("tag") != std::string::npos);
}

TEST_CASE("reader: over-long varints in tag and value are rejected", "[wire][reader][error]") {
  std::vector<uint8_t> v = bytesOf({0x08});
  for (int i = 0; i < 10; ++i) v.push_back(0x80);
  v.push_back(0x00);
  ReadAll a = readAll(v);
  REQUIRE_FALSE(a.ok);
  CHECK(a.error.offset == 1);

  std::vector<uint8_t> t(10, 0x80);
  t.push_back(0x00);
  a = readAll(t);
  REQUIRE_FALSE(a.ok);
  CHECK(a.error.offset == 0);

  // value whose 10th byte is 2: more than 64 bits
  std::vector<uint8_t> w = bytesOf({0x08});
  for (int i = 0; i < 9; ++i) w.push_back(0xff);
  w.push_back(0x02);
  a = readAll(w);
  REQUIRE_FALSE(a.ok);
  CHECK(a.error.offset == 1);
}

TEST_CASE("reader: truncated fixed32 and fixed64", "[wire][reader][error]") {
  for (int wt : {5, 1}) {
    pbw::Msg m;
    m.u64(1, 1);
    if (wt == 5)
      m.fixed32(7, 0xaabbccdd);
    else
      m.fixed64(7, 0x1122334455667788ull);
    const size_t full = m.b.size();
    const size_t width = wt == 5 ? 4 : 8;
    for (size_t keep = 0; keep < width; ++keep) {
      const std::string s = m.b.substr(0, full - width + keep);
      const ReadAll all = readAll(bytesOf(s));
      INFO("wire type " << wt << " keep " << keep);
      REQUIRE_FALSE(all.ok);
      CHECK(all.fields.size() == 1);
      CHECK(all.error.offset == 3);  // the payload starts after 08 01 3d|39
      CHECK(all.error.message.find(wt == 5 ? "32" : "64") != std::string::npos);
    }
    const ReadAll whole = readAll(bytesOf(m.b));
    CHECK(whole.ok);
  }
}

TEST_CASE("reader: truncated length and length past the end", "[wire][reader][error]") {
  // 0x12 then a length varint cut short
  ReadAll a = readAll(bytesOf({0x08, 0x01, 0x12, 0x80}));
  REQUIRE_FALSE(a.ok);
  CHECK(a.error.offset == 3);
  a = readAll(bytesOf({0x08, 0x01, 0x12}));
  REQUIRE_FALSE(a.ok);
  CHECK(a.error.offset == 3);

  // Length one past the end: the error names the field's tag.
  for (size_t len : {size_t{4}, size_t{5}, size_t{1000}}) {
    std::string s = pbw::tag(1, 0) + pbw::varint(1) + pbw::tag(2, 2) + pbw::varint(len) + "abc";
    a = readAll(bytesOf(s));
    INFO("len " << len);
    REQUIRE_FALSE(a.ok);
    CHECK(a.fields.size() == 1);
    CHECK(a.error.offset == 2);
    CHECK(a.error.message.find(std::to_string(len)) != std::string::npos);
  }
  // Exactly fitting is fine.
  a = readAll(bytesOf(pbw::tag(2, 2) + pbw::varint(3) + "abc"));
  CHECK(a.ok);

  // A length that would wrap the pointer: 2^64-1 and 2^63.
  for (uint64_t huge : {std::numeric_limits<uint64_t>::max(), uint64_t{1} << 63, uint64_t{1} << 32}) {
    a = readAll(bytesOf(pbw::tag(2, 2) + pbw::varint(huge) + "abc"));
    REQUIRE_FALSE(a.ok);
    CHECK(a.error.offset == 0);
  }
}

TEST_CASE("reader: field number 0 is rejected for every wire type", "[wire][reader][error]") {
  for (int wt = 0; wt < 8; ++wt) {
    std::vector<uint8_t> v = bytesOf({0x08, 0x05});
    v.push_back(static_cast<uint8_t>(wt));
    for (int i = 0; i < 9; ++i) v.push_back(0x01);
    const ReadAll a = readAll(v);
    INFO("wire type " << wt);
    REQUIRE_FALSE(a.ok);
    CHECK(a.fields.size() == 1);
    CHECK(a.error.offset == 2);
    CHECK(a.error.code == ErrorCode::InvalidModel);
  }
  // A multi-byte tag encoding field 0 (non-canonical 0x80 0x00).
  const ReadAll a = readAll(bytesOf({0x80, 0x00, 0x01}));
  REQUIRE_FALSE(a.ok);
  CHECK(a.error.offset == 0);
  CHECK(a.error.message.find("0") != std::string::npos);
}

TEST_CASE("reader: wire types 3, 4, 6 and 7 are rejected at the tag", "[wire][reader][error]") {
  for (uint32_t wt : {3u, 4u, 6u, 7u}) {
    for (uint32_t field : {1u, 15u, 16u, 2047u}) {
      std::string s = pbw::tag(1, 0) + pbw::varint(9) + pbw::tag(field, wt) + std::string(16, '\0');
      const ReadAll a = readAll(bytesOf(s));
      INFO("wt " << wt << " field " << field);
      REQUIRE_FALSE(a.ok);
      CHECK(a.fields.size() == 1);
      CHECK(a.error.offset == 2);
      if (wt == 3 || wt == 4)
        CHECK(a.error.message.find("group") != std::string::npos);
      else
        CHECK(a.error.message.find("wire type " + std::to_string(wt)) != std::string::npos);
    }
  }
}

TEST_CASE("reader: tags above 32 bits are rejected", "[wire][reader][error]") {
  // field number 2^29 and beyond do not fit protobuf's field range
  const ReadAll a = readAll(bytesOf(pbw::varint(uint64_t{1} << 32) + "\x01"));
  REQUIRE_FALSE(a.ok);
  CHECK(a.error.offset == 0);
  const ReadAll b = readAll(bytesOf(pbw::varint(std::numeric_limits<uint64_t>::max())));
  REQUIRE_FALSE(b.ok);
}

TEST_CASE("reader: done() on empty input and Error::describe", "[wire][reader]") {
  const uint8_t x = 0;
  Reader r(Bytes{&x, 0}, &x);
  CHECK(r.done());
  const ReadAll a = readAll(bytesOf({0x00}));
  REQUIRE_FALSE(a.ok);
  CHECK(a.error.describe().find("(at byte 0)") != std::string::npos);
  ql::Error noOffset = ql::makeError(ErrorCode::InvalidArgument, "plain");
  CHECK(noOffset.describe() == "plain");
  CHECK(std::string(ql::errorCodeName(ErrorCode::InvalidModel)) == "INVALID_MODEL");
  CHECK(std::string(ql::errorCodeName(ErrorCode::UnsupportedDtype)) == "UNSUPPORTED_DTYPE");
  CHECK(std::string(ql::errorCodeName(ErrorCode::MissingExternalData)) == "MISSING_EXTERNAL_DATA");
  CHECK(std::string(ql::errorCodeName(ErrorCode::InvalidArgument)) == "INVALID_ARGUMENT");
  CHECK(std::string(ql::errorCodeName(ErrorCode::Unsupported)) == "UNSUPPORTED");
  CHECK(std::string(ql::errorCodeName(ErrorCode::Ok)) == "OK");
}

TEST_CASE("reader: every truncation of a valid message fails cleanly or stops on a field boundary", "[wire][reader]") {
  pbw::Msg m;
  m.u64(1, 300).fixed32(2, 1).fixed64(3, 2).bytes(4, "some bytes here").u64(200000, std::numeric_limits<uint64_t>::max());
  const std::string full = m.b;
  // field boundaries
  std::vector<size_t> boundaries;
  {
    const auto buf = bytesOf(full);
    const ReadAll all = readAll(buf);
    REQUIRE(all.ok);
    for (const auto& f : all.fields) boundaries.push_back(f.offset);
    boundaries.push_back(full.size());
  }
  for (size_t cut = 0; cut <= full.size(); ++cut) {
    const auto buf = bytesOf(full.substr(0, cut));
    const ReadAll a = readAll(buf);
    const bool onBoundary = std::find(boundaries.begin(), boundaries.end(), cut) != boundaries.end();
    INFO("cut " << cut);
    CHECK(a.ok == onBoundary);
    if (!a.ok) {
      CHECK(a.error.offset >= 0);
      CHECK(a.error.offset <= static_cast<int64_t>(cut));
      CHECK_FALSE(a.error.message.empty());
    }
  }
}

TEST_CASE("wire type names", "[wire]") {
  CHECK(std::string(ql::wire::wireTypeName(0)) == "varint");
  CHECK(std::string(ql::wire::wireTypeName(1)) == "fixed64");
  CHECK(std::string(ql::wire::wireTypeName(2)) == "length-delimited");
  CHECK(std::string(ql::wire::wireTypeName(3)) == "start-group");
  CHECK(std::string(ql::wire::wireTypeName(4)) == "end-group");
  CHECK(std::string(ql::wire::wireTypeName(5)) == "fixed32");
  CHECK(std::string(ql::wire::wireTypeName(6)) == "invalid");
  CHECK(std::string(ql::wire::wireTypeName(7)) == "invalid");
}

namespace {
Field firstField(const std::vector<uint8_t>& buf) {
  Reader r(Bytes{buf.data(), buf.size()}, buf.data());
  Field f;
  REQUIRE(r.next(&f));
  return f;
}
}  // namespace

TEST_CASE("repeated scalars: packed and unpacked counts", "[wire][repeated]") {
  using K = RepeatedScalar;
  ql::Error err;
  uint64_t count = 0;

  {  // unpacked varint
    const auto buf = bytesOf(pbw::Msg().u64(5, 3).b);
    REQUIRE(K::count(firstField(buf), K::kVarintKind, &count, &err, buf.data()));
    CHECK(count == 1);
  }
  {  // packed varints of mixed lengths; adds to the running count
    const auto buf = bytesOf(pbw::Msg().packedVarints(5, {0, 1, 300, std::numeric_limits<uint64_t>::max(), 127}).b);
    REQUIRE(K::count(firstField(buf), K::kVarintKind, &count, &err, buf.data()));
    CHECK(count == 6);
  }
  {  // packed fixed32
    count = 0;
    const auto buf = bytesOf(pbw::Msg().packedFloats(4, {1, 2, 3}).b);
    REQUIRE(K::count(firstField(buf), K::kFixed32Kind, &count, &err, buf.data()));
    CHECK(count == 3);
  }
  {  // packed fixed64
    count = 0;
    const auto buf = bytesOf(pbw::Msg().packedDoubles(10, {1, 2}).b);
    REQUIRE(K::count(firstField(buf), K::kFixed64Kind, &count, &err, buf.data()));
    CHECK(count == 2);
  }
  {  // empty packed field: zero values, fine
    count = 0;
    const auto buf = bytesOf(pbw::Msg().bytes(4, "").b);
    REQUIRE(K::count(firstField(buf), K::kFixed32Kind, &count, &err, buf.data()));
    CHECK(count == 0);
  }
}

TEST_CASE("repeated scalars: malformed occurrences", "[wire][repeated][error]") {
  using K = RepeatedScalar;
  uint64_t count = 0;
  for (size_t len : {size_t{1}, size_t{2}, size_t{3}, size_t{5}, size_t{7}}) {
    ql::Error err;
    const auto buf = bytesOf(pbw::Msg().u64(1, 1).bytes(4, std::string(len, 'x')).b);
    Reader r(Bytes{buf.data(), buf.size()}, buf.data());
    Field f;
    REQUIRE(r.next(&f));
    REQUIRE(r.next(&f));
    INFO("len " << len);
    CHECK_FALSE(K::count(f, K::kFixed32Kind, &count, &err, buf.data()));
    CHECK(err.code == ErrorCode::InvalidModel);
    CHECK(err.offset == 2);
    ql::Error err64;
    CHECK_FALSE(K::count(f, K::kFixed64Kind, &count, &err64, buf.data()));
    CHECK(err64.offset == 2);
  }
  {  // packed varint whose last value is cut: the error names the cut varint
    ql::Error err;
    const auto buf = bytesOf(pbw::Msg().bytes(5, std::string("\x01\x02\x80", 3)).b);
    CHECK_FALSE(K::count(firstField(buf), K::kVarintKind, &count, &err, buf.data()));
    CHECK(err.offset == 4);
  }
  {  // wrong wire type for an unpacked occurrence
    ql::Error err;
    const auto buf = bytesOf(pbw::Msg().fixed64(4, 1).b);
    CHECK_FALSE(K::count(firstField(buf), K::kFixed32Kind, &count, &err, buf.data()));
    CHECK(err.message.find("fixed64") != std::string::npos);
    CHECK(err.message.find("fixed32") != std::string::npos);
    ql::Error err2;
    const auto buf2 = bytesOf(pbw::Msg().fixed32(7, 1).b);
    CHECK_FALSE(K::count(firstField(buf2), K::kVarintKind, &count, &err2, buf2.data()));
    ql::Error err3;
    const auto buf3 = bytesOf(pbw::Msg().u64(10, 1).b);
    CHECK_FALSE(K::count(firstField(buf3), K::kFixed64Kind, &count, &err3, buf3.data()));
  }
}

TEST_CASE("little-endian loads are unaligned-safe", "[wire]") {
  std::vector<uint8_t> b(16, 0);
  const float f = -1.5f;
  const double d = 3.25;
  std::memcpy(b.data() + 1, &f, 4);
  std::memcpy(b.data() + 7, &d, 8);
  CHECK(ql::wire::loadF32(b.data() + 1) == -1.5f);
  CHECK(ql::wire::loadF64(b.data() + 7) == 3.25);
  CHECK(ql::wire::loadU32(b.data() + 1) == 0xbfc00000u);
  CHECK(ql::wire::loadU64(b.data() + 7) == 0x400a000000000000ull);
}
