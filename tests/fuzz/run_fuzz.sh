#!/usr/bin/env bash
# Builds the libFuzzer targets with ASan + UBSan and runs each for half of a bounded time over a
# writable copy of its seed corpus:
#   fuzz_colours_csv  the colour CSV parser; seeds tests/fuzz/seeds/ and the small files of tests/malformed/
#   fuzz_pairs_file   the pairs reader (CSV in small chunks, CEPAIRS1); seeds tests/fuzz/pairs_seeds/
# Exits non-zero when libFuzzer finds a crash, a sanitizer report, a timeout or a broken invariant
# in either target; the input is then saved under <build>/artifacts/ (pairs-* for the pairs target).
#
# Usage: tests/fuzz/run_fuzz.sh [seconds]      (default 60: 30 s each; 1 runs each for 1 s)
# Environment: FUZZ_BUILD_DIR (default <repo>/build-fuzz), CXX_FUZZ (default clang++),
#              FUZZ_FRESH=1 to start from the seeds again instead of the corpus grown by earlier runs.
# Needs clang++ and libFuzzer: Debian's clang and libclang-rt-14-dev (scripts/install-deps.sh).
set -euo pipefail

seconds="${1:-60}"
if ! [[ "$seconds" =~ ^[0-9]+$ ]] || [ "$seconds" -lt 1 ]; then
  echo "usage: $0 [seconds]   (seconds: a positive integer, default 60)" >&2
  exit 2
fi
colour_seconds=$(((seconds + 1) / 2))
pairs_seconds=$((seconds - colour_seconds))
[ "$pairs_seconds" -ge 1 ] || pairs_seconds=1  # -max_total_time=0 would mean no limit

root="$(cd "$(dirname "${BASH_SOURCE[0]}")/../.." && pwd)"
build="${FUZZ_BUILD_DIR:-$root/build-fuzz}"
cxx="${CXX_FUZZ:-clang++}"
artifacts="$build/artifacts"

if ! command -v "$cxx" >/dev/null 2>&1; then
  echo "run_fuzz: $cxx not found (install Debian's clang: scripts/install-deps.sh)" >&2
  exit 2
fi

mkdir -p "$build" "$artifacts"

# build TARGET SOURCE...: one fuzz target from host/ sources (no CUDA), or exit 2.
build() {
  local target="$build/$1"
  shift
  echo "run_fuzz: building $target with $cxx"
  if ! "$cxx" -std=c++20 -g -O1 -fno-omit-frame-pointer \
    -fsanitize=fuzzer,address,undefined -fno-sanitize-recover=undefined \
    -I"$root/include" -I"$root/host" "$@" -lfmt \
    -o "$target" 2>"$build/build.log"; then
    cat "$build/build.log" >&2
    if grep -q "libclang_rt.fuzzer" "$build/build.log"; then
      echo "run_fuzz: libFuzzer is missing: apt-get install libclang-rt-14-dev (see scripts/install-deps.sh)" >&2
    fi
    exit 2
  fi
}

# fuzz TARGET CORPUS DICT SECONDS ARTIFACT_PREFIX LOG: runs it, prints the summary line; returns
# libFuzzer's exit status.
fuzz() {
  local target="$build/$1" corpus="$2" dict="$3" secs="$4" prefix="$5" log="$6"
  local cmd=("$target" -max_total_time="$secs" -max_len=4096 -timeout=5 -rss_limit_mb=2048
    -dict="$dict" -artifact_prefix="$prefix" -print_final_stats=1 "$corpus")
  echo "run_fuzz: ${cmd[*]}"
  local rc
  set +e
  UBSAN_OPTIONS="print_stacktrace=1:halt_on_error=1" ASAN_OPTIONS="detect_leaks=1" "${cmd[@]}" 2>&1 | tee "$log"
  rc=${PIPESTATUS[0]}
  set -e

  local done_line runs speed cov ft corp found
  done_line="$(grep -E '^#[0-9]+[[:space:]]+DONE' "$log" | tail -n 1 || true)"
  runs="$(sed -nE 's/^stat::number_of_executed_units: *([0-9]+).*/\1/p' "$log" | tail -n 1)"
  speed="$(sed -nE 's/^stat::average_exec_per_sec: *([0-9]+).*/\1/p' "$log" | tail -n 1)"
  cov="$(echo "$done_line" | sed -nE 's/.*cov: ([0-9]+).*/\1/p')"
  ft="$(echo "$done_line" | sed -nE 's/.*ft: ([0-9]+).*/\1/p')"
  corp="$(echo "$done_line" | sed -nE 's/.*corp: ([0-9]+\/[0-9a-zA-Z]+).*/\1/p')"
  found="$(grep -oE "(crash|leak|timeout|oom|slow-unit)-[0-9a-f]+" "$log" | sort -u | tr '\n' ' ' || true)"
  if [ "$rc" -eq 0 ]; then
    echo "run_fuzz: PASS: $1: ${runs:-?} inputs in ${secs} s (${speed:-?} exec/s), cov ${cov:-?}, ft ${ft:-?}, corpus ${corp:-?}; no crash"
  else
    echo "run_fuzz: FAIL: $1 (libFuzzer exit $rc): ${runs:-?} inputs (${speed:-?} exec/s); finding: ${found:-see $log}; artifacts in $artifacts"
  fi
  return "$rc"
}

build fuzz_colours_csv "$root/host/data/colours_csv.cpp" "$root/host/text/input_text.cpp" "$root/tests/fuzz/fuzz_colours_csv.cpp"
build fuzz_pairs_file "$root/host/data/pairs_csv.cpp" "$root/host/data/pairs_binary.cpp" \
  "$root/host/data/pairs_shared.cpp" "$root/host/data/vocabulary.cpp" "$root/host/text/input_text.cpp" "$root/host/outputs/outputs.cpp" \
  "$root/tests/fuzz/fuzz_pairs_file.cpp"

corpus="$build/corpus"
pairs_corpus="$build/corpus-pairs"
if [ "${FUZZ_FRESH:-0}" = 1 ]; then rm -rf "$corpus" "$pairs_corpus"; fi
mkdir -p "$corpus" "$pairs_corpus"
# The seeds are copied, never written: libFuzzer adds new inputs to the first corpus directory.
cp -p "$root"/tests/fuzz/seeds/*.csv "$corpus"/
for f in "$root"/tests/malformed/*; do
  case "$(basename "$f")" in EXPECTED.tsv | README.md | make_corpus.py) continue ;; esac
  [ -f "$f" ] && [ "$(stat -c %s "$f")" -le 4096 ] && cp -p "$f" "$corpus/malformed-$(basename "$f")"
done
cp -p "$root"/tests/fuzz/pairs_seeds/*.seed "$pairs_corpus"/

rc=0
fuzz fuzz_colours_csv "$corpus" "$root/tests/fuzz/csv.dict" "$colour_seconds" "$artifacts/" "$build/fuzz.log" || rc=$?
pairs_rc=0
fuzz fuzz_pairs_file "$pairs_corpus" "$root/tests/fuzz/pairs.dict" "$pairs_seconds" "$artifacts/pairs-" \
  "$build/fuzz-pairs.log" || pairs_rc=$?
[ "$rc" -ne 0 ] || rc=$pairs_rc
exit "$rc"
