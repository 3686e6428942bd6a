# FindMETIS: Debian's libmetis-dev ships no CMake config, so look for the header and the
# library ourselves. Defines METIS::METIS, METIS_FOUND, METIS_INCLUDE_DIR, METIS_LIBRARY,
# METIS_IDXTYPEWIDTH (32 or 64, read from metis.h).
include(FindPackageHandleStandardArgs)

find_path(METIS_INCLUDE_DIR NAMES metis.h PATH_SUFFIXES metis)
find_library(METIS_LIBRARY NAMES metis)

if(METIS_INCLUDE_DIR AND EXISTS "${METIS_INCLUDE_DIR}/metis.h")
  file(STRINGS "${METIS_INCLUDE_DIR}/metis.h" _metis_idx REGEX "^#define IDXTYPEWIDTH [0-9]+")
  string(REGEX REPLACE ".*IDXTYPEWIDTH ([0-9]+).*" "\\1" METIS_IDXTYPEWIDTH "${_metis_idx}")
  file(STRINGS "${METIS_INCLUDE_DIR}/metis.h" _metis_ver REGEX "^#define METIS_VER_(MAJOR|MINOR|SUBMINOR) ")
  foreach(_part MAJOR MINOR SUBMINOR)
    string(REGEX REPLACE ".*METIS_VER_${_part} +([0-9]+).*" "\\1" _v "${_metis_ver}")
    string(REGEX MATCH "METIS_VER_${_part} +([0-9]+)" _m "${_metis_ver}")
    set(METIS_VERSION_${_part} "${CMAKE_MATCH_1}")
  endforeach()
  set(METIS_VERSION "${METIS_VERSION_MAJOR}.${METIS_VERSION_MINOR}.${METIS_VERSION_SUBMINOR}")
endif()

find_package_handle_standard_args(METIS
  REQUIRED_VARS METIS_LIBRARY METIS_INCLUDE_DIR
  VERSION_VAR METIS_VERSION)

if(METIS_FOUND AND NOT TARGET METIS::METIS)
  add_library(METIS::METIS UNKNOWN IMPORTED)
  set_target_properties(METIS::METIS PROPERTIES
    IMPORTED_LOCATION "${METIS_LIBRARY}"
    INTERFACE_INCLUDE_DIRECTORIES "${METIS_INCLUDE_DIR}")
endif()
mark_as_advanced(METIS_INCLUDE_DIR METIS_LIBRARY)
