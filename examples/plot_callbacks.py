"""
=====================================================
Watching the validation curve with a callback
=====================================================

sknet's MLPClassifier supports scikit-learn's callback framework
(scikit-learn 1.9 or newer): ``fit`` is the root task and every epoch a
subtask. A callback sees each epoch end, with a ``fitted_estimator`` that
predicts as of that epoch, and can ask training to stop.

This example records the validation accuracy and the training loss of every
epoch with a small callback of its own, stops training once the validation
accuracy has reached a target, and plots the curve after the fit. The figure
is saved as ``callbacks.png``.
"""

# %%
# A callback that records, and stops at a target accuracy.
import warnings

import matplotlib

matplotlib.use("Agg")
import matplotlib.pyplot as plt
from sklearn.datasets import load_digits
from sklearn.exceptions import ConvergenceWarning
from sklearn.model_selection import train_test_split
from sklearn.preprocessing import StandardScaler

from sknet import MLPClassifier


class CurveRecorder:
    """Record each epoch's validation accuracy; stop at ``target``."""

    def __init__(self, target):
        self.target = target
        self.accuracy, self.loss = [], []

    def setup(self, estimator, context):
        pass

    def teardown(self, estimator, context):
        pass

    def on_fit_task_begin(self, estimator, context):
        pass

    def on_fit_task_end(self, estimator, context, *, X, y, fitted_estimator):
        if context.task_name != "epoch":
            return False
        # With early stopping, X and y are the held-out validation split.
        self.accuracy.append(fitted_estimator.score(X, y))
        self.loss.append(fitted_estimator.loss_)
        return self.accuracy[-1] >= self.target


# %%
# Fit on the digits with early stopping's held-out split.
X, y = load_digits(return_X_y=True)
X_train, X_test, y_train, y_test = train_test_split(
    X, y, test_size=0.2, stratify=y, random_state=0
)
scaler = StandardScaler().fit(X_train)
X_train, X_test = scaler.transform(X_train), scaler.transform(X_test)

recorder = CurveRecorder(target=0.95)
clf = MLPClassifier(
    hidden_layer_sizes=(64,),
    learning_rate_init=0.01,
    batch_size=64,
    max_iter=100,
    early_stopping=True,
    validation_fraction=0.2,
    random_state=0,
)
clf.set_callbacks(recorder)
with warnings.catch_warnings():
    warnings.simplefilter("ignore", ConvergenceWarning)
    clf.fit(X_train, y_train)
print(
    f"stopped after {clf.n_iter_} epochs at validation accuracy "
    f"{recorder.accuracy[-1]:.3f}; test accuracy {clf.score(X_test, y_test):.3f}"
)

# %%
# The curve the callback saw.
epochs = range(1, len(recorder.accuracy) + 1)
fig, ax_acc = plt.subplots(figsize=(6, 4))
ax_acc.plot(epochs, recorder.accuracy, "o-", label="validation accuracy")
ax_acc.axhline(recorder.target, color="grey", linestyle="--", label="target")
ax_acc.set(xlabel="epoch", ylabel="validation accuracy")
ax_loss = ax_acc.twinx()
ax_loss.plot(epochs, recorder.loss, "s:", color="tab:red", label="training loss")
ax_loss.set(ylabel="training loss")
fig.legend(loc="center right", bbox_to_anchor=(0.85, 0.5))
fig.tight_layout()
fig.savefig("callbacks.png", dpi=100)
