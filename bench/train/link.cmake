# bench/train/link.cmake: CMAKE_PROJECT_INCLUDE of build-bench (run.sh).
# The top-level CMakeLists.txt does not link the driver with the backend
# yet, so nnc cannot emit objects there; this links nnc with nnc_backend
# (and defines NNC_BACKEND) when that target exists, after the whole tree
# is read.  Harmless once the top level does it itself.
function(nnc_bench_link_backend)
  if(TARGET nnc_backend AND TARGET nnc)
    target_link_libraries(nnc PRIVATE nnc_backend)
    target_compile_definitions(nnc PRIVATE NNC_BACKEND=1)
    if(TARGET nnrt)
      add_dependencies(nnc nnrt)
    endif()
  endif()
endfunction()
cmake_language(DEFER DIRECTORY ${CMAKE_SOURCE_DIR} CALL nnc_bench_link_backend)
