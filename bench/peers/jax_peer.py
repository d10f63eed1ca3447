#!/usr/bin/env python3
"""JAX peer of cudaembed's training: one jax.jit per epoch (jax.lax.scan over the full batches,
the last partial batch through a second jitted step), autodiff gradients, Adam written by hand in
jnp in Keras's form with the textbook "rows" second moment, float32.

    python bench/peers/jax_peer.py RUN_DIR [--epochs E]

Compare with a cudaembed run made with `--adam-v rows`. Both functions are compiled ahead of time
(jit(...).lower(...).compile()) and run once on a throw-away copy of the state: that is
setup_seconds; train_seconds is the steady-state training from the run's initial weights.
"""

from __future__ import annotations

import sys
from pathlib import Path

import numpy as np

sys.path.insert(0, str(Path(__file__).resolve().parent))
import common  # noqa: E402

try:
    import jax
    import jax.numpy as jnp
except ImportError as exc:  # reported as a skip by run_all.sh
    print(f"jax_peer: jax is not installed ({exc})", file=sys.stderr)
    sys.exit(3)

F32 = np.float32


def make_functions(normalize: bool, hp: dict):
    lr = F32(hp["lr"])
    beta1, beta2 = F32(hp["beta1"]), F32(hp["beta2"])
    omb1 = F32(1.0 - float(beta1))  # as math.hpp: 1 - beta in double, rounded once
    omb2 = F32(1.0 - float(beta2))
    eps = F32(hp["epsilon"])
    # 1 - beta^t as -expm1(t * log(beta)), log(beta) from double: float32 `1 - beta2**t` is off by
    # up to ~7e-6 relative in the first steps (cancellation, measured on the CPU); this form stays
    # within ~1.4e-7 of the engine's, which computes the step size in double.
    log_b1, log_b2 = F32(np.log(float(beta1))), F32(np.log(float(beta2)))

    def loss_fn(params, a, b, y):
        table, w, bias = params
        ea, eb = table[a], table[b]
        if normalize:  # tf.math.l2_normalize: x / sqrt(max(sum x^2, 1e-12))
            ea = ea * jax.lax.rsqrt(jnp.maximum(jnp.sum(ea * ea, axis=1, keepdims=True), F32(1e-12)))
            eb = eb * jax.lax.rsqrt(jnp.maximum(jnp.sum(eb * eb, axis=1, keepdims=True), F32(1e-12)))
        dist = jnp.sum(jnp.square(ea - eb), axis=1)
        z = w * dist + bias
        # softplus(z) - z*y == max(z,0) - z*y + log1p(exp(-|z|)) (jax.nn.softplus is logaddexp(z, 0),
        # that very formula), but with the exact gradient sigmoid(z) - y: autodiff of max and abs
        # gives 0.5 / 0 at z == 0, which happens (a == b pairs at the initial bias 0).
        loss = jax.nn.softplus(z) - z * y
        return jnp.mean(loss), jnp.sum(loss)  # the objective, and the batch's sum for the metric

    grad_fn = jax.value_and_grad(loss_fn, has_aux=True)

    def step(state, data, ids):
        params, m, v, t = state
        pa, pb, labels = data
        (_, loss_sum), grads = grad_fn(params, pa[ids], pb[ids], labels[ids])
        t = t + 1
        tf = t.astype(jnp.float32)
        alpha = lr * jnp.sqrt(-jnp.expm1(tf * log_b2)) / -jnp.expm1(tf * log_b1)
        # Keras's Adam on every parameter (dense update): g2 = g*g, the "rows" second moment.
        m = jax.tree.map(lambda m_, g: m_ + (g - m_) * omb1, m, grads)
        v = jax.tree.map(lambda v_, g: v_ + (g * g - v_) * omb2, v, grads)
        params = jax.tree.map(lambda p, m_, v_: p - (m_ * alpha) / (jnp.sqrt(v_) + eps), params, m, v)
        return (params, m, v, t), loss_sum

    def epoch(state, data, order_full):  # order_full: (steps, batch) int32
        return jax.lax.scan(lambda s, ids: step(s, data, ids), state, order_full)

    return jax.jit(epoch, donate_argnums=0), jax.jit(step, donate_argnums=0)


def main() -> int:
    ap = common.base_parser(__doc__.splitlines()[0])
    ap.add_argument("--save-final", default=None, help="write the final table to this .npy (for cross-checks)")
    args = ap.parse_args()

    load_start = common.now()
    run = common.load_run(args.run_dir)
    epochs = args.epochs or run.epochs
    B, P = run.batch, run.pairs
    full = P // B
    rest = P - full * B
    device = jax.devices()[0]
    # Every epoch's order up front with numpy, uploaded before timing (the engine computes it in
    # its kernels).
    orders = common.epoch_orders(P, run.seed, epochs).astype(np.int32)
    orders_full = jax.device_put(orders[:, : full * B].reshape(epochs, full, B), device) if full else None
    orders_rest = jax.device_put(orders[:, full * B:], device) if rest else None
    data = tuple(jax.device_put(x, device) for x in (run.pair_ids[:, 0].astype(np.int32),
                                                       run.pair_ids[:, 1].astype(np.int32), run.labels))
    w0, b0 = run.initial_dense

    def initial_state():
        params = (jnp.asarray(run.initial_table), jnp.asarray(F32(w0)), jnp.asarray(F32(b0)))
        zeros = jax.tree.map(jnp.zeros_like, params)
        return jax.device_put((params, zeros, jax.tree.map(jnp.zeros_like, params), jnp.asarray(0, jnp.int32)),
                              device)

    epoch_fn, step_fn = make_functions(run.normalize, run.adam())
    jax.block_until_ready((orders_full, orders_rest, data))
    load_s = common.now() - load_start

    # Setup: ahead-of-time compilation of both functions, then one warm-up epoch on a copy.
    setup_start = common.now()
    state = initial_state()
    epoch_c = epoch_fn.lower(state, data, orders_full[0]).compile() if full else None
    step_c = step_fn.lower(state, data, orders_rest[0]).compile() if rest else None
    compile_s = common.now() - setup_start
    if full:
        state, _ = epoch_c(state, data, orders_full[0])
    if rest:
        state, _ = step_c(state, data, orders_rest[0])
    jax.block_until_ready(state)
    state = initial_state()
    jax.block_until_ready(state)
    setup_s = common.now() - setup_start

    per_epoch = []
    start = common.now()
    for e in range(epochs):
        parts = []
        if full:
            state, sums = epoch_c(state, data, orders_full[e])
            parts.append(sums)
        if rest:
            state, s = step_c(state, data, orders_rest[e])
            parts.append(s)
        per_epoch.append(parts)
    jax.block_until_ready(state)
    train_s = common.now() - start

    losses = [sum(float(np.sum(np.asarray(x, dtype=np.float64))) for x in parts) / P for parts in per_epoch]
    for e, loss in enumerate(losses):
        if (e + 1) % max(1, epochs // 10) == 0:
            common.log(args.quiet, f"epoch {e + 1}/{epochs} loss {loss:.6f}")
    if args.save_final:
        np.save(args.save_final, np.asarray(state[0][0]))

    ref = common.engine_reference(run, epochs)
    if ref:
        ref["loss_rel_diff_vs_engine"] = common.relative_diff(losses[-1], ref["engine_final_loss"])
    common.report({
        "peer": "jax_scan",
        "device": "cpu: " + common.cpu_name() if device.platform == "cpu" else f"{device.platform}: {device.device_kind}",
        "epochs": epochs,
        "steps": epochs * (full + (1 if rest else 0)),
        "train_seconds": train_s,
        "setup_seconds": setup_s,
        "final_loss": losses[-1],
        "adam_v": "rows",
        "adam_form": "keras",
        "compile_seconds": compile_s,
        "load_seconds": load_s,
        "jax": jax.__version__,
        **ref,
    })
    return 0


if __name__ == "__main__":
    sys.exit(main())
