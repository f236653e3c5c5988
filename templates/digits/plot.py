"""Figures for the paper: one bar chart per metric, and mean test-accuracy curves.

Only the runs named in `labels` are plotted, in that order, under those names.
Usage: python plot.py   (reads run_*/final_info.json and run_*/curves.json; writes *.png here)
"""

import json
import os

import matplotlib

matplotlib.use("Agg")
import matplotlib.pyplot as plt  # noqa: E402
import numpy as np  # noqa: E402

labels = {
    "run_0": "Baseline",
}


def read_json(run, name):
    path = os.path.join(run, name)
    if not os.path.exists(path):
        return None
    with open(path) as f:
        return json.load(f)


def plot_metric_bars(results):
    groups = sorted({g for info in results.values() for g in info})
    metrics = sorted({m for info in results.values() for g in info.values() for m in g["means"]})
    width = 0.8 / len(results)
    for metric in metrics:
        fig, ax = plt.subplots(figsize=(6, 4))
        for i, (run, info) in enumerate(results.items()):
            means = [info.get(g, {}).get("means", {}).get(metric, np.nan) for g in groups]
            errs = [info.get(g, {}).get("stderrs", {}).get(metric, 0.0) for g in groups]
            ax.bar(np.arange(len(groups)) + i * width, means, width, yerr=errs, capsize=3,
                   label=labels[run])
        ax.set_xticks(np.arange(len(groups)) + width * (len(results) - 1) / 2, groups)
        ax.set_ylabel(metric.replace("_", " "))
        ax.set_title(f"{metric.replace('_', ' ')} (mean ± s.e. over seeds)")
        ax.legend()
        fig.tight_layout()
        fig.savefig(f"{metric}.png", dpi=120)
        plt.close(fig)


def plot_curves(curves):
    datasets = sorted({key.rsplit("_", 1)[0] for c in curves.values() for key in c})
    fig, axes = plt.subplots(1, len(datasets), figsize=(5 * len(datasets), 4), squeeze=False)
    for ax, dataset in zip(axes[0], datasets, strict=True):
        for run, curve in curves.items():
            seeds = [v for k, v in curve.items() if k.rsplit("_", 1)[0] == dataset]
            if seeds:
                mean = np.mean([np.asarray(s, float) for s in seeds], axis=0)
                ax.plot(np.arange(1, len(mean) + 1), mean, label=labels[run])
        ax.set_title(dataset)
        ax.set_xlabel("epoch")
        ax.set_ylabel("test accuracy (mean over seeds)")
        ax.legend()
    fig.tight_layout()
    fig.savefig("test_accuracy_curves.png", dpi=120)
    plt.close(fig)


def main():
    results = {run: read_json(run, "final_info.json") for run in labels}
    results = {run: info for run, info in results.items() if info}
    if not results:
        raise SystemExit("no run in `labels` has a final_info.json")
    plot_metric_bars(results)
    curves = {run: read_json(run, "curves.json") for run in results}
    curves = {run: c for run, c in curves.items() if c}
    if curves:
        plot_curves(curves)


if __name__ == "__main__":
    main()
