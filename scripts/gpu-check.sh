#!/usr/bin/env bash
# One call on a lent GPU machine (H100/H200, ~15 minutes of device time): the environment, the GPU
# tests, compute-sanitizer, the benchmarks, whole-process timings, the framework peers and one Nsight
# Compute profile. Each step runs under its own timeout and goes on past failures; everything fits
# in a few files under the output folder.
#
# Usage, from the repo root on the device machine, with binaries packed here by scripts/gpu-pack.sh:
#   bash scripts/gpu-check.sh [--steps env,tests,...] [--budget-s 480] [--cap STEP=SECONDS]...
#                             [--pack .gpu-pack | --build DIR] [--out DIR] [--python python3]
#                             [--source-link /work/main] [--bench-sets default,sparse] [--dry-run] [-h|--help]
#
# Steps, in the order --steps gives them (default: all, the short ones first, in this order):
#   env       nvidia-smi, nvcc/ncu/compute-sanitizer versions, kernel, date
#   tests     cudaembed_gpu_tests --durations yes
#   process   wall time of the default train: CUDA 3 times (median), CPU once
#   ncu       ncu --set full of one persistent-kernel launch, plus its details page as text and its
#             per-instruction SASS page as CSV (in the tarball)
#   sanitize  memcheck (leak check), racecheck, synccheck, initcheck over the [small] GPU tests, a
#             2-epoch train per kernel variant, a lazy-adam/cosine/negatives sorted train, evaluate
#   phases    bench --phase-profile of persistent and deterministic: cycles per step by phase; and
#             persistent with 1 and 32 epochs a launch
#   bench     cudaembed bench --shapes default and --shapes sparse (3 repeats each; --bench-sets)
#   peers     bench/peers/run_all.sh with torch_eager torch_graphs jax; the SparseAdam peer at 1M rows
#
# --budget-s N    skip the steps that would start after N seconds; a step's timeout is its cap
#                 (listed last, or --cap STEP=SECONDS) or the budget left, whichever is less
# --pack DIR      binaries in DIR/bin, libraries the machine lacks in DIR/lib (default .gpu-pack)
# --build DIR     binaries in DIR/cudaembed and DIR/tests/cudaembed_gpu_tests instead (built there)
# --out DIR       output folder (default $OUT if set, else gpu-check-out)
# --source-link P the source path baked into the binaries (test data, the default --data); made a
#                 link to the repo root when nothing is there (default /work/main)
# --bench-sets L  the bench step's --shapes sets, comma-separated (default: default,sparse)
# --dry-run       print the commands, run nothing (needs no GPU)
#
# The output folder gets at most 8 files: summary.txt, gpu-check-logs.tar.gz (every log, bench json,
# the ncu report), gpu-tests.log, bench-default.md, bench-sparse.md, phases.md, ncu-persistent.txt,
# peers.jsonl.
# They are rewritten after every step, so a run stopped from outside still leaves the finished steps.
set -uo pipefail
export LC_ALL=C

usage() {
  sed -n '2,/^set -uo/p' "$0" | sed '$d; s/^# \{0,1\}//'
  local s caps=""
  for s in "${all_steps[@]}"; do caps+=" $s ${cap[$s]},"; done
  echo "Step caps (s):${caps%,}"
}
die() {
  echo "gpu-check: $*" >&2
  exit 2
}

all_steps=(env tests phases process ncu sanitize bench peers)
# Seconds per step, sized for an H200 (tests 12 s, bench default ~60 s for 3 repeats, a 500-epoch
# default train 1.4 s). Not every step can use its whole cap within the default budget: the budget
# guard cuts the last ones short.
declare -A cap=([env]=20 [tests]=60 [phases]=55 [process]=45 [ncu]=75 [sanitize]=110 [bench]=210 [peers]=130)
san_run_cap=40      # one compute-sanitizer run
bench_default_cap=80
bench_sparse_cap=200  # builds 1M- and 10M-row tables on the host, and copies them back every epoch as train does
peers_run_all_cap=90
min_step_s=10       # a step with less than this left of the budget is skipped

steps_arg=$(IFS=,; echo "${all_steps[*]}")
budget=480
pack=""
build=""
out=${OUT:-gpu-check-out}
py=python3
source_link=/work/main
bench_sets=default,sparse
dry=false
while [ "$#" -gt 0 ]; do
  case "$1" in
    --steps) [ "$#" -ge 2 ] || die "--steps needs a list"; steps_arg=$2; shift 2 ;;
    --budget-s) [ "$#" -ge 2 ] || die "--budget-s needs seconds"; budget=$2; shift 2 ;;
    --cap)
      if [ "$#" -lt 2 ] || ! [[ $2 =~ ^([a-z]+)=([0-9]+)$ ]]; then die "--cap needs STEP=SECONDS"; fi
      [ -n "${cap[${BASH_REMATCH[1]}]+x}" ] || die "--cap: unknown step '${BASH_REMATCH[1]}'"
      cap[${BASH_REMATCH[1]}]=${BASH_REMATCH[2]}
      shift 2 ;;
    --pack) [ "$#" -ge 2 ] || die "--pack needs a folder"; pack=$2; shift 2 ;;
    --build) [ "$#" -ge 2 ] || die "--build needs a folder"; build=$2; shift 2 ;;
    --out) [ "$#" -ge 2 ] || die "--out needs a folder"; out=$2; shift 2 ;;
    --python) [ "$#" -ge 2 ] || die "--python needs a command"; py=$2; shift 2 ;;
    --source-link) [ "$#" -ge 2 ] || die "--source-link needs a path"; source_link=$2; shift 2 ;;
    --bench-sets) [ "$#" -ge 2 ] || die "--bench-sets needs a list"; bench_sets=$2; shift 2 ;;
    --dry-run) dry=true; shift ;;
    -h | --help) usage; exit 0 ;;
    *) die "unknown option '$1' (see --help)" ;;
  esac
done
[[ $budget =~ ^[1-9][0-9]*$ ]] || die "--budget-s: '$budget' is not a positive whole number of seconds"
IFS=, read -ra steps <<<"$steps_arg"
[ "${#steps[@]}" -gt 0 ] || die "--steps: empty list"
for s in "${steps[@]}"; do
  [ -n "${cap[$s]+x}" ] || die "unknown step '$s' (steps: ${all_steps[*]})"
done

abspath() { case "$1" in /*) echo "$1" ;; *) echo "$PWD/$1" ;; esac; }
root=$(cd "$(dirname "$0")/.." && pwd)
pack=$(abspath "${pack:-$root/.gpu-pack}")
out=$(abspath "$out")
if [ -n "$build" ]; then
  build=$(abspath "$build")
  bin=$build/cudaembed
  gpu_tests=$build/tests/cudaembed_gpu_tests
else
  bin=$pack/bin/cudaembed
  gpu_tests=$pack/bin/cudaembed_gpu_tests
fi
cd "$root" || die "cannot enter $root"
data=data/colours.csv

# --- time ------------------------------------------------------------------------------------------
now_us() { local t=$EPOCHREALTIME; echo "${t/./}"; }
fmt_s() { printf '%d.%0*d' $(($1 / 1000000)) "${2:-1}" $((($1 % 1000000) / (100000 / (10 ** (${2:-1} - 1))))); }
t0=$(now_us)
elapsed_s() { echo $((($(now_us) - t0) / 1000000)); }
step_deadline=0
step_left() { echo $(((step_deadline - $(now_us)) / 1000000)); }

# --- running one command ---------------------------------------------------------------------------
# What a command looks like, for logs and --dry-run.
show() {
  local a s=""
  for a in "$@"; do
    if [[ $a =~ ^[A-Za-z0-9_./:=,@%+\$-]+$ ]]; then s+="$a "; else s+="'${a//\'/\'\\\'\'}' "; fi
  done
  printf '%s' "${s% }"
}

# run LOG CAP CMD...: runs CMD from the repo root under `timeout`, for CAP seconds or what is left of
# the step, whichever is less; appends its output to LOG. Sets rc and secs (and secs_us).
rc=0
secs=0
secs_us=0
run() {
  local log=$1 limit=$2 left start
  shift 2
  left=$(step_left)
  [ "$limit" -gt "$left" ] && limit=$left
  if $dry; then
    echo "  timeout $limit $(show "$@")    > ${log#"$logs"/}"
    rc=0 secs=0 secs_us=0
    return
  fi
  mkdir -p "$(dirname "$log")"
  if [ "$limit" -lt 1 ]; then
    echo "# not run, no time left in the step: $(show "$@")" >>"$log"
    rc=124 secs=0 secs_us=0
    return
  fi
  printf '$ %s\n# timeout %s s, started %s\n' "$(show "$@")" "$limit" "$(date -u +%FT%TZ)" >>"$log"
  start=$(now_us)
  timeout -k 5 "$limit" "$@" >>"$log" 2>&1
  rc=$?
  secs_us=$(($(now_us) - start))
  secs=$(fmt_s "$secs_us")
  echo "# exit $rc after $secs s" >>"$log"
  printf '  rc %-3s %6s s  %s\n' "$rc" "$secs" "$(show "$@" | cut -c1-150)"
}

step_rc=0
key=""
note_rc() { [ "$step_rc" -eq 0 ] && step_rc=$1; }

# --- steps -----------------------------------------------------------------------------------------
step_env() {
  local log=$logs/env.log
  run "$log" 15 nvidia-smi --query-gpu=name,driver_version,compute_cap,memory.total,memory.used,clocks.sm,clocks.mem,clocks.max.sm,clocks.max.mem,power.limit,temperature.gpu --format=csv
  note_rc "$rc"
  run "$log" 15 nvidia-smi
  run "$log" 10 nvcc --version
  run "$log" 10 ncu --version
  run "$log" 10 compute-sanitizer --version
  run "$log" 5 date -u
  run "$log" 5 uname -a
  run "$log" 5 nproc
  $dry && return
  cat "$logs/setup.log" >>"$log"
  key=$(awk '/^name, driver_version/ { getline; print; exit }' "$log")
  [ -n "$key" ] || key="no nvidia-smi answer (see env.log)"
}

step_tests() {
  local log=$logs/gpu-tests.log
  run "$log" 600 "$gpu_tests" --durations yes
  note_rc "$rc"
  $dry && return
  if [ "$rc" -eq 77 ]; then
    key="skipped: no CUDA device visible"
  else
    key=$(grep -E '^(All tests passed|test cases:)' "$log" | tail -n 1)
    [ -n "$key" ] || key="no Catch2 summary line"
    [ "$rc" -eq 124 ] && key="timeout; $key"
  fi
}

# san_target NAME TOOL: sets target=(the command compute-sanitizer runs). Each tool gets its own run
# folders: the tools run at the same time.
san_targets=(gpu_tests_small train_persistent train_graph train_fused train_baseline train_deterministic
  train_sorted train_sorted_lazy_cosine evaluate)
san_target() {
  local train=("$bin" train --device cuda --epochs 2 --pairs 20000 --no-plot --data "$data") runs=$work/runs/$2
  case "$1" in
    gpu_tests_small) target=("$gpu_tests" "[small]") ;;
    train_sorted_lazy_cosine)
      target=("${train[@]}" --kernel sorted --optimizer lazy-adam --head cosine --negatives 2 --dims 64
        --out "$runs/san-sorted-lazy" --force) ;;
    train_*) target=("${train[@]}" --kernel "${1#train_}" --out "$runs/san-${1#train_}" --force) ;;
    evaluate) target=("$bin" evaluate "$runs/san-evaluate" --device cuda) ;;
  esac
}

# san_tool TOOL: every target under one compute-sanitizer tool, one after another; writes a table
# row per target to $logs/sanitize/TOOL.rows as "tool target rc seconds result".
san_tool() {
  local tool=$1 name extra=() slog summary result rows=$logs/sanitize/$1.rows
  [ "$tool" = memcheck ] && extra=(--leak-check full)
  $dry || { mkdir -p "$work/runs/$tool" && cp -r "$work/runs/san-evaluate" "$work/runs/$tool/"; }
  for name in "${san_targets[@]}"; do
    san_target "$name" "$tool"
    slog=$logs/sanitize/$tool-$name.log
    if ! $dry && [ "$(step_left)" -lt 3 ]; then
      printf '%-10s %-26s %-4s %7s  %s\n' "$tool" "$name" - - "not run: step time used up" >>"$rows"
      continue
    fi
    run "$slog" "$san_run_cap" compute-sanitizer --tool "$tool" --error-exitcode 99 ${extra[@]+"${extra[@]}"} \
      "${target[@]}"
    $dry && continue
    summary=$(grep -hoE '(ERROR|RACECHECK|LEAK) SUMMARY:.*' "$slog" | paste -sd';' -)
    case "$rc" in
      0) result="clean: $summary" ;;
      99) result="FINDINGS: $summary" ;;
      124 | 137) result="timeout after $secs s" ;;
      *) result="failed: ${summary:-no summary}" ;;
    esac
    printf '%-10s %-26s %-4s %7s  %s\n' "$tool" "$name" "$rc" "$secs" "$result" >>"$rows"
  done
}

# The four tools run side by side (one process each, sharing the GPU): each is slow, and none is
# timed. Within a tool the targets run in turn.
step_sanitize() {
  local log=$logs/sanitize.log tool table rows
  if ! $dry && ! command -v compute-sanitizer >/dev/null; then
    key="compute-sanitizer not found"
    step_rc=127
    return
  fi
  # The run directory `evaluate` reads, trained without a sanitizer.
  run "$log" 30 "$bin" train --device cuda --epochs 2 --pairs 20000 --no-plot --data "$data" \
    --out "$work/runs/san-evaluate" --force
  $dry || mkdir -p "$logs/sanitize"
  for tool in memcheck racecheck synccheck initcheck; do
    if $dry; then san_tool "$tool"; else san_tool "$tool" >>"$log" & fi
  done
  $dry && return
  wait
  rows=$(cat "$logs"/sanitize/{memcheck,racecheck,synccheck,initcheck}.rows 2>/dev/null)
  table=$(printf '%-10s %-26s %-4s %7s  %s\n%s' tool target rc seconds result "$rows")
  printf '%s\n' "$table" >"$logs/sanitize-table.txt"
  printf '\n%s\n' "$table" >>"$log"
  local clean findings timeouts skipped failed
  clean=$(grep -c '  clean:' <<<"$rows")
  findings=$(grep -c '  FINDINGS:' <<<"$rows")
  timeouts=$(grep -c '  timeout after' <<<"$rows")
  skipped=$(grep -c '  not run:' <<<"$rows")
  failed=$(grep -c '  failed:' <<<"$rows")
  [ $((findings + failed + timeouts)) -gt 0 ] && step_rc=1
  key="$((clean + findings + failed + timeouts)) runs: $clean clean, $findings with findings, $failed failed, $timeouts timed out; $skipped not run"
}

# bench_key FILE: the fastest row of the first shape in a bench.md table.
bench_key() {
  awk -F'|' '/^\| [a-z0-9]/ && $2 !~ / shape / {
      gsub(/ /, "", $2); gsub(/ /, "", $3); gsub(/ /, "", $8)
      if (first == "") first = $2
      if ($2 == first && (best == "" || $8 + 0 < best + 0)) { best = $8; variant = $3 }
      n++
    }
    END { if (n) printf "%d rows, %s fastest %s %s ms/epoch", n, first, variant, best; else printf "no results" }' "$1"
}

step_bench() {
  local log=$logs/bench.log set repeats limit keys="" sets
  IFS=, read -ra sets <<<"$bench_sets"
  for set in "${sets[@]}"; do
    if [ "$set" = default ]; then repeats=3 limit=$bench_default_cap; else repeats=3 limit=$bench_sparse_cap; fi
    run "$log" "$limit" "$bin" bench --device cuda --data "$data" --shapes "$set" --repeats "$repeats" \
      --out "$work/bench-$set" --force
    note_rc "$rc"
    $dry && continue
    if [ -f "$work/bench-$set/bench.md" ]; then
      cp "$work/bench-$set/bench.md" "$logs/bench-$set.md"
      cp "$work/bench-$set/bench.json" "$logs/bench-$set.json" 2>/dev/null
      keys+="$set: $(bench_key "$logs/bench-$set.md"); "
    else
      keys+="$set: rc $rc, no bench.md; "
    fi
  done
  key=${keys%; }
}

# The persistent kernels' clock64() stamps per phase (bench --phase-profile), one short run each.
step_phases() {
  local log=$logs/phases.log kernel
  $dry || : >"$logs/phases.md"
  for kernel in persistent deterministic; do
    run "$log" 20 "$bin" bench --device cuda --data "$data" --shapes default --kernel "$kernel" --repeats 1 \
      --epochs 20 --phase-profile --out "$work/phases-$kernel" --force
    note_rc "$rc"
    $dry && continue
    [ -f "$work/phases-$kernel/bench.md" ] && cat "$work/phases-$kernel/bench.md" >>"$logs/phases.md"
  done
  # Many epochs a launch (the default) against one, for the default run's persistent kernel.
  for per_launch in 1 32; do
    run "$log" 10 "$bin" bench --device cuda --data "$data" --shapes default --kernel persistent --repeats 3 \
      --epochs 100 --epochs-per-launch "$per_launch" --out "$work/launch-$per_launch" --force
    note_rc "$rc"
    $dry && continue
    [ -f "$work/launch-$per_launch/bench.md" ] &&
      { echo "--epochs-per-launch $per_launch"; cat "$work/launch-$per_launch/bench.md"; } >>"$logs/phases.md"
  done
  $dry && return
  key=$(grep -m1 -A1 'whole step' "$logs/phases.md" | head -1 | sed 's/^ *//')
}

median() { printf '%s\n' "$@" | sort -n | awk '{ v[NR] = $1 } END { if (NR) print v[int((NR + 1) / 2)] }'; }

step_process() {
  local log=$logs/process.log i walls=() shown=() cpu m
  for i in 1 2 3; do
    run "$log" 30 "$bin" train --device cuda --data "$data" --out "$work/runs/process-cuda-$i" --force
    note_rc "$rc"
    if [ "$rc" -eq 0 ]; then walls+=("$(fmt_s "$secs_us" 3)") shown+=("${walls[-1]}"); else shown+=("rc$rc"); fi
  done
  run "$log" 30 "$bin" train --device cpu --data "$data" --out "$work/runs/process-cpu" --force
  note_rc "$rc"
  if [ "$rc" -eq 0 ]; then cpu="$(fmt_s "$secs_us" 3) s"; else cpu="rc $rc"; fi
  $dry && return
  m=$(median ${walls[@]+"${walls[@]}"})
  key="cuda median ${m:-none}${m:+ s} (${shown[*]}); cpu $cpu"
  echo "# wall seconds: cuda ${shown[*]}; cpu $cpu" >>"$log"
}

step_peers() {
  local log=$logs/peers.log pairs=$work/powerlaw-1m.cepairs
  # The default run cut to 100 epochs (steps/s compare; the lease is short); numpy is left out (minutes on this model), one timing repeat per mode.
  run "$log" "$peers_run_all_cap" bash bench/peers/run_all.sh "$bin" "$work/peers" --epochs 100 \
    --engine-repeats 1 --python "$py" --peers "torch_eager torch_graphs jax" -- --data "$data"
  note_rc "$rc"
  # The SparseAdam peer on the sparse bench's 1M-row shape (D 64, 4M pairs, batch 65536).
  run "$log" 30 "$bin" synth --kind powerlaw --rows 1000000 --pairs 4000000 --out "$pairs"
  note_rc "$rc"
  run "$log" 90 "$py" bench/peers/torch_sparse_peer.py --pairs "$pairs" --dims 64 --batch 65536 --steps 200 \
    --warmup-steps 20 --repeats 5 --json "$logs/torch-sparse-1m.json" --quiet
  note_rc "$rc"
  $dry && return
  [ -f "$work/peers/peers.jsonl" ] && cp "$work/peers/peers.jsonl" "$logs/peers.jsonl"
  [ -d "$work/peers/logs" ] && cp -r "$work/peers/logs" "$logs/peers-logs"
  key=$("$py" - "$logs/peers.jsonl" "$logs/torch-sparse-1m.json" <<'EOF' 2>/dev/null
import json, os, sys
best, notes = {}, []
if os.path.exists(sys.argv[1]):
    for line in open(sys.argv[1]):
        try:
            r = json.loads(line)
        except ValueError:
            continue
        name = r.get("peer", "?") + ("/" + r["adam_v"] if r.get("peer") == "cudaembed" else "")
        if "train_seconds" in r:
            best[name] = min(best.get(name, 1e30), r["train_seconds"])
        else:
            notes.append(f'{name}: {r.get("skipped") or r.get("error")}')
parts = [f"{k} {v:.2f}" for k, v in best.items()]
if os.path.exists(sys.argv[2]):
    s = json.load(open(sys.argv[2]))
    rate = s.get("samples_per_second", 0)
    rate = rate.get("median", 0) if isinstance(rate, dict) else rate  # a dict of median/min/max
    parts.append(f"sparse-1m {rate:.3g} pairs/s")
else:
    parts.append("sparse-1m: no result")
print("train s: " + ", ".join(parts) + ("; " + "; ".join(notes) if notes else ""))
EOF
  )
  [ -n "$key" ] || key="no peer results (see peers.log)"
}

step_ncu() {
  local log=$logs/ncu.log name rep=$logs/ncu-persistent
  if ! $dry && ! command -v ncu >/dev/null; then
    key="ncu not found"
    step_rc=127
    return
  fi
  # The persistent kernel's __global__ name, read from its source so a rename cannot go stale.
  name=$(sed -n 's/.*__global__ void.* \([A-Za-z_][A-Za-z0-9_]*\)(.*/\1/p' cuda/persistent_kernel.cu | head -n 1)
  run "$log" 60 ncu --clock-control none --set full -k "regex:${name:-persistent_epoch}" -c 1 -f -o "$rep" \
    "$bin" train --device cuda --kernel persistent --epochs 2 --no-plot --data "$data" --out "$work/runs/ncu" --force
  note_rc "$rc"
  run "$logs/ncu-persistent.txt" 30 ncu --import "$rep.ncu-rep" --page details
  note_rc "$rc"
  # Per SASS instruction: executed instructions and warp-stall samples, to find the hot ones.
  run "$logs/ncu-persistent-sass.csv" 30 ncu --import "$rep.ncu-rep" --page source --csv --print-source sass
  note_rc "$rc"
  $dry && return
  key=$(awk '$1 == "Memory" && $2 == "Throughput" && !m { m = $NF }
      /Compute \(SM\) Throughput/ && !c { c = $NF }
      $1 == "Duration" && !d { d = $3 " " $2 }
      END { if (m != "" || c != "") printf "SOL memory %s%%, compute %s%%, duration %s", m, c, d }' \
    "$logs/ncu-persistent.txt" 2>/dev/null)
  [ -n "$key" ] || key="no profile (see ncu.log)"
}

# --- output ----------------------------------------------------------------------------------------
sum_step=() sum_rc=() sum_secs=() sum_key=()
summary() {
  printf 'gpu-check %s UTC, budget %s s, %s s elapsed; %s\n\n' "$(date -u '+%F %T')" "$budget" "$(elapsed_s)" "$lib_note"
  printf '%-9s %-5s %8s  %s\n' step rc seconds key
  local i
  for i in "${!sum_step[@]}"; do
    printf '%-9s %-5s %8s  %s\n' "${sum_step[$i]}" "${sum_rc[$i]}" "${sum_secs[$i]}" "${sum_key[$i]}"
  done
  if [ -f "$logs/sanitize-table.txt" ]; then
    printf '\ncompute-sanitizer:\n'
    cat "$logs/sanitize-table.txt"
  fi
}

# Rewrites the output folder: the summary, one tarball of every log, and copies of the files read most.
publish() {
  local tarball=$work/gpu-check-logs.tar.gz f max=$((15 * 1024 * 1024))
  summary >"$logs/summary.txt"
  mkdir -p "$out"
  cp "$logs/summary.txt" "$out/summary.txt"
  tar -czf "$tarball" -C "$work" gpu-check-logs
  if [ "$(stat -c %s "$tarball")" -gt "$max" ]; then
    echo "(the Nsight Compute report was left out of the tarball: it was over 15 MiB with it)" >>"$out/summary.txt"
    tar -czf "$tarball" -C "$work" --exclude='*.ncu-rep' gpu-check-logs
  fi
  mv -f "$tarball" "$out/gpu-check-logs.tar.gz"
  for f in bench-default.md bench-sparse.md phases.md ncu-persistent.txt peers.jsonl; do
    [ -f "$logs/$f" ] && cp "$logs/$f" "$out/$f"
  done
  if [ -f "$logs/gpu-tests.log" ]; then
    if [ "$(stat -c %s "$logs/gpu-tests.log")" -gt $((4 * 1024 * 1024)) ]; then
      { echo "(trimmed to its last 20000 lines; the whole log is in gpu-check-logs.tar.gz)"
        tail -n 20000 "$logs/gpu-tests.log"; } >"$out/gpu-tests.log"
    else
      cp "$logs/gpu-tests.log" "$out/gpu-tests.log"
    fi
  fi
}

# --- setup -----------------------------------------------------------------------------------------
[ -d /usr/local/cuda/bin ] && PATH=$PATH:/usr/local/cuda/bin
if $dry; then
  # shellcheck disable=SC2016  # shown as is: the scratch folder is made only when the steps run
  work='$WORK'
  logs=$work/gpu-check-logs
  echo "gpu-check: dry run, nothing is executed. Repo root $root; output folder $out; budget $budget s"
  [ -e "$source_link" ] || echo "  would link $source_link -> $root (the binaries read data through that path)"
  echo "  would link the libraries ldd finds missing for $bin and $gpu_tests from $pack/lib into $work/lib-fill (LD_LIBRARY_PATH)"
  lib_note=""
else
  work=$(mktemp -d "${TMPDIR:-/tmp}/gpu-check.XXXXXX") || die "cannot make a scratch folder"
  trap 'rm -rf "$work"' EXIT
  trap 'publish; exit 130' INT TERM
  logs=$work/gpu-check-logs
  mkdir -p "$logs"
  setup_log=$logs/setup.log
  for b in "$bin" "$gpu_tests"; do
    [ -f "$b" ] || die "$b is missing: run scripts/gpu-pack.sh where you built and carry .gpu-pack, or pass --build DIR"
    [ -x "$b" ] || chmod u+x "$b" || die "$b is not executable"
  done
  if [ "$root" != "$source_link" ] && [ ! -e "$source_link" ]; then
    mkdir -p "$(dirname "$source_link")" && ln -s "$root" "$source_link" &&
      echo "linked $source_link -> $root" >>"$setup_log"
  fi
  # Libraries: only those the machine lacks come from the pack. ldd cannot see the dependencies of a
  # library it did not find, so go round until nothing more is found.
  fill=$work/lib-fill
  mkdir -p "$fill"
  export LD_LIBRARY_PATH=$fill${LD_LIBRARY_PATH:+:$LD_LIBRARY_PATH}
  linked=()
  for _ in 1 2 3 4 5; do
    missing=$(ldd "$bin" "$gpu_tests" 2>/dev/null | awk '/=> not found/ { print $1 }' | sort -u)
    found=false
    for lib in $missing; do
      if [ -e "$pack/lib/$lib" ] && [ ! -e "$fill/$lib" ]; then
        ln -s "$pack/lib/$lib" "$fill/$lib"
        linked+=("$lib")
        found=true
      fi
    done
    $found || break
  done
  missing=$(ldd "$bin" "$gpu_tests" 2>/dev/null | awk '/=> not found/ { print $1 }' | sort -u | paste -sd' ' -)
  lib_note="libraries from the pack: ${#linked[@]}; still missing: ${missing:-none}"
  { echo "$lib_note"; echo "linked: ${linked[*]}"; echo "LD_LIBRARY_PATH=$LD_LIBRARY_PATH"; } >>"$setup_log"
  echo "gpu-check: $lib_note"
fi

# --- the steps -------------------------------------------------------------------------------------
for step in "${steps[@]}"; do
  left=$((budget - $(elapsed_s)))
  limit=${cap[$step]}
  [ "$limit" -gt "$left" ] && limit=$left
  if [ "$limit" -lt "$min_step_s" ]; then
    echo "== $step: skipped, $limit s left of its cap or the budget ($budget s)"
    sum_step+=("$step") sum_rc+=(-) sum_secs+=(0) sum_key+=("skipped: $limit s left of its cap or the budget ($budget s)")
    continue
  fi
  echo "== $step (timeout $limit s, at $(elapsed_s) s)"
  step_start=$(now_us)
  step_deadline=$((step_start + limit * 1000000))
  $dry && step_deadline=$((step_deadline + 999999))  # so that the commands listed show their own caps
  step_rc=0
  key=""
  case "$step" in
    env) step_env ;;
    tests) step_tests ;;
    sanitize) step_sanitize ;;
    bench) step_bench ;;
    phases) step_phases ;;
    process) step_process ;;
    peers) step_peers ;;
    ncu) step_ncu ;;
  esac
  $dry && continue
  sum_step+=("$step") sum_rc+=("$step_rc") sum_secs+=("$(fmt_s $(($(now_us) - step_start)))") sum_key+=("$key")
  echo "   -> rc $step_rc: $key"
  publish
done

$dry && exit 0
publish
echo
cat "$out/summary.txt"
echo
echo "gpu-check: $(find "$out" -maxdepth 1 -type f | wc -l) files in $out"
for r in "${sum_rc[@]}"; do [ "$r" = 0 ] || exit 1; done
exit 0
