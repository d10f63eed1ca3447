"""colours(), load(), most_similar and plot on run directories: no training in this file."""

import os

import numpy as np
import pytest

import cudaembed
from conftest import run_cli, write_run_dir


def test_imports_the_module_under_test():
    # ctest runs the build tree's package, the CI's pip stage an installed one; neither may pick up the other.
    expected = os.environ.get("CUDAEMBED_EXPECT_PACKAGE_DIR")
    if expected:
        assert os.path.realpath(os.path.dirname(cudaembed.__file__)) == os.path.realpath(expected)


def test_colours_are_the_bundled_table():
    names, rgb = cudaembed.colours()
    assert len(names) == rgb.shape[0] == 646 and rgb.shape == (646, 3) and rgb.dtype == np.float32
    assert names[:2] == ["snow", "GhostWhite"]
    np.testing.assert_array_equal(rgb[names.index("white")], [1, 1, 1])
    np.testing.assert_array_equal(rgb[names.index("red")], [1, 0, 0])
    assert rgb.min() >= 0 and rgb.max() <= 1


def test_colours_errors_name_the_file(tmp_path):
    bad = tmp_path / "bad.csv"
    bad.write_text("Color Name,Credits,R;G;B Dec\nred,x,255;0\n")
    with pytest.raises(cudaembed.Error, match="bad.csv"):
        cudaembed.colours(bad)
    assert issubclass(cudaembed.Error, ValueError)


def brute_force(vectors, head, query, topn):
    """(rows, scores) as the head ranks them, in float64 numpy: the reference most_similar must match."""
    v = vectors.astype(np.float64)
    q = v[query]
    if head in ("dot", "cosine"):
        score = v @ q
        order = sorted((j for j in range(len(v)) if j != query), key=lambda j: (-score[j], j))
    elif head == "poincare":
        sq = ((v - q) ** 2).sum(axis=1)
        score = np.arccosh(1 + 2 * sq / ((1 - (v**2).sum(axis=1)) * (1 - (q**2).sum())))
        order = sorted((j for j in range(len(v)) if j != query), key=lambda j: (score[j], j))
    else:
        score = np.sqrt(((v - q) ** 2).sum(axis=1))
        order = sorted((j for j in range(len(v)) if j != query), key=lambda j: (score[j], j))
    return order[:topn], score[order[:topn]]


@pytest.mark.parametrize("head", ["euclidean", "dot", "cosine", "poincare"])
def test_most_similar_ranks_by_the_head(tmp_path, head):
    rng = np.random.default_rng(7)
    vectors = rng.uniform(-0.4, 0.4, size=(300, 5)).astype(np.float32)  # inside the unit ball, for poincare
    if head == "cosine":
        vectors /= np.linalg.norm(vectors, axis=1, keepdims=True)
    names = [f"item {i}" for i in range(len(vectors))]
    model = cudaembed.load(write_run_dir(tmp_path / head, vectors, names, head, normalize=head == "cosine"))
    for query in (0, 17, 299):
        rows, scores = brute_force(model.vectors, head, query, 12)
        got = model.most_similar(names[query], topn=12)
        assert [name for name, _ in got] == [names[j] for j in rows]
        np.testing.assert_allclose([s for _, s in got], scores, rtol=1e-5, atol=1e-6)
        assert model.most_similar(query, topn=12) == got  # a row number asks the same


def test_load_reads_what_the_cli_wrote(cli, tmp_path):
    run = tmp_path / "run"
    run_cli(cli, "train", "--epochs", 3, "--no-plot", "--out", run)
    model = cudaembed.load(run)
    np.testing.assert_array_equal(model.vectors, np.load(run / "embedding.npy"))
    assert model.vectors.shape == (646, 2) and model.vectors.dtype == np.float32
    assert not model.vectors.flags.writeable
    assert model.vocab == cudaembed.colours().names
    np.testing.assert_array_equal(model.rgb, np.round(cudaembed.colours().rgb * 255) / 255)
    assert model.history["epoch"] == [1, 2, 3] and len(model.history["loss"]) == 3
    # most_similar ranks as `cudaembed neighbours` prints.
    printed = run_cli(cli, "neighbours", run, "SkyBlue", "-k", 5).splitlines()[2:]
    assert [line.split()[1] for line in printed] == [n for n, _ in model.most_similar("SkyBlue", topn=5)]


def test_name_lookup_errors(tmp_path):
    model = cudaembed.load(write_run_dir(tmp_path / "r", np.zeros((3, 2)), ["Sky Blue", "gold", "gray, grey"]))
    assert model.most_similar("skyblue", topn=1)[0][0] in ("gold", "gray, grey")  # case and spaces ignored
    assert len(model.most_similar("grey")) == 2  # one name of a merged row
    with pytest.raises(cudaembed.Error, match="no item of that name; closest: gold"):
        model.most_similar("golld")
    with pytest.raises(cudaembed.Error, match="row 3 is out of range: the table has 3 rows"):
        model.most_similar(3)
    with pytest.raises(TypeError, match="expected a name"):
        model.most_similar(1.5)


def test_load_errors_name_the_path(tmp_path):
    with pytest.raises(cudaembed.Error, match="nowhere: not a directory"):
        cudaembed.load(tmp_path / "nowhere")


def test_plot_writes_png_and_svg(tmp_path):
    rng = np.random.default_rng(1)
    model = cudaembed.load(write_run_dir(tmp_path / "r", rng.normal(size=(50, 4)), [f"n{i}" for i in range(50)]))
    paths = model.plot(tmp_path / "picture.png", labels=["n3"])
    assert paths == [str(tmp_path / "picture.png"), str(tmp_path / "picture.svg")]
    assert (tmp_path / "picture.png").read_bytes()[:8] == b"\x89PNG\r\n\x1a\n"
    assert b"<svg" in (tmp_path / "picture.svg").read_bytes()[:400]
    with pytest.raises(cudaembed.Error, match="no item of that name"):
        model.plot(tmp_path / "other", labels=["nope"])
