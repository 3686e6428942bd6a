#!/usr/bin/env python3
"""Runs PPRGo's numba push (calc_ppr_topk_parallel from TUM-DAML/pprgo_pytorch pprgo/ppr.py,
fetched at run time by run_pprgo.sh, never stored in this repository) on a graph exported by
`bench_push` (IBMB_BENCH_EXPORT) and compares with our rows (IBMB_BENCH_RUN).

usage: pprgo_push.py PEER_DIR DATA_DIR --alpha A --eps E --topk K --threads T [--ours-json J]
"""
import argparse
import json
import sys
import time

import numpy as np


def main():
    ap = argparse.ArgumentParser()
    ap.add_argument("peer_dir")
    ap.add_argument("data_dir")
    ap.add_argument("--alpha", type=float, default=0.25)
    ap.add_argument("--eps", type=float, default=2e-4)
    ap.add_argument("--topk", type=int, default=16)
    ap.add_argument("--threads", type=int, default=1)
    ap.add_argument("--repeats", type=int, default=3, help="best of this many timed runs")
    ap.add_argument("--ours-json", action="append", default=[],
                    help="our timing JSON; repeat for several runs (the rows written last are"
                         " compared)")
    a = ap.parse_args()

    sys.path.insert(0, a.peer_dir)
    import numba
    numba.set_num_threads(a.threads)
    import ppr as pprgo  # the downloaded pprgo/ppr.py

    d = a.data_dir
    indptr = np.load(f"{d}/indptr.npy")
    indices = np.load(f"{d}/indices.npy")
    outputs = np.load(f"{d}/outputs.npy")
    deg = np.diff(indptr)  # = np.sum(adj > 0, axis=1) for an unweighted graph
    alpha = numba.float32(a.alpha)
    eps = numba.float32(a.eps)

    # JIT warm-up on a few outputs (compilation is not counted).
    pprgo.calc_ppr_topk_parallel(indptr, indices, deg, alpha, eps, outputs[:4], a.topk)
    # Best of --repeats runs, as bench_push times ours.
    peer_s = float("inf")
    for _ in range(a.repeats):
        t0 = time.perf_counter()
        js, vals = pprgo.calc_ppr_topk_parallel(indptr, indices, deg, alpha, eps, outputs, a.topk)
        peer_s = min(peer_s, time.perf_counter() - t0)

    res = {"peer_seconds": peer_s, "repeats": a.repeats, "outputs": int(len(outputs)),
           "threads": a.threads,
           "alpha": a.alpha, "eps": a.eps, "topk": a.topk}
    if a.ours_json:
        runs = [json.load(open(f)) for f in a.ours_json]
        optr = np.load(f"{d}/ours_indptr.npy")
        oidx = np.load(f"{d}/ours_indices.npy")
        oval = np.load(f"{d}/ours_data.npy")
        # Plain: |ours & theirs| / max(|ours|, |theirs|). Tie-aware: an entry in one list but
        # not the other also counts as agreeing when its score is within `rel` of the k-th
        # score of the other list (exact or float-rounding ties at the k-th place, which the
        # two codes break differently: we by node id, PPRGo by argsort order).
        rel = 1e-4
        agree = ties = total = 0
        for i in range(len(outputs)):
            mine = dict(zip(oidx[optr[i]:optr[i + 1]].tolist(),
                            oval[optr[i]:optr[i + 1]].tolist()))
            theirs = dict(zip(np.asarray(js[i]).tolist(), np.asarray(vals[i]).tolist()))
            common = mine.keys() & theirs.keys()
            agree += len(common)
            total += max(len(mine), len(theirs))
            if len(mine) == len(theirs) == a.topk:
                kth_theirs = min(theirs.values())
                kth_mine = min(mine.values())
                only_mine = [v for n, v in mine.items() if n not in theirs]
                only_theirs = [v for n, v in theirs.items() if n not in mine]
                tied_mine = sum(abs(v - kth_theirs) <= rel * kth_theirs for v in only_mine)
                tied_theirs = sum(abs(v - kth_mine) <= rel * kth_mine for v in only_theirs)
                ties += min(tied_mine, tied_theirs)
        for r in runs:
            tag = f"_{r.get('index_bits', 64)}bit" if len(runs) > 1 else ""
            res.update({f"ours_seconds{tag}": r["seconds"],
                        f"speedup{tag}": peer_s / r["seconds"]})
        res.update({"topk_agreement": agree / max(total, 1),
                    "topk_agreement_ties": (agree + ties) / max(total, 1),
                    "ours_edges_relaxed": runs[-1]["edges_relaxed"]})
    print(json.dumps(res))


if __name__ == "__main__":
    main()
