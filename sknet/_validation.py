"""Checks of the estimator's parameters and inputs, kept in one place."""

import os
import sys
import warnings
from numbers import Integral, Real

import numpy as np
from sklearn.model_selection import train_test_split
from sklearn.utils._param_validation import Interval, Options, StrOptions

from .initializers import INITIALIZERS
from .optimizers import OPTIMIZERS, BaseOptimizer

# Below this many held-out samples, a validation accuracy moves in steps too
# coarse to tell progress from noise.
MIN_VALIDATION_SAMPLES = 10

PARAMETER_CONSTRAINTS = {
    "hidden_layer_sizes": ["array-like", Interval(Integral, 1, None, closed="left")],
    "activation": [StrOptions({"identity", "logistic", "tanh", "relu", "leaky_relu"})],
    "initializer": [StrOptions(set(INITIALIZERS)), callable],
    "optimizer": [StrOptions(set(OPTIMIZERS)), BaseOptimizer],
    "alpha": [Interval(Real, 0, None, closed="left")],
    "batch_size": [StrOptions({"auto"}), Interval(Integral, 1, None, closed="left")],
    "learning_rate": [StrOptions({"constant", "invscaling", "adaptive"})],
    "learning_rate_init": [Interval(Real, 0, None, closed="neither")],
    "power_t": [Interval(Real, 0, None, closed="left")],
    "max_iter": [Interval(Integral, 1, None, closed="left")],
    "shuffle": ["boolean"],
    "random_state": ["random_state"],
    "tol": [Interval(Real, 0, None, closed="left")],
    "verbose": ["verbose"],
    "warm_start": ["boolean"],
    "momentum": [Interval(Real, 0, 1, closed="both")],
    "early_stopping": ["boolean"],
    "validation_fraction": [Interval(Real, 0, 1, closed="neither")],
    "n_iter_no_change": [
        Interval(Integral, 1, None, closed="left"),
        Options(Real, {np.inf}),
    ],
    "n_jobs": [
        Interval(Integral, 1, None, closed="left"),
        Interval(Integral, None, -1, closed="right"),
        None,
    ],
}


def check_hidden_layer_sizes(hidden_layer_sizes):
    """Return the hidden layer sizes as a list of positive ints."""
    sizes = hidden_layer_sizes
    if not hasattr(sizes, "__iter__"):
        sizes = [sizes]
    sizes = list(sizes)
    if not all(isinstance(s, Integral) and not isinstance(s, bool) for s in sizes):
        raise ValueError(
            "The 'hidden_layer_sizes' parameter of MLPClassifier must hold "
            f"integers only. Got {hidden_layer_sizes!r} instead."
        )
    if any(s <= 0 for s in sizes):
        raise ValueError(
            "The 'hidden_layer_sizes' parameter of MLPClassifier must hold "
            f"integers > 0. Got {hidden_layer_sizes!r} instead."
        )
    return [int(s) for s in sizes]


def check_sample_weight_values(sample_weight):
    """Reject negative or non-finite sample weights."""
    if not np.all(np.isfinite(sample_weight)):
        raise ValueError("Sample weights must be finite numbers; got NaN or inf.")
    if np.any(sample_weight < 0):
        raise ValueError(
            "Sample weights must be non-negative; got a minimum of "
            f"{sample_weight.min()!r}."
        )


def resolve_optimizer(optimizer, momentum):
    """The optimizer object named by ``optimizer``; objects pass through."""
    if isinstance(optimizer, str):
        cls = OPTIMIZERS[optimizer]
        return cls(momentum=momentum) if "momentum" in cls._get_param_names() else cls()
    if hasattr(optimizer, "_check_momentum") and hasattr(optimizer, "momentum"):
        optimizer._check_momentum()  # once here, rather than from a worker
    n_buffers = getattr(optimizer, "n_buffers", None)
    if (
        not isinstance(n_buffers, Integral)
        or isinstance(n_buffers, bool)
        or n_buffers < 0
    ):
        raise TypeError(
            f"{type(optimizer).__name__}.n_buffers must be an int >= 0; got "
            f"{n_buffers!r}."
        )
    return optimizer


def validation_split(X, y, Y, sample_weight, fraction, stratify, random_state):
    """Hold out a validation split for early stopping.

    Returns ``(train, val)``, each a tuple ``(X, y, Y, sample_weight)``, or
    ``None`` with a warning when no usable split exists: the fit then
    monitors the training loss as if ``early_stopping=False``.
    """
    arrays = [X, y, Y] + ([] if sample_weight is None else [sample_weight])
    split = None
    if stratify:
        try:
            split = train_test_split(
                *arrays, test_size=fraction, random_state=random_state, stratify=y
            )
        except ValueError as err:
            warn_user(
                f"early_stopping could not stratify the validation split ({err}); "
                "holding out an unstratified random split instead.",
            )
    if split is None:
        try:
            split = train_test_split(
                *arrays, test_size=fraction, random_state=random_state
            )
        except ValueError:
            split = None
    too_small = split is None or split[1].shape[0] < MIN_VALIDATION_SAMPLES
    if too_small or split[0].shape[0] < 1:
        warn_user(
            "early_stopping needs a validation split of at least "
            f"{MIN_VALIDATION_SAMPLES} samples, but "
            f"validation_fraction={fraction} of {X.shape[0]} samples does not give "
            "one; this fit monitors the training loss instead. Increase "
            "validation_fraction or the number of samples.",
        )
        return None
    train, val = split[0::2], split[1::2]
    if sample_weight is not None and not val[-1].sum() > 0:
        warn_user(
            "early_stopping held out a validation split whose sample weights are "
            "all zero, so it cannot score it; this fit monitors the training loss "
            "instead."
        )
        return None
    if sample_weight is None:
        train, val = list(train) + [None], list(val) + [None]
    return tuple(train), tuple(val)


_PACKAGE_DIR = os.path.dirname(os.path.abspath(__file__))
# The wrapper scikit-learn's callback framework puts around fit.
_WRAPPER = os.path.join("sklearn", "callback", "_callback_support.py")


def warn_user(message, category=UserWarning):
    """Warn, pointing at the first frame outside sknet: the user's call."""
    # stacklevel 1 is this function, 2 its caller, and so on.
    frame, level = sys._getframe(1), 2
    while frame is not None and (
        frame.f_code.co_filename.startswith(_PACKAGE_DIR)
        or frame.f_code.co_filename.endswith(_WRAPPER)
    ):
        frame, level = frame.f_back, level + 1
    warnings.warn(message, category, stacklevel=level)
