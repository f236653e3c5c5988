"""A 2-D denoising diffusion model (DDPM) with a small numpy MLP denoiser, three seeds.

Datasets: circle, two moons, spiral. The MLP sees a noisy point and a sinusoidal embedding
of the step t and predicts the noise (Adam on the usual loss). Sample quality: a nearest-
neighbour estimate of KL(real || generated) on held-out points.
Usage: python experiment.py --out_dir run_0   (writes run_0/final_info.json)
"""

import argparse
import json
import os
import time

import numpy as np
from scipy.spatial import cKDTree
from sklearn.datasets import make_moons
from threadpoolctl import threadpool_limits

DATASETS = ["circle", "moons", "spiral"]
SEEDS = [0, 1, 2]
NUM_TIMESTEPS = 50
BETAS = np.linspace(1e-4, 0.2, NUM_TIMESTEPS)  # linear noise schedule
ALPHAS_CUMPROD = np.cumprod(1 - BETAS)
EMBED_DIM, HIDDEN = 16, 128
TRAIN_STEPS, BATCH_SIZE, LR = 2000, 256, 2e-3
NUM_SAMPLES = 2000


def make_points(name, n, rng):
    angle = rng.uniform(0, 1, n)
    if name == "circle":
        x = np.stack([np.cos(2 * np.pi * angle), np.sin(2 * np.pi * angle)], 1)
    elif name == "moons":
        x = make_moons(n, noise=0.05, random_state=int(rng.integers(1 << 30)))[0]
        x = (x - x.mean(0)) / x.std(0)
    else:  # spiral: radius grows with the angle
        r = np.sqrt(0.05 + 0.95 * angle)
        x = 1.5 * r[:, None] * np.stack([np.cos(3 * np.pi * r), np.sin(3 * np.pi * r)], 1)
    return (x + 0.02 * rng.standard_normal(x.shape)).astype(np.float32)


def init_params(rng):
    sizes = [(2 + EMBED_DIM, HIDDEN), (HIDDEN, HIDDEN), (HIDDEN, 2)]
    params = {f"b{i}": np.zeros(n_out, np.float32) for i, (_, n_out) in enumerate(sizes)}
    for i, (n_in, n_out) in enumerate(sizes):
        params[f"W{i}"] = (rng.standard_normal((n_in, n_out)) * np.sqrt(2 / n_in)).astype("f4")
    return params


def forward(params, x, t):
    freqs = np.exp(-np.log(1000) * np.arange(EMBED_DIM // 2) / (EMBED_DIM // 2))
    angles = t[:, None] * freqs[None] * (1000 / NUM_TIMESTEPS)
    acts = [np.concatenate([x, np.sin(angles), np.cos(angles)], 1).astype(np.float32)]
    for i in range(3):
        out = acts[-1] @ params[f"W{i}"] + params[f"b{i}"]
        acts.append(np.maximum(out, 0) if i < 2 else out)
    return acts


def noisy_batch(data, rng, size):
    x0, t = data[rng.integers(0, len(data), size)], rng.integers(0, NUM_TIMESTEPS, size)
    noise = rng.standard_normal(x0.shape).astype(np.float32)
    a = ALPHAS_CUMPROD[t][:, None].astype(np.float32)
    return np.sqrt(a) * x0 + np.sqrt(1 - a) * noise, t, noise


def train(data, rng):
    params = init_params(rng)
    m, v = ({k: np.zeros_like(p) for k, p in params.items()} for _ in range(2))
    for step in range(1, TRAIN_STEPS + 1):
        x, t, noise = noisy_batch(data, rng, BATCH_SIZE)
        acts = forward(params, x, t)
        grad = 2 * (acts[-1] - noise) / noise.size
        for i in reversed(range(3)):  # backpropagation, then an Adam step per tensor
            grads = {f"W{i}": acts[i].T @ grad, f"b{i}": grad.sum(0)}
            grad = (grad @ params[f"W{i}"].T) * (acts[i] > 0)
            for k, g in grads.items():
                m[k], v[k] = 0.9 * m[k] + 0.1 * g, 0.999 * v[k] + 0.001 * g * g
                m_hat, v_hat = m[k] / (1 - 0.9**step), v[k] / (1 - 0.999**step)
                params[k] -= LR * m_hat / (np.sqrt(v_hat) + 1e-8)
    return params


def sample(params, rng, n):
    x = rng.standard_normal((n, 2)).astype(np.float32)
    for t in reversed(range(NUM_TIMESTEPS)):
        eps = forward(params, x, np.full(n, t))[-1]
        x = (x - BETAS[t] / np.sqrt(1 - ALPHAS_CUMPROD[t]) * eps) / np.sqrt(1 - BETAS[t])
        if t > 0:
            x = x + np.sqrt(BETAS[t]) * rng.standard_normal(x.shape).astype(np.float32)
    return x


def knn_kl(real, fake, k=5):
    """Nearest-neighbour estimate of KL(real || fake) (Wang, Kulkarni and Verdu, 2009)."""
    rho = cKDTree(real).query(real, k + 1)[0][:, -1]
    nu = cKDTree(fake).query(real, k)[0][:, -1]
    return float(real.shape[1] * np.mean(np.log(nu / rho)) + np.log(len(fake) / (len(real) - 1)))


def run(name, seed):
    rng = np.random.default_rng(seed)
    data, held_out = make_points(name, 10000, rng), make_points(name, NUM_SAMPLES, rng)
    start = time.time()
    params = train(data, rng)
    training_time, start = time.time() - start, time.time()
    fake = sample(params, rng, NUM_SAMPLES)
    inference_time = time.time() - start
    x, t, noise = noisy_batch(held_out, rng, NUM_SAMPLES)
    eval_loss = float(np.mean((forward(params, x, t)[-1] - noise) ** 2))
    return {"eval_loss": eval_loss, "kl_divergence": knn_kl(held_out, fake),
            "training_time": training_time, "inference_time": inference_time}, fake


def main():
    threadpool_limits(1)  # tiny matrices: one BLAS thread is as fast and never stalls on busy cores
    parser = argparse.ArgumentParser()
    parser.add_argument("--out_dir", type=str, default="run_0")
    out_dir = parser.parse_args().out_dir
    os.makedirs(out_dir, exist_ok=True)
    final_info, samples = {}, {}
    for name in DATASETS:
        per_seed = []
        for seed in SEEDS:
            metrics, samples[f"{name}_{seed}"] = run(name, seed)
            per_seed.append(metrics)
            print(name, seed, {k: round(v, 4) for k, v in metrics.items()}, flush=True)
        values = {k: np.array([m[k] for m in per_seed], float) for k in per_seed[0]}
        final_info[name] = {
            "means": {k: float(a.mean()) for k, a in values.items()},
            "stderrs": {k: float(a.std(ddof=1) / np.sqrt(len(a))) for k, a in values.items()},
            "final_info_dict": {k: a.tolist() for k, a in values.items()},
        }
    with open(os.path.join(out_dir, "final_info.json"), "w") as f:
        json.dump(final_info, f, indent=2)
    np.savez(os.path.join(out_dir, "samples.npz"), **samples)


if __name__ == "__main__":
    main()
