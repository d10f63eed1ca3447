"""The Poincaré head against gensim's PoincareModel on one tree closure, in one run.

    python bench/peers/gensim_poincare.py CUDAEMBED_BIN OUT_DIR [--depth 6 --branching 3 --seed 42
        --dims 10 --negatives 10 --gensim-epochs 50 --burn-in 10 --engine-epochs N --engine-args "..."]

1. `CUDAEMBED_BIN synth --kind tree` writes OUT_DIR/closure.csv ((descendant, ancestor) positives).
2. The engine: the command of issue 17's done-when line, `CUDAEMBED_BIN train --pairs-file
   closure.csv --head poincare --negatives 10 --dims 10`, with only `--device cpu --out DIR --force`
   added, so that it trains with the engine's defaults for --head poincare (PoincareDefaults in
   include/cudaembed/config.hpp: radam, lr 0.01, batch 10, 100 epochs of which 10 burn-in) and
   writes every output a user gets (plot and snapshots included). The whole process is timed (wall
   clock). --engine-epochs, --engine-burn-in and --engine-args override the defaults. Then
   `CUDAEMBED_BIN evaluate --pairs` for its reconstruction MAP and mean rank.
3. gensim's PoincareModel on the same relations, with the same D and negatives, its own defaults
   otherwise (RSGD lr 0.1, batch 10, burn-in --burn-in epochs at lr 0.01 before --gensim-epochs
   epochs); its train() timed.
4. Both embeddings scored by reconstruction_map() below, written here independently of the engine
   (Nickel & Kiela's eval_reconstruction, as docs/evaluation.md defines it), so the two numbers are
   the same metric; the engine's own `evaluate` number is printed beside it as a cross-check.
5. Beside each wall time, the CPU seconds (user + system, all threads) it took: on a shared machine
   the ratio of CPU times moves less than that of wall times.

Prints one JSON line per system and a Markdown table. Needs numpy and gensim (pip install gensim).
"""

from __future__ import annotations

import argparse
import csv
import json
import os
import platform
import resource
import subprocess
import sys
import time
from pathlib import Path

import numpy as np

sys.path.insert(0, str(Path(__file__).resolve().parent))
import common  # noqa: E402


def poincare_distances(x: np.ndarray) -> np.ndarray:
    """(N, N) Poincaré distances of the rows of x (float64), 1 - |x|^2 floored at 1e-5."""
    x = x.astype(np.float64)
    sq = np.sum(x * x, axis=1)
    diff = np.maximum(sq[:, None] + sq[None, :] - 2.0 * x @ x.T, 0.0)
    alpha = np.maximum(1.0 - sq, 1e-5)
    t = 2.0 * diff / (alpha[:, None] * alpha[None, :])
    return np.log1p(t + np.sqrt(t * (t + 2.0)))


def reconstruction_map(x: np.ndarray, pairs: list[tuple[int, int]]) -> tuple[float, float]:
    """(MAP, mean rank) of reconstruction: neighbours N(u) from the pairs in both directions; every
    other row ranked by distance from u. Mean rank: 1 + the non-neighbours closer than v (ties
    half); AP of u: mean over v in N(u) of (neighbours at least as close as v) / (rows at least as
    close as v), u itself excluded."""
    n = x.shape[0]
    neighbours: list[set[int]] = [set() for _ in range(n)]
    for a, b in pairs:
        if a != b:
            neighbours[a].add(b)
            neighbours[b].add(a)
    dist = poincare_distances(x)
    aps, ranks = [], []
    for u in range(n):
        if not neighbours[u]:
            continue
        d = np.delete(dist[u], u)
        ids = np.delete(np.arange(n), u)
        is_nb = np.isin(ids, list(neighbours[u]))
        d_nb, d_other = d[is_nb], np.sort(d[~is_nb])
        d_nb_sorted = np.sort(d_nb)
        for dv in d_nb:
            better = np.searchsorted(d_other, dv, side="left")
            equal = np.searchsorted(d_other, dv, side="right") - better
            ranks.append(1.0 + better + 0.5 * equal)
        at_least = np.searchsorted(d_nb_sorted, d_nb, side="right")  # neighbours at least as close
        others_at_least = np.searchsorted(d_other, d_nb, side="right")
        aps.append(float(np.mean(at_least / (at_least + others_at_least))))
    return float(np.mean(aps)), float(np.mean(ranks))


def read_closure(path: Path) -> list[tuple[str, str]]:
    with open(path, newline="") as f:
        rows = list(csv.reader(f))
    return [(a, b) for a, b in rows[1:]]


def children_cpu_seconds() -> float:
    """User + system CPU time of the finished child processes: less sensitive than wall time to
    other jobs on a shared machine."""
    r = resource.getrusage(resource.RUSAGE_CHILDREN)
    return r.ru_utime + r.ru_stime


def run(cmd: list[str]) -> str:
    out = subprocess.run(cmd, check=True, capture_output=True, text=True)
    return out.stdout


def main() -> int:
    p = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    p.add_argument("binary")
    p.add_argument("out")
    p.add_argument("--depth", type=int, default=6)
    p.add_argument("--branching", type=int, default=3)
    p.add_argument("--seed", type=int, default=42)
    p.add_argument("--dims", type=int, default=10)
    p.add_argument("--negatives", type=int, default=10)
    p.add_argument("--engine-epochs", type=int, default=None, help="default: the engine's (100 for --head poincare)")
    p.add_argument("--engine-burn-in", type=int, default=None, help="default: the engine's (10)")
    p.add_argument("--engine-args", default="", help="extra train arguments, one string")
    p.add_argument("--gensim-epochs", type=int, default=50)
    p.add_argument("--burn-in", type=int, default=10, help="gensim's burn-in epochs (before --gensim-epochs)")
    p.add_argument("--threads", type=int, default=2, help="the engine's --threads is not a flag: see the JSON")
    a = p.parse_args()

    out = Path(a.out)
    out.mkdir(parents=True, exist_ok=True)
    load_start = [round(x, 2) for x in os.getloadavg()]  # the machine may be shared: say how busy it was
    closure = out / "closure.csv"
    run([a.binary, "synth", "--kind", "tree", "--depth", str(a.depth), "--branching", str(a.branching),
         "--seed", str(a.seed), "--out", str(closure)])
    named = read_closure(closure)
    nodes = sorted({n for pair in named for n in pair})
    lines = []

    # The engine.
    run_dir = out / "engine"
    cmd = [a.binary, "train", "--pairs-file", str(closure), "--head", "poincare", "--negatives", str(a.negatives),
           "--dims", str(a.dims), "--device", "cpu", "--out", str(run_dir), "--force"]
    if a.engine_epochs is not None:
        cmd += ["--epochs", str(a.engine_epochs)]
    if a.engine_burn_in is not None:
        cmd += ["--burn-in", str(a.engine_burn_in)]
    cmd += a.engine_args.split()
    start, cpu_start = time.perf_counter(), children_cpu_seconds()
    run(cmd)
    engine_wall = time.perf_counter() - start
    engine_cpu = children_cpu_seconds() - cpu_start
    run_json = json.loads((run_dir / "run.json").read_text())
    evaluated = json.loads(run([a.binary, "evaluate", str(run_dir), "--pairs", str(closure), "--device", "cpu",
                                "--json"]))
    names = [line.split("\t")[0] for line in (run_dir / "metadata.tsv").read_text().splitlines()[1:]]
    index = {n: i for i, n in enumerate(names)}
    table = np.load(run_dir / "embedding.npy")
    engine_map, engine_rank = reconstruction_map(table, [(index[x], index[y]) for x, y in named])
    config = run_json["config"]
    lines.append({"peer": "cudaembed", "device": "cpu", "threads": "1 (the CPU backend's step is single-threaded)",
                  "epochs": config["epochs"], "burn_in": config["burn_in"], "batch": config["batch"],
                  "optimizer": config["optimizer"], "lr": config["lr"], "dims": a.dims, "negatives": a.negatives,
                  "wall_seconds": round(engine_wall, 3), "cpu_seconds": round(engine_cpu, 3),
                  "train_seconds": run_json.get("timings_s", {}).get("train"),
                  "map": engine_map, "mean_rank": engine_rank,
                  "engine_evaluate_map": evaluated["reconstruction"]["map"],
                  "engine_evaluate_mean_rank": evaluated["reconstruction"]["mean_rank"],
                  "max_norm": float(np.sqrt((table.astype(np.float64) ** 2).sum(axis=1)).max()),
                  "command": " ".join(cmd)})

    # gensim.
    try:
        import gensim
        from gensim.models.poincare import PoincareModel
    except ImportError:
        lines.append({"peer": "gensim", "skipped": "gensim is not installed (pip install gensim)"})
    else:
        model = PoincareModel(named, size=a.dims, negative=a.negatives, burn_in=a.burn_in, seed=a.seed)
        start, cpu_start = time.perf_counter(), time.process_time()
        model.train(epochs=a.gensim_epochs)
        gensim_train = time.perf_counter() - start
        gensim_cpu = time.process_time() - cpu_start
        vectors = np.stack([model.kv[n] for n in nodes])
        at = {n: i for i, n in enumerate(nodes)}
        gensim_map, gensim_rank = reconstruction_map(vectors, [(at[x], at[y]) for x, y in named])
        lines.append({"peer": "gensim", "version": gensim.__version__, "device": "cpu",
                      "threads": f"1 Python thread (numpy BLAS: OPENBLAS_NUM_THREADS="
                                 f"{os.environ.get('OPENBLAS_NUM_THREADS', 'unset')}, {os.cpu_count()} cores)",
                      "epochs": a.gensim_epochs, "burn_in": a.burn_in, "batch": 10, "optimizer": "rsgd",
                      "lr": model.train_alpha, "dims": a.dims, "negatives": a.negatives,
                      "train_seconds": round(gensim_train, 3), "cpu_seconds": round(gensim_cpu, 3), "map": gensim_map, "mean_rank": gensim_rank,
                      "max_norm": float(np.sqrt((vectors.astype(np.float64) ** 2).sum(axis=1)).max())})

    for line in lines:
        line.update({"nodes": len(nodes), "pairs": len(named), "machine": platform.processor() or platform.machine(),
                     "cpu": common.cpu_name(), "date": time.strftime("%Y-%m-%d"), "loadavg_start": load_start,
                     "loadavg_end": [round(x, 2) for x in os.getloadavg()],
                     "tree": {"depth": a.depth, "branching": a.branching, "seed": a.seed}})
        print(json.dumps(line))
    with open(out / "poincare.jsonl", "a") as f:
        for line in lines:
            f.write(json.dumps(line) + "\n")
    print("\n| system | epochs | seconds | CPU seconds | MAP | mean rank |\n| --- | --- | --- | --- | --- | --- |")
    for line in lines:
        if "map" in line:
            secs = line.get("wall_seconds", line.get("train_seconds"))
            print(f"| {line['peer']} | {line['epochs']} | {secs:.2f} | {line['cpu_seconds']:.2f} | {line['map']:.3f} "
                  f"| {line['mean_rank']:.2f} |")
    return 0


if __name__ == "__main__":
    sys.exit(main())
