"""
===================================================
Weight initializers in a deep ReLU network
===================================================

Trains a ten-hidden-layer ReLU network on the handwritten digits with each
built-in initializer and shows two things: how the spread (standard
deviation) of the activations changes from layer to layer at initialisation,
and the training loss curves that follow from it. The figure is saved as
``initializers.png`` in the working directory.

Xavier and LeCun draw weights of variance about ``1 / fan_in``; a ReLU layer
zeroes half of its inputs, so each layer halves the variance of the signal.
He draws ``2 / fan_in`` and keeps it level. The fixed-scale ``'random'``
draw ignores the fan and multiplies the variance by ``64 / 12 / 2 = 2.7`` in
every layer of 64 units.
"""

# %%
# Data and network
# ----------------
# The 8 x 8 digits, standardised. Ten hidden layers of 64 ReLU units, trained
# by plain SGD so that the starting point, not the optimizer, makes the
# difference.
import warnings

import matplotlib

matplotlib.use("Agg")
import matplotlib.pyplot as plt
import numpy as np
from sklearn.datasets import load_digits
from sklearn.exceptions import ConvergenceWarning
from sklearn.preprocessing import StandardScaler

from sknet import MLPClassifier

X, y = load_digits(return_X_y=True)
X = StandardScaler().fit_transform(X)

HIDDEN = (64,) * 10
INITIALIZERS = [
    "xavier_normal",
    "xavier_uniform",
    "lecun_normal",
    "lecun_uniform",
    "he_normal",
    "he_uniform",
    "random",
]
COMMON = dict(
    hidden_layer_sizes=HIDDEN,
    activation="relu",
    optimizer="sgd",
    batch_size=64,
    random_state=0,
)


def hidden_activation_stds(coefs, intercepts, X):
    """Standard deviation of each hidden layer's ReLU output."""
    stds = []
    a = X
    for W, b in zip(coefs[:-1], intercepts[:-1]):
        a = np.maximum(a @ W + b, 0.0)
        stds.append(float(a.std()))
    return stds


# %%
# Spread of the activations at initialisation
# -------------------------------------------
# A fit of one epoch at a negligible learning rate leaves the weights where
# the initializer put them, so ``coefs_`` and ``intercepts_`` (biases start
# at zero) are the initial network. A forward pass through them measures the
# spread of each hidden layer's output.
initial_stds = {}
for name in INITIALIZERS:
    start = MLPClassifier(
        initializer=name, learning_rate_init=1e-12, max_iter=1, **COMMON
    )
    with warnings.catch_warnings():
        warnings.simplefilter("ignore", ConvergenceWarning)
        start.fit(X, y)
    initial_stds[name] = hidden_activation_stds(start.coefs_, start.intercepts_, X)
    print(f"{name:>15}: " + " ".join(f"{s:8.3g}" for s in initial_stds[name]))

# %%
# Training
# --------
# Forty epochs each, same seed, same learning rate. A diverging fit raises a
# ``ValueError`` that names the learning rate; it is caught and reported.
fits = {}
for name in INITIALIZERS:
    clf = MLPClassifier(
        initializer=name,
        learning_rate_init=0.01,
        max_iter=40,
        n_iter_no_change=40,
        **COMMON,
    )
    try:
        with warnings.catch_warnings(), np.errstate(all="ignore"):
            warnings.simplefilter("ignore", ConvergenceWarning)
            clf.fit(X, y)
    except ValueError as error:
        print(f"{name:>15}: diverged ({error})")
        continue
    fits[name] = clf
    print(
        f"{name:>15}: loss {clf.loss_curve_[0]:8.3g} -> {clf.loss_:.3g} "
        f"in {clf.n_iter_} epochs, training accuracy {clf.score(X, y):.3f}"
    )

# %%
# The figure
# ----------
# Left: at initialisation, Xavier and LeCun (which coincide on the square
# 64 x 64 layers) lose about a factor ``sqrt(2)`` of spread per layer, He
# keeps it level, and the fixed-scale draw grows it by about ``sqrt(2.7)``
# per layer. Right: the loss curves follow. With the signal shrinking to a
# few percent by the last layer, Xavier and LeCun barely move for many
# epochs; He trains at once; the fixed-scale draw starts from a huge loss.
colors = {"xavier": "C0", "lecun": "C1", "he": "C2", "random": "C3"}
fig, (ax_std, ax_loss) = plt.subplots(1, 2, figsize=(11, 4.2))
layers = np.arange(1, len(HIDDEN) + 1)
for name in INITIALIZERS:
    family = name.split("_")[0]
    style = "--" if name.endswith("uniform") else "-"
    ax_std.plot(
        layers, initial_stds[name], style, color=colors[family], marker="o", label=name
    )
    if name in fits:
        curve = fits[name].loss_curve_
        ax_loss.plot(
            range(1, len(curve) + 1), curve, style, color=colors[family], label=name
        )
ax_std.set(
    xlabel="hidden layer",
    ylabel="std of the ReLU output",
    yscale="log",
    title="Activations at initialisation",
    xticks=layers,
)
ax_loss.set(
    xlabel="epoch",
    ylabel="training loss",
    yscale="log",
    title="Training (plain SGD, learning rate 0.01)",
)
fig.suptitle("Digits, 10 hidden ReLU layers of 64 units")
fig.tight_layout(rect=(0, 0.1, 1, 1))
fig.legend(*ax_std.get_legend_handles_labels(), loc="lower center", ncol=7)
fig.savefig("initializers.png", dpi=100)
