"""Handwritten digits (scikit-learn's bundled 8x8 images) with a one-hidden-layer numpy MLP.

Two datasets: the clean labels, and the same images with 30% of the training labels replaced
at random (label noise). Minibatch SGD with momentum and weight decay; five seeds, each with
its own stratified train/test split. Metrics are on the clean test labels.
Usage: python experiment.py --out_dir run_0   (writes run_0/final_info.json)
"""

import argparse
import json
import os
import time

import numpy as np
from threadpoolctl import threadpool_limits
from sklearn.datasets import load_digits
from sklearn.model_selection import train_test_split

DATASETS = {"digits": 0.0, "digits_noisy": 0.3}  # name -> fraction of noisy training labels
SEEDS = [0, 1, 2, 3, 4]
HIDDEN = 64
EPOCHS = 30
BATCH_SIZE = 64
LR = 0.05
MOMENTUM = 0.9
WEIGHT_DECAY = 1e-4


def load(seed, noise):
    x, y = load_digits(return_X_y=True)
    x = (x / 16.0).astype(np.float32)
    x_train, x_test, y_train, y_test = train_test_split(
        x, y, test_size=0.3, random_state=seed, stratify=y)
    rng = np.random.default_rng(seed)
    noisy = rng.random(len(y_train)) < noise
    y_train = np.where(noisy, rng.integers(0, 10, len(y_train)), y_train)
    return x_train, y_train, x_test, y_test


def init_params(rng, n_in):
    return {
        "W1": (rng.standard_normal((n_in, HIDDEN)) * np.sqrt(2 / n_in)).astype(np.float32),
        "b1": np.zeros(HIDDEN, np.float32),
        "W2": (rng.standard_normal((HIDDEN, 10)) * np.sqrt(1 / HIDDEN)).astype(np.float32),
        "b2": np.zeros(10, np.float32),
    }


def forward(params, x):
    pre = x @ params["W1"] + params["b1"]
    hidden = np.maximum(pre, 0)
    logits = hidden @ params["W2"] + params["b2"]
    probs = np.exp(logits - logits.max(1, keepdims=True))
    return pre, hidden, probs / probs.sum(1, keepdims=True)


def gradients(params, x, y):
    pre, hidden, probs = forward(params, x)
    probs[np.arange(len(y)), y] -= 1
    d_logits = probs / len(y)
    d_pre = (d_logits @ params["W2"].T) * (pre > 0)
    return {"W1": x.T @ d_pre, "b1": d_pre.sum(0), "W2": hidden.T @ d_logits, "b2": d_logits.sum(0)}


def evaluate(params, x, y):
    probs = forward(params, x)[2]
    loss = -np.log(probs[np.arange(len(y)), y] + 1e-12).mean()
    return float(loss), float((probs.argmax(1) == y).mean())


def train(seed, noise):
    x_train, y_train, x_test, y_test = load(seed, noise)
    rng = np.random.default_rng(seed)
    params = init_params(rng, x_train.shape[1])
    velocity = {k: np.zeros_like(v) for k, v in params.items()}
    curve, start = [], time.time()
    for _ in range(EPOCHS):
        order = rng.permutation(len(y_train))
        for i in range(0, len(order), BATCH_SIZE):
            batch = order[i:i + BATCH_SIZE]
            for k, g in gradients(params, x_train[batch], y_train[batch]).items():
                velocity[k] = MOMENTUM * velocity[k] - LR * (g + WEIGHT_DECAY * params[k])
                params[k] += velocity[k]
        curve.append(evaluate(params, x_test, y_test)[1])
    train_time = time.time() - start
    test_loss, test_acc = evaluate(params, x_test, y_test)
    train_acc = evaluate(params, x_train, y_train)[1]
    metrics = {"test_accuracy": test_acc, "test_loss": test_loss,
               "train_accuracy": train_acc, "train_time": train_time}
    return metrics, curve


def main():
    threadpool_limits(1)  # tiny matrices: one BLAS thread is as fast and never stalls on busy cores
    parser = argparse.ArgumentParser()
    parser.add_argument("--out_dir", type=str, default="run_0")
    out_dir = parser.parse_args().out_dir
    os.makedirs(out_dir, exist_ok=True)
    final_info, curves = {}, {}
    for dataset, noise in DATASETS.items():
        per_seed = []
        for seed in SEEDS:
            metrics, curves[f"{dataset}_{seed}"] = train(seed, noise)
            per_seed.append(metrics)
            print(dataset, seed, {k: round(v, 4) for k, v in metrics.items()}, flush=True)
        values = {k: np.array([m[k] for m in per_seed], float) for k in per_seed[0]}
        final_info[dataset] = {
            "means": {k: float(a.mean()) for k, a in values.items()},
            "stderrs": {k: float(a.std(ddof=1) / np.sqrt(len(a))) for k, a in values.items()},
            "final_info_dict": {k: a.tolist() for k, a in values.items()},
        }
    with open(os.path.join(out_dir, "final_info.json"), "w") as f:
        json.dump(final_info, f, indent=2)
    with open(os.path.join(out_dir, "curves.json"), "w") as f:
        json.dump(curves, f)


if __name__ == "__main__":
    main()
