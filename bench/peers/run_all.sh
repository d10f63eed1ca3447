#!/usr/bin/env bash
# Runs cudaembed and its benchmark peers on the same data and appends one JSON line per run to
# OUT/peers.jsonl. See bench/peers/README.md.
#
#   bench/peers/run_all.sh CUDAEMBED_BIN OUT_DIR [--epochs N] [--engine-repeats K] [--python PY]
#                          [--peers "numpy torch_eager torch_graphs jax"] [-- EXTRA ENGINE ARGS]
#
# 1. Makes the run directories OUT/run_lookups and OUT/run_rows with
#    `CUDAEMBED_BIN train --save-pairs --epochs N --adam-v MODE ... --force` (whole process timed).
# 2. Times K more engine runs per mode without --save-pairs (whole process, wall clock).
# 3. Runs each peer: numpy_reference (--check, on both run dirs), torch_eager, torch_graphs and jax
#    (on run_rows: they implement the "rows" second moment). A peer whose Python package is
#    missing, or torch_graphs without CUDA, gets a "skipped" line; a peer that fails gets an
#    "error" line with its log. Neither stops the script.
set -euo pipefail

usage() {
  sed -n '2,14p' "$0" | sed 's/^# \{0,1\}//' >&2
  exit 2
}

[ "$#" -ge 2 ] || usage
BIN=$1
OUT=$2
shift 2
EPOCHS=500
REPEATS=3
PY=${PYTHON:-python3}
PEERS="numpy torch_eager torch_graphs jax"
EXTRA=()
while [ "$#" -gt 0 ]; do
  case "$1" in
    --epochs) EPOCHS=$2; shift 2 ;;
    --engine-repeats) REPEATS=$2; shift 2 ;;
    --python) PY=$2; shift 2 ;;
    --peers) PEERS=$2; shift 2 ;;
    --) shift; EXTRA=("$@"); break ;;
    -h|--help) usage ;;
    *) echo "run_all.sh: unknown argument $1" >&2; usage ;;
  esac
done

HERE=$(cd "$(dirname "$0")" && pwd)
[ -x "$BIN" ] || { echo "run_all.sh: $BIN is not an executable" >&2; exit 2; }
command -v "$PY" >/dev/null 2>&1 || { echo "run_all.sh: no $PY (set --python or PYTHON)" >&2; exit 2; }
mkdir -p "$OUT/logs"
JSONL="$OUT/peers.jsonl"
touch "$JSONL"

now() { date +%s.%N; }
elapsed() { awk -v a="$1" -v b="$2" 'BEGIN { printf "%.6f", b - a }'; }

# json_line KEY=VALUE...: one JSON object; values that parse as JSON stay numbers/booleans.
json_line() {
  "$PY" - "$@" <<'EOF'
import json, sys
out = {}
for kv in sys.argv[1:]:
    k, v = kv.split("=", 1)
    try:
        out[k] = json.loads(v)
    except ValueError:
        out[k] = v
print(json.dumps(out))
EOF
}

# engine_line RUN_DIR WALL_SECONDS LABEL: the engine's JSON line from its run.json.
engine_line() {
  "$PY" - "$1" "$2" "$3" <<'EOF'
import json, sys
run_dir, wall, label = sys.argv[1], float(sys.argv[2]), sys.argv[3]
r = json.load(open(f"{run_dir}/run.json"))
c = r["config"]
steps = int(c["epochs"]) * int(c["steps_per_epoch"])
train = float(r["timings_s"]["train"])
print(json.dumps({
    "peer": "cudaembed", "device": f'{r["backend"]["name"]}: {r["backend"]["device"]}',
    "epochs": c["epochs"], "steps": steps, "train_seconds": train, "setup_seconds": None,
    "steps_per_second": steps / train if train > 0 else None, "final_loss": r["final"]["loss"],
    "adam_v": c["adam_v"], "adam_form": "keras", "wall_seconds": wall, "run": label,
    "kernel": r["backend"]["kernel"], "run_dir": run_dir,
    "note": "wall_seconds is the whole process (parse, pairs, training, outputs); train_seconds from run.json",
}))
EOF
}

run_engine() {  # run_engine MODE DIR LABEL [ARGS...]
  local mode=$1 dir=$2 label=$3
  shift 3
  local t0 t1
  t0=$(now)
  "$BIN" train --epochs "$EPOCHS" --adam-v "$mode" --out "$dir" --force "$@" ${EXTRA[@]+"${EXTRA[@]}"} \
    >"$OUT/logs/engine_${mode}_${label}.log" 2>&1
  t1=$(now)
  engine_line "$dir" "$(elapsed "$t0" "$t1")" "$label" | tee -a "$JSONL"
}

echo "== cudaembed: $BIN (epochs $EPOCHS${EXTRA[*]+, ${EXTRA[*]}})" >&2
for mode in lookups rows; do
  run_engine "$mode" "$OUT/run_$mode" "save-pairs" --save-pairs
  i=1
  while [ "$i" -le "$REPEATS" ]; do
    run_engine "$mode" "$OUT/engine_timing/${mode}_$i" "repeat-$i"
    i=$((i + 1))
  done
done

has_module() { "$PY" -c "import $1" >/dev/null 2>&1; }
has_cuda_torch() { "$PY" -c "import torch, sys; sys.exit(0 if torch.cuda.is_available() else 1)" >/dev/null 2>&1; }

# run_peer NAME LOG_TAG SCRIPT ARGS...: appends the peer's JSON line, or an error line.
run_peer() {
  local name=$1 tag=$2 script=$3
  shift 3
  local log="$OUT/logs/${tag}.log" line rc=0
  echo "== $tag" >&2
  line=$("$PY" "$HERE/$script" "$@" 2>"$log" | tail -n 1) || rc=$?
  if [ "$rc" -eq 0 ] && [ -n "$line" ]; then
    echo "$line" | tee -a "$JSONL"
  else
    json_line "peer=$name" "error=exit $rc" "log=$log" "detail=$line" | tee -a "$JSONL"
  fi
}

skip() {  # skip NAME REASON
  json_line "peer=$1" "skipped=$2" | tee -a "$JSONL"
}

for peer in $PEERS; do
  case "$peer" in
    numpy)
      if has_module numpy; then
        run_peer numpy_reference numpy_lookups numpy_reference.py "$OUT/run_lookups" --check --quiet
        run_peer numpy_reference numpy_rows numpy_reference.py "$OUT/run_rows" --check --quiet
      else
        skip numpy_reference "numpy is not importable by $PY"
      fi
      ;;
    torch_eager)
      if has_module torch; then
        run_peer torch_eager torch_eager torch_peer.py "$OUT/run_rows" --mode eager --quiet
      else
        skip torch_eager "torch is not importable by $PY"
      fi
      ;;
    torch_graphs)
      if ! has_module torch; then
        skip torch_graphs "torch is not importable by $PY"
      elif ! has_cuda_torch; then
        skip torch_graphs "needs CUDA (torch.cuda.is_available() is False)"
      else
        run_peer torch_graphs torch_graphs torch_peer.py "$OUT/run_rows" --mode graphs --quiet
      fi
      ;;
    jax)
      if has_module jax; then
        run_peer jax_scan jax jax_peer.py "$OUT/run_rows" --quiet
      else
        skip jax_scan "jax is not importable by $PY"
      fi
      ;;
    *) skip "$peer" "unknown peer name" ;;
  esac
done
echo "== results in $JSONL" >&2
