// ibmb: the one place the version is written; CMake parses it from here.
#pragma once

#define IBMB_VERSION_MAJOR 0
#define IBMB_VERSION_MINOR 1
#define IBMB_VERSION_PATCH 0

namespace ibmb {
inline constexpr int version_major = IBMB_VERSION_MAJOR;
inline constexpr int version_minor = IBMB_VERSION_MINOR;
inline constexpr int version_patch = IBMB_VERSION_PATCH;
inline constexpr const char* version_string = "0.1.0";
}  // namespace ibmb
