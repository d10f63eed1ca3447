"""cudaembed: train embedding tables from labelled pairs, on CUDA or the CPU.

    import cudaembed
    model = cudaembed.fit(["tea", "tea", "milk"], ["cup", "milk", "cow"], negatives=2, dims=8)
    model.vectors                 # (N, D) float32
    model.most_similar("tea")     # [(name, score), ...] in the head's own measure
    model.save("runs/drinks")     # the run directory `cudaembed train` writes
    cudaembed.load("runs/drinks")

The work is done by the C++ library (cudaembed._core); this package checks and converts arguments.
"""

from __future__ import annotations

import csv
import numbers
import os
import threading
from typing import Callable, NamedTuple, Sequence

import numpy as np

from . import _core
from ._core import Divergence, Error, set_log_level

__all__ = ["Colours", "Divergence", "Error", "Model", "colours", "fit", "fit_colours", "load", "set_log_level"]
__version__ = _core.__version__

_HEADS = ("euclidean", "dot", "cosine", "poincare")


def _bundled_csv() -> str:
    """The colour CSV shipped inside the package (a wheel's, or the build tree's copy); else the
    library's default (beside an installed CLI, or in the source tree it was built from)."""
    path = os.path.join(os.path.dirname(__file__), "data", "colours.csv")
    return path if os.path.exists(path) else _core.default_colours_csv()


class Colours(NamedTuple):
    names: list  # (N,) str
    rgb: np.ndarray  # (N, 3) float32 in [0, 1]


def colours(csv_path: str | os.PathLike | None = None) -> Colours:
    """The bundled colour table (X11's rgb.txt in the Kaggle CSV's columns), or another colour CSV."""
    names, rgb = _core.colours(os.fspath(csv_path) if csv_path is not None else _bundled_csv())
    return Colours(names, rgb)


class Model:
    """A trained table: vectors, vocab, history; most_similar, save, plot.

    Made by fit(), fit_colours() or load(); not constructed directly.
    """

    def __init__(self, core: _core.Model, history: dict, run_dir: str | None = None):
        self._core = core
        # Per-epoch lists, like Keras's History.history: epoch, loss, mse, accuracy, seconds, and
        # val_loss with validation.
        self.history = history
        self.run_dir = run_dir  # where the model was loaded from or last saved

    @property
    def vectors(self) -> np.ndarray:
        """(N, D) float32, read-only, without a copy: the rows as the model compares them
        (L2-normalised with normalize=True or head="cosine"), as embedding.npy holds them."""
        return self._core.vectors

    @property
    def vocab(self) -> list:
        """Row i's name: the names given, the colours', or the integer ids as text."""
        return self._core.names

    @property
    def head(self) -> str:
        return self._core.head

    @property
    def rgb(self) -> np.ndarray | None:
        """(N, 3) float32 colours of a colour model's rows; None for pairs of your own."""
        return self._core.rgb

    def __repr__(self) -> str:
        n, d = self.vectors.shape
        return f"<cudaembed.Model {n} {self._core.noun}s, D = {d}, head {self.head}>"

    def _row(self, name_or_row) -> int:
        if isinstance(name_or_row, (int, np.integer)) and not isinstance(name_or_row, bool):
            return int(name_or_row)
        if isinstance(name_or_row, str):
            return self._core.find_row(name_or_row)
        raise TypeError(f"most_similar: expected a name (str) or a row (int), got {type(name_or_row).__name__}")

    def most_similar(self, name_or_row, topn: int = 10) -> list:
        """The topn rows nearest to a row, as (name, score) pairs, ranked as `cudaembed neighbours`
        ranks them: by Euclidean (euclidean head) or Poincaré (poincare) distance, nearest first, or
        by the dot product (dot) or cosine similarity (cosine), most similar first."""
        names = self.vocab
        return [(names[row], score) for row, score in self._core.nearest(self._row(name_or_row), topn)]

    def save(self, run_dir: str | os.PathLike, *, overwrite: bool = False, plot: bool = True) -> list:
        """Writes the run directory `cudaembed train` writes (embedding.npy, metadata.tsv,
        metrics.csv, run.json, vocab.tsv, vectors.tsv, word2vec.txt, plot.png/.svg), which load()
        and the CLI's plot, neighbours and evaluate read. A directory holding files needs
        overwrite=True (a run's files are then replaced, others kept). Returns the names written."""
        path = os.fspath(run_dir)
        if not overwrite and os.path.isdir(path) and os.listdir(path):
            raise Error(f"save: {path} is not empty; pass overwrite=True to replace the run there")
        written = self._core.save(path, overwrite, plot)
        self.run_dir = path
        return written

    def plot(self, path: str | os.PathLike, *, labels=(), title: str | None = None, size: int = 900) -> list:
        """Draws the table as `cudaembed plot` does (PCA past D = 3), to PATH.png and PATH.svg (an
        extension .png or .svg on PATH is dropped first). Returns the two paths."""
        prefix = os.fspath(path)
        if prefix.endswith((".png", ".svg")):
            prefix = prefix[:-4]
        if title is None:
            n, d = self.vectors.shape
            name = os.path.basename(os.path.normpath(self.run_dir)) if self.run_dir else "cudaembed"
            title = f"{name}: {n} {self._core.noun}s, D = {d}"
        self._core.plot(prefix, list(labels), title, size)
        return [prefix + ".png", prefix + ".svg"]


def _read_history(run_dir: str) -> dict:
    """metrics.csv as a dict of per-epoch lists (epoch, loss, mse, accuracy, seconds[, val_loss])."""
    history: dict = {}
    path = os.path.join(run_dir, "metrics.csv")
    if not os.path.exists(path):
        return history
    with open(path, newline="") as f:
        for record in csv.DictReader(f):
            for key, value in record.items():
                history.setdefault(key, []).append(int(value) if key == "epoch" else float(value))
    return history


def _positive(name: str, value, minimum: int = 1) -> int:
    if isinstance(value, bool) or not isinstance(value, (int, np.integer)) or value < minimum:
        raise Error(f"{name}={value!r}: expected an integer >= {minimum}")
    return int(value)


def _ids(name: str, values) -> np.ndarray:
    """Integer ids as the uint32 array the library takes."""
    array = np.asarray(values)
    if array.ndim != 1:
        raise Error(f"{name}: expected a 1-D array of ids, got shape {array.shape}")
    if array.size and not np.issubdtype(array.dtype, np.integer):
        raise Error(f"{name}: expected integer ids or names (str), got dtype {array.dtype}")
    if array.size and array.min() < 0:
        raise Error(f"{name}: id {array.min()} at index {int(array.argmin())} is negative; ids are rows 0, 1, ...")
    if array.size and array.max() >= 2**32 - 1:
        raise Error(f"{name}: id {array.max()} is too large (ids are below 4294967295)")
    return np.ascontiguousarray(array, dtype=np.uint32)


def _names(side: str, values) -> np.ndarray | None:
    """values as a str array when they are names; None when they are not (ids)."""
    if isinstance(values, np.ndarray):
        if values.dtype.kind == "U":
            return values
        if values.dtype.kind != "O":
            return None
        values = values.tolist()
    values = list(values)
    strings = sum(isinstance(v, str) for v in values)
    if strings and strings < len(values):
        raise Error(f"{side}: mixes names (str) with other values; give names or integer ids")
    return np.array(values, dtype=str) if strings else None


def _vocabulary(a: np.ndarray, b: np.ndarray) -> tuple[np.ndarray, np.ndarray, list]:
    """Ids for names in order of first appearance, a before b in each pair: the ids a pairs CSV of
    the same names gets from `cudaembed train --pairs-file`."""
    if a.ndim != 1 or b.ndim != 1:
        raise Error(f"pairs: expected 1-D lists of names, got shapes {a.shape} and {b.shape}")
    if a.size != b.size:
        raise Error(f"pairs: a has {a.size} names but b has {b.size}")
    both = np.stack([a, b], axis=1).ravel()  # a0, b0, a1, b1, ...
    unique, first, inverse = np.unique(both, return_index=True, return_inverse=True)
    order = np.argsort(first, kind="stable")  # unique names by first appearance
    rank = np.empty_like(order)
    rank[order] = np.arange(order.size)
    ids = rank[inverse.ravel()].astype(np.uint32)
    return ids[0::2], ids[1::2], unique[order].tolist()


def _floats(name: str, values, pairs: int) -> np.ndarray | None:
    if values is None:
        return None
    array = np.ascontiguousarray(values, dtype=np.float32)
    if array.shape != (pairs,):
        raise Error(f"pairs: {array.size if array.ndim == 1 else array.shape} {name} for {pairs} pairs")
    return array


def _callback(callbacks) -> Callable | None:
    """One on_epoch(epoch, logs, vectors) over the callbacks given: each is called in turn, and any
    that returns False stops training after this epoch."""
    if callbacks is None:
        return None
    if callable(callbacks):
        callbacks = [callbacks]
    callbacks = list(callbacks)
    for c in callbacks:
        if not callable(c):
            raise TypeError(f"callbacks: {c!r} is not callable; give f(epoch, logs, vectors)")

    def on_epoch(epoch, logs, vectors):
        go_on = True
        for c in callbacks:
            go_on = c(epoch, logs, vectors) is not False and go_on
        return go_on

    return on_epoch


def _train(request: _core.Request, *, dims, normalize, head, optimizer, negatives, epochs, batch, lr, seed, device,
           validation, callbacks, threads) -> Model:
    if not isinstance(validation, numbers.Real) or not 0 <= validation < 1:
        raise Error(f"validation={validation!r}: expected the fraction of positive pairs to hold out, in [0, 1)")
    if lr is not None and not (isinstance(lr, numbers.Real) and lr > 0):
        raise Error(f"lr={lr!r}: expected a learning rate > 0 (None: the optimizer's default)")
    request.configure(_positive("dims", dims), bool(normalize), head, optimizer, _positive("negatives", negatives, 0),
                      None if epochs is None else _positive("epochs", epochs),
                      None if batch is None else _positive("batch", batch), lr, _positive("seed", seed, 0), device,
                      float(validation), _positive("threads", threads, 0))
    core = _core.fit(request, _callback(callbacks), threading.current_thread() is threading.main_thread())
    return Model(core, core.history)


def fit(a, b, labels=None, weights=None, *, rows: int | None = None, dims: int = 2, head: str = "euclidean",
        optimizer: str | None = None, negatives: int = 0, epochs: int | None = None, batch: int | None = None,
        lr: float | None = None, seed: int = 42, device: str = "auto",
        callbacks: Callable | Sequence[Callable] | None = None, validation: float = 0.0,
        normalize: bool = False, threads: int = 0) -> Model:
    """Trains a table on pairs (a[i], b[i]), as `cudaembed train --pairs-file` does.

    a, b: integer row ids (numpy arrays or lists), or names (str), which get rows in order of first
    appearance. labels: 1 (similar) or 0 per pair; None: every pair is a positive (then give
    negatives=K to draw K random negatives per pair each step). weights: each pair's weight in the
    loss. rows: the table size for integer ids (default: the largest id + 1).
    head: "euclidean", "dot", "cosine" or "poincare". optimizer: "adam", "lazy-adam", "sgd",
    "adagrad", or "rsgd"/"radam" for poincare. None leaves optimizer, epochs, batch and lr to the
    CLI's defaults: adam, 500 epochs of batches of 512, the optimizer's own rate; for poincare,
    radam, 100 epochs of batches of 10. device: "auto" (CUDA when a device is there), "cpu" or "cuda".
    callbacks: f(epoch, logs, vectors) after each epoch, with logs {"loss", "mse", "accuracy",
    "seconds"[, "val_loss"]} and a copy of the table; returning False stops training there.
    validation: the fraction of positives held out (val_loss per epoch). threads: the CPU backend's
    threads per step (0: picked by the step's size; any number trains the same bits). Ctrl-C stops
    training after the current step and raises KeyboardInterrupt. The GIL is released while training.
    """
    a_names, b_names = _names("a", a), _names("b", b)
    if (a_names is None) != (b_names is None):
        raise Error(f"pairs: {'a' if a_names is not None else 'b'} holds names (str) but the other holds ids; "
                    "give names on both sides or ids on both")
    if a_names is not None:
        if rows is not None:
            raise Error("rows: only for integer ids; names are the rows")
        a_ids, b_ids, names = _vocabulary(a_names, b_names)
    else:
        a_ids, b_ids, names = _ids("a", a), _ids("b", b), []
        if a_ids.size != b_ids.size:
            raise Error(f"pairs: a has {a_ids.size} ids but b has {b_ids.size}")
    pairs = a_ids.size
    request = _core.Request()
    request.set_pairs(a_ids, b_ids, _floats("labels", labels, pairs), _floats("weights", weights, pairs),
                      0 if rows is None else _positive("rows", rows), names)
    return _train(request, dims=dims, normalize=normalize, head=head, optimizer=optimizer, negatives=negatives,
                  epochs=epochs, batch=batch, lr=lr, seed=seed, device=device, validation=validation,
                  callbacks=callbacks, threads=threads)


def fit_colours(dims: int = 2, normalize: bool = False, *, pairs: int = 100000, head: str = "euclidean",
                optimizer: str | None = None, epochs: int | None = None, batch: int | None = None,
                lr: float | None = None, seed: int = 42, device: str = "auto",
                callbacks: Callable | Sequence[Callable] | None = None,
                csv_path: str | os.PathLike | None = None, threads: int = 0) -> Model:
    """The tutorial: `pairs` random pairs of the bundled colours, labelled similar by RGB distance,
    drawn from `seed` as `cudaembed train` draws them; the same settings give the same table as
    `cudaembed train --dims D [--normalize] --epochs E --seed S` (bit for bit on the CPU)."""
    request = _core.Request()
    request.set_colours(os.fspath(csv_path) if csv_path is not None else _bundled_csv(), _positive("pairs", pairs))
    return _train(request, dims=dims, normalize=normalize, head=head, optimizer=optimizer, negatives=0, epochs=epochs,
                  batch=batch, lr=lr, seed=seed, device=device, validation=0.0, callbacks=callbacks,
                  threads=threads)


def load(run_dir: str | os.PathLike) -> Model:
    """Reads a run directory, as `cudaembed train` or Model.save wrote it."""
    path = os.fspath(run_dir)
    return Model(_core.load(path), _read_history(path), run_dir=path)
