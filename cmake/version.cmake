# Build identity shown by `wharf --version` and wharf_build_info.
# -DWHARF_REVISION=<rev> wins: container builds copy the tree without .git.
if(NOT WHARF_REVISION)
  execute_process(COMMAND git rev-parse --short=12 HEAD
    WORKING_DIRECTORY ${CMAKE_SOURCE_DIR}
    OUTPUT_VARIABLE WHARF_REVISION OUTPUT_STRIP_TRAILING_WHITESPACE
    ERROR_QUIET RESULT_VARIABLE _rev_rc)
  if(NOT _rev_rc EQUAL 0 OR WHARF_REVISION STREQUAL "")
    set(WHARF_REVISION "unknown")
  endif()
endif()
set(WHARF_VERSION ${PROJECT_VERSION})
