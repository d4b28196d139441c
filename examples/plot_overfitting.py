"""
======================================================
Overfitting: L2 regularisation and early stopping
======================================================

A wide network trained on a small, noisy training set learns the noise: its
training accuracy climbs to 100 % while its test accuracy falls. This
example follows training and test accuracy epoch by epoch without and with
an L2 penalty (``alpha``), and marks where ``fit`` stops, with and without
early stopping. The figure is saved as ``overfitting.png`` in the working
directory.
"""

# %%
# A small training set with noisy labels
# --------------------------------------
# 30 % of the digits for training, the rest for testing. A fifth of the
# training labels are replaced by random digits, so a model that fits every
# training label has learned noise. The test labels are left intact.
import warnings

import matplotlib

matplotlib.use("Agg")
import matplotlib.pyplot as plt
import numpy as np
from sklearn.datasets import load_digits
from sklearn.exceptions import ConvergenceWarning
from sklearn.model_selection import train_test_split

from sknet import MLPClassifier

X, y = load_digits(return_X_y=True)
X_train, X_test, y_train, y_test = train_test_split(
    X / 16, y, train_size=0.3, stratify=y, random_state=0
)
noise = np.random.RandomState(1)
flipped = noise.rand(len(y_train)) < 0.2
y_clean = y_train.copy()
y_train = y_train.copy()
y_train[flipped] = noise.randint(0, 10, flipped.sum())
correct_share = np.mean(y_train == y_clean)
print(f"{len(y_train)} training rows, {correct_share:.1%} of their labels correct")

MAX_EPOCHS = 150
SETTINGS = dict(hidden_layer_sizes=(256,), learning_rate_init=0.05, batch_size=32)
ALPHAS = {"no penalty (alpha=0)": 0.0, "L2 (alpha=0.3)": 0.3}

# %%
# Accuracy epoch by epoch
# -----------------------
# ``partial_fit`` runs one epoch per call and keeps the optimizer's velocity,
# so a loop of calls, scoring after each, gives the accuracy of every epoch.
# With a ``RandomState`` seeded like ``fit``'s ``random_state=0``, the loop
# draws the same initial weights and the same shuffles as ``fit``, so its
# epochs are exactly those of ``fit``, as the check on the loss curves shows.
# ``fit`` itself tells where training stops: after ``n_iter_no_change`` (10)
# epochs without the training loss improving by ``tol``, or at ``max_iter``.
classes = np.unique(y)
curves, fits = {}, {}
for label, alpha in ALPHAS.items():
    stepwise = MLPClassifier(
        alpha=alpha, random_state=np.random.RandomState(0), **SETTINGS
    )
    train_acc, test_acc = [], []
    for epoch in range(MAX_EPOCHS):
        stepwise.partial_fit(X_train, y_train, classes=classes)
        train_acc.append(stepwise.score(X_train, y_train))
        test_acc.append(stepwise.score(X_test, y_test))
    curves[label] = train_acc, test_acc

    with warnings.catch_warnings():
        warnings.simplefilter("ignore", ConvergenceWarning)
        fitted = MLPClassifier(
            alpha=alpha, max_iter=MAX_EPOCHS, random_state=0, **SETTINGS
        ).fit(X_train, y_train)
    same = np.array_equal(fitted.loss_curve_, stepwise.loss_curve_[: fitted.n_iter_])
    assert same, "partial_fit did not replay fit's epochs"
    fits[label] = fitted

# %%
# Early stopping
# --------------
# With ``early_stopping=True``, ``fit`` holds out a stratified 10 % of the
# training rows, scores them after every epoch (``validation_scores_``),
# stops after exactly ``n_iter_no_change`` epochs without improvement and
# restores the weights of the best epoch.
early = {}
for label, alpha in ALPHAS.items():
    early[label] = MLPClassifier(
        alpha=alpha,
        max_iter=MAX_EPOCHS,
        early_stopping=True,
        random_state=0,
        **SETTINGS,
    ).fit(X_train, y_train)

print(f"{'configuration':<40} {'epochs':>6} {'best':>5} {'test accuracy':>14}")
for label in ALPHAS:
    clf, es = fits[label], early[label]
    best = int(np.argmax(es.validation_scores_)) + 1
    assert es.n_iter_ == best + es.n_iter_no_change
    for name, model, best_epoch in [
        (label + ", fit", clf, ""),
        (label + ", early stopping", es, best),
    ]:
        test_accuracy = model.score(X_test, y_test)
        print(f"{name:<40} {model.n_iter_:6d} {best_epoch:>5} {test_accuracy:14.3f}")

# %%
# The figure
# ----------
# Without a penalty the training accuracy passes the share of correct labels
# (dotted line) and reaches 100 %: the network memorises the noisy labels,
# and its test accuracy falls from its early peak. ``fit`` never stops on its
# own here, since the training loss keeps improving. With ``alpha=0.3`` the
# training accuracy stays near the share of correct labels, the test accuracy
# stays high, and ``fit`` stops once the penalised loss levels off. Early
# stopping (grey: the validation accuracy it watches) ends each fit soon
# after the peak and returns the best epoch's weights (star: their test
# accuracy). Its validation rows come from the training set and carry the
# same noisy labels, so their accuracy stays near the share of correct
# labels.
fig, axes = plt.subplots(1, 2, figsize=(11, 4.2), sharey=True)
epochs = np.arange(1, MAX_EPOCHS + 1)
for ax, label in zip(axes, ALPHAS):
    train_acc, test_acc = curves[label]
    ax.plot(epochs, train_acc, color="C0", label="training accuracy")
    ax.plot(epochs, test_acc, color="C1", label="test accuracy")
    ax.axhline(correct_share, color="C0", ls=":", lw=1, label="correct labels")

    stop = fits[label].n_iter_
    if stop < MAX_EPOCHS:
        ax.axvline(stop, color="k", ls="--", lw=1)
        ax.annotate(
            f"fit stops ({stop})",
            (stop, 0.42),
            xytext=(4, 0),
            textcoords="offset points",
        )
    else:
        ax.annotate(f"fit runs all {stop} epochs", (MAX_EPOCHS, 0.42), ha="right")

    es = early[label]
    best = int(np.argmax(es.validation_scores_)) + 1
    ax.plot(
        range(1, es.n_iter_ + 1),
        es.validation_scores_,
        color="0.5",
        label="validation accuracy (early stopping)",
    )
    ax.axvline(es.n_iter_, color="0.5", ls="--", lw=1)
    ax.annotate(
        f"early stopping stops ({es.n_iter_})",
        (es.n_iter_, 0.47),
        xytext=(4, 0),
        textcoords="offset points",
        color="0.3",
    )
    ax.plot(
        best,
        es.score(X_test, y_test),
        "*",
        color="C3",
        ms=14,
        label="test accuracy of the early-stopped model",
    )
    ax.set(title=label, xlabel="epoch (log scale)", xscale="log", ylim=(0.4, 1.02))
axes[0].set_ylabel("accuracy")
fig.suptitle(
    "Digits: 539 training rows, 20 % of the labels replaced by noise, 256 hidden units"
)
fig.tight_layout(rect=(0, 0.1, 1, 1))
fig.legend(*axes[0].get_legend_handles_labels(), loc="lower center", ncol=3)
fig.savefig("overfitting.png", dpi=100)
