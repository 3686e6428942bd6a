#!/usr/bin/env python3
"""PyTorch CPU peer of ibmb's topic-sensitive PPR power iteration (bench_topic BM_topic_power).

Reads a directory written by `IBMB_BENCH_EXPORT=DIR IBMB_BENCH_NODES=N bench_topic`
(indptr/indices of the preprocessed graph, set_ptr/set_nodes of the teleport sets, ref_ptr/ref_ids
of the converged reference top-k lists) or by `ibmb generate --out DIR` (graph only: indptr.npy,
indices.npy; sets are then random groups of nodes and no recall is reported).
Adds the reference's self-loops when rows lack them (A + I, as make_undirected_with_self_loops),
builds P = D^-1 A as a float32 torch.sparse_csr_tensor and runs 50 iterations of
X <- (1 - alpha) P X + alpha T on a dense N x S block (S = 50), the reference's recurrence.
Prints one JSON line: seconds for the 50 iterations, per iteration, nnz*cols/s, top-k recall.

  python3 torch_topic_ppr.py DIR [--threads 2] [--iterations 50] [--alpha 0.25]
Exits 0 with a message when torch or numpy is missing.
"""
import argparse
import json
import os
import sys
import time

try:
    import numpy as np
    import torch
except ImportError as e:  # pragma: no cover
    print(f"torch_topic_ppr: skipped ({e.name} not installed)")
    sys.exit(0)


def load(d):
    indptr = np.load(os.path.join(d, "indptr.npy")).astype(np.int64)
    indices = np.load(os.path.join(d, "indices.npy")).astype(np.int64)
    return indptr, indices


def with_self_loops(indptr, indices):
    n = len(indptr) - 1
    rows = np.repeat(np.arange(n, dtype=np.int64), np.diff(indptr))
    if np.count_nonzero(rows == indices) == n:
        return indptr, indices
    # Symmetrize, drop duplicates and existing loops, then one loop per node.
    r = np.concatenate([rows, indices, np.arange(n)])
    c = np.concatenate([indices, rows, np.arange(n)])
    keep = r != c
    r = np.concatenate([r[keep], np.arange(n)])
    c = np.concatenate([c[keep], np.arange(n)])
    key = np.unique(r * n + c)
    r, c = key // n, key % n
    indptr = np.zeros(n + 1, dtype=np.int64)
    np.add.at(indptr, r + 1, 1)
    return np.cumsum(indptr), c


def main():
    ap = argparse.ArgumentParser()
    ap.add_argument("dir")
    ap.add_argument("--threads", type=int, default=2)
    ap.add_argument("--iterations", type=int, default=50)
    ap.add_argument("--alpha", type=float, default=0.25)
    ap.add_argument("--sets", type=int, default=50)
    a = ap.parse_args()
    torch.set_num_threads(a.threads)
    indptr, indices = with_self_loops(*load(a.dir))
    n = len(indptr) - 1
    sp_path = os.path.join(a.dir, "set_ptr.npy")
    if os.path.exists(sp_path):
        set_ptr = np.load(sp_path)
        set_nodes = np.load(os.path.join(a.dir, "set_nodes.npy"))
    else:
        rng = np.random.default_rng(0)
        set_nodes = rng.choice(n, size=min(n, a.sets * 200), replace=False)
        set_ptr = np.arange(0, len(set_nodes) + 1, 200)
    s = len(set_ptr) - 1
    deg = np.diff(indptr).astype(np.float32)
    vals = np.repeat(1.0 / deg, np.diff(indptr)).astype(np.float32)
    P = torch.sparse_csr_tensor(torch.from_numpy(indptr), torch.from_numpy(indices),
                                torch.from_numpy(vals), size=(n, n))
    T = torch.zeros(n, s, dtype=torch.float32)
    for j in range(s):
        nodes = torch.from_numpy(set_nodes[set_ptr[j]:set_ptr[j + 1]].astype(np.int64))
        T[:, j].index_add_(0, nodes, torch.full((len(nodes),), 1.0 / len(nodes)))
    aT = a.alpha * T
    X = T.clone()
    with torch.no_grad():
        X = (1 - a.alpha) * (P @ X) + aT  # warm-up (not timed), then restart
        X = T.clone()
        t0 = time.perf_counter()
        for _ in range(a.iterations):
            X = torch.addmm(aT, P, X, beta=1.0, alpha=1 - a.alpha)
        sec = time.perf_counter() - t0
    out = {"nodes": n, "nnz": int(len(indices)), "sets": s, "threads": a.threads,
           "iterations": a.iterations, "seconds": sec, "s_per_iter": sec / a.iterations,
           "nnz_cols_per_s": len(indices) * s * a.iterations / sec,
           "torch": torch.__version__, "load1": os.getloadavg()[0]}
    rp = os.path.join(a.dir, "ref_ptr.npy")
    if os.path.exists(rp):
        ref_ptr = np.load(rp)
        ref_ids = np.load(os.path.join(a.dir, "ref_ids.npy"))
        k = int(max(np.diff(ref_ptr)))
        Xn = X.numpy()
        rec = []
        for j in range(s):
            col = Xn[:, j]
            pos = np.flatnonzero(col > 0)
            # score descending, id ascending, among positive scores
            order = pos[np.lexsort((pos, -col[pos]))][:k]
            want = ref_ids[ref_ptr[j]:ref_ptr[j + 1]]
            rec.append(len(np.intersect1d(order, want)) / max(1, len(want)))
        out["k"] = k
        out["recall"] = float(np.mean(rec))
    print(json.dumps(out))


if __name__ == "__main__":
    main()
