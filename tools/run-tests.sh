#!/usr/bin/env bash
# The test suites, in this order (all of them when no name is given):
#   lint        clang-format and the JS linter/formatter on every tracked source file (tools/lint.sh)
#   native      native unit and bad-input tests under AddressSanitizer + UndefinedBehaviorSanitizer
#   driver      the sanitized analysis driver over every real and generated model
#   cle         the sanitized CLE driver over every real and generated model
#   fuzz        the libFuzzer harnesses: regression inputs, then 15 s each
#   crosscheck  our protobuf reader against libprotobuf code generated from onnx.proto
#   js          the JS suites (Node's test runner: the WASM core against the independent
#               Python reference, CLE in onnxruntime, CLI, API, app and views in Chromium, ...)
#   js:NAME     one JS suite, tests/js/NAME.test.mjs (js:cli, js:app, ...)
# Synthetic test models are generated first whenever a suite needs them.
#   bash tools/run-tests.sh [SUITE...]       npm test -- native js:cli
# npm test builds first (tools/build.sh); run that yourself before calling this script alone.
set -euo pipefail
cd "$(dirname "$0")/.."
jobs=$(nproc)

ALL=(lint native driver cle fuzz crosscheck js)
suites=("$@")
((${#suites[@]})) || suites=("${ALL[@]}")
want() { local s; for s in "${suites[@]}"; do [ "$s" = "$1" ] && return 0; done; return 1; }
# Each section's wall time, printed at the end (where `npm test`'s minutes go).
times=()
last=""
started=$SECONDS
section() {
  [ -z "$last" ] || times+=("$last $((SECONDS - started)) s")
  last="$1"
  started=$SECONDS
  echo "== $1"
}
trap '[ -z "$last" ] || { times+=("$last $((SECONDS - started)) s"); echo "run-tests: $((SECONDS)) s in all: $(IFS=,; echo "${times[*]}" | sed "s/,/, /g")"; }' EXIT
js_files=()
for s in "${suites[@]}"; do
  case "$s" in
    -h|--help) sed -n '2,13p' "$0"; exit 0 ;;
    lint|native|driver|cle|fuzz|crosscheck|js) ;;
    js:*)
      f="tests/js/${s#js:}.test.mjs"
      [ -f "$f" ] || { echo "run-tests.sh: no suite $s ($f does not exist)" >&2; exit 2; }
      js_files+=("$f") ;;
    *) echo "run-tests.sh: unknown suite '$s' (suites: ${ALL[*]} js:NAME; see --help)" >&2; exit 2 ;;
  esac
done

if want lint; then
  section "lint"
  bash tools/lint.sh
fi

if want native || want driver || want cle || want fuzz || want crosscheck || want js || ((${#js_files[@]})); then
  section "generating synthetic test models"
  /usr/bin/python3 tools/make_test_models.py models/generated >/dev/null
fi

if want native || want driver || want cle; then
  section "building the sanitized core (build/asan)"
  if [ ! -f build/asan/CMakeCache.txt ]; then
    # -O1 -g1 (line tables: reports keep file and line): built in half the time of -O2 -g
    # (284 s against 614 s from clean on 2 cores), the tests run as fast (64 s against 67 s).
    cmake -S . -B build/asan -DCMAKE_BUILD_TYPE=RelWithDebInfo -DCMAKE_CXX_FLAGS_RELWITHDEBINFO="-O1 -g1 -DNDEBUG" \
      -DQL_SANITIZE=ON -DQL_PROTOBUF_CROSSCHECK=OFF >/dev/null
  fi
  cmake --build build/asan -j"$jobs" 2>&1 | grep -v -E '^\[|^(Consolidate|Scanning|Built target)' || true
fi

if want native; then
  section "native tests (ASan + UBSan)"
  build/asan/quantlens_tests
fi

shopt -s nullglob
models=(../shared/models/*/*.onnx models/fetched/*.onnx models/generated/*.onnx)
export ASAN_OPTIONS=exitcode=86 UBSAN_OPTIONS=print_stacktrace=1

if want driver; then
  section "sanitized driver over real and generated models"
  [ -d ../shared/models ] || echo "note: ../shared/models is absent; real shared models skipped"
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
fi

if want cle; then
  section "sanitized CLE over real and generated models"
  for m in "${models[@]}"; do
    # exit 2 = a model the core rejects (the generated bad-input cases), reported as an error value
    rc=0
    build/asan/quantlens_equalize "$m" --quiet -o build/asan/last-equalized.onnx >/dev/null 2>build/asan/last-cle.err || rc=$?
    if [ $rc -gt 2 ] || grep -q -E 'Sanitizer|runtime error' build/asan/last-cle.err; then
      cat build/asan/last-cle.err; echo "CLE failed on $m (exit $rc)"; exit 1
    fi
  done
  echo "CLE: ${#models[@]} models, no sanitizer reports"
fi

if want fuzz; then
  section "libFuzzer harnesses: regression inputs, then 15 s each"
  # tools/fuzz.sh replays every file in tests/fuzz/regressions/<harness>/ first, then fuzzes.
  bash tools/fuzz.sh --seconds 15
fi

if want crosscheck; then
  section "libprotobuf cross-check"
  build/native/quantlens_crosscheck
fi

if want js; then
  section "JS tests (node --test)"
  # two test files at a time: 527 s against 670 s one at a time on 2 cores (559 tests pass either way)
  node --test --test-concurrency=2 tests/js/
elif ((${#js_files[@]})); then
  section "JS tests: ${js_files[*]}"
  node --test --test-concurrency=1 "${js_files[@]}"
fi
