# Training end-to-end tests (ctest -L e2e), included by
# tests/e2e/CMakeLists.txt: executables that train (train.sh), against
# nnc_interp_train (nnc_interp_train.c), @train_step in the reference
# interpreter on the same batches.
add_executable(nnc_interp_train ${CMAKE_SOURCE_DIR}/tests/e2e/nnc_interp_train.c)
target_link_libraries(nnc_interp_train PRIVATE nnc_frontend nnc_passes nnc_ir nnrt)
target_compile_definitions(nnc_interp_train PRIVATE
  NNC_SOURCE_DIR="${CMAKE_SOURCE_DIR}")

foreach(part tiny threads resume interp malformed)
  add_test(NAME e2e/train_${part}
           COMMAND sh ${CMAKE_SOURCE_DIR}/tests/e2e/train.sh ${part}
                   $<TARGET_FILE:nnc> $<TARGET_FILE:nnc_interp_train>
                   ${CMAKE_SOURCE_DIR})
  set_tests_properties(e2e/train_${part} PROPERTIES LABELS e2e TIMEOUT 300
                       SKIP_RETURN_CODE 77)
endforeach()
