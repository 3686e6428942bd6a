# FindLibDeflate: Debian's libdeflate-dev ships a pkg-config file but no CMake config, so look
# for the header and the library ourselves. Defines LibDeflate::LibDeflate, LibDeflate_FOUND,
# LibDeflate_INCLUDE_DIR, LibDeflate_LIBRARY, LibDeflate_VERSION (from libdeflate.h).
include(FindPackageHandleStandardArgs)

find_path(LibDeflate_INCLUDE_DIR NAMES libdeflate.h)
find_library(LibDeflate_LIBRARY NAMES deflate)

if(LibDeflate_INCLUDE_DIR AND EXISTS "${LibDeflate_INCLUDE_DIR}/libdeflate.h")
  file(STRINGS "${LibDeflate_INCLUDE_DIR}/libdeflate.h" _ld_ver
       REGEX "^#define LIBDEFLATE_VERSION_STRING")
  string(REGEX MATCH "\"([0-9.]+)\"" _m "${_ld_ver}")
  set(LibDeflate_VERSION "${CMAKE_MATCH_1}")
endif()

find_package_handle_standard_args(LibDeflate
  REQUIRED_VARS LibDeflate_LIBRARY LibDeflate_INCLUDE_DIR
  VERSION_VAR LibDeflate_VERSION)

if(LibDeflate_FOUND AND NOT TARGET LibDeflate::LibDeflate)
  add_library(LibDeflate::LibDeflate UNKNOWN IMPORTED)
  set_target_properties(LibDeflate::LibDeflate PROPERTIES
    IMPORTED_LOCATION "${LibDeflate_LIBRARY}"
    INTERFACE_INCLUDE_DIRECTORIES "${LibDeflate_INCLUDE_DIR}")
endif()
mark_as_advanced(LibDeflate_INCLUDE_DIR LibDeflate_LIBRARY)
