"""cudaembed: train embedding tables from labelled pairs, on CUDA or the CPU.

    import cudaembed
    model = cudaembed.fit(["tea", "tea", "milk"], ["cup", "milk", "cow"], dims=8, epochs=200)
    model.vectors                 # (N, D) float32
    model.most_similar("tea")     # [(name, score), ...] in the head's own measure
    model.save("runs/drinks")     # the run directory `cudaembed train` writes
    cudaembed.load("runs/drinks")

The work is done by the C++ library (cudaembed._core); this package converts arguments.
"""

from __future__ import annotations

import csv
import os
from typing import NamedTuple

import numpy as np

from . import _core
from ._core import Error, set_log_level

__all__ = ["Colours", "Error", "Model", "colours", "load", "set_log_level"]
__version__ = _core.__version__

_HEADS = ("euclidean", "dot", "cosine", "poincare")


def _bundled_csv() -> str:
    """The colour CSV shipped inside the package (a wheel's, or the build tree's copy)."""
    return os.path.join(os.path.dirname(__file__), "data", "colours.csv")


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
        self.history = history  # per-epoch lists, like Keras's History.history
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


def load(run_dir: str | os.PathLike) -> Model:
    """Reads a run directory, as `cudaembed train` or Model.save wrote it."""
    path = os.fspath(run_dir)
    return Model(_core.load(path), _read_history(path), run_dir=path)
