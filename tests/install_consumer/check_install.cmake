# Installs a kryten build tree into a scratch prefix, builds the consumer
# project against it with find_package(kryten), and runs the result.
#
#   cmake -DBUILD_DIR=<kryten build> -DCONSUMER_DIR=<this folder>
#         -DWORK_DIR=<scratch> -P check_install.cmake
cmake_minimum_required(VERSION 3.18)

foreach(var BUILD_DIR CONSUMER_DIR WORK_DIR)
  if(NOT ${var})
    message(FATAL_ERROR "check_install.cmake: -D${var}=... is required")
  endif()
endforeach()

set(prefix "${WORK_DIR}/prefix")
set(consumer_build "${WORK_DIR}/build")

# Runs a command; stops with its output on a non-zero result.
function(run_step name)
  execute_process(COMMAND ${ARGN}
    RESULT_VARIABLE result
    OUTPUT_VARIABLE out
    ERROR_VARIABLE err)
  if(NOT result EQUAL 0)
    string(JOIN " " command ${ARGN})
    message(FATAL_ERROR "${name} failed (${result}):\n${command}\n--- stdout\n${out}\n--- stderr\n${err}")
  endif()
  message(STATUS "${name}: ok")
  set(step_output "${out}" PARENT_SCOPE)
endfunction()

file(REMOVE_RECURSE "${WORK_DIR}")
file(MAKE_DIRECTORY "${WORK_DIR}")

run_step("install" "${CMAKE_COMMAND}" --install "${BUILD_DIR}" --prefix "${prefix}")

# The library directory is GNUInstallDirs' CMAKE_INSTALL_LIBDIR (lib, lib64 or
# lib/<multiarch>): find it by the installed package config.
file(GLOB_RECURSE kryten_configs "${prefix}/*/krytenConfig.cmake")
if(NOT kryten_configs)
  message(FATAL_ERROR "no krytenConfig.cmake under ${prefix}")
endif()
list(GET kryten_configs 0 kryten_config)
get_filename_component(kryten_cmake_dir "${kryten_config}" DIRECTORY)  # <libdir>/cmake/kryten
get_filename_component(libdir "${kryten_cmake_dir}/../.." ABSOLUTE)
file(GLOB kryten_libs "${libdir}/libkryten.so*")
if(NOT kryten_libs)
  message(FATAL_ERROR "libkryten.so not installed next to its package config (${libdir})")
endif()
if(NOT EXISTS "${prefix}/include/kryten/kryten.hpp")
  message(FATAL_ERROR "headers not installed: ${prefix}/include/kryten/kryten.hpp missing")
endif()
# Detail headers stay private: only include/kryten, nothing of the runtime's own.
foreach(private clock.hpp uuid.hpp supervisor_actor.hpp)
  file(GLOB_RECURSE leaked "${prefix}/include/*/${private}")
  if(leaked)
    message(FATAL_ERROR "a private header was installed: ${leaked}")
  endif()
endforeach()
# The examples are installed programs (the README's systemd unit runs bin/echo_bot).
foreach(example echo_bot room_stats_bot embedded_bot)
  if(NOT EXISTS "${prefix}/bin/${example}")
    message(FATAL_ERROR "${example} not installed to ${prefix}/bin")
  endif()
endforeach()

# Same compiler as the library; a sanitized library (KRYTEN_SANITIZE) needs its
# runtime linked into the executable too.
set(consumer_args)
file(STRINGS "${BUILD_DIR}/CMakeCache.txt" cache_lines
  REGEX "^(CMAKE_CXX_COMPILER|KRYTEN_SANITIZE):[A-Z]+=")
foreach(line IN LISTS cache_lines)
  if(line MATCHES "^CMAKE_CXX_COMPILER:[A-Z]+=(.+)$")
    list(APPEND consumer_args "-DCMAKE_CXX_COMPILER=${CMAKE_MATCH_1}")
  elseif(line MATCHES "^KRYTEN_SANITIZE:[A-Z]+=(.+)$")
    list(APPEND consumer_args "-DCMAKE_CXX_FLAGS=-fsanitize=${CMAKE_MATCH_1}"
                              "-DCMAKE_EXE_LINKER_FLAGS=-fsanitize=${CMAKE_MATCH_1}")
  endif()
endforeach()
run_step("configure consumer" "${CMAKE_COMMAND}" -S "${CONSUMER_DIR}" -B "${consumer_build}"
  "-DCMAKE_PREFIX_PATH=${prefix}"
  -DCMAKE_BUILD_TYPE=Release
  ${consumer_args})
# It must have found our prefix, not some other installed kryten.
file(STRINGS "${consumer_build}/CMakeCache.txt" found_dir REGEX "^kryten_DIR:")
string(REGEX REPLACE "^kryten_DIR:[A-Z]+=" "" found_dir "${found_dir}")
get_filename_component(found_dir "${found_dir}" REALPATH)
get_filename_component(expected_dir "${kryten_cmake_dir}" REALPATH)
if(NOT found_dir STREQUAL expected_dir)
  message(FATAL_ERROR "consumer found kryten in '${found_dir}', expected '${expected_dir}'")
endif()
run_step("build consumer" "${CMAKE_COMMAND}" --build "${consumer_build}")

set(consumer_exe "${consumer_build}/consumer")
if(NOT EXISTS "${consumer_exe}")
  message(FATAL_ERROR "consumer binary not found at ${consumer_exe}")
endif()
set(ld_path "${libdir}")
if(DEFINED ENV{LD_LIBRARY_PATH} AND NOT "$ENV{LD_LIBRARY_PATH}" STREQUAL "")
  string(APPEND ld_path ":$ENV{LD_LIBRARY_PATH}")
endif()
run_step("run consumer" "${CMAKE_COMMAND}" -E env "LD_LIBRARY_PATH=${ld_path}" "${consumer_exe}")
if(NOT step_output MATCHES "consumer ok: kryten\\.robot\\.command kryten\\.events\\.cytube\\.lounge\\.>")
  message(FATAL_ERROR "consumer printed something unexpected:\n${step_output}")
endif()
message(STATUS "consumer output: ${step_output}")
