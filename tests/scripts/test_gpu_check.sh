#!/usr/bin/env bash
# CPU-side checks of scripts/gpu-check.sh and scripts/gpu-pack.sh (no GPU needed): options, the
# commands --dry-run lists, packing the real build, and a real run with stand-in binaries whose
# libraries are found only through the pack.
# Usage: tests/scripts/test_gpu_check.sh SOURCE_DIR BUILD_DIR CXX     (ctest runs it as gpu_check_script)
set -uo pipefail

src=${1:?source dir}
build=${2:?build dir}
cxx=${3:-c++}
check=$src/scripts/gpu-check.sh
tmp=$(mktemp -d)
trap 'rm -rf "$tmp"' EXIT
cd "$tmp" || exit 1  # relative defaults must not depend on where the test runs
failures=0
fail() {
  echo "FAIL: $*"
  failures=$((failures + 1))
}
pass() { echo "ok: $*"; }
# expect WHAT CMD...: passes when CMD succeeds.
expect() {
  local what=$1
  shift
  if "$@"; then pass "$what"; else fail "$what"; fi
}

# expect_in TEXT PATTERN WHAT / expect_not_in: fixed-string search in a captured output.
expect_in() { if grep -qF -- "$2" <<<"$1"; then pass "$3"; else fail "$3: '$2' not found"; fi; }
expect_not_in() { if grep -qF -- "$2" <<<"$1"; then fail "$3: '$2' found"; else pass "$3"; fi; }

# --- options ---------------------------------------------------------------------------------------
help=$(bash "$check" --help 2>&1)
rc=$?
expect "--help exits 0 (got $rc)" test "$rc" -eq 0
for step in env tests sanitize bench process peers ncu; do expect_in "$help" "$step " "--help names step $step"; done

msg=$(bash "$check" --no-such-option 2>&1)
rc=$?
expect "unknown option exits non-zero (got $rc)" test "$rc" -ne 0
expect_in "$msg" "--no-such-option" "unknown option is named"

msg=$(bash "$check" --steps env,nosuchstep --dry-run 2>&1)
rc=$?
expect "unknown step exits non-zero (got $rc)" test "$rc" -ne 0
expect_in "$msg" "nosuchstep" "unknown step is named"

msg=$(bash "$check" --budget-s soon --dry-run 2>&1)
rc=$?
expect "bad --budget-s exits non-zero (got $rc)" test "$rc" -ne 0
expect_in "$msg" "soon" "bad --budget-s value is named"

# --- dry run ---------------------------------------------------------------------------------------
dry=$(bash "$check" --dry-run --out "$tmp/dry-out" --source-link "$tmp/no-link" 2>&1)
rc=$?
expect "--dry-run exits 0 (got $rc)" test "$rc" -eq 0
for want in "nvidia-smi --query-gpu=" "compute-sanitizer --version" "cudaembed_gpu_tests --durations yes" \
  "compute-sanitizer --tool memcheck --error-exitcode 99 --leak-check full" \
  "compute-sanitizer --tool racecheck --error-exitcode 99" "compute-sanitizer --tool synccheck" \
  "compute-sanitizer --tool initcheck" "cudaembed_gpu_tests '[small]'" \
  "--optimizer lazy-adam --head cosine --negatives 2 --dims 64" " evaluate " \
  "--shapes default --repeats 3" "--shapes sparse --repeats 3" "train --device cpu" \
  "bench/peers/run_all.sh" "--peers 'torch_eager torch_graphs jax'" "torch_sparse_peer.py" \
  "ncu --clock-control none --set full -k regex:persistent_epoch -c 1" "--page details" \
  "--page source --csv --print-source sass" "--kernel persistent --repeats 1 --epochs 20 --phase-profile" \
  "--kernel deterministic --repeats 1 --epochs 20 --phase-profile" \
  "--kernel persistent --repeats 3 --epochs 100 --epochs-per-launch 1" \
  "--kernel persistent --repeats 3 --epochs 100 --epochs-per-launch 32"; do
  expect_in "$dry" "$want" "dry run lists $want"
done
for kernel in persistent graph fused baseline deterministic sorted; do
  expect_in "$dry" "compute-sanitizer --tool racecheck --error-exitcode 99 $src/.gpu-pack/bin/cudaembed train --device cuda --epochs 2 --pairs 20000 --no-plot --data data/colours.csv --kernel $kernel " \
    "dry run sanitizes kernel $kernel"
done
count=$(grep -c '^  timeout ' <<<"$dry")
expect "dry run lists every command ($count)" test "$count" -ge 50
expect "dry run makes no output folder" test ! -e "$tmp/dry-out"
expect "dry run makes no source link" test ! -e "$tmp/no-link"
# shellcheck disable=SC2016  # the literal folder name an earlier dry run left behind
expect "dry run makes no '\$WORK' folder where it runs" test ! -e "$src/\$WORK"

sets=$(bash "$check" --steps bench --bench-sets default --dry-run 2>&1)
expect_in "$sets" "--shapes default" "--bench-sets default lists the default shapes"
expect_not_in "$sets" "--shapes sparse" "--bench-sets default leaves out the sparse shapes"

only=$(bash "$check" --steps bench --dry-run 2>&1)
expect_in "$only" "--shapes sparse" "--steps bench lists bench"
for other in compute-sanitizer "ncu " nvidia-smi run_all.sh "--durations" "--device cpu" "== env"; do
  expect_not_in "$only" "$other" "--steps bench lists no '$other'"
done

# --- gpu-pack.sh on the real build -----------------------------------------------------------------
pack=$tmp/pack
if out=$(bash "$src/scripts/gpu-pack.sh" "$build" "$pack" 2>&1); then
  pass "gpu-pack.sh exits 0"
else
  fail "gpu-pack.sh failed: $out"
fi
for b in cudaembed cudaembed_gpu_tests; do
  expect "pack has bin/$b" test -x "$pack/bin/$b"
done
libs=$(ls "$pack/lib" 2>/dev/null)
expect_in "$libs" "libspdlog.so" "pack has libspdlog"
for base in libc.so libstdc++.so libgcc_s.so libm.so libcudart.so libcublas.so libcurand.so; do
  expect_not_in "$libs" "$base" "pack leaves out $base"
done
kib=$(du -sk "$pack" | awk '{ print $1 }')
expect "pack is $kib KiB, under 60 MiB" test "$kib" -lt $((60 * 1024))
expect_in "$out" "outside the repo" "gpu-pack.sh says a pack outside the repo cannot be carried"

# --- a real run with stand-ins ---------------------------------------------------------------------
# libfake_a needs libfake_b; both exist only in the pack, so the script must go round twice.
fake=$tmp/fake
mkdir -p "$fake/build/tests" "$fake/pack/lib" "$fake/objs"
cat >"$fake/objs/b.cpp" <<'EOF'
extern "C" int fake_b() { return 0; }
EOF
cat >"$fake/objs/a.cpp" <<'EOF'
extern "C" int fake_b();
extern "C" int fake_a() { return fake_b(); }
EOF
cat >"$fake/objs/main.cpp" <<'EOF'
#include <cstdio>
#include <cstring>
extern "C" int fake_a();
int main(int argc, char** argv) {  // prints what the real binaries print where the script reads it
  if (argc > 1 && std::strcmp(argv[1], "--durations") == 0) std::puts("All tests passed (1 assertion in 1 test case)");
  return fake_a();
}
EOF
if "$cxx" -shared -fPIC -o "$fake/pack/lib/libfake_b.so" "$fake/objs/b.cpp" &&
  "$cxx" -shared -fPIC -o "$fake/pack/lib/libfake_a.so" "$fake/objs/a.cpp" -L"$fake/pack/lib" -lfake_b &&
  "$cxx" -o "$fake/build/cudaembed" "$fake/objs/main.cpp" -L"$fake/pack/lib" -lfake_a -lfake_b; then
  cp "$fake/build/cudaembed" "$fake/build/tests/cudaembed_gpu_tests"
  run_out=$tmp/run-out
  log=$(TMPDIR=$tmp bash "$check" --build "$fake/build" --pack "$fake/pack" --steps tests,process \
    --out "$run_out" --source-link "$tmp/src/main" 2>&1)
  rc=$?
  expect "run with stand-ins exits 0 (got $rc)" test "$rc" -eq 0
  [ "$rc" -eq 0 ] || echo "$log"
  summary=$(cat "$run_out/summary.txt" 2>/dev/null)
  expect_in "$summary" "libraries from the pack: 2; still missing: none" "both pack libraries found"
  expect_in "$summary" "All tests passed" "tests step reports Catch2's last line"
  expect_in "$summary" "cuda median" "process step reports a median"
  link=$(readlink "$tmp/src/main")
  expect "source path linked to the repo ($link)" test "$link" = "$src"
  files=$(find "$run_out" -type f | wc -l)
  expect "$files files in the output folder, at most 8" test "$files" -le 8
  bad=$(find "$run_out" -mindepth 1 | sed "s|^$run_out/||" | grep -v '^[A-Za-z0-9._/-]*$')
  expect "output names are plain: '$bad'" test -z "$bad"
  expect_in "$(tar -tzf "$run_out/gpu-check-logs.tar.gz")" "gpu-check-logs/process.log" "tarball holds the step logs"
  expect "gpu-tests.log at top level" test -f "$run_out/gpu-tests.log"

  log=$(TMPDIR=$tmp bash "$check" --build "$fake/build" --pack "$fake/pack" --steps tests \
    --out "$tmp/run-out2" --source-link "$tmp/src/main" --budget-s 5 2>&1)
  rc=$?
  expect "a skipped step fails the run (got $rc)" test "$rc" -ne 0
  expect_in "$(cat "$tmp/run-out2/summary.txt" 2>/dev/null)" "left of its cap or the budget (5 s)" "budget guard skips steps"
  left=$(find "$tmp" -maxdepth 1 -name 'gpu-check.*')
  expect "scratch folders removed: '$left'" test -z "$left"
else
  fail "could not build the stand-in binaries with $cxx"
fi

# --- shellcheck, where installed -------------------------------------------------------------------
if command -v shellcheck >/dev/null; then
  if sc=$(shellcheck "$check" "$src/scripts/gpu-pack.sh" "$0" 2>&1); then pass "shellcheck"; else fail "shellcheck: $sc"; fi
else
  echo "note: shellcheck not installed, not run"
fi

echo "$failures failure(s)"
[ "$failures" -eq 0 ]
