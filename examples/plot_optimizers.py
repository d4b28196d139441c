"""
=========================================================
Loss and validation curves of SGD, momentum and Nesterov
=========================================================

Fits sknet's MLPClassifier on the handwritten digits with each optimizer and
plots the training loss (``loss_curve_``) and the validation accuracy that
early stopping tracks (``validation_scores_``), epoch by epoch. The figure is
saved as ``optimizers.png`` in the working directory.

Run with ``pip install ".[examples]" && python examples/plot_optimizers.py``.
"""

# %%
# Data
# ----
# The 8 x 8 digits, standardised, with a held-out test split.
import warnings

import matplotlib

matplotlib.use("Agg")
import matplotlib.pyplot as plt
from sklearn.datasets import load_digits
from sklearn.exceptions import ConvergenceWarning
from sklearn.model_selection import train_test_split
from sklearn.preprocessing import StandardScaler

from sknet import MLPClassifier

X, y = load_digits(return_X_y=True)
X_train, X_test, y_train, y_test = train_test_split(
    X, y, test_size=0.2, stratify=y, random_state=0
)
scaler = StandardScaler().fit(X_train)
X_train, X_test = scaler.transform(X_train), scaler.transform(X_test)

# %%
# One fit per optimizer
# ---------------------
# Same network, same seed (so the same initial weights, validation split and
# shuffling), same learning rate: only the update rule changes. Plain SGD
# steps along the gradient; momentum (``momentum=0.9``) accumulates a
# velocity, so its steps grow up to about ten times larger along a consistent
# direction; Nesterov takes the same velocity but corrects it with the
# gradient at the look-ahead point. Early stopping ends each fit 15 epochs
# after its best validation accuracy and restores the best weights.
fits = {}
for optimizer in ["sgd", "momentum", "nesterov"]:
    clf = MLPClassifier(
        hidden_layer_sizes=(100,),
        optimizer=optimizer,
        learning_rate_init=0.02,
        batch_size=64,
        max_iter=60,
        early_stopping=True,
        n_iter_no_change=15,
        random_state=0,
    )
    with warnings.catch_warnings():
        warnings.simplefilter("ignore", ConvergenceWarning)
        clf.fit(X_train, y_train)
    fits[optimizer] = clf
    print(
        f"{optimizer:>8}: {clf.n_iter_:3d} epochs, "
        f"best validation accuracy {clf.best_validation_score_:.3f}, "
        f"test accuracy {clf.score(X_test, y_test):.3f}"
    )

# %%
# The curves
# ----------
# The momentum rules drive the training loss down far faster than plain SGD
# at the same learning rate, and reach their best validation accuracy in
# fewer epochs. On this small, well-conditioned problem momentum and Nesterov
# nearly coincide; Nesterov's look-ahead correction matters more at higher
# momentum or learning rate.
fig, (ax_loss, ax_val) = plt.subplots(1, 2, figsize=(10, 4))
styles = {"sgd": "-", "momentum": "--", "nesterov": ":"}
for name, clf in fits.items():
    epochs = range(1, clf.n_iter_ + 1)
    ax_loss.plot(epochs, clf.loss_curve_, styles[name], label=name)
    ax_val.plot(epochs, clf.validation_scores_, styles[name], label=name)
ax_loss.set(xlabel="epoch", ylabel="training loss", yscale="log")
ax_val.set(xlabel="epoch", ylabel="validation accuracy")
ax_loss.legend()
ax_val.legend()
fig.suptitle("Digits, 100 hidden units, learning rate 0.02")
fig.tight_layout()
fig.savefig("optimizers.png", dpi=100)
