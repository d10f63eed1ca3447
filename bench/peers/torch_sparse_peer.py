#!/usr/bin/env python3
"""PyTorch peer for large tables: nn.Embedding(sparse=True) + SparseAdam, timed on a CEPAIRS1 file.

The pair file comes from `cudaembed synth`; --check makes its own small ones.

    python bench/peers/torch_sparse_peer.py --pairs FILE.cepairs [--dims 128] [--batch 65536]
        [--steps 200 | --epochs E] [--warmup-steps 20] [--repeats 5] [--head euclidean|dot|cosine]
        [--lr 1e-3] [--device cuda|cpu] [--no-shuffle] [--seed 42] [--json OUT.json]
    python bench/peers/torch_sparse_peer.py --check      # CPU smoke test on small synthetic files

Model (the engine's general "sorted" path): Embedding(N, D) -> score of rows a and b (`euclidean`:
|e_a - e_b|^2, `dot`: <e_a, e_b>, `cosine`: dot of the L2-normalised rows) -> logit w*score + c ->
BCE with logits times the pair's weight, sum(weight*bce) / batch size. The table trains with
SparseAdam: lazy (only the rows in the batch move, their moments decay only then), and the sparse
gradient is coalesced first, so a row's second moment sees its summed gradient squared ("rows").
SparseAdam puts eps where Keras does, p -= lr*sqrt(1-b2^t)/(1-b1^t) * m/(sqrt(v) + eps), with t the
global step count, not a per-row one. w and c train with torch.optim.Adam (PyTorch's eps placement,
see README.md). Both: lr, betas (0.9, 0.999), eps 1e-7. Initial table U(-0.05, 0.05), w = -0.5,
c = 0: not the engine's initial weights. This peer measures speed; its loss is only a sanity check
that training works.

Timing: the pairs are read once and moved to the device once. Then `--warmup-steps` untimed steps
(SparseAdam allocates its dense state on the first), then `--repeats` timed segments of `--steps`
steps (or `--epochs` epochs). Training continues across segments: the work of a step does not
depend on the weights. Each segment starts a new epoch; an epoch is ceil(P / batch) steps, the
last one partial, and (unless --no-shuffle) begins with torch.randperm on the device, inside the
timed region. The loop makes no host-device copies of its own (each step's loss is written into
a device buffer, read once at the end). PyTorch's coalesce of the sparse gradient sizes its output
by the number of unique rows, which on CUDA is read back to the host: an implicit sync per step
(from PyTorch's source; not yet observed on a GPU), part of what SparseAdam costs. CUDA events
around each segment, after a synchronize; median and min/max over the segments.
"""

from __future__ import annotations

import argparse
import datetime
import json
import shlex
import statistics
import sys
import tempfile
from dataclasses import dataclass
from pathlib import Path

import numpy as np

sys.path.insert(0, str(Path(__file__).resolve().parent))
import common  # noqa: E402

try:
    import torch
    import torch.nn.functional as F
    from torch import nn
except ImportError as exc:
    print(f"torch_sparse_peer: torch is not installed ({exc})", file=sys.stderr)
    sys.exit(3)

# ---- The CEPAIRS1 pair file ----

PAIRS_MAGIC = b"CEPAIRS1"
PAIRS_VERSION = 1
HEADER_BYTES = 64
RECORD = np.dtype([("a", "<u4"), ("b", "<u4"), ("label", "<f4"), ("weight", "<f4")])  # 16 bytes
FLAG_LABELLED, FLAG_WEIGHTED = 1, 2
FNV_OFFSET, FNV_PRIME = 0xCBF29CE484222325, 0x100000001B3


@dataclass
class PairFile:
    path: Path
    version: int
    flags: int
    rows: int
    records: np.ndarray  # (P,) RECORD, memory-mapped

    @property
    def count(self) -> int:
        return int(self.records.shape[0])


def read_pairs(path: str | Path) -> PairFile:
    """Opens a CEPAIRS1 file (host/data/pairs_binary.cpp writes them): a 64-byte header (magic, u32 version,
    u32 flags, u64 count, u64 rows, u64 names offset, u64 names bytes, u64 checksum, u64 reserved),
    `count` 16-byte records, then the names section, if any, which is not read. The checksum (FNV-1a
    64 of records and names) is not checked either: in Python it would take longer than the training.
    Raises ValueError naming the file and what is wrong."""
    path = Path(path)
    size = path.stat().st_size
    if size < HEADER_BYTES:
        raise ValueError(f"{path}: {size} bytes, shorter than the {HEADER_BYTES}-byte CEPAIRS1 header")
    hdr = np.fromfile(path, dtype=np.uint8, count=HEADER_BYTES).tobytes()
    if hdr[:8] != PAIRS_MAGIC:
        raise ValueError(f"{path}: not a CEPAIRS1 pair file (magic {hdr[:8]!r}, expected {PAIRS_MAGIC!r})")
    version, flags = (int(x) for x in np.frombuffer(hdr, dtype="<u4", count=2, offset=8))
    count, rows, _, names_bytes = (int(x) for x in np.frombuffer(hdr, dtype="<u8", count=4, offset=16))
    if version != PAIRS_VERSION:
        raise ValueError(f"{path}: CEPAIRS1 version {version}; this reader knows version {PAIRS_VERSION}")
    need = HEADER_BYTES + count * RECORD.itemsize + names_bytes
    if size != need:
        raise ValueError(f"{path}: {'truncated' if size < need else 'trailing bytes'}: the header says {count} "
                         f"pairs and {names_bytes} bytes of names ({need} bytes), the file has {size}")
    if count == 0 or rows == 0:
        raise ValueError(f"{path}: empty ({count} pairs, {rows} rows)")
    rec = np.memmap(path, dtype=RECORD, mode="r", offset=HEADER_BYTES, shape=(count,))
    top = max(int(rec["a"].max()), int(rec["b"].max()))
    if top >= rows:
        raise ValueError(f"{path}: row id {top} out of range for {rows} rows")
    return PairFile(path, version, flags, rows, rec)


def fnv1a64(data: bytes, h: int = FNV_OFFSET) -> int:
    """The CEPAIRS1 checksum; a Python loop, for small test files only."""
    for byte in data:
        h = ((h ^ byte) * FNV_PRIME) & 0xFFFFFFFFFFFFFFFF
    return h


def write_pairs(path: str | Path, rows: int, records: np.ndarray) -> None:
    """Writes a labelled, weighted CEPAIRS1 file without names, checksum included, so that the engine
    reads it too."""
    body = np.ascontiguousarray(records, dtype=RECORD).tobytes()
    hdr = bytearray(HEADER_BYTES)  # names offset, names bytes and reserved stay 0
    hdr[:8] = PAIRS_MAGIC
    hdr[8:16] = np.array([PAIRS_VERSION, FLAG_LABELLED | FLAG_WEIGHTED], dtype="<u4").tobytes()
    hdr[16:32] = np.array([records.shape[0], rows], dtype="<u8").tobytes()
    hdr[48:56] = np.array([fnv1a64(body)], dtype="<u8").tobytes()
    with open(path, "wb") as f:
        f.write(bytes(hdr))
        f.write(body)


def make_powerlaw_pairs(rows: int, count: int, seed: int, path: str | Path) -> None:
    """A small test file, not the engine's generator: ids with P(id) ~ 1/(id + 1) (a few hot rows,
    a long cold tail), each row in hidden cluster id % K; half of the pairs are drawn within a
    cluster. label = 1 when a and b share a cluster; weight uniform in [0.5, 1.5)."""
    rng = np.random.default_rng(seed)
    k = max(2, min(16, rows // 4))

    def powerlaw(n: int) -> np.ndarray:
        return np.minimum(np.floor(np.exp(rng.random(n) * np.log(rows + 1.0))) - 1, rows - 1).astype(np.int64)

    a, b = powerlaw(count), powerlaw(count)
    same = rng.random(count) < 0.5
    moved = b - b % k + a % k  # b's neighbourhood, a's cluster
    moved[moved >= rows] -= k
    b = np.where(same, moved, b)
    rec = np.empty(count, dtype=RECORD)
    rec["a"], rec["b"] = a, b
    rec["label"] = (a % k == b % k).astype(np.float32)
    rec["weight"] = (0.5 + rng.random(count)).astype(np.float32)
    write_pairs(path, rows, rec)


# ---- Model and training ----


class PairScorer(nn.Module):
    """Embedding(N, D) (sparse gradient) -> score of two rows -> logit w*score + c."""

    def __init__(self, rows: int, dims: int, head: str, device: torch.device, gen: torch.Generator):
        super().__init__()
        self.embedding = nn.Embedding(rows, dims, sparse=True, device=device)  # (N, D)
        with torch.no_grad():
            self.embedding.weight.uniform_(-0.05, 0.05, generator=gen)
        self.w = nn.Parameter(torch.full((1,), -0.5, device=device))
        self.c = nn.Parameter(torch.zeros(1, device=device))
        self.head = head

    def forward(self, ab: torch.Tensor) -> torch.Tensor:
        e = self.embedding(ab)  # (n, 2, D)
        ea, eb = e[:, 0], e[:, 1]
        if self.head == "euclidean":
            score = (ea - eb).square().sum(dim=1)
        elif self.head == "dot":
            score = (ea * eb).sum(dim=1)
        else:  # cosine; x / max(||x||, 1e-6), as the engine's --normalize
            score = (F.normalize(ea, dim=1, eps=1e-6) * F.normalize(eb, dim=1, eps=1e-6)).sum(dim=1)
        return self.w * score + self.c  # (n,)


class Schedule:
    """Batches of pair positions: epochs of ceil(P / batch) steps (the last partial), each one
    reshuffled with torch.randperm on the device. Positions are host ints: no device reads."""

    def __init__(self, count: int, batch: int, shuffle: bool, device: torch.device, gen: torch.Generator):
        self.count, self.batch, self.shuffle, self.device, self.gen = count, batch, shuffle, device, gen
        self.identity = None if shuffle else torch.arange(count, device=device)
        self.order = None
        self.pos = count

    def new_epoch(self) -> None:
        """The next step starts a new epoch."""
        self.pos = self.count

    def next(self) -> torch.Tensor:
        if self.pos >= self.count:
            self.order = (torch.randperm(self.count, device=self.device, generator=self.gen)
                          if self.shuffle else self.identity)
            self.pos = 0
        lo, self.pos = self.pos, min(self.pos + self.batch, self.count)
        return self.order[lo:self.pos]

    def sizes(self, steps: int) -> list[int]:
        """Batch sizes of `steps` steps from the start of an epoch."""
        full, rest = divmod(self.count, self.batch)
        epoch = [self.batch] * full + ([rest] if rest else [])
        return [epoch[i % len(epoch)] for i in range(steps)]


class Trainer:
    def __init__(self, pairs: PairFile, dims: int, head: str, lr: float, batch: int, shuffle: bool,
                 device: torch.device, seed: int):
        self.device = device
        gen = torch.Generator(device=device)
        gen.manual_seed(seed)
        self.model = PairScorer(pairs.rows, dims, head, device, gen)
        hp = dict(lr=lr, betas=(0.9, 0.999), eps=1e-7)
        self.table_opt = torch.optim.SparseAdam(self.model.embedding.parameters(), **hp)
        dense_kw = dict(fused=True) if device.type == "cuda" else dict(foreach=True)
        self.dense_opt = torch.optim.Adam([self.model.w, self.model.c], **hp, **dense_kw)
        rec = pairs.records
        ab = np.empty((pairs.count, 2), dtype=np.int64)
        ab[:, 0], ab[:, 1] = rec["a"], rec["b"]
        lw = np.empty((pairs.count, 2), dtype=np.float32)
        lw[:, 0], lw[:, 1] = rec["label"], rec["weight"]
        self.ab = torch.from_numpy(ab).to(device)  # (P, 2) row ids
        self.lw = torch.from_numpy(lw).to(device)  # (P, 2) label, weight
        self.schedule = Schedule(pairs.count, batch, shuffle, device, gen)
        self.losses = None  # (steps,) each step's loss, written on the device
        self.done = 0

    def reserve(self, steps: int) -> None:
        self.losses = torch.zeros(steps, dtype=torch.float32, device=self.device)
        self.done = 0

    def step(self) -> None:
        idx = self.schedule.next()  # (n,)
        ab, lw = self.ab[idx], self.lw[idx]  # (n, 2), (n, 2)
        logit = self.model(ab)
        loss = F.binary_cross_entropy_with_logits(logit, lw[:, 0], weight=lw[:, 1], reduction="sum") / idx.numel()
        self.table_opt.zero_grad()
        self.dense_opt.zero_grad()
        loss.backward()
        self.table_opt.step()
        self.dense_opt.step()
        self.losses[self.done] = loss.detach()
        self.done += 1

    def sync(self) -> None:
        if self.device.type == "cuda":
            torch.cuda.synchronize(self.device)


def time_segment(tr: Trainer, steps: int) -> float:
    """Seconds for `steps` steps from the start of an epoch: CUDA events on a GPU, else perf_counter."""
    tr.schedule.new_epoch()
    tr.sync()
    if tr.device.type == "cuda":
        start, end = torch.cuda.Event(enable_timing=True), torch.cuda.Event(enable_timing=True)
        start.record()
        for _ in range(steps):
            tr.step()
        end.record()
        end.synchronize()
        return start.elapsed_time(end) / 1e3
    t0 = common.now()
    for _ in range(steps):
        tr.step()
    return common.now() - t0


def spread(values: list[float]) -> dict:
    return {"median": statistics.median(values), "min": min(values), "max": max(values)}


def weighted_mean(losses: np.ndarray, sizes: list[int]) -> float:
    return float(np.dot(losses, sizes) / sum(sizes))


def run(args, pairs: PairFile, device: torch.device) -> dict:
    """Warm-up, then the timed segments; returns the report."""
    load_start = common.now()
    tr = Trainer(pairs, args.dims, args.head, args.lr, args.batch, args.shuffle, device, args.seed)
    tr.sync()
    load_s = common.now() - load_start
    steps_per_epoch = -(-pairs.count // args.batch)
    steps = args.epochs * steps_per_epoch if args.epochs else args.steps
    tr.reserve(args.warmup_steps + args.repeats * steps)

    warm_start = common.now()
    tr.schedule.new_epoch()
    for _ in range(args.warmup_steps):
        tr.step()
    tr.sync()
    warm_s = common.now() - warm_start

    seconds = [time_segment(tr, steps) for _ in range(args.repeats)]
    losses = tr.losses.cpu().numpy()
    sizes = tr.schedule.sizes(steps)
    samples = sum(sizes)
    t = spread(seconds)
    window = max(1, min(len(losses) // 10, 50))
    peak = torch.cuda.max_memory_allocated(device) if device.type == "cuda" else None
    return {
        "peer": "torch_sparse_adam",
        "device": torch.cuda.get_device_name(device) if device.type == "cuda" else "cpu: " + common.cpu_name(),
        "epochs": args.epochs,
        "steps": steps,
        "train_seconds": t["median"],
        "setup_seconds": warm_s,
        "steps_per_second": steps / t["median"],
        "final_loss": weighted_mean(losses[-steps:], sizes),
        "adam_v": "rows",
        "optimizer": "table: SparseAdam (lazy); w, c: Adam" + (" (fused)" if device.type == "cuda" else " (foreach)"),
        "adam_form": "table: keras (SparseAdam); w, c: pytorch",
        "head": args.head,
        "lr": args.lr,
        "seconds": t,
        "seconds_per_repeat": seconds,
        "samples_per_repeat": samples,
        "samples_per_second": {"median": samples / t["median"], "min": samples / t["max"], "max": samples / t["min"]},
        "steps_per_second_spread": {"min": steps / t["max"], "max": steps / t["min"]},
        "repeats": args.repeats,
        "warmup_steps": args.warmup_steps,
        "shuffle": args.shuffle,
        "first_loss": float(losses[:window].mean()),
        "last_loss": float(losses[-window:].mean()),
        "loss_window_steps": window,
        "geometry": {
            "rows": pairs.rows,
            "dims": args.dims,
            "pairs": pairs.count,
            "batch": args.batch,
            "steps_per_epoch": steps_per_epoch,
            "lookups_per_step": 2 * min(args.batch, pairs.count),
            "table_bytes": pairs.rows * args.dims * 4,
            "optimizer_state_bytes": 2 * pairs.rows * args.dims * 4,  # SparseAdam's exp_avg, exp_avg_sq: dense
        },
        "peak_memory_bytes": peak,
        "pairs_file": str(pairs.path),
        "pairs_file_flags": pairs.flags,
        "load_seconds": load_s,
        "torch": torch.__version__,
        "threads": torch.get_num_threads() if device.type == "cpu" else None,
        "date": datetime.datetime.now(datetime.timezone.utc).isoformat(timespec="seconds"),
        "command": shlex.join([sys.executable] + sys.argv),
        "_losses": losses,  # dropped from the report; --check reads it
    }


# ---- --check: a CPU smoke test ----


def check(args) -> int:
    """Every head trains 300 steps on a small power-law file and must lower its loss by 10%; the
    reader must refuse a wrong magic, a wrong version, a truncated file and trailing bytes."""
    failures = []
    with tempfile.TemporaryDirectory() as tmp:
        path = Path(tmp) / "check.cepairs"
        make_powerlaw_pairs(rows=2000, count=20000, seed=7, path=path)
        pairs = read_pairs(path)
        raw = path.read_bytes()
        bad = {"magic": b"CEPAIRS0" + raw[8:],
               "version": raw[:8] + np.array([PAIRS_VERSION + 1], "<u4").tobytes() + raw[12:],
               "truncated": raw[:-16],
               "trailing bytes": raw + bytes(16)}
        for what, data in bad.items():
            p = Path(tmp) / f"bad-{what.replace(' ', '-')}.cepairs"
            p.write_bytes(data)
            try:
                read_pairs(p)
                failures.append(f"reader accepted a file with a bad {what}")
            except ValueError as exc:
                common.log(args.quiet, f"check: refused ({what}): {exc}")
        for head in ("euclidean", "dot", "cosine"):
            hargs = argparse.Namespace(dims=16, head=head, lr=1e-2, batch=256, shuffle=True, seed=42, epochs=None,
                                       steps=100, warmup_steps=0, repeats=3)
            out = run(hargs, pairs, torch.device("cpu"))
            first, last = out["first_loss"], out["last_loss"]
            ok = last < 0.9 * first and np.isfinite(out["_losses"]).all()
            common.log(args.quiet, f"check: {head:9s} loss {first:.4f} -> {last:.4f} over "
                       f"{out['steps'] * out['repeats']} steps ({out['loss_window_steps']}-step means): "
                       f"{'ok' if ok else 'FAIL'}")
            if not ok:
                failures.append(f"{head}: loss {first:.4f} -> {last:.4f}, not below 90%")
    print(json.dumps({"peer": "torch_sparse_adam", "check": "fail" if failures else "pass", "failures": failures,
                      "torch": torch.__version__}), flush=True)
    return 1 if failures else 0


def main() -> int:
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0],
                                 formatter_class=argparse.RawDescriptionHelpFormatter)
    ap.add_argument("--pairs", help="CEPAIRS1 pair file (cudaembed synth)")
    ap.add_argument("--dims", type=int, default=128, help="embedding width D (default 128)")
    ap.add_argument("--batch", type=int, default=65536, help="pairs per step (default 65536)")
    length = ap.add_mutually_exclusive_group()
    length.add_argument("--steps", type=int, default=200, help="steps per timed repeat (default 200)")
    length.add_argument("--epochs", type=int, default=None, help="whole epochs per timed repeat instead")
    ap.add_argument("--warmup-steps", type=int, default=20, help="untimed steps first (default 20)")
    ap.add_argument("--repeats", type=int, default=5, help="timed repeats (default 5)")
    ap.add_argument("--head", choices=["euclidean", "dot", "cosine"], default="euclidean")
    ap.add_argument("--lr", type=float, default=1e-3)
    ap.add_argument("--device", default="cuda", help="cuda (default) or cpu")
    ap.add_argument("--shuffle", action=argparse.BooleanOptionalAction, default=True,
                    help="torch.randperm on the device at each epoch (default on)")
    ap.add_argument("--seed", type=int, default=42, help="initial table and shuffles")
    ap.add_argument("--json", default=None, help="also write the report to this file")
    ap.add_argument("--check", action="store_true", help="CPU smoke test on small synthetic files, then exit")
    ap.add_argument("--quiet", action="store_true", help="only the JSON line on stdout")
    args = ap.parse_args()

    if args.check:
        return check(args)
    if not args.pairs:
        ap.error("--pairs FILE is required (or --check)")
    for name in ("dims", "batch", "repeats"):
        if getattr(args, name) < 1:
            ap.error(f"--{name.replace('_', '-')} must be >= 1")
    if (args.epochs if args.epochs is not None else args.steps) < 1 or args.warmup_steps < 0:
        ap.error("--steps/--epochs must be >= 1 and --warmup-steps >= 0")
    device = torch.device(args.device)
    if device.type == "cuda" and not torch.cuda.is_available():
        print("torch_sparse_peer: --device cuda, but torch.cuda.is_available() is False (use --device cpu)",
              file=sys.stderr)
        return 3
    try:
        pairs = read_pairs(args.pairs)
    except (OSError, ValueError) as exc:
        print(f"torch_sparse_peer: {exc}", file=sys.stderr)
        return 2

    out = run(args, pairs, device)
    losses = out.pop("_losses")
    common.log(args.quiet, f"{out['device']}: {pairs.rows} x {args.dims}, batch {args.batch}: "
               f"{out['samples_per_second']['median']:.4g} pairs/s, {out['steps_per_second']:.4g} steps/s "
               f"(median of {args.repeats}); loss {losses[0]:.4f} -> {out['last_loss']:.4f}")
    report = common.report(out)
    if args.json:
        Path(args.json).write_text(json.dumps(report, indent=2) + "\n")
    return 0


if __name__ == "__main__":
    sys.exit(main())
