# Builds TARGET in BUILD_DIR and passes only when the build fails because
# EXPECT cannot be found (the include path of the layer does not have it).
execute_process(COMMAND ${CMAKE_COMMAND} --build ${BUILD_DIR} --target ${TARGET}
                RESULT_VARIABLE result OUTPUT_VARIABLE out ERROR_VARIABLE err)
if(result EQUAL 0)
  message(FATAL_ERROR "${TARGET} compiled: a layer can include ${EXPECT}")
endif()
string(FIND "${out}${err}" "${EXPECT}: No such file" at)
if(at EQUAL -1)
  message(FATAL_ERROR "${TARGET} failed for another reason:\n${out}${err}")
endif()
message(STATUS "${TARGET} fails as it should: ${EXPECT} is not visible")
