#!/usr/bin/python3
"""Plots for docs/results.md from the JSON reports of `ibmb train` / `ibmb infer`.

Usage: scripts/plot_results.py REPORT_DIR [OUT_DIR]

REPORT_DIR holds files named <dataset>_infer_<method>.json and <dataset>_train_<method>.json
(as the commands in docs/results.md write them). Writes to OUT_DIR (default docs/):
  results_inference.svg  accuracy vs inference time per method, one panel per dataset
  results_training.svg   validation accuracy vs elapsed training time per method
Needs matplotlib (Debian: python3-matplotlib).
"""
import glob
import json
import os
import sys

import matplotlib

matplotlib.use("Agg")
import matplotlib.pyplot as plt  # noqa: E402

METHODS = ["full", "nodewise", "batchwise", "cluster", "random", "khop"]
LABELS = {"full": "full graph", "nodewise": "IBMB node-wise", "batchwise": "IBMB batch-wise",
          "cluster": "Cluster-GCN", "random": "random", "khop": "2-hop neighbourhood"}
MARKERS = dict(zip(METHODS, "o^sDvx"))


def load(pattern):
    out = {}
    for f in sorted(glob.glob(pattern)):
        base = os.path.basename(f)[:-5]
        # <dataset>_<kind>_<method>[_<tag>]: the kind (train/infer) marks where the name ends,
        # so datasets and tags may contain underscores.
        parts = base.split("_")
        kinds = [i for i, p in enumerate(parts) if p in ("train", "infer")]
        if not kinds or kinds[-1] + 1 >= len(parts):
            continue
        k = kinds[-1]
        name, method = "_".join(parts[:k]), "_".join(parts[k + 1:])
        with open(f) as fh:
            out.setdefault(name, {})[method] = json.load(fh)
    return out


def main():
    if len(sys.argv) < 2:
        sys.exit(__doc__)
    src = sys.argv[1]
    dst = sys.argv[2] if len(sys.argv) > 2 else os.path.join(os.path.dirname(__file__), "..", "docs")
    infer = load(os.path.join(src, "*_infer_*.json"))
    if infer:
        names = sorted(infer)
        cols = min(3, len(names))
        rows = (len(names) + cols - 1) // cols
        fig, axes = plt.subplots(rows, cols, figsize=(4.2 * cols, 3.4 * rows), squeeze=False)
        for ax, name in zip(axes.flat, names):
            for m in METHODS:
                r = infer[name].get(m)
                if r is None:
                    continue
                ax.scatter(r["seconds"], 100 * r["accuracy"], marker=MARKERS[m], label=LABELS[m])
            ax.set_xscale("log")
            ax.set_title(name)
            ax.set_xlabel("inference time [s] (test split)")
            ax.set_ylabel("test accuracy [%]")
            ax.grid(alpha=0.3)
        for ax in list(axes.flat)[len(names):]:
            ax.axis("off")
        axes.flat[0].legend(fontsize=7)
        fig.tight_layout()
        fig.savefig(os.path.join(dst, "results_inference.svg"))
    train = load(os.path.join(src, "*_train_*.json"))
    train = {k: v for k, v in train.items() if len(v) > 1}
    if train:
        names = sorted(train)
        cols = min(3, len(names))
        rows = (len(names) + cols - 1) // cols
        fig, axes = plt.subplots(rows, cols, figsize=(4.8 * cols, 3.6 * rows), squeeze=False)
        for ax in list(axes.flat)[len(names):]:
            ax.axis("off")
        for ax, name in zip(axes.flat, names):
            for m in METHODS:
                r = train[name].get(m)
                if r is None:
                    continue
                t = [e["elapsed_seconds"] for e in r["epochs"]]
                a = [100 * e["val_accuracy"] for e in r["epochs"]]
                ax.plot(t, a, label=LABELS[m], marker=MARKERS[m], markevery=max(1, len(t) // 8),
                        markersize=4)
            ax.set_title(name)
            ax.set_xlabel("training time [s]")
            ax.set_ylabel("validation accuracy [%]")
            ax.grid(alpha=0.3)
            ax.legend(fontsize=7)
        fig.tight_layout()
        fig.savefig(os.path.join(dst, "results_training.svg"))


if __name__ == "__main__":
    main()
