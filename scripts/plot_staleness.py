#!/usr/bin/python3
"""Staleness experiment summary: reads the reports of `ibmb train --history ...` and the
staleness CSVs (DIR/<dataset>_<arm>_s<seed>.{json,csv}), prints a Markdown table (mean +- std
over seeds) and writes a PNG of the audited relative error of the halo rows through training.

usage: plot_staleness.py DIR OUT.png DATASET [DATASET ...]
"""
import csv
import json
import math
import os
import sys

import matplotlib

matplotlib.use("Agg")
import matplotlib.pyplot as plt  # noqa: E402

ARMS = ["none", "cache", "sat", "retransform", "momentum", "full"]
LABEL = {
    "none": "dropped halo (pure IBMB)",
    "cache": "plain cache (GAS)",
    "sat": "SAT predictor",
    "retransform": "re-transform",
    "momentum": "momentum",
    "full": "full batch",
}


def mean_std(xs):
    xs = [x for x in xs if x is not None]
    if not xs:
        return None, None
    m = sum(xs) / len(xs)
    s = math.sqrt(sum((x - m) ** 2 for x in xs) / (len(xs) - 1)) if len(xs) > 1 else 0.0
    return m, s


def fmt(ms, scale=1.0, digits=3):
    m, s = ms
    if m is None:
        return "-"
    return f"{m * scale:.{digits}f} ± {s * scale:.{digits}f}"


def load(d, ds, arm):
    runs = []
    for seed in range(10):
        base = os.path.join(d, f"{ds}_{arm}_s{seed}")
        if not os.path.exists(base + ".json"):
            continue
        with open(base + ".json") as f:
            rep = json.load(f)
        audits = []
        if os.path.exists(base + ".csv"):
            with open(base + ".csv") as f:
                audits = [r for r in csv.DictReader(f) if r["layer"] == "0"]
        runs.append((seed, rep, audits))
    return runs


def main():
    if len(sys.argv) < 4:
        sys.exit(__doc__)
    d, out, datasets = sys.argv[1], sys.argv[2], sys.argv[3:]
    fig, axes = plt.subplots(1, len(datasets), figsize=(5 * len(datasets), 3.8), squeeze=False)
    print("| dataset | arm | seeds | audited error, cached | audited error, corrected "
          "(used rows) | test acc (IBMB batches) | test acc (full graph) | s/epoch |")
    print("|---|---|---|---|---|---|---|---|")
    for ax, ds in zip(axes[0], datasets):
        for arm in ARMS:
            runs = load(d, ds, arm)
            if not runs:
                continue
            # Mean over all audits of a run, then over seeds.
            cached = mean_std([sum(float(a["cached_error"]) for a in au) / len(au)
                               for _, _, au in runs if au])
            corr = mean_std([sum(float(a["corrected_error"]) for a in au) / len(au)
                             for _, _, au in runs if au])
            acc = mean_std([r["test_accuracy"] for _, r, _ in runs])
            accf = mean_std([r["test_accuracy_full"] for _, r, _ in runs])
            sec = mean_std([r["mean_epoch_seconds"] for _, r, _ in runs])
            print(f"| {ds} | {LABEL[arm]} | {len(runs)} | {fmt(cached)} | {fmt(corr)} | "
                  f"{fmt(acc)} | {fmt(accf)} | {fmt(sec, digits=3)} |")
            series = [au for _, _, au in runs if au]
            if series:
                n = min(len(s) for s in series)
                ep = [int(series[0][i]["epoch"]) for i in range(n)]
                y = [sum(float(s[i]["corrected_error"]) for s in series) / len(series)
                     for i in range(n)]
                ax.plot(ep, y, marker="o", label=LABEL[arm])
                if arm == "cache":
                    continue
        ax.set_yscale("log")
        ax.set_title(ds)
        ax.set_xlabel("epoch")
        ax.set_ylabel("||halo rows used - exact|| / ||exact||")
        ax.grid(True, which="both", alpha=0.3)
    axes[0][0].legend(fontsize=8)
    fig.tight_layout()
    fig.savefig(out, dpi=110)


if __name__ == "__main__":
    main()
