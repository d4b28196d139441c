"""
==========================================================
Tuning optimizer, initializer and alpha with GridSearchCV
==========================================================

The strategies of sknet's MLPClassifier are ordinary parameters, so
scikit-learn's ``GridSearchCV`` tunes them like any other. This example
searches over the optimizer, the initializer and the L2 strength ``alpha`` of
a ``Pipeline`` (scaler, then classifier) on the handwritten digits, and shows
the cross-validated accuracy as a table and as a heat map. The figure is
saved as ``tuning.png`` in the working directory.
"""

# %%
# The search
# ----------
# 3 optimizers x 3 initializers x 4 values of ``alpha`` = 36 candidates, each
# fitted on 3 folds. ``GridSearchCV(n_jobs=2)`` runs the fits in two
# processes; the classifier keeps its default ``n_jobs=None`` (one process
# per fit), so the two levels of parallelism do not compete for the cores.
import warnings

import matplotlib

matplotlib.use("Agg")
import matplotlib.pyplot as plt
import numpy as np
from sklearn.datasets import load_digits
from sklearn.exceptions import ConvergenceWarning
from sklearn.model_selection import GridSearchCV, train_test_split
from sklearn.pipeline import make_pipeline
from sklearn.preprocessing import StandardScaler

from sknet import MLPClassifier

X, y = load_digits(return_X_y=True)
X_train, X_test, y_train, y_test = train_test_split(X, y, stratify=y, random_state=0)

pipeline = make_pipeline(
    StandardScaler(),
    MLPClassifier(hidden_layer_sizes=(64,), batch_size=64, max_iter=30, random_state=0),
)
grid = {
    "mlpclassifier__optimizer": ["sgd", "momentum", "nesterov"],
    "mlpclassifier__initializer": ["xavier_uniform", "lecun_normal", "he_normal"],
    "mlpclassifier__alpha": [1e-4, 1e-2, 1e-1, 1.0],
}
search = GridSearchCV(pipeline, grid, cv=3, n_jobs=2)
with warnings.catch_warnings():
    warnings.simplefilter("ignore", ConvergenceWarning)
    search.fit(X_train, y_train)

print("best parameters:", search.best_params_)
print(f"best cross-validated accuracy: {search.best_score_:.3f}")
test_accuracy = search.score(X_test, y_test)
print(f"test accuracy of the refitted best pipeline: {test_accuracy:.3f}")

# %%
# The results as a table
# ----------------------
# One row per candidate, best first: mean and standard deviation of the
# accuracy over the folds, and the mean time of a fit.
results = search.cv_results_
order = np.argsort(results["rank_test_score"], kind="stable")
print(
    f"{'rank':>4}  {'optimizer':<9} {'initializer':<15} {'alpha':>6}  "
    f"{'accuracy':>8} {'std':>6} {'fit (s)':>7}"
)
for i in order:
    params = results["params"][i]
    print(
        f"{results['rank_test_score'][i]:4d}  "
        f"{params['mlpclassifier__optimizer']:<9} "
        f"{params['mlpclassifier__initializer']:<15} "
        f"{params['mlpclassifier__alpha']:6g}  "
        f"{results['mean_test_score'][i]:8.4f} "
        f"{results['std_test_score'][i]:6.4f} "
        f"{results['mean_fit_time'][i]:7.2f}"
    )

# %%
# The results as a heat map
# -------------------------
# Rows: optimizer and initializer; columns: ``alpha``. Plain SGD lags at this
# learning rate and number of epochs, whatever the initializer; the two
# momentum rules are close to each other; the largest ``alpha`` costs them
# about a point of accuracy.
optimizers = grid["mlpclassifier__optimizer"]
initializers = grid["mlpclassifier__initializer"]
alphas = grid["mlpclassifier__alpha"]
heat = np.empty((len(optimizers) * len(initializers), len(alphas)))
for params, score in zip(results["params"], results["mean_test_score"]):
    o = optimizers.index(params["mlpclassifier__optimizer"])
    i = initializers.index(params["mlpclassifier__initializer"])
    a = alphas.index(params["mlpclassifier__alpha"])
    heat[o * len(initializers) + i, a] = score
row_labels = [f"{o}, {i}" for o in optimizers for i in initializers]

fig, ax = plt.subplots(figsize=(7, 6))
image = ax.imshow(heat, cmap="viridis", aspect="auto")
ax.set_xticks(np.arange(len(alphas)), [f"{a:g}" for a in alphas])
ax.set_yticks(np.arange(len(row_labels)), row_labels)
ax.set(xlabel="alpha", title="Mean cross-validated accuracy (3 folds)")
for (row, col), value in np.ndenumerate(heat):
    color = "black" if value > heat.mean() else "white"
    ax.text(col, row, f"{value:.3f}", ha="center", va="center", color=color)
fig.colorbar(image, ax=ax, label="accuracy")
fig.tight_layout()
fig.savefig("tuning.png", dpi=100)
