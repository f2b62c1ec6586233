#!/bin/sh
# Builds the libFuzzer targets (fuzz/CMakeLists.txt) with clang into BUILD and runs each for
# RUNS inputs from a fixed seed, so the same inputs on an idle machine and a busy one, over its
# seed corpus (the repo's programs, scenarios and logged events) and its regression corpus
# (fuzz/regressions/: inputs that once crashed a target). Exits non-zero when a target crashes;
# the crashing input is left as BUILD/crash-TARGET-*.
# Usage: fuzz/smoke.sh BUILD [RUNS]   (ctest runs it as fuzz_smoke; README: longer runs)
set -eu
here=$(cd "$(dirname "$0")" && pwd)
root=$(dirname "$here")
build=$1
runs=${2:-40000}
if ! command -v clang++ > /dev/null; then
  echo "fuzz: clang++ is not installed; install clang and libclang-rt-14-dev (make deps does)" >&2
  exit 1
fi
if [ ! -f "$build/build.ninja" ]; then
  CC=clang CXX=clang++ cmake -S "$here" -B "$build" -G Ninja -DCMAKE_BUILD_TYPE=RelWithDebInfo > /dev/null
fi
cmake --build "$build"

run() {
  target=$1
  shift
  work="$build/work/$target"
  rm -rf "$work"
  mkdir -p "$work" "$here/regressions/$target"
  log="$build/$target.log"
  if "$build/$target" -seed=1 -runs="$runs" -timeout=10 -rss_limit_mb=2048 -print_final_stats=1 \
      -artifact_prefix="$build/crash-$target-" "$work" "$here/regressions/$target" "$@" > "$log" 2>&1; then
    echo "fuzz: $target: $(grep -E '^(stat::number_of_executed_units|stat::average_exec_per_sec|stat::new_units_added)' "$log" | tr '\n' ' ')$(grep -oE 'cov: [0-9]+ ft: [0-9]+' "$log" | tail -1)"
  else
    tail -40 "$log" >&2
    echo "fuzz: $target failed; the input is $(ls "$build"/crash-"$target"-* 2> /dev/null | head -1) (add it to fuzz/regressions/$target once fixed)" >&2
    exit 1
  fi
}
rm -f "$build"/crash-*
run fuzz_program "$root/lang/baselines" "$root/lang/discoveries" "$root/tests/programs"
run fuzz_scenario "$root/scenarios"
run fuzz_event "$here/corpus/event"
