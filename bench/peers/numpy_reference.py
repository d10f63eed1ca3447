#!/usr/bin/env python3
"""Independent float32 numpy reference of cudaembed's training, vectorised per step.

Same data (pair_ids.npy, pair_labels.npy), same initial weights (snapshots.npy[0], run.json's
initial_dense), same batch order (the ported shuffle), same Keras-form dense Adam on every
parameter every step, with --adam-v rows|lookups (default: the run's). With --check it compares
its per-epoch losses with metrics.csv and its final table with snapshots.npy[-1].

    python bench/peers/numpy_reference.py RUN_DIR [--check] [--adam-v rows|lookups] [--epochs E]
"""

from __future__ import annotations

import sys
from pathlib import Path

import numpy as np

sys.path.insert(0, str(Path(__file__).resolve().parent))
import common  # noqa: E402

F32 = np.float32
NORMALIZE_EPS = F32(1e-12)


class Adam:
    """Keras 3's Adam on one float32 array: m += (g-m)(1-b1); v += (g2-v)(1-b2); p -= m*a/(sqrt(v)+eps)."""

    def __init__(self, beta1: float, beta2: float, epsilon: float):
        # As math.hpp's adam_coefficients: 1 - beta in double from the float32 beta, then rounded.
        self.omb1 = F32(1.0 - float(F32(beta1)))
        self.omb2 = F32(1.0 - float(F32(beta2)))
        self.eps = F32(epsilon)

    def update(self, p: np.ndarray, m: np.ndarray, v: np.ndarray, g: np.ndarray, g2: np.ndarray, step: F32):
        m += (g - m) * self.omb1
        v += (g2 - v) * self.omb2
        p -= (m * step) / (np.sqrt(v) + self.eps)


class TorchFormAdam(Adam):
    """torch.optim.Adam's arithmetic (for cross-checking the PyTorch peer, not the engine):
    p -= lr/(1-b1^t) * m / (sqrt(v)/sqrt(1-b2^t) + eps): eps is added after the bias correction."""

    def __init__(self, lr: float, beta1: float, beta2: float, epsilon: float):
        super().__init__(beta1, beta2, epsilon)
        self.lr, self.beta1, self.beta2 = float(F32(lr)), float(F32(beta1)), float(F32(beta2))
        self.t = 0

    def update(self, p, m, v, g, g2, step):  # `step` unused: computed from the step count as PyTorch does
        m += (g - m) * self.omb1
        v *= F32(self.beta2)
        v += g2 * self.omb2
        denom = np.sqrt(v) / F32(np.sqrt(1.0 - self.beta2**self.t)) + self.eps
        p -= F32(self.lr / (1.0 - self.beta1**self.t)) * m / denom


def step_size(lr: float, beta1: float, beta2: float, t: int) -> F32:
    """math.hpp's adam_step_size: in double from the float32 hyper-parameters, rounded to float32."""
    lr, b1, b2 = float(F32(lr)), float(F32(beta1)), float(F32(beta2))
    return F32(lr * np.sqrt(1.0 - b2**t) / (1.0 - b1**t))


class NumpyTrainer:
    def __init__(self, run: common.RunDir, adam_v: str, adam_form: str = "keras"):
        self.adam_v = adam_v
        self.normalize = run.normalize
        self.table = run.initial_table.copy()
        self.m = np.zeros_like(self.table)
        self.v = np.zeros_like(self.table)
        w, b = run.initial_dense
        self.dense = np.array([w, b], dtype=F32)
        self.dense_m = np.zeros(2, F32)
        self.dense_v = np.zeros(2, F32)
        self.pa = run.pair_ids[:, 0].astype(np.intp)
        self.pb = run.pair_ids[:, 1].astype(np.intp)
        self.labels = run.labels
        hp = run.adam()
        self.hp = hp
        if adam_form == "pytorch":
            self.adam = TorchFormAdam(hp["lr"], hp["beta1"], hp["beta2"], hp["epsilon"])
        else:
            self.adam = Adam(hp["beta1"], hp["beta2"], hp["epsilon"])
        self.t = 0
        self.grad = np.zeros_like(self.table)
        self.grad_sq = np.zeros_like(self.table)

    def step(self, ids: np.ndarray) -> float:
        """One training step on pair ids `ids`; returns the batch's loss SUM (float64)."""
        a, b, y = self.pa[ids], self.pb[ids], self.labels[ids]
        ea, eb = self.table[a], self.table[b]
        w, bias = self.dense[0], self.dense[1]
        if self.normalize:
            ss_a = np.einsum("ij,ij->i", ea, ea)
            ss_b = np.einsum("ij,ij->i", eb, eb)
            inv_a = F32(1) / np.sqrt(np.maximum(ss_a, NORMALIZE_EPS))
            inv_b = F32(1) / np.sqrt(np.maximum(ss_b, NORMALIZE_EPS))
            na, nb = ea * inv_a[:, None], eb * inv_b[:, None]
        else:
            na, nb = ea, eb
        diff = na - nb
        dist = np.einsum("ij,ij->i", diff, diff)
        # Stable BCE from the logit (tf.nn.sigmoid_cross_entropy_with_logits).
        z = w * dist + bias
        t = np.exp(-np.abs(z))
        prob = np.where(z >= 0, F32(1) / (F32(1) + t), t / (F32(1) + t))
        loss = np.maximum(z, F32(0)) - z * y + np.log1p(t)
        dlogit = (prob - y) * (F32(1) / F32(len(ids)))  # the loss is the batch mean
        ddist = dlogit * w
        # dL/dn_a = 2 ddist (n_a - n_b) = -dL/dn_b; through n = e/||e||: (g - n<n,g>)/||e||.
        if self.normalize:
            dot_a = np.einsum("ij,ij->i", na, diff) * (ss_a > NORMALIZE_EPS)
            dot_b = np.einsum("ij,ij->i", nb, diff) * (ss_b > NORMALIZE_EPS)
            ga = (F32(2) * ddist * inv_a)[:, None] * (diff - na * dot_a[:, None])
            gb = (F32(-2) * ddist * inv_b)[:, None] * (diff - nb * dot_b[:, None])
        else:
            ga = (F32(2) * ddist)[:, None] * diff
            gb = (F32(-2) * ddist)[:, None] * diff
        grad = self.grad
        grad.fill(0)
        np.add.at(grad, a, ga)
        np.add.at(grad, b, gb)
        if self.adam_v == "lookups":
            g2 = self.grad_sq
            g2.fill(0)
            np.add.at(g2, a, ga * ga)
            np.add.at(g2, b, gb * gb)
        else:
            g2 = grad * grad
        dense_grad = np.array([np.dot(dlogit, dist), dlogit.sum()], dtype=F32)

        self.t += 1
        self.adam.t = self.t
        s = step_size(self.hp["lr"], self.hp["beta1"], self.hp["beta2"], self.t)
        self.adam.update(self.table, self.m, self.v, grad, g2, s)
        self.adam.update(self.dense, self.dense_m, self.dense_v, dense_grad, dense_grad * dense_grad, s)
        return float(loss.sum(dtype=np.float64))


def main() -> int:
    ap = common.base_parser(__doc__.splitlines()[0])
    ap.add_argument("--adam-v", choices=["rows", "lookups"], default=None, help="default: the run's adam_v")
    ap.add_argument("--adam-form", choices=["keras", "pytorch"], default="keras",
                    help="pytorch: torch.optim.Adam's eps placement (to cross-check torch_peer; the engine is keras)")
    ap.add_argument("--check", action="store_true",
                    help="compare per-epoch losses with metrics.csv and the final table with snapshots.npy")
    ap.add_argument("--save-final", default=None, help="write the final table to this .npy (for cross-checks)")
    ap.add_argument("--loss-rtol", type=float, default=1e-4)
    ap.add_argument("--table-atol", type=float, default=1e-3)
    args = ap.parse_args()

    setup_start = common.now()
    run = common.load_run(args.run_dir)
    epochs = args.epochs or run.epochs
    adam_v = args.adam_v or run.adam_v
    # Every epoch's order up front, outside the timed region (the engine computes it in its kernels).
    orders = common.epoch_orders(run.pairs, run.seed, epochs)
    bounds = common.steps_of(run.pairs, run.batch)
    trainer = NumpyTrainer(run, adam_v, args.adam_form)
    setup_s = common.now() - setup_start

    losses = []
    start = common.now()
    for e in range(epochs):
        order = orders[e]
        total = 0.0
        for lo, hi in bounds:
            total += trainer.step(order[lo:hi])
        losses.append(total / run.pairs)
        if not args.quiet and (e + 1) % max(1, epochs // 10) == 0:
            common.log(args.quiet, f"epoch {e + 1}/{epochs} loss {losses[-1]:.6f}")
    train_s = common.now() - start

    if args.save_final:
        np.save(args.save_final, trainer.table)

    ok = True
    extra = {}
    if args.check:
        engine = run.engine_losses()
        comparable = adam_v == run.adam_v and args.adam_form == "keras"
        if not comparable:
            print(f"note: run was made with --adam-v {run.adam_v} (keras form), this is {adam_v} "
                  f"({args.adam_form} form): not expected to match", file=sys.stderr)
        worst = 0.0
        print(f"{'epoch':>5} {'numpy loss':>14} {'cudaembed loss':>14} {'rel diff':>10}", file=sys.stderr)
        for e, loss in enumerate(losses):
            if e < len(engine):
                rd = common.relative_diff(loss, engine[e])
                worst = max(worst, rd)
                print(f"{e + 1:>5} {loss:>14.9f} {engine[e]:>14.9f} {rd:>10.2e}", file=sys.stderr)
        extra["max_loss_rel_diff"] = worst
        ok = comparable and worst <= args.loss_rtol and len(engine) >= len(losses)
        if run.final_table is not None and epochs == run.epochs:
            tdiff = float(np.max(np.abs(trainer.table - run.final_table)))
            extra["max_table_abs_diff"] = tdiff
            print(f"final table: max |numpy - snapshots[-1]| = {tdiff:.3e} (tolerance {args.table_atol:g})",
                  file=sys.stderr)
            ok = ok and tdiff <= args.table_atol
        dw = abs(float(trainer.dense[0]) - float(run.run["final"]["dense_weight"]))
        db = abs(float(trainer.dense[1]) - float(run.run["final"]["dense_bias"]))
        extra["dense_abs_diff"] = max(dw, db) if epochs == run.epochs else None
        print(f"per-epoch loss: max relative diff {worst:.3e} (tolerance {args.loss_rtol:g}); "
              f"dense w,b diff {dw:.2e},{db:.2e}  -> {'PASS' if ok else 'FAIL'}", file=sys.stderr)
        extra["check"] = "pass" if ok else "fail"

    common.report({
        "peer": "numpy_reference",
        "device": "cpu: " + common.cpu_name(),
        "epochs": epochs,
        "steps": epochs * len(bounds),
        "train_seconds": train_s,
        "setup_seconds": setup_s,
        "final_loss": losses[-1],
        "adam_v": adam_v,
        "adam_form": args.adam_form,
        "numpy": np.__version__,
        **common.engine_reference(run, epochs),
        **extra,
    })
    return 0 if ok else 1


if __name__ == "__main__":
    sys.exit(main())
