#!/usr/bin/env python3
"""Produce tests/golden/keras_golden.txt with real TensorFlow/Keras on the CPU.

The golden file pins down what the Keras tutorial model (shared Embedding ->
optional L2 normalisation -> squared distance -> Dense(1, sigmoid), trained with
binary cross-entropy and Adam via train_on_batch) does for a few small, fixed
cases, so the C++ CPU reference can be checked against it.

Besides the golden file, the script:
  * asserts sanity conditions (weights move; for case hot_row, a row absent
    from the last batch still moves in the last step, i.e. Adam is dense);
  * re-implements the step-0 forward loss in numpy and checks it against the
    loss Keras returned;
  * probes which BCE path Keras used (logit path vs clipped probabilities);
  * re-runs the whole training in float64 numpy (dense Adam, Keras formulas)
    and prints the max abs difference of the final weights vs Keras, together
    with a "lazy" (sparse-row) Adam variant for contrast.
Those diagnostics go to stdout only, never into the golden file.

Usage:  python tests/golden/make_keras_golden.py [output_path]
(see tests/golden/README.md for the pinned environment).
"""

import os

# Force CPU and determinism before TensorFlow is imported.
os.environ["CUDA_VISIBLE_DEVICES"] = ""
os.environ["TF_DETERMINISTIC_OPS"] = "1"
os.environ["TF_ENABLE_ONEDNN_OPTS"] = "0"  # plain Eigen kernels: stabler bits
os.environ.setdefault("TF_CPP_MIN_LOG_LEVEL", "2")
os.environ.setdefault("KERAS_BACKEND", "tensorflow")

import datetime  # noqa: E402
import platform  # noqa: E402
import sys  # noqa: E402

import numpy as np  # noqa: E402
import tensorflow as tf  # noqa: E402
import keras  # noqa: E402

tf.config.experimental.enable_op_determinism()
tf.config.set_visible_devices([], "GPU")
keras.backend.set_floatx("float32")
keras.utils.set_random_seed(1234)

HERE = os.path.dirname(os.path.abspath(__file__))
DEFAULT_OUT = os.path.join(HERE, "keras_golden.txt")


def f9(x):
    """Format a float32 value so that it round-trips exactly (%.9g)."""
    return "%.9g" % float(np.float32(x))


# --------------------------------------------------------------------------
# Case definitions (all data generated with seeded numpy).
# --------------------------------------------------------------------------


def epoch_batches(rng, P, batch, epochs):
    steps = []
    for _ in range(epochs):
        perm = rng.permutation(P)
        for s in range(0, P, batch):
            steps.append([int(i) for i in perm[s:s + batch]])
    return steps


def random_pairs(rng, N, P, p_one=0.3):
    a = rng.integers(0, N, size=P)
    b = rng.integers(0, N, size=P)
    y = (rng.random(P) < p_one).astype(np.int64)
    return [(int(a[i]), int(b[i]), int(y[i])) for i in range(P)]


def hot_row_pairs(rng, N, P, hot=3):
    """About half the pairs use row `hot` (one side or both, >= 2 with a==b==hot)."""
    pairs = []
    n_hot = P // 2
    n_both = 3
    others = [r for r in range(N) if r != hot]
    # The last 4 rows are rare so that several rows are absent from a batch
    # (their Adam moments still decay and they still move: dense Adam).
    wts = np.array([0.25 if r >= N - 4 else 1.0 for r in others])
    wts /= wts.sum()
    for i in range(n_hot):
        if i < n_both:
            a, b = hot, hot
        else:
            o = int(rng.choice(others, p=wts))
            a, b = (hot, o) if rng.random() < 0.5 else (o, hot)
        pairs.append((a, b, int(rng.random() < 0.3)))
    for _ in range(P - n_hot):
        a = int(rng.choice(others, p=wts))
        b = int(rng.choice(others, p=wts))
        pairs.append((a, b, int(rng.random() < 0.3)))
    order = rng.permutation(P)
    return [pairs[i] for i in order]


def make_case(name, seed, N, D, normalize, P, batch, epochs, kernel, bias,
              lr=0.01, b1=0.9, b2=0.999, eps=1e-7, hot=False):
    rng = np.random.default_rng(seed)
    pairs = hot_row_pairs(rng, N, P) if hot else random_pairs(rng, N, P)
    table = rng.uniform(-0.5, 0.5, size=(N, D)).astype(np.float32)
    steps = epoch_batches(rng, P, batch, epochs)
    return dict(name=name, N=N, D=D, normalize=normalize, pairs=pairs,
                table=table, kernel=np.float32(kernel), bias=np.float32(bias),
                lr=lr, b1=b1, b2=b2, eps=eps, steps=steps)


def all_cases():
    return [
        make_case("d2_plain", 101, N=10, D=2, normalize=0, P=60, batch=16,
                  epochs=3, kernel=-1.3, bias=0.1),
        make_case("d3_normalized", 202, N=12, D=3, normalize=1, P=50,
                  batch=16, epochs=2, kernel=-0.7, bias=0.05),
        make_case("hot_row", 303, N=20, D=4, normalize=0, P=64, batch=32,
                  epochs=3, kernel=0.8, bias=-0.2, hot=True),
        make_case("d1_default_lr", 404, N=6, D=1, normalize=0, P=40, batch=8,
                  epochs=2, kernel=-1.0, bias=0.0, lr=0.001),
    ]


# --------------------------------------------------------------------------
# Keras model (the tutorial's).
# --------------------------------------------------------------------------


def build_model(N, D, normalize, lr, b1, b2, eps):
    a_in = keras.Input(shape=(1,), dtype="int32", name="a")
    b_in = keras.Input(shape=(1,), dtype="int32", name="b")
    emb = keras.layers.Embedding(N, D, name="embedding")
    flat = keras.layers.Flatten(name="flatten")
    ea = flat(emb(a_in))
    eb = flat(emb(b_in))
    if normalize:
        l2 = keras.layers.Lambda(lambda x: tf.math.l2_normalize(x, axis=1),
                                 output_shape=(D,), name="l2norm")
        ea = l2(ea)
        eb = l2(eb)
    dist = keras.layers.Lambda(
        lambda t: tf.reduce_sum(tf.square(t[0] - t[1]), axis=1, keepdims=True),
        output_shape=(1,), name="sqdist")([ea, eb])
    out = keras.layers.Dense(1, activation="sigmoid", name="dense")(dist)
    model = keras.Model(inputs=[a_in, b_in], outputs=out)
    model.compile(
        optimizer=keras.optimizers.Adam(learning_rate=lr, beta_1=b1,
                                        beta_2=b2, epsilon=eps),
        loss="binary_crossentropy",
        metrics=["mse", "accuracy"],
    )
    return model


def get_w(model):
    t = np.array(model.get_layer("embedding").get_weights()[0], np.float32)
    k, b = model.get_layer("dense").get_weights()
    return t.copy(), np.float32(k.reshape(())), np.float32(b.reshape(()))


def set_w(model, table, kernel, bias):
    model.get_layer("embedding").set_weights([np.asarray(table, np.float32)])
    model.get_layer("dense").set_weights([
        np.full((1, 1), kernel, np.float32), np.full((1,), bias, np.float32)])


def batch_arrays(case, idx):
    pr = case["pairs"]
    a = np.array([[pr[i][0]] for i in idx], np.int32)
    b = np.array([[pr[i][1]] for i in idx], np.int32)
    y = np.array([[pr[i][2]] for i in idx], np.float32)
    return a, b, y


def run_keras(case):
    model = build_model(case["N"], case["D"], case["normalize"], case["lr"],
                        case["b1"], case["b2"], case["eps"])
    set_w(model, case["table"], case["kernel"], case["bias"])
    t0, k0, c0 = get_w(model)
    assert np.array_equal(t0, case["table"]) and k0 == case["kernel"] \
        and c0 == case["bias"], "set_weights did not take"
    losses = []
    before_last = after_last = None
    for s, idx in enumerate(case["steps"]):
        a, b, y = batch_arrays(case, idx)
        if s == len(case["steps"]) - 1:
            before_last = get_w(model)
        logs = model.train_on_batch(x=[a, b], y=y, return_dict=True)
        losses.append(np.float32(logs["loss"]))
    after_last = get_w(model)
    return dict(model=model, losses=losses, final=after_last,
                before_last=before_last, jit=model.jit_compile)


# --------------------------------------------------------------------------
# numpy float64 re-implementation.
# --------------------------------------------------------------------------


def np_forward_backward(T, w, c, a, b, y, normalize, want_grad=True):
    xa, xb = T[a], T[b]
    if normalize:
        sa = np.maximum(np.sum(xa * xa, axis=1, keepdims=True), 1e-12)
        sb = np.maximum(np.sum(xb * xb, axis=1, keepdims=True), 1e-12)
        ea, eb = xa / np.sqrt(sa), xb / np.sqrt(sb)
    else:
        ea, eb = xa, xb
    diff = ea - eb
    d = np.sum(diff * diff, axis=1)
    z = w * d + c
    loss_vec = np.maximum(z, 0) - z * y + np.log1p(np.exp(-np.abs(z)))
    loss = loss_vec.mean()
    if not want_grad:
        return loss, z
    B = len(a)
    p = 1.0 / (1.0 + np.exp(-z))
    dz = (p - y) / B
    gw = np.sum(dz * d)
    gc = np.sum(dz)
    dd = dz * w
    gea = 2.0 * diff * dd[:, None]
    geb = -gea
    if normalize:
        # y = x / |x| (|x|^2 > eps): dx = (g - y (y.g)) / |x|
        gxa = (gea - ea * np.sum(ea * gea, axis=1, keepdims=True)) / np.sqrt(sa)
        gxb = (geb - eb * np.sum(eb * geb, axis=1, keepdims=True)) / np.sqrt(sb)
    else:
        gxa, gxb = gea, geb
    gT = np.zeros_like(T)
    np.add.at(gT, a, gxa)
    np.add.at(gT, b, gxb)
    # Sum over lookups (2 per pair: the a side and the b side) of the squared
    # per-lookup gradient, i.e. the square taken BEFORE duplicates are summed.
    gT2 = np.zeros_like(T)
    np.add.at(gT2, a, gxa * gxa)
    np.add.at(gT2, b, gxb * gxb)
    return loss, gT, gw, gc, gT2


def run_numpy(case, mode="dense"):
    """Float64 re-implementation of the whole training.

    mode="dense":  textbook dense Adam with the Keras formulas, every row of
                   the table updated every step, g = summed table gradient.
    mode="lazy":   like dense, but only rows present in the batch have their
                   moments and values updated (sparse/"lazy" Adam), for contrast.
    mode="keras":  dense update, but the table's second moment is fed with the
                   sum over lookups of the per-lookup squared gradient
                   (sum_k g_k^2 instead of (sum_k g_k)^2), which is what Keras 3
                   does with the tf.IndexedSlices gradient of an Embedding.
    mode="keras_lazy": the "keras" second moment with lazy row updates.
    """
    lazy = mode in ("lazy", "keras_lazy")
    sparse_sq = mode in ("keras", "keras_lazy")
    T = case["table"].astype(np.float64)
    w = float(case["kernel"])
    c = float(case["bias"])
    lr, b1, b2, eps = case["lr"], case["b1"], case["b2"], case["eps"]
    params = [T, np.array(w), np.array(c)]
    ms = [np.zeros_like(p) for p in params]
    vs = [np.zeros_like(p) for p in params]
    losses = []
    pr = case["pairs"]
    for t, idx in enumerate(case["steps"], start=1):
        a = np.array([pr[i][0] for i in idx])
        b = np.array([pr[i][1] for i in idx])
        y = np.array([pr[i][2] for i in idx], np.float64)
        loss, gT, gw, gc, gT2 = np_forward_backward(
            params[0], float(params[1]), float(params[2]), a, b, y,
            case["normalize"])
        losses.append(loss)
        grads = [gT, np.array(gw), np.array(gc)]
        sq = [gT2 if sparse_sq else gT * gT, np.array(gw * gw),
              np.array(gc * gc)]
        alpha = lr * np.sqrt(1 - b2 ** t) / (1 - b1 ** t)
        for j, (p, g) in enumerate(zip(params, grads)):
            if lazy and j == 0:
                rows = np.unique(np.concatenate([a, b]))
                m, v = ms[0], vs[0]
                m[rows] += (g[rows] - m[rows]) * (1 - b1)
                v[rows] += (sq[0][rows] - v[rows]) * (1 - b2)
                p[rows] -= m[rows] * alpha / (np.sqrt(v[rows]) + eps)
            else:
                ms[j] += (g - ms[j]) * (1 - b1)
                vs[j] += (sq[j] - vs[j]) * (1 - b2)
                p -= ms[j] * alpha / (np.sqrt(vs[j]) + eps)
    return dict(losses=losses, final=(params[0], float(params[1]),
                                      float(params[2])))


def max_abs_diff(fa, fb):
    return max(float(np.max(np.abs(np.asarray(fa[0], np.float64) -
                                   np.asarray(fb[0], np.float64)))),
               abs(float(fa[1]) - float(fb[1])),
               abs(float(fa[2]) - float(fb[2])))


# --------------------------------------------------------------------------
# BCE path probe.
# --------------------------------------------------------------------------


def probe_bce_path():
    """Return 'logit' or 'clipped' depending on how Keras computed the BCE.

    Uses the same model/compile as the golden cases with an extreme logit
    (z ~ +50, label 0): the logit path gives loss ~= 50, the probability path
    clipped to [1e-7, 1-1e-7] gives -log(1e-7) ~= 16.118.
    """
    model = build_model(2, 1, 0, 0.01, 0.9, 0.999, 1e-7)
    set_w(model, np.array([[0.0], [1.0]], np.float32), 50.0, 0.0)
    a = np.array([[0]], np.int32)
    b = np.array([[1]], np.int32)
    y = np.array([[0.0]], np.float32)
    logs = model.test_on_batch(x=[a, b], y=y, return_dict=True)
    loss = float(logs["loss"])
    if abs(loss - 50.0) < 1e-3:
        return "logit", loss
    if abs(loss - (-np.log(1e-7))) < 1e-2:
        return "clipped", loss
    return "unknown", loss


# --------------------------------------------------------------------------
# Main.
# --------------------------------------------------------------------------


def main():
    out_path = sys.argv[1] if len(sys.argv) > 1 else DEFAULT_OUT
    print("tensorflow", tf.__version__, "keras", keras.__version__,
          "numpy", np.__version__, "python", platform.python_version())
    print("GPUs visible to TF:", tf.config.get_visible_devices("GPU"))

    bce_path, probe_loss = probe_bce_path()
    print(f"BCE path probe: loss for z=50,y=0 is {probe_loss:.6g} -> {bce_path}"
          " (logit path gives 50, clipped-probability path gives 16.118)")

    cases = all_cases()
    results = []
    for case in cases:
        kr = run_keras(case)
        T1, k1, c1 = kr["final"]
        name = case["name"]

        # --- sanity: weights moved
        assert not np.array_equal(T1, case["table"]), f"{name}: table unchanged"
        assert k1 != case["kernel"], f"{name}: kernel unchanged"
        assert c1 != case["bias"], f"{name}: bias unchanged"
        assert all(np.isfinite(kr["losses"])), f"{name}: non-finite loss"

        # --- dense Adam: rows absent from the last batch still moved
        pr = case["pairs"]
        last = case["steps"][-1]
        present = {pr[i][0] for i in last} | {pr[i][1] for i in last}
        absent = [r for r in range(case["N"]) if r not in present]
        Tb = kr["before_last"][0]
        moved_absent = [r for r in absent if not np.array_equal(Tb[r], T1[r])]
        print(f"[{name}] rows absent from last batch: {absent}; "
              f"of those moved in the last step: {moved_absent}")
        if name == "hot_row":
            assert absent, "hot_row: every row appears in the last batch"
            assert moved_absent, \
                "hot_row: no absent row moved in the last step (Adam not dense?)"

        # --- independent numpy forward loss at step 0
        a0, b0, y0 = batch_arrays(case, case["steps"][0])
        l_np, z0 = np_forward_backward(
            case["table"].astype(np.float64), float(case["kernel"]),
            float(case["bias"]), a0[:, 0], b0[:, 0], y0[:, 0].astype(np.float64),
            case["normalize"], want_grad=False)
        p0 = np.clip(1.0 / (1.0 + np.exp(-z0)), 1e-7, 1 - 1e-7)
        yy = y0[:, 0].astype(np.float64)
        l_clip = float(np.mean(-(yy * np.log(p0) + (1 - yy) * np.log(1 - p0))))
        lk = float(kr["losses"][0])
        rel = abs(lk - l_np) / abs(l_np)
        rel_clip = abs(lk - l_clip) / abs(l_clip)
        print(f"[{name}] step-0 loss keras={lk:.9g} numpy-logit={l_np:.9g} "
              f"(rel {rel:.2e}) numpy-clipped={l_clip:.9g} (rel {rel_clip:.2e})")
        assert rel < 1e-5, f"{name}: step-0 loss mismatch (rel {rel})"

        # --- float64 numpy training, dense and lazy Adam
        diffs = {}
        for mode in ("keras", "keras_lazy", "dense", "lazy"):
            nr = run_numpy(case, mode=mode)
            dw = max_abs_diff(nr["final"], kr["final"])
            dloss = max(abs(float(x) - float(y))
                        for x, y in zip(nr["losses"], kr["losses"]))
            diffs[mode] = (dw, dloss)
        print(f"[{name}] jit_compile={kr['jit']} steps={len(case['steps'])} "
              "max|numpy float64 - keras| (final weights / per-step losses): "
              + "; ".join(f"{m}-Adam {d[0]:.3e} / {d[1]:.3e}"
                          for m, d in diffs.items()))
        # The float64 model of Keras's behaviour must reproduce it closely.
        assert diffs["keras"][0] < 1e-4, \
            f"{name}: numpy model of Keras Adam does not match Keras"
        results.append((case, kr))

    # --- write the golden file
    today = datetime.datetime.now(datetime.timezone.utc).strftime("%Y-%m-%d")
    lines = [
        "# cudaembed keras golden v1",
        f"# produced by tests/golden/make_keras_golden.py on {today} with "
        f"tensorflow {tf.__version__}, keras {keras.__version__}, "
        f"numpy {np.__version__}, python {platform.python_version()}",
        "# losses: value returned by train_on_batch for each step = mean BCE "
        f"of that batch at the weights before the step (Keras BCE path: "
        f"{bce_path}); Adam is dense (all rows updated every step)",
        "# note: Keras feeds the table's Adam v with sum over lookups of "
        "squared per-lookup grads (IndexedSlices), m with the summed grad",
    ]
    for case, kr in results:
        lines.append(f"case {case['name']}")
        lines.append(f"rows {case['N']}")
        lines.append(f"dims {case['D']}")
        lines.append(f"normalize {case['normalize']}")
        lines.append(f"adam {case['lr']!r} {case['b1']!r} {case['b2']!r} "
                     f"{case['eps']!r}")
        lines.append(f"pairs {len(case['pairs'])}")
        for a, b, y in case["pairs"]:
            lines.append(f"{a} {b} {y}")
        lines.append("table")
        for row in case["table"]:
            lines.append(" ".join(f9(x) for x in row))
        lines.append(f"dense {f9(case['kernel'])} {f9(case['bias'])}")
        lines.append(f"steps {len(case['steps'])}")
        for idx in case["steps"]:
            lines.append(f"batch {len(idx)} " + " ".join(str(i) for i in idx))
        lines.append("losses " + " ".join(f9(x) for x in kr["losses"]))
        lines.append("final_table")
        T1, k1, c1 = kr["final"]
        for row in T1:
            lines.append(" ".join(f9(x) for x in row))
        lines.append(f"final_dense {f9(k1)} {f9(c1)}")
        lines.append("end")
    with open(out_path, "w") as f:
        f.write("\n".join(lines) + "\n")
    print(f"wrote {out_path} ({os.path.getsize(out_path)} bytes)")


if __name__ == "__main__":
    main()
