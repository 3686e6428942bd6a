#!/usr/bin/env python3
"""The reference's way to cut a batch's subgraph, timed on the batches bench_store exports.

For every batch b with sorted node ids idx, scipy computes A[idx][:, idx] on the CSR of the
whole graph (what the reference's adjacency mode does). Prints one JSON line with the
local edges extracted per second, to compare with bench_store's bm_extract/1 (local_edges/s)
on the same graph and batches. Usage: scipy_extract.py EXPORT_DIR [REPEATS]
"""
import json
import sys
import time

try:
    import numpy as np
    import scipy.sparse as sp
except ImportError as e:  # pragma: no cover
    print(f"skipped: {e} (pip install numpy scipy)")
    sys.exit(0)


def main():
    d = sys.argv[1]
    repeats = int(sys.argv[2]) if len(sys.argv) > 2 else 3
    indptr = np.load(f"{d}/indptr.npy")
    indices = np.load(f"{d}/indices.npy")
    node_ptr = np.load(f"{d}/node_ptr.npy")
    nodes = np.load(f"{d}/nodes.npy")
    n = len(indptr) - 1
    a = sp.csr_matrix((np.ones(len(indices), dtype=np.float32), indices, indptr), shape=(n, n))
    best = float("inf")
    edges = 0
    for _ in range(repeats):
        t = time.perf_counter()
        edges = 0
        for b in range(len(node_ptr) - 1):
            idx = nodes[node_ptr[b]:node_ptr[b + 1]]
            sub = a[idx][:, idx]
            edges += sub.nnz
        best = min(best, time.perf_counter() - t)
    print(json.dumps({"peer": "scipy A[idx][:, idx]", "batches": int(len(node_ptr) - 1),
                      "local_edges": int(edges), "seconds": best,
                      "local_edges_per_s": edges / best}))


if __name__ == "__main__":
    main()
