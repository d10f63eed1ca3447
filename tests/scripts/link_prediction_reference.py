#!/usr/bin/env python3
"""Independent reference for `cudaembed evaluate RUN --pairs FILE --json`, in plain Python (no NumPy).

Reads the run's embedding.npy, vocab.tsv (integer ids without it) and run.json, and a pairs CSV of plain names (no quoting),
and prints one JSON line with the same numbers computed the way their authors' code does:
- reconstruction as Nickel & Kiela's poincare-embeddings `reconstruction_worker` (sorted positions,
  ranksum - N(N-1)/2, and scikit-learn's average_precision_score, rewritten here from its definition:
  sum over distinct thresholds of (recall step) x precision);
- filtered link prediction by sorting every candidate (not by counting).
Ties are not handled the same way (their sort breaks them arbitrarily), so compare on tables
without exact ties, such as a trained embedding.

Usage: link_prediction_reference.py RUN_DIR PAIRS_CSV
"""
import json
import os
import struct
import sys


def read_npy(path):
    with open(path, "rb") as f:
        data = f.read()
    assert data[:6] == b"\x93NUMPY", path
    major = data[6]
    if major == 1:
        (header_len,) = struct.unpack("<H", data[8:10])
        start = 10
    else:
        (header_len,) = struct.unpack("<I", data[8:12])
        start = 12
    header = data[start : start + header_len].decode("latin1")
    assert "'<f4'" in header and "'fortran_order': False" in header, header
    shape = tuple(int(x) for x in header.split("'shape': (")[1].split(")")[0].split(",") if x.strip())
    rows, dims = shape
    values = struct.unpack("<%df" % (rows * dims), data[start + header_len :])
    return [list(values[r * dims : (r + 1) * dims]) for r in range(rows)]


def main():
    run_dir, pairs_path = sys.argv[1], sys.argv[2]
    table = read_npy(os.path.join(run_dir, "embedding.npy"))
    vocab = os.path.join(run_dir, "vocab.tsv")
    if os.path.exists(vocab):
        with open(vocab, encoding="utf-8") as f:
            names = [line.rstrip("\n") for line in f]
    else:  # a run on integer ids
        names = [str(i) for i in range(len(table))]
    run = json.load(open(os.path.join(run_dir, "run.json")))
    head = run["config"]["head"]
    w = run["final"]["dense_weight"]
    sign = (w > 0) - (w < 0)
    row = {name: i for i, name in enumerate(names)}
    n = len(table)

    def preference(a, b):
        x, y = table[a], table[b]
        if head == "euclidean":
            score = sum((p - q) * (p - q) for p, q in zip(x, y))
        else:  # dot, cosine (embedding.npy holds normalised rows for cosine)
            score = sum(p * q for p, q in zip(x, y))
        return sign * score

    positives = []
    with open(pairs_path, encoding="utf-8") as f:
        for line in f:
            fields = line.strip().split(",")
            if fields == ["a", "b"] or fields[:3] == ["a", "b", "label"]:
                continue
            if len(fields) >= 3 and float(fields[2]) <= 0.5:
                continue
            positives.append((row[fields[0]], row[fields[1]]))
    neighbours = {}
    for a, b in positives:
        if a != b:
            neighbours.setdefault(a, set()).add(b)
            neighbours.setdefault(b, set()).add(a)

    # Filtered link prediction: rank b among rows that are not a, b or a known positive of a.
    reciprocal = hits1 = hits10 = hits50 = auc = 0.0
    for a, b in positives:
        target = preference(a, b)
        others = sorted((preference(a, j) for j in range(n) if j != a and j != b and j not in neighbours.get(a, ())),
                        reverse=True)
        better = sum(1 for p in others if p > target)
        rank = 1 + better
        reciprocal += 1.0 / rank
        hits1 += rank <= 1
        hits10 += rank <= 10
        hits50 += rank <= 50
        auc += (len(others) - better) / len(others)
    q = len(positives)

    # Reconstruction, as poincare-embeddings' reconstruction_worker.
    ranksum = nranks = ap_scores = iters = 0
    for u in sorted(neighbours):
        dists = [-preference(u, j) for j in range(n)]  # smaller is preferred
        dists[u] = 1e12
        order = sorted(range(n), key=lambda j: dists[j])
        ranks = [pos + 1 for pos, j in enumerate(order) if j in neighbours[u]]
        count = len(ranks)
        ranksum += sum(ranks) - count * (count - 1) / 2
        nranks += count
        # average_precision_score(labels, -dists): thresholds at each distinct score, best first.
        ap, seen, seen_pos, recall_before = 0.0, 0, 0, 0.0
        i = 0
        while i < n:
            k = i
            while k < n and dists[order[k]] == dists[order[i]]:
                k += 1
            seen += k - i
            seen_pos += sum(1 for j in order[i:k] if j in neighbours[u])
            recall = seen_pos / count
            ap += (recall - recall_before) * (seen_pos / seen)
            recall_before = recall
            i = k
        ap_scores += ap
        iters += 1

    print(json.dumps({
        "link_prediction": {"queries": q, "mrr": reciprocal / q, "hits@1": hits1 / q, "hits@10": hits10 / q,
                            "hits@50": hits50 / q, "auc": auc / q},
        "reconstruction": {"nodes": iters, "edges": nranks, "map": ap_scores / iters, "mean_rank": ranksum / nranks},
    }))


if __name__ == "__main__":
    main()
