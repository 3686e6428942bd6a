// A translation unit built without libdeflate (tests/CMakeLists.txt undefines
// IBMB_HAVE_LIBDEFLATE for this file only), linked into the same test binary as units built
// with it: core/crc32.hpp keeps each backend in its own inline namespace, so both coexist.
#include <cstddef>
#include <cstdint>

#include "ibmb/core/crc32.hpp"

namespace ibmb_test {

std::uint32_t crc32_via_zlib_tu(std::uint32_t crc, const void* p, std::size_t n) {
  return ibmb::detail::crc32_update(crc, p, n);
}

const char* crc32_backend_of_zlib_tu() { return ibmb::detail::crc32_backend(); }

}  // namespace ibmb_test
