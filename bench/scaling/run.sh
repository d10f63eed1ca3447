#!/usr/bin/env bash
# Samples per second of one process against K ranks (--parallel data and rows) on the CPU backend,
# and each run's exchange volume per step beside the docs/scaling.md arithmetic. Appends one JSON
# line per configuration to OUT/scaling.jsonl and prints a table. --device cuda runs one GPU
# against K GPUs on NCCL, both ways; it needs a GPU per rank.
#
#   bench/scaling/run.sh CUDAEMBED_BIN OUT_DIR [--ranks K] [--repeats N] [--rows R] [--pairs P]
#                        [--dims D] [--batch B] [--negatives M] [--epochs E] [--device cpu|cuda]
#
# The data is `synth --kind powerlaw` (hot rows first), trained with lazy Adam on the sorted path.
# Samples/s counts the training loop (metrics.csv's seconds), the median over the repeats. Open
# MPI's mpirun must be on PATH; as root, OMPI_ALLOW_RUN_AS_ROOT(_CONFIRM) must be set.
set -euo pipefail

usage() {
  sed -n '2,12p' "$0" | sed 's/^# \{0,1\}//' >&2
  exit 2
}

[ "$#" -ge 2 ] || usage
BIN=$1
OUT=$2
shift 2
RANKS=2 REPEATS=3 ROWS=100000 PAIRS=204800 DIMS=64 BATCH=4096 NEGATIVES=4 EPOCHS=2 DEVICE=cpu
while [ "$#" -gt 0 ]; do
  case "$1" in
    --ranks) RANKS=$2; shift 2 ;;
    --repeats) REPEATS=$2; shift 2 ;;
    --rows) ROWS=$2; shift 2 ;;
    --pairs) PAIRS=$2; shift 2 ;;
    --dims) DIMS=$2; shift 2 ;;
    --batch) BATCH=$2; shift 2 ;;
    --negatives) NEGATIVES=$2; shift 2 ;;
    --epochs) EPOCHS=$2; shift 2 ;;
    --device) DEVICE=$2; shift 2 ;;
    -h|--help) usage ;;
    *) echo "run.sh: unknown argument $1" >&2; usage ;;
  esac
done
case "$DEVICE" in
  cpu | cuda) ;;
  *) echo "run.sh: --device $DEVICE: use cpu or cuda" >&2; exit 2 ;;
esac
command -v mpirun >/dev/null || { echo "run.sh: mpirun not found (apt-get install openmpi-bin)" >&2; exit 1; }
mkdir -p "$OUT"
"$BIN" synth --kind powerlaw --rows "$ROWS" --pairs "$PAIRS" --out "$OUT/pairs.bin" >/dev/null 2>&1

# One configuration: REPEATS runs, then its JSON line (medians, exchange, the arithmetic).
measure() {
  local name=$1 ranks=$2 parallel=$3
  local launch=("$BIN") seconds=() exchange=0
  [ "$ranks" -gt 1 ] && launch=(mpirun -np "$ranks" "$BIN")
  for i in $(seq "$REPEATS"); do
    local dir="$OUT/run-$name-$i"
    rm -rf "$dir"
    "${launch[@]}" train --device "$DEVICE" --parallel "$parallel" --pairs-file "$OUT/pairs.bin" --dims "$DIMS" --batch "$BATCH" --negatives "$NEGATIVES" \
      --optimizer lazy-adam --epochs "$EPOCHS" --no-plot --snapshots none --out "$dir" >"$dir.log" 2>&1 ||
      { echo "run.sh: $name failed; see $dir.log" >&2; exit 1; }
    seconds+=("$(awk -F, 'NR > 1 { s += $5 } END { print s }' "$dir/metrics.csv")")
    exchange=$(sed -n 's/.*exchange: rank 0 sent \([0-9]*\) bytes to the other ranks in \([0-9]*\) steps.*/\1 \2/p' \
      "$dir.log")
    rm -rf "$dir"
  done
  python3 - "$name" "$ranks" "$PAIRS" "$NEGATIVES" "$EPOCHS" "$BATCH" "$DIMS" "${exchange:-0 0}" "$DEVICE" \
    "${seconds[@]}" <<'PY'
import json, math, statistics, sys
name, ranks, pairs, negatives, epochs, batch, dims = sys.argv[1], *map(int, sys.argv[2:8])
sent, steps = map(int, sys.argv[8].split())
device = sys.argv[9]
seconds = [float(s) for s in sys.argv[10:]]
samples = pairs * (1 + negatives) * epochs
S = batch * (1 + negatives)              # samples a (full) step
longest = math.ceil(S / ranks)           # rank 0's slice
# docs/scaling.md: what rank 0 sends to the other ranks per full step, in bytes.
if name.startswith("data"):              # all-gather of its lookups' rows and five values a sample
    arithmetic = (ranks - 1) * longest * (2 * dims + 5) * 4
    rule = "(K-1) * ceil(S/K) * (2D + 5) * 4"
elif name.startswith("rows"):            # gradients to their owners, the samples' values, then the rows read
    arithmetic = (ranks - 1) / ranks * 2 * longest * dims * 4 + (ranks - 1) * longest * 5 * 4
    rule = ("(K-1)/K * 2 ceil(S/K) * D * 4 (each lookup's gradient to its row's owner) + (K-1) * ceil(S/K) * 5 * 4, "
            "plus up to (K-1)/K * 2 ceil(S/K) * D * 4 for the rows the other ranks read (each distinct row once)")
else:
    arithmetic, rule = 0, "one process: nothing"
high = arithmetic + ((ranks - 1) / ranks * 2 * longest * dims * 4 if name.startswith("rows") else 0)
line = {"config": name, "ranks": ranks, "samples_per_s": samples / statistics.median(seconds),
        "train_s": seconds, "sent_mb_per_step": sent / steps / 1e6 if steps else 0.0,
        "arithmetic_mb_per_step": [arithmetic / 1e6, high / 1e6], "arithmetic": rule,
        "pairs": pairs, "negatives": negatives, "batch": batch, "dims": dims, "epochs": epochs, "device": device}
print(json.dumps(line))
PY
}

rm -f "$OUT/latest.jsonl"
for config in "one 1 data" "data$RANKS $RANKS data" "rows$RANKS $RANKS rows"; do
  # shellcheck disable=SC2086
  measure $config | tee -a "$OUT/latest.jsonl" >>"$OUT/scaling.jsonl"
done
python3 - "$OUT/latest.jsonl" <<'PY'
import json, sys
print("%-8s %12s %14s %22s" % ("config", "samples/s", "MB/step sent", "arithmetic (MB/step)"))
for line in open(sys.argv[1]):
    r = json.loads(line)
    low, high = r["arithmetic_mb_per_step"]
    expected = "%.4g" % low if low == high else "%.4g to %.4g" % (low, high)
    print("%-8s %12.4g %14.4g %22s" % (r["config"], r["samples_per_s"], r["sent_mb_per_step"], expected))
PY
