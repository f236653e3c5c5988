"""Figures for the paper: one bar chart per metric, and generated samples per dataset.

Only the runs named in `labels` are plotted, in that order, under those names.
Usage: python plot.py   (reads run_*/final_info.json and run_*/samples.npz; writes *.png here)
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


def plot_samples(samples):
    datasets = sorted({key.rsplit("_", 1)[0] for s in samples.values() for key in s.files})
    fig, axes = plt.subplots(len(samples), len(datasets), figsize=(3.2 * len(datasets),
                             3.2 * len(samples)), squeeze=False)
    for row, (run, points) in enumerate(samples.items()):
        for col, dataset in enumerate(datasets):
            ax = axes[row][col]
            seed_keys = sorted(k for k in points.files if k.rsplit("_", 1)[0] == dataset)
            if seed_keys:  # the first seed's samples
                xy = points[seed_keys[0]]
                ax.scatter(xy[:, 0], xy[:, 1], s=2, alpha=0.5, color=f"C{row}")
            ax.set_xlim(-3, 3)
            ax.set_ylim(-3, 3)
            ax.set_xticks([])
            ax.set_yticks([])
            ax.set_title(f"{labels[run]}: {dataset}", fontsize=9)
    fig.tight_layout()
    fig.savefig("generated_samples.png", dpi=120)
    plt.close(fig)


def main():
    results = {run: read_json(run, "final_info.json") for run in labels}
    results = {run: info for run, info in results.items() if info}
    if not results:
        raise SystemExit("no run in `labels` has a final_info.json")
    plot_metric_bars(results)
    paths = {run: os.path.join(run, "samples.npz") for run in results}
    samples = {run: np.load(path) for run, path in paths.items() if os.path.exists(path)}
    if samples:
        plot_samples(samples)


if __name__ == "__main__":
    main()
