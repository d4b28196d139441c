"""
====================================================
Training on data larger than memory, chunk by chunk
====================================================

A data set too large for memory can live on disk as a numpy memmap and be
read one chunk at a time. :func:`sknet.fit_stream` trains with
``partial_fit`` on each chunk in turn, epoch after epoch, and, given a
held-out chunk, stops when its accuracy stops improving and restores the
best epoch's weights: early stopping for streams.

Here the "large" file is small enough to run in seconds; only one chunk of it
is ever in memory. The figure is saved as ``streaming.png``.
"""

# %%
# Write a data set to disk as a memmap, chunk by chunk.
import tempfile
from pathlib import Path

import matplotlib

matplotlib.use("Agg")
import matplotlib.pyplot as plt
import numpy as np

from sknet import MLPClassifier, fit_stream

n_rows, n_features, chunk = 50_000, 40, 5_000
rng = np.random.RandomState(0)
teacher = rng.normal(size=(n_features, 3))
folder = Path(tempfile.mkdtemp())
X_disk = np.lib.format.open_memmap(
    folder / "X.npy", mode="w+", dtype=np.float32, shape=(n_rows, n_features)
)
y = np.empty(n_rows, dtype=int)
for start in range(0, n_rows, chunk):
    block = rng.normal(size=(chunk, n_features)).astype(np.float32)
    X_disk[start : start + chunk] = block
    y[start : start + chunk] = np.argmax(block @ teacher, axis=1)
X_disk.flush()
del X_disk

X_val = rng.normal(size=(2_000, n_features)).astype(np.float32)
y_val = np.argmax(X_val @ teacher, axis=1)

# %%
# Stream it: a function that opens the file and yields its chunks, called
# once per epoch.
X_disk = np.load(folder / "X.npy", mmap_mode="r")


def chunks():
    for start in range(0, n_rows, chunk):
        yield X_disk[start : start + chunk], y[start : start + chunk]


clf = MLPClassifier(hidden_layer_sizes=(32,), learning_rate_init=0.02, random_state=0)
fit_stream(
    clf,
    chunks,
    classes=[0, 1, 2],
    epochs=40,
    validation_data=(X_val, y_val),
    n_iter_no_change=4,
    tol=0.0,
)
best = int(np.argmax(clf.validation_scores_))
print(
    f"{len(clf.validation_scores_)} epochs, best epoch {best + 1} with validation "
    f"accuracy {clf.best_validation_score_:.3f}; weights are {clf.coefs_[0].dtype}"
)

# %%
# The validation curve, and where the stream stopped.
epochs = np.arange(1, len(clf.validation_scores_) + 1)
fig, ax = plt.subplots(figsize=(6, 4))
ax.plot(epochs, clf.validation_scores_, "o-", label="held-out accuracy")
ax.axvline(best + 1, color="grey", linestyle="--", label="best epoch (restored)")
ax.set(xlabel="epoch (one pass over the file)", ylabel="accuracy")
ax.legend()
fig.tight_layout()
fig.savefig("streaming.png", dpi=100)
