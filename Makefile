# lade — top-level entry points. See README.md.
#   make         build (build/release)
#   make check   install deps, build with ASan+UBSan (build/asan), run every test, check format
#   make demo    install deps, build, run a local hub and chargers until Ctrl-C
#   make fuzz    build libFuzzer targets with clang and run each for FUZZ_SECONDS
#   make bench   run benchmarks and write bench/RESULTS.md

JOBS ?= $(shell nproc 2>/dev/null || echo 2)
FUZZ_SECONDS ?= 60
CTEST_ARGS ?=

.PHONY: all build deps check test format format-check demo fuzz bench clean

all: build

deps:
	@scripts/install-deps.sh

build/release/build.ninja:
	cmake -S . -B build/release -G Ninja -DCMAKE_BUILD_TYPE=RelWithDebInfo

build: build/release/build.ninja
	cmake --build build/release -j $(JOBS)

build/asan/build.ninja:
	cmake -S . -B build/asan -G Ninja -DCMAKE_BUILD_TYPE=Debug -DLADE_SANITIZE=ON

check: deps build/asan/build.ninja
	cmake --build build/asan -j $(JOBS)
	cd build/asan && ASAN_OPTIONS=detect_leaks=1:abort_on_error=1 \
	  UBSAN_OPTIONS=print_stacktrace=1:halt_on_error=1 \
	  ctest --output-on-failure -j $(JOBS) $(CTEST_ARGS)
	@# The optimised build `make demo` and `make bench` use must compile too (-O2 enables
	@# warnings, e.g. format-truncation, that the -O0 sanitizer build does not see).
	@$(MAKE) --no-print-directory build
	@$(MAKE) --no-print-directory format-check

test: build
	cd build/release && ctest --output-on-failure -j $(JOBS) $(CTEST_ARGS)

FORMAT_FILES = $(shell git ls-files '*.c' '*.h' 2>/dev/null)

format:
	clang-format -i $(FORMAT_FILES)

format-check:
	@clang-format --dry-run --Werror $(FORMAT_FILES) && echo "clang-format: clean"

demo: deps build
	scripts/demo.sh

build/fuzz/build.ninja:
	CC=clang cmake -S . -B build/fuzz -G Ninja -DCMAKE_BUILD_TYPE=RelWithDebInfo -DLADE_FUZZ=ON

fuzz: deps build/fuzz/build.ninja
	cmake --build build/fuzz -j $(JOBS)
	scripts/fuzz.sh build/fuzz $(FUZZ_SECONDS)

bench: deps build
	scripts/bench.sh build/release

clean:
	rm -rf build
