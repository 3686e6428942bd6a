// libFuzzer target: the .npy parser (and, for inputs that look like a zip, the .npz reader)
// must answer any bytes with a result or an ibmb::error, never a crash, hang or other
// exception.
#include <cstddef>
#include <cstdint>
#include <span>
#include <vector>

#include "ibmb/core/error.hpp"
#include "ibmb/graph/io/npy.hpp"
#include "ibmb/graph/io/npz.hpp"

namespace {
void exercise(const ibmb::npy_array& a) { (void)a.as<std::int32_t>("fuzz"); }
void convert_all(const ibmb::npy_array& a) {
  try {
    exercise(a);
  } catch (const ibmb::error&) {
  }
  try {
    (void)a.as<float>("fuzz");
    (void)a.as<std::uint8_t>("fuzz");
  } catch (const ibmb::error&) {
  }
  (void)ibmb::encode_npy(a);
}
}  // namespace

extern "C" int LLVMFuzzerTestOneInput(const std::uint8_t* data, std::size_t size) {
  const std::span<const char> bytes(reinterpret_cast<const char*>(data), size);
  try {
    convert_all(ibmb::parse_npy(bytes, "fuzz.npy"));
  } catch (const ibmb::error&) {
  }
  if (size >= 4 && data[0] == 'P' && data[1] == 'K') {
    try {
      const ibmb::npz_archive ar(std::vector<char>(bytes.begin(), bytes.end()), "fuzz.npz");
      for (const auto& k : ar.keys()) {
        try {
          convert_all(ar.array(k));
        } catch (const ibmb::error&) {
        }
      }
    } catch (const ibmb::error&) {
    }
  }
  return 0;
}
