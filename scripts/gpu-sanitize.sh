#!/usr/bin/env bash
# Runs the GPU tests and a short training run under every compute-sanitizer tool (memcheck,
# racecheck, initcheck, synccheck) on a machine with a CUDA device. Exits non-zero on any finding.
# Usage: scripts/gpu-sanitize.sh [BUILD_DIR]     (default build; configure it with a GPU present)
# Writes one log per tool and target to $OUT (or BUILD_DIR/sanitize) and prints a summary table.
set -euo pipefail
build=${1:-build}
logs=${OUT:-$build/sanitize}
mkdir -p "$logs"
command -v compute-sanitizer >/dev/null || { echo "gpu-sanitize: compute-sanitizer not found" >&2; exit 2; }
nvidia-smi -L >/dev/null 2>&1 || { echo "gpu-sanitize: no CUDA device visible" >&2; exit 2; }

run_dir=$(mktemp -d)
trap 'rm -rf "$run_dir"' EXIT
declare -A targets=(
  [gpu_tests]="$build/tests/cudaembed_gpu_tests"
  [train]="$build/cudaembed train --device cuda --epochs 3 --pairs 20000 --no-plot --out $run_dir/run --force"
  [train_fused]="$build/cudaembed train --device cuda --kernel fused --epochs 2 --pairs 20000 --no-plot --out $run_dir/fused --force"
  [train_sorted]="$build/cudaembed train --device cuda --optimizer lazy-adam --head cosine --negatives 2 --dims 64 --epochs 2 --pairs 20000 --no-plot --out $run_dir/sorted --force"
  [evaluate]="$build/cudaembed evaluate $run_dir/run --device cuda"
)
status=0
printf '%-12s %-12s %s\n' tool target result
for tool in memcheck racecheck initcheck synccheck; do
  for name in gpu_tests train train_fused train_sorted evaluate; do
    log="$logs/$tool-$name.log"
    extra=()
    [ "$tool" = memcheck ] && extra=(--leak-check full)
    # shellcheck disable=SC2086
    if compute-sanitizer --tool "$tool" --error-exitcode 99 "${extra[@]}" ${targets[$name]} >"$log" 2>&1; then
      result="clean ($(grep -ho 'ERROR SUMMARY: [0-9]* error' "$log" | tail -1))"
    else
      result="FINDINGS or failure: see $log"
      status=1
    fi
    printf '%-12s %-12s %s\n' "$tool" "$name" "$result"
  done
done
exit $status
