#!/usr/bin/env bash
# Sets up, builds and runs every test: unit tests, the ONNX conformance
# suite, the end-to-end model comparisons with ONNX Runtime, then the same
# tests under AddressSanitizer + UndefinedBehaviorSanitizer, then the fuzzers
# for a bounded time.
set -euo pipefail
cd "$(dirname "$0")/.."
JOBS=$(nproc)
scripts/setup.sh

echo "== build (warnings are errors)"
scripts/build.sh
echo "== tests"
ctest --test-dir build --output-on-failure -j "$JOBS" -LE slow

echo "== sanitizer build (ASan + UBSan)"
KILN_BUILD_DIR=build-asan scripts/build.sh -DKILN_SANITIZE=ON -DCMAKE_BUILD_TYPE=Debug
echo "== tests under sanitizers"
ASAN_OPTIONS=detect_leaks=1 UBSAN_OPTIONS=print_stacktrace=1 \
  ctest --test-dir build-asan --output-on-failure -j "$JOBS" -LE 'slow|nosan'

echo "== fuzzers (bounded time)"
KILN_BUILD_DIR=build-fuzz KILN_TARGETS="fuzz_model fuzz_tensor" scripts/build.sh -DKILN_FUZZ=ON -DCMAKE_C_COMPILER=/usr/lib/llvm-19/bin/clang \
  -DCMAKE_CXX_COMPILER=/usr/lib/llvm-19/bin/clang++
ctest --test-dir build-fuzz --output-on-failure -L fuzz
