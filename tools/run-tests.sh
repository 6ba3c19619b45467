#!/usr/bin/env bash
# Every test suite, in order: native unit and bad-input tests under
# AddressSanitizer + UndefinedBehaviorSanitizer, the sanitized analysis and CLE drivers
# over every real model, the libFuzzer harnesses (regression inputs, then 15 s each),
# the libprotobuf cross-check, then the JS suites (Node's test runner:
# WASM core vs the independent Python reference, CLI, browser worker).
set -euo pipefail
cd "$(dirname "$0")/.."
jobs=$(nproc)

echo "== generating synthetic test models"
/usr/bin/python3 tools/make_test_models.py models/generated >/dev/null

echo "== native tests (ASan + UBSan)"
if [ ! -f build/asan/CMakeCache.txt ]; then
  cmake -S . -B build/asan -DCMAKE_BUILD_TYPE=RelWithDebInfo -DQL_SANITIZE=ON -DQL_PROTOBUF_CROSSCHECK=OFF >/dev/null
fi
cmake --build build/asan -j"$jobs" 2>&1 | grep -v -E '^\[|^(Consolidate|Scanning|Built target)' || true
build/asan/quantlens_tests

echo "== sanitized driver over real and generated models"
shopt -s nullglob
models=(../shared/models/*/*.onnx models/fetched/*.onnx models/generated/*.onnx)
[ -d ../shared/models ] || echo "note: ../shared/models is absent; real shared models skipped"
export ASAN_OPTIONS=exitcode=86 UBSAN_OPTIONS=print_stacktrace=1
for m in "${models[@]}"; do
  # exit 1 = some layer could not be analysed (reported), which generated edge cases do on purpose
  rc=0
  # stream every payload of 64 bytes or more in 4 KB pieces, and check against whole-bytes results
  build/asan/quantlens_native "$m" --quiet --check --piece 4096 --skip-at-least 64 >/dev/null 2>build/asan/last-driver.err || rc=$?
  if [ $rc -gt 1 ] || grep -q -E 'Sanitizer|runtime error' build/asan/last-driver.err; then
    cat build/asan/last-driver.err; echo "driver failed on $m (exit $rc)"; exit 1
  fi
done
echo "driver: ${#models[@]} models, no sanitizer reports"

echo "== sanitized CLE over real and generated models"
for m in "${models[@]}"; do
  # exit 2 = a model the core rejects (the generated bad-input cases), reported as an error value
  rc=0
  build/asan/quantlens_equalize "$m" --quiet -o build/asan/last-equalized.onnx >/dev/null 2>build/asan/last-cle.err || rc=$?
  if [ $rc -gt 2 ] || grep -q -E 'Sanitizer|runtime error' build/asan/last-cle.err; then
    cat build/asan/last-cle.err; echo "CLE failed on $m (exit $rc)"; exit 1
  fi
done
echo "CLE: ${#models[@]} models, no sanitizer reports"

echo "== libFuzzer harnesses: regression inputs, then 15 s each"
# tools/fuzz.sh replays every file in tests/fuzz/regressions/<harness>/ first, then fuzzes.
bash tools/fuzz.sh --seconds 15

echo "== libprotobuf cross-check"
build/native/quantlens_crosscheck

echo "== JS tests (node --test)"
node --test --test-concurrency=1 tests/js/
