"""fit() and fit_colours(): what they train, what they refuse, callbacks, Ctrl-C, save() and the CLI.

Comparisons with the CLI train on device="cpu" on both sides: the CPU backend is bit-reproducible,
so the same request must give the same bytes.
"""

import json
import signal
import subprocess
import sys
import threading
import time

import numpy as np
import pytest

import cudaembed
from conftest import run_cli

NAMES = ["ant", "bee", "cat", "dog", "eel", "fox", "gnu", "hen"]


def named_pairs():
    """400 labelled pairs of 8 names with a hot row, as tests/test_api.cpp's pairs file."""
    a = [NAMES[i % 8] for i in range(400)]
    b = [NAMES[(i * 5 + 1) % 8] for i in range(400)]
    labels = [float(i % 3 == 0) for i in range(400)]
    return a, b, labels


def test_fit_integer_ids():
    rng = np.random.default_rng(3)
    a, b = rng.integers(0, 50, size=2000), rng.integers(0, 50, size=2000)
    labels = (np.abs(a - b) < 10).astype(np.float32)
    model = cudaembed.fit(a, b, labels, dims=4, epochs=6, batch=128, device="cpu")
    assert model.vectors.shape == (50, 4) and model.vectors.dtype == np.float32
    assert model.vocab == [str(i) for i in range(50)]
    assert model.history["epoch"] == [1, 2, 3, 4, 5, 6]
    assert all(len(model.history[k]) == 6 for k in ("loss", "mse", "accuracy", "seconds"))
    assert model.history["loss"][-1] < model.history["loss"][0]
    # rows makes a larger table than the ids need; a list of ints works as an array does.
    wider = cudaembed.fit(list(a), list(b), list(labels), rows=60, dims=4, epochs=1, batch=128, device="cpu")
    assert wider.vectors.shape == (60, 4)


def test_epochs_and_batch_given_win_over_the_poincare_defaults():
    a, b = ["c1", "c2", "c3", "c4"] * 5, ["r", "r", "c1", "c2"] * 5
    given = cudaembed.fit(a, b, head="poincare", negatives=2, dims=2, epochs=3, batch=4, device="cpu")
    assert given.history["epoch"] == [1, 2, 3]
    default = cudaembed.fit(a, b, head="poincare", negatives=2, dims=2, device="cpu")
    assert len(default.history["epoch"]) == 100  # PoincareDefaults, as `cudaembed train --head poincare`


def test_vectors_are_a_view_not_a_copy():
    model = cudaembed.fit([0, 1, 2], [1, 2, 0], negatives=1, epochs=2, batch=2, device="cpu")
    first, second = model.vectors, model.vectors
    assert np.shares_memory(first, second) and not first.flags.owndata and not first.flags.writeable


def test_fit_names_trains_what_the_cli_trains_on_the_same_csv(cli, tmp_path):
    a, b, labels = named_pairs()
    csv_path = tmp_path / "pairs.csv"
    csv_path.write_text("a,b,label\n" + "".join(f"{x},{y},{int(l)}\n" for x, y, l in zip(a, b, labels)))
    run_cli(cli, "train", "--pairs-file", csv_path, "--device", "cpu", "--epochs", 5, "--batch", 64, "--dims", 3,
            "--no-plot", "--out", tmp_path / "cli")
    model = cudaembed.fit(a, b, labels, dims=3, epochs=5, batch=64, device="cpu")
    assert model.vocab == list(dict.fromkeys(name for pair in zip(a, b) for name in pair))  # a before b
    model.save(tmp_path / "py", plot=False)
    for name in ("embedding.npy", "vocab.tsv", "metadata.tsv", "vectors.tsv"):
        assert (tmp_path / "py" / name).read_bytes() == (tmp_path / "cli" / name).read_bytes(), name


def test_fit_colours_gives_the_clis_table_bit_for_bit(cli, tmp_path):
    for args, kwargs in ((["--epochs", 3], {}), (["--epochs", 2, "--dims", 3, "--normalize", "--seed", 7],
                                                 {"dims": 3, "normalize": True, "seed": 7})):
        out = tmp_path / f"cli{len(args)}"
        run_cli(cli, "train", "--device", "cpu", *args, "--no-plot", "--out", out)
        model = cudaembed.fit_colours(epochs=args[1], device="cpu", **kwargs)
        cli_table = np.load(out / "embedding.npy")
        assert model.vectors.tobytes() == cli_table.tobytes()
        saved = tmp_path / f"py{len(args)}"
        model.save(saved, plot=False)
        assert (saved / "embedding.npy").read_bytes() == (out / "embedding.npy").read_bytes()
        cli_metrics = np.genfromtxt(out / "metrics.csv", delimiter=",", names=True)  # 9 significant digits
        np.testing.assert_allclose(model.history["loss"], cli_metrics["loss"], rtol=1e-8)


def test_threads_change_nothing_but_the_time():
    one = cudaembed.fit_colours(epochs=2, pairs=5000, device="cpu", threads=1)
    for threads in (2, 3):
        many = cudaembed.fit_colours(epochs=2, pairs=5000, device="cpu", threads=threads)
        assert many.vectors.tobytes() == one.vectors.tobytes()
        assert many.history["loss"] == one.history["loss"]
    with pytest.raises(cudaembed.Error, match="threads=-1"):
        cudaembed.fit_colours(epochs=1, pairs=500, device="cpu", threads=-1)


def test_callbacks_see_epochs_in_order_and_false_stops(tmp_path):
    seen = []

    def record(epoch, logs, vectors):
        seen.append((epoch, logs["loss"], vectors.copy()))

    def stop_after_3(epoch, logs, vectors):
        return epoch < 3

    model = cudaembed.fit_colours(epochs=10, pairs=5000, device="cpu", callbacks=[record, stop_after_3])
    assert [e for e, _, _ in seen] == [1, 2, 3]
    assert len(model.history["loss"]) == 3 and model.history["loss"] == [loss for _, loss, _ in seen]
    np.testing.assert_array_equal(seen[-1][2], model.vectors)  # the table after the last epoch trained
    assert not np.array_equal(seen[0][2], seen[-1][2])
    # The same table as a run planned for 3 epochs.
    three = cudaembed.fit_colours(epochs=3, pairs=5000, device="cpu")
    assert three.vectors.tobytes() == model.vectors.tobytes()


def test_an_exception_in_a_callback_stops_training_and_is_raised():
    calls = []

    def fails(epoch, logs, vectors):
        calls.append(epoch)
        raise RuntimeError("from the callback")

    with pytest.raises(RuntimeError, match="from the callback"):
        cudaembed.fit_colours(epochs=5, pairs=2000, device="cpu", callbacks=fails)
    assert calls == [1]


def test_validation_adds_val_loss():
    a, b, labels = named_pairs()
    seen = []
    model = cudaembed.fit(a, b, labels, epochs=4, batch=64, device="cpu", validation=0.2,
                          callbacks=lambda e, logs, v: seen.append(logs["val_loss"]))
    assert model.history["val_loss"] == seen and len(seen) == 4


def test_save_and_load_round_trip_and_the_cli_reads_it(cli, tmp_path):
    a, b, labels = named_pairs()
    model = cudaembed.fit(a, b, labels, dims=3, head="dot", optimizer="lazy-adam", epochs=4, batch=64, device="cpu")
    written = model.save(tmp_path / "run")
    assert {"embedding.npy", "run.json", "metrics.csv", "vocab.tsv", "plot.png"} <= set(written)
    loaded = cudaembed.load(tmp_path / "run")
    assert loaded.vectors.tobytes() == model.vectors.tobytes()
    assert loaded.vocab == model.vocab and loaded.head == "dot"
    assert loaded.history["epoch"] == model.history["epoch"]
    np.testing.assert_allclose(loaded.history["loss"], model.history["loss"], rtol=1e-8)
    assert loaded.most_similar("cat", topn=7) == model.most_similar("cat", topn=7)
    config = json.loads((tmp_path / "run" / "run.json").read_text())["config"]
    assert (config["head"], config["optimizer"], config["epochs"]) == ("dot", "lazy-adam", 4)
    printed = run_cli(cli, "neighbours", tmp_path / "run", "cat", "-k", 7).splitlines()[2:]
    assert [line.split()[1] for line in printed] == [n for n, _ in model.most_similar("cat", topn=7)]
    with pytest.raises(cudaembed.Error, match="not empty; pass overwrite=True"):
        model.save(tmp_path / "run")
    assert "embedding.npy" in model.save(tmp_path / "run", overwrite=True, plot=False)
    with pytest.raises(cudaembed.Error, match="holds it already"):
        loaded.save(tmp_path / "elsewhere")


def test_poincare_defaults_to_radam_and_ranks_by_its_distance(tmp_path):
    edges = [(0, 1), (0, 2), (1, 3), (1, 4), (2, 5), (2, 6), (0, 3), (0, 4), (0, 5), (0, 6)]
    a, b = np.array(edges).T
    model = cudaembed.fit(a, b, head="poincare", negatives=3, dims=2, epochs=20, device="cpu")
    model.save(tmp_path / "tree", plot=False)
    config = json.loads((tmp_path / "tree" / "run.json").read_text())["config"]
    assert (config["optimizer"], config["lr"], config["burn_in"], config["batch"]) == ("radam", 0.01, 10, 10)
    assert len(model.history["loss"]) == 20
    v = model.vectors.astype(np.float64)
    sq = ((v - v[0]) ** 2).sum(axis=1)
    dist = np.arccosh(1 + 2 * sq / ((1 - (v**2).sum(axis=1)) * (1 - (v[0] ** 2).sum())))
    got = model.most_similar(0, topn=6)
    assert [int(n) for n, _ in got] == sorted(range(1, 7), key=lambda j: (dist[j], j))
    np.testing.assert_allclose([s for _, s in got], sorted(dist[1:]), rtol=1e-5)


@pytest.mark.parametrize(
    "call, message",
    [
        (lambda: cudaembed.fit([0, 1, 2], [1, 2, 0], rows=2), "pair 1 has id 2, but there are 2 rows"),
        (lambda: cudaembed.fit([0, 1, 2], [1, 2]), "a has 3 ids but b has 2"),
        (lambda: cudaembed.fit(["x", "y"], ["y"]), "a has 2 names but b has 1"),
        (lambda: cudaembed.fit(["x", 1], ["y", "x"]), "a: mixes names"),
        (lambda: cudaembed.fit(["x", "y"], np.array([0, 1])), "a holds names"),
        (lambda: cudaembed.fit(["x", "y"], ["y", "x"], rows=5), "rows: only for integer ids"),
        (lambda: cudaembed.fit([0, -1], [1, 0]), "a: id -1 at index 1 is negative"),
        (lambda: cudaembed.fit([0.5, 1], [1, 0]), "a: expected integer ids or names"),
        (lambda: cudaembed.fit([0, 1], [1, 0], [1, 0, 1]), "3 labels for 2 pairs"),
        (lambda: cudaembed.fit([0, 1], [1, 0], [1, 0.5]), "pair 1 has label 0.5"),
        (lambda: cudaembed.fit([0, 1], [1, 0], head="manhattan"), "unknown head 'manhattan'"),
        (lambda: cudaembed.fit([0, 1], [1, 0], optimizer="lion"), "lion"),
        (lambda: cudaembed.fit([0, 1], [1, 0], head="poincare", optimizer="adam"), "poincare"),
        (lambda: cudaembed.fit([0, 1], [1, 0], dims=0), "dims=0: expected an integer >= 1"),
        (lambda: cudaembed.fit([0, 1], [1, 0], device="tpu"), "unknown device 'tpu'"),
        (lambda: cudaembed.fit([0, 1], [1, 0], validation=1.5), "validation=1.5"),
        (lambda: cudaembed.fit([], []), "no pairs"),
        (lambda: cudaembed.fit_colours(pairs=0), "pairs=0"),
        (lambda: cudaembed.set_log_level("loud"), "unknown level 'loud'"),
    ],
)
def test_bad_input_is_refused_with_a_message(call, message):
    with pytest.raises(cudaembed.Error, match=message):
        call()


def test_training_releases_the_gil():
    # Python code in this thread runs while another thread trains: the longest it waits between two
    # of its steps is far below the training's time (holding the GIL, it would be all of it).
    go, done = threading.Event(), threading.Event()
    result = {}

    def train():
        try:
            go.wait()  # once this thread is counting
            start = time.perf_counter()
            result["model"] = cudaembed.fit_colours(pairs=300000, epochs=20, device="cpu")
            result["seconds"] = time.perf_counter() - start
        finally:
            done.set()

    thread = threading.Thread(target=train)
    thread.start()
    longest_wait, last = 0.0, time.perf_counter()
    go.set()
    while not done.is_set():
        now = time.perf_counter()
        longest_wait, last = max(longest_wait, now - last), now
    longest_wait = max(longest_wait, time.perf_counter() - last)  # a wait that lasted to the end
    thread.join()
    assert "model" in result, "training failed (its exception is printed above)"
    assert result["seconds"] > 0.1, "training was too short to tell"
    assert longest_wait < 0.5 * result["seconds"], f"this thread waited {longest_wait:.3f} s of {result['seconds']:.3f} s"


CTRL_C_SCRIPT = """
import sys, cudaembed
def announce(epoch, logs, vectors):
    if epoch == 1:
        print("training", flush=True)
try:
    cudaembed.fit_colours(epochs=100000, device="cpu", callbacks=announce)
except KeyboardInterrupt:
    print("KeyboardInterrupt", flush=True)
    sys.exit(3)
"""


def test_ctrl_c_stops_training_and_raises_keyboard_interrupt():
    child = subprocess.Popen([sys.executable, "-c", CTRL_C_SCRIPT], stdout=subprocess.PIPE, text=True)
    try:
        assert child.stdout.readline().strip() == "training"
        child.send_signal(signal.SIGINT)
        start = time.perf_counter()
        out, _ = child.communicate(timeout=20)
    finally:
        child.kill()
    assert child.returncode == 3 and "KeyboardInterrupt" in out
    assert time.perf_counter() - start < 5, "training went on long after Ctrl-C"
