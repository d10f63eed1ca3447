#!/usr/bin/env bash
# Builds the libFuzzer target for the colour CSV parser with ASan + UBSan and runs it for a
# bounded time over a writable copy of the seed corpus (tests/fuzz/seeds/ and the small files of
# tests/malformed/). Exits non-zero when libFuzzer finds a crash, a sanitizer report, a timeout or a
# broken invariant; the input is then saved under <build>/artifacts/.
#
# Usage: tests/fuzz/run_fuzz.sh [seconds]      (default 60)
# Environment: FUZZ_BUILD_DIR (default <repo>/build-fuzz), CXX_FUZZ (default clang++),
#              FUZZ_FRESH=1 to start from the seeds again instead of the corpus grown by earlier runs.
# Needs clang++ and libFuzzer: Debian's clang and libclang-rt-14-dev (scripts/install-deps.sh).
set -euo pipefail

seconds="${1:-60}"
if ! [[ "$seconds" =~ ^[0-9]+$ ]] || [ "$seconds" -lt 1 ]; then
  echo "usage: $0 [seconds]   (seconds: a positive integer, default 60)" >&2
  exit 2
fi

root="$(cd "$(dirname "${BASH_SOURCE[0]}")/../.." && pwd)"
build="${FUZZ_BUILD_DIR:-$root/build-fuzz}"
cxx="${CXX_FUZZ:-clang++}"
target="$build/fuzz_colours_csv"
corpus="$build/corpus"
artifacts="$build/artifacts"
log="$build/fuzz.log"

if ! command -v "$cxx" >/dev/null 2>&1; then
  echo "run_fuzz: $cxx not found (install Debian's clang: scripts/install-deps.sh)" >&2
  exit 2
fi

mkdir -p "$build" "$artifacts"
echo "run_fuzz: building $target with $cxx"
if ! "$cxx" -std=c++20 -g -O1 -fno-omit-frame-pointer \
  -fsanitize=fuzzer,address,undefined -fno-sanitize-recover=undefined \
  -I"$root/include" -I"$root/host" "$root/host/colours_csv.cpp" "$root/host/input_text.cpp" \
  "$root/tests/fuzz/fuzz_colours_csv.cpp" -lfmt \
  -o "$target" 2>"$build/build.log"; then
  cat "$build/build.log" >&2
  if grep -q "libclang_rt.fuzzer" "$build/build.log"; then
    echo "run_fuzz: libFuzzer is missing: apt-get install libclang-rt-14-dev (see scripts/install-deps.sh)" >&2
  fi
  exit 2
fi

if [ "${FUZZ_FRESH:-0}" = 1 ]; then rm -rf "$corpus"; fi
mkdir -p "$corpus"
# The seeds are copied, never written: libFuzzer adds new inputs to the first corpus directory.
cp -p "$root"/tests/fuzz/seeds/*.csv "$corpus"/
for f in "$root"/tests/malformed/*; do
  case "$(basename "$f")" in EXPECTED.tsv | README.md | make_corpus.py) continue ;; esac
  [ -f "$f" ] && [ "$(stat -c %s "$f")" -le 4096 ] && cp -p "$f" "$corpus/malformed-$(basename "$f")"
done

cmd=("$target" -max_total_time="$seconds" -max_len=4096 -timeout=5 -rss_limit_mb=2048
  -dict="$root/tests/fuzz/csv.dict" -artifact_prefix="$artifacts/" -print_final_stats=1 "$corpus")
echo "run_fuzz: ${cmd[*]}"
set +e
UBSAN_OPTIONS="print_stacktrace=1:halt_on_error=1" ASAN_OPTIONS="detect_leaks=1" "${cmd[@]}" 2>&1 | tee "$log"
rc=${PIPESTATUS[0]}
set -e

done_line="$(grep -E '^#[0-9]+[[:space:]]+DONE' "$log" | tail -n 1 || true)"
runs="$(sed -nE 's/^stat::number_of_executed_units: *([0-9]+).*/\1/p' "$log" | tail -n 1)"
speed="$(sed -nE 's/^stat::average_exec_per_sec: *([0-9]+).*/\1/p' "$log" | tail -n 1)"
cov="$(echo "$done_line" | sed -nE 's/.*cov: ([0-9]+).*/\1/p')"
ft="$(echo "$done_line" | sed -nE 's/.*ft: ([0-9]+).*/\1/p')"
corp="$(echo "$done_line" | sed -nE 's/.*corp: ([0-9]+\/[0-9a-zA-Z]+).*/\1/p')"
found="$(grep -oE "(crash|leak|timeout|oom|slow-unit)-[0-9a-f]+" "$log" | sort -u | tr '\n' ' ' || true)"
if [ "$rc" -eq 0 ]; then
  echo "run_fuzz: PASS: ${runs:-?} inputs in ${seconds} s (${speed:-?} exec/s), cov ${cov:-?}, ft ${ft:-?}, corpus ${corp:-?}; no crash"
else
  echo "run_fuzz: FAIL (libFuzzer exit $rc): ${runs:-?} inputs (${speed:-?} exec/s); finding: ${found:-see $log}; artifacts in $artifacts"
fi
exit "$rc"
