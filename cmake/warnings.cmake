# Project code builds warning-free. Third-party headers come in as SYSTEM
# includes (imported targets), so their warnings do not count.
function(wharf_warnings target)
  target_compile_options(${target} PRIVATE -Wall -Wextra -Wpedantic -Werror)
endfunction()
