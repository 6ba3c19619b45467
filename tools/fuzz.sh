#!/usr/bin/env bash
# Builds the libFuzzer harnesses (tests/fuzz, clang, ASan + UBSan, build/fuzz), writes the
# seed corpus when missing, replays every reproducer in tests/fuzz/regressions/<harness>/,
# then fuzzes each harness for N seconds and prints its execs. Exits non-zero on any crash,
# sanitizer report, leak, timeout or out-of-memory, naming the reproducer.
#   bash tools/fuzz.sh [--seconds N] [--harness NAME]... [--timeout S] [--rss-limit-mb MB]
#   npm run fuzz -- --seconds 600 --harness fuzz_equalize
# The working corpus is build/fuzz/corpus/<harness>/ (kept between runs, so longer runs
# build on earlier ones), reproducers go to build/fuzz/artifacts/<harness>/.
set -euo pipefail
cd "$(dirname "$0")/.."

seconds=60
timeout=10        # seconds one input may take: only a truly pathological input gets near it
rss_limit=2048    # MB
harnesses=()
while (($#)); do
  case "$1" in
    --seconds) seconds="$2"; shift 2 ;;
    --harness) harnesses+=("$2"); shift 2 ;;
    --timeout) timeout="$2"; shift 2 ;;
    --rss-limit-mb) rss_limit="$2"; shift 2 ;;
    -h|--help) sed -n '2,10p' "$0"; exit 0 ;;
    *) echo "fuzz.sh: unknown argument $1 (see --help)" >&2; exit 2 ;;
  esac
done
((${#harnesses[@]})) || harnesses=(fuzz_reader fuzz_analyze fuzz_equalize fuzz_compare)

B=build/fuzz
if [ ! -f $B/CMakeCache.txt ]; then
  CC=clang CXX=clang++ cmake -S . -B $B -DQL_FUZZ=ON -DCMAKE_BUILD_TYPE=RelWithDebInfo >/dev/null
fi
cmake --build $B -j"$(nproc)" 2>&1 | grep -v -E '^\[|^(Consolidate|Scanning|Built target)' || true
for h in "${harnesses[@]}"; do
  [ -x $B/$h ] || { echo "fuzz.sh: $B/$h was not built" >&2; exit 2; }
done
if [ ! -d $B/seeds/models ] || [ -z "$(ls -A $B/seeds/models)" ]; then
  /usr/bin/python3 tools/fuzz/make_seeds.py $B/seeds
fi

# Allocation stacks cost a third of the speed; replay a reproducer by hand to see them.
export ASAN_OPTIONS=${ASAN_OPTIONS:-malloc_context_size=0}
export UBSAN_OPTIONS=${UBSAN_OPTIONS:-print_stacktrace=1}
flags=(-timeout="$timeout" -rss_limit_mb="$rss_limit" -malloc_limit_mb="$rss_limit" -dict=tests/fuzz/onnx.dict)

failed=0
report() {  # harness, log: the sanitizer / libFuzzer report and the reproducer
  echo "---- $1: finding (log $2)"
  grep -E -A40 '^==[0-9]+==ERROR|FUZZ FINDING|runtime error|ALARM|out-of-memory|Direct leak|deadly signal' "$2" | head -60
  grep -E 'Test unit written to|^Running: ' "$2" | sed 's/^/    /' || true
}

shopt -s nullglob
for h in "${harnesses[@]}"; do
  log=$B/logs/$h.log
  mkdir -p $B/logs $B/corpus/$h $B/artifacts/$h

  # 1. Every kept reproducer, once each: a fixed finding must stay fixed.
  regs=(tests/fuzz/regressions/$h/*)
  if ((${#regs[@]})); then
    if ! $B/$h "${flags[@]}" "${regs[@]}" >"$log" 2>&1; then
      report "$h" "$log"
      echo "$h: a regression input fails again (tests/fuzz/regressions/$h/)"
      failed=1
      continue
    fi
    echo "$h: ${#regs[@]} regression inputs pass"
  fi

  # 2. Fuzz from the working corpus and the seeds (new inputs go to the first folder).
  seeds=($B/seeds/models)
  [ "$h" = fuzz_compare ] && seeds+=($B/seeds/pairs)
  rc=0
  $B/$h "${flags[@]}" -max_total_time="$seconds" -print_final_stats=1 -artifact_prefix=$B/artifacts/$h/ \
    $B/corpus/$h "${seeds[@]}" >"$log" 2>&1 || rc=$?
  execs=$(grep -o 'stat::number_of_executed_units: [0-9]*' "$log" | tail -1 | grep -o '[0-9]*$' || true)
  corpus=$(ls $B/corpus/$h | wc -l)
  if [ $rc -ne 0 ] || grep -q 'Test unit written to' "$log"; then
    report "$h" "$log"
    echo "$h: FAILED after ${execs:-?} execs (exit $rc); reproduce with: $B/$h <the file above>"
    failed=1
  else
    echo "$h: ${execs:-?} execs in ${seconds} s, corpus $corpus inputs, no findings"
  fi
done
exit $failed
