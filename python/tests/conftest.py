"""Shared fixtures: the CLI binary (ctest passes CUDAEMBED_BINARY) and runs it trains."""

import json
import os
import subprocess

import numpy as np
import pytest


@pytest.fixture(scope="session")
def cli():
    """Path of the `cudaembed` binary of the same build; tests that compare with it skip without it."""
    path = os.environ.get("CUDAEMBED_BINARY")
    if not path:
        pytest.skip("CUDAEMBED_BINARY is not set (ctest sets it to the build's binary)")
    return path


def run_cli(cli, *args):
    """Runs the CLI, failing the test with its output when it fails; returns stdout."""
    done = subprocess.run([cli, *map(str, args)], capture_output=True, text=True)
    assert done.returncode == 0, f"{cli} {' '.join(map(str, args))}:\n{done.stdout}\n{done.stderr}"
    return done.stdout


def write_run_dir(path, vectors, names, head="euclidean", normalize=False):
    """A minimal run directory as read_run_dir reads it: embedding.npy, metadata.tsv (names only),
    run.json with the head."""
    os.makedirs(path, exist_ok=True)
    np.save(os.path.join(path, "embedding.npy"), np.asarray(vectors, dtype=np.float32))
    with open(os.path.join(path, "metadata.tsv"), "w") as f:
        f.write("name\n" + "".join(f"{n}\n" for n in names))
    with open(os.path.join(path, "run.json"), "w") as f:
        json.dump({"config": {"head": head, "normalize": normalize}, "rows_l2_normalized": normalize}, f)
    return str(path)
