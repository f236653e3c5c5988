"""Grokking on modular arithmetic: a small numpy MLP, full-batch AdamW, three seeds.

Each example is a pair (a, b) of residues mod P, fed as two one-hot vectors; the target is
a op b mod P. Half of all pairs train the network; the rest measure generalisation. With
weight decay, validation accuracy jumps long after training accuracy reaches 100%.
Usage: python experiment.py --out_dir run_0   (writes run_0/final_info.json)
"""

import argparse
import json
import os

import numpy as np
from threadpoolctl import threadpool_limits

P = 47  # the modulus
INVERSE = np.array([pow(b, P - 2, P) for b in range(P)])  # Fermat: b^(P-2) = 1/b mod P
OPERATIONS = {
    "x_plus_y": lambda a, b: (a + b) % P,
    "x_minus_y": lambda a, b: (a - b) % P,
    "x_div_y": lambda a, b: (a * INVERSE[b]) % P,
}
SEEDS = [0, 1, 2]
TRAIN_FRACTION = 0.5
HIDDEN = 128
STEPS = 1200
LR = 3e-2
WEIGHT_DECAY = 1.0
BETAS = (0.9, 0.98)
EVAL_EVERY = 50


def make_data(operation, seed):
    a, b = (g.ravel() for g in np.meshgrid(np.arange(P), np.arange(P)))
    if operation == "x_div_y":
        a, b = a[b != 0], b[b != 0]
    x = np.concatenate([np.eye(P, dtype=np.float32)[a], np.eye(P, dtype=np.float32)[b]], 1)
    y = OPERATIONS[operation](a, b)
    order = np.random.default_rng(seed).permutation(len(y))
    cut = int(TRAIN_FRACTION * len(y))
    return (x[order[:cut]], y[order[:cut]]), (x[order[cut:]], y[order[cut:]])


def init_params(rng):
    return {
        "W1": (rng.standard_normal((2 * P, HIDDEN)) / np.sqrt(2 * P)).astype(np.float32),
        "b1": np.zeros(HIDDEN, np.float32),
        "W2": (rng.standard_normal((HIDDEN, P)) / np.sqrt(HIDDEN)).astype(np.float32),
        "b2": np.zeros(P, np.float32),
    }


def forward(params, x):
    pre = x @ params["W1"] + params["b1"]
    hidden = np.maximum(pre, 0)
    logits = hidden @ params["W2"] + params["b2"]
    probs = np.exp(logits - logits.max(1, keepdims=True))
    return pre, hidden, probs / probs.sum(1, keepdims=True)


def loss_and_accuracy(params, x, y):
    probs = forward(params, x)[2]
    loss = -np.log(probs[np.arange(len(y)), y] + 1e-12).mean()
    return float(loss), float((probs.argmax(1) == y).mean())


def gradients(params, x, y):
    pre, hidden, probs = forward(params, x)
    probs[np.arange(len(y)), y] -= 1
    d_logits = probs / len(y)
    d_pre = (d_logits @ params["W2"].T) * (pre > 0)
    return {"W1": x.T @ d_pre, "b1": d_pre.sum(0), "W2": hidden.T @ d_logits, "b2": d_logits.sum(0)}


def train(operation, seed):
    (x_train, y_train), (x_val, y_val) = make_data(operation, seed)
    params = init_params(np.random.default_rng(seed))
    m, v = ({k: np.zeros_like(p) for k, p in params.items()} for _ in range(2))
    curve, reached = {"step": [], "train_acc": [], "val_acc": []}, STEPS
    for step in range(1, STEPS + 1):
        for k, g in gradients(params, x_train, y_train).items():  # AdamW
            m[k] = BETAS[0] * m[k] + (1 - BETAS[0]) * g
            v[k] = BETAS[1] * v[k] + (1 - BETAS[1]) * g * g
            m_hat, v_hat = m[k] / (1 - BETAS[0] ** step), v[k] / (1 - BETAS[1] ** step)
            params[k] -= LR * (m_hat / (np.sqrt(v_hat) + 1e-8) + WEIGHT_DECAY * params[k])
        if step % EVAL_EVERY == 0:
            curve["step"].append(step)
            curve["train_acc"].append(loss_and_accuracy(params, x_train, y_train)[1])
            curve["val_acc"].append(loss_and_accuracy(params, x_val, y_val)[1])
            if curve["val_acc"][-1] >= 0.99 and reached == STEPS:
                reached = step  # first evaluation at 99% validation accuracy
    train_loss, train_acc = loss_and_accuracy(params, x_train, y_train)
    val_loss, val_acc = loss_and_accuracy(params, x_val, y_val)
    metrics = {"final_train_loss": train_loss, "final_val_loss": val_loss,
               "final_train_acc": train_acc, "final_val_acc": val_acc, "step_val_acc_99": reached}
    return metrics, curve


def main():
    threadpool_limits(1)  # tiny matrices: one BLAS thread is as fast and never stalls on busy cores
    parser = argparse.ArgumentParser()
    parser.add_argument("--out_dir", type=str, default="run_0")
    out_dir = parser.parse_args().out_dir
    os.makedirs(out_dir, exist_ok=True)
    final_info, curves = {}, {}
    for operation in OPERATIONS:
        per_seed = []
        for seed in SEEDS:
            metrics, curves[f"{operation}_{seed}"] = train(operation, seed)
            per_seed.append(metrics)
            print(operation, seed, {k: round(v, 4) for k, v in metrics.items()}, flush=True)
        values = {k: np.array([m[k] for m in per_seed], float) for k in per_seed[0]}
        final_info[operation] = {
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
