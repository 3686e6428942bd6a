// CRC-32 (core/crc32.hpp) against a bit-by-bit reference, the chunked parallel checksum of the
// store against one sequential pass, and the two backends (libdeflate, zlib) against each other.
#include <cstddef>
#include <cstdint>
#include <cstring>
#include <random>
#include <span>
#include <string>
#include <vector>

#include <catch2/catch.hpp>

#include "ibmb/batch/store.hpp"
#include "ibmb/core/crc32.hpp"
#include "ibmb/core/parallel.hpp"

namespace ibmb_test {
std::uint32_t crc32_via_zlib_tu(std::uint32_t crc, const void* p, std::size_t n);
const char* crc32_backend_of_zlib_tu();
}  // namespace ibmb_test

namespace {

/// CRC-32 from its definition: reflected polynomial 0xEDB88320, register preset to ~0 and
/// inverted at the end, one bit at a time (no tables, nothing shared with either backend).
std::uint32_t crc32_bitwise(std::uint32_t crc, const unsigned char* p, std::size_t n) {
  crc = ~crc;
  for (std::size_t i = 0; i < n; ++i) {
    crc ^= p[i];
    for (int k = 0; k < 8; ++k) crc = (crc >> 1) ^ (0xEDB88320u & (0u - (crc & 1u)));
  }
  return ~crc;
}

std::vector<unsigned char> random_bytes(std::size_t n, std::uint64_t seed) {
  std::mt19937_64 rng(seed);
  std::vector<unsigned char> b(n);
  for (auto& x : b) x = static_cast<unsigned char>(rng());
  return b;
}

}  // namespace

TEST_CASE("crc32_update equals the bitwise CRC-32 for every length and alignment", "[crc32]") {
  // The check value of the CRC-32 catalogue: crc("123456789") = 0xCBF43926.
  const char* check = "123456789";
  REQUIRE(crc32_bitwise(0, reinterpret_cast<const unsigned char*>(check), 9) == 0xCBF43926u);
  CHECK(ibmb::detail::crc32_update(0, check, 9) == 0xCBF43926u);

  const auto b = random_bytes(4096 + 64, 11);
  for (std::size_t off = 0; off < 64; off += 7)
    for (std::size_t n : {0, 1, 2, 3, 7, 8, 15, 16, 31, 63, 64, 65, 127, 255, 256, 1000, 4096}) {
      INFO("offset " << off << ", length " << n);
      CHECK(ibmb::detail::crc32_update(0, b.data() + off, n) ==
            crc32_bitwise(0, b.data() + off, n));
    }
  // Running values: any split gives the checksum of the whole.
  const std::uint32_t whole = crc32_bitwise(0, b.data(), b.size());
  for (std::size_t cut :
       {std::size_t{0}, std::size_t{1}, std::size_t{100}, b.size() - 3, b.size()}) {
    const std::uint32_t a = ibmb::detail::crc32_update(0, b.data(), cut);
    CHECK(ibmb::detail::crc32_update(a, b.data() + cut, b.size() - cut) == whole);
    const std::uint32_t tail = ibmb::detail::crc32_update(0, b.data() + cut, b.size() - cut);
    CHECK(ibmb::detail::crc32_combine(a, tail, b.size() - cut) == whole);
  }
}

TEST_CASE("crc32 backends agree within one program", "[crc32]") {
  const std::string here = ibmb::detail::crc32_backend();
#if defined(IBMB_HAVE_LIBDEFLATE) && IBMB_HAVE_LIBDEFLATE
  CHECK(here == "libdeflate");
#else
  CHECK(here == "zlib");
#endif
  CHECK(std::string(ibmb_test::crc32_backend_of_zlib_tu()) == "zlib");
  const auto b = random_bytes(1 << 20, 12);
  for (std::size_t n : {std::size_t{0}, std::size_t{5}, std::size_t{4099}, b.size()})
    CHECK(ibmb::detail::crc32_update(7, b.data(), n) ==
          ibmb_test::crc32_via_zlib_tu(7, b.data(), n));
}

TEST_CASE("crc32_parallel and crc32_as equal one sequential pass for any thread count", "[crc32]") {
  // 2.5 chunks of 16 MiB, so that the parallel path joins three partial checksums.
  const std::size_t n = ibmb::detail::crc_chunk * 5 / 2 + 13;
  const auto b = random_bytes(n, 13);
  const std::uint32_t seq = ibmb_test::crc32_via_zlib_tu(0, b.data(), n);
  const auto bytes = std::as_bytes(std::span<const unsigned char>(b));
  for (int t : {1, 2, 3}) {
    ibmb::scoped_threads guard(t);
    INFO(t << " threads");
    CHECK(ibmb::detail::crc32_parallel(bytes) == seq);
    CHECK(ibmb::detail::crc32_parallel(bytes.first(100)) == crc32_bitwise(0, b.data(), 100));
  }
  // crc32_as converts each element first (here int32 -> int64 over a chunk boundary).
  std::vector<std::int32_t> v(ibmb::detail::crc_chunk / 8 * 2 + 5);
  std::mt19937 rng(14);
  for (auto& x : v) x = static_cast<std::int32_t>(rng());
  std::vector<std::int64_t> wide(v.begin(), v.end());
  const std::uint32_t want = ibmb_test::crc32_via_zlib_tu(0, wide.data(), wide.size() * 8);
  for (int t : {1, 2}) {
    ibmb::scoped_threads guard(t);
    CHECK(ibmb::detail::crc32_as<std::int64_t>(std::span<const std::int32_t>(v)) == want);
  }
  CHECK(ibmb::detail::crc32_as<std::int64_t>(std::span<const std::int32_t>()) == 0u);
}
