# Regression replay of the fuzz corpora in the normal (gcc, ASan+UBSan under `make check`) build:
# every tests/fuzz/fuzz_<name>.c is linked with replay_main.c instead of libFuzzer and CTest runs
# it over tests/fuzz/corpus/fuzz_<name>/ as fuzz-replay.fuzz_<name>. See docs/fuzzing.md.
# Included from tests/CMakeLists.txt:  include(${CMAKE_CURRENT_SOURCE_DIR}/fuzz/replay.cmake)
file(GLOB LADE_FUZZ_REPLAY_SRC CONFIGURE_DEPENDS ${CMAKE_CURRENT_LIST_DIR}/fuzz_*.c)
foreach(fuzz_src ${LADE_FUZZ_REPLAY_SRC})
  get_filename_component(fuzzer ${fuzz_src} NAME_WE)
  set(name replay_${fuzzer})
  add_executable(${name} ${fuzz_src} ${CMAKE_CURRENT_LIST_DIR}/replay_main.c)
  target_link_libraries(${name} PRIVATE lade)
  # gcc warns on `(void)f()` of a warn_unused_result function (clang, which builds the fuzzers,
  # does not); harnesses call decoders for their side effects on purpose.
  target_compile_options(${name} PRIVATE -Wno-unused-result)
  if(LADE_SANITIZE)
    # gcc's -fsanitize=undefined leaves out float-cast-overflow (clang's, used by the fuzzers,
    # has it); corpus/fuzz_charger_messages/twin_version_huge needs it to reproduce.
    target_compile_options(${name} PRIVATE -fsanitize=float-cast-overflow)
    target_link_options(${name} PRIVATE -fsanitize=float-cast-overflow)
  endif()
  # A target's extra sources (tests/fuzz/<fuzzer>.cmake) are written against ${name}.
  if(EXISTS ${CMAKE_CURRENT_LIST_DIR}/${fuzzer}.cmake)
    include(${CMAKE_CURRENT_LIST_DIR}/${fuzzer}.cmake)
  endif()
  set(corpus ${CMAKE_CURRENT_LIST_DIR}/corpus/${fuzzer})
  if(EXISTS ${corpus})
    add_test(NAME fuzz-replay.${fuzzer} COMMAND ${name} ${corpus})
  else()
    # No seeds: still prove the target runs (on the empty input).
    add_test(NAME fuzz-replay.${fuzzer} COMMAND ${name} /dev/null)
  endif()
  set_tests_properties(fuzz-replay.${fuzzer} PROPERTIES LABELS fuzz TIMEOUT 120)
endforeach()
