"""
==============================================
Parallel training: speed and identical weights
==============================================

``n_jobs`` splits every mini-batch between worker processes that share the
data and the weights through shared memory. This example times an epoch of a
784-256-10 network on MNIST-shaped synthetic data with ``n_jobs=1`` and
``n_jobs=2``, for two batch sizes, and checks that the fitted weights are
bitwise the same. The figure is saved as ``parallel.png`` in the working
directory.

The timings depend on the machine and on what else runs on it; the weights
do not.
"""

# %%
# Data
# ----
# 20,000 rows of 784 uniform "pixels", labelled by a random linear teacher
# (ten classes), as in ``benchmarks/bench_engine.py`` but a third of its size.
import time
import warnings

import matplotlib

matplotlib.use("Agg")
import matplotlib.pyplot as plt
import numpy as np
from sklearn.exceptions import ConvergenceWarning

from sknet import MLPClassifier

rng = np.random.RandomState(0)
X = rng.uniform(0.0, 1.0, size=(20_000, 784))
teacher = rng.normal(size=(784, 10))
y = np.argmax((X - 0.5) @ teacher, axis=1)

# %%
# Two epochs per setting
# ----------------------
# A batch of 200 rows is cut into 2 shards of 100 rows, one per worker; a
# batch of 1,000 rows into 8 shards of 125 rows, 4 per worker. The shards
# depend on the batch size only, and their gradients are added in a fixed
# order, so the weights cannot depend on ``n_jobs``. The time of a fit
# includes starting the workers.
N_JOBS = (1, 2)
BATCH_SIZES = (200, 1000)
seconds_per_epoch, fitted = {}, {}
for batch_size in BATCH_SIZES:
    for n_jobs in N_JOBS:
        clf = MLPClassifier(
            hidden_layer_sizes=(256,),
            batch_size=batch_size,
            max_iter=2,
            n_jobs=n_jobs,
            random_state=0,
        )
        start = time.perf_counter()
        with warnings.catch_warnings():
            warnings.simplefilter("ignore", ConvergenceWarning)
            clf.fit(X, y)
        seconds_per_epoch[batch_size, n_jobs] = (
            time.perf_counter() - start
        ) / clf.n_iter_
        fitted[batch_size, n_jobs] = clf

# %%
# Bitwise the same weights
# ------------------------
# ``np.array_equal`` asks for exact equality, not closeness.
identical = {}
for batch_size in BATCH_SIZES:
    one, two = fitted[batch_size, 1], fitted[batch_size, 2]
    identical[batch_size] = all(
        np.array_equal(a, b)
        for a, b in zip(one.coefs_ + one.intercepts_, two.coefs_ + two.intercepts_)
    ) and np.array_equal(one.loss_curve_, two.loss_curve_)
    speed_up = seconds_per_epoch[batch_size, 1] / seconds_per_epoch[batch_size, 2]
    print(
        f"batch {batch_size:4d}: "
        f"{seconds_per_epoch[batch_size, 1]:.3f} s/epoch with n_jobs=1, "
        f"{seconds_per_epoch[batch_size, 2]:.3f} s/epoch with n_jobs=2 "
        f"(speed-up {speed_up:.2f}x); weights identical: {identical[batch_size]}"
    )
assert all(identical.values())

# %%
# The figure
# ----------
# Seconds per epoch against ``n_jobs``, one group of bars per batch size.
fig, ax = plt.subplots(figsize=(7, 4.2))
width = 0.35
positions = np.arange(len(N_JOBS))
for i, batch_size in enumerate(BATCH_SIZES):
    heights = [seconds_per_epoch[batch_size, n] for n in N_JOBS]
    bars = ax.bar(
        positions + (i - 0.5) * width,
        heights,
        width,
        label=f"batch_size={batch_size} (weights identical: "
        f"{'yes' if identical[batch_size] else 'no'})",
    )
    ax.bar_label(bars, fmt="%.2f s")
ax.set_xticks(positions, [f"n_jobs={n}" for n in N_JOBS])
ax.set(ylabel="seconds per epoch", title="784-256-10 network, 20,000 rows")
ax.legend(loc="upper right")
fig.tight_layout()
fig.savefig("parallel.png", dpi=100)
