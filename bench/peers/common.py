"""Shared pieces of the benchmark peers: loading a cudaembed run directory, the epoch orders
(a vectorised numpy port of include/cudaembed/math.hpp's shuffle) and the one-line JSON report.

Only numpy is needed here, so every peer can import it.
"""

from __future__ import annotations

import argparse
import csv
import json
import os
import platform
import sys
import time
from dataclasses import dataclass, field
from pathlib import Path

import numpy as np

_M64 = (1 << 64) - 1


# ---- The shuffle, ported from include/cudaembed/math.hpp ----


def mix64(x: int) -> int:
    """splitmix64's finaliser on Python ints, wrapped to 64 bits."""
    x = (x + 0x9E3779B97F4A7C15) & _M64
    x = ((x ^ (x >> 30)) * 0xBF58476D1CE4E5B9) & _M64
    x = ((x ^ (x >> 27)) * 0x94D049BB133111EB) & _M64
    return x ^ (x >> 31)


def epoch_shuffle_key(seed: int, epoch: int) -> int:
    """uint32 key of epoch `epoch` (0-based): (uint32) mix64(seed ^ mix64(epoch + 0x5eed5eed))."""
    return mix64((seed & _M64) ^ mix64((epoch + 0x5EED5EED) & _M64)) & 0xFFFFFFFF


def permute_index(i, n: int, key: int) -> np.ndarray:
    """Vectorised permute_index: positions `i` (array-like) of the permutation of [0, n) for `key`.

    Kensler's hash on the next power of two with cycle walking: the body is applied to every
    element, then again only to the elements still >= n, until none is. All arithmetic is
    uint32 with wraparound, as in C++.
    """
    if n < 1:
        raise ValueError("n must be >= 1")
    u32 = np.uint32
    w = (n - 1) & 0xFFFFFFFF
    for s in (1, 2, 4, 8, 16):
        w |= w >> s
    w = u32(w)
    k = u32(key)
    k16, k8, k23 = u32(key >> 16), u32(key >> 8), u32(key >> 23)
    k27 = u32(1 | (key >> 27))
    out = np.array(i, dtype=np.uint32, copy=True).reshape(-1)
    todo = np.arange(out.size)
    cur = out.copy()
    with np.errstate(over="ignore"):
        while todo.size:
            x = cur
            x ^= k
            x *= u32(0xE170893D)
            x ^= k16
            x ^= (x & w) >> u32(4)
            x ^= k8
            x *= u32(0x0929EB3F)
            x ^= k23
            x ^= (x & w) >> u32(1)
            x *= k27
            x *= u32(0x6935FA69)
            x ^= (x & w) >> u32(11)
            x *= u32(0x74DCB303)
            x ^= (x & w) >> u32(2)
            x *= u32(0x9E501CC3)
            x ^= (x & w) >> u32(2)
            x *= u32(0xC860A3DF)
            x &= w
            x ^= x >> u32(5)
            out[todo] = x
            again = x >= u32(n)
            todo = todo[again]
            cur = x[again]
    return ((out.astype(np.uint64) + np.uint64(key)) % np.uint64(n)).astype(np.uint32)


def epoch_order(pairs: int, seed: int, epoch: int) -> np.ndarray:
    """Pair ids in the order epoch `epoch` visits them: permute_index(i, P, key) for i in [0, P)."""
    return permute_index(np.arange(pairs, dtype=np.uint32), pairs, epoch_shuffle_key(seed, epoch))


def epoch_orders(pairs: int, seed: int, epochs: int, first_epoch: int = 0) -> np.ndarray:
    """(epochs, P) uint32: every epoch's order, computed up front (outside any timed region)."""
    out = np.empty((epochs, pairs), dtype=np.uint32)
    positions = np.arange(pairs, dtype=np.uint32)
    for e in range(epochs):
        out[e] = permute_index(positions, pairs, epoch_shuffle_key(seed, first_epoch + e))
    return out


# ---- The run directory ----


@dataclass
class RunDir:
    path: Path
    run: dict
    pair_ids: np.ndarray  # (P, 2) uint32
    labels: np.ndarray  # (P,) float32
    initial_table: np.ndarray  # (N, D) float32: snapshots[0]
    final_table: np.ndarray | None  # (N, D) float32: snapshots[-1]
    metrics: list[dict] = field(default_factory=list)  # metrics.csv rows

    @property
    def config(self) -> dict:
        return self.run["config"]

    @property
    def seed(self) -> int:
        return int(self.run["seed"])

    @property
    def pairs(self) -> int:
        return int(self.pair_ids.shape[0])

    @property
    def batch(self) -> int:
        return int(self.config["batch"])

    @property
    def epochs(self) -> int:
        return int(self.config["epochs"])

    @property
    def steps_per_epoch(self) -> int:
        return -(-self.pairs // self.batch)

    @property
    def rows(self) -> int:
        return int(self.initial_table.shape[0])

    @property
    def dims(self) -> int:
        return int(self.initial_table.shape[1])

    @property
    def normalize(self) -> bool:
        return bool(self.config["normalize"])

    @property
    def adam_v(self) -> str:
        return str(self.config.get("adam_v", "lookups"))

    @property
    def initial_dense(self) -> tuple[float, float]:
        w, b = self.run["initial_dense"]
        return float(w), float(b)

    def adam(self) -> dict:
        c = self.config
        return {k: float(c[k]) for k in ("lr", "beta1", "beta2", "epsilon")}

    def engine_losses(self) -> list[float]:
        return [float(r["loss"]) for r in self.metrics]


def load_run(path: str | os.PathLike) -> RunDir:
    p = Path(path)
    missing = [n for n in ("run.json", "pair_ids.npy", "pair_labels.npy", "snapshots.npy") if not (p / n).exists()]
    if missing:
        sys.exit(f"{p}: missing {', '.join(missing)} (make it with `cudaembed train --save-pairs --out {p}`)")
    run = json.loads((p / "run.json").read_text())
    pair_ids = np.load(p / "pair_ids.npy")
    labels = np.load(p / "pair_labels.npy").astype(np.float32, copy=False)
    snaps = np.load(p / "snapshots.npy", mmap_mode="r")
    initial = np.array(snaps[0], dtype=np.float32)
    final = np.array(snaps[-1], dtype=np.float32) if snaps.shape[0] > 1 else None
    metrics = []
    if (p / "metrics.csv").exists():
        with open(p / "metrics.csv", newline="") as f:
            metrics = list(csv.DictReader(f))
    if pair_ids.ndim != 2 or pair_ids.shape[1] != 2 or labels.shape != (pair_ids.shape[0],):
        sys.exit(f"{p}: pair_ids.npy {pair_ids.shape} / pair_labels.npy {labels.shape} do not match")
    return RunDir(p, run, pair_ids.astype(np.uint32, copy=False), labels, initial, final, metrics)


def steps_of(pairs: int, batch: int):
    """(start, end) positions of every step of an epoch; the last partial batch is kept."""
    return [(s, min(s + batch, pairs)) for s in range(0, pairs, batch)]


# ---- Common command line and report ----


def base_parser(description: str) -> argparse.ArgumentParser:
    ap = argparse.ArgumentParser(description=description)
    ap.add_argument("run_dir", help="cudaembed run directory made with `train --save-pairs`")
    ap.add_argument("--epochs", type=int, default=None, help="epochs to train (default: the run's)")
    ap.add_argument("--quiet", action="store_true", help="only the JSON report line on stdout")
    return ap


def cpu_name() -> str:
    try:
        with open("/proc/cpuinfo") as f:
            for line in f:
                if line.startswith("model name"):
                    return line.split(":", 1)[1].strip()
    except OSError:
        pass
    return platform.processor() or "CPU"


def now() -> float:
    return time.perf_counter()


def relative_diff(a: float, b: float) -> float:
    return abs(a - b) / max(abs(b), 1e-30)


def report(d: dict) -> dict:
    """Print one JSON line with the common fields first; returns the dict printed."""
    out = dict(d)
    steps = out.get("steps")
    t = out.get("train_seconds")
    if "steps_per_second" not in out and steps and t:
        out["steps_per_second"] = steps / t if t > 0 else None
    keys = ["peer", "device", "epochs", "steps", "train_seconds", "setup_seconds", "steps_per_second", "final_loss",
            "adam_v"]
    ordered = {k: out.get(k) for k in keys}
    ordered.update({k: v for k, v in out.items() if k not in ordered})
    print(json.dumps(ordered), flush=True)
    return ordered


def engine_reference(run: RunDir, epochs: int) -> dict:
    """The engine's loss for the last trained epoch, for the report (only when comparable)."""
    losses = run.engine_losses()
    if epochs <= len(losses):
        return {"engine_final_loss": losses[epochs - 1], "engine_adam_v": run.adam_v}
    return {}


def log(quiet: bool, *args):
    if not quiet:
        print(*args, file=sys.stderr, flush=True)
