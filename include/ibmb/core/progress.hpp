// ibmb: the library prints nothing; long steps report through this callback.
#pragma once

#include <cstdint>
#include <functional>
#include <string_view>

namespace ibmb {

/// Called from the calling thread only (never from inside a parallel region) with the
/// name of the stage, work done so far and the total (0 if unknown).
using progress_callback =
    std::function<void(std::string_view stage, std::int64_t done, std::int64_t total)>;

inline void report(const progress_callback& cb, std::string_view stage, std::int64_t done,
                   std::int64_t total) {
  if (cb) cb(stage, done, total);
}

}  // namespace ibmb
