#!/usr/bin/env python3
"""PyTorch peer of cudaembed's training: idiomatic nn.Module + autograd + torch.optim.Adam.

    python bench/peers/torch_peer.py RUN_DIR --mode eager|graphs [--device cuda|cpu] [--epochs E]

Same data, initial weights and batch order as the engine (run dir from `cudaembed train
--save-pairs`). The optimizer is torch.optim.Adam(lr, betas, eps) with fused=True on CUDA
(foreach on the CPU): textbook "rows" second moment, PyTorch's eps placement (see README.md), so
compare with a run made with `--adam-v rows`.

--mode eager: a Python loop over the steps.
--mode graphs: one full training step (zero_grad(set_to_none=False), forward, backward,
optimizer.step) captured with torch.cuda.graph on static tensors, replayed per step after copying
that step's pair ids into the static input; the last partial batch of an epoch has its own graph.
CUDA only.

Warm-up steps (side stream, as the CUDA-graphs docs ask; also run in eager mode so both time the
steady state) change the weights, so the initial weights and the optimizer state are restored in
place before the timed training: the timed region does exactly the engine's steps.
"""

from __future__ import annotations

import sys
from pathlib import Path

import numpy as np

sys.path.insert(0, str(Path(__file__).resolve().parent))
import common  # noqa: E402

try:
    import torch
    import torch.nn.functional as F
    from torch import nn
except ImportError as exc:  # reported as a skip by run_all.sh
    print(f"torch_peer: torch is not installed ({exc})", file=sys.stderr)
    sys.exit(3)

WARMUP_STEPS = 3


class PairModel(nn.Module):
    """Embedding(N, D) -> squared distance of two rows -> Dense(1) -> logit."""

    def __init__(self, table: np.ndarray, w: float, b: float, normalize: bool):
        super().__init__()
        self.embedding = nn.Embedding(table.shape[0], table.shape[1])
        self.dense = nn.Linear(1, 1)
        self.normalize = normalize
        with torch.no_grad():
            self.embedding.weight.copy_(torch.from_numpy(table))
            self.dense.weight.fill_(w)
            self.dense.bias.fill_(b)

    def forward(self, a: torch.Tensor, b: torch.Tensor) -> torch.Tensor:
        ea, eb = self.embedding(a), self.embedding(b)
        if self.normalize:
            # x / max(||x||, 1e-6) == x / sqrt(max(sum x^2, 1e-12)), as tf.math.l2_normalize.
            ea, eb = F.normalize(ea, dim=1, eps=1e-6), F.normalize(eb, dim=1, eps=1e-6)
        dist = (ea - eb).square().sum(dim=1, keepdim=True)
        return self.dense(dist).squeeze(1)


class Trainer:
    def __init__(self, run: common.RunDir, device: torch.device, epochs: int, capturable: bool):
        self.device = device
        self.run = run
        w, b = run.initial_dense
        self.model = PairModel(run.initial_table, w, b, run.normalize).to(device)
        hp = run.adam()
        kw = dict(lr=hp["lr"], betas=(hp["beta1"], hp["beta2"]), eps=hp["epsilon"])
        if device.type == "cuda":
            # capturable only where captured: the docs warn it can slow ungraphed steps.
            kw.update(fused=True, capturable=capturable)
            self.optimizer_form = "fused, capturable" if capturable else "fused"
        else:
            kw.update(foreach=True)
            self.optimizer_form = "foreach"
        self.optimizer = torch.optim.Adam(self.model.parameters(), **kw)
        self.initial = [p.detach().clone() for p in self.model.parameters()]
        self.pa = torch.from_numpy(run.pair_ids[:, 0].astype(np.int64)).to(device)
        self.pb = torch.from_numpy(run.pair_ids[:, 1].astype(np.int64)).to(device)
        self.labels = torch.from_numpy(run.labels).to(device)
        # Every epoch's order, computed up front with numpy and uploaded (outside the timed region).
        orders = common.epoch_orders(run.pairs, run.seed, epochs)
        self.orders = torch.from_numpy(orders.astype(np.int64)).to(device)
        self.loss_sum = torch.zeros((), dtype=torch.float64, device=device)

    def step(self, ids: torch.Tensor) -> None:
        """One eager step on pair ids `ids`; adds the batch's loss sum to self.loss_sum."""
        a, b, y = self.pa[ids], self.pb[ids], self.labels[ids]
        self.optimizer.zero_grad()
        loss = F.binary_cross_entropy_with_logits(self.model(a, b), y)
        loss.backward()
        self.optimizer.step()
        self.loss_sum += loss.detach().double() * ids.numel()

    def restore(self) -> None:
        """Back to the initial weights and a fresh optimizer, in place (graphs keep their addresses)."""
        with torch.no_grad():
            for p, p0 in zip(self.model.parameters(), self.initial):
                p.copy_(p0)
                if p.grad is not None:
                    p.grad.zero_()
                for value in self.optimizer.state.get(p, {}).values():
                    if torch.is_tensor(value):
                        value.zero_()  # exp_avg, exp_avg_sq and step
        self.loss_sum.zero_()

    def sync(self) -> None:
        if self.device.type == "cuda":
            torch.cuda.synchronize()


def timed_epochs(tr: Trainer, epochs: int, bounds, step) -> tuple[list[float], float]:
    """Runs `step(ids)` over every batch of every epoch; returns each epoch's mean loss and the seconds."""
    losses = []
    start = common.now()
    for e in range(epochs):
        order = tr.orders[e]
        for lo, hi in bounds:
            step(order[lo:hi])
        losses.append(tr.loss_sum.item() / tr.run.pairs)  # one sync per epoch
        tr.loss_sum.zero_()
    tr.sync()
    return losses, common.now() - start


def train_eager(tr: Trainer, epochs: int, bounds) -> tuple[list[float], float, float]:
    setup_start = common.now()
    sizes = sorted({hi - lo for lo, hi in bounds})
    for n in sizes:  # warm-up: kernels loaded, caching allocator filled, optimizer state created
        for _ in range(WARMUP_STEPS):
            tr.step(tr.orders[0, :n])
    tr.sync()
    tr.restore()
    tr.sync()
    setup_s = common.now() - setup_start

    losses, train_s = timed_epochs(tr, epochs, bounds, tr.step)
    return losses, train_s, setup_s


class CapturedStep:
    """One training step of a fixed batch size, captured in a CUDA graph over static inputs."""

    def __init__(self, tr: Trainer, size: int):
        self.tr = tr
        self.ids = torch.zeros(size, dtype=torch.int64, device=tr.device)
        self.size = size
        self.graph = torch.cuda.CUDAGraph()

    def body(self) -> None:
        tr = self.tr
        a, b, y = tr.pa[self.ids], tr.pb[self.ids], tr.labels[self.ids]
        tr.optimizer.zero_grad(set_to_none=False)
        loss = F.binary_cross_entropy_with_logits(tr.model(a, b), y)
        loss.backward()
        tr.optimizer.step()
        tr.loss_sum += loss.detach().double() * self.size

    def capture(self) -> None:
        with torch.cuda.graph(self.graph):
            self.body()

    def replay(self, ids: torch.Tensor) -> None:
        self.ids.copy_(ids)
        self.graph.replay()


def train_graphs(tr: Trainer, epochs: int, bounds) -> tuple[list[float], float, float]:
    setup_start = common.now()
    sizes = sorted({hi - lo for lo, hi in bounds}, reverse=True)
    steps = {n: CapturedStep(tr, n) for n in sizes}
    for n, s in steps.items():
        s.ids.copy_(tr.orders[0, :n])
    # Warm-up on a side stream before capture (grads and Adam's state get allocated here, so the
    # captured zero_grad(set_to_none=False) and optimizer.step act on persistent tensors).
    side = torch.cuda.Stream()
    side.wait_stream(torch.cuda.current_stream())
    with torch.cuda.stream(side):
        for s in steps.values():
            for _ in range(WARMUP_STEPS):
                s.body()
    torch.cuda.current_stream().wait_stream(side)
    for s in steps.values():
        s.capture()
    tr.restore()
    tr.sync()
    setup_s = common.now() - setup_start

    losses, train_s = timed_epochs(tr, epochs, bounds, lambda ids: steps[len(ids)].replay(ids))
    return losses, train_s, setup_s


def main() -> int:
    ap = common.base_parser(__doc__.splitlines()[0])
    ap.add_argument("--mode", choices=["eager", "graphs"], default="eager")
    ap.add_argument("--device", default=None, help="cuda or cpu (default: cuda if available)")
    ap.add_argument("--threads", type=int, default=None, help="torch.set_num_threads on the CPU")
    ap.add_argument("--save-final", default=None, help="write the final table to this .npy (for cross-checks)")
    args = ap.parse_args()

    device = torch.device(args.device or ("cuda" if torch.cuda.is_available() else "cpu"))
    if args.mode == "graphs" and device.type != "cuda":
        print("torch_peer: --mode graphs needs CUDA (torch.cuda.is_available() is False or --device is not cuda)",
              file=sys.stderr)
        return 3
    if args.threads:
        torch.set_num_threads(args.threads)

    load_start = common.now()
    run = common.load_run(args.run_dir)
    epochs = args.epochs or run.epochs
    bounds = common.steps_of(run.pairs, run.batch)
    tr = Trainer(run, device, epochs, capturable=args.mode == "graphs")
    tr.sync()
    load_s = common.now() - load_start

    train = train_eager if args.mode == "eager" else train_graphs
    losses, train_s, warm_s = train(tr, epochs, bounds)
    for e, loss in enumerate(losses):
        if (e + 1) % max(1, epochs // 10) == 0:
            common.log(args.quiet, f"epoch {e + 1}/{epochs} loss {loss:.6f}")

    if args.save_final:
        np.save(args.save_final, tr.model.embedding.weight.detach().cpu().numpy())

    ref = common.engine_reference(run, epochs)
    if ref:
        ref["loss_rel_diff_vs_engine"] = common.relative_diff(losses[-1], ref["engine_final_loss"])
    dev_name = torch.cuda.get_device_name(device) if device.type == "cuda" else "cpu: " + common.cpu_name()
    common.report({
        "peer": f"torch_{args.mode}",
        "device": dev_name,
        "epochs": epochs,
        "steps": epochs * len(bounds),
        "train_seconds": train_s,
        "setup_seconds": warm_s,
        "final_loss": losses[-1],
        "adam_v": "rows",
        "adam_form": f"pytorch ({tr.optimizer_form})",
        "load_seconds": load_s,
        "torch": torch.__version__,
        "threads": torch.get_num_threads() if device.type == "cpu" else None,
        **ref,
    })
    return 0


if __name__ == "__main__":
    sys.exit(main())
