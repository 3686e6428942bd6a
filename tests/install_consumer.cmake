# Installs ibmb into a temporary prefix, then configures, builds and runs a one-file
# consumer that uses find_package(ibmb CONFIG REQUIRED).
file(REMOVE_RECURSE "${WORK_DIR}")
set(_prefix "${WORK_DIR}/prefix")
function(run)
  execute_process(COMMAND ${ARGN} RESULT_VARIABLE rc OUTPUT_VARIABLE out ERROR_VARIABLE err)
  if(NOT rc EQUAL 0)
    message(FATAL_ERROR "failed: ${ARGN}\n${out}\n${err}")
  endif()
endfunction()
run(${CMAKE_COMMAND} -S "${SOURCE_DIR}" -B "${WORK_DIR}/lib" -G "${GENERATOR}"
    -DIBMB_BUILD_TESTS=OFF -DIBMB_BUILD_TOOLS=OFF -DIBMB_BUILD_EXAMPLES=OFF
    -DIBMB_BUILD_BENCHMARKS=OFF -DCMAKE_INSTALL_PREFIX=${_prefix})
run(${CMAKE_COMMAND} --install "${WORK_DIR}/lib")
run(${CMAKE_COMMAND} -S "${SOURCE_DIR}/tests/consumer" -B "${WORK_DIR}/consumer" -G "${GENERATOR}"
    -DCMAKE_PREFIX_PATH=${_prefix} -DCMAKE_BUILD_TYPE=Release)
run(${CMAKE_COMMAND} --build "${WORK_DIR}/consumer")
run("${WORK_DIR}/consumer/ibmb_consumer")
