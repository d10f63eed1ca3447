#!/usr/bin/env bash
# bench/scaling/run.sh on a tiny file: it runs one process and two ranks both ways, and the bytes
# each exchange sends per step are what docs/scaling.md's arithmetic says (exactly for data
# parallel; within its range for row sharding, whose rows read depend on the data).
#   test_bench_scaling.sh SOURCE_DIR CUDAEMBED_BIN
set -euo pipefail
SOURCE=$1
BIN=$2
OUT=$(mktemp -d)
trap 'rm -rf "$OUT"' EXIT
# Open MPI refuses root without these (CI runs as root); here, for this script only.
export OMPI_ALLOW_RUN_AS_ROOT=1 OMPI_ALLOW_RUN_AS_ROOT_CONFIRM=1 OMPI_MCA_rmaps_base_oversubscribe=1
export ASAN_OPTIONS=detect_leaks=0
bash "$SOURCE/bench/scaling/run.sh" "$BIN" "$OUT" --repeats 1 --rows 3000 --pairs 4096 --dims 8 --batch 256 \
  --negatives 2 --epochs 1
python3 - "$OUT/scaling.jsonl" <<'PY'
import json, sys
runs = {r["config"]: r for r in map(json.loads, open(sys.argv[1]))}
assert set(runs) == {"one", "data2", "rows2"}, runs.keys()
assert all(r["device"] == "cpu" for r in runs.values())
assert all(r["samples_per_s"] > 0 for r in runs.values())
assert runs["one"]["sent_mb_per_step"] == 0
sent, (low, high) = runs["data2"]["sent_mb_per_step"], runs["data2"]["arithmetic_mb_per_step"]
assert abs(sent - low) <= 1e-3 * low, f"data parallel sent {sent} MB a step, arithmetic {low}"
sent, (low, high) = runs["rows2"]["sent_mb_per_step"], runs["rows2"]["arithmetic_mb_per_step"]
# The gradients' share depends on which rows each lookup hits: (K-1)/K of them on average.
assert 0.8 * low <= sent <= 1.1 * high, f"row sharding sent {sent} MB a step, arithmetic {low} to {high}"
print("bench/scaling: exchange volumes match the arithmetic")
PY
# A device it does not know is refused before anything runs.
if bash "$SOURCE/bench/scaling/run.sh" "$BIN" "$OUT/bad" --device tpu 2>"$OUT/bad.err"; then
  echo "bench/scaling: --device tpu was accepted" >&2
  exit 1
fi
grep -q -- "--device tpu: use cpu or cuda" "$OUT/bad.err"
