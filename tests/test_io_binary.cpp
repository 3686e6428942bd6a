// NumPy .npy / .npz readers and writers, NumPy-directory and .npz dataset loaders.
#include <sys/stat.h>
#include <zlib.h>

#include <algorithm>
#include <array>
#include <chrono>
#include <cmath>
#include <cstdint>
#include <cstring>
#include <filesystem>
#include <fstream>
#include <limits>
#include <map>
#include <optional>
#include <set>
#include <string>
#include <vector>

#include <catch2/catch.hpp>

#include "fixtures.hpp"
#include "ibmb/graph/build.hpp"
#include "ibmb/graph/io/npy.hpp"
#include "ibmb/graph/io/npz.hpp"
#include "ibmb/graph/io/npz_dataset.hpp"
#include "ibmb/graph/io/numpy_dir.hpp"

using namespace ibmb;
namespace fs = std::filesystem;

namespace {

// ---- independent builders (do not use the library's encoders) --------------------------

template <class T>
void put_le(std::vector<char>& out, T v) {
  for (std::size_t i = 0; i < sizeof(T); ++i)
    out.push_back(static_cast<char>((static_cast<std::uint64_t>(v) >> (8 * i)) & 0xff));
}

/// A .npy file with a hand-written header dict, padded to `align` bytes.
std::vector<char> make_npy(const std::string& dict, const std::vector<char>& data, int major = 1,
                           std::size_t align = 16) {
  const std::size_t pre = major == 1 ? 10 : 12;
  std::string h = dict;
  while ((pre + h.size() + 1) % align != 0) h += ' ';
  h += '\n';
  std::vector<char> out = {'\x93', 'N', 'U', 'M', 'P', 'Y', static_cast<char>(major), 0};
  if (major == 1)
    put_le<std::uint16_t>(out, static_cast<std::uint16_t>(h.size()));
  else
    put_le<std::uint32_t>(out, static_cast<std::uint32_t>(h.size()));
  out.insert(out.end(), h.begin(), h.end());
  out.insert(out.end(), data.begin(), data.end());
  return out;
}

template <class T>
std::vector<char> raw_bytes(const std::vector<T>& v) {
  std::vector<char> b(v.size() * sizeof(T));
  if (!v.empty()) std::memcpy(b.data(), v.data(), b.size());
  return b;
}

std::vector<char> deflate_raw(const std::vector<char>& in) {
  z_stream s{};
  REQUIRE(deflateInit2(&s, 6, Z_DEFLATED, -MAX_WBITS, 8, Z_DEFAULT_STRATEGY) == Z_OK);
  std::vector<char> out(deflateBound(&s, in.size()) + 16);
  s.next_in = reinterpret_cast<Bytef*>(const_cast<char*>(in.data()));
  s.avail_in = static_cast<uInt>(in.size());
  s.next_out = reinterpret_cast<Bytef*>(out.data());
  s.avail_out = static_cast<uInt>(out.size());
  REQUIRE(deflate(&s, Z_FINISH) == Z_STREAM_END);
  out.resize(s.total_out);
  deflateEnd(&s);
  return out;
}

struct zmember {
  std::string name;
  std::vector<char> bytes;
  int method = 0;  // 0 stored, 8 deflate
  std::optional<std::uint32_t> crc_override;
  std::vector<char> override_payload;  // replaces the compressed bytes when non-empty
};

/// A minimal zip writer written independently of ibmb::write_npz.
std::vector<char> build_zip(const std::vector<zmember>& ms) {
  std::vector<char> out, cd;
  for (const auto& m : ms) {
    const std::uint32_t crc =
        m.crc_override
            ? *m.crc_override
            : static_cast<std::uint32_t>(crc32(0, reinterpret_cast<const Bytef*>(m.bytes.data()),
                                               static_cast<uInt>(m.bytes.size())));
    std::vector<char> payload = m.method == 8 ? deflate_raw(m.bytes) : m.bytes;
    if (!m.override_payload.empty()) payload = m.override_payload;
    const auto off = static_cast<std::uint32_t>(out.size());
    put_le<std::uint32_t>(out, 0x04034b50);
    put_le<std::uint16_t>(out, 20);
    put_le<std::uint16_t>(out, 0);
    put_le<std::uint16_t>(out, static_cast<std::uint16_t>(m.method));
    put_le<std::uint16_t>(out, 0);
    put_le<std::uint16_t>(out, 0x21);
    put_le<std::uint32_t>(out, crc);
    put_le<std::uint32_t>(out, static_cast<std::uint32_t>(payload.size()));
    put_le<std::uint32_t>(out, static_cast<std::uint32_t>(m.bytes.size()));
    put_le<std::uint16_t>(out, static_cast<std::uint16_t>(m.name.size()));
    put_le<std::uint16_t>(out, 0);
    out.insert(out.end(), m.name.begin(), m.name.end());
    out.insert(out.end(), payload.begin(), payload.end());
    put_le<std::uint32_t>(cd, 0x02014b50);
    put_le<std::uint16_t>(cd, 20);
    put_le<std::uint16_t>(cd, 20);
    put_le<std::uint16_t>(cd, 0);
    put_le<std::uint16_t>(cd, static_cast<std::uint16_t>(m.method));
    put_le<std::uint16_t>(cd, 0);
    put_le<std::uint16_t>(cd, 0x21);
    put_le<std::uint32_t>(cd, crc);
    put_le<std::uint32_t>(cd, static_cast<std::uint32_t>(payload.size()));
    put_le<std::uint32_t>(cd, static_cast<std::uint32_t>(m.bytes.size()));
    put_le<std::uint16_t>(cd, static_cast<std::uint16_t>(m.name.size()));
    put_le<std::uint16_t>(cd, 0);
    put_le<std::uint16_t>(cd, 0);
    put_le<std::uint16_t>(cd, 0);
    put_le<std::uint16_t>(cd, 0);
    put_le<std::uint32_t>(cd, 0);
    put_le<std::uint32_t>(cd, off);
    cd.insert(cd.end(), m.name.begin(), m.name.end());
  }
  const auto cd_off = static_cast<std::uint32_t>(out.size());
  out.insert(out.end(), cd.begin(), cd.end());
  put_le<std::uint32_t>(out, 0x06054b50);
  put_le<std::uint16_t>(out, 0);
  put_le<std::uint16_t>(out, 0);
  put_le<std::uint16_t>(out, static_cast<std::uint16_t>(ms.size()));
  put_le<std::uint16_t>(out, static_cast<std::uint16_t>(ms.size()));
  put_le<std::uint32_t>(out, static_cast<std::uint32_t>(cd.size()));
  put_le<std::uint32_t>(out, cd_off);
  put_le<std::uint16_t>(out, 0);
  return out;
}

void write_bytes(const fs::path& p, const std::vector<char>& b) {
  std::ofstream f(p, std::ios::binary | std::ios::trunc);
  f.write(b.data(), static_cast<std::streamsize>(b.size()));
}

std::vector<char> file_bytes(const fs::path& p) { return read_file(p); }

template <class T>
std::span<const T> sp(const std::vector<T>& v) {
  return std::span<const T>(v);
}

/// Message of the ibmb::error of type E thrown by f (fails the test if none).
template <class E, class F>
std::string error_of(F&& f) {
  try {
    f();
  } catch (const E& e) {
    return e.what();
  }
  FAIL("expected an exception");
  return {};
}

bool contains(const std::string& s, const std::string& part) {
  return s.find(part) != std::string::npos;
}

template <class G>
std::multiset<std::pair<std::int64_t, std::int64_t>> entries(const G& g) {
  std::multiset<std::pair<std::int64_t, std::int64_t>> s;
  auto v = g.view();
  for (std::int64_t r = 0; r < v.num_rows; ++r)
    for (auto c : v.neighbors(r)) s.emplace(r, c);
  return s;
}

}  // namespace

// ---- .npy ------------------------------------------------------------------------------

TEST_CASE("encode_npy writes NumPy's version 1.0 header layout", "[io]") {
  const std::vector<std::int64_t> v = {1, -2, 3};
  const auto b = encode_npy<std::int64_t>(sp(v), {3});
  const std::string dict = "{'descr': '<i8', 'fortran_order': False, 'shape': (3,), }";
  // NumPy >= 1.23: 21 - 1 spare spaces for shape growth, then pad to 64 with '\n' last.
  REQUIRE(b.size() == 128 + 24);
  REQUIRE(std::string(b.data(), 8) == std::string("\x93NUMPY\x01\x00", 8));
  REQUIRE(static_cast<unsigned char>(b[8]) == 118);
  REQUIRE(b[9] == 0);
  REQUIRE(std::string(b.data() + 10, dict.size()) == dict);
  for (std::size_t i = 10 + dict.size(); i < 127; ++i) REQUIRE(b[i] == ' ');
  REQUIRE(b[127] == '\n');
  REQUIRE(std::memcmp(b.data() + 128, v.data(), 24) == 0);
  const std::vector<float> m = {1, 2, 3, 4, 5, 6};
  const auto b2 = encode_npy<float>(sp(m), {2, 3});
  REQUIRE(contains(std::string(b2.data(), 128), "'shape': (2, 3), }"));
  const std::vector<double> s = {2.5};
  const auto b0 = encode_npy<double>(sp(s), {});
  REQUIRE(contains(std::string(b0.data(), 128), "'shape': (), }"));
  REQUIRE(parse_npy(b0, "scalar").as<double>("scalar") == s);
  REQUIRE_THROWS_AS((encode_npy<float>(sp(m), {4})), invalid_argument);
}

TEMPLATE_TEST_CASE("npy round trip is exact for every numeric dtype", "[io]", std::int8_t,
                   std::int16_t, std::int32_t, std::int64_t, std::uint8_t, std::uint16_t,
                   std::uint32_t, std::uint64_t, float, double) {
  using T = TestType;
  using L = std::numeric_limits<T>;
  const std::vector<T> v = {L::min(), L::max(), T(0), T(1), T(7), L::lowest(), T(100)};
  const auto bytes = encode_npy<T>(sp(v), {7});
  const npy_array a = parse_npy(bytes, "mem");
  REQUIRE(a.dtype == npy_dtype_of<T>());
  REQUIRE(a.shape == std::vector<std::int64_t>{7});
  REQUIRE(a.size() == 7);
  REQUIRE(a.as<T>("mem") == v);
  REQUIRE(encode_npy(a) == bytes);
  // header descr as NumPy spells it
  REQUIRE(contains(std::string(bytes.data(), 64),
                   std::string("'descr': '") + std::string(npy_descr(a.dtype)) + "'"));

  // through a file, atomically written
  const auto dir = test::scratch_dir("npy_roundtrip");
  write_npy<T>(dir / "x.npy", sp(v), {7});
  REQUIRE(file_bytes(dir / "x.npy") == bytes);
  REQUIRE(read_npy(dir / "x.npy").as<T>("x") == v);
  // 2-D, and an empty array
  const auto b2 = encode_npy<T>(std::span<const T>(v.data(), 6), {3, 2});
  REQUIRE(parse_npy(b2, "m").shape == std::vector<std::int64_t>{3, 2});
  const auto e = parse_npy(encode_npy<T>(std::span<const T>(), {0, 4}), "e");
  REQUIRE(e.size() == 0);
  REQUIRE(e.template as<T>("e").empty());
}

TEST_CASE("npy bool and float16", "[io]") {
  const std::array<bool, 5> flags = {true, false, false, true, true};
  const auto b = encode_npy<bool>(std::span<const bool>(flags), {5});
  REQUIRE(contains(std::string(b.data(), 64), "'|b1'"));
  const auto a = parse_npy(b, "flags");
  REQUIRE(a.dtype == npy_dtype::boolean);
  REQUIRE(a.as<std::uint8_t>("flags") == std::vector<std::uint8_t>{1, 0, 0, 1, 1});
  REQUIRE(a.as<int>("flags") == std::vector<int>{1, 0, 0, 1, 1});
  REQUIRE(encode_npy(a) == b);

  // IEEE half bit patterns with known values.
  const std::vector<std::uint16_t> bits = {0x3C00, 0xC000, 0x7BFF, 0x0001, 0x3555, 0x0000, 0x8000};
  const auto h =
      make_npy("{'descr': '<f2', 'fortran_order': False, 'shape': (7,), }", raw_bytes(bits));
  const auto ha = parse_npy(h, "half");
  REQUIRE(ha.dtype == npy_dtype::f16);
  const auto f = ha.as<float>("half");
  REQUIRE(f[0] == 1.0f);
  REQUIRE(f[1] == -2.0f);
  REQUIRE(f[2] == 65504.0f);
  REQUIRE(f[3] == std::ldexp(1.0f, -24));
  REQUIRE(f[4] == 0.333251953125f);
  REQUIRE(f[5] == 0.0f);
  REQUIRE(std::signbit(f[6]));
  const std::vector<std::uint16_t> inf = {0x7C00, 0x7E00};
  const auto hi =
      parse_npy(make_npy("{'descr': '<f2', 'fortran_order': False, 'shape': (2,)}", raw_bytes(inf)),
                "hi")
          .as<double>("hi");
  REQUIRE(std::isinf(hi[0]));
  REQUIRE(std::isnan(hi[1]));
  REQUIRE(parse_npy(encode_npy(ha), "again").as<float>("again")[4] == 0.333251953125f);
}

TEST_CASE("npy parser accepts the header variants NumPy and others write", "[io]") {
  const std::vector<std::int32_t> v = {5, 6, 7, 8, 9, 10};
  const auto data = raw_bytes(v);
  // double quotes, other key order, no trailing comma, Python 2 long literals, 16-byte pad
  for (const std::string& dict : {
           std::string("{\"shape\": (2, 3), \"fortran_order\": False, \"descr\": \"<i4\"}"),
           std::string("{'descr':'<i4','fortran_order':False,'shape':(2L,3L)}"),
           std::string("{ 'descr' : '<i4' , 'fortran_order' : False , 'shape' : ( 2 , 3 , ) , }"),
       }) {
    for (int major : {1, 2, 3}) {
      const auto a = parse_npy(make_npy(dict, data, major), "variant");
      REQUIRE(a.dtype == npy_dtype::i32);
      REQUIRE(a.shape == std::vector<std::int64_t>{2, 3});
      REQUIRE(a.as<std::int32_t>("variant") == v);
    }
  }
  // 1-byte types with either byte-order mark; Fortran order is harmless for 1-D arrays
  const std::vector<char> one = {1, 2};
  REQUIRE(parse_npy(make_npy("{'descr': '<u1', 'fortran_order': False, 'shape': (2,)}", one), "u")
              .dtype == npy_dtype::u8);
  REQUIRE(parse_npy(make_npy("{'descr': '|i1', 'fortran_order': True, 'shape': (2,)}", one), "i")
              .dtype == npy_dtype::i8);
  REQUIRE(parse_npy(make_npy("{'descr': '<b1', 'fortran_order': False, 'shape': (2,)}", one), "b")
              .dtype == npy_dtype::boolean);
}

TEST_CASE("npy_array::as converts with range checks", "[io]") {
  const std::vector<std::int64_t> ids = {0, 5, 2147483647, 2147483653LL, -3};
  const auto a = parse_npy(encode_npy<std::int64_t>(sp(ids), {5}), "ids.npy");
  auto msg = error_of<format_error>([&] { (void)a.as<std::int32_t>("ids.npy"); });
  REQUIRE(contains(msg, "ids.npy"));
  REQUIRE(contains(msg, "element 3"));
  REQUIRE(contains(msg, "2147483653"));
  msg = error_of<format_error>([&] { (void)a.as<std::uint64_t>("ids.npy"); });
  REQUIRE(contains(msg, "element 4"));
  REQUIRE(contains(msg, "-3"));
  REQUIRE(a.as<double>("ids")[3] == 2147483653.0);

  const std::vector<double> f = {1.0, -2.0, 3.5, 1e300};
  const auto fa = parse_npy(encode_npy<double>(sp(f), {2, 2}), "f.npy");
  msg = error_of<format_error>([&] { (void)fa.as<std::int32_t>("f.npy"); });
  REQUIRE(contains(msg, "element 2 (row 1, column 0)"));
  REQUIRE(contains(msg, "3.5"));
  msg = error_of<format_error>([&] { (void)fa.as<float>("f.npy"); });
  REQUIRE(contains(msg, "element 3"));
  const std::vector<double> ok = {1.0, -2.0, 4.0};
  REQUIRE(parse_npy(encode_npy<double>(sp(ok), {3}), "ok").as<std::int8_t>("ok") ==
          std::vector<std::int8_t>{1, -2, 4});
  // NaN/Inf survive float conversion (validation, not parsing, rejects them)
  const std::vector<double> nf = {std::nan(""), -INFINITY};
  const auto nfa = parse_npy(encode_npy<double>(sp(nf), {2}), "nf").as<float>("nf");
  REQUIRE(std::isnan(nfa[0]));
  REQUIRE(std::isinf(nfa[1]));
  REQUIRE_THROWS_AS((parse_npy(encode_npy<double>(sp(nf), {2}), "nf").as<std::int64_t>("nf")),
                    format_error);
  const std::vector<std::uint64_t> big = {std::numeric_limits<std::uint64_t>::max()};
  REQUIRE_THROWS_AS((parse_npy(encode_npy<std::uint64_t>(sp(big), {1}), "b").as<std::int64_t>("b")),
                    format_error);
  const std::vector<std::int16_t> two = {0, 2};
  REQUIRE_THROWS_AS((parse_npy(encode_npy<std::int16_t>(sp(two), {2}), "t").as<bool>("t")),
                    format_error);
}

TEST_CASE("npy parser rejects every class of bad input with a format_error", "[io]") {
  const std::vector<float> v = {1, 2, 3, 4};
  const auto good = encode_npy<float>(sp(v), {2, 2});
  const auto data = raw_bytes(v);

  SECTION("every truncation point") {
    for (std::size_t cut = 0; cut < good.size(); ++cut) {
      const std::vector<char> t(good.begin(), good.begin() + static_cast<std::ptrdiff_t>(cut));
      const auto msg = error_of<format_error>([&] { (void)parse_npy(t, "cut.npy"); });
      REQUIRE(contains(msg, "cut.npy"));
    }
    const auto msg = error_of<format_error>(
        [&] { (void)parse_npy(std::span<const char>(good.data(), good.size() - 3), "t.npy"); });
    REQUIRE(contains(msg, "truncated"));
    REQUIRE(contains(msg, "offset 128"));
  }
  SECTION("trailing bytes") {
    auto longer = good;
    longer.push_back(0);
    const auto msg = error_of<format_error>([&] { (void)parse_npy(longer, "long.npy"); });
    REQUIRE(contains(msg, "1 unexpected bytes"));
    REQUIRE(contains(msg, "offset 144"));
  }
  SECTION("wrong magic and version") {
    auto bad = good;
    bad[1] = 'X';
    REQUIRE(contains(error_of<format_error>([&] { (void)parse_npy(bad, "m.npy"); }), "magic"));
    const std::vector<char> zip = {'P', 'K', 3, 4, 0, 0, 0, 0, 0, 0, 0, 0};
    REQUIRE(contains(error_of<format_error>([&] { (void)parse_npy(zip, "z.npy"); }), "0x504b0304"));
    bad = good;
    bad[6] = 4;
    REQUIRE(
        contains(error_of<format_error>([&] { (void)parse_npy(bad, "v.npy"); }), "version 4.0"));
  }
  SECTION("unsupported layouts and dtypes") {
    const std::vector<std::pair<std::string, std::string>> cases = {
        {"{'descr': '<f4', 'fortran_order': True, 'shape': (2, 2), }", "Fortran"},
        {"{'descr': '|O', 'fortran_order': False, 'shape': (4,), }", "object"},
        {"{'descr': '>f4', 'fortran_order': False, 'shape': (4,), }", "big-endian"},
        {"{'descr': '>i1', 'fortran_order': False, 'shape': (16,), }", "big-endian"},
        {"{'descr': '<c8', 'fortran_order': False, 'shape': (2,), }", "'<c8'"},
        {"{'descr': '<U1', 'fortran_order': False, 'shape': (4,), }", "string"},
        {"{'descr': '|S4', 'fortran_order': False, 'shape': (4,), }", "string"},
        {"{'descr': [('a', '<f4')], 'fortran_order': False, 'shape': (4,), }", "structured"},
        {"{'descr': '|f4', 'fortran_order': False, 'shape': (4,), }", "byte-order"},
        {"[('descr', '<f4')]", "not a dict"},
        {"{'descr': '<f4', 'shape': (4,), }", "fortran_order"},
        {"{'descr': '<f4', 'fortran_order': False, 'shape': (4,), 'x': 1}", "unexpected key"},
        {"{'descr': '<f4', 'fortran_order': False, 'shape': (-4,), }", "negative"},
        {"{'descr': '<f4', 'fortran_order': False, 'shape': (4,), 'shape': (4,)}", "duplicate"},
        {"{'descr': '<f4', 'fortran_order': False, 'shape': (4294967296, 4294967296, 4), }",
         "overflow"},
        {"{'descr': '<f4', 'fortran_order': False, 'shape': (99999999999999999999,)}", "overflow"},
        {"{'descr': '<f4', 'fortran_order': False, 'shape': (4,), } junk", "after the header"},
        {"{'descr': '<f4', 'fortran_order': Maybe, 'shape': (4,), }", "True or False"},
        {"{'descr': '<f4', 'fortran_order': False, 'shape': (5,), }", "truncated"},
        {"{'descr': '<f4', 'fortran_order': False, 'shape': (3,), }", "unexpected bytes"},
        {"{'descr': '<f8', 'fortran_order': False, 'shape': (2, 2), }", "needs 32"},
    };
    for (const auto& [dict, expect] : cases) {
      INFO(dict);
      const auto msg =
          error_of<format_error>([&] { (void)parse_npy(make_npy(dict, data), "bad.npy"); });
      REQUIRE(contains(msg, "bad.npy"));
      REQUIRE(contains(msg, expect));
    }
  }
  SECTION("missing file") {
    REQUIRE_THROWS_AS((read_npy(test::scratch_dir("npy_missing") / "none.npy")), io_error);
  }
}

// ---- .npz ------------------------------------------------------------------------------

TEST_CASE("npz writer and reader round trip, writer output is deterministic", "[io]") {
  const auto dir = test::scratch_dir("npz_roundtrip");
  const std::vector<std::int64_t> a = {1, 2, 3, 1LL << 40};
  const std::vector<float> b = {0.5f, -1.0f};
  const std::vector<npz_member> ms = {{"alpha", encode_npy<std::int64_t>(sp(a), {2, 2})},
                                      {"beta.npy", encode_npy<float>(sp(b), {2})}};
  write_npz(dir / "x.npz", ms);
  write_npz(dir / "y.npz", ms);
  REQUIRE(file_bytes(dir / "x.npz") == file_bytes(dir / "y.npz"));
  const auto bytes = file_bytes(dir / "x.npz");
  REQUIRE(std::string(bytes.data(), 4) == "PK\x03\x04");

  for (bool z64 : {false, true}) {
    detail::write_npz_impl(dir / "z.npz", ms, z64);
    const auto m = read_npz(dir / "z.npz");
    REQUIRE(m.size() == 2);
    REQUIRE(m.at("alpha").shape == std::vector<std::int64_t>{2, 2});
    REQUIRE(m.at("alpha").as<std::int64_t>("alpha") == a);
    REQUIRE(m.at("beta").as<float>("beta") == b);
    const npz_archive ar(dir / "z.npz");
    REQUIRE(ar.keys() == std::vector<std::string>{"alpha", "beta"});
    REQUIRE(ar.member_bytes("beta") == ms[1].npy_bytes);
  }
  REQUIRE(file_bytes(dir / "z.npz") != bytes);  // the zip64 variant differs

  REQUIRE_THROWS_AS((write_npz(dir / "d.npz", {ms[0], ms[0]})), invalid_argument);
  REQUIRE_THROWS_AS((write_npz(dir / "d.npz", {{"junk", {'a', 'b'}}})), format_error);
  REQUIRE_FALSE(fs::exists(dir / "d.npz"));
}

TEST_CASE("npz reader: deflate members, string members, corruption", "[io]") {
  const auto dir = test::scratch_dir("npz_deflate");
  std::vector<std::int64_t> big(5000);
  for (std::size_t i = 0; i < big.size(); ++i) big[i] = static_cast<std::int64_t>(i * i % 97);
  const auto big_npy = encode_npy<std::int64_t>(sp(big), {1000, 5});
  const std::vector<std::uint32_t> utf32 = {'a', 'b', 'c', 0};
  const auto names_npy =
      make_npy("{'descr': '<U2', 'fortran_order': False, 'shape': (2,), }", raw_bytes(utf32));

  write_bytes(dir / "ok.npz",
              build_zip({{"big.npy", big_npy, 8, {}, {}},
                         {"node_names.npy", names_npy, 8, {}, {}},
                         {"small.npy", encode_npy<std::int64_t>(sp(big), {5000}), 0, {}, {}}}));
  const auto m = read_npz(dir / "ok.npz");
  REQUIRE(m.size() == 2);  // the <U2 member is skipped
  REQUIRE(m.at("big").as<std::int64_t>("big") == big);
  REQUIRE(m.at("small").as<std::int64_t>("small") == big);
  const npz_archive ar(dir / "ok.npz");
  REQUIRE(ar.contains("node_names"));
  REQUIRE(ar.member_bytes("node_names") == names_npy);
  REQUIRE_THROWS_AS((ar.array("node_names")), format_error);

  SECTION("bad CRC names the member") {
    write_bytes(dir / "crc.npz", build_zip({{"big.npy", big_npy, 8, 0x12345678u, {}}}));
    const auto msg = error_of<format_error>([&] { (void)read_npz(dir / "crc.npz"); });
    REQUIRE(contains(msg, "crc.npz"));
    REQUIRE(contains(msg, "big.npy"));
    REQUIRE(contains(msg, "CRC"));
    write_bytes(dir / "crc0.npz", build_zip({{"s.npy", big_npy, 0, 0x1u, {}}}));
    REQUIRE(contains(error_of<format_error>([&] { (void)read_npz(dir / "crc0.npz"); }), "s.npy"));
  }
  SECTION("corrupted deflate stream names the member") {
    auto comp = deflate_raw(big_npy);
    for (std::size_t i = comp.size() / 3; i < comp.size() / 3 + 40; ++i) comp[i] ^= 0x5a;
    write_bytes(dir / "bad.npz", build_zip({{"edges.npy", big_npy, 8, {}, comp}}));
    const auto msg = error_of<format_error>([&] { (void)read_npz(dir / "bad.npz"); });
    REQUIRE(contains(msg, "edges.npy"));
    // a stream cut short
    auto cut = deflate_raw(big_npy);
    cut.resize(cut.size() / 2);
    write_bytes(dir / "cut.npz", build_zip({{"edges.npy", big_npy, 8, {}, cut}}));
    REQUIRE(
        contains(error_of<format_error>([&] { (void)read_npz(dir / "cut.npz"); }), "edges.npy"));
    // garbage that is not deflate at all
    write_bytes(dir / "junk.npz",
                build_zip({{"edges.npy", big_npy, 8, {}, std::vector<char>(100, '\xff')}}));
    REQUIRE(
        contains(error_of<format_error>([&] { (void)read_npz(dir / "junk.npz"); }), "edges.npy"));
  }
  SECTION("unsupported method, wrong magic, every truncation point") {
    auto z = build_zip({{"a.npy", big_npy, 0, {}, {}}});
    z[8] = 12;  // local method: bzip2 (central directory too, below)
    const std::size_t cd = z.size() - 22 - (46 + 5);
    z[cd + 10] = 12;
    write_bytes(dir / "m.npz", z);
    REQUIRE(contains(error_of<format_error>([&] { (void)read_npz(dir / "m.npz"); }), "method 12"));

    write_bytes(dir / "npy.npz", big_npy);
    REQUIRE(
        contains(error_of<format_error>([&] { (void)read_npz(dir / "npy.npz"); }), "not a zip"));

    const std::vector<float> small = {1, 2, 3};
    const auto zs = build_zip({{"s.npy", encode_npy<float>(sp(small), {3}), 8, {}, {}}});
    for (std::size_t cut = 0; cut < zs.size(); ++cut) {
      INFO("cut " << cut);
      const std::vector<char> t(zs.begin(), zs.begin() + static_cast<std::ptrdiff_t>(cut));
      REQUIRE_THROWS_AS((npz_archive(t, "t.npz").array("s")), format_error);
    }
    // every single-byte corruption is an ibmb::error or a correct read, never a crash
    for (std::size_t i = 0; i < zs.size(); ++i) {
      auto c = zs;
      c[i] ^= 0x41;
      try {
        const npz_archive ar2(c, "c.npz");
        for (const auto& k : ar2.keys()) (void)ar2.array(k).as<float>("c");
      } catch (const ibmb::error&) {
      }
    }
  }
}

// ---- NumPy directory -------------------------------------------------------------------

namespace {
template <class I>
basic_dataset<I, I> small_dataset(bool weights) {
  basic_dataset<I, I> ds;
  ds.name = "small";
  ds.graph = test::two_cliques_with_isolated<I, I, float>(3);  // 7 nodes
  if (weights) {
    ds.graph.weights.resize(ds.graph.indices.size());
    for (std::size_t i = 0; i < ds.graph.weights.size(); ++i)
      ds.graph.weights[i] = 0.25f * static_cast<float>(i + 1);
  }
  // unsorted row to prove the structure is kept as stored
  std::swap(ds.graph.indices[0], ds.graph.indices[1]);
  ds.num_features = 3;
  for (int i = 0; i < 21; ++i) ds.features.push_back(0.5f * static_cast<float>(i) - 3.0f);
  ds.labels = {0, 1, 1, -1, 2, 0, 2};
  ds.train_idx = {0, 4};
  ds.val_idx = {1, 5};
  ds.test_idx = {2, 6, 3};
  return ds;
}
}  // namespace

TEMPLATE_TEST_CASE("numpy dir: write -> read -> write is byte-identical", "[io]", std::int32_t,
                   std::int64_t) {
  using I = TestType;
  for (bool weights : {false, true}) {
    const auto ds = small_dataset<I>(weights);
    const auto d1 = test::scratch_dir("npdir1");
    const auto d2 = test::scratch_dir("npdir2");
    save_numpy_dir(ds, d1);
    const auto back = load_numpy_dir<I, I>(d1);
    REQUIRE(back.name == d1.filename().string());
    REQUIRE(back.graph == ds.graph);
    REQUIRE(back.features == ds.features);
    REQUIRE(back.num_features == 3);
    REQUIRE(back.labels == ds.labels);
    REQUIRE(back.train_idx == ds.train_idx);
    REQUIRE(back.val_idx == ds.val_idx);
    REQUIRE(back.test_idx == ds.test_idx);
    save_numpy_dir(back, d2);
    std::set<std::string> files;
    for (const auto& e : fs::directory_iterator(d1)) files.insert(e.path().filename().string());
    std::set<std::string> expect = {"indptr.npy",    "indices.npy", "features.npy", "labels.npy",
                                    "train_idx.npy", "val_idx.npy", "test_idx.npy"};
    if (weights) expect.insert("data.npy");
    REQUIRE(files == expect);
    for (const auto& f : files) REQUIRE(file_bytes(d1 / f) == file_bytes(d2 / f));
    // the file types do not depend on I
    REQUIRE(read_npy(d1 / "indices.npy").dtype == npy_dtype::i64);
    REQUIRE(read_npy(d1 / "features.npy").shape == std::vector<std::int64_t>{7, 3});
    // loading with the other index width gives the same content
    const auto wide = load_numpy_dir<std::int64_t, std::int64_t>(d1);
    REQUIRE(std::equal(wide.graph.indices.begin(), wide.graph.indices.end(),
                       ds.graph.indices.begin(), ds.graph.indices.end()));
    // the same arrays as an .npz (layout a) load to the same dataset
    std::vector<npz_member> ms;
    for (const auto& f : expect) ms.push_back({f, file_bytes(d1 / f)});
    write_npz(d1 / "../small.npz", ms);
    const auto z = load_npz_dataset<I, I>(d1 / "../small.npz");
    REQUIRE(z.name == "small");
    REQUIRE(z.graph == ds.graph);
    REQUIRE(z.features == ds.features);
    REQUIRE(z.test_idx == ds.test_idx);
    REQUIRE_THROWS_AS((load_npz_dataset<I, I>(d1 / "../small.npz", 1)), invalid_argument);
  }
  // saving a dataset without optional parts removes stale files
  auto bare = small_dataset<I>(true);
  bare.labels.clear();
  bare.graph.weights.clear();
  const auto d = test::scratch_dir("npdir1");
  save_numpy_dir(small_dataset<I>(true), d);
  save_numpy_dir(bare, d);
  REQUIRE_FALSE(fs::exists(d / "labels.npy"));
  REQUIRE_FALSE(fs::exists(d / "data.npy"));
  REQUIRE(load_numpy_dir<I, I>(d).labels.empty());
}

TEMPLATE_TEST_CASE("numpy dir loader rejects inconsistent files", "[io]", std::int32_t,
                   std::int64_t) {
  using I = TestType;
  const auto d = test::scratch_dir("npdir_bad");
  auto reset = [&] {
    fs::remove_all(d);
    save_numpy_dir(small_dataset<I>(false), d);
  };
  auto load_msg = [&] { return error_of<format_error>([&] { (void)load_numpy_dir<I, I>(d); }); };

  reset();
  std::vector<float> f8(8 * 3, 1.0f);
  write_npy<float>(d / "features.npy", sp(f8), {8, 3});
  auto msg = load_msg();
  REQUIRE(contains(msg, "features.npy has 8 rows"));
  REQUIRE(contains(msg, "indptr.npy (8 entries)"));
  REQUIRE(contains(msg, "7 nodes"));

  write_npy<float>(d / "features.npy", sp(f8), {24});
  REQUIRE(contains(load_msg(), "2-D"));

  reset();
  std::vector<std::int64_t> l6 = {0, 1, 2, 0, 1, 2};
  write_npy<std::int64_t>(d / "labels.npy", sp(l6), {6});
  msg = load_msg();
  REQUIRE(contains(msg, "labels.npy has 6 labels"));
  REQUIRE(contains(msg, "indptr.npy"));
  std::vector<float> fl = {0, 1, 2, 0, 1, 2, 1};
  write_npy<float>(d / "labels.npy", sp(fl), {7});
  REQUIRE(contains(load_msg(), "integer dtype"));

  reset();
  auto ind = read_npy(d / "indices.npy").as<std::int64_t>("i");
  ind[5] = -1;
  write_npy<std::int64_t>(d / "indices.npy", sp(ind), {static_cast<std::int64_t>(ind.size())});
  msg = load_msg();
  REQUIRE(contains(msg, "indices.npy: element 5 = -1 outside [0, 7)"));
  ind[5] = 7;
  write_npy<std::int64_t>(d / "indices.npy", sp(ind), {static_cast<std::int64_t>(ind.size())});
  REQUIRE(contains(load_msg(), "element 5 = 7 outside"));
  ind.pop_back();
  write_npy<std::int64_t>(d / "indices.npy", sp(ind), {static_cast<std::int64_t>(ind.size())});
  REQUIRE(contains(load_msg(), "but "));

  reset();
  std::vector<std::int64_t> p = {0, 2, 1, 3, 3, 3, 3, 3};
  write_npy<std::int64_t>(d / "indptr.npy", sp(p), {8});
  REQUIRE(contains(load_msg(), "must not decrease"));

  reset();
  auto feats = read_npy(d / "features.npy").as<float>("f");
  feats[3 * 4 + 2] = std::numeric_limits<float>::quiet_NaN();
  write_npy<float>(d / "features.npy", sp(feats), {7, 3});
  msg = load_msg();
  REQUIRE(contains(msg, "node 4"));
  REQUIRE(contains(msg, "column 2"));
  feats[3 * 4 + 2] = -std::numeric_limits<float>::infinity();
  write_npy<float>(d / "features.npy", sp(feats), {7, 3});
  REQUIRE(contains(load_msg(), "inf"));

  reset();
  fs::remove(d / "indptr.npy");
  REQUIRE(contains(load_msg(), "indptr.npy: missing"));
  REQUIRE_THROWS_AS((load_numpy_dir<I, I>(d / "nope")), io_error);

  reset();
  write_bytes(d / "indices.npy", {'\x93', 'N', 'U'});
  REQUIRE(contains(load_msg(), "indices.npy"));
}

TEST_CASE("numpy dir: ids beyond int32 are an error naming file and value", "[io]") {
  const auto d = test::scratch_dir("npdir_wide");
  const std::int64_t huge = 3000000000LL;
  std::vector<std::int64_t> p = {0, 1};
  std::vector<std::int64_t> idx = {huge};
  write_npy<std::int64_t>(d / "indptr.npy", sp(p), {2});
  write_npy<std::int64_t>(d / "indices.npy", sp(idx), {1});
  const auto msg =
      error_of<format_error>([&] { (void)load_numpy_dir<std::int32_t, std::int32_t>(d); });
  REQUIRE(contains(msg, "indices.npy"));
  REQUIRE(contains(msg, "3000000000"));
  // int64 loading reaches the range check instead
  REQUIRE(contains(error_of<format_error>([&] { (void)load_numpy_dir(d); }), "outside [0, 1)"));
  std::vector<std::int64_t> ptr_huge = {0, huge};
  write_npy<std::int64_t>(d / "indptr.npy", sp(ptr_huge), {2});
  REQUIRE(
      contains(error_of<format_error>([&] { (void)load_numpy_dir<std::int32_t, std::int32_t>(d); }),
               "indptr.npy"));
}

// ---- .npz datasets (synthetic) -------------------------------------------------------

TEMPLATE_TEST_CASE("npz dataset: gnn-benchmark layout", "[io]", std::int32_t, std::int64_t) {
  using I = TestType;
  const auto d = test::scratch_dir("npz_gnnb");
  // 4 nodes; row 0 unsorted with a duplicate; a self-loop on node 2
  const std::vector<std::int32_t> ptr = {0, 3, 4, 5, 5};
  const std::vector<std::int32_t> idx = {3, 1, 3, 0, 2};
  const std::vector<float> w = {1, 2, 3, 4, 5};
  const std::vector<std::int64_t> shape = {4, 4};
  const std::vector<std::int32_t> fptr = {0, 2, 2, 3, 5};
  const std::vector<std::int32_t> fidx = {1, 0, 2, 0, 0};  // row 3 repeats column 0
  const std::vector<float> fval = {1, 2, 3, 4, 5};
  const std::vector<std::int64_t> fshape = {4, 3};
  const std::vector<std::int8_t> labels = {0, 2, 1, 2};
  const std::vector<std::uint32_t> names = {'a', 'b', 'c', 'd'};
  std::vector<npz_member> ms = {
      {"adj_data", encode_npy<float>(sp(w), {5})},
      {"adj_indices", encode_npy<std::int32_t>(sp(idx), {5})},
      {"adj_indptr", encode_npy<std::int32_t>(sp(ptr), {5})},
      {"adj_shape", encode_npy<std::int64_t>(sp(shape), {2})},
      {"attr_data", encode_npy<float>(sp(fval), {5})},
      {"attr_indices", encode_npy<std::int32_t>(sp(fidx), {5})},
      {"attr_indptr", encode_npy<std::int32_t>(sp(fptr), {5})},
      {"attr_shape", encode_npy<std::int64_t>(sp(fshape), {2})},
      {"labels", encode_npy<std::int8_t>(sp(labels), {4})},
      {"node_names",
       make_npy("{'descr': '<U1', 'fortran_order': False, 'shape': (4,), }", raw_bytes(names))}};
  write_npz(d / "g.npz", ms);
  const auto ds = load_npz_dataset<I, I>(d / "g.npz");
  REQUIRE(ds.name == "g");
  REQUIRE(ds.num_nodes() == 4);
  REQUIRE(ds.graph.indptr == std::vector<I>{0, 3, 4, 5, 5});
  REQUIRE(ds.graph.indices == std::vector<I>{1, 3, 3, 0, 2});  // sorted, duplicate kept
  REQUIRE(ds.graph.weights == std::vector<float>{2, 1, 3, 4, 5});
  REQUIRE(ds.num_features == 3);
  REQUIRE(ds.features == std::vector<float>{2, 1, 0, 0, 0, 0, 0, 0, 3, 9, 0, 0});
  REQUIRE(ds.labels == std::vector<std::int64_t>{0, 2, 1, 2});
  REQUIRE(ds.train_idx.empty());
  REQUIRE_THROWS_AS((load_npz_dataset<I, I>(d / "g.npz", 1)), invalid_argument);

  // inconsistent shapes name both members
  auto bad = ms;
  const std::vector<std::int64_t> fshape5 = {5, 3};
  bad[7] = {"attr_shape", encode_npy<std::int64_t>(sp(fshape5), {2})};
  write_npz(d / "b.npz", bad);
  auto msg = error_of<format_error>([&] { (void)load_npz_dataset<I, I>(d / "b.npz"); });
  REQUIRE(contains(msg, "attr_shape.npy has 5 rows"));
  REQUIRE(contains(msg, "adj_shape.npy"));
  bad = ms;
  const std::vector<std::int32_t> idx_bad = {3, 1, 4, 0, 2};
  bad[1] = {"adj_indices", encode_npy<std::int32_t>(sp(idx_bad), {5})};
  write_npz(d / "b.npz", bad);
  msg = error_of<format_error>([&] { (void)load_npz_dataset<I, I>(d / "b.npz"); });
  REQUIRE(contains(msg, "adj_indices.npy: element 2 = 4 outside [0, 4)"));
  bad = ms;
  const std::vector<std::int8_t> l3 = {0, 1, 2};
  bad[8] = {"labels", encode_npy<std::int8_t>(sp(l3), {3})};
  write_npz(d / "b.npz", bad);
  REQUIRE(contains(error_of<format_error>([&] { (void)load_npz_dataset<I, I>(d / "b.npz"); }),
                   "labels.npy has 3 labels"));
  write_npz(d / "u.npz", {ms[0], ms[8]});
  REQUIRE(contains(error_of<format_error>([&] { (void)load_npz_dataset<I, I>(d / "u.npz"); }),
                   "unrecognised"));
}

TEMPLATE_TEST_CASE("npz dataset: heterophilous layout adds reverse edges and picks a split", "[io]",
                   std::int32_t, std::int64_t) {
  using I = TestType;
  const auto d = test::scratch_dir("npz_het");
  const std::int64_t n = 6;
  const std::vector<std::int64_t> edges = {0, 1, 2, 1, 4, 5, 3, 0, 5, 2};
  std::vector<float> feats(n * 2);
  for (std::size_t i = 0; i < feats.size(); ++i) feats[i] = static_cast<float>(i) / 10.0f;
  const std::vector<std::int64_t> labels = {0, 1, 0, 1, 1, 0};
  const std::array<bool, 12> train = {1, 1, 0, 0, 0, 0, 0, 0, 1, 1, 0, 0};
  const std::array<bool, 12> val = {0, 0, 1, 0, 0, 0, 1, 0, 0, 0, 0, 0};
  const std::array<bool, 12> test_m = {0, 0, 0, 1, 1, 1, 0, 1, 0, 0, 1, 1};
  std::vector<zmember> zs = {
      {"node_features.npy", encode_npy<float>(sp(feats), {n, 2}), 8, {}, {}},
      {"node_labels.npy", encode_npy<std::int64_t>(sp(labels), {n}), 8, {}, {}},
      {"edges.npy", encode_npy<std::int64_t>(sp(edges), {5, 2}), 8, {}, {}},
      {"train_masks.npy", encode_npy<bool>(std::span<const bool>(train), {2, n}), 8, {}, {}},
      {"val_masks.npy", encode_npy<bool>(std::span<const bool>(val), {2, n}), 8, {}, {}},
      {"test_masks.npy", encode_npy<bool>(std::span<const bool>(test_m), {2, n}), 8, {}, {}}};
  write_bytes(d / "het.npz", build_zip(zs));
  const auto ds = load_npz_dataset<I, I>(d / "het.npz", 1);
  std::multiset<std::pair<std::int64_t, std::int64_t>> ref;
  for (std::size_t e = 0; e < 5; ++e) {
    ref.emplace(edges[2 * e], edges[2 * e + 1]);
    ref.emplace(edges[2 * e + 1], edges[2 * e]);
  }
  REQUIRE(entries(ds.graph) == ref);
  ds.graph.validate(true);
  REQUIRE(ds.features == feats);
  REQUIRE(ds.labels == labels);
  REQUIRE(ds.train_idx == std::vector<I>{2, 3});
  REQUIRE(ds.val_idx == std::vector<I>{0});
  REQUIRE(ds.test_idx == std::vector<I>{1, 4, 5});
  REQUIRE(load_npz_dataset<I, I>(d / "het.npz", 0).train_idx == std::vector<I>{0, 1});
  const auto msg =
      error_of<invalid_argument>([&] { (void)load_npz_dataset<I, I>(d / "het.npz", 2); });
  REQUIRE(contains(msg, "split 2"));
  REQUIRE(contains(msg, "2 splits"));
  REQUIRE_THROWS_AS((load_npz_dataset<I, I>(d / "het.npz", -1)), invalid_argument);

  auto bad = zs;
  const std::vector<std::int64_t> e_bad = {0, 1, 2, 6};
  bad[2] = {"edges.npy", encode_npy<std::int64_t>(sp(e_bad), {2, 2}), 8, {}, {}};
  write_bytes(d / "bad.npz", build_zip(bad));
  REQUIRE(contains(error_of<format_error>([&] { (void)load_npz_dataset<I, I>(d / "bad.npz"); }),
                   "edges.npy: edge 1 = (2, 6)"));
  bad = zs;
  feats[3] = std::numeric_limits<float>::infinity();
  bad[0] = {"node_features.npy", encode_npy<float>(sp(feats), {n, 2}), 8, {}, {}};
  write_bytes(d / "bad.npz", build_zip(bad));
  const auto m2 = error_of<format_error>([&] { (void)load_npz_dataset<I, I>(d / "bad.npz"); });
  REQUIRE(contains(m2, "node 1, column 1"));
}

// ---- real data (counts from the READMEs in ../shared/data) ---------------------------

namespace {
std::vector<std::int64_t> class_sizes(const std::vector<std::int64_t>& labels) {
  std::vector<std::int64_t> c;
  for (auto l : labels) {
    if (l >= static_cast<std::int64_t>(c.size())) c.resize(static_cast<std::size_t>(l) + 1);
    ++c[static_cast<std::size_t>(l)];
  }
  return c;
}
template <class G>
std::int64_t self_loops(const G& g) {
  std::int64_t s = 0;
  auto v = g.view();
  for (std::int64_t r = 0; r < v.num_rows; ++r)
    for (auto c : v.neighbors(r)) s += (c == r);
  return s;
}
template <class G>
std::int64_t undirected_pairs_without_loops(const G& g) {
  std::set<std::pair<std::int64_t, std::int64_t>> s;
  auto v = g.view();
  for (std::int64_t r = 0; r < v.num_rows; ++r)
    for (auto c : v.neighbors(r))
      if (c != r) s.emplace(std::min<std::int64_t>(r, c), std::max<std::int64_t>(r, c));
  return static_cast<std::int64_t>(s.size());
}
}  // namespace

TEMPLATE_TEST_CASE("real data: LINQS Cora and CiteSeer .npz (gnn-benchmark layout)", "[io]",
                   std::int32_t, std::int64_t) {
  using I = TestType;
  struct expect_t {
    const char *folder, *file;
    std::int64_t nodes, entries, loops, pairs, features, nnz;
    std::vector<std::int64_t> classes;
  };
  const std::vector<expect_t> cases = {{"cora-linqs-npz",
                                        "cora.npz",
                                        2708,
                                        5429,
                                        0,
                                        5278,
                                        1433,
                                        49216,
                                        {298, 418, 818, 426, 217, 180, 351}},
                                       {"citeseer-linqs-npz",
                                        "citeseer.npz",
                                        3312,
                                        4715,
                                        124,
                                        4536,
                                        3703,
                                        105165,
                                        {249, 596, 701, 508, 668, 590}}};
  for (const auto& c : cases) {
    auto dir = test::shared_dataset(c.folder);
    if (!dir) continue;
    INFO(c.file);
    const auto ds = load_npz_dataset<I, I>(*dir / c.file);
    REQUIRE(ds.num_nodes() == c.nodes);
    REQUIRE(ds.num_edges() == c.entries);
    REQUIRE(self_loops(ds.graph) == c.loops);
    REQUIRE(undirected_pairs_without_loops(ds.graph) == c.pairs);
    REQUIRE(ds.num_features == c.features);
    REQUIRE(std::count_if(ds.features.begin(), ds.features.end(), [](float x) { return x != 0; }) ==
            c.nnz);
    REQUIRE(std::all_of(ds.features.begin(), ds.features.end(),
                        [](float x) { return x == 0 || x == 1; }));
    REQUIRE(ds.num_classes() == static_cast<std::int64_t>(c.classes.size()));
    REQUIRE(class_sizes(ds.labels) == c.classes);
    ds.graph.validate(false);
    // read_npz skips the <U string members and reads the rest
    const auto m = read_npz(*dir / c.file);
    REQUIRE(m.count("node_names") == 0);
    REQUIRE(m.count("class_names") == 0);
    REQUIRE(m.at("adj_indices").size() == c.entries);
    REQUIRE(m.at("attr_data").size() == c.nnz);
    // NumPy wrote these members: re-encoding every numeric one reproduces its bytes
    const npz_archive ar(*dir / c.file);
    for (const auto& [k, a] : m) REQUIRE(encode_npy(a) == ar.member_bytes(k));

    // the dataset survives a NumPy-directory round trip unchanged
    const auto out = test::scratch_dir(std::string("real_") + c.folder);
    save_numpy_dir(ds, out);
    const auto back = load_numpy_dir<I, I>(out);
    REQUIRE(back.graph == ds.graph);
    REQUIRE(back.features == ds.features);
    REQUIRE(back.labels == ds.labels);
  }
}

TEMPLATE_TEST_CASE("real data: tolokers .npz (deflate, heterophilous layout)", "[io]", std::int32_t,
                   std::int64_t) {
  using I = TestType;
  auto dir = test::shared_dataset("tolokers");
  if (!dir) return;
  const auto t0 = std::chrono::steady_clock::now();
  const auto ds = load_npz_dataset<I, I>(*dir / "tolokers.npz");
  const double secs = std::chrono::duration<double>(std::chrono::steady_clock::now() - t0).count();
  WARN("tolokers.npz loaded in " << secs << " s");
#ifdef NDEBUG
  CHECK(secs < 1.0);
#endif
  REQUIRE(ds.num_nodes() == 11758);
  REQUIRE(ds.num_edges() == 2 * 519000);
  REQUIRE(self_loops(ds.graph) == 0);
  REQUIRE(undirected_pairs_without_loops(ds.graph) == 519000);
  ds.graph.validate(true);  // sorted, no duplicates
  REQUIRE(ds.num_features == 10);
  REQUIRE(std::all_of(ds.features.begin(), ds.features.end(),
                      [](float x) { return x >= 0 && x <= 1; }));
  REQUIRE(class_sizes(ds.labels) == std::vector<std::int64_t>{9192, 2566});
  const npz_archive ar(*dir / "tolokers.npz");
  for (const auto& k : ar.keys()) REQUIRE(encode_npy(ar.array(k)) == ar.member_bytes(k));
  for (int s : {0, 9}) {
    const auto sp_ds = s == 0 ? ds : load_npz_dataset<I, I>(*dir / "tolokers.npz", s);
    if (s == 0) {
      REQUIRE(sp_ds.train_idx.size() == 5879);
      REQUIRE(sp_ds.val_idx.size() == 2939);
      REQUIRE(sp_ds.test_idx.size() == 2940);
    }
    std::vector<int> seen(11758, 0);
    for (const auto* v : {&sp_ds.train_idx, &sp_ds.val_idx, &sp_ds.test_idx})
      for (auto x : *v) ++seen[static_cast<std::size_t>(x)];
    REQUIRE(std::all_of(seen.begin(), seen.end(), [](int k) { return k == 1; }));
  }
  REQUIRE_THROWS_AS((load_npz_dataset<I, I>(*dir / "tolokers.npz", 10)), invalid_argument);
}

TEST_CASE("atomic_write: symlinks are followed, special files refused, permissions kept",
          "[io][bad-input]") {
  namespace fs = std::filesystem;
  const auto dir = ibmb::test::scratch_dir("atomic_write");
  auto put = [](const fs::path& p, std::string_view text) {
    ibmb::atomic_write(p, [&](ibmb::file_writer& w) { w.write(text); });
  };
  auto text_of = [](const fs::path& p) {
    const auto b = ibmb::read_file(p);
    return std::string(b.begin(), b.end());
  };
  // A replaced file keeps its permission bits.
  const auto f = dir / "f.txt";
  put(f, "one");
  fs::permissions(f, fs::perms::owner_read | fs::perms::owner_write);
  put(f, "two");
  CHECK(text_of(f) == "two");
  CHECK(fs::status(f).permissions() == (fs::perms::owner_read | fs::perms::owner_write));
  // Through a symbolic link: the target is replaced, the link stays a link.
  const auto link = dir / "link.txt";
  fs::create_symlink(f, link);
  put(link, "three");
  CHECK(fs::is_symlink(fs::symlink_status(link)));
  CHECK(text_of(f) == "three");
  // A FIFO is neither replaced nor opened for reading (which would block).
  const auto fifo = dir / "fifo";
  REQUIRE(::mkfifo(fifo.c_str(), 0600) == 0);
  CHECK_THROWS_AS(put(fifo, "x"), ibmb::io_error);
  CHECK_THROWS_WITH(ibmb::read_file(fifo), Catch::Contains("not a regular file"));
  CHECK(fs::is_fifo(fifo));
  CHECK_THROWS_AS(put(dir, "x"), ibmb::io_error);
  // Nothing is left behind.
  std::size_t entries = 0;
  for ([[maybe_unused]] const auto& e : fs::directory_iterator(dir)) ++entries;
  CHECK(entries == 3);
}
